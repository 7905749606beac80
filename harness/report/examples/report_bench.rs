//! `report::write` of a 1M-op run, from the files on disk, as `smbchaos report DIR` does it.
//!
//! `cargo run --release -p smbchaos-report --example report_bench [-- DIR]`
//!
//! Writes a synthetic results directory (1M ops of 16 workers on four clients, 8 faults
//! during which ops slow down and mostly fail, a verdict citing every failing op) unless DIR
//! already holds one, then measures in a fresh process so the peak RSS is the report's alone:
//! load + render + write, median of 5 (wall clock, and CPU time from /proc/self/schedstat,
//! which other loads on the machine disturb less), and VmHWM from /proc/self/status.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use check::{CheckResult, Judged, Outcome, Validity, Verdict};
use history::results::{self, Status};
use history::value::{FaultPhase, FaultStep, ReadInvoke, ReadOk, WriteInvoke, WriteOk};
use history::{OpType, Process, Record, Smb, Value};
use serde_json::json;

const OPS: u64 = 1_000_000;
const PROCESSES: u64 = 16;
const FAULTS: u64 = 8;
const RUNS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure(Path::new(&args[1]));
        return;
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("smbchaos-report-bench"));
    if !dir.join(results::HISTORY).exists() {
        let t = Instant::now();
        generate(&dir);
        eprintln!(
            "wrote {} in {:.1} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    // A fresh process: its peak RSS is the report's, not the generator's.
    let status = Command::new(std::env::current_exe().expect("own path"))
        .arg("--measure")
        .arg(&dir)
        .status()
        .expect("run the measuring process");
    std::process::exit(status.code().unwrap_or(1));
}

fn measure(dir: &Path) {
    let history = std::fs::metadata(dir.join(results::HISTORY))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut runs = Vec::new();
    let mut cpu = Vec::new();
    for _ in 0..RUNS {
        let (t, c) = (Instant::now(), cpu_ns());
        report::write(dir).expect("report");
        runs.push(t.elapsed());
        cpu.push(cpu_ns() - c);
    }
    cpu.sort_unstable();
    let page = std::fs::metadata(dir.join(results::REPORT))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut sorted = runs.clone();
    sorted.sort();
    let median: Duration = sorted[RUNS / 2];
    println!(
        "report of {OPS} ops (history.jsonl {:.0} MB): load+render+write median of {RUNS}: {:.3} s, CPU {:.3} s (runs {}); peak RSS (VmHWM) {}; report.html {:.2} MB",
        history as f64 / 1e6,
        median.as_secs_f64(),
        cpu[RUNS / 2] as f64 / 1e9,
        runs.iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" "),
        vm_hwm(),
        page as f64 / 1e6
    );
}

/// Time this process has spent on a CPU, in ns (the first field of /proc/self/schedstat).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// One record of the synthetic run, small, so two million of them sort cheaply.
struct Event {
    time: u64,
    process: u16,
    n: u32,
    /// 0 invoke, 1 ok, 2 fail, 3 info.
    kind: u8,
}

