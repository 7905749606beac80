//! Shrinking a failing run, as Hypothesis and QuickCheck shrink a failing input: its fault
//! schedule made explicit (every occurrence a fault of its own, at its time, on its targets),
//! then cut down — faults dropped (delta debugging), windows halved, the workload shortened —
//! keeping only changes under which a rerun still fails the same checkers with the same
//! outcome. The smallest plan found is written as a plan file, ready to commit.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::planset::{PlanEnd, Planned, Reporter};
use crate::repro::Recorded;
use crate::runner::{self, RunOptions};
use crate::sweep::Failing;
use crate::verdict::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    #[error("{0}: the run was never judged (no verdict.json): nothing to shrink")]
    NotJudged(PathBuf),
    #[error("{0}: the run passed: nothing to shrink")]
    Passed(PathBuf),
    #[error("a shrunk plan does not read back: {0}")]
    Plan(#[from] plan::PlanError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One rerun of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// What this candidate changed.
    pub tried: String,
    pub faults: usize,
    /// It still failed the same way, and became the new smallest.
    pub kept: bool,
    pub outcome: Option<Outcome>,
    pub failing: Vec<String>,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<PathBuf>,
}

/// What `shrink.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Shrunk {
    pub from: PathBuf,
    /// The checkers (with outcomes) every kept candidate still failed.
    pub target: Vec<(String, Outcome)>,
    pub original_faults: usize,
    pub faults: usize,
    pub original_duration: Option<plan::PlanDuration>,
    pub duration: Option<plan::PlanDuration>,
    pub reruns: u32,
    pub seconds: f64,
    /// The search stopped at the budget (the plan is the smallest found, maybe not minimal).
    pub budget_spent: bool,
    /// One more run of the written plan failed the same way (None: not rerun).
    pub confirmed: Option<bool>,
    pub plan_file: PathBuf,
    pub attempts: Vec<Attempt>,
}

/// A point of the search: the explicit faults and the workload's duration.
#[derive(Clone)]
struct Candidate {
    faults: Vec<Value>,
    duration: Option<plan::PlanDuration>,
}

/// Every occurrence of the plan's schedule as a plain fault entry (YAML/JSON shape of
/// `faults:`), in schedule order.
pub fn explicit_faults(plan: &plan::Plan) -> Vec<Value> {
    let mut out = Vec::new();
    for s in plan::schedule(plan) {
        for mut entry in action_entries(&s.action) {
            let m = entry.as_object_mut().expect("an object");
            m.insert(
                "at".into(),
                json!(plan::PlanDuration::from(s.at).to_string()),
            );
            if let Some(h) = s.hold {
                m.insert("for".into(), json!(plan::PlanDuration::from(h).to_string()));
            }
            if s.require_effect {
                m.insert("require_effect".into(), json!(true));
            }
            out.push(entry);
        }
    }
    out
}

