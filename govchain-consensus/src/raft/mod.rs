//! The Raft engine: crash-fault-tolerant consensus over tikv/raft-rs.
//!
//! The replication protocol (leader election §5.2, log replication §5.3,
//! the safety rules of §5.4, pre-vote and check-quorum, and joint-consensus
//! membership changes §6) is raft-rs 0.7's `RawNode`, a sans-IO state
//! machine. This module is everything around it, behind the same
//! [`Consensus`] trait as [`crate::tendermint::Tendermint`]:
//!
//! - **Time.** [`Consensus::tick`] turns elapsed milliseconds into raft-rs
//!   ticks of [`RaftConfig::tick_ms`]. raft-rs draws its randomised election
//!   timeout (§5.2) from `rand::thread_rng()`; the engine overwrites every
//!   draw, before any tick can observe it, with one from its own seeded
//!   generator (seeded by chain and node id), so effects stay a function of
//!   the inputs. raft-rs's internal maps use FxHash, an unseeded hasher, so
//!   their iteration order is deterministic too.
//! - **Wire.** Peers exchange [`wire::RaftMessage`] in govchain's canonical
//!   codec, size-capped; conversion to and from `eraftpb` happens at the
//!   boundary and no protobuf is ever decoded from the network or disk
//!   (RUSTSEC-2024-0437). The authenticated sender must be the message's
//!   `from`, and the message must be addressed to this node.
//! - **Persistence** (Figure 2's durable state: `currentTerm`, `votedFor`,
//!   `log[]`). Each `Ready`'s entries and hard state become
//!   [`Effects::persist`] records *before* the messages of the same batch,
//!   before `advance`, and before anything that depends on them is
//!   observable: the host makes a batch's records durable before it sends
//!   or applies anything of the batch, and a host that crashes part-way
//!   discards the engine. [`Raft::restore`] rebuilds the log and hard state
//!   from the records and re-applies the committed log.
//! - **Proposals.** Only the leader asks for blocks ([`Effects::propose_request`]),
//!   one at a time, once it has applied an entry of its own term (§5.4.2,
//!   §8: only then does it know everything committed before it). Followers
//!   refuse [`Consensus::propose`] with [`ConsensusError::NotLeader`];
//!   raft-rs proposal forwarding is disabled.
//! - **Certificates.** See [`verify_raft_certificate`] for exactly what a
//!   Raft certificate proves, and what it does not.
//! - **Membership** changes use joint consensus (`ConfChangeV2`, implicit
//!   leave): [`Raft::propose_membership_change`].
//!
//! Not (yet) supported: log compaction and snapshots (the log grows without
//! bound and a new member replays it from index 1), ReadIndex reads, and
//! leadership transfer requests from the host.

mod convert;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use raft::eraftpb::{ConfChangeV2, ConfState, Entry, EntryType, HardState};
use raft::storage::MemStorage;
use raft::{RawNode, StateRole, Storage as _};

use govchain_core::block::{Block, BlockHeader};
use govchain_core::cert::{
    CertificateError, CommitCertificate, CommitSignature, VoteKind, VoteMessage,
};
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::crypto::{verify_batch_sequential, BatchItem, PublicKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};

use crate::error::RaftCertificateError;
use crate::sim::Rng;
use crate::wire::SignedVote;
use crate::{
    Consensus, ConsensusError, DecidedBlock, Effects, InvalidBlockReason, Outgoing, ProposeRequest,
    Recipient,
};
use wire::{
    LeaderBlock, MemberChange, MembershipChange, ProtocolMessage, RaftBody, RaftMessage,
    RaftMessageKind, RaftRecord, Transition,
};

/// Configuration of a [`Raft`] engine. Every node of a chain must use the
/// same `chain_id`, `genesis_time`, `peers` and `voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// The chain.
    pub chain_id: ChainId,
    /// Time of the genesis state; block 1's time must not be earlier.
    pub genesis_time: Timestamp,
    /// Every node that is or may become a member, by Raft id (non-zero).
    /// A node's signer key must be listed here.
    pub peers: BTreeMap<u64, PublicKey>,
    /// The voters at genesis (ids of `peers`).
    pub voters: BTreeSet<u64>,
    /// Length of one raft-rs tick in milliseconds.
    pub tick_ms: u64,
    /// Minimum election timeout in ticks; timeouts are drawn from
    /// `[election_ticks, 2 * election_ticks)` (§5.2).
    pub election_ticks: usize,
    /// Heartbeat interval in ticks (must be below `election_ticks`).
    pub heartbeat_ticks: usize,
    /// How often acknowledgements of uncertified blocks are re-sent and
    /// certificates asked for.
    pub rebroadcast_ms: u64,
    /// Largest accepted message in bytes.
    pub max_message_len: usize,
    /// Largest append message raft-rs builds, in bytes of entry data.
    pub max_append_bytes: u64,
    /// Most append messages in flight per follower.
    pub max_inflight: usize,
    /// How many heights beyond the next one acknowledgements are buffered
    /// for.
    pub max_ack_heights_ahead: u64,
    /// Most certified blocks sent in answer to one request.
    pub sync_batch: usize,
}

impl RaftConfig {
    /// A configuration with default limits whose genesis voters are
    /// `voters`, numbered 1, 2, … in the given order.
    pub fn new(chain_id: ChainId, voters: Vec<PublicKey>) -> Self {
        let peers: BTreeMap<u64, PublicKey> = voters
            .into_iter()
            .enumerate()
            .map(|(i, k)| (i as u64 + 1, k))
            .collect();
        let voters = peers.keys().copied().collect();
        RaftConfig {
            chain_id,
            genesis_time: Timestamp::new(0),
            peers,
            voters,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 2,
            rebroadcast_ms: 1_000,
            max_message_len: 8 * 1024 * 1024,
            max_append_bytes: 1024 * 1024,
            max_inflight: 64,
            max_ack_heights_ahead: 64,
            sync_batch: 16,
        }
    }

