//! The witness client against real Samba 4.22: a one-node CTDB cluster with two public
//! addresses and samba-dcerpcd (`--libexec-rpcds`, so rpcd_witness runs) inside the lab's
//! 4.22 container node, reached from a lab client node over the userspace wire.
//!
//! The fixture is built on the lab: `Lab::up` makes the container and the network; ctdbd
//! and samba-dcerpcd are started with `lab::process::command_in_root` (the container's
//! files, the node's network and freezer cgroup), so `Lab::down` (or its Drop on a failed
//! assertion) kills them with the node. Needs root, Docker and the Samba 4.22 image
//! (`smbchaos images build --samba 4.22`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::{Lab, LabOptions};
use smb2::ntlm::Credentials;
use witness::pdu::AuthLevel;
use witness::swn::{ipaddr_flags, notify_type, werror, WITNESS_REGISTER_IP_NOTIFICATION};
use witness::{Notification, RegisterEx, WitnessClient};

const PLAN: &str = r#"
version: 1
name: witness-test
topology:
  provider: docker
  servers:
    - name: fs1
      samba: "4.22"
  clients:
    - name: c1
"#;

/// The cluster's NetBIOS name: what RegisterEx's NetName must be.
const NET_NAME: &str = "WITCL";
const CLIENT_NAME: &str = "SMBCHAOS-C1";
/// Twelve public addresses, all hosted by the one node: 12 interfaces of 552 bytes make a
/// GetInterfaceList response larger than one 5840-byte fragment, so reassembly of sealed
/// response fragments is exercised against Samba.
fn publics() -> Vec<Ipv4Addr> {
    (200..212).map(|i| Ipv4Addr::new(198, 19, 0, i)).collect()
}

struct WitnessLab {
    lab: Lab,
    root: Arc<OwnedFd>,
    dir: PathBuf,
    daemons: Vec<tokio::process::Child>,
    creds: Credentials,
}

fn container_root(lab: &Lab) -> Arc<OwnedFd> {
    let name = lab::docker::container_name(lab.run_id(), "fs1");
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", &name])
        .output()
        .expect("docker inspect");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let f = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .unwrap_or_else(|e| panic!("container {name} (pid `{pid}`) mount namespace: {e}"));
    Arc::new(f.into())
}

impl WitnessLab {
    fn command(&self, program: &str) -> tokio::process::Command {
        let node = self.lab.node("fs1").unwrap();
        lab::process::command_in_root(&node.ns, &node.freezer, Some(&self.root), program).unwrap()
    }

