//! perf-report rows for the `storage` area: the durable block and state
//! store ([`DurableStore`]: segmented block log plus redb), each against a
//! baseline measured in the same run.
//!
//! Measurements alternate between the value and its baseline round by round
//! (value, baseline, value, …) so that load from other processes on the
//! shared machine hits both alike; rows report medians or percentiles.
//!
//! # Rows
//! - `durable_append_1000tx` (`ms` per block): [`BlockStore::append`] of a
//!   block of 1,000 transactions of 250 encoded bytes each, with a commit
//!   certificate of 4 signatures and a state batch of 16 random-key updates
//!   (the state batch is computed before the clock starts). The append
//!   writes the frame (block, certificate and state batch) and
//!   `fdatasync`s the segment — its durability point — then commits one
//!   redb transaction without a sync; every 64th append
//!   ([`DurableConfig::checkpoint_interval`]) that commit is durable (two
//!   more syncs), which the median does not see. Baseline
//!   `raw_write_fdatasync`: `write` of the *same frame bytes*
//!   ([`encode_frame`], with the state batch) at the end of a plain file,
//!   then `fdatasync` — the least any durable append has to do.
//! - `state_commit_10k` (`updates/s`): one state version of 10,000
//!   random-key updates (32-byte values) into a tree that grows by 10,000
//!   keys a version: [`SparseMerkleTree::apply_batch`] reading the durable
//!   store, plus the [`BlockStore::append`] of an empty block carrying the
//!   batch (nodes, values and stale index in one redb transaction, after the
//!   frame sync). Baseline `redb_plain_insert_10k`: the same 10,000 keys and
//!   values inserted into a plain redb table in one write transaction with
//!   the same commit settings (immediate durability, two-phase commit, same
//!   cache size), on a database that grows alike.
//! - `state_read_p50` / `state_read_p99` (`us`): after those versions
//!   (180,000 keys), [`NodeStore::get_value`] of a random written key at
//!   the latest version — the executor's state-view read: a value-index
//!   lookup, then, unless the key was written at that very version, the
//!   walk of the state tree to its leaf and the BLAKE3 check of the value
//!   against it. Baselines `redb_plain_get_p50` / `_p99`: a read
//!   transaction and a point get of a random key of the plain table above,
//!   copying the value out.
//! - `reopen_{N}_blocks` (`ms`): clean close, then [`DurableStore::open`]
//!   with the default configuration on a store of N = 100,000 small
//!   blocks; baseline `reopen_{N/10}_blocks`, the same on a store ten times
//!   shorter. After a clean shutdown the default runs no integrity check
//!   (index pages are verified when read instead), so a ratio near 1 means
//!   reopen time does not grow with the chain.
//!   `reopen_{N}_blocks_trusting_clean_shutdown` repeats that row under its
//!   name from before format 4, when trusting a clean shutdown was opt-in.
//!   `reopen_{N}_blocks_forced_index_check`: with
//!   [`DurableConfig::force_index_check_on_open`] on (the default before
//!   the verified reads), redb's integrity check reads the whole index, so
//!   this ratio grows with the chain. `reopen_{N}_blocks_no_index_check`
//!   has [`DurableConfig::check_index_on_open`] off, so no check runs even
//!   after an unclean shutdown: what recovery itself costs (after this
//!   clean close, the same work as the default). Page cache warm.
//! - `read_by_height_p50` / `read_by_height_p99` (`us`): [`BlockStore::block`]
//!   at uniformly random heights of the N-block store (index lookup, frame
//!   read, CRC, decode, hash check against the index, certificate decode);
//!   baselines `redb_point_get_p50` / `_p99`: a read transaction and one
//!   point get, copying the value out, in a plain redb table holding N
//!   values of the same length as the block frames, at random keys. Page
//!   cache warm.
//!
//! The large stores are built through [`NoSyncVfs`] — the real file system
//! with `fdatasync` skipped — because 100,000 appends at one or more syncs each
//! would take many minutes; the files it produces are byte for byte those
//! of a synced build, and the clean close and reopen run on [`OsVfs`].
//! Each block holds no transactions and sets one state key (a counter) to
//! its height.
//!
//! # Environment
//! - `GOVCHAIN_PERF_DIR`: where the temporary stores go (default: the
//!   system temp directory). It must be a real disk: on tmpfs `fdatasync`
//!   is free and the append rows mean nothing.
//! - `GOVCHAIN_PERF_STORAGE_BLOCKS`: N for the reopen and read rows
//!   (default 100,000). The metric names carry the N used.
//! - `GOVCHAIN_PERF_ONLY`: comma-separated sections to run (`append`,
//!   `state` (with the state reads), `reopen`, `read`; `read` builds the N-block store if `reopen`
//!   did not).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use govchain_core::block::{tx_root_of, Block, BlockHeader};
use govchain_core::cert::{certify, CommitCertificate};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::smt::{KeyHash, NodeStore, SparseMerkleTree, TreeUpdateBatch};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_storage::format::{encode_frame, encode_state_batch};
use govchain_storage::{
    BlockStore, DurableConfig, DurableStore, FileLock, OpenMode, OsVfs, StateStore, Vfs, VfsFile,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use redb::{ReadableDatabase, TableDefinition};

use crate::{progress, Row};

/// The chain id of every bench store.
pub const CHAIN: &str = "perf-storage";

/// Encoded size of each transaction of the append bench.
pub const TX_LEN: usize = 250;

/// Default N of the reopen and read rows.
pub const DEFAULT_BLOCKS: u64 = 100_000;

const PLAIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plain");
const BY_HEIGHT: TableDefinition<u64, &[u8]> = TableDefinition::new("by_height");

/// The real file system with every `fdatasync` (file and directory) skipped.
/// Only for *building* large bench stores quickly: the bytes written are
/// those of a synced build, but nothing is durable until the OS writes it
/// back. Never use it for a store that must survive a crash.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSyncVfs;

#[derive(Debug)]
struct NoSyncFile(Arc<dyn VfsFile>);

impl VfsFile for NoSyncFile {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0.read_at(offset, buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write_at(offset, data)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Vfs for NoSyncVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> std::io::Result<Arc<dyn VfsFile>> {
        Ok(Arc::new(NoSyncFile(OsVfs.open(path, mode)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        OsVfs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        OsVfs.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        OsVfs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        OsVfs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> std::io::Result<bool> {
        OsVfs.exists(path)
    }
    fn sync_dir(&self, _path: &Path) -> std::io::Result<()> {
        Ok(())
    }
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<FileLock>> {
        OsVfs.try_lock(path)
    }
}

/// A temporary directory for bench stores, under `GOVCHAIN_PERF_DIR` or the
/// system temp directory; removed when dropped.
pub fn bench_dir(name: &str) -> anyhow::Result<tempfile::TempDir> {
    let parent = std::env::var_os("GOVCHAIN_PERF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix(&format!("govchain-perf-{name}-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a bench directory in {}", parent.display()))
}

/// The bench chain id.
pub fn chain_id() -> anyhow::Result<ChainId> {
    ChainId::new(CHAIN).map_err(|e| anyhow!("chain id: {e}"))
}

/// `count` signed transactions of exactly [`TX_LEN`] encoded bytes (or the
/// smallest possible, if that is larger).
pub fn transactions(count: usize, seed: u64) -> anyhow::Result<Vec<Transaction>> {
    let chain = chain_id()?;
    let signer = SecretKey::from_seed(&[9u8; 32]);
    let empty = Transaction::new_signed(chain.clone(), &signer, 0, Vec::new())
        .map_err(|e| anyhow!("transaction: {e}"))?;
    let payload_len = TX_LEN.saturating_sub(empty.encoded_len());
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let mut payload = vec![0u8; payload_len];
            rng.fill_bytes(&mut payload);
            Transaction::new_signed(chain.clone(), &signer, i as u64, payload)
                .map_err(|e| anyhow!("transaction: {e}"))
        })
        .collect()
}

/// `n` updates of random keys to random 32-byte values.
pub fn random_updates(n: usize, rng: &mut ChaCha20Rng) -> Vec<(KeyHash, Option<Vec<u8>>)> {
    (0..n)
        .map(|_| {
            let mut k = [0u8; 32];
            rng.fill_bytes(&mut k);
            let mut v = vec![0u8; 32];
            rng.fill_bytes(&mut v);
            (KeyHash::from_hash(Hash::from_bytes(k)), Some(v))
        })
        .collect()
}

/// A block ready to append: the block, its certificate and its state batch.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub cert: CommitCertificate,
    /// The state batch its "execution" produced.
    pub batch: TreeUpdateBatch,
}

/// A durable store and the chain it is growing: builds the next block from
/// given transactions and state updates, and appends it.
#[derive(Debug)]
pub struct BenchChain {
    store: DurableStore,
    chain: ChainId,
    signers: Vec<SecretKey>,
    parent: Hash,
    height: u64,
}

impl BenchChain {
    /// Opens (or creates, with a one-key genesis state) the store in `dir`
    /// on `vfs`, with `validators` certificate signers.
    pub fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        config: DurableConfig,
        validators: usize,
    ) -> anyhow::Result<Self> {
        let chain = chain_id()?;
        let store = DurableStore::open_with(vfs, dir, chain.clone(), config)?;
        if store.latest_version()?.is_none() {
            let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
            let (_, batch) = tree.apply_batch(
                None,
                0,
                &[(
                    KeyHash::of(govchain_core::hash::HashFunction::Blake3, b"genesis"),
                    Some(b"g".to_vec()),
                )],
            )?;
            store.commit_state(batch)?;
        }
        let height = store.latest_height()?.get();
        let parent = match store.block(Height::new(height))? {
            Some(b) => b.block.hash(),
            None => Hash::ZERO,
        };
        let signers = (0..validators.max(1))
            .map(|i| SecretKey::from_seed(&[i as u8 + 1; 32]))
            .collect();
        Ok(BenchChain {
            store,
            chain,
            signers,
            parent,
            height,
        })
    }

    /// The store.
    pub fn store(&self) -> &DurableStore {
        &self.store
    }

    /// Closes the store (redb's clean shutdown).
    pub fn close(self) {
        drop(self.store);
    }

    /// The latest height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Computes the state batch of `updates` on top of the latest version
    /// (reading the store), then builds the next block holding `txs` (whose
    /// root is `tx_root`) and certifies it.
    pub fn prepare(
        &self,
        updates: &[(KeyHash, Option<Vec<u8>>)],
        txs: &[Transaction],
        tx_root: Hash,
    ) -> anyhow::Result<Prepared> {
        let (state_root, batch) = self.apply(updates)?;
        Ok(self.finish(state_root, batch, txs, tx_root))
    }

    /// The state part of [`prepare`](Self::prepare): `apply_batch` against
    /// the store for the next height.
    pub fn apply(
        &self,
        updates: &[(KeyHash, Option<Vec<u8>>)],
    ) -> anyhow::Result<(Hash, TreeUpdateBatch)> {
        let h = self.height + 1;
        let tree = SparseMerkleTree::new(&self.store, govchain_core::hash::HashFunction::Blake3);
        Ok(tree.apply_batch(Some(h - 1), h, updates)?)
    }

    /// The block part of [`prepare`](Self::prepare).
    pub fn finish(
        &self,
        state_root: Hash,
        batch: TreeUpdateBatch,
        txs: &[Transaction],
        tx_root: Hash,
    ) -> Prepared {
        let h = self.height + 1;
        let proposer = self
            .signers
            .first()
            .map(|s| s.public_key())
            .unwrap_or_else(|| SecretKey::from_seed(&[1; 32]).public_key());
        let header = BlockHeader {
            suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
            chain_id: self.chain.clone(),
            height: Height::new(h),
            time: Timestamp::new(h * 1000),
            parent_hash: self.parent,
            tx_root,
            tx_count: u32::try_from(txs.len()).unwrap_or(u32::MAX),
            state_root,
            history_root: Hash::ZERO,
            validator_set_hash: Hash::ZERO,
            next_validator_set_hash: Hash::ZERO,
            proposer,
        };
        let block = Block {
            header,
            transactions: txs.to_vec(),
        };
        let signers: Vec<&dyn Signer> = self.signers.iter().map(|s| s as &dyn Signer).collect();
        let cert = certify(
            &self.chain,
            Height::new(h),
            Round::new(0),
            block.hash(),
            &signers,
        );
        Prepared { block, cert, batch }
    }

    /// Appends a prepared block (the timed part of an append).
    pub fn append(&mut self, p: Prepared) -> anyhow::Result<()> {
        let hash = p.block.hash();
        self.store.append(&p.block, &p.cert, p.batch)?;
        self.parent = hash;
        self.height += 1;
        Ok(())
    }

    /// Appends `count` blocks with no transactions, each setting one state
    /// key (a per-`seed` counter) to the block height — the cheapest block
    /// that still writes a new state version — logging progress.
    pub fn append_small(&mut self, count: u64, seed: u64) -> anyhow::Result<()> {
        let key = KeyHash::of(
            govchain_core::hash::HashFunction::Blake3,
            format!("counter-{seed}").as_bytes(),
        );
        let empty_root = tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &[]);
        let start = Instant::now();
        for i in 0..count {
            let updates = [(key, Some((self.height + 1).to_le_bytes().to_vec()))];
            let p = self.prepare(&updates, &[], empty_root)?;
            self.append(p)?;
            if (i + 1).is_multiple_of(20_000) {
                progress(&format!(
                    "storage: built {} of {count} blocks in {:.1?}",
                    i + 1,
                    start.elapsed()
                ));
            }
        }
        Ok(())
    }
}

/// Builds a store of `blocks` small blocks in `dir` (through [`NoSyncVfs`])
/// and closes it cleanly.
pub fn build_small_store(dir: &Path, blocks: u64, seed: u64) -> anyhow::Result<()> {
    let mut chain = BenchChain::open(Arc::new(NoSyncVfs), dir, DurableConfig::default(), 1)?;
    chain.append_small(blocks, seed)?;
    chain.close();
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    percentile(v, 0.5)
}

/// The `q` quantile (nearest rank) of `v`; NaN if empty.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v.get(rank - 1).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `N` from `GOVCHAIN_PERF_STORAGE_BLOCKS` (default [`DEFAULT_BLOCKS`], at
/// least 100).
pub fn blocks_from_env() -> u64 {
    std::env::var("GOVCHAIN_PERF_STORAGE_BLOCKS")
        .ok()
        .and_then(|s| s.trim().replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_BLOCKS)
        .max(100)
}

/// `100000` → `100k`.
fn count_name(n: u64) -> String {
    if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// A plain file written with `write` at its end and `fdatasync`.
struct RawLog {
    file: File,
}

impl RawLog {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        file.sync_all()?;
        Ok(RawLog { file })
    }

    fn append(&mut self, frame: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(frame)?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// Measures `durable_append_1000tx` against `raw_write_fdatasync`:
/// `rounds` interleaved rounds after `warmup` unmeasured ones. Returns the
/// medians in ms.
pub fn measure_append(rounds: usize, warmup: usize) -> anyhow::Result<(f64, f64)> {
    let tmp = bench_dir("append")?;
    let mut chain = BenchChain::open(
        Arc::new(OsVfs),
        &tmp.path().join("store"),
        DurableConfig::default(),
        4,
    )?;
    let mut raw = RawLog::create(&tmp.path().join("raw.log"))?;
    let txs = transactions(1000, 1)?;
    let tx_root = tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &txs);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (mut store_ms, mut raw_ms) = (Vec::new(), Vec::new());
    for round in 0..warmup + rounds {
        let p = chain.prepare(&random_updates(16, &mut rng), &txs, tx_root)?;
        let state = encode_state_batch(&p.batch).ok_or_else(|| anyhow!("state too large"))?;
        let frame = encode_frame(
            p.block.header.height.get(),
            &p.block.to_bytes(),
            &p.cert.to_bytes(),
            &state,
        )
        .ok_or_else(|| anyhow!("frame too large"))?;
        // Alternate which goes first, so neither always follows the other.
        let t_store;
        let t_raw;
        if round % 2 == 0 {
            let s = Instant::now();
            chain.append(p)?;
            t_store = s.elapsed();
            let s = Instant::now();
            raw.append(black_box(&frame))?;
            t_raw = s.elapsed();
        } else {
            let s = Instant::now();
            raw.append(black_box(&frame))?;
            t_raw = s.elapsed();
            let s = Instant::now();
            chain.append(p)?;
            t_store = s.elapsed();
        }
        if round >= warmup {
            store_ms.push(ms(t_store));
            raw_ms.push(ms(t_raw));
        }
    }
    Ok((median(&mut store_ms), median(&mut raw_ms)))
}

fn redb_plain(path: &Path, cache: usize) -> anyhow::Result<redb::Database> {
    Ok(redb::Database::builder()
        .set_cache_size(cache)
        .create(path)?)
}

fn redb_insert(db: &redb::Database, entries: &[([u8; 32], Vec<u8>)]) -> anyhow::Result<()> {
    let mut txn = db.begin_write()?;
    txn.set_two_phase_commit(true);
    {
        let mut t = txn.open_table(PLAIN)?;
        for (k, v) in entries {
            t.insert(&k[..], v.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// What [`measure_state`] measured: the medians of the commit rates
/// (updates/s), then the per-read latencies (us) of the state reads and of
/// their baseline.
pub type StateMeasurements = (f64, f64, Vec<f64>, Vec<f64>);

/// Measures `state_commit_10k` against `redb_plain_insert_10k`: `rounds`
/// interleaved versions of `per_version` updates after `warmup` unmeasured
/// ones; then `reads` interleaved reads of random keys written by those
/// versions, at the latest version, from the durable store and from the
/// plain table (`state_read_*` against `redb_plain_get_*`).
pub fn measure_state(
    per_version: usize,
    rounds: usize,
    warmup: usize,
    reads: usize,
) -> anyhow::Result<StateMeasurements> {
    let tmp = bench_dir("state")?;
    let config = DurableConfig::default();
    let cache = config.cache_size;
    let mut chain = BenchChain::open(Arc::new(OsVfs), &tmp.path().join("store"), config, 4)?;
    let db = redb_plain(&tmp.path().join("plain.redb"), cache)?;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let empty_root = tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &[]);
    let (mut store_rate, mut plain_rate) = (Vec::new(), Vec::new());
    let mut keys = Vec::new();
    for round in 0..warmup + rounds {
        let updates = random_updates(per_version, &mut rng);
        keys.extend(updates.iter().map(|(k, _)| *k));
        let plain: Vec<([u8; 32], Vec<u8>)> = updates
            .iter()
            .map(|(k, v)| (*k.hash().as_bytes(), v.clone().unwrap_or_default()))
            .collect();
        let run_store = |chain: &mut BenchChain| -> anyhow::Result<Duration> {
            let s = Instant::now();
            let (root, batch) = chain.apply(&updates)?;
            let t_apply = s.elapsed();
            // Index rows written: nodes, values and one stale-index row.
            let rows = batch.nodes.len()
                + batch.values.len()
                + usize::from(!batch.stale_nodes.is_empty() || !batch.stale_values.is_empty());
            let p = chain.finish(root, batch, &[], empty_root);
            let s = Instant::now();
            chain.append(p)?;
            let t_append = s.elapsed();
            if std::env::var_os("GOVCHAIN_PERF_DEBUG").is_some() {
                progress(&format!(
                    "storage: state version: apply_batch {t_apply:.1?}, append {t_append:.1?}, {rows} index rows"
                ));
            }
            Ok(t_apply + t_append)
        };
        let run_plain = || -> anyhow::Result<Duration> {
            let s = Instant::now();
            redb_insert(&db, &plain)?;
            Ok(s.elapsed())
        };
        let (t_store, t_plain) = if round % 2 == 0 {
            let a = run_store(&mut chain)?;
            (a, run_plain()?)
        } else {
            let b = run_plain()?;
            (run_store(&mut chain)?, b)
        };
        if round >= warmup {
            store_rate.push(per_version as f64 / t_store.as_secs_f64());
            plain_rate.push(per_version as f64 / t_plain.as_secs_f64());
        }
    }
    let (state, plain) = measure_state_reads(chain.store(), &db, &keys, reads)?;
    Ok((
        median(&mut store_rate),
        median(&mut plain_rate),
        state,
        plain,
    ))
}

/// Per-read latencies (us) of `samples` reads of random `keys` from
/// `store` at its latest version — [`NodeStore::get_value`], the
/// executor's state-view read, which checks the row against the state tree
/// — and of as many point gets of the same keys from the plain table of
/// `db`, interleaved read by read.
pub fn measure_state_reads(
    store: &DurableStore,
    db: &redb::Database,
    keys: &[KeyHash],
    samples: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let latest = store
        .latest_version()?
        .ok_or_else(|| anyhow!("state store is empty"))?;
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let (mut a, mut b) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut pick = || {
        keys.get((rng.next_u64() % keys.len().max(1) as u64) as usize)
            .copied()
            .ok_or_else(|| anyhow!("no keys"))
    };
    for i in 0..samples {
        let (k, j) = (pick()?, pick()?);
        let mut read_store = || -> anyhow::Result<()> {
            let s = Instant::now();
            let got = store.get_value(&k, latest)?;
            a.push(s.elapsed().as_secs_f64() * 1e6);
            got.map(drop).ok_or_else(|| anyhow!("key {k} missing"))
        };
        let mut read_plain = || -> anyhow::Result<()> {
            let s = Instant::now();
            let read = db.begin_read()?;
            let t = read.open_table(PLAIN)?;
            let got = t.get(&j.hash().as_bytes()[..])?.map(|v| v.value().to_vec());
            b.push(s.elapsed().as_secs_f64() * 1e6);
            got.map(drop).ok_or_else(|| anyhow!("plain key missing"))
        };
        if i % 2 == 0 {
            read_store()?;
            read_plain()?;
        } else {
            read_plain()?;
            read_store()?;
        }
    }
    Ok((a, b))
}

fn time_open(dir: &Path, config: &DurableConfig) -> anyhow::Result<Duration> {
    let s = Instant::now();
    let store = DurableStore::open(dir, chain_id()?, config.clone())?;
    let t = s.elapsed();
    if store.latest_height()?.get() == 0 {
        return Err(anyhow!("reopened store at {} is empty", dir.display()));
    }
    drop(store);
    Ok(t)
}

/// Measures reopening the `large` store against the `small` one, `rounds`
/// interleaved rounds after one warm-up each, with `config`. Returns the
/// medians in ms.
pub fn measure_reopen(
    large: &Path,
    small: &Path,
    config: &DurableConfig,
    rounds: usize,
) -> anyhow::Result<(f64, f64)> {
    time_open(large, config)?;
    time_open(small, config)?;
    let (mut l, mut s) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        if round % 2 == 0 {
            l.push(ms(time_open(large, config)?));
            s.push(ms(time_open(small, config)?));
        } else {
            s.push(ms(time_open(small, config)?));
            l.push(ms(time_open(large, config)?));
        }
    }
    Ok((median(&mut l), median(&mut s)))
}

/// A plain redb table of `n` values of `value_len` bytes under keys
/// `1..=n`, for the point-get baseline.
pub fn build_point_db(path: &Path, n: u64, value_len: usize) -> anyhow::Result<redb::Database> {
    let db = redb_plain(path, DurableConfig::default().cache_size)?;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut value = vec![0u8; value_len];
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(BY_HEIGHT)?;
        for h in 1..=n {
            rng.fill_bytes(&mut value);
            t.insert(h, value.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(db)
}

/// One baseline point get: a read transaction, one get, the value copied
/// out.
pub fn point_get(db: &redb::Database, key: u64) -> anyhow::Result<Vec<u8>> {
    let read = db.begin_read()?;
    let t = read.open_table(BY_HEIGHT)?;
    let v = t
        .get(key)?
        .ok_or_else(|| anyhow!("point get: key {key} missing"))?;
    Ok(v.value().to_vec())
}

/// The length of what a read by height reads of the frame of the block at
/// `height`: the frame without its state batch (header, lengths, block,
/// certificate and the block-part checksum; plus the 4-byte frame
/// checksum, which a read skips).
pub fn frame_len(store: &DurableStore, height: u64) -> anyhow::Result<usize> {
    let b = store
        .block(Height::new(height))?
        .ok_or_else(|| anyhow!("block {height} missing"))?;
    let frame = encode_frame(height, &b.block.to_bytes(), &b.certificate.to_bytes(), &[])
        .ok_or_else(|| anyhow!("frame too large"))?;
    Ok(frame.len())
}

/// Per-read latencies (us) of `samples` random-height reads of `store`
/// and as many baseline point gets of `db`, interleaved read by read.
pub fn measure_reads(
    store: &DurableStore,
    db: &redb::Database,
    blocks: u64,
    samples: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (mut a, mut b) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..samples {
        let h = 1 + rng.next_u64() % blocks;
        let k = 1 + rng.next_u64() % blocks;
        let mut read_store = || -> anyhow::Result<()> {
            let s = Instant::now();
            let got = store.block(Height::new(h))?;
            a.push(s.elapsed().as_secs_f64() * 1e6);
            if got.is_none() {
                return Err(anyhow!("block {h} missing"));
            }
            Ok(())
        };
        if i % 2 == 0 {
            read_store()?;
            let s = Instant::now();
            black_box(point_get(db, k)?);
            b.push(s.elapsed().as_secs_f64() * 1e6);
        } else {
            let s = Instant::now();
            black_box(point_get(db, k)?);
            b.push(s.elapsed().as_secs_f64() * 1e6);
            read_store()?;
        }
    }
    Ok((a, b))
}

fn section(name: &str) -> bool {
    let only = std::env::var("GOVCHAIN_PERF_ONLY").unwrap_or_default();
    only.is_empty() || only.split(',').any(|s| s.trim() == name)
}

fn report_append() -> anyhow::Result<()> {
    progress("storage: durable_append_1000tx (60 interleaved rounds)");
    let (store, raw) = measure_append(60, 5)?;
    Row::new(
        "storage",
        "durable_append_1000tx",
        store,
        "ms",
        "raw_write_fdatasync",
        raw,
    )
    .emit();
    Ok(())
}

fn report_state() -> anyhow::Result<()> {
    progress("storage: state_commit_10k (15 interleaved versions of 10,000 updates)");
    let (store, plain, mut reads, mut plain_reads) = measure_state(10_000, 15, 3, 40_000)?;
    Row::new(
        "storage",
        "state_commit_10k",
        store,
        "updates/s",
        "redb_plain_insert_10k",
        plain,
    )
    .emit();
    emit_percentiles("state_read", &mut reads, "redb_plain_get", &mut plain_reads);
    Ok(())
}

/// The N-block store and its N/10 companion, built once for the reopen
/// and read sections.
struct Stores {
    _tmp: tempfile::TempDir,
    large: PathBuf,
    small: PathBuf,
    blocks: u64,
}

fn build_stores() -> anyhow::Result<Stores> {
    let blocks = blocks_from_env();
    let tmp = bench_dir("reopen")?;
    let large = tmp.path().join("large");
    let small = tmp.path().join("small");
    progress(&format!(
        "storage: building stores of {blocks} and {} small blocks (no-sync build)",
        blocks / 10
    ));
    let s = Instant::now();
    build_small_store(&large, blocks, 7)?;
    build_small_store(&small, blocks / 10, 8)?;
    progress(&format!("storage: built in {:.1?}", s.elapsed()));
    Ok(Stores {
        _tmp: tmp,
        large,
        small,
        blocks,
    })
}

fn report_reopen(st: &Stores) -> anyhow::Result<()> {
    let (n, m) = (count_name(st.blocks), count_name(st.blocks / 10));
    progress("storage: reopen (9 interleaved rounds, default config)");
    let config = DurableConfig::default();
    let (l, s) = measure_reopen(&st.large, &st.small, &config, 9)?;
    Row::new(
        "storage",
        format!("reopen_{n}_blocks"),
        l,
        "ms",
        format!("reopen_{m}_blocks"),
        s,
    )
    .emit();
    // Published before format 4 as the opt-in that trusted a clean
    // shutdown; that is the default configuration now, so the row is the
    // same measurement under its published name.
    Row::new(
        "storage",
        format!("reopen_{n}_blocks_trusting_clean_shutdown"),
        l,
        "ms",
        format!("reopen_{m}_blocks_trusting_clean_shutdown"),
        s,
    )
    .emit();
    let mut config = DurableConfig::default();
    config.force_index_check_on_open = true;
    let (l, s) = measure_reopen(&st.large, &st.small, &config, 9)?;
    Row::new(
        "storage",
        format!("reopen_{n}_blocks_forced_index_check"),
        l,
        "ms",
        format!("reopen_{m}_blocks_forced_index_check"),
        s,
    )
    .emit();
    let mut config = DurableConfig::default();
    config.check_index_on_open = false;
    let (l, s) = measure_reopen(&st.large, &st.small, &config, 9)?;
    Row::new(
        "storage",
        format!("reopen_{n}_blocks_no_index_check"),
        l,
        "ms",
        format!("reopen_{m}_blocks_no_index_check"),
        s,
    )
    .emit();
    Ok(())
}

fn report_read(st: &Stores) -> anyhow::Result<()> {
    let store = DurableStore::open(&st.large, chain_id()?, DurableConfig::default())?;
    let len = frame_len(&store, st.blocks / 2)?;
    let tmp = bench_dir("point")?;
    let db = build_point_db(&tmp.path().join("point.redb"), st.blocks, len)?;
    progress(&format!(
        "storage: read_by_height (40,000 interleaved reads; frames of {len} bytes)"
    ));
    measure_reads(&store, &db, st.blocks, 4_000)?;
    let (mut a, mut b) = measure_reads(&store, &db, st.blocks, 40_000)?;
    emit_percentiles("read_by_height", &mut a, "redb_point_get", &mut b);
    Ok(())
}

/// Emits the rows `{name}_p50` and `{name}_p99` (`us`) of the latencies
/// `a`, against the same percentiles of `b` as baselines `{base}_p50`,
/// `{base}_p99`.
fn emit_percentiles(name: &str, a: &mut [f64], base: &str, b: &mut [f64]) {
    for (q, p) in [(0.5, "p50"), (0.99, "p99")] {
        Row::new(
            "storage",
            format!("{name}_{p}"),
            percentile(a, q),
            "us",
            format!("{base}_{p}"),
            percentile(b, q),
        )
        .emit();
    }
}

fn run(name: &str, f: impl FnOnce() -> anyhow::Result<()>) {
    if let Err(e) = f() {
        progress(&format!("storage: {name} failed: {e:#}"));
    }
}

/// Runs every `storage` measurement, printing rows as they are measured.
/// A failing section is reported on stderr and skipped.
pub fn report() {
    if section("append") {
        run("append", report_append);
    }
    if section("state") {
        run("state", report_state);
    }
    let (reopen, read) = (section("reopen"), section("read"));
    if reopen || read {
        match build_stores() {
            Ok(st) => {
                if reopen {
                    run("reopen", || report_reopen(&st));
                }
                if read {
                    run("read", || report_read(&st));
                }
            }
            Err(e) => progress(&format!("storage: building the stores failed: {e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn names_and_tx_size() {
        assert_eq!(count_name(100_000), "100k");
        assert_eq!(count_name(1_234), "1234");
        let txs = transactions(3, 1).map_err(|e| e.to_string());
        assert!(txs.is_ok_and(|t| t.iter().all(|t| t.encoded_len() == TX_LEN)));
    }

    #[test]
    fn small_store_builds_and_reopens() -> anyhow::Result<()> {
        let tmp = bench_dir("test")?;
        let dir = tmp.path().join("s");
        build_small_store(&dir, 50, 1)?;
        let store = DurableStore::open(&dir, chain_id()?, DurableConfig::default())?;
        assert_eq!(store.latest_height()?.get(), 50);
        assert_eq!(store.verify()?, 50);
        Ok(())
    }
}
