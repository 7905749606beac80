//! Just enough Ethernet/IPv4/TCP parsing to route frames and match filters. Every accessor
//! checks lengths: no input can make it panic.

use std::net::Ipv4Addr;

pub type Mac = [u8; 6];

pub fn dst_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(0..6)?.try_into().ok()
}

pub fn src_mac(frame: &[u8]) -> Option<Mac> {
    frame.get(6..12)?.try_into().ok()
}

pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// The IPv4/TCP four-tuple of a frame, when it carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub flags: u8,
}

pub fn tcp(frame: &[u8]) -> Option<Tcp> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ihl < 20 || *ip.get(9)? != 6 {
        return None;
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let tcp = ip.get(ihl..)?;
    let src_port = u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]);
    let dst_port = u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]);
    Some(Tcp {
        src,
        dst,
        src_port,
        dst_port,
        flags: *tcp.get(13)?,
    })
}

/// A TCP segment's place in its stream: sequence and acknowledgment numbers, and where its
/// payload is in the frame (bounded by the IP total length, so Ethernet padding is not payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub tcp: Tcp,
    pub seq: u32,
    pub ack: u32,
    /// Offset of the TCP header in the frame.
    pub tcp_at: usize,
    /// Offset of the payload in the frame.
    pub payload_at: usize,
    pub payload_len: usize,
}

pub fn segment(frame: &[u8]) -> Option<Segment> {
    let tcp = tcp(frame)?;
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let tcp_at = 14 + ihl;
    let seg = frame.get(tcp_at..)?;
    let doff = usize::from(seg.get(12)? >> 4) * 4;
    if doff < 20 {
        return None;
    }
    let payload_at = tcp_at + doff;
    // A segmentation-offload segment's length is the frame's; a plain frame's is the IP total
    // length (a short frame is padded to 60 bytes).
    let end = if total == 0 {
        frame.len()
    } else {
        (14 + total).min(frame.len())
    };
    let u32be = |i: usize| Some(u32::from_be_bytes(seg.get(i..i + 4)?.try_into().ok()?));
    Some(Segment {
        tcp,
        seq: u32be(4)?,
        ack: u32be(8)?,
        tcp_at,
        payload_at,
        payload_len: end.checked_sub(payload_at)?,
    })
}

/// A frame the cluster's story is told by: CTDB's gratuitous ARPs and tickle ACKs, and the
/// RSTs of SMB connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notable {
    /// An ARP whose sender and target address are the same: "`ip` is at `mac`".
    Garp { ip: Ipv4Addr, mac: [u8; 6] },
    /// An ACK without payload and with window 1234: what CTDB sends for each connection
    /// registered to an address it takes over, so the client answers and meets an RST.
    TickleAck {
        src: Ipv4Addr,
        src_port: u16,
        dst: Ipv4Addr,
        dst_port: u16,
    },
    /// A TCP RST to or from port 445.
    Rst {
        src: Ipv4Addr,
        src_port: u16,
        dst: Ipv4Addr,
        dst_port: u16,
    },
}

/// CTDB's tickle ACKs carry this window (ctdb/common/system_socket.c).
pub const TICKLE_WINDOW: u16 = 1234;
const SMB_PORT: u16 = 445;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

pub fn notable(frame: &[u8]) -> Option<Notable> {
    match frame.get(12..14)? {
        [0x08, 0x06] => {
            let arp = frame.get(14..42)?;
            let sender = Ipv4Addr::from(<[u8; 4]>::try_from(arp.get(14..18)?).ok()?);
            let target = Ipv4Addr::from(<[u8; 4]>::try_from(arp.get(24..28)?).ok()?);
            let mac: [u8; 6] = arp.get(8..14)?.try_into().ok()?;
            (sender == target).then_some(Notable::Garp { ip: sender, mac })
        }
        [0x08, 0x00] => {
            let t = tcp(frame)?;
            let ip = frame.get(14..)?;
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let seg = ip.get(ihl..)?;
            let offset = usize::from(seg.get(12)? >> 4) * 4;
            let window = u16::from_be_bytes([*seg.get(14)?, *seg.get(15)?]);
            let payload = total.checked_sub(ihl + offset)?;
            if t.flags & RST != 0 && (t.src_port == SMB_PORT || t.dst_port == SMB_PORT) {
                Some(Notable::Rst {
                    src: t.src,
                    src_port: t.src_port,
                    dst: t.dst,
                    dst_port: t.dst_port,
                })
            } else if t.flags == ACK && window == TICKLE_WINDOW && payload == 0 {
                Some(Notable::TickleAck {
                    src: t.src,
                    src_port: t.src_port,
                    dst: t.dst,
                    dst_port: t.dst_port,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notable_frames_and_no_panic_on_any_prefix() {
        // A tickle ACK: 198.19.0.10:445 -> 198.18.0.13:60884, ACK, window 1234, no payload.
        let mut f = vec![0u8; 54];
        f[12] = 8;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 19, 0, 10]);
        f[30..34].copy_from_slice(&[198, 18, 0, 13]);
        f[34..36].copy_from_slice(&445u16.to_be_bytes());
        f[36..38].copy_from_slice(&60884u16.to_be_bytes());
        f[46] = 5 << 4;
        f[47] = ACK;
        f[48..50].copy_from_slice(&1234u16.to_be_bytes());
        assert!(matches!(
            notable(&f),
            Some(Notable::TickleAck {
                src_port: 445,
                dst_port: 60884,
                ..
            })
        ));
        f[47] = RST | ACK;
        assert!(matches!(notable(&f), Some(Notable::Rst { .. })));
        for n in 0..f.len() {
            let _ = notable(&f[..n]);
        }
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[8, 6]);
        arp[28..32].copy_from_slice(&[198, 19, 0, 10]);
        arp[38..42].copy_from_slice(&[198, 19, 0, 10]);
        assert!(matches!(notable(&arp), Some(Notable::Garp { .. })));
        arp[41] = 11;
        assert_eq!(notable(&arp), None);
        for n in 0..arp.len() {
            let _ = notable(&arp[..n]);
        }
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let mut f = vec![0u8; 60];
        f[12] = 8;
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 10]);
        f[34..36].copy_from_slice(&445u16.to_be_bytes());
        for n in 0..f.len() {
            let _ = (tcp(&f[..n]), dst_mac(&f[..n]), src_mac(&f[..n]));
        }
        let t = tcp(&f).unwrap();
        assert_eq!((t.src, t.src_port), (Ipv4Addr::new(198, 18, 0, 10), 445));
        f[14] = 0x41; // IHL 4: invalid
        assert_eq!(tcp(&f), None);
    }
}
