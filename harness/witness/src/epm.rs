//! The endpoint mapper (C706 appendix L and O; MS-RPCE 2.2.1.2): `ept_map` asks which TCP
//! port serves an interface. A protocol tower is a list of floors, each a left-hand side
//! (protocol id and data) and a right-hand side, little-endian and unaligned, except that
//! ports and addresses are big-endian.

use std::net::Ipv4Addr;

use crate::ndr::{self, ContextHandle, NdrError, Uuid};
use crate::pdu::{Syntax, NDR20};

/// The endpoint mapper interface, v3.0, on TCP port 135.
pub const EPMAPPER: Syntax = Syntax::new(
    match Uuid::parse("e1af8308-5d1f-11c9-91a4-08002b14a0fa") {
        Some(u) => u,
        None => panic!("epmapper uuid"),
    },
    3,
    0,
);
pub const EPM_PORT: u16 = 135;
/// ept_map's opnum.
pub const OPNUM_EPT_MAP: u16 = 3;
/// ept_map status when nothing is registered for the interface.
pub const EPT_S_NOT_REGISTERED: u32 = 0x16c9_a0d6;

const PROTO_UUID: u8 = 0x0d;
const PROTO_NCACN: u8 = 0x0b;
const PROTO_TCP: u8 = 0x07;
const PROTO_IP: u8 = 0x09;

/// A TCP/IP tower for one interface: what ept_map takes and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpTower {
    pub interface: Syntax,
    pub transfer: Syntax,
    pub port: u16,
    pub address: Ipv4Addr,
}

fn floor(b: &mut Vec<u8>, lhs: &[u8], rhs: &[u8]) {
    b.extend_from_slice(&(lhs.len() as u16).to_le_bytes());
    b.extend_from_slice(lhs);
    b.extend_from_slice(&(rhs.len() as u16).to_le_bytes());
    b.extend_from_slice(rhs);
}

fn uuid_floor(b: &mut Vec<u8>, s: &Syntax) {
    let mut lhs = vec![PROTO_UUID];
    lhs.extend_from_slice(&s.uuid.to_le_bytes());
    lhs.extend_from_slice(&((s.version & 0xffff) as u16).to_le_bytes());
    floor(b, &lhs, &((s.version >> 16) as u16).to_le_bytes());
}

fn bad(detail: impl Into<String>) -> NdrError {
    NdrError::Malformed {
        what: "protocol tower",
        detail: detail.into(),
    }
}

impl TcpTower {
    /// The tower octets.
    pub fn emit(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&5u16.to_le_bytes());
        uuid_floor(&mut b, &self.interface);
        uuid_floor(&mut b, &self.transfer);
        floor(&mut b, &[PROTO_NCACN], &[0, 0]);
        floor(&mut b, &[PROTO_TCP], &self.port.to_be_bytes());
        floor(&mut b, &[PROTO_IP], &self.address.octets());
        b
    }

    /// Reads tower octets; `None` for a well-formed tower that is not TCP/IP.
    pub fn parse(octets: &[u8]) -> Result<Option<TcpTower>, NdrError> {
        let mut r = ndr::Reader::new(octets);
        let n = u16::from_le_bytes(r.array("floor count")?);
        let mut floors = Vec::new();
        for _ in 0..n {
            let l = u16::from_le_bytes(r.array("lhs length")?) as usize;
            let lhs = r.take(l, "lhs")?;
            let rl = u16::from_le_bytes(r.array("rhs length")?) as usize;
            let rhs = r.take(rl, "rhs")?;
            floors.push((lhs, rhs));
        }
        let syntax = |(lhs, rhs): (&[u8], &[u8])| -> Result<Syntax, NdrError> {
            if lhs.len() != 19 || lhs[0] != PROTO_UUID || rhs.len() != 2 {
                return Err(bad("a UUID floor is not 19+2 bytes"));
            }
            let mut u = [0u8; 16];
            u.copy_from_slice(&lhs[1..17]);
            Ok(Syntax::new(
                Uuid::from_le_bytes(u),
                u16::from_le_bytes([lhs[17], lhs[18]]),
                u16::from_le_bytes([rhs[0], rhs[1]]),
            ))
        };
        if floors.len() < 5 {
            return Ok(None);
        }
        let proto = |i: usize| floors[i].0.first().copied();
        if proto(2) != Some(PROTO_NCACN)
            || proto(3) != Some(PROTO_TCP)
            || proto(4) != Some(PROTO_IP)
        {
            return Ok(None);
        }
        let (port, ip) = (floors[3].1, floors[4].1);
        if port.len() != 2 || ip.len() != 4 {
            return Err(bad("TCP port or IP floor has the wrong length"));
        }
        Ok(Some(TcpTower {
            interface: syntax(floors[0])?,
            transfer: syntax(floors[1])?,
            port: u16::from_be_bytes([port[0], port[1]]),
            address: Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        }))
    }
}

