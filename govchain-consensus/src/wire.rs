//! Canonical wire and write-ahead-log formats of the Tendermint engine.
//!
//! Every type here encodes with govchain-core's [codec](govchain_core::codec):
//! one byte form per value, strict decoding with explicit size limits. The
//! signed statements ([`SignedVote`], [`SignedProposal`]) are the objects a
//! validator is accountable for; two of them with the same slot and different
//! contents are [`Evidence`](crate::Evidence).

use govchain_core::block::{Block, MAX_BLOCK_ENCODED_LEN};
use govchain_core::cert::{
    canonical_signatures, signer_power, CertificateError, CommitCertificate, CommitSignature,
    VoteKind, VoteMessage,
};
use govchain_core::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::{
    verify, verify_batch_sequential, BatchItem, CryptoSuite, PublicKey, Signature, Signer,
};
use govchain_core::hash::{Domain, Hash};
use govchain_core::types::{ChainId, Height, Round};
use govchain_core::validator::{ValidatorSet, MAX_VALIDATORS};

/// A vote with its signer and signature. The signature covers
/// [`VoteMessage::signing_digest`], so precommits for a block are directly
/// the signatures of its [`CommitCertificate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    /// The signed statement.
    pub vote: VoteMessage,
    /// The signing validator.
    pub validator: PublicKey,
    /// Signature over `vote.signing_digest()`.
    pub signature: Signature,
}

impl SignedVote {
    /// Signs `vote` with `signer`.
    pub fn sign(vote: VoteMessage, signer: &dyn Signer) -> Self {
        let signature = vote.sign(signer);
        SignedVote {
            vote,
            validator: signer.public_key(),
            signature,
        }
    }

    /// Whether the signature verifies.
    pub fn verify_signature(&self) -> bool {
        verify(
            &self.validator,
            self.vote
                .signing_digest(CryptoSuite::of_key(&self.validator))
                .as_bytes(),
            &self.signature,
        )
        .is_ok()
    }
}

impl Encode for SignedVote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.vote.encode_to(out);
        self.validator.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedVote {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedVote {
            vote: VoteMessage::decode_from(r)?,
            validator: PublicKey::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// A proposed block for one height and round, signed by the round's
/// proposer (Algorithm 1, line 19: `broadcast ⟨PROPOSAL, h, r, v, vr⟩`).
///
/// The signer is the *round's* proposer, which is not always the block's
/// `header.proposer`: when re-proposing a valid value from an earlier round
/// (line 16), a proposer broadcasts a block another validator built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProposal {
    /// The chain.
    pub chain_id: ChainId,
    /// The round's proposer, who signs.
    pub proposer: PublicKey,
    /// The round (the height is the block's).
    pub round: Round,
    /// The proof-of-lock round `vr`, or `None` for `-1`.
    pub pol_round: Option<Round>,
    /// The proposed block; `block.header.proposer` is the signer.
    pub block: Block,
    /// The proposer's signature over [`SignedProposal::signing_digest`].
    pub signature: Signature,
}

impl SignedProposal {
    /// The proposal's height (the block's height).
    pub fn height(&self) -> Height {
        self.block.header.height
    }

    /// The signer (the round's proposer).
    pub fn proposer(&self) -> &PublicKey {
        &self.proposer
    }

    /// The digest the proposer signs: chain, height, round, `vr` and block
    /// hash, under [`Domain::Proposal`] and the proposer key's suite.
    pub fn signing_digest(&self) -> Hash {
        proposal_digest(
            CryptoSuite::of_key(&self.proposer),
            &self.chain_id,
            self.height(),
            self.round,
            self.pol_round,
            &self.block.hash(),
        )
    }

    /// Signs a proposal as `signer`.
    pub fn sign(
        chain_id: ChainId,
        round: Round,
        pol_round: Option<Round>,
        block: Block,
        signer: &dyn Signer,
    ) -> Self {
        let digest = proposal_digest(
            CryptoSuite::of_key(&signer.public_key()),
            &chain_id,
            block.header.height,
            round,
            pol_round,
            &block.hash(),
        );
        SignedProposal {
            chain_id,
            proposer: signer.public_key(),
            round,
            pol_round,
            block,
            signature: signer.sign(digest.as_bytes()),
        }
    }

    /// Whether the signature verifies for `proposer`.
    pub fn verify_signature(&self) -> bool {
        verify(
            self.proposer(),
            self.signing_digest().as_bytes(),
            &self.signature,
        )
        .is_ok()
    }
}

/// The proposal digest, under the suite of the proposer's key (a member of
/// the chain's validator set, so of the chain's suite).
fn proposal_digest(
    suite: CryptoSuite,
    chain_id: &ChainId,
    height: Height,
    round: Round,
    pol_round: Option<Round>,
    block_hash: &Hash,
) -> Hash {
    let mut bytes = Vec::with_capacity(96);
    chain_id.encode_to(&mut bytes);
    height.encode_to(&mut bytes);
    round.encode_to(&mut bytes);
    pol_round.encode_to(&mut bytes);
    block_hash.encode_to(&mut bytes);
    suite.hash(Domain::Proposal, &bytes)
}

impl Encode for SignedProposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.proposer.encode_to(out);
        self.round.encode_to(out);
        self.pol_round.encode_to(out);
        self.block.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedProposal {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedProposal {
            chain_id: ChainId::decode_from(r)?,
            proposer: PublicKey::decode_from(r)?,
            round: Round::decode_from(r)?,
            pol_round: Option::decode_from(r)?,
            block: Block::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// A decided block with the certificate that commits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBlock {
    /// The block.
    pub block: Block,
    /// Precommits of more than two thirds of the block's signing set.
    pub certificate: CommitCertificate,
}

impl Encode for DecidedBlock {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.block.encode_to(out);
        self.certificate.encode_to(out);
    }
}

impl Decode for DecidedBlock {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(DecidedBlock {
            block: Block::decode_from(r)?,
            certificate: CommitCertificate::decode_from(r)?,
        })
    }
}

