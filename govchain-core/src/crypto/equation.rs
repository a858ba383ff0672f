//! The ZIP-215 verification equation on `curve25519-dalek` 4, for both
//! verification paths.
//!
//! Single verification checks `[8]([S]B − R − [k]A) = 0` with
//! `k = SHA-512(R ‖ A ‖ M) mod ℓ`, hashing `R` and `A` exactly as sent.
//! Batch verification checks
//! `[8](−(Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0` for 128-bit coefficients `zᵢ`,
//! the same per-signature term `Pᵢ = Rᵢ + [kᵢ]Aᵢ − [Sᵢ]B` weighted by `zᵢ`.
//! Both multiply by the cofactor, so they agree on points with a torsion
//! component (see the [module docs](super) for the argument).
//!
//! Points are decompressed with `CompressedEdwardsY::decompress`. On the
//! canonical encodings that `PublicKey` and `Signature` admit, it decodes
//! exactly as ZIP-215 does (ZIP-215 differs from it only in how it treats
//! non-canonical encodings, which never reach this module); the
//! differential tests against `ed25519-consensus` check this.
//!
//! `curve25519-dalek` picks its AVX2 backend at run time on x86-64 (its
//! default `simd` backend with `cpufeatures` detection), for both the
//! double-base scalar multiplication of single verification and the
//! Pippenger/Straus multi-scalar multiplication of a batch; field
//! arithmetic outside those (decompression) uses its 64-bit serial backend.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use curve25519_dalek::Scalar;
use rand_core::RngCore;
use sha2::{Digest, Sha512};

/// Decompresses a point encoding (`None`: not on the curve).
pub(crate) fn decompress(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

/// `S` as a scalar, if canonical (`S < ℓ`). `Signature` values always are;
/// this is a second line of defence, identical in both paths.
fn canonical_scalar(bytes: &[u8; 32]) -> Option<Scalar> {
    Option::from(Scalar::from_canonical_bytes(*bytes))
}

/// `k = SHA-512(R ‖ A ‖ M) mod ℓ`, over the encodings as sent.
fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Splits `R ‖ S`.
fn split(sig: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    (r, s)
}

/// The single-signature check: `[8]([S]B − R − [k]A) = 0`.
///
/// `a` is the decompression of `a_bytes` (cached by the caller).
/// Variable time: every input is public.
pub(crate) fn verify_one(a: &EdwardsPoint, a_bytes: &[u8; 32], sig: &[u8; 64], msg: &[u8]) -> bool {
    let (r_bytes, s_bytes) = split(sig);
    let Some(s) = canonical_scalar(&s_bytes) else {
        return false;
    };
    let Some(r) = decompress(&r_bytes) else {
        return false;
    };
    let k = challenge(&r_bytes, a_bytes, msg);
    // [k](−A) + [S]B, with the precomputed basepoint table.
    let r_check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    (r_check - r).mul_by_cofactor().is_identity()
}

/// One batch equation being assembled: the accumulated coefficient of `B`,
/// one term per `R`, and one merged term per distinct key.
pub(crate) struct BatchEquation<'a> {
    b_coefficient: Scalar,
    r_terms: Vec<(Scalar, EdwardsPoint)>,
    a_terms: Vec<(Scalar, EdwardsPoint)>,
    /// Index into `a_terms` of each distinct key seen so far. Only looked
    /// up, never iterated: the equation does not depend on its order.
    key_index: HashMap<&'a [u8; 32], usize>,
}

impl<'a> BatchEquation<'a> {
    /// An empty equation with room for `n` signatures.
    pub(crate) fn with_capacity(n: usize) -> Self {
        BatchEquation {
            b_coefficient: Scalar::ZERO,
            r_terms: Vec::with_capacity(n),
            a_terms: Vec::with_capacity(n),
            key_index: HashMap::with_capacity(n),
        }
    }

