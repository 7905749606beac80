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
