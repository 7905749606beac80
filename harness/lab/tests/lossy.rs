//! The lossy disk on its own: a real FUSE mount (root, /dev/fuse), written through the kernel
//! like any program would, then cut: what was fsynced stays, the rest is gone and reported.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;

use lab::lossy::LossyDisk;

fn dirs() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("lossy-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    fs::create_dir_all(&mnt).expect("mountpoint");
    (tmp, backing, mnt)
}

#[test]
fn power_cut_discards_exactly_what_was_not_synced() {
    let (_tmp, backing, mnt) = dirs();
    // A file synced before the disk is mounted is simply there.
    fs::create_dir_all(&backing).unwrap();
    fs::write(backing.join("old.txt"), b"old contents").unwrap();
    let mut disk = LossyDisk::mount(&backing, &mnt, None).expect("mount");

    // synced.dat: 8 KiB written and fsynced, then 100 bytes overwritten and 4 KiB appended.
    let synced = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(mnt.join("synced.dat"))
        .unwrap();
    synced.write_all_at(&[b'a'; 8192], 0).unwrap();
    synced.sync_all().unwrap();
    synced.write_all_at(&[b'b'; 100], 1000).unwrap();
    synced.write_all_at(&[b'c'; 4096], 8192).unwrap();
    // unsynced.dat: created and written, never fsynced.
    let mut unsynced = fs::File::create(mnt.join("unsynced.dat")).unwrap();
    unsynced.write_all(b"lost").unwrap();
    // renamed and unlinked since their last sync.
    fs::rename(mnt.join("old.txt"), mnt.join("new.txt")).unwrap();
    fs::write(mnt.join("gone.txt"), b"x").unwrap();
    let g = fs::File::open(mnt.join("gone.txt")).unwrap();
    g.sync_all().unwrap();
    drop(g);
    fs::remove_file(mnt.join("gone.txt")).unwrap();
    // xattrs pass through (smbd keeps DOS attributes there).
    xattr_set(&mnt.join("synced.dat"), "user.DOSATTRIB", b"0x20");
    assert_eq!(disk.unsynced_bytes(), 100 + 4096 + 4);
    drop((synced, unsynced));

    let discarded = disk.power_cut().expect("power cut");

    let data = fs::read(mnt.join("synced.dat")).unwrap();
    assert_eq!(
        data,
        vec![b'a'; 8192],
        "the synced 8 KiB, nothing after the sync"
    );
    assert!(
        !mnt.join("unsynced.dat").exists(),
        "an unsynced create is undone"
    );
    assert_eq!(
        fs::read(mnt.join("old.txt")).unwrap(),
        b"old contents",
        "rename undone"
    );
    assert!(!mnt.join("new.txt").exists());
    assert_eq!(
        fs::read(mnt.join("gone.txt")).unwrap(),
        b"x",
        "unlink undone"
    );
    assert_eq!(
        xattr_get(&mnt.join("synced.dat"), "user.DOSATTRIB"),
        b"0x20"
    );

    assert_eq!(discarded.bytes(), 100 + 4096 + 4, "{discarded:?}");
    let s = discarded
        .files
        .iter()
        .find(|f| f.path == "synced.dat")
        .expect("synced.dat named");
    assert_eq!(s.ranges, vec![(1000, 1100), (8192, 12288)]);
    assert_eq!((s.size_before, s.size_after), (12288, 8192));
    assert!(
        discarded.names.contains(&"create unsynced.dat".to_string()),
        "{discarded:?}"
    );
    assert!(
        discarded
            .names
            .contains(&"rename old.txt -> new.txt".to_string()),
        "{discarded:?}"
    );
    assert!(
        discarded.names.contains(&"unlink gone.txt".to_string()),
        "{discarded:?}"
    );

    // After the cut the disk works and is clean: a second cut discards nothing.
    fs::write(mnt.join("after.txt"), b"y").unwrap();
    let f = fs::File::open(mnt.join("after.txt")).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert!(disk.power_cut().unwrap().is_empty());
    assert_eq!(fs::read(mnt.join("after.txt")).unwrap(), b"y");
    drop(disk);
    assert!(!is_fuse_mount(&mnt), "dropping the disk unmounts it");
}

