//! SMB2 READ request/response (MS-SMB2 2.2.19, 2.2.20).

use super::{
    expect_structure_size, slice_at, Command, FileId, PutLe, Reader, RequestBody, ResponseBody,
    Result, HEADER_LEN,
};

pub const SMB2_READFLAG_READ_UNBUFFERED: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequest {
    pub padding: u8,
    pub flags: u8,
    pub length: u32,
    pub offset: u64,
    pub file_id: FileId,
    pub minimum_count: u32,
    pub remaining_bytes: u32,
}

impl RequestBody for ReadRequest {
    const COMMAND: Command = Command::Read;
    type Response = ReadResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(49);
        buf.put_u8(self.padding);
        buf.put_u8(self.flags);
        buf.put_u32(self.length);
        buf.put_u64(self.offset);
        self.file_id.emit(buf);
        buf.put_u32(self.minimum_count);
        buf.put_u32(0); // Channel: SMB2_CHANNEL_NONE
        buf.put_u32(self.remaining_bytes);
        buf.put_u16(0);
        buf.put_u16(0);
        buf.put_u8(0); // Buffer: one byte, as StructureSize 49 implies
    }
    fn payload_size(&self) -> usize {
        self.length as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResponse {
    pub data_remaining: u32,
    pub flags: u32,
    pub data: Vec<u8>,
}

impl ReadResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(17);
        buf.put_u8((HEADER_LEN + 16) as u8);
        buf.put_u8(0);
        buf.put_u32(self.data.len() as u32);
        buf.put_u32(self.data_remaining);
        buf.put_u32(self.flags);
        buf.extend_from_slice(&self.data);
    }
}

impl ResponseBody for ReadResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "READ response", 17)?;
        let off = r.u8("DataOffset")? as usize;
        r.skip(1, "Reserved")?;
        let len = r.u32("DataLength")? as usize;
        let data_remaining = r.u32("DataRemaining")?;
        let flags = r.u32("Flags")?;
        let data = if len == 0 {
            Vec::new()
        } else {
            slice_at(msg, off, len, "Data")?.to_vec()
        };
        Ok(ReadResponse {
            data_remaining,
            flags,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trip() {
        let rr = ReadResponse {
            data_remaining: 0,
            flags: 0,
            data: b"hello".to_vec(),
        };
        let mut b = vec![0; HEADER_LEN];
        rr.emit_body(&mut b);
        assert_eq!(ReadResponse::parse(&b).unwrap(), rr);
    }
}
