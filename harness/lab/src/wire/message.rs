//! SMB-aware faults: act on the Nth SMB2 message matching a command (and, for a response,
//! a status) sent one way over a path — hold it and everything after it on its connection,
//! delay it so, drop it, or reset the connection right after it.
//!
//! The messages are found by following each TCP connection's stream (smb_match.rs). A
//! fault fires once; what it does afterwards stays within TCP's rules:
//! - `hold` / `delay`: the segment that completes the message's header and every later
//!   segment of that connection direction (retransmissions and pure ACKs included) are
//!   queued, then delivered in order at the heal (or dropped, `release: drop`) or after the
//!   delay. Holding one segment alone would only hand the receiver later data out of order.
//! - `drop`: the message's frame type byte becomes 0x85 (a NetBIOS session keep-alive of the
//!   same length), in the segment and in any retransmission of it. The receiver's TCP
//!   acknowledges every byte, and the receiver skips the frame: smbd ignores non-zero frame
//!   types (smb2_server.c, "ignore NBT[0x85] msg"), so does smbchaos's client. Reachable, but
//!   silent: the message is gone without any TCP symptom. The frame's first byte must be in
//!   the segment that completes its header (it is, unless a sender split the first 68 bytes
//!   of a message); otherwise the drop is recorded as missed.
//! - `reset`: once the segment holding the message's last byte has been delivered, the wire
//!   sends an RST each way with the sequence number each end expects (RFC 5961: accepted,
//!   not challenged).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::frame::{self, Segment};
use super::hold::{Held, HoldQueue, HoldStats};
use super::smb_match::{command_name, Header, Seen, Stream};
use super::vnet;

/// What a fired rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAction {
    Hold,
    Delay(Duration),
    Drop,
    Reset,
}

/// Which messages a rule acts on, and what it does to the Nth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRule {
    /// Ports the message is sent from, and to.
    pub from: Vec<usize>,
    pub to: Vec<usize>,
    /// The server's TCP port (445).
    pub server_port: u16,
    /// Requests (to the server) or responses (from it).
    pub responses: bool,
    pub command: u16,
    /// Responses only: this NTSTATUS.
    pub status: Option<u32>,
    /// The Nth matching message since the rule was armed (1-based).
    pub nth: u32,
    pub action: MessageAction,
}

/// The message a rule fired on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub at: Instant,
    /// `src:port -> dst:port`.
    pub connection: String,
    pub command: u16,
    pub message_id: u64,
    pub status: u32,
    pub response: bool,
    /// Its index in a compound (0: the first or only).
    pub element: u32,
}

/// What a rule did, for the fault's effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageReport {
    pub armed_at: Option<Instant>,
    pub matched: Option<Matched>,
    /// Matching messages seen (up to the Nth), and the N.
    pub seen: u32,
    pub nth: u32,
    /// Connections followed.
    pub connections: usize,
    /// An encrypted (transform header) message went by on a followed path: nothing in it
    /// could be matched.
    pub encrypted: bool,
    pub held: HoldStats,
    pub released_at: Option<Instant>,
    /// Held frames thrown away at the release (`release: drop`).
    pub discarded: bool,
    /// Segments rewritten by a drop (the first and any retransmission).
    pub rewritten: u64,
    /// A drop that could not act (the frame's first byte had already gone by).
    pub missed: Option<String>,
    pub reset_at: Option<Instant>,
}

