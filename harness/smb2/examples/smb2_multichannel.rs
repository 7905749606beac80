//! Multichannel bulk throughput: the same WRITE then READ of SIZE_MB over one channel and
//! over two, in a lab of its own (root and Samba needed, as the lab tests). The server has
//! two addresses; each path (client→address for writes, address→client for reads) is capped
//! at RATE_MBIT by an HTB class on the sending side's eth0, as two 1 GbE-like links in
//! proportion would be. Runs alternate (one channel, two channels, ...); prints each run,
//! the medians, the ratio two/one, and the bytes each channel carried.
//!
//!     cargo run --release -p smbchaos-smb2 --example smb2_multichannel -- [RUNS] [SIZE_MB] [RATE_MBIT]
//!
//! smbclient has no multichannel, so there is no smbclient column here.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::mc::*;
use common::*;
use lab::Lab;
use smb2::*;

async fn run_in(lab: &Lab, node: &str, args: &[&str]) {
    let mut cmd = lab.command(node, args[0]).unwrap();
    cmd.args(&args[1..]);
    let (ok, ended, out, err) = run_within(cmd, args[0], Duration::from_secs(10)).await;
    assert!(ok, "{args:?}: {ended}: {out}{err}");
}

/// One HTB class of `mbit` per server address, on `node`'s eth0, matching `dir` (`dst` on
/// the client, `src` on the server).
async fn cap(lab: &Lab, node: &str, dir: &str, mbit: u64) {
    let rate = format!("{mbit}mbit");
    run_in(
        lab,
        node,
        &[
            "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb",
        ],
    )
    .await;
    for (i, a) in [PRIMARY, SECOND].iter().enumerate() {
        let class = format!("1:{}", i + 10);
        run_in(
            lab,
            node,
            &[
                "tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", &class, "htb",
                "rate", &rate, "ceil", &rate,
            ],
        )
        .await;
        let m = format!("{a}/32");
        run_in(
            lab,
            node,
            &[
                "tc", "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "u32",
                "match", "ip", dir, &m, "flowid", &class,
            ],
        )
        .await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("RUNS SIZE_MB RATE_MBIT are numbers"))
        .collect();
    let runs = *a.first().unwrap_or(&5) as usize;
    let size_mb = *a.get(1).unwrap_or(&128);
    let rate = *a.get(2).unwrap_or(&200);
    let lab = mc_lab("smb2-multichannel-bench").await;
    cap(&lab, "c1", "dst", rate).await;
    cap(&lab, "fs1", "src", rate).await;

    let one_guid = Guid::random();
    let (one, _) = first_channel(&lab, one_guid).await;
    let two_guid = Guid::random();
    let (two, interfaces) = first_channel(&lab, two_guid).await;
    bind_all(&lab, &two, two_guid, &interfaces).await;
    let one_file = create(&one, &unique("bench1")).await;
    let two_file = create(&two, &unique("bench2")).await;

    let mut results: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    for run in 0..runs {
        let order: [usize; 2] = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
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
            println!(
                "run {run} {} channel(s): write {w:.1} MiB/s, read {r:.1} MiB/s",
                side + 1
            );
            results[side].0.push(w);
            results[side].1.push(r);
        }
    }
    let (w1, r1) = (median(results[0].0.clone()), median(results[0].1.clone()));
    let (w2, r2) = (median(results[1].0.clone()), median(results[1].1.clone()));
    println!("median of {runs}, {size_mb} MiB, each path capped at {rate} Mbit/s:");
    println!(
        "  write: one {w1:.1} MiB/s, two {w2:.1} MiB/s, ratio {:.2}",
        w2 / w1
    );
    println!(
        "  read:  one {r1:.1} MiB/s, two {r2:.1} MiB/s, ratio {:.2}",
        r2 / r1
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
    lab.down().await.unwrap();
}
