//! perf-report rows for the `consensus` area: the Tendermint and Raft
//! engines of `govchain-consensus`, each against a bound measured in the
//! same run.
//!
//! # Driver
//! The engines run in [`Cluster`], a minimal in-bench host: `n` engines in
//! one thread, with **instant in-memory delivery** (a FIFO queue, no delay,
//! no loss) and the host duties of the crate docs in order:
//! - *persist*: every record of [`Effects::persist`] is appended to an
//!   **in-memory log** ([`MemWal`]: length-prefixed copy, no file, no
//!   fsync) — so the rows measure consensus and verification, not the disk
//!   (the `storage` area measures that);
//! - *send*: each message is queued once per recipient (shared bytes);
//! - *apply*: decided blocks are recorded; blocks of [`Effects::validate`]
//!   are judged and answered with [`Consensus::block_validated`]; a
//!   [`Effects::propose_request`] is answered with [`Consensus::propose`]
//!   once the current batch is done.
//!
//! Time: `tick(now)` is called on every node once per new decided height,
//! with `now` the wall clock since the cluster was built (plus the logical
//! time used to elect a Raft leader before the clock starts). Nothing times
//! out in these runs (`idle` ticks are counted and reported on stderr; they
//! stay at zero).
//!
//! # Signature checks of transactions ("every node verifies")
//! Blocks carry 1,000 transactions of 250 encoded bytes, each signed by its
//! own sender (1,000 distinct keys per block, the worst case for batch
//! verification, like *B* below). Every node batch-verifies every block's
//! transactions exactly once, with [`verify_batch`] (parallel, rayon):
//! - **Tendermint** (`app_validation` on): a validator verifies when the
//!   engine asks through [`Effects::validate`], before it prevotes — where a
//!   real node verifies — and answers [`Consensus::block_validated`]; the
//!   proposer, whose own block the engine does not ask about, verifies the
//!   transactions when it builds the block (its mempool check). 4
//!   verifications per block.
//! - **Raft** (no validation hook): each node verifies when the host
//!   applies a decided block. 3 verifications per block.
//!
//! The transactions are signed before the clock starts.
//!
//! # Rows
//! - `tendermint_n4_1000x250B_tx` (`tx/s`): committed transactions per
//!   second until all 4 validators decided 20 blocks of 1,000 transactions.
//!   Baseline `sig_bound_B/4`: *B*/4, where *B* is the parallel batch-verify
//!   rate ([`verify_batch`], 4,096 signatures by distinct keys, as in
//!   [`core::signatures`](crate::core::signatures)) measured in the same
//!   rounds; each of the 4 nodes verifies every transaction once, so no
//!   host in one process can commit faster. **Goal: ratio ≥ 0.6.**
//! - `tendermint_n4_empty_blocks` (`blocks/s`): empty blocks decided by all
//!   4 validators per second (votes and proposals signed, and verified by
//!   every receiver, as always). Two baselines, both from Ed25519 costs
//!   measured in the same rounds (`SignedVote::sign` and
//!   `SignedVote::verify_signature` on vote messages) and the counts of
//!   signatures made and verified per block in an instrumented run:
//!   `crypto_bound_4nodes_1thread` — all 4 nodes' signing and verification
//!   of one block, one after the other on one thread, as this driver runs
//!   them; and `crypto_bound_per_node` — the busiest node's share alone
//!   (what a node with a core to itself could reach if signatures were all
//!   it did). **Goal: ≥ 500 blocks/s** (the value itself).
//! - `raft_n3_1000x250B_tx` (`tx/s`): as the first row with 3 Raft nodes
//!   (committed = decided with its certificate on every node). Baseline
//!   `sig_bound_B/3` (each of the 3 nodes verifies once).
//! - `tendermint_n4_delays_to_decide` (`delays`): message delays from the
//!   proposer's `propose` to the last of the 4 validators deciding, counted
//!   by the driver (each message is one delay deeper than the event that
//!   sent it), mean over 10 heights of the 1,000-transaction workload.
//!   Baseline `paper_good_case` = 3 (proposal, prevote, precommit).
//! - `raft_n3_delays_to_commit` (`delays`): delays from the leader's
//!   `propose` of block *h* to its `propose` of *h+1*, which the engine
//!   asks for as soon as it has applied *h*, i.e. when raft-rs commits it
//!   at the leader. Baseline `paper_append_ack` = 2 (append, ack).
//! - `raft_n3_delays_to_certified_decide` (`delays`): delays to the last
//!   node *deciding* (a block with its certificate: the members sign after
//!   applying, so the commit index must reach the followers and one
//!   follower's signature must come back). Against the same baseline 2.
//!
//! `GOVCHAIN_PERF_ONLY` selects sections: `tendermint`, `empty`, `raft`,
//! `delays`. Each tx section prints where the time went (verification,
//! engine calls, host) on stderr; `delays` also prints the messages sent
//! per block by kind.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use govchain_consensus::raft::wire::{RaftBody, RaftMessage};
use govchain_consensus::raft::{Raft, RaftConfig};
use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::wire::{Message, SignedVote};
use govchain_consensus::{Consensus, Effects, ProposeRequest, Recipient};
use govchain_core::cert::{VoteKind, VoteMessage};
use govchain_core::crypto::{verify_batch, BatchItem, PublicKey, SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::ValidatorSet;
use rayon::prelude::*;

use crate::core::signatures::{Workload, BATCH_N};
use crate::{progress, Row};

/// The chain id of every bench cluster.
pub const CHAIN: &str = "perf-consensus";
/// Transactions per block of the transaction workload.
pub const TXS_PER_BLOCK: usize = 1_000;
/// Encoded size of each transaction.
pub const TX_LEN: usize = 250;
/// Tendermint validators.
pub const VALIDATORS: usize = 4;
/// Raft nodes.
pub const RAFT_NODES: usize = 3;

/// The bench chain id.
pub fn chain_id() -> anyhow::Result<ChainId> {
    ChainId::new(CHAIN).map_err(|e| anyhow!("chain id: {e}"))
}

/// `blocks` sets of `per_block` signed transactions of exactly [`TX_LEN`]
/// encoded bytes. Transaction `i` of every set is signed by sender `i`
/// (so a set has `per_block` distinct signers) with the set's index as
/// nonce.
pub fn tx_sets(
    blocks: usize,
    per_block: usize,
    seed: u64,
) -> anyhow::Result<Vec<Vec<Transaction>>> {
    let chain = chain_id()?;
    let senders: Vec<SecretKey> = (0..per_block)
        .map(|i| {
            let mut s = [0u8; 32];
            s[..8].copy_from_slice(&seed.to_le_bytes());
            s[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            SecretKey::from_seed(&s)
        })
        .collect();
    let Some(first) = senders.first() else {
        return Ok(vec![Vec::new(); blocks]);
    };
    let empty = Transaction::new_signed(chain.clone(), first, 0, Vec::new())
        .map_err(|e| anyhow!("transaction: {e}"))?;
    let payload_len = TX_LEN.saturating_sub(empty.encoded_len());
    (0..blocks)
        .map(|b| {
            senders
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut payload = vec![0u8; payload_len];
                    payload[..8].copy_from_slice(&(b as u64).to_le_bytes());
                    payload[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                    Transaction::new_signed(chain.clone(), k, b as u64, payload)
                        .map_err(|e| anyhow!("transaction: {e}"))
                })
                .collect()
        })
        .collect()
}

/// Batch-verifies the signatures of `txs`: their signing digests, then
/// [`verify_batch`], both in parallel on the rayon pool.
pub fn verify_txs(txs: &[Transaction]) -> bool {
    let digests: Vec<Hash> = txs
        .par_iter()
        .with_min_len(64)
        .map(Transaction::signing_message)
        .collect();
    let items: Vec<BatchItem<'_>> = txs
        .iter()
        .zip(&digests)
        .map(|(t, d)| BatchItem::new(t.sender(), d.as_bytes(), t.signature()))
        .collect();
    verify_batch(&items).is_ok()
}

/// Where a node checks the signatures of a block's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxCheck {
    /// On [`Effects::validate`] (validators) and before proposing (the
    /// proposer): Tendermint with application validation.
    Validate,
    /// When the host applies a decided block: Raft.
    OnDecided,
}

