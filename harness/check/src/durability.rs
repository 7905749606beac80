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

use std::collections::{BTreeMap, HashMap};

use history::{ops, OpType, Record};

use crate::index::{flag, uint, Index};
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
    check(&Index::new(history), options)
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
    status: Option<String>,
}

#[derive(Default)]
struct File<'a> {
    writes: Vec<Write>,
    final_read: Option<&'a Record>,
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
    let mut files: BTreeMap<&str, File> = BTreeMap::new();
    // (client, FileId) → handle (the open's invoke index); a reconnect maps its FileId to
    // the handle it reclaimed, so a flush after a reclaim acknowledges earlier writes.
    let mut handles: HashMap<(&str, &str), u64> = HashMap::new();
    // Per handle: the latest `ok` flush (invoke time, invoke index).
    let mut flushes: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut malformed = Vec::new();
    for op in &index.ops {
        let client = op.client().unwrap_or("");
        let file_id = || {
            op.invoke
                .smb
                .file_id
                .as_deref()
                .or(op.done.and_then(|d| d.smb.file_id.as_deref()))
        };
        match op.f() {
            ops::OPEN if op.is_ok() => {
                if let Some(fid) = op.done.and_then(|d| d.smb.file_id.as_deref()) {
                    handles.insert((client, fid), op.index());
                }
            }
            ops::RECONNECT if op.is_ok() => {
                if let Some(fid) = op.done.and_then(|d| d.smb.file_id.as_deref()) {
                    let handle = uint(&op.invoke.value, "open").unwrap_or(op.index());
                    handles.insert((client, fid), handle);
                }
            }
            ops::FLUSH if op.is_ok() => {
                if let Some(h) = file_id().and_then(|fid| handles.get(&(client, fid))) {
                    let latest = flushes.entry(*h).or_insert((op.t0(), op.index()));
                    if op.t0() >= latest.0 {
                        *latest = (op.t0(), op.index());
                    }
                }
            }
            ops::DELETE if op.end() != OpType::Fail => {
                let file = files.entry(op.path().unwrap_or("")).or_default();
                file.forgotten_before = file.forgotten_before.max(op.t1());
            }
            ops::WRITE => {
                let v = &op.invoke.value;
                let (Some(off), Some(len)) = (uint(v, "offset"), uint(v, "len")) else {
                    malformed.push(op.index());
                    continue;
                };
                let written = op
                    .done
                    .and_then(|d| uint(&d.value, "written"))
                    .unwrap_or(len)
                    .min(len);
                files
                    .entry(op.path().unwrap_or(""))
                    .or_default()
                    .writes
                    .push(Write {
                        id: op.index(),
                        off,
                        len,
                        written: if op.is_ok() { written } else { len },
                        t0: op.t0(),
                        t1: op.t1(),
                        end: op.end(),
                        write_through: flag(v, "write_through").unwrap_or(false),
                        handle: file_id().and_then(|fid| handles.get(&(client, fid)).copied()),
                        done: op.done_index(),
                        status: op.status().map(str::to_string),
                    });
            }
            _ => {}
        }
    }
    for r in &index.events {
        if r.f == ops::FINAL_READ {
            files
                .entry(r.smb.path.as_deref().unwrap_or(""))
                .or_default()
                .final_read = Some(r);
        }
    }

    let mut found = Findings::default();
    for op in malformed {
        found.unknown(&[op], || format!("write {op} has no offset or len"));
    }
    let (mut writes, mut acked, mut through, mut flushed) = (0, 0, 0, 0);
    for (path, file) in &mut files {
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
        let mut acks: HashMap<u64, Ack> = HashMap::new();
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
                    r.status.as_deref().unwrap_or("unknown")
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
    path: &'a str,
    file: &'a File<'r>,
    env: &'a [Seg],
    acks: &'a HashMap<u64, Ack>,
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

    fn final_read(&self, r: &Record, found: &mut Findings) {
        let path = self.path;
        let size = uint(&r.value, "size").unwrap_or(0);
        let mut runs: Vec<(u64, u64, i64)> = r
            .value
            .get("runs")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|run| {
                        let run = run.as_array()?;
                        Some((
                            run.first()?.as_u64()?,
                            run.get(1)?.as_u64()?,
                            run.get(2)?.as_i64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
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
    fn lost(&self, r: &Record, a: u64, b: u64, what: &str, found: &mut Findings) {
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
    fn present(&self, r: &Record, a: u64, b: u64, id: u64, found: &mut Findings) {
        let path = self.path;
        let Some(w) = self.write(id) else {
            return found.violation(Anomaly::Alien, &[r.index], || {
                format!("{path}: bytes [{a}, {b}) in final read {} hold write {id}, which is no write of this file", r.index)
            });
        };
        if w.end == OpType::Fail {
            found.violation(Anomaly::FailedWritePresent, &[w.id, w.done, r.index], || {
                let status = w.status.as_deref().unwrap_or("fail");
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
