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

#[cfg(test)]
mod tests {
    use super::*;

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
