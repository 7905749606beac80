//! Direct TCP transport framing (MS-SMB2 2.1): a zero byte, then a 24-bit
//! big-endian length, then the SMB2 message (or transform).

use std::io::IoSlice;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame the 24-bit length can express.
pub const MAX_FRAME: usize = 0x00FF_FFFF;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed by peer")]
    Eof,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame header {0:02x?}")]
    BadHeader([u8; 4]),
}

/// Parses the 4-byte header into a length.
pub fn parse_frame_header(h: [u8; 4]) -> Result<usize, FrameError> {
    if h[0] != 0 {
        return Err(FrameError::BadHeader(h));
    }
    Ok(u32::from_be_bytes(h) as usize)
}

pub fn frame_header(len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME);
    (len as u32).to_be_bytes()
}

/// RFC 1002's session keep-alive frame type: skipped with its payload, as smbd and
/// Samba's own client skip any frame whose type is not zero.
pub const KEEPALIVE: u8 = 0x85;

/// Reads one frame (skipping keep-alives); EOF before the first byte is [`FrameError::Eof`].
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut h = [0u8; 4];
    loop {
        match r.read_exact(&mut h).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Eof),
            Err(e) => return Err(e.into()),
        }
        if h[0] != KEEPALIVE {
            break;
        }
        let skip = u64::from(u32::from_be_bytes([0, h[1], h[2], h[3]]));
        let skipped = tokio::io::copy(&mut (&mut *r).take(skip), &mut tokio::io::sink()).await?;
        if skipped < skip {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    let len = parse_frame_header(h)?;
    // Read into spare capacity: no zeroing of a 1 MiB READ response first.
    // `take` bounds each read to this frame, so nothing of the next frame
    // lands here and the Vec never grows (no reallocation, no copy).
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let want = (len - buf.len()) as u64;
        if (&mut *r).take(want).read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
    Ok(buf)
}

/// Writes one frame: the 4-byte header and the message in one vectored
/// write (one segment burst, no copy of the message).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    if msg.len() > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "SMB2 frame over 16 MiB",
        ));
    }
    let header = frame_header(msg.len());
    let mut done = 0usize;
    let total = 4 + msg.len();
    while done < total {
        let n = if done < 4 {
            let bufs = [IoSlice::new(&header[done..]), IoSlice::new(msg)];
            w.write_vectored(&bufs).await?
        } else {
            w.write(&msg[done - 4..]).await?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_eof() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_frame(&mut a, b"hello").await.unwrap();
        assert_eq!(read_frame(&mut b).await.unwrap(), b"hello");
        // A frame cut short is an error, not a short frame.
        a.write_all(&[0, 0, 0, 9, b'x']).await.unwrap();
        drop(a);
        assert!(matches!(read_frame(&mut b).await, Err(FrameError::Io(_))));
        assert!(matches!(read_frame(&mut b).await, Err(FrameError::Eof)));
        assert!(parse_frame_header([1, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn frames_back_to_back_through_a_small_buffer_stay_apart() {
        // Frames larger than the read buffer and arriving together: each
        // read stops at its own frame's end.
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        write_frame(&mut a, &big).await.unwrap();
        write_frame(&mut a, b"next").await.unwrap();
        write_frame(&mut a, &big[..5000]).await.unwrap();
        drop(a);
        let mut r = tokio::io::BufReader::with_capacity(4096, b);
        assert_eq!(read_frame(&mut r).await.unwrap(), big);
        assert_eq!(read_frame(&mut r).await.unwrap(), b"next");
        assert_eq!(read_frame(&mut r).await.unwrap(), &big[..5000]);
        assert!(matches!(read_frame(&mut r).await, Err(FrameError::Eof)));
    }

    #[tokio::test]
    async fn keepalive_frames_are_skipped_with_their_payload() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        // What the wire's `drop` leaves of a message: type 0x85, the same length.
        a.write_all(&[KEEPALIVE, 0, 0, 3, 0xfe, b'S', b'M'])
            .await
            .unwrap();
        a.write_all(&[KEEPALIVE, 0, 0, 0]).await.unwrap();
        write_frame(&mut a, b"after").await.unwrap();
        a.write_all(&[KEEPALIVE, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b).await.unwrap(), b"after");
        assert!(matches!(read_frame(&mut b).await, Err(FrameError::Io(_))));
    }
}
