//! Connection-task semantics against a scripted in-memory server: MessageId
//! matching, interim STATUS_PENDING, credits, break notifications, timeouts
//! and unknown outcomes. No lab needed.

use std::time::Duration;

use smb2::transport::{read_frame, write_frame};
use smb2::wire::header::HeaderId;
use smb2::wire::oplock_break::{BreakNotification, LeaseBreakNotification};
use smb2::*;
use tokio::io::DuplexStream;

fn response(req: &HeaderRepr, status: NtStatus, credit: u16, async_id: Option<u64>) -> Vec<u8> {
    let h = HeaderRepr {
        credit_charge: req.credit_charge,
        status,
        command: req.command,
        credit,
        flags: HeaderFlags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: req.message_id,
        id: match async_id {
            Some(a) => HeaderId::Async { async_id: a },
            None => HeaderId::Sync {
                reserved: 0,
                tree_id: 0,
            },
        },
        session_id: req.session_id,
        signature: [0; 16],
    };
    let mut b = Vec::new();
    h.emit(&mut b);
    if status == NtStatus::STATUS_SUCCESS {
        b.extend_from_slice(&[4, 0, 0, 0]); // ECHO response
    } else {
        b.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]); // ERROR response
    }
    b
}

/// Everything here is in memory and answers in microseconds: a wait that lasts seconds is a
/// lost wake-up or a request never sent, and must fail saying which, not hang.
const DEADLINE: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {DEADLINE:?}"))
}

async fn next_request(s: &mut DuplexStream) -> HeaderRepr {
    let f = within("the client's next request", read_frame(s))
        .await
        .expect("request frame");
    HeaderRepr::parse_bytes(&f).expect("request header")
}

fn pair() -> (Connection, Events, DuplexStream) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let (c, e) = Connection::from_io(a);
    (c, e, b)
}

#[tokio::test]
async fn matches_responses_out_of_order_by_message_id() {
    let (conn, _ev, mut srv) = pair();
    let server = tokio::spawn(async move {
        let r0 = next_request(&mut srv).await;
        write_frame(&mut srv, &response(&r0, NtStatus::STATUS_SUCCESS, 10, None))
            .await
            .unwrap();
        let r1 = next_request(&mut srv).await;
        let r2 = next_request(&mut srv).await;
        // Answer the later one first.
        write_frame(&mut srv, &response(&r2, NtStatus::STATUS_SUCCESS, 1, None))
            .await
            .unwrap();
        write_frame(&mut srv, &response(&r1, NtStatus(0xC0DE_0001), 1, None))
            .await
            .unwrap();
        srv
    });
    let opts = RequestOptions::default();
    let first = within("an ECHO", conn.echo(&opts)).await.unwrap();
    assert_eq!(first.header.message_id, 0);
    let p1 = conn.submit_echo(&opts).await.unwrap();
    let p2 = conn.submit_echo(&opts).await.unwrap();
    assert_eq!((p1.message_id, p2.message_id), (1, 2));
    let r2 = within("the response", p2.wait()).await.unwrap();
    let r1 = within("the response", p1.wait()).await.unwrap();
    assert_eq!(r2.header.status, NtStatus::STATUS_SUCCESS);
    assert_eq!(r1.header.status.to_string(), "0xC0DE0001");
    let _srv = within("the scripted server", server).await.unwrap();
}

#[tokio::test]
async fn interim_pending_then_final_and_cancel_uses_async_id() {
    let (conn, _ev, mut srv) = pair();
    let server = tokio::spawn(async move {
        let r = next_request(&mut srv).await;
        write_frame(
            &mut srv,
            &response(&r, NtStatus::STATUS_PENDING, 5, Some(0xA5)),
        )
        .await
        .unwrap();
        let cancel = next_request(&mut srv).await;
        assert_eq!(cancel.command, Command::Cancel);
        assert_eq!(cancel.message_id, r.message_id);
        assert_eq!(cancel.async_id(), Some(0xA5));
        assert_eq!(cancel.credit_charge, 0);
        let mut fin = response(&r, NtStatus::STATUS_CANCELLED, 0, Some(0xA5));
        fin[8..12].copy_from_slice(&NtStatus::STATUS_CANCELLED.0.to_le_bytes());
        write_frame(&mut srv, &fin).await.unwrap();
        srv
    });
    let p = conn.submit_echo(&RequestOptions::default()).await.unwrap();
    // The client records the AsyncId but announces nothing: poll, with a deadline.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while conn.async_id_of(p.message_id).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no AsyncId recorded within {DEADLINE:?} of the interim response; credits {}",
            conn.credits()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(conn.credits(), 5, "interim responses grant credits too");
    conn.cancel(p.message_id, 0).await.unwrap();
    let r = within("the response", p.wait()).await.unwrap();
    assert_eq!(r.header.status, NtStatus::STATUS_CANCELLED);
    assert_eq!(r.interim.len(), 1);
    assert_eq!(r.interim[0].status, NtStatus::STATUS_PENDING);
    let _srv = within("the scripted server", server).await.unwrap();
}

