//! perf-report rows for the `core` area: smt.
//!
//! - `smt_update_100k` (`updates/s`): 100,000 random-key inserts in 10
//!   batches of 10,000, one version each, written to the in-memory store, on
//!   one thread; against the `jmt` crate (0.12, SHA-256, an in-memory
//!   store like its `MockTreeStore`) doing the same inserts.
//! - `smt_proof_verify` (`us`): verifying a membership proof in a 1M-key
//!   tree; against as many sequential 64-byte keyed BLAKE3 hashes as the
//!   proof has hashes to compute (`blake3_keyed_hash_64B_x_depth`).
//! - `smt_nonmembership_siblings_1m` (`siblings`): average siblings in a
//!   non-membership proof for random absent keys in a 1M-key tree; against
//!   `log2(1,000,000)`.
//!
//! The tree is suite-threaded (`SparseMerkleTree::new(store, hf)`); the
//! sm2-sm3 rows run the same code under [`HashFunction::Sm3`]:
//! - `smt_update_100k_sm3` (`updates/s`): the `smt_update_100k` workload
//!   under SM3; against `smt_update_100k_blake3`, the same workload under
//!   BLAKE3 sampled interleaved with it (the BLAKE3 figure of this pair is
//!   the `smt_update_100k` row's measurement repeated beside SM3; the ratio
//!   is what the national-standard hash costs the state tree).
//! - `smt_proof_verify_sm3` (`us`): verifying a membership proof in a
//!   1M-key SM3 tree; against `sm3_hash_node_x_depth`, as many sequential
//!   SM3 node hashes ([`HashFunction::hash_node`] under its domain prefix)
//!   as the proof has hashes to compute — the raw SM3 bound, as
//!   `blake3_keyed_hash_64B_x_depth` is BLAKE3's.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use govchain_core::hash::{Domain, Hash, HashFunction};
use govchain_core::smt::{KeyHash, MemoryNodeStore, SparseMerkleProof, SparseMerkleTree};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{median_time, progress, Row};

/// Random 32-byte key hashes and 32-byte values, from a fixed seed.
pub fn random_entries(n: usize, seed: u64) -> Vec<([u8; 32], Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            let mut v = vec![0u8; 32];
            rng.fill_bytes(&mut v);
            (k, v)
        })
        .collect()
}

/// Inserts `entries` into a fresh govchain tree, `batches` versions, writing
/// each batch to a [`MemoryNodeStore`]. Returns the store, the last root and
/// the time spent in `apply_batch` and `write_batch` (inputs are prepared
/// beforehand and the store is dropped afterwards, outside the timing).
pub fn govchain_insert(
    entries: &[([u8; 32], Vec<u8>)],
    batches: usize,
) -> (MemoryNodeStore, Hash, Duration) {
    govchain_insert_with(HashFunction::Blake3, entries, batches)
}

/// [`govchain_insert`] with the tree hashing under `hf`.
pub fn govchain_insert_with(
    hf: HashFunction,
    entries: &[([u8; 32], Vec<u8>)],
    batches: usize,
) -> (MemoryNodeStore, Hash, Duration) {
    let store = MemoryNodeStore::new();
    let mut root = Hash::ZERO;
    let per = entries.len().div_ceil(batches.max(1)).max(1);
    let inputs: Vec<Vec<_>> = entries
        .chunks(per)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(k, v)| (KeyHash::from_hash(Hash::from_bytes(*k)), Some(v.clone())))
                .collect()
        })
        .collect();
    let mut base = None;
    let start = Instant::now();
    for (i, updates) in inputs.iter().enumerate() {
        let version = i as u64 + 1;
        match SparseMerkleTree::new(&store, hf).apply_batch(base, version, updates) {
            Ok((r, batch)) => {
                root = r;
                if let Err(e) = store.write_batch(batch) {
                    progress(&format!("smt: write_batch failed: {e}"));
                }
            }
            Err(e) => progress(&format!("smt: apply_batch failed: {e}")),
        }
        base = Some(version);
    }
    let elapsed = start.elapsed();
    drop(inputs);
    (store, root, elapsed)
}

