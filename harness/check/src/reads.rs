//! `reads`: every `read` op returned, byte for byte, what a write could have put there.
//!
//! A read invoked at `t0` and completed at `t1` may return, at each byte, the bytes of a
//! write of that file covering it that was invoked before `t1` and did not fail (writes
//! concurrent with the read may or may not show), or zeros where nothing was written, but
//! nothing older than a write acknowledged before `t0`: a byte of version `v` is stale when
//! an acknowledged write covering it was invoked after `v` completed and completed before
//! the read began. Such a write is excused only as `durability` excuses a lost write (an
//! event that can lose it, while it was not durable yet, and `unflushed_loss` allowed), and
//! the excuse is named. Alien bytes always fail.
//!
//! Reads served from the client's own cache (`cache_reads`) are judged by the same rule, so
//! a stale cache is caught. Alien bytes are told apart: where the final reader's reads of
//! the same bytes show no garbage, the read path lied; where they show it too, the disk
//! holds it. Two reads of the final reader that disagree (with nothing writing) are a lie of
//! the read path by themselves.

use history::{ops, OpType, Record};

use crate::compact::{History, Val};
use crate::faults::{faults, Fault};
use crate::index::Index;
use crate::intervals::Newest;
use crate::model::{self, excuse, excuses, Excuse, File, Read, MISSING};
use crate::{secs, Anomaly, Checked, Findings};

pub const NAME: &str = "reads";

pub fn reads(history: &[Record], unflushed_loss_allowed: bool) -> Checked {
    let h = History::from_records(history);
    let index = Index::new(&h);
    let faults = faults(&index);
    check(&index, &faults, unflushed_loss_allowed)
}

pub(crate) fn check(index: &Index, faults: &[Fault], unflushed_loss_allowed: bool) -> Checked {
    check_model(&model::build(index), faults, unflushed_loss_allowed)
}

/// [`check`] on a model of the files already built (the verdict shares it with `durability`).
pub(crate) fn check_model(
    model: &model::Model,
    faults: &[Fault],
    unflushed_loss_allowed: bool,
) -> Checked {
    let excuses = excuses(faults);
    let mut found = Findings::default();
    let (mut judged, mut cached, mut invoked) = (0, 0, 0);
    let mut refused: Vec<u64> = Vec::new();
    let mut excused: Vec<String> = Vec::new();
    let mut excused_count = 0;
    for (path, file) in &model.files {
        invoked += file.reads_invoked.len();
        refused.extend(&file.reads_refused);
        // The final reader's view: (start, end, id) and where its reads disagreed.
        let (final_runs, unstable) = match file.final_read.map(|r| (r, &r.v)) {
            Some((r, Val::FinalRead { runs, unstable, .. })) if r.kind == OpType::Ok => {
                (model::ranges(runs), unstable.clone())
            }
            _ => (Vec::new(), Box::default()),
        };
        if let Some(r) = file.final_read {
            for &[o, l] in unstable.iter() {
                found.violation(Anomaly::ReadUnstable, &[r.index], || {
                    format!(
                        "{path}: the final reader read bytes [{o}, {}) more than once, with nothing writing, and got different bytes: the read path lied (final read {})",
                        o + l,
                        r.index
                    )
                });
            }
        }
        let garbage_on_disk = |a: u64, b: u64| {
            final_runs
                .iter()
                .any(|&(x, y, id)| x < b && a < y && id == ops::ALIEN)
        };
        let mut reads: Vec<&Read> = file.reads.iter().collect();
        reads.sort_by_key(|r| r.op.t0());
        let mut acked: Vec<&model::Write> = file.writes.iter().filter(|w| file.acked(w)).collect();
        acked.sort_by_key(|w| w.t1);
        let mut newest = Newest::default();
        let mut next = 0;
        let j = Judge {
            path,
            file,
            excuses: &excuses,
            allowed: unflushed_loss_allowed,
        };
        for r in reads {
            while next < acked.len() && acked[next].t1 < r.op.t0() {
                let w = acked[next];
                newest.insert(w.off, w.off + w.written, w.t0, w.id);
                next += 1;
            }
            judged += 1;
            cached += r.cached as usize;
            j.read(
                r,
                &newest,
                &garbage_on_disk,
                &mut found,
                &mut excused,
                &mut excused_count,
            );
        }
    }
    found.answered("read", invoked, judged, &refused);
    let summary = if invoked == 0 {
        "nothing to check: no reads".to_string()
    } else {
        format!("{judged} reads judged ({cached} from the client's cache) of {invoked} invoked")
    };
    found.excused(&excused, excused_count);
    found.finish(NAME, summary)
}

