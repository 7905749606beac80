//! SMB2 FLUSH request/response (MS-SMB2 2.2.17, 2.2.18).

use super::{
    expect_structure_size, Command, FileId, PutLe, Reader, RequestBody, ResponseBody, Result,
    HEADER_LEN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushRequest {
    pub file_id: FileId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushResponse;

impl RequestBody for FlushRequest {
    const COMMAND: Command = Command::Flush;
    type Response = FlushResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(24);
        buf.put_u16(0);
        buf.put_u32(0);
        self.file_id.emit(buf);
    }
}

impl ResponseBody for FlushResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "FLUSH response", 4)?;
        r.skip(2, "Reserved")?;
        Ok(FlushResponse)
    }
}