impl MessageReport {
    /// One line per thing done, times relative to when the rule was armed.
    pub fn lines(&self) -> Vec<String> {
        let rel = |t: Option<Instant>| match (t, self.armed_at) {
            (Some(t), Some(a)) => format!("+{:.3}s", t.saturating_duration_since(a).as_secs_f64()),
            _ => "?".into(),
        };
        let mut out = Vec::new();
        if self.encrypted {
            out.push(
                "an encrypted message went by: nothing in an encrypted session can be matched"
                    .into(),
            );
        }
        let Some(m) = &self.matched else {
            return out;
        };
        out.push(format!(
            "{} {} MessageId {}{}{} on {} matched at {}",
            command_name(m.command),
            match (m.response, m.message_id) {
                (true, u64::MAX) => "notification",
                (true, _) => "response",
                _ => "request",
            },
            m.message_id,
            if m.response {
                format!(" status 0x{:08x}", m.status)
            } else {
                String::new()
            },
            if m.element > 0 {
                format!(", compound element {}", m.element)
            } else {
                String::new()
            },
            m.connection,
            rel(Some(m.at)),
        ));
        if self.held.frames > 0 {
            out.push(format!(
                "held {} frame(s), {} bytes, from {} until {}{}",
                self.held.frames,
                self.held.bytes,
                rel(self.held.first),
                rel(self.released_at),
                if self.discarded {
                    ", then dropped"
                } else {
                    ", then released in order"
                }
            ));
        }
        if self.rewritten > 0 {
            out.push(format!(
                "dropped: frame type set to 0x85 (keep-alive) in {} segment(s)",
                self.rewritten
            ));
        }
        if let Some(why) = &self.missed {
            out.push(format!("not dropped: {why}"));
        }
        if self.reset_at.is_some() {
            out.push(format!(
                "connection reset both ways at {}",
                rel(self.reset_at)
            ));
        }
        out
    }

    /// Did the rule act at all?
    pub fn acted(&self) -> bool {
        self.held.frames > 0 || self.rewritten > 0 || self.reset_at.is_some()
    }
}

type Flow = (Ipv4Addr, u16, Ipv4Addr, u16);

#[derive(Debug)]
enum Fired {
    /// Queueing every segment of `flow` (hold; delay until `until`).
    Holding {
        until: Option<Instant>,
    },
    /// Delay over: everything passes.
    Released,
    /// Rewrite every segment covering sequence number `at` (the frame's type byte).
    Dropping {
        at: u32,
    },
    /// Reset once a segment reaching `end` (the frame's end) has been delivered.
    ResetAt {
        end: u32,
    },
    Done,
}

/// One armed rule and what it has seen.
#[derive(Debug)]
pub struct RuleState {
    pub rule: MessageRule,
    streams: HashMap<Flow, Stream>,
    fired: Option<(Flow, Fired)>,
    queue: HoldQueue,
    report: MessageReport,
}

/// What happens to one read on a rule's path.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    Pass,
    /// Queued by the rule.
    Held,
    /// Forward these bytes (virtio-net header and frame) instead.
    Rewritten(Vec<u8>),
    /// Forward it, then these frames (plain, checksums done) to (port, frame).
    PassThenReset(Vec<(usize, Vec<u8>)>),
}

impl RuleState {
    pub fn new(rule: MessageRule, now: Instant) -> RuleState {
        RuleState {
            rule,
            streams: HashMap::new(),
            fired: None,
            queue: HoldQueue::default(),
            report: MessageReport {
                armed_at: Some(now),
                ..MessageReport::default()
            },
        }
    }

    pub fn applies(&self, src: usize, dst: usize) -> bool {
        self.rule.from.contains(&src) && self.rule.to.contains(&dst)
    }

    /// A delayed rule whose time has come: its queue, to deliver now (and it lets
    /// everything pass from here on).
    pub fn due(&mut self, now: Instant) -> Vec<Held> {
        match self.wake_at() {
            Some(t) if t <= now => {
                if let Some((_, f)) = &mut self.fired {
                    *f = Fired::Released;
                }
                self.report.released_at = Some(now);
                self.queue.take()
            }
            _ => Vec::new(),
        }
    }

