//! Single and batch verification agree on random mixes of Ed25519 and SM2
//! items: honest signatures, tampered ones (wrong message, perturbed
//! scalar, wrong key, random in-range `r ‖ s`) and cross-algorithm pairs
//! (a key of one algorithm with a signature of the other). Every verdict is
//! also known by construction, and the batch paths must name exactly the
//! indexes `verify` rejects.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::OnceLock;

use govchain_core::crypto::{
    verify, verify_batch, verify_batch_all, verify_batch_sequential, BatchItem, PublicKey,
    SecretKey, Signature, SignatureError, Signer,
};
use proptest::prelude::*;

/// A few signers of each algorithm, made once (SM2 key generation is a
/// scalar multiplication).
fn signers() -> &'static (Vec<SecretKey>, Vec<SecretKey>) {
    static SIGNERS: OnceLock<(Vec<SecretKey>, Vec<SecretKey>)> = OnceLock::new();
    SIGNERS.get_or_init(|| {
        (
            (0..6u8).map(|i| SecretKey::from_seed(&[i; 32])).collect(),
            (0..6u8)
                .map(|i| SecretKey::sm2_from_seed(&[i.wrapping_add(100); 32]))
                .collect(),
        )
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    EdHonest,
    EdWrongMessage,
    EdWrongKey,
    Sm2Honest,
    Sm2WrongMessage,
    Sm2WrongKey,
    Sm2PerturbedS,
    Sm2RandomSignature,
    EdKeySm2Signature,
    Sm2KeyEdSignature,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::EdHonest),
        1 => Just(Kind::EdWrongMessage),
        1 => Just(Kind::EdWrongKey),
        3 => Just(Kind::Sm2Honest),
        1 => Just(Kind::Sm2WrongMessage),
        1 => Just(Kind::Sm2WrongKey),
        1 => Just(Kind::Sm2PerturbedS),
        1 => Just(Kind::Sm2RandomSignature),
        1 => Just(Kind::EdKeySm2Signature),
        1 => Just(Kind::Sm2KeyEdSignature),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    valid: bool,
}

fn make(kind: Kind, seed: u64) -> Case {
    let (ed, sm) = signers();
    let i = (seed % 6) as usize;
    let j = (i + 1 + (seed >> 8) as usize % 5) % 6;
    let message = seed.to_le_bytes().repeat(1 + (seed % 4) as usize);
    let honest = |sk: &SecretKey| Case {
        key: sk.public_key(),
        message: message.clone(),
        signature: sk.sign(&message),
        valid: true,
    };
    match kind {
        Kind::EdHonest => honest(&ed[i]),
        Kind::Sm2Honest => honest(&sm[i]),
        Kind::EdWrongMessage | Kind::Sm2WrongMessage => {
            let sk = if matches!(kind, Kind::EdWrongMessage) {
                &ed[i]
            } else {
                &sm[i]
            };
            Case {
                message: b"another message".to_vec(),
                valid: false,
                ..honest(sk)
            }
        }
        Kind::EdWrongKey => Case {
            key: ed[j].public_key(),
            valid: false,
            ..honest(&ed[i])
        },
        Kind::Sm2WrongKey => Case {
            key: sm[j].public_key(),
            valid: false,
            ..honest(&sm[i])
        },
        Kind::Sm2PerturbedS => {
            let base = honest(&sm[i]);
            let mut bytes = *base.signature.as_bytes();
            bytes[32 + (seed % 32) as usize] ^= 1 << (seed % 8);
            match Signature::sm2_from_bytes(bytes) {
                Ok(signature) => Case {
                    signature,
                    valid: false,
                    ..base
                },
                Err(_) => base, // left 1..n: keep the honest one
            }
        }
        Kind::Sm2RandomSignature => {
            let mut bytes = [0u8; 64];
            for (k, chunk) in bytes.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(
                    &seed
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15 + k as u64)
                        .to_le_bytes(),
                );
            }
            bytes[0] &= 0x7f; // below n
            bytes[32] &= 0x7f;
            bytes[31] |= 1; // non-zero
            bytes[63] |= 1;
            Case {
                signature: Signature::sm2_from_bytes(bytes).expect("in range"),
                valid: false,
                ..honest(&sm[i])
            }
        }
        Kind::EdKeySm2Signature => Case {
            key: ed[i].public_key(),
            valid: false,
            ..honest(&sm[i])
        },
        Kind::Sm2KeyEdSignature => Case {
            key: sm[i].public_key(),
            valid: false,
            ..honest(&ed[i])
        },
    }
}