/// The plan keys that make exactly this action (a partition whose cuts are not two groups
/// becomes one one-way partition per cut).
fn action_entries(action: &plan::Action) -> Vec<Value> {
    use plan::Action as A;
    let kind = action.kind();
    let mut m = Map::new();
    m.insert("kind".into(), json!(kind));
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.into(), v);
        }
    };
    match action {
        A::Partition {
            cuts,
            tcp_port,
            network,
        } => {
            put(&mut m, "port", json!(tcp_port));
            put(&mut m, "network", json!(network));
            let two_groups = cuts.len() == 2 && cuts[0].0 == cuts[1].1 && cuts[0].1 == cuts[1].0;
            if two_groups {
                m.insert("groups".into(), json!([cuts[0].0, cuts[0].1]));
                return vec![Value::Object(m)];
            }
            return cuts
                .iter()
                .map(|(from, to)| {
                    let mut one = m.clone();
                    one.insert("from".into(), json!(from));
                    one.insert("to".into(), json!(to));
                    Value::Object(one)
                })
                .collect();
        }
        A::Impair {
            node,
            direction,
            impairment: i,
            network,
        } => {
            m.insert("node".into(), json!(node));
            put(&mut m, "network", json!(network));
            m.insert("direction".into(), json!(direction));
            let dur = |d: Duration| json!(plan::PlanDuration::from(d).to_string());
            let pct = |f: f64| json!(format!("{}%", f * 100.0));
            if !i.latency.is_zero() {
                m.insert("latency".into(), dur(i.latency));
            }
            if !i.jitter.is_zero() {
                m.insert("jitter".into(), dur(i.jitter));
                m.insert("distribution".into(), json!(i.distribution));
            }
            for (k, v) in [
                ("loss", i.loss),
                ("loss_correlation", i.loss_correlation),
                ("duplicate", i.duplicate),
                ("reorder", i.reorder),
                ("corrupt", i.corrupt),
            ] {
                if v > 0.0 {
                    m.insert(k.into(), pct(v));
                }
            }
            if i.reorder > 0.0 {
                m.insert("reorder_gap".into(), dur(i.reorder_gap));
            }
            if i.rate_bps > 0 {
                m.insert("rate".into(), json!(format!("{}bit", i.rate_bps)));
            }
        }
        A::Crash {
            address: Some(a), ..
        } => {
            m.insert("address".into(), json!(a));
        }
        other => {
            // Every other action's fields are plan keys of the same name.
            if let Ok(Value::Object(fields)) = serde_json::to_value(other) {
                for (k, v) in fields {
                    if k != "kind" {
                        put(&mut m, &k, v);
                    }
                }
            }
        }
    }
    vec![Value::Object(m)]
}

/// The plan file of a candidate: the recorded plan with explicit faults, renamed. It is
/// built from the keys the plan's author wrote (`text`), so the file carries no defaults;
/// where the run overrode the file (provider, Samba version) the override is written in.
fn candidate_plan(
    base: &plan::Plan,
    text: &str,
    c: &Candidate,
    header: &str,
) -> Result<(plan::Plan, String), ShrinkError> {
    let mut v: Value = serde_saphyr::from_str(text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| serde_json::to_value(base).unwrap_or_default());
    v["name"] = json!(shrunk_name(base));
    v["seed"] = json!(base.seed);
    v["faults"] = Value::Array(c.faults.clone());
    if let Some(d) = c.duration {
        v["workload"]["duration"] = json!(d.to_string());
    }
    let emit = |v: &Value| {
        let body = serde_saphyr::to_string(v).unwrap_or_else(|_| v.to_string());
        let text = format!("{header}{body}");
        plan::parse_str("shrunk plan", &text).map(|p| (p, text))
    };
    let (plan, out) = emit(&v)?;
    if plan.topology.provider == base.topology.provider
        && plan
            .topology
            .servers
            .iter()
            .zip(&base.topology.servers)
            .all(|(a, b)| a.samba == b.samba)
    {
        return Ok((plan, out));
    }
    v["topology"]["provider"] = json!(base.topology.provider);
    if let Some(servers) = v["topology"]["servers"].as_array_mut() {
        for (written, server) in servers.iter_mut().zip(&base.topology.servers) {
            written["samba"] = json!(server.samba);
        }
    }
    Ok(emit(&v)?)
}

fn shrunk_name(base: &plan::Plan) -> String {
    let name = &base.name.value;
    if name.ends_with("-shrunk") {
        name.clone()
    } else {
        format!("{name}-shrunk")
    }
}

/// Does a rerun fail `target` the same way: every target checker present with its outcome?
fn fails_like(target: &[(String, Outcome)], failing: &[Failing]) -> bool {
    target
        .iter()
        .all(|(c, o)| failing.iter().any(|f| &f.checker == c && f.outcome == *o))
}

struct Search<'a, R> {
    base: &'a plan::Plan,
    /// The recorded plan.yaml, whose keys the candidates keep.
    text: &'a str,
    target: Vec<(String, Outcome)>,
    options: RunOptions,
    reporter: &'a mut R,
    cancel: Pin<Box<dyn Future<Output = &'static str>>>,
    started: Instant,
    budget: Duration,
    longest: Duration,
    attempts: Vec<Attempt>,
    interrupted: bool,
}

