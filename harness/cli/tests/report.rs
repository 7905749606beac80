//! report.html: rendered from synthetic runs (no lab needed), opened in a real headless
//! Chromium (the 1M-op benchmark is `harness/report/examples/report_bench.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use check::{CheckResult, Validity};
use common::{output_within, LAB_RUN, NO_LAB};
use history::value::{FaultPhase, FaultStep, ReadInvoke, ReadOk, WriteInvoke, WriteOk};
use history::{OpType, Process, Record, Smb, Value};
use serde_json::json;

use check::{Judged, Outcome, Verdict};
use history::results::{self, Status};

// ---------------------------------------------------------------- synthetic runs

/// A deterministic history: `processes` workers (spread over four client nodes) doing ops
/// back to back; `faults` windows during which ops slow down and mostly fail. About
/// `records` records in all, in time order, indexed from 0.
/// A nemesis step as the nemesis writes it (`phase`: "start" or "heal").
fn step(fault: u64, occurrence: u64, phase: &str) -> Value {
    FaultStep {
        fault,
        occurrence,
        phase: if phase == "heal" {
            FaultPhase::Heal
        } else {
            FaultPhase::Start
        },
        action: json!({"kind": "kill"}),
        require_effect: false,
        heals: true,
        detail: None,
    }
    .into()
}

fn synthetic(records: usize, processes: u64, faults: u64) -> Vec<Record> {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: enough randomness for a picture, and the same every run.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let ops_per_process = (records / 2) as u64 / processes;
    let span_ns = ops_per_process * 2_000_000; // ~2 ms per op
    let window = |i: u64| {
        let start = span_ns * (2 * i + 1) / (2 * faults + 1);
        (start, start + span_ns / (4 * faults + 2))
    };
    let in_fault = |t: u64| (0..faults).any(|i| (window(i).0..window(i).1).contains(&t));
    let mut out: Vec<Record> = Vec::with_capacity(records + 4 * faults as usize);
    for p in 0..processes {
        let node = format!("c{}", p % 4 + 1);
        let mut t = next() % 1_000_000;
        for n in 0..ops_per_process {
            let faulty = in_fault(t);
            let latency = if faulty {
                5_000_000 + next() % 20_000_000
            } else {
                200_000 + next() % 3_000_000
            };
            let kind = match (faulty, next() % 100) {
                (true, 0..=69) => OpType::Fail,
                (true, 70..=79) => OpType::Info,
                (false, 0) => OpType::Info,
                _ => OpType::Ok,
            };
            let status = match kind {
                OpType::Fail => Some("STATUS_CONNECTION_DISCONNECTED".to_string()),
                OpType::Info => Some("timed out".to_string()),
                _ => None,
            };
            let base = Record {
                index: 0,
                time_ns: t,
                process: Process::Worker(p),
                kind: OpType::Invoke,
                f: if n % 3 == 0 {
                    "write".into()
                } else {
                    "read".into()
                },
                node: Some(node.clone()),
                value: if n % 3 == 0 {
                    WriteInvoke {
                        offset: n % 16 * 4096,
                        len: 4096,
                        write_through: false,
                        replay_of: None,
                    }
                    .into()
                } else {
                    ReadInvoke {
                        offset: n % 16 * 4096,
                        len: 4096,
                    }
                    .into()
                },
                status: None,
                smb: Smb {
                    client: Some(format!("{node}/{}", p / 4)),
                    message_id: Some(n),
                    ..Default::default()
                },
            };
            out.push(base.clone());
            out.push(Record {
                time_ns: t + latency,
                kind,
                status,
                value: match kind {
                    OpType::Ok if n % 3 == 0 => WriteOk { written: 4096 }.into(),
                    OpType::Ok => ReadOk {
                        runs: vec![[(n % 16 * 4096) as i64, 4096, n as i64]],
                        cached: false,
                    }
                    .into(),
                    _ => Value::None,
                },
                ..base
            });
            t += latency + next() % 200_000;
        }
    }
    for i in 0..faults {
        let (start, heal) = window(i);
        for (t, kind, phase) in [
            (start, OpType::Invoke, "start"),
            (start + 1_000_000, OpType::Ok, "start"),
            (heal, OpType::Invoke, "heal"),
            (heal + 2_000_000, OpType::Ok, "heal"),
        ] {
            out.push(Record {
                index: 0,
                time_ns: t,
                process: Process::nemesis(),
                kind,
                f: if i % 2 == 0 {
                    "partition".into()
                } else {
                    "kill".into()
                },
                node: Some("fs1".into()),
                value: step(i, 0, phase),
                status: None,
                ..Default::default()
            });
        }
    }
    out.sort_by_key(|r| r.time_ns);
    for (i, r) in out.iter_mut().enumerate() {
        r.index = i as u64;
    }
    out
}

