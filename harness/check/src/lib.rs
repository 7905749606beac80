//! Checkers: pure functions over a stored history (`&[history::Record]`) that say valid
//! true / false / unknown, with the op indexes that prove it. They know nothing of the lab, so
//! `smbchaos check RESULTS_DIR` re-judges a stored run exactly as the run judged it.
//!
//! | checker | invariant |
//! |---|---|
//! | `exec` | every exec step ended with the exit status its plan asked for |
//! | `durability` | acknowledged writes survive (each lost one named); no alien, failed or superseded byte appears |
//! | `reads` | every read returns, byte for byte, a write that could have produced it: none alien, none older than a write acknowledged before the read began |
//! | `handle-resume` | durable handles are reclaimable until their timeout, keep FileId and lease, then expire |
//! | `leases` | a conflicting open completes only after the break reached the W/H holder |
//! | `availability` | stalls per client and per fault; false only past `max_stall` |
//! | `grants` | the server granted the lease, oplock and durability the plan requires |
//! | `network-bytes` | the share of a node's bytes each network carried is within the plan's bounds |
//! | `probe-latency` | a probe's slowdown while a load runs is within the plan's bounds |
//!
//! Each checker states what it needs to have been exercised (its preconditions, reported in
//! the verdict): one the server refused (every open failed, no lease granted) fails the
//! checker, one the harness could not tell leaves it unknown. "Nothing to check" passes only
//! where the plan asked for nothing.
//!
//! The verdict ([`judge`]) compares each checker with the plan's expectation: a plan may
//! document a known server limitation (`durability: lose`, `resume: fail`) and then passes
//! while the limitation shows and fails the day it changes.

pub mod availability;
pub mod compact;
pub mod durability;
mod effects;
pub mod exec;
pub mod failover;
pub mod faults;
pub mod grants;
pub mod index;
mod intervals;
pub mod leases;
mod model;
pub mod networks;
pub mod reads;
pub mod resume;
mod verdict;

use serde::{Deserialize, Serialize};

pub use availability::{availability, AvailabilityOptions};
pub use compact::{Caps, History};

/// Lease state letters (some of R, W, H) as caps.
pub fn compact_caps(letters: &str) -> Caps {
    compact::caps(letters)
}
pub use durability::{durability, DurabilityOptions};
pub use exec::exec;
pub use faults::{faults, Fault};
pub use grants::{grants, GrantOptions};
pub use index::Index;
pub use leases::{leases, BreakPolicy, LeaseOptions};
pub use reads::reads;
pub use resume::{handle_resume, ConflictPolicy, ResumeOptions};
pub use verdict::{
    judge, judge_history, DurabilityExpectation, ExecExpectation, Expectations, Grants, Judged,
    Outcome, ResumeExpectation, Verdict,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    True,
    False,
    Unknown,
}

impl Validity {
    /// Jepsen's composition: false beats unknown beats true.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (False, _) | (_, False) => False,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => True,
        }
    }
}

/// One checker's judgement; verdict.json keeps this shape (the report renders it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub checker: String,
    pub valid: Validity,
    pub explanation: String,
    /// History indexes of the ops that prove the result.
    pub ops: Vec<u64>,
    /// What the checker needed the run to exercise, and whether it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preconditions: Vec<Precondition>,
}

/// Something a checker needs the run to have exercised (a lease granted, a fault landed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precondition {
    pub what: String,
    /// True: exercised. False: the server refused it (the checker fails). Unknown: the
    /// harness could not tell (the checker is unknown).
    pub held: Validity,
    pub detail: String,
}

