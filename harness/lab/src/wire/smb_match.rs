//! Following SMB2 over TCP on the wire, to find the messages a `message` fault acts on.
//!
//! A [`Stream`] follows one direction of one TCP connection by sequence number: each new
//! payload byte goes through the direct-TCP framing (a zero byte and a 24-bit length, MS-SMB2
//! 2.1), and the SMB2 header of each message (and of each element of a compound, found by
//! `NextCommand`) is reported once its 64 bytes have arrived, however the bytes were cut into
//! segments (up to 64 KiB with segmentation offload). Retransmitted bytes are not parsed
//! twice. A transform header (0xFD 'S' 'M' 'B': an encrypted session) is reported as such:
//! nothing inside can be matched.
//!
//! A stream first seen mid-connection (a fault armed after the connection was made)
//! synchronises on the first segment that starts with a frame header followed by an SMB2
//! protocol id, which is how senders write them (one message per send). A gap in the
//! sequence (bytes the wire never saw) loses sync the same way.
//!
//! Every accessor checks lengths: no input can make it panic (`tests` and the proptest).

/// The SMB2 protocol id, 0xFE 'S' 'M' 'B'.
pub const PROTOCOL_ID: [u8; 4] = [0xfe, b'S', b'M', b'B'];
/// The transform header of an encrypted message, 0xFD 'S' 'M' 'B'.
pub const TRANSFORM_ID: [u8; 4] = [0xfd, b'S', b'M', b'B'];
/// The compression transform header, 0xFC 'S' 'M' 'B'.
pub const COMPRESSION_ID: [u8; 4] = [0xfc, b'S', b'M', b'B'];
pub const HEADER_LEN: usize = 64;
/// SMB2_FLAGS_SERVER_TO_REDIR.
pub const FLAG_RESPONSE: u32 = 0x1;

/// The fields of an SMB2 sync or async header a fault matches on (MS-SMB2 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command: u16,
    pub status: u32,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
}

impl Header {
    /// The header at the start of `b`, if `b` holds a whole one with the SMB2 protocol id.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let b = b.get(..HEADER_LEN)?;
        if b.get(..4)? != PROTOCOL_ID {
            return None;
        }
        let u16le = |i: usize| Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?));
        let u32le = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let u64le = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
        Some(Header {
            status: u32le(8)?,
            command: u16le(12)?,
            flags: u32le(16)?,
            next_command: u32le(20)?,
            message_id: u64le(24)?,
        })
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }
}

/// What a stream saw in one segment's new bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// An SMB2 header (a message's, or a compound element's) complete in this segment.
    /// `frame_start` is the sequence number of its frame's first byte (the zero type byte),
    /// `frame_end` the one after its frame's last byte, `element` its index in the compound.
    Message {
        header: Header,
        frame_start: u32,
        frame_end: u32,
        element: u32,
    },
    /// A transform header: the session is encrypted (or compressed), nothing to match.
    Transformed,
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for a segment that starts at a message boundary.
    Unsynced,
    /// Reading a frame header (4 bytes) that began at `start`.
    FrameHeader { start: u32, have: [u8; 4], n: usize },
    /// Inside a frame of `len` bytes whose header began at `start`; `read` of them so far.
    /// The header of compound element `element` is at offset `next_at` of the message (None:
    /// the chain is done); `hdr` holds its first `hdr_have` bytes. Only header bytes are
    /// copied, never a message's data.
    Body {
        start: u32,
        len: u32,
        read: u32,
        hdr: [u8; HEADER_LEN],
        hdr_have: usize,
        next_at: Option<u32>,
        element: u32,
    },
}

/// One direction of one TCP connection, followed by sequence number.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The sequence number of the next new byte (None: no payload seen yet).
    next: Option<u32>,
    state: State,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            next: None,
            state: State::Unsynced,
        }
    }
}

/// Does `payload` start like a frame: zero type byte, a length, an SMB2 (or transform)
/// protocol id?
fn starts_frame(payload: &[u8]) -> bool {
    payload.first() == Some(&0)
        && payload
            .get(4..8)
            .is_some_and(|p| p == PROTOCOL_ID || p == TRANSFORM_ID || p == COMPRESSION_ID)
}

