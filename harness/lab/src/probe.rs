//! Readiness: a server is ready when a real SMB2 NEGOTIATE is answered, not after a sleep.
//! Kept to one request so the lab does not depend on the full wire client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send an SMB2 NEGOTIATE offering 2.0.2 and 2.1; return the dialect the server picked.
pub async fn negotiate(stream: &mut TcpStream, timeout: Duration) -> Result<u16, String> {
    let mut msg = Vec::with_capacity(4 + 64 + 40);
    let body_len: u32 = 64 + 36 + 4;
    msg.extend_from_slice(&body_len.to_be_bytes()); // direct TCP transport header
    msg.extend_from_slice(b"\xfeSMB");
    msg.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    msg.extend_from_slice(&[0; 2]); // CreditCharge
    msg.extend_from_slice(&[0; 4]); // Status
    msg.extend_from_slice(&0u16.to_le_bytes()); // Command: NEGOTIATE
    msg.extend_from_slice(&32u16.to_le_bytes()); // CreditRequest: room for later ECHOes
    msg.extend_from_slice(&[0; 4]); // Flags
    msg.extend_from_slice(&[0; 4]); // NextCommand
    msg.extend_from_slice(&[0; 8]); // MessageId 0
    msg.extend_from_slice(&[0; 8]); // Reserved, TreeId
    msg.extend_from_slice(&[0; 8]); // SessionId
    msg.extend_from_slice(&[0; 16]); // Signature
    msg.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    msg.extend_from_slice(&2u16.to_le_bytes()); // DialectCount
    msg.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    msg.extend_from_slice(&[0; 2]); // Reserved
    msg.extend_from_slice(&[0; 4]); // Capabilities
    msg.extend_from_slice(b"smbchaos-probe!!"); // ClientGuid
    msg.extend_from_slice(&[0; 8]); // ClientStartTime
    msg.extend_from_slice(&0x0202u16.to_le_bytes());
    msg.extend_from_slice(&0x0210u16.to_le_bytes());

    let exchange = async {
        stream
            .write_all(&msg)
            .await
            .map_err(|e| format!("send NEGOTIATE: {e}"))?;
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| format!("read NEGOTIATE response: {e}"))?;
        let len = u32::from_be_bytes(len) as usize & 0x00ff_ffff;
        if !(64 + 65..=1 << 20).contains(&len) {
            return Err(format!("NEGOTIATE response of {len} bytes"));
        }
        let mut buf = vec![0u8; len];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| format!("read NEGOTIATE response: {e}"))?;
        check_response(&buf)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no NEGOTIATE response within {timeout:?}"))?
}

/// After a NEGOTIATE on `stream`, one SMB2 ECHO (MessageId `message_id`); returns when its
/// response arrives. Samba answers ECHO without a session, so this measures the path and smbd
/// itself.
pub async fn echo(
    stream: &mut TcpStream,
    message_id: u64,
    timeout: Duration,
) -> Result<Duration, String> {
    let mut msg = Vec::with_capacity(4 + 64 + 4);
    msg.extend_from_slice(&(64u32 + 4).to_be_bytes());
    msg.extend_from_slice(b"\xfeSMB");
    msg.extend_from_slice(&64u16.to_le_bytes());
    msg.extend_from_slice(&[0; 2]); // CreditCharge
    msg.extend_from_slice(&[0; 4]); // Status
    msg.extend_from_slice(&13u16.to_le_bytes()); // Command: ECHO
    msg.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    msg.extend_from_slice(&[0; 8]); // Flags, NextCommand
    msg.extend_from_slice(&message_id.to_le_bytes());
    msg.extend_from_slice(&[0; 8 + 8 + 16]); // Reserved+TreeId, SessionId, Signature
    msg.extend_from_slice(&4u16.to_le_bytes()); // StructureSize
    msg.extend_from_slice(&[0; 2]);
    let started = std::time::Instant::now();
    let exchange = async {
        stream
            .write_all(&msg)
            .await
            .map_err(|e| format!("send ECHO: {e}"))?;
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| format!("read ECHO response: {e}"))?;
        let len = u32::from_be_bytes(len) as usize & 0x00ff_ffff;
        let mut buf = vec![0u8; len.min(1 << 20)];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| format!("read ECHO response: {e}"))?;
        if buf.len() < 64 || &buf[..4] != b"\xfeSMB" || buf[12] != 13 {
            return Err("response is not an SMB2 ECHO response".to_string());
        }
        Ok(started.elapsed())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no ECHO response within {timeout:?}"))?
}

fn check_response(buf: &[u8]) -> Result<u16, String> {
    let u16_at = |at: usize| u16::from_le_bytes([buf[at], buf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    if &buf[..4] != b"\xfeSMB" {
        return Err("response is not SMB2".into());
    }
    let (status, command, flags) = (u32_at(8), u16_at(12), u32_at(16));
    if command != 0 || flags & 1 == 0 {
        return Err(format!(
            "unexpected response: command {command:#x}, flags {flags:#x}"
        ));
    }
    if status != 0 {
        return Err(format!("NEGOTIATE failed with status {status:#010x}"));
    }
    if u16_at(64) != 65 {
        return Err("malformed NEGOTIATE response body".into());
    }
    Ok(u16_at(64 + 4))
}

#[cfg(test)]
mod tests {
    use super::check_response;

    #[test]
    fn rejects_garbage_without_panicking() {
        let mut ok = vec![0u8; 64 + 65];
        ok[..4].copy_from_slice(b"\xfeSMB");
        ok[16] = 1;
        ok[64] = 65;
        ok[68] = 0x10;
        ok[69] = 0x02;
        assert_eq!(check_response(&ok), Ok(0x0210));
        let mut bad = ok.clone();
        bad[8] = 0x22; // a status
        assert!(check_response(&bad)
            .unwrap_err()
            .contains("status 0x00000022"));
        bad = ok.clone();
        bad[0] = 0xff;
        assert!(check_response(&bad).is_err());
    }
}
