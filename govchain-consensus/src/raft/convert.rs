//! Conversion between our canonical Raft types and raft-rs `eraftpb` at the
//! engine boundary.
//!
//! Direction network → raft-rs: a canonical [`ProtocolMessage`] (already
//! strictly decoded and size-capped) becomes an `eraftpb::Message`; a
//! membership change is *encoded* to protobuf because raft-rs stores
//! `ConfChangeV2` entries as protobuf bytes.
//!
//! Direction raft-rs → network/disk: `eraftpb` values become canonical
//! types. The only protobuf ever *decoded* is the data of a `ConfChangeV2`
//! entry in this node's own raft-rs log, which this process encoded itself
//! (from a validated canonical [`MembershipChange`], or raft-rs did when
//! proposing one) — never bytes from the network or disk (RUSTSEC-2024-0437).

use protobuf::{Message as _, RepeatedField};
use raft::eraftpb::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, Entry, EntryType,
    Message, MessageType,
};

use govchain_core::block::MAX_BLOCK_ENCODED_LEN;
use govchain_core::codec::{decode_exact, Encode};

use super::wire::{
    EntryPayload, LeaderBlock, MemberChange, MembershipChange, ProtocolMessage, RaftEntry,
    RaftMessageKind, Transition,
};

fn kind_to_raft(k: RaftMessageKind) -> MessageType {
    match k {
        RaftMessageKind::Append => MessageType::MsgAppend,
        RaftMessageKind::AppendResponse => MessageType::MsgAppendResponse,
        RaftMessageKind::RequestVote => MessageType::MsgRequestVote,
        RaftMessageKind::RequestVoteResponse => MessageType::MsgRequestVoteResponse,
        RaftMessageKind::RequestPreVote => MessageType::MsgRequestPreVote,
        RaftMessageKind::RequestPreVoteResponse => MessageType::MsgRequestPreVoteResponse,
        RaftMessageKind::Heartbeat => MessageType::MsgHeartbeat,
        RaftMessageKind::HeartbeatResponse => MessageType::MsgHeartbeatResponse,
        RaftMessageKind::TimeoutNow => MessageType::MsgTimeoutNow,
    }
}

fn kind_from_raft(t: MessageType) -> Option<RaftMessageKind> {
    Some(match t {
        MessageType::MsgAppend => RaftMessageKind::Append,
        MessageType::MsgAppendResponse => RaftMessageKind::AppendResponse,
        MessageType::MsgRequestVote => RaftMessageKind::RequestVote,
        MessageType::MsgRequestVoteResponse => RaftMessageKind::RequestVoteResponse,
        MessageType::MsgRequestPreVote => RaftMessageKind::RequestPreVote,
        MessageType::MsgRequestPreVoteResponse => RaftMessageKind::RequestPreVoteResponse,
        MessageType::MsgHeartbeat => RaftMessageKind::Heartbeat,
        MessageType::MsgHeartbeatResponse => RaftMessageKind::HeartbeatResponse,
        MessageType::MsgTimeoutNow => RaftMessageKind::TimeoutNow,
        _ => return None,
    })
}

/// A canonical membership change as raft-rs's `ConfChangeV2`.
pub(crate) fn conf_change_to_raft(m: &MembershipChange) -> ConfChangeV2 {
    let transition = match m.transition {
        Transition::Auto => ConfChangeTransition::Auto,
        Transition::JointImplicit => ConfChangeTransition::Implicit,
        Transition::JointExplicit => ConfChangeTransition::Explicit,
    };
    let changes: Vec<ConfChangeSingle> = m
        .changes
        .iter()
        .map(|c| {
            let (change_type, node_id) = match *c {
                MemberChange::AddVoter(id) => (ConfChangeType::AddNode, id),
                MemberChange::Remove(id) => (ConfChangeType::RemoveNode, id),
                MemberChange::AddLearner(id) => (ConfChangeType::AddLearnerNode, id),
            };
            ConfChangeSingle {
                change_type,
                node_id,
                ..ConfChangeSingle::default()
            }
        })
        .collect();
    ConfChangeV2 {
        transition,
        changes: RepeatedField::from_vec(changes),
        ..ConfChangeV2::default()
    }
}