#[test]
fn truncate_and_o_trunc_are_undone() {
    let (_tmp, backing, mnt) = dirs();
    let mut disk = LossyDisk::mount(&backing, &mnt, None).expect("mount");
    let f = fs::File::create(mnt.join("t.dat")).unwrap();
    f.write_all_at(&[7; 10_000], 0).unwrap();
    f.sync_all().unwrap();
    f.set_len(10).unwrap();
    drop(f);
    fs::write(mnt.join("t.dat"), b"short").unwrap(); // O_TRUNC
    let d = disk.power_cut().unwrap();
    assert_eq!(
        fs::read(mnt.join("t.dat")).unwrap(),
        vec![7; 10_000],
        "{d:?}"
    );
}

fn is_fuse_mount(path: &std::path::Path) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(path.to_str().unwrap()))
}

fn cpath(path: &std::path::Path) -> std::ffi::CString {
    std::ffi::CString::new(path.to_str().unwrap()).unwrap()
}

fn xattr_set(path: &std::path::Path, name: &str, value: &[u8]) {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).unwrap());
    // SAFETY: NUL-terminated strings and a valid slice, all alive across the call.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn xattr_get(path: &std::path::Path, name: &str) -> Vec<u8> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).unwrap());
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings alive across the call; `buf` has 256 writable bytes.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(len >= 0, "getxattr: {}", std::io::Error::last_os_error());
    buf.truncate(len as usize);
    buf
}

// --- Under smbd: a share on the lossy disk, written through SMB, then a power cut. ---

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use lab::{Lab, LabOptions};
use smb2::wire::create::disposition;
use smb2::CreateRequest;

/// `docker`: the Samba version of a `provider: docker` server; `None`: a netns server.
fn smb_plan(strict_sync: &str, docker: Option<&str>) -> plan::Plan {
    let (provider, samba) = match docker {
        Some(v) => (
            "  provider: docker\n".to_string(),
            format!("      samba: \"{v}\"\n"),
        ),
        None => (String::new(), String::new()),
    };
    plan::parse_str(
        "lossy.yaml",
        &format!(
            "version: 1\nname: lossy\ntopology:\n{provider}  servers:\n    - name: fs1\n{samba}      global: {{ strict sync: \"{strict_sync}\" }}\n      shares: [{{ name: share, disk: lossy }}]\n  clients: [{{ name: c1 }}]\n"
        ),
    )
    .unwrap()
}

/// Lossy-disk mount points in the mount table `mounts` (a /proc/<pid>/mounts).
fn lossy_mounts(mounts: &str) -> Vec<String> {
    mounts
        .lines()
        .filter(|l| l.starts_with("smbchaos-lossy "))
        .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
        .collect()
}

/// The lossy mounts the container of `node` sees, and those of the host under the lab.
fn container_and_host_mounts(lab: &Lab, node: &str) -> (Vec<String>, Vec<String>) {
    let name = lab::docker::container_name(lab.run_id(), node);
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", &name])
        .output()
        .expect("docker inspect");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let inside = std::fs::read_to_string(format!("/proc/{pid}/mounts")).expect("container mounts");
    let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let dir = lab.dir().display().to_string();
    let host = lossy_mounts(&host)
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect();
    (lossy_mounts(&inside), host)
}

async fn tree(lab: &Lab) -> smb2::Connected {
    let (user, password) = lab.credentials();
    let stream = lab
        .connect("c1", SocketAddr::from((lab.address("fs1"), 445)))
        .await
        .expect("connect");
    let mut opts = smb2::TreeConnectOptions::new(
        smb2::Credentials::new(user, password),
        format!(r"\\{}\share", lab.address("fs1")),
    );
    opts.timeout = Duration::from_secs(20);
    smb2::connect_tree(stream, &opts)
        .await
        .expect("tree connect")
}

async fn create(t: &smb2::Tree, name: &str) -> smb2::FileId {
    let req = CreateRequest {
        create_disposition: disposition::FILE_CREATE,
        ..CreateRequest::new(name.to_string())
    };
    t.create(&req).await.unwrap().ok().unwrap().file_id
}

/// What the share holds after the cut, read back through SMB: None when the file is gone.
async fn read_back(t: &smb2::Tree, name: &str) -> Option<Vec<u8>> {
    let req = CreateRequest {
        create_disposition: disposition::FILE_OPEN,
        ..CreateRequest::new(name.to_string())
    };
    let r = t.create(&req).await.unwrap();
    let c = r.ok().ok()?;
    let data = t.read(c.file_id, 0, 1 << 16).await.unwrap();
    let data = data.ok().map(|d| d.data).unwrap_or_default(); // EOF on an empty file
    t.close(c.file_id).await.unwrap();
    Some(data)
}

