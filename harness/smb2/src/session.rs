//! Session setup (NTLMv2 in SPNEGO), session keys, signing/encryption
//! policy, and the requests that run inside a session.

use std::sync::Arc;

use crate::connection::{Connection, Outgoing, PendingRaw, Protection, RequestOptions};
use crate::crypto::encryption::Cipher;
use crate::crypto::kdf::{derive_session_keys, SessionKeys};
use crate::crypto::signing::{self, SigningAlgorithm};
use crate::error::{Error, Result};
use crate::ntlm::{self, ChallengeMessage, Credentials};
use crate::response::{Received, Response};
use crate::spnego;
use crate::tree::Tree;
use crate::wire::logoff::{LogoffRequest, LogoffResponse};
use crate::wire::negotiate::Dialect;
use crate::wire::session_setup::*;
use crate::wire::tree_connect::TreeConnectRequest;
use crate::wire::{Command, HeaderFlags, RequestBody, HEADER_LEN};
use crate::NtStatus;

/// How to set up a session.
#[derive(Debug, Clone)]
pub struct SessionSetupOptions {
    pub credentials: Credentials,
    /// PreviousSessionId: asks the server to tear down the old session
    /// (session reconnect after a lost connection).
    pub previous_session_id: u64,
    /// SESSION_SETUP Flags (SMB2_SESSION_FLAG_BINDING).
    pub flags: u8,
    pub security_mode: u8,
    pub capabilities: u32,
    /// Sign requests once the session exists (if the server does not
    /// require it anyway). Ignored for guest/anonymous sessions.
    pub sign: bool,
    /// Encrypt every request even if the server does not require it (3.x).
    pub encrypt: bool,
    /// Options for each SESSION_SETUP round trip.
    pub request: RequestOptions,
}

impl SessionSetupOptions {
    pub fn new(credentials: Credentials) -> Self {
        SessionSetupOptions {
            credentials,
            previous_session_id: 0,
            flags: 0,
            security_mode: crate::wire::negotiate::SMB2_NEGOTIATE_SIGNING_ENABLED as u8,
            capabilities: 0,
            sign: true,
            encrypt: false,
            request: RequestOptions::default(),
        }
    }
}

/// Keys and policy of an established session.
#[derive(Clone)]
pub(crate) struct Security {
    pub dialect: Dialect,
    pub signing_algorithm: SigningAlgorithm,
    pub signing_key: Arc<Vec<u8>>,
    pub cipher: Option<Cipher>,
    pub encryption_key: Arc<Vec<u8>>,
    pub sign: bool,
    pub encrypt: bool,
}

struct Inner {
    conn: Connection,
    session_id: u64,
    session_flags: u16,
    security: Security,
    keys: SessionKeys,
    setup_response: Response<SessionSetupResponse>,
}

/// An authenticated session on one connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &format_args!("{:#x}", self.inner.session_id))
            .field("session_flags", &self.inner.session_flags)
            .finish_non_exhaustive()
    }
}

async fn setup_round(
    conn: &Connection,
    session_id: u64,
    req: &SessionSetupRequest,
    opts: &RequestOptions,
) -> Result<(Vec<u8>, Received)> {
    let mut msg = vec![0u8; HEADER_LEN];
    req.emit(&mut msg);
    let p = conn
        .submit(Outgoing {
            command: Command::SessionSetup,
            msg,
            session_id,
            tree_id: 0,
            payload_size: 0,
            keep_sent: true,
            protection: Protection::default(),
            opts: opts.clone(),
        })
        .await?;
    let sent = p.sent.clone().unwrap_or_default();
    Ok((sent, p.wait().await?))
}

fn status_error(rx: Received, command: Command) -> Error {
    let error = crate::wire::error_response::ErrorResponse::parse(&rx.raw).ok();
    Error::Status {
        command,
        status: rx.header.status,
        header: Box::new(rx.header),
        error,
        raw: rx.raw,
    }
}

