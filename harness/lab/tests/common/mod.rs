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

/// What the lab tests offer in NEGOTIATE: 2.0.2 and 2.1, so the server's pick (2.1) is known.
pub const DIALECTS: [smb2::Dialect; 2] = [smb2::Dialect::SMB2_0_2, smb2::Dialect::SMB2_1];

/// A NEGOTIATE answered in milliseconds by a live smbd; 5 s covers a loaded machine.
pub const NEGOTIATE: Duration = Duration::from_secs(5);

/// Request options whose only change is the deadline for the final response.
pub fn opts(timeout: Duration) -> smb2::RequestOptions {
    smb2::RequestOptions {
        timeout: Some(timeout),
        ..Default::default()
    }
}

pub fn negotiate_request() -> smb2::wire::negotiate::NegotiateRequest {
    smb2::default_negotiate_request(&DIALECTS, smb2::Guid::random(), false)
}

/// The project's SMB client over `stream`, negotiated (panics with the client's error).
pub async fn negotiated(stream: tokio::net::TcpStream) -> (smb2::Connection, smb2::Events) {
    let (conn, events) = smb2::Connection::new(stream);
    conn.negotiate(&negotiate_request(), &opts(NEGOTIATE))
        .await
        .and_then(|r| r.ok())
        .unwrap_or_else(|e| panic!("NEGOTIATE: {e}"));
    (conn, events)
}

/// The text the kernel gives `errno`, as the client's disconnect reason carries it.
pub fn os_error(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// The connection's next event, which must be its end; returns the reason.
pub async fn disconnected(events: &mut smb2::Events, what: &str, deadline: Duration) -> String {
    match within(what, deadline, events.recv()).await {
        Some(smb2::Event::Disconnected { reason }) => reason,
        other => panic!("{what}: the connection's next event is {other:?}, not its end"),
    }
}

/// The connection's next event, which must be the late response to `message_id` (a request
/// that timed out); returns its command.
pub async fn late_response(
    events: &mut smb2::Events,
    message_id: u64,
    what: &str,
    deadline: Duration,
) -> smb2::Command {
    match within(what, deadline, events.recv()).await {
        Some(smb2::Event::Unmatched { header, .. }) if header.message_id == message_id => {
            header.command
        }
        other => panic!("{what}: the connection's next event is {other:?}, not the response to MessageId {message_id}"),
    }
}

/// TCP segments retransmitted so far in `node`'s namespace (Tcp RetransSegs of
/// /proc/net/snmp). Panics when the counter cannot be read: a test asserting "no
/// retransmission" must not pass on a counter it never saw.
pub fn retransmits(lab: &Lab, node: &str) -> u64 {
    let snmp = lab
        .node(node)
        .unwrap()
        .ns
        .run(|| {
            std::fs::read_to_string("/proc/thread-self/net/snmp")
                .map_err(|e| lab::LabError::io("snmp", e))
        })
        .unwrap();
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RetransSegs")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Tcp RetransSegs in {node}'s /proc/net/snmp:\n{snmp}"))
}