fn conf_change_from_raft(cc: &ConfChangeV2) -> MembershipChange {
    MembershipChange {
        transition: match cc.transition {
            ConfChangeTransition::Auto => Transition::Auto,
            ConfChangeTransition::Implicit => Transition::JointImplicit,
            ConfChangeTransition::Explicit => Transition::JointExplicit,
        },
        changes: cc
            .changes
            .iter()
            .map(|s| match s.change_type {
                ConfChangeType::AddNode => MemberChange::AddVoter(s.node_id),
                ConfChangeType::RemoveNode => MemberChange::Remove(s.node_id),
                ConfChangeType::AddLearnerNode => MemberChange::AddLearner(s.node_id),
            })
            .collect(),
    }
}

/// The membership change held by a `ConfChangeV2` entry of this node's own
/// log (see the module docs for why decoding these bytes is safe).
pub(crate) fn local_conf_change(e: &Entry) -> Option<MembershipChange> {
    if e.data.is_empty() {
        // raft-rs writes an empty entry to leave a joint configuration.
        return Some(MembershipChange {
            transition: Transition::Auto,
            changes: Vec::new(),
        });
    }
    let cc = ConfChangeV2::parse_from_bytes(&e.data).ok()?;
    Some(conf_change_from_raft(&cc))
}

/// A canonical entry as a raft-rs entry.
pub(crate) fn entry_to_raft(e: &RaftEntry) -> Option<Entry> {
    let (entry_type, data) = match &e.payload {
        EntryPayload::Noop => (EntryType::EntryNormal, Vec::new()),
        EntryPayload::Block(b) => (EntryType::EntryNormal, b.to_bytes()),
        EntryPayload::Membership(m) => (
            EntryType::EntryConfChangeV2,
            conf_change_to_raft(m).write_to_bytes().ok()?,
        ),
    };
    Some(Entry {
        entry_type,
        term: e.term,
        index: e.index,
        data: data.into(),
        ..Entry::default()
    })
}

/// A raft-rs entry of this node's log as a canonical entry (`None` for
/// kinds this engine never creates: version-1 conf changes).
pub(crate) fn entry_from_raft(e: &Entry) -> Option<RaftEntry> {
    let payload = match e.entry_type {
        EntryType::EntryNormal if e.data.is_empty() => EntryPayload::Noop,
        EntryType::EntryNormal => {
            let b: LeaderBlock = decode_exact(&e.data, MAX_BLOCK_ENCODED_LEN).ok()?;
            EntryPayload::Block(Box::new(b))
        }
        EntryType::EntryConfChangeV2 => EntryPayload::Membership(local_conf_change(e)?),
        EntryType::EntryConfChange => return None,
    };
    Some(RaftEntry {
        term: e.term,
        index: e.index,
        payload,
    })
}

/// A canonical protocol message as a raft-rs message.
pub(crate) fn message_to_raft(m: &ProtocolMessage) -> Option<Message> {
    let mut entries = Vec::with_capacity(m.entries.len());
    for e in &m.entries {
        entries.push(entry_to_raft(e)?);
    }
    Some(Message {
        msg_type: kind_to_raft(m.kind),
        to: m.to,
        from: m.from,
        term: m.term,
        log_term: m.log_term,
        index: m.index,
        entries: RepeatedField::from_vec(entries),
        commit: m.commit,
        commit_term: m.commit_term,
        reject: m.reject,
        reject_hint: m.reject_hint,
        context: m.context.clone().into(),
        priority: m.priority,
        ..Message::default()
    })
}

/// A raft-rs message as a canonical one (`None` for local-only kinds and
/// snapshots, which never leave the engine).
pub(crate) fn message_from_raft(m: &Message) -> Option<ProtocolMessage> {
    let kind = kind_from_raft(m.msg_type)?;
    let mut entries = Vec::with_capacity(m.entries.len());
    for e in m.entries.iter() {
        entries.push(entry_from_raft(e)?);
    }
    Some(ProtocolMessage {
        kind,
        to: m.to,
        from: m.from,
        term: m.term,
        log_term: m.log_term,
        index: m.index,
        entries,
        commit: m.commit,
        commit_term: m.commit_term,
        reject: m.reject,
        reject_hint: m.reject_hint,
        context: m.context.to_vec(),
        priority: m.priority,
    })
}