/// A *polka*: prevotes of more than two thirds of the voting power for one
/// block in one round (Algorithm 1, lines 28 and 36:
/// `2f + 1 ⟨PREVOTE, h, vr, id(v)⟩`), gathered into one self-contained
/// object.
///
/// Why a certificate and not the individual votes: a Byzantine validator may
/// sign a prevote for `v` *and* one for nil in the same round. Each node
/// counts only the first vote it receives per validator and slot (the
/// Malachite vote keeper rejects the conflicting one as equivocation), so
/// a polka that one honest node saw may be impossible to rebuild from
/// relayed single votes at another honest node that received the
/// conflicting vote first. The paper counts *messages* (a faulty process's
/// prevote for `v` counts towards a polka for `v` whatever else it signed),
/// and its gossip property (§III) delivers both; a certificate carries
/// exactly the messages that formed the polka, so every honest node can
/// verify and use it regardless of what it saw first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolkaCertificate {
    /// The chain.
    pub chain_id: ChainId,
    /// The height.
    pub height: Height,
    /// The round of the prevotes (`vr` of a re-proposal).
    pub round: Round,
    /// The block prevoted for.
    pub block_hash: Hash,
    /// Prevote signatures, in strictly ascending validator-key order.
    pub signatures: Vec<CommitSignature>,
}

impl PolkaCertificate {
    /// The prevote every signature covers.
    pub fn vote_message(&self) -> VoteMessage {
        VoteMessage {
            kind: VoteKind::Prevote,
            chain_id: self.chain_id.clone(),
            height: self.height,
            round: self.round,
            block_hash: Some(self.block_hash),
        }
    }

    /// Builds a certificate from signed votes, keeping the prevotes that
    /// match `(chain_id, height, round, block_hash)` by signers that may
    /// sign at `height` under `validators`, one per member, in canonical
    /// order ([`canonical_signatures`]). Returns it with the power it holds
    /// (it is not checked for a quorum).
    pub fn from_votes<'a>(
        chain_id: &ChainId,
        height: Height,
        round: Round,
        block_hash: Hash,
        validators: &ValidatorSet,
        votes: impl IntoIterator<Item = &'a SignedVote>,
    ) -> (Self, u64) {
        let signatures: Vec<CommitSignature> = votes
            .into_iter()
            .filter(|v| {
                v.vote.kind == VoteKind::Prevote
                    && &v.vote.chain_id == chain_id
                    && v.vote.height == height
                    && v.vote.round == round
                    && v.vote.block_hash == Some(block_hash)
            })
            .map(|v| CommitSignature {
                validator: v.validator.clone(),
                signature: v.signature,
            })
            .collect();
        let (signatures, power) = canonical_signatures(signatures, validators, height);
        let certificate = PolkaCertificate {
            chain_id: chain_id.clone(),
            height,
            round,
            block_hash,
            signatures,
        };
        (certificate, power)
    }

    /// Checks the certificate against `validators` (the set of its
    /// height): distinct members in canonical order, each key inside its
    /// window ([`signer_power`]), holding more than two thirds of the
    /// power, and every signature valid. Structural checks run first; the
    /// signatures are then verified as one batch
    /// ([`verify_batch_sequential`]), which accepts exactly the signatures
    /// single verification accepts.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), CertificateError> {
        let signed = signer_power(&self.signatures, validators, self.height)?;
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
        verify_batch_sequential(&items).map_err(|e| CertificateError::InvalidSignatures {
            signers: e
                .invalid_indexes()
                .iter()
                .filter_map(|&i| self.signatures.get(i).map(|s| s.validator.clone()))
                .collect(),
        })
    }
}

