//! The history as the checkers read it: one small fixed-size record per line, strings
//! interned, `value` reduced to the fields of the op vocabulary (`history::ops`). A
//! `history::Record` keeps `value` as a JSON map (about a kilobyte a record); this is about a
//! tenth of that, and can be read straight from a JSONL file without ever holding the
//! `Record`s, so a million-op history is judged in well under a GiB.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;

use history::value::{Durable, FaultPhase, Shape, Value};
use history::{OpType, ReadError, Record};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// An interned string; 0 is "absent".
pub type Sym = u32;
pub const NONE: Sym = 0;

/// FxHash (rustc's): integer and short-string keys hash in a few instructions.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// What an op is (`Record::f`): the op vocabulary is defined once, in `history::ops`.
pub use history::ops::Op as F;

/// Caching state as bits: the history's typed lease state.
pub use history::value::LeaseState as Caps;

/// Lease letters as written in `smb.lease` (by our own client): letters other than R, W, H
/// name no caching.
pub fn caps(letters: &str) -> Caps {
    Caps::parse(letters).unwrap_or_default()
}

/// Oplock levels (MS-SMB2 2.2.13 RequestedOplockLevel).
pub mod oplock {
    pub const NONE: u8 = 0x00;
    pub const LEVEL_II: u8 = 0x01;
    pub const EXCLUSIVE: u8 = 0x08;
    pub const BATCH: u8 = 0x09;
    pub const LEASE: u8 = 0xff;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseC {
    pub key: Sym,
    pub state: Caps,
    pub epoch: u16,
}

/// The `value` fields the checkers read, per op.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Val {
    #[default]
    None,
    /// `write` invoke (`replay_of`: the write it sends again, byte for byte).
    Write {
        offset: u64,
        len: u64,
        write_through: bool,
        replay_of: Option<u64>,
    },
    /// `write` ok: bytes written.
    Written(u64),
    /// `open` invoke: durability asked for ("v1"/"v2"; persistent).
    OpenAsk {
        durable: bool,
        v1: bool,
        persistent: bool,
        /// The lease state asked for (none: no lease).
        lease: Caps,
        /// The oplock level asked for when no lease was.
        oplock: u8,
    },
    /// `open` ok: what was granted.
    OpenOk {
        durable: bool,
        timeout_ms: u64,
        persistent: bool,
        oplock: u8,
    },
    /// `reconnect` invoke: the index of the open's invoke.
    Reconnect {
        open: Option<u64>,
    },
    LeaseBreak {
        new_state: Option<Caps>,
        epoch: Option<u16>,
    },
    OplockBreak {
        level: u8,
    },
    /// `read` invoke: the bytes asked for.
    Read {
        offset: u64,
        len: u64,
    },
    /// `read` ok: what came back, decoded; `cached`: served from the client's own cache.
    ReadOk {
        runs: Box<[[i64; 3]]>,
        cached: bool,
    },
    FinalRead {
        size: u64,
        runs: Box<[[i64; 3]]>,
        /// `[offset, len]` ranges where the final reader's reads of the file disagreed.
        unstable: Box<[[u64; 2]]>,
    },
    Nemesis {
        fault: u64,
        occurrence: u64,
        heal: bool,
        /// A reset's `action.side` is `client`: the server's socket survives it.
        client_side: bool,
        /// A message fault's `action.action` is `reset`: it sends an RST to both ends at
        /// once, so neither learns of the loss late.
        message_reset: bool,
        /// `action.peer`: only connections with this node.
        peer: Sym,
        /// `detail.effect` of a completed step: Some(true) when it did something, Some(false)
        /// when it recorded doing nothing, None when the record says nothing (invokes, old
        /// histories).
        effect: Option<bool>,
        /// `require_effect`: the plan needs this occurrence to land.
        require_effect: bool,
        /// `heals`: the fault has a heal step (the plan's `Action::heals` says which do; a
        /// reset or restart is over once started).
        heals: bool,
    },
}

/// One history record, compact.
#[derive(Debug, Clone)]
pub struct Rec {
    pub index: u64,
    pub time: u64,
    /// A worker number, or `NAMED | Sym` for a named process.
    pub process: u64,
    /// `u64::MAX`: none.
    pub conn: u64,
    pub kind: OpType,
    pub f: F,
    pub f_name: Sym,
    pub node: Sym,
    pub client: Sym,
    pub path: Sym,
    pub file_id: Sym,
    /// The persistent half of the FileId (MS-SMB2 2.2.14.1: the half a reconnect keeps).
    pub file_pid: Sym,
    pub status: Sym,
    pub lease: Option<LeaseC>,
    pub v: Val,
}

