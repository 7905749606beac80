//! Reproduction: what a results directory holds to rerun its run exactly, and reading it
//! back. plan.yaml is the plan that ran (its `seed:` the run's), environment.json names the
//! provider, each server's Samba, the harness version and commit, and schedule.json the fault
//! schedule the seed resolved to. `smbchaos repro DIR` reruns from these and compares
//! verdicts with [`same_verdict`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::planset::Planned;
use crate::sweep::{with_seed, Failing};
use crate::verdict::{Outcome, Verdict};
use history::results;

/// The resolved fault schedule of a run.
pub const SCHEDULE: &str = "schedule.json";

/// One fault occurrence as the seed resolved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFault {
    /// Index of the plan's `faults:` entry, and which repetition of it.
    pub entry: usize,
    pub occurrence: u32,
    pub at: plan::PlanDuration,
    /// Healed after this long; absent: at the end of the run (or it needs no heal).
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<plan::PlanDuration>,
    /// The concrete action (kind, targets), as `plan::Action` serializes.
    pub action: serde_json::Value,
}

/// The plan's schedule, resolved.
pub fn resolved(plan: &plan::Plan) -> Vec<ScheduledFault> {
    plan::schedule(plan)
        .into_iter()
        .map(|s| ScheduledFault {
            entry: s.fault,
            occurrence: s.occurrence,
            at: s.at.into(),
            hold: s.hold.map(Into::into),
            action: serde_json::to_value(&s.action).unwrap_or_default(),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("{path}: server {server}: Samba `{version}` is not one this harness runs")]
    Samba {
        path: PathBuf,
        server: String,
        version: String,
    },
    #[error("{path}: the plan resolves to another fault schedule with this build (first difference at occurrence {index}); the run cannot be repeated exactly")]
    ScheduleDiffers { path: PathBuf, index: usize },
}

/// A stored run, ready to run again.
pub struct Recorded {
    pub dir: PathBuf,
    pub planned: Planned,
    /// The stored verdict (none when the run was never judged).
    pub verdict: Option<Verdict>,
    /// What differs between then and now that the rerun cannot restore (another harness
    /// commit, no schedule.json), for the user to weigh.
    pub notes: Vec<String>,
}

fn read(path: &Path) -> Result<String, ReproError> {
    std::fs::read_to_string(path).map_err(|source| ReproError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ReproError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ReproError::Json {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReproError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Read a results directory back into the run it records: the plan with the seed, provider
/// and Samba versions that ran, checked to resolve to the same fault schedule.
pub fn load(dir: &Path) -> Result<Recorded, ReproError> {
    let dir = dir.canonicalize().map_err(|source| ReproError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let plan_path = dir.join(results::PLAN);
    let mut text = read(&plan_path)?;
    let mut plan = plan::parse_str(&plan_path.display().to_string(), &text)?;
    let mut notes = Vec::new();
    let env_path = dir.join(results::ENVIRONMENT);
    let env: serde_json::Value = json(&env_path)?.unwrap_or_default();
    if let Some(seed) = env["seed"].as_u64() {
        if seed != plan.seed {
            plan.seed = seed;
            text = with_seed(&text, seed);
        }
    }
    match env["provider"].as_str() {
        Some("docker") => plan.topology.provider = plan::Provider::Docker,
        Some("netns") => plan.topology.provider = plan::Provider::Netns,
        _ => notes.push("environment.json names no provider: the plan's is used".into()),
    }
    if let Some(servers) = env["servers"].as_object() {
        for server in &mut plan.topology.servers {
            let Some(what) = servers.get(&server.name.value).and_then(|v| v.as_str()) else {
                continue;
            };
            // "4.17" on netns, "4.22 (smbchaos-samba:4.22-<hash>)" on docker.
            let version = what.split_whitespace().next().unwrap_or_default();
            server.samba = version.parse().map_err(|_| ReproError::Samba {
                path: env_path.clone(),
                server: server.name.value.clone(),
                version: version.to_string(),
            })?;
        }
    }
    match env["commit"].as_str() {
        Some(c) if c == crate::environment::COMMIT => {}
        Some(c) => notes.push(format!(
            "the run was made by commit {c}; this harness is {}",
            crate::environment::COMMIT
        )),
        None => notes.push("environment.json names no harness commit".into()),
    }
    let then: Option<Vec<ScheduledFault>> = json(&dir.join(SCHEDULE))?;
    match then {
        Some(then) => {
            let now = resolved(&plan);
            if then != now {
                let index = then
                    .iter()
                    .zip(&now)
                    .position(|(a, b)| a != b)
                    .unwrap_or(then.len().min(now.len()));
                return Err(ReproError::ScheduleDiffers {
                    path: dir.join(SCHEDULE),
                    index,
                });
            }
        }
        None => notes.push(format!("no {SCHEDULE}: the schedule is not checked")),
    }
    let verdict = json(&dir.join(results::VERDICT))?;
    Ok(Recorded {
        planned: Planned {
            path: plan_path,
            plan,
            text,
            case: None,
        },
        dir,
        verdict,
        notes,
    })
}

/// The results root the run was stored under (`<root>/<plan>/<time>`).
pub fn results_root(dir: &Path) -> PathBuf {
    dir.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// What a verdict's reproduction is judged on: the outcome and which checkers did not pass,
/// with their outcomes (explanations name op ids and counts that vary from run to run).
pub fn signature(outcome: Outcome, failing: &[Failing]) -> (Outcome, Vec<(String, Outcome)>) {
    let mut checkers: Vec<(String, Outcome)> = failing
        .iter()
        .map(|f| (f.checker.clone(), f.outcome))
        .collect();
    checkers.sort_by(|a, b| a.0.cmp(&b.0));
    (outcome, checkers)
}

/// `FAIL (durability fail, reads unknown)`: an outcome and its non-passing checkers.
pub fn describe(outcome: Outcome, failing: &[Failing]) -> String {
    let (_, checkers) = signature(outcome, failing);
    let mut out = format!("{outcome:?}").to_uppercase();
    if !checkers.is_empty() {
        let list: Vec<String> = checkers
            .iter()
            .map(|(c, o)| format!("{c} {}", format!("{o:?}").to_lowercase()))
            .collect();
        out.push_str(&format!(" ({})", list.join(", ")));
    }
    out
}

/// Did a rerun come to the same verdict as the recorded run?
pub fn same_verdict(recorded: &Verdict, outcome: Outcome, failing: &[Failing]) -> bool {
    signature(recorded.outcome, &Failing::of(recorded)) == signature(outcome, failing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_run_loads_with_its_seed_provider_and_checked_schedule() {
        let dir = tempfile_dir();
        let text = "version: 1\nname: r\nseed: 1\ntopology:\n  servers: [{name: fs1}]\n  clients: [{name: c1}]\nfaults:\n  - {kind: random, kinds: [reset, pause, kill], at: 1s, every: 1s, count: 3, for: 200ms}\n";
        let ran = with_seed(text, 77);
        std::fs::write(dir.join(results::PLAN), &ran).unwrap();
        let plan = plan::parse_str("x", &ran).unwrap();
        std::fs::write(
            dir.join(results::ENVIRONMENT),
            serde_json::json!({"seed": 77, "provider": "netns", "servers": {"fs1": "4.17"}, "commit": "abc"}).to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join(SCHEDULE),
            serde_json::to_string(&resolved(&plan)).unwrap(),
        )
        .unwrap();
        let r = load(&dir).unwrap();
        assert_eq!(r.planned.plan.seed, 77);
        assert!(
            r.notes.iter().any(|n| n.contains("commit abc")),
            "{:?}",
            r.notes
        );
        // Another seed's schedule stored with it: refused, not silently rerun.
        let other = plan::parse_str("x", &with_seed(text, 78)).unwrap();
        assert_ne!(
            resolved(&other),
            resolved(&plan),
            "seeds 77 and 78 draw alike"
        );
        std::fs::write(
            dir.join(SCHEDULE),
            serde_json::to_string(&resolved(&other)).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            load(&dir),
            Err(ReproError::ScheduleDiffers { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("repro-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
