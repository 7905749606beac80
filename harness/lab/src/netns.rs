//! Named network namespaces, made the way `ip netns add` makes them (a bind mount under
//! /run/netns), so `ip netns exec` and `ip netns list` see ours too — but without shelling out.

use std::fs::{self, File};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::LabError;

pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A named network namespace this lab created.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    fd: OwnedFd,
    /// The thread that runs `run`'s closures inside the namespace, started at the first call
    /// and kept: a thread made and entered per call cost each socket, reset probe and kill
    /// probe a few hundred microseconds, and milliseconds on a loaded machine.
    worker: Mutex<Option<Worker>>,
}

type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("thread", &self.thread.thread().id())
            .finish()
    }
}

impl NetNs {
    /// Create `/run/netns/<name>` holding a fresh network namespace.
    pub fn create(name: &str) -> Result<NetNs, LabError> {
        prepare_run_dir()?;
        let path = path_of(name);
        if path.exists() {
            return Err(LabError::Exists(format!("network namespace {name}")));
        }
        File::create(&path).map_err(|e| LabError::io(format!("create {}", path.display()), e))?;
        let target = path.clone();
        // unshare(CLONE_NEWNET) moves only the calling thread, so a short-lived thread does it
        // and pins the namespace with a bind mount before it exits.
        let made = std::thread::spawn(move || -> nix::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })
        .join()
        .map_err(|_| LabError::Other("namespace thread panicked".into()))?;
        if let Err(e) = made {
            let _ = fs::remove_file(&path);
            return Err(LabError::sys(format!("create network namespace {name}"), e));
        }
        NetNs::open(name)
    }

    /// Name an existing namespace (a container's `/proc/<pid>/ns/net`) the way `create`
    /// names a fresh one, so it is opened, listed and deleted like any other lab namespace.
    pub fn adopt(name: &str, from: &Path) -> Result<(), LabError> {
        prepare_run_dir()?;
        let path = path_of(name);
        if path.exists() {
            return Err(LabError::Exists(format!("network namespace {name}")));
        }
        File::create(&path).map_err(|e| LabError::io(format!("create {}", path.display()), e))?;
        if let Err(e) = mount(
            Some(from),
            &path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            let _ = fs::remove_file(&path);
            return Err(LabError::sys(
                format!("bind-mount {} at {}", from.display(), path.display()),
                e,
            ));
        }
        Ok(())
    }

    /// Open an existing named namespace.
    pub fn open(name: &str) -> Result<NetNs, LabError> {
        let path = path_of(name);
        let file =
            File::open(&path).map_err(|e| LabError::io(format!("open {}", path.display()), e))?;
        Ok(NetNs {
            name: name.to_string(),
            fd: file.into(),
            worker: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Move the calling thread into this namespace. Only for threads that exist for this
    /// purpose; the process's other threads stay where they are.
    pub fn enter_current_thread(&self) -> Result<(), LabError> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| LabError::sys(format!("setns into {}", self.name), e))
    }

    /// Run `f` on this namespace's own thread (inside it) and wait for its result. Sockets
    /// made there stay in this namespace wherever they are used afterwards. Calls from
    /// several threads take turns; `f` must not call `run` on the same namespace.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, LabError> + Send + 'static,
    ) -> Result<T, LabError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let mut worker = self.worker.lock().expect("namespace worker");
        // A worker whose thread died (a job panicked) is replaced.
        let job = match worker.as_ref() {
            Some(w) => w.jobs.send(job).err().map(|mpsc::SendError(job)| job),
            None => Some(job),
        };
        if let Some(job) = job {
            let fresh = self.start_worker()?;
            fresh.jobs.send(job).map_err(|_| {
                LabError::Other(format!("namespace thread of {} exited", self.name))
            })?;
            if let Some(old) = worker.replace(fresh) {
                let _ = old.thread.join();
            }
        }
        drop(worker);
        rx.recv()
            .map_err(|_| LabError::Other("namespace thread panicked".into()))?
    }

    fn start_worker(&self) -> Result<Worker, LabError> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|e| LabError::io("dup namespace fd", e))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (entered_tx, entered) = mpsc::sync_channel(1);
        let name = self.name.clone();
        let thread = std::thread::Builder::new()
            .name(format!("ns-{name}"))
            .spawn(move || {
                let result = setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| LabError::sys(format!("setns into {name}"), e));
                let ok = result.is_ok();
                let _ = entered_tx.send(result);
                drop(fd);
                if ok {
                    // Ends when the namespace's handle is dropped (the sender with it).
                    for job in queue {
                        job();
                    }
                }
            })
            .map_err(|e| LabError::io("spawn namespace thread", e))?;
        entered
            .recv()
            .map_err(|_| LabError::Other("namespace thread panicked".into()))??;
        Ok(Worker { jobs, thread })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let worker = self.worker.get_mut().map(Option::take).unwrap_or_default();
        if let Some(Worker { jobs, thread }) = worker {
            drop(jobs);
            // Joined, so the namespace is not held past its handle; not from its own thread.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Delete a named namespace: unmount and unlink. The kernel frees it (and the veth ends in
/// it) once no process or open descriptor holds it.
pub fn delete(name: &str) -> Result<(), LabError> {
    let path = path_of(name);
    if !path.exists() {
        return Ok(());
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(LabError::sys(format!("unmount {}", path.display()), e)),
    }
    fs::remove_file(&path).map_err(|e| LabError::io(format!("remove {}", path.display()), e))
}

/// Names of all namespaces under /run/netns.
pub fn list() -> Vec<String> {
    fs::read_dir(NETNS_RUN_DIR)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// /run/netns must be a shared mount point so namespaces mounted there propagate to other
/// mount namespaces (this is what iproute2 does too).
fn prepare_run_dir() -> Result<(), LabError> {
    fs::create_dir_all(NETNS_RUN_DIR)
        .map_err(|e| LabError::io(format!("create {NETNS_RUN_DIR}"), e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(
        None::<&str>,
        NETNS_RUN_DIR,
        None::<&str>,
        shared,
        None::<&str>,
    )
    .is_ok()
    {
        return Ok(());
    }
    mount(
        Some(NETNS_RUN_DIR),
        NETNS_RUN_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| LabError::sys(format!("bind-mount {NETNS_RUN_DIR}"), e))?;
    mount(
        None::<&str>,
        NETNS_RUN_DIR,
        None::<&str>,
        shared,
        None::<&str>,
    )
    .map_err(|e| LabError::sys(format!("make {NETNS_RUN_DIR} shared"), e))
}
