//! A deterministic simulator: many nodes in one thread, driven by a seed.
//!
//! [`run`] (Tendermint), [`run_raft`] (Raft) and [`run_with`] (any
//! [`SimEngine`]) build `n` validators (plus optional observers) of one engine,
//! connects them through a simulated network and drives them with ticks and
//! message deliveries in a single, seed-determined order. Nothing in it reads
//! a clock, spawns a thread or asks the OS for randomness: the same
//! [`SimConfig`] gives the same trace, byte for byte ([`Report::trace_hash`]).
//!
//! # Faults (before GST, `FaultConfig::gst_ms`)
//! - network: random delay (hence reordering), drop, duplicate, partitions
//!   into two sides that heal;
//! - nodes: crash *while persisting* a batch (a random suffix of the batch's
//!   records is lost, nothing of it is sent) and restart from persisted
//!   records only; clock skew (a fixed offset per node);
//! - Byzantine nodes ([`Behaviour`], at most `f`): equivocating proposer,
//!   double voter, silent, invalid proposals, votes for unknown blocks,
//!   replays of old messages, and Twins (two nodes sharing one key).
//!
//! After GST the network delivers everything within `max_delay_ms`, crashed
//! nodes are restarted and partitions are healed; Byzantine nodes keep
//! misbehaving.
//!
//! # Checked after every step
//! - **agreement:** no two honest nodes decide different blocks at a height;
//! - **validity:** a decided block was proposed, its body matches its
//!   header, and it extends the previous decided block;
//! - **durability:** an honest node's decided prefix never shrinks or
//!   changes, including across restarts;
//! - **certificates:** every decided block's certificate is checked
//!   independently of the engine ([`SimEngine::check_certificate`]):
//!   Tendermint blocks in a per-node core [`LightClient`], following
//!   validator-set changes; Raft blocks with
//!   [`verify_raft_certificate`] (leader signature plus a strict majority of
//!   the genesis voters);
//! - **no honest equivocation:** an honest key never signs two different
//!   votes (or proposals) for one slot, and evidence never accuses one;
//! - **liveness** (at the end): every honest node decided at least
//!   `liveness_blocks` blocks beyond the highest height decided at GST.
//!
//! A run reports its violations with the seed; `GOVCHAIN_SEED=<seed>` replays
//! exactly that run in the scenario tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use govchain_core::block::Block;
use govchain_core::cert::VoteMessage;
use govchain_core::codec::Encode;
use govchain_core::crypto::{PublicKey, SecretKey, Signer};
use govchain_core::hash::{Domain, Hash};
use govchain_core::light::{LightBlock, LightClient};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};

use crate::raft::{verify_raft_certificate, Raft, RaftConfig, RaftVoters};
use crate::tendermint::{Tendermint, TendermintConfig, TimeoutConfig};
use crate::wire::Message;
use crate::{
    Consensus, ConsensusError, DecidedBlock, Effects, Recipient, SignedProposal, SignedVote,
};

/// A small, seedable PRNG (SplitMix64). Deterministic on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }
}

/// How a Byzantine node misbehaves. It runs an honest engine and rewrites
/// what that engine sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Correct.
    Honest,
    /// Sends nothing.
    Silent,
    /// As proposer, sends one block to half the nodes and another to the rest.
    EquivocatingProposer,
    /// Sends each vote to half the nodes and a conflicting vote to the rest.
    DoubleVoter,
    /// Proposes blocks whose body does not match the header.
    InvalidProposer,
    /// Votes for random block hashes nobody proposed.
    UnknownBlockVoter,
    /// Also re-sends random old messages of any node.
    Replayer,
    /// Shares its key with the validator at the given index (Twins); both
    /// copies run honest engines.
    TwinOf(usize),
}

/// Network, crash and clock faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultConfig {
    /// Smallest message delay.
    pub min_delay_ms: u64,
    /// Largest message delay (also after GST).
    pub max_delay_ms: u64,
    /// Drop probability before GST, per mille.
    pub drop_permille: u64,
    /// Duplicate probability before GST, per mille.
    pub duplicate_permille: u64,
    /// Whether partitions happen before GST.
    pub partitions: bool,
    /// How many crash-restart events happen before GST.
    pub crashes: usize,
    /// Most honest nodes down at once.
    pub max_down: usize,
    /// Largest clock offset of a node.
    pub clock_skew_ms: u64,
    /// Global stabilisation time: faults stop here.
    pub gst_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            min_delay_ms: 1,
            max_delay_ms: 20,
            drop_permille: 0,
            duplicate_permille: 0,
            partitions: false,
            crashes: 0,
            max_down: 1,
            clock_skew_ms: 0,
            gst_ms: 0,
        }
    }
}

/// A simulation scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed; everything random derives from it.
    pub seed: u64,
    /// Validators at genesis.
    pub validators: usize,
    /// Further nodes that start as observers (candidates for a set change).
    pub observers: usize,
    /// Behaviour per node index; missing entries are honest.
    pub behaviours: BTreeMap<usize, Behaviour>,
    /// Faults.
    pub faults: FaultConfig,
    /// Simulated time after GST in which liveness must show.
    pub liveness_window_ms: u64,
    /// Blocks every honest node must decide after GST.
    pub liveness_blocks: u64,
    /// Transactions in each proposed block (load).
    pub txs_per_block: usize,
    /// From this height, the validators are these node indexes.
    pub validator_change: Option<(u64, Vec<usize>)>,
    /// Key rotations, one validator at a time (Tendermint only; not
    /// combined with `validator_change`).
    pub key_rotations: Vec<SimKeyRotation>,
    /// Tick interval.
    pub tick_ms: u64,
    /// Engine timeouts.
    pub timeouts: TimeoutConfig,
    /// Engine re-broadcast interval.
    pub rebroadcast_ms: u64,
}

