//! SMB2 Packet Header (MS-SMB2 2.2.1): a zero-copy [`Header`] view over the
//! first 64 bytes of a message, and a validated [`HeaderRepr`].

use super::{PutLe, Result, WireError};
use crate::NtStatus;

pub const HEADER_LEN: usize = 64;
pub const PROTOCOL_ID: [u8; 4] = [0xFE, b'S', b'M', b'B'];

/// SMB2 command codes (MS-SMB2 2.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Negotiate,
    SessionSetup,
    Logoff,
    TreeConnect,
    TreeDisconnect,
    Create,
    Close,
    Flush,
    Read,
    Write,
    Lock,
    Ioctl,
    Cancel,
    Echo,
    QueryDirectory,
    ChangeNotify,
    QueryInfo,
    SetInfo,
    OplockBreak,
    ServerToClientNotification,
    Unknown(u16),
}

impl From<u16> for Command {
    fn from(v: u16) -> Self {
        use Command::*;
        match v {
            0 => Negotiate,
            1 => SessionSetup,
            2 => Logoff,
            3 => TreeConnect,
            4 => TreeDisconnect,
            5 => Create,
            6 => Close,
            7 => Flush,
            8 => Read,
            9 => Write,
            10 => Lock,
            11 => Ioctl,
            12 => Cancel,
            13 => Echo,
            14 => QueryDirectory,
            15 => ChangeNotify,
            16 => QueryInfo,
            17 => SetInfo,
            18 => OplockBreak,
            19 => ServerToClientNotification,
            x => Unknown(x),
        }
    }
}

impl From<Command> for u16 {
    fn from(c: Command) -> u16 {
        use Command::*;
        match c {
            Negotiate => 0,
            SessionSetup => 1,
            Logoff => 2,
            TreeConnect => 3,
            TreeDisconnect => 4,
            Create => 5,
            Close => 6,
            Flush => 7,
            Read => 8,
            Write => 9,
            Lock => 10,
            Ioctl => 11,
            Cancel => 12,
            Echo => 13,
            QueryDirectory => 14,
            ChangeNotify => 15,
            QueryInfo => 16,
            SetInfo => 17,
            OplockBreak => 18,
            ServerToClientNotification => 19,
            Unknown(x) => x,
        }
    }
}

/// SMB2 header Flags (MS-SMB2 2.2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HeaderFlags(pub u32);

impl HeaderFlags {
    pub const SERVER_TO_REDIR: HeaderFlags = HeaderFlags(0x0000_0001);
    pub const ASYNC_COMMAND: HeaderFlags = HeaderFlags(0x0000_0002);
    pub const RELATED_OPERATIONS: HeaderFlags = HeaderFlags(0x0000_0004);
    pub const SIGNED: HeaderFlags = HeaderFlags(0x0000_0008);
    pub const PRIORITY_MASK: HeaderFlags = HeaderFlags(0x0000_0070);
    pub const DFS_OPERATIONS: HeaderFlags = HeaderFlags(0x1000_0000);
    pub const REPLAY_OPERATION: HeaderFlags = HeaderFlags(0x2000_0000);

    pub const fn empty() -> Self {
        HeaderFlags(0)
    }
    pub const fn contains(self, o: HeaderFlags) -> bool {
        self.0 & o.0 == o.0
    }
    pub fn insert(&mut self, o: HeaderFlags) {
        self.0 |= o.0
    }
    pub fn remove(&mut self, o: HeaderFlags) {
        self.0 &= !o.0
    }
}

impl std::ops::BitOr for HeaderFlags {
    type Output = HeaderFlags;
    fn bitor(self, o: HeaderFlags) -> HeaderFlags {
        HeaderFlags(self.0 | o.0)
    }
}

