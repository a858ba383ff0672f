//! Weighted validator sets, and the validity windows of their keys.
//!
//! A [`ValidatorSet`] lists validators by public key with their voting power,
//! in one deterministic order (ascending public-key bytes), and has a hash
//! that block headers commit to. Quorum means **more than two thirds of the
//! total voting power**, as in Tendermint (arXiv:1807.04938 §II, `2f + 1` of
//! `n = 3f + 1` generalised to weights).
//!
//! # Key windows: expiry and compromise
//! A member's key may carry a [`KeyWindow`]: an expiry height (the key signs
//! only heights below it) and a compromise height (its signatures at that
//! height and above are refused). Windows are part of the set's encoding
//! and hash, so every verifier that follows the chain's validator sets — the
//! engines, [`CommitCertificate::verify`](crate::cert::CommitCertificate::verify)
//! and the [light client](crate::light) — refuses the same signatures.
//!
//! A key outside its window **still counts in the total power**: quorum
//! stays more than two thirds of the whole set, and the key's signatures
//! simply no longer count towards it. So an expiring key never weakens the
//! quorum intersection that safety rests on (a compromised or expired key
//! can be in neither of two conflicting quorums), and the chain goes on as
//! long as the keys still in their windows hold more than two thirds of the
//! power ([`ValidatorSet::valid_power_at`]).
//!
//! # Rotation: a key and its successor overlap
//! [`ValidatorSet::with_rotation`] replaces a member's key by a new one with
//! the same power, and keeps the old key as a **rotated-out key** of that
//! member until a stated height: during the overlap either key signs *for
//! the same member*. [`ValidatorSet::may_sign`] maps both to the member's
//! position, so a certificate holds at most one signature per member and
//! the member's power counts once whichever key it used; a node whose
//! operator has not loaded the new key yet keeps voting, and consensus
//! never stalls across the change. After the overlap the old key is
//! refused like an expired one. Rotated-out keys and their windows are part
//! of the set's encoding and hash.
//!
//! ```
//! use govchain_core::crypto::{SecretKey, Signer};
//! use govchain_core::types::Height;
//! use govchain_core::validator::{KeyWindow, Validator, ValidatorSet};
//! let keys: Vec<_> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32]).public_key()).collect();
//! let set = ValidatorSet::with_equal_power(keys.iter().cloned())?
//!     .with_key_windows([(keys[0].clone(), KeyWindow::expiring_at(Height::new(100)))])?;
//! assert!(set.may_sign(&keys[0], Height::new(99)).is_ok());
//! assert!(set.may_sign(&keys[0], Height::new(100)).is_err());
//! // Three of four keys valid: still more than two thirds of the power.
//! assert!(set.is_quorum(set.valid_power_at(Height::new(100))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use crate::crypto::{
    verify, CryptoSuite, PublicKey, Signature, SignatureAlgorithm, SignatureError, Signer,
};
use crate::hash::{Domain, Hash};
use crate::types::{ChainId, Height};

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

/// When a validator's key may sign, in heights of the chain its set
/// governs. The default window is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyWindow {
    /// The key signs only heights below this one; `None`: it does not
    /// expire.
    pub expires_at: Option<Height>,
    /// The key was reported compromised: its signatures at this height and
    /// above are refused. `None`: not reported.
    pub revoked_from: Option<Height>,
}

impl KeyWindow {
    /// A window that ends (exclusively) at `height`.
    pub const fn expiring_at(height: Height) -> Self {
        KeyWindow {
            expires_at: Some(height),
            revoked_from: None,
        }
    }

    /// A window closed by a compromise report from `height` on.
    pub const fn revoked_from(height: Height) -> Self {
        KeyWindow {
            expires_at: None,
            revoked_from: Some(height),
        }
    }

    /// Whether this is the unbounded window (and therefore not stored).
    pub fn is_unbounded(&self) -> bool {
        self.expires_at.is_none() && self.revoked_from.is_none()
    }

    /// Whether a key with this window may sign at `height`, and if not,
    /// why. A compromise is reported in preference to an expiry.
    pub fn check(&self, height: Height) -> Result<(), KeyRejection> {
        if let Some(from) = self.revoked_from.filter(|from| height >= *from) {
            return Err(KeyRejection::Compromised { from });
        }
        if let Some(at) = self.expires_at.filter(|at| height >= *at) {
            return Err(KeyRejection::Expired { at });
        }
        Ok(())
    }
}

impl Encode for KeyWindow {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.expires_at.encode_to(out);
        self.revoked_from.encode_to(out);
    }
}