impl Connection {
    /// NTLMv2-in-SPNEGO SESSION_SETUP. Returns the session, or the
    /// server's status (e.g. STATUS_LOGON_FAILURE) as [`Error::Status`].
    pub async fn session_setup(&self, o: &SessionSetupOptions) -> Result<Session> {
        let neg = self
            .negotiated()
            .ok_or_else(|| Error::Protocol("SESSION_SETUP before NEGOTIATE".into()))?;
        let mut preauth = neg.preauth.clone();
        let base = SessionSetupRequest {
            flags: o.flags,
            security_mode: o.security_mode,
            capabilities: o.capabilities,
            channel: 0,
            previous_session_id: o.previous_session_id,
            security_buffer: Vec::new(),
        };

        // Round 1: NEGOTIATE_MESSAGE -> CHALLENGE_MESSAGE.
        let req1 = SessionSetupRequest {
            security_buffer: spnego::neg_token_init(&ntlm::negotiate_message(ntlm::CLIENT_FLAGS)),
            ..base.clone()
        };
        let (sent1, rx1) = setup_round(self, 0, &req1, &o.request).await?;
        if rx1.header.status != NtStatus::STATUS_MORE_PROCESSING_REQUIRED {
            return Err(status_error(rx1, Command::SessionSetup));
        }
        if let Some(h) = preauth.as_mut() {
            h.update(&sent1);
            h.update(&rx1.raw);
        }
        let session_id = rx1.header.session_id;
        let r1 = Response::<SessionSetupResponse>::decode(rx1, Command::SessionSetup)?;
        let token = r1
            .body()
            .map(|b| b.security_buffer.clone())
            .unwrap_or_default();
        let malformed = |e| Error::Malformed {
            command: Command::SessionSetup,
            source: e,
            header: Some(Box::new(r1.header.clone())),
            raw: r1.raw.clone(),
        };
        let resp_tok = spnego::NegTokenResp::parse(&token).map_err(malformed)?;
        let challenge_bytes = resp_tok
            .response_token
            .ok_or_else(|| Error::Protocol("SPNEGO response without NTLMSSP challenge".into()))?;
        let challenge = ChallengeMessage::parse(&challenge_bytes).map_err(malformed)?;

        // Round 2: AUTHENTICATE_MESSAGE.
        let (auth, session_key) =
            ntlm::authenticate_message(&o.credentials, &challenge, rand::random());
        let req2 = SessionSetupRequest {
            security_buffer: spnego::neg_token_resp(&auth),
            ..base
        };
        let (sent2, rx2) = setup_round(self, session_id, &req2, &o.request).await?;
        if rx2.header.status != NtStatus::STATUS_SUCCESS {
            return Err(status_error(rx2, Command::SessionSetup));
        }
        if let Some(h) = preauth.as_mut() {
            h.update(&sent2);
        }
        let cipher = neg.cipher;
        let keys = derive_session_keys(
            neg.dialect,
            &session_key,
            preauth.as_ref().map(|h| &h.0[..]).unwrap_or(&[]),
            cipher.map(|c| c.key_len()).unwrap_or(16),
        );
        let signing_key = Arc::new(keys.signing_key.clone());
        // The final response is signed with the new key; check it.
        if rx2.header.flags.contains(HeaderFlags::SIGNED)
            && !signing::verify(neg.signing_algorithm, &signing_key, &rx2.raw)
        {
            return Err(Error::BadSignature {
                command: Command::SessionSetup,
                message_id: rx2.header.message_id,
                raw: rx2.raw,
            });
        }
        let r2 = Response::<SessionSetupResponse>::decode(rx2, Command::SessionSetup)?;
        let session_flags = r2.body().map(|b| b.session_flags).unwrap_or(0);
        let anonymous =
            session_flags & (SMB2_SESSION_FLAG_IS_GUEST | SMB2_SESSION_FLAG_IS_NULL) != 0;
        let server_requires =
            neg.server_security_mode & crate::wire::negotiate::SMB2_NEGOTIATE_SIGNING_REQUIRED != 0;
        let client_requires =
            neg.client_security_mode & crate::wire::negotiate::SMB2_NEGOTIATE_SIGNING_REQUIRED != 0;
        let encrypt = neg.dialect.is_smb3()
            && cipher.is_some()
            && (session_flags & SMB2_SESSION_FLAG_ENCRYPT_DATA != 0 || o.encrypt);
        if let Some(c) = cipher.filter(|_| neg.dialect.is_smb3()) {
            self.register_decryptor(session_id, c, Arc::new(keys.decryption_key.clone()));
        }
        let security = Security {
            dialect: neg.dialect,
            signing_algorithm: neg.signing_algorithm,
            signing_key,
            cipher: cipher.filter(|_| neg.dialect.is_smb3()),
            encryption_key: Arc::new(keys.encryption_key.clone()),
            sign: !anonymous && (o.sign || server_requires || client_requires),
            encrypt,
        };
        Ok(Session {
            inner: Arc::new(Inner {
                conn: self.clone(),
                session_id,
                session_flags,
                security,
                keys,
                setup_response: r2,
            }),
        })
    }
}

