//! Durable handles, leases, breaks and replay against a real Samba 4.17.
//! Expected statuses come from smbtorture's durable_v2_open.c, lease.c and
//! replay.c, and DESIGN.md's "SMB facts".

mod common;
use std::time::{Duration, Instant};

use common::*;
use smb2::wire::create::{action, disposition, oplock_level};
use smb2::wire::create_contexts::*;
use smb2::wire::oplock_break::BreakNotification;
use smb2::*;

const RWH: u32 = SMB2_LEASE_READ_CACHING | SMB2_LEASE_WRITE_CACHING | SMB2_LEASE_HANDLE_CACHING;
const RH: u32 = SMB2_LEASE_READ_CACHING | SMB2_LEASE_HANDLE_CACHING;

fn lease_v2(key: [u8; 16], state: u32) -> CreateContext {
    CreateContext::Lease(Lease {
        lease_key: key,
        lease_state: state,
        lease_flags: 0,
        lease_duration: 0,
        v2: Some(LeaseV2 {
            parent_lease_key: [0; 16],
            epoch: 0,
        }),
    })
}

fn durable_lease_open(name: &str, key: [u8; 16], create_guid: Guid) -> CreateRequest {
    CreateRequest {
        requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
        ..CreateRequest::new(name)
    }
    .context(CreateContext::DurableHandleRequestV2 {
        timeout: 0,
        flags: 0,
        create_guid,
    })
    .context(lease_v2(key, RWH))
}

/// The next break notification, or a panic naming what came instead. Samba sends
/// the break as soon as the conflicting open arrives; 10 s is for a loaded machine.
async fn next_break(events: &mut Events) -> BreakNotification {
    let wait = Duration::from_secs(10);
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(Event::Break { notification, .. })) => {
                return notification.unwrap_or_else(|e| panic!("undecodable break: {e:?}"))
            }
            Ok(Some(e)) => seen.push(e),
            Ok(None) => panic!("no break: the connection's events ended after {seen:?}"),
            Err(_) => panic!("no break within {wait:?}; other events: {seen:?}"),
        }
    }
}

