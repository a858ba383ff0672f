//! Coalescing consecutive tree updates into one batch: see
//! [`CoalescedUpdates`].

use std::collections::HashMap;

use super::node::{KeyHash, Node, NodeKey, NodePath, Version};
use super::store::{NodeStore, StaleNodeIndex, StaleValueIndex, TreeUpdateBatch};

/// Why [`CoalescedUpdates::push`] refused a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoalesceError {
    /// Batches must follow one another: the first at the first version,
    /// each later one at the version after the last.
    #[error("batch version {got}, expected {expected}")]
    UnexpectedVersion {
        /// The version the next batch must have.
        expected: Version,
        /// The batch's version.
        got: Version,
    },
    /// A node or value in the batch is not at the batch's version.
    #[error("entry at version {found} in a batch for version {version}")]
    ForeignVersion {
        /// The batch's version.
        version: Version,
        /// The version of the offending entry.
        found: Version,
    },
}

/// Why a read through [`CoalescedView`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoalescedReadError<E: std::error::Error + 'static> {
    /// The store below failed.
    #[error(transparent)]
    Base(E),
    /// The entry was written at a collected version and replaced by a later
    /// one: only the latest collected version can be read.
    #[error("version {version} was replaced by a later collected version")]
    Replaced {
        /// The version asked for.
        version: Version,
    },
}

/// Coalescing consecutive tree updates into one batch.
///
/// A node catching up on a long chain applies each block's update in turn,
/// and every update rewrites the pages on the paths it touches. When the
/// intermediate versions need not be kept (they are older than the state
/// the node retains), most of those writes are wasted: the root page is
/// rewritten by every version, and a key updated in ten consecutive blocks
/// writes its leaf page ten times, nine of which a later version replaces
/// at once. [`CoalescedUpdates`] collects the batches of versions
/// `first..=last` and hands back one [`TreeUpdateBatch`] holding only what
/// version `last` still uses: every page and value written in the range
/// that the range itself did not replace, plus the stale index of the
/// older pages and values the range replaced. Geth's in-memory trie cache
/// (flushing dirty nodes only every so often while importing blocks) and
/// Aptos's chunked state-sync commits rest on the same observation.
///
/// While batches are collected, [`CoalescedUpdates::view`] layers them over
/// the store holding version `first - 1`, so the next version can be
/// computed and the state read before anything is written.
///
/// Writing the coalesced batch makes versions `first..last` unreadable:
/// their roots and the pages only they used are never stored. A store
/// writes it as version `last` and treats the versions below `last` as
/// pruned (`govchain-storage`'s `BlockStore::append_coalesced`).
///
/// Memory holds one page per path and one value per key written in the
/// range, not one per version.
#[derive(Debug, Clone)]
pub struct CoalescedUpdates {
    /// The first version of the batch being collected.
    first: Version,
    /// The latest version the store below holds (`None`: nothing): `first -
    /// 1`, or less while batches taken with [`take_batch`](Self::take_batch)
    /// are being written (their entries stay here until
    /// [`forget_below`](Self::forget_below)).
    base: Option<Version>,
    last: Option<Version>,
    nodes: HashMap<NodePath, (Version, Node)>,
    values: HashMap<KeyHash, (Version, Option<Vec<u8>>)>,
    stale_nodes: Vec<StaleNodeIndex>,
    stale_values: Vec<StaleValueIndex>,
}

impl CoalescedUpdates {
    /// An empty collection whose first batch will be version `first`
    /// (the store below holds `first - 1`).
    pub fn new(first: Version) -> Self {
        CoalescedUpdates {
            first,
            base: first.checked_sub(1),
            last: None,
            nodes: HashMap::new(),
            values: HashMap::new(),
            stale_nodes: Vec::new(),
            stale_values: Vec::new(),
        }
    }

    /// The first version of the range.
    pub fn first_version(&self) -> Version {
        self.first
    }

    /// The latest version pushed, if any.
    pub fn last_version(&self) -> Option<Version> {
        self.last
    }

