//! The lab: a plan's topology brought up for real. Each node is a network namespace with one
//! link to a switch that lives in a namespace of its own; servers run the Debian `smbd`.
//! Nothing is created in the host's root namespace, and no lab namespace has a default route.
//!
//! Every resource is recorded in a run-state file before it is made; tearing a lab down and
//! `smbchaos clean` are the same operation (`RunState::reclaim`).

pub mod capabilities;
pub mod cgroup;
pub mod cluster;
pub mod ctdb;
pub mod docker;
pub mod images;
pub mod links;
pub mod lossy;
pub mod netns;
mod passdb;
pub mod process;
pub mod runstate;
pub mod samba;
pub mod sockdiag;
pub mod wire;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::distr::{Alphanumeric, SampleString};

pub use cgroup::Freezer;
pub use netns::NetNs;
pub use runstate::{clean, CleanReport, RunState};
pub use samba::SambaServer;

/// Node directories (smb.conf, Samba state, shares, logs) live under here, one per run.
pub const LAB_DIR_ROOT: &str = "/var/tmp/smbchaos";

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        source: nix::errno::Errno,
    },
    #[error("{context}: {source}")]
    Netlink {
        context: String,
        source: rtnetlink::Error,
    },
    #[error("{0} already exists")]
    Exists(String),
    #[error("no node named `{0}` in this lab")]
    NoSuchNode(String),
    #[error("server {node} did not become ready: {detail}")]
    NotReady { node: String, detail: String },
    #[error("server {node} died while starting: {detail}")]
    ServerDied { node: String, detail: String },
    /// smbd answers but refuses a share: the lab is not what the plan says, so nothing runs.
    #[error(transparent)]
    ShareUnavailable(Box<ShareUnavailable>),
    #[error("{0}")]
    Other(String),
}

impl LabError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
    pub fn sys(context: impl Into<String>, source: nix::errno::Errno) -> Self {
        LabError::Sys {
            context: context.into(),
            source,
        }
    }
    pub fn netlink(context: impl Into<String>, source: rtnetlink::Error) -> Self {
        LabError::Netlink {
            context: context.into(),
            source,
        }
    }
}

/// A share smbd answers for but refuses, with what its log says and the fix.
#[derive(Debug, thiserror::Error)]
#[error(
    "server {node}: share `{share}` cannot be connected: {step} answered {status}\n  smbd's log says:{}\n  fix: {fix}",
    samba::indent(log)
)]
pub struct ShareUnavailable {
    pub node: String,
    pub share: String,
    pub step: String,
    pub status: String,
    pub log: Vec<String>,
    pub fix: String,
}

/// How to bring a lab up.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Short id carried by every resource of the run; random when `None`.
    pub run_id: Option<String>,
    /// Where the userspace wire writes `<node>.pcap`; no capture when `None`.
    pub capture_dir: Option<PathBuf>,
}