pub const NAMED: u64 = 1 << 63;

impl Rec {
    pub fn conn(&self) -> Option<u64> {
        (self.conn != u64::MAX).then_some(self.conn)
    }
}

/// A history, compact: records and the strings they name.
pub struct History {
    pub recs: Vec<Rec>,
    names: Vec<Box<str>>,
    syms: FxMap<Box<str>, Sym>,
    /// FileId → its persistent half.
    pids: FxMap<Sym, Sym>,
    pub nemesis: Sym,
}

impl Default for History {
    fn default() -> Self {
        let mut h = History {
            recs: Vec::new(),
            names: vec!["".into()],
            syms: FxMap::default(),
            pids: FxMap::default(),
            nemesis: NONE,
        };
        h.nemesis = h.sym("nemesis");
        h
    }
}

impl History {
    pub fn name(&self, s: Sym) -> &str {
        &self.names[s as usize]
    }

    /// A record's `f` as written.
    pub fn f_name(&self, r: &Rec) -> &str {
        match r.f {
            F::Other => self.name(r.f_name),
            f => f.name(),
        }
    }

    /// A record's process as written: a worker number or a name.
    pub fn process_name(&self, r: &Rec) -> Cow<'_, str> {
        if r.process & NAMED != 0 {
            Cow::Borrowed(self.name((r.process & !NAMED) as Sym))
        } else {
            Cow::Owned(r.process.to_string())
        }
    }

    /// Position in `recs` of the record with history index `index`.
    pub fn position(&self, index: u64) -> Option<usize> {
        let i = index as usize;
        if self.recs.get(i).is_some_and(|r| r.index == index) {
            return Some(i);
        }
        self.recs.binary_search_by_key(&index, |r| r.index).ok()
    }

    pub fn sym(&mut self, s: &str) -> Sym {
        if s.is_empty() {
            return NONE;
        }
        if let Some(&sym) = self.syms.get(s) {
            return sym;
        }
        let sym = self.names.len() as Sym;
        self.names.push(s.into());
        self.syms.insert(s.into(), sym);
        sym
    }

    fn opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NONE, |s| self.sym(s))
    }

    pub fn from_records(records: &[Record]) -> History {
        let mut h = History::default();
        h.recs.reserve(records.len());
        for r in records {
            let process = match &r.process {
                history::Process::Worker(n) => RawProcess::Worker(*n),
                history::Process::Named(s) => RawProcess::Named(Cow::Borrowed(s)),
            };
            let lease = r.smb.lease.as_ref().map(|l| RawLease {
                key: Cow::Borrowed(&l.key),
                state: Cow::Borrowed(&l.state),
                epoch: l.epoch,
            });
            let line = Line {
                index: r.index,
                time_ns: r.time_ns,
                process,
                kind: r.kind,
                f: Cow::Borrowed(&r.f),
                node: r.node.as_deref().map(Cow::Borrowed),
                value: None,
                status: r.status.as_deref().map(Cow::Borrowed),
                client: r.smb.client.as_deref().map(Cow::Borrowed),
                conn: r.smb.conn,
                path: r.smb.path.as_deref().map(Cow::Borrowed),
                file_id: r.smb.file_id.as_deref().map(Cow::Borrowed),
                lease,
            };
            // Only these values hold what the checkers read; the rest are not copied.
            let value = match &r.value {
                Value::Observation(_) | Value::ExecInvoke(_) | Value::ExecDone(_) => Value::None,
                v => v.clone(),
            };
            h.push(line, value);
        }
        h
    }

    /// Read a stored history (JSONL) without holding its `Record`s. As `history::read`: a
    /// torn last line is ignored, any other malformed line is an error naming it.
    pub fn read(path: &Path) -> Result<History, ReadError> {
        let file_name = path.display().to_string();
        let io = |e| ReadError::Io {
            file: file_name.clone(),
            source: e,
        };
        let file = File::open(path).map_err(io)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut h = History::default();
        // About 200 bytes a line: reserve once instead of copying while growing.
        let size = reader.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
        h.recs.reserve((size / 200) as usize);
        let mut line = String::new();
        let mut n = 0;
        let mut pending: Option<(usize, String)> = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io)? == 0 {
                break;
            }
            n += 1;
            // A malformed line is an error only if another line follows it.
            if let Some((at, message)) = pending.take() {
                return Err(ReadError::Parse {
                    file: file_name,
                    line: at,
                    message,
                });
            }
            let text = line.trim_end();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Line>(text) {
                Ok(l) => {
                    // A whole line whose value is not its op's type is an error even if last.
                    let value = l.typed_value().map_err(|message| ReadError::Parse {
                        file: file_name.clone(),
                        line: n,
                        message,
                    })?;
                    h.push(l, value)
                }
                Err(e) => pending = Some((n, e.to_string())),
            }
        }
        Ok(h)
    }

    fn push(&mut self, l: Line, value: Value) {
        let f = F::of(&l.f);
        let process = match &l.process {
            RawProcess::Worker(n) => *n & !NAMED,
            RawProcess::Named(s) => NAMED | self.sym(s) as u64,
        };
        let file_id = self.opt(l.file_id.as_deref());
        let file_pid = match self.pids.get(&file_id) {
            Some(&pid) => pid,
            None => {
                let pid = self.opt(l.file_id.as_deref().map(persistent_half));
                self.pids.insert(file_id, pid);
                pid
            }
        };
        let lease = l.lease.as_ref().map(|x| LeaseC {
            key: self.sym(&x.key),
            state: caps(&x.state),
            epoch: x.epoch,
        });
        // Faults and lost connections need their node; the report names an op's client by it.
        let node = self.opt(l.node.as_deref());
        let v = self.val(value);
        let rec = Rec {
            index: l.index,
            time: l.time_ns,
            process,
            conn: l.conn.unwrap_or(u64::MAX),
            kind: l.kind,
            f,
            f_name: if f == F::Other { self.sym(&l.f) } else { NONE },
            node,
            client: self.opt(l.client.as_deref()),
            path: self.opt(l.path.as_deref()),
            file_id,
            file_pid,
            status: self.opt(l.status.as_deref()),
            lease,
            v,
        };
        self.recs.push(rec);
    }
}

