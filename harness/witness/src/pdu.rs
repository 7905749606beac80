//! Connection-oriented DCE/RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2): the common header,
//! the auth verifier (sec_trailer + auth_value) and the bodies a client sends (bind,
//! alter_context, auth3, request) and receives (bind_ack, alter_context_resp, bind_nak,
//! response, fault).
//!
//! [`Frame::parse`] is the view: it checks one PDU's header and lengths against the bytes
//! and finds its body and verifier, never panicking; body reprs parse from the frame's body.

use std::ops::Range;

use crate::ndr::Uuid;

/// Length of the common header.
pub const HEADER_LEN: usize = 16;
/// Length of the sec_trailer that precedes an auth_value.
pub const SEC_TRAILER_LEN: usize = 8;
/// Bytes before the stub in a request (header, alloc_hint, p_cont_id, opnum).
pub const REQUEST_STUB_OFFSET: usize = HEADER_LEN + 8;
/// Bytes before the stub in a response.
pub const RESPONSE_STUB_OFFSET: usize = HEADER_LEN + 8;
/// The fragment size Windows clients offer.
pub const DEFAULT_MAX_FRAG: u16 = 5840;

/// PDU types (C706 12.6.4.1).
pub mod ptype {
    pub const REQUEST: u8 = 0;
    pub const RESPONSE: u8 = 2;
    pub const FAULT: u8 = 3;
    pub const BIND: u8 = 11;
    pub const BIND_ACK: u8 = 12;
    pub const BIND_NAK: u8 = 13;
    pub const ALTER_CONTEXT: u8 = 14;
    pub const ALTER_CONTEXT_RESP: u8 = 15;
    pub const AUTH3: u8 = 16;
    pub const SHUTDOWN: u8 = 17;
}

/// pfc_flags (C706 12.6.3.1, MS-RPCE 2.2.2.3).
pub mod pfc {
    pub const FIRST_FRAG: u8 = 0x01;
    pub const LAST_FRAG: u8 = 0x02;
    /// In bind and alter_context: PFC_SUPPORT_HEADER_SIGN.
    pub const SUPPORT_HEADER_SIGN: u8 = 0x04;
    pub const CONC_MPX: u8 = 0x10;
    pub const DID_NOT_EXECUTE: u8 = 0x20;
    pub const MAYBE: u8 = 0x40;
    pub const OBJECT_UUID: u8 = 0x80;
}

/// RPC_C_AUTHN_WINNT: NTLMSSP.
pub const AUTHN_WINNT: u8 = 10;

/// RPC_C_AUTHN_LEVEL_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthLevel {
    Connect = 2,
    PktIntegrity = 5,
    PktPrivacy = 6,
}

/// NDR 2.0, the transfer syntax every call here uses.
pub const NDR20: Syntax = Syntax {
    uuid: match Uuid::parse("8a885d04-1ceb-11c9-9fe8-08002b104860") {
        Some(u) => u,
        None => panic!("NDR20 uuid"),
    },
    version: 2,
};

/// An interface or transfer syntax: UUID and version (major in the low 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    pub uuid: Uuid,
    pub version: u32,
}

impl Syntax {
    pub const fn new(uuid: Uuid, major: u16, minor: u16) -> Syntax {
        Syntax {
            uuid,
            version: major as u32 | (minor as u32) << 16,
        }
    }

    fn emit(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(&self.uuid.to_le_bytes());
        b.extend_from_slice(&self.version.to_le_bytes());
    }
}