    /// Adds `z·([k]A + R − [S]B)` for one signature. Returns `false` if `R`
    /// is not a curve point or `S` is not canonical, in which case the
    /// signature is invalid on both paths and the equation must not be
    /// used.
    pub(crate) fn push(
        &mut self,
        z: Scalar,
        a: &EdwardsPoint,
        a_bytes: &'a [u8; 32],
        sig: &[u8; 64],
        msg: &[u8],
    ) -> bool {
        let (r_bytes, s_bytes) = split(sig);
        let Some(s) = canonical_scalar(&s_bytes) else {
            return false;
        };
        let Some(r) = decompress(&r_bytes) else {
            return false;
        };
        let k = challenge(&r_bytes, a_bytes, msg);
        self.b_coefficient -= z * s;
        self.r_terms.push((z, r));
        let zk = z * k;
        match self.key_index.get(a_bytes) {
            Some(&i) => {
                if let Some(term) = self.a_terms.get_mut(i) {
                    term.0 += zk;
                }
            }
            None => {
                self.key_index.insert(a_bytes, self.a_terms.len());
                self.a_terms.push((zk, *a));
            }
        }
        true
    }

    /// Whether `[8](−(Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0`.
    pub(crate) fn holds(&self) -> bool {
        let scalars = std::iter::once(&self.b_coefficient)
            .chain(self.r_terms.iter().map(|(z, _)| z))
            .chain(self.a_terms.iter().map(|(c, _)| c));
        let points = std::iter::once(&ED25519_BASEPOINT_POINT)
            .chain(self.r_terms.iter().map(|(_, p)| p))
            .chain(self.a_terms.iter().map(|(_, p)| p));
        EdwardsPoint::vartime_multiscalar_mul(scalars, points)
            .mul_by_cofactor()
            .is_identity()
    }
}

/// The next 128-bit batch coefficient from `rng`.
pub(crate) fn coefficient<R: RngCore>(rng: &mut R) -> Scalar {
    let mut z = [0u8; 16];
    rng.fill_bytes(&mut z);
    Scalar::from(u128::from_le_bytes(z))
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// A signature under the raw equation, with optional torsion added to
    /// `A` and `R`: valid under the cofactored equation whatever the torsion.
    fn raw_sign(
        a_secret: Scalar,
        r_secret: Scalar,
        ta: usize,
        tr: usize,
        msg: &[u8],
    ) -> (EdwardsPoint, [u8; 32], [u8; 64]) {
        let a = EdwardsPoint::mul_base(&a_secret) + EIGHT_TORSION[ta];
        let r = EdwardsPoint::mul_base(&r_secret) + EIGHT_TORSION[tr];
        let (a_bytes, r_bytes) = (a.compress().to_bytes(), r.compress().to_bytes());
        let k = challenge(&r_bytes, &a_bytes, msg);
        let s = r_secret + k * a_secret;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        (a, a_bytes, sig)
    }

    #[test]
    fn torsion_never_changes_the_verdict_of_either_equation() {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let msg = b"torsion";
        let mut items = Vec::new();
        for ta in 0..8 {
            for tr in 0..8 {
                let a_secret = Scalar::from(rng.next_u64());
                let r_secret = Scalar::from(rng.next_u64());
                items.push(raw_sign(a_secret, r_secret, ta, tr, msg));
            }
        }
        let mut eq = BatchEquation::with_capacity(items.len());
        for (a, a_bytes, sig) in &items {
            assert!(verify_one(a, a_bytes, sig, msg));
            assert!(!verify_one(a, a_bytes, sig, b"other"));
            assert!(eq.push(coefficient(&mut rng), a, a_bytes, sig, msg));
        }
        assert!(eq.holds());
        // One wrong message spoils the batch.
        let (a, a_bytes, sig) = &items[9];
        assert!(eq.push(coefficient(&mut rng), a, a_bytes, sig, b"other"));
        assert!(!eq.holds());
    }

    #[test]
    fn grouping_by_key_gives_the_same_verdict() {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let a_secret = Scalar::from(12345u64);
        let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        let sigs: Vec<_> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| raw_sign(a_secret, Scalar::from(1000 + i as u64), 3, i % 8, m))
            .collect();
        let mut eq = BatchEquation::with_capacity(10);
        for ((a, a_bytes, sig), m) in sigs.iter().zip(&msgs) {
            assert!(eq.push(coefficient(&mut rng), a, a_bytes, sig, m));
        }
        assert_eq!(eq.a_terms.len(), 1);
        assert!(eq.holds());
        let (a, a_bytes, sig) = &sigs[0];
        assert!(eq.push(coefficient(&mut rng), a, a_bytes, sig, &msgs[1]));
        assert!(!eq.holds());
    }
}
