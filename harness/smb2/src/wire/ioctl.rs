//! SMB2 IOCTL request/response (MS-SMB2 2.2.31, 2.2.32) and the output of
//! FSCTL_QUERY_NETWORK_INTERFACE_INFO (2.2.32.5): a zero-copy view of one
//! NETWORK_INTERFACE_INFO entry and a validated repr of the whole list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    expect_structure_size, slice_at, Command, FileId, PutLe, Reader, RequestBody, ResponseBody,
    Result, WireError, HEADER_LEN,
};
use crate::NtStatus;

pub const FSCTL_QUERY_NETWORK_INTERFACE_INFO: u32 = 0x0014_01FC;
pub const FSCTL_VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
/// IOCTL Flags: the CtlCode is an FSCTL (the only kind SMB2 carries).
pub const SMB2_0_IOCTL_IS_FSCTL: u32 = 0x0000_0001;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoctlRequest {
    pub ctl_code: u32,
    pub file_id: FileId,
    pub input: Vec<u8>,
    pub max_input_response: u32,
    pub max_output_response: u32,
    pub flags: u32,
}

impl IoctlRequest {
    /// FSCTL_QUERY_NETWORK_INTERFACE_INFO: no input, FileId all ones.
    pub fn query_network_interface_info() -> Self {
        IoctlRequest {
            ctl_code: FSCTL_QUERY_NETWORK_INTERFACE_INFO,
            file_id: FileId::ANY,
            input: Vec::new(),
            max_input_response: 0,
            max_output_response: 64 * 1024,
            flags: SMB2_0_IOCTL_IS_FSCTL,
        }
    }

    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "IOCTL request", 57)?;
        r.skip(2, "Reserved")?;
        let ctl_code = r.u32("CtlCode")?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32("InputOffset")? as usize;
        let in_len = r.u32("InputCount")? as usize;
        let max_input_response = r.u32("MaxInputResponse")?;
        r.skip(8, "OutputOffset, OutputCount")?;
        let max_output_response = r.u32("MaxOutputResponse")?;
        let flags = r.u32("Flags")?;
        let input = if in_len == 0 {
            Vec::new()
        } else {
            slice_at(msg, in_off, in_len, "IOCTL Input")?.to_vec()
        };
        Ok(IoctlRequest {
            ctl_code,
            file_id,
            input,
            max_input_response,
            max_output_response,
            flags,
        })
    }
}

impl RequestBody for IoctlRequest {
    const COMMAND: Command = Command::Ioctl;
    type Response = IoctlResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        let input_offset = if self.input.is_empty() {
            0
        } else {
            (HEADER_LEN + 56) as u32
        };
        buf.put_u16(57);
        buf.put_u16(0);
        buf.put_u32(self.ctl_code);
        self.file_id.emit(buf);
        buf.put_u32(input_offset);
        buf.put_u32(self.input.len() as u32);
        buf.put_u32(self.max_input_response);
        buf.put_u32(0); // OutputOffset
        buf.put_u32(0); // OutputCount
        buf.put_u32(self.max_output_response);
        buf.put_u32(self.flags);
        buf.put_u32(0);
        buf.extend_from_slice(&self.input);
        if self.input.is_empty() {
            buf.put_u8(0);
        }
    }
    fn payload_size(&self) -> usize {
        // CreditCharge covers the larger of what is sent and what may come back.
        self.input
            .len()
            .max(self.max_input_response as usize)
            .max(self.max_output_response as usize)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlResponse {
    pub ctl_code: u32,
    pub file_id: FileId,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub flags: u32,
}

impl IoctlResponse {
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        let in_off = HEADER_LEN + 48;
        let out_off = in_off + self.input.len().next_multiple_of(8);
        buf.put_u16(49);
        buf.put_u16(0);
        buf.put_u32(self.ctl_code);
        self.file_id.emit(buf);
        buf.put_u32(in_off as u32);
        buf.put_u32(self.input.len() as u32);
        buf.put_u32(out_off as u32);
        buf.put_u32(self.output.len() as u32);
        buf.put_u32(self.flags);
        buf.put_u32(0);
        buf.extend_from_slice(&self.input);
        buf.resize(out_off, 0);
        buf.extend_from_slice(&self.output);
    }
}

impl ResponseBody for IoctlResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "IOCTL response", 49)?;
        r.skip(2, "Reserved")?;
        let ctl_code = r.u32("CtlCode")?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32("InputOffset")? as usize;
        let in_len = r.u32("InputCount")? as usize;
        let out_off = r.u32("OutputOffset")? as usize;
        let out_len = r.u32("OutputCount")? as usize;
        let flags = r.u32("Flags")?;
        r.skip(4, "Reserved2")?;
        let field = |off, len, what| -> Result<Vec<u8>> {
            if len == 0 {
                Ok(Vec::new())
            } else {
                Ok(slice_at(msg, off, len, what)?.to_vec())
            }
        };
        Ok(IoctlResponse {
            ctl_code,
            file_id,
            input: field(in_off, in_len, "IOCTL Input")?,
            output: field(out_off, out_len, "IOCTL Output")?,
            flags,
        })
    }
    fn has_body(status: NtStatus) -> bool {
        // STATUS_BUFFER_OVERFLOW: a truncated but valid output.
        !status.is_error() && !status.is_warning() || status == NtStatus::STATUS_BUFFER_OVERFLOW
    }
}