/// Why bytes are not a PDU we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("PDU truncated: {0}")]
    Truncated(&'static str),
    #[error("not DCE/RPC 5.0 connection-oriented: version {0}.{1}")]
    Version(u8, u8),
    #[error("unsupported data representation {0:02x?} (only little-endian ASCII IEEE)")]
    Drep([u8; 4]),
    #[error("PDU {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl Into<String>) -> PduError {
    PduError::Malformed {
        what,
        detail: detail.into(),
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The sec_trailer (MS-RPCE 2.2.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecTrailer {
    pub auth_type: u8,
    pub auth_level: u8,
    pub auth_pad_length: u8,
    pub auth_context_id: u32,
}

impl SecTrailer {
    fn emit(&self, b: &mut Vec<u8>) {
        b.extend_from_slice(&[self.auth_type, self.auth_level, self.auth_pad_length, 0]);
        b.extend_from_slice(&self.auth_context_id.to_le_bytes());
    }
}

/// One PDU located in a buffer: header fields, body, and verifier positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub ptype: u8,
    pub pfc_flags: u8,
    pub frag_length: usize,
    pub call_id: u32,
    /// The body after the common header, auth padding excluded.
    pub body: Range<usize>,
    /// With a verifier: the trailer and where the auth_value lies.
    pub auth: Option<(SecTrailer, Range<usize>)>,
}

impl Frame {
    /// The frag_length a buffer starting with a PDU header announces (for framing a byte
    /// stream), once 16 bytes are there.
    pub fn frag_length_of(head: &[u8]) -> Result<usize, PduError> {
        if head.len() < HEADER_LEN {
            return Err(PduError::Truncated("common header"));
        }
        check_version(head)?;
        let n = le16(head, 8) as usize;
        if n < HEADER_LEN {
            return Err(malformed(
                "frag_length",
                format!("{n} is shorter than the header"),
            ));
        }
        Ok(n)
    }

    /// Parses the PDU at the start of `buf` (which may hold more after it).
    pub fn parse(buf: &[u8]) -> Result<Frame, PduError> {
        let frag_length = Frame::frag_length_of(buf)?;
        if buf.len() < frag_length {
            return Err(PduError::Truncated("fragment shorter than frag_length"));
        }
        let drep = [buf[4], buf[5], buf[6], buf[7]];
        if drep[0] != 0x10 || drep[1] != 0 {
            return Err(PduError::Drep(drep));
        }
        let auth_length = le16(buf, 10) as usize;
        let call_id = le32(buf, 12);
        let (body_end, auth) = if auth_length == 0 {
            (frag_length, None)
        } else {
            let trailer_at = frag_length
                .checked_sub(auth_length + SEC_TRAILER_LEN)
                .filter(|&t| t >= HEADER_LEN)
                .ok_or_else(|| {
                    malformed(
                        "auth_length",
                        format!("{auth_length} does not fit frag_length {frag_length}"),
                    )
                })?;
            let t = &buf[trailer_at..];
            let trailer = SecTrailer {
                auth_type: t[0],
                auth_level: t[1],
                auth_pad_length: t[2],
                auth_context_id: le32(t, 4),
            };
            let body_end = trailer_at
                .checked_sub(trailer.auth_pad_length as usize)
                .filter(|&e| e >= HEADER_LEN)
                .ok_or_else(|| {
                    malformed(
                        "auth_pad_length",
                        format!("{} exceeds the body", trailer.auth_pad_length),
                    )
                })?;
            (
                body_end,
                Some((trailer, trailer_at + SEC_TRAILER_LEN..frag_length)),
            )
        };
        Ok(Frame {
            ptype: buf[2],
            pfc_flags: buf[3],
            frag_length,
            call_id,
            body: HEADER_LEN..body_end,
            auth,
        })
    }

    /// Where the sec_trailer starts (the end of body and auth padding).
    pub fn trailer_offset(&self) -> Option<usize> {
        self.auth.as_ref().map(|(_, v)| v.start - SEC_TRAILER_LEN)
    }

    pub fn is_first(&self) -> bool {
        self.pfc_flags & pfc::FIRST_FRAG != 0
    }

    pub fn is_last(&self) -> bool {
        self.pfc_flags & pfc::LAST_FRAG != 0
    }
}

fn check_version(b: &[u8]) -> Result<(), PduError> {
    if b[0] != 5 || b[1] != 0 {
        return Err(PduError::Version(b[0], b[1]));
    }
    Ok(())
}

/// Builds one PDU: header, `body`, then (with `auth`) the trailer's `auth_pad_length`
/// zero bytes, the trailer and `auth_value_len` zero bytes for the caller to fill (a
/// signature is computed over the PDU it ends). Returns the PDU and the range of body and
/// padding.
pub fn emit(
    ptype: u8,
    pfc_flags: u8,
    call_id: u32,
    body: &[u8],
    auth: Option<(SecTrailer, usize)>,
) -> (Vec<u8>, Range<usize>) {
    let mut b = Vec::with_capacity(HEADER_LEN + body.len() + 64);
    b.extend_from_slice(&[5, 0, ptype, pfc_flags, 0x10, 0, 0, 0]);
    b.extend_from_slice(&[0; 8]); // frag_length, auth_length, call_id below
    b.extend_from_slice(body);
    let mut padded = HEADER_LEN..b.len();
    let mut auth_length = 0usize;
    if let Some((trailer, value_len)) = auth {
        b.resize(b.len() + trailer.auth_pad_length as usize, 0);
        padded.end = b.len();
        trailer.emit(&mut b);
        b.resize(b.len() + value_len, 0);
        auth_length = value_len;
    }
    let frag = b.len() as u16;
    b[8..10].copy_from_slice(&frag.to_le_bytes());
    b[10..12].copy_from_slice(&(auth_length as u16).to_le_bytes());
    b[12..16].copy_from_slice(&call_id.to_le_bytes());
    (b, padded)
}

/// Padding that brings `len` stub bytes to a multiple of 16, as sealed stubs are sent.
pub fn auth_pad(len: usize) -> u8 {
    ((16 - len % 16) % 16) as u8
}

/// One presentation context offered in a bind or alter_context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContext {
    pub context_id: u16,
    pub abstract_syntax: Syntax,
    pub transfer_syntaxes: Vec<Syntax>,
}

/// A bind or alter_context body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRepr {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    pub contexts: Vec<PresentationContext>,
}

