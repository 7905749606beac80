//! What the report draws, computed once from the compact history: ops and fault windows
//! come from `check`'s index and `faults` (the checkers' own pairing and windows, keyed by
//! fault and occurrence), then the lanes they are drawn in and each client's stall and
//! recovery per fault. Every other field is the record table's, re-read for the rows shown.

use std::collections::HashMap;

use check::compact::{Fx, FxMap, History, Rec, Val, NAMED, NONE as NO_SYM};
use check::index::NO_OP;
use check::Index;
use history::OpType;

type FxSet<T> = std::collections::HashSet<T, std::hash::BuildHasherDefault<Fx>>;

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
    /// Positions in the history (not history indexes).
    pub invoke: u32,
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

    /// The record that says how it ended (its invoke while pending).
    pub fn last(&self) -> u32 {
        self.done.unwrap_or(self.invoke)
    }
}

#[derive(Debug, Clone)]
pub struct FaultWindow {
    /// `fault.occurrence`, as the checkers name it.
    pub id: String,
    pub f: String,
    pub node: Option<String>,
    pub start: u64,
    pub end: u64,
    /// Time the heal completed, if it was recorded.
    pub healed: Option<u64>,
    /// A start or heal that failed, with its status.
    pub failed: Option<String>,
    /// Positions of the fault's records, in history order.
    pub records: Vec<u32>,
    /// Still in effect when the history ends.
    pub open: bool,
    /// Whether it did anything, as its completed steps recorded (`check`'s `landed`).
    pub landed: Option<bool>,
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

/// The logical client an op belongs to: the SMB client (`c1/0`) when a record names one,
/// else its node (the plan's client host); `NO_SYM` when neither does.
fn client_sym(a: &Rec, b: Option<&Rec>) -> u32 {
    [Some(a), b]
        .into_iter()
        .flatten()
        .flat_map(|r| [r.client, r.node])
        .find(|&s| s != NO_SYM)
        .unwrap_or(NO_SYM)
}

impl Model {
    /// `complete`: the run ended normally, so every heal was verified (see `fault_windows`).
    pub fn build(h: &History, complete: bool) -> Model {
        let t0 = h.recs.iter().map(|r| r.time).min().unwrap_or(0);
        let t1 = h
            .recs
            .iter()
            .map(|r| r.time)
            .max()
            .unwrap_or(0)
            .max(t0 + 1_000_000);
        let index = Index::new(h);
        // The positions of each op's records: its invoke comes first in the history.
        let mut partner = vec![NONE; h.recs.len()];
        let mut first = vec![NONE; index.ops.len()];
        for (pos, &op) in index.op_of.iter().enumerate() {
            if op == NO_OP {
                continue;
            }
            let inv = first[op as usize];
            if inv == NONE {
                first[op as usize] = pos as u32;
            } else {
                partner[inv as usize] = pos as u32;
                partner[pos] = inv;
            }
        }
        let mut ops = Vec::with_capacity(index.ops.len());
        let mut op_process: Vec<u64> = Vec::with_capacity(index.ops.len());
        let mut op_client: Vec<u32> = Vec::with_capacity(index.ops.len());
        let mut nemesis: HashMap<(u64, u64), Vec<u32>> = HashMap::new();
        for (i, op) in index.ops.iter().enumerate() {
            let invoke = first[i];
            let done = (partner[invoke as usize] != NONE).then(|| partner[invoke as usize]);
            if index.is_nemesis(op.invoke) {
                if let Val::Nemesis {
                    fault, occurrence, ..
                } = op.invoke.v
                {
                    let recs = nemesis.entry((fault, occurrence)).or_default();
                    recs.extend([Some(invoke), done].into_iter().flatten());
                }
                continue;
            }
            let end = match op.done.map(|d| d.kind) {
                None => End::Pending,
                Some(OpType::Ok) => End::Ok,
                Some(OpType::Fail) => End::Fail,
                Some(_) => End::Info,
            };
            ops.push(Op {
                invoke,
                done,
                start: op.invoke.time,
                end_ns: op.done.map(|d| d.time),
                end,
                lane: 0,
                client: 0,
            });
            op_process.push(op.invoke.process);
            op_client.push(client_sym(op.invoke, op.done));
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
        let clients = assign_clients(h, &mut ops, &op_process, &op_client);
        let lanes = assign_lanes(h, &mut ops, &op_process, &op_client);
        let faults = fault_windows(&index, nemesis, t1, complete);
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

/// Clients by name (see `client_sym`); an op with neither client nor node is its process's.
fn assign_clients(h: &History, ops: &mut [Op], process: &[u64], client: &[u32]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut index: FxMap<String, u32> = FxMap::default();
    let mut by_key: FxMap<(u64, u32), u32> = FxMap::default();
    let mut last: Option<((u64, u32), u32)> = None;
    for (i, op) in ops.iter_mut().enumerate() {
        let key = if client[i] == NO_SYM {
            (process[i], NO_SYM)
        } else {
            (0, client[i])
        };
        if let Some((_, id)) = last.filter(|(k, _)| *k == key) {
            op.client = id;
            continue;
        }
        op.client = *by_key.entry(key).or_insert_with(|| {
            let name = if client[i] == NO_SYM {
                process_label(h, process[i])
            } else {
                h.name(client[i]).to_string()
            };
            let next = names.len() as u32;
            *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                next
            })
        });
        last = Some((key, op.client));
    }
    names
}

fn process_label(h: &History, p: u64) -> String {
    if p & NAMED != 0 {
        h.name((p & !NAMED) as u32).to_string()
    } else {
        format!("p{p}")
    }
}

/// Workers by number, then named processes by name.
fn process_order(h: &History, p: u64) -> (bool, u64, &str) {
    if p & NAMED != 0 {
        (true, 0, h.name((p & !NAMED) as u32))
    } else {
        (false, p, "")
    }
}

/// One lane per process if they fit, else one per client, else processes folded modulo.
fn assign_lanes(h: &History, ops: &mut [Op], process: &[u64], client: &[u32]) -> Vec<String> {
    let mut procs: Vec<u64> = process
        .iter()
        .copied()
        .collect::<FxSet<u64>>()
        .into_iter()
        .collect();
    procs.sort_unstable_by(|a, b| process_order(h, *a).cmp(&process_order(h, *b)));
    let rank: FxMap<u64, u32> = procs
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, i as u32))
        .collect();
    if procs.len() <= MAX_LANES {
        let mut client_of = vec![NO_SYM; procs.len()];
        for (i, op) in ops.iter_mut().enumerate() {
            op.lane = rank[&process[i]];
            let c = &mut client_of[op.lane as usize];
            if *c == NO_SYM {
                *c = client[i];
            }
        }
        return procs
            .iter()
            .zip(client_of)
            .map(|(k, n)| match n {
                NO_SYM => process_label(h, *k),
                n => format!("{} {}", process_label(h, *k), h.name(n)),
            })
            .collect();
    }
    let client_name = |c: u32| if c == NO_SYM { "-" } else { h.name(c) };
    let syms: FxSet<u32> = client.iter().copied().collect();
    let mut clients: Vec<&str> = syms.iter().map(|&c| client_name(c)).collect();
    clients.sort_unstable();
    clients.dedup();
    if clients.len() <= MAX_LANES {
        let index: FxMap<u32, u32> = syms
            .iter()
            .map(|&c| {
                let lane = clients.binary_search(&client_name(c)).unwrap_or(0);
                (c, lane as u32)
            })
            .collect();
        for (i, op) in ops.iter_mut().enumerate() {
            op.lane = index[&client[i]];
        }
        return clients
            .iter()
            .map(|n| format!("{n} (all processes)"))
            .collect();
    }
    for (i, op) in ops.iter_mut().enumerate() {
        op.lane = rank[&process[i]] % MAX_LANES as u32;
    }
    (0..MAX_LANES)
        .map(|l| format!("processes #{l} mod {MAX_LANES}"))
        .collect()
}

