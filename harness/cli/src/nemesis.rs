//! The nemesis: the plan's fault schedule (`plan::schedule`), each occurrence started at its
//! time and healed after its hold (or when the workload is done), every start and heal
//! recorded in the history, every heal verified — the wire holds nothing of the fault any
//! more, the paths it cut carry traffic again, and servers it touched answer NEGOTIATE.

use std::time::Duration;

use lab::{Cut, Lab, LabError};
use plan::{Action, Scheduled};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{Event, Events};
use crate::history::{Entry, HistoryWriter, OpType, Process};

/// How long a healed path may take to carry a TCP handshake again.
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("fault {index} ({kind}) could not start: {detail}")]
    Start {
        index: usize,
        kind: String,
        detail: String,
    },
    #[error("heal of fault {index} ({kind}) did not take: {detail}")]
    Heal {
        index: usize,
        kind: String,
        detail: String,
    },
    #[error("history: {0}")]
    History(#[from] std::io::Error),
}

/// What a started fault left on the lab, for its heal to undo.
enum Active {
    Nothing,
    Cut(Cut),
    Impaired {
        node: String,
        directions: Vec<lab::wire::Direction>,
    },
    Processes {
        node: String,
        paused: bool,
    },
    Crash {
        node: String,
        cut: Cut,
    },
}

/// Run the plan's whole fault schedule. Returns once every occurrence has been healed;
/// occurrences without `for` are healed when `workload_done` turns true.
pub async fn run(
    lab: &Lab,
    plan: &plan::Plan,
    start: Instant,
    workload_done: watch::Receiver<bool>,
    history: &HistoryWriter,
    events: &Events,
) -> Result<(), NemesisError> {
    let schedule = plan::schedule(plan);
    let tasks = schedule.iter().map(|occ| {
        let mut done = workload_done.clone();
        async move {
            tokio::time::sleep_until(start + occ.at).await;
            let active = step(lab, plan, occ, Phase::Start, None, history, events).await?;
            if !occ.action.heals() {
                return Ok(());
            }
            match occ.hold {
                Some(hold) => tokio::time::sleep(hold).await,
                None => {
                    let _ = done.wait_for(|d| *d).await;
                }
            }
            step(lab, plan, occ, Phase::Heal, Some(active), history, events)
                .await
                .map(|_| ())
        }
    });
    // Every fault runs to its heal even if another failed, so nothing is left broken.
    let results = futures::future::join_all(tasks).await;
    results.into_iter().collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Heal,
}

async fn step(
    lab: &Lab,
    plan: &plan::Plan,
    occ: &Scheduled,
    phase: Phase,
    active: Option<Active>,
    history: &HistoryWriter,
    events: &Events,
) -> Result<Active, NemesisError> {
    let kind = occ.action.kind().to_string();
    let phase_name = if phase == Phase::Start {
        "start"
    } else {
        "heal"
    };
    let value = |detail: serde_json::Value| json!({ "fault": occ.fault, "occurrence": occ.occurrence, "phase": phase_name, "action": occ.action, "detail": detail });
    let entry = |op, value, status| Entry {
        process: Process::nemesis(),
        kind: op,
        f: kind.clone(),
        node: occ.action.node().map(str::to_string),
        value,
        status,
        ..Default::default()
    };
    history.append(entry(OpType::Invoke, value(serde_json::Value::Null), None))?;
    let outcome = match phase {
        Phase::Start => start(lab, plan, occ).await,
        Phase::Heal => heal(lab, active.unwrap_or(Active::Nothing))
            .await
            .map(|d| (Active::Nothing, d)),
    };
    match outcome {
        Ok((active, detail)) => {
            history.append(entry(OpType::Ok, value(detail), None))?;
            events.send(Event::Fault {
                f: kind.clone(),
                node: occ.action.node().unwrap_or("lab").to_string(),
                healed: phase == Phase::Heal,
            });
            Ok(active)
        }
        Err(e) => {
            let detail = e.to_string();
            history.append(entry(
                OpType::Fail,
                value(serde_json::Value::Null),
                Some(detail.clone()),
            ))?;
            Err(match phase {
                Phase::Start => NemesisError::Start {
                    index: occ.fault,
                    kind,
                    detail,
                },
                Phase::Heal => NemesisError::Heal {
                    index: occ.fault,
                    kind,
                    detail,
                },
            })
        }
    }
}

fn directions(d: plan::LinkDirection) -> Vec<lab::wire::Direction> {
    use lab::wire::Direction::{Egress, Ingress};
    match d {
        plan::LinkDirection::Egress => vec![Egress],
        plan::LinkDirection::Ingress => vec![Ingress],
        plan::LinkDirection::Both => vec![Egress, Ingress],
    }
}

/// Everyone else in the lab.
fn others(lab: &Lab, node: &str) -> Vec<String> {
    lab.nodes()
        .map(|n| n.name.clone())
        .filter(|n| n != node)
        .collect()
}

