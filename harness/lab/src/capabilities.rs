//! The one list of what the harness needs from this machine, each with its fix. `doctor`
//! prints all of it, `run`/`validate` refuse to start a plan whose needs are missing
//! (preflight), and the plan tests ignore a plan this machine cannot run — all from here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::netns::{self, NetNs};

/// VFS modules the harness's own smb.conf names for every share (lease tests open streams).
pub const HARNESS_VFS_MODULES: &[&str] = &["streams_xattr"];

/// Debian 12 ships every optional VFS module of smbd in this package, a *Recommends* of
/// `samba` that `--no-install-recommends` leaves out.
const VFS_PACKAGE: &str = "samba-vfs-modules";

/// One capability: present or missing, what was seen, and how to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub name: String,
    pub present: bool,
    /// Version or detail when present; what is wrong when missing.
    pub detail: String,
    /// How to get it, or what the harness does without it.
    pub fix: String,
    /// A missing required capability stops `run`; an optional one only limits it.
    pub required: bool,
}

impl Capability {
    fn new(
        name: impl Into<String>,
        present: bool,
        detail: impl Into<String>,
        fix: impl Into<String>,
        required: bool,
    ) -> Self {
        Capability {
            name: name.into(),
            present,
            detail: detail.into(),
            fix: fix.into(),
            required,
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (fix: {})", self.name, self.detail, self.fix)
    }
}

/// What `smbd -b` says about its modules.
#[derive(Debug, Clone, Default)]
pub struct SmbdModules {
    /// MODULESDIR: VFS modules are `<dir>/vfs/<name>.so`.
    pub dir: Option<PathBuf>,
    /// Modules linked into smbd (`vfs_default`, ...), without the `vfs_` prefix.
    pub builtin: Vec<String>,
    /// The `.so` files of `<dir>/vfs` when they were listed elsewhere (inside an image);
    /// `None`: look at this machine's filesystem.
    pub listed: Option<Vec<String>>,
}

impl SmbdModules {
    /// Ask the installed smbd (cached: it does not change while we run).
    pub fn probe() -> &'static SmbdModules {
        static CACHE: OnceLock<SmbdModules> = OnceLock::new();
        CACHE.get_or_init(|| {
            let out = Command::new(crate::samba::SMBD)
                .arg("-b")
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    SmbdModules::parse(&String::from_utf8_lossy(&o.stdout))
                }
                _ => SmbdModules::default(),
            }
        })
    }

    pub fn parse(build_info: &str) -> SmbdModules {
        let mut out = SmbdModules::default();
        let mut lines = build_info.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if let Some(dir) = line.strip_prefix("MODULESDIR:") {
                out.dir = Some(PathBuf::from(dir.trim()));
            } else if line.starts_with("Builtin modules:") {
                if let Some(list) = lines.next() {
                    out.builtin = list
                        .split_whitespace()
                        .filter_map(|m| m.strip_prefix("vfs_"))
                        .map(str::to_string)
                        .collect();
                }
            }
        }
        out
    }

    /// Is VFS module `name` available to smbd? Err says why not, with the fix.
    pub fn check(&self, name: &str) -> Result<String, String> {
        if self.builtin.iter().any(|b| b == name) {
            return Ok(format!("{name} (built into smbd)"));
        }
        let Some(dir) = &self.dir else {
            return Err(format!(
                "cannot tell whether VFS module `{name}` exists: `{} -b` gave no MODULESDIR (is samba installed? apt-get install samba)",
                crate::samba::SMBD
            ));
        };
        let path = dir.join("vfs").join(format!("{name}.so"));
        let found = match &self.listed {
            Some(files) => files.iter().any(|f| *f == format!("{name}.so")),
            None => path.is_file(),
        };
        if found {
            Ok(path.display().to_string())
        } else {
            Err(format!(
                "VFS module `{name}` is missing: {} does not exist",
                path.display()
            ))
        }
    }
}

