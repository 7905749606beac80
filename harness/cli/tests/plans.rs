//! Plans as tests: every `plans/**/*.yaml` (but `plans/schema/`) is a test of its own, named
//! by its path, that runs the plan for real through the built `smbchaos` binary and passes
//! when the verdict is pass. Without root every plan is ignored, with the reason on stderr;
//! as root a plan this machine cannot run fails, naming what is missing and its fix.
//!
//! libtest-mimic speaks libtest's command line, so `--list`, name filters, `--exact`,
//! `--ignored` and `cargo nextest run` (one process per plan, `--partition count:K/N`) work.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Completion, Failed, Trial};

const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn main() {
    let mut args = Arguments::from_args();
    // Plans time their faults; two labs fighting over two cores would blur that. Ask for
    // more with --test-threads, or let nextest spread plans over processes and machines.
    args.test_threads.get_or_insert(1);
    let repo = repo();
    let mut trials = Vec::new();
    let mut reasons = Vec::new();
    for path in plan_files(&repo.join("plans")) {
        let name = path
            .strip_prefix(&repo)
            .unwrap_or(&path)
            .display()
            .to_string();
        let missing = missing_needs();
        let ignored = !missing.is_empty();
        if ignored {
            reasons.push((name.clone(), missing.join("; ")));
        }
        let trial = Trial::ignorable_test(name, move || run_plan(&path)).with_ignored_flag(ignored);
        trials.push(trial);
    }
    if !args.list {
        for (name, why) in &reasons {
            if args.filter.as_deref().is_none_or(|f| {
                if args.exact {
                    name == f
                } else {
                    name.contains(f)
                }
            }) {
                eprintln!("{name}: ignored: {why}");
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// `*.yaml` under `dir`, sorted, skipping `schema/` (the JSON Schema, not plans) and `long/`
/// (30-minute runs, started by `scripts/bench/long-run`).
fn plan_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "schema" && n != "long")
            {
                out.extend(plan_files(&path));
            }
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
    out
}

/// Why this machine cannot run plans at all. Only a missing root is a reason to ignore (a
/// developer's unprivileged shell): anything else the machine lacks (smbd, a VFS module, a
/// tool a step calls) makes the plan fail, with the harness's preflight naming it and its fix,
/// from the one capability list in `lab::capabilities`.
fn missing_needs() -> Vec<String> {
    if nix::unistd::geteuid().is_root() {
        Vec::new()
    } else {
        vec!["needs root (network namespaces, cgroups): run the tests as root".to_string()]
    }
}

fn run_plan(plan: &Path) -> Result<Completion, Failed> {
    // Forced with --ignored on a machine that cannot run it: say why rather than fail.
    let missing = missing_needs();
    if !missing.is_empty() {
        return Ok(Completion::ignored_with(missing.join("; ")));
    }
    let results = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plan-results");
    // A plan runs for seconds to a minute (the longest wait out a 35 s break timeout);
    // past common::LAB_RUN it is stopped (its lab torn down) and fails with what it printed.
    let out = common::try_output_within(
        Command::new(BIN)
            .arg("run")
            .arg("--results")
            .arg(&results)
            .arg(plan)
            .current_dir(repo()),
        &format!("smbchaos run {}", plan.display()),
        common::LAB_RUN,
    )?;
    if out.status.success() {
        return Ok(Completion::Completed);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let verdict = match out.status.code() {
        Some(1) => "verdict fail".to_string(),
        Some(2) => "verdict unknown, or the harness failed".to_string(),
        other => format!("exit {other:?}"),
    };
    Err(format!(
        "{verdict}\n--- stdout\n{stdout}--- stderr (last 40 lines but ok ops)\n{}\nresults (and report.html) under {}",
        tail(&stderr, 40),
        results.display()
    )
    .into())
}

/// The last `lines` lines worth reading: ops that went fine are left out.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter(|l| !(l.starts_with("  op ") && l.ends_with(": Ok")))
        .collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
