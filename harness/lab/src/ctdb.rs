//! One CTDB node: `ctdbd` in normal mode (CTDB_TEST_MODE would stop it announcing public
//! addresses: no gratuitous ARP, no tickle ACKs), configured through the node's own
//! directories bind-mounted over `/etc/ctdb`, `/run/ctdb` and `/var/lib/ctdb` in a mount
//! namespace of its own, so nothing of it shows on the host.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cgroup::Freezer;
use crate::netns::NetNs;
use crate::{process, LabError};

pub const CTDBD: &str = "/usr/sbin/ctdbd";
pub const CTDB: &str = "/usr/bin/ctdb";
const EVENT_SCRIPTS: &str = "/usr/share/ctdb/events/legacy";
/// The event scripts a lab node runs: 00.ctdb (tunables, database checks) and 10.interface
/// (adds and removes the public addresses; needs ethtool).
const EVENTS: [&str; 2] = ["00.ctdb", "10.interface"];
/// The harness's tunables: healthy in ~9 s instead of ~21 s, and a dead node noticed in ~3 s.
pub const TUNABLES: [(&str, u32); 4] = [
    ("RerecoveryTimeout", 0),
    ("MonitorInterval", 1),
    ("KeepaliveInterval", 1),
    ("KeepaliveLimit", 3),
];
/// Where the node's directories are bind-mounted, inside its mount namespace.
const MOUNTS: [(&str, &str); 3] = [
    ("etc", "/etc/ctdb"),
    ("run", "/run/ctdb"),
    ("var", "/var/lib/ctdb"),
];
/// One `ctdb` command; ctdbd answers in milliseconds unless it is frozen or gone.
const CTL_TIMEOUT: Duration = Duration::from_secs(3);

/// What a node's ctdb configuration is made of.
pub struct CtdbConfig<'a> {
    pub node_address: Ipv4Addr,
    /// Every node's private address, in PNN order.
    pub nodes: &'a [Ipv4Addr],
    pub public_addresses: &'a [Ipv4Addr],
    /// The recovery lock, on the directory shared by every node.
    pub recovery_lock: &'a Path,
    /// The plan's tunables, over the harness's.
    pub tunables: &'a BTreeMap<String, u32>,
    /// The public network's interface (`eth0`, `eth1`...) and its prefix length: where the
    /// public addresses are added.
    pub interface: &'a str,
    pub public_prefix_len: u8,
    /// A container's mount namespace (`provider: docker`): ctdbd and the `ctdb` tool are the
    /// image's, started inside it; `None` on a netns node (the host's).
    pub root: Option<Arc<OwnedFd>>,
    /// The ctdb package's own configuration directory, whence `functions` and `notify.sh`
    /// come: `/etc/ctdb`, or the image's through `/proc/<container pid>/root`.
    pub package_etc: &'a Path,
}

pub struct CtdbNode {
    pub name: String,
    pub pnn: usize,
    ns: Arc<NetNs>,
    freezer: Freezer,
    /// `<node dir>/ctdb`: etc, run, var, log.
    dir: PathBuf,
    child: Option<tokio::process::Child>,
    root: Option<Arc<OwnedFd>>,
}

impl CtdbNode {
    pub fn prepare(
        name: &str,
        pnn: usize,
        ns: Arc<NetNs>,
        freezer: Freezer,
        dir: PathBuf,
        config: &CtdbConfig<'_>,
    ) -> Result<CtdbNode, LabError> {
        let etc = dir.join("etc");
        for sub in [
            "etc/events/legacy",
            "etc/events/notification",
            "run",
            "var/volatile",
            "var/persistent",
            "var/state",
            "log",
        ] {
            mkdir(&dir.join(sub))?;
        }
        let write = |file: &str, text: String| {
            let path = etc.join(file);
            fs::write(&path, text).map_err(|e| LabError::io(format!("write {}", path.display()), e))
        };
        write(
            "ctdb.conf",
            format!(
                "[logging]\n\tlocation = file:{log}\n\tlog level = NOTICE\n\
                 [cluster]\n\trecovery lock = {lock}\n\tnode address = {addr}\n\tleader timeout = 2\n\
                 [database]\n\tvolatile database directory = {var}/volatile\n\
                 \tpersistent database directory = {var}/persistent\n\
                 \tstate database directory = {var}/state\n\
                 [legacy]\n\trealtime scheduling = false\n",
                log = dir.join("log/ctdb.log").display(),
                var = dir.join("var").display(),
                lock = config.recovery_lock.display(),
                addr = config.node_address,
            ),
        )?;
        write(
            "nodes",
            config.nodes.iter().map(|a| format!("{a}\n")).collect(),
        )?;
        write(
            "public_addresses",
            config
                .public_addresses
                .iter()
                .map(|a| format!("{a}/{} {}\n", config.public_prefix_len, config.interface))
                .collect(),
        )?;
        let mut tunables: BTreeMap<String, u32> =
            TUNABLES.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        tunables.extend(config.tunables.iter().map(|(k, v)| (k.clone(), *v)));
        let mut text = String::new();
        for (k, v) in &tunables {
            let _ = writeln!(text, "{k}={v}");
        }
        write("ctdb.tunables", text)?;
        for file in ["functions", "notify.sh"] {
            let from = config.package_etc.join(file);
            fs::copy(&from, etc.join(file)).map_err(|e| {
                LabError::io(format!("copy {} (is ctdb installed?)", from.display()), e)
            })?;
        }
        for event in EVENTS {
            let script = format!("{event}.script");
            let link = etc.join("events/legacy").join(&script);
            std::os::unix::fs::symlink(Path::new(EVENT_SCRIPTS).join(&script), &link)
                .map_err(|e| LabError::io(format!("link {}", link.display()), e))?;
        }
        for (_, target) in MOUNTS {
            mkdir(Path::new(target))?;
        }
        Ok(CtdbNode {
            name: name.to_string(),
            pnn,
            ns,
            freezer,
            dir,
            child: None,
            root: config.root.clone(),
        })
    }

