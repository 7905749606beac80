//! A DCE/RPC association over TCP (ncacn_ip_tcp): bind (with NTLMSSP at the level asked:
//! bind carries NEGOTIATE, bind_ack CHALLENGE, auth3 AUTHENTICATE), then calls.
//!
//! Calls may overlap (AsyncNotify stays outstanding while others run): one task reads
//! PDUs, unseals them in arrival order and hands each call's reassembled stub to its
//! caller by call_id; senders take the write lock for all of a call's fragments so the
//! sealing sequence numbers follow the wire order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use smb2::ntlm::{self, flags::*, ChallengeMessage, Credentials};
use smb2::ntlm_seal::{NtlmSeal, SIGNATURE_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::pdu::{
    self, pfc, ptype, AuthLevel, BindAckRepr, BindRepr, Frame, PresentationContext, RequestRepr,
    ResponseRepr, SecTrailer, Syntax, AUTHN_WINNT, NDR20,
};
use crate::Error;

/// The NTLMSSP flags a Windows client asks for when it signs and seals RPC.
pub const RPC_NTLM_FLAGS: u32 = NTLMSSP_NEGOTIATE_UNICODE
    | NTLMSSP_REQUEST_TARGET
    | NTLMSSP_NEGOTIATE_SIGN
    | NTLMSSP_NEGOTIATE_SEAL
    | NTLMSSP_NEGOTIATE_NTLM
    | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_TARGET_INFO
    | NTLMSSP_NEGOTIATE_128
    | NTLMSSP_NEGOTIATE_KEY_EXCH
    | NTLMSSP_NEGOTIATE_56;

/// The auth_context_id of our one security context.
const AUTH_CONTEXT_ID: u32 = 1;
const CONTEXT_ID: u16 = 0;

/// How to authenticate a bind.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No verifier (the endpoint mapper).
    None,
    /// NTLMSSP at this level.
    Ntlm(Credentials, AuthLevel),
}

type Waiters = HashMap<u32, oneshot::Sender<Result<Vec<u8>, Error>>>;

struct Shared {
    seal: Option<Mutex<NtlmSeal>>,
    level: Option<AuthLevel>,
    waiters: Mutex<Waiters>,
    closed: Mutex<Option<String>>,
    /// Request fragments sent and response fragments received since the bind.
    sent: AtomicU64,
    received: AtomicU64,
}

/// One bound association.
pub struct Association {
    peer: SocketAddr,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    shared: Arc<Shared>,
    next_call: AtomicU32,
    max_xmit_frag: u16,
    assoc_group_id: u32,
    multiplexed: bool,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Association {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Association")
            .field("peer", &self.peer)
            .field("assoc_group_id", &self.assoc_group_id)
            .field("multiplexed", &self.multiplexed)
            .finish_non_exhaustive()
    }
}

impl Drop for Association {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

async fn read_frame(r: &mut OwnedReadHalf) -> Result<Vec<u8>, Error> {
    let mut head = [0u8; pdu::HEADER_LEN];
    r.read_exact(&mut head)
        .await
        .map_err(io("read a DCE/RPC header"))?;
    let n = Frame::frag_length_of(&head)?;
    let mut buf = vec![0u8; n];
    buf[..pdu::HEADER_LEN].copy_from_slice(&head);
    r.read_exact(&mut buf[pdu::HEADER_LEN..])
        .await
        .map_err(io("read a DCE/RPC fragment"))?;
    Ok(buf)
}

impl Association {
    /// Connects to `peer` and binds `interface` (NDR 2.0) with `auth`.
    pub async fn bind(peer: SocketAddr, interface: Syntax, auth: Auth) -> Result<Self, Error> {
        let stream = TcpStream::connect(peer)
            .await
            .map_err(io(format!("connect to {peer}")))?;
        Self::bind_stream(stream, interface, auth).await
    }

