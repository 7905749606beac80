//! A CTDB cluster in the lab: nodes that each run ctdbd and clustered smbd, share one
//! directory (the shares and the recovery lock, under the run directory), and are reached
//! through public addresses CTDB moves between them.
//!
//! Ready means: every node OK in `ctdb status`, every public address
//! hosted, every node's smbd serving every share, and a TREE_CONNECT answered through every
//! public address. Every heal of a cluster fault is verified the same way.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ctdb::{ClusterStatus, CtdbNode};
use crate::netns::NetNs;
use crate::{samba, Lab, LabError};

/// From ctdbd started to every node OK with every address hosted: ~9 s with the harness's
/// tunables; a node rejoining after a crash takes about as long.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(45);
/// `ctdb stop`, `disable`, `ban` return once the node is out, after a recovery: seconds
/// under load.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two looks at `ctdb status` while waiting (the wait is for ctdb's own state).
const POLL: Duration = Duration::from_millis(100);

pub struct ClusterLab {
    pub name: String,
    /// Node names in PNN order.
    pub nodes: Vec<String>,
    pub public_addresses: Vec<Ipv4Addr>,
    /// The nodes' interface to the public network, and its prefix length.
    pub public_interface: String,
    pub public_prefix_len: u8,
    /// Shares and the recovery lock: one directory every node uses.
    pub shared_dir: PathBuf,
    pub ctdb: Vec<tokio::sync::Mutex<CtdbNode>>,
    /// Where public addresses are probed from: a client's namespace when the plan has one.
    pub probe_ns: Arc<NetNs>,
    pub shares: Vec<String>,
    /// Nodes being brought back by a heal right now: another heal's verification waits for
    /// them rather than judging a node half-way through its restart.
    pub restoring: std::sync::atomic::AtomicUsize,
}

/// Counts a restore in progress for as long as it lives.
struct Restoring<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Restoring<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Restoring(n)
    }
}

impl Drop for Restoring<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Which daemon of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    Ctdbd,
    Smbd,
}

impl Lab {
    pub fn cluster(&self, name: &str) -> Option<&ClusterLab> {
        self.clusters.get(name)
    }

    pub fn clusters(&self) -> impl Iterator<Item = &ClusterLab> {
        self.clusters.values()
    }

    /// The cluster a node belongs to, with its PNN.
    pub fn cluster_of(&self, node: &str) -> Option<(&ClusterLab, usize)> {
        self.clusters
            .values()
            .find_map(|c| c.nodes.iter().position(|n| n == node).map(|pnn| (c, pnn)))
    }

    /// The address a client connects to for `server`: the server's own, or for a cluster
    /// `via` if pinned, else its public addresses in turn by client index (DNS round-robin).
    pub fn service_address(&self, server: &str, index: usize, via: Option<Ipv4Addr>) -> Ipv4Addr {
        match self.clusters.get(server) {
            Some(c) => via.unwrap_or(c.public_addresses[index % c.public_addresses.len()]),
            None => self.address(server),
        }
    }

    /// `service_address` as client node `from` reaches it: a server's address on the first
    /// network both join.
    pub fn service_address_from(
        &self,
        from: &str,
        server: &str,
        index: usize,
        via: Option<Ipv4Addr>,
    ) -> Ipv4Addr {
        match self.clusters.contains_key(server) {
            true => self.service_address(server, index, via),
            false => self.address_towards(from, server),
        }
    }

    /// Start every node's ctdbd, wait for a healthy cluster, add the lab user (the passdb
    /// is clustered: once is enough), start every smbd, and wait until ready.
    pub(crate) async fn start_cluster(&self, name: &str) -> Result<(), LabError> {
        let cluster = &self.clusters[name];
        let began = Instant::now();
        for ctdb in &cluster.ctdb {
            ctdb.lock().await.start()?;
        }
        // smbd needs ctdbd's databases, not a healthy node: it starts once every node has
        // finished its first recovery (runstate STARTUP), as CTDB's own 50.samba event starts
        // it in the "startup" event, so smbd's start overlaps the seconds CTDB then waits
        // before its first monitor event marks the node healthy.
        let all: Vec<usize> = (0..cluster.nodes.len()).collect();
        self.wait_cluster_started(name, &all, HEALTHY_TIMEOUT)
            .await?;
        tracing::debug!(cluster = name, "ctdb recovered after {:?}", began.elapsed());
        let (smbpasswd, first) = {
            let first = self.server(&cluster.nodes[0])?.lock().await;
            (first.smbpasswd()?, first.conf_path())
        };
        samba::add_user(smbpasswd, &first, &self.user, &self.password).await?;
        tracing::debug!(cluster = name, "user added after {:?}", began.elapsed());
        // One node's smbd at a time: clustered smbds starting together contend for the
        // version lock in a clustered database (`smbd_claim_version: g_lock_lock failed:
        // NT_STATUS_POSSIBLE_DEADLOCK ... refusing to start`), seen once in CI.
        for n in &cluster.nodes {
            self.server(n)?.lock().await.start().await?;
            tracing::debug!(
                cluster = name,
                "smbd of {n} serving after {:?}",
                began.elapsed()
            );
        }
        self.wait_cluster_healthy(name, HEALTHY_TIMEOUT).await?;
        tracing::debug!(cluster = name, "ctdb healthy after {:?}", began.elapsed());
        self.wait_public_ready(name).await?;
        tracing::debug!(
            cluster = name,
            "every public address answers after {:?}",
            began.elapsed()
        );
        Ok(())
    }

