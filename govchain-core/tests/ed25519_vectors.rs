//! Ed25519 edge cases: single and batch verification accept exactly the same
//! signatures.
//!
//! The twelve vectors are those of Chalkias, Garillot and Nikolaenko, "Taming
//! the many EdDSAs" (SSR 2020, §5.1, Table 6), as published in the
//! `ed25519-speccheck` repository (`cases.txt`). Each is checked against
//! govchain's rules (ZIP-215 plus decode-time strictness checks, see
//! `govchain_core::crypto`), at every stage: key decoding, signature
//! decoding, single verification, batch verification of one, and batch
//! verification mixed among valid signatures. The raw ZIP-215 library is
//! checked too, to show which rejections come from govchain's own checks.

// Helpers outside `#[test]` functions may panic too: a failing test should
// fail loudly (as `clippy.toml` allows inside tests).
#![allow(clippy::expect_used)]

use govchain_core::codec::DecodeError;
use govchain_core::crypto::{
    verify, verify_batch, verify_batch_all, verify_batch_sequential, BatchItem, BatchVerifyError,
    PublicKey, SecretKey, Signature, SignatureError, Signer,
};
use proptest::prelude::*;
use rand_core::SeedableRng;

/// Where govchain rejects a vector, or that it accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Decodes and verifies on both paths.
    Accept,
    /// `PublicKey::ed25519_from_bytes` refuses the key, for this reason.
    RejectKey(&'static str),
    /// `Signature::ed25519_from_bytes` refuses the signature, for this reason.
    RejectSignature(&'static str),
}

struct Vector {
    /// Index in the paper's Table 6 and in `cases.txt`.
    number: usize,
    message: &'static str,
    public_key: &'static str,
    signature: &'static str,
    /// What plain ZIP-215 (`ed25519-consensus`, no extra checks) decides.
    zip215_accepts: bool,
    /// What govchain decides.
    expect: Expect,
    /// Why.
    why: &'static str,
}

const SMALL_KEY: Expect = Expect::RejectKey("small-order point");
const NON_CANONICAL_KEY: Expect = Expect::RejectKey("non-canonical point encoding");
const SMALL_R: Expect = Expect::RejectSignature("small-order R");
const NON_CANONICAL_R: Expect = Expect::RejectSignature("non-canonical encoding of R");
const BIG_S: Expect = Expect::RejectSignature("non-canonical scalar S (S >= l)");

const VECTORS: [Vector; 12] = [
    Vector {
        number: 0,
        message: "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        public_key: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        signature: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a\
                    0000000000000000000000000000000000000000000000000000000000000000",
        zip215_accepts: true,
        expect: SMALL_KEY,
        why: "S = 0 with small-order A and R: a signature that verifies on any message \
              under a key nobody holds a secret for",
    },
    Vector {
        number: 1,
        message: "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        public_key: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        signature: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43\
                    a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        zip215_accepts: true,
        expect: SMALL_KEY,
        why: "small-order A (an order-8 point): no secret key behind it",
    },
    Vector {
        number: 2,
        message: "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        public_key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa\
                    8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
        zip215_accepts: true,
        expect: SMALL_R,
        why: "small-order R (order 8): independent of any nonce; honest signers never make one",
    },
    Vector {
        number: 3,
        message: "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        public_key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f\
                    87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
        zip215_accepts: true,
        expect: Expect::Accept,
        why: "mixed-order A and R, valid under both equations: canonical, not small order",
    },
    Vector {
        number: 4,
        message: "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        public_key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed512\
                    5ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
        zip215_accepts: true,
        expect: Expect::Accept,
        why: "mixed-order A and R, valid only under the cofactored equation, which both \
              govchain paths use (a cofactorless verifier rejects it)",
    },
    Vector {
        number: 5,
        message: "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        public_key: "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        signature: "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7\
                    e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
        zip215_accepts: true,
        expect: Expect::Accept,
        why: "mixed-order A, prime-order R, valid under the cofactored equation as long as \
              8·k is not reduced mod l first (ZIP-215 multiplies the points)",
    },
    Vector {
        number: 6,
        message: "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        public_key: "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        signature: "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e\
                    547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
        zip215_accepts: false,
        expect: BIG_S,
        why: "S > l: S and S - l would be two encodings of one signature (malleability)",
    },
    Vector {
        number: 7,
        message: "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        public_key: "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        signature: "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa1942\
                    7e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
        zip215_accepts: false,
        expect: BIG_S,
        why: "S >> l (high bits set): as vector 6",
    },
    Vector {
        number: 8,
        message: "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        public_key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
                    03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
        zip215_accepts: false,
        expect: NON_CANONICAL_R,
        why: "R is (0, -1) with the sign bit set: a non-canonical encoding of a small-order \
              point (valid only for verifiers that re-encode R before hashing)",
    },
    Vector {
        number: 9,
        message: "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        public_key: "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        signature: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
                    ca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
        zip215_accepts: true,
        expect: NON_CANONICAL_R,
        why: "the same non-canonical R, hashed as sent: ZIP-215 accepts it, govchain refuses \
              a second byte form of R",
    },
    Vector {
        number: 10,
        message: "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        public_key: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        signature: "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc\
                    a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        zip215_accepts: true,
        expect: NON_CANONICAL_KEY,
        why: "A is (0, -1) with the sign bit set: non-canonical and small order; one key \
              must have one byte form",
    },
    Vector {
        number: 11,
        message: "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        public_key: "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        signature: "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc\
                    a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
        zip215_accepts: true,
        expect: NON_CANONICAL_KEY,
        why: "as vector 10, for verifiers that reduce A before hashing",
    },
];

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = [0u8; N];
    hex::decode_to_slice(&clean, &mut out).expect("vector hex");
    out
}

