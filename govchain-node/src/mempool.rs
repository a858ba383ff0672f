//! The transaction pool: bounded, nonce-ordered per sender, and checked
//! before admission.
//!
//! A [`Mempool`] holds the signed transactions of one chain that wait for a
//! block. It never grows past its [`MempoolConfig`]: a count limit, a byte
//! limit (canonical encoded length), a per-sender limit and a per-transaction
//! size limit. When a limit is reached, admission fails with a typed
//! [`MempoolError`]; nothing already admitted is evicted.
//!
//! # Admission
//! [`Mempool::insert_batch`] (and [`Mempool::insert`], its one-transaction
//! form) applies these checks to each transaction, cheapest first, and the
//! first failure is the transaction's error:
//! 1. the chain id is this pool's ([`MempoolError::WrongChain`]);
//! 2. the encoded length is at most `max_tx_bytes` ([`MempoolError::TooLarge`]);
//! 3. the same transaction (same id) is not already pending
//!    ([`MempoolError::Duplicate`]);
//! 4. the nonce is not below the sender's next nonce in committed state
//!    ([`MempoolError::NonceReplayed`]), nor more than `max_nonce_gap` above
//!    it ([`MempoolError::NonceTooFarAhead`]);
//! 5. no other transaction of the sender with that nonce is pending
//!    ([`MempoolError::DuplicateNonce`]): replacement is not supported, a
//!    sender who wants to change a pending transaction waits for it to be
//!    committed or to expire from its peers' pools;
//! 6. the sender has fewer than `max_per_sender` pending
//!    ([`MempoolError::SenderFull`]), and the pool has room for one more
//!    transaction of this size ([`MempoolError::Full`]);
//! 7. the signature verifies ([`MempoolError::BadSignature`]);
//! 8. the application's [`Application::check_tx`] accepts it against the
//!    committed state ([`MempoolError::Rejected`]).
//!
//! Signatures are checked before `check_tx` because the [`Application`]
//! contract promises the application only authentic transactions.
//!
//! In a batch, the checks up to 6 run first for the whole batch against the
//! pool as it was; the survivors' signatures are then verified in one
//! parallel [`verify_batch`] call (so a full pool costs no signature work);
//! finally each transaction, in input order, is checked again against the pool
//! as the batch has filled it, and admitted. The outcome is exactly that of
//! inserting the transactions one at a time in the same order; batch and
//! single verification accept the same signatures.
//!
//! # Nonces
//! The pool assumes the standard nonce rule of
//! [`NonceTracker`]: each sender's nonces are used
//! in order from 0, and the next one is stored in state. A sender may have
//! several transactions pending, so the application's `check_tx` must accept
//! future nonces (as [`NonceTracker::check_not_replayed`] does), or each
//! sender can only ever have its next transaction pending.
//!
//! # Reaping and commit
//! [`Mempool::reap`] returns what a proposal may include: for each sender,
//! only the contiguous run of nonces starting at its committed next nonce, in
//! ascending nonce order; senders are interleaved by arrival. After a block
//! commits, [`Mempool::remove_committed`] drops its transactions and every
//! transaction whose nonce the block used up.
//!
//! # Cost
//! Insertion and removal are O(log n) each. Transactions are indexed per
//! sender by nonce, senders by the arrival of their lowest pending nonce, and
//! transactions by id. `reap` costs O(r log n + s) for r transactions returned
//! and s senders visited (senders with a nonce gap are visited and skipped);
//! it never walks the whole pool to fill a small block. No output depends on
//! hash-map order: with the same history of calls, two pools reap the same
//! transactions in the same order.
//!
//! ```
//! use std::collections::BTreeMap;
//! use govchain_core::crypto::SecretKey;
//! use govchain_core::testkit::KvApp;
//! use govchain_core::tx::Transaction;
//! use govchain_core::types::ChainId;
//! use govchain_node::mempool::{Mempool, MempoolConfig, MempoolError};
//!
//! let chain = ChainId::new("hz-main")?;
//! let mut pool = Mempool::new(chain.clone(), MempoolConfig::default())?;
//! let committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
//! let citizen = SecretKey::from_seed(&[7; 32]);
//! let tx = Transaction::new_signed(chain, &citizen, 0, KvApp::payload(b"k", b"v"))?;
//!
//! let id = pool.insert(tx.clone(), &KvApp, &committed)?;
//! assert!(pool.contains(&id));
//! assert!(matches!(
//!     pool.insert(tx, &KvApp, &committed),
//!     Err(MempoolError::Duplicate { .. })
//! ));
//! assert_eq!(pool.reap(&committed, 100, 1 << 20)?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Reverse;
use std::collections::btree_map::{self, BTreeMap};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;

use govchain_core::app::{Application, NonceTracker, StateError, StateView, TxRejection};
use govchain_core::crypto::{verify_batch, BatchItem, PublicKey, Signature};
use govchain_core::hash::Hash;
use govchain_core::tx::{Transaction, MAX_TX_ENCODED_LEN};
use govchain_core::types::ChainId;
use rayon::prelude::*;

/// Limits of a [`Mempool`]. Check with [`MempoolConfig::validate`] (done by
/// [`Mempool::new`]).
///
/// `Clone` but deliberately not `Copy`, so that a non-`Copy` setting can be
/// added later without breaking callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions pending at once.
    pub max_txs: usize,
    /// Most bytes pending at once, counted as the transactions' canonical
    /// encoded lengths.
    pub max_bytes: usize,
    /// Most transactions one sender may have pending at once.
    pub max_per_sender: usize,
    /// Largest encoded transaction admitted, in bytes.
    pub max_tx_bytes: usize,
    /// How far above the sender's committed next nonce a pending nonce may
    /// be: `nonce - next <= max_nonce_gap`. `0` admits only the next nonce.
    pub max_nonce_gap: u64,
}

impl Default for MempoolConfig {
    /// 20,000 transactions, 64 MiB, 1,024 per sender, transactions up to
    /// [`MAX_TX_ENCODED_LEN`], nonces up to 1,024 ahead.
    fn default() -> Self {
        MempoolConfig {
            max_txs: 20_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_sender: 1_024,
            max_tx_bytes: MAX_TX_ENCODED_LEN,
            max_nonce_gap: 1_024,
        }
    }
}

impl MempoolConfig {
    /// Checks that every limit is positive and that one transaction of the
    /// largest admitted size fits in the byte limit.
    pub fn validate(&self) -> Result<(), MempoolError> {
        let reason = if self.max_txs == 0 {
            "max_txs must be at least 1"
        } else if self.max_bytes == 0 {
            "max_bytes must be at least 1"
        } else if self.max_per_sender == 0 {
            "max_per_sender must be at least 1"
        } else if self.max_tx_bytes == 0 {
            "max_tx_bytes must be at least 1"
        } else if self.max_tx_bytes > self.max_bytes {
            "max_tx_bytes must not exceed max_bytes"
        } else {
            return Ok(());
        };
        Err(MempoolError::InvalidConfig { reason })
    }
}

