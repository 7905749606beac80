//! What the lab tests share: running a tool inside a node with a deadline, so a broken
//! machine fails the test with the tool's own words instead of hanging it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use lab::Lab;
use tokio::io::AsyncReadExt;

/// How a program run inside a node ended.
pub struct Ran {
    pub ok: bool,
    pub took: Duration,
    /// "smbclient exited 1: <its stdout and stderr>", for failure messages.
    pub report: String,
}

/// Run `cmd` to its end, or kill it at `deadline` and panic naming what it was doing and
/// what it had printed by then.
pub async fn run_within(mut cmd: tokio::process::Command, what: &str, deadline: Duration) -> Ran {
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let drain = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut out = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut out).await;
            }
            out
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = tokio::time::timeout(deadline, child.wait()).await;
    let timed_out = status.is_err();
    if timed_out {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout.await.unwrap_or_default()),
        String::from_utf8_lossy(&stderr.await.unwrap_or_default())
    );
    let text = text.trim();
    let status = match status {
        Ok(s) => s.unwrap_or_else(|e| panic!("{what}: wait: {e}")),
        Err(_) => panic!("{what} did not end within {deadline:?} (killed); it printed: {text}"),
    };
    let ended = match status.code() {
        Some(code) => format!("exited {code}"),
        None => format!("ended by {status}"),
    };
    Ran {
        ok: status.success(),
        took: started.elapsed(),
        report: format!("{what} {ended}: {text}"),
    }
}

/// smbclient on `client` against fs1's `share`, in the client's work directory. A transfer
/// of a few MiB takes well under 10 s even through a lossy link; 120 s leaves room for a
/// loaded machine and still ends a hung run long before CI's limit.
pub async fn smbclient(lab: &Lab, client: &str, command: &str) -> Ran {
    let (user, password) = lab.credentials();
    let mut cmd = lab.command(client, "smbclient").unwrap();
    cmd.arg(format!("//{}/share", lab.address("fs1")))
        .arg("-U")
        .arg(format!("{user}%{password}"))
        .arg("-c")
        .arg(command)
        .current_dir(lab.node(client).unwrap().dir.join("work"));
    run_within(cmd, "smbclient", Duration::from_secs(120)).await
}

/// A TCP connection inside the lab is accepted or refused in milliseconds; only a path that
/// drops the SYN takes longer, and then the kernel would retry for two minutes.
pub const CONNECT: Duration = Duration::from_secs(10);

/// `fut`, or a panic naming what was awaited if it takes longer than `deadline`.
pub async fn within<T>(
    what: &str,
    deadline: Duration,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {deadline:?}"))
}
