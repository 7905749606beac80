//! SMB2 LOGOFF request/response: StructureSize 4 and a reserved field.

use super::{
    expect_structure_size, Command, PutLe, Reader, RequestBody, ResponseBody, Result, HEADER_LEN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffResponse;

impl RequestBody for LogoffRequest {
    const COMMAND: Command = Command::Logoff;
    type Response = LogoffResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(4);
        buf.put_u16(0);
    }
}

impl ResponseBody for LogoffResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "LOGOFF response", 4)?;
        r.skip(2, "Reserved")?;
        Ok(LogoffResponse)
    }
}
