//! `faults:` — every fault kind's keys, references, ranges, overlaps, and the schedule the
//! plan expands to (deterministic for a seed).

use std::time::Duration;

use smbchaos_plan::{parse_str, schedule, Action};

const HEAD: &str = "version: 1\nname: f\nseed: 7\ntopology:\n  servers: [{ name: fs1 }, { name: fs2 }]\n  clients: [{ name: c1 }, { name: c2 }, { name: c3 }]\nfaults:\n";

fn errors(faults: &str) -> String {
    match parse_str("f.yaml", &format!("{HEAD}{faults}")) {
        Ok(_) => panic!("accepted:\n{faults}"),
        Err(e) => e.to_string(),
    }
}

fn plan(faults: &str) -> smbchaos_plan::Plan {
    parse_str("f.yaml", &format!("{HEAD}{faults}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn loss_above_100_percent() {
    assert_eq!(
        errors("  - { kind: impair, node: c1, loss: 150%, at: 0s }\n"),
        "f.yaml:8:37: `loss` of 150% is above 100%"
    );
}

#[test]
fn a_key_that_does_not_apply_names_those_that_do() {
    assert_eq!(
        errors("  - { kind: kill, node: fs1, latency: 5ms, at: 0s }\n"),
        "f.yaml:8:39: `latency` does not apply to a `kill` fault; it takes: kind, at, every, count, require_effect, node, serving, process, for"
    );
}

#[test]
fn dangling_references_in_every_node_field() {
    let e = errors(
        "  - { kind: reset, node: fs1, peer: c9, at: 0s }\n  - { kind: partition, from: [c1], to: [fs9], at: 1s, for: 1s }\n  - { kind: kill, node: fs1, serving: cx, at: 5s }\n",
    );
    assert!(
        e.contains("f.yaml:8:37: unknown node `c9`; nodes are: fs1, fs2, c1, c2, c3"),
        "{e}"
    );
    assert!(e.contains("f.yaml:9:41: unknown node `fs9`"), "{e}");
    assert!(e.contains("f.yaml:10:39: unknown node `cx`"), "{e}");
}

#[test]
fn negative_duration_is_rejected() {
    let e = errors("  - { kind: pause, node: fs1, at: -2s }\n");
    assert!(e.starts_with("f.yaml:8:"), "{e}");
    assert!(e.contains("is a negative duration"), "{e}");
}

#[test]
fn overlapping_contradictory_faults_on_one_link_or_node() {
    assert_eq!(
        errors("  - { kind: impair, node: c1, latency: 10ms, at: 0s, for: 5s }\n  - { kind: impair, node: c1, direction: egress, loss: 5%, at: 2s, for: 5s }\n"),
        "f.yaml:9:64: this `impair` fault overlaps the `impair` fault at line 8: both act on the egress of `c1`'s link at 2s"
    );
    // Different directions do not contradict; neither do process faults at different times.
    plan("  - { kind: impair, node: c1, direction: ingress, latency: 10ms, at: 0s, for: 5s }\n  - { kind: impair, node: c1, direction: egress, loss: 5%, at: 2s, for: 5s }\n  - { kind: kill, node: fs1, at: 0s, for: 1s }\n  - { kind: pause, node: fs1, at: 2s, for: 1s }\n");
    let e = errors(
        "  - { kind: kill, node: fs1, at: 0s }\n  - { kind: pause, node: fs1, at: 2s, for: 1s }\n",
    );
    assert!(
        e.contains("overlaps the `kill` fault at line 8: both act on the processes of `fs1`"),
        "{e}"
    );
}

#[test]
fn partition_forms_and_schedule() {
    let e = errors("  - { kind: partition, node: c1, choose: one, at: 0s }\n");
    assert!(e.contains("a `partition` takes exactly one of"), "{e}");
    let p = plan("  - { kind: partition, groups: [[fs1, c1], [fs2, c2, c3]], at: 1s, for: 2s }\n  - { kind: partition, from: [c1], to: [fs1], at: 5s, for: 1s }\n");
    let s = schedule(&p);
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].at, s[0].hold),
        (Duration::from_secs(1), Some(Duration::from_secs(2)))
    );
    let Action::Partition { cuts, .. } = &s[0].action else {
        panic!()
    };
    assert_eq!(cuts.len(), 2, "both ways");
    let Action::Partition { cuts, .. } = &s[1].action else {
        panic!()
    };
    assert_eq!(
        cuts,
        &vec![(vec!["c1".to_string()], vec!["fs1".to_string()])],
        "one way"
    );
}