/// NETWORK_INTERFACE_INFO Capability bits.
pub const RSS_CAPABLE: u32 = 0x0000_0001;
pub const RDMA_CAPABLE: u32 = 0x0000_0002;

/// Address families in SOCKADDR_STORAGE (2.2.32.5.1).
pub const INTER_NETWORK: u16 = 0x0002;
pub const INTER_NETWORK_V6: u16 = 0x0017;

/// Size of one NETWORK_INTERFACE_INFO entry (fixed part + SOCKADDR_STORAGE).
pub const NETWORK_INTERFACE_INFO_LEN: usize = 152;

mod field {
    use std::ops::Range;
    pub const NEXT: Range<usize> = 0..4;
    pub const IF_INDEX: Range<usize> = 4..8;
    pub const CAPABILITY: Range<usize> = 8..12;
    pub const LINK_SPEED: Range<usize> = 16..24;
    pub const FAMILY: Range<usize> = 24..26;
    pub const PORT: Range<usize> = 26..28;
    pub const IPV4: Range<usize> = 28..32;
    pub const IPV6: Range<usize> = 32..48;
    pub const SCOPE_ID: Range<usize> = 48..52;
}

/// A zero-copy view of one NETWORK_INTERFACE_INFO entry, checked to be
/// long enough for every accessor.
#[derive(Debug, Clone, Copy)]
pub struct NetworkInterfaceInfo<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NetworkInterfaceInfo<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < NETWORK_INTERFACE_INFO_LEN {
            return Err(WireError::Truncated("NETWORK_INTERFACE_INFO"));
        }
        Ok(NetworkInterfaceInfo { buffer })
    }
    fn bytes<const N: usize>(&self, r: std::ops::Range<usize>) -> [u8; N] {
        let mut a = [0u8; N];
        // new_checked guarantees the whole entry; every range lies inside it.
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        a
    }
    pub fn next(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::NEXT))
    }
    pub fn if_index(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::IF_INDEX))
    }
    pub fn capability(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::CAPABILITY))
    }
    pub fn link_speed(&self) -> u64 {
        u64::from_le_bytes(self.bytes(field::LINK_SPEED))
    }
    pub fn family(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::FAMILY))
    }
    /// Port, in network byte order on the wire (servers send 0).
    pub fn port(&self) -> u16 {
        u16::from_be_bytes(self.bytes(field::PORT))
    }
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(field::IPV4))
    }
    pub fn ipv6(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.bytes::<16>(field::IPV6))
    }
    pub fn scope_id(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::SCOPE_ID))
    }
}

/// One server interface, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceRepr {
    pub if_index: u32,
    pub capability: u32,
    /// Bits per second.
    pub link_speed: u64,
    pub address: IpAddr,
}

impl InterfaceRepr {
    pub fn rss(&self) -> bool {
        self.capability & RSS_CAPABLE != 0
    }
    pub fn rdma(&self) -> bool {
        self.capability & RDMA_CAPABLE != 0
    }

    pub fn parse<T: AsRef<[u8]>>(v: &NetworkInterfaceInfo<T>) -> Result<Self> {
        let address = match v.family() {
            INTER_NETWORK => IpAddr::V4(v.ipv4()),
            INTER_NETWORK_V6 => IpAddr::V6(v.ipv6()),
            _ => return Err(WireError::Malformed("SOCKADDR_STORAGE Family")),
        };
        Ok(InterfaceRepr {
            if_index: v.if_index(),
            capability: v.capability(),
            link_speed: v.link_speed(),
            address,
        })
    }

    /// Appends one entry with Next = `next`.
    pub fn emit(&self, buf: &mut Vec<u8>, next: u32) {
        let start = buf.len();
        buf.put_u32(next);
        buf.put_u32(self.if_index);
        buf.put_u32(self.capability);
        buf.put_u32(0);
        buf.put_u64(self.link_speed);
        match self.address {
            IpAddr::V4(a) => {
                buf.put_u16(INTER_NETWORK);
                buf.put_u16(0);
                buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                buf.put_u16(INTER_NETWORK_V6);
                buf.put_u16(0);
                buf.put_u32(0); // FlowInfo
                buf.extend_from_slice(&a.octets());
            }
        }
        buf.resize(start + NETWORK_INTERFACE_INFO_LEN, 0);
    }
}

