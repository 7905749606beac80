//! Benchmark: fault-to-effect latency, from the instant a fault is applied to the first effect
//! seen at (or from) the client, over N injections per kind (default 100). Prints p50/p99.
//!
//!     cargo run --release -p smbchaos-lab --example fault_latency [N]     (as root)
//!
//! reset: until the client (an `smb2::Connection`, negotiated, its reader blocked on the
//! socket) reports `Event::Disconnected` with ECONNRESET: the RST's trip across the wire, the
//! reader's wake-up and the event's hand-off to the task that waits for it.
//! partition: until the client's next frame (a SYN sent right after) is dropped by the wire.
//! kill: until a client connect to 445 is refused.
//! pause: until the node's freezer reports FROZEN (smbd can no longer answer).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lab::{Lab, LabOptions};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(kind: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{kind:<10} n={:<4} p50 {:>9.3} ms   p99 {:>9.3} ms   max {:>9.3} ms",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let plan = plan::parse_str(
        "bench.yaml",
        "version: 1\nname: bench\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }]\n",
    )
    .unwrap();
    let lab = Lab::up(&plan, LabOptions::default()).await.unwrap();
    let target = SocketAddr::from((lab.address("fs1"), 445));

    let econnreset = std::io::Error::from_raw_os_error(libc::ECONNRESET).to_string();
    let mut resets = Vec::new();
    for _ in 0..n {
        let s = lab.connect("c1", target).await.unwrap();
        let (conn, mut events) = smb2::Connection::new(s);
        let request = smb2::default_negotiate_request(
            &[smb2::Dialect::SMB2_0_2, smb2::Dialect::SMB2_1],
            smb2::Guid::random(),
            false,
        );
        let opts = smb2::RequestOptions {
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        conn.negotiate(&request, &opts)
            .await
            .and_then(|r| r.ok())
            .unwrap_or_else(|e| panic!("NEGOTIATE: {e}"));
        // An RST crosses the lab in well under a millisecond; 5 s only bounds a broken run.
        let seen = tokio::spawn(async move {
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
            (Instant::now(), event)
        });
        tokio::task::yield_now().await;
        let t0 = Instant::now();
        lab.reset("fs1", Some("c1"), 445, plan::ResetSide::Server)
            .await
            .unwrap();
        let (seen_at, event) = seen.await.unwrap();
        match event {
            Ok(Some(smb2::Event::Disconnected { reason })) if reason.contains(&econnreset) => {}
            other => panic!("awaited the client's disconnect by RST ({econnreset}); got {other:?}"),
        }
        resets.push(seen_at - t0);
        drop(conn);
    }
    report("reset", resets);

    let mut partitions = Vec::new();
    for _ in 0..n {
        let before = lab.link_counters("c1").unwrap().dropped;
        let t0 = Instant::now();
        let cut = lab
            .partition(&["c1".into()], &["fs1".into()], None)
            .unwrap();
        let probe = lab.connect("c1", target);
        let watch = async {
            while lab.link_counters("c1").unwrap().dropped == before {
                tokio::task::yield_now().await;
            }
            Instant::now()
        };
        let dropped_at = tokio::select! {
            t = watch => t,
            _ = probe => panic!("connected through a partition"),
        };
        partitions.push(dropped_at - t0);
        lab.repair(cut).unwrap();
    }
    report("partition", partitions);

    // FAULT_LATENCY_KILL=group: kill as the harness did before (for a side-by-side).
    let group_first = std::env::var("FAULT_LATENCY_KILL").is_ok_and(|v| v == "group");
    let mut kills = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        // The client probes from the fault's instant on, while the kill is under way.
        let probe = async {
            loop {
                // A SYN that meets the listener mid-exit goes unanswered; do not wait out
                // TCP's 1 s SYN retransmission, probe again.
                let attempt =
                    tokio::time::timeout(Duration::from_millis(5), lab.connect("c1", target)).await;
                if let Ok(Err(e)) = attempt {
                    if e.to_string().contains("refused") {
                        return Instant::now();
                    }
                }
            }
        };
        let kill = async {
            if group_first {
                // The kill before the listener-first one: the whole group from a
                // blocking-pool thread, then the main smbd reaped.
                let freezer = lab.node("fs1").unwrap().freezer.clone();
                tokio::task::spawn_blocking(move || freezer.kill_all(Duration::from_secs(10)))
                    .await
                    .unwrap()
                    .unwrap();
            }
            lab.server("fs1")
                .unwrap()
                .lock()
                .await
                .kill()
                .await
                .unwrap()
        };
        let (refused_at, _killed) = tokio::join!(probe, kill);
        kills.push(refused_at - t0);
        lab.server("fs1")
            .unwrap()
            .lock()
            .await
            .start()
            .await
            .unwrap();
    }
    report("kill", kills);

    let mut pauses = Vec::new();
    for _ in 0..n {
        let freezer = &lab.node("fs1").unwrap().freezer;
        let t0 = Instant::now();
        freezer.freeze().unwrap();
        pauses.push(t0.elapsed());
        freezer.thaw().unwrap();
    }
    report("pause", pauses);
    lab.down().await.unwrap();
}