async fn start(
    lab: &Lab,
    plan: &plan::Plan,
    occ: &Scheduled,
) -> Result<(Active, serde_json::Value), LabError> {
    Ok(match &occ.action {
        Action::Reset {
            node,
            peer,
            port,
            side,
        } => {
            let reset = lab.reset(node, peer.as_deref(), *port, *side).await?;
            let pairs: Vec<String> = reset.iter().map(|(l, r)| format!("{l} -> {r}")).collect();
            (Active::Nothing, json!({ "reset": pairs }))
        }
        Action::Blackhole { node, peer, port } => {
            let far = peer
                .clone()
                .map(|p| vec![p])
                .unwrap_or_else(|| others(lab, node));
            (
                Active::Cut(lab.partition(std::slice::from_ref(node), &far, *port)?),
                serde_json::Value::Null,
            )
        }
        Action::Partition { cuts } => {
            let mut all = Vec::new();
            for (from, to) in cuts {
                all.push(lab.cut(from, to, None)?);
            }
            (Active::Cut(Cut::merge(all)), serde_json::Value::Null)
        }
        Action::Impair {
            node,
            direction,
            impairment: spec,
        } => {
            let dirs = directions(*direction);
            for (i, d) in dirs.iter().enumerate() {
                // Each direction its own RNG stream, all from the plan's seed.
                let seed = plan.seed
                    ^ ((occ.fault as u64) << 32)
                    ^ ((occ.occurrence as u64) << 8)
                    ^ i as u64;
                lab.impair(node, *d, Some(spec.clone()), seed)?;
            }
            (
                Active::Impaired {
                    node: node.clone(),
                    directions: dirs,
                },
                serde_json::Value::Null,
            )
        }
        Action::Kill {
            node,
            serving: Some(client),
        } => {
            let pids = lab
                .server(node)?
                .lock()
                .await
                .kill_serving(lab.address(client))
                .await?;
            (Active::Nothing, json!({ "killed": pids }))
        }
        Action::Kill {
            node,
            serving: None,
        } => {
            lab.server(node)?.lock().await.kill().await?;
            (
                Active::Processes {
                    node: node.clone(),
                    paused: false,
                },
                serde_json::Value::Null,
            )
        }
        Action::Stop { node } => {
            lab.server(node)?.lock().await.stop().await?;
            (
                Active::Processes {
                    node: node.clone(),
                    paused: false,
                },
                serde_json::Value::Null,
            )
        }
        Action::Pause { node } => {
            lab.node(node)?.freezer.freeze()?;
            (
                Active::Processes {
                    node: node.clone(),
                    paused: true,
                },
                serde_json::Value::Null,
            )
        }
        Action::Restart { node } => {
            lab.server(node)?.lock().await.restart().await?;
            (Active::Nothing, serde_json::Value::Null)
        }
        Action::Crash { node } => {
            // Links first, then processes: nothing the dying node sends gets out.
            let cut = lab.partition(std::slice::from_ref(node), &others(lab, node), None)?;
            lab.server(node)?.lock().await.kill().await?;
            (
                Active::Crash {
                    node: node.clone(),
                    cut,
                },
                serde_json::Value::Null,
            )
        }
    })
}

async fn heal(lab: &Lab, active: Active) -> Result<serde_json::Value, LabError> {
    match active {
        Active::Nothing => Ok(serde_json::Value::Null),
        Active::Cut(cut) => {
            let pairs = cut.pairs(lab);
            lab.repair(cut)?;
            verify_paths(lab, &pairs).await
        }
        Active::Impaired { node, directions } => {
            for d in directions {
                lab.impair(&node, d, None, 0)?;
            }
            let pairs: Vec<(String, String)> = others(lab, &node)
                .into_iter()
                .map(|o| (node.clone(), o))
                .collect();
            verify_paths(lab, &pairs).await
        }
        Active::Processes { node, paused } => {
            if paused {
                lab.node(&node)?.freezer.thaw()?;
            }
            if let Ok(server) = lab.server(&node) {
                let mut server = server.lock().await;
                if paused {
                    server.wait_ready().await?;
                } else {
                    // Starting waits until NEGOTIATE is answered: the heal verifies itself.
                    server.start().await?;
                }
            }
            Ok(serde_json::Value::Null)
        }
        Active::Crash { node, cut } => {
            let pairs = cut.pairs(lab);
            lab.repair(cut)?;
            lab.server(&node)?.lock().await.start().await?;
            verify_paths(lab, &pairs).await
        }
    }
}

/// Each healed path must carry a TCP handshake again — unless another fault still cuts it.
async fn verify_paths(
    lab: &Lab,
    pairs: &[(String, String)],
) -> Result<serde_json::Value, LabError> {
    let mut checked = Vec::new();
    for (a, b) in pairs {
        if lab.is_cut(a, b) || checked.contains(&(b.clone(), a.clone())) {
            continue;
        }
        let started = std::time::Instant::now();
        if !lab.reachable(a, b, REACH_TIMEOUT).await {
            return Err(LabError::Other(format!(
                "{a} still cannot reach {b} after the heal"
            )));
        }
        tracing::debug!("{a} -> {b} reachable again after {:?}", started.elapsed());
        checked.push((a.clone(), b.clone()));
    }
    Ok(json!({ "verified_paths": checked.len() }))
}

/// The longest a plan's fault schedule runs (for progress display).
pub fn planned(plan: &plan::Plan) -> Duration {
    plan::schedule(plan)
        .iter()
        .map(|s| s.at + s.hold.unwrap_or_default())
        .max()
        .unwrap_or_default()
}
