//! `handle-resume`: durable (and persistent) handles across a lost connection.
//!
//! A handle whose `open` ok says `durable: true` is preserved by the server for `timeout_ms`
//! after its connection is lost. Then:
//! - a `reconnect` (DH2C/DHnC) within the timeout succeeds and keeps the persistent FileId
//!   and the lease (key and state);
//! - a `reconnect` after the timeout fails with the expected status
//!   (STATUS_OBJECT_NAME_NOT_FOUND);
//! - another client's `open` of the path while the handle is preserved is refused, or breaks
//!   the handle (which then cannot be reclaimed), as the plan expects;
//! - lease epochs (per lease key, from open/reconnect/lease_break) never go backwards.
//!
//! Clocks. The server starts the timeout when *it* notices the loss, which the history does
//! not show. It noticed after the last request it answered on that connection (`d_lo`: that
//! request's invoke), and by `d_hi`: when a reset destroyed its end of the connection, else
//! the client's `disconnect` record for a loud loss (RST/FIN); after a silent fault
//! (blackhole, partition, pause, impair) and no such reset it may notice much later (TCP
//! timeout, or the client's PreviousSessionId), and `d_hi` is unknown. So a refusal is judged
//! against `d_lo + timeout`, a late success against `d_hi + timeout`, each with the clock
//! slack; reconnects in between are not judged.

use history::{OpType, Record};

use crate::compact::{oplock, Caps, FxMap, History, LeaseC, Rec, Sym, Val, F, NONE};
use crate::faults::{faults, Fault};
use crate::index::{Index, Op, NO_OP};
use crate::{secs, Anomaly, Checked, Findings, Validity};

pub const NAME: &str = "handle-resume";

const SHARING_VIOLATION: &str = "STATUS_SHARING_VIOLATION";

/// Samba's DH2C/DHnC answer for a handle that is gone.
pub const OBJECT_NAME_NOT_FOUND: &str = "STATUS_OBJECT_NAME_NOT_FOUND";

/// What another client's open of a path with a preserved (disconnected) handle must do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Either, consistently: granted means the handle is broken and cannot be reclaimed.
    #[default]
    Either,
    /// The open fails (e.g. STATUS_SHARING_VIOLATION); the handle stays reclaimable.
    Refused,
    /// The open succeeds; the preserved handle is closed.
    Breaks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeOptions {
    /// A durable request answered with H caching (or a batch oplock) but no durable handle
    /// is a failure (`resume:` given in the plan); otherwise it is only reported.
    pub require_grant: bool,
    /// The plan expects handles reclaimed (`resume: reclaim`): a durable handle must have
    /// been granted, lost its connection and been reconnected, or the checker cannot pass.
    pub require_reclaim: bool,
    pub conflicting_open: ConflictPolicy,
    /// The status of a reconnect after the timeout.
    pub expired_status: String,
    /// Reconnects this close to the expiry are not judged.
    pub clock_slack_ns: u64,
}

impl Default for ResumeOptions {
    fn default() -> Self {
        ResumeOptions {
            require_grant: false,
            require_reclaim: false,
            conflicting_open: ConflictPolicy::Either,
            expired_status: OBJECT_NAME_NOT_FOUND.into(),
            clock_slack_ns: 1_000_000_000,
        }
    }
}

pub fn handle_resume(history: &[Record], options: &ResumeOptions) -> Checked {
    let h = History::from_records(history);
    let index = Index::new(&h);
    let faults = faults(&index);
    check(&index, &faults, options)
}

/// Durable v1 handles: 16 minutes (MS-SMB2 leaves it to the server; Samba's value).
const DURABLE_V1_TIMEOUT_MS: u64 = 16 * 60 * 1000;
/// Durable v2 asked with timeout 0: the server's default, 60 s in Samba and Windows.
const DURABLE_V2_DEFAULT_MS: u64 = 60 * 1000;

