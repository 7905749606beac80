//! The witness plans (seed 002) against a cluster whose Witness service misbehaves, or a
//! client slower than the plan allows: each plan's witness expectation must FAIL, naming
//! the fault. The misbehaving service is a real one refusing every registration: the
//! cluster's NetBIOS name is not the one clients register for (RegisterEx's NetName, which
//! Samba checks), so no client is ever registered and no notification ever comes — what a
//! client sees of a cluster whose witness is off. Needs root, Docker and the Samba 4.22
//! image, like the plans themselves.

#[path = "planted/common.rs"]
mod common;

use common::*;

/// The cluster's witness refuses every registration (its NetBIOS name is another).
fn witness_refuses(p: &mut plan::Plan) {
    p.topology.clusters[0]
        .global
        .insert("netbios name".into(), "ELSEWHERE".into());
}

fn cites_the_fault(r: &Run, kind: &str) {
    let ops = r.failed("failover", "");
    assert!(
        ops.iter()
            .all(|&i| r.record(i)["f"] == kind && r.record(i)["process"] == "nemesis"),
        "{ops:?}"
    );
}

/// Without a registration the silent death is found out only at the request timeout: the
/// witness bound and the 12 s resume bound both fail.
#[test]
fn silent_death_without_a_working_witness_fails_its_bounds() {
    let r = run("plans/cluster/silent-death-witness.yaml", witness_refuses);
    assert_code(&r, 1);
    cites_the_fault(&r, "crash");
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(why.contains("no witness notification seen"), "{why}");
    assert!(why.contains("first ok op"), "{why}");
    assert!(
        r.history.iter().any(|x| x["f"] == "witness_register"
            && x["value"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("ERROR_INVALID_PARAMETER"))),
        "the refusal is in the history"
    );
}

/// `net witness client-move` with no client registered moves nobody.
#[test]
fn client_move_without_a_working_witness_fails() {
    let r = run("plans/cluster/witness-client-move.yaml", witness_refuses);
    assert_code(&r, 1);
    cites_the_fault(&r, "client_move");
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(why.contains("no client was cut off"), "{why}");
    // require_effect: nobody was told to move.
    r.failed("fault-effects", "");
}

/// The no-witness plan's resume bound fails for a client whose timeout is longer than the
/// plan allows for (it is still waiting when the workload ends).
#[test]
fn silent_death_no_witness_fails_for_a_slower_client() {
    let r = run("plans/cluster/silent-death-no-witness.yaml", |p| {
        p.workload.clients[0].request_timeout = "40s".parse().unwrap();
    });
    assert_code(&r, 1);
    cites_the_fault(&r, "crash");
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(why.contains("first ok op"), "{why}");
}