/// An engine the [`Cluster`] can boot, with how its messages are named in
/// the message profile.
pub trait BenchEngine: Consensus + Sized {
    /// Builds node `i` of a fresh chain whose members hold `keys`.
    fn boot(
        chain: &ChainId,
        keys: &[Arc<SecretKey>],
        i: usize,
        now: Timestamp,
    ) -> anyhow::Result<(Self, Effects)>;
    /// Where this engine's nodes verify transactions.
    const TX_CHECK: TxCheck;
    /// Logical time step used while nothing is in flight (Raft election).
    const IDLE_STEP_MS: u64;
    /// A short name of the message kind, for the profile.
    fn kind(bytes: &[u8]) -> &'static str;
}

impl BenchEngine for Tendermint {
    const TX_CHECK: TxCheck = TxCheck::Validate;
    const IDLE_STEP_MS: u64 = 50;

    fn boot(
        chain: &ChainId,
        keys: &[Arc<SecretKey>],
        i: usize,
        now: Timestamp,
    ) -> anyhow::Result<(Self, Effects)> {
        let set = ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key()))
            .map_err(|e| anyhow!("validator set: {e}"))?;
        let mut cfg = TendermintConfig::new(chain.clone(), set);
        cfg.app_validation = true;
        let key = keys.get(i).ok_or_else(|| anyhow!("no key {i}"))?.clone();
        Tendermint::restore(cfg, key, &[], now).map_err(|e| anyhow!("restore: {e}"))
    }

    fn kind(bytes: &[u8]) -> &'static str {
        match Message::decode(bytes, usize::MAX) {
            Ok(Message::Proposal(_)) => "proposal",
            Ok(Message::Vote(v)) => match v.vote.kind {
                VoteKind::Prevote => "prevote",
                VoteKind::Precommit => "precommit",
            },
            Ok(Message::SyncRequest { .. }) => "sync_request",
            Ok(Message::Decided(_)) => "decided",
            Ok(Message::Polka(_)) => "polka",
            Err(_) => "undecodable",
        }
    }
}

