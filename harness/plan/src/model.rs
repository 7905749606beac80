//! The plan's types: what a `version: 1` plan file may say.
//!
//! Field names are the YAML keys. Every struct denies unknown keys so a misspelt key is an error
//! naming the allowed ones. Values that other parts of the plan refer to (node names) or that
//! semantic validation may reject are `Spanned`, so those errors can name line and column too.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::duration::PlanDuration;
pub use crate::spanned::Spanned;
pub use crate::units::{ByteSize, Percent, Rate};

/// One test: a topology, a workload, faults and what is expected of them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Schema version of this file; only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: Spanned<u32>,
    /// Short name, used for the results directory (`results/<name>/...`).
    #[schemars(pattern(r"^[A-Za-z0-9._-]+$"))]
    pub name: Spanned<String>,
    /// What this plan reproduces and why.
    #[serde(default)]
    pub description: String,
    /// Seed for every random choice the run makes (workload, fault targets, impairments).
    #[serde(default)]
    pub seed: u64,
    pub topology: Topology,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub expect: Expect,
    /// How often this plan is known not to pass on a correct server (e.g. `5%`): a plan set
    /// or sweep fails on it only when its failures are a significant change from this rate
    /// (README, "Flake rate").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flake_rate: Option<Spanned<Percent>>,
}

/// The lab's nodes and the networks that link them. Without `networks`, every node gets one
/// link to one network spanning 198.18.0.0/15.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Named networks, each a segment of the wire of its own (own forwarding domain, counters
    /// and captures; nothing routed between them). Nodes name the ones they join. Absent: one
    /// network, `lab`, spanning 198.18.0.0/15, that every node joins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub servers: Vec<Server>,
    /// CTDB-clustered Samba: nodes sharing one directory, reached through public addresses.
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub clients: Vec<Client>,
    /// How nodes are linked: `userspace` (default: TAP devices forwarded by the harness, where
    /// partitions, blackholes and impairments act, with per-link counters and capture) or
    /// `kernel` (veth pairs on a bridge: fastest, but only process faults and TCP resets).
    #[serde(default)]
    pub wire: WireKind,
    /// MTU of every lab link (68..=65521). Storage networks often run jumbo frames.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// Bytes kept of each captured frame in the per-link pcap files; 0 turns capture off.
    #[serde(default = "default_snaplen")]
    pub capture_snaplen: u32,
    /// Bounds on the pcap files for long runs: at most `max_bytes` of capture for the whole
    /// run, shared evenly by the captured links, kept in up to `rotate` files per link.
    /// Absent: no bound but `capture_snaplen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_limit: Option<Spanned<CaptureLimit>>,
    /// What a server node (and each cluster node) is: `netns` (default: the host's own smbd
    /// and ctdbd in a network namespace) or `docker` (a container from an image built by
    /// `smbchaos images build`, joined to the same userspace wire). Clients are namespaces
    /// either way.
    #[serde(default)]
    pub provider: Provider,
}

/// One network of the lab: a segment of the userspace wire of its own.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Network name (`public`, `private`, `storage`, `management`...).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub name: Spanned<String>,
    /// Subnet inside 198.18.0.0/15, e.g. `198.18.1.0/24`. Default: the whole /15 for a plan's
    /// only network, else the lowest free /24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/[0-9]{1,2}$"))]
    pub subnet: Option<Spanned<String>>,
    /// MTU of this network's links (default: the topology's `mtu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<Spanned<u32>>,
    /// Bandwidth cap of every node's link to this network, each direction (e.g. `1gbit`, a
    /// 1 GbE team); applied by the userspace wire for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<Rate>>,
    /// Capture this network's frames (`pcap/<node>.<network>.pcap`).
    #[serde(default = "yes")]
    pub capture: bool,
}

fn yes() -> bool {
    true
}

/// How much packet capture a run may write (`capture_limit: { max_bytes: 200MiB, rotate: 4 }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureLimit {
    /// Most bytes of pcap files the run keeps, all links together (each captured link gets an
    /// even share). At least 1MiB.
    pub max_bytes: ByteSize,
    /// Files per link. 1 (default): a link's capture stops when its share is full, keeping
    /// the run's start. More: a ring, like `tcpdump -C -W`: the share is split into this many
    /// files; when the newest is full the next starts (`<link>.1.pcap`, `<link>.2.pcap`, ...)
    /// and the oldest is deleted, keeping the run's end.
    #[serde(default = "one_file")]
    pub rotate: u32,
}

fn one_file() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    Netns,
    Docker,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str: `{:<8}` and friends apply.
        f.pad(match self {
            Provider::Netns => "netns",
            Provider::Docker => "docker",
        })
    }
}