/// A failing verdict citing every failing op, as a durability checker would.
fn failing_verdict(records: &[Record]) -> Verdict {
    let failed: Vec<u64> = records
        .iter()
        .filter(|r| r.kind == OpType::Fail)
        .map(|r| r.index)
        .collect();
    Verdict {
        outcome: Outcome::Fail,
        checkers: vec![
            Judged {
                result: CheckResult {
                    checker: "durability".into(),
                    valid: Validity::False,
                    explanation: format!("{} acknowledged writes were lost", failed.len()),
                    ops: failed,
                    preconditions: Vec::new(),
                },
                expected: "valid".into(),
                outcome: Outcome::Fail,
            },
            Judged {
                result: CheckResult {
                    checker: "exec".into(),
                    valid: Validity::True,
                    explanation: "all exec steps ended as expected".into(),
                    ops: vec![],
                    preconditions: Vec::new(),
                },
                expected: "expected_exit".into(),
                outcome: Outcome::Pass,
            },
        ],
    }
}

/// A results directory as a run leaves it.
fn write_run(dir: &Path, records: &[Record], verdict: Option<&Verdict>, complete: bool) {
    std::fs::create_dir_all(dir.join("pcap")).unwrap();
    let mut history = String::with_capacity(records.len() * 200);
    for r in records {
        history.push_str(&serde_json::to_string(r).unwrap());
        history.push('\n');
    }
    std::fs::write(dir.join(results::HISTORY), history).unwrap();
    std::fs::write(dir.join(results::PLAN), "version: 1\nname: synthetic\n").unwrap();
    std::fs::write(dir.join("pcap/c1-fs1.pcap"), [0xd4, 0xc3, 0xb2, 0xa1]).unwrap();
    if let Some(v) = verdict {
        std::fs::write(dir.join(results::VERDICT), serde_json::to_vec(v).unwrap()).unwrap();
    }
    let status = Status {
        complete,
        outcome: verdict.filter(|_| complete).map(|v| v.outcome),
        error: (!complete).then(|| "interrupted by SIGINT".to_string()),
        run_id: "abc123".into(),
    };
    std::fs::write(
        dir.join(results::STATUS),
        serde_json::to_vec(&status).unwrap(),
    )
    .unwrap();
}

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------- headless Chromium

struct Opened {
    dom: String,
    /// Console messages and uncaught exceptions. The report itself never logs, so any is
    /// a finding.
    console: Vec<String>,
}

/// Chromium's `--enable-logging=stderr` prints every console message (and every uncaught
/// exception) as `[pid:tid:time:INFO:CONSOLE:line] "text", source: url (line)`; older builds
/// wrote `CONSOLE(line)`. Levels are not told apart there, so all count.
fn console_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(|l| l.split_once("] ").map(|(_, m)| m).unwrap_or(l).to_string())
        .collect()
}

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!("no headless Chromium on this machine: apt-get install chromium (scripts/setup installs it)");
}

