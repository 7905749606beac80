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

use history::{OpType, Record};

use crate::compact::{oplock, Caps, FxMap, History, Sym, Val, F, NONE};
use crate::faults::{faults, Fault};
use crate::index::{Index, Op};
use crate::{secs, Anomaly, Checked, Findings, Validity};

pub const NAME: &str = "leases";

const SHARING_VIOLATION: &str = "STATUS_SHARING_VIOLATION";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// The server's oplock/lease break acknowledgement timeout (Samba, Windows: 35 s).
    pub break_timeout_ns: u64,
    /// A conflicting open that met an unacknowledged break waited at least this long.
    pub break_wait_ns: Option<u64>,
    pub clock_slack_ns: u64,
    pub breaks: BreakPolicy,
}

/// Whether the plan is about a break (`expect: breaks:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BreakPolicy {
    /// Judge whatever conflicting opens happen.
    #[default]
    Any,
    /// A conflicting open must meet a holder to break (the plan is about the break): none
    /// is a failure when the server granted no W/H lease or batch/exclusive oplock although
    /// asked, unknown when the conflicting open never happened.
    Required,
    /// Nothing is cached, so nothing is broken: a break is a failure.
    None,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            break_timeout_ns: 35_000_000_000,
            break_wait_ns: None,
            clock_slack_ns: 1_000_000_000,
            breaks: BreakPolicy::Any,
        }
    }
}

pub fn leases(history: &[Record], options: &LeaseOptions) -> Checked {
    let h = History::from_records(history);
    let index = Index::new(&h);
    let faults = faults(&index);
    check(&index, &faults, options)
}

/// A granted open that caches: from its `ok` until its close is invoked or its connection
/// is lost.
struct Holder {
    client: Sym,
    conn: Option<u64>,
    path: Sym,
    /// Lease key (NONE: an oplock, or nothing).
    lease: Sym,
    file_id: Sym,
    oplock: u8,
    start: u64,
    end: u64,
    index: u64,
}

/// Caching state over time; `Caps` for leases, the oplock level (in `Caps.0`) for oplocks.
#[derive(Default)]
struct Breaks {
    /// (time, state) as granted or broken to, in time order.
    states: Vec<(u64, Caps)>,
    /// (arrival time, record index).
    arrivals: Vec<(u64, u64)>,
    /// `lease_break_ack` ops: (invoke time, ok).
    acks: Vec<(u64, bool)>,
}