impl LabOptions {
    pub fn for_test(_name: &str) -> Self {
        LabOptions::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// One host of the lab.
pub struct Node {
    pub name: String,
    pub role: Role,
    /// Its address on its first network (`eth0`).
    pub address: Ipv4Addr,
    /// Its link to each network it joins, `eth0` first.
    pub links: Vec<plan::Attachment>,
    pub ns: Arc<NetNs>,
    pub freezer: Freezer,
    /// Resets go through this (opened in the node's namespace when it was made).
    pub diag: Arc<sockdiag::SockDiag>,
    /// Present on server nodes.
    pub samba: Option<tokio::sync::Mutex<SambaServer>>,
    /// Scratch directory of this node (client work files, exec output).
    pub dir: PathBuf,
}

pub struct Lab {
    run_id: String,
    dir: PathBuf,
    state: Mutex<RunState>,
    nodes: BTreeMap<String, Node>,
    user: String,
    password: String,
    /// The userspace wire, when the plan uses it.
    wire: Option<wire::Wire>,
    clusters: BTreeMap<String, cluster::ClusterLab>,
    /// The plan's networks (one, `lab`, when it declares none).
    networks: Vec<plan::NetworkSpec>,
    /// The plan declares networks: counters are named `<node>.<network>`.
    named_networks: bool,
    torn_down: bool,
}

impl Lab {
    /// Build the plan's topology, start every server and wait until each answers NEGOTIATE.
    /// On any failure, whatever was made is torn down before the error returns.
    pub async fn up(plan: &plan::Plan, options: LabOptions) -> Result<Lab, LabError> {
        let run_id = options.run_id.unwrap_or_else(new_run_id);
        let dir = Path::new(LAB_DIR_ROOT).join(&run_id);
        let state = RunState::create(&run_id, &plan.name, &dir)?;
        let mut lab = Lab {
            run_id,
            dir,
            state: Mutex::new(state),
            nodes: BTreeMap::new(),
            user: samba::UNIX_USER.to_string(),
            password: Alphanumeric.sample_string(&mut rand::rng(), 20),
            wire: None,
            clusters: BTreeMap::new(),
            networks: plan::networks(plan),
            named_networks: !plan.topology.networks.is_empty(),
            torn_down: false,
        };
        match lab.build(plan, options.capture_dir.as_deref()).await {
            Ok(()) => Ok(lab),
            Err(e) => {
                if let Err(down) = lab.teardown() {
                    tracing::error!("tearing down the half-built lab failed too: {down}");
                }
                Err(e)
            }
        }
    }

    async fn build(
        &mut self,
        plan: &plan::Plan,
        capture_dir: Option<&Path>,
    ) -> Result<(), LabError> {
        let t0 = std::time::Instant::now();
        let attachments = plan::attachments(plan);
        let topology = &plan.topology;
        let switch = match topology.wire {
            plan::WireKind::Kernel => {
                let switch = self.create_netns("sw")?;
                let handle = links::handle_in(&switch)?;
                links::create_switch(&handle).await?;
                Some(handle)
            }
            plan::WireKind::Userspace => None,
        };
        let mut ports = Vec::new();
        // capture_limit: the run's bytes shared evenly by every captured link.
        let captured_links = attachments
            .values()
            .flatten()
            .filter(|l| self.network(&l.network).capture)
            .count();
        let capture_limit = topology
            .capture_limit
            .as_ref()
            .map(|l| wire::pcap::Limit::share(l.value.max_bytes.0, captured_links, l.value.rotate));
        if let Some(dir) = capture_dir.filter(|_| topology.capture_snaplen > 0) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        }

        let servers = topology
            .servers
            .iter()
            .map(|s| (s.name.value.as_str(), Role::Server));
        let clients = topology
            .clients
            .iter()
            .map(|c| (c.name.value.as_str(), Role::Client));
        let cluster_nodes: Vec<String> = topology
            .clusters
            .iter()
            .flat_map(|c| c.node_names())
            .collect();
        let cluster_nodes = cluster_nodes.iter().map(|n| (n.as_str(), Role::Server));
        // provider: docker: each server's container, started before its TAP is made in it.
        let mut roots = docker_roots(plan)?;
        for (name, role) in servers.chain(cluster_nodes).chain(clients) {
            let ns = match roots.get_mut(name) {
                Some(root) => Arc::new(self.start_container(plan, name, root).await?),
                None => Arc::new(self.create_netns(name)?),
            };
            let diag = Arc::new(sockdiag::SockDiag::open_in(&ns)?);
            let freezer = Freezer::create(&self.run_id, name)?;
            self.state
                .lock()
                .expect("state lock")
                .record_cgroup(freezer.path())?;
            let node_links = attachments.get(name).cloned().unwrap_or_default();
            let Some(first) = node_links.first() else {
                return Err(LabError::Other(format!(
                    "node {name} has no address on any network (validate the plan)"
                )));
            };
            let address = first.address;
            match &switch {
                Some(switch) => {
                    let mtu = self.network(&first.network).mtu;
                    links::plug(switch, name, &ns, address, first.prefix_len, mtu).await?
                }
                None => {
                    links::prepare_node(&ns).await?;
                    for link in &node_links {
                        let net = self.network(&link.network).clone();
                        let tap = wire::tap::create(&ns, &link.interface)?;
                        links::configure_link(
                            name,
                            &ns,
                            &link.interface,
                            link.address,
                            link.prefix_len,
                            Some(net.mtu),
                        )
                        .await?;
                        let capture = match capture_dir
                            .filter(|_| topology.capture_snaplen > 0 && net.capture)
                        {
                            Some(dir) => {
                                let path = dir.join(self.pcap_name(name, &net.name));
                                Some(
                                    wire::pcap::Capture::create_limited(
                                        &path,
                                        topology.capture_snaplen as usize,
                                        capture_limit,
                                    )
                                    .map_err(|e| {
                                        LabError::io(format!("create {}", path.display()), e)
                                    })?,
                                )
                            }
                            None => None,
                        };
                        ports.push(wire::PortSpec {
                            node: name.to_string(),
                            network: net.name.clone(),
                            tap,
                            capture,
                            rate_cap: net.rate_bps,
                        });
                    }
                }
            }
            if node_links.len() > 1 {
                links::separate_networks(&ns)?;
            }
            if plan::cluster_of(plan, name).is_some() {
                // A node that just lost a public address must not forward its clients'
                // packets to the new owner: they must hit the new owner's RST themselves.
                ns.run(|| {
                    std::fs::write("/proc/sys/net/ipv4/ip_forward", "0")
                        .map_err(|e| LabError::io("set ip_forward=0", e))
                })?;
            }
            tracing::debug!("lab up: node {name} made after {:?}", t0.elapsed());
            let node_dir = self.dir.join(name);
            std::fs::create_dir_all(node_dir.join("work"))
                .map_err(|e| LabError::io(format!("create {}", node_dir.display()), e))?;
            self.nodes.insert(
                name.to_string(),
                Node {
                    name: name.to_string(),
                    role,
                    address,
                    links: node_links,
                    ns,
                    freezer,
                    diag,
                    samba: None,
                    dir: node_dir,
                },
            );
        }
        if switch.is_none() {
            let wire = wire::Wire::start(ports)
                .map_err(|e| LabError::io("start the userspace wire", e))?;
            if !topology.clusters.is_empty() {
                wire.watch_notable();
            }
            self.wire = Some(wire);
        }
        tracing::debug!("lab up: wire started after {:?}", t0.elapsed());
        // Servers start concurrently: readiness is what takes the time.
        let mut starting = Vec::new();
        for server in &plan.topology.servers {
            let node = &self.nodes[&server.name.value];
            let config = samba::SambaConfig {
                global: &server.global,
                shares: server
                    .shares
                    .iter()
                    .map(|s| (s.name.value.as_str(), &s.options))
                    .collect(),
                environment: &server.environment,
                cluster: None,
                root: roots.get(&node.name).cloned().flatten().map(|r| r.mnt),
            };
            let mut samba = SambaServer::prepare(
                &node.name,
                node.address,
                node.ns.clone(),
                node.freezer.clone(),
                node.dir.clone(),
                &config,
                &self.user,
                &self.password,
            )
            .await?;
            for share in &server.shares {
                if share.disk == plan::Disk::Lossy {
                    samba.mount_lossy(&share.name.value)?;
                }
            }
            let name = node.name.clone();
            starting.push(async move { samba.start().await.map(|()| (name, samba)) });
        }
        for cluster in &topology.clusters {
            self.prepare_cluster(plan, cluster, &roots).await?;
        }
        let clusters: Vec<String> = self.clusters.keys().cloned().collect();
        let this = &*self;
        let (servers, clusters) = futures::future::join(
            futures::future::join_all(starting),
            futures::future::join_all(clusters.iter().map(|c| this.start_cluster(c))),
        )
        .await;
        for r in clusters {
            r?;
        }
        for result in servers {
            let (name, samba) = result?;
            self.nodes.get_mut(&name).expect("node").samba = Some(tokio::sync::Mutex::new(samba));
        }
        Ok(())
    }

    /// Lay out a cluster: the shared directory, each node's ctdb and smb.conf.
    async fn prepare_cluster(
        &mut self,
        plan: &plan::Plan,
        spec: &plan::Cluster,
        roots: &BTreeMap<String, Option<docker::Root>>,
    ) -> Result<(), LabError> {
        let name = spec.name.value.clone();
        let node_names = spec.node_names();
        let publics = plan::public_addresses(plan)
            .remove(&name)
            .unwrap_or_default();
        let shared_dir = self.cluster_dir(&name);
        let lock_dir = shared_dir.join("lock");
        std::fs::create_dir_all(&lock_dir)
            .map_err(|e| LabError::io(format!("create {}", lock_dir.display()), e))?;
        // CTDB talks on the private network; the public addresses live on the public one.
        let private = plan::networks::private_network(plan, spec);
        let public = plan::networks::public_network(plan, spec);
        let link_of = |node: &str, network: &str| -> Result<plan::Attachment, LabError> {
            self.nodes[node]
                .links
                .iter()
                .find(|l| l.network == network)
                .cloned()
                .ok_or_else(|| LabError::Other(format!("{node} has no link to network {network}")))
        };
        let addresses: Vec<Ipv4Addr> = node_names
            .iter()
            .map(|n| Ok(link_of(n, &private)?.address))
            .collect::<Result<_, LabError>>()?;
        let public_link = link_of(&node_names[0], &public)?;
        let shares_dir = shared_dir.join("shares");
        let netbios = name.clone();
        let no_environment = BTreeMap::new();
        let mut ctdbs = Vec::new();
        for (pnn, n) in node_names.iter().enumerate() {
            let node = &self.nodes[n];
            let root = roots.get(n).cloned().flatten();
            let package_etc = match &root {
                Some(r) => r.host_path("/etc/ctdb"),
                None => PathBuf::from("/etc/ctdb"),
            };
            let ctdb = ctdb::CtdbNode::prepare(
                n,
                pnn,
                node.ns.clone(),
                node.freezer.clone(),
                node.dir.join("ctdb"),
                &ctdb::CtdbConfig {
                    node_address: addresses[pnn],
                    nodes: &addresses,
                    public_addresses: &publics,
                    recovery_lock: &lock_dir.join("reclock"),
                    tunables: &spec.tunables,
                    interface: &public_link.interface,
                    public_prefix_len: public_link.prefix_len,
                    root: root.as_ref().map(|r| r.mnt.clone()),
                    package_etc: &package_etc,
                },
            )?;
            let config = samba::SambaConfig {
                global: &spec.global,
                // The planted-bug environment is a single-server feature for now.
                environment: &no_environment,
                shares: spec
                    .shares
                    .iter()
                    .map(|s| (s.name.value.as_str(), &s.options))
                    .collect(),
                root: root.map(|r| r.mnt),
                cluster: Some(samba::ClusterSide {
                    netbios: &netbios,
                    shares_dir: &shares_dir,
                    ctdbd_socket: &ctdb.socket(),
                    witness: spec.witness.value,
                }),
            };
            let samba = SambaServer::prepare(
                n,
                node.address,
                node.ns.clone(),
                node.freezer.clone(),
                node.dir.clone(),
                &config,
                &self.user,
                &self.password,
            )
            .await?;
            ctdbs.push(tokio::sync::Mutex::new(ctdb));
            self.nodes.get_mut(n).expect("node").samba = Some(tokio::sync::Mutex::new(samba));
        }
        // A client on the public network, as the cluster's clients are.
        let probe = plan.topology.clients.iter().find(|c| {
            self.nodes[&c.name.value]
                .links
                .iter()
                .any(|l| l.network == public)
        });
        let probe_ns = match probe {
            Some(c) => self.nodes[&c.name.value].ns.clone(),
            None => self.nodes[&node_names[0]].ns.clone(),
        };
        self.clusters.insert(
            name.clone(),
            cluster::ClusterLab {
                name,
                nodes: node_names,
                public_addresses: publics,
                public_interface: public_link.interface.clone(),
                public_prefix_len: public_link.prefix_len,
                shared_dir,
                ctdb: ctdbs,
                probe_ns,
                shares: spec.shares.iter().map(|s| s.name.value.clone()).collect(),
                restoring: Default::default(),
            },
        );
        Ok(())
    }

    /// Start server or cluster node `name`'s container (crate::docker); its network
    /// namespace is named as `create_netns` would name it, and its filesystem goes to `root`.
    /// A cluster node's container also gets the cluster's shared directory.
    async fn start_container(
        &self,
        plan: &plan::Plan,
        name: &str,
        root: &mut Option<docker::Root>,
    ) -> Result<NetNs, LabError> {
        let server = plan.topology.servers.iter().find(|s| s.name.value == name);
        let cluster = plan::cluster_of(plan, name);
        let version = server
            .map(|s| s.samba)
            .or(cluster.map(|c| c.samba))
            .unwrap_or_default();
        let image = images::require_samba(version)?;
        let netns = format!("{}{}-{name}", runstate::NETNS_PREFIX, self.run_id);
        let shared = cluster.map(|c| self.cluster_dir(&c.name.value));
        if let Some(dir) = &shared {
            std::fs::create_dir_all(dir)
                .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
        }
        let node = docker::start(
            &self.state,
            &self.run_id,
            name,
            &netns,
            &image,
            &self.dir.join(name),
            shared.as_deref().as_slice(),
        )
        .await?;
        *root = Some(node.root);
        Ok(node.ns)
    }

    /// A cluster's shared directory (shares and recovery lock), under the run directory.
    fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.dir.join("clusters").join(cluster)
    }