/// Open a page in a fresh headless Chromium, return its DOM after load and its console,
/// and keep a screenshot. `--dump-dom` returns once the page has loaded and its scripts ran.
fn open(page: &Path, screenshot: &Path) -> Opened {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        "--no-first-run",
    ])
    .args([
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2600",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--screenshot={}", screenshot.display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.canonicalize().unwrap().display()));
    // A page of a few hundred KB loads in seconds; two minutes for a cold start on a loaded
    // machine.
    let out = output_within(&mut cmd, "headless chromium", Duration::from_secs(120));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        screenshot.metadata().is_ok_and(|m| m.len() > 1000),
        "no screenshot at {}",
        screenshot.display()
    );
    Opened {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: console_messages(&String::from_utf8_lossy(&out.stderr)),
    }
}

#[test]
fn console_messages_are_found_in_chromium_logs() {
    let stderr = r#"[1:1:1121/163758.760257:WARNING:ui/base/idle/idle_linux.cc:111] None of the known D-Bus ScreenSaver services could be used.
[28520:28520:1121/163755.441099:INFO:CONSOLE:1] "Uncaught ReferenceError: nosuch is not defined", source: file:///tmp/x.html (1)
[7:7:0101/000000.000000:INFO:CONSOLE(12)] "a log line", source: file:///tmp/x.html (12)
"#;
    assert_eq!(
        console_messages(stderr),
        [
            r#""Uncaught ReferenceError: nosuch is not defined", source: file:///tmp/x.html (1)"#,
            r#""a log line", source: file:///tmp/x.html (12)"#
        ]
    );
    assert!(console_messages("[1:1:0:WARNING:gpu] nothing to see\n").is_empty());
}

/// The check can fail: a report with a script error injected is caught.
#[test]
fn chromium_check_catches_an_injected_script_error() {
    let dir = out_dir("injected");
    let records = synthetic(200, 2, 1);
    write_run(&dir, &records, Some(&failing_verdict(&records)), true);
    let page = report::write(&dir).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        html.replace(
            "</body>",
            "<script>window.noSuchFunction();</script></body>",
        ),
    )
    .unwrap();
    let opened = open(&broken, &dir.join("broken.png"));
    assert!(
        opened
            .console
            .iter()
            .any(|m| m.contains("Uncaught TypeError") && m.contains("noSuchFunction")),
        "{:?}",
        opened.console
    );
}