impl SimConfig {
    /// `n` honest validators, no faults, small timeouts.
    pub fn new(seed: u64, validators: usize) -> Self {
        SimConfig {
            seed,
            validators,
            observers: 0,
            behaviours: BTreeMap::new(),
            faults: FaultConfig::default(),
            liveness_window_ms: 3_000,
            liveness_blocks: 2,
            txs_per_block: 0,
            validator_change: None,
            key_rotations: Vec::new(),
            tick_ms: 10,
            timeouts: TimeoutConfig {
                propose_ms: 100,
                prevote_ms: 50,
                precommit_ms: 50,
                delta_ms: 20,
                max_ms: 1_000,
            },
            rebroadcast_ms: 100,
        }
    }
}

/// A validator's key rotation in a scenario: from height `at`, node
/// `node`'s key is replaced by a fresh one
/// ([`ValidatorSet::with_rotation`]), and its old key keeps signing for it
/// until `at + overlap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimKeyRotation {
    /// The rotating validator's node index.
    pub node: usize,
    /// The height from which the new key is the member's key.
    pub at: u64,
    /// Heights during which the old key still signs for the member.
    pub overlap: u64,
    /// Whether the node holds the new key from the start (and so switches
    /// at `at`); `false` models an operator who has not loaded it, whose
    /// node signs with the old key until the overlap ends and then falls
    /// silent.
    pub node_holds_new_key: bool,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Hash over every delivered message and decision, in order.
    pub trace_hash: Hash,
    /// Decided height of each node at the end.
    pub heights: Vec<u64>,
    /// Events processed.
    pub steps: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Evidence items reported by honest nodes.
    pub evidence: usize,
    /// Crash-restarts performed.
    pub restarts: usize,
    /// Most nodes that were down at the same time.
    pub max_down_at_once: usize,
    /// Safety or liveness violations, empty on success.
    pub violations: Vec<String>,
    /// Each node's engine state at the end (its `Debug` form), for diagnosis.
    pub final_states: Vec<String>,
    /// Signatures by rotated-out keys (inside their overlap) in the
    /// certificates of decided blocks, counted once per height.
    pub rotated_out_signatures: u64,
}

impl Report {
    fn empty(seed: u64) -> Report {
        Report {
            seed,
            trace_hash: Hash::ZERO,
            heights: Vec::new(),
            steps: 0,
            delivered: 0,
            evidence: 0,
            restarts: 0,
            max_down_at_once: 0,
            violations: Vec::new(),
            final_states: Vec::new(),
            rotated_out_signatures: 0,
        }
    }
}

/// What a scenario fixes before any engine exists: the chain, every
/// node's key (index order), and the genesis and scheduled validators.
#[derive(Debug, Clone)]
pub struct SimSetup {
    /// The chain.
    pub chain_id: ChainId,
    /// Every node's key, by node index (twins share one).
    pub keys: Vec<PublicKey>,
    /// The genesis validator set (nodes `0..validators`).
    pub genesis: ValidatorSet,
    /// Further validator sets, by the height from which each signs.
    pub schedule: BTreeMap<Height, ValidatorSet>,
    /// Engine timeouts (Tendermint).
    pub timeouts: TimeoutConfig,
    /// Engine re-broadcast interval.
    pub rebroadcast_ms: u64,
}

/// How the simulator builds, restarts and checks an engine.
pub trait SimEngine: Consensus + Sized + std::fmt::Debug {
    /// The engine's configuration.
    type Config: Clone;

    /// The configuration every node of the scenario uses.
    fn config(setup: &SimSetup) -> Self::Config;

    /// Builds a node from its persisted records. `keys` are every key the
    /// node holds: its first key, then any rotated-in ones.
    fn boot(
        config: &Self::Config,
        keys: &[Arc<SecretKey>],
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError>;

    /// How many signatures in `decided`'s certificate are by rotated-out
    /// keys (signing for their successor during an overlap).
    fn rotated_out_signatures(_config: &Self::Config, _decided: &DecidedBlock) -> u64 {
        0
    }

    /// Checks a decided block's certificate independently of the engine,
    /// with the node's light client (which follows the chain).
    fn check_certificate(
        config: &Self::Config,
        light: &mut LightClient,
        decided: &DecidedBlock,
    ) -> Result<(), String>;
}

impl SimEngine for Tendermint {
    type Config = TendermintConfig;

    fn config(setup: &SimSetup) -> TendermintConfig {
        let mut cfg = TendermintConfig::new(setup.chain_id.clone(), setup.genesis.clone());
        cfg.timeouts = setup.timeouts;
        cfg.rebroadcast_ms = setup.rebroadcast_ms;
        for (h, set) in &setup.schedule {
            cfg.validator_schedule.insert(*h, set.clone());
        }
        cfg
    }

    fn rotated_out_signatures(config: &TendermintConfig, d: &DecidedBlock) -> u64 {
        let height = d.block.header.height;
        let Some(set) = config.validators_at(height) else {
            return 0;
        };
        d.certificate
            .signatures
            .iter()
            .filter(|s| {
                set.may_sign(&s.validator, height)
                    .is_ok_and(|(_, member)| member.public_key != s.validator)
            })
            .count() as u64
    }

    fn boot(
        config: &TendermintConfig,
        keys: &[Arc<SecretKey>],
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError> {
        let keys = keys.iter().map(|k| k.clone() as Arc<dyn Signer>).collect();
        Tendermint::restore_with_keys(config.clone(), keys, records, now)
    }

    fn check_certificate(
        config: &TendermintConfig,
        light: &mut LightClient,
        d: &DecidedBlock,
    ) -> Result<(), String> {
        let lb = LightBlock {
            header: d.block.header.clone(),
            certificate: d.certificate.clone(),
            validator_set: config.validators_at(d.block.header.height).cloned(),
        };
        light.verify(&lb).map_err(|e| e.to_string())
    }
}

impl SimEngine for Raft {
    type Config = RaftConfig;