/// A Samba release a server node runs: 4.17 (Debian 12) or 4.22 (bookworm-backports).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    JsonSchema,
)]
pub enum SambaVersion {
    #[default]
    #[serde(rename = "4.17")]
    V4_17,
    #[serde(rename = "4.22")]
    V4_22,
}

impl SambaVersion {
    pub const ALL: [SambaVersion; 2] = [SambaVersion::V4_17, SambaVersion::V4_22];

    pub fn as_str(self) -> &'static str {
        match self {
            SambaVersion::V4_17 => "4.17",
            SambaVersion::V4_22 => "4.22",
        }
    }
}

impl std::fmt::Display for SambaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for SambaVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SambaVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown Samba version `{s}` (known: 4.17, 4.22)"))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    #[default]
    Userspace,
    Kernel,
}

fn default_mtu() -> u32 {
    9000
}

fn default_snaplen() -> u32 {
    512
}

/// A Samba server node (one `smbd` in its own network namespace).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Node name (servers and clients share one namespace).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub name: Spanned<String>,
    /// Address in 198.18.0.0/15 (on its first network); assigned automatically when absent.
    #[serde(default)]
    pub address: Option<Spanned<Ipv4Addr>>,
    /// The networks it joins, `eth0` first (default: the first network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Spanned<String>>,
    /// Extra `[global]` smb.conf options, added after (and overriding) the harness's own.
    #[serde(default)]
    pub global: BTreeMap<String, String>,
    /// Shares; each gets a fresh directory under the run directory.
    #[serde(default = "default_shares")]
    pub shares: Vec<Share>,
    /// Extra environment of the server's smbd (e.g. `LD_PRELOAD` of a fault shim).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// The Samba release this server runs (`"4.22"` needs `provider: docker`).
    #[serde(default)]
    pub samba: SambaVersion,
}

/// A CTDB cluster: `nodes` server nodes named `<name>-0`, `<name>-1`, ..., each running
/// ctdbd (normal mode) and clustered smbd, sharing the shares' directories and the recovery
/// lock. Clients reach it through `public_addresses`, which CTDB moves between nodes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Cluster name (at most 12 characters: node names add `-<n>`).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,11}$"))]
    pub name: Spanned<String>,
    /// How many nodes (1..=8).
    #[serde(default = "default_cluster_nodes")]
    pub nodes: Spanned<u32>,
    /// Public addresses in 198.18.0.0/15; default: one per node, assigned from 198.19.0.10 up
    /// (on a network of its own: from the middle of its subnet + 10 up).
    #[serde(default)]
    pub public_addresses: Vec<Spanned<Ipv4Addr>>,
    /// The networks every node joins, `eth0` first (default: the first network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Spanned<String>>,
    /// Where the public addresses live, the client-facing network (default: the cluster's
    /// first network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network: Option<Spanned<String>>,
    /// CTDB's private network: the nodes' `ctdb` addresses (default: the cluster's last
    /// network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_network: Option<Spanned<String>>,
    /// Extra `[global]` smb.conf options for every node.
    #[serde(default)]
    pub global: BTreeMap<String, String>,
    /// Shares; each a directory shared by every node.
    #[serde(default = "default_shares")]
    pub shares: Vec<Share>,
    /// ctdb tunables, set over the harness's (`RerecoveryTimeout: 0`, `MonitorInterval: 1`,
    /// `KeepaliveInterval: 1`, `KeepaliveLimit: 3`).
    #[serde(default)]
    pub tunables: BTreeMap<String, u32>,
    /// The Samba release (smbd and ctdbd) every node runs (`"4.22"` needs `provider: docker`).
    #[serde(default)]
    pub samba: SambaVersion,
    /// Run the Witness service (MS-SWN: `samba-dcerpcd --libexec-rpcds` with rpcd_witness,
    /// `rpc start on demand helpers = no`) on every node, so clients with `witness: true` can
    /// register. Needs Samba 4.20 or later: `samba: "4.22"` and `provider: docker`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub witness: Spanned<bool>,
}

fn is_false(b: &Spanned<bool>) -> bool {
    !b.value
}

fn default_cluster_nodes() -> Spanned<u32> {
    Spanned::new(3)
}

impl Cluster {
    /// The names of its nodes, in PNN order.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes.value)
            .map(|i| format!("{}-{i}", self.name.value))
            .collect()
    }
}

/// One smb.conf share section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub name: Spanned<String>,
    /// smb.conf options for this share (`path` is set by the harness).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// What the share's directory sits on: `plain` (the host's file system) or `lossy` (a FUSE
    /// passthrough that a `power_cut` can take back to what was last fsynced).
    #[serde(default, skip_serializing_if = "Disk::is_plain")]
    pub disk: Disk,
}

