//! AES-128-GMAC for SMB 3.1.1 signing: GHASH over the message, computed
//! eight blocks at a time with CLMUL (one reduction per eight blocks) when the
//! CPU has it. `aes-gcm`'s GHASH does one full multiply-and-reduce per
//! block, which made signing a 1 MiB WRITE a large part of its cost.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// The GMAC tag of `aad` (empty plaintext), or None when this CPU lacks
/// CLMUL (callers then use the generic implementation).
#[cfg(test)]
pub fn tag(key: &[u8; 16], nonce: &[u8; 12], aad: &[u8]) -> Option<[u8; 16]> {
    tag_parts(key, nonce, &[], aad)
}

/// The GMAC tag of `head` then `aad` as one message, without joining them:
/// a received message is verified over its header with the Signature field
/// zeroed (a 64-byte copy) and its body in place. `head` must be a whole
/// number of 64-byte chunks, else None.
pub fn tag_parts(key: &[u8; 16], nonce: &[u8; 12], head: &[u8], aad: &[u8]) -> Option<[u8; 16]> {
    if !head.len().is_multiple_of(64) {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("sse2")
        {
            let aes = Aes128::new(key.into());
            let mut h = [0u8; 16];
            aes.encrypt_block((&mut h).into());
            let mut j0 = [0u8; 16];
            j0[..12].copy_from_slice(nonce);
            j0[15] = 1;
            aes.encrypt_block((&mut j0).into());
            // SAFETY: the CPU features were checked just above.
            let s = unsafe { x86::ghash(&h, head, aad) };
            let mut out = s.to_be_bytes();
            for (o, e) in out.iter_mut().zip(j0) {
                *o ^= e;
            }
            return Some(out);
        }
    }
    let _ = (key, nonce, head, aad);
    None
}

