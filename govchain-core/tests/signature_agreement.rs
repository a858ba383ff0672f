//! Single and batch verification accept exactly the same signatures, on
//! random mixes of valid, invalid and edge-case signatures, and both agree
//! with the ZIP-215 reference (`ed25519-consensus`) on everything that
//! passes govchain's decode rules.
//!
//! The edge cases are the ones "Taming the many EdDSAs" (Chalkias, Garillot
//! and Nikolaenko, SSR 2020) is about: keys and `R` values with a torsion
//! component (mixed order), signatures valid only under the cofactored
//! equation, off-curve `R` and keys that still pass the byte-level rules,
//! and the paper's accepted vectors 3, 4 and 5; plus plain forgeries (wrong
//! message, perturbed `S`, swapped keys) and repeated senders (the batch
//! merges one key's terms).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::Scalar;
use govchain_core::crypto::{
    verify, verify_batch, verify_batch_all, verify_batch_sequential, BatchItem, PublicKey,
    SecretKey, Signature, SignatureError, Signer,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// One triple in a test batch, with what it should verify to (known by
/// construction, independent of the code under test).
#[derive(Debug, Clone)]
struct Case {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    /// `Some(v)`: the construction guarantees the verdict `v`.
    /// `None`: unknown a priori (only agreement is checked).
    expected: Option<bool>,
}

fn k_of(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    let mut wide = [0u8; 64];
    wide.copy_from_slice(&h.finalize());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A raw Schnorr signature with torsion `T[ta]` added to the key and
/// `T[tr]` to `R`. Valid under the cofactored equation for every torsion
/// choice; valid under the cofactorless one only when `k·T[ta] = T[tr]`.
/// Returns `None` when an encoding falls outside govchain's byte rules
/// (astronomically unlikely for random secrets).
fn raw_case(a: Scalar, r: Scalar, ta: usize, tr: usize, message: &[u8]) -> Option<Case> {
    let a_pt = EdwardsPoint::mul_base(&a) + EIGHT_TORSION[ta];
    let r_pt = EdwardsPoint::mul_base(&r) + EIGHT_TORSION[tr];
    let (a_bytes, r_bytes) = (a_pt.compress().to_bytes(), r_pt.compress().to_bytes());
    let s = r + k_of(&r_bytes, &a_bytes, message) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    Some(Case {
        key: PublicKey::ed25519_from_bytes(a_bytes).ok()?,
        message: message.to_vec(),
        signature: Signature::ed25519_from_bytes(sig).ok()?,
        expected: Some(true),
    })
}

/// A canonical, non-small-order encoding that is not a curve point (about
/// half of all `y` values are not).
fn off_curve_bytes(seed: u64) -> [u8; 32] {
    let mut y = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    loop {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&y.to_le_bytes());
        b[8] = 0x5a;
        if CompressedEdwardsY(b).decompress().is_none() {
            return b;
        }
        y = y.wrapping_add(1);
    }
}

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).expect("hex");
    out
}

/// The three "Taming the many EdDSAs" vectors govchain accepts (Table 6,
/// numbers 3, 4 and 5): mixed-order key, valid under the cofactored
/// equation (4 and 5 only under it).
fn taming_vector(i: usize) -> Case {
    const V: [(&str, &str, &str); 3] = [
        (
            "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
        ),
        (
            "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
            "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
            "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
        ),
    ];
    let (m, k, s) = V[i % 3];
    Case {
        key: PublicKey::ed25519_from_bytes(unhex(k)).expect("vector key decodes"),
        message: unhex::<32>(m).to_vec(),
        signature: Signature::ed25519_from_bytes(unhex(s)).expect("vector signature decodes"),
        expected: Some(true),
    }
}

