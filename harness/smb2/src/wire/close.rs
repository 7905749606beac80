//! SMB2 CLOSE request/response (MS-SMB2 2.2.15, 2.2.16).

use super::{
    expect_structure_size, Command, FileId, PutLe, Reader, RequestBody, ResponseBody, Result,
    HEADER_LEN,
};

pub const SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    pub flags: u16,
    pub file_id: FileId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    pub flags: u16,
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    pub change_time: u64,
    pub allocation_size: u64,
    pub end_of_file: u64,
    pub file_attributes: u32,
}

impl RequestBody for CloseRequest {
    const COMMAND: Command = Command::Close;
    type Response = CloseResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(24);
        buf.put_u16(self.flags);
        buf.put_u32(0);
        self.file_id.emit(buf);
    }
}

impl CloseResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(60);
        buf.put_u16(self.flags);
        buf.put_u32(0);
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
    }
}

impl ResponseBody for CloseResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "CLOSE response", 60)?;
        let flags = r.u16("Flags")?;
        r.skip(4, "Reserved")?;
        Ok(CloseResponse {
            flags,
            creation_time: r.u64("CreationTime")?,
            last_access_time: r.u64("LastAccessTime")?,
            last_write_time: r.u64("LastWriteTime")?,
            change_time: r.u64("ChangeTime")?,
            allocation_size: r.u64("AllocationSize")?,
            end_of_file: r.u64("EndofFile")?,
            file_attributes: r.u32("FileAttributes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trip() {
        let c = CloseResponse {
            flags: 1,
            end_of_file: 99,
            file_attributes: 0x20,
            ..Default::default()
        };
        let mut b = vec![0; HEADER_LEN];
        c.emit_body(&mut b);
        assert_eq!(CloseResponse::parse(&b).unwrap(), c);
    }
}
