//! SMB2_CREATE_CONTEXT chains (MS-SMB2 2.2.13.2, 2.2.14.2): typed contexts
//! for durable handles (v1, v2), leases (v1, v2), AppInstanceId, MxAc and
//! QFid, and raw ones for anything else.

use super::{patch_u32, slice_at, FileId, Guid, PutLe, Reader, Result, WireError};

pub const DHNQ: &[u8] = b"DHnQ";
pub const DHNC: &[u8] = b"DHnC";
pub const DH2Q: &[u8] = b"DH2Q";
pub const DH2C: &[u8] = b"DH2C";
pub const RQLS: &[u8] = b"RqLs";
pub const MXAC: &[u8] = b"MxAc";
pub const QFID: &[u8] = b"QFid";
/// SMB2_CREATE_APP_INSTANCE_ID's name is a GUID.
pub const APP_INSTANCE_ID: [u8; 16] = [
    0x45, 0xBC, 0xA6, 0x6A, 0xEF, 0xA7, 0xF7, 0x4A, 0x90, 0x08, 0xFA, 0x46, 0x2E, 0x14, 0x4D, 0x74,
];

/// DH2Q / DH2C flag.
pub const SMB2_DHANDLE_FLAG_PERSISTENT: u32 = 0x0000_0002;

/// Lease states (MS-SMB2 2.2.13.2.8).
pub const SMB2_LEASE_NONE: u32 = 0x00;
pub const SMB2_LEASE_READ_CACHING: u32 = 0x01;
pub const SMB2_LEASE_HANDLE_CACHING: u32 = 0x02;
pub const SMB2_LEASE_WRITE_CACHING: u32 = 0x04;

/// Lease flags.
pub const SMB2_LEASE_FLAG_BREAK_IN_PROGRESS: u32 = 0x02;
pub const SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET: u32 = 0x04;

/// SMB2_CREATE_REQUEST_LEASE (v1, 32 bytes) or _V2 (52 bytes); the
/// response carries the same layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lease {
    pub lease_key: [u8; 16],
    pub lease_state: u32,
    pub lease_flags: u32,
    pub lease_duration: u64,
    /// `Some` for v2: ParentLeaseKey and Epoch.
    pub v2: Option<LeaseV2>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseV2 {
    pub parent_lease_key: [u8; 16],
    pub epoch: u16,
}

/// One create context. The same enum serves requests and responses; the
/// parser is told which side it reads because DHnQ/DH2Q/MxAc differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateContext {
    /// DHnQ request (16 reserved bytes).
    DurableHandleRequest,
    /// DHnQ response (8 reserved bytes).
    DurableHandleResponse,
    /// DHnC.
    DurableHandleReconnect {
        file_id: FileId,
    },
    /// DH2Q request.
    DurableHandleRequestV2 {
        timeout: u32,
        flags: u32,
        create_guid: Guid,
    },
    /// DH2Q response.
    DurableHandleResponseV2 {
        timeout: u32,
        flags: u32,
    },
    /// DH2C.
    DurableHandleReconnectV2 {
        file_id: FileId,
        create_guid: Guid,
        flags: u32,
    },
    /// RqLs, request or response, v1 or v2.
    Lease(Lease),
    /// MxAc request (optional Timestamp).
    QueryMaximalAccessRequest {
        timestamp: Option<u64>,
    },
    /// MxAc response.
    MaximalAccess {
        query_status: u32,
        maximal_access: u32,
    },
    /// QFid request (no data).
    QueryOnDiskId,
    /// QFid response: DiskFileId (8) VolumeId (8) Reserved (16).
    OnDiskId {
        disk_file_id: u64,
        volume_id: u64,
    },
    AppInstanceId(Guid),
    /// Any other context, kept byte-exact.
    Raw {
        name: Vec<u8>,
        data: Vec<u8>,
    },
}

impl CreateContext {
    pub fn name(&self) -> &[u8] {
        use CreateContext::*;
        match self {
            DurableHandleRequest | DurableHandleResponse => DHNQ,
            DurableHandleReconnect { .. } => DHNC,
            DurableHandleRequestV2 { .. } | DurableHandleResponseV2 { .. } => DH2Q,
            DurableHandleReconnectV2 { .. } => DH2C,
            Lease(_) => RQLS,
            QueryMaximalAccessRequest { .. } | MaximalAccess { .. } => MXAC,
            QueryOnDiskId | OnDiskId { .. } => QFID,
            AppInstanceId(_) => &APP_INSTANCE_ID,
            Raw { name, .. } => name,
        }
    }