    /// Adds a node that may later join; returns its id.
    pub fn add_peer(&mut self, key: PublicKey) -> u64 {
        if let Some(id) = self.id_of(&key) {
            return id;
        }
        let id = self.peers.keys().next_back().copied().unwrap_or(0) + 1;
        self.peers.insert(id, key);
        id
    }

    /// The Raft id of `key`.
    pub fn id_of(&self, key: &PublicKey) -> Option<u64> {
        self.peers
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(id, _)| *id)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        if self.peers.contains_key(&0) {
            return Err(ConsensusError::InvalidConfig {
                reason: "raft id 0 is reserved",
            });
        }
        let distinct: BTreeSet<&PublicKey> = self.peers.values().collect();
        if distinct.len() != self.peers.len() {
            return Err(ConsensusError::InvalidConfig {
                reason: "a key is listed under two raft ids",
            });
        }
        if self.voters.is_empty() || !self.voters.iter().all(|v| self.peers.contains_key(v)) {
            return Err(ConsensusError::InvalidConfig {
                reason: "genesis voters must be a non-empty subset of the peers",
            });
        }
        if self.tick_ms == 0
            || self.rebroadcast_ms == 0
            || self.heartbeat_ticks == 0
            || self.election_ticks <= self.heartbeat_ticks
        {
            return Err(ConsensusError::InvalidConfig {
                reason: "tick, heartbeat and election intervals must be positive, heartbeat below election",
            });
        }
        if self.max_message_len == 0
            || self.max_append_bytes == 0
            || self.max_inflight == 0
            || self.sync_batch == 0
        {
            return Err(ConsensusError::InvalidConfig {
                reason: "limits must be positive",
            });
        }
        Ok(())
    }
}

/// The voters of the configuration under which a block was committed: a
/// single configuration (`outgoing` empty) or a joint one (§6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftVoters {
    /// The (new) configuration.
    pub incoming: Vec<PublicKey>,
    /// The old configuration while joint, else empty.
    pub outgoing: Vec<PublicKey>,
}

impl RaftVoters {
    /// The incoming voters as a core [`ValidatorSet`] with power 1 each
    /// (used for the header's validator-set hashes).
    pub fn incoming_set(&self) -> Option<ValidatorSet> {
        ValidatorSet::new(
            self.incoming
                .iter()
                .map(|k| Validator {
                    public_key: k.clone(),
                    power: 1,
                })
                .collect(),
        )
        .ok()
    }
}

/// Checks a Raft commit certificate for `block`.
///
/// # What it certifies
/// A Raft certificate is a core [`CommitCertificate`] (the same object and
/// signing message as a BFT commit: each signature covers the precommit
/// [`VoteMessage`] for `(chain, height, round, block hash)`, with the
/// Raft *term* of the block's log entry as the round). It passes this
/// check when:
/// - the block's proposer — the leader that appended it to its log in that
///   term — signed (it signs when proposing, and the signature travels in
///   the log entry);
/// - signatures from a **strict majority** of the configuration's voters
///   (of both configurations while joint, §6) are present, each made by a
///   member when it *applied* the entry, i.e. after learning it was
///   committed (§5.3–§5.4);
/// - all signatures verify (one batch, `verify_batch_sequential`).
///
/// Under Raft's crash-fault model (members may crash and restart, never
/// lie) this proves the block is committed at that height: a majority of
/// the voters persisted it and every future leader holds it (Leader
/// Completeness, §5.4).
///
/// # What it does not certify (compared with a BFT certificate)
/// - It does **not** prove the leader was honest or the block valid beyond
///   the structural checks every member ran: a single Byzantine leader can
///   propose anything, and members sign what the log commits.
/// - A majority (`> 1/2`) is below the BFT quorum (`> 2/3`), so two such
///   majorities intersect in one member only; a member that signs two
///   different blocks at one height (equivocation) breaks it. Raft has no
///   protection against equivocating members and this engine reports no
///   evidence.
/// - The core light client's `CommitCertificate::verify` requires more than
///   two thirds of the power and therefore rejects most Raft certificates
///   (the safe direction); Raft chains must be verified with this function.
/// - A Raft chain must never share its chain id with a BFT chain: the two
///   certificates sign the same message format.
/// - Who the voters were is the caller's knowledge (genesis plus the
///   membership changes in the committed log); nothing in the header binds
///   membership changes yet.
pub fn verify_raft_certificate(
    certificate: &CommitCertificate,
    chain_id: &ChainId,
    block: &Block,
    voters: &RaftVoters,
) -> Result<(), RaftCertificateError> {
    verify_raft_certificate_header(certificate, chain_id, &block.header, voters)
}