impl Vector {
    fn message(&self) -> Vec<u8> {
        unhex::<32>(self.message).to_vec()
    }
    fn key_bytes(&self) -> [u8; 32] {
        unhex(self.public_key)
    }
    fn signature_bytes(&self) -> [u8; 64] {
        unhex(self.signature)
    }
}

/// A batch of valid signatures by distinct keys, to mix vectors into.
fn valid_batch(n: usize) -> (Vec<PublicKey>, Vec<Vec<u8>>, Vec<Signature>) {
    let keys: Vec<SecretKey> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SecretKey::from_seed(&seed)
        })
        .collect();
    let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 250]).collect();
    let sigs = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    (
        keys.iter().map(|k| k.public_key()).collect(),
        messages,
        sigs,
    )
}

#[test]
fn the_paper_has_twelve_vectors_and_govchain_accepts_3_4_5() {
    let accepted: Vec<usize> = VECTORS
        .iter()
        .filter(|v| v.expect == Expect::Accept)
        .map(|v| v.number)
        .collect();
    assert_eq!(accepted, vec![3, 4, 5]);
    for (i, v) in VECTORS.iter().enumerate() {
        assert_eq!(v.number, i);
        assert!(!v.why.is_empty());
    }
}

/// Decode-time checks: each vector is refused exactly where and why the table
/// says, and the accepted ones decode.
#[test]
fn decode_time_checks_match_the_expectation() {
    for v in &VECTORS {
        let key = PublicKey::ed25519_from_bytes(v.key_bytes());
        let sig = Signature::ed25519_from_bytes(v.signature_bytes());
        match v.expect {
            Expect::RejectKey(reason) => assert_eq!(
                key.map(|_| ()),
                Err(DecodeError::InvalidValue {
                    what: "ed25519 public key",
                    reason
                }),
                "vector {}",
                v.number
            ),
            Expect::RejectSignature(reason) => {
                assert!(key.is_ok(), "vector {}: key must decode", v.number);
                assert_eq!(
                    sig,
                    Err(DecodeError::InvalidValue {
                        what: "ed25519 signature",
                        reason
                    }),
                    "vector {}",
                    v.number
                );
            }
            Expect::Accept => {
                assert!(key.is_ok() && sig.is_ok(), "vector {}", v.number);
            }
        }
    }
}

