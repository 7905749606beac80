use check::{reads, Anomaly, Validity};
use history::ops::{ALIEN, ZEROS};
use history::OpType;
use serde_json::json;

use super::h::H;
use super::{assert_invalid, assert_valid};

/// A read of `[off, off + len)` by `name` that got `runs` back (`cached`: from its cache).
fn read(h: &mut H, name: &str, off: u64, len: u64, runs: &[[i64; 3]], cached: bool) -> u64 {
    let r = h.invoke(name, "read", json!({ "offset": off, "len": len }));
    h.complete(
        r,
        OpType::Ok,
        json!({ "runs": runs, "cached": cached }),
        None,
        |_| {},
    );
    r
}

fn opened() -> H {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.open("c2", "f", "2:a", None, None);
    h
}

#[test]
fn a_read_of_the_newest_acknowledged_write_passes() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, false);
    let b = h.write_ok("c1", 0, 2048, true);
    read(
        &mut h,
        "c2",
        0,
        4096,
        &[[0, 2048, b as i64], [2048, 2048, a as i64]],
        false,
    );
    read(&mut h, "c2", 4096, 4096, &[], false);
    let c = reads(&h.records, true);
    assert_valid(&c);
    assert!(
        c.result.explanation.contains("2 reads judged"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_read_of_bytes_older_than_an_acknowledged_write_fails_naming_read_range_and_write() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write_ok("c1", 0, 4096, false);
    let r = read(&mut h, "c2", 0, 4096, &[[0, 4096, a as i64]], false);
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::ReadStale], &[r, b]);
    let why = &c.result.explanation;
    assert!(
        why.starts_with(&format!(
            "f: read {r} of [0, 4096) returned write {a} at [0, 4096), expected write {b} (ok, unflushed"
        )),
        "{why}"
    );
}

#[test]
fn zeros_where_a_write_was_acknowledged_are_stale_and_a_short_read_is_short() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 8192, true);
    let r1 = read(&mut h, "c2", 0, 4096, &[[0, 4096, ZEROS]], false);
    let r2 = read(&mut h, "c2", 4096, 4096, &[], false);
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::ReadStale, Anomaly::ReadShort], &[r1, r2, w]);
}

#[test]
fn a_concurrent_write_may_or_may_not_show() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    let b = h.write("c1", 0, 4096, true);
    let r = h.invoke("c2", "read", json!({ "offset": 0, "len": 4096 }));
    h.ok(b);
    h.complete(
        r,
        OpType::Ok,
        json!({ "runs": [[0, 4096, a]] }),
        None,
        |_| {},
    );
    let r = h.invoke("c2", "read", json!({ "offset": 0, "len": 4096 }));
    h.complete(
        r,
        OpType::Ok,
        json!({ "runs": [[0, 4096, b]] }),
        None,
        |_| {},
    );
    assert_valid(&reads(&h.records, true));
}

#[test]
fn alien_bytes_fail_and_say_whether_the_read_path_lied() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, true);
    let r = read(
        &mut h,
        "c2",
        0,
        4096,
        &[[0, 8, ALIEN], [8, 4088, w as i64]],
        false,
    );
    h.final_read("f", 4096, &[[0, 4096, w as i64]]);
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::ReadAlien], &[r]);
    assert!(
        c.result.explanation.contains("the read path lied"),
        "{}",
        c.result.explanation
    );

    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, true);
    read(
        &mut h,
        "c2",
        0,
        4096,
        &[[0, 8, ALIEN], [8, 4088, w as i64]],
        false,
    );
    h.final_read("f", 4096, &[[0, 8, ALIEN], [8, 4088, w as i64]]);
    let c = reads(&h.records, true);
    assert!(
        c.result.explanation.contains("the disk holds it"),
        "{}",
        c.result.explanation
    );
}

#[test]
fn bytes_of_a_write_invoked_after_the_read_completed_are_alien() {
    let mut h = opened();
    let r = read(&mut h, "c2", 0, 8, &[[0, 8, 6]], false);
    let w = h.write_ok("c1", 0, 8, true);
    assert_eq!(w, 6, "the write the read claims");
    assert_invalid(&reads(&h.records, true), &[Anomaly::ReadAlien], &[r]);
}

#[test]
fn a_stale_cache_is_caught() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    read(&mut h, "c2", 0, 4096, &[[0, 4096, a as i64]], false);
    let b = h.write_ok("c1", 0, 4096, true);
    let r = read(&mut h, "c2", 0, 4096, &[[0, 4096, a as i64]], true);
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::ReadStale], &[r, b]);
    assert!(
        c.result.explanation.contains(&format!("cached read {r}")),
        "{}",
        c.result.explanation
    );
}

#[test]
fn a_write_lost_across_a_server_death_excuses_older_bytes_only_while_allowed() {
    let mut h = opened();
    let a = h.write_ok("c1", 0, 4096, true);
    h.write_ok("c1", 0, 4096, false);
    h.fault("kill", 0, "start");
    h.fault("kill", 0, "heal");
    read(&mut h, "c2", 0, 4096, &[[0, 4096, a as i64]], false);
    let c = reads(&h.records, true);
    assert_valid(&c);
    assert!(
        c.result
            .explanation
            .contains("lost across fault 0.0 (kill c)"),
        "{}",
        c.result.explanation
    );
    assert_eq!(reads(&h.records, false).result.valid, Validity::False);
}

#[test]
fn reads_the_server_refused_every_time_fail_the_precondition() {
    let mut h = opened();
    let r = h.invoke("c2", "read", json!({ "offset": 0, "len": 8 }));
    h.fail(r, "STATUS_ACCESS_DENIED");
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::PreconditionRefused], &[r]);
    assert_eq!(c.result.preconditions[0].held, Validity::False);

    let mut h = opened();
    let r = h.invoke("c2", "read", json!({ "offset": 0, "len": 8 }));
    h.info(r);
    assert_eq!(reads(&h.records, true).result.valid, Validity::Unknown);
}

#[test]
fn the_final_reader_disagreeing_with_itself_is_a_lying_read_path() {
    let mut h = opened();
    let w = h.write_ok("c1", 0, 4096, true);
    let i = h.final_read("f", 4096, &[[0, 4096, w as i64]]);
    let history::Value::FinalRead(read) = &mut h.records[i as usize].value else {
        panic!("not a final read");
    };
    read.unstable = vec![[0, 8]];
    let c = reads(&h.records, true);
    assert_invalid(&c, &[Anomaly::ReadUnstable], &[i]);
}
