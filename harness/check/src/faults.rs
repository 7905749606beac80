//! Fault windows from the nemesis records (process `nemesis`, `value.phase` start/heal).

use std::collections::BTreeMap;

use history::Process;

use crate::index::{text, uint, Index};

pub struct Fault<'a> {
    pub kind: &'a str,
    pub node: Option<&'a str>,
    /// `value.fault` and `value.occurrence`.
    pub id: (u64, u64),
    /// The start step was invoked.
    pub start: u64,
    /// The heal completed (a fault without a heal step: its start completed); `u64::MAX`
    /// while still in effect when the history ends.
    pub heal: u64,
    pub ops: Vec<u64>,
}

impl Fault<'_> {
    pub fn label(&self) -> String {
        match self.node {
            Some(n) => format!("fault {}.{} ({} {n})", self.id.0, self.id.1, self.kind),
            None => format!("fault {}.{} ({})", self.id.0, self.id.1, self.kind),
        }
    }

    /// Faults that cut a connection without telling either end (no RST, no FIN): the server
    /// learns of the loss late (TCP timeout, or the client's PreviousSessionId).
    pub fn is_silent(&self) -> bool {
        matches!(self.kind, "blackhole" | "partition" | "pause" | "impair")
    }

    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.start <= to && from <= self.heal
    }
}

/// Every fault occurrence of the history, by start time.
pub fn faults<'a>(index: &Index<'a>) -> Vec<Fault<'a>> {
    let nemesis: Vec<_> = index
        .ops
        .iter()
        .filter(|op| matches!(&op.invoke.process, Process::Named(n) if n == "nemesis"))
        .collect();
    let mut by_id: BTreeMap<(u64, u64), (Fault<'a>, Option<u64>)> = BTreeMap::new();
    for op in nemesis {
        let v = &op.invoke.value;
        let id = (
            uint(v, "fault").unwrap_or(0),
            uint(v, "occurrence").unwrap_or(0),
        );
        let (fault, started) = by_id.entry(id).or_insert_with(|| {
            let fault = Fault {
                kind: &op.invoke.f,
                node: op.invoke.node.as_deref(),
                id,
                start: u64::MAX,
                heal: u64::MAX,
                ops: Vec::new(),
            };
            (fault, None)
        });
        fault.ops.extend(op.indexes());
        if text(v, "phase") == Some("heal") {
            fault.heal = op.t1();
        } else {
            fault.start = fault.start.min(op.t0());
            *started = Some(op.t1());
        }
    }
    let mut out: Vec<Fault<'a>> = by_id
        .into_values()
        .filter(|(f, _)| f.start != u64::MAX)
        .map(|(mut f, started)| {
            // Resets, restarts and kills of one smbd child have no heal step: they are over
            // once started. Any other fault without a heal is still in effect.
            if f.heal == u64::MAX && matches!(f.kind, "reset" | "restart" | "kill") {
                f.heal = started.unwrap_or(u64::MAX);
            }
            f
        })
        .collect();
    out.sort_by_key(|f| f.start);
    out
}