    /// Disarm: the queue (delivered by the caller unless `discard`) and the report.
    pub fn finish(mut self, now: Instant, discard: bool) -> (Vec<Held>, MessageReport) {
        let held = self.queue.take();
        if matches!(self.fired, Some((_, Fired::Holding { .. }))) {
            self.report.released_at = Some(now);
            self.report.discarded = discard;
        }
        self.report.held = self.queue.stats();
        self.report.nth = self.rule.nth;
        self.report.connections = self.streams.len();
        (if discard { Vec::new() } else { held }, self.report)
    }

    /// One read (virtio-net header and frame) from port `src` to port `dst`; `size` is what
    /// it stands for (MTU frames, bytes).
    pub fn process(
        &mut self,
        now: Instant,
        src: usize,
        dst: usize,
        bytes: &[u8],
        size: (u64, u64),
    ) -> Fate {
        let Some(frame) = bytes.get(vnet::HDR_LEN..) else {
            return Fate::Pass;
        };
        let Some(seg) = frame::segment(frame) else {
            return Fate::Pass;
        };
        let t = seg.tcp;
        let port_ok = if self.rule.responses {
            t.src_port == self.rule.server_port
        } else {
            t.dst_port == self.rule.server_port
        };
        if !port_ok {
            return Fate::Pass;
        }
        let flow = (t.src, t.src_port, t.dst, t.dst_port);
        let payload = frame
            .get(seg.payload_at..seg.payload_at + seg.payload_len)
            .unwrap_or(&[]);
        let seg_end = seg.seq.wrapping_add(payload.len() as u32);
        if let Some((fired_flow, fired)) = &mut self.fired {
            if *fired_flow != flow {
                return Fate::Pass;
            }
            return match fired {
                Fired::Holding { .. } => {
                    self.queue.push(Held {
                        dst,
                        bytes: bytes.to_vec(),
                        size,
                    });
                    Fate::Held
                }
                Fired::Dropping { at } => match rewrite(bytes, &seg, *at) {
                    Some(b) => {
                        self.report.rewritten += 1;
                        Fate::Rewritten(b)
                    }
                    None => Fate::Pass,
                },
                Fired::ResetAt { end } if !before(seg_end, *end) => {
                    let rsts = resets(src, dst, frame, &seg, seg_end);
                    *fired = Fired::Done;
                    self.report.reset_at = Some(now);
                    Fate::PassThenReset(rsts)
                }
                _ => Fate::Pass,
            };
        }
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        if t.flags & SYN != 0 {
            self.streams.insert(flow, Stream::from_syn(seg.seq));
            return Fate::Pass;
        }
        if t.flags & RST != 0 {
            self.streams.remove(&flow);
            return Fate::Pass;
        }
        let mut seen = Vec::new();
        self.streams
            .entry(flow)
            .or_default()
            .segment(seg.seq, payload, &mut seen);
        for s in seen {
            let (header, frame_start, frame_end, element) = match s {
                Seen::Transformed => {
                    self.report.encrypted = true;
                    continue;
                }
                Seen::Message {
                    header,
                    frame_start,
                    frame_end,
                    element,
                } => (header, frame_start, frame_end, element),
            };
            if !self.matches(&header) {
                continue;
            }
            self.report.seen += 1;
            if self.report.seen < self.rule.nth {
                continue;
            }
            self.report.matched = Some(Matched {
                at: now,
                connection: format!("{}:{} -> {}:{}", t.src, t.src_port, t.dst, t.dst_port),
                command: header.command,
                message_id: header.message_id,
                status: header.status,
                response: header.is_response(),
                element,
            });
            // Nothing else is followed once the rule has fired.
            self.streams.retain(|f, _| *f == flow);
            return match self.rule.action {
                MessageAction::Hold | MessageAction::Delay(_) => {
                    let until = match self.rule.action {
                        MessageAction::Delay(d) => Some(now + d),
                        _ => None,
                    };
                    self.fired = Some((flow, Fired::Holding { until }));
                    self.queue.push(Held {
                        dst,
                        bytes: bytes.to_vec(),
                        size,
                    });
                    Fate::Held
                }
                MessageAction::Drop => match rewrite(bytes, &seg, frame_start) {
                    Some(b) => {
                        self.fired = Some((flow, Fired::Dropping { at: frame_start }));
                        self.report.rewritten += 1;
                        Fate::Rewritten(b)
                    }
                    None => {
                        self.report.missed =
                            Some("the frame's first byte went by in an earlier segment".into());
                        self.fired = Some((flow, Fired::Done));
                        Fate::Pass
                    }
                },
                MessageAction::Reset if !before(seg_end, frame_end) => {
                    self.fired = Some((flow, Fired::Done));
                    self.report.reset_at = Some(now);
                    Fate::PassThenReset(resets(src, dst, frame, &seg, seg_end))
                }
                MessageAction::Reset => {
                    self.fired = Some((flow, Fired::ResetAt { end: frame_end }));
                    Fate::Pass
                }
            };
        }
        Fate::Pass
    }

