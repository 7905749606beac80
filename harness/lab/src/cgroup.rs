//! One cgroup-v1 freezer group per node: it knows every process a node runs (smbd forks a
//! child per connection), freezes and thaws them together, and lets `clean` find them after
//! a crash.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::LabError;

pub const FREEZER_ROOT: &str = "/sys/fs/cgroup/freezer";
/// Every group the harness makes lives under this one.
pub const HARNESS_GROUP: &str = "smbchaos";

#[derive(Debug, Clone)]
pub struct Freezer {
    path: PathBuf,
}

impl Freezer {
    /// Make (or reuse) `<freezer root>/smbchaos/<run id>/<node>`.
    pub fn create(run_id: &str, node: &str) -> Result<Freezer, LabError> {
        let path = Path::new(FREEZER_ROOT)
            .join(HARNESS_GROUP)
            .join(run_id)
            .join(node);
        fs::create_dir_all(&path)
            .map_err(|e| LabError::io(format!("create cgroup {}", path.display()), e))?;
        Ok(Freezer { path })
    }

    pub fn at(path: impl Into<PathBuf>) -> Freezer {
        Freezer { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file a child writes "0" to (in pre_exec) to join this group.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    pub fn pids(&self) -> Vec<Pid> {
        fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
            .map(Pid::from_raw)
            .collect()
    }

    pub fn freeze(&self) -> Result<(), LabError> {
        self.set_state("FROZEN")
    }

    pub fn thaw(&self) -> Result<(), LabError> {
        self.set_state("THAWED")
    }

    pub fn is_frozen(&self) -> bool {
        fs::read_to_string(self.path.join("freezer.state"))
            .map(|s| s.trim() == "FROZEN")
            .unwrap_or(false)
    }

    /// Write the state and wait until the kernel reports it (FREEZING is transitional).
    fn set_state(&self, state: &str) -> Result<(), LabError> {
        let file = self.path.join("freezer.state");
        fs::write(&file, state)
            .map_err(|e| LabError::io(format!("write {} to {}", state, file.display()), e))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = fs::read_to_string(&file).unwrap_or_default();
            if now.trim() == state {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "cgroup {} stuck in {} instead of {state}",
                    self.path.display(),
                    now.trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Send `signal` to every process in the group.
    pub fn signal_all(&self, signal: Signal) -> usize {
        let pids = self.pids();
        for pid in &pids {
            let _ = kill(*pid, signal);
        }
        pids.len()
    }

    /// SIGKILL everything in the group and wait until it is empty. A frozen process cannot
    /// die, so the group is thawed first.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), LabError> {
        if !self.path.exists() {
            return Ok(());
        }
        let _ = self.thaw();
        let deadline = Instant::now() + timeout;
        loop {
            if self.signal_all(Signal::SIGKILL) == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "processes {:?} in {} survived SIGKILL",
                    self.pids(),
                    self.path.display()
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Kill what is left and remove the group.
    pub fn destroy(&self) -> Result<(), LabError> {
        self.kill_all(Duration::from_secs(10))?;
        remove_dir(&self.path)
    }
}

fn remove_dir(path: &Path) -> Result<(), LabError> {
    // A task SIGKILLed a moment ago leaves the group only once it has finished exiting (a
    // container's processes are reaped by their shim, not by us): until then rmdir says EBUSY.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(LabError::io(format!("remove cgroup {}", path.display()), e)),
        }
    }
}

/// Remove a run's group directory (after its node groups are gone).
pub fn remove_run_group(run_id: &str) -> Result<(), LabError> {
    let run = Path::new(FREEZER_ROOT).join(HARNESS_GROUP).join(run_id);
    if let Ok(entries) = fs::read_dir(&run) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                Freezer::at(e.path()).destroy()?;
            }
        }
    }
    remove_dir(&run)?;
    // The harness's parent group goes too once no run uses it (another run may; then it stays).
    let _ = fs::remove_dir(Path::new(FREEZER_ROOT).join(HARNESS_GROUP));
    Ok(())
}

/// Run ids that have a group under the harness's freezer group.
pub fn run_groups() -> Vec<String> {
    fs::read_dir(Path::new(FREEZER_ROOT).join(HARNESS_GROUP))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}
