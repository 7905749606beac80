//! NTLMSSP message integrity and confidentiality (MS-NLMP 3.4) with extended session
//! security: what DCE/RPC needs at RPC_C_AUTHN_LEVEL_PKT_INTEGRITY / PKT_PRIVACY. SMB2
//! signs with its own keys and never uses this.
//!
//! The checksum covers a whole message (for DCE/RPC: the PDU up to the signature, with the
//! stub in plaintext) while only part of it (the stub) is encrypted, so both calls take the
//! message and the range to seal.

use std::ops::Range;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rc4::{consts::U16, KeyInit, Rc4, StreamCipher};

use crate::ntlm::flags::NTLMSSP_NEGOTIATE_KEY_EXCH;

/// Length of an NTLMSSP_MESSAGE_SIGNATURE.
pub const SIGNATURE_LEN: usize = 16;

const CLIENT_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const CLIENT_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const SERVER_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// RC4 with a one-off 16-byte key (the KEY_EXCH key wrap).
pub fn rc4(key: &[u8; 16], data: &mut [u8]) {
    Rc4::<U16>::new(key.into()).apply_keystream(data);
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Why a received message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("NTLMSSP signature is {0} bytes, not 16")]
    SignatureLength(usize),
    #[error("NTLMSSP signature version {0}, not 1")]
    SignatureVersion(u32),
    #[error("NTLMSSP sequence number {got}, expected {want}")]
    Sequence { got: u32, want: u32 },
    #[error("NTLMSSP checksum does not match: the message was altered or the keys differ")]
    Checksum,
    #[error("sealed range {0:?} is outside the message")]
    Range(Range<usize>),
}

/// One direction's keys and state.
struct Direction {
    sign_key: [u8; 16],
    seal: Rc4<U16>,
    seq: u32,
}

/// One side of an established NTLMSSP context (MS-NLMP 3.4.4 and 3.4.3 with
/// NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY and 128-bit keys).
pub struct NtlmSeal {
    send: Direction,
    recv: Direction,
    key_exch: bool,
}

impl std::fmt::Debug for NtlmSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmSeal")
            .field("send_seq", &self.send.seq)
            .field("recv_seq", &self.recv.seq)
            .finish_non_exhaustive()
    }
}

impl NtlmSeal {
    fn new(key: &[u8; 16], flags: u32, send: (&[u8], &[u8]), recv: (&[u8], &[u8])) -> Self {
        let dir = |(sign, seal): (&[u8], &[u8])| Direction {
            sign_key: md5(&[key, sign]),
            seal: Rc4::<U16>::new((&md5(&[key, seal])).into()),
            seq: 0,
        };
        NtlmSeal {
            send: dir(send),
            recv: dir(recv),
            key_exch: flags & NTLMSSP_NEGOTIATE_KEY_EXCH != 0,
        }
    }

    /// The client's side, from the exported session key and the negotiated flags.
    pub fn client(exported_session_key: &[u8; 16], flags: u32) -> NtlmSeal {
        Self::new(
            exported_session_key,
            flags,
            (CLIENT_SIGN, CLIENT_SEAL),
            (SERVER_SIGN, SERVER_SEAL),
        )
    }

    /// The server's side (what a client's tests answer with).
    pub fn server(exported_session_key: &[u8; 16], flags: u32) -> NtlmSeal {
        Self::new(
            exported_session_key,
            flags,
            (SERVER_SIGN, SERVER_SEAL),
            (CLIENT_SIGN, CLIENT_SEAL),
        )
    }

    fn checksum(sign_key: &[u8; 16], seq: u32, message: &[u8]) -> [u8; 8] {
        let mut m = <Hmac<Md5> as Mac>::new_from_slice(sign_key).expect("HMAC takes any key");
        m.update(&seq.to_le_bytes());
        m.update(message);
        let full: [u8; 16] = m.finalize().into_bytes().into();
        let mut out = [0u8; 8];
        out.copy_from_slice(&full[..8]);
        out
    }

