//! Keys and signatures behind a small crypto-suite abstraction.
//!
//! Public keys and signatures are algorithm-tagged values: their canonical
//! encoding starts with a [`SignatureAlgorithm`] byte, followed by the
//! algorithm's fixed-length raw bytes. Callers sign through the [`Signer`]
//! trait and verify with [`verify`] and [`verify_batch`], which dispatch on
//! the tag, so the two suites ([`CryptoSuite::Ed25519Blake3`], the default,
//! and the national-standard [`CryptoSuite::Sm2Sm3`]) share every call site.
//!
//! | algorithm | tag | key (raw / encoded) | signature (raw / encoded) |
//! |---|---|---|---|
//! | [`SignatureAlgorithm::Ed25519`] | 1 | 32 / 33 bytes | `R ‖ S`, 64 / 65 bytes |
//! | [`SignatureAlgorithm::Sm2`] | 2 | compressed SEC1 point, 33 / 34 bytes | `r ‖ s`, 64 / 65 bytes |
//!
//! A key never accepts a signature of another algorithm: [`verify`] returns
//! [`SignatureError::AlgorithmMismatch`] and every batch entry point reports
//! the item as invalid (cross-suite confusion is refused before any
//! arithmetic).
//!
//! # SM2
//! SM2 (GM/T 0003-2012, GB/T 32918-2016) on the recommended curve
//! `sm2p256v1`, verified with the RustCrypto `sm2` crate:
//! - **Keys** are compressed SEC1 points. Decompression is part of parsing,
//!   so [`PublicKey::sm2_from_bytes`] (and decoding) refuses a first byte
//!   other than `02`/`03`, `x ≥ p`, and an `x` with no curve point; the point
//!   at infinity has no compressed encoding. The parsed key is cached.
//! - **Signatures** are `r ‖ s` (32 bytes each, big-endian) with
//!   `0 < r, s < n`, checked by [`Signature::sm2_from_bytes`]; `r` and `s`
//!   have no second encoding. (`(r, s)` and `(r, n − s)` are *not* both
//!   valid in SM2, unlike ECDSA's `s`/`−s`: `s` enters the verification as
//!   `[s]G + [r + s]P`.)
//! - **Signer identity.** The message digest is `e = SM3(Z_A ‖ M)` where
//!   `Z_A` hashes the default distinguishing identifier
//!   [`SM2_DEFAULT_DISTID`] (`"1234567812345678"`, GM/T 0009-2012), the curve
//!   and the key. Every govchain SM2 signature uses it.
//! - **Signing** is deterministic: the nonce comes from RFC 6979 with
//!   HMAC-SM3, as in the `sm2` crate (byte-identical signatures).
//! - **Batches.** SM2 has no batch equation: verification recomputes
//!   `x₁` of `[s]G + [r + s]P` and compares `(e + x₁) mod n` with `r`, and
//!   the signature carries only the x-coordinate information `r`, not the
//!   point `R` (its y is lost), so signatures cannot be summed into one
//!   multi-scalar equation the way Ed25519's `R` can. SM2 items in a batch are
//!   therefore verified one by one with [`verify`], in parallel on the rayon
//!   pool (or in sequence for [`verify_batch_sequential`]), within the same
//!   chunks; their verdicts are by construction those of [`verify`].
//!
//! # Validity rules (consensus-critical)
//!
//! Whether a signature is valid decides whether a block is valid, so every
//! node must reach the same answer, whether it checks one signature at a time
//! ([`verify`]) or many at once ([`verify_batch`]). govchain's Ed25519 rules
//! are **ZIP-215** (the rules of `ed25519-consensus`, which the tests use as
//! a differential reference) plus **strictness checks done when bytes become
//! a [`PublicKey`] or [`Signature`]**:
//!
//! | Check | Where | Why |
//! |---|---|---|
//! | `A` is a canonical encoding (`y < p`, no sign bit on `x = 0`) | [`PublicKey::ed25519_from_bytes`] | one key, one byte string: keys are map keys and hashed into state |
//! | `A` is not one of the 8 small-order points | [`PublicKey::ed25519_from_bytes`] | a small-order key has no secret; `S = 0` with a small-order `R` "verifies" on every message |
//! | `A` decompresses to a curve point | both paths (single: first use, cached; [`PublicKey::is_on_curve`] for registries) | an off-curve key verifies nothing; checking lazily keeps decoding free of square roots |
//! | `S < ℓ` (canonical scalar) | [`Signature::ed25519_from_bytes`] | removes the `S + ℓ` malleability (also required by ZIP-215 and RFC 8032) |
//! | `R` is a canonical encoding | [`Signature::ed25519_from_bytes`] | no second byte form of a signature; honest signers never emit one |
//! | `R` is not one of the 8 small-order points | [`Signature::ed25519_from_bytes`] | such an `R` is independent of the nonce; honest signers never emit one |
//! | `[8]([S]B − R − [k]A) = 0`, `k = SHA-512(R ‖ A ‖ M)` | [`verify`] and [`verify_batch`] | the *cofactored* equation, in both paths |
//!
//! The byte-level checks run before either path sees the values, so they
//! cannot make the two paths disagree. Both paths then use the cofactored
//! equation, so keys and `R` values with a torsion component ("mixed order",
//! which ZIP-215 accepts and which only a full scalar multiplication could
//! detect) are accepted or rejected identically by single and batch
//! verification. [`PublicKey::is_torsion_free`] lets a registry refuse such
//! keys at registration time where interoperability with cofactorless
//! verifiers matters.
//!
//! In the terms of Chalkias, Garillot and Nikolaenko, "Taming the many
//! EdDSAs" (SSR 2020, §5.1 and Table 6), govchain accepts vectors 3, 4 and 5
//! and rejects the other nine; `tests/ed25519_vectors.rs` checks all twelve
//! on both paths.
//!
//! # One equation, two ways to evaluate it
//! Both paths evaluate the same cofactored ZIP-215 equation with
//! `curve25519-dalek` 4 (its AVX2 backend is chosen at run time on x86-64),
//! on the same decoded values: the key point `A` (decompressed once per
//! [`PublicKey`] and cached, shared by both paths), `R` (decompressed per
//! verification), `S < ℓ`, and `k = SHA-512(R ‖ A ‖ M) mod ℓ` over the bytes
//! as sent.
//! - [`verify`] computes `R' = [S]B − [k]A` with a variable-time double-base
//!   scalar multiplication and checks `[8](R' − R) = 0`.
//! - A batch checks `[8](−(Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0` with one
//!   multi-scalar multiplication (Straus below 190 points, Pippenger
//!   above), the terms of one key merged into one (`Σ zᵢkᵢ` over that
//!   key's signatures), so repeated senders cost one point each.
//!
//! Write `Pᵢ = Rᵢ + [kᵢ]Aᵢ − [Sᵢ]B`. Single verification accepts item `i`
//! exactly when `[8]Pᵢ = 0`; the batch equation is `Σ zᵢ[8]Pᵢ = 0`.
//! - *Every item valid ⇒ the batch holds*, for every choice of `zᵢ`.
//! - *Some item invalid ⇒ the batch fails except with probability
//!   `≤ 2^-128`*: the curve group has order `8ℓ`, so each `[8]Pᵢ` lies in the
//!   subgroup of prime order `ℓ`; if `[8]Pⱼ ≠ 0` it generates that subgroup,
//!   and whatever the other terms, exactly one residue of `zⱼ` modulo `ℓ`
//!   cancels them. A 128-bit `zⱼ` drawn uniformly and independently of the
//!   items hits it with probability `≤ 2^-128` (the small-exponents test of
//!   Bellare, Garay and Rabin, 1998).
//! - *Anything that fails to decode* (a key or `R` that is not a curve point,
//!   an algorithm mismatch, and at decode time everything in the table above)
//!   fails on both paths before any equation is evaluated.
//!
//! # Batch verification
//! The items are cut into chunks of at most [`BATCH_CHUNK_LEN`] (at least
//! [`BATCH_PARALLEL_CHUNKS`] chunks once there are enough items; the cut
//! depends only on the number of items, never on the machine). Each chunk is
//! checked with one batch equation, chunks in parallel on the rayon pool. A
//! chunk whose equation fails is checked again signature by signature with
//! [`verify`], which names the bad ones, so the indexes reported are by
//! construction exactly those [`verify`] rejects; a chunk of one item is
//! checked with [`verify`] directly. The only way the two paths can
//! disagree is the false accept above: a chunk containing an invalid
//! signature whose equation holds anyway, probability `≤ 2^-128` per chunk.
//!
//! Only Ed25519 items (key and signature) enter a chunk's equation. SM2
//! items, and items whose key and signature algorithms differ, are checked
//! one by one with [`verify`] within their chunk (in parallel, except in
//! [`verify_batch_sequential`]), so mixed batches work and their verdicts
//! are exactly [`verify`]'s; a chunk with no SM2 item evaluates the same
//! equation, bit for bit, as before SM2 existed.
//!
//! ## Deterministic coefficients (why no OS randomness is needed)
//! Soundness needs only that the `zᵢ` are unpredictable *to whoever chose
//! the signatures, before they chose them*. govchain derives them
//! Fiat–Shamir style: a ChaCha20 stream seeded with
//! `Hash::of_parts(Domain::BatchSeed, …)` over the chunk's item count and
//! every item's algorithm tags, key, signature, message length and message,
//! read 16 bytes per item in item order. Changing any input changes every
//! coefficient, so an adversary must commit to the whole chunk before
//! learning its `zᵢ`; modelling BLAKE3 as a random oracle, each attempt
//! succeeds with probability at most `2^-128`, and `q` offline hash
//! evaluations buy at most `q·2^-128`. In exchange, verification reads no OS
//! randomness: validators never depend on an entropy source, every node
//! evaluates bit-for-bit the same equation for the same chunk, and a
//! simulator run replays exactly.
//!
//! ```
//! use govchain_core::crypto::{verify, verify_batch, BatchItem, SecretKey, Signer};
//! let alice = SecretKey::from_seed(&[1; 32]);
//! let bob = SecretKey::from_seed(&[2; 32]);
//! let (a, b) = (alice.public_key(), bob.public_key());
//! let sa = alice.sign(b"pay bob 5");
//! let sb = bob.sign(b"pay alice 3");
//! verify(&a, b"pay bob 5", &sa)?;
//! let items = [
//!     BatchItem { key: &a, message: b"pay bob 5", signature: &sa },
//!     BatchItem { key: &b, message: b"pay alice 3", signature: &sb },
//!     BatchItem { key: &b, message: b"pay alice 300", signature: &sb },
//! ];
//! let err = verify_batch(&items).unwrap_err();
//! assert_eq!(err.invalid_indexes(), &[2]);
//! # Ok::<(), govchain_core::crypto::SignatureError>(())
//! ```

