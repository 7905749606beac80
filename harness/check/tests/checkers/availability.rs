use check::{availability, Anomaly, AvailabilityOptions};

use super::h::H;
use super::{assert_invalid, assert_valid};

/// c1 works every 100 ms; a reset at 1 s makes its ops fail until 3.2 s.
fn stalled() -> (H, u64, u64) {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    let mut last_ok = 0;
    for t in (100..1_000).step_by(100) {
        h.at(t);
        last_ok = h.read_ok("c1");
    }
    h.at(1_000);
    h.fault("reset", 0, "start");
    for t in (1_100..3_200).step_by(500) {
        h.at(t);
        let w = h.write("c1", 0, 8, false);
        h.fail(w, "not sent: connection reset");
    }
    h.at(3_200);
    let first_ok = h.read_ok("c1");
    (h, last_ok, first_ok)
}

#[test]
fn stalls_are_reported_per_client_and_per_fault() {
    let (h, _, _) = stalled();
    let c = availability(&h.records, &AvailabilityOptions::default());
    assert_valid(&c);
    let e = &c.result.explanation;
    assert!(e.starts_with("1 clients, longest stall 2.3s (c1)"), "{e}");
    assert!(
        e.contains("c1: stall p50 100ms p90 100ms p99 2.3s max 2.3s"),
        "{e}"
    );
    assert!(
        e.contains("fault 0.0 (reset c): c1 last failure +2.1s, first ok after heal +2.2s"),
        "{e}"
    );
}

#[test]
fn a_stall_longer_than_max_stall_fails() {
    let (h, last_ok, first_ok) = stalled();
    let strict = AvailabilityOptions {
        max_stall_ns: Some(2_000_000_000),
    };
    let c = availability(&h.records, &strict);
    assert_invalid(&c, &[Anomaly::StallExceeded], &[last_ok, first_ok]);
    let lenient = AvailabilityOptions {
        max_stall_ns: Some(3_000_000_000),
    };
    assert_valid(&availability(&h.records, &lenient));
}

#[test]
fn a_client_that_never_recovers_stalls_to_the_end() {
    let (mut h, _, _) = stalled();
    h.open("c2", "g", "2:a", None, None);
    h.at(4_000);
    h.disconnect("c2");
    for t in (5_000..=9_000).step_by(1_000) {
        h.at(t);
        h.read_ok("c1");
    }
    let c = availability(
        &h.records,
        &AvailabilityOptions {
            max_stall_ns: Some(5_000_000_000),
        },
    );
    assert_invalid(&c, &[Anomaly::StallExceeded], &[]);
    assert!(
        c.result.explanation.starts_with("c2 made no progress for"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn nothing_to_check_is_valid() {
    let c = availability(&[], &AvailabilityOptions::default());
    assert_valid(&c);
    assert!(
        c.result.explanation.starts_with("nothing to check"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_client_that_never_succeeds_is_proven_by_its_failures() {
    let mut h = H::new();
    let w = h.write("c1", 0, 8, false);
    let failed = h.fail(w, "STATUS_ACCESS_DENIED");
    h.at(3_000);
    let w2 = h.write("c1", 8, 8, false);
    h.fail(w2, "STATUS_ACCESS_DENIED");
    let c = availability(
        &h.records,
        &AvailabilityOptions {
            max_stall_ns: Some(1_000_000_000),
        },
    );
    assert_eq!(
        c.result.valid,
        check::Validity::False,
        "{}",
        c.result.explanation
    );
    assert!(
        c.result.ops.contains(&failed),
        "the failures are cited: {:?}",
        c.result.ops
    );
}