    /// Genesis voters are the genesis validators; every further node is a
    /// peer that may join. Raft ticks every 20 ms, elections time out after
    /// 200–400 ms, heartbeats every 40 ms.
    fn config(setup: &SimSetup) -> RaftConfig {
        let voters: Vec<PublicKey> = setup
            .genesis
            .validators()
            .iter()
            .map(|v| v.public_key.clone())
            .collect();
        let mut cfg = RaftConfig::new(setup.chain_id.clone(), voters);
        for k in &setup.keys {
            cfg.add_peer(k.clone());
        }
        cfg.tick_ms = 20;
        cfg.election_ticks = 10;
        cfg.heartbeat_ticks = 2;
        cfg.rebroadcast_ms = setup.rebroadcast_ms;
        cfg
    }

    /// Raft nodes sign with their first key (no rotations under Raft).
    fn boot(
        config: &RaftConfig,
        keys: &[Arc<SecretKey>],
        records: &[Vec<u8>],
        now: Timestamp,
    ) -> Result<(Self, Effects), ConsensusError> {
        let signer = first_key(keys)?;
        Raft::restore(config.clone(), signer, records, now)
    }

    /// The certificate must carry the leader's signature and a strict
    /// majority of the genesis voters (membership changes are exercised
    /// outside the simulator).
    fn check_certificate(
        config: &RaftConfig,
        light: &mut LightClient,
        d: &DecidedBlock,
    ) -> Result<(), String> {
        let _ = light;
        let voters = RaftVoters {
            incoming: config
                .voters
                .iter()
                .filter_map(|id| config.peers.get(id).cloned())
                .collect(),
            outgoing: Vec::new(),
        };
        verify_raft_certificate(&d.certificate, &config.chain_id, &d.block, &voters)
            .map_err(|e| e.to_string())
    }
}

struct Node<E> {
    key: Arc<SecretKey>,
    /// Every key the node holds (its first key, then rotated-in ones).
    keys: Vec<Arc<SecretKey>>,
    public: PublicKey,
    engine: Option<E>,
    disk: Vec<Vec<u8>>,
    skew: u64,
    behaviour: Behaviour,
    honest: bool,
    crash_pending: bool,
    restart_at: u64,
    decided: Vec<Hash>,
    light: LightClient,
    nonce: u64,
}

struct Envelope {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

struct Sim<E: SimEngine> {
    cfg: SimConfig,
    rng: Rng,
    chain_id: ChainId,
    engine_cfg: E::Config,
    nodes: Vec<Node<E>>,
    client: SecretKey,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Envelope>,
    partition: Option<(BTreeSet<usize>, u64)>,
    next_partition: u64,
    crash_times: Vec<u64>,
    trace: Hash,
    global: BTreeMap<u64, Hash>,
    proposed: BTreeSet<Hash>,
    honest_votes: BTreeMap<(PublicKey, u64, u32, u8), Option<Hash>>,
    honest_proposals: BTreeMap<(PublicKey, u64, u32), Hash>,
    byzantine_keys: BTreeSet<PublicKey>,
    history: Vec<Vec<u8>>,
    report: Report,
}

fn key_for(seed: u64, index: usize) -> SecretKey {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    s[16] = 0x5a;
    SecretKey::from_seed(&s)
}

/// A node's first key, or the configuration error of a node without one.
fn first_key(keys: &[Arc<SecretKey>]) -> Result<Arc<SecretKey>, ConsensusError> {
    keys.first().cloned().ok_or(ConsensusError::InvalidConfig {
        reason: "a node needs at least one key",
    })
}

type RotationStep = (usize, Height, ValidatorSet, Option<Arc<SecretKey>>);

/// The validator schedule of `cfg.key_rotations`, rotation by rotation in
/// height order, each set built on the previous one: `(node, height, set,
/// the node's new key if it holds it)`.
fn rotation_schedule(
    cfg: &SimConfig,
    genesis: &ValidatorSet,
    keys: &[Arc<SecretKey>],
) -> Result<Vec<RotationStep>, String> {
    let mut rotations = cfg.key_rotations.clone();
    rotations.sort_by_key(|r| r.at);
    let mut current = genesis.clone();
    let mut out = Vec::with_capacity(rotations.len());
    for (n, r) in rotations.iter().enumerate() {
        let old = keys
            .get(r.node)
            .ok_or_else(|| format!("rotation of unknown node {}", r.node))?
            .public_key();
        if r.at < 2 || out.iter().any(|(_, h, _, _)| *h == Height::new(r.at)) {
            return Err(format!(
                "rotation at height {} (one per height, from 2)",
                r.at
            ));
        }
        let new = Arc::new(key_for(cfg.seed, 1_000_000 + n));
        let at = Height::new(r.at);
        current = current
            .without_rotated_keys_expired_by(at)
            .with_rotation(
                &old,
                new.public_key(),
                Height::new(r.at.saturating_add(r.overlap)),
            )
            .map_err(|e| format!("rotation of node {}: {e}", r.node))?;
        out.push((r.node, at, current.clone(), new));
    }
    // A node that does not hold its new key signs with the old one only.
    Ok(out
        .into_iter()
        .zip(rotations)
        .map(|((node, at, set, new), r)| (node, at, set, r.node_holds_new_key.then_some(new)))
        .collect())
}

/// Runs one Tendermint scenario.
pub fn run(cfg: &SimConfig) -> Report {
    run_with::<Tendermint>(cfg)
}

/// Runs one scenario with the Raft engine ([`SimConfig::validators`] are
/// the genesis voters; Byzantine behaviours do not apply to Raft).
/// Key rotations ([`SimConfig::key_rotations`]) are refused: Raft members
/// are fixed keys (a key change is a membership change).
pub fn run_raft(cfg: &SimConfig) -> Report {
    if !cfg.key_rotations.is_empty() {
        let mut refused = Report::empty(cfg.seed);
        refused
            .violations
            .push("setup: key rotations are simulated for Tendermint only".into());
        return refused;
    }
    run_with::<Raft>(cfg)
}

/// Runs one scenario with engine `E` (for example a test wrapper).
pub fn run_with<E: SimEngine>(cfg: &SimConfig) -> Report {
    let mut report = Report::empty(cfg.seed);
    let chain_id = match ChainId::new("sim") {
        Ok(c) => c,
        Err(e) => {
            report.violations.push(format!("setup: {e}"));
            return report;
        }
    };
    let total = cfg.validators + cfg.observers;
    let mut keys: Vec<Arc<SecretKey>> =
        (0..total).map(|i| Arc::new(key_for(cfg.seed, i))).collect();
    for (i, b) in &cfg.behaviours {
        if let Behaviour::TwinOf(j) = b {
            if let (Some(k), true) = (keys.get(*j).cloned(), *i < keys.len()) {
                keys[*i] = k;
            }
        }
    }
    let set_of = |idx: &[usize]| -> Option<ValidatorSet> {
        let mut seen = BTreeSet::new();
        let vals = idx
            .iter()
            .filter_map(|i| keys.get(*i))
            .map(|k| k.public_key())
            .filter(|k| seen.insert(k.clone()))
            .map(|public_key| Validator {
                public_key,
                power: 1,
            })
            .collect();
        ValidatorSet::new(vals).ok()
    };
    let genesis: Vec<usize> = (0..cfg.validators).collect();
    let Some(genesis_set) = set_of(&genesis) else {
        report.violations.push("setup: empty validator set".into());
        return report;
    };
    let mut schedule: BTreeMap<Height, ValidatorSet> = cfg
        .validator_change
        .as_ref()
        .and_then(|(h, idx)| set_of(idx).map(|set| (Height::new(*h), set)))
        .into_iter()
        .collect();
    let mut node_keys: Vec<Vec<Arc<SecretKey>>> = keys.iter().map(|k| vec![k.clone()]).collect();
    match rotation_schedule(cfg, &genesis_set, &keys) {
        Ok(rotations) => {
            if !rotations.is_empty() && !schedule.is_empty() {
                report
                    .violations
                    .push("setup: key rotations are not combined with a validator change".into());
                return report;
            }
            for (node, at, set, new_key) in rotations {
                if let (Some(held), Some(new_key)) = (node_keys.get_mut(node), new_key) {
                    held.push(new_key);
                }
                schedule.insert(at, set);
            }
        }
        Err(e) => {
            report.violations.push(format!("setup: {e}"));
            return report;
        }
    }
    let setup = SimSetup {
        chain_id: chain_id.clone(),
        keys: keys.iter().map(|k| k.public_key()).collect(),
        genesis: genesis_set.clone(),
        schedule,
        timeouts: cfg.timeouts,
        rebroadcast_ms: cfg.rebroadcast_ms,
    };
    let engine_cfg = E::config(&setup);
    let mut rng = Rng::new(cfg.seed);
    let mut byzantine_keys = BTreeSet::new();
    for (i, b) in &cfg.behaviours {
        if *b != Behaviour::Honest {
            if let Some(k) = keys.get(*i) {
                byzantine_keys.insert(k.public_key());
            }
        }
    }
    let nodes: Vec<Node<E>> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let behaviour = cfg.behaviours.get(&i).copied().unwrap_or(Behaviour::Honest);
            let public = key.public_key();
            Node {
                key: key.clone(),
                keys: node_keys.get(i).cloned().unwrap_or_default(),
                honest: !byzantine_keys.contains(&public),
                public,
                engine: None,
                disk: Vec::new(),
                skew: rng.below(cfg.faults.clock_skew_ms.saturating_add(1)),
                behaviour,
                crash_pending: false,
                restart_at: 0,
                decided: Vec::new(),
                light: LightClient::from_genesis(
                    chain_id.clone(),
                    genesis_set.clone(),
                    Timestamp::new(0),
                ),
                nonce: 0,
            }
        })
        .collect();
    let gst = cfg.faults.gst_ms;
    let mut crash_times: Vec<u64> = (0..cfg.faults.crashes)
        .map(|_| rng.below(gst.max(1)))
        .collect();
    crash_times.sort_unstable();
    crash_times.reverse();
    let mut sim = Sim {
        cfg: cfg.clone(),
        rng,
        chain_id,
        engine_cfg,
        nodes,
        client: key_for(cfg.seed, usize::MAX),
        now: 0,
        seq: 0,
        queue: BTreeMap::new(),
        partition: None,
        next_partition: 0,
        crash_times,
        trace: Hash::ZERO,
        global: BTreeMap::new(),
        proposed: BTreeSet::new(),
        honest_votes: BTreeMap::new(),
        honest_proposals: BTreeMap::new(),
        byzantine_keys,
        history: Vec::new(),
        report,
    };
    sim.run();
    sim.report.trace_hash = sim.trace;
    sim.report
}

impl<E: SimEngine> Sim<E> {
    fn violation(&mut self, what: String) {
        if self.report.violations.len() < 20 {
            self.report
                .violations
                .push(format!("seed {} t={}ms: {what}", self.cfg.seed, self.now));
        }
    }