/// The fix for a missing VFS module.
fn vfs_fix(name: &str) -> String {
    format!(
        "apt-get install {VFS_PACKAGE} (Debian's package of smbd's VFS modules; if it is installed, \
         `{name}` is not a Samba module: check the spelling in `vfs objects`)"
    )
}

/// Every VFS module the plan's servers will load: the harness's own plus each `vfs objects`
/// (global or per share), with where it was named.
pub fn vfs_modules(plan: &plan::Plan) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, place: String| {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.to_string(), place));
        }
    };
    for m in HARNESS_VFS_MODULES {
        add(m, "the harness's smb.conf (every share)".into());
    }
    let nodes = plan
        .topology
        .servers
        .iter()
        .map(|s| (format!("server {}", s.name.value), &s.global, &s.shares))
        .chain(
            plan.topology
                .clusters
                .iter()
                .map(|c| (format!("cluster {}", c.name.value), &c.global, &c.shares)),
        );
    for (node, global, shares) in nodes {
        let named = |options: &std::collections::BTreeMap<String, String>| {
            options
                .iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase().replace(' ', "");
                    k == "vfsobjects" || k == "vfsobject"
                })
                .flat_map(|(_, v)| {
                    v.split([' ', ',', '\t'])
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        for m in named(global) {
            add(&m, format!("{node} global `vfs objects`"));
        }
        for share in shares {
            for m in named(&share.options) {
                add(
                    &m,
                    format!("{node} share {} `vfs objects`", share.name.value),
                );
            }
        }
    }
    out
}

/// Everything `plan` needs that this machine lacks, each naming the fix. Empty: it can run.
pub fn missing_for(plan: &plan::Plan) -> Vec<Capability> {
    let mut need = base();
    if plan.topology.wire == plan::WireKind::Userspace {
        need.push(tun());
    }
    need.extend(vfs_needs(plan));
    let lossy = plan.topology.servers.iter().flat_map(|s| &s.shares);
    if lossy.into_iter().any(|s| s.disk == plan::Disk::Lossy) {
        need.push(fuse());
    }
    if !plan.topology.clusters.is_empty() {
        // ctdbd, its 10.interface event (ethtool), and how the lab runs it: a mount
        // namespace of its own (unshare), the ctdb tool inside it (nsenter). On docker the
        // first four are the image's (its recipe installs them); nsenter is the host's.
        let docker = plan.topology.provider == plan::Provider::Docker;
        for (tool, path, package) in [
            ("ctdbd", crate::ctdb::CTDBD, "ctdb"),
            ("ctdb", crate::ctdb::CTDB, "ctdb"),
            ("ethtool", "/usr/sbin/ethtool", "ethtool"),
            ("unshare", "/usr/bin/unshare", "util-linux"),
            ("nsenter", "/usr/bin/nsenter", "util-linux"),
        ]
        .into_iter()
        .filter(|(tool, ..)| !docker || *tool == "nsenter")
        {
            let found = std::path::Path::new(path).exists();
            need.push(Capability::new(
                tool,
                found,
                if found {
                    path.to_string()
                } else {
                    format!("the plan has a cluster, and {path} is missing")
                },
                format!("apt-get install {package} (or scripts/setup)"),
                true,
            ));
        }
    }
    need.extend(crate::images::needs(plan));
    for (tool, package) in tools_called(plan) {
        let found = on_path(tool);
        need.push(Capability::new(
            tool,
            found.is_some(),
            found.map(|p| p.display().to_string()).unwrap_or_else(|| {
                format!("the plan's exec steps call {tool}, which is not on PATH")
            }),
            format!("apt-get install {package}"),
            true,
        ));
    }
    need.into_iter().filter(|c| !c.present).collect()
}

/// The VFS modules `plan` names that smbd lacks: `validate` refuses such a plan (no root
/// needed), and `run` before any lab is built.
pub fn missing_vfs_modules(plan: &plan::Plan) -> Vec<Capability> {
    vfs_needs(plan).into_iter().filter(|c| !c.present).collect()
}

