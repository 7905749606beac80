//! `durability`, per file (`smb.path`), against the independent `final_read` after the run:
//!
//! - every acknowledged write survives: the final read shows, at each of its bytes, that write
//!   or one invoked after it completed. A write that ended `ok` is acknowledged, flushed or
//!   not; losing it is excused only by an event that can lose it (a server process death or
//!   crash: `kill`, `crash`, `restart`, `stop`) that began after it was invoked and before it
//!   was durable (written through, or flushed), and only while `unflushed_loss` is allowed.
//!   Every lost write is named, not only the newest per byte range;
//! - no byte is there that no write put there (ALIEN, another file's write, a write that
//!   does not cover that offset), nor a byte of a write that ended `fail`.
//!
//! A write that ended `info` may or may not be there. Where the final reader's own reads of
//! a file disagreed (the read path lied, see `reads`), the bytes two reads agree on are
//! judged; alien bytes every read agrees on are garbage on the disk.

use history::{ops, OpType, Record};

use crate::compact::{History, Rec, Val};
use crate::faults::{faults, Fault};
use crate::index::Index;
use crate::model::{self, excuse, excuses, Excuse, File, MISSING};
use crate::{Anomaly, Checked, Findings};

pub const NAME: &str = "durability";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityOptions {
    /// A write not yet durable (unflushed, not written through) may be lost across an event
    /// that can lose it (a server process death, a crash). Without such an event, losing
    /// any acknowledged write fails whatever this says.
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
    let h = History::from_records(history);
    let index = Index::new(&h);
    let faults = faults(&index);
    check(&index, &faults, options)
}

pub(crate) fn check(index: &Index, faults: &[Fault], options: &DurabilityOptions) -> Checked {
    check_model(index, &model::build(index), faults, options)
}

/// [`check`] on a model of the files already built (the verdict shares it with `reads`).
pub(crate) fn check_model(
    index: &Index,
    model: &model::Model,
    faults: &[Fault],
    options: &DurabilityOptions,
) -> Checked {
    let excuses = excuses(faults);
    let mut found = Findings::default();
    for &(replay, original) in &model.orphans {
        found.unknown(&[replay], || {
            format!("write {replay} replays {original}, which is no write of that file")
        });
    }
    for &op in &model.malformed {
        found.unknown(&[op], || format!("write {op} has no offset or len"));
    }
    let (mut writes, mut acked, mut through, mut flushed) = (0, 0, 0, 0);
    let (mut invoked_any, mut refused) = (0, Vec::new());
    let mut excused: Vec<String> = Vec::new();
    let mut excused_count = 0;
    for (path, file) in &model.files {
        let path = *path;
        writes += file.writes.len();
        for w in &file.writes {
            invoked_any += 1;
            if file.acked(w) {
                acked += 1;
                if w.write_through {
                    through += 1;
                } else if w.flush.is_some() {
                    flushed += 1;
                }
            } else if w.end == OpType::Fail && index.name(w.status).starts_with("STATUS_") {
                refused.push(w.id);
            }
        }
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
            Some(r) => {
                let judge = FileJudge {
                    index,
                    path,
                    file,
                    excuses: &excuses,
                    allowed: options.unflushed_loss_allowed,
                };
                judge.final_read(r, &mut found, &mut excused, &mut excused_count);
            }
        }
    }
    // What durability needs exercised: an acknowledged write ("a write answered").
    found.answered("write", invoked_any, acked, &refused);
    let summary = if model.files.iter().all(|(_, f)| f.writes.is_empty()) {
        "nothing to check: no writes".to_string()
    } else {
        let unflushed = acked - through - flushed;
        let policy = if options.unflushed_loss_allowed {
            "unflushed_loss: allowed across a server process death or crash"
        } else {
            "unflushed_loss: forbidden"
        };
        format!(
            "{} files, {writes} writes, {acked} acknowledged ({through} write-through, {flushed} flushed, {unflushed} unflushed; {policy})",
            model.files.iter().filter(|(_, f)| !f.writes.is_empty()).count()
        )
    };
    found.excused(&excused, excused_count);
    found.finish(NAME, summary)
}

struct FileJudge<'a, 'r> {
    index: &'a Index<'r>,
    path: &'a str,
    file: &'a File<'r>,
    excuses: &'a [Excuse],
    allowed: bool,
}

/// Lost writes explained in the notes of excuses; the rest counted.
const EXCUSES_SHOWN: usize = 5;

