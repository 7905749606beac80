//! One SMB2 connection: a task that reads frames, matches responses to
//! MessageId, absorbs interim STATUS_PENDING responses (keeping their
//! AsyncId), tracks credits, and hands unsolicited messages to the caller.
//!
//! It never retries, reconnects or replays. When the stream ends, every
//! request still in flight fails at once with [`Error::OutcomeUnknown`], and
//! later requests with [`Error::Disconnected`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::crypto::encryption::{self, Cipher};
use crate::crypto::signing::{self, SigningAlgorithm};
use crate::error::{Error, Result};
use crate::response::{Received, Response};
use crate::transport::{self, FrameError};
use crate::wire::echo::EchoRequest;
use crate::wire::header::{HeaderId, HEADER_LEN};
use crate::wire::negotiate::Dialect;
use crate::wire::oplock_break::BreakNotification;
use crate::wire::transform::TRANSFORM_PROTOCOL_ID;
use crate::wire::{Command, HeaderFlags, HeaderRepr, RequestBody};

pub use crate::event::{Event, Events};
pub use crate::negotiate::{default_negotiate_request, Negotiated};
pub use crate::options::RequestOptions;
use crate::NtStatus;

/// How one request is protected on the wire.
#[derive(Clone, Default)]
pub(crate) struct Protection {
    pub sign: Option<(SigningAlgorithm, Arc<Vec<u8>>)>,
    pub encrypt: Option<(Cipher, Arc<Vec<u8>>)>,
}

/// A fully built request, header fields included, ready for a MessageId.
pub(crate) struct Outgoing {
    pub command: Command,
    /// The whole message; its first 64 bytes are overwritten with the header.
    pub msg: Vec<u8>,
    pub session_id: u64,
    pub tree_id: u32,
    pub payload_size: usize,
    pub keep_sent: bool,
    pub protection: Protection,
    pub opts: RequestOptions,
}

struct PendingEntry {
    command: Command,
    tx: oneshot::Sender<Result<Received>>,
    async_id: Option<u64>,
    interim: Vec<HeaderRepr>,
}

struct State {
    next_message_id: u64,
    credits: u32,
    pending: HashMap<u64, PendingEntry>,
    dead: Option<String>,
    negotiated: Option<Negotiated>,
    /// Server-to-client decryption keys by SessionId.
    decryptors: HashMap<u64, (Cipher, Arc<Vec<u8>>)>,
}

struct Shared {
    state: Mutex<State>,
    credits_changed: Notify,
    /// Tells the reader task to stop, so the socket closes.
    closing: Notify,
    writer: tokio::sync::Mutex<Option<WriteHalf<Box<dyn Io>>>>,
    events: mpsc::UnboundedSender<Event>,
    /// Bytes of whole frames (4-byte framing included) written and read.
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

/// Anything a connection can run over: a TCP stream, a duplex pipe in tests.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

struct TaskGuard(JoinHandle<()>);
impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle to one connection. Clones share it; when the last clone (and
/// every Session/Tree made from it) is dropped, the socket closes.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    _task: Arc<TaskGuard>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock would be a bug here; keep going with
    // the data rather than poisoning every later request.
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    /// Takes an already-connected TCP stream (made, e.g., inside a lab
    /// namespace) and starts the connection task.
    pub fn new(stream: tokio::net::TcpStream) -> (Connection, Events) {
        let _ = stream.set_nodelay(true);
        Connection::from_io(stream)
    }

    /// Dials `addr` and starts the connection task.
    pub async fn connect(addr: std::net::SocketAddr) -> Result<(Connection, Events)> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        Ok(Connection::new(s))
    }

