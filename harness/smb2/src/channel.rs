//! Binding a further channel to an established session (MS-SMB2 3.2.4.2.3 with
//! SMB2_SESSION_FLAG_BINDING, 3.2.5.3): a new connection, NEGOTIATEd with the
//! session's dialect and ClientGuid, authenticates again as the same user; the
//! binding requests are signed with the session's signing key, and the channel
//! gets its own signing key, derived from this authentication's session key
//! and, in 3.1.1, this channel's own preauth integrity hash.

use std::sync::Arc;

use crate::connection::{Connection, Protection};
use crate::crypto::kdf::derive_session_keys;
use crate::crypto::signing;
use crate::error::{Error, Result};
use crate::ntlm::{self, Credentials};
use crate::options::RequestOptions;
use crate::response::Response;
use crate::session::{Security, Session};
use crate::session_setup::{challenge_of, setup_round, status_error};
use crate::spnego;
use crate::tree::Tree;
use crate::wire::session_setup::*;
use crate::wire::{Command, HeaderFlags};
use crate::NtStatus;

impl Session {
    /// Binds `conn` to this session as a further channel and returns the
    /// session as seen on that channel (same SessionId and encryption keys,
    /// the channel's own signing key). `conn` must have NEGOTIATEd a 3.x
    /// dialect; the server checks it matches the session's, and the
    /// ClientGuid.
    pub async fn bind(
        &self,
        conn: &Connection,
        credentials: &Credentials,
        opts: &RequestOptions,
    ) -> Result<Session> {
        let neg = conn
            .negotiated()
            .ok_or_else(|| Error::Protocol("binding before NEGOTIATE".into()))?;
        if !neg.dialect.is_smb3() {
            return Err(Error::Protocol(format!(
                "binding needs a 3.x dialect; the channel negotiated {:?}",
                neg.dialect
            )));
        }
        let s = self.security();
        // Session.SigningKey signs the binding requests (3.2.4.1.1).
        let session_signing = Protection {
            sign: Some((s.signing_algorithm, s.signing_key.clone())),
            encrypt: None,
        };
        let mut preauth = neg.preauth.clone();
        let base = SessionSetupRequest {
            flags: SMB2_SESSION_FLAG_BINDING,
            security_mode: crate::wire::negotiate::SMB2_NEGOTIATE_SIGNING_ENABLED as u8,
            capabilities: 0,
            channel: 0,
            previous_session_id: 0,
            security_buffer: Vec::new(),
        };
        let req1 = SessionSetupRequest {
            security_buffer: spnego::neg_token_init(&ntlm::negotiate_message(ntlm::CLIENT_FLAGS)),
            ..base.clone()
        };
        let (sent1, rx1) =
            setup_round(conn, self.id(), &req1, session_signing.clone(), opts).await?;
        if rx1.header.status != NtStatus::STATUS_MORE_PROCESSING_REQUIRED {
            return Err(status_error(rx1, Command::SessionSetup));
        }
        if let Some(h) = preauth.as_mut() {
            h.update(&sent1);
            h.update(&rx1.raw);
        }
        let challenge = challenge_of(rx1)?;
        let (auth, session_key) =
            ntlm::authenticate_message(credentials, &challenge, rand::random());
        let req2 = SessionSetupRequest {
            security_buffer: spnego::neg_token_resp(&auth),
            ..base
        };
        let (sent2, rx2) = setup_round(conn, self.id(), &req2, session_signing, opts).await?;
        if rx2.header.status != NtStatus::STATUS_SUCCESS {
            return Err(status_error(rx2, Command::SessionSetup));
        }
        if let Some(h) = preauth.as_mut() {
            h.update(&sent2);
        }
        let channel_keys = derive_session_keys(
            neg.dialect,
            &session_key,
            preauth.as_ref().map(|h| &h.0[..]).unwrap_or(&[]),
            s.cipher.map(|c| c.key_len()).unwrap_or(16),
        );
        let signing_key = Arc::new(channel_keys.signing_key);
        // The final binding response is signed with the channel's key: it proves
        // both sides derived the same one.
        if !rx2.header.flags.contains(HeaderFlags::SIGNED)
            || !signing::verify(s.signing_algorithm, &signing_key, &rx2.raw)
        {
            return Err(Error::BadSignature {
                command: Command::SessionSetup,
                message_id: rx2.header.message_id,
                raw: rx2.raw,
            });
        }
        let r2 = Response::<SessionSetupResponse>::decode(rx2, Command::SessionSetup)?;
        if let Some(c) = s.cipher {
            conn.register_decryptor(self.id(), c, Arc::new(self.keys().decryption_key.clone()));
        }
        let mut keys = self.keys().clone();
        keys.signing_key = signing_key.to_vec();
        Ok(Session::new(
            conn.clone(),
            self.id(),
            self.flags(),
            Security {
                signing_key,
                ..s.clone()
            },
            keys,
            r2,
        ))
    }
}

impl Tree {
    /// This tree connect as seen from another channel of its session (a tree
    /// connect belongs to the session, not to a connection).
    pub fn on_channel(&self, channel: &Session) -> Tree {
        Tree::new(
            channel.clone(),
            self.id(),
            self.share().clone(),
            self.connect_header().clone(),
        )
    }
}
