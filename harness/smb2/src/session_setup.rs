//! SESSION_SETUP: NTLMv2 inside SPNEGO, the 3.1.1 preauth hash, session
//! key derivation and the signing/encryption policy of the new session.

use std::sync::Arc;

use crate::connection::{Connection, Outgoing, Protection};
use crate::crypto::kdf::derive_session_keys;
use crate::crypto::signing;
use crate::error::{Error, Result};
use crate::ntlm::{self, ChallengeMessage, Credentials};
use crate::options::RequestOptions;
use crate::response::{Received, Response};
use crate::session::{Security, Session};
use crate::spnego;
use crate::wire::session_setup::*;
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

/// One SESSION_SETUP round trip; returns the plaintext request as sent (for the preauth hash).
pub(crate) async fn setup_round(
    conn: &Connection,
    session_id: u64,
    req: &SessionSetupRequest,
    protection: Protection,
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
            protection,
            opts: opts.clone(),
        })
        .await?;
    let sent = p.sent.clone().unwrap_or_default();
    Ok((sent, p.wait().await?))
}

/// The NTLMSSP CHALLENGE_MESSAGE inside the first SESSION_SETUP response's SPNEGO token.
pub(crate) fn challenge_of(rx1: Received) -> Result<ChallengeMessage> {
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
    let challenge_bytes = spnego::NegTokenResp::parse(&token)
        .map_err(malformed)?
        .response_token
        .ok_or_else(|| Error::Protocol("SPNEGO response without NTLMSSP challenge".into()))?;
    ChallengeMessage::parse(&challenge_bytes).map_err(malformed)
}

pub(crate) fn status_error(rx: Received, command: Command) -> Error {
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
        let (sent1, rx1) = setup_round(self, 0, &req1, Protection::default(), &o.request).await?;
        if rx1.header.status != NtStatus::STATUS_MORE_PROCESSING_REQUIRED {
            return Err(status_error(rx1, Command::SessionSetup));
        }
        if let Some(h) = preauth.as_mut() {
            h.update(&sent1);
            h.update(&rx1.raw);
        }
        let session_id = rx1.header.session_id;
        let challenge = challenge_of(rx1)?;

        // Round 2: AUTHENTICATE_MESSAGE.
        let (auth, session_key) =
            ntlm::authenticate_message(&o.credentials, &challenge, rand::random());
        let req2 = SessionSetupRequest {
            security_buffer: spnego::neg_token_resp(&auth),
            ..base
        };
        let (sent2, rx2) =
            setup_round(self, session_id, &req2, Protection::default(), &o.request).await?;
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
        Ok(Session::new(
            self.clone(),
            session_id,
            session_flags,
            security,
            keys,
            r2,
        ))
    }
}
