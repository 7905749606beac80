//! The verdict: every checker run on the history, each compared with what the plan expects
//! of it. An expectation either asks for the invariant (pass while valid is true) or
//! documents a server limitation (pass while valid is false for the accepted reasons only,
//! fail the day the limitation goes away).

use std::time::Duration;

use history::Record;
use serde::{Deserialize, Serialize};

use crate::availability::{self, AvailabilityOptions};
use crate::compact::History;
use crate::durability::{self, DurabilityOptions};
use crate::faults::faults;
use crate::grants::{self, GrantOptions};
use crate::index::Index;
use crate::leases::{self, BreakPolicy, LeaseOptions};
use crate::resume::{self, ConflictPolicy, ResumeOptions};
use crate::{secs, Anomaly, CheckResult, Checked, Validity};

/// A run's outcome lives with the results layout (`history::results`).
pub use history::results::Outcome;

/// One checker's result with what was expected of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    #[serde(flatten)]
    pub result: CheckResult,
    /// What the plan expects of this checker.
    pub expected: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub checkers: Vec<Judged>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecExpectation {
    /// Every step ends with its `expect_exit`.
    #[default]
    ExpectedExit,
    /// Exit statuses are recorded, not judged.
    Any,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DurabilityExpectation {
    /// Acknowledged data survives.
    #[default]
    Hold,
    /// The server loses acknowledged data (lost or superseded bytes, nothing else).
    Lose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeExpectation {
    /// Durable handles are granted (when H caching or a batch oplock is) and reclaimable.
    Reclaim,
    /// Durable (or persistent) handles are not granted, or not reclaimable.
    Fail,
}

/// What every client's first open must be granted (`expect: granted:`).
pub type Grants = GrantOptions;

/// What the plan expects; the defaults judge the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    pub exec: ExecExpectation,
    pub durability: DurabilityExpectation,
    /// `ok` writes never flushed may be missing.
    pub unflushed_loss_allowed: bool,
    /// None: judge the durable handles that were granted, and do not ask for any.
    pub resume: Option<ResumeExpectation>,
    pub conflicting_open: ConflictPolicy,
    /// The status of a reconnect after the durable timeout.
    pub expired_status: String,
    pub break_timeout: Duration,
    /// Unacknowledged breaks: the least a conflicting open must have waited.
    pub break_wait: Option<Duration>,
    /// Whether the plan is about a lease/oplock break.
    pub breaks: BreakPolicy,
    /// What the server must grant (None: not judged).
    pub granted: Option<Grants>,
    pub max_stall: Option<Duration>,
    /// Clock tolerance around timeouts.
    pub clock_slack: Duration,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            exec: ExecExpectation::ExpectedExit,
            durability: DurabilityExpectation::Hold,
            unflushed_loss_allowed: true,
            resume: None,
            conflicting_open: ConflictPolicy::Either,
            expired_status: resume::OBJECT_NAME_NOT_FOUND.into(),
            break_timeout: Duration::from_secs(35),
            break_wait: None,
            breaks: BreakPolicy::Any,
            granted: None,
            max_stall: None,
            clock_slack: Duration::from_secs(1),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Run every checker on the history and compare each with the plan's expectations.
pub fn judge(history: &[Record], expect: &Expectations) -> Verdict {
    judge_history(&History::from_records(history), expect)
}

/// [`judge`] on a compact history, e.g. one read with [`History::read`] straight from a
/// results directory's history.jsonl.
pub fn judge_history(history: &History, expect: &Expectations) -> Verdict {
    let index = Index::new(history);
    let faults = faults(&index);
    let slack = nanos(expect.clock_slack);
    let mut checkers = Vec::with_capacity(5);

    let exec = crate::exec::check(history);
    checkers.push(match expect.exec {
        ExecExpectation::ExpectedExit => invariant(exec, "expected_exit".into()),
        ExecExpectation::Any => Judged {
            result: exec,
            expected: "any".into(),
            outcome: Outcome::Pass,
        },
    });

    let options = DurabilityOptions {
        unflushed_loss_allowed: expect.unflushed_loss_allowed,
    };
    // One model of the files' writes and reads, judged by durability and reads.
    let files = crate::model::build(&index);
    let durability = durability::check_model(&index, &files, &faults, &options);
    let unflushed = if expect.unflushed_loss_allowed {
        ""
    } else {
        ", unflushed_loss: forbidden"
    };
    checkers.push(match expect.durability {
        DurabilityExpectation::Hold => invariant_checked(durability, format!("hold{unflushed}")),
        DurabilityExpectation::Lose => limitation(
            durability,
            format!("lose{unflushed}"),
            &[Anomaly::Lost, Anomaly::Superseded],
            "acknowledged data to be lost",
        ),
    });

    let reads = crate::reads::check_model(&files, &faults, expect.unflushed_loss_allowed);
    drop(files);
    checkers.push(match expect.durability {
        DurabilityExpectation::Hold => invariant_checked(reads, format!("consistent{unflushed}")),
        // A server that loses acknowledged data also serves older bytes; nothing else.
        DurabilityExpectation::Lose => tolerate(
            reads,
            format!("consistent but for lost data{unflushed}"),
            &[Anomaly::ReadStale, Anomaly::ReadShort],
        ),
    });

    let options = ResumeOptions {
        require_grant: expect.resume.is_some(),
        require_reclaim: expect.resume == Some(ResumeExpectation::Reclaim),
        conflicting_open: expect.conflicting_open,
        expired_status: expect.expired_status.clone(),
        clock_slack_ns: slack,
    };
    let resume = resume::check(&index, &faults, &options);
    let conflicting = match expect.conflicting_open {
        ConflictPolicy::Either => "",
        ConflictPolicy::Refused => ", conflicting_open: refused",
        ConflictPolicy::Breaks => ", conflicting_open: breaks",
    };
    checkers.push(match expect.resume {
        None => invariant_checked(resume, format!("granted handles reclaimable{conflicting}")),
        Some(ResumeExpectation::Reclaim) => {
            invariant_checked(resume, format!("reclaim{conflicting}"))
        }
        Some(ResumeExpectation::Fail) => limitation(
            resume,
            format!("fail{conflicting}"),
            &[Anomaly::NotGranted, Anomaly::ReclaimRefused],
            "durable handles not granted or not reclaimable",
        ),
    });

    let options = LeaseOptions {
        break_timeout_ns: nanos(expect.break_timeout),
        break_wait_ns: expect.break_wait.map(nanos),
        clock_slack_ns: slack,
        breaks: expect.breaks,
    };
    let leases = leases::check(&index, &faults, &options);
    let breaks = match expect.breaks {
        BreakPolicy::Any => "",
        BreakPolicy::Required => ", breaks: required",
        BreakPolicy::None => ", breaks: none",
    };
    checkers.push(invariant_checked(
        leases,
        format!(
            "breaks first, within {}{}{breaks}",
            secs(nanos(expect.break_timeout)),
            expect
                .break_wait
                .map(|w| format!(
                    ", unacknowledged ones waited out for at least {}",
                    secs(nanos(w))
                ))
                .unwrap_or_default()
        ),
    ));

    let options = AvailabilityOptions {
        max_stall_ns: expect.max_stall.map(nanos),
    };
    let availability = availability::check(&index, &faults, &options);
    let expected = match expect.max_stall {
        Some(d) => format!("max_stall {}", secs(nanos(d))),
        None => "report".into(),
    };
    checkers.push(invariant_checked(availability, expected));

    checkers.push(invariant_checked(
        crate::effects::check(&faults),
        "every require_effect fault lands".into(),
    ));
    if let Some(g) = &expect.granted {
        let granted = grants::check(&index, g);
        checkers.push(invariant_checked(granted, g.describe()));
    }

    let outcome = checkers
        .iter()
        .fold(Outcome::Pass, |acc, j| acc.and(j.outcome));
    Verdict { outcome, checkers }
}

fn invariant(result: CheckResult, expected: String) -> Judged {
    let outcome = match result.valid {
        Validity::True => Outcome::Pass,
        Validity::False => Outcome::Fail,
        Validity::Unknown => Outcome::Unknown,
    };
    Judged {
        result,
        expected,
        outcome,
    }
}

fn invariant_checked(checked: Checked, expected: String) -> Judged {
    invariant(checked.result, expected)
}

/// An invariant that tolerates `accepts` (which need not show).
fn tolerate(checked: Checked, expected: String, accepts: &[Anomaly]) -> Judged {
    let Checked {
        mut result,
        anomalies,
    } = checked;
    if result.valid == Validity::False && anomalies.iter().all(|a| accepts.contains(a)) {
        result.explanation = format!("as tolerated ({expected}): {}", result.explanation);
        return Judged {
            result,
            expected,
            outcome: Outcome::Pass,
        };
    }
    invariant(result, expected)
}

/// The plan documents a limitation: pass while the checker finds exactly the accepted kinds
/// of anomaly; fail when it finds none (the limitation is gone) or any other kind.
fn limitation(checked: Checked, expected: String, accepts: &[Anomaly], what: &str) -> Judged {
    let Checked {
        mut result,
        anomalies,
    } = checked;
    let outcome = match result.valid {
        Validity::Unknown => Outcome::Unknown,
        Validity::True => {
            result.explanation = format!(
                "expected {what} ({expected}), and it did not happen: {}",
                result.explanation
            );
            Outcome::Fail
        }
        Validity::False => {
            let other: Vec<&str> = anomalies
                .iter()
                .filter(|a| !accepts.contains(a))
                .map(|a| a.name())
                .collect();
            if other.is_empty() {
                result.explanation = format!("as expected ({expected}): {}", result.explanation);
                Outcome::Pass
            } else {
                result.explanation = format!(
                    "beyond the expected {what}, found {}: {}",
                    other.join(", "),
                    result.explanation
                );
                Outcome::Fail
            }
        }
    };
    Judged {
        result,
        expected,
        outcome,
    }
}