/// A request in flight within a session; await [`Pending::wait`].
pub struct Pending<T> {
    raw: PendingRaw,
    session: Session,
    protection: Protection,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: crate::wire::ResponseBody> Pending<T> {
    pub fn message_id(&self) -> u64 {
        self.raw.message_id
    }
    /// The AsyncId from an interim response, if one has arrived.
    pub fn async_id(&self) -> Option<u64> {
        self.session.inner.conn.async_id_of(self.raw.message_id)
    }
    /// Sends SMB2 CANCEL for this request, protected as the request was.
    pub async fn cancel(&self) -> Result<()> {
        self.session
            .inner
            .conn
            .send_cancel(
                self.raw.message_id,
                self.session.inner.session_id,
                self.protection.clone(),
            )
            .await
    }
    /// Waits for the final response, checks its signature, parses it.
    pub async fn wait(self) -> Result<Response<T>> {
        let command = self.raw.command;
        let rx = self.raw.wait().await?;
        self.session.check_protection(&rx, &self.protection)?;
        Response::decode(rx, command)
    }
}

impl Session {
    pub fn id(&self) -> u64 {
        self.inner.session_id
    }
    pub fn flags(&self) -> u16 {
        self.inner.session_flags
    }
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }
    /// The final SESSION_SETUP response.
    pub fn setup_response(&self) -> &Response<SessionSetupResponse> {
        &self.inner.setup_response
    }
    pub fn keys(&self) -> &SessionKeys {
        &self.inner.keys
    }
    pub fn signs(&self) -> bool {
        self.inner.security.sign
    }
    pub fn encrypts(&self) -> bool {
        self.inner.security.encrypt
    }
    pub fn dialect(&self) -> Dialect {
        self.inner.security.dialect
    }

    fn protection(&self, tree_encrypt: bool, opts: &RequestOptions) -> Protection {
        let s = &self.inner.security;
        let encrypt = opts.encrypt.unwrap_or(s.encrypt || tree_encrypt) && s.cipher.is_some();
        let sign = !encrypt && opts.sign.unwrap_or(s.sign);
        Protection {
            sign: sign.then(|| (s.signing_algorithm, s.signing_key.clone())),
            encrypt: if encrypt {
                s.cipher.map(|c| (c, s.encryption_key.clone()))
            } else {
                None
            },
        }
    }

    /// Signed responses must verify; on a protected request an unsigned,
    /// unencrypted answer is an error unless the server no longer knows
    /// the session (then it cannot sign).
    fn check_protection(&self, rx: &Received, p: &Protection) -> Result<()> {
        let s = &self.inner.security;
        if rx.encrypted {
            return Ok(());
        }
        if rx.header.flags.contains(HeaderFlags::SIGNED) {
            if !signing::verify(s.signing_algorithm, &s.signing_key, &rx.raw) {
                return Err(Error::BadSignature {
                    command: rx.header.command,
                    message_id: rx.header.message_id,
                    raw: rx.raw.clone(),
                });
            }
            return Ok(());
        }
        let exempt = matches!(
            rx.header.status,
            NtStatus::STATUS_USER_SESSION_DELETED | NtStatus::STATUS_NETWORK_SESSION_EXPIRED
        );
        if (p.sign.is_some() || p.encrypt.is_some()) && !exempt {
            return Err(Error::Unprotected {
                command: rx.header.command,
                message_id: rx.header.message_id,
                raw: rx.raw.clone(),
            });
        }
        Ok(())
    }

    /// Sends `body` in this session on tree `tree_id`.
    pub async fn submit<B: RequestBody>(
        &self,
        tree_id: u32,
        tree_encrypt: bool,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<Pending<B::Response>> {
        let mut msg = Vec::with_capacity(HEADER_LEN + 64 + body.payload_size());
        msg.resize(HEADER_LEN, 0);
        body.emit(&mut msg);
        let protection = self.protection(tree_encrypt, opts);
        let raw = self
            .inner
            .conn
            .submit(Outgoing {
                command: B::COMMAND,
                msg,
                session_id: self.inner.session_id,
                tree_id,
                payload_size: body.payload_size(),
                keep_sent: false,
                protection: protection.clone(),
                opts: opts.clone(),
            })
            .await?;
        Ok(Pending {
            raw,
            session: self.clone(),
            protection,
            _t: std::marker::PhantomData,
        })
    }

    /// Sends `body` and waits for its final response.
    pub async fn request<B: RequestBody>(
        &self,
        tree_id: u32,
        tree_encrypt: bool,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<Response<B::Response>> {
        self.submit(tree_id, tree_encrypt, body, opts)
            .await?
            .wait()
            .await
    }

    /// TREE_CONNECT to `path` (`\\server\share`).
    pub async fn tree_connect(&self, path: &str) -> Result<Tree> {
        self.tree_connect_with(
            &TreeConnectRequest {
                flags: 0,
                path: path.into(),
            },
            &RequestOptions::default(),
        )
        .await
    }

    pub async fn tree_connect_with(
        &self,
        req: &TreeConnectRequest,
        opts: &RequestOptions,
    ) -> Result<Tree> {
        let r = self.request(0, false, req, opts).await?;
        let tree_id = r.header.tree_id().unwrap_or(0);
        let header = r.header.clone();
        let body = r.ok()?;
        Ok(Tree::new(self.clone(), tree_id, body, header))
    }

    /// LOGOFF.
    pub async fn logoff(&self, opts: &RequestOptions) -> Result<Response<LogoffResponse>> {
        self.request(0, false, &LogoffRequest, opts).await
    }
}
