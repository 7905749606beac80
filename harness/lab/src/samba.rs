//! A Samba server node: the Debian `smbd`, run as a real daemon inside the node's namespace,
//! with all of its state under the node's directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;

use crate::cgroup::Freezer;
use crate::netns::NetNs;
use crate::{process, LabError};

const TEMPLATE: &str = include_str!("../../../containers/samba/smb.conf.in");
pub const SMBD: &str = "/usr/sbin/smbd";
pub const SMBPASSWD: &str = "/usr/bin/smbpasswd";
/// The DCE/RPC server that runs rpcd_witness (Samba 4.20+), started by the harness on a
/// cluster node with `witness: true` (`rpc start on demand helpers = no`).
pub const SAMBA_DCERPCD: &str = "/usr/libexec/samba/samba-dcerpcd";
pub const NET: &str = "/usr/bin/net";
/// The Unix account every lab Samba user maps to.
pub const UNIX_USER: &str = "smbchaos";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// One readiness exchange; smbd answers in milliseconds once it listens.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a readiness attempt ended short of ready.
enum Readiness {
    /// smbd is not (yet) answering: try again until the deadline.
    NotYet(String),
    /// smbd answered with a refusal: waiting will not change it.
    Refused {
        share: String,
        error: smb2::ConnectError,
    },
}
use Readiness::{NotYet, Refused};

impl Readiness {
    fn classify(share: &str, step: smb2::Step, error: smb2::Error) -> Readiness {
        match error {
            // The server answered: its answer is final.
            smb2::Error::Status { .. } => Refused {
                share: share.to_string(),
                error: smb2::ConnectError { step, error },
            },
            other => NotYet(format!("{step} on {share}: {other}")),
        }
    }
}

/// What a server node runs: its configuration and its smbd.
pub struct SambaServer {
    name: String,
    address: Ipv4Addr,
    ns: Arc<NetNs>,
    freezer: Freezer,
    dir: PathBuf,
    smbd: Option<tokio::process::Child>,
    /// Every share is proven by a TREE_CONNECT before the server counts as ready.
    shares: Vec<String>,
    credentials: smb2::Credentials,
    /// `smbpasswd -a` adding the lab user, still running: it overlaps smbd's start (each
    /// takes ~80 ms), and is awaited before the first session setup.
    passdb: Option<tokio::task::JoinHandle<Result<(), LabError>>>,
    /// Extra environment of smbd (the plan's `environment:`).
    environment: BTreeMap<String, String>,
    /// A container's mount namespace, on a `provider: docker` node: smbd and smbpasswd are
    /// the container's (crate::docker).
    root: Option<Arc<OwnedFd>>,
    /// `disk: lossy` shares, each a FUSE mount over the share's directory (crate::lossy).
    lossy: Vec<(String, crate::lossy::LossyDisk)>,
    /// A cluster node running the Witness service: samba-dcerpcd beside smbd.
    witness: bool,
    dcerpcd: Option<tokio::process::Child>,
    /// A CTDB cluster node's smbd (`clustering = yes`).
    clustered: bool,
}

/// The smb.conf options of one server, as the plan gives them.
pub struct SambaConfig<'a> {
    pub global: &'a BTreeMap<String, String>,
    pub shares: Vec<(&'a str, &'a BTreeMap<String, String>)>,
    pub environment: &'a BTreeMap<String, String>,
    /// A cluster node's: options the harness sets for clustering, one NetBIOS name for
    /// every node, the share directories shared by every node, and no user added by
    /// `prepare` (the passdb is a clustered database: the cluster adds the user once ctdbd runs).
    pub cluster: Option<ClusterSide<'a>>,
    /// The container's mount namespace on a `provider: docker` node; `None` on netns.
    pub root: Option<Arc<OwnedFd>>,
}

pub struct ClusterSide<'a> {
    pub netbios: &'a str,
    pub shares_dir: &'a Path,
    pub ctdbd_socket: &'a Path,
    /// Run samba-dcerpcd (rpcd_witness) beside smbd.
    pub witness: bool,
}

