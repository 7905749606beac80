//! `index.html` over a results root: the nights side by side. Per plan, its runs over time
//! (verdict, duration, the longest stall and the longest recovery after a fault — the
//! failover time as a client saw it), each linked to its report.html; failing runs first.
//! A cluster run adds the failover checker's figures: per node loss, the takeover (node lost →
//! its address answered by another node) and the clients' first ok op after it.
//! One self-contained page, like report.html.

use std::path::{Path, PathBuf};

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::model::Model;
use crate::ReportError;
use check::Outcome;
use history::results;

/// One stored run as the index shows it.
#[derive(Debug, Clone)]
pub struct IndexedRun {
    pub plan: String,
    /// The run directory, relative to the results root, `/`-separated.
    pub dir: String,
    /// The directory's name: its UTC start time.
    pub started: String,
    /// PASS, FAIL, UNKNOWN or INCOMPLETE.
    pub verdict: &'static str,
    pub failing: Vec<String>,
    pub error: Option<String>,
    pub seed: Option<u64>,
    pub samba: Option<String>,
    /// From the first to the last record of the history, seconds.
    pub duration: Option<f64>,
    /// The longest stall any client had under any fault, seconds.
    pub stall: Option<f64>,
    /// The longest time from a fault's start to a client's first ok op after its heal.
    pub recovery: Option<f64>,
    pub faults: usize,
    pub has_report: bool,
    /// The failover checker's figures, for a run in which a cluster moved addresses.
    pub failover: Option<FailoverFigures>,
}

/// A run's cluster failovers (`check::failover::timelines`), each step timed from the node's
/// loss: the longest of each, and how many failovers never reached that step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailoverFigures {
    pub failovers: usize,
    /// The longest node loss → address taken over, seconds.
    pub takeover: Option<f64>,
    /// Failovers in which no takeover was seen.
    pub no_takeover: usize,
    /// The longest node loss → a cut-off client's first ok op, seconds.
    pub first_ok: Option<f64>,
    /// Cut-off clients (over all failovers) that never had an ok op again.
    pub no_first_ok: usize,
}

impl FailoverFigures {
    pub fn of(timelines: &[check::failover::Failover]) -> FailoverFigures {
        let mut f = FailoverFigures {
            failovers: timelines.len(),
            ..FailoverFigures::default()
        };
        let max = |a: Option<f64>, b: f64| Some(a.map_or(b, |a| a.max(b)));
        for t in timelines {
            match t.takeover_s {
                Some(s) => f.takeover = max(f.takeover, s),
                None => f.no_takeover += 1,
            }
            for steps in t.clients.values() {
                match steps.first_ok_s {
                    Some(s) => f.first_ok = max(f.first_ok, s),
                    None => f.no_first_ok += 1,
                }
            }
        }
        f
    }
}

impl IndexedRun {
    fn bad(&self) -> bool {
        self.verdict != "PASS"
    }
}

/// Every run directory (one holding status.json) under `root`, a few levels deep; symlinks
/// (`latest`) are not followed and a run's own subdirectories (shrink reruns) are not runs
/// of the night.
pub fn collect(root: &Path) -> Vec<IndexedRun> {
    let mut dirs = Vec::new();
    walk(root, 0, &mut dirs);
    dirs.sort();
    dirs.iter().filter_map(|d| indexed(root, d)).collect()
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join(results::STATUS).is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    if depth > 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&e.path(), depth + 1, out);
        }
    }
}