impl BenchEngine for Raft {
    const TX_CHECK: TxCheck = TxCheck::OnDecided;
    const IDLE_STEP_MS: u64 = 20;

    fn boot(
        chain: &ChainId,
        keys: &[Arc<SecretKey>],
        i: usize,
        now: Timestamp,
    ) -> anyhow::Result<(Self, Effects)> {
        let cfg = RaftConfig::new(chain.clone(), keys.iter().map(|k| k.public_key()).collect());
        let key = keys.get(i).ok_or_else(|| anyhow!("no key {i}"))?.clone();
        Raft::restore(cfg, key, &[], now).map_err(|e| anyhow!("restore: {e}"))
    }

    fn kind(bytes: &[u8]) -> &'static str {
        match RaftMessage::decode(bytes, usize::MAX).map(|m| m.body) {
            Ok(RaftBody::Protocol(p)) => match p.kind as u8 {
                1 if p.entries.is_empty() => "append_empty",
                1 => "append_entries",
                2 => "append_response",
                7 => "heartbeat",
                8 => "heartbeat_response",
                _ => "election",
            },
            Ok(RaftBody::Ack(_)) => "ack",
            Ok(RaftBody::Decided(_)) => "decided",
            Ok(RaftBody::SyncRequest { .. }) => "sync_request",
            Err(_) => "undecodable",
        }
    }
}

/// An in-memory write-ahead log: records are copied, length-prefixed, into
/// a buffer that is cleared at 16 MiB (a segment rotation without a file).
#[derive(Debug, Default)]
pub struct MemWal {
    buf: Vec<u8>,
    /// Records appended.
    pub records: u64,
    /// Bytes appended.
    pub bytes: u64,
}

