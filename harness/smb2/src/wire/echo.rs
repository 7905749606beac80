//! SMB2 ECHO request/response: StructureSize 4 and a reserved field.

use super::{
    expect_structure_size, Command, PutLe, Reader, RequestBody, ResponseBody, Result, HEADER_LEN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoResponse;

impl RequestBody for EchoRequest {
    const COMMAND: Command = Command::Echo;
    type Response = EchoResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(4);
        buf.put_u16(0);
    }
}

impl ResponseBody for EchoResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "ECHO response", 4)?;
        r.skip(2, "Reserved")?;
        Ok(EchoResponse)
    }
}
