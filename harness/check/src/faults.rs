//! Fault windows from the nemesis records (process `nemesis`, `value.phase` start/heal).

use std::collections::BTreeMap;

use crate::compact::Val;
use crate::index::Index;

pub struct Fault<'a> {
    pub kind: &'a str,
    pub node: &'a str,
    /// `value.fault` and `value.occurrence`.
    pub id: (u64, u64),
    /// The start step was invoked.
    pub start: u64,
    /// The start step completed: the fault is in effect.
    pub started: u64,
    /// The heal completed (a fault without a heal step: its start completed); `u64::MAX`
    /// while still in effect when the history ends.
    pub heal: u64,
    /// A reset of the client's end only.
    pub client_side: bool,
    /// A message fault that resets the connection (RSTs to both ends) instead of holding,
    /// delaying or dropping.
    pub message_reset: bool,
    /// Only connections with this node (empty: all of `node`'s).
    pub peer: &'a str,
    /// What its completed steps recorded: Some(true) when any did something, Some(false)
    /// when they all recorded doing nothing, None when none recorded an effect.
    pub landed: Option<bool>,
    /// The plan needs it to land (`require_effect`).
    pub require_effect: bool,
    /// It has a heal step; a fault without one is over once started.
    pub heals: bool,
    /// History indexes of its completed steps (start, heal): the records that show its effect.
    pub steps: Vec<u64>,
}

impl Fault<'_> {
    pub fn label(&self) -> String {
        let node = if self.node.is_empty() {
            String::new()
        } else {
            format!(" {}", self.node)
        };
        format!("fault {}.{} ({}{node})", self.id.0, self.id.1, self.kind)
    }

    /// Faults that cut a connection without telling either end (no RST, no FIN): the server
    /// learns of the loss late (TCP timeout, or the client's PreviousSessionId).
    pub fn is_silent(&self) -> bool {
        match self.kind {
            "blackhole" | "partition" | "pause" | "impair" | "hold" => true,
            "message" => !self.message_reset,
            _ => false,
        }
    }

    /// A reset that destroys the server's end of `client_node`'s connections: the server
    /// learns of the loss at once, whatever else happens on the wire.
    pub fn resets_server_end(&self, client_node: &str) -> bool {
        let reaches = self.node == client_node || self.peer.is_empty() || self.peer == client_node;
        (self.kind == "reset" && !self.client_side || self.message_reset) && reaches
    }

    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.start <= to && from <= self.heal
    }
}

/// Every fault occurrence of the history, by start time.
pub fn faults<'a>(index: &Index<'a>) -> Vec<Fault<'a>> {
    let mut by_id: BTreeMap<(u64, u64), (Fault<'a>, Option<u64>)> = BTreeMap::new();
    for op in index.ops.iter().filter(|op| index.is_nemesis(op.invoke)) {
        let Val::Nemesis {
            fault,
            occurrence,
            heal,
            client_side,
            message_reset,
            peer,
            require_effect,
            heals,
            ..
        } = op.invoke.v
        else {
            continue;
        };
        let effect = match op.done.map(|d| &d.v) {
            Some(Val::Nemesis { effect, .. }) => *effect,
            _ => None,
        };
        let id = (fault, occurrence);
        let (f, started) = by_id.entry(id).or_insert_with(|| {
            let kind = index.name(op.invoke.f_name);
            let f = Fault {
                kind,
                node: index.name(op.invoke.node),
                id,
                start: u64::MAX,
                started: u64::MAX,
                heal: u64::MAX,
                client_side,
                message_reset,
                peer: index.name(peer),
                landed: None,
                require_effect,
                heals,
                steps: Vec::new(),
            };
            (f, None)
        });
        if let Some(done) = op.done {
            f.steps.push(done.index);
        }
        if let Some(e) = effect {
            f.landed = Some(f.landed.unwrap_or(false) || e);
        }
        if heal {
            f.heal = op.t1();
        } else {
            f.start = f.start.min(op.t0());
            f.started = op.t1();
            *started = Some(op.t1());
        }
    }
    let mut out: Vec<Fault<'a>> = by_id
        .into_values()
        .filter(|(f, _)| f.start != u64::MAX)
        .map(|(mut f, started)| {
            // A fault without a heal step (the record says so) is over once started; any
            // other fault without a heal is still in effect.
            if f.heal == u64::MAX && !f.heals {
                f.heal = started.unwrap_or(u64::MAX);
            }
            f
        })
        .collect();
    out.sort_by_key(|f| f.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &'static str, message_reset: bool) -> Fault<'static> {
        Fault {
            kind,
            node: "fs1",
            id: (0, 0),
            start: 0,
            started: 0,
            heal: 1,
            client_side: false,
            message_reset,
            peer: "c1",
            landed: Some(true),
            require_effect: true,
            heals: true,
            steps: Vec::new(),
        }
    }

    /// A message fault that resets tells both ends at once: not silent, and the server's end
    /// is gone; one that holds, delays or drops is silent and leaves the server's end.
    #[test]
    fn a_message_reset_is_a_reset_and_other_message_faults_are_silent() {
        let reset = fault("message", true);
        assert!(!reset.is_silent());
        assert!(reset.resets_server_end("c1"));
        assert!(!reset.resets_server_end("c2"));
        let hold = fault("message", false);
        assert!(hold.is_silent());
        assert!(!hold.resets_server_end("c1"));
        assert!(fault("hold", false).is_silent());
        assert!(fault("reset", false).resets_server_end("c1"));
    }
}
