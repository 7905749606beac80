use check::{grants, Anomaly, Caps, GrantOptions, Validity};

use super::h::{lease, H};
use super::{assert_invalid, assert_valid};

fn rwh_durable() -> GrantOptions {
    GrantOptions {
        lease: Some(check::compact_caps("RWH")),
        oplock: None,
        durable: true,
    }
}

#[test]
fn the_first_open_of_each_client_must_get_what_the_plan_requires() {
    let mut h = H::new();
    let o = h.open_invoke("c1", "f");
    h.open_ok(o, "1:a", Some(60_000), Some(lease("k1", "RWH", 1)));
    let c = grants(&h.records, &rwh_durable());
    assert_valid(&c);
    assert_eq!(c.result.preconditions[0].held, Validity::True);

    // A second client's first open got no lease and no durable handle.
    let o2 = h.open_invoke("c2", "f");
    h.open_ok(o2, "2:a", None, None);
    let c = grants(&h.records, &rwh_durable());
    assert_invalid(&c, &[Anomaly::GrantRefused], &[o2]);
    assert!(
        c.result
            .explanation
            .contains("lease RWH, got none; a durable handle, got none"),
        "{}",
        c.result.explanation
    );
    let _ = Caps::default();
}

#[test]
fn every_open_refused_fails_and_no_open_answered_is_unknown() {
    let mut h = H::new();
    let o = h.open_invoke("c1", "f");
    h.fail(o, "STATUS_ACCESS_DENIED");
    assert_invalid(
        &grants(&h.records, &rwh_durable()),
        &[Anomaly::PreconditionRefused],
        &[o],
    );

    let mut h = H::new();
    let o = h.open_invoke("c1", "f");
    h.info(o);
    assert_eq!(
        grants(&h.records, &rwh_durable()).result.valid,
        Validity::Unknown
    );
}