impl MemWal {
    fn append(&mut self, record: &[u8]) {
        if self.buf.len() > 16 << 20 {
            self.buf.clear();
        }
        self.buf
            .extend_from_slice(&(record.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(record);
        self.records += 1;
        self.bytes += record.len() as u64 + 4;
    }
}

/// What a run cost and how deep its messages went.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Time in transaction signature verification.
    pub verify_time: Duration,
    /// Transaction batches verified (one per node per block).
    pub verified_blocks: u64,
    /// Time inside engine calls (`step`, `propose`, `tick`,
    /// `block_validated`).
    pub engine_time: Duration,
    /// Engine calls.
    pub engine_calls: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Bytes delivered.
    pub delivered_bytes: u64,
    /// Messages the engines refused.
    pub step_errors: u64,
    /// Proposals the engine refused.
    pub propose_errors: u64,
    /// Times the queue ran dry and time had to be advanced.
    pub idle_ticks: u64,
    /// Causal depth of the event in which each height was proposed.
    pub propose_depth: BTreeMap<u64, u32>,
    /// Causal depth at which each node decided each height.
    pub decide_depth: BTreeMap<u64, Vec<u32>>,
    /// Messages sent, by kind: (count, bytes). Only with profiling.
    pub sent_by_kind: BTreeMap<&'static str, (u64, u64)>,
    /// Messages delivered, by kind: (count, time in `step`). Only with
    /// profiling.
    pub step_by_kind: BTreeMap<&'static str, (u64, Duration)>,
    /// Tendermint: signatures verified by each node (proposals, votes,
    /// polka and certificate signatures received at the current height).
    /// Only with profiling.
    pub verifies: Vec<u64>,
    /// Tendermint: distinct statements signed by each node. Only with
    /// profiling.
    pub signs: Vec<u64>,
}

struct Envelope {
    from: usize,
    to: usize,
    bytes: Rc<Vec<u8>>,
    depth: u32,
}

/// `n` engines of one kind with instant delivery. See the module docs.
pub struct Cluster<E: BenchEngine> {
    nodes: Vec<E>,
    keys: Vec<PublicKey>,
    queue: VecDeque<Envelope>,
    requests: VecDeque<(usize, ProposeRequest, u32)>,
    source: Arc<Vec<Vec<Transaction>>>,
    fresh: BTreeMap<u64, Vec<Transaction>>,
    wal: Vec<MemWal>,
    decided: Vec<u64>,
    max_decided: u64,
    tick_due: bool,
    epoch: Instant,
    clock_ms: u64,
    profile: bool,
    seen: BTreeSet<(usize, PublicKey, u64, u32, u8)>,
    signed: BTreeSet<(PublicKey, u64, u32, u8)>,
    /// Counters of the run so far.
    pub stats: Stats,
}

impl<E: BenchEngine> Cluster<E> {
    /// A fresh chain of `n` nodes. Block `h` carries transaction set
    /// `(h - 1) % txs.len()` (an empty block if `txs` is empty). Raft
    /// clusters are run, with logical time, until a leader asks for its
    /// first block. Nothing here is meant to be timed.
    pub fn new(n: usize, txs: Arc<Vec<Vec<Transaction>>>, profile: bool) -> anyhow::Result<Self> {
        let chain = chain_id()?;
        let secrets: Vec<Arc<SecretKey>> = (0..n)
            .map(|i| Arc::new(SecretKey::from_seed(&[i as u8 + 1; 32])))
            .collect();
        let mut nodes = Vec::with_capacity(n);
        let mut boot_effects = Vec::with_capacity(n);
        for i in 0..n {
            let (e, fx) = E::boot(&chain, &secrets, i, Timestamp::new(0))?;
            nodes.push(e);
            boot_effects.push(fx);
        }
        let mut c = Cluster {
            nodes,
            keys: secrets.iter().map(|k| k.public_key()).collect(),
            queue: VecDeque::new(),
            requests: VecDeque::new(),
            source: txs,
            fresh: BTreeMap::new(),
            wal: (0..n).map(|_| MemWal::default()).collect(),
            decided: vec![0; n],
            max_decided: 0,
            tick_due: false,
            epoch: Instant::now(),
            clock_ms: 0,
            profile,
            seen: BTreeSet::new(),
            signed: BTreeSet::new(),
            stats: Stats {
                verifies: vec![0; n],
                signs: vec![0; n],
                ..Stats::default()
            },
        };
        for (i, fx) in boot_effects.into_iter().enumerate() {
            c.apply(i, fx, 0);
        }
        // Elect a leader (Raft) with logical time; Tendermint's first
        // proposer already has its request.
        let mut guard = 0u32;
        while c.requests.is_empty() {
            guard += 1;
            if guard > 100_000 {
                bail!("no proposer asked for a block during setup");
            }
            if let Some(env) = c.queue.pop_front() {
                c.deliver(env);
            } else {
                c.clock_ms += E::IDLE_STEP_MS;
                c.tick_all(0);
            }
        }
        c.stats = Stats {
            verifies: vec![0; n],
            signs: vec![0; n],
            ..Stats::default()
        };
        Ok(c)
    }

    /// Clones the transaction sets of heights `from..from + count` ahead of
    /// time, so that building those blocks costs no copy.
    pub fn prepare(&mut self, from: u64, count: u64) {
        if self.source.is_empty() {
            return;
        }
        for h in from..from + count {
            let set = self.source[((h - 1) % self.source.len() as u64) as usize].clone();
            self.fresh.insert(h, set);
        }
    }

    /// The lowest height decided by every node.
    pub fn decided_by_all(&self) -> u64 {
        self.decided.iter().copied().min().unwrap_or(0)
    }

    /// Runs until every node decided `count` more blocks; returns the wall
    /// time taken. Fails if nothing progresses for `limit`.
    pub fn run_blocks(&mut self, count: u64, limit: Duration) -> anyhow::Result<Duration> {
        let target = self.decided_by_all() + count;
        let start = Instant::now();
        let mut steps = 0u64;
        while self.decided_by_all() < target {
            steps += 1;
            if steps.is_multiple_of(1024) && start.elapsed() > limit {
                bail!(
                    "consensus run stalled at heights {:?} (target {target})",
                    self.decided
                );
            }
            if self.tick_due {
                self.tick_due = false;
                self.tick_all(0);
            } else if let Some((i, req, depth)) = self.requests.pop_front() {
                self.answer(i, req, depth);
            } else if let Some(env) = self.queue.pop_front() {
                self.deliver(env);
            } else {
                self.stats.idle_ticks += 1;
                self.clock_ms += E::IDLE_STEP_MS;
                self.tick_all(0);
            }
        }
        Ok(start.elapsed())
    }

    /// Persisted records and bytes, summed over the nodes.
    pub fn wal_totals(&self) -> (u64, u64) {
        self.wal
            .iter()
            .fold((0, 0), |(r, b), w| (r + w.records, b + w.bytes))
    }

