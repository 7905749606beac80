//! TCP resets the way a failover delivers them: SOCK_DESTROY over sock_diag netlink makes the
//! kernel abort chosen established sockets and send the peer a RST.

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

use crate::netns::NetNs;
use crate::LabError;

/// Which established TCP sockets of a node to reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpFilter {
    pub local_port: Option<u16>,
    pub remote: Option<IpAddr>,
    pub remote_port: Option<u16>,
}

/// One socket that was reset: (local, remote).
pub type Reset = (SocketAddr, SocketAddr);

/// A sock_diag socket of one namespace, opened once when the node is made: a netlink
/// socket belongs to the namespace it was created in, so later resets need no thread that
/// enters the namespace (the cost that made reset p99 several ms).
pub struct SockDiag {
    socket: std::sync::Mutex<Socket>,
}

impl SockDiag {
    /// Open one inside `ns`.
    pub fn open_in(ns: &NetNs) -> Result<SockDiag, LabError> {
        let socket = ns.run(open)?;
        Ok(SockDiag {
            socket: std::sync::Mutex::new(socket),
        })
    }

    /// Destroy every established IPv4 TCP socket of its namespace matching `filter`.
    pub fn destroy(&self, filter: TcpFilter) -> Result<Vec<Reset>, LabError> {
        let socket = self.socket.lock().expect("sock_diag socket");
        destroy_with(&socket, filter)
    }
}

/// Destroy every established IPv4 TCP socket in `ns` matching `filter` (a socket of its own).
pub fn destroy(ns: &NetNs, filter: TcpFilter) -> Result<Vec<Reset>, LabError> {
    ns.run(move || destroy_with(&open()?, filter))
}

fn destroy_with(socket: &Socket, filter: TcpFilter) -> Result<Vec<Reset>, LabError> {
    {
        let mut done = Vec::new();
        for id in dump_established(socket)? {
            let matches = filter.local_port.is_none_or(|p| p == id.source_port)
                && filter.remote.is_none_or(|a| a == id.destination_address)
                && filter.remote_port.is_none_or(|p| p == id.destination_port);
            if matches {
                let pair = (
                    SocketAddr::new(id.source_address, id.source_port),
                    SocketAddr::new(id.destination_address, id.destination_port),
                );
                // Gone already (the other end's RST got there first): nothing to destroy.
                if destroy_one(socket, id)? {
                    done.push(pair);
                }
            }
        }
        Ok(done)
    }
}

fn open() -> Result<Socket, LabError> {
    let mut socket =
        Socket::new(NETLINK_SOCK_DIAG).map_err(|e| LabError::io("open sock_diag socket", e))?;
    socket
        .bind_auto()
        .map_err(|e| LabError::io("bind sock_diag socket", e))?;
    socket
        .connect(&NlAddr::new(0, 0))
        .map_err(|e| LabError::io("connect sock_diag socket", e))?;
    Ok(socket)
}

fn request(socket_id: SocketId, states: StateFlags) -> SockDiagMessage {
    SockDiagMessage::InetRequest(InetRequest {
        family: AF_INET,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states,
        socket_id,
    })
}

fn send<T: NetlinkSerializable + std::fmt::Debug>(
    socket: &Socket,
    flags: u16,
    payload: T,
) -> Result<(), LabError> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket
        .send(&buf, 0)
        .map_err(|e| LabError::io("send sock_diag request", e))?;
    Ok(())
}

/// Receive messages until `Done` or an ack/error, handing each inner message to `each`.
fn receive<T: NetlinkDeserializable>(
    socket: &Socket,
    mut each: impl FnMut(T),
) -> Result<(), LabError> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let size = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| LabError::io("read sock_diag", e))?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<T>::deserialize(&buf[offset..size])
                .map_err(|e| LabError::Other(format!("malformed sock_diag reply: {e}")))?;
            let len = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(inner) => each(inner),
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(err) => {
                    return match err.code {
                        None => Ok(()), // an ack
                        Some(code) => Err(LabError::sys(
                            "sock_diag SOCK_DESTROY (kernel needs CONFIG_INET_DIAG_DESTROY)",
                            nix::errno::Errno::from_raw(-code.get()),
                        )),
                    };
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

fn dump_established(socket: &Socket) -> Result<Vec<SocketId>, LabError> {
    Ok(dump(socket)?.into_iter().map(|(id, _)| id).collect())
}

fn dump(socket: &Socket) -> Result<Vec<(SocketId, u32)>, LabError> {
    send(
        socket,
        NLM_F_REQUEST | NLM_F_DUMP,
        request(SocketId::new_v4(), StateFlags::ESTABLISHED),
    )?;
    let mut ids = Vec::new();
    receive::<SockDiagMessage>(socket, |m| {
        if let SockDiagMessage::InetResponse(r) = m {
            ids.push((r.header.socket_id.clone(), r.header.inode));
        }
    })?;
    Ok(ids)
}

/// Established IPv4 TCP connections in `ns`: (local, remote, socket inode).
pub fn established(ns: &NetNs) -> Result<Vec<(SocketAddr, SocketAddr, u32)>, LabError> {
    ns.run(|| {
        let socket = open()?;
        Ok(dump(&socket)?
            .into_iter()
            .map(|(id, inode)| {
                (
                    SocketAddr::new(id.source_address, id.source_port),
                    SocketAddr::new(id.destination_address, id.destination_port),
                    inode,
                )
            })
            .collect())
    })
}

/// Destroy one socket; false if it no longer exists.
fn destroy_one(socket: &Socket, id: SocketId) -> Result<bool, LabError> {
    let destroy = SockDiagDestroy::new(request(id, StateFlags::all()));
    send(socket, NLM_F_REQUEST | NLM_F_ACK, destroy)?;
    match receive::<SockDiagDestroy>(socket, |_| {}) {
        Ok(()) => Ok(true),
        Err(LabError::Sys {
            source: nix::errno::Errno::ENOENT,
            ..
        }) => Ok(false),
        Err(e) => Err(e),
    }
}
