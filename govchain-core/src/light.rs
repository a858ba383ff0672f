//! Light-client verification of a header chain.
//!
//! A [`LightClient`] starts from a trusted validator set (a chain's genesis)
//! or a trusted header, and verifies headers one height at a time, each with
//! the [`CommitCertificate`] that commits it. It follows validator-set changes
//! through `next_validator_set_hash`: header `h` names the set that signs
//! `h + 1`, so a new set is only ever accepted because a quorum of the old one
//! announced it. Once a header is verified, transaction-inclusion and state
//! proofs are checked against its roots. The client holds headers only, never
//! a ledger.
//!
//! The client follows one chain of one crypto suite: the suite of its trust
//! root (the genesis validator set's, or the trusted header's). A header of
//! another suite is refused ([`LightClientError::WrongSuite`]) before
//! anything is hashed, and so is a signing set of another suite; proofs are
//! checked under the suite of the verified header they are checked against.
//!
//! Every rejection has its own [`LightClientError`] variant, and certificate
//! faults keep their own [`CertificateError`] (under 2/3 of the power, a
//! non-member signer, a duplicate signer, a bad signature).

use std::collections::BTreeMap;

use crate::block::BlockHeader;
use crate::cert::{CertificateError, CommitCertificate};
use crate::crypto::{CryptoSuite, PublicKey};
use crate::hash::Hash;
use crate::merkle::{InclusionProof, MerkleError, TreeHead};
use crate::smt::{KeyHash, SmtProofError, SparseMerkleProof};
use crate::types::{ChainId, Height, Timestamp};
use crate::validator::{KeyRejection, ValidatorSet};

/// A header with the certificate that commits it, and the validator set that
/// signed it when that set is new to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightBlock {
    /// The header.
    pub header: BlockHeader,
    /// Precommits of more than 2/3 of `header.validator_set_hash`'s power.
    pub certificate: CommitCertificate,
    /// The signing set, required when it differs from the previous header's
    /// signing set (that is, after a validator-set change).
    pub validator_set: Option<ValidatorSet>,
}

