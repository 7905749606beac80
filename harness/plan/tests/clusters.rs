//! Clusters in plans: node names and addresses, public addresses, and the errors (with their
//! line and column) a cluster plan can get wrong.

use std::net::Ipv4Addr;

fn parse(body: &str) -> Result<smbchaos_plan::Plan, smbchaos_plan::PlanError> {
    smbchaos_plan::parse_str("c.yaml", &format!("version: 1\nname: c\n{body}"))
}

fn errors(body: &str) -> String {
    match parse(body) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(e) => e.to_string(),
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const BASE: &str = "topology:\n  clusters:\n    - name: ctdb\n  clients: [{name: c1}]\n";

#[test]
fn cluster_nodes_get_addresses_and_public_addresses_come_from_198_19() {
    let p = parse(BASE).unwrap();
    assert_eq!(
        p.topology.clusters[0].node_names(),
        ["ctdb-0", "ctdb-1", "ctdb-2"]
    );
    let a = smbchaos_plan::addresses(&p);
    assert_eq!(a["ctdb-0"], ip("198.18.0.10"));
    assert_eq!(a["ctdb-2"], ip("198.18.0.12"));
    assert_eq!(a["c1"], ip("198.18.0.13"));
    let publics = smbchaos_plan::public_addresses(&p);
    assert_eq!(
        publics["ctdb"],
        [ip("198.19.0.10"), ip("198.19.0.11"), ip("198.19.0.12")]
    );
}

#[test]
fn clients_name_a_cluster_and_may_pin_a_public_address() {
    let body = format!(
        "{BASE}workload:\n  duration: 1s\n  clients:\n    - {{node: c1, server: ctdb, via: 198.19.0.11}}\n"
    );
    parse(&body).unwrap();
    let bad = format!(
        "{BASE}workload:\n  duration: 1s\n  clients:\n    - {{node: c1, server: ctdb, via: 198.19.0.99}}\n"
    );
    let e = errors(&bad);
    assert!(
        e.contains("c.yaml:10:")
            && e.contains("198.19.0.99 is not a public address of cluster `ctdb`"),
        "{e}"
    );
}

#[test]
fn bad_clusters_are_reported_where_they_are_written() {
    let e = errors(
        "topology:\n  clusters:\n    - name: much-too-long-name\n      nodes: 9\n      public_addresses: [10.0.0.1]\n",
    );
    assert!(
        e.contains("c.yaml:5:13: invalid cluster name `much-too-long-name`"),
        "{e}"
    );
    assert!(
        e.contains("c.yaml:6:14: a cluster has 1 to 8 nodes, not 9"),
        "{e}"
    );
    assert!(
        e.contains("c.yaml:7:26: public address 10.0.0.1 is not a host address"),
        "{e}"
    );
}

#[test]
fn cluster_faults_are_checked() {
    let ok = format!(
        "{BASE}faults:\n  - {{kind: crash, address: 198.19.0.10, at: 1s, for: 2s}}\n  - {{kind: kill, node: ctdb-1, process: ctdbd, at: 1s, for: 1s}}\n  - {{kind: moveip, node: ctdb, address: 198.19.0.11, at: 2s}}\n  - {{kind: partition, groups: [[ctdb-0], [ctdb-1, ctdb-2]], port: 4379, at: 1s, for: 1s}}\n"
    );
    let p = parse(&ok).unwrap();
    assert_eq!(smbchaos_plan::schedule(&p).len(), 4);
    let e = errors(&format!(
        "{BASE}faults:\n  - {{kind: crash, address: 198.19.9.9, at: 1s}}\n  - {{kind: kill, node: c1, process: smbd, at: 1s}}\n  - {{kind: moveip, node: ctdb-1, address: 198.19.0.99, at: 1s}}\n"
    ));
    assert!(
        e.contains("198.19.9.9 is not a public address of any cluster"),
        "{e}"
    );
    assert!(
        e.contains("`process` picks a daemon of a cluster node"),
        "{e}"
    );
    assert!(
        e.contains("198.19.0.99 is not a public address of cluster `ctdb`"),
        "{e}"
    );
}

#[test]
fn admin_and_isolate_faults_are_checked() {
    let ok = format!(
        "{BASE}faults:\n  - {{kind: admin, command: ban, ban_time: 30s, node: ctdb-1, at: 1s, for: 2s}}\n  - {{kind: admin, command: stop, node: ctdb-0, at: 4s, for: 2s}}\n  - {{kind: isolate, node: ctdb-2, at: 8s, for: 2s}}\n"
    );
    let p = parse(&ok).unwrap();
    let s = smbchaos_plan::schedule(&p);
    assert_eq!(s.len(), 3);
    assert_eq!(
        s[0].action,
        smbchaos_plan::Action::Admin {
            node: "ctdb-1".into(),
            command: smbchaos_plan::AdminCommand::Ban,
            ban_time: Some(std::time::Duration::from_secs(30)),
        }
    );
    assert!(s.iter().all(|o| o.action.heals()));
    let e = errors(&format!(
        "{BASE}faults:\n  - {{kind: admin, node: ctdb-1, at: 1s}}\n  - {{kind: admin, command: disable, ban_time: 5s, node: ctdb-1, at: 1s}}\n  - {{kind: isolate, node: c1, at: 1s}}\n"
    ));
    for want in [
        "c.yaml:8:12: an `admin` fault needs `command`: stop, disable or ban",
        "c.yaml:9:47: `ban_time` applies to `command: ban` only",
        "an `isolate` fault acts on a cluster node, and `c1` is not one",
    ] {
        assert!(e.contains(want), "{want:?} not in:\n{e}");
    }
}

/// Witness needs Samba 4.20+: a witness cluster on 4.17 or netns, a witness client of a
/// cluster without it (or of a plain server), and a `client_move` on such a cluster are
/// refused where they are written, with the fix.
#[test]
fn witness_needs_a_4_22_docker_cluster_running_it() {
    let good = "topology:\n  provider: docker\n  clusters:\n    - {name: ctdb, samba: \"4.22\", witness: true}\n  clients: [{name: c1}]\nworkload:\n  duration: 1s\n  clients:\n    - {node: c1, server: ctdb, witness: true}\nfaults:\n  - {kind: client_move, node: ctdb-1, address: 198.19.0.12, at: 1s}\n";
    let p = parse(good).unwrap();
    assert!(p.topology.clusters[0].witness.value);
    assert!(p.workload.clients[0].witness.value);

    let e = errors(&good.replace("samba: \"4.22\", ", ""));
    assert!(
        e.contains("c.yaml:6:")
            && e.contains("Witness service, which Samba has from 4.20 on")
            && e.contains("add `samba: \"4.22\"`"),
        "{e}"
    );
    let e = errors(&good.replace("  provider: docker\n", ""));
    assert!(
        e.contains("on the netns provider") && e.contains("`provider: docker`"),
        "{e}"
    );

    let no_service = good.replace(", witness: true}\n  clients", "}\n  clients");
    let e = errors(&no_service);
    assert!(
        e.contains("c.yaml:11:") && e.contains("add `witness: true` to the cluster"),
        "{e}"
    );
    assert!(
        e.contains("runs no Witness service"),
        "client_move too: {e}"
    );

    let plain = "topology:\n  servers: [{name: fs1}]\n  clients: [{name: c1}]\nworkload:\n  duration: 1s\n  clients:\n    - {node: c1, server: fs1, witness: true}\n";
    let e = errors(plain);
    assert!(
        e.contains("c.yaml:9:") && e.contains("`fs1` is not a cluster"),
        "{e}"
    );

    let e = errors(&good.replace("198.19.0.12", "198.19.0.99"));
    assert!(e.contains("198.19.0.99 is not a public address"), "{e}");
    let e = errors(&good.replace("node: ctdb-1, address", "node: c1, address"));
    assert!(
        e.contains("`c1` is not one") || e.contains("not a server"),
        "{e}"
    );
}