    /// The daemon's socket as seen from the host (smbd's `ctdbd socket`).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/ctdbd.socket")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Start ctdbd (in the foreground: its pid is the child's) in a mount namespace of its
    /// own with the node's directories over ctdb's.
    pub fn start(&mut self) -> Result<(), LabError> {
        if self.is_running() {
            return Err(LabError::Other(format!(
                "ctdbd on {} is already running",
                self.name
            )));
        }
        self.await_old_eventd();
        let mut script = String::new();
        for (sub, target) in MOUNTS {
            // mkdir: an image need not have /run/ctdb (the host's was made by `prepare`).
            let _ = write!(
                script,
                "mkdir -p {target} && mount --bind '{}' {target} && ",
                self.dir.join(sub).display()
            );
        }
        script.push_str("exec ");
        script.push_str(CTDBD);
        script.push_str(" --interactive");
        // ctdbd --interactive logs to stderr without timestamps: each line is stamped with
        // the wall clock as it arrives, so a failover can be timed inside CTDB (node declared
        // dead, election, recovery, takeover run) against the pcap and the history.
        let log = self.log_dir().join("ctdbd.stderr");
        // `unshare` and `sh` exec: the child's pid ends up being ctdbd's.
        let mut child = process::command_in_root(
            &self.ns,
            &self.freezer,
            self.root.as_ref(),
            "/usr/bin/unshare",
        )?
        .args(["--mount", "--propagation", "slave", "/bin/sh", "-c"])
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io(format!("start {CTDBD} (is ctdb installed?)"), e))?;
        for out in [
            child.stdout.take().map(|o| Box::new(o) as Output),
            child.stderr.take().map(|e| Box::new(e) as Output),
        ]
        .into_iter()
        .flatten()
        {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| LabError::io("open ctdbd output log", e))?;
            tokio::spawn(stamp_lines(out, file));
        }
        self.child = Some(child);
        Ok(())
    }

    /// A ctdbd killed alone leaves its event daemon behind for a moment: it exits when it
    /// notices its parent gone, and until then holds /run/ctdb/eventd.pid and its socket, so a
    /// new ctdbd fails with "Failed to initialize event daemon". Wait for it (bounded), then
    /// kill it if it is still there.
    fn await_old_eventd(&self) {
        let Some(pid) = fs::read_to_string(self.dir.join("run/eventd.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        // Only a process of this node counts: a stale pid may have been reused by anyone.
        if !self.freezer.pids().contains(&pid) {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while self.freezer.pids().contains(&pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.freezer.pids().contains(&pid) {
            tracing::warn!(node = %self.name, "ctdb-eventd {pid} outlived its ctdbd by 5 s: killing it");
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while self.freezer.pids().contains(&pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| c.id()).map(|p| p as i32)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `ctdb <args>` against this node's daemon (inside its mount namespace, where
    /// /run/ctdb/ctdbd.socket and /etc/ctdb/nodes are this node's).
    pub async fn ctl(&mut self, args: &[&str]) -> Result<String, LabError> {
        let pid = self.running_pid()?;
        ctl(&self.name, pid, args, CTL_TIMEOUT).await
    }

    /// ctdbd's pid, or why there is none.
    pub fn running_pid(&mut self) -> Result<i32, LabError> {
        if !self.is_running() {
            return Err(LabError::Other(format!(
                "ctdbd on {} is not running",
                self.name
            )));
        }
        Ok(self.pid().unwrap_or(0))
    }

    /// SIGKILL ctdbd alone (its event daemon and helpers follow it out); returns its pid.
    pub async fn kill(&mut self) -> Vec<i32> {
        let Some(mut child) = self.child.take() else {
            return Vec::new();
        };
        let pid = child.id().map(|p| p as i32);
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.wait().await;
        pid.into_iter().collect()
    }

    /// Forget the child after the node's processes were killed some other way.
    pub async fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }
}

type Output = Box<dyn tokio::io::AsyncRead + Unpin + Send>;

/// Copy `from` to `to` line by line, each line prefixed with the UTC time of day it arrived
/// (`HH:MM:SS.micros`), until `from` ends (ctdbd exited).
async fn stamp_lines(from: Output, mut to: fs::File) {
    use std::io::Write as _;
    use tokio::io::AsyncBufReadExt as _;
    let mut from = tokio::io::BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match from.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut stamped = time_of_day(std::time::SystemTime::now()).into_bytes();
        stamped.push(b' ');
        stamped.extend_from_slice(&line);
        if !stamped.ends_with(b"\n") {
            stamped.push(b'\n');
        }
        let _ = to.write_all(&stamped);
    }
}

/// `HH:MM:SS.micros` (UTC) of `t`.
fn time_of_day(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_micros()
    )
}

/// `ctdb <args>` against ctdbd `pid` of node `name`, inside its mount namespace. Callers that
/// wait long (`ctdb stop` returns once the node is stopped, after a recovery) run this
/// without holding the node's lock, so the cluster can still be watched meanwhile.
pub async fn ctl(
    name: &str,
    pid: i32,
    args: &[&str],
    timeout: Duration,
) -> Result<String, LabError> {
    let pid = pid.to_string();
    let out = tokio::process::Command::new("/usr/bin/nsenter")
        .args(["-t", &pid, "-m", CTDB])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, out)
        .await
        .map_err(|_| {
            LabError::Other(format!(
                "`ctdb {}` on {name} did not answer within {timeout:?}",
                args.join(" "),
            ))
        })?
        .map_err(|e| LabError::io("run nsenter ctdb", e))?;
    if !out.status.success() {
        return Err(LabError::Other(format!(
            "`ctdb {}` on {name} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `ctdb -X status` and `ctdb ip` say, from one node's point of view. (`-X`: the
/// machine-readable node map takes 10 ms; plain `ctdb status` takes 600 ms, asking every node
/// for its recovery mode.)
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    /// Each node's flags (`OK`, or those set, as `DISCONNECTED|UNHEALTHY|INACTIVE`).
    pub nodes: Vec<String>,
    /// Which node (PNN) hosts each public address; -1: none.
    pub addresses: BTreeMap<Ipv4Addr, i32>,
}

impl ClusterStatus {
    pub fn healthy(&self) -> bool {
        !self.nodes.is_empty()
            && self.nodes.iter().all(|f| f == "OK")
            && self.addresses.values().all(|&n| n >= 0)
    }

    /// Parse `ctdb -X status` then `ctdb ip` text; lines of neither shape are skipped.
    pub fn parse(status: &str, ip: &str) -> ClusterStatus {
        let mut out = ClusterStatus::default();
        let mut header: Vec<&str> = Vec::new();
        for line in status.lines() {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
            if cells.first() == Some(&"Node") {
                header = cells;
                continue;
            }
            if header.len() != cells.len() || cells[0].parse::<u32>().is_err() {
                continue;
            }
            let set: Vec<&str> = header
                .iter()
                .zip(&cells)
                .filter(|(h, v)| !matches!(**h, "Node" | "IP" | "ThisNode") && **v == "1")
                .map(|(h, _)| *h)
                .collect();
            out.nodes.push(if set.is_empty() {
                "OK".to_string()
            } else {
                set.join("|").to_uppercase()
            });
        }
        for line in ip.lines() {
            let mut words = line.split_whitespace();
            if let (Some(a), Some(n), None) = (words.next(), words.next(), words.next()) {
                if let (Ok(a), Ok(n)) = (a.parse::<Ipv4Addr>(), n.parse::<i32>()) {
                    out.addresses.insert(a, n);
                }
            }
        }
        out
    }
}

fn mkdir(path: &Path) -> Result<(), LabError> {
    fs::create_dir_all(path).map_err(|e| LabError::io(format!("create {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_ip() {
        let status = "|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|\n|0|198.18.1.1|0|0|0|0|0|0|0|0|Y|\n|1|198.18.1.2|1|0|0|0|1|0|1|0|N|\n|2|198.18.1.3|0|0|0|0|0|0|0|0|N|\n";
        let ip = "Public IPs on node 0\n198.18.2.1 2\n198.18.2.2 -1\n198.18.2.3 0\n";
        let s = ClusterStatus::parse(status, ip);
        assert_eq!(s.nodes, ["OK", "DISCONNECTED|UNHEALTHY|INACTIVE", "OK"]);
        assert_eq!(s.addresses[&Ipv4Addr::new(198, 18, 2, 2)], -1);
        assert!(!s.healthy());
        assert_eq!(
            ClusterStatus::parse("garbage\npnn:", "1 2 3\nx y"),
            ClusterStatus::default()
        );
    }

    #[test]
    fn stamps_time_of_day() {
        let t = std::time::UNIX_EPOCH + Duration::from_micros(86_400_000_000 * 3 + 3_723_000_042);
        assert_eq!(time_of_day(t), "01:02:03.000042");
    }
}
