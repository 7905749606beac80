//! Benchmark: generate a clean history of OPS ops (default 1,000,000: writes, write-through
//! writes, flushes, reads, reopens with lease breaks on a shared file, resets with
//! disconnects and durable reclaims, final reads) and time every checker on it.
//!
//! - `bench [OPS] [RUNS]`: in memory, as `Vec<history::Record>`: time `judge` (which first
//!   makes the compact history) and `judge_history` (the checkers alone).
//! - `bench write FILE [OPS]`: write the history as JSONL (never holding it).
//! - `bench check FILE [RUNS]`: read it with `History::read` and judge it, as `smbchaos
//!   check` can; run under `/usr/bin/time -v` for the peak memory of re-judging a stored run.

use std::time::Instant;

use check::{judge, judge_history, Expectations, History, Outcome, Validity};
use history::{ops, Lease, OpType, Process, Record, Smb};
use serde_json::{json, Value};

const CLIENTS: usize = 64;
/// Clients 0..SHARED also reopen `shared.dat`, breaking each other's leases.
const SHARED: usize = 8;
const SLOTS: u64 = 16;
const WRITE: u64 = 4096;
/// A reset of every connection this often (in ops).
const FAULT_EVERY: usize = 50_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Client {
    name: String,
    process: u64,
    conn: u64,
    path: String,
    file_id: (u64, u64),
    open: u64,
    lease_key: String,
    state: &'static str,
    epoch: u16,
    /// Invoke index and f of the op in flight.
    pending: Option<(u64, &'static str)>,
}

struct Gen<'a> {
    sink: Box<dyn FnMut(Record) + 'a>,
    count: u64,
    now: u64,
    rng: Rng,
    clients: Vec<Client>,
    processes: u64,
    next_fid: u64,
    /// Per client file: the last write invoked on each slot.
    content: Vec<[i64; SLOTS as usize]>,
    ops: usize,
}

