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
}

/// The lab's nodes. Every node gets one link to the lab switch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub servers: Vec<Server>,
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
    /// Address in 198.18.0.0/15; assigned automatically when absent.
    #[serde(default)]
    pub address: Option<Spanned<Ipv4Addr>>,
    /// Extra `[global]` smb.conf options, added after (and overriding) the harness's own.
    #[serde(default)]
    pub global: BTreeMap<String, String>,
    /// Shares; each gets a fresh directory under the run directory.
    #[serde(default = "default_shares")]
    pub shares: Vec<Share>,
}

/// One smb.conf share section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub name: Spanned<String>,
    /// smb.conf options for this share (`path` is set by the harness).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_shares() -> Vec<Share> {
    vec![Share {
        name: Spanned::new("share".to_string()),
        options: BTreeMap::new(),
    }]
}

/// A client host: a network namespace from which workloads run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Node name (servers and clients share one namespace).
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub name: Spanned<String>,
    #[serde(default)]
    pub address: Option<Spanned<Ipv4Addr>>,
}

/// The clients' operations, in order.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(default)]
    pub steps: Vec<Step>,
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

/// What a fault does. Process faults act on every process of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL every smbd of the node; heal starts it again.
    Kill,
    /// Stop the node's smbd gracefully (SIGTERM); heal starts it again.
    Stop,
    /// Freeze every process of the node (cgroup freezer); heal thaws them.
    Pause,
    /// Kill and start again at once; no heal.
    Restart,
}

/// One scheduled fault: starts `at` after the workload starts, healed after `for`
/// (or at the end of the run when `for` is absent).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    /// The node the fault acts on.
    #[schemars(pattern(r"^[a-z][a-z0-9-]{0,14}$"))]
    pub node: Spanned<String>,
    pub at: Spanned<PlanDuration>,
    #[serde(default, rename = "for")]
    pub hold: Option<Spanned<PlanDuration>>,
}

/// What the plan expects; the verdict compares checker results with these.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Exec steps: `expected_exit` (default: every step ends with its `expect_exit`)
    /// or `any` (exit statuses are recorded, not judged).
    #[serde(default)]
    pub exec: ExecExpectation,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecExpectation {
    #[default]
    ExpectedExit,
    Any,
}
