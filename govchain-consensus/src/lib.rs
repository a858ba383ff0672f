//! Sans-IO consensus for govchain: one Consensus trait, Tendermint BFT and Raft engines, and a deterministic simulator.
//!
//! # Overview
//!
//! An engine is a deterministic state machine behind the [`Consensus`]
//! trait. The host (a node, a test, the [simulator](sim)) feeds it time
//! ([`Consensus::tick`]), network messages ([`Consensus::step`]) and blocks
//! it asked for ([`Consensus::propose`]); each call returns one batch of
//! [`Effects`]. The engine never touches a clock, a socket, a disk, a thread
//! or OS randomness, and never iterates a hash map, so the same inputs give
//! the same effects, byte for byte.
//!
//! - [`tendermint::Tendermint`] — Byzantine fault tolerant (`f` of
//!   `n = 3f + 1` by voting power), one-block finality. The round logic is
//!   the Malachite core driver (`arc-malachitebft-core-driver`, pinned
//!   `=0.8.2`), an implementation of Buchman, Kwon and Milosevic, "The latest
//!   gossip on BFT consensus" (arXiv:1807.04938), Algorithm 1. This crate
//!   adds signing, the write-ahead log, timeouts from ticks, gossip (with
//!   polkas relayed as [`wire::PolkaCertificate`]s), catch-up and
//!   equivocation evidence.
//! - [`raft::Raft`] — crash fault tolerant (a majority of the voters must be
//!   up), for side chains whose members trust each other. The replication
//!   protocol is tikv/raft-rs 0.7 (`RawNode`), an implementation of Ongaro
//!   and Ousterhout, "In Search of an Understandable Consensus Algorithm"
//!   (2014), with joint-consensus membership changes. Peers exchange
//!   govchain's canonical types, never protobuf; decided blocks carry a
//!   majority certificate ([`raft::verify_raft_certificate`] says exactly
//!   what it proves and what it does not, compared with BFT).
//! - [`sim`] — a seeded, single-threaded simulator of many nodes with network,
//!   crash and Byzantine faults that checks safety after every step and
//!   liveness after the faults stop; it drives both engines.
//!
//! # The host's duties, in order
//!
//! For every [`Effects`] batch an engine returns, the host must:
//! 1. **persist** every record of [`Effects::persist`], in order, durably
//!    (fsync) — *before* anything else. A crash during this step may lose
//!    any suffix of the batch's records, never a record in the middle;
//! 2. **send** [`Effects::send`];
//! 3. **apply** [`Effects::decided`] (store and execute the blocks; a
//!    restarted engine may re-announce a block it already decided — treat
//!    decided blocks as idempotent by height), report [`Effects::evidence`],
//!    judge each block of [`Effects::validate`] and answer with
//!    [`Consensus::block_validated`], and answer
//!    [`Effects::propose_request`] with [`Consensus::propose`].
//!
//! After a crash the host rebuilds the engine from the persisted records
//! alone ([`tendermint::Tendermint::restore`], [`raft::Raft::restore`]). Because signed
//! votes are persisted before they are sent, a restarted validator never
//! signs two different votes for one height, round and step.
//!
//! # Example
//!
//! A single validator decides a block:
//!
//! ```
//! use std::sync::Arc;
//! use govchain_consensus::{Consensus, tendermint::{Tendermint, TendermintConfig}};
//! use govchain_core::{crypto::{SecretKey, Signer}, types::{ChainId, Timestamp},
//!     validator::{Validator, ValidatorSet}};
//!
//! let key = Arc::new(SecretKey::from_seed(&[7; 32]));
//! let set = ValidatorSet::new(vec![Validator { public_key: key.public_key(), power: 1 }])?;
//! let config = TendermintConfig::new(ChainId::new("demo")?, set);
//! let (mut engine, effects) = Tendermint::restore(config, key, &[], Timestamp::new(0))?;
//! let request = effects.propose_request.ok_or("no request")?;
//! let effects = engine.propose(request.block(Timestamp::new(1), vec![]))?;
//! assert_eq!(effects.decided.len(), 1);
//! let decided = &effects.decided[0];
//! assert_eq!(decided.block.header.height.get(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! This crate has no optional features.

mod error;
pub mod raft;
pub mod sim;
pub mod tendermint;
pub mod wire;

pub use error::{ConsensusError, InvalidBlockReason, RaftCertificateError};
pub use wire::{DecidedBlock, SignedProposal, SignedVote};

use govchain_core::block::{tx_root_of, Block, BlockHeader};
use govchain_core::crypto::CryptoSuite;
use govchain_core::crypto::PublicKey;
use govchain_core::hash::Hash;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};

/// A sans-IO consensus engine.
///
/// # Contract
/// - **Determinism.** Effects depend only on the sequence of calls and their
///   arguments (and the persisted records an engine was restored from).
/// - **Durability.** Records in [`Effects::persist`] must be durable before
///   any message of the same batch is sent and before the next call; see the
///   [crate docs](crate#the-hosts-duties-in-order).
/// - **Errors.** An `Err` from [`Consensus::step`] means the message was
///   refused (malformed, forged, out of bounds); consensus state is
///   unchanged, though the engine may remember that the sender is ahead and
///   ask it for blocks on a later tick. Errors never mean the engine is
///   broken.
pub trait Consensus {
    /// Advances the engine's notion of time to `now` (milliseconds). Time is
    /// only used to fire timeouts; a `now` earlier than a previous one is
    /// treated as no progress.
    fn tick(&mut self, now: Timestamp) -> Effects;