impl Encode for PolkaCertificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.round.encode_to(out);
        self.block_hash.encode_to(out);
        encode_seq(&self.signatures, out);
    }
}

impl Decode for PolkaCertificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PolkaCertificate {
            chain_id: ChainId::decode_from(r)?,
            height: Height::decode_from(r)?,
            round: Round::decode_from(r)?,
            block_hash: Hash::decode_from(r)?,
            signatures: r.seq("polka signatures", MAX_VALIDATORS)?,
        })
    }
}

/// A Tendermint message between validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A signed proposal with its block.
    Proposal(SignedProposal),
    /// A signed prevote or precommit.
    Vote(SignedVote),
    /// "Send me decided blocks from `from` on" (catch-up).
    SyncRequest {
        /// The chain.
        chain_id: ChainId,
        /// First height wanted.
        from: Height,
    },
    /// A decided block answering a [`Message::SyncRequest`] or a stale
    /// message.
    Decided(DecidedBlock),
    /// A polka for a round of the current height, so that peers that
    /// counted an equivocator's conflicting vote can still act on it
    /// (Algorithm 1, line 28).
    Polka(PolkaCertificate),
}

impl Message {
    /// Decodes a message of at most `limit` bytes (further capped by the
    /// block size limit).
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        decode_exact(bytes, limit.min(MAX_BLOCK_ENCODED_LEN))
    }
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Proposal(p) => {
                out.push(1);
                p.encode_to(out);
            }
            Message::Vote(v) => {
                out.push(2);
                v.encode_to(out);
            }
            Message::SyncRequest { chain_id, from } => {
                out.push(3);
                chain_id.encode_to(out);
                from.encode_to(out);
            }
            Message::Decided(d) => {
                out.push(4);
                d.encode_to(out);
            }
            Message::Polka(p) => {
                out.push(5);
                p.encode_to(out);
            }
        }
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Message::Proposal(SignedProposal::decode_from(r)?)),
            2 => Ok(Message::Vote(SignedVote::decode_from(r)?)),
            3 => Ok(Message::SyncRequest {
                chain_id: ChainId::decode_from(r)?,
                from: Height::decode_from(r)?,
            }),
            4 => Ok(Message::Decided(DecidedBlock::decode_from(r)?)),
            5 => Ok(Message::Polka(PolkaCertificate::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "tendermint message",
                tag,
            }),
        }
    }
}

/// One write-ahead-log record of the Tendermint engine. The log holds every
/// input that changed consensus state at the current height (so a restart
/// replays to the same state, including locks), the node's own signed
/// statements, and decided blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WalRecord {
    /// A proposal (received, or our own) accepted into the driver.
    Proposal(SignedProposal),
    /// A vote (received, or our own) accepted into the driver.
    Vote(SignedVote),
    /// A timeout that fired.
    Timeout {
        height: Height,
        round: Round,
        kind: TimeoutKind,
    },
    /// A decided block.
    Decided(DecidedBlock),
    /// A verified polka certificate accepted into the driver.
    Polka(PolkaCertificate),
}

/// The kind of a round timeout (Algorithm 1, lines 57–65).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeoutKind {
    Propose = 1,
    Prevote = 2,
    Precommit = 3,
}

impl Encode for WalRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            WalRecord::Proposal(p) => {
                out.push(1);
                p.encode_to(out);
            }
            WalRecord::Vote(v) => {
                out.push(2);
                v.encode_to(out);
            }
            WalRecord::Timeout {
                height,
                round,
                kind,
            } => {
                out.push(3);
                height.encode_to(out);
                round.encode_to(out);
                out.push(*kind as u8);
            }
            WalRecord::Decided(d) => {
                out.push(4);
                d.encode_to(out);
            }
            WalRecord::Polka(p) => {
                out.push(5);
                p.encode_to(out);
            }
        }
    }
}

impl Decode for WalRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(WalRecord::Proposal(SignedProposal::decode_from(r)?)),
            2 => Ok(WalRecord::Vote(SignedVote::decode_from(r)?)),
            3 => {
                let height = Height::decode_from(r)?;
                let round = Round::decode_from(r)?;
                let kind = match r.u8()? {
                    1 => TimeoutKind::Propose,
                    2 => TimeoutKind::Prevote,
                    3 => TimeoutKind::Precommit,
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "timeout kind",
                            tag,
                        })
                    }
                };
                Ok(WalRecord::Timeout {
                    height,
                    round,
                    kind,
                })
            }
            4 => Ok(WalRecord::Decided(DecidedBlock::decode_from(r)?)),
            5 => Ok(WalRecord::Polka(PolkaCertificate::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "wal record",
                tag,
            }),
        }
    }
}

/// The slot a vote occupies: a validator may sign one vote per slot.
pub(crate) fn vote_slot(v: &VoteMessage) -> (Height, Round, VoteKind) {
    (v.height, v.round, v.kind)
}
