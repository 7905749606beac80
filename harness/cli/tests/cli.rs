//! The `smbchaos` binary end to end: real labs, real smbd, real signals.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{output_within, wait_within, Lines, LAB_RUN, NO_LAB};

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `smbchaos <args>`, stopped and failed if it is still running at the deadline: a lab run
/// gets `LAB_RUN`, anything else `NO_LAB`.
fn smbchaos(args: &[&str]) -> std::process::Output {
    let deadline = if args.contains(&"run") {
        LAB_RUN
    } else {
        NO_LAB
    };
    output_within(
        Command::new(BIN).args(args).current_dir(repo()),
        &format!("smbchaos {}", args.join(" ")),
        deadline,
    )
}

fn write_plan(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn smoke_plan_passes_and_leaves_a_complete_result() {
    let results = tempfile::tempdir().unwrap();
    let out = smbchaos(&[
        "run",
        "--results",
        results.path().to_str().unwrap(),
        "plans/smoke.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let latest = results.path().join("smoke/latest");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(latest.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["complete"], true);
    assert_eq!(status["outcome"], "pass");
    let history = std::fs::read_to_string(latest.join("history.jsonl")).unwrap();
    // Two exec ops and the pause fault's start and heal, each an invoke and an ok (besides
    // the wire's link-counter samples).
    let ops = history
        .lines()
        .filter(|l| !l.contains(r#""f":"link_counters""#))
        .count();
    assert_eq!(ops, 8, "{history}");
    assert!(latest.join("logs/fs1/log.smbd").exists());
    // `check` re-judges the stored history with no lab and agrees.
    let check = smbchaos(&["check", latest.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
}

#[test]
fn a_failing_step_fails_the_run_and_names_the_op() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "missing.yaml",
        r#"version: 1
name: missing-file
topology:
  servers: [{ name: fs1 }]
  clients: [{ name: c1 }]
workload:
  steps:
    - exec:
        client: c1
        run: smbclient //$SMBCHAOS_ADDR_FS1/share -A $SMBCHAOS_AUTH_FILE -c 'get never-written.txt'
"#,
    );
    let results = dir.path().join("results");
    let out = smbchaos(&[
        "run",
        "--results",
        results.to_str().unwrap(),
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let verdict: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.join("missing-file/latest/verdict.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(verdict["outcome"], "fail");
    // The verdict names the failed exec op: the history's `fail` record.
    let history =
        std::fs::read_to_string(results.join("missing-file/latest/history.jsonl")).unwrap();
    let failed: serde_json::Value = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["f"] == "exec" && r["type"] == "fail")
        .expect("a failed exec op");
    assert_eq!(
        verdict["checkers"][0]["ops"],
        serde_json::json!([failed["index"]])
    );
    let op = failed["index"].as_u64().unwrap();
    assert!(
        text(&out).contains(&format!("op {op} exit 1, expected 0")),
        "{}",
        text(&out)
    );
}

#[test]
fn validate_names_file_line_column_and_the_allowed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "typo.yaml",
        "version: 1\nname: typo\ntopology:\n  servers:\n    - name: fs1\n      sharez: []\n",
    );
    let out = smbchaos(&["validate", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(msg.contains(&format!("{}:6:7: ", plan.display())), "{msg}");
    assert!(
        msg.contains("`sharez`") && msg.contains("`shares`") && msg.contains("`global`"),
        "{msg}"
    );
    let ok = smbchaos(&["validate", "plans/smoke.yaml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
}

#[test]
fn doctor_reports_netem_truthfully_with_what_replaces_it() {
    let out = smbchaos(&["doctor"]);
    let msg = text(&out);
    let netem_line = msg
        .lines()
        .find(|l| l.contains("kernel netem"))
        .expect("a netem line");
    let kernel_has_netem = Command::new("sh")
        .args([
            "-c",
            "grep -qw sch_netem /proc/modules || test -e /sys/module/sch_netem",
        ])
        .status()
        .unwrap()
        .success();
    if kernel_has_netem {
        assert!(netem_line.starts_with("ok"), "{msg}");
    } else {
        assert!(netem_line.starts_with("missing"), "{msg}");
        assert!(msg.contains("userspace wire"), "{msg}");
    }
    assert!(
        msg.lines()
            .any(|l| l.starts_with("ok") && l.contains("Samba smbd")),
        "{msg}"
    );
}

/// Start `smbchaos run` on a plan that holds its lab for a minute; return the child once its
/// client's `sleep` is running, with the run id.
fn start_holding_run(dir: &Path) -> (std::process::Child, String) {
    start_holding_run_with(dir, &[])
}

/// `start_holding_run` with extra `smbchaos run` options.
fn start_holding_run_with(dir: &Path, extra: &[&str]) -> (std::process::Child, String) {
    let plan = write_plan(
        dir,
        "hold.yaml",
        r#"version: 1
name: hold
topology:
  servers: [{ name: fs1 }]
  clients: [{ name: c1 }]
workload:
  steps:
    - exec: { client: c1, run: "exec sleep 60" }
"#,
    );
    let results = dir.join("results");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--results",
            results.to_str().unwrap(),
            plan.to_str().unwrap(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        // Where a run says why it stopped (`ERROR: ...`): kept to explain a failure below.
        .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its stderr is drained to the end on a thread, so the run never writes into a closed
    // pipe. A lab comes up in seconds; a minute is for a loaded machine, and a run stuck
    // before its workload (a lab that never gets ready) fails here with what it printed.
    let stderr = Lines::new(child.stderr.take().unwrap());
    let mut run_id = None;
    let reached = stderr.until(
        "smbchaos reaching its workload",
        Duration::from_secs(60),
        |line| {
            if let Some(rest) = line.trim().strip_prefix("lab ") {
                run_id = rest.split_whitespace().next().map(str::to_string);
            }
            line.contains("phase Workload").then_some(())
        },
    );
    if let Err(why) = reached {
        let _ = wait_within(child, Duration::ZERO);
        let stdout = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
        panic!("{why}\n--- its stdout:\n{stdout}");
    }
    let run_id = run_id.expect("the run reported its lab");
    // The workload has started; wait (bounded) until the client's process is in its cgroup.
    let group = format!("/sys/fs/cgroup/freezer/smbchaos/{run_id}/c1/cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&group)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        if Instant::now() >= deadline {
            let _ = wait_within(child, Duration::ZERO);
            panic!(
                "the client step never started: {group} stayed empty for 10 s; smbchaos printed:\n{}",
                stderr.seen.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, run_id)
}

fn lab_namespaces(run_id: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&format!("sc-{run_id}-")))
                .collect()
        })
        .unwrap_or_default()
}

fn group_pids(run_id: &str) -> Vec<i32> {
    ["fs1", "c1"]
        .iter()
        .flat_map(|n| {
            std::fs::read_to_string(format!(
                "/sys/fs/cgroup/freezer/smbchaos/{run_id}/{n}/cgroup.procs"
            ))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect::<Vec<i32>>()
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

fn assert_nothing_left(run_id: &str, pids: &[i32]) {
    assert!(
        lab_namespaces(run_id).is_empty(),
        "namespaces left: {:?}",
        lab_namespaces(run_id)
    );
    assert!(
        !Path::new(&format!("/run/smbchaos/{run_id}.json")).exists(),
        "run-state entry left"
    );
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/freezer/smbchaos/{run_id}")).exists(),
        "cgroup left"
    );
    assert!(
        !Path::new(&format!("/var/tmp/smbchaos/{run_id}")).exists(),
        "lab directory left"
    );
    for pid in pids {
        assert!(!alive(*pid), "process {pid} survived");
    }
    // Nothing was ever made in the root namespace: no interface named after a lab node.
    for ifname in ["fs1", "c1", "br0"] {
        assert!(
            !Path::new("/sys/class/net").join(ifname).exists(),
            "interface {ifname} in the root namespace"
        );
    }
}

#[test]
fn sigkilled_run_is_reclaimed_by_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (child, run_id) = start_holding_run(dir.path());
    let pids = group_pids(&run_id);
    assert!(pids.len() >= 2, "smbd and the client's sleep: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    wait_within(child, Duration::from_secs(10)).expect("smbchaos after SIGKILL");
    // SIGKILL gives no chance to clean up: everything is still there...
    assert_eq!(lab_namespaces(&run_id).len(), 2, "one namespace per node");
    assert!(pids.iter().all(|p| alive(*p)));
    // ...until `clean` reclaims it from the run-state file.
    let out = smbchaos(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("reclaimed run {run_id}")),
        "{}",
        text(&out)
    );
    assert_nothing_left(&run_id, &pids);
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("results/hold/latest/status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        status["complete"], false,
        "a killed run is marked incomplete"
    );
}

/// Containers of a run (by its label), running or not.
fn lab_containers(run_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--filter",
            &format!("label=smbchaos.run={run_id}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps (provider: docker needs Docker: scripts/setup installs it)");
    assert!(out.status.success(), "docker ps: {}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The smoke plan on docker as a version matrix (`--samba 4.17,4.22`): it passes on each,
/// each run records which Samba and image it ran, the summary and the JUnit file show the
/// versions side by side, and teardown leaves no container. Needs the images
/// (`smbchaos images build`, which scripts/setup runs).
#[test]
fn smoke_plan_passes_on_docker_with_each_samba_version() {
    let results = tempfile::tempdir().unwrap();
    let junit = results.path().join("set.xml");
    let out = smbchaos(&[
        "run",
        "--results",
        results.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--provider",
        "docker",
        "--samba",
        "4.17,4.22",
        "plans/smoke.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("plan ")
            && l.contains("samba 4.17")
            && l.contains("samba 4.22")),
        "no side-by-side header:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("plans/smoke.yaml ") && l.matches("PASS").count() == 2),
        "no side-by-side row:\n{stdout}"
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    for version in ["4.17", "4.22"] {
        assert!(
            junit.contains(&format!("smoke [samba {version}]")),
            "{junit}"
        );
        let latest = results.path().join(format!("samba-{version}/smoke/latest"));
        let env: serde_json::Value =
            serde_json::from_slice(&std::fs::read(latest.join("environment.json")).unwrap())
                .unwrap();
        assert_eq!(env["provider"], "docker");
        let samba = env["servers"]["fs1"].as_str().unwrap_or_default();
        assert!(
            samba.starts_with(&format!("{version} (smbchaos-samba:{version}-")),
            "{env}"
        );
        // smbd's own log says which release answered.
        let log = std::fs::read_to_string(latest.join("logs/fs1/log.smbd")).unwrap_or_default();
        assert!(
            log.contains(&format!("smbd version {version}.")),
            "Samba {version}: smbd's log does not name it:\n{log}"
        );
        let status: serde_json::Value =
            serde_json::from_slice(&std::fs::read(latest.join("status.json")).unwrap()).unwrap();
        let run_id = status["run_id"].as_str().unwrap();
        assert!(
            lab_containers(run_id).is_empty(),
            "container of {run_id} left"
        );
    }
}

#[test]
fn netns_refuses_samba_4_22_naming_the_provider_that_runs_it() {
    let results = tempfile::tempdir().unwrap();
    let out = smbchaos(&[
        "run",
        "--results",
        results.path().to_str().unwrap(),
        "--samba",
        "4.22",
        "plans/smoke.yaml",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("asks for Samba 4.22: the netns provider runs the host's own smbd")
            && text(&out).contains("provider: docker"),
        "{}",
        text(&out)
    );
}

#[test]
fn images_list_names_the_current_recipes() {
    let out = smbchaos(&["images", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for repo in [
        "smbchaos-base:",
        "smbchaos-samba:4.17-",
        "smbchaos-samba:4.22-",
    ] {
        assert!(
            text(&out)
                .lines()
                .any(|l| l.starts_with(repo) && l.contains(" current ")),
            "no current {repo} image (scripts/setup builds them):\n{}",
            text(&out)
        );
    }
}

#[test]
fn sigkilled_docker_run_is_reclaimed_by_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (child, run_id) = start_holding_run_with(dir.path(), &["--provider", "docker"]);
    let pids = group_pids(&run_id);
    assert!(pids.len() >= 2, "smbd and the client's sleep: {pids:?}");
    // The server is a container whose network namespace is the lab's fs1 namespace.
    let containers = lab_containers(&run_id);
    assert_eq!(containers, vec![format!("smbchaos-{run_id}-fs1")]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    wait_within(child, Duration::from_secs(10)).expect("smbchaos after SIGKILL");
    assert_eq!(lab_namespaces(&run_id).len(), 2, "one namespace per node");
    assert_eq!(
        lab_containers(&run_id).len(),
        1,
        "the container outlives SIGKILL"
    );
    let out = smbchaos(&["clean"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("containers [smbchaos-{run_id}-fs1]")),
        "{}",
        text(&out)
    );
    assert_nothing_left(&run_id, &pids);
    assert!(lab_containers(&run_id).is_empty(), "container left");
}

#[test]
fn sigterm_tears_the_lab_down_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (child, run_id) = start_holding_run(dir.path());
    let pids = group_pids(&run_id);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    // The run tears its lab down (processes killed, namespaces deleted): seconds.
    let status = wait_within(child, Duration::from_secs(60)).expect("smbchaos after SIGTERM");
    assert_eq!(status.code(), Some(130));
    assert_nothing_left(&run_id, &pids);
}