/// Why a header or proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LightClientError {
    /// Header of another chain.
    #[error("header is for chain {got}, expected {expected}")]
    WrongChain {
        /// The client's chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// Header (or its signing set) of another crypto suite than the chain's.
    #[error("header is of suite {got}, the chain's suite is {expected}")]
    WrongSuite {
        /// The chain's suite.
        expected: CryptoSuite,
        /// The header's (or signing set's) suite.
        got: CryptoSuite,
    },
    /// Header is not the next height.
    #[error("expected height {expected}, got {got}")]
    HeightGap {
        /// The next height the client accepts.
        expected: Height,
        /// The header's height.
        got: Height,
    },
    /// Header does not extend the last verified header.
    #[error("parent hash {got} does not match the last verified block {expected}")]
    WrongParent {
        /// Hash of the last verified header.
        expected: Hash,
        /// The header's parent hash.
        got: Hash,
    },
    /// Header time earlier than its parent's.
    #[error("time went backwards: {got:?} after {previous:?}")]
    TimeWentBackwards {
        /// The parent's time.
        previous: Timestamp,
        /// The header's time.
        got: Timestamp,
    },
    /// The header names a signing set that its parent did not announce.
    #[error("header is signed by set {got}, but its parent announced {expected}")]
    UnexpectedValidatorSet {
        /// The announced set hash.
        expected: Hash,
        /// The header's set hash.
        got: Hash,
    },
    /// The signing set is not known and was not supplied (or the supplied
    /// set has another hash).
    #[error("validator set {hash} is unknown to the light client")]
    UnknownValidatorSet {
        /// The hash of the needed set.
        hash: Hash,
    },
    /// The certificate does not commit the header.
    #[error("certificate rejected: {0}")]
    Certificate(#[from] CertificateError),
    /// A trusted header's next validator set does not match its hash.
    #[error("trusted next validator set has hash {got}, header announces {expected}")]
    TrustedSetMismatch {
        /// The header's `next_validator_set_hash`.
        expected: Hash,
        /// The supplied set's hash.
        got: Hash,
    },
    /// No verified header at this height (never verified, or pruned).
    #[error("no verified header at height {height}")]
    HeaderNotVerified {
        /// The requested height.
        height: Height,
    },
    /// A transaction-inclusion or history proof does not verify against a
    /// verified header.
    #[error("merkle proof rejected: {0}")]
    MerkleProof(#[from] MerkleError),
    /// A state proof does not verify against a verified header.
    #[error("state proof rejected: {0}")]
    StateProof(#[from] SmtProofError),
    /// A history proof is for another leaf than the ancestor asked about.
    #[error("history proof is for leaf {got}, the ancestor is leaf {expected}")]
    AncestorIndexMismatch {
        /// Leaf index of the ancestor (`height - 1`).
        expected: u64,
        /// Leaf index in the proof.
        got: u64,
    },
    /// A history proof names a block at or above the header that commits
    /// the history (header `h` commits blocks `1..h`).
    #[error("history of header {header} does not contain height {height}")]
    NotInHistory {
        /// The verified header's height.
        header: Height,
        /// The height asked about.
        height: Height,
    },
}

/// What the client trusts about the tip it has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tip {
    height: Height,
    hash: Hash,
    time: Timestamp,
    /// The set that must sign the next header (as announced by the tip).
    next_set_hash: Hash,
}

/// The compromise reports a set records, for its members' and its
/// rotated-out keys.
fn compromises_in(set: &ValidatorSet) -> BTreeMap<PublicKey, Height> {
    let mut out = BTreeMap::new();
    let members = set
        .key_windows()
        .filter_map(|(key, w)| w.revoked_from.map(|from| (key.clone(), from)));
    let rotated = set
        .rotated_keys()
        .filter_map(|r| r.window.revoked_from.map(|from| (r.key, from)));
    for (key, from) in members.chain(rotated) {
        record_compromise(&mut out, key, from);
    }
    out
}

fn record_compromise(map: &mut BTreeMap<PublicKey, Height>, key: PublicKey, from: Height) {
    let entry = map.entry(key).or_insert(from);
    *entry = (*entry).min(from);
}

/// Default number of verified headers a light client keeps.
pub const DEFAULT_RETAINED_HEADERS: usize = 10_000;

/// A light client of one chain.
#[derive(Debug, Clone)]
pub struct LightClient {
    chain_id: ChainId,
    suite: CryptoSuite,
    tip: Tip,
    /// The set announced by the tip, once known.
    next_set: Option<ValidatorSet>,
    headers: BTreeMap<Height, BlockHeader>,
    retained: usize,
    /// Every compromise report the client has seen (in any set it trusted,
    /// or given with [`LightClient::with_known_compromises`]): key → first
    /// height whose signatures by it do not count.
    compromised: BTreeMap<PublicKey, Height>,
}

impl LightClient {
    /// Trusts a chain from its genesis: `validators` sign height 1, whose
    /// parent is [`Hash::ZERO`] and whose time is at least `genesis_time`.
    /// The chain's suite is the set's ([`ValidatorSet::suite`]).
    pub fn from_genesis(
        chain_id: ChainId,
        validators: ValidatorSet,
        genesis_time: Timestamp,
    ) -> Self {
        LightClient {
            chain_id,
            suite: validators.suite(),
            tip: Tip {
                height: Height::new(0),
                hash: Hash::ZERO,
                time: genesis_time,
                next_set_hash: validators.hash(),
            },
            compromised: compromises_in(&validators),
            next_set: Some(validators),
            headers: BTreeMap::new(),
            retained: DEFAULT_RETAINED_HEADERS,
        }
    }

    /// Trusts `header` (obtained out of band, e.g. a checkpoint) together with
    /// the validator set it announces for the next height. The chain's suite
    /// is the header's.
    pub fn from_trusted_header(
        header: BlockHeader,
        next_validators: ValidatorSet,
    ) -> Result<Self, LightClientError> {
        if next_validators.suite() != header.suite {
            return Err(LightClientError::WrongSuite {
                expected: header.suite,
                got: next_validators.suite(),
            });
        }
        if next_validators.hash() != header.next_validator_set_hash {
            return Err(LightClientError::TrustedSetMismatch {
                expected: header.next_validator_set_hash,
                got: next_validators.hash(),
            });
        }
        let mut headers = BTreeMap::new();
        let tip = Tip {
            height: header.height,
            hash: header.hash(),
            time: header.time,
            next_set_hash: header.next_validator_set_hash,
        };
        let chain_id = header.chain_id.clone();
        let header_suite = header.suite;
        headers.insert(header.height, header);
        Ok(LightClient {
            chain_id,
            suite: header_suite,
            tip,
            compromised: compromises_in(&next_validators),
            next_set: Some(next_validators),
            headers,
            retained: DEFAULT_RETAINED_HEADERS,
        })
    }

    /// Adds compromise reports learned out of band — for instance from the
    /// chain's latest validator set, before syncing older headers: a
    /// compromise recorded by a set that took effect at `E` may void a key
    /// from `F < E`, and blocks `F..E` were certified under sets that did
    /// not know it. From then on, signatures by `key` at `from` and above
    /// never count towards a quorum in this client, whatever the signing
    /// set says. An earlier report of the same key wins.
    pub fn with_known_compromises(
        mut self,
        reports: impl IntoIterator<Item = (PublicKey, Height)>,
    ) -> Self {
        for (key, from) in reports {
            record_compromise(&mut self.compromised, key, from);
        }
        self
    }

    /// Every compromise report the client knows: key → first void height.
    pub fn known_compromises(&self) -> &BTreeMap<PublicKey, Height> {
        &self.compromised
    }

    /// Keeps at most `count` (at least 1) verified headers, dropping the oldest.
    pub fn with_retained_headers(mut self, count: usize) -> Self {
        self.retained = count.max(1);
        self.prune();
        self
    }

    /// The chain followed.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The chain's crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Height of the last verified header (0 before the first).
    pub fn height(&self) -> Height {
        self.tip.height
    }

    /// Hash of the last verified header.
    pub fn tip_hash(&self) -> Hash {
        self.tip.hash
    }

    /// The verified header at `height`.
    pub fn header(&self, height: Height) -> Result<&BlockHeader, LightClientError> {
        self.headers
            .get(&height)
            .ok_or(LightClientError::HeaderNotVerified { height })
    }

    /// The set the client expects to sign the next header, if known.
    pub fn next_validator_set(&self) -> Option<&ValidatorSet> {
        self.next_set.as_ref()
    }

    /// Verifies the next header and, if it is valid, makes it the tip.
    /// On error nothing changes.
    pub fn verify(&mut self, block: &LightBlock) -> Result<(), LightClientError> {
        let header = &block.header;
        if header.chain_id != self.chain_id {
            return Err(LightClientError::WrongChain {
                expected: self.chain_id.clone(),
                got: header.chain_id.clone(),
            });
        }
        if header.suite != self.suite {
            return Err(LightClientError::WrongSuite {
                expected: self.suite,
                got: header.suite,
            });
        }
        let expected_height = self.tip.height.next().unwrap_or(self.tip.height);
        if header.height != expected_height || expected_height == self.tip.height {
            return Err(LightClientError::HeightGap {
                expected: expected_height,
                got: header.height,
            });
        }
        if header.parent_hash != self.tip.hash {
            return Err(LightClientError::WrongParent {
                expected: self.tip.hash,
                got: header.parent_hash,
            });
        }
        if header.time < self.tip.time {
            return Err(LightClientError::TimeWentBackwards {
                previous: self.tip.time,
                got: header.time,
            });
        }
        if header.validator_set_hash != self.tip.next_set_hash {
            return Err(LightClientError::UnexpectedValidatorSet {
                expected: self.tip.next_set_hash,
                got: header.validator_set_hash,
            });
        }
        let signing_set = match (&self.next_set, &block.validator_set) {
            (Some(known), _) if known.hash() == header.validator_set_hash => known,
            (_, Some(supplied)) if supplied.hash() == header.validator_set_hash => supplied,
            _ => {
                return Err(LightClientError::UnknownValidatorSet {
                    hash: header.validator_set_hash,
                })
            }
        };
        if signing_set.suite() != self.suite {
            return Err(LightClientError::WrongSuite {
                expected: self.suite,
                got: signing_set.suite(),
            });
        }
        let hash = header.hash();
        block
            .certificate
            .verify(&self.chain_id, header.height, &hash, signing_set)?;
        self.check_known_compromises(&block.certificate, signing_set)?;

        // Accepted. The set for the next height is known now only if it is
        // unchanged; otherwise it must come with the next light block.
        let next_set = if header.next_validator_set_hash == signing_set.hash() {
            Some(signing_set.clone())
        } else {
            None
        };
        self.tip = Tip {
            height: header.height,
            hash,
            time: header.time,
            next_set_hash: header.next_validator_set_hash,
        };
        for (key, from) in compromises_in(signing_set) {
            record_compromise(&mut self.compromised, key, from);
        }
        self.next_set = next_set;
        self.headers.insert(header.height, header.clone());
        self.prune();
        Ok(())
    }

    /// A certificate that verified under its set must still hold a quorum
    /// without the signatures of keys this client knows to be compromised
    /// at its height (reports the set itself may predate).
    fn check_known_compromises(
        &self,
        certificate: &CommitCertificate,
        set: &ValidatorSet,
    ) -> Result<(), LightClientError> {
        let height = certificate.height;
        let mut void = None;
        let mut counted: u64 = 0;
        for sig in &certificate.signatures {
            match self.compromised.get(&sig.validator) {
                Some(from) if height >= *from => {
                    void.get_or_insert((sig.validator.clone(), *from));
                }
                _ => {
                    if let Ok((_, member)) = set.may_sign(&sig.validator, height) {
                        counted = counted.saturating_add(member.power);
                    }
                }
            }
        }
        match void {
            Some((signer, from)) if !set.is_quorum(counted) => Err(LightClientError::Certificate(
                CertificateError::KeyOutsideWindow {
                    signer,
                    height,
                    reason: KeyRejection::Compromised { from },
                },
            )),
            _ => Ok(()),
        }
    }

    /// Checks that the encoded transaction `tx` is in the verified block at
    /// `height`, at the index the proof names.
    pub fn verify_transaction(
        &self,
        height: Height,
        tx: &[u8],
        proof: &InclusionProof,
    ) -> Result<(), LightClientError> {
        let header = self.header(height)?;
        proof.verify_tx(
            header.suite.hash_function(),
            tx,
            &header.tx_root,
            u64::from(header.tx_count),
        )?;
        Ok(())
    }

    /// Checks that, in the state after the verified block at `height`, the
    /// application key `key` holds `value` (`Some`) or nothing (`None`).
    pub fn verify_state(
        &self,
        height: Height,
        key: &[u8],
        value: Option<&[u8]>,
        proof: &SparseMerkleProof,
    ) -> Result<(), LightClientError> {
        let header = self.header(height)?;
        let hf = header.suite.hash_function();
        proof.verify(hf, &header.state_root, &KeyHash::of(hf, key), value)?;
        Ok(())
    }

    /// Checks that `block_hash` is the hash of the block at `ancestor`, using
    /// the history log committed by the verified header at `height`. This
    /// lets a client that verified a recent header trust an old block
    /// without the headers in between.
    pub fn verify_ancestor(
        &self,
        height: Height,
        ancestor: Height,
        block_hash: &Hash,
        proof: &InclusionProof,
    ) -> Result<(), LightClientError> {
        let header = self.header(height)?;
        if ancestor >= height || ancestor.get() == 0 {
            return Err(LightClientError::NotInHistory {
                header: height,
                height: ancestor,
            });
        }
        // Header `h` commits the log of blocks 1..h: h - 1 leaves, where
        // block `a` is leaf `a - 1`.
        let head = TreeHead {
            size: height.get() - 1,
            root: header.history_root,
        };
        if proof.leaf_index != ancestor.get() - 1 {
            return Err(LightClientError::AncestorIndexMismatch {
                expected: ancestor.get() - 1,
                got: proof.leaf_index,
            });
        }
        proof.verify_history(header.suite.hash_function(), block_hash, &head)?;
        Ok(())
    }

    fn prune(&mut self) {
        while self.headers.len() > self.retained {
            self.headers.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{certify, CommitSignature};
    use crate::crypto::{SecretKey, Signer};
    use crate::hash::Domain;
    use crate::validator::Validator;

    fn keys(range: std::ops::Range<u8>) -> Vec<SecretKey> {
        range.map(|i| SecretKey::from_seed(&[i; 32])).collect()
    }

    fn set_of(keys: &[SecretKey]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .map(|k| Validator {
                    public_key: k.public_key(),
                    power: 10,
                })
                .collect(),
        )
        .unwrap()
    }

    fn chain() -> ChainId {
        ChainId::new("hz-main").unwrap()
    }

    fn header(
        height: u64,
        parent: Hash,
        time: u64,
        set: &ValidatorSet,
        next: &ValidatorSet,
    ) -> BlockHeader {
        BlockHeader {
            suite: set.suite(),
            chain_id: chain(),
            height: Height::new(height),
            time: Timestamp::new(time),
            parent_hash: parent,
            tx_root: Hash::of(Domain::Test, b"txs"),
            tx_count: 0,
            state_root: Hash::of(Domain::Test, &height.to_le_bytes()),
            history_root: Hash::ZERO,
            validator_set_hash: set.hash(),
            next_validator_set_hash: next.hash(),
            proposer: set.validators()[0].public_key.clone(),
        }
    }

    fn light_block(
        h: BlockHeader,
        signers: &[SecretKey],
        with_set: Option<ValidatorSet>,
    ) -> LightBlock {
        let signers: Vec<&dyn Signer> = signers.iter().map(|k| k as &dyn Signer).collect();
        let certificate = certify(
            &h.chain_id,
            h.height,
            crate::types::Round::new(0),
            h.hash(),
            &signers,
        );
        LightBlock {
            header: h,
            certificate,
            validator_set: with_set,
        }
    }

    /// A chain of 6 headers whose set changes from keys 1..5 to keys 3..8 at
    /// height 4 (announced by header 3).
    fn scenario() -> (ValidatorSet, Vec<LightBlock>) {
        let old = keys(1..5);
        let new = keys(3..8);
        let (old_set, new_set) = (set_of(&old), set_of(&new));
        let mut blocks = Vec::new();
        let mut parent = Hash::ZERO;
        for h in 1..=6u64 {
            let (set, signers) = if h < 4 {
                (&old_set, &old)
            } else {
                (&new_set, &new)
            };
            let next = if h < 3 { &old_set } else { &new_set };
            let hd = header(h, parent, 1000 + h, set, next);
            parent = hd.hash();
            let with_set = (h == 4).then(|| new_set.clone());
            blocks.push(light_block(hd, signers, with_set));
        }
        (old_set, blocks)
    }

    #[test]
    fn follows_chain_across_validator_set_change() {
        let (genesis_set, blocks) = scenario();
        let mut client = LightClient::from_genesis(chain(), genesis_set, Timestamp::new(1000));
        for b in &blocks {
            client.verify(b).unwrap();
        }
        assert_eq!(client.height(), Height::new(6));
        assert_eq!(client.tip_hash(), blocks[5].header.hash());
        assert_eq!(client.header(Height::new(2)).unwrap(), &blocks[1].header);
    }

    #[test]
    fn new_set_without_its_validators_is_unknown() {
        let (genesis_set, mut blocks) = scenario();
        blocks[3].validator_set = None;
        let mut client = LightClient::from_genesis(chain(), genesis_set, Timestamp::new(1000));
        for b in &blocks[..3] {
            client.verify(b).unwrap();
        }
        assert!(matches!(
            client.verify(&blocks[3]),
            Err(LightClientError::UnknownValidatorSet { .. })
        ));
        // A supplied set with another hash does not help either.
        blocks[3].validator_set = Some(set_of(&keys(20..24)));
        assert!(matches!(
            client.verify(&blocks[3]),
            Err(LightClientError::UnknownValidatorSet { .. })
        ));
    }

    #[test]
    fn each_fault_has_its_own_error() {
        let old = keys(1..5);
        let set = set_of(&old);
        let genesis = || LightClient::from_genesis(chain(), set.clone(), Timestamp::new(1000));
        let good = header(1, Hash::ZERO, 1001, &set, &set);

        let mut wrong_chain = good.clone();
        wrong_chain.chain_id = ChainId::new("other").unwrap();
        assert!(matches!(
            genesis().verify(&light_block(wrong_chain, &old, None)),
            Err(LightClientError::WrongChain { .. })
        ));

        let gap = header(2, Hash::ZERO, 1001, &set, &set);
        assert!(matches!(
            genesis().verify(&light_block(gap, &old, None)),
            Err(LightClientError::HeightGap { .. })
        ));

        let orphan = header(1, Hash::of(Domain::Test, b"x"), 1001, &set, &set);
        assert!(matches!(
            genesis().verify(&light_block(orphan, &old, None)),
            Err(LightClientError::WrongParent { .. })
        ));

        let early = header(1, Hash::ZERO, 999, &set, &set);
        assert!(matches!(
            genesis().verify(&light_block(early, &old, None)),
            Err(LightClientError::TimeWentBackwards { .. })
        ));

        // 2 of 4 equal-power validators is not more than 2/3.
        assert!(matches!(
            genesis().verify(&light_block(good.clone(), &old[..2], None)),
            Err(LightClientError::Certificate(
                CertificateError::InsufficientPower {
                    signed: 20,
                    total: 40
                }
            ))
        ));

        let mut with_stranger = keys(1..4);
        with_stranger.push(SecretKey::from_seed(&[99; 32]));
        assert!(matches!(
            genesis().verify(&light_block(good.clone(), &with_stranger, None)),
            Err(LightClientError::Certificate(
                CertificateError::NonMemberSigner { .. }
            ))
        ));

        let mut dup = light_block(good.clone(), &old[..3], None);
        let first = dup.certificate.signatures[0].clone();
        dup.certificate.signatures.insert(1, first);
        assert!(matches!(
            genesis().verify(&dup),
            Err(LightClientError::Certificate(
                CertificateError::DuplicateSigner { .. }
            ))
        ));

        let mut unsorted = light_block(good.clone(), &old[..3], None);
        unsorted.certificate.signatures.swap(0, 2);
        assert!(matches!(
            genesis().verify(&unsorted),
            Err(LightClientError::Certificate(
                CertificateError::UnsortedSigners
            ))
        ));

        let mut forged = light_block(good.clone(), &old[..3], None);
        let other = &old[3];
        forged.certificate.signatures[1] = CommitSignature {
            validator: forged.certificate.signatures[1].validator.clone(),
            signature: other.sign(b"something else"),
        };
        let bad_signer = forged.certificate.signatures[1].validator.clone();
        assert_eq!(
            genesis().verify(&forged),
            Err(LightClientError::Certificate(
                CertificateError::InvalidSignatures {
                    signers: vec![bad_signer]
                }
            ))
        );

        let stranger_set = set_of(&keys(40..44));
        let unannounced = header(1, Hash::ZERO, 1001, &stranger_set, &stranger_set);
        assert!(matches!(
            genesis().verify(&light_block(unannounced, &keys(40..44), Some(stranger_set))),
            Err(LightClientError::UnexpectedValidatorSet { .. })
        ));

        // A certificate for another block does not commit this header.
        let mut swapped = light_block(good.clone(), &old, None);
        swapped.certificate =
            light_block(header(1, Hash::ZERO, 1002, &set, &set), &old, None).certificate;
        assert!(matches!(
            genesis().verify(&swapped),
            Err(LightClientError::Certificate(
                CertificateError::WrongBlock { .. }
            ))
        ));

        // And the good one passes, once; replaying it is a height gap.
        let mut client = genesis();
        let ok = light_block(good, &old, None);
        client.verify(&ok).unwrap();
        assert!(matches!(
            client.verify(&ok),
            Err(LightClientError::HeightGap { .. })
        ));
    }

    #[test]
    fn trusted_header_must_match_its_next_set() {
        let (_, blocks) = scenario();
        let h3 = blocks[2].header.clone();
        assert!(matches!(
            LightClient::from_trusted_header(h3.clone(), set_of(&keys(1..5))),
            Err(LightClientError::TrustedSetMismatch { .. })
        ));
        let mut client = LightClient::from_trusted_header(h3, set_of(&keys(3..8))).unwrap();
        for b in &blocks[3..] {
            client.verify(b).unwrap();
        }
        assert_eq!(client.height(), Height::new(6));
    }

    #[test]
    fn retention_drops_oldest_headers() {
        let (genesis_set, blocks) = scenario();
        let mut client = LightClient::from_genesis(chain(), genesis_set, Timestamp::new(1000))
            .with_retained_headers(2);
        for b in &blocks {
            client.verify(b).unwrap();
        }
        assert!(matches!(
            client.header(Height::new(4)),
            Err(LightClientError::HeaderNotVerified { .. })
        ));
        assert!(client.header(Height::new(5)).is_ok());
    }
}