/// The accepted vectors verify on every path, alone and mixed into batches of
/// valid signatures; the same key and signature on another message fail on
/// every path, and the batch names exactly that index.
#[test]
fn single_and_batch_agree_on_the_vectors() {
    let (keys, messages, sigs) = valid_batch(300);
    for v in VECTORS.iter().filter(|v| v.expect == Expect::Accept) {
        let key = PublicKey::ed25519_from_bytes(v.key_bytes()).expect("decodes");
        let sig = Signature::ed25519_from_bytes(v.signature_bytes()).expect("decodes");
        // These keys carry a torsion component: ZIP-215 accepts them, and the
        // registry-time check can see it.
        assert!(!key.is_torsion_free(), "vector {}", v.number);
        let wrong = b"another message".to_vec();
        for (message, ok) in [(v.message(), true), (wrong, false)] {
            let expected_single = if ok {
                Ok(())
            } else {
                Err(SignatureError::Invalid)
            };
            assert_eq!(
                verify(&key, &message, &sig),
                expected_single,
                "vector {}",
                v.number
            );
            let one = [BatchItem::new(&key, &message, &sig)];
            let expected_batch = if ok {
                Ok(())
            } else {
                Err(BatchVerifyError::InvalidSignatures { indexes: vec![0] })
            };
            assert_eq!(verify_batch(&one), expected_batch, "vector {}", v.number);
            assert_eq!(verify_batch_sequential(&one), expected_batch);
            assert_eq!(verify_batch_all(&one), expected_single);
            // Mixed in at the front, the middle (second chunk) and the end.
            for position in [0, 150, 299] {
                let mut items: Vec<BatchItem<'_>> = (0..300)
                    .map(|i| BatchItem::new(&keys[i], &messages[i], &sigs[i]))
                    .collect();
                items.insert(position, BatchItem::new(&key, &message, &sig));
                let expected = if ok {
                    Ok(())
                } else {
                    Err(BatchVerifyError::InvalidSignatures {
                        indexes: vec![position],
                    })
                };
                assert_eq!(verify_batch(&items), expected, "vector {}", v.number);
                assert_eq!(verify_batch_sequential(&items), expected);
                assert_eq!(verify_batch_all(&items), expected_single);
            }
        }
    }
}

/// Below govchain's checks, the ZIP-215 library itself agrees with itself on
/// every vector: single verification, a batch of one and a batch among valid
/// signatures give the same answer, the one the paper's results table
/// records for Zebra (the ZIP-215 reference). govchain's decode checks then
/// remove vectors 0, 1, 2, 9, 10 and 11 on top.
#[test]
fn raw_zip215_single_and_batch_agree_on_all_vectors() {
    let (keys, messages, sigs) = valid_batch(20);
    for v in &VECTORS {
        let message = v.message();
        let vk_bytes = ed25519_consensus::VerificationKeyBytes::from(v.key_bytes());
        let sig = ed25519_consensus::Signature::from(v.signature_bytes());
        let single = ed25519_consensus::VerificationKey::try_from(vk_bytes)
            .and_then(|vk| vk.verify(&sig, &message))
            .is_ok();
        assert_eq!(single, v.zip215_accepts, "vector {} single", v.number);

        let rng = rand_chacha::ChaCha20Rng::from_seed([v.number as u8; 32]);
        let mut one = ed25519_consensus::batch::Verifier::new();
        one.queue((vk_bytes, sig, &message[..]));
        assert_eq!(
            one.verify(rng).is_ok(),
            single,
            "vector {} batch of one",
            v.number
        );

        let rng = rand_chacha::ChaCha20Rng::from_seed([0x80 | v.number as u8; 32]);
        let mut mixed = ed25519_consensus::batch::Verifier::new();
        for i in 0..20 {
            mixed.queue((
                ed25519_consensus::VerificationKeyBytes::from(
                    *keys[i].ed25519_bytes().expect("ed25519"),
                ),
                ed25519_consensus::Signature::from(*sigs[i].as_bytes()),
                &messages[i][..],
            ));
        }
        mixed.queue((vk_bytes, sig, &message[..]));
        assert_eq!(
            mixed.verify(rng).is_ok(),
            single,
            "vector {} mixed batch",
            v.number
        );

        // govchain only ever narrows ZIP-215.
        if v.expect == Expect::Accept {
            assert!(v.zip215_accepts);
        }
    }
}

