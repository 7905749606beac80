//! Running the `smbchaos` binary with a deadline: a run that hangs on a broken machine must
//! fail its test with what it printed, not hold CI until its own limit.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A lab run: bringing up a lab, a workload of seconds and a teardown take well under a
/// minute here; three leave room for a loaded machine and still end a hang long before CI's
/// 90 minutes.
pub const LAB_RUN: Duration = Duration::from_secs(180);
/// A command that needs no lab (validate, check, report, clean, doctor).
pub const NO_LAB: Duration = Duration::from_secs(60);
/// How long after SIGTERM a run may take to tear its lab down before SIGKILL.
const TEARDOWN: Duration = Duration::from_secs(30);

/// What a pipe has delivered so far, readable while the reader still runs.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Copy `pipe` into a buffer on a thread; `done` hears when it reaches its end.
fn capture(mut pipe: impl Read + Send + 'static, done: mpsc::Sender<()>) -> Captured {
    let buf = Captured::default();
    let into = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
        let _ = done.send(());
    });
    buf
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    // Only the child we started, by its id, and only while it is unreaped (its waiter has
    // not reported), so the id cannot belong to anyone else.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Wait for `child` on a thread; on `deadline`, SIGTERM it (smbchaos tears its lab down),
/// then SIGKILL, and return Err with how long it had run.
pub fn wait_within(child: Child, deadline: Duration) -> Result<ExitStatus, String> {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    let ended = |r: std::io::Result<ExitStatus>| r.map_err(|e| format!("wait: {e}"));
    match rx.recv_timeout(deadline) {
        Ok(r) => return ended(r),
        Err(_) => signal(pid, nix::sys::signal::SIGTERM),
    }
    if rx.recv_timeout(TEARDOWN).is_err() {
        signal(pid, nix::sys::signal::SIGKILL);
        let _ = rx.recv_timeout(Duration::from_secs(10));
    }
    Err(format!(
        "did not end within {deadline:?}; sent SIGTERM (and SIGKILL if it had not ended {TEARDOWN:?} later)"
    ))
}

/// `cmd`'s output, like `Command::output`, but a run still going at `deadline` is stopped
/// and the test fails naming `what` and everything it had printed.
pub fn output_within(cmd: &mut Command, what: &str, deadline: Duration) -> Output {
    try_output_within(cmd, what, deadline).unwrap_or_else(|why| panic!("{why}"))
}

/// As [`output_within`], with the failure as an Err for harnesses that report it themselves.
pub fn try_output_within(
    cmd: &mut Command,
    what: &str,
    deadline: Duration,
) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    let (done_tx, done) = mpsc::channel();
    let stdout = capture(child.stdout.take().expect("piped"), done_tx.clone());
    let stderr = capture(child.stderr.take().expect("piped"), done_tx);
    let status = wait_within(child, deadline);
    // The pipes end with the process, unless something it left behind still holds them:
    // take what is there after a moment rather than wait for that.
    for _ in 0..2 {
        let _ = done.recv_timeout(Duration::from_secs(5));
    }
    match status {
        Ok(status) => Ok(Output {
            status,
            stdout: stdout.bytes(),
            stderr: stderr.bytes(),
        }),
        Err(why) => Err(format!(
            "{what} {why}\n--- stdout\n{}\n--- stderr\n{}",
            stdout.text(),
            stderr.text()
        )),
    }
}

/// Lines of a child's pipe, read on a thread, each awaited with a deadline.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line read so far, for failure messages.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Lines {
    /// Reads `pipe` to its end (so the child never writes into a closed pipe), keeping
    /// every line and handing each to `next`.
    pub fn new(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keep = seen.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                keep.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        Lines { rx, seen }
    }

    /// The first line for which `wanted` gives a value, or Err saying what was awaited and
    /// what came instead: the lines so far, or the end of the pipe.
    pub fn until<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut wanted: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let end = std::time::Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = wanted(&line) {
                        return Ok(v);
                    }
                }
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => format!("not within {deadline:?}"),
                        mpsc::RecvTimeoutError::Disconnected => "the output ended".to_string(),
                    };
                    return Err(format!(
                        "{what}: {why}; it printed:\n{}",
                        self.seen
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .join("\n")
                    ));
                }
            }
        }
    }
}