    /// Runs over any byte stream.
    pub fn from_io<T: Io>(io: T) -> (Connection, Events) {
        let boxed: Box<dyn Io> = Box::new(io);
        let (r, w) = tokio::io::split(boxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_message_id: 0,
                credits: 1,
                pending: HashMap::new(),
                dead: None,
                negotiated: None,
                decryptors: HashMap::new(),
            }),
            credits_changed: Notify::new(),
            closing: Notify::new(),
            writer: tokio::sync::Mutex::new(Some(w)),
            events: tx,
            bytes_written: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
        });
        let task = tokio::spawn(reader_task(shared.clone(), r));
        (
            Connection {
                shared,
                _task: Arc::new(TaskGuard(task)),
            },
            rx,
        )
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        lock(&self.shared).negotiated.clone()
    }

    /// Credits the server has granted and this client has not yet spent.
    pub fn credits(&self) -> u32 {
        lock(&self.shared).credits
    }

    /// (written, read): bytes of every whole frame this connection sent and
    /// received, framing and any transform header included.
    pub fn byte_counts(&self) -> (u64, u64) {
        (
            self.shared.bytes_written.load(Ordering::Relaxed),
            self.shared.bytes_read.load(Ordering::Relaxed),
        )
    }

    /// Why the connection ended, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        lock(&self.shared).dead.clone()
    }

    /// Closes the socket. Requests in flight fail with OutcomeUnknown.
    pub async fn close(&self) {
        if let Some(mut w) = self.shared.writer.lock().await.take() {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
        }
        fail(&self.shared, "closed by caller".into());
    }

    pub(crate) fn set_negotiated(&self, n: Negotiated) {
        lock(&self.shared).negotiated = Some(n);
    }

    pub(crate) fn register_decryptor(&self, session_id: u64, cipher: Cipher, key: Arc<Vec<u8>>) {
        lock(&self.shared)
            .decryptors
            .insert(session_id, (cipher, key));
    }

    /// ECHO, sent outside any session.
    pub async fn echo(
        &self,
        opts: &RequestOptions,
    ) -> Result<Response<crate::wire::echo::EchoResponse>> {
        let p = self.submit_echo(opts).await?;
        Response::decode(p.wait().await?, Command::Echo)
    }

    /// ECHO without waiting: the handle's MessageId can be cancelled.
    pub async fn submit_echo(&self, opts: &RequestOptions) -> Result<PendingRaw> {
        let mut msg = vec![0u8; HEADER_LEN];
        EchoRequest.emit(&mut msg);
        self.submit(Outgoing {
            command: Command::Echo,
            msg,
            session_id: 0,
            tree_id: 0,
            payload_size: 0,
            keep_sent: false,
            protection: Protection::default(),
            opts: opts.clone(),
        })
        .await
    }

    fn credit_charge(&self, payload: usize) -> (u16, u16) {
        // (CreditCharge field, credits consumed)
        match &lock(&self.shared).negotiated {
            Some(n) if n.multi_credit() => {
                let c = if payload == 0 {
                    1
                } else {
                    (payload - 1) / 65536 + 1
                };
                (c as u16, c as u16)
            }
            Some(n) if n.dialect > Dialect::SMB2_0_2 => (1, 1),
            _ => (0, 1),
        }
    }

    /// Sends one request; returns a handle to await its final response.
    pub(crate) async fn submit(&self, mut out: Outgoing) -> Result<PendingRaw> {
        let (computed_charge, consumed) = self.credit_charge(out.payload_size);
        let charge = out.opts.credit_charge.unwrap_or(computed_charge);
        let consumed = out.opts.credit_charge.map_or(consumed, |c| c.max(1));
        let deadline = out.opts.timeout.map(|t| tokio::time::Instant::now() + t);

        // Reserve credits, waiting for grants if needed (flow control, not a retry).
        loop {
            let notified = self.shared.credits_changed.notified();
            {
                let mut st = lock(&self.shared);
                if let Some(r) = &st.dead {
                    return Err(Error::Disconnected(r.clone()));
                }
                if st.credits >= u32::from(consumed) {
                    st.credits -= u32::from(consumed);
                    break;
                }
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, notified).await.is_err() {
                        return Err(Error::NoCredits {
                            command: out.command,
                            needed: consumed,
                            after: out.opts.timeout.unwrap_or_default(),
                        });
                    }
                }
                None => notified.await,
            }
        }

        let mut writer = match deadline {
            Some(d) => match tokio::time::timeout_at(d, self.shared.writer.lock()).await {
                Ok(w) => w,
                Err(_) => {
                    lock(&self.shared).credits += u32::from(consumed);
                    self.shared.credits_changed.notify_waiters();
                    return Err(Error::SendBlocked {
                        command: out.command,
                        after: out.opts.timeout.unwrap_or_default(),
                    });
                }
            },
            None => self.shared.writer.lock().await,
        };
        let (tx, rx) = oneshot::channel();
        let message_id;
        {
            let mut st = lock(&self.shared);
            if let Some(r) = &st.dead {
                return Err(Error::Disconnected(r.clone()));
            }
            message_id = st.next_message_id;
            st.next_message_id += u64::from(consumed);
            st.pending.insert(
                message_id,
                PendingEntry {
                    command: out.command,
                    tx,
                    async_id: None,
                    interim: Vec::new(),
                },
            );
        }
        let dialect3 = self
            .negotiated()
            .map(|n| n.dialect.is_smb3())
            .unwrap_or(false);
        let header = HeaderRepr {
            credit_charge: charge,
            status: NtStatus(if dialect3 || out.opts.channel_sequence != 0 {
                u32::from(out.opts.channel_sequence)
            } else {
                0
            }),
            command: out.command,
            credit: out.opts.credit_request.max(consumed),
            flags: out.opts.flags,
            next_command: 0,
            message_id,
            id: HeaderId::Sync {
                reserved: 0,
                tree_id: out.tree_id,
            },
            session_id: out.session_id,
            signature: [0; 16],
        };
        let mut hb = Vec::with_capacity(HEADER_LEN);
        header.emit(&mut hb);
        out.msg[..HEADER_LEN].copy_from_slice(&hb);
        if let Some((alg, key)) = &out.protection.sign {
            // A message that says SIGNED with a stale signature must never leave.
            if !signing::sign(*alg, key, &mut out.msg) {
                lock(&self.shared).pending.remove(&message_id);
                return Err(Error::SigningFailed {
                    command: out.command,
                    algorithm: format!("{alg:?}"),
                });
            }
        }
        let sent = out.keep_sent.then(|| out.msg.clone());
        let frame = match &out.protection.encrypt {
            Some((cipher, key)) => {
                match encryption::encrypt(*cipher, key, out.session_id, &out.msg) {
                    Ok(f) => f,
                    Err(e) => {
                        lock(&self.shared).pending.remove(&message_id);
                        return Err(e.into());
                    }
                }
            }
            None => out.msg,
        };
        let w = match writer.as_mut() {
            Some(w) => w,
            None => {
                lock(&self.shared).pending.remove(&message_id);
                return Err(Error::Disconnected("closed by caller".into()));
            }
        };
        // The timeout covers the send too: a peer that stops reading must
        // not block the caller forever. A frame cut off mid-way cannot be
        // resumed, so a send timeout ends the connection.
        let written = match deadline {
            Some(d) => tokio::time::timeout_at(d, transport::write_frame(w, &frame))
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "send timed out; connection closed (a partial frame cannot be resumed)",
                    ))
                }),
            None => transport::write_frame(w, &frame).await,
        };
        if written.is_err() {
            writer.take();
        } else {
            let n = 4 + frame.len() as u64;
            self.shared.bytes_written.fetch_add(n, Ordering::Relaxed);
        }
        drop(writer);
        if let Err(e) = written {
            let reason = format!("write failed: {e}");
            // Our own request may have been partly written: outcome unknown.
            lock(&self.shared).pending.remove(&message_id);
            fail(&self.shared, reason.clone());
            return Err(Error::OutcomeUnknown {
                command: out.command,
                message_id,
                reason,
            });
        }
        Ok(PendingRaw {
            shared: self.shared.clone(),
            _task: self._task.clone(),
            command: out.command,
            message_id,
            timeout: out.opts.timeout,
            rx,
            sent,
        })
    }

    /// The AsyncId the server gave a pending request, once an interim
    /// response has arrived.
    pub fn async_id_of(&self, message_id: u64) -> Option<u64> {
        lock(&self.shared)
            .pending
            .get(&message_id)
            .and_then(|p| p.async_id)
    }

    /// Sends an unsigned SMB2 CANCEL for request `message_id` (outside a
    /// session; within one use [`crate::Pending::cancel`], which signs).
    pub async fn cancel(&self, message_id: u64, session_id: u64) -> Result<()> {
        self.send_cancel(message_id, session_id, Protection::default())
            .await
    }

    /// Sends SMB2 CANCEL for an in-flight request. CANCEL takes no credit,
    /// reuses the target's MessageId, and gets no response of its own.
    pub(crate) async fn send_cancel(
        &self,
        message_id: u64,
        session_id: u64,
        protection: Protection,
    ) -> Result<()> {
        let async_id = self.async_id_of(message_id);
        let header = HeaderRepr {
            credit_charge: 0,
            status: NtStatus(0),
            command: Command::Cancel,
            credit: 0,
            flags: HeaderFlags::empty(),
            next_command: 0,
            message_id,
            id: match async_id {
                Some(a) => HeaderId::Async { async_id: a },
                None => HeaderId::Sync {
                    reserved: 0,
                    tree_id: 0,
                },
            },
            session_id,
            signature: [0; 16],
        };
        let mut msg = Vec::with_capacity(HEADER_LEN + 4);
        header.emit(&mut msg);
        crate::wire::cancel::CancelRequest.emit(&mut msg);
        if let Some((alg, key)) = &protection.sign {
            if !signing::sign(*alg, key, &mut msg) {
                return Err(Error::SigningFailed {
                    command: Command::Cancel,
                    algorithm: format!("{alg:?}"),
                });
            }
        }
        if let Some((cipher, key)) = &protection.encrypt {
            msg = encryption::encrypt(*cipher, key, session_id, &msg)?;
        }
        let mut writer = self.shared.writer.lock().await;
        if let Some(r) = lock(&self.shared).dead.clone() {
            return Err(Error::Disconnected(r));
        }
        let w = writer
            .as_mut()
            .ok_or_else(|| Error::Disconnected("closed by caller".into()))?;
        transport::write_frame(w, &msg).await.map_err(|e| {
            let reason = format!("write failed: {e}");
            fail(&self.shared, reason.clone());
            Error::Disconnected(reason)
        })
    }
}

