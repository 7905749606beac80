//! An established session: its keys and signing/encryption policy, and
//! the requests that run inside it.

use std::sync::Arc;

use crate::connection::{Connection, Outgoing, PendingRaw, Protection, RequestOptions};
use crate::crypto::encryption::Cipher;
use crate::crypto::kdf::SessionKeys;
use crate::crypto::signing::{self, SigningAlgorithm};
use crate::error::{Error, Result};
use crate::response::{Received, Response};
use crate::tree::Tree;
use crate::wire::logoff::{LogoffRequest, LogoffResponse};
use crate::wire::negotiate::Dialect;
use crate::wire::session_setup::*;
use crate::wire::tree_connect::TreeConnectRequest;
use crate::wire::{HeaderFlags, RequestBody, HEADER_LEN};
use crate::NtStatus;

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
    pub(crate) fn new(
        conn: Connection,
        session_id: u64,
        session_flags: u16,
        security: Security,
        keys: SessionKeys,
        setup_response: Response<SessionSetupResponse>,
    ) -> Session {
        Session {
            inner: Arc::new(Inner {
                conn,
                session_id,
                session_flags,
                security,
                keys,
                setup_response,
            }),
        }
    }

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
    pub(crate) fn security(&self) -> &Security {
        &self.inner.security
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