/// Writes of each kind, a power cut, smbd started again: which survived.
async fn cut_after_writes(
    strict_sync: &str,
    docker: Option<&str>,
) -> (Vec<Option<Vec<u8>>>, lab::lossy::Discarded) {
    let lab = Lab::up(&smb_plan(strict_sync, docker), LabOptions::default())
        .await
        .expect("lab up");
    let share = lab.dir().join("fs1/shares/share").display().to_string();
    if docker.is_some() {
        // Mounted where the container's smbd sees it, not on the host.
        assert_eq!(
            container_and_host_mounts(&lab, "fs1"),
            (vec![share.clone()], vec![])
        );
    }
    let c = tree(&lab).await;
    let t = &c.tree;
    // through.dat: 4 KiB written through, then 4 KiB more without.
    let through = create(t, "through.dat").await;
    t.write(through, 0, vec![b'T'; 4096], true)
        .await
        .unwrap()
        .ok()
        .unwrap();
    t.write(through, 4096, vec![b'u'; 4096], false)
        .await
        .unwrap()
        .ok()
        .unwrap();
    // flushed.dat: written, then FLUSH.
    let flushed = create(t, "flushed.dat").await;
    t.write(flushed, 0, vec![b'F'; 1000], false)
        .await
        .unwrap()
        .ok()
        .unwrap();
    t.flush(flushed).await.unwrap().ok().unwrap();
    // cached.dat: written, never flushed.
    let cached = create(t, "cached.dat").await;
    t.write(cached, 0, vec![b'C'; 3000], false)
        .await
        .unwrap()
        .ok()
        .unwrap();

    let (killed, mut discarded) = lab
        .server("fs1")
        .unwrap()
        .lock()
        .await
        .power_cut()
        .await
        .expect("power cut");
    assert!(!killed.is_empty(), "the power cut killed smbd");
    drop(c);
    lab.server("fs1")
        .unwrap()
        .lock()
        .await
        .start()
        .await
        .expect("smbd serves again");
    if docker.is_some() {
        // Mounted again, in the container, after the cut.
        assert_eq!(
            container_and_host_mounts(&lab, "fs1"),
            (vec![share.clone()], vec![])
        );
    }
    let c = tree(&lab).await;
    let mut found = Vec::new();
    for name in ["through.dat", "flushed.dat", "cached.dat"] {
        found.push(read_back(&c.tree, name).await);
    }
    drop(c);
    let dir = lab.dir().display().to_string();
    lab.down().await.unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        lossy_mounts(&mounts).iter().all(|m| !m.starts_with(&dir)),
        "{mounts}"
    );
    assert_eq!(discarded.len(), 1);
    (found, discarded.remove(0).1)
}

#[tokio::test]
async fn power_cut_keeps_what_smbd_fsynced_and_loses_the_rest() {
    keeps_what_smbd_fsynced(None).await;
}

/// The same on a `provider: docker` server: the harness serves the disk on the host and
/// mounts it in the container's mount namespace, where the image's smbd uses it.
#[tokio::test]
async fn docker_4_17_power_cut_keeps_what_smbd_fsynced_and_loses_the_rest() {
    keeps_what_smbd_fsynced(Some("4.17")).await;
}

#[tokio::test]
async fn docker_4_22_power_cut_keeps_what_smbd_fsynced_and_loses_the_rest() {
    keeps_what_smbd_fsynced(Some("4.22")).await;
}

async fn keeps_what_smbd_fsynced(docker: Option<&str>) {
    let (found, discarded) = cut_after_writes("yes", docker).await;
    assert_eq!(
        found[0],
        Some(vec![b'T'; 4096]),
        "write-through kept, the later write lost"
    );
    assert_eq!(found[1], Some(vec![b'F'; 1000]), "flushed write kept");
    assert_eq!(found[2], None, "never-flushed file gone: {discarded:?}");
    assert_eq!(discarded.bytes(), 4096 + 3000, "{discarded:?}");
    assert!(
        discarded.names.contains(&"create cached.dat".to_string()),
        "{discarded:?}"
    );
}

/// The planted bug: `strict sync = no` makes smbd acknowledge write-through writes and
/// FLUSH without an fsync, so a power cut loses them.
#[tokio::test]
async fn without_strict_sync_acknowledged_flushes_are_lost() {
    let (found, discarded) = cut_after_writes("no", None).await;
    assert_eq!(found, vec![None, None, None], "{discarded:?}");
    assert_eq!(discarded.bytes(), 8192 + 1000 + 3000, "{discarded:?}");
}
