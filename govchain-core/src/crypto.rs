//! Keys and signatures behind a small crypto-suite abstraction.
//!
//! Public keys and signatures are algorithm-tagged values: their canonical
//! encoding starts with a [`SignatureAlgorithm`] byte. Callers sign through the
//! [`Signer`] trait and verify with [`verify`] and [`verify_batch`], so a
//! national-standard SM2 suite is a new variant here, not a change at every
//! call site.

use std::fmt;

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// A signature algorithm. The byte value is the tag in the canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032 signing) verified under the ZIP-215 rules.
    Ed25519 = 1,
}

impl SignatureAlgorithm {
    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(SignatureAlgorithm::Ed25519),
            tag => Err(DecodeError::InvalidTag {
                what: "signature algorithm",
                tag,
            }),
        }
    }
}

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

/// A public verification key.
#[derive(Clone)]
pub struct PublicKey {
    bytes: [u8; 32],
    vk: ed25519_consensus::VerificationKey,
}

impl PublicKey {
    /// Length of the canonical encoding: tag plus key bytes.
    pub const ENCODED_LEN: usize = 33;

    /// Parses raw Ed25519 key bytes.
    pub fn ed25519_from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
        let vk = ed25519_consensus::VerificationKey::try_from(bytes).map_err(|_| {
            DecodeError::InvalidValue {
                what: "ed25519 public key",
                reason: "not a curve point",
            }
        })?;
        Ok(PublicKey { bytes, vk })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    /// The raw key bytes (without the algorithm tag).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(ed25519:{})", hex::encode(&self.bytes[..8]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.bytes))
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(SignatureAlgorithm::Ed25519 as u8);
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match SignatureAlgorithm::from_tag(r.u8()?)? {
            SignatureAlgorithm::Ed25519 => PublicKey::ed25519_from_bytes(r.array()?),
        }
    }
}

/// A signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    bytes: [u8; 64],
}

impl Signature {
    /// Length of the canonical encoding: tag plus signature bytes.
    pub const ENCODED_LEN: usize = 65;

    /// Wraps raw Ed25519 signature bytes (`R || S`).
    pub fn ed25519_from_bytes(bytes: [u8; 64]) -> Result<Self, DecodeError> {
        Ok(Signature { bytes })
    }

    /// The signature's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    /// The raw signature bytes (without the algorithm tag).
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(ed25519:{}…)", hex::encode(&self.bytes[..8]))
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(SignatureAlgorithm::Ed25519 as u8);
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match SignatureAlgorithm::from_tag(r.u8()?)? {
            SignatureAlgorithm::Ed25519 => Signature::ed25519_from_bytes(r.array()?),
        }
    }
}

/// Something that signs: an in-process secret key here, an HSM or another
/// process elsewhere.
pub trait Signer: Send + Sync {
    /// The key that verifies this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Signature;
}

/// An in-process secret signing key. It is zeroized on drop and never printed.
pub struct SecretKey {
    inner: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// Derives a key from a 32-byte seed. The caller should zeroize the seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let bytes = inner.verifying_key().to_bytes();
        let vk = ed25519_consensus::VerificationKey::try_from(bytes);
        // A key derived from a seed is `[s]B` for a clamped scalar `s`: always
        // a valid point, so the conversion cannot fail.
        let public = match vk {
            Ok(vk) => PublicKey { bytes, vk },
            Err(_) => unreachable_point(),
        };
        SecretKey { inner, public }
    }

    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        SecretKey::from_seed(&seed)
    }
}

#[allow(clippy::panic)]
#[cold]
fn unreachable_point() -> ! {
    // `[s]B` for a clamped scalar is a valid point; ed25519-dalek produced it.
    panic!("ed25519-dalek produced a public key that does not decode")
}

impl Signer for SecretKey {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature {
            bytes: self.inner.sign(message).to_bytes(),
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public: {:?}, secret: <redacted>)", self.public)
    }
}

/// Verifies one signature.
pub fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
    let sig = ed25519_consensus::Signature::from(signature.bytes);
    key.vk
        .verify(&sig, message)
        .map_err(|_| SignatureError::Invalid)
}