/// Which pool-wide limit refused a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolLimit {
    /// [`MempoolConfig::max_txs`].
    Transactions,
    /// [`MempoolConfig::max_bytes`].
    Bytes,
}

impl fmt::Display for PoolLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolLimit::Transactions => "transactions",
            PoolLimit::Bytes => "bytes",
        })
    }
}

/// Why a transaction was not admitted, or a pool operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// The configuration is unusable.
    #[error("invalid mempool configuration: {reason}")]
    InvalidConfig {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The transaction was signed for another chain.
    #[error("transaction is for chain {got}, this mempool is for {expected}")]
    WrongChain {
        /// This pool's chain.
        expected: ChainId,
        /// The chain named in the transaction.
        got: ChainId,
    },
    /// The sender's key is of an algorithm the chain's suite does not admit.
    #[error("transaction refused: {0}")]
    WrongSuite(#[from] govchain_core::crypto::SuiteMismatch),
    /// The transaction's encoding is longer than `max_tx_bytes`.
    #[error("transaction of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The same transaction is already pending.
    #[error("transaction {id} is already pending")]
    Duplicate {
        /// Its id.
        id: Hash,
    },
    /// Another transaction of the sender with the same nonce is pending.
    /// Replacement is not supported.
    #[error("sender {sender} already has a pending transaction with nonce {nonce}")]
    DuplicateNonce {
        /// The sender.
        sender: PublicKey,
        /// The nonce.
        nonce: u64,
    },
    /// The pool is full: admitting the transaction would exceed `limit`.
    #[error("mempool is full ({limit}): {current} of {max} used")]
    Full {
        /// The limit reached.
        limit: PoolLimit,
        /// Current use, in transactions or bytes.
        current: usize,
        /// The limit's value.
        max: usize,
    },
    /// The sender already has `max` transactions pending.
    #[error("sender {sender} already has {max} transactions pending")]
    SenderFull {
        /// The sender.
        sender: PublicKey,
        /// The per-sender limit.
        max: usize,
    },
    /// The nonce was already used in committed state.
    #[error("nonce {got} was already used; the sender's next nonce is {expected}")]
    NonceReplayed {
        /// The sender's next nonce in committed state.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce is too far above the sender's next nonce.
    #[error("nonce {got} is more than {max_gap} above the sender's next nonce {expected}")]
    NonceTooFarAhead {
        /// The sender's next nonce in committed state.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
        /// [`MempoolConfig::max_nonce_gap`].
        max_gap: u64,
    },
    /// The signature does not verify under the sender's key.
    #[error("transaction {id} has an invalid signature")]
    BadSignature {
        /// The transaction's id.
        id: Hash,
    },
    /// The application's `check_tx` refused the transaction.
    #[error("rejected by the application: {0}")]
    Rejected(#[from] TxRejection),
    /// Committed state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One pending transaction.
#[derive(Debug)]
struct Entry {
    tx: Transaction,
    id: Hash,
    /// Encoded length.
    len: usize,
    /// Arrival sequence number, unique in the pool's lifetime.
    seq: u64,
}

/// A sender's pending transactions by nonce.
type Queue = BTreeMap<u64, Entry>;

fn head_seq(queue: &Queue) -> Option<u64> {
    queue.first_key_value().map(|(_, e)| e.seq)
}

/// The smallest possible encoding of a transaction on `chain` (empty payload,
/// the shortest key encoding).
fn min_tx_len(chain: &ChainId) -> usize {
    4 + chain.as_str().len() + PublicKey::MIN_ENCODED_LEN + 8 + 4 + Signature::ENCODED_LEN
}

/// Batches shorter than this hash on the calling thread: handing a few
/// transactions to the rayon pool costs more than hashing them.
const PARALLEL_MIN: usize = 64;

/// Per-batch cache of committed next nonces.
type NextNonces = HashMap<PublicKey, u64>;

/// The pending transactions of one chain. See the [module docs](self).
pub struct Mempool {
    chain_id: ChainId,
    config: MempoolConfig,
    /// Pending transactions per sender, by nonce. Never holds an empty queue.
    /// Only looked up, never iterated (a hash map: with a thousand senders a
    /// tree lookup costs about ten 32-byte key compares, on every admission
    /// and commit of every transaction).
    senders: HashMap<PublicKey, Queue>,
    /// Each sender keyed by the arrival sequence number of its lowest-nonce
    /// pending transaction: the order in which `reap` considers senders.
    heads: BTreeMap<u64, PublicKey>,
    /// Every pending transaction's id, with its sender and nonce. Only looked
    /// up, never iterated.
    ids: HashMap<Hash, (PublicKey, u64)>,
    /// Sum of the pending transactions' encoded lengths.
    bytes: usize,
    next_seq: u64,
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("chain_id", &self.chain_id)
            .field("config", &self.config)
            .field("len", &self.len())
            .field("bytes", &self.bytes)
            .field("senders", &self.senders.len())
            .finish()
    }
}

/// Where `reap` stands in one sender's contiguous run.
struct Cursor<'a> {
    rest: btree_map::Range<'a, u64, Entry>,
    current: &'a Entry,
    nonce: u64,
}

impl Mempool {
    /// An empty pool for `chain_id`; fails if `config` is invalid.
    pub fn new(chain_id: ChainId, config: MempoolConfig) -> Result<Self, MempoolError> {
        config.validate()?;
        Ok(Mempool {
            chain_id,
            config,
            senders: HashMap::new(),
            heads: BTreeMap::new(),
            ids: HashMap::new(),
            bytes: 0,
            next_seq: 0,
        })
    }

    /// The chain this pool admits transactions for.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The pool's limits.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sum of the pending transactions' encoded lengths.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the transaction with id `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains_key(id)
    }

    /// The pending transaction with id `id`.
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        let (sender, nonce) = self.ids.get(id)?;
        self.senders
            .get(sender)?
            .get(nonce)
            .filter(|e| &e.id == id)
            .map(|e| &e.tx)
    }

    /// Number of transactions `sender` has pending.
    pub fn sender_len(&self, sender: &PublicKey) -> usize {
        self.senders.get(sender).map_or(0, BTreeMap::len)
    }

    /// Admits one transaction, running every check in the [module
    /// docs](self); returns its id.
    pub fn insert(
        &mut self,
        tx: Transaction,
        app: &dyn Application,
        state: &dyn StateView,
    ) -> Result<Hash, MempoolError> {
        let mut nexts = NextNonces::new();
        let (id, len) = self.check_stateless(&tx)?;
        self.precheck(&tx, id, len, &mut nexts, state)?;
        tx.verify_signature()
            .map_err(|_| MempoolError::BadSignature { id })?;
        self.admit(tx, id, len, app, state)
    }

    /// Admits a batch of transactions; returns one result per input, in
    /// order: the id, or why the transaction was refused.
    ///
    /// Same outcome as calling [`Mempool::insert`] on each in turn, but the
    /// signatures of the transactions that pass the cheap checks are verified
    /// together, in parallel batches on the rayon pool.
    pub fn insert_batch(
        &mut self,
        txs: Vec<Transaction>,
        app: &dyn Application,
        state: &dyn StateView,
    ) -> Vec<Result<Hash, MempoolError>> {
        // Stage 1, per transaction and in parallel: chain, size, id.
        let stateless: Vec<Result<(Hash, usize), MempoolError>> = {
            let this = &*self;
            if txs.len() >= PARALLEL_MIN {
                txs.par_iter().map(|tx| this.check_stateless(tx)).collect()
            } else {
                txs.iter().map(|tx| this.check_stateless(tx)).collect()
            }
        };

        // Stage 2: the cheap stateful checks against the pool as it is, to
        // find whose signatures are worth verifying. Identical transactions
        // are verified once.
        let mut nexts = NextNonces::new();
        let mut to_verify: Vec<usize> = Vec::new();
        let mut slot_of: HashMap<Hash, usize> = HashMap::new();
        let mut slots: Vec<Option<usize>> = vec![None; txs.len()];
        for (i, (tx, pre)) in txs.iter().zip(&stateless).enumerate() {
            let Ok((id, len)) = *pre else { continue };
            if self.precheck(tx, id, len, &mut nexts, state).is_err() {
                continue;
            }
            let slot = *slot_of.entry(id).or_insert_with(|| {
                to_verify.push(i);
                to_verify.len() - 1
            });
            if let Some(s) = slots.get_mut(i) {
                *s = Some(slot);
            }
        }

        // Stage 3: one parallel batch verification.
        let valid: Vec<bool> = {
            let message = |&i: &usize| txs.get(i).map(Transaction::signing_message);
            let messages: Vec<Hash> = if to_verify.len() >= PARALLEL_MIN {
                to_verify.par_iter().filter_map(message).collect()
            } else {
                to_verify.iter().filter_map(message).collect()
            };
            let items: Vec<BatchItem<'_>> = to_verify
                .iter()
                .filter_map(|&i| txs.get(i))
                .zip(&messages)
                .map(|(tx, m)| BatchItem::new(tx.sender(), m.as_bytes(), tx.signature()))
                .collect();
            let mut valid = vec![true; items.len()];
            if let Err(e) = verify_batch(&items) {
                for &bad in e.invalid_indexes() {
                    if let Some(v) = valid.get_mut(bad) {
                        *v = false;
                    }
                }
            }
            valid
        };

        // Stage 4, in input order: the authoritative checks against the pool
        // as this batch has filled it, then admission.
        txs.into_iter()
            .zip(stateless)
            .zip(slots)
            .map(|((tx, pre), slot)| {
                let (id, len) = pre?;
                self.precheck(&tx, id, len, &mut nexts, state)?;
                let signature_ok = match slot.and_then(|s| valid.get(s)) {
                    Some(&ok) => ok,
                    // Not batch-verified because the pool had no room at
                    // stage 2 but has now (an earlier stale entry was
                    // pruned): verify it alone, with the same answer.
                    None => tx.verify_signature().is_ok(),
                };
                if !signature_ok {
                    return Err(MempoolError::BadSignature { id });
                }
                self.admit(tx, id, len, app, state)
            })
            .collect()
    }

    /// Transactions for a proposal, at most `max_txs` of them and `max_bytes`
    /// in total encoded length.
    ///
    /// For each sender, only the contiguous run of nonces starting at its
    /// next nonce in `state` (the committed state the proposal builds on), in
    /// ascending order. A sender whose next transaction does not fit in the
    /// remaining bytes contributes nothing more. Senders are interleaved by
    /// arrival: the transaction that arrived first among the senders' next
    /// candidates goes first. Deterministic; the pool is not changed.
    pub fn reap(
        &self,
        state: &dyn StateView,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<Vec<Transaction>, MempoolError> {
        let min_len = min_tx_len(&self.chain_id);
        let mut out = Vec::new();
        let mut used = 0usize;
        let mut cursors: Vec<Cursor<'_>> = Vec::new();
        // Candidates by arrival: (sequence number, index into `cursors`).
        let mut ready: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
        let mut heads = self.heads.iter().peekable();
        while out.len() < max_txs && max_bytes.saturating_sub(used) >= min_len {
            // Bring in each sender whose head arrived before the earliest
            // candidate so far.
            while let Some(&(&head, sender)) = heads.peek() {
                if ready.peek().is_some_and(|Reverse((seq, _))| *seq < head) {
                    break;
                }
                heads.next();
                if let Some(cursor) = self.cursor(sender, state)? {
                    ready.push(Reverse((cursor.current.seq, cursors.len())));
                    cursors.push(cursor);
                }
            }
            let Some(Reverse((_, index))) = ready.pop() else {
                break;
            };
            let Some(cursor) = cursors.get_mut(index) else {
                break;
            };
            let entry = cursor.current;
            if entry.len > max_bytes.saturating_sub(used) {
                continue;
            }
            used = used.saturating_add(entry.len);
            out.push(entry.tx.clone());
            if let Some((&nonce, next)) = cursor.rest.next() {
                if Some(nonce) == cursor.nonce.checked_add(1) {
                    cursor.nonce = nonce;
                    cursor.current = next;
                    ready.push(Reverse((next.seq, index)));
                }
            }
        }
        Ok(out)
    }

    /// After a block commits on `state`: removes the block's transactions
    /// (`included`) and every pending transaction of their senders whose
    /// nonce is now below the sender's next nonce in `state`.
    ///
    /// On a state read error the included transactions are still removed and
    /// every other sender is still pruned; the first error is returned.
    pub fn remove_committed(
        &mut self,
        included: &[Transaction],
        state: &dyn StateView,
    ) -> Result<(), MempoolError> {
        // In block order, each once (the first error is then deterministic).
        let mut seen: HashSet<&PublicKey> = HashSet::new();
        let mut senders: Vec<&PublicKey> = Vec::new();
        for tx in included {
            let sender = tx.sender();
            let same = self
                .senders
                .get(sender)
                .and_then(|q| q.get(&tx.nonce()))
                // The id is cached in both (the node computes the block's
                // ids on commit): a hash compare, not a byte compare.
                .is_some_and(|e| e.id == tx.id());
            if same {
                let nonce = tx.nonce();
                self.take_entries(sender, |q| q.remove(&nonce).into_iter().collect());
            }
            // Only a sender with something left here can have gone stale;
            // the others would cost a state read for nothing (and in a
            // block sync, where the mempool is empty, that is every sender).
            if self.senders.get(sender).is_some_and(|q| !q.is_empty()) && seen.insert(sender) {
                senders.push(sender);
            }
        }
        let mut first_error = None;
        for sender in senders {
            match NonceTracker::next(state, sender) {
                Ok(next) => self.prune_below(sender, next),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Chain, size and id: the checks that need nothing but the transaction.
    fn check_stateless(&self, tx: &Transaction) -> Result<(Hash, usize), MempoolError> {
        if tx.chain_id() != &self.chain_id {
            return Err(MempoolError::WrongChain {
                expected: self.chain_id.clone(),
                got: tx.chain_id().clone(),
            });
        }
        let len = tx.encoded_len();
        if len > self.config.max_tx_bytes {
            return Err(MempoolError::TooLarge {
                len,
                max: self.config.max_tx_bytes,
            });
        }
        Ok((tx.id(), len))
    }

    /// Duplicate, nonce and capacity checks against the pool as it is. The
    /// first time a sender is seen (per `nexts`), reads its committed next
    /// nonce and prunes its pending transactions below it.
    fn precheck(
        &mut self,
        tx: &Transaction,
        id: Hash,
        len: usize,
        nexts: &mut NextNonces,
        state: &dyn StateView,
    ) -> Result<(), MempoolError> {
        if self.ids.contains_key(&id) {
            return Err(MempoolError::Duplicate { id });
        }
        let sender = tx.sender();
        let next = match nexts.get(sender) {
            Some(&next) => next,
            None => {
                let next = NonceTracker::next(state, sender)?;
                self.prune_below(sender, next);
                nexts.insert(sender.clone(), next);
                next
            }
        };
        let nonce = tx.nonce();
        if nonce < next {
            return Err(MempoolError::NonceReplayed {
                expected: next,
                got: nonce,
            });
        }
        if nonce - next > self.config.max_nonce_gap {
            return Err(MempoolError::NonceTooFarAhead {
                expected: next,
                got: nonce,
                max_gap: self.config.max_nonce_gap,
            });
        }
        let queue = self.senders.get(sender);
        if queue.is_some_and(|q| q.contains_key(&nonce)) {
            return Err(MempoolError::DuplicateNonce {
                sender: sender.clone(),
                nonce,
            });
        }
        if queue.map_or(0, BTreeMap::len) >= self.config.max_per_sender {
            return Err(MempoolError::SenderFull {
                sender: sender.clone(),
                max: self.config.max_per_sender,
            });
        }
        if self.len() >= self.config.max_txs {
            return Err(MempoolError::Full {
                limit: PoolLimit::Transactions,
                current: self.len(),
                max: self.config.max_txs,
            });
        }
        if self.bytes.saturating_add(len) > self.config.max_bytes {
            return Err(MempoolError::Full {
                limit: PoolLimit::Bytes,
                current: self.bytes,
                max: self.config.max_bytes,
            });
        }
        Ok(())
    }

    /// Runs `check_tx` and adds the transaction. The caller has just run
    /// [`Mempool::precheck`] and verified the signature.
    fn admit(
        &mut self,
        tx: Transaction,
        id: Hash,
        len: usize,
        app: &dyn Application,
        state: &dyn StateView,
    ) -> Result<Hash, MempoolError> {
        app.check_tx(state, &tx)?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let sender = tx.sender().clone();
        let nonce = tx.nonce();
        let queue = self.senders.entry(sender.clone()).or_default();
        let old_head = head_seq(queue);
        queue.insert(nonce, Entry { tx, id, len, seq });
        let new_head = head_seq(queue);
        if old_head != new_head {
            if let Some(old) = old_head {
                self.heads.remove(&old);
            }
            if let Some(new) = new_head {
                self.heads.insert(new, sender.clone());
            }
        }
        self.ids.insert(id, (sender, nonce));
        self.bytes = self.bytes.saturating_add(len);
        Ok(id)
    }

    /// Removes `sender`'s pending transactions with nonces below `next`.
    fn prune_below(&mut self, sender: &PublicKey, next: u64) {
        let stale = self
            .senders
            .get(sender)
            .and_then(BTreeMap::first_key_value)
            .is_some_and(|(&lowest, _)| lowest < next);
        if stale {
            self.take_entries(sender, |q| {
                let keep = q.split_off(&next);
                std::mem::replace(q, keep).into_values().collect()
            });
        }
    }

    /// Removes the entries `take` returns from `sender`'s queue, keeping
    /// every index in step.
    fn take_entries(&mut self, sender: &PublicKey, take: impl FnOnce(&mut Queue) -> Vec<Entry>) {
        let Some(queue) = self.senders.get_mut(sender) else {
            return;
        };
        let old_head = head_seq(queue);
        let removed = take(queue);
        let new_head = head_seq(queue);
        if queue.is_empty() {
            self.senders.remove(sender);
        }
        if old_head != new_head {
            if let Some(old) = old_head {
                self.heads.remove(&old);
            }
            if let Some(new) = new_head {
                self.heads.insert(new, sender.clone());
            }
        }
        for entry in removed {
            self.ids.remove(&entry.id);
            self.bytes = self.bytes.saturating_sub(entry.len);
        }
    }

    /// The start of `sender`'s run for `reap`, if its next nonce is pending.
    fn cursor<'a>(
        &'a self,
        sender: &PublicKey,
        state: &dyn StateView,
    ) -> Result<Option<Cursor<'a>>, MempoolError> {
        let Some(queue) = self.senders.get(sender) else {
            return Ok(None);
        };
        let next = NonceTracker::next(state, sender)?;
        let mut rest = queue.range(next..);
        Ok(match rest.next() {
            Some((&nonce, current)) if nonce == next => Some(Cursor {
                rest,
                current,
                nonce,
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::app::{BlockContext, ExecutionError, QueryError, Receipt, StateOverlay};
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::testkit::KvApp;
    use proptest::prelude::*;

    type State = BTreeMap<Vec<u8>, Vec<u8>>;

    fn chain() -> ChainId {
        ChainId::new("hz-main").unwrap()
    }

    fn key(i: u8) -> SecretKey {
        SecretKey::from_seed(&[i; 32])
    }

    fn tx_len(signer: &dyn Signer, nonce: u64, extra: usize) -> Transaction {
        let mut value = vec![b'v'; extra];
        value.extend_from_slice(&nonce.to_le_bytes());
        Transaction::new_signed(chain(), signer, nonce, KvApp::payload(b"k", &value)).unwrap()
    }

    fn tx(signer: &dyn Signer, nonce: u64) -> Transaction {
        tx_len(signer, nonce, 0)
    }

    /// Signs with one key while claiming another: a transaction whose
    /// signature does not verify.
    struct Forger {
        signs: SecretKey,
        claims: PublicKey,
    }

    impl Signer for Forger {
        fn public_key(&self) -> PublicKey {
            self.claims.clone()
        }
        fn sign(&self, message: &[u8]) -> Signature {
            self.signs.sign(message)
        }
    }

    fn forged(victim: u8, nonce: u64) -> Transaction {
        let forger = Forger {
            signs: key(200),
            claims: key(victim).public_key(),
        };
        tx(&forger, nonce)
    }

    fn set_next(state: &mut State, signer: &SecretKey, next: u64) {
        state.insert(
            NonceTracker::key(&signer.public_key()),
            next.to_le_bytes().to_vec(),
        );
    }

    fn pool(config: MempoolConfig) -> Mempool {
        Mempool::new(chain(), config).unwrap()
    }

    fn small() -> MempoolConfig {
        MempoolConfig {
            max_txs: 8,
            max_bytes: 4_096,
            max_per_sender: 4,
            max_tx_bytes: 1_024,
            max_nonce_gap: 6,
        }
    }

    impl Mempool {
        /// Every index agrees with the queues, and the limits hold.
        fn check_invariants(&self) {
            let mut count = 0;
            let mut bytes = 0;
            assert_eq!(self.heads.len(), self.senders.len());
            for (sender, queue) in &self.senders {
                assert!(!queue.is_empty());
                assert!(queue.len() <= self.config.max_per_sender);
                let head = head_seq(queue).unwrap();
                assert_eq!(self.heads.get(&head), Some(sender));
                for (&nonce, e) in queue {
                    assert_eq!(e.tx.nonce(), nonce);
                    assert_eq!(e.tx.sender(), sender);
                    assert_eq!(e.id, e.tx.id());
                    assert_eq!(e.len, e.tx.encoded_len());
                    assert_eq!(self.ids.get(&e.id), Some(&(sender.clone(), nonce)));
                    count += 1;
                    bytes += e.len;
                }
            }
            assert_eq!(count, self.ids.len());
            assert_eq!(bytes, self.bytes);
            assert!(self.len() <= self.config.max_txs);
            assert!(self.bytes <= self.config.max_bytes);
        }
    }

    /// Checks a reap's output against `state` and the limits it was given.
    fn check_reaped(
        pool: &Mempool,
        state: &State,
        out: &[Transaction],
        max_txs: usize,
        max_bytes: usize,
    ) {
        assert!(out.len() <= max_txs);
        assert!(out.iter().map(Transaction::encoded_len).sum::<usize>() <= max_bytes);
        let mut expected: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for t in out {
            assert!(pool.contains(&t.id()));
            let next = match expected.get(t.sender()) {
                Some(&n) => n,
                None => NonceTracker::next(state, t.sender()).unwrap(),
            };
            assert_eq!(t.nonce(), next, "reap is not nonce-contiguous");
            expected.insert(t.sender().clone(), next + 1);
        }
    }

    #[test]
    fn config_validation() {
        MempoolConfig::default().validate().unwrap();
        small().validate().unwrap();
        let bad = [
            MempoolConfig {
                max_txs: 0,
                ..small()
            },
            MempoolConfig {
                max_bytes: 0,
                ..small()
            },
            MempoolConfig {
                max_per_sender: 0,
                ..small()
            },
            MempoolConfig {
                max_tx_bytes: 0,
                ..small()
            },
            MempoolConfig {
                max_tx_bytes: 5_000,
                ..small()
            },
        ];
        for config in bad {
            assert!(matches!(
                Mempool::new(chain(), config),
                Err(MempoolError::InvalidConfig { .. })
            ));
        }
    }

    #[test]
    fn min_tx_len_matches_encoding() {
        let t = Transaction::new_signed(chain(), &key(1), 0, Vec::new()).unwrap();
        assert_eq!(min_tx_len(&chain()), t.encoded_len());
    }

    #[test]
    fn admits_out_of_order_and_reaps_in_nonce_order() {
        let mut p = pool(small());
        let state = State::new();
        let a = key(1);
        for n in [2, 0, 1] {
            p.insert(tx(&a, n), &KvApp, &state).unwrap();
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.sender_len(&a.public_key()), 3);
        let out = p.reap(&state, 10, 1 << 20).unwrap();
        let nonces: Vec<u64> = out.iter().map(Transaction::nonce).collect();
        assert_eq!(nonces, vec![0, 1, 2]);
        check_reaped(&p, &state, &out, 10, 1 << 20);
        p.check_invariants();
        let id = out[1].id();
        assert_eq!(p.get(&id), Some(&out[1]));
    }

    #[test]
    fn wrong_chain_is_rejected() {
        let mut p = pool(small());
        let other = ChainId::new("hz-side").unwrap();
        let t =
            Transaction::new_signed(other.clone(), &key(1), 0, KvApp::payload(b"k", b"v")).unwrap();
        assert_eq!(
            p.insert(t, &KvApp, &State::new()),
            Err(MempoolError::WrongChain {
                expected: chain(),
                got: other
            })
        );
        assert!(p.is_empty());
    }

    #[test]
    fn oversized_is_rejected() {
        let mut p = pool(small());
        let t = tx_len(&key(1), 0, 1_024);
        let len = t.encoded_len();
        assert_eq!(
            p.insert(t, &KvApp, &State::new()),
            Err(MempoolError::TooLarge { len, max: 1_024 })
        );
        // The largest admitted size is accepted.
        let fits = tx_len(&key(1), 0, 1_024 - (len - 1_024));
        assert_eq!(fits.encoded_len(), 1_024);
        p.insert(fits, &KvApp, &State::new()).unwrap();
    }

    #[test]
    fn replayed_and_far_nonces_are_rejected() {
        let mut p = pool(small());
        let a = key(1);
        let mut state = State::new();
        set_next(&mut state, &a, 5);
        assert_eq!(
            p.insert(tx(&a, 4), &KvApp, &state),
            Err(MempoolError::NonceReplayed {
                expected: 5,
                got: 4
            })
        );
        assert_eq!(
            p.insert(tx(&a, 12), &KvApp, &state),
            Err(MempoolError::NonceTooFarAhead {
                expected: 5,
                got: 12,
                max_gap: 6
            })
        );
        p.insert(tx(&a, 11), &KvApp, &state).unwrap();
        p.insert(tx(&a, 5), &KvApp, &state).unwrap();
        // Replay after commit: the committed nonce moves past 5.
        p.remove_committed(&[tx(&a, 5)], &{
            let mut s = state.clone();
            set_next(&mut s, &a, 6);
            s
        })
        .unwrap();
        set_next(&mut state, &a, 6);
        assert_eq!(
            p.insert(tx(&a, 5), &KvApp, &state),
            Err(MempoolError::NonceReplayed {
                expected: 6,
                got: 5
            })
        );
        p.check_invariants();
        assert_eq!(p.len(), 1);
        let far = u64::MAX;
        assert!(matches!(
            p.insert(tx(&a, far), &KvApp, &state),
            Err(MempoolError::NonceTooFarAhead { .. })
        ));
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut p = pool(small());
        let state = State::new();
        let t = tx(&key(1), 0);
        let id = p.insert(t.clone(), &KvApp, &state).unwrap();
        assert_eq!(
            p.insert(t.clone(), &KvApp, &state),
            Err(MempoolError::Duplicate { id })
        );
        // Within one batch, and against the pool.
        let u = tx(&key(2), 0);
        let uid = u.id();
        let results = p.insert_batch(vec![u.clone(), t, u], &KvApp, &state);
        assert_eq!(
            results,
            vec![
                Ok(uid),
                Err(MempoolError::Duplicate { id }),
                Err(MempoolError::Duplicate { id: uid })
            ]
        );
        assert_eq!(p.len(), 2);
        p.check_invariants();
    }

    #[test]
    fn same_nonce_is_not_replaced() {
        let mut p = pool(small());
        let state = State::new();
        let a = key(1);
        p.insert(tx_len(&a, 0, 1), &KvApp, &state).unwrap();
        assert_eq!(
            p.insert(tx_len(&a, 0, 2), &KvApp, &state),
            Err(MempoolError::DuplicateNonce {
                sender: a.public_key(),
                nonce: 0
            })
        );
    }

    #[test]
    fn per_sender_limit() {
        let mut p = pool(small());
        let state = State::new();
        let a = key(1);
        for n in 0..4 {
            p.insert(tx(&a, n), &KvApp, &state).unwrap();
        }
        assert_eq!(
            p.insert(tx(&a, 4), &KvApp, &state),
            Err(MempoolError::SenderFull {
                sender: a.public_key(),
                max: 4
            })
        );
        // Others are unaffected.
        p.insert(tx(&key(2), 0), &KvApp, &state).unwrap();
    }

    #[test]
    fn pool_limits_in_transactions_and_bytes() {
        let mut p = pool(small());
        let state = State::new();
        for s in 1..=8 {
            p.insert(tx(&key(s), 0), &KvApp, &state).unwrap();
        }
        assert_eq!(
            p.insert(tx(&key(9), 0), &KvApp, &state),
            Err(MempoolError::Full {
                limit: PoolLimit::Transactions,
                current: 8,
                max: 8
            })
        );
        // Committing frees room.
        let mut state = state;
        set_next(&mut state, &key(1), 1);
        p.remove_committed(&[tx(&key(1), 0)], &state).unwrap();
        p.insert(tx(&key(9), 0), &KvApp, &state).unwrap();

        let mut p = pool(MempoolConfig {
            max_bytes: 2_048,
            ..small()
        });
        let state = State::new();
        let big = |s| tx_len(&key(s), 0, 800);
        let len = big(1).encoded_len();
        p.insert(big(1), &KvApp, &state).unwrap();
        p.insert(big(2), &KvApp, &state).unwrap();
        assert_eq!(
            p.insert(big(3), &KvApp, &state),
            Err(MempoolError::Full {
                limit: PoolLimit::Bytes,
                current: 2 * len,
                max: 2_048
            })
        );
        // A small one still fits.
        p.insert(tx(&key(3), 0), &KvApp, &state).unwrap();
        assert!(p.bytes() <= 2_048);
        p.check_invariants();
    }

    #[test]
    fn batch_with_one_bad_signature_rejects_exactly_that_one() {
        let mut p = pool(MempoolConfig {
            max_txs: 1_000,
            max_bytes: 1 << 20,
            ..small()
        });
        let state = State::new();
        // Large enough for the parallel paths (PARALLEL_MIN) and for two
        // batch-verification chunks.
        let count = 300u16;
        let mut txs: Vec<Transaction> = (0..count)
            .map(|i| {
                let mut seed = [9u8; 32];
                seed[..2].copy_from_slice(&i.to_le_bytes());
                tx(&SecretKey::from_seed(&seed), 0)
            })
            .collect();
        let bad = forged(21, 0);
        let bad_id = bad.id();
        let at = 263;
        txs.insert(at, bad);
        let results = p.insert_batch(txs.clone(), &KvApp, &state);
        assert_eq!(results.len(), txs.len());
        for (i, (r, t)) in results.iter().zip(&txs).enumerate() {
            if i == at {
                assert_eq!(r, &Err(MempoolError::BadSignature { id: bad_id }));
            } else {
                assert_eq!(r, &Ok(t.id()));
            }
        }
        assert_eq!(p.len(), usize::from(count));
        // The genuine transaction of the forged sender is still admitted.
        p.insert(tx(&key(21), 0), &KvApp, &state).unwrap();
        assert!(matches!(
            p.insert(forged(22, 0), &KvApp, &state),
            Err(MempoolError::BadSignature { .. })
        ));
        p.check_invariants();
    }

    #[test]
    fn a_forged_transaction_does_not_block_the_genuine_one_in_a_batch() {
        let mut p = pool(small());
        let state = State::new();
        let genuine = tx(&key(1), 0);
        let results = p.insert_batch(vec![forged(1, 0), genuine.clone()], &KvApp, &state);
        assert!(matches!(results[0], Err(MempoolError::BadSignature { .. })));
        assert_eq!(results[1], Ok(genuine.id()));
    }

    #[test]
    fn check_tx_rejection_is_typed() {
        let mut p = pool(small());
        let t = Transaction::new_signed(chain(), &key(1), 0, b"not a kv pair".to_vec()).unwrap();
        assert!(matches!(
            p.insert(t, &KvApp, &State::new()),
            Err(MempoolError::Rejected(TxRejection::InvalidPayload { .. }))
        ));
        assert!(p.is_empty());
    }

    #[test]
    fn corrupt_state_is_a_state_error() {
        let mut p = pool(small());
        let a = key(1);
        let mut state = State::new();
        state.insert(NonceTracker::key(&a.public_key()), vec![1, 2, 3]);
        assert!(matches!(
            p.insert(tx(&a, 0), &KvApp, &state),
            Err(MempoolError::State(_))
        ));
        p.insert(tx(&a, 0), &KvApp, &State::new()).unwrap();
        p.insert(tx(&a, 1), &KvApp, &State::new()).unwrap();
        assert!(matches!(
            p.reap(&state, 10, 1 << 20),
            Err(MempoolError::State(_))
        ));
        // The sender still has nonce 1 queued, so its committed nonce is
        // read to prune what went stale, and that read fails.
        assert!(matches!(
            p.remove_committed(&[tx(&a, 0)], &state),
            Err(MempoolError::State(_))
        ));
        // The included transaction is removed all the same.
        assert_eq!(p.len(), 1);
        // A sender with nothing left queued needs no state read at all.
        assert_eq!(p.remove_committed(&[tx(&a, 1)], &state), Ok(()));
        assert!(p.is_empty());
    }

    #[test]
    fn reap_limits_gaps_and_interleaving() {
        let mut p = pool(MempoolConfig {
            max_txs: 100,
            max_bytes: 1 << 20,
            ..small()
        });
        let (a, b, c) = (key(1), key(2), key(3));
        let mut state = State::new();
        set_next(&mut state, &c, 3);
        // Arrival: a0 b0 a1 c5 (gap at c3, c4) b1 a2.
        for t in [
            tx(&a, 0),
            tx(&b, 0),
            tx(&a, 1),
            tx(&c, 5),
            tx(&b, 1),
            tx(&a, 2),
        ] {
            p.insert(t, &KvApp, &state).unwrap();
        }
        let out = p.reap(&state, 100, 1 << 20).unwrap();
        let order: Vec<(PublicKey, u64)> = out
            .iter()
            .map(|t| (t.sender().clone(), t.nonce()))
            .collect();
        let pk = |k: &SecretKey| k.public_key();
        assert_eq!(
            order,
            vec![
                (pk(&a), 0),
                (pk(&b), 0),
                (pk(&a), 1),
                (pk(&b), 1),
                (pk(&a), 2)
            ]
        );
        // Count and byte limits.
        assert_eq!(p.reap(&state, 2, 1 << 20).unwrap(), out[..2].to_vec());
        let two = out[0].encoded_len() + out[1].encoded_len();
        assert_eq!(p.reap(&state, 100, two).unwrap(), out[..2].to_vec());
        assert!(p.reap(&state, 0, 1 << 20).unwrap().is_empty());
        assert!(p.reap(&state, 100, 10).unwrap().is_empty());
        // Filling the gap makes c's run reapable.
        p.insert(tx(&c, 4), &KvApp, &state).unwrap();
        assert!(p.reap(&state, 100, 1 << 20).unwrap().len() == 5);
        p.insert(tx(&c, 3), &KvApp, &state).unwrap();
        let out = p.reap(&state, 100, 1 << 20).unwrap();
        assert_eq!(out.len(), 8);
        check_reaped(&p, &state, &out, 100, 1 << 20);
        // The same history gives the same reap.
        assert_eq!(out, p.reap(&state, 100, 1 << 20).unwrap());
    }

    #[test]
    fn reap_skips_a_sender_that_no_longer_fits() {
        let mut p = pool(MempoolConfig {
            max_txs: 100,
            max_bytes: 1 << 20,
            max_tx_bytes: 1 << 20,
            ..small()
        });
        let state = State::new();
        let big = tx_len(&key(1), 0, 2_000);
        let small_tx = tx(&key(2), 0);
        p.insert(big.clone(), &KvApp, &state).unwrap();
        p.insert(tx(&key(1), 1), &KvApp, &state).unwrap();
        p.insert(small_tx.clone(), &KvApp, &state).unwrap();
        // The big one does not fit: its sender's run stops, others go on.
        assert_eq!(p.reap(&state, 100, 1_000).unwrap(), vec![small_tx]);
    }

    #[test]
    fn remove_committed_drops_included_and_stale() {
        let mut p = pool(small());
        let (a, b) = (key(1), key(2));
        let mut state = State::new();
        for n in 0..4 {
            p.insert(tx(&a, n), &KvApp, &state).unwrap();
        }
        p.insert(tx(&b, 0), &KvApp, &state).unwrap();
        // A block included a0, a1 and a *different* a2 (say, from a peer),
        // and b's transaction was not included.
        let other_a2 = tx_len(&a, 2, 3);
        set_next(&mut state, &a, 3);
        p.remove_committed(&[tx(&a, 0), tx(&a, 1), other_a2], &state)
            .unwrap();
        assert_eq!(p.sender_len(&a.public_key()), 1);
        assert!(p.contains(&tx(&a, 3).id()));
        assert!(p.contains(&tx(&b, 0).id()));
        p.check_invariants();
        let out = p.reap(&state, 10, 1 << 20).unwrap();
        assert_eq!(out.len(), 2);
        check_reaped(&p, &state, &out, 10, 1 << 20);
    }

    #[test]
    fn stale_entries_are_pruned_on_insert_and_skipped_by_reap() {
        let mut p = pool(small());
        let a = key(1);
        let mut state = State::new();
        for n in 0..4 {
            p.insert(tx(&a, n), &KvApp, &state).unwrap();
        }
        // The state moved on without remove_committed being told.
        set_next(&mut state, &a, 2);
        let out = p.reap(&state, 10, 1 << 20).unwrap();
        assert_eq!(
            out.iter().map(Transaction::nonce).collect::<Vec<_>>(),
            vec![2, 3]
        );
        // The sender was full; inserting prunes its used nonces first.
        p.insert(tx(&a, 4), &KvApp, &state).unwrap();
        assert_eq!(p.sender_len(&a.public_key()), 3);
        p.check_invariants();
    }

    /// An application that refuses everything.
    struct Deny;

    impl Application for Deny {
        fn name(&self) -> &str {
            "deny"
        }
        fn check_tx(&self, _: &dyn StateView, _: &Transaction) -> Result<(), TxRejection> {
            Err(TxRejection::Unauthorized {
                reason: "closed".to_owned(),
            })
        }
        fn execute_block(
            &self,
            _: &BlockContext,
            _: &mut StateOverlay<'_>,
            _: &[Transaction],
        ) -> Result<Vec<Receipt>, ExecutionError> {
            Ok(Vec::new())
        }
        fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
            Ok(request.to_vec())
        }
    }

    #[test]
    fn application_refusal_admits_nothing() {
        let mut p = pool(small());
        let results = p.insert_batch(vec![tx(&key(1), 0), tx(&key(2), 0)], &Deny, &State::new());
        assert!(results.iter().all(|r| matches!(
            r,
            Err(MempoolError::Rejected(TxRejection::Unauthorized { .. }))
        )));
        assert!(p.is_empty());
    }

    #[test]
    fn errors_display() {
        let e = MempoolError::Full {
            limit: PoolLimit::Bytes,
            current: 10,
            max: 12,
        };
        assert_eq!(e.to_string(), "mempool is full (bytes): 10 of 12 used");
    }

    // ---- property tests ----

    /// A transaction to generate: sender index, nonce offset from the
    /// committed next nonce, payload padding, and whether it is forged or for
    /// another chain.
    #[derive(Debug, Clone)]
    struct Gen {
        sender: u8,
        offset: u8,
        pad: u16,
        forged: bool,
        other_chain: bool,
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(Vec<Gen>),
        Reap {
            max_txs: usize,
            max_bytes: usize,
        },
        Commit {
            max_txs: usize,
        },
        /// The sender's committed nonce advances without the pool being told.
        Advance {
            sender: u8,
            by: u8,
        },
    }

    const SENDERS: u8 = 4;

    fn gen_strategy() -> impl Strategy<Value = Gen> {
        (
            0..SENDERS,
            0u8..10,
            0u16..600,
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(sender, offset, pad, forged, other_chain)| Gen {
                sender,
                offset,
                pad,
                forged,
                other_chain,
            })
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop::collection::vec(gen_strategy(), 1..6).prop_map(Op::Insert),
            2 => (0usize..8, 0usize..3_000).prop_map(|(max_txs, max_bytes)| Op::Reap { max_txs, max_bytes }),
            2 => (0usize..6).prop_map(|max_txs| Op::Commit { max_txs }),
            1 => (0..SENDERS, 1u8..4).prop_map(|(sender, by)| Op::Advance { sender, by }),
        ]
    }

    fn build(g: &Gen, keys: &[SecretKey], state: &State) -> Transaction {
        let signer = &keys[g.sender as usize];
        let next = NonceTracker::next(state, &signer.public_key()).unwrap();
        let nonce = next + u64::from(g.offset);
        let chain_id = if g.other_chain {
            ChainId::new("hz-side").unwrap()
        } else {
            chain()
        };
        let payload = KvApp::payload(b"k", &vec![b'x'; g.pad as usize]);
        if g.forged {
            let f = Forger {
                signs: key(99),
                claims: signer.public_key(),
            };
            Transaction::new_signed(chain_id, &f, nonce, payload).unwrap()
        } else {
            Transaction::new_signed(chain_id, signer, nonce, payload).unwrap()
        }
    }

    fn prop_config() -> MempoolConfig {
        MempoolConfig {
            max_txs: 10,
            max_bytes: 3_000,
            max_per_sender: 4,
            max_tx_bytes: 600,
            max_nonce_gap: 6,
        }
    }

    /// Commits what the pool reaps, as a block would: advances each sender's
    /// nonce past its included transactions.
    fn commit(p: &mut Mempool, state: &mut State, max_txs: usize) {
        let block = p.reap(state, max_txs, 1 << 20).unwrap();
        for t in &block {
            state.insert(
                NonceTracker::key(t.sender()),
                (t.nonce() + 1).to_le_bytes().to_vec(),
            );
        }
        p.remove_committed(&block, state).unwrap();
        for t in &block {
            assert!(!p.contains(&t.id()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn limits_hold_under_random_operations(ops in prop::collection::vec(op_strategy(), 1..30)) {
            let keys: Vec<SecretKey> = (1..=SENDERS).map(key).collect();
            let config = prop_config();
            let mut p = pool(config.clone());
            let mut state = State::new();
            for op in ops {
                match op {
                    Op::Insert(gens) => {
                        let txs: Vec<Transaction> = gens.iter().map(|g| build(g, &keys, &state)).collect();
                        let results = p.insert_batch(txs.clone(), &KvApp, &state);
                        prop_assert_eq!(results.len(), txs.len());
                        for ((r, g), t) in results.iter().zip(&gens).zip(&txs) {
                            match r {
                                Ok(id) => {
                                    prop_assert_eq!(*id, t.id());
                                    prop_assert!(p.contains(id));
                                    prop_assert!(!g.forged && !g.other_chain);
                                }
                                Err(MempoolError::BadSignature { .. }) => prop_assert!(g.forged),
                                Err(MempoolError::WrongChain { .. }) => prop_assert!(g.other_chain),
                                Err(MempoolError::NonceReplayed { .. }) => {
                                    prop_assert!(false, "nonces are generated at or above the committed one");
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    Op::Reap { max_txs, max_bytes } => {
                        let out = p.reap(&state, max_txs, max_bytes).unwrap();
                        check_reaped(&p, &state, &out, max_txs, max_bytes);
                    }
                    Op::Commit { max_txs } => commit(&mut p, &mut state, max_txs),
                    Op::Advance { sender, by } => {
                        let k = &keys[sender as usize];
                        let next = NonceTracker::next(&state, &k.public_key()).unwrap();
                        set_next(&mut state, k, next + u64::from(by));
                    }
                }
                p.check_invariants();
                prop_assert!(p.len() <= config.max_txs);
                prop_assert!(p.bytes() <= config.max_bytes);
                for k in &keys {
                    prop_assert!(p.sender_len(&k.public_key()) <= config.max_per_sender);
                }
                // An unlimited reap returns exactly every sender's
                // contiguous run from its committed nonce.
                let all = p.reap(&state, usize::MAX, usize::MAX).unwrap();
                check_reaped(&p, &state, &all, usize::MAX, usize::MAX);
                let mut runs = 0;
                for k in &keys {
                    let mut n = NonceTracker::next(&state, &k.public_key()).unwrap();
                    let queue = p.senders.get(&k.public_key());
                    while queue.is_some_and(|q| q.contains_key(&n)) {
                        runs += 1;
                        n += 1;
                    }
                }
                prop_assert_eq!(all.len(), runs);
            }
        }

        #[test]
        fn batch_admission_equals_one_at_a_time(ops in prop::collection::vec(op_strategy(), 1..20)) {
            let keys: Vec<SecretKey> = (1..=SENDERS).map(key).collect();
            let mut batched = pool(prop_config());
            let mut single = pool(prop_config());
            let mut state = State::new();
            for op in ops {
                match op {
                    Op::Insert(gens) => {
                        let txs: Vec<Transaction> = gens.iter().map(|g| build(g, &keys, &state)).collect();
                        let a = batched.insert_batch(txs.clone(), &KvApp, &state);
                        let b: Vec<_> = txs.into_iter().map(|t| single.insert(t, &KvApp, &state)).collect();
                        prop_assert_eq!(a, b);
                    }
                    Op::Reap { max_txs, max_bytes } => {
                        prop_assert_eq!(
                            batched.reap(&state, max_txs, max_bytes).unwrap(),
                            single.reap(&state, max_txs, max_bytes).unwrap()
                        );
                    }
                    Op::Commit { max_txs } => {
                        let mut s2 = state.clone();
                        commit(&mut batched, &mut state, max_txs);
                        commit(&mut single, &mut s2, max_txs);
                        prop_assert_eq!(&state, &s2);
                    }
                    Op::Advance { .. } => {}
                }
                prop_assert_eq!(batched.len(), single.len());
                prop_assert_eq!(batched.bytes(), single.bytes());
            }
        }
    }
}
