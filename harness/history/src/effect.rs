//! What a fault did: the nemesis records it as `detail.effect` of a fault's start and heal
//! records; the checkers judge `require_effect` from it and the terminal and report.html
//! show it. Defined once, here.

use serde::{Deserialize, Serialize};

/// What a fault did, recorded as `detail.effect` of its start (what is known at once:
/// connections reset, processes killed or frozen) and of its heal (what accrued while it
/// held: frames dropped or shaped). An occurrence whose records all carry an empty effect
/// had none; the checkers judge `require_effect` from that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Effect {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections_reset: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_killed: Vec<i32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes_frozen: Vec<i32>,
    #[serde(skip_serializing_if = "is_zero")]
    pub frames_dropped: u64,
    /// Frames that passed through an impaired direction (delayed, lost, duplicated...).
    #[serde(skip_serializing_if = "is_zero")]
    pub frames_shaped: u64,
    /// Cluster public addresses moved, `address: from-node -> to-node`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses_moved: Vec<String>,
    /// Power cut: bytes written since their file's last fsync and thrown away.
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes_discarded: u64,
    /// Power cut: what was thrown away, one line per file or name change
    /// (`share/path: N bytes in [a, b) ...`, `share: create path`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discarded: Vec<String>,
    /// Witness `client_move`: the registrations told to move (`net witness list` lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clients_moved: Vec<String>,
    /// Hold, message faults: frames held back on the wire (delivered or dropped at the
    /// release, as `messages` says).
    #[serde(skip_serializing_if = "is_zero")]
    pub frames_held: u64,
    /// Message faults: the message matched (command, MessageId, connection, when) and what
    /// was done to it (held from/until, dropped, reset), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Effect {
    pub fn is_none(&self) -> bool {
        self.connections_reset.is_empty()
            && self.processes_killed.is_empty()
            && self.processes_frozen.is_empty()
            && self.frames_dropped == 0
            && self.frames_shaped == 0
            && self.addresses_moved.is_empty()
            && self.bytes_discarded == 0
            && self.discarded.is_empty()
            && self.clients_moved.is_empty()
            && self.frames_held == 0
            && self.messages.is_empty()
    }

    /// Add what another step of the same fault did (a start's and a heal's effects).
    pub fn add(&mut self, other: &Effect) {
        self.connections_reset
            .extend(other.connections_reset.iter().cloned());
        self.processes_killed.extend(&other.processes_killed);
        self.processes_frozen.extend(&other.processes_frozen);
        self.frames_dropped += other.frames_dropped;
        self.frames_shaped += other.frames_shaped;
        self.addresses_moved
            .extend(other.addresses_moved.iter().cloned());
        self.bytes_discarded += other.bytes_discarded;
        self.discarded.extend(other.discarded.iter().cloned());
        self.clients_moved
            .extend(other.clients_moved.iter().cloned());
        self.frames_held += other.frames_held;
        self.messages.extend(other.messages.iter().cloned());
    }

    /// One line, the same on the terminal and in report.html.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let n = |v: usize, what: &str| format!("{v} {what}");
        if !self.connections_reset.is_empty() {
            parts.push(n(self.connections_reset.len(), "connection(s) reset"));
        }
        if !self.processes_killed.is_empty() {
            parts.push(n(self.processes_killed.len(), "process(es) killed"));
        }
        if !self.processes_frozen.is_empty() {
            parts.push(n(self.processes_frozen.len(), "process(es) frozen"));
        }
        if self.frames_dropped > 0 {
            parts.push(n(self.frames_dropped as usize, "frame(s) dropped"));
        }
        if self.frames_shaped > 0 {
            parts.push(n(self.frames_shaped as usize, "frame(s) shaped"));
        }
        if !self.addresses_moved.is_empty() {
            parts.push(n(self.addresses_moved.len(), "public address(es) moved"));
        }
        if !self.clients_moved.is_empty() {
            parts.push(n(
                self.clients_moved.len(),
                "witness client(s) told to move",
            ));
        }
        if !self.discarded.is_empty() {
            parts.push(format!(
                "{} unsynced change(s) discarded ({} bytes)",
                self.discarded.len(),
                self.bytes_discarded
            ));
        }
        if self.frames_held > 0 {
            parts.push(n(self.frames_held as usize, "frame(s) held"));
        }
        if let Some(m) = self.messages.first() {
            parts.push(m.clone());
        }
        if parts.is_empty() {
            "no effect".into()
        } else {
            parts.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_s_steps_add_up_and_read_back_as_recorded() {
        let start = Effect {
            processes_killed: vec![7, 8],
            ..Effect::default()
        };
        let heal: Effect =
            serde_json::from_value(serde_json::json!({"frames_dropped": 14})).unwrap();
        let mut all = Effect::default();
        assert!(all.is_none());
        assert_eq!(all.summary(), "no effect");
        all.add(&start);
        all.add(&heal);
        assert_eq!(all.summary(), "2 process(es) killed, 14 frame(s) dropped");
        // Empty fields are left out of the record, and an empty effect is `{}`.
        assert_eq!(
            serde_json::to_value(&heal).unwrap(),
            serde_json::json!({"frames_dropped": 14})
        );
        assert_eq!(
            serde_json::to_value(Effect::default()).unwrap(),
            serde_json::json!({})
        );
        let cut = Effect {
            bytes_discarded: 4096,
            discarded: vec!["share/a.dat: 4096 bytes in [(0, 4096)], size 4096 -> 0".into()],
            ..Effect::default()
        };
        assert!(!cut.is_none());
        assert_eq!(cut.summary(), "1 unsynced change(s) discarded (4096 bytes)");
    }
}