    fn now(&self) -> Timestamp {
        let wall = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        Timestamp::new(self.clock_ms.saturating_add(wall))
    }

    fn tick_all(&mut self, depth: u32) {
        let now = self.now();
        for i in 0..self.nodes.len() {
            let t = Instant::now();
            let fx = self.nodes[i].tick(now);
            self.engine_done(t);
            self.apply(i, fx, depth);
        }
    }

    fn engine_done(&mut self, started: Instant) {
        self.stats.engine_time += started.elapsed();
        self.stats.engine_calls += 1;
    }

    fn verify(&mut self, txs: &[Transaction]) -> bool {
        let t = Instant::now();
        let ok = verify_txs(txs);
        self.stats.verify_time += t.elapsed();
        self.stats.verified_blocks += 1;
        ok
    }

    fn block_txs(&mut self, h: u64) -> Vec<Transaction> {
        if let Some(set) = self.fresh.remove(&h) {
            return set;
        }
        if self.source.is_empty() {
            return Vec::new();
        }
        self.source[((h - 1) % self.source.len() as u64) as usize].clone()
    }

    fn answer(&mut self, i: usize, req: ProposeRequest, depth: u32) {
        let h = req.height.get();
        let txs = self.block_txs(h);
        if E::TX_CHECK == TxCheck::Validate && !self.verify(&txs) {
            self.stats.propose_errors += 1;
            return;
        }
        let block = req.block(self.now(), txs);
        self.stats.propose_depth.entry(h).or_insert(depth);
        let t = Instant::now();
        let result = self.nodes[i].propose(block);
        self.engine_done(t);
        match result {
            Ok(fx) => self.apply(i, fx, depth),
            Err(_) => self.stats.propose_errors += 1,
        }
    }

    fn deliver(&mut self, env: Envelope) {
        self.stats.delivered += 1;
        self.stats.delivered_bytes += env.bytes.len() as u64;
        let kind = if self.profile {
            self.count_verifies(&env);
            Some(E::kind(&env.bytes))
        } else {
            None
        };
        let t = Instant::now();
        let result = self.nodes[env.to].step(&self.keys[env.from], &env.bytes);
        if let Some(kind) = kind {
            let e = self.stats.step_by_kind.entry(kind).or_default();
            e.0 += 1;
            e.1 += t.elapsed();
        }
        self.engine_done(t);
        match result {
            Ok(fx) => self.apply(env.to, fx, env.depth),
            Err(_) => self.stats.step_errors += 1,
        }
    }

    /// The host's duties for one batch: persist, send, apply.
    fn apply(&mut self, i: usize, mut fx: Effects, depth: u32) {
        for r in fx.persist.drain(..) {
            self.wal[i].append(&r);
        }
        for out in fx.send.drain(..) {
            if self.profile {
                self.count_sent(i, &out.bytes);
            }
            let bytes = Rc::new(out.bytes);
            for j in 0..self.nodes.len() {
                let to_j = match &out.to {
                    Recipient::All => j != i,
                    Recipient::One(k) => &self.keys[j] == k && j != i,
                };
                if to_j {
                    self.queue.push_back(Envelope {
                        from: i,
                        to: j,
                        bytes: Rc::clone(&bytes),
                        depth: depth + 1,
                    });
                }
            }
        }
        for d in fx.decided.drain(..) {
            let h = d.block.header.height.get();
            if h <= self.decided[i] {
                continue;
            }
            self.decided[i] = h;
            self.stats.decide_depth.entry(h).or_default().push(depth);
            if E::TX_CHECK == TxCheck::OnDecided {
                // The host applies the block: its transactions' signatures
                // are checked first (a Raft member cannot refuse a committed
                // block, but it checks before executing).
                let _valid = self.verify(&d.block.transactions);
            }
            if h > self.max_decided {
                self.max_decided = h;
                self.tick_due = true;
            }
        }
        for b in fx.validate.drain(..) {
            let valid = self.verify(&b.transactions);
            let t = Instant::now();
            let more = self.nodes[i].block_validated(b.hash(), valid);
            self.engine_done(t);
            self.apply(i, more, depth);
        }
        if let Some(req) = fx.propose_request.take() {
            self.requests.push_back((i, req, depth));
        }
    }

    fn count_sent(&mut self, i: usize, bytes: &[u8]) {
        let e = self.stats.sent_by_kind.entry(E::kind(bytes)).or_default();
        e.0 += 1;
        e.1 += bytes.len() as u64;
        match Message::decode(bytes, usize::MAX) {
            Ok(Message::Vote(v)) => {
                let key = (
                    v.validator.clone(),
                    v.vote.height.get(),
                    v.vote.round.get(),
                    v.vote.kind as u8 + 1,
                );
                if self.signed.insert(key) {
                    self.stats.signs[i] += 1;
                }
            }
            Ok(Message::Proposal(p)) => {
                let key = (p.proposer().clone(), p.height().get(), p.round.get(), 0);
                if self.signed.insert(key) {
                    self.stats.signs[i] += 1;
                }
            }
            _ => {}
        }
    }