impl BindRepr {
    pub fn emit(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.max_xmit_frag.to_le_bytes());
        b.extend_from_slice(&self.max_recv_frag.to_le_bytes());
        b.extend_from_slice(&self.assoc_group_id.to_le_bytes());
        b.extend_from_slice(&[self.contexts.len() as u8, 0, 0, 0]);
        for c in &self.contexts {
            b.extend_from_slice(&c.context_id.to_le_bytes());
            b.extend_from_slice(&[c.transfer_syntaxes.len() as u8, 0]);
            c.abstract_syntax.emit(&mut b);
            for t in &c.transfer_syntaxes {
                t.emit(&mut b);
            }
        }
        b
    }
}

/// p_cont_def_result_t.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 1 user rejection, 2 provider rejection, 3 negotiate_ack.
    pub result: u16,
    pub reason: u16,
    pub transfer_syntax: Syntax,
}

/// A bind_ack or alter_context_resp body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAckRepr {
    pub max_xmit_frag: u16,
    pub max_recv_frag: u16,
    pub assoc_group_id: u32,
    /// The secondary address (the server's port, as a string); empty in alter_context_resp.
    pub sec_addr: String,
    pub results: Vec<ContextResult>,
}

impl BindAckRepr {
    /// From the body of a bind_ack (starting right after the common header, so alignment
    /// counts from offset 16 of the PDU).
    pub fn parse(body: &[u8]) -> Result<BindAckRepr, PduError> {
        let need = |n: usize, what: &'static str| {
            if body.len() < n {
                Err(PduError::Truncated(what))
            } else {
                Ok(())
            }
        };
        need(10, "bind_ack fixed fields")?;
        let max_xmit_frag = le16(body, 0);
        let max_recv_frag = le16(body, 2);
        let assoc_group_id = le32(body, 4);
        let addr_len = le16(body, 8) as usize;
        need(10 + addr_len, "sec_addr")?;
        let addr = &body[10..10 + addr_len];
        let sec_addr =
            String::from_utf8_lossy(addr.split(|&c| c == 0).next().unwrap_or(&[])).into_owned();
        // Align to 4 relative to the PDU start (body starts at 16, itself aligned).
        let mut at = 10 + addr_len;
        at += (4 - at % 4) % 4;
        need(at + 4, "p_result_list")?;
        let n = body[at] as usize;
        at += 4;
        need(at + n * 24, "p_results")?;
        let results = (0..n)
            .map(|i| {
                let r = &body[at + i * 24..];
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&r[4..20]);
                ContextResult {
                    result: le16(r, 0),
                    reason: le16(r, 2),
                    transfer_syntax: Syntax {
                        uuid: Uuid::from_le_bytes(uuid),
                        version: le32(r, 20),
                    },
                }
            })
            .collect();
        Ok(BindAckRepr {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            sec_addr,
            results,
        })
    }
}

/// A bind_nak: the provider's reject reason (C706 p_reject_reason_t).
pub fn parse_bind_nak(body: &[u8]) -> Result<u16, PduError> {
    if body.len() < 2 {
        return Err(PduError::Truncated("bind_nak reason"));
    }
    Ok(le16(body, 0))
}

/// A request's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRepr {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub opnum: u16,
}

impl RequestRepr {
    pub fn emit(&self, stub: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + stub.len());
        b.extend_from_slice(&self.alloc_hint.to_le_bytes());
        b.extend_from_slice(&self.context_id.to_le_bytes());
        b.extend_from_slice(&self.opnum.to_le_bytes());
        b.extend_from_slice(stub);
        b
    }

    pub fn parse(body: &[u8]) -> Result<(RequestRepr, &[u8]), PduError> {
        if body.len() < 8 {
            return Err(PduError::Truncated("request fixed fields"));
        }
        Ok((
            RequestRepr {
                alloc_hint: le32(body, 0),
                context_id: le16(body, 4),
                opnum: le16(body, 6),
            },
            &body[8..],
        ))
    }
}

/// A response's fixed fields; the stub follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRepr {
    pub alloc_hint: u32,
    pub context_id: u16,
    pub cancel_count: u8,
}

