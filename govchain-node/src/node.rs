//! The node: one thread that drives every chain the node runs, and the
//! [`NodeHandle`] through which the host submits transactions, queries
//! state with proofs and follows commits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use govchain_consensus::{Effects, Recipient};
use govchain_core::app::TreeStateView;
use govchain_core::block::BlockHeader;
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, PublicKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::light::LightBlock;
use govchain_core::merkle::InclusionProof;
use govchain_core::smt::{KeyHash, SparseMerkleProof, SparseMerkleTree};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{KeyWindow, ValidatorSet};
use govchain_storage::StoredBlock;
use parking_lot::{Mutex, RwLock};

use crate::chain::{
    ChainCounters, ChainRole, ChainRunner, ChainSpec, ChainStore, CommitEvent, StorageKind,
};
use crate::crosschain::{CrossChainProof, CrossChainProofBuilder};
use crate::error::NodeError;
use crate::mempool::MempoolError;
use crate::transport::{inbox, Envelope, Inbound, Inbox, Transport};

/// How a node is set up.
pub struct NodeConfig {
    /// A name for logs and status.
    pub name: String,
    /// The node's (department's) key: it signs votes, proposals and the
    /// node's own transactions.
    pub signer: Arc<dyn Signer>,
    /// Where the chains' data lives.
    pub storage: StorageKind,
    /// The chains this node runs; at most one with [`ChainRole::Main`].
    pub chains: Vec<ChainSpec>,
    /// How often engines are ticked, in milliseconds.
    pub tick_ms: u64,
    /// Capacity of the inbox (network envelopes and submissions).
    pub inbox_capacity: usize,
    /// A chain's status warns that this node's key is about to leave its
    /// window (expiry or a reported compromise) once that is this many
    /// blocks away or fewer ([`ChainStatus::key_blocks_left`]). Default
    /// 1,000.
    pub key_warning_blocks: u64,
    /// Further keys the node holds: a validator's new key, loaded ahead of
    /// its rotation ([`Action::RotateValidatorKey`](crate::governance::Action::RotateValidatorKey)).
    /// BFT engines sign with whichever key is the member's at each height,
    /// so the node switches at exactly the rotation height; without the
    /// new key it keeps signing with the old one until the overlap ends.
    /// Transactions and the transport keep using `signer`. Default empty.
    pub rotation_keys: Vec<Arc<dyn Signer>>,
    /// The department's keys of crypto suites other than `signer`'s
    /// (registered in genesis or by
    /// [`Action::RegisterDepartmentKey`](crate::governance::Action::RegisterDepartmentKey)):
    /// each chain's engine signs with the key that is a member of that
    /// chain's set, so an SM2 key validates an SM2/SM3 side chain of an
    /// Ed25519 network. The transport stays addressed by `signer`'s key:
    /// the node maps a chain's validator keys to their departments' node
    /// keys through the governance registry. Default empty.
    pub suite_keys: Vec<Arc<dyn Signer>>,
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("name", &self.name)
            .field("key", &self.signer.public_key())
            .field("storage", &self.storage)
            .field("chains", &self.chains)
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// Every key of the node: `signer`, then `rotation_keys`, then
    /// `suite_keys`.
    fn keys(&self) -> Vec<Arc<dyn Signer>> {
        std::iter::once(self.signer.clone())
            .chain(self.rotation_keys.iter().cloned())
            .chain(self.suite_keys.iter().cloned())
            .collect()
    }

    /// A configuration with default tick and inbox sizes.
    pub fn new(name: impl Into<String>, signer: Arc<dyn Signer>, storage: StorageKind) -> Self {
        NodeConfig {
            name: name.into(),
            signer,
            storage,
            chains: Vec::new(),
            tick_ms: 5,
            inbox_capacity: 65_536,
            key_warning_blocks: 1_000,
            rotation_keys: Vec::new(),
            suite_keys: Vec::new(),
        }
    }

