//! SMB2 TRANSFORM_HEADER (MS-SMB2 2.2.41) for encrypted messages.

use super::{PutLe, Reader, Result, WireError};

pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
pub const TRANSFORM_HEADER_LEN: usize = 52;
/// The AAD of the AEAD is the header from the Nonce field on.
pub const AAD_OFFSET: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransformHeader {
    pub signature: [u8; 16],
    pub nonce: [u8; 16],
    pub original_message_size: u32,
    /// Flags (3.1.1) / EncryptionAlgorithm (3.0.x); 0x0001 = encrypted.
    pub flags: u16,
    pub session_id: u64,
}

impl TransformHeader {
    pub fn parse(b: &[u8]) -> Result<Self> {
        let mut r = Reader::new(b);
        let id: [u8; 4] = r.array("ProtocolId")?;
        if id != TRANSFORM_PROTOCOL_ID {
            return Err(WireError::BadProtocolId(id));
        }
        let signature = r.array("Signature")?;
        let nonce = r.array("Nonce")?;
        let original_message_size = r.u32("OriginalMessageSize")?;
        r.skip(2, "Reserved")?;
        let flags = r.u16("Flags")?;
        let session_id = r.u64("SessionId")?;
        Ok(TransformHeader {
            signature,
            nonce,
            original_message_size,
            flags,
            session_id,
        })
    }
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&TRANSFORM_PROTOCOL_ID);
        buf.extend_from_slice(&self.signature);
        buf.extend_from_slice(&self.nonce);
        buf.put_u32(self.original_message_size);
        buf.put_u16(0);
        buf.put_u16(self.flags);
        buf.put_u64(self.session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = TransformHeader {
            signature: [1; 16],
            nonce: [2; 16],
            original_message_size: 100,
            flags: 1,
            session_id: 9,
        };
        let mut b = Vec::new();
        t.emit(&mut b);
        assert_eq!(b.len(), TRANSFORM_HEADER_LEN);
        assert_eq!(TransformHeader::parse(&b).unwrap(), t);
    }
}