impl Decode for KeyWindow {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KeyWindow {
            expires_at: Option::<Height>::decode_from(r)?,
            revoked_from: Option::<Height>::decode_from(r)?,
        })
    }
}

/// Why a member's key may not sign at a height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRejection {
    /// The key is not a member of the set.
    #[error("not a member of the validator set")]
    NotMember,
    /// The key expired at this height.
    #[error("the key expired at height {at}")]
    Expired {
        /// First height it may no longer sign.
        at: Height,
    },
    /// The key was reported compromised from this height on.
    #[error("the key is compromised from height {from}")]
    Compromised {
        /// First height its signatures are refused.
        from: Height,
    },
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
    /// Keys of two signature algorithms in one set: a set belongs to one
    /// chain, and a chain has one suite.
    #[error("validator {key} is {}, but the set's first key is {}", key.algorithm().name(), first.name())]
    MixedAlgorithms {
        /// The algorithm of the set's first key.
        first: SignatureAlgorithm,
        /// A key of another algorithm.
        key: PublicKey,
    },
    /// A key window for a key that is not a member.
    #[error("key window for {key}, which is not a member of the set")]
    WindowForNonMember {
        /// The stranger's key.
        key: PublicKey,
    },
    /// A rotation to a key that already signs in this set (as a member or
    /// as a rotated-out key).
    #[error("{key} already signs in the set; a rotation needs a fresh key")]
    RotationToKnownKey {
        /// The new key.
        key: PublicKey,
    },
    /// A rotated-out key without an end to its overlap, or one that is
    /// still a member.
    #[error("rotated-out key {key} must not be a member and must expire")]
    InvalidRotatedKey {
        /// The rotated-out key.
        key: PublicKey,
    },
    /// A rotation to a key of another signature algorithm than the member's.
    #[error("rotation from {old} to {new}: the new key must use the same algorithm")]
    RotationChangesAlgorithm {
        /// The member's key.
        old: PublicKey,
        /// The new key.
        new: PublicKey,
    },
}

/// The digest `key` signs to prove that its holder controls it: the hash,
/// under `domain`, of `statement` followed by the key's encoding, taken
/// with the suite of the key's algorithm (so an SM2 key proves under SM3).
/// `domain` says what the proof is for and `statement` binds it to its
/// context, so a proof made for one purpose, chain or owner can not be
/// replayed for another. [`rotation_possession_digest`] and governance's
/// department-key registration are built on it.
pub fn possession_digest(domain: Domain, statement: &[&[u8]], key: &PublicKey) -> Hash {
    let key_bytes = key.to_bytes();
    let parts: Vec<&[u8]> = statement
        .iter()
        .copied()
        .chain(std::iter::once(key_bytes.as_slice()))
        .collect();
    CryptoSuite::of_key(key).hash_parts(domain, &parts)
}

/// `key`'s proof of possession for `statement` under `domain`: its
/// signature over [`possession_digest`].
pub fn prove_possession(domain: Domain, statement: &[&[u8]], key: &dyn Signer) -> Signature {
    key.sign(possession_digest(domain, statement, &key.public_key()).as_bytes())
}

/// Checks a proof made by [`prove_possession`] for the same `domain` and
/// `statement`.
pub fn verify_possession(
    domain: Domain,
    statement: &[&[u8]],
    key: &PublicKey,
    proof: &Signature,
) -> Result<(), SignatureError> {
    verify(
        key,
        possession_digest(domain, statement, key).as_bytes(),
        proof,
    )
}

/// The digest a new key signs to prove that its holder controls it when
/// member `old` of `chain`'s validator set rotates to it
/// ([`ValidatorSet::with_rotation`]): [`possession_digest`] under
/// [`Domain::KeyPossession`] of `(chain, old)`. Binding the chain and the
/// old key means the proof can not be replayed for another chain or member.
/// The digest is taken under the suite of the new key's algorithm.
pub fn rotation_possession_digest(chain: &ChainId, old: &PublicKey, new: &PublicKey) -> Hash {
    possession_digest(
        Domain::KeyPossession,
        &[&chain.to_bytes(), &old.to_bytes()],
        new,
    )
}

/// `new_key`'s proof of possession for rotating `old` on `chain` to it.
pub fn prove_rotation_possession(
    chain: &ChainId,
    old: &PublicKey,
    new_key: &dyn Signer,
) -> Signature {
    prove_possession(
        Domain::KeyPossession,
        &[&chain.to_bytes(), &old.to_bytes()],
        new_key,
    )
}