    /// The version the next batch must have.
    pub fn next_version(&self) -> Version {
        self.last.map_or(self.first, |v| v.saturating_add(1))
    }

    /// Pages currently held (the ones the latest version uses).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds the batch of the next version. A refused batch changes nothing.
    pub fn push(&mut self, batch: TreeUpdateBatch) -> Result<(), CoalesceError> {
        let expected = self.next_version();
        if batch.version != expected {
            return Err(CoalesceError::UnexpectedVersion {
                expected,
                got: batch.version,
            });
        }
        if let Some(found) = batch.entry_versions().find(|v| *v != batch.version) {
            return Err(CoalesceError::ForeignVersion {
                version: batch.version,
                found,
            });
        }
        let version = batch.version;
        for (key, node) in batch.nodes {
            self.nodes.insert(key.path, (key.version, node));
        }
        for stale in batch.stale_nodes {
            // A replaced page leaves the collection (if this batch rewrote
            // its path, the entry is the new page and stays).
            if self
                .nodes
                .get(&stale.node_key.path)
                .is_some_and(|(v, _)| *v == stale.node_key.version)
            {
                self.nodes.remove(&stale.node_key.path);
            }
            // One written before the batch being collected (stored, or in a
            // taken batch being written) is pruned later; one written
            // inside it is never stored.
            if stale.node_key.version < self.first {
                self.stale_nodes.push(stale);
            }
        }
        for (key_hash, v, value) in batch.values {
            self.values.insert(key_hash, (v, value));
        }
        // A value written inside the range is stale only once a later
        // entry of its key replaced it in `values`: it is never stored. A
        // deletion marker is stale from its own version on (it only hides
        // an older value) and stays prunable while it is the key's entry.
        let values = &self.values;
        let first = self.first;
        self.stale_values.extend(
            batch.stale_values.into_iter().filter(|s| {
                s.version < first || values.get(&s.key_hash) == Some(&(s.version, None))
            }),
        );
        self.last = Some(version);
        Ok(())
    }

    /// The coalesced batch: version `last`, holding every page and value
    /// written in the range that version `last` still uses (in key order)
    /// and the stale index of the older entries the range replaced. `None`
    /// if nothing was pushed.
    pub fn into_batch(mut self) -> Option<TreeUpdateBatch> {
        self.take_batch()
    }

    /// The coalesced batch of the versions pushed since the last call (as
    /// [`into_batch`](Self::into_batch)), after which collecting goes on
    /// from the next version: a batch can be written while the next one is
    /// collected. The taken entries stay readable through
    /// [`view`](Self::view) until [`forget_below`](Self::forget_below) says
    /// the store holds them. `None` if nothing was pushed since.
    pub fn take_batch(&mut self) -> Option<TreeUpdateBatch> {
        let version = self.last.filter(|l| *l >= self.first)?;
        let first = self.first;
        let mut nodes: Vec<(NodeKey, Node)> = self
            .nodes
            .iter()
            .filter(|(_, (v, _))| *v >= first)
            .map(|(path, (version, node))| {
                (
                    NodeKey {
                        version: *version,
                        path: *path,
                    },
                    node.clone(),
                )
            })
            .collect();
        nodes.sort_unstable_by_key(|a| a.0);
        let mut values: Vec<(KeyHash, Version, Option<Vec<u8>>)> = self
            .values
            .iter()
            .filter(|(_, (v, _))| *v >= first)
            .map(|(k, (v, value))| (*k, *v, value.clone()))
            .collect();
        values.sort_unstable_by_key(|a| (a.1, a.0));
        let kept = |s: &StaleValueIndex| {
            s.version < first
                || values
                    .binary_search_by(|(k, v, _)| (*v, *k).cmp(&(s.version, s.key_hash)))
                    .is_ok()
        };
        let stale_values = std::mem::take(&mut self.stale_values)
            .into_iter()
            .filter(kept)
            .collect();
        self.first = version.saturating_add(1);
        Some(TreeUpdateBatch {
            version,
            nodes,
            values,
            stale_nodes: std::mem::take(&mut self.stale_nodes),
            stale_values,
        })
    }