    /// Handles one message received from the authenticated peer `from`.
    fn step(&mut self, from: &PublicKey, message: &[u8]) -> Result<Effects, ConsensusError>;

    /// Supplies the block asked for by the last [`Effects::propose_request`].
    fn propose(&mut self, block: Block) -> Result<Effects, ConsensusError>;

    /// The height being decided (one more than the last decided height).
    fn height(&self) -> Height;

    /// A decided block held by the engine, if any.
    fn decided_block(&self, height: Height) -> Option<&DecidedBlock>;

    /// Answers a block of [`Effects::validate`]: `valid` is the
    /// application's verdict (signatures, nonces, `check_tx`, execution
    /// reproducing the header's state root). The engine votes for the block
    /// only once it is judged valid, and votes nil otherwise (line 22–27 of
    /// Algorithm 1, `valid(v)`).
    ///
    /// The verdict must be deterministic: every honest node must reach the
    /// same verdict for the same block on the same committed parent. An
    /// answer for a block the engine did not ask about, or no longer cares
    /// about (it moved to another height), is ignored. Engines that do not
    /// ask (Raft, or Tendermint without
    /// [`app_validation`](tendermint::TendermintConfig::app_validation)) ignore it.
    fn block_validated(&mut self, block_hash: Hash, valid: bool) -> Effects {
        let _ = (block_hash, valid);
        Effects::default()
    }

    /// Hands the engine a decided block for its current height that the
    /// host fetched by block sync from a peer's store. The engine trusts it
    /// only if its certificate verifies against the validator set scheduled
    /// for that height and the block is structurally valid; it then commits
    /// it exactly as a decision of its own (a `Decided` record to persist,
    /// [`Effects::decided`] to apply) and moves to the next height.
    ///
    /// Errors: [`ConsensusError::SyncUnsupported`] for engines that catch up
    /// by other means (Raft replicates its log),
    /// [`ConsensusError::UnexpectedSyncHeight`] for a block that is not for
    /// the current height, and the certificate and block errors of
    /// [`Consensus::step`]. An error changes nothing.
    fn sync_decided(&mut self, decided: DecidedBlock) -> Result<Effects, ConsensusError> {
        let _ = decided;
        Err(ConsensusError::SyncUnsupported)
    }

    /// The records from which [`restore`](tendermint::Tendermint::restore)
    /// rebuilds the engine's current state, if the engine can compact its
    /// log: a host that has applied every decided block may atomically
    /// replace its whole persisted log with exactly these records (after
    /// persisting every record of effects it has received). `None` means the
    /// log cannot be compacted.
    fn compacted_log(&self) -> Option<&[Vec<u8>]> {
        None
    }
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Every peer of the chain.
    All,
    /// One peer.
    One(PublicKey),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The destination.
    pub to: Recipient,
    /// The canonical encoding of the message.
    pub bytes: Vec<u8>,
}

/// Proof that a validator signed two conflicting statements.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// Two votes for the same height, round and step with different values.
    DoubleVote {
        /// The vote seen first.
        first: Box<SignedVote>,
        /// The conflicting vote.
        second: Box<SignedVote>,
    },
    /// Two votes for the same height, round and step with different values,
    /// signed by two different keys of one member: its key and a key it
    /// rotated from, which signs for it during the rotation overlap
    /// (`ValidatorSet::with_rotation`), or two such rotated-out keys. The
    /// member's power counts once whichever key signs, so this is the
    /// member's equivocation.
    MemberDoubleVote {
        /// The member (its key in the set).
        member: PublicKey,
        /// The vote seen first.
        first: Box<SignedVote>,
        /// The conflicting vote, by another key of the member.
        second: Box<SignedVote>,
    },
    /// Two different proposals for the same height and round.
    DoubleProposal {
        /// The proposal seen first.
        first: Box<SignedProposal>,
        /// The conflicting proposal.
        second: Box<SignedProposal>,
    },
}

impl Evidence {
    /// The validator that equivocated.
    pub fn offender(&self) -> &PublicKey {
        match self {
            Evidence::DoubleVote { first, .. } => &first.validator,
            Evidence::MemberDoubleVote { member, .. } => member,
            Evidence::DoubleProposal { first, .. } => first.proposer(),
        }
    }

