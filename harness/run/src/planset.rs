//! The plan set: plans run one after another, each through [`runner::run`], until done or
//! cancelled (SIGINT/SIGTERM in the CLI). Cancelling drops the running plan's future, which
//! drops its lab, which tears it down. What a user sees of it is a [`Reporter`]'s business.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use check::{Outcome, Verdict};

use crate::events::Events;
use crate::runner::{self, RunOptions};

/// One plan of the set, validated.
pub struct Planned {
    pub path: PathBuf,
    pub plan: plan::Plan,
    /// The file as written, stored with the results.
    pub text: String,
    /// The test case's name when it is not the plan's (a sweep's `<plan> [seed N #k]`).
    pub case: Option<String>,
}

impl Planned {
    pub fn name(&self) -> &str {
        &self.plan.name.value
    }

    /// The name reporters give this run.
    pub fn case(&self) -> &str {
        self.case.as_deref().unwrap_or(self.name())
    }
}

/// How one plan ended.
pub enum PlanEnd {
    /// Judged: the verdict, where the results are, and the history it was drawn from.
    Judged {
        verdict: Verdict,
        results: PathBuf,
        history: JudgedHistory,
    },
    /// The harness could not run or finish it (the lab is not what the plan says, a heal did
    /// not take, ...): never judged.
    Errored(String),
    /// Cancelled while it ran.
    Interrupted(&'static str),
}

/// The compact history a run's verdict was drawn from, handed to the reporter with the
/// verdict so report.html is rendered from it (`report::write_with`) rather than from a
/// second parse of history.jsonl. Whoever takes it first has it.
pub struct JudgedHistory(std::sync::Mutex<Option<check::History>>);

impl JudgedHistory {
    pub fn take(&self) -> Option<check::History> {
        self.0.lock().ok().and_then(|mut h| h.take())
    }
}

impl PlanEnd {
    /// A run the runner finished and judged.
    pub fn judged(done: runner::Finished) -> PlanEnd {
        PlanEnd::Judged {
            verdict: done.verdict,
            results: done.results,
            history: JudgedHistory(std::sync::Mutex::new(Some(done.history))),
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            PlanEnd::Judged { verdict, .. } => verdict.outcome,
            PlanEnd::Errored(_) | PlanEnd::Interrupted(_) => Outcome::Unknown,
        }
    }
}

/// What the set tells whoever watches it.
#[allow(async_fn_in_trait)] // used generically by the CLI, never as a trait object
pub trait Reporter {
    /// Plan `index` starts: where its events go.
    fn started(&mut self, index: usize, planned: &Planned) -> Events;
    /// It ended, after `took`; its event sink has been dropped.
    async fn ended(&mut self, planned: &Planned, end: &PlanEnd, took: Duration);
    /// It was not run (the set was cancelled before it).
    fn not_run(&mut self, planned: &Planned, why: &str);
}

/// The set's result: the worst outcome, or the signal that stopped it.
pub enum SetEnd {
    Finished(Outcome),
    Interrupted(&'static str),
}

/// Run `plans` in order. `cancel` resolves to the reason (e.g. "SIGINT") when the set must
/// stop; the running plan is torn down and the rest are reported as not run.
pub async fn run_set<R: Reporter>(
    plans: &[Planned],
    options: &RunOptions,
    cancel: impl Future<Output = &'static str>,
    reporter: &mut R,
) -> SetEnd {
    let mut cancel = std::pin::pin!(cancel);
    let mut worst = Outcome::Pass;
    for (n, planned) in plans.iter().enumerate() {
        let events = reporter.started(n, planned);
        let started = Instant::now();
        let end = tokio::select! {
            r = runner::run(&planned.plan, &planned.text, options, &events) => match r {
                Ok(done) => PlanEnd::judged(done),
                Err(e) => PlanEnd::Errored(e.to_string()),
            },
            sig = &mut cancel => PlanEnd::Interrupted(sig),
        };
        drop(events);
        reporter.ended(planned, &end, started.elapsed()).await;
        if let PlanEnd::Interrupted(sig) = end {
            for rest in &plans[n + 1..] {
                reporter.not_run(rest, &format!("not run: {sig}"));
            }
            return SetEnd::Interrupted(sig);
        }
        worst = worst.and(tolerated(&planned.plan, end.outcome()));
    }
    SetEnd::Finished(worst)
}

/// A plan's outcome as the set counts it: one that did not pass counts as a pass when the
/// plan declares a known flake rate that explains one failure in one run (see
/// [`crate::sweep::flake_judgement`]).
pub fn tolerated(plan: &plan::Plan, outcome: Outcome) -> Outcome {
    match &plan.flake_rate {
        Some(rate)
            if outcome != Outcome::Pass
                && !crate::sweep::flake_judgement(1, 1, rate.value.fraction()).significant =>
        {
            Outcome::Pass
        }
        _ => outcome,
    }
}
