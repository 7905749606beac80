//! SMB2 CREATE request/response (MS-SMB2 2.2.13, 2.2.14).

use super::create_contexts::{emit_chain, parse_chain, CreateContext, Lease};
use super::{
    expect_structure_size, patch_u32, slice_at, utf16le, Command, FileId, Guid, PutLe, Reader,
    RequestBody, ResponseBody, Result, HEADER_LEN,
};

/// RequestedOplockLevel / OplockLevel.
pub mod oplock_level {
    pub const SMB2_OPLOCK_LEVEL_NONE: u8 = 0x00;
    pub const SMB2_OPLOCK_LEVEL_II: u8 = 0x01;
    pub const SMB2_OPLOCK_LEVEL_EXCLUSIVE: u8 = 0x08;
    pub const SMB2_OPLOCK_LEVEL_BATCH: u8 = 0x09;
    pub const SMB2_OPLOCK_LEVEL_LEASE: u8 = 0xFF;
}

pub mod impersonation {
    pub const ANONYMOUS: u32 = 0;
    pub const IDENTIFICATION: u32 = 1;
    pub const IMPERSONATION: u32 = 2;
    pub const DELEGATE: u32 = 3;
}

/// Access mask bits (MS-SMB2 2.2.13.1).
pub mod access {
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    pub const FILE_APPEND_DATA: u32 = 0x0000_0004;
    pub const FILE_READ_EA: u32 = 0x0000_0008;
    pub const FILE_WRITE_EA: u32 = 0x0000_0010;
    pub const FILE_EXECUTE: u32 = 0x0000_0020;
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    pub const DELETE: u32 = 0x0001_0000;
    pub const READ_CONTROL: u32 = 0x0002_0000;
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    pub const GENERIC_ALL: u32 = 0x1000_0000;
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    pub const GENERIC_READ: u32 = 0x8000_0000;
    /// What smbtorture's "all access" means: SEC_RIGHTS_FILE_ALL.
    pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
}

pub mod share_access {
    pub const FILE_SHARE_READ: u32 = 0x01;
    pub const FILE_SHARE_WRITE: u32 = 0x02;
    pub const FILE_SHARE_DELETE: u32 = 0x04;
}

pub mod disposition {
    pub const FILE_SUPERSEDE: u32 = 0;
    pub const FILE_OPEN: u32 = 1;
    pub const FILE_CREATE: u32 = 2;
    pub const FILE_OPEN_IF: u32 = 3;
    pub const FILE_OVERWRITE: u32 = 4;
    pub const FILE_OVERWRITE_IF: u32 = 5;
}

pub mod options {
    pub const FILE_DIRECTORY_FILE: u32 = 0x0000_0001;
    pub const FILE_WRITE_THROUGH: u32 = 0x0000_0002;
    pub const FILE_SEQUENTIAL_ONLY: u32 = 0x0000_0004;
    pub const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
    pub const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
}

pub mod attributes {
    pub const FILE_ATTRIBUTE_READONLY: u32 = 0x01;
    pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x02;
    pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
    pub const FILE_ATTRIBUTE_ARCHIVE: u32 = 0x20;
    pub const FILE_ATTRIBUTE_NORMAL: u32 = 0x80;
}

/// CreateAction.
pub mod action {
    pub const FILE_SUPERSEDED: u32 = 0;
    pub const FILE_OPENED: u32 = 1;
    pub const FILE_CREATED: u32 = 2;
    pub const FILE_OVERWRITTEN: u32 = 3;
}

/// SMB2 CREATE Request. Every field is sent as given, so a caller can send
/// exactly what smbtorture sends (even values the server should ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub security_flags: u8,
    pub requested_oplock_level: u8,
    pub impersonation_level: u32,
    pub smb_create_flags: u64,
    pub reserved: u64,
    pub desired_access: u32,
    pub file_attributes: u32,
    pub share_access: u32,
    pub create_disposition: u32,
    pub create_options: u32,
    /// Path relative to the share, `\`-separated, no leading `\`.
    pub name: String,
    pub contexts: Vec<CreateContext>,
}

impl Default for CreateRequest {
    fn default() -> Self {
        CreateRequest {
            security_flags: 0,
            requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_NONE,
            impersonation_level: impersonation::IMPERSONATION,
            smb_create_flags: 0,
            reserved: 0,
            desired_access: access::FILE_ALL_ACCESS,
            file_attributes: attributes::FILE_ATTRIBUTE_NORMAL,
            share_access: share_access::FILE_SHARE_READ
                | share_access::FILE_SHARE_WRITE
                | share_access::FILE_SHARE_DELETE,
            create_disposition: disposition::FILE_OPEN_IF,
            create_options: options::FILE_NON_DIRECTORY_FILE,
            name: String::new(),
            contexts: Vec::new(),
        }
    }
}