/// GHASH with PCLMULQDQ. Every fn here is `unsafe` for one reason only: it uses SSE2 and
/// PCLMULQDQ intrinsics. # Safety: call only after `is_x86_feature_detected!` confirmed both
/// (as `tag` does); no fn dereferences a raw pointer other than into its own local buffers.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    /// POLYVAL's mulX (RFC 8452 appendix A), on the value as a u128.
    fn mulx(v: u128) -> u128 {
        let hi = v >> 127;
        (v << 1) ^ hi ^ (hi << 127) ^ (hi << 126) ^ (hi << 121)
    }

    #[inline(always)]
    unsafe fn load(v: u128) -> __m128i {
        _mm_set_epi64x((v >> 64) as i64, v as i64)
    }

    #[inline(always)]
    unsafe fn store(v: __m128i) -> u128 {
        let mut b = [0u8; 16];
        _mm_storeu_si128(b.as_mut_ptr() as *mut __m128i, v);
        u128::from_le_bytes(b)
    }

    /// Unreduced Karatsuba partial products of y*h: (lo, hi, mid).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn partial(y: __m128i, h: __m128i) -> (__m128i, __m128i, __m128i) {
        let h2 = _mm_xor_si128(h, _mm_shuffle_epi32(h, 0x0E));
        let y2 = _mm_xor_si128(y, _mm_shuffle_epi32(y, 0x0E));
        (
            _mm_clmulepi64_si128(y, h, 0x00),
            _mm_clmulepi64_si128(y, h, 0x11),
            _mm_clmulepi64_si128(y2, h2, 0x00),
        )
    }

    /// Combines summed partial products and reduces (POLYVAL's dot).
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn reduce(t0: __m128i, t1: __m128i, t2: __m128i) -> __m128i {
        let t2 = _mm_xor_si128(t2, _mm_xor_si128(t0, t1));
        let v0 = t0;
        let v1 = _mm_xor_si128(_mm_shuffle_epi32(t0, 0x0E), t2);
        let v2 = _mm_xor_si128(t1, _mm_shuffle_epi32(t2, 0x0E));
        let v3 = _mm_shuffle_epi32(t1, 0x0E);
        let x = |a, b| _mm_xor_si128(a, b);
        let v2 = x(
            x(v2, v0),
            x(
                _mm_srli_epi64(v0, 1),
                x(_mm_srli_epi64(v0, 2), _mm_srli_epi64(v0, 7)),
            ),
        );
        let v1 = x(
            v1,
            x(
                _mm_slli_epi64(v0, 63),
                x(_mm_slli_epi64(v0, 62), _mm_slli_epi64(v0, 57)),
            ),
        );
        let v3 = x(
            x(v3, v1),
            x(
                _mm_srli_epi64(v1, 1),
                x(_mm_srli_epi64(v1, 2), _mm_srli_epi64(v1, 7)),
            ),
        );
        let v2 = x(
            v2,
            x(
                _mm_slli_epi64(v1, 63),
                x(_mm_slli_epi64(v1, 62), _mm_slli_epi64(v1, 57)),
            ),
        );
        _mm_unpacklo_epi64(v2, v3)
    }

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn dot(a: __m128i, b: __m128i) -> __m128i {
        let (t0, t1, t2) = partial(a, b);
        reduce(t0, t1, t2)
    }

    /// A GHASH block as a POLYVAL block (byte-reversed).
    #[inline(always)]
    unsafe fn block(c: &[u8]) -> __m128i {
        load(u128::from_be_bytes(c.try_into().unwrap()))
    }

    /// Folds N blocks (`c` is exactly 16·N bytes) into `y` with one
    /// reduction: y = (y ⊕ c0)·H^N ⊕ c1·H^(N-1) ⊕ … ⊕ c(N-1)·H, `powers` = [H^N … H].
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    unsafe fn fold<const N: usize>(y: __m128i, c: &[u8], powers: &[__m128i; N]) -> __m128i {
        let x = _mm_xor_si128;
        let (mut t0, mut t1, mut t2) = partial(x(y, block(&c[..16])), powers[0]);
        for (i, p) in powers.iter().enumerate().skip(1) {
            let (a, b, d) = partial(block(&c[16 * i..16 * i + 16]), *p);
            t0 = x(t0, a);
            t1 = x(t1, b);
            t2 = x(t2, d);
        }
        reduce(t0, t1, t2)
    }

    /// GHASH_H(aad, zero-padded, then the length block with an empty
    /// ciphertext), as a big-endian u128, via POLYVAL (RFC 8452 appendix A).
    #[target_feature(enable = "pclmulqdq,sse2")]
    pub unsafe fn ghash(h: &[u8; 16], head: &[u8], aad: &[u8]) -> u128 {
        let h1 = load(mulx(u128::from_be_bytes(*h)));
        let h2 = dot(h1, h1);
        let h3 = dot(h2, h1);
        let h4 = dot(h3, h1);
        let h5 = dot(h4, h1);
        let h6 = dot(h5, h1);
        let h7 = dot(h6, h1);
        let h8 = dot(h7, h1);
        let by4 = [h4, h3, h2, h1];
        let by8 = [h8, h7, h6, h5, h4, h3, h2, h1];
        let mut y = _mm_setzero_si128();
        // `head` is whole 64-byte chunks (checked by `tag_parts`).
        for c in head.chunks_exact(64) {
            y = fold(y, c, &by4);
        }
        // Eight blocks per reduction through the bulk, then four, then one.
        let mut eights = aad.chunks_exact(128);
        for c in &mut eights {
            y = fold(y, c, &by8);
        }
        let mut chunks = eights.remainder().chunks_exact(64);
        for c in &mut chunks {
            y = fold(y, c, &by4);
        }
        let rest = chunks.remainder();
        let mut blocks = rest.chunks_exact(16);
        for c in &mut blocks {
            y = dot(_mm_xor_si128(y, block(c)), h1);
        }
        let tail = blocks.remainder();
        if !tail.is_empty() {
            let mut b = [0u8; 16];
            b[..tail.len()].copy_from_slice(tail);
            y = dot(_mm_xor_si128(y, block(&b)), h1);
        }
        let mut len = [0u8; 16];
        len[..8].copy_from_slice(&(((head.len() + aad.len()) as u64) * 8).to_be_bytes());
        y = dot(_mm_xor_si128(y, block(&len)), h1);
        // Back from POLYVAL order: the u128 read little-endian is the
        // GHASH value read big-endian.
        store(y)
    }
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::Aes128Gcm;

    #[test]
    fn matches_aes_gcm_for_all_lengths() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for len in (0..300).chain([1000, 4096, 65536 + 80, (1 << 20) + 112]) {
            let key: [u8; 16] = std::array::from_fn(|_| next());
            let nonce: [u8; 12] = std::array::from_fn(|_| next());
            let aad: Vec<u8> = (0..len).map(|_| next()).collect();
            let want = Aes128Gcm::new_from_slice(&key)
                .unwrap()
                .encrypt_in_place_detached((&nonce).into(), &aad, &mut [])
                .unwrap();
            if aad.len() >= 64 {
                let parts = super::tag_parts(&key, &nonce, &aad[..64], &aad[64..]);
                assert_eq!(parts, super::tag(&key, &nonce, &aad), "parts, len {len}");
            }
            match super::tag(&key, &nonce, &aad) {
                Some(got) => assert_eq!(got[..], want[..], "len {len}"),
                None => {
                    #[cfg(target_arch = "x86_64")]
                    assert!(!std::arch::is_x86_feature_detected!("pclmulqdq"));
                }
            }
        }
    }
}
