//! Nightly chaos tooling end to end, through the built binary with real labs: sweeps over
//! seeds (and what they leave behind), reproduction of a stored run, `--repeat` and the flake
//! rule, shrinking a planted failure, and the index of nights opened in headless Chromium.

mod common;
#[path = "planted/common.rs"]
mod planted;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{output_within, LAB_RUN, NO_LAB};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

/// Labs time their faults: one test's labs at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn smbchaos(args: &[&str], deadline: Duration) -> std::process::Output {
    output_within(
        Command::new(BIN).args(args).current_dir(repo()),
        &format!("smbchaos {}", args.join(" ")),
        deadline,
    )
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A plan of a second or two: a random fault from the seed, then an smbclient listing.
const TINY: &str = r#"version: 1
name: tiny
seed: 1
topology:
  servers: [{name: fs1}]
  clients: [{name: c1}]
workload:
  steps:
    - exec: { client: c1, run: "sleep 0.3" }
    - exec:
        client: c1
        run: smbclient //$SMBCHAOS_ADDR_FS1/share -A $SMBCHAOS_AUTH_FILE -c ls >/dev/null
faults:
  - { kind: random, kinds: [reset, pause, blackhole, partition], at: 50ms, for: 150ms, every: 200ms, count: 1 }
expect:
  exec: expected_exit
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// What a finished lab may have left, looked for by its run id.
fn leftovers(run_id: &str) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("sc-{run_id}-");
    for e in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            left.push(format!("namespace {name}"));
        }
    }
    for path in [
        format!("/run/smbchaos/{run_id}.json"),
        format!("/sys/fs/cgroup/freezer/smbchaos/{run_id}"),
        format!("/var/tmp/smbchaos/{run_id}"),
    ] {
        if Path::new(&path).exists() {
            left.push(path);
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&prefix) || l.contains(&format!("/smbchaos/{run_id}")))
            .map(|l| format!("mount {l}")),
    );
    // Every process of a lab names its run directory in its command line (smbd -s ...).
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&format!("/smbchaos/{run_id}/")) {
            left.push(format!("process {:?}: {cmdline}", e.file_name()));
        }
    }
    left
}

#[test]
fn a_sweep_of_30_seeds_gives_a_summary_and_leaves_nothing_behind() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "tiny.yaml", TINY);
    let results = dir.path().join("results");
    let started = Instant::now();
    let out = smbchaos(
        &[
            "-q",
            "run",
            "--seeds",
            "1..30",
            "--results",
            results.to_str().unwrap(),
            &plan,
        ],
        Duration::from_secs(600),
    );
    let took = started.elapsed();
    eprintln!("30 seeds in {:.1} s", took.as_secs_f64());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("30 run(s)") && printed.contains("30 pass, 0 fail"),
        "{printed}"
    );
    let sweep_dir = std::fs::read_dir(results.join("tiny"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sweep-")
        })
        .expect("a sweep-<time> directory");
    let sweep = json(&sweep_dir.join("sweep.json"));
    let junit = std::fs::read_to_string(sweep_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("tiny [seed 17 #1]"), "{junit}");
    let runs = sweep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 30);
    let mut schedules = std::collections::BTreeSet::new();
    let mut dirs = std::collections::BTreeSet::new();
    for (n, r) in runs.iter().enumerate() {
        let seed = n as u64 + 1;
        assert_eq!(r["seed"], seed, "{r}");
        assert_eq!(r["outcome"], "pass", "{r}");
        assert!(r["seconds"].as_f64().unwrap() > 0.0);
        let run_dir = PathBuf::from(r["results"].as_str().unwrap());
        assert!(dirs.insert(run_dir.clone()), "two seeds in one directory");
        // The stored plan and environment are this seed's; its schedule is the seed's own.
        let plan = plan::load(&run_dir.join("plan.yaml")).unwrap();
        assert_eq!(plan.seed, seed);
        assert_eq!(json(&run_dir.join("environment.json"))["seed"], seed);
        schedules.insert(json(&run_dir.join("schedule.json")).to_string());
        let run_id = json(&run_dir.join("status.json"))["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let left = leftovers(&run_id);
        assert!(
            left.is_empty(),
            "seed {seed} (run {run_id}) left: {left:#?}"
        );
    }
    assert!(
        schedules.len() > 4,
        "seeds drew {} schedules",
        schedules.len()
    );
    // Nothing accumulates in the harness either: descriptors and memory after the last run
    // are those after the first (a lab's sockets, TAPs and pcap files all closed).
    let fds = |r: &Value| r["harness_fds"].as_u64().unwrap();
    let rss = |r: &Value| r["harness_rss_kib"].as_u64().unwrap();
    assert!(
        fds(&runs[29]) <= fds(&runs[0]) + 2,
        "fds {} -> {}",
        fds(&runs[0]),
        fds(&runs[29])
    );
    assert!(
        rss(&runs[29]) < rss(&runs[0]) + 64 * 1024,
        "rss {} -> {} KiB",
        rss(&runs[0]),
        rss(&runs[29])
    );
}