    fn record(&mut self, parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = vec![self.trace.as_bytes()];
        all.extend_from_slice(parts);
        self.trace = Hash::of_parts(Domain::Test, &all);
    }

    fn local_now(&self, i: usize) -> Timestamp {
        let skew = self.nodes.get(i).map_or(0, |n| n.skew);
        Timestamp::new(self.now.saturating_add(skew))
    }

    fn boot(&mut self, i: usize) {
        let now = self.local_now(i);
        let Some(node) = self.nodes.get(i) else {
            return;
        };
        match E::boot(&self.engine_cfg, &node.keys, &node.disk, now) {
            Ok((engine, effects)) => {
                // Durability: the restored prefix contains everything the
                // node ever reported decided.
                let mut bad = None;
                for (h, hash) in node.decided.iter().enumerate() {
                    let height = Height::new(h as u64 + 1);
                    let got = engine.decided_block(height).map(|d| d.block.hash());
                    if got != Some(*hash) {
                        bad = Some(format!(
                            "node {i} lost or changed decided height {height} after restart"
                        ));
                        break;
                    }
                }
                if let Some(b) = bad {
                    self.violation(b);
                }
                if let Some(n) = self.nodes.get_mut(i) {
                    n.engine = Some(engine);
                }
                self.apply(i, effects);
            }
            Err(e) => self.violation(format!("node {i} failed to restart: {e}")),
        }
    }