/// The disk under a share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disk {
    #[default]
    Plain,
    /// Everything written since its file's last fsync (and names created, renamed or unlinked
    /// since their directory's) is lost at a `power_cut`.
    Lossy,
}

impl Disk {
    pub fn is_plain(&self) -> bool {
        *self == Disk::Plain
    }
}

fn default_shares() -> Vec<Share> {
    vec![Share {
        name: Spanned::new("share".to_string()),
        options: BTreeMap::new(),
        disk: Disk::Plain,
    }]
}

/// A client host: a network namespace from which workloads run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Node name (servers and clients share one namespace).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub name: Spanned<String>,
    /// Address on its first network; assigned automatically when absent.
    #[serde(default)]
    pub address: Option<Spanned<Ipv4Addr>>,
    /// The networks it joins, `eth0` first (default: the first network).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Spanned<String>>,
}

/// The clients' operations: `steps` run in order; SMB `clients` run concurrently with them
/// for `duration`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(default)]
    pub steps: Vec<Step>,
    /// SMB clients driven by smbchaos's own wire client.
    #[serde(default)]
    pub clients: Vec<SmbClients>,
    /// How long the SMB clients run (required when there are any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Spanned<PlanDuration>>,
    /// The SMB clients' generator as phases one after another (e.g. a warm-up, the chaos, a
    /// quiet recovery); absent: one phase of each client entry's `mix` and `rate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Spanned<Phase>>,
}

/// One phase of the workload's generator: for `for`, every SMB client draws from `mix` at
/// `rate` (each absent: the client entry's own).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// How long the phase lasts; the last phase may omit it and runs to the workload's end.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub length: Option<PlanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<Mix>,
    /// Operations per second per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

/// `count` logical SMB clients on client node `node`, each with its own ClientGuid and
/// connection, working on files of `server`'s `share`. Their operations are drawn from `mix`
/// with the plan's seed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmbClients {
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub node: Spanned<String>,
    /// A server, or a cluster: its clients are spread over its public addresses in turn, as
    /// DNS round-robin would (or all use `via`).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub server: Spanned<String>,
    /// Cluster only: the public address every one of these clients connects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Spanned<Ipv4Addr>>,
    #[serde(default = "default_share")]
    pub share: Spanned<String>,
    #[serde(default = "one")]
    pub count: u32,
    /// What a client does when its connection drops.
    #[serde(default)]
    pub on_disconnect: Recovery,
    /// Highest dialect offered (all lower ones are offered too).
    #[serde(default)]
    pub dialect: DialectChoice,
    #[serde(default)]
    pub durable: DurableKind,
    /// Durable v2 timeout asked for (0: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_timeout: Option<Spanned<PlanDuration>>,
    /// Ask for a persistent (continuously available) handle.
    #[serde(default)]
    pub persistent: bool,
    /// Lease to request: some of R, W, H (e.g. `RWH`); empty for none.
    #[serde(default)]
    pub lease: Spanned<String>,
    /// Oplock to request when no lease is.
    #[serde(default)]
    pub oplock: OplockChoice,
    #[serde(default)]
    pub files: FileSharing,
    /// Largest offset a write reaches (bytes, a multiple of 8).
    #[serde(default = "default_file_size")]
    pub file_size: Spanned<u64>,
    /// Bytes per write (a multiple of 8).
    #[serde(default = "default_write_size")]
    pub write_size: Spanned<u64>,
    #[serde(default)]
    pub mix: Mix,
    /// Operations per second per client; absent: as fast as the server answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// A request (or TCP connect) unanswered this long ends `info` and, for a resilient
    /// client, the connection.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: PlanDuration,
    /// Serve reads from a local cache while a read-caching lease (or level II or stronger
    /// oplock) is held, as real clients do; the cache is dropped with the lease or connection.
    #[serde(default)]
    pub cache_reads: bool,
    /// Resilient clients replay what was in flight when a connection dropped (a write, or a
    /// durable v2 create with its CreateGuid), with REPLAY_OPERATION and the next
    /// ChannelSequence, as SMB 3.x clients do.
    #[serde(default)]
    pub replay: bool,
    /// Wait this long after the workload starts before connecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<PlanDuration>,
    /// SMB Multichannel (3.x): after its first TREE_CONNECT each client asks the server for
    /// its interfaces (FSCTL_QUERY_NETWORK_INTERFACE_INFO), binds further channels to its
    /// session (one per server address it may use) and spreads its requests over them; a
    /// request lost or unanswered on one channel is replayed on another. `{}`: every
    /// interface the server offers; `{ networks: [storage] }`: only server addresses on those
    /// networks (the client constraint of seed 004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multichannel: Option<Spanned<Multichannel>>,
    /// Register with the cluster's Witness service (MS-SWN) as Windows clients do:
    /// GetInterfaceList, RegisterEx on a node other than the one serving the connection,
    /// AsyncNotify kept outstanding; on a RESOURCE_CHANGE, CLIENT_MOVE or SHARE_MOVE the
    /// connection is dropped at once and the client reconnects where it is told (reclaiming
    /// its durable handle as after any lost connection). Needs a cluster with `witness: true`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub witness: Spanned<bool>,
}

