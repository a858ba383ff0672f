//! Canonical wire and write-ahead-log formats of the Raft engine.
//!
//! raft-rs speaks protobuf (`eraftpb`). The protobuf 2.x decoder has an open
//! advisory (RUSTSEC-2024-0437), so **no protobuf is ever decoded from the
//! network or from disk**: peers exchange the types of this module, encoded
//! with govchain-core's strict canonical [codec](govchain_core::codec) under a
//! size limit, and the engine converts them to and from `eraftpb` at the
//! boundary (`convert.rs`). Every field a peer can set is validated by the
//! canonical decoder (tags, lengths, counts) before raft-rs sees it.

use govchain_core::block::Block;
use govchain_core::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::Signature;
use govchain_core::types::{ChainId, Height};

use crate::wire::SignedVote;
use crate::DecidedBlock;

/// Most entries in one append message.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1024;
/// Longest opaque `context` of a protocol message (raft-rs uses it for
/// leadership-transfer campaigns).
pub const MAX_CONTEXT_LEN: usize = 64;
/// Most single changes in one membership change.
pub const MAX_MEMBERSHIP_CHANGES: usize = 64;

/// The kinds of Raft messages that travel between peers (Ongaro &
/// Ousterhout 2014, §5: AppendEntries and RequestVote RPCs and their
/// replies; §9.6 pre-vote; §3.10 of Ongaro's thesis, leadership transfer).
/// Local-only raft-rs messages (hup, beat, propose, unreachable, snapshot
/// status, check-quorum) and snapshots never travel and do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RaftMessageKind {
    /// AppendEntries request (§5.3).
    Append = 1,
    /// AppendEntries reply.
    AppendResponse = 2,
    /// RequestVote request (§5.2).
    RequestVote = 3,
    /// RequestVote reply.
    RequestVoteResponse = 4,
    /// Pre-vote request (§9.6).
    RequestPreVote = 5,
    /// Pre-vote reply.
    RequestPreVoteResponse = 6,
    /// Heartbeat (an empty AppendEntries, §5.2).
    Heartbeat = 7,
    /// Heartbeat reply.
    HeartbeatResponse = 8,
    /// "Start an election now" (leadership transfer).
    TimeoutNow = 9,
}

impl Encode for RaftMessageKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for RaftMessageKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => RaftMessageKind::Append,
            2 => RaftMessageKind::AppendResponse,
            3 => RaftMessageKind::RequestVote,
            4 => RaftMessageKind::RequestVoteResponse,
            5 => RaftMessageKind::RequestPreVote,
            6 => RaftMessageKind::RequestPreVoteResponse,
            7 => RaftMessageKind::Heartbeat,
            8 => RaftMessageKind::HeartbeatResponse,
            9 => RaftMessageKind::TimeoutNow,
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "raft message kind",
                    tag,
                })
            }
        })
    }
}

/// A block as the leader put it in its log: the block and the leader's
/// signature over the core precommit `VoteMessage` for it (height, the
/// leader's term as the round, block hash). The signature travels with the
/// entry, so a certificate can always include it, even if the leader
/// crashes right after proposing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderBlock {
    /// The block; `block.header.proposer` is the leader.
    pub block: Block,
    /// The leader's signature.
    pub leader_signature: Signature,
}

impl Encode for LeaderBlock {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.block.encode_to(out);
        self.leader_signature.encode_to(out);
    }
}

impl Decode for LeaderBlock {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LeaderBlock {
            block: Block::decode_from(r)?,
            leader_signature: Signature::decode_from(r)?,
        })
    }
}

/// How a membership change moves between configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Simple change when possible, joint otherwise (raft-rs `Auto`).
    Auto = 0,
    /// Joint consensus, left automatically (§6 of Ongaro & Ousterhout).
    JointImplicit = 1,
    /// Joint consensus, left by an explicit empty change.
    JointExplicit = 2,
}

/// One change of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Make the node a voter.
    AddVoter(u64),
    /// Remove the node.
    Remove(u64),
    /// Make the node a learner (receives the log, does not vote).
    AddLearner(u64),
}

/// A membership change (raft-rs `ConfChangeV2`). An empty list of changes
/// leaves a joint configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    /// The transition.
    pub transition: Transition,
    /// The changes.
    pub changes: Vec<MemberChange>,
}

