//! A CTDB cluster for real: three namespaces each running ctdbd (normal mode) and clustered
//! smbd, one shared directory, public addresses served. Needs root, ctdb and Samba.

use std::time::Instant;

use lab::{netns, Lab, LabOptions};

const PLAN: &str = r#"
version: 1
name: cluster-test
topology:
  clusters:
    - name: ctdb
      nodes: 3
  clients:
    - name: c1
"#;

#[tokio::test(flavor = "multi_thread")]
async fn cluster_comes_up_healthy_and_serves_every_public_address() {
    let plan = plan::parse_str("cluster-test.yaml", PLAN).expect("plan");
    let started = Instant::now();
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    eprintln!("cluster ready in {:.2} s", started.elapsed().as_secs_f64());
    let run_id = lab.run_id().to_string();
    let status = lab.cluster_status("ctdb").await.expect("status");
    assert!(status.healthy(), "{status:?}");
    let cluster = lab.cluster("ctdb").expect("cluster");
    assert_eq!(cluster.nodes, ["ctdb-0", "ctdb-1", "ctdb-2"]);
    assert_eq!(status.addresses.len(), 3, "{status:?}");
    for a in &cluster.public_addresses {
        assert!(status.addresses[a] >= 0, "{a} unhosted: {status:?}");
    }
    // A file written through one public address is read back through another: one share.
    let (user, password) = lab.credentials();
    let (user, password) = (user.to_string(), password.to_string());
    let work = lab.node("c1").unwrap().dir.join("work");
    std::fs::write(work.join("hello.txt"), "through one, read through another").unwrap();
    let smbclient = |address: std::net::Ipv4Addr, command: &str| {
        let mut c = lab.command("c1", "smbclient").unwrap();
        c.arg(format!("//{address}/share"))
            .arg("-U")
            .arg(format!("{user}%{password}"))
            .arg("-c")
            .arg(command)
            .current_dir(&work);
        c
    };
    let put = smbclient(cluster.public_addresses[0], "put hello.txt")
        .output()
        .await
        .unwrap();
    assert!(put.status.success(), "{put:?}");
    let get = smbclient(cluster.public_addresses[2], "get hello.txt back.txt")
        .output()
        .await
        .unwrap();
    assert!(get.status.success(), "{get:?}");
    assert_eq!(
        std::fs::read_to_string(work.join("back.txt")).unwrap(),
        "through one, read through another"
    );
    // The node serving a connection is the one holding its public address, as the nodes'
    // own socket tables say.
    for (a, &pnn) in &status.addresses {
        let stream = lab
            .connect("c1", std::net::SocketAddr::from((*a, 445)))
            .await
            .unwrap();
        let local = stream.local_addr().unwrap();
        let served = lab.serving_node("ctdb", local).await;
        assert_eq!(
            served.as_deref(),
            Some(cluster.nodes[pnn as usize].as_str()),
            "{a}"
        );
    }
    // `ctdb disable` takes a node's address elsewhere; `enable` brings the cluster back to
    // all OK with every address hosted.
    let held: Vec<_> = status
        .addresses
        .iter()
        .filter(|(_, &p)| p == 1)
        .map(|(a, _)| *a)
        .collect();
    lab.cluster_admin("ctdb-1", &["disable"])
        .await
        .expect("disable");
    let out = lab
        .wait_addresses_left("ctdb-1", std::time::Duration::from_secs(20))
        .await
        .expect("addresses leave a disabled node");
    assert_eq!(out.nodes[1], "DISABLED", "{out:?}");
    for a in &held {
        assert!(out.addresses[a] >= 0 && out.addresses[a] != 1, "{out:?}");
    }
    lab.cluster_admin("ctdb-1", &["enable"])
        .await
        .expect("enable");
    lab.verify_cluster("ctdb")
        .await
        .expect("healthy after enable");
    lab.down().await.expect("down");
    assert!(
        netns::list()
            .iter()
            .all(|n| !n.starts_with(&format!("sc-{run_id}-"))),
        "namespaces left behind"
    );
    assert!(
        !std::path::Path::new("/sys/fs/cgroup/freezer/smbchaos")
            .join(&run_id)
            .exists(),
        "cgroup left behind"
    );
}
