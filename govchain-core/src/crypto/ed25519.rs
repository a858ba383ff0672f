//! Byte-level strictness checks on Ed25519 encodings.
//!
//! These run when bytes become a `PublicKey` or `Signature`, before either
//! verification path sees them, so they narrow the accepted set without any
//! chance of making single and batch verification disagree. They are pure
//! comparisons: no field arithmetic.

/// `ℓ = 2^252 + 27742317777372353535851937790883648493`, little-endian: the
/// order of the prime-order subgroup.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// The canonical encodings of the eight points of order dividing 8 (the
/// torsion subgroup `E[8]`). Their six non-canonical encodings are refused
/// earlier by [`is_canonical_point`]. A unit test rebuilds this table from
/// `curve25519_dalek::constants::EIGHT_TORSION`.
pub(crate) const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = [
    // Identity (0, 1): order 1.
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    // (0, -1): order 2.
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    // (±sqrt(-1), 0): order 4.
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    // The four points of order 8.
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
];

/// Parses 64 lower-case hex digits at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            // Only reachable through a typo in the table above, which the
            // unit test `small_order_table_is_the_eight_torsion_subgroup`
            // would catch.
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

/// Whether `s` (little-endian) is a canonical scalar, `s < ℓ`.
pub(crate) fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    // Compare from the most significant byte down.
    for i in (0..32).rev() {
        if s[i] != ELL[i] {
            return s[i] < ELL[i];
        }
    }
    false // s == ℓ
}

/// Whether `b` is the canonical encoding of whatever point it may encode:
/// the 255-bit `y` is below `p = 2^255 - 19`, and the sign bit is clear when
/// `x = 0` (that is, when `y = 1` or `y = p - 1`).
///
/// This does not check that `b` is on the curve; decompression does.
pub(crate) fn is_canonical_point(b: &[u8; 32]) -> bool {
    let sign = b[31] & 0x80 != 0;
    let top = b[31] & 0x7f;
    let middle_all_ff = b[1..31].iter().all(|&x| x == 0xff);
    let middle_all_00 = b[1..31].iter().all(|&x| x == 0x00);
    // y >= p: y = 2^255 - 19 + t for t in 0..19, i.e. 0x7fff…ff(ed + t).
    if top == 0x7f && middle_all_ff && b[0] >= 0xed {
        return false;
    }
    if sign {
        // y = 1: the identity; y = p - 1: the point of order 2. Both have x = 0.
        let y_is_one = top == 0 && middle_all_00 && b[0] == 0x01;
        let y_is_minus_one = top == 0x7f && middle_all_ff && b[0] == 0xec;
        if y_is_one || y_is_minus_one {
            return false;
        }
    }
    true
}

/// Whether the canonical encoding `b` is one of the eight small-order points.
/// Callers check [`is_canonical_point`] first.
pub(crate) fn is_small_order_encoding(b: &[u8; 32]) -> bool {
    SMALL_ORDER_ENCODINGS.iter().any(|e| e == b)
}

/// Why a point encoding is refused by the byte checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointRejection {
    /// `y >= p`, or the sign bit is set on `x = 0`.
    NonCanonical,
    /// One of the eight points of order dividing 8.
    SmallOrder,
}

/// Why a point encoding is refused, or `None` if it passes the byte checks.
pub(crate) fn point_rejection(b: &[u8; 32]) -> Option<PointRejection> {
    if !is_canonical_point(b) {
        Some(PointRejection::NonCanonical)
    } else if is_small_order_encoding(b) {
        Some(PointRejection::SmallOrder)
    } else {
        None
    }
}