/// `check`'s fault windows (one per fault and occurrence), with what the page adds: the
/// positions of their records and a failed step's status. A history written before steps
/// recorded `heals` leaves a one-shot fault (reset, restart) without a heal; a complete run
/// verified every heal, so there it is over once started rather than open to the end.
fn fault_windows(
    index: &Index,
    mut records: HashMap<(u64, u64), Vec<u32>>,
    t1: u64,
    complete: bool,
) -> Vec<FaultWindow> {
    let h = index.h;
    check::faults(index)
        .into_iter()
        .map(|f| {
            let mut positions = records.remove(&f.id).unwrap_or_default();
            positions.sort_unstable();
            let failed = positions
                .iter()
                .map(|&p| &h.recs[p as usize])
                .find(|r| matches!(r.kind, OpType::Fail | OpType::Info))
                .map(|r| match r.status {
                    NO_SYM => "failed".to_string(),
                    s => h.name(s).to_string(),
                });
            let unhealed = f.heal == u64::MAX;
            let open = unhealed && !complete;
            let end = match (unhealed, open) {
                (false, _) => f.heal,
                (true, true) => t1,
                (true, false) => f.started.min(t1),
            };
            FaultWindow {
                id: format!("{}.{}", f.id.0, f.id.1),
                f: f.kind.to_string(),
                node: (!f.node.is_empty()).then(|| f.node.to_string()),
                start: f.start,
                end: end.max(f.start),
                healed: (f.heals && !unhealed).then_some(f.heal),
                failed,
                records: positions,
                open,
                landed: f.landed,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use history::value::{FaultDetail, FaultPhase, FaultStep, LeaseBreak, LeaseState};
    use history::{Process, Record, Value};
    use serde_json::json;

    /// A nemesis step of fault 0; `detail` as a history's JSON says it.
    fn step(occurrence: u64, phase: &str, detail: serde_json::Value) -> Value {
        FaultStep {
            fault: 0,
            occurrence,
            phase: if phase == "heal" {
                FaultPhase::Heal
            } else {
                FaultPhase::Start
            },
            action: json!({}),
            require_effect: false,
            heals: true,
            detail: serde_json::from_value::<Option<FaultDetail>>(detail).unwrap(),
        }
        .into()
    }

    fn build(records: &[Record]) -> Model {
        Model::build(&History::from_records(records), true)
    }

    pub fn rec(
        index: u64,
        ms: u64,
        process: Process,
        kind: OpType,
        node: &str,
        value: Value,
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
                step(0, phase, json!(null)),
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
                Value::None,
            ));
            push(rec(0, t + 5, Process::Worker(0), kind, "c1", Value::None));
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
                        step(occurrence, phase, effect),
                    )
                });
            }
        }
        let m = build(&records);
        let ids: Vec<&str> = m.faults.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["0.0", "0.1", "0.2", "0.3"]);
        for (i, f) in m.faults.iter().enumerate() {
            assert_eq!(f.start, 100 * i as u64 * 1_000_000, "{f:?}");
            assert_eq!(f.healed, Some((100 * i as u64 + 51) * 1_000_000), "{f:?}");
            assert_eq!(f.landed, Some(true), "{f:?}");
        }
    }

    #[test]
    fn pairs_ops_and_finds_the_fault_window() {
        let records = sample();
        let m = build(&records);
        assert_eq!(m.ops.len(), 40);
        assert_eq!(m.counts.fail, 13);
        assert_eq!(m.faults.len(), 1);
        let f = &m.faults[0];
        assert_eq!(
            (f.start, f.end, f.healed),
            (101_000_000, 202_000_000, Some(202_000_000))
        );
        let inv = m.ops[0].invoke as usize;
        assert_eq!(m.partner[inv], m.ops[0].done.unwrap());
        assert_eq!(m.lanes, vec!["p0 c1".to_string()]);
    }

    #[test]
    fn stall_and_recovery_are_measured_from_fault_start() {
        let records = sample();
        let m = build(&records);
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
            Value::None,
        ));
        records.push(rec(
            n + 1,
            510,
            Process::Worker(1),
            OpType::Ok,
            "final",
            Value::None,
        ));
        let m = build(&records);
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
                Value::Observation(json!({"c1": {}})),
            )
        });
        let m = build(&records);
        assert_eq!((m.ops.len(), m.counts.info), (40, 0));
    }

    #[test]
    fn an_unhealed_fault_of_an_incomplete_run_stays_open() {
        let mut records = vec![
            fault(0, 10, OpType::Invoke, "start"),
            fault(1, 11, OpType::Ok, "start"),
            rec(2, 50, Process::Worker(0), OpType::Invoke, "c1", Value::None),
        ];
        let h = History::from_records(&records);
        let m = Model::build(&h, false);
        assert!(m.faults[0].open);
        assert_eq!(m.faults[0].end, m.t1);
        assert_eq!(m.counts.pending, 1);
        // A complete run verified every heal: no heal record means a one-shot fault (a
        // history from before steps recorded `heals`), over once started.
        let done = Model::build(&h, true);
        assert!(!done.faults[0].open);
        assert_eq!(done.faults[0].end, 11_000_000);
        // A restart or reset says so itself.
        for r in &mut records[..2] {
            let Value::Fault(step) = &mut r.value else {
                panic!("not a fault step");
            };
            step.heals = false;
        }
        let one_shot = Model::build(&History::from_records(&records), false);
        assert!(!one_shot.faults[0].open);
        assert_eq!(one_shot.faults[0].end, 11_000_000);
    }

    /// A lease break arrives for a worker while it has an op in flight: it is an event, not
    /// that op's completion (pairing by process alone drew the op as ended `info` at the
    /// break, and its real completion as a second op).
    #[test]
    fn an_event_arriving_mid_op_is_not_its_completion() {
        let records = vec![
            Record {
                f: "write".into(),
                ..rec(0, 10, Process::Worker(0), OpType::Invoke, "c1", Value::None)
            },
            Record {
                f: "lease_break".into(),
                ..rec(
                    1,
                    12,
                    Process::Worker(0),
                    OpType::Info,
                    "c1",
                    LeaseBreak {
                        new_state: LeaseState(LeaseState::R),
                        ack_required: false,
                        epoch: 1,
                    }
                    .into(),
                )
            },
            Record {
                f: "write".into(),
                ..rec(2, 20, Process::Worker(0), OpType::Ok, "c1", Value::None)
            },
        ];
        let m = build(&records);
        assert_eq!(m.ops.len(), 1, "{:?}", m.ops);
        let op = m.ops[0];
        assert_eq!((op.invoke, op.done), (0, Some(2)));
        assert_eq!((op.end, op.end_ns), (End::Ok, Some(20_000_000)));
        assert_eq!((m.counts.ok, m.counts.info), (1, 0));
        assert_eq!(m.partner[1], NONE, "the break pairs with nothing");
    }

    #[test]
    fn spread_keeps_one_op_per_slice_when_there_are_too_many() {
        let records: Vec<Record> = (0..1000)
            .flat_map(|i| {
                [OpType::Invoke, OpType::Fail]
                    .map(|k| rec(0, i, Process::Worker(0), k, "c1", Value::None))
            })
            .enumerate()
            .map(|(i, r)| Record {
                index: i as u64,
                ..r
            })
            .collect();
        let m = build(&records);
        assert_eq!(m.spread(|e| e == End::Fail, 2000, 10).len(), 1000);
        let few = m.spread(|e| e == End::Fail, 50, 10);
        assert_eq!(few.len(), 10);
        assert_eq!(few[9], 900, "the last slice keeps its first op");
    }

    #[test]
    fn many_processes_are_grouped_by_client() {
        let records: Vec<Record> = (0..100)
            .flat_map(|p| {
                [OpType::Invoke, OpType::Ok].map(|k| {
                    let node = if p % 2 == 0 { "c1" } else { "c2" };
                    rec(0, p, Process::Worker(p), k, node, Value::None)
                })
            })
            .enumerate()
            .map(|(i, r)| Record {
                index: i as u64,
                ..r
            })
            .collect();
        let m = build(&records);
        assert_eq!(m.lanes.len(), 2);
        assert_eq!(m.clients, vec!["c1".to_string(), "c2".to_string()]);
        let mut named = records.clone();
        for r in named.iter_mut() {
            r.smb.client = Some(format!(
                "{}/{}",
                r.node.as_deref().unwrap_or(""),
                r.index / 2 % 3
            ));
        }
        let m = build(&named);
        assert_eq!(m.lanes.len(), 6, "{:?}", m.lanes);
        assert!(m.clients.contains(&"c1/0".to_string()));
    }
}