    fn matches(&self, h: &Header) -> bool {
        h.command == self.rule.command
            && h.is_response() == self.rule.responses
            && self.rule.status.is_none_or(|s| s == h.status)
    }

    /// Has the rule fired (so frames it queued may still be released)?
    pub fn fired(&self) -> bool {
        self.fired.is_some()
    }

    /// When a delayed rule wants to be woken.
    pub fn wake_at(&self) -> Option<Instant> {
        match &self.fired {
            Some((_, Fired::Holding { until })) => *until,
            _ => None,
        }
    }
}

fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The read with the frame type byte at sequence number `at` set to 0x85 (keep-alive), its
/// TCP checksum adjusted (RFC 1624) unless the sender left it to the device; None when the
/// segment does not hold that byte.
fn rewrite(bytes: &[u8], seg: &Segment, at: u32) -> Option<Vec<u8>> {
    let off = at.wrapping_sub(seg.seq) as usize;
    if off >= seg.payload_len {
        return None;
    }
    let hdr = vnet::VnetHdr::parse(bytes)?;
    let mut out = bytes.to_vec();
    let pos = vnet::HDR_LEN + seg.payload_at + off;
    let old = *out.get(pos)?;
    out[pos] = 0x85;
    if !hdr.needs_csum() {
        let csum_at = vnet::HDR_LEN + seg.tcp_at + 16;
        let hc = u16::from_be_bytes([*out.get(csum_at)?, *out.get(csum_at + 1)?]);
        // The changed byte's 16-bit word, counted from the TCP header (even offsets are
        // high bytes; the pseudo-header is 12 bytes, so parity is the same).
        let high = (seg.payload_at + off - seg.tcp_at).is_multiple_of(2);
        let word = |b: u8| {
            if high {
                u16::from(b) << 8
            } else {
                u16::from(b)
            }
        };
        let sum = u32::from(!hc) + u32::from(!word(old)) + u32::from(word(0x85));
        let folded = vnet::sum(&[], sum);
        out[csum_at..csum_at + 2].copy_from_slice(&(!folded).to_be_bytes());
    }
    Some(out)
}

/// An RST each way for the connection `seg` belongs to: to the receiver (`dst`) with the
/// sequence number after this segment, to the sender (`src`) with the one it acknowledged.
fn resets(
    src: usize,
    dst: usize,
    frame: &[u8],
    seg: &Segment,
    seg_end: u32,
) -> Vec<(usize, Vec<u8>)> {
    let (Some(smac), Some(dmac)) = (frame::src_mac(frame), frame::dst_mac(frame)) else {
        return Vec::new();
    };
    let t = seg.tcp;
    vec![
        (
            dst,
            rst(
                smac,
                dmac,
                (t.src, t.src_port),
                (t.dst, t.dst_port),
                seg_end,
            ),
        ),
        (
            src,
            rst(
                dmac,
                smac,
                (t.dst, t.dst_port),
                (t.src, t.src_port),
                seg.ack,
            ),
        ),
    ]
}

