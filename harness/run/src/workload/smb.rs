//! SMB workload clients, driven by our wire client. Each logical client has its own ClientGuid
//! and connection, draws operations from the plan's mix with a seeded RNG, records every one
//! (invoke, then ok / fail / info) and, when resilient, recovers from a lost connection the
//! way a real client does: reconnect with backoff, session reconnect with PreviousSessionId,
//! reclaim the durable handle (DH2C/DHnC). Nothing here retries a request on its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use history::ops;
use history::ops::Op;
use history::value::{
    Disconnect, Durable, Empty, LeaseBreak, LeaseBreakAck, LeaseState, LockInvoke, OpenInvoke,
    OpenOk, OplockLevel, PhaseStart, ReadInvoke, ReadOk, ReconnectInvoke, WriteInvoke, WriteOk,
};
use history::Value;
use history::{Entry, HistoryWriter, Lease, OpType, Process, Smb};
use lab::Lab;
use plan::{DialectChoice, DurableKind, FileSharing, OplockChoice, Recovery, SmbClients};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smb2::wire::close::CloseRequest;
use smb2::wire::create::oplock_level;
use smb2::wire::create_contexts::{
    SMB2_LEASE_HANDLE_CACHING, SMB2_LEASE_READ_CACHING, SMB2_LEASE_WRITE_CACHING,
};
use smb2::wire::flush::FlushRequest;
use smb2::wire::lock::{
    LockElement, LockRequest, SMB2_LOCKFLAG_EXCLUSIVE_LOCK, SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
    SMB2_LOCKFLAG_UNLOCK,
};
use smb2::wire::negotiate::capabilities::SMB2_GLOBAL_CAP_MULTI_CHANNEL;
use smb2::wire::read::ReadRequest;
use smb2::wire::write::WriteRequest;
use smb2::wire::RequestBody;
use smb2::{
    default_negotiate_request, multichannel_negotiate_request, query_network_interfaces,
    ChannelConstraint, ChannelSetup, Connection, CreateContext, CreateRequest, Credentials,
    Dialect, Event, FileId, Guid, MultiChannel, NtStatus, RequestOptions, Response,
    SessionSetupOptions, Spread, Tree,
};
use tokio::time::Instant;

use crate::events::{Event as RunEvent, Events};
use crate::generator::{Intent, Phases, Slots};

const WRITE_THROUGH: u32 = 0x0000_0001;
/// Backoff between reconnect attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

/// One logical client of a `workload.clients` entry.
struct Spec<'a> {
    name: String,
    node: &'a str,
    entry: &'a SmbClients,
    path: String,
    /// Process number; a client whose op ended `info` continues as `process + stride`.
    process: u64,
    stride: u64,
    seed: u64,
}

/// Every file the plan's SMB clients work on, by server and share.
pub fn files(plan: &plan::Plan) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for spec in specs(plan) {
        let f = (
            spec.entry.server.value.clone(),
            spec.entry.share.value.clone(),
            spec.path.clone(),
        );
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn specs(plan: &plan::Plan) -> Vec<Spec<'_>> {
    let first = plan.workload.steps.len() as u64;
    let total: u64 = plan.workload.clients.iter().map(|c| c.count as u64).sum();
    let mut out = Vec::new();
    for entry in &plan.workload.clients {
        for i in 0..entry.count {
            let name = format!("{}/{}", entry.node.value, out.len());
            let path = match entry.files {
                FileSharing::PerClient => format!("{}-{}.dat", entry.node.value, out.len()),
                FileSharing::Shared => "shared.dat".to_string(),
            };
            let process = first + out.len() as u64;
            let seed = plan.seed ^ (process + 1).wrapping_mul(0x2545_f491_4f6c_dd1d) ^ u64::from(i);
            out.push(Spec {
                name,
                node: &entry.node.value,
                entry,
                path,
                process,
                stride: total,
                seed,
            });
        }
    }
    out
}

pub async fn run_clients(
    lab: &Lab,
    plan: &plan::Plan,
    history: &Arc<HistoryWriter>,
    events: &Events,
) -> std::io::Result<()> {
    let Some(duration) = &plan.workload.duration else {
        return Ok(());
    };
    if plan.workload.clients.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let deadline = start + duration.value.as_duration();
    let specs = specs(plan);
    let runs = specs.iter().map(|spec| async move {
        let generator = Phases::from_plan(&plan.workload, spec.entry, start);
        let mut client = Client::new(lab, spec, history, events);
        if !spec.entry.witness.value {
            return client.run(generator, deadline).await;
        }
        let (link, watcher) = super::witness::pair(
            lab,
            history,
            spec.process,
            spec.node,
            spec.name.clone(),
            &spec.entry.server.value,
            spec.entry.share.value.clone(),
        );
        client.witness = Some(link);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let run = async move {
            let r = client.run(generator, deadline).await;
            let _ = stop_tx.send(true);
            r
        };
        let (r, ()) = futures::join!(run, watcher.run(stop_rx));
        r
    });
    let (results, phases) = futures::join!(
        futures::future::join_all(runs),
        record_phases(&plan.workload, start, history)
    );
    for result in results {
        result?;
    }
    phases
}

/// A `phase` record as each of the workload's phases begins (none without `phases`).
async fn record_phases(
    workload: &plan::Workload,
    start: Instant,
    history: &HistoryWriter,
) -> std::io::Result<()> {
    let mut at = start;
    for (i, phase) in workload.phases.iter().enumerate() {
        tokio::time::sleep_until(at).await;
        let length = phase.value.length.map(|l| l.as_duration());
        history.append(Entry {
            process: Process::Named(ops::GENERATOR_PROCESS.into()),
            kind: OpType::Info,
            f: Op::Phase.into(),
            value: PhaseStart {
                phase: i as u64,
                for_ms: length.map(|l| l.as_millis() as u64),
            }
            .into(),
            ..Entry::default()
        })?;
        match length {
            Some(l) => at += l,
            None => break,
        }
    }
    Ok(())
}

