//! SMB 3.x encryption (MS-SMB2 3.1.4.3): AES-128/256-CCM (11-byte nonce)
//! and AES-128/256-GCM (12-byte nonce); the AAD is the transform header from
//! its Nonce field on, the tag is its Signature.

use aes::{Aes128, Aes256};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use ccm::consts::{U11, U16};
use ccm::Ccm;

use crate::wire::negotiate::CipherId;
use crate::wire::transform::{TransformHeader, AAD_OFFSET, TRANSFORM_HEADER_LEN};

type Aes128Ccm = Ccm<Aes128, U16, U11>;
type Aes256Ccm = Ccm<Aes256, U16, U11>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    Aes128Ccm,
    Aes128Gcm,
    Aes256Ccm,
    Aes256Gcm,
}

impl Cipher {
    pub fn from_id(id: CipherId) -> Option<Cipher> {
        match id {
            CipherId::AES_128_CCM => Some(Cipher::Aes128Ccm),
            CipherId::AES_128_GCM => Some(Cipher::Aes128Gcm),
            CipherId::AES_256_CCM => Some(Cipher::Aes256Ccm),
            CipherId::AES_256_GCM => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes128Gcm => 16,
            Cipher::Aes256Ccm | Cipher::Aes256Gcm => 32,
        }
    }
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes256Ccm => 11,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 12,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("bad key length")]
    Key,
    #[error("message authentication failed")]
    Auth,
    #[error("malformed transform: {0}")]
    Malformed(#[from] crate::wire::WireError),
}

fn seal(
    cipher: Cipher,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; 16], CryptoError> {
    let tag = match cipher {
        Cipher::Aes128Ccm => Aes128Ccm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .map(|t| t.into()),
        Cipher::Aes256Ccm => Aes256Ccm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .map(|t| t.into()),
        Cipher::Aes128Gcm => Aes128Gcm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .map(|t| t.into()),
        Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .map(|t| t.into()),
    };
    tag.map_err(|_| CryptoError::Auth)
}

fn open(
    cipher: Cipher,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), CryptoError> {
    let r = match cipher {
        Cipher::Aes128Ccm => Aes128Ccm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()),
        Cipher::Aes256Ccm => Aes256Ccm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()),
        Cipher::Aes128Gcm => Aes128Gcm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()),
        Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key)
            .map_err(|_| CryptoError::Key)?
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into()),
    };
    r.map_err(|_| CryptoError::Auth)
}

/// Wraps `msg` in a transform header and encrypts it. `nonce` fills the
/// start of the 16-byte Nonce field (at least `cipher.nonce_len()` bytes,
/// of which the AEAD uses exactly that many); the rest is zero.
pub fn encrypt_with_nonce(
    cipher: Cipher,
    key: &[u8],
    session_id: u64,
    nonce: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut th = TransformHeader {
        signature: [0; 16],
        nonce: [0; 16],
        original_message_size: msg.len() as u32,
        flags: 0x0001,
        session_id,
    };
    let n = cipher.nonce_len();
    if nonce.len() < n || nonce.len() > 16 {
        return Err(CryptoError::Key);
    }
    th.nonce[..nonce.len()].copy_from_slice(nonce);
    let mut out = Vec::with_capacity(TRANSFORM_HEADER_LEN + msg.len());
    th.emit(&mut out);
    out.extend_from_slice(msg);
    let (head, body) = out.split_at_mut(TRANSFORM_HEADER_LEN);
    let tag = seal(cipher, key, &th.nonce[..n], &head[AAD_OFFSET..], body)?;
    out[4..20].copy_from_slice(&tag);
    Ok(out)
}

/// Encrypts with a fresh random nonce.
pub fn encrypt(
    cipher: Cipher,
    key: &[u8],
    session_id: u64,
    msg: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce: [u8; 12] = rand::random();
    encrypt_with_nonce(cipher, key, session_id, &nonce, msg)
}

