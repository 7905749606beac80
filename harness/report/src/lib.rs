//! `report.html`: one self-contained page per run, rendered from the results directory
//! alone (history, verdict, status, plan), so `smbchaos report DIR` can redo it for any
//! stored run, finished or interrupted.

mod html;
pub mod index;
pub mod junit;
mod model;
mod svg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use check::{History, Verdict};
use history::results::{self, Status, REPORT};
use history::Record;

pub use model::Model;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error(transparent)]
    History(#[from] history::ReadError),
}

/// Everything a report shows; `load` reads it from a results directory.
pub struct Input {
    pub plan_name: String,
    /// The run directory's name (its UTC start time).
    pub run_name: String,
    /// The history in `check`'s compact form: what the page draws and counts.
    pub history: History,
    /// history.jsonl, from which the few records the page tables in full are re-read.
    pub history_path: Option<PathBuf>,
    pub verdict: Option<Verdict>,
    pub status: Option<Status>,
    pub plan_text: Option<String>,
    pub environment: Option<serde_json::Value>,
    /// Files of the run directory, relative to it, to link to.
    pub files: Vec<FileLink>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    /// Relative to the run directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// A packet capture (`pcap/` or `*.pcap`, `*.pcapng`).
    pub capture: bool,
}

impl FileLink {
    /// A relative URL: the path with anything but plain characters percent-encoded.
    pub fn href(&self) -> String {
        let mut out = String::with_capacity(self.path.len());
        for b in self.path.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
}

impl Input {
    /// Position in the history of the record with history index `index`.
    pub fn position(&self, index: u64) -> Option<u32> {
        self.history.position(index).map(|p| p as u32)
    }
}

/// Render the page. Big histories are drawn per screen column and tabled in part, so the
/// page stays a few megabytes; failing ops are always drawn.
pub fn render(input: &Input) -> String {
    let complete = input.status.as_ref().is_some_and(|s| s.complete);
    let model = Model::build(&input.history, complete);
    let shown = html::chosen_records(input, &model);
    let rows = match &input.history_path {
        Some(path) => read_positions(path, &shown).unwrap_or_default(),
        None => Vec::new(),
    };
    html::page(input, &model, &shown, &rows).into_string()
}

/// The records at the positions marked in `wanted` (a position counts the non-empty lines
/// before it, as `History::read` does), parsed in full; the other lines are only scanned.
fn read_positions(path: &Path, wanted: &[bool]) -> Result<Vec<(u32, Record)>, std::io::Error> {
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut line = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0usize;
    let last = wanted.iter().rposition(|w| *w);
    while last.is_some_and(|l| pos <= l) {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if wanted[pos] {
            // A torn last line was not read into the history either.
            if let Ok(r) = serde_json::from_slice::<Record>(&line) {
                out.push((pos as u32, r));
            }
        }
        pos += 1;
    }
    Ok(out)
}

/// Read what a results directory holds. Only the history is required (and may be empty or
/// torn: an interrupted run is still reported).
pub fn load(dir: &Path) -> Result<Input, ReportError> {
    load_with(dir, None)
}

/// [`load`], with the compact history already read (by `check`), or None to read it.
fn load_with(dir: &Path, history: Option<History>) -> Result<Input, ReportError> {
    let path = dir.join(results::HISTORY);
    let (history, history_path) = match (history, path.exists()) {
        (Some(h), exists) => (h, exists.then_some(path)),
        (None, true) => (History::read(&path)?, Some(path)),
        (None, false) => (History::default(), None),
    };
    let plan_text = read_optional(&dir.join(results::PLAN))?;
    let plan_name = plan_text
        .as_deref()
        .and_then(plan_name)
        .or_else(|| {
            dir.parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "smbchaos run".into());
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    Ok(Input {
        plan_name,
        run_name: canonical
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        history,
        history_path,
        verdict: read_json(&dir.join(results::VERDICT))?,
        status: read_json(&dir.join(results::STATUS))?,
        plan_text,
        environment: read_json(&dir.join(results::ENVIRONMENT))?,
        files: list_files(dir),
    })
}

/// Render `DIR/report.html` and `DIR/junit.xml` from what the directory holds; returns the
/// report's path.
pub fn write(dir: &Path) -> Result<PathBuf, ReportError> {
    write_input(dir, load(dir)?)
}

/// [`write`] from the compact history of DIR's history.jsonl that the caller already holds
/// (`smbchaos check` judged it): the file is not parsed a second time.
pub fn write_with(dir: &Path, history: History) -> Result<PathBuf, ReportError> {
    write_input(dir, load_with(dir, Some(history))?)
}

fn write_input(dir: &Path, input: Input) -> Result<PathBuf, ReportError> {
    let junit = crate::junit::for_run(&input)
        .to_string()
        .expect("JUnit XML of plain strings serializes");
    replace(&dir.join(results::JUNIT), junit.as_bytes())?;
    let path = dir.join(REPORT);
    replace(&path, render(&input).as_bytes())?;
    Ok(path)
}

/// Write whole, then rename into place: a reader never sees half a file.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn plan_name(text: &str) -> Option<String> {
    // The stored plan is the one that ran; its `name:` line is all the report needs.
    text.lines()
        .find_map(|l| l.strip_prefix("name:"))
        .map(|n| n.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|n| !n.is_empty())
}

fn read_optional(path: &Path) -> Result<Option<String>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ReportError> {
    match read_optional(path)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ReportError::Json {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
    }
}

/// The run directory's files (a few levels deep, at most a few hundred), captures first.
fn list_files(dir: &Path) -> Vec<FileLink> {
    const MAX: usize = 300;
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<FileLink>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if out.len() >= MAX {
                return;
            }
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if meta.is_dir() {
                if depth < 4 {
                    walk(root, &path, depth + 1, out);
                }
            } else if !rel.starts_with('.') && rel != REPORT {
                let capture = rel.starts_with("pcap/")
                    || [".pcap", ".pcapng", ".cap"]
                        .iter()
                        .any(|x| rel.ends_with(x));
                out.push(FileLink {
                    path: rel,
                    size: meta.len(),
                    capture,
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, 0, &mut out);
    out.sort_by_key(|f| !f.capture);
    out
}

/// A duration for people: 850 µs, 12.3 ms, 1.24 s, 3 min 2 s.
pub fn human(ns: u64) -> String {
    match ns {
        n if n < 1_000 => format!("{n} ns"),
        n if n < 1_000_000 => format!("{:.0} µs", n as f64 / 1e3),
        n if n < 10_000_000 => format!("{:.2} ms", n as f64 / 1e6),
        n if n < 1_000_000_000 => format!("{:.1} ms", n as f64 / 1e6),
        n if n < 60_000_000_000 => format!("{:.2} s", n as f64 / 1e9),
        n => format!(
            "{} min {} s",
            n / 60_000_000_000,
            (n % 60_000_000_000) / 1_000_000_000
        ),
    }
}

/// A point on the run's clock, in seconds.
pub fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human(850_000), "850 µs");
        assert_eq!(human(12_345_678), "12.3 ms");
        assert_eq!(human(1_240_000_000), "1.24 s");
        assert_eq!(human(182_000_000_000), "3 min 2 s");
        assert_eq!(secs(267_122_703), "0.267 s");
    }

    #[test]
    fn hrefs_are_relative_and_encoded() {
        let f = FileLink {
            path: "pcap/c1 fs1#1.pcap".into(),
            size: 1,
            capture: true,
        };
        assert_eq!(f.href(), "pcap/c1%20fs1%231.pcap");
    }

    #[test]
    fn plan_name_comes_from_the_stored_plan() {
        assert_eq!(
            plan_name("# x\nversion: 1\nname: smoke\n").as_deref(),
            Some("smoke")
        );
        assert_eq!(plan_name("name: \"q\"\n").as_deref(), Some("q"));
    }
}
