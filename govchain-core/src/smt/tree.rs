//! [`SparseMerkleTree`]: reads, proofs and batch updates over a [`NodeStore`].

use rayon::prelude::*;

use crate::hash::{Domain, Hash, HashFunction};

use super::node::{
    Child, InternalNode, KeyHash, LeafNode, Node, NodeKey, NodePath, Range, Version, EMPTY_SUBTREE,
    KEY_BITS, PAGE_BITS, PAGE_SLOTS,
};
use super::proof::SparseMerkleProof;
use super::store::{NodeStore, StaleNodeIndex, StaleValueIndex, TreeUpdateBatch};

/// Why a tree operation failed. `E` is the store's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtError<E: std::error::Error + 'static> {
    /// The node store failed.
    #[error("node store error: {source}")]
    Store {
        /// The store's error.
        #[source]
        source: E,
    },
    /// The version was pruned from the store.
    #[error("version {version} was pruned; the oldest readable version is {oldest_readable}")]
    VersionPruned {
        /// The version asked for.
        version: Version,
        /// The oldest version the store still holds.
        oldest_readable: Version,
    },
    /// The store holds no root for the version: it was never written.
    #[error("version {version} was never written")]
    VersionNotFound {
        /// The version asked for.
        version: Version,
    },
    /// A node that a retained version refers to is missing: the store is
    /// inconsistent.
    #[error("node {key:?} is missing from the store")]
    MissingNode {
        /// The missing node.
        key: NodeKey,
    },
    /// A stored node contradicts its parent (wrong kind, or too deep).
    #[error("node {key:?} is corrupt: {reason}")]
    CorruptNode {
        /// The node.
        key: NodeKey,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A leaf's value is missing from the store.
    #[error("value of {key} written at version {version} is missing")]
    MissingValue {
        /// The key.
        key: KeyHash,
        /// The version the leaf says the value was written at.
        version: Version,
    },
    /// `apply_batch` was asked for a version that is not above its base.
    #[error("new version {new} is not above the base version {base}")]
    VersionNotIncreasing {
        /// The base version.
        base: Version,
        /// The requested new version.
        new: Version,
    },
    /// A batch names the same key twice.
    #[error("key {key} appears more than once in the batch")]
    DuplicateKey {
        /// The repeated key.
        key: KeyHash,
    },
}

type Result<T, E> = std::result::Result<T, SmtError<E>>;

/// Pages with at least this many updates below them update their slots in
/// parallel (rayon); smaller ones run sequentially, which keeps task
/// overhead negligible.
const PARALLEL_MIN_UPDATES: usize = 1024;

/// Chunk size for hashing values and leaves in parallel.
const HASH_CHUNK: usize = 512;

/// A versioned sparse Merkle tree over a [`NodeStore`].
///
/// The tree is a view: it borrows the store, reads through it, and returns
/// each update as a [`TreeUpdateBatch`] for the caller to write. See the
/// [module docs](super) for the design.
#[derive(Debug)]
pub struct SparseMerkleTree<'a, S> {
    store: &'a S,
    hf: HashFunction,
}

impl<S> Clone for SparseMerkleTree<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for SparseMerkleTree<'_, S> {}

/// One sorted update, with its hashes computed up front.
#[derive(Clone, Copy, Debug)]
struct Upd {
    key: KeyHash,
    /// `(value_hash, leaf_hash)` for an insert or overwrite; `None` deletes.
    put: Option<(Hash, Hash)>,
    /// Index into the caller's update slice (for the value bytes).
    idx: usize,
}

/// A leaf looking for its place: it must end up in the subtree being
/// built.
#[derive(Clone, Copy, Debug)]
struct Carry {
    leaf: LeafNode,
    hash: Hash,
}

impl Carry {
    fn child(self) -> Child {
        Child::Leaf {
            leaf: self.leaf,
            hash: Some(self.hash),
        }
    }
}

/// The slots of one page that receive updates: for each, the slot and
/// the range of its updates (at most 16, on the stack), plus the slot of
/// a carried leaf.
struct Tasks {
    items: [(u8, u32, u32); PAGE_SLOTS],
    len: usize,
    /// A leaf that must end up in the page, and its slot.
    carry: Option<(usize, Carry)>,
}

