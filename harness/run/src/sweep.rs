//! Sweeps: one plan run once per seed (`--seeds 1..50`, `--seeds 20` fresh ones), each seed
//! `--repeat` times, within an optional time budget, every run with its own results
//! directory and its lab torn down before the next starts. The summary (`sweep.json`) says
//! per run pass/fail/unknown, the failing checkers and the time taken, and per seed the pass
//! rate and which checkers flipped between repeats.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::planset::{PlanEnd, Planned, Reporter};
use crate::runner::{self, RunOptions};
use crate::verdict::{Outcome, Verdict};

/// Which seeds a sweep runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seeds {
    /// The plan's own `seed:` (what `--repeat` alone runs).
    Plan,
    /// `A..B`: every seed from A to B, both included.
    Range(u64, u64),
    /// `N`: N seeds drawn afresh (printed and recorded, so each run can be rerun).
    Fresh(u64),
    /// No number given with a budget: fresh seeds until the budget is spent.
    Unbounded,
}

impl std::str::FromStr for Seeds {
    type Err = String;
    fn from_str(s: &str) -> Result<Seeds, String> {
        let bad = || {
            format!(
                "invalid seeds `{s}`: write a range like 1..50 (both included) or a count like 20"
            )
        };
        match s.split_once("..") {
            Some((a, b)) => {
                let a: u64 = a.trim().parse().map_err(|_| bad())?;
                let b: u64 = b
                    .trim()
                    .trim_start_matches('=')
                    .parse()
                    .map_err(|_| bad())?;
                if b < a {
                    return Err(format!(
                        "invalid seeds `{s}`: the range is empty ({b} < {a})"
                    ));
                }
                Ok(Seeds::Range(a, b))
            }
            None => match s.trim().parse::<u64>() {
                Ok(0) | Err(_) => Err(bad()),
                Ok(n) => Ok(Seeds::Fresh(n)),
            },
        }
    }
}

impl Seeds {
    /// The `n`th seed (0-based), or None when the sweep has no more.
    fn nth(&self, n: u64, plan_seed: u64) -> Option<u64> {
        match *self {
            Seeds::Plan => (n == 0).then_some(plan_seed),
            Seeds::Range(a, b) => a.checked_add(n).filter(|s| *s <= b),
            Seeds::Fresh(count) => (n < count).then(fresh_seed),
            Seeds::Unbounded => Some(fresh_seed()),
        }
    }
}

/// A seed nobody chose: small enough to type back.
fn fresh_seed() -> u64 {
    u64::from(rand::random::<u32>())
}

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepSpec {
    pub seeds: Seeds,
    /// Runs per seed (the same seed again: a flake rate).
    pub repeat: u32,
    /// Start no run that would not end within this (judged by the longest run so far).
    pub budget: Option<Duration>,
}

/// `text` with its top-level `seed:` set to `seed` (added after `name:` when absent), so the
/// plan.yaml stored with each run is the plan that ran: comments and layout stay.
pub fn with_seed(text: &str, seed: u64) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = false;
    for line in text.lines() {
        if !done && line.starts_with("seed:") {
            out.push_str(&format!("seed: {seed}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if !done && line.starts_with("name:") && !text.lines().any(|l| l.starts_with("seed:")) {
            out.push_str(&format!("seed: {seed}\n"));
            done = true;
        }
    }
    out
}

/// A checker that did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Failing {
    pub checker: String,
    pub outcome: Outcome,
    pub explanation: String,
}

impl Failing {
    pub fn of(verdict: &Verdict) -> Vec<Failing> {
        verdict
            .checkers
            .iter()
            .filter(|j| j.outcome != Outcome::Pass)
            .map(|j| Failing {
                checker: j.result.checker.clone(),
                outcome: j.outcome,
                explanation: j.result.explanation.clone(),
            })
            .collect()
    }
}

/// One run of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRun {
    pub seed: u64,
    /// 0-based repetition of this seed.
    pub repeat: u32,
    pub outcome: Outcome,
    pub failing: Vec<Failing>,
    /// The harness could not run or finish it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<PathBuf>,
    /// The harness process after this run: open descriptors and resident memory, so a
    /// sweep shows whether anything accumulates from run to run.
    pub harness_fds: usize,
    pub harness_rss_kib: u64,
}

/// A checker whose outcome differed between runs of one seed, with what each side said.
#[derive(Debug, Clone, Serialize)]
pub struct Flip {
    pub checker: String,
    /// (outcome, explanation, how many runs said it), most frequent first.
    pub said: Vec<(Outcome, String, u32)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    pub seed: u64,
    pub runs: u32,
    pub passed: u32,
    pub pass_rate: f64,
    pub flips: Vec<Flip>,
}

