//! Fuzz-style: every parser of the witness crate meets random bytes, truncations and
//! mutations of valid messages, and must answer with a value or an error, never a panic
//! (a panic fails the test) or an allocation beyond its input.

use std::net::{Ipv4Addr, Ipv6Addr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use witness::epm::{self, EptMapResponse, TcpTower};
use witness::ndr::{self, ContextHandle};
use witness::pdu::{self, BindAckRepr, Frame, ResponseRepr, SecTrailer, NDR20};
use witness::swn::{self, InterfaceInfo, InterfaceList, IpAddrInfo, Notification};

fn parse_all(b: &[u8]) {
    if let Ok(f) = Frame::parse(b) {
        // What the association does with a frame it accepted.
        let body = &b[f.body.clone()];
        let _ = BindAckRepr::parse(body);
        let _ = ResponseRepr::parse(body);
        let _ = pdu::parse_fault(body);
        let _ = pdu::parse_bind_nak(body);
        if let Some((_, v)) = &f.auth {
            let _ = smb2::ntlm::ChallengeMessage::parse(&b[v.clone()]);
        }
        let _ = f.trailer_offset();
    }
    let _ = Frame::frag_length_of(b);
    let _ = BindAckRepr::parse(b);
    let _ = EptMapResponse::parse(b);
    let _ = TcpTower::parse(b);
    let _ = InterfaceList::parse(b);
    let _ = swn::parse_register_response(b);
    let _ = swn::parse_status_response(b);
    let _ = swn::parse_async_notify_response(b);
    for t in 0..6 {
        let _ = swn::parse_messages(t, 3, b);
        let _ = swn::parse_messages(t, usize::MAX, b);
    }
    let mut r = ndr::Reader::new(b);
    let _ = r.string("s");
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let trailer = SecTrailer {
        auth_type: pdu::AUTHN_WINNT,
        auth_level: pdu::AuthLevel::PktPrivacy as u8,
        auth_pad_length: 4,
        auth_context_id: 1,
    };
    let body = ResponseRepr {
        alloc_hint: 12,
        context_id: 0,
        cancel_count: 0,
    }
    .emit(&[1; 12]);
    out.push(pdu::emit(pdu::ptype::RESPONSE, 3, 9, &body, Some((trailer, 16))).0);
    out.push(pdu::emit(pdu::ptype::FAULT, 3, 9, &[0; 16], None).0);
    let tower = TcpTower {
        interface: swn::WITNESS,
        transfer: NDR20,
        port: 49153,
        address: Ipv4Addr::new(198, 18, 0, 3),
    };
    out.push(tower.emit());
    let mut w = ndr::Writer::new();
    w.handle(&ContextHandle::default());
    w.u32(1);
    w.u32(4);
    w.u32(0);
    w.u32(1);
    w.referent();
    let t = tower.emit();
    w.u32(t.len() as u32);
    w.u32(t.len() as u32);
    w.bytes(&t);
    w.u32(0);
    out.push(w.into_bytes());
    let info = InterfaceInfo {
        group_name: "CL".into(),
        version: swn::WITNESS_V2,
        state: 1,
        ipv4: Ipv4Addr::new(198, 19, 0, 200),
        ipv6: Ipv6Addr::UNSPECIFIED,
        flags: 1,
    };
    let mut w = ndr::Writer::new();
    w.referent();
    w.u32(2);
    w.referent();
    w.u32(2);
    info.emit(&mut w);
    info.emit(&mut w);
    w.u32(0);
    out.push(w.into_bytes());
    let msgs = swn::emit_messages(&[
        Notification::ClientMove(vec![IpAddrInfo {
            flags: 9,
            ipv4: Ipv4Addr::new(198, 19, 0, 201),
            ipv6: Ipv6Addr::UNSPECIFIED,
        }]),
        Notification::ResourceChange {
            state: 0xff,
            name: "x".into(),
        },
    ]);
    let mut w = ndr::Writer::new();
    w.referent();
    w.u32(2);
    w.u32(msgs.len() as u32);
    w.u32(2);
    w.referent();
    w.u32(msgs.len() as u32);
    w.bytes(&msgs);
    w.u32(0);
    out.push(w.into_bytes());
    out.push(epm::ept_map_request(swn::WITNESS, 4));
    out
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5157_4e00);
    for _ in 0..20_000 {
        let n = rng.random_range(0..700);
        let b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        parse_all(&b);
    }
}

#[test]
fn truncated_and_mutated_valid_messages_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5157_4e01);
    for seed in seeds() {
        for n in 0..=seed.len() {
            parse_all(&seed[..n]);
        }
        for _ in 0..3_000 {
            let mut b = seed.clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..b.len());
                b[i] = match rng.random_range(0..4) {
                    0 => 0,
                    1 => 0xff,
                    2 => b[i].wrapping_add(1),
                    _ => rng.random(),
                };
            }
            if rng.random_bool(0.3) {
                b.truncate(rng.random_range(0..=b.len()));
            }
            parse_all(&b);
        }
    }
}