impl Tasks {
    /// Groups `upds` (sorted, all under a page at `depth`) by slot; a
    /// `carry` joins its slot's group, or gets a task of its own.
    fn group(depth: usize, upds: &[Upd], carry: Option<Carry>) -> Tasks {
        let mut t = Tasks {
            items: [(0, 0, 0); PAGE_SLOTS],
            len: 0,
            carry: carry.map(|c| (c.leaf.key_hash.nibble(depth), c)),
        };
        let mut carry_slot = t.carry.map(|(s, _)| s);
        let mut start = 0usize;
        while let Some(first) = upds.get(start) {
            let slot = first.key.nibble(depth);
            let end = start
                + upds
                    .get(start..)
                    .map_or(1, |r| r.partition_point(|u| u.key.nibble(depth) <= slot))
                    .max(1);
            if let Some(cs) = carry_slot {
                if cs < slot {
                    t.push(cs, start, start);
                    carry_slot = None;
                } else if cs == slot {
                    carry_slot = None;
                }
            }
            t.push(slot, start, end);
            start = end;
        }
        if let Some(cs) = carry_slot {
            t.push(cs, start, start);
        }
        t
    }

    fn push(&mut self, slot: usize, start: usize, end: usize) {
        if let Some(item) = self.items.get_mut(self.len) {
            *item = (slot as u8, start as u32, end as u32);
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[(u8, u32, u32)] {
        &self.items[..self.len.min(PAGE_SLOTS)]
    }

    /// The carried leaf, if it belongs in `slot`.
    fn carry_for(&self, slot: usize) -> Option<Carry> {
        self.carry.filter(|(s, _)| *s == slot).map(|(_, c)| c)
    }
}

#[derive(Debug, Default)]
struct Part {
    nodes: Vec<(NodeKey, Node)>,
    values: Vec<(KeyHash, Version, Option<Vec<u8>>)>,
    stale_nodes: Vec<StaleNodeIndex>,
    stale_values: Vec<StaleValueIndex>,
}

impl Part {
    /// Marks `node_key` stale since `version`.
    #[inline]
    fn stale(&mut self, version: Version, node_key: NodeKey) {
        self.stale_nodes.push(StaleNodeIndex {
            stale_since: version,
            node_key,
        });
    }
}

/// Per-task state of a batch update: the output written so far.
#[derive(Debug, Default)]
struct Ctx {
    cur: Part,
    done: Vec<Part>,
}

/// What one batch update shares between its tasks.
struct Job<'t> {
    version: Version,
    base: Option<Version>,
    updates: &'t [(KeyHash, Option<Vec<u8>>)],
}

impl<'a, S: NodeStore> SparseMerkleTree<'a, S> {
    /// A tree view over `store`, hashing under `hf`: the hash function of
    /// the chain whose state this is. A store holds one chain's tree, so
    /// every view of it must use the same function.
    pub fn new(store: &'a S, hf: HashFunction) -> Self {
        SparseMerkleTree { store, hf }
    }

    /// The hash function of this tree.
    pub fn hash_function(&self) -> HashFunction {
        self.hf
    }

    /// The root hash of the empty tree.
    pub const fn empty_root() -> Hash {
        EMPTY_SUBTREE
    }

    fn store_err(source: S::Error) -> SmtError<S::Error> {
        SmtError::Store { source }
    }

    fn check_pruned(&self, version: Version) -> Result<(), S::Error> {
        match self
            .store
            .oldest_readable_version()
            .map_err(Self::store_err)?
        {
            Some(oldest) if version < oldest => Err(SmtError::VersionPruned {
                version,
                oldest_readable: oldest,
            }),
            _ => Ok(()),
        }
    }

    /// Classifies a node found missing while reading `version`.
    fn missing(&self, key: NodeKey, version: Option<Version>) -> SmtError<S::Error> {
        if let Some(v) = version {
            if let Err(e) = self.check_pruned(v) {
                return e;
            }
        }
        SmtError::MissingNode { key }
    }