/// A request on the wire, awaiting its final response.
pub struct PendingRaw {
    shared: Arc<Shared>,
    // Keeps the connection task alive while someone waits on it.
    _task: Arc<TaskGuard>,
    pub command: Command,
    pub message_id: u64,
    timeout: Option<Duration>,
    rx: oneshot::Receiver<Result<Received>>,
    /// The plaintext message as sent (only when asked for, e.g. for preauth).
    pub sent: Option<Vec<u8>>,
}

impl PendingRaw {
    pub async fn wait(self) -> Result<Received> {
        let r = match self.timeout {
            Some(t) => match tokio::time::timeout(t, self.rx).await {
                Ok(r) => r,
                Err(_) => {
                    // Stop waiting; a late answer becomes Event::Unmatched.
                    lock(&self.shared).pending.remove(&self.message_id);
                    return Err(Error::Timeout {
                        command: self.command,
                        message_id: self.message_id,
                        after: t,
                    });
                }
            },
            None => self.rx.await,
        };
        match r {
            Ok(r) => r,
            Err(_) => Err(Error::OutcomeUnknown {
                command: self.command,
                message_id: self.message_id,
                reason: lock(&self.shared)
                    .dead
                    .clone()
                    .unwrap_or_else(|| "connection task ended".into()),
            }),
        }
    }
}

