//! A Samba server node: the Debian `smbd`, run as a real daemon inside the node's namespace,
//! with all of its state under the node's directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;

use crate::cgroup::Freezer;
use crate::netns::NetNs;
use crate::{probe, process, LabError};

const TEMPLATE: &str = include_str!("../../../containers/samba/smb.conf.in");
pub const SMBD: &str = "/usr/sbin/smbd";
pub const SMBPASSWD: &str = "/usr/bin/smbpasswd";
/// The Unix account every lab Samba user maps to.
pub const UNIX_USER: &str = "smbchaos";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What a server node runs: its configuration and its smbd.
pub struct SambaServer {
    name: String,
    address: Ipv4Addr,
    ns: Arc<NetNs>,
    freezer: Freezer,
    dir: PathBuf,
    smbd: Option<tokio::process::Child>,
    /// Extra environment of smbd (the plan's `environment:`).
    environment: BTreeMap<String, String>,
}

/// The smb.conf options of one server, as the plan gives them.
pub struct SambaConfig<'a> {
    pub global: &'a BTreeMap<String, String>,
    pub shares: Vec<(&'a str, &'a BTreeMap<String, String>)>,
    pub environment: &'a BTreeMap<String, String>,
}

impl SambaServer {
    /// Lay out the node directory, render smb.conf and add the user. Does not start smbd.
    #[allow(clippy::too_many_arguments)] // one call site, each argument a different part of the node
    pub async fn prepare(
        name: &str,
        address: Ipv4Addr,
        ns: Arc<NetNs>,
        freezer: Freezer,
        dir: PathBuf,
        config: &SambaConfig<'_>,
        user: &str,
        password: &str,
    ) -> Result<SambaServer, LabError> {
        for sub in [
            "private",
            "bind-dns",
            "lock",
            "state",
            "cache",
            "run",
            "log",
            "usershares",
        ] {
            mkdir(&dir.join(sub))?;
        }
        let (uid, gid) = unix_user()?;
        for (share, _) in &config.shares {
            let path = dir.join("shares").join(share);
            mkdir(&path)?;
            nix::unistd::chown(&path, Some(uid), Some(gid))
                .map_err(|e| LabError::sys(format!("chown {}", path.display()), e))?;
        }
        let conf = render(name, &dir, config);
        fs::write(dir.join("smb.conf"), conf)
            .map_err(|e| LabError::io(format!("write {}/smb.conf", dir.display()), e))?;
        let server = SambaServer {
            name: name.to_string(),
            address,
            ns,
            freezer,
            dir,
            smbd: None,
            environment: config.environment.clone(),
        };
        server.add_user(user, password).await?;
        Ok(server)
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.join("smb.conf")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn share_path(&self, share: &str) -> PathBuf {
        self.dir.join("shares").join(share)
    }

    pub fn freezer(&self) -> &Freezer {
        &self.freezer
    }

    async fn add_user(&self, user: &str, password: &str) -> Result<(), LabError> {
        let mut child = tokio::process::Command::new(SMBPASSWD)
            .args([
                "-c".as_ref(),
                self.conf_path().as_os_str(),
                "-s".as_ref(),
                "-a".as_ref(),
            ])
            .arg(user)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| LabError::io(format!("run {SMBPASSWD} (is samba installed?)"), e))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(format!("{password}\n{password}\n").as_bytes())
            .await
            .map_err(|e| LabError::io("write password to smbpasswd", e))?;
        drop(stdin);
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| LabError::io("smbpasswd", e))?;
        if !out.status.success() {
            return Err(LabError::Other(format!(
                "smbpasswd -a {user} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Start smbd and wait until it answers an SMB2 NEGOTIATE on port 445.
    pub async fn start(&mut self) -> Result<(), LabError> {
        if self.smbd.is_some() && !self.freezer.pids().is_empty() {
            return Err(LabError::Other(format!(
                "smbd on {} is already running",
                self.name
            )));
        }
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir().join("smbd.stdout"))
            .map_err(|e| LabError::io("open smbd output log", e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("dup smbd output log", e))?;
        let child = process::command_in(&self.ns, &self.freezer, SMBD)?
            .args(["--foreground", "--no-process-group", "-s"])
            .arg(self.conf_path())
            .envs(&self.environment)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io(format!("start {SMBD} (is samba installed?)"), e))?;
        self.smbd = Some(child);
        self.wait_ready().await
    }

    /// Wait until smbd answers NEGOTIATE on port 445 (also how every heal is verified).
    pub async fn wait_ready(&mut self) -> Result<(), LabError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let target = SocketAddr::from((self.address, 445));
        let mut last = String::from("not tried");
        while Instant::now() < deadline {
            if let Some(child) = self.smbd.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(LabError::ServerDied {
                        node: self.name.clone(),
                        detail: format!(
                            "smbd exited with {status}; see {}",
                            self.log_dir().display()
                        ),
                    });
                }
            }
            match connect_in(&self.ns, target).await {
                Ok(mut stream) => match probe::negotiate(&mut stream, Duration::from_secs(5)).await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e,
                },
                Err(e) => last = e.to_string(),
            }
            // Port 445 is not listening yet: poll again shortly (readiness is the answer
            // itself; this only paces the polling).
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(LabError::NotReady {
            node: self.name.clone(),
            detail: last,
        })
    }

