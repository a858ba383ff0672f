//! One chain as one node runs it: its consensus engine, application,
//! stores, consensus log and mempool, and the rules that tie them together.
//!
//! # Write order (DESIGN.md §3, the consensus crate's host duties)
//! For every batch of engine effects the node, in order:
//! 1. appends the batch's records to the chain's [`RecordLog`] and syncs it
//!    (one sync covers every batch of one loop turn);
//! 2. sends the batch's messages;
//! 3. executes each decided block (reusing the execution done when the
//!    block was validated or built), checks the header's state root, and
//!    appends block, certificate and state to the store in one durable,
//!    atomic write;
//! 4. judges proposed blocks for the engine and builds its own proposals.
//!
//! A crash anywhere recovers: the engine restarts from its log (which is
//! never behind the store, because step 1 precedes step 3), and decided
//! blocks the store lacks are re-applied from the engine at start-up.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use govchain_consensus::raft::{Raft, RaftConfig};
use govchain_consensus::tendermint::{Tendermint, TendermintConfig, TimeoutConfig};
use govchain_consensus::{Consensus, DecidedBlock, Effects};
use govchain_core::app::{
    Application, BlockContext, Receipt, StateOverlay, StateView, TreeStateView,
};
use govchain_core::block::Block;
use govchain_core::crypto::{verify_batch, BatchItem, CryptoSuite, PublicKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::merkle::HistoryTree;
use govchain_core::smt::{CoalescedUpdates, KeyHash, NodeStore, SparseMerkleTree, TreeUpdateBatch};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{KeyWindow, ValidatorSet};
use govchain_storage::{
    BlockStore, DurableConfig, DurableStore, MemoryStore, RecordLog, StateStore,
};

use crate::error::NodeError;
pub use crate::governance::EngineKind;
use crate::governance::{GovernanceApp, GovernanceGenesis, SideChainSpec};
use crate::mempool::{Mempool, MempoolConfig};
use crate::sync::{SyncConfig, SyncState};

/// Limits on the blocks of a chain; proposals over them are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most transactions per block.
    pub max_txs: usize,
    /// Most encoded transaction bytes per block.
    pub max_bytes: usize,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            max_txs: 2_000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What a chain is for, as far as the node is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRole {
    /// The main chain, running the governance application: the node reads
    /// validator-set changes of every chain from its state.
    Main,
    /// A side chain that anchors a checkpoint on the main chain every
    /// `anchor_every` blocks.
    Side {
        /// The anchoring interval K.
        anchor_every: u64,
    },
}

/// Everything every node of a chain must agree on, plus this node's local
/// choices for it.
#[derive(Clone)]
pub struct ChainSpec {
    /// The chain.
    pub chain_id: ChainId,
    /// Main or side.
    pub role: ChainRole,
    /// Its consensus.
    pub engine: EngineKind,
    /// The validators at genesis (Raft: the voters; power is ignored).
    pub validators: ValidatorSet,
    /// Time of the genesis state.
    pub genesis_time: Timestamp,
    /// The application.
    pub app: Arc<dyn Application>,
    /// The application's genesis key-values (state version 0).
    pub genesis_state: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every node that runs the chain (validators and followers); consensus
    /// messages go to all of them.
    pub peers: Vec<PublicKey>,
    /// Block limits.
    pub limits: BlockLimits,
    /// Mempool limits (local).
    pub mempool: MempoolConfig,
    /// Tendermint round timeouts (local, but should match).
    pub timeouts: TimeoutConfig,
    /// Raft tick length in milliseconds.
    pub raft_tick_ms: u64,
    /// With an empty mempool, how long the proposer waits after a commit
    /// before proposing an empty block (keep it well below the propose
    /// timeout).
    pub empty_block_interval_ms: u64,
    /// Block sync (Tendermint chains).
    pub sync: SyncConfig,
    /// How many of the latest decided blocks the Tendermint engine keeps in
    /// memory for its own catch-up; older ones are served by block sync
    /// from the store.
    pub retain_decided_blocks: u64,
    /// The consensus log is compacted when it grows beyond this many bytes
    /// (Tendermint chains; Raft's log is not compacted yet).
    pub log_compaction_bytes: u64,
    /// Keep the state of only the latest this-many versions (heights):
    /// older versions are pruned from the state store every
    /// [`STATE_PRUNE_EVERY`] commits (or every `retain` commits, if fewer), so the store holds the live state
    /// instead of every version ever written. State reads and proofs at a
    /// pruned height are then refused as pruned; blocks, transaction
    /// proofs, block sync and cross-chain proofs of transactions are
    /// unaffected. `None` (the default): keep every version.
    pub retain_state_versions: Option<u64>,
}

/// With [`ChainSpec::retain_state_versions`] set, state is pruned once per
/// this many commits (each prune also makes the store's index durable).
pub const STATE_PRUNE_EVERY: u64 = 64;

impl std::fmt::Debug for ChainSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainSpec")
            .field("chain_id", &self.chain_id)
            .field("role", &self.role)
            .field("engine", &self.engine)
            .field("app", &self.app.name())
            .finish_non_exhaustive()
    }
}

