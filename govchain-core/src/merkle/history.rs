//! The chain-history log: an append-only RFC 9162 Merkle tree over block
//! hashes, with roots at past sizes (§2.1.1), inclusion proofs (§2.1.3.1) and
//! consistency proofs (§2.1.4.1).

use super::proof::{ConsistencyProof, InclusionProof, TreeHead};
use super::{empty_tree_hash, split_point, MerkleError};
use crate::hash::{Domain, Hash, HashFunction};

/// The leaf hash of a block in the history log:
/// `hash(Domain::HistoryLeaf, block_hash)` under the chain's hash function.
///
/// The block hash is hashed again under the leaf key (RFC 9162's `0x00`
/// prefix role) rather than used as the leaf directly, so that no leaf can be
/// mistaken for an inner node of the log.
pub fn history_leaf_hash(hf: HashFunction, block_hash: &Hash) -> Hash {
    hf.hash(Domain::HistoryLeaf, block_hash.as_bytes())
}

/// An append-only RFC 9162 log of block hashes.
///
/// The log stores every *complete* subtree: `levels()[j][i]` is the tree
/// hash of leaves `[i * 2^j, (i + 1) * 2^j)`, for every such range that is
/// fully appended. The tree hash of any prefix, and every node a proof
/// needs, is a combination of O(log n) stored hashes, so roots at past sizes
/// and proofs cost O(log n) hashes (O(log² n) for the few ranges that are
/// not complete subtrees).
///
/// Persisting it: the leaf hashes ([`HistoryTree::leaf_hashes`]) determine
/// everything, and [`HistoryTree::from_leaf_hashes`] rebuilds the levels; a
/// store may also save [`HistoryTree::levels`] as they are, since appending
/// only ever pushes onto the end of each level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTree {
    /// `levels[0]` are leaf hashes; `levels[j + 1][i]` is the node of
    /// `levels[j][2i]` and `levels[j][2i + 1]`. Never empty.
    levels: Vec<Vec<Hash>>,
    /// The chain's hash function, for leaves and inner nodes.
    hf: HashFunction,
}

impl HistoryTree {
    /// An empty log whose leaves and nodes hash under `hf` (the chain's
    /// hash function).
    pub fn new(hf: HashFunction) -> Self {
        HistoryTree {
            levels: vec![Vec::new()],
            hf,
        }
    }

    /// The hash function of this log.
    pub fn hash_function(&self) -> HashFunction {
        self.hf
    }

    /// Rebuilds a log from its leaf hashes (see [`history_leaf_hash`]),
    /// hashing each level's complete pairs with the multi-lane compression
    /// (BLAKE3) or one pair at a time (SM3).
    pub fn from_leaf_hashes(hf: HashFunction, leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last() {
            let (pairs, _) = below.as_chunks::<2>();
            if pairs.is_empty() {
                break;
            }
            let mut up = vec![Hash::ZERO; pairs.len()];
            hf.hash_node_pairs(Domain::HistoryNode, pairs, &mut up);
            levels.push(up);
        }
        HistoryTree { hf, levels }
    }

