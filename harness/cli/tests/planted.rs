//! Planted bugs: real field plans run through the built binary against a real smbd that
//! misbehaves on purpose, one plant per class of defect the checkers exist for. Each must
//! FAIL, naming the ops that prove it; the same plans with the shim loaded but inert PASS.
//!
//! - an LD_PRELOAD shim (tests/planted/plant.c, built here with `cc`) wrapping smbd's
//!   pread/pwrite: `corrupt-reads` (some reads return altered bytes, the file is intact),
//!   `drop-writes` (some writes are acknowledged and never written);
//! - configuration that silently turns off what the plan is about (`smb2 leases = no`,
//!   `durable handles = no`);
//! - a CTDB cluster slow to notice a dead node (`KeepaliveLimit`), against a plan that
//!   expects the takeover within seconds;
//! - seed 004's multichannel plans with the client constraint not honoured, and with a
//!   server that offers no multichannel.

#[path = "planted/common.rs"]
mod common;

use common::*;

#[test]
fn corrupted_reads_fail_reads_naming_the_read_and_the_lying_read_path() {
    let r = run("plans/field/durable-resume.yaml", plant("corrupt-reads", 3));
    assert_code(&r, 1);
    let ops = r.failed("reads", "no write can have put there");
    assert!(
        ops.iter().any(|&i| r.record(i)["f"] == "read"),
        "no read op cited: {ops:?}"
    );
    let why = r.checker("reads")["explanation"].as_str().unwrap();
    assert!(why.contains("the read path lied"), "{why}");
    assert!(why.contains("returned bytes ["), "no byte range: {why}");
}

#[test]
fn dropped_writes_fail_durability_naming_every_lost_write() {
    let r = run(
        "plans/field/cached-writes-lost.yaml",
        plant("drop-writes", 4),
    );
    assert_code(&r, 1);
    let ops = r.failed("durability", "is lost");
    let lost: Vec<u64> = ops
        .iter()
        .copied()
        .filter(|&i| r.record(i)["f"] == "write" && r.record(i)["type"] == "invoke")
        .collect();
    assert!(lost.len() >= 2, "several lost writes named: {ops:?}");
    // Every write named was acknowledged.
    for w in &lost {
        let ok = r.history.iter().any(|x| {
            x["f"] == "write"
                && x["type"] == "ok"
                && x["process"] == r.record(*w)["process"]
                && x["index"].as_u64() > Some(*w)
        });
        assert!(ok, "write {w} named lost was never acknowledged");
    }
    // Reads after a dropped write returned older bytes.
    r.failed("reads", "expected write");
}

#[test]
fn leases_turned_off_fail_a_plan_about_a_break() {
    let r = run(
        "plans/field/break-to-unreachable.yaml",
        global("smb2 leases", "no"),
    );
    assert_code(&r, 1);
    r.failed("leases", "precondition not met");
    let ops = r.failed("grants", "was granted less than the plan requires");
    assert!(ops.iter().all(|&i| r.record(i)["f"] == "open"), "{ops:?}");
}

#[test]
fn durable_handles_turned_off_fail_a_plan_about_resume() {
    let r = run(
        "plans/field/durable-resume.yaml",
        global("durable handles", "no"),
    );
    assert_code(&r, 1);
    r.failed("handle-resume", "was not granted one");
    let ops = r.failed("grants", "a durable handle, got none");
    assert!(ops.iter().all(|&i| r.record(i)["f"] == "open"), "{ops:?}");
}

/// A cluster whose survivors wait 25 keepalives (25 s instead of 3) before declaring a node
/// dead takes its address over far too late: the `failover` checker fails, citing the crash.
/// The crash is held 20 s so that the node's own return (which its peers notice at once, by
/// the RST its restarted kernel sends) does not end the failover before the plant shows.
#[test]
fn a_cluster_slow_to_declare_a_node_dead_fails_failover() {
    let r = run("plans/cluster/node-crash-tickle.yaml", |p| {
        p.topology.clusters[0]
            .tunables
            .insert("KeepaliveLimit".into(), 25);
        let crash = &mut p.faults[0];
        let hold = crash.hold.as_mut().expect("the plan's crash has a `for`");
        hold.value = "20s".parse().unwrap();
    });
    assert_code(&r, 1);
    let ops = r.failed("failover", "takeover");
    assert!(
        ops.iter()
            .all(|&i| r.record(i)["f"] == "crash" && r.record(i)["process"] == "nemesis"),
        "{ops:?}"
    );
    let why = r.checker("failover")["explanation"].as_str().unwrap();
    assert!(
        why.contains("later than") || why.contains("no takeover seen"),
        "{why}"
    );
}