impl<R: Reporter> Search<'_, R> {
    fn out_of_time(&self) -> bool {
        self.interrupted || self.started.elapsed() + self.longest > self.budget
    }

    /// Run `c` once; Some(true) when it fails like the original. None: no time left.
    async fn fails(&mut self, c: &Candidate, tried: String, force: bool) -> Option<bool> {
        if self.interrupted || (!force && self.out_of_time()) {
            return None;
        }
        let (plan, text) = match candidate_plan(self.base, self.text, c, "") {
            Ok(p) => p,
            Err(e) => {
                // A candidate validation refuses (say, two faults now overlapping) is no step.
                self.attempts.push(Attempt {
                    tried: format!("{tried} (not a valid plan: {e})"),
                    faults: c.faults.len(),
                    kept: false,
                    outcome: None,
                    failing: Vec::new(),
                    seconds: 0.0,
                    results: None,
                });
                return Some(false);
            }
        };
        let planned = Planned {
            path: PathBuf::from(format!("{}.yaml", plan.name.value)),
            plan,
            text,
            case: Some(format!("shrink #{}: {tried}", self.attempts.len() + 1)),
        };
        let events = self.reporter.started(self.attempts.len(), &planned);
        let t = Instant::now();
        let end = tokio::select! {
            r = runner::run(&planned.plan, &planned.text, &self.options, &events) => match r {
                Ok(done) => PlanEnd::judged(done),
                Err(e) => PlanEnd::Errored(e.to_string()),
            },
            sig = &mut self.cancel => PlanEnd::Interrupted(sig),
        };
        drop(events);
        let took = t.elapsed();
        self.reporter.ended(&planned, &end, took).await;
        self.longest = self.longest.max(took);
        let (kept, outcome, failing, results) = match end {
            PlanEnd::Judged {
                verdict, results, ..
            } => {
                let failing = Failing::of(&verdict);
                (
                    fails_like(&self.target, &failing),
                    Some(verdict.outcome),
                    failing,
                    Some(results),
                )
            }
            PlanEnd::Errored(_) => (false, None, Vec::new(), None),
            PlanEnd::Interrupted(_) => {
                self.interrupted = true;
                return None;
            }
        };
        self.attempts.push(Attempt {
            tried,
            faults: c.faults.len(),
            kept,
            outcome,
            failing: failing.iter().map(|f| f.checker.clone()).collect(),
            seconds: took.as_secs_f64(),
            results,
        });
        Some(kept)
    }
}

