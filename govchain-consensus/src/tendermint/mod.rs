//! The Tendermint BFT engine.
//!
//! The round state machine (Algorithm 1 of arXiv:1807.04938: propose,
//! prevote, precommit, locks, round skips, decisions) is the Malachite core
//! driver, pinned at `=0.8.2`. This module is everything around it:
//!
//! - **Signing** with govchain's [`Signer`]: votes sign the core
//!   [`VoteMessage`] (so precommits *are* certificate signatures) and
//!   proposals sign a digest under `Domain::Proposal`.
//! - **Write-ahead log.** Every input accepted into the driver at the current
//!   height (proposals, votes, fired timeouts) and every decided block is a
//!   persist record. Own votes and proposals are fed back as inputs, so they
//!   are persisted in the same batch, *before* the messages that carry them
//!   are sent. [`Tendermint::restore`] replays the log through a fresh driver,
//!   which reproduces the round state, including locks (lines 36–43). A
//!   signing guard refuses to sign a second, different statement for a slot
//!   it already signed, so a restarted validator never double-signs.
//! - **Timeouts from ticks** (lines 57–65): the driver asks for timeouts,
//!   [`Consensus::tick`] fires them, in deadline order.
//! - **Gossip:** all-to-all broadcast, with periodic re-broadcast of this
//!   node's own latest proposal and votes so that dropped messages are
//!   eventually re-delivered after GST (the paper's gossip assumption, §III).
//! - **Catch-up:** a message from a lower height is answered with decided
//!   blocks and certificates; a message from a higher height is buffered
//!   (bounded) and triggers a `SyncRequest`. A decided block is accepted from
//!   any peer if its certificate verifies against the scheduled validator set.
//! - **Evidence:** the first vote per (height, round, step, validator) and the
//!   first proposal per (height, round) are kept; a conflicting one yields
//!   [`Evidence`].

mod context;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arc_malachitebft_core_driver::{Driver, Input, Output, ThresholdParams};
use arc_malachitebft_core_types::{self as mt, SignedMessage};
use govchain_core::block::Block;
use govchain_core::cert::{
    canonical_signatures, CommitCertificate, CommitSignature, VoteKind, VoteMessage,
};
use govchain_core::codec::Encode;
use govchain_core::crypto::{PublicKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::{KeyRejection, ValidatorSet};

use crate::wire::{Message, PolkaCertificate, TimeoutKind, WalRecord};
use crate::{
    Consensus, ConsensusError, DecidedBlock, Effects, Evidence, InvalidBlockReason, Outgoing,
    ProposeRequest, Recipient, SignedProposal, SignedVote,
};
use context::{Addr, BlockId, Ctx, Prop, Sig, Timeouts, ValSet};

/// Round timeouts in milliseconds. Each grows by `delta_ms` per round, up to
/// `max_ms` (the paper's assumption that timeouts grow with the round, §IV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// `timeoutPropose(0)`.
    pub propose_ms: u64,
    /// `timeoutPrevote(0)`.
    pub prevote_ms: u64,
    /// `timeoutPrecommit(0)`.
    pub precommit_ms: u64,
    /// Added per round.
    pub delta_ms: u64,
    /// Cap.
    pub max_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        TimeoutConfig {
            propose_ms: 3_000,
            prevote_ms: 1_000,
            precommit_ms: 1_000,
            delta_ms: 500,
            max_ms: 60_000,
        }
    }
}

/// Configuration of a [`Tendermint`] engine. Every node of a chain must use
/// the same `chain_id`, `genesis_time` and validator schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TendermintConfig {
    /// The chain.
    pub chain_id: ChainId,
    /// Time of the genesis state; block 1's time must not be earlier.
    pub genesis_time: Timestamp,
    /// Validator sets by first height: the set for height `h` is the entry
    /// with the greatest key `<= h`. Must contain height 1.
    pub validator_schedule: BTreeMap<Height, ValidatorSet>,
    /// Round timeouts.
    pub timeouts: TimeoutConfig,
    /// How often own messages are re-broadcast and catch-up is requested.
    pub rebroadcast_ms: u64,
    /// Largest accepted message in bytes.
    pub max_message_len: usize,
    /// How many heights beyond the current one are buffered.
    pub max_future_heights: u64,
    /// Most buffered future messages per sending peer.
    pub max_buffered_per_peer: usize,
    /// Most rounds beyond the current round a message may be for.
    pub max_round_ahead: u32,
    /// Most decided blocks sent in answer to one catch-up request.
    pub sync_batch: usize,
    /// Whether proposals wait for the application's verdict
    /// ([`Effects::validate`], [`Consensus::block_validated`]) before the
    /// engine prevotes for them. Off, the engine judges blocks structurally
    /// only (chain, height, parent, time, validator sets, proposer, body).
    pub app_validation: bool,
    /// How many of the latest decided blocks the engine keeps in memory to
    /// answer catch-up requests; `None` keeps every block (the simulator's
    /// checker reads them all). A host with a block store sets a bound and
    /// serves older blocks itself (block sync), so memory stays flat as the
    /// chain grows.
    pub retain_decided: Option<u64>,
}

impl TendermintConfig {
    /// A configuration with default limits and timeouts for a chain whose
    /// validators never change.
    pub fn new(chain_id: ChainId, validators: ValidatorSet) -> Self {
        let mut validator_schedule = BTreeMap::new();
        validator_schedule.insert(Height::new(1), validators);
        TendermintConfig {
            chain_id,
            genesis_time: Timestamp::new(0),
            validator_schedule,
            timeouts: TimeoutConfig::default(),
            rebroadcast_ms: 1_000,
            max_message_len: 8 * 1024 * 1024,
            max_future_heights: 4,
            max_buffered_per_peer: 256,
            max_round_ahead: 64,
            sync_batch: 16,
            app_validation: false,
            retain_decided: None,
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        if !self.validator_schedule.contains_key(&Height::new(1)) {
            return Err(ConsensusError::InvalidConfig {
                reason: "validator schedule must start at height 1",
            });
        }
        if self.validator_schedule.contains_key(&Height::new(0)) {
            return Err(ConsensusError::InvalidConfig {
                reason: "height 0 is genesis and has no validator set",
            });
        }
        if self.timeouts.propose_ms == 0
            || self.timeouts.prevote_ms == 0
            || self.timeouts.precommit_ms == 0
            || self.rebroadcast_ms == 0
        {
            return Err(ConsensusError::InvalidConfig {
                reason: "timeouts and rebroadcast interval must be positive",
            });
        }
        if self.max_message_len == 0
            || self.sync_batch == 0
            || self.max_round_ahead == 0
            || self.retain_decided == Some(0)
        {
            return Err(ConsensusError::InvalidConfig {
                reason: "limits must be positive",
            });
        }
        Ok(())
    }

    /// The validator set that signs `height`.
    pub fn validators_at(&self, height: Height) -> Option<&ValidatorSet> {
        self.validator_schedule
            .range(..=height)
            .next_back()
            .map(|(_, set)| set)
    }
}

/// Counters useful to tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TendermintStats {
    /// Votes or proposals the signing guard refused to sign because a
    /// different one was already signed for the slot.
    pub refused_double_signs: u64,
    /// Blocks decided through catch-up (a certificate from a peer) rather
    /// than through the local round.
    pub caught_up_blocks: u64,
    /// Inputs the driver rejected.
    pub driver_errors: u64,
}