/// A client's multichannel set-up (`workload.clients[].multichannel`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Multichannel {
    /// The networks channels may use (the client constraint); empty or absent: every
    /// interface the server offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Spanned<String>>,
    /// Channels in all, the first included (default: one per usable server address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Spanned<u32>>,
}

fn default_share() -> Spanned<String> {
    Spanned::new("share".to_string())
}
fn one() -> u32 {
    1
}
fn default_file_size() -> Spanned<u64> {
    Spanned::new(64 * 1024)
}
fn default_write_size() -> Spanned<u64> {
    Spanned::new(4096)
}
fn default_request_timeout() -> PlanDuration {
    PlanDuration::from_secs(5)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Reconnect with backoff, session reconnect (PreviousSessionId), reclaim durable handles
    /// (DH2C/DHnC) and go on, as a real client does.
    #[default]
    Resilient,
    /// No recovery: the client stops at its first lost connection (to judge the server alone).
    Bare,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum DialectChoice {
    #[serde(rename = "2.0.2")]
    Smb202,
    #[serde(rename = "2.1")]
    Smb21,
    #[serde(rename = "3.0")]
    Smb30,
    #[serde(rename = "3.0.2")]
    Smb302,
    #[default]
    #[serde(rename = "3.1.1")]
    Smb311,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DurableKind {
    #[default]
    None,
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OplockChoice {
    #[default]
    None,
    Level2,
    Exclusive,
    Batch,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileSharing {
    /// Each logical client its own file.
    #[default]
    PerClient,
    /// Every client with `files: shared` on one file, `shared.dat`, of its share.
    Shared,
}

/// Relative weights of the operations a client draws.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub write: u32,
    #[serde(default)]
    pub write_through: u32,
    #[serde(default)]
    pub flush: u32,
    #[serde(default)]
    pub read: u32,
    /// Close the handle and open the file again.
    #[serde(default)]
    pub reopen: u32,
    /// Lock then unlock a byte range.
    #[serde(default)]
    pub lock: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            write: 4,
            write_through: 2,
            flush: 2,
            read: 2,
            reopen: 0,
            lock: 0,
        }
    }
}

/// One workload step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Run a shell command inside a client node and record it as one op.
    Exec(ExecStep),
}

/// `exec`: `/bin/sh -c <run>` inside the client's namespace. The environment carries
/// `SMBCHAOS_USER`, `SMBCHAOS_PASSWORD`, `SMBCHAOS_AUTH_FILE` (an smbclient `-A` file),
/// `SMBCHAOS_ADDR_<NODE>` for every node (name upper-cased, `-` as `_`) and `SMBCHAOS_WORK_DIR`
/// (a scratch directory of this client's).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    /// The client node to run in.
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub client: Spanned<String>,
    pub run: String,
    /// Exit status the step must end with to count as `ok`.
    #[serde(default)]
    pub expect_exit: i32,
    /// Longest the command may run before it is killed and recorded as `info`.
    #[serde(default = "default_exec_timeout")]
    pub timeout: PlanDuration,
}

