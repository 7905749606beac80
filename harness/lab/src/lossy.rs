//! A lossy disk: a FUSE passthrough file system over a backing directory that remembers, per
//! file, what was written since its last fsync, and which names were created, renamed or
//! unlinked since they were last synced. [`LossyDisk::power_cut`] discards exactly that
//! (the backing directory goes back to what was synced), remounts, and says what it discarded.
//!
//! Durability model (ext4-like, stated so plans can rely on it): `fsync` of a file makes its
//! data, size and its own creation durable; `fsyncdir` of a directory makes the creates,
//! renames and unlinks of names in it durable. Extended attributes, modes, owners and times are
//! passed through and kept across a cut (smbd's DOS attributes and streams live in `user.*`
//! xattrs). The kernel caches no writes (no writeback cache), so every write reaches the
//! journal before the writer hears of it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL,
    TimeOrNow, WriteFlags,
};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use serde::Serialize;

/// Old contents are saved in blocks of this size, the first time a block is overwritten.
const BLOCK: u64 = 4096;
/// Attributes and entries may be cached this long by the kernel: every change goes through us,
/// and a cut remounts (dropping every cache).
const TTL: Duration = Duration::from_secs(1);

/// What a power cut threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Discarded {
    /// Files whose unsynced data was discarded, by path relative to the share.
    pub files: Vec<DiscardedFile>,
    /// Namespace changes undone (creates, renames, unlinks), newest first.
    pub names: Vec<String>,
}

impl Discarded {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.names.is_empty()
    }

    /// Bytes written since the last fsync and discarded.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes_written).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscardedFile {
    pub path: String,
    /// Bytes written since the last fsync (overlapping writes counted each time).
    pub bytes_written: u64,
    /// `[offset, end)` ranges written since the last fsync (merged).
    pub ranges: Vec<(u64, u64)>,
    /// Size before and after the cut.
    pub size_before: u64,
    pub size_after: u64,
}

/// A file's state at its last sync, kept until the next one.
#[derive(Debug, Default)]
struct Undo {
    /// Size at the last sync.
    size: u64,
    /// Old contents of each block (index → bytes, up to `size`) first changed since the sync.
    blocks: BTreeMap<u64, Vec<u8>>,
    bytes_written: u64,
    ranges: BTreeMap<u64, u64>,
}

/// A namespace change not yet synced, undone newest first.
#[derive(Debug)]
enum NameOp {
    Created {
        ino: u64,
        path: PathBuf,
    },
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    },
    Unlinked {
        path: PathBuf,
        trash: PathBuf,
    },
}

impl NameOp {
    /// The directories whose fsync makes this change durable.
    fn parents(&self) -> Vec<&Path> {
        match self {
            NameOp::Created { path, .. } | NameOp::Unlinked { path, .. } => {
                path.parent().into_iter().collect()
            }
            NameOp::Renamed { from, to, .. } => {
                from.parent().into_iter().chain(to.parent()).collect()
            }
        }
    }
}

/// Everything the file system and the cut share.
#[derive(Debug)]
struct State {
    backing: PathBuf,
    trash: PathBuf,
    root_ino: u64,
    /// FUSE inode → current backing path (backing inode numbers, the root as 1).
    paths: HashMap<u64, PathBuf>,
    files: HashMap<u64, File>,
    /// Handles opened O_SYNC/O_DSYNC: each write on them is synced before it returns.
    sync_fhs: std::collections::HashSet<u64>,
    next_fh: u64,
    undo: HashMap<u64, Undo>,
    names: Vec<NameOp>,
    trashed: u64,
}