    /// Checks the configuration; errors name the field.
    pub fn validate(&self) -> Result<(), NodeError> {
        if self.chains.is_empty() {
            return Err(NodeError::Config {
                field: "chains",
                reason: "a node must run at least one chain".into(),
            });
        }
        let mains = self
            .chains
            .iter()
            .filter(|c| c.role == ChainRole::Main)
            .count();
        if mains > 1 {
            return Err(NodeError::Config {
                field: "chains",
                reason: "at most one main chain".into(),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.chains {
            if !seen.insert(c.chain_id.clone()) {
                return Err(NodeError::Config {
                    field: "chains",
                    reason: format!("chain {} listed twice", c.chain_id),
                });
            }
            if let ChainRole::Side { anchor_every: 0 } = c.role {
                return Err(NodeError::Config {
                    field: "chains.role.anchor_every",
                    reason: format!("chain {}: must be at least 1", c.chain_id),
                });
            }
        }
        if self.tick_ms == 0 {
            return Err(NodeError::Config {
                field: "tick_ms",
                reason: "must be at least 1".into(),
            });
        }
        if self.inbox_capacity == 0 {
            return Err(NodeError::Config {
                field: "inbox_capacity",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

type SubmitReply = SyncSender<Result<Vec<Result<Hash, MempoolError>>, NodeError>>;

/// What the node thread reads from its inbox.
pub(crate) enum NodeInput {
    Net(Inbound),
    Submit {
        chain: ChainId,
        txs: Vec<Transaction>,
        reply: Option<SubmitReply>,
    },
    SubmitOwn {
        chain: ChainId,
        payload: Vec<u8>,
        reply: SyncSender<Result<Hash, NodeError>>,
    },
    Stop,
}

/// One chain's status on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The chain.
    pub chain: ChainId,
    /// Latest committed height.
    pub height: Height,
    /// Transactions waiting in the mempool.
    pub mempool_txs: usize,
    /// Counters.
    pub counters: ChainCounters,
    /// Progress of a block sync in course.
    pub sync: Option<crate::sync::SyncProgress>,
    /// Block-sync counters.
    pub sync_counters: crate::sync::SyncCounters,
    /// This node's key window on the chain, when its key is a validator
    /// whose window is bounded (an expiry, or a reported compromise), in
    /// the set for the next height.
    pub key_window: Option<KeyWindow>,
    /// Blocks from the next height until that window closes (0: closed;
    /// the key's signatures no longer count on this chain).
    pub key_blocks_left: Option<u64>,
}

/// A node's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// Per chain, in configuration order.
    pub chains: Vec<ChainStatus>,
    /// Why the node stopped, if it stopped on an error.
    pub fatal: Option<String>,
    /// Commit events dropped because a subscriber was not reading.
    pub dropped_events: u64,
    /// The latest warnings (at most 64), oldest first.
    pub warnings: Vec<String>,
}

pub(crate) struct Shared {
    stores: BTreeMap<ChainId, Arc<dyn ChainStore>>,
    /// Each chain's crypto suite, fixed at genesis.
    suites: BTreeMap<ChainId, CryptoSuite>,
    /// Each chain's validator sets by first height, as this node knows them.
    pub(crate) schedules: RwLock<BTreeMap<ChainId, BTreeMap<Height, ValidatorSet>>>,
    /// The main chain, if this node runs one.
    main: Option<ChainId>,
    tx_index: RwLock<BTreeMap<ChainId, crate::tx_index::TxLocator>>,
    status: Mutex<NodeStatus>,
    subscribers: Mutex<Vec<SyncSender<CommitEvent>>>,
}

/// A value read from committed state, with its proof against a committed
/// header.
#[derive(Debug, Clone)]
pub struct StateProof {
    /// The header whose state root the proof is against.
    pub header: BlockHeader,
    /// That header's commit certificate.
    pub certificate: CommitCertificate,
    /// The application key.
    pub key: Vec<u8>,
    /// The value (`None`: the key is absent, and the proof shows it).
    pub value: Option<Vec<u8>>,
    /// The sparse-Merkle proof.
    pub proof: SparseMerkleProof,
}

/// A committed transaction with its inclusion proof.
#[derive(Debug, Clone)]
pub struct TxProof {
    /// The header whose transaction root the proof is against.
    pub header: BlockHeader,
    /// That header's commit certificate.
    pub certificate: CommitCertificate,
    /// The transaction.
    pub tx: Transaction,
    /// Its index in the block.
    pub index: u64,
    /// The RFC 9162 inclusion proof.
    pub proof: InclusionProof,
}

/// The reference node. Start one with [`Node::start`].
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Opens every chain's stores and log (recovering after a crash),
    /// restores the engines and starts the node's thread. Register
    /// [`NodeHandle::inbox`] with the transport so that peers reach it.
    pub fn start(
        config: NodeConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<NodeHandle, NodeError> {
        config.validate()?;
        let key = config.signer.public_key();
        let now = wall_clock();
        // The main chain first: its governance state schedules the others.
        let mut chains: Vec<ChainRunner> = Vec::new();
        let mut specs = config.chains.clone();
        specs.sort_by_key(|c| c.role != ChainRole::Main);
        let mut startup = Vec::new();
        for spec in specs {
            let schedule = chains
                .first()
                .filter(|c| c.spec.role == ChainRole::Main)
                .map(|main| crate::hooks::schedule_for(main, &spec.chain_id))
                .transpose()?
                .unwrap_or_default();
            let (runner, fx) =
                ChainRunner::open(spec, config.keys(), &config.storage, schedule, now)?;
            startup.push((chains.len(), fx));
            chains.push(runner);
        }
        let (inbox, rx) = inbox(config.inbox_capacity);
        let schedules = chains
            .iter()
            .map(|c| (c.chain_id().clone(), c.schedule_snapshot()))
            .collect();
        let main = chains
            .iter()
            .find(|c| c.spec.role == ChainRole::Main)
            .map(|c| c.chain_id().clone());
        let shared = Arc::new(Shared {
            schedules: RwLock::new(schedules),
            main,
            stores: chains
                .iter()
                .map(|c| (c.chain_id().clone(), c.store.clone()))
                .collect(),
            suites: chains
                .iter()
                .map(|c| (c.chain_id().clone(), c.spec.suite()))
                .collect(),
            tx_index: RwLock::new(
                chains
                    .iter_mut()
                    .map(|c| (c.chain_id().clone(), std::mem::take(&mut c.tx_index)))
                    .collect(),
            ),
            status: Mutex::new(NodeStatus::default()),
            subscribers: Mutex::new(Vec::new()),
        });
        let mut worker = Worker {
            me: key.clone(),
            keys: config.keys().iter().map(|k| k.public_key()).collect(),
            ring: config.keys(),
            peer_keys: crate::hooks::PeerKeys::default(),
            signer: config.signer.clone(),
            chains,
            transport,
            shared: shared.clone(),
            tick_ms: config.tick_ms,
            key_warning_blocks: config.key_warning_blocks,
            key_warned: BTreeSet::new(),
            own_nonces: BTreeMap::new(),
            carry: Vec::new(),
        };
        // Validator changes governance recorded that the engines may have
        // missed (blocks re-applied from an engine's log at open).
        if let Some(main) = worker
            .chains
            .iter()
            .position(|c| c.spec.role == ChainRole::Main)
        {
            crate::hooks::follow_governance(&mut worker, main)?;
        }
        worker.refresh_status()?;
        let thread = std::thread::Builder::new()
            .name(format!("govchain-node-{}", config.name))
            .spawn(move || {
                let shared = worker.shared.clone();
                // A panic is a bug, never expected; it must still show in
                // the status (and stop the node) rather than leave a node
                // that looks alive but no longer runs.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker.run(rx, startup)
                }))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(NodeError::Panicked { reason: what })
                });
                if let Err(e) = &result {
                    shared.status.lock().fatal = Some(e.to_string());
                }
                result
            })
            .map_err(|e| NodeError::Config {
                field: "thread",
                reason: e.to_string(),
            })?;
        Ok(NodeHandle {
            key,
            name: config.name,
            inbox,
            shared,
            thread: Some(thread),
        })
    }
}

/// The host's handle on a running node. Dropping it stops the node.
pub struct NodeHandle {
    key: PublicKey,
    name: String,
    inbox: Inbox,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), NodeError>>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// The node's key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where transports deliver envelopes for this node.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Submits transactions to `chain`'s mempool and waits for the verdict
    /// on each (they are then gossiped to the chain's peers).
    pub fn submit(
        &self,
        chain: &ChainId,
        txs: Vec<Transaction>,
    ) -> Result<Vec<Result<Hash, MempoolError>>, NodeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inbox
            .tx
            .send(NodeInput::Submit {
                chain: chain.clone(),
                txs,
                reply: Some(tx),
            })
            .map_err(|_| NodeError::Stopped)?;
        rx.recv().map_err(|_| NodeError::Stopped)?
    }

    /// Signs `payload` with the node's own key (the department's key) as
    /// its next transaction on `chain`, and submits it; returns its id. This
    /// is how a department proposes and votes in governance. On a chain of
    /// another suite than the node key's, the node signs with its key of
    /// that suite ([`NodeConfig::suite_keys`]), if it holds one.
    pub fn submit_own(&self, chain: &ChainId, payload: Vec<u8>) -> Result<Hash, NodeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.inbox
            .tx
            .send(NodeInput::SubmitOwn {
                chain: chain.clone(),
                payload,
                reply: tx,
            })
            .map_err(|_| NodeError::Stopped)?;
        rx.recv().map_err(|_| NodeError::Stopped)?
    }

    /// Runs `read` on `chain`'s latest committed state (for an
    /// application's typed read helpers, such as those of
    /// [`governance`](crate::governance)).
    pub fn read_state<R>(
        &self,
        chain: &ChainId,
        read: impl FnOnce(&dyn govchain_core::app::StateView) -> R,
    ) -> Result<R, NodeError> {
        let store = self.store(chain)?;
        let height = self.height(chain)?;
        let s: &dyn ChainStore = store.as_ref();
        let view = TreeStateView::new(&s, self.suite(chain)?.hash_function(), Some(height.get()));
        Ok(read(&view))
    }

    /// Follows commits: every block this node commits from now on, on
    /// every chain. The queue is bounded; a subscriber that falls more than
    /// `capacity` events behind loses events (counted in
    /// [`NodeStatus::dropped_events`]).
    pub fn subscribe(&self, capacity: usize) -> Receiver<CommitEvent> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        self.shared.subscribers.lock().push(tx);
        rx
    }

    /// The node's status.
    pub fn status(&self) -> NodeStatus {
        self.shared.status.lock().clone()
    }

    fn store(&self, chain: &ChainId) -> Result<&Arc<dyn ChainStore>, NodeError> {
        self.shared
            .stores
            .get(chain)
            .ok_or_else(|| NodeError::UnknownChain {
                chain: chain.clone(),
            })
    }

    /// The crypto suite of `chain`, fixed at its genesis.
    pub fn suite(&self, chain: &ChainId) -> Result<CryptoSuite, NodeError> {
        self.shared
            .suites
            .get(chain)
            .copied()
            .ok_or_else(|| NodeError::UnknownChain {
                chain: chain.clone(),
            })
    }

    /// The latest committed height of `chain`.
    pub fn height(&self, chain: &ChainId) -> Result<Height, NodeError> {
        let store = self.store(chain)?;
        store.latest_height().map_err(|source| NodeError::Storage {
            chain: chain.clone(),
            source: Box::new(source),
        })
    }

    /// The committed block at `height` with its certificate.
    pub fn block(&self, chain: &ChainId, height: Height) -> Result<StoredBlock, NodeError> {
        let store = self.store(chain)?;
        store
            .block(height)
            .map_err(|source| NodeError::Storage {
                chain: chain.clone(),
                source: Box::new(source),
            })?
            .ok_or_else(|| NodeError::NotFound {
                what: format!("block {height} of {chain}"),
            })
    }

    /// Reads application key `key` of `chain` at `height` (the latest
    /// committed height if `None`), with its proof against that header.
    pub fn state_proof(
        &self,
        chain: &ChainId,
        key: &[u8],
        height: Option<Height>,
    ) -> Result<StateProof, NodeError> {
        let store = self.store(chain)?;
        let height = match height {
            Some(h) => h,
            None => self.height(chain)?,
        };
        let stored = self.block(chain, height)?;
        let s: &dyn ChainStore = store.as_ref();
        let hf = self.suite(chain)?.hash_function();
        let (value, proof) = SparseMerkleTree::new(&s, hf)
            .get_with_proof(&KeyHash::of(hf, key), height.get())
            .map_err(|e| match e {
                govchain_core::smt::SmtError::VersionPruned {
                    oldest_readable, ..
                } => NodeError::StatePruned {
                    chain: chain.clone(),
                    height,
                    oldest: Height::new(oldest_readable),
                },
                e => NodeError::Proof {
                    reason: e.to_string(),
                },
            })?;
        Ok(StateProof {
            header: stored.block.header,
            certificate: stored.certificate,
            key: key.to_vec(),
            value,
            proof,
        })
    }

    /// Reads `key` of `chain`'s latest committed state, without a proof.
    pub fn state(&self, chain: &ChainId, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        let store = self.store(chain)?;
        let height = self.height(chain)?;
        let s: &dyn ChainStore = store.as_ref();
        let view = TreeStateView::new(&s, self.suite(chain)?.hash_function(), Some(height.get()));
        govchain_core::app::StateView::get(&view, key)
            .map_err(|e| NodeError::Proof { reason: e.reason })
    }

    /// Where the committed transaction `id` is: its height and index;
    /// `None` if it is not committed on `chain` (or its block was pruned).
    ///
    /// The node keeps a compact index of id prefixes in memory and reads the
    /// candidate blocks' id rows from the store, so a lookup costs a store
    /// read and a failed read is an error.
    pub fn find_transaction(
        &self,
        chain: &ChainId,
        id: &Hash,
    ) -> Result<Option<(Height, u32)>, NodeError> {
        let candidates = match self.shared.tx_index.read().get(chain) {
            Some(index) => index.candidates(id),
            None => return Ok(None),
        };
        let store = self.store(chain)?;
        for height in candidates {
            let ids = match store.block_tx_ids(height) {
                Ok(ids) => ids,
                Err(govchain_storage::StorageError::Pruned { .. }) => continue,
                Err(e) => return Err(crate::chain::storage_err(chain)(e)),
            };
            if let Some(i) = ids.and_then(|ids| ids.iter().position(|x| x == id)) {
                let index = u32::try_from(i).map_err(|_| NodeError::Proof {
                    reason: format!("block {height} of {chain} holds more than 2^32 transactions"),
                })?;
                return Ok(Some((height, index)));
            }
        }
        Ok(None)
    }

    /// The committed transaction `id` with its inclusion proof.
    pub fn tx_proof(&self, chain: &ChainId, id: &Hash) -> Result<TxProof, NodeError> {
        let (height, index) =
            self.find_transaction(chain, id)?
                .ok_or_else(|| NodeError::NotFound {
                    what: format!("transaction {id} on {chain}"),
                })?;
        let stored = self.block(chain, height)?;
        let leaves: Vec<Hash> = stored
            .block
            .transactions
            .iter()
            .map(Transaction::leaf_hash)
            .collect();
        let proof = govchain_core::merkle::TxTree::from_leaves(
            stored.block.header.suite.hash_function(),
            leaves,
        )
        .inclusion_proof(u64::from(index))
        .map_err(|e| NodeError::Proof {
            reason: e.to_string(),
        })?;
        let tx = stored
            .block
            .transactions
            .get(index as usize)
            .cloned()
            .ok_or_else(|| NodeError::NotFound {
                what: format!("transaction {index} of block {height}"),
            })?;
        Ok(TxProof {
            header: stored.block.header,
            certificate: stored.certificate,
            tx,
            index: u64::from(index),
            proof,
        })
    }

    /// The committed header at `height` with its certificate, as a light
    /// client wants it: with the signing validator set when it differs from
    /// the previous header's (and at height 1).
    pub fn light_block(&self, chain: &ChainId, height: Height) -> Result<LightBlock, NodeError> {
        let stored = self.block(chain, height)?;
        let header = stored.block.header;
        let changed = match height.prev().filter(|p| p.get() > 0) {
            Some(prev) => {
                self.block(chain, prev)?.block.header.validator_set_hash
                    != header.validator_set_hash
            }
            None => true,
        };
        let validator_set = if changed {
            let set = self
                .shared
                .schedules
                .read()
                .get(chain)
                .and_then(|s| s.range(..=height).next_back().map(|(_, set)| set.clone()))
                .filter(|set| set.hash() == header.validator_set_hash)
                .ok_or_else(|| NodeError::NotFound {
                    what: format!("validator set signing {chain} at {height}"),
                })?;
            Some(set)
        } else {
            None
        };
        Ok(LightBlock {
            header,
            certificate: stored.certificate,
            validator_set,
        })
    }

    /// A [`CrossChainProof`] that transaction `tx_id` is in side chain
    /// `side`, anchored on this node's main chain: the transaction's
    /// inclusion proof, the side block's place in the history of the
    /// latest anchored side header, the anchor's membership in main-chain
    /// state, and the latest main header with its certificate.
    ///
    /// Errors: [`NodeError::NotFound`] when the transaction is not
    /// committed or not yet covered by an anchor.
    pub fn cross_chain_tx_proof(
        &self,
        side: &ChainId,
        tx_id: &Hash,
    ) -> Result<CrossChainProof, NodeError> {
        let main = self
            .shared
            .main
            .clone()
            .ok_or_else(|| NodeError::NotFound {
                what: "a main chain on this node".into(),
            })?;
        let tx = self.tx_proof(side, tx_id)?;
        let side_height = tx.header.height;
        let main_height = self.height(&main)?;
        let store = self.store(&main)?;
        let s: &dyn ChainStore = store.as_ref();
        let main_hf = self.suite(&main)?.hash_function();
        let view = TreeStateView::new(&s, main_hf, Some(main_height.get()));
        let record = crate::governance::latest_anchor(&view, side)
            .map_err(|e| NodeError::Proof {
                reason: e.to_string(),
            })?
            .filter(|r| r.height >= side_height)
            .ok_or_else(|| NodeError::NotFound {
                what: format!("an anchor of {side} covering height {side_height}"),
            })?;
        let anchored = self.block(side, record.height)?.block.header;
        let mut builder = CrossChainProofBuilder::new();
        builder.transaction(tx.tx, tx.proof).side_header(tx.header);
        if record.height == side_height {
            builder.anchored_self();
        } else {
            let mut history =
                govchain_core::merkle::HistoryTree::new(self.suite(side)?.hash_function());
            for h in 1..record.height.get() {
                history.append(&self.block(side, Height::new(h))?.block.hash());
            }
            let proof = history
                .inclusion_proof(side_height.get() - 1, record.height.get() - 1)
                .map_err(|e| NodeError::Proof {
                    reason: e.to_string(),
                })?;
            builder.anchored_ancestor(anchored, proof);
        }
        let key = crate::governance::anchor_key(side, record.height);
        let (_, anchor_proof) = SparseMerkleTree::new(&s, main_hf)
            .get_with_proof(&KeyHash::of(main_hf, &key), main_height.get())
            .map_err(|e| NodeError::Proof {
                reason: e.to_string(),
            })?;
        let main_block = self.light_block(&main, main_height)?;
        builder.anchor(record, anchor_proof).main_block(main_block);
        builder.build().map_err(|e| NodeError::Proof {
            reason: e.to_string(),
        })
    }

    /// Stops the node and waits for its thread; returns the error it
    /// stopped on, if any.
    pub fn stop(mut self) -> Result<(), NodeError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), NodeError> {
        let _ = self.inbox.tx.send(NodeInput::Stop);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| NodeError::Stopped)?,
            None => Ok(()),
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Submissions gathered from one read of the inbox, by chain, in arrival
/// order.
#[derive(Default)]
struct Admissions {
    by_chain: Vec<(ChainId, Vec<Admission>)>,
}

