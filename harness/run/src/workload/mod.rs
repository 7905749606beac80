//! The workload: the plan's `exec` steps in order, and its SMB clients (our wire client)
//! running concurrently for `workload.duration`, every operation recorded in the history.

mod exec;
pub mod final_read;
mod smb;
mod witness;

use std::sync::Arc;

use lab::Lab;

use crate::events::Events;
use history::HistoryWriter;

pub async fn run(
    lab: &Lab,
    plan: &plan::Plan,
    history: &Arc<HistoryWriter>,
    events: &Events,
) -> std::io::Result<()> {
    let steps = exec::run_steps(lab, plan, history, events);
    let clients = smb::run_clients(lab, plan, history, events);
    let (steps, clients) = tokio::join!(steps, clients);
    steps.and(clients)
}
