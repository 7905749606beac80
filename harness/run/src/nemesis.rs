//! The nemesis: the plan's fault schedule (`plan::schedule`), each occurrence started at its
//! time and healed after its hold (or when the workload is done), every start and heal
//! recorded in the history, every heal verified — the wire holds nothing of the fault any
//! more, the paths it cut carry traffic again, and servers it touched answer NEGOTIATE.

use std::time::Duration;

use lab::{Cut, Lab, LabError};
use plan::{Action, Scheduled};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{Event, Events};
use history::value::{FaultDetail, FaultPhase, FaultStep};
use history::{Entry, HistoryWriter, OpType, Process};

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

pub use history::effect::Effect;

/// What a started fault left on the lab, for its heal to undo.
enum Active {
    Nothing,
    Cut(Cut),
    Impaired {
        node: String,
        network: Option<String>,
        directions: Vec<lab::wire::Direction>,
        /// The link's counters when the impairment started: its effect is what went by since.
        before: lab::wire::LinkCounters,
    },
    Processes {
        node: String,
        paused: bool,
    },
    Crash {
        node: String,
        cut: Cut,
    },
    /// An administrative CTDB state on a node, undone by `undo` (`continue`, `enable`, `unban`).
    Admin {
        node: String,
        undo: &'static str,
    },
    /// A cluster node cut off from the clients.
    Isolated {
        node: String,
        cut: Cut,
    },
    /// Frames held on the wire, released (or dropped) at the heal.
    Held {
        hold: lab::Hold,
        discard: bool,
    },
    /// An SMB message rule armed between `node` and `peers`.
    Armed {
        armed: lab::Armed,
        discard: bool,
        node: String,
        peers: Vec<String>,
    },
}

/// How long a node taken out (`ctdb stop`, `disable`, `ban`) may take to give up its addresses.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(20);

