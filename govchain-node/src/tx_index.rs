//! Where committed transactions are: a compact in-memory map from a
//! transaction id's first eight bytes to the height of its block, resolved
//! to (height, index) against the store's per-block id rows
//! ([`BlockStore::block_tx_ids`](govchain_storage::BlockStore::block_tx_ids)).
//!
//! A full map from id to (height, index) costs a 48-byte entry per
//! committed transaction, for the life of the node; this one costs 16, and
//! a lookup reads one index row per candidate height. Two ids may share a
//! prefix, by chance (about `n² / 2⁶⁵` for `n` transactions) or because
//! someone ground ids to collide (about 2³² hashes for one pair): such a
//! prefix keeps every height it was seen at, and the lookup checks each
//! against the full id, so a collision costs a row read, never a wrong
//! answer.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use govchain_core::hash::Hash;
use govchain_core::types::Height;

/// The transaction index of one chain. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct TxLocator {
    /// Prefix → the height of the one committed transaction seen with it.
    single: HashMap<u64, u64>,
    /// Prefixes seen at more than one height, with every such height.
    shared: HashMap<u64, Vec<u64>>,
}

fn prefix(id: &Hash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

impl TxLocator {
    /// Records that `id` was committed at `height` (again is harmless).
    pub(crate) fn insert(&mut self, id: &Hash, height: Height) {
        let p = prefix(id);
        let h = height.get();
        if let Some(heights) = self.shared.get_mut(&p) {
            if !heights.contains(&h) {
                heights.push(h);
            }
            return;
        }
        match self.single.entry(p) {
            Entry::Vacant(e) => {
                e.insert(h);
            }
            Entry::Occupied(e) if *e.get() != h => {
                let first = e.remove();
                self.shared.insert(p, vec![first, h]);
            }
            Entry::Occupied(_) => {}
        }
    }

    /// The heights at which a transaction with `id`'s prefix committed:
    /// `id` is in one of those blocks or nowhere.
    pub(crate) fn candidates(&self, id: &Hash) -> Vec<Height> {
        let p = prefix(id);
        match self.single.get(&p) {
            Some(&h) => vec![Height::new(h)],
            None => self
                .shared
                .get(&p)
                .map(|hs| hs.iter().map(|&h| Height::new(h)).collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_with_prefix(prefix: u64, rest: u8) -> Hash {
        let mut bytes = [rest; 32];
        bytes[..8].copy_from_slice(&prefix.to_le_bytes());
        Hash::from_bytes(bytes)
    }

    #[test]
    fn colliding_prefixes_keep_every_height() {
        let mut index = TxLocator::default();
        let (a, b, c) = (
            id_with_prefix(7, 1),
            id_with_prefix(7, 2),
            id_with_prefix(7, 3),
        );
        let other = id_with_prefix(8, 1);
        index.insert(&a, Height::new(3));
        index.insert(&a, Height::new(3)); // the same commit seen twice
        assert_eq!(index.candidates(&a), vec![Height::new(3)]);
        index.insert(&b, Height::new(5));
        index.insert(&c, Height::new(3));
        index.insert(&b, Height::new(5));
        // Every id with the prefix gets every height it was seen at.
        for id in [a, b, c] {
            assert_eq!(index.candidates(&id), vec![Height::new(3), Height::new(5)]);
        }
        assert!(index.candidates(&other).is_empty());
        index.insert(&other, Height::new(9));
        assert_eq!(index.candidates(&other), vec![Height::new(9)]);
    }
}
