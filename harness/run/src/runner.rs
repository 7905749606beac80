//! One plan, end to end: plan → lab → workload and nemesis → history → heal verified →
//! checkers → verdict → results. Emits events; never prints.

use std::path::{Path, PathBuf};

use lab::{Lab, LabOptions};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::environment::Environment;
use crate::events::{Event, Events, Phase};
use crate::verdict::{self, Verdict};
use crate::{cluster_watch, nemesis, sampler, workload};
use history::results::{self, ResultsDir, Status};
use history::HistoryWriter;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("results directory {path}: {source}")]
    Results {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("lab: {0}")]
    Lab(#[from] lab::LabError),
    #[error("workload: {0}")]
    Workload(std::io::Error),
    #[error(transparent)]
    Nemesis(#[from] nemesis::NemesisError),
    #[error(transparent)]
    History(#[from] history::ReadError),
}

pub struct RunOptions {
    pub results_root: PathBuf,
}

pub struct Finished {
    pub verdict: Verdict,
    pub results: PathBuf,
    /// The compact history the verdict was drawn from: the report is rendered from it, so
    /// a run parses its history.jsonl once.
    pub history: check::History,
}

/// Run one validated plan. `plan_text` is stored with the results as the plan that ran.
pub async fn run(
    plan: &plan::Plan,
    plan_text: &str,
    options: &RunOptions,
    events: &Events,
) -> Result<Finished, RunError> {
    let dir = ResultsDir::create(&options.results_root, &plan.name.value).map_err(|source| {
        RunError::Results {
            path: options.results_root.clone(),
            source,
        }
    })?;
    let io = |source| RunError::Results {
        path: dir.path.clone(),
        source,
    };
    std::fs::write(dir.file(results::PLAN), plan_text).map_err(io)?;
    let status = |complete, outcome, error: Option<String>, run_id: &str| Status {
        complete,
        outcome,
        error,
        run_id: run_id.to_string(),
    };
    dir.write_status(&status(false, None, None, ""))
        .map_err(io)?;
    events.send(Event::Started {
        plan: plan.name.value.clone(),
        results: dir.path.clone(),
        planned: nemesis::planned(plan),
    });

    let result = run_in(plan, &dir, events).await;
    let (run_id, outcome) = match &result {
        Ok((run_id, verdict, _)) => (run_id.as_str(), Ok(verdict.outcome)),
        Err(e) => ("", Err(e.to_string())),
    };
    match outcome {
        Ok(o) => dir
            .write_status(&status(true, Some(o), None, run_id))
            .map_err(io)?,
        Err(e) => dir
            .write_status(&status(false, None, Some(e), run_id))
            .map_err(io)?,
    }
    let (_, verdict, history) = result?;
    events.send(Event::Finished {
        outcome: verdict.outcome,
        results: dir.path.clone(),
    });
    Ok(Finished {
        verdict,
        results: dir.path,
        history,
    })
}

async fn run_in(
    plan: &plan::Plan,
    dir: &ResultsDir,
    events: &Events,
) -> Result<(String, Verdict, check::History), RunError> {
    let io = |source| RunError::Results {
        path: dir.path.clone(),
        source,
    };
    let epoch = Instant::now();
    let mechanisms = fault_mechanisms(plan);
    dir.write_json(results::ENVIRONMENT, &Environment::probe(plan, mechanisms))
        .map_err(io)?;
    dir.write_json(crate::repro::SCHEDULE, &crate::repro::resolved(plan))
        .map_err(io)?;

    events.send(Event::Phase(Phase::LabUp));
    let options = LabOptions {
        capture_dir: Some(dir.file(results::PCAP)),
        ..LabOptions::default()
    };
    let lab = Lab::up(plan, options).await?;
    events.send(Event::LabReady {
        run_id: lab.run_id().to_string(),
        took: epoch.elapsed(),
    });

    events.send(Event::Phase(Phase::Workload));
    let start = Instant::now();
    // The history's clock starts with the workload, so record times line up with fault `at`s.
    let history = std::sync::Arc::new(
        HistoryWriter::create(&dir.file(results::HISTORY), start.into_std()).map_err(io)?,
    );
    let (done_tx, done_rx) = watch::channel(false);
    let work = async {
        let r = workload::run(&lab, plan, &history, events).await;
        let _ = done_tx.send(true);
        r
    };
    let sampled = sampler::run(&lab, &history, done_rx.clone());
    let watched = cluster_watch::run(&lab, &history, start, done_rx.clone());
    let (work, faults, sampled, watched) = tokio::join!(
        work,
        nemesis::run(&lab, plan, start, done_rx, &history, events),
        sampled,
        watched
    );
    sampled.map_err(io)?;
    watched.map_err(io)?;
    events.send(Event::Phase(Phase::Heal));
    let verified = verify_servers(&lab).await;
    // Only once every fault is healed: an independent read of what the server kept.
    if let (Ok(()), Some(first)) = (&verified, plan.workload.clients.first()) {
        workload::final_read::run(&lab, plan, &first.node.value, &history)
            .await
            .map_err(io)?;
    }

    lab.collect_logs(&dir.file(results::LOGS))?;
    dir.write_json(results::LINKS, &lab.all_link_counters())
        .map_err(io)?;
    events.send(Event::Phase(Phase::LabDown));
    let run_id = lab.run_id().to_string();
    lab.down().await?;
    faults?;
    verified?;
    work.map_err(RunError::Workload)?;

    events.send(Event::Phase(Phase::Check));
    let (verdict, history) = check(&dir.path, plan)?;
    Ok((run_id, verdict, history))
}

/// How the plan's faults are injected, for environment.json.
fn fault_mechanisms(plan: &plan::Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for occ in plan::schedule(plan) {
        let mechanism = match occ.action {
            plan::Action::Reset { .. } => "sock_diag SOCK_DESTROY",
            plan::Action::Blackhole { .. } | plan::Action::Partition { .. } => {
                "userspace wire: frame drops"
            }
            plan::Action::Impair { .. } => "userspace wire: impairment shapers (no sch_netem)",
            plan::Action::Pause { .. } => "cgroup v1 freezer",
            plan::Action::Kill { .. }
            | plan::Action::Stop { .. }
            | plan::Action::Restart { .. } => "signals",
            plan::Action::Crash { .. } => "signals + userspace wire: frame drops",
            plan::Action::PowerCut { .. } => "signals + lossy disk (FUSE) cut",
            plan::Action::Moveip { .. } => "ctdb moveip",
            plan::Action::ClientMove { .. } => "net witness client-move",
            plan::Action::DropTickles { .. } => "userspace wire: tickle ACKs dropped",
            plan::Action::Admin { .. } => "ctdb stop/disable/ban",
            plan::Action::Isolate { .. } => "userspace wire: frame drops",
            plan::Action::Hold { .. } => "userspace wire: frames held and released",
            plan::Action::Message { .. } => {
                "userspace wire: SMB2 messages matched on the followed TCP stream"
            }
        };
        if !out.iter().any(|m| m == mechanism) {
            out.push(mechanism.to_string());
        }
    }
    out
}

/// After the last heal every server must answer NEGOTIATE again; a heal that did not take
/// fails the run loudly.
async fn verify_servers(lab: &Lab) -> Result<(), RunError> {
    for cluster in lab.clusters() {
        lab.verify_cluster(&cluster.name).await?;
    }
    for node in lab.nodes() {
        if let Some(samba) = &node.samba {
            samba.lock().await.wait_ready().await?;
        }
    }
    Ok(())
}

/// Judge a stored run: read its history file and plan's expectations, write verdict.json.
/// `smbchaos check` calls this too, with no lab.
/// Returns the compact history it judged, for the report (`report::write_with`): the file is
/// read once.
pub fn check(results_dir: &Path, plan: &plan::Plan) -> Result<(Verdict, check::History), RunError> {
    // Straight from the file into the checkers' compact form: a million-op history stays
    // well under 1 GiB this way.
    let (verdict, history) =
        verdict::judge_stored_keeping(&results_dir.join(results::HISTORY), &plan.expectations())?;
    ResultsDir {
        path: results_dir.to_path_buf(),
    }
    .write_json(results::VERDICT, &verdict)
    .map_err(|source| RunError::Results {
        path: results_dir.to_path_buf(),
        source,
    })?;
    Ok((verdict, history))
}