    /// SIGTERM the main smbd and wait for every process of the node to exit.
    pub async fn stop(&mut self) -> Result<(), LabError> {
        if let Some(mut child) = self.smbd.take() {
            if let Some(pid) = child.id() {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                tracing::warn!(node = %self.name, "smbd ignored SIGTERM for 10 s; killing it");
            }
        }
        self.kill().await
    }

    /// SIGKILL every process of the node.
    pub async fn kill(&mut self) -> Result<(), LabError> {
        let freezer = self.freezer.clone();
        tokio::task::spawn_blocking(move || freezer.kill_all(Duration::from_secs(10)))
            .await
            .map_err(|e| LabError::Other(e.to_string()))??;
        if let Some(mut child) = self.smbd.take() {
            let _ = child.wait().await;
        }
        Ok(())
    }

    /// SIGKILL only the smbd child serving connections from `client` (the process that owns
    /// the socket); the parent smbd keeps listening. Returns the pids killed.
    pub async fn kill_serving(&mut self, client: Ipv4Addr) -> Result<Vec<i32>, LabError> {
        let ns = self.ns.clone();
        let sockets = tokio::task::spawn_blocking(move || crate::sockdiag::established(&ns))
            .await
            .map_err(|e| LabError::Other(e.to_string()))??;
        let inodes: Vec<String> = sockets
            .iter()
            .filter(|(local, remote, _)| {
                local.port() == 445 && remote.ip() == std::net::IpAddr::V4(client)
            })
            .map(|(_, _, inode)| format!("socket:[{inode}]"))
            .collect();
        let mut killed = Vec::new();
        for pid in self.freezer.pids() {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            let owns = fds
                .flatten()
                .filter_map(|fd| fs::read_link(fd.path()).ok())
                .any(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()));
            if owns {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                killed.push(pid.as_raw());
            }
        }
        if killed.is_empty() {
            return Err(LabError::Other(format!(
                "no smbd on {} is serving {client}",
                self.name
            )));
        }
        Ok(killed)
    }

    pub async fn restart(&mut self) -> Result<(), LabError> {
        self.kill().await?;
        self.start().await
    }

    pub fn pause(&self) -> Result<(), LabError> {
        self.freezer.freeze()
    }

    pub fn resume(&self) -> Result<(), LabError> {
        self.freezer.thaw()
    }

    pub fn is_running(&self) -> bool {
        self.smbd.is_some()
    }
}

/// A TCP connection to `target` whose socket is made inside `ns`.
pub async fn connect_in(ns: &NetNs, target: SocketAddr) -> Result<tokio::net::TcpStream, LabError> {
    let socket = ns.run(move || {
        let socket = std::net::TcpStream::from(
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .map_err(|e| LabError::io("create socket", e))?,
        );
        Ok(socket)
    })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| LabError::io("set nonblocking", e))?;
    let socket = tokio::net::TcpSocket::from_std_stream(socket);
    socket
        .connect(target)
        .await
        .map_err(|e| LabError::io(format!("connect to {target} from {}", ns.name()), e))
}

fn render(name: &str, dir: &Path, config: &SambaConfig<'_>) -> String {
    let netbios: String = name.to_uppercase().chars().take(15).collect();
    let mut conf = TEMPLATE
        .replace("@DIR@", &dir.display().to_string())
        .replace("@NETBIOS@", &netbios);
    for (key, value) in config.global {
        let _ = writeln!(conf, "\t{key} = {value}");
    }
    for (share, options) in &config.shares {
        let _ = writeln!(conf, "\n[{share}]");
        let _ = writeln!(
            conf,
            "\tpath = {}",
            dir.join("shares").join(share).display()
        );
        let _ = writeln!(conf, "\tread only = no");
        let _ = writeln!(conf, "\tvfs objects = streams_xattr");
        for (key, value) in *options {
            let _ = writeln!(conf, "\t{key} = {value}");
        }
    }
    conf
}

fn mkdir(path: &Path) -> Result<(), LabError> {
    fs::create_dir_all(path).map_err(|e| LabError::io(format!("create {}", path.display()), e))
}

/// The lab's Unix account, created (as a system user without a home) if this machine lacks it.
fn unix_user() -> Result<(nix::unistd::Uid, nix::unistd::Gid), LabError> {
    let lookup = || nix::unistd::User::from_name(UNIX_USER).ok().flatten();
    if lookup().is_none() {
        let status = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                UNIX_USER,
            ])
            .status()
            .map_err(|e| LabError::io("run useradd", e))?;
        if !status.success() && lookup().is_none() {
            return Err(LabError::Other(format!(
                "useradd {UNIX_USER} failed: {status}"
            )));
        }
    }
    let user = lookup().ok_or_else(|| LabError::Other(format!("no Unix user {UNIX_USER}")))?;
    Ok((user.uid, user.gid))
}