/// The cofactorless strict verifier (`ed25519-dalek` `verify_strict`) rejects
/// vectors 4 and 5, which govchain accepts: the price of ZIP-215's
/// batch/single agreement, and why `PublicKey::is_torsion_free` exists for
/// registries that need every accepted signature to verify everywhere.
#[test]
fn cofactorless_strict_verification_differs_only_on_mixed_order_vectors() {
    for v in VECTORS.iter().filter(|v| v.expect == Expect::Accept) {
        let strict = ed25519_dalek::VerifyingKey::from_bytes(&v.key_bytes())
            .and_then(|vk| {
                vk.verify_strict(
                    &v.message(),
                    &ed25519_dalek::Signature::from_bytes(&v.signature_bytes()),
                )
            })
            .is_ok();
        assert_eq!(strict, v.number == 3, "vector {}", v.number);
    }
}

/// Which part of a signed triple a corruption hits.
#[derive(Debug, Clone, Copy)]
enum Target {
    R,
    S,
    Key,
    Message,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::R),
        Just(Target::S),
        Just(Target::Key),
        Just(Target::Message),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every signature made by `SecretKey` verifies, on every path.
    #[test]
    fn every_secret_key_signature_verifies(
        seed in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let sk = SecretKey::from_seed(&seed);
        let pk = sk.public_key();
        let sig = sk.sign(&message);
        prop_assert_eq!(verify(&pk, &message, &sig), Ok(()));
        let one = [BatchItem::new(&pk, &message, &sig)];
        prop_assert_eq!(verify_batch(&one), Ok(()));
        prop_assert_eq!(verify_batch_all(&one), Ok(()));
    }

    /// A single bit flip in R, S, the key or the message is rejected, and
    /// decoding, single verification and batch verification (alone and mixed
    /// among valid signatures) agree on it.
    #[test]
    fn batch_and_single_agree_on_corrupted_signatures(
        seed in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 1..300),
        target in target(),
        bit in 0usize..256,
        position in 0usize..24,
    ) {
        let sk = SecretKey::from_seed(&seed);
        let mut key = *sk.public_key().ed25519_bytes().expect("ed25519");
        let mut sig = *sk.sign(&message).as_bytes();
        let mut message = message;
        match target {
            Target::R => sig[bit / 8] ^= 1 << (bit % 8),
            Target::S => sig[32 + bit / 8] ^= 1 << (bit % 8),
            Target::Key => key[bit / 8] ^= 1 << (bit % 8),
            Target::Message => {
                let len = message.len();
                message[(bit / 8) % len] ^= 1 << (bit % 8);
            }
        }
        let (Ok(key), Ok(sig)) = (
            PublicKey::ed25519_from_bytes(key),
            Signature::ed25519_from_bytes(sig),
        ) else {
            // Refused at decoding: neither path can be reached.
            return Ok(());
        };
        let single = verify(&key, &message, &sig);
        prop_assert_eq!(single.clone(), Err(SignatureError::Invalid));
        let one = [BatchItem::new(&key, &message, &sig)];
        prop_assert_eq!(verify_batch_all(&one), single.clone());
        prop_assert_eq!(
            verify_batch(&one).map_err(|e| e.invalid_indexes().to_vec()),
            single.clone().map_err(|_| vec![0])
        );

        let (keys, messages, sigs) = valid_batch(23);
        let mut items: Vec<BatchItem<'_>> = (0..23)
            .map(|i| BatchItem::new(&keys[i], &messages[i], &sigs[i]))
            .collect();
        items.insert(position, one[0]);
        prop_assert_eq!(verify_batch_all(&items), single.clone());
        prop_assert_eq!(
            verify_batch(&items).map_err(|e| e.invalid_indexes().to_vec()),
            single.map_err(|_| vec![position])
        );
    }
}
