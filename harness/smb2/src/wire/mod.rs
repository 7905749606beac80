//! SMB2/3 wire formats, modelled on smoltcp's `src/wire`: a zero-copy view
//! for the fixed header ([`header::Header`]) and a validated `Repr` per
//! message body. Every parser takes untrusted bytes and returns
//! [`WireError`] instead of panicking.
//!
//! Offsets inside SMB2 bodies are relative to the start of the SMB2 header,
//! so body parsers take the whole message (header included) and emitters
//! assume the body starts at [`header::HEADER_LEN`].

pub mod cancel;
pub mod close;
pub mod create;
pub mod create_contexts;
pub mod echo;
pub mod error_response;
pub mod flush;
pub mod header;
pub mod info;
pub mod ioctl;
pub mod lock;
pub mod logoff;
pub mod negotiate;
pub mod oplock_break;
pub mod read;
pub mod session_setup;
pub mod transform;
pub mod tree_connect;
pub mod tree_disconnect;
pub mod write;

use std::fmt;

pub use header::{Command, Header, HeaderFlags, HeaderRepr, HEADER_LEN};

/// Why bytes could not be understood as the message they claim to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated: {0}")]
    Truncated(&'static str),
    #[error("bad protocol id {0:02x?}")]
    BadProtocolId([u8; 4]),
    #[error("bad structure size for {what}: {got}")]
    BadStructureSize { what: &'static str, got: u16 },
    #[error("field out of bounds: {0}")]
    OutOfBounds(&'static str),
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

pub type Result<T> = std::result::Result<T, WireError>;

/// A bounds-checked little-endian reader over untrusted bytes.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let s = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn guid(&mut self, what: &'static str) -> Result<Guid> {
        Ok(Guid(self.array(what)?))
    }
}

/// `buf[offset..offset + len]`, or an error naming the field.
pub fn slice_at<'a>(
    buf: &'a [u8],
    offset: usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8]> {
    let end = offset
        .checked_add(len)
        .ok_or(WireError::OutOfBounds(what))?;
    buf.get(offset..end).ok_or(WireError::OutOfBounds(what))
}

/// Reads a body's fixed StructureSize and checks it.
pub fn expect_structure_size(r: &mut Reader<'_>, what: &'static str, want: u16) -> Result<()> {
    let got = r.u16(what)?;
    if got != want {
        return Err(WireError::BadStructureSize { what, got });
    }
    Ok(())
}

/// Little-endian append helpers for emitters.
pub trait PutLe {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn pad_to(&mut self, align: usize);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v)
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes())
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes())
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes())
    }
    fn pad_to(&mut self, align: usize) {
        while !self.len().is_multiple_of(align) {
            self.push(0)
        }
    }
}

/// Writes `v` at `at` (used to back-patch offsets and lengths).
/// Back-patch a field the emitter wrote earlier (an offset or length known only later).
/// Never panics: a field outside `buf` (an emitter bug) is left alone, and the decoder tests
/// that round-trip every emitter would show it.
pub(crate) fn patch_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(field) = at.checked_add(4).and_then(|end| buf.get_mut(at..end)) {
        field.copy_from_slice(&v.to_le_bytes());
    }
}
pub(crate) fn patch_u16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(field) = at.checked_add(2).and_then(|end| buf.get_mut(at..end)) {
        field.copy_from_slice(&v.to_le_bytes());
    }
}

/// A GUID in its wire (mixed-endian, as stored) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);
    pub fn random() -> Guid {
        Guid(rand::random())
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

/// SMB2_FILEID: persistent and volatile halves.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct FileId {
    pub persistent: u64,
    pub volatile: u64,
}

impl FileId {
    /// The all-ones id used by related compound requests and some notifications.
    pub const ANY: FileId = FileId {
        persistent: u64::MAX,
        volatile: u64::MAX,
    };
    pub fn read(r: &mut Reader<'_>) -> Result<FileId> {
        Ok(FileId {
            persistent: r.u64("FileId.Persistent")?,
            volatile: r.u64("FileId.Volatile")?,
        })
    }
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.put_u64(self.persistent);
        buf.put_u64(self.volatile);
    }
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.persistent.to_le_bytes());
        b[8..].copy_from_slice(&self.volatile.to_le_bytes());
        b
    }
}

/// UTF-16LE encoding as SMB2 carries names.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// Lossy UTF-16LE decoding (odd trailing byte ignored); never fails.
pub fn from_utf16le(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Helper for body types: every request body knows its command and how to
/// emit itself; every response body knows how to parse itself.
pub trait RequestBody {
    const COMMAND: Command;
    type Response: ResponseBody;
    /// Appends the body; `buf` already holds the 64-byte header.
    fn emit(&self, buf: &mut Vec<u8>);
    /// Bytes of payload for CreditCharge (READ/WRITE/IOCTL/QUERY_*).
    fn payload_size(&self) -> usize {
        0
    }
}

pub trait ResponseBody: Sized {
    /// Parses the body of `msg` (header at offset 0).
    fn parse(msg: &[u8]) -> Result<Self>;
    /// Whether a response with this status carries this body rather than an
    /// SMB2 ERROR body.
    fn has_body(status: crate::NtStatus) -> bool {
        !status.is_error() && !status.is_warning()
            || status == crate::NtStatus::STATUS_BUFFER_OVERFLOW
    }
}

#[cfg(test)]
mod patch_tests {
    #[test]
    fn back_patching_outside_the_buffer_does_not_panic() {
        let mut buf = [0u8; 6];
        super::patch_u32(&mut buf, 4, 0xdead_beef);
        super::patch_u16(&mut buf, usize::MAX, 1);
        assert_eq!(buf, [0; 6]);
        super::patch_u32(&mut buf, 2, 0x0403_0201);
        assert_eq!(buf, [0, 0, 1, 2, 3, 4]);
    }
}
