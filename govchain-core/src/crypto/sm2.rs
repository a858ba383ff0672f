//! SM2 signatures (GM/T 0003-2012 part 2, GB/T 32918.2-2016) on the
//! recommended curve `sm2p256v1` (GM/T 0003.5, GB/T 32918.5-2017), over the
//! RustCrypto `sm2` crate's arithmetic.
//!
//! - Keys are 33-byte compressed SEC1 points, parsed (decompressed and
//!   checked on the curve) when they are decoded, and canonical: the bytes
//!   must be exactly the compressed encoding of the point they decode to.
//! - Signatures are `r ‖ s`, two 32-byte big-endian integers with
//!   `0 < r, s < n`, checked when they are decoded.
//! - The signer identity `Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖
//!   y_A)` uses the default distinguishing identifier
//!   [`SM2_DEFAULT_DISTID`] (GM/T 0009-2012 §10 / GB/T 35276-2017), and the
//!   message digest is `e = SM3(Z_A ‖ M)` (GM/T 0003.2 §6.1 A1–A2).
//! - Verification is the `sm2` crate's (GM/T 0003.2 §7.1 B1–B7, plus the
//!   crate's refusal of the point at infinity in B6).
//! - Signing is written here (GM/T 0003.2 §6.1 A1–A7, the same steps as the
//!   crate's `SigningKey`) so that the secret scalar lives only in a value
//!   that is zeroized on drop (the crate's `SigningKey` is not); nonces are
//!   RFC 6979 (HMAC-SM3 DRBG), exactly as the crate derives them, so the
//!   signatures are byte-for-byte the crate's (a test checks it).

use elliptic_curve::ff::PrimeField;
use elliptic_curve::group::Group;
use elliptic_curve::ops::Reduce;
use elliptic_curve::point::AffineCoordinates;
use elliptic_curve::sec1::ToSec1Point;
use sm2::elliptic_curve;
use sm2::{FieldBytes, ProjectivePoint, Scalar, U256};
use sm3::{Digest, Sm3};
use zeroize::Zeroize;

/// The distinguishing identifier of every SM2 signer in govchain: the
/// default `ID_A` of GM/T 0009-2012 (the ASCII string `1234567812345678`,
/// `ENTL_A = 128` bits), which GM/T 0003.5's sample and most deployed
/// implementations use when no identity is agreed.
///
/// govchain keys are bound to their holders by the chain (registries,
/// validator sets), not by `ID_A`, so every signer uses the same identifier;
/// a signature made under another identifier does not verify.
pub const SM2_DEFAULT_DISTID: &str = "1234567812345678";

/// The curve coefficients and base point of `sm2p256v1`, big-endian
/// (GM/T 0003.5-2012 §3, GB/T 32918.5-2017 §3), as hashed into `Z_A`.
const CURVE_A: [u8; 32] = hex32("fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc");
const CURVE_B: [u8; 32] = hex32("28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93");
const GX: [u8; 32] = hex32("32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7");
const GY: [u8; 32] = hex32("bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0");
/// The group order `n`, big-endian.
const ORDER: [u8; 32] = hex32("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123");

/// Parses 64 lower-case hex digits at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            // Only reachable through a typo in the constants above, which
            // the unit tests would catch.
            _ => 0,
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Whether the big-endian `x` is in `1..n`.
fn is_nonzero_below_order(x: &[u8; 32]) -> bool {
    x.iter().any(|&b| b != 0) && x < &ORDER
}

/// A parsed SM2 public key: its canonical bytes, the verifying key (the
/// point and `Z_A`), and `Z_A` itself for signing.
pub(crate) struct Sm2Key {
    pub(crate) bytes: [u8; 33],
    vk: sm2::dsa::VerifyingKey,
    pub(crate) za: [u8; 32],
}

/// `Z_A` for `point` under [`SM2_DEFAULT_DISTID`].
fn identity_hash(point: &sm2::AffinePoint) -> Option<[u8; 32]> {
    let encoded = point.to_sec1_point(false);
    let (x, y) = match encoded.coordinates() {
        elliptic_curve::sec1::Coordinates::Uncompressed { x, y } => (x, y),
        _ => return None,
    };
    let entl = u16::try_from(SM2_DEFAULT_DISTID.len() * 8).ok()?;
    let mut h = Sm3::new();
    h.update(entl.to_be_bytes());
    h.update(SM2_DEFAULT_DISTID.as_bytes());
    h.update(CURVE_A);
    h.update(CURVE_B);
    h.update(GX);
    h.update(GY);
    h.update(x);
    h.update(y);
    let mut za = [0u8; 32];
    za.copy_from_slice(&h.finalize());
    Some(za)
}

