//! SMB Multichannel: one session over several connections (channels).
//!
//! [`MultiChannel`] holds a tree connect as seen on each channel, spreads
//! requests over the live channels, and handles channel failure as MS-SMB2
//! 3.2.7.1 and 3.3.5.2.10 describe: a request whose channel died in flight
//! is replayed on another channel with SMB2_FLAGS_REPLAY_OPERATION, after
//! the session's ChannelSequence has moved past the failed channel's; a
//! WRITE, SET_INFO or IOCTL the server refuses with STATUS_FILE_NOT_AVAILABLE
//! (older requests still outstanding) is replayed again (3.2.5.1.x). A request unanswered
//! within its timeout while another channel is up gives its channel up (closed, so what
//! else was in flight there is replayed too) and is replayed on another: a partitioned or
//! black-holed network costs one request timeout, not the session.
//!
//! This is the one place in the crate that resends anything; the layers
//! below still never retry. Every resend is counted in [`ChannelStats`].

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::connection::{Connection, Events, RequestOptions};
use crate::error::{Error, Result};
use crate::ntlm::Credentials;
use crate::response::Response;
use crate::session::Session;
use crate::tree::Tree;
use crate::wire::ioctl::{parse_network_interfaces, InterfaceRepr, IoctlRequest};
use crate::wire::negotiate::{capabilities::SMB2_GLOBAL_CAP_MULTI_CHANNEL, NegotiateRequest};
use crate::wire::{Command, HeaderFlags, RequestBody};
use crate::NtStatus;

/// An IP network (`198.18.4.0/24`) a client may use for channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, a: IpAddr) -> bool {
        fn masked(bytes: &[u8], prefix: u8) -> Vec<u8> {
            bytes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let bits = (prefix as usize).saturating_sub(i * 8).min(8) as u32;
                    b & (!0u8).checked_shl(8 - bits).unwrap_or(0)
                })
                .collect()
        }
        match (self.address, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(&n.octets(), self.prefix) == masked(&a.octets(), self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(&n.octets(), self.prefix) == masked(&a.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

/// Why a network string is not `address/prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a network (address/prefix, e.g. 198.18.4.0/24): {why}")]
pub struct NetworkParseError {
    pub input: String,
    pub why: &'static str,
}

impl FromStr for Network {
    type Err = NetworkParseError;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let err = |why| NetworkParseError {
            input: s.to_string(),
            why,
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr = a.parse().map_err(|_| err("bad address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| err("bad prefix length"))?,
            None => max,
        };
        if prefix > max {
            return Err(err("prefix length too long"));
        }
        Ok(Network { address, prefix })
    }
}

/// Which server addresses channels may use: every one the server offers
/// when `networks` is empty, else only those inside one of `networks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelConstraint {
    pub networks: Vec<Network>,
}

impl ChannelConstraint {
    pub fn allows(&self, a: IpAddr) -> bool {
        self.networks.is_empty() || self.networks.iter().any(|n| n.contains(a))
    }
    /// The server's interfaces this client may use, fastest first (the
    /// order a client prefers them in, MS-SMB2 3.2.5.14.11 leaves it open).
    pub fn select(&self, interfaces: &[InterfaceRepr]) -> Vec<InterfaceRepr> {
        let mut v: Vec<InterfaceRepr> = interfaces
            .iter()
            .filter(|i| self.allows(i.address))
            .copied()
            .collect();
        v.sort_by_key(|i| std::cmp::Reverse(i.link_speed));
        v.dedup_by_key(|i| i.address);
        v
    }
}

/// How requests are spread over the live channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spread {
    #[default]
    RoundRobin,
    /// The channel with the fewest requests in flight.
    LeastInFlight,
}

/// Counters of one channel, as this client saw them.
#[derive(Debug, Default)]
pub struct ChannelStats {
    pub requests: AtomicU64,
    pub in_flight: AtomicUsize,
    /// Requests that were in flight here when the channel died, replayed elsewhere.
    pub lost: AtomicU64,
    /// Requests sent here with SMB2_FLAGS_REPLAY_OPERATION.
    pub replays: AtomicU64,
}

/// One channel: the session's tree connect as seen over one connection.
pub struct Channel {
    pub tree: Tree,
    /// The server address this channel connects to.
    pub server: SocketAddr,
    pub stats: ChannelStats,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Channel {
    pub fn connection(&self) -> &Connection {
        self.tree.session().connection()
    }
    pub fn is_up(&self) -> bool {
        !self.failed.load(Ordering::Acquire) && self.connection().closed_reason().is_none()
    }
    /// Why this channel failed, once it has.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A snapshot of one channel's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    pub server: SocketAddr,
    pub up: bool,
    pub requests: u64,
    /// Bytes the channel's connection wrote and read (whole frames).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub lost: u64,
    pub replays: u64,
}

struct Inner {
    channels: Mutex<Vec<Arc<Channel>>>,
    next: AtomicUsize,
    spread: Spread,
    /// The session's ChannelSequence: moves on when a channel fails, so the
    /// server can tell requests sent before the failure from after.
    channel_sequence: AtomicU16,
    /// How often a request refused with STATUS_FILE_NOT_AVAILABLE is replayed.
    max_not_available_replays: u32,
}

/// What [`MultiChannel::add_channels`] binds: how many channels in all, to
/// which server addresses, on which port, NEGOTIATEd and authenticated how.
#[derive(Debug, Clone)]
pub struct ChannelSetup<'a> {
    pub channels: usize,
    pub constraint: &'a ChannelConstraint,
    pub port: u16,
    /// The NEGOTIATE each channel sends (see [`multichannel_negotiate_request`]).
    pub negotiate: &'a NegotiateRequest,
    pub credentials: &'a Credentials,
}

/// A session spread over several channels. Cheap to clone.
#[derive(Clone)]
pub struct MultiChannel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MultiChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiChannel")
            .field("channels", &self.report())
            .finish_non_exhaustive()
    }
}

