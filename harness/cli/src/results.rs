//! The results store: `results/<plan>/<UTC timestamp>/`, with `results/<plan>/latest`
//! pointing at the newest run. A run writes `status.json` as incomplete first and marks it
//! complete last, so an interrupted run still leaves a readable, honestly labelled result.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::verdict::{Outcome, Verdict};

pub const HISTORY: &str = "history.jsonl";
pub const VERDICT: &str = "verdict.json";
pub const STATUS: &str = "status.json";
pub const PLAN: &str = "plan.yaml";
pub const ENVIRONMENT: &str = "environment.json";
pub const LOGS: &str = "logs";
/// Rendered from the files above after the run (and again by `smbchaos report`).
pub const REPORT: &str = "report.html";
pub const JUNIT: &str = "junit.xml";
/// Per-link pcap files of the userspace wire.
pub const PCAP: &str = "pcap";
/// Per-link byte and frame counters at the end of the run.
pub const LINKS: &str = "links.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub complete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub run_id: String,
}

pub struct ResultsDir {
    pub path: PathBuf,
}

impl ResultsDir {
    /// Make a fresh directory for one run of `plan_name` and point `latest` at it.
    pub fn create(root: &Path, plan_name: &str) -> std::io::Result<ResultsDir> {
        let plan_dir = root.join(plan_name);
        fs::create_dir_all(&plan_dir)?;
        let stamp = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
            ))
            .map_err(std::io::Error::other)?;
        let mut path = plan_dir.join(&stamp);
        let mut n = 0;
        loop {
            match fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    path = plan_dir.join(format!("{stamp}-{n}"));
                }
                Err(e) => return Err(e),
            }
        }
        // Replace `latest` atomically: a new symlink renamed over the old one.
        let tmp = plan_dir.join(format!(".latest-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(path.file_name().expect("dir name"), &tmp)?;
        fs::rename(&tmp, plan_dir.join("latest"))?;
        Ok(ResultsDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
        fs::write(self.file(name), text)
    }

    pub fn write_status(&self, status: &Status) -> std::io::Result<()> {
        self.write_json(STATUS, status)
    }

    pub fn write_verdict(&self, verdict: &Verdict) -> std::io::Result<()> {
        self.write_json(VERDICT, verdict)
    }
}

/// What was on the machine for this run.
#[derive(Debug, Serialize)]
pub struct Environment {
    pub smbchaos: String,
    pub kernel: String,
    pub samba: String,
    pub seed: u64,
    pub fault_mechanisms: Vec<String>,
}

impl Environment {
    pub fn probe(seed: u64, fault_mechanisms: Vec<String>) -> Environment {
        let uname = nix::sys::utsname::uname().ok();
        let kernel = uname
            .map(|u| {
                format!(
                    "{} {}",
                    u.sysname().to_string_lossy(),
                    u.release().to_string_lossy()
                )
            })
            .unwrap_or_default();
        Environment {
            smbchaos: env!("CARGO_PKG_VERSION").to_string(),
            kernel,
            samba: command_version(lab::samba::SMBD, "--version"),
            seed,
            fault_mechanisms,
        }
    }
}

pub fn command_version(program: &str, flag: &str) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
