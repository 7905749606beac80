//! `failover`: per cluster fault (node crash, daemon killed, address moved) and per client it
//! cut off, the failover's steps in time — node loss → address taken over (the new owner's
//! gratuitous ARP) → tickle ACK → the client's connection reset → reconnected → first ok op —
//! judged against `takeover_within`, `tickle` and `reconnect_within`.
//!
//! It reads what the run recorded: the nemesis's fault steps (`detail.node`: the node lost,
//! `detail.cut_after_ns`: when it went, after the step began), the cluster observations
//! (`address_moved`: which node held which address) and the wire's (`garp`, `tickle_ack`,
//! with the instant the sender put them on the wire), and the clients' ops.

use std::collections::BTreeMap;
use std::time::Duration;

use history::value::FaultPhase;
use history::{OpType, Process, Record};
use serde::Serialize;

use crate::{CheckResult, Validity};

pub const NAME: &str = "failover";
/// Fault kinds that take a node (or an address) away from its clients.
/// `client_move` takes no node away: it tells every witness client to leave.
const CLUSTER_FAULTS: [&str; 6] = ["crash", "kill", "stop", "moveip", "admin", "client_move"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailoverOptions {
    pub takeover_within: Option<Duration>,
    /// Some(true): a tickle ACK must follow the takeover; Some(false): none may.
    pub tickle: Option<bool>,
    pub reconnect_within: Option<Duration>,
    /// From the fault to each cut-off client's first witness notification.
    pub witness_within: Option<Duration>,
    /// From the fault to the next registration of each client whose witness the lost node
    /// held.
    pub reregister_within: Option<Duration>,
}

/// One failover, each step in seconds after the node was lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failover {
    pub fault: String,
    /// The history index of the fault's start record (what a failing verdict cites).
    pub op: u64,
    pub node: String,
    pub at_s: f64,
    /// The addresses the lost node held.
    pub addresses: Vec<String>,
    pub takeover_s: Option<f64>,
    pub taken_by: Option<String>,
    pub tickle_s: Option<f64>,
    pub clients: BTreeMap<String, ClientSteps>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientSteps {
    /// The first witness notification (`witness_notify`) after the fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_s: Option<f64>,
    /// The client's witness was on the lost node: when it registered again elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness_lost: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reregistered_s: Option<f64>,
    pub reset_s: Option<f64>,
    pub reconnected_s: Option<f64>,
    pub first_ok_s: Option<f64>,
    /// Durable reclaims (DH2C/DHnC) refused between the reset and the first ok op: where the
    /// time after the reconnect went when the client then had to open the file afresh.
    pub reclaims_refused: u32,
}

/// Every cluster failover in the history, with its steps.
pub fn timelines(history: &[Record]) -> Vec<Failover> {
    let mut holder: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    // When each fault step was invoked, and who held which address then (a start that waits
    // for the addresses to move is recorded after they moved).
    let mut invoked: BTreeMap<(u64, u64), (u64, BTreeMap<String, String>)> = BTreeMap::new();
    for r in history {
        match (&r.process, r.f.as_str()) {
            (Process::Named(p), "address_moved") if p == "cluster" => {
                let text = |key| r.value.observed(key).and_then(|v| v.as_str());
                if let (Some(a), Some(to)) = (text("address"), text("to")) {
                    holder.insert(a.to_string(), to.to_string());
                }
            }
            (Process::Named(p), f) if p == "nemesis" && CLUSTER_FAULTS.contains(&f) => {
                let Some(step) = r.value.fault() else {
                    continue;
                };
                let key = (step.fault, step.occurrence);
                if step.phase != FaultPhase::Start {
                    continue;
                }
                if r.kind == OpType::Invoke {
                    invoked.insert(key, (r.time_ns, holder.clone()));
                    continue;
                }
                if r.kind != OpType::Ok {
                    continue;
                }
                let detail = step.detail.as_ref();
                let node = detail
                    .and_then(|d| d.node.as_deref())
                    .or(r.node.as_deref())
                    .unwrap_or("")
                    .to_string();
                let (began, held) = invoked
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| (r.time_ns, holder.clone()));
                let at = began + detail.and_then(|d| d.cut_after_ns).unwrap_or(0);
                let addresses: Vec<String> = match step.action_str("address") {
                    Some(a) if f == "moveip" => vec![a.to_string()],
                    _ => held
                        .iter()
                        .filter(|(_, n)| **n == node)
                        .map(|(a, _)| a.clone())
                        .collect(),
                };
                let mut failover = follow(history, f, node, at, addresses);
                failover.op = r.index;
                out.push(failover);
            }
            _ => {}
        }
    }
    out
}

