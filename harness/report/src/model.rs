//! What the report draws, computed once from a history: ops (an invoke paired with its
//! completion), the lanes they are drawn in, fault windows and each client's stall and
//! recovery per fault. It reads only process, type, f, node, the SMB client and
//! value.fault/phase; every other field is the record table's, shown generically.

use std::collections::HashMap;

use history::{OpType, Process, Record};

/// More lanes than this do not fit a screen: ops are then grouped by client, or folded.
pub const MAX_LANES: usize = 32;

/// How an op ended. `Pending`: invoked, never completed in the history (Jepsen's info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Ok,
    Info,
    Pending,
    Fail,
}

impl End {
    pub fn class(self) -> &'static str {
        match self {
            End::Ok => "ok",
            End::Fail => "fail",
            End::Info => "info",
            End::Pending => "pending",
        }
    }

    /// Failed, unknown or never finished: what a fault's stall is made of.
    pub fn is_bad(self) -> bool {
        self != End::Ok
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// Positions in the record slice (not history indexes).
    pub invoke: Option<u32>,
    pub done: Option<u32>,
    pub start: u64,
    /// Completion time; `None` while pending.
    pub end_ns: Option<u64>,
    pub end: End,
    pub lane: u32,
    pub client: u32,
}

impl Op {
    pub fn latency(&self) -> Option<u64> {
        self.end_ns.map(|e| e.saturating_sub(self.start))
    }
}

#[derive(Debug, Clone)]
pub struct FaultWindow {
    /// The plan's fault number (`value.fault`), or `f node` for a record without one.
    pub id: String,
    pub f: String,
    pub node: Option<String>,
    pub start: u64,
    pub end: u64,
    /// Time the heal completed, if it was recorded.
    pub healed: Option<u64>,
    /// A start or heal that failed, with its status.
    pub failed: Option<String>,
    /// Positions of the fault's records.
    pub records: Vec<u32>,
    /// Still in effect when the history ends.
    pub open: bool,
    /// What it did, from its records' `detail.effect`: e.g. "2 connection(s) reset", or
    /// "no effect" when every completed step recorded none; None when nothing was recorded.
    pub effect: Option<String>,
}

/// One client's view of one fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact {
    pub client: u32,
    /// From fault start to the last failed/info op before recovery.
    pub stall: Option<u64>,
    /// From fault start to the first ok op completed after the heal.
    pub recovery: Option<u64>,
    pub bad_ops: usize,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub pending: usize,
}

pub struct Model {
    pub t0: u64,
    pub t1: u64,
    pub ops: Vec<Op>,
    pub lanes: Vec<String>,
    pub clients: Vec<String>,
    pub faults: Vec<FaultWindow>,
    /// For each record position, the position of its partner (invoke ↔ completion).
    pub partner: Vec<u32>,
    pub counts: Counts,
    /// For each op, the latest completion of it and every op before it (pending: never).
    max_end_prefix: Vec<u64>,
}

pub const NONE: u32 = u32::MAX;

#[derive(Hash, PartialEq, Eq, Clone, Copy)]
enum Key<'a> {
    Worker(u64),
    Named(&'a str),
}

fn key(p: &Process) -> Key<'_> {
    match p {
        Process::Worker(n) => Key::Worker(*n),
        Process::Named(s) => Key::Named(s),
    }
}

/// The logical client an op belongs to: the SMB client (`c1/0`) when the record names one,
/// else its node (the plan's client host).
fn client_of(r: &Record) -> Option<&str> {
    r.smb.client.as_deref().or(r.node.as_deref())
}

fn is_nemesis(r: &Record) -> bool {
    matches!(&r.process, Process::Named(n) if n == "nemesis")
}

