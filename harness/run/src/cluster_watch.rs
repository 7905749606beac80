//! What a cluster did, as history observations (process `cluster` and `wire`, type `info`):
//! each node's state transitions and each public address's moves (from `ctdb status` and
//! `ctdb ip`, polled), and the frames the story is told by — gratuitous ARPs, tickle ACKs,
//! SMB RSTs — with the instant the sender put them on the wire (`value.at_ns`, on the
//! history's clock).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use history::{Entry, HistoryWriter, OpType, Process};
use lab::Lab;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

/// Between two looks at the cluster (each is two `ctdb` calls on one node).
const POLL: Duration = Duration::from_millis(150);
pub const NODE_STATE: &str = "node_state";
pub const ADDRESS_MOVED: &str = "address_moved";

/// Watch until `done` turns true (and drain the wire once more then).
pub async fn run(
    lab: &Lab,
    history: &HistoryWriter,
    start: Instant,
    mut done: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if lab.clusters().next().is_none() {
        return Ok(());
    }
    let mut last: BTreeMap<String, (Vec<String>, BTreeMap<Ipv4Addr, i32>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(POLL);
    loop {
        let finished = tokio::select! {
            _ = tick.tick() => false,
            _ = done.wait_for(|d| *d) => true,
        };
        drain_wire(lab, history, start)?;
        for cluster in lab.clusters() {
            let Ok(status) = lab.cluster_status(&cluster.name).await else {
                continue;
            };
            let at_ns = start.elapsed().as_nanos() as u64;
            let (nodes, addresses) = last.entry(cluster.name.clone()).or_default();
            let name = |pnn: i32| {
                usize::try_from(pnn)
                    .ok()
                    .and_then(|p| cluster.nodes.get(p).cloned())
                    .unwrap_or_else(|| "none".into())
            };
            for (pnn, flags) in status.nodes.iter().enumerate() {
                let before = nodes.get(pnn).cloned().unwrap_or_default();
                if &before != flags {
                    append(
                        history,
                        NODE_STATE,
                        cluster.nodes.get(pnn).cloned(),
                        json!({ "cluster": cluster.name, "from": before, "to": flags, "at_ns": at_ns }),
                    )?;
                }
            }
            for (address, &pnn) in &status.addresses {
                let before = addresses.get(address).copied();
                if before != Some(pnn) {
                    append(
                        history,
                        ADDRESS_MOVED,
                        Some(name(pnn)),
                        json!({ "cluster": cluster.name, "address": address, "from": before.map(name), "to": name(pnn), "at_ns": at_ns }),
                    )?;
                }
            }
            *nodes = status.nodes.clone();
            *addresses = status.addresses.clone();
        }
        if finished {
            return Ok(());
        }
    }
}

fn drain_wire(lab: &Lab, history: &HistoryWriter, start: Instant) -> std::io::Result<()> {
    let start = start.into_std();
    for seen in lab.drain_notable() {
        let mut value = serde_json::to_value(seen.frame).unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or("frame").to_string();
        if let Some(map) = value.as_object_mut() {
            map.remove("kind");
            map.insert(
                "at_ns".into(),
                json!(seen.at.saturating_duration_since(start).as_nanos() as u64),
            );
            if seen.dropped {
                map.insert("dropped".into(), json!(true));
            }
        }
        history.append(Entry {
            process: Process::Named("wire".into()),
            kind: OpType::Info,
            f: kind,
            node: Some(seen.node),
            value: history::Value::Observation(value),
            ..Default::default()
        })?;
    }
    Ok(())
}

fn append(
    history: &HistoryWriter,
    f: &str,
    node: Option<String>,
    value: serde_json::Value,
) -> std::io::Result<()> {
    history
        .append(Entry {
            process: Process::Named("cluster".into()),
            kind: OpType::Info,
            f: f.into(),
            node,
            value: history::Value::Observation(value),
            ..Default::default()
        })
        .map(|_| ())
}