impl Breaks {
    fn state_at(&self, t: u64) -> Option<Caps> {
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
    let mut lease_breaks: FxMap<(Sym, Sym), Breaks> = FxMap::default();
    let mut oplock_breaks: FxMap<(Sym, Sym), Breaks> = FxMap::default();
    // Ends of holders: close invokes by (client, FileId), losses by (client, conn).
    let mut closes: FxMap<(Sym, Sym), Vec<u64>> = FxMap::default();
    let mut losses: FxMap<(Sym, u64), Vec<u64>> = FxMap::default();
    // (client, conn) → latest invoke of a request that ended ok: proof the connection was
    // alive (TCP delivers in order, so an earlier break would have arrived first).
    let mut alive: FxMap<(Sym, u64), u64> = FxMap::default();
    // Opens that asked for W/H caching (or a batch/exclusive oplock), and those granted less.
    let (mut asked_caching, mut refused_caching) = (0, Vec::new());
    let mut arrivals: Vec<u64> = Vec::new();

    for op in &index.ops {
        let client = op.client();
        if op.is_ok() {
            if let Some(conn) = op.conn() {
                let t = alive.entry((client, conn)).or_insert(0);
                *t = (*t).max(op.t0());
            }
        }
        match op.f() {
            F::Open | F::Reconnect => {
                if op.f() == F::Open {
                    opens.push(op);
                }
                let Some(done) = op.done.filter(|d| d.kind == OpType::Ok) else {
                    continue;
                };
                if let Val::OpenAsk { lease, oplock, .. } = op.invoke.v {
                    let asked = lease.has(Caps::W)
                        || lease.has(Caps::H)
                        || matches!(oplock, oplock::BATCH | oplock::EXCLUSIVE);
                    let state = done.lease.map(|l| l.state).unwrap_or_default();
                    let level = match done.v {
                        Val::OpenOk { oplock, .. } => oplock,
                        _ => oplock::NONE,
                    };
                    let got = state.has(Caps::W)
                        || state.has(Caps::H)
                        || matches!(level, oplock::BATCH | oplock::EXCLUSIVE);
                    if asked {
                        asked_caching += 1;
                        if !got {
                            refused_caching.push(op.index());
                        }
                    }
                }
                if let Some(l) = done.lease {
                    lease_breaks
                        .entry((client, l.key))
                        .or_default()
                        .states
                        .push((op.t1(), l.state));
                }
                let level = match done.v {
                    Val::OpenOk { oplock, .. } => oplock,
                    _ => oplock::NONE,
                };
                if done.file_id != NONE {
                    oplock_breaks
                        .entry((client, done.file_id))
                        .or_default()
                        .states
                        .push((op.t1(), Caps(level)));
                }
                holders.push(Holder {
                    client,
                    conn: op.conn(),
                    path: op.path(),
                    lease: done.lease.map_or(NONE, |l| l.key),
                    file_id: done.file_id,
                    oplock: level,
                    start: op.t1(),
                    end: u64::MAX,
                    index: done.index,
                });
            }
            F::Close if op.invoke.file_id != NONE => {
                closes
                    .entry((client, op.invoke.file_id))
                    .or_default()
                    .push(op.t0());
            }
            F::LeaseBreakAck => {
                if let Some(l) = op.invoke.lease {
                    lease_breaks
                        .entry((client, l.key))
                        .or_default()
                        .acks
                        .push((op.t0(), op.is_ok()));
                }
            }
            _ => {}
        }
    }
    for r in &index.events {
        match (r.f, &r.v) {
            (F::LeaseBreak, Val::LeaseBreak { new_state, .. }) => {
                let Some(l) = r.lease else { continue };
                arrivals.push(r.index);
                let b = lease_breaks.entry((r.client, l.key)).or_default();
                b.arrivals.push((r.time, r.index));
                b.states.push((r.time, new_state.unwrap_or_default()));
            }
            (F::OplockBreak, Val::OplockBreak { level }) if r.file_id != NONE => {
                arrivals.push(r.index);
                let b = oplock_breaks.entry((r.client, r.file_id)).or_default();
                b.arrivals.push((r.time, r.index));
                b.states.push((r.time, Caps(*level)));
            }
            (F::Disconnect, _) => {
                if let Some(conn) = r.conn() {
                    losses.entry((r.client, conn)).or_default().push(r.time);
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
        let close = if h.file_id == NONE {
            u64::MAX
        } else {
            first_after(closes.get(&(h.client, h.file_id)), h.start)
        };
        let loss = h.conn.map_or(u64::MAX, |c| {
            first_after(losses.get(&(h.client, c)), h.start)
        });
        h.end = close.min(loss);
    }

    // Sweep each path: opens by invoke time against the holders active then.
    let mut by_path: FxMap<Sym, Vec<usize>> = FxMap::default();
    for (i, h) in holders.iter().enumerate() {
        by_path.entry(h.path).or_default().push(i);
    }
    for hs in by_path.values_mut() {
        hs.sort_by_key(|&i| holders[i].start);
    }
    opens.sort_by_key(|op| op.t0());
    let mut next: FxMap<Sym, usize> = FxMap::default();
    let mut active: FxMap<Sym, Vec<usize>> = FxMap::default();
    let mut found = Findings::default();
    let (mut judged, mut acked, mut unacked) = (0, 0, 0);
    let mut delays: Vec<u64> = Vec::new();
    let slack = options.clock_slack_ns;
    let name = |s: Sym| index.name(s);
    for o in opens {
        let refused = o.end() == OpType::Fail && name(o.status()) == SHARING_VIOLATION;
        if !(o.is_ok() || refused) {
            continue;
        }
        let (path, client, t_i, t_c) = (o.path(), o.client(), o.t0(), o.t1());
        let Some(hs) = by_path.get(&path) else {
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
            let (breaks, needs) = if h.lease != NONE {
                let b = lease_breaks.get(&(h.client, h.lease));
                let state = b.and_then(|b| b.state_at(t_i)).unwrap_or_default();
                (b, state.has(Caps::W) || (refused && state.has(Caps::H)))
            } else {
                let b = if h.file_id == NONE {
                    None
                } else {
                    oplock_breaks.get(&(h.client, h.file_id))
                };
                let level = b.and_then(|b| b.state_at(t_i)).map_or(h.oplock, |c| c.0);
                (b, matches!(level, oplock::BATCH | oplock::EXCLUSIVE))
            };
            if !needs {
                continue;
            }
            let delay = t_c.saturating_sub(t_i);
            // A fault on the opener may delay it for reasons of its own; a fault on the holder
            // (blackholed, paused) is exactly what the break timeout bounds.
            let holder_node = name(h.client).split('/').next().unwrap_or_default();
            // A message fault aimed at the holder's connection (a dropped or held break) is a
            // fault on the holder, whatever server it names.
            let at_holder = |f: &crate::faults::Fault| {
                f.node == holder_node
                    || (f.kind == "message" && (f.peer == holder_node || f.peer.is_empty()))
            };
            let faulted = faults.iter().any(|f| f.overlaps(t_i, t_c) && !at_holder(f));
            // The holder's own path was cut (blackholed, partitioned, paused) while the open
            // waited: the server may give up on it (Samba: no TCP ACK within 6 x RTO), and the
            // break it had queued then reaches the holder only after the heal. That late
            // arrival is the give-up, not an open let through unbroken.
            let holder_cut = faults.iter().any(|f| {
                f.is_silent() && f.overlaps(t_i, t_c) && (at_holder(f) || f.node.is_empty())
            });
            let arrival = breaks.and_then(|b| b.first_arrival_from(t_i));
            let what = if h.lease != NONE { "lease" } else { "oplock" };
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
                Some(_) if holder_cut => {
                    judged += 1;
                    delays.push(delay);
                    unacked += 1;
                }
                Some((at, b)) => {
                    judged += 1;
                    if delay.saturating_add(slack) < options.break_timeout_ns {
                        cite.push(b);
                        found.violation(Anomaly::BreakLate, &cite, || {
                            format!(
                                "open {} of {} by {} completed {} after it was invoked, {} before the {what} break (record {b}) reached holder {} (open {})",
                                o.index(),
                                name(path),
                                name(client),
                                secs(delay),
                                secs(at - t_c),
                                name(h.client),
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
                    judged += 1;
                    // A break the wire kept from a live holder (a `message` fault) is the
                    // holder that never answers: only the delay is judged.
                    if !alive_after || holder_cut {
                        // The holder was unreachable or gone (no break got through, nothing
                        // proves its connection alive): the server gave up on it. Only the
                        // delay is judged, against the break timeout below.
                        delays.push(delay);
                        unacked += 1;
                    } else {
                        found.violation(Anomaly::BreakMissing, &cite, || {
                        format!(
                            "open {} of {} by {} completed and no {what} break ever reached holder {} (open {}), whose connection stayed alive",
                            o.index(),
                            name(path),
                            name(client),
                            name(h.client),
                            h.index
                        )
                        });
                    }
                }
            }
            if let Some((_, b)) = arrival {
                cite.push(b);
            }
            let unacknowledged =
                arrival.is_none_or(|(at, _)| !breaks.is_some_and(|b| b.acked_after(at)));
            if let Some(min) = options.break_wait_ns {
                if unacknowledged && delay.saturating_add(slack) < min && !faulted {
                    found.violation(Anomaly::BreakGivenUp, &cite, || {
                        format!(
                            "open {} of {} by {} completed {} after it was invoked, although holder {}'s {what} break was never acknowledged: the server gave up on the holder before the {} the plan expects it to wait",
                            o.index(),
                            name(path),
                            name(client),
                            secs(delay),
                            name(h.client),
                            secs(min)
                        )
                    });
                }
            }
            if delay > options.break_timeout_ns.saturating_add(slack) && !faulted {
                found.violation(Anomaly::BreakTimeoutExceeded, &cite, || {
                    format!(
                        "open {} of {} by {} waited {} for {}'s {what} break, longer than the {} break timeout",
                        o.index(),
                        name(path),
                        name(client),
                        secs(delay),
                        name(h.client),
                        secs(options.break_timeout_ns)
                    )
                });
            }
        }
    }
    match options.breaks {
        BreakPolicy::Any => {}
        BreakPolicy::Required if judged > 0 => found.precondition(
            "a conflicting open met a holder to break",
            Validity::True,
            &[],
            format!("{judged} judged"),
        ),
        BreakPolicy::Required => {
            let (held, detail) = if !refused_caching.is_empty() {
                (
                    Validity::False,
                    format!(
                        "the server granted no W/H lease or batch/exclusive oplock to {} of {asked_caching} opens that asked for one, so there was nothing to break",
                        refused_caching.len()
                    ),
                )
            } else if asked_caching == 0 {
                (
                    Validity::Unknown,
                    "no open asked for W/H caching or a batch/exclusive oplock".to_string(),
                )
            } else {
                (
                    Validity::Unknown,
                    "no other client's open happened while the lease or oplock was held"
                        .to_string(),
                )
            };
            let cite: Vec<u64> = refused_caching.iter().take(10).copied().collect();
            found.precondition(
                "a conflicting open met a holder to break",
                held,
                &cite,
                detail,
            );
        }
        BreakPolicy::None => {
            if judged > 0 || !arrivals.is_empty() {
                let cite: Vec<u64> = arrivals.iter().take(10).copied().collect();
                found.violation(Anomaly::BreakUnexpected, &cite, || {
                    format!(
                        "the plan expects nothing cached and nothing broken, and {} breaks arrived ({judged} conflicting opens met a holder to break)",
                        arrivals.len()
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
