//! Shared helpers for the storage integration tests: seeds, a deterministic
//! block workload with real SMT state, and the invariant checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use govchain_core::block::{tx_root_of, Block, BlockHeader};
use govchain_core::cert::{certify, CommitCertificate};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::smt::{
    CoalescedUpdates, KeyHash, MemoryNodeStore, SparseMerkleTree, TreeUpdateBatch,
};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_storage::sim::SimDisk;
use govchain_storage::{
    BlockStore, DurableConfig, DurableStore, StateStore, StorageError, StoredBlock,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub const CHAIN: &str = "hz-main";
pub const DIR: &str = "/store";

pub fn chain() -> ChainId {
    ChainId::new(CHAIN).unwrap()
}

/// The test seed: `GOVCHAIN_SEED` or the clock; printed for replay.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("GOVCHAIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("{test}: GOVCHAIN_SEED={seed}");
    seed
}

/// `GOVCHAIN_STORAGE_SCALE` (default 1, CI 2): scales the crash, fault,
/// bit-flip and kill iterations of the storage suite. It is separate from
/// the consensus simulator's `GOVCHAIN_SIM_SEEDS` budget because the costs
/// differ: the fault test grows quadratically with its workload. Long runs:
/// `GOVCHAIN_STORAGE_SCALE=20 cargo test --release -p govchain-storage`.
pub fn scale() -> u64 {
    std::env::var("GOVCHAIN_STORAGE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

pub fn small_config() -> DurableConfig {
    let mut c = DurableConfig::default();
    c.segment_size = 16 * 1024;
    c.cache_size = 1024 * 1024;
    c
}

pub fn open_sim(disk: &SimDisk) -> Result<DurableStore, StorageError> {
    open_sim_with(disk, small_config())
}

/// [`small_config`] with log compaction on.
pub fn compacting_config() -> DurableConfig {
    let mut c = small_config();
    c.compact_log = true;
    c
}

pub fn open_sim_with(disk: &SimDisk, config: DurableConfig) -> Result<DurableStore, StorageError> {
    DurableStore::open_with(Arc::new(disk.clone()), DIR, chain(), config)
}

pub struct Entry {
    pub block: Block,
    pub cert: CommitCertificate,
    pub batch: TreeUpdateBatch,
    pub root: Hash,
    pub keys: Vec<KeyHash>,
}

/// A deterministic chain: block `h` depends only on the seed and `h`.
pub struct Workload {
    seed: u64,
    signer: SecretKey,
    reference: MemoryNodeStore,
    genesis: TreeUpdateBatch,
    pub entries: Vec<Entry>,
}

pub fn key(i: u64) -> KeyHash {
    KeyHash::of(
        govchain_core::hash::HashFunction::Blake3,
        format!("key-{i}").as_bytes(),
    )
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        let signer = SecretKey::from_seed(&[7u8; 32]);
        let reference = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&reference, govchain_core::hash::HashFunction::Blake3);
        let (_, genesis) = tree
            .apply_batch(None, 0, &[(key(0), Some(b"genesis".to_vec()))])
            .unwrap();
        reference.write_batch(genesis.clone()).unwrap();
        Workload {
            seed,
            signer,
            reference,
            genesis,
            entries: Vec::new(),
        }
    }

    pub fn genesis(&self) -> TreeUpdateBatch {
        self.genesis.clone()
    }

    pub fn reference(&self) -> &MemoryNodeStore {
        &self.reference
    }

    pub fn ensure(&mut self, height: u64) {
        while (self.entries.len() as u64) < height {
            let h = self.entries.len() as u64 + 1;
            let mut rng =
                ChaCha8Rng::seed_from_u64(self.seed ^ h.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut updates: Vec<(KeyHash, Option<Vec<u8>>)> = Vec::new();
            let mut used = std::collections::BTreeSet::new();
            for _ in 0..1 + rng.next_u64() % 4 {
                let k = rng.next_u64() % 48;
                if !used.insert(k) {
                    continue;
                }
                let value = if rng.next_u64() % 5 == 0 {
                    None
                } else {
                    let mut v = vec![0u8; (rng.next_u64() % 40) as usize];
                    rng.fill_bytes(&mut v);
                    Some(v)
                };
                updates.push((key(k), value));
            }
            let tree =
                SparseMerkleTree::new(&self.reference, govchain_core::hash::HashFunction::Blake3);
            let (root, batch) = tree.apply_batch(Some(h - 1), h, &updates).unwrap();
            self.reference.write_batch(batch.clone()).unwrap();
            let txs: Vec<Transaction> = (0..rng.next_u64() % 3)
                .map(|i| {
                    let mut payload = vec![0u8; (rng.next_u64() % 120) as usize];
                    rng.fill_bytes(&mut payload);
                    Transaction::new_signed(chain(), &self.signer, h * 10 + i, payload).unwrap()
                })
                .collect();
            let parent_hash = self.entries.last().map_or(Hash::ZERO, |e| e.block.hash());
            let header = BlockHeader {
                suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
                chain_id: chain(),
                height: Height::new(h),
                time: Timestamp::new(h * 1000),
                parent_hash,
                tx_root: tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &txs),
                tx_count: txs.len() as u32,
                state_root: root,
                history_root: Hash::ZERO,
                validator_set_hash: Hash::ZERO,
                next_validator_set_hash: Hash::ZERO,
                proposer: self.signer.public_key(),
            };
            let block = Block {
                header,
                transactions: txs,
            };
            let cert = certify(
                &chain(),
                Height::new(h),
                Round::new(0),
                block.hash(),
                &[&self.signer],
            );
            self.entries.push(Entry {
                block,
                cert,
                batch,
                root,
                keys: updates.iter().map(|(k, _)| *k).collect(),
            });
        }
    }

    pub fn entry(&self, h: u64) -> &Entry {
        &self.entries[(h - 1) as usize]
    }

    /// Appends blocks `a..=b` to `store` in one coalesced append.
    pub fn append_coalesced<S: BlockStore>(
        &self,
        store: &S,
        a: u64,
        b: u64,
    ) -> Result<(), StorageError> {
        let mut coalesced = CoalescedUpdates::new(a);
        let mut blocks = Vec::new();
        for h in a..=b {
            let e = self.entry(h);
            coalesced.push(e.batch.clone()).unwrap();
            blocks.push((&e.block, &e.cert));
        }
        store.append_coalesced(&blocks, coalesced.into_batch().unwrap())
    }

    /// Appends block `h` to `store`.
    pub fn append<S: BlockStore>(&self, store: &S, h: u64) -> Result<(), StorageError> {
        let e = self.entry(h);
        store.append(&e.block, &e.cert, e.batch.clone())
    }
}