    fn run(&mut self) {
        for i in 0..self.nodes.len() {
            self.boot(i);
        }
        let gst = self.cfg.faults.gst_ms;
        let end = gst.saturating_add(self.cfg.liveness_window_ms);
        let tick = self.cfg.tick_ms.max(1);
        let mut next_tick = 0u64;
        let mut gst_height: Option<u64> = None;
        while self.now <= end {
            self.report.steps += 1;
            let next_msg = self.queue.first_key_value().map(|(k, _)| k.0);
            if next_msg.is_some_and(|t| t < next_tick) {
                if let Some((key, env)) = self.queue.pop_first() {
                    self.now = key.0;
                    self.deliver(env);
                }
            } else {
                self.now = next_tick;
                next_tick += tick;
                self.faults();
                if gst_height.is_none() && self.now >= gst {
                    gst_height = Some(self.global.keys().next_back().copied().unwrap_or(0));
                }
                for i in 0..self.nodes.len() {
                    let now = self.local_now(i);
                    let effects = match self.nodes.get_mut(i).and_then(|n| n.engine.as_mut()) {
                        Some(e) => e.tick(now),
                        None => continue,
                    };
                    self.apply(i, effects);
                }
            }
            if self.report.violations.len() >= 20 {
                break;
            }
        }
        let base = gst_height.unwrap_or(0);
        self.report.heights = self.nodes.iter().map(|n| n.decided.len() as u64).collect();
        self.report.final_states = self
            .nodes
            .iter()
            .map(|n| format!("{:?}", n.engine))
            .collect();
        for i in 0..self.nodes.len() {
            let (honest, got) = match self.nodes.get(i) {
                Some(n) => (n.honest, n.decided.len() as u64),
                None => continue,
            };
            if honest && got < base + self.cfg.liveness_blocks {
                self.violation(format!(
                    "liveness: node {i} decided {got} blocks, needed {} ({} at GST + {})",
                    base + self.cfg.liveness_blocks,
                    base,
                    self.cfg.liveness_blocks
                ));
            }
        }
    }

    fn faults(&mut self) {
        let gst = self.cfg.faults.gst_ms;
        // Restarts (all crashed nodes are back by GST).
        for i in 0..self.nodes.len() {
            let due = self.nodes.get(i).is_some_and(|n| {
                n.engine.is_none() && (n.restart_at <= self.now || self.now >= gst)
            });
            if due {
                self.report.restarts += 1;
                self.boot(i);
            }
        }
        // Crashes.
        if self.crash_times.last().is_some_and(|t| *t <= self.now) {
            self.crash_times.pop();
            let down = self
                .nodes
                .iter()
                .filter(|n| n.engine.is_none() || n.crash_pending)
                .count();
            if down < self.cfg.faults.max_down && self.now < gst {
                let honest: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| {
                        self.nodes
                            .get(*i)
                            .is_some_and(|n| n.honest && n.engine.is_some())
                    })
                    .collect();
                let pick = self.rng.below(honest.len() as u64) as usize;
                if let Some(&i) = honest.get(pick) {
                    let downtime = 50 + self.rng.below(500);
                    if let Some(n) = self.nodes.get_mut(i) {
                        n.crash_pending = true;
                        n.restart_at = self.now + downtime;
                    }
                }
            }
        }
        // Partitions.
        if self.cfg.faults.partitions {
            if let Some((_, until)) = &self.partition {
                if *until <= self.now || self.now >= gst {
                    self.partition = None;
                }
            } else if self.now < gst && self.now >= self.next_partition {
                let mut side = BTreeSet::new();
                for i in 0..self.nodes.len() {
                    if self.rng.chance(500) {
                        side.insert(i);
                    }
                }
                let len = 100 + self.rng.below(600);
                self.partition = Some((side, self.now + len));
                self.next_partition = self.now + len + self.rng.below(400);
            }
        }
    }

    fn deliver(&mut self, env: Envelope) {
        let from_key = match self.nodes.get(env.from) {
            Some(n) => n.public.clone(),
            None => return,
        };
        let Some(engine) = self.nodes.get_mut(env.to).and_then(|n| n.engine.as_mut()) else {
            return;
        };
        self.report.delivered += 1;
        let result = engine.step(&from_key, &env.bytes);
        let (f, t) = (
            (env.from as u64).to_le_bytes(),
            (env.to as u64).to_le_bytes(),
        );
        self.record(&[&f, &t, &env.bytes]);
        if let Ok(effects) = result {
            self.apply(env.to, effects);
        }
    }

