//! SMB2 WRITE request/response (MS-SMB2 2.2.21, 2.2.22).

use super::{
    expect_structure_size, slice_at, Command, FileId, PutLe, Reader, RequestBody, ResponseBody,
    Result, HEADER_LEN,
};

pub const SMB2_WRITEFLAG_WRITE_THROUGH: u32 = 0x0000_0001;
pub const SMB2_WRITEFLAG_WRITE_UNBUFFERED: u32 = 0x0000_0002;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteRequest {
    pub offset: u64,
    pub file_id: FileId,
    pub remaining_bytes: u32,
    pub flags: u32,
    pub data: Vec<u8>,
}

impl RequestBody for WriteRequest {
    const COMMAND: Command = Command::Write;
    type Response = WriteResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(49);
        buf.put_u16((HEADER_LEN + 48) as u16);
        buf.put_u32(self.data.len() as u32);
        buf.put_u64(self.offset);
        self.file_id.emit(buf);
        buf.put_u32(0); // Channel
        buf.put_u32(self.remaining_bytes);
        buf.put_u16(0);
        buf.put_u16(0);
        buf.put_u32(self.flags);
        buf.extend_from_slice(&self.data);
        if self.data.is_empty() {
            buf.put_u8(0);
        }
    }
    fn payload_size(&self) -> usize {
        self.data.len()
    }
}

impl WriteRequest {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "WRITE request", 49)?;
        let off = r.u16("DataOffset")? as usize;
        let len = r.u32("Length")? as usize;
        let offset = r.u64("Offset")?;
        let file_id = FileId::read(&mut r)?;
        r.skip(4, "Channel")?;
        let remaining_bytes = r.u32("RemainingBytes")?;
        r.skip(4, "WriteChannelInfo")?;
        let flags = r.u32("Flags")?;
        Ok(WriteRequest {
            offset,
            file_id,
            remaining_bytes,
            flags,
            data: slice_at(msg, off, len, "Data")?.to_vec(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    pub count: u32,
    pub remaining: u32,
}

impl WriteResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(17);
        buf.put_u16(0);
        buf.put_u32(self.count);
        buf.put_u32(self.remaining);
        buf.put_u32(0);
    }
}

impl ResponseBody for WriteResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "WRITE response", 17)?;
        r.skip(2, "Reserved")?;
        Ok(WriteResponse {
            count: r.u32("Count")?,
            remaining: r.u32("Remaining")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let w = WriteRequest {
            offset: 4096,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
            remaining_bytes: 0,
            flags: SMB2_WRITEFLAG_WRITE_THROUGH,
            data: vec![7; 100],
        };
        let mut b = vec![0; HEADER_LEN];
        w.emit(&mut b);
        assert_eq!(WriteRequest::parse(&b).unwrap(), w);
        let resp = WriteResponse {
            count: 100,
            remaining: 0,
        };
        let mut b = vec![0; HEADER_LEN];
        resp.emit_body(&mut b);
        assert_eq!(WriteResponse::parse(&b).unwrap(), resp);
    }
}
