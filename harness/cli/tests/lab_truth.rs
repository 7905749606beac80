//! The harness never judges a lab that is not what the plan says (issue: a fresh machine runs
//! the plan set). Real runs through the built binary:
//! - a share smbd cannot serve stops the run before any workload: exit 2, naming the node,
//!   the share, the NTSTATUS and the smbd log line, with results marked incomplete;
//! - a plan naming a VFS module smbd lacks fails `validate` and `run` before any lab exists;
//! - a fault the plan requires to land that had nothing to act on fails the verdict, named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

fn smbchaos(args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN).args(args).output().expect("run smbchaos");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out, text)
}

fn write_plan(dir: &Path, name: &str, share_options: &str, rest: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"version: 1
name: {name}
description: lab-truth test plan
seed: 7
topology:
  servers:
    - name: fs1
      shares:
        - name: data
          options: {{ {share_options} }}
  clients:
    - name: c1
    - name: idle
{rest}"#
        ),
    )
    .unwrap();
    path
}

const PUT: &str = r#"workload:
  steps:
    - exec:
        client: c1
        run: smbclient //$SMBCHAOS_ADDR_FS1/data -A $SMBCHAOS_AUTH_FILE -c ls
"#;

/// The only run directory under `results`.
fn run_dir(results: &Path) -> PathBuf {
    let plan_dir = std::fs::read_dir(results)
        .unwrap()
        .next()
        .expect("a plan directory")
        .unwrap()
        .path();
    plan_dir.join("latest")
}

#[test]
fn a_share_smbd_cannot_serve_stops_the_run_with_exit_2_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // `path` overridden to a directory that does not exist: smbd refuses the TREE_CONNECT.
    let plan = write_plan(dir.path(), "bad-path", "path: /nonexistent/smbchaos", PUT);
    let results = dir.path().join("results");
    let (out, text) = smbchaos(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for needle in [
        "fs1",
        "`data`",
        "TREE_CONNECT",
        "STATUS_BAD_NETWORK_NAME",
        "canonicalize_connect_path failed",
        "fix:",
    ] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
    for verdict in ["PASS", "FAIL", "UNKNOWN"] {
        assert!(
            !text.contains(&format!(": {verdict}")),
            "judged anyway:\n{text}"
        );
    }
    let run = run_dir(&results);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["complete"], false, "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("STATUS_BAD_NETWORK_NAME"),
        "{status}"
    );
    assert!(!run.join("verdict.json").exists(), "a verdict was written");
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        report.contains("STATUS_BAD_NETWORK_NAME"),
        "report.html does not give the reason"
    );
}

#[test]
fn a_missing_vfs_module_fails_validate_and_run_before_any_lab() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "bad-vfs",
        "vfs objects: streams_xattr no_such_vfs_module",
        PUT,
    );
    let (out, text) = smbchaos(&["validate", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("`no_such_vfs_module` is missing"), "{text}");
    assert!(text.contains("samba-vfs-modules"), "{text}");

    let results = dir.path().join("results");
    let (out, text) = smbchaos(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("`no_such_vfs_module` is missing"), "{text}");
    assert!(text.contains("nothing was started"), "{text}");
    assert!(!results.exists(), "a run started: {}", results.display());
}

#[test]
fn a_required_fault_with_nothing_to_act_on_fails_the_run_named() {
    let dir = tempfile::tempdir().unwrap();
    // No SMB connection exists when the reset comes (the exec step opens none), so it resets
    // nothing; the plan says it must land.
    let plan = write_plan(
        dir.path(),
        "missed-reset",
        "",
        r#"workload:
  steps:
    - exec:
        client: c1
        run: "true"
faults:
  - { kind: reset, node: fs1, at: 0s, require_effect: true }
  - { kind: pause, node: idle, at: 0s, for: 100ms }
"#,
    );
    let results = dir.path().join("results");
    let (out, text) = smbchaos(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("fault reset fs1 started: no effect"),
        "{text}"
    );
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir(&results).join("verdict.json")).unwrap())
            .unwrap();
    let effects = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == "fault-effects")
        .expect("a fault-effects checker")
        .clone();
    assert_eq!(effects["outcome"], "fail", "{effects}");
    let why = effects["explanation"].as_str().unwrap();
    assert!(why.contains("fault 0.0 (reset fs1) had no effect"), "{why}");
    assert!(!effects["ops"].as_array().unwrap().is_empty(), "{effects}");
    let report = std::fs::read_to_string(run_dir(&results).join("report.html")).unwrap();
    assert!(
        report.contains(">no effect<"),
        "report.html does not show the missed fault"
    );
    // The pause of a client that runs nothing froze nothing either; it is not required, so it
    // is only said.
    let availability = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == "availability")
        .unwrap()
        .clone();
    assert!(
        availability["explanation"]
            .as_str()
            .unwrap()
            .contains("(pause idle) had no effect"),
        "{availability}"
    );
}
