//! [`DurableStore`]: the embedded default — a segmented append-only block
//! log plus a redb database for the index and the state, both on a [`Vfs`].
//! The block log is a write-ahead log (as in SQLite's WAL or LevelDB): its
//! frames are the single point of durability, and the redb index is a
//! cache of them that is made durable only every few appends.
//!
//! # Layout of a store directory
//! ```text
//! MANIFEST                  magic, format version, chain id, CRC (written once)
//! LOCK                      empty; locked by the open handle (not part of the format)
//! index.redb                redb: block index, hash index, transaction ids per block, SMT nodes/values, meta
//! index.sum                 a CRC-32C of every 4 KiB page of index.redb (see Verified reads)
//! log/00000000000000000001.seg   segment: header, then frames for heights 1..
//! log/00000000000000004711.seg   a later segment, named by its first height
//! ```
//!
//! Each frame holds a block, its commit certificate *and* the state batch
//! the block's execution produced ([`encode_frame`],
//! [`encode_state_batch`]). The index's
//! `meta` table holds, besides the applied height and the state tip, the
//! **clean-shutdown marker** `meta["clean_shutdown"]` (sealed, one byte:
//! `1` after a clean close, `0` while a handle is open).
//!
//! # Write order of [`append`](BlockStore::append)
//! 1. the frame (block, certificate, state batch) is written at the end of
//!    the active segment and the segment is `fdatasync`ed. This is the
//!    durability point: once the sync returns, the block survives any crash;
//! 2. one redb write transaction inserts the location and hash records,
//!    the block's transaction ids (`block_tx_ids`: opening a chain indexes
//!    its transactions from these rows instead of decoding every block;
//!    a height written before the table existed has no row and is read
//!    from its frame), the state batch and the new applied height,
//!    committed with [`redb::Durability::None`] (no sync: visible to
//!    readers, not durable);
//! 3. append returns `Ok` — the acknowledgement.
//!
//! Every [`DurableConfig::checkpoint_interval`] appends (default
//! [`DEFAULT_CHECKPOINT_INTERVAL`] = 64), or once
//! [`DurableConfig::checkpoint_bytes`] of frames have been appended since the
//! last one, the append's redb commit is made durable instead (a
//! *checkpoint*: immediate durability, two-phase commit), so recovery
//! replays at most that many frames. Pruning, the genesis state commit and
//! a clean close always commit durably, so they are checkpoints too.
//!
//! A new segment is created as `NAME.tmp`, synced, renamed to `NAME`, and
//! the `log` directory is synced, before any frame goes into it.
//!
//! # Recovery on open
//! The durable index names a prefix of the log: the blocks up to its
//! applied height `d`. The frame of `d`, and every segment header, must
//! verify; a damaged frame there is [`StorageError::Corruption`]. Then the
//! frames after `d` are scanned in log order: every complete frame whose
//! checksums hold and which continues the chain (height `d+1`, `d+2`, …,
//! parent hash, certificate and state batch matching) is re-applied to the
//! index (locations, hashes, state batch) — a checksum-valid frame that does
//! not continue the chain is corruption. At the first frame that is
//! incomplete or fails its checksum, the rest of the log is searched for any
//! further checksum-valid frame: if there is one, acknowledged data behind
//! a damaged frame would be lost, and open reports
//! [`StorageError::Corruption`] instead of skipping it; otherwise it is the
//! torn tail of an unacknowledged append and is truncated (later segments
//! deleted). The replayed segments are synced, then one durable redb
//! commit records the replayed blocks. Finally the state root at the
//! applied height must equal the one in that block's header.
//!
//! A frame whose sync succeeded but whose index commit failed (the append
//! returned an error and poisoned the handle) is durable, so it is
//! recovered by the next open: an append that returns an error may still
//! turn out committed after a reopen, never partly.
//!
//! # Log compaction (format 5)
//! A frame's state batch is needed only until a checkpoint has made the
//! index durable past it: recovery replays frames after the durable
//! applied height and nothing else reads batches. With
//! [`DurableConfig::compact_log`], right after a checkpoint every full
//! segment (not the active one) whose blocks all lie below the applied
//! height is rewritten with its frames' state batches *elided*: the same
//! frame layout with an empty state part (a real batch is never empty: it
//! starts with its version). The copy `NAME.compact` is written and
//! synced (file and directory), one durable index commit names its frames
//! and records `meta["log_compacting"]` and `meta["log_compacted_below"]`,
//! then the copy is renamed over the segment and the `log` directory
//! synced. On
//! open, a `.compact` copy is renamed into place if `log_compacting` names
//! it (its commit happened) and deleted otherwise. An elided batch below
//! `log_compacted_below` passes [`verify`](DurableStore::verify); anywhere
//! else it is corruption. With 1,000-transaction blocks and a large state
//! the batch is most of a frame (the tree pages a block rewrote), so the
//! log shrinks to about the blocks themselves.
//!
//! # Coalesced appends (format 7)
//! [`append_coalesced`](BlockStore::append_coalesced) stores blocks
//! `a..=b` with one coalesced state batch (the pages and values version
//! `b` uses that the blocks wrote; versions `a..b` are never stored):
//! 1. the frames of `a..b` carry a *deferred* state part naming `a` and `b`
//!    ([`encode_deferred_state`]); they are written, then every segment
//!    they went to is synced;
//! 2. the closing frame of `b`, carrying the coalesced batch, is written
//!    and synced: the durability point of the whole append;
//! 3. one redb write transaction inserts every block's records and the
//!    batch's rows, prunes every version below `b` (the stale rows up to
//!    `b`, including the one this batch wrote for the older pages it
//!    replaced) and sets the applied height to `b`; durable or not as for
//!    an ordinary append (it counts `b - a + 1` appends toward the next
//!    checkpoint).
//!
//! Recovery replays such a run whole: deferred frames are collected until
//! their closing frame, whose batch is checked against the last header's
//! state root and written as in step 3. A run without its closing frame
//! was never acknowledged and is truncated with the torn tail. Because the
//! deferred frames are synced together, a crash may keep any subset of
//! them: a checksum-valid frame after a damaged one is part of the torn
//! tail (not evidence of lost acknowledged data) only if it is a deferred
//! frame of the same run — the run being replayed, or one whose first
//! height is the first height missing; anything else is corruption, as
//! before.
//!
//! # Format upgrades (5 to 6 to 7)
//! Format 7 only added the deferred frame state part, so a format-6 store
//! is upgraded by recording format 7 in `meta["format"]` (in the open's
//! first durable transaction) and then rewriting the `MANIFEST`; a
//! format-5 store goes through the 5-to-6 rewrite below first, in the
//! same transaction.
//!
//! Format 6 changed only the index: value rows are keyed by (version, key
//! hash) in the table `smt_values_by_version`, where format 5 keyed them
//! by (key hash, version) in `smt_values` (see
//! [`FORMAT_VERSION`]). Opening a format-5
//! store upgrades it in place, under the store lock and before recovery:
//! 1. one durable redb transaction moves every value row to the new table
//!    (each checked against its seal, then re-keyed and re-sealed;
//!    deletion markers, which format 6 does not need, are dropped),
//!    deletes the old table, rewrites the value keys listed in every
//!    stale-index row and sets `meta["format"]` to 6;
//! 2. the `MANIFEST` is rewritten for format 6 (temporary file, sync,
//!    rename, directory sync);
//! 3. recovery replays the log as usual: its frames and segment headers
//!    are the same in both formats, so the frames of a format-5 log are
//!    replayed into the new layout.
//!
//! A crash before step 1 commits leaves a format-5 store, upgraded from
//! scratch by the next open; a crash after it leaves a format-6 index
//! under a format-5 manifest, and the next open only rewrites the
//! manifest. The transaction streams the tables, so its memory does not
//! grow with the state; it logs (`tracing`, level info) the rows it moved.
//!
//! # Clean shutdown
//! Opening clears the clean-shutdown marker in its first (durable) write,
//! before any recovery write. A clean close — [`DurableStore::close`] or
//! dropping a handle that is not poisoned — makes the index durable and
//! sets the marker in one durable commit.
//!
//! After a clean shutdown, open does not read the whole index: redb's
//! integrity check runs only when the marker is missing (after a crash, a
//! failed close or a poisoned handle, [`DurableConfig::check_index_on_open`])
//! or when forced ([`DurableConfig::force_index_check_on_open`], default
//! `false`), so reopening after a clean shutdown costs the same for any
//! chain length. Damage done while the store was closed is caught at read
//! time instead — see *Verified reads*.
//!
//! # Verified reads
//! Every read returns exactly what was committed, or
//! [`StorageError::Corruption`]; never other data, never a panic.
//! - **Index pages** (`index.redb`). redb verifies its page checksums only
//!   in its full integrity check, never on an ordinary read, and a damaged
//!   key or page reference can make a lookup miss its row and find an older
//!   intact one, or make redb panic. So the index file is read through a
//!   checksummed layer (SQLite's `cksumvfs` idea): every 4 KiB page has a
//!   CRC-32C, keyed by its position, in `index.sum`, checked on every read
//!   from disk before redb parses the page (see
//!   [`encode_page_sum`](crate::format::encode_page_sum) and
//!   the `pagesum` module). A page that fails is
//!   reported as corruption; redb then refuses the file, and the handle is
//!   poisoned.
//! - **Index rows.** Every value is sealed with a CRC-32C of key and value
//!   ([`seal`]): a row served under another key is caught (the second,
//!   independent check behind the page checksum).
//! - **State.** A page of the state tree is keyed by (version, path), a
//!   value row by (version, key hash); both are written once and sealed
//!   with their key. A value is read "as of" a version (the value at the
//!   greatest version `<=` it, as the executor's state view reads) through
//!   the state tree of that version: the key's leaf names the version that
//!   wrote the live value, and the row of exactly that version is read —
//!   so a lost or hidden latest row cannot make an older one pass as
//!   current. A missing row is corruption; a key without a leaf is absent
//!   (a deletion writes no row). Reads as of a pruned version are
//!   [`StorageError::Pruned`].
//! - **Blocks.** A read by height checks the frame's header (height, length)
//!   against its index entry, the block part's CRC, and the decoded block's
//!   height and BLAKE3 hash against the entry; a height inside the stored
//!   range with no entry is corruption, not "not found". A read by hash
//!   checks that the height it maps to indexes the same hash.
//! - **Panics.** Whatever is left (damage that keeps a CRC, a redb bug) is
//!   contained: a panic inside redb becomes corruption and poisons the
//!   handle (see `contain_panic`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use govchain_core::block::{Block, MAX_BLOCK_ENCODED_LEN};
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::hash::Hash;
use govchain_core::smt::{
    Child, KeyHash, LeafNode, Node, NodeKey, NodePath, NodeStore, TreeUpdateBatch, Version,
    MAX_NODE_LEN,
};
use govchain_core::types::{ChainId, Height};
use parking_lot::{Mutex, RwLock};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::error::{db_err, StorageError};
use crate::format::{
    block_part_len, check_segment_header, decode_stale_row, decode_state_batch, deferred_state,
    encode_deferred_state, encode_frame, encode_segment_header, encode_stale_row,
    encode_state_batch, node_key, parse_frame_header, seal, split_block_part, split_frame,
    stale_row_from_v5, unseal, value_key, value_key_from_v5, Location, Manifest, ManifestError,
    FORMAT_VERSION, FRAME_HEADER_LEN, FRAME_HEAD_LEN, FRAME_MAGIC, MAX_CERT_LEN, MAX_FRAME_PAYLOAD,
    MAX_STATE_LEN, OLDEST_UPGRADABLE_FORMAT, SEGMENT_HEADER_LEN,
};
use crate::latest_values::LatestValues;
use crate::pagesum::{ChecksummedFile, DamageRecord};
use crate::traits::{
    check_append, check_batch_root, check_coalesced, check_follows, check_genesis, BlockStore,
    StateStore, StoredBlock,
};
use crate::vfs::{FileLock, OpenMode, Vfs, VfsFile};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const HASHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("block_hashes");
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_nodes");
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_values_by_version");
/// The value table of format 5 (keys `key_hash | version`): read once, by
/// the upgrade to format 6, then deleted.
const VALUES_V5: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_values");
/// The stale index: one row per version that made anything stale, keyed by
/// that version (big-endian), listing every node and value entry it
/// replaced ([`encode_stale_row`]). One row per version instead of one per
/// entry: the index costs one insert per commit and one range scan per
/// prune.
const STALE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("smt_stale");
/// Height → the ids of the block's transactions, 32 bytes each in block
/// order, sealed: what opening a chain needs to index its transactions
/// without reading and decoding every block. Written with the block's
/// location; a height without a row (written before the table existed) is
/// served from its frame.
const TX_IDS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_tx_ids");

const META_FORMAT: &str = "format";
const META_CHAIN: &str = "chain_id";
const META_APPLIED: &str = "applied_height";
const META_OLDEST: &str = "oldest_height";
const META_STATE_LATEST: &str = "state_latest";
const META_STATE_OLDEST: &str = "state_oldest";
const META_CLEAN: &str = "clean_shutdown";
/// The first height whose frame still carries its state batch: every
/// segment below it was compacted ([`DurableConfig::compact_log`]).
const META_COMPACTED: &str = "log_compacted_below";
/// The base of the last segment whose compacted copy the index names (its
/// `.compact` file is renamed over the segment on open if it is still there).
const META_COMPACTING: &str = "log_compacting";
/// Suffix of a segment's compacted copy before it is renamed into place.
const COMPACT_SUFFIX: &str = ".compact";

/// Default [`DurableConfig::checkpoint_interval`]: the index is made
/// durable every 64 appends, so recovery after a crash replays at most 64
/// frames, while 63 of 64 appends cost one sync (the frame's) instead of
/// three.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 64;