/// On `provider: docker` the modules are the images' (one look inside each image, cached by
/// image: `images::smbd_modules`); an image not built yet is left to `images::needs`.
fn vfs_needs(plan: &plan::Plan) -> Vec<Capability> {
    let places: Vec<(String, String)> = vfs_modules(plan);
    if plan.topology.provider == plan::Provider::Docker {
        let mut out = Vec::new();
        for version in crate::images::versions(plan) {
            let Some((tag, modules)) = crate::images::smbd_modules(version) else {
                continue;
            };
            for (name, place) in &places {
                let found = modules.check(name);
                out.push(Capability::new(
                    format!("VFS module {name} (named by {place}) in image {tag}"),
                    found.is_ok(),
                    match found {
                        Ok(p) => format!("{p} in {tag}"),
                        Err(e) => format!("image {tag} (Samba {version}): {e}"),
                    },
                    format!(
                        "add the package that ships it to containers/samba-{version}/Dockerfile ({VFS_PACKAGE} has Debian's), then `smbchaos images build --samba {version}`; if `{name}` is not a Samba module, fix the spelling in `vfs objects`"
                    ),
                    true,
                ));
            }
        }
        return out;
    }
    let modules = SmbdModules::probe();
    places
        .into_iter()
        .map(|(name, place)| {
            let found = modules.check(&name);
            Capability::new(
                format!("VFS module {name} (named by {place})"),
                found.is_ok(),
                found.unwrap_or_else(|e| e),
                vfs_fix(&name),
                true,
            )
        })
        .collect()
}

/// Tools the plan's exec steps call that Debian packages separately from smbd.
fn tools_called(plan: &plan::Plan) -> Vec<(&'static str, &'static str)> {
    const TOOLS: [(&str, &str); 5] = [
        ("smbclient", "smbclient"),
        ("smbtorture", "samba-testsuite"),
        ("ctdb", "ctdb"),
        ("ethtool", "ethtool"),
        ("iperf3", "iperf3"),
    ];
    let commands: Vec<&str> = plan
        .workload
        .steps
        .iter()
        .map(|s| match s {
            plan::Step::Exec(e) => e.run.as_str(),
        })
        .collect();
    TOOLS
        .into_iter()
        .filter(|(tool, _)| commands.iter().any(|c| mentions(c, tool)))
        .collect()
}

/// `word` as a whole word of `text`.
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
        !part(text[..i].chars().next_back()) && !part(text[i + word.len()..].chars().next())
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// What every plan needs: root, smbd, the freezer.
fn base() -> Vec<Capability> {
    let root = nix::unistd::geteuid().is_root();
    let smbd = version(crate::samba::SMBD, "--version");
    let freezer = Path::new(crate::cgroup::FREEZER_ROOT)
        .join("cgroup.procs")
        .exists();
    vec![
        Capability::new(
            "root",
            root,
            if root { "euid 0" } else { "not root" },
            "run smbchaos as root (sudo): namespaces, netlink and cgroups need it",
            true,
        ),
        Capability::new(
            "Samba smbd",
            !smbd.is_empty(),
            if smbd.is_empty() {
                format!("{} not found", crate::samba::SMBD)
            } else {
                smbd
            },
            "apt-get install samba samba-vfs-modules",
            true,
        ),
        Capability::new(
            "cgroup v1 freezer",
            freezer,
            if freezer {
                crate::cgroup::FREEZER_ROOT.to_string()
            } else {
                format!("{} is not mounted", crate::cgroup::FREEZER_ROOT)
            },
            "mkdir -p /sys/fs/cgroup/freezer && mount -t cgroup -o freezer freezer /sys/fs/cgroup/freezer",
            true,
        ),
    ]
}