impl ChainSpec {
    /// The chain's crypto suite, fixed at genesis: the suite of its genesis
    /// validators' keys (a [`ValidatorSet`] never mixes algorithms). Every
    /// header, root and proof of the chain is of this suite, and the chain
    /// admits only keys of its algorithm.
    pub fn suite(&self) -> CryptoSuite {
        self.validators.suite()
    }

    /// A spec with default limits and timeouts tuned for a LAN.
    pub fn new(
        chain_id: ChainId,
        role: ChainRole,
        engine: EngineKind,
        validators: ValidatorSet,
        app: Arc<dyn Application>,
    ) -> Self {
        let peers = validators
            .validators()
            .iter()
            .map(|v| v.public_key.clone())
            .collect();
        ChainSpec {
            chain_id,
            role,
            engine,
            validators,
            genesis_time: Timestamp::new(0),
            app,
            genesis_state: Vec::new(),
            peers,
            limits: BlockLimits::default(),
            mempool: MempoolConfig::default(),
            timeouts: TimeoutConfig {
                propose_ms: 1_000,
                prevote_ms: 500,
                precommit_ms: 500,
                delta_ms: 250,
                ..TimeoutConfig::default()
            },
            raft_tick_ms: 50,
            empty_block_interval_ms: 250,
            sync: SyncConfig::default(),
            retain_decided_blocks: 256,
            log_compaction_bytes: 64 * 1024 * 1024,
            retain_state_versions: None,
        }
    }
}

impl ChainSpec {
    /// The main chain of `genesis`: Tendermint among the departments with
    /// power, running the [governance](crate::governance) application with
    /// its genesis records as state version 0; every department is a peer.
    pub fn main_chain(genesis: GovernanceGenesis) -> Result<Self, NodeError> {
        let config = |e: crate::governance::GenesisError| NodeError::Config {
            field: "genesis",
            reason: e.to_string(),
        };
        let set = genesis.main_validator_set().map_err(config)?;
        let peers = genesis
            .departments
            .iter()
            .map(|d| d.node_key.clone())
            .collect();
        let chain_id = genesis.main_chain.clone();
        let app = GovernanceApp::new(genesis).map_err(config)?;
        let genesis_state = app
            .genesis_writes()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let mut spec = ChainSpec::new(
            chain_id,
            ChainRole::Main,
            EngineKind::Bft,
            set,
            Arc::new(app),
        );
        spec.genesis_state = genesis_state;
        spec.peers = peers;
        Ok(spec)
    }

    /// A side chain registered in governance genesis, running `app`.
    pub fn side_chain(side: &SideChainSpec, app: Arc<dyn Application>) -> Self {
        ChainSpec::new(
            side.chain_id.clone(),
            ChainRole::Side {
                anchor_every: side.anchor_interval.max(1),
            },
            side.engine,
            side.validators.clone(),
            app,
        )
    }
}

/// Where a chain's data lives.
#[derive(Debug, Clone)]
pub enum StorageKind {
    /// In memory: lost when the node stops.
    Memory,
    /// The durable default under this directory (one sub-directory per
    /// chain).
    Durable(PathBuf),
    /// The durable default on another byte-level backend, such as the
    /// storage crate's fault-injecting `SimDisk` (crash tests).
    DurableOn(Arc<dyn govchain_storage::Vfs>, PathBuf),
}

type OpenedStorage = (Arc<dyn ChainStore>, Option<RecordLog>, Vec<Vec<u8>>);

/// Opens (recovering) a chain's durable store and consensus log under
/// `dir/<chain>` on `vfs`.
fn open_durable(
    vfs: Arc<dyn govchain_storage::Vfs>,
    dir: &std::path::Path,
    chain: &ChainId,
) -> Result<OpenedStorage, NodeError> {
    let dir = dir.join(chain.as_str());
    vfs.create_dir_all(&dir).map_err(|e| NodeError::Storage {
        chain: chain.clone(),
        source: Box::new(govchain_storage::StorageError::Io {
            op: "create_dir_all",
            path: dir.clone(),
            source: e,
        }),
    })?;
    // Log compaction: a frame's state batch is dead weight once the index
    // is durable past it (most of a large block's frame).
    let mut config = DurableConfig::default();
    config.compact_log = true;
    let store = DurableStore::open_with(vfs.clone(), &dir, chain.clone(), config)
        .map_err(storage_err(chain))?;
    let (wal, records) =
        RecordLog::open(vfs, &dir.join("consensus.wal")).map_err(storage_err(chain))?;
    Ok((Arc::new(store), Some(wal), records))
}

/// A store that holds both blocks and state.
pub trait ChainStore: BlockStore + StateStore {}
impl<T: BlockStore + StateStore> ChainStore for T {}

