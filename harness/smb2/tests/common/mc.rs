//! Multichannel set-up shared by tests/samba_multichannel.rs and the multichannel benchmark
//! example: a server with two addresses on its one link, both in smb.conf's `interfaces`.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use lab::{Lab, LabOptions};
use smb2::wire::create::disposition;
use smb2::wire::read::ReadRequest;
use smb2::wire::write::WriteRequest;
use smb2::*;

pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
pub const SECOND: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 110);

pub const MC_PLAN: &str = r#"
version: 1
name: smb2-multichannel
topology:
  servers:
    - name: fs1
      address: 198.18.0.10
      global:
        server multi channel support: "yes"
        interfaces: '"198.18.0.10;speed=1000000000,capability=RSS" "198.18.0.110;speed=10000000000"'
  clients:
    - name: c1
"#;

/// The lab, with the server's second address in place and smbd restarted to see it.
pub async fn mc_lab(test: &str) -> Lab {
    mc_lab_with(test, MC_PLAN).await
}

/// As [`mc_lab`], with another plan (same server address and interfaces).
pub async fn mc_lab_with(test: &str, plan: &str) -> Lab {
    let plan = plan::parse_str("smb2-multichannel.yaml", plan).expect("plan");
    let lab = Lab::up(&plan, LabOptions::for_test(test))
        .await
        .expect("lab up");
    let mut ip = lab.command("fs1", "ip").unwrap();
    ip.args(["addr", "add", &format!("{SECOND}/15"), "dev", "eth0"]);
    let (ok, ended, out, err) = run_within(ip, "ip addr add", Duration::from_secs(10)).await;
    assert!(ok, "{ended}: {out}{err}");
    lab.server("fs1")
        .unwrap()
        .lock()
        .await
        .restart()
        .await
        .expect("smbd restart");
    lab
}

pub fn negotiate_request(guid: Guid) -> wire::negotiate::NegotiateRequest {
    multichannel_negotiate_request(default_negotiate_request(&[Dialect::SMB3_1_1], guid, false))
}

/// The session's first channel to PRIMARY, as a MultiChannel, and the interfaces it reported.
pub async fn first_channel(lab: &Lab, guid: Guid) -> (MultiChannel, Vec<InterfaceRepr>) {
    let target: SocketAddr = (PRIMARY, 445).into();
    let s = lab.connect("c1", target).await.expect("connect");
    let (conn, _events) = Connection::new(s);
    conn.negotiate(&negotiate_request(guid), &RequestOptions::default())
        .await
        .unwrap()
        .ok()
        .unwrap();
    let caps = conn.negotiated().unwrap().capabilities;
    assert_ne!(
        caps & wire::negotiate::capabilities::SMB2_GLOBAL_CAP_MULTI_CHANNEL,
        0,
        "the server did not offer multichannel"
    );
    let session = conn
        .session_setup(&SessionSetupOptions::new(creds(lab)))
        .await
        .expect("session setup");
    let tree = session
        .tree_connect(&format!(r"\\{PRIMARY}\share"))
        .await
        .expect("tree connect");
    let interfaces = query_network_interfaces(&tree).await.expect("interfaces");
    (
        MultiChannel::new(tree, target, Spread::RoundRobin),
        interfaces,
    )
}

pub async fn bind_all(lab: &Lab, mc: &MultiChannel, guid: Guid, interfaces: &[InterfaceRepr]) {
    let connect =
        |a: SocketAddr| async move { lab.connect("c1", a).await.map_err(std::io::Error::other) };
    mc.add_channels(
        interfaces,
        &ChannelSetup {
            channels: 2,
            constraint: &ChannelConstraint::default(),
            port: 445,
            negotiate: &negotiate_request(guid),
            credentials: &creds(lab),
        },
        connect,
    )
    .await
    .expect("bind the second channel");
    let live: Vec<IpAddr> = mc
        .report()
        .iter()
        .filter(|c| c.up)
        .map(|c| c.server.ip())
        .collect();
    assert_eq!(live, [IpAddr::V4(PRIMARY), IpAddr::V4(SECOND)]);
}

pub fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

pub const CHUNK: usize = 1 << 20;

/// Writes `chunks` MiB with `depth` requests in flight over `mc`; `on_progress` runs after each
/// acknowledged write with the count so far.
pub async fn bulk_write(
    mc: &MultiChannel,
    file_id: FileId,
    chunks: u64,
    depth: usize,
    on_progress: impl Fn(u64) + Send + Sync + 'static,
) {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let on_progress = Arc::new(on_progress);
    let mut tasks = Vec::new();
    for _ in 0..depth {
        let (mc, next, done, on_progress) =
            (mc.clone(), next.clone(), done.clone(), on_progress.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= chunks {
                    return;
                }
                let offset = i * CHUNK as u64;
                let w = WriteRequest {
                    offset,
                    file_id,
                    remaining_bytes: 0,
                    flags: 0,
                    data: pattern(offset, CHUNK),
                };
                let r = mc
                    .request(&w, &RequestOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("write at {offset}: {e}"));
                let count = r
                    .ok()
                    .unwrap_or_else(|e| panic!("write at {offset}: {e}"))
                    .count;
                assert_eq!(count as usize, CHUNK, "short write at {offset}");
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                on_progress(n);
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
}

/// Reads the whole file back over `mc` and compares it with the pattern.
pub async fn verify(mc: &MultiChannel, file_id: FileId, chunks: u64) {
    bulk_read(mc, file_id, chunks, 4).await
}

pub async fn create(mc: &MultiChannel, name: &str) -> FileId {
    mc.request(
        &CreateRequest {
            create_disposition: disposition::FILE_CREATE,
            ..CreateRequest::new(name)
        },
        &RequestOptions::default(),
    )
    .await
    .unwrap()
    .ok()
    .unwrap()
    .file_id
}

/// Reads `chunks` MiB with `depth` requests in flight over `mc`, checking each against the
/// pattern `bulk_write` wrote.
pub async fn bulk_read(mc: &MultiChannel, file_id: FileId, chunks: u64, depth: usize) {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..depth {
        let (mc, next) = (mc.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= chunks {
                    return;
                }
                let offset = i * CHUNK as u64;
                let r = mc
                    .request(
                        &ReadRequest {
                            length: CHUNK as u32,
                            offset,
                            file_id,
                            ..Default::default()
                        },
                        &RequestOptions::default(),
                    )
                    .await
                    .and_then(|r| r.ok())
                    .unwrap_or_else(|e| panic!("read at {offset}: {e}"));
                assert!(r.data == pattern(offset, CHUNK), "data differs in MiB {i}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("reader task");
    }
}