    /// The host's duties: persist (possibly crashing part-way), send, apply.
    fn apply(&mut self, i: usize, mut effects: Effects) {
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        if node.engine.is_none() {
            return;
        }
        if node.crash_pending {
            // Crash while persisting: a random prefix of this batch's
            // records reaches the disk, nothing is sent or applied.
            let keep = self.rng.below(effects.persist.len() as u64 + 1) as usize;
            node.disk.extend(effects.persist.drain(..).take(keep));
            node.engine = None;
            node.crash_pending = false;
            let down = self.nodes.iter().filter(|n| n.engine.is_none()).count();
            self.report.max_down_at_once = self.report.max_down_at_once.max(down);
            return;
        }
        node.disk.append(&mut effects.persist);
        for out in std::mem::take(&mut effects.send) {
            self.send(i, out.to, out.bytes);
        }
        for d in std::mem::take(&mut effects.decided) {
            self.on_decided(i, d);
        }
        let honest = self.nodes.get(i).is_some_and(|n| n.honest);
        for ev in std::mem::take(&mut effects.evidence) {
            if !ev.verify() {
                self.violation(format!("node {i} reported unverifiable evidence {ev:?}"));
            }
            if !self.byzantine_keys.contains(ev.offender()) {
                self.violation(format!("node {i} accused honest {}: {ev:?}", ev.offender()));
            }
            if honest {
                self.report.evidence += 1;
            }
        }
        if let Some(req) = effects.propose_request.take() {
            let txs = self.make_txs(i);
            let block = req.block(self.local_now(i), txs);
            self.proposed.insert(block.hash());
            let result = self
                .nodes
                .get_mut(i)
                .and_then(|n| n.engine.as_mut())
                .map(|e| e.propose(block));
            match result {
                Some(Ok(effects)) => self.apply(i, effects),
                Some(Err(e)) => self.violation(format!("node {i} refused its own block: {e}")),
                None => {}
            }
        }
    }

    fn make_txs(&mut self, i: usize) -> Vec<Transaction> {
        let mut txs = Vec::with_capacity(self.cfg.txs_per_block);
        for _ in 0..self.cfg.txs_per_block {
            let nonce = match self.nodes.get_mut(i) {
                Some(n) => {
                    n.nonce += 1;
                    n.nonce + ((i as u64) << 40)
                }
                None => 0,
            };
            if let Ok(tx) =
                Transaction::new_signed(self.chain_id.clone(), &self.client, nonce, vec![7; 32])
            {
                txs.push(tx);
            }
        }
        txs
    }

    fn on_decided(&mut self, i: usize, d: crate::DecidedBlock) {
        let h = d.block.header.height.get();
        let hash = d.block.hash();
        self.record(&[&(i as u64).to_le_bytes(), hash.as_bytes()]);
        let Some(node) = self.nodes.get(i) else {
            return;
        };
        if !node.honest {
            return;
        }
        let known = node.decided.len() as u64;
        if h <= known {
            if node.decided.get(h as usize - 1) != Some(&hash) {
                self.violation(format!("node {i} changed its decision at height {h}"));
            }
            return;
        }
        if h != known + 1 {
            self.violation(format!("node {i} decided height {h} after {known}"));
            return;
        }
        // Agreement.
        match self.global.get(&h) {
            Some(g) if *g != hash => self.violation(format!(
                "agreement: node {i} decided {hash} at {h}, others {g}"
            )),
            Some(_) => {}
            None => {
                self.global.insert(h, hash);
                self.report.rotated_out_signatures +=
                    E::rotated_out_signatures(&self.engine_cfg, &d);
            }
        }
        // Validity.
        if !self.proposed.contains(&hash) {
            self.violation(format!(
                "validity: node {i} decided unproposed block at {h}"
            ));
        }
        if let Err(e) = d.block.validate_body() {
            self.violation(format!(
                "validity: node {i} decided invalid block at {h}: {e}"
            ));
        }
        // Certificate, checked independently of the engine (for Tendermint
        // through the core light client).
        let verdict = self
            .nodes
            .get_mut(i)
            .map(|n| E::check_certificate(&self.engine_cfg, &mut n.light, &d));
        if let Some(Err(e)) = verdict {
            self.violation(format!(
                "node {i} decided block at {h} with a rejected certificate: {e}"
            ));
        }
        if let Some(n) = self.nodes.get_mut(i) {
            n.decided.push(hash);
        }
    }

    fn audit(&mut self, i: usize, msg: &Message) {
        if let Message::Proposal(p) = msg {
            self.proposed.insert(p.block.hash());
        }
        let honest = self.nodes.get(i).is_some_and(|n| n.honest);
        if !honest {
            return;
        }
        match msg {
            Message::Vote(v) => {
                let key = (
                    v.validator.clone(),
                    v.vote.height.get(),
                    v.vote.round.get(),
                    v.vote.kind as u8,
                );
                match self.honest_votes.get(&key) {
                    Some(prev) if *prev != v.vote.block_hash => self.violation(format!(
                        "honest node {i} double-signed {:?} at height {} round {}",
                        v.vote.kind, key.1, key.2
                    )),
                    Some(_) => {}
                    None => {
                        self.honest_votes.insert(key, v.vote.block_hash);
                    }
                }
            }
            Message::Proposal(p) => {
                let key = (p.proposer().clone(), p.height().get(), p.round.get());
                let digest = p.signing_digest();
                match self.honest_proposals.get(&key) {
                    Some(prev) if *prev != digest => self.violation(format!(
                        "honest node {i} signed two proposals at height {} round {}",
                        key.1, key.2
                    )),
                    Some(_) => {}
                    None => {
                        self.honest_proposals.insert(key, digest);
                    }
                }
            }
            _ => {}
        }
    }