    /// Binds `interface` over an already connected stream (made wherever the caller
    /// needs it, e.g. inside a lab node's network namespace).
    pub async fn bind_stream(
        stream: TcpStream,
        interface: Syntax,
        auth: Auth,
    ) -> Result<Self, Error> {
        let peer = stream.peer_addr().map_err(io("peer address"))?;
        let _ = stream.set_nodelay(true);
        let (mut rd, mut wr) = stream.into_split();
        let bind = BindRepr {
            max_xmit_frag: pdu::DEFAULT_MAX_FRAG,
            max_recv_frag: pdu::DEFAULT_MAX_FRAG,
            assoc_group_id: 0,
            contexts: vec![PresentationContext {
                context_id: CONTEXT_ID,
                abstract_syntax: interface,
                transfer_syntaxes: vec![NDR20],
            }],
        }
        .emit();
        let flags = pfc::FIRST_FRAG | pfc::LAST_FRAG | pfc::CONC_MPX;
        let trailer = |level: AuthLevel| SecTrailer {
            auth_type: AUTHN_WINNT,
            auth_level: level as u8,
            auth_pad_length: 0,
            auth_context_id: AUTH_CONTEXT_ID,
        };
        let negotiate = match &auth {
            Auth::None => None,
            Auth::Ntlm(_, level) => Some((*level, ntlm::negotiate_message(RPC_NTLM_FLAGS))),
        };
        let mut pdu_bytes = match &negotiate {
            None => pdu::emit(ptype::BIND, flags, 1, &bind, None).0,
            Some((level, msg)) => {
                let (mut p, _) = pdu::emit(
                    ptype::BIND,
                    flags,
                    1,
                    &bind,
                    Some((trailer(*level), msg.len())),
                );
                let at = p.len() - msg.len();
                p[at..].copy_from_slice(msg);
                p
            }
        };
        wr.write_all(&pdu_bytes)
            .await
            .map_err(io(format!("send bind to {peer}")))?;
        let ack = read_frame(&mut rd).await?;
        let frame = Frame::parse(&ack)?;
        match frame.ptype {
            ptype::BIND_ACK => {}
            ptype::BIND_NAK => {
                let reason = pdu::parse_bind_nak(&ack[frame.body.clone()])?;
                return Err(Error::BindRefused(format!(
                    "bind_nak, reject reason {reason}"
                )));
            }
            other => {
                return Err(Error::Unexpected(format!(
                    "PDU type {other} in answer to bind"
                )))
            }
        }
        let repr = BindAckRepr::parse(&ack[frame.body.clone()])?;
        match repr.results.first() {
            Some(r) if r.result == 0 => {}
            Some(r) => {
                return Err(Error::BindRefused(format!(
                    "presentation context result {} reason {} (interface {})",
                    r.result, r.reason, interface.uuid
                )))
            }
            None => return Err(Error::BindRefused("bind_ack with no results".into())),
        }
        let mut seal = None;
        let mut level = None;
        if let (Auth::Ntlm(creds, lvl), Some(_)) = (&auth, &negotiate) {
            let (_, value) = frame.auth.clone().ok_or_else(|| {
                Error::BindRefused("bind_ack carries no NTLMSSP CHALLENGE".into())
            })?;
            let challenge = ChallengeMessage::parse(&ack[value]).map_err(Error::Ntlm)?;
            let a = ntlm::authenticate_message_with(
                creds,
                &challenge,
                rand::random(),
                RPC_NTLM_FLAGS,
                Some(rand::random()),
            );
            if *lvl == AuthLevel::PktPrivacy && a.flags & NTLMSSP_NEGOTIATE_SEAL == 0 {
                return Err(Error::BindRefused(
                    "the server's NTLMSSP does not offer sealing".into(),
                ));
            }
            // auth3: a 4-byte pad, then the verifier with AUTHENTICATE.
            let (mut p, _) = pdu::emit(
                ptype::AUTH3,
                pfc::FIRST_FRAG | pfc::LAST_FRAG,
                1,
                &[0; 4],
                Some((trailer(*lvl), a.message.len())),
            );
            let at = p.len() - a.message.len();
            p[at..].copy_from_slice(&a.message);
            pdu_bytes = p;
            wr.write_all(&pdu_bytes)
                .await
                .map_err(io(format!("send auth3 to {peer}")))?;
            seal = Some(Mutex::new(NtlmSeal::client(
                &a.exported_session_key,
                a.flags,
            )));
            level = Some(*lvl);
        }
        let shared = Arc::new(Shared {
            seal,
            level,
            waiters: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        });
        let reader = tokio::spawn(read_loop(rd, shared.clone()));
        Ok(Association {
            peer,
            writer: tokio::sync::Mutex::new(wr),
            shared,
            next_call: AtomicU32::new(2),
            // Our fragments must fit what the server receives.
            max_xmit_frag: repr.max_recv_frag.min(pdu::DEFAULT_MAX_FRAG),
            assoc_group_id: repr.assoc_group_id,
            multiplexed: frame.pfc_flags & pfc::CONC_MPX != 0,
            reader,
        })
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn assoc_group_id(&self) -> u32 {
        self.assoc_group_id
    }

    /// Did the server accept concurrent multiplexing (PFC_CONC_MPX in bind_ack)?
    pub fn multiplexed(&self) -> bool {
        self.multiplexed
    }

    /// Request fragments sent and response fragments received so far (a call larger than
    /// a fragment shows as more than one).
    pub fn fragments(&self) -> (u64, u64) {
        (
            self.shared.sent.load(Ordering::Relaxed),
            self.shared.received.load(Ordering::Relaxed),
        )
    }

    /// Calls `opnum` with `stub`; the response stub, or the fault.
    pub async fn call(&self, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, Error> {
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            // Under the waiters lock, which the reader holds while it marks the
            // association closed and fails every waiter: no waiter is left behind.
            let mut waiters = self.shared.waiters.lock().expect("waiters lock");
            if let Some(why) = self.shared.closed.lock().expect("closed lock").clone() {
                return Err(Error::Closed(why));
            }
            waiters.insert(call_id, tx);
        }
        if let Err(e) = self.send_request(call_id, opnum, stub).await {
            self.shared
                .waiters
                .lock()
                .expect("waiters lock")
                .remove(&call_id);
            return Err(e);
        }
        match rx.await {
            Ok(Ok(stub)) => Ok(stub),
            Ok(Err(Error::Fault { status, name, .. })) => Err(Error::Fault {
                opnum,
                status,
                name,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed(
                self.shared
                    .closed
                    .lock()
                    .expect("closed lock")
                    .clone()
                    .unwrap_or_else(|| "the association was dropped".into()),
            )),
        }
    }

    async fn send_request(&self, call_id: u32, opnum: u16, stub: &[u8]) -> Result<(), Error> {
        let sealed = self.shared.seal.is_some();
        let overhead = pdu::REQUEST_STUB_OFFSET
            + if sealed {
                pdu::SEC_TRAILER_LEN + SIGNATURE_LEN + 15
            } else {
                0
            };
        let chunk = ((self.max_xmit_frag as usize).saturating_sub(overhead) / 16 * 16).max(16);
        let mut writer = self.writer.lock().await;
        let mut at = 0usize;
        loop {
            let end = (at + chunk).min(stub.len());
            let mut flags = 0u8;
            if at == 0 {
                flags |= pfc::FIRST_FRAG;
            }
            if end == stub.len() {
                flags |= pfc::LAST_FRAG;
            }
            let body = RequestRepr {
                alloc_hint: (stub.len() - at) as u32,
                context_id: CONTEXT_ID,
                opnum,
            }
            .emit(&stub[at..end]);
            let bytes = self.seal_pdu(ptype::REQUEST, flags, call_id, &body, end - at)?;
            writer
                .write_all(&bytes)
                .await
                .map_err(io(format!("send request to {}", self.peer)))?;
            self.shared.sent.fetch_add(1, Ordering::Relaxed);
            at = end;
            if at == stub.len() {
                return Ok(());
            }
        }
    }

    /// A PDU with `body` (whose last `stub_len` bytes are stub), signed or sealed as bound.
    fn seal_pdu(
        &self,
        ptype: u8,
        flags: u8,
        call_id: u32,
        body: &[u8],
        stub_len: usize,
    ) -> Result<Vec<u8>, Error> {
        let (Some(seal), Some(level)) = (&self.shared.seal, self.shared.level) else {
            return Ok(pdu::emit(ptype, flags, call_id, body, None).0);
        };
        let trailer = SecTrailer {
            auth_type: AUTHN_WINNT,
            auth_level: level as u8,
            auth_pad_length: pdu::auth_pad(stub_len),
            auth_context_id: AUTH_CONTEXT_ID,
        };
        let (mut p, padded) =
            pdu::emit(ptype, flags, call_id, body, Some((trailer, SIGNATURE_LEN)));
        let stub_start = padded.end - trailer.auth_pad_length as usize - stub_len;
        let signed_len = p.len() - SIGNATURE_LEN;
        let range = (level == AuthLevel::PktPrivacy).then_some(stub_start..padded.end);
        let sig = seal
            .lock()
            .expect("seal lock")
            .wrap(&mut p[..signed_len], range)?;
        p[signed_len..].copy_from_slice(&sig);
        Ok(p)
    }
}

/// Reads PDUs until the connection ends, routing each call's stub to its waiter.
async fn read_loop(mut rd: OwnedReadHalf, shared: Arc<Shared>) {
    let mut partial: HashMap<u32, Vec<u8>> = HashMap::new();
    let why = loop {
        let mut buf = match read_frame(&mut rd).await {
            Ok(b) => b,
            Err(e) => break e.to_string(),
        };
        match handle_frame(&shared, &mut buf, &mut partial) {
            Ok(Some((call_id, result))) => {
                if let Some(tx) = shared
                    .waiters
                    .lock()
                    .expect("waiters lock")
                    .remove(&call_id)
                {
                    let _ = tx.send(result);
                }
            }
            Ok(None) => {}
            // A PDU we cannot trust ends the association: its sealing state is lost.
            Err(e) => break e.to_string(),
        }
    };
    let mut waiters = shared.waiters.lock().expect("waiters lock");
    *shared.closed.lock().expect("closed lock") = Some(why.clone());
    for (_, tx) in waiters.drain() {
        let _ = tx.send(Err(Error::Closed(why.clone())));
    }
}

type Completed = (u32, Result<Vec<u8>, Error>);

fn handle_frame(
    shared: &Shared,
    buf: &mut [u8],
    partial: &mut HashMap<u32, Vec<u8>>,
) -> Result<Option<Completed>, Error> {
    let frame = Frame::parse(buf)?;
    match frame.ptype {
        ptype::RESPONSE => {}
        ptype::FAULT => {
            let status = pdu::parse_fault(&buf[frame.body.clone()])?;
            partial.remove(&frame.call_id);
            return Ok(Some((
                frame.call_id,
                Err(Error::Fault {
                    opnum: 0,
                    status,
                    name: pdu::fault_name(status),
                }),
            )));
        }
        ptype::SHUTDOWN => return Err(Error::Closed("the server sent shutdown".into())),
        other => {
            return Err(Error::Unexpected(format!(
                "PDU type {other} where a response belongs"
            )))
        }
    }
    let stub_start = pdu::RESPONSE_STUB_OFFSET;
    match (&shared.seal, shared.level, &frame.auth) {
        (Some(seal), Some(level), Some((trailer, value))) => {
            let trailer_at = frame.trailer_offset().unwrap_or(value.start);
            if trailer.auth_context_id != AUTH_CONTEXT_ID || trailer.auth_level != level as u8 {
                return Err(Error::Unexpected(format!(
                    "response verifier for context {} level {}",
                    trailer.auth_context_id, trailer.auth_level
                )));
            }
            if trailer_at < stub_start {
                return Err(Error::Unexpected("response shorter than its header".into()));
            }
            let sig: Vec<u8> = buf[value.clone()].to_vec();
            let range = (level == AuthLevel::PktPrivacy).then_some(stub_start..trailer_at);
            seal.lock()
                .expect("seal lock")
                .unwrap(&mut buf[..value.start], range, &sig)?;
        }
        (Some(_), _, None) => {
            return Err(Error::Unexpected(
                "an unsigned response on a signed association".into(),
            ))
        }
        _ => {}
    }
    let (_, stub) = ResponseRepr::parse(&buf[frame.body.clone()])?;
    shared.received.fetch_add(1, Ordering::Relaxed);
    if frame.is_first() {
        partial.insert(frame.call_id, Vec::new());
    }
    let Some(acc) = partial.get_mut(&frame.call_id) else {
        return Err(Error::Unexpected(format!(
            "response fragment for call {} without a first fragment",
            frame.call_id
        )));
    };
    acc.extend_from_slice(stub);
    if !frame.is_last() {
        return Ok(None);
    }
    let stub = partial.remove(&frame.call_id).unwrap_or_default();
    Ok(Some((frame.call_id, Ok(stub))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn shared(level: Option<AuthLevel>) -> Shared {
        Shared {
            seal: level.map(|_| Mutex::new(NtlmSeal::client(&[3; 16], RPC_NTLM_FLAGS))),
            level,
            waiters: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    /// A sealed response fragment as the server would send it.
    fn sealed_response(server: &mut NtlmSeal, call_id: u32, flags: u8, stub: &[u8]) -> Vec<u8> {
        let body = ResponseRepr {
            alloc_hint: stub.len() as u32,
            context_id: CONTEXT_ID,
            cancel_count: 0,
        }
        .emit(stub);
        let trailer = SecTrailer {
            auth_type: AUTHN_WINNT,
            auth_level: AuthLevel::PktPrivacy as u8,
            auth_pad_length: pdu::auth_pad(stub.len()),
            auth_context_id: AUTH_CONTEXT_ID,
        };
        let (mut p, padded) = pdu::emit(
            ptype::RESPONSE,
            flags,
            call_id,
            &body,
            Some((trailer, SIGNATURE_LEN)),
        );
        let n = p.len() - SIGNATURE_LEN;
        let sig = server
            .wrap(&mut p[..n], Some(pdu::RESPONSE_STUB_OFFSET..padded.end))
            .unwrap();
        p[n..].copy_from_slice(&sig);
        p
    }

    fn server_seal() -> NtlmSeal {
        NtlmSeal::server(&[3; 16], RPC_NTLM_FLAGS)
    }

    #[test]
    fn sealed_fragments_reassemble_and_garbage_never_panics() {
        let s = shared(Some(AuthLevel::PktPrivacy));
        let mut server = server_seal();
        let mut partial = HashMap::new();
        let mut a = sealed_response(&mut server, 5, pfc::FIRST_FRAG, &[1; 20]);
        let mut b = sealed_response(&mut server, 5, pfc::LAST_FRAG, &[2; 7]);
        assert!(handle_frame(&s, &mut a, &mut partial).unwrap().is_none());
        let (id, stub) = handle_frame(&s, &mut b, &mut partial).unwrap().unwrap();
        assert_eq!(id, 5);
        let mut want = vec![1u8; 20];
        want.extend_from_slice(&[2; 7]);
        assert_eq!(stub.unwrap(), want);

        // A tampered fragment is refused (the association would close).
        let mut c = sealed_response(&mut server, 6, 3, &[9; 4]);
        c[20] ^= 1;
        assert!(handle_frame(&s, &mut c, &mut partial).is_err());

        let mut rng = StdRng::seed_from_u64(0x5157_4e02);
        for level in [None, Some(AuthLevel::PktPrivacy)] {
            let s = shared(level);
            let mut server = server_seal();
            let good = sealed_response(&mut server, 7, 3, &[4; 33]);
            for _ in 0..5_000 {
                let mut f = good.clone();
                for _ in 0..rng.random_range(1..5) {
                    let i = rng.random_range(0..f.len());
                    f[i] = rng.random();
                }
                f.truncate(rng.random_range(0..=f.len()));
                let _ = handle_frame(&s, &mut f, &mut HashMap::new());
            }
        }
    }
}