impl Model {
    /// `complete`: the run ended normally, so a fault without a heal record was one-shot
    /// (a restart) rather than cut off.
    pub fn build(records: &[Record], complete: bool) -> Model {
        let t0 = records.iter().map(|r| r.time_ns).min().unwrap_or(0);
        let t1 = records
            .iter()
            .map(|r| r.time_ns)
            .max()
            .unwrap_or(0)
            .max(t0 + 1_000_000);
        let mut partner = vec![NONE; records.len()];
        let mut ops = Vec::with_capacity(records.len() / 2 + 1);
        let mut op_process: Vec<Key> = Vec::with_capacity(records.len() / 2 + 1);
        let mut op_client: Vec<Option<&str>> = Vec::with_capacity(records.len() / 2 + 1);
        let mut open: HashMap<Key, usize> = HashMap::new();
        let mut nemesis = Vec::new();
        // A named process that never invokes (the wire's counters) records observations,
        // not ops: they stay in the record table but are not drawn or counted.
        let invoking: std::collections::HashSet<&str> = records
            .iter()
            .filter(|r| r.kind == OpType::Invoke)
            .filter_map(|r| match &r.process {
                Process::Named(n) => Some(n.as_str()),
                Process::Worker(_) => None,
            })
            .collect();
        for (pos, r) in records.iter().enumerate() {
            if is_nemesis(r) {
                nemesis.push(pos as u32);
                continue;
            }
            if let Process::Named(n) = &r.process {
                if !invoking.contains(n.as_str()) {
                    continue;
                }
            }
            let k = key(&r.process);
            match r.kind {
                OpType::Invoke => {
                    // An invoke while one is open: the earlier one never completed.
                    open.insert(k, ops.len());
                    ops.push(Op {
                        invoke: Some(pos as u32),
                        done: None,
                        start: r.time_ns,
                        end_ns: None,
                        end: End::Pending,
                        lane: 0,
                        client: 0,
                    });
                    op_process.push(k);
                    op_client.push(client_of(r));
                }
                kind => {
                    let end = match kind {
                        OpType::Ok => End::Ok,
                        OpType::Fail => End::Fail,
                        _ => End::Info,
                    };
                    match open.remove(&k) {
                        Some(i) => {
                            let op = &mut ops[i];
                            op.done = Some(pos as u32);
                            op.end_ns = Some(r.time_ns);
                            op.end = end;
                            let inv = op.invoke.expect("open ops have an invoke") as usize;
                            partner[inv] = pos as u32;
                            partner[pos] = inv as u32;
                            if op_client[i].is_none() {
                                op_client[i] = client_of(r);
                            }
                        }
                        // A completion with no invoke: an instant op.
                        None => {
                            ops.push(Op {
                                invoke: None,
                                done: Some(pos as u32),
                                start: r.time_ns,
                                end_ns: Some(r.time_ns),
                                end,
                                lane: 0,
                                client: 0,
                            });
                            op_process.push(k);
                            op_client.push(client_of(r));
                        }
                    }
                }
            }
        }
        let mut counts = Counts::default();
        for op in &ops {
            match op.end {
                End::Ok => counts.ok += 1,
                End::Fail => counts.fail += 1,
                End::Info => counts.info += 1,
                End::Pending => counts.pending += 1,
            }
        }
        let clients = assign_clients(&mut ops, &op_process, &op_client);
        let lanes = assign_lanes(&mut ops, &op_process, &op_client);
        let faults = fault_windows(records, &nemesis, t1, complete);
        let max_end_prefix = ops
            .iter()
            .scan(0u64, |max, op| {
                *max = (*max).max(op.end_ns.unwrap_or(u64::MAX));
                Some(*max)
            })
            .collect();
        Model {
            t0,
            t1,
            ops,
            lanes,
            clients,
            faults,
            partner,
            counts,
            max_end_prefix,
        }
    }