    fn targets(&self, from: usize, to: &Recipient) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|j| *j != from)
            .filter(|j| match to {
                Recipient::All => true,
                Recipient::One(k) => self.nodes.get(*j).is_some_and(|n| &n.public == k),
            })
            .collect()
    }

    fn send(&mut self, from: usize, to: Recipient, bytes: Vec<u8>) {
        let msg = Message::decode(&bytes, usize::MAX).ok();
        if let Some(m) = &msg {
            self.audit(from, m);
        }
        let behaviour = self
            .nodes
            .get(from)
            .map_or(Behaviour::Honest, |n| n.behaviour);
        let targets = self.targets(from, &to);
        match (behaviour, msg) {
            (Behaviour::Silent, _) => {}
            (Behaviour::EquivocatingProposer, Some(Message::Proposal(p))) => {
                let mut alt = p.block.clone();
                alt.header.time = Timestamp::new(alt.header.time.get() + 1);
                let alt = self.resign_proposal(from, &p, alt);
                for (k, j) in targets.into_iter().enumerate() {
                    let m = if k % 2 == 0 { &bytes } else { &alt };
                    self.enqueue(from, j, m.clone());
                }
            }
            (Behaviour::InvalidProposer, Some(Message::Proposal(p))) => {
                let mut bad = p.block.clone();
                bad.header.tx_count = bad.header.tx_count.wrapping_add(1);
                let bad = self.resign_proposal(from, &p, bad);
                for j in targets {
                    self.enqueue(from, j, bad.clone());
                }
            }
            (Behaviour::DoubleVoter, Some(Message::Vote(v))) => {
                let other = match v.vote.block_hash {
                    Some(_) => None,
                    None => Some(self.random_hash()),
                };
                let alt = self.resign_vote(from, &v.vote, other);
                // Half the nodes get the conflicting vote as well, in a
                // random order, so they can catch the equivocation.
                for (k, j) in targets.into_iter().enumerate() {
                    if k % 2 == 1 {
                        self.enqueue(from, j, alt.clone());
                    }
                    self.enqueue(from, j, bytes.clone());
                }
            }
            (Behaviour::UnknownBlockVoter, Some(Message::Vote(v))) => {
                let h = Some(self.random_hash());
                let alt = self.resign_vote(from, &v.vote, h);
                for j in targets {
                    self.enqueue(from, j, alt.clone());
                }
            }
            (Behaviour::Replayer, _) => {
                for j in targets.iter().copied() {
                    self.enqueue(from, j, bytes.clone());
                }
                if !self.history.is_empty() {
                    let pick = self.rng.below(self.history.len() as u64) as usize;
                    if let (Some(old), Some(&j)) = (
                        self.history.get(pick).cloned(),
                        targets.get(self.rng.below(targets.len() as u64) as usize),
                    ) {
                        self.enqueue(from, j, old);
                    }
                }
            }
            _ => {
                for j in targets {
                    self.enqueue(from, j, bytes.clone());
                }
            }
        }
        if self.history.len() < 4096 && self.rng.chance(100) {
            self.history.push(bytes);
        }
    }

    fn random_hash(&mut self) -> Hash {
        let mut b = [0u8; 32];
        for c in b.chunks_mut(8) {
            c.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        Hash::from(b)
    }

    fn resign_proposal(&mut self, from: usize, p: &SignedProposal, block: Block) -> Vec<u8> {
        let Some(key) = self.nodes.get(from).map(|n| n.key.clone()) else {
            return Vec::new();
        };
        let signed = SignedProposal::sign(
            p.chain_id.clone(),
            p.round,
            p.pol_round,
            block,
            key.as_ref(),
        );
        let m = Message::Proposal(signed);
        self.audit(from, &m);
        m.to_bytes()
    }

    fn resign_vote(
        &mut self,
        from: usize,
        vote: &VoteMessage,
        block_hash: Option<Hash>,
    ) -> Vec<u8> {
        let Some(key) = self.nodes.get(from).map(|n| n.key.clone()) else {
            return Vec::new();
        };
        let mut vote = vote.clone();
        vote.block_hash = block_hash;
        Message::Vote(SignedVote::sign(vote, key.as_ref())).to_bytes()
    }

    fn enqueue(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        let faulty = self.now < self.cfg.faults.gst_ms;
        if faulty {
            if let Some((side, _)) = &self.partition {
                if side.contains(&from) != side.contains(&to) {
                    return;
                }
            }
            if self.rng.chance(self.cfg.faults.drop_permille) {
                return;
            }
        }
        let copies = if faulty && self.rng.chance(self.cfg.faults.duplicate_permille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let f = &self.cfg.faults;
            let span = f.max_delay_ms.saturating_sub(f.min_delay_ms) + 1;
            let delay = f.min_delay_ms + self.rng.below(span);
            self.seq += 1;
            self.queue.insert(
                (self.now + delay, self.seq),
                Envelope {
                    from,
                    to,
                    bytes: bytes.clone(),
                },
            );
        }
    }
}

