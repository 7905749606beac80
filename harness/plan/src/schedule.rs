//! The fault schedule a plan stands for: every `faults:` entry expanded (repeats, seeded random
//! picks, partition groups) into concrete actions at concrete times. Pure and deterministic:
//! the same plan and seed always give the same schedule.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::model::{
    AdminCommand, Choose, ClusterProcess, DelayDistribution, Fault, FaultKind, LinkDirection,
    MessageFaultAction, Plan, Release, ResetSide, SentBy, Smb2Command,
};

/// Default server-side port of a reset.
pub const SMB_PORT: u16 = 445;
/// Default time CTDB bans a node for (`admin` `ban`).
pub const DEFAULT_BAN_TIME: Duration = Duration::from_secs(300);
/// Default hold-back of a reordered frame.
pub const DEFAULT_REORDER_GAP: Duration = Duration::from_millis(10);

/// One fault occurrence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scheduled {
    /// Index of the `faults:` entry it comes from.
    pub fault: usize,
    /// Which repetition (0-based) of that entry.
    pub occurrence: u32,
    #[serde(skip)]
    pub at: Duration,
    /// Healed after this long; `None`: at the end of the run (or never needed: reset, restart).
    #[serde(skip)]
    pub hold: Option<Duration>,
    pub action: Action,
    /// The plan needs this occurrence to have an effect (`require_effect`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_effect: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Reset {
        node: String,
        peer: Option<String>,
        port: u16,
        side: ResetSide,
    },
    Blackhole {
        node: String,
        peer: Option<String>,
        port: Option<u16>,
        /// Only this network's links (default: every network).
        #[serde(skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    /// For each cut, frames from any node in the first list to any in the second are dropped.
    Partition {
        cuts: Vec<(Vec<String>, Vec<String>)>,
        /// Only TCP segments to or from this port (4379: a cluster's private network).
        #[serde(skip_serializing_if = "Option::is_none")]
        tcp_port: Option<u16>,
        /// Only this network's links (a cluster's private network: CTDB splits, clients still
        /// reach every node).
        #[serde(skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    Impair {
        node: String,
        direction: LinkDirection,
        impairment: ImpairSpec,
        /// Only the node's link to this network (default: every link of the node).
        #[serde(skip_serializing_if = "Option::is_none")]
        network: Option<String>,
    },
    Kill {
        node: String,
        serving: Option<String>,
        /// Cluster nodes: only this daemon.
        #[serde(skip_serializing_if = "Option::is_none")]
        process: Option<ClusterProcess>,
    },
    Stop {
        node: String,
    },
    Pause {
        node: String,
    },
    Restart {
        node: String,
    },
    Crash {
        /// With `address`, the cluster's name: the node is the one hosting it at the start.
        node: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<std::net::Ipv4Addr>,
    },
    /// Every process of `node` killed, its lossy disks cut.
    PowerCut {
        node: String,
    },
    /// Tickle ACKs to client `node` dropped.
    DropTickles {
        node: String,
    },
    /// `ctdb moveip address node`.
    Moveip {
        node: String,
        address: std::net::Ipv4Addr,
    },
    /// `net witness client-move --witness-new-ip=address` on cluster node `node`.
    ClientMove {
        node: String,
        address: std::net::Ipv4Addr,
    },
    /// `ctdb stop|disable|ban` on `node`.
    Admin {
        node: String,
        command: AdminCommand,
        #[serde(skip_serializing_if = "Option::is_none")]
        ban_time: Option<Duration>,
    },
    /// `node`'s frames (with `peer` only, TCP `port` only) held in one or both directions.
    Hold {
        node: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        network: Option<String>,
        direction: LinkDirection,
        release: Release,
    },
    /// The `nth` SMB2 `command` sent by `sent_by` between server `node` and `peer`.
    Message {
        node: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        command: Smb2Command,
        sent_by: SentBy,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u32>,
        nth: u32,
        action: MessageFaultAction,
        #[serde(skip_serializing_if = "Option::is_none")]
        delay: Option<Duration>,
        release: Release,
    },
    /// Cluster node `node` cut off from every client.
    Isolate {
        /// With `address`, the cluster's name: the node is the one hosting it at the start.
        node: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        address: Option<std::net::Ipv4Addr>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Reset { .. } => "reset",
            Action::Blackhole { .. } => "blackhole",
            Action::Partition { .. } => "partition",
            Action::Impair { .. } => "impair",
            Action::Kill { .. } => "kill",
            Action::Stop { .. } => "stop",
            Action::Pause { .. } => "pause",
            Action::Restart { .. } => "restart",
            Action::Crash { .. } => "crash",
            Action::PowerCut { .. } => "power_cut",
            Action::Moveip { .. } => "moveip",
            Action::ClientMove { .. } => "client_move",
            Action::DropTickles { .. } => "drop_tickles",
            Action::Admin { .. } => "admin",
            Action::Isolate { .. } => "isolate",
            Action::Hold { .. } => "hold",
            Action::Message { .. } => "message",
        }
    }

    /// Does this action need a heal?
    pub fn heals(&self) -> bool {
        !matches!(
            self,
            Action::Reset { .. }
                | Action::Restart { .. }
                | Action::Moveip { .. }
                | Action::ClientMove { .. }
                | Action::Kill {
                    serving: Some(_),
                    ..
                }
        )
    }

    /// The node it names (partitions name several).
    pub fn node(&self) -> Option<&str> {
        match self {
            Action::Reset { node, .. }
            | Action::Blackhole { node, .. }
            | Action::Impair { node, .. }
            | Action::Kill { node, .. }
            | Action::Stop { node }
            | Action::Pause { node }
            | Action::Restart { node }
            | Action::Crash { node, .. }
            | Action::PowerCut { node }
            | Action::Moveip { node, .. }
            | Action::ClientMove { node, .. }
            | Action::DropTickles { node }
            | Action::Admin { node, .. }
            | Action::Isolate { node, .. }
            | Action::Hold { node, .. }
            | Action::Message { node, .. } => Some(node),
            Action::Partition { .. } => None,
        }
    }
}

