//! The userspace wire: the lab's switch, run by the harness. Every node's link to a network
//! (`eth0`, `eth1`, ...) is a TAP device whose descriptor we hold; one thread per port reads
//! the frames its node sends, learns MAC addresses, applies the active faults (blocks for
//! partitions and blackholes, shapers for impairments) and writes each frame to its
//! destination TAP at once or, when delayed, from the scheduler thread. It also keeps
//! per-link counters and a pcap per link.
//!
//! Each network is a segment of its own: a port belongs to one segment, MAC addresses are
//! learnt per segment and frames (broadcasts included) only ever reach ports of the segment
//! they came from, so nothing crosses between networks. A network's rate cap is a shaper that
//! stays on its ports' both directions for the whole run.
//!
//! Frames come and go behind a virtio-net header (vnet.rs) with segmentation offload on, so
//! a bulk transfer crosses the wire as segments of up to 64 KiB, forwarded whole with one
//! read and one write each. Blocks act on a whole segment (each of its frames counts as
//! dropped); a path with an impairment (a rate cap included) splits it into MTU frames first
//! (software GSO) so loss, duplication, reordering, corruption and rate caps act frame by
//! frame, as on a real link. Counters count MTU frames and their bytes either way.

pub mod frame;
pub mod hold;
pub mod message;
pub mod pcap;
pub mod shaper;
pub mod smb_match;
pub mod tap;
pub mod vnet;

use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::Serialize;

pub use shaper::{Distribution, Impairment};

use frame::Mac;
use hold::{Held, HoldQueue, HoldStats};
use message::{Fate, MessageReport, MessageRule, RuleState};
use pcap::Capture;
use shaper::Shaper;
use vnet::VnetHdr;

/// Largest read from a port: the virtio-net header, then a 64 KiB MTU frame or segmentation
/// offload segment plus the Ethernet header.
const READ_MAX: usize = vnet::HDR_LEN + 65_536 + 14;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Frames the node sends into the wire.
    Egress,
    /// Frames the wire delivers to the node.
    Ingress,
}

/// One port of the switch: a node's TAP on one network.
pub struct PortSpec {
    pub node: String,
    /// The network (segment) the port belongs to.
    pub network: String,
    pub tap: OwnedFd,
    pub capture: Option<Capture>,
    /// The network's rate cap (bits per second, each direction), held for the whole run.
    pub rate_cap: Option<u64>,
}

/// Counters of one link; egress = from the node, ingress = to the node.
#[derive(Debug, Default)]
struct Counters {
    egress_frames: AtomicU64,
    egress_bytes: AtomicU64,
    ingress_frames: AtomicU64,
    ingress_bytes: AtomicU64,
    dropped: AtomicU64,
    duplicated: AtomicU64,
    corrupted: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounters {
    pub egress_frames: u64,
    pub egress_bytes: u64,
    pub ingress_frames: u64,
    pub ingress_bytes: u64,
    /// Frames dropped on their way through this link (blocks, loss, rate-cap tail drops).
    pub dropped: u64,
    pub duplicated: u64,
    pub corrupted: u64,
}

impl LinkCounters {
    /// Both counters added up (a node's links together).
    pub fn plus(&self, o: &LinkCounters) -> LinkCounters {
        LinkCounters {
            egress_frames: self.egress_frames + o.egress_frames,
            egress_bytes: self.egress_bytes + o.egress_bytes,
            ingress_frames: self.ingress_frames + o.ingress_frames,
            ingress_bytes: self.ingress_bytes + o.ingress_bytes,
            dropped: self.dropped + o.dropped,
            duplicated: self.duplicated + o.duplicated,
            corrupted: self.corrupted + o.corrupted,
        }
    }
}

struct Port {
    node: String,
    network: String,
    /// Index of its network among the wire's segments.
    segment: usize,
    /// The link's standing shaper (a network's rate cap) both directions return to.
    base: Option<Impairment>,
    tap: OwnedFd,
    capture: Option<Capture>,
    counters: Counters,
    egress: Mutex<Option<Shaper>>,
    ingress: Mutex<Option<Shaper>>,
}

/// Frames from any port in `from` to any port in `to` are silently dropped; with
/// `tcp_port`, only TCP segments with that source or destination port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub from: Vec<usize>,
    pub to: Vec<usize>,
    pub tcp_port: Option<u16>,
    /// Only CTDB tickle ACKs (window 1234, no payload).
    pub tickles_only: bool,
}