fn default_exec_timeout() -> PlanDuration {
    PlanDuration::from_secs(60)
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Reset established TCP connections (SOCK_DESTROY; the kernel sends the RST): `node`'s
    /// connections, optionally only with `peer` and on server `port` (445), on `side`.
    Reset,
    /// Silently drop `node`'s packets (to and from `peer` only, if given; only TCP `port`, if
    /// given): no RST, the peer waits out its TCP timeouts.
    Blackhole,
    /// Split the lab: `groups`, one-way `from`/`to`, isolate `node`, or `choose` nodes from the seed.
    Partition,
    /// Impair `node`'s link: latency, jitter, loss, duplication, reordering, corruption, rate.
    Impair,
    /// SIGKILL every smbd of the node (or only the child `serving` a client); heal starts it.
    Kill,
    /// Stop the node's smbd gracefully (SIGTERM); heal starts it again.
    Stop,
    /// Freeze every process of the node (cgroup freezer); heal thaws them.
    Pause,
    /// Kill and start again at once; no heal.
    Restart,
    /// Node crash: every process killed and every link cut at the same instant; heal reconnects
    /// the links and starts smbd.
    Crash,
    /// Cluster: move public `address` to cluster node `node` (`ctdb moveip`), or with `node`
    /// naming the cluster, to the node after the one holding it; no heal, the cluster is
    /// verified healthy with the address on its new node.
    Moveip,
    /// Drop every CTDB tickle ACK (window 1234) on its way to client `node` while it holds:
    /// the client learns of a takeover only from its own TCP retransmissions (or not at all
    /// while idle).
    DropTickles,
    /// Cluster node: an administrative `command` (`ctdb stop`, `disable`, `ban <ban_time>`);
    /// the node keeps running but gives up its public addresses. Heal: `continue`, `enable`,
    /// `unban`, verified by the cluster all-OK with every address hosted.
    Admin,
    /// Cluster node cut off from every client (its private network still works, so CTDB
    /// sees nothing wrong); heal reconnects it.
    Isolate,
    /// Witness: `net witness client-move --witness-new-ip=<address>` inside cluster node
    /// `node` (a cluster with `witness: true`): every client registered with the cluster's
    /// witness service is told to move to `address`. No heal.
    ClientMove,
    /// Power cut of a server: every process SIGKILLed and every `disk: lossy` share back to
    /// what was last fsynced (the history records what was discarded); heal starts smbd.
    PowerCut,
    /// Hold `node`'s frames (to or from `peer` only, if given; only TCP `port`, if given;
    /// `direction` egress, ingress or both) on the wire instead of dropping them, as turmoil's
    /// `hold`; the heal releases them in order (`release: deliver`, the default) or throws
    /// them away (`release: drop`: TCP retransmits).
    Hold,
    /// Act on one SMB2 message between server `node` and client `peer` (any client if
    /// absent): the `nth` (default 1st) one since the fault started that matches `message`
    /// (`command`, `sent_by`, and a response's `status`), found by following the TCP stream.
    /// `action`: `hold` it and everything after it on its connection until the heal,
    /// `delay` it so by `delay`, `drop` it (the receiver's TCP acknowledges it, the receiver
    /// never hears of it), or `reset` the connection right after it. Unencrypted sessions only.
    Message,
    /// A seeded random schedule of `kinds`, `count` times `every` interval, each held `for`.
    Random,
}

/// Which SMB2 messages a `message` fault acts on.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageMatch {
    /// The SMB2 command (MS-SMB2 2.2.1.2), e.g. `write`, `create`, `oplock_break` (lease and
    /// oplock break notifications and acknowledgments).
    pub command: Spanned<Smb2Command>,
    /// `client`: requests (default); `server`: responses and notifications.
    #[serde(default)]
    pub sent_by: SentBy,
    /// Responses only: this NTSTATUS, by name (`STATUS_SUCCESS`) or as hex (`0xC0000034`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Spanned<String>>,
    /// Act on the Nth matching message since the fault started (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Smb2Command {
    Negotiate,
    SessionSetup,
    Logoff,
    TreeConnect,
    TreeDisconnect,
    Create,
    Close,
    Flush,
    Read,
    Write,
    Lock,
    Ioctl,
    Cancel,
    Echo,
    QueryDirectory,
    ChangeNotify,
    QueryInfo,
    SetInfo,
    OplockBreak,
}

impl Smb2Command {
    /// The command code (MS-SMB2 2.2.1.2).
    pub fn code(self) -> u16 {
        self as u16
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SentBy {
    #[default]
    Client,
    Server,
}

/// What a `message` fault does to the message it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageFaultAction {
    /// Queue it and everything after it on its connection direction until the heal.
    Hold,
    /// Queue it and everything after it on its connection direction for `delay`.
    Delay,
    /// Turn it into a keep-alive frame of the same length: acknowledged, never heard of.
    Drop,
    /// Reset the connection (an RST each way) right after it.
    Reset,
}

/// What the heal of a `hold` (or a `message` fault's hold) does with the held frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// Deliver them, in the order they came.
    #[default]
    Deliver,
    /// Throw them away.
    Drop,
}

/// Which daemon of a cluster node a `kill` fault kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterProcess {
    Ctdbd,
    Smbd,
}

/// An administrative CTDB command on a node (`admin` faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminCommand {
    Stop,
    Disable,
    Ban,
}

/// Which reset end(s) of a connection the kernel aborts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetSide {
    /// The server's socket: the client gets the RST (what a failover looks like to a client).
    #[default]
    Server,
    Client,
    Both,
}

