//! [`DurableStore`]: the embedded default — a segmented append-only block
//! log plus a redb database for the index and the state, both on a [`Vfs`].
//!
//! # Layout of a store directory
//! ```text
//! MANIFEST                  magic, format version, chain id, CRC (written once)
//! LOCK                      empty; locked by the open handle (not part of the format)
//! index.redb                redb: block index, hash index, SMT nodes/values, meta
//! log/00000000000000000001.seg   segment: header, then frames for heights 1..
//! log/00000000000000004711.seg   a later segment, named by its first height
//! ```
//!
//! # Write order of [`append`](BlockStore::append)
//! 1. the frame is written at the end of the active segment and the segment
//!    is `fdatasync`ed;
//! 2. one redb write transaction (two-phase commit, immediate durability)
//!    inserts the location and hash records, the state batch and the new
//!    applied height. Its commit is the acknowledgement.
//!
//! A new segment is created as `NAME.tmp`, synced, renamed to `NAME`, and
//! the `log` directory is synced, before any frame goes into it.
//!
//! # Recovery on open
//! The index is the source of truth. Everything after the last indexed
//! frame is an unacknowledged tail: later segments are deleted and the last
//! one is truncated to the end of the last indexed frame. The last indexed
//! frame itself, and every segment header, must verify; a damaged
//! acknowledged frame is reported as [`StorageError::Corruption`], never
//! skipped or truncated away. Then the state root at the applied height must
//! equal the one in that block's header.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use govchain_core::block::{Block, MAX_BLOCK_ENCODED_LEN};
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::hash::Hash;
use govchain_core::smt::{
    KeyHash, Node, NodeKey, NodePath, NodeStore, TreeUpdateBatch, Version, MAX_NODE_LEN,
};
use govchain_core::types::{ChainId, Height};
use parking_lot::{Mutex, RwLock};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::{db_err, StorageError};
use crate::format::{
    check_segment_header, decode_stale_row, encode_frame, encode_segment_header, encode_stale_row,
    node_key, parse_frame_header, seal, split_frame, unseal, value_key, Location, Manifest,
    ManifestError, FORMAT_VERSION, FRAME_HEADER_LEN, MAX_CERT_LEN, MAX_FRAME_PAYLOAD,
    SEGMENT_HEADER_LEN,
};
use crate::traits::{check_append, check_genesis, BlockStore, StateStore, StoredBlock};
use crate::vfs::{FileLock, OpenMode, Vfs, VfsFile};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const HASHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("block_hashes");
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_nodes");
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_values");
/// The stale index: one row per version that made anything stale, keyed by
/// that version (big-endian), listing every node and value entry it
/// replaced ([`encode_stale_row`]). One row per version instead of one per
/// entry: the index costs one insert per commit and one range scan per
/// prune.
const STALE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_stale");

const META_FORMAT: &str = "format";
const META_CHAIN: &str = "chain_id";
const META_APPLIED: &str = "applied_height";
const META_OLDEST: &str = "oldest_height";
const META_STATE_LATEST: &str = "state_latest";
const META_STATE_OLDEST: &str = "state_oldest";

/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the redb index file.
pub const INDEX_FILE: &str = "index.redb";
/// Name of the segment directory.
pub const LOG_DIR: &str = "log";
/// Name of the lock file, held (see [`Vfs::try_lock`]) by the one open
/// handle of the store. Not part of the format: it may be missing.
pub const LOCK_FILE: &str = "LOCK";

/// Configuration of a [`DurableStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurableConfig {
    /// A new segment is started when a frame would grow the active one past
    /// this many bytes (a single larger frame still gets a segment). Default
    /// 64 MiB.
    pub segment_size: u64,
    /// redb page cache, in bytes. Default 64 MiB.
    pub cache_size: usize,
    /// Verify every indexed frame (checksum and hash) on open, not only the
    /// last one. Costs a full read of the log. Default `false`.
    pub verify_log_on_open: bool,
    /// Run redb's integrity check (every page checksum) on open; a failure
    /// is reported as corruption rather than repaired away. Default `true`.
    pub check_index_on_open: bool,
}

impl Default for DurableConfig {
    fn default() -> Self {
        DurableConfig {
            segment_size: 64 * 1024 * 1024,
            cache_size: 64 * 1024 * 1024,
            verify_log_on_open: false,
            check_index_on_open: true,
        }
    }
}

impl DurableConfig {
    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.segment_size < 4096 {
            return Err(StorageError::InvalidConfig {
                reason: "segment_size must be at least 4096 bytes",
            });
        }
        if self.cache_size < 64 * 1024 {
            return Err(StorageError::InvalidConfig {
                reason: "cache_size must be at least 64 KiB",
            });
        }
        Ok(())
    }
}

/// The durable [`BlockStore`] and [`StateStore`]. See the
/// [module documentation](self) for the format, the write order and
/// recovery.
///
/// All methods take `&self`; appends are serialised internally and reads
/// run concurrently with them.
pub struct DurableStore {
    vfs: Arc<dyn Vfs>,
    dir: PathBuf,
    log_dir: PathBuf,
    chain_id: ChainId,
    config: DurableConfig,
    /// A read snapshot of the state tables, reused by node and value reads
    /// until the state changes (declared before `db`, so it is dropped
    /// before the database closes).
    reader: RwLock<Option<Arc<StateReader>>>,
    /// The nodes of the latest state version written, decoded: the next
    /// version's update reads its upper pages from here rather than from
    /// the index. Consulted only once the state tip has reached its version
    /// (so only after its commit succeeded).
    recent: RwLock<Option<Arc<RecentNodes>>>,
    db: redb::Database,
    writer: Mutex<Writer>,
    segments: RwLock<BTreeMap<u64, Arc<dyn VfsFile>>>,
    tip: RwLock<Tip>,
    poison: Mutex<Option<String>>,
    /// The store lock; the last field, so it is released only after the
    /// database and the segments are closed.
    _lock: FileLock,
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore")
            .field("dir", &self.dir)
            .field("chain_id", &self.chain_id)
            .field("tip", &*self.tip.read())
            .finish()
    }
}

