//! What the lossy disk costs: one server with a plain share and a `disk: lossy` share, the
//! same SMB writes to each, alternating, median of N rounds.
//!
//! cargo run --release -p smbchaos-lab --example lossy_bench -- [rounds] [bulk MiB]
//! (root; Samba installed). Prints MiB/s per share and the plain/lossy ratio for a bulk
//! write (1 MiB requests, no write-through) and for small (4 KiB) write-through writes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::{Lab, LabOptions};
use smb2::wire::create::disposition;
use smb2::CreateRequest;

const PLAN: &str = "version: 1\nname: lossy-bench\ntopology:\n  servers:\n    - name: fs1\n      shares: [{ name: plain }, { name: lossy, disk: lossy }]\n  clients: [{ name: c1 }]\n";

async fn tree(lab: &Lab, share: &str) -> smb2::Connected {
    let (user, password) = lab.credentials();
    let stream = lab
        .connect("c1", SocketAddr::from((lab.address("fs1"), 445)))
        .await
        .expect("connect");
    let mut opts = smb2::TreeConnectOptions::new(
        smb2::Credentials::new(user, password),
        format!(r"\\{}\{share}", lab.address("fs1")),
    );
    opts.timeout = Duration::from_secs(30);
    smb2::connect_tree(stream, &opts)
        .await
        .expect("tree connect")
}

/// MiB/s writing `count` writes of `size` bytes to a new file, one at a time.
async fn write(t: &smb2::Tree, name: &str, size: usize, count: usize, through: bool) -> f64 {
    let req = CreateRequest {
        create_disposition: disposition::FILE_CREATE,
        ..CreateRequest::new(name.to_string())
    };
    let id = t.create(&req).await.unwrap().ok().unwrap().file_id;
    let started = Instant::now();
    for i in 0..count {
        let data = vec![(i % 251) as u8; size];
        t.write(id, (i * size) as u64, data, through)
            .await
            .unwrap()
            .ok()
            .unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    t.close(id).await.unwrap();
    (size * count) as f64 / (1 << 20) as f64 / took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let bulk_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let plan = plan::parse_str("lossy-bench.yaml", PLAN).unwrap();
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    let (plain, lossy) = (tree(&lab, "plain").await, tree(&lab, "lossy").await);
    let mut results: Vec<[Vec<f64>; 2]> = vec![[vec![], vec![]], [vec![], vec![]]];
    for round in 0..rounds {
        for (i, t) in [&plain.tree, &lossy.tree].into_iter().enumerate() {
            let (bulk, small) = (format!("bulk-{round}.dat"), format!("through-{round}.dat"));
            results[0][i].push(write(t, &bulk, 1 << 20, bulk_mib, false).await);
            results[1][i].push(write(t, &small, 4096, 500, true).await);
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "rounds {rounds}, load average {}",
        load.split(' ').next().unwrap_or("?")
    );
    for (what, r) in ["bulk write (1 MiB requests)", "write-through (4 KiB)"]
        .iter()
        .zip(&results)
    {
        let (p, l) = (median(r[0].clone()), median(r[1].clone()));
        println!(
            "{what}: plain {p:.1} MiB/s, lossy {l:.1} MiB/s, cost {:.2}x",
            p / l
        );
    }
    drop((plain, lossy));
    lab.down().await.unwrap();
}