/// What a checker found wrong. An expectation that documents a server limitation accepts
/// some kinds (e.g. `durability: lose` accepts `Lost` and `Superseded`) and no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anomaly {
    /// exec: a step ended with another exit status than expected.
    ExecFailed,
    /// durability: an acknowledged byte is missing (zeros, or the file is shorter).
    Lost,
    /// durability: a byte of write A is back where an acknowledged write B, invoked after A
    /// completed, had overwritten it.
    Superseded,
    /// durability: a byte no write can have put there (ALIEN, another file's write, a write
    /// that does not cover that offset).
    Alien,
    /// durability: a byte of a write that ended `fail` (it must not have happened).
    FailedWritePresent,
    /// handle-resume: a durable handle was asked for with H/batch caching granted, and refused.
    NotGranted,
    /// handle-resume: a reconnect within the timeout failed (and no later one succeeded).
    ReclaimRefused,
    /// handle-resume: a reconnect after the timeout succeeded.
    ReclaimedAfterExpiry,
    /// handle-resume: a reconnect after the timeout failed with another status than expected.
    WrongExpiryStatus,
    /// handle-resume: a reconnect returned another persistent FileId.
    FileIdChanged,
    /// handle-resume: a reconnect returned another lease key, or another lease state.
    LeaseChanged,
    /// handle-resume: a lease epoch went backwards.
    EpochRegressed,
    /// handle-resume: another client's open was granted while the handle was preserved
    /// (expectation `conflicting_open: refused`).
    ConflictingOpenGranted,
    /// handle-resume: another client's open was refused while the handle was preserved
    /// (expectation `conflicting_open: breaks`).
    ConflictingOpenRefused,
    /// handle-resume: a handle was reclaimed after another client's open had broken it.
    ReclaimedAfterBreak,
    /// leases: a conflicting open completed before the break reached the holder.
    BreakLate,
    /// leases: no break ever reached a holder whose connection was alive.
    BreakMissing,
    /// leases: a conflicting open waited longer than the break timeout.
    BreakTimeoutExceeded,
    /// A conflicting open completed sooner than `break_wait` after meeting a holder that
    /// never acknowledged its break: the server gave up on the holder early.
    BreakGivenUp,
    /// availability: a client made no progress for longer than `max_stall`.
    StallExceeded,
    /// fault-effects: a fault the plan requires to land did nothing.
    FaultMissed,
    /// reads: a read returned bytes no write can have put there.
    ReadAlien,
    /// reads: a read returned bytes older than a write acknowledged before it began.
    ReadStale,
    /// reads: a read returned bytes of a write that failed.
    ReadFailedWrite,
    /// reads: a read returned fewer bytes than acknowledged writes had put there.
    ReadShort,
    /// reads: two reads of the same bytes by the final reader, with nothing writing,
    /// disagreed (the read path lied).
    ReadUnstable,
    /// grants: the server granted less than the plan requires (lease, oplock, durability).
    GrantRefused,
    /// leases: a break happened where the plan expects none.
    BreakUnexpected,
    /// any checker: what it needs exercised was refused by the server.
    PreconditionRefused,
    /// network-bytes: a node's link to a network carried a share of its bytes outside the bounds.
    NetworkShare,
    /// probe-latency: the probe slowed down under the load outside the bounds.
    ProbeLatency,
}

impl Anomaly {
    pub fn name(self) -> &'static str {
        use Anomaly::*;
        match self {
            ExecFailed => "exec-failed",
            Lost => "lost",
            Superseded => "superseded",
            Alien => "alien",
            FailedWritePresent => "failed-write-present",
            NotGranted => "not-granted",
            ReclaimRefused => "reclaim-refused",
            ReclaimedAfterExpiry => "reclaimed-after-expiry",
            WrongExpiryStatus => "wrong-expiry-status",
            FileIdChanged => "file-id-changed",
            LeaseChanged => "lease-changed",
            EpochRegressed => "epoch-regressed",
            ConflictingOpenGranted => "conflicting-open-granted",
            ConflictingOpenRefused => "conflicting-open-refused",
            ReclaimedAfterBreak => "reclaimed-after-break",
            BreakLate => "break-late",
            BreakMissing => "break-missing",
            BreakTimeoutExceeded => "break-timeout-exceeded",
            BreakGivenUp => "break-given-up",
            StallExceeded => "stall-exceeded",
            FaultMissed => "fault-missed",
            ReadAlien => "read-alien",
            ReadStale => "read-stale",
            ReadFailedWrite => "read-failed-write",
            ReadShort => "read-short",
            ReadUnstable => "read-unstable",
            GrantRefused => "grant-refused",
            BreakUnexpected => "break-unexpected",
            PreconditionRefused => "precondition-refused",
            NetworkShare => "network-share",
            ProbeLatency => "probe-latency",
        }
    }
}

/// A checker's result and the kinds of anomaly behind a `false`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub result: CheckResult,
    /// Sorted, without duplicates; empty unless `result.valid` is false.
    pub anomalies: Vec<Anomaly>,
}

/// At most this many op indexes are cited per finding kind other than a lost write (the
/// explanation says how many in all); lost writes are every one cited.
pub const MAX_CITED_OPS: usize = 200;

/// Collects findings and renders a [`Checked`]: the first few findings are explained, every
/// anomaly kind is kept, the cited ops are capped.
#[derive(Default)]
pub(crate) struct Findings {
    violations: Vec<String>,
    violation_count: usize,
    unknowns: Vec<String>,
    unknown_count: usize,
    ops: Vec<u64>,
    unknown_ops: Vec<u64>,
    anomalies: Vec<Anomaly>,
    notes: Vec<String>,
    preconditions: Vec<Precondition>,
    cited: std::collections::HashSet<u64>,
}

/// Findings explained in full; the rest are counted.
const EXPLAINED: usize = 8;