fn secs(ns: u64, from: u64) -> f64 {
    ns.saturating_sub(from) as f64 / 1e9
}

/// The steps after a fault that took `node` (and `addresses`) away at `at` ns.
fn follow(
    history: &[Record],
    fault: &str,
    node: String,
    at: u64,
    addresses: Vec<String>,
) -> Failover {
    let mut f = Failover {
        fault: fault.to_string(),
        at_s: at as f64 / 1e9,
        addresses,
        ..Default::default()
    };
    let wire_at = |r: &Record| {
        r.value
            .observed("at_ns")
            .and_then(|v| v.as_u64())
            .unwrap_or(r.time_ns)
    };
    let ours = |r: &Record, key: &str| {
        r.value
            .observed(key)
            .and_then(|v| v.as_str())
            .is_some_and(|a| f.addresses.iter().any(|x| x == a))
    };
    let mut takeover = None;
    let mut tickle = None;
    // Wire records are appended in batches, possibly before the fault's own record: all of
    // them are looked at, by the instant the frame was sent.
    for r in history {
        let Process::Named(p) = &r.process else {
            continue;
        };
        if p != "wire" || wire_at(r) < at {
            continue;
        }
        let sender = r.node.clone().unwrap_or_default();
        if r.f == "garp" && ours(r, "ip") && sender != node && takeover.is_none() {
            takeover = Some((wire_at(r), sender));
        } else if r.f == "tickle_ack"
            && ours(r, "src")
            && tickle.is_none()
            && r.value.observed("dropped") != Some(&serde_json::Value::Bool(true))
        {
            tickle = Some(wire_at(r));
        }
    }
    f.takeover_s = takeover.as_ref().map(|(t, _)| secs(*t, at));
    f.taken_by = takeover.map(|(_, n)| n);
    f.tickle_s = tickle.map(|t| secs(t, at));
    // Clients whose connection ended after the fault (before it, nothing was cut off).
    // A client whose connection another node served when the fault began (`served_by`)
    // was not cut off by it, whatever happened to it later.
    let mut served_by: BTreeMap<String, String> = BTreeMap::new();
    let mut conn_at_reset: BTreeMap<String, Option<u64>> = BTreeMap::new();
    // Each client's witness interface when the fault began (its last registration).
    let mut witness_at: BTreeMap<String, String> = BTreeMap::new();
    let moves_everyone = fault == "client_move";
    for r in history {
        let Process::Worker(_) = r.process else {
            continue;
        };
        let Some(client) = r.smb.client.clone() else {
            continue;
        };
        let registered = match &r.value {
            history::Value::WitnessRegister(w) if w.error.is_none() => Some(w),
            _ => None,
        };
        if r.time_ns < at {
            if let Some(n) = &r.smb.served_by {
                served_by.insert(client.clone(), n.clone());
            }
            if let Some(w) = registered {
                witness_at.insert(client, w.witness.clone());
            }
            continue;
        }
        // A client whose witness the lost node held must register elsewhere, whichever
        // node served its SMB connection.
        if let Some(w) = witness_at.get(&client) {
            if f.addresses.contains(w) {
                let steps = f.clients.entry(client.clone()).or_default();
                steps.witness_lost = Some(w.clone());
                // Registered again, through whichever interface answered (the lost
                // node's address itself may have moved to a live node by then).
                if registered.is_some() && steps.reregistered_s.is_none() {
                    steps.reregistered_s = Some(secs(r.time_ns, at));
                }
            }
        }
        if !moves_everyone && served_by.get(&client).is_some_and(|n| *n != node) {
            continue;
        }
        let steps = f.clients.entry(client.clone()).or_default();
        if r.f == "witness_notify" && steps.witness_s.is_none() {
            steps.witness_s = Some(secs(r.time_ns, at));
            continue;
        }
        if history::ops::Op::of(&r.f).is_event() && r.f != "disconnect" {
            continue;
        }
        if r.f == "disconnect" && steps.reset_s.is_none() {
            steps.reset_s = Some(secs(r.time_ns, at));
            conn_at_reset.insert(client, r.smb.conn);
            continue;
        }
        let Some(old_conn) = conn_at_reset.get(&client) else {
            continue;
        };
        if steps.reconnected_s.is_none() && r.smb.conn > *old_conn {
            steps.reconnected_s = Some(secs(r.time_ns, at));
        }
        if steps.first_ok_s.is_none() && r.kind == OpType::Fail && r.f == "reconnect" {
            steps.reclaims_refused += 1;
        }
        if steps.first_ok_s.is_none() && r.kind == OpType::Ok && r.f != "disconnect" {
            steps.first_ok_s = Some(secs(r.time_ns, at));
        }
    }
    f.clients
        .retain(|_, s| s.reset_s.is_some() || s.witness_lost.is_some());
    f.node = node;
    f
}