/// An Ethernet/IPv4/TCP RST with both checksums done.
pub fn rst(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let c = !vnet::sum(ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x04; // RST
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.0.octets());
    pseudo.extend_from_slice(&dst.0.octets());
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    let init = u32::from(vnet::sum(&pseudo, 0));
    let c = !vnet::sum(&f[34..54], init);
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::smb_match::PROTOCOL_ID;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

    /// A plain read (virtio-net header, frame) of a TCP segment with `payload`, checksums right.
    fn read(from_server: bool, sport: u16, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let (s, d) = if from_server {
            ((SERVER, 445), (CLIENT, sport))
        } else {
            ((CLIENT, sport), (SERVER, 445))
        };
        let mut f = rst([2; 6], [4; 6], s, d, seq);
        f[47] = 0x18; // PSH ACK
        f[42..46].copy_from_slice(&ack.to_be_bytes());
        f.extend_from_slice(payload);
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let c = !vnet::sum(&f[14..34], 0);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[50..52].copy_from_slice(&[0, 0]);
        let c = tcp_sum(&f);
        f[50..52].copy_from_slice(&c.to_be_bytes());
        let mut out = vnet::PLAIN.to_vec();
        out.extend_from_slice(&f);
        out
    }

    fn tcp_sum(f: &[u8]) -> u16 {
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&f[26..34]);
        pseudo.extend_from_slice(&[0, 6]);
        pseudo.extend_from_slice(&((f.len() - 34) as u16).to_be_bytes());
        !vnet::sum(&f[34..], u32::from(vnet::sum(&pseudo, 0)))
    }

    fn message(command: u16, response: bool, status: u32, mid: u64, body: usize) -> Vec<u8> {
        let mut h = vec![0u8; 64 + body];
        h[..4].copy_from_slice(&PROTOCOL_ID);
        h[8..12].copy_from_slice(&status.to_le_bytes());
        h[12..14].copy_from_slice(&command.to_le_bytes());
        h[16] = u8::from(response);
        h[24..32].copy_from_slice(&mid.to_le_bytes());
        let mut f = (h.len() as u32).to_be_bytes().to_vec();
        f.extend(h);
        f
    }

    fn rule(action: MessageAction, nth: u32) -> MessageRule {
        MessageRule {
            from: vec![0],
            to: vec![1],
            server_port: 445,
            responses: true,
            command: 9,
            status: Some(0),
            nth,
            action,
        }
    }

    #[test]
    fn hold_queues_the_nth_match_and_everything_after_it_on_its_connection() {
        let now = Instant::now();
        let mut r = RuleState::new(rule(MessageAction::Hold, 2), now);
        let w1 = message(9, true, 0, 5, 10);
        let w2 = message(9, true, 0, 6, 10);
        let other = message(9, true, 0, 1, 10);
        let mut seq = 1000;
        let mut go = |r: &mut RuleState, sport, payload: &[u8]| {
            let b = read(true, sport, seq, 77, payload);
            seq += payload.len() as u32;
            r.process(now, 0, 1, &b, (1, b.len() as u64))
        };
        assert_eq!(go(&mut r, 40000, &w1), Fate::Pass);
        // A failing status does not count.
        assert_eq!(
            go(&mut r, 40000, &message(9, true, 0xc000_0022, 9, 0)),
            Fate::Pass
        );
        assert_eq!(go(&mut r, 40000, &w2), Fate::Held);
        assert_eq!(go(&mut r, 40000, &[]), Fate::Held); // a pure ACK after it: held too
        assert_eq!(go(&mut r, 40001, &other), Fate::Pass); // another connection
        let (held, report) = r.finish(now + Duration::from_secs(1), false);
        assert_eq!(held.len(), 2);
        assert_eq!(report.matched.as_ref().unwrap().message_id, 6);
        assert!(report.acted() && report.held.frames == 2 && !report.discarded);
        assert!(
            report.lines()[0].starts_with("WRITE response MessageId 6"),
            "{:?}",
            report.lines()
        );
    }

    #[test]
    fn delay_releases_when_due() {
        let now = Instant::now();
        let mut r = RuleState::new(
            rule(MessageAction::Delay(Duration::from_millis(50)), 1),
            now,
        );
        let b = read(true, 40000, 1, 1, &message(9, true, 0, 3, 0));
        assert_eq!(r.process(now, 0, 1, &b, (1, 1)), Fate::Held);
        assert!(r.due(now).is_empty());
        let at = r.wake_at().unwrap();
        assert_eq!(r.due(at).len(), 1);
        let b2 = read(true, 40000, 69, 1, &message(9, true, 0, 4, 0));
        assert_eq!(r.process(at, 0, 1, &b2, (1, 1)), Fate::Pass);
    }

    #[test]
    fn drop_rewrites_the_frame_type_with_a_right_checksum_and_retransmissions_too() {
        let now = Instant::now();
        let mut r = RuleState::new(rule(MessageAction::Drop, 1), now);
        // Two messages in one segment; the second is the one.
        let mut p = message(8, true, 0, 2, 3);
        let at = p.len();
        p.extend(message(9, true, 0, 3, 5));
        let b = read(true, 40000, 500, 1, &p);
        let Fate::Rewritten(out) = r.process(now, 0, 1, &b, (1, 1)) else {
            panic!("not rewritten");
        };
        let f = &out[vnet::HDR_LEN..];
        assert_eq!(f[54 + at], 0x85);
        assert_eq!(&f[54..54 + at], &p[..at]);
        assert_eq!(
            tcp_sum(f),
            0,
            "checksum over the rewritten segment must verify"
        );
        let Fate::Rewritten(again) = r.process(now, 0, 1, &b, (1, 1)) else {
            panic!("retransmission not rewritten");
        };
        assert_eq!(again, out);
        let (_, report) = r.finish(now, false);
        assert_eq!(report.rewritten, 2);
    }

    #[test]
    fn reset_follows_the_last_segment_of_the_message_with_the_right_sequence_numbers() {
        let now = Instant::now();
        let mut r = RuleState::new(rule(MessageAction::Reset, 1), now);
        let m = message(9, true, 0, 3, 100);
        let (a, b) = m.split_at(80);
        let first = read(true, 40000, 10, 999, a);
        assert_eq!(r.process(now, 0, 1, &first, (1, 1)), Fate::Pass);
        let second = read(true, 40000, 90, 999, b);
        let Fate::PassThenReset(rsts) = r.process(now, 0, 1, &second, (1, 1)) else {
            panic!("no reset");
        };
        let to_client = frame::segment(&rsts[0].1).unwrap();
        let to_server = frame::segment(&rsts[1].1).unwrap();
        assert_eq!(
            (rsts[0].0, to_client.seq, to_client.tcp.dst_port),
            (1, 10 + m.len() as u32, 40000)
        );
        assert_eq!(
            (rsts[1].0, to_server.seq, to_server.tcp.dst_port),
            (0, 999, 445)
        );
        for (_, f) in &rsts {
            assert_eq!(tcp_sum(f), 0);
            assert_eq!(vnet::sum(&f[14..34], 0), 0xffff);
        }
    }

    #[test]
    fn encrypted_sessions_are_reported() {
        let now = Instant::now();
        let mut r = RuleState::new(rule(MessageAction::Hold, 1), now);
        let mut m = message(9, true, 0, 3, 40);
        m[4] = 0xfd;
        let b = read(true, 40000, 1, 1, &m);
        assert_eq!(r.process(now, 0, 1, &b, (1, 1)), Fate::Pass);
        let (_, report) = r.finish(now, false);
        assert!(report.encrypted && !report.acted());
    }
}
