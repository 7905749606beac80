//! Pairs invokes with their completions. The contract has no op id on a completion: as in
//! Jepsen, a process does one op at a time (a workload process whose op ended `info` goes on
//! as a new process), so a completion closes the oldest open invoke of the same process and
//! `f`. Nemesis steps also match on `fault`, `occurrence` and `phase`, since faults overlap.

use std::collections::{HashMap, VecDeque};

use history::{ops, OpType, Process, Record};
use serde_json::Value;

/// One op: an invoke and its completion (none: never completed, an unknown outcome).
#[derive(Clone, Copy)]
pub struct Op<'a> {
    pub invoke: &'a Record,
    pub done: Option<&'a Record>,
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
        self.invoke.time_ns
    }

    /// Completion time; `u64::MAX` when the op never completed.
    pub fn t1(&self) -> u64 {
        self.done.map(|d| d.time_ns).unwrap_or(u64::MAX)
    }

    pub fn index(&self) -> u64 {
        self.invoke.index
    }

    /// Indexes of both records, for citing.
    pub fn indexes(&self) -> Vec<u64> {
        match self.done {
            Some(d) => vec![self.invoke.index, d.index],
            None => vec![self.invoke.index],
        }
    }

    pub fn done_index(&self) -> u64 {
        self.done.map(|d| d.index).unwrap_or(self.invoke.index)
    }

    pub fn f(&self) -> &'a str {
        &self.invoke.f
    }

    pub fn client(&self) -> Option<&'a str> {
        self.invoke
            .smb
            .client
            .as_deref()
            .or(self.done.and_then(|d| d.smb.client.as_deref()))
    }

    pub fn path(&self) -> Option<&'a str> {
        self.invoke
            .smb
            .path
            .as_deref()
            .or(self.done.and_then(|d| d.smb.path.as_deref()))
    }

    pub fn conn(&self) -> Option<u64> {
        self.invoke.smb.conn.or(self.done.and_then(|d| d.smb.conn))
    }

    /// The status of a `fail`/`info` completion.
    pub fn status(&self) -> Option<&'a str> {
        self.done.and_then(|d| d.status.as_deref())
    }

    /// A completion the server sent: `ok`, or `fail` with an NTSTATUS (not "not sent: ...").
    pub fn server_answered(&self) -> bool {
        match self.end() {
            OpType::Ok => true,
            OpType::Fail => self.status().is_some_and(|s| s.starts_with("STATUS_")),
            _ => false,
        }
    }
}

/// Events: records that are never part of an invoke/completion pair.
pub fn is_event(f: &str) -> bool {
    matches!(
        f,
        ops::LEASE_BREAK | ops::OPLOCK_BREAK | ops::DISCONNECT | ops::FINAL_READ
    )
}

#[derive(Hash, PartialEq, Eq)]
enum Who<'a> {
    Worker(u64),
    Named(&'a str),
}

#[derive(Hash, PartialEq, Eq)]
struct Key<'a> {
    who: Who<'a>,
    f: &'a str,
    /// Nemesis: fault, occurrence, phase.
    step: Option<(u64, u64, bool)>,
}

fn key(r: &Record) -> Key<'_> {
    let who = match &r.process {
        Process::Worker(n) => Who::Worker(*n),
        Process::Named(s) => Who::Named(s),
    };
    let step = matches!(&r.process, Process::Named(s) if s == "nemesis").then(|| {
        (
            uint(&r.value, "fault").unwrap_or(0),
            uint(&r.value, "occurrence").unwrap_or(0),
            r.value.get("phase").and_then(Value::as_str) == Some("heal"),
        )
    });
    Key { who, f: &r.f, step }
}

/// The history as ops (in invoke order) and events (in history order).
pub struct Index<'a> {
    pub ops: Vec<Op<'a>>,
    pub events: Vec<&'a Record>,
}

impl<'a> Index<'a> {
    pub fn new(history: &'a [Record]) -> Index<'a> {
        let mut ops: Vec<Op<'a>> = Vec::with_capacity(history.len() / 2 + 1);
        let mut events = Vec::new();
        let mut open: HashMap<Key<'a>, VecDeque<u32>> = HashMap::new();
        for r in history {
            if is_event(&r.f) {
                events.push(r);
                continue;
            }
            if r.kind == OpType::Invoke {
                open.entry(key(r)).or_default().push_back(ops.len() as u32);
                ops.push(Op {
                    invoke: r,
                    done: None,
                });
                continue;
            }
            match open.get_mut(&key(r)).and_then(VecDeque::pop_front) {
                Some(i) => ops[i as usize].done = Some(r),
                // A completion with no invoke (e.g. `link_counters`): an event.
                None => events.push(r),
            }
        }
        Index { ops, events }
    }
}

pub fn uint(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub fn flag(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

pub fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The persistent half of an SMB2_FILEID written `persistent:volatile`. MS-SMB2 2.2.14.1:
/// only the persistent half survives a reconnect; the volatile half may change (Samba
/// allocates a new one).
pub fn persistent_id(file_id: &str) -> &str {
    file_id.split(':').next().unwrap_or(file_id)
}

/// Granted oplock level (`ok` value `oplock`).
pub fn oplock_level(v: &Value) -> &'static str {
    oplock(v.get("oplock"))
}

/// An oplock level as the workload writes it: a name, or MS-SMB2's OplockLevel number.
pub fn oplock(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::String(s)) => match s.as_str() {
            "batch" => "batch",
            "exclusive" => "exclusive",
            "level2" | "level_ii" => "level2",
            "lease" => "lease",
            _ => "none",
        },
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0x09) => "batch",
            Some(0x08) => "exclusive",
            Some(0x01) => "level2",
            Some(0xff) => "lease",
            _ => "none",
        },
        _ => "none",
    }
}