    fn read(&self, key: NodeKey, version: Option<Version>) -> Result<Node, S::Error> {
        match self.store.get_node(&key).map_err(Self::store_err)? {
            Some(node) => Ok(node),
            None => Err(self.missing(key, version)),
        }
    }

    fn read_root(&self, version: Version) -> Result<Node, S::Error> {
        self.check_pruned(version)?;
        let key = NodeKey::root(version);
        match self.store.get_node(&key).map_err(Self::store_err)? {
            Some(node) => Ok(node),
            None => {
                self.check_pruned(version)?;
                Err(SmtError::VersionNotFound { version })
            }
        }
    }

    /// Reads the page at `key`, which its parent says is a page.
    fn read_page(&self, key: NodeKey, version: Option<Version>) -> Result<InternalNode, S::Error> {
        match self.read(key, version)? {
            Node::Internal(page)
                if key.path.depth().is_multiple_of(PAGE_BITS)
                    && key.path.depth() + PAGE_BITS <= KEY_BITS =>
            {
                Ok(page)
            }
            _ => Err(SmtError::CorruptNode {
                key,
                reason: "expected a page at a depth divisible by 4, above 256",
            }),
        }
    }

    /// The root hash of `version`.
    pub fn root_hash(&self, version: Version) -> Result<Hash, S::Error> {
        Ok(self.read_root(version)?.hash(self.hf))
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &KeyHash, version: Version) -> Result<Option<Vec<u8>>, S::Error> {
        self.walk(key, version, None)
    }

    /// The value of `key` at `version`, with a proof of it (or of its
    /// absence) against [`root_hash(version)`](Self::root_hash).
    pub fn get_with_proof(
        &self,
        key: &KeyHash,
        version: Version,
    ) -> Result<(Option<Vec<u8>>, SparseMerkleProof), S::Error> {
        let mut proof = SparseMerkleProof::default();
        let value = self.walk(key, version, Some(&mut proof))?;
        Ok((value, proof))
    }

    /// Walks the key's path page by page. Inside a page the binary levels
    /// are followed on the slot masks; sibling hashes (only for proofs) are
    /// recomputed from the slots.
    fn walk(
        &self,
        key: &KeyHash,
        version: Version,
        mut proof: Option<&mut SparseMerkleProof>,
    ) -> Result<Option<Vec<u8>>, S::Error> {
        let mut node = self.read_root(version)?;
        let mut path = NodePath::ROOT;
        loop {
            let page = match node {
                Node::Empty => return Ok(None),
                Node::Leaf(leaf) => return self.found_leaf(key, version, leaf, proof),
                Node::Internal(page) => page,
            };
            let nibble = key.nibble(path.depth());
            let (mut lo, mut len) = (0usize, PAGE_SLOTS);
            for level in 0..PAGE_BITS {
                let half = len / 2;
                let right = (nibble >> (PAGE_BITS - 1 - level)) & 1 == 1;
                let (mine, other) = if right {
                    (lo + half, lo)
                } else {
                    (lo, lo + half)
                };
                if let Some(p) = proof.as_deref_mut() {
                    p.siblings.push(page.range_hash(self.hf, other, half));
                }
                lo = mine;
                len = half;
                match page.range(lo, len) {
                    Range::Empty => return Ok(None),
                    Range::Leaf(leaf) => return self.found_leaf(key, version, leaf, proof),
                    Range::Inner => {}
                }
            }
            let Child::Internal {
                version: child_version,
                ..
            } = page.child(lo)
            else {
                return Err(SmtError::CorruptNode {
                    key: NodeKey { version, path },
                    reason: "page slot is neither empty, a leaf nor a page",
                });
            };
            path = path.nibble_child(lo);
            let key = NodeKey {
                version: child_version,
                path,
            };
            node = Node::Internal(self.read_page(key, Some(version))?);
        }
    }

