//! The writes and reads of each file as `durability` and `reads` judge them: each write's
//! settled outcome (a replay that ended ok acknowledges its original), when it became durable
//! (written through, or flushed on its handle afterwards), and the events that may excuse
//! losing a write that was not durable yet: a server process death or a crash (`kill`,
//! `crash`, `restart`, `stop`). Nothing else can lose an acknowledged write.

use history::OpType;

use crate::compact::{FxMap, Rec, Sym, Val, F, NONE};
use crate::faults::Fault;
use crate::index::{Index, Op};

pub struct Write {
    /// The write's invoke index: its `write_id` in the content.
    pub id: u64,
    pub off: u64,
    pub len: u64,
    /// Bytes the server said it wrote (`ok` value `written`), else `len`.
    pub written: u64,
    pub t0: u64,
    pub t1: u64,
    pub end: OpType,
    pub write_through: bool,
    pub done: u64,
    pub status: Sym,
    /// The first `ok` flush on the write's handle invoked after it completed: (completion
    /// time, invoke index).
    pub flush: Option<(u64, u64)>,
}

impl Write {
    pub fn is_ok(&self) -> bool {
        self.end == OpType::Ok
    }

    /// When the write was durable on the server (`u64::MAX`: never said to be).
    pub fn durable_at(&self) -> u64 {
        if self.write_through {
            self.t1
        } else {
            self.flush.map_or(u64::MAX, |(t, _)| t)
        }
    }

    /// How it was acknowledged, for explanations.
    pub fn how(&self) -> String {
        match (self.write_through, self.flush) {
            (true, _) => "write-through".into(),
            (false, Some((_, f))) => format!("flushed by {f}"),
            _ => "ok, unflushed".into(),
        }
    }

    /// The ops that prove it was acknowledged: invoke, completion and the flush.
    pub fn ack_ops(&self) -> Vec<u64> {
        let mut ops = vec![self.id, self.done];
        if let (false, Some((_, f))) = (self.write_through, self.flush) {
            ops.push(f);
        }
        ops
    }
}

/// A read op (ok) of the workload: what it asked for and what came back.
pub struct Read<'a> {
    pub op: Op<'a>,
    pub offset: u64,
    pub len: u64,
    pub runs: &'a [[i64; 3]],
    pub cached: bool,
}

#[derive(Default)]
pub struct File<'a> {
    /// Sorted by id.
    pub writes: Vec<Write>,
    /// Positions in `writes`, by offset.
    by_off: Vec<u32>,
    max_len: u64,
    pub reads: Vec<Read<'a>>,
    pub final_read: Option<&'a Rec>,
    /// Writes invoked before a (possibly) completed delete are forgotten.
    pub forgotten_before: u64,
    /// Read ops invoked (ok or not), and those the server refused with a status.
    pub reads_invoked: Vec<u64>,
    pub reads_refused: Vec<u64>,
}

impl File<'_> {
    pub fn write(&self, id: u64) -> Option<&Write> {
        let ws = &self.writes;
        ws.binary_search_by_key(&id, |w| w.id).ok().map(|i| &ws[i])
    }

    /// Writes whose bytes `[off, off + len)` overlap `[a, b)`.
    pub fn overlapping(&self, a: u64, b: u64) -> impl Iterator<Item = &Write> {
        let from = self
            .by_off
            .partition_point(|&i| self.writes[i as usize].off + self.max_len <= a);
        self.by_off[from..]
            .iter()
            .map(|&i| &self.writes[i as usize])
            .take_while(move |w| w.off < b)
            .filter(move |w| w.off + w.len > a)
    }

    /// Acknowledged: ended ok and not forgotten by a delete.
    pub fn acked(&self, w: &Write) -> bool {
        w.is_ok() && w.t0 >= self.forgotten_before
    }
}

/// An event that may lose a write not yet durable.
pub struct Excuse {
    pub label: String,
    pub start: u64,
    pub started: u64,
}

pub fn excuses(faults: &[Fault]) -> Vec<Excuse> {
    faults
        .iter()
        .filter(|f| matches!(f.kind, "kill" | "crash" | "restart" | "stop" | "power_cut"))
        .map(|f| Excuse {
            label: f.label(),
            start: f.start,
            started: f.started,
        })
        .collect()
}

/// The event that excuses losing write `w` before `t`: it began before `t`, after `w` was
/// invoked and before `w` was durable. None when `unflushed_loss` is forbidden.
pub fn excuse<'e>(excuses: &'e [Excuse], w: &Write, t: u64, allowed: bool) -> Option<&'e Excuse> {
    if !allowed {
        return None;
    }
    excuses
        .iter()
        .find(|e| e.start < t && w.t0 <= e.started && w.durable_at() > e.start)
}

pub struct Model<'a> {
    /// By path name, sorted.
    pub files: Vec<(&'a str, File<'a>)>,
    /// (replay op, original) of replays naming no write of their file.
    pub orphans: Vec<(u64, u64)>,
    /// Write invokes without offset or len.
    pub malformed: Vec<u64>,
}