    /// Record, then create, the namespace `sc-<run id>-<suffix>`.
    fn create_netns(&self, suffix: &str) -> Result<NetNs, LabError> {
        let name = format!("{}{}-{suffix}", runstate::NETNS_PREFIX, self.run_id);
        self.state.lock().expect("state lock").record_netns(&name)?;
        NetNs::create(&name)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn node(&self, name: &str) -> Result<&Node, LabError> {
        self.nodes
            .get(name)
            .ok_or_else(|| LabError::NoSuchNode(name.to_string()))
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The address of a node (on its first network). Panics on an unknown name (plans are
    /// validated before a lab exists, so a wrong name here is a programming error).
    pub fn address(&self, node: &str) -> Ipv4Addr {
        match self.clusters.get(node) {
            Some(c) => c.public_addresses[0],
            None => self.nodes[node].address,
        }
    }

    /// The plan's networks (one, `lab`, when it declares none).
    pub fn networks(&self) -> &[plan::NetworkSpec] {
        &self.networks
    }

    fn network(&self, name: &str) -> &plan::NetworkSpec {
        self.networks
            .iter()
            .find(|n| n.name == name)
            .unwrap_or(&self.networks[0])
    }

    /// `<node>.pcap` in a plan without networks, else `<node>.<network>.pcap`.
    fn pcap_name(&self, node: &str, network: &str) -> String {
        match self.named_networks {
            false => format!("{node}.pcap"),
            true => format!("{node}.{network}.pcap"),
        }
    }

    /// A node's address on `network`, if it joins it.
    pub fn address_on(&self, node: &str, network: &str) -> Option<Ipv4Addr> {
        let node = self.nodes.get(node)?;
        node.links
            .iter()
            .find(|l| l.network == network)
            .map(|l| l.address)
    }

    /// The networks `a` and `b` both join, in `a`'s interface order.
    pub fn shared_networks(&self, a: &str, b: &str) -> Vec<String> {
        let (Some(na), Some(nb)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return Vec::new();
        };
        na.links
            .iter()
            .filter(|l| nb.links.iter().any(|m| m.network == l.network))
            .map(|l| l.network.clone())
            .collect()
    }

    /// The address `from` reaches `to` at: `to`'s address on the first network they share
    /// (a cluster: its first public address), else `to`'s first address.
    pub fn address_towards(&self, from: &str, to: &str) -> Ipv4Addr {
        if self.clusters.contains_key(to) {
            return self.address(to);
        }
        self.shared_networks(from, to)
            .first()
            .and_then(|n| self.address_on(to, n))
            .unwrap_or_else(|| self.address(to))
    }

    /// The Samba user and this run's password.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.user, &self.password)
    }

    /// The network namespace name of a node, as `ip netns exec` takes it.
    pub fn netns_name(&self, node: &str) -> Result<&str, LabError> {
        Ok(self.node(node)?.ns.name())
    }

    /// A TCP connection made from inside node `from`.
    pub async fn connect(
        &self,
        from: &str,
        target: SocketAddr,
    ) -> Result<tokio::net::TcpStream, LabError> {
        samba::connect_in(&self.node(from)?.ns, target).await
    }

    /// Reset established TCP connections between server `node` (on its `port`) and `peer`
    /// (or any peer), destroying the server's socket, the client's, or both.
    pub async fn reset(
        &self,
        node: &str,
        peer: Option<&str>,
        port: u16,
        side: plan::ResetSide,
    ) -> Result<Vec<sockdiag::Reset>, LabError> {
        let server_addr = std::net::IpAddr::V4(self.node(node)?.address);
        let peer_addr = match peer {
            Some(p) => Some(std::net::IpAddr::V4(self.node(p)?.address)),
            None => None,
        };
        let mut jobs = Vec::new();
        if side != plan::ResetSide::Client {
            let filter = sockdiag::TcpFilter {
                local_port: Some(port),
                remote: peer_addr,
                remote_port: None,
            };
            jobs.push((self.node(node)?.diag.clone(), filter));
        }
        if side != plan::ResetSide::Server {
            let filter = sockdiag::TcpFilter {
                local_port: None,
                remote: Some(server_addr),
                remote_port: Some(port),
            };
            for n in self
                .nodes
                .values()
                .filter(|n| n.name != node && peer.is_none_or(|p| p == n.name))
            {
                jobs.push((n.diag.clone(), filter));
            }
        }
        // Destroy both ends back to back so neither side sees the other's RST first. Each
        // is a netlink round trip of a few microseconds on a socket already open in its
        // namespace, so it runs right here rather than on another thread.
        let mut done = Vec::new();
        for (diag, filter) in jobs {
            done.extend(diag.destroy(filter)?);
        }
        Ok(done)
    }

    /// Is the path between `a` and `b` cut by anything on the wire right now (on `network`,
    /// or on any network)?
    pub fn is_cut(&self, a: &str, b: &str) -> bool {
        self.is_cut_on(a, b, None)
    }

    pub fn is_cut_on(&self, a: &str, b: &str, network: Option<&str>) -> bool {
        let (Some(wire), Ok(pa), Ok(pb)) = (
            self.wire.as_ref(),
            self.ports(&[a.to_string()], network),
            self.ports(&[b.to_string()], network),
        ) else {
            return false;
        };
        wire.blocks().iter().any(|(_, blk)| {
            pa.iter().any(|x| {
                pb.iter().any(|y| {
                    (blk.from.contains(x) && blk.to.contains(y))
                        || (blk.from.contains(y) && blk.to.contains(x))
                })
            })
        })
    }

    /// Reset (RST) every established TCP connection of `node` on local port `port`, the way a
    /// failover does: the kernel aborts the sockets, the peer sees ECONNRESET.
    pub async fn reset_tcp(&self, node: &str, port: u16) -> Result<Vec<sockdiag::Reset>, LabError> {
        self.reset(node, None, port, plan::ResetSide::Server).await
    }

    fn wire(&self) -> Result<&wire::Wire, LabError> {
        self.wire.as_ref().ok_or_else(|| {
            LabError::Other(
                "this fault needs the userspace wire (topology `wire: userspace`)".into(),
            )
        })
    }

    /// The ports of `nodes`: every link of each, or only their links to `network` (a node
    /// not on it has none).
    fn ports(&self, nodes: &[String], network: Option<&str>) -> Result<Vec<usize>, LabError> {
        let wire = self.wire()?;
        if let Some(n) = network {
            if !self.networks.iter().any(|x| x.name == n) {
                return Err(LabError::Other(format!("no network `{n}` in this lab")));
            }
        }
        let mut out = Vec::new();
        for n in nodes {
            if !self.nodes.contains_key(n) {
                return Err(LabError::NoSuchNode(n.clone()));
            }
            out.extend(wire.ports_of(n, network));
        }
        Ok(out)
    }

    /// Silently drop every frame from any node in `from` to any node in `to` (one way; with
    /// `tcp_port`, only TCP segments to or from that port) until `repair`.
    pub fn cut(
        &self,
        from: &[String],
        to: &[String],
        tcp_port: Option<u16>,
    ) -> Result<Cut, LabError> {
        self.cut_on(from, to, tcp_port, None)
    }

    /// `cut`, on one network's links only (`None`: every network).
    pub fn cut_on(
        &self,
        from: &[String],
        to: &[String],
        tcp_port: Option<u16>,
        network: Option<&str>,
    ) -> Result<Cut, LabError> {
        let block = wire::Block {
            from: self.ports(from, network)?,
            to: self.ports(to, network)?,
            tcp_port,
            tickles_only: false,
        };
        Ok(Cut(vec![self.wire()?.block(block)]))
    }

    /// Drop every tickle ACK any cluster node sends to `to` until `repair`.
    pub fn drop_tickles(&self, to: &[String]) -> Result<Cut, LabError> {
        let senders: Vec<String> = self
            .clusters
            .values()
            .flat_map(|c| c.nodes.clone())
            .collect();
        let block = wire::Block {
            from: self.ports(&senders, None)?,
            to: self.ports(to, None)?,
            tcp_port: None,
            tickles_only: true,
        };
        Ok(Cut(vec![self.wire()?.block(block)]))
    }

    /// Cut both ways.
    pub fn partition(
        &self,
        a: &[String],
        b: &[String],
        tcp_port: Option<u16>,
    ) -> Result<Cut, LabError> {
        self.partition_on(a, b, tcp_port, None)
    }

    /// `partition`, on one network's links only (`None`: every network).
    pub fn partition_on(
        &self,
        a: &[String],
        b: &[String],
        tcp_port: Option<u16>,
        network: Option<&str>,
    ) -> Result<Cut, LabError> {
        let mut cut = self.cut_on(a, b, tcp_port, network)?;
        cut.0.extend(self.cut_on(b, a, tcp_port, network)?.0);
        Ok(cut)
    }

    /// Undo a cut, and verify the wire no longer holds any part of it. Returns the frames
    /// the cut dropped while it held (its effect).
    pub fn repair(&self, cut: Cut) -> Result<u64, LabError> {
        let wire = self.wire()?;
        let mut dropped = 0;
        for id in &cut.0 {
            dropped += wire.unblock(*id).unwrap_or(0);
        }
        let left: Vec<_> = wire
            .blocks()
            .into_iter()
            .filter(|(id, _)| cut.0.contains(id))
            .collect();
        if !left.is_empty() {
            return Err(LabError::Other(format!(
                "repair did not take: blocks {left:?} still on the wire"
            )));
        }
        Ok(dropped)
    }

    /// Queue every frame from `from` to `to` (one way; with `tcp_port`, only TCP segments to
    /// or from that port) until `release` (turmoil's `hold`).
    pub fn hold_on(
        &self,
        from: &[String],
        to: &[String],
        tcp_port: Option<u16>,
        network: Option<&str>,
    ) -> Result<Hold, LabError> {
        let block = wire::Block {
            from: self.ports(from, network)?,
            to: self.ports(to, network)?,
            tcp_port,
            tickles_only: false,
        };
        Ok(Hold(vec![self.wire()?.hold(block)]))
    }

    /// End a hold: what it held is delivered in order (or thrown away with `discard`), and
    /// the wire verified to hold nothing of it. Returns what it held.
    pub fn release(&self, hold: Hold, discard: bool) -> Result<wire::hold::HoldStats, LabError> {
        let wire = self.wire()?;
        let mut total = wire::hold::HoldStats::default();
        for id in &hold.0 {
            if let Some(s) = wire.release(*id, discard) {
                total.frames += s.frames;
                total.bytes += s.bytes;
                total.first = match (total.first, s.first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        if wire.holds().iter().any(|(id, _)| hold.0.contains(id)) {
            return Err(LabError::Other(format!(
                "release did not take: hold {:?} still on the wire",
                hold.0
            )));
        }
        Ok(total)
    }

    /// Arm an SMB message rule between `server` and `peers` (every other node when empty):
    /// `rule`'s `from`/`to` are filled in here, requests going from the peers to the server,
    /// responses the other way.
    pub fn arm_message(
        &self,
        server: &str,
        peers: &[String],
        mut rule: wire::message::MessageRule,
    ) -> Result<Armed, LabError> {
        let peers: Vec<String> = if peers.is_empty() {
            self.nodes
                .keys()
                .filter(|n| *n != server)
                .cloned()
                .collect()
        } else {
            peers.to_vec()
        };
        let server_ports = self.ports(&[server.to_string()], None)?;
        let peer_ports = self.ports(&peers, None)?;
        (rule.from, rule.to) = if rule.responses {
            (server_ports, peer_ports)
        } else {
            (peer_ports, server_ports)
        };
        Ok(Armed(self.wire()?.arm(rule)))
    }

    /// Disarm a message rule: what it holds is delivered in order (or thrown away with
    /// `discard`), and the wire verified to hold nothing of it. Returns what it did.
    pub fn disarm(
        &self,
        armed: Armed,
        discard: bool,
    ) -> Result<wire::message::MessageReport, LabError> {
        let wire = self.wire()?;
        let report = wire.disarm(armed.0, discard).unwrap_or_default();
        if wire.rules().contains(&armed.0) {
            return Err(LabError::Other(format!(
                "disarm did not take: message rule {} still on the wire",
                armed.0
            )));
        }
        Ok(report)
    }

    /// Impair (or with `None`, stop impairing) one direction of every link of a node.
    pub fn impair(
        &self,
        node: &str,
        direction: wire::Direction,
        impairment: Option<wire::Impairment>,
        seed: u64,
    ) -> Result<(), LabError> {
        self.impair_on(node, None, direction, impairment, seed)
    }

    /// Impair one direction of a node's link to `network` (`None`: of every link). Without
    /// an impairment the link goes back to its network's standing rate cap, if any.
    pub fn impair_on(
        &self,
        node: &str,
        network: Option<&str>,
        direction: wire::Direction,
        impairment: Option<wire::Impairment>,
        seed: u64,
    ) -> Result<(), LabError> {
        let ports = self.ports(&[node.to_string()], network)?;
        let wire = self.wire()?;
        for (i, port) in ports.into_iter().enumerate() {
            let expected = wire.effective(port, impairment.clone());
            wire.impair(
                port,
                direction,
                impairment.clone(),
                seed ^ ((i as u64) << 48),
            );
            if wire.impairment(port, direction) != expected {
                return Err(LabError::Other(format!(
                    "impairment of {node} {direction:?} did not take"
                )));
            }
        }
        Ok(())
    }

    /// Byte and frame counters of a node's links, summed (userspace wire only).
    pub fn link_counters(&self, node: &str) -> Result<wire::LinkCounters, LabError> {
        self.link_counters_on(node, None)
    }

    /// Counters of a node's link to `network` (`None`: all its links, summed).
    pub fn link_counters_on(
        &self,
        node: &str,
        network: Option<&str>,
    ) -> Result<wire::LinkCounters, LabError> {
        let wire = self.wire()?;
        let ports = self.ports(&[node.to_string()], network)?;
        if ports.is_empty() {
            return Err(LabError::Other(format!(
                "{node} has no link to network {}",
                network.unwrap_or("?")
            )));
        }
        Ok(ports
            .into_iter()
            .map(|p| wire.counters(p))
            .fold(wire::LinkCounters::default(), |a, b| a.plus(&b)))
    }

    /// Counters of every link: by node, or by `<node>.<network>` when the plan declares
    /// networks.
    pub fn all_link_counters(&self) -> BTreeMap<String, wire::LinkCounters> {
        let Some(wire) = self.wire.as_ref() else {
            return BTreeMap::new();
        };
        (0..wire.port_count())
            .map(|p| {
                let (node, network) = (wire.node_name(p), wire.network_name(p));
                let key = match self.named_networks {
                    false => node.to_string(),
                    true => format!("{node}.{network}"),
                };
                (key, wire.counters(p))
            })
            .collect()
    }

    /// Gratuitous ARPs, tickle ACKs and SMB RSTs seen since the last call (userspace wire
    /// of a lab with clusters).
    pub fn drain_notable(&self) -> Vec<wire::Observed> {
        self.wire
            .as_ref()
            .map(|w| w.drain_observed())
            .unwrap_or_default()
    }

    /// Is any fault still active on the wire?
    pub fn wire_is_clean(&self) -> bool {
        self.wire.as_ref().is_none_or(|w| w.is_clean())
    }

    /// Can `from` reach `to` over the lab? A TCP connection to port 445 that is accepted or
    /// refused (RST) within `timeout` proves the path works both ways, whatever smbd is doing.
    pub async fn reachable(&self, from: &str, to: &str, timeout: std::time::Duration) -> bool {
        self.reachable_on(from, to, None, timeout).await
    }

    /// `reachable`, to `to`'s address on `network` (`None`: the first network both join).
    pub async fn reachable_on(
        &self,
        from: &str,
        to: &str,
        network: Option<&str>,
        timeout: std::time::Duration,
    ) -> bool {
        let address = match network {
            Some(n) => match self.address_on(to, n) {
                Some(a) => a,
                None => return false,
            },
            None => self.address_towards(from, to),
        };
        let target = SocketAddr::from((address, 445));
        match tokio::time::timeout(timeout, self.connect(from, target)).await {
            Ok(Ok(_)) => true,
            Ok(Err(LabError::Io { source, .. })) => {
                source.kind() == std::io::ErrorKind::ConnectionRefused
            }
            _ => false,
        }
    }

    /// A command that runs inside `node` (its namespace and its cgroup).
    pub fn command(&self, node: &str, program: &str) -> Result<tokio::process::Command, LabError> {
        let node = self.node(node)?;
        process::command_in(&node.ns, &node.freezer, program)
    }

    /// The Samba server of a server node.
    pub fn server(&self, name: &str) -> Result<&tokio::sync::Mutex<SambaServer>, LabError> {
        self.node(name)?
            .samba
            .as_ref()
            .ok_or_else(|| LabError::NoSuchNode(format!("{name} (server)")))
    }

    /// Copy every server's logs and smb.conf into `dest/<node>/`.
    pub fn collect_logs(&self, dest: &Path) -> Result<(), LabError> {
        for node in self.nodes.values().filter(|n| n.role == Role::Server) {
            let to = dest.join(&node.name);
            std::fs::create_dir_all(&to)
                .map_err(|e| LabError::io(format!("create {}", to.display()), e))?;
            let _ = std::fs::copy(node.dir.join("smb.conf"), to.join("smb.conf"));
            let ctdb_log = node.dir.join("ctdb").join("log");
            if let Ok(entries) = std::fs::read_dir(&ctdb_log) {
                for entry in entries.flatten().filter(|e| e.path().is_file()) {
                    let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
                }
            }
            if let Ok(entries) = std::fs::read_dir(node.dir.join("log")) {
                for entry in entries.flatten().filter(|e| e.path().is_file()) {
                    let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
                }
            }
        }
        Ok(())
    }

    /// Tear everything down: every process killed, every namespace and cgroup removed, the
    /// lab directory and the run-state file deleted.
    pub async fn down(mut self) -> Result<(), LabError> {
        for node in self.nodes.values() {
            if let Some(samba) = &node.samba {
                let _ = samba.lock().await.kill().await;
            }
        }
        let result = self.teardown();
        self.torn_down = true;
        result
    }

    fn teardown(&mut self) -> Result<(), LabError> {
        self.torn_down = true;
        // Closing the TAPs first lets their namespaces go as soon as they are unmounted.
        if let Some(wire) = self.wire.take() {
            wire.stop();
        }
        // Lossy disks are FUSE mounts inside the lab directory: unmounted before it goes.
        for node in self.nodes.values_mut() {
            if let Some(samba) = node.samba.as_mut() {
                samba.get_mut().unmount_lossy();
            }
        }
        let state = self.state.lock().expect("state lock").clone();
        state.reclaim().map(|_| ())
    }
}

impl Drop for Lab {
    /// A lab dropped without `down` (a panic, an early return) still leaves nothing behind.
    fn drop(&mut self) {
        if !self.torn_down {
            if let Err(e) = self.teardown() {
                tracing::error!(run = %self.run_id, "lab teardown failed: {e}; run `smbchaos clean`");
            }
        }
    }
}

/// What `hold_on` installed, for `release` to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold(Vec<wire::BlockId>);

impl Hold {
    pub fn merge(holds: Vec<Hold>) -> Hold {
        Hold(holds.into_iter().flat_map(|h| h.0).collect())
    }

    /// The (from, to, network) links this hold holds.
    pub fn links(&self, lab: &Lab) -> Vec<(String, String, String)> {
        let Some(wire) = lab.wire.as_ref() else {
            return Vec::new();
        };
        block_links(wire, wire.holds(), &self.0)
    }
}

/// The (from, to, network) links that the wire's rules `ids` (blocks or holds) act on.
fn block_links(
    wire: &wire::Wire,
    rules: Vec<(wire::BlockId, wire::Block)>,
    ids: &[wire::BlockId],
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (_, block) in rules.into_iter().filter(|(id, _)| ids.contains(id)) {
        for f in &block.from {
            for t in &block.to {
                let link = (
                    wire.node_name(*f).to_string(),
                    wire.node_name(*t).to_string(),
                    wire.network_name(*f).to_string(),
                );
                if !out.contains(&link) {
                    out.push(link);
                }
            }
        }
    }
    out
}

/// What `arm_message` armed, for `disarm` to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed(wire::BlockId);

/// What `cut`/`partition` installed, for `repair` to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut(Vec<wire::BlockId>);

impl Cut {
    pub fn merge(cuts: Vec<Cut>) -> Cut {
        Cut(cuts.into_iter().flat_map(|c| c.0).collect())
    }

    /// The (from, to) node pairs this cut separates.
    pub fn pairs(&self, lab: &Lab) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (a, b, _) in self.links(lab) {
            if !out.contains(&(a.clone(), b.clone())) {
                out.push((a, b));
            }
        }
        out
    }

    /// The (from, to, network) links this cut separates.
    pub fn links(&self, lab: &Lab) -> Vec<(String, String, String)> {
        let Some(wire) = lab.wire.as_ref() else {
            return Vec::new();
        };
        block_links(wire, wire.blocks(), &self.0)
    }
}

fn new_run_id() -> String {
    let n: u32 = rand::random();
    format!("{:06x}", n & 0xff_ffff)
}

/// The servers and cluster nodes that run in containers (`provider: docker`), each with a
/// slot for its container's filesystem; refuses what the provider cannot run.
fn docker_roots(plan: &plan::Plan) -> Result<BTreeMap<String, Option<docker::Root>>, LabError> {
    let topology = &plan.topology;
    match topology.provider {
        plan::Provider::Netns => {
            let versions = topology
                .servers
                .iter()
                .map(|s| ("server", &s.name.value, s.samba))
                .chain(
                    topology
                        .clusters
                        .iter()
                        .map(|c| ("cluster", &c.name.value, c.samba)),
                );
            for (what, name, version) in versions {
                if let Some(c) = topology.clusters.iter().find(|c| c.witness.value) {
                    return Err(LabError::Other(format!(
                        "cluster {} runs the Witness service (`witness: true`), which needs Samba 4.20 or later: the netns provider runs the host's own Samba ({}); use `provider: docker` with `samba: \"4.22\"` (or `smbchaos run --provider docker --samba 4.22`)",
                        c.name.value,
                        plan::SambaVersion::default()
                    )));
                }
                if version != plan::SambaVersion::default() {
                    return Err(LabError::Other(format!(
                        "{what} {name} asks for Samba {version}: the netns provider runs the host's own smbd and ctdbd ({}); run it in containers with `provider: docker` (or `smbchaos run --provider docker`)",
                        plan::SambaVersion::default()
                    )));
                }
            }
            Ok(BTreeMap::new())
        }
        plan::Provider::Docker => {
            if let Some(c) = topology
                .clusters
                .iter()
                .find(|c| c.witness.value && c.samba < plan::SambaVersion::V4_22)
            {
                return Err(LabError::Other(format!(
                    "cluster {} runs the Witness service (`witness: true`), which Samba has from 4.20 on, and it asks for Samba {}: use `samba: \"4.22\"` (or `smbchaos run --samba 4.22`)",
                    c.name.value, c.samba
                )));
            }
            if topology.wire == plan::WireKind::Kernel {
                return Err(LabError::Other(
                    "provider: docker joins nodes to the userspace wire; remove `wire: kernel`"
                        .into(),
                ));
            }
            Ok(topology
                .servers
                .iter()
                .map(|s| s.name.value.clone())
                .chain(topology.clusters.iter().flat_map(|c| c.node_names()))
                .map(|n| (n, None))
                .collect())
        }
    }
}