#[tokio::test]
async fn dropped_connection_reports_outcome_unknown_then_disconnected() {
    let (conn, mut ev, mut srv) = pair();
    let server = tokio::spawn(async move {
        let r = next_request(&mut srv).await;
        write_frame(&mut srv, &response(&r, NtStatus::STATUS_SUCCESS, 3, None))
            .await
            .unwrap();
        let _ = next_request(&mut srv).await;
        let _ = next_request(&mut srv).await;
        drop(srv); // the peer vanishes with two requests unanswered
    });
    let opts = RequestOptions::default();
    within("an ECHO", conn.echo(&opts)).await.unwrap();
    let a = conn.submit_echo(&opts).await.unwrap();
    let b = conn.submit_echo(&opts).await.unwrap();
    within("the scripted server", server).await.unwrap();
    for p in [a, b] {
        let id = p.message_id;
        match within("the response", p.wait()).await {
            Err(Error::OutcomeUnknown { message_id, .. }) => assert_eq!(message_id, id),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        within("the next event", ev.recv()).await,
        Some(Event::Disconnected { .. })
    ));
    assert!(matches!(
        within("an ECHO", conn.echo(&opts)).await,
        Err(Error::Disconnected(_))
    ));
}

#[tokio::test]
async fn timeout_is_distinct_and_late_response_is_unmatched() {
    let (conn, mut ev, mut srv) = pair();
    let opts = RequestOptions::default().with_timeout(Duration::from_millis(100));
    let p = conn.submit_echo(&opts).await.unwrap();
    let r = next_request(&mut srv).await;
    match within("the response", p.wait()).await {
        Err(Error::Timeout { message_id, .. }) => assert_eq!(message_id, r.message_id),
        other => panic!("{other:?}"),
    }
    write_frame(&mut srv, &response(&r, NtStatus::STATUS_SUCCESS, 1, None))
        .await
        .unwrap();
    match within("the next event", ev.recv()).await {
        Some(Event::Unmatched { header, .. }) => assert_eq!(header.message_id, r.message_id),
        other => panic!("{other:?}"),
    }
    // The late response's credit still counts.
    assert_eq!(conn.credits(), 1);
}

#[tokio::test]
async fn waits_for_credits_and_never_overspends() {
    let (conn, _ev, mut srv) = pair();
    let opts = RequestOptions::default().with_timeout(Duration::from_secs(5));
    let first = conn.submit_echo(&opts).await.unwrap();
    assert_eq!(conn.credits(), 0);
    // No credit left: the second request waits rather than being sent.
    let c2 = conn.clone();
    let o2 = opts.clone();
    let second = tokio::spawn(async move { c2.echo(&o2).await });
    let r0 = next_request(&mut srv).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), read_frame(&mut srv))
            .await
            .is_err(),
        "second request sent without a credit"
    );
    write_frame(&mut srv, &response(&r0, NtStatus::STATUS_SUCCESS, 1, None))
        .await
        .unwrap();
    within("the response", first.wait()).await.unwrap();
    let r1 = next_request(&mut srv).await;
    assert_eq!(r1.message_id, 1);
    write_frame(&mut srv, &response(&r1, NtStatus::STATUS_SUCCESS, 1, None))
        .await
        .unwrap();
    within("the second ECHO", second).await.unwrap().unwrap();
    // The last credit goes to a request the server ignores (Timeout);
    // after that nothing can be sent: NoCredits, and nothing on the wire.
    let short = RequestOptions::default().with_timeout(Duration::from_millis(50));
    assert!(matches!(
        within("an ECHO", conn.echo(&short)).await,
        Err(Error::Timeout { .. })
    ));
    let _ignored = next_request(&mut srv).await;
    assert!(matches!(
        within("an ECHO", conn.echo(&short)).await,
        Err(Error::NoCredits { .. })
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), read_frame(&mut srv))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn break_notifications_arrive_as_events() {
    let (_conn, mut ev, mut srv) = pair();
    let n = LeaseBreakNotification {
        new_epoch: 2,
        flags: 1,
        lease_key: [7; 16],
        current_lease_state: 7,
        new_lease_state: 3,
        ..Default::default()
    };
    let h = HeaderRepr {
        credit_charge: 0,
        status: NtStatus::STATUS_SUCCESS,
        command: Command::OplockBreak,
        credit: 0,
        flags: HeaderFlags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: u64::MAX,
        id: HeaderId::Sync {
            reserved: 0,
            tree_id: 0,
        },
        session_id: 0,
        signature: [0; 16],
    };
    let mut b = Vec::new();
    h.emit(&mut b);
    n.emit_body(&mut b);
    write_frame(&mut srv, &b).await.unwrap();
    // Garbage is reported, not fatal.
    write_frame(&mut srv, b"\xfeSMB junk").await.unwrap();
    match within("the next event", ev.recv()).await {
        Some(Event::Break { notification, .. }) => {
            assert_eq!(notification.unwrap(), BreakNotification::Lease(n))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        within("the next event", ev.recv()).await,
        Some(Event::Garbage { .. })
    ));
}

