//! End to end on real Samba, deliberately misconfigured so an invariant breaks: each run must
//! FAIL (exit 1) and its verdict must name the ops that prove it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{output_within, LAB_RUN};

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

fn run_failing(plan: &str, checker: &str) -> serde_json::Value {
    let results = tempfile::tempdir().unwrap();
    let plan_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plans")
        .join(plan);
    let out = output_within(
        Command::new(BIN).args([
            "-q",
            "run",
            "--results",
            results.path().to_str().unwrap(),
            plan_path.to_str().unwrap(),
        ]),
        &format!("smbchaos run {plan}"),
        LAB_RUN,
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let name = std::fs::read_dir(results.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(name.join("latest/verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["outcome"], "fail");
    let failed = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == checker)
        .unwrap()
        .clone();
    assert_eq!(failed["outcome"], "fail", "{failed}");
    assert!(
        !failed["ops"].as_array().unwrap().is_empty(),
        "the verdict names no op: {failed}"
    );
    failed
}

#[test]
fn durable_handles_disabled_while_the_plan_expects_reclaim() {
    let failed = run_failing("durable-disabled.yaml", "handle-resume");
    let why = failed["explanation"].as_str().unwrap();
    assert!(why.contains("was not granted one"), "{why}");
}

#[test]
fn writes_refused_while_the_plan_expects_progress() {
    let failed = run_failing("readonly-share.yaml", "availability");
    assert!(
        failed["explanation"]
            .as_str()
            .unwrap()
            .contains("no op succeeded"),
        "{failed}"
    );
}

/// A heal that does not take fails the run loudly: an exec step gives the server's smb.conf a
/// lock directory that cannot be created. Whether that lands before or during the kill does not
/// matter (a running smbd never rereads it), so no sleep orders the two: the heal's restart fails.
#[test]
fn a_heal_that_does_not_take_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("bad-heal.yaml");
    std::fs::write(
        &plan,
        r#"version: 1
name: bad-heal
topology:
  servers: [{ name: fs1 }]
  clients: [{ name: c1 }]
workload:
  steps:
    - exec:
        client: c1
        run: printf '[global]\n\tlock directory = /etc/hostname/not-a-dir\n' >> $SMBCHAOS_WORK_DIR/../../fs1/smb.conf
faults:
  - { kind: kill, node: fs1, at: 200ms, for: 1s }
"#,
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = output_within(
        Command::new(BIN).args([
            "-q",
            "run",
            "--results",
            results.to_str().unwrap(),
            plan.to_str().unwrap(),
        ]),
        "smbchaos run bad-heal.yaml",
        LAB_RUN,
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("heal of fault 0 (kill) did not take"),
        "{text}"
    );
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join("bad-heal/latest/status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["complete"], false);
    assert!(
        status["error"].as_str().unwrap().contains("did not take"),
        "{status}"
    );
    // The failed heal still left nothing behind.
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let run_id = status["run_id"].as_str().unwrap_or_default().to_string();
    assert!(
        run_id.is_empty() || !left.iter().any(|n| n.contains(&run_id)),
        "{left:?}"
    );
}