struct Handle {
    open: u64,
    client: Sym,
    path: Sym,
    /// Persistent half of the FileId.
    file_pid: Sym,
    lease_key: Sym,
    /// Granted oplock level (a durable handle without a lease holds a batch oplock).
    oplock: u8,
    timeout_ns: u64,
    conn: Option<u64>,
    closed: bool,
    episode: Option<Episode>,
}

/// One disconnection of a durable handle, until it is reclaimed.
struct Episode {
    /// The client's `disconnect` record: time and index.
    d: u64,
    disconnect: u64,
    /// Invoke time of the last request the server answered on the lost connection.
    d_lo: u64,
    /// When the server surely knew of the loss (`u64::MAX`: unknown, after a silent fault).
    d_hi: u64,
    /// First reconnect invoked in this episode.
    reclaim_started: u64,
    /// Another client's open that was granted (so the handle is broken).
    broken: Option<u64>,
    /// Another client's open of the path happened (the lease may have been broken).
    conflicted: bool,
    /// An `info` reconnect or conflicting open: the handle's fate is unknown.
    uncertain: bool,
    /// Reconnects within the timeout that failed, judged when the episode ends unreclaimed.
    refused: Vec<(u64, u64, Sym)>,
}

impl Episode {
    fn expire_lo(&self, timeout: u64) -> u64 {
        self.d_lo.saturating_add(timeout)
    }
    fn expire_hi(&self, timeout: u64) -> u64 {
        self.d_hi.saturating_add(timeout)
    }
}

/// A lease epoch observation: `[start, end]` is when the server can have set it.
struct Epoch {
    start: u64,
    end: u64,
    epoch: u16,
    index: u64,
}

#[derive(Default)]
struct LeaseTrack {
    state: Caps,
    /// Connected handles with this lease; an open when there are none starts a new lease
    /// (epochs start again).
    connected: u32,
    /// The connection of the latest open or reclaim with this lease.
    conn: Option<u64>,
    lifetimes: Vec<Vec<Epoch>>,
}

impl LeaseTrack {
    fn observe(&mut self, e: Epoch) {
        if e.epoch == 0 {
            // SMB 2.1 leases carry no epoch.
            return;
        }
        if self.lifetimes.is_empty() {
            self.lifetimes.push(Vec::new());
        }
        self.lifetimes.last_mut().expect("a lifetime").push(e);
    }
}

pub(crate) fn check(index: &Index, faults: &[Fault], options: &ResumeOptions) -> Checked {
    let mut s = State {
        index,
        options,
        faults,
        found: Findings::default(),
        handles: Vec::new(),
        by_open: FxMap::default(),
        by_file: FxMap::default(),
        by_path: FxMap::default(),
        leases: FxMap::default(),
        lease_by_file: FxMap::default(),
        alive: FxMap::default(),
        not_granted: 0,
        asked: 0,
        asked_answered: Vec::new(),
        episodes: 0,
        reclaims: 0,
        judged: 0,
        conflicts: 0,
    };
    // Records in history order: an op is seen at its invoke and at its completion.
    for (r, &op) in index.h.recs.iter().zip(&index.op_of) {
        if op == NO_OP {
            s.event(r);
            continue;
        }
        let op = &index.ops[op as usize];
        let completion = op.done.is_some_and(|d| std::ptr::eq(d, r));
        if completion {
            s.done(op);
        } else if matches!(op.f(), F::Close | F::Reconnect) {
            s.invoked(op);
        }
    }
    // Ops that never completed are judged as of the end of the history.
    for op in index.ops.iter().filter(|op| op.done.is_none()) {
        s.done(op);
    }
    s.finish()
}