/// How nodes are picked for a partition, as Jepsen picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Choose {
    /// One node, cut off from the rest.
    One,
    /// Fewer than half, cut off from the rest.
    Minority,
    /// More than half, cut off from the rest.
    Majority,
    /// Every node cut off from every other.
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// Frames the node sends.
    Egress,
    /// Frames the node receives.
    Ingress,
    #[default]
    Both,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DelayDistribution {
    /// latency ± jitter, uniformly.
    #[default]
    Uniform,
    /// Normal around latency with standard deviation jitter.
    Normal,
}

/// One fault: starts `at` after the workload starts, healed after `for` (or at the end of the
/// run when `for` is absent); with `every`, repeated `count` times. Which keys apply depends
/// on `kind`; a key that does not apply is an error.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: Spanned<FaultKind>,
    /// The node the fault acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub node: Option<Spanned<String>>,
    /// reset/blackhole: only traffic between `node` and this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<Spanned<String>>,
    /// reset: the server-side TCP port (default 445); blackhole, partition: only TCP segments
    /// to or from this port (a partition with `port: 4379`, ctdbd's, splits CTDB on a lab with
    /// one network; with a private network of its own, use `network: private`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Spanned<u16>>,
    /// blackhole, partition, impair: act on this network's links only (default: every
    /// network), e.g. `private` to split a cluster's CTDB traffic while clients still reach
    /// every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub network: Option<Spanned<String>>,
    /// reset: which end is destroyed (default `server`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<Spanned<ResetSide>>,
    /// kill on a cluster node: only `ctdbd` or only `smbd` (default: every process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Spanned<ClusterProcess>>,
    /// admin: `stop`, `disable` or `ban`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Spanned<AdminCommand>>,
    /// admin `ban`: how long CTDB bans the node (default 300s; the heal unbans it earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_time: Option<Spanned<PlanDuration>>,
    /// moveip: the public address to move. crash, isolate: the cluster node hosting this
    /// public address when the fault starts (instead of `node`: placement is CTDB's choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Spanned<Ipv4Addr>>,
    /// kill: only the smbd child serving this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Spanned<String>>,
    /// partition: groups that cannot reach each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
    /// partition (one-way): frames from these nodes...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Spanned<Vec<Spanned<String>>>>,
    /// ...to these nodes are dropped (`to` no longer hears `from`; `from` still hears `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    /// partition/random: pick the nodes from the plan's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choose: Option<Spanned<Choose>>,
    /// partition with `choose`, random: the nodes to choose from (default: all nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub among: Option<Spanned<Vec<Spanned<String>>>>,
    /// random: the fault kinds to draw from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Spanned<Vec<FaultKind>>>,
    /// impair: which direction of the link (default both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Spanned<LinkDirection>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Spanned<PlanDuration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Spanned<PlanDuration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Spanned<DelayDistribution>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Spanned<Percent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_correlation: Option<Spanned<Percent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Spanned<Percent>>,
    /// Share of frames held back by `reorder_gap` (default 10ms) so later ones overtake them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Spanned<Percent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder_gap: Option<Spanned<PlanDuration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Spanned<Percent>>,
    /// Bandwidth cap, e.g. `10mbit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<Rate>>,
    /// message: which SMB2 message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Spanned<MessageMatch>>,
    /// message: what to do to it (`hold`, `delay`, `drop`, `reset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Spanned<MessageFaultAction>>,
    /// message with `action: delay`: how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Spanned<PlanDuration>>,
    /// hold, message with `action: hold`: what the heal does with the held frames (`deliver`,
    /// the default, or `drop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Spanned<Release>>,
    pub at: Spanned<PlanDuration>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Spanned<PlanDuration>>,
    /// Repeat every this long (needs `count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Spanned<PlanDuration>>,
    /// How many times (with `every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Spanned<u32>>,
    /// The plan's story needs this fault to land: an occurrence with no effect (no
    /// connection reset, no process killed or frozen, no frame dropped or shaped) fails the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_effect: bool,
}

