//! Readiness: a server is ready when a real SMB2 NEGOTIATE is answered, not after a sleep.
//! Kept to one request so the lab does not depend on the full wire client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NEGOTIATE: u16 = 0;
const ECHO: u16 = 13;

/// One SMB2 request with the direct-TCP length prefix: a sync header (no session, no tree,
/// unsigned) and `body`.
fn request(command: u16, credit_request: u16, message_id: u64, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(4 + 64 + body.len());
    msg.extend_from_slice(&(64 + body.len() as u32).to_be_bytes());
    msg.extend_from_slice(b"\xfeSMB");
    msg.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    msg.extend_from_slice(&[0; 2 + 4]); // CreditCharge, Status
    msg.extend_from_slice(&command.to_le_bytes());
    msg.extend_from_slice(&credit_request.to_le_bytes());
    msg.extend_from_slice(&[0; 4 + 4]); // Flags, NextCommand
    msg.extend_from_slice(&message_id.to_le_bytes());
    msg.extend_from_slice(&[0; 8 + 8 + 16]); // Reserved+TreeId, SessionId, Signature
    msg.extend_from_slice(body);
    msg
}

/// Send `msg` and read one response frame, within `timeout`.
async fn exchange(
    stream: &mut TcpStream,
    msg: &[u8],
    what: &str,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let round_trip = async {
        stream
            .write_all(msg)
            .await
            .map_err(|e| format!("send {what}: {e}"))?;
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| format!("read {what} response: {e}"))?;
        let len = u32::from_be_bytes(len) as usize & 0x00ff_ffff;
        if !(64..=1 << 20).contains(&len) {
            return Err(format!("{what} response of {len} bytes"));
        }
        let mut buf = vec![0u8; len];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| format!("read {what} response: {e}"))?;
        Ok(buf)
    };
    tokio::time::timeout(timeout, round_trip)
        .await
        .map_err(|_| format!("no {what} response within {timeout:?}"))?
}

/// Send an SMB2 NEGOTIATE offering 2.0.2 and 2.1; return the dialect the server picked.
pub async fn negotiate(stream: &mut TcpStream, timeout: Duration) -> Result<u16, String> {
    let mut body = Vec::with_capacity(40);
    body.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    body.extend_from_slice(&2u16.to_le_bytes()); // DialectCount
    body.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: signing enabled
    body.extend_from_slice(&[0; 2 + 4]); // Reserved, Capabilities
    body.extend_from_slice(b"smbchaos-probe!!"); // ClientGuid
    body.extend_from_slice(&[0; 8]); // ClientStartTime
    body.extend_from_slice(&0x0202u16.to_le_bytes());
    body.extend_from_slice(&0x0210u16.to_le_bytes());
    // CreditRequest 32: room for the ECHOes that may follow on this connection.
    let msg = request(NEGOTIATE, 32, 0, &body);
    check_response(&exchange(stream, &msg, "NEGOTIATE", timeout).await?)
}

/// After a NEGOTIATE on `stream`, one SMB2 ECHO (MessageId `message_id`); returns when its
/// response arrives. Samba answers ECHO without a session, so this measures the path and smbd
/// itself.
pub async fn echo(
    stream: &mut TcpStream,
    message_id: u64,
    timeout: Duration,
) -> Result<Duration, String> {
    let msg = request(ECHO, 1, message_id, &[4, 0, 0, 0]); // StructureSize 4, Reserved
    let started = std::time::Instant::now();
    let buf = exchange(stream, &msg, "ECHO", timeout).await?;
    if &buf[..4] != b"\xfeSMB" || u16::from_le_bytes([buf[12], buf[13]]) != ECHO {
        return Err("response is not an SMB2 ECHO response".to_string());
    }
    Ok(started.elapsed())
}

fn check_response(buf: &[u8]) -> Result<u16, String> {
    if buf.len() < 64 + 65 {
        return Err(format!("NEGOTIATE response of {} bytes", buf.len()));
    }
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