/// Decrypts a whole transformed message (transform header included).
pub fn decrypt(cipher: Cipher, key: &[u8], frame: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let th = TransformHeader::parse(frame)?;
    let aad = frame
        .get(AAD_OFFSET..TRANSFORM_HEADER_LEN)
        .ok_or(CryptoError::Malformed(crate::wire::WireError::Truncated(
            "transform header",
        )))?;
    let mut body = frame[TRANSFORM_HEADER_LEN..].to_vec();
    if th.original_message_size as usize != body.len() {
        return Err(CryptoError::Malformed(crate::wire::WireError::Malformed(
            "OriginalMessageSize differs from payload",
        )));
    }
    open(
        cipher,
        key,
        &th.nonce[..cipher.nonce_len()],
        aad,
        &mut body,
        &th.signature,
    )?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unhex;

    /// "Encryption in SMB 3.0: a protocol perspective", WRITE request and
    /// its response.
    #[test]
    fn aes128_ccm_matches_published_vector() {
        let key = unhex("261B72350558F2E9DCF613070383EDBF");
        let plain = unhex(
            "FE534D4240000100000000000900400008000000000000000400000000000000
             FFFE0000010000001100001400E4080000000000000000000000000000000000
             3100700017000000000000000000000015010000390000020100000039020000
             00000000000000007000000000000000536D623320656E6372797074696F6E20
             74657374696E67",
        );
        let out = encrypt_with_nonce(
            Cipher::Aes128Ccm,
            &key,
            0x8e40014000011,
            &unhex("66E69A111892584FB5ED524A744DA3EE"),
            &plain,
        )
        .unwrap();
        let published = unhex(
            "FD534D4281A286535415445DAE393921E44FA42E66E69A111892584FB5ED524A
             744DA3EE87000000000001001100001400E4080025C8FEE16605A437832D1CD5
             2DA9F4645333482A175FE5384563F45FCDAFAEF38BC62BA4D5C62897996625A4
             4C29BE5658DE2E6117585779E7B59FFD971278D08580D7FA899E410E910EABF5
             AA1DB43050B33B49182637759AC15D84BFCDF5B6B238993C0F4CF4D6012023F6
             C627297075D84B7803912D0A9639634453595EF3E33FFE4E7AC2AB",
        );
        assert_eq!(out, published);
        assert_eq!(decrypt(Cipher::Aes128Ccm, &key, &published).unwrap(), plain);
        // Response, decrypted with the client's decryption key.
        let resp = unhex(
            "FD534D42A6015530A18F6D9AFFE22AFAE8E66484860000000000000011000014
             00E4080050000000000001001100001400E40800DBF46435C5F14169293CE079
             E344479BF670227E49873F458672C3098DAC467DD5809F369D67409166515787
             1483E01F7BECD02064EAC3E235F913668BBC2F097980D4B378F1993EFF6E60D1
             77309E5B",
        );
        let dk = unhex("8FE2B57EC34D2DB5B1A9727F526BBDB5");
        let p = decrypt(Cipher::Aes128Ccm, &dk, &resp).unwrap();
        assert_eq!(
            p,
            unhex(
                "FE534D4240000100000000000900210009000000000000000400000000000000
                 FFFE0000010000001100001400E4080000000000000000000000000000000000
                 11000000170000000000000000000000"
            )
        );
    }

    #[test]
    fn round_trip_all_ciphers_and_tamper() {
        for c in [
            Cipher::Aes128Ccm,
            Cipher::Aes128Gcm,
            Cipher::Aes256Ccm,
            Cipher::Aes256Gcm,
        ] {
            let key = vec![7u8; c.key_len()];
            let msg = b"\xfeSMB some message".to_vec();
            let mut f = encrypt(c, &key, 5, &msg).unwrap();
            assert_eq!(decrypt(c, &key, &f).unwrap(), msg);
            let last = f.len() - 1;
            f[last] ^= 1;
            assert_eq!(decrypt(c, &key, &f), Err(CryptoError::Auth));
        }
    }
}
