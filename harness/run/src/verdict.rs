//! The verdict: every checker's result compared with what the plan expects of it (the
//! `check` crate does both; this maps the plan's `expect:` onto its expectations).

pub use check::{Judged, Outcome, Verdict};

use history::Record;

/// Run every checker on the history and compare with the plan's expectations.
pub fn judge(history: &[Record], expect: &plan::Expect) -> Verdict {
    check::judge(history, &expectations(expect))
}

/// Re-judge a stored history.jsonl without holding its records (a compact history: about a
/// tenth of the memory of `history::read`).
pub fn judge_stored(
    history: &std::path::Path,
    expect: &plan::Expect,
) -> Result<Verdict, history::ReadError> {
    judge_stored_keeping(history, expect).map(|(verdict, _)| verdict)
}

/// [`judge_stored`], handing back the compact history it read, so the report can be drawn
/// from it without reading the file again.
pub fn judge_stored_keeping(
    history: &std::path::Path,
    expect: &plan::Expect,
) -> Result<(Verdict, check::History), history::ReadError> {
    let compact = check::History::read(history)?;
    let mut verdict = check::judge_history(&compact, &expectations(expect));
    let whole = expect.failover.is_some()
        || !expect.network_bytes.is_empty()
        || expect.probe_latency.is_some();
    if whole {
        // Cluster and seed-004 plans only: their histories are small enough to hold whole.
        let records = history::read(history)?;
        let mut judged = Vec::new();
        if let Some(failover) = &expect.failover {
            judged.push(judge_failover(&records, failover));
        }
        judged.extend(judge_networks(&records, expect));
        for j in judged {
            verdict.outcome = verdict.outcome.and(j.outcome);
            verdict.checkers.push(j);
        }
    }
    Ok((verdict, compact))
}

/// `network-bytes` and `probe-latency` against `expect.network_bytes` and
/// `expect.probe_latency` (nothing when the plan has neither).
pub fn judge_networks(history: &[Record], expect: &plan::Expect) -> Vec<Judged> {
    let mut out = Vec::new();
    if !expect.network_bytes.is_empty() {
        let bounds: Vec<check::networks::ShareBound> = expect
            .network_bytes
            .iter()
            .map(|b| check::networks::ShareBound {
                node: b.node.value.clone(),
                network: b.network.value.clone(),
                at_least: b.at_least.as_ref().map(|p| p.value.fraction()),
                at_most: b.at_most.as_ref().map(|p| p.value.fraction()),
            })
            .collect();
        let expected = serde_json::to_string(&expect.network_bytes).unwrap_or_default();
        out.push(judged(
            check::networks::network_bytes(history, &bounds).result,
            expected,
        ));
    }
    if let Some(p) = &expect.probe_latency {
        let o = check::networks::ProbeOptions {
            probe: p.probe.value.clone(),
            load: p.load.value.clone(),
            at_least: p.at_least.as_ref().map(|f| f.value),
            at_most: p.at_most.as_ref().map(|f| f.value),
        };
        let expected = serde_json::to_string(p).unwrap_or_default();
        out.push(judged(
            check::networks::probe_latency(history, &o).result,
            expected,
        ));
    }
    out
}

fn judged(result: check::CheckResult, expected: String) -> Judged {
    let outcome = match result.valid {
        check::Validity::True => Outcome::Pass,
        check::Validity::False => Outcome::Fail,
        check::Validity::Unknown => Outcome::Unknown,
    };
    Judged {
        result,
        expected,
        outcome,
    }
}

/// The failover checker against the plan's `expect.failover`.
pub fn judge_failover(history: &[Record], expect: &plan::FailoverExpectation) -> Judged {
    let opts = check::failover::FailoverOptions {
        takeover_within: expect.takeover_within.map(|d| d.as_duration()),
        tickle: expect.tickle.map(|t| t == plan::TickleExpectation::Sent),
        reconnect_within: expect.reconnect_within.map(|d| d.as_duration()),
        witness_within: expect.witness_within.map(|d| d.as_duration()),
        reregister_within: expect.reregister_within.map(|d| d.as_duration()),
    };
    let result = check::failover::failover(history, &opts);
    let outcome = match result.valid {
        check::Validity::True => Outcome::Pass,
        check::Validity::False => Outcome::Fail,
        check::Validity::Unknown => Outcome::Unknown,
    };
    let expected = serde_json::to_string(expect).unwrap_or_default();
    Judged {
        result,
        expected,
        outcome,
    }
}

