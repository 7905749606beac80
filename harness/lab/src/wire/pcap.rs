//! Per-link packet capture in the classic pcap format (opens in Wireshark and tcpdump).
//! A segmentation-offload segment is recorded as the one large frame the wire forwarded
//! (IP total length up to 64 KiB, as a capture on a host with TSO/GRO shows), with the TCP
//! checksum the sender's kernel left to the device finished, so every checksum in the file
//! is right; on a path where a fault split it, the frames are recorded as split.
//!
//! A [`Limit`] bounds what a capture writes: one file that stops growing when full (the run's
//! start is kept), or a ring of files like `tcpdump -C -W` (the run's end is kept). Every file,
//! rotated or not, is a whole pcap: its own header, only whole records.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The pcap global header's length.
pub const FILE_HEADER: u64 = 24;
/// A record header's length.
pub const RECORD_HEADER: u64 = 16;

/// How much one link's capture may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Most bytes of one file, its header included.
    pub file_bytes: u64,
    /// Files kept. 1: the capture stops when the file is full. More: when the newest file is
    /// full the next one starts and the oldest beyond this many is deleted.
    pub files: u32,
}

impl Limit {
    /// A run's `max_bytes` shared evenly by `links` captures, each a ring of `files`.
    pub fn share(max_bytes: u64, links: usize, files: u32) -> Limit {
        let files = files.max(1);
        Limit {
            file_bytes: max_bytes / links.max(1) as u64 / u64::from(files),
            files,
        }
    }
}

struct Sink {
    out: BufWriter<File>,
    /// Bytes written to the current file, header included.
    written: u64,
    /// Files kept, oldest first; the last is the one written.
    files: VecDeque<PathBuf>,
    next_seq: u64,
    /// The capture stopped: its one file is full, or a new file could not be made.
    full: bool,
    dropped: u64,
}

pub struct Capture {
    out: Mutex<Sink>,
    snaplen: usize,
    limit: Option<Limit>,
    /// `<link>` of `<link>.pcap`: the ring's files are `<link>.<seq>.pcap`.
    stem: PathBuf,
}

fn open(path: &Path, snaplen: usize) -> std::io::Result<BufWriter<File>> {
    let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, microsecond timestamps
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?; // thiszone, sigfigs
    out.write_all(&(snaplen as u32).to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    Ok(out)
}

impl Capture {
    /// A capture of unbounded size at `path`.
    pub fn create(path: &Path, snaplen: usize) -> std::io::Result<Capture> {
        Capture::create_limited(path, snaplen, None)
    }

    /// A capture at `path` (`<link>.pcap`) within `limit`. With a ring (`files` > 1) the files
    /// are `<link>.000000.pcap`, `<link>.000001.pcap`, ... so that their names sort in time
    /// order.
    pub fn create_limited(
        path: &Path,
        snaplen: usize,
        limit: Option<Limit>,
    ) -> std::io::Result<Capture> {
        let stem = path.with_extension("");
        let ring = limit.is_some_and(|l| l.files > 1);
        let first = match ring {
            true => ring_file(&stem, 0),
            false => path.to_path_buf(),
        };
        let out = open(&first, snaplen)?;
        Ok(Capture {
            out: Mutex::new(Sink {
                out,
                written: FILE_HEADER,
                files: VecDeque::from([first]),
                next_seq: 1,
                full: false,
                dropped: 0,
            }),
            snaplen,
            limit,
            stem,
        })
    }

    /// Frames not recorded because the capture was full (or did not fit in a file at all).
    pub fn dropped(&self) -> u64 {
        self.out.lock().expect("capture lock").dropped
    }

    /// The files the capture has now, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        self.out
            .lock()
            .expect("capture lock")
            .files
            .iter()
            .cloned()
            .collect()
    }

    /// Make room for a record of `size` bytes: false when it must be dropped.
    fn room(&self, sink: &mut Sink, size: u64) -> bool {
        let Some(limit) = self.limit else {
            return true;
        };
        if sink.full || FILE_HEADER + size > limit.file_bytes {
            return false;
        }
        if sink.written + size <= limit.file_bytes {
            return true;
        }
        if limit.files <= 1 {
            sink.full = true;
            return false;
        }
        let _ = sink.out.flush();
        let path = ring_file(&self.stem, sink.next_seq);
        sink.next_seq += 1;
        match open(&path, self.snaplen) {
            Ok(out) => {
                sink.out = out; // the old file is flushed and closed here
                sink.written = FILE_HEADER;
                sink.files.push_back(path);
                while sink.files.len() > limit.files as usize {
                    if let Some(old) = sink.files.pop_front() {
                        let _ = std::fs::remove_file(old);
                    }
                }
                true
            }
            Err(_) => {
                sink.full = true;
                false
            }
        }
    }

    pub fn record(&self, frame: &[u8]) {
        self.record_patched(frame, None);
    }

    /// Record `frame` with two bytes at `patch.0` replaced by `patch.1` (a finished checksum)
    /// when they fall inside the snap length.
    pub fn record_patched(&self, frame: &[u8], patch: Option<(usize, [u8; 2])>) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let kept = frame.len().min(self.snaplen);
        let mut sink = self.out.lock().expect("capture lock");
        if !self.room(&mut sink, RECORD_HEADER + kept as u64) {
            sink.dropped += 1;
            return;
        }
        sink.written += RECORD_HEADER + kept as u64;
        let out = &mut sink.out;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
        header[8..12].copy_from_slice(&(kept as u32).to_le_bytes());
        header[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        // A capture that cannot be written must not stop the wire.
        let _ = match patch.filter(|(at, _)| at + 2 <= kept) {
            Some((at, bytes)) => out
                .write_all(&header)
                .and_then(|()| out.write_all(&frame[..at]))
                .and_then(|()| out.write_all(&bytes))
                .and_then(|()| out.write_all(&frame[at + 2..kept])),
            None => out
                .write_all(&header)
                .and_then(|()| out.write_all(&frame[..kept])),
        };
    }

    pub fn flush(&self) {
        let _ = self.out.lock().expect("capture lock").out.flush();
    }
}