/// Default [`DurableConfig::checkpoint_bytes`]: 64 MiB of frames.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Name of the redb index file.
pub const INDEX_FILE: &str = "index.redb";
/// Name of the file holding a checksum of every page of the index
/// ([`encode_page_sum`](crate::format::encode_page_sum)), checked on every
/// read of the index from disk.
pub const INDEX_SUMS_FILE: &str = "index.sum";
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
    /// Run redb's integrity check (every page checksum, through the tree
    /// structure: a full read of the index) on open when the previous
    /// shutdown was not clean (no clean-shutdown marker: a crash, a failed
    /// close or a poisoned handle); a failure is reported as corruption
    /// rather than repaired away. Default `true`.
    pub check_index_on_open: bool,
    /// Run redb's integrity check on every open, even after a clean
    /// shutdown. Default `false`: every read of the index from disk is
    /// verified against its page checksum (`index.sum`), so damage done
    /// while the store was closed is reported by the first read that meets
    /// it, and a clean reopen costs the same at any chain length (see the
    /// [module docs](self)). `true` is for operators who want damage found
    /// at open rather than on a read, and who want redb's parent-held
    /// checksums to catch what page checksums cannot (a write the disk lost
    /// from both files); opening then reads the whole index.
    pub force_index_check_on_open: bool,
    /// Make the index durable (a checkpoint) every this many appends; the
    /// other appends commit the index without a sync, the frame sync being
    /// their durability. Recovery replays at most this many frames. At
    /// least 1 (1: every append syncs the index too). Default
    /// [`DEFAULT_CHECKPOINT_INTERVAL`].
    pub checkpoint_interval: u64,
    /// Also checkpoint once this many bytes of frames have been appended
    /// since the last checkpoint, to bound replay work for large blocks.
    /// Default [`DEFAULT_CHECKPOINT_BYTES`].
    pub checkpoint_bytes: u64,
    /// Decoded state-tree pages kept in memory after being read from the
    /// index (0: none). Pages are immutable — a key names one version's
    /// page — so a cached page is always the stored one; the cache only
    /// saves the index lookups and decoding that dominate state updates
    /// once the tree outgrows redb's page cache. Default 65,536 (tens of
    /// MiB: the upper four levels of a tree of a million keys).
    pub node_cache_entries: usize,
    /// Answers of value reads at the latest state version kept in memory
    /// and kept current by every commit (0: none): a node reads the
    /// latest state for every transaction it admits, validates and
    /// executes — sender nonces above all — and a key a block does not
    /// write keeps its answer. Default 262,144 (a few tens of MiB with
    /// small values); the cache is emptied when full.
    pub latest_value_cache_entries: usize,
    /// Reclaim the log space of state batches the index has made durable:
    /// once a checkpoint covers every block of a full (no longer active)
    /// segment, the segment is rewritten with each frame's state batch
    /// elided (the block and certificate stay, byte for byte), so the log
    /// holds about the blocks and not the state pages they wrote. The
    /// batches are never read again — recovery replays only frames after
    /// the durable applied height — so this loses nothing; it costs a read
    /// of the segment and a write of its block parts. Default `false`.
    /// See the module docs, *Log compaction*.
    pub compact_log: bool,
}

impl Default for DurableConfig {
    fn default() -> Self {
        DurableConfig {
            segment_size: 64 * 1024 * 1024,
            cache_size: 64 * 1024 * 1024,
            verify_log_on_open: false,
            check_index_on_open: true,
            force_index_check_on_open: false,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
            node_cache_entries: 65_536,
            latest_value_cache_entries: 262_144,
            compact_log: false,
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
        if self.checkpoint_interval == 0 {
            return Err(StorageError::InvalidConfig {
                reason: "checkpoint_interval must be at least 1",
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
    /// Pages read from the index, decoded ([`DurableConfig::node_cache_entries`]).
    node_cache: NodeCache,
    /// Value reads at the latest state version
    /// ([`DurableConfig::latest_value_cache_entries`]).
    latest_values: LatestValues,
    db: redb::Database,
    writer: Mutex<Writer>,
    segments: RwLock<BTreeMap<u64, Arc<dyn VfsFile>>>,
    tip: RwLock<Tip>,
    poison: Mutex<Option<String>>,
    /// The first damaged index page found by a read (redb refuses every
    /// later access of the index file after it).
    damage: DamageRecord,
    /// The first height whose frame still carries its state batch
    /// (`meta["log_compacted_below"]`); frames below it may have it elided.
    compacted_below: AtomicU64,
    /// Held for reading while a frame is located and read, for writing
    /// while a compacted segment replaces its original (index, file and
    /// open handle change together).
    compaction: RwLock<()>,
    /// Set once open succeeded, cleared by the clean close: a handle whose
    /// open failed writes no clean-shutdown marker.
    open: AtomicBool,
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

impl Drop for DurableStore {
    /// The clean close of [`DurableStore::close`], its error ignored: a
    /// failed clean close leaves the marker unset, and the next open runs
    /// the checks of an unclean shutdown.
    fn drop(&mut self) {
        let _ = self.shutdown();
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
    /// Appends whose index commit was not durable, since the last durable
    /// commit.
    since_checkpoint: u64,
    /// Their frame bytes.
    bytes_since_checkpoint: u64,
}

/// A state batch checked and encoded for the index: sorted, sealed rows.
struct IndexRows {
    version: Version,
    /// `(smt_nodes key, sealed value)`, in key order.
    nodes: Vec<(Vec<u8>, Vec<u8>)>,
    /// `(smt_values key, sealed value)`, in key order.
    values: Vec<([u8; 40], Vec<u8>)>,
    /// The sealed `smt_stale` row, if the batch made anything stale.
    stale: Option<Vec<u8>>,
    /// Shared with the store once written (not copied: thousands of pages
    /// for a large block).
    recent: Arc<RecentNodes>,
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

/// The state of a replay during recovery: the next height, its parent,
/// the state tip, the open index transaction and the segments replayed
/// from (to be synced).
struct Replay {
    expected: u64,
    parent: Hash,
    state_latest: Option<Version>,
    txn: Option<redb::WriteTransaction>,
    synced: Vec<u64>,
    /// The frames of a coalesced append read so far, whose closing frame
    /// has not been reached.
    run: Option<DeferredRun>,
    /// The state version a replayed coalesced append pruned below.
    pruned_to: Option<Version>,
}

/// Deferred frames of a coalesced append, during replay.
struct DeferredRun {
    /// The height whose frame closes the run.
    closing: u64,
    /// Where the run's first frame starts (segment base, offset).
    start: (u64, u64),
    /// `expected` and `parent` before the run.
    before: (u64, Hash),
    /// Each block's height, location and transaction-id row.
    blocks: Vec<(u64, Location, Vec<u8>)>,
}

/// Reads `buf.len()` bytes of an indexed frame; running past the end of
/// the segment is corruption (the index names bytes that are not there).
fn read_indexed(
    file: &dyn VfsFile,
    path: &Path,
    here: &dyn Fn() -> String,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), StorageError> {
    file.read_at(offset, buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            StorageError::corrupt(here(), "indexed frame extends past the segment end")
        } else {
            StorageError::io("read", path, e)
        }
    })
}

/// Decodes the block and certificate of an indexed frame and checks them
/// against the index entry.
fn decode_stored(
    height: u64,
    loc: &Location,
    block_bytes: &[u8],
    cert_bytes: &[u8],
) -> Result<StoredBlock, String> {
    let block = Block::decode(block_bytes, MAX_BLOCK_ENCODED_LEN)
        .map_err(|e| format!("block does not decode: {e}"))?;
    if block.hash() != loc.hash || block.header.height.get() != height {
        return Err("block hash differs from the index".into());
    }
    if cert_bytes.len() > MAX_CERT_LEN {
        return Err("certificate too long".into());
    }
    let certificate = CommitCertificate::decode(cert_bytes)
        .map_err(|e| format!("certificate does not decode: {e}"))?;
    Ok(StoredBlock { block, certificate })
}

/// The `block_tx_ids` row of `block`: its transactions' ids, in order.
fn encode_tx_id_row(block: &Block) -> Vec<u8> {
    let mut row = Vec::with_capacity(block.transactions.len() * 32);
    for tx in &block.transactions {
        row.extend_from_slice(tx.id().as_bytes());
    }
    row
}

/// Parses a `block_tx_ids` row of `height` (sealed).
fn parse_tx_id_row(height: u64, sealed: &[u8]) -> Result<Vec<Hash>, StorageError> {
    let where_ = || format!("index block_tx_ids[{height}]");
    let raw =
        unseal(&height.to_be_bytes(), sealed).map_err(|r| StorageError::corrupt(where_(), r))?;
    if raw.len() % 32 != 0 {
        return Err(StorageError::corrupt(
            where_(),
            "length is not a multiple of 32",
        ));
    }
    Ok(raw
        .chunks_exact(32)
        .map(|c| {
            let mut id = [0u8; 32];
            id.copy_from_slice(c);
            Hash::from_bytes(id)
        })
        .collect())
}

/// Checks a state batch and encodes it into sorted, sealed index rows —
/// all before the frame is written, so that once the frame is durable the
/// index commit can fail only on I/O (or an index that is already
/// corrupt). Refuses entries outside the versions `first..=batch.version`
/// (only the batch's own version unless it is a coalesced batch), a node
/// key written twice, and a stale index too large to encode.
fn prepare_rows(batch: &TreeUpdateBatch, first: Version) -> Result<IndexRows, StorageError> {
    if batch
        .entry_versions()
        .any(|v| !(first..=batch.version).contains(&v))
    {
        return Err(StorageError::InvalidBatch {
            reason: "batch has an entry at another version than its own",
        });
    }
    // Inserted in key order: a version's nodes are adjacent in the table
    // (the key starts with the version, big-endian), so a commit appends to
    // the right edge of the B-tree instead of dirtying a random leaf page
    // per node.
    let mut buf = Vec::with_capacity(MAX_NODE_LEN + 4);
    let mut nodes: Vec<(Vec<u8>, Vec<u8>)> = batch
        .nodes
        .iter()
        .map(|(k, n)| {
            let k = node_key(k);
            buf.clear();
            n.encode_to(&mut buf);
            let v = seal(&k, &buf);
            (k, v)
        })
        .collect();
    nodes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    if nodes
        .windows(2)
        .any(|w| w.first().map(|a| &a.0) == w.get(1).map(|b| &b.0))
    {
        return Err(StorageError::InvalidBatch {
            reason: "batch writes a node twice",
        });
    }
    // A deletion writes no row: a read goes through the key's leaf, and a
    // deleted key has none. Value keys start with the version too, so these
    // rows also go to the table's right edge.
    let mut values: Vec<([u8; 40], Vec<u8>)> = batch
        .values
        .iter()
        .filter_map(|(kh, version, value)| {
            let bytes = value.as_ref()?;
            let k = value_key(kh, *version);
            buf.clear();
            buf.push(1);
            buf.extend_from_slice(bytes);
            let v = seal(&k, &buf);
            Some((k, v))
        })
        .collect();
    values.sort_by_key(|a| a.0);
    let stale = if !batch.stale_nodes.is_empty() || !batch.stale_values.is_empty() {
        let k = batch.version.to_be_bytes();
        let v = encode_stale_row(batch).ok_or(StorageError::InvalidBatch {
            reason: "stale index too large",
        })?;
        Some(seal(&k, &v))
    } else {
        None
    };
    let recent = Arc::new(RecentNodes {
        version: batch.version,
        nodes: batch
            .nodes
            .iter()
            .filter(|(k, _)| k.version == batch.version)
            .map(|(k, n)| (k.path, n.clone()))
            .collect(),
    });
    Ok(IndexRows {
        version: batch.version,
        nodes,
        values,
        stale,
        recent,
    })
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
        let manifest_format = Self::check_manifest(vfs.as_ref(), &dir, &chain_id)?;
        if manifest_format.is_none() {
            Self::write_manifest(vfs.as_ref(), &dir, &chain_id)?;
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
        // The page checksums of a new index are written from scratch (a
        // stale `index.sum` of an index that never got its name is
        // truncated); an existing index must have them.
        let tmp_path = dir.join("index.redb.tmp");
        let sums_path = dir.join(INDEX_SUMS_FILE);
        let (file, sums) = if index_exists {
            let sums = vfs.open(&sums_path, OpenMode::Existing).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    StorageError::corrupt(
                        sums_path.display().to_string(),
                        "the index's page checksum file is missing",
                    )
                } else {
                    StorageError::io("open", &sums_path, e)
                }
            })?;
            let file = vfs
                .open(&index_path, OpenMode::Existing)
                .map_err(io("open", &index_path))?;
            (file, sums)
        } else {
            let sums = vfs
                .open(&sums_path, OpenMode::Truncate)
                .map_err(io("create", &sums_path))?;
            let file = vfs
                .open(&tmp_path, OpenMode::Truncate)
                .map_err(io("create", &tmp_path))?;
            (file, sums)
        };
        let damage = DamageRecord::default();
        let backend = ChecksummedFile::open(file, sums, !index_exists, damage.clone())
            .map_err(|e| db_err(redb::StorageError::from(e)))?;
        // redb 4.6 panics instead of returning an error on some corrupted
        // allocator states ("Malformed allocator state"); the contract of
        // this crate is a typed corruption error, never a panic. (With
        // `panic = "abort"` the process still aborts.)
        let cache_size = config.cache_size;
        let opened = contain_panic(move || {
            redb::Database::builder()
                .set_cache_size(cache_size)
                .create_with_backend(backend)
                .map_err(db_err)
        });
        let mut db = opened.map_err(|e| damage.classify(e))?;
        if !index_exists {
            vfs.rename(&tmp_path, &index_path)
                .map_err(io("rename", &tmp_path))?;
            vfs.sync_dir(&dir).map_err(io("sync dir", &dir))?;
        }
        // The integrity check reads the whole index: run it only when the
        // previous shutdown was not clean (or when forced).
        let clean = index_exists && Self::was_clean(&db);
        let check = index_exists
            && (config.force_index_check_on_open || (config.check_index_on_open && !clean));
        if check {
            // Guarded like the open above: a damaged page must give a
            // typed error, not a panic.
            let checked = contain_panic(|| db.check_integrity().map_err(db_err))
                .map_err(|e| damage.classify(e))?;
            if !checked {
                return Err(StorageError::corrupt(
                    index_path.display().to_string(),
                    "index database failed its integrity check",
                ));
            }
        }
        if !log_exists {
            vfs.create_dir_all(&log_dir)
                .map_err(io("mkdir", &log_dir))?;
            vfs.sync_dir(&dir).map_err(io("sync dir", &dir))?;
        }

        let node_cache_entries = config.node_cache_entries;
        let latest_value_cache_entries = config.latest_value_cache_entries;
        let store = DurableStore {
            vfs,
            dir,
            log_dir,
            chain_id,
            config,
            reader: RwLock::new(None),
            recent: RwLock::new(None),
            node_cache: NodeCache::new(node_cache_entries),
            latest_values: LatestValues::new(latest_value_cache_entries, None),
            db,
            writer: Mutex::new(Writer::default()),
            segments: RwLock::new(BTreeMap::new()),
            tip: RwLock::new(Tip::default()),
            poison: Mutex::new(None),
            compacted_below: AtomicU64::new(0),
            compaction: RwLock::new(()),
            open: AtomicBool::new(false),
            damage,
            _lock: lock,
        };
        store.contain(|| {
            let upgrading = manifest_format.is_some_and(|f| f < FORMAT_VERSION);
            store.init_or_check_meta(upgrading)?;
            if upgrading {
                // The index is in the current format, durably: the manifest
                // follows (a crash before this rename finishes the upgrade on
                // the next open, with nothing left to rewrite).
                Self::write_manifest(store.vfs.as_ref(), &store.dir, &store.chain_id)?;
            }
            store.recover()?;
            store.check_state_root()
        })?;
        store.latest_values.reset(store.tip.read().state_latest);
        store.open.store(true, Ordering::SeqCst);
        Ok(store)
    }

    /// Whether the index records a clean shutdown. Anything unreadable
    /// counts as not clean (so the integrity check runs and reports it);
    /// a redb panic on a damaged page is caught for the same reason.
    fn was_clean(db: &redb::Database) -> bool {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Ok(read) = db.begin_read() else {
                return false;
            };
            let Ok(meta) = read.open_table(META) else {
                return false;
            };
            let Ok(Some(v)) = meta.get(META_CLEAN) else {
                return false;
            };
            unseal(META_CLEAN.as_bytes(), v.value()) == Ok(&[1u8][..])
        }))
        .unwrap_or(false)
    }