    /// Counts the signatures the receiver will check: first proposal and
    /// first vote per slot at its current height, polkas and decided
    /// certificates for its current height.
    fn count_verifies(&mut self, env: &Envelope) {
        let current = self.nodes[env.to].height().get();
        let to = env.to;
        let n = match Message::decode(&env.bytes, usize::MAX) {
            Ok(Message::Vote(v)) if v.vote.height.get() == current => {
                let key = (
                    to,
                    v.validator.clone(),
                    current,
                    v.vote.round.get(),
                    v.vote.kind as u8 + 1,
                );
                u64::from(self.seen.insert(key))
            }
            Ok(Message::Proposal(p)) if p.height().get() == current => {
                let key = (to, p.proposer().clone(), current, p.round.get(), 0);
                u64::from(self.seen.insert(key))
            }
            Ok(Message::Polka(c)) if c.height.get() == current => c.signatures.len() as u64,
            Ok(Message::Decided(d)) if d.block.header.height.get() == current => {
                d.certificate.signatures.len() as u64
            }
            _ => 0,
        };
        self.stats.verifies[to] += n;
    }
}

/// Tendermint cluster of [`VALIDATORS`] with app validation on.
pub fn tendermint_cluster(
    txs: Arc<Vec<Vec<Transaction>>>,
    profile: bool,
) -> anyhow::Result<Cluster<Tendermint>> {
    Cluster::new(VALIDATORS, txs, profile)
}

/// Raft cluster of [`RAFT_NODES`], leader elected.
pub fn raft_cluster(
    txs: Arc<Vec<Vec<Transaction>>>,
    profile: bool,
) -> anyhow::Result<Cluster<Raft>> {
    Cluster::new(RAFT_NODES, txs, profile)
}

// ------------------------------------------------------------------ report

const LIMIT: Duration = Duration::from_secs(120);

fn section(name: &str) -> bool {
    let only = std::env::var("GOVCHAIN_PERF_ONLY").unwrap_or_default();
    only.is_empty() || only.split(',').any(|s| s.trim() == name)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.0}..{hi:.0}")
}

/// *B*: signatures per second of [`verify_batch`] on 4,096 signatures by
/// distinct keys, best of `reps` (each rep is one batch).
fn batch_rate(items: &[BatchItem<'_>], reps: usize) -> f64 {
    let mut best = Duration::MAX;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let ok = verify_batch(black_box(items)).is_ok();
        best = best.min(t.elapsed());
        if !ok {
            progress("consensus: verify_batch rejected the B workload");
        }
    }
    items.len() as f64 / best.as_secs_f64()
}

/// Runs `rounds` rounds of (B, then `blocks` blocks of the 1,000-tx
/// workload on a fresh cluster); returns the per-round tx/s and B.
fn tx_rounds<E: BenchEngine>(
    n: usize,
    name: &str,
    sets: &Arc<Vec<Vec<Transaction>>>,
    blocks: u64,
    rounds: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let workload = Workload::new(BATCH_N, BATCH_N, 1);
    let items = workload.items();
    let (mut rates, mut bs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        bs.push(batch_rate(&items, 3));
        let mut c = Cluster::<E>::new(n, Arc::clone(sets), false)?;
        let first = c.decided_by_all() + 1;
        c.prepare(first, blocks + 1);
        let time = c.run_blocks(blocks, LIMIT)?;
        let rate = (blocks as usize * TXS_PER_BLOCK) as f64 / time.as_secs_f64();
        rates.push(rate);
        let s = &c.stats;
        let (records, bytes) = c.wal_totals();
        progress(&format!(
            "consensus: {name} round {round}/{rounds}: {rate:.0} tx/s, B {:.0} sig/s; \
             {:.1} ms/block = verify {:.1} ({} batches) + engine {:.1} ({} calls) + host {:.1}; \
             {} msgs ({:.1} MB), wal {} records ({:.1} MB), errors {}/{}, idle {}",
            bs[bs.len() - 1],
            time.as_secs_f64() * 1e3 / blocks as f64,
            s.verify_time.as_secs_f64() * 1e3 / blocks as f64,
            s.verified_blocks,
            s.engine_time.as_secs_f64() * 1e3 / blocks as f64,
            s.engine_calls,
            (time.saturating_sub(s.verify_time + s.engine_time)).as_secs_f64() * 1e3
                / blocks as f64,
            s.delivered,
            s.delivered_bytes as f64 / 1e6,
            records,
            bytes as f64 / 1e6,
            s.step_errors,
            s.propose_errors,
            s.idle_ticks,
        ));
    }
    Ok((rates, bs))
}