impl SambaServer {
    /// Lay out the node directory, render smb.conf and start adding the user (finished by
    /// `start`). Does not start smbd.
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
        let shares_dir = match &config.cluster {
            Some(c) => c.shares_dir.to_path_buf(),
            None => dir.join("shares"),
        };
        for (share, _) in &config.shares {
            let path = shares_dir.join(share);
            mkdir(&path)?;
            nix::unistd::chown(&path, Some(uid), Some(gid))
                .map_err(|e| LabError::sys(format!("chown {}", path.display()), e))?;
        }
        let conf = render(name, &dir, &shares_dir, config);
        fs::write(dir.join("smb.conf"), conf)
            .map_err(|e| LabError::io(format!("write {}/smb.conf", dir.display()), e))?;
        let server = SambaServer {
            name: name.to_string(),
            address,
            ns,
            freezer,
            dir,
            smbd: None,
            shares: config.shares.iter().map(|(s, _)| s.to_string()).collect(),
            credentials: smb2::Credentials::new(user, password),
            passdb: None,
            environment: config.environment.clone(),
            root: config.root.clone(),
            lossy: Vec::new(),
            witness: config.cluster.as_ref().is_some_and(|c| c.witness),
            dcerpcd: None,
            clustered: config.cluster.is_some(),
        };
        if config.cluster.is_some() {
            return Ok(server);
        }
        // On the host's Samba the harness writes the passdb itself (crate::passdb): no
        // `smbpasswd` exec on the way to ready. A container's smbd gets its own smbpasswd's,
        // and so does a plan that picks another passdb backend.
        if server.root.is_none() && !config.global.contains_key("passdb backend") {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32);
            crate::passdb::write(
                &server.dir.join("private").join("passdb.tdb"),
                &netbios_name(name, config),
                user,
                password,
                now,
            )?;
            return Ok(server);
        }
        let (conf, user, password) = (server.conf_path(), user.to_string(), password.to_string());
        let command = server.smbpasswd()?;
        Ok(SambaServer {
            passdb: Some(tokio::spawn(async move {
                add_user(command, &conf, &user, &password).await
            })),
            ..server
        })
    }

    /// `smbpasswd` as this node runs it: in a container, the container's, so it writes the
    /// passdb the container's smbd reads (on a cluster, through the container's ctdbd).
    pub fn smbpasswd(&self) -> Result<tokio::process::Command, LabError> {
        match &self.root {
            Some(root) => process::command_in_root(&self.ns, &self.freezer, Some(root), SMBPASSWD),
            None => Ok(tokio::process::Command::new(SMBPASSWD)),
        }
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

    /// Start smbd (and samba-dcerpcd on a witness node) and wait until it serves every share.
    pub async fn start(&mut self) -> Result<(), LabError> {
        let started = Instant::now();
        self.spawn_smbd()?;
        if self.witness {
            self.spawn_dcerpcd()?;
        }
        let ready = self.wait_ready_inner(started).await;
        if self.witness && ready.is_ok() {
            self.wait_endpoint_mapper().await?;
        }
        ready
    }

    /// samba-dcerpcd's endpoint mapper accepts connections on the node's address.
    async fn wait_endpoint_mapper(&mut self) -> Result<(), LabError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let target = SocketAddr::from((self.address, 135));
        loop {
            match connect_in(&self.ns, target).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(LabError::NotReady {
                        node: self.name.clone(),
                        detail: format!(
                            "samba-dcerpcd's endpoint mapper (witness) not listening on {target} within {READY_TIMEOUT:?}: {e}; see {}",
                            self.log_dir().join("dcerpcd.stdout").display()
                        ),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn wait_ready_inner(&mut self, started: Instant) -> Result<(), LabError> {
        if let Some(passdb) = self.passdb.take() {
            passdb
                .await
                .map_err(|e| LabError::Other(format!("smbpasswd task: {e}")))??;
            tracing::debug!(
                "{}: smbpasswd done after {:?}",
                self.name,
                started.elapsed()
            );
        }
        let ready = self.wait_ready().await;
        tracing::debug!("{}: smbd ready after {:?}", self.name, started.elapsed());
        ready
    }

    fn spawn_smbd(&mut self) -> Result<(), LabError> {
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
        let child = process::command_in_root(&self.ns, &self.freezer, self.root.as_ref(), SMBD)?
            .args(["--foreground", "--no-process-group", "-s"])
            .arg(self.conf_path())
            .envs(&self.environment)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LabError::io(format!("start {SMBD} (is samba installed?)"), e))?;
        self.smbd = Some(child);
        Ok(())
    }

    /// samba-dcerpcd with every RPC helper started at once (`--libexec-rpcds`): its endpoint
    /// mapper on 135 and rpcd_witness. A running one is left alone (a heal that restarts
    /// only smbd).
    fn spawn_dcerpcd(&mut self) -> Result<(), LabError> {
        if let Some(child) = self.dcerpcd.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                return Ok(());
            }
        }
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir().join("dcerpcd.stdout"))
            .map_err(|e| LabError::io("open samba-dcerpcd output log", e))?;
        let err = out
            .try_clone()
            .map_err(|e| LabError::io("dup samba-dcerpcd output log", e))?;
        let child =
            process::command_in_root(&self.ns, &self.freezer, self.root.as_ref(), SAMBA_DCERPCD)?
                .args(["--libexec-rpcds", "--foreground", "--no-process-group"])
                .arg(format!("--configfile={}", self.conf_path().display()))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| {
                    LabError::io(
                        format!(
                            "start {SAMBA_DCERPCD} (Samba 4.20 or later is needed for witness)"
                        ),
                        e,
                    )
                })?;
        self.dcerpcd = Some(child);
        Ok(())
    }

    /// `net witness <args>` with this node's smb.conf, as the node runs it; its output.
    pub async fn net_witness(&self, args: &[&str]) -> Result<String, LabError> {
        let mut cmd = match &self.root {
            Some(root) => process::command_in_root(&self.ns, &self.freezer, Some(root), NET)?,
            None => tokio::process::Command::new(NET),
        };
        cmd.arg(format!("--configfile={}", self.conf_path().display()))
            .arg("witness")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .map_err(|_| {
                LabError::Other(format!(
                    "`net witness {}` on {}: no end within 30 s",
                    args.join(" "),
                    self.name
                ))
            })?
            .map_err(|e| LabError::io(format!("run {NET} on {}", self.name), e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(LabError::Other(format!(
                "`net witness {}` on {} failed ({}): {}",
                args.join(" "),
                self.name,
                out.status,
                text.trim()
            )));
        }
        Ok(text)
    }

    /// Wait until smbd serves every share: a session as the lab user is set up and each share's
    /// TREE_CONNECT succeeds, with our own SMB client. Also how every heal is verified.
    /// A server that answers but refuses a share fails at once (waiting will not fix it),
    /// naming the share, the NTSTATUS, the smbd log lines that explain it and the fix.
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
                            "smbd exited with {status}; its log says:{}",
                            indent(&explaining_lines(&self.log_dir()))
                        ),
                    });
                }
            }
            match connect_in(&self.ns, target).await {
                Ok(stream) => match self.connect_shares(stream).await {
                    Ok(()) => return Ok(()),
                    // A clustered smbd answered TREE_CONNECT with STATUS_NO_MEMORY on a
                    // loaded machine (twice in one plan-set run, nothing in its log) and
                    // served the same share in every other run: asked again until the
                    // deadline, and reported if it persists.
                    Err(Refused { share, error })
                        if self.clustered
                            && matches!(
                                &error.error,
                                smb2::Error::Status { status, .. }
                                    if *status == smb2::NtStatus::STATUS_NO_MEMORY
                            ) =>
                    {
                        last = format!("{share}: {}", error.error);
                        tracing::warn!(node = %self.name, "clustered smbd: TREE_CONNECT to {share}: {}; asking again", error.error);
                    }
                    Err(Refused { share, error }) => {
                        return Err(self.share_unavailable(share, error));
                    }
                    Err(NotYet(e)) => last = e,
                },
                Err(e) => last = e.to_string(),
            }
            // Port 445 is not listening yet: poll again shortly (readiness is the answer
            // itself; this only paces the polling).
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(LabError::NotReady {
            node: self.name.clone(),
            detail: format!("no share answered within {READY_TIMEOUT:?}: {last}"),
        })
    }

    /// One connection: the first share through [`smb2::connect_tree`], the others as further
    /// trees of the same session.
    async fn connect_shares(&self, stream: tokio::net::TcpStream) -> Result<(), Readiness> {
        let Some(first) = self.shares.first() else {
            // A server without shares is ready when a session can be set up on IPC$.
            return self.connect_one(stream, "IPC$").await.map(|_| ());
        };
        let connected = self.connect_one(stream, first).await?;
        for share in &self.shares[1..] {
            let request = smb2::wire::tree_connect::TreeConnectRequest {
                flags: 0,
                path: self.unc(share),
            };
            let opts = smb2::RequestOptions {
                timeout: Some(PROBE_TIMEOUT),
                ..Default::default()
            };
            connected
                .session
                .tree_connect_with(&request, &opts)
                .await
                .map_err(|error| Readiness::classify(share, smb2::Step::TreeConnect, error))?;
        }
        connected.connection.close().await;
        Ok(())
    }

    async fn connect_one(
        &self,
        stream: tokio::net::TcpStream,
        share: &str,
    ) -> Result<smb2::Connected, Readiness> {
        let mut opts = smb2::TreeConnectOptions::new(self.credentials.clone(), self.unc(share));
        opts.timeout = PROBE_TIMEOUT;
        smb2::connect_tree(stream, &opts)
            .await
            .map_err(|e| Readiness::classify(share, e.step, e.error))
    }

    fn unc(&self, share: &str) -> String {
        format!(r"\\{}\{share}", self.address)
    }

    fn share_unavailable(&self, share: String, error: smb2::ConnectError) -> LabError {
        let log = explaining_lines(&self.log_dir());
        let status = match &error.error {
            smb2::Error::Status { status, .. } => status.to_string(),
            other => other.to_string(),
        };
        let fix = crate::capabilities::fix_for_share(&status, &log);
        LabError::ShareUnavailable(Box::new(crate::ShareUnavailable {
            node: self.name.clone(),
            share,
            step: error.step.to_string(),
            status,
            log,
            fix,
        }))
    }

    /// SIGTERM the main smbd and wait for every process of the node to exit. Returns the pids
    /// that were running.
    pub async fn stop(&mut self) -> Result<Vec<i32>, LabError> {
        let running = self.pids();
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
        self.kill().await?;
        Ok(running)
    }

    /// The pids of every process of the node.
    pub fn pids(&self) -> Vec<i32> {
        self.freezer.pids().iter().map(|p| p.as_raw()).collect()
    }

    /// SIGKILL every process of the node. Returns the pids killed.
    ///
    /// The signals go out right here, the main smbd's first (it holds the listening socket,
    /// so its death is the kill's first effect at a client); no thread is started. Then the
    /// group is thawed if it was frozen (a frozen process dies only once thawed) and the
    /// call waits, without blocking the runtime, until every process is gone.
    pub async fn kill(&mut self) -> Result<Vec<i32>, LabError> {
        const KILL_TIMEOUT: Duration = Duration::from_secs(10);
        if let Some(pid) = self.smbd.as_ref().and_then(|c| c.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let killed = self.pids();
        if !self.freezer.path().exists() {
            self.smbd = None;
            return Ok(killed);
        }
        self.freezer.signal_all(Signal::SIGKILL);
        if self.freezer.is_frozen() {
            self.freezer.thaw()?;
        }
        if let Some(mut child) = self.smbd.take() {
            let _ = tokio::time::timeout(KILL_TIMEOUT, child.wait()).await;
        }
        // The main smbd is reaped; its children (and a fork caught mid-way) may still be
        // exiting. Polling paces the wait: the effect has landed already.
        let deadline = Instant::now() + KILL_TIMEOUT;
        while self.freezer.signal_all(Signal::SIGKILL) > 0 {
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "processes {:?} of {} survived SIGKILL",
                    self.pids(),
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(mut child) = self.dcerpcd.take() {
            let _ = child.wait().await;
        }
        Ok(killed)
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

    /// Put `share` on a lossy disk: its directory becomes the mount point of a FUSE
    /// passthrough over `<node>/lossy/<share>` (owned, like the share, by the lab user).
    pub fn mount_lossy(&mut self, share: &str) -> Result<(), LabError> {
        let backing = self.dir.join("lossy").join(share);
        mkdir(&backing)?;
        let (uid, gid) = unix_user()?;
        nix::unistd::chown(&backing, Some(uid), Some(gid))
            .map_err(|e| LabError::sys(format!("chown {}", backing.display()), e))?;
        let disk =
            crate::lossy::LossyDisk::mount(&backing, &self.share_path(share), self.root.clone())
                .map_err(|e| LabError::Other(e.to_string()))?;
        self.lossy.push((share.to_string(), disk));
        Ok(())
    }

    /// Power cut: SIGKILL every process of the node, then every lossy disk loses what was
    /// not synced and is mounted again. smbd stays down (the heal starts it). Returns the
    /// pids killed and, per lossy share, what was discarded.
    pub async fn power_cut(
        &mut self,
    ) -> Result<(Vec<i32>, Vec<(String, crate::lossy::Discarded)>), LabError> {
        let killed = self.kill().await?;
        let mut discarded = Vec::new();
        for (share, disk) in &mut self.lossy {
            let d = disk
                .power_cut()
                .map_err(|e| LabError::Other(e.to_string()))?;
            discarded.push((share.clone(), d));
        }
        Ok((killed, discarded))
    }

    /// Unmount the lossy disks (before the lab directory is removed).
    pub fn unmount_lossy(&mut self) {
        self.lossy.clear();
    }

    /// Kill and start again; returns the pids killed.
    pub async fn restart(&mut self) -> Result<Vec<i32>, LabError> {
        let killed = self.kill().await?;
        self.start().await?;
        Ok(killed)
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

    /// Has the smbd this server started exited (killed from outside, or died)?
    pub fn smbd_exited(&mut self) -> bool {
        self.smbd
            .as_mut()
            .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Reap and forget the smbd after it was killed from outside.
    pub async fn forget_smbd(&mut self) {
        if let Some(mut child) = self.smbd.take() {
            let _ = child.wait().await;
        }
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

/// The server's NetBIOS name: the plan's `netbios name`, else the node's (a cluster's: the
/// cluster's), upper case, at most 15 characters.
fn netbios_name(name: &str, config: &SambaConfig<'_>) -> String {
    let name = match config.global.get("netbios name") {
        Some(n) => n.as_str(),
        None => config.cluster.as_ref().map_or(name, |c| c.netbios),
    };
    name.to_uppercase().chars().take(15).collect()
}

fn render(name: &str, dir: &Path, shares_dir: &Path, config: &SambaConfig<'_>) -> String {
    let netbios = netbios_name(name, config);
    let mut conf = TEMPLATE
        .replace("@DIR@", &dir.display().to_string())
        .replace("@NETBIOS@", &netbios);
    if let Some(c) = &config.cluster {
        let _ = writeln!(conf, "\tclustering = yes");
        let _ = writeln!(conf, "\tctdbd socket = {}", c.ctdbd_socket.display());
        if c.witness {
            // samba-dcerpcd is started by the harness, with every helper (rpcd_witness).
            let _ = writeln!(conf, "\trpc start on demand helpers = no");
        }
    }
    for (key, value) in config.global {
        let _ = writeln!(conf, "\t{key} = {value}");
    }
    for (share, options) in &config.shares {
        let _ = writeln!(conf, "\n[{share}]");
        let _ = writeln!(conf, "\tpath = {}", shares_dir.join(share).display());
        let _ = writeln!(conf, "\tread only = no");
        let _ = writeln!(
            conf,
            "\tvfs objects = {}",
            crate::capabilities::HARNESS_VFS_MODULES.join(" ")
        );
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
pub(crate) fn unix_user() -> Result<(nix::unistd::Uid, nix::unistd::Gid), LabError> {
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

/// The lines of smbd's log that explain a failure: errors and refusals, newest last, at most 12.
pub fn explaining_lines(log_dir: &Path) -> Vec<String> {
    const WORDS: [&str; 8] = [
        "error",
        "fail",
        "cannot",
        "can't",
        "unable",
        "denied",
        "not found",
        "refus",
    ];
    let text = fs::read_to_string(log_dir.join("log.smbd")).unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // Samba's header lines (`[2026/11/30 ..., 0] ../../source3/...`) say where, not what.
        if line.starts_with('[') {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if WORDS.iter().any(|w| lower.contains(w)) && !out.iter().any(|o| o == line) {
            out.push(line.to_string());
        }
    }
    let keep = out.len().saturating_sub(12);
    out.split_off(keep)
}

pub(crate) fn indent(lines: &[String]) -> String {
    if lines.is_empty() {
        return " (nothing)".into();
    }
    lines.iter().map(|l| format!("\n    {l}")).collect()
}

/// `smbpasswd -a user` against the node's smb.conf, the password on stdin.
pub async fn add_user(
    mut command: tokio::process::Command,
    conf: &Path,
    user: &str,
    password: &str,
) -> Result<(), LabError> {
    let mut child = command
        .args([
            "-c".as_ref(),
            conf.as_os_str(),
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
