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
            .contains("3 acknowledged (2 write-through, 1 flushed, 0 unflushed;"),
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
            .starts_with("f: write 2 (flushed by 4) is lost: 4096 of its bytes are not in final read 6: [0, 4096) holds zeros"),
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
    h.write_ok("c1", 4096, 8, true);
    let w = h.write("c1", 0, 4096, true);
    h.fail(w, "STATUS_DISK_FULL");
    h.final_read("f", 4104, &[[0, 4096, w as i64], [4096, 8, w as i64 - 2]]);
    assert_invalid(
        &durability(&h.records, &ALLOWED),
        &[Anomaly::FailedWritePresent],
        &[w],
    );
}

#[test]
fn an_info_write_may_be_present_or_absent() {
    let mut h = H::new();
    // One acknowledged write elsewhere, so there is something to judge.
    h.open("c1", "acked", "1:c", None, None);
    let w = h.write_ok("c1", 0, 8, true);
    h.final_read("acked", 8, &[[0, 8, w as i64]]);
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
fn an_unflushed_write_lost_without_an_excusing_event_fails_whatever_unflushed_loss_says() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    h.final_read("f", 0, &[]);
    for options in [ALLOWED, FORBIDDEN] {
        let c = durability(&h.records, &options);
        assert_invalid(&c, &[Anomaly::Lost], &[w]);
    }
    let c = durability(&h.records, &ALLOWED);
    assert!(
        c.result.explanation.contains(
            "write 2 (ok, unflushed) is lost (no server process death or crash to excuse it)"
        ),
        "{}",
        c.result.explanation
    );
}

#[test]
fn an_unflushed_write_may_be_lost_across_a_server_death_only_where_allowed() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    h.fault("kill", 0, "start");
    h.fault("kill", 0, "heal");
    h.final_read("f", 0, &[]);
    let c = durability(&h.records, &ALLOWED);
    assert_valid(&c);
    assert!(
        c.result
            .explanation
            .contains("excused: f: write 2 (ok, unflushed) lost across fault 0.0 (kill c)"),
        "{}",
        c.result.explanation
    );
    assert_invalid(&durability(&h.records, &FORBIDDEN), &[Anomaly::Lost], &[w]);
}

#[test]
fn a_reset_does_not_excuse_a_lost_write() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    h.fault("reset", 0, "start");
    h.final_read("f", 0, &[]);
    assert_invalid(&durability(&h.records, &ALLOWED), &[Anomaly::Lost], &[w]);
}

#[test]
fn a_flushed_write_is_not_excused_by_a_later_server_death() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, false);
    let f = h.flush_ok("c1");
    h.fault("kill", 0, "start");
    h.fault("kill", 0, "heal");
    h.final_read("f", 0, &[]);
    assert_invalid(&durability(&h.records, &ALLOWED), &[Anomaly::Lost], &[w, f]);
}

#[test]
fn every_lost_write_is_named_not_only_the_newest_per_range() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write_ok("c1", 0, 4096, false);
    let f = h.flush_ok("c1");
    let c = h.write_ok("c1", 0, 4096, true);
    h.final_read("f", 4096, &[[0, 4096, ZEROS]]);
    let checked = durability(&h.records, &ALLOWED);
    assert_invalid(&checked, &[Anomaly::Lost], &[a, b, f, c]);
    for id in [a, b, c] {
        assert!(
            checked
                .result
                .explanation
                .contains(&format!("write {id} (")),
            "{}",
            checked.result.explanation
        );
    }
}

#[test]
fn a_flush_invoked_before_the_write_completed_does_not_make_it_durable() {
    let mut h = opened();
    let w = h.write("c1", 0, 4096, false);
    let f = h.flush("c1");
    h.ok(w);
    h.ok(f);
    h.fault("kill", 0, "start");
    h.fault("kill", 0, "heal");
    h.final_read("f", 0, &[]);
    // Not durable at the kill: its loss is excused.
    assert_valid(&durability(&h.records, &ALLOWED));
}

#[test]
fn a_flush_on_another_handle_does_not_make_it_durable() {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.write_ok("c1", 0, 4096, false);
    h.close("c1");
    h.open("c1", "f", "2:a", None, None);
    h.flush_ok("c1");
    h.fault("kill", 0, "start");
    h.fault("kill", 0, "heal");
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

#[test]
fn alien_bytes_the_final_reader_saw_agree_are_garbage_on_disk_and_disagreeing_ones_unjudged() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, true);
    let r = h.final_read("f", 4096, &[[0, 8, ALIEN], [8, 4088, w as i64]]);
    let c = durability(&h.records, &ALLOWED);
    assert_invalid(&c, &[Anomaly::Alien], &[r]);
    assert!(
        c.result.explanation.contains("the disk holds garbage"),
        "{}",
        c.result.explanation
    );
    // The final reader's reads disagreed there: the read path lied, the disk is not judged.
    let history::Value::FinalRead(read) = &mut h.records[r as usize].value else {
        panic!("not a final read");
    };
    read.unstable = vec![[0, 8]];
    let c = durability(&h.records, &ALLOWED);
    assert_eq!(
        c.result.valid,
        Validity::Unknown,
        "{}",
        c.result.explanation
    );
    assert!(
        c.result.explanation.contains("the read path lied"),
        "{}",
        c.result.explanation
    );
}