/// [`verify_raft_certificate`] for a block known only by its header (the
/// certificate commits the header hash, which is the block hash): what a
/// main chain checks when a Raft side chain anchors a checkpoint.
pub fn verify_raft_certificate_header(
    certificate: &CommitCertificate,
    chain_id: &ChainId,
    header: &BlockHeader,
    voters: &RaftVoters,
) -> Result<(), RaftCertificateError> {
    if &certificate.chain_id != chain_id {
        return Err(CertificateError::WrongChain {
            expected: chain_id.clone(),
            got: certificate.chain_id.clone(),
        }
        .into());
    }
    let hash = header.hash();
    let height = header.height;
    if certificate.height != height || certificate.block_hash != hash {
        return Err(CertificateError::WrongBlock {
            expected_height: height,
            expected_hash: hash,
            got_height: certificate.height,
            got_hash: certificate.block_hash,
        }
        .into());
    }
    let mut previous: Option<&PublicKey> = None;
    for s in &certificate.signatures {
        if let Some(p) = previous {
            if p == &s.validator {
                return Err(CertificateError::DuplicateSigner {
                    signer: s.validator.clone(),
                }
                .into());
            }
            if p > &s.validator {
                return Err(CertificateError::UnsortedSigners.into());
            }
        }
        if !voters.incoming.contains(&s.validator) && !voters.outgoing.contains(&s.validator) {
            return Err(CertificateError::NonMemberSigner {
                signer: s.validator.clone(),
            }
            .into());
        }
        previous = Some(&s.validator);
    }
    let signers: BTreeSet<&PublicKey> = certificate
        .signatures
        .iter()
        .map(|s| &s.validator)
        .collect();
    check_majorities(&signers, &header.proposer, voters)?;
    let digest = certificate.vote_message().signing_digest(header.suite);
    let items: Vec<BatchItem<'_>> = certificate
        .signatures
        .iter()
        .map(|s| BatchItem::new(&s.validator, digest.as_bytes(), &s.signature))
        .collect();
    verify_batch_sequential(&items).map_err(|e| {
        RaftCertificateError::from(CertificateError::InvalidSignatures {
            signers: e
                .invalid_indexes()
                .iter()
                .filter_map(|&i| certificate.signatures.get(i).map(|s| s.validator.clone()))
                .collect(),
        })
    })
}

fn check_majorities(
    signers: &BTreeSet<&PublicKey>,
    leader: &PublicKey,
    voters: &RaftVoters,
) -> Result<(), RaftCertificateError> {
    if !signers.contains(leader) {
        return Err(RaftCertificateError::MissingLeaderSignature {
            leader: leader.clone(),
        });
    }
    for (config, members) in [
        ("incoming", &voters.incoming),
        ("outgoing", &voters.outgoing),
    ] {
        if config == "outgoing" && members.is_empty() {
            continue;
        }
        let signed = members.iter().filter(|k| signers.contains(k)).count();
        if members.is_empty() || signed * 2 <= members.len() {
            return Err(RaftCertificateError::NoMajority {
                config,
                signed,
                members: members.len(),
            });
        }
    }
    Ok(())
}

/// A block applied from the committed log, waiting for its certificate.
#[derive(Debug, Clone)]
struct Pending {
    block: Block,
    vote: VoteMessage,
    voters: RaftVoters,
}

/// The Raft engine. See the [module docs](self).
pub struct Raft {
    cfg: RaftConfig,
    signer: Arc<dyn Signer>,
    me: PublicKey,
    id: u64,
    raw: RawNode<MemStorage>,
    rng: Rng,
    now: u64,
    next_tick: u64,
    next_rebroadcast: u64,
    incoming: BTreeSet<u64>,
    outgoing: BTreeSet<u64>,
    auto_leave: bool,
    chain: BTreeMap<Height, DecidedBlock>,
    applied_height: u64,
    applied_hash: Hash,
    applied_time: Timestamp,
    pending: BTreeMap<Height, Pending>,
    acks: BTreeMap<Height, BTreeMap<PublicKey, SignedVote>>,
    pending_request: Option<ProposeRequest>,
    proposed: Option<(Height, u64)>,
    poisoned: bool,
}

impl std::fmt::Debug for Raft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raft")
            .field("id", &self.id)
            .field("term", &self.raw.raft.term)
            .field("role", &self.raw.raft.state)
            .field("height", &self.height())
            .field("applied_height", &self.applied_height)
            .finish_non_exhaustive()
    }
}

fn corrupt(index: usize, reason: impl Into<String>) -> ConsensusError {
    ConsensusError::CorruptState {
        index,
        reason: reason.into(),
    }
}

