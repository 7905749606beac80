//! Shared set-up for the integration tests against a real Samba in a lab.
#![allow(dead_code)]

pub mod mc;

use std::net::SocketAddr;

use lab::{Lab, LabOptions};
use smb2::*;

pub const PLAN: &str = r#"
version: 1
name: smb2-client
topology:
  servers:
    - name: fs1
      shares:
        - name: share
        - name: secret
          options:
            smb encrypt: required
  clients:
    - name: c1
    - name: c2
"#;

pub async fn lab_up(test: &str) -> Lab {
    let plan = plan::parse_str("smb2-client.yaml", PLAN).expect("plan");
    Lab::up(&plan, LabOptions::for_test(test))
        .await
        .expect("lab up")
}

pub fn server(lab: &Lab) -> SocketAddr {
    (lab.address("fs1"), 445).into()
}

pub fn unc(lab: &Lab, share: &str) -> String {
    format!(r"\\{}\{}", lab.address("fs1"), share)
}

pub fn creds(lab: &Lab) -> Credentials {
    let (u, p) = lab.credentials();
    Credentials::new(u, p)
}

pub async fn connect(lab: &Lab, node: &str) -> (Connection, Events) {
    // Accepted or refused in milliseconds inside the lab; 10 s only if a SYN is dropped.
    let s = within(
        &format!("a TCP connection from {node} to fs1:445"),
        std::time::Duration::from_secs(10),
        lab.connect(node, server(lab)),
    )
    .await
    .expect("connect");
    Connection::new(s)
}

/// connect → negotiate → session setup → tree connect.
pub async fn open_tree(
    lab: &Lab,
    node: &str,
    dialects: &[Dialect],
    client_guid: Guid,
    share: &str,
) -> (Connection, Events, Session, Tree) {
    let (conn, events) = connect(lab, node).await;
    conn.negotiate(
        &default_negotiate_request(dialects, client_guid, false),
        &RequestOptions::default(),
    )
    .await
    .expect("negotiate")
    .ok()
    .expect("negotiate status");
    let session = conn
        .session_setup(&SessionSetupOptions::new(creds(lab)))
        .await
        .expect("session setup");
    let tree = session
        .tree_connect(&unc(lab, share))
        .await
        .expect("tree connect");
    (conn, events, session, tree)
}

pub fn lease_key() -> [u8; 16] {
    rand::random()
}

pub fn unique(name: &str) -> String {
    format!("{name}-{:08x}.dat", rand::random::<u32>())
}

/// `fut`, or a panic naming what was awaited if it takes longer than `deadline`.
pub async fn within<T>(
    what: &str,
    deadline: std::time::Duration,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(deadline, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {deadline:?}"))
}

/// Polls `ready` every few milliseconds until it gives a value, or panics after `deadline`
/// naming what was awaited and, from `seen`, what there was instead. For states the client
/// records but does not announce (an interim response's AsyncId).
pub async fn until<T>(
    what: &str,
    deadline: std::time::Duration,
    mut ready: impl FnMut() -> Option<T>,
    seen: impl FnOnce() -> String,
) -> T {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        if tokio::time::Instant::now() >= end {
            panic!("{what}: not within {deadline:?}; instead: {}", seen());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The AsyncId of `pending` once the server's interim STATUS_PENDING has arrived. Samba goes
/// async for a create waiting on a break within about a second; 10 s for a loaded machine.
pub async fn interim<T: smb2::wire::ResponseBody>(pending: &Pending<T>, what: &str) -> u64 {
    until(
        &format!("an interim STATUS_PENDING for {what}"),
        std::time::Duration::from_secs(10),
        || pending.async_id(),
        || "no AsyncId recorded for the request".to_string(),
    )
    .await
}

/// Run `cmd` (made by `lab.command`) to its end, or kill it at `deadline` and panic with
/// what it printed by then. Returns (success, "<what> exited N", stdout, stderr).
pub async fn run_within(
    mut cmd: tokio::process::Command,
    what: &str,
    deadline: std::time::Duration,
) -> (bool, String, String, String) {
    use tokio::io::AsyncReadExt;
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
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let status = tokio::time::timeout(deadline, child.wait()).await;
    if status.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let (stdout, stderr) = (
        stdout.await.unwrap_or_default(),
        stderr.await.unwrap_or_default(),
    );
    match status {
        Ok(Ok(s)) => (s.success(), format!("{what} {}", s), stdout, stderr),
        Ok(Err(e)) => panic!("{what}: wait: {e}"),
        Err(_) => panic!(
            "{what} did not end within {deadline:?} (killed); it printed:\n{stdout}\n{stderr}"
        ),
    }
}

/// Bytes waiting unread in `node`'s established sockets on port 445 (rx_queue of
/// /proc/net/tcp, read inside the node's namespace), and the lines read: with smbd frozen, a
/// request that reached the server stays there. Read in-process, not with `ss` in the node:
/// a program started in a frozen node joins its frozen cgroup and never runs.
pub fn unread_on_445(lab: &Lab, node: &str) -> (u64, String) {
    lab.node(node)
        .unwrap()
        .ns
        .run(|| {
            let tcp = std::fs::read_to_string("/proc/thread-self/net/tcp")
                .map_err(|e| lab::LabError::io("read /proc/net/tcp", e))?;
            let mut unread = 0;
            let mut lines = Vec::new();
            for line in tcp.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                let (Some(local), Some(state), Some(queues)) = (f.get(1), f.get(3), f.get(4))
                else {
                    continue;
                };
                // State 01 is ESTABLISHED; 01BD is port 445.
                if *state == "01" && local.ends_with(":01BD") {
                    let rx = queues.split(':').nth(1).unwrap_or("0");
                    unread += u64::from_str_radix(rx, 16).unwrap_or(0);
                    lines.push(line.trim().to_string());
                }
            }
            Ok((unread, lines.join("\n")))
        })
        .unwrap()
}