impl Sm2Key {
    /// Parses a compressed SEC1 point, refusing anything but the one
    /// canonical encoding of a point on the curve.
    pub(crate) fn parse(bytes: &[u8; 33]) -> Result<Sm2Key, &'static str> {
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err("not a compressed point (first byte must be 2 or 3)");
        }
        let public =
            sm2::PublicKey::from_sec1_bytes(bytes).map_err(|_| "not a point on the curve")?;
        Sm2Key::from_public(public, Some(bytes))
    }

    fn from_public(
        public: sm2::PublicKey,
        expected: Option<&[u8; 33]>,
    ) -> Result<Sm2Key, &'static str> {
        let compressed = public.as_affine().to_sec1_point(true);
        let canonical: [u8; 33] = compressed
            .as_bytes()
            .try_into()
            .map_err(|_| "not a compressed point")?;
        if expected.is_some_and(|e| e != &canonical) {
            // `x ≥ p` reduced to a point: a second spelling of that point.
            return Err("non-canonical point encoding");
        }
        let za = identity_hash(public.as_affine()).ok_or("point at infinity")?;
        let vk = sm2::dsa::VerifyingKey::new(SM2_DEFAULT_DISTID, public)
            .map_err(|_| "point at infinity")?;
        Ok(Sm2Key {
            bytes: canonical,
            vk,
            za,
        })
    }

    /// `e = SM3(Z_A ‖ M)` (GM/T 0003.2 §6.1 A1–A2).
    pub(crate) fn message_digest(&self, message: &[u8]) -> [u8; 32] {
        let mut h = Sm3::new_with_prefix(self.za);
        h.update(message);
        let mut e = [0u8; 32];
        e.copy_from_slice(&h.finalize());
        e
    }

    /// Verifies `r ‖ s` over `message` (GM/T 0003.2 §7.1).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        use sm2::dsa::signature::Verifier;
        let Ok(sig) = sm2::dsa::Signature::from_slice(signature) else {
            return false;
        };
        self.vk.verify(message, &sig).is_ok()
    }
}

/// Why raw signature bytes `r ‖ s` are refused, or `None` if they pass.
pub(crate) fn signature_rejection(sig: &[u8; 64]) -> Option<&'static str> {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    if !is_nonzero_below_order(&r) {
        Some("r is not in 1..n")
    } else if !is_nonzero_below_order(&s) {
        Some("s is not in 1..n")
    } else {
        None
    }
}

/// An SM2 secret key `d` in `1..=n-2` (GM/T 0003.2 §6.1 needs `1 + d`
/// invertible), with `(1 + d)^-1` precomputed; both are zeroized on drop.
pub(crate) struct Sm2Secret {
    d: Scalar,
    d_plus_1_inv: Scalar,
}

impl Drop for Sm2Secret {
    fn drop(&mut self) {
        self.d.zeroize();
        self.d_plus_1_inv.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for Sm2Secret {}

impl Sm2Secret {
    /// The secret `d` from its 32 big-endian bytes, if `1 ≤ d ≤ n - 2`.
    pub(crate) fn from_bytes(bytes: &[u8; 32]) -> Option<(Sm2Secret, Sm2Key)> {
        let d = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(*bytes)))?;
        let d_plus_1_inv = Option::<Scalar>::from((d + Scalar::ONE).invert())?;
        if bool::from(d.is_zero()) {
            return None;
        }
        let secret = Sm2Secret { d, d_plus_1_inv };
        let point = (ProjectivePoint::generator() * d).to_affine();
        let public = sm2::PublicKey::from_affine(point).ok()?;
        let key = Sm2Key::from_public(public, None).ok()?;
        Some((secret, key))
    }

