//! SMB-aware faults and holds on the userspace wire, against a real smbd: each acts on the
//! message it names and on nothing else, stays within TCP's rules, and leaves nothing behind.
//! Needs root and Samba (scripts/setup).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{late_response, opts, retransmits, within};
use lab::wire::message::{MessageAction, MessageReport, MessageRule};
use lab::{Lab, LabOptions};

const ECHO: u16 = 0x0d;

fn plan() -> plan::Plan {
    plan::parse_str(
        "messages.yaml",
        "version: 1\nname: messages\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }, { name: c2 }]\n",
    )
    .unwrap()
}

async fn up() -> Lab {
    Lab::up(&plan(), LabOptions::default())
        .await
        .expect("lab up")
}

async fn session(lab: &Lab, client: &str) -> (smb2::Connection, smb2::Events) {
    let s = within(
        &format!("a TCP connection from {client} to fs1:445"),
        common::CONNECT,
        lab.connect(client, SocketAddr::from((lab.address("fs1"), 445))),
    )
    .await
    .unwrap();
    common::negotiated(s).await
}

async fn down(lab: Lab) {
    assert!(lab.wire_is_clean(), "a fault is still on the wire");
    let run_id = lab.run_id().to_string();
    lab.down().await.unwrap();
    let left: Vec<String> = lab::netns::list()
        .into_iter()
        .filter(|n| n.contains(&run_id))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn echo_rule(responses: bool, nth: u32, action: MessageAction) -> MessageRule {
    MessageRule {
        from: Vec::new(),
        to: Vec::new(),
        server_port: 445,
        responses,
        command: ECHO,
        status: responses.then_some(0),
        nth,
        action,
    }
}

async fn echo(conn: &smb2::Connection, timeout: Duration) -> smb2::Result<Duration> {
    let started = Instant::now();
    conn.echo(&opts(timeout)).await?.ok()?;
    Ok(started.elapsed())
}

fn matched_id(report: &MessageReport) -> u64 {
    report
        .matched
        .as_ref()
        .unwrap_or_else(|| panic!("the rule matched nothing: {report:?}"))
        .message_id
}

#[tokio::test]
async fn held_response_arrives_at_the_release_and_later_ones_after_it() {
    let lab = up().await;
    let (c1, mut events) = session(&lab, "c1").await;
    let (c2, _e2) = session(&lab, "c2").await;
    echo(&c1, Duration::from_secs(5)).await.unwrap();
    let armed = lab
        .arm_message(
            "fs1",
            &["c1".into()],
            echo_rule(true, 2, MessageAction::Hold),
        )
        .unwrap();
    // The first ECHO response is not the 2nd: it passes.
    echo(&c1, Duration::from_secs(5)).await.unwrap();
    let held = match c1.echo(&opts(Duration::from_millis(400))).await {
        Err(smb2::Error::Timeout { message_id, .. }) => message_id,
        other => panic!("the held ECHO must go unanswered; got {other:?}"),
    };
    // Held, not cut: everything after it on the connection waits too...
    assert!(echo(&c1, Duration::from_millis(300)).await.is_err());
    // ...and nothing on another connection does.
    echo(&c2, Duration::from_secs(2)).await.unwrap();
    let report = lab.disarm(armed, false).unwrap();
    assert_eq!(matched_id(&report), held);
    assert!(report.held.frames >= 2, "{report:?}");
    assert!(report.released_at.is_some() && !report.discarded);
    // Released in order: the held response first.
    let first = late_response(
        &mut events,
        held,
        "the held ECHO at the release",
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(first, smb2::Command::Echo);
    echo(&c1, Duration::from_secs(2)).await.unwrap();
    println!("{}", report.lines().join("\n"));
    down(lab).await;
}

#[tokio::test]
async fn delayed_response_takes_the_delay_and_the_rule_fires_once() {
    let lab = up().await;
    let (c1, _events) = session(&lab, "c1").await;
    let armed = lab
        .arm_message(
            "fs1",
            &[],
            echo_rule(true, 1, MessageAction::Delay(Duration::from_millis(300))),
        )
        .unwrap();
    let slow = echo(&c1, Duration::from_secs(5)).await.unwrap();
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    let fast = echo(&c1, Duration::from_secs(5)).await.unwrap();
    assert!(fast < Duration::from_millis(250), "{fast:?}");
    let report = lab.disarm(armed, false).unwrap();
    assert!(report.acted() && report.released_at.is_some(), "{report:?}");
    down(lab).await;
}

/// A dropped message is acknowledged by the receiver's TCP (the sender never retransmits)
/// and never heard of; the connection goes on.
#[tokio::test]
async fn dropped_response_and_request_are_acknowledged_never_heard_and_the_connection_lives() {
    let lab = up().await;
    let (c1, _events) = session(&lab, "c1").await;
    // Credits to spare: a dropped response takes its credit grant with it.
    let more = smb2::RequestOptions {
        credit_request: 16,
        ..opts(Duration::from_secs(2))
    };
    c1.echo(&more).await.unwrap().ok().unwrap();
    for responses in [true, false] {
        let before = retransmits(&lab, if responses { "fs1" } else { "c1" });
        let armed = lab
            .arm_message(
                "fs1",
                &["c1".into()],
                echo_rule(responses, 1, MessageAction::Drop),
            )
            .unwrap();
        match c1.echo(&opts(Duration::from_millis(1500))).await {
            Err(smb2::Error::Timeout { .. }) => {}
            other => {
                panic!("a dropped ECHO (responses: {responses}) must go unanswered; got {other:?}")
            }
        }
        echo(&c1, Duration::from_secs(2))
            .await
            .unwrap_or_else(|e| panic!("the connection must live on after a drop: {e}"));
        let report = lab.disarm(armed, false).unwrap();
        assert!(
            report.rewritten >= 1 && report.missed.is_none(),
            "{report:?}"
        );
        let after = retransmits(&lab, if responses { "fs1" } else { "c1" });
        assert_eq!(
            after, before,
            "the sender retransmitted: the receiver's TCP did not take the rewritten segment"
        );
    }
    down(lab).await;
}

#[tokio::test]
async fn reset_right_after_the_response_ends_the_connection_both_ways() {
    let lab = up().await;
    let (c1, mut events) = session(&lab, "c1").await;
    let armed = lab
        .arm_message(
            "fs1",
            &["c1".into()],
            echo_rule(true, 1, MessageAction::Reset),
        )
        .unwrap();
    // The response itself is delivered...
    echo(&c1, Duration::from_secs(2)).await.unwrap();
    // ...and then the connection is gone, for the client...
    let reason = common::disconnected(
        &mut events,
        "the reset after the ECHO",
        Duration::from_secs(2),
    )
    .await;
    assert!(
        reason.contains(&common::os_error(libc::ECONNRESET)),
        "{reason}"
    );
    // ...and for smbd: no socket of fs1 is connected to c1 any more.
    let report = lab.disarm(armed, false).unwrap();
    assert!(report.reset_at.is_some(), "{report:?}");
    let c1_addr = lab.address("c1");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let open = lab::sockdiag::established(&lab.node("fs1").unwrap().ns).unwrap();
        if !open
            .iter()
            .any(|(_, peer, _)| peer.ip() == std::net::IpAddr::V4(c1_addr))
        {
            break;
        }
        assert!(Instant::now() < deadline, "fs1 still has {open:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    down(lab).await;
}

#[tokio::test]
async fn hold_queues_a_path_and_release_delivers_or_drops_it() {
    let lab = up().await;
    let (c1, mut events) = session(&lab, "c1").await;
    let hold = lab
        .hold_on(&["fs1".into()], &["c1".into()], Some(445), None)
        .unwrap();
    let held = match c1.echo(&opts(Duration::from_millis(400))).await {
        Err(smb2::Error::Timeout { message_id, .. }) => message_id,
        other => panic!("an ECHO on a held path must go unanswered; got {other:?}"),
    };
    let stats = lab.release(hold, false).unwrap();
    assert!(stats.frames >= 1, "{stats:?}");
    late_response(
        &mut events,
        held,
        "the held ECHO at the release",
        Duration::from_secs(2),
    )
    .await;
    // Released with `discard`: the frames are gone, TCP retransmits them, the ECHO still gets
    // its answer (a hold is not a cut).
    let hold = lab
        .hold_on(&["fs1".into()], &["c1".into()], Some(445), None)
        .unwrap();
    let held = match c1.echo(&opts(Duration::from_millis(300))).await {
        Err(smb2::Error::Timeout { message_id, .. }) => message_id,
        other => panic!("an ECHO on a held path must go unanswered; got {other:?}"),
    };
    let stats = lab.release(hold, true).unwrap();
    assert!(stats.frames >= 1, "{stats:?}");
    late_response(
        &mut events,
        held,
        "the retransmitted ECHO after a discarding release",
        Duration::from_secs(5),
    )
    .await;
    down(lab).await;
}