fn indexed(root: &Path, dir: &Path) -> Option<IndexedRun> {
    let input = crate::load(dir).ok()?;
    let complete = input.status.as_ref().is_some_and(|s| s.complete);
    let model = Model::build(&input.history, complete);
    let ns = |v: u64| v as f64 / 1e9;
    let mut stall: Option<u64> = None;
    let mut recovery: Option<u64> = None;
    for f in &model.faults {
        for i in model.impacts(f) {
            stall = stall.max(i.stall);
            recovery = recovery.max(i.recovery);
        }
    }
    let verdict = match (&input.verdict, complete) {
        (Some(v), true) => match v.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Unknown => "UNKNOWN",
        },
        _ => "INCOMPLETE",
    };
    let failing = input
        .verdict
        .as_ref()
        .map(|v| {
            v.checkers
                .iter()
                .filter(|j| j.outcome != Outcome::Pass)
                .map(|j| j.result.checker.clone())
                .collect()
        })
        .unwrap_or_default();
    // Cluster runs only (their histories are small): the failover checker needs the records
    // whole, so read them again only when a cluster moved an address.
    let clustered = input
        .history
        .recs
        .iter()
        .any(|r| input.history.f_name(r) == "address_moved");
    let failover = match (clustered, &input.history_path) {
        (true, Some(path)) => history::read(path)
            .ok()
            .map(|records| FailoverFigures::of(&check::failover::timelines(&records))),
        _ => None,
    };
    let env = input.environment.as_ref();
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    Some(IndexedRun {
        plan: input.plan_name,
        dir: rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/"),
        started: input.run_name,
        verdict,
        failing,
        error: input.status.and_then(|s| s.error),
        seed: env.and_then(|e| e["seed"].as_u64()),
        samba: env.and_then(|e| e["samba"].as_str().map(str::to_string)),
        duration: (!model.ops.is_empty()).then(|| ns(model.t1 - model.t0)),
        stall: stall.map(ns),
        recovery: recovery.map(ns),
        faults: model.faults.len(),
        has_report: dir.join(results::REPORT).is_file(),
        failover,
    })
}

/// Write `root/index.html`; returns its path and how many runs it lists.
pub fn write(root: &Path) -> Result<(PathBuf, usize), ReportError> {
    let runs = collect(root);
    let path = root.join("index.html");
    let page = render(&runs).into_string();
    crate::replace(&path, page.as_bytes())?;
    Ok((path, runs.len()))
}

