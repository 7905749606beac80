//! Link counters over time: every interval, one `link_counters` record (process "wire") with
//! each link's byte and frame counters, so traffic before and after a fault can be compared.

use std::time::Duration;

use history::{Entry, HistoryWriter, OpType, Process};
use lab::Lab;
use tokio::sync::watch;

pub const INTERVAL: Duration = Duration::from_millis(500);
pub const F: &str = "link_counters";

/// Sample until `done` turns true (and once more then).
pub async fn run(
    lab: &Lab,
    history: &HistoryWriter,
    mut done: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if lab.all_link_counters().is_empty() {
        return Ok(());
    }
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        let finished = tokio::select! {
            _ = tick.tick() => false,
            _ = done.wait_for(|d| *d) => true,
        };
        history.append(Entry {
            process: Process::Named("wire".into()),
            kind: OpType::Info,
            f: F.into(),
            value: history::Value::Observation(
                serde_json::to_value(lab.all_link_counters()).unwrap_or_default(),
            ),
            ..Default::default()
        })?;
        if finished {
            return Ok(());
        }
    }
}