impl Encode for MembershipChange {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.transition as u8);
        let mut items = Vec::with_capacity(self.changes.len());
        for c in &self.changes {
            items.push(match *c {
                MemberChange::AddVoter(id) => (0u8, id),
                MemberChange::Remove(id) => (1u8, id),
                MemberChange::AddLearner(id) => (2u8, id),
            });
        }
        encode_seq(&items, out);
    }
}

impl Decode for MembershipChange {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let transition = match r.u8()? {
            0 => Transition::Auto,
            1 => Transition::JointImplicit,
            2 => Transition::JointExplicit,
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "membership transition",
                    tag,
                })
            }
        };
        let items: Vec<(u8, u64)> = r.seq("membership changes", MAX_MEMBERSHIP_CHANGES)?;
        let mut changes = Vec::with_capacity(items.len());
        for (tag, id) in items {
            changes.push(match tag {
                0 => MemberChange::AddVoter(id),
                1 => MemberChange::Remove(id),
                2 => MemberChange::AddLearner(id),
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "membership change",
                        tag,
                    })
                }
            });
        }
        Ok(MembershipChange {
            transition,
            changes,
        })
    }
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryPayload {
    /// An empty entry (a new leader's first entry, §5.4.2 and §8).
    Noop,
    /// A block.
    Block(Box<LeaderBlock>),
    /// A membership change.
    Membership(MembershipChange),
}

/// One Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftEntry {
    /// The term in which a leader created the entry.
    pub term: u64,
    /// Its position in the log.
    pub index: u64,
    /// Its contents.
    pub payload: EntryPayload,
}

impl Encode for RaftEntry {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.term.encode_to(out);
        self.index.encode_to(out);
        match &self.payload {
            EntryPayload::Noop => out.push(0),
            EntryPayload::Block(b) => {
                out.push(1);
                b.encode_to(out);
            }
            EntryPayload::Membership(m) => {
                out.push(2);
                m.encode_to(out);
            }
        }
    }
}

impl Decode for RaftEntry {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let term = u64::decode_from(r)?;
        let index = u64::decode_from(r)?;
        let payload = match r.u8()? {
            0 => EntryPayload::Noop,
            1 => EntryPayload::Block(Box::new(LeaderBlock::decode_from(r)?)),
            2 => EntryPayload::Membership(MembershipChange::decode_from(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "raft entry payload",
                    tag,
                })
            }
        };
        Ok(RaftEntry {
            term,
            index,
            payload,
        })
    }
}

/// A Raft protocol message between two peers (the fields raft-rs uses for
/// the kinds in [`RaftMessageKind`]; see Figure 2 of Ongaro & Ousterhout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolMessage {
    /// The kind.
    pub kind: RaftMessageKind,
    /// Raft id of the addressee.
    pub to: u64,
    /// Raft id of the sender (must be the authenticated peer's id).
    pub from: u64,
    /// The sender's term.
    pub term: u64,
    /// `prevLogTerm` (append) or `lastLogTerm` (vote).
    pub log_term: u64,
    /// `prevLogIndex` (append), `lastLogIndex` (vote) or the matched index
    /// (append reply).
    pub index: u64,
    /// Entries to append.
    pub entries: Vec<RaftEntry>,
    /// The leader's commit index.
    pub commit: u64,
    /// Term of the commit index.
    pub commit_term: u64,
    /// Whether a reply rejects.
    pub reject: bool,
    /// Rejection hint (the follower's last index).
    pub reject_hint: u64,
    /// Opaque context (campaign type of a transferred election).
    pub context: Vec<u8>,
    /// Election priority.
    pub priority: i64,
}

impl Encode for ProtocolMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.kind.encode_to(out);
        self.to.encode_to(out);
        self.from.encode_to(out);
        self.term.encode_to(out);
        self.log_term.encode_to(out);
        self.index.encode_to(out);
        encode_seq(&self.entries, out);
        self.commit.encode_to(out);
        self.commit_term.encode_to(out);
        self.reject.encode_to(out);
        self.reject_hint.encode_to(out);
        self.context.encode_to(out);
        u64::from_le_bytes(self.priority.to_le_bytes()).encode_to(out);
    }
}