/// The Tendermint engine. See the [module docs](self).
pub struct Tendermint {
    cfg: TendermintConfig,
    /// Every key this node holds (a validator rotating its key holds the
    /// old and the new one), in the order given.
    keys: Vec<Arc<dyn Signer>>,
    /// The key signing at the current height (see `choose_key`).
    signer: Arc<dyn Signer>,
    me: PublicKey,
    /// The member `me` signs for (the driver's address): `me` itself, or
    /// the successor of `me` when `me` is a rotated-out key.
    member: PublicKey,
    driver: Driver<Ctx>,
    height: Height,
    chain: BTreeMap<Height, DecidedBlock>,
    /// Valid blocks proposed at the current height, by hash.
    blocks: BTreeMap<Hash, Block>,
    /// First proposal per round at the current height.
    proposals: BTreeMap<u32, SignedProposal>,
    /// First vote per (round, kind, validator) at the current height.
    votes: BTreeMap<(u32, VoteKind, PublicKey), SignedVote>,
    /// Verified polka certificates received at the current height, by
    /// (round, block).
    polkas: BTreeMap<(u32, Hash), PolkaCertificate>,
    /// The application's verdicts on blocks at the current height.
    verdicts: BTreeMap<Hash, bool>,
    /// Proposals at the current height waiting for a verdict, by block.
    awaiting_verdict: BTreeMap<Hash, Vec<SignedProposal>>,
    /// Our own signed votes at the current height (the signing guard).
    own_votes: BTreeMap<(u32, VoteKind), SignedVote>,
    timers: BTreeMap<(u64, u64), mt::Timeout>,
    timer_seq: u64,
    now: u64,
    future: BTreeMap<Height, Vec<(PublicKey, Message)>>,
    future_per_peer: BTreeMap<PublicKey, usize>,
    pending_request: Option<ProposeRequest>,
    next_rebroadcast: u64,
    sync_from: Option<PublicKey>,
    last_push: BTreeMap<PublicKey, u64>,
    /// `now` when the current height started (when the previous one was
    /// decided here).
    height_started_at: u64,
    evidence_seen: BTreeSet<(PublicKey, u64, u32, u8)>,
    replaying: bool,
    /// Every record persisted since, and including, the last decided block:
    /// all a restart needs (see [`Consensus::compacted_log`]).
    since_decided: Vec<Vec<u8>>,
    stats: TendermintStats,
}

impl std::fmt::Debug for Tendermint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tendermint")
            .field("me", &self.me)
            .field("height", &self.height)
            .field("round", &self.round())
            .finish_non_exhaustive()
    }
}

fn mt_round(r: Round) -> mt::Round {
    mt::Round::new(r.get())
}

fn our_round(r: mt::Round) -> Round {
    Round::new(r.as_u32().unwrap_or(0))
}

fn vote_kind(t: mt::VoteType) -> VoteKind {
    match t {
        mt::VoteType::Prevote => VoteKind::Prevote,
        mt::VoteType::Precommit => VoteKind::Precommit,
    }
}

fn mt_vote_type(k: VoteKind) -> mt::VoteType {
    match k {
        VoteKind::Prevote => mt::VoteType::Prevote,
        VoteKind::Precommit => mt::VoteType::Precommit,
    }
}

/// The key of `keys` to sign with at `height` under `set`, and the member it
/// signs for: a member's own key first, else a rotated-out key inside its
/// overlap. `None` when no key may sign (an observer, or every key out of
/// its window).
fn choose_key(
    keys: &[Arc<dyn Signer>],
    set: &ValidatorSet,
    height: Height,
) -> Option<(Arc<dyn Signer>, PublicKey)> {
    let mut fallback = None;
    for key in keys {
        let public = key.public_key();
        if let Ok((_, member)) = set.may_sign(&public, height) {
            if member.public_key == public {
                return Some((key.clone(), public));
            }
            fallback.get_or_insert_with(|| (key.clone(), member.public_key.clone()));
        }
    }
    fallback
}

fn to_driver_vote(v: &SignedVote, member: PublicKey) -> mt::SignedVote<Ctx> {
    SignedMessage::new(
        context::Vote {
            height: context::H(v.vote.height.get()),
            round: mt_round(v.vote.round),
            value: match v.vote.block_hash {
                Some(h) => mt::NilOrVal::Val(BlockId(h)),
                None => mt::NilOrVal::Nil,
            },
            kind: mt_vote_type(v.vote.kind),
            validator: Addr(member),
        },
        Sig(v.signature),
    )
}

fn to_driver_proposal(p: &SignedProposal, member: PublicKey) -> mt::SignedProposal<Ctx> {
    SignedMessage::new(
        Prop {
            height: context::H(p.height().get()),
            round: mt_round(p.round),
            value: BlockId(p.block.hash()),
            pol_round: p.pol_round.map(mt_round).unwrap_or(mt::Round::Nil),
            proposer: Addr(member),
        },
        Sig(p.signature),
    )
}

fn timeout_kind(k: mt::TimeoutKind) -> Option<TimeoutKind> {
    match k {
        mt::TimeoutKind::Propose => Some(TimeoutKind::Propose),
        mt::TimeoutKind::Prevote => Some(TimeoutKind::Prevote),
        mt::TimeoutKind::Precommit => Some(TimeoutKind::Precommit),
        _ => None,
    }
}

fn mt_timeout(round: Round, kind: TimeoutKind) -> mt::Timeout {
    let r = mt_round(round);
    match kind {
        TimeoutKind::Propose => mt::Timeout::propose(r),
        TimeoutKind::Prevote => mt::Timeout::prevote(r),
        TimeoutKind::Precommit => mt::Timeout::precommit(r),
    }
}

