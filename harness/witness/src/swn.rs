//! The Service Witness Protocol (MS-SWN) interface: its calls' stubs in NDR 2.0 and the
//! notifications WitnessrAsyncNotify returns, following MS-SWN 2.2 and Samba's
//! librpc/idl/witness.idl. Addresses are in network byte order everywhere (seen from Samba
//! 4.22); IP_ADDR_INFO_LIST's Length counts its own 12-byte header.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ndr::{self, utf16_until_nul, ContextHandle, NdrError, Uuid};
use crate::pdu::Syntax;

/// The witness interface, v1.1.
pub const WITNESS: Syntax = Syntax::new(
    match Uuid::parse("ccd8c074-d0e5-4a40-92b4-d074faa6ba28") {
        Some(u) => u,
        None => panic!("witness uuid"),
    },
    1,
    1,
);

/// Opnums (MS-SWN 3.1.4).
pub mod opnum {
    pub const GET_INTERFACE_LIST: u16 = 0;
    pub const REGISTER: u16 = 1;
    pub const UNREGISTER: u16 = 2;
    pub const ASYNC_NOTIFY: u16 = 3;
    pub const REGISTER_EX: u16 = 4;
}

/// WITNESS_V1 (Register) and WITNESS_V2 (RegisterEx).
pub const WITNESS_V1: u32 = 0x0001_0001;
pub const WITNESS_V2: u32 = 0x0002_0000;

/// Win32 errors the witness calls return (MS-ERREF 2.2).
pub mod werror {
    pub const ERROR_SUCCESS: u32 = 0;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_NO_MORE_ITEMS: u32 = 259;
    pub const ERROR_NOT_FOUND: u32 = 1168;
    pub const ERROR_REVISION_MISMATCH: u32 = 1306;
    pub const ERROR_TIMEOUT: u32 = 1460;
    pub const ERROR_INVALID_STATE: u32 = 5023;

    pub fn name(code: u32) -> &'static str {
        match code {
            ERROR_SUCCESS => "ERROR_SUCCESS",
            ERROR_ACCESS_DENIED => "ERROR_ACCESS_DENIED",
            ERROR_NOT_SUPPORTED => "ERROR_NOT_SUPPORTED",
            ERROR_INVALID_PARAMETER => "ERROR_INVALID_PARAMETER",
            ERROR_NO_MORE_ITEMS => "ERROR_NO_MORE_ITEMS",
            ERROR_NOT_FOUND => "ERROR_NOT_FOUND",
            ERROR_REVISION_MISMATCH => "ERROR_REVISION_MISMATCH",
            ERROR_TIMEOUT => "ERROR_TIMEOUT",
            ERROR_INVALID_STATE => "ERROR_INVALID_STATE",
            _ => "unknown WERROR",
        }
    }
}

/// WITNESS_INTERFACE_INFO flags.
pub mod if_flags {
    pub const IPV4_VALID: u32 = 0x01;
    pub const IPV6_VALID: u32 = 0x02;
    /// The interface may be used as a witness (it is not the one the client uses).
    pub const WITNESS_IF: u32 = 0x04;
}

/// WITNESS_INTERFACE_INFO State.
pub mod if_state {
    pub const UNKNOWN: u16 = 0x00;
    pub const AVAILABLE: u16 = 0x01;
    pub const UNAVAILABLE: u16 = 0xff;
}

/// One interface of the cluster (MS-SWN 2.2.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub group_name: String,
    pub version: u32,
    pub state: u16,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    pub flags: u32,
}

