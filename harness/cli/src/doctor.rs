//! `smbchaos doctor`: every capability the harness uses, present or missing, with the fix.
//! Kernel features are probed for real inside a throwaway network namespace.

use std::process::{Command, Stdio};

use lab::netns::{self, NetNs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub present: bool,
    /// Version or detail when present; what is wrong when missing.
    pub detail: String,
    /// How to get it, or what the harness does without it.
    pub fix: &'static str,
    /// A missing required capability stops `run`; an optional one only limits it.
    pub required: bool,
}

pub fn checks() -> Vec<Check> {
    let mut out = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    out.push(check(
        "root",
        root,
        if root {
            "euid 0".into()
        } else {
            "not root".into()
        },
        "run smbchaos as root (sudo): namespaces, netlink and cgroups need it",
        true,
    ));

    // One throwaway namespace for the kernel probes; removed before returning.
    let probe_name = format!("sc-doctor{}-probe", std::process::id());
    let probe = if root {
        NetNs::create(&probe_name).map_err(|e| e.to_string())
    } else {
        Err("not root".into())
    };
    out.push(check(
        "network namespaces",
        probe.is_ok(),
        probe
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_else(|| "unshare(CLONE_NEWNET) works".into()),
        "a kernel with CONFIG_NET_NS; run as root",
        true,
    ));
    let in_probe = |program: &str, args: &[&str]| -> Result<String, String> {
        match &probe {
            Ok(ns) => run_in(ns, program, args),
            Err(e) => Err(e.clone()),
        }
    };
    let _ = in_probe("ip", &["link", "set", "lo", "up"]);

    let destroy = match &probe {
        Ok(ns) => sock_destroy_works(ns),
        Err(e) => Err(e.clone()),
    };
    out.push(check(
        "sock_diag SOCK_DESTROY",
        destroy.is_ok(),
        destroy
            .err()
            .unwrap_or_else(|| "a loopback connection was reset".into()),
        "a kernel with CONFIG_INET_DIAG_DESTROY (TCP reset faults need it)",
        false,
    ));
    let nft = in_probe("nft", &["list", "ruleset"]);
    out.push(check(
        "nftables",
        nft.is_ok(),
        nft.err().unwrap_or_else(|| version("nft", "--version")),
        "apt-get install nftables",
        false,
    ));
    let nfq = in_probe(
        "iptables",
        &[
            "-w",
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "--dport",
            "9",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "7",
            "--queue-bypass",
        ],
    );
    out.push(check(
        "iptables NFQUEUE",
        nfq.is_ok(),
        nfq.err()
            .unwrap_or_else(|| version("iptables", "--version")),
        "apt-get install iptables (the nft-compat NFQUEUE target)",
        false,
    ));
    let tbf = in_probe(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kbit",
            "latency", "50ms",
        ],
    );
    out.push(check(
        "tc TBF",
        tbf.is_ok(),
        tbf.err().unwrap_or_else(|| "tbf qdisc accepted".into()),
        "a kernel with CONFIG_NET_SCH_TBF; apt-get install iproute2",
        false,
    ));
    let _ = in_probe("tc", &["qdisc", "del", "dev", "lo", "root"]);
    let netem = in_probe(
        "tc",
        &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
    );
    out.push(check("kernel netem", netem.is_ok(), netem.err().unwrap_or_else(|| "netem qdisc accepted".into()),
        "not required: smbchaos never relies on sch_netem; link impairments (latency, loss, jitter, duplication, reordering) belong to its userspace wire (TAP forwarding)",
        false));
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun");
    out.push(check(
        "TUN/TAP",
        tun.is_ok(),
        tun.err()
            .map(|e| format!("/dev/net/tun: {e}"))
            .unwrap_or_else(|| "/dev/net/tun opens".into()),
        "a kernel with CONFIG_TUN; mknod /dev/net/tun c 10 200",
        false,
    ));
    let freezer = std::path::Path::new(lab::cgroup::FREEZER_ROOT)
        .join("cgroup.procs")
        .exists();
    out.push(check("cgroup v1 freezer", freezer, if freezer { lab::cgroup::FREEZER_ROOT.into() } else { "not mounted".into() },
        "mkdir -p /sys/fs/cgroup/freezer && mount -t cgroup -o freezer freezer /sys/fs/cgroup/freezer", true));
    if probe.is_ok() {
        let _ = netns::delete(&probe_name);
    }

    for (name, program, flag, fix, required) in [
        (
            "Samba smbd",
            lab::samba::SMBD,
            "--version",
            "apt-get install samba",
            true,
        ),
        (
            "smbclient",
            "smbclient",
            "--version",
            "apt-get install smbclient",
            false,
        ),
        (
            "smbtorture",
            "smbtorture",
            "--version",
            "apt-get install samba-testsuite",
            false,
        ),
        (
            "CTDB",
            "/usr/bin/ctdb",
            "version",
            "apt-get install ctdb",
            false,
        ),
    ] {
        let v = version(program, flag);
        out.push(check(
            name,
            !v.is_empty(),
            if v.is_empty() {
                format!("{program} not found")
            } else {
                v
            },
            fix,
            required,
        ));
    }
    let docker = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    let docker = match docker {
        Ok(o) if o.status.success() => Ok(format!(
            "engine {}",
            String::from_utf8_lossy(&o.stdout).trim()
        )),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("docker: {e}")),
    };
    out.push(check(
        "Docker engine",
        docker.is_ok(),
        docker.unwrap_or_else(|e| e),
        "only for the docker provider: apt-get install docker.io and start dockerd",
        false,
    ));
    out
}

fn check(
    name: &'static str,
    present: bool,
    detail: String,
    fix: &'static str,
    required: bool,
) -> Check {
    Check {
        name,
        present,
        detail,
        fix,
        required,
    }
}

fn version(program: &str, flag: &str) -> String {
    crate::results::command_version(program, flag)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Run a command inside `ns`; Ok(stdout) on success, Err(stderr) otherwise.
fn run_in(ns: &NetNs, program: &str, args: &[&str]) -> Result<String, String> {
    let fd = ns.raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("{program}: {e}")),
    }
}

/// Connect over loopback inside the probe namespace, destroy the server side with
/// SOCK_DESTROY, and see the client get ECONNRESET.
fn sock_destroy_works(ns: &NetNs) -> Result<(), String> {
    let (client, _server) = ns
        .run(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")
                .map_err(|e| lab::LabError::io("bind", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| lab::LabError::io("addr", e))?;
            let client =
                std::net::TcpStream::connect(addr).map_err(|e| lab::LabError::io("connect", e))?;
            let (server, _) = listener
                .accept()
                .map_err(|e| lab::LabError::io("accept", e))?;
            Ok((client, server))
        })
        .map_err(|e| e.to_string())?;
    let port = client.peer_addr().map_err(|e| e.to_string())?.port();
    let filter = lab::sockdiag::TcpFilter {
        local_port: Some(port),
        ..Default::default()
    };
    let reset = lab::sockdiag::destroy(ns, filter).map_err(|e| e.to_string())?;
    if reset.is_empty() {
        return Err("no socket matched".into());
    }
    use std::io::Read;
    let mut buf = [0u8; 1];
    match (&client).read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        other => Err(format!("client saw {other:?} instead of a reset")),
    }
}