/// Most entries a server may return; far above any real host.
pub const MAX_INTERFACES: usize = 4096;

/// Parses the FSCTL_QUERY_NETWORK_INTERFACE_INFO output: entries chained by
/// Next (an offset from the entry's start, 0 on the last). Next must move
/// forward by at least one entry, so the walk ends.
pub fn parse_network_interfaces(output: &[u8]) -> Result<Vec<InterfaceRepr>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        let entry = output
            .get(pos..)
            .ok_or(WireError::OutOfBounds("NETWORK_INTERFACE_INFO Next"))?;
        let v = NetworkInterfaceInfo::new_checked(entry)?;
        out.push(InterfaceRepr::parse(&v)?);
        let next = v.next() as usize;
        if next == 0 {
            return Ok(out);
        }
        if next < NETWORK_INTERFACE_INFO_LEN {
            return Err(WireError::Malformed("NETWORK_INTERFACE_INFO Next overlaps"));
        }
        if out.len() >= MAX_INTERFACES {
            return Err(WireError::Malformed("too many NETWORK_INTERFACE_INFO"));
        }
        pos = pos
            .checked_add(next)
            .ok_or(WireError::OutOfBounds("NETWORK_INTERFACE_INFO Next"))?;
    }
}

/// Emits a list as a server would (entries back to back).
pub fn emit_network_interfaces(list: &[InterfaceRepr]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(list.len() * NETWORK_INTERFACE_INFO_LEN);
    for (i, e) in list.iter().enumerate() {
        let next = if i + 1 == list.len() {
            0
        } else {
            NETWORK_INTERFACE_INFO_LEN as u32
        };
        e.emit(&mut buf, next);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<InterfaceRepr> {
        vec![
            InterfaceRepr {
                if_index: 1,
                capability: RSS_CAPABLE,
                link_speed: 1_000_000_000,
                address: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)),
            },
            InterfaceRepr {
                if_index: 2,
                capability: RSS_CAPABLE | RDMA_CAPABLE,
                link_speed: 10_000_000_000,
                address: IpAddr::V6("fd00::1".parse().unwrap()),
            },
        ]
    }

    #[test]
    fn interfaces_round_trip() {
        let l = list();
        let b = emit_network_interfaces(&l);
        assert_eq!(b.len(), 2 * NETWORK_INTERFACE_INFO_LEN);
        assert_eq!(parse_network_interfaces(&b).unwrap(), l);
        assert!(l[0].rss() && !l[0].rdma() && l[1].rdma());
    }

    /// One entry laid out by hand from MS-SMB2 2.2.32.5 (not by our emitter): Next 0,
    /// IfIndex 1, RSS, 1 Gb/s, SOCKADDR_IN 198.18.0.10.
    #[test]
    fn parses_a_samba_entry() {
        let mut b = vec![0u8; NETWORK_INTERFACE_INFO_LEN];
        b[4] = 1;
        b[8] = 1;
        b[16..24].copy_from_slice(&1_000_000_000u64.to_le_bytes());
        b[24] = 2;
        b[28..32].copy_from_slice(&[198, 18, 0, 10]);
        let l = parse_network_interfaces(&b).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].address, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)));
        assert_eq!(l[0].link_speed, 1_000_000_000);
        assert!(l[0].rss());
    }

    #[test]
    fn rejects_loops_overlaps_and_unknown_families() {
        let mut b = emit_network_interfaces(&list());
        b[0..4].copy_from_slice(&8u32.to_le_bytes());
        assert!(parse_network_interfaces(&b).is_err());
        let mut b = emit_network_interfaces(&list());
        b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_network_interfaces(&b).is_err());
        let mut b = emit_network_interfaces(&list());
        b[24] = 9;
        assert!(parse_network_interfaces(&b).is_err());
        assert!(parse_network_interfaces(&[]).is_err());
    }

    #[test]
    fn ioctl_round_trips() {
        let req = IoctlRequest {
            input: vec![1, 2, 3],
            ..IoctlRequest::query_network_interface_info()
        };
        let mut b = vec![0; HEADER_LEN];
        req.emit(&mut b);
        assert_eq!(IoctlRequest::parse(&b).unwrap(), req);
        let q = IoctlRequest::query_network_interface_info();
        let mut b = vec![0; HEADER_LEN];
        q.emit(&mut b);
        assert_eq!(IoctlRequest::parse(&b).unwrap(), q);
        let resp = IoctlResponse {
            ctl_code: FSCTL_QUERY_NETWORK_INTERFACE_INFO,
            file_id: FileId::ANY,
            input: vec![9; 3],
            output: emit_network_interfaces(&list()),
            flags: 0,
        };
        let mut b = vec![0; HEADER_LEN];
        resp.emit_body(&mut b);
        assert_eq!(IoctlResponse::parse(&b).unwrap(), resp);
    }
}