struct Admission {
    txs: Vec<Transaction>,
    /// Where the verdicts go, if the submitter waits for them.
    reply: Option<SubmitReply>,
    /// Whether the accepted ones go on to the chain's peers.
    gossip: bool,
}

impl Admissions {
    fn push(
        &mut self,
        chain: ChainId,
        txs: Vec<Transaction>,
        reply: Option<SubmitReply>,
        gossip: bool,
    ) {
        let item = Admission { txs, reply, gossip };
        match self.by_chain.iter_mut().find(|(c, _)| *c == chain) {
            Some((_, group)) => group.push(item),
            None => self.by_chain.push((chain, vec![item])),
        }
    }
}

/// Most transactions in one gossip message.
const GOSSIP_MAX_TXS: usize = 4_096;
/// Most encoded transaction bytes in one gossip message (well inside the
/// TCP transport's default frame limit).
const GOSSIP_MAX_BYTES: usize = 2 << 20;

/// Cuts encoded transactions into gossip messages of at most
/// [`GOSSIP_MAX_TXS`] and [`GOSSIP_MAX_BYTES`] (a single larger transaction
/// goes alone), in order.
fn gossip_batches(txs: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut batches: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut bytes = 0usize;
    for tx in txs {
        let fits = batches.last().is_some_and(|b| {
            b.len() < GOSSIP_MAX_TXS && bytes.saturating_add(tx.len()) <= GOSSIP_MAX_BYTES
        });
        if !fits {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes = bytes.saturating_add(tx.len());
        if let Some(batch) = batches.last_mut() {
            batch.push(tx);
        }
    }
    batches
}

fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Timestamp::new(ms)
}

