//! Weighted validator sets.
//!
//! A [`ValidatorSet`] lists validators by public key with their voting power,
//! in one deterministic order (ascending public-key bytes), and has a hash
//! that block headers commit to. Quorum means **more than two thirds of the
//! total voting power**, as in Tendermint (arXiv:1807.04938 §II, `2f + 1` of
//! `n = 3f + 1` generalised to weights).

use crate::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use crate::crypto::PublicKey;
use crate::hash::{Domain, Hash};

/// Most validators a set may hold.
pub const MAX_VALIDATORS: usize = 1024;

/// Largest total voting power. Keeping it far below `u64::MAX` means that
/// `3 * power` never overflows in quorum arithmetic.
pub const MAX_TOTAL_POWER: u64 = u64::MAX / 8;

/// One validator: its consensus key and voting power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// The key that signs this validator's votes.
    pub public_key: PublicKey,
    /// Voting power, at least 1.
    pub power: u64,
}

impl Encode for Validator {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.public_key.encode_to(out);
        self.power.encode_to(out);
    }
}

impl Decode for Validator {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Validator {
            public_key: PublicKey::decode_from(r)?,
            power: u64::decode_from(r)?,
        })
    }
}

/// Why a list of validators is not a valid set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidatorSetError {
    /// No validators.
    #[error("a validator set must not be empty")]
    Empty,
    /// More than [`MAX_VALIDATORS`].
    #[error("{count} validators exceed the maximum of {MAX_VALIDATORS}")]
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// A validator with zero power.
    #[error("validator {key} has zero voting power")]
    ZeroPower {
        /// The validator's key.
        key: PublicKey,
    },
    /// The same key twice.
    #[error("validator {key} appears twice")]
    DuplicateKey {
        /// The repeated key.
        key: PublicKey,
    },
    /// A key that is not a curve point: it could never sign, so admitting it
    /// would only lower the power that can reach a quorum.
    #[error("validator key {key} is not a curve point")]
    KeyNotOnCurve {
        /// The unusable key.
        key: PublicKey,
    },
    /// Total power above [`MAX_TOTAL_POWER`].
    #[error("total voting power exceeds {MAX_TOTAL_POWER}")]
    PowerOverflow,
}

/// A validator set in canonical order, with its total power and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    hash: Hash,
}

impl ValidatorSet {
    /// Builds a set, sorting by public key and checking every rule.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        validators.sort_by(|a, b| a.public_key.cmp(&b.public_key));
        Self::from_sorted(validators)
    }

    fn from_sorted(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
            });
        }
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    key: v.public_key.clone(),
                });
            }
            if !v.public_key.is_on_curve() {
                return Err(ValidatorSetError::KeyNotOnCurve {
                    key: v.public_key.clone(),
                });
            }
            if i > 0 && validators[i - 1].public_key == v.public_key {
                return Err(ValidatorSetError::DuplicateKey {
                    key: v.public_key.clone(),
                });
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        let mut bytes = Vec::with_capacity(4 + validators.len() * 41);
        encode_seq(&validators, &mut bytes);
        let hash = Hash::of(Domain::ValidatorSet, &bytes);
        Ok(ValidatorSet {
            validators,
            total_power: total,
            hash,
        })
    }

    /// Decodes a set from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, 4 + MAX_VALIDATORS * (PublicKey::MAX_ENCODED_LEN + 8))
    }

    /// The validators in canonical order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a set is never empty.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// The set's hash, committed to by block headers.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// Position and entry of `key`, if it is a member.
    pub fn find(&self, key: &PublicKey) -> Option<(usize, &Validator)> {
        self.validators
            .binary_search_by(|v| v.public_key.cmp(key))
            .ok()
            .map(|i| (i, &self.validators[i]))
    }

    /// Whether `power` is more than two thirds of the total.
    pub fn is_quorum(&self, power: u64) -> bool {
        // Both sides fit: power <= total <= MAX_TOTAL_POWER = u64::MAX / 8.
        power.saturating_mul(3) > self.total_power.saturating_mul(2)
    }

    /// The smallest power that is a quorum.
    pub fn quorum_power(&self) -> u64 {
        self.total_power * 2 / 3 + 1
    }
}

impl Encode for ValidatorSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_seq(&self.validators, out);
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let validators: Vec<Validator> = r.seq("validator set", MAX_VALIDATORS)?;
        // Canonical form: strictly ascending keys. Anything else would give a
        // second encoding of the same set.
        if validators
            .windows(2)
            .any(|w| w[0].public_key >= w[1].public_key)
        {
            return Err(DecodeError::InvalidValue {
                what: "validator set",
                reason: "validators must be in strictly ascending key order",
            });
        }
        ValidatorSet::from_sorted(validators).map_err(|_| DecodeError::InvalidValue {
            what: "validator set",
            reason: "empty, zero power, off-curve key or total power overflow",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{SecretKey, Signer};

    fn v(seed: u8, power: u64) -> Validator {
        Validator {
            public_key: SecretKey::from_seed(&[seed; 32]).public_key(),
            power,
        }
    }

    #[test]
    fn order_is_canonical_and_hash_stable() {
        let a = ValidatorSet::new(vec![v(1, 1), v(2, 2), v(3, 3)]).unwrap();
        let b = ValidatorSet::new(vec![v(3, 3), v(1, 1), v(2, 2)]).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.total_power(), 6);
        let back = ValidatorSet::decode(&a.to_bytes()).unwrap();
        assert_eq!(back, a);
        let c = ValidatorSet::new(vec![v(1, 1), v(2, 2), v(3, 4)]).unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn quorum_is_strictly_more_than_two_thirds() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1), v(3, 1), v(4, 1)]).unwrap();
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        assert_eq!(set.quorum_power(), 3);
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1), v(3, 1)]).unwrap();
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        let set = ValidatorSet::new(vec![v(1, 10), v(2, 5)]).unwrap();
        assert!(!set.is_quorum(10));
        assert!(set.is_quorum(11));
        assert_eq!(set.quorum_power(), 11);
    }

    #[test]
    fn invalid_sets_rejected() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 0)]),
            Err(ValidatorSetError::ZeroPower { .. })
        ));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 1), v(1, 2)]),
            Err(ValidatorSetError::DuplicateKey { .. })
        ));
        assert_eq!(
            ValidatorSet::new(vec![v(1, MAX_TOTAL_POWER), v(2, 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
        let mut y_is_2 = [0u8; 32];
        y_is_2[0] = 2;
        let off_curve = PublicKey::ed25519_from_bytes(y_is_2).unwrap();
        assert!(matches!(
            ValidatorSet::new(vec![Validator {
                public_key: off_curve,
                power: 1
            }]),
            Err(ValidatorSetError::KeyNotOnCurve { .. })
        ));
        // Unsorted encodings are not canonical.
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1)]).unwrap();
        let mut bytes = Vec::new();
        let mut rev = set.validators().to_vec();
        rev.reverse();
        encode_seq(&rev, &mut bytes);
        assert!(matches!(
            ValidatorSet::decode(&bytes),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
}
