//! SMB2/3 cryptography on RustCrypto primitives: SP800-108 key derivation,
//! message signing, transform-header encryption, and the 3.1.1
//! pre-authentication integrity hash.

pub mod encryption;
mod gmac;
pub mod kdf;
pub mod preauth;
pub mod signing;

#[cfg(test)]
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