impl Block {
    fn matches(&self, src: usize, dst: usize, frame: &[u8]) -> bool {
        self.from.contains(&src)
            && self.to.contains(&dst)
            && self.tcp_port.is_none_or(|p| {
                frame::tcp(frame).is_some_and(|t| t.src_port == p || t.dst_port == p)
            })
            && (!self.tickles_only
                || matches!(
                    frame::notable(frame),
                    Some(frame::Notable::TickleAck { .. })
                ))
    }
}

pub type BlockId = u64;

/// One read from a TAP, as the forwarding path passes it along.
struct Read<'a> {
    /// The virtio-net header and the frame, as read.
    bytes: &'a [u8],
    hdr: VnetHdr,
    /// MTU frames it stands for and their bytes on a wire (vnet::wire_size).
    size: (u64, u64),
    /// The offloaded checksum, finished, for the captures (only while capturing).
    checksum: Option<(usize, [u8; 2])>,
}

impl Read<'_> {
    fn frame(&self) -> &[u8] {
        &self.bytes[vnet::HDR_LEN..]
    }
}

/// A `Pending` with this port is a wake-up for delayed messages, not a frame.
const WAKE: usize = usize::MAX;

struct Pending {
    at: Instant,
    seq: u64,
    port: usize,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Shared {
    ports: Vec<Port>,
    /// Learnt per segment: (segment, MAC) -> port.
    macs: RwLock<HashMap<(usize, Mac), usize>>,
    /// Active blocks, each with the frames it has dropped (its effect).
    blocks: RwLock<Vec<(BlockId, Block, Arc<AtomicU64>)>>,
    next_block: AtomicU64,
    /// Active holds (frames queued, not dropped), with their queues.
    holds: Mutex<Vec<(BlockId, Block, HoldQueue)>>,
    /// Armed SMB message rules.
    rules: Mutex<Vec<(BlockId, RuleState)>>,
    /// Any hold or rule active (checked before taking their locks).
    queueing: AtomicBool,
    /// Any block, shaper, hold or rule active: the fast path skips all fault logic when false.
    faulty: AtomicBool,
    queue: Mutex<BinaryHeap<Pending>>,
    queued: Condvar,
    seq: AtomicU64,
    stopping: AtomicBool,
    stop_event: OwnedFd,
    /// Look for notable frames (a lab with clusters turns this on).
    watch: AtomicBool,
    /// Some port records a capture: finish offloaded checksums for it.
    capturing: bool,
    observed: Mutex<Vec<Observed>>,
}

/// A notable frame as its sender put it on the wire.
#[derive(Debug, Clone)]
pub struct Observed {
    pub at: Instant,
    /// The node that sent it.
    pub node: String,
    pub frame: frame::Notable,
    /// A block dropped it on its way to its (unicast) destination.
    pub dropped: bool,
}

/// Notable frames kept between two drains; beyond it they are counted, not kept.
const OBSERVED_MAX: usize = 100_000;

pub struct Wire {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Wire {
    pub fn start(ports: Vec<PortSpec>) -> std::io::Result<Wire> {
        // SAFETY: eventfd(2) takes plain integers; the result is checked below.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if stop < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut segments: Vec<String> = Vec::new();
        let capturing = ports.iter().any(|p| p.capture.is_some());
        let shared = Arc::new(Shared {
            capturing,
            ports: ports
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    let segment = match segments.iter().position(|n| *n == p.network) {
                        Some(s) => s,
                        None => {
                            segments.push(p.network.clone());
                            segments.len() - 1
                        }
                    };
                    let base = p.rate_cap.map(|rate_bps| Impairment {
                        rate_bps,
                        ..Impairment::default()
                    });
                    let shaper = |salt: u64| base.clone().map(|b| Shaper::new(b, salt));
                    Port {
                        node: p.node,
                        network: p.network,
                        segment,
                        egress: Mutex::new(shaper(2 * i as u64)),
                        ingress: Mutex::new(shaper(2 * i as u64 + 1)),
                        base,
                        tap: p.tap,
                        capture: p.capture,
                        counters: Counters::default(),
                    }
                })
                .collect(),
            macs: RwLock::new(HashMap::new()),
            blocks: RwLock::new(Vec::new()),
            next_block: AtomicU64::new(1),
            holds: Mutex::new(Vec::new()),
            rules: Mutex::new(Vec::new()),
            queueing: AtomicBool::new(false),
            faulty: AtomicBool::new(false),
            queue: Mutex::new(BinaryHeap::new()),
            queued: Condvar::new(),
            seq: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            watch: AtomicBool::new(false),
            observed: Mutex::new(Vec::new()),
            // SAFETY: `stop` is the valid eventfd made above, owned by nothing else.
            stop_event: unsafe { std::os::fd::FromRawFd::from_raw_fd(stop) },
        });
        let mut threads = Vec::new();
        for index in 0..shared.ports.len() {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!(
                        "wire-{}-{}",
                        shared.ports[index].node, shared.ports[index].network
                    ))
                    .spawn(move || s.read_loop(index))?,
            );
        }
        shared.refresh_faulty();
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("wire-delay".into())
                .spawn(move || s.delay_loop())?,
        );
        Ok(Wire { shared, threads })
    }

    /// Start recording gratuitous ARPs, tickle ACKs and SMB RSTs.
    pub fn watch_notable(&self) {
        self.shared.watch.store(true, Ordering::Relaxed);
    }

    /// The notable frames seen since the last drain, oldest first.
    pub fn drain_observed(&self) -> Vec<Observed> {
        std::mem::take(&mut *self.shared.observed.lock().expect("observed"))
    }

    /// The first port of `node` (its `eth0`).
    pub fn port_index(&self, node: &str) -> Option<usize> {
        self.shared.ports.iter().position(|p| p.node == node)
    }

    /// Every port of `node`, or only its port on `network`.
    pub fn ports_of(&self, node: &str, network: Option<&str>) -> Vec<usize> {
        (0..self.shared.ports.len())
            .filter(|&i| {
                let p = &self.shared.ports[i];
                p.node == node && network.is_none_or(|n| p.network == n)
            })
            .collect()
    }

    pub fn node_name(&self, index: usize) -> &str {
        &self.shared.ports[index].node
    }

    pub fn network_name(&self, index: usize) -> &str {
        &self.shared.ports[index].network
    }

    pub fn port_count(&self) -> usize {
        self.shared.ports.len()
    }

    /// Drop frames matching `block` until `unblock`.
    pub fn block(&self, block: Block) -> BlockId {
        let id = self.shared.next_block.fetch_add(1, Ordering::Relaxed);
        self.shared
            .blocks
            .write()
            .expect("blocks")
            .push((id, block, Arc::new(AtomicU64::new(0))));
        self.shared.refresh_faulty();
        id
    }

    /// Remove a block: the frames it dropped while it held, or None if it was not there.
    pub fn unblock(&self, id: BlockId) -> Option<u64> {
        let mut blocks = self.shared.blocks.write().expect("blocks");
        let at = blocks.iter().position(|(b, _, _)| *b == id);
        let removed = at.map(|i| blocks.remove(i).2.load(Ordering::Relaxed));
        drop(blocks);
        self.shared.refresh_faulty();
        removed
    }

    /// Queue frames matching `block` instead of forwarding them, until `release` (turmoil's
    /// `hold`).
    pub fn hold(&self, block: Block) -> BlockId {
        let id = self.shared.next_block.fetch_add(1, Ordering::Relaxed);
        self.shared
            .holds
            .lock()
            .expect("holds")
            .push((id, block, HoldQueue::default()));
        self.shared.refresh_faulty();
        id
    }

    /// End a hold: what it held is delivered in order (or thrown away with `discard`);
    /// returns what it held, or None if it was not there. Delivery happens before any later
    /// frame of the path can pass.
    pub fn release(&self, id: BlockId, discard: bool) -> Option<HoldStats> {
        let mut holds = self.shared.holds.lock().expect("holds");
        let at = holds.iter().position(|(h, _, _)| *h == id)?;
        let (_, _, mut queue) = holds.remove(at);
        let held = queue.take();
        if !discard {
            for h in &held {
                self.shared.deliver_held(h);
            }
        }
        drop(holds);
        self.shared.refresh_faulty();
        Some(queue.stats())
    }

    /// The paths held now.
    pub fn holds(&self) -> Vec<(BlockId, Block)> {
        self.shared
            .holds
            .lock()
            .expect("holds")
            .iter()
            .map(|(id, b, _)| (*id, b.clone()))
            .collect()
    }

    /// Arm an SMB message rule (message.rs) until `disarm`.
    pub fn arm(&self, rule: MessageRule) -> BlockId {
        let id = self.shared.next_block.fetch_add(1, Ordering::Relaxed);
        self.shared
            .rules
            .lock()
            .expect("rules")
            .push((id, RuleState::new(rule, Instant::now())));
        self.shared.refresh_faulty();
        id
    }

    /// Disarm a rule: what it holds is delivered in order (or thrown away with `discard`)
    /// before any later frame passes; its report, or None if it was not armed.
    pub fn disarm(&self, id: BlockId, discard: bool) -> Option<MessageReport> {
        let mut rules = self.shared.rules.lock().expect("rules");
        let at = rules.iter().position(|(r, _)| *r == id)?;
        let (_, state) = rules.remove(at);
        let (held, report) = state.finish(Instant::now(), discard);
        for h in &held {
            self.shared.deliver_held(h);
        }
        drop(rules);
        self.shared.refresh_faulty();
        Some(report)
    }

    /// The rules armed now.
    pub fn rules(&self) -> Vec<BlockId> {
        self.shared
            .rules
            .lock()
            .expect("rules")
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn blocks(&self) -> Vec<(BlockId, Block)> {
        self.shared
            .blocks
            .read()
            .expect("blocks")
            .iter()
            .map(|(id, b, _)| (*id, b.clone()))
            .collect()
    }

    /// Impair one direction of one link (None: back to the link's standing rate cap, if
    /// any). An impairment without a rate of its own keeps the link's cap. `seed` feeds its RNG.
    pub fn impair(
        &self,
        port: usize,
        direction: Direction,
        impairment: Option<Impairment>,
        seed: u64,
    ) {
        let p = &self.shared.ports[port];
        let slot = match direction {
            Direction::Egress => &p.egress,
            Direction::Ingress => &p.ingress,
        };
        *slot.lock().expect("shaper") = self
            .effective(port, impairment)
            .map(|i| Shaper::new(i, seed));
        self.shared.refresh_faulty();
    }

    /// What a link direction does once `impairment` is set on it (its cap filled in).
    pub fn effective(&self, port: usize, impairment: Option<Impairment>) -> Option<Impairment> {
        let base = self.shared.ports[port].base.clone();
        match (impairment, base) {
            (Some(mut i), Some(b)) => {
                if i.rate_bps == 0 {
                    i.rate_bps = b.rate_bps;
                }
                Some(i)
            }
            (i, b) => i.or(b),
        }
    }

    pub fn impairment(&self, port: usize, direction: Direction) -> Option<Impairment> {
        let p = &self.shared.ports[port];
        let slot = match direction {
            Direction::Egress => &p.egress,
            Direction::Ingress => &p.ingress,
        };
        slot.lock()
            .expect("shaper")
            .as_ref()
            .map(|s| s.config.clone())
    }

    pub fn counters(&self, port: usize) -> LinkCounters {
        let c = &self.shared.ports[port].counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkCounters {
            egress_frames: get(&c.egress_frames),
            egress_bytes: get(&c.egress_bytes),
            ingress_frames: get(&c.ingress_frames),
            ingress_bytes: get(&c.ingress_bytes),
            dropped: get(&c.dropped),
            duplicated: get(&c.duplicated),
            corrupted: get(&c.corrupted),
        }
    }

    /// Is any fault active on the wire? (A network's standing rate cap is not a fault.)
    pub fn is_clean(&self) -> bool {
        if !self.shared.faulty.load(Ordering::SeqCst) {
            return true;
        }
        self.shared.blocks.read().expect("blocks").is_empty()
            && self.shared.holds.lock().expect("holds").is_empty()
            && self.shared.rules.lock().expect("rules").is_empty()
            && self.shared.ports.iter().all(|p| {
                [&p.egress, &p.ingress].iter().all(|slot| {
                    slot.lock().expect("shaper").as_ref().map(|s| &s.config) == p.base.as_ref()
                })
            })
    }

    /// Stop forwarding, flush captures and close every TAP (their devices vanish with them).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes the 8 bytes of `one` to the eventfd the wire owns (open until drop).
        unsafe { libc::write(self.shared.stop_event.as_raw_fd(), one.as_ptr().cast(), 8) };
        self.shared.queued.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for p in &self.shared.ports {
            if let Some(c) = &p.capture {
                c.flush();
            }
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

impl Shared {
    fn refresh_faulty(&self) {
        let any_shaper = self.ports.iter().any(|p| {
            p.egress.lock().expect("shaper").is_some()
                || p.ingress.lock().expect("shaper").is_some()
        });
        let any_block = !self.blocks.read().expect("blocks").is_empty();
        let queueing = !self.holds.lock().expect("holds").is_empty()
            || !self.rules.lock().expect("rules").is_empty();
        self.queueing.store(queueing, Ordering::SeqCst);
        self.faulty
            .store(any_shaper || any_block || queueing, Ordering::SeqCst);
    }

    fn read_loop(&self, index: usize) {
        let port = &self.ports[index];
        let fd = port.tap.as_raw_fd();
        let mut buf = vec![0u8; READ_MAX];
        while !self.stopping.load(Ordering::Relaxed) {
            // SAFETY: reads at most `buf.len()` bytes into `buf`; the TAP fd lives as long as
            // the port, which outlives this loop.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                self.forward(index, &buf[..n as usize]);
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => self.wait_readable(fd),
                Some(libc::EINTR) => {}
                // The device is gone (namespace deleted) or the wire is stopping.
                _ => return,
            }
        }
    }

    fn wait_readable(&self, fd: i32) {
        let mut fds = [
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.stop_event.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of exactly 2 initialised pollfd structs.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    }

    /// One read from `src`'s TAP: the virtio-net header, then the frame (or segment).
    fn forward(&self, src: usize, read: &[u8]) {
        let (Some(hdr), Some(frame)) = (VnetHdr::parse(read), read.get(vnet::HDR_LEN..)) else {
            return;
        };
        let read = Read {
            bytes: read,
            hdr,
            size: vnet::wire_size(&hdr, frame),
            checksum: if self.capturing {
                vnet::finished_checksum(&hdr, frame)
            } else {
                None
            },
        };
        let from = &self.ports[src];
        from.counters
            .egress_frames
            .fetch_add(read.size.0, Ordering::Relaxed);
        from.counters
            .egress_bytes
            .fetch_add(read.size.1, Ordering::Relaxed);
        if let Some(c) = &from.capture {
            c.record_patched(frame, read.checksum);
        }
        let (Some(dst_mac), Some(src_mac)) = (frame::dst_mac(frame), frame::src_mac(frame)) else {
            return;
        };
        let segment = from.segment;
        self.learn(segment, src_mac, src);
        let dst = if frame::is_group(&dst_mac) {
            None
        } else {
            self.macs
                .read()
                .expect("macs")
                .get(&(segment, dst_mac))
                .copied()
        };
        if self.watch.load(Ordering::Relaxed) {
            self.observe(src, dst, frame);
        }
        match dst {
            Some(d) if d != src => self.send(src, d, &read),
            Some(_) => {}
            None => {
                for d in
                    (0..self.ports.len()).filter(|d| *d != src && self.ports[*d].segment == segment)
                {
                    self.send(src, d, &read);
                }
            }
        }
    }

    /// Record a notable frame as its sender put it on the wire; a unicast one that a block
    /// drops on its way is marked `dropped`.
    fn observe(&self, src: usize, dst: Option<usize>, frame: &[u8]) {
        let Some(n) = frame::notable(frame) else {
            return;
        };
        let dropped = dst.is_some_and(|d| {
            self.faulty.load(Ordering::Relaxed)
                && self
                    .blocks
                    .read()
                    .expect("blocks")
                    .iter()
                    .any(|(_, b, _)| b.matches(src, d, frame))
        });
        let mut seen = self.observed.lock().expect("observed");
        if seen.len() < OBSERVED_MAX {
            seen.push(Observed {
                at: Instant::now(),
                node: self.ports[src].node.clone(),
                frame: n,
                dropped,
            });
        }
    }

    fn learn(&self, segment: usize, mac: Mac, port: usize) {
        let key = (segment, mac);
        if self.macs.read().expect("macs").get(&key) != Some(&port) {
            self.macs.write().expect("macs").insert(key, port);
        }
    }

    /// One read from `src` to `dst`: blocks, then the source's egress shaper, then the
    /// destination's ingress shaper. Forwarded whole unless a shaper is on the path.
    fn send(&self, src: usize, dst: usize, read: &Read) {
        if !self.faulty.load(Ordering::Relaxed) {
            return self.deliver_read(dst, read);
        }
        let frame = read.frame();
        let frames = read.size.0;
        if let Some((_, _, dropped)) = self
            .blocks
            .read()
            .expect("blocks")
            .iter()
            .find(|(_, b, _)| b.matches(src, dst, frame))
        {
            dropped.fetch_add(frames, Ordering::Relaxed);
            self.ports[src]
                .counters
                .dropped
                .fetch_add(frames, Ordering::Relaxed);
            return;
        }
        if self.queueing.load(Ordering::Relaxed) {
            return self.send_queueing(src, dst, read);
        }
        self.send_shaped(src, dst, read)
    }

    /// Holds first (a held path queues the read), then SMB message rules, which may queue
    /// it, rewrite it, or follow it with resets.
    fn send_queueing(&self, src: usize, dst: usize, read: &Read) {
        let frame = read.frame();
        {
            let mut holds = self.holds.lock().expect("holds");
            if let Some((_, _, q)) = holds
                .iter_mut()
                .find(|(_, b, _)| b.matches(src, dst, frame))
            {
                q.push(Held {
                    dst,
                    bytes: read.bytes.to_vec(),
                    size: read.size,
                });
                return;
            }
        }
        let mut rewritten: Option<Vec<u8>> = None;
        let mut after: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut rules = self.rules.lock().expect("rules");
        let now = Instant::now();
        for (_, rule) in rules.iter_mut().filter(|(_, r)| r.applies(src, dst)) {
            let bytes = rewritten.as_deref().unwrap_or(read.bytes);
            match rule.process(now, src, dst, bytes, read.size) {
                Fate::Pass => {}
                Fate::Held => {
                    if let Some(at) = rule.wake_at() {
                        self.wake(at);
                    }
                    return;
                }
                Fate::Rewritten(b) => rewritten = Some(b),
                Fate::PassThenReset(rsts) => after.extend(rsts),
            }
        }
        // Once a rule has fired, deliver under the rules' lock: nothing it releases can then
        // overtake this frame. An idle rule holds nothing, so the lock goes first (both
        // directions of a connection are forwarded by different threads).
        if !rules.iter().any(|(_, r)| r.fired()) {
            drop(rules);
            return self.send_rewritten(src, dst, read, rewritten.as_deref(), after);
        }
        self.send_rewritten(src, dst, read, rewritten.as_deref(), after);
        drop(rules);
    }

    /// A read on its way, as it came or rewritten, then any frames to follow it.
    fn send_rewritten(
        &self,
        src: usize,
        dst: usize,
        read: &Read,
        rewritten: Option<&[u8]>,
        after: Vec<(usize, Vec<u8>)>,
    ) {
        match rewritten {
            None => self.send_shaped(src, dst, read),
            Some(bytes) => {
                let r = Read {
                    bytes,
                    hdr: read.hdr,
                    size: read.size,
                    checksum: if self.capturing {
                        vnet::finished_checksum(&read.hdr, &bytes[vnet::HDR_LEN..])
                    } else {
                        None
                    },
                };
                self.send_shaped(src, dst, &r)
            }
        }
        for (port, f) in after {
            self.deliver(port, &f);
        }
    }

    /// Ask the scheduler thread to release delayed messages at `at`.
    fn wake(&self, at: Instant) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.queue.lock().expect("queue").push(Pending {
            at,
            seq,
            port: WAKE,
            frame: Vec::new(),
        });
        self.queued.notify_one();
    }

    /// Delayed messages whose time has come go out, in order, before anything later.
    fn release_due(&self) {
        let mut rules = self.rules.lock().expect("rules");
        let now = Instant::now();
        for (_, rule) in rules.iter_mut() {
            for h in rule.due(now) {
                self.deliver_held(&h);
            }
        }
        drop(rules);
    }

    /// A held read, as it was read: header and all.
    fn deliver_held(&self, h: &Held) {
        let Some(hdr) = VnetHdr::parse(&h.bytes) else {
            return;
        };
        let frame = &h.bytes[vnet::HDR_LEN..];
        let read = Read {
            bytes: &h.bytes,
            hdr,
            size: h.size,
            checksum: if self.capturing {
                vnet::finished_checksum(&hdr, frame)
            } else {
                None
            },
        };
        self.deliver_read(h.dst, &read);
    }

    /// The path's shapers, or straight through when none is set.
    fn send_shaped(&self, src: usize, dst: usize, read: &Read) {
        let frame = read.frame();
        let frames = read.size.0;
        let shaped = self.ports[src].egress.lock().expect("shaper").is_some()
            || self.ports[dst].ingress.lock().expect("shaper").is_some();
        if !shaped {
            return self.deliver_read(dst, read);
        }
        let Some(split) = vnet::segment(&read.hdr, frame) else {
            self.ports[src]
                .counters
                .dropped
                .fetch_add(frames, Ordering::Relaxed);
            return;
        };
        for frame in split {
            self.shape(src, dst, frame);
        }
    }

    /// One plain MTU frame through the path's shapers, delivered now or queued for later.
    fn shape(&self, src: usize, dst: usize, mut frame: Vec<u8>) {
        let now = Instant::now();
        let mut times = vec![now];
        for (port, slot) in [
            (src, &self.ports[src].egress),
            (dst, &self.ports[dst].ingress),
        ] {
            let mut shaper = slot.lock().expect("shaper");
            let Some(shaper) = shaper.as_mut() else {
                continue;
            };
            let counters = &self.ports[port].counters;
            let mut next = Vec::new();
            for t in times {
                let fate = shaper.process(t, &mut frame);
                match fate.copies.len() {
                    0 => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    1 => {}
                    _ => {
                        counters.duplicated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if fate.corrupted {
                    counters.corrupted.fetch_add(1, Ordering::Relaxed);
                }
                next.extend(fate.copies);
            }
            times = next;
        }
        for at in times {
            if at <= Instant::now() {
                self.deliver(dst, &frame);
            } else {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                self.queue.lock().expect("queue").push(Pending {
                    at,
                    seq,
                    port: dst,
                    frame: frame.clone(),
                });
                self.queued.notify_one();
            }
        }
    }

    /// A read as it came, header and all: one write, however many frames it stands for.
    fn deliver_read(&self, dst: usize, read: &Read) {
        let port = &self.ports[dst];
        let bytes = read.bytes;
        // SAFETY: writes `bytes.len()` bytes of `bytes` to the port's TAP, open while the port is.
        let n = unsafe { libc::write(port.tap.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if n == bytes.len() as isize {
            let (frames, wire_bytes) = read.size;
            port.counters
                .ingress_frames
                .fetch_add(frames, Ordering::Relaxed);
            port.counters
                .ingress_bytes
                .fetch_add(wire_bytes, Ordering::Relaxed);
            if let Some(c) = &port.capture {
                c.record_patched(read.frame(), read.checksum);
            }
        } else {
            port.counters
                .dropped
                .fetch_add(read.size.0, Ordering::Relaxed);
        }
    }

    /// One plain frame (its checksums finished), behind an empty virtio-net header.
    fn deliver(&self, dst: usize, frame: &[u8]) {
        let port = &self.ports[dst];
        let iov = [
            libc::iovec {
                iov_base: vnet::PLAIN.as_ptr() as *mut libc::c_void,
                iov_len: vnet::HDR_LEN,
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: both iovecs point at live buffers of the given lengths, which writev only
        // reads; the TAP is open while the port is.
        let n = unsafe { libc::writev(port.tap.as_raw_fd(), iov.as_ptr(), 2) };
        if n == (vnet::HDR_LEN + frame.len()) as isize {
            port.counters.ingress_frames.fetch_add(1, Ordering::Relaxed);
            port.counters
                .ingress_bytes
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            if let Some(c) = &port.capture {
                c.record(frame);
            }
        } else {
            port.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Deliver delayed frames when their time comes.
    fn delay_loop(&self) {
        let mut queue = self.queue.lock().expect("queue");
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            match queue.peek().map(|p| p.at) {
                Some(at) if at <= now => {
                    let p = queue.pop().expect("peeked");
                    drop(queue);
                    if p.port == WAKE {
                        self.release_due();
                    } else {
                        self.deliver(p.port, &p.frame);
                    }
                    queue = self.queue.lock().expect("queue");
                }
                Some(at) => queue = self.queued.wait_timeout(queue, at - now).expect("queue").0,
                None => queue = self.queued.wait(queue).expect("queue"),
            }
        }
    }
}
