//! What the planted-bug tests share: the LD_PRELOAD shim built with `cc`, running a field
//! plan (tweaked: a plant, a setting) through the built binary, and reading its verdict.
#![allow(dead_code)] // each test binary that includes this uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_smbchaos");

/// Plans time their faults: one lab at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shim, compiled once per test process.
pub fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("planted");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(format!("plant-{}.so", std::process::id()));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/planted/plant.c");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src)
            .arg("-ldl")
            .status()
            .expect("run cc (gcc and libc6-dev, installed by scripts/setup)");
        assert!(status.success(), "cc failed to build {}", src.display());
        out
    })
}

pub struct Run {
    pub code: Option<i32>,
    pub verdict: Value,
    pub history: Vec<Value>,
    pub text: String,
}

impl Run {
    pub fn checker(&self, name: &str) -> &Value {
        self.verdict["checkers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["checker"] == name)
            .unwrap_or_else(|| panic!("no checker {name} in {}", self.verdict))
    }

    pub fn ops(&self, name: &str) -> Vec<u64> {
        self.checker(name)["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_u64().unwrap())
            .collect()
    }

    pub fn record(&self, index: u64) -> &Value {
        &self.history[index as usize]
    }

    /// The checker failed, with its explanation containing `text`; returns its ops.
    #[track_caller]
    pub fn failed(&self, name: &str, text: &str) -> Vec<u64> {
        let c = self.checker(name);
        assert_eq!(c["outcome"], "fail", "{name}: {c}");
        let why = c["explanation"].as_str().unwrap();
        assert!(
            why.contains(text),
            "{name} explanation lacks {text:?}: {why}"
        );
        let ops = self.ops(name);
        assert!(!ops.is_empty(), "{name} names no op: {c}");
        ops
    }
}

/// Run the repository plan `rel` after `tweak`; the verdict and history of the run.
pub fn run(rel: &str, tweak: impl FnOnce(&mut plan::Plan)) -> Run {
    let mut p = plan::load(&repo().join(rel)).unwrap();
    tweak(&mut p);
    run_plan(rel, &p)
}

pub fn run_plan(rel: &str, p: &plan::Plan) -> Run {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: the plan as the tweak left it.
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(p).unwrap()).unwrap();
    let results = dir.path().join("results");
    let out = Command::new(BIN)
        .args(["-q", "run", "--results"])
        .arg(&results)
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let latest = results.join(&p.name.value).join("latest");
    // A run that left no verdict (the harness failed) says so in `outcome`.
    let verdict: Value = std::fs::read(latest.join("verdict.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(
            || serde_json::json!({ "outcome": format!("no verdict ({rel})"), "checkers": [] }),
        );
    let history = std::fs::read_to_string(latest.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Keep the results for a look: by plan, plant and seed.
    let label = p
        .topology
        .servers
        .first()
        .and_then(|s| {
            s.environment.get("SMBCHAOS_PLANT").cloned().or_else(|| {
                let g = &s.global;
                g.get("durable handles")
                    .map(|_| "durable-off".to_string())
                    .or(g.get("smb2 leases").map(|_| "leases-off".to_string()))
            })
        })
        // A cluster plan's plant is a ctdb tunable.
        .or_else(|| {
            p.topology
                .clusters
                .first()
                .filter(|c| !c.tunables.is_empty())
                .map(|_| "tunables".to_string())
        })
        .unwrap_or_else(|| "correct".into());
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("planted-results")
        .join(format!("{}-{label}-{}", p.name.value, p.seed));
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(keep.parent().unwrap()).unwrap();
    if let Ok(latest) = latest.canonicalize() {
        let _ = Command::new("cp").arg("-a").arg(latest).arg(&keep).status();
    }
    Run {
        code: out.status.code(),
        verdict,
        history,
        text,
    }
}

/// Load the shim into every server's smbd with this plant.
pub fn plant(kind: &'static str, every: u32) -> impl FnOnce(&mut plan::Plan) {
    move |p| {
        for s in &mut p.topology.servers {
            let env = &mut s.environment;
            env.insert("LD_PRELOAD".into(), shim().display().to_string());
            env.insert("SMBCHAOS_PLANT".into(), kind.into());
            env.insert("SMBCHAOS_PLANT_EVERY".into(), every.to_string());
        }
    }
}

/// Add a `[global]` option to every server.
pub fn global(key: &'static str, value: &'static str) -> impl FnOnce(&mut plan::Plan) {
    move |p| {
        for s in &mut p.topology.servers {
            s.global.insert(key.into(), value.into());
        }
    }
}

#[track_caller]
pub fn assert_code(run: &Run, code: i32) {
    assert_eq!(
        run.code,
        Some(code),
        "verdict {}\n{}",
        run.verdict,
        run.text
    );
}

pub fn outcome(r: &Run) -> String {
    r.verdict["outcome"].as_str().unwrap_or("?").to_uppercase()
}

pub fn failing(r: &Run) -> String {
    r.verdict["checkers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter(|c| c["outcome"] != "pass")
                .map(|c| {
                    format!(
                        "{} ({})",
                        c["checker"].as_str().unwrap_or("?"),
                        c["outcome"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
