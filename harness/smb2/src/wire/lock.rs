//! SMB2 LOCK request/response (MS-SMB2 2.2.26, 2.2.27).

use super::{
    expect_structure_size, Command, FileId, PutLe, Reader, RequestBody, ResponseBody, Result,
    HEADER_LEN,
};

pub const SMB2_LOCKFLAG_SHARED_LOCK: u32 = 0x01;
pub const SMB2_LOCKFLAG_EXCLUSIVE_LOCK: u32 = 0x02;
pub const SMB2_LOCKFLAG_UNLOCK: u32 = 0x04;
pub const SMB2_LOCKFLAG_FAIL_IMMEDIATELY: u32 = 0x10;

/// SMB2_LOCK_ELEMENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    pub offset: u64,
    pub length: u64,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber (low 4 bits) and LockSequenceIndex (high 28 bits).
    pub lock_sequence: u32,
    pub file_id: FileId,
    pub locks: Vec<LockElement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockResponse;

impl RequestBody for LockRequest {
    const COMMAND: Command = Command::Lock;
    type Response = LockResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u16(48);
        buf.put_u16(self.locks.len() as u16);
        buf.put_u32(self.lock_sequence);
        self.file_id.emit(buf);
        for l in &self.locks {
            buf.put_u64(l.offset);
            buf.put_u64(l.length);
            buf.put_u32(l.flags);
            buf.put_u32(0);
        }
        if self.locks.is_empty() {
            buf.extend_from_slice(&[0; 24]);
        }
    }
}

impl LockRequest {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "LOCK request", 48)?;
        let n = r.u16("LockCount")?;
        let lock_sequence = r.u32("LockSequence")?;
        let file_id = FileId::read(&mut r)?;
        let mut locks = Vec::new();
        for _ in 0..n {
            let offset = r.u64("Offset")?;
            let length = r.u64("Length")?;
            let flags = r.u32("Flags")?;
            r.skip(4, "Reserved")?;
            locks.push(LockElement {
                offset,
                length,
                flags,
            });
        }
        Ok(LockRequest {
            lock_sequence,
            file_id,
            locks,
        })
    }
}

impl ResponseBody for LockResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "LOCK response", 4)?;
        r.skip(2, "Reserved")?;
        Ok(LockResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let l = LockRequest {
            lock_sequence: 0x11,
            file_id: FileId {
                persistent: 5,
                volatile: 6,
            },
            locks: vec![
                LockElement {
                    offset: 0,
                    length: 10,
                    flags: SMB2_LOCKFLAG_EXCLUSIVE_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
                },
                LockElement {
                    offset: 20,
                    length: 1,
                    flags: SMB2_LOCKFLAG_UNLOCK,
                },
            ],
        };
        let mut b = vec![0; HEADER_LEN];
        l.emit(&mut b);
        assert_eq!(LockRequest::parse(&b).unwrap(), l);
    }
}
