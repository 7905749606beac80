//! SP800-108 KDF in counter mode with HMAC-SHA256 (MS-SMB2 3.1.4.2), and
//! the per-dialect labels and contexts.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::wire::negotiate::Dialect;

/// KDF(Ki, Label, Context) for L = `out.len() * 8` bits (128 or 256).
/// `label` and `context` include their terminating NUL where MS-SMB2 says so.
pub fn sp800_108_hmac_sha256(ki: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let l_bits = (out.len() as u32) * 8;
    let mut i: u32 = 1;
    let mut pos = 0;
    while pos < out.len() {
        // HMAC accepts keys of any length; new_from_slice cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(ki).expect("HMAC takes any key size");
        mac.update(&i.to_be_bytes());
        mac.update(label);
        mac.update(&[0]);
        mac.update(context);
        mac.update(&l_bits.to_be_bytes());
        let block = mac.finalize().into_bytes();
        let n = (out.len() - pos).min(block.len());
        out[pos..pos + n].copy_from_slice(&block[..n]);
        pos += n;
        i += 1;
    }
}

/// The keys of one session (MS-SMB2 3.2.5.3.1).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub signing_key: Vec<u8>,
    /// Client-to-server (ServerIn / SMBC2SCipherKey).
    pub encryption_key: Vec<u8>,
    /// Server-to-client (ServerOut / SMBS2CCipherKey).
    pub decryption_key: Vec<u8>,
    pub application_key: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// Derives the session's keys from the (16-byte) session key.
/// `preauth_hash` is used for 3.1.1 only; `cipher_key_len` is 16 or 32.
pub fn derive_session_keys(
    dialect: Dialect,
    session_key: &[u8],
    preauth_hash: &[u8],
    cipher_key_len: usize,
) -> SessionKeys {
    let mut sk = [0u8; 16];
    let n = session_key.len().min(16);
    sk[..n].copy_from_slice(&session_key[..n]);
    let derive = |label: &[u8], ctx: &[u8], len: usize| {
        let mut out = vec![0u8; len];
        sp800_108_hmac_sha256(&sk, label, ctx, &mut out);
        out
    };
    if dialect == Dialect::SMB3_1_1 {
        SessionKeys {
            signing_key: derive(b"SMBSigningKey\0", preauth_hash, 16),
            encryption_key: derive(b"SMBC2SCipherKey\0", preauth_hash, cipher_key_len),
            decryption_key: derive(b"SMBS2CCipherKey\0", preauth_hash, cipher_key_len),
            application_key: derive(b"SMBAppKey\0", preauth_hash, 16),
        }
    } else if dialect.is_smb3() {
        SessionKeys {
            signing_key: derive(b"SMB2AESCMAC\0", b"SmbSign\0", 16),
            encryption_key: derive(b"SMB2AESCCM\0", b"ServerIn \0", 16),
            decryption_key: derive(b"SMB2AESCCM\0", b"ServerOut\0", 16),
            application_key: derive(b"SMB2APP\0", b"SmbRpc\0", 16),
        }
    } else {
        // SMB 2.x signs with the session key itself and cannot encrypt.
        SessionKeys {
            signing_key: sk.to_vec(),
            encryption_key: Vec::new(),
            decryption_key: Vec::new(),
            application_key: sk.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unhex;

    /// "Encryption in SMB 3.0: a protocol perspective" (Microsoft Open
    /// Specifications blog), test vector.
    #[test]
    fn smb30_keys_match_published_vector() {
        let k = derive_session_keys(
            Dialect::SMB3_0,
            &unhex("B4546771B515F766A86735532DD6C4F0"),
            &[],
            16,
        );
        assert_eq!(k.signing_key, unhex("F773CD23C18FD1E08EE510CADA7CF852"));
        assert_eq!(k.encryption_key, unhex("261B72350558F2E9DCF613070383EDBF"));
        assert_eq!(k.decryption_key, unhex("8FE2B57EC34D2DB5B1A9727F526BBDB5"));
        assert_eq!(k.application_key, unhex("77432F808CE99156B5BC6A3676D730D1"));
    }

    /// SMB 3.1.1 pre-auth integrity example (Microsoft Open Specifications
    /// blog "SMB 3.1.1 Pre-authentication integrity in Windows 10").
    #[test]
    fn smb311_signing_key_matches_published_vector() {
        let hash = unhex(
            "0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB79
             28622DDDAD522D9751640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01",
        );
        let k = derive_session_keys(
            Dialect::SMB3_1_1,
            &unhex("270E1BA896585EEB7AF3472D3B4C75A7"),
            &hash,
            16,
        );
        assert_eq!(k.signing_key, unhex("73FE7A9A77BEF0BDE49C650D8CCB5F76"));
    }
}