/// The `jmt` 0.12 baseline: an in-memory node and value store with the
/// layout of jmt's own `MockTreeStore` (hash maps behind a lock).
pub mod jmt_baseline {
    use super::*;
    use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
    use jmt::{OwnedValue, Version};

    type History = Vec<(Version, Option<OwnedValue>)>;

    /// In-memory jmt store.
    #[derive(Default)]
    pub struct JmtStore {
        nodes: RwLock<HashMap<NodeKey, Node>>,
        values: RwLock<HashMap<jmt::KeyHash, History>>,
    }

    impl JmtStore {
        /// Writes a tree update batch.
        pub fn write(&self, batch: TreeUpdateBatch) {
            let mut nodes = self.nodes.write().unwrap_or_else(|e| e.into_inner());
            for (k, n) in batch.node_batch.nodes() {
                nodes.insert(k.clone(), n.clone());
            }
            let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
            for ((version, key), value) in batch.node_batch.values() {
                values
                    .entry(*key)
                    .or_default()
                    .push((*version, value.clone()));
            }
        }
    }

    impl TreeReader for JmtStore {
        fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
            Ok(self
                .nodes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(node_key)
                .cloned())
        }

        fn get_value_option(
            &self,
            max_version: Version,
            key_hash: jmt::KeyHash,
        ) -> anyhow::Result<Option<OwnedValue>> {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            Ok(values.get(&key_hash).and_then(|h| {
                h.iter()
                    .rev()
                    .find(|(v, _)| *v <= max_version)
                    .and_then(|(_, value)| value.clone())
            }))
        }

        fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
            Ok(None)
        }
    }

    /// Inserts `entries` into a fresh jmt (SHA-256) in `batches` versions;
    /// returns the store and the time spent in `put_value_set` and writing.
    pub fn insert(entries: &[([u8; 32], Vec<u8>)], batches: usize) -> (JmtStore, Duration) {
        let store = JmtStore::default();
        let per = entries.len().div_ceil(batches.max(1)).max(1);
        let inputs: Vec<Vec<_>> = entries
            .chunks(per)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|(k, v)| (jmt::KeyHash(*k), Some(v.clone())))
                    .collect()
            })
            .collect();
        let start = Instant::now();
        for (i, set) in inputs.into_iter().enumerate() {
            let tree = jmt::Sha256Jmt::new(&store);
            match tree.put_value_set(set, i as Version) {
                Ok((_, batch)) => store.write(batch),
                Err(e) => progress(&format!("jmt: put_value_set failed: {e}")),
            }
        }
        (store, start.elapsed())
    }
}

/// Median of `runs` timings (after one warm-up), each run's own measurement
/// excluding setup and teardown.
fn median_of<F: FnMut() -> Duration>(runs: usize, mut f: F) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs.max(1)).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

fn one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
        Ok(pool) => Some(pool.install(f)),
        Err(e) => {
            progress(&format!("smt: no rayon pool: {e}"));
            None
        }
    }
}

/// Measures and prints this module's rows.
pub fn report() {
    update_rows();
    proof_rows(HashFunction::Blake3);
    proof_rows(HashFunction::Sm3);
}

fn update_rows() {
    const N: usize = 100_000;
    const BATCHES: usize = 10;
    let entries = random_entries(N, 1);
    progress("smt: 100k inserts, govchain (1 thread)");
    let Some(ours) = one_thread(|| median_of(5, || govchain_insert(&entries, BATCHES).2)) else {
        return;
    };
    progress("smt: 100k inserts, jmt 0.12 (1 thread)");
    let Some(theirs) = one_thread(|| median_of(2, || jmt_baseline::insert(&entries, BATCHES).1))
    else {
        return;
    };
    let rate = |d: std::time::Duration| N as f64 / d.as_secs_f64();
    Row::new(
        "core",
        "smt_update_100k",
        rate(ours),
        "updates/s",
        "jmt_0.12",
        rate(theirs),
    )
    .emit();

    progress("smt: 100k inserts, SM3 and BLAKE3 interleaved (1 thread)");
    let Some([sm3, blake3]) = one_thread(|| {
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (hf, s) in [HashFunction::Sm3, HashFunction::Blake3]
                .into_iter()
                .zip(samples.iter_mut())
            {
                s.push(govchain_insert_with(hf, &entries, BATCHES).2);
            }
        }
        samples.map(|mut s| {
            s.sort();
            s[s.len() / 2]
        })
    }) else {
        return;
    };
    Row::new(
        "core",
        "smt_update_100k_sm3",
        rate(sm3),
        "updates/s",
        "smt_update_100k_blake3",
        rate(blake3),
    )
    .emit();
}

