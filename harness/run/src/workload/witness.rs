//! The witness side of an SMB workload client (`witness: true`), as a Windows client behaves
//! (MS-SWN 3.2, seeds/002): while the SMB client is connected to a cluster address, ask that
//! node for the cluster's interfaces (WitnessrGetInterfaceList), register on another node's
//! interface (one flagged WITNESS_IF) for the address the SMB connection uses
//! (WitnessrRegisterEx), and keep a WitnessrAsyncNotify outstanding. When a notification
//! says the connection's resource changed (RESOURCE_CHANGE), or tells the client to move
//! (CLIENT_MOVE, SHARE_MOVE), the SMB connection is closed at once — its requests in flight
//! end `info` — and the client reconnects where it was told, reclaiming its durable handle
//! as after any lost connection. A registration that ends without a notification (the
//! witness's node died: its association closed or an AsyncNotify went unanswered past its
//! timeout) is made again on another interface.
//!
//! Registrations, notifications, moves and lost registrations are history events
//! (`witness_register`, `witness_notify`, `witness_move`, `witness_lost`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use history::ops::Op;
use history::value::{WitnessLost, WitnessMove, WitnessNotify, WitnessRegister, WitnessResource};
use history::{Entry, HistoryWriter, OpType, Process, Smb, Value};
use lab::Lab;
use smb2::Credentials;
use tokio::sync::watch;
use tokio::time::Instant;
use witness::pdu::AuthLevel;
use witness::swn::{
    ipaddr_flags, notify_type, resource_state, werror, WITNESS_REGISTER_IP_NOTIFICATION,
};
use witness::{Notification, NotifyResponse, RegisterEx, WitnessClient};

/// What an AsyncNotify asks the server to wait at most (RegisterEx's Timeout, seconds):
/// Samba answers ERROR_TIMEOUT then, and the client asks again. An AsyncNotify unanswered
/// for this plus [`NOTIFY_SLACK`] means the witness is gone.
const NOTIFY_TIMEOUT_S: u32 = 5;
/// Samba answers a timed-out AsyncNotify seconds late when the machine is loaded (load
/// average 27: RegisterEx took up to 6.8 s), so the slack is generous.
const NOTIFY_SLACK: Duration = Duration::from_secs(4);
/// One connect, bind or call of the registration (a dead witness answers none of them).
/// RegisterEx writes a clustered database: 2.3-6.8 s at load average 27.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Between two registration attempts that failed.
const RETRY: Duration = Duration::from_millis(500);

/// Shared between the SMB client loop and its witness loop.
#[derive(Default)]
struct Shared {
    /// Where the SMB client connects from now on (set by a move).
    home: Option<Ipv4Addr>,
    /// The live SMB connection, closed when the witness says to go.
    conn: Option<smb2::Connection>,
}

/// The SMB client's end: where to connect, and what it is connected to.
#[derive(Clone)]
pub struct WitnessLink {
    shared: Arc<Mutex<Shared>>,
    /// The SMB connection's address, with a count of connections made (a reconnect to the
    /// same address is a new connection to register for).
    address: Arc<watch::Sender<Option<(u64, Ipv4Addr)>>>,
}

impl WitnessLink {
    /// The address the witness moved this client to, if it did.
    pub fn home(&self) -> Option<Ipv4Addr> {
        lock(&self.shared).home
    }

    /// The SMB client connected to `address` with `conn`.
    pub fn connected(&self, address: Ipv4Addr, conn: smb2::Connection) {
        lock(&self.shared).conn = Some(conn);
        self.address
            .send_modify(|a| *a = Some((a.map_or(1, |(n, _)| n + 1), address)));
    }

    /// The SMB client lost its connection.
    pub fn disconnected(&self) {
        lock(&self.shared).conn = None;
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything the witness loop of one SMB client needs.
pub struct WitnessLoop<'a> {
    pub lab: &'a Lab,
    pub history: &'a HistoryWriter,
    pub process: u64,
    /// The client node (where connections come from).
    pub node: &'a str,
    /// The logical client (`c1/0`).
    pub client: String,
    /// The cluster's NetBIOS name: what RegisterEx's NetName must be.
    pub net_name: String,
    pub share: String,
    shared: Arc<Mutex<Shared>>,
    address: watch::Receiver<Option<(u64, Ipv4Addr)>>,
}

/// A link for the SMB client and the loop that serves it.
pub fn pair<'a>(
    lab: &'a Lab,
    history: &'a HistoryWriter,
    process: u64,
    node: &'a str,
    client: String,
    cluster: &str,
    share: String,
) -> (WitnessLink, WitnessLoop<'a>) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (tx, rx) = watch::channel(None);
    let net_name: String = cluster.to_uppercase().chars().take(15).collect();
    (
        WitnessLink {
            shared: shared.clone(),
            address: Arc::new(tx),
        },
        WitnessLoop {
            lab,
            history,
            process,
            node,
            client,
            net_name,
            share,
            shared,
            address: rx,
        },
    )
}

