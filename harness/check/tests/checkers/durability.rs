use check::{durability, Anomaly, DurabilityOptions, Validity};
use history::ops::{ALIEN, ZEROS};

use super::h::H;
use super::{assert_invalid, assert_valid};

const ALLOWED: DurabilityOptions = DurabilityOptions {
    unflushed_loss_allowed: true,
};
const FORBIDDEN: DurabilityOptions = DurabilityOptions {
    unflushed_loss_allowed: false,
};

/// c1 opens f with handle A.
fn opened() -> H {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h
}

#[test]
fn a_clean_history_passes() {
    let mut h = opened();
    let wt = h.write_ok("c1", 0, 4096, true);
    let w = h.write_ok("c1", 4096, 4096, false);
    h.flush_ok("c1");
    // Overwritten later by a write-through write: the newer one is on disk.
    let newer = h.write_ok("c1", 0, 2048, true);
    h.final_read(
        "f",
        8192,
        &[
            [0, 2048, newer as i64],
            [2048, 2048, wt as i64],
            [4096, 4096, w as i64],
        ],
    );
    let c = durability(&h.records, &ALLOWED);
    assert_valid(&c);
    assert!(
        c.result
            .explanation
            .contains("3 acknowledged (2 write-through, 1 flushed)"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_lost_flushed_byte_fails() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    let f = h.flush_ok("c1");
    let r = h.final_read("f", 4096, &[[0, 4096, ZEROS]]);
    let c = durability(&h.records, &ALLOWED);
    assert_invalid(&c, &[Anomaly::Lost], &[w, f, r]);
    assert!(
        c.result
            .explanation
            .starts_with("f: bytes [0, 4096) acknowledged by write 2 (flushed) are lost"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_lost_write_through_byte_fails_also_when_the_file_is_short() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write_ok("c1", 4096, 4096, true);
    // Only the first write made it; the file ends there.
    let r = h.final_read("f", 4096, &[[0, 4096, a as i64]]);
    let c = durability(&h.records, &ALLOWED);
    assert_invalid(&c, &[Anomaly::Lost], &[b, r]);
    assert!(
        c.result.explanation.contains("past the end of the file"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_resurrected_superseded_byte_fails() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write_ok("c1", 0, 4096, false);
    let f = h.flush_ok("c1");
    // B was invoked after A completed and flushed: A's bytes must not come back.
    h.final_read("f", 4096, &[[0, 4096, a as i64]]);
    let c = durability(&h.records, &ALLOWED);
    assert_invalid(&c, &[Anomaly::Superseded], &[a, b, f]);
}

#[test]
fn concurrent_writes_may_land_in_either_order() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.open("c2", "f", "2:a", None, None);
    let a = h.write("c1", 0, 4096, true);
    let b = h.write("c2", 0, 4096, true);
    h.ok(b);
    h.ok(a);
    // A completed after B was invoked: the server may have applied A last.
    h.final_read("f", 4096, &[[0, 4096, a as i64]]);
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn an_alien_byte_fails() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, true);
    h.final_read(
        "f",
        8192,
        &[[0, 4096, w as i64], [4096, 8, ALIEN], [4104, 4088, ZEROS]],
    );
    assert_invalid(&durability(&h.records, &ALLOWED), &[Anomaly::Alien], &[]);
}

#[test]
fn a_byte_claiming_a_write_that_did_not_cover_it_or_another_file_is_alien() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.open("c2", "g", "2:a", None, None);
    let w = h.write_ok("c1", 0, 4096, false);
    let other = h.write_ok("c2", 0, 8, false);
    // Write w covered [0, 4096) only; `other` is a write of file g.
    h.final_read("f", 8200, &[[0, 8192, w as i64], [8192, 8, other as i64]]);
    h.final_read("g", 8, &[[0, 8, other as i64]]);
    assert_invalid(&durability(&h.records, &ALLOWED), &[Anomaly::Alien], &[w]);
}

#[test]
fn a_byte_of_a_failed_write_fails() {
    let mut h = opened();
    let w = h.write("c1", 0, 4096, true);
    h.fail(w, "STATUS_DISK_FULL");
    h.final_read("f", 4096, &[[0, 4096, w as i64]]);
    assert_invalid(
        &durability(&h.records, &ALLOWED),
        &[Anomaly::FailedWritePresent],
        &[w],
    );
}

#[test]
fn an_info_write_may_be_present_or_absent() {
    let mut h = H::new();
    h.open("c1", "present", "1:a", None, None);
    let p = h.write("c1", 0, 4096, true);
    h.info(p);
    h.open("c1", "absent", "1:b", None, None);
    let a = h.write("c1", 0, 4096, true);
    h.info(a);
    // Never completed at all: unknown too.
    let pending = h.write("c1", 4096, 4096, true);
    h.final_read("present", 4096, &[[0, 4096, p as i64]]);
    h.final_read(
        "absent",
        8192,
        &[[0, 4096, ZEROS], [4096, 4096, pending as i64]],
    );
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn an_info_write_does_not_make_an_older_byte_superseded() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write("c1", 0, 4096, true);
    h.info(b);
    h.final_read("f", 4096, &[[0, 4096, a as i64]]);
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn an_unflushed_write_may_be_lost_only_where_allowed() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    h.final_read("f", 0, &[]);
    assert_valid(&durability(&h.records, &ALLOWED));
    assert_invalid(&durability(&h.records, &FORBIDDEN), &[Anomaly::Lost], &[w]);
}

#[test]
fn a_flush_invoked_before_the_write_completed_does_not_acknowledge_it() {
    let mut h = opened();
    let w = h.write("c1", 0, 4096, false);
    let f = h.flush("c1");
    h.ok(w);
    h.ok(f);
    h.final_read("f", 0, &[]);
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn a_flush_on_another_handle_does_not_acknowledge() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.write_ok("c1", 0, 4096, false);
    h.close("c1");
    h.open("c1", "f", "2:a", None, None);
    h.flush_ok("c1");
    h.final_read("f", 0, &[]);
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn a_flush_after_a_reclaim_acknowledges_writes_before_the_disconnect() {
    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(60_000), None);
    let w = h.write_ok("c1", 0, 4096, false);
    h.disconnect("c1");
    let r = h.reconnect("c1", open);
    // Samba gives the reclaimed open a new volatile FileId.
    h.reconnect_ok(r, "1:b", None);
    let f = h.flush_ok("c1");
    h.final_read("f", 0, &[]);
    assert_invalid(&durability(&h.records, &ALLOWED), &[Anomaly::Lost], &[w, f]);
}

#[test]
fn a_file_without_final_read_is_unknown() {
    let mut h = opened();
    h.write_ok("c1", 0, 4096, true);
    let c = durability(&h.records, &ALLOWED);
    assert_eq!(
        c.result.valid,
        Validity::Unknown,
        "{}",
        c.result.explanation
    );
    assert!(
        c.result.explanation.starts_with("f: no final read"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn nothing_to_check_is_valid() {
    let c = durability(&[], &ALLOWED);
    assert_valid(&c);
    assert!(
        c.result.explanation.starts_with("nothing to check"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_replayed_write_settles_its_original() {
    use serde_json::json;
    // Write 1 is in flight when the connection drops (info); it is replayed and acked
    // write-through: its bytes must now be there.
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    let w = h.write("c1", 0, 8, false);
    h.info(w);
    let r = h.invoke(
        "c1",
        "write",
        json!({ "offset": 0, "len": 8, "write_through": true, "replay_of": w }),
    );
    h.ok(r);
    h.final_read("f", 8, &[[0, 8, ZEROS]]);
    let c = durability(&h.records, &DurabilityOptions::default());
    assert_eq!(
        c.result.valid,
        check::Validity::False,
        "{}",
        c.result.explanation
    );

    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    let w = h.write("c1", 0, 8, false);
    h.info(w);
    let r = h.invoke(
        "c1",
        "write",
        json!({ "offset": 0, "len": 8, "write_through": true, "replay_of": w }),
    );
    h.ok(r);
    h.final_read("f", 8, &[[0, 8, w as i64]]);
    assert_valid(&durability(&h.records, &DurabilityOptions::default()));
}
