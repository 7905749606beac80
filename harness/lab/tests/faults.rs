//! Every fault for real, its effect observed from a client, its heal verified, and nothing of
//! it left behind. Needs root and Samba (scripts/setup).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{late_response, opts, retransmits, smbclient, within};
use lab::wire::{Direction, Impairment};
use lab::{Lab, LabOptions};

const SECOND: Duration = Duration::from_secs(1);
/// An RST crosses the userspace wire in well under a millisecond; 2 s covers a wire thread
/// starved by a loaded machine, and a missing RST still fails long before TCP would time out.
const RST_DEADLINE: Duration = Duration::from_secs(2);

fn plan() -> plan::Plan {
    plan::parse_str(
        "faults.yaml",
        "version: 1\nname: faults\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }, { name: c2 }]\n",
    )
    .unwrap()
}

async fn up(capture: Option<&Path>) -> Lab {
    let options = LabOptions {
        capture_dir: capture.map(Path::to_path_buf),
        ..Default::default()
    };
    Lab::up(&plan(), options).await.expect("lab up")
}

/// A negotiated SMB2 connection from `client` to fs1.
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

/// One ECHO and its round trip. Samba answers ECHO without a session, so this measures the
/// path and smbd itself.
async fn echo(conn: &smb2::Connection, timeout: Duration) -> smb2::Result<Duration> {
    let started = Instant::now();
    conn.echo(&opts(timeout)).await?.ok()?;
    Ok(started.elapsed())
}

/// An ECHO that must go unanswered for `timeout` (no answer, no reset); its MessageId.
async fn stalled_echo(conn: &smb2::Connection, timeout: Duration, why: &str) -> u64 {
    match conn.echo(&opts(timeout)).await {
        Err(smb2::Error::Timeout { message_id, .. }) => message_id,
        other => panic!("an ECHO {why} must time out after {timeout:?}; got {other:?}"),
    }
}

/// Teardown check shared by every test: the wire holds no fault, then nothing remains.
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

fn write_work_file(lab: &Lab, client: &str, name: &str, len: usize) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(lab.node(client).unwrap().dir.join("work").join(name), data).unwrap();
}

#[tokio::test]
async fn client_side_reset_aborts_the_client_socket_only_for_that_peer() {
    let lab = up(None).await;
    let (_c1, mut events1) = session(&lab, "c1").await;
    let (c2, mut events2) = session(&lab, "c2").await;
    let reset = lab
        .reset("fs1", Some("c1"), 445, plan::ResetSide::Client)
        .await
        .unwrap();
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert_eq!(
        reset[0].0.ip(),
        std::net::IpAddr::V4(lab.address("c1")),
        "destroyed on the client: {reset:?}"
    );
    // A local abort: the client's read fails at once, no packet needs to arrive.
    let reason = common::disconnected(
        &mut events1,
        "c1's connection after its socket was destroyed",
        SECOND,
    )
    .await;
    let aborted = common::os_error(libc::ECONNABORTED);
    assert!(
        reason.contains(&aborted),
        "a local abort ({aborted}): {reason}"
    );
    // c2's connection is untouched.
    echo(&c2, Duration::from_secs(2)).await.unwrap();
    // Both sides: whichever end goes first, both connections of c2 end up reset.
    let reset = lab
        .reset("fs1", Some("c2"), 445, plan::ResetSide::Both)
        .await
        .unwrap();
    assert!(!reset.is_empty());
    let reason = common::disconnected(
        &mut events2,
        "c2's connection after the reset",
        RST_DEADLINE,
    )
    .await;
    let reset = common::os_error(libc::ECONNRESET);
    assert!(
        reason.contains(&aborted) || reason.contains(&reset),
        "c2's connection must be aborted or reset, not: {reason}"
    );
    down(lab).await;
}

#[tokio::test]
async fn partition_times_out_echo_and_the_heal_lets_it_through() {
    let lab = up(None).await;
    let (c1, _events) = session(&lab, "c1").await;
    echo(&c1, Duration::from_secs(2)).await.unwrap();
    let cut = lab
        .partition(&["c1".into()], &["fs1".into()], None)
        .unwrap();
    assert!(lab.is_cut("c1", "fs1") && !lab.is_cut("c2", "fs1"));
    stalled_echo(&c1, Duration::from_millis(500), "through a partition").await;
    // c2 is not partitioned: it still gets answers.
    let (other, _other_events) = session(&lab, "c2").await;
    echo(&other, Duration::from_secs(2)).await.unwrap();
    lab.repair(cut).unwrap();
    // Healed: a new connection from c1 negotiates and gets its ECHO answered.
    let (again, _again_events) = session(&lab, "c1").await;
    echo(&again, Duration::from_secs(2)).await.unwrap();
    assert!(lab.reachable("c1", "fs1", Duration::from_secs(2)).await);
    down(lab).await;
}