/// How a registration ended.
enum Ended {
    /// The client was told to go to `to` (its connection has been closed).
    Moved,
    /// The SMB client now uses another address: register for that one.
    AddressChanged,
    /// The witness went away (or refused): register again elsewhere.
    Lost,
}

fn step<T>(
    what: &'static str,
    r: Result<Result<T, witness::Error>, tokio::time::error::Elapsed>,
) -> Result<T, String> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {STEP_TIMEOUT:?}")),
    }
}

impl WitnessLoop<'_> {
    fn record(&self, f: Op, value: Value) {
        let recorded = self.history.append(Entry {
            process: Process::Worker(self.process),
            kind: OpType::Info,
            f: f.into(),
            node: Some(self.node.to_string()),
            value,
            status: None,
            smb: Smb {
                client: Some(self.client.clone()),
                ..Default::default()
            },
        });
        if let Err(e) = recorded {
            tracing::error!("history: a witness event could not be recorded: {e}");
        }
    }

    fn credentials(&self) -> Credentials {
        let (user, password) = self.lab.credentials();
        Credentials::new(user, password)
    }

    /// Endpoint mapper on `at`:135, then a bind at packet privacy to the witness endpoint.
    async fn associate(&self, at: Ipv4Addr) -> Result<WitnessClient, String> {
        let stream = tokio::time::timeout(
            STEP_TIMEOUT,
            self.lab.connect(self.node, SocketAddr::from((at, 135))),
        )
        .await
        .map_err(|_| format!("connect to {at}:135: no answer within {STEP_TIMEOUT:?}"))?
        .map_err(|e| format!("connect to {at}:135: {e}"))?;
        let port = step(
            "ept_map",
            tokio::time::timeout(STEP_TIMEOUT, witness::client::ept_map_witness_on(stream)).await,
        )?;
        let stream = tokio::time::timeout(
            STEP_TIMEOUT,
            self.lab.connect(self.node, SocketAddr::from((at, port))),
        )
        .await
        .map_err(|_| format!("connect to {at}:{port}: no answer within {STEP_TIMEOUT:?}"))?
        .map_err(|e| format!("connect to {at}:{port}: {e}"))?;
        step(
            "bind",
            tokio::time::timeout(
                STEP_TIMEOUT,
                WitnessClient::bind_stream(stream, &self.credentials(), AuthLevel::PktPrivacy),
            )
            .await,
        )
    }

    /// Until `stop` fires: register for the address the SMB client uses, wait for
    /// notifications, act on them.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // Witness interfaces that just failed us, tried last next time.
        let mut shunned: Vec<Ipv4Addr> = Vec::new();
        // After a move, the connection that the move ended is not registered for again.
        let mut after = 0;
        loop {
            let (generation, address) = tokio::select! {
                _ = stop.changed() => return,
                a = self.address.wait_for(|a| a.is_some_and(|(n, _)| n > after)) => match a {
                    Ok(a) => (*a).unwrap_or((0, Ipv4Addr::UNSPECIFIED)),
                    Err(_) => return,
                },
            };
            let ended = tokio::select! {
                _ = stop.changed() => return,
                e = self.register_and_wait(address, &mut shunned) => e,
            };
            match ended {
                Ended::Moved => after = generation,
                Ended::AddressChanged => {}
                Ended::Lost => {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    /// One registration for `address`, from GetInterfaceList to its end.
    async fn register_and_wait(&mut self, address: Ipv4Addr, shunned: &mut Vec<Ipv4Addr>) -> Ended {
        let began = Instant::now();
        // The interface list, from the node serving the SMB connection.
        let listed = async {
            let c = self.associate(address).await?;
            step(
                "GetInterfaceList",
                tokio::time::timeout(STEP_TIMEOUT, c.get_interface_list()).await,
            )
        }
        .await;
        let interfaces = match listed {
            Ok(l) => l,
            Err(e) => return self.failed(address, address, began, e),
        };
        // Another node's interface (WITNESS_IF), available, not one that just failed us.
        let mut candidates: Vec<Ipv4Addr> = interfaces
            .iter()
            .filter(|i| i.is_witness_interface() && i.state == witness::swn::if_state::AVAILABLE)
            .filter_map(|i| i.ipv4())
            .filter(|a| *a != address)
            .collect();
        // The lowest address first (a plan can tell which node holds a client's witness),
        // any that just failed this client last.
        candidates.sort_by_key(|a| (shunned.contains(a), *a));
        let Some(&at) = candidates.first() else {
            return self.failed(
                address,
                address,
                began,
                format!("GetInterfaceList offered no witness interface: {interfaces:?}"),
            );
        };
        let args = RegisterEx {
            net_name: self.net_name.clone(),
            share_name: Some(self.share.clone()),
            ip_address: address.to_string(),
            client_computer_name: self.client.replace('/', "-").to_uppercase(),
            flags: WITNESS_REGISTER_IP_NOTIFICATION,
            timeout: NOTIFY_TIMEOUT_S,
        };
        let registered = async {
            let c = self.associate(at).await?;
            let h = step(
                "RegisterEx",
                tokio::time::timeout(STEP_TIMEOUT, c.register_ex(&args)).await,
            )?;
            Ok::<_, String>((c, h))
        }
        .await;
        let (client, handle) = match registered {
            Ok(r) => r,
            Err(e) => {
                shunned.push(at);
                return self.failed(at, address, began, e);
            }
        };
        shunned.retain(|a| *a != at);
        self.registered(at, address, began, None);
        loop {
            let notify = tokio::time::timeout(
                Duration::from_secs(NOTIFY_TIMEOUT_S.into()) + NOTIFY_SLACK,
                client.async_notify(&handle),
            );
            let answer = tokio::select! {
                changed = self.address.wait_for(|a| a.is_some_and(|(_, a)| a != address)) => {
                    if changed.is_ok() {
                        let _ = tokio::time::timeout(STEP_TIMEOUT, client.unregister(&handle)).await;
                        return Ended::AddressChanged;
                    }
                    // The SMB client is gone: nothing more to watch for.
                    std::future::pending().await
                }
                a = notify => a,
            };
            let resp = match answer {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) if e.werror() == Some(werror::ERROR_TIMEOUT) => continue,
                Ok(Err(e)) => return self.lost(at, shunned, e.to_string()),
                Err(_) => {
                    return self.lost(
                        at,
                        shunned,
                        format!(
                            "AsyncNotify unanswered for {}s, past its {NOTIFY_TIMEOUT_S}s timeout",
                            NOTIFY_TIMEOUT_S as u64 + NOTIFY_SLACK.as_secs()
                        ),
                    )
                }
            };
            let to = destination(&resp, address, at);
            self.record(Op::WitnessNotify, notify_value(&resp, to).into());
            if let Some(to) = to {
                let conn = {
                    let mut s = lock(&self.shared);
                    s.home = Some(to);
                    s.conn.take()
                };
                self.record(
                    Op::WitnessMove,
                    WitnessMove {
                        from: address.to_string(),
                        to: to.to_string(),
                        message_type: type_name(resp.message_type).into(),
                    }
                    .into(),
                );
                if let Some(conn) = conn {
                    conn.close().await;
                }
                // A registration for an address the client leaves is of no more use (Samba
                // drops a moved one by itself 5 s later).
                let _ = tokio::time::timeout(STEP_TIMEOUT, client.unregister(&handle)).await;
                // Register for the new address once the SMB client is connected there.
                return Ended::Moved;
            }
        }
    }

    fn failed(&self, at: Ipv4Addr, address: Ipv4Addr, began: Instant, error: String) -> Ended {
        self.registered(at, address, began, Some(error));
        Ended::Lost
    }

    /// The `witness_register` record of one attempt through witness `at` for `address`.
    fn registered(&self, at: Ipv4Addr, address: Ipv4Addr, began: Instant, error: Option<String>) {
        self.record(
            Op::WitnessRegister,
            WitnessRegister {
                witness: at.to_string(),
                address: address.to_string(),
                took_ms: began.elapsed().as_millis() as u64,
                error,
            }
            .into(),
        );
    }

    fn lost(&self, at: Ipv4Addr, shunned: &mut Vec<Ipv4Addr>, reason: String) -> Ended {
        shunned.push(at);
        self.record(
            Op::WitnessLost,
            WitnessLost {
                witness: at.to_string(),
                reason,
            }
            .into(),
        );
        Ended::Lost
    }
}

/// Where a notification sends a client connected to `address` whose witness is `witness`:
/// a move's first online address; for a RESOURCE_CHANGE about `address` (or the net name),
/// back to `address` when it is available again (another node took it over: the old
/// connection is dead) and to the witness's own interface (a live node) when unavailable.
fn destination(resp: &NotifyResponse, address: Ipv4Addr, witness: Ipv4Addr) -> Option<Ipv4Addr> {
    if let Some(to) = resp.move_target() {
        return Some(to);
    }
    if resp.message_type != notify_type::RESOURCE_CHANGE {
        return None;
    }
    resp.messages.iter().find_map(|m| match m {
        Notification::ResourceChange { state, name } => {
            let about_us = name.parse::<Ipv4Addr>().map_or(true, |a| a == address);
            match *state {
                _ if !about_us => None,
                resource_state::UNAVAILABLE => Some(witness),
                _ => Some(address),
            }
        }
        _ => None,
    })
}

fn type_name(t: u32) -> &'static str {
    match t {
        notify_type::RESOURCE_CHANGE => "resource_change",
        notify_type::CLIENT_MOVE => "client_move",
        notify_type::SHARE_MOVE => "share_move",
        notify_type::IP_CHANGE => "ip_change",
        _ => "unknown",
    }
}