/// The proof rows of the tree under `hf`: BLAKE3 gives the original rows
/// (`smt_proof_verify`, `smt_nonmembership_siblings_1m`), SM3 gives
/// `smt_proof_verify_sm3` (the sibling count does not depend on the hash).
fn proof_rows(hf: HashFunction) {
    const N: usize = 1_000_000;
    progress(&format!("smt: building a 1M-key tree ({})", hf.name()));
    let entries = random_entries(N, 2);
    let start = Instant::now();
    let (store, root, _) = govchain_insert_with(hf, &entries, 1);
    progress(&format!(
        "smt: 1M-key tree built in {:.2?}",
        start.elapsed()
    ));
    let tree = SparseMerkleTree::new(&store, hf);

    // Membership proofs of random present keys.
    let samples = 2_000;
    let mut proofs: Vec<(KeyHash, Vec<u8>, SparseMerkleProof)> = Vec::with_capacity(samples);
    for (k, v) in entries.iter().step_by(N / samples).take(samples) {
        let key = KeyHash::from_hash(Hash::from_bytes(*k));
        if let Ok((_, proof)) = tree.get_with_proof(&key, 1) {
            proofs.push((key, v.clone(), proof));
        }
    }
    if proofs.is_empty() {
        progress("smt: no proofs");
        return;
    }
    let ok = proofs
        .iter()
        .all(|(k, v, p)| p.verify(hf, &root, k, Some(v)).is_ok());
    if !ok {
        progress("smt: a membership proof failed to verify");
    }
    let verify = median_time(7, || {
        for (k, v, p) in &proofs {
            let _ = black_box(p.verify(hf, black_box(&root), k, Some(v)));
        }
    });
    let per_proof_us = verify.as_secs_f64() * 1e6 / proofs.len() as f64;
    // Baseline: as many sequential 64-byte keyed hashes as a proof computes
    // (one per sibling, plus the leaf and the value).
    let avg_hashes = proofs
        .iter()
        .map(|(_, _, p)| p.siblings.len() + 2)
        .sum::<usize>() as f64
        / proofs.len() as f64;
    let chain = avg_hashes.round() as usize;
    let reps = proofs.len();
    let base = median_time(7, || {
        let mut h = Hash::ZERO;
        for _ in 0..reps {
            for _ in 0..chain {
                h = hf.hash_node(Domain::SmtNode, black_box(&h), &root);
            }
        }
        black_box(h);
    });
    let base_us = base.as_secs_f64() * 1e6 / reps as f64;
    let (metric, baseline) = match hf {
        HashFunction::Sm3 => ("smt_proof_verify_sm3", "sm3_hash_node_x_depth"),
        _ => ("smt_proof_verify", "blake3_keyed_hash_64B_x_depth"),
    };
    Row::new("core", metric, per_proof_us, "us", baseline, base_us).emit();
    if hf != HashFunction::Blake3 {
        return;
    }

    // Non-membership proofs of random absent keys.
    let absent = random_entries(10_000, 3);
    let mut total = 0usize;
    let mut count = 0usize;
    for (k, _) in &absent {
        let key = KeyHash::from_hash(Hash::from_bytes(*k));
        if let Ok((None, proof)) = tree.get_with_proof(&key, 1) {
            if proof.verify(hf, &root, &key, None).is_ok() {
                total += proof.siblings.len();
                count += 1;
            }
        }
    }
    Row::new(
        "core",
        "smt_nonmembership_siblings_1m",
        total as f64 / count.max(1) as f64,
        "siblings",
        "log2_keys",
        (N as f64).log2(),
    )
    .emit();
}