impl Tendermint {
    /// Builds an engine from its persisted records (empty for a fresh node)
    /// and returns the effects of starting it: re-broadcasts of its own
    /// votes, and any records newly persisted while replaying.
    ///
    /// Errors: [`ConsensusError::InvalidConfig`] and
    /// [`ConsensusError::CorruptState`] (a record does not decode, or decided
    /// blocks are not contiguous).
    pub fn restore(
        cfg: TendermintConfig,
        signer: Arc<dyn Signer>,
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError> {
        Self::restore_with_keys(cfg, vec![signer], records, now)
    }

    /// [`Self::restore`] for a node that holds several keys: a validator
    /// rotating its key (`ValidatorSet::with_rotation`) holds the old and
    /// the new one. At every height the engine signs with the key that is
    /// a member of that height's set, or else with a rotated-out key still
    /// inside its overlap; so it switches to the new key exactly at the
    /// rotation height, and a node that was given only its old key keeps
    /// voting until the overlap ends.
    ///
    /// Errors: as [`Self::restore`], and [`ConsensusError::InvalidConfig`]
    /// for an empty key list.
    pub fn restore_with_keys(
        cfg: TendermintConfig,
        keys: Vec<Arc<dyn Signer>>,
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError> {
        cfg.validate()?;
        let Some(first) = keys.first().cloned() else {
            return Err(ConsensusError::InvalidConfig {
                reason: "a node needs at least one key",
            });
        };
        let mut decoded = Vec::with_capacity(records.len());
        for (index, bytes) in records.iter().enumerate() {
            let rec: WalRecord =
                govchain_core::codec::decode_exact(bytes, usize::MAX).map_err(|e| {
                    ConsensusError::CorruptState {
                        index,
                        reason: e.to_string(),
                    }
                })?;
            decoded.push(rec);
        }
        // The first decided record is the base: height 1 for a full log, or
        // the last block kept by a compaction ([`Consensus::compacted_log`]).
        let mut chain: BTreeMap<Height, DecidedBlock> = BTreeMap::new();
        let mut last_decided_index = None;
        for (index, rec) in decoded.iter().enumerate() {
            if let WalRecord::Decided(d) = rec {
                let h = d.block.header.height;
                let expected = match chain.last_key_value() {
                    Some((last, _)) => last.next().unwrap_or(*last),
                    None => h,
                };
                if let Some(existing) = chain.get(&h) {
                    if existing != d {
                        return Err(ConsensusError::CorruptState {
                            index,
                            reason: format!("two different decided blocks at height {h}"),
                        });
                    }
                    continue;
                }
                if h != expected {
                    return Err(ConsensusError::CorruptState {
                        index,
                        reason: format!("decided height {h}, expected {expected}"),
                    });
                }
                chain.insert(h, d.clone());
                last_decided_index = Some(index);
            }
        }
        let height = match chain.last_key_value() {
            Some((last, _)) => last.next().ok_or(ConsensusError::CorruptState {
                index: last_decided_index.unwrap_or(0),
                reason: "decided height overflows".to_string(),
            })?,
            None => Height::new(1),
        };
        let core_set = cfg
            .validators_at(height)
            .ok_or(ConsensusError::InvalidConfig {
                reason: "no validator set for the current height",
            })?;
        let (signer, member) = choose_key(&keys, core_set, height).unwrap_or_else(|| {
            let me = first.public_key();
            (first, me)
        });
        let me = signer.public_key();
        let set = ValSet::from_core(core_set, height).ok_or(ConsensusError::InvalidConfig {
            reason: "no validator set for the current height",
        })?;
        let driver = Driver::new(
            Ctx,
            context::H(height.get()),
            set,
            Addr(member.clone()),
            ThresholdParams::default(),
        );
        let mut engine = Tendermint {
            cfg,
            keys,
            signer,
            me,
            member,
            driver,
            height,
            chain,
            blocks: BTreeMap::new(),
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            polkas: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            awaiting_verdict: BTreeMap::new(),
            own_votes: BTreeMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            now: now.get(),
            future: BTreeMap::new(),
            future_per_peer: BTreeMap::new(),
            pending_request: None,
            next_rebroadcast: now.get(),
            sync_from: None,
            last_push: BTreeMap::new(),
            height_started_at: 0,
            evidence_seen: BTreeSet::new(),
            replaying: true,
            since_decided: records[last_decided_index.unwrap_or(0)..].to_vec(),
            stats: TendermintStats::default(),
        };
        // Inputs of the current height, after the last decided block.
        let start = last_decided_index.map_or(0, |i| i + 1);
        let inputs: Vec<WalRecord> = decoded
            .into_iter()
            .skip(start)
            .filter(|r| match r {
                WalRecord::Proposal(p) => p.height() == height,
                WalRecord::Vote(v) => v.vote.height == height,
                WalRecord::Timeout { height: h, .. } => *h == height,
                WalRecord::Polka(c) => c.height == height,
                WalRecord::Decided(_) => false,
            })
            .collect();
        // Arm the signing guard before the driver can ask for anything.
        for rec in &inputs {
            match rec {
                WalRecord::Vote(v) if engine.holds(&v.validator) => {
                    engine
                        .own_votes
                        .entry((v.vote.round.get(), v.vote.kind))
                        .or_insert_with(|| v.clone());
                }
                WalRecord::Proposal(p) if engine.holds(p.proposer()) => {
                    engine
                        .proposals
                        .entry(p.round.get())
                        .or_insert_with(|| p.clone());
                }
                _ => {}
            }
        }
        let mut out = Effects::default();
        engine.start_height(height, &mut out);
        for rec in inputs {
            if engine.height != height {
                break;
            }
            match rec {
                WalRecord::Proposal(p) => engine.accept_proposal(p, &mut out),
                WalRecord::Vote(v) => engine.accept_vote(v, &mut out),
                WalRecord::Timeout { round, kind, .. } => {
                    engine.drive(Input::TimeoutElapsed(mt_timeout(round, kind)), &mut out)
                }
                WalRecord::Polka(c) => engine.accept_polka(c, &mut out),
                WalRecord::Decided(_) => {}
            }
        }
        engine.replaying = false;
        engine.rebroadcast(&mut out);
        engine.finish(&mut out);
        Ok((engine, out))
    }

    /// The key this node signs with at the current height.
    pub fn public_key(&self) -> &PublicKey {
        &self.me
    }

    /// Whether `key` is one of this node's keys.
    fn holds(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| &k.public_key() == key)
    }

    /// The member that `key` signs for at the current height (`key`
    /// itself unless it is a rotated-out key), if it may sign.
    fn member_of(&self, key: &PublicKey) -> Option<PublicKey> {
        self.set_at(self.height)
            .and_then(|s| s.may_sign(key, self.height).ok())
            .map(|(_, v)| v.public_key.clone())
    }

    /// A received vote in driver terms: its address is the member the
    /// signer signs for, so a member's two keys during a rotation overlap
    /// are one voter to the driver (one power; two different votes from
    /// them are an equivocation).
    fn driver_vote(&self, v: &SignedVote) -> mt::SignedVote<Ctx> {
        let member = self
            .member_of(&v.validator)
            .unwrap_or_else(|| v.validator.clone());
        to_driver_vote(v, member)
    }

    /// A proposal in driver terms, its proposer mapped like a vote's.
    fn driver_proposal(&self, p: &SignedProposal) -> mt::SignedProposal<Ctx> {
        let member = self
            .member_of(p.proposer())
            .unwrap_or_else(|| p.proposer().clone());
        to_driver_proposal(p, member)
    }

    /// The current round.
    pub fn round(&self) -> Round {
        our_round(self.driver.round())
    }

    /// Counters.
    pub fn stats(&self) -> TendermintStats {
        self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &TendermintConfig {
        &self.cfg
    }

    /// Schedules `set` to sign heights from `from` on. Every node must make
    /// the same call (for example when executing the governance transaction
    /// that changes the set) and must pass it again in the configuration
    /// after a restart. `from` must be at least two heights ahead, so the
    /// change is announced by `next_validator_set_hash` of a block not yet
    /// proposed.
    pub fn schedule_validator_set(
        &mut self,
        from: Height,
        set: ValidatorSet,
    ) -> Result<(), ConsensusError> {
        let earliest = Height::new(self.height.get().saturating_add(2));
        if from < earliest {
            return Err(ConsensusError::ScheduleTooLate { from, earliest });
        }
        self.cfg.validator_schedule.insert(from, set);
        Ok(())
    }

    /// Drops a block request that a later event in the same batch made
    /// stale (for example a catch-up that moved to the next height).
    fn finish(&self, out: &mut Effects) {
        if out.propose_request.is_some() && out.propose_request != self.pending_request {
            out.propose_request = None;
        }
    }

    fn set_at(&self, h: Height) -> Option<&ValidatorSet> {
        self.cfg.validators_at(h)
    }

    fn parent(&self) -> (Hash, Timestamp) {
        match self.height.prev().and_then(|p| self.chain.get(&p)) {
            Some(d) => (d.block.hash(), d.block.header.time),
            None => (Hash::ZERO, self.cfg.genesis_time),
        }
    }

    fn persist(&mut self, rec: &WalRecord, out: &mut Effects) {
        let bytes = rec.to_bytes();
        if matches!(rec, WalRecord::Decided(_)) {
            self.since_decided.clear();
        }
        self.since_decided.push(bytes.clone());
        out.persist.push(bytes);
    }

    fn broadcast(&self, msg: &Message, out: &mut Effects) {
        out.send.push(Outgoing {
            to: Recipient::All,
            bytes: msg.to_bytes(),
        });
    }

    fn send_to(&self, to: &PublicKey, msg: &Message, out: &mut Effects) {
        out.send.push(Outgoing {
            to: Recipient::One(to.clone()),
            bytes: msg.to_bytes(),
        });
    }

    /// Structural validity of a block at the current height (the `valid(v)`
    /// predicate of Algorithm 1, lines 23, 29, 36 and 49, as far as consensus
    /// can judge; execution results are the host's).
    fn validate_block(
        &self,
        block: &Block,
        signer: Option<&PublicKey>,
    ) -> Result<(), InvalidBlockReason> {
        let hd = &block.header;
        if hd.chain_id != self.cfg.chain_id {
            return Err(InvalidBlockReason::WrongChain {
                got: hd.chain_id.clone(),
            });
        }
        if hd.height != self.height {
            return Err(InvalidBlockReason::WrongHeight { got: hd.height });
        }
        let (parent, parent_time) = self.parent();
        if hd.parent_hash != parent {
            return Err(InvalidBlockReason::WrongParent {
                expected: parent,
                got: hd.parent_hash,
            });
        }
        if hd.time < parent_time {
            return Err(InvalidBlockReason::TimeWentBackwards);
        }
        let set = self.set_at(self.height).map(ValidatorSet::hash);
        let next = self
            .height
            .next()
            .and_then(|n| self.set_at(n))
            .map(ValidatorSet::hash);
        if set != Some(hd.validator_set_hash) || next != Some(hd.next_validator_set_hash) {
            return Err(InvalidBlockReason::WrongValidatorSet);
        }
        // The header names the validator that built the block; a later
        // round's proposer may re-propose it (line 16), so the signer of
        // the proposal need not be the builder, but the builder must be a
        // validator of this height, and a fresh proposal (no `vr`) is the
        // signer's own block.
        let member = self
            .set_at(self.height)
            .is_some_and(|s| s.may_sign(&hd.proposer, self.height).is_ok());
        if !member || signer.is_some_and(|s| s != &hd.proposer) {
            return Err(InvalidBlockReason::WrongProposer {
                got: hd.proposer.clone(),
            });
        }
        block
            .validate_body()
            .map_err(|source| InvalidBlockReason::Body { source })
    }

    fn proposer_at(&self, round: u32) -> Option<PublicKey> {
        let set = self
            .set_at(self.height)
            .and_then(|s| ValSet::from_core(s, self.height))?;
        Some(
            context::select_proposer(&set, self.height.get(), round)
                .addr
                .0
                .clone(),
        )
    }

    /// Whether this node may vote at the current height: a member whose
    /// key is inside its window.
    fn is_validator(&self) -> bool {
        self.set_at(self.height)
            .is_some_and(|s| s.may_sign(&self.me, self.height).is_ok())
    }

    // ---------------------------------------------------------------- heights

    fn start_height(&mut self, h: Height, out: &mut Effects) {
        self.height = h;
        self.height_started_at = self.now;
        self.blocks.clear();
        self.votes.clear();
        self.polkas.clear();
        self.verdicts.clear();
        self.awaiting_verdict.clear();
        self.timers.clear();
        self.pending_request = None;
        // Own statements survive only when restoring into this very height.
        self.own_votes.retain(|_, v| v.vote.height == h);
        self.proposals.retain(|_, p| p.height() == h);
        self.future_per_peer.clear();
        let Some(core_set) = self.cfg.validators_at(h) else {
            return;
        };
        // The key to sign with may change here (a rotation takes effect).
        let chosen = choose_key(&self.keys, core_set, h);
        let Some(set) = ValSet::from_core(core_set, h) else {
            return;
        };
        // No key may sign here: the node follows as an observer under its
        // first key. If that key is a member outside its window, the driver
        // never makes it the proposer (proposers are keys inside their
        // windows) and `sign_vote` refuses to sign for it.
        let (signer, member) = chosen.unwrap_or_else(|| {
            let first = self
                .keys
                .first()
                .cloned()
                .unwrap_or_else(|| self.signer.clone());
            let me = first.public_key();
            (first, me)
        });
        self.me = signer.public_key();
        self.signer = signer;
        self.member = member;
        if self.driver.address() == &Addr(self.member.clone()) {
            self.driver.move_to_height(context::H(h.get()), set.clone());
        } else {
            self.driver = Driver::new(
                Ctx,
                context::H(h.get()),
                set.clone(),
                Addr(self.member.clone()),
                ThresholdParams::default(),
            );
        }
        let proposer = context::select_proposer(&set, h.get(), 0).addr.clone();
        self.drive(
            Input::NewRound(context::H(h.get()), mt::Round::new(0), proposer),
            out,
        );
        // Replay messages buffered for this height (lines 11 and 54: the
        // next height starts with whatever already arrived for it).
        let buffered = self.future.remove(&h).unwrap_or_default();
        self.future = self.future.split_off(&h);
        for (from, msg) in buffered {
            if self.height != h {
                break;
            }
            let _refused = self.on_message(&from, msg, out);
        }
    }

    fn commit(&mut self, decided: DecidedBlock, out: &mut Effects) {
        let h = decided.block.header.height;
        self.persist(&WalRecord::Decided(decided.clone()), out);
        out.decided.push(decided.clone());
        self.chain.insert(h, decided);
        if let Some(keep) = self.cfg.retain_decided {
            let first_kept = Height::new(h.get().saturating_sub(keep - 1).max(1));
            self.chain = self.chain.split_off(&first_kept);
        }
        if let Some(next) = h.next() {
            self.start_height(next, out);
        }
    }

    // ------------------------------------------------------------ the driver

    fn drive(&mut self, input: Input<Ctx>, out: &mut Effects) {
        let height = self.height;
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let outputs = match self.driver.process(input) {
                Ok(o) => o,
                Err(_) => {
                    self.stats.driver_errors += 1;
                    continue;
                }
            };
            for output in outputs {
                self.on_output(output, &mut queue, out);
                if self.height != height {
                    return;
                }
            }
        }
    }

    fn on_output(
        &mut self,
        output: Output<Ctx>,
        queue: &mut std::collections::VecDeque<Input<Ctx>>,
        out: &mut Effects,
    ) {
        match output {
            // Line 11 / 65: StartRound(r).
            Output::NewRound(h, round) => {
                self.pending_request = None;
                let r = round.as_u32().unwrap_or(0);
                if let Some(p) = self.proposer_at(r) {
                    queue.push_back(Input::NewRound(h, round, Addr(p)));
                }
            }
            // Lines 14–19: the proposer broadcasts ⟨PROPOSAL, h, r, v, vr⟩.
            Output::Propose(prop) => self.sign_proposal(prop, queue, out),
            // Lines 22–35 (prevote), 36–47 (precommit).
            Output::Vote(vote) => self.sign_vote(vote, queue, out),
            // Line 49: decide on 2f+1 precommits for a valid proposal.
            Output::Decide(_, prop) => self.decide(prop, out),
            Output::ScheduleTimeout(t) => {
                if timeout_kind(t.kind).is_some() {
                    let deadline = self.now.saturating_add(self.timeouts().millis(t));
                    self.timer_seq += 1;
                    self.timers.insert((deadline, self.timer_seq), t);
                }
            }
            // Lines 14–18: getValue() — ask the host, unless this round's
            // proposal is already signed (restart).
            Output::GetValue(h, round, _) => {
                let r = round.as_u32().unwrap_or(0);
                if self.proposals.contains_key(&r) || h.0 != self.height.get() {
                    return;
                }
                let (parent_hash, parent_time) = self.parent();
                let next = self.height.next().and_then(|n| self.set_at(n));
                let (Some(set), Some(next)) = (self.set_at(self.height), next) else {
                    return;
                };
                let request = ProposeRequest {
                    chain_id: self.cfg.chain_id.clone(),
                    height: self.height,
                    round: Round::new(r),
                    parent_hash,
                    parent_time,
                    validator_set_hash: set.hash(),
                    next_validator_set_hash: next.hash(),
                    proposer: self.me.clone(),
                };
                self.pending_request = Some(request.clone());
                out.propose_request = Some(request);
            }
        }
    }

    fn timeouts(&self) -> Timeouts {
        let t = &self.cfg.timeouts;
        Timeouts {
            propose: t.propose_ms,
            prevote: t.prevote_ms,
            precommit: t.precommit_ms,
            delta: t.delta_ms,
            max: t.max_ms,
        }
    }

    fn sign_proposal(
        &mut self,
        prop: Prop,
        queue: &mut std::collections::VecDeque<Input<Ctx>>,
        out: &mut Effects,
    ) {
        let r = prop.round.as_u32().unwrap_or(0);
        if let Some(existing) = self.proposals.get(&r) {
            if existing.proposer() == &self.me && existing.block.hash() == prop.value.0 {
                self.broadcast(&Message::Proposal(existing.clone()), out);
            } else {
                self.stats.refused_double_signs += 1;
            }
            return;
        }
        let Some(block) = self.blocks.get(&prop.value.0).cloned() else {
            return;
        };
        let pol = prop.pol_round.as_u32().map(Round::new);
        let signed = SignedProposal::sign(
            self.cfg.chain_id.clone(),
            Round::new(r),
            pol,
            block,
            self.signer.as_ref(),
        );
        self.persist(&WalRecord::Proposal(signed.clone()), out);
        self.proposals.insert(r, signed.clone());
        self.broadcast(&Message::Proposal(signed.clone()), out);
        // Line 19 with `vr != -1`: peers accept the re-proposal only with
        // the polka of round `vr` (line 28); send it along.
        if let Some(vr) = pol {
            if let Some(c) = self.polka_for(vr.get(), prop.value.0) {
                self.broadcast(&Message::Polka(c), out);
            }
        }
        queue.push_back(Input::Proposal(
            self.driver_proposal(&signed),
            mt::Validity::Valid,
        ));
    }

    fn sign_vote(
        &mut self,
        vote: context::Vote,
        queue: &mut std::collections::VecDeque<Input<Ctx>>,
        out: &mut Effects,
    ) {
        if vote.validator.0 != self.member || !self.is_validator() {
            return;
        }
        let message = VoteMessage {
            kind: vote_kind(vote.kind),
            chain_id: self.cfg.chain_id.clone(),
            height: Height::new(vote.height.0),
            round: our_round(vote.round),
            block_hash: match vote.value {
                mt::NilOrVal::Val(id) => Some(id.0),
                mt::NilOrVal::Nil => None,
            },
        };
        let key = (message.round.get(), message.kind);
        let signed = match self.own_votes.get(&key) {
            Some(existing) if existing.vote == message => existing.clone(),
            Some(_) => {
                // Signing guard: never a second vote for one slot.
                self.stats.refused_double_signs += 1;
                return;
            }
            None => {
                let signed = SignedVote::sign(message, self.signer.as_ref());
                self.persist(&WalRecord::Vote(signed.clone()), out);
                self.own_votes.insert(key, signed.clone());
                signed
            }
        };
        self.votes
            .entry((key.0, key.1, self.me.clone()))
            .or_insert_with(|| signed.clone());
        self.broadcast(&Message::Vote(signed.clone()), out);
        queue.push_back(Input::Vote(self.driver_vote(&signed)));
    }

    /// Line 49: the block is decided; its certificate is the precommits for
    /// it in the round that reached a quorum (the proposal's round `r` in
    /// the paper, which need not be the current round).
    fn decide(&mut self, prop: Prop, out: &mut Effects) {
        let value = prop.value;
        let Some(block) = self.blocks.get(&value.0).cloned() else {
            return;
        };
        let Some(set) = self.set_at(self.height).cloned() else {
            return;
        };
        let mut rounds: Vec<u32> = vec![prop.round.as_u32().unwrap_or(0)];
        let mut others: Vec<u32> = self.votes.keys().map(|k| k.0).collect();
        others.sort_unstable();
        others.dedup();
        rounds.extend(others);
        for r in rounds {
            let signatures: Vec<CommitSignature> = self
                .votes
                .iter()
                .filter(|(k, v)| {
                    k.0 == r && k.1 == VoteKind::Precommit && v.vote.block_hash == Some(value.0)
                })
                .map(|(_, v)| CommitSignature {
                    validator: v.validator.clone(),
                    signature: v.signature,
                })
                .collect();
            let (signatures, power) = canonical_signatures(signatures, &set, self.height);
            if !set.is_quorum(power) {
                continue;
            }
            let certificate = CommitCertificate {
                chain_id: self.cfg.chain_id.clone(),
                height: self.height,
                round: Round::new(r),
                block_hash: value.0,
                signatures,
            };
            self.commit(DecidedBlock { block, certificate }, out);
            return;
        }
    }

    // ------------------------------------------------------------ messages

    fn check_round(&self, got: Round) -> Result<(), ConsensusError> {
        let current = self.driver.round().as_u32().unwrap_or(0);
        if got.get() > current.saturating_add(self.cfg.max_round_ahead) {
            return Err(ConsensusError::RoundTooFarAhead {
                current,
                got: got.get(),
                max_ahead: self.cfg.max_round_ahead,
            });
        }
        Ok(())
    }

    fn check_chain(&self, got: &ChainId) -> Result<(), ConsensusError> {
        if got != &self.cfg.chain_id {
            return Err(ConsensusError::WrongChain {
                expected: self.cfg.chain_id.clone(),
                got: got.clone(),
            });
        }
        Ok(())
    }

    /// Routes a message by height: older → answer with decided blocks;
    /// newer → buffer (bounded) and remember the peer is ahead; current →
    /// `Ok(true)`.
    fn route_height(
        &mut self,
        from: &PublicKey,
        h: Height,
        msg: &Message,
        out: &mut Effects,
    ) -> Result<bool, ConsensusError> {
        if h < self.height {
            // A message of the height just decided that arrives soon after
            // is ordinary lateness: its sender decides from the same
            // quorum, so sending it the (large) decided block would be
            // waste. A peer further behind, or one still sending for that
            // height half a rebroadcast interval later, is lagging and is
            // sent the decided blocks it lacks.
            let lagging = h.get().saturating_add(1) < self.height.get()
                || self.now
                    >= self
                        .height_started_at
                        .saturating_add(self.cfg.rebroadcast_ms / 2);
            if lagging {
                self.push_decided(from, h, out);
            }
            return Ok(false);
        }
        if h == self.height {
            return Ok(true);
        }
        self.sync_from = Some(from.clone());
        let max_ahead = self.cfg.max_future_heights;
        if h.get() > self.height.get().saturating_add(max_ahead) {
            return Err(ConsensusError::HeightTooFarAhead {
                current: self.height,
                got: h,
                max_ahead,
            });
        }
        let count = self.future_per_peer.entry(from.clone()).or_insert(0);
        if *count >= self.cfg.max_buffered_per_peer {
            return Err(ConsensusError::BufferFull {
                capacity: self.cfg.max_buffered_per_peer,
            });
        }
        *count += 1;
        self.future
            .entry(h)
            .or_default()
            .push((from.clone(), msg.clone()));
        Ok(false)
    }

    fn push_decided(&mut self, to: &PublicKey, from: Height, out: &mut Effects) {
        let throttle = self.cfg.rebroadcast_ms / 2;
        if let Some(last) = self.last_push.get(to) {
            if self.now < last.saturating_add(throttle) {
                return;
            }
        }
        self.last_push.insert(to.clone(), self.now);
        self.send_decided_from(to, from, out);
    }

    fn send_decided_from(&self, to: &PublicKey, from: Height, out: &mut Effects) {
        for (_, d) in self.chain.range(from..).take(self.cfg.sync_batch) {
            self.send_to(to, &Message::Decided(d.clone()), out);
        }
    }

    fn on_message(
        &mut self,
        from: &PublicKey,
        msg: Message,
        out: &mut Effects,
    ) -> Result<(), ConsensusError> {
        match msg {
            Message::Proposal(ref p) => {
                self.check_chain(&p.chain_id)?;
                if !self.route_height(from, p.height(), &msg, out)? {
                    return Ok(());
                }
                self.check_round(p.round)?;
                let Message::Proposal(p) = msg else {
                    return Ok(());
                };
                let expected = self.proposer_at(p.round.get());
                // The round's proposer may sign with its rotated-out key.
                if expected.is_none() || expected != self.member_of(p.proposer()) {
                    return Err(match expected {
                        Some(expected) => ConsensusError::NotProposer {
                            expected,
                            got: p.proposer().clone(),
                        },
                        None => ConsensusError::UnknownValidator {
                            signer: p.proposer().clone(),
                            height: p.height(),
                        },
                    });
                }
                if let Some(first) = self.proposals.get(&p.round.get()) {
                    if first.signing_digest() != p.signing_digest() && p.verify_signature() {
                        self.report(
                            Evidence::DoubleProposal {
                                first: Box::new(first.clone()),
                                second: Box::new(p),
                            },
                            out,
                        );
                    }
                    return Ok(());
                }
                if !p.verify_signature() {
                    return Err(ConsensusError::InvalidSignature {
                        signer: p.proposer().clone(),
                    });
                }
                self.accept_proposal(p, out);
                Ok(())
            }
            Message::Vote(ref v) => {
                self.check_chain(&v.vote.chain_id)?;
                let height = v.vote.height;
                let Some(set) = self.set_at(height) else {
                    return Err(ConsensusError::UnknownValidator {
                        signer: v.validator.clone(),
                        height,
                    });
                };
                match set.may_sign(&v.validator, height) {
                    Ok(_) => {}
                    Err(KeyRejection::NotMember) => {
                        return Err(ConsensusError::UnknownValidator {
                            signer: v.validator.clone(),
                            height,
                        })
                    }
                    Err(reason) => {
                        return Err(ConsensusError::KeyOutsideWindow {
                            signer: v.validator.clone(),
                            height,
                            reason,
                        })
                    }
                }
                if !self.route_height(from, height, &msg, out)? {
                    return Ok(());
                }
                self.check_round(v.vote.round)?;
                let Message::Vote(v) = msg else {
                    return Ok(());
                };
                let slot = (v.vote.round.get(), v.vote.kind, v.validator.clone());
                if let Some(first) = self.votes.get(&slot) {
                    if first.vote != v.vote && v.verify_signature() {
                        self.report(
                            Evidence::DoubleVote {
                                first: Box::new(first.clone()),
                                second: Box::new(v),
                            },
                            out,
                        );
                    }
                    return Ok(());
                }
                if !v.verify_signature() {
                    return Err(ConsensusError::InvalidSignature {
                        signer: v.validator.clone(),
                    });
                }
                // The member's other key (a rotation overlap) voted
                // otherwise in this slot: the member equivocated. Like a
                // second vote by one key, the conflicting vote is reported
                // and not counted.
                if let Some((member, first)) = self.member_conflict(&v) {
                    self.report(
                        Evidence::MemberDoubleVote {
                            member,
                            first: Box::new(first),
                            second: Box::new(v),
                        },
                        out,
                    );
                    return Ok(());
                }
                self.accept_vote(v, out);
                Ok(())
            }
            Message::SyncRequest { chain_id, from: h } => {
                self.check_chain(&chain_id)?;
                if h < self.height {
                    self.send_decided_from(from, h, out);
                }
                Ok(())
            }
            Message::Polka(ref c) => {
                self.check_chain(&c.chain_id)?;
                if !self.route_height(from, c.height, &msg, out)? {
                    return Ok(());
                }
                self.check_round(c.round)?;
                let Message::Polka(c) = msg else {
                    return Ok(());
                };
                if self.polkas.contains_key(&(c.round.get(), c.block_hash)) {
                    return Ok(());
                }
                let set = self
                    .set_at(self.height)
                    .ok_or(ConsensusError::InvalidConfig {
                        reason: "no validator set for the current height",
                    })?;
                c.verify(set)
                    .map_err(|source| ConsensusError::InvalidCertificate {
                        block: c.block_hash,
                        source,
                    })?;
                self.accept_polka(c, out);
                Ok(())
            }
            Message::Decided(ref d) => {
                self.check_chain(&d.block.header.chain_id)?;
                let h = d.block.header.height;
                if !self.route_height(from, h, &msg, out)? {
                    return Ok(());
                }
                let Message::Decided(d) = msg else {
                    return Ok(());
                };
                self.accept_decided(d, out)
            }
        }
    }

    /// A vote of the current height by another key of `v`'s member, in
    /// `v`'s slot, for another value: the member and that vote. A member
    /// has more than one key only during a rotation overlap, so this looks
    /// at the member's key and its rotated-out keys only.
    fn member_conflict(&self, v: &SignedVote) -> Option<(PublicKey, SignedVote)> {
        let set = self.set_at(self.height)?;
        let member = set
            .may_sign(&v.validator, self.height)
            .ok()?
            .1
            .public_key
            .clone();
        let keys = std::iter::once(member.clone()).chain(
            set.rotated_keys()
                .filter(|r| r.successor == member)
                .map(|r| r.key),
        );
        for key in keys.filter(|k| *k != v.validator) {
            let slot = (v.vote.round.get(), v.vote.kind, key);
            if let Some(first) = self.votes.get(&slot) {
                if first.vote.block_hash != v.vote.block_hash {
                    return Some((member, first.clone()));
                }
            }
        }
        None
    }

    fn report(&mut self, evidence: Evidence, out: &mut Effects) {
        let key = match &evidence {
            Evidence::DoubleVote { first, .. } => (
                first.validator.clone(),
                first.vote.height.get(),
                first.vote.round.get(),
                first.vote.kind as u8,
            ),
            Evidence::MemberDoubleVote { member, first, .. } => (
                member.clone(),
                first.vote.height.get(),
                first.vote.round.get(),
                first.vote.kind as u8,
            ),
            Evidence::DoubleProposal { first, .. } => (
                first.proposer().clone(),
                first.height().get(),
                first.round.get(),
                0,
            ),
        };
        if self.evidence_seen.insert(key) {
            out.evidence.push(evidence);
        }
    }

    /// Catch-up: a decided block for the current height from a peer, trusted
    /// because its certificate verifies (more than 2/3 of the scheduled set
    /// precommitted it, Algorithm 1 line 49).
    fn accept_decided(&mut self, d: DecidedBlock, out: &mut Effects) -> Result<(), ConsensusError> {
        let hash = d.block.hash();
        let set = self
            .set_at(self.height)
            .ok_or(ConsensusError::InvalidConfig {
                reason: "no validator set for the current height",
            })?;
        d.certificate
            .verify(&self.cfg.chain_id, self.height, &hash, set)
            .map_err(|source| ConsensusError::InvalidCertificate {
                block: hash,
                source,
            })?;
        self.validate_block(&d.block, None)
            .map_err(|reason| ConsensusError::InvalidBlock {
                height: d.block.header.height,
                reason,
            })?;
        self.stats.caught_up_blocks += 1;
        self.commit(d, out);
        Ok(())
    }

    fn accept_proposal(&mut self, p: SignedProposal, out: &mut Effects) {
        if !self.replaying {
            self.persist(&WalRecord::Proposal(p.clone()), out);
        }
        let r = p.round.get();
        self.proposals.entry(r).or_insert_with(|| p.clone());
        let fresh = if p.pol_round.is_none() {
            Some(p.proposer())
        } else {
            None
        };
        if self.validate_block(&p.block, fresh).is_err() {
            self.drive(
                Input::Proposal(self.driver_proposal(&p), mt::Validity::Invalid),
                out,
            );
            return;
        }
        let hash = p.block.hash();
        let verdict = if self.cfg.app_validation {
            self.verdicts.get(&hash).copied()
        } else {
            Some(true)
        };
        match verdict {
            Some(valid) => self.enter_proposal(p, valid, out),
            // `valid(v)` (lines 22, 28, 36, 49) needs the application: ask
            // once per block and hold the proposal until the host answers.
            None => {
                let waiting = self.awaiting_verdict.entry(hash).or_default();
                if waiting.is_empty() {
                    out.validate.push(p.block.clone());
                }
                waiting.push(p);
            }
        }
    }

    /// Hands a proposal to the driver with its validity.
    fn enter_proposal(&mut self, p: SignedProposal, valid: bool, out: &mut Effects) {
        let validity = if valid {
            self.blocks.insert(p.block.hash(), p.block.clone());
            mt::Validity::Valid
        } else {
            mt::Validity::Invalid
        };
        self.drive(Input::Proposal(self.driver_proposal(&p), validity), out);
    }

    /// A verified polka (2f+1 prevotes for one block in one round) enters
    /// the driver as a whole, bypassing the vote keeper's first-vote-wins
    /// rule (lines 28 and 36 count messages per value).
    fn accept_polka(&mut self, c: PolkaCertificate, out: &mut Effects) {
        if !self.replaying {
            self.persist(&WalRecord::Polka(c.clone()), out);
        }
        self.polkas.insert((c.round.get(), c.block_hash), c.clone());
        let cert = mt::PolkaCertificate {
            height: context::H(c.height.get()),
            round: mt_round(c.round),
            value_id: BlockId(c.block_hash),
            polka_signatures: c
                .signatures
                .iter()
                .map(|s| mt::PolkaSignature::new(Addr(s.validator.clone()), Sig(s.signature)))
                .collect(),
        };
        self.drive(Input::PolkaCertificate(cert), out);
    }

    /// The polka for `block` in `round` at the current height, if this node
    /// holds one: a received certificate, or one assembled from the
    /// prevotes it counted.
    fn polka_for(&self, round: u32, block: Hash) -> Option<PolkaCertificate> {
        if let Some(c) = self.polkas.get(&(round, block)) {
            return Some(c.clone());
        }
        let set = self.set_at(self.height)?;
        let (c, power) = PolkaCertificate::from_votes(
            &self.cfg.chain_id,
            self.height,
            Round::new(round),
            block,
            set,
            self.votes
                .iter()
                .filter(|(k, _)| k.0 == round && k.1 == VoteKind::Prevote)
                .map(|(_, v)| v),
        );
        set.is_quorum(power).then_some(c)
    }

    fn accept_vote(&mut self, v: SignedVote, out: &mut Effects) {
        if !self.replaying {
            self.persist(&WalRecord::Vote(v.clone()), out);
        }
        let slot = (v.vote.round.get(), v.vote.kind, v.validator.clone());
        self.votes.entry(slot).or_insert_with(|| v.clone());
        self.drive(Input::Vote(self.driver_vote(&v)), out);
    }

    // --------------------------------------------------------------- timing

    fn fire_timers(&mut self, out: &mut Effects) {
        loop {
            let Some((&key, _)) = self.timers.first_key_value() else {
                return;
            };
            if key.0 > self.now {
                return;
            }
            let Some(t) = self.timers.remove(&key) else {
                return;
            };
            let Some(kind) = timeout_kind(t.kind) else {
                continue;
            };
            if t.round != self.driver.round() {
                continue;
            }
            self.persist(
                &WalRecord::Timeout {
                    height: self.height,
                    round: our_round(t.round),
                    kind,
                },
                out,
            );
            self.drive(Input::TimeoutElapsed(t), out);
        }
    }

    /// Re-sends this node's latest proposal and votes at the current height,
    /// and asks a peer that is ahead for decided blocks.
    fn rebroadcast(&mut self, out: &mut Effects) {
        let round = self.driver.round().as_u32().unwrap_or(0);
        if let Some(p) = self.proposals.get(&round) {
            if p.proposer() == &self.me {
                self.broadcast(&Message::Proposal(p.clone()), out);
            }
        }
        // All own votes of this height: a re-proposal with `vr` (line 28)
        // needs the prevotes of round `vr`, which may have been lost.
        let resend: Vec<SignedVote> = self.own_votes.values().cloned().collect();
        for v in resend {
            self.broadcast(&Message::Vote(v), out);
        }
        // Relay the polka behind our valid value (lines 36–43) as one
        // certificate, so peers that missed it, or counted an equivocator's
        // conflicting prevote instead, can accept a re-proposal of that
        // value (line 28). See [`PolkaCertificate`] for why single votes do
        // not suffice.
        if let Some(valid) = self.driver.valid_value() {
            let r = valid.round.as_u32().unwrap_or(0);
            if let Some(c) = self.polka_for(r, valid.value.0) {
                self.broadcast(&Message::Polka(c), out);
            }
        }
        if let Some(peer) = self.sync_from.take() {
            let req = Message::SyncRequest {
                chain_id: self.cfg.chain_id.clone(),
                from: self.height,
            };
            self.send_to(&peer, &req, out);
        }
    }
}

impl Consensus for Tendermint {
    fn tick(&mut self, now: Timestamp) -> Effects {
        let mut out = Effects::default();
        self.now = self.now.max(now.get());
        self.fire_timers(&mut out);
        if self.now >= self.next_rebroadcast {
            self.next_rebroadcast = self.now.saturating_add(self.cfg.rebroadcast_ms);
            self.rebroadcast(&mut out);
        }
        self.finish(&mut out);
        out
    }

