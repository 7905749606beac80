//! `leases`: breaks reach the holder before a conflicting open completes.
//!
//! While a client holds a lease with W (or H, for an open that ends in a sharing violation)
//! or a batch/exclusive oplock on a path, another client's open of that path must not
//! complete before a `lease_break` (`oplock_break`) reached the holder: the server breaks
//! first and answers the open after the acknowledgement, or after the break timeout when
//! none comes (MS-SMB2 3.3.4.7, 3.3.6.5). The delay the open saw is measured, and may not
//! exceed the break timeout (plus slack) unless a fault was in effect.
//!
//! The open's share access is not in the history, so only W caching and batch/exclusive
//! oplocks (broken by any other client's open) are judged on every open; H caching only
//! when the open failed with STATUS_SHARING_VIOLATION (H is broken only on a share conflict).

use std::collections::HashMap;

use history::{ops, OpType, Record};

use crate::faults::{faults, Fault};
use crate::index::{oplock, oplock_level, text, Index, Op};
use crate::{secs, Anomaly, Checked, Findings};

pub const NAME: &str = "leases";

const SHARING_VIOLATION: &str = "STATUS_SHARING_VIOLATION";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// The server's oplock/lease break acknowledgement timeout (Samba, Windows: 35 s).
    pub break_timeout_ns: u64,
    pub clock_slack_ns: u64,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            break_timeout_ns: 35_000_000_000,
            clock_slack_ns: 1_000_000_000,
        }
    }
}

pub fn leases(history: &[Record], options: &LeaseOptions) -> Checked {
    let index = Index::new(history);
    let faults = faults(&index);
    check(&index, &faults, options)
}

/// A granted open that caches: from its `ok` until its close is invoked or its connection
/// is lost.
struct Holder<'a> {
    client: &'a str,
    conn: Option<u64>,
    path: &'a str,
    lease: Option<&'a str>,
    file_id: Option<&'a str>,
    oplock: &'static str,
    start: u64,
    end: u64,
    index: u64,
}

/// Lease or oplock breaks that reached one client, and the caching state over time.
#[derive(Default)]
struct Breaks<'a> {
    /// (time, state) as granted or broken to, in time order.
    states: Vec<(u64, &'a str)>,
    /// (arrival time, record index).
    arrivals: Vec<(u64, u64)>,
    /// `lease_break_ack` ops: (invoke time, ok).
    acks: Vec<(u64, bool)>,
}

impl<'a> Breaks<'a> {
    fn state_at(&self, t: u64) -> Option<&'a str> {
        let i = self.states.partition_point(|(at, _)| *at <= t);
        i.checked_sub(1).map(|i| self.states[i].1)
    }

    fn first_arrival_from(&self, t: u64) -> Option<(u64, u64)> {
        let i = self.arrivals.partition_point(|(at, _)| *at < t);
        self.arrivals.get(i).copied()
    }

    fn acked_after(&self, t: u64) -> bool {
        let i = self.acks.partition_point(|(at, _)| *at < t);
        self.acks.get(i).is_some_and(|(_, ok)| *ok)
    }
}

