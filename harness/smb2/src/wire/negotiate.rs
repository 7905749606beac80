//! SMB2 NEGOTIATE request/response and negotiate contexts (MS-SMB2 2.2.3, 2.2.4).

use super::{
    expect_structure_size, patch_u16, patch_u32, slice_at, Command, Guid, PutLe, Reader,
    RequestBody, ResponseBody, Result, WireError, HEADER_LEN,
};

/// Dialect revision numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dialect(pub u16);

impl Dialect {
    pub const SMB2_0_2: Dialect = Dialect(0x0202);
    pub const SMB2_1: Dialect = Dialect(0x0210);
    pub const SMB3_0: Dialect = Dialect(0x0300);
    pub const SMB3_0_2: Dialect = Dialect(0x0302);
    pub const SMB3_1_1: Dialect = Dialect(0x0311);
    /// SMB2 wildcard revision (only in a multi-protocol negotiate reply).
    pub const SMB2_WILDCARD: Dialect = Dialect(0x02FF);
    pub const ALL: [Dialect; 5] = [
        Dialect::SMB2_0_2,
        Dialect::SMB2_1,
        Dialect::SMB3_0,
        Dialect::SMB3_0_2,
        Dialect::SMB3_1_1,
    ];
    pub fn is_smb3(self) -> bool {
        self.0 >= 0x0300
    }
}

/// SecurityMode bits.
pub const SMB2_NEGOTIATE_SIGNING_ENABLED: u16 = 0x0001;
pub const SMB2_NEGOTIATE_SIGNING_REQUIRED: u16 = 0x0002;

/// Global capability bits.
pub mod capabilities {
    pub const SMB2_GLOBAL_CAP_DFS: u32 = 0x01;
    pub const SMB2_GLOBAL_CAP_LEASING: u32 = 0x02;
    pub const SMB2_GLOBAL_CAP_LARGE_MTU: u32 = 0x04;
    pub const SMB2_GLOBAL_CAP_MULTI_CHANNEL: u32 = 0x08;
    pub const SMB2_GLOBAL_CAP_PERSISTENT_HANDLES: u32 = 0x10;
    pub const SMB2_GLOBAL_CAP_DIRECTORY_LEASING: u32 = 0x20;
    pub const SMB2_GLOBAL_CAP_ENCRYPTION: u32 = 0x40;
}

/// Negotiate context types.
pub const SMB2_PREAUTH_INTEGRITY_CAPABILITIES: u16 = 0x0001;
pub const SMB2_ENCRYPTION_CAPABILITIES: u16 = 0x0002;
pub const SMB2_COMPRESSION_CAPABILITIES: u16 = 0x0003;
pub const SMB2_NETNAME_NEGOTIATE_CONTEXT_ID: u16 = 0x0005;
pub const SMB2_SIGNING_CAPABILITIES: u16 = 0x0008;

pub const SHA_512: u16 = 0x0001;

/// Cipher ids of SMB2_ENCRYPTION_CAPABILITIES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherId(pub u16);
impl CipherId {
    pub const NONE: CipherId = CipherId(0);
    pub const AES_128_CCM: CipherId = CipherId(1);
    pub const AES_128_GCM: CipherId = CipherId(2);
    pub const AES_256_CCM: CipherId = CipherId(3);
    pub const AES_256_GCM: CipherId = CipherId(4);
}

/// Signing algorithm ids of SMB2_SIGNING_CAPABILITIES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigningAlgorithmId(pub u16);
impl SigningAlgorithmId {
    pub const HMAC_SHA256: SigningAlgorithmId = SigningAlgorithmId(0);
    pub const AES_CMAC: SigningAlgorithmId = SigningAlgorithmId(1);
    pub const AES_GMAC: SigningAlgorithmId = SigningAlgorithmId(2);
}