impl Findings {
    pub fn violation(&mut self, kind: Anomaly, ops: &[u64], why: impl FnOnce() -> String) {
        self.violation_count += 1;
        if self.violations.len() < EXPLAINED {
            self.violations.push(why());
        }
        if !self.anomalies.contains(&kind) {
            self.anomalies.push(kind);
        }
        // Lost writes are every one cited (the text is capped, verdict.json is not).
        let cap = if kind == Anomaly::Lost || kind == Anomaly::Superseded {
            usize::MAX
        } else {
            MAX_CITED_OPS
        };
        for &op in ops {
            if self.ops.len() < cap && self.cited.insert(op) {
                self.ops.push(op);
            }
        }
    }

    /// What the checker needed exercised: false fails the checker (the server refused it),
    /// unknown leaves it unknown (the harness could not tell).
    /// The precondition "a `noun` answered" over `invoked` ops of which `answered` were:
    /// held when any was; refused (a FAIL, citing the first refusals) when the server refused
    /// every one; unknown when none completed. Nothing when none was invoked.
    pub fn answered(&mut self, noun: &str, invoked: usize, answered: usize, refused: &[u64]) {
        let what = format!("a {noun} answered");
        if answered > 0 {
            self.precondition(&what, Validity::True, &[], format!("{answered} answered"));
        } else if invoked > 0 {
            let (held, detail) = if refused.len() == invoked {
                (
                    Validity::False,
                    format!("the server refused every one of the {invoked} {noun}s"),
                )
            } else {
                (
                    Validity::Unknown,
                    format!("none of the {invoked} {noun}s was answered (outcomes unknown)"),
                )
            };
            let cite: Vec<u64> = refused.iter().take(10).copied().collect();
            self.precondition(&what, held, &cite, detail);
        }
    }

    /// A note of the excuses a judgement applied: the first few, and how many more.
    pub fn excused(&mut self, excused: &[String], count: usize) {
        if count > 0 {
            let more = if count > excused.len() {
                format!(" (and {} more)", count - excused.len())
            } else {
                String::new()
            };
            self.note(format!("excused: {}{more}", excused.join("; ")));
        }
    }

    pub fn precondition(&mut self, what: &str, held: Validity, ops: &[u64], detail: String) {
        match held {
            Validity::False => {
                let d = detail.clone();
                self.violation(Anomaly::PreconditionRefused, ops, || {
                    format!("precondition not met ({what}): {d}")
                });
            }
            Validity::Unknown => {
                let d = detail.clone();
                self.unknown(ops, || format!("precondition unknown ({what}): {d}"));
            }
            Validity::True => {}
        }
        self.preconditions.push(Precondition {
            what: what.to_string(),
            held,
            detail,
        });
    }

    pub fn unknown(&mut self, ops: &[u64], why: impl FnOnce() -> String) {
        self.unknown_count += 1;
        if self.unknowns.len() < EXPLAINED {
            self.unknowns.push(why());
        }
        cite(&mut self.unknown_ops, ops);
    }

    /// Context for the explanation (what was judged, measurements).
    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// `summary` says what was checked, e.g. "3 files, 1200 acknowledged writes".
    pub fn finish(mut self, checker: &str, summary: String) -> Checked {
        let (valid, mut text, ops) = if self.violation_count > 0 {
            let more = more(self.violation_count, self.violations.len());
            (
                Validity::False,
                format!("{}{more}", self.violations.join("; ")),
                self.ops,
            )
        } else if self.unknown_count > 0 {
            let more = more(self.unknown_count, self.unknowns.len());
            (
                Validity::Unknown,
                format!("{}{more}", self.unknowns.join("; ")),
                self.unknown_ops,
            )
        } else {
            (Validity::True, String::new(), Vec::new())
        };
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(std::mem::take(&mut text));
        }
        parts.push(summary);
        parts.append(&mut self.notes);
        self.anomalies.sort();
        Checked {
            result: CheckResult {
                checker: checker.into(),
                valid,
                explanation: parts.join(". "),
                ops,
                preconditions: self.preconditions,
            },
            anomalies: if valid == Validity::False {
                self.anomalies
            } else {
                Vec::new()
            },
        }
    }
}

fn more(total: usize, shown: usize) -> String {
    if total > shown {
        format!(" (and {} more)", total - shown)
    } else {
        String::new()
    }
}

fn cite(into: &mut Vec<u64>, ops: &[u64]) {
    for &op in ops {
        if into.len() >= MAX_CITED_OPS {
            return;
        }
        if !into.contains(&op) {
            into.push(op);
        }
    }
}

/// A duration in the unit that reads best (`850ms`, `12.3s`).
pub(crate) fn secs(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{:.1}s", ns as f64 / 1e9)
    }
}