pub(crate) struct Worker {
    pub(crate) me: PublicKey,
    /// Every key of the node ([`NodeConfig::rotation_keys`],
    /// [`NodeConfig::suite_keys`]), `me` first.
    pub(crate) keys: Vec<PublicKey>,
    /// The signers of `keys`, in the same order.
    ring: Vec<Arc<dyn Signer>>,
    /// Chains' validator keys ↔ the departments' transport keys.
    pub(crate) peer_keys: crate::hooks::PeerKeys,
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) chains: Vec<ChainRunner>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) shared: Arc<Shared>,
    tick_ms: u64,
    key_warning_blocks: u64,
    /// (chain index, window) pairs already warned about in the status.
    key_warned: BTreeSet<(usize, Option<Height>, Option<Height>)>,
    /// The next nonce of this node's own transactions, per chain.
    pub(crate) own_nonces: BTreeMap<ChainId, u64>,
    /// Effects left over when a turn's round budget ran out.
    carry: Vec<(usize, Effects)>,
}

/// Most effect rounds per loop turn before the inbox is read again.
const MAX_ROUNDS_PER_TURN: usize = 64;

impl Worker {
    fn run(
        &mut self,
        rx: Receiver<NodeInput>,
        startup: Vec<(usize, Effects)>,
    ) -> Result<(), NodeError> {
        self.process(startup)?;
        let mut next_tick = Instant::now();
        loop {
            let mut pending = std::mem::take(&mut self.carry);
            let wait = if pending.is_empty() {
                next_tick.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let first = match rx.recv_timeout(wait) {
                Ok(input) => Some(input),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let mut inputs: Vec<NodeInput> = first.into_iter().collect();
            while inputs.len() < 4_096 {
                match rx.try_recv() {
                    Ok(input) => inputs.push(input),
                    Err(_) => break,
                }
            }
            // Transactions that arrive together are admitted together: one
            // batch verification per chain instead of one per submission.
            let mut admissions = Admissions::default();
            for input in inputs {
                match input {
                    NodeInput::Submit { chain, txs, reply } => {
                        admissions.push(chain, txs, reply, true);
                    }
                    NodeInput::Net(inbound) => {
                        self.on_inbound(inbound, &mut pending, &mut admissions)?;
                    }
                    NodeInput::Stop => {
                        self.admit(admissions);
                        // Records of effects not yet carried out are
                        // persisted before stopping; their messages need
                        // not be sent.
                        for (i, fx) in &pending {
                            self.chains[*i].log(&fx.persist)?;
                        }
                        for c in &mut self.chains {
                            c.sync_log()?;
                        }
                        return Ok(());
                    }
                    NodeInput::SubmitOwn {
                        chain,
                        payload,
                        reply,
                    } => {
                        // Sees the effect of the transactions before it.
                        self.admit(std::mem::take(&mut admissions));
                        let _ = reply.try_send(self.submit_own(&chain, payload));
                    }
                }
            }
            self.admit(admissions);
            if Instant::now() >= next_tick {
                let now = wall_clock();
                for (i, c) in self.chains.iter_mut().enumerate() {
                    pending.push((i, c.engine().tick(now)));
                }
                let mut ready = Vec::new();
                for i in 0..self.chains.len() {
                    self.try_propose(i, &mut ready)?;
                    self.sync_tick(i)?;
                }
                pending.extend(ready);
                next_tick = Instant::now() + Duration::from_millis(self.tick_ms);
            }
            self.process(pending)?;
            if self.carry.is_empty() {
                for c in &mut self.chains {
                    c.maybe_compact_log()?;
                }
            }
            self.refresh_status()?;
        }
    }

    fn chain_index(&self, chain: &ChainId) -> Option<usize> {
        self.chains.iter().position(|c| c.chain_id() == chain)
    }

    /// Handles one message from a peer. Transactions are gathered into
    /// `admissions` (admitted together at the end of the inbox read); any
    /// other message first admits what was gathered before it, so it sees
    /// their effect.
    fn on_inbound(
        &mut self,
        inbound: Inbound,
        pending: &mut Vec<(usize, Effects)>,
        admissions: &mut Admissions,
    ) -> Result<(), NodeError> {
        let Some(i) = self.chain_index(inbound.envelope.chain()) else {
            return Ok(()); // not a chain of ours: dropped
        };
        if !matches!(inbound.envelope, Envelope::Transactions { .. }) {
            self.admit(std::mem::take(admissions));
        }
        match inbound.envelope {
            Envelope::Consensus { bytes, .. } => {
                // The engine knows the peer by its key of the chain's suite.
                let suite = self.chains[i].spec.suite();
                let from = self.peer_keys.chain_key(&inbound.from, suite).clone();
                // A refused message (typed error) changes nothing but the
                // count.
                match self.chains[i].engine().step(&from, &bytes) {
                    Ok(fx) => pending.push((i, fx)),
                    Err(e) => {
                        self.chains[i].counters.refused_consensus_messages += 1;
                        tracing::debug!(
                            chain = %self.chains[i].spec.chain_id,
                            peer = %inbound.from,
                            error = %e,
                            "refused a consensus message"
                        );
                    }
                }
            }
            Envelope::Transactions { chain, txs } => {
                let mut decoded = Vec::with_capacity(txs.len());
                let mut malformed = 0u64;
                for bytes in &txs {
                    match Transaction::decode(bytes) {
                        Ok(tx) => decoded.push(tx),
                        Err(e) => {
                            malformed += 1;
                            tracing::debug!(
                                chain = %chain,
                                peer = %inbound.from,
                                error = %e,
                                "dropped a gossiped transaction that does not decode"
                            );
                        }
                    }
                }
                self.chains[i].counters.malformed_gossip_txs += malformed;
                admissions.push(chain, decoded, None, false);
            }
            Envelope::Status { height, .. } => self.on_sync_status(i, inbound.from, height),
            Envelope::SyncRequest {
                from, max_blocks, ..
            } => self.serve_sync(i, inbound.from, from, max_blocks)?,
            Envelope::SyncBlocks { tip, blocks, .. } => {
                // Effects gathered so far go first: sync applies blocks
                // through the same write order, one block at a time.
                self.process_all(std::mem::take(pending))?;
                self.on_sync_blocks(i, inbound.from, tip, blocks)?;
            }
        }
        Ok(())
    }

    /// Admits transactions; gossips the accepted ones if `gossip`.
    pub(crate) fn on_submit(
        &mut self,
        chain: &ChainId,
        txs: Vec<Transaction>,
        gossip: bool,
    ) -> Result<Vec<Result<Hash, MempoolError>>, NodeError> {
        let (reply, verdict) = std::sync::mpsc::sync_channel(1);
        let mut one = Admissions::default();
        one.push(chain.clone(), txs, Some(reply), gossip);
        self.admit(one);
        verdict.try_recv().map_err(|_| NodeError::Stopped)?
    }

    /// Admits every gathered submission, one mempool batch per chain in
    /// arrival order; replies to each submitter with its own verdicts, and
    /// gossips the accepted transactions of local submissions to the
    /// chain's peers in one message per peer.
    fn admit(&mut self, admissions: Admissions) {
        for (chain, group) in admissions.by_chain {
            let Some(i) = self.chain_index(&chain) else {
                for item in group {
                    if let Some(reply) = item.reply {
                        let _ = reply.try_send(Err(NodeError::UnknownChain {
                            chain: chain.clone(),
                        }));
                    }
                }
                continue; // transactions of a chain not ours: dropped
            };
            let mut txs = Vec::with_capacity(group.iter().map(|g| g.txs.len()).sum());
            let mut encoded: Vec<Option<Vec<u8>>> = Vec::with_capacity(txs.capacity());
            let mut shapes = Vec::with_capacity(group.len());
            for item in group {
                encoded.extend(
                    item.txs
                        .iter()
                        .map(|t| item.gossip.then(|| Encode::to_bytes(t))),
                );
                shapes.push((item.txs.len(), item.reply));
                txs.extend(item.txs);
            }
            let count = txs.len();
            let results = match self.chains[i].admit(txs) {
                Ok(results) => results,
                Err(e) => {
                    // The chain's store failed: every transaction gets the
                    // reason, and the chain's own work reports it too.
                    self.note(format!("admitting transactions on {chain}: {e}"));
                    let reason = e.to_string();
                    (0..count)
                        .map(|_| {
                            Err(MempoolError::State(govchain_core::app::StateError {
                                reason: reason.clone(),
                            }))
                        })
                        .collect()
                }
            };
            let accepted: Vec<Vec<u8>> = encoded
                .into_iter()
                .zip(&results)
                .filter_map(|(bytes, r)| bytes.filter(|_| r.is_ok()))
                .collect();
            let mut results = results.into_iter();
            for (len, reply) in shapes {
                let mine: Vec<_> = results.by_ref().take(len).collect();
                if let Some(reply) = reply {
                    let _ = reply.try_send(Ok(mine));
                }
            }
            let peers = self.chains[i].spec.peers.clone();
            for txs in gossip_batches(accepted) {
                for peer in peers.iter().filter(|p| **p != self.me) {
                    let _ = self.transport.send(
                        peer,
                        Envelope::Transactions {
                            chain: chain.clone(),
                            txs: txs.clone(),
                        },
                    );
                }
            }
        }
    }

    /// [`process`](Self::process) without a round budget: on return every
    /// effect, including any carried over from earlier turns, is carried out.
    pub(crate) fn process_all(&mut self, pending: Vec<(usize, Effects)>) -> Result<(), NodeError> {
        let mut pending = pending;
        pending.splice(0..0, std::mem::take(&mut self.carry));
        self.process(pending)?;
        while !self.carry.is_empty() {
            let carried = std::mem::take(&mut self.carry);
            self.process(carried)?;
        }
        Ok(())
    }

    /// Carries out effect batches in the host's order until none remain.
    fn process(&mut self, mut pending: Vec<(usize, Effects)>) -> Result<(), NodeError> {
        let mut rounds = 0usize;
        while !pending.is_empty() {
            // 1. Persist every batch's records, then one sync per chain.
            let mut dirty = vec![false; self.chains.len()];
            for (i, fx) in &pending {
                if !fx.persist.is_empty() {
                    self.chains[*i].log(&fx.persist)?;
                    dirty[*i] = true;
                }
            }
            for (i, d) in dirty.iter().enumerate() {
                if *d {
                    self.chains[i].sync_log()?;
                }
            }
            let mut next = Vec::new();
            for (i, fx) in pending {
                // 2. Send.
                let chain = self.chains[i].chain_id().clone();
                for out in fx.send {
                    let envelope = Envelope::Consensus {
                        chain: chain.clone(),
                        bytes: out.bytes,
                    };
                    match out.to {
                        Recipient::One(peer) => {
                            let to = self.peer_keys.transport_key(&peer);
                            let _ = self.transport.send(to, envelope);
                        }
                        Recipient::All => {
                            for peer in self.chains[i].spec.peers.iter().filter(|p| **p != self.me)
                            {
                                let _ = self.transport.send(peer, envelope.clone());
                            }
                        }
                    }
                }
                // 3. Apply.
                for d in &fx.decided {
                    if let Some(event) = self.chains[i].apply_decided(d)? {
                        self.after_commit(i, d, &event)?;
                        self.publish(event);
                    }
                }
                self.chains[i].counters.evidence += fx.evidence.len() as u64;
                // 4. Judge proposals and build our own.
                for block in &fx.validate {
                    let valid = match self.chains[i].judge(block) {
                        Ok(valid) => valid,
                        Err(e) => {
                            self.note(format!("judging a proposal on {chain}: {e}"));
                            false
                        }
                    };
                    if !valid {
                        self.chains[i].counters.rejected_proposals += 1;
                    }
                    next.push((
                        i,
                        self.chains[i].engine().block_validated(block.hash(), valid),
                    ));
                }
                if let Some(request) = fx.propose_request {
                    self.chains[i].deferred_request = Some(request);
                }
                self.try_propose(i, &mut next)?;
            }
            pending = next;
            rounds += 1;
            if rounds >= MAX_ROUNDS_PER_TURN && !pending.is_empty() {
                // Yield to the inbox (submissions, stop) and carry on next turn.
                self.carry.extend(pending);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Answers a deferred block request once it can and should be: the
    /// parent is applied here (a pipelining engine such as Raft may ask
    /// before), and there are transactions to propose or the chain's
    /// empty-block interval has passed since the last commit.
    fn try_propose(&mut self, i: usize, next: &mut Vec<(usize, Effects)>) -> Result<(), NodeError> {
        let c = &self.chains[i];
        let Some(r) = &c.deferred_request else {
            return Ok(());
        };
        if r.height.get() != c.latest_height()?.get() + 1 {
            return Ok(());
        }
        let idle = c.last_commit.elapsed() >= Duration::from_millis(c.spec.empty_block_interval_ms);
        if c.mempool.is_empty() && !idle {
            return Ok(());
        }
        if let Some(request) = self.chains[i].deferred_request.take() {
            let block = self.chains[i].build(&request, wall_clock())?;
            // A request made stale by a later event is refused; the engine
            // asks again.
            if let Ok(fx) = self.chains[i].engine().propose(block) {
                next.push((i, fx));
            }
        }
        Ok(())
    }

    fn after_commit(
        &mut self,
        i: usize,
        decided: &govchain_consensus::DecidedBlock,
        event: &CommitEvent,
    ) -> Result<(), NodeError> {
        {
            let mut index = self.shared.tx_index.write();
            let map = index.entry(event.chain.clone()).or_default();
            for id in event.tx_ids.iter() {
                map.insert(id, event.height);
            }
        }
        crate::hooks::after_commit(self, i, decided, event)
    }

    fn publish(&self, event: CommitEvent) {
        let mut dropped = 0u64;
        self.shared
            .subscribers
            .lock()
            .retain(|s| match s.try_send(event.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    dropped += 1;
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        if dropped > 0 {
            self.shared.status.lock().dropped_events += dropped;
        }
    }

    pub(crate) fn refresh_status(&mut self) -> Result<(), NodeError> {
        let mut chains = Vec::with_capacity(self.chains.len());
        let mut warnings = Vec::new();
        for (i, c) in self.chains.iter().enumerate() {
            let height = c.latest_height()?;
            let next = Height::new(height.get().saturating_add(1));
            let signing = c.own_key_window(&self.keys, next);
            let key_window = signing.as_ref().map(|(_, w)| *w);
            let key_blocks_left = key_window.and_then(|w| {
                [w.expires_at, w.revoked_from]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|end| end.get().saturating_sub(next.get()))
            });
            if let (Some((key, w)), Some(left)) = (&signing, key_blocks_left) {
                if left <= self.key_warning_blocks
                    && self.key_warned.insert((i, w.expires_at, w.revoked_from))
                {
                    warnings.push(key_warning(c.chain_id(), key, next, w, left));
                }
            }
            chains.push(ChainStatus {
                chain: c.chain_id().clone(),
                height,
                mempool_txs: c.mempool.len(),
                counters: c.counters,
                sync: c.sync.progress(height),
                sync_counters: c.sync.counters,
                key_window,
                key_blocks_left,
            });
        }
        // One update: a reader never sees a height without its warnings.
        let mut status = self.shared.status.lock();
        status.chains = chains;
        for w in warnings {
            push_warning(&mut status, w);
        }
        Ok(())
    }

    /// Records a warning in the node's status.
    ///
    /// Warnings are also how an operator learns ahead of time that this
    /// node's key is leaving its window on a chain (see
    /// [`NodeConfig::key_warning_blocks`]).
    pub(crate) fn note(&self, warning: String) {
        push_warning(&mut self.shared.status.lock(), warning);
    }

    /// Signs and submits one of this node's own transactions to `chain`.
    pub(crate) fn submit_own(
        &mut self,
        chain: &ChainId,
        payload: Vec<u8>,
    ) -> Result<Hash, NodeError> {
        let Some(i) = self.chain_index(chain) else {
            return Err(NodeError::UnknownChain {
                chain: chain.clone(),
            });
        };
        // The node key, or on a chain of another suite the ring's key of it.
        let suite = self.chains[i].spec.suite();
        let signer = self
            .ring
            .iter()
            .find(|k| suite.check_key(&k.public_key()).is_ok())
            .unwrap_or(&self.signer)
            .clone();
        let sender = signer.public_key();
        let committed = self.chains[i]
            .with_latest_state(|s| govchain_core::app::NonceTracker::next(s, &sender))?
            .map_err(|e| NodeError::Proof {
                reason: e.to_string(),
            })?;
        let nonce = self
            .own_nonces
            .get(chain)
            .copied()
            .unwrap_or(0)
            .max(committed);
        let tx = Transaction::new_signed(chain.clone(), signer.as_ref(), nonce, payload).map_err(
            |e| NodeError::Proof {
                reason: e.to_string(),
            },
        )?;
        let result = self.on_submit(chain, vec![tx], true)?.into_iter().next();
        match result {
            Some(Ok(id)) => {
                self.own_nonces
                    .insert(chain.clone(), nonce.saturating_add(1));
                Ok(id)
            }
            Some(Err(e)) => Err(NodeError::Rejected {
                source: Box::new(e),
            }),
            None => Err(NodeError::Stopped),
        }
    }
}

/// Adds a warning to `status`, keeping the latest 64.
fn push_warning(status: &mut NodeStatus, warning: String) {
    if status.warnings.len() >= 64 {
        status.warnings.remove(0);
    }
    status.warnings.push(warning);
}

/// The status warning for this node's key approaching the end of its
/// window on `chain`.
fn key_warning(chain: &ChainId, me: &PublicKey, next: Height, w: &KeyWindow, left: u64) -> String {
    let why = match (w.revoked_from, w.expires_at) {
        (Some(from), _) if w.expires_at.is_none_or(|at| from <= at) => {
            format!("was reported compromised from height {from}")
        }
        (_, Some(at)) => format!("expires at height {at}"),
        _ => "leaves its window".to_string(),
    };
    if left == 0 {
        format!("key {me} {why} on chain {chain}: its signatures no longer count there (height {next}); rotate it")
    } else {
        format!("key {me} {why} on chain {chain}: {left} blocks left; rotate it before then")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn gossip_batches_keep_order_and_limits(
            lens in proptest::collection::vec(0usize..(GOSSIP_MAX_BYTES / 3), 0..40),
            many in 0usize..(2 * GOSSIP_MAX_TXS + 3),
        ) {
            // Large transactions (the byte limit), then many small ones
            // (the count limit).
            let mut txs: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, n)| vec![i as u8; *n])
                .collect();
            txs.extend((0..many).map(|i| (i as u32).to_le_bytes().to_vec()));
            let batches = gossip_batches(txs.clone());
            for b in &batches {
                proptest::prop_assert!(!b.is_empty());
                proptest::prop_assert!(b.len() <= GOSSIP_MAX_TXS);
                let bytes: usize = b.iter().map(Vec::len).sum();
                proptest::prop_assert!(bytes <= GOSSIP_MAX_BYTES || b.len() == 1);
            }
            proptest::prop_assert_eq!(batches.concat(), txs);
        }
    }

    #[test]
    fn one_oversized_transaction_goes_alone() {
        let big = vec![1u8; GOSSIP_MAX_BYTES + 1];
        let batches = gossip_batches(vec![vec![0], big.clone(), vec![2]]);
        assert_eq!(batches, vec![vec![vec![0]], vec![big], vec![vec![2]]]);
    }
}