mod batch;
mod ed25519;
mod equation;
mod keys;
mod sm2;
mod suite;

pub use batch::{
    verify_batch, verify_batch_all, verify_batch_by_key, verify_batch_sequential, BatchItem,
    BatchVerifyError, BATCH_CHUNK_LEN, BATCH_MIN_CHUNK_LEN, BATCH_PARALLEL_CHUNKS,
};
pub use keys::{PublicKey, SecretKey, Signature, Signer};
pub use sm2::SM2_DEFAULT_DISTID;
pub use suite::{CryptoSuite, SignatureAlgorithm, SuiteMismatch, UnknownSuite};

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify for this key and message.
    #[error("invalid signature")]
    Invalid,
    /// The key and the signature belong to different algorithms.
    #[error("algorithm mismatch: key is {key:?}, signature is {signature:?}")]
    AlgorithmMismatch {
        /// The key's algorithm.
        key: SignatureAlgorithm,
        /// The signature's algorithm.
        signature: SignatureAlgorithm,
    },
}

/// Verifies one signature under govchain's rules (see the [module
/// docs](self)).
///
/// Accepts exactly the signatures that [`verify_batch`] accepts. Deterministic
/// and free of randomness.
pub fn verify(
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    if key.algorithm() != signature.algorithm() {
        return Err(SignatureError::AlgorithmMismatch {
            key: key.algorithm(),
            signature: signature.algorithm(),
        });
    }
    let valid = match signature.algorithm() {
        SignatureAlgorithm::Ed25519 => match (key.decompressed(), key.ed25519_bytes()) {
            (Some(a), Some(a_bytes)) => {
                equation::verify_one(a, a_bytes, signature.as_bytes(), message)
            }
            _ => false,
        },
        SignatureAlgorithm::Sm2 => key
            .sm2()
            .is_some_and(|k| k.verify(message, signature.as_bytes())),
    };
    if valid {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}
