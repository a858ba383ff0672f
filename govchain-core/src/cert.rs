//! Votes and commit certificates.
//!
//! A validator commits to a block by signing the canonical [`VoteMessage`]
//! `(kind, chain id, height, round, block hash)` under the `Vote` hashing
//! domain. A [`CommitCertificate`] gathers precommit signatures of more than
//! two thirds of the voting power for one block; it is what a light client
//! checks (Tendermint, arXiv:1807.04938, Algorithm 1 line 49: a value is
//! decided on `2f + 1` precommits for it in one round).

use crate::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use crate::crypto::{
    verify_batch_sequential, BatchItem, CryptoSuite, PublicKey, Signature, SignatureAlgorithm,
    Signer,
};
use crate::hash::{Domain, Hash};
use crate::types::{ChainId, Height, Round};
use crate::validator::{KeyRejection, ValidatorSet, MAX_VALIDATORS};

/// Which step of consensus a vote belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    /// A prevote (Algorithm 1, lines 22–35).
    Prevote = 1,
    /// A precommit (Algorithm 1, lines 36–43); certificates hold these.
    Precommit = 2,
}

impl Encode for VoteKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for VoteKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(VoteKind::Prevote),
            2 => Ok(VoteKind::Precommit),
            tag => Err(DecodeError::InvalidTag {
                what: "vote kind",
                tag,
            }),
        }
    }
}

/// The canonical message a validator signs when it votes. `block_hash` is
/// `None` for a vote for nil.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoteMessage {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The chain voted on.
    pub chain_id: ChainId,
    /// The height voted on.
    pub height: Height,
    /// The round voted in.
    pub round: Round,
    /// The block voted for, or `None` for nil.
    pub block_hash: Option<Hash>,
}

impl VoteMessage {
    /// The 32-byte digest that is signed, under `suite`: the suite of the
    /// chain voted on, which is the suite of every key of its validator set
    /// ([`ValidatorSet::suite`]).
    pub fn signing_digest(&self, suite: CryptoSuite) -> Hash {
        suite.hash(Domain::Vote, &self.to_bytes())
    }

    /// Signs this vote, over the digest under the signer key's suite.
    pub fn sign(&self, signer: &dyn Signer) -> Signature {
        let suite = CryptoSuite::of_key(&signer.public_key());
        signer.sign(self.signing_digest(suite).as_bytes())
    }
}

impl Encode for VoteMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.kind.encode_to(out);
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.round.encode_to(out);
        self.block_hash.encode_to(out);
    }
}

impl Decode for VoteMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VoteMessage {
            kind: VoteKind::decode_from(r)?,
            chain_id: ChainId::decode_from(r)?,
            height: Height::decode_from(r)?,
            round: Round::decode_from(r)?,
            block_hash: Option::decode_from(r)?,
        })
    }
}

/// One validator's precommit signature in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSignature {
    /// The signing validator.
    pub validator: PublicKey,
    /// Its signature over the certificate's precommit message.
    pub signature: Signature,
}