/// Marks the connection dead and fails everything in flight.
fn fail(shared: &Shared, reason: String) {
    let drained: Vec<(u64, PendingEntry)> = {
        let mut st = lock(shared);
        if st.dead.is_some() {
            return;
        }
        st.dead = Some(reason.clone());
        st.pending.drain().collect()
    };
    for (message_id, p) in drained {
        let _ = p.tx.send(Err(Error::OutcomeUnknown {
            command: p.command,
            message_id,
            reason: reason.clone(),
        }));
    }
    shared.credits_changed.notify_waiters();
    // Close the socket: stop the reader, drop the writer if it is free (a
    // writer that failed drops its own half).
    shared.closing.notify_one();
    if let Ok(mut w) = shared.writer.try_lock() {
        w.take();
    }
    let _ = shared.events.send(Event::Disconnected { reason });
}

async fn reader_task(shared: Arc<Shared>, r: ReadHalf<Box<dyn Io>>) {
    // Small responses arrive many to a read; a large one (a 1 MiB READ)
    // bypasses the buffer once it is drained, so at most this much of it is
    // copied through the buffer.
    let mut r = BufReader::with_capacity(16 * 1024, r);
    loop {
        let read = tokio::select! {
            f = transport::read_frame(&mut r) => f,
            _ = shared.closing.notified() => return,
        };
        let frame = match read {
            Ok(f) => f,
            Err(FrameError::Eof) => {
                fail(&shared, "connection closed by peer".into());
                return;
            }
            Err(e) => {
                fail(&shared, e.to_string());
                return;
            }
        };
        let n = 4 + frame.len() as u64;
        shared.bytes_read.fetch_add(n, Ordering::Relaxed);
        handle_frame(&shared, frame);
    }
}