/// DH2Q + lease → server-side TCP reset → new connection, same ClientGuid,
/// session setup with PreviousSessionId → DH2C.
#[tokio::test]
async fn durable_v2_survives_server_reset_and_reconnects_with_dh2c() {
    let lab = lab_up("smb2-durable").await;
    let client_guid = Guid::random();
    let (conn, mut events, session, tree) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], client_guid, "share").await;
    let name = unique("durable");
    let key = lease_key();
    let create_guid = Guid::random();
    let open = tree
        .create(&durable_lease_open(&name, key, create_guid))
        .await
        .unwrap();
    assert_eq!(open.status(), NtStatus::STATUS_SUCCESS);
    let open = open.ok().unwrap();
    assert_eq!(open.create_action, action::FILE_CREATED);
    assert_eq!(open.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_LEASE);
    assert_eq!(open.lease().unwrap().lease_state, RWH);
    // Requested timeout 0 → the server's default, 60 s.
    assert_eq!(open.durable_v2(), Some((60_000, 0)));
    tree.write(open.file_id, 0, b"durable bytes".to_vec(), true)
        .await
        .unwrap()
        .ok()
        .unwrap();

    // A request in flight when the reset lands must be reported as
    // outcome unknown: freeze smbd so it cannot answer, send, and reset once
    // the request sits unread in smbd's socket (so the server has it).
    lab.server("fs1").unwrap().lock().await.pause().unwrap();
    let (unread_before, _) = unread_on_445(&lab, "fs1");
    let in_flight = tree
        .submit(
            &smb2::wire::read::ReadRequest {
                length: 13,
                file_id: open.file_id,
                ..Default::default()
            },
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (unread, seen) = unread_on_445(&lab, "fs1");
        if unread > unread_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the READ never reached fs1's socket within 5 s; its sockets on 445:\n{seen}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resets = lab.reset_tcp("fs1", 445).await.unwrap();
    assert!(!resets.is_empty(), "no socket reset");
    let err = within(
        "the in-flight READ's end",
        Duration::from_secs(5),
        in_flight.wait(),
    )
    .await
    .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    lab.server("fs1").unwrap().lock().await.resume().unwrap();
    // The event stream reports the end; later requests are not sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(Event::Disconnected { .. })) => break,
            Ok(Some(e)) => seen.push(e),
            other => panic!("no Disconnected event within 5 s: {other:?}, after {seen:?}"),
        }
    }
    assert!(matches!(
        tree.flush(open.file_id).await,
        Err(Error::Disconnected(_))
    ));
    let old_session_id = session.id();
    drop((tree, session, conn));

    // New connection from the same client, same ClientGuid.
    let (conn2, _ev2) = connect(&lab, "c1").await;
    conn2
        .negotiate(
            &default_negotiate_request(&[Dialect::SMB3_1_1], client_guid, false),
            &RequestOptions::default(),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let mut o = SessionSetupOptions::new(creds(&lab));
    o.previous_session_id = old_session_id;
    let s2 = conn2.session_setup(&o).await.unwrap();
    assert_ne!(s2.id(), old_session_id);
    let tree2 = s2.tree_connect(&unc(&lab, "share")).await.unwrap();

    // Another CreateGuid: STATUS_OBJECT_NAME_NOT_FOUND.
    let wrong = tree2
        .create(
            &CreateRequest::durable_v2_reconnect(name.clone(), open.file_id, Guid::random())
                .context(lease_v2(key, 0)),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);

    // The original CreateGuid: success, same FileId, lease state kept.
    let again = tree2
        .create(&CreateRequest {
            requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
            ..CreateRequest::durable_v2_reconnect(name.clone(), open.file_id, create_guid)
                .context(lease_v2(key, 0))
        })
        .await
        .unwrap();
    assert_eq!(again.status(), NtStatus::STATUS_SUCCESS);
    let again = again.ok().unwrap();
    // Same open: Samba keeps the persistent half of the FileId and hands
    // out a new volatile half on reconnect (smbXsrv_open_recreate).
    assert_eq!(again.file_id.persistent, open.file_id.persistent);
    assert_ne!(again.file_id.volatile, open.file_id.volatile);
    assert_eq!(again.create_action, action::FILE_OPENED);
    assert_eq!(again.lease().unwrap().lease_state, RWH);
    assert_eq!(again.durable_v2(), None, "no DH2Q response on reconnect");
    let r = tree2
        .read(again.file_id, 0, 100)
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(r.data, b"durable bytes");
    tree2.close(again.file_id).await.unwrap().ok().unwrap();
    lab.down().await.unwrap();
}

/// smbtorture durable-v2-open.reopen1: a DH2C while the original open is
/// still alive fails with STATUS_OBJECT_NAME_NOT_FOUND — on the same
/// connection and from another one with the same ClientGuid.
#[tokio::test]
async fn dh2c_while_old_connection_is_up_fails() {
    let lab = lab_up("smb2-dh2c-live").await;
    let client_guid = Guid::random();
    let (_c, _e, _s, tree) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], client_guid, "share").await;
    let name = unique("reopen1");
    let key = lease_key();
    let create_guid = Guid::random();
    let open = tree
        .create(&durable_lease_open(&name, key, create_guid))
        .await
        .unwrap()
        .ok()
        .unwrap();
    let same_conn = tree
        .create(
            &CreateRequest::durable_v2_reconnect("", open.file_id, create_guid)
                .context(lease_v2(key, 0)),
        )
        .await
        .unwrap();
    assert_eq!(same_conn.status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);

    let (_c2, _e2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_1_1], client_guid, "share").await;
    let other_conn = tree2
        .create(
            &CreateRequest::durable_v2_reconnect(name.clone(), open.file_id, create_guid)
                .context(lease_v2(key, 0)),
        )
        .await
        .unwrap();
    assert_eq!(other_conn.status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // The original handle is untouched.
    tree.write(open.file_id, 0, b"still mine".to_vec(), false)
        .await
        .unwrap()
        .ok()
        .unwrap();
    tree.close(open.file_id).await.unwrap().ok().unwrap();
    lab.down().await.unwrap();
}

