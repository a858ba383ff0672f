//! [`SparseMerkleTree`]: reads, proofs and batch updates over a [`NodeStore`].

use rayon::prelude::*;

use crate::hash::{Domain, Hash};
use crate::lanes::hash_node_pairs;

use super::node::{
    Child, InternalNode, KeyHash, LeafNode, Node, NodeKey, NodePath, Version, EMPTY_SUBTREE,
    KEY_BITS,
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

/// Batches with at least this many updates under a node update its two
/// subtrees in parallel (`rayon::join`); smaller ones run sequentially, which
/// keeps task overhead negligible.
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

/// A leaf looking for its place: the only leaf of the subtree being built.
#[derive(Clone, Copy, Debug)]
struct Carry {
    leaf: LeafNode,
    hash: Hash,
    /// Where the leaf is stored now, if it already exists.
    old: Option<NodeKey>,
}

/// The result of updating one subtree.
#[derive(Clone, Copy, Debug)]
enum Pending {
    Empty,
    /// Unchanged; still stored where it was.
    Kept(Child),
    /// A single leaf, not yet written: the parent decides its position.
    Leaf(Carry),
    /// A new inner node at this position, written at the new version, with
    /// its hash.
    Internal(Hash),
}

/// One level walked on the way down where all updates went to one side.
#[derive(Clone, Copy, Debug)]
struct Step {
    path: NodePath,
    /// Whether the updates went right.
    right: bool,
    /// The result on the other side.
    other: Pending,
    /// The inner node that was here before, if any.
    orig: Option<(InternalNode, Child)>,
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
    /// Levels walked by the active `update` calls (a stack shared by the
    /// nested calls, so walking allocates nothing).
    chain: Vec<Step>,
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
    /// A tree view over `store`.
    pub fn new(store: &'a S) -> Self {
        SparseMerkleTree { store }
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

    fn read_leaf(&self, key: NodeKey, version: Option<Version>) -> Result<LeafNode, S::Error> {
        match self.read(key, version)? {
            Node::Leaf(leaf) => Ok(leaf),
            _ => Err(SmtError::CorruptNode {
                key,
                reason: "expected a leaf",
            }),
        }
    }

    fn read_internal(
        &self,
        key: NodeKey,
        version: Option<Version>,
    ) -> Result<InternalNode, S::Error> {
        match self.read(key, version)? {
            Node::Internal(node) if key.path.depth() < KEY_BITS => Ok(node),
            _ => Err(SmtError::CorruptNode {
                key,
                reason: "expected an inner node above depth 256",
            }),
        }
    }

    /// The root hash of `version`.
    pub fn root_hash(&self, version: Version) -> Result<Hash, S::Error> {
        Ok(self.read_root(version)?.hash())
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

    fn walk(
        &self,
        key: &KeyHash,
        version: Version,
        mut proof: Option<&mut SparseMerkleProof>,
    ) -> Result<Option<Vec<u8>>, S::Error> {
        let mut node = self.read_root(version)?;
        let mut path = NodePath::ROOT;
        loop {
            match node {
                Node::Empty => return Ok(None),
                Node::Leaf(leaf) => {
                    if let Some(p) = proof.as_deref_mut() {
                        p.leaf = Some((leaf.key_hash, leaf.value_hash));
                    }
                    if leaf.key_hash != *key {
                        return Ok(None);
                    }
                    return match self
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
                    };
                }
                Node::Internal(inner) => {
                    let depth = path.depth();
                    if depth >= KEY_BITS {
                        return Err(SmtError::CorruptNode {
                            key: NodeKey { version, path },
                            reason: "inner node at depth 256",
                        });
                    }
                    let bit = key.bit(depth);
                    if let Some(p) = proof.as_deref_mut() {
                        p.siblings.push(inner.child(!bit).hash());
                    }
                    path = path.child(bit);
                    let (child_version, want_leaf) = match *inner.child(bit) {
                        Child::Empty => return Ok(None),
                        Child::Leaf { version, .. } => (version, true),
                        Child::Internal { version, .. } => (version, false),
                    };
                    let key = NodeKey {
                        version: child_version,
                        path,
                    };
                    node = self.read(key, Some(version))?;
                    if want_leaf != matches!(node, Node::Leaf(_)) || matches!(node, Node::Empty) {
                        return Err(SmtError::CorruptNode {
                            key,
                            reason: "node kind differs from its parent's reference",
                        });
                    }
                }
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
    /// Each changed node is hashed once per batch, as soon as its children
    /// are final, and subtrees with many updates are updated in parallel on
    /// the current rayon pool.
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
        let upds = prepare(updates)?;
        let job = Job {
            version: new_version,
            base,
            updates,
        };
        let mut cx = Ctx::default();
        if rayon::current_num_threads() == 1 || upds.len() < PARALLEL_MIN_UPDATES {
            // One context does all the work: size it once. Typical batches
            // write a few nodes per update; unused capacity is never touched.
            cx.cur.nodes.reserve(6 * upds.len());
            cx.cur.stale_nodes.reserve(5 * upds.len());
            cx.cur.values.reserve(upds.len());
        }
        let existing = match base {
            None => Child::Empty,
            Some(b) => match self.read_root(b)? {
                Node::Empty => {
                    cx.cur.stale(new_version, NodeKey::root(b));
                    Child::Empty
                }
                Node::Leaf(leaf) => Child::Leaf {
                    hash: leaf.hash(),
                    version: b,
                },
                Node::Internal(inner) => Child::Internal {
                    hash: inner.hash(),
                    version: b,
                },
            },
        };
        let pending = self.update(&job, &mut cx, existing, None, NodePath::ROOT, &upds)?;
        let root_key = NodeKey::root(new_version);
        let root = match pending {
            Pending::Empty => {
                cx.cur.nodes.push((root_key, Node::Empty));
                EMPTY_SUBTREE
            }
            Pending::Leaf(carry) => {
                if let Some(old) = carry.old {
                    cx.cur.stale(new_version, old);
                }
                cx.cur.nodes.push((root_key, Node::Leaf(carry.leaf)));
                carry.hash
            }
            Pending::Kept(child) => {
                let old_key = NodeKey {
                    version: match child {
                        Child::Leaf { version, .. } | Child::Internal { version, .. } => version,
                        Child::Empty => new_version,
                    },
                    path: NodePath::ROOT,
                };
                let node = self.read(old_key, base)?;
                cx.cur.stale(new_version, old_key);
                cx.cur.nodes.push((root_key, node));
                child.hash()
            }
            Pending::Internal(hash) => hash,
        };
        Ok((root, cx.into_batch(new_version)))
    }

    /// Updates the subtree at `path`, currently `existing`, with `upds` (all
    /// under `path`, sorted). `carry` is a leaf that must end up in the
    /// subtree (only when `existing` is empty).
    ///
    /// Levels where all updates go to one side are walked in a loop and
    /// joined on the way back up, so the recursion only deepens where the
    /// updates really split: stack use stays small even for 256-deep paths.
    fn update(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        existing: Child,
        carry: Option<Carry>,
        path: NodePath,
        upds: &[Upd],
    ) -> Result<Pending, S::Error> {
        let (mut existing, mut carry, mut path) = (existing, carry, path);
        let base = cx.chain.len();
        let bottom = loop {
            if upds.is_empty() {
                break match (existing, carry) {
                    (Child::Empty, Some(c)) => Pending::Leaf(c),
                    (Child::Empty, None) => Pending::Empty,
                    (child, _) => Pending::Kept(child),
                };
            }
            let depth = path.depth();
            match existing {
                Child::Leaf { version, hash } => {
                    let key = NodeKey { version, path };
                    let leaf = self.read_leaf(key, job.base)?;
                    carry = match upds.binary_search_by(|u| u.key.cmp(&leaf.key_hash)) {
                        Ok(i) => {
                            // Overwritten or deleted: the old leaf and value go.
                            cx.cur.stale(job.version, key);
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
                        Err(_) => Some(Carry {
                            leaf,
                            hash,
                            old: Some(key),
                        }),
                    };
                    existing = Child::Empty;
                }
                Child::Internal { version, .. } => {
                    let key = NodeKey { version, path };
                    let node = self.read_internal(key, job.base)?;
                    let split = upds.partition_point(|u| !u.key.bit(depth));
                    let orig = Some((node, existing));
                    if split == 0 || split == upds.len() {
                        let right = split == 0;
                        let other = match *node.child(!right) {
                            Child::Empty => Pending::Empty,
                            child => Pending::Kept(child),
                        };
                        cx.chain.push(Step {
                            path,
                            right,
                            other,
                            orig,
                        });
                        existing = *node.child(right);
                        path = path.child(right);
                        continue;
                    }
                    let (l, r) = self.split(
                        job,
                        cx,
                        path,
                        upds,
                        split,
                        (node.left, None),
                        (node.right, None),
                    )?;
                    break self.combine(job, cx, l, r, orig, path)?;
                }
                Child::Empty => {
                    let mut puts = upds.iter().filter(|u| u.put.is_some());
                    let first = puts.next();
                    let second = puts.next();
                    match (carry, first, second) {
                        (None, None, _) => break Pending::Empty,
                        (Some(c), None, _) => break Pending::Leaf(c),
                        (None, Some(u), None) => break Pending::Leaf(new_leaf(job, cx, u)),
                        _ => {}
                    }
                    if depth >= KEY_BITS {
                        // Two leaves with all 256 bits equal: only a repeated
                        // key can get here, and `prepare` rejects those.
                        return Err(SmtError::DuplicateKey {
                            key: first.map(|u| u.key).unwrap_or_default(),
                        });
                    }
                    let split = upds.partition_point(|u| !u.key.bit(depth));
                    let carry_right = carry.map(|c| c.leaf.key_hash.bit(depth));
                    if split == 0 || split == upds.len() {
                        // All updates on one side; a carried leaf on the
                        // other side stays there alone.
                        let right = split == 0;
                        let other = match carry {
                            Some(c) if carry_right != Some(right) => {
                                carry = None;
                                Pending::Leaf(c)
                            }
                            _ => Pending::Empty,
                        };
                        cx.chain.push(Step {
                            path,
                            right,
                            other,
                            orig: None,
                        });
                        path = path.child(right);
                        continue;
                    }
                    let (cl, cr) = match carry_right {
                        Some(true) => (None, carry),
                        _ => (carry, None),
                    };
                    let (l, r) = self.split(
                        job,
                        cx,
                        path,
                        upds,
                        split,
                        (Child::Empty, cl),
                        (Child::Empty, cr),
                    )?;
                    break self.combine(job, cx, l, r, None, path)?;
                }
            }
            // Only the leaf case gets here: go round with `carry`.
        };
        let mut pending = bottom;
        while cx.chain.len() > base {
            let Some(step) = cx.chain.pop() else {
                break;
            };
            let (l, r) = if step.right {
                (step.other, pending)
            } else {
                (pending, step.other)
            };
            pending = self.combine(job, cx, l, r, step.orig, step.path)?;
        }
        Ok(pending)
    }

    /// Updates both children of `path`, in parallel when worth it.
    #[allow(clippy::too_many_arguments)]
    fn split(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        path: NodePath,
        upds: &[Upd],
        split: usize,
        left: (Child, Option<Carry>),
        right: (Child, Option<Carry>),
    ) -> Result<(Pending, Pending), S::Error> {
        let (lu, ru) = upds.split_at(split.min(upds.len()));
        let (lp, rp) = (path.child(false), path.child(true));
        if upds.len() >= PARALLEL_MIN_UPDATES
            && !lu.is_empty()
            && !ru.is_empty()
            && rayon::current_num_threads() > 1
        {
            let (a, b) = rayon::join(
                || self.subtask(job, left, lp, lu),
                || self.subtask(job, right, rp, ru),
            );
            let (l, lcx) = a?;
            let (r, rcx) = b?;
            cx.absorb(lcx);
            cx.absorb(rcx);
            Ok((l, r))
        } else {
            let l = self.update(job, cx, left.0, left.1, lp, lu)?;
            let r = self.update(job, cx, right.0, right.1, rp, ru)?;
            Ok((l, r))
        }
    }

    /// Updates a subtree in its own context and hashes its new nodes, so the
    /// result can be handed to another thread's context.
    fn subtask(
        &self,
        job: &Job<'_>,
        (existing, carry): (Child, Option<Carry>),
        path: NodePath,
        upds: &[Upd],
    ) -> Result<(Pending, Ctx), S::Error> {
        let mut cx = Ctx::default();
        let pending = self.update(job, &mut cx, existing, carry, path, upds)?;
        Ok((pending, cx))
    }

    /// Joins two updated children into the subtree at `path`, collapsing a
    /// lone leaf upwards (Jellyfish collapsing). `orig` is the inner node
    /// that was here before, if any.
    fn combine(
        &self,
        job: &Job<'_>,
        cx: &mut Ctx,
        l: Pending,
        r: Pending,
        orig: Option<(InternalNode, Child)>,
        path: NodePath,
    ) -> Result<Pending, S::Error> {
        let orig_key = orig.and_then(|(_, child)| match child {
            Child::Internal { version, .. } => Some(NodeKey { version, path }),
            _ => None,
        });
        let result = match (l, r) {
            (Pending::Empty, Pending::Empty) => Pending::Empty,
            (Pending::Empty, Pending::Leaf(c)) | (Pending::Leaf(c), Pending::Empty) => {
                Pending::Leaf(c)
            }
            (Pending::Empty, Pending::Kept(Child::Leaf { hash, version }))
            | (Pending::Kept(Child::Leaf { hash, version }), Pending::Empty) => {
                // The sibling emptied: the lone leaf moves up.
                let key = NodeKey {
                    version,
                    path: path.child(matches!(l, Pending::Empty)),
                };
                let leaf = self.read_leaf(key, job.base)?;
                Pending::Leaf(Carry {
                    leaf,
                    hash,
                    old: Some(key),
                })
            }
            (l, r) => {
                let left = cx.place(job.version, l, path.child(false));
                let right = cx.place(job.version, r, path.child(true));
                if let Some((node, child)) = orig {
                    if left == node.left && right == node.right {
                        return Ok(Pending::Kept(child));
                    }
                }
                // Children are final before their parent (post-order), so
                // the node is hashed and written at once.
                let node = InternalNode { left, right };
                let hash = node.hash();
                cx.cur.nodes.push((
                    NodeKey {
                        version: job.version,
                        path,
                    },
                    Node::Internal(node),
                ));
                Pending::Internal(hash)
            }
        };
        if let Some(key) = orig_key {
            cx.cur.stale(job.version, key);
        }
        Ok(result)
    }
}

/// Turns a put into a new leaf, recording its value.
fn new_leaf(job: &Job<'_>, cx: &mut Ctx, u: &Upd) -> Carry {
    let (value_hash, hash) = u.put.unwrap_or((EMPTY_SUBTREE, EMPTY_SUBTREE));
    let value = job.updates.get(u.idx).and_then(|(_, v)| v.clone());
    cx.cur.values.push((u.key, job.version, value));
    Carry {
        leaf: LeafNode {
            key_hash: u.key,
            value_hash,
            value_version: job.version,
        },
        hash,
        old: None,
    }
}

/// Hashes values and leaves (leaves eight at a time with
/// [`hash_node_pairs`]), sorts by key and rejects repeated keys.
fn prepare<E: std::error::Error + 'static>(
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
                pairs.push([*u.key.hash(), super::node::value_hash(value)]);
            }
        }
        let mut leaves = vec![EMPTY_SUBTREE; pairs.len()];
        hash_node_pairs(Domain::SmtLeaf, &pairs, &mut leaves);
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
    /// Decides where an updated child lives, writing moved or new leaves.
    fn place(&mut self, version: Version, p: Pending, path: NodePath) -> Child {
        match p {
            Pending::Empty => Child::Empty,
            Pending::Kept(child) => child,
            Pending::Leaf(c) => {
                if let Some(old) = c.old {
                    if old.path == path {
                        return Child::Leaf {
                            hash: c.hash,
                            version: old.version,
                        };
                    }
                    self.cur.stale(version, old);
                }
                self.cur
                    .nodes
                    .push((NodeKey { version, path }, Node::Leaf(c.leaf)));
                Child::Leaf {
                    hash: c.hash,
                    version,
                }
            }
            Pending::Internal(hash) => Child::Internal { hash, version },
        }
    }

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

    fn k(i: u32) -> KeyHash {
        KeyHash::of(&i.to_le_bytes())
    }

    fn apply(
        store: &MemoryNodeStore,
        base: Option<Version>,
        version: Version,
        updates: &[(KeyHash, Option<Vec<u8>>)],
    ) -> Hash {
        let (root, batch) = SparseMerkleTree::new(store)
            .apply_batch(base, version, updates)
            .unwrap();
        store.write_batch(batch).unwrap();
        root
    }

    #[test]
    fn empty_single_and_pair_roots() {
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store);
        assert_eq!(apply(&store, None, 0, &[]), EMPTY_SUBTREE);
        assert_eq!(tree.root_hash(0).unwrap(), EMPTY_SUBTREE);
        let r1 = apply(&store, Some(0), 1, &[(k(1), Some(b"a".to_vec()))]);
        assert_eq!(r1, leaf_hash(&k(1), &value_hash(b"a")));
        let r2 = apply(&store, Some(1), 2, &[(k(2), Some(b"b".to_vec()))]);
        let (l1, l2) = (
            leaf_hash(&k(1), &value_hash(b"a")),
            leaf_hash(&k(2), &value_hash(b"b")),
        );
        // Both leaves sit just below their common prefix.
        let mut expected = if k(1).bit(k(1).common_prefix_len(&k(2))) {
            node_hash(&l2, &l1)
        } else {
            node_hash(&l1, &l2)
        };
        for d in (0..k(1).common_prefix_len(&k(2))).rev() {
            expected = if k(1).bit(d) {
                node_hash(&EMPTY_SUBTREE, &expected)
            } else {
                node_hash(&expected, &EMPTY_SUBTREE)
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
        let (r2, batch) = SparseMerkleTree::new(&store)
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
        let tree = SparseMerkleTree::new(&store);
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
        let tree = SparseMerkleTree::new(&store);
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
}