/// The whole sweep: what `sweep.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub plan: String,
    pub path: PathBuf,
    pub budget_seconds: Option<f64>,
    pub seconds: f64,
    pub passed: u32,
    pub failed: u32,
    pub unknown: u32,
    pub runs: Vec<SweepRun>,
    pub seeds: Vec<SeedSummary>,
    /// Set when the plan declares `flake_rate:`; see [`flake_judgement`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flake: Option<FlakeJudgement>,
    /// The signal that stopped the sweep early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

impl Sweep {
    /// The sweep's outcome: the worst run's, unless the plan's known flake rate explains the
    /// failures (then pass while the change is not significant).
    pub fn outcome(&self) -> Outcome {
        let worst = self
            .runs
            .iter()
            .fold(Outcome::Pass, |w, r| w.and(r.outcome));
        match &self.flake {
            Some(f) if !f.significant => Outcome::Pass,
            _ => worst,
        }
    }

    /// The summary a terminal shows: a line per run, then per-seed rates and flips.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "sweep of {} ({}): {} run(s) in {:.1} s: {} pass, {} fail, {} unknown\n",
            self.plan,
            self.path.display(),
            self.runs.len(),
            self.seconds,
            self.passed,
            self.failed,
            self.unknown
        );
        for r in &self.runs {
            let failing: Vec<&str> = r.failing.iter().map(|f| f.checker.as_str()).collect();
            out.push_str(&format!(
                "  seed {:<10} {:<4} {:<7} {:>6.1} s  {}\n",
                r.seed,
                format!("#{}", r.repeat + 1),
                format!("{:?}", r.outcome).to_uppercase(),
                r.seconds,
                match &r.error {
                    Some(e) => format!("error: {e}"),
                    None => failing.join(", "),
                }
            ));
        }
        for s in self.seeds.iter().filter(|s| s.runs > 1) {
            out.push_str(&format!(
                "  seed {}: {}/{} passed ({:.0} %)\n",
                s.seed,
                s.passed,
                s.runs,
                s.pass_rate * 100.0
            ));
            for f in &s.flips {
                out.push_str(&format!("    {} flipped:\n", f.checker));
                for (outcome, why, n) in &f.said {
                    out.push_str(&format!("      {n} x {outcome:?}: {why}\n"));
                }
            }
        }
        if let Some(f) = &self.flake {
            out.push_str(&format!("  {}\n", f.explain()));
        }
        if let Some(sig) = &self.interrupted {
            out.push_str(&format!("  interrupted by {sig}\n"));
        }
        out
    }

    /// Write `sweep.json` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("sweep.json");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// Run `planned` once per seed (and repeat) of `spec`, reporting each run as a plan of a set.
/// `cancel` stops the sweep (the running lab is torn down).
pub async fn run_sweep<R: Reporter>(
    planned: &Planned,
    spec: &SweepSpec,
    options: &RunOptions,
    cancel: impl Future<Output = &'static str>,
    reporter: &mut R,
) -> Sweep {
    let mut cancel = std::pin::pin!(cancel);
    let started = Instant::now();
    let mut runs: Vec<SweepRun> = Vec::new();
    let mut interrupted = None;
    // The longest run so far decides whether another fits the budget; before any, the
    // plan's own length plus a lab's bring-up and teardown.
    let mut longest = runner_estimate(&planned.plan);
    let repeat = spec.repeat.max(1);
    let mut index = 0usize;
    'seeds: for n in 0.. {
        let Some(seed) = spec.seeds.nth(n, planned.plan.seed) else {
            break;
        };
        for rep in 0..repeat {
            if let Some(budget) = spec.budget {
                if started.elapsed() + longest > budget {
                    break 'seeds;
                }
            }
            let mut plan = planned.plan.clone();
            plan.seed = seed;
            let this = Planned {
                path: planned.path.clone(),
                plan,
                text: with_seed(&planned.text, seed),
                case: Some(format!("{} [seed {seed} #{}]", planned.name(), rep + 1)),
            };
            let events = reporter.started(index, &this);
            index += 1;
            let t = Instant::now();
            let end = tokio::select! {
                r = runner::run(&this.plan, &this.text, options, &events) => match r {
                    Ok(done) => PlanEnd::judged(done),
                    Err(e) => PlanEnd::Errored(e.to_string()),
                },
                sig = &mut cancel => PlanEnd::Interrupted(sig),
            };
            drop(events);
            let took = t.elapsed();
            reporter.ended(&this, &end, took).await;
            longest = longest.max(took);
            let (fds, rss) = harness_footprint();
            let mut run = SweepRun {
                seed,
                repeat: rep,
                outcome: end.outcome(),
                failing: Vec::new(),
                error: None,
                seconds: took.as_secs_f64(),
                results: None,
                harness_fds: fds,
                harness_rss_kib: rss,
            };
            match end {
                PlanEnd::Judged {
                    verdict, results, ..
                } => {
                    run.failing = Failing::of(&verdict);
                    run.results = Some(results);
                }
                PlanEnd::Errored(e) => run.error = Some(e),
                PlanEnd::Interrupted(sig) => {
                    run.error = Some(format!("interrupted by {sig}"));
                    runs.push(run);
                    interrupted = Some(sig.to_string());
                    break 'seeds;
                }
            }
            runs.push(run);
        }
    }
    summarize(planned, spec, runs, started.elapsed(), interrupted)
}

