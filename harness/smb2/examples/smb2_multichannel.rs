//! Multichannel bulk throughput over two rate-capped networks: the same WRITE then READ of
//! SIZE_MB over one channel and over two, in a lab of its own (root and Samba needed, as the
//! lab tests). The server and the client join two networks, `a` and `b`, each capped at
//! RATE_MBIT per link and direction by the lab's userspace wire (seed 004's two teams, in
//! proportion). One channel: a session to the server's address on `a`. Two channels: a
//! session to `a` that asked the server for its interfaces and bound a channel to its address
//! on `b`. smbclient 4.17 has no client multichannel (smb.conf has no such client option;
//! only `server multi channel support`), so its column is what it does: one connection over
//! `a`, `get`/`put` of the same file. Runs alternate (ours one, ours two, smbclient, ...);
//! prints each run, the medians, the ratios two/one and two/smbclient, and the bytes each
//! channel and each network carried.
//!
//!     cargo run --release -p smbchaos-smb2 --example smb2_multichannel -- [RUNS] [SIZE_MB] [RATE_MBIT]
//!
//! (`scripts/bench/multichannel` runs it.)

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::mc::*;
use common::*;
use lab::{Lab, LabOptions};
use smb2::*;

fn plan(rate: u64) -> String {
    format!(
        r#"
version: 1
name: smb2-multichannel-bench
topology:
  networks:
    - {{ name: a, subnet: 198.18.1.0/24, rate: {rate}mbit }}
    - {{ name: b, subnet: 198.18.2.0/24, rate: {rate}mbit }}
  servers:
    - name: fs1
      networks: [a, b]
      global:
        server multi channel support: "yes"
  clients:
    - {{ name: c1, networks: [a, b] }}
"#
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A session on the server's address on `a`, as a MultiChannel, and the interfaces it got.
async fn session(lab: &Lab, guid: Guid) -> (MultiChannel, Vec<InterfaceRepr>) {
    let a = lab.address_on("fs1", "a").unwrap();
    let target: SocketAddr = (a, 445).into();
    let (conn, _events) = Connection::new(lab.connect("c1", target).await.expect("connect"));
    conn.negotiate(&negotiate_request(guid), &RequestOptions::default())
        .await
        .unwrap()
        .ok()
        .unwrap();
    let session = conn
        .session_setup(&SessionSetupOptions::new(creds(lab)))
        .await
        .expect("session setup");
    let tree = session
        .tree_connect(&format!(r"\\{a}\share"))
        .await
        .expect("tree connect");
    let interfaces = query_network_interfaces(&tree).await.expect("interfaces");
    (
        MultiChannel::new(tree, target, Spread::RoundRobin),
        interfaces,
    )
}

/// smbclient `get` or `put` of `name` over `a`, timed as a whole process: MiB/s.
async fn smbclient(lab: &Lab, command: &str, size_mb: u64) -> f64 {
    let a = lab.address_on("fs1", "a").unwrap();
    let (user, password) = lab.credentials();
    let mut cmd = lab.command("c1", "smbclient").unwrap();
    cmd.arg(format!("//{a}/share"))
        .arg("-U")
        .arg(format!("{user}%{password}"))
        .args(["-m", "SMB3_11", "-c", command]);
    let t = Instant::now();
    let (ok, ended, out, err) = run_within(cmd, "smbclient", Duration::from_secs(600)).await;
    assert!(ok, "smbclient {command}: {ended}: {out}{err}");
    size_mb as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("RUNS SIZE_MB RATE_MBIT are numbers"))
        .collect();
    let runs = *a.first().unwrap_or(&5) as usize;
    let size_mb = *a.get(1).unwrap_or(&64);
    let rate = *a.get(2).unwrap_or(&100);
    let p = plan::parse_str("smb2-multichannel-bench.yaml", &plan(rate)).expect("plan");
    let lab = Lab::up(&p, LabOptions::for_test("smb2-multichannel-bench"))
        .await
        .expect("lab up");
    let b = IpAddr::V4(lab.address_on("fs1", "b").unwrap());

    let (one, _) = session(&lab, Guid::random()).await;
    let two_guid = Guid::random();
    let (two, interfaces) = session(&lab, two_guid).await;
    let lab_ref = &lab;
    let connect = |s: SocketAddr| async move {
        lab_ref
            .connect("c1", s)
            .await
            .map_err(std::io::Error::other)
    };
    two.add_channels(
        &interfaces,
        &ChannelSetup {
            channels: 2,
            constraint: &ChannelConstraint::default(),
            port: 445,
            negotiate: &negotiate_request(two_guid),
            credentials: &creds(&lab),
        },
        connect,
    )
    .await
    .expect("bind the second channel");
    let bound: Vec<IpAddr> = two.report().iter().map(|c| c.server.ip()).collect();
    assert_eq!(bound.get(1), Some(&b), "interfaces {interfaces:?}");
    let one_name = unique("bench1");
    let one_file = create(&one, &one_name).await;
    let two_file = create(&two, &unique("bench2")).await;
    // smbclient puts a local copy of the file ours wrote, then gets what it put (ours holds its
    // own file open without sharing).
    let local = tempfile_path();

    let mut results: [(Vec<f64>, Vec<f64>); 3] = Default::default();
    for run in 0..runs {
        let order: [usize; 3] = if run % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] };
        for side in order {
            let (w, r) = if side == 2 {
                if !local.exists() {
                    continue; // ours writes the file smbclient reads first
                }
                let w = smbclient(
                    &lab,
                    &format!("put {} sc-{one_name}", local.display()),
                    size_mb,
                )
                .await;
                let r = smbclient(&lab, &format!("get sc-{one_name} /dev/null"), size_mb).await;
                (w, r)
            } else {
                let (mc, file) = if side == 0 {
                    (&one, one_file)
                } else {
                    (&two, two_file)
                };
                let t = Instant::now();
                bulk_write(mc, file, size_mb, 16, |_| {}).await;
                let w = size_mb as f64 / t.elapsed().as_secs_f64();
                let t = Instant::now();
                bulk_read(mc, file, size_mb, 16).await;
                let r = size_mb as f64 / t.elapsed().as_secs_f64();
                if side == 0 && !local.exists() {
                    let data: Vec<u8> = (0..size_mb)
                        .flat_map(|i| pattern(i * CHUNK as u64, CHUNK))
                        .collect();
                    std::fs::write(&local, data).expect("local copy");
                }
                (w, r)
            };
            let who = [
                "ours, 1 channel",
                "ours, 2 channels",
                "smbclient, 1 connection",
            ][side];
            println!("run {run} {who}: write {w:.1} MiB/s, read {r:.1} MiB/s");
            results[side].0.push(w);
            results[side].1.push(r);
        }
    }
    let _ = std::fs::remove_file(&local);
    let m = |i: usize| (median(results[i].0.clone()), median(results[i].1.clone()));
    let ((w1, r1), (w2, r2), (ws, rs)) = (m(0), m(1), m(2));
    println!(
        "median of {runs}, {size_mb} MiB, 1 MiB requests, 16 in flight, two networks each capped at {rate} Mbit/s:"
    );
    println!(
        "  write: ours one {w1:.1}, two {w2:.1}, smbclient {ws:.1} MiB/s; two/one {:.2}, two/smbclient {:.2}",
        w2 / w1,
        w2 / ws
    );
    println!(
        "  read:  ours one {r1:.1}, two {r2:.1}, smbclient {rs:.1} MiB/s; two/one {:.2}, two/smbclient {:.2}",
        r2 / r1,
        r2 / rs
    );
    for c in two.report() {
        println!(
            "  two-channel session, channel to {}: {} requests, {} MiB sent, {} MiB received",
            c.server,
            c.requests,
            c.bytes_sent >> 20,
            c.bytes_received >> 20
        );
    }
    for (link, c) in lab.all_link_counters() {
        if link.starts_with("c1.") {
            println!(
                "  link {link}: {} MiB out, {} MiB in",
                c.egress_bytes >> 20,
                c.ingress_bytes >> 20
            );
        }
    }
    lab.down().await.unwrap();
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "smbchaos-mc-bench-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ))
}