fn dialects(max: DialectChoice) -> Vec<Dialect> {
    let all = [
        (DialectChoice::Smb202, Dialect::SMB2_0_2),
        (DialectChoice::Smb21, Dialect::SMB2_1),
        (DialectChoice::Smb30, Dialect::SMB3_0),
        (DialectChoice::Smb302, Dialect::SMB3_0_2),
        (DialectChoice::Smb311, Dialect::SMB3_1_1),
    ];
    let upto = all
        .iter()
        .position(|(c, _)| *c == max)
        .unwrap_or(all.len() - 1);
    all[..=upto].iter().map(|(_, d)| *d).collect()
}

fn lease_bits(letters: &str) -> u32 {
    letters.chars().fold(0, |acc, c| {
        acc | match c {
            'R' => SMB2_LEASE_READ_CACHING,
            'W' => SMB2_LEASE_WRITE_CACHING,
            'H' => SMB2_LEASE_HANDLE_CACHING,
            _ => 0,
        }
    })
}

/// Lease state bits (SMB2_LEASE_*_CACHING) as the history types them.
fn lease_state(bits: u32) -> LeaseState {
    let mut s = LeaseState(0);
    for (bit, b) in [
        (SMB2_LEASE_READ_CACHING, LeaseState::R),
        (SMB2_LEASE_WRITE_CACHING, LeaseState::W),
        (SMB2_LEASE_HANDLE_CACHING, LeaseState::H),
    ] {
        if bits & bit != 0 {
            s.0 |= b;
        }
    }
    s
}

pub fn lease_letters(bits: u32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (SMB2_LEASE_READ_CACHING, 'R'),
        (SMB2_LEASE_WRITE_CACHING, 'W'),
        (SMB2_LEASE_HANDLE_CACHING, 'H'),
    ] {
        if bits & bit != 0 {
            s.push(c);
        }
    }
    s
}

pub fn file_id_text(id: FileId) -> String {
    format!("{:016x}:{:016x}", id.persistent, id.volatile)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How an error ends an op, and whether the connection is gone (or must be given up).
fn classify(e: &smb2::Error) -> (OpType, String, bool) {
    match e {
        smb2::Error::Status { status, .. } => (OpType::Fail, status.to_string(), false),
        // Nothing reached the server: the op did not happen.
        _ if e.not_sent() => (OpType::Fail, e.to_string(), true),
        // Timeouts and drops: the server may or may not have acted.
        _ => (OpType::Info, e.to_string(), true),
    }
}

/// How long a resilient client keeps retrying a reclaim refused as "not found" (the race of
/// README Finding 3 lasts tens of ms; a refusal after a node crash lasts for ever).
const RECLAIM_WINDOW: Duration = Duration::from_secs(1);

enum Reclaim {
    Done,
    /// The connection dropped again.
    Lost,
    /// STATUS_OBJECT_NAME_NOT_FOUND: gone, or not released by the old connection yet.
    NotFound,
    Refused,
    NoHandle,
}

/// Where a client stands. MS-SMB2 clients recover in this order: a new connection (NEGOTIATE,
/// SESSION_SETUP with PreviousSessionId, TREE_CONNECT), then the durable handle reclaimed
/// (DH2C/DHnC) or the file opened again, and only then I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No connection: connect next.
    Disconnected,
    /// A connection attempt or an open failed: wait (doubling, capped), then connect.
    BackingOff,
    /// Connected with a session and a tree: reclaim the durable handle, or open.
    Connected,
    /// An open handle: issue the plan's ops.
    Open,
    /// Given up (a bare client lost its connection) or done.
    Stopped,
}

/// What was in flight when a connection dropped, for a replaying client to send again.
#[derive(Clone)]
enum InFlight {
    Write {
        id: u64,
        offset: u64,
        len: u64,
        write_through: bool,
    },
    Open {
        create_guid: Guid,
        index: u64,
    },
}

/// A live connection: negotiated, with a session and a tree.
struct Channel {
    conn: Connection,
    tree: Tree,
    /// With `multichannel`: the session over every channel bound (the first is `conn`);
    /// reads, writes and flushes go through it.
    mc: Option<MultiChannel>,
    session_id: u64,
    no: u64,
    dialect: Dialect,
    /// The node that accepted the connection.
    served_by: Option<String>,
}

/// Where a read, write or flush goes: the one tree, or a multichannel session.
#[derive(Clone)]
enum Via {
    Tree(Tree),
    Multi(MultiChannel),
}

impl Via {
    async fn request<B: RequestBody>(
        &self,
        body: &B,
        opts: &RequestOptions,
    ) -> smb2::Result<Response<B::Response>> {
        match self {
            Via::Tree(t) => t.request(body, opts).await,
            Via::Multi(m) => m.request(body, opts).await,
        }
    }
}

/// The client's open handle.
#[derive(Clone)]
struct Handle {
    file_id: FileId,
    create_guid: Guid,
    lease_epoch: u16,
    durable: bool,
    /// History index of the open's invoke.
    open: u64,
}

