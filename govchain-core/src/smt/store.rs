//! The [`NodeStore`] trait, the [`TreeUpdateBatch`] a tree update produces,
//! and [`MemoryNodeStore`], the in-memory store.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::node::{KeyHash, Node, NodeKey, NodePath, Version};

/// Read access to the nodes and values of a versioned sparse Merkle tree.
///
/// The tree never writes through this trait: an update returns a
/// [`TreeUpdateBatch`] that the owner of the store writes *atomically* (all
/// of it or none of it), for example in one redb transaction. Until the batch
/// is written, readers see the previous versions only.
///
/// # Contract
/// - **Immutability.** A node key is written at most once; the node under it
///   never changes until pruning deletes it. Likewise a value under
///   `(key_hash, version)`.
/// - **Errors.** `Err` means the store could not answer (I/O failure,
///   corruption detected by the store, a poisoned handle). It never means
///   "absent": absence is `Ok(None)`. The tree wraps the error in
///   [`SmtError::Store`](super::SmtError::Store) and never retries.
/// - **Pruning.** After the owner prunes below version `p`,
///   [`oldest_readable_version`](NodeStore::oldest_readable_version) returns
///   `Some(p)`. The tree reports any read at a version below it as the typed
///   error [`SmtError::VersionPruned`](super::SmtError::VersionPruned), both
///   up front and when a node is found missing during a read that raced a
///   prune. Reads at versions `>= p` must keep returning every node they did
///   before.
/// - **Concurrency.** Reads may come from several threads at once (the tree
///   updates independent subtrees in parallel), hence `Sync`.
pub trait NodeStore: Send + Sync {
    /// The store's own error type (for example the storage crate's error
    /// enum).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The node stored under `key`, if any.
    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, Self::Error>;

    /// The value of `key_hash` written at the greatest version `<= version`;
    /// `None` if there is none or it is a deletion marker.
    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, Self::Error>;

    /// The oldest version that can still be read, or `None` if nothing was
    /// ever pruned.
    fn oldest_readable_version(&self) -> Result<Option<Version>, Self::Error>;
}

impl<S: NodeStore + ?Sized> NodeStore for &S {
    type Error = S::Error;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, Self::Error> {
        (**self).get_node(key)
    }

    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        (**self).get_value(key_hash, version)
    }

    fn oldest_readable_version(&self) -> Result<Option<Version>, Self::Error> {
        (**self).oldest_readable_version()
    }
}

/// A node that stopped being part of the tree at `stale_since`: versions
/// `>= stale_since` no longer reach it, so pruning below a version
/// `>= stale_since` may delete it (JMT's "stale node index", Gao et al.,
/// 2021, §4.3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct StaleNodeIndex {
    /// The first version that does not use the node.
    pub stale_since: Version,
    /// The node.
    pub node_key: NodeKey,
}

/// A value that stopped being readable at `stale_since` (the key was
/// overwritten or deleted then), or a deletion marker that is only needed
/// while the value it hides is kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct StaleValueIndex {
    /// The first version that does not read the entry.
    pub stale_since: Version,
    /// The key.
    pub key_hash: KeyHash,
    /// The version the entry was written at.
    pub version: Version,
}

/// Everything one tree update writes: new nodes, new values (and deletion
/// markers), and the index of what became stale. Write it atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeUpdateBatch {
    /// The version this batch creates.
    pub version: Version,
    /// New nodes, each under a key not written before.
    pub nodes: Vec<(NodeKey, Node)>,
    /// New values under `(key_hash, version)`; `None` marks a deletion.
    pub values: Vec<(KeyHash, Version, Option<Vec<u8>>)>,
    /// Nodes that version [`version`](Self::version) no longer uses.
    pub stale_nodes: Vec<StaleNodeIndex>,
    /// Value entries that version [`version`](Self::version) no longer reads.
    pub stale_values: Vec<StaleValueIndex>,
}

impl TreeUpdateBatch {
    /// The versions of the batch's new nodes and values, in batch order
    /// (every one is [`version`](Self::version), except in a coalesced
    /// batch).
    pub fn entry_versions(&self) -> impl Iterator<Item = Version> + '_ {
        self.nodes
            .iter()
            .map(|(k, _)| k.version)
            .chain(self.values.iter().map(|(_, v, _)| *v))
    }
}

