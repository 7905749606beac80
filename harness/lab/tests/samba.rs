//! The lab for real: namespaces, a switch, Debian's smbd, smbclient in a client namespace.
//! These tests need root and Samba (scripts/setup installs it).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{negotiated, opts, smbclient, within, CONNECT};
use lab::{netns, Lab, LabOptions};

const PLAN: &str = r#"
version: 1
name: lab-test
topology:
  servers:
    - name: fs1
  clients:
    - name: c1
    - name: c2
"#;

async fn up() -> Lab {
    let plan = plan::parse_str("lab-test.yaml", PLAN).expect("plan");
    Lab::up(&plan, LabOptions::default()).await.expect("lab up")
}

/// Running (not gone, not a zombie waiting for its reaper).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
        .unwrap_or(false)
}

fn ours(run_id: &str) -> Vec<String> {
    netns::list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("sc-{run_id}-")))
        .collect()
}

#[tokio::test]
async fn smbclient_puts_and_gets_a_file_and_teardown_leaves_nothing() {
    let lab = up().await;
    let run_id = lab.run_id().to_string();
    assert_eq!(
        ours(&run_id).len(),
        3,
        "one namespace per node; the userspace wire needs no switch namespace"
    );
    let work = lab.node("c1").unwrap().dir.join("work");
    std::fs::write(work.join("in.txt"), b"hello from c1\n").unwrap();

    let put = smbclient(&lab, "c1", "put in.txt hello.txt").await;
    assert!(put.ok, "put: {}", put.report);
    // The bytes are on the server's share, written by smbd.
    let on_disk = lab.node("fs1").unwrap().dir.join("shares/share/hello.txt");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello from c1\n");

    let get = smbclient(&lab, "c2", "get hello.txt out.txt").await;
    assert!(get.ok, "get: {}", get.report);
    let got = std::fs::read(lab.node("c2").unwrap().dir.join("work/out.txt")).unwrap();
    assert_eq!(got, b"hello from c1\n");

    let smbd_pids = lab.node("fs1").unwrap().freezer.pids();
    assert!(!smbd_pids.is_empty());
    let lab_dir = lab.dir().to_path_buf();
    lab.down().await.unwrap();
    assert!(
        ours(&run_id).is_empty(),
        "namespaces left: {:?}",
        ours(&run_id)
    );
    assert!(!lab_dir.exists());
    assert!(!Path::new(&format!("/run/smbchaos/{run_id}.json")).exists());
    assert!(!Path::new(&format!("/sys/fs/cgroup/freezer/smbchaos/{run_id}")).exists());
    for pid in smbd_pids {
        assert!(!alive(pid.as_raw()), "smbd {pid} survived");
    }
}

#[tokio::test]
async fn no_default_route_and_no_way_out_of_the_lab() {
    let lab = up().await;
    // Only the lab's own /15 is reachable: connecting anywhere else fails at once with
    // "network unreachable" instead of leaving the machine.
    let err = within(
        "a connection attempt out of the lab",
        CONNECT,
        lab.connect("c1", "192.0.2.1:445".parse().unwrap()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    let mut ip = lab.command("c1", "ip").unwrap();
    ip.args(["route", "show"]);
    let routes = common::run_within(ip, "ip route show", Duration::from_secs(10)).await;
    assert!(routes.ok, "{}", routes.report);
    let routes = routes.report;
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains("198.18.0.0/15"), "{routes}");
    lab.down().await.unwrap();
}

#[tokio::test]
async fn kill_refuses_445_restart_answers_again() {
    let lab = up().await;
    let target = SocketAddr::from((lab.address("fs1"), 445));
    lab.server("fs1")
        .unwrap()
        .lock()
        .await
        .kill()
        .await
        .unwrap();
    assert!(
        lab.node("fs1").unwrap().freezer.pids().is_empty(),
        "every smbd of the node is gone"
    );
    let err = within(
        "a TCP connection from c1 to fs1:445",
        CONNECT,
        lab.connect("c1", target),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    lab.server("fs1")
        .unwrap()
        .lock()
        .await
        .start()
        .await
        .unwrap();
    let stream = within(
        "a TCP connection from c1 to fs1:445",
        CONNECT,
        lab.connect("c1", target),
    )
    .await
    .unwrap();
    let (conn, _events) = negotiated(stream).await;
    let dialect = conn.negotiated().expect("negotiated").dialect;
    assert_eq!(
        dialect,
        smb2::Dialect::SMB2_1,
        "the highest of {:?}",
        common::DIALECTS
    );
    lab.down().await.unwrap();
}

#[tokio::test]
async fn pause_stalls_negotiate_and_resume_lets_it_finish() {
    let lab = up().await;
    let target = SocketAddr::from((lab.address("fs1"), 445));
    lab.server("fs1").unwrap().lock().await.pause().unwrap();
    // The kernel still accepts the connection (the listening socket exists), but nobody
    // answers while smbd is frozen.
    let stream = within(
        "a TCP connection from c1 to fs1:445",
        CONNECT,
        lab.connect("c1", target),
    )
    .await
    .unwrap();
    let (conn, _events) = smb2::Connection::new(stream);
    let stalled = conn
        .negotiate(
            &common::negotiate_request(),
            &opts(Duration::from_millis(300)),
        )
        .await;
    assert!(
        matches!(stalled, Err(smb2::Error::Timeout { .. })),
        "NEGOTIATE to a frozen smbd must go unanswered: {stalled:?}"
    );
    lab.server("fs1").unwrap().lock().await.resume().unwrap();
    let stream = within(
        "a TCP connection from c1 to fs1:445",
        CONNECT,
        lab.connect("c1", target),
    )
    .await
    .unwrap();
    negotiated(stream).await;
    lab.down().await.unwrap();
}

#[tokio::test]
async fn reset_tcp_gives_the_client_econnreset() {
    let lab = up().await;
    let target = SocketAddr::from((lab.address("fs1"), 445));
    let stream = within(
        "a TCP connection from c1 to fs1:445",
        CONNECT,
        lab.connect("c1", target),
    )
    .await
    .unwrap();
    let (conn, mut events) = negotiated(stream).await;
    let reset = lab.reset_tcp("fs1", 445).await.unwrap();
    assert_eq!(reset.len(), 1, "{reset:?}");
    // The RST is sent as the socket is destroyed and crosses the wire in well under a
    // millisecond; 1 s covers a loaded machine, while a client left to notice by itself
    // (no RST) would wait for minutes.
    let reason = common::disconnected(
        &mut events,
        "the client's end of the reset connection",
        Duration::from_secs(1),
    )
    .await;
    let econnreset = common::os_error(libc::ECONNRESET);
    assert!(
        reason.contains(&econnreset),
        "the client must see the RST ({econnreset}), not: {reason}"
    );
    let echo = conn.echo(&opts(Duration::from_secs(1))).await;
    assert!(
        matches!(echo, Err(smb2::Error::Disconnected(_))),
        "an ECHO after the reset: {echo:?}"
    );
    lab.down().await.unwrap();
}

#[tokio::test]
async fn a_dropped_lab_is_torn_down_too() {
    let run_id = {
        let lab = up().await;
        lab.run_id().to_string()
    };
    assert!(ours(&run_id).is_empty());
    assert!(!Path::new(&format!("/run/smbchaos/{run_id}.json")).exists());
}