impl Encode for CommitSignature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.validator.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for CommitSignature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitSignature {
            validator: PublicKey::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// Precommit signatures of more than two thirds of the voting power for one
/// block at one height and round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitCertificate {
    /// The chain.
    pub chain_id: ChainId,
    /// The committed height.
    pub height: Height,
    /// The round in which the block was committed.
    pub round: Round,
    /// The committed block's hash.
    pub block_hash: Hash,
    /// Signatures, one per member, in ascending order of the member each
    /// signs for (a member signs with its key or, during a rotation overlap,
    /// with its rotated-out key: see [`ValidatorSet::may_sign`]).
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Certificate for another chain.
    #[error("certificate is for chain {got}, expected {expected}")]
    WrongChain {
        /// Expected chain.
        expected: ChainId,
        /// Chain in the certificate.
        got: ChainId,
    },
    /// Certificate for another block or height.
    #[error("certificate is for block {got_hash} at {got_height}, expected {expected_hash} at {expected_height}")]
    WrongBlock {
        /// Expected height.
        expected_height: Height,
        /// Expected block hash.
        expected_hash: Hash,
        /// Height in the certificate.
        got_height: Height,
        /// Block hash in the certificate.
        got_hash: Hash,
    },
    /// A signer that is not in the validator set.
    #[error("signer {signer} is not a member of the validator set")]
    NonMemberSigner {
        /// The stranger's key.
        signer: PublicKey,
    },
    /// A member whose key may not sign at the certificate's height: it
    /// expired, or was reported compromised (see
    /// [`KeyWindow`](crate::validator::KeyWindow)).
    #[error("signer {signer} may not sign at height {height}: {reason}")]
    KeyOutsideWindow {
        /// The signer.
        signer: PublicKey,
        /// The certificate's height.
        height: Height,
        /// Why its key may not sign there.
        reason: KeyRejection,
    },
    /// A signature of another algorithm than its signer's key.
    #[error("signer {signer} is {}, its signature is {}", signer.algorithm().name(), signature.name())]
    SignatureAlgorithmMismatch {
        /// The signer.
        signer: PublicKey,
        /// The signature's algorithm.
        signature: SignatureAlgorithm,
    },
    /// The same validator signed twice.
    #[error("validator {signer} signed twice")]
    DuplicateSigner {
        /// The repeated key.
        signer: PublicKey,
    },
    /// Signatures are not in ascending key order (not canonical).
    #[error("signatures are not in ascending validator order")]
    UnsortedSigners,
    /// The signers hold two thirds of the power or less.
    #[error("signers hold {signed} of {total} voting power; more than 2/3 is required")]
    InsufficientPower {
        /// Power that signed.
        signed: u64,
        /// Total power of the set.
        total: u64,
    },
    /// One or more signatures do not verify.
    #[error("invalid signatures from {signers:?}")]
    InvalidSignatures {
        /// Keys whose signatures failed.
        signers: Vec<PublicKey>,
    },
}

impl CommitCertificate {
    /// The precommit message every signature in this certificate covers.
    pub fn vote_message(&self) -> VoteMessage {
        VoteMessage {
            kind: VoteKind::Precommit,
            chain_id: self.chain_id.clone(),
            height: self.height,
            round: self.round,
            block_hash: Some(self.block_hash),
        }
    }

    /// Decodes a certificate from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(
            bytes,
            128 + MAX_VALIDATORS * (PublicKey::MAX_ENCODED_LEN + Signature::ENCODED_LEN),
        )
    }

    /// Checks that this certificate commits `block_hash` at `height` on
    /// `chain_id` under `validators`: every signer is a distinct member, in
    /// canonical order, whose key may sign at `height` (its
    /// [`KeyWindow`](crate::validator::KeyWindow)), together holding more
    /// than two thirds of the set's total power, and every signature
    /// verifies. Cheap structural checks run before any
    /// signature is verified, and the signatures are verified as one batch.
    ///
    /// The signed digest is taken under the set's suite
    /// ([`ValidatorSet::suite`]); callers that verify a header check that
    /// the header's suite is the set's (the light client does).
    pub fn verify(
        &self,
        chain_id: &ChainId,
        height: Height,
        block_hash: &Hash,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if &self.chain_id != chain_id {
            return Err(CertificateError::WrongChain {
                expected: chain_id.clone(),
                got: self.chain_id.clone(),
            });
        }
        if self.height != height || &self.block_hash != block_hash {
            return Err(CertificateError::WrongBlock {
                expected_height: height,
                expected_hash: *block_hash,
                got_height: self.height,
                got_hash: self.block_hash,
            });
        }
        let signed = signer_power(&self.signatures, validators, height)?;
        if !validators.is_quorum(signed) {
            return Err(CertificateError::InsufficientPower {
                signed,
                total: validators.total_power(),
            });
        }
        let digest = self.vote_message().signing_digest(validators.suite());
        let items: Vec<BatchItem<'_>> = self
            .signatures
            .iter()
            .map(|s| BatchItem::new(&s.validator, digest.as_bytes(), &s.signature))
            .collect();
        // Certificates hold at most a few hundred signatures: one batch on
        // this thread is faster than a hop to the rayon pool.
        verify_batch_sequential(&items).map_err(|e| CertificateError::InvalidSignatures {
            signers: e
                .invalid_indexes()
                .iter()
                .filter_map(|&i| self.signatures.get(i).map(|s| s.validator.clone()))
                .collect(),
        })
    }
}

