//! The crypto suite of a chain and the signature algorithms it names.

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Domain, Hash, HashFunction};

use super::PublicKey;

/// A signature algorithm. The byte value is the tag in the canonical encoding
/// of [`PublicKey`](super::PublicKey) and [`Signature`](super::Signature).
///
/// Tags are stable: a tag, once assigned, is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// Ed25519: RFC 8032 signing, verified under ZIP-215 plus govchain's
    /// strictness checks (see the [module docs](super)).
    Ed25519 = 1,
    /// SM2 (GM/T 0003-2012, GB/T 32918-2016) on the recommended 256-bit
    /// curve `sm2p256v1`, with SM3 message hashing, the signer identity
    /// `Z_A` over the default distinguishing identifier
    /// [`SM2_DEFAULT_DISTID`](super::SM2_DEFAULT_DISTID) (GM/T 0009), and
    /// RFC 6979 deterministic nonces (see the [module docs](super#sm2)).
    Sm2 = 2,
}

impl SignatureAlgorithm {
    /// Every algorithm, in tag order.
    pub const ALL: &'static [SignatureAlgorithm] =
        &[SignatureAlgorithm::Ed25519, SignatureAlgorithm::Sm2];

    /// Length of a raw public key of this algorithm (without the tag): 32
    /// for Ed25519, 33 for SM2 (a compressed SEC1 point).
    pub const fn public_key_len(self) -> usize {
        match self {
            SignatureAlgorithm::Ed25519 => 32,
            SignatureAlgorithm::Sm2 => 33,
        }
    }

    /// Length of a raw signature of this algorithm (without the tag): 64 for
    /// both (`R ‖ S` for Ed25519, `r ‖ s` for SM2).
    pub const fn signature_len(self) -> usize {
        match self {
            SignatureAlgorithm::Ed25519 | SignatureAlgorithm::Sm2 => 64,
        }
    }

    /// A stable human-readable name (the prefix of a key's `Display`).
    pub const fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ed25519 => "ed25519",
            SignatureAlgorithm::Sm2 => "sm2",
        }
    }

    /// The tag byte of this algorithm in canonical encodings.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The algorithm with tag `tag`.
    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(SignatureAlgorithm::Ed25519),
            2 => Ok(SignatureAlgorithm::Sm2),
            tag => Err(DecodeError::InvalidTag {
                what: "signature algorithm",
                tag,
            }),
        }
    }
}

/// A crypto suite: the signature algorithm and hash function a chain uses,
/// fixed at genesis and identified by one stable byte.
///
/// Code that signs and verifies goes through [`Signer`](super::Signer),
/// [`verify`](super::verify) and [`verify_batch`](super::verify_batch), which
/// dispatch on the algorithm tag carried by every key and signature; code
/// that hashes for a chain goes through [`CryptoSuite::hash`],
/// [`CryptoSuite::hash_parts`] and [`CryptoSuite::hash_node`] (or the
/// [`HashFunction`] of [`CryptoSuite::hash_function`]).
///
/// | suite | id | name | signatures | hash |
/// |---|---|---|---|---|
/// | [`CryptoSuite::Ed25519Blake3`] (default) | 1 | `ed25519-blake3` | [`SignatureAlgorithm::Ed25519`] | [`HashFunction::Blake3`] |
/// | [`CryptoSuite::Sm2Sm3`] | 2 | `sm2-sm3` | [`SignatureAlgorithm::Sm2`] | [`HashFunction::Sm3`] |
///
/// Verification itself never looks at the suite: a key and a signature
/// carry their algorithm, and a key of one algorithm never accepts a
/// signature of the other ([`SignatureError::AlgorithmMismatch`](super::SignatureError::AlgorithmMismatch)).
/// A chain that fixes its suite at genesis must also refuse keys of other
/// algorithms where it admits them (validators, senders), with
/// [`CryptoSuite::admits`].
///
/// Ids and names are stable. Both enums are `#[non_exhaustive]`, so
/// downstream matches carry a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// Ed25519 signatures (see [`SignatureAlgorithm::Ed25519`]) with BLAKE3
    /// hashing under per-object derived keys ([`crate::hash`]).
    #[default]
    Ed25519Blake3 = 1,
    /// The Chinese national-standard suite: SM2 signatures (see
    /// [`SignatureAlgorithm::Sm2`]) with SM3 hashing under per-object
    /// prefixes ([`HashFunction::Sm3`]).
    Sm2Sm3 = 2,
}