/// Checks a proof made by [`prove_rotation_possession`].
pub fn verify_rotation_possession(
    chain: &ChainId,
    old: &PublicKey,
    new: &PublicKey,
    proof: &Signature,
) -> Result<(), SignatureError> {
    verify_possession(
        Domain::KeyPossession,
        &[&chain.to_bytes(), &old.to_bytes()],
        new,
        proof,
    )
}

/// A rotated-out key: the former key of a member, still signing for it
/// until the end of its window (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedKey {
    /// The former key.
    pub key: PublicKey,
    /// The member's current key, which it signs for.
    pub successor: PublicKey,
    /// Its window; `expires_at` (the end of the overlap) is always set.
    pub window: KeyWindow,
}

/// A validator set in canonical order, with its total power, its members'
/// key windows, and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    /// The bounded windows, by validator index, in ascending index order
    /// (an unbounded window is not stored: one encoding per set).
    windows: Vec<(usize, KeyWindow)>,
    /// Rotated-out keys in ascending key order, each with the index of the
    /// member it signs for and its (expiring) window.
    rotated: Vec<(PublicKey, usize, KeyWindow)>,
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
            if v.public_key.algorithm() != validators[0].public_key.algorithm() {
                return Err(ValidatorSetError::MixedAlgorithms {
                    first: validators[0].public_key.algorithm(),
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
        let mut set = ValidatorSet {
            validators,
            windows: Vec::new(),
            rotated: Vec::new(),
            total_power: total,
            hash: Hash::ZERO,
        };
        set.hash = set.compute_hash();
        Ok(set)
    }

    /// The hash of the canonical encoding, under the set's suite.
    fn compute_hash(&self) -> Hash {
        self.suite().hash(Domain::ValidatorSet, &self.to_bytes())
    }

    /// The suite of this set: the one of its keys' algorithm (all members
    /// share it). The set's hash is taken under it, and it must be the
    /// suite of the chain the set validates.
    pub fn suite(&self) -> CryptoSuite {
        self.validators.first().map_or(CryptoSuite::default(), |v| {
            CryptoSuite::of_key(&v.public_key)
        })
    }

    /// A set of `keys`, each with power 1.
    pub fn with_equal_power(
        keys: impl IntoIterator<Item = PublicKey>,
    ) -> Result<Self, ValidatorSetError> {
        ValidatorSet::new(
            keys.into_iter()
                .map(|public_key| Validator {
                    public_key,
                    power: 1,
                })
                .collect(),
        )
    }

    /// This set with the given key windows replacing the windows of those
    /// keys (an unbounded window removes one). Every key must be a member
    /// or a rotated-out key (whose window must keep an expiry).
    pub fn with_key_windows(
        mut self,
        windows: impl IntoIterator<Item = (PublicKey, KeyWindow)>,
    ) -> Result<Self, ValidatorSetError> {
        let mut by_index: std::collections::BTreeMap<usize, KeyWindow> =
            self.windows.iter().copied().collect();
        for (key, window) in windows {
            if let Some(r) = self.rotated_index(&key) {
                // A rotated-out key's overlap always ends.
                if window.expires_at.is_none() {
                    return Err(ValidatorSetError::InvalidRotatedKey { key });
                }
                self.rotated[r].2 = window;
                continue;
            }
            let (index, _) = self
                .find(&key)
                .ok_or(ValidatorSetError::WindowForNonMember { key })?;
            if window.is_unbounded() {
                by_index.remove(&index);
            } else {
                by_index.insert(index, window);
            }
        }
        self.windows = by_index.into_iter().collect();
        self.hash = self.compute_hash();
        Ok(self)
    }

    /// This set with member `old`'s key replaced by `new` (same power, an
    /// unbounded window), and `old` kept as a rotated-out key that signs for
    /// the member at heights below `old_signs_below` (earlier if its own
    /// window already ends earlier; a compromise report stays with it).
    /// Rotated-out keys that signed for `old` now sign for `new`.
    ///
    /// Errors: `old` is not a member ([`ValidatorSetError::WindowForNonMember`]),
    /// `new` already signs in the set
    /// ([`ValidatorSetError::RotationToKnownKey`]), `new` is of another
    /// algorithm ([`ValidatorSetError::RotationChangesAlgorithm`]) or not a
    /// valid key ([`ValidatorSetError::KeyNotOnCurve`]).
    pub fn with_rotation(
        self,
        old: &PublicKey,
        new: PublicKey,
        old_signs_below: Height,
    ) -> Result<Self, ValidatorSetError> {
        let Some((index, member)) = self.find(old) else {
            return Err(ValidatorSetError::WindowForNonMember { key: old.clone() });
        };
        if self.find(&new).is_some() || self.rotated_index(&new).is_some() {
            return Err(ValidatorSetError::RotationToKnownKey { key: new });
        }
        if new.algorithm() != old.algorithm() {
            return Err(ValidatorSetError::RotationChangesAlgorithm {
                old: old.clone(),
                new,
            });
        }
        let power = member.power;
        let old_window = self.key_window(old);
        let old_rotated = KeyWindow {
            expires_at: Some(
                old_window
                    .expires_at
                    .map_or(old_signs_below, |at| at.min(old_signs_below)),
            ),
            revoked_from: old_window.revoked_from,
        };
        // Rebuild by key: positions move when a key is replaced.
        let mut windows: Vec<(PublicKey, KeyWindow)> = self
            .key_windows()
            .filter(|(key, _)| *key != old)
            .map(|(key, window)| (key.clone(), *window))
            .collect();
        let mut rotated: Vec<RotatedKey> = self
            .rotated_keys()
            .map(|mut r| {
                if &r.successor == old {
                    r.successor = new.clone();
                }
                r
            })
            .collect();
        rotated.push(RotatedKey {
            key: old.clone(),
            successor: new.clone(),
            window: old_rotated,
        });
        let mut validators = self.validators;
        validators[index] = Validator {
            public_key: new,
            power,
        };
        windows.retain(|(key, _)| key != old);
        ValidatorSet::new(validators)?.with_windows_and_rotated(windows, rotated)
    }

    /// This set without the rotated-out keys whose overlap ends at or
    /// before `height`: a set that takes effect at `height` has no use for
    /// them.
    pub fn without_rotated_keys_expired_by(mut self, height: Height) -> Self {
        let before = self.rotated.len();
        self.rotated
            .retain(|(_, _, w)| w.expires_at.is_some_and(|at| at > height));
        if self.rotated.len() != before {
            self.hash = self.compute_hash();
        }
        self
    }

    fn with_windows_and_rotated(
        self,
        windows: Vec<(PublicKey, KeyWindow)>,
        rotated: Vec<RotatedKey>,
    ) -> Result<Self, ValidatorSetError> {
        self.with_key_windows(windows)?.with_rotated_keys(rotated)
    }

    /// This set with exactly `rotated` as its rotated-out keys: each must
    /// not be a member, must sign for a member, and must expire (carrying
    /// rotated-out keys over from a previous set after a membership
    /// change).
    pub fn with_rotated_keys(
        self,
        rotated: impl IntoIterator<Item = RotatedKey>,
    ) -> Result<Self, ValidatorSetError> {
        let mut set = self;
        let mut entries = Vec::new();
        for r in rotated {
            let Some((index, _)) = set.find(&r.successor) else {
                return Err(ValidatorSetError::WindowForNonMember { key: r.successor });
            };
            if set.find(&r.key).is_some() || r.window.expires_at.is_none() {
                return Err(ValidatorSetError::InvalidRotatedKey { key: r.key });
            }
            if !r.key.is_on_curve() {
                return Err(ValidatorSetError::KeyNotOnCurve { key: r.key });
            }
            if r.key.algorithm() != r.successor.algorithm() {
                return Err(ValidatorSetError::MixedAlgorithms {
                    first: r.successor.algorithm(),
                    key: r.key,
                });
            }
            entries.push((r.key, index, r.window));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(ValidatorSetError::DuplicateKey {
                key: pair[0].0.clone(),
            });
        }
        set.rotated = entries;
        set.hash = set.compute_hash();
        Ok(set)
    }

    fn rotated_index(&self, key: &PublicKey) -> Option<usize> {
        self.rotated.binary_search_by(|(k, _, _)| k.cmp(key)).ok()
    }

    /// Every rotated-out key, in key order.
    pub fn rotated_keys(&self) -> impl Iterator<Item = RotatedKey> + '_ {
        self.rotated.iter().map(|(key, index, window)| RotatedKey {
            key: key.clone(),
            successor: self.validators[*index].public_key.clone(),
            window: *window,
        })
    }

    /// Decodes a set from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, Self::MAX_ENCODED_LEN)
    }

    /// Upper bound of the encoded length of any set.
    pub const MAX_ENCODED_LEN: usize = 8
        + MAX_VALIDATORS * (PublicKey::MAX_ENCODED_LEN + 8)
        + 2 * MAX_VALIDATORS * (2 * PublicKey::MAX_ENCODED_LEN + 1 + 2 * 9);

    /// The window of `key`: a member's (unbounded if it has none), a
    /// rotated-out key's, or unbounded for a stranger.
    pub fn key_window(&self, key: &PublicKey) -> KeyWindow {
        if let Some(r) = self.rotated_index(key) {
            return self.rotated[r].2;
        }
        self.find(key)
            .and_then(|(i, _)| {
                self.windows
                    .binary_search_by_key(&i, |(index, _)| *index)
                    .ok()
                    .map(|w| self.windows[w].1)
            })
            .unwrap_or_default()
    }

    /// Every bounded window of a member's key, in validator order
    /// (rotated-out keys: [`Self::rotated_keys`]).
    pub fn key_windows(&self) -> impl Iterator<Item = (&PublicKey, &KeyWindow)> {
        self.windows
            .iter()
            .map(|(i, w)| (&self.validators[*i].public_key, w))
    }

    /// Whether `key` may sign at `height`: a member, or a member's
    /// rotated-out key, whose window allows it. Returns the position and
    /// entry of the member it signs for (so a member's two keys share one
    /// position and one power).
    pub fn may_sign(
        &self,
        key: &PublicKey,
        height: Height,
    ) -> Result<(usize, &Validator), KeyRejection> {
        let Some((index, validator)) = self.find(key) else {
            let r = self.rotated_index(key).ok_or(KeyRejection::NotMember)?;
            let (_, index, window) = &self.rotated[r];
            window.check(height)?;
            return Ok((*index, &self.validators[*index]));
        };
        if let Ok(w) = self.windows.binary_search_by_key(&index, |(i, _)| *i) {
            self.windows[w].1.check(height)?;
        }
        Ok((index, validator))
    }

    /// The power of the members that may sign at `height`. The chain can
    /// decide `height` only if this is a quorum ([`Self::is_quorum`]).
    pub fn valid_power_at(&self, height: Height) -> u64 {
        self.validators
            .iter()
            .filter(|v| self.may_sign(&v.public_key, height).is_ok())
            .map(|v| v.power)
            .sum()
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
        // Windows of members' keys and of rotated-out keys, merged in one
        // sequence in ascending key order; a rotated-out key's entry names
        // the member key it signs for.
        let members = self
            .windows
            .iter()
            .map(|(index, window)| (&self.validators[*index].public_key, window, None));
        let rotated = self
            .rotated
            .iter()
            .map(|(key, index, window)| (key, window, Some(&self.validators[*index].public_key)));
        let mut entries: Vec<_> = members.chain(rotated).collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        (entries.len() as u32).encode_to(out);
        for (key, window, successor) in entries {
            key.encode_to(out);
            window.encode_to(out);
            successor.cloned().encode_to(out);
        }
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let validators: Vec<Validator> = r.seq("validator set", MAX_VALIDATORS)?;
        let entries: Vec<((PublicKey, KeyWindow), Option<PublicKey>)> =
            r.seq("key windows", 2 * MAX_VALIDATORS)?;
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
        if entries.windows(2).any(|w| w[0].0 .0 >= w[1].0 .0)
            || entries.iter().any(|((_, w), _)| w.is_unbounded())
        {
            return Err(DecodeError::InvalidValue {
                what: "validator set",
                reason: "key windows must be bounded and in strictly ascending key order",
            });
        }
        let mut windows = Vec::new();
        let mut rotated = Vec::new();
        for ((key, window), successor) in entries {
            match successor {
                None => windows.push((key, window)),
                Some(successor) => rotated.push(RotatedKey {
                    key,
                    successor,
                    window,
                }),
            }
        }
        ValidatorSet::from_sorted(validators)
            .and_then(|set| set.with_windows_and_rotated(windows, rotated))
            .map_err(|_| DecodeError::InvalidValue {
                what: "validator set",
                reason: "empty, zero power, off-curve key, mixed algorithms, total power overflow, a window for a non-member or an invalid rotated-out key",
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
    fn possession_proofs_bind_domain_statement_and_key() {
        for key in [
            SecretKey::from_seed(&[9; 32]),
            SecretKey::sm2_from_seed(&[9; 32]),
        ] {
            let proof = prove_possession(Domain::DepartmentKeyPossession, &[b"main", b"d1"], &key);
            let public = key.public_key();
            assert!(verify_possession(
                Domain::DepartmentKeyPossession,
                &[b"main", b"d1"],
                &public,
                &proof
            )
            .is_ok());
            // Another purpose, another statement or another key: refused.
            for (domain, statement) in [
                (Domain::KeyPossession, &[&b"main"[..], b"d1"]),
                (Domain::DepartmentKeyPossession, &[&b"main"[..], b"d2"]),
                (Domain::DepartmentKeyPossession, &[&b"side"[..], b"d1"]),
            ] {
                assert!(verify_possession(domain, statement, &public, &proof).is_err());
            }
            let other = SecretKey::from_seed_for(CryptoSuite::of_key(&public), &[8; 32]);
            assert!(verify_possession(
                Domain::DepartmentKeyPossession,
                &[b"main", b"d1"],
                &other.public_key(),
                &proof
            )
            .is_err());
        }
        // The rotation helpers are the generic ones under KeyPossession.
        let chain = ChainId::new("c").unwrap();
        let (old, new) = (v(1, 1).public_key, SecretKey::from_seed(&[2; 32]));
        assert_eq!(
            rotation_possession_digest(&chain, &old, &new.public_key()),
            CryptoSuite::of_key(&new.public_key()).hash_parts(
                Domain::KeyPossession,
                &[
                    &chain.to_bytes(),
                    &old.to_bytes(),
                    &new.public_key().to_bytes()
                ]
            )
        );
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
        0u32.encode_to(&mut bytes); // no key windows
        assert!(matches!(
            ValidatorSet::decode(&bytes),
            Err(DecodeError::InvalidValue { .. })
        ));
    }

    fn four() -> (Vec<PublicKey>, ValidatorSet) {
        let keys: Vec<PublicKey> = (1..=4u8).map(|i| v(i, 1).public_key).collect();
        let set = ValidatorSet::with_equal_power(keys.clone()).unwrap();
        (keys, set)
    }

    #[test]
    fn key_windows_bound_signing_and_keep_total_power() {
        let (keys, set) = four();
        let h = Height::new;
        let windowed = set
            .clone()
            .with_key_windows([
                (keys[0].clone(), KeyWindow::expiring_at(h(10))),
                (keys[1].clone(), KeyWindow::revoked_from(h(20))),
            ])
            .unwrap();
        assert_ne!(windowed.hash(), set.hash(), "windows are committed to");
        assert_eq!(windowed.total_power(), 4);
        assert!(windowed.may_sign(&keys[0], h(9)).is_ok());
        assert_eq!(
            windowed.may_sign(&keys[0], h(10)).map(|_| ()),
            Err(KeyRejection::Expired { at: h(10) })
        );
        assert!(windowed.may_sign(&keys[1], h(19)).is_ok());
        assert_eq!(
            windowed.may_sign(&keys[1], h(20)).map(|_| ()),
            Err(KeyRejection::Compromised { from: h(20) })
        );
        let stranger = v(9, 1).public_key;
        assert_eq!(
            windowed.may_sign(&stranger, h(1)).map(|_| ()),
            Err(KeyRejection::NotMember)
        );
        assert_eq!(windowed.valid_power_at(h(9)), 4);
        assert_eq!(windowed.valid_power_at(h(10)), 3);
        assert!(windowed.is_quorum(windowed.valid_power_at(h(10))));
        assert_eq!(windowed.valid_power_at(h(20)), 2);
        assert!(!windowed.is_quorum(windowed.valid_power_at(h(20))));
        // A compromise wins over an expiry in the reason.
        let both = KeyWindow {
            expires_at: Some(h(5)),
            revoked_from: Some(h(3)),
        };
        assert_eq!(
            both.check(h(6)),
            Err(KeyRejection::Compromised { from: h(3) })
        );
        // Round trip, and an unbounded window removes the entry again.
        let back = ValidatorSet::decode(&windowed.to_bytes()).unwrap();
        assert_eq!(back, windowed);
        assert_eq!(back.key_windows().count(), 2);
        let cleared = windowed
            .with_key_windows([
                (keys[0].clone(), KeyWindow::default()),
                (keys[1].clone(), KeyWindow::default()),
            ])
            .unwrap();
        assert_eq!(cleared, set);
        assert_eq!(
            set.clone()
                .with_key_windows([(stranger.clone(), KeyWindow::expiring_at(h(1)))]),
            Err(ValidatorSetError::WindowForNonMember { key: stranger })
        );
    }

    #[test]
    fn non_canonical_windows_are_refused() {
        let (_, set) = four();
        // In canonical (ascending) order.
        let keys: Vec<PublicKey> = set
            .validators()
            .iter()
            .map(|v| v.public_key.clone())
            .collect();
        let mut base = Vec::new();
        encode_seq(set.validators(), &mut base);
        let encode = |windows: &[(PublicKey, KeyWindow)]| {
            let mut bytes = base.clone();
            (windows.len() as u32).encode_to(&mut bytes);
            for (key, window) in windows {
                key.encode_to(&mut bytes);
                window.encode_to(&mut bytes);
                None::<PublicKey>.encode_to(&mut bytes);
            }
            bytes
        };
        let w = KeyWindow::expiring_at(Height::new(3));
        // Descending keys, a repeated key, an unbounded window, a stranger.
        for windows in [
            vec![(keys[1].clone(), w), (keys[0].clone(), w)],
            vec![(keys[0].clone(), w), (keys[0].clone(), w)],
            vec![(keys[0].clone(), KeyWindow::default())],
            vec![(v(9, 1).public_key, w)],
        ] {
            assert!(
                matches!(
                    ValidatorSet::decode(&encode(&windows)),
                    Err(DecodeError::InvalidValue { .. })
                ),
                "{windows:?}"
            );
        }
        let ok = encode(&[(keys[2].clone(), w)]);
        assert_eq!(ValidatorSet::decode(&ok).unwrap().to_bytes(), ok);
    }

    #[test]
    fn a_rotated_out_key_signs_for_its_member_until_the_overlap_ends() {
        let (keys, set) = four();
        let h = Height::new;
        let new = v(9, 1).public_key;
        let rotated = set
            .clone()
            .with_rotation(&keys[0], new.clone(), h(20))
            .unwrap();
        assert_ne!(rotated.hash(), set.hash());
        assert_eq!(rotated.total_power(), set.total_power());
        assert_eq!(rotated.len(), 4);
        assert!(rotated.find(&keys[0]).is_none());
        let (member, entry) = rotated.may_sign(&new, h(5)).unwrap();
        assert_eq!(entry.public_key, new);
        // The old key signs for the same member: one position, one power.
        let (old_member, old_entry) = rotated.may_sign(&keys[0], h(19)).unwrap();
        assert_eq!((old_member, &old_entry.public_key), (member, &new));
        assert_eq!(
            rotated.may_sign(&keys[0], h(20)),
            Err(KeyRejection::Expired { at: h(20) })
        );
        assert!(rotated.may_sign(&new, h(1_000)).is_ok());
        assert_eq!(rotated.valid_power_at(h(20)), 4);
        assert_eq!(
            rotated.rotated_keys().collect::<Vec<_>>(),
            vec![RotatedKey {
                key: keys[0].clone(),
                successor: new.clone(),
                window: KeyWindow::expiring_at(h(20)),
            }]
        );
        // Encoding round-trips and is canonical.
        let back = ValidatorSet::decode(&rotated.to_bytes()).unwrap();
        assert_eq!(back, rotated);
        assert_eq!(back.hash(), rotated.hash());
        // Expired rotated-out keys are dropped from a set taking effect later.
        assert_eq!(
            rotated.clone().without_rotated_keys_expired_by(h(19)),
            rotated
        );
        let pruned = rotated.clone().without_rotated_keys_expired_by(h(20));
        assert_eq!(pruned.rotated_keys().count(), 0);
        assert_eq!(
            pruned.may_sign(&keys[0], h(1)),
            Err(KeyRejection::NotMember)
        );
    }

    #[test]
    fn rotation_keeps_a_compromise_and_an_earlier_expiry_and_follows_chains() {
        let (keys, set) = four();
        let h = Height::new;
        let set = set
            .with_key_windows([(
                keys[1].clone(),
                KeyWindow {
                    expires_at: Some(h(15)),
                    revoked_from: Some(h(12)),
                },
            )])
            .unwrap();
        let second = v(10, 1).public_key;
        let third = v(11, 1).public_key;
        let once = set.with_rotation(&keys[1], second.clone(), h(30)).unwrap();
        assert_eq!(
            once.key_window(&keys[1]),
            KeyWindow {
                expires_at: Some(h(15)),
                revoked_from: Some(h(12)),
            }
        );
        assert_eq!(
            once.may_sign(&keys[1], h(12)),
            Err(KeyRejection::Compromised { from: h(12) })
        );
        // The new key starts with an unbounded window.
        assert!(once.key_window(&second).is_unbounded());
        // Rotating again re-points the first rotated-out key to the newest key.
        let twice = once.with_rotation(&second, third.clone(), h(40)).unwrap();
        let (_, entry) = twice.may_sign(&keys[1], h(11)).unwrap();
        assert_eq!(entry.public_key, third);
        let (_, entry) = twice.may_sign(&second, h(39)).unwrap();
        assert_eq!(entry.public_key, third);
        // A compromise of a rotated-out key is recorded on it.
        let reported = twice
            .clone()
            .with_key_windows([(
                second.clone(),
                KeyWindow {
                    expires_at: Some(h(40)),
                    revoked_from: Some(h(35)),
                },
            )])
            .unwrap();
        assert_eq!(
            reported.may_sign(&second, h(35)),
            Err(KeyRejection::Compromised { from: h(35) })
        );
        assert_eq!(
            twice.with_key_windows([(second.clone(), KeyWindow::default())]),
            Err(ValidatorSetError::InvalidRotatedKey { key: second })
        );
    }

    #[test]
    fn invalid_rotations_are_refused() {
        let (keys, set) = four();
        let h = Height::new;
        let stranger = v(12, 1).public_key;
        assert!(matches!(
            set.clone()
                .with_rotation(&stranger, v(13, 1).public_key, h(5)),
            Err(ValidatorSetError::WindowForNonMember { .. })
        ));
        assert!(matches!(
            set.clone().with_rotation(&keys[0], keys[1].clone(), h(5)),
            Err(ValidatorSetError::RotationToKnownKey { .. })
        ));
        let rotated = set
            .clone()
            .with_rotation(&keys[0], stranger.clone(), h(5))
            .unwrap();
        assert!(matches!(
            rotated.with_rotation(&keys[1], keys[0].clone(), h(5)),
            Err(ValidatorSetError::RotationToKnownKey { .. })
        ));
        let sm2 = crate::crypto::SecretKey::sm2_from_seed(&[7; 32]).public_key();
        assert!(matches!(
            set.with_rotation(&keys[0], sm2, h(5)),
            Err(ValidatorSetError::RotationChangesAlgorithm { .. })
        ));
    }

    #[test]
    fn decoding_refuses_a_rotated_out_key_that_is_a_member_or_never_expires() {
        let (keys, set) = four();
        let encode = |entries: &[(PublicKey, KeyWindow, Option<PublicKey>)]| {
            let mut out = Vec::new();
            encode_seq(set.validators(), &mut out);
            (entries.len() as u32).encode_to(&mut out);
            for (key, window, successor) in entries {
                key.encode_to(&mut out);
                window.encode_to(&mut out);
                successor.encode_to(&mut out);
            }
            out
        };
        let stranger = v(14, 1).public_key;
        let bad = [
            // A member listed as rotated out.
            vec![(
                keys[0].clone(),
                KeyWindow::expiring_at(Height::new(3)),
                Some(keys[1].clone()),
            )],
            // A rotated-out key without an expiry.
            vec![(
                stranger.clone(),
                KeyWindow::revoked_from(Height::new(3)),
                Some(keys[1].clone()),
            )],
            // Signing for a stranger.
            vec![(
                stranger.clone(),
                KeyWindow::expiring_at(Height::new(3)),
                Some(v(15, 1).public_key),
            )],
        ];
        for entries in bad {
            assert!(
                matches!(
                    ValidatorSet::decode(&encode(&entries)),
                    Err(DecodeError::InvalidValue { .. })
                ),
                "{entries:?}"
            );
        }
        let ok = encode(&[(
            stranger,
            KeyWindow::expiring_at(Height::new(3)),
            Some(keys[1].clone()),
        )]);
        assert_eq!(ValidatorSet::decode(&ok).unwrap().to_bytes(), ok);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn windowed_sets_round_trip(
            windows in proptest::collection::vec(
                (0usize..4, proptest::option::of(1u64..50), proptest::option::of(1u64..50)),
                0..6,
            ),
            rotations in proptest::collection::vec((0usize..4, 1u64..50), 0..4),
        ) {
            let (keys, set) = four();
            let set = set
                .with_key_windows(windows.iter().map(|(i, e, r)| {
                    (
                        keys[*i].clone(),
                        KeyWindow {
                            expires_at: e.map(Height::new),
                            revoked_from: r.map(Height::new),
                        },
                    )
                }))
                .unwrap();
            let mut set = set;
            for (n, (i, overlap)) in rotations.iter().enumerate() {
                let old = set.validators()[*i].public_key.clone();
                set = set
                    .with_rotation(&old, v(100 + n as u8, 1).public_key, Height::new(*overlap))
                    .unwrap();
            }
            let bytes = set.to_bytes();
            let back = ValidatorSet::decode(&bytes).unwrap();
            proptest::prop_assert_eq!(&back, &set);
            proptest::prop_assert!(bytes.len() <= ValidatorSet::MAX_ENCODED_LEN);
            proptest::prop_assert_eq!(back.to_bytes(), bytes);
        }
    }
}