struct State<'i, 'a, 'o> {
    index: &'i Index<'a>,
    options: &'o ResumeOptions,
    faults: &'o [Fault<'a>],
    found: Findings,
    handles: Vec<Handle>,
    /// Open invoke index → handle.
    by_open: FxMap<u64, usize>,
    /// (client, persistent FileId) → handle.
    by_file: FxMap<(Sym, Sym), usize>,
    /// Handles by path, for conflicting opens.
    by_path: FxMap<Sym, Vec<usize>>,
    leases: FxMap<(Sym, Sym), LeaseTrack>,
    /// (client, persistent FileId) → lease key, for every open with a lease.
    lease_by_file: FxMap<(Sym, Sym), Sym>,
    /// (client, conn) → invoke time of the last request the server answered.
    alive: FxMap<(Sym, u64), u64>,
    not_granted: usize,
    /// Opens that asked for a durable handle, and those the server answered (ok or status).
    asked: usize,
    asked_answered: Vec<u64>,
    /// Disconnections of a durable handle.
    episodes: usize,
    reclaims: usize,
    judged: usize,
    conflicts: usize,
}

impl State<'_, '_, '_> {
    fn invoked(&mut self, op: &Op) {
        let client = op.client();
        match op.f() {
            F::Close => {
                let fid = op.invoke.file_pid;
                if let Some(key) = self.lease_by_file.remove(&(client, fid)) {
                    let track = self.leases.entry((client, key)).or_default();
                    track.connected = track.connected.saturating_sub(1);
                }
                if let Some(&h) = self.by_file.get(&(client, fid)) {
                    let handle = &mut self.handles[h];
                    if handle.episode.is_none() {
                        handle.closed = true;
                    }
                }
            }
            F::Reconnect => {
                if let Some(h) = self.handle_of_reconnect(op) {
                    if let Some(ep) = &mut self.handles[h].episode {
                        ep.reclaim_started = ep.reclaim_started.min(op.t0());
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_of_reconnect(&self, op: &Op) -> Option<usize> {
        let by_open = match op.invoke.v {
            Val::Reconnect { open: Some(open) } => self.by_open.get(&open),
            _ => None,
        };
        by_open
            .or_else(|| self.by_file.get(&(op.client(), op.invoke.file_pid)))
            .copied()
    }

    fn done(&mut self, op: &Op) {
        if op.server_answered(self.index.h) {
            if let Some(conn) = op.conn() {
                let t = self.alive.entry((op.client(), conn)).or_insert(0);
                *t = (*t).max(op.t0());
            }
        }
        match op.f() {
            F::Open => self.open(op),
            F::Reconnect => self.reconnect(op),
            _ => {}
        }
    }

    fn open(&mut self, op: &Op) {
        let (client, path) = (op.client(), op.path());
        self.conflicting_open(op);
        if matches!(op.invoke.v, Val::OpenAsk { durable: true, .. }) {
            self.asked += 1;
            if op.server_answered(self.index.h) {
                self.asked_answered.push(op.index());
            }
        }
        let Some(done) = op.done.filter(|d| d.kind == OpType::Ok) else {
            return;
        };
        let lease = done.lease;
        if let Some(l) = lease {
            let track = self.leases.entry((client, l.key)).or_default();
            if track.connected == 0 || track.lifetimes.is_empty() {
                track.lifetimes.push(Vec::new());
            }
            track.connected += 1;
            track.conn = op.conn();
            track.state = l.state;
            track.observe(Epoch {
                start: op.t0(),
                end: op.t1(),
                epoch: l.epoch,
                index: done.index,
            });
        }
        let (asked, v1, asked_persistent) = match op.invoke.v {
            Val::OpenAsk {
                durable,
                v1,
                persistent,
                ..
            } => (durable, v1, persistent),
            _ => (false, false, false),
        };
        let (granted, timeout_ms, persistent, level) = match done.v {
            Val::OpenOk {
                durable,
                timeout_ms,
                persistent,
                oplock,
            } => (durable, timeout_ms, persistent, oplock),
            _ => (false, 0, false, oplock::NONE),
        };
        if (asked && !granted) || (asked_persistent && !persistent) {
            // Durability needs H caching or a batch oplock (MS-SMB2 3.3.5.9.6, 3.3.5.9.10):
            // without them a refusal is right.
            let grantable = lease.is_some_and(|l| l.state.has(Caps::H)) || level == oplock::BATCH;
            if grantable {
                self.not_granted += 1;
                if self.options.require_grant {
                    let what = if asked && !granted {
                        "a durable handle"
                    } else {
                        "a persistent handle"
                    };
                    let index = self.index;
                    let (c, p) = (index.name(client), index.name(path));
                    self.found
                        .violation(Anomaly::NotGranted, &op.indexes(), || {
                            format!(
                                "open {} of {p} by {c} asked for {what} and was not granted one",
                                op.index()
                            )
                        });
                }
            }
        }
        let fid = done.file_pid;
        if fid == NONE {
            return;
        }
        if let Some(l) = lease {
            self.lease_by_file.insert((client, fid), l.key);
        }
        if !granted {
            // Not durable: the handle is closed with its connection.
            self.by_file.remove(&(client, fid));
            return;
        }
        let timeout_ms = match timeout_ms {
            0 if v1 => DURABLE_V1_TIMEOUT_MS,
            0 => DURABLE_V2_DEFAULT_MS,
            t => t,
        };
        let h = self.handles.len();
        self.handles.push(Handle {
            open: op.index(),
            client,
            path,
            file_pid: fid,
            lease_key: lease.map_or(NONE, |l| l.key),
            oplock: level,
            timeout_ns: timeout_ms.saturating_mul(1_000_000),
            conn: op.conn(),
            closed: false,
            episode: None,
        });
        self.by_open.insert(op.index(), h);
        self.by_file.insert((client, fid), h);
        self.by_path.entry(path).or_default().push(h);
    }

    /// Another client's open while `path` has preserved handles.
    fn conflicting_open(&mut self, op: &Op) {
        let (client, path) = (op.client(), op.path());
        let Some(hs) = self.by_path.get(&path) else {
            return;
        };
        let slack = self.options.clock_slack_ns;
        let violation =
            op.end() == OpType::Fail && self.index.name(op.status()) == SHARING_VIOLATION;
        for &h in hs {
            let handle = &mut self.handles[h];
            let Some(ep) = &mut handle.episode else {
                continue;
            };
            if handle.client == client || handle.closed {
                continue;
            }
            ep.conflicted = true;
            // Another client's open breaks W caching (and batch/exclusive oplocks) always,
            // H caching only on a sharing violation (MS-FSA 2.1.5.1.2): without such a break
            // the preserved handle is not in its way. The open's share access is not in the
            // history, so only these are judged.
            let caps = match handle.lease_key {
                NONE => Caps::default(),
                key => self
                    .leases
                    .get(&(handle.client, key))
                    .map_or(Caps::default(), |t| t.state),
            };
            let breaks_it = caps.has(Caps::W)
                || matches!(handle.oplock, oplock::BATCH | oplock::EXCLUSIVE)
                || (violation && caps.has(Caps::H));
            if !breaks_it {
                continue;
            }
            // Judged only when surely disconnected at the server, surely not expired, and
            // not yet being reclaimed.
            let disconnected = op.t0() > ep.d_hi;
            let preserved = op.t1() < ep.expire_lo(handle.timeout_ns).saturating_sub(slack);
            if !disconnected || !preserved || op.t1() >= ep.reclaim_started {
                continue;
            }
            self.conflicts += 1;
            let (open, holder) = (handle.open, handle.client);
            let mut cite = op.indexes();
            cite.extend([open, ep.disconnect]);
            let names = |s: Sym| self.index.name(s);
            match op.end() {
                OpType::Ok => {
                    ep.broken = Some(op.index());
                    if self.options.conflicting_open == ConflictPolicy::Refused {
                        self.found.violation(Anomaly::ConflictingOpenGranted, &cite, || {
                            format!(
                                "open {} of {} by {} was granted while {}'s durable handle (open {open}) was preserved after disconnect {}",
                                op.index(),
                                names(path),
                                names(client),
                                names(holder),
                                ep.disconnect
                            )
                        });
                    }
                }
                OpType::Fail => {
                    if self.options.conflicting_open == ConflictPolicy::Breaks {
                        self.found.violation(Anomaly::ConflictingOpenRefused, &cite, || {
                            format!(
                                "open {} of {} by {} was refused ({}) instead of breaking {}'s preserved handle (open {open})",
                                op.index(),
                                names(path),
                                names(client),
                                names(op.status()),
                                names(holder)
                            )
                        });
                    }
                }
                _ => ep.uncertain = true,
            }
        }
    }

    fn reconnect(&mut self, op: &Op) {
        let Some(h) = self.handle_of_reconnect(op) else {
            return;
        };
        self.reclaims += 1;
        let slack = self.options.clock_slack_ns;
        let names = |s: Sym| self.index.name(s);
        let handle = &mut self.handles[h];
        let (client, path, open, timeout) = (
            names(handle.client),
            names(handle.path),
            handle.open,
            handle.timeout_ns,
        );
        let Some(ep) = &mut handle.episode else {
            return;
        };
        let (lo, hi) = (ep.expire_lo(timeout), ep.expire_hi(timeout));
        let mut cite = op.indexes();
        cite.extend([open, ep.disconnect]);
        match op.end() {
            OpType::Ok => {
                let done = op.done.expect("ok has a completion");
                self.judged += 1;
                if let Some(by) = ep.broken {
                    cite.push(by);
                    self.found.violation(Anomaly::ReclaimedAfterBreak, &cite, || {
                        format!(
                            "reconnect {} reclaimed {client}'s handle on {path} (open {open}) after open {by} by another client was granted",
                            op.index()
                        )
                    });
                }
                if hi != u64::MAX && op.t0() > hi.saturating_add(slack) {
                    self.found.violation(Anomaly::ReclaimedAfterExpiry, &cite, || {
                        format!(
                            "reconnect {} reclaimed {client}'s handle on {path} (open {open}) {} after disconnect {}, past its {} timeout",
                            op.index(),
                            secs(op.t0().saturating_sub(ep.d)),
                            ep.disconnect,
                            secs(timeout)
                        )
                    });
                }
                if done.file_pid != handle.file_pid {
                    let (got, old) = (names(done.file_pid), names(handle.file_pid));
                    self.found.violation(Anomaly::FileIdChanged, &cite, || {
                        format!(
                            "reconnect {} of {client}'s handle on {path} returned persistent FileId {got} instead of {old}",
                            op.index()
                        )
                    });
                }
                let conflicted = ep.conflicted;
                handle.episode = None;
                handle.conn = op.conn();
                self.reclaimed_lease(op, h, conflicted, &cite);
            }
            OpType::Fail => {
                if ep.broken.is_none() && !ep.uncertain && op.t1() < lo.saturating_sub(slack) {
                    ep.refused.push((op.index(), op.done_index(), op.status()));
                } else if ep.broken.is_some()
                    || (hi != u64::MAX && op.t0() > hi.saturating_add(slack))
                {
                    self.judged += 1;
                    let status = names(op.status());
                    if status != self.options.expired_status {
                        let want = &self.options.expired_status;
                        self.found.violation(Anomaly::WrongExpiryStatus, &cite, || {
                            format!(
                                "reconnect {} of {client}'s expired handle on {path} failed with {status}, expected {want}",
                                op.index()
                            )
                        });
                    }
                }
            }
            _ => ep.uncertain = true,
        }
    }

    /// A reclaim keeps the lease: same key, same state (or less, if another client's open
    /// may have broken it meanwhile), and its epoch does not go back.
    fn reclaimed_lease(&mut self, op: &Op, h: usize, conflicted: bool, cite: &[u64]) {
        let handle = &self.handles[h];
        let names = |s: Sym| self.index.name(s);
        let (client, path) = (names(handle.client), names(handle.path));
        let got: Option<LeaseC> = op.done.and_then(|d| d.lease);
        let key = handle.lease_key;
        if got.map_or(NONE, |l| l.key) != key {
            let (got, want) = (shown(names(got.map_or(NONE, |l| l.key))), shown(names(key)));
            self.found.violation(Anomaly::LeaseChanged, cite, || {
                format!(
                    "reconnect {} of {client}'s handle on {path} returned lease key {got} instead of {want}",
                    op.index()
                )
            });
            return;
        }
        let Some(got) = got else { return };
        let track = self.leases.entry((handle.client, key)).or_default();
        if got.state != track.state && !(conflicted && got.state.within(track.state)) {
            let expected = track.state;
            self.found.violation(Anomaly::LeaseChanged, cite, || {
                format!(
                    "reconnect {} of {client}'s handle on {path} returned lease state {:?} instead of {:?}",
                    op.index(),
                    got.state.to_string(),
                    expected.to_string()
                )
            });
        }
        track.state = got.state;
        track.connected += 1;
        track.conn = op.conn();
        track.observe(Epoch {
            start: op.t0(),
            end: op.t1(),
            epoch: got.epoch,
            index: op.done_index(),
        });
    }

    fn event(&mut self, r: &Rec) {
        match r.f {
            F::Disconnect => {
                let Some(conn) = r.conn() else { return };
                let client = r.client;
                let d_lo = self.alive.get(&(client, conn)).copied().unwrap_or(0);
                let node = self.index.name(r.node);
                let silent = self
                    .faults
                    .iter()
                    .any(|f| f.is_silent() && f.overlaps(d_lo, r.time));
                let reset = self
                    .faults
                    .iter()
                    .filter(|f| f.resets_server_end(node) && (d_lo..=r.time).contains(&f.started))
                    .map(|f| f.started)
                    .min();
                let d_hi = match (reset, silent) {
                    (Some(t), _) => t,
                    (None, false) => r.time,
                    (None, true) => u64::MAX,
                };
                for handle in &mut self.handles {
                    if handle.client != client
                        || handle.conn != Some(conn)
                        || handle.closed
                        || handle.episode.is_some()
                    {
                        continue;
                    }
                    self.episodes += 1;
                    handle.episode = Some(Episode {
                        d: r.time,
                        disconnect: r.index,
                        d_lo,
                        d_hi,
                        reclaim_started: u64::MAX,
                        broken: None,
                        conflicted: false,
                        uncertain: false,
                        refused: Vec::new(),
                    });
                }
                for ((c, _), track) in self.leases.iter_mut() {
                    if *c == client && track.conn == Some(conn) {
                        track.connected = 0;
                    }
                }
            }
            F::LeaseBreak => {
                let Some(l) = r.lease else { return };
                let track = self.leases.entry((r.client, l.key)).or_default();
                let Val::LeaseBreak { new_state, epoch } = r.v else {
                    return;
                };
                if let Some(new) = new_state {
                    track.state = new;
                }
                let epoch = epoch.unwrap_or(l.epoch);
                track.observe(Epoch {
                    start: r.time,
                    end: r.time,
                    epoch,
                    index: r.index,
                });
            }
            _ => {}
        }
    }

    fn finish(mut self) -> Checked {
        let handles = std::mem::take(&mut self.handles);
        for handle in &handles {
            let Some(ep) = &handle.episode else { continue };
            if ep.uncertain {
                continue;
            }
            for &(invoke, done, status) in &ep.refused {
                self.judged += 1;
                let names = |s: Sym| self.index.name(s);
                let (client, path, open) = (names(handle.client), names(handle.path), handle.open);
                let cite = [invoke, done, open, ep.disconnect];
                self.found.violation(Anomaly::ReclaimRefused, &cite, || {
                    format!(
                        "reconnect {invoke} of {client}'s durable handle on {path} (open {open}) failed with {} within its {} timeout after disconnect {}",
                        names(status),
                        secs(handle.timeout_ns),
                        ep.disconnect
                    )
                });
            }
        }
        let mut compared = 0;
        for track in self.leases.values() {
            for lifetime in &track.lifetimes {
                compared += lifetime.len();
                epochs_never_go_back(lifetime, &mut self.found);
            }
        }
        let durable = handles.len();
        if self.options.require_reclaim {
            self.reclaim_preconditions(durable);
        }
        let summary = if durable == 0 && self.not_granted == 0 && compared == 0 {
            "nothing to check: no durable handle granted and no lease epoch seen".to_string()
        } else {
            format!(
                "{durable} durable handles, {} reconnects ({} judged), {} conflicting opens judged, {compared} lease epochs compared",
                self.reclaims, self.judged, self.conflicts
            )
        };
        if self.not_granted > 0 && !self.options.require_grant {
            let n = self.not_granted;
            self.found.note(format!(
                "{n} durable requests granted H caching but no durable handle (not judged: no `resume` expectation)"
            ));
        }
        self.found.finish(NAME, summary)
    }
}

impl State<'_, '_, '_> {
    /// `resume: reclaim` means nothing unless a durable handle was granted, lost its
    /// connection and was reconnected.
    fn reclaim_preconditions(&mut self, durable: usize) {
        let cite: Vec<u64> = self.asked_answered.iter().take(10).copied().collect();
        let (what, held, detail) = if durable == 0 {
            let what = "a durable handle granted";
            if self.asked == 0 {
                (what, Validity::Unknown, "no open asked for one".to_string())
            } else if !self.asked_answered.is_empty() {
                (
                    what,
                    Validity::False,
                    format!(
                        "the server answered {} of {} opens that asked for one and granted none",
                        self.asked_answered.len(),
                        self.asked
                    ),
                )
            } else {
                (
                    what,
                    Validity::Unknown,
                    format!(
                        "none of the {} opens that asked for one completed",
                        self.asked
                    ),
                )
            }
        } else if self.episodes == 0 {
            (
                "a durable handle lost its connection",
                Validity::Unknown,
                format!("{durable} durable handles granted, none lost its connection: the fault did not land"),
            )
        } else if self.reclaims == 0 {
            (
                "a reconnect tried",
                Validity::Unknown,
                format!(
                    "{} disconnections of durable handles, no reconnect tried",
                    self.episodes
                ),
            )
        } else {
            (
                "a durable handle granted, disconnected and reconnected",
                Validity::True,
                format!(
                    "{durable} granted, {} disconnections, {} reconnects",
                    self.episodes, self.reclaims
                ),
            )
        };
        let cite = if held == Validity::False {
            cite
        } else {
            Vec::new()
        };
        self.found.precondition(what, held, &cite, detail);
    }
}

fn shown(name: &str) -> &str {
    if name.is_empty() {
        "none"
    } else {
        name
    }
}

/// Within one lease's lifetime, an epoch set after another completed is not smaller.
fn epochs_never_go_back(events: &[Epoch], found: &mut Findings) {
    let mut by_start: Vec<&Epoch> = events.iter().collect();
    by_start.sort_by_key(|e| e.start);
    let mut by_end: Vec<&Epoch> = events.iter().collect();
    by_end.sort_by_key(|e| e.end);
    let mut ended = 0;
    let mut max: Option<&Epoch> = None;
    for e in by_start {
        while ended < by_end.len() && by_end[ended].end < e.start {
            let a = by_end[ended];
            if max.is_none_or(|m| a.epoch > m.epoch) {
                max = Some(a);
            }
            ended += 1;
        }
        if let Some(m) = max.filter(|m| e.epoch < m.epoch) {
            found.violation(Anomaly::EpochRegressed, &[m.index, e.index], || {
                format!(
                    "lease epoch went back from {} (record {}) to {} (record {})",
                    m.epoch, m.index, e.epoch, e.index
                )
            });
        }
    }
}
