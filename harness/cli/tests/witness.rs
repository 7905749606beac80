//! The witness plans (seed 002) against a cluster whose Witness service misbehaves, or a
//! client slower than the plan allows: each plan's witness expectation must FAIL, naming
//! the fault. The misbehaving service is a real one refusing every registration: the
//! cluster's NetBIOS name is not the one clients register for (RegisterEx's NetName, which
//! Samba checks), so no client is ever registered and no notification ever comes — what a
//! client sees of a cluster whose witness is off. Needs root, Docker and the Samba 4.22
//! image, like the plans themselves. A cluster slow to declare a node dead fails the
//! no-witness plan's bounds.

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

/// Without a registration no notification comes: the witness bound fails. (The resume bound
/// may hold or not: without the witness the client is back at its request timeout, or
/// sooner when a request still unacknowledged at the crash is retransmitted to the new
/// owner and draws an RST — 9.7 s in one run.)
#[test]
fn silent_death_without_a_working_witness_fails_its_bounds() {
    let r = run("plans/cluster/silent-death-witness.yaml", witness_refuses);
    assert_code(&r, 1);
    cites_the_fault(&r, "crash");
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(why.contains("no witness notification seen"), "{why}");
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

/// The no-witness plan's bounds fail on a cluster slow to declare the node dead (25
/// keepalives instead of 3; the crash held 25 s so the node's return does not end it).
#[test]
fn silent_death_no_witness_fails_on_a_cluster_slow_to_take_over() {
    let r = run("plans/cluster/silent-death-no-witness.yaml", |p| {
        p.topology.clusters[0]
            .tunables
            .insert("KeepaliveLimit".into(), 25);
        let crash = &mut p.faults[1];
        let hold = crash.hold.as_mut().expect("the plan's crash has a `for`");
        hold.value = "25s".parse().unwrap();
    });
    assert_code(&r, 1);
    cites_the_fault(&r, "crash");
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(
        why.contains("takeover after") || why.contains("no takeover seen"),
        "{why}"
    );
}