/// Seeds to run: `GOVCHAIN_SEED` alone if set, else `count` seeds from
/// `GOVCHAIN_SIM_SEEDS` (default `default`) divided by `divisor`, at least
/// one.
pub fn seeds_from_env(default: u64, divisor: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("GOVCHAIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("GOVCHAIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(default);
    let n = (count / divisor.max(1)).max(1);
    (0..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WalRecord;
    use govchain_core::codec::decode_exact;

    /// A deliberately broken engine: it drops every write-ahead record except
    /// decided blocks, so a restarted node forgets what it signed.
    #[derive(Debug)]
    struct SkipsVoteWal(Tendermint);

    fn strip(mut e: Effects) -> Effects {
        e.persist.retain(|r| {
            matches!(
                decode_exact::<WalRecord>(r, usize::MAX),
                Ok(WalRecord::Decided(_))
            )
        });
        e
    }

    impl Consensus for SkipsVoteWal {
        fn tick(&mut self, now: Timestamp) -> Effects {
            strip(self.0.tick(now))
        }
        fn step(&mut self, from: &PublicKey, m: &[u8]) -> Result<Effects, ConsensusError> {
            self.0.step(from, m).map(strip)
        }
        fn propose(&mut self, block: Block) -> Result<Effects, ConsensusError> {
            self.0.propose(block).map(strip)
        }
        fn height(&self) -> Height {
            self.0.height()
        }
        fn decided_block(&self, height: Height) -> Option<&crate::DecidedBlock> {
            self.0.decided_block(height)
        }
    }

    impl SimEngine for SkipsVoteWal {
        type Config = TendermintConfig;

        fn config(setup: &SimSetup) -> TendermintConfig {
            <Tendermint as SimEngine>::config(setup)
        }

        fn check_certificate(
            config: &TendermintConfig,
            light: &mut LightClient,
            d: &DecidedBlock,
        ) -> Result<(), String> {
            <Tendermint as SimEngine>::check_certificate(config, light, d)
        }

        fn boot(
            config: &TendermintConfig,
            keys: &[Arc<SecretKey>],
            records: &[Vec<u8>],
            now: Timestamp,
        ) -> Result<(Self, Effects), ConsensusError> {
            Tendermint::restore(config.clone(), first_key(keys)?, records, now)
                .map(|(e, eff)| (SkipsVoteWal(e), strip(eff)))
        }
    }

    fn crashy(seed: u64) -> SimConfig {
        let mut cfg = SimConfig::new(seed, 4);
        cfg.faults.crashes = 8;
        cfg.faults.max_down = 1;
        cfg.faults.gst_ms = 2_000;
        cfg
    }

    #[test]
    fn checker_catches_engine_that_skips_persistence() {
        let caught = (0..16).any(|seed| {
            let report = run_with::<SkipsVoteWal>(&crashy(seed));
            report
                .violations
                .iter()
                .any(|v| v.contains("double-signed") || v.contains("two proposals"))
        });
        assert!(
            caught,
            "the simulator must catch double-signing after restart"
        );
    }

    #[test]
    fn same_scenario_with_the_real_engine_is_clean() {
        for seed in 0..4 {
            let report = run(&crashy(seed));
            assert!(report.violations.is_empty(), "{:?}", report.violations);
            assert!(report.restarts > 0);
        }
    }

    /// A deliberately broken Raft host: it keeps only certified blocks and
    /// drops the log and the hard state (term, vote), so a restarted node
    /// forgets entries it acknowledged and votes it cast (Raft's Figure 2
    /// durability).
    #[derive(Debug)]
    struct ForgetsRaftLog(Raft);

    fn strip_raft(mut e: Effects) -> Effects {
        e.persist.retain(|r| {
            matches!(
                decode_exact::<crate::raft::wire::RaftRecordForTests>(r, usize::MAX),
                Ok(crate::raft::wire::RaftRecordForTests::Decided)
            )
        });
        e
    }

    impl Consensus for ForgetsRaftLog {
        fn tick(&mut self, now: Timestamp) -> Effects {
            strip_raft(self.0.tick(now))
        }
        fn step(&mut self, from: &PublicKey, m: &[u8]) -> Result<Effects, ConsensusError> {
            self.0.step(from, m).map(strip_raft)
        }
        fn propose(&mut self, block: Block) -> Result<Effects, ConsensusError> {
            self.0.propose(block).map(strip_raft)
        }
        fn height(&self) -> Height {
            self.0.height()
        }
        fn decided_block(&self, height: Height) -> Option<&crate::DecidedBlock> {
            self.0.decided_block(height)
        }
    }

    impl SimEngine for ForgetsRaftLog {
        type Config = RaftConfig;

        fn config(setup: &SimSetup) -> RaftConfig {
            <Raft as SimEngine>::config(setup)
        }

        fn check_certificate(
            config: &RaftConfig,
            light: &mut LightClient,
            d: &DecidedBlock,
        ) -> Result<(), String> {
            <Raft as SimEngine>::check_certificate(config, light, d)
        }

        fn boot(
            config: &RaftConfig,
            keys: &[Arc<SecretKey>],
            records: &[Vec<u8>],
            now: Timestamp,
        ) -> Result<(Self, Effects), ConsensusError> {
            Raft::restore(config.clone(), first_key(keys)?, records, now)
                .map(|(e, eff)| (ForgetsRaftLog(e), strip_raft(eff)))
        }
    }

    fn raft_crashy(seed: u64) -> SimConfig {
        let mut cfg = SimConfig::new(seed, 3);
        cfg.faults.crashes = 30;
        cfg.faults.max_down = 1;
        cfg.faults.max_delay_ms = 30;
        cfg.faults.gst_ms = 4_000;
        cfg
    }

    #[test]
    fn checker_catches_raft_host_that_forgets_its_log() {
        // A *safety* violation, not just a stall (seed 12: agreement).
        let caught = (0..16).find_map(|seed| {
            let report = run_with::<ForgetsRaftLog>(&raft_crashy(seed));
            report
                .violations
                .iter()
                .find(|v| !v.contains("liveness"))
                .cloned()
        });
        eprintln!("caught: {caught:?}");
        let caught = caught.is_some();
        assert!(
            caught,
            "the simulator must catch a Raft node that forgets its log"
        );
    }

    #[test]
    fn same_raft_scenario_with_the_real_host_is_clean() {
        for seed in 0..2 {
            let report = run_raft(&raft_crashy(seed));
            assert!(report.violations.is_empty(), "{:?}", report.violations);
            assert!(report.restarts > 0);
        }
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(Rng::new(1).below(0) == 0);
    }
}