/// Asserts that `got` is block `h` of `wl` with its certificate, byte for
/// byte.
pub fn assert_block(got: &StoredBlock, wl: &Workload, h: u64, what: &str) {
    let e = wl.entry(h);
    assert_eq!(
        got.block.to_bytes(),
        e.block.to_bytes(),
        "{what}: block {h} differs"
    );
    assert_eq!(
        got.certificate.to_bytes(),
        e.cert.to_bytes(),
        "{what}: cert {h} differs"
    );
}

/// The invariants after a crash and reopen:
/// - every acknowledged block (`..= acked`) is there byte for byte;
/// - at most the one in-flight block (`acked + 1`, if `in_flight`) beyond
///   it, and then entirely; nothing else;
/// - the index height equals the state version;
/// - the state root at the latest height equals the replayed one, and
///   values read through the tree match the reference.
pub fn check_invariants(store: &DurableStore, wl: &Workload, acked: u64, in_flight: bool) -> u64 {
    check_invariants_reaching(store, wl, acked, acked + u64::from(in_flight))
}

/// [`check_invariants`] when the append in flight may add several blocks
/// at once (a coalesced append of `acked + 1..=reach`): the latest height
/// is `acked` or `reach`, nothing in between.
pub fn check_invariants_reaching(
    store: &DurableStore,
    wl: &Workload,
    acked: u64,
    reach: u64,
) -> u64 {
    let latest = store.latest_height().unwrap().get();
    assert!(
        latest >= acked,
        "acknowledged block lost: latest {latest} < acked {acked}"
    );
    assert!(
        latest == acked || latest == reach,
        "unacknowledged or partial append visible: latest {latest}, acked {acked}, in flight up to {reach}"
    );
    for h in 1..=latest {
        let got = store.block(Height::new(h)).unwrap().expect("stored block");
        assert_block(&got, wl, h, "after reopen");
        let e = wl.entry(h);
        assert_eq!(
            store.height_of(&e.block.hash()).unwrap(),
            Some(Height::new(h))
        );
        // The index's hash and transaction ids (replayed blocks included).
        assert_eq!(
            store.block_hash(Height::new(h)).unwrap(),
            Some(e.block.hash())
        );
        let ids: Vec<Hash> = e.block.transactions.iter().map(|t| t.id()).collect();
        assert_eq!(store.block_tx_ids(Height::new(h)).unwrap(), Some(ids));
    }
    assert!(store.block(Height::new(latest + 1)).unwrap().is_none());
    if (latest as usize) < wl.entries.len() {
        let next = wl.entry(latest + 1).block.hash();
        assert_eq!(
            store.height_of(&next).unwrap(),
            None,
            "unacknowledged hash indexed"
        );
    }
    if latest > 0 {
        assert_eq!(
            store.latest_version().unwrap(),
            Some(latest),
            "index height != state height"
        );
        assert_eq!(
            store
                .state_root(govchain_core::hash::HashFunction::Blake3, latest)
                .unwrap(),
            Some(wl.entry(latest).root)
        );
        let tree = SparseMerkleTree::new(store, govchain_core::hash::HashFunction::Blake3);
        let reference =
            SparseMerkleTree::new(wl.reference(), govchain_core::hash::HashFunction::Blake3);
        for k in &wl.entry(latest).keys {
            assert_eq!(
                tree.get(k, latest).unwrap(),
                reference.get(k, latest).unwrap()
            );
        }
    }
    latest
}