    pub fn data(&self) -> Vec<u8> {
        use CreateContext::*;
        let mut d = Vec::new();
        match self {
            DurableHandleRequest => d.extend_from_slice(&[0; 16]),
            DurableHandleResponse => d.extend_from_slice(&[0; 8]),
            DurableHandleReconnect { file_id } => file_id.emit(&mut d),
            DurableHandleRequestV2 {
                timeout,
                flags,
                create_guid,
            } => {
                d.put_u32(*timeout);
                d.put_u32(*flags);
                d.put_u64(0);
                d.extend_from_slice(&create_guid.0);
            }
            DurableHandleResponseV2 { timeout, flags } => {
                d.put_u32(*timeout);
                d.put_u32(*flags);
            }
            DurableHandleReconnectV2 {
                file_id,
                create_guid,
                flags,
            } => {
                file_id.emit(&mut d);
                d.extend_from_slice(&create_guid.0);
                d.put_u32(*flags);
            }
            Lease(l) => {
                d.extend_from_slice(&l.lease_key);
                d.put_u32(l.lease_state);
                d.put_u32(l.lease_flags);
                d.put_u64(l.lease_duration);
                if let Some(v2) = l.v2 {
                    d.extend_from_slice(&v2.parent_lease_key);
                    d.put_u16(v2.epoch);
                    d.put_u16(0);
                }
            }
            QueryMaximalAccessRequest { timestamp } => {
                if let Some(t) = timestamp {
                    d.put_u64(*t)
                }
            }
            MaximalAccess {
                query_status,
                maximal_access,
            } => {
                d.put_u32(*query_status);
                d.put_u32(*maximal_access);
            }
            QueryOnDiskId => {}
            OnDiskId {
                disk_file_id,
                volume_id,
            } => {
                d.put_u64(*disk_file_id);
                d.put_u64(*volume_id);
                d.extend_from_slice(&[0; 16]);
            }
            AppInstanceId(g) => {
                d.put_u16(20);
                d.put_u16(0);
                d.extend_from_slice(&g.0);
            }
            Raw { data, .. } => d.extend_from_slice(data),
        }
        d
    }

    fn parse_one(name: &[u8], data: &[u8], response: bool) -> Result<CreateContext> {
        use CreateContext::*;
        let mut r = Reader::new(data);
        let raw = || Raw {
            name: name.to_vec(),
            data: data.to_vec(),
        };
        Ok(match name {
            DHNQ if response => DurableHandleResponse,
            DHNQ => DurableHandleRequest,
            DHNC => DurableHandleReconnect {
                file_id: FileId::read(&mut r)?,
            },
            DH2Q if response => DurableHandleResponseV2 {
                timeout: r.u32("DH2Q Timeout")?,
                flags: r.u32("DH2Q Flags")?,
            },
            DH2Q => {
                let timeout = r.u32("DH2Q Timeout")?;
                let flags = r.u32("DH2Q Flags")?;
                r.skip(8, "DH2Q Reserved")?;
                DurableHandleRequestV2 {
                    timeout,
                    flags,
                    create_guid: r.guid("CreateGuid")?,
                }
            }
            DH2C => DurableHandleReconnectV2 {
                file_id: FileId::read(&mut r)?,
                create_guid: r.guid("CreateGuid")?,
                flags: r.u32("DH2C Flags")?,
            },
            RQLS => {
                let lease_key = r.array("LeaseKey")?;
                let lease_state = r.u32("LeaseState")?;
                let lease_flags = r.u32("LeaseFlags")?;
                let lease_duration = r.u64("LeaseDuration")?;
                let v2 = if data.len() >= 52 {
                    Some(LeaseV2 {
                        parent_lease_key: r.array("ParentLeaseKey")?,
                        epoch: r.u16("Epoch")?,
                    })
                } else {
                    None
                };
                Lease(self::Lease {
                    lease_key,
                    lease_state,
                    lease_flags,
                    lease_duration,
                    v2,
                })
            }
            MXAC if response => MaximalAccess {
                query_status: r.u32("QueryStatus")?,
                maximal_access: r.u32("MaximalAccess")?,
            },
            MXAC => QueryMaximalAccessRequest {
                timestamp: if data.is_empty() {
                    None
                } else {
                    Some(r.u64("Timestamp")?)
                },
            },
            QFID if response => OnDiskId {
                disk_file_id: r.u64("DiskFileId")?,
                volume_id: r.u64("VolumeId")?,
            },
            QFID => QueryOnDiskId,
            n if n == APP_INSTANCE_ID => {
                r.skip(4, "AppInstanceId StructureSize")?;
                AppInstanceId(r.guid("AppInstanceId")?)
            }
            _ => raw(),
        })
    }
}

