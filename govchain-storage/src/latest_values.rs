//! The latest state version's values, kept in memory for the keys that are
//! read, and kept current by every commit.
//!
//! A node reads the latest committed state far more than any other version:
//! every admitted transaction's sender nonce, `check_tx`, block validation
//! and execution. In the durable index a value read is a range lookup for
//! the newest row at or below the version, and when that row is older than
//! the version it is also checked against the state tree (verified reads,
//! see [`DurableStore`](crate::DurableStore)). A key that a block does not
//! write keeps its value, so an answer for version *v* stays the answer for
//! *v + 1* unless the batch of *v + 1* writes the key — and the batch names
//! every key it writes. This cache exploits exactly that:
//!
//! - it holds answers *as of one version*, the store's latest state version;
//! - a read at that version that misses goes to the index (verified as
//!   always) and the answer is remembered, unless a commit moved the cache
//!   on meanwhile;
//! - a commit moves the cache to the batch's version, replacing the cached
//!   answers of the keys the batch writes with the batch's values, in one
//!   step under the cache's lock, after the index commit succeeded.
//!
//! Reads at any other version bypass it. Entries come only from verified
//! index reads and from batches this process committed, so the cache adds
//! nothing a reader must trust beyond the process's own memory. It is
//! bounded: when full it is emptied (no recency bookkeeping on the read
//! path; the hot keys come straight back).

use std::collections::HashMap;

use govchain_core::smt::{KeyHash, TreeUpdateBatch, Version};
use parking_lot::Mutex;

/// See the [module docs](self).
pub(crate) struct LatestValues {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    /// The version every cached answer is as of (`None`: no state yet, or
    /// the cache is disabled until the next commit).
    version: Option<Version>,
    answers: HashMap<KeyHash, Option<Vec<u8>>>,
}

impl LatestValues {
    /// An empty cache of at most `capacity` answers (0: disabled), as of
    /// `version`.
    pub(crate) fn new(capacity: usize, version: Option<Version>) -> Self {
        LatestValues {
            inner: Mutex::new(Inner {
                version,
                answers: HashMap::new(),
            }),
            capacity,
        }
    }

    /// The value of `key_hash` as of `version` (`Some(None)`: absent), if
    /// `version` is the cache's version and the key's answer is cached.
    pub(crate) fn get(&self, key_hash: &KeyHash, version: Version) -> Option<Option<Vec<u8>>> {
        let inner = self.inner.lock();
        if inner.version != Some(version) {
            return None;
        }
        inner.answers.get(key_hash).cloned()
    }

    /// Remembers `value` as `key_hash`'s answer as of `version`, read from
    /// the index; ignored unless the cache is still at `version`.
    pub(crate) fn fill(&self, key_hash: &KeyHash, version: Version, value: &Option<Vec<u8>>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.version != Some(version) {
            return;
        }
        if inner.answers.len() >= self.capacity {
            inner.answers.clear();
        }
        inner.answers.insert(*key_hash, value.clone());
    }

    /// Moves the cache to `batch.version` once `batch` is committed: the
    /// cached keys it writes take its values, the others keep theirs.
    pub(crate) fn advance(&self, batch: &TreeUpdateBatch) {
        let mut inner = self.inner.lock();
        for (key_hash, _, value) in &batch.values {
            if let Some(answer) = inner.answers.get_mut(key_hash) {
                answer.clone_from(value);
            }
        }
        inner.version = Some(batch.version);
    }

    /// Forgets every answer and answers for `version` from now on.
    pub(crate) fn reset(&self, version: Option<Version>) {
        let mut inner = self.inner.lock();
        inner.answers.clear();
        inner.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyHash {
        KeyHash::from_hash(govchain_core::hash::Hash::from_bytes([n; 32]))
    }

    fn batch(version: Version, values: &[(u8, Option<&[u8]>)]) -> TreeUpdateBatch {
        let mut batch = TreeUpdateBatch::default();
        batch.version = version;
        batch.values = values
            .iter()
            .map(|(k, v)| (key(*k), version, v.map(<[u8]>::to_vec)))
            .collect();
        batch
    }

    #[test]
    fn answers_only_for_its_version_and_follows_commits() {
        let cache = LatestValues::new(16, Some(5));
        cache.fill(&key(1), 5, &Some(b"a".to_vec()));
        cache.fill(&key(2), 5, &None);
        cache.fill(&key(3), 4, &Some(b"old".to_vec())); // another version: ignored
        assert_eq!(cache.get(&key(1), 5), Some(Some(b"a".to_vec())));
        assert_eq!(cache.get(&key(2), 5), Some(None));
        assert_eq!(cache.get(&key(3), 5), None);
        assert_eq!(cache.get(&key(1), 4), None, "another version bypasses");

        // Version 6 writes key 1 (cached), deletes nothing cached, and
        // writes key 9 (not cached: stays uncached).
        cache.advance(&batch(6, &[(1, Some(b"b")), (9, Some(b"z"))]));
        assert_eq!(cache.get(&key(1), 6), Some(Some(b"b".to_vec())));
        assert_eq!(
            cache.get(&key(2), 6),
            Some(None),
            "unwritten keys carry over"
        );
        assert_eq!(cache.get(&key(9), 6), None);
        assert_eq!(cache.get(&key(1), 5), None);

        // A deletion replaces a cached value with absence.
        cache.advance(&batch(7, &[(1, None)]));
        assert_eq!(cache.get(&key(1), 7), Some(None));
        // A fill made for a version the cache has left is dropped.
        cache.fill(&key(4), 6, &Some(b"late".to_vec()));
        assert_eq!(cache.get(&key(4), 7), None);
    }

    #[test]
    fn bounded_and_can_be_disabled() {
        let cache = LatestValues::new(2, Some(1));
        for n in 0..3 {
            cache.fill(&key(n), 1, &Some(vec![n]));
        }
        let held = (0..3).filter(|n| cache.get(&key(*n), 1).is_some()).count();
        assert!(held <= 2, "{held} answers held over a capacity of 2");
        assert_eq!(cache.get(&key(2), 1), Some(Some(vec![2])));

        let off = LatestValues::new(0, Some(1));
        off.fill(&key(1), 1, &None);
        assert_eq!(off.get(&key(1), 1), None);

        cache.reset(Some(9));
        assert_eq!(cache.get(&key(2), 1), None);
        assert_eq!(cache.get(&key(2), 9), None);
    }
}