impl Gen<'_> {
    fn push(
        &mut self,
        process: Process,
        kind: OpType,
        f: &str,
        value: Value,
        status: Option<&str>,
        smb: Smb,
    ) -> u64 {
        let index = self.count;
        self.count += 1;
        self.now += 1_000 + self.rng.below(20_000);
        let value = history::Value::from_json(f, kind, process.name(), value)
            .unwrap_or_else(|e| panic!("record {index}: {e}"));
        (self.sink)(Record {
            index,
            time_ns: self.now,
            process,
            kind,
            f: f.into(),
            node: Some("c1".into()),
            value,
            status: status.map(str::to_string),
            smb,
        });
        index
    }

    fn smb(&self, c: usize) -> Smb {
        let cl = &self.clients[c];
        Smb {
            client: Some(cl.name.clone()),
            conn: Some(cl.conn),
            path: Some(cl.path.clone()),
            file_id: Some(format!("{:016x}:{:016x}", cl.file_id.0, cl.file_id.1)),
            ..Smb::default()
        }
    }

    fn lease(&self, c: usize) -> Lease {
        let cl = &self.clients[c];
        Lease {
            key: cl.lease_key.clone(),
            state: cl.state.into(),
            epoch: cl.epoch,
        }
    }

    fn invoke(&mut self, c: usize, f: &'static str, value: Value) -> u64 {
        self.ops += 1;
        let smb = self.smb(c);
        let i = self.push(
            Process::Worker(self.clients[c].process),
            OpType::Invoke,
            f,
            value,
            None,
            smb,
        );
        self.clients[c].pending = Some((i, f));
        i
    }

    fn complete(&mut self, c: usize, kind: OpType, value: Value, smb: Smb) {
        let (_, f) = self.clients[c].pending.take().expect("an op in flight");
        let status = (kind == OpType::Info).then_some("timed out");
        self.push(
            Process::Worker(self.clients[c].process),
            kind,
            f,
            value,
            status,
            smb,
        );
        if kind == OpType::Info {
            self.processes += 1;
            self.clients[c].process = self.processes;
        }
    }

    fn open(&mut self, c: usize, path: String) {
        self.clients[c].path = path.clone();
        let i = self.invoke(c, ops::OPEN, json!({ "durable": "v2", "timeout_ms": 30_000, "persistent": false, "lease": "RWH", "oplock": "none" }));
        // Break every other holder of the shared file before answering.
        if path == "shared.dat" {
            for o in 0..SHARED {
                if o != c && self.clients[o].path == path && self.clients[o].state == "RWH" {
                    self.clients[o].epoch += 1;
                    let mut smb = self.smb(o);
                    smb.lease = Some(self.lease(o));
                    let value = json!({ "new_state": "RH", "ack_required": true, "epoch": self.clients[o].epoch });
                    self.push(
                        Process::Worker(self.clients[o].process),
                        OpType::Info,
                        ops::LEASE_BREAK,
                        value,
                        None,
                        smb,
                    );
                    self.clients[o].state = "RH";
                }
            }
        }
        self.next_fid += 1;
        let cl = &mut self.clients[c];
        cl.file_id = (self.next_fid, self.next_fid);
        cl.open = i;
        cl.state = "RWH";
        cl.epoch = 1;
        let mut smb = self.smb(c);
        smb.lease = Some(self.lease(c));
        self.complete(
            c,
            OpType::Ok,
            json!({ "durable": true, "timeout_ms": 30_000, "persistent": false, "oplock": 255 }),
            smb,
        );
    }

    fn step(&mut self, c: usize) {
        if let Some((_, f)) = self.clients[c].pending {
            let file = if self.clients[c].path == "shared.dat" {
                CLIENTS
            } else {
                c
            };
            let ok = match f {
                ops::WRITE => json!({ "written": WRITE }),
                // Reads (of slot 0) return the newest write invoked there.
                ops::READ => json!({ "runs": [[0, WRITE, self.content[file][0]]] }),
                _ => json!({}),
            };
            let smb = self.smb(c);
            return self.complete(c, OpType::Ok, ok, smb);
        }
        match self.rng.below(100) {
            0..=59 => {
                let slot = self.rng.below(SLOTS);
                let wt = self.rng.below(3) == 0;
                let i = self.invoke(
                    c,
                    ops::WRITE,
                    json!({ "offset": slot * WRITE, "len": WRITE, "write_through": wt }),
                );
                let file = if self.clients[c].path == "shared.dat" {
                    CLIENTS
                } else {
                    c
                };
                self.content[file][slot as usize] = i as i64;
            }
            60..=79 => {
                self.invoke(c, ops::FLUSH, json!({}));
            }
            80..=94 => {
                self.invoke(c, ops::READ, json!({ "offset": 0, "len": WRITE }));
            }
            _ if c < SHARED => {
                // Reopen: close, then open the shared file or the client's own.
                self.invoke(c, ops::CLOSE, json!({}));
                let smb = self.smb(c);
                self.complete(c, OpType::Ok, json!({}), smb);
                let path = if self.clients[c].path == "shared.dat" {
                    format!("c{c}.dat")
                } else {
                    "shared.dat".into()
                };
                self.open(c, path);
            }
            _ => {
                self.invoke(c, ops::READ, json!({ "offset": 0, "len": WRITE }));
            }
        }
    }

    /// Reset every connection: ops in flight end `info`, clients reclaim their handles.
    fn reset(&mut self, fault: u64) {
        let nemesis = |phase: &str| json!({ "fault": fault, "occurrence": 0, "phase": phase, "action": {}, "detail": null });
        self.push(
            Process::nemesis(),
            OpType::Invoke,
            "reset",
            nemesis("start"),
            None,
            Smb::default(),
        );
        self.push(
            Process::nemesis(),
            OpType::Ok,
            "reset",
            nemesis("start"),
            None,
            Smb::default(),
        );
        for c in 0..CLIENTS {
            if self.clients[c].pending.is_some() {
                let smb = self.smb(c);
                self.complete(c, OpType::Info, Value::Null, smb);
            }
            let smb = self.smb(c);
            self.push(
                Process::Worker(self.clients[c].process),
                OpType::Info,
                ops::DISCONNECT,
                json!({ "reason": "reset" }),
                None,
                smb,
            );
            self.clients[c].conn += 1;
            let open = self.clients[c].open;
            self.invoke(c, ops::RECONNECT, json!({ "durable": "v2", "open": open }));
            self.clients[c].file_id.1 += 1_000_000;
            let mut smb = self.smb(c);
            smb.lease = Some(self.lease(c));
            self.complete(c, OpType::Ok, json!({}), smb);
        }
        self.push(
            Process::nemesis(),
            OpType::Invoke,
            "reset",
            nemesis("heal"),
            None,
            Smb::default(),
        );
        self.push(
            Process::nemesis(),
            OpType::Ok,
            "reset",
            nemesis("heal"),
            None,
            Smb::default(),
        );
    }
}