impl ResponseRepr {
    pub fn parse(body: &[u8]) -> Result<(ResponseRepr, &[u8]), PduError> {
        if body.len() < 8 {
            return Err(PduError::Truncated("response fixed fields"));
        }
        Ok((
            ResponseRepr {
                alloc_hint: le32(body, 0),
                context_id: le16(body, 4),
                cancel_count: body[6],
            },
            &body[8..],
        ))
    }

    pub fn emit(&self, stub: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + stub.len());
        b.extend_from_slice(&self.alloc_hint.to_le_bytes());
        b.extend_from_slice(&self.context_id.to_le_bytes());
        b.extend_from_slice(&[self.cancel_count, 0]);
        b.extend_from_slice(stub);
        b
    }
}

/// A fault's status (an nca_s_* or Win32 code, MS-RPCE 2.2.2.10).
pub fn parse_fault(body: &[u8]) -> Result<u32, PduError> {
    if body.len() < 12 {
        return Err(PduError::Truncated("fault status"));
    }
    Ok(le32(body, 8))
}

/// Names for the fault statuses a client meets.
pub fn fault_name(status: u32) -> &'static str {
    match status {
        0x1c01_0002 => "nca_s_op_rng_error",
        0x1c01_0003 => "nca_s_unk_if",
        0x1c00_0009 => "nca_s_proto_error",
        0x1c01_0017 => "nca_s_unsupported_type",
        0x1c00_001a => "nca_s_fault_context_mismatch",
        0x1c00_0011 => "nca_s_fault_invalid_tag",
        0x0000_0005 => "access_denied",
        0x0000_06f7 => "rpc_x_bad_stub_data",
        0x0000_0721 => "rpc_s_sec_pkg_error",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer() -> SecTrailer {
        SecTrailer {
            auth_type: AUTHN_WINNT,
            auth_level: AuthLevel::PktPrivacy as u8,
            auth_pad_length: 0,
            auth_context_id: 1,
        }
    }

    #[test]
    fn request_with_verifier_round_trips() {
        let body = RequestRepr {
            alloc_hint: 5,
            context_id: 0,
            opnum: 3,
        }
        .emit(&[1, 2, 3, 4, 5]);
        let t = SecTrailer {
            auth_pad_length: auth_pad(5),
            ..trailer()
        };
        let (pdu, padded) = emit(
            ptype::REQUEST,
            pfc::FIRST_FRAG | pfc::LAST_FRAG,
            7,
            &body,
            Some((t, 16)),
        );
        // Stub (5) padded to 16, so the trailer starts at 24 + 16.
        assert_eq!(padded, HEADER_LEN..HEADER_LEN + 8 + 16);
        let f = Frame::parse(&pdu).unwrap();
        assert_eq!(f.frag_length, pdu.len());
        assert_eq!(f.call_id, 7);
        assert_eq!(f.trailer_offset(), Some(40));
        let (t, v) = f.auth.clone().unwrap();
        assert_eq!(t.auth_pad_length, 11);
        assert_eq!(v, 48..64);
        let (r, stub) = RequestRepr::parse(&pdu[f.body.clone()]).unwrap();
        assert_eq!(r.opnum, 3);
        assert_eq!(stub, &[1, 2, 3, 4, 5]);
    }

    #[test]
    fn bind_ack_parses_sec_addr_alignment() {
        // bind_ack body: frags, group, sec_addr "49153\0" (6), pad to 4, one result.
        let mut b = Vec::new();
        b.extend_from_slice(&5840u16.to_le_bytes());
        b.extend_from_slice(&5840u16.to_le_bytes());
        b.extend_from_slice(&0x1234u32.to_le_bytes());
        b.extend_from_slice(&6u16.to_le_bytes());
        b.extend_from_slice(b"49153\0");
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b.extend_from_slice(&[1, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]);
        NDR20.emit(&mut b);
        let a = BindAckRepr::parse(&b).unwrap();
        assert_eq!(a.sec_addr, "49153");
        assert_eq!(a.assoc_group_id, 0x1234);
        assert_eq!(a.results[0].transfer_syntax, NDR20);
        for n in 0..b.len() {
            assert!(BindAckRepr::parse(&b[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn bad_lengths_are_errors() {
        let (mut pdu, _) = emit(ptype::RESPONSE, 3, 1, &[0; 8], Some((trailer(), 16)));
        assert!(Frame::parse(&pdu).is_ok());
        pdu[10] = 0xff; // auth_length beyond the fragment
        assert!(Frame::parse(&pdu).is_err());
        pdu[10] = 16;
        let trailer_at = pdu.len() - 24;
        pdu[trailer_at + 2] = 200; // pad beyond the body
        assert!(Frame::parse(&pdu).is_err());
        pdu[0] = 4;
        assert_eq!(Frame::parse(&pdu), Err(PduError::Version(4, 0)));
    }
}