/// FSCTL_QUERY_NETWORK_INTERFACE_INFO on `tree`'s channel: the server's interfaces.
pub async fn query_network_interfaces(tree: &Tree) -> Result<Vec<InterfaceRepr>> {
    let r = tree
        .request(
            &IoctlRequest::query_network_interface_info(),
            &RequestOptions::default(),
        )
        .await?;
    let header = r.header.clone();
    let raw = r.raw.clone();
    let body = r.ok()?;
    parse_network_interfaces(&body.output).map_err(|source| Error::Malformed {
        command: Command::Ioctl,
        source,
        header: Some(Box::new(header)),
        raw,
    })
}

/// The NEGOTIATE request a channel sends: the caller's, with
/// SMB2_GLOBAL_CAP_MULTI_CHANNEL (without it Samba refuses to bind).
pub fn multichannel_negotiate_request(mut req: NegotiateRequest) -> NegotiateRequest {
    req.capabilities |= SMB2_GLOBAL_CAP_MULTI_CHANNEL;
    req
}

impl MultiChannel {
    /// Starts with `first`, the tree on the session's first channel.
    pub fn new(first: Tree, server: SocketAddr, spread: Spread) -> Self {
        let mc = MultiChannel {
            inner: Arc::new(Inner {
                channels: Mutex::new(Vec::new()),
                next: AtomicUsize::new(0),
                spread,
                channel_sequence: AtomicU16::new(0),
                max_not_available_replays: 200,
            }),
        };
        mc.push(first, server);
        mc
    }