    /// Each client's stall and recovery for one fault.
    pub fn impacts(&self, fault: &FaultWindow) -> Vec<Impact> {
        let heal = fault.healed.unwrap_or(fault.end);
        let mut per_client: Vec<Impact> = (0..self.clients.len() as u32)
            .map(|client| Impact {
                client,
                stall: None,
                recovery: None,
                bad_ops: 0,
            })
            .collect();
        let mut active = vec![false; self.clients.len()];
        // First ok completed after the heal, per client.
        let mut recovered_at: Vec<Option<u64>> = vec![None; self.clients.len()];
        let from = self.first_op_ending_at_or_after(fault.start);
        let mut last_recovery = 0;
        for op in &self.ops[from..] {
            let c = op.client as usize;
            let Some(end) = op.end_ns else { continue };
            if end >= heal && op.end == End::Ok && recovered_at[c].is_none() {
                recovered_at[c] = Some(end);
                last_recovery = end;
                if recovered_at.iter().all(Option::is_some) {
                    break;
                }
            }
        }
        let all_recovered = recovered_at.iter().all(Option::is_some);
        for op in &self.ops[from..] {
            if all_recovered && op.start > last_recovery {
                break;
            }
            let c = op.client as usize;
            let Some(end) = op.end_ns else { continue };
            if end < fault.start || op.start > recovered_at[c].unwrap_or(u64::MAX) {
                continue;
            }
            // Affected: an op of the client was in flight while the fault was.
            active[c] |= op.start <= heal;
            if op.end.is_bad() && end <= recovered_at[c].unwrap_or(u64::MAX) {
                let imp = &mut per_client[c];
                imp.bad_ops += 1;
                imp.stall = Some(imp.stall.unwrap_or(0).max(end - fault.start));
            }
        }
        for (c, imp) in per_client.iter_mut().enumerate() {
            imp.recovery = recovered_at[c].map(|t| t - fault.start);
        }
        per_client.retain(|i| active[i.client as usize]);
        per_client
    }

    /// Up to about `max` ops that `pick` accepts, spread over the run: all of them if they
    /// fit, else the first to end in each of `columns` time slices (so every slice that has
    /// one keeps one). Indexes into `ops`.
    pub fn spread(&self, pick: impl Fn(End) -> bool, max: usize, columns: usize) -> Vec<usize> {
        let picked = self.ops.iter().enumerate().filter(|(_, op)| pick(op.end));
        if picked.clone().count() <= max {
            return picked.map(|(i, _)| i).collect();
        }
        let span = (self.t1 - self.t0).max(1) as u128;
        let mut taken = vec![false; columns];
        let mut out = Vec::new();
        for (i, op) in picked {
            let t = op.end_ns.unwrap_or(op.start).saturating_sub(self.t0) as u128;
            let col = ((t * columns as u128 / span) as usize).min(columns - 1);
            if !taken[col] {
                taken[col] = true;
                out.push(i);
            }
        }
        out
    }

    /// The first op that may end at or after `t`: every op before it ended earlier.
    fn first_op_ending_at_or_after(&self, t: u64) -> usize {
        self.max_end_prefix.partition_point(|&e| e < t)
    }
}

/// Clients by name (see `client_of`); an op with neither client nor node is its process's.
fn assign_clients(ops: &mut [Op], process: &[Key], client: &[Option<&str>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    for (i, op) in ops.iter_mut().enumerate() {
        let name = match client[i] {
            Some(n) => n.to_string(),
            None => process_label(process[i]),
        };
        let next = names.len() as u32;
        let id = *index.entry(name.clone()).or_insert_with(|| {
            names.push(name);
            next
        });
        op.client = id;
    }
    names
}

fn process_label(k: Key) -> String {
    match k {
        Key::Worker(n) => format!("p{n}"),
        Key::Named(s) => s.to_string(),
    }
}

/// One lane per process if they fit, else one per client, else processes folded modulo.
fn assign_lanes(ops: &mut [Op], process: &[Key], client: &[Option<&str>]) -> Vec<String> {
    let mut procs: Vec<Key> = process.to_vec();
    procs.sort_by_key(|k| match k {
        Key::Worker(n) => (0, *n, ""),
        Key::Named(s) => (1, 0, *s),
    });
    procs.dedup();
    if procs.len() <= MAX_LANES {
        let index: HashMap<Key, u32> = procs
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect();
        let mut client_of: Vec<Option<&str>> = vec![None; procs.len()];
        for (i, op) in ops.iter_mut().enumerate() {
            op.lane = index[&process[i]];
            client_of[op.lane as usize] = client_of[op.lane as usize].or(client[i]);
        }
        return procs
            .iter()
            .zip(client_of)
            .map(|(k, n)| match n {
                Some(n) => format!("{} {n}", process_label(*k)),
                None => process_label(*k),
            })
            .collect();
    }
    let mut clients: Vec<&str> = client.iter().map(|n| n.unwrap_or("-")).collect();
    clients.sort_unstable();
    clients.dedup();
    if clients.len() <= MAX_LANES {
        let index: HashMap<&str, u32> = clients
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u32))
            .collect();
        for (i, op) in ops.iter_mut().enumerate() {
            op.lane = index[client[i].unwrap_or("-")];
        }
        return clients
            .iter()
            .map(|n| format!("{n} (all processes)"))
            .collect();
    }
    let rank: HashMap<Key, usize> = procs.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    for (i, op) in ops.iter_mut().enumerate() {
        op.lane = (rank[&process[i]] % MAX_LANES) as u32;
    }
    (0..MAX_LANES)
        .map(|l| format!("processes #{l} mod {MAX_LANES}"))
        .collect()
}

