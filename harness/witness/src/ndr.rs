//! NDR 2.0 (C706 chapter 14, little-endian data representation) for the few shapes the
//! witness and endpoint-mapper calls use: aligned scalars, unique pointers (referent ids),
//! conformant and conformant-varying arrays, UTF-16 strings, GUIDs and policy handles.
//! Alignment is relative to the start of the stub, which DCE/RPC places 8-aligned.
//!
//! The reader takes untrusted bytes: every read is bounds-checked and every count is
//! checked against the bytes left before anything is allocated, so no input panics or
//! allocates more than its own length.

use std::fmt;

/// Why stub bytes are not the value they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NdrError {
    #[error("NDR truncated reading {0}")]
    Truncated(&'static str),
    #[error("NDR {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

pub type Result<T> = std::result::Result<T, NdrError>;

fn malformed(what: &'static str, detail: impl Into<String>) -> NdrError {
    NdrError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// A DCE UUID (GUID), kept in its string form's field order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid {
    pub d1: u32,
    pub d2: u16,
    pub d3: u16,
    pub d4: [u8; 8],
}

impl Uuid {
    /// From "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"; `None` if it is not one.
    pub const fn parse(s: &str) -> Option<Uuid> {
        let b = s.as_bytes();
        if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        const fn hex(c: u8) -> Option<u64> {
            match c {
                b'0'..=b'9' => Some((c - b'0') as u64),
                b'a'..=b'f' => Some((c - b'a' + 10) as u64),
                b'A'..=b'F' => Some((c - b'A' + 10) as u64),
                _ => None,
            }
        }
        const fn field(b: &[u8], from: usize, to: usize) -> Option<u64> {
            let mut v = 0u64;
            let mut i = from;
            while i < to {
                v = match hex(b[i]) {
                    Some(h) => (v << 4) | h,
                    None => return None,
                };
                i += 1;
            }
            Some(v)
        }
        let (Some(d1), Some(d2), Some(d3), Some(d4a), Some(d4b)) = (
            field(b, 0, 8),
            field(b, 9, 13),
            field(b, 14, 18),
            field(b, 19, 23),
            field(b, 24, 36),
        ) else {
            return None;
        };
        let mut d4 = [0u8; 8];
        d4[0] = (d4a >> 8) as u8;
        d4[1] = d4a as u8;
        let mut i = 0;
        while i < 6 {
            d4[2 + i] = (d4b >> (40 - 8 * i)) as u8;
            i += 1;
        }
        Some(Uuid {
            d1: d1 as u32,
            d2: d2 as u16,
            d3: d3 as u16,
            d4,
        })
    }

    /// The 16 bytes NDR (and a tower's floor) carry: the first three fields little-endian.
    pub fn to_le_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.d1.to_le_bytes());
        b[4..6].copy_from_slice(&self.d2.to_le_bytes());
        b[6..8].copy_from_slice(&self.d3.to_le_bytes());
        b[8..].copy_from_slice(&self.d4);
        b
    }

    pub fn from_le_bytes(b: [u8; 16]) -> Uuid {
        let mut d4 = [0u8; 8];
        d4.copy_from_slice(&b[8..]);
        Uuid {
            d1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            d2: u16::from_le_bytes([b[4], b[5]]),
            d3: u16::from_le_bytes([b[6], b[7]]),
            d4,
        }
    }

    pub fn random() -> Uuid {
        Uuid::from_le_bytes(rand::random())
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.d4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.d1, self.d2, self.d3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An RPC context handle (policy_handle): what Register returns and the other calls name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ContextHandle {
    pub attributes: u32,
    pub uuid: Uuid,
}

impl ContextHandle {
    pub const LEN: usize = 20;

    pub fn is_null(&self) -> bool {
        self.attributes == 0 && self.uuid == Uuid::default()
    }
}

/// Builds a stub.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    next_referent: u32,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            buf: Vec::new(),
            next_referent: 0x0002_0000,
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn uuid(&mut self, u: &Uuid) {
        self.align(4);
        self.buf.extend_from_slice(&u.to_le_bytes());
    }

    pub fn handle(&mut self, h: &ContextHandle) {
        self.u32(h.attributes);
        self.uuid(&h.uuid);
    }

    /// A non-null unique/full pointer's referent id (the pointee follows later).
    pub fn referent(&mut self) {
        self.next_referent += 4;
        let id = self.next_referent;
        self.u32(id);
    }

    /// A null pointer.
    pub fn null(&mut self) {
        self.u32(0);
    }

    /// `[string, charset(UTF16)] uint16 *` pointee: conformant varying, NUL included.
    pub fn string(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
        let n = units.len() as u32;
        self.u32(n); // max_count
        self.u32(0); // offset
        self.u32(n); // actual_count
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }

    /// A `[unique, string]` parameter: null for `None`, else referent and string.
    pub fn unique_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.referent();
                self.string(s);
            }
            None => self.null(),
        }
    }
}