/// What the plan expects; the verdict compares checker results with these. Every key is
/// optional. A checker with nothing to judge passes only where the plan asked for nothing:
/// an expectation whose precondition the server refused (`resume: reclaim` and no durable
/// handle granted, `breaks: required` and no lease to break, `granted:` and less granted)
/// fails, one the harness could not exercise is unknown. A plan may document a
/// known server limitation (`durability: lose`, `resume: fail`): it passes while the
/// limitation shows and fails the day it changes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exec steps: `expected_exit` (default: every step ends with its `expect_exit`)
    /// or `any` (exit statuses are recorded, not judged).
    #[serde(default)]
    pub exec: ExecExpectation,
    /// Acknowledged writes: `hold` (default) or `lose` (the server loses acknowledged data).
    #[serde(default)]
    pub durability: DurabilityExpectation,
    /// May an `ok` write that was not yet durable (neither written through nor flushed) be
    /// lost across an event that can lose it (a server process death or crash: kill, crash,
    /// restart, stop)? `allowed` (default) or `forbidden`. Without such an event, losing any
    /// `ok` write fails either way.
    #[serde(default)]
    pub unflushed_loss: UnflushedLoss,
    /// Durable handles: `reclaim` (granted whenever H caching or a batch oplock is, and
    /// reclaimable until their timeout) or `fail` (not granted or not reclaimable). Absent:
    /// the handles that were granted are judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeExpectation>,
    /// Another client's open of a file whose durable handle is preserved after a disconnect:
    /// `refused` (e.g. STATUS_SHARING_VIOLATION) or `breaks` (the preserved handle is closed).
    /// Absent: either, consistently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_open: Option<ConflictingOpen>,
    /// The NTSTATUS of a reconnect after the durable timeout.
    #[serde(default = "default_expired_status")]
    #[schemars(pattern(r"^STATUS_[A-Z0-9_]+$"))]
    pub expired_status: String,
    /// The server's lease/oplock break timeout: a conflicting open waits at most this long.
    #[serde(default = "default_break_timeout")]
    pub break_timeout: PlanDuration,
    /// A conflicting open that meets a holder who never acknowledges the break (a break the
    /// wire dropped, a holder that stays reachable) waits at least this long: the server
    /// waits out its break timeout instead of giving up early. Absent: not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_wait: Option<PlanDuration>,
    /// Whether the plan is about a lease/oplock break: `required` (a conflicting open must
    /// meet a holder to break; a server that granted nothing to break fails the plan) or
    /// `none` (nothing is cached, so any break fails). Absent: whatever happens is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaks: Option<BreakExpectation>,
    /// What the server must grant each client's first open that asks for it, e.g.
    /// `{ lease: RWH, durable: true }`: a server whose configuration silently turns off what
    /// the plan is about fails instead of passing with nothing to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<Granted>,
    /// The longest a client may make no progress; absent: stalls are reported, not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stall: Option<PlanDuration>,
    /// Clock tolerance around timeouts: reconnects this close to a durable handle's expiry
    /// are not judged.
    #[serde(default = "default_clock_slack")]
    pub clock_slack: PlanDuration,
    /// Cluster failovers (node crash, daemon killed, address moved): how fast each step must
    /// follow the fault. Absent: failovers are not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverExpectation>,
    /// Bytes per network, from the wire's link counters while the workload ran: the share of
    /// one node's bytes (both directions, all its links) that its link to one network
    /// carried, e.g. `[{ node: c1, network: mgmt, at_most: 1% }]`. Judged by `network-bytes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bytes: Vec<NetworkBytes>,
    /// How much slower a probe's ops get while a load runs: the median latency of the ops of
    /// the workload clients on node `probe` invoked while those on node `load` are working,
    /// over the median of the probe's ops before the load's first op. Judged by
    /// `probe-latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_latency: Option<ProbeLatency>,
    /// Where one Samba release behaves differently: expectations that replace the ones above
    /// when every server and cluster of the run is on that release, e.g.
    /// `samba: { "4.22": { resume: fail } }`. A difference between releases is a finding:
    /// say why next to it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub samba: BTreeMap<SambaVersion, Spanned<ExpectOverride>>,
}

/// The keys of `expect:` one Samba release overrides (`expect.samba`); each given key
/// replaces the plan's, the others stay.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecExpectation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<DurabilityExpectation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unflushed_loss: Option<UnflushedLoss>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeExpectation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_open: Option<ConflictingOpen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^STATUS_[A-Z0-9_]+$"))]
    pub expired_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_timeout: Option<PlanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaks: Option<BreakExpectation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted: Option<Granted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stall: Option<PlanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_slack: Option<PlanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverExpectation>,
}

impl Expect {
    /// The expectations for a run on `version` (every server and cluster on it; `None`:
    /// mixed or unknown, so no override applies).
    pub fn for_samba(&self, version: Option<SambaVersion>) -> Expect {
        let mut out = self.clone();
        out.samba.clear();
        let Some(o) = version.and_then(|v| self.samba.get(&v)) else {
            return out;
        };
        let o = o.value.clone();
        let ExpectOverride {
            exec,
            durability,
            unflushed_loss,
            resume,
            conflicting_open,
            expired_status,
            break_timeout,
            breaks,
            granted,
            max_stall,
            clock_slack,
            failover,
        } = o;
        out.exec = exec.unwrap_or(out.exec);
        out.durability = durability.unwrap_or(out.durability);
        out.unflushed_loss = unflushed_loss.unwrap_or(out.unflushed_loss);
        out.resume = resume.or(out.resume);
        out.conflicting_open = conflicting_open.or(out.conflicting_open);
        out.expired_status = expired_status.unwrap_or(out.expired_status);
        out.break_timeout = break_timeout.unwrap_or(out.break_timeout);
        out.breaks = breaks.or(out.breaks);
        out.granted = granted.or(out.granted);
        out.max_stall = max_stall.or(out.max_stall);
        out.clock_slack = clock_slack.unwrap_or(out.clock_slack);
        out.failover = failover.or(out.failover);
        out
    }
}

