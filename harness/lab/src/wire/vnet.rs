//! The virtio-net header the lab's TAPs put before every frame (`IFF_VNET_HDR`), and the work
//! it makes possible: with segmentation offload on, a node's kernel hands the wire one large
//! TCP segment (up to 64 KiB, "GSO") where it would have sent many frames of the lab's MTU,
//! with its TCP checksum left for the "device" to finish. The wire forwards such a segment
//! whole, header and all, to the receiving TAP (its kernel takes it as veth would); only a
//! path with per-frame faults splits it here into the MTU frames the sender would have sent,
//! each with its own sequence number, IP id and correct checksums (software GSO).
//!
//! Every function checks lengths: no input can make it panic.

/// `struct virtio_net_hdr` without `num_buffers`: what TUN reads and writes by default.
pub const HDR_LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_ECN: u8 = 0x80;

const ETH_LEN: usize = 14;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// A parsed virtio-net header (little-endian: the TAP is set so, see tap.rs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; HDR_LEN] = b.get(..HDR_LEN)?.try_into().ok()?;
        let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16le(2),
            gso_size: u16le(4),
            csum_start: u16le(6),
            csum_offset: u16le(8),
        })
    }

    /// The checksum at `csum_start + csum_offset` is only the pseudo-header's: the sum over
    /// the bytes from `csum_start` on is still to be added.
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// A segmentation-offload segment: one read that stands for several frames.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

/// The header of a plain frame: nothing to finish, nothing to split.
pub const PLAIN: [u8; HDR_LEN] = [0; HDR_LEN];

/// The Internet checksum's ones'-complement sum of `data` (odd length padded with a zero
/// byte), added to `initial`, folded to 16 bits, not inverted.
pub fn sum(data: &[u8], initial: u32) -> u16 {
    let mut acc = u64::from(initial);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Where the finished checksum of a `needs_csum` frame goes and its value: what a NIC would
/// have written. None when the frame needs none or its offsets do not fit it.
pub fn finished_checksum(hdr: &VnetHdr, frame: &[u8]) -> Option<(usize, [u8; 2])> {
    if !hdr.needs_csum() {
        return None;
    }
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    frame.get(at..at + 2)?;
    Some((at, (!sum(frame.get(start..)?, 0)).to_be_bytes()))
}

/// The IPv4/TCP layout of a frame: where the IP header, the TCP header and the payload start.
struct Layout {
    ip: usize,
    tcp: usize,
    payload: usize,
}

fn tcpv4_layout(frame: &[u8]) -> Option<Layout> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(frame.get(ETH_LEN)? & 0x0f) * 4;
    if ihl < 20 || *frame.get(ETH_LEN + 9)? != 6 {
        return None;
    }
    let tcp = ETH_LEN + ihl;
    let doff = usize::from(frame.get(tcp + 12)? >> 4) * 4;
    if doff < 20 || frame.len() < tcp + doff {
        return None;
    }
    Some(Layout {
        ip: ETH_LEN,
        tcp,
        payload: tcp + doff,
    })
}

/// How many frames of the sender's MTU a read stands for, and their bytes on a real wire
/// (every frame with its own headers): what the link counters count.
pub fn wire_size(hdr: &VnetHdr, frame: &[u8]) -> (u64, u64) {
    let len = frame.len() as u64;
    if !hdr.is_gso() || hdr.gso_size == 0 {
        return (1, len);
    }
    let Some(l) = tcpv4_layout(frame) else {
        return (1, len);
    };
    let payload = (frame.len() - l.payload) as u64;
    let segs = payload.div_ceil(u64::from(hdr.gso_size)).max(1);
    (segs, len + (segs - 1) * l.payload as u64)
}

