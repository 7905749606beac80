//! `durability`, per file (`smb.path`), against the independent `final_read` after the run:
//!
//! - every acknowledged byte is there: a byte of a write-through write that ended `ok`, or of
//!   an `ok` write followed by an `ok` flush on the same handle invoked after the write
//!   completed (with `unflushed_loss: forbidden`, of every `ok` write);
//! - no byte is there that no write put there (ALIEN, another file's write, a write that
//!   does not cover that offset), nor a byte of a write that ended `fail`;
//! - no superseded byte comes back: a byte of write A where an acknowledged write B covering
//!   it was invoked after A completed.
//!
//! A write that ended `info` may or may not be there. Offsets are judged as intervals: the
//! acknowledged writes' upper envelope by invoke time, compared with the final read's runs.

use history::{ops, OpType, Record};

use crate::compact::{FxMap, History, Rec, Sym, Val, F, NONE};
use crate::index::Index;
use crate::intervals::{envelope, merge, overlapping, Seg};
use crate::{Anomaly, Checked, Findings};

pub const NAME: &str = "durability";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityOptions {
    /// An `ok` write never flushed may be missing (SMB makes no promise for it).
    pub unflushed_loss_allowed: bool,
}

impl Default for DurabilityOptions {
    fn default() -> Self {
        DurabilityOptions {
            unflushed_loss_allowed: true,
        }
    }
}

pub fn durability(history: &[Record], options: &DurabilityOptions) -> Checked {
    check(&Index::new(&History::from_records(history)), options)
}

struct Write {
    /// The write's invoke index: its `write_id` in the content.
    id: u64,
    off: u64,
    len: u64,
    /// Bytes the server said it wrote (`ok` value `written`), else `len`.
    written: u64,
    t1: u64,
    t0: u64,
    end: OpType,
    write_through: bool,
    handle: Option<u64>,
    done: u64,
    status: Sym,
}

#[derive(Default)]
struct File<'a> {
    writes: Vec<Write>,
    final_read: Option<&'a Rec>,
    /// Writes invoked before a (possibly) completed delete are forgotten.
    forgotten_before: u64,
}

/// Why a write is acknowledged, and the flush that did it.
enum Ack {
    WriteThrough,
    Flushed(u64),
    Ok,
}