impl CryptoSuite {
    /// Every suite, in id order.
    pub const ALL: &'static [CryptoSuite] = &[CryptoSuite::Ed25519Blake3, CryptoSuite::Sm2Sm3];

    /// The stable id byte of this suite (its canonical encoding).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The suite with id `id`.
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(CryptoSuite::Ed25519Blake3),
            2 => Ok(CryptoSuite::Sm2Sm3),
            tag => Err(DecodeError::InvalidTag {
                what: "crypto suite",
                tag,
            }),
        }
    }

    /// The signature algorithm of this suite.
    pub const fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            CryptoSuite::Ed25519Blake3 => SignatureAlgorithm::Ed25519,
            CryptoSuite::Sm2Sm3 => SignatureAlgorithm::Sm2,
        }
    }

    /// The hash function of this suite.
    pub const fn hash_function(self) -> HashFunction {
        match self {
            CryptoSuite::Ed25519Blake3 => HashFunction::Blake3,
            CryptoSuite::Sm2Sm3 => HashFunction::Sm3,
        }
    }

    /// The suite with this name (`"ed25519-blake3"`, `"sm2-sm3"`).
    pub fn from_name(name: &str) -> Option<Self> {
        CryptoSuite::ALL.iter().copied().find(|s| s.name() == name)
    }

    /// Whether keys of `algorithm` belong to this suite.
    pub fn admits(self, algorithm: SignatureAlgorithm) -> bool {
        self.signature_algorithm() == algorithm
    }

    /// The one suite whose signature algorithm is `algorithm`.
    ///
    /// Every algorithm belongs to exactly one suite (Ed25519 to
    /// ed25519-blake3, SM2 to sm2-sm3), so an object that carries its
    /// signer's key (a transaction, a validator set, a vote) implies its
    /// suite without naming it; a chain still refuses keys its own suite
    /// does not admit ([`CryptoSuite::check_key`]).
    pub const fn for_algorithm(algorithm: SignatureAlgorithm) -> CryptoSuite {
        match algorithm {
            SignatureAlgorithm::Ed25519 => CryptoSuite::Ed25519Blake3,
            SignatureAlgorithm::Sm2 => CryptoSuite::Sm2Sm3,
        }
    }

    /// The suite of `key`'s algorithm ([`CryptoSuite::for_algorithm`]).
    pub fn of_key(key: &PublicKey) -> CryptoSuite {
        CryptoSuite::for_algorithm(key.algorithm())
    }

    /// Refuses `key` unless this suite admits its algorithm: what a chain
    /// does wherever it admits a key (validators, senders, departments,
    /// issuers).
    pub fn check_key(self, key: &PublicKey) -> Result<(), SuiteMismatch> {
        if self.admits(key.algorithm()) {
            Ok(())
        } else {
            Err(SuiteMismatch {
                suite: self,
                algorithm: key.algorithm(),
            })
        }
    }

    /// Hashes `data` under `domain` with this suite's hash function.
    pub fn hash(self, domain: Domain, data: &[u8]) -> Hash {
        self.hash_function().hash(domain, data)
    }

    /// Hashes the concatenation of `parts` under `domain` with this suite's
    /// hash function.
    pub fn hash_parts(self, domain: Domain, parts: &[&[u8]]) -> Hash {
        self.hash_function().hash_parts(domain, parts)
    }

    /// Hashes the Merkle node `left || right` under `domain` with this
    /// suite's hash function.
    pub fn hash_node(self, domain: Domain, left: &Hash, right: &Hash) -> Hash {
        self.hash_function().hash_node(domain, left, right)
    }

    /// A stable human-readable name, for configuration files and logs.
    pub const fn name(self) -> &'static str {
        match self {
            CryptoSuite::Ed25519Blake3 => "ed25519-blake3",
            CryptoSuite::Sm2Sm3 => "sm2-sm3",
        }
    }
}

impl From<CryptoSuite> for HashFunction {
    fn from(suite: CryptoSuite) -> Self {
        suite.hash_function()
    }
}

impl std::fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CryptoSuite {
    type Err = UnknownSuite;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CryptoSuite::from_name(s).ok_or_else(|| UnknownSuite { name: s.to_owned() })
    }
}