#[test]
fn a_budget_runs_as_many_fresh_seeds_as_fit() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "tiny.yaml", TINY);
    let results = dir.path().join("results");
    let started = Instant::now();
    let out = smbchaos(
        &[
            "-q",
            "run",
            "--budget",
            "8s",
            "--results",
            results.to_str().unwrap(),
            &plan,
        ],
        LAB_RUN,
    );
    let took = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = text(&out)
        .lines()
        .find_map(|l| l.strip_prefix("sweep summary: ").map(str::to_string))
        .expect("the summary's path");
    let sweep = json(Path::new(&path));
    let runs = sweep["runs"].as_array().unwrap();
    let longest = runs
        .iter()
        .map(|r| r["seconds"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(runs.len() >= 2, "{sweep}");
    // No run was started that the longest run so far said would not fit.
    assert!(
        sweep["seconds"].as_f64().unwrap() <= 8.0 + longest,
        "{sweep}"
    );
    let seeds: std::collections::BTreeSet<u64> =
        runs.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds.len(), runs.len(), "fresh seeds repeat: {seeds:?}");
    eprintln!("budget 8 s: {} runs in {took:.1} s", runs.len());
}

/// A step whose result the seed does not control: it fails while FILE is absent.
fn outside_plan(flag: &Path) -> String {
    TINY.replace("name: tiny", "name: outside").replace(
        "run: \"sleep 0.3\"",
        &format!("run: \"sleep 0.3; test -e {}\"", flag.display()),
    )
}

#[test]
fn repro_reruns_a_stored_run_and_says_whether_the_verdict_is_the_same() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let plan = write(dir.path(), "outside.yaml", &outside_plan(&flag));
    let results = dir.path().join("results");
    let r = results.to_str().unwrap();
    let out = smbchaos(
        &["-q", "run", "--seeds", "5..5", "--results", r, &plan],
        LAB_RUN,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run_dir = std::fs::read_link(results.join("outside/latest")).unwrap();
    let run_dir = results.join("outside").join(run_dir);
    let env = json(&run_dir.join("environment.json"));
    assert_eq!(env["seed"], 5);
    assert!(
        env["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "{env}"
    );
    for key in ["samba", "provider", "smbchaos"] {
        assert!(
            env[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {env}"
        );
    }
    let d = run_dir.to_str().unwrap();
    // The same world: the same verdict, said and exit 0.
    let out = smbchaos(&["-q", "repro", d, "--times", "2"], LAB_RUN);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("recorded: FAIL (exec fail)"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("reproduced 2 of 2"), "{}", text(&out));
    // The world changed (the flag exists now): a different verdict, said and exit 1.
    std::fs::write(&flag, "").unwrap();
    let out = smbchaos(&["-q", "repro", d], LAB_RUN);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("rerun #1: PASS: DIFFERENT"),
        "{}",
        text(&out)
    );
    // A schedule the plan no longer resolves to is refused before any lab.
    let schedule = run_dir.join("schedule.json");
    let mut s = json(&schedule);
    s[0]["at"] = Value::from("1s");
    std::fs::write(&schedule, s.to_string()).unwrap();
    let out = smbchaos(&["-q", "repro", d], NO_LAB);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("another fault schedule"),
        "{}",
        text(&out)
    );
}