pub fn build<'a>(index: &Index<'a>) -> Model<'a> {
    let mut files: FxMap<Sym, File<'a>> = FxMap::default();
    // (client, FileId) → handle (the open's invoke index); a reconnect maps its FileId to
    // the handle it reclaimed, so a flush after a reclaim acknowledges earlier writes.
    let mut handles: FxMap<(Sym, Sym), u64> = FxMap::default();
    // Per handle: `ok` flushes as (invoke time, completion time, invoke index).
    let mut flushes: FxMap<u64, Vec<(u64, u64, u64)>> = FxMap::default();
    // Per write: its handle.
    let mut write_handle: FxMap<u64, u64> = FxMap::default();
    let mut malformed = Vec::new();
    let mut replays = Vec::new();
    let mut replayed_ok = Vec::new();
    for op in &index.ops {
        let client = op.client();
        let file_id = || {
            if op.invoke.file_id != NONE {
                op.invoke.file_id
            } else {
                op.done.map_or(NONE, |d| d.file_id)
            }
        };
        match op.f() {
            F::Open | F::Reconnect if op.is_ok() => {
                let fid = op.done.map_or(NONE, |d| d.file_id);
                if fid != NONE {
                    let handle = match op.invoke.v {
                        Val::Reconnect { open: Some(open) } => open,
                        _ => op.index(),
                    };
                    handles.insert((client, fid), handle);
                }
            }
            F::Flush if op.is_ok() => {
                if let Some(&h) = handles.get(&(client, file_id())) {
                    flushes
                        .entry(h)
                        .or_default()
                        .push((op.t0(), op.t1(), op.index()));
                }
            }
            F::Delete if op.end() != OpType::Fail => {
                let file = files.entry(op.path()).or_default();
                file.forgotten_before = file.forgotten_before.max(op.t1());
            }
            F::Read => {
                let file = files.entry(op.path()).or_default();
                file.reads_invoked.push(op.index());
                if op.end() == OpType::Fail && op.server_answered(index.h) {
                    file.reads_refused.push(op.index());
                }
                if let (Val::Read { offset, len }, Some(Val::ReadOk { runs, cached })) =
                    (&op.invoke.v, op.done.map(|d| &d.v))
                {
                    file.reads.push(Read {
                        op: *op,
                        offset: *offset,
                        len: *len,
                        runs,
                        cached: *cached,
                    });
                }
            }
            F::Write => {
                let Val::Write {
                    offset: off,
                    len,
                    write_through,
                    replay_of,
                } = op.invoke.v
                else {
                    malformed.push(op.index());
                    continue;
                };
                if let Some(original) = replay_of {
                    // A replay writes the original's bytes again: it settles the original's
                    // outcome rather than adding a write of its own.
                    replays.push((op.path(), original, op.index()));
                    if op.is_ok() {
                        replayed_ok.push((
                            op.path(),
                            original,
                            op.t1(),
                            op.done_index(),
                            write_through,
                        ));
                    }
                    continue;
                }
                let written = match op.done.map(|d| &d.v) {
                    Some(Val::Written(n)) if op.is_ok() => (*n).min(len),
                    _ => len,
                };
                if let Some(&h) = handles.get(&(client, file_id())) {
                    write_handle.insert(op.index(), h);
                }
                files.entry(op.path()).or_default().writes.push(Write {
                    id: op.index(),
                    off,
                    len,
                    written,
                    t0: op.t0(),
                    t1: op.t1(),
                    end: op.end(),
                    write_through,
                    done: op.done_index(),
                    status: op.status(),
                    flush: None,
                });
            }
            _ => {}
        }
    }
    let orphans: Vec<(u64, u64)> = replays
        .iter()
        .filter(|(path, original, _)| {
            !files
                .get(path)
                .is_some_and(|f| f.writes.iter().any(|w| w.id == *original))
        })
        .map(|(_, original, replay)| (*replay, *original))
        .collect();
    for (path, original, t1, done, write_through) in replayed_ok {
        if let Some(w) = files
            .get_mut(&path)
            .and_then(|f| f.writes.iter_mut().find(|w| w.id == original))
        {
            if w.end != OpType::Ok {
                w.end = OpType::Ok;
                w.t1 = t1;
                w.done = done;
                w.written = w.len;
                w.write_through |= write_through;
            }
        }
    }
    for fl in flushes.values_mut() {
        fl.sort_unstable();
    }
    for file in files.values_mut() {
        for w in &mut file.writes {
            let Some(fl) = write_handle.get(&w.id).and_then(|h| flushes.get(h)) else {
                continue;
            };
            // Flushes on one handle are sequential: the first invoked after the write
            // completed is the one that made it durable.
            let i = fl.partition_point(|(t0, _, _)| *t0 <= w.t1);
            w.flush = fl.get(i).map(|&(_, t1, idx)| (t1, idx));
        }
    }
    for r in &index.events {
        if r.f == F::FinalRead {
            files.entry(r.path).or_default().final_read = Some(r);
        }
    }
    let mut files: Vec<(&str, File)> = files
        .into_iter()
        .map(|(p, mut f)| {
            f.writes.sort_unstable_by_key(|w| w.id);
            let mut by_off: Vec<u32> = (0..f.writes.len() as u32).collect();
            by_off.sort_unstable_by_key(|&i| f.writes[i as usize].off);
            f.max_len = f.writes.iter().map(|w| w.len).max().unwrap_or(0);
            f.by_off = by_off;
            (index.name(p), f)
        })
        .collect();
    files.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Model {
        files,
        orphans,
        malformed,
    }
}

/// Runs `[offset, len, write_id]` of a read as sorted `(start, end, id)`.
pub fn ranges(runs: &[[i64; 3]]) -> Vec<(u64, u64, i64)> {
    let mut out: Vec<(u64, u64, i64)> = runs
        .iter()
        .map(|[o, l, id]| {
            let o = (*o).max(0) as u64;
            (o, o + (*l).max(0) as u64, *id)
        })
        .collect();
    out.sort_unstable();
    out
}

/// What a byte range held, for explanations.
pub fn version(id: i64) -> String {
    match id {
        history::ops::ZEROS => "zeros".into(),
        history::ops::ALIEN => "alien bytes".into(),
        MISSING => "nothing (short read)".into(),
        id => format!("write {id}"),
    }
}

/// The `write_id` of bytes a read did not return at all (a short read, a hole past the end).
pub const MISSING: i64 = -3;
