//! The crypto suite of a chain and the signature algorithms it names.

use crate::codec::{Decode, DecodeError, Encode, Reader};

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
}

impl SignatureAlgorithm {
    /// The tag byte of this algorithm in canonical encodings.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The algorithm with tag `tag`.
    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(SignatureAlgorithm::Ed25519),
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
/// dispatch on the algorithm tag carried by every key and signature. Adding
/// the Chinese national-standard suite (SM2 signatures with SM3 hashing,
/// issue #8) therefore means:
/// - a new variant here (`Sm2Sm3 = 2`) and in [`SignatureAlgorithm`]
///   (`Sm2 = 2`);
/// - new internal representations inside `PublicKey`/`Signature` and a new
///   arm in the verification dispatch, with its own batch strategy;
/// - no change for callers of `verify`, `verify_batch` or `Signer`.
///
/// Both enums are `#[non_exhaustive]`, so downstream matches already carry a
/// wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// Ed25519 signatures (see [`SignatureAlgorithm::Ed25519`]) with BLAKE3
    /// hashing under per-object derived keys ([`crate::hash`]).
    #[default]
    Ed25519Blake3 = 1,
}

impl CryptoSuite {
    /// Every suite, in id order.
    pub const ALL: &'static [CryptoSuite] = &[CryptoSuite::Ed25519Blake3];

    /// The stable id byte of this suite (its canonical encoding).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The suite with id `id`.
    pub fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(CryptoSuite::Ed25519Blake3),
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
        }
    }

    /// A stable human-readable name, for configuration files and logs.
    pub const fn name(self) -> &'static str {
        match self {
            CryptoSuite::Ed25519Blake3 => "ed25519-blake3",
        }
    }
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
        assert!(decode_exact::<CryptoSuite>(&[0], 1).is_err());
        assert!(decode_exact::<CryptoSuite>(&[2], 1).is_err());
    }

    #[test]
    fn algorithm_tags_are_stable() {
        assert_eq!(SignatureAlgorithm::Ed25519.tag(), 1);
        assert_eq!(
            SignatureAlgorithm::from_tag(1),
            Ok(SignatureAlgorithm::Ed25519)
        );
        assert!(SignatureAlgorithm::from_tag(0).is_err());
    }
}
