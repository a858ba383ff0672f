//! An in-memory, single-process chain builder for tests, examples, benches and
//! simulators.
//!
//! [`ChainBuilder`] plays every validator of one chain at once: it checks and
//! executes transactions with an [`Application`], commits the writes to a
//! sparse Merkle tree in memory, keeps the history log, builds each header and
//! has a quorum sign it. What it produces ([`LightBlock`]s and proofs) is
//! exactly what a real network produces, so a [`LightClient`](crate::light::LightClient)
//! verifies it the same way. It is not a node: there is no consensus, no
//! mempool and no durability here.
//!
//! The chain's crypto suite is the suite of its genesis validators' keys
//! ([`ValidatorSet::suite`]): give it SM2 keys
//! ([`SecretKey::sm2_from_seed`](crate::crypto::SecretKey::sm2_from_seed))
//! and every header, root and proof it produces is of the sm2-sm3 suite.

use crate::app::{Application, BlockContext, Receipt, StateOverlay, TreeStateView, TxRejection};
use crate::block::{tx_root_of, Block, BlockHeader};
use crate::cert::{canonical_signatures, certify};
use crate::crypto::{verify_batch, BatchItem, CryptoSuite, SecretKey, Signer, SuiteMismatch};
use crate::hash::Hash;
use crate::light::LightBlock;
use crate::merkle::{HistoryTree, InclusionProof, MerkleError, TxTree};
use crate::smt::{KeyHash, MemoryNodeStore, SparseMerkleProof, SparseMerkleTree, TreeUpdateBatch};
use crate::tx::{Transaction, TxError};
use crate::types::{ChainId, Height, Round, Timestamp};
use crate::validator::{ValidatorSet, ValidatorSetError};