fn check_agreement(cases: &[Case]) -> Result<(), TestCaseError> {
    let items: Vec<BatchItem<'_>> = cases
        .iter()
        .map(|c| BatchItem::new(&c.key, &c.message, &c.signature))
        .collect();
    let mut bad = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let single = verify(&c.key, &c.message, &c.signature);
        prop_assert_eq!(single.is_ok(), c.valid, "item {}: {:?}", i, c);
        if c.key.algorithm() != c.signature.algorithm() {
            prop_assert!(
                matches!(single, Err(SignatureError::AlgorithmMismatch { .. })),
                "item {} {:?}",
                i,
                single
            );
        }
        if single.is_err() {
            bad.push(i);
        }
    }
    let parallel = verify_batch(&items);
    let sequential = verify_batch_sequential(&items);
    let found = |r: &Result<(), govchain_core::crypto::BatchVerifyError>| {
        r.as_ref()
            .err()
            .map(|e| e.invalid_indexes().to_vec())
            .unwrap_or_default()
    };
    prop_assert_eq!(found(&parallel), bad.clone());
    prop_assert_eq!(found(&sequential), bad.clone());
    prop_assert_eq!(verify_batch_all(&items).is_ok(), bad.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Mixed batches of up to 300 items (across the one-chunk boundary of
    /// 256).
    #[test]
    fn single_and_batch_agree_on_mixed_suites(
        spec in proptest::collection::vec((kind(), any::<u64>()), 1..300),
    ) {
        let cases: Vec<Case> = spec.iter().map(|&(k, s)| make(k, s)).collect();
        check_agreement(&cases)?;
    }

    /// All-SM2 batches, valid or with a few bad items.
    #[test]
    fn single_and_batch_agree_on_sm2_batches(
        seeds in proptest::collection::vec(any::<u64>(), 1..80),
        bad in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        let mut cases: Vec<Case> = seeds.iter().map(|&s| make(Kind::Sm2Honest, s)).collect();
        for idx in &bad {
            let i = idx.index(cases.len());
            cases[i] = make(Kind::Sm2WrongMessage, seeds[i]);
        }
        check_agreement(&cases)?;
    }
}

/// A larger fixed mix: several chunks, every kind, both algorithms in every
/// chunk.
#[test]
fn agreement_across_chunks() {
    let kinds = [
        Kind::EdHonest,
        Kind::Sm2Honest,
        Kind::EdHonest,
        Kind::Sm2Honest,
        Kind::EdWrongMessage,
        Kind::Sm2WrongMessage,
        Kind::Sm2PerturbedS,
        Kind::EdKeySm2Signature,
        Kind::Sm2KeyEdSignature,
        Kind::Sm2WrongKey,
        Kind::EdWrongKey,
        Kind::Sm2RandomSignature,
    ];
    let cases: Vec<Case> = (0..900u64)
        .map(|s| {
            // Mostly honest, a bad item every so often.
            let k = if s % 37 == 0 {
                kinds[(s / 37) as usize % kinds.len()]
            } else {
                kinds[(s % 4) as usize]
            };
            make(k, s)
        })
        .collect();
    check_agreement(&cases).unwrap();
    let honest: Vec<Case> = cases.into_iter().filter(|c| c.valid).collect();
    check_agreement(&honest).unwrap();
}