/// The result of executing a block on its parent state.
#[derive(Debug, Clone)]
pub(crate) struct Executed {
    pub state_root: Hash,
    pub batch: TreeUpdateBatch,
    pub receipts: Vec<Receipt>,
}

enum Engine {
    Bft(Box<Tendermint>),
    Raft(Box<Raft>),
}

impl Engine {
    fn consensus(&mut self) -> &mut dyn Consensus {
        match self {
            Engine::Bft(e) => e.as_mut(),
            Engine::Raft(e) => e.as_mut(),
        }
    }
}

/// Counters of one chain on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainCounters {
    /// Transactions committed.
    pub committed_txs: u64,
    /// Proposals this node judged invalid.
    pub rejected_proposals: u64,
    /// Gossiped transactions from peers that did not decode (dropped; each
    /// logged at `debug` with the peer).
    pub malformed_gossip_txs: u64,
    /// Consensus messages from peers that the engine refused (undecodable,
    /// badly signed, from a non-validator, …; dropped, each logged at
    /// `debug` with the peer and the reason).
    pub refused_consensus_messages: u64,
    /// Evidence of equivocation seen.
    pub evidence: u64,
    /// Times the consensus log was compacted.
    pub log_compactions: u64,
    /// Times old state versions were pruned
    /// ([`ChainSpec::retain_state_versions`]).
    pub state_prunes: u64,
    /// Blocks caught up on by block sync and stored in coalesced runs (see
    /// [`SyncConfig::coalesce`](crate::SyncConfig::coalesce)).
    pub coalesced_blocks: u64,
    /// Coalesced runs stored.
    pub coalesced_runs: u64,
}

/// A block this node committed, as announced to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEvent {
    /// The chain.
    pub chain: ChainId,
    /// The height.
    pub height: Height,
    /// The block hash.
    pub hash: Hash,
    /// The block time.
    pub time: Timestamp,
    /// Ids of its transactions, in order.
    pub tx_ids: Arc<Vec<Hash>>,
    /// How many transactions failed (non-zero receipt code).
    pub failed_txs: u32,
}

pub(crate) struct ChainRunner {
    pub spec: ChainSpec,
    engine: Engine,
    pub store: Arc<dyn ChainStore>,
    wal: Option<RecordLog>,
    pub mempool: Mempool,
    history: HistoryTree,
    /// Executions of blocks at the next height, by block hash.
    executed: HashMap<Hash, Executed>,
    /// Where the transactions committed before the node started are; the
    /// node moves it into its shared index at start and keeps that one.
    pub tx_index: crate::tx_index::TxLocator,
    pub counters: ChainCounters,
    /// A block request waiting for its parent to be applied, or for
    /// transactions.
    pub deferred_request: Option<govchain_consensus::ProposeRequest>,
    /// When the last block was committed here (or the chain opened).
    pub last_commit: std::time::Instant,
    /// Block sync.
    pub sync: SyncState,
    /// Synced blocks applied but not stored yet: coalesced runs.
    pending: Option<PendingRun>,
    /// Set while block sync applies blocks (which may be coalesced).
    pub applying_synced: bool,
}

impl Drop for ChainRunner {
    /// A run being written is waited for (the store is not left to a
    /// detached thread); one not handed off yet is re-applied from the
    /// engine's log on the next open.
    fn drop(&mut self) {
        if let Some(w) = self.pending.as_mut().and_then(|r| r.writing.take()) {
            let _ = w.handle.join();
        }
    }
}

/// Blocks applied during catch-up whose state versions are coalesced into
/// runs, each stored by one [`BlockStore::append_coalesced`] on a writer
/// thread while the next run is executed: their state is read through the
/// collected updates until the store holds them.
struct PendingRun {
    /// Blocks applied since the last run was handed to the writer.
    blocks: Vec<DecidedBlock>,
    /// The updates of those blocks, plus those of the run being written.
    updates: CoalescedUpdates,
    /// The run being written, if any (at most one).
    writing: Option<Writing>,
}

/// A coalesced run handed to the writer thread.
struct Writing {
    /// Its last height.
    last: Height,
    /// Its length.
    blocks: usize,
    handle: std::thread::JoinHandle<Result<(), govchain_storage::StorageError>>,
}

pub(crate) fn storage_err(
    chain: &ChainId,
) -> impl Fn(govchain_storage::StorageError) -> NodeError + '_ {
    move |source| NodeError::Storage {
        chain: chain.clone(),
        source: Box::new(source),
    }
}

fn consensus_err(chain: &ChainId) -> impl Fn(govchain_consensus::ConsensusError) -> NodeError + '_ {
    move |source| NodeError::Consensus {
        chain: chain.clone(),
        source: Box::new(source),
    }
}