/// The history `harness/cli/tests/report.rs` draws, at 1M ops, written line by line.
fn generate(dir: &Path) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: the same history every time.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let per_process = OPS / PROCESSES;
    let span_ns = per_process * 2_000_000;
    let window = |i: u64| {
        let start = span_ns * (2 * i + 1) / (2 * FAULTS + 1);
        (start, start + span_ns / (4 * FAULTS + 2))
    };
    let in_fault = |t: u64| (0..FAULTS).any(|i| (window(i).0..window(i).1).contains(&t));
    let mut events = Vec::with_capacity(2 * OPS as usize);
    for p in 0..PROCESSES {
        let mut t = next() % 1_000_000;
        for n in 0..per_process {
            let faulty = in_fault(t);
            let latency = if faulty {
                5_000_000 + next() % 20_000_000
            } else {
                200_000 + next() % 3_000_000
            };
            let kind = match (faulty, next() % 100) {
                (true, 0..=69) => 2,
                (true, 70..=79) => 3,
                (false, 0) => 3,
                _ => 1,
            };
            let (process, n) = (p as u16, n as u32);
            events.push(Event {
                time: t,
                process,
                n,
                kind: 0,
            });
            events.push(Event {
                time: t + latency,
                process,
                n,
                kind,
            });
            t += latency + next() % 200_000;
        }
    }
    let mut faults = Vec::new();
    for i in 0..FAULTS {
        let (start, heal) = window(i);
        for (t, kind, phase) in [
            (start, OpType::Invoke, FaultPhase::Start),
            (start + 1_000_000, OpType::Ok, FaultPhase::Start),
            (heal, OpType::Invoke, FaultPhase::Heal),
            (heal + 2_000_000, OpType::Ok, FaultPhase::Heal),
        ] {
            faults.push(Record {
                time_ns: t,
                process: Process::nemesis(),
                kind,
                f: if i % 2 == 0 { "partition" } else { "kill" }.into(),
                node: Some("fs1".into()),
                value: FaultStep {
                    fault: i,
                    occurrence: 0,
                    phase,
                    action: json!({}),
                    require_effect: false,
                    heals: true,
                    detail: None,
                }
                .into(),
                ..Default::default()
            });
        }
    }
    events.sort_by_key(|e| e.time);
    faults.sort_by_key(|r| r.time_ns);
    std::fs::create_dir_all(dir.join("pcap")).expect("results dir");
    let file = std::fs::File::create(dir.join(results::HISTORY)).expect("history.jsonl");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut failed = Vec::new();
    let mut index = 0u64;
    let mut faults = faults.into_iter().peekable();
    let mut write = |r: Record, out: &mut BufWriter<std::fs::File>| {
        let r = Record { index, ..r };
        index += 1;
        if r.kind == OpType::Fail {
            failed.push(r.index);
        }
        serde_json::to_writer(&mut *out, &r).expect("write history");
        out.write_all(b"\n").expect("write history");
    };
    for e in events {
        while faults.peek().is_some_and(|f| f.time_ns <= e.time) {
            write(faults.next().expect("peeked"), &mut out);
        }
        let node = format!("c{}", e.process % 4 + 1);
        let n = e.n as u64;
        let is_write = n.is_multiple_of(3);
        let (offset, len) = (n % 16 * 4096, 4096);
        let (kind, status, value): (_, _, Value) = match e.kind {
            0 if is_write => (
                OpType::Invoke,
                None,
                WriteInvoke {
                    offset,
                    len,
                    write_through: false,
                    replay_of: None,
                }
                .into(),
            ),
            0 => (OpType::Invoke, None, ReadInvoke { offset, len }.into()),
            1 if is_write => (OpType::Ok, None, WriteOk { written: len }.into()),
            1 => (
                OpType::Ok,
                None,
                ReadOk {
                    runs: vec![[offset as i64, len as i64, n as i64]],
                    cached: false,
                }
                .into(),
            ),
            k => (
                [OpType::Ok, OpType::Fail, OpType::Info][k as usize - 1],
                match k {
                    2 => Some("STATUS_CONNECTION_DISCONNECTED".to_string()),
                    3 => Some("timed out".to_string()),
                    _ => None,
                },
                Value::None,
            ),
        };
        write(
            Record {
                time_ns: e.time,
                process: Process::Worker(e.process as u64),
                kind,
                f: if is_write { "write" } else { "read" }.into(),
                node: Some(node.clone()),
                value,
                status,
                smb: Smb {
                    client: Some(format!("{node}/{}", e.process / 4)),
                    message_id: Some(n),
                    ..Default::default()
                },
                ..Default::default()
            },
            &mut out,
        );
    }
    for f in faults {
        write(f, &mut out);
    }
    out.flush().expect("write history");
    drop(out);
    let verdict = Verdict {
        outcome: Outcome::Fail,
        checkers: vec![Judged {
            result: CheckResult {
                checker: "durability".into(),
                valid: Validity::False,
                explanation: format!("{} acknowledged writes were lost", failed.len()),
                ops: failed,
                preconditions: Vec::new(),
            },
            expected: "valid".into(),
            outcome: Outcome::Fail,
        }],
    };
    std::fs::write(
        dir.join(results::VERDICT),
        serde_json::to_vec(&verdict).expect("verdict json"),
    )
    .expect("verdict.json");
    std::fs::write(dir.join(results::PLAN), "version: 1\nname: synthetic\n").expect("plan");
    let status = Status {
        complete: true,
        outcome: Some(Outcome::Fail),
        error: None,
        run_id: "bench".into(),
    };
    std::fs::write(
        dir.join(results::STATUS),
        serde_json::to_vec(&status).expect("status json"),
    )
    .expect("status.json");
}