#[test]
fn repeat_gives_a_pass_rate_names_what_flipped_and_applies_the_flake_rule() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let r = results.to_str().unwrap();
    // Passes every other run: a counter outside the lab decides.
    let counter = dir.path().join("counter");
    let flaky = |rate: &str| {
        TINY.replace("name: tiny", &format!("name: flaky\nflake_rate: {rate}")).replace(
            "run: \"sleep 0.3\"",
            &format!(
                // The sleep stays: the smbclient step must start after the fault's window
                // (50-200 ms), or the fault, not the counter, decides the verdict.
                "run: \"sleep 0.3; n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; [ $((n % 2)) = 0 ]\"",
                c = counter.display()
            ),
        )
    };
    // Declared 50 %: 2 failures in 4 runs is what it looks like (exit 0).
    let plan = write(dir.path(), "flaky.yaml", &flaky("50%"));
    let out = smbchaos(
        &["-q", "run", "--repeat", "4", "--results", r, &plan],
        LAB_RUN,
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(printed.contains("seed 1: 2/4 passed (50 %)"), "{printed}");
    assert!(printed.contains("exec flipped:"), "{printed}");
    assert!(printed.contains("within the known flake rate"), "{printed}");
    // Declared 1 %: the same 2 in 4 is a significant change (exit 1).
    let plan = write(dir.path(), "flaky.yaml", &flaky("1%"));
    let out = smbchaos(
        &["-q", "run", "--repeat", "4", "--results", r, &plan],
        LAB_RUN,
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("a significant change: FAIL"), "{printed}");
    // In a plan set, one failure of a plan declared 5 % flaky is noise: exit 0, and said.
    std::fs::write(&counter, "1").unwrap();
    let plan = write(dir.path(), "flaky.yaml", &flaky("5%"));
    let out = smbchaos(&["-q", "run", "--results", r, &plan], LAB_RUN);
    let printed = text(&out);
    assert!(printed.contains(": FAIL ("), "{printed}");
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(printed.contains("within the known flake rate"), "{printed}");
}

/// plans/faults/random.yaml's nemesis (its `faults:` block, verbatim) under a writing
/// workload, against an smbd that drops writes once it has been restarted.
fn planted_random(seed: u64) -> String {
    let random = std::fs::read_to_string(repo().join("plans/faults/random.yaml")).unwrap();
    let faults: String = random
        .split_once("\nfaults:\n")
        .unwrap()
        .1
        .lines()
        .take_while(|l| l.starts_with(' '))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        r#"version: 1
name: planted-random
seed: {seed}
topology:
  servers:
    - name: fs1
      environment:
        LD_PRELOAD: {shim}
        SMBCHAOS_PLANT: drop-writes-after-restart
        SMBCHAOS_PLANT_EVERY: "3"
  clients:
    - name: c1
    - name: c2
workload:
  duration: 7s
  clients:
    - node: c1
      server: fs1
      mix: {{ write_through: 1 }}
      rate: 40
faults:
{faults}expect:
  durability: hold
"#,
        shim = planted::shim().display()
    )
}

#[test]
fn shrink_cuts_random_yamls_nemesis_down_to_the_restart_a_planted_bug_needs() {
    let _one = one_at_a_time();
    // A seed whose four random faults include exactly one that restarts smbd (kill, crash).
    let restarts = |p: &plan::Plan| {
        plan::schedule(p)
            .into_iter()
            .filter(|s| matches!(s.action.kind(), "kill" | "crash"))
            .collect::<Vec<_>>()
    };
    let (seed, culprit) = (1..200)
        .find_map(|seed| {
            let p = plan::parse_str("planted", &planted_random(seed)).unwrap();
            let r = restarts(&p);
            (plan::schedule(&p).len() == 4 && r.len() == 1).then(|| (seed, r[0].clone()))
        })
        .expect("a seed with one restart among four faults");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "planted.yaml", &planted_random(seed));
    let results = dir.path().join("results");
    let out = smbchaos(
        &["-q", "run", "--results", results.to_str().unwrap(), &plan],
        LAB_RUN,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run_dir = results
        .join("planted-random/latest")
        .canonicalize()
        .unwrap();
    let verdict = json(&run_dir.join("verdict.json"));
    let durability = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == "durability")
        .unwrap();
    assert_eq!(durability["outcome"], "fail", "{verdict}");

    let shrunk = dir.path().join("shrunk.yaml");
    let started = Instant::now();
    let out = smbchaos(
        &[
            "-q",
            "shrink",
            run_dir.to_str().unwrap(),
            "--budget",
            "5m",
            "--out",
            shrunk.to_str().unwrap(),
        ],
        Duration::from_secs(420),
    );
    let took = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = json(&run_dir.join("shrink/shrink.json"));
    eprintln!(
        "shrink: {} reruns in {took:.0} s; {}",
        log["reruns"],
        text(&out)
            .lines()
            .find(|l| l.starts_with("shrunk "))
            .unwrap_or_default()
    );
    // Without faults the planted smbd is never restarted: that candidate passed.
    let attempts = log["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["tried"], "no faults");
    assert_eq!(attempts[0]["kept"], false, "{}", attempts[0]);
    assert_eq!(attempts[0]["outcome"], "pass", "{}", attempts[0]);
    // What is left is the one restart, at its time, on its node, its window no longer.
    let p = plan::load(&shrunk).expect("the shrunk plan is a valid plan file");
    assert_eq!(p.name.value, "planted-random-shrunk");
    let left = plan::schedule(&p);
    assert_eq!(
        left.len(),
        1,
        "{}",
        std::fs::read_to_string(&shrunk).unwrap()
    );
    assert_eq!(left[0].action, culprit.action);
    assert_eq!(left[0].at, culprit.at);
    assert!(left[0].hold <= culprit.hold);
    assert!(p.workload.duration.unwrap().value.as_duration() <= Duration::from_secs(7));
    assert_eq!(log["confirmed"], true);
    assert!(std::fs::read_to_string(&shrunk)
        .unwrap()
        .starts_with("# Shrunk by `smbchaos shrink`"));
}

