//! SMB2 OPLOCK_BREAK: oplock and lease break notifications, acknowledgments
//! and responses (MS-SMB2 2.2.23-2.2.25). The two families share a command
//! code and are told apart by StructureSize.

use super::{
    expect_structure_size, Command, FileId, PutLe, Reader, RequestBody, ResponseBody, Result,
    WireError, HEADER_LEN,
};

pub const SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED: u32 = 0x01;

/// Oplock Break Notification / Acknowledgment / Response body (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreak {
    pub oplock_level: u8,
    pub file_id: FileId,
}

impl OplockBreak {
    fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(24);
        buf.put_u8(self.oplock_level);
        buf.put_u8(0);
        buf.put_u32(0);
        self.file_id.emit(buf);
    }
    fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        let oplock_level = r.u8("OplockLevel")?;
        r.skip(5, "Reserved")?;
        Ok(OplockBreak {
            oplock_level,
            file_id: FileId::read(r)?,
        })
    }
}

/// Lease Break Notification (44 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakNotification {
    pub new_epoch: u16,
    pub flags: u32,
    pub lease_key: [u8; 16],
    pub current_lease_state: u32,
    pub new_lease_state: u32,
    pub break_reason: u32,
    pub access_mask_hint: u32,
    pub share_mask_hint: u32,
}

impl LeaseBreakNotification {
    pub fn ack_required(&self) -> bool {
        self.flags & SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED != 0
    }
    pub fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(44);
        buf.put_u16(self.new_epoch);
        buf.put_u32(self.flags);
        buf.extend_from_slice(&self.lease_key);
        buf.put_u32(self.current_lease_state);
        buf.put_u32(self.new_lease_state);
        buf.put_u32(self.break_reason);
        buf.put_u32(self.access_mask_hint);
        buf.put_u32(self.share_mask_hint);
    }
}

/// Lease Break Acknowledgment / Response (36 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAck {
    pub flags: u32,
    pub lease_key: [u8; 16],
    pub lease_state: u32,
    pub lease_duration: u64,
}

impl LeaseBreakAck {
    fn emit_body(&self, buf: &mut Vec<u8>) {
        buf.put_u16(36);
        buf.put_u16(0);
        buf.put_u32(self.flags);
        buf.extend_from_slice(&self.lease_key);
        buf.put_u32(self.lease_state);
        buf.put_u64(self.lease_duration);
    }
    fn parse_body(r: &mut Reader<'_>) -> Result<Self> {
        r.skip(2, "Reserved")?;
        Ok(LeaseBreakAck {
            flags: r.u32("Flags")?,
            lease_key: r.array("LeaseKey")?,
            lease_state: r.u32("LeaseState")?,
            lease_duration: r.u64("LeaseDuration")?,
        })
    }
}

/// A server-initiated OPLOCK_BREAK message (MessageId 0xFFFFFFFFFFFFFFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakNotification {
    Oplock(OplockBreak),
    Lease(LeaseBreakNotification),
}

impl BreakNotification {
    pub fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        match r.u16("StructureSize")? {
            24 => Ok(BreakNotification::Oplock(OplockBreak::parse_body(&mut r)?)),
            44 => {
                let new_epoch = r.u16("NewEpoch")?;
                Ok(BreakNotification::Lease(LeaseBreakNotification {
                    new_epoch,
                    flags: r.u32("Flags")?,
                    lease_key: r.array("LeaseKey")?,
                    current_lease_state: r.u32("CurrentLeaseState")?,
                    new_lease_state: r.u32("NewLeaseState")?,
                    break_reason: r.u32("BreakReason")?,
                    access_mask_hint: r.u32("AccessMaskHint")?,
                    share_mask_hint: r.u32("ShareMaskHint")?,
                }))
            }
            got => Err(WireError::BadStructureSize {
                what: "OPLOCK_BREAK notification",
                got,
            }),
        }
    }
}

/// Oplock Break Acknowledgment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreakAcknowledgment(pub OplockBreak);

impl RequestBody for OplockBreakAcknowledgment {
    const COMMAND: Command = Command::OplockBreak;
    type Response = OplockBreakResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        self.0.emit_body(buf)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreakResponse(pub OplockBreak);

impl ResponseBody for OplockBreakResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "OPLOCK_BREAK response", 24)?;
        Ok(OplockBreakResponse(OplockBreak::parse_body(&mut r)?))
    }
}

/// Lease Break Acknowledgment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAcknowledgment(pub LeaseBreakAck);

impl RequestBody for LeaseBreakAcknowledgment {
    const COMMAND: Command = Command::OplockBreak;
    type Response = LeaseBreakResponse;
    fn emit(&self, buf: &mut Vec<u8>) {
        self.0.emit_body(buf)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakResponse(pub LeaseBreakAck);

impl ResponseBody for LeaseBreakResponse {
    fn parse(msg: &[u8]) -> Result<Self> {
        let mut r = Reader::at(msg, HEADER_LEN);
        expect_structure_size(&mut r, "Lease Break response", 36)?;
        Ok(LeaseBreakResponse(LeaseBreakAck::parse_body(&mut r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_break_notification_round_trip() {
        let n = LeaseBreakNotification {
            new_epoch: 3,
            flags: SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED,
            lease_key: [5; 16],
            current_lease_state: 7,
            new_lease_state: 1,
            ..Default::default()
        };
        let mut b = vec![0; HEADER_LEN];
        n.emit_body(&mut b);
        assert_eq!(
            BreakNotification::parse(&b).unwrap(),
            BreakNotification::Lease(n)
        );
    }

    #[test]
    fn acks_round_trip() {
        let a = LeaseBreakAck {
            flags: 0,
            lease_key: [1; 16],
            lease_state: 1,
            lease_duration: 0,
        };
        let mut b = vec![0; HEADER_LEN];
        LeaseBreakAcknowledgment(a).emit(&mut b);
        assert_eq!(LeaseBreakResponse::parse(&b).unwrap().0, a);
        let o = OplockBreak {
            oplock_level: 1,
            file_id: FileId {
                persistent: 1,
                volatile: 2,
            },
        };
        let mut b = vec![0; HEADER_LEN];
        OplockBreakAcknowledgment(o).emit(&mut b);
        assert_eq!(OplockBreakResponse::parse(&b).unwrap().0, o);
        assert_eq!(
            BreakNotification::parse(&b).unwrap(),
            BreakNotification::Oplock(o)
        );
    }
}