/// `a` is before `b` in sequence space.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Stream {
    /// A stream followed from its SYN (sequence number `syn`): in sync from its first byte.
    pub fn from_syn(syn: u32) -> Stream {
        let start = syn.wrapping_add(1);
        Stream {
            next: Some(start),
            state: State::FrameHeader {
                start,
                have: [0; 4],
                n: 0,
            },
        }
    }

    /// The sequence number after the last new byte seen.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// Feed one segment (sequence number of its first payload byte, and the payload); every
    /// header completed by its new bytes is pushed to `out`, in stream order.
    pub fn segment(&mut self, seq: u32, payload: &[u8], out: &mut Vec<Seen>) {
        if payload.is_empty() {
            return;
        }
        let end = seq.wrapping_add(payload.len() as u32);
        let mut seq = seq;
        let mut payload = payload;
        match self.next {
            Some(next) if !before(next, end) => return, // all retransmitted
            Some(next) if before(seq, next) => {
                // Partly retransmitted: only the new tail.
                let skip = next.wrapping_sub(seq) as usize;
                payload = payload.get(skip..).unwrap_or(&[]);
                seq = next;
            }
            Some(next) if seq != next => self.state = State::Unsynced, // a gap
            _ => {}
        }
        self.next = Some(end);
        if matches!(self.state, State::Unsynced) {
            if !starts_frame(payload) {
                return;
            }
            self.state = State::FrameHeader {
                start: seq,
                have: [0; 4],
                n: 0,
            };
        }
        let mut at = 0usize;
        while at < payload.len() {
            match &mut self.state {
                State::Unsynced => return,
                State::FrameHeader { start, have, n } => {
                    let take = (4 - *n).min(payload.len() - at);
                    have[*n..*n + take].copy_from_slice(&payload[at..at + take]);
                    *n += take;
                    at += take;
                    if *n == 4 {
                        if have[0] != 0 {
                            // Not direct-TCP framing (or lost track): wait for a boundary.
                            self.state = State::Unsynced;
                            return;
                        }
                        let len = u32::from_be_bytes(*have);
                        let start = *start;
                        self.state = if len == 0 {
                            State::FrameHeader {
                                start: seq.wrapping_add(at as u32),
                                have: [0; 4],
                                n: 0,
                            }
                        } else {
                            State::Body {
                                start,
                                len,
                                read: 0,
                                hdr: [0; HEADER_LEN],
                                hdr_have: 0,
                                next_at: Some(0),
                                element: 0,
                            }
                        };
                    }
                }
                State::Body {
                    start,
                    len,
                    read,
                    hdr,
                    hdr_have,
                    next_at,
                    element,
                } => {
                    let take = ((*len - *read) as usize).min(payload.len() - at);
                    let chunk = &payload[at..at + take];
                    // The message offsets this chunk covers.
                    let (from, to) = (*read as usize, *read as usize + take);
                    *read += take as u32;
                    at += take;
                    let frame_end = start.wrapping_add(4).wrapping_add(*len);
                    // Every header now complete, along the NextCommand chain.
                    while let Some(off) = *next_at {
                        let off = off as usize;
                        if off.saturating_add(HEADER_LEN) > *len as usize {
                            *next_at = None; // a chain pointing past the frame
                            break;
                        }
                        // Copy what this chunk has of the header's missing bytes.
                        let want = off + *hdr_have;
                        if want < from || want >= to {
                            break;
                        }
                        let n = (HEADER_LEN - *hdr_have).min(to - want);
                        hdr[*hdr_have..*hdr_have + n]
                            .copy_from_slice(&chunk[want - from..want - from + n]);
                        *hdr_have += n;
                        if *hdr_have < HEADER_LEN {
                            break;
                        }
                        *hdr_have = 0;
                        let h = &hdr[..];
                        if off == 0 && (h[..4] == TRANSFORM_ID || h[..4] == COMPRESSION_ID) {
                            out.push(Seen::Transformed);
                            *next_at = None;
                            break;
                        }
                        let Some(header) = Header::parse(h) else {
                            *next_at = None;
                            break;
                        };
                        out.push(Seen::Message {
                            header,
                            frame_start: *start,
                            frame_end,
                            element: *element,
                        });
                        *element += 1;
                        // NextCommand is 8-byte aligned and moves forward, or ends the chain.
                        *next_at = match header.next_command {
                            0 => None,
                            n if n < HEADER_LEN as u32 || !n.is_multiple_of(8) => None,
                            n => (off as u32).checked_add(n),
                        };
                    }
                    if *read == *len {
                        self.state = State::FrameHeader {
                            start: seq.wrapping_add(at as u32),
                            have: [0; 4],
                            n: 0,
                        };
                    }
                }
            }
        }
    }
}