/// What kind of triple to make.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An honest RFC 8032 signature.
    Honest,
    /// An honest signature from one of a few repeated senders.
    RepeatedSender,
    /// Mixed-order key and/or `R`, valid under the cofactored equation.
    Torsion,
    /// A "Taming" vector (3, 4 or 5), valid.
    TamingValid,
    /// A "Taming" vector on another message: invalid.
    TamingWrongMessage,
    /// An honest signature checked against another message.
    WrongMessage,
    /// An honest signature with `S` replaced by `S + δ` (mod ℓ), `δ ≠ 0`.
    PerturbedS,
    /// A torsion case whose `S` is off by a multiple of nothing: `S + 1`.
    TorsionPerturbed,
    /// An honest signature presented under another key.
    WrongKey,
    /// `R` is a canonical encoding that is not a curve point.
    OffCurveR,
    /// The key is a canonical encoding that is not a curve point.
    OffCurveKey,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => Just(Kind::Honest),
        3 => Just(Kind::RepeatedSender),
        3 => Just(Kind::Torsion),
        1 => Just(Kind::TamingValid),
        1 => Just(Kind::TamingWrongMessage),
        1 => Just(Kind::WrongMessage),
        1 => Just(Kind::PerturbedS),
        1 => Just(Kind::TorsionPerturbed),
        1 => Just(Kind::WrongKey),
        1 => Just(Kind::OffCurveR),
        1 => Just(Kind::OffCurveKey),
    ]
}

fn seeded_key(seed: u64) -> SecretKey {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8] = 0xa5;
    SecretKey::from_seed(&s)
}

fn make(kind: Kind, seed: u64) -> Case {
    let message = seed.to_le_bytes().repeat(1 + (seed % 5) as usize);
    let honest = |sk: &SecretKey| Case {
        key: sk.public_key(),
        message: message.clone(),
        signature: sk.sign(&message),
        expected: Some(true),
    };
    let scalar = |x: u64| Scalar::from(x) * Scalar::from(0x1234_5678_9abc_def1u64) + Scalar::ONE;
    match kind {
        Kind::Honest => honest(&seeded_key(seed)),
        Kind::RepeatedSender => honest(&seeded_key(seed % 3)),
        Kind::Torsion => raw_case(
            scalar(seed),
            scalar(seed ^ 0xffff),
            (seed % 8) as usize,
            ((seed >> 3) % 8) as usize,
            &message,
        )
        .unwrap_or_else(|| honest(&seeded_key(seed))),
        Kind::TamingValid => taming_vector(seed as usize),
        Kind::TamingWrongMessage => Case {
            message: b"not the vector's message".to_vec(),
            expected: Some(false),
            ..taming_vector(seed as usize)
        },
        Kind::WrongMessage => Case {
            message: [&message[..], b"!"].concat(),
            expected: Some(false),
            ..honest(&seeded_key(seed))
        },
        Kind::PerturbedS | Kind::TorsionPerturbed => {
            let base = if matches!(kind, Kind::PerturbedS) {
                honest(&seeded_key(seed))
            } else {
                raw_case(
                    scalar(seed),
                    scalar(!seed),
                    1 + (seed % 7) as usize,
                    0,
                    &message,
                )
                .unwrap_or_else(|| honest(&seeded_key(seed)))
            };
            let mut sig = *base.signature.as_bytes();
            let mut s = [0u8; 32];
            s.copy_from_slice(&sig[32..]);
            let delta = Scalar::from(1 + seed % 1000);
            let s2 = Scalar::from_canonical_bytes(s).unwrap() + delta;
            sig[32..].copy_from_slice(s2.as_bytes());
            Case {
                signature: Signature::ed25519_from_bytes(sig).expect("S + δ mod ℓ is canonical"),
                expected: Some(false),
                ..base
            }
        }
        Kind::WrongKey => Case {
            key: seeded_key(seed.wrapping_add(1)).public_key(),
            expected: Some(false),
            ..honest(&seeded_key(seed))
        },
        Kind::OffCurveR => {
            let base = honest(&seeded_key(seed));
            let mut sig = *base.signature.as_bytes();
            sig[..32].copy_from_slice(&off_curve_bytes(seed));
            Case {
                signature: Signature::ed25519_from_bytes(sig).expect("byte rules pass"),
                expected: Some(false),
                ..base
            }
        }
        Kind::OffCurveKey => Case {
            key: PublicKey::ed25519_from_bytes(off_curve_bytes(seed)).expect("byte rules pass"),
            expected: Some(false),
            ..honest(&seeded_key(seed))
        },
    }
}