    /// Ends a walk at `leaf`.
    fn found_leaf(
        &self,
        key: &KeyHash,
        version: Version,
        leaf: LeafNode,
        proof: Option<&mut SparseMerkleProof>,
    ) -> Result<Option<Vec<u8>>, S::Error> {
        if let Some(p) = proof {
            p.leaf = Some((leaf.key_hash, leaf.value_hash));
        }
        if leaf.key_hash != *key {
            return Ok(None);
        }
        match self
            .store
            .get_value(key, leaf.value_version)
            .map_err(Self::store_err)?
        {
            Some(value) => Ok(Some(value)),
            None => {
                self.check_pruned(version)?;
                Err(SmtError::MissingValue {
                    key: *key,
                    version: leaf.value_version,
                })
            }
        }
    }

    /// Applies `updates` to version `base` (or to the empty tree if `None`)
    /// and returns the root of `new_version` with the batch that stores it.
    ///
    /// `Some(value)` inserts or overwrites, `None` deletes (deleting an absent
    /// key does nothing). A key may appear at most once. Nothing is written:
    /// the caller writes the returned batch atomically, after which
    /// `new_version` is readable. The new root depends only on the resulting
    /// key-value set, never on the order of updates or on history.
    ///
    /// Each changed page is read once, rebuilt once and hashed once per
    /// batch, as soon as its slots are final, and pages with many updates
    /// below them update their slots in parallel on the current rayon pool.
    pub fn apply_batch(
        &self,
        base: Option<Version>,
        new_version: Version,
        updates: &[(KeyHash, Option<Vec<u8>>)],
    ) -> Result<(Hash, TreeUpdateBatch), S::Error> {
        if let Some(base) = base {
            if new_version <= base {
                return Err(SmtError::VersionNotIncreasing {
                    base,
                    new: new_version,
                });
            }
        }
        let upds = prepare(self.hf, updates)?;
        let job = Job {
            version: new_version,
            base,
            updates,
        };
        let mut cx = Ctx::default();
        if rayon::current_num_threads() == 1 || upds.len() < PARALLEL_MIN_UPDATES {
            // One context does all the work: size it once. Random updates
            // write and stale a little over one page each.
            cx.cur.nodes.reserve(upds.len() + upds.len() / 2 + 8);
            cx.cur.stale_nodes.reserve(upds.len() + upds.len() / 2 + 8);
            cx.cur.values.reserve(upds.len());
        }
        let existing = match base {
            None => Child::Empty,
            Some(b) => match self.read_root(b)? {
                Node::Empty => {
                    cx.cur.stale(new_version, NodeKey::root(b));
                    Child::Empty
                }
                Node::Leaf(leaf) => {
                    cx.cur.stale(new_version, NodeKey::root(b));
                    Child::leaf(self.hf, leaf)
                }
                Node::Internal(page) => Child::Internal {
                    hash: page.hash(self.hf),
                    version: b,
                },
            },
        };
        let result = self.update(&job, &mut cx, existing, None, NodePath::ROOT, &upds)?;
        let root_key = NodeKey::root(new_version);
        let root = match result {
            Child::Empty => {
                cx.cur.nodes.push((root_key, Node::Empty));
                EMPTY_SUBTREE
            }
            c @ Child::Leaf { leaf, .. } => {
                cx.cur.nodes.push((root_key, Node::Leaf(leaf)));
                c.hash(self.hf)
            }
            // A new root page, already written at `root_key`.
            Child::Internal { hash, version } if version == new_version => hash,
            // The old root page, unchanged: every version has its own root.
            Child::Internal { hash, version } => {
                let old = NodeKey::root(version);
                let page = self.read_page(old, base)?;
                cx.cur.stale(new_version, old);
                cx.cur.nodes.push((root_key, Node::Internal(page)));
                hash
            }
        };
        Ok((root, cx.into_batch(new_version)))
    }

