//! SMB2 ERROR Response (MS-SMB2 2.2.2).

use super::{expect_structure_size, PutLe, Reader, Result, HEADER_LEN};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse {
    pub error_context_count: u8,
    /// ErrorData (ByteCount bytes; symlink or error contexts, kept raw).
    pub error_data: Vec<u8>,
}

impl ErrorResponse {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "ERROR response", 9)?;
        let error_context_count = r.u8("ErrorContextCount")?;
        r.skip(1, "Reserved")?;
        let n = r.u32("ByteCount")? as usize;
        let error_data = r.bytes(n, "ErrorData")?.to_vec();
        Ok(ErrorResponse {
            error_context_count,
            error_data,
        })
    }
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(9);
        buf.put_u8(self.error_context_count);
        buf.put_u8(0);
        buf.put_u32(self.error_data.len() as u32);
        buf.extend_from_slice(&self.error_data);
        if self.error_data.is_empty() {
            buf.put_u8(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = ErrorResponse {
            error_context_count: 0,
            error_data: vec![1, 2],
        };
        let mut b = vec![0; HEADER_LEN];
        e.emit_body(&mut b);
        assert_eq!(ErrorResponse::parse(&b).unwrap(), e);
    }
}