/// Why the builder could not produce a block or a proof.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A transaction is malformed, for another chain, or badly signed.
    #[error("transaction {index}: {source}")]
    Transaction {
        /// Position in the block.
        index: usize,
        /// What is wrong with it.
        source: TxError,
    },
    /// The application refused a transaction.
    #[error("transaction {index} rejected by the application: {source}")]
    Rejected {
        /// Position in the block.
        index: usize,
        /// The application's reason.
        source: TxRejection,
    },
    /// The application failed to execute the block.
    #[error("execution failed: {0}")]
    Execution(#[from] crate::app::ExecutionError),
    /// The state tree failed.
    #[error("state tree: {reason}")]
    State {
        /// The tree's error, rendered.
        reason: String,
    },
    /// A validator set is invalid.
    #[error(transparent)]
    ValidatorSet(#[from] ValidatorSetError),
    /// A validator key of another suite than the chain's.
    #[error(transparent)]
    Suite(#[from] SuiteMismatch),
    /// A Merkle proof could not be made.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// No block at that height.
    #[error("no block at height {height}")]
    NoSuchBlock {
        /// The height asked for.
        height: Height,
    },
    /// Time must not go backwards.
    #[error("block time {got:?} is before the previous block's {previous:?}")]
    TimeWentBackwards {
        /// The previous block's time.
        previous: Timestamp,
        /// The time given.
        got: Timestamp,
    },
}

fn state_err(e: impl std::fmt::Display) -> TestkitError {
    TestkitError::State {
        reason: e.to_string(),
    }
}

/// A committed block with its certificate and execution results.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// What a light client needs: header, certificate, and the signing set
    /// when it is new.
    pub light: LightBlock,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// The state-tree batch this block's execution wrote (version = height),
    /// for hosts that persist the chain, e.g. in a `govchain-storage` store.
    pub state_batch: TreeUpdateBatch,
}

/// Builds a certified chain in memory. See the module docs.
pub struct ChainBuilder<A: Application> {
    chain_id: ChainId,
    suite: CryptoSuite,
    app: A,
    signers: Vec<SecretKey>,
    set: ValidatorSet,
    pending: Option<(Vec<SecretKey>, ValidatorSet)>,
    store: MemoryNodeStore,
    history: HistoryTree,
    blocks: Vec<CommittedBlock>,
    genesis_set: ValidatorSet,
    genesis_time: Timestamp,
}

fn set_of(signers: &[SecretKey]) -> Result<ValidatorSet, ValidatorSetError> {
    ValidatorSet::with_equal_power(signers.iter().map(Signer::public_key))
}

impl<A: Application> ChainBuilder<A> {
    /// A chain at genesis, validated by `signers` with equal power; the
    /// chain's suite is theirs.
    pub fn new(
        chain_id: ChainId,
        app: A,
        signers: Vec<SecretKey>,
        genesis_time: Timestamp,
    ) -> Result<Self, TestkitError> {
        let set = set_of(&signers)?;
        let suite = set.suite();
        Ok(ChainBuilder {
            chain_id,
            suite,
            app,
            signers,
            set: set.clone(),
            pending: None,
            store: MemoryNodeStore::new(),
            history: HistoryTree::new(suite.hash_function()),
            blocks: Vec::new(),
            genesis_set: set.clone(),
            genesis_time,
        })
    }

    /// The chain id.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The chain's crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The set that signs the next block.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    /// The genesis validator set and time, for a light client's trust root.
    pub fn genesis(&self) -> (&ValidatorSet, Timestamp) {
        (&self.genesis_set, self.genesis_time)
    }

    /// Height of the last block (0 at genesis).
    pub fn height(&self) -> Height {
        Height::new(self.blocks.len() as u64)
    }

    /// The committed block at `height`.
    pub fn block(&self, height: Height) -> Result<&CommittedBlock, TestkitError> {
        (height.get() as usize)
            .checked_sub(1)
            .and_then(|i| self.blocks.get(i))
            .ok_or(TestkitError::NoSuchBlock { height })
    }

    /// Every committed block, in height order.
    pub fn blocks(&self) -> &[CommittedBlock] {
        &self.blocks
    }

    /// Replaces the validators from the block after next: the next block
    /// announces the new set in `next_validator_set_hash`, and the block
    /// after it is the first the new set signs.
    pub fn change_validators(&mut self, signers: Vec<SecretKey>) -> Result<(), TestkitError> {
        let set = set_of(&signers)?;
        self.check_set(&set)?;
        self.pending = Some((signers, set));
        Ok(())
    }

    /// Like [`change_validators`](Self::change_validators), with any set:
    /// other powers, or key windows (expiry, compromise). Blocks are
    /// signed by those of `signers` whose key may sign at the block's
    /// height under the set ([`ValidatorSet::may_sign`]).
    /// The next [`produce_block`](Self::produce_block) refuses a set of
    /// another suite than the chain's.
    pub fn change_validator_set(&mut self, signers: Vec<SecretKey>, set: ValidatorSet) {
        self.pending = Some((signers, set));
    }

    /// From the next block on, blocks are signed by those of `signers`
    /// whose key may sign under the current set, with no change of set: a
    /// validator's operator loading its new key during a rotation overlap.
    pub fn set_signers(&mut self, signers: Vec<SecretKey>) {
        self.signers = signers;
    }

    /// Refuses a set whose keys the chain's suite does not admit.
    fn check_set(&self, set: &ValidatorSet) -> Result<(), TestkitError> {
        match set.validators().first() {
            Some(v) => Ok(self.suite.check_key(&v.public_key)?),
            None => Ok(()),
        }
    }

    /// Checks, executes and commits `txs` as the next block at `time`,
    /// signed by every current validator.
    pub fn produce_block(
        &mut self,
        txs: Vec<Transaction>,
        time: Timestamp,
    ) -> Result<&CommittedBlock, TestkitError> {
        let height = Height::new(self.blocks.len() as u64 + 1);
        let (parent_hash, previous_time) = match self.blocks.last() {
            Some(b) => (b.block.hash(), b.block.header.time),
            None => (Hash::ZERO, self.genesis_time),
        };
        if let Some((_, set)) = &self.pending {
            self.check_set(set)?;
        }
        if time < previous_time {
            return Err(TestkitError::TimeWentBackwards {
                previous: previous_time,
                got: time,
            });
        }
        for (index, tx) in txs.iter().enumerate() {
            tx.check_chain(&self.chain_id)
                .and_then(|()| tx.check_suite(self.suite))
                .map_err(|source| TestkitError::Transaction { index, source })?;
        }
        let messages: Vec<Hash> = txs.iter().map(Transaction::signing_message).collect();
        let items: Vec<BatchItem<'_>> = txs
            .iter()
            .zip(&messages)
            .map(|(tx, m)| BatchItem::new(tx.sender(), m.as_bytes(), tx.signature()))
            .collect();
        if let Err(e) = verify_batch(&items) {
            let index = e.invalid_indexes().first().copied().unwrap_or(0);
            return Err(TestkitError::Transaction {
                index,
                source: TxError::BadSignature(crate::crypto::SignatureError::Invalid),
            });
        }

        let base_version = (height.get() > 1).then(|| height.get() - 1);
        let hf = self.suite.hash_function();
        let view = TreeStateView::new(&self.store, hf, base_version);
        for (index, tx) in txs.iter().enumerate() {
            self.app
                .check_tx(&view, tx)
                .map_err(|source| TestkitError::Rejected { index, source })?;
        }
        // Round-robin over the set's canonical order (never empty).
        let validators = self.set.validators();
        let proposer = validators[(height.get() as usize) % validators.len()]
            .public_key
            .clone();
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height,
            time,
            proposer: proposer.clone(),
            suite: self.suite,
        };
        let mut overlay = StateOverlay::new(&view);
        let receipts = self.app.execute_block(&ctx, &mut overlay, &txs)?;
        let updates: Vec<(KeyHash, Option<Vec<u8>>)> = overlay
            .into_writes()
            .into_iter()
            .map(|(k, v)| (KeyHash::of(hf, &k), v))
            .collect();
        let tree = SparseMerkleTree::new(&self.store, hf);
        let (state_root, batch) = tree
            .apply_batch(base_version, height.get(), &updates)
            .map_err(state_err)?;
        self.store.write_batch(batch.clone()).map_err(state_err)?;

        let (next_set, announces_change) = match &self.pending {
            Some((_, set)) => (set.clone(), true),
            None => (self.set.clone(), false),
        };
        let header = BlockHeader {
            suite: self.suite,
            chain_id: self.chain_id.clone(),
            height,
            time,
            parent_hash,
            tx_root: tx_root_of(self.suite, &txs),
            tx_count: txs.len() as u32,
            state_root,
            history_root: self.history.root(),
            validator_set_hash: self.set.hash(),
            next_validator_set_hash: next_set.hash(),
            proposer,
        };
        let hash = header.hash();
        let signers: Vec<&dyn Signer> = self
            .signers
            .iter()
            .filter(|s| self.set.may_sign(&s.public_key(), height).is_ok())
            .map(|s| s as &dyn Signer)
            .collect();
        let mut certificate = certify(&self.chain_id, height, Round::new(0), hash, &signers);
        certificate.signatures = canonical_signatures(certificate.signatures, &self.set, height).0;
        let first_of_set = self
            .blocks
            .last()
            .is_none_or(|b| b.block.header.validator_set_hash != self.set.hash());
        let light = LightBlock {
            header: header.clone(),
            certificate,
            validator_set: first_of_set.then(|| self.set.clone()),
        };
        self.history.append(&hash);
        if announces_change {
            if let Some((signers, set)) = self.pending.take() {
                self.signers = signers;
                self.set = set;
            }
        }
        self.blocks.push(CommittedBlock {
            block: Block {
                header,
                transactions: txs,
            },
            light,
            receipts,
            state_batch: batch,
        });
        let index = self.blocks.len() - 1;
        Ok(&self.blocks[index])
    }

    /// The value of application key `key` after block `height`, with its
    /// state proof against that header's state root.
    pub fn state_proof(
        &self,
        height: Height,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, SparseMerkleProof), TestkitError> {
        self.block(height)?;
        let hf = self.suite.hash_function();
        SparseMerkleTree::new(&self.store, hf)
            .get_with_proof(&KeyHash::of(hf, key), height.get())
            .map_err(state_err)
    }

    /// Inclusion proof of transaction `index` of block `height`.
    pub fn tx_proof(&self, height: Height, index: u64) -> Result<InclusionProof, TestkitError> {
        let block = self.block(height)?;
        let leaves: Vec<Hash> = block
            .block
            .transactions
            .iter()
            .map(Transaction::leaf_hash)
            .collect();
        Ok(TxTree::from_leaves(self.suite.hash_function(), leaves).inclusion_proof(index)?)
    }

    /// Proof, against header `height`'s history root, that block `ancestor`
    /// is in the chain's history.
    pub fn ancestor_proof(
        &self,
        height: Height,
        ancestor: Height,
    ) -> Result<InclusionProof, TestkitError> {
        self.block(height)?;
        let index = ancestor
            .get()
            .checked_sub(1)
            .ok_or(TestkitError::NoSuchBlock { height: ancestor })?;
        Ok(self.history.inclusion_proof(index, height.get() - 1)?)
    }
}