    /// Updates the subtree at `path` (a depth divisible by 4), which holds
    /// `existing`, with `upds` (all under `path`, sorted). `carry` is a leaf
    /// that must end up in the subtree (only when `existing` is empty).
    /// Returns what the parent's slot holds afterwards.
    fn update(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        existing: Child,
        carry: Option<Carry>,
        path: NodePath,
        upds: &[Upd],
    ) -> Result<Child, S::Error> {
        if carry.is_some() {
            return self.build(job, cx, path, carry, upds);
        }
        if upds.is_empty() {
            return Ok(existing);
        }
        match existing {
            Child::Empty => self.build(job, cx, path, None, upds),
            c @ Child::Leaf { leaf, .. } => {
                let hash = c.hash(self.hf);
                let carry = match upds.binary_search_by(|u| u.key.cmp(&leaf.key_hash)) {
                    Ok(i) => {
                        // Overwritten or deleted: the old value goes.
                        cx.cur.stale_values.push(StaleValueIndex {
                            stale_since: job.version,
                            key_hash: leaf.key_hash,
                            version: leaf.value_version,
                        });
                        if upds.get(i).is_some_and(|u| u.put.is_none()) {
                            cx.cur.values.push((leaf.key_hash, job.version, None));
                            // The marker only hides the value staled
                            // above; it can go when that value goes.
                            cx.cur.stale_values.push(StaleValueIndex {
                                stale_since: job.version,
                                key_hash: leaf.key_hash,
                                version: job.version,
                            });
                        }
                        None
                    }
                    Err(_) => Some(Carry { leaf, hash }),
                };
                self.build(job, cx, path, carry, upds)
            }
            Child::Internal { version, .. } => {
                let key = NodeKey { version, path };
                let page = self.read_page(key, job.base)?;
                let mut slots = page.slots();
                let tasks = Tasks::group(path.depth(), upds, None);
                if !self.fill(job, cx, path, &mut slots, &tasks, upds)? {
                    return Ok(existing);
                }
                cx.cur.stale(job.version, key);
                Ok(self.finish_page(job, cx, path, &slots))
            }
        }
    }

    /// Builds the subtree at `path` from nothing but `carry` and the puts
    /// of `upds` (deletions of absent keys do nothing).
    fn build(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        path: NodePath,
        carry: Option<Carry>,
        upds: &[Upd],
    ) -> Result<Child, S::Error> {
        let mut puts = upds.iter().filter(|u| u.put.is_some());
        let first = puts.next();
        let second = puts.next();
        match (carry, first, second) {
            (None, None, _) => return Ok(Child::Empty),
            (Some(c), None, _) => return Ok(c.child()),
            (None, Some(u), None) => return Ok(new_leaf(job, cx, u)),
            _ => {}
        }
        let depth = path.depth();
        if depth + PAGE_BITS > KEY_BITS {
            // Two leaves with all 256 bits equal: only a repeated key can
            // get here, and `prepare` rejects those.
            return Err(SmtError::DuplicateKey {
                key: first.map(|u| u.key).unwrap_or_default(),
            });
        }
        let mut slots = [Child::Empty; PAGE_SLOTS];
        let tasks = Tasks::group(depth, upds, carry);
        self.fill(job, cx, path, &mut slots, &tasks, upds)?;
        Ok(self.finish_page(job, cx, path, &slots))
    }

    /// Runs the tasks of the page at `path`, in parallel when worth it, and
    /// stores their results in `slots`. Returns whether any slot changed.
    fn fill(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        path: NodePath,
        slots: &mut [Child; PAGE_SLOTS],
        tasks: &Tasks,
        upds: &[Upd],
    ) -> Result<bool, S::Error> {
        let items = tasks.as_slice();
        let mut changed = false;
        let range = |start: u32, end: u32| upds.get(start as usize..end as usize).unwrap_or(&[]);
        if upds.len() >= PARALLEL_MIN_UPDATES && items.len() > 1 && rayon::current_num_threads() > 1
        {
            let current: &[Child; PAGE_SLOTS] = slots;
            let results: Vec<_> = items
                .par_iter()
                .map(|&(slot, start, end)| {
                    let slot = usize::from(slot);
                    let mut sub = Ctx::default();
                    let child = self.update(
                        job,
                        &mut sub,
                        current.get(slot).copied().unwrap_or_default(),
                        tasks.carry_for(slot),
                        path.nibble_child(slot),
                        range(start, end),
                    )?;
                    Ok((slot, child, sub))
                })
                .collect::<Vec<Result<_, S::Error>>>();
            for r in results {
                let (slot, child, sub) = r?;
                cx.absorb(sub);
                if let Some(s) = slots.get_mut(slot) {
                    changed |= *s != child;
                    *s = child;
                }
            }
        } else {
            for &(slot, start, end) in items {
                let slot = usize::from(slot);
                let Some(s) = slots.get_mut(slot) else {
                    continue;
                };
                let child = self.update(
                    job,
                    cx,
                    *s,
                    tasks.carry_for(slot),
                    path.nibble_child(slot),
                    range(start, end),
                )?;
                changed |= *s != child;
                *s = child;
            }
        }
        Ok(changed)
    }