    /// The secret of a 32-byte seed: the seed itself read as a big-endian
    /// integer when `1 ≤ seed ≤ n - 2` (all but about `2^-32` of seeds, so a
    /// standard SM2 private key is its own seed), otherwise the first
    /// `SM3^i(seed)`, `i ≥ 1`, in that range. Deterministic.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> (Sm2Secret, Sm2Key) {
        let mut candidate = zeroize::Zeroizing::new(*seed);
        loop {
            if let Some(pair) = Sm2Secret::from_bytes(&candidate) {
                return pair;
            }
            let next = Sm3::digest(candidate.as_ref());
            candidate.copy_from_slice(&next);
        }
    }

    /// Signs `message` for `key` (which must be this secret's key):
    /// GM/T 0003.2 §6.1 with the nonce `k` drawn from RFC 6979's HMAC-SM3
    /// DRBG over `(d, e)`, retrying with the DRBG's next `k` in the
    /// negligible cases (`r = 0`, `r + k = n`, `s = 0`) where the standard
    /// says to pick another `k`.
    pub(crate) fn sign(&self, key: &Sm2Key, message: &[u8]) -> [u8; 64] {
        let e_bytes = key.message_digest(message);
        let e = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&e_bytes));
        let mut d_repr = self.d.to_repr();
        let order = U256::from_be_slice(&ORDER);
        let mut kgen = rfc6979::KGenerator::<Sm3, U256>::new(&d_repr, &e.to_repr(), &[], &order);
        d_repr.zeroize();
        loop {
            let mut k_bytes = FieldBytes::default();
            kgen.fill_next_k(&mut k_bytes);
            let k = Option::<Scalar>::from(Scalar::from_repr(k_bytes));
            k_bytes.zeroize();
            let Some(mut k) = k else { continue };
            let signature = self.sign_with_nonce(e, &k);
            k.zeroize();
            if let Some(signature) = signature {
                return signature;
            }
        }
    }

    /// GM/T 0003.2 §6.1 A4–A7 for the digest scalar `e` and nonce `k`;
    /// `None` when the standard says to pick another `k`.
    fn sign_with_nonce(&self, e: Scalar, k: &Scalar) -> Option<[u8; 64]> {
        // A4: (x1, y1) = [k]G.
        let point = ProjectivePoint::mul_by_generator(k).to_affine();
        // A5: r = (e + x1) mod n; another k if r = 0 or r + k = n.
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&point.x());
        if bool::from(r.is_zero() | (r + k).is_zero()) {
            return None;
        }
        // A6: s = (1 + d)^-1 · (k − r·d) mod n; another k if s = 0.
        let s = self.d_plus_1_inv * (*k - r * self.d);
        if bool::from(s.is_zero()) {
            return None;
        }
        // A7: (r, s).
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&r.to_repr());
        out[32..].copy_from_slice(&s.to_repr());
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn curve_constants_match_the_crate() {
        let g = ProjectivePoint::generator()
            .to_affine()
            .to_sec1_point(false);
        assert_eq!(&g.as_bytes()[1..33], &GX);
        assert_eq!(&g.as_bytes()[33..], &GY);
        // n is the group order: [n - 1]G = -G.
        let n_minus_1 = -Scalar::ONE;
        let mut expected = ORDER;
        expected[31] -= 1;
        assert_eq!(n_minus_1.to_repr().as_slice(), &expected);
        assert!(!is_nonzero_below_order(&ORDER));
        assert!(is_nonzero_below_order(&expected));
        assert!(!is_nonzero_below_order(&[0; 32]));
        // The curve equation y² = x³ + ax + b holds at G with these a, b
        // (checked through a point the crate accepts: G itself).
        assert!(sm2::PublicKey::from_sec1_bytes(g.as_bytes()).is_ok());
        assert_eq!(
            CURVE_A,
            hex32("fffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffc")
        );
    }

    /// Our signer equals the `sm2` crate's `SigningKey` (same RFC 6979
    /// nonce, same `Z_A`), and its signatures verify.
    #[test]
    fn signing_matches_the_crate() {
        use sm2::dsa::signature::Signer as _;
        for i in 1u8..=8 {
            let (secret, key) = Sm2Secret::from_seed(&[i; 32]);
            let crate_key =
                sm2::dsa::SigningKey::from_bytes(SM2_DEFAULT_DISTID, &FieldBytes::from([i; 32]))
                    .expect("valid scalar");
            let ours = secret.sign(&key, b"govchain");
            let theirs: sm2::dsa::Signature = crate_key.sign(b"govchain");
            assert_eq!(ours.as_slice(), theirs.to_bytes().as_slice());
            assert!(key.verify(b"govchain", &ours));
            assert!(!key.verify(b"govchaim", &ours));
            assert_eq!(
                key.bytes.as_slice(),
                crate_key.verifying_key().to_sec1_point(true).as_bytes()
            );
        }
    }

    /// GM/T 0003.5-2012 Annex A.2 (= GB/T 32918.5-2017 Annex A), the
    /// signature sample on the recommended curve, signed with the
    /// standard's own nonce `k`: our A4–A7 reproduce `(r, s)` exactly. (The
    /// nonce of [`Sm2Secret::sign`] is RFC 6979's instead, so this is the
    /// one place the standard's `k` can be used.)
    #[test]
    fn gmt_0003_5_sample_with_its_nonce() {
        let d = hex32("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8");
        let k = hex32("59276e27d506861a16680f3ad9c02dccef3cc1fa3cdbe4ce6d54b80deac1bc21");
        let e = hex32("f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640");
        let r = hex32("f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3");
        let s = hex32("b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa");
        let (secret, key) = Sm2Secret::from_bytes(&d).expect("d is in range");
        assert_eq!(key.message_digest(b"message digest"), e);
        let k = Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(k))).expect("k < n");
        let e = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(&e));
        let sig = secret.sign_with_nonce(e, &k).expect("a valid nonce");
        assert_eq!(&sig[..32], &r);
        assert_eq!(&sig[32..], &s);
        assert!(key.verify(b"message digest", &sig));
    }

    #[test]
    fn seeds_out_of_range_are_rehashed() {
        // 0, n - 1 and values ≥ n are not secrets; they map elsewhere,
        // deterministically.
        let mut n_minus_1 = ORDER;
        n_minus_1[31] -= 1;
        for seed in [[0u8; 32], n_minus_1, ORDER, [0xff; 32]] {
            assert!(Sm2Secret::from_bytes(&seed).is_none());
            let (a, ka) = Sm2Secret::from_seed(&seed);
            let (_, kb) = Sm2Secret::from_seed(&seed);
            assert_eq!(ka.bytes, kb.bytes);
            let sig = a.sign(&ka, b"m");
            assert!(ka.verify(b"m", &sig));
        }
        let mut n_minus_2 = ORDER;
        n_minus_2[31] -= 2;
        assert!(Sm2Secret::from_bytes(&n_minus_2).is_some());
    }

    #[test]
    fn non_canonical_and_off_curve_keys_are_refused() {
        let (_, key) = Sm2Secret::from_seed(&[3; 32]);
        assert!(Sm2Key::parse(&key.bytes).is_ok());
        let mut bad = key.bytes;
        bad[0] = 0x04;
        assert!(Sm2Key::parse(&bad).is_err());
        bad[0] = 0x00;
        assert!(Sm2Key::parse(&bad).is_err());
        // x = p (≡ 0) and x = 2^256 - 1 are not canonical field elements.
        let mut x_is_p = [0u8; 33];
        x_is_p[0] = 0x02;
        x_is_p[1..].copy_from_slice(&hex32(
            "fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff",
        ));
        assert!(Sm2Key::parse(&x_is_p).is_err());
        let mut all_ff = [0xffu8; 33];
        all_ff[0] = 0x03;
        assert!(Sm2Key::parse(&all_ff).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever 33 bytes parse, they are the canonical encoding of the
        /// point they parse to.
        #[test]
        fn parsed_keys_are_canonical(x in any::<[u8; 32]>(), odd in any::<bool>()) {
            let mut bytes = [0u8; 33];
            bytes[0] = if odd { 3 } else { 2 };
            bytes[1..].copy_from_slice(&x);
            if let Ok(key) = Sm2Key::parse(&bytes) {
                prop_assert_eq!(key.bytes, bytes);
            }
        }

        #[test]
        fn signature_rule_is_the_crate_rule(sig in any::<[u8; 64]>()) {
            prop_assert_eq!(
                signature_rejection(&sig).is_none(),
                sm2::dsa::Signature::from_slice(&sig).is_ok()
            );
        }
    }
}
