use check::{handle_resume, Anomaly, ConflictPolicy, ResumeOptions};
use serde_json::json;

use super::h::{lease, H};
use super::{assert_invalid, assert_valid};

fn options() -> ResumeOptions {
    ResumeOptions::default()
}

/// c1 opens f with a durable v2 handle (30 s) and an RWH lease, works, and its connection
/// drops at 1 s. Returns the history and the open's index.
fn disconnected() -> (H, u64) {
    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(30_000), Some(lease("k1", "RWH", 1)));
    h.at(500);
    h.read_ok("c1");
    h.at(1_000);
    h.disconnect("c1");
    (h, open)
}

#[test]
fn a_reclaim_within_the_timeout_keeping_file_id_and_lease_passes() {
    let (mut h, open) = disconnected();
    h.at(3_000);
    let r = h.reconnect("c1", open);
    // The volatile half may change (Samba allocates a new one); the persistent half may not.
    h.reconnect_ok(r, "1:b", Some(lease("k1", "RWH", 1)));
    let c = handle_resume(&h.records, &options());
    assert_valid(&c);
    assert!(
        c.result
            .explanation
            .contains("1 durable handles, 1 reconnects (1 judged)"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_reclaim_after_expiry_that_succeeded_fails() {
    let (mut h, open) = disconnected();
    h.at(40_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
    assert_invalid(
        &handle_resume(&h.records, &options()),
        &[Anomaly::ReclaimedAfterExpiry],
        &[r, open],
    );
}

#[test]
fn a_reclaim_after_expiry_fails_with_the_expected_status() {
    let (mut h, open) = disconnected();
    h.at(40_000);
    let r = h.reconnect("c1", open);
    h.fail(r, "STATUS_OBJECT_NAME_NOT_FOUND");
    assert_valid(&handle_resume(&h.records, &options()));

    let (mut h, open) = disconnected();
    h.at(40_000);
    let r = h.reconnect("c1", open);
    h.fail(r, "STATUS_ACCESS_DENIED");
    assert_invalid(
        &handle_resume(&h.records, &options()),
        &[Anomaly::WrongExpiryStatus],
        &[r],
    );
}

#[test]
fn a_reclaim_within_the_timeout_that_failed_fails() {
    let (mut h, open) = disconnected();
    h.at(5_000);
    let r = h.reconnect("c1", open);
    h.fail(r, "STATUS_OBJECT_NAME_NOT_FOUND");
    let c = handle_resume(&h.records, &options());
    assert_invalid(&c, &[Anomaly::ReclaimRefused], &[r, open]);
}

#[test]
fn a_refused_reclaim_followed_by_a_successful_one_passes() {
    let (mut h, open) = disconnected();
    h.at(2_000);
    let r = h.reconnect("c1", open);
    h.fail(r, "STATUS_FILE_NOT_AVAILABLE");
    h.at(3_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
    assert_valid(&handle_resume(&h.records, &options()));
}

#[test]
fn reconnects_within_the_clock_slack_of_the_expiry_are_not_judged() {
    // Server answered a read at 500 ms, client saw the loss at 1 s: expiry between 30.5 and 31 s.
    for (at, ok) in [(29_900, false), (31_900, true)] {
        let (mut h, open) = disconnected();
        h.at(at);
        let r = h.reconnect("c1", open);
        if ok {
            h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
        } else {
            h.fail(r, "STATUS_OBJECT_NAME_NOT_FOUND");
        }
        let c = handle_resume(&h.records, &options());
        assert_valid(&c);
        if !ok {
            assert!(
                c.result.explanation.contains("(0 judged)"),
                "{}",
                c.result.explanation
            );
        }
    }
}

#[test]
fn after_a_silent_fault_a_late_reclaim_is_not_judged() {
    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(30_000), Some(lease("k1", "RWH", 1)));
    h.at(500);
    h.read_ok("c1");
    h.fault("blackhole", 0, "start");
    h.at(6_000);
    h.disconnect("c1");
    h.at(60_000);
    h.fault("blackhole", 0, "heal");
    // The server learned of the loss only now (PreviousSessionId): the reclaim is fine.
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
    assert_valid(&handle_resume(&h.records, &options()));
}

#[test]
fn a_server_side_reset_during_a_silent_fault_starts_the_server_clock() {
    // c1 is blackholed, then fs1 destroys its end of c1's connection: the server knows at
    // once although c1 hears nothing. Its handle (30 s) expires 30 s after the reset.
    for (side, judged) in [("server", true), ("client", false)] {
        let mut h = H::new();
        let open = h.open("c1", "f", "1:a", Some(30_000), Some(lease("k1", "RWH", 1)));
        h.at(500);
        h.read_ok("c1");
        h.fault("blackhole", 0, "start");
        h.at(550);
        h.fault_on(
            "reset",
            1,
            "start",
            "fs1",
            json!({ "kind": "reset", "peer": "c", "side": side }),
        );
        h.at(5_000);
        h.disconnect("c1");
        h.at(40_000);
        h.fault("blackhole", 0, "heal");
        let r = h.reconnect("c1", open);
        h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
        let c = handle_resume(&h.records, &options());
        if judged {
            assert_invalid(&c, &[Anomaly::ReclaimedAfterExpiry], &[r]);
        } else {
            // Only c1's socket was destroyed, and its RST was lost: the server may not know.
            assert_valid(&c);
        }
    }
}

#[test]
fn a_reclaim_that_changed_the_file_id_fails() {
    let (mut h, open) = disconnected();
    h.at(2_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "2:a", Some(lease("k1", "RWH", 1)));
    let c = handle_resume(&h.records, &options());
    assert_invalid(&c, &[Anomaly::FileIdChanged], &[r]);
    assert!(
        c.result
            .explanation
            .contains("persistent FileId 2 instead of 1"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_reclaim_that_changed_the_lease_fails() {
    for got in [lease("k2", "RWH", 1), lease("k1", "RH", 1)] {
        let (mut h, open) = disconnected();
        h.at(2_000);
        let r = h.reconnect("c1", open);
        h.reconnect_ok(r, "1:a", Some(got));
        assert_invalid(
            &handle_resume(&h.records, &options()),
            &[Anomaly::LeaseChanged],
            &[r],
        );
    }
}

#[test]
fn a_reclaim_keeps_the_state_a_break_left() {
    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(30_000), Some(lease("k1", "RWH", 1)));
    h.at(100);
    h.lease_break("c1", "RWH", "RH", 2);
    h.lease_break_ack("c1", "RH");
    h.at(1_000);
    h.disconnect("c1");
    h.at(2_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RH", 2)));
    assert_valid(&handle_resume(&h.records, &options()));
}

#[test]
fn a_regressing_epoch_fails() {
    let (mut h, open) = disconnected();
    h.at(1_500);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 3)));
    h.at(2_000);
    let b = h.lease_break("c1", "RWH", "RH", 2);
    let c = handle_resume(&h.records, &options());
    assert_invalid(&c, &[Anomaly::EpochRegressed], &[b]);
}

#[test]
fn epochs_start_again_with_a_new_lease() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, Some(lease("k1", "RWH", 1)));
    h.lease_break("c1", "RWH", "RH", 5);
    h.close("c1");
    h.at(10);
    h.open("c1", "f", "1:b", None, Some(lease("k1", "RWH", 1)));
    assert_valid(&handle_resume(&h.records, &options()));
}

/// c1's durable handle is preserved (disconnected at 1 s); c2 opens f at 2 s.
fn conflicting(granted: bool) -> (H, u64, u64) {
    let (mut h, open) = disconnected();
    h.at(2_000);
    let o = h.open_invoke("c2", "f");
    if granted {
        h.open_ok(o, "9:a", None, None);
    } else {
        h.fail(o, "STATUS_SHARING_VIOLATION");
    }
    (h, open, o)
}

#[test]
fn a_conflicting_open_granted_while_the_handle_was_preserved_fails_when_refusal_is_expected() {
    let refused = ResumeOptions {
        conflicting_open: ConflictPolicy::Refused,
        ..options()
    };
    let (h, open, o) = conflicting(true);
    assert_invalid(
        &handle_resume(&h.records, &refused),
        &[Anomaly::ConflictingOpenGranted],
        &[o, open],
    );
    let (h, _, _) = conflicting(false);
    assert_valid(&handle_resume(&h.records, &refused));
}

#[test]
fn a_conflicting_open_refused_fails_when_breaking_is_expected() {
    let breaks = ResumeOptions {
        conflicting_open: ConflictPolicy::Breaks,
        ..options()
    };
    let (h, _, o) = conflicting(false);
    assert_invalid(
        &handle_resume(&h.records, &breaks),
        &[Anomaly::ConflictingOpenRefused],
        &[o],
    );
    let (h, _, _) = conflicting(true);
    assert_valid(&handle_resume(&h.records, &breaks));
}

#[test]
fn a_handle_broken_by_a_conflicting_open_cannot_be_reclaimed() {
    let (mut h, open, o) = conflicting(true);
    h.at(3_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
    assert_invalid(
        &handle_resume(&h.records, &options()),
        &[Anomaly::ReclaimedAfterBreak],
        &[r, o],
    );

    // Failing to reclaim it is right, even well within the timeout.
    let (mut h, open, _) = conflicting(true);
    h.at(3_000);
    let r = h.reconnect("c1", open);
    h.fail(r, "STATUS_OBJECT_NAME_NOT_FOUND");
    assert_valid(&handle_resume(&h.records, &options()));
}

#[test]
fn an_open_that_needs_no_break_leaves_the_preserved_handle_alone() {
    // c1's lease was broken to RH before the disconnect: c2's open (no sharing violation)
    // breaks nothing, and c1 may still reclaim its handle.
    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(30_000), Some(lease("k1", "RWH", 1)));
    h.at(100);
    h.lease_break("c1", "RWH", "RH", 2);
    h.lease_break_ack("c1", "RH");
    h.at(1_000);
    h.disconnect("c1");
    h.at(2_000);
    let o = h.open_invoke("c2", "f");
    h.open_ok(o, "9:a", None, None);
    h.at(3_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RH", 2)));
    let refused = ResumeOptions {
        conflicting_open: ConflictPolicy::Refused,
        ..options()
    };
    let c = handle_resume(&h.records, &refused);
    assert_valid(&c);
    assert!(
        c.result.explanation.contains("0 conflicting opens judged"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_durable_request_not_granted_fails_only_when_the_plan_expects_reclaim() {
    let mut h = H::new();
    let o = h.open_invoke("c1", "f");
    // RWH lease granted, but no durable handle.
    h.open_ok(o, "1:a", None, Some(lease("k1", "RWH", 1)));
    let c = handle_resume(&h.records, &options());
    assert_valid(&c);
    assert!(
        c.result
            .explanation
            .contains("1 durable requests granted H caching but no durable handle"),
        "{}",
        c.result.explanation
    );
    let require = ResumeOptions {
        require_grant: true,
        ..options()
    };
    assert_invalid(
        &handle_resume(&h.records, &require),
        &[Anomaly::NotGranted],
        &[o],
    );
}

#[test]
fn nothing_to_check_is_valid() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.write_ok("c1", 0, 8, false);
    let c = handle_resume(&h.records, &options());
    assert_valid(&c);
    assert!(
        c.result.explanation.starts_with("nothing to check"),
        "{}",
        c.result.explanation
    );
}

mod reclaim_preconditions {
    use check::{handle_resume, Anomaly, ResumeOptions, Validity};

    use super::super::assert_invalid;
    use super::super::h::{lease, H};

    fn reclaim() -> ResumeOptions {
        ResumeOptions {
            require_grant: true,
            require_reclaim: true,
            ..ResumeOptions::default()
        }
    }

    #[test]
    fn every_open_failing_fails_a_plan_that_expects_reclaim() {
        let mut h = H::new();
        let o = h.open_invoke("c1", "f");
        h.fail(o, "STATUS_ACCESS_DENIED");
        let c = handle_resume(&h.records, &reclaim());
        assert_invalid(&c, &[Anomaly::PreconditionRefused], &[o]);
    }

    #[test]
    fn no_durable_handle_granted_without_a_lease_fails_too() {
        let mut h = H::new();
        let o = h.open_invoke("c1", "f");
        h.open_ok(o, "1:a", None, None);
        let c = handle_resume(&h.records, &reclaim());
        assert_invalid(&c, &[Anomaly::PreconditionRefused], &[o]);
    }

    #[test]
    fn a_fault_that_did_not_land_is_unknown() {
        let mut h = H::new();
        h.open("c1", "f", "1:a", Some(60_000), Some(lease("k1", "RWH", 1)));
        let c = handle_resume(&h.records, &reclaim());
        assert_eq!(
            c.result.valid,
            Validity::Unknown,
            "{}",
            c.result.explanation
        );
        assert!(
            c.result.explanation.contains("the fault did not land"),
            "{}",
            c.result.explanation
        );
    }
}
