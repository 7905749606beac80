//! The nemesis: the plan's faults, each started at its time and healed after its hold (or at
//! the end of the run), every start and heal recorded, every heal verified.

use std::time::Duration;

use lab::Lab;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{Event, Events};
use crate::history::{Entry, HistoryWriter, OpType, Process};

#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("fault {index} ({kind} {node}) could not start: {detail}")]
    Start { index: usize, kind: String, node: String, detail: String },
    #[error("heal of fault {index} ({kind} {node}) did not take: {detail}")]
    Heal { index: usize, kind: String, node: String, detail: String },
    #[error("history: {0}")]
    History(#[from] std::io::Error),
}

/// Run every fault of the plan. Returns once each has been healed; faults without `for` are
/// healed when `workload_done` turns true.
pub async fn run(
    lab: &Lab,
    plan: &plan::Plan,
    start: Instant,
    workload_done: watch::Receiver<bool>,
    history: &HistoryWriter,
    events: &Events,
) -> Result<(), NemesisError> {
    let tasks = plan.faults.iter().enumerate().map(|(index, fault)| {
        let mut done = workload_done.clone();
        async move {
            tokio::time::sleep_until(start + fault.at.value.as_duration()).await;
            apply(lab, index, fault, Phase::Start, history, events).await?;
            match &fault.hold {
                Some(hold) => tokio::time::sleep(hold.value.as_duration()).await,
                None => {
                    let _ = done.wait_for(|d| *d).await;
                }
            }
            if fault.kind != plan::FaultKind::Restart {
                apply(lab, index, fault, Phase::Heal, history, events).await?;
            }
            Ok::<(), NemesisError>(())
        }
    });
    // Every fault runs to its heal even if another one failed, so nothing stays broken.
    let results = futures::future::join_all(tasks).await;
    results.into_iter().collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Heal,
}

async fn apply(
    lab: &Lab,
    index: usize,
    fault: &plan::Fault,
    phase: Phase,
    history: &HistoryWriter,
    events: &Events,
) -> Result<(), NemesisError> {
    use plan::FaultKind::*;
    let kind = format!("{:?}", fault.kind).to_lowercase();
    let node = fault.node.value.clone();
    let phase_name = if phase == Phase::Start { "start" } else { "heal" };
    let entry = |op, status| Entry {
        process: Process::nemesis(),
        kind: op,
        f: kind.clone(),
        node: Some(node.clone()),
        value: json!({ "fault": index, "phase": phase_name }),
        status,
    };
    history.append(entry(OpType::Invoke, None))?;
    let outcome: Result<(), String> = async {
        let server = lab.server(&node).map_err(|e| e.to_string())?;
        let mut server = server.lock().await;
        let r = match (fault.kind, phase) {
            (Kill, Phase::Start) => server.kill().await,
            (Stop, Phase::Start) => server.stop().await,
            (Pause, Phase::Start) => server.pause(),
            (Restart, Phase::Start) => server.restart().await,
            // Starting waits until NEGOTIATE is answered: the heal is verified by the start.
            (Kill | Stop | Restart, Phase::Heal) => server.start().await,
            (Pause, Phase::Heal) => match server.resume() {
                Ok(()) => server.wait_ready().await,
                Err(e) => Err(e),
            },
        };
        r.map_err(|e| e.to_string())
    }
    .await;
    match outcome {
        Ok(()) => {
            history.append(entry(OpType::Ok, None))?;
            events.send(Event::Fault { f: kind.clone(), node: node.clone(), healed: phase == Phase::Heal });
            Ok(())
        }
        Err(detail) => {
            history.append(entry(OpType::Fail, Some(detail.clone())))?;
            Err(match phase {
                Phase::Start => NemesisError::Start { index, kind, node, detail },
                Phase::Heal => NemesisError::Heal { index, kind, node, detail },
            })
        }
    }
}

/// The longest a plan's fault schedule runs (for progress display).
pub fn planned(plan: &plan::Plan) -> Duration {
    plan.faults
        .iter()
        .map(|f| f.at.value.as_duration() + f.hold.as_ref().map(|h| h.value.as_duration()).unwrap_or_default())
        .max()
        .unwrap_or_default()
}