impl State {
    fn ino(&self, md: &fs::Metadata) -> u64 {
        if md.ino() == self.root_ino {
            1
        } else {
            md.ino()
        }
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        self.paths.get(&ino.0).cloned().ok_or(Errno::ESTALE)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    fn attr(&mut self, path: &Path) -> Result<FileAttr, Errno> {
        let md = fs::symlink_metadata(path).map_err(Errno::from)?;
        let ino = self.ino(&md);
        self.paths.insert(ino, path.to_path_buf());
        Ok(attr(ino, &md))
    }

    /// Before `[offset, end)` of `ino` changes: remember the file's synced state.
    fn save(&mut self, ino: u64, path: &Path, offset: u64, end: u64) -> Result<(), Errno> {
        let undo = match self.undo.entry(ino) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let size = fs::symlink_metadata(path).map_err(Errno::from)?.len();
                e.insert(Undo {
                    size,
                    ..Undo::default()
                })
            }
        };
        let end = end.min(undo.size);
        if offset >= end {
            return Ok(());
        }
        let file = File::open(path).map_err(Errno::from)?;
        for block in offset / BLOCK..end.div_ceil(BLOCK) {
            if undo.blocks.contains_key(&block) {
                continue;
            }
            let start = block * BLOCK;
            let len = (undo.size - start).min(BLOCK) as usize;
            let mut old = vec![0; len];
            file.read_exact_at(&mut old, start).map_err(Errno::from)?;
            undo.blocks.insert(block, old);
        }
        Ok(())
    }

    fn written(&mut self, ino: u64, offset: u64, len: u64) {
        if let Some(undo) = self.undo.get_mut(&ino) {
            undo.bytes_written += len;
            let end = offset + len;
            let e = undo.ranges.entry(offset).or_insert(end);
            *e = (*e).max(end);
        }
    }

    /// fsync of a file: its data and its creation are durable.
    fn synced(&mut self, ino: u64) {
        self.undo.remove(&ino);
        self.names
            .retain(|op| !matches!(op, NameOp::Created { ino: i, .. } if *i == ino));
    }

    fn trash_path(&mut self) -> PathBuf {
        self.trashed += 1;
        self.trash.join(self.trashed.to_string())
    }

    /// Discard everything not synced: the backing directory as it was at the last syncs.
    fn cut(&mut self) -> std::io::Result<Discarded> {
        self.files.clear();
        self.sync_fhs.clear();
        let rel =
            |backing: &Path, p: &Path| p.strip_prefix(backing).unwrap_or(p).display().to_string();
        let mut discarded = Discarded::default();
        let created: Vec<u64> = self
            .names
            .iter()
            .filter_map(|op| match op {
                NameOp::Created { ino, .. } => Some(*ino),
                _ => None,
            })
            .collect();
        // Data first, at each file's current path (trash included): the namespace is undone after.
        let mut undos: Vec<(u64, Undo)> = self.undo.drain().collect();
        undos.sort_by_key(|(ino, _)| *ino);
        for (ino, undo) in undos {
            let Some(path) = self.paths.get(&ino).cloned() else {
                continue;
            };
            let size_before = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !created.contains(&ino) {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(undo.size)?;
                for (block, old) in &undo.blocks {
                    file.write_all_at(old, block * BLOCK)?;
                }
            }
            discarded.files.push(DiscardedFile {
                path: rel(&self.backing, &path),
                bytes_written: undo.bytes_written,
                ranges: merge(undo.ranges),
                size_before,
                size_after: if created.contains(&ino) { 0 } else { undo.size },
            });
        }
        for op in std::mem::take(&mut self.names).into_iter().rev() {
            let b = &self.backing;
            match op {
                NameOp::Created { path, .. } => {
                    discarded.names.push(format!("create {}", rel(b, &path)));
                    let md = fs::symlink_metadata(&path)?;
                    if md.is_dir() {
                        fs::remove_dir_all(&path)?;
                    } else {
                        fs::remove_file(&path)?;
                    }
                }
                NameOp::Renamed {
                    from, to, replaced, ..
                } => {
                    discarded
                        .names
                        .push(format!("rename {} -> {}", rel(b, &from), rel(b, &to)));
                    fs::rename(&to, &from)?;
                    if let Some(trash) = replaced {
                        fs::rename(&trash, &to)?;
                    }
                }
                NameOp::Unlinked { path, trash, .. } => {
                    discarded.names.push(format!("unlink {}", rel(b, &path)));
                    fs::rename(&trash, &path)?;
                }
            }
        }
        // Trash of synced unlinks is gone for good.
        let _ = fs::remove_dir_all(&self.trash);
        fs::create_dir_all(&self.trash)?;
        self.paths.retain(|ino, _| *ino == 1);
        Ok(discarded)
    }
}

