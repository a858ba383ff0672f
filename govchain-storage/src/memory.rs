//! [`MemoryStore`]: block and state store in memory, for tests and light use.

use std::collections::{BTreeMap, HashMap};

use govchain_core::block::Block;
use govchain_core::cert::CommitCertificate;
use govchain_core::hash::Hash;
use govchain_core::smt::{
    KeyHash, MemoryNodeStore, MemoryStoreError, Node, NodeKey, NodeStore, TreeUpdateBatch, Version,
};
use govchain_core::types::{ChainId, Height};
use parking_lot::RwLock;

use crate::error::StorageError;
use crate::traits::{
    check_append, check_coalesced, check_genesis, BlockStore, StateStore, StoredBlock,
};

#[derive(Default)]
struct Blocks {
    by_height: BTreeMap<u64, StoredBlock>,
    by_hash: HashMap<Hash, u64>,
    latest: u64,
    latest_hash: Hash,
}

/// A [`BlockStore`] and [`StateStore`] held in memory: nothing survives
/// the process. Appends are atomic with respect to readers (one lock covers
/// blocks and state). Cloning is not offered; share it behind an `Arc`.
pub struct MemoryStore {
    chain_id: ChainId,
    blocks: RwLock<Blocks>,
    state: MemoryNodeStore,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("chain_id", &self.chain_id)
            .field("latest", &self.blocks.read().latest)
            .finish()
    }
}

fn mem_err(e: MemoryStoreError) -> StorageError {
    match e {
        MemoryStoreError::VersionNotIncreasing { version, latest } => {
            StorageError::UnexpectedVersion {
                expected: latest.saturating_add(1),
                got: version,
            }
        }
        other => StorageError::corrupt("memory state", other.to_string()),
    }
}

impl MemoryStore {
    /// An empty store for `chain_id`.
    pub fn new(chain_id: ChainId) -> Self {
        MemoryStore {
            chain_id,
            blocks: RwLock::new(Blocks::default()),
            state: MemoryNodeStore::new(),
        }
    }

    /// The chain this store holds.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
}

impl BlockStore for MemoryStore {
    fn append(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        let mut b = self.blocks.write();
        check_append(
            self.chain_id.as_str(),
            b.latest,
            b.latest_hash,
            self.state.latest_version(),
            block,
            certificate,
            &state,
        )?;
        self.state.write_batch(state).map_err(mem_err)?;
        let height = block.header.height.get();
        let hash = block.hash();
        b.by_height.insert(
            height,
            StoredBlock {
                block: block.clone(),
                certificate: certificate.clone(),
            },
        );
        b.by_hash.insert(hash, height);
        b.latest = height;
        b.latest_hash = hash;
        Ok(())
    }

    fn append_coalesced(
        &self,
        blocks: &[(&Block, &CommitCertificate)],
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        let mut b = self.blocks.write();
        let first = check_coalesced(
            self.chain_id.as_str(),
            b.latest,
            b.latest_hash,
            self.state.latest_version(),
            blocks,
            &state,
        )?;
        self.state.write_coalesced(first, state).map_err(mem_err)?;
        for (block, certificate) in blocks {
            let height = block.header.height.get();
            let hash = block.hash();
            b.by_height.insert(
                height,
                StoredBlock {
                    block: (*block).clone(),
                    certificate: (*certificate).clone(),
                },
            );
            b.by_hash.insert(hash, height);
            b.latest = height;
            b.latest_hash = hash;
        }
        Ok(())
    }

    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        let b = self.blocks.read();
        if let Some((&oldest, _)) = b.by_height.first_key_value() {
            if height.get() < oldest && height.get() > 0 {
                return Err(StorageError::Pruned {
                    what: "block",
                    requested: height.get(),
                    oldest,
                });
            }
        }
        Ok(b.by_height.get(&height.get()).cloned())
    }

    fn height_of(&self, hash: &Hash) -> Result<Option<Height>, StorageError> {
        Ok(self
            .blocks
            .read()
            .by_hash
            .get(hash)
            .map(|h| Height::new(*h)))
    }

    fn latest_height(&self) -> Result<Height, StorageError> {
        Ok(Height::new(self.blocks.read().latest))
    }

    fn oldest_height(&self) -> Result<Option<Height>, StorageError> {
        Ok(self
            .blocks
            .read()
            .by_height
            .first_key_value()
            .map(|(h, _)| Height::new(*h)))
    }

    fn prune_blocks_below(&self, height: Height) -> Result<(), StorageError> {
        let mut b = self.blocks.write();
        let below = height.get().min(b.latest);
        let keep = b.by_height.split_off(&below);
        let dropped = std::mem::replace(&mut b.by_height, keep);
        for (_, sb) in dropped {
            b.by_hash.remove(&sb.block.hash());
        }
        Ok(())
    }
}

impl NodeStore for MemoryStore {
    type Error = StorageError;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, StorageError> {
        Ok(self.state.get_node(key).unwrap_or_else(|e| match e {}))
    }

    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .state
            .get_value(key_hash, version)
            .unwrap_or_else(|e| match e {}))
    }

    fn oldest_readable_version(&self) -> Result<Option<Version>, StorageError> {
        Ok(self
            .state
            .oldest_readable_version()
            .unwrap_or_else(|e| match e {}))
    }
}

impl StateStore for MemoryStore {
    fn latest_version(&self) -> Result<Option<Version>, StorageError> {
        Ok(self.state.latest_version())
    }

    fn commit_state(&self, batch: TreeUpdateBatch) -> Result<(), StorageError> {
        let b = self.blocks.write();
        check_genesis(b.latest, self.state.latest_version(), &batch)?;
        self.state.write_batch(batch).map_err(mem_err)
    }

    fn prune_state_below(&self, version: Version) -> Result<(), StorageError> {
        self.state.prune(version);
        Ok(())
    }
}