/// A name that is not the name of a [`CryptoSuite`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown crypto suite {name:?} (known: ed25519-blake3, sm2-sm3)")]
pub struct UnknownSuite {
    /// The name given.
    pub name: String,
}

/// A key of an algorithm that a chain's suite does not admit: an Ed25519
/// key on an sm2-sm3 chain, or an SM2 key on an ed25519-blake3 chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {} key is not admitted by crypto suite {suite}", algorithm.name())]
pub struct SuiteMismatch {
    /// The chain's suite.
    pub suite: CryptoSuite,
    /// The key's algorithm.
    pub algorithm: SignatureAlgorithm,
}

impl Encode for CryptoSuite {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.id());
    }
}

impl Decode for CryptoSuite {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        CryptoSuite::from_id(r.u8()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;

    #[test]
    fn suite_ids_round_trip_and_are_stable() {
        for suite in CryptoSuite::ALL {
            let bytes = suite.to_bytes();
            assert_eq!(bytes, vec![suite.id()]);
            assert_eq!(decode_exact::<CryptoSuite>(&bytes, 1), Ok(*suite));
        }
        assert_eq!(CryptoSuite::Ed25519Blake3.id(), 1);
        assert_eq!(CryptoSuite::default(), CryptoSuite::Ed25519Blake3);
        assert_eq!(
            CryptoSuite::Ed25519Blake3.signature_algorithm(),
            SignatureAlgorithm::Ed25519
        );
        assert_eq!(CryptoSuite::Sm2Sm3.id(), 2);
        assert_eq!(CryptoSuite::Sm2Sm3.name(), "sm2-sm3");
        assert_eq!(
            CryptoSuite::Sm2Sm3.signature_algorithm(),
            SignatureAlgorithm::Sm2
        );
        assert_eq!(CryptoSuite::Sm2Sm3.hash_function(), HashFunction::Sm3);
        assert_eq!(
            CryptoSuite::Ed25519Blake3.hash_function(),
            HashFunction::Blake3
        );
        for suite in CryptoSuite::ALL {
            assert_eq!(CryptoSuite::from_name(suite.name()), Some(*suite));
            assert!(suite.admits(suite.signature_algorithm()));
        }
        assert!(!CryptoSuite::Sm2Sm3.admits(SignatureAlgorithm::Ed25519));
        assert_eq!(CryptoSuite::from_name("sm2"), None);
        assert!(decode_exact::<CryptoSuite>(&[0], 1).is_err());
        assert!(decode_exact::<CryptoSuite>(&[3], 1).is_err());
        for a in SignatureAlgorithm::ALL {
            assert!(CryptoSuite::for_algorithm(*a).admits(*a));
        }
        for suite in CryptoSuite::ALL {
            assert_eq!(suite.to_string().parse::<CryptoSuite>(), Ok(*suite));
        }
        assert!("sm".parse::<CryptoSuite>().is_err());
    }

    #[test]
    fn suites_hash_with_their_function() {
        let (l, r) = (Hash::from_bytes([1; 32]), Hash::from_bytes([2; 32]));
        for suite in CryptoSuite::ALL {
            let f = suite.hash_function();
            assert_eq!(suite.hash(Domain::Test, b"x"), f.hash(Domain::Test, b"x"));
            assert_eq!(
                suite.hash_parts(Domain::Test, &[b"x", b"y"]),
                f.hash(Domain::Test, b"xy")
            );
            assert_eq!(
                suite.hash_node(Domain::TxNode, &l, &r),
                f.hash_node(Domain::TxNode, &l, &r)
            );
        }
        assert_eq!(
            CryptoSuite::Ed25519Blake3.hash(Domain::Test, b"x"),
            Hash::of(Domain::Test, b"x")
        );
    }

    #[test]
    fn algorithm_tags_are_stable() {
        assert_eq!(SignatureAlgorithm::Ed25519.tag(), 1);
        assert_eq!(SignatureAlgorithm::Sm2.tag(), 2);
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_tag(a.tag()), Ok(*a));
        }
        assert_eq!(SignatureAlgorithm::Ed25519.public_key_len(), 32);
        assert_eq!(SignatureAlgorithm::Sm2.public_key_len(), 33);
        assert!(SignatureAlgorithm::from_tag(0).is_err());
        assert!(SignatureAlgorithm::from_tag(3).is_err());
    }
}