/// Shrink the recorded failing run within `budget`: reruns go under `<run>/shrink/`, the
/// smallest plan found to `out`, the search's log to `<run>/shrink/shrink.json`.
pub async fn shrink<R: Reporter>(
    recorded: &Recorded,
    budget: Duration,
    out: &Path,
    cancel: impl Future<Output = &'static str> + 'static,
    reporter: &mut R,
) -> Result<Shrunk, ShrinkError> {
    let verdict = recorded
        .verdict
        .as_ref()
        .ok_or_else(|| ShrinkError::NotJudged(recorded.dir.clone()))?;
    let failing = Failing::of(verdict);
    let mut target: Vec<(String, Outcome)> = failing
        .iter()
        .filter(|f| f.outcome == Outcome::Fail)
        .map(|f| (f.checker.clone(), f.outcome))
        .collect();
    if target.is_empty() {
        target = failing
            .iter()
            .map(|f| (f.checker.clone(), f.outcome))
            .collect();
    }
    if target.is_empty() {
        return Err(ShrinkError::Passed(recorded.dir.clone()));
    }
    let base = &recorded.planned.plan;
    let work = recorded.dir.join("shrink");
    let longest = (crate::nemesis::planned(base).max(
        base.workload
            .duration
            .as_ref()
            .map(|d| d.value.as_duration())
            .unwrap_or_default(),
    )) + Duration::from_secs(2);
    let mut s = Search {
        base,
        text: &recorded.planned.text,
        target: target.clone(),
        options: RunOptions {
            results_root: work.clone(),
        },
        reporter,
        cancel: Box::pin(cancel),
        started: Instant::now(),
        budget,
        longest,
        attempts: Vec::new(),
        interrupted: false,
    };
    let original = Candidate {
        faults: explicit_faults(base),
        duration: base.workload.duration.as_ref().map(|d| d.value),
    };
    let mut best = original.clone();

    // 1. Faults: no fault at all first (a failure the faults did not cause), then delta
    // debugging: drop one of n chunks while that still fails, refining n when none can go.
    if !best.faults.is_empty() {
        let none = Candidate {
            faults: Vec::new(),
            ..best.clone()
        };
        if s.fails(&none, "no faults".into(), false).await == Some(true) {
            best = none;
        }
    }
    let mut n = 2usize;
    'dd: while best.faults.len() > 1 {
        let len = best.faults.len();
        let chunk = len.div_ceil(n.min(len));
        let mut dropped = false;
        for start in (0..len).step_by(chunk) {
            let end = (start + chunk).min(len);
            let mut c = best.clone();
            c.faults.drain(start..end);
            let tried = format!("drop faults {}..{} of {len}", start + 1, end);
            match s.fails(&c, tried, false).await {
                None => break 'dd,
                Some(true) => {
                    best = c;
                    n = (n - 1).max(2);
                    dropped = true;
                    break;
                }
                Some(false) => {}
            }
        }
        if !dropped {
            if n >= len {
                break;
            }
            n = (2 * n).min(len);
        }
    }

    // 2. Windows: halve each remaining fault's `for` while it still fails (down to 100 ms).
    for i in 0..best.faults.len() {
        while let Some(hold) = best.faults[i]["for"]
            .as_str()
            .and_then(|h| h.parse::<plan::PlanDuration>().ok())
        {
            let half = hold.as_duration() / 2;
            if half < Duration::from_millis(100) {
                break;
            }
            let mut c = best.clone();
            let half = plan::PlanDuration::from(Duration::from_millis(half.as_millis() as u64));
            c.faults[i]["for"] = json!(half.to_string());
            let tried = format!("fault {} for {half} (was {hold})", i + 1);
            match s.fails(&c, tried, false).await {
                Some(true) => best = c,
                _ => break,
            }
        }
    }

    // 3. The workload: halve `duration` while it still fails, never before the last fault
    // has ended and a second passed.
    let faults_end = best
        .faults
        .iter()
        .filter_map(|f| {
            let at = f["at"].as_str()?.parse::<plan::PlanDuration>().ok()?;
            let hold = f["for"]
                .as_str()
                .and_then(|h| h.parse::<plan::PlanDuration>().ok())
                .unwrap_or_default();
            Some(at.as_duration() + hold.as_duration())
        })
        .max()
        .unwrap_or_default();
    while let Some(d) = best.duration {
        let floor = faults_end + Duration::from_secs(1);
        let shorter = (d.as_duration() / 2).max(floor);
        let shorter = plan::PlanDuration::from(Duration::from_millis(shorter.as_millis() as u64));
        if shorter.as_duration() + Duration::from_millis(250) >= d.as_duration() {
            break;
        }
        let mut c = best.clone();
        c.duration = Some(shorter);
        match s
            .fails(&c, format!("workload for {shorter} (was {d})"), false)
            .await
        {
            Some(true) => best = c,
            _ => break,
        }
    }
    let budget_spent = s.out_of_time() && !s.interrupted;

    // 4. Once more, the plan as it will be written: does it fail the same way on its own?
    let confirmed = if s.interrupted {
        None
    } else {
        s.fails(&best, "confirm the smallest".into(), true).await
    };
    if let Some(a) = s.attempts.last_mut().filter(|_| confirmed.is_some()) {
        a.kept = false; // a confirmation, not a step
    }

    let reruns = s.attempts.len() as u32;
    let seconds = s.started.elapsed().as_secs_f64();
    let checkers: Vec<String> = target.iter().map(|(c, o)| format!("{c} ({o:?})")).collect();
    let header = format!(
        "# Shrunk by `smbchaos shrink` from {}\n# (seed {}): {} of {} fault occurrence(s){}; still fails {} as the original did.\n# {} rerun(s) in {:.0} s{}.\n",
        recorded.dir.display(),
        base.seed,
        best.faults.len(),
        original.faults.len(),
        match (original.duration, best.duration) {
            (Some(a), Some(b)) if a != b => format!(", workload {b} (was {a})"),
            _ => String::new(),
        },
        checkers.join(", "),
        reruns,
        seconds,
        match confirmed {
            Some(true) => "; confirmed by one more run",
            Some(false) => "; NOT confirmed by one more run: the failure is intermittent",
            None => "",
        }
    );
    let (_, text) = candidate_plan(base, &recorded.planned.text, &best, &header)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ShrinkError::Io { path, source }
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(out, text).map_err(io(out))?;
    let shrunk = Shrunk {
        from: recorded.dir.clone(),
        target,
        original_faults: original.faults.len(),
        faults: best.faults.len(),
        original_duration: original.duration,
        duration: best.duration,
        reruns,
        seconds,
        budget_spent,
        confirmed,
        plan_file: out.to_path_buf(),
        attempts: s.attempts,
    };
    std::fs::create_dir_all(&work).map_err(io(&work))?;
    let log = work.join("shrink.json");
    let bytes = serde_json::to_vec_pretty(&shrunk).unwrap_or_default();
    std::fs::write(&log, bytes).map_err(io(&log))?;
    Ok(shrunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "version: 1\nname: r\nseed: 5\ntopology:\n  servers: [{name: fs1}]\n  clients: [{name: c1}, {name: c2}]\nworkload:\n  duration: 8s\n  clients: [{node: c1, server: fs1}]\nfaults:\n  - {kind: random, kinds: [reset, blackhole, partition, kill, pause, crash], at: 500ms, every: 1500ms, for: 700ms, count: 4}\n  - {kind: impair, node: c2, at: 1s, for: 1s, latency: 20ms, jitter: 5ms, loss: 1%}\n  - {kind: partition, groups: [[fs1], [c1, c2]], at: 7s, for: 200ms}\n  - {kind: partition, from: [c1], to: [fs1], at: 7500ms, for: 100ms}\n";

    #[test]
    fn explicit_faults_resolve_to_the_same_schedule() {
        let plan = plan::parse_str("t", PLAN).unwrap();
        let c = Candidate {
            faults: explicit_faults(&plan),
            duration: None,
        };
        assert_eq!(c.faults.len(), 7);
        let (shrunk, text) = candidate_plan(&plan, PLAN, &c, "# header\n").unwrap();
        assert!(text.starts_with("# header\n"), "{text}");
        assert_eq!(shrunk.name.value, "r-shrunk");
        let actions = |p: &plan::Plan| {
            plan::schedule(p)
                .into_iter()
                .map(|s| (s.at, s.hold, s.action))
                .collect::<Vec<_>>()
        };
        assert_eq!(actions(&shrunk), actions(&plan), "{text}");
        // The written plan reads back as a plan file with no random entry left, and carries
        // only the keys the author wrote (no defaults such as `mtu`).
        assert!(!text.contains("random"), "{text}");
        assert!(!text.contains("mtu") && !text.contains("null"), "{text}");
        // An override of the file (here the provider) is written in.
        let mut docker = plan.clone();
        docker.topology.provider = plan::Provider::Docker;
        let (p, text) = candidate_plan(&docker, PLAN, &c, "").unwrap();
        assert_eq!(p.topology.provider, plan::Provider::Docker, "{text}");
    }

    #[test]
    fn a_candidate_fails_like_the_original_only_with_every_target_checker() {
        let f = |c: &str, o| Failing {
            checker: c.into(),
            outcome: o,
            explanation: String::new(),
        };
        let target = vec![("durability".to_string(), Outcome::Fail)];
        assert!(fails_like(
            &target,
            &[f("durability", Outcome::Fail), f("exec", Outcome::Fail)]
        ));
        assert!(!fails_like(&target, &[f("durability", Outcome::Unknown)]));
        assert!(!fails_like(&target, &[f("reads", Outcome::Fail)]));
    }
}
