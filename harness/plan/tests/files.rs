//! Hand-written plan files: good ones load, bad ones fail with exactly these messages.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use smbchaos_plan::{ExecExpectation, FaultKind, PlanDuration, PlanError, Step};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/plans")
        .join(kind)
}

fn bad(name: &str) -> PlanError {
    let text = std::fs::read_to_string(dir("bad").join(name)).unwrap();
    match smbchaos_plan::parse_str(&format!("bad/{name}"), &text) {
        Ok(plan) => panic!("bad/{name} was accepted: {plan:?}"),
        Err(e) => e,
    }
}

/// The error for `bad/<name>` is exactly `expected`, one line per problem.
fn assert_bad(name: &str, expected: &[&str]) {
    let err = bad(name);
    assert_eq!(err.to_string(), expected.join("\n"), "bad/{name}");
    assert_eq!(err.problems().len(), expected.len());
    assert_eq!(err.file(), format!("bad/{name}"));
}

#[test]
fn every_good_plan_loads() {
    let mut count = 0;
    for entry in std::fs::read_dir(dir("good")).unwrap() {
        let path = entry.unwrap().path();
        if let Err(e) = smbchaos_plan::load(&path) {
            panic!("{e}");
        }
        count += 1;
    }
    assert!(count >= 3);
}

#[test]
fn every_bad_plan_is_rejected_with_locations() {
    for entry in std::fs::read_dir(dir("bad")).unwrap() {
        let path = entry.unwrap().path();
        let err = smbchaos_plan::load(&path).expect_err(&path.display().to_string());
        for (line, column, message) in err.locations() {
            assert!(
                line > 0 && column > 0,
                "{}: no location for {message}",
                path.display()
            );
        }
    }
}

/// Every file under `dir`, recursively and sorted, but `schema/` (the generated JSON Schema).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut out = Vec::new();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "schema") {
                out.extend(files_under(&path));
            }
        } else {
            out.push(path);
        }
    }
    out
}

/// Validate every file under a plans directory: how many plans loaded, and one message per
/// file that did not. A file that is not `*.yaml`/`*.yml` is a problem too: `smbchaos run
/// plans/` and the plan tests would skip it without a word.
fn validate_plans_dir(dir: &Path) -> (usize, Vec<String>) {
    let mut loaded = 0;
    let mut problems = Vec::new();
    for path in files_under(dir) {
        if !path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            problems.push(format!(
                "{}: not a plan (*.yaml); `smbchaos run` would skip it",
                path.display()
            ));
            continue;
        }
        match smbchaos_plan::load(&path) {
            Ok(_) => loaded += 1,
            Err(e) => problems.push(e.to_string()),
        }
    }
    (loaded, problems)
}

#[test]
fn the_projects_own_plans_load() {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans");
    let (loaded, problems) = validate_plans_dir(&plans);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The default plan set (README): smoke, faults/, field/. Fewer means the walk lost some.
    assert!(
        loaded >= 13,
        "only {loaded} plans found under {}",
        plans.display()
    );
}

