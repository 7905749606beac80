//! SMB Multichannel against a real smbd: the server's interface list, binding a second
//! channel, a bulk transfer over both, and a channel reset mid-transfer.
//!
//! The lab gives each node one link; the server gets a second address on it (added before
//! smbd starts again, because smbd resolves `interfaces` against the host's addresses when it
//! loads them). Two addresses on one link are two channels as far as SMB is concerned: two
//! TCP connections to two server addresses, each bound to the session.

mod common;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::mc::*;
use common::*;
use lab::Lab;
use smb2::*;

/// Per local address of fs1, the bytes its established port-445 sockets received and sent,
/// from the kernel (`ss -tin` in the server's namespace): the server's own count, independent
/// of the client's.
async fn server_bytes(lab: &Lab) -> BTreeMap<IpAddr, (u64, u64)> {
    let mut ss = lab.command("fs1", "ss").unwrap();
    ss.args(["-tinH", "state", "established", "( sport = :445 )"]);
    let (ok, ended, out, err) = run_within(ss, "ss", Duration::from_secs(10)).await;
    assert!(ok, "{ended}: {err}");
    let mut per = BTreeMap::new();
    let mut local: Option<IpAddr> = None;
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(l) = f.iter().find_map(|w| w.strip_suffix(":445")) {
            local = l
                .trim_start_matches("[::ffff:")
                .trim_end_matches(']')
                .parse()
                .ok();
            continue;
        }
        let field = |name: &str| {
            f.iter()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if let Some(a) = local.take() {
            let e = per.entry(a).or_insert((0, 0));
            e.0 += field("bytes_received:");
            e.1 += field("bytes_sent:");
        }
    }
    per
}

/// FSCTL_QUERY_NETWORK_INTERFACE_INFO reports what smb.conf's `interfaces` says; a second
/// channel binds to the second address; a bulk write goes over both connections (by the
/// server kernel's byte counts) and reads back intact.
#[tokio::test]
async fn interfaces_match_smb_conf_and_a_bulk_write_uses_both_channels() {
    let lab = mc_lab("smb2-multichannel-bulk").await;
    let guid = Guid::random();
    let (mc, interfaces) = first_channel(&lab, guid).await;
    let mut got: Vec<(IpAddr, u64, bool, bool)> = interfaces
        .iter()
        .map(|i| (i.address, i.link_speed, i.rss(), i.rdma()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (IpAddr::V4(PRIMARY), 1_000_000_000, true, false),
            (IpAddr::V4(SECOND), 10_000_000_000, false, false),
        ],
        "interface list differs from smb.conf"
    );
    bind_all(&lab, &mc, guid, &interfaces).await;
    let before = server_bytes(&lab).await;

    let file_id = create(&mc, &unique("mc-bulk")).await;
    let chunks = 64;
    bulk_write(&mc, file_id, chunks, 8, |_| {}).await;
    let after = server_bytes(&lab).await;
    eprintln!(
        "server bytes before {before:?} after {after:?}; client {:?}",
        mc.report()
    );
    let received = |a: Ipv4Addr| {
        let a = IpAddr::V4(a);
        after.get(&a).map_or(0, |x| x.0) - before.get(&a).map_or(0, |x| x.0)
    };
    let total = chunks * CHUNK as u64;
    for a in [PRIMARY, SECOND] {
        // Round robin over two channels: about half each; a third allows for skew.
        assert!(
            received(a) > total / 3,
            "server received only {} of {total} bytes on {a}: {after:?}",
            received(a)
        );
    }
    for c in mc.report() {
        assert!(c.up, "{c:?}");
        // The client's count of what it wrote on each connection is the server kernel's.
        assert_eq!(
            Some(c.bytes_sent),
            after.get(&c.server.ip()).map(|x| x.0),
            "{c:?} vs the server's {after:?}"
        );
    }
    verify(&mc, file_id, chunks).await;
    mc.request(
        &wire::close::CloseRequest { flags: 0, file_id },
        &RequestOptions::default(),
    )
    .await
    .unwrap()
    .ok()
    .unwrap();
    lab.down().await.unwrap();
}

