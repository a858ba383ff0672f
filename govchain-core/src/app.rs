//! The [`Application`] trait: what a DApp implements to run on a chain.
//!
//! It is ABCI-like (Tendermint's application interface) and deliberately
//! small:
//! - [`Application::check_tx`] decides whether a transaction may enter the
//!   mempool or a proposal, reading committed state;
//! - [`Application::execute_block`] runs a decided block's transactions in
//!   order against a [`StateOverlay`] of the committed state, writing key-value
//!   changes and returning one [`Receipt`] per transaction. The host then
//!   applies the overlay's writes to the authenticated state tree, which gives
//!   the new state root recorded in the header;
//! - [`Application::query_key`] maps an application query to the state key
//!   that answers it, so that the host can return the value with a proof
//!   against a verified header.
//!
//! # Determinism contract
//! `execute_block` must be a pure function of the committed state, the block
//! context and the transactions: no clocks, randomness, I/O or hash-map
//! iteration order. Every validator must compute the same writes, or the
//! chain's state roots diverge and the block is not certified. Transaction
//! signatures and chain ids are verified by the host before `check_tx` and
//! `execute_block` see them; replay protection by nonce is the application's
//! duty (see [`NonceTracker`]).

use std::collections::BTreeMap;

use crate::codec::{encode_bytes, Decode, DecodeError, Encode, Reader};
use crate::crypto::{CryptoSuite, PublicKey};
use crate::hash::{Domain, Hash, HashFunction};
use crate::tx::Transaction;
use crate::types::{ChainId, Height, Timestamp};

/// A failure to read state (storage error, pruned version, corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state read failed: {reason}")]
pub struct StateError {
    /// What went wrong, from the storage layer.
    pub reason: String,
}

/// Read access to a chain's state at one version.
pub trait StateView {
    /// The value stored at `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
}

impl StateView for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// Pending writes over a base [`StateView`]. Reads see the writes made so far
/// in this block; [`StateOverlay::into_writes`] yields them in key order.
pub struct StateOverlay<'a> {
    base: &'a dyn StateView,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> StateOverlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateView) -> Self {
        StateOverlay {
            base,
            writes: BTreeMap::new(),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The writes, in ascending key order; `None` deletes.
    pub fn into_writes(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.writes.into_iter().collect()
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

impl StateView for StateOverlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

/// What a block's execution may know about the block, besides its
/// transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain.
    pub chain_id: ChainId,
    /// The block's height.
    pub height: Height,
    /// The block's consensus time.
    pub time: Timestamp,
    /// The proposer.
    pub proposer: PublicKey,
    /// The chain's crypto suite: applications hash anything the chain
    /// commits to (state keys, content hashes) under it, and admit only keys
    /// of its algorithm.
    pub suite: CryptoSuite,
}

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction's id.
    pub tx_id: Hash,
    /// `0` for success; any other value is an application-defined failure
    /// code. A failed transaction is still in the block and its nonce is
    /// still used, but its writes are the application's to discard.
    pub code: u32,
    /// Application-defined result bytes (events, return values). Never
    /// personal data.
    pub data: Vec<u8>,
}

impl Receipt {
    /// Most result bytes a receipt may carry.
    pub const MAX_DATA_LEN: usize = 64 * 1024;

    /// A successful receipt with no data.
    pub fn ok(tx_id: Hash) -> Self {
        Receipt {
            tx_id,
            code: 0,
            data: Vec::new(),
        }
    }

    /// Whether the transaction succeeded.
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }

    /// The receipt's hash.
    pub fn hash(&self) -> Hash {
        Hash::of(Domain::Receipt, &self.to_bytes())
    }
}

impl Encode for Receipt {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.tx_id.encode_to(out);
        self.code.encode_to(out);
        encode_bytes(&self.data, out);
    }
}

impl Decode for Receipt {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Receipt {
            tx_id: Hash::decode_from(r)?,
            code: u32::decode_from(r)?,
            data: r.bytes("receipt data", Receipt::MAX_DATA_LEN)?.to_vec(),
        })
    }
}