    fn channels(&self) -> Vec<Arc<Channel>> {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn push(&self, tree: Tree, server: SocketAddr) -> Arc<Channel> {
        let ch = Arc::new(Channel {
            tree,
            server,
            stats: ChannelStats::default(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ch.clone());
        ch
    }

    /// The first channel's tree (the session's original connection).
    pub fn primary(&self) -> Tree {
        self.channels()[0].tree.clone()
    }

    /// Every channel, live or failed, in the order they were added.
    pub fn all(&self) -> Vec<Arc<Channel>> {
        self.channels()
    }

    /// The session's current ChannelSequence.
    pub fn channel_sequence(&self) -> u16 {
        self.inner.channel_sequence.load(Ordering::Acquire)
    }

    /// Connects to `server` with `connect`, NEGOTIATEs `negotiate` (same
    /// dialect and ClientGuid as the session's first channel; see
    /// [`multichannel_negotiate_request`]), binds the session and adds the
    /// channel. Returns the new channel and its unsolicited events.
    pub async fn add_channel<F, Fut>(
        &self,
        server: SocketAddr,
        connect: F,
        negotiate: &NegotiateRequest,
        credentials: &Credentials,
    ) -> Result<(Arc<Channel>, Events)>
    where
        F: FnOnce(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<tokio::net::TcpStream>>,
    {
        let stream = connect(server).await?;
        let (conn, events) = Connection::new(stream);
        let opts = RequestOptions::default();
        conn.negotiate(negotiate, &opts).await?.ok()?;
        let primary = self.primary();
        let channel: Session = primary.session().bind(&conn, credentials, &opts).await?;
        Ok((self.push(primary.on_channel(&channel), server), events))
    }

    /// Binds one further channel per server interface `setup.constraint`
    /// allows (fastest first, skipping the address of any channel already
    /// up), until there are `setup.channels` channels in all. Returns the
    /// events of each new channel; a failure to bind one address is
    /// returned at once.
    pub async fn add_channels<F, Fut>(
        &self,
        interfaces: &[InterfaceRepr],
        setup: &ChannelSetup<'_>,
        connect: F,
    ) -> Result<Vec<Events>>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = std::io::Result<tokio::net::TcpStream>>,
    {
        let mut events = Vec::new();
        for i in setup.constraint.select(interfaces) {
            if self.channels().iter().filter(|c| c.is_up()).count() >= setup.channels {
                break;
            }
            let used = self
                .channels()
                .iter()
                .any(|c| c.is_up() && c.server.ip() == i.address);
            if used {
                continue;
            }
            let (_, ev) = self
                .add_channel(
                    (i.address, setup.port).into(),
                    &connect,
                    setup.negotiate,
                    setup.credentials,
                )
                .await?;
            events.push(ev);
        }
        Ok(events)
    }

    /// The next live channel by the spread policy.
    fn pick(&self) -> Result<Arc<Channel>> {
        let live: Vec<Arc<Channel>> = self.channels().into_iter().filter(|c| c.is_up()).collect();
        if live.is_empty() {
            return Err(Error::Disconnected(
                "every channel of the session has failed".into(),
            ));
        }
        Ok(match self.inner.spread {
            Spread::RoundRobin => {
                let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
                live[n % live.len()].clone()
            }
            Spread::LeastInFlight => live
                .iter()
                .min_by_key(|c| c.stats.in_flight.load(Ordering::Relaxed))
                .cloned()
                .unwrap_or_else(|| live[0].clone()),
        })
    }

    /// Whether a channel other than `ch` is up.
    fn others_up(&self, ch: &Arc<Channel>) -> bool {
        self.channels()
            .iter()
            .any(|c| !Arc::ptr_eq(c, ch) && c.is_up())
    }

    /// Closes every channel's connection (their requests in flight end OutcomeUnknown).
    pub async fn close(&self) {
        for c in self.channels() {
            c.connection().close().await;
        }
    }

    /// Marks `ch` failed; the first to notice moves the ChannelSequence on.
    fn fail(&self, ch: &Channel, reason: String) {
        if !ch.failed.swap(true, Ordering::AcqRel) {
            *ch.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
            self.inner.channel_sequence.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sends `body` on a live channel and waits for its final response. A
    /// request lost with its channel is replayed on another; see the module doc.
    pub async fn request<B: RequestBody>(
        &self,
        body: &B,
        opts: &RequestOptions,
    ) -> Result<Response<B::Response>> {
        let mut replay = false;
        let mut not_available = 0u32;
        loop {
            let ch = match self.pick() {
                Ok(ch) => ch,
                // Sent before, and no channel left to replay it on: its outcome is unknown.
                Err(Error::Disconnected(reason)) if replay => {
                    return Err(Error::OutcomeUnknown {
                        command: B::COMMAND,
                        message_id: 0,
                        reason,
                    })
                }
                Err(e) => return Err(e),
            };
            let mut o = opts.clone();
            o.channel_sequence = self.channel_sequence();
            if replay {
                o.flags.insert(HeaderFlags::REPLAY_OPERATION);
                ch.stats.replays.fetch_add(1, Ordering::Relaxed);
            }
            ch.stats.requests.fetch_add(1, Ordering::Relaxed);
            ch.stats.in_flight.fetch_add(1, Ordering::Relaxed);
            let r = ch.tree.request(body, &o).await;
            ch.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
            match r {
                Err(Error::OutcomeUnknown { reason, .. }) => {
                    // Written, and the channel died: the server may have acted on it.
                    ch.stats.lost.fetch_add(1, Ordering::Relaxed);
                    self.fail(&ch, reason);
                    replay = true;
                }
                Err(Error::Disconnected(reason)) => {
                    // Not sent: just another channel, no replay needed for this one.
                    self.fail(&ch, reason);
                }
                Err(Error::Timeout { after, .. }) if self.others_up(&ch) => {
                    // Unanswered (a silent network: a partition, a blackhole). With another
                    // channel up, give this one up, as MS-SMB2 3.2.6.1 lets a client, and
                    // replay there: closing it fails what else was in flight on it, which is
                    // replayed too.
                    ch.stats.lost.fetch_add(1, Ordering::Relaxed);
                    self.fail(&ch, format!("a request unanswered for {after:?}"));
                    ch.connection().close().await;
                    replay = true;
                }
                Ok(resp) => {
                    let refused = resp.status() == NtStatus::STATUS_FILE_NOT_AVAILABLE
                        && matches!(
                            B::COMMAND,
                            Command::Write | Command::SetInfo | Command::Ioctl
                        );
                    if refused && not_available < self.inner.max_not_available_replays {
                        // Requests from before the ChannelSequence moved are still
                        // outstanding at the server (3.3.5.2.10); replay once they drain.
                        not_available += 1;
                        replay = true;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Counters of every channel.
    pub fn report(&self) -> Vec<ChannelReport> {
        self.channels()
            .iter()
            .map(|c| ChannelReport {
                server: c.server,
                up: c.is_up(),
                requests: c.stats.requests.load(Ordering::Relaxed),
                bytes_sent: c.connection().byte_counts().0,
                bytes_received: c.connection().byte_counts().1,
                lost: c.stats.lost.load(Ordering::Relaxed),
                replays: c.stats.replays.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let n: Network = "198.18.4.0/24".parse().unwrap();
        assert!(n.contains("198.18.4.200".parse().unwrap()));
        assert!(!n.contains("198.18.5.1".parse().unwrap()));
        let n: Network = "198.18.0.0/15".parse().unwrap();
        assert!(n.contains("198.19.255.1".parse().unwrap()));
        assert!(!n.contains("198.20.0.1".parse().unwrap()));
        let h: Network = "198.18.0.10".parse().unwrap();
        assert_eq!(h.prefix, 32);
        assert!(h.contains("198.18.0.10".parse().unwrap()));
        assert!(!h.contains("198.18.0.11".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("10.1.2.3".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("198.18.0.0/33".parse::<Network>().is_err());
        assert!("198.18.0/24".parse::<Network>().is_err());
        assert!("x/1".parse::<Network>().is_err());
    }

    #[test]
    fn constraint_selects_allowed_fastest_first() {
        let i = |a: &str, speed| InterfaceRepr {
            if_index: 1,
            capability: 0,
            link_speed: speed,
            address: a.parse().unwrap(),
        };
        let offered = [
            i("198.18.0.10", 1_000),
            i("198.18.4.10", 10_000),
            i("198.18.5.10", 100_000),
        ];
        let any = ChannelConstraint::default();
        let got: Vec<_> = any.select(&offered).iter().map(|i| i.link_speed).collect();
        assert_eq!(got, [100_000, 10_000, 1_000]);
        let storage = ChannelConstraint {
            networks: vec![
                "198.18.4.0/24".parse().unwrap(),
                "198.18.0.10".parse().unwrap(),
            ],
        };
        let got: Vec<_> = storage.select(&offered).iter().map(|i| i.address).collect();
        assert_eq!(
            got,
            [
                "198.18.4.10".parse::<IpAddr>().unwrap(),
                "198.18.0.10".parse().unwrap()
            ]
        );
    }
}