    /// `ctdb -X status` and `ctdb ip` as the best-informed running node sees them: the view
    /// with the most nodes OK (a node whose ctdbd just restarted sees every other node as
    /// disconnected until it has joined).
    pub async fn cluster_status(&self, name: &str) -> Result<ClusterStatus, LabError> {
        let cluster = self
            .clusters
            .get(name)
            .ok_or_else(|| LabError::NoSuchNode(format!("{name} (cluster)")))?;
        let mut last = LabError::Other(format!("no ctdbd of cluster {name} is running"));
        let mut best: Option<ClusterStatus> = None;
        for ctdb in &cluster.ctdb {
            let mut ctdb = ctdb.lock().await;
            if !ctdb.is_running() || self.node(&ctdb.name)?.freezer.is_frozen() {
                continue;
            }
            let view = match ctdb.ctl(&["-X", "status"]).await {
                Ok(status) => match ctdb.ctl(&["ip"]).await {
                    Ok(ip) => ClusterStatus::parse(&status, &ip),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                },
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let ok = |s: &ClusterStatus| s.nodes.iter().filter(|f| *f == "OK").count();
            let everyone = ok(&view) == view.nodes.len();
            if best.as_ref().is_none_or(|b| ok(&view) > ok(b)) {
                best = Some(view);
            }
            // No view can be better informed than one with every node OK.
            if everyone {
                break;
            }
        }
        best.ok_or(last)
    }

    /// Wait until every node is OK, recovery is over and every public address is hosted.
    pub async fn wait_cluster_healthy(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<ClusterStatus, LabError> {
        let deadline = Instant::now() + timeout;
        let mut seen = String::from("no answer yet");
        while Instant::now() < deadline {
            match self.cluster_status(name).await {
                Ok(s) if s.healthy() => return Ok(s),
                Ok(s) => seen = format!("{s:?}"),
                Err(e) => seen = e.to_string(),
            }
            self.check_ctdbd_alive(name).await?;
            tokio::time::sleep(POLL).await;
        }
        Err(LabError::NotReady {
            node: name.to_string(),
            detail: format!(
                "cluster not healthy (every node OK, every public address hosted) within {timeout:?}; last seen: {seen}"
            ),
        })
    }

    /// Wait until every node's ctdbd has finished its first recovery (runstate STARTUP or
    /// RUNNING): its databases can be attached and written, so smbd and smbpasswd can start.
    async fn wait_cluster_started(
        &self,
        name: &str,
        pnns: &[usize],
        timeout: Duration,
    ) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        let mut seen = String::from("no answer yet");
        while Instant::now() < deadline {
            let mut started = 0;
            for &pnn in pnns {
                let mut ctdb = self.clusters[name].ctdb[pnn].lock().await;
                // `ctdb runstate A B` fails unless the node is in one of them.
                match ctdb.ctl(&["runstate", "startup", "running"]).await {
                    Ok(_) => started += 1,
                    Err(e) => seen = e.to_string(),
                }
            }
            if started == pnns.len() {
                return Ok(());
            }
            self.check_ctdbd_alive(name).await?;
            tokio::time::sleep(POLL).await;
        }
        Err(LabError::NotReady {
            node: name.to_string(),
            detail: format!(
                "ctdbd not past its first recovery on every node within {timeout:?}; last seen: {seen}"
            ),
        })
    }

    /// A ctdbd that exited on its own will not come back: say so at once, with its log.
    async fn check_ctdbd_alive(&self, name: &str) -> Result<(), LabError> {
        for ctdb in &self.clusters[name].ctdb {
            let mut ctdb = ctdb.lock().await;
            if ctdb.pid().is_some() && !ctdb.is_running() {
                let log = std::fs::read_to_string(ctdb.log_dir().join("ctdbd.stderr"))
                    .unwrap_or_default();
                let tail: Vec<String> = log.lines().rev().take(12).map(String::from).collect();
                return Err(LabError::ServerDied {
                    node: ctdb.name.clone(),
                    detail: format!(
                        "ctdbd exited; its log ends:{}",
                        samba::indent(&tail.into_iter().rev().collect::<Vec<_>>())
                    ),
                });
            }
        }
        Ok(())
    }

    /// A session and TREE_CONNECT to every share through every public address, from the
    /// probe namespace.
    pub async fn wait_public_ready(&self, name: &str) -> Result<(), LabError> {
        let cluster = &self.clusters[name];
        let deadline = Instant::now() + Duration::from_secs(20);
        for &address in &cluster.public_addresses {
            loop {
                let Err(last) = self.tree_connect_via(cluster, address).await else {
                    break;
                };
                if Instant::now() > deadline {
                    return Err(LabError::NotReady {
                        node: name.to_string(),
                        detail: format!("no TREE_CONNECT answered through {address}: {last}"),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    async fn tree_connect_via(
        &self,
        cluster: &ClusterLab,
        address: Ipv4Addr,
    ) -> Result<(), String> {
        for share in &cluster.shares {
            let stream = samba::connect_in(&cluster.probe_ns, SocketAddr::from((address, 445)))
                .await
                .map_err(|e| e.to_string())?;
            let mut opts = smb2::TreeConnectOptions::new(
                smb2::Credentials::new(&self.user, &self.password),
                format!(r"\\{address}\{share}"),
            );
            opts.timeout = Duration::from_secs(5);
            let connected = smb2::connect_tree(stream, &opts)
                .await
                .map_err(|e| format!("{share}: {} {}", e.step, e.error))?;
            connected.connection.close().await;
        }
        Ok(())
    }

    /// Every process of a cluster node SIGKILLed at once (ctdbd, its helpers, smbd).
    pub async fn cluster_kill_node(&self, node: &str) -> Result<Vec<i32>, LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let killed = self.server(node)?.lock().await.kill().await?;
        cluster.ctdb[pnn].lock().await.reap().await;
        Ok(killed)
    }

    /// SIGKILL one daemon of a cluster node. Killing smbd kills every smbd of the node.
    pub async fn cluster_kill_daemon(
        &self,
        node: &str,
        daemon: Daemon,
    ) -> Result<Vec<i32>, LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        match daemon {
            Daemon::Ctdbd => Ok(cluster.ctdb[pnn].lock().await.kill().await),
            Daemon::Smbd => {
                let samba = self.server(node)?.lock().await;
                let smbds: Vec<i32> = samba
                    .pids()
                    .into_iter()
                    .filter(|p| {
                        std::fs::read_to_string(format!("/proc/{p}/comm"))
                            .is_ok_and(|c| c.trim().starts_with("smbd"))
                    })
                    .collect();
                drop(samba);
                for p in &smbds {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                self.server(node)?.lock().await.forget_smbd().await;
                Ok(smbds)
            }
        }
    }

    /// A crashed machine comes back without the addresses it held: take the public
    /// addresses off the node's interface before its links return.
    pub async fn cluster_forget_addresses(&self, node: &str) -> Result<(), LabError> {
        let (cluster, _) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let ns = self.netns_name(node)?.to_string();
        for a in &cluster.public_addresses {
            // Absent addresses fail harmlessly: only those still configured are removed.
            let _ = tokio::process::Command::new("ip")
                .args(["-n", &ns, "addr", "del"])
                .arg(format!("{a}/{}", cluster.public_prefix_len))
                .args(["dev", &cluster.public_interface])
                .output()
                .await;
        }
        Ok(())
    }

    /// Start whatever of the node is not running (ctdbd, then smbd once the node's ctdbd has
    /// finished its first recovery, as at `lab up`) and verify the whole cluster ready.
    pub async fn cluster_restore_node(&self, node: &str) -> Result<(), LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let restoring = Restoring::new(&cluster.restoring);
        {
            let mut ctdb = cluster.ctdb[pnn].lock().await;
            if !ctdb.is_running() {
                ctdb.start()?;
            }
        }
        self.wait_cluster_started(&cluster.name, &[pnn], HEALTHY_TIMEOUT)
            .await?;
        {
            let mut samba = self.server(node)?.lock().await;
            if samba.smbd_exited() {
                samba.forget_smbd().await;
            }
            if !samba.is_running() {
                samba.start().await?;
            }
        }
        // This node is back; the cluster is judged once no other heal is restoring a node
        // (a rolling restart under load overlaps them: judged at once, this heal failed on
        // the next node's smbd, killed by its own restart meanwhile).
        drop(restoring);
        self.verify_cluster(&cluster.name).await
    }

    /// Healthy, every smbd serving, every public address answering TREE_CONNECT — once no
    /// other heal is still bringing a node of the cluster back.
    pub async fn verify_cluster(&self, name: &str) -> Result<(), LabError> {
        let restoring = &self.clusters[name].restoring;
        let busy = || restoring.load(std::sync::atomic::Ordering::SeqCst) > 0;
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        loop {
            while busy() {
                if Instant::now() > deadline {
                    return Err(LabError::NotReady {
                        node: name.to_string(),
                        detail: format!(
                            "another heal was still restoring a node after {HEALTHY_TIMEOUT:?}"
                        ),
                    });
                }
                tokio::time::sleep(POLL).await;
            }
            match self.check_cluster(name).await {
                // A restart began while this looked: judge once it is over.
                Err(e) if busy() && Instant::now() < deadline => {
                    tracing::info!(
                        cluster = name,
                        "a node restarted during the check ({e}): checking again after it"
                    );
                }
                done => return done,
            }
        }
    }

    async fn check_cluster(&self, name: &str) -> Result<(), LabError> {
        self.wait_cluster_healthy(name, HEALTHY_TIMEOUT).await?;
        for n in &self.clusters[name].nodes {
            self.server(n)?.lock().await.wait_ready().await?;
        }
        self.wait_public_ready(name).await
    }

    /// `ctdb moveip <address> <pnn of node>`, then wait until `node` hosts it.
    pub async fn cluster_moveip(
        &self,
        node: &str,
        address: Ipv4Addr,
    ) -> Result<ClusterStatus, LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let mut ctl = Err(LabError::Other("no ctdbd running".into()));
        for ctdb in &cluster.ctdb {
            let mut ctdb = ctdb.lock().await;
            if ctdb.is_running() {
                ctl = ctdb
                    .ctl(&["moveip", &address.to_string(), &pnn.to_string()])
                    .await;
                break;
            }
        }
        ctl?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.cluster_status(&cluster.name).await?;
            if s.addresses.get(&address) == Some(&(pnn as i32)) && s.healthy() {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "{address} not on {node} 15 s after moveip: {s:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `net witness client-move --witness-new-ip=<address>` on `node` (a witness cluster's):
    /// every registration with the cluster's Witness service is told to move. Returns
    /// `net`'s output.
    pub async fn cluster_client_move(
        &self,
        node: &str,
        address: Ipv4Addr,
    ) -> Result<String, LabError> {
        self.cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let server = self.server(node)?.lock().await;
        server
            .net_witness(&[
                "client-move",
                "--witness-net-name=.*",
                &format!("--witness-new-ip={address}"),
            ])
            .await
    }

    /// `ctdb <command>` on the node's own ctdbd (`stop`, `disable`, `ban <secs>`; and their
    /// undoing: `continue`, `enable`, `unban`).
    pub async fn cluster_admin(&self, node: &str, command: &[&str]) -> Result<(), LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let pid = cluster.ctdb[pnn].lock().await.running_pid()?;
        crate::ctdb::ctl(node, pid, command, ADMIN_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Wait until `node` hosts no public address and every address is hosted by another
    /// node (what `stop`, `disable` and `ban` lead to); returns where they went.
    pub async fn wait_addresses_left(
        &self,
        node: &str,
        timeout: Duration,
    ) -> Result<ClusterStatus, LabError> {
        let (cluster, pnn) = self
            .cluster_of(node)
            .ok_or_else(|| LabError::NoSuchNode(node.into()))?;
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.cluster_status(&cluster.name).await?;
            if s.addresses.values().all(|&n| n >= 0 && n != pnn as i32) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "{node} still holds (or no node took over) a public address {timeout:?} after it was taken out: {s:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every client node of the lab (what an `isolate` fault cuts a cluster node off from).
    pub fn client_nodes(&self) -> Vec<String> {
        self.nodes()
            .filter(|n| n.role == crate::Role::Client)
            .map(|n| n.name.clone())
            .collect()
    }

    /// The node of `server` whose socket table holds the connection from client address
    /// `client` (for a plain server: the server itself).
    pub async fn serving_node(&self, server: &str, client: SocketAddr) -> Option<String> {
        let Some(cluster) = self.clusters.get(server) else {
            return Some(server.to_string());
        };
        for n in &cluster.nodes {
            let ns = self.node(n).ok()?.ns.clone();
            let sockets = tokio::task::spawn_blocking(move || crate::sockdiag::established(&ns))
                .await
                .ok()?
                .unwrap_or_default();
            if sockets.iter().any(|(_, remote, _)| *remote == client) {
                return Some(n.clone());
            }
        }
        None
    }
}