impl ChainRunner {
    /// Opens the chain's stores and log and restores its engine. Returns
    /// the runner and the engine's start-up effects.
    /// `keys` are every key of the node, its main key first (a Raft
    /// engine signs with that one only).
    pub fn open(
        spec: ChainSpec,
        keys: Vec<Arc<dyn Signer>>,
        storage: &StorageKind,
        schedule: BTreeMap<Height, ValidatorSet>,
        now: Timestamp,
    ) -> Result<(Self, Effects), NodeError> {
        let chain = spec.chain_id.clone();
        let (store, wal, records): (Arc<dyn ChainStore>, _, _) = match storage {
            StorageKind::Memory => (Arc::new(MemoryStore::new(chain.clone())), None, Vec::new()),
            StorageKind::Durable(dir) => {
                open_durable(Arc::new(govchain_storage::OsVfs), dir, &chain)?
            }
            StorageKind::DurableOn(vfs, dir) => open_durable(vfs.clone(), dir, &chain)?,
        };
        // Genesis state, once.
        if store
            .latest_version()
            .map_err(storage_err(&chain))?
            .is_none()
        {
            let updates: Vec<(KeyHash, Option<Vec<u8>>)> = spec
                .genesis_state
                .iter()
                .map(|(k, v)| {
                    (
                        KeyHash::of(spec.suite().hash_function(), k),
                        Some(v.clone()),
                    )
                })
                .collect();
            let (_, batch) = SparseMerkleTree::new(&store.as_ref(), spec.suite().hash_function())
                .apply_batch(None, 0, &updates)
                .map_err(|e| NodeError::Proof {
                    reason: e.to_string(),
                })?;
            store.commit_state(batch).map_err(storage_err(&chain))?;
        }
        let latest = store.latest_height().map_err(storage_err(&chain))?;
        // The main chain's own validator changes are in its own governance
        // state: a restarted node must know them before its engine does.
        let mut schedule = schedule;
        if spec.role == ChainRole::Main {
            let s: &dyn ChainStore = store.as_ref();
            let view = TreeStateView::new(&s, spec.suite().hash_function(), Some(latest.get()));
            let own = crate::governance::validator_schedule(&view, &chain).map_err(|e| {
                NodeError::Proof {
                    reason: format!("governance state of {chain}: {e}"),
                }
            })?;
            schedule.extend(own);
        }
        // The history tree and the transaction index, from the store's
        // index: block hashes and transaction ids, without decoding blocks.
        let mut history = HistoryTree::new(spec.suite().hash_function());
        let mut tx_index = crate::tx_index::TxLocator::default();
        let missing = |h: u64| NodeError::NotFound {
            what: format!("block {h} of {chain}"),
        };
        for h in 1..=latest.get() {
            let height = Height::new(h);
            let hash = store
                .block_hash(height)
                .map_err(storage_err(&chain))?
                .ok_or_else(|| missing(h))?;
            history.append(&hash);
            let ids = store
                .block_tx_ids(height)
                .map_err(storage_err(&chain))?
                .ok_or_else(|| missing(h))?;
            for id in &ids {
                tx_index.insert(id, height);
            }
        }
        let (engine, effects) = match spec.engine {
            EngineKind::Bft => {
                let mut cfg = TendermintConfig::new(chain.clone(), spec.validators.clone());
                cfg.genesis_time = spec.genesis_time;
                cfg.timeouts = spec.timeouts;
                cfg.app_validation = true;
                cfg.rebroadcast_ms = 200;
                cfg.sync_batch = 64;
                cfg.max_future_heights = 8;
                cfg.max_buffered_per_peer = 1024;
                cfg.retain_decided = Some(spec.retain_decided_blocks.max(1));
                for (h, set) in schedule {
                    cfg.validator_schedule.insert(h, set);
                }
                let (e, fx) = Tendermint::restore_with_keys(cfg, keys, &records, now)
                    .map_err(consensus_err(&chain))?;
                (Engine::Bft(Box::new(e)), fx)
            }
            EngineKind::Raft => {
                let voters: Vec<PublicKey> = spec
                    .validators
                    .validators()
                    .iter()
                    .map(|v| v.public_key.clone())
                    .collect();
                let mut cfg = RaftConfig::new(chain.clone(), voters.clone());
                cfg.genesis_time = spec.genesis_time;
                cfg.tick_ms = spec.raft_tick_ms;
                cfg.rebroadcast_ms = 200;
                cfg.sync_batch = 64;
                // Raft members are fixed keys: sign with the node's key that
                // is a voter (a department's key of a second suite on a
                // chain of that suite), else the main key (a follower).
                let voter = keys
                    .iter()
                    .position(|k| voters.contains(&k.public_key()))
                    .unwrap_or(0);
                let signer = keys
                    .into_iter()
                    .nth(voter)
                    .ok_or_else(|| NodeError::Config {
                        field: "signer",
                        reason: "a node needs a key".to_string(),
                    })?;
                let (e, fx) =
                    Raft::restore(cfg, signer, &records, now).map_err(consensus_err(&chain))?;
                (Engine::Raft(Box::new(e)), fx)
            }
        };
        let spec_sync = spec.sync;
        let mempool =
            Mempool::new(chain.clone(), spec.mempool.clone()).map_err(|e| NodeError::Config {
                field: "mempool",
                reason: e.to_string(),
            })?;
        let mut runner = ChainRunner {
            spec,
            engine,
            store,
            wal,
            mempool,
            history,
            executed: HashMap::new(),
            tx_index,
            counters: ChainCounters::default(),
            deferred_request: None,
            last_commit: std::time::Instant::now(),
            sync: SyncState::new(spec_sync),
            pending: None,
            applying_synced: false,
        };
        // Blocks the engine decided (its log is durable) that the store
        // lacks: a crash between logging and storing.
        // (Subscribers are not connected yet, so the commit events of these
        // blocks are not announced; the node's start-up reads governance
        // state afterwards.)
        loop {
            let next = Height::new(runner.latest_height()?.get() + 1);
            let Some(d) = runner.engine.consensus().decided_block(next).cloned() else {
                break;
            };
            if let Some(event) = runner.apply_decided(&d)? {
                for id in event.tx_ids.iter() {
                    runner.tx_index.insert(id, event.height);
                }
            }
        }
        Ok((runner, effects))
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.spec.chain_id
    }