/// `address: from -> to` for each public address whose holder differs between two views.
fn moved(
    nodes: &[String],
    before: &lab::ctdb::ClusterStatus,
    after: &lab::ctdb::ClusterStatus,
) -> Vec<String> {
    let name = |pnn: Option<&i32>| {
        pnn.and_then(|&p| usize::try_from(p).ok())
            .and_then(|p| nodes.get(p).cloned())
            .unwrap_or_else(|| "none".into())
    };
    after
        .addresses
        .iter()
        .filter(|(a, to)| before.addresses.get(a) != Some(to))
        .map(|(a, to)| {
            format!(
                "{a}: {} -> {}",
                name(before.addresses.get(a)),
                name(Some(to))
            )
        })
        .collect()
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
            let (active, landed) =
                step(lab, plan, occ, Phase::Start, None, false, history, events).await?;
            if !occ.action.heals() {
                return Ok(());
            }
            match occ.hold {
                Some(hold) => tokio::time::sleep(hold).await,
                None => {
                    let _ = done.wait_for(|d| *d).await;
                }
            }
            step(
                lab,
                plan,
                occ,
                Phase::Heal,
                Some(active),
                landed,
                history,
                events,
            )
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

#[allow(clippy::too_many_arguments)] // one caller, in two phases; `active` and `landed` carry the start to the heal
async fn step(
    lab: &Lab,
    plan: &plan::Plan,
    occ: &Scheduled,
    phase: Phase,
    active: Option<Active>,
    landed: bool,
    history: &HistoryWriter,
    events: &Events,
) -> Result<(Active, bool), NemesisError> {
    let kind = occ.action.kind().to_string();
    let value = |detail: Option<FaultDetail>| {
        FaultStep {
            fault: occ.fault as u64,
            occurrence: occ.occurrence as u64,
            phase: match phase {
                Phase::Start => FaultPhase::Start,
                Phase::Heal => FaultPhase::Heal,
            },
            action: serde_json::to_value(&occ.action).unwrap_or_default(),
            require_effect: occ.require_effect,
            heals: occ.action.heals(),
            detail,
        }
        .into()
    };
    let entry = |op, value, status| Entry {
        process: Process::nemesis(),
        kind: op,
        f: kind.clone(),
        node: occ.action.node().map(str::to_string),
        value,
        status,
        ..Default::default()
    };
    history.append(entry(OpType::Invoke, value(None), None))?;
    let outcome = match phase {
        Phase::Start => start(lab, plan, occ).await,
        Phase::Heal => heal(lab, active.unwrap_or(Active::Nothing))
            .await
            .map(|(e, d)| (Active::Nothing, e, d)),
    };
    match outcome {
        Ok((active, effect, mut detail)) => {
            // A start whose effect can still accrue (frames while a cut holds) is judged at
            // its heal; any other start is judged now.
            let settled = phase == Phase::Heal || !occ.action.heals();
            let landed = landed || !effect.is_none();
            // The terminal says what this step did, or that the whole occurrence did nothing.
            let effect_line = if !effect.is_none() {
                Some(effect.summary())
            } else {
                (settled && !landed).then(|| effect.summary())
            };
            detail.effect = Some(effect.clone());
            history.append(entry(OpType::Ok, value(Some(detail)), None))?;
            events.send(Event::Fault {
                f: kind.clone(),
                node: occ.action.node().unwrap_or("lab").to_string(),
                healed: phase == Phase::Heal,
                effect: effect_line,
            });
            Ok((active, landed))
        }
        Err(e) => {
            let detail = e.to_string();
            history.append(entry(OpType::Fail, value(None), Some(detail.clone())))?;
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
) -> Result<(Active, Effect, FaultDetail), LabError> {
    let mut detail = FaultDetail::default();
    let mut effect = Effect::default();
    let active = match &occ.action {
        Action::Reset {
            node,
            peer,
            port,
            side,
        } => {
            let reset = lab.reset(node, peer.as_deref(), *port, *side).await?;
            effect.connections_reset = reset.iter().map(|(l, r)| format!("{l} -> {r}")).collect();
            Active::Nothing
        }
        Action::Blackhole {
            node,
            peer,
            port,
            network,
        } => {
            let far = peer
                .clone()
                .map(|p| vec![p])
                .unwrap_or_else(|| others(lab, node));
            Active::Cut(lab.partition_on(
                std::slice::from_ref(node),
                &far,
                *port,
                network.as_deref(),
            )?)
        }
        Action::Partition {
            cuts,
            tcp_port,
            network,
        } => {
            let mut all = Vec::new();
            for (from, to) in cuts {
                all.push(lab.cut_on(from, to, *tcp_port, network.as_deref())?);
            }
            Active::Cut(Cut::merge(all))
        }
        Action::Impair {
            node,
            direction,
            impairment: spec,
            network,
        } => {
            let dirs = directions(*direction);
            let before = lab.link_counters_on(node, network.as_deref())?;
            for (i, d) in dirs.iter().enumerate() {
                // Each direction its own RNG stream, all from the plan's seed.
                let seed = plan.seed
                    ^ ((occ.fault as u64) << 32)
                    ^ ((occ.occurrence as u64) << 8)
                    ^ i as u64;
                lab.impair_on(node, network.as_deref(), *d, Some(spec.clone()), seed)?;
            }
            Active::Impaired {
                node: node.clone(),
                network: network.clone(),
                directions: dirs,
                before,
            }
        }
        Action::Kill { node, process, .. } if lab.cluster_of(node).is_some() => {
            effect.processes_killed = match process {
                Some(plan::ClusterProcess::Ctdbd) => {
                    lab.cluster_kill_daemon(node, lab::cluster::Daemon::Ctdbd)
                        .await?
                }
                Some(plan::ClusterProcess::Smbd) => {
                    lab.cluster_kill_daemon(node, lab::cluster::Daemon::Smbd)
                        .await?
                }
                None => lab.cluster_kill_node(node).await?,
            };
            detail.node = Some(node.clone());
            Active::Processes {
                node: node.clone(),
                paused: false,
            }
        }
        Action::Restart { node } | Action::Stop { node } if lab.cluster_of(node).is_some() => {
            effect.processes_killed = lab.cluster_kill_node(node).await?;
            if matches!(occ.action, Action::Restart { .. }) {
                // A rebooted node comes back without the addresses it held.
                lab.cluster_forget_addresses(node).await?;
                lab.cluster_restore_node(node).await?;
                Active::Nothing
            } else {
                Active::Processes {
                    node: node.clone(),
                    paused: false,
                }
            }
        }
        Action::Crash { node, address } if address.is_some() || lab.cluster_of(node).is_some() => {
            let began = std::time::Instant::now();
            let node = &match address {
                Some(a) => hosting(lab, node, *a).await?,
                None => node.clone(),
            };
            // Links first, then every process: nothing the dying node sends gets out.
            let cut = lab.partition(std::slice::from_ref(node), &others(lab, node), None)?;
            let cut_after_ns = began.elapsed().as_nanos() as u64;
            effect.processes_killed = lab.cluster_kill_node(node).await?;
            detail.node = Some(node.clone());
            detail.cut_after_ns = Some(cut_after_ns);
            Active::Crash {
                node: node.clone(),
                cut,
            }
        }
        Action::DropTickles { node } => Active::Cut(lab.drop_tickles(std::slice::from_ref(node))?),
        Action::Hold {
            node,
            peer,
            port,
            network,
            direction,
            release,
        } => {
            let far = peer
                .clone()
                .map(|p| vec![p])
                .unwrap_or_else(|| others(lab, node));
            let me = std::slice::from_ref(node);
            let mut holds = Vec::new();
            for d in directions(*direction) {
                holds.push(match d {
                    lab::wire::Direction::Egress => {
                        lab.hold_on(me, &far, *port, network.as_deref())?
                    }
                    lab::wire::Direction::Ingress => {
                        lab.hold_on(&far, me, *port, network.as_deref())?
                    }
                });
            }
            Active::Held {
                hold: lab::Hold::merge(holds),
                discard: *release == plan::Release::Drop,
            }
        }
        Action::Message {
            node,
            peer,
            command,
            sent_by,
            status,
            nth,
            action,
            delay,
            release,
        } => {
            use lab::wire::message::MessageAction as W;
            let rule = lab::wire::message::MessageRule {
                from: Vec::new(),
                to: Vec::new(),
                server_port: plan::schedule::SMB_PORT,
                responses: *sent_by == plan::SentBy::Server,
                command: command.code(),
                status: *status,
                nth: *nth,
                action: match action {
                    plan::MessageFaultAction::Hold => W::Hold,
                    plan::MessageFaultAction::Delay => W::Delay(delay.unwrap_or_default()),
                    plan::MessageFaultAction::Drop => W::Drop,
                    plan::MessageFaultAction::Reset => W::Reset,
                },
            };
            let peers: Vec<String> = peer.iter().cloned().collect();
            Active::Armed {
                armed: lab.arm_message(node, &peers, rule)?,
                discard: *release == plan::Release::Drop,
                node: node.clone(),
                peers: if peers.is_empty() {
                    lab.client_nodes()
                } else {
                    peers
                },
            }
        }
        Action::Admin {
            node,
            command,
            ban_time,
        } => {
            let cluster = lab
                .cluster_of(node)
                .ok_or_else(|| LabError::NoSuchNode(node.clone()))?
                .0;
            let before = lab.cluster_status(&cluster.name).await?;
            let secs = ban_time.unwrap_or_default().as_secs().max(1).to_string();
            let (args, undo): (Vec<&str>, _) = match command {
                plan::AdminCommand::Stop => (vec!["stop"], "continue"),
                plan::AdminCommand::Disable => (vec!["disable"], "enable"),
                plan::AdminCommand::Ban => (vec!["ban", &secs], "unban"),
            };
            lab.cluster_admin(node, &args).await?;
            let after = lab.wait_addresses_left(node, ADMIN_TIMEOUT).await?;
            effect.addresses_moved = moved(&cluster.nodes, &before, &after);
            detail = FaultDetail {
                node: Some(node.clone()),
                ctdb: Some(args.join(" ")),
                ..FaultDetail::default()
            };
            Active::Admin {
                node: node.clone(),
                undo,
            }
        }
        Action::Isolate { node, address } => {
            let node = &match address {
                Some(a) => hosting(lab, node, *a).await?,
                None => node.clone(),
            };
            let clients = lab.client_nodes();
            let cut = lab.partition(std::slice::from_ref(node), &clients, None)?;
            detail = FaultDetail {
                node: Some(node.clone()),
                clients: Some(clients),
                ..FaultDetail::default()
            };
            Active::Isolated {
                node: node.clone(),
                cut,
            }
        }
        Action::Moveip { node, address } => {
            let cluster = match lab.cluster(node) {
                Some(c) => c,
                None => {
                    lab.cluster_of(node)
                        .ok_or_else(|| LabError::NoSuchNode(node.clone()))?
                        .0
                }
            };
            let before = lab.cluster_status(&cluster.name).await?;
            let node = &match lab.cluster(node) {
                // The node after the holder (PNN order, wrapping).
                Some(c) => {
                    let holder = before.addresses.get(address).copied().unwrap_or(-1);
                    let next = usize::try_from(holder + 1).unwrap_or(0) % c.nodes.len();
                    c.nodes[next].clone()
                }
                None => node.clone(),
            };
            let from = before
                .addresses
                .get(address)
                .and_then(|&p| usize::try_from(p).ok())
                .and_then(|p| cluster.nodes.get(p).cloned())
                .unwrap_or_else(|| "none".into());
            lab.cluster_moveip(node, *address).await?;
            if &from != node {
                effect.addresses_moved = vec![format!("{address}: {from} -> {node}")];
            }
            detail.node = Some(from);
            detail.to = Some(node.clone());
            Active::Nothing
        }
        Action::ClientMove { node, address } => {
            let began = std::time::Instant::now();
            // The registrations it will move (a client told to move unregisters at once,
            // so they are listed before), then the move itself: the failover timeline runs
            // from the move (`cut_after_ns`), not from the listing.
            let listed = lab
                .server(node)?
                .lock()
                .await
                .net_witness(&["list"])
                .await?;
            detail.cut_after_ns = Some(began.elapsed().as_nanos() as u64);
            lab.cluster_client_move(node, *address).await?;
            effect.clients_moved = registrations(&listed);
            detail.node = Some(node.clone());
            detail.to = Some(address.to_string());
            Active::Nothing
        }
        Action::Kill {
            node,
            serving: Some(client),
            ..
        } => {
            effect.processes_killed = lab
                .server(node)?
                .lock()
                .await
                .kill_serving(lab.address_towards(node, client))
                .await?;
            Active::Nothing
        }
        Action::Kill {
            node,
            serving: None,
            ..
        } => {
            effect.processes_killed = lab.server(node)?.lock().await.kill().await?;
            Active::Processes {
                node: node.clone(),
                paused: false,
            }
        }
        Action::Stop { node } => {
            effect.processes_killed = lab.server(node)?.lock().await.stop().await?;
            Active::Processes {
                node: node.clone(),
                paused: false,
            }
        }
        Action::Pause { node } => {
            let freezer = &lab.node(node)?.freezer;
            freezer.freeze()?;
            effect.processes_frozen = freezer.pids().iter().map(|p| p.as_raw()).collect();
            Active::Processes {
                node: node.clone(),
                paused: true,
            }
        }
        Action::Restart { node } => {
            effect.processes_killed = lab.server(node)?.lock().await.restart().await?;
            Active::Nothing
        }
        Action::PowerCut { node } => {
            let (killed, discarded) = lab.server(node)?.lock().await.power_cut().await?;
            effect.processes_killed = killed;
            for (share, d) in discarded {
                effect.bytes_discarded += d.bytes();
                for f in &d.files {
                    effect.discarded.push(format!(
                        "{share}/{}: {} bytes in {:?}, size {} -> {}",
                        f.path, f.bytes_written, f.ranges, f.size_before, f.size_after
                    ));
                }
                effect
                    .discarded
                    .extend(d.names.iter().map(|n| format!("{share}: {n}")));
            }
            Active::Processes {
                node: node.clone(),
                paused: false,
            }
        }
        Action::Crash { node, .. } => {
            // Links first, then processes: nothing the dying node sends gets out.
            let cut = lab.partition(std::slice::from_ref(node), &others(lab, node), None)?;
            effect.processes_killed = lab.server(node)?.lock().await.kill().await?;
            Active::Crash {
                node: node.clone(),
                cut,
            }
        }
    };
    Ok((active, effect, detail))
}

/// The node of cluster `cluster` hosting public `address` right now.
async fn hosting(
    lab: &Lab,
    cluster: &str,
    address: std::net::Ipv4Addr,
) -> Result<String, LabError> {
    let status = lab.cluster_status(cluster).await?;
    status
        .addresses
        .get(&address)
        .and_then(|&p| usize::try_from(p).ok())
        .and_then(|p| lab.cluster(cluster)?.nodes.get(p).cloned())
        .ok_or_else(|| LabError::Other(format!("no node of {cluster} hosts {address}: {status:?}")))
}

async fn heal(lab: &Lab, active: Active) -> Result<(Effect, FaultDetail), LabError> {
    let mut effect = Effect::default();
    let detail = match active {
        Active::Nothing => FaultDetail::default(),
        Active::Cut(cut) => {
            let pairs = cut.pairs(lab);
            let links = cut.links(lab);
            effect.frames_dropped = lab.repair(cut)?;
            let verified = verify_links(lab, &links).await?;
            verify_clusters(lab, &pairs).await?;
            verified
        }
        Active::Impaired {
            node,
            network,
            directions,
            before,
        } => {
            let after = lab.link_counters_on(&node, network.as_deref())?;
            for d in &directions {
                effect.frames_shaped += match d {
                    lab::wire::Direction::Egress => after.egress_frames - before.egress_frames,
                    lab::wire::Direction::Ingress => after.ingress_frames - before.ingress_frames,
                };
            }
            for d in directions {
                lab.impair_on(&node, network.as_deref(), d, None, 0)?;
            }
            let links: Vec<(String, String, String)> = others(lab, &node)
                .into_iter()
                .flat_map(|o| {
                    lab.shared_networks(&node, &o)
                        .into_iter()
                        .filter(|n| network.as_ref().is_none_or(|m| m == n))
                        .map(|n| (node.clone(), o.clone(), n))
                        .collect::<Vec<_>>()
                })
                .collect();
            verify_links(lab, &links).await?
        }
        Active::Processes { node, paused } if lab.cluster_of(&node).is_some() => {
            if paused {
                lab.node(&node)?.freezer.thaw()?;
            }
            // Whatever of the node is down starts again; the heal is verified when the
            // whole cluster is healthy and every public address answers.
            lab.cluster_restore_node(&node).await?;
            FaultDetail::default()
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
                    // Starting waits until every share connects: the heal verifies itself.
                    server.start().await?;
                }
            }
            FaultDetail::default()
        }
        Active::Crash { node, cut } if lab.cluster_of(&node).is_some() => {
            let links = cut.links(lab);
            // A machine that crashed boots without the public addresses it held.
            lab.cluster_forget_addresses(&node).await?;
            effect.frames_dropped = lab.repair(cut)?;
            let verified = verify_links(lab, &links).await?;
            lab.cluster_restore_node(&node).await?;
            verified
        }
        Active::Admin { node, undo } => {
            let cluster = &lab
                .cluster_of(&node)
                .ok_or_else(|| LabError::NoSuchNode(node.clone()))?
                .0;
            let before = lab.cluster_status(&cluster.name).await?;
            // A ban whose time ran out has been lifted by CTDB already: `unban` then fails,
            // and the verification below is what counts.
            if let Err(e) = lab.cluster_admin(&node, &[undo]).await {
                tracing::info!("`ctdb {undo}` on {node}: {e}");
            }
            lab.verify_cluster(&cluster.name).await?;
            let after = lab.cluster_status(&cluster.name).await?;
            effect.addresses_moved = moved(&cluster.nodes, &before, &after);
            FaultDetail {
                node: Some(node),
                ctdb: Some(undo.to_string()),
                ..FaultDetail::default()
            }
        }
        Active::Isolated { node, cut } => {
            let links = cut.links(lab);
            effect.frames_dropped = lab.repair(cut)?;
            let verified = verify_links(lab, &links).await?;
            if let Some((cluster, _)) = lab.cluster_of(&node) {
                lab.verify_cluster(&cluster.name).await?;
            }
            verified
        }
        Active::Crash { node, cut } => {
            let links = cut.links(lab);
            effect.frames_dropped = lab.repair(cut)?;
            lab.server(&node)?.lock().await.start().await?;
            verify_links(lab, &links).await?
        }
        Active::Held { hold, discard } => {
            let links = hold.links(lab);
            effect.frames_held = lab.release(hold, discard)?.frames;
            verify_links(lab, &links).await?
        }
        Active::Armed {
            armed,
            discard,
            node,
            peers,
        } => {
            let report = lab.disarm(armed, discard)?;
            effect.frames_held = report.held.frames;
            let mut notes = Vec::new();
            if report.acted() {
                effect.messages = report.lines();
            } else {
                notes.push(match report.matched {
                    Some(_) => "matched, but could not act".to_string(),
                    None => format!(
                        "no matching message went by ({} seen of the {} needed, on {} connection(s))",
                        report.seen, report.nth, report.connections
                    ),
                });
                notes.extend(report.lines());
            }
            if report.encrypted {
                notes.push("an encrypted session went by: it cannot be matched".into());
            }
            let links: Vec<(String, String, String)> = peers
                .iter()
                .flat_map(|p| {
                    lab.shared_networks(&node, p)
                        .into_iter()
                        .map(|n| (p.clone(), node.clone(), n))
                        .collect::<Vec<_>>()
                })
                .collect();
            FaultDetail {
                message_id: report.matched.as_ref().map(|m| m.message_id),
                notes: (!notes.is_empty()).then_some(notes),
                ..verify_links(lab, &links).await?
            }
        }
    };
    Ok((effect, detail))
}

/// A cluster whose nodes a cut separated from each other must be healthy again, every
/// public address served.
async fn verify_clusters(lab: &Lab, pairs: &[(String, String)]) -> Result<(), LabError> {
    let mut done: Vec<String> = Vec::new();
    for (a, b) in pairs {
        let (Some((ca, _)), Some((cb, _))) = (lab.cluster_of(a), lab.cluster_of(b)) else {
            continue;
        };
        if ca.name == cb.name && !done.contains(&ca.name) && !lab.is_cut(a, b) {
            lab.verify_cluster(&ca.name).await?;
            done.push(ca.name.clone());
        }
    }
    Ok(())
}

/// Each healed path (node to node over one network) must carry a TCP handshake again —
/// unless another fault still cuts it.
async fn verify_links(
    lab: &Lab,
    links: &[(String, String, String)],
) -> Result<FaultDetail, LabError> {
    let mut checked: Vec<(String, String, String)> = Vec::new();
    for (a, b, net) in links {
        let back = (b.clone(), a.clone(), net.clone());
        if lab.is_cut_on(a, b, Some(net)) || checked.contains(&back) {
            continue;
        }
        let started = std::time::Instant::now();
        if !lab.reachable_on(a, b, Some(net), REACH_TIMEOUT).await {
            return Err(LabError::Other(format!(
                "{a} still cannot reach {b} on network {net} after the heal"
            )));
        }
        tracing::debug!(
            "{a} -> {b} on {net} reachable again after {:?}",
            started.elapsed()
        );
        checked.push((a.clone(), b.clone(), net.clone()));
    }
    Ok(FaultDetail {
        verified_paths: Some(checked.len() as u64),
        ..FaultDetail::default()
    })
}

/// The longest a plan's fault schedule runs (for progress display).
pub fn planned(plan: &plan::Plan) -> Duration {
    plan::schedule(plan)
        .iter()
        .map(|s| s.at + s.hold.unwrap_or_default())
        .max()
        .unwrap_or_default()
}

/// The registration lines of `net witness list` (each names a registration's UUID), with
/// runs of spaces made one.
fn registrations(listed: &str) -> Vec<String> {
    listed
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .any(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}