/// Decrypts (if needed), splits compounds and routes each message.
fn handle_frame(shared: &Shared, frame: Vec<u8>) {
    let (plain, encrypted) = if frame.starts_with(&TRANSFORM_PROTOCOL_ID) {
        let sid = match crate::wire::transform::TransformHeader::parse(&frame) {
            Ok(th) => th.session_id,
            Err(e) => {
                let _ = shared.events.send(Event::Garbage {
                    raw: frame,
                    reason: e.to_string(),
                });
                return;
            }
        };
        let key = lock(shared).decryptors.get(&sid).cloned();
        match key {
            Some((cipher, key)) => match encryption::decrypt(cipher, &key, &frame) {
                Ok(p) => (p, true),
                Err(e) => {
                    let _ = shared.events.send(Event::Garbage {
                        raw: frame,
                        reason: format!("decryption failed: {e}"),
                    });
                    return;
                }
            },
            None => {
                let _ = shared.events.send(Event::Garbage {
                    raw: frame,
                    reason: format!("encrypted for unknown SessionId {sid:#x}"),
                });
                return;
            }
        }
    } else {
        (frame, false)
    };
    // The common case, one message per frame: hand the frame over as is
    // (no copy of a 1 MiB READ response).
    if let Ok(header) = HeaderRepr::parse_bytes(&plain) {
        if header.next_command == 0 {
            route(shared, header, plain, encrypted);
            return;
        }
    }
    let mut pos = 0usize;
    loop {
        let rest = &plain[pos..];
        let header = match HeaderRepr::parse_bytes(rest) {
            Ok(h) => h,
            Err(e) => {
                let _ = shared.events.send(Event::Garbage {
                    raw: rest.to_vec(),
                    reason: e.to_string(),
                });
                return;
            }
        };
        let next = header.next_command as usize;
        let end = if next == 0 || next > rest.len() || next < HEADER_LEN {
            rest.len()
        } else {
            next
        };
        route(shared, header, rest[..end].to_vec(), encrypted);
        if next == 0 || end == rest.len() {
            return;
        }
        pos += end;
    }
}

fn route(shared: &Shared, header: HeaderRepr, raw: Vec<u8>, encrypted: bool) {
    let mut st = lock(shared);
    if header.is_response() {
        st.credits = st.credits.saturating_add(u32::from(header.credit));
        shared.credits_changed.notify_waiters();
    }
    if header.message_id == u64::MAX && header.command == Command::OplockBreak {
        drop(st);
        let _ = shared.events.send(Event::Break {
            notification: BreakNotification::parse(&raw),
            header,
            raw,
            encrypted,
        });
        return;
    }
    let interim = header.status == NtStatus::STATUS_PENDING
        && header.flags.contains(HeaderFlags::ASYNC_COMMAND);
    if interim {
        if let Some(p) = st.pending.get_mut(&header.message_id) {
            p.async_id = header.async_id();
            p.interim.push(header);
            return;
        }
    } else if let Some(p) = st.pending.remove(&header.message_id) {
        drop(st);
        let _ = p.tx.send(Ok(Received {
            header,
            raw,
            encrypted,
            interim: p.interim,
        }));
        return;
    }
    drop(st);
    let _ = shared.events.send(Event::Unmatched { header, raw });
}