/// `disk: lossy` shares are FUSE mounts the harness serves (mounted directly as root;
/// fuse3's fusermount3 is the fallback).
fn fuse() -> Capability {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse");
    Capability::new(
        "FUSE",
        dev.is_ok(),
        dev.err()
            .map(|e| format!("/dev/fuse: {e} (needed by `disk: lossy`)"))
            .unwrap_or_else(|| "/dev/fuse opens".into()),
        "a kernel with CONFIG_FUSE_FS (`modprobe fuse`) and apt-get install fuse3 (or scripts/setup)",
        true,
    )
}

fn tun() -> Capability {
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun");
    Capability::new(
        "TUN/TAP",
        tun.is_ok(),
        tun.err()
            .map(|e| format!("/dev/net/tun: {e}"))
            .unwrap_or_else(|| "/dev/net/tun opens".into()),
        "a kernel with CONFIG_TUN (`mkdir -p /dev/net && mknod /dev/net/tun c 10 200`), or `wire: kernel` in the plan's topology",
        true,
    )
}

/// Everything, for `doctor`: the base needs, the VFS modules `plans` name (the harness's own
/// when none are given), the kernel features probed for real in a throwaway namespace, and
/// the optional tools.
pub fn machine(plans: &[plan::Plan]) -> Vec<Capability> {
    let mut out = base();
    out.push(tun());
    out.push(fuse());
    let modules = SmbdModules::probe();
    let mut names: Vec<(String, String)> = HARNESS_VFS_MODULES
        .iter()
        .map(|m| (m.to_string(), "the harness".to_string()))
        .collect();
    for plan in plans {
        for (m, place) in vfs_modules(plan) {
            if !names.iter().any(|(n, _)| *n == m) {
                names.push((m, format!("plan {}: {place}", plan.name.value)));
            }
        }
    }
    for (name, place) in names {
        let found = modules.check(&name);
        out.push(Capability::new(
            format!("VFS module {name}"),
            found.is_ok(),
            match found {
                Ok(p) => format!("{p} (needed by {place})"),
                Err(e) => format!("{e} (needed by {place})"),
            },
            vfs_fix(&name),
            true,
        ));
    }
    out.extend(kernel());
    for (name, program, flag, fix) in [
        (
            "smbclient",
            "smbclient",
            "--version",
            "apt-get install smbclient",
        ),
        (
            "smbtorture",
            "smbtorture",
            "--version",
            "apt-get install samba-testsuite",
        ),
        ("CTDB", "/usr/bin/ctdb", "version", "apt-get install ctdb"),
        (
            "ethtool",
            "ethtool",
            "--version",
            "apt-get install ethtool (CTDB's 10.interface event)",
        ),
        (
            "iperf3",
            "iperf3",
            "--version",
            "apt-get install iperf3 (scripts/bench/iperf; plans' exec steps may use it)",
        ),
    ] {
        let v = version(program, flag);
        out.push(Capability::new(
            name,
            !v.is_empty(),
            if v.is_empty() {
                format!("{program} not found")
            } else {
                v
            },
            fix,
            false,
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
    out.push(Capability::new(
        "Docker engine",
        docker.is_ok(),
        docker.unwrap_or_else(|e| e),
        "only for the docker provider and the fresh-machine test: apt-get install docker.io and start dockerd",
        false,
    ));
    out
}

/// Kernel features, probed for real inside a throwaway network namespace (removed after).
fn kernel() -> Vec<Capability> {
    let mut out = Vec::new();
    let root = nix::unistd::geteuid().is_root();
    let probe_name = format!("sc-doctor{}-probe", std::process::id());
    let probe = if root {
        NetNs::create(&probe_name).map_err(|e| e.to_string())
    } else {
        Err("not root".into())
    };
    out.push(Capability::new(
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
    out.push(Capability::new(
        "sock_diag SOCK_DESTROY",
        destroy.is_ok(),
        destroy
            .err()
            .unwrap_or_else(|| "a loopback connection was reset".into()),
        "a kernel with CONFIG_INET_DIAG_DESTROY (TCP reset faults need it)",
        false,
    ));
    let tbf = in_probe(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kbit",
            "latency", "50ms",
        ],
    );
    out.push(Capability::new(
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
    out.push(Capability::new(
        "kernel netem",
        netem.is_ok(),
        netem.err().unwrap_or_else(|| "netem qdisc accepted".into()),
        "not required: smbchaos never relies on sch_netem; link impairments (latency, loss, jitter, duplication, reordering) belong to its userspace wire (TAP forwarding)",
        false,
    ));
    if probe.is_ok() {
        let _ = netns::delete(&probe_name);
    }
    out
}

/// The first line a program prints for `flag` (e.g. `--version`); empty when it fails.
pub fn version(program: &str, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Run a command inside `ns`; Ok(stdout) on success, Err(stderr) otherwise.
fn run_in(ns: &NetNs, program: &str, args: &[&str]) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let fd = ns.raw_fd();
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: between fork and exec the closure calls only setns(2), which is
    // async-signal-safe, on a descriptor `ns` keeps open for the whole call.
    unsafe {
        cmd.pre_exec(move || {
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
                .map_err(|e| crate::LabError::io("bind", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| crate::LabError::io("addr", e))?;
            let client = std::net::TcpStream::connect(addr)
                .map_err(|e| crate::LabError::io("connect", e))?;
            let (server, _) = listener
                .accept()
                .map_err(|e| crate::LabError::io("accept", e))?;
            Ok((client, server))
        })
        .map_err(|e| e.to_string())?;
    let port = client.peer_addr().map_err(|e| e.to_string())?.port();
    let filter = crate::sockdiag::TcpFilter {
        local_port: Some(port),
        ..Default::default()
    };
    let reset = crate::sockdiag::destroy(ns, filter).map_err(|e| e.to_string())?;
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

/// The fix for a share smbd refuses, from its status and the log lines that explain it.
pub fn fix_for_share(status: &str, log: &[String]) -> String {
    for line in log {
        // `Error loading module '/usr/lib/x86_64-linux-gnu/samba/vfs/streams_xattr.so': ...`
        if let Some(rest) = line.split("Error loading module '").nth(1) {
            let path = rest.split('\'').next().unwrap_or_default();
            let name = Path::new(path)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or(path);
            return format!("VFS module `{name}` is missing: {}", vfs_fix(name));
        }
    }
    if status.contains("BAD_NETWORK_NAME") {
        "smbd refused the share's definition (a module that failed to load, a path it cannot use): the log lines above say which".into()
    } else if status.contains("ACCESS_DENIED") {
        "the lab user may not use this share: check the share's path permissions and `valid users`/`invalid users`/`hosts deny` options in the plan".into()
    } else if status.contains("LOGON_FAILURE") {
        "the lab user's password was not accepted: check the plan's `passdb`/`security` options"
            .into()
    } else {
        "see the smbd log lines above and the share's options in the plan".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modulesdir_and_builtins() {
        let m = SmbdModules::parse(
            "Paths:\n   SBINDIR: /usr/sbin\n   MODULESDIR: /usr/lib/x86_64-linux-gnu/samba\n\
             Builtin modules:\n   vfs_default vfs_not_implemented vfs_posixacl auth_builtin pdb_tdbsam\n\n",
        );
        assert_eq!(
            m.dir,
            Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/samba"))
        );
        assert_eq!(m.builtin, ["default", "not_implemented", "posixacl"]);
        assert!(m.check("default").is_ok());
        let err = m.check("no_such_module").unwrap_err();
        assert!(err.contains("`no_such_module` is missing"), "{err}");
        assert!(vfs_fix("no_such_module").contains("samba-vfs-modules"));
    }

    #[test]
    fn a_module_load_error_names_the_module_and_package() {
        let log = vec![
            "Error loading module '/usr/lib/x86_64-linux-gnu/samba/vfs/streams_xattr.so': cannot open shared object file".to_string(),
        ];
        let fix = fix_for_share("STATUS_BAD_NETWORK_NAME", &log);
        assert!(
            fix.contains("`streams_xattr`") && fix.contains("samba-vfs-modules"),
            "{fix}"
        );
    }
}