fn assert_clean_in_chromium(dir: &Path, verdict_text: &str) -> Opened {
    let page = report::write(dir).unwrap();
    let shot = dir.join("report.png");
    let opened = open(&page, &shot);
    assert!(opened.console.is_empty(), "console: {:?}", opened.console);
    assert!(
        opened.dom.contains(r#"data-ready="1""#),
        "the page script did not run to its end"
    );
    let verdict = opened
        .dom
        .split(r#"id="verdict""#)
        .nth(1)
        .expect("a verdict element");
    assert!(
        verdict[..200.min(verdict.len())].contains(verdict_text),
        "{}",
        &verdict[..200.min(verdict.len())]
    );
    eprintln!("screenshot: {}", shot.display());
    opened
}

#[test]
fn a_failing_run_opens_in_chromium_with_its_verdict_and_evidence() {
    let dir = out_dir("failing");
    let records = synthetic(600, 3, 2);
    let verdict = failing_verdict(&records);
    write_run(&dir, &records, Some(&verdict), true);
    let opened = assert_clean_in_chromium(&dir, "FAIL");
    // Every op the failed checker cites links to its record's row.
    for index in &verdict.checkers[0].result.ops {
        assert!(
            opened.dom.contains(&format!(r##"href="#r{index}""##)),
            "no link to op {index}"
        );
        assert!(
            opened.dom.contains(&format!(r#"id="r{index}""#)),
            "no row for op {index}"
        );
    }
    assert!(
        opened.dom.contains(r#"href="pcap/c1-fs1.pcap""#),
        "the capture is not linked"
    );
    assert!(opened.dom.contains("durability: FAIL"));
}

#[test]
fn a_big_run_opens_in_chromium_drawn_per_column() {
    let dir = out_dir("big");
    let records = synthetic(100_000, 12, 4);
    write_run(&dir, &records, Some(&failing_verdict(&records)), true);
    let opened = assert_clean_in_chromium(&dir, "FAIL");
    assert!(
        opened.dom.contains("records not shown"),
        "a big history is tabled in part"
    );
}

#[test]
fn an_interrupted_run_is_reported_as_incomplete() {
    let dir = out_dir("interrupted");
    let records = synthetic(300, 2, 1);
    write_run(&dir, &records, None, false);
    // A torn last line, as a killed writer leaves it.
    let mut history = std::fs::read_to_string(dir.join(results::HISTORY)).unwrap();
    history.push_str(r#"{"index":99999,"time_"#);
    std::fs::write(dir.join(results::HISTORY), history).unwrap();
    let opened = assert_clean_in_chromium(&dir, "INCOMPLETE");
    assert!(opened.dom.contains("interrupted by SIGINT"));
    let junit = std::fs::read_to_string(dir.join(results::JUNIT)).unwrap();
    assert!(junit.contains(r#"type="incomplete""#), "{junit}");
}

#[test]
fn the_report_is_self_contained_and_renders_unknown_fields() {
    let dir = out_dir("self-contained");
    let records = synthetic(400, 2, 1);
    write_run(&dir, &records, Some(&failing_verdict(&records)), true);
    let html = std::fs::read_to_string(report::write(&dir).unwrap()).unwrap();
    for needle in ["http:", "https:", "<link", "@import", "url(", " src="] {
        assert!(
            !html.contains(needle),
            "the report refers to something outside itself: {needle}"
        );
    }
    // Fields the report has no code for are shown by name: the record's and its value's.
    for field in [
        "<i>client</i> c1/0",
        "<i>message_id</i> 1",
        "<i>len</i> 4096",
        "<i>write_through</i> false",
    ] {
        assert!(html.contains(field), "{field} not rendered");
    }
}

/// A repeated fault (`every`/`count`, `random`) is one row and one window per occurrence,
/// as the checkers key them (one row for all of them once hid occurrences).
#[test]
fn every_fault_occurrence_has_its_row_and_window() {
    let dir = out_dir("occurrences");
    let mut records = synthetic(400, 2, 1);
    let end = records.last().unwrap().time_ns;
    for occurrence in 0..4u64 {
        let t = end + (occurrence + 1) * 10_000_000;
        for (dt, kind, phase) in [
            (0, OpType::Invoke, "start"),
            (1_000_000, OpType::Ok, "start"),
            (5_000_000, OpType::Invoke, "heal"),
            (6_000_000, OpType::Ok, "heal"),
        ] {
            records.push(Record {
                index: records.len() as u64,
                time_ns: t + dt,
                process: Process::nemesis(),
                kind,
                f: "kill".into(),
                node: Some("fs1".into()),
                value: step(7, occurrence, phase),
                ..Default::default()
            });
        }
    }
    write_run(&dir, &records, None, true);
    let html = std::fs::read_to_string(report::write(&dir).unwrap()).unwrap();
    for occurrence in 0..4 {
        assert!(
            html.contains(&format!(">7.{occurrence}</a></td>")),
            "no row for fault 7.{occurrence}"
        );
        assert!(
            html.contains(&format!("<title>fault 7.{occurrence}: kill fs1</title>")),
            "no window for fault 7.{occurrence}"
        );
    }
    assert_eq!(html.matches(r#"<rect class="fault""#).count(), 5);
}

/// Text from the history and the plan is escaped wherever it lands (maud escapes every value
/// not marked pre-escaped): a hostile value stays text.
#[test]
fn hostile_text_in_the_history_and_plan_stays_text() {
    let dir = out_dir("hostile");
    let mut records = synthetic(200, 2, 1);
    records[1].status = Some(r#"<img src=x onerror="alert(1)">"#.into());
    let fault = records
        .iter()
        .position(|r| r.process == Process::nemesis())
        .unwrap();
    let Value::Fault(step) = &mut records[fault].value else {
        panic!("not a fault step");
    };
    step.action = json!({"note": "</td><script>alert(2)</script>"});
    write_run(&dir, &records, Some(&failing_verdict(&records)), true);
    std::fs::write(
        dir.join(results::PLAN),
        "version: 1\nname: <script>alert(3)</script>\n",
    )
    .unwrap();
    let html = std::fs::read_to_string(report::write(&dir).unwrap()).unwrap();
    for raw in ["<img", "<script>alert", "</td><script>"] {
        assert!(!html.contains(raw), "unescaped: {raw}");
    }
    assert!(html.contains("&lt;script&gt;alert(3)&lt;/script&gt; — smbchaos"));
    assert!(html.contains("&lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
    assert_eq!(html.matches("<script>").count(), 1, "only the page's own");
}

// ---------------------------------------------------------------- the CLI

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

#[test]
fn smbchaos_report_re_renders_a_stored_run() {
    let dir = out_dir("cli-report");
    let records = synthetic(300, 2, 1);
    write_run(&dir, &records, Some(&failing_verdict(&records)), true);
    let out = output_within(
        Command::new(BIN).arg("report").arg(&dir),
        "smbchaos report",
        NO_LAB,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.join("report.html").display().to_string()
    );
    let junit = std::fs::read_to_string(dir.join(results::JUNIT)).unwrap();
    assert!(
        junit.contains(r#"<testcase name="durability" classname="synthetic">"#),
        "{junit}"
    );
    let missing = output_within(
        Command::new(BIN).arg("report").arg(dir.join("nope")),
        "smbchaos report nope",
        NO_LAB,
    );
    assert_eq!(missing.status.code(), Some(2));
}

/// A real lab run of `plans/faults/random.yaml` (root and smbd, as every `smbchaos run`
/// test): its report has a fault row and a shaded window for every fault occurrence the
/// history records, and no other.
#[test]
fn the_random_faults_report_lists_every_occurrence() {
    let dir = out_dir("cli-random");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(BIN)
        .arg("run")
        .arg("--results")
        .arg(&dir)
        .arg("plans/faults/random.yaml")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = dir.join("faults-random").join("latest");
    let history = history::read(&run.join(results::HISTORY)).unwrap();
    let mut occurrences: Vec<(u64, u64)> = history
        .iter()
        .filter(|r| r.process == Process::nemesis())
        .map(|r| {
            let step = r
                .value
                .fault()
                .expect("a nemesis record's value is a fault step");
            (step.fault, step.occurrence)
        })
        .collect();
    occurrences.sort_unstable();
    occurrences.dedup();
    assert_eq!(occurrences.len(), 4, "the plan draws four: {occurrences:?}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let faults = html
        .split(r#"<section id="faults">"#)
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a faults section");
    for (fault, occurrence) in &occurrences {
        let id = format!("{fault}.{occurrence}");
        assert!(
            faults.contains(&format!(">{id}</a></td>")),
            "no row for {id}"
        );
        assert!(
            html.contains(&format!(r#"<title>fault {id}: "#)),
            "no window for {id}"
        );
    }
    assert_eq!(
        faults.matches("rowspan=").count() / 7,
        occurrences.len(),
        "one row per occurrence"
    );
}

/// A real lab run (root and smbd, as every `smbchaos run` test): one JUnit file for the plan
/// set, a test case per plan, the failing checker's explanation as the failure message.
#[test]
fn run_writes_one_junit_file_for_the_plan_set() {
    let dir = out_dir("cli-junit");
    let failing = dir.join("failing.yaml");
    std::fs::write(
        &failing,
        "version: 1\nname: junit-failing\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }]\n\
         workload:\n  steps:\n    - exec: { client: c1, run: exit 3 }\n",
    )
    .unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let junit = dir.join("set.xml");
    let out = output_within(
        Command::new(BIN)
            .arg("run")
            .arg("--results")
            .arg(dir.join("results"))
            .arg("--junit")
            .arg(&junit)
            .arg("plans/smoke.yaml")
            .arg(&failing)
            .current_dir(&repo),
        "smbchaos run smoke.yaml failing.yaml",
        LAB_RUN,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="plans" tests="2" skipped="0" errors="0" failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="plans/smoke.yaml" classname="smoke""#),
        "{xml}"
    );
    // The failing checker's explanation is the message (op indexes depend on what else the
    // history records, so only its shape is pinned).
    let message = xml
        .split(r#"<failure message=""#)
        .nth(1)
        .expect("a failure")
        .split('"')
        .next()
        .unwrap();
    assert!(
        message.starts_with("exec: 1 of 1 exec steps failed: op ")
            && message.ends_with("exit 3, expected 0"),
        "{xml}"
    );
    // Each run's directory has its own report and JUnit file.
    for plan in ["smoke", "junit-failing"] {
        let run = dir.join("results").join(plan).join("latest");
        assert!(
            run.join(results::JUNIT).exists() && run.join("report.html").exists(),
            "{}",
            run.display()
        );
    }
}

/// A real lab run of `plans/phases.yaml`: the history records each phase's start, and each
/// phase's ops are its own mix at its own rate — never faster, not even catching up after the
/// reset in the middle of the chaos phase.
#[test]
fn the_generator_runs_its_phases_in_turn() {
    let dir = out_dir("cli-phases");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = output_within(
        Command::new(BIN)
            .arg("run")
            .arg("--results")
            .arg(&dir)
            .arg("plans/phases.yaml")
            .current_dir(&repo),
        "smbchaos run plans/phases.yaml",
        LAB_RUN,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = history::read(&dir.join("phases").join("latest").join(results::HISTORY)).unwrap();
    let starts: Vec<(u64, u64)> = history
        .iter()
        .filter_map(|r| match &r.value {
            Value::Phase(p) => Some((p.phase, r.time_ns)),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts.iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "{starts:?}"
    );
    let end = history.last().unwrap().time_ns;
    let bounds = [starts[0].1, starts[1].1, starts[2].1, end];
    // Ops invoked in each phase, by f; 100 ms either side of a boundary is left out (an op
    // drawn just before it is recorded just after).
    let margin = 100_000_000;
    let mut per_phase: Vec<Vec<(u64, &str)>> = vec![Vec::new(); 3];
    for r in history
        .iter()
        .filter(|r| r.kind == OpType::Invoke && matches!(r.f.as_str(), "read" | "write" | "flush"))
    {
        for p in 0..3 {
            if r.time_ns > bounds[p] + margin && r.time_ns + margin < bounds[p + 1] {
                per_phase[p].push((r.time_ns, r.f.as_str()));
            }
        }
    }
    let fs: Vec<Vec<&str>> = per_phase
        .iter()
        .map(|ops| {
            let mut f: Vec<&str> = ops.iter().map(|o| o.1).collect();
            f.sort_unstable();
            f.dedup();
            f
        })
        .collect();
    assert_eq!(fs, [vec!["read"], vec!["write"], vec!["read"]]);
    let rate = |p: usize| {
        let secs = (bounds[p + 1] - bounds[p] - 2 * margin) as f64 / 1e9;
        per_phase[p].len() as f64 / secs
    };
    let (warm, chaos, quiet) = (rate(0), rate(1), rate(2));
    assert!(warm <= 11.0 && quiet <= 5.5, "{warm} {quiet} ops/s");
    assert!(chaos > 2.0 * warm, "chaos {chaos} ops/s, warm-up {warm}");
    // No second of the chaos phase (a reset in it) has more than its rate: no catching up.
    for w in per_phase[1].windows(43) {
        assert!(w[42].0 - w[0].0 >= 1_000_000_000, "43 ops within a second");
    }
}