// ---------------------------------------------------------------- the index in Chromium

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
    panic!("no headless Chromium: apt-get install chromium (scripts/setup installs it)");
}

/// The DOM after load and the console messages of `page` in a fresh headless Chromium.
fn open(page: &Path, screenshot: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
    ])
    .args([
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,1600",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("--screenshot={}", screenshot.display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.canonicalize().unwrap().display()));
    let out = output_within(&mut cmd, "headless chromium", Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn the_index_shows_every_run_per_plan_failures_first_in_chromium() {
    let _one = one_at_a_time();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nightly-index");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let results = dir.join("results");
    let r = results.to_str().unwrap();
    let tiny = write(&dir, "tiny.yaml", TINY);
    let failing = write(&dir, "outside.yaml", &outside_plan(&dir.join("never")));
    let out = smbchaos(
        &["-q", "run", "--seeds", "1..3", "--results", r, &tiny],
        LAB_RUN,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = smbchaos(&["-q", "run", "--results", r, &failing], LAB_RUN);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let out = smbchaos(&["index", r], NO_LAB);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(4 runs)"), "{}", text(&out));
    let page = results.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for outside in ["http://", "https://", "src=\""] {
        assert!(!html.contains(outside), "index.html refers to {outside}");
    }
    let (dom, console) = open(&page, &dir.join("index.png"));
    assert!(console.is_empty(), "console: {console:?}");
    assert!(
        dom.contains(r#"data-ready="1""#),
        "the page script did not run"
    );
    // The failing plan comes before the passing one, and the failures table before both.
    let failures = dom.find(r#"id="failures""#).expect("a failures section");
    let outside = dom
        .find(r#"data-plan="outside""#)
        .expect("the failing plan");
    let tiny_at = dom.find(r#"data-plan="tiny""#).expect("the passing plan");
    assert!(failures < outside && outside < tiny_at);
    assert!(
        dom[failures..outside].contains("exec"),
        "failing checker named"
    );
    // Every run is linked to its report, which exists.
    let links: Vec<&str> = dom
        .split("href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let reports: std::collections::BTreeSet<&str> = links
        .iter()
        .copied()
        .filter(|l| l.ends_with("/report.html"))
        .collect();
    assert_eq!(reports.len(), 4, "{links:?}");
    // No cluster in these plans: no failover figures.
    assert_eq!(cells(&dom, "takeover"), ["–"; 4]);
    for l in reports {
        assert!(results.join(l).is_file(), "{l} does not exist");
    }
    eprintln!("screenshot: {}", dir.join("index.png").display());
}

/// A two-node cluster whose client's node crashes: the failover checker times the takeover
/// and the client's first ok op after it.
const CLUSTER_FAILOVER: &str = r#"version: 1
name: index-failover
seed: 7
topology:
  clusters:
    - name: ctdb
      nodes: 2
      public_addresses: [198.19.0.10, 198.19.0.11]
      tunables: { NoIPFailback: 1 }
  clients:
    - name: c1
workload:
  duration: 16s
  clients:
    - node: c1
      server: ctdb
      via: 198.19.0.10
      start: 1s
      mix: { write: 2, read: 1 }
      rate: 50
      request_timeout: 10s
faults:
  - { kind: crash, address: 198.19.0.10, at: 2s, for: 4s, require_effect: true }
expect:
  durability: hold
  failover:
    takeover_within: 10s
    reconnect_within: 14s
"#;

/// The text of every `<td class="n NAME"...>` cell of the page, in order.
fn cells(dom: &str, name: &str) -> Vec<String> {
    dom.split(&format!(r#"class="n {name}""#))
        .skip(1)
        .map(|s| {
            let s = &s[s.find('>').unwrap() + 1..];
            s[..s.find("</td>").unwrap()].to_string()
        })
        .collect()
}

#[test]
fn the_index_shows_a_cluster_runs_takeover_and_first_ok_from_the_failover_checker() {
    let _one = one_at_a_time();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nightly-index-failover");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let results = dir.join("results");
    let r = results.to_str().unwrap();
    let plan = write(&dir, "failover.yaml", CLUSTER_FAILOVER);
    // Pass or fail (a loaded machine can be slow to take over), the index must say what the
    // failover checker saw.
    let out = smbchaos(&["-q", "run", "--results", r, &plan], LAB_RUN);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let run = std::fs::read_dir(results.join("index-failover"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("verdict.json").is_file() && !p.is_symlink())
        .expect("a run directory");
    let verdict = json(&run.join("verdict.json"));
    let failover = verdict["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["checker"] == "failover")
        .expect("the failover checker judged the run");
    let explanation = failover["explanation"].as_str().unwrap();
    let timeline: Value = serde_json::from_str(
        explanation
            .split_once("timeline: ")
            .expect("a timeline in the explanation")
            .1,
    )
    .unwrap();
    let timeline = timeline.as_array().unwrap();
    assert_eq!(timeline.len(), 1, "one crash, one failover: {explanation}");
    let takeover = timeline[0]["takeover_s"]
        .as_f64()
        .expect("CTDB took the address over");
    let first_ok = timeline[0]["clients"]["c1/0"]["first_ok_s"].as_f64();

    let out = smbchaos(&["index", r], NO_LAB);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = results.join("index.html");
    let (dom, console) = open(&page, &dir.join("index.png"));
    assert!(console.is_empty(), "console: {console:?}");
    assert_eq!(cells(&dom, "takeover"), [format!("{takeover:.2} s")]);
    let expected = match first_ok {
        Some(s) => format!("{s:.2} s"),
        None => "never (1)".to_string(),
    };
    assert_eq!(cells(&dom, "first-ok"), [expected]);
    assert!(
        first_ok.is_none_or(|s| s > takeover),
        "first ok before the takeover?"
    );
    eprintln!(
        "takeover {takeover:.2} s, first ok {first_ok:?}; screenshot: {}",
        dir.join("index.png").display()
    );
}

// ---------------------------------------------------------------- capture limits

/// Four seconds of two clients as fast as the server answers: several MiB of capture
/// unbounded, held to 1 MiB in a ring of three files a link.
const CAPPED: &str = r#"version: 1
name: capped
seed: 3
topology:
  servers: [{name: fs1}]
  clients: [{name: c1}]
  capture_limit: { max_bytes: 1MiB, rotate: 3 }
workload:
  duration: 4s
  clients:
    - { node: c1, server: fs1, count: 2, mix: { write: 2, read: 2 } }
faults:
  - { kind: reset, node: fs1, at: 2s }
expect:
  durability: hold
"#;

#[test]
fn a_capped_capture_stays_under_its_cap_in_rotated_files_tcpdump_reads() {
    let _one = one_at_a_time();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nightly-capped");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let results = dir.join("results");
    let plan = write(&dir, "capped.yaml", CAPPED);
    let out = smbchaos(
        &["-q", "run", "--results", results.to_str().unwrap(), &plan],
        LAB_RUN,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = results.join("capped/latest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(run.join("pcap"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let total: u64 = files.iter().map(|f| f.metadata().unwrap().len()).sum();
    assert!(
        total <= 1 << 20,
        "{total} bytes of pcap over the 1MiB cap: {names:?}"
    );
    // Two captured links (c1, fs1), three files each: the oldest were deleted as the ring
    // turned, so neither starts at 000000.
    for link in ["c1", "fs1"] {
        let mine: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{link}.")))
            .collect();
        assert_eq!(mine.len(), 3, "{link}: {names:?}");
        assert!(
            !mine.iter().any(|n| n.ends_with(".000000.pcap")),
            "{link}: the ring never turned (too little traffic for the test?): {names:?}"
        );
    }
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    for (f, name) in files.iter().zip(&names) {
        assert!(
            f.metadata().unwrap().len() <= (1 << 20) / 2 / 3,
            "{name} over its share"
        );
        let out = output_within(
            Command::new("tcpdump").arg("-nr").arg(f),
            "tcpdump -r",
            Duration::from_secs(60),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tcpdump -r {name}: {err}");
        assert!(!err.contains("truncated"), "tcpdump -r {name}: {err}");
        let packets = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(packets > 100, "{name}: {packets} packets");
        assert!(
            report.contains(&format!(r#"href="pcap/{name}""#)),
            "report.html does not link {name}"
        );
    }
    eprintln!("{total} bytes of pcap in {names:?}");
}