/// A first guess at one run's length: the planned faults and workload plus lab up and down.
fn runner_estimate(plan: &plan::Plan) -> Duration {
    let workload = plan
        .workload
        .duration
        .as_ref()
        .map(|d| d.value.as_duration())
        .unwrap_or_default();
    crate::nemesis::planned(plan).max(workload) + Duration::from_secs(2)
}

fn summarize(
    planned: &Planned,
    spec: &SweepSpec,
    runs: Vec<SweepRun>,
    took: Duration,
    interrupted: Option<String>,
) -> Sweep {
    let count = |o| runs.iter().filter(|r| r.outcome == o).count() as u32;
    let mut seeds: Vec<SeedSummary> = Vec::new();
    for r in &runs {
        if seeds.iter().any(|s| s.seed == r.seed) {
            continue;
        }
        let same: Vec<&SweepRun> = runs.iter().filter(|x| x.seed == r.seed).collect();
        let passed = same.iter().filter(|x| x.outcome == Outcome::Pass).count() as u32;
        seeds.push(SeedSummary {
            seed: r.seed,
            runs: same.len() as u32,
            passed,
            pass_rate: f64::from(passed) / same.len() as f64,
            flips: flips(&same),
        });
    }
    let flake = planned.plan.flake_rate.as_ref().map(|p| {
        let n = runs.len() as u64;
        let k = runs.iter().filter(|r| r.outcome != Outcome::Pass).count() as u64;
        flake_judgement(k, n, p.value.fraction())
    });
    Sweep {
        plan: planned.name().to_string(),
        path: planned.path.clone(),
        budget_seconds: spec.budget.map(|b| b.as_secs_f64()),
        seconds: took.as_secs_f64(),
        passed: count(Outcome::Pass),
        failed: count(Outcome::Fail),
        unknown: count(Outcome::Unknown),
        runs,
        seeds,
        flake,
        interrupted,
    }
}

