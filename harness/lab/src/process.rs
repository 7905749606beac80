//! Processes inside a node: a command that enters the node's network namespace and joins
//! its freezer cgroup between fork and exec, so every process a node runs (and its children)
//! is in that node's network and can be frozen, killed and found by `clean`.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use crate::cgroup::Freezer;
use crate::netns::NetNs;
use crate::LabError;

/// A `tokio::process::Command` that starts `program` inside the node.
pub fn command_in(
    ns: &Arc<NetNs>,
    freezer: &Freezer,
    program: impl AsRef<OsStr>,
) -> Result<tokio::process::Command, LabError> {
    command_in_root(ns, freezer, None, program)
}

/// Like `command_in`, and with `root` (a container's mount namespace) also entered, so
/// `program` is the container's and sees the container's files.
pub fn command_in_root(
    ns: &Arc<NetNs>,
    freezer: &Freezer,
    root: Option<&Arc<OwnedFd>>,
    program: impl AsRef<OsStr>,
) -> Result<tokio::process::Command, LabError> {
    let root = root.cloned();
    // Everything the child needs is opened here: between fork and exec only
    // async-signal-safe calls (setns, write) are allowed.
    let procs: OwnedFd = OpenOptions::new()
        .write(true)
        .open(freezer.procs_file())
        .map_err(|e| LabError::io(format!("open {}", freezer.procs_file().display()), e))?
        .into();
    let ns = ns.clone();
    let mut cmd = tokio::process::Command::new(program);
    // SAFETY: between fork and exec the closure calls only write(2) and setns(2), both
    // async-signal-safe, on descriptors opened before the fork and moved into the closure.
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setns(ns.raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Entering a mount namespace also moves root and cwd to its root.
            if let Some(root) = &root {
                if libc::setns(root.as_raw_fd(), libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(cmd)
}