impl Encode for CommitCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.round.encode_to(out);
        self.block_hash.encode_to(out);
        encode_seq(&self.signatures, out);
    }
}

impl Decode for CommitCertificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitCertificate {
            chain_id: ChainId::decode_from(r)?,
            height: Height::decode_from(r)?,
            round: Round::decode_from(r)?,
            block_hash: Hash::decode_from(r)?,
            signatures: r.seq("certificate signatures", MAX_VALIDATORS)?,
        })
    }
}

/// Checks the signers of a certificate at `height` under `validators`
/// without verifying a signature: each signs for a distinct member (with
/// its key or, during a rotation overlap, its rotated-out key), inside its
/// key window, in ascending member order. Returns the power they hold.
pub fn signer_power(
    signatures: &[CommitSignature],
    validators: &ValidatorSet,
    height: Height,
) -> Result<u64, CertificateError> {
    let mut signed: u64 = 0;
    let mut previous: Option<usize> = None;
    for sig in signatures {
        let (index, validator) = validators
            .may_sign(&sig.validator, height)
            .map_err(|reason| match reason {
                KeyRejection::NotMember => CertificateError::NonMemberSigner {
                    signer: sig.validator.clone(),
                },
                reason => CertificateError::KeyOutsideWindow {
                    signer: sig.validator.clone(),
                    height,
                    reason,
                },
            })?;
        match previous {
            Some(p) if p == index => {
                return Err(CertificateError::DuplicateSigner {
                    signer: sig.validator.clone(),
                })
            }
            Some(p) if p > index => return Err(CertificateError::UnsortedSigners),
            _ => {}
        }
        if sig.signature.algorithm() != sig.validator.algorithm() {
            return Err(CertificateError::SignatureAlgorithmMismatch {
                signer: sig.validator.clone(),
                signature: sig.signature.algorithm(),
            });
        }
        previous = Some(index);
        signed = signed.saturating_add(validator.power);
    }
    Ok(signed)
}

/// Puts `signatures` in the canonical order of a certificate at `height`
/// under `validators`: signers that may not sign there are dropped, the
/// rest are ordered by the member they sign for, and a member that signed
/// with both its key and its rotated-out key keeps one signature (its
/// current key's). Returns them with the power they hold.
pub fn canonical_signatures(
    signatures: Vec<CommitSignature>,
    validators: &ValidatorSet,
    height: Height,
) -> (Vec<CommitSignature>, u64) {
    let mut ranked: Vec<(usize, bool, u64, CommitSignature)> = signatures
        .into_iter()
        .filter_map(|s| {
            let (index, member) = validators.may_sign(&s.validator, height).ok()?;
            let rotated_out = member.public_key != s.validator;
            Some((index, rotated_out, member.power, s))
        })
        .collect();
    ranked.sort_by_key(|r| (r.0, r.1));
    ranked.dedup_by_key(|r| r.0);
    let power = ranked.iter().map(|r| r.2).fold(0u64, u64::saturating_add);
    (ranked.into_iter().map(|r| r.3).collect(), power)
}

/// Builds a certificate by having each of `signers` sign the precommit for
/// `block_hash`. Signatures are placed in key order, which is the canonical
/// order unless a signer is a rotated-out key (then re-order them with
/// [`canonical_signatures`]). Intended for
/// tests, examples and simulators; engines assemble certificates from the
/// precommits they received.
pub fn certify(
    chain_id: &ChainId,
    height: Height,
    round: Round,
    block_hash: Hash,
    signers: &[&dyn Signer],
) -> CommitCertificate {
    let vote = VoteMessage {
        kind: VoteKind::Precommit,
        chain_id: chain_id.clone(),
        height,
        round,
        block_hash: Some(block_hash),
    };
    let mut signatures: Vec<CommitSignature> = signers
        .iter()
        .map(|s| CommitSignature {
            validator: s.public_key(),
            signature: vote.sign(*s),
        })
        .collect();
    signatures.sort_by(|a, b| a.validator.cmp(&b.validator));
    CommitCertificate {
        chain_id: chain_id.clone(),
        height,
        round,
        block_hash,
        signatures,
    }
}
