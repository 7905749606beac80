//! The Docker provider: a server node is a container (started through testcontainers from a
//! local image, `--network none`) that supplies the node's root filesystem (its Samba build)
//! and network namespace. Everything else stays the lab's own:
//! - the network namespace is bind-mounted at /run/netns/sc-<run>-<node> like a netns node's,
//!   and the node's TAP is made inside it, so the node sits on the same userspace wire and
//!   every wire fault acts on it unchanged;
//! - smbd and smbpasswd are started by the lab, entering the container's mount namespace
//!   between fork and exec (`process::command_in_root`), so they are the lab's children in
//!   the node's freezer group: kill, pause, restart and crash work as on a netns node;
//! - the node directory is bind-mounted at the same path, so the rendered smb.conf's paths
//!   hold inside; /etc/passwd and /etc/group come from the host so the lab user's uid is the
//!   one that owns the shares.
//!
//! A CTDB cluster node is the same, plus the cluster's shared directory (shares, recovery
//! lock) bind-mounted at its host path in every node's container, and ctdbd started like smbd
//! (crate::ctdb, with the container's mount namespace as its root).
//!
//! The container only runs `sleep infinity`. Its name is recorded in the run state before it
//! is created; teardown and `clean` remove it (`remove`), and `sweep` finds any whose run has
//! no state file.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use testcontainers::core::Mount;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::runstate::RunState;
use crate::{LabError, NetNs};

/// Label carrying the run id on every container the lab makes.
pub const RUN_LABEL: &str = "smbchaos.run";

/// A started container node: its network namespace (named like a netns node's) and a handle
/// on its mount namespace, where the node's processes run.
pub struct ContainerNode {
    pub ns: NetNs,
    pub root: Root,
}

/// A container's filesystem, as the lab's processes enter it.
#[derive(Clone)]
pub struct Root {
    /// Its mount namespace (entered between fork and exec: `process::command_in_root`).
    pub mnt: Arc<OwnedFd>,
    /// Its first process: `/proc/<pid>/root` is the image's filesystem, seen from the host.
    pub pid: i32,
}

impl Root {
    /// A path of the image, as the host reaches it.
    pub fn host_path(&self, path: &str) -> std::path::PathBuf {
        Path::new(&format!("/proc/{}/root", self.pid)).join(path.trim_start_matches('/'))
    }
}

/// Container name of a node: unique per run, so `docker ps` says whose it is.
pub fn container_name(run_id: &str, node: &str) -> String {
    format!("smbchaos-{run_id}-{node}")
}

/// Start `node`'s container from `image` (which must exist: nothing is ever pulled).
pub async fn start(
    state: &Mutex<RunState>,
    run_id: &str,
    node: &str,
    netns_name: &str,
    image: &str,
    node_dir: &Path,
    shared: &[&Path],
) -> Result<ContainerNode, LabError> {
    // The share owner must exist before /etc/passwd is mounted into the container.
    crate::samba::unix_user()?;
    std::fs::create_dir_all(node_dir)
        .map_err(|e| LabError::io(format!("create {}", node_dir.display()), e))?;
    let name = container_name(run_id, node);
    state.lock().expect("state lock").record_container(&name)?;
    let (repo, tag) = image
        .split_once(':')
        .ok_or_else(|| LabError::Other(format!("image `{image}` has no tag")))?;
    let dir = node_dir.display().to_string();
    let mut image_spec = GenericImage::new(repo, tag)
        .with_cmd(["sleep", "infinity"])
        .with_network("none")
        .with_container_name(&name)
        .with_hostname(node)
        .with_label(RUN_LABEL, run_id)
        .with_mount(Mount::bind_mount(dir.clone(), dir))
        .with_mount(
            Mount::bind_mount("/etc/passwd", "/etc/passwd")
                .with_access_mode(testcontainers::core::AccessMode::ReadOnly),
        )
        .with_mount(
            Mount::bind_mount("/etc/group", "/etc/group")
                .with_access_mode(testcontainers::core::AccessMode::ReadOnly),
        );
    for dir in shared {
        let dir = dir.display().to_string();
        image_spec = image_spec.with_mount(Mount::bind_mount(dir.clone(), dir));
    }
    let container = image_spec
        .start()
        .await
        .map_err(|e| LabError::Other(format!("start container {name} from {image}: {e}")))?;
    // Removal belongs to the run state (one path for teardown and `clean`); the handle's
    // Drop would remove it too, but needs a tokio runtime that teardown may not have.
    std::mem::forget(container);
    let pid = pid_of(&name)?;
    state.lock().expect("state lock").record_netns(netns_name)?;
    let ns_path = format!("/proc/{pid}/ns/net");
    NetNs::adopt(netns_name, Path::new(&ns_path))?;
    let ns = NetNs::open(netns_name)?;
    let mnt_path = format!("/proc/{pid}/ns/mnt");
    let root = File::open(&mnt_path)
        .map_err(|e| LabError::io(format!("open {mnt_path} (container {name})"), e))?;
    Ok(ContainerNode {
        ns,
        root: Root {
            mnt: Arc::new(root.into()),
            pid,
        },
    })
}

/// The host pid of the container's first process.
fn pid_of(name: &str) -> Result<i32, LabError> {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", name])
        .output()
        .map_err(|e| LabError::io("run docker inspect", e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<i32>() {
        Ok(pid) if out.status.success() && pid > 0 => Ok(pid),
        _ => Err(LabError::Other(format!(
            "container {name} has no running process: docker inspect said `{}` {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Remove containers by name (gone already is fine).
pub fn remove(names: &[String]) -> Result<(), LabError> {
    if names.is_empty() {
        return Ok(());
    }
    let out = Command::new("docker")
        .args(["rm", "--force", "--volumes"])
        .args(names)
        .output()
        .map_err(|e| LabError::io("run docker rm", e))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let real: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("No such container"))
        .collect();
    if !out.status.success() && !real.is_empty() {
        return Err(LabError::Other(format!(
            "docker rm {}: {}",
            names.join(" "),
            real.join("; ")
        )));
    }
    Ok(())
}

/// Containers labelled with a run id, as (name, run id). Empty where Docker is absent: a
/// machine without Docker has no containers of ours.
pub fn labelled() -> Vec<(String, String)> {
    let Ok(out) = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Names}}}}\t{{{{.Label \"{RUN_LABEL}\"}}}}"),
        ])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect()
}