/// Fault records carry `value: {fault: N, phase: "start"|"heal"}`. A window runs from the
/// start's invoke to the heal's completion.
fn fault_windows(records: &[Record], nemesis: &[u32], t1: u64, complete: bool) -> Vec<FaultWindow> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: HashMap<String, Vec<u32>> = HashMap::new();
    for &pos in nemesis {
        let r = &records[pos as usize];
        // One window per occurrence: a repeated or random fault has several per `fault`.
        let id = match (r.value.get("fault"), r.value.get("occurrence")) {
            (Some(n), Some(o)) => format!("{n}.{o}"),
            (Some(n), None) => n.to_string(),
            _ => format!("{} {}", r.f, r.node.as_deref().unwrap_or("")),
        };
        by_id
            .entry(id.clone())
            .or_insert_with(|| {
                order.push(id);
                Vec::new()
            })
            .push(pos);
    }
    order
        .into_iter()
        .map(|id| {
            let positions = by_id.remove(&id).unwrap_or_default();
            let recs: Vec<&Record> = positions.iter().map(|&p| &records[p as usize]).collect();
            let phase = |r: &Record| {
                r.value
                    .get("phase")
                    .and_then(|p| p.as_str())
                    .map(str::to_string)
            };
            let first = recs.first().map(|r| r.time_ns).unwrap_or(0);
            let last = recs.last().map(|r| r.time_ns).unwrap_or(0);
            let of_phase = |p: &str, invoke: bool| {
                recs.iter()
                    .find(|r| {
                        phase(r).as_deref() == Some(p) && (r.kind == OpType::Invoke) == invoke
                    })
                    .map(|r| r.time_ns)
            };
            let any_phase = recs.iter().any(|r| phase(r).is_some());
            let start = of_phase("start", true)
                .or(of_phase("start", false))
                .unwrap_or(first);
            let heal_done = of_phase("heal", false);
            let heal_any = heal_done.or(of_phase("heal", true));
            let (end, open) = match heal_any {
                Some(h) => (h, heal_done.is_none() && !complete),
                None if !any_phase => (last, false),
                // A complete run verified every heal, so no heal record means a one-shot fault.
                None if complete => (of_phase("start", false).unwrap_or(start), false),
                None => (t1, true),
            };
            let failed = recs
                .iter()
                .find(|r| r.kind == OpType::Fail || r.kind == OpType::Info)
                .map(|r| r.status.clone().unwrap_or_else(|| "failed".into()));
            let effect = effect_of(&recs);
            FaultWindow {
                effect,
                f: recs.first().map(|r| r.f.clone()).unwrap_or_default(),
                node: recs.first().and_then(|r| r.node.clone()),
                id,
                start,
                end: end.max(start),
                healed: heal_done,
                failed,
                records: positions,
                open,
            }
        })
        .collect()
}