/// A link impairment with probabilities as fractions (0.0..=1.0).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImpairSpec {
    pub latency: Duration,
    pub jitter: Duration,
    pub distribution: DelayDistribution,
    pub loss: f64,
    pub loss_correlation: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub reorder_gap: Duration,
    pub corrupt: f64,
    pub rate_bps: u64,
}

/// Every fault occurrence of a (valid) plan, ordered by start time.
pub fn schedule(plan: &Plan) -> Vec<Scheduled> {
    let servers: Vec<String> = plan
        .topology
        .servers
        .iter()
        .map(|s| s.name.value.clone())
        .chain(plan.topology.clusters.iter().flat_map(|c| c.node_names()))
        .collect();
    let mut nodes = servers.clone();
    nodes.extend(plan.topology.clients.iter().map(|c| c.name.value.clone()));
    let mut out = Vec::new();
    for (index, fault) in plan.faults.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(
            plan.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let every = fault
            .every
            .as_ref()
            .map(|e| e.value.as_duration())
            .unwrap_or_default();
        let count = fault.count.as_ref().map(|c| c.value).unwrap_or(1);
        for occurrence in 0..count {
            let at = fault.at.value.as_duration() + every * occurrence;
            let hold = fault.hold.as_ref().map(|h| h.value.as_duration());
            if let Some(action) = resolve(plan, fault, *fault.kind, &servers, &nodes, &mut rng) {
                out.push(Scheduled {
                    fault: index,
                    occurrence,
                    at,
                    hold,
                    action,
                    require_effect: fault.require_effect,
                });
            }
        }
    }
    out.sort_by_key(|s| (s.at, s.fault, s.occurrence));
    out
}

fn names(list: &Option<crate::Spanned<Vec<crate::Spanned<String>>>>) -> Option<Vec<String>> {
    list.as_ref()
        .map(|l| l.value.iter().map(|n| n.value.clone()).collect())
}

fn pick(rng: &mut ChaCha8Rng, from: &[String]) -> Option<String> {
    (!from.is_empty()).then(|| from[rng.random_range(0..from.len())].clone())
}