mod field {
    pub const PROTOCOL_ID: core::ops::Range<usize> = 0..4;
    pub const CREDIT_CHARGE: usize = 6;
    pub const STATUS: usize = 8;
    pub const COMMAND: usize = 12;
    pub const CREDIT: usize = 14;
    pub const FLAGS: usize = 16;
    pub const NEXT_COMMAND: usize = 20;
    pub const MESSAGE_ID: usize = 24;
    pub const ASYNC_ID: usize = 32;
    pub const TREE_ID: usize = 36;
    pub const SESSION_ID: usize = 40;
    pub const SIGNATURE: core::ops::Range<usize> = 48..64;
}

/// A read-only view of an SMB2 header. Built only through
/// [`Header::new_checked`], so the accessors cannot go out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks length, ProtocolId and StructureSize.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("SMB2 header"));
        }
        let mut id = [0u8; 4];
        id.copy_from_slice(&b[field::PROTOCOL_ID]);
        if id != PROTOCOL_ID {
            return Err(WireError::BadProtocolId(id));
        }
        let ss = u16::from_le_bytes([b[4], b[5]]);
        if ss != 64 {
            return Err(WireError::BadStructureSize {
                what: "SMB2 header",
                got: ss,
            });
        }
        Ok(Header { buffer })
    }
    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }
    fn u64_at(&self, at: usize) -> u64 {
        let b = self.buffer.as_ref();
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(a)
    }
    pub fn credit_charge(&self) -> u16 {
        self.u16_at(field::CREDIT_CHARGE)
    }
    /// Status in responses; ChannelSequence + Reserved in 3.x requests.
    pub fn status(&self) -> NtStatus {
        NtStatus(self.u32_at(field::STATUS))
    }
    pub fn channel_sequence(&self) -> u16 {
        self.u16_at(field::STATUS)
    }
    pub fn command(&self) -> Command {
        Command::from(self.u16_at(field::COMMAND))
    }
    /// CreditRequest (requests) / CreditResponse (responses).
    pub fn credit(&self) -> u16 {
        self.u16_at(field::CREDIT)
    }
    pub fn flags(&self) -> HeaderFlags {
        HeaderFlags(self.u32_at(field::FLAGS))
    }
    pub fn next_command(&self) -> u32 {
        self.u32_at(field::NEXT_COMMAND)
    }
    pub fn message_id(&self) -> u64 {
        self.u64_at(field::MESSAGE_ID)
    }
    pub fn async_id(&self) -> Option<u64> {
        self.flags()
            .contains(HeaderFlags::ASYNC_COMMAND)
            .then(|| self.u64_at(field::ASYNC_ID))
    }
    pub fn tree_id(&self) -> Option<u32> {
        (!self.flags().contains(HeaderFlags::ASYNC_COMMAND)).then(|| self.u32_at(field::TREE_ID))
    }
    pub fn session_id(&self) -> u64 {
        self.u64_at(field::SESSION_ID)
    }
    pub fn signature(&self) -> [u8; 16] {
        let mut s = [0u8; 16];
        s.copy_from_slice(&self.buffer.as_ref()[field::SIGNATURE]);
        s
    }
}

/// Sync (TreeId) or async (AsyncId) form of header bytes 32..40.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderId {
    Sync { reserved: u32, tree_id: u32 },
    Async { async_id: u64 },
}

