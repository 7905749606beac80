//! Networks for real: each a segment of the userspace wire of its own, nodes with one TAP
//! per network they join, nothing crossing between networks, faults and rate caps scoped to
//! one network, and a CTDB cluster whose private network is a network of its own.
//! Needs root, smbd and (the cluster test) ctdb.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use lab::{netns, Lab, LabOptions};

const TWO: &str = r#"
version: 1
name: networks-test
topology:
  networks:
    - { name: storage, subnet: 198.18.1.0/24 }
    - { name: mgmt, subnet: 198.18.2.0/24 }
  servers:
    - { name: fs1, networks: [storage, mgmt] }
  clients:
    - { name: ca, networks: [storage] }
    - { name: cb, networks: [mgmt] }
    - { name: cx, networks: [storage, mgmt] }
"#;

fn capture_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("smbchaos-networks-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A session and TREE_CONNECT to fs1's share at `address`, from `from`.
async fn tree_connect(lab: &Lab, from: &str, address: Ipv4Addr) -> Result<(), String> {
    let stream = tokio::time::timeout(
        Duration::from_secs(3),
        lab.connect(from, SocketAddr::from((address, 445))),
    )
    .await
    .map_err(|_| format!("connect to {address} timed out"))?
    .map_err(|e| e.to_string())?;
    let (user, password) = lab.credentials();
    let mut opts = smb2::TreeConnectOptions::new(
        smb2::Credentials::new(user, password),
        format!(r"\\{address}\share"),
    );
    opts.timeout = Duration::from_secs(5);
    let connected = smb2::connect_tree(stream, &opts)
        .await
        .map_err(|e| format!("{} {}", e.step, e.error))?;
    connected.connection.close().await;
    Ok(())
}

async fn down(lab: Lab) {
    let run_id = lab.run_id().to_string();
    lab.down().await.expect("down");
    assert!(
        netns::list()
            .iter()
            .all(|n| !n.starts_with(&format!("sc-{run_id}-"))),
        "namespaces left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_networks_are_separate_segments_with_their_own_counters_and_captures() {
    let plan = plan::parse_str("networks-test.yaml", TWO).expect("plan");
    let dir = capture_dir("segments");
    let options = LabOptions {
        capture_dir: Some(dir.clone()),
        ..Default::default()
    };
    let lab = Lab::up(&plan, options).await.expect("lab up");
    let storage = lab.address_on("fs1", "storage").unwrap();
    let mgmt = lab.address_on("fs1", "mgmt").unwrap();
    assert_eq!(
        (storage, mgmt),
        (
            "198.18.1.10".parse().unwrap(),
            "198.18.2.10".parse().unwrap()
        )
    );
    assert_eq!(lab.address_on("ca", "mgmt"), None);

    // Each client is served on its own network.
    tree_connect(&lab, "ca", storage)
        .await
        .expect("ca over storage");
    tree_connect(&lab, "cb", mgmt).await.expect("cb over mgmt");

    // ca has no route to the management network at all...
    let err = lab
        .connect("ca", SocketAddr::from((mgmt, 445)))
        .await
        .expect_err("ca reached fs1's management address");
    assert!(err.to_string().contains("unreachable"), "{err}");
    // ...and given one by hand, its frames still stay on the storage segment: its ARP
    // broadcast for fs1's management address floods storage, never reaches cb on mgmt, and
    // fs1 answers ARP for an address only on that address's own network.
    let ns = lab.netns_name("ca").unwrap().to_string();
    let route = std::process::Command::new("ip")
        .args(["-n", &ns, "route", "add", "198.18.2.0/24", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(route.status.success(), "{route:?}");
    let ca_before = lab.link_counters_on("ca", Some("storage")).unwrap();
    let cb_before = lab.link_counters_on("cb", Some("mgmt")).unwrap();
    let fs1_mgmt_before = lab.link_counters_on("fs1", Some("mgmt")).unwrap();
    let attempt = tokio::time::timeout(
        Duration::from_secs(2),
        lab.connect("ca", SocketAddr::from((mgmt, 445))),
    )
    .await;
    assert!(
        !matches!(attempt, Ok(Ok(_))),
        "ca reached fs1's management address across segments"
    );
    let ca_after = lab.link_counters_on("ca", Some("storage")).unwrap();
    assert!(
        ca_after.egress_frames > ca_before.egress_frames,
        "ca sent nothing (no ARP): the test proves nothing"
    );
    assert_eq!(
        lab.link_counters_on("cb", Some("mgmt"))
            .unwrap()
            .ingress_frames,
        cb_before.ingress_frames,
        "a frame from the storage network reached the management network"
    );
    assert_eq!(
        lab.link_counters_on("fs1", Some("mgmt"))
            .unwrap()
            .ingress_frames,
        fs1_mgmt_before.ingress_frames,
        "fs1's management link received storage traffic"
    );

    // Counters per network link, named by network.
    let all = lab.all_link_counters();
    let keys: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ca.storage",
            "cb.mgmt",
            "cx.mgmt",
            "cx.storage",
            "fs1.mgmt",
            "fs1.storage"
        ]
    );
    assert!(all["fs1.mgmt"].ingress_bytes > 0 && all["fs1.storage"].ingress_bytes > 0);
    // No routing between networks anywhere.
    let forward = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.netns_name("cx").unwrap(),
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&forward.stdout).trim(), "0");
    down(lab).await;

    // A capture per node and network, and none for a network a node does not join.
    for f in [
        "fs1.storage.pcap",
        "fs1.mgmt.pcap",
        "ca.storage.pcap",
        "cb.mgmt.pcap",
    ] {
        let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 24, "{f}: {len} bytes (a pcap header is 24)");
    }
    assert!(!dir.join("ca.mgmt.pcap").exists() && !dir.join("fs1.pcap").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partition_of_one_network_leaves_the_other_carrying_smb() {
    let plan = plan::parse_str("networks-test.yaml", TWO).expect("plan");
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    let storage = lab.address_on("fs1", "storage").unwrap();
    let mgmt = lab.address_on("fs1", "mgmt").unwrap();
    tree_connect(&lab, "cx", storage)
        .await
        .expect("before: storage");

    let cut = lab
        .partition_on(&["cx".into()], &["fs1".into()], None, Some("storage"))
        .unwrap();
    assert!(lab.is_cut_on("cx", "fs1", Some("storage")));
    assert!(!lab.is_cut_on("cx", "fs1", Some("mgmt")));
    assert!(
        !lab.reachable_on("cx", "fs1", Some("storage"), Duration::from_millis(800))
            .await,
        "the storage partition did not hold"
    );
    // The management network still carries SMB to the same server.
    tree_connect(&lab, "cx", mgmt)
        .await
        .expect("TREE_CONNECT over mgmt while storage is partitioned");
    assert!(lab.link_counters_on("cx", Some("storage")).unwrap().dropped > 0);
    assert_eq!(lab.link_counters_on("cx", Some("mgmt")).unwrap().dropped, 0);
    let links = cut.links(&lab);
    assert!(
        links.iter().all(|(_, _, n)| n == "storage") && !links.is_empty(),
        "{links:?}"
    );
    let dropped = lab.repair(cut).unwrap();
    assert!(dropped > 0, "the cut dropped nothing");
    assert!(lab.wire_is_clean());
    assert!(
        lab.reachable_on("cx", "fs1", Some("storage"), Duration::from_secs(3))
            .await
    );
    tree_connect(&lab, "cx", storage)
        .await
        .expect("after: storage");
    down(lab).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_network_rate_cap_holds_for_the_whole_run_and_is_not_a_fault() {
    // 20 Mbit/s: 2 MiB cannot cross in less than 0.84 s; uncapped it takes milliseconds.
    let text = TWO.replace(
        "{ name: mgmt, subnet: 198.18.2.0/24 }",
        "{ name: mgmt, subnet: 198.18.2.0/24, rate: 20mbit }",
    );
    let plan = plan::parse_str("networks-test.yaml", &text).expect("plan");
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    assert!(lab.wire_is_clean(), "a standing rate cap counts as a fault");
    let work = lab.node("cx").unwrap().dir.join("work");
    std::fs::write(work.join("blob"), vec![7u8; 2 << 20]).unwrap();
    let (user, password) = lab.credentials();
    let put = |address: Ipv4Addr| {
        let mut c = lab.command("cx", "smbclient").unwrap();
        c.arg(format!("//{address}/share"))
            .arg("-U")
            .arg(format!("{user}%{password}"))
            .arg("-c")
            .arg(format!("put blob blob-{address}"))
            .current_dir(&work);
        c
    };
    let capped = common::run_within(
        put(lab.address_on("fs1", "mgmt").unwrap()),
        "smbclient put over mgmt",
        Duration::from_secs(60),
    )
    .await;
    assert!(capped.ok, "{}", capped.report);
    assert!(
        capped.took >= Duration::from_millis(840),
        "2 MiB crossed a 20 Mbit/s network in {:?}",
        capped.took
    );
    let free = common::run_within(
        put(lab.address_on("fs1", "storage").unwrap()),
        "smbclient put over storage",
        Duration::from_secs(60),
    )
    .await;
    assert!(free.ok, "{}", free.report);
    eprintln!(
        "2 MiB put: capped {:?}, uncapped {:?} (load {})",
        capped.took,
        free.took,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    // An impairment on the capped link keeps the cap; its heal returns to the cap, not to
    // an uncapped link.
    let lossy = lab::wire::Impairment {
        loss: 0.01,
        ..Default::default()
    };
    lab.impair_on(
        "cx",
        Some("mgmt"),
        lab::wire::Direction::Egress,
        Some(lossy),
        1,
    )
    .unwrap();
    assert!(!lab.wire_is_clean());
    lab.impair_on("cx", Some("mgmt"), lab::wire::Direction::Egress, None, 0)
        .unwrap();
    assert!(lab.wire_is_clean());
    down(lab).await;
}

const CLUSTER: &str = r#"
version: 1
name: cluster-networks-test
topology:
  networks:
    - { name: public, subnet: 198.18.0.0/24 }
    - { name: private, subnet: 198.18.100.0/24 }
  clusters:
    - { name: ctdb, nodes: 3, networks: [public, private] }
  clients:
    - { name: c1, networks: [public] }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_on_its_own_private_network_splits_there_while_clients_reach_every_node() {
    let plan = plan::parse_str("cluster-networks-test.yaml", CLUSTER).expect("plan");
    let started = Instant::now();
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    eprintln!("cluster ready in {:.2} s", started.elapsed().as_secs_f64());
    let cluster = lab.cluster("ctdb").expect("cluster");
    let nodes = cluster.nodes.clone();
    // CTDB's node addresses are the private network's; public addresses on the public one.
    let ctdb_nodes =
        std::fs::read_to_string(lab.node("ctdb-0").unwrap().dir.join("ctdb/etc/nodes")).unwrap();
    let private: Vec<String> = nodes
        .iter()
        .map(|n| lab.address_on(n, "private").unwrap().to_string())
        .collect();
    assert_eq!(ctdb_nodes.lines().collect::<Vec<_>>(), private);
    assert!(private.iter().all(|a| a.starts_with("198.18.100.")));
    assert!(cluster
        .public_addresses
        .iter()
        .all(|a| a.to_string().starts_with("198.18.0.")));
    assert_eq!(cluster.public_interface, "eth0");
    let status = lab.cluster_status("ctdb").await.expect("status");
    assert!(status.healthy(), "{status:?}");

    // Split ctdb-2 from the others on the private network only.
    let cut = lab
        .partition_on(
            &["ctdb-2".to_string()],
            &["ctdb-0".to_string(), "ctdb-1".to_string()],
            None,
            Some("private"),
        )
        .unwrap();
    // CTDB notices: ctdb-0 sees ctdb-2 as not OK.
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let out = cluster.ctdb[0].lock().await.ctl(&["-X", "status"]).await;
        let view = out.map(|s| lab::ctdb::ClusterStatus::parse(&s, ""));
        if let Ok(v) = &view {
            if v.nodes.get(2).is_some_and(|f| f != "OK") {
                break v.nodes.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "ctdb-0 never saw ctdb-2 leave: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("ctdb-0's view during the split: {seen:?}");
    // The client still reaches every node over the public network.
    for n in &nodes {
        assert!(
            lab.reachable_on("c1", n, Some("public"), Duration::from_secs(3))
                .await,
            "c1 cannot reach {n} while only the private network is split"
        );
    }
    assert!(
        lab.link_counters_on("ctdb-2", Some("private"))
            .unwrap()
            .dropped
            > 0
    );
    assert_eq!(
        lab.link_counters_on("ctdb-2", Some("public"))
            .unwrap()
            .dropped,
        0
    );
    let dropped = lab.repair(cut).unwrap();
    assert!(dropped > 0);
    lab.wait_cluster_healthy("ctdb", lab::cluster::HEALTHY_TIMEOUT)
        .await
        .expect("healthy again after the split heals");
    down(lab).await;
}