struct Client<'a> {
    lab: &'a Lab,
    spec: &'a Spec<'a>,
    history: &'a HistoryWriter,
    /// The same writer, for the notification watcher task.
    shared_history: Arc<HistoryWriter>,
    events: &'a Events,
    rng: ChaCha8Rng,
    client_guid: Guid,
    process: u64,
    channel: Option<Channel>,
    conn_count: u64,
    previous_session: u64,
    handle: Option<Handle>,
    lease_key: [u8; 16],
    breaks: tokio::sync::mpsc::UnboundedReceiver<BreakSeen>,
    breaks_tx: tokio::sync::mpsc::UnboundedSender<BreakSeen>,
    /// Slots (offset / write_size) readable from the local cache, with the decoded runs they
    /// hold (recorded with every cached read, so a stale cache is judged); empty without
    /// read caching.
    cached: std::collections::HashMap<u64, Vec<[i64; 3]>>,
    /// Whether the current handle may cache reads (R lease, or level II or stronger oplock).
    may_cache: bool,
    /// The op whose outcome a dropped connection left unknown (replayed if the plan says so).
    in_flight: Option<InFlight>,
    /// Until when a reclaim refused as "not found" is tried again.
    reclaim_until: Option<Instant>,
    /// ChannelSequence (3.x): incremented with every new connection, as MS-SMB2 clients do
    /// when they resend after a failover.
    channel_sequence: u16,
    /// `witness: true`: where the witness says to connect, and the connection it may drop.
    witness: Option<super::witness::WitnessLink>,
}

/// A break notification, kept until the client loop acknowledges it.
struct BreakSeen {
    lease_key: [u8; 16],
    new_state: u32,
    ack_required: bool,
}