/// The persistent half of an SMB2_FILEID written `persistent:volatile`.
pub fn persistent_half(file_id: &str) -> &str {
    file_id.split(':').next().unwrap_or(file_id)
}

/// One JSONL line, borrowed where the text allows.
#[derive(Deserialize)]
struct Line<'a> {
    index: u64,
    time_ns: u64,
    #[serde(default, borrow)]
    process: RawProcess<'a>,
    #[serde(rename = "type")]
    kind: OpType,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    node: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    client: Option<Cow<'a, str>>,
    #[serde(default)]
    conn: Option<u64>,
    #[serde(default, borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    file_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    lease: Option<RawLease<'a>>,
}

#[derive(Deserialize)]
struct RawLease<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    epoch: u16,
}

enum RawProcess<'a> {
    Worker(u64),
    Named(Cow<'a, str>),
}

impl Default for RawProcess<'_> {
    fn default() -> Self {
        RawProcess::Worker(0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawProcess<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawProcess<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a process number or name")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(RawProcess::Worker(n))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(RawProcess::Named(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawProcess::Named(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

impl Line<'_> {
    /// The line's `value`, typed by its op (`history::value`).
    fn typed_value(&self) -> Result<Value, String> {
        let Some(raw) = self.value else {
            return Ok(Value::None);
        };
        let process = match &self.process {
            RawProcess::Named(s) => Some(s.as_ref()),
            RawProcess::Worker(_) => None,
        };
        let shape = Shape::of(F::of(&self.f), self.kind, process);
        // Observations are the lab's own JSON, not read by the checkers: not even parsed.
        if shape == Shape::Observation {
            return Ok(Value::None);
        }
        let mut d = serde_json::Deserializer::from_str(raw.get());
        shape
            .read(&mut d)
            .map_err(|e| format!("value of {}: {e}", shape.name()))
    }
}

impl History {
    /// The fields of a typed value the checkers read.
    fn val(&mut self, value: Value) -> Val {
        match value {
            Value::WriteInvoke(w) => Val::Write {
                offset: w.offset,
                len: w.len,
                write_through: w.write_through,
                replay_of: w.replay_of,
            },
            Value::WriteOk(w) => Val::Written(w.written),
            Value::OpenInvoke(o) => Val::OpenAsk {
                durable: o.durable != Durable::None,
                v1: o.durable == Durable::V1,
                persistent: o.persistent,
                lease: o.lease,
                oplock: o.oplock.level(),
            },
            Value::OpenOk(o) => Val::OpenOk {
                durable: o.durable,
                timeout_ms: o.timeout_ms,
                persistent: o.persistent,
                oplock: o.oplock.level(),
            },
            Value::ReconnectInvoke(r) => Val::Reconnect { open: Some(r.open) },
            Value::LeaseBreak(b) => Val::LeaseBreak {
                new_state: Some(b.new_state),
                epoch: Some(b.epoch),
            },
            Value::OplockBreak(b) => Val::OplockBreak {
                level: b.new_level.level(),
            },
            Value::ReadInvoke(r) => Val::Read {
                offset: r.offset,
                len: r.len,
            },
            Value::ReadOk(r) => Val::ReadOk {
                runs: r.runs.into_boxed_slice(),
                cached: r.cached,
            },
            Value::FinalRead(r) => Val::FinalRead {
                size: r.size,
                runs: r.runs.into_boxed_slice(),
                unstable: r.unstable.into_boxed_slice(),
            },
            Value::Fault(step) => Val::Nemesis {
                fault: step.fault,
                occurrence: step.occurrence,
                heal: step.phase == FaultPhase::Heal,
                client_side: step.action_str("side") == Some("client"),
                message_reset: step.action_str("kind") == Some("message")
                    && step.action_str("action") == Some("reset"),
                peer: self.opt(step.action_str("peer")),
                effect: step
                    .detail
                    .and_then(|d| d.effect)
                    .map(|effect| !effect.is_none()),
                require_effect: step.require_effect,
                heals: step.heals,
            },
            _ => Val::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::{Lease, Process, Smb};

    #[test]
    fn a_record_and_its_jsonl_line_read_the_same() {
        let records = vec![
            Record {
                index: 0,
                time_ns: 5,
                process: Process::Worker(3),
                kind: OpType::Ok,
                f: "open".into(),
                node: Some("c1".into()),
                value: history::value::OpenOk {
                    durable: true,
                    timeout_ms: 30000,
                    persistent: false,
                    oplock: history::value::OplockLevel::Lease,
                }
                .into(),
                status: None,
                smb: Smb {
                    client: Some("c1/0".into()),
                    conn: Some(2),
                    path: Some("f".into()),
                    file_id: Some("0000000000000001:0000000000000002".into()),
                    lease: Some(Lease {
                        key: "k".into(),
                        state: "RWH".into(),
                        epoch: 1,
                    }),
                    ..Smb::default()
                },
            },
            Record {
                index: 1,
                time_ns: 6,
                process: Process::nemesis(),
                kind: OpType::Invoke,
                f: "reset".into(),
                value: history::value::FaultStep {
                    fault: 2,
                    occurrence: 1,
                    phase: FaultPhase::Heal,
                    action: serde_json::json!({ "kind": "reset" }),
                    require_effect: false,
                    heals: true,
                    detail: None,
                }
                .into(),
                ..Record::default()
            },
        ];
        let dir = std::env::temp_dir().join(format!("check-compact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(&path, text + "{\"index\":2,\"ti").unwrap();
        let a = History::from_records(&records);
        let b = History::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(b.recs.len(), 2, "the torn tail is ignored");
        for (x, y) in a.recs.iter().zip(&b.recs) {
            assert_eq!(
                (x.index, x.time, x.kind, x.f, &x.v, x.conn),
                (y.index, y.time, y.kind, y.f, &y.v, y.conn)
            );
            assert_eq!(a.name(x.file_pid), b.name(y.file_pid));
            assert_eq!(a.name(x.f_name), b.name(y.f_name));
        }
        let open = &a.recs[0];
        assert_eq!(
            open.v,
            Val::OpenOk {
                durable: true,
                timeout_ms: 30000,
                persistent: false,
                oplock: oplock::LEASE
            }
        );
        assert_eq!(a.name(open.file_pid), "0000000000000001");
        assert_eq!(
            open.lease.map(|l| l.state),
            Some(Caps(Caps::R | Caps::W | Caps::H))
        );
        assert_eq!(
            a.recs[1].v,
            Val::Nemesis {
                fault: 2,
                occurrence: 1,
                heal: true,
                client_side: false,
                message_reset: false,
                peer: NONE,
                effect: None,
                require_effect: false,
                heals: true,
            }
        );
        assert_eq!(a.recs[1].process, NAMED | a.nemesis as u64);
    }

    /// A value that is not its op's type is an error naming its line, even on the last line
    /// (the lenient reader this replaced took a bool `durable` on an open invoke as asked).
    #[test]
    fn a_malformed_value_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let ok = r#"{"index":0,"time_ns":1,"process":0,"type":"invoke","f":"flush","value":{}}"#;
        let bad = r#"{"index":1,"time_ns":2,"process":0,"type":"invoke","f":"open","value":{"durable":true,"timeout_ms":0,"persistent":false,"lease":"","oplock":"none"}}"#;
        std::fs::write(&path, format!("{ok}\n{bad}\n")).unwrap();
        let err = History::read(&path).err().expect("an error").to_string();
        let want = format!("{}:2: value of an open invoke: ", path.display());
        assert!(err.starts_with(&want), "{err}");
        std::fs::write(&path, format!("{ok}\n")).unwrap();
        assert_eq!(History::read(&path).unwrap().recs.len(), 1);
    }
}