impl Raft {
    /// Builds an engine from its persisted records (empty for a fresh node)
    /// and returns the effects of starting it (re-applying the committed
    /// log re-sends this node's acknowledgements).
    ///
    /// A node that will join later boots with the same `cfg` (its key in
    /// `peers`, not in `voters`) and waits for the leader to replicate the
    /// log to it.
    ///
    /// Errors: [`ConsensusError::InvalidConfig`] and
    /// [`ConsensusError::CorruptState`].
    pub fn restore(
        cfg: RaftConfig,
        signer: Arc<dyn Signer>,
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError> {
        cfg.validate()?;
        let me = signer.public_key();
        let id = cfg.id_of(&me).ok_or(ConsensusError::InvalidConfig {
            reason: "the signer is not a peer of the chain",
        })?;
        let storage = MemStorage::new_with_conf_state(ConfState::from((
            cfg.voters.iter().copied().collect::<Vec<u64>>(),
            Vec::<u64>::new(),
        )));
        let mut hard = HardState::default();
        let mut chain: BTreeMap<Height, DecidedBlock> = BTreeMap::new();
        for (index, bytes) in records.iter().enumerate() {
            let rec: RaftRecord =
                decode_exact(bytes, usize::MAX).map_err(|e| corrupt(index, e.to_string()))?;
            match rec {
                RaftRecord::Entries(entries) => {
                    let Some(first) = entries.first() else {
                        continue;
                    };
                    let last = storage.last_index().unwrap_or(0);
                    if first.index == 0 || first.index > last + 1 {
                        return Err(corrupt(index, "entries leave a gap in the log"));
                    }
                    let mut converted = Vec::with_capacity(entries.len());
                    for (i, e) in entries.iter().enumerate() {
                        if e.index != first.index + i as u64 {
                            return Err(corrupt(index, "entries are not contiguous"));
                        }
                        converted.push(
                            convert::entry_to_raft(e)
                                .ok_or_else(|| corrupt(index, "entry cannot be converted"))?,
                        );
                    }
                    storage
                        .wl()
                        .append(&converted)
                        .map_err(|e| corrupt(index, e.to_string()))?;
                }
                RaftRecord::HardState { term, vote, commit } => {
                    hard.term = term;
                    hard.vote = vote;
                    hard.commit = commit;
                }
                RaftRecord::Decided(d) => {
                    let h = d.block.header.height;
                    if let Some(existing) = chain.get(&h) {
                        if existing != d.as_ref() {
                            return Err(corrupt(index, "two different blocks at one height"));
                        }
                        continue;
                    }
                    if h.get() != chain.len() as u64 + 1 {
                        return Err(corrupt(index, "decided heights are not contiguous"));
                    }
                    chain.insert(h, *d);
                }
            }
        }
        // The commit index is volatile state (Figure 2); a lost log tail
        // can leave it beyond the log, so clamp it.
        hard.commit = hard.commit.min(storage.last_index().unwrap_or(0));
        storage.wl().set_hardstate(hard);
        let election = cfg.election_ticks;
        let raft_cfg = raft::Config {
            id,
            election_tick: election,
            heartbeat_tick: cfg.heartbeat_ticks,
            applied: 0,
            max_size_per_msg: cfg.max_append_bytes,
            max_inflight_msgs: cfg.max_inflight,
            check_quorum: true,
            pre_vote: true,
            min_election_tick: election,
            max_election_tick: election.saturating_mul(2),
            ..raft::Config::default()
        };
        raft_cfg
            .validate()
            .map_err(|_| ConsensusError::InvalidConfig {
                reason: "raft-rs rejected the tick configuration",
            })?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = catch_unwind(AssertUnwindSafe(|| {
            RawNode::new(&raft_cfg, storage, &logger)
        }))
        .map_err(|_| corrupt(records.len(), "raft-rs refused the restored log"))?
        .map_err(|e| corrupt(records.len(), e.to_string()))?;
        let seed = Hash::of_parts(
            govchain_core::hash::Domain::Test,
            &[cfg.chain_id.as_str().as_bytes(), &id.to_le_bytes()],
        );
        let mut seed_bytes = [0u8; 8];
        seed_bytes.copy_from_slice(&seed.as_bytes()[..8]);
        let mut engine = Raft {
            incoming: cfg.voters.clone(),
            outgoing: BTreeSet::new(),
            auto_leave: false,
            cfg,
            signer,
            me,
            id,
            raw,
            rng: Rng::new(u64::from_le_bytes(seed_bytes)),
            now: now.get(),
            next_tick: now.get(),
            next_rebroadcast: now.get(),
            chain,
            applied_height: 0,
            applied_hash: Hash::ZERO,
            applied_time: Timestamp::new(0),
            pending: BTreeMap::new(),
            acks: BTreeMap::new(),
            pending_request: None,
            proposed: None,
            poisoned: false,
        };
        engine.applied_time = engine.cfg.genesis_time;
        engine.randomize_election_timeout();
        let mut out = Effects::default();
        engine.guarded(|e| e.process_ready(&mut out))?;
        engine.finish(&mut out);
        Ok((engine, out))
    }

    /// This node's key.
    pub fn public_key(&self) -> &PublicKey {
        &self.me
    }

    /// This node's Raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<&PublicKey> {
        self.cfg.peers.get(&self.raw.raft.leader_id)
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The voters of the current configuration (as applied by this node).
    pub fn voters(&self) -> RaftVoters {
        RaftVoters {
            incoming: self.keys(&self.incoming),
            outgoing: self.keys(&self.outgoing),
        }
    }

    /// The voters a pending or decided block's certificate must satisfy, as
    /// this node applied them (for [`verify_raft_certificate`]).
    pub fn certificate_voters(&self, height: Height) -> Option<RaftVoters> {
        self.pending.get(&height).map(|p| p.voters.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &RaftConfig {
        &self.cfg
    }

    /// Proposes a membership change (joint consensus, left automatically:
    /// Ongaro & Ousterhout §6): `add` become voters, `remove` leave. Only
    /// the leader may propose, one change at a time. Every key must be in
    /// [`RaftConfig::peers`].
    pub fn propose_membership_change(
        &mut self,
        add: &[PublicKey],
        remove: &[PublicKey],
    ) -> Result<Effects, ConsensusError> {
        self.check_poisoned()?;
        if !self.is_leader() {
            return Err(ConsensusError::NotLeader {
                leader: self.leader().cloned(),
            });
        }
        if add.is_empty() && remove.is_empty() {
            return Err(ConsensusError::MembershipChangeRefused {
                reason: "no change",
            });
        }
        if self.raw.raft.has_pending_conf() || !self.outgoing.is_empty() {
            return Err(ConsensusError::MembershipChangeRefused {
                reason: "another membership change is still in progress",
            });
        }
        let mut changes = Vec::new();
        for (keys, make) in [
            (add, MemberChange::AddVoter as fn(u64) -> MemberChange),
            (remove, MemberChange::Remove as fn(u64) -> MemberChange),
        ] {
            for k in keys {
                let id = self
                    .cfg
                    .id_of(k)
                    .ok_or_else(|| ConsensusError::UnknownPeer { peer: k.clone() })?;
                changes.push(make(id));
            }
        }
        let change = MembershipChange {
            transition: Transition::JointImplicit,
            changes,
        };
        let cc = convert::conf_change_to_raft(&change);
        let mut out = Effects::default();
        self.guarded(|e| {
            e.raw.propose_conf_change(Vec::new(), cc).map_err(|_| {
                ConsensusError::MembershipChangeRefused {
                    reason: "raft-rs refused the change",
                }
            })?;
            e.process_ready(&mut out);
            Ok::<(), ConsensusError>(())
        })??;
        self.finish(&mut out);
        Ok(out)
    }

    fn keys(&self, ids: &BTreeSet<u64>) -> Vec<PublicKey> {
        ids.iter()
            .filter_map(|id| self.cfg.peers.get(id).cloned())
            .collect()
    }

    fn check_poisoned(&self) -> Result<(), ConsensusError> {
        if self.poisoned {
            return Err(ConsensusError::Poisoned {
                reason: "raft-rs panicked earlier",
            });
        }
        Ok(())
    }

    /// Runs `f`, turning a raft-rs panic (an invariant it asserts, which a
    /// protocol-violating peer could trip) into a poisoned engine.
    fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Result<R, ConsensusError> {
        self.check_poisoned()?;
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(r) => {
                self.randomize_election_timeout();
                Ok(r)
            }
            Err(_) => {
                self.poisoned = true;
                Err(ConsensusError::Poisoned {
                    reason: "raft-rs panicked on an input",
                })
            }
        }
    }

    /// Replaces raft-rs's `thread_rng` election timeout (§5.2) with a draw
    /// from the engine's seeded generator whenever the election clock was
    /// just reset (before any tick can compare against it).
    fn randomize_election_timeout(&mut self) {
        if self.raw.raft.election_elapsed != 0 {
            return;
        }
        let min = self.cfg.election_ticks;
        let span = min.max(1) as u64;
        let t = min + self.rng.below(span) as usize;
        if t >= min && t < min.saturating_mul(2) {
            self.raw.raft.set_randomized_election_timeout(t);
        }
    }

    fn broadcast(&self, body: RaftBody, out: &mut Effects) {
        out.send.push(Outgoing {
            to: Recipient::All,
            bytes: RaftMessage {
                chain_id: self.cfg.chain_id.clone(),
                body,
            }
            .to_bytes(),
        });
    }

    fn send_to(&self, to: &PublicKey, body: RaftBody, out: &mut Effects) {
        out.send.push(Outgoing {
            to: Recipient::One(to.clone()),
            bytes: RaftMessage {
                chain_id: self.cfg.chain_id.clone(),
                body,
            }
            .to_bytes(),
        });
    }

    fn persist(&self, rec: &RaftRecord, out: &mut Effects) {
        out.persist.push(rec.to_bytes());
    }

    fn send_raft(&self, messages: Vec<raft::eraftpb::Message>, out: &mut Effects) {
        for m in messages {
            let Some(to) = self.cfg.peers.get(&m.to) else {
                continue;
            };
            // Snapshots never leave: the log is never compacted, so raft-rs
            // has no reason to send one.
            if let Some(p) = convert::message_from_raft(&m) {
                self.send_to(to, RaftBody::Protocol(p), out);
            }
        }
    }

    /// Handles every pending raft-rs `Ready`, in the order raft-rs
    /// requires: send unpersisted-safe messages, apply committed entries,
    /// persist entries and hard state, send persisted messages, advance,
    /// handle the light ready, advance the applied index.
    fn process_ready(&mut self, out: &mut Effects) {
        let mut rounds = 0;
        while self.raw.has_ready() && rounds < 64 {
            rounds += 1;
            let mut rd = self.raw.ready();
            self.send_raft(rd.take_messages(), out);
            let committed = rd.take_committed_entries();
            self.apply_entries(committed, out);
            let entries = rd.take_entries();
            if !entries.is_empty() {
                let canonical: Vec<_> = entries
                    .iter()
                    .filter_map(convert::entry_from_raft)
                    .collect();
                self.persist(&RaftRecord::Entries(canonical), out);
                // raft-rs hands out entries contiguous with its storage.
                let _appended = self.raw.mut_store().wl().append(&entries);
            }
            if let Some(hs) = rd.hs() {
                self.persist(
                    &RaftRecord::HardState {
                        term: hs.term,
                        vote: hs.vote,
                        commit: hs.commit,
                    },
                    out,
                );
                self.raw.mut_store().wl().set_hardstate(hs.clone());
            }
            self.send_raft(rd.take_persisted_messages(), out);
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                let mut hs = self.raw.store().rl().hard_state().clone();
                hs.commit = commit;
                self.persist(
                    &RaftRecord::HardState {
                        term: hs.term,
                        vote: hs.vote,
                        commit,
                    },
                    out,
                );
                self.raw.mut_store().wl().set_hardstate(hs);
            }
            self.send_raft(light.take_messages(), out);
            let committed = light.take_committed_entries();
            self.apply_entries(committed, out);
            self.raw.advance_apply();
        }
    }

    fn apply_entries(&mut self, entries: Vec<Entry>, out: &mut Effects) {
        for e in entries {
            match e.entry_type {
                EntryType::EntryNormal if e.data.is_empty() => {}
                EntryType::EntryNormal => {
                    if let Ok(lb) = decode_exact::<LeaderBlock>(
                        &e.data,
                        govchain_core::block::MAX_BLOCK_ENCODED_LEN,
                    ) {
                        self.apply_block(e.term, lb, out);
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    if let Some(change) = convert::local_conf_change(&e) {
                        let cc: ConfChangeV2 = convert::conf_change_to_raft(&change);
                        if let Ok(cs) = self.raw.apply_conf_change(&cc) {
                            self.incoming = cs.voters.iter().copied().collect();
                            self.outgoing = cs.voters_outgoing.iter().copied().collect();
                            self.auto_leave = cs.auto_leave;
                            self.raw.mut_store().wl().set_conf_state(cs);
                        }
                    }
                }
                EntryType::EntryConfChange => {}
            }
        }
    }

    /// Structural validity of a block extending the applied chain.
    fn check_block(&self, block: &Block) -> Result<(), InvalidBlockReason> {
        let hd = &block.header;
        if hd.chain_id != self.cfg.chain_id {
            return Err(InvalidBlockReason::WrongChain {
                got: hd.chain_id.clone(),
            });
        }
        if hd.height.get() != self.applied_height + 1 {
            return Err(InvalidBlockReason::WrongHeight { got: hd.height });
        }
        if hd.parent_hash != self.applied_hash {
            return Err(InvalidBlockReason::WrongParent {
                expected: self.applied_hash,
                got: hd.parent_hash,
            });
        }
        if hd.time < self.applied_time {
            return Err(InvalidBlockReason::TimeWentBackwards);
        }
        if self.cfg.id_of(&hd.proposer).is_none() {
            return Err(InvalidBlockReason::WrongProposer {
                got: hd.proposer.clone(),
            });
        }
        block
            .validate_body()
            .map_err(|source| InvalidBlockReason::Body { source })
    }

    fn block_vote(&self, block: &Block, term: u64) -> VoteMessage {
        VoteMessage {
            kind: VoteKind::Precommit,
            chain_id: self.cfg.chain_id.clone(),
            height: block.header.height,
            round: Round::new(u32::try_from(term).unwrap_or(u32::MAX)),
            block_hash: Some(block.hash()),
        }
    }

    /// Applies a committed block (§5.3: entries are applied in log order).
    /// Every member applies the same committed log, so skipping a block that
    /// does not extend the applied chain is deterministic everywhere.
    fn apply_block(&mut self, term: u64, lb: LeaderBlock, out: &mut Effects) {
        if self.check_block(&lb.block).is_err() {
            return;
        }
        let vote = self.block_vote(&lb.block, term);
        let leader = lb.block.header.proposer.clone();
        let leader_vote = SignedVote {
            vote: vote.clone(),
            validator: leader.clone(),
            signature: lb.leader_signature,
        };
        if !leader_vote.verify_signature() {
            return;
        }
        let h = lb.block.header.height;
        self.applied_height = h.get();
        self.applied_hash = lb.block.hash();
        self.applied_time = lb.block.header.time;
        if self.proposed.is_some_and(|(p, _)| p <= h) {
            self.proposed = None;
        }
        if h < self.height() {
            // Decided before a restart; the log is being re-applied.
            return;
        }
        let voters = self.voters();
        let acks = self.acks.entry(h).or_default();
        acks.retain(|_, v| v.vote == vote);
        acks.insert(leader.clone(), leader_vote);
        let member = voters.incoming.contains(&self.me) || voters.outgoing.contains(&self.me);
        if member && leader != self.me {
            let own = SignedVote::sign(vote.clone(), self.signer.as_ref());
            acks.insert(self.me.clone(), own.clone());
            self.broadcast(RaftBody::Ack(own), out);
        }
        self.pending.insert(
            h,
            Pending {
                block: lb.block,
                vote,
                voters,
            },
        );
        self.try_decide(out);
    }

    /// Emits every consecutive pending block whose acknowledgements form a
    /// certificate.
    fn try_decide(&mut self, out: &mut Effects) {
        loop {
            let h = self.height();
            let Some(p) = self.pending.get(&h) else {
                return;
            };
            let Some(acks) = self.acks.get(&h) else {
                return;
            };
            let mut signatures: Vec<CommitSignature> = acks
                .values()
                .filter(|v| {
                    v.vote == p.vote
                        && (p.voters.incoming.contains(&v.validator)
                            || p.voters.outgoing.contains(&v.validator))
                })
                .map(|v| CommitSignature {
                    validator: v.validator.clone(),
                    signature: v.signature,
                })
                .collect();
            signatures.sort_by(|a, b| a.validator.cmp(&b.validator));
            let signers: BTreeSet<&PublicKey> = signatures.iter().map(|s| &s.validator).collect();
            if check_majorities(&signers, &p.block.header.proposer, &p.voters).is_err() {
                return;
            }
            let certificate = CommitCertificate {
                chain_id: self.cfg.chain_id.clone(),
                height: h,
                round: p.vote.round,
                block_hash: p.block.hash(),
                signatures,
            };
            let decided = DecidedBlock {
                block: p.block.clone(),
                certificate,
            };
            self.commit(decided, out);
        }
    }

    fn commit(&mut self, decided: DecidedBlock, out: &mut Effects) {
        let h = decided.block.header.height;
        self.persist(&RaftRecord::Decided(Box::new(decided.clone())), out);
        out.decided.push(decided.clone());
        self.chain.insert(h, decided);
        self.pending.remove(&h);
        self.acks = self.acks.split_off(&Height::new(h.get() + 1));
    }

    fn on_ack(&mut self, v: SignedVote, out: &mut Effects) -> Result<(), ConsensusError> {
        if v.vote.chain_id != self.cfg.chain_id {
            return Err(ConsensusError::WrongChain {
                expected: self.cfg.chain_id.clone(),
                got: v.vote.chain_id.clone(),
            });
        }
        if v.vote.kind != VoteKind::Precommit || v.vote.block_hash.is_none() {
            return Err(ConsensusError::UnexpectedMessage {
                reason: "an acknowledgement is a precommit for a block",
            });
        }
        if self.cfg.id_of(&v.validator).is_none() {
            return Err(ConsensusError::UnknownPeer {
                peer: v.validator.clone(),
            });
        }
        let h = v.vote.height;
        let current = self.height();
        if h < current {
            return Ok(());
        }
        let max_ahead = self.cfg.max_ack_heights_ahead;
        if h.get() > current.get().saturating_add(max_ahead) {
            return Err(ConsensusError::HeightTooFarAhead {
                current,
                got: h,
                max_ahead,
            });
        }
        if let Some(p) = self.pending.get(&h) {
            if p.vote != v.vote {
                return Ok(());
            }
        }
        if self
            .acks
            .get(&h)
            .is_some_and(|a| a.contains_key(&v.validator))
        {
            return Ok(());
        }
        if !v.verify_signature() {
            return Err(ConsensusError::InvalidSignature {
                signer: v.validator.clone(),
            });
        }
        self.acks
            .entry(h)
            .or_default()
            .insert(v.validator.clone(), v);
        self.try_decide(out);
        Ok(())
    }

    fn on_decided(&mut self, d: DecidedBlock, out: &mut Effects) -> Result<(), ConsensusError> {
        let h = d.block.header.height;
        let Some(p) = self.pending.get(&h) else {
            return Ok(());
        };
        if h != self.height() || p.block != d.block {
            return Ok(());
        }
        verify_raft_certificate(&d.certificate, &self.cfg.chain_id, &d.block, &p.voters).map_err(
            |e| match e {
                RaftCertificateError::Certificate { source } => {
                    ConsensusError::InvalidCertificate {
                        block: d.block.hash(),
                        source,
                    }
                }
                _ => ConsensusError::InvalidCertificate {
                    block: d.block.hash(),
                    source: CertificateError::InsufficientPower {
                        signed: d.certificate.signatures.len() as u64,
                        total: (p.voters.incoming.len() + p.voters.outgoing.len()) as u64,
                    },
                },
            },
        )?;
        self.commit(d, out);
        self.try_decide(out);
        Ok(())
    }

    fn on_sync_request(&self, from: &PublicKey, h: Height, out: &mut Effects) {
        for (_, d) in self.chain.range(h..).take(self.cfg.sync_batch) {
            self.send_to(from, RaftBody::Decided(Box::new(d.clone())), out);
        }
        for (_, acks) in self.acks.range(h..).take(self.cfg.sync_batch) {
            if let Some(own) = acks.get(&self.me) {
                self.send_to(from, RaftBody::Ack(own.clone()), out);
            }
        }
    }

    fn on_protocol(&mut self, from: &PublicKey, m: ProtocolMessage) -> Result<(), ConsensusError> {
        let sender = self
            .cfg
            .id_of(from)
            .ok_or_else(|| ConsensusError::UnknownPeer { peer: from.clone() })?;
        if m.from != sender {
            return Err(ConsensusError::UnexpectedMessage {
                reason: "the sender field is not the authenticated peer",
            });
        }
        if m.to != self.id {
            return Err(ConsensusError::UnexpectedMessage {
                reason: "addressed to another node",
            });
        }
        // Cheap checks of invariants raft-rs asserts (it panics otherwise).
        let last = self.raw.raft.raft_log.last_index();
        if m.kind == RaftMessageKind::Heartbeat && m.commit > last {
            return Err(ConsensusError::UnexpectedMessage {
                reason: "heartbeat commits beyond the local log",
            });
        }
        for (i, e) in m.entries.iter().enumerate() {
            if Some(e.index) != m.index.checked_add(i as u64 + 1) {
                return Err(ConsensusError::UnexpectedMessage {
                    reason: "appended entries are not contiguous after the previous index",
                });
            }
        }
        let msg = convert::message_to_raft(&m).ok_or(ConsensusError::UnexpectedMessage {
            reason: "entry cannot be converted",
        })?;
        self.guarded(|e| e.raw.step(msg))?
            .map_err(|_| ConsensusError::UnexpectedMessage {
                reason: "refused by the Raft state machine",
            })
    }

    /// Housekeeping at the end of every call: drop stale requests, finish a
    /// joint configuration a previous leader left, and ask for the next
    /// block when this node leads.
    fn finish(&mut self, out: &mut Effects) {
        let leader = self.is_leader();
        let term = self.raw.raft.term;
        if self.proposed.is_some_and(|(_, t)| t != term) || !leader {
            self.proposed = None;
        }
        if !leader {
            self.pending_request = None;
            out.propose_request = None;
            return;
        }
        let settled = self.raw.raft.apply_to_current_term();
        // raft-rs leaves a joint configuration automatically only if the
        // leader that entered it stays leader until it is applied (its own
        // TODO); a later leader finishes the transition (§6).
        if settled
            && !self.outgoing.is_empty()
            && self.auto_leave
            && !self.raw.raft.has_pending_conf()
        {
            let mut leave = Effects::default();
            let proposed = self.guarded(|e| {
                let r = e
                    .raw
                    .propose_conf_change(Vec::new(), ConfChangeV2::default());
                e.process_ready(&mut leave);
                r
            });
            if matches!(proposed, Ok(Ok(()))) {
                out.extend(leave);
            }
        }
        if !settled || self.pending_request.is_some() || self.proposed.is_some() {
            if out.propose_request.is_some() && out.propose_request != self.pending_request {
                out.propose_request = None;
            }
            return;
        }
        let voters = self.voters();
        let set_hash = voters.incoming_set().map_or(Hash::ZERO, |s| s.hash());
        let request = ProposeRequest {
            chain_id: self.cfg.chain_id.clone(),
            height: Height::new(self.applied_height + 1),
            round: Round::new(u32::try_from(term).unwrap_or(u32::MAX)),
            parent_hash: self.applied_hash,
            parent_time: self.applied_time,
            validator_set_hash: set_hash,
            next_validator_set_hash: set_hash,
            proposer: self.me.clone(),
        };
        self.pending_request = Some(request.clone());
        out.propose_request = Some(request);
    }

    fn rebroadcast(&self, out: &mut Effects) {
        if self.pending.is_empty() {
            return;
        }
        for (_, acks) in self.acks.iter().take(self.cfg.sync_batch) {
            if let Some(own) = acks.get(&self.me) {
                self.broadcast(RaftBody::Ack(own.clone()), out);
            }
        }
        self.broadcast(
            RaftBody::SyncRequest {
                from: self.height(),
            },
            out,
        );
    }
}

impl Consensus for Raft {
    fn tick(&mut self, now: Timestamp) -> Effects {
        let mut out = Effects::default();
        if self.poisoned {
            return out;
        }
        self.now = self.now.max(now.get());
        let mut ticks = 0;
        while self.next_tick <= self.now && ticks < 1_000 {
            ticks += 1;
            self.next_tick = self.next_tick.saturating_add(self.cfg.tick_ms);
            if self.guarded(|e| e.raw.tick()).is_err() {
                return out;
            }
        }
        if self.next_tick <= self.now {
            self.next_tick = self.now.saturating_add(self.cfg.tick_ms);
        }
        if self.now >= self.next_rebroadcast {
            self.next_rebroadcast = self.now.saturating_add(self.cfg.rebroadcast_ms);
            self.rebroadcast(&mut out);
        }
        if self.guarded(|e| e.process_ready(&mut out)).is_err() {
            return out;
        }
        self.finish(&mut out);
        out
    }

    fn step(&mut self, from: &PublicKey, message: &[u8]) -> Result<Effects, ConsensusError> {
        self.check_poisoned()?;
        if message.len() > self.cfg.max_message_len {
            return Err(ConsensusError::MessageTooLarge {
                len: message.len(),
                max: self.cfg.max_message_len,
            });
        }
        let msg = RaftMessage::decode(message, self.cfg.max_message_len)?;
        if msg.chain_id != self.cfg.chain_id {
            return Err(ConsensusError::WrongChain {
                expected: self.cfg.chain_id.clone(),
                got: msg.chain_id,
            });
        }
        let mut out = Effects::default();
        match msg.body {
            RaftBody::Protocol(m) => self.on_protocol(from, m)?,
            RaftBody::Ack(v) => self.on_ack(v, &mut out)?,
            RaftBody::Decided(d) => self.on_decided(*d, &mut out)?,
            RaftBody::SyncRequest { from: h } => self.on_sync_request(from, h, &mut out),
        }
        self.guarded(|e| e.process_ready(&mut out))?;
        self.finish(&mut out);
        Ok(out)
    }

    fn propose(&mut self, block: Block) -> Result<Effects, ConsensusError> {
        self.check_poisoned()?;
        let Some(request) = self.pending_request.take() else {
            return Err(ConsensusError::NoProposalRequested {
                height: self.height(),
            });
        };
        if !self.is_leader() {
            return Err(ConsensusError::NotLeader {
                leader: self.leader().cloned(),
            });
        }
        let checked = self.check_block(&block).and_then(|()| {
            if block.header.proposer == self.me && block.header.height == request.height {
                Ok(())
            } else {
                Err(InvalidBlockReason::WrongProposer {
                    got: block.header.proposer.clone(),
                })
            }
        });
        if let Err(reason) = checked {
            let height = block.header.height;
            self.pending_request = Some(request);
            return Err(ConsensusError::InvalidBlock { height, reason });
        }
        let term = self.raw.raft.term;
        let vote = self.block_vote(&block, term);
        let leader_signature = vote.sign(self.signer.as_ref());
        let height = block.header.height;
        let data = LeaderBlock {
            block,
            leader_signature,
        }
        .to_bytes();
        let mut out = Effects::default();
        self.guarded(|e| {
            e.raw
                .propose(Vec::new(), data)
                .map_err(|_| ConsensusError::NotLeader {
                    leader: e.leader().cloned(),
                })?;
            e.proposed = Some((height, term));
            e.process_ready(&mut out);
            Ok::<(), ConsensusError>(())
        })??;
        self.finish(&mut out);
        Ok(out)
    }

    fn height(&self) -> Height {
        Height::new(self.chain.len() as u64 + 1)
    }

    fn decided_block(&self, height: Height) -> Option<&DecidedBlock> {
        self.chain.get(&height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::crypto::SecretKey;

    #[test]
    fn config_validation() {
        let k = SecretKey::from_seed(&[1; 32]);
        let cfg = RaftConfig::new(ChainId::new("r").unwrap(), vec![k.public_key()]);
        assert!(cfg.validate().is_ok());
        let mut bad = cfg.clone();
        bad.voters.insert(9);
        assert!(bad.validate().is_err());
        let mut bad = cfg;
        bad.heartbeat_ticks = bad.election_ticks;
        assert!(bad.validate().is_err());
    }
}