fn cases() -> impl Strategy<Value = Vec<Case>> {
    // Up to 600 items: one, two or three chunks of the batch.
    proptest::collection::vec((kind(), any::<u64>()), 1..600)
        .prop_map(|v| v.into_iter().map(|(k, s)| make(k, s)).collect())
}

/// What the ZIP-215 reference decides for one triple.
fn zip215(case: &Case) -> bool {
    ed25519_consensus::VerificationKey::try_from(*case.key.ed25519_bytes().expect("ed25519"))
        .and_then(|vk| {
            vk.verify(
                &ed25519_consensus::Signature::from(*case.signature.as_bytes()),
                &case.message,
            )
        })
        .is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On random mixes, every batch entry point gives exactly the single
    /// verdicts: `verify_batch` and `verify_batch_sequential` name exactly
    /// the items `verify` rejects, and `verify_batch_all` accepts exactly
    /// when `verify` accepts every item. Single verdicts also match the
    /// construction and the ZIP-215 reference.
    #[test]
    fn single_and_batch_give_identical_verdicts_on_random_mixes(cases in cases()) {
        let items: Vec<BatchItem<'_>> = cases
            .iter()
            .map(|c| BatchItem::new(&c.key, &c.message, &c.signature))
            .collect();
        let single: Vec<bool> = items.iter().map(|i| i.verify().is_ok()).collect();
        for (i, c) in cases.iter().enumerate() {
            if let Some(expected) = c.expected {
                prop_assert_eq!(single[i], expected, "item {}: {:?}", i, c);
            }
            prop_assert_eq!(single[i], zip215(c), "item {} vs ZIP-215: {:?}", i, c);
        }
        let bad: Vec<usize> = (0..items.len()).filter(|&i| !single[i]).collect();
        let got = |r: Result<(), govchain_core::crypto::BatchVerifyError>| {
            r.map_err(|e| e.invalid_indexes().to_vec()).err().unwrap_or_default()
        };
        prop_assert_eq!(got(verify_batch(&items)), bad.clone());
        prop_assert_eq!(got(verify_batch_sequential(&items)), bad.clone());
        prop_assert_eq!(
            verify_batch_all(&items),
            if bad.is_empty() { Ok(()) } else { Err(SignatureError::Invalid) }
        );
        // The valid items alone form an accepted batch on every path.
        let good: Vec<BatchItem<'_>> = (0..items.len())
            .filter(|&i| single[i])
            .map(|i| items[i])
            .collect();
        prop_assert_eq!(verify_batch(&good), Ok(()));
        prop_assert_eq!(verify_batch_sequential(&good), Ok(()));
        prop_assert_eq!(verify_batch_all(&good), Ok(()));
    }

    /// Differential test against the ZIP-215 reference on adversarial
    /// triples: random secrets, random torsion on `A` and `R`, and `S`,
    /// message or hash input perturbed or not. Whenever the bytes pass
    /// govchain's decode rules, `verify` and a batch of one agree with
    /// `ed25519-consensus`.
    #[test]
    fn verdicts_equal_the_zip215_reference(
        a in any::<[u8; 32]>(),
        r in any::<[u8; 32]>(),
        ta in 0usize..8,
        tr in 0usize..8,
        s_delta in prop_oneof![Just(0u64), any::<u64>()],
        hash_other_key in any::<bool>(),
        message in proptest::collection::vec(any::<u8>(), 0..200),
        raw_r in proptest::option::of(any::<[u8; 32]>()),
        raw_s in proptest::option::of(any::<[u8; 32]>()),
    ) {
        let a = Scalar::from_bytes_mod_order(a);
        let r = Scalar::from_bytes_mod_order(r);
        let a_pt = EdwardsPoint::mul_base(&a) + EIGHT_TORSION[ta];
        let mut r_bytes = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[tr]).compress().to_bytes();
        let a_bytes = a_pt.compress().to_bytes();
        // Hash under the key without its torsion: valid for no equation
        // unless the torsion is trivial.
        let hashed_a = if hash_other_key {
            EdwardsPoint::mul_base(&a).compress().to_bytes()
        } else {
            a_bytes
        };
        let mut s = r + k_of(&r_bytes, &hashed_a, &message) * a + Scalar::from(s_delta);
        if let Some(raw) = raw_r {
            r_bytes = raw;
        }
        if let Some(raw) = raw_s {
            if let Some(x) = Option::<Scalar>::from(Scalar::from_canonical_bytes(raw)) {
                s = x;
            }
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice(s.as_bytes());
        let (Ok(key), Ok(signature)) = (
            PublicKey::ed25519_from_bytes(a_bytes),
            Signature::ed25519_from_bytes(sig),
        ) else {
            return Ok(());
        };
        let case = Case { key, message, signature, expected: None };
        let ours = verify(&case.key, &case.message, &case.signature).is_ok();
        prop_assert_eq!(ours, zip215(&case));
        let one = [BatchItem::new(&case.key, &case.message, &case.signature)];
        prop_assert_eq!(verify_batch_all(&one).is_ok(), ours);
        // And inside a batch of honest signatures (the batch equation, not
        // the single-item shortcut).
        let honest: Vec<Case> = (0..5).map(|i| make(Kind::Honest, 1000 + i)).collect();
        let mut items: Vec<BatchItem<'_>> = honest
            .iter()
            .map(|c| BatchItem::new(&c.key, &c.message, &c.signature))
            .collect();
        items.insert(2, one[0]);
        prop_assert_eq!(verify_batch_all(&items).is_ok(), ours);
        prop_assert_eq!(
            verify_batch(&items).map_err(|e| e.invalid_indexes().to_vec()),
            if ours { Ok(()) } else { Err(vec![2]) }
        );
    }
}

