//! `grants`: the server granted what the plan requires (`expect: granted:`). A plan about
//! leases, oplocks or durable handles means nothing when the server silently grants none, so
//! each client's first successful open that asked for a lease (an oplock, a durable handle)
//! must be granted at least the required state. Later opens are not judged: another client
//! holding the file may rightly reduce what a reopen gets.

use history::{OpType, Record};

use crate::compact::{oplock, Caps, FxMap, History, Sym, Val, F};
use crate::index::Index;
use crate::{Anomaly, Checked, Findings, Validity};

pub const NAME: &str = "grants";

/// What every client's first open must be granted (where it asked for that kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantOptions {
    /// Lease state letters, as caps (none: not required).
    pub lease: Option<Caps>,
    /// Oplock level (MS-SMB2 2.2.13).
    pub oplock: Option<u8>,
    pub durable: bool,
}

impl GrantOptions {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.lease {
            parts.push(format!("lease {l}"));
        }
        if let Some(o) = self.oplock {
            parts.push(format!("oplock {}", level_name(o)));
        }
        if self.durable {
            parts.push("durable".to_string());
        }
        parts.join(", ")
    }
}

fn level_name(level: u8) -> &'static str {
    match level {
        oplock::BATCH => "batch",
        oplock::EXCLUSIVE => "exclusive",
        oplock::LEVEL_II => "level2",
        oplock::LEASE => "lease",
        _ => "none",
    }
}

pub fn grants(history: &[Record], options: &GrantOptions) -> Checked {
    let h = History::from_records(history);
    check(&Index::new(&h), options)
}

pub(crate) fn check(index: &Index, options: &GrantOptions) -> Checked {
    let mut found = Findings::default();
    let mut first: FxMap<Sym, ()> = FxMap::default();
    let (mut asked, mut judged, mut granted) = (0, 0, 0);
    let mut refused: Vec<u64> = Vec::new();
    let name = |s: Sym| index.name(s);
    for op in index.ops.iter().filter(|op| op.f() == F::Open) {
        let Val::OpenAsk {
            durable: ask_durable,
            lease: ask_lease,
            oplock: ask_oplock,
            ..
        } = op.invoke.v
        else {
            continue;
        };
        let wants_lease = options.lease.is_some() && ask_lease.0 != 0;
        let wants_oplock = options.oplock.is_some() && ask_lease.0 == 0 && ask_oplock != 0;
        let wants_durable = options.durable && ask_durable;
        if !(wants_lease || wants_oplock || wants_durable) || first.contains_key(&op.client()) {
            continue;
        }
        asked += 1;
        match op.end() {
            OpType::Ok => {}
            OpType::Fail if op.server_answered(index.h) => {
                refused.push(op.index());
                continue;
            }
            _ => continue,
        }
        first.insert(op.client(), ());
        judged += 1;
        let done = op.done.expect("ok has a completion");
        let (got_durable, got_level) = match done.v {
            Val::OpenOk {
                durable, oplock, ..
            } => (durable, oplock),
            _ => (false, oplock::NONE),
        };
        let got_lease = done.lease.map(|l| l.state).unwrap_or_default();
        let mut short = Vec::new();
        if let (true, Some(want)) = (wants_lease, options.lease) {
            if !want.within(got_lease) {
                short.push(format!(
                    "lease {want}, got {}",
                    shown(&got_lease.to_string())
                ));
            }
        }
        if let (true, Some(want)) = (wants_oplock, options.oplock) {
            if got_level == oplock::LEASE || got_level < want {
                short.push(format!(
                    "oplock {}, got {}",
                    level_name(want),
                    level_name(got_level)
                ));
            }
        }
        if wants_durable && !got_durable {
            short.push("a durable handle, got none".to_string());
        }
        if short.is_empty() {
            granted += 1;
            continue;
        }
        found.violation(Anomaly::GrantRefused, &op.indexes(), || {
            format!(
                "open {} of {} by {} was granted less than the plan requires: {}",
                op.index(),
                name(op.path()),
                name(op.client()),
                short.join("; ")
            )
        });
    }
    let what = format!("an open asking for {} answered", options.describe());
    if judged > 0 {
        found.precondition(&what, Validity::True, &[], format!("{judged} judged"));
    } else if asked > 0 && refused.len() == asked {
        let cite: Vec<u64> = refused.iter().take(10).copied().collect();
        found.precondition(
            &what,
            Validity::False,
            &cite,
            format!("the server refused every one of the {asked} opens"),
        );
    } else if asked > 0 {
        found.precondition(
            &what,
            Validity::Unknown,
            &[],
            format!("none of the {asked} opens completed"),
        );
    } else {
        found.precondition(
            &what,
            Validity::Unknown,
            &[],
            "no open asked for it (the plan's workload does not)".into(),
        );
    }
    let summary = format!(
        "required {}: {granted} of {judged} clients' first opens granted it",
        options.describe()
    );
    found.finish(NAME, summary)
}

fn shown(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}
