//! The history: one JSONL file of ops and faults, Jepsen's model. Every op is an `invoke`
//! followed by `ok`, `fail` or `info` (outcome unknown). Each record is written with a single
//! `write` as it happens, so a killed run still leaves a readable history.
//!
//! The vocabulary of `f` (what checkers rely on) is documented in `ops`.

pub mod effect;
pub mod ops;
pub mod results;
pub mod value;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Deserializer, Serialize};

pub use value::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpType {
    #[default]
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who performed an op: a workload process (a number) or the nemesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Worker(u64),
    Named(String),
}

impl Default for Process {
    fn default() -> Self {
        Process::Worker(0)
    }
}

impl Process {
    pub fn nemesis() -> Process {
        Process::Named("nemesis".into())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Record {
    /// Position in the history (0-based); op ids in verdicts are these.
    pub index: u64,
    /// Nanoseconds since the run's monotonic clock started.
    pub time_ns: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The operation: `exec`, or a fault kind (`kill`, `pause`, ...).
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Typed by `f`, `type` and process (`value::Shape::of`).
    #[serde(default, skip_serializing_if = "Value::is_none")]
    pub value: Value,
    /// NTSTATUS name, exit status or error text of a `fail`/`info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// SMB identifiers of the op, when it is one of our wire client's.
    #[serde(flatten)]
    pub smb: Smb,
}

impl Process {
    /// The name of a named process (None: a worker).
    pub fn name(&self) -> Option<&str> {
        match self {
            Process::Named(n) => Some(n),
            Process::Worker(_) => None,
        }
    }
}

/// A record as its JSON says it, before `value` is typed by the rest.
#[derive(Deserialize)]
struct RecordText {
    index: u64,
    time_ns: u64,
    process: Process,
    #[serde(rename = "type")]
    kind: OpType,
    f: String,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    status: Option<String>,
    #[serde(flatten)]
    smb: Smb,
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = RecordText::deserialize(d)?;
        let shape = value::Shape::of(ops::Op::of(&r.f), r.kind, r.process.name());
        let value = shape.read(r.value).map_err(|e| {
            serde::de::Error::custom(format_args!("value of {}: {e}", shape.name()))
        })?;
        Ok(Record {
            index: r.index,
            time_ns: r.time_ns,
            process: r.process,
            kind: r.kind,
            f: r.f,
            node: r.node,
            value,
            status: r.status,
            smb: r.smb,
        })
    }
}

/// The SMB identifiers an op carried or got back (MS-SMB2 names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Smb {
    /// The logical client (a workload client of the plan, e.g. `c1/0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Which of the client's connections (a new number after every reconnect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u64>,
    /// The server node that accepted the op's connection (for a cluster: the node holding
    /// the public address then, as the node's own socket table says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_id: Option<u32>,
    /// The file the op works on (path on the share).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SMB2_FILEID as `persistent:volatile` in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// LeaseKey as 32 hex digits.
    pub key: String,
    /// Lease state as caching letters: some of R, W, H (empty: none).
    pub state: String,
    pub epoch: u16,
}

/// What a writer is asked to append; index and time are stamped on write.
#[derive(Default)]
pub struct Entry {
    pub process: Process,
    pub kind: OpType,
    pub f: String,
    pub node: Option<String>,
    pub value: Value,
    pub status: Option<String>,
    pub smb: Smb,
}

pub struct HistoryWriter {
    inner: Mutex<(File, u64)>,
    epoch: Instant,
}

impl HistoryWriter {
    pub fn create(path: &Path, epoch: Instant) -> std::io::Result<HistoryWriter> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        Ok(HistoryWriter {
            inner: Mutex::new((file, 0)),
            epoch,
        })
    }

    /// Append one record; returns its index.
    pub fn append(&self, entry: Entry) -> std::io::Result<u64> {
        let mut guard = self.inner.lock().expect("history lock");
        let (file, next) = &mut *guard;
        let record = Record {
            index: *next,
            time_ns: self.epoch.elapsed().as_nanos() as u64,
            process: entry.process,
            kind: entry.kind,
            f: entry.f,
            node: entry.node,
            value: entry.value,
            status: entry.status,
            smb: entry.smb,
        };
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        file.write_all(&line)?;
        *next += 1;
        Ok(record.index)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
}

/// Read a stored history. A torn last line (the run was killed mid-write) is ignored; any
/// other malformed line is an error naming its line.
pub fn read(path: &Path) -> Result<Vec<Record>, ReadError> {
    let file_name = path.display().to_string();
    let file = File::open(path).map_err(|e| ReadError::Io {
        file: file_name.clone(),
        source: e,
    })?;
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| ReadError::Io {
            file: file_name.clone(),
            source: e,
        })?;
    let mut records = Vec::with_capacity(lines.len());
    let last = lines.len();
    for (n, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(_) if n + 1 == last => break,
            Err(e) => {
                return Err(ReadError::Parse {
                    file: file_name,
                    line: n + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let w = HistoryWriter::create(&path, Instant::now()).unwrap();
        let done = value::ExecDone {
            exit: Some(0),
            stdout: String::new(),
            stderr: String::new(),
        };
        let invoke = value::ExecInvoke { run: "true".into() };
        for (kind, value) in [(OpType::Invoke, invoke.into()), (OpType::Ok, done.into())] {
            w.append(Entry {
                process: Process::Worker(0),
                kind,
                f: "exec".into(),
                node: Some("c1".into()),
                value,
                status: None,
                ..Default::default()
            })
            .unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"index\":2,\"ti").unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].kind, OpType::Ok);
        assert_eq!(records[1].index, 1);
        assert!(records[0].time_ns <= records[1].time_ns);
    }

    #[test]
    fn a_malformed_middle_line_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, "garbage\n{}\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:1: ", path.display())), "{err}");
    }
}