struct Judge<'a, 'r> {
    path: &'a str,
    file: &'a File<'r>,
    excuses: &'a [Excuse],
    allowed: bool,
}

const EXCUSES_SHOWN: usize = 5;

impl Judge<'_, '_> {
    fn read(
        &self,
        r: &Read,
        newest: &Newest,
        garbage_on_disk: &dyn Fn(u64, u64) -> bool,
        found: &mut Findings,
        excused: &mut Vec<String>,
        excused_count: &mut usize,
    ) {
        let path = self.path;
        let what = if r.cached { "cached read" } else { "read" };
        let (t0, t1, i) = (r.op.t0(), r.op.t1(), r.op.index());
        let cite = r.op.indexes();
        let mut pieces = model::ranges(r.runs);
        // Bytes asked for and not returned.
        let got_end = pieces.iter().map(|p| p.1).max().unwrap_or(r.offset);
        if got_end < r.offset + r.len {
            pieces.push((got_end.max(r.offset), r.offset + r.len, MISSING));
        }
        for (a, b, id) in pieces {
            let since = match id {
                ops::ALIEN => {
                    let how = if garbage_on_disk(a, b) {
                        "the final reader found garbage there too: the disk holds it"
                    } else {
                        "the final reader found none there: the read path lied"
                    };
                    let expected = match newest.overlapping(a, b).next() {
                        Some((_, (_, _, id))) => format!("write {id} or a later one"),
                        None => "zeros or a write concurrent with the read".to_string(),
                    };
                    found.violation(Anomaly::ReadAlien, &cite, || {
                        format!("{path}: {what} {i} returned bytes [{a}, {b}) no write can have put there (expected {expected}); {how}")
                    });
                    continue;
                }
                ops::ZEROS => 0,
                MISSING => 0,
                id => {
                    let id = id as u64;
                    let Some(w) = self.file.write(id) else {
                        found.violation(Anomaly::ReadAlien, &cite, || {
                            format!("{path}: {what} {i} returned bytes [{a}, {b}) of write {id}, which is no write of this file")
                        });
                        continue;
                    };
                    if a < w.off || b > w.off + w.len || w.t0 > t1 {
                        found.violation(Anomaly::ReadAlien, &cite, || {
                            format!("{path}: {what} {i} returned bytes [{a}, {b}) of write {id} ([{}, {}), invoked after the read completed: {}), which cannot have put them there", w.off, w.off + w.len, w.t0 > t1)
                        });
                        continue;
                    }
                    if w.end == OpType::Fail {
                        let mut c = cite.clone();
                        c.extend([w.id, w.done]);
                        found.violation(Anomaly::ReadFailedWrite, &c, || {
                            format!("{path}: {what} {i} returned bytes [{a}, {b}) of write {id}, which failed")
                        });
                        continue;
                    }
                    if w.is_ok() {
                        w.t1
                    } else {
                        u64::MAX
                    }
                }
            };
            // The newest acknowledged write before the read began, where newer than `since`.
            for (s, (e, wt0, wid)) in newest.overlapping(a, b) {
                if wt0 <= since {
                    continue;
                }
                let (x, y) = (s.max(a), e.min(b));
                let w = self.file.write(wid).expect("a write of this file");
                if let Some(e) = excuse(self.excuses, w, t0, self.allowed) {
                    *excused_count += 1;
                    if excused.len() < EXCUSES_SHOWN {
                        excused.push(format!(
                            "{path}: {what} {i} returned {} at [{x}, {y}) where write {wid} ({}) was lost across {}",
                            model::version(id),
                            w.how(),
                            e.label
                        ));
                    }
                    continue;
                }
                let kind = if id == MISSING {
                    Anomaly::ReadShort
                } else {
                    Anomaly::ReadStale
                };
                let mut c = cite.clone();
                c.extend(w.ack_ops());
                let ago = t0.saturating_sub(w.t1);
                found.violation(kind, &c, || {
                    format!(
                        "{path}: {what} {i} of [{}, {}) returned {} at [{x}, {y}), expected write {wid} ({}, acknowledged {} before the read began) or newer",
                        r.offset,
                        r.offset + r.len,
                        model::version(id),
                        w.how(),
                        secs(ago)
                    )
                });
            }
        }
    }
}