/// Why signature bytes `R ‖ S` are refused, or `None` if they pass.
pub(crate) fn signature_rejection(sig: &[u8; 64]) -> Option<&'static str> {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    s.copy_from_slice(&sig[32..]);
    if !is_canonical_scalar(&s) {
        return Some("non-canonical scalar S (S >= l)");
    }
    match point_rejection(&r) {
        Some(PointRejection::NonCanonical) => Some("non-canonical encoding of R"),
        Some(PointRejection::SmallOrder) => Some("small-order R"),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::traits::IsIdentity;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn ell_is_the_group_order() {
        // ℓ - 1 is canonical, ℓ and ℓ + 1 are not.
        let mut l_minus_1 = ELL;
        l_minus_1[0] -= 1;
        assert!(is_canonical_scalar(&l_minus_1));
        assert!(!is_canonical_scalar(&ELL));
        let mut l_plus_1 = ELL;
        l_plus_1[0] += 1;
        assert!(!is_canonical_scalar(&l_plus_1));
        assert!(is_canonical_scalar(&[0; 32]));
        assert!(!is_canonical_scalar(&[0xff; 32]));
        // ℓ·B is the identity, (ℓ-1)·B is not.
        let b = curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        let s = curve25519_dalek::Scalar::from_bytes_mod_order(l_minus_1);
        assert!(!(b * s).is_identity());
        assert!((b * s + b).is_identity());
    }

    #[test]
    fn small_order_table_is_the_eight_torsion_subgroup() {
        let from_curve: BTreeSet<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
            .iter()
            .map(|p| p.compress().to_bytes())
            .collect();
        let table: BTreeSet<[u8; 32]> = SMALL_ORDER_ENCODINGS.iter().copied().collect();
        assert_eq!(from_curve.len(), 8);
        assert_eq!(table, from_curve);
        for e in &SMALL_ORDER_ENCODINGS {
            assert!(is_canonical_point(e));
            let p = CompressedEdwardsY(*e).decompress();
            assert!(p.is_some_and(|p| p.is_small_order()));
        }
    }

    /// Every encoding that `is_canonical_point` refuses: `y` in `p..2^255`
    /// with either sign bit, and the sign bit on `x = 0`. Those that still
    /// decompress (ZIP-215 would accept them) are exactly the six
    /// non-canonical encodings of small-order points plus the non-canonical
    /// encodings of other points with `y < 19`.
    #[test]
    fn non_canonical_encodings_are_exactly_the_ones_refused() {
        let mut refused = 0;
        let mut small_order_non_canonical = 0;
        for t in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut b = [0xffu8; 32];
                b[0] = 0xed + t;
                b[31] = 0x7f | sign;
                assert!(!is_canonical_point(&b));
                refused += 1;
                if let Some(p) = CompressedEdwardsY(b).decompress() {
                    assert_ne!(p.compress().to_bytes(), b);
                    if p.is_small_order() {
                        small_order_non_canonical += 1;
                    }
                }
            }
        }
        for mut b in [SMALL_ORDER_ENCODINGS[0], SMALL_ORDER_ENCODINGS[1]] {
            b[31] |= 0x80;
            assert!(!is_canonical_point(&b));
            refused += 1;
            let p = CompressedEdwardsY(b).decompress();
            assert!(p.is_some_and(|p| p.is_small_order() && p.compress().to_bytes() != b));
            small_order_non_canonical += 1;
        }
        assert_eq!(refused, 40);
        assert_eq!(small_order_non_canonical, 6);
    }

    proptest! {
        /// For any bytes that decompress, "canonical" means "re-encodes to
        /// the same bytes", and "small order" agrees with the curve.
        #[test]
        fn byte_checks_agree_with_the_curve(bytes in any::<[u8; 32]>()) {
            if let Some(p) = CompressedEdwardsY(bytes).decompress() {
                let canonical = p.compress().to_bytes() == bytes;
                prop_assert_eq!(is_canonical_point(&bytes), canonical);
                if canonical {
                    prop_assert_eq!(is_small_order_encoding(&bytes), p.is_small_order());
                }
            }
        }

        #[test]
        fn scalar_check_agrees_with_reduction(bytes in any::<[u8; 32]>()) {
            let canonical = curve25519_dalek::Scalar::from_canonical_bytes(bytes).is_some().into();
            prop_assert_eq!(is_canonical_scalar(&bytes), canonical);
        }
    }
}