impl Decode for ProtocolMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProtocolMessage {
            kind: RaftMessageKind::decode_from(r)?,
            to: u64::decode_from(r)?,
            from: u64::decode_from(r)?,
            term: u64::decode_from(r)?,
            log_term: u64::decode_from(r)?,
            index: u64::decode_from(r)?,
            entries: r.seq("raft entries", MAX_ENTRIES_PER_MESSAGE)?,
            commit: u64::decode_from(r)?,
            commit_term: u64::decode_from(r)?,
            reject: bool::decode_from(r)?,
            reject_hint: u64::decode_from(r)?,
            context: r.bytes("raft context", MAX_CONTEXT_LEN)?.to_vec(),
            priority: i64::from_le_bytes(u64::decode_from(r)?.to_le_bytes()),
        })
    }
}

/// What travels between the nodes of a Raft chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftBody {
    /// A Raft protocol message.
    Protocol(ProtocolMessage),
    /// A node's signature on a block it applied (the core precommit
    /// `VoteMessage`, round = the entry's term), gathered into
    /// certificates.
    Ack(SignedVote),
    /// A certified block, answering a [`RaftBody::SyncRequest`].
    Decided(Box<DecidedBlock>),
    /// "Send me certified blocks and acknowledgements from `from` on."
    SyncRequest {
        /// First height wanted.
        from: Height,
    },
}

/// A message of a Raft chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftMessage {
    /// The chain.
    pub chain_id: ChainId,
    /// The contents.
    pub body: RaftBody,
}

impl RaftMessage {
    /// Decodes a message of at most `limit` bytes.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        decode_exact(bytes, limit)
    }
}

impl Encode for RaftMessage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        match &self.body {
            RaftBody::Protocol(m) => {
                out.push(1);
                m.encode_to(out);
            }
            RaftBody::Ack(v) => {
                out.push(2);
                v.encode_to(out);
            }
            RaftBody::Decided(d) => {
                out.push(3);
                d.encode_to(out);
            }
            RaftBody::SyncRequest { from } => {
                out.push(4);
                from.encode_to(out);
            }
        }
    }
}

impl Decode for RaftMessage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain_id = ChainId::decode_from(r)?;
        let body = match r.u8()? {
            1 => RaftBody::Protocol(ProtocolMessage::decode_from(r)?),
            2 => RaftBody::Ack(SignedVote::decode_from(r)?),
            3 => RaftBody::Decided(Box::new(DecidedBlock::decode_from(r)?)),
            4 => RaftBody::SyncRequest {
                from: Height::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "raft message",
                    tag,
                })
            }
        };
        Ok(RaftMessage { chain_id, body })
    }
}

/// One persisted record of the Raft engine (the durable state of Figure 2
/// of Ongaro & Ousterhout: `currentTerm`, `votedFor`, `log[]`, plus
/// certified blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RaftRecord {
    /// Entries appended to the log; an entry at an index already present
    /// replaces it and everything after it (§5.3).
    Entries(Vec<RaftEntry>),
    /// Term, vote and commit index.
    HardState { term: u64, vote: u64, commit: u64 },
    /// A certified block.
    Decided(Box<DecidedBlock>),
}

impl Encode for RaftRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            RaftRecord::Entries(e) => {
                out.push(1);
                encode_seq(e, out);
            }
            RaftRecord::HardState { term, vote, commit } => {
                out.push(2);
                term.encode_to(out);
                vote.encode_to(out);
                commit.encode_to(out);
            }
            RaftRecord::Decided(d) => {
                out.push(3);
                d.encode_to(out);
            }
        }
    }
}

impl Decode for RaftRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(RaftRecord::Entries(r.seq("raft entries", usize::MAX)?)),
            2 => Ok(RaftRecord::HardState {
                term: u64::decode_from(r)?,
                vote: u64::decode_from(r)?,
                commit: u64::decode_from(r)?,
            }),
            3 => Ok(RaftRecord::Decided(Box::new(DecidedBlock::decode_from(r)?))),
            tag => Err(DecodeError::InvalidTag {
                what: "raft record",
                tag,
            }),
        }
    }
}

/// The kind of a persisted record, for tests that tamper with persistence.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RaftRecordForTests {
    /// Log entries or hard state.
    LogOrHardState,
    /// A certified block.
    Decided,
}

#[cfg(test)]
impl Decode for RaftRecordForTests {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let rec = RaftRecord::decode_from(r)?;
        Ok(match rec {
            RaftRecord::Decided(_) => RaftRecordForTests::Decided,
            _ => RaftRecordForTests::LogOrHardState,
        })
    }
}