    /// Run a shell script in the container to its end; its output on failure.
    async fn sh(&self, script: &str, deadline: Duration) -> String {
        let mut cmd = self.command("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = tokio::time::timeout(deadline, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("`{script}` did not end within {deadline:?}"))
            .unwrap_or_else(|e| panic!("`{script}`: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "`{script}` failed: {text}");
        text
    }

    /// Start a daemon in the foreground, its output into `<dir>/<log>`.
    fn daemon(&mut self, program: &str, args: &[&str], log: &str) {
        let out = std::fs::File::create(self.dir.join(log)).unwrap();
        let err = out.try_clone().unwrap();
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        self.daemons.push(child);
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Poll `script` until its output satisfies `ok`, or panic at the deadline with the
    /// last output and the daemons' logs.
    async fn wait_for(&self, what: &str, script: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut cmd = self.command("/bin/sh");
            cmd.arg("-c").arg(script).kill_on_drop(true);
            let text = match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
                Ok(Ok(o)) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
                other => format!("{other:?}"),
            };
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within 90 s; last `{script}` said:\n{text}\nctdbd:\n{}\ndcerpcd:\n{}",
                self.log("ctdbd.out"),
                self.log("dcerpcd.out")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn up() -> WitnessLab {
        let plan = plan::parse_str("witness-test.yaml", PLAN).expect("plan");
        let lab = Lab::up(&plan, LabOptions::default()).await.expect("lab up");
        let root = container_root(&lab);
        let node = lab.node("fs1").unwrap();
        let dir = node.dir.join("witness");
        for sub in [
            "private", "lock", "state", "cache", "run", "log", "ncalrpc", "share",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let address = lab.address("fs1");
        let (user, password) = lab.credentials();
        let creds = Credentials::new(user, password);
        let w = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        w(
            "ctdb.conf",
            format!(
                "[logging]\n\tlocation = file:{d}/ctdb.log\n\tlog level = NOTICE\n\
                 [cluster]\n\trecovery lock = {d}/reclock\n\tnode address = {address}\n\
                 \tleader timeout = 2\n[legacy]\n\trealtime scheduling = false\n",
                d = dir.display()
            ),
        );
        w("nodes", format!("{address}\n"));
        w(
            "public_addresses",
            publics()
                .iter()
                .map(|a| {
                    format!(
                        "{a}/{} {}\n",
                        lab::links::LAB_PREFIX_LEN,
                        lab::links::NODE_IF
                    )
                })
                .collect(),
        );
        w(
            "ctdb.tunables",
            lab::ctdb::TUNABLES
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect(),
        );
        w(
            "smb.conf",
            format!(
                "[global]\n\tclustering = yes\n\tnetbios name = {NET_NAME}\n\
                 \tworkgroup = SMBCHAOS\n\tserver role = standalone server\n\
                 \tpassdb backend = tdbsam\n\trpc start on demand helpers = no\n\
                 \tprivate dir = {d}/private\n\tlock directory = {d}/lock\n\
                 \tstate directory = {d}/state\n\tcache directory = {d}/cache\n\
                 \tpid directory = {d}/run\n\tncalrpc dir = {d}/ncalrpc\n\
                 \tlog file = {d}/log/log.%m\n\tlog level = 2\n\
                 [share]\n\tpath = {d}/share\n\tread only = no\n",
                d = dir.display()
            ),
        );
        let mut wl = WitnessLab {
            lab,
            root,
            dir: dir.clone(),
            daemons: Vec::new(),
            creds,
        };
        let d = dir.display();
        wl.sh(
            &format!(
                "set -e; mkdir -p /etc/ctdb/events/legacy /var/lib/ctdb /run/ctdb; \
                 cp {d}/ctdb.conf {d}/nodes {d}/public_addresses {d}/ctdb.tunables /etc/ctdb/; \
                 rm -f /etc/ctdb/events/legacy/*; \
                 ln -sf /usr/share/ctdb/events/legacy/00.ctdb.script /etc/ctdb/events/legacy/; \
                 ln -sf /usr/share/ctdb/events/legacy/10.interface.script /etc/ctdb/events/legacy/"
            ),
            Duration::from_secs(30),
        )
        .await;
        wl.daemon("/usr/sbin/ctdbd", &["--interactive"], "ctdbd.out");
        wl.wait_for("ctdb healthy", "ctdb status", |s| {
            s.contains("OK (THIS NODE)") && s.contains("Recovery mode:NORMAL")
        })
        .await;
        wl.wait_for("public addresses hosted", "ctdb ip", |s| {
            publics()
                .iter()
                .all(|a| s.lines().any(|l| l.starts_with(&format!("{a} 0"))))
        })
        .await;
        wl.sh(
            &format!(
                "printf '%s\\n%s\\n' '{p}' '{p}' | smbpasswd -c {d}/smb.conf -s -a '{u}'",
                p = wl.creds.password,
                u = wl.creds.user
            ),
            Duration::from_secs(30),
        )
        .await;
        let conf = format!("--configfile={d}/smb.conf");
        wl.daemon(
            "/usr/libexec/samba/samba-dcerpcd",
            &[
                "--libexec-rpcds",
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                &conf,
            ],
            "dcerpcd.out",
        );
        // Ready when the endpoint mapper, seen from the client, maps the witness interface.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match wl.ept_map().await {
                Ok(_) => break,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "the witness endpoint never appeared: {e}\ndcerpcd:\n{}",
                    wl.log("dcerpcd.out")
                ),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        wl
    }

    /// An SMB2 connection, session and tree connect to `share` through `address`, from c1.
    async fn smb(&self, address: Ipv4Addr) -> smb2::Connected {
        let at = SocketAddr::new(IpAddr::V4(address), 445);
        let stream = self.lab.connect("c1", at).await.expect("connect to 445");
        assert_eq!(stream.peer_addr().expect("peer"), at);
        let opts =
            smb2::TreeConnectOptions::new(self.creds.clone(), format!("\\\\{address}\\share"));
        smb2::connect_tree(stream, &opts)
            .await
            .unwrap_or_else(|e| panic!("SMB to {address}: {e}"))
    }

    fn server(&self) -> IpAddr {
        IpAddr::V4(self.lab.address("fs1"))
    }

    async fn ept_map(&self) -> Result<u16, witness::Error> {
        let at = SocketAddr::new(self.server(), witness::epm::EPM_PORT);
        let stream = self
            .lab
            .connect("c1", at)
            .await
            .map_err(|e| witness::Error::Io {
                context: format!("connect to {at}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        witness::client::ept_map_witness_on(stream).await
    }

    /// Endpoint mapper, then a witness association at packet privacy, from c1.
    async fn client(&self) -> WitnessClient {
        let port = self.ept_map().await.expect("ept_map");
        let at = SocketAddr::new(self.server(), port);
        let stream = self.lab.connect("c1", at).await.expect("connect");
        WitnessClient::bind_stream(stream, &self.creds, AuthLevel::PktPrivacy)
            .await
            .expect("bind at packet privacy")
    }

    async fn down(mut self) {
        for d in &mut self.daemons {
            let _ = d.start_kill();
        }
        self.lab.down().await.expect("lab down");
    }
}

fn within<T>(
    what: &str,
    secs: u64,
    f: impl std::future::Future<Output = T>,
) -> impl std::future::Future<Output = T> {
    let what = what.to_string();
    async move {
        tokio::time::timeout(Duration::from_secs(secs), f)
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s"))
    }
}

/// GetInterfaceList names exactly the cluster's public addresses; RegisterEx on one of
/// them (with an SMB connection there), AsyncNotify outstanding, `net witness client-move`
/// in the container: the notification is a CLIENT_MOVE to the address asked for, and the
/// SMB client reconnects there; Samba then drops the moved registration; `net witness
/// share-move` gives a SHARE_MOVE; UnRegister, and a second UnRegister is ERROR_NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witness_client_against_samba_4_22_ctdb() {
    let started = Instant::now();
    let wl = WitnessLab::up().await;
    let up_took = started.elapsed();
    let client = wl.client().await;

    let (_, received) = client.association().fragments();
    let list = within("GetInterfaceList", 20, client.get_interface_list())
        .await
        .expect("GetInterfaceList");
    let (sent, after) = client.association().fragments();
    assert!(
        after - received >= 2,
        "12 interfaces need 2 response fragments"
    );
    let mut got: Vec<Ipv4Addr> = list.iter().filter_map(|i| i.ipv4()).collect();
    got.sort();
    assert_eq!(got, publics(), "interfaces: {list:?}");
    for i in &list {
        assert_eq!(i.state, witness::swn::if_state::AVAILABLE, "{i:?}");
        assert_eq!(i.version, witness::swn::WITNESS_V2, "{i:?}");
        assert_eq!(i.group_name, NET_NAME.to_lowercase(), "{i:?}");
        // Every address is on the node this association reaches, so Samba offers none
        // as a witness interface (WITNESS_IF is for the other nodes' addresses).
        assert_eq!(i.flags, witness::swn::if_flags::IPV4_VALID, "{i:?}");
    }

    // A wrong NetName is refused (MS-SWN 3.1.4.5: ERROR_INVALID_PARAMETER).
    let mut args = RegisterEx {
        net_name: "NOT-THIS-CLUSTER".into(),
        share_name: Some("share".into()),
        ip_address: publics()[0].to_string(),
        client_computer_name: CLIENT_NAME.into(),
        flags: WITNESS_REGISTER_IP_NOTIFICATION,
        timeout: 120,
    };
    let refused = within("RegisterEx", 20, client.register_ex(&args)).await;
    assert_eq!(
        refused.as_ref().err().and_then(|e| e.werror()),
        Some(werror::ERROR_INVALID_PARAMETER),
        "{refused:?}"
    );
    args.net_name = NET_NAME.into();
    // The SMB connection the registration is about, on the first public address (ctdb put
    // it on the node's interface; the lab's smbd serves every address).
    let smb_before = wl.smb(publics()[0]).await;
    // A request larger than a fragment: sent as several sealed fragments, reassembled by
    // Samba, registered, and gone again after UnRegister.
    let long = RegisterEx {
        client_computer_name: "L".repeat(4000),
        ..args.clone()
    };
    let long_handle = within("RegisterEx in fragments", 20, client.register_ex(&long))
        .await
        .expect("RegisterEx sent in several fragments");
    let (sent_after, _) = client.association().fragments();
    assert!(
        sent_after - sent >= 3,
        "a refused RegisterEx, then one in 2 fragments"
    );
    within("UnRegister", 20, client.unregister(&long_handle))
        .await
        .expect("UnRegister of the fragmented registration");
    let handle = within("RegisterEx", 20, client.register_ex(&args))
        .await
        .expect("RegisterEx");
    assert!(!handle.is_null());

    let notify = {
        let c = client.clone();
        tokio::spawn(async move { c.async_notify(&handle).await })
    };
    let listed = wl
        .wait_for(
            "registration listed",
            &format!(
                "net --configfile={}/smb.conf witness list",
                wl.dir.display()
            ),
            |s| s.contains(CLIENT_NAME),
        )
        .await;
    assert!(listed.contains(&handle.uuid.to_string()), "{listed}");
    // The AsyncNotify stays outstanding while other calls go through on the same
    // association: Samba accepted PFC_CONC_MPX in bind_ack.
    assert!(client.association().multiplexed());
    let during = within(
        "GetInterfaceList while AsyncNotify is outstanding",
        20,
        client.get_interface_list(),
    )
    .await
    .expect("GetInterfaceList during AsyncNotify");
    assert_eq!(during, list);
    assert!(!notify.is_finished());
    assert!(
        !notify.is_finished(),
        "AsyncNotify answered before any event"
    );

    let moved_to = publics()[1];
    wl.sh(
        &format!(
            "net --configfile={}/smb.conf witness client-move \
             --witness-client-computer-name={CLIENT_NAME} --witness-new-ip={moved_to}",
            wl.dir.display()
        ),
        Duration::from_secs(30),
    )
    .await;
    let resp = within("AsyncNotify after client-move", 30, notify)
        .await
        .expect("notify task")
        .expect("AsyncNotify");
    assert_eq!(resp.message_type, notify_type::CLIENT_MOVE, "{resp:?}");
    let Some(Notification::ClientMove(addrs)) = resp.messages.first() else {
        panic!("not a CLIENT_MOVE: {resp:?}");
    };
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert_eq!(addrs[0].ipv4(), Some(moved_to), "{addrs:?}");
    assert_ne!(addrs[0].flags & ipaddr_flags::ONLINE, 0, "{addrs:?}");

    // The SMB client goes where it is told: a new connection, session and tree on the
    // address the CLIENT_MOVE named, and a file written there reads back.
    let target = resp
        .move_target()
        .expect("a CLIENT_MOVE names an online address");
    assert_eq!(target, moved_to);
    drop(smb_before);
    let smb_after = wl.smb(target).await;

    // Samba then drops a registration moved to another address after 5 s (so that a
    // client re-registers, rpcd_witness says): the next AsyncNotify ends ERROR_NOT_FOUND,
    // and so does UnRegister.
    let asked = Instant::now();
    let next = within(
        "AsyncNotify after the move",
        30,
        client.async_notify(&handle),
    )
    .await;
    assert_eq!(
        next.as_ref().err().and_then(|e| e.werror()),
        Some(werror::ERROR_NOT_FOUND),
        "{next:?}"
    );
    let forced_after = asked.elapsed();
    let gone = within("UnRegister", 20, client.unregister(&handle)).await;
    assert_eq!(
        gone.as_ref().err().and_then(|e| e.werror()),
        Some(werror::ERROR_NOT_FOUND),
        "{gone:?}"
    );

    // SHARE_MOVE for a registration with a share; moved to its own address, so nothing
    // unregisters it: UnRegister succeeds, a second one is ERROR_NOT_FOUND.
    let handle = within("RegisterEx", 20, client.register_ex(&args))
        .await
        .expect("RegisterEx");
    let notify = {
        let c = client.clone();
        tokio::spawn(async move { c.async_notify(&handle).await })
    };
    wl.sh(
        &format!(
            "net --configfile={}/smb.conf witness share-move \
             --witness-registration={} --witness-new-ip={}",
            wl.dir.display(),
            handle.uuid,
            publics()[0]
        ),
        Duration::from_secs(30),
    )
    .await;
    let resp = within("AsyncNotify after share-move", 30, notify)
        .await
        .expect("notify task")
        .expect("AsyncNotify");
    assert_eq!(resp.message_type, notify_type::SHARE_MOVE, "{resp:?}");
    assert_eq!(resp.move_target(), Some(publics()[0]), "{resp:?}");
    within("UnRegister", 20, client.unregister(&handle))
        .await
        .expect("UnRegister");
    let again = within("UnRegister again", 20, client.unregister(&handle)).await;
    assert_eq!(
        again.as_ref().err().and_then(|e| e.werror()),
        Some(werror::ERROR_NOT_FOUND),
        "{again:?}"
    );
    // rpcd_witness (which holds the association's socket) dies with an AsyncNotify
    // outstanding: the call ends at once with the association closed, not at a timeout.
    let handle = within("RegisterEx", 20, client.register_ex(&args))
        .await
        .expect("RegisterEx");
    let notify = {
        let c = client.clone();
        tokio::spawn(async move { c.async_notify(&handle).await })
    };
    let helpers: Vec<i32> = wl
        .lab
        .node("fs1")
        .unwrap()
        .freezer
        .pids()
        .into_iter()
        .map(|p| p.as_raw())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "rpcd_witness")
        })
        .collect();
    assert!(!helpers.is_empty(), "no rpcd_witness process in fs1");
    for pid in &helpers {
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -KILL {pid}");
    }
    let ended = within("AsyncNotify when rpcd_witness dies", 10, notify)
        .await
        .expect("notify task");
    assert!(matches!(ended, Err(witness::Error::Closed(_))), "{ended:?}");
    eprintln!(
        "a registration moved elsewhere was dropped {:.1} s after the next AsyncNotify",
        forced_after.as_secs_f64()
    );
    eprintln!(
        "lab + ctdb + dcerpcd up in {:.1} s; whole test {:.1} s",
        up_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop((client, smb_after));
    wl.down().await;
}
