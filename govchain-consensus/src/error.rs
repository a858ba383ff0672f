//! The crate's error type.

use govchain_core::block::BlockError;
use govchain_core::cert::CertificateError;
use govchain_core::codec::DecodeError;
use govchain_core::crypto::PublicKey;
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height};

/// Why an engine refused an input or a configuration.
///
/// A refused network message leaves the engine's consensus state unchanged:
/// the host may log it, count it against the peer, and carry on. None of
/// these errors means the local node is broken, except
/// [`ConsensusError::CorruptState`] returned by a restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// The message is longer than the configured maximum; it was not decoded.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The bytes are not a canonical encoding of a message.
    #[error("malformed message: {source}")]
    Malformed {
        /// What the decoder rejected.
        #[from]
        source: DecodeError,
    },
    /// The message belongs to another chain.
    #[error("message is for chain {got}, this engine runs {expected}")]
    WrongChain {
        /// This engine's chain.
        expected: ChainId,
        /// The message's chain.
        got: ChainId,
    },
    /// The message is for a height too far beyond the current one to buffer.
    #[error(
        "message for height {got} is more than {max_ahead} heights beyond current height {current}"
    )]
    HeightTooFarAhead {
        /// The height being decided.
        current: Height,
        /// The message's height.
        got: Height,
        /// How many future heights are buffered.
        max_ahead: u64,
    },
    /// The message is for a round too far beyond the current one.
    #[error(
        "message for round {got} is more than {max_ahead} rounds beyond current round {current}"
    )]
    RoundTooFarAhead {
        /// The current round.
        current: u32,
        /// The message's round.
        got: u32,
        /// The bound.
        max_ahead: u32,
    },
    /// The bounded buffer of future-height messages is full.
    #[error("future-message buffer is full ({capacity} messages)")]
    BufferFull {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// The signer is not a validator at the message's height.
    #[error("signer {signer} is not a validator at height {height}")]
    UnknownValidator {
        /// The claimed signer.
        signer: PublicKey,
        /// The height of the message.
        height: Height,
    },
    /// The signer is a validator at the message's height, but its key may
    /// not sign there: it expired or was reported compromised (see
    /// [`KeyWindow`](govchain_core::validator::KeyWindow)).
    #[error("validator {signer} may not sign at height {height}: {reason}")]
    KeyOutsideWindow {
        /// The signer.
        signer: PublicKey,
        /// The height of the message.
        height: Height,
        /// Why its key may not sign there.
        reason: govchain_core::validator::KeyRejection,
    },
    /// A signature does not verify.
    #[error("invalid signature from {signer}")]
    InvalidSignature {
        /// The claimed signer.
        signer: PublicKey,
    },
    /// A proposal signed by a validator that is not the round's proposer.
    #[error("proposal signed by {got}, but the proposer of this round is {expected}")]
    NotProposer {
        /// The proposer the rotation selects.
        expected: PublicKey,
        /// The signer of the proposal.
        got: PublicKey,
    },
    /// A block failed the engine's structural checks.
    #[error("invalid block at height {height}: {reason}")]
    InvalidBlock {
        /// The block's height.
        height: Height,
        /// What is wrong with it.
        reason: InvalidBlockReason,
    },
    /// A decided block's certificate does not verify.
    #[error("certificate for block {block} rejected: {source}")]
    InvalidCertificate {
        /// The block's hash.
        block: Hash,
        /// Why the certificate was rejected.
        source: CertificateError,
    },
    /// `propose` was called although the engine asked for no block.
    #[error("no block was requested at height {height}")]
    NoProposalRequested {
        /// The height being decided.
        height: Height,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
    /// A validator-set change was scheduled too late to be announced.
    #[error(
        "validator set for height {from} must be scheduled before height {earliest} is proposed"
    )]
    ScheduleTooLate {
        /// The requested first height of the new set.
        from: Height,
        /// The earliest height that can still be scheduled.
        earliest: Height,
    },
    /// A Raft proposal or membership change reached a node that is not the
    /// leader. Proposals are never forwarded: the host retries at `leader`.
    #[error("this node is not the Raft leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<PublicKey>,
    },
    /// The engine does not take decided blocks from block sync (Raft catches
    /// up by log replication).
    #[error("this engine does not accept synced blocks")]
    SyncUnsupported,
    /// A synced block is not for the height being decided.
    #[error("synced block for height {got}, the engine is deciding height {expected}")]
    UnexpectedSyncHeight {
        /// The height being decided.
        expected: Height,
        /// The block's height.
        got: Height,
    },
    /// The authenticated sender is not a known peer of the chain.
    #[error("unknown peer {peer}")]
    UnknownPeer {
        /// The sender.
        peer: PublicKey,
    },
    /// A well-formed message that the protocol does not allow here (wrong
    /// addressee, a sender field that is not the authenticated peer, a
    /// message kind that never travels between peers, or one the Raft state
    /// machine refused).
    #[error("unexpected message: {reason}")]
    UnexpectedMessage {
        /// What is wrong.
        reason: &'static str,
    },
    /// A membership change was refused before it was proposed.
    #[error("membership change refused: {reason}")]
    MembershipChangeRefused {
        /// Why.
        reason: &'static str,
    },
    /// The engine hit an internal invariant violation (the Raft library
    /// panicked on an input); it refuses every further call and must be
    /// rebuilt from its persisted records.
    #[error("engine poisoned: {reason}")]
    Poisoned {
        /// What failed.
        reason: &'static str,
    },
    /// Persisted state could not be restored.
    #[error("persisted record {index} is corrupt: {reason}")]
    CorruptState {
        /// Position of the record.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Why a Raft commit certificate does not prove a commit (see
/// [`crate::raft::verify_raft_certificate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaftCertificateError {
    /// A structural or signature fault shared with BFT certificates.
    #[error(transparent)]
    Certificate {
        /// The fault.
        #[from]
        source: CertificateError,
    },
    /// The leader that proposed the block (its header's proposer) did not
    /// sign.
    #[error("the proposing leader {leader} did not sign")]
    MissingLeaderSignature {
        /// The block's proposer.
        leader: PublicKey,
    },
    /// The signers are not a strict majority of a configuration.
    #[error("{signed} of {members} {config} voters signed; a strict majority is required")]
    NoMajority {
        /// `"incoming"` or `"outgoing"` (joint consensus).
        config: &'static str,
        /// Members of that configuration that signed.
        signed: usize,
        /// Size of that configuration.
        members: usize,
    },
}

/// What is structurally wrong with a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidBlockReason {
    /// The header is for another chain.
    #[error("wrong chain {got}")]
    WrongChain {
        /// The header's chain.
        got: ChainId,
    },
    /// The header is not at the expected height.
    #[error("wrong height {got}")]
    WrongHeight {
        /// The header's height.
        got: Height,
    },
    /// The parent hash is not the previous decided block.
    #[error("parent {got} is not the last decided block {expected}")]
    WrongParent {
        /// The previous decided block.
        expected: Hash,
        /// The header's parent.
        got: Hash,
    },
    /// Time earlier than the parent's.
    #[error("time went backwards")]
    TimeWentBackwards,
    /// Validator-set hashes differ from the schedule.
    #[error("validator-set hashes do not match the schedule")]
    WrongValidatorSet,
    /// The header's proposer is not the proposal's signer.
    #[error("header proposer {got} is not the signer")]
    WrongProposer {
        /// The header's proposer.
        got: PublicKey,
    },
    /// The body does not match the header.
    #[error("body: {source}")]
    Body {
        /// The body fault.
        source: BlockError,
    },
}