    /// The slot value of a page at `path` with these slots: nothing, the
    /// lone leaf (collapsing upwards), or a new page written at the new
    /// version and hashed once, now that its slots are final.
    fn finish_page(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        path: NodePath,
        slots: &[Child; PAGE_SLOTS],
    ) -> Child {
        let mut non_empty = slots.iter().filter(|c| !c.is_empty());
        let (first, second) = (non_empty.next(), non_empty.next());
        match (first, second) {
            (None, _) => return Child::Empty,
            (Some(c @ Child::Leaf { .. }), None) => return *c,
            _ => {}
        }
        let page = InternalNode::from_slots(slots);
        let hash = page.hash(self.hf);
        cx.cur.nodes.push((
            NodeKey {
                version: job.version,
                path,
            },
            Node::Internal(page),
        ));
        Child::Internal {
            hash,
            version: job.version,
        }
    }
}

/// Turns a put into a new leaf, recording its value.
fn new_leaf(job: &Job<'_>, cx: &mut Ctx, u: &Upd) -> Child {
    let (value_hash, hash) = u.put.unwrap_or((EMPTY_SUBTREE, EMPTY_SUBTREE));
    let value = job.updates.get(u.idx).and_then(|(_, v)| v.clone());
    cx.cur.values.push((u.key, job.version, value));
    Child::Leaf {
        leaf: LeafNode {
            key_hash: u.key,
            value_hash,
            value_version: job.version,
        },
        hash: Some(hash),
    }
}

/// Hashes values and leaves (leaves eight at a time with
/// [`hash_node_pairs`]), sorts by key and rejects repeated keys.
fn prepare<E: std::error::Error + 'static>(
    hf: HashFunction,
    updates: &[(KeyHash, Option<Vec<u8>>)],
) -> Result<Vec<Upd>, E> {
    let mut upds: Vec<Upd> = updates
        .iter()
        .enumerate()
        .map(|(idx, (key, _))| Upd {
            key: *key,
            put: None,
            idx,
        })
        .collect();
    upds.par_chunks_mut(HASH_CHUNK).for_each(|chunk| {
        let mut pairs = Vec::with_capacity(chunk.len());
        for u in chunk.iter() {
            if let Some((_, Some(value))) = updates.get(u.idx) {
                pairs.push([*u.key.hash(), super::node::value_hash(hf, value)]);
            }
        }
        let mut leaves = vec![EMPTY_SUBTREE; pairs.len()];
        hf.hash_node_pairs(Domain::SmtLeaf, &pairs, &mut leaves);
        let mut it = pairs.iter().zip(&leaves);
        for u in chunk.iter_mut() {
            if matches!(updates.get(u.idx), Some((_, Some(_)))) {
                if let Some((pair, leaf)) = it.next() {
                    u.put = Some((pair[1], *leaf));
                }
            }
        }
    });
    if upds.len() > 4 * HASH_CHUNK {
        upds.par_sort_unstable_by_key(|u| u.key);
    } else {
        upds.sort_unstable_by_key(|u| u.key);
    }
    if let Some(w) = upds.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(SmtError::DuplicateKey { key: w[0].key });
    }
    Ok(upds)
}

impl Ctx {
    fn absorb(&mut self, mut other: Ctx) {
        self.done.append(&mut other.done);
        self.done.push(other.cur);
    }