/// SMB2 command codes (MS-SMB2 2.2.1.2), by the names a plan uses.
pub fn command_code(name: &str) -> Option<u16> {
    Some(match name {
        "negotiate" => 0x00,
        "session_setup" => 0x01,
        "logoff" => 0x02,
        "tree_connect" => 0x03,
        "tree_disconnect" => 0x04,
        "create" => 0x05,
        "close" => 0x06,
        "flush" => 0x07,
        "read" => 0x08,
        "write" => 0x09,
        "lock" => 0x0a,
        "ioctl" => 0x0b,
        "cancel" => 0x0c,
        "echo" => 0x0d,
        "query_directory" => 0x0e,
        "change_notify" => 0x0f,
        "query_info" => 0x10,
        "set_info" => 0x11,
        "oplock_break" => 0x12,
        _ => return None,
    })
}

pub fn command_name(code: u16) -> &'static str {
    const NAMES: [&str; 19] = [
        "NEGOTIATE",
        "SESSION_SETUP",
        "LOGOFF",
        "TREE_CONNECT",
        "TREE_DISCONNECT",
        "CREATE",
        "CLOSE",
        "FLUSH",
        "READ",
        "WRITE",
        "LOCK",
        "IOCTL",
        "CANCEL",
        "ECHO",
        "QUERY_DIRECTORY",
        "CHANGE_NOTIFY",
        "QUERY_INFO",
        "SET_INFO",
        "OPLOCK_BREAK",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan's command names (`message.command`) carry MS-SMB2's codes: each agrees with
    /// the SMB client's own table (the plan crate keeps its own enum: it has no SMB client).
    #[test]
    fn plan_command_codes_are_the_smb2_clients() {
        for code in 0u16..=18 {
            let name = format!("{:?}", smb2::wire::header::Command::from(code));
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_uppercase()).then_some('_');
                    sep.into_iter().chain(c.to_lowercase())
                })
                .collect();
            let planned: plan::Smb2Command = serde_json::from_value(snake.clone().into())
                .unwrap_or_else(|e| panic!("{snake} is not a plan command: {e}"));
            assert_eq!(planned.code(), code, "{snake}");
        }
    }

    /// A frame: the direct-TCP header, then each header (64 bytes, `NextCommand` chained)
    /// followed by `body` bytes of each element.
    pub(crate) fn frame(elements: &[(u16, u32, u64)], body: usize) -> Vec<u8> {
        let mut msg = Vec::new();
        for (i, (command, flags, mid)) in elements.iter().enumerate() {
            let mut h = vec![0u8; HEADER_LEN];
            h[..4].copy_from_slice(&PROTOCOL_ID);
            h[4..6].copy_from_slice(&64u16.to_le_bytes());
            h[12..14].copy_from_slice(&command.to_le_bytes());
            h[16..20].copy_from_slice(&flags.to_le_bytes());
            let elem = (HEADER_LEN + body).div_ceil(8) * 8;
            if i + 1 < elements.len() {
                h[20..24].copy_from_slice(&(elem as u32).to_le_bytes());
            }
            h[24..32].copy_from_slice(&mid.to_le_bytes());
            msg.extend_from_slice(&h);
            msg.resize(msg.len() + elem - HEADER_LEN, 0xab);
        }
        let mut f = (msg.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(&msg);
        f
    }

    fn feed(stream: &mut Stream, seq0: u32, bytes: &[u8], cuts: &[usize]) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain([bytes.len()].iter()) {
            let c = c.min(bytes.len()).max(from);
            stream.segment(seq0.wrapping_add(from as u32), &bytes[from..c], &mut out);
            from = c;
        }
        out
    }

    fn ids(seen: &[Seen]) -> Vec<(u16, u64)> {
        seen.iter()
            .filter_map(|s| match s {
                Seen::Message { header, .. } => Some((header.command, header.message_id)),
                Seen::Transformed => None,
            })
            .collect()
    }

    #[test]
    fn headers_split_across_segments_and_compounds_are_found_once() {
        let mut bytes = frame(&[(9, 0, 7)], 5000);
        bytes.extend(frame(&[(5, 0, 8), (0x10, 0, 9), (6, 0, 10)], 100));
        bytes.extend(frame(&[(9, 1, 7)], 16));
        let want = vec![(9, 7), (5, 8), (0x10, 9), (6, 10), (9, 7)];
        // Whole, byte by byte, and cut in the middle of frame and SMB2 headers.
        for cuts in [
            vec![],
            (1..bytes.len()).collect::<Vec<_>>(),
            vec![2, 30, 5003, 5070, 5100],
        ] {
            let mut s = Stream::from_syn(0xffff_ffef);
            assert_eq!(ids(&feed(&mut s, 0xffff_fff0, &bytes, &cuts)), want);
        }
        // Retransmissions parse nothing twice.
        let mut s = Stream::default();
        let mut out = feed(&mut s, 100, &bytes[..5100], &[]);
        out.extend(feed(&mut s, 100, &bytes, &[]));
        assert_eq!(ids(&out), want);
    }

    #[test]
    fn frame_bounds_and_resynchronisation() {
        let a = frame(&[(9, 0, 1)], 10);
        let b = frame(&[(8, 0, 2)], 10);
        let mut s = Stream::default();
        let mut out = Vec::new();
        // Mid-message first: ignored until a segment starts at a boundary.
        s.segment(1000, &a[10..], &mut out);
        assert!(out.is_empty());
        s.segment(1000 + (a.len() - 10) as u32, &b, &mut out);
        assert_eq!(ids(&out), vec![(8, 2)]);
        match out[0] {
            Seen::Message {
                frame_start,
                frame_end,
                ..
            } => {
                assert_eq!(frame_start, 1000 + (a.len() - 10) as u32);
                assert_eq!(frame_end, frame_start + b.len() as u32);
            }
            _ => panic!(),
        }
        // A gap loses sync until the next boundary.
        out.clear();
        s.segment(50_000, &a[3..], &mut out);
        s.segment(50_000 + (a.len() - 3) as u32, &b, &mut out);
        assert_eq!(ids(&out), vec![(8, 2)]);
    }

    #[test]
    fn an_encrypted_message_is_reported_not_matched() {
        let mut f = frame(&[(9, 0, 1)], 40);
        f[4..8].copy_from_slice(&TRANSFORM_ID);
        let mut s = Stream::default();
        let mut out = Vec::new();
        s.segment(1, &f, &mut out);
        assert_eq!(out, vec![Seen::Transformed]);
    }

    /// Fuzz-style, seeded: any bytes, cut anywhere, at any sequence numbers (gaps, overlaps,
    /// wrap-around), after a valid prefix or not: no panic. And a valid stream cut anywhere
    /// gives the same headers as whole.
    #[test]
    fn never_panics_and_any_cut_finds_the_same_headers() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut valid = frame(&[(9, 0, 7)], 700);
        valid.extend(frame(&[(5, 0, 8), (0x10, 0, 9), (6, 0, 10)], 50));
        valid.extend(frame(&[(0x12, 1, u64::MAX)], 20));
        let want = vec![(9, 7), (5, 8), (0x10, 9), (6, 10), (0x12, u64::MAX)];
        for round in 0..4_000 {
            let mut s = Stream::default();
            let mut out = Vec::new();
            if round % 2 == 0 {
                s.segment(0, &frame(&[(5, 0, 1), (6, 0, 2)], 3), &mut out);
            }
            for _ in 0..rng.random_range(0..12) {
                let n = rng.random_range(0..300);
                let mut bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                // Often a plausible frame start, so the parser gets past the framing.
                if n >= 8 && rng.random_bool(0.5) {
                    bytes[0] = 0;
                    bytes[4..8].copy_from_slice(&PROTOCOL_ID);
                }
                let seq = if rng.random_bool(0.5) {
                    s.next_seq()
                        .unwrap_or(0)
                        .wrapping_add(rng.random_range(0..3))
                } else {
                    rng.random()
                };
                s.segment(seq, &bytes, &mut out);
                let _ = Header::parse(&bytes);
            }
            let mut cuts: Vec<usize> = (0..rng.random_range(0..20))
                .map(|_| rng.random_range(0..valid.len()))
                .collect();
            cuts.sort();
            let seq0: u32 = rng.random();
            let mut s = Stream::from_syn(seq0.wrapping_sub(1));
            assert_eq!(
                ids(&feed(&mut s, seq0, &valid, &cuts)),
                want,
                "cuts {cuts:?}"
            );
        }
    }
}