impl InterfaceInfo {
    /// Wire size: group_name[260] (520), version, state, pad, IPV4, IPV6[8], flags.
    pub const LEN: usize = 552;

    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        (self.flags & if_flags::IPV4_VALID != 0).then_some(self.ipv4)
    }

    pub fn is_witness_interface(&self) -> bool {
        self.flags & if_flags::WITNESS_IF != 0
    }

    fn read(r: &mut ndr::Reader<'_>) -> Result<InterfaceInfo, NdrError> {
        r.align(4, "interface")?;
        let group_name = utf16_until_nul(r.take(520, "InterfaceGroupName")?);
        let version = r.u32("Version")?;
        let state = r.u16("State")?;
        r.align(4, "IPV4")?;
        let ipv4 = Ipv4Addr::from(r.array::<4>("IPV4")?);
        let ipv6 = Ipv6Addr::from(r.array::<16>("IPV6")?);
        let flags = r.u32("Flags")?;
        Ok(InterfaceInfo {
            group_name,
            version,
            state,
            ipv4,
            ipv6,
            flags,
        })
    }

    /// Test helper and documentation of the layout: the element as Samba marshals it.
    pub fn emit(&self, w: &mut ndr::Writer) {
        w.align(4);
        let mut name: Vec<u8> = self
            .group_name
            .encode_utf16()
            .take(259)
            .flat_map(u16::to_le_bytes)
            .collect();
        name.resize(520, 0);
        w.bytes(&name);
        w.u32(self.version);
        w.u16(self.state);
        w.align(4);
        w.bytes(&self.ipv4.octets());
        w.bytes(&self.ipv6.octets());
        w.u32(self.flags);
    }
}

/// WitnessrGetInterfaceList's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceList {
    pub interfaces: Vec<InterfaceInfo>,
    pub status: u32,
}

impl InterfaceList {
    pub fn parse(stub: &[u8]) -> Result<InterfaceList, NdrError> {
        let mut r = ndr::Reader::new(stub);
        let mut interfaces = Vec::new();
        if r.pointer("InterfaceList")? {
            let num = r.u32("NumberOfInterfaces")? as usize;
            if r.pointer("InterfaceInfo")? {
                let n = r.count(InterfaceInfo::LEN, "InterfaceInfo count")?;
                if n != num {
                    return Err(NdrError::Malformed {
                        what: "InterfaceInfo",
                        detail: format!("NumberOfInterfaces {num} but array of {n}"),
                    });
                }
                for _ in 0..n {
                    interfaces.push(InterfaceInfo::read(&mut r)?);
                }
            }
        }
        Ok(InterfaceList {
            interfaces,
            status: r.status("GetInterfaceList status")?,
        })
    }
}

/// WitnessrRegister's request (MS-SWN 3.1.4.2).
pub fn register_request(net_name: &str, ip_address: &str, client_computer_name: &str) -> Vec<u8> {
    let mut w = ndr::Writer::new();
    w.u32(WITNESS_V1);
    w.unique_string(Some(net_name));
    w.unique_string(Some(ip_address));
    w.unique_string(Some(client_computer_name));
    w.into_bytes()
}

/// WITNESS_REGISTER_IP_NOTIFICATION: also tell the client of IP changes.
pub const WITNESS_REGISTER_IP_NOTIFICATION: u32 = 0x01;

/// WitnessrRegisterEx's arguments (MS-SWN 3.1.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterEx {
    /// The cluster's NetBIOS name (the name the client uses for the server).
    pub net_name: String,
    /// Share the client uses; `None` for none (no SHARE_MOVE notifications).
    pub share_name: Option<String>,
    /// The address the client's SMB connection uses.
    pub ip_address: String,
    pub client_computer_name: String,
    pub flags: u32,
    /// Seconds an AsyncNotify may stay outstanding before it times out.
    pub timeout: u32,
}

impl RegisterEx {
    pub fn emit(&self) -> Vec<u8> {
        let mut w = ndr::Writer::new();
        w.u32(WITNESS_V2);
        w.unique_string(Some(&self.net_name));
        w.unique_string(self.share_name.as_deref());
        w.unique_string(Some(&self.ip_address));
        w.unique_string(Some(&self.client_computer_name));
        w.u32(self.flags);
        w.u32(self.timeout);
        w.into_bytes()
    }
}

/// Register(Ex)'s answer: the context handle and status.
pub fn parse_register_response(stub: &[u8]) -> Result<(ContextHandle, u32), NdrError> {
    let mut r = ndr::Reader::new(stub);
    let handle = r.handle("context_handle")?;
    Ok((handle, r.status("Register status")?))
}

/// UnRegister and AsyncNotify both take just the context handle.
pub fn handle_request(handle: &ContextHandle) -> Vec<u8> {
    let mut w = ndr::Writer::new();
    w.handle(handle);
    w.into_bytes()
}

/// UnRegister's answer.
pub fn parse_status_response(stub: &[u8]) -> Result<u32, NdrError> {
    ndr::Reader::new(stub).status("status")
}