/// Every field of an SMB2 header, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeaderRepr {
    pub credit_charge: u16,
    /// NTSTATUS in responses. In 3.x requests the low 16 bits are the
    /// ChannelSequence (see [`HeaderRepr::channel_sequence`]).
    pub status: NtStatus,
    pub command: Command,
    pub credit: u16,
    pub flags: HeaderFlags,
    pub next_command: u32,
    pub message_id: u64,
    pub id: HeaderId,
    pub session_id: u64,
    pub signature: [u8; 16],
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> HeaderRepr {
        let b = h.buffer.as_ref();
        let id = if h.flags().contains(HeaderFlags::ASYNC_COMMAND) {
            HeaderId::Async {
                async_id: h.u64_at(field::ASYNC_ID),
            }
        } else {
            HeaderId::Sync {
                reserved: h.u32_at(field::ASYNC_ID),
                tree_id: h.u32_at(field::TREE_ID),
            }
        };
        let _ = b;
        HeaderRepr {
            credit_charge: h.credit_charge(),
            status: h.status(),
            command: h.command(),
            credit: h.credit(),
            flags: h.flags(),
            next_command: h.next_command(),
            message_id: h.message_id(),
            id,
            session_id: h.session_id(),
            signature: h.signature(),
        }
    }

    /// Parses the header at the start of `msg`.
    pub fn parse_bytes(msg: &[u8]) -> Result<HeaderRepr> {
        Ok(HeaderRepr::parse(&Header::new_checked(msg)?))
    }

    pub fn channel_sequence(&self) -> u16 {
        self.status.0 as u16
    }
    pub fn tree_id(&self) -> Option<u32> {
        match self.id {
            HeaderId::Sync { tree_id, .. } => Some(tree_id),
            HeaderId::Async { .. } => None,
        }
    }
    pub fn async_id(&self) -> Option<u64> {
        match self.id {
            HeaderId::Async { async_id } => Some(async_id),
            HeaderId::Sync { .. } => None,
        }
    }
    pub fn is_response(&self) -> bool {
        self.flags.contains(HeaderFlags::SERVER_TO_REDIR)
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&PROTOCOL_ID);
        buf.put_u16(64);
        buf.put_u16(self.credit_charge);
        buf.put_u32(self.status.0);
        buf.put_u16(self.command.into());
        buf.put_u16(self.credit);
        let mut flags = self.flags;
        match self.id {
            HeaderId::Async { .. } => flags.insert(HeaderFlags::ASYNC_COMMAND),
            HeaderId::Sync { .. } => flags.remove(HeaderFlags::ASYNC_COMMAND),
        }
        buf.put_u32(flags.0);
        buf.put_u32(self.next_command);
        buf.put_u64(self.message_id);
        match self.id {
            HeaderId::Sync { reserved, tree_id } => {
                buf.put_u32(reserved);
                buf.put_u32(tree_id);
            }
            HeaderId::Async { async_id } => buf.put_u64(async_id),
        }
        buf.put_u64(self.session_id);
        buf.extend_from_slice(&self.signature);
    }
}

/// Offset of the Signature field, for signing code.
pub const SIGNATURE_OFFSET: usize = 48;
/// Offset of the Flags field, for signing code.
pub const FLAGS_OFFSET: usize = field::FLAGS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sync_and_async() {
        for id in [
            HeaderId::Sync {
                reserved: 0xFEFF,
                tree_id: 7,
            },
            HeaderId::Async { async_id: 0x1234 },
        ] {
            let r = HeaderRepr {
                credit_charge: 3,
                status: NtStatus(0xC000_0034),
                command: Command::Create,
                credit: 31,
                flags: HeaderFlags::SERVER_TO_REDIR | HeaderFlags::REPLAY_OPERATION,
                next_command: 0,
                message_id: 42,
                id,
                session_id: 0x1122334455667788,
                signature: [9; 16],
            };
            let mut b = Vec::new();
            r.emit(&mut b);
            assert_eq!(b.len(), HEADER_LEN);
            let mut back = HeaderRepr::parse_bytes(&b).unwrap();
            back.flags.remove(HeaderFlags::ASYNC_COMMAND);
            assert_eq!(back, r);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(HeaderRepr::parse_bytes(&[0xFE, b'S', b'M']).is_err());
        let mut b = vec![0u8; 64];
        assert!(matches!(
            HeaderRepr::parse_bytes(&b),
            Err(WireError::BadProtocolId(_))
        ));
        b[..4].copy_from_slice(&PROTOCOL_ID);
        assert!(matches!(
            HeaderRepr::parse_bytes(&b),
            Err(WireError::BadStructureSize { .. })
        ));
    }
}
