//! Benchmark: what recording costs a workload op. Appends N invoke/ok pairs shaped like the
//! SMB workload's write ops to a history file and prints the cost per op (two records).
//!
//!     cargo run --release -p smbchaos-history --example append_cost [N]
//!
//! Compare the figure with an op's latency in the lab (a 4 KiB write: see `smbchaos run` of
//! plans/field/durable-resume.yaml, history time between invoke and ok).

use std::time::Instant;

use history::value::{WriteInvoke, WriteOk};
use history::{Entry, HistoryWriter, Lease, OpType, Process, Smb};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("smbchaos-append-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.jsonl");
    let writer = HistoryWriter::create(&path, Instant::now()).unwrap();
    let smb = Smb {
        client: Some("c1/0".into()),
        conn: Some(1),
        served_by: Some("ctdb-0".into()),
        message_id: Some(42),
        session_id: Some(0x1234_5678),
        tree_id: Some(7),
        path: Some("c1-0.dat".into()),
        file_id: Some("0000000095fe9045:00000000d8065166".into()),
        create_guid: Some("56e30d8f-f9b7-419e-f9e0-aa8829c8acb0".into()),
        lease: Some(Lease {
            key: "b6481710ff98a0c0b6481710ff98a0c0".into(),
            state: "RWH".into(),
            epoch: 1,
        }),
    };
    let started = Instant::now();
    for i in 0..n {
        for (kind, value) in [
            (
                OpType::Invoke,
                WriteInvoke {
                    offset: i * 4096 % 65536,
                    len: 4096,
                    write_through: false,
                    replay_of: None,
                }
                .into(),
            ),
            (OpType::Ok, WriteOk { written: 4096 }.into()),
        ] {
            writer
                .append(Entry {
                    process: Process::Worker(0),
                    kind,
                    f: "write".into(),
                    node: Some("c1".into()),
                    value,
                    status: None,
                    smb: smb.clone(),
                })
                .unwrap();
        }
    }
    let per_op = started.elapsed() / n as u32;
    println!(
        "{n} ops (2 records each): {:.2} µs per op",
        per_op.as_secs_f64() * 1e6
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
