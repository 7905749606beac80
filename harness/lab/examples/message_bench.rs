//! What SMB-aware matching costs the wire when armed but idle: the same bulk SMB write and
//! read through the userspace wire with no rule armed and with two rules armed that follow
//! every segment of the connection both ways (WRITE requests, READ responses) and never fire
//! (nth = u32::MAX), alternating, median of N rounds.
//!
//! cargo run --release -p smbchaos-lab --example message_bench -- [rounds] [MiB]
//! (root; Samba installed). Prints MiB/s for each side and armed/disarmed ratios.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::wire::message::{MessageAction, MessageRule};
use lab::{Lab, LabOptions};
use smb2::wire::create::disposition;
use smb2::CreateRequest;

const PLAN: &str = "version: 1\nname: message-bench\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }]\n";

async fn tree(lab: &Lab) -> smb2::Connected {
    let (user, password) = lab.credentials();
    let stream = lab
        .connect("c1", SocketAddr::from((lab.address("fs1"), 445)))
        .await
        .expect("connect");
    let mut opts = smb2::TreeConnectOptions::new(
        smb2::Credentials::new(user, password),
        format!(r"\\{}\share", lab.address("fs1")),
    );
    opts.timeout = Duration::from_secs(30);
    smb2::connect_tree(stream, &opts)
        .await
        .expect("tree connect")
}

const CHUNK: usize = 1 << 20;
/// Requests in flight, so the wire (not the round trip) is what limits.
const DEPTH: usize = 8;

/// MiB/s writing then reading `mib` MiB in 1 MiB requests, DEPTH in flight.
async fn transfer(t: &smb2::Tree, name: &str, mib: usize) -> (f64, f64) {
    let req = CreateRequest {
        create_disposition: disposition::FILE_OVERWRITE_IF,
        ..CreateRequest::new(name.to_string())
    };
    let id = t.create(&req).await.unwrap().ok().unwrap().file_id;
    let data = vec![0x5au8; CHUNK];
    let started = Instant::now();
    for batch in (0..mib).collect::<Vec<_>>().chunks(DEPTH) {
        let writes = batch
            .iter()
            .map(|&i| t.write(id, (i * CHUNK) as u64, data.clone(), false));
        for r in futures::future::join_all(writes).await {
            r.unwrap().ok().unwrap();
        }
    }
    let write = mib as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for batch in (0..mib).collect::<Vec<_>>().chunks(DEPTH) {
        let reads = batch
            .iter()
            .map(|&i| t.read(id, (i * CHUNK) as u64, CHUNK as u32));
        for r in futures::future::join_all(reads).await {
            r.unwrap().ok().unwrap();
        }
    }
    let read = mib as f64 / started.elapsed().as_secs_f64();
    t.close(id).await.unwrap();
    (write, read)
}

fn idle(responses: bool, command: u16) -> MessageRule {
    MessageRule {
        from: Vec::new(),
        to: Vec::new(),
        server_port: 445,
        responses,
        command,
        status: None,
        nth: u32::MAX,
        action: MessageAction::Hold,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(128);
    let plan = plan::parse_str("message-bench.yaml", PLAN).unwrap();
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    let c = tree(&lab).await;
    // [disarmed, armed] x [write, read]
    let mut r: [[Vec<f64>; 2]; 2] = Default::default();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for round in 0..rounds {
        // Alternate which side goes first.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for armed in order {
            let rules = armed.then(|| {
                [
                    lab.arm_message("fs1", &[], idle(false, 0x09)).unwrap(),
                    lab.arm_message("fs1", &[], idle(true, 0x08)).unwrap(),
                ]
            });
            let (w, rd) = transfer(&c.tree, &format!("bench-{round}.dat"), mib).await;
            if let Some(rules) = rules {
                for a in rules {
                    let report = lab.disarm(a, false).unwrap();
                    assert!(!report.acted() && report.seen > 0, "{report:?}");
                }
            }
            r[usize::from(armed)][0].push(w);
            r[usize::from(armed)][1].push(rd);
        }
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let first = |s: &str| s.split(' ').next().unwrap_or("?").to_string();
    println!(
        "rounds {rounds}, {mib} MiB each way, load average {} -> {}",
        first(&load_before),
        first(&load_after)
    );
    for (i, what) in ["write", "read"].iter().enumerate() {
        let (off, on) = (median(r[0][i].clone()), median(r[1][i].clone()));
        // Each round's armed run against its own disarmed run: the machine's drift between
        // rounds cancels out.
        let paired: Vec<f64> = r[1][i].iter().zip(&r[0][i]).map(|(a, d)| a / d).collect();
        println!(
            "{what}: disarmed {off:.1} MiB/s, armed idle {on:.1} MiB/s, ratio of medians {:.2}, median of paired ratios {:.2} (min {:.2}, max {:.2})",
            on / off,
            median(paired.clone()),
            paired.iter().copied().fold(f64::MAX, f64::min),
            paired.iter().copied().fold(0.0, f64::max),
        );
    }
    drop(c);
    lab.down().await.unwrap();
}