#[test]
fn random_schedules_are_deterministic_for_a_seed_and_differ_across_seeds() {
    let faults = "  - { kind: random, kinds: [kill, pause, partition, reset, blackhole], at: 1s, every: 3s, for: 1s, count: 20 }\n";
    let a = schedule(&plan(faults));
    let b = schedule(&plan(faults));
    assert_eq!(a, b);
    assert_eq!(a.len(), 20);
    assert_eq!(a[19].at, Duration::from_secs(1 + 19 * 3));
    let kinds: std::collections::BTreeSet<&str> = a.iter().map(|s| s.action.kind()).collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
    let other = parse_str(
        "f.yaml",
        &format!("{}{faults}", HEAD.replace("seed: 7", "seed: 8")),
    )
    .unwrap();
    assert_ne!(schedule(&other), a);
    for s in &a {
        if let Action::Kill { node, .. } | Action::Pause { node } = &s.action {
            assert!(
                node.starts_with("fs"),
                "process faults pick servers: {node}"
            );
        }
    }
    let e = errors("  - { kind: random, kinds: [impair], at: 0s, every: 2s, for: 1s, count: 2 }\n");
    assert!(e.contains("`impair` cannot be drawn at random"), "{e}");
}

#[test]
fn choose_picks_the_right_number_of_nodes() {
    let p = plan("  - { kind: partition, choose: majority, at: 0s, for: 1s }\n  - { kind: partition, choose: minority, among: [fs1, fs2, c1], at: 2s, for: 1s }\n");
    let s = schedule(&p);
    let Action::Partition { cuts, .. } = &s[0].action else {
        panic!()
    };
    assert_eq!(cuts[0].0.len(), 3, "3 of 5 nodes");
    let Action::Partition { cuts, .. } = &s[1].action else {
        panic!()
    };
    assert_eq!((cuts[0].0.len(), cuts[0].1.len()), (1, 2));
}

#[test]
fn repeats_must_not_overlap_themselves() {
    let e = errors("  - { kind: blackhole, node: c1, at: 0s, every: 1s, for: 2s, count: 3 }\n");
    assert!(e.contains("must be shorter than `every`"), "{e}");
}

#[test]
fn power_cut_needs_a_lossy_share_on_any_provider() {
    assert_eq!(
        errors("  - { kind: power_cut, node: fs1, at: 1s, for: 1s }\n"),
        "f.yaml:8:30: a `power_cut` loses what was not synced on `disk: lossy` shares, and `fs1` has none; add `disk: lossy` to a share (or use `crash`)"
    );
    let lossy = "version: 1\nname: f\ntopology:\n  servers: [{ name: fs1, shares: [{ name: s, disk: lossy }] }]\nfaults:\n  - { kind: power_cut, node: fs1, at: 1s, for: 300ms }\n";
    let p = parse_str("f.yaml", lossy).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        schedule(&p)[0].action,
        Action::PowerCut { node: "fs1".into() }
    );
    assert!(schedule(&p)[0].action.heals());
    let docker = lossy.replace("topology:\n", "topology:\n  provider: docker\n");
    let p = parse_str("f.yaml", &docker).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.topology.provider, smbchaos_plan::model::Provider::Docker);
    let bad = lossy.replace("disk: lossy", "disk: flaky");
    let e = parse_str("f.yaml", &bad).unwrap_err().to_string();
    assert!(
        e.contains("unknown variant `flaky`") || e.contains("unknown value `flaky`"),
        "{e}"
    );
}

