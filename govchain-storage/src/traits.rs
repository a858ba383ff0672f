//! The store traits: [`BlockStore`] and [`StateStore`].

use govchain_core::block::Block;
use govchain_core::cert::CommitCertificate;
use govchain_core::hash::{Hash, HashFunction};
use govchain_core::smt::{NodeStore, TreeUpdateBatch, Version};
use govchain_core::types::Height;

use crate::error::StorageError;

/// A committed block with the certificate that proves its commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// The committed blocks of one chain, in height order.
///
/// # Contract
/// - **Durability.** When [`append`](Self::append) returns `Ok`, the block,
///   its certificate and the state batch are *acknowledged*: for a durable
///   implementation they survive a crash or power loss at any later moment,
///   and after reopening are returned byte for byte. Until it returns `Ok`
///   nothing of the append is visible to readers, and after a crash either
///   all of it is there or none of it.
/// - **Atomicity.** A block and its state version are committed together:
///   [`latest_height`](Self::latest_height) always equals the latest state
///   version written by `append`.
/// - **Errors.** A caller error (wrong height, parent, chain, certificate or
///   version) writes nothing and leaves the store usable. An I/O error
///   during a write *poisons* a durable handle: every later write returns
///   [`StorageError::Poisoned`] until the store is reopened, which recovers
///   at least to the last acknowledged block. The block of the failed
///   append itself may be there after the reopen — whole, never in part —
///   if it had become durable before the failure (for [`DurableStore`],
///   once its log frame was synced). Reads of acknowledged blocks keep
///   working on a poisoned handle.
///
/// [`DurableStore`]: crate::DurableStore
/// - **Corruption** is reported as [`StorageError::Corruption`], never served
///   and never skipped.
/// - **Pruning.** After `prune_blocks_below(h)`, heights below `h` return
///   [`StorageError::Pruned`]; the latest block is never pruned.
pub trait BlockStore: Send + Sync {
    /// Appends the block at `latest_height() + 1`, its commit certificate,
    /// and the state batch its execution produced (whose version must equal
    /// the block height), atomically and durably.
    fn append(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError>;

    /// Appends consecutive blocks from `latest_height() + 1` on, with one
    /// coalesced state batch ([`CoalescedUpdates`]) standing for all their
    /// versions: the batch's version is the last block's height, its root
    /// that block's state root, and its entries lie at the blocks' heights.
    /// Atomic and durable like [`append`](Self::append): after a crash
    /// either every block is there or none is.
    ///
    /// The versions of the blocks before the last were never written, so
    /// the store prunes below the last: state versions below it become
    /// unreadable ([`StorageError::Pruned`]), as after
    /// [`prune_state_below`](StateStore::prune_state_below) of the last
    /// height. (The blocks themselves stay readable.) A node uses this
    /// when catching up on blocks whose state it would not retain anyway.
    ///
    /// [`CoalescedUpdates`]: govchain_core::smt::CoalescedUpdates
    fn append_coalesced(
        &self,
        blocks: &[(&Block, &CommitCertificate)],
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError>;

    /// The block at `height` and its certificate; `None` above the latest
    /// height (and at height 0).
    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError>;

    /// The hash of the block at `height`: `None` where
    /// [`block`](Self::block) is `None`, and the same errors. A store with
    /// an index answers without reading the block (opening a chain asks for
    /// every height).
    fn block_hash(&self, height: Height) -> Result<Option<Hash>, StorageError> {
        Ok(self.block(height)?.map(|b| b.block.hash()))
    }

    /// The ids of the transactions of the block at `height`, in block
    /// order: `None` where [`block`](Self::block) is `None`, and the same
    /// errors. A store with an index answers without decoding the block.
    fn block_tx_ids(&self, height: Height) -> Result<Option<Vec<Hash>>, StorageError> {
        Ok(self.block(height)?.map(|b| {
            b.block
                .transactions
                .iter()
                .map(govchain_core::tx::Transaction::id)
                .collect()
        }))
    }

    /// The height of the block with hash `hash`, if it is stored.
    fn height_of(&self, hash: &Hash) -> Result<Option<Height>, StorageError>;

    /// The block with hash `hash` and its certificate, if stored.
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<StoredBlock>, StorageError> {
        match self.height_of(hash)? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// The height of the latest block; height 0 if there is none.
    fn latest_height(&self) -> Result<Height, StorageError>;

    /// The lowest height still stored (1 unless pruned); `None` if empty.
    fn oldest_height(&self) -> Result<Option<Height>, StorageError>;

    /// Deletes the blocks below `height` (capped at the latest height).
    fn prune_blocks_below(&self, height: Height) -> Result<(), StorageError>;
}

/// The versioned authenticated state: the sparse Merkle tree's nodes and
/// values, one version per height, readable through [`NodeStore`].
///
/// # Contract
/// - **Atomicity.** [`commit_state`](Self::commit_state) writes a whole
///   [`TreeUpdateBatch`] or nothing; readers never see part of a version.
/// - **Durability and errors** are as for [`BlockStore`]; state versions
///   written by [`BlockStore::append`] are committed in the same atomic
///   write as their block.
/// - **Versions** only increase. Every version from
///   [`oldest_readable_version`](NodeStore::oldest_readable_version) up to
///   [`latest_version`](Self::latest_version) can be read.
pub trait StateStore: NodeStore<Error = StorageError> {
    /// The latest version written, if any.
    fn latest_version(&self) -> Result<Option<Version>, StorageError>;

    /// Writes the genesis state: version 0, before the first block and
    /// before any other state version. Every later version is written by
    /// [`BlockStore::append`] together with its block.
    fn commit_state(&self, batch: TreeUpdateBatch) -> Result<(), StorageError>;

    /// Deletes the nodes and values that only versions below `version` use
    /// (capped at the latest version); those versions become unreadable.
    fn prune_state_below(&self, version: Version) -> Result<(), StorageError>;

    /// The root hash of `version` under `hf` (the chain's hash function):
    /// the hash of the root node the version wrote. `None` if the version
    /// was never written. (Stored nodes do not record the hash function, so
    /// the caller names it.)
    fn state_root(&self, hf: HashFunction, version: Version) -> Result<Option<Hash>, StorageError> {
        Ok(self
            .get_node(&govchain_core::smt::NodeKey::root(version))?
            .map(|n| n.hash(hf)))
    }
}

/// Checks that `block`/`cert` can follow a store whose latest block is
/// `latest` with hash `latest_hash`, on chain `chain`, with `state_latest`.
pub(crate) fn check_append(
    chain: &str,
    latest: u64,
    latest_hash: Hash,
    state_latest: Option<Version>,
    block: &Block,
    cert: &CommitCertificate,
    batch: &TreeUpdateBatch,
) -> Result<(), StorageError> {
    check_follows(chain, latest, latest_hash, block, cert)?;
    check_batch_root(state_latest, block, batch)
}

/// Checks that `blocks` continue a store whose latest block is `latest`
/// with hash `latest_hash`, one after the other, and that `batch` can be
/// their coalesced state (see [`BlockStore::append_coalesced`]). Returns
/// the first block's height, the batch's first version.
pub(crate) fn check_coalesced(
    chain: &str,
    latest: u64,
    latest_hash: Hash,
    state_latest: Option<Version>,
    blocks: &[(&Block, &CommitCertificate)],
    batch: &TreeUpdateBatch,
) -> Result<u64, StorageError> {
    let Some((last, _)) = blocks.last() else {
        return Err(StorageError::InvalidBatch {
            reason: "a coalesced append needs at least one block",
        });
    };
    let (mut height, mut hash) = (latest, latest_hash);
    for (block, cert) in blocks {
        check_follows(chain, height, hash, block, cert)?;
        height = block.header.height.get();
        hash = block.hash();
    }
    let first = latest.saturating_add(1);
    if let Some(v) = state_latest.filter(|v| *v >= first) {
        return Err(StorageError::UnexpectedVersion {
            expected: first,
            got: v,
        });
    }
    check_batch_root(state_latest, last, batch)?;
    if batch
        .entry_versions()
        .any(|v| !(first..=batch.version).contains(&v))
    {
        return Err(StorageError::InvalidBatch {
            reason: "coalesced batch has an entry outside its blocks' heights",
        });
    }
    Ok(first)
}

/// The block and certificate checks of [`check_append`].
pub(crate) fn check_follows(
    chain: &str,
    latest: u64,
    latest_hash: Hash,
    block: &Block,
    cert: &CommitCertificate,
) -> Result<(), StorageError> {
    let h = &block.header;
    if h.chain_id.as_str() != chain {
        return Err(StorageError::ForeignBlock {
            expected: chain.to_owned(),
            got: h.chain_id.to_string(),
        });
    }
    let expected = latest.saturating_add(1);
    if h.height.get() != expected {
        return Err(StorageError::UnexpectedHeight {
            expected: Height::new(expected),
            got: h.height,
        });
    }
    let parent = if latest == 0 { Hash::ZERO } else { latest_hash };
    if h.parent_hash != parent {
        return Err(StorageError::ParentMismatch {
            height: h.height,
            expected: parent,
            got: h.parent_hash,
        });
    }
    let hash = block.hash();
    if cert.chain_id != h.chain_id || cert.height != h.height || cert.block_hash != hash {
        return Err(StorageError::CertificateMismatch {
            height: h.height,
            block_hash: hash,
        });
    }
    Ok(())
}

/// The state batch checks of [`check_append`]: `batch` is the version of
/// `block`'s height, above `state_latest`, with `block`'s state root.
pub(crate) fn check_batch_root(
    state_latest: Option<Version>,
    block: &Block,
    batch: &TreeUpdateBatch,
) -> Result<(), StorageError> {
    let h = &block.header;
    let expected = h.height.get();
    if batch.version != expected || state_latest.is_some_and(|v| v >= expected) {
        return Err(StorageError::UnexpectedVersion {
            expected,
            got: batch.version,
        });
    }
    let root = govchain_core::smt::NodeKey::root(expected);
    let root_node = batch.nodes.iter().find(|(k, _)| *k == root);
    let batch_root = root_node.map_or(Hash::ZERO, |(_, n)| n.hash(h.suite.hash_function()));
    if root_node.is_none() || batch_root != h.state_root {
        return Err(StorageError::BatchRootMismatch {
            height: h.height,
            header: h.state_root,
            batch: batch_root,
        });
    }
    Ok(())
}

/// Checks that `batch` may be written by `commit_state`: the genesis
/// version 0, into a store with no blocks and no state.
pub(crate) fn check_genesis(
    latest_block: u64,
    state_latest: Option<Version>,
    batch: &TreeUpdateBatch,
) -> Result<(), StorageError> {
    if latest_block != 0 || state_latest.is_some() {
        return Err(StorageError::InvalidBatch {
            reason: "commit_state only writes the genesis state, before anything else",
        });
    }
    if batch.version != 0 {
        return Err(StorageError::UnexpectedVersion {
            expected: 0,
            got: batch.version,
        });
    }
    Ok(())
}
