//! SMB2 SESSION_SETUP request/response (MS-SMB2 2.2.5, 2.2.6).

use super::{
    expect_structure_size, patch_u16, slice_at, Command, PutLe, Reader, RequestBody, ResponseBody,
    Result, HEADER_LEN,
};
use crate::NtStatus;

pub const SMB2_SESSION_FLAG_BINDING: u8 = 0x01;
pub const SMB2_SESSION_FLAG_IS_GUEST: u16 = 0x0001;
pub const SMB2_SESSION_FLAG_IS_NULL: u16 = 0x0002;
pub const SMB2_SESSION_FLAG_ENCRYPT_DATA: u16 = 0x0004;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest {
    pub flags: u8,
    pub security_mode: u8,
    pub capabilities: u32,
    pub channel: u32,
    pub previous_session_id: u64,
    pub security_buffer: Vec<u8>,
}

impl RequestBody for SessionSetupRequest {
    const COMMAND: Command = Command::SessionSetup;
    type Response = SessionSetupResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(25);
        buf.put_u8(self.flags);
        buf.put_u8(self.security_mode);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.channel);
        buf.put_u16((HEADER_LEN + 24) as u16);
        buf.put_u16(self.security_buffer.len() as u16);
        buf.put_u64(self.previous_session_id);
        buf.extend_from_slice(&self.security_buffer);
        if self.security_buffer.is_empty() {
            buf.put_u8(0);
        }
    }
}

impl SessionSetupRequest {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "SESSION_SETUP request", 25)?;
        let flags = r.u8("Flags")?;
        let security_mode = r.u8("SecurityMode")?;
        let capabilities = r.u32("Capabilities")?;
        let channel = r.u32("Channel")?;
        let off = r.u16("SecurityBufferOffset")? as usize;
        let len = r.u16("SecurityBufferLength")? as usize;
        let previous_session_id = r.u64("PreviousSessionId")?;
        Ok(SessionSetupRequest {
            flags,
            security_mode,
            capabilities,
            channel,
            previous_session_id,
            security_buffer: slice_at(msg, off, len, "SecurityBuffer")?.to_vec(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse {
    pub session_flags: u16,
    pub security_buffer: Vec<u8>,
}

impl SessionSetupResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(9);
        buf.put_u16(self.session_flags);
        let off_at = buf.len();
        buf.put_u16(0);
        buf.put_u16(self.security_buffer.len() as u16);
        patch_u16(buf, off_at, (HEADER_LEN + 8) as u16);
        buf.extend_from_slice(&self.security_buffer);
    }
}

impl ResponseBody for SessionSetupResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "SESSION_SETUP response", 9)?;
        let session_flags = r.u16("SessionFlags")?;
        let off = r.u16("SecurityBufferOffset")? as usize;
        let len = r.u16("SecurityBufferLength")? as usize;
        let security_buffer = if len == 0 {
            Vec::new()
        } else {
            slice_at(msg, off, len, "SecurityBuffer")?.to_vec()
        };
        Ok(SessionSetupResponse {
            session_flags,
            security_buffer,
        })
    }
    fn has_body(status: NtStatus) -> bool {
        status == NtStatus::STATUS_SUCCESS || status == NtStatus::STATUS_MORE_PROCESSING_REQUIRED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let req = SessionSetupRequest {
            flags: 0,
            security_mode: 1,
            capabilities: 1,
            channel: 0,
            previous_session_id: 77,
            security_buffer: vec![1, 2, 3],
        };
        let mut b = vec![0; HEADER_LEN];
        req.emit(&mut b);
        assert_eq!(SessionSetupRequest::parse(&b).unwrap(), req);
        let resp = SessionSetupResponse {
            session_flags: SMB2_SESSION_FLAG_ENCRYPT_DATA,
            security_buffer: vec![0xa1, 0],
        };
        let mut b = vec![0; HEADER_LEN];
        resp.emit_body(&mut b);
        assert_eq!(SessionSetupResponse::parse(&b).unwrap(), resp);
    }
}