#[tokio::test]
async fn one_way_partition_only_silences_one_direction() {
    let lab = up(None).await;
    // fs1 no longer hears c1, but c1 still hears fs1.
    let cut = lab.cut(&["c1".into()], &["fs1".into()], None).unwrap();
    assert!(!lab.reachable("c1", "fs1", Duration::from_millis(500)).await);
    let counters = lab.link_counters("c1").unwrap();
    assert!(counters.dropped > 0);
    lab.repair(cut).unwrap();
    assert!(lab.reachable("c1", "fs1", Duration::from_secs(2)).await);
    down(lab).await;
}

/// Median of five ECHO round trips on `conn`.
async fn median_echo(conn: &smb2::Connection) -> (Duration, Vec<Duration>) {
    let mut rtts = Vec::new();
    for i in 0..5 {
        match echo(conn, Duration::from_secs(2)).await {
            Ok(rtt) => rtts.push(rtt),
            Err(e) => panic!("echo {i} of 5: {e}"),
        }
    }
    rtts.sort();
    (rtts[2], rtts)
}

#[tokio::test]
async fn latency_of_100ms_shows_in_echo_round_trip() {
    let lab = up(None).await;
    let (c1, _events) = session(&lab, "c1").await;
    // Baseline on this machine, now: whatever the load adds to a round trip, it adds to the
    // impaired ones too.
    let (base, base_all) = median_echo(&c1).await;
    let impairment = Impairment {
        latency: Duration::from_millis(100),
        ..Default::default()
    };
    lab.impair("c1", Direction::Egress, Some(impairment), 1)
        .unwrap();
    let (median, rtts) = median_echo(&c1).await;
    eprintln!("echo RTT median: baseline {base:?}, with 100 ms {median:?}");
    // The wire holds each frame until its release time, never less: the full 100 ms shows
    // (1 ms for timer rounding). Above: twice the baseline plus 50 ms, for a delay thread and
    // smbd woken late on a loaded machine (at load average 9 on 2 cores: +29 ms over a baseline
    // of 9 ms). Latency applied twice (200 ms) or not at all still fails.
    let ceiling = Duration::from_millis(150) + base * 2;
    assert!(
        median >= Duration::from_millis(99) && median <= ceiling,
        "median echo RTT {median:?} with 100 ms added, baseline {base:?} ({base_all:?}), all {rtts:?}"
    );
    lab.impair("c1", Direction::Egress, None, 0).unwrap();
    // Healed: back to the baseline. Half the removed latency is the margin: any of the 100 ms
    // left on the link fails, scheduler noise does not.
    let (after, after_all) = median_echo(&c1).await;
    eprintln!("echo RTT median after the heal: {after:?}");
    assert!(
        after < base + Duration::from_millis(50),
        "median echo RTT {after:?} after the heal ({after_all:?}), baseline {base:?}"
    );
    down(lab).await;
}

#[tokio::test]
async fn ten_percent_loss_raises_retransmits_and_transfers_complete() {
    let lab = up(None).await;
    write_work_file(&lab, "c1", "big.bin", 4 << 20);
    let before = retransmits(&lab, "c1");
    let lossy = Impairment {
        loss: 0.10,
        ..Default::default()
    };
    lab.impair("c1", Direction::Egress, Some(lossy.clone()), 11)
        .unwrap();
    lab.impair("c1", Direction::Ingress, Some(lossy), 12)
        .unwrap();
    let put = smbclient(&lab, "c1", "put big.bin big.bin").await;
    assert!(put.ok, "{}", put.report);
    let after = retransmits(&lab, "c1");
    assert!(after > before + 10, "retransmits {before} -> {after}");
    let on_disk = std::fs::read(lab.node("fs1").unwrap().dir.join("shares/share/big.bin")).unwrap();
    assert_eq!(
        on_disk,
        std::fs::read(lab.node("c1").unwrap().dir.join("work/big.bin")).unwrap()
    );
    assert!(lab.link_counters("c1").unwrap().dropped > 0);
    lab.impair("c1", Direction::Egress, None, 0).unwrap();
    lab.impair("c1", Direction::Ingress, None, 0).unwrap();
    down(lab).await;
}

