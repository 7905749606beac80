//! Per-link packet capture in the classic pcap format (opens in Wireshark and tcpdump).
//! A segmentation-offload segment is recorded as the one large frame the wire forwarded
//! (IP total length up to 64 KiB, as a capture on a host with TSO/GRO shows), with the TCP
//! checksum the sender's kernel left to the device finished, so every checksum in the file
//! is right; on a path where a fault split it, the frames are recorded as split.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

pub struct Capture {
    out: Mutex<BufWriter<File>>,
    snaplen: usize,
}

impl Capture {
    pub fn create(path: &Path, snaplen: usize) -> std::io::Result<Capture> {
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, microsecond timestamps
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?; // thiszone, sigfigs
        out.write_all(&(snaplen as u32).to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(Capture {
            out: Mutex::new(out),
            snaplen,
        })
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
        let mut out = self.out.lock().expect("capture lock");
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
        let _ = self.out.lock().expect("capture lock").flush();
    }
}