fn report_tx<E: BenchEngine>(
    n: usize,
    name: &str,
    metric: &str,
    sets: &Arc<Vec<Vec<Transaction>>>,
) -> anyhow::Result<()> {
    let blocks = sets.len() as u64;
    let (mut rates, mut bs) = tx_rounds::<E>(n, name, sets, blocks, 5)?;
    progress(&format!(
        "consensus: {name}: tx/s range {}, B range {}",
        range(&rates),
        range(&bs)
    ));
    let b = median(&mut bs);
    Row::new(
        "consensus",
        metric,
        median(&mut rates),
        "tx/s",
        format!("sig_bound_B/{n}"),
        b / n as f64,
    )
    .emit();
    Ok(())
}

/// Seconds per Ed25519 sign and per verify of a vote message (best of
/// `reps` loops of 200).
fn vote_crypto_costs(reps: usize) -> anyhow::Result<(f64, f64)> {
    let key = SecretKey::from_seed(&[42; 32]);
    let vote = VoteMessage {
        kind: VoteKind::Precommit,
        chain_id: chain_id()?,
        height: Height::new(7),
        round: Round::new(0),
        block_hash: Some(Hash::ZERO),
    };
    let signed = SignedVote::sign(vote.clone(), &key);
    let (mut s, mut v) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        for _ in 0..200 {
            black_box(SignedVote::sign(black_box(vote.clone()), &key));
        }
        s.push(t.elapsed().as_secs_f64() / 200.0);
        let t = Instant::now();
        for _ in 0..200 {
            black_box(black_box(&signed).verify_signature());
        }
        v.push(t.elapsed().as_secs_f64() / 200.0);
    }
    // Best of the loops, like B: the bound is the machine's best, so load
    // from other processes lowers the ratio rather than raising it.
    let best = |x: &[f64]| x.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((best(&s), best(&v)))
}