/// TCP data segments (seq, payload length) towards `dst_port` in a pcap, in capture order.
fn tcp_segments(pcap: &Path, dst_port: u16) -> Vec<(u32, usize)> {
    let bytes = std::fs::read(pcap).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..(at + 16 + caplen).min(bytes.len())];
        at += 16 + caplen;
        match lab::wire::frame::tcp(frame) {
            Some(t) if t.dst_port == dst_port => {
                let ihl = usize::from(frame[14] & 0x0f) * 4;
                let total = u16::from_be_bytes([frame[16], frame[17]]) as usize;
                let doff = usize::from(frame[14 + ihl + 12] >> 4) * 4;
                let seq = u32::from_be_bytes(frame[14 + ihl + 4..14 + ihl + 8].try_into().unwrap());
                if total > ihl + doff {
                    out.push((seq, total - ihl - doff));
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn duplication_and_reordering_are_visible_in_the_link_capture() {
    let dir = tempfile_dir("dup");
    let lab = up(Some(&dir)).await;
    write_work_file(&lab, "c1", "f.bin", 1 << 20);
    lab.impair(
        "c1",
        Direction::Egress,
        Some(Impairment {
            duplicate: 0.2,
            reorder: 0.2,
            reorder_gap: Duration::from_millis(3),
            ..Default::default()
        }),
        5,
    )
    .unwrap();
    let put = smbclient(&lab, "c1", "put f.bin f.bin").await;
    assert!(put.ok, "{}", put.report);
    lab.impair("c1", Direction::Egress, None, 0).unwrap();
    let counters = lab.link_counters("c1").unwrap();
    down(lab).await; // flushes the captures
                     // What fs1 received from c1: the same segment twice, and segments out of order.
    let segs = tcp_segments(&dir.join("fs1.pcap"), 445);
    assert!(counters.duplicated > 0, "{counters:?}");
    let duplicates = segs.windows(2).filter(|w| w[0] == w[1]).count()
        + segs
            .iter()
            .enumerate()
            .filter(|(i, s)| segs[..*i].contains(s))
            .count();
    assert!(
        duplicates > 0,
        "no duplicate segment in the capture of {} segments",
        segs.len()
    );
    let reordered = segs
        .windows(2)
        .filter(|w| w[1].0 < w[0].0 && w[0].0 - w[1].0 < 1 << 30)
        .count();
    assert!(
        reordered > 0,
        "no reordered segment in the capture of {} segments",
        segs.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smbchaos-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// fs1's link counters read as closely together with the clock as this machine allows: the
/// tightest of a few tries, so a preemption between the two reads cannot skew a rate.
fn delivered_to_fs1(lab: &Lab) -> (Instant, u64) {
    let mut best: Option<(Duration, Instant, u64)> = None;
    for _ in 0..5 {
        let t0 = Instant::now();
        let bytes = lab.link_counters("fs1").unwrap().ingress_bytes;
        let gap = t0.elapsed();
        if best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, t0 + gap / 2, bytes));
        }
    }
    let (_, at, bytes) = best.expect("five samples");
    (at, bytes)
}

/// Bit rate at which fs1 received c1's `put` of `file` (8 MiB), read off fs1's link counters
/// between 1 MiB and 7 MiB delivered, so smbclient's start-up and session setup do not count.
/// Fails within a minute, with smbclient's own words, when those bytes never arrive.
async fn put_rate(lab: &Lab, file: &str) -> f64 {
    const FROM: u64 = 1 << 20;
    const TO: u64 = 7 << 20;
    let before = lab.link_counters("fs1").unwrap().ingress_bytes;
    let command = format!("put {file} {file}");
    let put = smbclient(lab, "c1", &command);
    tokio::pin!(put);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut first, mut prev) = (None, None);
    let mut ended: Option<common::Ran> = None;
    let last = loop {
        let (at, total) = delivered_to_fs1(lab);
        let got = total - before;
        if got >= TO {
            break (at, got);
        }
        if got >= FROM && first.is_none() {
            first = Some((at, got));
        }
        prev = Some((at, got));
        if let Some(ran) = &ended {
            panic!("7 MiB never reached fs1 ({got} bytes did): {}", ran.report);
        }
        assert!(
            Instant::now() < deadline,
            "7 MiB never reached fs1 within 60 s: {got} bytes did, smbclient still running"
        );
        tokio::select! {
            ran = &mut put, if ended.is_none() => ended = Some(ran),
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
    };
    // Samples too sparse for the window (a fast link on a loaded machine): start from the
    // last one before the end, which only lengthens the window.
    let (t1, b1) = first.or(prev).expect("a sample before the last");
    let (t2, b2) = last;
    let ran = match ended {
        Some(ran) => ran,
        None => put.await,
    };
    assert!(ran.ok, "{}", ran.report);
    (b2 - b1) as f64 * 8.0 / (t2 - t1).as_secs_f64()
}

#[tokio::test]
async fn bandwidth_cap_holds_within_ten_percent() {
    let lab = up(None).await;
    write_work_file(&lab, "c1", "free.bin", 8 << 20);
    write_work_file(&lab, "c1", "cap.bin", 8 << 20);
    let rate_bps = 40_000_000u64;
    // Baseline, uncapped, on this machine now: the cap can only be judged if the lab can go
    // well past it, so a too-low rate below means the shaper, not the machine.
    let free = put_rate(&lab, "free.bin").await;
    assert!(
        free > 2.0 * rate_bps as f64,
        "uncapped, the lab carries only {free:.0} bit/s: too slow to judge a {rate_bps} bit/s cap"
    );
    lab.impair(
        "c1",
        Direction::Egress,
        Some(Impairment {
            rate_bps,
            ..Default::default()
        }),
        3,
    )
    .unwrap();
    let measured = put_rate(&lab, "cap.bin").await;
    let ratio = measured / rate_bps as f64;
    eprintln!("cap {rate_bps} bit/s: measured {measured:.0} ({ratio:.3}), uncapped {free:.0}");
    // At most 10 % over: the shaper spaces frames exactly at the cap, and load only delays a
    // release, so the excess is reading error. 6 MiB at 40 Mbit/s take 1.26 s: a delay thread
    // woken 30 ms late (releasing a burst) or a counter read 2 ms off moves the figure by
    // under 3 %. Below, 20 %: a wire or a sender starved of CPU leaves the link idle at times
    // (frames wait unread in the TAP queue): 0.896 once at load average 9 on 2 cores, 0.99 to
    // 1.0 in 16 other runs at load averages 5 to 9. A cap not applied (the
    // baseline's gigabits) or counted in bytes instead of bits (8x off) still fails.
    assert!(
        (0.8..=1.1).contains(&ratio),
        "measured {measured:.0} bit/s: {ratio:.3} of the cap (uncapped: {free:.0} bit/s)"
    );
    lab.impair("c1", Direction::Egress, None, 0).unwrap();
    down(lab).await;
}

#[tokio::test]
async fn pause_stalls_an_echo_and_resume_lets_it_finish() {
    let lab = up(None).await;
    let (c1, mut events) = session(&lab, "c1").await;
    lab.node("fs1").unwrap().freezer.freeze().unwrap();
    let stalled = stalled_echo(&c1, Duration::from_millis(300), "to a frozen smbd").await;
    lab.node("fs1").unwrap().freezer.thaw().unwrap();
    // The ECHO sent while frozen is answered now, on the same connection: its bytes already
    // sit in smbd's socket, so only smbd's wake-up is awaited.
    let answered = late_response(
        &mut events,
        stalled,
        "the answer to the ECHO sent while smbd was frozen",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(answered, smb2::Command::Echo);
    down(lab).await;
}

#[tokio::test]
async fn blackhole_drops_silently_no_reset() {
    let lab = up(None).await;
    let (c1, mut events) = session(&lab, "c1").await;
    let cut = lab
        .partition(&["c1".into()], &["fs1".into(), "c2".into()], Some(445))
        .unwrap();
    let sent = Instant::now();
    // Silence, not a reset: a reset would end the connection and fail the ECHO at once.
    let stalled = stalled_echo(&c1, Duration::from_millis(500), "into a blackhole").await;
    lab.repair(cut).unwrap();
    // The retransmitted ECHO gets through after the heal. TCP's backoff doubles the gap
    // between retransmissions, so the next one leaves at most about as long after the heal as
    // the heal came after the send; 2 s more for RTO rounding and a loaded machine.
    let blocked_for = sent.elapsed();
    let answered = late_response(
        &mut events,
        stalled,
        &format!("the ECHO's answer after a {blocked_for:?} blackhole was healed"),
        blocked_for * 2 + Duration::from_secs(2),
    )
    .await;
    assert_eq!(answered, smb2::Command::Echo);
    down(lab).await;
}

/// The one's-complement sum of `data` folded to 16 bits (RFC 1071), plus `initial`.
fn ones_sum(data: &[u8], initial: u32) -> u32 {
    let mut acc = initial;
    for pair in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// Every whole IPv4/TCP frame of a pcap: (capture time in µs since the epoch, frame length,
/// both checksums right, destination port).
fn checked_tcp_frames(pcap: &Path) -> Vec<(u64, usize, bool, u16)> {
    let bytes = std::fs::read(pcap).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let word = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        let (secs, micros, caplen, len) = (word(0), word(4), word(8) as usize, word(12) as usize);
        let frame = &bytes[at + 16..(at + 16 + caplen).min(bytes.len())];
        at += 16 + caplen;
        let Some(t) = lab::wire::frame::tcp(frame).filter(|_| caplen == len) else {
            continue;
        };
        let ihl = usize::from(frame[14] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let ip = &frame[14..14 + ihl];
        let tcp = &frame[14 + ihl..14 + total];
        let pseudo = ones_sum(&frame[26..34], 6 + tcp.len() as u32);
        let ok = ones_sum(ip, 0) == 0xffff && ones_sum(tcp, pseudo) == 0xffff;
        out.push((
            u64::from(secs) * 1_000_000 + u64::from(micros),
            len,
            ok,
            t.dst_port,
        ));
    }
    out
}

#[tokio::test]
async fn bulk_data_crosses_in_offload_segments_split_only_under_impairment_checksums_right() {
    let dir = tempfile_dir("gso");
    let plan = plan::parse_str(
        "gso.yaml",
        "version: 1\nname: gso\ntopology:\n  servers: [{ name: fs1 }]\n  clients: [{ name: c1 }]\n  capture_snaplen: 70000\n",
    )
    .unwrap();
    let options = LabOptions {
        capture_dir: Some(dir.clone()),
        ..Default::default()
    };
    let lab = Lab::up(&plan, options).await.expect("lab up");
    write_work_file(&lab, "c1", "f.bin", 4 << 20);
    let put = smbclient(&lab, "c1", "put f.bin whole.bin").await;
    assert!(put.ok, "{}", put.report);
    let impaired_from = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    // An impairment that changes no frame's fate but needs frames: the path splits.
    lab.impair(
        "c1",
        Direction::Egress,
        Some(Impairment {
            latency: Duration::from_micros(1),
            ..Default::default()
        }),
        1,
    )
    .unwrap();
    let put = smbclient(&lab, "c1", "put f.bin split.bin").await;
    lab.impair("c1", Direction::Egress, None, 0).unwrap();
    assert!(put.ok, "{}", put.report);
    let counters = lab.link_counters("c1").unwrap();
    down(lab).await; // flushes the captures
                     // What fs1 received: MTU 9000 makes frames of at most 9014 bytes on a real link.
    let frames = checked_tcp_frames(&dir.join("fs1.pcap"));
    let bad = frames.iter().filter(|f| !f.2).count();
    assert_eq!(
        bad,
        0,
        "{bad} of {} captured frames with a wrong checksum",
        frames.len()
    );
    let to_smbd = frames.iter().filter(|f| f.3 == 445);
    let before = to_smbd.clone().filter(|f| f.0 < impaired_from);
    let after: Vec<_> = to_smbd.filter(|f| f.0 >= impaired_from).collect();
    assert!(
        before.clone().any(|f| f.1 > 9014),
        "no offload segment crossed the clean wire: largest frame {:?}",
        before.map(|f| f.1).max()
    );
    let largest = after.iter().map(|f| f.1).max().unwrap_or(0);
    assert!(
        (1..=9014).contains(&largest) && after.len() > 400,
        "impaired path: {} frames, largest {largest} bytes",
        after.len()
    );
    // Counted as MTU frames either way: 8 MiB of payload is at least ~940 frames of 8948.
    assert!(counters.egress_frames > 900, "{counters:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
