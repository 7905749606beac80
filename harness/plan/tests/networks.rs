//! Networks in plans: which networks nodes join, their addresses per network, clusters'
//! public and private networks, and the errors (with line and column) a plan can get wrong.

use std::net::Ipv4Addr;

use smbchaos_plan::{attachments, networks, Action};

fn parse(body: &str) -> Result<smbchaos_plan::Plan, smbchaos_plan::PlanError> {
    smbchaos_plan::parse_str("n.yaml", &format!("version: 1\nname: n\n{body}"))
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

#[test]
fn without_networks_every_node_is_on_one_network_with_todays_addresses() {
    let p = parse("topology:\n  servers: [{name: fs1}]\n  clients: [{name: c1}, {name: c2, address: 198.19.1.1}]\n").unwrap();
    let nets = networks(&p);
    assert_eq!(nets.len(), 1);
    assert_eq!(
        (nets[0].name.as_str(), nets[0].cidr()),
        ("lab", "198.18.0.0/15".into())
    );
    let a = attachments(&p);
    assert_eq!(a["fs1"].len(), 1);
    assert_eq!(a["fs1"][0].interface, "eth0");
    assert_eq!(a["fs1"][0].address, ip("198.18.0.10"));
    assert_eq!(a["fs1"][0].prefix_len, 15);
    assert_eq!(a["c1"][0].address, ip("198.18.0.11"));
    assert_eq!(a["c2"][0].address, ip("198.19.1.1"));
}

const TWO: &str = "topology:
  networks:
    - name: storage
      subnet: 198.18.1.0/24
      rate: 1gbit
    - name: mgmt
      subnet: 198.18.2.0/28
      capture: false
  servers: [{name: fs1, networks: [storage, mgmt]}]
  clients:
    - {name: c1, networks: [mgmt, storage]}
    - {name: c2}
";

#[test]
fn nodes_get_one_interface_and_address_per_network() {
    let p = parse(TWO).unwrap();
    let nets = networks(&p);
    assert_eq!(nets[0].rate_bps, Some(1_000_000_000));
    assert!(!nets[1].capture && nets[0].capture);
    let a = attachments(&p);
    let fs1: Vec<_> = a["fs1"]
        .iter()
        .map(|l| {
            (
                l.network.as_str(),
                l.interface.as_str(),
                l.address,
                l.prefix_len,
            )
        })
        .collect();
    assert_eq!(
        fs1,
        [
            ("storage", "eth0", ip("198.18.1.10"), 24),
            ("mgmt", "eth1", ip("198.18.2.10"), 28)
        ]
    );
    assert_eq!(a["c1"][0].network, "mgmt");
    assert_eq!(a["c1"][0].address, ip("198.18.2.11"));
    assert_eq!(a["c1"][1].address, ip("198.18.1.11"));
    // No `networks`: the first network only.
    assert_eq!(a["c2"].len(), 1);
    assert_eq!(a["c2"][0].address, ip("198.18.1.12"));
    // The primary address is the first network's.
    assert_eq!(smbchaos_plan::addresses(&p)["c1"], ip("198.18.2.11"));
}

#[test]
fn undeclared_subnets_are_free_slash_24s_and_one_network_alone_spans_the_lab() {
    let p = parse("topology:\n  networks: [{name: a, subnet: 198.18.0.0/24}, {name: b}]\n  servers: [{name: fs1, networks: [a, b]}]\n").unwrap();
    assert_eq!(networks(&p)[1].cidr(), "198.18.1.0/24");
    let p = parse("topology:\n  networks: [{name: only}]\n  servers: [{name: fs1}]\n").unwrap();
    assert_eq!(networks(&p)[0].cidr(), "198.18.0.0/15");
    assert_eq!(attachments(&p)["fs1"][0].address, ip("198.18.0.10"));
}

const CLUSTER: &str = "topology:
  networks:
    - {name: public, subnet: 198.18.0.0/24}
    - {name: private, subnet: 198.18.100.0/24}
  clusters:
    - {name: ctdb, nodes: 2, networks: [public, private]}
  clients: [{name: c1, networks: [public]}]
";

#[test]
fn a_cluster_has_public_addresses_on_its_public_network_and_ctdb_on_its_private_one() {
    let p = parse(CLUSTER).unwrap();
    let c = &p.topology.clusters[0];
    assert_eq!(smbchaos_plan::networks::public_network(&p, c), "public");
    assert_eq!(smbchaos_plan::networks::private_network(&p, c), "private");
    let a = attachments(&p);
    assert_eq!(a["ctdb-0"][1].network, "private");
    assert_eq!(a["ctdb-0"][1].address, ip("198.18.100.10"));
    assert_eq!(
        smbchaos_plan::public_addresses(&p)["ctdb"],
        [ip("198.18.0.138"), ip("198.18.0.139")]
    );
}

#[test]
fn a_partition_can_be_scoped_to_one_network() {
    let body = format!(
        "{CLUSTER}faults:\n  - {{kind: partition, groups: [[ctdb-0], [ctdb-1]], network: private, at: 1s, for: 1s}}\n"
    );
    let p = parse(&body).unwrap();
    let s = smbchaos_plan::schedule(&p);
    assert!(matches!(
        &s[0].action,
        Action::Partition { network: Some(n), .. } if n == "private"
    ));
}

#[test]
fn bad_networks_are_reported_where_they_are_written() {
    let e = errors(
        "topology:
  networks:
    - {name: a, subnet: 10.0.0.0/24}
    - {name: b, subnet: 198.18.1.0/24}
    - {name: c, subnet: 198.18.0.0/16}
    - {name: b, subnet: 198.18.1.7/24, mtu: 20}
  servers: [{name: fs1, networks: [a, nowhere]}]
",
    );
    for want in [
        "n.yaml:5:25: subnet 10.0.0.0/24 is not inside the lab network 198.18.0.0/15",
        "n.yaml:7:25: subnet 198.18.0.0/16 overlaps subnet 198.18.1.0/24 (line 6)",
        "n.yaml:8:14: duplicate network `b` (first at line 6, column 14)",
        "n.yaml:8:25: subnet 198.18.1.7/24 has host bits set",
        "n.yaml:8:45: MTU 20 is outside 68..=65521",
        "n.yaml:9:39: unknown network `nowhere`; networks are: a, b, c",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let e = errors("topology:\n  servers: [{name: fs1, networks: [x]}]\n");
    assert!(
        e.contains("n.yaml:4:36: unknown network `x`; the plan declares no `topology.networks`"),
        "{e}"
    );
}

#[test]
fn a_client_must_share_a_network_with_its_server() {
    let body = "topology:
  networks: [{name: a}, {name: b}]
  servers: [{name: fs1, networks: [a]}]
  clients: [{name: c1, networks: [b]}]
workload:
  duration: 1s
  clients: [{node: c1, server: fs1}]
";
    let e = errors(body);
    assert!(
        e.contains("n.yaml:9:20: client `c1` shares no network with server `fs1`"),
        "{e}"
    );
    let cluster = format!(
        "{CLUSTER}  # ...
workload:
  duration: 1s
  clients: [{{node: c1, server: ctdb}}]
"
    );
    parse(&cluster).unwrap();
    let off = cluster.replace(
        "clients: [{name: c1, networks: [public]}]",
        "clients: [{name: c1, networks: [private]}]",
    );
    let e = errors(&off);
    assert!(
        e.contains("client `c1` does not join network `public`, where cluster `ctdb`'s public addresses are"),
        "{e}"
    );
}

#[test]
fn network_scoped_faults_name_nodes_on_that_network() {
    let e = errors(&format!(
        "{TWO}faults:\n  - {{kind: blackhole, node: c2, network: mgmt, at: 1s}}\n  - {{kind: kill, node: fs1, network: mgmt, at: 1s}}\n"
    ));
    assert!(
        e.contains("`c2` does not join network `mgmt`; it joins: storage"),
        "{e}"
    );
    assert!(e.contains("`network`"), "kill takes no network: {e}");
}

#[test]
fn the_kernel_wire_refuses_several_networks() {
    let e = errors(&TWO.replace("topology:\n", "topology:\n  wire: kernel\n"));
    assert!(
        e.contains(
            "`wire: kernel` is one bridge: several networks and rate caps need `wire: userspace`"
        ),
        "{e}"
    );
}

#[test]
fn a_cluster_public_network_must_be_one_its_nodes_join() {
    let e = errors(&CLUSTER.replace(
        "networks: [public, private]}",
        "networks: [private], public_network: public}",
    ));
    assert!(
        e.contains("cluster `ctdb`'s nodes do not join network `public`; they join: private"),
        "{e}"
    );
}

const MC: &str = "topology:
  networks:
    - {name: storage, subnet: 198.18.1.0/24}
    - {name: mgmt, subnet: 198.18.2.0/24}
    - {name: backup, subnet: 198.18.3.0/24}
  servers: [{name: fs1, networks: [storage, mgmt]}]
  clients:
    - {name: c1, networks: [storage, mgmt, backup]}
    - {name: admin, networks: [mgmt]}
";

#[test]
fn multichannel_and_its_expectations_parse() {
    let p = parse(&format!(
        "{MC}workload:
  duration: 5s
  clients:
    - {{node: c1, server: fs1, multichannel: {{networks: [storage], channels: 2}}}}
    - {{node: admin, server: fs1}}
expect:
  network_bytes:
    - {{node: c1, network: mgmt, at_most: 1%}}
    - {{node: c1, network: storage, at_least: 90%, at_most: 100%}}
  probe_latency: {{probe: admin, load: c1, at_most: 2}}
"
    ))
    .unwrap();
    let mc = p.workload.clients[0].multichannel.as_ref().unwrap();
    assert_eq!(mc.value.networks[0].value, "storage");
    assert_eq!(mc.value.channels.as_ref().unwrap().value, 2);
    assert_eq!(p.expect.network_bytes.len(), 2);
    assert_eq!(
        p.expect
            .probe_latency
            .as_ref()
            .unwrap()
            .at_most
            .as_ref()
            .unwrap()
            .value,
        2.0
    );
    // `{}`: every interface the server offers.
    let p = parse(&format!(
        "{MC}workload:\n  duration: 5s\n  clients:\n    - {{node: c1, server: fs1, multichannel: {{}}}}\n"
    ))
    .unwrap();
    assert!(p.workload.clients[0]
        .multichannel
        .as_ref()
        .unwrap()
        .value
        .networks
        .is_empty());
}

#[test]
fn bad_multichannel_settings_are_reported_where_they_are_written() {
    let e = errors(&format!(
        "{MC}workload:
  duration: 5s
  clients:
    - {{node: c1, server: fs1, multichannel: {{networks: [storage, nope, backup], channels: 0}}}}
    - {{node: admin, server: fs1, dialect: '2.1', multichannel: {{}}}}
expect:
  network_bytes:
    - {{node: c1, network: nope, at_most: 1%}}
    - {{node: admin, network: storage, at_least: 120%}}
    - {{node: c1, network: mgmt}}
    - {{node: ghost, network: mgmt, at_least: 50%, at_most: 10%}}
  probe_latency: {{probe: c2, load: c1, at_least: 4, at_most: -1}}
"
    ));
    for want in [
        "n.yaml:15:66: unknown network `nope`; networks are: storage, mgmt, backup",
        "n.yaml:15:72: `fs1` does not join network `backup`, so no channel can use it",
        "n.yaml:15:91: `channels` counts the first channel too: at least 1",
        "n.yaml:16:64: `multichannel` needs an SMB 3.x dialect",
        "n.yaml:19:27: unknown network `nope`",
        "n.yaml:20:30: `admin` does not join network `storage`; it joins: mgmt",
        "n.yaml:20:49: 120% is outside 0-100 %",
        "n.yaml:21:14: a `network_bytes` entry needs `at_least`, `at_most` or both",
        "n.yaml:22:14: unknown node `ghost`",
        "n.yaml:22:46: `at_least` 50% is above `at_most` 10%",
        "n.yaml:23:26: `c2` runs no `workload.clients` entry",
        "n.yaml:23:50: `at_least` 4 is above `at_most` -1",
        "n.yaml:23:62: a slowdown factor is a number above 0",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}
