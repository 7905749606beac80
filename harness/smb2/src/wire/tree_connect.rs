//! SMB2 TREE_CONNECT request/response (MS-SMB2 2.2.9, 2.2.10).

use super::{
    expect_structure_size, slice_at, utf16le, Command, PutLe, Reader, RequestBody, ResponseBody,
    Result, HEADER_LEN,
};

pub const SMB2_SHARE_TYPE_DISK: u8 = 0x01;
pub const SMB2_SHARE_TYPE_PIPE: u8 = 0x02;
pub const SMB2_SHARE_TYPE_PRINT: u8 = 0x03;

/// ShareFlags bits.
pub mod share_flags {
    pub const SMB2_SHAREFLAG_DFS: u32 = 0x0000_0001;
    pub const SMB2_SHAREFLAG_DFS_ROOT: u32 = 0x0000_0002;
    pub const SMB2_SHAREFLAG_RESTRICT_EXCLUSIVE_OPENS: u32 = 0x0000_0100;
    pub const SMB2_SHAREFLAG_FORCE_SHARED_DELETE: u32 = 0x0000_0200;
    pub const SMB2_SHAREFLAG_ALLOW_NAMESPACE_CACHING: u32 = 0x0000_0400;
    pub const SMB2_SHAREFLAG_ACCESS_BASED_DIRECTORY_ENUM: u32 = 0x0000_0800;
    pub const SMB2_SHAREFLAG_FORCE_LEVELII_OPLOCK: u32 = 0x0000_1000;
    pub const SMB2_SHAREFLAG_ENABLE_HASH_V1: u32 = 0x0000_2000;
    pub const SMB2_SHAREFLAG_ENABLE_HASH_V2: u32 = 0x0000_4000;
    pub const SMB2_SHAREFLAG_ENCRYPT_DATA: u32 = 0x0000_8000;
    pub const SMB2_SHAREFLAG_IDENTITY_REMOTING: u32 = 0x0004_0000;
    pub const SMB2_SHAREFLAG_COMPRESS_DATA: u32 = 0x0010_0000;
}

/// Share Capabilities bits.
pub mod share_capabilities {
    pub const SMB2_SHARE_CAP_DFS: u32 = 0x0000_0008;
    pub const SMB2_SHARE_CAP_CONTINUOUS_AVAILABILITY: u32 = 0x0000_0010;
    pub const SMB2_SHARE_CAP_SCALEOUT: u32 = 0x0000_0020;
    pub const SMB2_SHARE_CAP_CLUSTER: u32 = 0x0000_0040;
    pub const SMB2_SHARE_CAP_ASYMMETRIC: u32 = 0x0000_0080;
    pub const SMB2_SHARE_CAP_REDIRECT_TO_OWNER: u32 = 0x0000_0100;
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectRequest {
    /// Flags (3.1.1) / Reserved.
    pub flags: u16,
    /// UNC path, e.g. `\\server\share`.
    pub path: String,
}

impl RequestBody for TreeConnectRequest {
    const COMMAND: Command = Command::TreeConnect;
    type Response = TreeConnectResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        let p = utf16le(&self.path);
        buf.put_u16(9);
        buf.put_u16(self.flags);
        buf.put_u16((HEADER_LEN + 8) as u16);
        buf.put_u16(p.len() as u16);
        buf.extend_from_slice(&p);
        if p.is_empty() {
            buf.put_u8(0);
        }
    }
}

impl TreeConnectRequest {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "TREE_CONNECT request", 9)?;
        let flags = r.u16("Flags")?;
        let off = r.u16("PathOffset")? as usize;
        let len = r.u16("PathLength")? as usize;
        Ok(TreeConnectRequest {
            flags,
            path: super::from_utf16le(slice_at(msg, off, len, "Path")?),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectResponse {
    pub share_type: u8,
    pub share_flags: u32,
    pub capabilities: u32,
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    pub fn is_continuously_available(&self) -> bool {
        self.capabilities & share_capabilities::SMB2_SHARE_CAP_CONTINUOUS_AVAILABILITY != 0
    }
    pub fn is_scaleout(&self) -> bool {
        self.capabilities & share_capabilities::SMB2_SHARE_CAP_SCALEOUT != 0
    }
    pub fn is_cluster(&self) -> bool {
        self.capabilities & share_capabilities::SMB2_SHARE_CAP_CLUSTER != 0
    }
    pub fn encrypt_data(&self) -> bool {
        self.share_flags & share_flags::SMB2_SHAREFLAG_ENCRYPT_DATA != 0
    }
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(16);
        buf.put_u8(self.share_type);
        buf.put_u8(0);
        buf.put_u32(self.share_flags);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.maximal_access);
    }
}

impl ResponseBody for TreeConnectResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "TREE_CONNECT response", 16)?;
        let share_type = r.u8("ShareType")?;
        r.skip(1, "Reserved")?;
        Ok(TreeConnectResponse {
            share_type,
            share_flags: r.u32("ShareFlags")?,
            capabilities: r.u32("Capabilities")?,
            maximal_access: r.u32("MaximalAccess")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let req = TreeConnectRequest {
            flags: 0,
            path: r"\\198.18.0.1\share".into(),
        };
        let mut b = vec![0; HEADER_LEN];
        req.emit(&mut b);
        assert_eq!(TreeConnectRequest::parse(&b).unwrap(), req);
        let resp = TreeConnectResponse {
            share_type: SMB2_SHARE_TYPE_DISK,
            share_flags: share_flags::SMB2_SHAREFLAG_ENCRYPT_DATA,
            capabilities: share_capabilities::SMB2_SHARE_CAP_CONTINUOUS_AVAILABILITY,
            maximal_access: 0x1f01ff,
        };
        let mut b = vec![0; HEADER_LEN];
        resp.emit_body(&mut b);
        let back = TreeConnectResponse::parse(&b).unwrap();
        assert_eq!(back, resp);
        assert!(back.is_continuously_available() && back.encrypt_data() && !back.is_scaleout());
    }
}