/// A read as the plain frames a NIC would have put on the wire, every checksum finished:
/// a GSO segment split at `gso_size` (sequence numbers advanced, IP ids counted up, FIN and
/// PSH on the last frame only, CWR on the first only), a lone frame with its checksum done.
/// None for what cannot be split (a GSO type the TAPs are not set to offer, or a frame too
/// short for its own headers).
pub fn segment(hdr: &VnetHdr, frame: &[u8]) -> Option<Vec<Vec<u8>>> {
    let empty = tcpv4_layout(frame).is_some_and(|l| l.payload == frame.len());
    if !hdr.is_gso() || empty {
        let mut f = frame.to_vec();
        if let Some((at, csum)) = finished_checksum(hdr, frame) {
            f[at..at + 2].copy_from_slice(&csum);
        }
        return Some(vec![f]);
    }
    if hdr.gso_type & !GSO_ECN != GSO_TCPV4 || hdr.gso_size == 0 {
        return None;
    }
    let l = tcpv4_layout(frame)?;
    let headers = &frame[..l.payload];
    let payload = &frame[l.payload..];
    let id0 = u16::from_be_bytes([frame[l.ip + 4], frame[l.ip + 5]]);
    let seq0 = u32::from_be_bytes(frame[l.tcp + 4..l.tcp + 8].try_into().ok()?);
    let flags0 = frame[l.tcp + 13];
    let chunks: Vec<&[u8]> = payload.chunks(usize::from(hdr.gso_size)).collect();
    let last = chunks.len().saturating_sub(1);
    let mut out = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let mut f = Vec::with_capacity(headers.len() + chunk.len());
        f.extend_from_slice(headers);
        f.extend_from_slice(chunk);
        let ip_len = (f.len() - l.ip) as u16;
        f[l.ip + 2..l.ip + 4].copy_from_slice(&ip_len.to_be_bytes());
        f[l.ip + 4..l.ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        f[l.ip + 10..l.ip + 12].fill(0);
        let ip_csum = !sum(&f[l.ip..l.tcp], 0);
        f[l.ip + 10..l.ip + 12].copy_from_slice(&ip_csum.to_be_bytes());
        let seq = seq0.wrapping_add((i * usize::from(hdr.gso_size)) as u32);
        f[l.tcp + 4..l.tcp + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i != last {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i != 0 {
            flags &= !TCP_CWR;
        }
        f[l.tcp + 13] = flags;
        f[l.tcp + 16..l.tcp + 18].fill(0);
        let tcp_len = (f.len() - l.tcp) as u32;
        let pseudo = sum(&f[l.ip + 12..l.ip + 20], 6 + tcp_len);
        let tcp_csum = !sum(&f[l.tcp..], u32::from(pseudo));
        f[l.tcp + 16..l.tcp + 18].copy_from_slice(&tcp_csum.to_be_bytes());
        out.push(f);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame 198.18.0.10:445 -> 198.18.0.11:50000 with `payload`, its
    /// checksums finished.
    fn frame(payload: &[u8], seq: u32, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[12] = 8;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&((40 + payload.len()) as u16).to_be_bytes());
        f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
        f[20] = 0x40; // DF
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 10]);
        f[30..34].copy_from_slice(&[198, 18, 0, 11]);
        f[34..36].copy_from_slice(&445u16.to_be_bytes());
        f[36..38].copy_from_slice(&50000u16.to_be_bytes());
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f[46] = 5 << 4;
        f[47] = flags;
        f[48..50].copy_from_slice(&64240u16.to_be_bytes());
        f.extend_from_slice(payload);
        let ip = !sum(&f[14..34], 0);
        f[24..26].copy_from_slice(&ip.to_be_bytes());
        let pseudo = sum(&f[26..34], 6 + (20 + payload.len()) as u32);
        let tcp = !sum(&f[34..], u32::from(pseudo));
        f[50..52].copy_from_slice(&tcp.to_be_bytes());
        f
    }

    /// `f` as the sender's kernel hands it over with checksum offload: the TCP checksum
    /// holds only the pseudo-header's sum.
    fn partial(mut f: Vec<u8>) -> (VnetHdr, Vec<u8>) {
        let tcp_len = (f.len() - 34) as u32;
        let pseudo = sum(&f[26..34], 6 + tcp_len);
        f[50..52].copy_from_slice(&pseudo.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        (hdr, f)
    }

    fn valid(f: &[u8]) -> bool {
        let tcp_len = (f.len() - 34) as u32;
        sum(&f[14..34], 0) == 0xffff
            && sum(&f[34..], u32::from(sum(&f[26..34], 6 + tcp_len))) == 0xffff
    }

    #[test]
    fn header_round_trip_and_short_input() {
        let b = [1, 1, 54, 0, 0xf4, 0x22, 34, 0, 16, 0];
        let h = VnetHdr::parse(&b).unwrap();
        assert!(h.needs_csum() && h.is_gso());
        assert_eq!(
            (h.hdr_len, h.gso_size, h.csum_start, h.csum_offset),
            (54, 8948, 34, 16)
        );
        for n in 0..HDR_LEN {
            assert_eq!(VnetHdr::parse(&b[..n]), None);
        }
    }

    #[test]
    fn finishing_a_partial_checksum_gives_the_full_one() {
        let full = frame(b"hello, world!", 7, 0x18);
        assert!(valid(&full));
        let (hdr, f) = partial(full.clone());
        assert!(!valid(&f));
        let (at, csum) = finished_checksum(&hdr, &f).unwrap();
        assert_eq!(at, 50);
        assert_eq!(csum, [full[50], full[51]]);
        assert_eq!(segment(&hdr, &f).unwrap(), vec![full]);
    }

    #[test]
    fn a_gso_segment_splits_into_the_frames_the_sender_would_have_sent() {
        let payload: Vec<u8> = (0..25_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let seq0 = 0xffff_f000; // wraps
        let (mut hdr, big) = partial(frame(&payload, seq0, 0x18 | TCP_CWR | TCP_FIN));
        hdr.gso_type = GSO_TCPV4;
        hdr.gso_size = 8948;
        let frames = segment(&hdr, &big).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(wire_size(&hdr, &big), (3, 25_000 + 3 * 54));
        let mut off = 0;
        for (i, f) in frames.iter().enumerate() {
            let n = if i < 2 { 8948 } else { 25_000 - 2 * 8948 };
            let expect_flags = match i {
                0 => 0x10 | TCP_CWR,
                1 => 0x10,
                _ => 0x18 | TCP_FIN,
            };
            let want = frame(
                &payload[off..off + n],
                seq0.wrapping_add(off as u32),
                expect_flags,
            );
            let mut want = want;
            want[18..20].copy_from_slice(&(0x1234 + i as u16).to_be_bytes());
            want[24..26].fill(0);
            let ip = !sum(&want[14..34], 0);
            want[24..26].copy_from_slice(&ip.to_be_bytes());
            assert!(valid(f), "frame {i}");
            assert_eq!(f, &want, "frame {i}");
            off += n;
        }
    }

    #[test]
    fn odd_lengths_sum_like_a_zero_padded_buffer() {
        assert_eq!(sum(&[0x12, 0x34, 0x56], 0), sum(&[0x12, 0x34, 0x56, 0], 0));
        assert_eq!(sum(&[0xff, 0xff, 0xff, 0xff, 0, 1], 0), 1);
    }

    #[test]
    fn no_panic_on_any_prefix_or_bad_offsets() {
        let payload = vec![9u8; 3000];
        let (mut hdr, big) = partial(frame(&payload, 1, 0x10));
        hdr.gso_type = GSO_TCPV4;
        hdr.gso_size = 1000;
        for n in 0..big.len() {
            let _ = (segment(&hdr, &big[..n]), wire_size(&hdr, &big[..n]));
            let _ = finished_checksum(&hdr, &big[..n]);
        }
        hdr.csum_start = u16::MAX;
        assert_eq!(finished_checksum(&hdr, &big), None);
        hdr.gso_type = 4; // UDP: not offered, not split
        assert_eq!(segment(&hdr, &big), None);
    }
}
