//! The slice of SPNEGO (RFC 4178) DER that wraps NTLMSSP in SMB2
//! SESSION_SETUP: NegTokenInit with a mechToken, NegTokenResp both ways.

use crate::wire::WireError;

/// 1.3.6.1.5.5.2
pub const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// 1.3.6.1.4.1.311.2.2.10
pub const NTLMSSP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    der_len(content.len(), &mut v);
    v.extend_from_slice(content);
    v
}

/// GSS-API InitialContextToken carrying NegTokenInit { mechTypes: [NTLMSSP], mechToken }.
pub fn neg_token_init(mech_token: &[u8]) -> Vec<u8> {
    let mech_types = tlv(0xa0, &tlv(0x30, &tlv(0x06, NTLMSSP_OID)));
    let token = tlv(0xa2, &tlv(0x04, mech_token));
    let mut seq = mech_types;
    seq.extend_from_slice(&token);
    let init = tlv(0xa0, &tlv(0x30, &seq));
    let mut inner = tlv(0x06, SPNEGO_OID);
    inner.extend_from_slice(&init);
    tlv(0x60, &inner)
}

/// NegTokenResp { responseToken } (negState omitted, as Windows does).
pub fn neg_token_resp(response_token: &[u8]) -> Vec<u8> {
    tlv(0xa1, &tlv(0x30, &tlv(0xa2, &tlv(0x04, response_token))))
}

/// A parsed NegTokenResp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp {
    /// 0 accept-completed, 1 accept-incomplete, 2 reject, 3 request-mic.
    pub neg_state: Option<u8>,
    pub supported_mech: Option<Vec<u8>>,
    pub response_token: Option<Vec<u8>>,
    pub mech_list_mic: Option<Vec<u8>>,
}

struct Der<'a> {
    buf: &'a [u8],
}

impl<'a> Der<'a> {
    /// Reads one TLV; returns (tag, content).
    fn next(&mut self) -> Result<(u8, &'a [u8]), WireError> {
        let b = self.buf;
        let tag = *b.first().ok_or(WireError::Truncated("DER tag"))?;
        let l0 = *b.get(1).ok_or(WireError::Truncated("DER length"))? as usize;
        let (len, hdr) = if l0 < 0x80 {
            (l0, 2)
        } else {
            let n = l0 & 0x7f;
            if n == 0 || n > 4 {
                return Err(WireError::Malformed("DER length form"));
            }
            let lb = b.get(2..2 + n).ok_or(WireError::Truncated("DER length"))?;
            (lb.iter().fold(0usize, |a, x| (a << 8) | *x as usize), 2 + n)
        };
        let end = hdr
            .checked_add(len)
            .ok_or(WireError::Malformed("DER length"))?;
        let content = b.get(hdr..end).ok_or(WireError::Truncated("DER content"))?;
        self.buf = &b[end..];
        Ok((tag, content))
    }
    fn expect(&mut self, want: u8) -> Result<&'a [u8], WireError> {
        let (tag, c) = self.next()?;
        if tag != want {
            return Err(WireError::Malformed("unexpected DER tag"));
        }
        Ok(c)
    }
}

impl NegTokenResp {
    pub fn parse(b: &[u8]) -> Result<Self, WireError> {
        let mut d = Der { buf: b };
        let resp = d.expect(0xa1)?;
        let seq = Der { buf: resp }.expect(0x30)?;
        let mut d = Der { buf: seq };
        let mut out = NegTokenResp::default();
        while !d.buf.is_empty() {
            let (tag, c) = d.next()?;
            let mut inner = Der { buf: c };
            match tag {
                0xa0 => {
                    let e = inner.expect(0x0a)?;
                    out.neg_state = Some(*e.first().ok_or(WireError::Truncated("negState"))?);
                }
                0xa1 => out.supported_mech = Some(inner.expect(0x06)?.to_vec()),
                0xa2 => out.response_token = Some(inner.expect(0x04)?.to_vec()),
                0xa3 => out.mech_list_mic = Some(inner.expect(0x04)?.to_vec()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Returns the mechToken inside a NegTokenInit (used by tests and servers).
pub fn parse_neg_token_init(b: &[u8]) -> Result<Vec<u8>, WireError> {
    let app = Der { buf: b }.expect(0x60)?;
    let mut d = Der { buf: app };
    if d.expect(0x06)? != SPNEGO_OID {
        return Err(WireError::Malformed("not SPNEGO"));
    }
    let init = d.expect(0xa0)?;
    let seq = Der { buf: init }.expect(0x30)?;
    let mut d = Der { buf: seq };
    while !d.buf.is_empty() {
        let (tag, c) = d.next()?;
        if tag == 0xa2 {
            return Ok(Der { buf: c }.expect(0x04)?.to_vec());
        }
    }
    Err(WireError::Malformed("no mechToken"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_round_trip_and_long_lengths() {
        for n in [3usize, 200, 70_000] {
            let tok = vec![0x42; n];
            assert_eq!(parse_neg_token_init(&neg_token_init(&tok)).unwrap(), tok);
        }
    }

    #[test]
    fn resp_parse() {
        // negState accept-incomplete, supportedMech NTLMSSP, responseToken.
        let mut seq = tlv(0xa0, &tlv(0x0a, &[1]));
        seq.extend(tlv(0xa1, &tlv(0x06, NTLMSSP_OID)));
        seq.extend(tlv(0xa2, &tlv(0x04, b"NTLMSSP\0")));
        let b = tlv(0xa1, &tlv(0x30, &seq));
        let r = NegTokenResp::parse(&b).unwrap();
        assert_eq!(r.neg_state, Some(1));
        assert_eq!(r.supported_mech.as_deref(), Some(NTLMSSP_OID));
        assert_eq!(r.response_token.as_deref(), Some(&b"NTLMSSP\0"[..]));
        for n in 0..b.len() {
            let _ = NegTokenResp::parse(&b[..n]);
        }
        let ours = NegTokenResp::parse(&neg_token_resp(b"abc")).unwrap();
        assert_eq!(ours.response_token.as_deref(), Some(&b"abc"[..]));
    }
}
