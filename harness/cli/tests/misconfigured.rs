//! End to end on real Samba, deliberately misconfigured so an invariant breaks: each run must
//! FAIL (exit 1) and its verdict must name the ops that prove it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

fn run_failing(plan: &str, checker: &str) -> serde_json::Value {
    let results = tempfile::tempdir().unwrap();
    let plan_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plans")
        .join(plan);
    let out = Command::new(BIN)
        .args([
            "-q",
            "run",
            "--results",
            results.path().to_str().unwrap(),
            plan_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
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