/// Why [`MemoryNodeStore::write_batch`] refused a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// Batches must be written in increasing version order.
    #[error("batch version {version} is not above the latest written version {latest}")]
    VersionNotIncreasing {
        /// The batch's version.
        version: Version,
        /// The latest version already written.
        latest: Version,
    },
    /// A node or value in the batch is not at the batch's version (the
    /// tree writes new entries only at the new version, so a batch that
    /// passes this check can not overwrite anything already stored).
    #[error("entry at version {found} in a batch for version {version}")]
    ForeignVersion {
        /// The batch's version.
        version: Version,
        /// The version of the offending entry.
        found: Version,
    },
}

/// A fast keyed hasher for the in-memory maps. Node keys and key hashes are
/// mostly BLAKE3 outputs already, so SipHash's cost buys little; a per-map
/// random seed and a full final mix keep adversarial inputs from clustering.
#[derive(Clone, Debug)]
struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        FastState {
            seed: RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.seed }
    }
}

#[derive(Clone, Debug)]
struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.h = (self.h.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3 fmix64: every input bit reaches the low bits used for
        // bucket selection.
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// The entries of one key, `(version, value or deletion marker)`, sorted.
type ValueHistory = Vec<(Version, Option<Vec<u8>>)>;

/// An index slot: the top bits of the path's hash and the node's position
/// in the arena ([`EMPTY_SLOT`] or [`DEAD_SLOT`] if none).
#[derive(Clone, Copy, Debug)]
struct Slot {
    tag: u32,
    pos: u32,
}

/// Never used: ends a probe sequence.
const EMPTY_SLOT: u32 = u32::MAX;
/// Used by a node since pruned: probing goes on past it.
const DEAD_SLOT: u32 = u32::MAX - 1;

/// The nodes one version wrote: the batch's node vector kept as written (an
/// arena, moved in without copying) and an open-addressing index from path
/// to position (linear probing on a randomly keyed hash), at most half
/// full. The index holds 8-byte slots, so it is small and mostly cached,
/// and a read costs about one cache miss, in the arena. A slot's tag is
/// only a hint: the path is always compared with the arena entry's.
///
/// Pruned nodes leave the index at once; the arena is compacted when most
/// of it is dead, and dropped whole when all of it is.
#[derive(Debug)]
struct VersionNodes {
    arena: Vec<(NodeKey, Node)>,
    slots: Vec<Slot>,
    /// Nodes at positions a `u32` can not hold (only for absurdly large
    /// batches).
    overflow: HashMap<NodePath, usize, FastState>,
    seed: FastState,
    live: usize,
}

impl VersionNodes {
    /// Indexes `arena`; a path listed twice resolves to its last entry.
    fn new(arena: Vec<(NodeKey, Node)>) -> VersionNodes {
        let mut v = VersionNodes {
            arena,
            slots: Vec::new(),
            overflow: HashMap::with_hasher(FastState::default()),
            seed: FastState::default(),
            live: 0,
        };
        v.reindex();
        v
    }

    /// The home slot and the tag of `path`.
    #[inline]
    fn home(&self, path: &NodePath) -> (usize, u32) {
        let h = self.seed.hash_one(path);
        // Multiply-shift range reduction: the high bits choose the slot,
        // the low bits are the tag.
        let cap = self.slots.len() as u128;
        (((u128::from(h) * cap) >> 64) as usize, h as u32)
    }

    fn reindex(&mut self) {
        let cap = self.arena.len().saturating_mul(2).max(8);
        self.slots.clear();
        self.slots.resize(
            cap,
            Slot {
                tag: 0,
                pos: EMPTY_SLOT,
            },
        );
        self.overflow.clear();
        self.live = 0;
        for pos in 0..self.arena.len() {
            let Some((key, _)) = self.arena.get(pos) else {
                break;
            };
            let path = key.path;
            let Some(pos32) = u32::try_from(pos).ok().filter(|p| *p < DEAD_SLOT) else {
                if self.overflow.insert(path, pos).is_none() {
                    self.live += 1;
                }
                continue;
            };
            let (mut i, tag) = self.home(&path);
            while let Some(slot) = self.slots.get_mut(i) {
                if slot.pos == EMPTY_SLOT {
                    *slot = Slot { tag, pos: pos32 };
                    self.live += 1;
                    break;
                }
                if slot.tag == tag
                    && self
                        .arena
                        .get(slot.pos as usize)
                        .is_some_and(|(k, _)| k.path == path)
                {
                    // The same path again: the later entry wins.
                    slot.pos = pos32;
                    break;
                }
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.live
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The index slot of `path`, if it is indexed.
    #[inline]
    fn find(&self, path: &NodePath) -> Option<usize> {
        let cap = self.slots.len();
        let (mut i, tag) = self.home(path);
        loop {
            let slot = self.slots.get(i)?;
            if slot.pos == EMPTY_SLOT {
                return None;
            }
            if slot.tag == tag
                && slot.pos != DEAD_SLOT
                && self
                    .arena
                    .get(slot.pos as usize)
                    .is_some_and(|(k, _)| k.path == *path)
            {
                return Some(i);
            }
            i += 1;
            if i == cap {
                i = 0;
            }
        }
    }

    #[inline]
    fn get(&self, path: &NodePath) -> Option<&Node> {
        let pos = match self.find(path) {
            Some(i) => self.slots.get(i).map(|s| s.pos as usize),
            None if self.overflow.is_empty() => None,
            None => self.overflow.get(path).copied(),
        }?;
        self.arena.get(pos).map(|(_, n)| n)
    }

    /// Unindexes `path`; returns whether it was there.
    fn remove(&mut self, path: &NodePath) -> bool {
        let removed = match self.find(path).and_then(|i| self.slots.get_mut(i)) {
            Some(slot) => {
                slot.pos = DEAD_SLOT;
                true
            }
            None => self.overflow.remove(path).is_some(),
        };
        if removed {
            self.live -= 1;
        }
        removed
    }

    /// Drops the arena entries no longer indexed, once they are most of it.
    fn maybe_compact(&mut self) {
        if self.live * 2 >= self.arena.len() {
            return;
        }
        let mut keep = vec![false; self.arena.len()];
        let live = self
            .slots
            .iter()
            .filter(|s| s.pos < DEAD_SLOT)
            .map(|s| s.pos as usize)
            .chain(self.overflow.values().copied());
        for pos in live {
            if let Some(k) = keep.get_mut(pos) {
                *k = true;
            }
        }
        let mut it = keep.into_iter();
        self.arena.retain(|_| it.next().unwrap_or(false));
        self.arena.shrink_to_fit();
        self.reindex();
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Nodes grouped by the version that wrote them; a version whose nodes
    /// are all pruned is dropped whole.
    nodes: HashMap<Version, VersionNodes, FastState>,
    node_count: usize,
    /// Per key, `(version, value)` sorted by version.
    values: HashMap<KeyHash, ValueHistory, FastState>,
    stale_nodes: BTreeMap<Version, Vec<NodeKey>>,
    stale_values: BTreeMap<Version, Vec<(KeyHash, Version)>>,
    latest: Option<Version>,
    oldest_readable: Option<Version>,
}

/// An in-memory [`NodeStore`] behind a reader-writer lock.
///
/// Each written batch's node vector is kept as it is, as an arena for its
/// version, with a compact open-addressing index over it, so writing a
/// batch copies no node and a read costs about one cache miss.
///
/// Reads never fail; [`write_batch`](Self::write_batch) applies a batch
/// atomically with respect to readers, and [`prune`](Self::prune) deletes
/// what no retained version can reach.
#[derive(Debug, Default)]
pub struct MemoryNodeStore {
    inner: RwLock<Inner>,
}

impl MemoryNodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock can only happen between whole
        // statements of `write_batch`/`prune`, which validate before they
        // mutate; the data is consistent, so poisoning is ignored.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `batch` atomically: readers see all of it or none of it.
    pub fn write_batch(&self, batch: TreeUpdateBatch) -> Result<(), MemoryStoreError> {
        let mut inner = self.write();
        if let Some(latest) = inner.latest {
            if batch.version <= latest {
                return Err(MemoryStoreError::VersionNotIncreasing {
                    version: batch.version,
                    latest,
                });
            }
        }
        if let Some(found) = batch.entry_versions().find(|v| *v != batch.version) {
            return Err(MemoryStoreError::ForeignVersion {
                version: batch.version,
                found,
            });
        }
        inner.latest = Some(batch.version);
        if !batch.nodes.is_empty() {
            let nodes = VersionNodes::new(batch.nodes);
            inner.node_count += nodes.len();
            inner.nodes.insert(batch.version, nodes);
        }
        inner.values.reserve(batch.values.len());
        for (key, version, value) in batch.values {
            let history = inner.values.entry(key).or_default();
            let at = history.partition_point(|(v, _)| *v <= version);
            if at > 0 && history[at - 1].0 == version {
                history[at - 1].1 = value;
            } else {
                history.insert(at, (version, value));
            }
        }
        // Entries come in runs of one `stale_since` (a tree update marks
        // everything stale since its own version): one map lookup per run.
        for run in batch
            .stale_nodes
            .chunk_by(|a, b| a.stale_since == b.stale_since)
        {
            if let Some(first) = run.first() {
                let list = inner.stale_nodes.entry(first.stale_since).or_default();
                list.extend(run.iter().map(|s| s.node_key));
            }
        }
        for run in batch
            .stale_values
            .chunk_by(|a, b| a.stale_since == b.stale_since)
        {
            if let Some(first) = run.first() {
                let list = inner.stale_values.entry(first.stale_since).or_default();
                list.extend(run.iter().map(|s| (s.key_hash, s.version)));
            }
        }
        Ok(())
    }

    /// Writes a batch of [`CoalescedUpdates`](super::CoalescedUpdates)
    /// covering versions `first..=batch.version` (entries at any of those
    /// versions, all above the latest written one), then prunes below
    /// `batch.version`: the versions the batch skipped were never stored,
    /// so every version below it becomes unreadable. Returns the number of
    /// nodes the prune deleted.
    pub fn write_coalesced(
        &self,
        first: Version,
        batch: TreeUpdateBatch,
    ) -> Result<usize, MemoryStoreError> {
        let version = batch.version;
        {
            let mut inner = self.write();
            if let Some(latest) = inner.latest {
                if first <= latest || version < first {
                    return Err(MemoryStoreError::VersionNotIncreasing {
                        version: first,
                        latest,
                    });
                }
            }
            if let Some(found) = batch
                .entry_versions()
                .find(|v| !(first..=version).contains(v))
            {
                return Err(MemoryStoreError::ForeignVersion { version, found });
            }
            inner.latest = Some(version);
            let mut by_version: BTreeMap<Version, Vec<(NodeKey, Node)>> = BTreeMap::new();
            for (k, n) in batch.nodes {
                by_version.entry(k.version).or_default().push((k, n));
            }
            for (v, arena) in by_version {
                let nodes = VersionNodes::new(arena);
                inner.node_count += nodes.len();
                inner.nodes.insert(v, nodes);
            }
            for (key, v, value) in batch.values {
                let history = inner.values.entry(key).or_default();
                let at = history.partition_point(|(w, _)| *w <= v);
                history.insert(at, (v, value));
            }
            for s in batch.stale_nodes {
                inner
                    .stale_nodes
                    .entry(s.stale_since)
                    .or_default()
                    .push(s.node_key);
            }
            for s in batch.stale_values {
                inner
                    .stale_values
                    .entry(s.stale_since)
                    .or_default()
                    .push((s.key_hash, s.version));
            }
        }
        Ok(self.prune(version))
    }

    /// Deletes every node and value that only versions below `below` use,
    /// and makes those versions unreadable (reads of them return
    /// [`SmtError::VersionPruned`](super::SmtError::VersionPruned)).
    /// `below` is capped at the latest written version, which always stays
    /// readable. Returns the number of nodes deleted.
    pub fn prune(&self, below: Version) -> usize {
        let mut inner = self.write();
        let Some(latest) = inner.latest else {
            return 0;
        };
        let below = below.min(latest);
        if inner.oldest_readable.is_some_and(|o| o >= below) {
            return 0;
        }
        inner.oldest_readable = Some(below);
        // Entries stale since `s <= below` are unused by every version >= below.
        let keep_nodes = inner.stale_nodes.split_off(&(below + 1));
        let drop_nodes = std::mem::replace(&mut inner.stale_nodes, keep_nodes);
        let mut removed = 0;
        let mut touched = Vec::new();
        for key in drop_nodes.into_values().flatten() {
            if let Some(nodes) = inner.nodes.get_mut(&key.version) {
                if nodes.remove(&key.path) {
                    removed += 1;
                    touched.push(key.version);
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for version in touched {
            if let Some(nodes) = inner.nodes.get_mut(&version) {
                if nodes.is_empty() {
                    inner.nodes.remove(&version);
                } else {
                    nodes.maybe_compact();
                }
            }
        }
        inner.node_count -= removed;
        let keep_values = inner.stale_values.split_off(&(below + 1));
        let drop_values = std::mem::replace(&mut inner.stale_values, keep_values);
        for (key, version) in drop_values.into_values().flatten() {
            if let Some(history) = inner.values.get_mut(&key) {
                history.retain(|(v, _)| *v != version);
                if history.is_empty() {
                    inner.values.remove(&key);
                }
            }
        }
        removed
    }

    /// Number of nodes held.
    pub fn node_count(&self) -> usize {
        self.read().node_count
    }

    /// Number of value entries held (values and deletion markers).
    pub fn value_count(&self) -> usize {
        self.read().values.values().map(Vec::len).sum()
    }

    /// The latest version written, if any.
    pub fn latest_version(&self) -> Option<Version> {
        self.read().latest
    }
}

impl NodeStore for MemoryNodeStore {
    type Error = Infallible;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, Infallible> {
        Ok(self
            .read()
            .nodes
            .get(&key.version)
            .and_then(|nodes| nodes.get(&key.path))
            .cloned())
    }

    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, Infallible> {
        let inner = self.read();
        let Some(history) = inner.values.get(key_hash) else {
            return Ok(None);
        };
        let at = history.partition_point(|(v, _)| *v <= version);
        Ok(at
            .checked_sub(1)
            .and_then(|i| history.get(i))
            .and_then(|(_, value)| value.clone()))
    }

    fn oldest_readable_version(&self) -> Result<Option<Version>, Infallible> {
        Ok(self.read().oldest_readable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Domain, Hash};
    use crate::smt::LeafNode;

    fn key(i: u32) -> KeyHash {
        KeyHash::of(crate::hash::HashFunction::Blake3, &i.to_le_bytes())
    }

    fn leaf(i: u32, value_version: Version) -> Node {
        Node::Leaf(LeafNode {
            key_hash: key(i),
            value_hash: Hash::of(Domain::Test, &i.to_le_bytes()),
            value_version,
        })
    }

    /// Node `i` of a version: distinct paths of depths 24 to 256.
    fn node_key(version: Version, i: u32) -> NodeKey {
        NodeKey {
            version,
            path: NodePath::of_key(&key(i), 24 + (i as usize * 7) % 233),
        }
    }

    fn batch(version: Version, nodes: Vec<(NodeKey, Node)>) -> TreeUpdateBatch {
        TreeUpdateBatch {
            version,
            nodes,
            ..TreeUpdateBatch::default()
        }
    }

    #[test]
    fn arena_index_finds_every_node_and_nothing_else() {
        let store = MemoryNodeStore::new();
        let nodes: Vec<_> = (0..2000).map(|i| (node_key(1, i), leaf(i, 1))).collect();
        store.write_batch(batch(1, nodes.clone())).unwrap();
        assert_eq!(store.node_count(), 2000);
        for (k, n) in &nodes {
            assert_eq!(store.get_node(k).unwrap().as_ref(), Some(n));
            // Same path, other versions: absent.
            for version in [0, 2] {
                assert_eq!(store.get_node(&NodeKey { version, ..*k }).unwrap(), None);
            }
        }
        for i in 2000..2500 {
            assert_eq!(store.get_node(&node_key(1, i)).unwrap(), None);
        }
    }

    #[test]
    fn repeated_path_in_a_batch_keeps_the_last() {
        let store = MemoryNodeStore::new();
        let k = node_key(3, 5);
        let nodes = vec![
            (k, leaf(1, 3)),
            (node_key(3, 6), leaf(2, 3)),
            (k, leaf(3, 3)),
        ];
        store.write_batch(batch(3, nodes)).unwrap();
        assert_eq!(store.node_count(), 2);
        assert_eq!(store.get_node(&k).unwrap(), Some(leaf(3, 3)));
    }

    #[test]
    fn prune_unindexes_compacts_and_drops_versions() {
        let store = MemoryNodeStore::new();
        let nodes: Vec<_> = (0..1000).map(|i| (node_key(1, i), leaf(i, 1))).collect();
        store.write_batch(batch(1, nodes.clone())).unwrap();
        // Version 2 makes 900 of them stale (enough to compact the arena).
        let mut b = batch(2, vec![(node_key(2, 0), leaf(0, 2))]);
        b.stale_nodes = (0..900)
            .map(|i| StaleNodeIndex {
                stale_since: 2,
                node_key: node_key(1, i),
            })
            .collect();
        store.write_batch(b).unwrap();
        assert_eq!(store.node_count(), 1001);
        assert_eq!(store.prune(2), 900);
        assert_eq!(store.node_count(), 101);
        for (i, (k, n)) in nodes.iter().enumerate() {
            let expected = (i >= 900).then_some(n);
            assert_eq!(store.get_node(k).unwrap().as_ref(), expected);
        }
        assert_eq!(store.oldest_readable_version().unwrap(), Some(2));
        // The rest goes stale at 3; pruning it drops version 1 whole.
        let mut b = batch(3, vec![(node_key(3, 0), leaf(0, 3))]);
        b.stale_nodes = (900..1000)
            .map(|i| StaleNodeIndex {
                stale_since: 3,
                node_key: node_key(1, i),
            })
            .collect();
        store.write_batch(b).unwrap();
        assert_eq!(store.prune(3), 100);
        assert_eq!(store.node_count(), 2);
        assert!(!store.read().nodes.contains_key(&1));
        assert_eq!(store.get_node(&node_key(2, 0)).unwrap(), Some(leaf(0, 2)));
    }
}