pub fn expectations(expect: &plan::Expect) -> check::Expectations {
    check::Expectations {
        exec: match expect.exec {
            plan::ExecExpectation::ExpectedExit => check::ExecExpectation::ExpectedExit,
            plan::ExecExpectation::Any => check::ExecExpectation::Any,
        },
        durability: match expect.durability {
            plan::DurabilityExpectation::Hold => check::DurabilityExpectation::Hold,
            plan::DurabilityExpectation::Lose => check::DurabilityExpectation::Lose,
        },
        unflushed_loss_allowed: expect.unflushed_loss == plan::UnflushedLoss::Allowed,
        resume: expect.resume.map(|r| match r {
            plan::ResumeExpectation::Reclaim => check::ResumeExpectation::Reclaim,
            plan::ResumeExpectation::Fail => check::ResumeExpectation::Fail,
        }),
        conflicting_open: match expect.conflicting_open {
            None => check::ConflictPolicy::Either,
            Some(plan::ConflictingOpen::Refused) => check::ConflictPolicy::Refused,
            Some(plan::ConflictingOpen::Breaks) => check::ConflictPolicy::Breaks,
        },
        expired_status: expect.expired_status.clone(),
        break_timeout: expect.break_timeout.as_duration(),
        break_wait: expect.break_wait.as_ref().map(|w| w.as_duration()),
        breaks: match expect.breaks {
            None => check::BreakPolicy::Any,
            Some(plan::BreakExpectation::Required) => check::BreakPolicy::Required,
            Some(plan::BreakExpectation::None) => check::BreakPolicy::None,
        },
        granted: expect.granted.as_ref().map(grants),
        max_stall: expect.max_stall.map(|d| d.as_duration()),
        clock_slack: expect.clock_slack.as_duration(),
    }
}

fn grants(g: &plan::Granted) -> check::Grants {
    use check::compact_caps as caps;
    check::Grants {
        lease: g.lease.as_ref().map(|l| caps(&l.value)),
        oplock: g.oplock.map(|o| match o {
            plan::OplockChoice::None => 0x00,
            plan::OplockChoice::Level2 => 0x01,
            plan::OplockChoice::Exclusive => 0x08,
            plan::OplockChoice::Batch => 0x09,
        }),
        durable: g.durable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_without_expectations_judges_the_invariants() {
        assert_eq!(
            expectations(&plan::Expect::default()),
            check::Expectations::default()
        );
    }

    #[test]
    fn every_expectation_reaches_the_checkers() {
        let expect: plan::Expect = serde_json::from_value(serde_json::json!({
            "durability": "lose", "unflushed_loss": "forbidden", "resume": "fail", "conflicting_open": "refused",
            "expired_status": "STATUS_FILE_CLOSED", "break_timeout": "40s", "max_stall": "1m", "clock_slack": "2s",
            "breaks": "required", "granted": { "lease": "RH", "oplock": "batch", "durable": true },
        }))
        .unwrap();
        let e = expectations(&expect);
        assert_eq!(e.durability, check::DurabilityExpectation::Lose);
        assert!(!e.unflushed_loss_allowed);
        assert_eq!(e.resume, Some(check::ResumeExpectation::Fail));
        assert_eq!(e.conflicting_open, check::ConflictPolicy::Refused);
        assert_eq!(e.expired_status, "STATUS_FILE_CLOSED");
        assert_eq!(e.break_timeout, std::time::Duration::from_secs(40));
        assert_eq!(e.max_stall, Some(std::time::Duration::from_secs(60)));
        assert_eq!(e.clock_slack, std::time::Duration::from_secs(2));
        assert_eq!(e.breaks, check::BreakPolicy::Required);
        let g = e.granted.unwrap();
        assert_eq!(g.lease, Some(check::compact_caps("RH")));
        assert_eq!((g.oplock, g.durable), (Some(0x09), true));
    }
}