pub(crate) fn check(index: &Index, faults: &[Fault], options: &LeaseOptions) -> Checked {
    let mut holders: Vec<Holder> = Vec::new();
    let mut opens: Vec<&Op> = Vec::new();
    let mut lease_breaks: HashMap<(&str, &str), Breaks> = HashMap::new();
    let mut oplock_breaks: HashMap<(&str, &str), Breaks> = HashMap::new();
    // Ends of holders: close invokes by (client, FileId), losses by (client, conn).
    let mut closes: HashMap<(&str, &str), Vec<u64>> = HashMap::new();
    let mut losses: HashMap<(&str, u64), Vec<u64>> = HashMap::new();
    // (client, conn) → latest invoke of a request that ended ok: proof the connection was
    // alive (TCP delivers in order, so an earlier break would have arrived first).
    let mut alive: HashMap<(&str, u64), u64> = HashMap::new();

    for op in &index.ops {
        let client = op.client().unwrap_or("");
        if op.is_ok() {
            if let Some(conn) = op.conn() {
                let t = alive.entry((client, conn)).or_insert(0);
                *t = (*t).max(op.t0());
            }
        }
        match op.f() {
            ops::OPEN | ops::RECONNECT => {
                if op.f() == ops::OPEN {
                    opens.push(op);
                }
                let Some(done) = op.done.filter(|d| d.kind == OpType::Ok) else {
                    continue;
                };
                let lease = done.smb.lease.as_ref();
                let file_id = done.smb.file_id.as_deref();
                if let Some(l) = lease {
                    lease_breaks
                        .entry((client, &l.key))
                        .or_default()
                        .states
                        .push((op.t1(), &l.state));
                }
                let oplock = if op.f() == ops::OPEN {
                    oplock_level(&done.value)
                } else {
                    "none"
                };
                if let Some(fid) = file_id {
                    oplock_breaks
                        .entry((client, fid))
                        .or_default()
                        .states
                        .push((op.t1(), oplock));
                }
                holders.push(Holder {
                    client,
                    conn: op.conn(),
                    path: op.path().unwrap_or(""),
                    lease: lease.map(|l| l.key.as_str()),
                    file_id,
                    oplock,
                    start: op.t1(),
                    end: u64::MAX,
                    index: done.index,
                });
            }
            ops::CLOSE => {
                if let Some(fid) = op.invoke.smb.file_id.as_deref() {
                    closes.entry((client, fid)).or_default().push(op.t0());
                }
            }
            ops::LEASE_BREAK_ACK => {
                if let Some(l) = &op.invoke.smb.lease {
                    lease_breaks
                        .entry((client, &l.key))
                        .or_default()
                        .acks
                        .push((op.t0(), op.is_ok()));
                }
            }
            _ => {}
        }
    }
    for r in &index.events {
        let client = r.smb.client.as_deref().unwrap_or("");
        match r.f.as_str() {
            ops::LEASE_BREAK => {
                let Some(l) = &r.smb.lease else { continue };
                let b = lease_breaks.entry((client, &l.key)).or_default();
                b.arrivals.push((r.time_ns, r.index));
                b.states
                    .push((r.time_ns, text(&r.value, "new_state").unwrap_or("")));
            }
            ops::OPLOCK_BREAK => {
                let Some(fid) = r.smb.file_id.as_deref() else {
                    continue;
                };
                let b = oplock_breaks.entry((client, fid)).or_default();
                b.arrivals.push((r.time_ns, r.index));
                b.states.push((r.time_ns, oplock(r.value.get("new_level"))));
            }
            ops::DISCONNECT => {
                if let Some(conn) = r.smb.conn {
                    losses.entry((client, conn)).or_default().push(r.time_ns);
                }
            }
            _ => {}
        }
    }
    for b in lease_breaks.values_mut().chain(oplock_breaks.values_mut()) {
        b.states.sort_by_key(|s| s.0);
        b.arrivals.sort_unstable();
        b.acks.sort_by_key(|a| a.0);
    }
    let first_after = |times: Option<&Vec<u64>>, t: u64| {
        times
            .and_then(|v| v.iter().copied().filter(|x| *x >= t).min())
            .unwrap_or(u64::MAX)
    };
    for h in &mut holders {
        let close = h
            .file_id
            .map(|f| first_after(closes.get(&(h.client, f)), h.start))
            .unwrap_or(u64::MAX);
        let loss = h
            .conn
            .map(|c| first_after(losses.get(&(h.client, c)), h.start))
            .unwrap_or(u64::MAX);
        h.end = close.min(loss);
    }

    // Sweep each path: opens by invoke time against the holders active then.
    let mut by_path: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, h) in holders.iter().enumerate() {
        by_path.entry(h.path).or_default().push(i);
    }
    for hs in by_path.values_mut() {
        hs.sort_by_key(|&i| holders[i].start);
    }
    opens.sort_by_key(|op| op.t0());
    let mut next: HashMap<&str, usize> = HashMap::new();
    let mut active: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut found = Findings::default();
    let (mut judged, mut acked, mut unacked) = (0, 0, 0);
    let mut delays: Vec<u64> = Vec::new();
    let slack = options.clock_slack_ns;
    for o in opens {
        let refused = o.end() == OpType::Fail && o.status() == Some(SHARING_VIOLATION);
        if !(o.is_ok() || refused) {
            continue;
        }
        let (path, client, t_i, t_c) = (
            o.path().unwrap_or(""),
            o.client().unwrap_or(""),
            o.t0(),
            o.t1(),
        );
        let Some(hs) = by_path.get(path) else {
            continue;
        };
        let n = next.entry(path).or_insert(0);
        let act = active.entry(path).or_default();
        while *n < hs.len() && holders[hs[*n]].start < t_i {
            act.push(hs[*n]);
            *n += 1;
        }
        act.retain(|&i| holders[i].end > t_i);
        for &i in act.iter() {
            let h = &holders[i];
            if h.client == client {
                continue;
            }
            let (breaks, needs) = match h.lease {
                Some(key) => {
                    let b = lease_breaks.get(&(h.client, key));
                    let state = b.and_then(|b| b.state_at(t_i)).unwrap_or("");
                    (b, state.contains('W') || (refused && state.contains('H')))
                }
                None => {
                    let b = h.file_id.and_then(|f| oplock_breaks.get(&(h.client, f)));
                    let level = b.and_then(|b| b.state_at(t_i)).unwrap_or(h.oplock);
                    (b, matches!(level, "batch" | "exclusive"))
                }
            };
            if !needs {
                continue;
            }
            let delay = t_c.saturating_sub(t_i);
            let faulted = faults.iter().any(|f| f.overlaps(t_i, t_c));
            let arrival = breaks.and_then(|b| b.first_arrival_from(t_i));
            let what = || match h.lease {
                Some(_) => "lease",
                None => "oplock",
            };
            let mut cite = o.indexes();
            cite.push(h.index);
            match arrival {
                Some((at, _)) if at < t_c => {
                    judged += 1;
                    delays.push(delay);
                    if breaks.is_some_and(|b| b.acked_after(at)) {
                        acked += 1;
                    } else {
                        unacked += 1;
                    }
                }
                _ if h.end <= t_c => continue,
                Some((at, b)) => {
                    judged += 1;
                    if delay.saturating_add(slack) < options.break_timeout_ns {
                        cite.push(b);
                        found.violation(Anomaly::BreakLate, &cite, || {
                            format!(
                                "open {} of {path} by {client} completed {} after it was invoked, {} before the {} break (record {b}) reached holder {} (open {})",
                                o.index(),
                                secs(delay),
                                secs(at - t_c),
                                what(),
                                h.client,
                                h.index
                            )
                        });
                    }
                }
                None => {
                    let alive_after = h
                        .conn
                        .and_then(|c| alive.get(&(h.client, c)))
                        .is_some_and(|&t| t > t_c);
                    if !alive_after {
                        continue;
                    }
                    judged += 1;
                    found.violation(Anomaly::BreakMissing, &cite, || {
                        format!(
                            "open {} of {path} by {client} completed and no {} break ever reached holder {} (open {}), whose connection stayed alive",
                            o.index(),
                            what(),
                            h.client,
                            h.index
                        )
                    });
                }
            }
            if let Some((_, b)) = arrival {
                cite.push(b);
            }
            if delay > options.break_timeout_ns.saturating_add(slack) && !faulted {
                found.violation(Anomaly::BreakTimeoutExceeded, &cite, || {
                    format!(
                        "open {} of {path} by {client} waited {} for {}'s {} break, longer than the {} break timeout",
                        o.index(),
                        secs(delay),
                        h.client,
                        what(),
                        secs(options.break_timeout_ns)
                    )
                });
            }
        }
    }
    let summary = if judged == 0 {
        "nothing to check: no open by another client while a W/H lease or batch/exclusive oplock was held".to_string()
    } else {
        delays.sort_unstable();
        let pick = |q: f64| {
            delays
                .get(((delays.len() as f64 - 1.0) * q).round() as usize)
                .map_or("-".into(), |d| secs(*d))
        };
        format!(
            "{judged} conflicting opens judged; break delays (open invoke → completion) p50 {} p99 {} max {} over {} breaks ({acked} acknowledged, {unacked} not)",
            pick(0.5),
            pick(0.99),
            pick(1.0),
            delays.len()
        )
    };
    found.finish(NAME, summary)
}
