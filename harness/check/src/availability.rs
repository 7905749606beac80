//! `availability`: how long SMB clients made no progress. It reports, per client, the stall
//! distribution (gaps between consecutive `ok` completions, from the client's first invoke to
//! the end of the workload) and, per fault, the time from the fault's start to the client's
//! last failed/info op and to its first `ok` after the heal. Valid is false only when a
//! `max_stall` is given and some client's longest stall exceeds it.

use history::{OpType, Record};

use crate::compact::{FxMap, History, Sym, NONE};
use crate::faults::{faults, Fault};
use crate::index::Index;
use crate::{secs, Anomaly, Checked, Findings};

pub const NAME: &str = "availability";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AvailabilityOptions {
    pub max_stall_ns: Option<u64>,
}

pub fn availability(history: &[Record], options: &AvailabilityOptions) -> Checked {
    let h = History::from_records(history);
    let index = Index::new(&h);
    let faults = faults(&index);
    check(&index, &faults, options)
}

#[derive(Default)]
struct Client {
    first: u64,
    /// (completion time, invoke index, completion index) of `ok` ops, sorted.
    oks: Vec<(u64, u64, u64)>,
    /// Completion times of `fail`/`info` ops, sorted.
    bad: Vec<u64>,
    /// Completion indexes of the first `fail`/`info` ops: the proof when nothing succeeded.
    first_bad: Vec<u64>,
}

/// The longest gap without progress, and the ok ops around it (invoke, completion).
struct Stall {
    len: u64,
    from: Option<(u64, u64)>,
    to: Option<(u64, u64)>,
}

pub(crate) fn check(index: &Index, faults: &[Fault], options: &AvailabilityOptions) -> Checked {
    let mut by_client: FxMap<Sym, Client> = FxMap::default();
    let mut end = 0;
    for op in &index.ops {
        let name = op.client();
        if name == NONE {
            continue;
        }
        let c = by_client.entry(name).or_insert_with(|| Client {
            first: u64::MAX,
            ..Client::default()
        });
        c.first = c.first.min(op.t0());
        let Some(done) = op.done else { continue };
        end = end.max(done.time);
        match done.kind {
            OpType::Ok => c.oks.push((done.time, op.index(), done.index)),
            _ => {
                c.bad.push(done.time);
                if c.first_bad.len() < 10 {
                    c.first_bad.push(done.index);
                }
            }
        }
    }
    for r in &index.events {
        if r.client != NONE {
            end = end.max(r.time);
        }
    }
    let mut clients: Vec<(&str, Client)> = by_client
        .into_iter()
        .map(|(s, c)| (index.name(s), c))
        .collect();
    clients.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut found = Findings::default();
    // A fault that did nothing explains why nobody stalled; say so beside the figures.
    let idle: Vec<String> = faults
        .iter()
        .filter(|f| f.landed == Some(false))
        .map(|f| format!("{} had no effect", f.label()))
        .collect();
    if clients.is_empty() {
        if !idle.is_empty() {
            found.note(cap(idle, "faults"));
        }
        return found.finish(NAME, "nothing to check: no SMB client ops".into());
    }

    let mut lines = Vec::new();
    let mut worst: Option<(&str, u64)> = None;
    for (name, c) in &mut clients {
        let name = *name;
        c.oks.sort_unstable();
        c.bad.sort_unstable();
        let mut gaps = Vec::with_capacity(c.oks.len() + 1);
        let mut stall = Stall {
            len: 0,
            from: None,
            to: None,
        };
        let mut prev = (c.first, None);
        let last = (end, u64::MAX, u64::MAX);
        for &(t, invoke, done) in c.oks.iter().chain(std::iter::once(&last)) {
            let gap = t.saturating_sub(prev.0);
            gaps.push(gap);
            if gap > stall.len {
                stall = Stall {
                    len: gap,
                    from: prev.1,
                    to: (invoke != u64::MAX).then_some((invoke, done)),
                };
            }
            prev = (t, Some((invoke, done)));
        }
        gaps.sort_unstable();
        let q = |p: f64| secs(gaps[((gaps.len() - 1) as f64 * p).round() as usize]);
        lines.push(format!(
            "{name}: stall p50 {} p90 {} p99 {} max {}",
            q(0.5),
            q(0.9),
            q(0.99),
            secs(stall.len)
        ));
        if worst.is_none_or(|(_, w)| stall.len > w) {
            worst = Some((name, stall.len));
        }
        if let Some(max) = options.max_stall_ns.filter(|m| stall.len > *m) {
            let mut ops: Vec<u64> = stall
                .from
                .into_iter()
                .chain(stall.to)
                .flat_map(|(i, d)| [i, d])
                .collect();
            if ops.is_empty() {
                // No ok op bounds the stall: the failures are the proof.
                ops = c.first_bad.clone();
            }
            let between = match (stall.from, stall.to) {
                (Some((a, _)), Some((b, _))) => format!("between ok ops {a} and {b}"),
                (None, Some((b, _))) => format!("before its first ok op {b}"),
                (Some((a, _)), None) => {
                    format!("after its last ok op {a}, to the end of the workload")
                }
                (None, None) => "for the whole workload: no op succeeded".into(),
            };
            found.violation(Anomaly::StallExceeded, &ops, || {
                format!(
                    "{name} made no progress for {} {between}, more than max_stall {}",
                    secs(stall.len),
                    secs(max)
                )
            });
        }
    }

    let mut per_fault = Vec::new();
    for f in faults {
        let mut impacts = Vec::new();
        for (name, c) in &clients {
            let active = c.oks.last().is_some_and(|o| o.0 >= f.start)
                || c.bad.last().is_some_and(|t| *t >= f.start);
            if !active {
                continue;
            }
            let first_ok = c
                .oks
                .get(c.oks.partition_point(|o| o.0 < f.heal))
                .map(|o| o.0);
            let upto = first_ok.unwrap_or(u64::MAX);
            let last_bad = c.bad[..c.bad.partition_point(|t| *t <= upto)]
                .last()
                .filter(|t| **t >= f.start);
            let recovered = match first_ok {
                Some(t) => format!("first ok after heal +{}", secs(t - f.start)),
                None => "no ok after heal".into(),
            };
            match last_bad {
                Some(t) => impacts.push(format!(
                    "{name} last failure +{}, {recovered}",
                    secs(t - f.start)
                )),
                None if first_ok.is_none() => impacts.push(format!("{name} {recovered}")),
                None => {}
            }
        }
        if !impacts.is_empty() {
            per_fault.push(format!("{}: {}", f.label(), impacts.join(", ")));
        }
    }

    let (wname, wlen) = worst.expect("a client");
    let mut summary = format!(
        "{} clients, longest stall {} ({wname})",
        clients.len(),
        secs(wlen)
    );
    if let Some(max) = options.max_stall_ns {
        summary.push_str(&format!(", max_stall {}", secs(max)));
    }
    found.note(cap(lines, "clients"));
    if !per_fault.is_empty() {
        found.note(cap(per_fault, "faults"));
    }
    if !idle.is_empty() {
        found.note(cap(idle, "faults"));
    }
    found.finish(NAME, summary)
}

fn cap(mut lines: Vec<String>, what: &str) -> String {
    const SHOWN: usize = 8;
    let more = lines.len().saturating_sub(SHOWN);
    lines.truncate(SHOWN);
    let mut text = lines.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more {what}"));
    }
    text
}