/// A second client's conflicting open makes the server break the first
/// client's lease; the second open waits (interim STATUS_PENDING) until the
/// ack, then completes.
#[tokio::test]
async fn lease_break_ack_lets_the_second_open_complete() {
    let lab = lab_up("smb2-lease-break").await;
    let (_c1, mut ev1, _s1, tree1) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let (_c2, _ev2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let name = unique("lease");
    let key = lease_key();
    let first = tree1
        .create(
            &CreateRequest {
                requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
                ..CreateRequest::new(name.clone())
            }
            .context(lease_v2(key, RWH)),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert_eq!(first.lease().unwrap().lease_state, RWH);

    let second = tree2
        .submit(
            &CreateRequest::new(name.clone()),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    let brk = next_break(&mut ev1).await;
    let BreakNotification::Lease(n) = brk else {
        panic!("oplock break for a lease: {brk:?}")
    };
    assert_eq!(n.lease_key, key);
    assert_eq!(n.current_lease_state, RWH);
    assert_eq!(n.new_lease_state, RH);
    assert!(n.ack_required());
    // Hold the ack until the server has gone async: its interim response arrived.
    interim(&second, "the second open while the break is outstanding").await;
    let ack = tree1.lease_break_ack(key, RH).await.unwrap();
    assert_eq!(ack.status(), NtStatus::STATUS_SUCCESS);
    assert_eq!(ack.body().unwrap().0.lease_state, RH);
    let second = within(
        "the second open after the ack",
        Duration::from_secs(10),
        second.wait(),
    )
    .await
    .unwrap();
    assert_eq!(second.status(), NtStatus::STATUS_SUCCESS);
    assert!(
        !second.interim.is_empty(),
        "the create went async while the break was outstanding"
    );
    assert_eq!(
        second.interim[0].status,
        NtStatus::STATUS_PENDING,
        "interim response"
    );
    assert!(second.interim[0].async_id().is_some());
    lab.down().await.unwrap();
}

/// Without an ack, the second open completes only after the break timeout
/// (35 s in Samba), and a late ack gets STATUS_UNSUCCESSFUL.
#[tokio::test]
async fn lease_break_without_ack_waits_for_the_break_timeout() {
    let lab = lab_up("smb2-lease-timeout").await;
    let (_c1, mut ev1, _s1, tree1) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let (_c2, _ev2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let name = unique("timeout");
    let key = lease_key();
    tree1
        .create(
            &CreateRequest {
                requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
                ..CreateRequest::new(name.clone())
            }
            .context(lease_v2(key, RWH)),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let started = Instant::now();
    let opts = RequestOptions::default().with_timeout(Duration::from_secs(90));
    let second = tree2
        .submit(&CreateRequest::new(name.clone()), &opts)
        .await
        .unwrap();
    next_break(&mut ev1).await;
    let second = second.wait().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(second.status(), NtStatus::STATUS_SUCCESS);
    // Samba's break timeout is 35 s and load only delays a timer: the 30 s
    // floor holds on any machine (5 s for how Samba rounds its timers). 10 s
    // above absorbs a loaded machine; an open that did not wait for the
    // holder, or waited out a second timeout, still fails.
    assert!(
        waited >= Duration::from_secs(30) && waited <= Duration::from_secs(45),
        "second open completed after {waited:?}"
    );
    let late = tree1.lease_break_ack(key, RH).await.unwrap();
    assert_eq!(late.status(), NtStatus::STATUS_UNSUCCESSFUL);
    lab.down().await.unwrap();
}

/// A DH2Q create replayed with REPLAY_OPERATION and the same CreateGuid
/// returns the original open, not a second one (smbtorture
/// replay-dhv2-oplock1, lease flavour).
#[tokio::test]
async fn replayed_create_returns_the_original_open() {
    let lab = lab_up("smb2-replay").await;
    let (_c, _e, _s, tree) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let name = unique("replay");
    let key = lease_key();
    let create_guid = Guid::random();
    let req = CreateRequest {
        share_access: 0,
        create_disposition: disposition::FILE_CREATE,
        ..durable_lease_open(&name, key, create_guid)
    };
    let first = tree.create(&req).await.unwrap().ok().unwrap();
    assert_eq!(first.create_action, action::FILE_CREATED);
    let replay = tree
        .request(&req, &RequestOptions::default().replay())
        .await
        .unwrap();
    assert!(replay.header.flags.contains(HeaderFlags::SERVER_TO_REDIR));
    assert_eq!(replay.status(), NtStatus::STATUS_SUCCESS);
    let replay = replay.ok().unwrap();
    assert_eq!(replay.file_id, first.file_id);
    assert_eq!(replay.create_action, first.create_action);
    assert_eq!(replay.lease().unwrap().lease_state, RWH);
    // Exactly one open exists: one close succeeds, the second finds it closed,
    // and an exclusive open from another client then succeeds.
    tree.close(first.file_id).await.unwrap().ok().unwrap();
    let twice = tree.close(first.file_id).await.unwrap();
    assert_eq!(twice.status(), NtStatus::STATUS_FILE_CLOSED);
    let (_c2, _e2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let excl = tree2
        .create(&CreateRequest {
            share_access: 0,
            ..CreateRequest::new(name.clone())
        })
        .await
        .unwrap();
    assert_eq!(excl.status(), NtStatus::STATUS_SUCCESS);
    // Without REPLAY_OPERATION the same create is a new request: the file
    // now exists, FILE_CREATE says so.
    let fresh = tree.create(&req).await.unwrap();
    assert_eq!(fresh.status(), NtStatus::STATUS_OBJECT_NAME_COLLISION);
    lab.down().await.unwrap();
}

/// CANCEL of a create that waits for a lease break: the create ends with
/// STATUS_CANCELLED (its interim response gave the AsyncId the cancel used).
#[tokio::test]
async fn cancel_of_a_create_waiting_for_a_break() {
    let lab = lab_up("smb2-cancel").await;
    let (_c1, mut ev1, _s1, tree1) =
        open_tree(&lab, "c1", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let (_c2, _ev2, _s2, tree2) =
        open_tree(&lab, "c2", &[Dialect::SMB3_1_1], Guid::random(), "share").await;
    let name = unique("cancel");
    let key = lease_key();
    tree1
        .create(
            &CreateRequest {
                requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_LEASE,
                ..CreateRequest::new(name.clone())
            }
            .context(lease_v2(key, RWH)),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    let second = tree2
        .submit(
            &CreateRequest::new(name.clone()),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    next_break(&mut ev1).await;
    interim(&second, "the create waiting for the break").await;
    second.cancel().await.unwrap();
    let r = within(
        "the cancelled create's final response",
        Duration::from_secs(10),
        second.wait(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), NtStatus::STATUS_CANCELLED);
    assert_eq!(r.header.async_id(), r.interim[0].async_id());
    lab.down().await.unwrap();
}

/// Durable v1: DHnQ with a batch oplock, server-side reset, DHnC on a new
/// connection reclaims it.
#[tokio::test]
async fn durable_v1_reconnects_with_dhnc_after_reset() {
    let lab = lab_up("smb2-durable-v1").await;
    let client_guid = Guid::random();
    let (_c, _e, _s, tree) = open_tree(&lab, "c1", &[Dialect::SMB2_1], client_guid, "share").await;
    let name = unique("dhnq");
    let open = tree
        .create(
            &CreateRequest {
                requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_BATCH,
                ..CreateRequest::new(name.clone())
            }
            .context(CreateContext::DurableHandleRequest),
        )
        .await
        .unwrap()
        .ok()
        .unwrap();
    assert!(open.durable_v1());
    assert_eq!(open.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_BATCH);
    lab.reset_tcp("fs1", 445).await.unwrap();
    let (_c2, _e2, _s2, tree2) =
        open_tree(&lab, "c1", &[Dialect::SMB2_1], client_guid, "share").await;
    let again = tree2
        .create(
            &CreateRequest {
                requested_oplock_level: oplock_level::SMB2_OPLOCK_LEVEL_BATCH,
                ..CreateRequest::new(name.clone())
            }
            .context(CreateContext::DurableHandleReconnect {
                file_id: open.file_id,
            }),
        )
        .await
        .unwrap();
    assert_eq!(again.status(), NtStatus::STATUS_SUCCESS);
    let again = again.ok().unwrap();
    assert_eq!(again.file_id.persistent, open.file_id.persistent);
    assert_eq!(again.oplock_level, oplock_level::SMB2_OPLOCK_LEVEL_BATCH);
    tree2.close(again.file_id).await.unwrap().ok().unwrap();
    lab.down().await.unwrap();
}