    /// Checks the evidence on its own: same signer, same slot, different
    /// contents, and both signatures valid. For
    /// [`MemberDoubleVote`](Evidence::MemberDoubleVote) the two signers are
    /// different keys; that both sign for `member` needs the validator set:
    /// [`verify_in`](Self::verify_in).
    pub fn verify(&self) -> bool {
        let conflicting = |first: &SignedVote, second: &SignedVote| {
            first.vote.chain_id == second.vote.chain_id
                && wire::vote_slot(&first.vote) == wire::vote_slot(&second.vote)
                && first.vote.block_hash != second.vote.block_hash
                && first.verify_signature()
                && second.verify_signature()
        };
        match self {
            Evidence::DoubleVote { first, second } => {
                first.validator == second.validator && conflicting(first, second)
            }
            Evidence::MemberDoubleVote { first, second, .. } => {
                first.validator != second.validator && conflicting(first, second)
            }
            Evidence::DoubleProposal { first, second } => {
                first.proposer() == second.proposer()
                    && first.chain_id == second.chain_id
                    && first.height() == second.height()
                    && first.round == second.round
                    && first.signing_digest() != second.signing_digest()
                    && first.verify_signature()
                    && second.verify_signature()
            }
        }
    }
}

impl Evidence {
    /// [`verify`](Self::verify), and that the offender's signatures count
    /// in `set`, the validator set of the evidence's height: for
    /// [`MemberDoubleVote`](Evidence::MemberDoubleVote), both keys may sign
    /// for `member` at that height.
    pub fn verify_in(&self, set: &govchain_core::validator::ValidatorSet) -> bool {
        let signs_for = |key: &PublicKey, height, member: &PublicKey| {
            set.may_sign(key, height)
                .is_ok_and(|(_, v)| &v.public_key == member)
        };
        self.verify()
            && match self {
                Evidence::DoubleVote { first, .. } => {
                    set.may_sign(&first.validator, first.vote.height).is_ok()
                }
                Evidence::MemberDoubleVote {
                    member,
                    first,
                    second,
                } => {
                    signs_for(&first.validator, first.vote.height, member)
                        && signs_for(&second.validator, second.vote.height, member)
                }
                Evidence::DoubleProposal { first, .. } => {
                    set.may_sign(first.proposer(), first.height()).is_ok()
                }
            }
    }
}

/// What the engine asks of a proposer: a block extending `parent` at
/// `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposeRequest {
    /// The chain.
    pub chain_id: ChainId,
    /// The height to propose.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// Hash of the block at `height - 1` ([`Hash::ZERO`] at height 1).
    pub parent_hash: Hash,
    /// Time of the parent (or genesis); the block's time must not be earlier.
    pub parent_time: Timestamp,
    /// Hash of the set that signs `height`.
    pub validator_set_hash: Hash,
    /// Hash of the set that signs `height + 1`.
    pub next_validator_set_hash: Hash,
    /// This node's key.
    pub proposer: PublicKey,
}

impl ProposeRequest {
    /// A block answering this request with `transactions`. The state and
    /// history roots are left zero: a host that executes blocks fills them
    /// in (the engine checks the header fields it knows, not those).
    pub fn block(&self, time: Timestamp, transactions: Vec<Transaction>) -> Block {
        // The chain's suite is its validators' (the proposer is one).
        let suite = CryptoSuite::of_key(&self.proposer);
        let header = BlockHeader {
            suite,
            chain_id: self.chain_id.clone(),
            height: self.height,
            time: time.max(self.parent_time),
            parent_hash: self.parent_hash,
            tx_root: tx_root_of(suite, &transactions),
            tx_count: u32::try_from(transactions.len()).unwrap_or(u32::MAX),
            state_root: Hash::ZERO,
            history_root: Hash::ZERO,
            validator_set_hash: self.validator_set_hash,
            next_validator_set_hash: self.next_validator_set_hash,
            proposer: self.proposer.clone(),
        };
        Block {
            header,
            transactions,
        }
    }
}

/// One batch of effects. See the [crate docs](crate#the-hosts-duties-in-order)
/// for the order in which the host carries them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Opaque records to append durably to the engine's log, in order,
    /// before anything else.
    pub persist: Vec<Vec<u8>>,
    /// Messages to send once `persist` is durable.
    pub send: Vec<Outgoing>,
    /// Blocks decided, in height order, each with its certificate.
    pub decided: Vec<DecidedBlock>,
    /// Misbehaviour observed.
    pub evidence: Vec<Evidence>,
    /// Set when the engine needs a block from this node (it is the
    /// proposer); answer with [`Consensus::propose`].
    pub propose_request: Option<ProposeRequest>,
    /// Proposed blocks, each structurally valid for the current height,
    /// that the application must judge before the engine votes for them;
    /// answer each with [`Consensus::block_validated`], after the blocks of
    /// [`Effects::decided`] of the same batch have been applied (the
    /// proposal extends the last of them).
    pub validate: Vec<Block>,
}

impl Effects {
    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.send.is_empty()
            && self.decided.is_empty()
            && self.evidence.is_empty()
            && self.propose_request.is_none()
            && self.validate.is_empty()
    }

    /// Appends `other` to `self`, keeping order.
    pub fn extend(&mut self, other: Effects) {
        self.persist.extend(other.persist);
        self.send.extend(other.send);
        self.decided.extend(other.decided);
        self.evidence.extend(other.evidence);
        if other.propose_request.is_some() {
            self.propose_request = other.propose_request;
        }
        self.validate.extend(other.validate);
    }
}