fn ring_file(stem: &Path, seq: u64) -> PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(format!(".{seq:06}.pcap"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (record count, bytes) of a pcap file, checking its header and that it ends on a
    /// record boundary.
    fn records(path: &Path) -> (usize, u64) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            &bytes[..4],
            &0xa1b2_c3d4u32.to_le_bytes(),
            "{}",
            path.display()
        );
        let mut at = FILE_HEADER as usize;
        let mut n = 0;
        while at < bytes.len() {
            let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            at += RECORD_HEADER as usize + caplen;
            n += 1;
        }
        assert_eq!(at, bytes.len(), "{}: a torn record", path.display());
        (n, bytes.len() as u64)
    }

    fn frame(i: u32) -> Vec<u8> {
        let mut f = vec![0u8; 200];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f
    }

    #[test]
    fn a_ring_keeps_the_newest_files_each_within_its_share() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c1.lab.pcap");
        let limit = Limit::share(3 * 4096, 1, 3);
        assert_eq!(limit.file_bytes, 4096);
        let c = Capture::create_limited(&path, 128, Some(limit)).unwrap();
        for i in 0..1000 {
            c.record(&frame(i));
        }
        c.flush();
        let files = c.files();
        assert_eq!(files.len(), 3);
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // 28 records of 144 bytes fit in 4096 with the header: 1000 frames make 36 files.
        assert_eq!(
            names,
            [
                "c1.lab.000033.pcap",
                "c1.lab.000034.pcap",
                "c1.lab.000035.pcap"
            ]
        );
        let mut on_disk: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        on_disk.sort_by_key(|e| e.file_name());
        assert_eq!(on_disk.len(), 3, "older files deleted");
        let mut total = 0;
        for f in &files {
            let (n, bytes) = records(f);
            assert!(
                n > 0 && bytes <= 4096,
                "{}: {n} records, {bytes} B",
                f.display()
            );
            total += n;
        }
        // The newest frame is the last record of the newest file.
        let last = std::fs::read(&files[2]).unwrap();
        let tail = &last[last.len() - 128..];
        assert_eq!(&tail[..4], &999u32.to_be_bytes());
        assert_eq!(c.dropped(), 0);
        assert_eq!(total, 1000 - 33 * 28, "the newest 76 frames kept");
    }

    #[test]
    fn one_file_stops_when_full_and_keeps_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs1.pcap");
        let c = Capture::create_limited(&path, 128, Some(Limit::share(4096, 1, 1))).unwrap();
        for i in 0..100 {
            c.record(&frame(i));
        }
        c.flush();
        let (n, bytes) = records(&path);
        assert_eq!((n, bytes), (28, 24 + 28 * 144));
        assert_eq!(c.dropped(), 72);
        let first = std::fs::read(&path).unwrap();
        assert_eq!(&first[40..44], &0u32.to_be_bytes());
        assert_eq!(c.files(), [path]);
    }

    #[test]
    fn a_frame_bigger_than_a_file_is_dropped_not_written_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs1.pcap");
        let c = Capture::create_limited(&path, 65535, Some(Limit::share(2 * 1000, 1, 2))).unwrap();
        c.record(&vec![0u8; 5000]);
        c.record(&frame(1));
        c.flush();
        assert_eq!(c.dropped(), 1);
        let (n, bytes) = records(&c.files()[0]);
        assert_eq!(n, 1);
        assert!(bytes <= 1000);
    }
}