/// One negotiate context, typed where this client knows the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateContext {
    PreauthIntegrity {
        hash_algorithms: Vec<u16>,
        salt: Vec<u8>,
    },
    Encryption {
        ciphers: Vec<CipherId>,
    },
    Signing {
        algorithms: Vec<SigningAlgorithmId>,
    },
    Netname(String),
    Raw {
        context_type: u16,
        data: Vec<u8>,
    },
}

impl NegotiateContext {
    pub fn context_type(&self) -> u16 {
        match self {
            NegotiateContext::PreauthIntegrity { .. } => SMB2_PREAUTH_INTEGRITY_CAPABILITIES,
            NegotiateContext::Encryption { .. } => SMB2_ENCRYPTION_CAPABILITIES,
            NegotiateContext::Signing { .. } => SMB2_SIGNING_CAPABILITIES,
            NegotiateContext::Netname(_) => SMB2_NETNAME_NEGOTIATE_CONTEXT_ID,
            NegotiateContext::Raw { context_type, .. } => *context_type,
        }
    }

    fn data(&self) -> Vec<u8> {
        let mut d = Vec::new();
        match self {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms,
                salt,
            } => {
                d.put_u16(hash_algorithms.len() as u16);
                d.put_u16(salt.len() as u16);
                for h in hash_algorithms {
                    d.put_u16(*h);
                }
                d.extend_from_slice(salt);
            }
            NegotiateContext::Encryption { ciphers } => {
                d.put_u16(ciphers.len() as u16);
                for c in ciphers {
                    d.put_u16(c.0);
                }
            }
            NegotiateContext::Signing { algorithms } => {
                d.put_u16(algorithms.len() as u16);
                for a in algorithms {
                    d.put_u16(a.0);
                }
            }
            NegotiateContext::Netname(n) => d.extend_from_slice(&super::utf16le(n)),
            NegotiateContext::Raw { data, .. } => d.extend_from_slice(data),
        }
        d
    }

    fn parse_one(context_type: u16, data: &[u8]) -> Result<NegotiateContext> {
        let mut r = Reader::new(data);
        Ok(match context_type {
            SMB2_PREAUTH_INTEGRITY_CAPABILITIES => {
                let n = r.u16("HashAlgorithmCount")?;
                let salt_len = r.u16("SaltLength")?;
                let mut hash_algorithms = Vec::new();
                for _ in 0..n {
                    hash_algorithms.push(r.u16("HashAlgorithms")?);
                }
                let salt = r.bytes(salt_len as usize, "Salt")?.to_vec();
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms,
                    salt,
                }
            }
            SMB2_ENCRYPTION_CAPABILITIES => {
                let n = r.u16("CipherCount")?;
                let mut ciphers = Vec::new();
                for _ in 0..n {
                    ciphers.push(CipherId(r.u16("Ciphers")?));
                }
                NegotiateContext::Encryption { ciphers }
            }
            SMB2_SIGNING_CAPABILITIES => {
                let n = r.u16("SigningAlgorithmCount")?;
                let mut algorithms = Vec::new();
                for _ in 0..n {
                    algorithms.push(SigningAlgorithmId(r.u16("SigningAlgorithms")?));
                }
                NegotiateContext::Signing { algorithms }
            }
            SMB2_NETNAME_NEGOTIATE_CONTEXT_ID => {
                NegotiateContext::Netname(super::from_utf16le(data))
            }
            _ => NegotiateContext::Raw {
                context_type,
                data: data.to_vec(),
            },
        })
    }
}

/// Emits contexts, each 8-byte aligned relative to the message start.
fn emit_contexts(buf: &mut Vec<u8>, contexts: &[NegotiateContext]) {
    for (i, c) in contexts.iter().enumerate() {
        if i > 0 {
            buf.pad_to(8);
        }
        let d = c.data();
        buf.put_u16(c.context_type());
        buf.put_u16(d.len() as u16);
        buf.put_u32(0);
        buf.extend_from_slice(&d);
    }
}