fn addr_state(flags: u32) -> String {
    let mut s = Vec::new();
    if flags & ipaddr_flags::V4 != 0 {
        s.push("v4");
    }
    if flags & ipaddr_flags::V6 != 0 {
        s.push("v6");
    }
    if flags & ipaddr_flags::ONLINE != 0 {
        s.push("online");
    }
    if flags & ipaddr_flags::OFFLINE != 0 {
        s.push("offline");
    }
    s.join(" ")
}

fn notify_value(resp: &NotifyResponse, to: Option<Ipv4Addr>) -> WitnessNotify {
    let mut resources = Vec::new();
    for m in &resp.messages {
        match m {
            Notification::ResourceChange { state, name } => resources.push(WitnessResource {
                name: name.clone(),
                state: match *state {
                    resource_state::AVAILABLE => "available".into(),
                    resource_state::UNAVAILABLE => "unavailable".into(),
                    resource_state::UNKNOWN => "unknown".into(),
                    other => format!("{other:#x}"),
                },
            }),
            Notification::ClientMove(a)
            | Notification::ShareMove(a)
            | Notification::IpChange(a) => resources.extend(a.iter().map(|i| {
                WitnessResource {
                    name: i
                        .ipv4()
                        .map_or_else(|| i.ipv6.to_string(), |v| v.to_string()),
                    state: addr_state(i.flags),
                }
            })),
        }
    }
    WitnessNotify {
        message_type: type_name(resp.message_type).into(),
        resources,
        move_to: to.map(|a| a.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(state: u32, name: &str) -> NotifyResponse {
        NotifyResponse {
            message_type: notify_type::RESOURCE_CHANGE,
            messages: vec![Notification::ResourceChange {
                state,
                name: name.into(),
            }],
        }
    }

    #[test]
    fn where_a_notification_sends_the_client() {
        let (a, w) = (Ipv4Addr::new(198, 19, 0, 10), Ipv4Addr::new(198, 19, 0, 11));
        assert_eq!(
            destination(&change(resource_state::UNAVAILABLE, "198.19.0.10"), a, w),
            Some(w)
        );
        assert_eq!(
            destination(&change(resource_state::AVAILABLE, "198.19.0.10"), a, w),
            Some(a)
        );
        assert_eq!(
            destination(&change(resource_state::UNAVAILABLE, "198.19.0.12"), a, w),
            None
        );
        assert_eq!(
            destination(&change(resource_state::UNAVAILABLE, "CTDB"), a, w),
            Some(w)
        );
        let moved = NotifyResponse {
            message_type: notify_type::CLIENT_MOVE,
            messages: vec![Notification::ClientMove(vec![witness::IpAddrInfo {
                flags: ipaddr_flags::V4 | ipaddr_flags::ONLINE,
                ipv4: Ipv4Addr::new(198, 19, 0, 12),
                ipv6: std::net::Ipv6Addr::UNSPECIFIED,
            }])],
        };
        assert_eq!(
            destination(&moved, a, w),
            Some(Ipv4Addr::new(198, 19, 0, 12))
        );
        let v = notify_value(&moved, destination(&moved, a, w));
        assert_eq!(v.resources[0].state, "v4 online");
        assert_eq!(v.move_to.as_deref(), Some("198.19.0.12"));
    }
}