/// Notification types (MS-SWN 2.2.2.4 MessageType).
pub mod notify_type {
    pub const RESOURCE_CHANGE: u32 = 1;
    pub const CLIENT_MOVE: u32 = 2;
    pub const SHARE_MOVE: u32 = 3;
    pub const IP_CHANGE: u32 = 4;
}

/// RESOURCE_CHANGE types.
pub mod resource_state {
    pub const UNKNOWN: u32 = 0x00;
    pub const AVAILABLE: u32 = 0x01;
    pub const UNAVAILABLE: u32 = 0xff;
}

/// IPADDR_INFO flags.
pub mod ipaddr_flags {
    pub const V4: u32 = 0x01;
    pub const V6: u32 = 0x02;
    pub const ONLINE: u32 = 0x08;
    pub const OFFLINE: u32 = 0x10;
}

/// One address in a move or IP-change notification (MS-SWN 2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpAddrInfo {
    pub flags: u32,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

impl IpAddrInfo {
    pub const LEN: usize = 24;

    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        (self.flags & ipaddr_flags::V4 != 0).then_some(self.ipv4)
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A resource (a net name or address) became available or unavailable.
    ResourceChange { state: u32, name: String },
    /// Move to one of these addresses.
    ClientMove(Vec<IpAddrInfo>),
    /// The share moved: reconnect the share to one of these addresses.
    ShareMove(Vec<IpAddrInfo>),
    /// The server's addresses changed.
    IpChange(Vec<IpAddrInfo>),
}

/// RESP_ASYNC_NOTIFY (MS-SWN 2.2.2.4): the messages of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyResponse {
    pub message_type: u32,
    pub messages: Vec<Notification>,
}

impl NotifyResponse {
    /// Where this notification tells the client to take its SMB connection (MS-SWN
    /// 3.2.4.5.1: CLIENT_MOVE, or SHARE_MOVE for the share): the first address offered
    /// online. `None` for RESOURCE_CHANGE and IP_CHANGE, which move nothing by themselves.
    pub fn move_target(&self) -> Option<Ipv4Addr> {
        self.messages.iter().find_map(|m| match m {
            Notification::ClientMove(a) | Notification::ShareMove(a) => a
                .iter()
                .filter(|i| i.flags & ipaddr_flags::ONLINE != 0)
                .find_map(IpAddrInfo::ipv4),
            _ => None,
        })
    }
}