    /// Refuses, without modifying anything, a directory that is neither
    /// missing, empty (but for a `MANIFEST.tmp` or a [`LOCK_FILE`]), nor a
    /// store of `chain_id` in a format this build opens
    /// ([`OLDEST_UPGRADABLE_FORMAT`]..=[`FORMAT_VERSION`]). Returns the
    /// manifest's format, or `None` if there is no manifest.
    fn check_manifest(
        vfs: &dyn Vfs,
        dir: &Path,
        chain_id: &ChainId,
    ) -> Result<Option<u32>, StorageError> {
        let io = |op, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        let path = dir.join(MANIFEST_FILE);
        if !vfs.exists(dir).map_err(io("stat", dir))? {
            return Ok(None);
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
            if !(OLDEST_UPGRADABLE_FORMAT..=FORMAT_VERSION).contains(&m.format) {
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
            return Ok(Some(m.format));
        }
        let names = vfs.list_dir(dir).map_err(io("list", dir))?;
        if names.iter().any(|n| n != "MANIFEST.tmp" && n != LOCK_FILE) {
            return Err(StorageError::NotAStore {
                path: dir.to_path_buf(),
                reason: "directory is not empty and has no MANIFEST".into(),
            });
        }
        Ok(None)
    }

    /// Writes the manifest of the current format into the existing `dir`:
    /// a new store's, or an upgraded one's (atomically replacing the old
    /// manifest: written as `MANIFEST.tmp`, synced, renamed, directory
    /// synced).
    fn write_manifest(vfs: &dyn Vfs, dir: &Path, chain_id: &ChainId) -> Result<(), StorageError> {
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

    /// A write transaction with immediate durability and two-phase commit:
    /// its commit makes every earlier (non-durable) commit durable too.
    fn write_txn(&self) -> Result<redb::WriteTransaction, StorageError> {
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    /// A write transaction whose commit is durable if `durable`, else
    /// only visible ([`redb::Durability::None`]).
    fn write_txn_with(&self, durable: bool) -> Result<redb::WriteTransaction, StorageError> {
        let mut txn = self.write_txn()?;
        if !durable {
            txn.set_durability(redb::Durability::None).map_err(db_err)?;
        }
        Ok(txn)
    }

    /// Initialises a new index's meta, or checks an existing one's format
    /// and chain; with `upgrading` (the manifest names an older format),
    /// upgrades a format-5 index to the current format in the same durable
    /// transaction (see the module docs, *Format upgrade*).
    fn init_or_check_meta(&self, upgrading: bool) -> Result<(), StorageError> {
        let txn = self.write_txn()?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let mut format = get_meta_u64(&meta, META_FORMAT)?;
            if upgrading {
                if format == Some(u64::from(OLDEST_UPGRADABLE_FORMAT)) {
                    upgrade_index_from_v5(&txn)?;
                    format = Some(6);
                }
                // Format 7 added a kind of frame state part only: nothing
                // stored in format 6 changes.
                if format == Some(6) {
                    put_meta(
                        &mut meta,
                        META_FORMAT,
                        &u64::from(FORMAT_VERSION).to_le_bytes(),
                    )?;
                    format = Some(u64::from(FORMAT_VERSION));
                }
            }
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
            // Clear the clean-shutdown marker before anything else is
            // written (this commit is durable): from here until a clean
            // close, a crash leaves the marker unset.
            put_meta(&mut meta, META_CLEAN, &[0])?;
            // Create every table so readers never meet a missing one.
            txn.open_table(BLOCKS).map_err(db_err)?;
            txn.open_table(HASHES).map_err(db_err)?;
            txn.open_table(NODES).map_err(db_err)?;
            txn.open_table(VALUES).map_err(db_err)?;
            txn.open_table(STALE).map_err(db_err)?;
            txn.open_table(TX_IDS).map_err(db_err)?;
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

    /// `height` if a block is stored there, `None` at 0 and above the
    /// latest height, [`StorageError::Pruned`] below the oldest.
    fn stored_height(&self, height: Height) -> Result<Option<u64>, StorageError> {
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
        Ok(Some(h))
    }

    /// The `block_tx_ids` row of `height`, if there is one.
    fn read_tx_id_row(&self, height: u64) -> Result<Option<Vec<Hash>>, StorageError> {
        let read = self.read_txn()?;
        let ids = read.open_table(TX_IDS).map_err(db_err)?;
        let row = ids.get(height).map_err(db_err)?;
        row.map(|v| parse_tx_id_row(height, v.value())).transpose()
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
        let compacting = {
            let read = self.read_txn()?;
            let meta = read.open_table(META).map_err(db_err)?;
            self.compacted_below.store(
                get_meta_u64(&meta, META_COMPACTED)?.unwrap_or(0),
                Ordering::SeqCst,
            );
            get_meta_u64(&meta, META_COMPACTING)?
        };
        for name in &names {
            if let Some(base) = name
                .strip_suffix(COMPACT_SUFFIX)
                .and_then(parse_segment_name)
            {
                // A compacted copy: the index names it if its compaction
                // committed (finish the rename), else it is left over.
                let p = log_dir.join(name);
                if compacting == Some(base) {
                    let to = self.segment_path(base);
                    self.vfs.rename(&p, &to).map_err(self.io("rename", &p))?;
                } else {
                    self.vfs.remove_file(&p).map_err(self.io("remove", &p))?;
                }
                dir_changed = true;
            } else if name.ends_with(".tmp") {
                let p = log_dir.join(name);
                self.vfs.remove_file(&p).map_err(self.io("remove", &p))?;
                dir_changed = true;
            } else if let Some(base) = parse_segment_name(name) {
                bases.push(base);
            }
        }
        let tip = *self.tip.read();
        let last = if tip.latest == 0 {
            None
        } else {
            Some(self.location(tip.latest)?)
        };
        let keep_from = if tip.latest == 0 {
            0
        } else {
            self.location(tip.oldest)?.segment
        };
        let mut segments = BTreeMap::new();
        for base in bases {
            let path = self.segment_path(base);
            if base < keep_from {
                // Below the oldest block: left over from an interrupted
                // prune (whose index commit was durable).
                self.vfs
                    .remove_file(&path)
                    .map_err(self.io("remove", &path))?;
                dir_changed = true;
                continue;
            }
            // A segment's name becomes durable only after its header was
            // synced, so every segment header must verify.
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
        *self.segments.write() = segments.clone();

        // Where the durable prefix ends: after the frame of the applied
        // height, which must verify first.
        let mut end: Option<(u64, u64)> = match last {
            Some(last) => {
                if !segments.contains_key(&last.segment) {
                    return Err(StorageError::corrupt(
                        self.segment_path(last.segment).display().to_string(),
                        "segment holding the latest block is missing",
                    ));
                }
                self.read_block(tip.latest)?;
                Some((
                    last.segment,
                    last.offset.saturating_add(u64::from(last.frame_len)),
                ))
            }
            None => None,
        };

        // Replay the frames after it that continue the chain.
        let mut replay = Replay {
            expected: tip.latest.saturating_add(1),
            parent: tip.latest_hash,
            state_latest: tip.state_latest,
            txn: None,
            synced: Vec::new(),
            run: None,
            pruned_to: None,
        };
        let mut pos = match end {
            Some(e) => Some(e),
            // No block yet: the first frame opens the segment of height 1.
            None => segments.contains_key(&1).then_some((1, SEGMENT_HEADER_LEN)),
        };
        // Where the scan stopped short of the end of the log, if it did: the
        // start of a frame that failed its checks.
        let mut stop: Option<(u64, u64)> = None;
        while let Some((base, offset)) = pos {
            let Some(file) = segments.get(&base).cloned() else {
                break;
            };
            let path = self.segment_path(base);
            let len = file.len().map_err(self.io("stat", &path))?;
            if offset >= len {
                // The segment ends here: continue in the next one if it
                // starts at the next height.
                let next = segments.range(base + 1..).next().map(|(b, _)| *b);
                pos = next
                    .filter(|n| *n == replay.expected)
                    .map(|n| (n, SEGMENT_HEADER_LEN));
                continue;
            }
            let Some(frame) = self.frame_at(file.as_ref(), &path, offset, len)? else {
                stop = Some((base, offset));
                break;
            };
            let frame_len = frame.len() as u64;
            self.replay_frame(&mut replay, base, offset, &frame)?;
            if replay.synced.last() != Some(&base) {
                replay.synced.push(base);
            }
            end = Some((base, offset + frame_len));
            pos = Some((base, offset + frame_len));
        }

        // Everything after `end` is the torn tail of an unacknowledged
        // append — unless a valid frame follows, which is corruption.
        let search_from = match stop {
            Some((base, offset)) => (base, offset + 1),
            None => match end {
                Some((base, offset)) => (base, offset),
                None => (0, 0),
            },
        };
        // A coalesced append whose closing frame is missing was never
        // acknowledged (it is acknowledged once its closing frame is
        // synced): its frames are part of the torn tail. Its deferred
        // frames were written together and synced only before the closing
        // frame, so any subset of them may have survived: a valid frame
        // after the damage is still the torn tail if it is a deferred frame
        // of the same append (the one the replay was in, or the one whose
        // first frame is the first one missing).
        let torn_run = match replay.run.take() {
            Some(run) => {
                end = Some(run.start);
                (replay.expected, replay.parent) = run.before;
                Some(run.before.0)
            }
            // The first frame missing (damaged, or in a segment of its own
            // that did not survive) may be such a run's first.
            None => Some(replay.expected),
        };
        for (base, file) in segments.range(search_from.0..) {
            let mut from = if *base == search_from.0 {
                search_from.1.max(SEGMENT_HEADER_LEN)
            } else {
                SEGMENT_HEADER_LEN
            };
            let path = self.segment_path(*base);
            while let Some(at) = self.find_valid_frame(file.as_ref(), &path, from)? {
                let len = file.len().map_err(self.io("stat", &path))?;
                let deferred_first = self
                    .frame_at(file.as_ref(), &path, at, len)?
                    .and_then(|f| {
                        split_frame(&f)
                            .ok()
                            .and_then(|(_, _, state)| deferred_state(state))
                    })
                    .map(|(first, _)| first);
                if deferred_first.is_some() && deferred_first == torn_run {
                    from = at + 1;
                    continue;
                }
                let (b, o) = stop.unwrap_or((*base, at));
                return Err(StorageError::corrupt(
                    format!("{} @ {o}", self.segment_path(b).display()),
                    format!(
                        "damaged or missing frame for height {} followed by a valid frame at {} @ {at}",
                        replay.expected,
                        path.display()
                    ),
                ));
            }
        }

        // The replayed frames may have been written by a handle whose
        // sync failed: make them durable before the index names them.
        for base in &replay.synced {
            if let Some(file) = segments.get(base) {
                let path = self.segment_path(*base);
                file.sync_data().map_err(self.io("sync", &path))?;
            }
        }
        // Cut the tail: truncate the segment of the last frame after it,
        // delete the later segments (they hold no valid frame).
        let mut removed = false;
        for (base, file) in &segments {
            let path = self.segment_path(*base);
            match end {
                Some((b, offset)) if *base == b => {
                    let len = file.len().map_err(self.io("stat", &path))?;
                    if len > offset {
                        file.set_len(offset).map_err(self.io("truncate", &path))?;
                        file.sync_data().map_err(self.io("sync", &path))?;
                    }
                }
                Some((b, _)) if *base < b => {}
                _ => {
                    self.vfs
                        .remove_file(&path)
                        .map_err(self.io("remove", &path))?;
                    removed = true;
                }
            }
        }
        if removed || !replay.synced.is_empty() {
            self.segments
                .write()
                .retain(|b, _| end.is_some_and(|(e, _)| *b <= e));
            self.vfs
                .sync_dir(&log_dir)
                .map_err(self.io("sync dir", &log_dir))?;
        }
        // One durable commit records the replayed blocks.
        if let Some(txn) = replay.txn.take() {
            let latest = replay.expected - 1;
            {
                let mut meta = txn.open_table(META).map_err(db_err)?;
                put_meta(&mut meta, META_APPLIED, &latest.to_le_bytes())?;
                put_meta(&mut meta, META_STATE_LATEST, &latest.to_le_bytes())?;
            }
            txn.commit().map_err(db_err)?;
            let mut t = self.tip.write();
            if t.latest == 0 {
                t.oldest = t.oldest.max(1);
            }
            t.latest = latest;
            t.latest_hash = replay.parent;
            t.state_latest = Some(latest);
            if replay.pruned_to.is_some() {
                t.state_oldest = replay.pruned_to;
            }
        }
        if let Some((base, offset)) = end {
            let file = self.segments.read().get(&base).cloned().ok_or_else(|| {
                StorageError::corrupt(
                    self.segment_path(base).display().to_string(),
                    "segment holding the latest block is missing",
                )
            })?;
            self.writer.lock().active = Some((base, file, offset));
        }
        let tip = *self.tip.read();
        if self.config.verify_log_on_open && tip.latest > 0 {
            for h in tip.oldest..=tip.latest {
                self.check_frame(h)?;
            }
        }
        Ok(())
    }

    /// The whole frame at `offset` of a segment of length `len`, if a
    /// complete frame whose header and checksums verify starts there;
    /// `None` if not (a torn or damaged frame). The length is checked
    /// against the file before anything is allocated.
    fn frame_at(
        &self,
        file: &dyn VfsFile,
        path: &Path,
        offset: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let left = len.saturating_sub(offset);
        if left < FRAME_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER_LEN];
        file.read_at(offset, &mut header)
            .map_err(self.io("read", path))?;
        let Ok(fh) = parse_frame_header(&header) else {
            return Ok(None);
        };
        if fh.frame_len() as u64 > left {
            return Ok(None);
        }
        let mut frame = vec![0u8; fh.frame_len()];
        file.read_at(offset, &mut frame)
            .map_err(self.io("read", path))?;
        Ok(split_frame(&frame).is_ok().then_some(frame))
    }

    /// The offset of the first checksum-valid frame starting at or after
    /// `from` in a segment, if any. The segment is scanned in bounded
    /// windows, so a damaged or planted file of any length costs bounded
    /// memory; a candidate frame is read only after its header parsed and
    /// its length fits in the file ([`frame_at`](Self::frame_at)).
    fn find_valid_frame(
        &self,
        file: &dyn VfsFile,
        path: &Path,
        from: u64,
    ) -> Result<Option<u64>, StorageError> {
        let len = file.len().map_err(self.io("stat", path))?;
        scan_for_frame(
            len,
            from,
            SCAN_WINDOW,
            &mut |at, buf| file.read_at(at, buf).map_err(self.io("read", path)),
            &mut |at| Ok(self.frame_at(file, path, at, len)?.is_some()),
        )
    }

    /// Re-applies one checksum-valid frame found after the durable prefix
    /// to the replay transaction; corruption if it does not continue the
    /// chain.
    fn replay_frame(
        &self,
        replay: &mut Replay,
        base: u64,
        offset: u64,
        frame: &[u8],
    ) -> Result<(), StorageError> {
        let here = || format!("{} @ {offset}", self.segment_path(base).display());
        let bad = |r: String| StorageError::corrupt(here(), r);
        let (block_bytes, cert_bytes, state_bytes) =
            split_frame(frame).map_err(|r| bad(r.to_string()))?;
        let block = Block::decode(block_bytes, MAX_BLOCK_ENCODED_LEN)
            .map_err(|e| bad(format!("block does not decode: {e}")))?;
        let certificate = CommitCertificate::decode(cert_bytes)
            .map_err(|e| bad(format!("certificate does not decode: {e}")))?;
        let height = replay.expected;
        let loc = |hash| {
            Ok::<_, StorageError>(Location {
                segment: base,
                offset,
                frame_len: u32::try_from(frame.len()).map_err(|_| bad("frame too long".into()))?,
                hash,
            })
        };
        check_follows(
            self.chain_id.as_str(),
            height - 1,
            replay.parent,
            &block,
            &certificate,
        )
        .map_err(|e| bad(format!("frame does not continue the chain: {e}")))?;
        if let Some((first, closing)) = deferred_state(state_bytes) {
            // A block of a coalesced append before its last: its state is
            // in the closing frame.
            let run = replay.run.get_or_insert_with(|| DeferredRun {
                closing,
                start: (base, offset),
                before: (height, replay.parent),
                blocks: Vec::new(),
            });
            if closing <= height || closing != run.closing || first != run.before.0 {
                return Err(bad(format!(
                    "deferred state of height {height} names heights {first}..={closing}, \
                     expected {}..={}",
                    run.before.0,
                    run.closing.max(height + 1)
                )));
            }
            let hash = block.hash();
            run.blocks
                .push((height, loc(hash)?, encode_tx_id_row(&block)));
            replay.expected = height + 1;
            replay.parent = hash;
            return Ok(());
        }
        let batch =
            decode_state_batch(state_bytes).map_err(|e| bad(format!("state batch: {e}")))?;
        check_batch_root(replay.state_latest, &block, &batch)
            .map_err(|e| bad(format!("frame does not continue the chain: {e}")))?;
        if let Some(mut run) = replay.run.take() {
            if run.closing != height {
                return Err(bad(format!(
                    "coalesced append closed at height {height}, its frames name {}",
                    run.closing
                )));
            }
            let first = run.before.0;
            let rows = prepare_rows(&batch, first).map_err(|e| bad(format!("state batch: {e}")))?;
            let hash = block.hash();
            run.blocks
                .push((height, loc(hash)?, encode_tx_id_row(&block)));
            if replay.txn.is_none() {
                replay.txn = Some(self.write_txn()?);
            }
            if let Some(txn) = &replay.txn {
                self.write_coalesced_index(txn, &run.blocks, &rows)?;
            }
            replay.expected = height + 1;
            replay.parent = hash;
            replay.state_latest = Some(height);
            replay.pruned_to = Some(height);
            return Ok(());
        }
        let rows =
            prepare_rows(&batch, batch.version).map_err(|e| bad(format!("state batch: {e}")))?;
        let hash = block.hash();
        let loc = loc(hash)?;
        if replay.txn.is_none() {
            replay.txn = Some(self.write_txn()?);
        }
        if let Some(txn) = &replay.txn {
            self.write_index(txn, height, &loc, &encode_tx_id_row(&block), &rows)?;
        }
        replay.expected = height + 1;
        replay.parent = hash;
        replay.state_latest = Some(height);
        Ok(())
    }

    fn check_state_root(&self) -> Result<(), StorageError> {
        let tip = *self.tip.read();
        if tip.latest == 0 {
            return Ok(());
        }
        let block = self.read_block(tip.latest)?.block;
        let hf = block.header.suite.hash_function();
        let state = self.state_root(hf, tip.latest)?.ok_or_else(|| {
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

    /// Reads and checks the block part of the frame of `height` (which must
    /// be indexed): its checksum, decoding, and the hash in the index. The
    /// state batch in the frame is not read.
    fn read_block(&self, height: u64) -> Result<StoredBlock, StorageError> {
        let (loc, part, path) = self.read_block_part(height)?;
        let here = || format!("{} @ {}", path.display(), loc.offset);
        let (block_bytes, cert_bytes) =
            split_block_part(&part).map_err(|r| StorageError::corrupt(here(), r))?;
        decode_stored(height, &loc, block_bytes, cert_bytes)
            .map_err(|r| StorageError::corrupt(here(), r))
    }

    /// Reads the block part of the frame of `height` (which must be
    /// indexed), checking the frame header against the index entry; the
    /// caller checks the part's CRC ([`split_block_part`]). Returns the
    /// entry, the part and the segment's path.
    fn read_block_part(&self, height: u64) -> Result<(Location, Vec<u8>, PathBuf), StorageError> {
        let _frames = self.compaction.read();
        let (loc, file, path) = self.frame_file(height)?;
        let here = || format!("{} @ {}", path.display(), loc.offset);
        let read =
            |offset: u64, buf: &mut [u8]| read_indexed(file.as_ref(), &path, &here, offset, buf);
        let mut head = [0u8; FRAME_HEAD_LEN];
        read(loc.offset, &mut head)?;
        let fh = parse_frame_header(&head).map_err(|r| StorageError::corrupt(here(), r))?;
        if fh.height != height || fh.frame_len() != loc.frame_len as usize {
            return Err(StorageError::corrupt(
                here(),
                "frame header does not match its index entry",
            ));
        }
        let part_len = block_part_len(&head, &fh).map_err(|r| StorageError::corrupt(here(), r))?;
        let mut part = vec![0u8; part_len];
        read(loc.offset, &mut part)?;
        Ok((loc, part, path))
    }

    /// Reads the whole frame of `height` (which must be indexed) and checks
    /// both its checksums, the state batch's decoding and the block part
    /// as [`read_block`](Self::read_block) does.
    fn check_frame(&self, height: u64) -> Result<StoredBlock, StorageError> {
        let _frames = self.compaction.read();
        let (loc, file, path) = self.frame_file(height)?;
        let here = || format!("{} @ {}", path.display(), loc.offset);
        let mut frame = vec![0u8; loc.frame_len as usize];
        read_indexed(file.as_ref(), &path, &here, loc.offset, &mut frame)?;
        let fh = parse_frame_header(&frame).map_err(|r| StorageError::corrupt(here(), r))?;
        if fh.height != height || fh.frame_len() != frame.len() {
            return Err(StorageError::corrupt(
                here(),
                "frame header does not match its index entry",
            ));
        }
        let (block_bytes, cert_bytes, state_bytes) =
            split_frame(&frame).map_err(|r| StorageError::corrupt(here(), r))?;
        // An elided state batch (empty) is allowed only in a compacted
        // segment; a deferral only to a later stored height (whose frame
        // is checked in turn).
        let elided = state_bytes.is_empty() && height < self.compacted_below.load(Ordering::SeqCst);
        if let Some((first, closing)) = deferred_state(state_bytes) {
            if first > height || closing <= height || closing > self.tip.read().latest {
                return Err(StorageError::corrupt(
                    here(),
                    format!(
                        "state deferred to heights {first}..={closing}, not a stored run \
                         around {height}"
                    ),
                ));
            }
        } else if !elided {
            let batch = decode_state_batch(state_bytes)
                .map_err(|e| StorageError::corrupt(here(), format!("state batch: {e}")))?;
            if batch.version != height {
                return Err(StorageError::corrupt(
                    here(),
                    "state batch of another version",
                ));
            }
        }
        decode_stored(height, &loc, block_bytes, cert_bytes)
            .map_err(|r| StorageError::corrupt(here(), r))
    }

    /// The index entry of `height`, the open segment holding its frame and
    /// that segment's path; the frame length is range-checked.
    fn frame_file(
        &self,
        height: u64,
    ) -> Result<(Location, Arc<dyn VfsFile>, PathBuf), StorageError> {
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
        if !(FRAME_HEAD_LEN + 8..=MAX_FRAME_PAYLOAD + FRAME_HEADER_LEN + 4).contains(&frame_len) {
            return Err(StorageError::corrupt(
                here(),
                "indexed frame length out of range",
            ));
        }
        Ok((loc, file, path))
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

    /// Runs one operation of the public API: a panic inside it, or a
    /// damaged index page found by it, becomes [`StorageError::Corruption`]
    /// and poisons the handle (see [`contain_panic`]); redb refuses the
    /// file after a failed read anyway, so no later write could succeed.
    fn contain<T>(&self, f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
        let r = contain_panic(f).map_err(|e| self.damage.classify(e));
        match r {
            Err(e @ StorageError::Corruption { .. }) if e.is_index_corruption() => {
                self.poisoning(Err(e))
            }
            r => r,
        }
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

    /// The block at `height` read with its whole log frame checked: both
    /// frame checksums and the decoding of the state batch it carries, as
    /// well as what [`BlockStore::block`] checks (which reads the block
    /// part only). For offline verification; `None` outside the stored
    /// range.
    pub fn checked_block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        self.contain(|| {
            let tip = *self.tip.read();
            let h = height.get();
            if h == 0 || h > tip.latest || h < tip.oldest {
                return Ok(None);
            }
            self.check_frame(h).map(Some)
        })
    }

    /// Reads every stored frame and checks it (both frame checksums, the
    /// decoding of block, certificate and state batch, the hash against
    /// the index, parent links, the transaction-id row against the block).
    /// Returns the number checked, or the first corruption found.
    pub fn verify(&self) -> Result<u64, StorageError> {
        self.contain(|| {
            let tip = *self.tip.read();
            if tip.latest == 0 {
                return Ok(0);
            }
            let mut parent: Option<Hash> = None;
            for h in tip.oldest..=tip.latest {
                let b = self.check_frame(h)?;
                if let Some(ids) = self.read_tx_id_row(h)? {
                    let from_frame = b.block.transactions.iter().map(|t| t.id());
                    if !ids.iter().copied().eq(from_frame) {
                        return Err(StorageError::corrupt(
                            format!("index block_tx_ids[{h}]"),
                            "transaction ids differ from the block's",
                        ));
                    }
                }
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
        })
    }

    /// Creates (or truncates) `path` and writes the header of the segment
    /// whose first height is `base`; not synced. Used for a new segment's
    /// temporary file and for a compacted copy.
    fn create_segment_file(
        &self,
        path: &Path,
        base: u64,
    ) -> Result<Arc<dyn VfsFile>, StorageError> {
        let file = self
            .vfs
            .open(path, OpenMode::Truncate)
            .map_err(self.io("create", path))?;
        file.write_at(0, &encode_segment_header(base))
            .map_err(self.io("write", path))?;
        Ok(file)
    }

    fn new_segment(&self, base: u64) -> Result<Arc<dyn VfsFile>, StorageError> {
        let path = self.segment_path(base);
        let tmp = self.log_dir.join(format!("{}.tmp", segment_name(base)));
        let file = self.create_segment_file(&tmp, base)?;
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
        sync: bool,
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
        if sync {
            file.sync_data().map_err(self.io("sync", &path))?;
        }
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

    /// Log compaction ([`DurableConfig::compact_log`]): rewrites every full
    /// segment not yet compacted whose blocks are all below `durable` (the
    /// applied height, durable in the index), in log order.
    fn compact_checkpointed(&self, w: &Writer, durable: u64) -> Result<(), StorageError> {
        let active = w.active.as_ref().map(|(b, _, _)| *b);
        let bases: Vec<u64> = self.segments.read().keys().copied().collect();
        for pair in bases.windows(2) {
            if let [base, next] = pair {
                // `next <= durable`: the frame of the applied height, which
                // recovery checks whole, stays in an uncompacted segment.
                if *base >= self.compacted_below.load(Ordering::SeqCst)
                    && *next <= durable
                    && Some(*base) != active
                {
                    self.compact_segment(*base, *next)?;
                }
            }
        }
        Ok(())
    }

    /// Rewrites the segment of heights `base..next` with every frame's state
    /// batch elided. The copy is written as `NAME.compact`, synced and its
    /// name made durable (a directory sync); one
    /// durable index commit then names its frames (and records `base` as
    /// the segment being compacted); then the copy is renamed over the
    /// segment and the directory synced. A crash before the commit leaves
    /// the original named by the index (the copy is deleted on open), one
    /// after it leaves the copy named (open finishes the rename).
    fn compact_segment(&self, base: u64, next: u64) -> Result<(), StorageError> {
        let copy_path = self
            .log_dir
            .join(format!("{}{COMPACT_SUFFIX}", segment_name(base)));
        let copy = self.create_segment_file(&copy_path, base)?;
        let mut offset = SEGMENT_HEADER_LEN;
        let mut locations = Vec::new();
        for height in base..next {
            let (mut loc, part, path) = self.read_block_part(height)?;
            let here = || format!("{} @ {}", path.display(), loc.offset);
            let (block_bytes, cert_bytes) =
                split_block_part(&part).map_err(|r| StorageError::corrupt(here(), r))?;
            let frame = encode_frame(height, block_bytes, cert_bytes, &[])
                .ok_or_else(|| StorageError::corrupt(here(), "frame parts out of range"))?;
            copy.write_at(offset, &frame)
                .map_err(self.io("write", &copy_path))?;
            loc.offset = offset;
            loc.frame_len = u32::try_from(frame.len()).map_err(|_| StorageError::TooLarge {
                len: frame.len(),
                max: MAX_FRAME_PAYLOAD,
            })?;
            offset = offset.saturating_add(frame.len() as u64);
            locations.push((height, loc));
        }
        copy.sync_data().map_err(self.io("sync", &copy_path))?;
        // The copy's name must be durable before the index names its frames.
        self.vfs
            .sync_dir(&self.log_dir)
            .map_err(self.io("sync dir", &self.log_dir))?;
        let _frames = self.compaction.write();
        let txn = self.write_txn()?;
        {
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            for (height, loc) in &locations {
                blocks
                    .insert(*height, loc.encode(*height).as_slice())
                    .map_err(db_err)?;
            }
            let mut meta = txn.open_table(META).map_err(db_err)?;
            put_meta(&mut meta, META_COMPACTING, &base.to_le_bytes())?;
            put_meta(&mut meta, META_COMPACTED, &next.to_le_bytes())?;
        }
        txn.commit().map_err(db_err)?;
        let path = self.segment_path(base);
        self.vfs
            .rename(&copy_path, &path)
            .map_err(self.io("rename", &copy_path))?;
        self.vfs
            .sync_dir(&self.log_dir)
            .map_err(self.io("sync dir", &self.log_dir))?;
        self.segments.write().insert(base, copy);
        self.compacted_below.store(next, Ordering::SeqCst);
        Ok(())
    }

    /// Writes prepared state rows into `txn`, and stages the version's
    /// nodes as the recent ones (used once the state tip reaches it).
    fn write_rows(
        &self,
        txn: &redb::WriteTransaction,
        rows: &IndexRows,
    ) -> Result<(), StorageError> {
        *self.recent.write() = Some(rows.recent.clone());
        let mut nodes = txn.open_table(NODES).map_err(db_err)?;
        for (k, v) in &rows.nodes {
            if nodes
                .insert(k.as_slice(), v.as_slice())
                .map_err(db_err)?
                .is_some()
            {
                return Err(StorageError::corrupt(
                    "index smt_nodes",
                    "a new state version's node is already in the index",
                ));
            }
        }
        let mut values = txn.open_table(VALUES).map_err(db_err)?;
        for (k, v) in &rows.values {
            values.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
        }
        if let Some(v) = &rows.stale {
            let k = rows.version.to_be_bytes();
            let mut stale = txn.open_table(STALE).map_err(db_err)?;
            if stale
                .insert(&k[..], v.as_slice())
                .map_err(db_err)?
                .is_some()
            {
                return Err(StorageError::corrupt(
                    "index smt_stale",
                    "a new state version's stale row is already in the index",
                ));
            }
        }
        Ok(())
    }

    /// Writes the index records of the block at `height` (location, hash,
    /// transaction ids) and its state rows into `txn`.
    fn write_index(
        &self,
        txn: &redb::WriteTransaction,
        height: u64,
        loc: &Location,
        tx_ids: &[u8],
        rows: &IndexRows,
    ) -> Result<(), StorageError> {
        write_block_rows(txn, height, loc, tx_ids)?;
        self.write_rows(txn, rows)
    }

    /// The index commit of a coalesced append: every block's records, the
    /// coalesced state rows, and the prune below the last height that the
    /// skipped versions make necessary — durable if `durable`.
    fn commit_coalesced(
        &self,
        blocks: &[(u64, Location, Vec<u8>)],
        rows: &IndexRows,
        durable: bool,
    ) -> Result<(), StorageError> {
        let txn = self.write_txn_with(durable)?;
        self.write_coalesced_index(&txn, blocks, rows)?;
        {
            let last = rows.version;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            put_meta(&mut meta, META_APPLIED, &last.to_le_bytes())?;
            put_meta(&mut meta, META_STATE_LATEST, &last.to_le_bytes())?;
        }
        txn.commit().map_err(db_err)
    }

    /// Writes a coalesced append's index records into `txn` (shared by the
    /// append and recovery replay): each block's records, the state rows,
    /// and the prune of every version below the last (the versions between
    /// were never written; the older ones' pages the range replaced are in
    /// the stale row just written, at the last version).
    fn write_coalesced_index(
        &self,
        txn: &redb::WriteTransaction,
        blocks: &[(u64, Location, Vec<u8>)],
        rows: &IndexRows,
    ) -> Result<(), StorageError> {
        for (height, loc, tx_ids) in blocks {
            write_block_rows(txn, *height, loc, tx_ids)?;
        }
        self.write_rows(txn, rows)?;
        let last = rows.version;
        let upper = last.saturating_add(1).to_be_bytes();
        delete_stale(txn, &upper, PRUNE_PASS_KEYS)?;
        let mut meta = txn.open_table(META).map_err(db_err)?;
        put_meta(&mut meta, META_STATE_OLDEST, &last.to_le_bytes())
    }
}

/// Writes the index records of the block at `height`: its location, hash
/// and transaction ids.
fn write_block_rows(
    txn: &redb::WriteTransaction,
    height: u64,
    loc: &Location,
    tx_ids: &[u8],
) -> Result<(), StorageError> {
    let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
    blocks
        .insert(height, loc.encode(height).as_slice())
        .map_err(db_err)?;
    let mut hashes = txn.open_table(HASHES).map_err(db_err)?;
    let k = loc.hash.as_bytes();
    hashes
        .insert(&k[..], seal(k, &height.to_le_bytes()).as_slice())
        .map_err(db_err)?;
    let mut ids = txn.open_table(TX_IDS).map_err(db_err)?;
    ids.insert(height, seal(&height.to_be_bytes(), tx_ids).as_slice())
        .map_err(db_err)?;
    Ok(())
}

impl DurableStore {
    /// The index commit of an append: durable if `durable` (a checkpoint),
    /// else only visible.
    fn commit_append(
        &self,
        height: u64,
        loc: &Location,
        tx_ids: &[u8],
        rows: &IndexRows,
        durable: bool,
    ) -> Result<(), StorageError> {
        let txn = self.write_txn_with(durable)?;
        self.write_index(&txn, height, loc, tx_ids, rows)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            put_meta(&mut meta, META_APPLIED, &height.to_le_bytes())?;
            put_meta(&mut meta, META_STATE_LATEST, &height.to_le_bytes())?;
        }
        txn.commit().map_err(db_err)
    }

    /// The clean close: one durable commit that makes the index durable
    /// and sets the clean-shutdown marker. Runs once, and only on a handle
    /// whose open succeeded and that is not poisoned.
    fn shutdown(&self) -> Result<(), StorageError> {
        self.contain(|| {
            let mut w = self.writer.lock();
            if !self.open.swap(false, Ordering::SeqCst) {
                return Ok(());
            }
            self.check_poison()?;
            *self.reader.write() = None;
            let r = (|| {
                let txn = self.write_txn()?;
                {
                    let mut meta = txn.open_table(META).map_err(db_err)?;
                    put_meta(&mut meta, META_CLEAN, &[1])?;
                }
                txn.commit().map_err(db_err)
            })();
            self.poisoning(r)?;
            w.since_checkpoint = 0;
            w.bytes_since_checkpoint = 0;
            Ok(())
        })
    }

    /// Closes the store cleanly: makes the index durable and records the
    /// clean shutdown, so the next open skips the index integrity check.
    /// Dropping a handle does the same but cannot report a failure; after
    /// a failure (or on a poisoned handle) the next open treats the
    /// shutdown as a crash.
    pub fn close(self) -> Result<(), StorageError> {
        self.shutdown()
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
        self.contain(|| {
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
            // Everything that can refuse the batch runs before the frame is
            // written: once the frame is durable, the block is committed.
            let rows = prepare_rows(&state, state.version)?;
            // Right after a checkpoint every stored block is durable in the
            // index: reclaim the state batches of full segments (before this
            // frame, so that a failure leaves this append undone).
            if self.config.compact_log && w.since_checkpoint == 0 {
                self.poisoning(self.compact_checkpointed(&w, tip.latest))?;
            }
            let block_bytes = block.to_bytes();
            let cert_bytes = certificate.to_bytes();
            let state_bytes = encode_state_batch(&state).ok_or(StorageError::TooLarge {
                len: usize::MAX,
                max: MAX_STATE_LEN,
            })?;
            let frame = encode_frame(height, &block_bytes, &cert_bytes, &state_bytes).ok_or(
                StorageError::TooLarge {
                    len: 12 + block_bytes.len() + cert_bytes.len() + state_bytes.len(),
                    max: MAX_FRAME_PAYLOAD,
                },
            )?;
            let frame_len = frame.len() as u64;
            let hash = block.hash();
            // (1) The frame, synced: the durability point.
            let mut loc = self.poisoning(self.append_frame(&mut w, height, &frame, true))?;
            loc.hash = hash;
            // (2) The index, durably every `checkpoint_interval` appends.
            let durable = w.since_checkpoint.saturating_add(1) >= self.config.checkpoint_interval
                || w.bytes_since_checkpoint.saturating_add(frame_len)
                    >= self.config.checkpoint_bytes;
            let tx_ids = encode_tx_id_row(block);
            self.poisoning(self.commit_append(height, &loc, &tx_ids, &rows, durable))?;
            if durable {
                w.since_checkpoint = 0;
                w.bytes_since_checkpoint = 0;
            } else {
                w.since_checkpoint += 1;
                w.bytes_since_checkpoint = w.bytes_since_checkpoint.saturating_add(frame_len);
            }
            if let Some((_, _, end)) = w.active.as_mut() {
                *end = loc.offset.saturating_add(frame_len);
            }
            let mut t = self.tip.write();
            if t.latest == 0 {
                t.oldest = height;
            }
            t.latest = height;
            t.latest_hash = hash;
            t.state_latest = Some(height);
            drop(t);
            self.latest_values.advance(&state);
            Ok(())
        })
    }

    fn append_coalesced(
        &self,
        blocks: &[(&Block, &CommitCertificate)],
        state: TreeUpdateBatch,
    ) -> Result<(), StorageError> {
        self.contain(|| {
            let mut w = self.writer.lock();
            self.check_poison()?;
            let tip = *self.tip.read();
            let first = check_coalesced(
                self.chain_id.as_str(),
                tip.latest,
                tip.latest_hash,
                tip.state_latest,
                blocks,
                &state,
            )?;
            let last = state.version;
            // Everything that can refuse the append runs before the first
            // frame is written.
            let rows = prepare_rows(&state, first)?;
            let too_large = |len| StorageError::TooLarge {
                len,
                max: MAX_FRAME_PAYLOAD,
            };
            let state_bytes = encode_state_batch(&state).ok_or(StorageError::TooLarge {
                len: usize::MAX,
                max: MAX_STATE_LEN,
            })?;
            let deferred = encode_deferred_state(first, last);
            let mut frames = Vec::with_capacity(blocks.len());
            for (i, (block, certificate)) in blocks.iter().enumerate() {
                let part: &[u8] = if i + 1 == blocks.len() {
                    &state_bytes
                } else {
                    &deferred
                };
                let block_bytes = block.to_bytes();
                let cert_bytes = certificate.to_bytes();
                let frame =
                    encode_frame(block.header.height.get(), &block_bytes, &cert_bytes, part)
                        .ok_or_else(|| {
                            too_large(12 + block_bytes.len() + cert_bytes.len() + part.len())
                        })?;
                frames.push(frame);
            }
            if self.config.compact_log && w.since_checkpoint == 0 {
                self.poisoning(self.compact_checkpointed(&w, tip.latest))?;
            }
            // (1) The deferred frames, then one sync per segment written;
            // then the closing frame, synced: the durability point of the
            // whole append. A crash before it may leave any subset of the
            // deferred frames and no closing frame; recovery drops such a
            // run (never acknowledged), recognising its frames by their
            // first height (see `encode_deferred_state`).
            let mut written = Vec::with_capacity(frames.len());
            let mut touched: Vec<(u64, Arc<dyn VfsFile>)> = Vec::new();
            let mut bytes = 0u64;
            let r = (|| {
                let count = frames.len();
                for (i, ((block, _), frame)) in blocks.iter().zip(&frames).enumerate() {
                    let closing = i + 1 == count;
                    if closing {
                        for (base, file) in touched.drain(..) {
                            let path = self.segment_path(base);
                            file.sync_data().map_err(self.io("sync", &path))?;
                        }
                    }
                    let height = block.header.height.get();
                    let mut loc = self.append_frame(&mut w, height, frame, closing)?;
                    loc.hash = block.hash();
                    let len = frame.len() as u64;
                    bytes = bytes.saturating_add(len);
                    if let Some((base, file, end)) = w.active.as_mut() {
                        if !closing {
                            *end = loc.offset.saturating_add(len);
                            if touched.last().map(|(b, _)| *b) != Some(*base) {
                                touched.push((*base, file.clone()));
                            }
                        }
                    }
                    written.push((height, loc, encode_tx_id_row(block)));
                }
                Ok(())
            })();
            self.poisoning(r)?;
            // (2) One index commit for all of them.
            let n = blocks.len() as u64;
            let durable = w.since_checkpoint.saturating_add(n) >= self.config.checkpoint_interval
                || w.bytes_since_checkpoint.saturating_add(bytes) >= self.config.checkpoint_bytes;
            self.poisoning(self.commit_coalesced(&written, &rows, durable))?;
            if let (Some((_, _, end)), Some((_, loc, _))) = (w.active.as_mut(), written.last()) {
                *end = loc.offset.saturating_add(u64::from(loc.frame_len));
            }
            if durable {
                w.since_checkpoint = 0;
                w.bytes_since_checkpoint = 0;
            } else {
                w.since_checkpoint += n;
                w.bytes_since_checkpoint = w.bytes_since_checkpoint.saturating_add(bytes);
            }
            let mut t = self.tip.write();
            if t.latest == 0 {
                t.oldest = first;
            }
            t.latest = last;
            t.latest_hash = written.last().map_or(t.latest_hash, |(_, l, _)| l.hash);
            t.state_latest = Some(last);
            t.state_oldest = Some(last);
            drop(t);
            self.latest_values.advance(&state);
            self.node_cache.forget_below(last);
            Ok(())
        })
    }

    fn block(&self, height: Height) -> Result<Option<StoredBlock>, StorageError> {
        self.contain(|| match self.stored_height(height)? {
            Some(h) => self.read_block(h).map(Some),
            None => Ok(None),
        })
    }

    fn block_hash(&self, height: Height) -> Result<Option<Hash>, StorageError> {
        self.contain(|| {
            let Some(h) = self.stored_height(height)? else {
                return Ok(None);
            };
            Ok(Some(self.location(h)?.hash))
        })
    }

    fn block_tx_ids(&self, height: Height) -> Result<Option<Vec<Hash>>, StorageError> {
        self.contain(|| {
            let Some(h) = self.stored_height(height)? else {
                return Ok(None);
            };
            if let Some(ids) = self.read_tx_id_row(h)? {
                return Ok(Some(ids));
            }
            // Written before the table existed: from the frame.
            let stored = self.read_block(h)?;
            Ok(Some(
                stored
                    .block
                    .transactions
                    .iter()
                    .map(govchain_core::tx::Transaction::id)
                    .collect(),
            ))
        })
    }

    fn height_of(&self, hash: &Hash) -> Result<Option<Height>, StorageError> {
        self.contain(|| {
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
        })
    }

    fn latest_height(&self) -> Result<Height, StorageError> {
        Ok(Height::new(self.tip.read().latest))
    }

    fn oldest_height(&self) -> Result<Option<Height>, StorageError> {
        let t = *self.tip.read();
        Ok((t.latest > 0).then(|| Height::new(t.oldest)))
    }

    fn prune_blocks_below(&self, height: Height) -> Result<(), StorageError> {
        self.contain(|| {
            let mut w = self.writer.lock();
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
                    let mut ids = txn.open_table(TX_IDS).map_err(db_err)?;
                    for h in tip.oldest..below {
                        if let Some(v) = blocks.remove(h).map_err(db_err)? {
                            if let Ok(loc) = Location::decode(h, v.value()) {
                                hashes.remove(&loc.hash.as_bytes()[..]).map_err(db_err)?;
                            }
                        }
                        ids.remove(h).map_err(db_err)?;
                    }
                    let mut meta = txn.open_table(META).map_err(db_err)?;
                    put_meta(&mut meta, META_OLDEST, &below.to_le_bytes())?;
                }
                // Durable (like every commit but an append's): it also makes
                // every earlier append's index durable, before any segment the
                // older index names is deleted.
                txn.commit().map_err(db_err)?;
                w.since_checkpoint = 0;
                w.bytes_since_checkpoint = 0;
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
        })
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

impl DurableStore {
    /// The value row of `key_hash` written at exactly `version`, if the
    /// index has one, checked against its key-covering seal.
    fn value_row(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let reader = self.state_reader()?;
        let k = value_key(key_hash, version);
        let Some(v) = reader.values.get(k.as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let where_ = || format!("index smt_values[{version}, {key_hash}]");
        let raw = unseal(&k, v.value()).map_err(|r| StorageError::corrupt(where_(), r))?;
        // Tag 1: a value. Format 6 writes no deletion markers (tag 0).
        match raw.split_first() {
            Some((1, bytes)) => Ok(Some(bytes.to_vec())),
            _ => Err(StorageError::corrupt(where_(), "bad value tag")),
        }
    }

    /// The value of `key_hash` as of `version` (the latest state version,
    /// if `version` is beyond it), read through the state tree: the key's
    /// leaf in the tree of that version names the version that wrote the
    /// key's live value, and that version's row holds it. No leaf: the key
    /// is absent. A leaf whose row is missing or is a deletion marker is
    /// corruption — so a lost or hidden row can never make an older one
    /// pass as current, which no checksum of the row itself could reveal.
    /// The walk reads a handful of pages, mostly from memory (the latest
    /// version's pages, or the node cache). A version below the pruning
    /// horizon is [`StorageError::Pruned`].
    fn value_as_of(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let tip = *self.tip.read();
        let Some(latest) = tip.state_latest else {
            return Ok(None);
        };
        let at = version.min(latest);
        if let Some(oldest) = tip.state_oldest.filter(|o| at < *o) {
            return Err(StorageError::Pruned {
                what: "state version",
                requested: version,
                oldest,
            });
        }
        let Some(leaf) = self.leaf_at(key_hash, at)? else {
            return Ok(None);
        };
        // The row's bytes are proven by their key-covering seal, and the key
        // holds the version the leaf names, so the value need not be
        // re-hashed — which would need the chain's hash function, a
        // property of the chain's suite the store does not hold.
        match self.value_row(key_hash, leaf.value_version)? {
            Some(value) => Ok(Some(value)),
            None => Err(StorageError::corrupt(
                format!("index smt_values[{}, {key_hash}]", leaf.value_version),
                format!(
                    "the state tree of version {at} names a value row that is not in the index"
                ),
            )),
        }
    }

    /// The leaf of `key_hash` in the tree of `version` (which must be
    /// stored), if the key is present there; walked page by page through
    /// [`get_node`](NodeStore::get_node), each page checked by its seal.
    fn leaf_at(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<LeafNode>, StorageError> {
        let missing = |key: NodeKey| {
            StorageError::corrupt(
                format!("index smt_nodes[{key:?}]"),
                format!("a page of state version {version} is missing"),
            )
        };
        let root = NodeKey::root(version);
        let mut node = self.get_node(&root)?.ok_or_else(|| missing(root))?;
        let mut path = NodePath::ROOT;
        loop {
            let page = match node {
                Node::Empty => return Ok(None),
                Node::Leaf(leaf) => return Ok((leaf.key_hash == *key_hash).then_some(leaf)),
                Node::Internal(page) => page,
            };
            let slot = key_hash.nibble(path.depth());
            match page.child(slot) {
                Child::Empty => return Ok(None),
                Child::Leaf { leaf, .. } => return Ok((leaf.key_hash == *key_hash).then_some(leaf)),
                Child::Internal { version: v, .. } => {
                    let next = path.nibble_child(slot);
                    if next.depth() == path.depth() {
                        return Err(StorageError::corrupt(
                            format!("index smt_nodes[{version}]"),
                            "a page below the deepest level",
                        ));
                    }
                    path = next;
                    let key = NodeKey { version: v, path };
                    node = self.get_node(&key)?.ok_or_else(|| missing(key))?;
                }
            }
        }
    }
}

impl NodeStore for DurableStore {
    type Error = StorageError;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, StorageError> {
        self.contain(|| {
            let latest = self.tip.read().state_latest;
            if let Some(recent) = self.recent.read().as_ref() {
                if recent.version == key.version && latest.is_some_and(|l| l >= recent.version) {
                    if let Some(node) = recent.nodes.get(&key.path) {
                        return Ok(Some(node.clone()));
                    }
                }
            }
            if let Some(node) = self.node_cache.get(key) {
                return Ok(Some(node));
            }
            let reader = self.state_reader()?;
            let k = node_key(key);
            let Some(v) = reader.nodes.get(k.as_slice()).map_err(db_err)? else {
                return Ok(None);
            };
            let where_ = || format!("index smt_nodes[{key:?}]");
            let raw = unseal(&k, v.value()).map_err(|r| StorageError::corrupt(where_(), r))?;
            let node = decode_exact::<Node>(raw, MAX_NODE_LEN)
                .map_err(|e| StorageError::corrupt(where_(), e.to_string()))?;
            self.node_cache.insert(*key, &node);
            Ok(Some(node))
        })
    }

    /// The value as of `version`: the key's row at exactly `version` if
    /// there is one, else found through the key's leaf in the state tree
    /// of `version` (see the module docs, *Verified reads*). A version
    /// below the pruning horizon is [`StorageError::Pruned`] unless the row
    /// is exactly at it.
    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(value) = self.latest_values.get(key_hash, version) {
            return Ok(value);
        }
        let value = self.contain(|| match self.value_row(key_hash, version)? {
            // An exact hit: the seal covers the key, version included, and a
            // key's row at a version is written once (a deletion writes no
            // row, so a hit is always a value). This is how the state
            // tree reads the value its leaf names, at any retained version.
            Some(value) => Ok(Some(value)),
            None => self.value_as_of(key_hash, version),
        })?;
        self.latest_values.fill(key_hash, version, &value);
        Ok(value)
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
        self.contain(|| {
            let _w = self.writer.lock();
            self.check_poison()?;
            let tip = *self.tip.read();
            check_genesis(tip.latest, tip.state_latest, &batch)?;
            let rows = prepare_rows(&batch, batch.version)?;
            let r = (|| {
                let txn = self.write_txn()?;
                self.write_rows(&txn, &rows)?;
                {
                    let mut meta = txn.open_table(META).map_err(db_err)?;
                    put_meta(&mut meta, META_STATE_LATEST, &batch.version.to_le_bytes())?;
                }
                txn.commit().map_err(db_err)
            })();
            self.poisoning(r)?;
            self.tip.write().state_latest = Some(batch.version);
            self.latest_values.advance(&batch);
            Ok(())
        })
    }

    fn prune_state_below(&self, version: Version) -> Result<(), StorageError> {
        self.contain(|| {
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
                    delete_stale(&txn, &upper, PRUNE_PASS_KEYS)?;
                    let mut meta = txn.open_table(META).map_err(db_err)?;
                    put_meta(&mut meta, META_STATE_OLDEST, &below.to_le_bytes())?;
                }
                txn.commit().map_err(db_err)
            })();
            self.poisoning(r)?;
            self.tip.write().state_oldest = Some(below);
            // Pruned pages must not outlive their rows. Every pruned page
            // was written before `below` (it was replaced at `below` or
            // earlier), so the pages of later versions stay cached.
            self.node_cache.forget_below(below);
            Ok(())
        })
    }
}

/// Runs `f`, turning a panic inside it into [`StorageError::Corruption`].
///
/// redb parses only pages that passed their checksum
/// ([`ChecksummedFile`]), so damage on disk cannot make it panic; this is
/// the containment for what is left (a page damaged in a way its checksum
/// misses, a redb bug), so that the crate's contract — a typed error, never
/// a panic — holds at its boundary. Unwind safety: `f` only reads through
/// `&DurableStore`, whose own state (tip, writer, caches) changes only after
/// the redb calls it depends on succeeded; redb's state may be left
/// inconsistent, which is why [`DurableStore::contain`] poisons the handle
/// (no more writes) and every later result still passes the store's own
/// checks (seals, frame checksums, hashes) before it is returned.
fn contain_panic<T>(f: impl FnOnce() -> Result<T, StorageError>) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(StorageError::corrupt(
            crate::error::INDEX_DATABASE,
            format!("index database panicked: {reason}"),
        ))
    })
}

/// Bytes read at a time when scanning a segment for a frame.
const SCAN_WINDOW: u64 = 1 << 20;

/// Reads bytes at an offset into a buffer (exactly its length).
type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> Result<(), StorageError> + 'a;
/// Whether a valid frame starts at an offset.
type FrameAt<'a> = dyn FnMut(u64) -> Result<bool, StorageError> + 'a;

/// The first offset at or after `from`, in a file of `len` bytes read
/// through `read`, where the frame magic starts and `accept` confirms a
/// valid frame. Reads windows of `window` bytes overlapping by the magic's
/// length minus one, so a magic straddling two windows is found, and memory
/// stays bounded whatever the file's length.
fn scan_for_frame(
    len: u64,
    from: u64,
    window: u64,
    read: &mut ReadAt<'_>,
    accept: &mut FrameAt<'_>,
) -> Result<Option<u64>, StorageError> {
    let magic = FRAME_MAGIC.len() as u64;
    let window = window.max(magic);
    let mut start = from;
    let mut buf = Vec::new();
    while start < len {
        let end = len.min(start.saturating_add(window));
        buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
        read(start, &mut buf)?;
        let mut i = 0;
        while let Some(at) = buf
            .get(i..)
            .and_then(|r| r.windows(FRAME_MAGIC.len()).position(|w| w == FRAME_MAGIC))
        {
            let candidate = start + (i + at) as u64;
            if accept(candidate)? {
                return Ok(Some(candidate));
            }
            i += at + 1;
        }
        if end == len {
            break;
        }
        start = end - (magic - 1);
    }
    Ok(None)
}

/// A bounded cache of decoded state-tree pages: 16 shards, each emptied
/// when it fills (no recency bookkeeping on the read path; the hot upper
/// pages come straight back).
struct NodeCache {
    shards: Vec<Mutex<HashMap<NodeKey, Node>>>,
    per_shard: usize,
}

impl NodeCache {
    const SHARDS: usize = 16;

    fn new(entries: usize) -> Self {
        NodeCache {
            shards: (0..Self::SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            per_shard: entries / Self::SHARDS,
        }
    }

    fn shard(&self, key: &NodeKey) -> Option<&Mutex<HashMap<NodeKey, Node>>> {
        if self.per_shard == 0 {
            return None;
        }
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.shards.get(h.finish() as usize % Self::SHARDS)
    }

    fn get(&self, key: &NodeKey) -> Option<Node> {
        self.shard(key)?.lock().get(key).cloned()
    }

    fn insert(&self, key: NodeKey, node: &Node) {
        if let Some(shard) = self.shard(&key) {
            let mut map = shard.lock();
            if map.len() >= self.per_shard {
                map.clear();
            }
            map.insert(key, node.clone());
        }
    }

    /// Drops the pages written before `version`.
    fn forget_below(&self, version: Version) {
        for shard in &self.shards {
            shard.lock().retain(|k, _| k.version >= version);
        }
    }
}

/// Rewrites a format-5 index for format 6 inside `txn`: every value row
/// of the format-5 table is checked against its seal and moved, re-keyed
/// and re-sealed, to the format-6 table (deletion markers are dropped:
/// format 6 reads through the state tree and needs none), the format-5
/// table is deleted, and every stale-index row's value keys are rewritten.
/// Streams the tables, so its memory does not grow with the state.
fn upgrade_index_from_v5(txn: &redb::WriteTransaction) -> Result<(), StorageError> {
    let started = std::time::Instant::now();
    let mut moved = 0u64;
    {
        let legacy = txn.open_table(VALUES_V5).map_err(db_err)?;
        let mut values = txn.open_table(VALUES).map_err(db_err)?;
        tracing::info!(
            rows = legacy.len().map_err(db_err)?,
            "upgrading the state index from format 5 to format 6"
        );
        for entry in legacy.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let what = || format!("index smt_values (format 5)[{:02x?}]", k.value());
            let raw = unseal(k.value(), v.value()).map_err(|r| StorageError::corrupt(what(), r))?;
            match raw.first() {
                Some(0) if raw.len() == 1 => continue,
                Some(1) => {}
                _ => return Err(StorageError::corrupt(what(), "bad value tag")),
            }
            let new_key = value_key_from_v5(k.value())
                .ok_or_else(|| StorageError::corrupt(what(), "key is not 40 bytes"))?;
            values
                .insert(&new_key[..], seal(&new_key, raw).as_slice())
                .map_err(db_err)?;
            moved += 1;
            if moved.is_multiple_of(1_000_000) {
                tracing::info!(moved, "upgrading the state index: value rows moved");
            }
        }
    }
    txn.delete_table(VALUES_V5).map_err(db_err)?;
    let mut stale = txn.open_table(STALE).map_err(db_err)?;
    let versions: Vec<Vec<u8>> = stale
        .iter()
        .map_err(db_err)?
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    for k in &versions {
        let what = || format!("index smt_stale[{k:02x?}]");
        let row = stale
            .get(k.as_slice())
            .map_err(db_err)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StorageError::corrupt(what(), "row vanished during the upgrade"))?;
        let raw = unseal(k, &row).map_err(|r| StorageError::corrupt(what(), r))?;
        let rewritten = stale_row_from_v5(raw).map_err(|r| StorageError::corrupt(what(), r))?;
        stale
            .insert(k.as_slice(), seal(k, &rewritten).as_slice())
            .map_err(db_err)?;
    }
    tracing::info!(
        value_rows = moved,
        stale_rows = versions.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "upgraded the state index to format 6"
    );
    Ok(())
}

/// Deletes every stale index row whose key (a big-endian `stale_since`
/// version) is below `upper`, together with every node and value entry it
/// lists. Each row's seal is checked first, so a corrupted index is
/// reported rather than used to delete the wrong rows.
fn delete_stale(
    txn: &redb::WriteTransaction,
    upper: &[u8],
    pass_keys: usize,
) -> Result<(), StorageError> {
    let mut stale = txn.open_table(STALE).map_err(db_err)?;
    let mut nodes = txn.open_table(NODES).map_err(db_err)?;
    let mut values = txn.open_table(VALUES).map_err(db_err)?;
    loop {
        // One pass: the rows of the oldest versions, up to a bound on the
        // keys they name (so a first prune of a long history does not hold
        // it all in memory).
        let mut node_keys: Vec<Vec<u8>> = Vec::new();
        let mut value_keys: Vec<[u8; 40]> = Vec::new();
        let mut last_row: Option<Vec<u8>> = None;
        for entry in stale.range(..upper).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let (k, v) = (k.value(), v.value());
            let what = || format!("index smt_stale[{k:02x?}]");
            let raw = unseal(k, v).map_err(|r| StorageError::corrupt(what(), r))?;
            let (nks, vks) = decode_stale_row(raw).map_err(|r| StorageError::corrupt(what(), r))?;
            node_keys.extend(nks.into_iter().map(<[u8]>::to_vec));
            for vk in vks {
                let vk: [u8; 40] = vk
                    .try_into()
                    .map_err(|_| StorageError::corrupt(what(), "value key is not 40 bytes"))?;
                value_keys.push(vk);
            }
            last_row = Some(k.to_vec());
            if node_keys.len() + value_keys.len() >= pass_keys {
                break;
            }
        }
        let Some(last_row) = last_row else {
            return Ok(());
        };
        // Deleted in key order, so that rows sharing a leaf page of the
        // index are deleted together (the stale pages of many versions are
        // interleaved in the table).
        node_keys.sort_unstable();
        for nk in &node_keys {
            nodes.remove(nk.as_slice()).map_err(db_err)?;
        }
        value_keys.sort_unstable();
        for vk in &value_keys {
            values.remove(&vk[..]).map_err(db_err)?;
        }
        stale
            .retain_in::<&[u8], _>(..=last_row.as_slice(), |_, _| false)
            .map_err(db_err)?;
    }
}

/// Keys (pages and value rows) deleted per sorted pass of a prune
/// (`delete_stale`): bounds its memory to some tens of MiB.
const PRUNE_PASS_KEYS: usize = 1 << 20;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;

    use govchain_core::hash::HashFunction;

    use super::*;
    use govchain_core::block::{tx_root_of, BlockHeader};
    use govchain_core::cert::certify;
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::smt::{Child, SparseMerkleTree};
    use govchain_core::types::{Round, Timestamp};

    /// The windowed frame scan finds exactly what a scan of the whole file
    /// finds, for every window size, including magics that straddle two
    /// windows and candidates that are not valid frames.
    #[test]
    fn windowed_frame_scan_matches_a_whole_file_scan() {
        let frame = crate::format::encode_frame(7, b"block", b"cert", b"state").unwrap();
        let mut file = b"xxGCBFgarbage".to_vec(); // a magic without a frame
        let first = file.len() as u64;
        file.extend_from_slice(&frame);
        file.extend_from_slice(b"GCB"); // a truncated magic
        let second = file.len() as u64;
        file.extend_from_slice(&frame);
        let valid = |at: u64| {
            let at = at as usize;
            file.get(at..)
                .and_then(|rest| crate::format::parse_frame_header(rest).ok())
                .and_then(|fh| file.get(at..at + fh.frame_len()))
                .is_some_and(|f| crate::format::split_frame(f).is_ok())
        };
        let len = file.len() as u64;
        for window in 1..=(len + 3) {
            for (from, expected) in [
                (0, Some(first)),
                (first + 1, Some(second)),
                (second + 1, None),
            ] {
                let found = scan_for_frame(
                    len,
                    from,
                    window,
                    &mut |at, buf| {
                        buf.copy_from_slice(&file[at as usize..at as usize + buf.len()]);
                        Ok(())
                    },
                    &mut |at| Ok(valid(at)),
                )
                .unwrap();
                assert_eq!(found, expected, "window {window}, from {from}");
            }
        }
    }

    /// A store in `dir` holding the genesis state (one key).
    fn test_store(dir: &Path) -> DurableStore {
        let chain = ChainId::new("durable-test").unwrap();
        let store = DurableStore::open(dir, chain, DurableConfig::default()).unwrap();
        let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
        let (_, genesis) = tree
            .apply_batch(
                None,
                0,
                &[(KeyHash::of(HashFunction::Blake3, b"genesis"), Some(vec![0]))],
            )
            .unwrap();
        store.commit_state(genesis).unwrap();
        store
    }

    /// Appends the next block, an empty one whose state version applies
    /// `updates`.
    fn append_state(store: &DurableStore, updates: &[(KeyHash, Option<Vec<u8>>)]) {
        append_block(store, Vec::new(), updates);
    }

    /// Appends the next block, holding `txs`, whose state version applies
    /// `updates`.
    fn append_block(
        store: &DurableStore,
        txs: Vec<govchain_core::tx::Transaction>,
        updates: &[(KeyHash, Option<Vec<u8>>)],
    ) {
        let h = store.latest_height().unwrap().get() + 1;
        let parent = store
            .block(Height::new(h - 1))
            .unwrap()
            .map_or(Hash::ZERO, |b| b.block.hash());
        let tree = SparseMerkleTree::new(store, HashFunction::Blake3);
        let (root, batch) = tree.apply_batch(Some(h - 1), h, updates).unwrap();
        let (block, cert) = test_block(store.chain_id(), h, parent, txs, root);
        store.append(&block, &cert, batch).unwrap();
    }

    /// Block `h` of the test chain and its certificate.
    fn test_block(
        chain: &ChainId,
        h: u64,
        parent: Hash,
        txs: Vec<govchain_core::tx::Transaction>,
        root: Hash,
    ) -> (Block, CommitCertificate) {
        let signer = SecretKey::from_seed(&[3; 32]);
        let chain = chain.clone();
        let header = BlockHeader {
            suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
            chain_id: chain.clone(),
            height: Height::new(h),
            time: Timestamp::new(h),
            parent_hash: parent,
            tx_root: tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &txs),
            tx_count: txs.len() as u32,
            state_root: root,
            history_root: Hash::ZERO,
            validator_set_hash: Hash::ZERO,
            next_validator_set_hash: Hash::ZERO,
            proposer: signer.public_key(),
        };
        let block = Block {
            header,
            transactions: txs,
        };
        let cert = certify(
            &chain,
            Height::new(h),
            Round::new(0),
            block.hash(),
            &[&signer],
        );
        (block, cert)
    }

    /// `n` signed transactions for block `h` of the test chain.
    fn test_txs(h: u64, n: u64) -> Vec<govchain_core::tx::Transaction> {
        let signer = SecretKey::from_seed(&[9; 32]);
        let chain = ChainId::new("durable-test").unwrap();
        (0..n)
            .map(|i| {
                govchain_core::tx::Transaction::new_signed(
                    chain.clone(),
                    &signer,
                    h * 10 + i,
                    vec![h as u8; 8],
                )
                .unwrap()
            })
            .collect()
    }

    fn ids_in_block(store: &DurableStore, h: u64) -> Vec<Hash> {
        let b = store.block(Height::new(h)).unwrap().unwrap();
        b.block.transactions.iter().map(|t| t.id()).collect()
    }

    #[test]
    fn transaction_ids_and_hashes_are_served_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path());
        for h in 1..=4u64 {
            append_block(&store, test_txs(h, h), &[]);
        }
        for h in 1..=4u64 {
            assert!(store.read_tx_id_row(h).unwrap().is_some(), "row {h}");
            let ids = store.block_tx_ids(Height::new(h)).unwrap().unwrap();
            assert_eq!(ids.len() as u64, h);
            assert_eq!(ids, ids_in_block(&store, h));
            let hash = store.block(Height::new(h)).unwrap().unwrap().block.hash();
            assert_eq!(store.block_hash(Height::new(h)).unwrap(), Some(hash));
        }
        for h in [0, 5] {
            assert_eq!(store.block_tx_ids(Height::new(h)).unwrap(), None);
            assert_eq!(store.block_hash(Height::new(h)).unwrap(), None);
        }
        // A height without a row (as one written before the table existed)
        // is answered from its frame.
        let txn = store.write_txn().unwrap();
        txn.open_table(TX_IDS).unwrap().remove(2).unwrap();
        txn.commit().unwrap();
        assert!(store.read_tx_id_row(2).unwrap().is_none());
        assert_eq!(
            store.block_tx_ids(Height::new(2)).unwrap().unwrap(),
            ids_in_block(&store, 2)
        );
        assert_eq!(store.verify().unwrap(), 4);
        // A row that disagrees with its block fails `verify`; a damaged one
        // fails the read.
        let txn = store.write_txn().unwrap();
        {
            let mut rows = txn.open_table(TX_IDS).unwrap();
            let wrong = encode_tx_id_row(&store.block(Height::new(4)).unwrap().unwrap().block);
            rows.insert(3, seal(&3u64.to_be_bytes(), &wrong).as_slice())
                .unwrap();
            let mut damaged = seal(&4u64.to_be_bytes(), &wrong);
            damaged[0] ^= 1;
            rows.insert(4, damaged.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        assert!(store.verify().unwrap_err().is_corruption());
        assert!(store
            .block_tx_ids(Height::new(4))
            .unwrap_err()
            .is_corruption());
        // Pruned heights are refused, and their rows deleted.
        store.prune_blocks_below(Height::new(3)).unwrap();
        for h in [1, 2] {
            assert!(store.read_tx_id_row(h).unwrap().is_none());
            assert!(matches!(
                store.block_tx_ids(Height::new(h)),
                Err(StorageError::Pruned { .. })
            ));
            assert!(matches!(
                store.block_hash(Height::new(h)),
                Err(StorageError::Pruned { .. })
            ));
        }
    }

    #[test]
    fn recovery_replay_writes_the_transaction_id_rows() {
        use crate::sim::{CrashMode, SimDisk};
        let disk = SimDisk::new(7);
        let chain = ChainId::new("durable-test").unwrap();
        let open = |disk: &SimDisk| {
            DurableStore::open_with(
                Arc::new(disk.clone()),
                Path::new("/store"),
                chain.clone(),
                DurableConfig::default(),
            )
            .unwrap()
        };
        let store = open(&disk);
        let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
        let (_, genesis) = tree.apply_batch(None, 0, &[]).unwrap();
        store.commit_state(genesis).unwrap();
        // Fewer appends than the checkpoint interval: the index is not
        // durable past the genesis state, so reopening replays them all.
        for h in 1..=3u64 {
            append_block(&store, test_txs(h, 2), &[]);
        }
        let expected: Vec<Vec<Hash>> = (1..=3).map(|h| ids_in_block(&store, h)).collect();
        let crashed = disk.power_loss(CrashMode::KeepNone);
        drop(store);
        let store = open(&crashed);
        assert_eq!(store.latest_height().unwrap(), Height::new(3));
        for h in 1..=3u64 {
            assert_eq!(
                store.read_tx_id_row(h).unwrap().as_ref(),
                expected.get(h as usize - 1)
            );
        }
    }

    #[test]
    fn checked_block_reads_the_whole_frame() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path());
        let updates: Vec<_> = (0..64u8)
            .map(|k| (KeyHash::of(HashFunction::Blake3, &[k]), Some(vec![k; 32])))
            .collect();
        append_state(&store, &updates);
        let h = Height::new(1);
        assert!(store.checked_block(h).unwrap().is_some());
        assert!(store.checked_block(Height::new(2)).unwrap().is_none());
        // Damage the state batch: the frame's last bytes (before its
        // trailing checksum) belong to it.
        let loc = store.location(1).unwrap();
        let path = store.segment_path(loc.segment);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (loc.offset + u64::from(loc.frame_len)) as usize - 8;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        // The block part still reads; the whole-frame read finds the damage.
        assert!(store.block(h).unwrap().is_some());
        let err = store.checked_block(h).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }

    #[test]
    fn latest_value_answers_follow_every_commit() {
        // A model of every version's state against the store's reads: at
        // the latest version (served by the latest-value cache once read)
        // and at every older one, before and after each commit.
        proptest::proptest!(
            proptest::test_runner::Config::with_cases(16),
            |(steps in proptest::collection::vec(
                proptest::collection::vec((0u8..6, proptest::option::of(0u8..4)), 0..5),
                1..12,
            ))| {
                let dir = tempfile::tempdir().unwrap();
                let store = test_store(dir.path());
                let key = |k: u8| KeyHash::of(HashFunction::Blake3, &[k]);
                let mut versions: Vec<BTreeMap<u8, Vec<u8>>> = vec![BTreeMap::new()];
                let check = |versions: &[BTreeMap<u8, Vec<u8>>]| -> Result<(), proptest::test_runner::TestCaseError> {
                    for (v, model) in versions.iter().enumerate().skip(1) {
                        for k in 0..6u8 {
                            let got = store.get_value(&key(k), v as Version).unwrap();
                            proptest::prop_assert_eq!(got.as_ref(), model.get(&k), "key {} at {}", k, v);
                        }
                    }
                    Ok(())
                };
                for step in steps {
                    let mut model = versions.last().cloned().unwrap_or_default();
                    let mut updates = BTreeMap::new();
                    for (k, v) in step {
                        let value = v.map(|v| vec![k, v, versions.len() as u8]);
                        match &value {
                            Some(value) => model.insert(k, value.clone()),
                            None => model.remove(&k),
                        };
                        updates.insert(key(k), value);
                    }
                    let updates: Vec<_> = updates.into_iter().collect();
                    check(&versions)?;
                    append_state(&store, &updates);
                    versions.push(model);
                    check(&versions)?;
                }
            }
        );
    }

    #[test]
    fn log_compaction_elides_checkpointed_state_batches() {
        let run = |compact: bool| {
            let dir = tempfile::tempdir().unwrap();
            let chain = ChainId::new("durable-test").unwrap();
            let config = DurableConfig {
                segment_size: 64 * 1024,
                checkpoint_interval: 8,
                compact_log: compact,
                ..DurableConfig::default()
            };
            let store = DurableStore::open(dir.path(), chain.clone(), config.clone()).unwrap();
            let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
            let (_, genesis) = tree.apply_batch(None, 0, &[]).unwrap();
            store.commit_state(genesis).unwrap();
            for h in 0..200u64 {
                let updates: Vec<_> = (0..50u64)
                    .map(|i| {
                        let k = KeyHash::of(HashFunction::Blake3, &(h * 50 + i).to_le_bytes());
                        (k, Some(vec![7; 100]))
                    })
                    .collect();
                append_state(&store, &updates);
            }
            assert_eq!(store.verify().unwrap(), 200);
            drop(store);
            let store = DurableStore::open(dir.path(), chain, config).unwrap();
            assert_eq!(store.verify().unwrap(), 200);
            let log: u64 = std::fs::read_dir(dir.path().join(LOG_DIR))
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            (log, store.compacted_below.load(Ordering::SeqCst))
        };
        let (full, none) = run(false);
        let (compacted, below) = run(true);
        assert_eq!(none, 0);
        assert!(below > 100, "compacted below {below}");
        assert!(
            compacted * 2 < full,
            "log {compacted} bytes compacted, {full} not"
        );
    }

    /// A value read "as of" a version goes through the state tree: with the
    /// latest row of a key lost (a lost write, or a damaged key hiding it),
    /// the read is corruption, never the older row. A deletion writes no
    /// row and reads as absent. Intact reads agree with the tree at every
    /// version, and a version below the pruning horizon is refused as
    /// pruned.
    #[test]
    fn as_of_value_reads_go_through_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path());
        let (a, b) = (
            KeyHash::of(HashFunction::Blake3, b"a"),
            KeyHash::of(HashFunction::Blake3, b"b"),
        );
        append_state(
            &store,
            &[(a, Some(b"a1".to_vec())), (b, Some(b"b1".to_vec()))],
        );
        append_state(&store, &[(a, Some(b"a2".to_vec())), (b, None)]);
        append_state(
            &store,
            &[(
                KeyHash::of(HashFunction::Blake3, b"c"),
                Some(b"c3".to_vec()),
            )],
        );
        let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
        for v in 0..=4 {
            for k in [a, b] {
                assert_eq!(
                    store.get_value(&k, v).unwrap(),
                    tree.get(&k, v.min(3)).unwrap(),
                    "{k} at {v}"
                );
            }
        }
        let drop_row = |k: &KeyHash, v: Version| {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(VALUES)
                .unwrap()
                .remove(&value_key(k, v)[..])
                .unwrap()
                .unwrap();
            txn.commit().unwrap();
            *store.reader.write() = None;
            // Answers read before the damage stay correct in memory; a new
            // handle would have none, and must find the damage.
            store.latest_values.reset(store.latest_version().unwrap());
        };
        // A deletion writes no row: b has no row at version 2.
        {
            let txn = store.db.begin_read().unwrap();
            let values = txn.open_table(VALUES).unwrap();
            assert!(values.get(&value_key(&b, 2)[..]).unwrap().is_none());
            assert!(values.get(&value_key(&a, 2)[..]).unwrap().is_some());
        }
        drop_row(&a, 2);
        for v in [2, 3, 4] {
            let r = store.get_value(&a, v);
            assert!(
                r.as_ref().is_err_and(|e| e.is_corruption()),
                "a at {v}: {r:?}"
            );
            // The deleted key reads as absent through the tree.
            assert_eq!(store.get_value(&b, v).unwrap(), None, "b at {v}");
        }
        // The tree walk reads the value the leaf names, exactly: the lost
        // row is an error; a deleted key needs no row.
        assert!(tree.get(&a, 3).is_err());
        assert_eq!(tree.get(&b, 3).unwrap(), None);
        // Version 1 is intact.
        assert_eq!(store.get_value(&a, 1).unwrap(), Some(b"a1".to_vec()));
        store.prune_state_below(2).unwrap();
        assert!(matches!(
            store.get_value(&KeyHash::of(HashFunction::Blake3, b"c"), 1),
            Err(StorageError::Pruned { .. })
        ));
    }

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

    /// The position of test key `i`.
    fn churn_key(i: u64) -> KeyHash {
        KeyHash::of(HashFunction::Blake3, &i.to_le_bytes())
    }

    /// Appends state versions 1 to 8, each inserting, overwriting and
    /// deleting keys of a 600-key range ([`churn_key`]).
    fn append_churn(store: &DurableStore) {
        for h in 1..=8u64 {
            append_state(store, &churn_updates(h));
        }
    }

    /// The updates of version `h` of [`append_churn`].
    fn churn_updates(h: u64) -> Vec<(KeyHash, Option<Vec<u8>>)> {
        (0..300u64)
            .map(|i| {
                let k = (i * 7 + h * 131) % 600;
                (churn_key(k), (k % 5 != h % 5).then(|| vec![h as u8; 4]))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect()
    }

    /// A coalesced append of heights 4..=8 over a store holding 1..=3
    /// stores the same blocks as appending them one by one, and exactly
    /// the pages and value rows that appending one by one and pruning below
    /// 8 keeps; versions below 8 read as pruned; the store verifies,
    /// reopens and takes ordinary appends after it. Refused appends change
    /// nothing.
    #[test]
    fn coalesced_append_keeps_what_appending_each_and_pruning_keeps() {
        let seq_dir = tempfile::tempdir().unwrap();
        let seq = test_store(seq_dir.path());
        append_churn(&seq);
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path());
        for h in 1..=3 {
            append_block(&store, test_txs(h, 2), &churn_updates(h));
        }
        let mut coalesced = govchain_core::smt::CoalescedUpdates::new(4);
        let mut blocks = Vec::new();
        let mut parent = store.block_hash(Height::new(3)).unwrap().unwrap();
        for h in 4..=8u64 {
            let view = coalesced.view(&store);
            let (root, batch) = SparseMerkleTree::new(&view, HashFunction::Blake3)
                .apply_batch(Some(h - 1), h, &churn_updates(h))
                .unwrap();
            assert_eq!(Some(root), seq.state_root(HashFunction::Blake3, h).unwrap());
            coalesced.push(batch).unwrap();
            let (block, cert) = test_block(store.chain_id(), h, parent, test_txs(h, 2), root);
            parent = block.hash();
            blocks.push((block, cert));
        }
        let batch = coalesced.into_batch().unwrap();
        let refs: Vec<_> = blocks.iter().map(|(b, c)| (b, c)).collect();
        // Refused: no blocks; a gap; an entry outside the blocks' heights.
        assert!(matches!(
            store.append_coalesced(&[], batch.clone()),
            Err(StorageError::InvalidBatch { .. })
        ));
        assert!(matches!(
            store.append_coalesced(&refs[1..], batch.clone()),
            Err(StorageError::UnexpectedHeight { .. })
        ));
        let mut outside = batch.clone();
        if let Some((k, _)) = outside.nodes.iter_mut().find(|(k, _)| k.version != 8) {
            k.version = 3;
        }
        assert!(matches!(
            store.append_coalesced(&refs, outside),
            Err(StorageError::InvalidBatch { .. })
        ));
        assert_eq!(store.latest_height().unwrap(), Height::new(3));
        store.append_coalesced(&refs, batch).unwrap();

        assert_eq!(store.latest_height().unwrap(), Height::new(8));
        for h in 4..=8 {
            let (block, _) = &blocks[(h - 4) as usize];
            assert_eq!(store.block(Height::new(h)).unwrap().unwrap().block, *block);
            assert_eq!(
                store.block_hash(Height::new(h)).unwrap(),
                Some(block.hash())
            );
            assert_eq!(
                ids_in_block(&store, h),
                store.block_tx_ids(Height::new(h)).unwrap().unwrap()
            );
            assert_eq!(
                store.height_of(&block.hash()).unwrap(),
                Some(Height::new(h))
            );
        }
        assert_eq!(store.oldest_readable_version().unwrap(), Some(8));
        assert!(matches!(
            store.get_value(&churn_key(1), 7),
            Err(StorageError::Pruned { .. })
        ));
        seq.prune_state_below(8).unwrap();
        assert_eq!(stored_node_keys(&store), reachable(&store, 8..=8));
        assert_eq!(stored_node_keys(&store), stored_node_keys(&seq));
        assert_eq!(table_rows(&store, VALUES), table_rows(&seq, VALUES));
        let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
        let seq_tree = SparseMerkleTree::new(&seq, HashFunction::Blake3);
        for i in 0..600 {
            assert_eq!(
                tree.get(&churn_key(i), 8).unwrap(),
                seq_tree.get(&churn_key(i), 8).unwrap()
            );
        }
        assert_eq!(store.verify().unwrap(), 8);
        store.close().unwrap();

        let store = DurableStore::open(
            dir.path(),
            ChainId::new("durable-test").unwrap(),
            DurableConfig::default(),
        )
        .unwrap();
        assert_eq!(store.latest_height().unwrap(), Height::new(8));
        assert_eq!(store.oldest_readable_version().unwrap(), Some(8));
        append_block(&store, test_txs(9, 1), &churn_updates(9));
        assert_eq!(store.verify().unwrap(), 9);
    }

    /// Pruning through the per-version stale rows deletes exactly the pages
    /// no retained version reaches, and the value entries no retained
    /// version reads.
    #[test]
    fn prune_deletes_exactly_the_unreachable_pages() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_store(dir.path());
        let tree = SparseMerkleTree::new(&store, HashFunction::Blake3);
        let key = churn_key;
        append_churn(&store);
        let roots: Vec<Hash> = (0..=8)
            .map(|v| {
                store
                    .state_root(govchain_core::hash::HashFunction::Blake3, v)
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert_eq!(stored_node_keys(&store), reachable(&store, 0..=8));
        for below in [3u64, 6, 8] {
            store.prune_state_below(below).unwrap();
            assert_eq!(stored_node_keys(&store), reachable(&store, below..=8));
            // Every older root was replaced by the next version's, so it is
            // gone, from the index and from the page cache (the reads of
            // the previous round cached it).
            for v in 0..below {
                assert!(store.get_node(&NodeKey::root(v)).unwrap().is_none());
            }
            for v in below..=8 {
                assert_eq!(tree.root_hash(v).unwrap(), roots[v as usize]);
                for i in (0..600).step_by(7) {
                    let (value, proof) = tree.get_with_proof(&key(i), v).unwrap();
                    proof
                        .verify(
                            govchain_core::hash::HashFunction::Blake3,
                            &roots[v as usize],
                            &key(i),
                            value.as_deref(),
                        )
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

    /// All rows of a table, as bytes.
    fn table_rows(
        store: &DurableStore,
        table: redb::TableDefinition<&[u8], &[u8]>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let read = store.db.begin_read().unwrap();
        let t = read.open_table(table).unwrap();
        t.iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    }

    /// A prune cut into many small passes (a few keys each, so a pass ends
    /// inside the rows of one version and the next starts after it) leaves
    /// exactly the rows a single pass leaves.
    #[test]
    fn pruning_in_small_passes_deletes_what_one_pass_deletes() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let stores = [test_store(dirs[0].path()), test_store(dirs[1].path())];
        for store in &stores {
            append_churn(store);
        }
        let upper = 7u64.to_be_bytes();
        for (store, pass_keys) in stores.iter().zip([usize::MAX, 5]) {
            let txn = store.db.begin_write().unwrap();
            delete_stale(&txn, &upper, pass_keys).unwrap();
            txn.commit().unwrap();
        }
        assert_eq!(stored_node_keys(&stores[0]), reachable(&stores[0], 6..=8));
        for table in [NODES, VALUES, STALE] {
            let (one, many) = (table_rows(&stores[0], table), table_rows(&stores[1], table));
            assert!(!one.is_empty());
            assert_eq!(one, many, "table {}", redb::TableHandle::name(&table));
        }
    }
}