/// Written ranges by start → disjoint `[start, end)` ranges, touching ones joined.
fn merge(ranges: BTreeMap<u64, u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn attr(ino: u64, md: &fs::Metadata) -> FileAttr {
    let time = |s: i64, ns: i64| {
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s as u64, ns as u32)
        } else {
            UNIX_EPOCH
        }
    };
    let ft = md.file_type();
    FileAttr {
        ino: INodeNo(ino),
        size: md.len(),
        blocks: md.blocks(),
        atime: time(md.atime(), md.atime_nsec()),
        mtime: time(md.mtime(), md.mtime_nsec()),
        ctime: time(md.ctime(), md.ctime_nsec()),
        crtime: time(md.ctime(), md.ctime_nsec()),
        kind: kind(ft),
        perm: (md.mode() & 0o7777) as u16,
        nlink: md.nlink() as u32,
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev() as u32,
        blksize: md.blksize() as u32,
        flags: 0,
    }
}

fn kind(ft: fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

fn cstring(path: &Path) -> Result<CString, Errno> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

fn last_errno() -> Errno {
    Errno::from(std::io::Error::last_os_error())
}

/// The FUSE side: every request turned into the same call on the backing path.
struct Passthrough {
    state: Arc<Mutex<State>>,
}

impl Passthrough {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Errno>) -> Result<T, Errno> {
        let mut state = self.state.lock().map_err(|_| Errno::EIO)?;
        f(&mut state)
    }

    /// A new name's owner is the caller, as on a local file system.
    fn own(path: &Path, req: &Request) -> Result<(), Errno> {
        std::os::unix::fs::lchown(path, Some(req.uid()), Some(req.gid())).map_err(Errno::from)
    }
}

