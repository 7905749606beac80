//! The run-state file: every resource a run creates is recorded here *before* it is created,
//! so `smbchaos clean` can reclaim whatever a crashed or SIGKILLed run left behind.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::{self, Freezer};
use crate::{netns, LabError};

/// Where run-state files live (tmpfs on most machines: gone after a reboot, like namespaces).
pub const STATE_DIR: &str = "/run/smbchaos";
/// Prefix of every network namespace the harness makes: `sc-<run id>-<node>`.
pub const NETNS_PREFIX: &str = "sc-";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    pub plan: String,
    /// The harness process that owns the run, with its start time so a reused pid is not
    /// mistaken for the owner.
    pub owner_pid: i32,
    pub owner_start: u64,
    pub lab_dir: PathBuf,
    pub namespaces: Vec<String>,
    pub cgroups: Vec<PathBuf>,
    /// Docker containers (by name) of `provider: docker` nodes.
    #[serde(default)]
    pub containers: Vec<String>,
}

impl RunState {
    pub fn create(run_id: &str, plan: &str, lab_dir: &Path) -> Result<RunState, LabError> {
        let me = std::process::id() as i32;
        let state = RunState {
            run_id: run_id.to_string(),
            plan: plan.to_string(),
            owner_pid: me,
            owner_start: process_start_time(me).unwrap_or(0),
            lab_dir: lab_dir.to_path_buf(),
            namespaces: Vec::new(),
            cgroups: Vec::new(),
            containers: Vec::new(),
        };
        state.save()?;
        Ok(state)
    }

    pub fn file(run_id: &str) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{run_id}.json"))
    }

    pub fn save(&self) -> Result<(), LabError> {
        fs::create_dir_all(STATE_DIR)
            .map_err(|e| LabError::io(format!("create {STATE_DIR}"), e))?;
        let path = Self::file(&self.run_id);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| LabError::Other(e.to_string()))?;
        fs::write(&tmp, text).map_err(|e| LabError::io(format!("write {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| LabError::io(format!("write {}", path.display()), e))
    }

    pub fn record_netns(&mut self, name: &str) -> Result<(), LabError> {
        self.namespaces.push(name.to_string());
        self.save()
    }

    pub fn record_cgroup(&mut self, path: &Path) -> Result<(), LabError> {
        self.cgroups.push(path.to_path_buf());
        self.save()
    }

    pub fn record_container(&mut self, name: &str) -> Result<(), LabError> {
        self.containers.push(name.to_string());
        self.save()
    }

    pub fn load_all() -> Vec<RunState> {
        let Ok(dir) = fs::read_dir(STATE_DIR) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Is the process that made this run still running?
    pub fn owner_alive(&self) -> bool {
        process_start_time(self.owner_pid).is_some_and(|t| t == self.owner_start)
    }

    /// Tear down everything recorded: processes first (a namespace lingers while a process
    /// holds it), then namespaces, cgroups, the lab directory, and finally this file.
    pub fn reclaim(&self) -> Result<Reclaimed, LabError> {
        // Every step is tried even when one fails (a busy cgroup must not leave the
        // containers and namespaces behind); the first failure is returned at the end.
        let mut done = Reclaimed::default();
        let mut first_error: Option<LabError> = None;
        let mut keep = |r: Result<(), LabError>| {
            if let Err(e) = r {
                tracing::warn!("reclaiming a run: {e}");
                first_error.get_or_insert(e);
            }
        };
        for path in &self.cgroups {
            let group = Freezer::at(path);
            done.processes += group.pids().len();
            keep(group.destroy());
        }
        keep(cgroup::remove_run_group(&self.run_id));
        for ns in &self.namespaces {
            if netns::path_of(ns).exists() {
                keep(netns::delete(ns));
                done.namespaces.push(ns.clone());
            }
        }
        // After the namespaces (our bind mount of a container's network namespace goes
        // first) and before the lab directory (bind-mounted into the containers).
        keep(crate::docker::remove(&self.containers));
        done.containers = self.containers.clone();
        // A lossy disk (FUSE) whose harness died is left mounted, unreachable: unmount it
        // (a docker server's is in its container's mount namespace and goes with it).
        crate::lossy::unmount_under(&self.lab_dir);
        if self.lab_dir.starts_with(crate::LAB_DIR_ROOT) && self.lab_dir.exists() {
            keep(
                fs::remove_dir_all(&self.lab_dir)
                    .map_err(|e| LabError::io(format!("remove {}", self.lab_dir.display()), e)),
            );
        }
        if let Some(e) = first_error {
            // The state file stays: `smbchaos clean` tries again.
            return Err(e);
        }
        match fs::remove_file(Self::file(&self.run_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io("remove run-state file", e)),
        }
        Ok(done)
    }
}

#[derive(Debug, Default)]
pub struct Reclaimed {
    pub processes: usize,
    pub namespaces: Vec<String>,
    pub containers: Vec<String>,
}

/// What `clean` did.
#[derive(Debug, Default)]
pub struct CleanReport {
    pub reclaimed: Vec<(String, Reclaimed)>,
    /// Runs left alone because their owner is still running (use force to take them anyway).
    pub live: Vec<RunState>,
    /// Resources named like ours but recorded in no state file (e.g. a crash between
    /// creating and recording, which the write-ahead order should prevent).
    pub orphans: Vec<String>,
}

/// Reclaim every run whose owner is gone (or every run, with `force`), then sweep orphans:
/// resources named like ours whose run has no state file. State files are written before any
/// resource, so a resource without one belongs to no live run.
pub fn clean(force: bool) -> Result<CleanReport, LabError> {
    let mut report = CleanReport::default();
    for state in RunState::load_all() {
        if state.owner_alive() && !force {
            report.live.push(state);
            continue;
        }
        let done = state.reclaim()?;
        report.reclaimed.push((state.run_id.clone(), done));
    }
    let unowned = |run_id: &str| !RunState::file(run_id).exists();
    for ns in netns::list() {
        let Some(run_id) = ns
            .strip_prefix(NETNS_PREFIX)
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if unowned(run_id) {
            netns::delete(&ns)?;
            report.orphans.push(format!("network namespace {ns}"));
        }
    }
    for (name, run_id) in crate::docker::labelled() {
        if unowned(&run_id) {
            crate::docker::remove(std::slice::from_ref(&name))?;
            report.orphans.push(format!("container {name}"));
        }
    }
    for run_id in cgroup::run_groups() {
        if unowned(&run_id) {
            cgroup::remove_run_group(&run_id)?;
            report.orphans.push(format!(
                "cgroup {}/{}/{run_id}",
                cgroup::FREEZER_ROOT,
                cgroup::HARNESS_GROUP
            ));
        }
    }
    Ok(report)
}

/// Start time (in clock ticks since boot) of a process, from /proc/<pid>/stat field 22.
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