pub(crate) fn check(index: &Index, options: &DurabilityOptions) -> Checked {
    let mut files: FxMap<Sym, File> = FxMap::default();
    // (client, FileId) → handle (the open's invoke index); a reconnect maps its FileId to
    // the handle it reclaimed, so a flush after a reclaim acknowledges earlier writes.
    let mut handles: FxMap<(Sym, Sym), u64> = FxMap::default();
    // Per handle: the latest `ok` flush (invoke time, invoke index).
    let mut flushes: FxMap<u64, (u64, u64)> = FxMap::default();
    let mut malformed = Vec::new();
    // (path, original write, replay op) and, for replays that ended ok, their ack.
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
                    let latest = flushes.entry(h).or_insert((op.t0(), op.index()));
                    if op.t0() >= latest.0 {
                        *latest = (op.t0(), op.index());
                    }
                }
            }
            F::Delete if op.end() != OpType::Fail => {
                let file = files.entry(op.path()).or_default();
                file.forgotten_before = file.forgotten_before.max(op.t1());
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
                files.entry(op.path()).or_default().writes.push(Write {
                    id: op.index(),
                    off,
                    len,
                    written,
                    t0: op.t0(),
                    t1: op.t1(),
                    end: op.end(),
                    write_through,
                    handle: handles.get(&(client, file_id())).copied(),
                    done: op.done_index(),
                    status: op.status(),
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
    for r in &index.events {
        if r.f == F::FinalRead {
            files.entry(r.path).or_default().final_read = Some(r);
        }
    }
    let mut files: Vec<(&str, File)> = files.into_iter().map(|(p, f)| (index.name(p), f)).collect();
    files.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let mut found = Findings::default();
    for (replay, original) in orphans {
        found.unknown(&[replay], || {
            format!("write {replay} replays {original}, which is no write of that file")
        });
    }
    for op in malformed {
        found.unknown(&[op], || format!("write {op} has no offset or len"));
    }
    let (mut writes, mut acked, mut through, mut flushed) = (0, 0, 0, 0);
    for (path, file) in &mut files {
        let path = *path;
        file.writes.sort_unstable_by_key(|w| w.id);
        writes += file.writes.len();
        let ack = |w: &Write| -> Option<Ack> {
            if w.end != OpType::Ok || w.t0 < file.forgotten_before {
                None
            } else if w.write_through {
                Some(Ack::WriteThrough)
            } else if let Some(&(t, flush)) = w.handle.and_then(|h| flushes.get(&h)) {
                (t > w.t1)
                    .then_some(Ack::Flushed(flush))
                    .or((!options.unflushed_loss_allowed).then_some(Ack::Ok))
            } else {
                (!options.unflushed_loss_allowed).then_some(Ack::Ok)
            }
        };
        let mut acks: FxMap<u64, Ack> = FxMap::default();
        let mut segs = Vec::new();
        for w in &file.writes {
            if let Some(a) = ack(w) {
                match a {
                    Ack::WriteThrough => through += 1,
                    Ack::Flushed(_) => flushed += 1,
                    Ack::Ok => {}
                }
                acked += 1;
                segs.push(Seg {
                    start: w.off,
                    end: w.off + w.written,
                    key: w.t0,
                    id: w.id,
                });
                acks.insert(w.id, a);
            }
        }
        let env = envelope(segs);
        let judge = FileJudge {
            index,
            path,
            file,
            env: &env,
            acks: &acks,
        };
        match file.final_read {
            None if file.writes.iter().any(|w| w.end != OpType::Fail) => {
                let ops: Vec<u64> = file.writes.iter().take(3).map(|w| w.id).collect();
                found.unknown(&ops, || {
                    format!(
                        "{path}: no final read, so its {} writes cannot be judged",
                        file.writes.len()
                    )
                });
            }
            None => {}
            Some(r) if r.kind != OpType::Ok => found.unknown(&[r.index], || {
                format!(
                    "{path}: final read {} did not complete ({})",
                    r.index,
                    index.name(r.status)
                )
            }),
            Some(r) => judge.final_read(r, &mut found),
        }
    }

    let summary = if files.is_empty() {
        "nothing to check: no writes and no final read".to_string()
    } else {
        let unflushed = if options.unflushed_loss_allowed {
            ""
        } else {
            ", unflushed writes counted (unflushed_loss: forbidden)"
        };
        format!(
            "{} files, {writes} writes, {acked} acknowledged ({through} write-through, {flushed} flushed{unflushed})",
            files.len()
        )
    };
    found.finish(NAME, summary)
}

struct FileJudge<'a, 'r> {
    index: &'a Index<'r>,
    path: &'a str,
    file: &'a File<'r>,
    env: &'a [Seg],
    acks: &'a FxMap<u64, Ack>,
}

impl FileJudge<'_, '_> {
    fn write(&self, id: u64) -> Option<&Write> {
        let ws = &self.file.writes;
        ws.binary_search_by_key(&id, |w| w.id).ok().map(|i| &ws[i])
    }

    /// The ops that prove write `id` was acknowledged: its invoke and completion, and the
    /// flush that acknowledged it.
    fn ack_ops(&self, id: u64) -> Vec<u64> {
        let mut ops = Vec::new();
        if let Some(w) = self.write(id) {
            ops.extend([w.id, w.done]);
        }
        if let Some(Ack::Flushed(f)) = self.acks.get(&id) {
            ops.push(*f);
        }
        ops
    }

    fn how(&self, id: u64) -> &'static str {
        match self.acks.get(&id) {
            Some(Ack::WriteThrough) => "write-through",
            Some(Ack::Flushed(_)) => "flushed",
            _ => "ok, unflushed",
        }
    }

    fn final_read(&self, r: &Rec, found: &mut Findings) {
        let path = self.path;
        let (size, mut runs): (u64, Vec<(u64, u64, i64)>) = match &r.v {
            Val::FinalRead { size, runs } => (
                *size,
                runs.iter()
                    .map(|[o, l, id]| ((*o).max(0) as u64, (*l).max(0) as u64, *id))
                    .collect(),
            ),
            _ => (0, Vec::new()),
        };
        runs.sort_unstable();
        // Offsets no run covers (a gap, or past the end of the file) hold nothing.
        let mut missing: Vec<(u64, u64)> = Vec::new();
        let mut cursor = 0;
        for &(off, len, id) in &runs {
            if off > cursor {
                missing.push((cursor, off));
            }
            cursor = cursor.max(off + len);
            let (a, b) = (off, off + len);
            match id {
                ops::ZEROS => self.lost(r, a, b, "zeros", found),
                ops::ALIEN => found.violation(Anomaly::Alien, &[r.index], || {
                    format!(
                        "{path}: final read {} has bytes [{a}, {b}) no write can have put there",
                        r.index
                    )
                }),
                id => self.present(r, a, b, id as u64, found),
            }
        }
        let end = self.env.last().map(|s| s.end).unwrap_or(0).max(cursor);
        missing.push((cursor, end));
        for (a, b) in merge(missing) {
            let why = if a >= size {
                "past the end of the file"
            } else {
                "not read"
            };
            self.lost(r, a, b, why, found);
        }
    }

    /// `[a, b)` holds nothing: every acknowledged byte there is lost.
    fn lost(&self, r: &Rec, a: u64, b: u64, what: &str, found: &mut Findings) {
        for s in overlapping(self.env, a, b) {
            let mut ops = self.ack_ops(s.id);
            ops.push(r.index);
            found.violation(Anomaly::Lost, &ops, || {
                format!(
                    "{}: bytes [{}, {}) acknowledged by write {} ({}) are lost: final read {} has {what}",
                    self.path,
                    s.start,
                    s.end,
                    s.id,
                    self.how(s.id),
                    r.index
                )
            });
        }
    }

    /// `[a, b)` holds write `id`'s bytes.
    fn present(&self, r: &Rec, a: u64, b: u64, id: u64, found: &mut Findings) {
        let path = self.path;
        let Some(w) = self.write(id) else {
            return found.violation(Anomaly::Alien, &[r.index], || {
                format!("{path}: bytes [{a}, {b}) in final read {} hold write {id}, which is no write of this file", r.index)
            });
        };
        if w.end == OpType::Fail {
            found.violation(Anomaly::FailedWritePresent, &[w.id, w.done, r.index], || {
                let status = match self.index.name(w.status) {
                    "" => "fail",
                    s => s,
                };
                format!("{path}: bytes [{a}, {b}) in final read {} hold write {id}, which failed ({status})", r.index)
            });
        }
        if a < w.off || b > w.off + w.len {
            found.violation(Anomaly::Alien, &[w.id, r.index], || {
                format!(
                    "{path}: bytes [{a}, {b}) in final read {} claim write {id}, which wrote [{}, {})",
                    r.index,
                    w.off,
                    w.off + w.len
                )
            });
        }
        for s in overlapping(self.env, a, b).filter(|s| s.key > w.t1) {
            let mut ops = self.ack_ops(s.id);
            ops.extend([w.id, w.done, r.index]);
            found.violation(Anomaly::Superseded, &ops, || {
                format!(
                    "{path}: bytes [{}, {}) in final read {} hold write {id}, superseded by write {} ({}) invoked after it completed",
                    s.start,
                    s.end,
                    r.index,
                    s.id,
                    self.how(s.id)
                )
            });
        }
    }
}