impl<'a> Client<'a> {
    fn new(
        lab: &'a Lab,
        spec: &'a Spec<'a>,
        history: &'a Arc<HistoryWriter>,
        events: &'a Events,
    ) -> Client<'a> {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let client_guid = Guid(rng.random());
        let lease_key = rng.random();
        let (breaks_tx, breaks) = tokio::sync::mpsc::unbounded_channel();
        Client {
            lab,
            spec,
            history,
            shared_history: history.clone(),
            events,
            rng,
            client_guid,
            process: spec.process,
            channel: None,
            conn_count: 0,
            previous_session: 0,
            handle: None,
            lease_key,
            breaks,
            breaks_tx,
            cached: Default::default(),
            may_cache: false,
            in_flight: None,
            reclaim_until: None,
            channel_sequence: 0,
            witness: None,
        }
    }

    fn smb(&self) -> Smb {
        Smb {
            client: Some(self.spec.name.clone()),
            conn: self.channel.as_ref().map(|c| c.no),
            served_by: self.channel.as_ref().and_then(|c| c.served_by.clone()),
            session_id: self.channel.as_ref().map(|c| c.session_id),
            tree_id: self.channel.as_ref().map(|c| c.tree.id()),
            path: Some(self.spec.path.clone()),
            file_id: self.handle.as_ref().map(|h| file_id_text(h.file_id)),
            ..Default::default()
        }
    }

    fn record(
        &self,
        kind: OpType,
        f: Op,
        value: Value,
        status: Option<String>,
        smb: Smb,
    ) -> std::io::Result<u64> {
        self.history.append(Entry {
            process: Process::Worker(self.process),
            kind,
            f: f.into(),
            node: Some(self.spec.node.to_string()),
            value,
            status,
            smb,
        })
    }

    fn options(&self) -> RequestOptions {
        RequestOptions {
            timeout: Some(self.spec.entry.request_timeout.as_duration()),
            channel_sequence: self.channel_sequence,
            ..RequestOptions::default()
        }
    }

    /// The client's life as an explicit state machine (see [`State`]), until `deadline`.
    async fn run(mut self, mut generator: Phases, deadline: Instant) -> std::io::Result<()> {
        let bare = self.spec.entry.on_disconnect == Recovery::Bare;
        if let Some(start) = &self.spec.entry.start {
            tokio::time::sleep(start.as_duration()).await;
        }
        let mut backoff = BACKOFF.0;
        let mut state = State::Disconnected;
        while state != State::Stopped && Instant::now() < deadline {
            // A bare client stops at its first lost connection; a resilient one backs off.
            let retry = |client: &Self| {
                if bare && client.conn_count > 0 {
                    State::Stopped
                } else {
                    State::BackingOff
                }
            };
            state = match state {
                State::Disconnected => match self.connect().await {
                    Ok(channel) => {
                        if self.previous_session != 0 {
                            self.channel_sequence = self.channel_sequence.wrapping_add(1);
                        }
                        self.previous_session = channel.session_id;
                        self.channel = Some(channel);
                        State::Connected
                    }
                    Err(e) => {
                        tracing::debug!(client = %self.spec.name, "connect: {e}");
                        retry(&self)
                    }
                },
                State::BackingOff => {
                    tokio::time::sleep(
                        backoff.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                    State::Disconnected
                }
                State::Connected => {
                    if self.reclaim_or_open().await? {
                        backoff = BACKOFF.0;
                        self.replay_in_flight().await?
                    } else {
                        self.lose_connection("open failed").await?;
                        retry(&self)
                    }
                }
                State::Open => {
                    self.ack_breaks().await?;
                    let lost = self.one_op(&mut generator).await?;
                    generator.wait(deadline).await;
                    if lost {
                        self.lose_connection("request failed").await?;
                        if bare {
                            State::Stopped
                        } else {
                            State::Disconnected
                        }
                    } else {
                        State::Open
                    }
                }
                State::Stopped => State::Stopped,
            };
        }
        if let (Some(ch), Some(h)) = (&self.channel, &self.handle) {
            let _ = ch
                .tree
                .request(
                    &CloseRequest {
                        flags: 0,
                        file_id: h.file_id,
                    },
                    &self.options(),
                )
                .await;
        }
        Ok(())
    }

    /// Just recovered: resend the write a lost connection left in flight, if the plan replays
    /// (a create in flight was replayed by the open itself). The state that follows.
    async fn replay_in_flight(&mut self) -> std::io::Result<State> {
        if let Some(InFlight::Write {
            id,
            offset,
            len,
            write_through,
        }) = self.in_flight.take()
        {
            if self.spec.entry.replay && self.replay_write(id, offset, len, write_through).await? {
                self.lose_connection("replay failed").await?;
                return Ok(State::Disconnected);
            }
        }
        Ok(State::Open)
    }

    async fn connect(&mut self) -> Result<Channel, String> {
        let entry = self.spec.entry;
        // A cluster's clients spread over its public addresses as DNS round-robin would.
        let mut address = self.lab.service_address_from(
            self.spec.node,
            &entry.server.value,
            self.spec.process as usize,
            entry.via.as_ref().map(|v| v.value),
        );
        let constraint = self.constraint();
        if let Some(c) = &constraint {
            if !c.allows(address.into()) {
                // The first channel is bound by the constraint too: the server's address on
                // the first network the client may use.
                let first = c.networks.first().map(|n| n.address);
                if let Some(a) = self.lab.networks().iter().find_map(|n| {
                    let inside = first.is_some_and(|f| {
                        n.cidr()
                            .parse::<smb2::Network>()
                            .is_ok_and(|m| m.contains(f))
                    });
                    inside
                        .then(|| self.lab.address_on(&entry.server.value, &n.name))
                        .flatten()
                }) {
                    address = a;
                }
            }
        }
        // A client the witness moved stays where it was told.
        let address = self
            .witness
            .as_ref()
            .and_then(|w| w.home())
            .unwrap_or(address);
        let connect = self
            .lab
            .connect(self.spec.node, SocketAddr::from((address, 445)));
        let stream = tokio::time::timeout(entry.request_timeout.as_duration(), connect)
            .await
            .map_err(|_| "TCP connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let local = stream.local_addr().ok();
        let (conn, events) = Connection::new(stream);
        self.conn_count += 1;
        let no = self.conn_count;
        let opts = self.options();
        let mut request =
            default_negotiate_request(&dialects(entry.dialect), self.client_guid, false);
        if constraint.is_some() {
            request = multichannel_negotiate_request(request);
        }
        let negotiated = conn
            .negotiate(&request, &opts)
            .await
            .map_err(|e| e.to_string())?;
        let negotiated = negotiated.ok().map_err(|e| e.to_string())?;
        let (user, password) = self.lab.credentials();
        let mut setup = SessionSetupOptions::new(Credentials::new(user, password));
        setup.previous_session_id = self.previous_session;
        setup.request = opts.clone();
        let session = conn
            .session_setup(&setup)
            .await
            .map_err(|e| e.to_string())?;
        let tree = session
            .tree_connect(&format!(r"\\{address}\{}", entry.share.value))
            .await
            .map_err(|e| e.to_string())?;
        self.watch(events, no);
        // A server that offers no multichannel gets one channel, as real clients do.
        let offered = negotiated.capabilities & SMB2_GLOBAL_CAP_MULTI_CHANNEL != 0;
        let mc = match &constraint {
            Some(c) if offered => Some(
                self.bind_channels(&tree, address, c, &request, &opts, no)
                    .await?,
            ),
            Some(_) => {
                tracing::debug!(client = %self.spec.name, "the server offers no multichannel");
                None
            }
            None => None,
        };
        if let Some(w) = &self.witness {
            w.connected(address, conn.clone());
        }
        let served_by = match local {
            Some(local) => self.lab.serving_node(&entry.server.value, local).await,
            None => None,
        };
        Ok(Channel {
            served_by,
            mc,
            conn,
            session_id: session.id(),
            tree,
            no,
            dialect: negotiated.dialect_revision,
        })
    }

    /// With `multichannel`: the server addresses channels may use, from the plan's networks
    /// (its `networks`, else every network the client node and the server share).
    fn constraint(&self) -> Option<ChannelConstraint> {
        let mc = self.spec.entry.multichannel.as_ref()?;
        let names: Vec<String> = if mc.value.networks.is_empty() {
            self.lab
                .shared_networks(self.spec.node, &self.spec.entry.server.value)
        } else {
            mc.value.networks.iter().map(|n| n.value.clone()).collect()
        };
        let networks = names
            .iter()
            .filter_map(|name| self.lab.networks().iter().find(|n| &n.name == name))
            .filter_map(|n| n.cidr().parse().ok())
            .collect();
        Some(ChannelConstraint { networks })
    }

    /// Asks the server for its interfaces and binds one further channel per address the
    /// constraint allows (up to `channels` in all), each NEGOTIATEd like the first.
    async fn bind_channels(
        &self,
        tree: &Tree,
        address: std::net::Ipv4Addr,
        constraint: &ChannelConstraint,
        negotiate: &smb2::wire::negotiate::NegotiateRequest,
        opts: &RequestOptions,
        no: u64,
    ) -> Result<MultiChannel, String> {
        let entry = self.spec.entry;
        let interfaces = query_network_interfaces(tree)
            .await
            .map_err(|e| format!("FSCTL_QUERY_NETWORK_INTERFACE_INFO: {e}"))?;
        let mc = MultiChannel::new(tree.clone(), (address, 445).into(), Spread::RoundRobin);
        let (user, password) = self.lab.credentials();
        let credentials = Credentials::new(user, password);
        let channels = entry
            .multichannel
            .as_ref()
            .and_then(|m| m.value.channels.as_ref())
            .map_or(usize::MAX, |c| c.value as usize);
        let timeout = opts.timeout.unwrap_or(Duration::from_secs(5));
        let (lab, node) = (self.lab, self.spec.node);
        let connect = |a: SocketAddr| async move {
            match tokio::time::timeout(timeout, lab.connect(node, a)).await {
                Ok(r) => r.map_err(std::io::Error::other),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "TCP connect timed out",
                )),
            }
        };
        let events = mc
            .add_channels(
                &interfaces,
                &ChannelSetup {
                    channels,
                    constraint,
                    port: 445,
                    negotiate,
                    credentials: &credentials,
                },
                connect,
            )
            .await
            .map_err(|e| format!("binding a channel: {e}"))?;
        for ev in events {
            self.watch(ev, no);
        }
        tracing::debug!(client = %self.spec.name, channels = ?mc.report(), "multichannel");
        Ok(mc)
    }

    /// Record break notifications when they arrive (the leases checker compares that time with
    /// conflicting opens); the client loop acknowledges them between operations.
    fn watch(&self, mut events: smb2::Events, conn: u64) {
        let tx = self.breaks_tx.clone();
        let history = self.shared_history.clone();
        let (process, node) = (self.process, self.spec.node.to_string());
        let smb = Smb {
            conn: Some(conn),
            ..self.smb()
        };
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Event::Break {
                    notification: Ok(smb2::wire::oplock_break::BreakNotification::Lease(n)),
                    ..
                } = event
                else {
                    continue;
                };
                let lease = Lease {
                    key: hex(&n.lease_key),
                    state: lease_letters(n.current_lease_state),
                    epoch: n.new_epoch,
                };
                let recorded = history.append(Entry {
                    process: Process::Worker(process),
                    kind: OpType::Info,
                    f: Op::LeaseBreak.into(),
                    node: Some(node.clone()),
                    value: LeaseBreak {
                        new_state: lease_state(n.new_lease_state),
                        ack_required: n.ack_required(),
                        epoch: n.new_epoch,
                    }
                    .into(),
                    status: None,
                    smb: Smb {
                        lease: Some(lease),
                        ..smb.clone()
                    },
                });
                if let Err(e) = recorded {
                    // The watcher has no one to return to: say it loudly rather than lose it.
                    tracing::error!("history: a lease break could not be recorded: {e}");
                }
                let _ = tx.send(BreakSeen {
                    lease_key: n.lease_key,
                    new_state: n.new_lease_state,
                    ack_required: n.ack_required(),
                });
            }
        });
    }

    async fn ack_breaks(&mut self) -> std::io::Result<()> {
        while let Ok(b) = self.breaks.try_recv() {
            if b.new_state & SMB2_LEASE_READ_CACHING == 0 {
                self.may_cache = false;
                self.cached.clear();
            }
            let mut smb = self.smb();
            smb.lease = Some(Lease {
                key: hex(&b.lease_key),
                state: lease_letters(b.new_state),
                epoch: 0,
            });
            if !b.ack_required {
                continue;
            }
            let Some(ch) = &self.channel else { continue };
            let tree = ch.tree.clone();
            self.record(
                OpType::Invoke,
                Op::LeaseBreakAck,
                LeaseBreakAck {
                    state: lease_state(b.new_state),
                }
                .into(),
                None,
                smb.clone(),
            )?;
            match tree.lease_break_ack(b.lease_key, b.new_state).await {
                Ok(r) if !r.status().is_error() => {
                    self.record(OpType::Ok, Op::LeaseBreakAck, Empty {}.into(), None, smb)?
                }
                Ok(r) => self.record(
                    OpType::Fail,
                    Op::LeaseBreakAck,
                    Value::None,
                    Some(r.status().to_string()),
                    smb,
                )?,
                Err(e) => {
                    let (kind, status, _) = classify(&e);
                    self.record(kind, Op::LeaseBreakAck, Value::None, Some(status), smb)?
                }
            };
        }
        Ok(())
    }

    async fn lose_connection(&mut self, reason: &str) -> std::io::Result<()> {
        // Cached data is only good while the lease is known to be held.
        self.may_cache = false;
        self.cached.clear();
        if let Some(w) = &self.witness {
            w.disconnected();
        }
        if let Some(ch) = self.channel.take() {
            ch.conn.close().await;
            if let Some(mc) = &ch.mc {
                mc.close().await;
            }
            let mut smb = self.smb();
            smb.conn = Some(ch.no);
            self.record(
                OpType::Info,
                Op::Disconnect,
                Disconnect {
                    reason: reason.to_string(),
                }
                .into(),
                None,
                smb,
            )?;
            self.events.send(RunEvent::Op {
                process: self.process,
                f: Op::Disconnect.into(),
                node: self.spec.node.to_string(),
                kind: OpType::Info,
                status: Some(reason.to_string()),
            });
        }
        Ok(())
    }

    /// After a reconnect: DH2C/DHnC for a durable handle, else a fresh open. False: failed.
    ///
    /// A reclaim refused with STATUS_OBJECT_NAME_NOT_FOUND is tried again for a short window:
    /// the server may not have noticed the old connection's end yet (its smbd can be busy
    /// finishing the request that was in flight), and a DH2C while the old connection is up
    /// fails that way. Real clients retry the reconnect for a failover window too.
    async fn reclaim_or_open(&mut self) -> std::io::Result<bool> {
        // The window runs from the first loss of the handle's connection, across reconnects.
        let window = *self
            .reclaim_until
            .get_or_insert_with(|| Instant::now() + RECLAIM_WINDOW);
        let mut backoff = BACKOFF.0;
        loop {
            match self.reclaim().await? {
                Reclaim::Done => {
                    self.reclaim_until = None;
                    return Ok(true);
                }
                Reclaim::Lost => return Ok(false),
                Reclaim::NotFound if Instant::now() < window => {
                    // The last try is at the window's end, not a whole backoff past it.
                    tokio::time::sleep(
                        backoff.min(window.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
                Reclaim::NotFound | Reclaim::Refused | Reclaim::NoHandle => break,
            }
        }
        self.reclaim_until = None;
        self.handle = None;
        self.open().await
    }

    /// One DH2C/DHnC attempt for the client's durable handle.
    async fn reclaim(&mut self) -> std::io::Result<Reclaim> {
        let Some(h) = self.handle.clone().filter(|h| h.durable) else {
            return Ok(Reclaim::NoHandle);
        };
        let Some(ch) = self.channel.as_ref() else {
            return Ok(Reclaim::Lost);
        };
        let v2 = self.spec.entry.durable == DurableKind::V2;
        let mut smb = self.smb();
        smb.create_guid = v2.then(|| h.create_guid.to_string());
        let invoke = ReconnectInvoke {
            durable: if v2 { Durable::V2 } else { Durable::V1 },
            open: h.open,
        };
        self.record(
            OpType::Invoke,
            Op::Reconnect,
            invoke.into(),
            None,
            smb.clone(),
        )?;
        let mut req = if v2 {
            CreateRequest::durable_v2_reconnect(self.spec.path.clone(), h.file_id, h.create_guid)
        } else {
            CreateRequest::new(self.spec.path.clone())
                .context(CreateContext::DurableHandleReconnect { file_id: h.file_id })
        };
        if !self.spec.entry.lease.is_empty() {
            req = req.context(self.lease_context(h.lease_epoch));
            req.requested_oplock_level = oplock_level::SMB2_OPLOCK_LEVEL_LEASE;
        }
        let result = ch.tree.request(&req, &self.options()).await;
        match result {
            Ok(resp) if !resp.status().is_error() => {
                smb.message_id = Some(resp.header.message_id);
                let body = resp.body().cloned();
                if let Some(body) = body {
                    smb.file_id = Some(file_id_text(body.file_id));
                    smb.lease = body.lease().map(|l| self.lease_record(l));
                    self.may_cache = self.spec.entry.cache_reads
                        && smb.lease.as_ref().is_some_and(|l| l.state.contains('R'));
                    self.handle = Some(Handle {
                        file_id: body.file_id,
                        ..h
                    });
                }
                self.record(OpType::Ok, Op::Reconnect, Empty {}.into(), None, smb)?;
                Ok(Reclaim::Done)
            }
            Ok(resp) => {
                smb.message_id = Some(resp.header.message_id);
                let status = resp.status();
                self.record(
                    OpType::Fail,
                    Op::Reconnect,
                    Value::None,
                    Some(status.to_string()),
                    smb,
                )?;
                Ok(if status == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND {
                    Reclaim::NotFound
                } else {
                    Reclaim::Refused
                })
            }
            Err(e) => {
                let (kind, status, lost) = classify(&e);
                self.record(kind, Op::Reconnect, Value::None, Some(status), smb)?;
                Ok(if lost {
                    Reclaim::Lost
                } else {
                    Reclaim::Refused
                })
            }
        }
    }

    fn lease_context(&self, epoch: u16) -> CreateContext {
        CreateContext::Lease(smb2::Lease {
            lease_key: self.lease_key,
            lease_state: lease_bits(&self.spec.entry.lease),
            lease_flags: 0,
            lease_duration: 0,
            v2: self
                .channel
                .as_ref()
                .filter(|c| c.dialect >= Dialect::SMB3_0)
                .map(|_| smb2::LeaseV2 {
                    parent_lease_key: [0; 16],
                    epoch,
                }),
        })
    }

    fn lease_record(&self, l: &smb2::Lease) -> Lease {
        Lease {
            key: hex(&l.lease_key),
            state: lease_letters(l.lease_state),
            epoch: l.v2.map(|v| v.epoch).unwrap_or(0),
        }
    }

    /// Open the client's file as the plan asks. False: failed (connection lost or refused).
    async fn open(&mut self) -> std::io::Result<bool> {
        let entry = self.spec.entry;
        // A durable v2 create lost in flight is replayed with its CreateGuid: the server must
        // return the open it made (if it made one), not make a second.
        let replay_of = match self.in_flight {
            Some(InFlight::Open { create_guid, index }) => {
                self.in_flight = None;
                (entry.replay && entry.durable == DurableKind::V2).then_some((create_guid, index))
            }
            _ => None,
        };
        let create_guid = replay_of
            .map(|(g, _)| g)
            .unwrap_or_else(|| Guid(self.rng.random()));
        let mut req = CreateRequest::new(self.spec.path.clone());
        let timeout_ms = entry
            .durable_timeout
            .as_ref()
            .map(|t| t.value.as_duration().as_millis() as u32)
            .unwrap_or(0);
        match entry.durable {
            DurableKind::V2 => {
                let flags = if entry.persistent { 0x2 } else { 0 };
                req = req.context(CreateContext::DurableHandleRequestV2 {
                    timeout: timeout_ms,
                    flags,
                    create_guid,
                });
            }
            DurableKind::V1 => req = req.context(CreateContext::DurableHandleRequest),
            DurableKind::None => {}
        }
        if entry.lease.is_empty() {
            req.requested_oplock_level = match entry.oplock {
                OplockChoice::None => oplock_level::SMB2_OPLOCK_LEVEL_NONE,
                OplockChoice::Level2 => oplock_level::SMB2_OPLOCK_LEVEL_II,
                OplockChoice::Exclusive => oplock_level::SMB2_OPLOCK_LEVEL_EXCLUSIVE,
                OplockChoice::Batch => oplock_level::SMB2_OPLOCK_LEVEL_BATCH,
            };
        } else {
            req.requested_oplock_level = oplock_level::SMB2_OPLOCK_LEVEL_LEASE;
            req = req.context(self.lease_context(0));
        }
        let mut smb = self.smb();
        smb.file_id = None;
        smb.create_guid = (entry.durable == DurableKind::V2).then(|| create_guid.to_string());
        let invoke = OpenInvoke {
            durable: match entry.durable {
                DurableKind::None => Durable::None,
                DurableKind::V1 => Durable::V1,
                DurableKind::V2 => Durable::V2,
            },
            timeout_ms: timeout_ms.into(),
            persistent: entry.persistent,
            lease: lease_state(lease_bits(&entry.lease)),
            oplock: match entry.oplock {
                OplockChoice::None => OplockLevel::None,
                OplockChoice::Level2 => OplockLevel::Level2,
                OplockChoice::Exclusive => OplockLevel::Exclusive,
                OplockChoice::Batch => OplockLevel::Batch,
            },
            replay_of: replay_of.map(|(_, index)| index),
        };
        let mut opts = self.options();
        if replay_of.is_some() {
            opts = opts.replay();
        }
        let Some(ch) = self.channel.as_ref() else {
            return Ok(false);
        };
        let open = self.record(OpType::Invoke, Op::Open, invoke.into(), None, smb.clone())?;
        match ch.tree.request(&req, &opts).await {
            Ok(resp) if !resp.status().is_error() => {
                smb.message_id = Some(resp.header.message_id);
                let Some(body) = resp.body().cloned() else {
                    return Ok(false);
                };
                let (granted, granted_timeout, persistent) =
                    match (entry.durable, body.durable_v2(), body.durable_v1()) {
                        (DurableKind::V2, Some((t, flags)), _) => (true, t, flags & 0x2 != 0),
                        (DurableKind::V1, _, true) => (true, 16 * 60 * 1000, false),
                        _ => (false, 0, false),
                    };
                let lease = body.lease().map(|l| self.lease_record(l));
                smb.file_id = Some(file_id_text(body.file_id));
                smb.lease = lease.clone();
                self.handle = Some(Handle {
                    file_id: body.file_id,
                    create_guid,
                    lease_epoch: lease.as_ref().map(|l| l.epoch).unwrap_or(0),
                    durable: granted,
                    open,
                });
                self.cached.clear();
                self.may_cache = entry.cache_reads
                    && match &lease {
                        Some(l) => l.state.contains('R'),
                        None => {
                            body.oplock_level >= oplock_level::SMB2_OPLOCK_LEVEL_II
                                && body.oplock_level != oplock_level::SMB2_OPLOCK_LEVEL_LEASE
                        }
                    };
                let value = OpenOk {
                    durable: granted,
                    timeout_ms: granted_timeout.into(),
                    persistent,
                    // MS-SMB2 defines no other level: a server answering one granted none.
                    oplock: OplockLevel::from_level(body.oplock_level).unwrap_or_default(),
                };
                self.record(OpType::Ok, Op::Open, value.into(), None, smb)?;
                Ok(true)
            }
            Ok(resp) => {
                smb.message_id = Some(resp.header.message_id);
                self.record(
                    OpType::Fail,
                    Op::Open,
                    Value::None,
                    Some(resp.status().to_string()),
                    smb,
                )?;
                Ok(false)
            }
            Err(e) => {
                let (kind, status, _) = classify(&e);
                if kind == OpType::Info && entry.durable == DurableKind::V2 {
                    self.in_flight = Some(InFlight::Open {
                        create_guid,
                        index: open,
                    });
                }
                self.record(kind, Op::Open, Value::None, Some(status), smb)?;
                Ok(false)
            }
        }
    }

    /// Send a write again, byte for byte, flagged REPLAY_OPERATION with the current
    /// ChannelSequence. True: the connection is lost again.
    async fn replay_write(
        &mut self,
        id: u64,
        offset: u64,
        len: u64,
        write_through: bool,
    ) -> std::io::Result<bool> {
        let Some(file_id) = self.handle.as_ref().map(|h| h.file_id) else {
            return Ok(false);
        };
        let Some(tree) = self.channel.as_ref().map(|c| c.tree.clone()) else {
            return Ok(true);
        };
        let smb = self.smb();
        let value = WriteInvoke {
            offset,
            len,
            write_through,
            replay_of: Some(id),
        };
        self.record(OpType::Invoke, Op::Write, value.into(), None, smb.clone())?;
        let req = WriteRequest {
            offset,
            file_id,
            remaining_bytes: 0,
            flags: if write_through { WRITE_THROUGH } else { 0 },
            data: ops::content(id, offset, len),
        };
        let r = tree
            .request(&req, &self.options().replay())
            .await
            .map(|resp| {
                let written = resp.body().map(|b| b.count).unwrap_or(0);
                (
                    resp.header.message_id,
                    resp.status(),
                    WriteOk {
                        written: written.into(),
                    }
                    .into(),
                )
            });
        self.finish(Op::Write, smb, r)
    }

    /// Draw and perform one operation. True: the connection is lost (or must be given up).
    async fn one_op(&mut self, generator: &mut Phases) -> std::io::Result<bool> {
        let op = match generator.next(&mut self.rng, Instant::now()) {
            Some(op) if self.handle.is_some() => op,
            // Nothing to do (an empty mix, or no handle yet): don't spin.
            _ => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                return Ok(false);
            }
        };
        let slots = Slots::new(
            self.spec.entry.file_size.value,
            self.spec.entry.write_size.value,
        );
        let len = slots.size;
        let offset = slots.next(&mut self.rng);
        // Connected with a handle, or this is not the time for an op: the connection is lost.
        let (Some(file_id), Some(tree)) = (
            self.handle.as_ref().map(|h| h.file_id),
            self.channel.as_ref().map(|c| match &c.mc {
                Some(mc) => Via::Multi(mc.clone()),
                None => Via::Tree(c.tree.clone()),
            }),
        ) else {
            return Ok(true);
        };
        let opts = self.options();
        let smb = self.smb();
        let lost = match op {
            Intent::Write { write_through } => {
                // The cached copy of this slot is older than what is being written.
                self.cached.remove(&(offset / len));
                let id = self.record(
                    OpType::Invoke,
                    Op::Write,
                    WriteInvoke {
                        offset,
                        len,
                        write_through,
                        replay_of: None,
                    }
                    .into(),
                    None,
                    smb.clone(),
                )?;
                let req = WriteRequest {
                    offset,
                    file_id,
                    remaining_bytes: 0,
                    flags: if write_through { WRITE_THROUGH } else { 0 },
                    data: ops::content(id, offset, len),
                };
                let r = tree.request(&req, &opts).await.map(|resp| {
                    let written = resp.body().map(|b| b.count).unwrap_or(0);
                    (
                        resp.header.message_id,
                        resp.status(),
                        WriteOk {
                            written: written.into(),
                        }
                        .into(),
                    )
                });
                if matches!(&r, Err(e) if !e.not_sent() && !matches!(e, smb2::Error::Status { .. }))
                {
                    self.in_flight = Some(InFlight::Write {
                        id,
                        offset,
                        len,
                        write_through,
                    });
                }
                self.finish(Op::Write, smb, r)?
            }
            Intent::Flush => {
                self.record(
                    OpType::Invoke,
                    Op::Flush,
                    Empty {}.into(),
                    None,
                    smb.clone(),
                )?;
                let r = tree
                    .request(&FlushRequest { file_id }, &opts)
                    .await
                    .map(|resp| (resp.header.message_id, resp.status(), Empty {}.into()));
                self.finish(Op::Flush, smb, r)?
            }
            Intent::Read => {
                let value = ReadInvoke { offset, len };
                self.record(OpType::Invoke, Op::Read, value.into(), None, smb.clone())?;
                let slot = offset / len;
                if let Some(runs) = self.cached.get(&slot).filter(|_| self.may_cache) {
                    // Served from the client's cache: nothing goes on the wire.
                    let value = ReadOk {
                        runs: runs.clone(),
                        cached: true,
                    };
                    self.record(OpType::Ok, Op::Read, value.into(), None, smb)?;
                    return Ok(false);
                }
                let req = ReadRequest {
                    length: len as u32,
                    offset,
                    file_id,
                    ..Default::default()
                };
                let r = tree.request(&req, &opts).await.map(|resp| {
                    let runs = resp
                        .body()
                        .map(|b| ops::decode(offset, &b.data))
                        .unwrap_or_default();
                    (resp.header.message_id, resp.status(), runs)
                });
                if let Ok((_, status, runs)) = &r {
                    if self.may_cache && !status.is_error() {
                        self.cached.insert(slot, runs.clone());
                    }
                }
                let r = r.map(|(id, status, runs)| {
                    let value = ReadOk {
                        runs,
                        cached: false,
                    };
                    (id, status, value.into())
                });
                self.finish(Op::Read, smb, r)?
            }
            Intent::Reopen => {
                self.record(
                    OpType::Invoke,
                    Op::Close,
                    Empty {}.into(),
                    None,
                    smb.clone(),
                )?;
                let r = tree
                    .request(&CloseRequest { flags: 0, file_id }, &opts)
                    .await
                    .map(|resp| (resp.header.message_id, resp.status(), Empty {}.into()));
                let lost = self.finish(Op::Close, smb, r)?;
                self.handle = None;
                lost || !self.open().await?
            }
            Intent::Lock => {
                let element = |flags| LockElement {
                    offset,
                    length: len,
                    flags,
                };
                let mut lost = false;
                for (f, flags) in [
                    (
                        Op::Lock,
                        SMB2_LOCKFLAG_EXCLUSIVE_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
                    ),
                    (Op::Unlock, SMB2_LOCKFLAG_UNLOCK),
                ] {
                    self.record(
                        OpType::Invoke,
                        f,
                        LockInvoke {
                            offset,
                            len,
                            exclusive: true,
                        }
                        .into(),
                        None,
                        smb.clone(),
                    )?;
                    let req = LockRequest {
                        lock_sequence: 0,
                        file_id,
                        locks: vec![element(flags)],
                    };
                    let r = tree
                        .request(&req, &opts)
                        .await
                        .map(|resp| (resp.header.message_id, resp.status(), Empty {}.into()));
                    lost = self.finish(f, smb.clone(), r)?;
                    if lost {
                        break;
                    }
                }
                lost
            }
        };
        Ok(lost)
    }

    /// Record an op's completion. True when the connection is lost.
    fn finish(
        &mut self,
        f: Op,
        mut smb: Smb,
        result: smb2::Result<(u64, smb2::NtStatus, Value)>,
    ) -> std::io::Result<bool> {
        let (kind, status, lost) = match result {
            Ok((message_id, status, value)) => {
                smb.message_id = Some(message_id);
                if status.is_error() {
                    self.record(OpType::Fail, f, Value::None, Some(status.to_string()), smb)?;
                    (OpType::Fail, Some(status.to_string()), false)
                } else {
                    self.record(OpType::Ok, f, value, None, smb)?;
                    (OpType::Ok, None, false)
                }
            }
            Err(e) => {
                let (kind, status, lost) = classify(&e);
                self.record(kind, f, Value::None, Some(status.clone()), smb)?;
                (kind, Some(status), lost)
            }
        };
        self.events.send(RunEvent::Op {
            process: self.process,
            f: f.to_string(),
            node: self.spec.node.to_string(),
            kind,
            status,
        });
        if kind == OpType::Info {
            // Jepsen: a process whose op's outcome is unknown continues as a new process.
            self.process += self.spec.stride;
        }
        Ok(lost)
    }
}
