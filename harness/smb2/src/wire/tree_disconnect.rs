//! SMB2 TREE_DISCONNECT request/response: StructureSize 4 and a reserved field.

use super::{
    expect_structure_size, Command, PutLe, Reader, RequestBody, ResponseBody, Result, HEADER_LEN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectResponse;

impl RequestBody for TreeDisconnectRequest {
    const COMMAND: Command = Command::TreeDisconnect;
    type Response = TreeDisconnectResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(4);
        buf.put_u16(0);
    }
}

impl ResponseBody for TreeDisconnectResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "TREE_DISCONNECT response", 4)?;
        r.skip(2, "Reserved")?;
        Ok(TreeDisconnectResponse)
    }
}
