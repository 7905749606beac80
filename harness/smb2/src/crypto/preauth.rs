//! SMB 3.1.1 pre-authentication integrity hash (MS-SMB2 3.2.5.2, 3.2.5.3):
//! H(i) = SHA-512(H(i-1) || message), H(0) = 64 zero bytes.

use sha2::{Digest, Sha512};

#[derive(Clone, PartialEq, Eq)]
pub struct PreauthHash(pub [u8; 64]);

impl Default for PreauthHash {
    fn default() -> Self {
        PreauthHash([0; 64])
    }
}

impl std::fmt::Debug for PreauthHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreauthHash({:02x?}..)", &self.0[..8])
    }
}

impl PreauthHash {
    /// Folds one whole SMB2 message (header included, as on the wire before
    /// any transform) into the hash.
    pub fn update(&mut self, message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.0);
        h.update(message);
        self.0.copy_from_slice(&h.finalize());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains() {
        let mut a = PreauthHash::default();
        a.update(b"negotiate request");
        let mut h = Sha512::new();
        h.update([0u8; 64]);
        h.update(b"negotiate request");
        assert_eq!(&a.0[..], &h.finalize()[..]);
        let before = a.clone();
        a.update(b"x");
        assert_ne!(a, before);
    }
}