    fn signature(checksum: [u8; 8], seq: u32) -> [u8; SIGNATURE_LEN] {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq.to_le_bytes());
        sig
    }

    /// Signs `message` as sent, sealing `message[seal]` in place when `seal` is given
    /// (MS-NLMP SEAL: checksum over the plaintext, data encrypted, then the checksum with
    /// the same RC4 handle).
    pub fn wrap(
        &mut self,
        message: &mut [u8],
        seal: Option<Range<usize>>,
    ) -> Result<[u8; SIGNATURE_LEN], SealError> {
        if let Some(r) = &seal {
            if r.start > r.end || r.end > message.len() {
                return Err(SealError::Range(r.clone()));
            }
        }
        let seq = self.send.seq;
        let mut checksum = Self::checksum(&self.send.sign_key, seq, message);
        if let Some(r) = seal {
            self.send.seal.apply_keystream(&mut message[r]);
        }
        if self.key_exch {
            self.send.seal.apply_keystream(&mut checksum);
        }
        self.send.seq = self.send.seq.wrapping_add(1);
        Ok(Self::signature(checksum, seq))
    }

    /// Unseals `message[seal]` in place (when given) and checks `signature` over the
    /// plaintext message, as received.
    pub fn unwrap(
        &mut self,
        message: &mut [u8],
        seal: Option<Range<usize>>,
        signature: &[u8],
    ) -> Result<(), SealError> {
        if signature.len() != SIGNATURE_LEN {
            return Err(SealError::SignatureLength(signature.len()));
        }
        if let Some(r) = &seal {
            if r.start > r.end || r.end > message.len() {
                return Err(SealError::Range(r.clone()));
            }
        }
        let version = u32::from_le_bytes(signature[..4].try_into().expect("4 bytes"));
        if version != 1 {
            return Err(SealError::SignatureVersion(version));
        }
        let seq = u32::from_le_bytes(signature[12..].try_into().expect("4 bytes"));
        if let Some(r) = seal {
            self.recv.seal.apply_keystream(&mut message[r]);
        }
        let mut got = [0u8; 8];
        got.copy_from_slice(&signature[4..12]);
        if self.key_exch {
            self.recv.seal.apply_keystream(&mut got);
        }
        let want_seq = self.recv.seq;
        self.recv.seq = self.recv.seq.wrapping_add(1);
        if seq != want_seq {
            return Err(SealError::Sequence {
                got: seq,
                want: want_seq,
            });
        }
        if got != Self::checksum(&self.recv.sign_key, seq, message) {
            return Err(SealError::Checksum);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unhex;
    use crate::ntlm::flags::*;
    use crate::wire::utf16le;

    /// MS-NLMP 4.2.4.4 GSS_WrapEx example (NTLMv2, KEY_EXCH, RandomSessionKey 0x55 * 16).
    #[test]
    fn ms_nlmp_4_2_4_4_seal_vector() {
        let key = [0x55u8; 16];
        let flags = NTLMSSP_NEGOTIATE_KEY_EXCH
            | NTLMSSP_NEGOTIATE_128
            | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NTLMSSP_NEGOTIATE_SEAL
            | NTLMSSP_NEGOTIATE_SIGN;
        let mut c = NtlmSeal::client(&key, flags);
        assert_eq!(
            c.send.sign_key.to_vec(),
            unhex("4788dc861b4782f35d43fd98fe1a2d39")
        );
        let mut msg = utf16le("Plaintext");
        let n = msg.len();
        let sig = c.wrap(&mut msg, Some(0..n)).unwrap();
        assert_eq!(msg, unhex("54e50165bf1936dc996020c1811b0f06fb5f"));
        assert_eq!(sig.to_vec(), unhex("010000007fb38ec5c55d497600000000"));
        assert_eq!(c.send.seq, 1);
    }

    /// A server's wrap is the client's unwrap.
    #[test]
    fn unwrap_accepts_the_peer_and_refuses_tampering() {
        let key = [7u8; 16];
        let flags = NTLMSSP_NEGOTIATE_KEY_EXCH | NTLMSSP_NEGOTIATE_SEAL;
        let mut client = NtlmSeal::client(&key, flags);
        let mut server = NtlmSeal::server(&key, flags);
        for round in 0..3u8 {
            let plain = vec![round; 40];
            let mut m = plain.clone();
            let sig = server.wrap(&mut m, Some(8..40)).unwrap();
            assert_ne!(m[8..], plain[8..]);
            client.unwrap(&mut m, Some(8..40), &sig).unwrap();
            assert_eq!(m, plain);
        }
        let mut m = vec![9u8; 40];
        let sig = server.wrap(&mut m, Some(8..40)).unwrap();
        m[0] ^= 1; // a header byte, signed but not sealed
        assert_eq!(
            client.unwrap(&mut m, Some(8..40), &sig),
            Err(SealError::Checksum)
        );
        assert_eq!(
            client.unwrap(&mut m, Some(8..41), &sig),
            Err(SealError::Range(8..41))
        );
        assert!(matches!(
            client.unwrap(&mut m, None, &sig[..15]),
            Err(SealError::SignatureLength(15))
        ));
    }
}
