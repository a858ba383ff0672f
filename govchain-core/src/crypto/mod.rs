//! Keys and signatures behind a small crypto-suite abstraction.
//!
//! Public keys and signatures are algorithm-tagged values: their canonical
//! encoding starts with a [`SignatureAlgorithm`] byte. Callers sign through the
//! [`Signer`] trait and verify with [`verify`] and [`verify_batch`], so a
//! national-standard SM2/SM3 suite is a new [`CryptoSuite`] and
//! [`SignatureAlgorithm`] variant here, not a change at every call site.
//!
//! # Validity rules (consensus-critical)
//!
//! Whether a signature is valid decides whether a block is valid, so every
//! node must reach the same answer, whether it checks one signature at a time
//! ([`verify`]) or many at once ([`verify_batch`]). govchain's Ed25519 rules
//! are **ZIP-215** (the rules of `ed25519-consensus`) plus **strictness
//! checks done when bytes become a [`PublicKey`] or [`Signature`]**:
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
//! # Batch verification
//! The items are cut into chunks of about [`BATCH_CHUNK_LEN`] (the cut
//! depends only on the number of items, never on the machine). Each chunk is
//! checked with one ZIP-215 batch equation (`ed25519_consensus::batch`),
//! chunks in parallel on the rayon pool. A chunk whose equation fails is
//! checked again signature by signature with [`verify`], which names the bad
//! ones. Because both the batch equation and [`verify`] use the cofactored
//! equation, and all strictness checks happen when keys and signatures are
//! decoded, a chunk's equation holds exactly when every signature in it
//! passes [`verify`] (up to the `2^-128` soundness error below).
//!
//! ## Deterministic coefficients (why no OS randomness is needed)
//! Batch verification checks `[8](Σ zᵢ([sᵢ]B − Rᵢ − [kᵢ]Aᵢ)) = 0` for
//! random 128-bit `zᵢ`. Completeness does not depend on the `zᵢ`: if every
//! signature is valid each term is already killed by `[8]`. Soundness needs
//! only that the `zᵢ` are unpredictable *to whoever chose the signatures,
//! before they chose them*: if some term `Qᵢ` is non-zero after `[8]` (it then
//! has order `ℓ`), then whatever the other coefficients, at most one value of
//! `zᵢ` modulo `ℓ` makes the sum vanish, so the false-accept probability is
//! at most `2^-128` (the small-exponents test of Bellare, Garay and Rabin,
//! 1998).
//!
//! govchain derives the coefficients Fiat–Shamir style: a ChaCha20 stream
//! seeded with `Hash::of_parts(Domain::BatchSeed, …)` over the chunk's item
//! count and every item's algorithm tags, key, signature, message length and
//! message. Changing any input changes every coefficient, so an adversary
//! must commit to the whole chunk before learning its `zᵢ`; modelling BLAKE3
//! as a random oracle, each attempt succeeds with probability at most
//! `2^-128`, and `q` offline hash evaluations buy at most `q·2^-128`. In
//! exchange, verification reads no OS randomness: validators never depend on
//! an entropy source, and a simulator run replays exactly (up to the caveat
//! below).
//!
//! One caveat: `ed25519-consensus` hands out the coefficient stream in the
//! iteration order of its internal `HashMap` (keyed by verification key,
//! randomly seeded per process), so which `zᵢ` meets which signature can
//! differ between processes. Each `zᵢ` is still a uniform draw the adversary
//! had to commit before seeing, so the bound above holds on every node; the
//! outcome differs between nodes only inside that `2^-128` event, and never
//! for a chunk of valid signatures.
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
mod keys;
mod suite;

pub use batch::{
    verify_batch, verify_batch_all, verify_batch_by_key, verify_batch_sequential, BatchItem,
    BatchVerifyError, BATCH_CHUNK_LEN,
};
pub use keys::{PublicKey, SecretKey, Signature, Signer};
pub use suite::{CryptoSuite, SignatureAlgorithm};

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
    let sig = ed25519_consensus::Signature::from(*signature.as_bytes());
    key.consensus_key()?
        .verify(&sig, message)
        .map_err(|_| SignatureError::Invalid)
}