#[test]
fn a_bad_plan_anywhere_under_plans_fails_validation() {
    let root = std::env::temp_dir().join(format!("smbchaos-plans-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let deep = root.join("field/deeper");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(root.join("schema")).unwrap();
    let good = std::fs::read_to_string(dir("good").join("minimal.yaml")).unwrap();
    let bad = std::fs::read_to_string(dir("bad").join("fault_kind.yaml")).unwrap();
    std::fs::write(root.join("top.yaml"), &good).unwrap();
    std::fs::write(root.join("field/ok.yml"), &good).unwrap();
    std::fs::write(deep.join("broken.yaml"), &bad).unwrap();
    std::fs::write(deep.join("notes.txt"), "not a plan").unwrap();
    // schema/ holds the JSON Schema, never validated as a plan.
    std::fs::write(root.join("schema/plan.schema.json"), "{}").unwrap();
    std::fs::write(root.join("schema/odd.yaml"), "not: [a plan").unwrap();

    let (loaded, problems) = validate_plans_dir(&root);
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(loaded, 2, "{problems:?}");
    assert_eq!(problems.len(), 2, "{problems:?}");
    let broken = deep.join("broken.yaml").display().to_string();
    assert!(
        problems[0].starts_with(&format!("{broken}:7:11: unknown value `explode`")),
        "{problems:?}"
    );
    assert_eq!(
        problems[1],
        format!(
            "{}: not a plan (*.yaml); `smbchaos run` would skip it",
            deep.join("notes.txt").display()
        )
    );
}

#[test]
fn smoke_plan_reads_as_written() {
    let plan = smbchaos_plan::load(&dir("good").join("smoke.yaml")).unwrap();
    assert_eq!(plan.version.value, 1);
    assert_eq!(plan.name, "smoke");
    assert_eq!((plan.name.line(), plan.name.column()), (2, 7));
    assert_eq!(plan.seed, 1);
    let fs1 = &plan.topology.servers[0];
    assert_eq!(fs1.name, "fs1");
    assert_eq!(fs1.address, None);
    assert_eq!(fs1.global["server min protocol"], "SMB2_02");
    assert_eq!(fs1.shares.len(), 1);
    assert_eq!(fs1.shares[0].name, "share");
    assert_eq!(fs1.shares[0].options["durable handles"], "yes");
    assert_eq!(plan.topology.clients[0].name, "c1");
    let Step::Exec(exec) = &plan.workload.steps[0];
    assert_eq!(exec.client, "c1");
    assert_eq!((exec.client.line(), exec.client.column()), (18, 17));
    assert!(exec.run.starts_with("smbclient //$SMBCHAOS_ADDR_FS1/share"));
    assert_eq!(exec.expect_exit, 0);
    assert_eq!(exec.timeout, PlanDuration::from_secs(60));
    let fault = &plan.faults[0];
    assert_eq!(*fault.kind, FaultKind::Pause);
    assert_eq!(fault.node.as_ref().unwrap(), "fs1");
    assert_eq!(fault.at.as_duration(), Duration::from_secs(1));
    assert_eq!(
        fault.hold.as_ref().unwrap().as_duration(),
        Duration::from_millis(500)
    );
    assert_eq!(plan.expect.exec, ExecExpectation::ExpectedExit);
}

#[test]
fn defaults_fill_what_a_minimal_plan_leaves_out() {
    let plan = smbchaos_plan::load(&dir("good").join("minimal.yaml")).unwrap();
    assert_eq!(plan.description, "");
    assert_eq!(plan.seed, 0);
    assert!(plan.topology.clients.is_empty());
    let shares = &plan.topology.servers[0].shares;
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0].name, "share");
    assert_eq!(shares[0].name.location(), None);
    assert!(plan.workload.steps.is_empty());
    assert!(plan.faults.is_empty());
    assert_eq!(plan.expect.exec, ExecExpectation::ExpectedExit);
}

#[test]
fn full_plan_reads_as_written() {
    let plan = smbchaos_plan::load(&dir("good").join("full.yaml")).unwrap();
    assert_eq!(plan.seed, u64::MAX);
    assert_eq!(
        plan.description,
        "Two servers, three clients, every fault kind.\n"
    );
    assert_eq!(
        plan.topology.servers[0].address.unwrap().value,
        Ipv4Addr::new(198, 18, 0, 10)
    );
    assert_eq!(plan.topology.servers[0].shares[1].name, "Scratch Space");
    assert!(plan.topology.servers[1].shares.is_empty());
    let Step::Exec(exec) = &plan.workload.steps[1];
    assert_eq!(
        (exec.expect_exit, exec.timeout),
        (3, PlanDuration::from_millis(1500))
    );
    let kinds: Vec<FaultKind> = plan.faults.iter().map(|f| *f.kind).collect();
    assert_eq!(
        kinds,
        [
            FaultKind::Kill,
            FaultKind::Stop,
            FaultKind::Pause,
            FaultKind::Restart
        ]
    );
    assert_eq!(plan.faults[0].at.as_duration(), Duration::ZERO);
    assert_eq!(plan.expect.exec, ExecExpectation::Any);
}