impl CreateRequest {
    /// A request that opens or creates `name` with default fields.
    pub fn new(name: impl Into<String>) -> Self {
        CreateRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Builder: add a context.
    pub fn context(mut self, c: CreateContext) -> Self {
        self.contexts.push(c);
        self
    }

    /// The DH2Q reconnect request smbtorture sends: empty fields but the
    /// name, and DH2C with the original FileId and CreateGuid.
    pub fn durable_v2_reconnect(
        name: impl Into<String>,
        file_id: FileId,
        create_guid: Guid,
    ) -> Self {
        CreateRequest {
            security_flags: 0,
            requested_oplock_level: 0,
            impersonation_level: 0,
            smb_create_flags: 0,
            reserved: 0,
            desired_access: 0,
            file_attributes: 0,
            share_access: 0,
            create_disposition: 0,
            create_options: 0,
            name: name.into(),
            contexts: vec![CreateContext::DurableHandleReconnectV2 {
                file_id,
                create_guid,
                flags: 0,
            }],
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "CREATE request", 57)?;
        let security_flags = r.u8("SecurityFlags")?;
        let requested_oplock_level = r.u8("RequestedOplockLevel")?;
        let impersonation_level = r.u32("ImpersonationLevel")?;
        let smb_create_flags = r.u64("SmbCreateFlags")?;
        let reserved = r.u64("Reserved")?;
        let desired_access = r.u32("DesiredAccess")?;
        let file_attributes = r.u32("FileAttributes")?;
        let share_access = r.u32("ShareAccess")?;
        let create_disposition = r.u32("CreateDisposition")?;
        let create_options = r.u32("CreateOptions")?;
        let name_off = r.u16("NameOffset")? as usize;
        let name_len = r.u16("NameLength")? as usize;
        let ctx_off = r.u32("CreateContextsOffset")? as usize;
        let ctx_len = r.u32("CreateContextsLength")? as usize;
        let name = super::from_utf16le(slice_at(msg, name_off, name_len, "Name")?);
        let contexts = if ctx_len == 0 {
            Vec::new()
        } else {
            parse_chain(msg, ctx_off, ctx_len, false)?
        };
        Ok(CreateRequest {
            security_flags,
            requested_oplock_level,
            impersonation_level,
            smb_create_flags,
            reserved,
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
            contexts,
        })
    }
}

impl RequestBody for CreateRequest {
    const COMMAND: Command = Command::Create;
    type Response = CreateResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        let base = buf.len() - HEADER_LEN;
        let name = utf16le(&self.name);
        buf.put_u16(57);
        buf.put_u8(self.security_flags);
        buf.put_u8(self.requested_oplock_level);
        buf.put_u32(self.impersonation_level);
        buf.put_u64(self.smb_create_flags);
        buf.put_u64(self.reserved);
        buf.put_u32(self.desired_access);
        buf.put_u32(self.file_attributes);
        buf.put_u32(self.share_access);
        buf.put_u32(self.create_disposition);
        buf.put_u32(self.create_options);
        buf.put_u16((HEADER_LEN + 56) as u16);
        buf.put_u16(name.len() as u16);
        let ctx_field = buf.len();
        buf.put_u32(0);
        buf.put_u32(0);
        buf.extend_from_slice(&name);
        if self.contexts.is_empty() {
            if name.is_empty() {
                buf.put_u8(0);
            }
            return;
        }
        buf.pad_to(8);
        let ctx_start = buf.len();
        emit_chain(buf, &self.contexts);
        let len = buf.len() - ctx_start;
        patch_u32(buf, ctx_field, (ctx_start - base) as u32);
        patch_u32(buf, ctx_field + 4, len as u32);
    }
}

/// SMB2 CREATE Response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateResponse {
    pub oplock_level: u8,
    pub flags: u8,
    pub create_action: u32,
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    pub change_time: u64,
    pub allocation_size: u64,
    pub end_of_file: u64,
    pub file_attributes: u32,
    pub file_id: FileId,
    pub contexts: Vec<CreateContext>,
}

