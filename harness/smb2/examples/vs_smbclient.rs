//! Throughput benchmark (figures, not a test): sequential 1 MiB writes then
//! reads of a 1 GiB file, this client vs smbclient put/get, SMB 3.1.1 with
//! signing, median of N runs, in a lab (root + Samba needed).
//!
//!     cargo run --release -p smbchaos-smb2 --example vs_smbclient -- [runs] [MiB] [depth]

use std::time::{Duration, Instant};

use lab::{Lab, LabOptions};
use smb2::wire::create::disposition;
use smb2::wire::read::ReadRequest;
use smb2::wire::write::WriteRequest;
use smb2::*;

const PLAN: &str = r#"
version: 1
name: smb2-bench
topology:
  servers:
    - name: fs1
  clients:
    - name: c1
"#;

const CHUNK: usize = 1 << 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

async fn ours(lab: &Lab, total: usize, depth: usize) -> (Duration, Duration) {
    let (user, password) = lab.credentials();
    let s = lab
        .connect("c1", (lab.address("fs1"), 445).into())
        .await
        .unwrap();
    let (conn, _ev) = Connection::new(s);
    conn.negotiate(
        &default_negotiate_request(&[Dialect::SMB3_1_1], Guid::random(), true),
        &RequestOptions::default(),
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    let session = conn
        .session_setup(&SessionSetupOptions::new(Credentials::new(user, password)))
        .await
        .unwrap();
    assert!(session.signs());
    let tree = session
        .tree_connect(&format!(r"\\{}\share", lab.address("fs1")))
        .await
        .unwrap();
    let f = tree
        .create(&CreateRequest {
            create_disposition: disposition::FILE_OVERWRITE_IF,
            ..CreateRequest::new("bench-ours.dat")
        })
        .await
        .unwrap()
        .ok()
        .unwrap()
        .file_id;
    let data = vec![0x5a; CHUNK];
    let opts = RequestOptions {
        credit_request: 512,
        ..Default::default()
    };
    let chunks = total / CHUNK;
    let t = Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for i in 0..chunks {
        let req = WriteRequest {
            offset: (i * CHUNK) as u64,
            file_id: f,
            remaining_bytes: 0,
            flags: 0,
            data: data.clone(),
        };
        inflight.push_back(tree.submit(&req, &opts).await.unwrap());
        if inflight.len() >= depth {
            let w = inflight.pop_front().unwrap().wait().await.unwrap();
            assert_eq!(w.ok().unwrap().count as usize, CHUNK);
        }
    }
    while let Some(p) = inflight.pop_front() {
        p.wait().await.unwrap().ok().unwrap();
    }
    let write = t.elapsed();
    let t = Instant::now();
    let mut reads = std::collections::VecDeque::new();
    for i in 0..chunks {
        let req = ReadRequest {
            length: CHUNK as u32,
            offset: (i * CHUNK) as u64,
            file_id: f,
            ..Default::default()
        };
        reads.push_back(tree.submit(&req, &opts).await.unwrap());
        if reads.len() >= depth {
            let r = reads.pop_front().unwrap().wait().await.unwrap();
            assert_eq!(r.ok().unwrap().data.len(), CHUNK);
        }
    }
    while let Some(p) = reads.pop_front() {
        p.wait().await.unwrap().ok().unwrap();
    }
    let read = t.elapsed();
    drop(reads);
    tree.close(f).await.unwrap().ok().unwrap();
    (write, read)
}

async fn smbclient(lab: &Lab, cmd: &str) -> Duration {
    let (user, password) = lab.credentials();
    let work = lab.node("c1").unwrap().dir.join("work");
    let t = Instant::now();
    let out = lab
        .command("c1", "smbclient")
        .unwrap()
        .arg(format!("//{}/share", lab.address("fs1")))
        .arg(format!("-U{user}%{password}"))
        .args([
            "--option=client signing=required",
            "-m",
            "SMB3_11",
            "-c",
            cmd,
        ])
        .current_dir(&work)
        .output()
        .await
        .unwrap();
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let runs = args.first().copied().unwrap_or(5);
    let total = args.get(1).copied().unwrap_or(1024) * CHUNK;
    let depth = args.get(2).copied().unwrap_or(1);
    let plan = plan::parse_str("bench.yaml", PLAN).unwrap();
    let lab = Lab::up(&plan, LabOptions::for_test("smb2-bench"))
        .await
        .unwrap();
    let work = lab.node("c1").unwrap().dir.join("work");
    std::fs::write(work.join("src.dat"), vec![0x5a; total]).unwrap();
    let (mut ow, mut or, mut sw, mut sr) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let (w, r) = ours(&lab, total, depth).await;
        ow.push(w);
        or.push(r);
        sw.push(smbclient(&lab, "put src.dat bench-smbclient.dat").await);
        sr.push(smbclient(&lab, "get bench-smbclient.dat got.dat").await);
        let _ = std::fs::remove_file(work.join("got.dat"));
        eprintln!(
            "run {run}: ours write {:?} read {:?}; smbclient put {:?} get {:?}",
            ow[run], or[run], sw[run], sr[run]
        );
    }
    let (ow, or, sw, sr) = (median(ow), median(or), median(sw), median(sr));
    println!(
        "{} MiB, {runs} runs, median, SMB 3.1.1 signed, depth {depth}:",
        total >> 20
    );
    println!("  smb2 write  {:>8.1} MiB/s ({ow:?})", mbps(total, ow));
    println!("  smb2 read   {:>8.1} MiB/s ({or:?})", mbps(total, or));
    println!(
        "  smbclient put {:>6.1} MiB/s ({sw:?}, process included)",
        mbps(total, sw)
    );
    println!(
        "  smbclient get {:>6.1} MiB/s ({sr:?}, process included)",
        mbps(total, sr)
    );
    lab.down().await.unwrap();
}
