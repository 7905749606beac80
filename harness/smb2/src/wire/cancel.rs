//! SMB2 CANCEL request (MS-SMB2 2.2.30). It has no response of its own.

use super::{Command, PutLe};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancelRequest;

impl CancelRequest {
    pub const COMMAND: Command = Command::Cancel;
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(4);
        buf.put_u16(0);
    }
}