/// Emits a context chain into `buf`, which must be 8-aligned relative to the
/// SMB2 header at the start of the chain.
pub fn emit_chain(buf: &mut Vec<u8>, contexts: &[CreateContext]) {
    let mut prev_start: Option<usize> = None;
    for c in contexts {
        buf.pad_to(8);
        let start = buf.len();
        if let Some(p) = prev_start {
            patch_u32(buf, p, (start - p) as u32);
        }
        let name = c.name().to_vec();
        let data = c.data();
        buf.put_u32(0); // Next, patched later
        buf.put_u16(16);
        buf.put_u16(name.len() as u16);
        buf.put_u16(0);
        let data_off = if data.is_empty() {
            0
        } else {
            (16 + name.len()).div_ceil(8) * 8
        };
        buf.put_u16(data_off as u16);
        buf.put_u32(data.len() as u32);
        buf.extend_from_slice(&name);
        if !data.is_empty() {
            buf.pad_to(8);
            buf.extend_from_slice(&data);
        }
        prev_start = Some(start);
    }
}

/// Parses a chain starting at `msg[offset..offset+len]`.
pub fn parse_chain(
    msg: &[u8],
    offset: usize,
    len: usize,
    response: bool,
) -> Result<Vec<CreateContext>> {
    let chain = slice_at(msg, offset, len, "CreateContexts")?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let ctx = chain
            .get(pos..)
            .ok_or(WireError::OutOfBounds("CreateContext"))?;
        let mut r = Reader::new(ctx);
        let next = r.u32("Next")? as usize;
        let name_off = r.u16("NameOffset")? as usize;
        let name_len = r.u16("NameLength")? as usize;
        r.skip(2, "Reserved")?;
        let data_off = r.u16("DataOffset")? as usize;
        let data_len = r.u32("DataLength")? as usize;
        let limit = if next == 0 {
            ctx.len()
        } else {
            next.min(ctx.len())
        };
        let ctx = &ctx[..limit];
        let name = slice_at(ctx, name_off, name_len, "CreateContext Name")?;
        let data = if data_len == 0 {
            &[][..]
        } else {
            slice_at(ctx, data_off, data_len, "CreateContext Data")?
        };
        out.push(CreateContext::parse_one(name, data, response)?);
        if next == 0 {
            break;
        }
        if next < 16 {
            return Err(WireError::Malformed("CreateContext Next too small"));
        }
        pos = pos
            .checked_add(next)
            .ok_or(WireError::OutOfBounds("CreateContext Next"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cs: Vec<CreateContext>, response: bool) {
        let mut b = vec![0u8; 8];
        emit_chain(&mut b, &cs);
        let back = parse_chain(&b, 8, b.len() - 8, response).unwrap();
        assert_eq!(back, cs);
    }

    #[test]
    fn request_chain_round_trip() {
        let fid = FileId {
            persistent: 1,
            volatile: 2,
        };
        round_trip(
            vec![
                CreateContext::DurableHandleRequest,
                CreateContext::DurableHandleReconnect { file_id: fid },
                CreateContext::DurableHandleRequestV2 {
                    timeout: 0,
                    flags: SMB2_DHANDLE_FLAG_PERSISTENT,
                    create_guid: Guid([4; 16]),
                },
                CreateContext::DurableHandleReconnectV2 {
                    file_id: fid,
                    create_guid: Guid([4; 16]),
                    flags: 0,
                },
                CreateContext::Lease(Lease {
                    lease_key: [1; 16],
                    lease_state: 7,
                    ..Default::default()
                }),
                CreateContext::Lease(Lease {
                    lease_key: [1; 16],
                    lease_state: 3,
                    lease_flags: SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET,
                    lease_duration: 0,
                    v2: Some(LeaseV2 {
                        parent_lease_key: [2; 16],
                        epoch: 9,
                    }),
                }),
                CreateContext::QueryMaximalAccessRequest { timestamp: None },
                CreateContext::QueryOnDiskId,
                CreateContext::AppInstanceId(Guid([8; 16])),
                CreateContext::Raw {
                    name: b"ExtA".to_vec(),
                    data: vec![1, 2, 3],
                },
            ],
            false,
        );
    }

    #[test]
    fn response_chain_round_trip() {
        round_trip(
            vec![
                CreateContext::DurableHandleResponse,
                CreateContext::DurableHandleResponseV2 {
                    timeout: 60_000,
                    flags: 0,
                },
                CreateContext::MaximalAccess {
                    query_status: 0,
                    maximal_access: 0x1f01ff,
                },
                CreateContext::OnDiskId {
                    disk_file_id: 5,
                    volume_id: 6,
                },
            ],
            true,
        );
    }
}