/// Every kind of case behaves as constructed, deterministically (a quick
/// non-random pass, so a broken generator fails loudly).
#[test]
fn every_kind_behaves_as_constructed() {
    let kinds = [
        Kind::Honest,
        Kind::RepeatedSender,
        Kind::Torsion,
        Kind::TamingValid,
        Kind::TamingWrongMessage,
        Kind::WrongMessage,
        Kind::PerturbedS,
        Kind::TorsionPerturbed,
        Kind::WrongKey,
        Kind::OffCurveR,
        Kind::OffCurveKey,
    ];
    let mut cofactorless_rejects = 0;
    for kind in kinds {
        for seed in 0..16u64 {
            let c = make(kind, seed);
            let expected = c.expected.expect("constructed");
            assert_eq!(
                verify(&c.key, &c.message, &c.signature).is_ok(),
                expected,
                "{kind:?} {seed}"
            );
            assert_eq!(zip215(&c), expected, "{kind:?} {seed}");
            if matches!(kind, Kind::Torsion) {
                let strict = ed25519_dalek::VerifyingKey::from_bytes(
                    c.key.ed25519_bytes().expect("ed25519"),
                )
                .and_then(|vk| {
                    vk.verify_strict(
                        &c.message,
                        &ed25519_dalek::Signature::from_bytes(c.signature.as_bytes()),
                    )
                })
                .is_ok();
                if !strict {
                    cofactorless_rejects += 1;
                }
            }
        }
    }
    // The torsion cases really exercise the cofactored/cofactorless gap.
    assert!(cofactorless_rejects >= 8, "{cofactorless_rejects}");
}