pub fn failover(history: &[Record], opts: &FailoverOptions) -> CheckResult {
    let all = timelines(history);
    let mut valid = Validity::True;
    let mut problems = Vec::new();
    let mut ops = Vec::new();
    let late = |what: &str, got: Option<f64>, within: Option<Duration>| -> Option<String> {
        let within = within?;
        match got {
            Some(s) if s <= within.as_secs_f64() => None,
            Some(s) => Some(format!("{what} after {s:.2}s, later than {within:?}")),
            None => Some(format!("no {what} seen (expected within {within:?})")),
        }
    };
    for f in &all {
        let label = format!("{} of {} at {:.2}s", f.fault, f.node, f.at_s);
        let mut mine = Vec::new();
        mine.extend(late("takeover", f.takeover_s, opts.takeover_within));
        match (opts.tickle, f.tickle_s) {
            (Some(true), None) => mine.push("no tickle ACK seen (expected: sent)".into()),
            (Some(false), Some(s)) => {
                mine.push(format!("tickle ACK seen after {s:.2}s (expected: absent)"))
            }
            _ => {}
        }
        for (client, steps) in &f.clients {
            if steps.reset_s.is_some() {
                if let Some(p) = late("first ok op", steps.first_ok_s, opts.reconnect_within) {
                    mine.push(format!("{client}: {p}"));
                }
                if let Some(p) = late("witness notification", steps.witness_s, opts.witness_within)
                {
                    mine.push(format!("{client}: {p}"));
                }
            }
            if let Some(w) = &steps.witness_lost {
                let what = format!("registration again (its witness {w} was lost)");
                if let Some(p) = late(&what, steps.reregistered_s, opts.reregister_within) {
                    mine.push(format!("{client}: {p}"));
                }
            }
        }
        if opts.reregister_within.is_some() && !f.clients.values().any(|s| s.witness_lost.is_some())
        {
            mine.push(
                "no client's witness was on the lost node: no re-registration to judge".into(),
            );
        }
        if opts.witness_within.is_some() && !f.clients.values().any(|s| s.reset_s.is_some()) {
            mine.push("no client was cut off: no witness notification to judge".into());
        }
        if !mine.is_empty() {
            valid = Validity::False;
            ops.push(f.op);
            problems.push(format!("{label}: {}", mine.join("; ")));
        }
    }
    let judged = opts.takeover_within.is_some()
        || opts.tickle.is_some()
        || opts.reconnect_within.is_some()
        || opts.witness_within.is_some()
        || opts.reregister_within.is_some();
    if all.is_empty() && judged {
        valid = Validity::Unknown;
        problems.push("no cluster fault in the history: nothing to judge".into());
    }
    let timeline = serde_json::to_string(&all).unwrap_or_default();
    let explanation = if problems.is_empty() {
        format!(
            "{} failover(s) within expectations; timeline: {timeline}",
            all.len()
        )
    } else {
        format!("{}; timeline: {timeline}", problems.join("; "))
    };
    // What the expectation needs exercised: a cluster node lost while clients used it.
    let preconditions = if judged {
        vec![crate::Precondition {
            what: "a cluster fault that took a node's public addresses away".into(),
            held: if all.is_empty() {
                Validity::Unknown
            } else {
                Validity::True
            },
            detail: format!("{} failover(s) in the history", all.len()),
        }]
    } else {
        Vec::new()
    };
    CheckResult {
        checker: NAME.into(),
        valid,
        explanation,
        ops,
        preconditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(
        index: u64,
        ms: u64,
        process: Process,
        kind: OpType,
        f: &str,
        node: Option<&str>,
        value: serde_json::Value,
    ) -> Record {
        // Through the history's typed values, as a stored history is read.
        let value = history::Value::read_for(f, kind, process.name(), &value.to_string()).unwrap();
        Record {
            index,
            time_ns: ms * 1_000_000,
            process,
            kind,
            f: f.into(),
            node: node.map(String::from),
            value,
            ..Default::default()
        }
    }

    fn named(p: &str) -> Process {
        Process::Named(p.into())
    }

    fn client(mut r: Record, conn: u64) -> Record {
        r.smb.client = Some("c1/0".into());
        r.smb.conn = Some(conn);
        r
    }

    /// A crash of ctdb-1 (holding 198.19.0.10) at 1 s: GARP by ctdb-0 at +4 s, tickle at
    /// +4.01 s, the client reset at +4.02 s, reconnected at +4.05 s, its DH2C refused, first ok
    /// op (a fresh open) at +6 s.
    fn history() -> Vec<Record> {
        vec![
            rec(
                0,
                100,
                named("cluster"),
                OpType::Info,
                "address_moved",
                Some("ctdb-1"),
                json!({ "address": "198.19.0.10", "to": "ctdb-1" }),
            ),
            client(
                rec(
                    1,
                    500,
                    Process::Worker(0),
                    OpType::Ok,
                    "write",
                    Some("c1"),
                    json!({ "written": 4096 }),
                ),
                1,
            ),
            rec(
                2,
                1000,
                named("nemesis"),
                OpType::Invoke,
                "crash",
                Some("ctdb"),
                json!({ "fault": 0, "occurrence": 0, "phase": "start", "action": {} }),
            ),
            rec(
                3,
                1050,
                named("nemesis"),
                OpType::Ok,
                "crash",
                Some("ctdb"),
                json!({ "fault": 0, "occurrence": 0, "phase": "start", "action": {}, "detail": { "node": "ctdb-1", "cut_after_ns": 0 } }),
            ),
            client(
                rec(
                    4,
                    5020,
                    Process::Worker(0),
                    OpType::Info,
                    "disconnect",
                    Some("c1"),
                    json!({ "reason": "reset" }),
                ),
                1,
            ),
            rec(
                5,
                5100,
                named("wire"),
                OpType::Info,
                "garp",
                Some("ctdb-0"),
                json!({ "ip": "198.19.0.10", "at_ns": 5_000_000_000u64 }),
            ),
            rec(
                6,
                5100,
                named("wire"),
                OpType::Info,
                "tickle_ack",
                Some("ctdb-0"),
                json!({ "src": "198.19.0.10", "at_ns": 5_010_000_000u64 }),
            ),
            client(
                rec(
                    7,
                    5050,
                    Process::Worker(2),
                    OpType::Invoke,
                    "reconnect",
                    Some("c1"),
                    json!({ "durable": "v2", "open": 0 }),
                ),
                2,
            ),
            client(
                rec(
                    8,
                    5060,
                    Process::Worker(2),
                    OpType::Fail,
                    "reconnect",
                    Some("c1"),
                    json!(null),
                ),
                2,
            ),
            client(
                rec(
                    9,
                    7000,
                    Process::Worker(2),
                    OpType::Ok,
                    "open",
                    Some("c1"),
                    json!({ "durable": true, "timeout_ms": 60000, "persistent": false, "oplock": "lease" }),
                ),
                2,
            ),
        ]
    }

    #[test]
    fn the_steps_of_a_failover_are_timed_from_the_loss() {
        let t = timelines(&history());
        assert_eq!(t.len(), 1);
        let f = &t[0];
        assert_eq!(
            (f.node.as_str(), f.addresses.clone()),
            ("ctdb-1", vec!["198.19.0.10".to_string()])
        );
        assert_eq!(f.taken_by.as_deref(), Some("ctdb-0"));
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
        assert!(near(f.takeover_s, 4.0) && near(f.tickle_s, 4.01), "{f:?}");
        let c = &f.clients["c1/0"];
        assert!(
            near(c.reset_s, 4.02)
                && near(c.reconnected_s, 4.05)
                && near(c.first_ok_s, 6.0)
                && c.reclaims_refused == 1,
            "{c:?}"
        );
    }

    /// A client another node served when the crash began was not cut off by it, even if its
    /// connection ended afterwards; the one the lost node served is followed.
    #[test]
    fn only_clients_the_lost_node_served_are_followed() {
        let mut h = history();
        h[1].smb.served_by = Some("ctdb-1".into());
        let mut other = client(
            rec(
                9,
                600,
                Process::Worker(1),
                OpType::Ok,
                "write",
                Some("c1"),
                json!({ "written": 4096 }),
            ),
            1,
        );
        other.smb.client = Some("c1/1".into());
        other.smb.served_by = Some("ctdb-2".into());
        let mut gone = other.clone();
        gone.time_ns = 6_000_000_000;
        gone.kind = OpType::Info;
        gone.f = "disconnect".into();
        gone.index = 10;
        h.insert(2, other);
        h.push(gone);
        let f = &timelines(&h)[0];
        assert_eq!(f.clients.keys().collect::<Vec<_>>(), ["c1/0"], "{f:?}");
        // Without `served_by` (older histories) every client reset after the fault counts.
        for r in &mut h {
            r.smb.served_by = None;
        }
        assert_eq!(timelines(&h)[0].clients.len(), 2);
    }

    #[test]
    fn expectations_pass_and_fail() {
        let within = |t, r| FailoverOptions {
            takeover_within: Some(Duration::from_secs(t)),
            tickle: Some(true),
            reconnect_within: Some(Duration::from_secs(r)),
            ..Default::default()
        };
        assert_eq!(failover(&history(), &within(5, 7)).valid, Validity::True);
        let late = failover(&history(), &within(3, 5));
        assert_eq!(late.valid, Validity::False);
        assert!(
            late.explanation.contains("takeover after 4.00s"),
            "{}",
            late.explanation
        );
        assert!(
            late.explanation.contains("c1/0: first ok op after 6.00s"),
            "{}",
            late.explanation
        );
        let absent = FailoverOptions {
            tickle: Some(false),
            ..Default::default()
        };
        assert_eq!(failover(&history(), &absent).valid, Validity::False);
        assert_eq!(failover(&[], &within(5, 7)).valid, Validity::Unknown);
        // A failing failover cites the fault's start record.
        assert_eq!(late.ops, vec![3]);
    }

    /// A witness client: registered through 198.19.0.11 before the crash, notified at
    /// +1.2 s (before the takeover), then reset.
    fn with_witness(mut h: Vec<Record>, notified_ms: u64) -> Vec<Record> {
        let mut reg = client(
            rec(
                100,
                600,
                Process::Worker(0),
                OpType::Info,
                "witness_register",
                Some("c1"),
                json!({ "witness": "198.19.0.11", "address": "198.19.0.10", "took_ms": 5 }),
            ),
            1,
        );
        reg.smb.conn = None;
        h.insert(2, reg);
        let mut n = client(
            rec(
                101,
                notified_ms,
                Process::Worker(0),
                OpType::Info,
                "witness_notify",
                Some("c1"),
                json!({ "message_type": "resource_change",
                        "resources": [{ "name": "198.19.0.10", "state": "unavailable" }],
                        "move_to": "198.19.0.11" }),
            ),
            1,
        );
        n.smb.conn = None;
        let at = h
            .iter()
            .position(|r| r.time_ns > notified_ms * 1_000_000)
            .unwrap();
        h.insert(at, n);
        h
    }

    #[test]
    fn the_witness_step_is_judged() {
        let opts = FailoverOptions {
            witness_within: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let h = with_witness(history(), 2200);
        let t = &timelines(&h)[0];
        assert_eq!(t.clients["c1/0"].witness_s, Some(1.2));
        assert_eq!(failover(&h, &opts).valid, Validity::True);
        // Notified too late, or never: fails, citing the crash.
        let late = failover(&with_witness(history(), 4000), &opts);
        assert_eq!(late.valid, Validity::False, "{}", late.explanation);
        assert!(late
            .explanation
            .contains("witness notification after 3.00s"));
        assert_eq!(late.ops, vec![3]);
        let none = failover(&history(), &opts);
        assert_eq!(none.valid, Validity::False);
        assert!(none.explanation.contains("no witness notification seen"));
    }

    #[test]
    fn a_lost_witness_must_be_registered_again() {
        // The crash takes 198.19.0.11, the client's witness, with ctdb-2; the client's SMB
        // connection (ctdb-1's address) is not cut off by it.
        let mut h = with_witness(history(), 2200);
        h.insert(
            0,
            rec(
                99,
                50,
                named("cluster"),
                OpType::Info,
                "address_moved",
                Some("ctdb-2"),
                json!({ "address": "198.19.0.11", "to": "ctdb-2" }),
            ),
        );
        for r in &mut h {
            if r.f == "crash" && r.kind == OpType::Ok {
                r.value = history::Value::read_for(
                    "crash",
                    OpType::Ok,
                    Some("nemesis"),
                    &json!({ "fault": 0, "occurrence": 0, "phase": "start", "action": {},
                             "detail": { "node": "ctdb-2", "cut_after_ns": 0 } })
                    .to_string(),
                )
                .unwrap();
            }
        }
        let opts = FailoverOptions {
            reregister_within: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let never = failover(&h, &opts);
        assert_eq!(never.valid, Validity::False, "{}", never.explanation);
        assert!(
            never.explanation.contains("registration again"),
            "{}",
            never.explanation
        );
        let mut again = client(
            rec(
                102,
                4000,
                Process::Worker(0),
                OpType::Info,
                "witness_register",
                Some("c1"),
                json!({ "witness": "198.19.0.12", "address": "198.19.0.10", "took_ms": 9 }),
            ),
            1,
        );
        again.smb.conn = None;
        h.push(again);
        let t = &timelines(&h)[0];
        assert_eq!(
            t.clients["c1/0"].witness_lost.as_deref(),
            Some("198.19.0.11")
        );
        assert_eq!(t.clients["c1/0"].reregistered_s, Some(3.0));
        assert_eq!(failover(&h, &opts).valid, Validity::True);
    }
}
