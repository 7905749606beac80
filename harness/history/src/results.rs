//! The results store: `results/<plan>/<UTC timestamp>/`, with `results/<plan>/latest`
//! pointing at the newest run. A run writes `status.json` as incomplete first and marks it
//! complete last, so an interrupted run still leaves a readable, honestly labelled result.
//! The runner writes here, the checkers and reporters read from here: this module is the one
//! place that names the files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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

/// A run's outcome: the verdict's, and the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Unknown,
}

impl Outcome {
    /// Process exit code: 0 pass, 1 fail, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Unknown => 2,
        }
    }

    /// Fail beats unknown beats pass.
    pub fn and(self, other: Outcome) -> Outcome {
        match (self, other) {
            (Outcome::Fail, _) | (_, Outcome::Fail) => Outcome::Fail,
            (Outcome::Unknown, _) | (_, Outcome::Unknown) => Outcome::Unknown,
            _ => Outcome::Pass,
        }
    }
}

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
        let stamp = utc_stamp(SystemTime::now());
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

    /// An existing run directory.
    pub fn open(path: &Path) -> ResultsDir {
        ResultsDir {
            path: path.to_path_buf(),
        }
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
}

/// `YYYYMMDDTHHMMSS.mmmZ` in UTC (civil-from-days, Howard Hinnant's algorithm): sortable,
/// and safe in a path.
pub fn utc_stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_civil_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_014_965_273);
        assert_eq!(utc_stamp(t), "20261130T050245.273Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000.000Z");
        // 2000-02-29, a leap day of a century year.
        assert_eq!(
            utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "20000229T000000.000Z"
        );
    }

    #[test]
    fn outcomes_compose_fail_over_unknown_over_pass() {
        use Outcome::*;
        assert_eq!(Pass.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Fail), Fail);
        assert_eq!(Pass.and(Pass), Pass);
        assert_eq!([Pass, Fail, Unknown].map(Outcome::exit_code), [0, 1, 2]);
    }
}