/// Seed 004 with a client that does not honour its constraint (the plan's
/// `multichannel: { networks: [storage] }` dropped, as a client ignoring
/// New-SmbMultichannelConstraint would): the copy spreads over the management network, and
/// both of the constrained plan's expectations fail, citing the link counters and the
/// probe's slowest ops.
#[test]
fn a_client_ignoring_its_multichannel_constraint_fails_the_constrained_plan() {
    let r = run("plans/field/multichannel-constrained.yaml", |p| {
        let copy = p
            .workload
            .clients
            .iter_mut()
            .find(|c| c.multichannel.is_some())
            .expect("the plan's copy is multichannel");
        copy.multichannel.as_mut().unwrap().value.networks.clear();
    });
    assert_code(&r, 1);
    let ops = r.failed("network-bytes", "c1's bytes on mgmt");
    r.failed("network-bytes", "expected at most 1.0%");
    assert!(
        ops.iter().all(|&i| r.record(i)["f"] == "link_counters"),
        "{ops:?}"
    );
    let ops = r.failed("probe-latency", "expected at most 3x");
    assert!(
        ops.iter()
            .all(|&i| r.record(i)["node"] == "admin" && r.record(i)["type"] == "invoke"),
        "{ops:?}"
    );
}

/// Seed 004 against a server with multichannel off (`server multi channel support = no`):
/// the copy gets one channel, on the storage network, so the flood the unconstrained plan
/// expects never happens and both its expectations fail.
#[test]
fn a_server_without_multichannel_fails_the_flood_plan() {
    let r = run(
        "plans/field/multichannel-flood.yaml",
        global("server multi channel support", "no"),
    );
    assert_code(&r, 1);
    r.failed("network-bytes", "expected at least 25.0%");
    r.failed("probe-latency", "expected at least 5x");
}

#[test]
fn the_same_plans_pass_with_the_shim_loaded_and_inert() {
    for rel in [
        "plans/field/durable-resume.yaml",
        "plans/field/cached-writes-lost.yaml",
        "plans/field/break-to-unreachable.yaml",
    ] {
        let r = run(rel, plant("none", 3));
        assert_code(&r, 0);
    }
}

/// `strict sync = no`: smbd acknowledges write-through writes and FLUSH without an fsync, so
/// the lossy disk's power cut takes acknowledged durable writes with it.
#[test]
fn strict_sync_off_loses_flushed_writes_at_a_power_cut() {
    let r = run(
        "plans/field/power-cut-cached-writes.yaml",
        global("strict sync", "no"),
    );
    assert_code(&r, 1);
    let why = r.checker("durability")["explanation"]
        .as_str()
        .unwrap()
        .to_string();
    r.failed("durability", "is lost");
    assert!(
        why.contains("(write-through)") || why.contains("(flushed by"),
        "a durable write named lost: {why}"
    );
}

/// `break_wait` can fail: the same plan with the holder made unreachable (blackholed) instead
/// of silent. Samba then gives up on it after ~6 x RTO (finding 1) and the conflicting open
/// completes in about a second: the leases checker must name it.
#[test]
fn a_server_giving_up_on_the_holder_early_fails_break_wait() {
    let r = run("plans/field/break-dropped-reachable.yaml", |p| {
        let f = &mut p.faults[0];
        f.kind.value = plan::FaultKind::Blackhole;
        f.node = Some(plan::Spanned::from("c1".to_string()));
        f.peer = None;
        f.message = None;
        f.action = None;
        f.hold = Some(plan::Spanned::from(
            "9s".parse::<plan::PlanDuration>().unwrap(),
        ));
    });
    assert_code(&r, 1);
    let ops = r.failed(
        "leases",
        "the server gave up on the holder before the 30.0s",
    );
    assert!(ops.iter().any(|&i| r.record(i)["f"] == "open"), "{ops:?}");
}