impl CreateResponse {
    /// The RqLs response context, if the server granted a lease.
    pub fn lease(&self) -> Option<&Lease> {
        self.contexts.iter().find_map(|c| match c {
            CreateContext::Lease(l) => Some(l),
            _ => None,
        })
    }
    /// The DH2Q response (timeout, flags), if present.
    pub fn durable_v2(&self) -> Option<(u32, u32)> {
        self.contexts.iter().find_map(|c| match c {
            CreateContext::DurableHandleResponseV2 { timeout, flags } => Some((*timeout, *flags)),
            _ => None,
        })
    }
    /// Whether a DHnQ response is present.
    pub fn durable_v1(&self) -> bool {
        self.contexts
            .iter()
            .any(|c| matches!(c, CreateContext::DurableHandleResponse))
    }
    pub fn maximal_access(&self) -> Option<(u32, u32)> {
        self.contexts.iter().find_map(|c| match c {
            CreateContext::MaximalAccess {
                query_status,
                maximal_access,
            } => Some((*query_status, *maximal_access)),
            _ => None,
        })
    }

    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        let base = buf.len() - HEADER_LEN;
        buf.put_u16(89);
        buf.put_u8(self.oplock_level);
        buf.put_u8(self.flags);
        buf.put_u32(self.create_action);
        for v in [
            self.creation_time,
            self.last_access_time,
            self.last_write_time,
            self.change_time,
            self.allocation_size,
            self.end_of_file,
        ] {
            buf.put_u64(v);
        }
        buf.put_u32(self.file_attributes);
        buf.put_u32(0);
        self.file_id.emit(buf);
        let ctx_field = buf.len();
        buf.put_u32(0);
        buf.put_u32(0);
        if self.contexts.is_empty() {
            return;
        }
        buf.pad_to(8);
        let ctx_start = buf.len();
        emit_chain(buf, &self.contexts);
        let len = buf.len() - ctx_start;
        patch_u32(buf, ctx_field, (ctx_start - base) as u32);
        patch_u32(buf, ctx_field + 4, len as u32);
    }
}

impl ResponseBody for CreateResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "CREATE response", 89)?;
        let oplock_level = r.u8("OplockLevel")?;
        let flags = r.u8("Flags")?;
        let create_action = r.u32("CreateAction")?;
        let creation_time = r.u64("CreationTime")?;
        let last_access_time = r.u64("LastAccessTime")?;
        let last_write_time = r.u64("LastWriteTime")?;
        let change_time = r.u64("ChangeTime")?;
        let allocation_size = r.u64("AllocationSize")?;
        let end_of_file = r.u64("EndofFile")?;
        let file_attributes = r.u32("FileAttributes")?;
        r.skip(4, "Reserved2")?;
        let file_id = FileId::read(&mut r)?;
        let ctx_off = r.u32("CreateContextsOffset")? as usize;
        let ctx_len = r.u32("CreateContextsLength")? as usize;
        let contexts = if ctx_len == 0 {
            Vec::new()
        } else {
            parse_chain(msg, ctx_off, ctx_len, true)?
        };
        Ok(CreateResponse {
            oplock_level,
            flags,
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            allocation_size,
            end_of_file,
            file_attributes,
            file_id,
            contexts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::create_contexts::*;
    use super::*;

    #[test]
    fn request_round_trip() {
        let req = CreateRequest::new("dir\\file.dat")
            .context(CreateContext::DurableHandleRequestV2 {
                timeout: 0,
                flags: 0,
                create_guid: Guid([1; 16]),
            })
            .context(CreateContext::Lease(Lease {
                lease_key: [2; 16],
                lease_state: SMB2_LEASE_READ_CACHING | SMB2_LEASE_HANDLE_CACHING,
                ..Default::default()
            }));
        let mut b = vec![0; HEADER_LEN];
        req.emit(&mut b);
        assert_eq!(CreateRequest::parse(&b).unwrap(), req);
        // Empty name, no contexts: still a one-byte buffer.
        let mut b = vec![0; HEADER_LEN];
        CreateRequest::new("").emit(&mut b);
        assert_eq!(b.len(), HEADER_LEN + 57);
    }

    #[test]
    fn response_round_trip() {
        let resp = CreateResponse {
            oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
            create_action: action::FILE_CREATED,
            file_id: FileId {
                persistent: 3,
                volatile: 4,
            },
            contexts: vec![
                CreateContext::DurableHandleResponseV2 {
                    timeout: 60000,
                    flags: 0,
                },
                CreateContext::Lease(Lease {
                    lease_key: [2; 16],
                    lease_state: 3,
                    ..Default::default()
                }),
            ],
            ..Default::default()
        };
        let mut b = vec![0; HEADER_LEN];
        resp.emit_body(&mut b);
        let back = CreateResponse::parse(&b).unwrap();
        assert_eq!(back, resp);
        assert_eq!(back.durable_v2(), Some((60000, 0)));
        assert_eq!(back.lease().unwrap().lease_state, 3);
    }
}
