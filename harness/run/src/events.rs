//! The run loop never prints: it emits events, and reporters render them (as nextest does).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::verdict::Outcome;
use history::OpType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    LabUp,
    Workload,
    Heal,
    Check,
    LabDown,
}

#[derive(Debug, Clone)]
pub enum Event {
    Started {
        plan: String,
        results: PathBuf,
        planned: Duration,
    },
    Phase(Phase),
    LabReady {
        run_id: String,
        took: Duration,
    },
    Op {
        process: u64,
        f: String,
        node: String,
        kind: OpType,
        status: Option<String>,
    },
    Fault {
        f: String,
        node: String,
        healed: bool,
        /// What it did (e.g. "2 connection(s) reset", "no effect"), once that is known.
        effect: Option<String>,
    },
    Finished {
        outcome: Outcome,
        results: PathBuf,
    },
}

/// Cheap, cloneable sender; a run with nobody listening is fine.
#[derive(Clone)]
pub struct Events {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl Events {
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events { tx: Some(tx) }, rx)
    }

    pub fn none() -> Events {
        Events { tx: None }
    }

    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}
