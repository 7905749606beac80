//! Truncated, garbled and random server bytes give errors, never panics:
//! exhaustive truncation of valid messages, then seeded random mutation.

use smb2::fuzzing;
use smb2::wire::create::CreateResponse;
use smb2::wire::create_contexts::*;
use smb2::wire::header::HeaderId;
use smb2::wire::negotiate::*;
use smb2::wire::*;
use smb2::{Guid, NtStatus};

fn header(command: Command) -> Vec<u8> {
    let mut b = Vec::new();
    HeaderRepr {
        credit_charge: 1,
        status: NtStatus::STATUS_SUCCESS,
        command,
        credit: 1,
        flags: HeaderFlags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: 1,
        id: HeaderId::Sync {
            reserved: 0,
            tree_id: 1,
        },
        session_id: 1,
        signature: [0; 16],
    }
    .emit(&mut b);
    b
}

/// Valid messages of every kind the client parses.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut m = header(Command::Negotiate);
    NegotiateResponse {
        security_mode: 1,
        dialect_revision: Dialect::SMB3_1_1,
        server_guid: Guid([1; 16]),
        capabilities: 0x7f,
        max_transact_size: 1 << 23,
        max_read_size: 1 << 23,
        max_write_size: 1 << 23,
        system_time: 0,
        server_start_time: 0,
        security_buffer: smb2::spnego::neg_token_init(b"hint"),
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![SHA_512],
                salt: vec![5; 32],
            },
            NegotiateContext::Encryption {
                ciphers: vec![CipherId::AES_128_GCM],
            },
            NegotiateContext::Signing {
                algorithms: vec![SigningAlgorithmId::AES_GMAC],
            },
        ],
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Create);
    CreateResponse {
        oplock_level: 0xff,
        file_id: FileId {
            persistent: 1,
            volatile: 2,
        },
        contexts: vec![
            CreateContext::DurableHandleResponseV2 {
                timeout: 60000,
                flags: 0,
            },
            CreateContext::Lease(Lease {
                lease_key: [3; 16],
                lease_state: 7,
                lease_flags: 0,
                lease_duration: 0,
                v2: Some(LeaseV2::default()),
            }),
            CreateContext::MaximalAccess {
                query_status: 0,
                maximal_access: 0x1f01ff,
            },
            CreateContext::OnDiskId {
                disk_file_id: 1,
                volume_id: 2,
            },
        ],
        ..Default::default()
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Create);
    smb2::CreateRequest::new("a\\b.txt")
        .context(CreateContext::DurableHandleReconnectV2 {
            file_id: FileId::default(),
            create_guid: Guid([9; 16]),
            flags: 0,
        })
        .context(CreateContext::AppInstanceId(Guid([8; 16])))
        .emit(&mut m);
    out.push(m);
    let mut m = header(Command::SessionSetup);
    session_setup::SessionSetupResponse {
        session_flags: 0,
        security_buffer: smb2::spnego::neg_token_resp(b"NTLMSSP\0\x02\0\0\0"),
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::TreeConnect);
    tree_connect::TreeConnectResponse::default().emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Read);
    read::ReadResponse {
        data_remaining: 0,
        flags: 0,
        data: b"abcdef".to_vec(),
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Write);
    write::WriteResponse::default().emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::QueryInfo);
    info::QueryInfoResponse {
        output: vec![0; 24],
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Ioctl);
    ioctl::IoctlResponse {
        ctl_code: ioctl::FSCTL_QUERY_NETWORK_INTERFACE_INFO,
        file_id: FileId::ANY,
        input: Vec::new(),
        output: ioctl::emit_network_interfaces(&[
            ioctl::InterfaceRepr {
                if_index: 1,
                capability: ioctl::RSS_CAPABLE,
                link_speed: 1_000_000_000,
                address: "198.18.0.10".parse().unwrap(),
            },
            ioctl::InterfaceRepr {
                if_index: 2,
                capability: 0,
                link_speed: 10_000_000_000,
                address: "fd00::2".parse().unwrap(),
            },
        ]),
        flags: 0,
    }
    .emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Ioctl);
    ioctl::IoctlRequest::query_network_interface_info().emit(&mut m);
    out.push(m);
    let mut m = header(Command::OplockBreak);
    oplock_break::LeaseBreakNotification::default().emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Close);
    close::CloseResponse::default().emit_body(&mut m);
    out.push(m);
    let mut m = header(Command::Create);
    error_response::ErrorResponse {
        error_context_count: 0,
        error_data: vec![1, 2, 3],
    }
    .emit_body(&mut m);
    out.push(m);
    out.push(
        smb2::crypto::encryption::encrypt(
            smb2::crypto::encryption::Cipher::Aes128Gcm,
            &[0x42; 16],
            1,
            &out[0].clone(),
        )
        .unwrap(),
    );
    out
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for msg in corpus() {
        let full = fuzzing::all(&msg);
        assert!(full > 0, "a valid message parses somewhere");
        for n in 0..msg.len() {
            fuzzing::all(&msg[..n]);
        }
    }
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = Rng(0x5eed_5eed_1234_5678);
    let interesting = [0u8, 1, 0x7f, 0x80, 0xff, 0x40, 0x08];
    for msg in corpus() {
        for _ in 0..3_000 {
            let mut m = msg.clone();
            for _ in 0..1 + rng.below(8) {
                match rng.below(5) {
                    0 => {
                        let i = rng.below(m.len());
                        m[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(m.len());
                        m[i] = interesting[rng.below(interesting.len())];
                    }
                    2 if m.len() > 1 => {
                        let i = rng.below(m.len());
                        m.remove(i);
                    }
                    3 => {
                        let i = rng.below(m.len() + 1);
                        m.insert(i, rng.next() as u8);
                    }
                    _ => {
                        // Plausible-but-wrong 16/32-bit offset or length.
                        let i = rng.below(m.len().saturating_sub(4));
                        let v = (rng.next() as u32) >> rng.below(32);
                        m[i..i + 4].copy_from_slice(&v.to_le_bytes());
                    }
                }
                if m.is_empty() {
                    break;
                }
            }
            fuzzing::all(&m);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let n = rng.below(300);
        let mut m: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && m.len() >= 4 {
            m[..4].copy_from_slice(&[0xFE, b'S', b'M', b'B']);
        }
        fuzzing::all(&m);
    }
}

/// NETWORK_INTERFACE_INFO lists of random bytes around whole-entry lengths, with Next fields
/// that sometimes point at a plausible entry boundary, sometimes anywhere.
#[test]
fn random_interface_lists_never_panic() {
    use smb2::wire::ioctl::{parse_network_interfaces, NETWORK_INTERFACE_INFO_LEN};
    let mut rng = Rng(0x1f0_1f0);
    let mut parsed = 0;
    for _ in 0..20_000 {
        let entries = 1 + rng.below(4);
        let n = entries * NETWORK_INTERFACE_INFO_LEN + rng.below(40) - 20.min(entries * 20);
        let mut m: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        for e in 0..entries {
            let at = e * NETWORK_INTERFACE_INFO_LEN;
            if at + 26 > m.len() {
                break;
            }
            let next = match rng.below(3) {
                0 => 0,
                1 => NETWORK_INTERFACE_INFO_LEN as u32,
                _ => rng.next() as u32 >> rng.below(32),
            };
            m[at..at + 4].copy_from_slice(&next.to_le_bytes());
            m[at + 24] = [2u8, 0x17, rng.next() as u8][rng.below(3)];
            m[at + 25] = 0;
        }
        parsed += usize::from(parse_network_interfaces(&m).is_ok());
    }
    // The generator must reach the success path too, or it tests only the first check.
    assert!(parsed > 100, "only {parsed} random lists parsed");
}

/// With SMB2_FUZZ_SEEDS=<dir>, writes the valid corpus there as seeds for
/// every cargo-fuzz target (`<dir>/<target>/seed-N`).
#[test]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("SMB2_FUZZ_SEEDS") else {
        return;
    };
    let targets = [
        "header",
        "negotiate",
        "session_setup",
        "tree_connect",
        "create",
        "create_contexts",
        "read",
        "write",
        "info",
        "ioctl",
        "oplock_break",
        "error_response",
        "small_bodies",
        "transform",
        "signing",
        "ntlm",
        "spnego",
    ];
    for t in targets {
        let d = std::path::Path::new(&dir).join(t);
        std::fs::create_dir_all(&d).unwrap();
        for (i, m) in corpus().iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i}")), m).unwrap();
            // Bodies without the header, for the chain and token parsers.
            if m.len() > 64 {
                std::fs::write(d.join(format!("body-{i}")), &m[64..]).unwrap();
            }
        }
    }
}