    /// Builds a log by appending `block_hashes` in order.
    pub fn from_block_hashes<'a>(
        hf: HashFunction,
        block_hashes: impl IntoIterator<Item = &'a Hash>,
    ) -> Self {
        Self::from_leaf_hashes(
            hf,
            block_hashes
                .into_iter()
                .map(|h| history_leaf_hash(hf, h))
                .collect(),
        )
    }

    /// Appends a block hash and returns its leaf index.
    pub fn append(&mut self, block_hash: &Hash) -> u64 {
        self.append_leaf_hash(history_leaf_hash(self.hf, block_hash))
    }

    /// Appends an already-computed leaf hash (see [`history_leaf_hash`]) and
    /// returns its index. Each level that becomes even gets its new
    /// complete pair hashed into the level above.
    pub fn append_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.len();
        let mut carry = leaf;
        let mut j = 0;
        loop {
            if self.levels.len() == j {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[j];
            level.push(carry);
            match level.as_slice() {
                [.., left, right] if level.len().is_multiple_of(2) => {
                    carry = self.hf.hash_node(Domain::HistoryNode, left, right);
                    j += 1;
                }
                _ => break,
            }
        }
        index
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.leaf_hashes().len() as u64
    }

    /// Whether the log has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaf_hashes().is_empty()
    }

    /// The leaf hashes, in append order.
    pub fn leaf_hashes(&self) -> &[Hash] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The stored complete-subtree hashes, level by level (see the type's
    /// documentation).
    pub fn levels(&self) -> &[Vec<Hash>] {
        &self.levels
    }

    /// The tree hash of the whole log.
    pub fn root(&self) -> Hash {
        self.range_hash(0, self.len())
    }

    /// The tree head (size and root) of the whole log.
    pub fn head(&self) -> TreeHead {
        TreeHead {
            size: self.len(),
            root: self.root(),
        }
    }

    /// The tree hash of the first `size` leaves, for any `size` up to
    /// [`HistoryTree::len`] (RFC 9162 §2.1.1 on the prefix `D[0:size]`).
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        Ok(self.range_hash(0, size))
    }

    /// The tree head of the first `size` leaves.
    pub fn head_at(&self, size: u64) -> Result<TreeHead, MerkleError> {
        Ok(TreeHead {
            size,
            root: self.root_at(size)?,
        })
    }

    /// The inclusion proof of leaf `index` in the log's first `size` leaves
    /// (RFC 9162 §2.1.3.1, `PATH(m, D[n])`).
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, MerkleError> {
        self.check_size(size)?;
        if size == 0 {
            return Err(MerkleError::EmptyTree);
        }
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        // Walk PATH's recursion from the top, then put the siblings in the
        // RFC's bottom-up order. `lo..lo + n` is the current subtree and `m`
        // the leaf's index within it.
        let (mut lo, mut n, mut m) = (0u64, size, index);
        let mut path = Vec::new();
        while n > 1 {
            let k = split_point(n);
            if m < k {
                // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
                path.push(self.range_hash(lo + k, n - k));
                n = k;
            } else {
                // PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
                path.push(self.range_hash(lo, k));
                lo += k;
                m -= k;
                n -= k;
            }
        }
        path.reverse();
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            path,
        })
    }

    /// The proof that the log at `old_size` is a prefix of the log at
    /// `new_size` (RFC 9162 §2.1.4.1, `PROOF(m, D[n]) = SUBPROOF(m, D[n],
    /// true)`). Requires `0 < old_size <= new_size <= len()`; equal sizes
    /// give an empty path.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, MerkleError> {
        if old_size == 0 || old_size > new_size {
            return Err(MerkleError::InvalidSizes { old_size, new_size });
        }
        self.check_size(new_size)?;
        // Walk SUBPROOF's recursion from the top; `complete` is its `b`.
        let (mut lo, mut n, mut m, mut complete) = (0u64, new_size, old_size, true);
        let mut path = Vec::new();
        while m != n {
            let k = split_point(n);
            if m <= k {
                // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
                path.push(self.range_hash(lo + k, n - k));
                n = k;
            } else {
                // SUBPROOF(m, D[n], b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
                path.push(self.range_hash(lo, k));
                lo += k;
                m -= k;
                n -= k;
                complete = false;
            }
        }
        // SUBPROOF(m, D[m], b) is empty if b, else MTH(D[m]).
        if !complete {
            path.push(self.range_hash(lo, n));
        }
        path.reverse();
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let len = self.len();
        if size > len {
            return Err(MerkleError::SizeBeyondLog { size, len });
        }
        Ok(())
    }

    /// The tree hash of leaves `[lo, lo + n)`, which must lie within the
    /// log. An aligned power-of-two range is a stored complete subtree;
    /// any other range is split as RFC 9162 §2.1.1 splits it.
    fn range_hash(&self, lo: u64, n: u64) -> Hash {
        if n == 0 {
            return empty_tree_hash(self.hf, Domain::HistoryNode);
        }
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let j = n.trailing_zeros() as usize;
            if let Some(h) = self
                .levels
                .get(j)
                .and_then(|level| level.get((lo >> j) as usize))
            {
                return *h;
            }
        }
        if n == 1 {
            // Only reached for a leaf outside the log, which callers rule
            // out; the empty hash keeps this total without panicking.
            return empty_tree_hash(self.hf, Domain::HistoryNode);
        }
        let k = split_point(n);
        self.hf.hash_node(
            Domain::HistoryNode,
            &self.range_hash(lo, k),
            &self.range_hash(lo + k, n - k),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B3: HashFunction = HashFunction::Blake3;

    fn block(i: u64) -> Hash {
        Hash::of(Domain::Test, &i.to_le_bytes())
    }

    #[test]
    fn append_matches_rebuild_and_levels_are_complete() {
        let mut log = HistoryTree::new(B3);
        for i in 0..100u64 {
            assert_eq!(log.append(&block(i)), i);
            let rebuilt = HistoryTree::from_leaf_hashes(B3, log.leaf_hashes().to_vec());
            assert_eq!(rebuilt, log, "size {}", i + 1);
            for (j, level) in log.levels().iter().enumerate() {
                assert_eq!(level.len() as u64, log.len() >> j);
            }
        }
        let hashes: Vec<Hash> = (0..100).map(block).collect();
        assert_eq!(HistoryTree::from_block_hashes(B3, &hashes), log);
        let mut sm = HistoryTree::new(HashFunction::Sm3);
        for h in &hashes {
            sm.append(h);
        }
        assert_eq!(
            HistoryTree::from_block_hashes(HashFunction::Sm3, &hashes),
            sm
        );
        assert_ne!(sm.root(), log.root());
    }

    #[test]
    fn empty_log() {
        let log = HistoryTree::new(B3);
        assert!(log.is_empty());
        assert_eq!(log.root(), empty_tree_hash(B3, Domain::HistoryNode));
        assert_eq!(log.root_at(0), Ok(log.root()));
        assert_eq!(
            log.root_at(1),
            Err(MerkleError::SizeBeyondLog { size: 1, len: 0 })
        );
        assert_eq!(log.inclusion_proof(0, 0), Err(MerkleError::EmptyTree));
        assert_eq!(
            log.consistency_proof(0, 0),
            Err(MerkleError::InvalidSizes {
                old_size: 0,
                new_size: 0
            })
        );
        assert_eq!(HistoryTree::new(B3).root(), log.root());
    }

    #[test]
    fn request_errors() {
        let log = HistoryTree::from_block_hashes(B3, &(0..5).map(block).collect::<Vec<_>>());
        assert_eq!(
            log.inclusion_proof(5, 5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(
            log.inclusion_proof(0, 6),
            Err(MerkleError::SizeBeyondLog { size: 6, len: 5 })
        );
        assert_eq!(
            log.consistency_proof(3, 2),
            Err(MerkleError::InvalidSizes {
                old_size: 3,
                new_size: 2
            })
        );
        assert_eq!(
            log.consistency_proof(3, 6),
            Err(MerkleError::SizeBeyondLog { size: 6, len: 5 })
        );
    }
}