    /// Tells the collection that the store below now holds every version
    /// below `version` (the taken batches up to `version - 1` are written):
    /// their entries are dropped, and reads of them go to the store.
    pub fn forget_below(&mut self, version: Version) {
        let keep = version.min(self.first);
        self.nodes.retain(|_, (v, _)| *v >= keep);
        self.values.retain(|_, (v, _)| *v >= keep);
        if let Some(below) = keep.checked_sub(1) {
            self.base = Some(self.base.map_or(below, |b| b.max(below)));
        }
    }

    /// The state so far: the collected versions layered over `base`, which
    /// holds the versions before them (`first - 1` and older, or fewer
    /// while taken batches are being written: see
    /// [`forget_below`](Self::forget_below)). Reads at the latest collected
    /// version and at versions `base` holds are answered; an entry of an
    /// older collected version that a later one replaced is
    /// [`CoalescedReadError::Replaced`].
    pub fn view<'a, S: NodeStore>(&'a self, base: &'a S) -> CoalescedView<'a, S> {
        CoalescedView {
            updates: self,
            base,
        }
    }
}

/// A [`NodeStore`] reading [`CoalescedUpdates`] over the store below them
/// (see [`CoalescedUpdates::view`]).
#[derive(Debug, Clone, Copy)]
pub struct CoalescedView<'a, S> {
    updates: &'a CoalescedUpdates,
    base: &'a S,
}