fn parse_contexts(msg: &[u8], offset: usize, count: u16) -> Result<Vec<NegotiateContext>> {
    let mut out = Vec::new();
    let mut pos = offset;
    for i in 0..count {
        if i > 0 {
            pos = pos
                .checked_add(7)
                .ok_or(WireError::OutOfBounds("NegotiateContext"))?
                & !7;
        }
        let mut r = Reader::at(msg, pos);
        let ty = r.u16("ContextType")?;
        let len = r.u16("DataLength")? as usize;
        r.skip(4, "Reserved")?;
        let data = r.bytes(len, "NegotiateContext data")?;
        out.push(NegotiateContext::parse_one(ty, data)?);
        pos = r.pos();
    }
    Ok(out)
}

/// SMB2 NEGOTIATE Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub security_mode: u16,
    pub capabilities: u32,
    pub client_guid: Guid,
    pub dialects: Vec<Dialect>,
    /// Sent only when `dialects` contains 3.1.1 (else ClientStartTime = 0).
    pub contexts: Vec<NegotiateContext>,
}

impl RequestBody for NegotiateRequest {
    const COMMAND: Command = Command::Negotiate;
    type Response = NegotiateResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(36);
        buf.put_u16(self.dialects.len() as u16);
        buf.put_u16(self.security_mode);
        buf.put_u16(0);
        buf.put_u32(self.capabilities);
        buf.extend_from_slice(&self.client_guid.0);
        let ctx_field = buf.len();
        buf.put_u64(0); // NegotiateContextOffset/Count/Reserved2 or ClientStartTime
        for d in &self.dialects {
            buf.put_u16(d.0);
        }
        let with_contexts = self.dialects.contains(&Dialect::SMB3_1_1) && !self.contexts.is_empty();
        if with_contexts {
            buf.pad_to(8);
            let off = (buf.len() - start + HEADER_LEN) as u32;
            patch_u32(buf, ctx_field, off);
            patch_u16(buf, ctx_field + 4, self.contexts.len() as u16);
            emit_contexts(buf, &self.contexts);
        }
    }
}

impl NegotiateRequest {
    pub fn parse(msg: &[u8]) -> Result<NegotiateRequest> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "NEGOTIATE request", 36)?;
        let n = r.u16("DialectCount")?;
        let security_mode = r.u16("SecurityMode")?;
        r.skip(2, "Reserved")?;
        let capabilities = r.u32("Capabilities")?;
        let client_guid = r.guid("ClientGuid")?;
        let ctx_off = r.u32("NegotiateContextOffset")?;
        let ctx_count = r.u16("NegotiateContextCount")?;
        r.skip(2, "Reserved2")?;
        let mut dialects = Vec::new();
        for _ in 0..n {
            dialects.push(Dialect(r.u16("Dialects")?));
        }
        let contexts = if dialects.contains(&Dialect::SMB3_1_1) && ctx_count > 0 {
            parse_contexts(msg, ctx_off as usize, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            security_mode,
            capabilities,
            client_guid,
            dialects,
            contexts,
        })
    }
}

/// SMB2 NEGOTIATE Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub security_mode: u16,
    pub dialect_revision: Dialect,
    pub server_guid: Guid,
    pub capabilities: u32,
    pub max_transact_size: u32,
    pub max_read_size: u32,
    pub max_write_size: u32,
    pub system_time: u64,
    pub server_start_time: u64,
    pub security_buffer: Vec<u8>,
    pub contexts: Vec<NegotiateContext>,
}