const CSS: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{padding:.15em .6em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.PASS{color:#176b1b}.FAIL{color:#b00020;font-weight:bold}.UNKNOWN,.INCOMPLETE{color:#a15c00;font-weight:bold}
.strip a{display:inline-block;width:12px;height:18px;margin-right:2px;border-radius:2px}
.strip a.PASS{background:#3a9d3f}.strip a.FAIL{background:#d1283d}.strip a.UNKNOWN,.strip a.INCOMPLETE{background:#e0a030}
.hidden{display:none}
";

/// The page's only script: a switch to show failing runs only. It marks the page ready.
const SCRIPT: &str = "
(function(){var b=document.getElementById('only-failing');
b.addEventListener('change',function(){document.querySelectorAll('tr.pass').forEach(function(r){r.classList.toggle('hidden',b.checked);});});
document.body.setAttribute('data-ready','1');})();
";

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2} s")).unwrap_or_else(|| "–".into())
}

/// The longest of a failover step, and how many never reached it.
fn step(v: Option<f64>, missing: usize) -> String {
    match (v, missing) {
        (v, 0) => secs(v),
        (None, m) => format!("never ({m})"),
        (Some(_), m) => format!("{}, never ({m})", secs(v)),
    }
}

fn link(run: &IndexedRun) -> String {
    let file = if run.has_report { "report.html" } else { "" };
    format!(
        "{}/{file}",
        crate::FileLink {
            path: run.dir.clone(),
            size: 0,
            capture: false
        }
        .href()
    )
}

/// The page. Plans with a failing run come first, the plan whose newest run fails before
/// all; each plan's table is newest first.
pub fn render(runs: &[IndexedRun]) -> Markup {
    let mut plans: Vec<&str> = Vec::new();
    for r in runs {
        if !plans.contains(&r.plan.as_str()) {
            plans.push(&r.plan);
        }
    }
    let of = |plan: &str| -> Vec<&IndexedRun> {
        let mut v: Vec<&IndexedRun> = runs.iter().filter(|r| r.plan == plan).collect();
        v.sort_by(|a, b| a.started.cmp(&b.started));
        v
    };
    plans.sort_by_key(|p| {
        let v = of(p);
        let newest_bad = v.last().is_some_and(|r| r.bad());
        let any_bad = v.iter().any(|r| r.bad());
        (!newest_bad, !any_bad, p.to_string())
    });
    let mut failures: Vec<&IndexedRun> = runs.iter().filter(|r| r.bad()).collect();
    failures.sort_by(|a, b| b.started.cmp(&a.started));
    let bad = failures.len();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "smbchaos: " (runs.len()) " runs" }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { "smbchaos runs" }
                p id="summary" {
                    (runs.len()) " runs of " (plans.len()) " plans; "
                    span class=(if bad > 0 { "FAIL" } else { "PASS" }) { (bad) " not passing" }
                    ". "
                    label { input type="checkbox" id="only-failing"; " failing runs only" }
                }
                @if !failures.is_empty() {
                    h2 id="failures" { "Failing runs, newest first" }
                    table {
                        tr { th { "plan" } th { "run" } th { "verdict" } th { "failing checkers" } }
                        @for r in &failures {
                            tr class="failure" {
                                td { (r.plan) }
                                td { a href=(link(r)) { (r.started) } }
                                td class=(r.verdict) { (r.verdict) }
                                td { (r.failing.join(", ")) @if let Some(e) = &r.error { " " (e) } }
                            }
                        }
                    }
                }
                @for plan in plans.iter().copied() {
                    @let v = of(plan);
                    @let passed = v.iter().filter(|r| !r.bad()).count();
                    section class="plan" data-plan=(plan) {
                        h2 { (plan) " " small { (passed) "/" (v.len()) " passed" } }
                        div class="strip" title="oldest to newest" {
                            @for r in &v {
                                a class=(r.verdict) href=(link(r)) title=(format!("{}: {}", r.started, r.verdict)) {}
                            }
                        }
                        table {
                            tr {
                                th { "run (UTC)" } th { "verdict" } th { "failing checkers" } th { "seed" }
                                th { "duration" } th { "faults" } th { "longest stall" }
                                th { "longest recovery" }
                                th title="cluster runs: node lost → its address taken over, the longest of the run's failovers" { "takeover" }
                                th title="cluster runs: node lost → a cut-off client's first ok op, the longest" { "failover to first ok" }
                                th { "Samba" }
                            }
                            @for r in v.iter().rev() {
                                tr class=(if r.bad() { "bad" } else { "pass" }) {
                                    td { a href=(link(r)) { (r.started) } }
                                    td class=(r.verdict) { (r.verdict) }
                                    td { (r.failing.join(", ")) @if let Some(e) = &r.error { " " (e) } }
                                    td class="n" { (r.seed.map(|s| s.to_string()).unwrap_or_default()) }
                                    td class="n" { (secs(r.duration)) }
                                    td class="n" { (r.faults) }
                                    td class="n" { (secs(r.stall)) }
                                    td class="n" { (secs(r.recovery)) }
                                    @match &r.failover {
                                        Some(f) => {
                                            td class="n takeover" title=(format!("{} failover(s)", f.failovers)) { (step(f.takeover, f.no_takeover)) }
                                            td class="n first-ok" { (step(f.first_ok, f.no_first_ok)) }
                                        }
                                        None => { td class="n takeover" { "–" } td class="n first-ok" { "–" } }
                                    }
                                    td { (r.samba.clone().unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use check::failover::{ClientSteps, Failover};

    fn failover(takeover: Option<f64>, first_ok: &[Option<f64>]) -> Failover {
        Failover {
            takeover_s: takeover,
            clients: first_ok
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let steps = ClientSteps {
                        first_ok_s: *s,
                        ..ClientSteps::default()
                    };
                    (format!("c1/{i}"), steps)
                })
                .collect(),
            ..Failover::default()
        }
    }

    #[test]
    fn failover_figures_are_the_longest_step_and_count_the_steps_never_reached() {
        let f = FailoverFigures::of(&[
            failover(Some(3.9), &[Some(7.4), None]),
            failover(Some(4.4), &[Some(6.0)]),
            failover(None, &[None]),
        ]);
        assert_eq!(f.failovers, 3);
        assert_eq!((f.takeover, f.no_takeover), (Some(4.4), 1));
        assert_eq!((f.first_ok, f.no_first_ok), (Some(7.4), 2));
        assert_eq!(step(f.takeover, f.no_takeover), "4.40 s, never (1)");
        assert_eq!(step(None, 2), "never (2)");
        assert_eq!(step(Some(1.234), 0), "1.23 s");
        assert_eq!(FailoverFigures::of(&[]).takeover, None);
    }
}
