use check::{judge, DurabilityExpectation, Expectations, Outcome, ResumeExpectation, Validity};
use history::ops::{ALIEN, ZEROS};

use super::h::{lease, H};

fn outcome_of<'v>(v: &'v check::Verdict, checker: &str) -> &'v check::Judged {
    v.checkers
        .iter()
        .find(|j| j.result.checker == checker)
        .expect(checker)
}

#[test]
fn an_empty_history_passes_every_checker_with_nothing_to_check() {
    let v = judge(&[], &Expectations::default());
    assert_eq!(v.outcome, Outcome::Pass);
    let names: Vec<&str> = v
        .checkers
        .iter()
        .map(|j| j.result.checker.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "exec",
            "durability",
            "reads",
            "handle-resume",
            "leases",
            "availability",
            "fault-effects"
        ]
    );
    for j in &v.checkers[1..] {
        assert!(
            j.result.explanation.starts_with("nothing to check"),
            "{}",
            j.result.explanation
        );
    }
}

/// One flushed write; `lost`: the final read shows zeros.
fn written(lost: bool, alien: bool) -> H {
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    let w = h.write_ok("c1", 0, 4096, true);
    let id = if lost { ZEROS } else { w as i64 };
    let mut runs = vec![[0, 4096, id]];
    if alien {
        runs.push([4096, 8, ALIEN]);
    }
    h.final_read("f", 4096 + if alien { 8 } else { 0 }, &runs);
    h
}

#[test]
fn a_plan_documenting_data_loss_passes_while_data_is_lost() {
    let lose = Expectations {
        durability: DurabilityExpectation::Lose,
        ..Expectations::default()
    };
    let v = judge(&written(true, false).records, &lose);
    let j = outcome_of(&v, "durability");
    assert_eq!(
        (j.result.valid, j.outcome, j.expected.as_str()),
        (Validity::False, Outcome::Pass, "lose")
    );
    assert_eq!(v.outcome, Outcome::Pass);

    // The day the server keeps the data, the plan fails.
    let v = judge(&written(false, false).records, &lose);
    let j = outcome_of(&v, "durability");
    assert_eq!((j.result.valid, j.outcome), (Validity::True, Outcome::Fail));
    assert!(j
        .result
        .explanation
        .starts_with("expected acknowledged data to be lost (lose), and it did not happen"));

    // Corruption is not the documented loss.
    let v = judge(&written(true, true).records, &lose);
    let j = outcome_of(&v, "durability");
    assert_eq!(j.outcome, Outcome::Fail);
    assert!(
        j.result
            .explanation
            .starts_with("beyond the expected acknowledged data to be lost, found alien"),
        "{}",
        j.result.explanation
    );
}

#[test]
fn a_plan_documenting_durable_handles_not_granted_passes_while_they_are_not() {
    let fail = Expectations {
        resume: Some(ResumeExpectation::Fail),
        ..Expectations::default()
    };
    let mut h = H::new();
    let o = h.open_invoke("c1", "f");
    h.open_ok(o, "1:a", None, Some(lease("k1", "RWH", 1)));
    assert_eq!(
        outcome_of(&judge(&h.records, &fail), "handle-resume").outcome,
        Outcome::Pass
    );

    let mut h = H::new();
    let open = h.open("c1", "f", "1:a", Some(60_000), Some(lease("k1", "RWH", 1)));
    h.disconnect("c1");
    h.at(1_000);
    let r = h.reconnect("c1", open);
    h.reconnect_ok(r, "1:a", Some(lease("k1", "RWH", 1)));
    let v = judge(&h.records, &fail);
    assert_eq!(outcome_of(&v, "handle-resume").outcome, Outcome::Fail);
    assert_eq!(v.outcome, Outcome::Fail);
    let reclaim = Expectations {
        resume: Some(ResumeExpectation::Reclaim),
        ..Expectations::default()
    };
    assert_eq!(judge(&h.records, &reclaim).outcome, Outcome::Pass);
}

#[test]
fn fail_beats_unknown_beats_pass() {
    // No final read: durability unknown.
    let mut h = H::new();
    h.open("c1", "f", "1:a", None, None);
    h.write_ok("c1", 0, 8, true);
    assert_eq!(
        judge(&h.records, &Expectations::default()).outcome,
        Outcome::Unknown
    );
    // Plus a stall past max_stall: fail.
    h.at(10_000);
    h.read_ok("c1");
    let strict = Expectations {
        max_stall: Some(std::time::Duration::from_secs(5)),
        ..Expectations::default()
    };
    assert_eq!(judge(&h.records, &strict).outcome, Outcome::Fail);
}

#[test]
fn verdict_json_keeps_its_shape() {
    let v = judge(&written(true, false).records, &Expectations::default());
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["outcome"], "fail");
    let d = &json["checkers"][1];
    let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "checker",
            "expected",
            "explanation",
            "ops",
            "outcome",
            "preconditions",
            "valid"
        ]
    );
    assert_eq!(
        (
            d["checker"].as_str(),
            d["valid"].as_str(),
            d["outcome"].as_str()
        ),
        (Some("durability"), Some("false"), Some("fail"))
    );
    assert_eq!(d["ops"], serde_json::json!([2, 3, 4]));
}
