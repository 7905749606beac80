//! NEGOTIATE: what the connection settles before any session.

use crate::connection::{Connection, Outgoing, Protection};
use crate::crypto::encryption::Cipher;
use crate::crypto::preauth::PreauthHash;
use crate::crypto::signing::SigningAlgorithm;
use crate::error::Result;
use crate::options::RequestOptions;
use crate::response::Response;
use crate::wire::header::HEADER_LEN;
use crate::wire::negotiate::{
    capabilities::SMB2_GLOBAL_CAP_LARGE_MTU, CipherId, Dialect, NegotiateContext, NegotiateRequest,
    NegotiateResponse, SigningAlgorithmId, SHA_512, SMB2_NEGOTIATE_SIGNING_ENABLED,
};
use crate::wire::{Command, Guid, RequestBody};

/// What NEGOTIATE settled.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub dialect: Dialect,
    pub client_guid: Guid,
    pub client_security_mode: u16,
    pub server_security_mode: u16,
    pub capabilities: u32,
    pub server_guid: Guid,
    pub max_transact_size: u32,
    pub max_read_size: u32,
    pub max_write_size: u32,
    pub cipher: Option<Cipher>,
    pub signing_algorithm: SigningAlgorithm,
    /// Connection.PreauthIntegrityHashValue after NEGOTIATE (3.1.1).
    pub preauth: Option<PreauthHash>,
    pub response: NegotiateResponse,
}

impl Negotiated {
    pub fn multi_credit(&self) -> bool {
        self.dialect >= Dialect::SMB2_1 && self.capabilities & SMB2_GLOBAL_CAP_LARGE_MTU != 0
    }
}

impl Connection {
    /// NEGOTIATE. On success the connection remembers the dialect, the
    /// cipher and signing algorithm, and (3.1.1) the preauth hash.
    pub async fn negotiate(
        &self,
        req: &NegotiateRequest,
        opts: &RequestOptions,
    ) -> Result<Response<NegotiateResponse>> {
        let mut msg = vec![0u8; HEADER_LEN];
        req.emit(&mut msg);
        let pending = self
            .submit(Outgoing {
                command: Command::Negotiate,
                msg,
                session_id: 0,
                tree_id: 0,
                payload_size: 0,
                keep_sent: true,
                protection: Protection::default(),
                opts: opts.clone(),
            })
            .await?;
        let sent = pending.sent.clone().unwrap_or_default();
        let rx = pending.wait().await?;
        let resp = Response::<NegotiateResponse>::decode(rx, Command::Negotiate)?;
        if let Some(body) = resp.body() {
            if resp.status().is_success() {
                let dialect = body.dialect_revision;
                let preauth = (dialect == Dialect::SMB3_1_1).then(|| {
                    let mut h = PreauthHash::default();
                    h.update(&sent);
                    h.update(&resp.raw);
                    h
                });
                let cipher = if dialect == Dialect::SMB3_1_1 {
                    body.cipher().and_then(Cipher::from_id)
                } else if dialect.is_smb3()
                    && body.capabilities
                        & crate::wire::negotiate::capabilities::SMB2_GLOBAL_CAP_ENCRYPTION
                        != 0
                {
                    Some(Cipher::Aes128Ccm)
                } else {
                    None
                };
                let signing_algorithm = if dialect == Dialect::SMB3_1_1 {
                    match body.signing_algorithm() {
                        Some(SigningAlgorithmId::AES_GMAC) => SigningAlgorithm::AesGmac,
                        Some(SigningAlgorithmId::HMAC_SHA256) => SigningAlgorithm::HmacSha256,
                        _ => SigningAlgorithm::AesCmac,
                    }
                } else if dialect.is_smb3() {
                    SigningAlgorithm::AesCmac
                } else {
                    SigningAlgorithm::HmacSha256
                };
                self.set_negotiated(Negotiated {
                    dialect,
                    client_guid: req.client_guid,
                    client_security_mode: req.security_mode,
                    server_security_mode: body.security_mode,
                    capabilities: body.capabilities,
                    server_guid: body.server_guid,
                    max_transact_size: body.max_transact_size,
                    max_read_size: body.max_read_size,
                    max_write_size: body.max_write_size,
                    cipher,
                    signing_algorithm,
                    preauth,
                    response: body.clone(),
                });
            }
        }
        Ok(resp)
    }
}

/// The NEGOTIATE request most callers want: the given dialects, signing
/// enabled (or required), and for 3.1.1 the SHA-512 preauth, cipher and
/// signing contexts.
pub fn default_negotiate_request(
    dialects: &[Dialect],
    client_guid: Guid,
    signing_required: bool,
) -> NegotiateRequest {
    use crate::wire::negotiate::capabilities::*;
    let mut caps = 0;
    if dialects.iter().any(|d| *d >= Dialect::SMB2_1) {
        caps |= SMB2_GLOBAL_CAP_LEASING | SMB2_GLOBAL_CAP_LARGE_MTU;
    }
    if dialects.iter().any(|d| d.is_smb3()) {
        caps |= SMB2_GLOBAL_CAP_ENCRYPTION | SMB2_GLOBAL_CAP_PERSISTENT_HANDLES;
    }
    NegotiateRequest {
        security_mode: SMB2_NEGOTIATE_SIGNING_ENABLED
            | if signing_required {
                crate::wire::negotiate::SMB2_NEGOTIATE_SIGNING_REQUIRED
            } else {
                0
            },
        capabilities: caps,
        client_guid,
        dialects: dialects.to_vec(),
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![SHA_512],
                salt: rand::random::<[u8; 32]>().to_vec(),
            },
            NegotiateContext::Encryption {
                ciphers: vec![
                    CipherId::AES_128_GCM,
                    CipherId::AES_128_CCM,
                    CipherId::AES_256_GCM,
                    CipherId::AES_256_CCM,
                ],
            },
            NegotiateContext::Signing {
                algorithms: vec![
                    SigningAlgorithmId::AES_GMAC,
                    SigningAlgorithmId::AES_CMAC,
                    SigningAlgorithmId::HMAC_SHA256,
                ],
            },
        ],
    }
}
