//! The docker provider for real. A CTDB cluster in containers: three containers of the Samba
//! image each running ctdbd (normal mode) and clustered smbd, joined to the userspace wire,
//! sharing one bind-mounted directory with the recovery lock. Readiness, a node crash and
//! the takeover of its public address, then teardown leaving no container behind — on each
//! Samba version. And the VFS preflight of a docker plan, answered by the image. Needs root,
//! Docker and the images (`smbchaos images build`).

use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Lab, LabOptions};

fn plan(version: &str) -> plan::Plan {
    let text = format!(
        r#"
version: 1
name: docker-cluster-test
topology:
  provider: docker
  clusters:
    - name: ctdb
      nodes: 3
      samba: "{version}"
  clients:
    - name: c1
"#
    );
    plan::parse_str("docker-cluster-test.yaml", &text).expect("plan")
}

/// `docker ps -a` names of this run's containers.
fn containers_of(run_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--filter",
            &format!("label=smbchaos.run={run_id}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps (the docker provider needs Docker: scripts/setup installs it)");
    assert!(out.status.success(), "docker ps: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `smbd --version` and `ctdb version` as a node runs them (inside its container).
async fn versions_on(lab: &Lab, node: &str) -> String {
    let (cluster, pnn) = lab.cluster_of(node).expect("cluster node");
    let ctdb = cluster.ctdb[pnn].lock().await.ctl(&["version"]).await;
    ctdb.expect("ctdb version").trim().to_string()
}

async fn crash_and_takeover(version: &str) {
    let plan = plan(version);
    let started = Instant::now();
    let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
    eprintln!(
        "samba {version}: docker cluster ready in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let run_id = lab.run_id().to_string();
    assert_eq!(
        containers_of(&run_id).len(),
        3,
        "one container per cluster node"
    );
    // The daemons are the image's: ctdb's own version says which Samba it belongs to.
    let ctdb_version = versions_on(&lab, "ctdb-0").await;
    assert!(
        ctdb_version.starts_with(version),
        "ctdb-0 runs ctdb {ctdb_version}, not {version}"
    );
    let status = lab.cluster_status("ctdb").await.expect("status");
    assert!(status.healthy(), "{status:?}");
    let cluster = lab.cluster("ctdb").expect("cluster");
    // Crash the node hosting the first public address, as the nemesis does: links cut,
    // every process killed. Another node must take the address over and serve it.
    let address = cluster.public_addresses[0];
    let holder = status.addresses[&address];
    assert!(holder >= 0, "{address} unhosted: {status:?}");
    let victim = cluster.nodes[holder as usize].clone();
    let others: Vec<String> = lab
        .nodes()
        .map(|n| n.name.clone())
        .filter(|n| *n != victim)
        .collect();
    let cut = lab
        .partition(std::slice::from_ref(&victim), &others, None)
        .expect("cut");
    let crashed = Instant::now();
    let killed = lab.cluster_kill_node(&victim).await.expect("kill");
    assert!(!killed.is_empty(), "no process of {victim} was killed");
    let deadline = crashed + Duration::from_secs(30);
    let new_holder = loop {
        if let Ok(s) = lab.cluster_status("ctdb").await {
            if let Some(&n) = s.addresses.get(&address) {
                if n >= 0 && n != holder {
                    break n;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{address} not taken over from {victim} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "samba {version}: {address} moved from pnn {holder} to pnn {new_holder} {:.2} s after the crash",
        crashed.elapsed().as_secs_f64()
    );
    // Served through the moved address from the client: TREE_CONNECT through it.
    let (user, password) = lab.credentials();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stream = lab
            .connect("c1", std::net::SocketAddr::from((address, 445)))
            .await;
        let served = match stream {
            Ok(stream) => {
                let opts = smb2::TreeConnectOptions::new(
                    smb2::Credentials::new(user, password),
                    format!(r"\\{address}\share"),
                );
                smb2::connect_tree(stream, &opts).await.is_ok()
            }
            Err(_) => false,
        };
        if served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{address} not served after the takeover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The crashed node comes back (without its addresses) and the whole cluster is ready.
    lab.cluster_forget_addresses(&victim).await.expect("forget");
    lab.repair(cut).expect("repair");
    lab.cluster_restore_node(&victim)
        .await
        .expect("the crashed node rejoins and every address is served");
    lab.down().await.expect("down");
    assert!(
        containers_of(&run_id).is_empty(),
        "containers left behind: {:?}",
        containers_of(&run_id)
    );
    assert!(
        lab::netns::list()
            .iter()
            .all(|n| !n.starts_with(&format!("sc-{run_id}-"))),
        "namespaces left behind"
    );
    assert!(
        !std::path::Path::new(lab::LAB_DIR_ROOT)
            .join(&run_id)
            .exists(),
        "lab directory left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_cluster_4_17_takes_over_a_crashed_node() {
    crash_and_takeover("4.17").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_cluster_4_22_takes_over_a_crashed_node() {
    crash_and_takeover("4.22").await;
}

/// The VFS preflight of a docker plan looks inside the image, not at the host: a module the
/// image has passes, one it lacks is named with the image and the recipe to change.
#[test]
fn vfs_preflight_of_a_docker_plan_looks_inside_the_image() {
    for version in ["4.17", "4.22"] {
        let text = format!(
            r#"
version: 1
name: docker-vfs-test
topology:
  provider: docker
  servers:
    - name: fs1
      samba: "{version}"
      shares:
        - name: share
          options: {{ "vfs objects": "fruit streams_xattr no_such_module" }}
"#
        );
        let plan = plan::parse_str("docker-vfs-test.yaml", &text).expect("plan");
        let missing = lab::capabilities::missing_vfs_modules(&plan);
        let tag = lab::images::samba_tag(version.parse().unwrap());
        assert_eq!(missing.len(), 1, "{missing:#?}");
        let m = &missing[0];
        assert!(
            m.name.contains("no_such_module") && m.name.contains(&tag),
            "{m}"
        );
        assert!(
            m.detail.contains(&format!("image {tag} (Samba {version})"))
                && m.detail.contains("vfs/no_such_module.so"),
            "{m}"
        );
        assert!(
            m.fix
                .contains(&format!("containers/samba-{version}/Dockerfile")),
            "{m}"
        );
        // The image's own module directory answered: fruit and streams_xattr were found.
        let (_, modules) = lab::images::smbd_modules(version.parse().unwrap()).expect("image");
        let listed = modules.listed.expect("listing from the image");
        assert!(listed.iter().any(|f| f == "fruit.so"), "{listed:?}");
    }
}