    /// The latest applied height: the store's, or the last block of a
    /// coalesced run not stored yet.
    pub fn latest_height(&self) -> Result<Height, NodeError> {
        if let Some(run) = &self.pending {
            if let Some(last) = run.blocks.last() {
                return Ok(last.block.header.height);
            }
            if let Some(w) = &run.writing {
                return Ok(w.last);
            }
        }
        self.store
            .latest_height()
            .map_err(storage_err(&self.spec.chain_id))
    }

    /// Whether blocks applied from now on are collected into coalesced
    /// runs instead of being stored one by one.
    pub fn is_coalescing(&self) -> bool {
        self.pending.is_some()
    }

    /// Blocks collected since the last run was handed to the writer.
    pub fn coalesced_pending(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.blocks.len())
    }

    /// Starts collecting applied blocks into coalesced runs (block sync,
    /// for blocks whose state this node would prune before it reaches the
    /// tip anyway). Until the runs are stored, the store lags behind the
    /// applied height; state reads go through the collected updates.
    pub fn begin_coalescing(&mut self) -> Result<(), NodeError> {
        if self.pending.is_none() {
            let latest = self
                .store
                .latest_height()
                .map_err(storage_err(&self.spec.chain_id))?;
            self.executed.clear();
            self.pending = Some(PendingRun {
                blocks: Vec::new(),
                updates: CoalescedUpdates::new(latest.get().saturating_add(1)),
                writing: None,
            });
        }
        Ok(())
    }

    /// Hands the blocks collected since the last hand-off to the writer
    /// thread, which stores them in one append (making the state versions
    /// below the run's last block unreadable); collecting goes on. Waits
    /// for the previous run's write first, so at most one is in flight.
    ///
    /// If the node stops before a run is stored, nothing of it is lost: the
    /// engine's log holds the decided blocks (the runs in flight together
    /// never hold more than the
    /// [`retain_decided_blocks`](ChainSpec::retain_decided_blocks) the
    /// engine keeps, and the log is not compacted meanwhile), and opening
    /// the chain applies the ones the store lacks.
    pub fn hand_off_coalesced(&mut self) -> Result<(), NodeError> {
        if self.coalesced_pending() == 0 {
            return Ok(());
        }
        self.join_coalesced_writer()?;
        let Some(run) = self.pending.as_mut() else {
            return Ok(());
        };
        let Some(batch) = run.updates.take_batch() else {
            return Ok(());
        };
        let blocks = std::mem::take(&mut run.blocks);
        let Some(last) = blocks.last().map(|d| d.block.header.height) else {
            return Ok(());
        };
        let n = blocks.len();
        let store = self.store.clone();
        let handle = std::thread::Builder::new()
            .name(format!("govchain-store-{}", self.spec.chain_id))
            .spawn(move || {
                let refs: Vec<_> = blocks.iter().map(|d| (&d.block, &d.certificate)).collect();
                store.append_coalesced(&refs, batch)
            })
            .map_err(|e| NodeError::Proof {
                reason: format!("starting the store writer: {e}"),
            })?;
        run.writing = Some(Writing {
            last,
            blocks: n,
            handle,
        });
        Ok(())
    }

    /// Waits for the run being written, if any.
    fn join_coalesced_writer(&mut self) -> Result<(), NodeError> {
        let Some(run) = self.pending.as_mut() else {
            return Ok(());
        };
        let Some(w) = run.writing.take() else {
            return Ok(());
        };
        match w.handle.join() {
            Ok(Ok(())) => {
                run.updates.forget_below(w.last.get().saturating_add(1));
                self.counters.coalesced_blocks += w.blocks as u64;
                self.counters.coalesced_runs += 1;
                Ok(())
            }
            Ok(Err(e)) => Err(storage_err(&self.spec.chain_id)(e)),
            Err(_) => Err(NodeError::Proof {
                reason: format!("the store writer of {} panicked", self.spec.chain_id),
            }),
        }
    }

    /// Stores every coalesced run (the one collected and the one being
    /// written) and stops collecting: afterwards the store holds every
    /// applied block.
    pub fn store_coalesced(&mut self) -> Result<(), NodeError> {
        self.hand_off_coalesced()?;
        self.join_coalesced_writer()?;
        self.pending = None;
        Ok(())
    }

    pub fn engine(&mut self) -> &mut dyn Consensus {
        self.engine.consensus()
    }

    pub fn tendermint(&mut self) -> Option<&mut Tendermint> {
        match &mut self.engine {
            Engine::Bft(e) => Some(e.as_mut()),
            Engine::Raft(_) => None,
        }
    }

    /// The key of `keys` that signs for this node at `height` (a member's
    /// key first, else a rotated-out key in its overlap) with its window,
    /// in the set this node knows for `height`, when the window is bounded.
    pub fn own_key_window(
        &self,
        keys: &[PublicKey],
        height: Height,
    ) -> Option<(PublicKey, KeyWindow)> {
        let set = match &self.engine {
            Engine::Bft(e) => e.config().validators_at(height),
            Engine::Raft(_) => Some(&self.spec.validators),
        }?;
        let signing = keys.iter().find(|k| set.find(k).is_some()).or_else(|| {
            keys.iter()
                .find(|k| set.rotated_keys().any(|r| &r.key == *k))
        })?;
        Some((signing.clone(), set.key_window(signing))).filter(|(_, w)| !w.is_unbounded())
    }

    /// The validator sets by first height this node knows for the chain.
    pub fn schedule_snapshot(&self) -> BTreeMap<Height, ValidatorSet> {
        match &self.engine {
            Engine::Bft(e) => e.config().validator_schedule.clone(),
            Engine::Raft(_) => BTreeMap::from([(Height::new(1), self.spec.validators.clone())]),
        }
    }

    /// Step 1: appends the records (not yet synced).
    pub fn log(&mut self, records: &[Vec<u8>]) -> Result<(), NodeError> {
        if let Some(wal) = &mut self.wal {
            wal.append(records)
                .map_err(storage_err(&self.spec.chain_id))?;
        }
        Ok(())
    }

    /// Replaces the consensus log by the engine's compacted log once it
    /// has grown beyond [`ChainSpec::log_compaction_bytes`]. Call only when
    /// every record the engine emitted is logged and synced (no effects
    /// carried over). Returns whether it compacted.
    pub fn maybe_compact_log(&mut self) -> Result<bool, NodeError> {
        let Some(wal) = &mut self.wal else {
            return Ok(false);
        };
        // While coalesced runs are not stored, the log must keep their
        // decided blocks (a compacted log keeps only the last one).
        if wal.len_bytes() <= self.spec.log_compaction_bytes
            || wal.is_dirty()
            || self.pending.is_some()
        {
            return Ok(false);
        }
        let Some(records) = self.engine.consensus().compacted_log() else {
            return Ok(false);
        };
        wal.replace(records)
            .map_err(storage_err(&self.spec.chain_id))?;
        self.counters.log_compactions += 1;
        Ok(true)
    }

    /// Prunes state versions older than the retention window
    /// ([`ChainSpec::retain_state_versions`]), every [`STATE_PRUNE_EVERY`]
    /// heights (or every `retain`, if fewer). Version `height - retain + 1` and later stay readable.
    fn maybe_prune_state(&mut self, height: Height) -> Result<(), NodeError> {
        let Some(retain) = self.spec.retain_state_versions else {
            return Ok(());
        };
        let h = height.get();
        let every = STATE_PRUNE_EVERY.min(retain).max(1);
        if !h.is_multiple_of(every) || h < retain {
            return Ok(());
        }
        let below = h - retain.max(1) + 1;
        self.store
            .prune_state_below(below)
            .map_err(storage_err(&self.spec.chain_id))?;
        self.counters.state_prunes += 1;
        Ok(())
    }

    /// A committed block and its certificate from the store.
    pub fn stored_block(
        &self,
        height: Height,
    ) -> Result<Option<govchain_storage::StoredBlock>, NodeError> {
        self.store
            .block(height)
            .map_err(storage_err(&self.spec.chain_id))
    }

    /// The largest consensus message (and synced block) accepted.
    pub fn max_message_len(&self) -> usize {
        match &self.engine {
            Engine::Bft(e) => e.config().max_message_len,
            Engine::Raft(_) => 8 * 1024 * 1024,
        }
    }

    /// Step 1, end: makes every logged record durable.
    pub fn sync_log(&mut self) -> Result<(), NodeError> {
        if let Some(wal) = &mut self.wal {
            wal.sync().map_err(storage_err(&self.spec.chain_id))?;
        }
        Ok(())
    }

    /// The committed state at `version`.
    fn with_state<R>(&self, version: u64, f: impl FnOnce(&dyn StateView) -> R) -> R {
        let store: &dyn ChainStore = self.store.as_ref();
        let hf = self.spec.suite().hash_function();
        match &self.pending {
            // The view reads the store for what it does not hold (every
            // version before the runs, and the pages they did not write).
            Some(run) => {
                let collected = run.updates.view(&store);
                f(&TreeStateView::new(&collected, hf, Some(version)))
            }
            _ => f(&TreeStateView::new(&store, hf, Some(version))),
        }
    }

    /// Runs `f` on the latest committed state.
    pub fn with_latest_state<R>(
        &self,
        f: impl FnOnce(&dyn StateView) -> R,
    ) -> Result<R, NodeError> {
        let h = self.latest_height()?;
        Ok(self.with_state(h.get(), f))
    }

    /// Executes `txs` as block `height` on the committed state `height - 1`.
    fn execute(&self, ctx: &BlockContext, txs: &[Transaction]) -> Result<Executed, NodeError> {
        let store: &dyn ChainStore = self.store.as_ref();
        match &self.pending {
            Some(run) => self.execute_on(&run.updates.view(&store), ctx, txs),
            None => self.execute_on(&store, ctx, txs),
        }
    }

    /// [`execute`](Self::execute) on the state in `store`.
    fn execute_on<S: NodeStore>(
        &self,
        store: &S,
        ctx: &BlockContext,
        txs: &[Transaction],
    ) -> Result<Executed, NodeError> {
        let chain = &self.spec.chain_id;
        let base = ctx.height.get() - 1;
        let hf = self.spec.suite().hash_function();
        let view = TreeStateView::new(store, hf, Some(base));
        let mut overlay = StateOverlay::new(&view);
        let receipts = self
            .spec
            .app
            .execute_block(ctx, &mut overlay, txs)
            .map_err(|source| NodeError::Execution {
                chain: chain.clone(),
                height: ctx.height,
                source: Box::new(source),
            })?;
        let updates: Vec<(KeyHash, Option<Vec<u8>>)> = overlay
            .into_writes()
            .into_iter()
            .map(|(k, v)| (KeyHash::of(hf, &k), v))
            .collect();
        let (state_root, batch) = SparseMerkleTree::new(store, hf)
            .apply_batch(Some(base), ctx.height.get(), &updates)
            .map_err(|e| NodeError::Proof {
                reason: e.to_string(),
            })?;
        Ok(Executed {
            state_root,
            batch,
            receipts,
        })
    }

    fn context(block: &Block) -> BlockContext {
        BlockContext {
            chain_id: block.header.chain_id.clone(),
            height: block.header.height,
            time: block.header.time,
            proposer: block.header.proposer.clone(),
            suite: block.header.suite,
        }
    }

    /// Step 3: stores a decided block, executing it unless it was executed
    /// when validated or built. Idempotent by height.
    pub fn apply_decided(&mut self, d: &DecidedBlock) -> Result<Option<CommitEvent>, NodeError> {
        let chain = self.spec.chain_id.clone();
        let header = &d.block.header;
        let latest = self.latest_height()?;
        if header.height <= latest {
            return Ok(None);
        }
        let hash = d.block.hash();
        if self.pending.is_some() && !self.applying_synced {
            // Not a synced block (live consensus): the runs are stored
            // first, and this block the ordinary way.
            self.store_coalesced()?;
        }
        let executed = match self.executed.remove(&hash) {
            Some(e) if self.pending.is_none() => e,
            _ => self.execute(&Self::context(&d.block), &d.block.transactions)?,
        };
        if executed.state_root != header.state_root {
            return Err(NodeError::StateRootMismatch {
                chain,
                height: header.height,
                header: header.state_root,
                computed: executed.state_root,
            });
        }
        let failed = executed.receipts.iter().filter(|r| !r.is_ok()).count() as u32;
        match &mut self.pending {
            Some(run) => {
                run.updates
                    .push(executed.batch)
                    .map_err(|e| NodeError::Proof {
                        reason: format!("coalescing block {} of {chain}: {e}", header.height),
                    })?;
                run.blocks.push(d.clone());
            }
            None => self
                .store
                .append(&d.block, &d.certificate, executed.batch)
                .map_err(storage_err(&chain))?,
        }
        self.executed.clear();
        self.last_commit = std::time::Instant::now();
        self.history.append(&hash);
        let tx_ids: Vec<Hash> = d.block.transactions.iter().map(Transaction::id).collect();
        self.counters.committed_txs += tx_ids.len() as u64;
        let store: &dyn ChainStore = self.store.as_ref();
        let hf = self.spec.suite().hash_function();
        let version = Some(header.height.get());
        // The mempool forgets what committed and what went stale.
        match &self.pending {
            Some(run) => {
                let collected = run.updates.view(&store);
                let view = TreeStateView::new(&collected, hf, version);
                let _ = self.mempool.remove_committed(&d.block.transactions, &view);
            }
            None => {
                let view = TreeStateView::new(&store, hf, version);
                let _ = self.mempool.remove_committed(&d.block.transactions, &view);
                self.maybe_prune_state(header.height)?;
            }
        }
        Ok(Some(CommitEvent {
            chain,
            height: header.height,
            hash,
            time: header.time,
            tx_ids: Arc::new(tx_ids),
            failed_txs: failed,
        }))
    }

    /// Step 4: the application's half of `valid(v)` for a proposed block
    /// at the next height: limits, signatures (those not already verified
    /// by the mempool), nonces and `check_tx` in block order, then
    /// execution reproducing the header's state and history roots.
    ///
    /// An `Err` is a failure of this node (its store), not of the block;
    /// the caller votes against the block and reports it.
    pub fn judge(&mut self, block: &Block) -> Result<bool, NodeError> {
        let header = &block.header;
        let latest = self.latest_height()?;
        if header.height.get() != latest.get() + 1 || header.history_root != self.history.root() {
            return Ok(false);
        }
        if block.transactions.len() > self.spec.limits.max_txs {
            return Ok(false);
        }
        let bytes: usize = block.transactions.iter().map(|t| t.encoded_len()).sum();
        if bytes > self.spec.limits.max_bytes {
            return Ok(false);
        }
        // Signatures: the mempool verified the ones it holds.
        let unverified: Vec<&Transaction> = block
            .transactions
            .iter()
            .filter(|t| !self.mempool.contains(&t.id()))
            .collect();
        let messages: Vec<Hash> = unverified.iter().map(|t| t.signing_message()).collect();
        let items: Vec<BatchItem<'_>> = unverified
            .iter()
            .zip(&messages)
            .map(|(t, m)| BatchItem::new(t.sender(), m.as_bytes(), t.signature()))
            .collect();
        if verify_batch(&items).is_err() {
            return Ok(false);
        }
        let app = self.spec.app.clone();
        let ok = self.with_state(latest.get(), |state| {
            let mut next: HashMap<&PublicKey, u64> = HashMap::new();
            for tx in &block.transactions {
                if app.check_tx(state, tx).is_err() {
                    return false;
                }
                let expected = match next.get(tx.sender()) {
                    Some(n) => *n,
                    None => match govchain_core::app::NonceTracker::next(state, tx.sender()) {
                        Ok(n) => n,
                        Err(_) => return false,
                    },
                };
                if tx.nonce() != expected {
                    return false;
                }
                next.insert(tx.sender(), expected + 1);
            }
            true
        });
        if !ok {
            return Ok(false);
        }
        let executed = self.execute(&Self::context(block), &block.transactions)?;
        if executed.state_root != header.state_root {
            return Ok(false);
        }
        self.executed.insert(block.hash(), executed);
        Ok(true)
    }

    /// Step 4: builds this node's proposal for `request` from the mempool.
    pub fn build(
        &mut self,
        request: &govchain_consensus::ProposeRequest,
        now: Timestamp,
    ) -> Result<Block, NodeError> {
        let latest = self.latest_height()?;
        let limits = self.spec.limits;
        let txs = self.with_state(latest.get(), |state| {
            self.mempool.reap(state, limits.max_txs, limits.max_bytes)
        });
        let txs = txs.unwrap_or_default();
        let mut block = request.block(now, txs);
        block.header.history_root = self.history.root();
        let executed = self.execute(&Self::context(&block), &block.transactions)?;
        block.header.state_root = executed.state_root;
        self.executed.insert(block.hash(), executed);
        Ok(block)
    }

    /// Admits transactions into the mempool; returns one result per input.
    pub fn admit(
        &mut self,
        txs: Vec<Transaction>,
    ) -> Result<Vec<Result<Hash, crate::mempool::MempoolError>>, NodeError> {
        let latest = self.latest_height()?;
        let store: &dyn ChainStore = self.store.as_ref();
        let suite = self.spec.suite();
        let view = TreeStateView::new(&store, suite.hash_function(), Some(latest.get()));
        // Senders of another suite are refused before the pool sees them.
        let mut refused = Vec::new();
        let mut admitted = Vec::with_capacity(txs.len());
        for (i, tx) in txs.into_iter().enumerate() {
            match suite.check_key(tx.sender()) {
                Ok(()) => admitted.push(tx),
                Err(e) => refused.push((i, e)),
            }
        }
        let mut results = self
            .mempool
            .insert_batch(admitted, self.spec.app.as_ref(), &view);
        for (i, e) in refused {
            results.insert(i, Err(e.into()));
        }
        Ok(results)
    }

    /// Schedules a validator-set change on a Tendermint chain, if it is new.
    pub fn schedule(&mut self, from: Height, set: ValidatorSet) -> Result<bool, NodeError> {
        let chain = self.spec.chain_id.clone();
        let Some(engine) = self.tendermint() else {
            return Ok(false);
        };
        if engine.config().validator_schedule.get(&from) == Some(&set) {
            return Ok(false);
        }
        engine
            .schedule_validator_set(from, set)
            .map_err(consensus_err(&chain))?;
        Ok(true)
    }
}