/// Generate a history of `ops` ops, handing each record to `sink`; returns the record count.
fn generate<'a>(ops: usize, sink: Box<dyn FnMut(Record) + 'a>) -> u64 {
    let mut g = Gen {
        sink,
        count: 0,
        now: 0,
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        clients: Vec::new(),
        processes: CLIENTS as u64,
        next_fid: 0,
        // One per client file, and the shared file last.
        content: vec![[ops::ZEROS; SLOTS as usize]; CLIENTS + 1],
        ops: 0,
    };
    for c in 0..CLIENTS {
        g.clients.push(Client {
            name: format!("c1/{c}"),
            process: c as u64,
            conn: 1,
            path: String::new(),
            file_id: (0, 0),
            open: 0,
            lease_key: format!("{c:032x}"),
            state: "",
            epoch: 0,
            pending: None,
        });
        g.open(c, format!("c{c}.dat"));
    }
    let mut fault = 0;
    while g.ops < ops {
        let c = g.rng.below(CLIENTS as u64) as usize;
        g.step(c);
        if g.ops / FAULT_EVERY > fault as usize {
            fault += 1;
            g.reset(fault);
        }
    }
    for c in 0..CLIENTS {
        if g.clients[c].pending.is_some() {
            g.step(c);
        }
    }
    for c in 0..=CLIENTS {
        let runs: Vec<[i64; 3]> = (0..SLOTS)
            .map(|s| [(s * WRITE) as i64, WRITE as i64, g.content[c][s as usize]])
            .collect();
        let value = json!({ "size": SLOTS * WRITE, "runs": runs });
        let path = if c == CLIENTS {
            "shared.dat".into()
        } else {
            format!("c{c}.dat")
        };
        let smb = Smb {
            path: Some(path),
            ..Smb::default()
        };
        g.push(
            Process::Named(ops::FINAL_PROCESS.into()),
            OpType::Ok,
            ops::FINAL_READ,
            value,
            None,
            smb,
        );
    }
    g.count
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("write") => {
            let path = args.get(1).expect("bench write FILE [OPS]");
            let ops = num(2, 1_000_000);
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
            let sink = Box::new(move |r: Record| {
                use std::io::Write;
                serde_json::to_writer(&mut out, &r).expect("write");
                out.write_all(b"\n").expect("write");
            });
            let t = Instant::now();
            let n = generate(ops, sink);
            println!(
                "wrote {ops} ops ({n} records) to {path} in {:.2}s",
                t.elapsed().as_secs_f64()
            );
        }
        Some("check") => {
            let path = args.get(1).expect("bench check FILE [RUNS]");
            let runs = num(2, 5);
            let t = Instant::now();
            let h = History::read(std::path::Path::new(path)).expect("read");
            let read = t.elapsed().as_secs_f64();
            let ops = h.recs.len() as f64 / 2.0;
            println!(
                "read {} records in {read:.2}s ({:.2} M records/s); resident {} MiB",
                h.recs.len(),
                h.recs.len() as f64 / read / 1e6,
                memory("VmRSS") / 1024
            );
            time("judge_history", runs, ops, h.recs.len(), || {
                judge_history(&h, &Expectations::default())
            });
            println!("peak resident {} MiB", memory("VmHWM") / 1024);
        }
        _ => {
            let ops = num(0, 1_000_000);
            let runs = num(1, 5);
            let t = Instant::now();
            let mut records = Vec::with_capacity(ops * 2 + 10_000);
            generate(ops, Box::new(|r| records.push(r)));
            println!(
                "generated {ops} ops ({} records) in {:.2}s; resident {} MiB",
                records.len(),
                t.elapsed().as_secs_f64(),
                memory("VmRSS") / 1024
            );
            time("judge", runs, ops as f64, records.len(), || {
                judge(&records, &Expectations::default())
            });
            let t = Instant::now();
            let h = History::from_records(&records);
            println!("History::from_records: {:.3}s", t.elapsed().as_secs_f64());
            time("judge_history", runs, ops as f64, records.len(), || {
                judge_history(&h, &Expectations::default())
            });
            println!("peak resident {} MiB", memory("VmHWM") / 1024);
        }
    }
}

/// Time `f` `runs` times; print each run's checker results once and the median.
fn time(what: &str, runs: usize, ops: f64, records: usize, f: impl Fn() -> check::Verdict) {
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    for run in 0..runs {
        let (t, c) = (Instant::now(), cpu_ns());
        let verdict = f();
        times.push(t.elapsed().as_secs_f64());
        cpu.push((cpu_ns() - c) as f64 / 1e9);
        if run == 0 {
            for j in &verdict.checkers {
                let e: String = j.result.explanation.chars().take(150).collect();
                println!(
                    "  {:<13} {:?} {:?}: {e}",
                    j.result.checker, j.result.valid, j.outcome
                );
            }
            assert_eq!(
                verdict.outcome,
                Outcome::Pass,
                "the generated history is clean"
            );
            assert!(verdict
                .checkers
                .iter()
                .all(|j| j.result.valid == Validity::True));
        }
    }
    let shown: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let (median, cpu) = (times[times.len() / 2], cpu[cpu.len() / 2]);
    println!(
        "{what}: runs {} s; median of {runs}: {median:.3}s wall = {:.2} M ops/s ({:.2} M records/s); {cpu:.3}s on CPU = {:.2} M ops/s",
        shown.join(" "),
        ops / median / 1e6,
        records as f64 / median / 1e6,
        ops / cpu / 1e6
    );
}

/// This thread's time on a CPU so far (the machine is shared: wall time alone misleads).
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A `/proc/self/status` figure, in KiB.
fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