fn report_empty() -> anyhow::Result<()> {
    let empty: Arc<Vec<Vec<Transaction>>> = Arc::new(Vec::new());
    // Signatures per block, from an instrumented (untimed) run.
    let mut c = tendermint_cluster(Arc::clone(&empty), true)?;
    let heights = 50;
    c.run_blocks(heights, LIMIT)?;
    let verifies: Vec<f64> = c
        .stats
        .verifies
        .iter()
        .map(|&x| x as f64 / heights as f64)
        .collect();
    let signs: Vec<f64> = c
        .stats
        .signs
        .iter()
        .map(|&x| x as f64 / heights as f64)
        .collect();
    progress(&format!(
        "consensus: empty blocks: per block, signatures verified by node {verifies:.2?}, signed {signs:.2?}"
    ));
    let blocks = 300;
    let rounds = 5;
    let (mut rates, mut all, mut per_node) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (sign_s, verify_s) = vote_crypto_costs(5)?;
        let total: f64 =
            verifies.iter().sum::<f64>() * verify_s + signs.iter().sum::<f64>() * sign_s;
        let busiest = verifies
            .iter()
            .zip(&signs)
            .map(|(v, s)| v * verify_s + s * sign_s)
            .fold(0.0, f64::max);
        all.push(1.0 / total);
        per_node.push(1.0 / busiest);
        let mut c = tendermint_cluster(Arc::clone(&empty), false)?;
        let time = c.run_blocks(blocks, LIMIT)?;
        let rate = blocks as f64 / time.as_secs_f64();
        rates.push(rate);
        progress(&format!(
            "consensus: empty round {round}/{rounds}: {rate:.0} blocks/s ({:.2} ms/block, engine {:.2}); \
             sign {:.1} us, verify {:.1} us; bound 1 thread {:.0}, per node {:.0} blocks/s",
            time.as_secs_f64() * 1e3 / blocks as f64,
            c.stats.engine_time.as_secs_f64() * 1e3 / blocks as f64,
            sign_s * 1e6,
            verify_s * 1e6,
            all[all.len() - 1],
            per_node[per_node.len() - 1],
        ));
    }
    progress(&format!(
        "consensus: empty blocks/s range {}",
        range(&rates)
    ));
    let rate = median(&mut rates);
    for (base, vals) in [
        ("crypto_bound_4nodes_1thread", &mut all),
        ("crypto_bound_per_node", &mut per_node),
    ] {
        Row::new(
            "consensus",
            "tendermint_n4_empty_blocks",
            rate,
            "blocks/s",
            base,
            median(vals),
        )
        .emit();
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn print_profile(name: &str, stats: &Stats, blocks: u64) {
    let kinds: Vec<String> = stats
        .sent_by_kind
        .iter()
        .map(|(k, (n, b))| {
            format!(
                "{k} {:.1} ({:.1} kB)",
                *n as f64 / blocks as f64,
                *b as f64 / blocks as f64 / 1e3
            )
        })
        .collect();
    progress(&format!(
        "consensus: {name}: messages sent per block (before fan-out): {}",
        kinds.join(", ")
    ));
    let steps: Vec<String> = stats
        .step_by_kind
        .iter()
        .map(|(k, (n, t))| {
            format!(
                "{k} {:.1} x {:.0} us",
                *n as f64 / blocks as f64,
                t.as_secs_f64() * 1e6 / (*n).max(1) as f64
            )
        })
        .collect();
    progress(&format!(
        "consensus: {name}: deliveries per block x engine time per step: {}; \
         verify {:.1} ms/block, engine (all calls) {:.1} ms/block",
        steps.join(", "),
        stats.verify_time.as_secs_f64() * 1e3 / blocks as f64,
        stats.engine_time.as_secs_f64() * 1e3 / blocks as f64,
    ));
}

fn report_delays(sets: &Arc<Vec<Vec<Transaction>>>) -> anyhow::Result<()> {
    let blocks = sets.len() as u64;
    // Tendermint: propose → last validator decides.
    let mut c = tendermint_cluster(Arc::clone(sets), true)?;
    c.run_blocks(blocks, LIMIT)?;
    print_profile("tendermint 1000 tx", &c.stats, blocks);
    let tm: Vec<f64> = c
        .stats
        .decide_depth
        .iter()
        .filter_map(|(h, ds)| {
            let p = c.stats.propose_depth.get(h)?;
            let last = ds.iter().max()?;
            (ds.len() == VALIDATORS).then(|| f64::from(last - p))
        })
        .collect();
    progress(&format!("consensus: tendermint delays per height {tm:?}"));
    Row::new(
        "consensus",
        "tendermint_n4_delays_to_decide",
        mean(&tm),
        "delays",
        "paper_good_case",
        3.0,
    )
    .emit();

    // Raft: propose h → propose h+1 (leader commit), and → last decide.
    let mut c = raft_cluster(Arc::clone(sets), true)?;
    c.run_blocks(blocks, LIMIT)?;
    print_profile("raft 1000 tx", &c.stats, blocks);
    let pd = &c.stats.propose_depth;
    let commit: Vec<f64> = pd
        .iter()
        .filter_map(|(h, d)| pd.get(&(h + 1)).map(|n| f64::from(n - d)))
        .collect();
    let decide: Vec<f64> = c
        .stats
        .decide_depth
        .iter()
        .filter_map(|(h, ds)| {
            let p = pd.get(h)?;
            let last = ds.iter().max()?;
            (ds.len() == RAFT_NODES).then(|| f64::from(last - p))
        })
        .collect();
    progress(&format!(
        "consensus: raft delays per height: leader commit {commit:?}, certified decide {decide:?}"
    ));
    Row::new(
        "consensus",
        "raft_n3_delays_to_commit",
        mean(&commit),
        "delays",
        "paper_append_ack",
        2.0,
    )
    .emit();
    Row::new(
        "consensus",
        "raft_n3_delays_to_certified_decide",
        mean(&decide),
        "delays",
        "paper_append_ack",
        2.0,
    )
    .emit();
    Ok(())
}

/// Measures and prints the `consensus` rows. See the module docs.
pub fn report() {
    if let Err(e) = try_report() {
        progress(&format!("consensus: failed: {e:#}"));
    }
}

fn try_report() -> anyhow::Result<()> {
    let want_tx = section("tendermint") || section("raft") || section("delays");
    let sets = if want_tx {
        progress("consensus: signing 20 blocks of 1,000 transactions (1,000 senders)");
        Arc::new(tx_sets(20, TXS_PER_BLOCK, 1)?)
    } else {
        Arc::new(Vec::new())
    };
    if section("tendermint") {
        progress("consensus: tendermint, 4 validators, 20 blocks x 1,000 tx, 5 rounds");
        report_tx::<Tendermint>(
            VALIDATORS,
            "tendermint",
            "tendermint_n4_1000x250B_tx",
            &sets,
        )?;
    }
    if section("empty") {
        progress("consensus: tendermint empty blocks, 4 validators, 300 blocks, 5 rounds");
        report_empty()?;
    }
    if section("raft") {
        progress("consensus: raft, 3 nodes, 20 blocks x 1,000 tx, 5 rounds");
        report_tx::<Raft>(RAFT_NODES, "raft", "raft_n3_1000x250B_tx", &sets)?;
    }
    if section("delays") {
        progress("consensus: message delays (10 blocks x 1,000 tx, instrumented)");
        let ten = Arc::new(sets.iter().take(10).cloned().collect::<Vec<_>>());
        report_delays(&ten)?;
    }
    Ok(())
}
