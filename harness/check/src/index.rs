//! Pairs invokes with their completions. The contract has no op id on a completion: as in
//! Jepsen, a process does one op at a time (a workload process whose op ended `info` goes on
//! as a new process), so a completion closes the oldest open invoke of the same process and
//! `f`. Nemesis steps also match on `fault`, `occurrence` and `phase`, since faults overlap.

use std::collections::VecDeque;

use history::OpType;

use crate::compact::{FxMap, History, Rec, Sym, Val, F};

/// One op: an invoke and its completion (none: never completed, an unknown outcome).
#[derive(Clone, Copy)]
pub struct Op<'a> {
    pub invoke: &'a Rec,
    pub done: Option<&'a Rec>,
}

impl<'a> Op<'a> {
    /// Ok, Fail or Info; an op that never completed is Info.
    pub fn end(&self) -> OpType {
        self.done.map(|d| d.kind).unwrap_or(OpType::Info)
    }

    pub fn is_ok(&self) -> bool {
        self.end() == OpType::Ok
    }

    pub fn t0(&self) -> u64 {
        self.invoke.time
    }

    /// Completion time; `u64::MAX` when the op never completed.
    pub fn t1(&self) -> u64 {
        self.done.map(|d| d.time).unwrap_or(u64::MAX)
    }

    pub fn index(&self) -> u64 {
        self.invoke.index
    }

    pub fn done_index(&self) -> u64 {
        self.done.map(|d| d.index).unwrap_or(self.invoke.index)
    }

    /// Indexes of both records, for citing.
    pub fn indexes(&self) -> Vec<u64> {
        match self.done {
            Some(d) => vec![self.invoke.index, d.index],
            None => vec![self.invoke.index],
        }
    }

    pub fn f(&self) -> F {
        self.invoke.f
    }

    pub fn client(&self) -> Sym {
        self.invoke.client
    }

    pub fn path(&self) -> Sym {
        self.invoke.path
    }

    pub fn conn(&self) -> Option<u64> {
        self.invoke.conn()
    }

    /// A completion the server sent: `ok`, or `fail` with an NTSTATUS (not "not sent: ...").
    pub fn server_answered(&self, h: &History) -> bool {
        match self.end() {
            OpType::Ok => true,
            OpType::Fail => h.name(self.status()).starts_with("STATUS_"),
            _ => false,
        }
    }

    /// The status of a `fail`/`info` completion.
    pub fn status(&self) -> Sym {
        self.done.map_or(0, |d| d.status)
    }
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    process: u64,
    f: F,
    f_name: Sym,
    /// Nemesis: fault, occurrence, phase.
    step: Option<(u64, u64, bool)>,
}

fn key(r: &Rec) -> Key {
    let step = match r.v {
        Val::Nemesis {
            fault,
            occurrence,
            heal,
            ..
        } => Some((fault, occurrence, heal)),
        _ => None,
    };
    Key {
        process: r.process,
        f: r.f,
        f_name: r.f_name,
        step,
    }
}

/// The history as ops (in invoke order) and events (in history order).
pub struct Index<'a> {
    pub h: &'a History,
    pub ops: Vec<Op<'a>>,
    pub events: Vec<&'a Rec>,
    /// For each record (by position), the op it invokes or completes; `NO_OP` for events.
    pub op_of: Vec<u32>,
}

pub const NO_OP: u32 = u32::MAX;

impl<'a> Index<'a> {
    pub fn new(h: &'a History) -> Index<'a> {
        let mut ops: Vec<Op<'a>> = Vec::with_capacity(h.recs.len() / 2 + 1);
        let mut events = Vec::new();
        let mut op_of = Vec::with_capacity(h.recs.len());
        // Mostly one op in flight per key: a VecDeque only when more are.
        let mut open: FxMap<Key, (u32, VecDeque<u32>)> = FxMap::default();
        const EMPTY: u32 = u32::MAX;
        for r in &h.recs {
            if r.f.is_event() {
                events.push(r);
                op_of.push(NO_OP);
                continue;
            }
            if r.kind == OpType::Invoke {
                op_of.push(ops.len() as u32);
                let slot = open.entry(key(r)).or_insert((EMPTY, VecDeque::new()));
                if slot.0 == EMPTY {
                    slot.0 = ops.len() as u32;
                } else {
                    slot.1.push_back(ops.len() as u32);
                }
                ops.push(Op {
                    invoke: r,
                    done: None,
                });
                continue;
            }
            let found = open.get_mut(&key(r)).and_then(|slot| {
                let first = slot.0;
                if first == EMPTY {
                    return None;
                }
                slot.0 = slot.1.pop_front().unwrap_or(EMPTY);
                Some(first)
            });
            match found {
                Some(i) => {
                    ops[i as usize].done = Some(r);
                    op_of.push(i);
                }
                // A completion with no invoke (e.g. `link_counters`): an event.
                None => {
                    events.push(r);
                    op_of.push(NO_OP);
                }
            }
        }
        Index {
            h,
            ops,
            events,
            op_of,
        }
    }

    pub fn name(&self, s: Sym) -> &'a str {
        self.h.name(s)
    }

    pub fn is_nemesis(&self, r: &Rec) -> bool {
        r.process == crate::compact::NAMED | self.h.nemesis as u64
    }
}