/// AsyncNotify's answer: the notification (absent when the call failed) and status.
pub fn parse_async_notify_response(stub: &[u8]) -> Result<(Option<NotifyResponse>, u32), NdrError> {
    let mut r = ndr::Reader::new(stub);
    let mut response = None;
    if r.pointer("RESP_ASYNC_NOTIFY")? {
        let message_type = r.u32("MessageType")?;
        let length = r.u32("Length")? as usize;
        let num = r.u32("NumberOfMessages")? as usize;
        let buffer = if r.pointer("MessageBuffer")? {
            let n = r.count(1, "MessageBuffer size")?;
            if n != length {
                return Err(NdrError::Malformed {
                    what: "MessageBuffer",
                    detail: format!("Length {length} but array of {n}"),
                });
            }
            r.take(n, "MessageBuffer")?
        } else {
            &[]
        };
        response = Some(NotifyResponse {
            message_type,
            messages: parse_messages(message_type, num, buffer)?,
        });
    }
    Ok((response, r.status("AsyncNotify status")?))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(what: &'static str, detail: impl Into<String>) -> NdrError {
    NdrError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// The messages in a MessageBuffer: unaligned, little-endian (NDR_NOALIGN in the IDL).
pub fn parse_messages(
    message_type: u32,
    num: usize,
    buf: &[u8],
) -> Result<Vec<Notification>, NdrError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..num {
        let rest = &buf[at.min(buf.len())..];
        if rest.len() < 4 {
            return Err(NdrError::Truncated("notification message length"));
        }
        match message_type {
            notify_type::RESOURCE_CHANGE => {
                // Length (of the whole message), ChangeType, ResourceName (NUL-terminated).
                let len = le32(rest, 0) as usize;
                if len < 8 || len > rest.len() {
                    return Err(bad("RESOURCE_CHANGE", format!("length {len}")));
                }
                out.push(Notification::ResourceChange {
                    state: le32(rest, 4),
                    name: utf16_until_nul(&rest[8..len]),
                });
                at += len;
            }
            notify_type::CLIENT_MOVE | notify_type::SHARE_MOVE | notify_type::IP_CHANGE => {
                // Length (of the whole IP_ADDR_INFO_LIST, header included: Samba 4.22
                // sends 36 for one address), Reserved, IPAddrInstances, the addresses.
                if rest.len() < 12 {
                    return Err(NdrError::Truncated("IP_ADDR_INFO_LIST header"));
                }
                let len = le32(rest, 0) as usize;
                let n = le32(rest, 8) as usize;
                let want = n
                    .checked_mul(IpAddrInfo::LEN)
                    .and_then(|a| a.checked_add(12));
                if want != Some(len) || len > rest.len() {
                    return Err(bad(
                        "IP_ADDR_INFO_LIST",
                        format!("length {len} for {n} addresses in {} bytes", rest.len()),
                    ));
                }
                let addrs = rest[12..len]
                    .chunks_exact(IpAddrInfo::LEN)
                    .map(|a| {
                        let mut v6 = [0u8; 16];
                        v6.copy_from_slice(&a[8..24]);
                        IpAddrInfo {
                            flags: le32(a, 0),
                            // Network byte order, as Samba 4.22 sends it.
                            ipv4: Ipv4Addr::new(a[4], a[5], a[6], a[7]),
                            ipv6: Ipv6Addr::from(v6),
                        }
                    })
                    .collect();
                out.push(match message_type {
                    notify_type::CLIENT_MOVE => Notification::ClientMove(addrs),
                    notify_type::SHARE_MOVE => Notification::ShareMove(addrs),
                    _ => Notification::IpChange(addrs),
                });
                at += len;
            }
            other => return Err(bad("MessageType", format!("unknown type {other}"))),
        }
    }
    Ok(out)
}

/// Encodes messages as a server would (for tests and fuzz seeds).
pub fn emit_messages(messages: &[Notification]) -> Vec<u8> {
    let mut b = Vec::new();
    for m in messages {
        match m {
            Notification::ResourceChange { state, name } => {
                let name: Vec<u8> = name
                    .encode_utf16()
                    .chain(std::iter::once(0))
                    .flat_map(u16::to_le_bytes)
                    .collect();
                b.extend_from_slice(&((8 + name.len()) as u32).to_le_bytes());
                b.extend_from_slice(&state.to_le_bytes());
                b.extend_from_slice(&name);
            }
            Notification::ClientMove(a)
            | Notification::ShareMove(a)
            | Notification::IpChange(a) => {
                b.extend_from_slice(&((12 + a.len() * IpAddrInfo::LEN) as u32).to_le_bytes());
                b.extend_from_slice(&0u32.to_le_bytes());
                b.extend_from_slice(&(a.len() as u32).to_le_bytes());
                for i in a {
                    b.extend_from_slice(&i.flags.to_le_bytes());
                    b.extend_from_slice(&i.ipv4.octets());
                    b.extend_from_slice(&i.ipv6.octets());
                }
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(ip: [u8; 4], flags: u32) -> InterfaceInfo {
        InterfaceInfo {
            group_name: "CLUSTER".into(),
            version: u32::MAX,
            state: if_state::AVAILABLE,
            ipv4: Ipv4Addr::from(ip),
            ipv6: Ipv6Addr::UNSPECIFIED,
            flags,
        }
    }

    pub(crate) fn interface_list_stub(list: &[InterfaceInfo], status: u32) -> Vec<u8> {
        let mut w = ndr::Writer::new();
        w.referent();
        w.u32(list.len() as u32);
        w.referent();
        w.u32(list.len() as u32);
        for i in list {
            i.emit(&mut w);
        }
        w.u32(status);
        w.into_bytes()
    }

    #[test]
    fn interface_list_round_trips_and_element_is_552_bytes() {
        let list = vec![iface([198, 19, 0, 10], 0x01), iface([198, 19, 0, 11], 0x05)];
        let stub = interface_list_stub(&list, 0);
        assert_eq!(stub.len(), 4 + 4 + 4 + 4 + 2 * 552 + 4);
        let got = InterfaceList::parse(&stub).unwrap();
        assert_eq!(got.interfaces, list);
        assert_eq!(
            got.interfaces[1].ipv4(),
            Some(Ipv4Addr::new(198, 19, 0, 11))
        );
        assert!(got.interfaces[1].is_witness_interface());
        for n in 0..stub.len() {
            assert!(InterfaceList::parse(&stub[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn register_ex_layout() {
        let b = RegisterEx {
            net_name: "CL".into(),
            share_name: None,
            ip_address: "1".into(),
            client_computer_name: "c".into(),
            flags: 1,
            timeout: 30,
        }
        .emit();
        // version, ptr+max+off+act+"CL\0"(6)+pad2, null, ptr+12+"1\0"(4), ptr+12+"c\0"(4),
        // flags, timeout.
        assert_eq!(b.len(), 4 + 24 + 4 + 20 + 20 + 8);
        assert_eq!(&b[..4], &WITNESS_V2.to_le_bytes());
        assert_eq!(&b[b.len() - 4..], &30u32.to_le_bytes());
    }

    #[test]
    fn notifications_round_trip() {
        let moves = vec![IpAddrInfo {
            flags: ipaddr_flags::V4 | ipaddr_flags::ONLINE,
            ipv4: Ipv4Addr::new(198, 19, 0, 11),
            ipv6: Ipv6Addr::UNSPECIFIED,
        }];
        for (t, msgs) in [
            (
                notify_type::RESOURCE_CHANGE,
                vec![
                    Notification::ResourceChange {
                        state: resource_state::UNAVAILABLE,
                        name: "198.19.0.10".into(),
                    },
                    Notification::ResourceChange {
                        state: resource_state::AVAILABLE,
                        name: "CLUSTER".into(),
                    },
                ],
            ),
            (
                notify_type::CLIENT_MOVE,
                vec![Notification::ClientMove(moves.clone())],
            ),
            (
                notify_type::SHARE_MOVE,
                vec![Notification::ShareMove(moves.clone())],
            ),
            (
                notify_type::IP_CHANGE,
                vec![Notification::IpChange(moves.clone())],
            ),
        ] {
            let buf = emit_messages(&msgs);
            let mut w = ndr::Writer::new();
            w.referent();
            w.u32(t);
            w.u32(buf.len() as u32);
            w.u32(msgs.len() as u32);
            w.referent();
            w.u32(buf.len() as u32);
            w.bytes(&buf);
            w.u32(0);
            let stub = w.into_bytes();
            let (resp, status) = parse_async_notify_response(&stub).unwrap();
            assert_eq!(status, 0);
            assert_eq!(resp.unwrap().messages, msgs);
            for n in 0..stub.len() {
                assert!(parse_async_notify_response(&stub[..n]).is_err(), "{t} {n}");
            }
        }
    }

    #[test]
    fn move_target_is_the_first_online_address() {
        let at = |flags, last| IpAddrInfo {
            flags,
            ipv4: Ipv4Addr::new(198, 19, 0, last),
            ipv6: Ipv6Addr::UNSPECIFIED,
        };
        let r = |messages| NotifyResponse {
            message_type: 0,
            messages,
        };
        let offline = at(ipaddr_flags::V4 | ipaddr_flags::OFFLINE, 1);
        let online = at(ipaddr_flags::V4 | ipaddr_flags::ONLINE, 2);
        assert_eq!(
            r(vec![Notification::ClientMove(vec![offline, online])]).move_target(),
            Some(Ipv4Addr::new(198, 19, 0, 2))
        );
        assert_eq!(
            r(vec![Notification::ShareMove(vec![offline])]).move_target(),
            None
        );
        assert_eq!(
            r(vec![Notification::IpChange(vec![online])]).move_target(),
            None
        );
    }

    #[test]
    fn failed_async_notify_has_no_response() {
        let mut w = ndr::Writer::new();
        w.null();
        w.u32(werror::ERROR_NOT_FOUND);
        let (resp, status) = parse_async_notify_response(&w.into_bytes()).unwrap();
        assert_eq!((resp, status), (None, werror::ERROR_NOT_FOUND));
    }
}