/// ept_map's request stub: no object, the tower for `interface` over TCP, a null entry
/// handle, at most `max_towers` answers.
pub fn ept_map_request(interface: Syntax, max_towers: u32) -> Vec<u8> {
    let tower = TcpTower {
        interface,
        transfer: NDR20,
        port: 0,
        address: Ipv4Addr::UNSPECIFIED,
    }
    .emit();
    let mut w = ndr::Writer::new();
    // [in, ptr] GUID *object: a nil object, as Windows sends it.
    w.referent();
    w.uuid(&Uuid::default());
    // [in, ptr] twr_t *map_tower: conformant struct (max_count hoisted), length, octets.
    w.referent();
    w.u32(tower.len() as u32);
    w.u32(tower.len() as u32);
    w.bytes(&tower);
    w.handle(&ContextHandle::default());
    w.u32(max_towers);
    w.into_bytes()
}

/// ept_map's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EptMapResponse {
    pub entry_handle: ContextHandle,
    /// TCP/IP towers answered (others skipped).
    pub towers: Vec<TcpTower>,
    pub status: u32,
}

impl EptMapResponse {
    pub fn parse(stub: &[u8]) -> Result<EptMapResponse, NdrError> {
        let mut r = ndr::Reader::new(stub);
        let entry_handle = r.handle("entry_handle")?;
        let num = r.u32("num_towers")? as usize;
        let n = r.varying(4, "towers")?;
        if n != num {
            return Err(bad(format!("num_towers {num} but {n} pointers")));
        }
        let mut present = Vec::with_capacity(n);
        for _ in 0..n {
            present.push(r.pointer("tower pointer")?);
        }
        let mut towers = Vec::new();
        for _ in present.iter().filter(|&&p| p) {
            let max = r.count(1, "tower max_count")?;
            let len = r.u32("tower_length")? as usize;
            if len != max {
                return Err(bad(format!("tower_length {len} but max_count {max}")));
            }
            let octets = r.take(len, "tower octets")?;
            if let Some(t) = TcpTower::parse(octets)? {
                towers.push(t);
            }
        }
        let status = r.status("ept_map status")?;
        Ok(EptMapResponse {
            entry_handle,
            towers,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swn::WITNESS;

    fn response(towers: &[TcpTower], status: u32) -> Vec<u8> {
        let mut w = ndr::Writer::new();
        w.handle(&ContextHandle::default());
        w.u32(towers.len() as u32);
        w.u32(4);
        w.u32(0);
        w.u32(towers.len() as u32);
        for _ in towers {
            w.referent();
        }
        for t in towers {
            let o = t.emit();
            w.u32(o.len() as u32);
            w.u32(o.len() as u32);
            w.bytes(&o);
        }
        w.u32(status);
        w.into_bytes()
    }

    #[test]
    fn tower_round_trips_and_request_carries_it() {
        let t = TcpTower {
            interface: WITNESS,
            transfer: NDR20,
            port: 49153,
            address: Ipv4Addr::new(198, 18, 0, 3),
        };
        let o = t.emit();
        assert_eq!(
            o.len(),
            75,
            "5 floors: 2 + 2*(2+19+2+2) + 3*(2+1+2) + 2 + 2"
        );
        assert_eq!(TcpTower::parse(&o).unwrap(), Some(t));
        // The request's tower is the same with port and address left zero.
        let asked = TcpTower {
            port: 0,
            address: Ipv4Addr::UNSPECIFIED,
            ..t
        }
        .emit();
        let req = ept_map_request(WITNESS, 4);
        // object pointer + GUID, tower pointer, max_count, tower_length, then the octets.
        assert_eq!(&req[32..32 + asked.len()], &asked[..]);
        assert_eq!(req.len(), 32 + asked.len() + 1 + 20 + 4);
    }

    #[test]
    fn response_parses_and_truncations_fail() {
        let t = TcpTower {
            interface: WITNESS,
            transfer: NDR20,
            port: 49154,
            address: Ipv4Addr::new(198, 18, 0, 3),
        };
        let b = response(&[t, t], 0);
        let r = EptMapResponse::parse(&b).unwrap();
        assert_eq!(r.towers, vec![t, t]);
        assert_eq!(r.status, 0);
        for n in 0..b.len() {
            assert!(EptMapResponse::parse(&b[..n]).is_err(), "{n}");
        }
        let none = response(&[], EPT_S_NOT_REGISTERED);
        assert_eq!(
            EptMapResponse::parse(&none).unwrap().status,
            EPT_S_NOT_REGISTERED
        );
    }
}