/// Reads a stub.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn align(&mut self, n: usize, what: &'static str) -> Result<()> {
        let pad = (n - self.pos % n) % n;
        self.take(pad, what).map(|_| ())
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(NdrError::Truncated(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.align(2, what)?;
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.align(4, what)?;
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub fn uuid(&mut self, what: &'static str) -> Result<Uuid> {
        self.align(4, what)?;
        Ok(Uuid::from_le_bytes(self.array(what)?))
    }

    pub fn handle(&mut self, what: &'static str) -> Result<ContextHandle> {
        Ok(ContextHandle {
            attributes: self.u32(what)?,
            uuid: self.uuid(what)?,
        })
    }

    /// A unique pointer's referent id: `true` when a pointee follows.
    pub fn pointer(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.u32(what)? != 0)
    }

    /// A conformant array's count, refused when `elem` bytes each would not fit.
    pub fn count(&mut self, elem: usize, what: &'static str) -> Result<usize> {
        let n = self.u32(what)? as usize;
        if n.saturating_mul(elem.max(1)) > self.remaining() {
            return Err(malformed(
                what,
                format!(
                    "count {n} needs more than the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }

    /// A conformant-varying header (max_count, offset, actual_count): the actual count.
    pub fn varying(&mut self, elem: usize, what: &'static str) -> Result<usize> {
        let max = self.u32(what)?;
        let offset = self.u32(what)?;
        let actual = self.count(elem, what)?;
        if offset != 0 || actual as u64 > u64::from(max) {
            return Err(malformed(
                what,
                format!("offset {offset}, actual {actual} > max {max}"),
            ));
        }
        Ok(actual)
    }

    /// A conformant-varying UTF-16 string pointee (NUL-terminated on the wire).
    pub fn string(&mut self, what: &'static str) -> Result<String> {
        let n = self.varying(2, what)?;
        let raw = self.take(n * 2, what)?;
        Ok(utf16_until_nul(raw))
    }

    /// The return value of a call: the last four bytes, aligned.
    pub fn status(&mut self, what: &'static str) -> Result<u32> {
        let v = self.u32(what)?;
        if self.remaining() != 0 {
            return Err(malformed(
                what,
                format!("{} bytes after the return value", self.remaining()),
            ));
        }
        Ok(v)
    }
}

/// UTF-16LE bytes up to the first NUL (lossy: a server's bad surrogate is not our panic).
pub fn utf16_until_nul(raw: &[u8]) -> String {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_string_round_trip_and_wire_order() {
        let u = Uuid::parse("ccd8c074-d0e5-4a40-92b4-d074faa6ba28").unwrap();
        assert_eq!(u.to_string(), "ccd8c074-d0e5-4a40-92b4-d074faa6ba28");
        assert_eq!(
            u.to_le_bytes()[..8],
            [0x74, 0xc0, 0xd8, 0xcc, 0xe5, 0xd0, 0x40, 0x4a]
        );
        assert_eq!(Uuid::from_le_bytes(u.to_le_bytes()), u);
        assert_eq!(Uuid::parse("ccd8c074-d0e5-4a40-92b4-d074faa6ba2"), None);
        assert_eq!(Uuid::parse("ccd8c074xd0e5-4a40-92b4-d074faa6ba28"), None);
        assert_eq!(Uuid::parse("gcd8c074-d0e5-4a40-92b4-d074faa6ba28"), None);
    }

    #[test]
    fn string_layout_and_read_back() {
        let mut w = Writer::new();
        w.u8(1);
        w.unique_string(Some("ab"));
        w.unique_string(None);
        let b = w.into_bytes();
        // u8, pad 3, referent, max 3, offset 0, actual 3, "a\0b\0\0\0", pad 2, null.
        assert_eq!(b.len(), 4 + 4 + 12 + 6 + 2 + 4);
        let mut r = Reader::new(&b);
        r.u8("x").unwrap();
        assert!(r.pointer("p").unwrap());
        assert_eq!(r.string("s").unwrap(), "ab");
        assert!(!r.pointer("p").unwrap());
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn counts_larger_than_the_input_are_refused_before_allocating() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        w.u32(0);
        w.u32(u32::MAX);
        let b = w.into_bytes();
        assert!(Reader::new(&b).count(4, "n").is_err());
        assert!(Reader::new(&b).string("s").is_err());
    }
}