/// `kind` is the fault's own kind, or the one a random entry drew.
fn resolve(
    plan: &Plan,
    fault: &Fault,
    kind: FaultKind,
    servers: &[String],
    nodes: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<Action> {
    let node = fault.node.as_ref().map(|n| n.value.clone());
    let among = names(&fault.among).unwrap_or_else(|| nodes.to_vec());
    let peer = fault.peer.as_ref().map(|p| p.value.clone());
    let network = fault.network.as_ref().map(|n| n.value.clone());
    Some(match kind {
        FaultKind::Random => {
            let among_servers: Vec<String> = among
                .iter()
                .filter(|n| servers.contains(n))
                .cloned()
                .collect();
            let kinds = &fault.kinds.as_ref()?.value;
            let drawn = kinds[rng.random_range(0..kinds.len())];
            // A drawn kind picks its own targets from `among`.
            let mut drawn_fault = fault.clone();
            drawn_fault.node = None;
            return resolve_drawn(&drawn_fault, drawn, servers, &among, &among_servers, rng);
        }
        FaultKind::Reset => Action::Reset {
            node: node.clone()?,
            peer,
            port: fault.port.as_ref().map(|p| p.value).unwrap_or(SMB_PORT),
            side: fault.side.as_ref().map(|s| s.value).unwrap_or_default(),
        },
        FaultKind::Blackhole => Action::Blackhole {
            node: node.clone()?,
            peer,
            port: fault.port.as_ref().map(|p| p.value),
            network,
        },
        FaultKind::Partition => Action::Partition {
            cuts: partition_cuts(fault, &among, rng)?,
            tcp_port: fault.port.as_ref().map(|p| p.value),
            network,
        },
        FaultKind::Impair => Action::Impair {
            node: node?,
            direction: fault
                .direction
                .as_ref()
                .map(|d| d.value)
                .unwrap_or_default(),
            impairment: impair_spec(fault),
            network,
        },
        FaultKind::Kill => Action::Kill {
            node: node.clone()?,
            serving: fault.serving.as_ref().map(|s| s.value.clone()),
            process: fault.process.as_ref().map(|p| p.value),
        },
        FaultKind::DropTickles => Action::DropTickles {
            node: node.clone()?,
        },
        FaultKind::Moveip => Action::Moveip {
            node: node.clone()?,
            address: fault.address.as_ref()?.value,
        },
        FaultKind::ClientMove => Action::ClientMove {
            node: node.clone()?,
            address: fault.address.as_ref()?.value,
        },
        FaultKind::Hold => Action::Hold {
            node: node.clone()?,
            peer,
            port: fault.port.as_ref().map(|p| p.value),
            network,
            direction: fault
                .direction
                .as_ref()
                .map(|d| d.value)
                .unwrap_or_default(),
            release: fault.release.as_ref().map(|r| r.value).unwrap_or_default(),
        },
        FaultKind::Message => {
            let m = &fault.message.as_ref()?.value;
            Action::Message {
                node: node.clone()?,
                peer,
                command: m.command.value,
                sent_by: m.sent_by,
                status: match &m.status {
                    Some(s) => Some(crate::fault_checks::parse_status(&s.value)?),
                    None => None,
                },
                nth: m.nth.as_ref().map(|n| n.value).unwrap_or(1),
                action: fault.action.as_ref()?.value,
                delay: fault.delay.as_ref().map(|d| d.value.as_duration()),
                release: fault.release.as_ref().map(|r| r.value).unwrap_or_default(),
            }
        }
        FaultKind::Stop => Action::Stop {
            node: node.clone()?,
        },
        FaultKind::Admin => Action::Admin {
            node: node.clone()?,
            command: fault.command.as_ref()?.value,
            ban_time: (fault.command.as_ref()?.value == AdminCommand::Ban).then(|| {
                fault
                    .ban_time
                    .as_ref()
                    .map(|t| t.value.as_duration())
                    .unwrap_or(DEFAULT_BAN_TIME)
            }),
        },
        FaultKind::Isolate => match fault.address.as_ref() {
            Some(a) => Action::Isolate {
                node: crate::addresses::cluster_of_public(plan, a.value)?,
                address: Some(a.value),
            },
            None => Action::Isolate {
                node: node.clone()?,
                address: None,
            },
        },
        FaultKind::Pause => Action::Pause { node: node? },
        FaultKind::Restart => Action::Restart {
            node: node.clone()?,
        },
        FaultKind::PowerCut => Action::PowerCut {
            node: node.clone()?,
        },
        FaultKind::Crash => match fault.address.as_ref() {
            Some(a) => Action::Crash {
                node: crate::addresses::cluster_of_public(plan, a.value)?,
                address: Some(a.value),
            },
            None => Action::Crash {
                node: node.clone()?,
                address: None,
            },
        },
    })
}

fn resolve_drawn(
    fault: &Fault,
    kind: FaultKind,
    servers: &[String],
    among: &[String],
    among_servers: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<Action> {
    let server = pick(rng, among_servers);
    Some(match kind {
        FaultKind::Reset => Action::Reset {
            node: server?,
            peer: None,
            port: SMB_PORT,
            side: ResetSide::Server,
        },
        FaultKind::Blackhole => Action::Blackhole {
            node: pick(rng, among)?,
            peer: None,
            port: None,
            network: None,
        },
        FaultKind::Partition => Action::Partition {
            cuts: partition_cuts(fault, among, rng)?,
            tcp_port: None,
            network: None,
        },
        FaultKind::Kill => Action::Kill {
            node: server?,
            serving: None,
            process: None,
        },
        FaultKind::Stop => Action::Stop { node: server? },
        FaultKind::Pause => Action::Pause { node: server? },
        FaultKind::Restart => Action::Restart { node: server? },
        FaultKind::Crash => Action::Crash {
            node: server?,
            address: None,
        },
        FaultKind::PowerCut => Action::PowerCut { node: server? },
        // Validation keeps these out of random schedules.
        FaultKind::Impair
        | FaultKind::Random
        | FaultKind::Moveip
        | FaultKind::ClientMove
        | FaultKind::DropTickles
        | FaultKind::Admin
        | FaultKind::Isolate
        | FaultKind::Hold
        | FaultKind::Message => {
            let _ = servers;
            return None;
        }
    })
}

fn partition_cuts(
    fault: &Fault,
    among: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<Vec<(Vec<String>, Vec<String>)>> {
    let everyone_but = |left: &[String]| {
        among
            .iter()
            .filter(|n| !left.contains(n))
            .cloned()
            .collect::<Vec<_>>()
    };
    let both_ways = |a: Vec<String>, b: Vec<String>| vec![(a.clone(), b.clone()), (b, a)];
    if let Some(groups) = &fault.groups {
        let groups: Vec<Vec<String>> = groups
            .value
            .iter()
            .map(|g| g.iter().map(|n| n.value.clone()).collect())
            .collect();
        let mut cuts = Vec::new();
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    cuts.push((a.clone(), b.clone()));
                }
            }
        }
        return Some(cuts);
    }
    if let (Some(from), Some(to)) = (names(&fault.from), names(&fault.to)) {
        return Some(vec![(from, to)]);
    }
    if let Some(node) = &fault.node {
        let alone = vec![node.value.clone()];
        let rest = everyone_but(&alone);
        return Some(both_ways(alone, rest));
    }
    let choose = fault
        .choose
        .as_ref()
        .map(|c| c.value)
        .unwrap_or(Choose::One);
    let n = among.len();
    let size = match choose {
        Choose::One => 1,
        Choose::Minority => ((n.saturating_sub(1)) / 2).max(1),
        Choose::Majority => n / 2 + 1,
        Choose::All => {
            let singles: Vec<Vec<String>> = among.iter().map(|m| vec![m.clone()]).collect();
            let mut cuts = Vec::new();
            for (i, a) in singles.iter().enumerate() {
                for (j, b) in singles.iter().enumerate() {
                    if i != j {
                        cuts.push((a.clone(), b.clone()));
                    }
                }
            }
            return Some(cuts);
        }
    };
    let mut pool = among.to_vec();
    let mut chosen = Vec::new();
    while chosen.len() < size.min(n) {
        chosen.push(pool.remove(rng.random_range(0..pool.len())));
    }
    chosen.sort();
    Some(both_ways(chosen, pool))
}

fn impair_spec(fault: &Fault) -> ImpairSpec {
    let pct = |p: &Option<crate::Spanned<crate::Percent>>| {
        p.as_ref().map(|p| p.value.fraction()).unwrap_or(0.0)
    };
    let dur =
        |d: &Option<crate::Spanned<crate::PlanDuration>>| d.as_ref().map(|d| d.value.as_duration());
    ImpairSpec {
        latency: dur(&fault.latency).unwrap_or_default(),
        jitter: dur(&fault.jitter).unwrap_or_default(),
        distribution: fault
            .distribution
            .as_ref()
            .map(|d| d.value)
            .unwrap_or_default(),
        loss: pct(&fault.loss),
        loss_correlation: pct(&fault.loss_correlation),
        duplicate: pct(&fault.duplicate),
        reorder: pct(&fault.reorder),
        reorder_gap: dur(&fault.reorder_gap).unwrap_or(DEFAULT_REORDER_GAP),
        corrupt: pct(&fault.corrupt),
        rate_bps: fault
            .rate
            .as_ref()
            .map(|r| r.value.bits_per_second)
            .unwrap_or(0),
    }
}