/// Open read-only handles on the state tables, all of one snapshot, and the
/// state tip (latest and oldest versions) they were opened at.
struct StateReader {
    at: (Option<Version>, Option<Version>),
    nodes: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

/// The nodes one state version wrote, by path.
struct RecentNodes {
    version: Version,
    nodes: HashMap<NodePath, Node>,
}

#[derive(Debug, Default)]
struct Writer {
    /// Base height, file and end offset of the active segment.
    active: Option<(u64, Arc<dyn VfsFile>, u64)>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Tip {
    latest: u64,
    latest_hash: Hash,
    /// Lowest stored height (meaningful when `latest > 0`).
    oldest: u64,
    state_latest: Option<Version>,
    state_oldest: Option<Version>,
}

/// The redb storage backend over a [`VfsFile`].
#[derive(Debug)]
struct RedbFile {
    file: Arc<dyn VfsFile>,
}

impl redb::StorageBackend for RedbFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.file.read_at(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.file.write_at(offset, data)
    }
}

fn segment_name(base: u64) -> String {
    format!("{base:020}.seg")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn get_meta_u64(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, StorageError> {
    let Some(v) = table.get(key).map_err(db_err)? else {
        return Ok(None);
    };
    let raw = unseal(key.as_bytes(), v.value())
        .map_err(|r| StorageError::corrupt(format!("index meta {key:?}"), r))?;
    let arr: [u8; 8] = raw
        .try_into()
        .map_err(|_| StorageError::corrupt(format!("index meta {key:?}"), "wrong length"))?;
    Ok(Some(u64::from_le_bytes(arr)))
}

fn put_meta(
    table: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: &[u8],
) -> Result<(), StorageError> {
    table
        .insert(key, seal(key.as_bytes(), value).as_slice())
        .map_err(db_err)?;
    Ok(())
}

impl DurableStore {
    /// Opens the store in `dir` on the real file system, creating it if
    /// `dir` is missing or empty. See [`open_with`](Self::open_with).
    pub fn open(
        dir: impl AsRef<Path>,
        chain_id: ChainId,
        config: DurableConfig,
    ) -> Result<Self, StorageError> {
        Self::open_with(Arc::new(crate::vfs::OsVfs), dir, chain_id, config)
    }

    /// Opens (running recovery) or creates the store for `chain_id` in
    /// `dir` on `vfs`.
    ///
    /// A directory that is neither missing, empty, nor a store of this
    /// chain in a supported format is refused — [`StorageError::NotAStore`],
    /// [`StorageError::WrongChain`] or [`StorageError::UnsupportedFormat`] —
    /// before anything in it is modified.
    ///
    /// The handle holds the store's [`LOCK_FILE`] through
    /// [`Vfs::try_lock`] until it is dropped; while it does, opening the
    /// same directory again — from this process or another — fails with
    /// [`StorageError::Locked`].
    pub fn open_with(
        vfs: Arc<dyn Vfs>,
        dir: impl AsRef<Path>,
        chain_id: ChainId,
        config: DurableConfig,
    ) -> Result<Self, StorageError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let log_dir = dir.join(LOG_DIR);
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        // Refuse a foreign directory before creating anything in it; then
        // lock, and check again under the lock (another process may have
        // created the store meanwhile).
        Self::check_manifest(vfs.as_ref(), &dir, &chain_id)?;
        let lock = Self::lock_dir(vfs.as_ref(), &dir)?;
        if !Self::check_manifest(vfs.as_ref(), &dir, &chain_id)? {
            Self::create_manifest(vfs.as_ref(), &dir, &chain_id)?;
        }

        let index_path = dir.join(INDEX_FILE);
        let index_exists = vfs.exists(&index_path).map_err(io("stat", &index_path))?;
        let log_exists = vfs.exists(&log_dir).map_err(io("stat", &log_dir))?;
        if !index_exists && log_exists {
            let names = vfs.list_dir(&log_dir).map_err(io("list", &log_dir))?;
            if names.iter().any(|n| parse_segment_name(n).is_some()) {
                return Err(StorageError::corrupt(
                    index_path.display().to_string(),
                    "index file is missing but the block log has segments",
                ));
            }
        }
        // A new index is initialised under a temporary name and renamed
        // into place once redb has made it durable, so a crash never leaves
        // a half-initialised `index.redb`.
        let tmp_path = dir.join("index.redb.tmp");
        let file = if index_exists {
            vfs.open(&index_path, OpenMode::Existing)
                .map_err(io("open", &index_path))?
        } else {
            vfs.open(&tmp_path, OpenMode::Truncate)
                .map_err(io("create", &tmp_path))?
        };
        // redb 4.6 panics instead of returning an error on some corrupted
        // allocator states ("Malformed allocator state"); the contract of
        // this crate is a typed corruption error, never a panic. (With
        // `panic = "abort"` the process still aborts.)
        let cache_size = config.cache_size;
        // Unwind safety: on a panic nothing escapes but the payload; the file
        // handle is dropped and the open is refused.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            redb::Database::builder()
                .set_cache_size(cache_size)
                .create_with_backend(RedbFile { file })
        }));
        let mut db = match opened {
            Ok(db) => db.map_err(db_err)?,
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("index database panicked while opening");
                return Err(StorageError::corrupt(
                    index_path.display().to_string(),
                    format!("index database is corrupt: {reason}"),
                ));
            }
        };
        if !index_exists {
            vfs.rename(&tmp_path, &index_path)
                .map_err(io("rename", &tmp_path))?;
            vfs.sync_dir(&dir).map_err(io("sync dir", &dir))?;
        }
        if config.check_index_on_open && index_exists {
            match db.check_integrity() {
                Ok(true) => {}
                Ok(false) => {
                    return Err(StorageError::corrupt(
                        index_path.display().to_string(),
                        "index database failed its integrity check",
                    ))
                }
                Err(e) => return Err(db_err(e)),
            }
        }
        if !log_exists {
            vfs.create_dir_all(&log_dir)
                .map_err(io("mkdir", &log_dir))?;
            vfs.sync_dir(&dir).map_err(io("sync dir", &dir))?;
        }

        let store = DurableStore {
            vfs,
            dir,
            log_dir,
            chain_id,
            config,
            reader: RwLock::new(None),
            recent: RwLock::new(None),
            db,
            writer: Mutex::new(Writer::default()),
            segments: RwLock::new(BTreeMap::new()),
            tip: RwLock::new(Tip::default()),
            poison: Mutex::new(None),
            _lock: lock,
        };
        store.init_or_check_meta()?;
        store.recover()?;
        store.check_state_root()?;
        Ok(store)
    }

    /// Refuses, without modifying anything, a directory that is neither
    /// missing, empty (but for a `MANIFEST.tmp` or a [`LOCK_FILE`]), nor a
    /// store of `chain_id` in a supported format. Returns whether it holds
    /// a manifest.
    fn check_manifest(vfs: &dyn Vfs, dir: &Path, chain_id: &ChainId) -> Result<bool, StorageError> {
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        let path = dir.join(MANIFEST_FILE);
        if !vfs.exists(dir).map_err(io("stat", dir))? {
            return Ok(false);
        }
        if vfs.exists(&path).map_err(io("stat", &path))? {
            let file = vfs
                .open(&path, OpenMode::Existing)
                .map_err(io("open", &path))?;
            let len = file.len().map_err(io("stat", &path))?;
            if len > 512 {
                return Err(StorageError::NotAStore {
                    path: dir.to_path_buf(),
                    reason: "MANIFEST is too large".into(),
                });
            }
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.read_at(0, &mut buf).map_err(io("read", &path))?;
            let m = match Manifest::decode(&buf) {
                Ok(m) => m,
                Err(ManifestError::NotOurs) => {
                    return Err(StorageError::NotAStore {
                        path: dir.to_path_buf(),
                        reason: "MANIFEST has the wrong magic".into(),
                    })
                }
                Err(ManifestError::Corrupt(reason)) => {
                    return Err(StorageError::corrupt(path.display().to_string(), reason))
                }
            };
            if m.format != FORMAT_VERSION {
                return Err(StorageError::UnsupportedFormat {
                    found: m.format,
                    supported: FORMAT_VERSION,
                });
            }
            if m.chain_id != chain_id.as_str() {
                return Err(StorageError::WrongChain {
                    expected: chain_id.to_string(),
                    found: m.chain_id,
                });
            }
            return Ok(true);
        }
        let names = vfs.list_dir(dir).map_err(io("list", dir))?;
        if names.iter().any(|n| n != "MANIFEST.tmp" && n != LOCK_FILE) {
            return Err(StorageError::NotAStore {
                path: dir.to_path_buf(),
                reason: "directory is not empty and has no MANIFEST".into(),
            });
        }
        Ok(false)
    }

    /// Writes the manifest of a new store into the existing `dir`.
    fn create_manifest(vfs: &dyn Vfs, dir: &Path, chain_id: &ChainId) -> Result<(), StorageError> {
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join("MANIFEST.tmp");
        let bytes = Manifest {
            format: FORMAT_VERSION,
            chain_id: chain_id.to_string(),
        }
        .encode();
        let f = vfs
            .open(&tmp, OpenMode::Truncate)
            .map_err(io("create", &tmp))?;
        f.write_at(0, &bytes).map_err(io("write", &tmp))?;
        f.sync_data().map_err(io("sync", &tmp))?;
        vfs.rename(&tmp, &path).map_err(io("rename", &tmp))?;
        vfs.sync_dir(dir).map_err(io("sync dir", dir))?;
        Ok(())
    }

    /// Creates `dir` if it is missing, then takes the store lock.
    fn lock_dir(vfs: &dyn Vfs, dir: &Path) -> Result<FileLock, StorageError> {
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        if !vfs.exists(dir).map_err(io("stat", dir))? {
            vfs.create_dir_all(dir).map_err(io("mkdir", dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                vfs.sync_dir(parent).map_err(io("sync dir", parent))?;
            }
        }
        let path = dir.join(LOCK_FILE);
        vfs.try_lock(&path)
            .map_err(io("lock", &path))?
            .ok_or_else(|| StorageError::Locked {
                path: dir.to_path_buf(),
            })
    }

    fn write_txn(&self) -> Result<redb::WriteTransaction, StorageError> {
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    fn init_or_check_meta(&self) -> Result<(), StorageError> {
        let txn = self.write_txn()?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let format = get_meta_u64(&meta, META_FORMAT)?;
            match format {
                None => {
                    put_meta(
                        &mut meta,
                        META_FORMAT,
                        &u64::from(FORMAT_VERSION).to_le_bytes(),
                    )?;
                    put_meta(&mut meta, META_CHAIN, self.chain_id.as_str().as_bytes())?;
                    put_meta(&mut meta, META_APPLIED, &0u64.to_le_bytes())?;
                    put_meta(&mut meta, META_OLDEST, &1u64.to_le_bytes())?;
                }
                Some(f) if f == u64::from(FORMAT_VERSION) => {
                    let chain = meta
                        .get(META_CHAIN)
                        .map_err(db_err)?
                        .ok_or_else(|| StorageError::corrupt("index meta", "chain id missing"))?;
                    let chain = unseal(META_CHAIN.as_bytes(), chain.value())
                        .map_err(|r| StorageError::corrupt("index meta chain_id", r))?;
                    if chain != self.chain_id.as_str().as_bytes() {
                        return Err(StorageError::corrupt(
                            "index meta chain_id",
                            "index belongs to another chain than the manifest",
                        ));
                    }
                }
                Some(f) => {
                    return Err(StorageError::UnsupportedFormat {
                        found: u32::try_from(f).unwrap_or(u32::MAX),
                        supported: FORMAT_VERSION,
                    })
                }
            }
            // Create every table so readers never meet a missing one.
            txn.open_table(BLOCKS).map_err(db_err)?;
            txn.open_table(HASHES).map_err(db_err)?;
            txn.open_table(NODES).map_err(db_err)?;
            txn.open_table(VALUES).map_err(db_err)?;
            txn.open_table(STALE).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;

        let read = self.db.begin_read().map_err(db_err)?;
        let meta = read.open_table(META).map_err(db_err)?;
        let latest = get_meta_u64(&meta, META_APPLIED)?
            .ok_or_else(|| StorageError::corrupt("index meta", "applied height missing"))?;
        let oldest = get_meta_u64(&meta, META_OLDEST)?
            .ok_or_else(|| StorageError::corrupt("index meta", "oldest height missing"))?;
        let state_latest = get_meta_u64(&meta, META_STATE_LATEST)?;
        let state_oldest = get_meta_u64(&meta, META_STATE_OLDEST)?;
        if latest > 0 && (oldest == 0 || oldest > latest) {
            return Err(StorageError::corrupt(
                "index meta",
                "oldest height out of range",
            ));
        }
        if latest > 0 && state_latest != Some(latest) {
            return Err(StorageError::corrupt(
                "index meta",
                "applied block height and state version differ",
            ));
        }
        let latest_hash = if latest > 0 {
            self.location(latest)?.hash
        } else {
            Hash::ZERO
        };
        *self.tip.write() = Tip {
            latest,
            latest_hash,
            oldest,
            state_latest,
            state_oldest,
        };
        Ok(())
    }

    fn location(&self, height: u64) -> Result<Location, StorageError> {
        let read = self.db.begin_read().map_err(db_err)?;
        let blocks = read.open_table(BLOCKS).map_err(db_err)?;
        let v = blocks.get(height).map_err(db_err)?.ok_or_else(|| {
            StorageError::corrupt(
                format!("index blocks[{height}]"),
                "missing entry for a stored height",
            )
        })?;
        Location::decode(height, v.value())
            .map_err(|r| StorageError::corrupt(format!("index blocks[{height}]"), r))
    }

    fn segment_path(&self, base: u64) -> PathBuf {
        self.log_dir.join(segment_name(base))
    }

    fn io<'a>(
        &self,
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
        move |e| StorageError::io(op, path, e)
    }

    fn recover(&self) -> Result<(), StorageError> {
        let log_dir = self.log_dir.clone();
        let names = self
            .vfs
            .list_dir(&log_dir)
            .map_err(self.io("list", &log_dir))?;
        let mut dir_changed = false;
        let mut bases = Vec::new();
        for name in &names {
            if name.ends_with(".tmp") {
                let p = log_dir.join(name);
                self.vfs.remove_file(&p).map_err(self.io("remove", &p))?;
                dir_changed = true;
            } else if let Some(base) = parse_segment_name(name) {
                bases.push(base);
            }
        }
        let tip = *self.tip.read();
        let (keep_from, keep_to, last) = if tip.latest == 0 {
            (1, 0, None)
        } else {
            let last = self.location(tip.latest)?;
            let first = self.location(tip.oldest)?;
            (first.segment, last.segment, Some(last))
        };
        let mut segments = BTreeMap::new();
        for base in bases {
            let path = self.segment_path(base);
            if base < keep_from || base > keep_to {
                // Below the oldest block: left over from an interrupted
                // prune. Above the last indexed frame: unacknowledged tail.
                self.vfs
                    .remove_file(&path)
                    .map_err(self.io("remove", &path))?;
                dir_changed = true;
                continue;
            }
            let file = self
                .vfs
                .open(&path, OpenMode::Existing)
                .map_err(self.io("open", &path))?;
            let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
            file.read_at(0, &mut header).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    StorageError::corrupt(path.display().to_string(), "segment header truncated")
                } else {
                    StorageError::io("read", &path, e)
                }
            })?;
            check_segment_header(&header, base)
                .map_err(|r| StorageError::corrupt(path.display().to_string(), r))?;
            segments.insert(base, file);
        }
        if dir_changed {
            self.vfs
                .sync_dir(&log_dir)
                .map_err(self.io("sync dir", &log_dir))?;
        }
        if let Some(last) = last {
            let Some(file) = segments.get(&last.segment).cloned() else {
                return Err(StorageError::corrupt(
                    self.segment_path(last.segment).display().to_string(),
                    "segment holding the latest block is missing",
                ));
            };
            *self.segments.write() = segments.clone();
            // Must verify before truncating anything after it.
            self.read_block(tip.latest)?;
            let end = last.offset.saturating_add(u64::from(last.frame_len));
            let path = self.segment_path(last.segment);
            let len = file.len().map_err(self.io("stat", &path))?;
            if len > end {
                file.set_len(end).map_err(self.io("truncate", &path))?;
                file.sync_data().map_err(self.io("sync", &path))?;
            }
            self.writer.lock().active = Some((last.segment, file, end));
            if self.config.verify_log_on_open {
                for h in tip.oldest..=tip.latest {
                    self.read_block(h)?;
                }
            }
        }
        Ok(())
    }

    fn check_state_root(&self) -> Result<(), StorageError> {
        let tip = *self.tip.read();
        if tip.latest == 0 {
            return Ok(());
        }
        let block = self.read_block(tip.latest)?.block;
        let state = self.state_root(tip.latest)?.ok_or_else(|| {
            StorageError::corrupt(
                format!("state version {}", tip.latest),
                "root node of the applied height is missing",
            )
        })?;
        if state != block.header.state_root {
            return Err(StorageError::StateRootMismatch {
                height: block.header.height,
                header: block.header.state_root,
                state,
            });
        }
        Ok(())
    }

    /// Reads and checks the frame of `height` (which must be indexed).
    fn read_block(&self, height: u64) -> Result<StoredBlock, StorageError> {
        let loc = self.location(height)?;
        let path = self.segment_path(loc.segment);
        let here = || format!("{} @ {}", path.display(), loc.offset);
        let file = self
            .segments
            .read()
            .get(&loc.segment)
            .cloned()
            .ok_or_else(|| StorageError::corrupt(here(), "indexed segment is missing"))?;
        let frame_len = usize::try_from(loc.frame_len).unwrap_or(usize::MAX);
        if !(FRAME_HEADER_LEN + 8..=MAX_FRAME_PAYLOAD + FRAME_HEADER_LEN + 4).contains(&frame_len) {
            return Err(StorageError::corrupt(
                here(),
                "indexed frame length out of range",
            ));
        }
        let read = |offset: u64, buf: &mut [u8]| {
            file.read_at(offset, buf).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    StorageError::corrupt(here(), "indexed frame extends past the segment end")
                } else {
                    StorageError::io("read", &path, e)
                }
            })
        };
        let mut header = [0u8; FRAME_HEADER_LEN];
        read(loc.offset, &mut header)?;
        let fh = parse_frame_header(&header).map_err(|r| StorageError::corrupt(here(), r))?;
        if fh.height != height || fh.frame_len() != frame_len {
            return Err(StorageError::corrupt(
                here(),
                "frame header does not match its index entry",
            ));
        }
        let mut frame = vec![0u8; frame_len];
        read(loc.offset, &mut frame)?;
        let (block_bytes, cert_bytes) =
            split_frame(&frame).map_err(|r| StorageError::corrupt(here(), r))?;
        let block = Block::decode(block_bytes, MAX_BLOCK_ENCODED_LEN)
            .map_err(|e| StorageError::corrupt(here(), format!("block does not decode: {e}")))?;
        if block.hash() != loc.hash || block.header.height.get() != height {
            return Err(StorageError::corrupt(
                here(),
                "block hash differs from the index",
            ));
        }
        let certificate: CommitCertificate = if cert_bytes.len() > MAX_CERT_LEN {
            return Err(StorageError::corrupt(here(), "certificate too long"));
        } else {
            CommitCertificate::decode(cert_bytes).map_err(|e| {
                StorageError::corrupt(here(), format!("certificate does not decode: {e}"))
            })?
        };
        Ok(StoredBlock { block, certificate })
    }

    fn check_poison(&self) -> Result<(), StorageError> {
        match &*self.poison.lock() {
            Some(cause) => Err(StorageError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Runs a write step; any error poisons the handle.
    fn poisoning<T>(&self, r: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &r {
            let mut p = self.poison.lock();
            if p.is_none() {
                *p = Some(e.to_string());
            }
        }
        r
    }

    /// Whether an earlier write failure poisoned this handle.
    pub fn is_poisoned(&self) -> bool {
        self.poison.lock().is_some()
    }

    /// The chain this store holds.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every stored block and checks it (frame checksum, decoding,
    /// hash against the index, parent links). Returns the number checked,
    /// or the first corruption found.
    pub fn verify(&self) -> Result<u64, StorageError> {
        let tip = *self.tip.read();
        if tip.latest == 0 {
            return Ok(0);
        }
        let mut parent: Option<Hash> = None;
        for h in tip.oldest..=tip.latest {
            let b = self.read_block(h)?;
            if let Some(p) = parent {
                if b.block.header.parent_hash != p {
                    return Err(StorageError::corrupt(
                        format!("block {h}"),
                        "parent hash does not link to the previous block",
                    ));
                }
            }
            parent = Some(b.block.hash());
        }
        Ok(tip.latest - tip.oldest + 1)
    }

    fn new_segment(&self, base: u64) -> Result<Arc<dyn VfsFile>, StorageError> {
        let path = self.segment_path(base);
        let tmp = self.log_dir.join(format!("{}.tmp", segment_name(base)));
        let file = self
            .vfs
            .open(&tmp, OpenMode::Truncate)
            .map_err(self.io("create", &tmp))?;
        file.write_at(0, &encode_segment_header(base))
            .map_err(self.io("write", &tmp))?;
        file.sync_data().map_err(self.io("sync", &tmp))?;
        self.vfs
            .rename(&tmp, &path)
            .map_err(self.io("rename", &tmp))?;
        self.vfs
            .sync_dir(&self.log_dir)
            .map_err(self.io("sync dir", &self.log_dir))?;
        self.segments.write().insert(base, file.clone());
        Ok(file)
    }

    fn append_frame(
        &self,
        w: &mut Writer,
        height: u64,
        frame: &[u8],
    ) -> Result<Location, StorageError> {
        let len = frame.len() as u64;
        let (base, file, end) = match w.active.take() {
            Some((base, file, end))
                if end <= SEGMENT_HEADER_LEN
                    || end.saturating_add(len) <= self.config.segment_size =>
            {
                (base, file, end)
            }
            _ => (height, self.new_segment(height)?, SEGMENT_HEADER_LEN),
        };
        let path = self.segment_path(base);
        // Keep the writer pointing at the pre-append end until the frame is
        // durable; a poisoned handle never writes again anyway.
        w.active = Some((base, file.clone(), end));
        file.write_at(end, frame).map_err(self.io("write", &path))?;
        file.sync_data().map_err(self.io("sync", &path))?;
        Ok(Location {
            segment: base,
            offset: end,
            frame_len: u32::try_from(frame.len()).map_err(|_| StorageError::TooLarge {
                len: frame.len(),
                max: MAX_FRAME_PAYLOAD,
            })?,
            hash: Hash::ZERO,
        })
    }

    fn write_batch(
        &self,
        txn: &redb::WriteTransaction,
        batch: &TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        // Staged now, used once the state tip reaches `batch.version`.
        let recent = RecentNodes {
            version: batch.version,
            nodes: batch
                .nodes
                .iter()
                .filter(|(k, _)| k.version == batch.version)
                .map(|(k, n)| (k.path, n.clone()))
                .collect(),
        };
        *self.recent.write() = Some(Arc::new(recent));
        // Inserted in key order: a version's nodes are adjacent in the
        // table (the key starts with the version, big-endian), so a commit
        // appends to the right edge of the B-tree instead of dirtying a
        // random leaf page per node.
        let mut rows: Vec<(Vec<u8>, &Node)> =
            batch.nodes.iter().map(|(k, n)| (node_key(k), n)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut nodes = txn.open_table(NODES).map_err(db_err)?;
        let mut buf = Vec::with_capacity(MAX_NODE_LEN + 4);
        for (k, node) in &rows {
            buf.clear();
            node.encode_to(&mut buf);
            let v = seal(k, &buf);
            if nodes
                .insert(k.as_slice(), v.as_slice())
                .map_err(db_err)?
                .is_some()
            {
                return Err(StorageError::InvalidBatch {
                    reason: "batch rewrites an existing node",
                });
            }
        }
        let mut rows: Vec<([u8; 40], &Option<Vec<u8>>)> = batch
            .values
            .iter()
            .map(|(kh, version, value)| (value_key(kh, *version), value))
            .collect();
        rows.sort_unstable_by_key(|a| a.0);
        let mut values = txn.open_table(VALUES).map_err(db_err)?;
        for (k, value) in &rows {
            buf.clear();
            match value {
                Some(bytes) => {
                    buf.push(1);
                    buf.extend_from_slice(bytes);
                }
                None => buf.push(0),
            }
            values
                .insert(k.as_slice(), seal(k, &buf).as_slice())
                .map_err(db_err)?;
        }
        if !batch.stale_nodes.is_empty() || !batch.stale_values.is_empty() {
            let k = batch.version.to_be_bytes();
            let v = encode_stale_row(batch).ok_or(StorageError::InvalidBatch {
                reason: "stale index too large",
            })?;
            let mut stale = txn.open_table(STALE).map_err(db_err)?;
            if stale
                .insert(&k[..], seal(&k, &v).as_slice())
                .map_err(db_err)?
                .is_some()
            {
                return Err(StorageError::InvalidBatch {
                    reason: "batch rewrites the stale index of an existing version",
                });
            }
        }
        Ok(())
    }

    fn commit_append(
        &self,
        height: u64,
        loc: &Location,
        batch: &TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        let txn = self.write_txn()?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            blocks
                .insert(height, loc.encode(height).as_slice())
                .map_err(db_err)?;
            let mut hashes = txn.open_table(HASHES).map_err(db_err)?;
            let k = loc.hash.as_bytes();
            hashes
                .insert(&k[..], seal(k, &height.to_le_bytes()).as_slice())
                .map_err(db_err)?;
            self.write_batch(&txn, batch)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            put_meta(&mut meta, META_APPLIED, &height.to_le_bytes())?;
            put_meta(&mut meta, META_STATE_LATEST, &height.to_le_bytes())?;
        }
        txn.commit().map_err(db_err)
    }

    fn read_txn(&self) -> Result<redb::ReadTransaction, StorageError> {
        self.db.begin_read().map_err(db_err)
    }
}

impl BlockStore for DurableStore {
    fn append(
        &self,
        block: &Block,
        certificate: &CommitCertificate,
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        let mut w = self.writer.lock();
        self.check_poison()?;
        let tip = *self.tip.read();
        check_append(
            self.chain_id.as_str(),
            tip.latest,
            tip.latest_hash,
            tip.state_latest,
            block,
            certificate,
            &state,
        )?;
        let height = block.header.height.get();
        let block_bytes = block.to_bytes();
        let cert_bytes = certificate.to_bytes();
        let frame =
            encode_frame(height, &block_bytes, &cert_bytes).ok_or(StorageError::TooLarge {
                len: 4 + block_bytes.len() + cert_bytes.len(),
                max: MAX_FRAME_PAYLOAD,
            })?;
        let hash = block.hash();
        let mut loc = self.poisoning(self.append_frame(&mut w, height, &frame))?;
        loc.hash = hash;
        self.poisoning(self.commit_append(height, &loc, &state))?;
        if let Some((_, _, end)) = w.active.as_mut() {
            *end = loc.offset.saturating_add(frame.len() as u64);
        }
        let mut t = self.tip.write();
        if t.latest == 0 {
            t.oldest = height;
        }
        t.latest = height;
        t.latest_hash = hash;
        t.state_latest = Some(height);
        Ok(())
    }

    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        let tip = *self.tip.read();
        let h = height.get();
        if h == 0 || h > tip.latest {
            return Ok(None);
        }
        if h < tip.oldest {
            return Err(StorageError::Pruned {
                what: "block",
                requested: h,
                oldest: tip.oldest,
            });
        }
        self.read_block(h).map(Some)
    }

    fn height_of(&self, hash: &Hash) -> Result<Option<Height>, StorageError> {
        let read = self.read_txn()?;
        let hashes = read.open_table(HASHES).map_err(db_err)?;
        let k = hash.as_bytes();
        let Some(v) = hashes.get(&k[..]).map_err(db_err)? else {
            return Ok(None);
        };
        let where_ = || format!("index block_hashes[{hash}]");
        let raw = unseal(k, v.value()).map_err(|r| StorageError::corrupt(where_(), r))?;
        let h = u64::from_le_bytes(
            raw.try_into()
                .map_err(|_| StorageError::corrupt(where_(), "wrong length"))?,
        );
        let tip = *self.tip.read();
        if h == 0 || h > tip.latest || h < tip.oldest {
            return Err(StorageError::corrupt(
                where_(),
                "height out of the stored range",
            ));
        }
        if self.location(h)?.hash != *hash {
            return Err(StorageError::corrupt(
                where_(),
                "hash and block index disagree",
            ));
        }
        Ok(Some(Height::new(h)))
    }

    fn latest_height(&self) -> Result<Height, StorageError> {
        Ok(Height::new(self.tip.read().latest))
    }

    fn oldest_height(&self) -> Result<Option<Height>, StorageError> {
        let t = *self.tip.read();
        Ok((t.latest > 0).then(|| Height::new(t.oldest)))
    }

    fn prune_blocks_below(&self, height: Height) -> Result<(), StorageError> {
        let w = self.writer.lock();
        self.check_poison()?;
        let tip = *self.tip.read();
        let below = height.get().min(tip.latest);
        if tip.latest == 0 || below <= tip.oldest {
            return Ok(());
        }
        let r = (|| {
            let txn = self.write_txn()?;
            {
                let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
                let mut hashes = txn.open_table(HASHES).map_err(db_err)?;
                for h in tip.oldest..below {
                    if let Some(v) = blocks.remove(h).map_err(db_err)? {
                        if let Ok(loc) = Location::decode(h, v.value()) {
                            hashes.remove(&loc.hash.as_bytes()[..]).map_err(db_err)?;
                        }
                    }
                }
                let mut meta = txn.open_table(META).map_err(db_err)?;
                put_meta(&mut meta, META_OLDEST, &below.to_le_bytes())?;
            }
            txn.commit().map_err(db_err)?;
            self.tip.write().oldest = below;
            // Delete segments holding only pruned heights: those followed
            // by a segment whose base is <= the new oldest height.
            let active = w.active.as_ref().map(|(b, _, _)| *b);
            let bases: Vec<u64> = self.segments.read().keys().copied().collect();
            let mut removed = false;
            for pair in bases.windows(2) {
                if let [b, next] = pair {
                    if *next <= below && Some(*b) != active {
                        let path = self.segment_path(*b);
                        self.segments.write().remove(b);
                        self.vfs
                            .remove_file(&path)
                            .map_err(self.io("remove", &path))?;
                        removed = true;
                    }
                }
            }
            if removed {
                self.vfs
                    .sync_dir(&self.log_dir)
                    .map_err(self.io("sync dir", &self.log_dir))?;
            }
            Ok(())
        })();
        self.poisoning(r)
    }
}

impl DurableStore {
    /// The read snapshot of the state tables for the current state tip,
    /// opened on first use after the tip changes. Versions only become
    /// known through the tip, which is updated after their commit, so a
    /// snapshot taken at the current tip holds every version a reader can
    /// ask for.
    fn state_reader(&self) -> Result<Arc<StateReader>, StorageError> {
        let at = {
            let t = self.tip.read();
            (t.state_latest, t.state_oldest)
        };
        if let Some(r) = self.reader.read().as_ref() {
            if r.at == at {
                return Ok(r.clone());
            }
        }
        let read = self.read_txn()?;
        let r = Arc::new(StateReader {
            at,
            nodes: read.open_table(NODES).map_err(db_err)?,
            values: read.open_table(VALUES).map_err(db_err)?,
        });
        *self.reader.write() = Some(r.clone());
        Ok(r)
    }
}

impl NodeStore for DurableStore {
    type Error = StorageError;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, StorageError> {
        let latest = self.tip.read().state_latest;
        if let Some(recent) = self.recent.read().as_ref() {
            if recent.version == key.version && latest.is_some_and(|l| l >= recent.version) {
                if let Some(node) = recent.nodes.get(&key.path) {
                    return Ok(Some(node.clone()));
                }
            }
        }
        let reader = self.state_reader()?;
        let k = node_key(key);
        let Some(v) = reader.nodes.get(k.as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let where_ = || format!("index smt_nodes[{key:?}]");
        let raw = unseal(&k, v.value()).map_err(|r| StorageError::corrupt(where_(), r))?;
        decode_exact::<Node>(raw, MAX_NODE_LEN)
            .map(Some)
            .map_err(|e| StorageError::corrupt(where_(), e.to_string()))
    }

    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let reader = self.state_reader()?;
        let lo = value_key(key_hash, 0);
        let hi = value_key(key_hash, version);
        let mut range = reader
            .values
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(db_err)?;
        let Some(entry) = range.next_back() else {
            return Ok(None);
        };
        let (k, v) = entry.map_err(db_err)?;
        let where_ = || format!("index smt_values[{key_hash}]");
        let raw = unseal(k.value(), v.value()).map_err(|r| StorageError::corrupt(where_(), r))?;
        match raw.split_first() {
            Some((0, [])) => Ok(None),
            Some((1, bytes)) => Ok(Some(bytes.to_vec())),
            _ => Err(StorageError::corrupt(where_(), "bad value tag")),
        }
    }

    fn oldest_readable_version(&self) -> Result<Option<Version>, StorageError> {
        Ok(self.tip.read().state_oldest)
    }
}

impl StateStore for DurableStore {
    fn latest_version(&self) -> Result<Option<Version>, StorageError> {
        Ok(self.tip.read().state_latest)
    }

    fn commit_state(&self, batch: TreeUpdateBatch) -> Result<(), StorageError> {
        let _w = self.writer.lock();
        self.check_poison()?;
        let tip = *self.tip.read();
        check_genesis(tip.latest, tip.state_latest, &batch)?;
        let r = (|| {
            let txn = self.write_txn()?;
            self.write_batch(&txn, &batch)?;
            {
                let mut meta = txn.open_table(META).map_err(db_err)?;
                put_meta(&mut meta, META_STATE_LATEST, &batch.version.to_le_bytes())?;
            }
            txn.commit().map_err(db_err)
        })();
        self.poisoning(r)?;
        self.tip.write().state_latest = Some(batch.version);
        Ok(())
    }

    fn prune_state_below(&self, version: Version) -> Result<(), StorageError> {
        let _w = self.writer.lock();
        self.check_poison()?;
        let tip = *self.tip.read();
        let Some(latest) = tip.state_latest else {
            return Ok(());
        };
        let below = version.min(latest);
        if tip.state_oldest.is_some_and(|o| o >= below) {
            return Ok(());
        }
        let r = (|| {
            let txn = self.write_txn()?;
            {
                let upper = below.saturating_add(1).to_be_bytes();
                delete_stale(&txn, &upper)?;
                let mut meta = txn.open_table(META).map_err(db_err)?;
                put_meta(&mut meta, META_STATE_OLDEST, &below.to_le_bytes())?;
            }
            txn.commit().map_err(db_err)
        })();
        self.poisoning(r)?;
        self.tip.write().state_oldest = Some(below);
        Ok(())
    }
}

/// Deletes every stale index row whose key (a big-endian `stale_since`
/// version) is below `upper`, together with every node and value entry it
/// lists. Each row's seal is checked first, so a corrupted index is
/// reported rather than used to delete the wrong rows.
fn delete_stale(txn: &redb::WriteTransaction, upper: &[u8]) -> Result<(), StorageError> {
    let mut stale = txn.open_table(STALE).map_err(db_err)?;
    let mut nodes = txn.open_table(NODES).map_err(db_err)?;
    let mut values = txn.open_table(VALUES).map_err(db_err)?;
    let rows: Vec<(Vec<u8>, Vec<u8>)> = stale
        .range(..upper)
        .map_err(db_err)?
        .map(|e| e.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_err)?;
    for (k, v) in &rows {
        let what = || format!("index smt_stale[{k:02x?}]");
        let raw = unseal(k, v).map_err(|r| StorageError::corrupt(what(), r))?;
        let (node_keys, value_keys) =
            decode_stale_row(raw).map_err(|r| StorageError::corrupt(what(), r))?;
        for nk in node_keys {
            nodes.remove(nk).map_err(db_err)?;
        }
        for vk in value_keys {
            values.remove(vk).map_err(db_err)?;
        }
        stale.remove(k.as_slice()).map_err(db_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;

    use super::*;
    use govchain_core::block::{tx_root_of, BlockHeader, HEADER_VERSION};
    use govchain_core::cert::certify;
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::smt::{Child, SparseMerkleTree};
    use govchain_core::types::{Round, Timestamp};

    /// Every node key reachable from the roots of `versions`.
    fn reachable(
        store: &DurableStore,
        versions: std::ops::RangeInclusive<u64>,
    ) -> HashSet<Vec<u8>> {
        let mut seen = HashSet::new();
        let mut stack: Vec<NodeKey> = versions.map(NodeKey::root).collect();
        while let Some(key) = stack.pop() {
            if !seen.insert(node_key(&key)) {
                continue;
            }
            if let Node::Internal(page) = store.get_node(&key).unwrap().unwrap() {
                for (slot, child) in page.children() {
                    if let Child::Internal { version, .. } = child {
                        stack.push(NodeKey {
                            version: *version,
                            path: key.path.nibble_child(slot),
                        });
                    }
                }
            }
        }
        seen
    }

    fn stored_node_keys(store: &DurableStore) -> HashSet<Vec<u8>> {
        let read = store.db.begin_read().unwrap();
        let nodes = read.open_table(NODES).unwrap();
        nodes
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().to_vec())
            .collect()
    }

    /// Pruning through the per-version stale rows deletes exactly the pages
    /// no retained version reaches, and the value entries no retained
    /// version reads.
    #[test]
    fn prune_deletes_exactly_the_unreachable_pages() {
        let dir = tempfile::tempdir().unwrap();
        let chain = ChainId::new("prune-test").unwrap();
        let store =
            DurableStore::open(dir.path(), chain.clone(), DurableConfig::default()).unwrap();
        let tree = SparseMerkleTree::new(&store);
        let key = |i: u64| KeyHash::of(&i.to_le_bytes());
        let (_, genesis) = tree
            .apply_batch(None, 0, &[(key(0), Some(vec![0]))])
            .unwrap();
        store.commit_state(genesis).unwrap();
        let signer = SecretKey::from_seed(&[3; 32]);
        let mut parent = Hash::ZERO;
        for h in 1..=8u64 {
            // Inserts, overwrites and deletes over a 600-key range.
            let updates: Vec<_> = (0..300u64)
                .map(|i| {
                    let k = (i * 7 + h * 131) % 600;
                    (key(k), (k % 5 != h % 5).then(|| vec![h as u8; 4]))
                })
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let (root, batch) = tree.apply_batch(Some(h - 1), h, &updates).unwrap();
            let header = BlockHeader {
                version: HEADER_VERSION,
                chain_id: chain.clone(),
                height: Height::new(h),
                time: Timestamp::new(h),
                parent_hash: parent,
                tx_root: tx_root_of(&[]),
                tx_count: 0,
                state_root: root,
                history_root: Hash::ZERO,
                validator_set_hash: Hash::ZERO,
                next_validator_set_hash: Hash::ZERO,
                proposer: signer.public_key(),
            };
            let block = Block {
                header,
                transactions: Vec::new(),
            };
            let cert = certify(
                &chain,
                Height::new(h),
                Round::new(0),
                block.hash(),
                &[&signer],
            );
            store.append(&block, &cert, batch).unwrap();
            parent = block.hash();
        }
        let roots: Vec<Hash> = (0..=8)
            .map(|v| store.state_root(v).unwrap().unwrap())
            .collect();
        assert_eq!(stored_node_keys(&store), reachable(&store, 0..=8));
        for below in [3u64, 6, 8] {
            store.prune_state_below(below).unwrap();
            assert_eq!(stored_node_keys(&store), reachable(&store, below..=8));
            for v in below..=8 {
                assert_eq!(tree.root_hash(v).unwrap(), roots[v as usize]);
                for i in (0..600).step_by(7) {
                    let (value, proof) = tree.get_with_proof(&key(i), v).unwrap();
                    proof
                        .verify(&roots[v as usize], &key(i), value.as_deref())
                        .unwrap();
                }
            }
            // Stale rows at or below the horizon are gone.
            let read = store.db.begin_read().unwrap();
            let stale = read.open_table(STALE).unwrap();
            let first = stale
                .iter()
                .unwrap()
                .next()
                .map(|e| e.unwrap().0.value().to_vec());
            assert!(first.is_none_or(|k| k.as_slice() > below.to_be_bytes().as_slice()));
        }
        // Every live key of the retained version still has its value row.
        let read = store.db.begin_read().unwrap();
        let values = read.open_table(VALUES).unwrap();
        let live = (0..600u64)
            .filter(|i| tree.get(&key(*i), 8).unwrap().is_some())
            .count();
        let entries = values.iter().unwrap().count();
        assert!(entries >= live, "{entries} < {live}");
    }
}