/// Garbled frames from the server are reported as events; the connection
/// keeps matching real responses afterwards.
#[tokio::test]
async fn garbage_frames_do_not_kill_the_connection() {
    let (conn, mut ev, mut srv) = pair();
    let p = conn.submit_echo(&RequestOptions::default()).await.unwrap();
    let r = next_request(&mut srv).await;
    let good = response(&r, NtStatus::STATUS_SUCCESS, 1, None);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..500usize {
        let mut f = good.clone();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x as usize) % f.len();
        f[at] ^= (x >> 32) as u8 | 1;
        if i % 3 == 0 {
            f.truncate(at);
        }
        // Never the valid MessageId: keep these unmatched.
        if f.len() >= 32 {
            f[24..32].copy_from_slice(&(1000 + i as u64).to_le_bytes());
        }
        write_frame(&mut srv, &f).await.unwrap();
    }
    write_frame(&mut srv, &good).await.unwrap();
    let resp = within("the response", p.wait()).await.unwrap();
    assert_eq!(resp.header.status, NtStatus::STATUS_SUCCESS);
    let mut n = 0;
    while let Ok(e) = ev.try_recv() {
        assert!(!matches!(e, Event::Disconnected { .. }));
        n += 1;
    }
    assert!(n > 0);
}

/// Per-request header fields go on the wire exactly as asked.
#[tokio::test]
async fn request_options_reach_the_wire() {
    let (conn, _ev, mut srv) = pair();
    let opts = RequestOptions {
        channel_sequence: 7,
        credit_request: 99,
        credit_charge: Some(1),
        ..RequestOptions::default().replay()
    };
    let p = conn.submit_echo(&opts).await.unwrap();
    let r = next_request(&mut srv).await;
    assert_eq!(r.channel_sequence(), 7);
    assert!(r.flags.contains(HeaderFlags::REPLAY_OPERATION));
    assert!(!r.flags.contains(HeaderFlags::SERVER_TO_REDIR));
    assert_eq!(r.credit, 99);
    assert_eq!(r.credit_charge, 1);
    assert_eq!(r.command, Command::Echo);
    write_frame(&mut srv, &response(&r, NtStatus::STATUS_SUCCESS, 1, None))
        .await
        .unwrap();
    within("the response", p.wait()).await.unwrap();
}

/// A pending request keeps the connection task alive after every other
/// handle is dropped, so its answer still arrives.
#[tokio::test]
async fn pending_request_outlives_its_connection_handle() {
    let (conn, _ev, mut srv) = pair();
    let p = conn.submit_echo(&RequestOptions::default()).await.unwrap();
    drop(conn);
    let r = next_request(&mut srv).await;
    write_frame(&mut srv, &response(&r, NtStatus::STATUS_SUCCESS, 1, None))
        .await
        .unwrap();
    assert_eq!(
        within("the response", p.wait())
            .await
            .unwrap()
            .header
            .status,
        NtStatus::STATUS_SUCCESS
    );
}

/// A peer that stops reading cannot block a request past its timeout: the
/// half-sent request's outcome is unknown and the connection is closed.
#[tokio::test]
async fn send_timeout_closes_the_connection() {
    let (a, mut srv) = tokio::io::duplex(32); // smaller than one ECHO frame
    let (conn, mut ev) = Connection::from_io(a);
    let opts = RequestOptions::default().with_timeout(Duration::from_millis(100));
    match within("an ECHO", conn.echo(&opts)).await {
        Err(Error::OutcomeUnknown { reason, .. }) => assert!(reason.contains("timed out")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        within("the next event", ev.recv()).await,
        Some(Event::Disconnected { .. })
    ));
    assert!(matches!(
        within("an ECHO", conn.echo(&opts)).await,
        Err(Error::Disconnected(_))
    ));
    // The server sees the partial frame, then the end of the stream.
    assert!(within("the end of the stream", read_frame(&mut srv))
        .await
        .is_err());
}