impl NegotiateResponse {
    pub fn cipher(&self) -> Option<CipherId> {
        self.contexts.iter().find_map(|c| match c {
            NegotiateContext::Encryption { ciphers } => ciphers.first().copied(),
            _ => None,
        })
    }
    pub fn signing_algorithm(&self) -> Option<SigningAlgorithmId> {
        self.contexts.iter().find_map(|c| match c {
            NegotiateContext::Signing { algorithms } => algorithms.first().copied(),
            _ => None,
        })
    }
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.put_u16(65);
        buf.put_u16(self.security_mode);
        buf.put_u16(self.dialect_revision.0);
        buf.put_u16(if self.dialect_revision == Dialect::SMB3_1_1 {
            self.contexts.len() as u16
        } else {
            0
        });
        buf.extend_from_slice(&self.server_guid.0);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.max_transact_size);
        buf.put_u32(self.max_read_size);
        buf.put_u32(self.max_write_size);
        buf.put_u64(self.system_time);
        buf.put_u64(self.server_start_time);
        buf.put_u16((HEADER_LEN + 64) as u16);
        buf.put_u16(self.security_buffer.len() as u16);
        let ctx_field = buf.len();
        buf.put_u32(0);
        buf.extend_from_slice(&self.security_buffer);
        if self.dialect_revision == Dialect::SMB3_1_1 && !self.contexts.is_empty() {
            buf.pad_to(8);
            let off = (buf.len() - start + HEADER_LEN) as u32;
            patch_u32(buf, ctx_field, off);
            emit_contexts(buf, &self.contexts);
        }
    }
}

impl ResponseBody for NegotiateResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "NEGOTIATE response", 65)?;
        let security_mode = r.u16("SecurityMode")?;
        let dialect_revision = Dialect(r.u16("DialectRevision")?);
        let ctx_count = r.u16("NegotiateContextCount")?;
        let server_guid = r.guid("ServerGuid")?;
        let capabilities = r.u32("Capabilities")?;
        let max_transact_size = r.u32("MaxTransactSize")?;
        let max_read_size = r.u32("MaxReadSize")?;
        let max_write_size = r.u32("MaxWriteSize")?;
        let system_time = r.u64("SystemTime")?;
        let server_start_time = r.u64("ServerStartTime")?;
        let sb_off = r.u16("SecurityBufferOffset")? as usize;
        let sb_len = r.u16("SecurityBufferLength")? as usize;
        let ctx_off = r.u32("NegotiateContextOffset")? as usize;
        let security_buffer = if sb_len == 0 {
            Vec::new()
        } else {
            slice_at(msg, sb_off, sb_len, "SecurityBuffer")?.to_vec()
        };
        let contexts = if dialect_revision == Dialect::SMB3_1_1 && ctx_count > 0 {
            parse_contexts(msg, ctx_off, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode,
            dialect_revision,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            server_start_time,
            security_buffer,
            contexts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        body(&mut b);
        b
    }

    #[test]
    fn request_round_trip() {
        let req = NegotiateRequest {
            security_mode: SMB2_NEGOTIATE_SIGNING_ENABLED,
            capabilities: 0x7f,
            client_guid: Guid([3; 16]),
            dialects: Dialect::ALL.to_vec(),
            contexts: vec![
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![SHA_512],
                    salt: vec![1; 32],
                },
                NegotiateContext::Encryption {
                    ciphers: vec![CipherId::AES_128_GCM, CipherId::AES_128_CCM],
                },
                NegotiateContext::Signing {
                    algorithms: vec![SigningAlgorithmId::AES_GMAC],
                },
            ],
        };
        let msg = with_header(|b| req.emit(b));
        assert_eq!(NegotiateRequest::parse(&msg).unwrap(), req);
    }

    #[test]
    fn response_round_trip() {
        let resp = NegotiateResponse {
            security_mode: 1,
            dialect_revision: Dialect::SMB3_1_1,
            server_guid: Guid([7; 16]),
            capabilities: 0x2f,
            max_transact_size: 8 << 20,
            max_read_size: 8 << 20,
            max_write_size: 8 << 20,
            system_time: 1,
            server_start_time: 0,
            security_buffer: vec![0x60, 1, 2],
            contexts: vec![
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms: vec![SHA_512],
                    salt: vec![9; 32],
                },
                NegotiateContext::Encryption {
                    ciphers: vec![CipherId::AES_128_GCM],
                },
            ],
        };
        let msg = with_header(|b| resp.emit_body(b));
        let back = NegotiateResponse::parse(&msg).unwrap();
        assert_eq!(back, resp);
        assert_eq!(back.cipher(), Some(CipherId::AES_128_GCM));
    }
}