/// A minimal key-value DApp for tests and examples: each transaction's payload
/// is a canonical `(key, value)` pair, which it stores under `kv/` + key.
/// Nonces are enforced with [`NonceTracker`](crate::app::NonceTracker).
#[derive(Debug, Clone, Copy, Default)]
pub struct KvApp;

impl KvApp {
    /// The payload that sets `key` to `value`.
    pub fn payload(key: &[u8], value: &[u8]) -> Vec<u8> {
        use crate::codec::Encode;
        (key.to_vec(), value.to_vec()).to_bytes()
    }

    /// The state key under which `key` is stored.
    pub fn state_key(key: &[u8]) -> Vec<u8> {
        let mut k = b"kv/".to_vec();
        k.extend_from_slice(key);
        k
    }

    fn decode(payload: &[u8]) -> Result<(Vec<u8>, Vec<u8>), TxRejection> {
        crate::codec::decode_exact(payload, crate::tx::MAX_PAYLOAD_LEN).map_err(|e| {
            TxRejection::InvalidPayload {
                reason: e.to_string(),
            }
        })
    }
}

impl Application for KvApp {
    fn name(&self) -> &str {
        "kv"
    }

    fn check_tx(
        &self,
        state: &dyn crate::app::StateView,
        tx: &Transaction,
    ) -> Result<(), TxRejection> {
        Self::decode(tx.payload())?;
        crate::app::NonceTracker::check_not_replayed(state, tx)
    }

    fn execute_block(
        &self,
        _ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, crate::app::ExecutionError> {
        let mut receipts = Vec::with_capacity(txs.len());
        for tx in txs {
            let outcome = crate::app::NonceTracker::check_and_advance(state, tx)
                .and_then(|()| Self::decode(tx.payload()));
            match outcome {
                Ok((key, value)) => {
                    state.put(Self::state_key(&key), value);
                    receipts.push(Receipt::ok(tx.id()));
                }
                Err(e) => receipts.push(Receipt {
                    tx_id: tx.id(),
                    code: 1,
                    data: e.to_string().into_bytes(),
                }),
            }
        }
        Ok(receipts)
    }

    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, crate::app::QueryError> {
        Ok(Self::state_key(request))
    }
}