    fn into_batch(mut self, version: Version) -> TreeUpdateBatch {
        if self.done.is_empty() {
            // Sequential update: one part, moved without copying.
            let part = self.cur;
            return TreeUpdateBatch {
                version,
                nodes: part.nodes,
                values: part.values,
                stale_nodes: part.stale_nodes,
                stale_values: part.stale_values,
            };
        }
        self.done.push(std::mem::take(&mut self.cur));
        let count = |f: fn(&Part) -> usize| self.done.iter().map(f).sum::<usize>();
        let mut batch = TreeUpdateBatch {
            version,
            nodes: Vec::with_capacity(count(|p| p.nodes.len())),
            values: Vec::with_capacity(count(|p| p.values.len())),
            stale_nodes: Vec::with_capacity(count(|p| p.stale_nodes.len())),
            stale_values: Vec::with_capacity(count(|p| p.stale_values.len())),
        };
        for part in self.done {
            batch.nodes.extend(part.nodes);
            batch.values.extend(part.values);
            batch.stale_nodes.extend(part.stale_nodes);
            batch.stale_values.extend(part.stale_values);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smt::{leaf_hash, node_hash, value_hash, MemoryNodeStore};

    const B3: HashFunction = HashFunction::Blake3;

    fn k(i: u32) -> KeyHash {
        KeyHash::of(B3, &i.to_le_bytes())
    }

    fn apply(
        store: &MemoryNodeStore,
        base: Option<Version>,
        version: Version,
        updates: &[(KeyHash, Option<Vec<u8>>)],
    ) -> Hash {
        let (root, batch) = SparseMerkleTree::new(store, B3)
            .apply_batch(base, version, updates)
            .unwrap();
        store.write_batch(batch).unwrap();
        root
    }

    #[test]
    fn empty_single_and_pair_roots() {
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, B3);
        assert_eq!(apply(&store, None, 0, &[]), EMPTY_SUBTREE);
        assert_eq!(tree.root_hash(0).unwrap(), EMPTY_SUBTREE);
        let r1 = apply(&store, Some(0), 1, &[(k(1), Some(b"a".to_vec()))]);
        assert_eq!(r1, leaf_hash(B3, &k(1), &value_hash(B3, b"a")));
        let r2 = apply(&store, Some(1), 2, &[(k(2), Some(b"b".to_vec()))]);
        let (l1, l2) = (
            leaf_hash(B3, &k(1), &value_hash(B3, b"a")),
            leaf_hash(B3, &k(2), &value_hash(B3, b"b")),
        );
        // Both leaves sit just below their common prefix.
        let mut expected = if k(1).bit(k(1).common_prefix_len(&k(2))) {
            node_hash(B3, &l2, &l1)
        } else {
            node_hash(B3, &l1, &l2)
        };
        for d in (0..k(1).common_prefix_len(&k(2))).rev() {
            expected = if k(1).bit(d) {
                node_hash(B3, &EMPTY_SUBTREE, &expected)
            } else {
                node_hash(B3, &expected, &EMPTY_SUBTREE)
            };
        }
        assert_eq!(r2, expected);
        // Deleting one re-collapses to the other leaf.
        let r3 = apply(&store, Some(2), 3, &[(k(1), None), (k(99), None)]);
        assert_eq!(r3, l2);
        // And deleting the last empties the tree.
        assert_eq!(apply(&store, Some(3), 4, &[(k(2), None)]), EMPTY_SUBTREE);
        assert_eq!(tree.get(&k(2), 3).unwrap(), Some(b"b".to_vec()));
        assert_eq!(tree.get(&k(2), 4).unwrap(), None);
    }

    #[test]
    fn no_op_batch_shares_everything() {
        let store = MemoryNodeStore::new();
        let ups: Vec<_> = (0..100).map(|i| (k(i), Some(vec![1]))).collect();
        let r1 = apply(&store, None, 1, &ups);
        let before = store.node_count();
        let (r2, batch) = SparseMerkleTree::new(&store, B3)
            .apply_batch(Some(1), 2, &[(k(1000), None)])
            .unwrap();
        assert_eq!(r1, r2);
        // Only the root is copied.
        assert_eq!(batch.nodes.len(), 1);
        assert_eq!(batch.stale_nodes.len(), 1);
        store.write_batch(batch).unwrap();
        assert_eq!(store.node_count(), before + 1);
    }

    #[test]
    fn batch_errors() {
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, B3);
        assert!(matches!(
            tree.apply_batch(None, 1, &[(k(1), None), (k(1), Some(vec![]))]),
            Err(SmtError::DuplicateKey { key }) if key == k(1)
        ));
        apply(&store, None, 1, &[(k(1), Some(vec![]))]);
        assert!(matches!(
            tree.apply_batch(Some(1), 1, &[]),
            Err(SmtError::VersionNotIncreasing { base: 1, new: 1 })
        ));
        assert!(matches!(
            tree.apply_batch(Some(5), 6, &[]),
            Err(SmtError::VersionNotFound { version: 5 })
        ));
        // An empty value is a value, not a deletion.
        assert_eq!(tree.get(&k(1), 1).unwrap(), Some(vec![]));
    }