/// Why the application refused a transaction in `check_tx`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxRejection {
    /// The nonce was already used or skips ahead.
    #[error("bad nonce for sender: expected {expected}, got {got}")]
    BadNonce {
        /// The next nonce the sender may use.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The payload is not a valid operation for this application.
    #[error("invalid payload: {reason}")]
    InvalidPayload {
        /// Why.
        reason: String,
    },
    /// The sender may not perform this operation.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why.
        reason: String,
    },
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why a block could not be executed at all. This is a host or state failure,
/// not a transaction failure (those are receipts with non-zero codes); the
/// host must stop rather than commit a partial result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutionError {
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The application hit an internal inconsistency.
    #[error("application fault: {reason}")]
    Fault {
        /// Why.
        reason: String,
    },
}

/// Why a query could not be resolved to a state key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The request is not understood.
    #[error("bad query: {reason}")]
    BadRequest {
        /// Why.
        reason: String,
    },
}

/// A DApp hosted on a chain. See the module docs for the contract.
pub trait Application: Send + Sync {
    /// A short stable name, for logs.
    fn name(&self) -> &str;

    /// Decides whether `tx` may enter the mempool or a proposal, against
    /// committed state. Must not write.
    fn check_tx(&self, state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection>;

    /// Executes a decided block's transactions in order, writing into
    /// `state`, and returns one receipt per transaction, in order.
    fn execute_block(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError>;

    /// Maps an application query to the state key whose value (with its
    /// proof) answers it.
    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError>;
}

/// Per-sender nonce bookkeeping in state, for applications that want the
/// standard rule: each sender's nonces are used in order, starting at 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct NonceTracker;

impl NonceTracker {
    /// The state key holding `sender`'s next nonce.
    pub fn key(sender: &PublicKey) -> Vec<u8> {
        let mut key = b"nonce/".to_vec();
        sender.encode_to(&mut key);
        key
    }

    /// The next nonce `sender` may use.
    pub fn next(state: &dyn StateView, sender: &PublicKey) -> Result<u64, StateError> {
        match state.get(&Self::key(sender))? {
            None => Ok(0),
            Some(bytes) => Self::decode_value(&bytes),
        }
    }

    /// The nonce stored under [`NonceTracker::key`] (8 bytes, little
    /// endian), as read from state or from a node's state query.
    pub fn decode_value(bytes: &[u8]) -> Result<u64, StateError> {
        let arr: [u8; 8] = bytes.try_into().map_err(|_| StateError {
            reason: "nonce value is not 8 bytes".to_owned(),
        })?;
        Ok(u64::from_le_bytes(arr))
    }

    /// Checks that `tx` carries `sender`'s next nonce.
    pub fn check(state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        let expected = Self::next(state, tx.sender())?;
        if tx.nonce() == expected {
            Ok(())
        } else {
            Err(TxRejection::BadNonce {
                expected,
                got: tx.nonce(),
            })
        }
    }

    /// Checks that `tx`'s nonce has not been used yet (it is at or above the
    /// sender's next nonce in committed state). This is the `check_tx` rule:
    /// several transactions of one sender may wait in the mempool at once,
    /// and the mempool orders them; execution then enforces the exact order
    /// with [`NonceTracker::check_and_advance`].
    pub fn check_not_replayed(state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        let expected = Self::next(state, tx.sender())?;
        if tx.nonce() >= expected {
            Ok(())
        } else {
            Err(TxRejection::BadNonce {
                expected,
                got: tx.nonce(),
            })
        }
    }

    /// Checks `tx`'s nonce against the overlay and, if it is the next one,
    /// advances it.
    pub fn check_and_advance(
        state: &mut StateOverlay<'_>,
        tx: &Transaction,
    ) -> Result<(), TxRejection> {
        Self::check(state, tx)?;
        let next = tx.nonce().saturating_add(1);
        state.put(Self::key(tx.sender()), next.to_le_bytes().to_vec());
        Ok(())
    }
}

/// A [`StateView`] over one version of a sparse Merkle tree: application
/// keys are hashed with [`KeyHash::of`](crate::smt::KeyHash::of) under the
/// chain's hash function. `version` `None` is the empty genesis state.
pub struct TreeStateView<'a, S: crate::smt::NodeStore> {
    store: &'a S,
    hf: HashFunction,
    version: Option<crate::smt::Version>,
}

impl<'a, S: crate::smt::NodeStore> TreeStateView<'a, S> {
    /// A view of `store` at `version`, whose keys are hashed under `hf` (the
    /// chain's hash function).
    pub fn new(store: &'a S, hf: HashFunction, version: Option<crate::smt::Version>) -> Self {
        TreeStateView { store, hf, version }
    }
}

impl<S: crate::smt::NodeStore> StateView for TreeStateView<'_, S> {
    /// Reads the value index directly ([`NodeStore::get_value`]: the value
    /// written at the greatest version `<=` the view's), one lookup instead
    /// of a walk from the root; the tree and the index are written in the
    /// same batch, so both give the same answer (the SMT model test checks
    /// it against the tree walk).
    ///
    /// [`NodeStore::get_value`]: crate::smt::NodeStore::get_value
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.version {
            None => Ok(None),
            Some(version) => self
                .store
                .get_value(&crate::smt::KeyHash::of(self.hf, key), version)
                .map_err(|e| StateError {
                    reason: e.to_string(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;
    use crate::crypto::{SecretKey, Signer};

    fn tx(key: &SecretKey, nonce: u64) -> Transaction {
        Transaction::new_signed(ChainId::new("main").unwrap(), key, nonce, b"p".to_vec()).unwrap()
    }

    #[test]
    fn overlay_reads_its_own_writes_and_sorts_them() {
        let mut base = BTreeMap::new();
        base.insert(b"a".to_vec(), b"1".to_vec());
        base.insert(b"b".to_vec(), b"2".to_vec());
        let mut overlay = StateOverlay::new(&base);
        assert!(overlay.is_empty());
        overlay.put(b"c".to_vec(), b"3".to_vec());
        overlay.delete(b"a".to_vec());
        overlay.put(b"b".to_vec(), b"22".to_vec());
        assert_eq!(overlay.get(b"a").unwrap(), None);
        assert_eq!(overlay.get(b"b").unwrap(), Some(b"22".to_vec()));
        assert_eq!(overlay.get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(overlay.len(), 3);
        let writes = overlay.into_writes();
        let keys: Vec<_> = writes.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(writes[0].1, None);
        // The base is untouched.
        assert_eq!(base.get(b"a".as_slice()), Some(&b"1".to_vec()));
    }

    #[test]
    fn nonces_are_used_in_order_once() {
        let key = SecretKey::from_seed(&[3; 32]);
        let base: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut overlay = StateOverlay::new(&base);
        assert_eq!(
            NonceTracker::check(&overlay, &tx(&key, 1)),
            Err(TxRejection::BadNonce {
                expected: 0,
                got: 1
            })
        );
        NonceTracker::check_and_advance(&mut overlay, &tx(&key, 0)).unwrap();
        // Replaying nonce 0 in the same block is refused.
        assert_eq!(
            NonceTracker::check_and_advance(&mut overlay, &tx(&key, 0)),
            Err(TxRejection::BadNonce {
                expected: 1,
                got: 0
            })
        );
        NonceTracker::check_and_advance(&mut overlay, &tx(&key, 1)).unwrap();
        assert_eq!(NonceTracker::next(&overlay, &key.public_key()).unwrap(), 2);
        // A future nonce may wait in the mempool; a used one may not.
        assert!(NonceTracker::check_not_replayed(&overlay, &tx(&key, 5)).is_ok());
        assert_eq!(
            NonceTracker::check_not_replayed(&overlay, &tx(&key, 1)),
            Err(TxRejection::BadNonce {
                expected: 2,
                got: 1
            })
        );
        // Another sender has its own sequence.
        let other = SecretKey::from_seed(&[4; 32]);
        assert_eq!(
            NonceTracker::next(&overlay, &other.public_key()).unwrap(),
            0
        );
    }

    #[test]
    fn corrupt_nonce_value_is_a_state_error() {
        let key = SecretKey::from_seed(&[3; 32]);
        let mut base = BTreeMap::new();
        base.insert(NonceTracker::key(&key.public_key()), vec![1, 2, 3]);
        assert!(matches!(
            NonceTracker::check(&base, &tx(&key, 0)),
            Err(TxRejection::State(_))
        ));
    }

    #[test]
    fn receipt_round_trip() {
        let r = Receipt {
            tx_id: Hash::of(Domain::Test, b"t"),
            code: 7,
            data: b"event".to_vec(),
        };
        assert!(!r.is_ok());
        assert!(Receipt::ok(r.tx_id).is_ok());
        let back: Receipt = decode_exact(&r.to_bytes(), 1024).unwrap();
        assert_eq!(back, r);
        assert_ne!(back.hash(), Receipt::ok(r.tx_id).hash());
    }
}