/// The effects a fault's completed steps recorded, summed into one line.
fn effect_of(recs: &[&Record]) -> Option<String> {
    let mut recorded = false;
    let mut parts: Vec<String> = Vec::new();
    for r in recs.iter().filter(|r| r.kind == OpType::Ok) {
        let Some(effect) = r
            .value
            .pointer("/detail/effect")
            .and_then(|e| e.as_object())
        else {
            continue;
        };
        recorded = true;
        for (what, v) in effect {
            let n = v
                .as_array()
                .map(|a| a.len() as u64)
                .or(v.as_u64())
                .unwrap_or(0);
            parts.push(format!("{n} {}", what.replace('_', " ")));
        }
    }
    recorded.then(|| {
        if parts.is_empty() {
            "no effect".to_string()
        } else {
            parts.join(", ")
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn rec(
        index: u64,
        ms: u64,
        process: Process,
        kind: OpType,
        node: &str,
        value: serde_json::Value,
    ) -> Record {
        Record {
            index,
            time_ns: ms * 1_000_000,
            process,
            kind,
            f: "exec".into(),
            node: Some(node.into()),
            value,
            status: None,
            ..Default::default()
        }
    }

    pub fn fault(index: u64, ms: u64, kind: OpType, phase: &str) -> Record {
        Record {
            f: "pause".into(),
            ..rec(
                index,
                ms,
                Process::nemesis(),
                kind,
                "fs1",
                json!({"fault": 0, "phase": phase}),
            )
        }
    }

    /// Client c1 runs ops every 10 ms; a fault from 100 ms to 200 ms makes its ops fail
    /// until 230 ms.
    pub fn sample() -> Vec<Record> {
        let mut out = Vec::new();
        let mut push = |r: Record| {
            out.push(Record {
                index: out.len() as u64,
                ..r
            });
        };
        for t in (0..400).step_by(10) {
            let kind = if (100..230).contains(&t) {
                OpType::Fail
            } else {
                OpType::Ok
            };
            push(rec(
                0,
                t,
                Process::Worker(0),
                OpType::Invoke,
                "c1",
                json!(null),
            ));
            push(rec(0, t + 5, Process::Worker(0), kind, "c1", json!(null)));
            if t == 100 {
                push(fault(0, t + 1, OpType::Invoke, "start"));
                push(fault(0, t + 2, OpType::Ok, "start"));
            }
            if t == 200 {
                push(fault(0, t + 1, OpType::Invoke, "heal"));
                push(fault(0, t + 2, OpType::Ok, "heal"));
            }
        }
        out
    }

    /// A repeated fault (`every`/`count`, or `random`) has one window per occurrence, each with
    /// the effect its records carry (this was one window for all four before).
    #[test]
    fn every_occurrence_of_a_repeated_fault_is_its_own_window() {
        let mut records = Vec::new();
        for occurrence in 0..4u64 {
            let t = 100 * occurrence;
            for (dt, kind, phase, effect) in [
                (0, OpType::Invoke, "start", json!(null)),
                (
                    1,
                    OpType::Ok,
                    "start",
                    json!({"effect": {"processes_killed": [7, 8]}}),
                ),
                (50, OpType::Invoke, "heal", json!(null)),
                (51, OpType::Ok, "heal", json!({"effect": {}})),
            ] {
                records.push(Record {
                    f: "kill".into(),
                    ..rec(
                        records.len() as u64,
                        t + dt,
                        Process::nemesis(),
                        kind,
                        "fs1",
                        json!({"fault": 0, "occurrence": occurrence, "phase": phase, "detail": effect}),
                    )
                });
            }
        }
        let m = Model::build(&records, true);
        let ids: Vec<&str> = m.faults.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["0.0", "0.1", "0.2", "0.3"]);
        for (i, f) in m.faults.iter().enumerate() {
            assert_eq!(f.start, 100 * i as u64 * 1_000_000, "{f:?}");
            assert_eq!(f.healed, Some((100 * i as u64 + 51) * 1_000_000), "{f:?}");
            assert_eq!(f.effect.as_deref(), Some("2 processes killed"), "{f:?}");
        }
    }

    #[test]
    fn pairs_ops_and_finds_the_fault_window() {
        let records = sample();
        let m = Model::build(&records, true);
        assert_eq!(m.ops.len(), 40);
        assert_eq!(m.counts.fail, 13);
        assert_eq!(m.faults.len(), 1);
        let f = &m.faults[0];
        assert_eq!(
            (f.start, f.end, f.healed),
            (101_000_000, 202_000_000, Some(202_000_000))
        );
        let inv = m.ops[0].invoke.unwrap() as usize;
        assert_eq!(m.partner[inv], m.ops[0].done.unwrap());
        assert_eq!(m.lanes, vec!["p0 c1".to_string()]);
    }

    #[test]
    fn stall_and_recovery_are_measured_from_fault_start() {
        let records = sample();
        let m = Model::build(&records, true);
        let impacts = m.impacts(&m.faults[0]);
        assert_eq!(impacts.len(), 1);
        // Last failing op ends at 225 ms; first ok after the heal (202 ms) ends at 235 ms.
        assert_eq!(impacts[0].stall, Some(124_000_000));
        assert_eq!(impacts[0].recovery, Some(134_000_000));
        // Ops ending at 105..=225 failed; the one ending at 105 ms is after the start (101).
        assert_eq!(impacts[0].bad_ops, 13);
    }

    #[test]
    fn a_client_with_no_op_during_the_fault_is_not_listed() {
        let mut records = sample();
        let n = records.len() as u64;
        records.push(rec(
            n,
            500,
            Process::Worker(1),
            OpType::Invoke,
            "final",
            json!(null),
        ));
        records.push(rec(
            n + 1,
            510,
            Process::Worker(1),
            OpType::Ok,
            "final",
            json!(null),
        ));
        let m = Model::build(&records, true);
        let listed: Vec<&str> = m
            .impacts(&m.faults[0])
            .iter()
            .map(|i| m.clients[i.client as usize].as_str())
            .collect();
        assert_eq!(listed, ["c1"]);
    }

    #[test]
    fn observations_of_a_process_that_never_invokes_are_not_ops() {
        let mut records = sample();
        let n = records.len() as u64;
        records.push(Record {
            process: Process::Named("wire".into()),
            f: "link_counters".into(),
            ..rec(
                n,
                401,
                Process::Worker(0),
                OpType::Info,
                "fs1",
                json!({"c1": {}}),
            )
        });
        let m = Model::build(&records, true);
        assert_eq!((m.ops.len(), m.counts.info), (40, 0));
    }

    #[test]
    fn an_unhealed_fault_of_an_incomplete_run_stays_open() {
        let records = vec![
            fault(0, 10, OpType::Invoke, "start"),
            fault(1, 11, OpType::Ok, "start"),
            rec(2, 50, Process::Worker(0), OpType::Invoke, "c1", json!(null)),
        ];
        let m = Model::build(&records, false);
        assert!(m.faults[0].open);
        assert_eq!(m.faults[0].end, m.t1);
        assert_eq!(m.counts.pending, 1);
        let done = Model::build(&records, true);
        assert!(!done.faults[0].open);
        assert_eq!(done.faults[0].end, 11_000_000);
    }

    #[test]
    fn spread_keeps_one_op_per_slice_when_there_are_too_many() {
        let records: Vec<Record> = (0..1000)
            .map(|i| rec(i, i, Process::Worker(0), OpType::Fail, "c1", json!(null)))
            .collect();
        let m = Model::build(&records, true);
        assert_eq!(m.spread(|e| e == End::Fail, 2000, 10).len(), 1000);
        let few = m.spread(|e| e == End::Fail, 50, 10);
        assert_eq!(few.len(), 10);
        assert_eq!(few[9], 900, "the last slice keeps its first op");
    }

    #[test]
    fn many_processes_are_grouped_by_client() {
        let records: Vec<Record> = (0..100)
            .map(|p| {
                rec(
                    p,
                    p,
                    Process::Worker(p),
                    OpType::Ok,
                    if p % 2 == 0 { "c1" } else { "c2" },
                    json!(null),
                )
            })
            .collect();
        let m = Model::build(&records, true);
        assert_eq!(m.lanes.len(), 2);
        assert_eq!(m.clients, vec!["c1".to_string(), "c2".to_string()]);
        let mut named = records.clone();
        for r in named.iter_mut() {
            r.smb.client = Some(format!(
                "{}/{}",
                r.node.as_deref().unwrap_or(""),
                r.index % 3
            ));
        }
        let m = Model::build(&named, true);
        assert_eq!(m.lanes.len(), 6, "{:?}", m.lanes);
        assert!(m.clients.contains(&"c1/0".to_string()));
    }
}