impl Plan {
    /// The one Samba release every server and cluster runs; `None` when they differ (or
    /// there are none).
    pub fn samba_version(&self) -> Option<SambaVersion> {
        let mut versions = self
            .topology
            .servers
            .iter()
            .map(|s| s.samba)
            .chain(self.topology.clusters.iter().map(|c| c.samba));
        let first = versions.next()?;
        versions.all(|v| v == first).then_some(first)
    }

    /// What this run is judged against: `expect:` with the overrides of the release its
    /// servers run (`expect.samba`).
    pub fn expectations(&self) -> Expect {
        self.expect.for_samba(self.samba_version())
    }
}

/// One `expect.network_bytes` entry: bounds on the share of `node`'s bytes carried by its
/// link to `network`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkBytes {
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub node: Spanned<String>,
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub network: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Spanned<Percent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Spanned<Percent>>,
}

/// `expect.probe_latency`: the probe's slowdown under the load, as a factor (`at_least: 5`:
/// its median latency during the load is at least 5 times the one before).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeLatency {
    /// The client node whose workload clients are the probe (a small request loop).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub probe: Spanned<String>,
    /// The client node whose workload clients are the load; give them a later `start`, so
    /// the probe has a baseline.
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub load: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Spanned<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Spanned<f64>>,
}

/// Per cluster fault and per client it cut off: node loss → address taken over (gratuitous
/// ARP) → tickle ACK → connection reset → reconnected → first ok op.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailoverExpectation {
    /// From the fault to the gratuitous ARP of the new owner of the lost node's addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover_within: Option<PlanDuration>,
    /// `sent`: a tickle ACK for the lost connections follows the takeover; `absent`: none does
    /// (e.g. tickles cut off from the clients). Absent: not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tickle: Option<TickleExpectation>,
    /// From the fault to each cut-off client's first ok op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_within: Option<PlanDuration>,
    /// From the fault to each cut-off client's first witness notification (clients with
    /// `witness: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_within: Option<PlanDuration>,
    /// From the fault to each witness client's next registration when the lost node held
    /// the witness interface it was registered through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reregister_within: Option<PlanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TickleExpectation {
    Sent,
    Absent,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            exec: ExecExpectation::default(),
            durability: DurabilityExpectation::default(),
            unflushed_loss: UnflushedLoss::default(),
            resume: None,
            conflicting_open: None,
            expired_status: default_expired_status(),
            break_wait: None,
            break_timeout: default_break_timeout(),
            breaks: None,
            granted: None,
            max_stall: None,
            clock_slack: default_clock_slack(),
            failover: None,
            network_bytes: Vec::new(),
            probe_latency: None,
            samba: BTreeMap::new(),
        }
    }
}

fn default_expired_status() -> String {
    "STATUS_OBJECT_NAME_NOT_FOUND".into()
}
fn default_break_timeout() -> PlanDuration {
    PlanDuration::from_secs(35)
}
fn default_clock_slack() -> PlanDuration {
    PlanDuration::from_secs(1)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityExpectation {
    /// Every acknowledged byte survives; nothing alien, failed or superseded appears.
    #[default]
    Hold,
    /// Acknowledged bytes are lost (or older bytes come back), and nothing else is wrong.
    Lose,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnflushedLoss {
    #[default]
    Allowed,
    Forbidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResumeExpectation {
    Reclaim,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictingOpen {
    Refused,
    Breaks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakExpectation {
    Required,
    None,
}

/// Grants the plan requires; each applies to opens that ask for that kind.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Granted {
    /// Lease state letters the server must grant (at least), e.g. `RWH`, `RH`, `R`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^R?W?H?$"))]
    pub lease: Option<Spanned<String>>,
    /// Oplock level the server must grant (at least) to opens that ask for an oplock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oplock: Option<OplockChoice>,
    /// Opens that ask for a durable handle must get one.
    #[serde(default)]
    pub durable: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecExpectation {
    #[default]
    ExpectedExit,
    Any,
}