#[test]
fn message_faults_schedule_what_they_name() {
    let p = plan(
        "  - kind: message\n    node: fs1\n    peer: c1\n    message: { command: write, sent_by: server, status: STATUS_SUCCESS, nth: 3 }\n    action: hold\n    release: drop\n    at: 1s\n    for: 2s\n  - { kind: message, node: fs1, message: { command: oplock_break, sent_by: server }, action: delay, delay: 300ms, at: 1s }\n  - { kind: hold, node: c1, peer: fs1, direction: egress, port: 445, at: 0s, for: 1s }\n",
    );
    let s = schedule(&p);
    let json = serde_json::to_value(&s[1].action).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"kind": "message", "node": "fs1", "peer": "c1", "command": "write",
            "sent_by": "server", "status": 0, "nth": 3, "action": "hold", "release": "drop"})
    );
    assert!(matches!(
        &s[2].action,
        Action::Message { delay: Some(d), nth: 1, .. } if *d == Duration::from_millis(300)
    ));
    assert!(matches!(
        &s[0].action,
        Action::Hold {
            port: Some(445),
            ..
        }
    ));
    assert!(s.iter().all(|o| o.action.heals()));
}

#[test]
fn message_faults_refuse_what_cannot_match() {
    let e = errors("  - { kind: message, node: c1, message: { command: create, status: 0xC0000034, nth: 0 }, action: delay, release: drop, at: 0s }\n");
    for want in [
        "f.yaml:8:28: a `message` fault acts on a server, and `c1` is a client",
        "`status` matches responses: add `sent_by: server`",
        "`nth` counts from 1",
        "`action: delay` needs `delay`",
        "`release` applies only to `action: hold`",
    ] {
        assert!(e.contains(want), "{want}\n{e}");
    }
    let e = errors("  - { kind: message, node: fs1, message: { command: write, sent_by: server, status: STATUS_NOPE }, action: drop, at: 0s }\n");
    assert!(
        e.contains("unknown status `STATUS_NOPE`: give it as hex"),
        "{e}"
    );
    let e = errors(
        "  - { kind: message, node: fs1, message: { command: wrte }, action: drop, at: 0s }\n",
    );
    assert!(e.starts_with("f.yaml:8:"), "{e}");
    let e = errors("  - { kind: message, node: fs1, action: drop, at: 0s }\n");
    assert!(e.contains("needs `message`"), "{e}");
    let e =
        errors("  - { kind: random, kinds: [message], every: 2s, count: 2, for: 1s, at: 0s }\n");
    assert!(e.contains("`message` cannot be drawn at random"), "{e}");
}

#[test]
fn a_message_fault_against_a_server_that_requires_encryption_is_refused_where_it_is() {
    let yaml = "version: 1\nname: f\ntopology:\n  servers:\n    - name: fs1\n      global: { \"server smb encrypt\": required }\n  clients: [{ name: c1 }]\nfaults:\n  - { kind: message, node: fs1, message: { command: write }, action: drop, at: 0s }\n";
    let e = parse_str("enc.yaml", yaml).unwrap_err().to_string();
    assert!(
        e.starts_with("enc.yaml:9:13: a `message` fault reads SMB2 headers on the wire, and `fs1` sets `server smb encrypt = required`"),
        "{e}"
    );
    // A share that requires it is refused the same way; `desired` is not.
    let share = yaml.replace(
        "global: { \"server smb encrypt\": required }",
        "shares: [{ name: share, options: { \"smb encrypt\": mandatory } }]",
    );
    assert!(parse_str("enc.yaml", &share).is_err());
    let desired = yaml.replace("required", "desired");
    parse_str("enc.yaml", &desired).unwrap();
}