    fn step(&mut self, from: &PublicKey, message: &[u8]) -> Result<Effects, ConsensusError> {
        if message.len() > self.cfg.max_message_len {
            return Err(ConsensusError::MessageTooLarge {
                len: message.len(),
                max: self.cfg.max_message_len,
            });
        }
        let msg = Message::decode(message, self.cfg.max_message_len)?;
        let mut out = Effects::default();
        self.on_message(from, msg, &mut out)?;
        self.finish(&mut out);
        Ok(out)
    }

    fn propose(&mut self, block: Block) -> Result<Effects, ConsensusError> {
        let Some(request) = self.pending_request.take() else {
            return Err(ConsensusError::NoProposalRequested {
                height: self.height,
            });
        };
        if request.height != self.height || request.round != self.round() {
            return Err(ConsensusError::NoProposalRequested {
                height: self.height,
            });
        }
        let me = self.me.clone();
        if let Err(reason) = self.validate_block(&block, Some(&me)) {
            self.pending_request = Some(request);
            return Err(ConsensusError::InvalidBlock {
                height: block.header.height,
                reason,
            });
        }
        let mut out = Effects::default();
        let hash = block.hash();
        self.verdicts.insert(hash, true);
        self.blocks.insert(hash, block);
        self.drive(
            Input::ProposeValue(mt_round(request.round), BlockId(hash)),
            &mut out,
        );
        self.finish(&mut out);
        Ok(out)
    }

    fn height(&self) -> Height {
        self.height
    }

    fn block_validated(&mut self, block_hash: Hash, valid: bool) -> Effects {
        let mut out = Effects::default();
        let Some(waiting) = self.awaiting_verdict.remove(&block_hash) else {
            return out;
        };
        self.verdicts.insert(block_hash, valid);
        let height = self.height;
        for p in waiting {
            if self.height != height {
                break;
            }
            self.enter_proposal(p, valid, &mut out);
        }
        self.finish(&mut out);
        out
    }

    fn decided_block(&self, height: Height) -> Option<&DecidedBlock> {
        self.chain.get(&height)
    }

    fn sync_decided(&mut self, decided: DecidedBlock) -> Result<Effects, ConsensusError> {
        let got = decided.block.header.height;
        if got != self.height {
            return Err(ConsensusError::UnexpectedSyncHeight {
                expected: self.height,
                got,
            });
        }
        let mut out = Effects::default();
        self.accept_decided(decided, &mut out)?;
        self.finish(&mut out);
        Ok(out)
    }

    fn compacted_log(&self) -> Option<&[Vec<u8>]> {
        Some(&self.since_decided)
    }
}