impl FileJudge<'_, '_> {
    fn final_read(
        &self,
        r: &Rec,
        found: &mut Findings,
        excused: &mut Vec<String>,
        excused_count: &mut usize,
    ) {
        let path = self.path;
        let (size, runs, unstable) = match &r.v {
            Val::FinalRead {
                size,
                runs,
                unstable,
            } => (*size, model::ranges(runs), unstable.clone()),
            _ => (0, Vec::new(), Box::default()),
        };
        let is_unstable = |a: u64, b: u64| {
            unstable
                .iter()
                .any(|[o, l]| *o < b && a < o.saturating_add(*l))
        };
        // Offsets no run covers (a gap, or past the end of the file) hold nothing.
        let mut pieces: Vec<(u64, u64, i64)> = Vec::with_capacity(runs.len() + 1);
        let mut cursor = 0;
        for &(a, b, id) in &runs {
            if a > cursor {
                pieces.push((cursor, a, MISSING));
            }
            cursor = cursor.max(b);
            pieces.push((a, b, id));
        }
        let end = self
            .file
            .writes
            .iter()
            .map(|w| w.off + w.written)
            .max()
            .unwrap_or(0);
        if end > cursor {
            pieces.push((cursor, end, MISSING));
        }
        // Per lost write: the byte ranges lost and what the final read holds there.
        let mut lost: Vec<(u64, u64, u64, i64)> = Vec::new();
        for &(a, b, id) in &pieces {
            let since = match id {
                ops::ALIEN if is_unstable(a, b) => {
                    // No two reads agreed: what the disk holds there is not known.
                    found.unknown(&[r.index], || {
                        format!(
                            "{path}: bytes [{a}, {b}) not judged: the final reader's reads disagree there (the read path lied; see reads)"
                        )
                    });
                    continue;
                }
                ops::ALIEN => {
                    found.violation(Anomaly::Alien, &[r.index], || {
                        format!(
                            "{path}: final read {} has bytes [{a}, {b}) no write can have put there; the final reader read them more than once and got the same: the disk holds garbage",
                            r.index
                        )
                    });
                    continue;
                }
                ops::ZEROS | MISSING => 0,
                id => match self.present(r, a, b, id as u64, found) {
                    Some(t1) => t1,
                    None => continue,
                },
            };
            for w in self.file.overlapping(a, b) {
                // Lost: acknowledged, invoked after the version found completed.
                if self.file.acked(w) && w.t0 > since {
                    let (x, y) = (a.max(w.off), b.min(w.off + w.written));
                    if x < y {
                        lost.push((w.id, x, y, id));
                    }
                }
            }
        }
        lost.sort_unstable();
        let mut i = 0;
        while i < lost.len() {
            let id = lost[i].0;
            let mut j = i;
            while j < lost.len() && lost[j].0 == id {
                j += 1;
            }
            let w = self.file.write(id).expect("a write of this file");
            let parts = &lost[i..j];
            let bytes: u64 = parts.iter().map(|p| p.2 - p.1).sum();
            let shown: Vec<String> = parts
                .iter()
                .take(3)
                .map(|&(_, x, y, v)| {
                    let what = if x >= size && v == MISSING {
                        "past the end of the file".into()
                    } else {
                        model::version(v)
                    };
                    format!("[{x}, {y}) holds {what}")
                })
                .collect();
            let more = if parts.len() > 3 { ", ..." } else { "" };
            let (path, how) = (self.path, w.how());
            match excuse(self.excuses, w, r.time, self.allowed) {
                Some(e) => {
                    *excused_count += 1;
                    if excused.len() < EXCUSES_SHOWN {
                        excused.push(format!(
                            "{path}: write {id} ({how}) lost across {} (unflushed at it)",
                            e.label
                        ));
                    }
                }
                None => {
                    let older = parts.iter().all(|p| p.3 >= 0);
                    let kind = if older {
                        Anomaly::Superseded
                    } else {
                        Anomaly::Lost
                    };
                    let mut cite = w.ack_ops();
                    // The older writes found instead are evidence too.
                    cite.extend(
                        parts
                            .iter()
                            .filter(|p| p.3 >= 0)
                            .take(3)
                            .map(|p| p.3 as u64),
                    );
                    cite.push(r.index);
                    let why = if w.durable_at() == u64::MAX && !self.allowed {
                        " (unflushed_loss: forbidden)"
                    } else if w.durable_at() == u64::MAX {
                        " (no server process death or crash to excuse it)"
                    } else {
                        ""
                    };
                    found.violation(kind, &cite, || {
                        format!(
                            "{path}: write {id} ({how}) is lost{why}: {bytes} of its bytes are not in final read {}: {}{more}",
                            r.index,
                            shown.join(", ")
                        )
                    });
                }
            }
            i = j;
        }
    }

    /// `[a, b)` holds write `id`'s bytes: judge it; returns the write's completion time (the
    /// version's age), or None when it is no write of this file.
    fn present(&self, r: &Rec, a: u64, b: u64, id: u64, found: &mut Findings) -> Option<u64> {
        let path = self.path;
        let Some(w) = self.file.write(id) else {
            found.violation(Anomaly::Alien, &[r.index], || {
                format!("{path}: bytes [{a}, {b}) in final read {} hold write {id}, which is no write of this file", r.index)
            });
            return None;
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
        // A write whose outcome is unknown may have taken effect at any time.
        Some(if w.is_ok() { w.t1 } else { u64::MAX })
    }
}