/// A reset of the second channel mid-write: the writes it had in flight are replayed on the
/// first channel with SMB2_FLAGS_REPLAY_OPERATION, the transfer completes, and the file reads
/// back intact; then the same for a read over a channel bound again in its place.
#[tokio::test]
async fn a_channel_reset_mid_transfer_is_replayed_on_the_other() {
    let lab = mc_lab("smb2-multichannel-reset").await;
    let guid = Guid::random();
    let (mc, interfaces) = first_channel(&lab, guid).await;
    bind_all(&lab, &mc, guid, &interfaces).await;
    let file_id = create(&mc, &unique("mc-reset")).await;
    let chunks = 96;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let mc = mc.clone();
        tokio::spawn(async move {
            bulk_write(&mc, file_id, chunks, 8, move |n| {
                if n == chunks / 3 {
                    let _ = tx.send(());
                }
            })
            .await
        })
    };
    within(
        "a third of the transfer",
        Duration::from_secs(60),
        rx.recv(),
    )
    .await;
    reset_while_busy(&lab, &mc, 1).await;
    within("the rest of the transfer", Duration::from_secs(120), writer)
        .await
        .expect("writer");
    let report = mc.report();
    eprintln!(
        "after the reset: {report:?}, ChannelSequence {}",
        mc.channel_sequence()
    );
    assert!(report[0].up, "{report:?}");
    assert!(!report[1].up, "the reset channel is still up: {report:?}");
    assert!(
        mc.all()[1].failure().is_some(),
        "no failure recorded: {report:?}"
    );
    assert!(
        report[1].lost > 0,
        "nothing was in flight on the reset channel: {report:?}"
    );
    assert!(report[0].replays >= report[1].lost, "{report:?}");
    assert_eq!(mc.channel_sequence(), 1);
    verify(&mc, file_id, chunks).await;

    // The lost channel replaced (the second address bound again), then reset mid-read: the
    // reads it had in flight are replayed and every MiB still matches.
    // On the offloaded wire a channel's reads can all be answered between seeing them in
    // flight and the reset landing; then nothing was lost and the reset is tried again on a
    // freshly bound channel (at most six times).
    let mut resets = 1;
    loop {
        bind_all(&lab, &mc, guid, &interfaces).await;
        let reader = {
            let mc = mc.clone();
            tokio::spawn(async move { bulk_read(&mc, file_id, chunks, 8).await })
        };
        let index = 1 + resets;
        reset_while_busy(&lab, &mc, index).await;
        resets += 1;
        within("the rest of the read", Duration::from_secs(120), reader)
            .await
            .expect("reader");
        let report = mc.report();
        eprintln!("after reset {resets}: {report:?}");
        assert!(
            report[0].up && report[1..].iter().all(|c| !c.up),
            "{report:?}"
        );
        if report[index].lost > 0 || resets == 7 {
            assert!(report[index].lost > 0, "{report:?}");
            break;
        }
    }
    // A reset that lost nothing went unnoticed by any request: only the write's and this
    // read's losses moved the ChannelSequence on.
    assert_eq!(mc.channel_sequence(), 2);
    lab.down().await.unwrap();
}

/// Once channel `index` has answered a request or two and has one in flight (so there is
/// one to replay), destroys c1's
/// socket to the second address; the kernel sends the server a RST.
async fn reset_while_busy(lab: &Lab, mc: &MultiChannel, index: usize) {
    let ch = mc.all()[index].clone();
    until(
        &format!("a request in flight on channel {index}"),
        Duration::from_secs(30),
        || {
            let flying = ch.stats.in_flight.load(Ordering::Relaxed);
            let sent = ch.stats.requests.load(Ordering::Relaxed);
            // Some answered already (mid-transfer), some in flight now.
            (flying > 0 && sent >= flying as u64 + 2).then_some(())
        },
        || format!("{:?}", mc.report()),
    )
    .await;
    let reset = lab
        .node("c1")
        .unwrap()
        .diag
        .destroy(lab::sockdiag::TcpFilter {
            local_port: None,
            remote: Some(IpAddr::V4(SECOND)),
            remote_port: Some(445),
        })
        .unwrap();
    assert_eq!(reset.len(), 1, "{reset:?}");
}

/// The planted bug: with `server multi channel support = no` the server offers no
/// SMB2_GLOBAL_CAP_MULTI_CHANNEL and refuses to bind, and the client says so rather than
/// carrying on with one channel.
#[tokio::test]
async fn binding_fails_when_the_server_has_multichannel_off() {
    let plan = MC_PLAN.replace(
        r#"server multi channel support: "yes""#,
        r#"server multi channel support: "no""#,
    );
    let lab = mc_lab_with("smb2-multichannel-off", &plan).await;
    let guid = Guid::random();
    let lab_ref = &lab;
    let connect = |a: Ipv4Addr| async move {
        let lab = lab_ref;
        let (conn, _ev) = Connection::new(lab.connect("c1", (a, 445).into()).await.unwrap());
        conn.negotiate(&negotiate_request(guid), &RequestOptions::default())
            .await
            .unwrap()
            .ok()
            .unwrap();
        conn
    };
    let first = connect(PRIMARY).await;
    let caps = first.negotiated().unwrap().capabilities;
    assert_eq!(
        caps & wire::negotiate::capabilities::SMB2_GLOBAL_CAP_MULTI_CHANNEL,
        0
    );
    let session = first
        .session_setup(&SessionSetupOptions::new(creds(&lab)))
        .await
        .unwrap();
    let second = connect(SECOND).await;
    let err = session
        .bind(&second, &creds(&lab), &RequestOptions::default())
        .await
        .expect_err("bound a channel with multichannel off");
    eprintln!("bind with multichannel off: {err}");
    assert!(
        matches!(
            err,
            Error::Status {
                status: NtStatus::STATUS_REQUEST_NOT_ACCEPTED,
                ..
            }
        ),
        "{err}"
    );
    lab.down().await.unwrap();
}

/// smbtorture's multichannel tests against the same server agree with ours.
#[tokio::test]
async fn smbtorture_multichannel_agrees() {
    let lab = mc_lab("smb2-multichannel-torture").await;
    let (user, password) = lab.credentials();
    let mut cmd = lab.command("c1", "smbtorture").unwrap();
    cmd.arg(format!("//{PRIMARY}/share"))
        .arg(format!("-U{user}%{password}"))
        .args([
            "smb2.multichannel.generic.interface_info",
            "smb2.multichannel.generic.num_channels",
        ]);
    let (ok, ended, stdout, stderr) = run_within(cmd, "smbtorture", Duration::from_secs(120)).await;
    assert!(ok, "{ended}:\n{stdout}\n{stderr}");
    for t in ["interface_info", "num_channels"] {
        assert!(
            stdout.lines().any(|l| l.trim() == format!("success: {t}")),
            "no success line for {t}:\n{stdout}"
        );
    }
    lab.down().await.unwrap();
}