    #[test]
    fn prune_keeps_retained_versions() {
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, B3);
        let mut roots = Vec::new();
        let mut base = None;
        for v in 1..=5u64 {
            let ups: Vec<_> = (0..200)
                .map(|i| {
                    (
                        k(i),
                        if i % 5 == v as u32 {
                            None
                        } else {
                            Some(vec![v as u8])
                        },
                    )
                })
                .collect();
            roots.push(apply(&store, base, v, &ups));
            base = Some(v);
        }
        store.prune(4);
        for v in 1..=3u64 {
            assert!(matches!(
                tree.root_hash(v),
                Err(SmtError::VersionPruned { version, oldest_readable: 4 }) if version == v
            ));
        }
        for v in 4..=5u64 {
            assert_eq!(tree.root_hash(v).unwrap(), roots[v as usize - 1]);
            for i in 0..200u32 {
                let expected = if i % 5 == v as u32 {
                    None
                } else {
                    Some(vec![v as u8])
                };
                assert_eq!(tree.get(&k(i), v).unwrap(), expected);
            }
        }
        // Values of pruned versions are gone: one value per live key at
        // version 4 (plus markers/values written at 5).
        assert!(store.value_count() <= 2 * 200 + 40);
    }

    /// The root by definition, under any hash function.
    fn spec_root(hf: HashFunction, leaves: &[(KeyHash, Hash)], depth: usize) -> Hash {
        match leaves {
            [] => EMPTY_SUBTREE,
            [(k, v)] => leaf_hash(hf, k, v),
            _ => {
                let split = leaves.partition_point(|(k, _)| !k.bit(depth));
                node_hash(
                    hf,
                    &spec_root(hf, &leaves[..split], depth + 1),
                    &spec_root(hf, &leaves[split..], depth + 1),
                )
            }
        }
    }

    proptest::proptest! {
        /// Under each hash function the tree's root is the spec root, its
        /// proofs verify under that function, and never under the other.
        #[test]
        fn roots_and_proofs_per_hash_function(n in 1u32..200, probe in 0u32..400) {
            for hf in HashFunction::ALL.iter().copied() {
                let other = if hf == B3 { HashFunction::Sm3 } else { B3 };
                let store = MemoryNodeStore::new();
                let tree = SparseMerkleTree::new(&store, hf);
                let updates: Vec<_> = (0..n)
                    .map(|i| (KeyHash::of(hf, &i.to_le_bytes()), Some(i.to_be_bytes().to_vec())))
                    .collect();
                let (root, batch) = tree.apply_batch(None, 1, &updates).unwrap();
                store.write_batch(batch).unwrap();
                let mut leaves: Vec<_> = updates
                    .iter()
                    .map(|(k, v)| (*k, value_hash(hf, v.as_deref().unwrap())))
                    .collect();
                leaves.sort();
                proptest::prop_assert_eq!(root, spec_root(hf, &leaves, 0));
                let key = KeyHash::of(hf, &probe.to_le_bytes());
                let (value, proof) = tree.get_with_proof(&key, 1).unwrap();
                proptest::prop_assert!(proof.verify(hf, &root, &key, value.as_deref()).is_ok());
                proptest::prop_assert!(proof.verify(other, &root, &key, value.as_deref()).is_err());
            }
        }
    }
}