#[test]
fn a_plan_writes_back_to_the_same_plan() {
    for name in ["smoke.yaml", "minimal.yaml", "full.yaml"] {
        let plan = smbchaos_plan::load(&dir("good").join(name)).unwrap();
        let yaml = serde_saphyr::to_string(&plan).unwrap();
        let again = smbchaos_plan::parse_str(name, &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(plan, again, "{name}");
        let json = serde_json::to_value(&plan).unwrap();
        let from_json: smbchaos_plan::Plan = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(plan, from_json, "{name}");
        if name == "smoke.yaml" {
            assert_eq!(json["faults"][0]["at"], "1s");
            assert_eq!(json["faults"][0]["for"], "500ms");
            assert_eq!(json["workload"]["steps"][0]["exec"]["timeout"], "1m");
            assert_eq!(json["name"], "smoke");
        }
    }
}

#[test]
fn unreadable_file() {
    let err = smbchaos_plan::load(Path::new("/nonexistent/plan.yaml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/plan.yaml: cannot read: No such file or directory (os error 2)"
    );
    assert!(err.problems().is_empty());
}

// Syntax and shape errors: the first one found, where serde-saphyr found it.

#[test]
fn misspelt_top_level_key() {
    assert_bad(
        "top_level_key.yaml",
        &["bad/top_level_key.yaml:3:1: unknown key `topolgy`, expected one of `version`, `name`, `description`, `seed`, `topology`, `workload`, `faults`, `expect`, `flake_rate`"],
    );
}

#[test]
fn misspelt_topology_key() {
    assert_bad(
        "topology_key.yaml",
        &["bad/topology_key.yaml:4:3: unknown key `serverz`, expected one of `networks`, `servers`, `clusters`, `clients`, `wire`, `mtu`, `capture_snaplen`, `capture_limit`, `provider`"],
    );
}

#[test]
fn misspelt_server_key() {
    assert_bad(
        "server_key.yaml",
        &["bad/server_key.yaml:6:7: unknown key `sahres`, expected one of `name`, `address`, `networks`, `global`, `shares`, `environment`, `samba`"],
    );
}

#[test]
fn misspelt_key_inside_a_step() {
    assert_bad(
        "exec_key.yaml",
        &["bad/exec_key.yaml:13:9: unknown key `expect_exit_code`, expected one of `client`, `run`, `expect_exit`, `timeout`"],
    );
}

#[test]
fn misspelt_step_kind() {
    assert_bad(
        "step_kind.yaml",
        &["bad/step_kind.yaml:10:7: unknown value `exex`, expected `exec`"],
    );
}

#[test]
fn unknown_fault_kind() {
    assert_bad(
        "fault_kind.yaml",
        &["bad/fault_kind.yaml:7:11: unknown value `explode`, expected one of `reset`, `blackhole`, `partition`, `impair`, `kill`, `stop`, `pause`, `restart`, `crash`, `moveip`, `drop_tickles`, `admin`, `isolate`, `client_move`, `power_cut`, `hold`, `message`, `random`"],
    );
}

#[test]
fn wrong_type_seed() {
    assert_bad(
        "seed_type.yaml",
        &["bad/seed_type.yaml:3:7: expected a whole number from 0 to 18446744073709551615, found `\"abc\"`"],
    );
}

#[test]
fn wrong_type_servers() {
    assert_bad(
        "servers_type.yaml",
        &["bad/servers_type.yaml:5:5: expected a list"],
    );
}

#[test]
fn missing_key() {
    assert_bad(
        "missing_key.yaml",
        &["bad/missing_key.yaml:2:1: missing key `topology`"],
    );
}

#[test]
fn empty_file() {
    assert_bad(
        "empty.yaml",
        &["bad/empty.yaml:1:1: the file is empty; a plan starts with `version: 1`"],
    );
}

#[test]
fn address_syntax() {
    assert_bad(
        "address_syntax.yaml",
        &["bad/address_syntax.yaml:6:16: invalid IPv4 address `198.18.0.300`; expected an address like 198.18.0.20"],
    );
}

#[test]
fn negative_duration() {
    assert_bad(
        "negative_duration.yaml",
        &["bad/negative_duration.yaml:9:9: `-5s` is a negative duration; a duration is 0s or more, written as a number with a unit: 250ms, 5s, 1.5s, 2m or 1h"],
    );
}

#[test]
fn duration_without_unit() {
    assert_bad(
        "bare_duration.yaml",
        &["bad/bare_duration.yaml:10:10: `5` has no unit; write a duration as a number with a unit: 250ms, 5s, 1.5s, 2m or 1h"],
    );
}

// Semantic errors: all of them, in file order.

#[test]
fn unsupported_version() {
    assert_bad(
        "version.yaml",
        &["bad/version.yaml:1:10: unsupported plan version 2; this smbchaos reads version 1"],
    );
}

#[test]
fn empty_servers() {
    assert_bad(
        "empty_servers.yaml",
        &["bad/empty_servers.yaml:4:12: a plan must have at least one server or cluster"],
    );
}

#[test]
fn plan_name_must_be_a_directory_name() {
    assert_bad(
        "plan_name.yaml",
        &["bad/plan_name.yaml:2:7: plan name `my plan/1` cannot be used as a directory name; use letters, digits, `.`, `_` and `-` (not `.` or `..`)"],
    );
}

#[test]
fn dangling_exec_client() {
    assert_bad(
        "exec_client_unknown.yaml",
        &["bad/exec_client_unknown.yaml:12:17: unknown client `x`; clients are: a, b"],
    );
    assert_bad(
        "exec_no_clients.yaml",
        &["bad/exec_no_clients.yaml:8:23: unknown client `c1`; the plan has no clients"],
    );
}

#[test]
fn exec_client_is_a_server() {
    assert_bad(
        "exec_client_server.yaml",
        &["bad/exec_client_server.yaml:10:23: `fs1` is a server, but an exec step runs on a client; clients are: c1"],
    );
}

#[test]
fn dangling_fault_node() {
    assert_bad(
        "fault_node_unknown.yaml",
        &["bad/fault_node_unknown.yaml:11:11: unknown node `fs3`; nodes are: fs1, fs2, c1"],
    );
}

#[test]
fn fault_durations_and_targets() {
    assert_bad(
        "fault_durations.yaml",
        &[
            "bad/fault_durations.yaml:12:10: `for` must be longer than 0s",
            "bad/fault_durations.yaml:16:10: a `restart` fault is instantaneous and has no heal, so it takes no `for`",
            "bad/fault_durations.yaml:18:11: a `kill` fault acts on a server, and `c1` is a client",
        ],
    );
}

#[test]
fn duplicate_node_names() {
    assert_bad(
        "duplicate_nodes.yaml",
        &[
            "bad/duplicate_nodes.yaml:6:13: duplicate node name `fs1` (first defined at line 5, column 13)",
            "bad/duplicate_nodes.yaml:9:13: duplicate node name `fs1` (first defined at line 5, column 13)",
        ],
    );
}

#[test]
fn node_name_syntax() {
    const RULE: &str =
        "a node name is a lowercase letter followed by at most 14 lowercase letters, digits or `-`";
    let expected = [
        format!("bad/node_names.yaml:5:13: empty node name; {RULE}"),
        format!("bad/node_names.yaml:6:13: invalid node name `Fs1`; {RULE}"),
        format!("bad/node_names.yaml:7:13: invalid node name `fs1-is-far-too-long`; {RULE}"),
        format!("bad/node_names.yaml:8:13: invalid node name `1fs`; {RULE}"),
        format!("bad/node_names.yaml:10:13: invalid node name `c_1`; {RULE}"),
    ];
    assert_bad(
        "node_names.yaml",
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
fn address_outside_the_lab_network() {
    assert_bad(
        "address_outside.yaml",
        &["bad/address_outside.yaml:6:16: address 10.0.0.1 is outside the lab network 198.18.0.0/15"],
    );
}

#[test]
fn address_rules() {
    assert_bad(
        "addresses.yaml",
        &[
            "bad/addresses.yaml:6:16: address 198.18.0.0 is the network address of 198.18.0.0/15",
            "bad/addresses.yaml:8:16: address 198.19.255.255 is the broadcast address of 198.18.0.0/15",
            "bad/addresses.yaml:13:16: address 198.18.0.20 is already used by node `fs3`",
            "bad/addresses.yaml:15:16: address 198.17.255.255 is outside the lab network 198.18.0.0/15",
        ],
    );
}

#[test]
fn share_names() {
    const RULE: &str = "a share name has 1 to 80 characters, does not start with `.` or a space, \
        does not end with a space, and has no control characters or any of \" / \\ [ ] : | < > + = ; , ? *";
    let expected = [
        "bad/shares.yaml:8:17: duplicate share name `DATA` on server `fs1` (first defined at line 7, column 17)".to_string(),
        "bad/shares.yaml:9:17: share name `Homes` is reserved in smb.conf (`[homes]`); choose another name".to_string(),
        "bad/shares.yaml:10:17: share name `global` is reserved in smb.conf (`[global]`); choose another name".to_string(),
        format!("bad/shares.yaml:11:17: invalid share name `a/b`; {RULE}"),
        format!("bad/shares.yaml:12:17: invalid share name `..`; {RULE}"),
    ];
    assert_bad(
        "shares.yaml",
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
fn several_problems_are_reported_together() {
    assert_bad(
        "several.yaml",
        &[
            "bad/several.yaml:1:10: unsupported plan version 3; this smbchaos reads version 1",
            "bad/several.yaml:6:16: address 192.168.1.1 is outside the lab network 198.18.0.0/15",
            "bad/several.yaml:8:13: duplicate node name `fs1` (first defined at line 5, column 13)",
            "bad/several.yaml:12:17: unknown client `c9`; clients are: fs1",
            "bad/several.yaml:16:11: unknown node `nowhere`; nodes are: fs1",
        ],
    );
    let err = bad("several.yaml");
    assert_eq!(
        err.locations()[0],
        (
            1,
            10,
            "unsupported plan version 3; this smbchaos reads version 1"
        )
    );
}

#[test]
fn phases_need_lengths_and_must_begin_in_time() {
    assert_bad(
        "phases.yaml",
        &[
            "bad/phases.yaml:14:7: every phase but the last needs `for` (how long it lasts)",
            "bad/phases.yaml:15:7: a phase's `rate` must be above 0",
            "bad/phases.yaml:16:7: phase 3 begins at 6s, when the workload's duration is over",
        ],
    );
}

#[test]
fn capture_limit_reads_sizes_and_refuses_a_tiny_cap_or_no_files() {
    let plan = smbchaos_plan::load(&dir("good").join("capture_limit.yaml")).unwrap();
    let limit = plan.topology.capture_limit.as_ref().unwrap();
    assert_eq!(limit.value.max_bytes.0, 200 << 20);
    assert_eq!(limit.value.rotate, 4);
    assert_bad(
        "capture_limit.yaml",
        &[
            "bad/capture_limit.yaml:6:18: capture_limit max_bytes 512KiB is below 1MiB",
            "bad/capture_limit.yaml:6:18: capture_limit rotate 0 is outside 1..=1000",
        ],
    );
    let err = bad("capture_limit_size.yaml").to_string();
    assert!(
        err.starts_with("bad/capture_limit_size.yaml:6:")
            && err.contains("invalid size `200 MegaBytes`; write a size like 200MiB"),
        "{err}"
    );
}