impl Filesystem for Passthrough {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.with(|s| {
            let path = s.child(parent, name)?;
            s.attr(&path)
        }) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|s| {
            let path = s.path(ino)?;
            s.attr(&path)
        }) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.with(|s| {
            let path = s.path(ino)?;
            if let Some(mode) = mode {
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(Errno::from)?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(&path, uid, gid).map_err(Errno::from)?;
            }
            if let Some(size) = size {
                s.save(ino.0, &path, size, u64::MAX)?;
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(size))
                    .map_err(Errno::from)?;
            }
            if atime.is_some() || mtime.is_some() {
                let ts = |t: Option<TimeOrNow>| match t {
                    None => libc::timespec {
                        tv_sec: 0,
                        tv_nsec: libc::UTIME_OMIT,
                    },
                    Some(TimeOrNow::Now) => libc::timespec {
                        tv_sec: 0,
                        tv_nsec: libc::UTIME_NOW,
                    },
                    Some(TimeOrNow::SpecificTime(t)) => {
                        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
                        libc::timespec {
                            tv_sec: d.as_secs() as libc::time_t,
                            tv_nsec: d.subsec_nanos() as libc::c_long,
                        }
                    }
                };
                let times = [ts(atime), ts(mtime)];
                let c = cstring(&path)?;
                // SAFETY: `c` is a NUL-terminated path that outlives the call; `times` is an
                // array of two initialised timespecs, as utimensat requires.
                let rc = unsafe {
                    libc::utimensat(
                        libc::AT_FDCWD,
                        c.as_ptr(),
                        times.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                if rc != 0 {
                    return Err(last_errno());
                }
            }
            s.attr(&path)
        });
        match result {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.with(|s| fs::read_link(s.path(ino)?).map_err(Errno::from)) {
            Ok(t) => reply.data(t.as_os_str().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.with(|s| {
            let path = s.child(parent, name)?;
            fs::create_dir(&path).map_err(Errno::from)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & !umask & 0o7777))
                .map_err(Errno::from)?;
            Self::own(&path, req)?;
            let a = s.attr(&path)?;
            s.names.push(NameOp::Created { ino: a.ino.0, path });
            Ok(a)
        }) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(parent, name, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        match self.with(|s| {
            let from = s.child(parent, name)?;
            let to = s.child(newparent, newname)?;
            let md = fs::symlink_metadata(&from).map_err(Errno::from)?;
            let ino = s.ino(&md);
            // An existing target goes to the trash, so the cut can bring it back.
            let replaced = match fs::symlink_metadata(&to) {
                Ok(old) => {
                    let trash = s.trash_path();
                    fs::rename(&to, &trash).map_err(Errno::from)?;
                    let old_ino = s.ino(&old);
                    s.paths.insert(old_ino, trash.clone());
                    Some(trash)
                }
                Err(_) => None,
            };
            fs::rename(&from, &to).map_err(Errno::from)?;
            s.paths.insert(ino, to.clone());
            if md.is_dir() {
                let moved: Vec<(u64, PathBuf)> = s
                    .paths
                    .iter()
                    .filter_map(|(i, p)| p.strip_prefix(&from).ok().map(|rest| (*i, to.join(rest))))
                    .collect();
                s.paths.extend(moved);
            }
            s.names.push(NameOp::Renamed { from, to, replaced });
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.with(|s| {
            let path = s.path(ino)?;
            let fh = s.open(&path, flags.0)?;
            if flags.0 & libc::O_TRUNC != 0 {
                s.save(ino.0, &path, 0, u64::MAX)?;
                s.files[&fh].set_len(0).map_err(Errno::from)?;
            }
            Ok(fh)
        }) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.with(|s| {
            let path = s.child(parent, name)?;
            let existed = fs::symlink_metadata(&path).is_ok();
            OpenOptions::new()
                .write(true)
                .create(true)
                .custom_flags(flags & libc::O_EXCL)
                .mode(mode & !umask & 0o7777)
                .open(&path)
                .map_err(Errno::from)?;
            if !existed {
                Self::own(&path, req)?;
            }
            let a = s.attr(&path)?;
            if !existed {
                s.names.push(NameOp::Created {
                    ino: a.ino.0,
                    path: path.clone(),
                });
            } else if flags & libc::O_TRUNC != 0 {
                s.save(a.ino.0, &path, 0, u64::MAX)?;
            }
            let fh = s.open(&path, flags & !libc::O_CREAT & !libc::O_EXCL)?;
            if existed && flags & libc::O_TRUNC != 0 {
                s.files[&fh].set_len(0).map_err(Errno::from)?;
            }
            let a = s.attr(&path)?;
            Ok((a, fh))
        }) {
            Ok((a, fh)) => {
                reply.created(&TTL, &a, Generation(0), FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.with(|s| {
            let file = s.files.get(&fh.0).ok_or(Errno::EBADF)?;
            let mut buf = vec![0; size as usize];
            let mut n = 0;
            while n < buf.len() {
                match file.read_at(&mut buf[n..], offset + n as u64) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Errno::from(e)),
                }
            }
            buf.truncate(n);
            Ok(buf)
        }) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.with(|s| {
            let path = s.path(ino)?;
            s.save(ino.0, &path, offset, offset + data.len() as u64)?;
            let file = s.files.get(&fh.0).ok_or(Errno::EBADF)?;
            file.write_all_at(data, offset).map_err(Errno::from)?;
            s.written(ino.0, offset, data.len() as u64);
            if s.sync_fhs.contains(&fh.0) {
                s.files[&fh.0].sync_data().map_err(Errno::from)?;
                s.synced(ino.0);
            }
            Ok(data.len() as u32)
        }) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    /// close(2) of a descriptor: not a sync. Answered so the kernel does not log ENOSYS on
    /// every close (and nothing is made durable: only fsync does that).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _ = self.with(|s| {
            s.sync_fhs.remove(&fh.0);
            Ok(s.files.remove(&fh.0))
        });
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.with(|s| {
            if let Some(file) = s.files.get(&fh.0) {
                file.sync_data().map_err(Errno::from)?;
            }
            s.synced(ino.0);
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = self.with(|s| {
            let path = s.path(ino)?;
            let mut entries = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (1, FileType::Directory, OsString::from("..")),
            ];
            for e in fs::read_dir(&path).map_err(Errno::from)? {
                let e = e.map_err(Errno::from)?;
                let ft = e.file_type().map_err(Errno::from)?;
                let i = if e.ino() == s.root_ino { 1 } else { e.ino() };
                entries.push((i, kind(ft), e.file_name()));
            }
            Ok(entries)
        });
        match entries {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _d: bool, reply: ReplyEmpty) {
        match self.with(|s| {
            let dir = s.path(ino)?;
            s.names.retain(|op| !op.parents().contains(&dir.as_path()));
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self
            .with(|s| nix::sys::statvfs::statvfs(&s.backing).map_err(|e| Errno::from_i32(e as i32)))
        {
            Ok(v) => reply.statfs(
                v.blocks(),
                v.blocks_free(),
                v.blocks_available(),
                v.files(),
                v.files_free(),
                v.block_size() as u32,
                v.name_max() as u32,
                v.fragment_size() as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self.with(|s| {
            let (path, name) = (
                cstring(&s.path(ino)?)?,
                CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?,
            );
            // SAFETY: both strings are NUL-terminated and live across the call; `value` is a
            // valid slice of `value.len()` bytes.
            let rc = unsafe {
                libc::lsetxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    flags,
                )
            };
            if rc != 0 {
                return Err(last_errno());
            }
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.with(|s| {
            let (path, name) = (
                cstring(&s.path(ino)?)?,
                CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?,
            );
            let mut buf = vec![0u8; size as usize];
            // SAFETY: NUL-terminated strings live across the call; `buf` has `buf.len()`
            // writable bytes (a zero length asks only for the size, as the kernel does).
            let n = unsafe {
                libc::lgetxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n < 0 {
                return Err(last_errno());
            }
            buf.truncate(n as usize);
            Ok((n as u32, buf))
        }) {
            Ok((n, _)) if size == 0 => reply.size(n),
            Ok((_, buf)) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.with(|s| {
            let path = cstring(&s.path(ino)?)?;
            let mut buf = vec![0u8; size as usize];
            // SAFETY: `path` is NUL-terminated and lives across the call; `buf` has
            // `buf.len()` writable bytes.
            let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(last_errno());
            }
            buf.truncate(n as usize);
            Ok((n as u32, buf))
        }) {
            Ok((n, _)) if size == 0 => reply.size(n),
            Ok((_, buf)) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| {
            let (path, name) = (
                cstring(&s.path(ino)?)?,
                CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?,
            );
            // SAFETY: both strings are NUL-terminated and live across the call.
            let rc = unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) };
            if rc != 0 {
                return Err(last_errno());
            }
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl State {
    fn open(&mut self, path: &Path, flags: i32) -> Result<u64, Errno> {
        let acc = flags & libc::O_ACCMODE;
        let file = OpenOptions::new()
            .read(true)
            .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
            .custom_flags(flags & libc::O_NOFOLLOW)
            .open(path)
            .map_err(Errno::from)?;
        self.next_fh += 1;
        self.files.insert(self.next_fh, file);
        if flags & (libc::O_SYNC | libc::O_DSYNC) != 0 {
            self.sync_fhs.insert(self.next_fh);
        }
        Ok(self.next_fh)
    }
}

impl Passthrough {
    fn remove(&self, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.with(|s| {
            let path = s.child(parent, name)?;
            let md = fs::symlink_metadata(&path).map_err(Errno::from)?;
            if md.is_dir() && fs::read_dir(&path).map_err(Errno::from)?.next().is_some() {
                return Err(Errno::ENOTEMPTY);
            }
            let ino = s.ino(&md);
            let trash = s.trash_path();
            fs::rename(&path, &trash).map_err(Errno::from)?;
            s.paths.insert(ino, trash.clone());
            s.names.push(NameOp::Unlinked { path, trash });
            Ok(())
        }) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

/// Errors of the lossy disk.
#[derive(Debug, thiserror::Error)]
pub enum LossyError {
    #[error("lossy disk at {mountpoint}: {context}: {source}")]
    Io {
        mountpoint: PathBuf,
        context: String,
        source: std::io::Error,
    },
}

/// A mounted lossy disk: `backing` served at `mountpoint` until dropped (or cut).
pub struct LossyDisk {
    mountpoint: PathBuf,
    /// The mount namespace `mountpoint` is in (a container's); `None`: the harness's own.
    mnt: Option<Arc<OwnedFd>>,
    state: Arc<Mutex<State>>,
    /// The session serving the mount and its FUSE connection (`/sys/fs/fuse/connections/<n>`).
    session: Option<(fuser::BackgroundSession, u32)>,
}

impl LossyDisk {
    /// Serve `backing` (created if missing) at `mountpoint` (an existing directory), in the
    /// mount namespace `mnt` (a container's, where its smbd sees the share) or, with `None`,
    /// the harness's own. The server and `backing` stay in the harness on the host. Trash for
    /// names unlinked since their last sync lives beside `backing`, on the same file system.
    pub fn mount(
        backing: &Path,
        mountpoint: &Path,
        mnt: Option<Arc<OwnedFd>>,
    ) -> Result<LossyDisk, LossyError> {
        let io = |context: &str| {
            let (m, c) = (mountpoint.to_path_buf(), context.to_string());
            move |source| LossyError::Io {
                mountpoint: m,
                context: c,
                source,
            }
        };
        fs::create_dir_all(backing).map_err(io("create the backing directory"))?;
        let mut trash = backing.as_os_str().to_owned();
        trash.push(".trash");
        let trash = PathBuf::from(trash);
        fs::create_dir_all(&trash).map_err(io("create the trash directory"))?;
        let root_ino = fs::metadata(backing)
            .map_err(io("stat the backing directory"))?
            .ino();
        let state = State {
            backing: backing.to_path_buf(),
            trash,
            root_ino,
            paths: HashMap::from([(1, backing.to_path_buf())]),
            files: HashMap::new(),
            sync_fhs: Default::default(),
            next_fh: 0,
            undo: HashMap::new(),
            names: Vec::new(),
            trashed: 0,
        };
        let mut disk = LossyDisk {
            mountpoint: mountpoint.to_path_buf(),
            mnt,
            state: Arc::new(Mutex::new(state)),
            session: None,
        };
        disk.attach().map_err(io("mount (FUSE)"))?;
        Ok(disk)
    }

    /// Mount with our own mount(2) rather than fuser's: it must happen in `self.mnt`, while
    /// /dev/fuse is opened here (a container has no /dev/fuse) and the fd is shared by threads.
    fn attach(&mut self) -> std::io::Result<()> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/fuse")?;
        let fd = device.as_raw_fd();
        let mountpoint = self.mountpoint.clone();
        in_mnt(self.mnt.as_deref(), move || {
            let mode = fs::metadata(&mountpoint)?.mode() & libc::S_IFMT;
            let options = format!(
                "fd={fd},rootmode={mode:o},user_id=0,group_id=0,default_permissions,allow_other"
            );
            Ok(nix::mount::mount(
                Some("smbchaos-lossy"),
                &mountpoint,
                Some("fuse"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(options.as_str()),
            )?)
        })?;
        let fs = Passthrough {
            state: self.state.clone(),
        };
        // The kernel sent INIT at mount: the handshake answers it (until then, any access to
        // the mount waits). Then the connection's number is the mount's device minor.
        let mountpoint = self.mountpoint.clone();
        let session =
            fuser::Session::from_fd(fs, device.into(), SessionACL::All, Config::default())
                .and_then(fuser::Session::spawn)
                .and_then(|session| {
                    let dev = in_mnt(self.mnt.as_deref(), move || {
                        Ok(fs::metadata(&mountpoint)?.dev())
                    })?;
                    Ok((session, nix::sys::stat::minor(dev) as u32))
                });
        match session {
            Ok(session) => {
                self.session = Some(session);
                Ok(())
            }
            Err(e) => {
                let mountpoint = self.mountpoint.clone();
                let _ = in_mnt(self.mnt.as_deref(), move || {
                    Ok(nix::mount::umount2(&mountpoint, MntFlags::MNT_DETACH)?)
                });
                Err(e)
            }
        }
    }

    /// Abort the FUSE connection `conn` and lazily unmount `mountpoint` in its namespace.
    fn unmount(&self, conn: u32) -> std::io::Result<()> {
        // Abort first: a process still holding a file on the old mount gets ENOTCONN (never
        // the discarded contents), and the session ends at once.
        let _ = fs::write(format!("/sys/fs/fuse/connections/{conn}/abort"), "1");
        let mountpoint = self.mountpoint.clone();
        in_mnt(self.mnt.as_deref(), move || {
            Ok(nix::mount::umount2(&mountpoint, MntFlags::MNT_DETACH)?)
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Bytes written since their file's last fsync (what a cut now would discard).
    pub fn unsynced_bytes(&self) -> u64 {
        let state = self.state.lock().expect("lossy state");
        state.undo.values().map(|u| u.bytes_written).sum()
    }

    /// The power cut: unmount (every process using the disk must be dead: their open files
    /// are gone with the mount), put the backing directory back to what was synced, mount
    /// again (no cache of the old contents survives), and say what was discarded.
    pub fn power_cut(&mut self) -> Result<Discarded, LossyError> {
        let mountpoint = self.mountpoint.clone();
        let io = |context: &str| {
            let (m, c) = (mountpoint.clone(), context.to_string());
            move |source| LossyError::Io {
                mountpoint: m,
                context: c,
                source,
            }
        };
        self.detach();
        let discarded = self
            .state
            .lock()
            .expect("lossy state")
            .cut()
            .map_err(io("discard"))?;
        self.attach().map_err(io("mount again (FUSE)"))?;
        Ok(discarded)
    }

    fn detach(&mut self) {
        if let Some((session, conn)) = self.session.take() {
            let _ = self.unmount(conn);
            let _ = session.join();
        }
    }
}

/// Run `f` in the mount namespace `mnt` (on a thread of its own: setns(CLONE_NEWNS) needs a
/// thread that shares no filesystem context), or here with `None`.
fn in_mnt<T: Send>(
    mnt: Option<&OwnedFd>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let Some(mnt) = mnt else { return f() };
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_FS)?;
            setns(mnt, CloneFlags::CLONE_NEWNS)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("mount namespace thread panicked")))
    })
}

impl Drop for LossyDisk {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Lazily unmount every lossy disk under `dir` (a run directory whose harness is gone).
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (Some(source), Some(target)) = (fields.next(), fields.next()) else {
            continue;
        };
        if source == "smbchaos-lossy" && Path::new(target).starts_with(dir) {
            if let Ok(c) = CString::new(target) {
                // SAFETY: `c` is a NUL-terminated path that lives across the call.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}