impl<S: NodeStore> NodeStore for CoalescedView<'_, S> {
    type Error = CoalescedReadError<S::Error>;

    fn get_node(&self, key: &NodeKey) -> Result<Option<Node>, Self::Error> {
        match self.updates.nodes.get(&key.path) {
            Some((v, node)) if *v == key.version => Ok(Some(node.clone())),
            _ if self.updates.base.is_some_and(|b| key.version <= b) => {
                self.base.get_node(key).map_err(CoalescedReadError::Base)
            }
            _ if self.updates.last.is_some_and(|l| key.version <= l) => {
                Err(CoalescedReadError::Replaced {
                    version: key.version,
                })
            }
            // Above the collected range: never written.
            _ => Ok(None),
        }
    }

    fn get_value(
        &self,
        key_hash: &KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        let base = self.updates.base;
        if let Some((v, value)) = self.updates.values.get(key_hash) {
            if *v <= version {
                return Ok(value.clone());
            }
            if base.is_none_or(|b| version > b) {
                // Replaced after `version`: only the latest entry is kept.
                return Err(CoalescedReadError::Replaced { version });
            }
        }
        match base {
            Some(b) => self
                .base
                .get_value(key_hash, version.min(b))
                .map_err(CoalescedReadError::Base),
            None => Ok(None),
        }
    }

    fn oldest_readable_version(&self) -> Result<Option<Version>, Self::Error> {
        self.base
            .oldest_readable_version()
            .map_err(CoalescedReadError::Base)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::hash::HashFunction;
    use crate::smt::{MemoryNodeStore, SparseMerkleTree};

    const HF: HashFunction = HashFunction::Blake3;

    fn key(i: u16) -> KeyHash {
        KeyHash::of(HF, &i.to_le_bytes())
    }

    type Updates = Vec<(KeyHash, Option<Vec<u8>>)>;

    /// Turns `(key index, value or delete)` pairs into one version's sorted,
    /// duplicate-free updates.
    fn updates(raw: &[(u16, Option<u8>)]) -> Updates {
        let mut m = std::collections::BTreeMap::new();
        for (k, v) in raw {
            m.insert(key(*k), v.map(|b| vec![b; 1 + usize::from(b % 7)]));
        }
        m.into_iter().collect()
    }

    /// Applies `versions` (1, 2, …) to two stores with the same base
    /// (`base` versions written one by one to both): one by one to the
    /// first, then pruned below the last; coalesced from `first` on to the
    /// second. Checks every root, every key's value and the stores' sizes.
    fn check(base: &[Updates], range: &[Updates], keys: u16) {
        check_split(base, range, keys, None);
    }

    /// [`check`], and with `split = Some((t, w))` the range is written in
    /// two batches as a node pipelines them: the first taken after range
    /// version `t` and written (then forgotten) only after version `w`,
    /// while the second goes on being collected over it.
    fn check_split(base: &[Updates], range: &[Updates], keys: u16, split: Option<(usize, usize)>) {
        let seq = MemoryNodeStore::new();
        let co = MemoryNodeStore::new();
        let mut latest = None;
        for (i, u) in base.iter().enumerate() {
            let v = i as Version;
            for s in [&seq, &co] {
                let (_, b) = SparseMerkleTree::new(s, HF)
                    .apply_batch(latest, v, u)
                    .unwrap();
                s.write_batch(b).unwrap();
            }
            latest = Some(v);
        }
        let start = base.len() as Version;
        let mut first = start;
        let mut coalesced = CoalescedUpdates::new(first);
        let mut taken: Option<(Version, TreeUpdateBatch)> = None;
        for (i, u) in range.iter().enumerate() {
            let v = start + i as Version;
            let (root, b) = SparseMerkleTree::new(&seq, HF)
                .apply_batch(latest, v, u)
                .unwrap();
            seq.write_batch(b).unwrap();
            let view = coalesced.view(&co);
            let (co_root, co_batch) = SparseMerkleTree::new(&view, HF)
                .apply_batch(latest, v, u)
                .unwrap();
            assert_eq!(co_root, root, "root of version {v}");
            coalesced.push(co_batch).unwrap();
            if let Some((t, w)) = split {
                if i == t {
                    taken = Some((first, coalesced.take_batch().unwrap()));
                    first = v + 1;
                }
                if i == w {
                    if let Some((f, b)) = taken.take() {
                        let written = b.version;
                        co.write_coalesced(f, b).unwrap();
                        coalesced.forget_below(written + 1);
                    }
                }
            }
            // Every key reads the same through the view as in the store.
            let view = coalesced.view(&co);
            for k in 0..keys {
                let want = SparseMerkleTree::new(&seq, HF).get(&key(k), v).unwrap();
                assert_eq!(view.get_value(&key(k), v).unwrap(), want, "key {k} at {v}");
                let got = SparseMerkleTree::new(&view, HF).get(&key(k), v).unwrap();
                assert_eq!(got, want, "key {k} at {v} through the tree");
            }
            latest = Some(v);
        }
        let Some(last) = latest.filter(|_| !range.is_empty()) else {
            assert!(coalesced.into_batch().is_none());
            return;
        };
        seq.prune(last);
        if let Some((f, b)) = taken.take() {
            let written = b.version;
            co.write_coalesced(f, b).unwrap();
            coalesced.forget_below(written + 1);
        }
        if let Some(batch) = coalesced.into_batch() {
            assert_eq!(batch.version, last);
            co.write_coalesced(first, batch).unwrap();
        }
        assert_eq!(
            SparseMerkleTree::new(&co, HF).root_hash(last).unwrap(),
            SparseMerkleTree::new(&seq, HF).root_hash(last).unwrap()
        );
        for k in 0..keys {
            assert_eq!(
                SparseMerkleTree::new(&co, HF).get(&key(k), last).unwrap(),
                SparseMerkleTree::new(&seq, HF).get(&key(k), last).unwrap(),
                "key {k} after the coalesced write"
            );
        }
        // Nothing the sequential store dropped is kept, nothing it kept is
        // missing.
        assert_eq!(co.node_count(), seq.node_count(), "pages held");
        assert_eq!(co.value_count(), seq.value_count(), "value entries held");
    }

    #[test]
    fn overwrites_deletes_and_splits_coalesce_to_the_sequential_state() {
        let base = vec![updates(&[(1, Some(1)), (2, Some(2)), (3, Some(3))])];
        let range = vec![
            updates(&[(1, Some(10)), (4, Some(4))]),
            updates(&[(1, Some(11)), (2, None)]),
            updates(&[(2, Some(20)), (5, Some(5)), (3, None)]),
            updates(&[(5, None), (6, Some(6))]),
        ];
        check(&base, &range, 8);
    }

    #[test]
    fn refuses_batches_out_of_order_and_foreign_entries() {
        let store = MemoryNodeStore::new();
        let u = updates(&[(1, Some(1))]);
        let (_, b0) = SparseMerkleTree::new(&store, HF)
            .apply_batch(None, 0, &u)
            .unwrap();
        let mut c = CoalescedUpdates::new(1);
        assert_eq!(
            c.push(b0.clone()),
            Err(CoalesceError::UnexpectedVersion {
                expected: 1,
                got: 0
            })
        );
        let mut foreign = b0;
        foreign.version = 1;
        assert_eq!(
            c.push(foreign),
            Err(CoalesceError::ForeignVersion {
                version: 1,
                found: 0
            })
        );
        assert_eq!(c.last_version(), None);
        assert!(c.into_batch().is_none());
    }

    #[test]
    fn replaced_versions_are_refused_through_the_view() {
        let store = MemoryNodeStore::new();
        let mut c = CoalescedUpdates::new(0);
        let mut latest = None;
        for v in 0..3 {
            let view = c.view(&store);
            let (_, b) = SparseMerkleTree::new(&view, HF)
                .apply_batch(latest, v, &updates(&[(1, Some(v as u8))]))
                .unwrap();
            c.push(b).unwrap();
            latest = Some(v);
        }
        let view = c.view(&store);
        assert!(matches!(
            view.get_node(&NodeKey::root(0)),
            Err(CoalescedReadError::Replaced { version: 0 })
        ));
        assert!(matches!(
            view.get_value(&key(1), 1),
            Err(CoalescedReadError::Replaced { version: 1 })
        ));
        assert_eq!(view.get_value(&key(1), 2).unwrap(), Some(vec![2; 3]));
        assert!(view.get_node(&NodeKey::root(2)).unwrap().is_some());
        assert_eq!(view.get_node(&NodeKey::root(9)).unwrap(), None);
    }

    /// Runs of `versions` versions of up to 24 updates (insert, overwrite
    /// or delete) of 48 keys.
    fn runs(
        versions: std::ops::Range<usize>,
    ) -> impl proptest::strategy::Strategy<Value = Vec<Vec<(u16, Option<u8>)>>> {
        proptest::collection::vec(
            proptest::collection::vec((0u16..48, proptest::option::of(0u8..4)), 0..24),
            versions,
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any run of versions coalesces to exactly the state of writing
        /// them one by one and pruning below the last: the same roots on
        /// the way, the same values, pages and value entries at the end.
        #[test]
        fn coalescing_equals_writing_each_version_and_pruning(
            base in runs(1..4),
            range in runs(0..8),
        ) {
            let base: Vec<Updates> = base.iter().map(|r| updates(r)).collect();
            let range: Vec<Updates> = range.iter().map(|r| updates(r)).collect();
            check(&base, &range, 48);
        }

        /// The same when the range is written as two batches, the first
        /// still unwritten while the second is collected over it (reads
        /// through the view see both), as a node pipelines its writes.
        #[test]
        fn coalescing_in_two_pipelined_batches_equals_writing_each_version(
            base in runs(1..4),
            range in runs(1..8),
            t in 0usize..8,
            w in 0usize..8,
        ) {
            let base: Vec<Updates> = base.iter().map(|r| updates(r)).collect();
            let range: Vec<Updates> = range.iter().map(|r| updates(r)).collect();
            let t = t % range.len();
            let w = t + w % (range.len() - t);
            check_split(&base, &range, 48, Some((t, w)));
        }
    }
}
