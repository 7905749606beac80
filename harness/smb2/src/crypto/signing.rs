//! SMB2 message signing (MS-SMB2 3.1.4.1): HMAC-SHA256 for 2.x, AES-CMAC for
//! 3.0/3.0.2 (and 3.1.1 by default), AES-GMAC when 3.1.1 negotiates it.

use aes::Aes128;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes128Gcm;
use cmac::Cmac;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::header::{Command, HeaderFlags, SIGNATURE_OFFSET};
use crate::wire::HEADER_LEN;

/// Which algorithm a session signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    HmacSha256,
    AesCmac,
    AesGmac,
}

/// Computes the 16-byte signature of one SMB2 message (no compound
/// chaining: `msg` is a single message with its Signature field zeroed or
/// not — it is treated as zero).
pub fn compute(alg: SigningAlgorithm, key: &[u8], msg: &[u8]) -> Option<[u8; 16]> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let head = &msg[..SIGNATURE_OFFSET];
    let body = &msg[HEADER_LEN..];
    let zero = [0u8; 16];
    let mut out = [0u8; 16];
    match alg {
        SigningAlgorithm::HmacSha256 => {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
            m.update(head);
            m.update(&zero);
            m.update(body);
            out.copy_from_slice(&m.finalize().into_bytes()[..16]);
        }
        SigningAlgorithm::AesCmac => {
            let k = key.get(..16)?;
            let mut m = <Cmac<Aes128> as Mac>::new_from_slice(k).ok()?;
            m.update(head);
            m.update(&zero);
            m.update(body);
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        SigningAlgorithm::AesGmac => {
            let k = key.get(..16)?;
            let message_id = u64::from_le_bytes(msg[24..32].try_into().ok()?);
            let flags = HeaderFlags(u32::from_le_bytes(msg[16..20].try_into().ok()?));
            let command = Command::from(u16::from_le_bytes([msg[12], msg[13]]));
            // Nonce: MessageId, then bit 0 = server-to-client, bit 1 = CANCEL.
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&message_id.to_le_bytes());
            let mut role = 0u32;
            if flags.contains(HeaderFlags::SERVER_TO_REDIR) {
                role |= 1;
            }
            if command == Command::Cancel {
                role |= 2;
            }
            nonce[8..].copy_from_slice(&role.to_le_bytes());
            let k16: &[u8; 16] = k.try_into().ok()?;
            // GMAC runs over the message with a zero Signature field: the
            // header is copied (64 bytes) with the field zeroed, the body is
            // hashed in place (a received 1 MiB READ is not copied).
            let mut header = [0u8; HEADER_LEN];
            header[..SIGNATURE_OFFSET].copy_from_slice(head);
            match super::gmac::tag_parts(k16, &nonce, &header, body) {
                Some(tag) => out = tag,
                None => {
                    let mut aad = Vec::with_capacity(msg.len());
                    aad.extend_from_slice(&header);
                    aad.extend_from_slice(body);
                    let cipher = Aes128Gcm::new_from_slice(k).ok()?;
                    let tag = cipher
                        .encrypt_in_place_detached((&nonce).into(), &aad, &mut [])
                        .ok()?;
                    out.copy_from_slice(&tag);
                }
            }
        }
    }
    Some(out)
}

/// Sets SMB2_FLAGS_SIGNED and writes the signature into `msg`.
pub fn sign(alg: SigningAlgorithm, key: &[u8], msg: &mut [u8]) -> bool {
    if msg.len() < HEADER_LEN {
        return false;
    }
    let mut flags = u32::from_le_bytes([msg[16], msg[17], msg[18], msg[19]]);
    flags |= HeaderFlags::SIGNED.0;
    msg[16..20].copy_from_slice(&flags.to_le_bytes());
    // The signature is computed over a zero Signature field; zero it here
    // so no algorithm needs a copy of the message.
    let mut before = [0u8; 16];
    before.copy_from_slice(&msg[SIGNATURE_OFFSET..HEADER_LEN]);
    msg[SIGNATURE_OFFSET..HEADER_LEN].fill(0);
    match compute(alg, key, msg) {
        Some(sig) => {
            msg[SIGNATURE_OFFSET..HEADER_LEN].copy_from_slice(&sig);
            true
        }
        None => {
            msg[SIGNATURE_OFFSET..HEADER_LEN].copy_from_slice(&before);
            false
        }
    }
}

/// Checks the signature in `msg`; constant-time comparison.
pub fn verify(alg: SigningAlgorithm, key: &[u8], msg: &[u8]) -> bool {
    let Some(sig) = compute(alg, key, msg) else {
        return false;
    };
    let got = &msg[SIGNATURE_OFFSET..HEADER_LEN];
    sig.iter().zip(got).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unhex;

    fn msg() -> Vec<u8> {
        // The WRITE request of the SMB 3.0 encryption blog vector.
        unhex(
            "FE534D4240000100000000000900400008000000000000000400000000000000
             FFFE0000010000001100001400E4080000000000000000000000000000000000
             3100700017000000000000000000000015010000390000020100000039020000
             00000000000000007000000000000000536D623320656E6372797074696F6E20
             74657374696E67",
        )
    }

    #[test]
    fn sign_then_verify_all_algorithms() {
        let key = unhex("F773CD23C18FD1E08EE510CADA7CF852");
        for alg in [
            SigningAlgorithm::HmacSha256,
            SigningAlgorithm::AesCmac,
            SigningAlgorithm::AesGmac,
        ] {
            let mut m = msg();
            assert!(sign(alg, &key, &mut m));
            assert!(verify(alg, &key, &m), "{alg:?}");
            let mut bad = m.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert!(!verify(alg, &key, &bad), "{alg:?} tamper");
            // Signature field content is ignored when computing.
            assert_eq!(compute(alg, &key, &m), compute(alg, &key, &msg()));
        }
    }

    /// A key the algorithm cannot use: sign says so and leaves the message as it was, so the
    /// connection refuses to send it (Error::SigningFailed) instead of sending a stale signature.
    #[test]
    fn a_key_of_the_wrong_size_fails_and_changes_nothing() {
        for alg in [SigningAlgorithm::AesCmac, SigningAlgorithm::AesGmac] {
            let mut m = msg();
            m[SIGNATURE_OFFSET..HEADER_LEN].copy_from_slice(&[7; 16]);
            let before = m.clone();
            assert!(!sign(alg, &[1, 2, 3], &mut m), "{alg:?}");
            assert_eq!(
                m[SIGNATURE_OFFSET..HEADER_LEN],
                before[SIGNATURE_OFFSET..HEADER_LEN]
            );
        }
    }

    /// HMAC-SHA256 signing is HMAC over the message with a zero signature,
    /// truncated to 16 bytes (RFC 4231 primitive checked via a known key).
    #[test]
    fn hmac_sha256_known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            m.finalize().into_bytes()[..16].to_vec(),
            unhex("5bdcc146bf60754e6a042426089575c7")
        );
    }

    /// RFC 4493 AES-CMAC example 2.
    #[test]
    fn aes_cmac_known_answer() {
        let mut m =
            <Cmac<Aes128> as Mac>::new_from_slice(&unhex("2b7e151628aed2a6abf7158809cf4f3c"))
                .unwrap();
        m.update(&unhex("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(
            m.finalize().into_bytes().to_vec(),
            unhex("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }
}