/// Checkers whose outcome was not the same in every judged run of one seed.
fn flips(same: &[&SweepRun]) -> Vec<Flip> {
    let judged: Vec<&&SweepRun> = same.iter().filter(|r| r.error.is_none()).collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &judged {
        for f in &r.failing {
            if !names.contains(&f.checker.as_str()) {
                names.push(&f.checker);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut said: Vec<(Outcome, String, u32)> = Vec::new();
        for r in &judged {
            let (o, why) = r
                .failing
                .iter()
                .find(|f| f.checker == name)
                .map(|f| (f.outcome, f.explanation.clone()))
                .unwrap_or((Outcome::Pass, String::new()));
            match said.iter_mut().find(|(so, sw, _)| *so == o && *sw == why) {
                Some(s) => s.2 += 1,
                None => said.push((o, why, 1)),
            }
        }
        if said.iter().any(|s| s.0 != said[0].0) {
            said.sort_by_key(|s| std::cmp::Reverse(s.2));
            out.push(Flip {
                checker: name.to_string(),
                said,
            });
        }
    }
    out
}

/// The harness's own open descriptors and resident set (KiB), from /proc.
fn harness_footprint() -> (usize, u64) {
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    (fds, rss)
}

/// Significance level of the flake rule: a plan's failures count against it only when a
/// plan failing at its declared rate would fail this often less than 1 % of the time.
pub const FLAKE_ALPHA: f64 = 0.01;

/// Whether `failures` in `runs` is a significant change from a known flake rate `rate`.
#[derive(Debug, Clone, Serialize)]
pub struct FlakeJudgement {
    pub runs: u64,
    pub failures: u64,
    pub declared_rate: f64,
    /// P(at least `failures` failures in `runs` | the declared rate).
    pub p_value: f64,
    /// p_value < FLAKE_ALPHA: more failures than the declared rate explains.
    pub significant: bool,
}

impl FlakeJudgement {
    pub fn explain(&self) -> String {
        format!(
            "flake rate: {} of {} run(s) did not pass; declared {:.1} %; P(>= {} | declared) = {:.4} {} {FLAKE_ALPHA}: {}",
            self.failures,
            self.runs,
            self.declared_rate * 100.0,
            self.failures,
            self.p_value,
            if self.significant { "<" } else { ">=" },
            if self.significant {
                "a significant change: FAIL"
            } else {
                "within the known flake rate"
            }
        )
    }
}

/// The binomial rule: with a declared flake rate p, k non-passing runs out of n are a
/// significant change when P[X >= k] < FLAKE_ALPHA for X ~ Binomial(n, p). No failures are
/// never significant.
pub fn flake_judgement(failures: u64, runs: u64, rate: f64) -> FlakeJudgement {
    let p = rate.clamp(0.0, 1.0);
    let p_value = if failures == 0 {
        1.0
    } else {
        binomial_upper_tail(failures, runs, p)
    };
    FlakeJudgement {
        runs,
        failures,
        declared_rate: p,
        p_value,
        significant: p_value < FLAKE_ALPHA,
    }
}

/// P[X >= k] for X ~ Binomial(n, p), summed in log space (n up to millions stays exact
/// enough).
fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let ln_fact = |m: u64| (1..=m).map(|i| (i as f64).ln()).sum::<f64>();
    let ln_n = ln_fact(n);
    let mut sum = 0.0;
    let mut ln_i_fact = ln_fact(k);
    let mut ln_rest_fact = ln_fact(n - k);
    for i in k..=n {
        if i > k {
            ln_i_fact += (i as f64).ln();
            ln_rest_fact -= ((n - i + 1) as f64).ln();
        }
        let ln_term =
            ln_n - ln_i_fact - ln_rest_fact + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln();
        sum += ln_term.exp();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_ranges_and_counts_and_refuse_the_rest() {
        assert_eq!("1..50".parse::<Seeds>(), Ok(Seeds::Range(1, 50)));
        assert_eq!("3..=3".parse::<Seeds>(), Ok(Seeds::Range(3, 3)));
        assert_eq!("20".parse::<Seeds>(), Ok(Seeds::Fresh(20)));
        for bad in ["", "0", "5..1", "a..b", "1..", "-3"] {
            assert!(bad.parse::<Seeds>().is_err(), "{bad}");
        }
        let r = Seeds::Range(4, 6);
        let got: Vec<u64> = (0..5).filter_map(|n| r.nth(n, 0)).collect();
        assert_eq!(got, [4, 5, 6]);
        assert_eq!(Seeds::Plan.nth(0, 9), Some(9));
        assert_eq!(Seeds::Plan.nth(1, 9), None);
    }

    #[test]
    fn with_seed_replaces_or_adds_the_seed_line_and_keeps_the_rest() {
        let t = "# c\nversion: 1\nname: x\nseed: 7\nfaults: []\n";
        assert_eq!(
            with_seed(t, 42),
            "# c\nversion: 1\nname: x\nseed: 42\nfaults: []\n"
        );
        let t = "version: 1\nname: x\ntopology: {}\n";
        assert_eq!(
            with_seed(t, 5),
            "version: 1\nname: x\nseed: 5\ntopology: {}\n"
        );
        // An indented `seed:` (not the plan's) is left alone.
        let t = "name: x\nseed: 1\nw:\n  seed: 3\n";
        assert_eq!(with_seed(t, 2), "name: x\nseed: 2\nw:\n  seed: 3\n");
    }

    #[test]
    fn binomial_tail_matches_hand_computed_values() {
        // n=1: P[X>=1] = p.
        assert!((binomial_upper_tail(1, 1, 0.05) - 0.05).abs() < 1e-12);
        // n=10, p=0.1, k=4: 1 - P[X<=3] = 0.0127951...
        assert!((binomial_upper_tail(4, 10, 0.1) - 0.012_795_198).abs() < 1e-6);
        assert_eq!(binomial_upper_tail(0, 10, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(11, 10, 0.3), 0.0);
    }

    #[test]
    fn the_flake_rule_tolerates_noise_and_catches_a_change() {
        // A plan flaking 5 % of the time: one failure in one run is noise.
        assert!(!flake_judgement(1, 1, 0.05).significant);
        // 1 in 20 is what 5 % looks like; 3 in 20 is still noise (P = 0.075), 5 is not (0.0026).
        assert!(!flake_judgement(1, 20, 0.05).significant);
        assert!(!flake_judgement(3, 20, 0.05).significant);
        assert!(flake_judgement(5, 20, 0.05).significant);
        // A plan that never flaked (rate 0) fails on the first failure.
        assert!(flake_judgement(1, 1, 0.0).significant);
        assert!(!flake_judgement(0, 50, 0.0).significant);
    }
}
