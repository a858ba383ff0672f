//! The transaction tree of a block: RFC 9162 §2.1.1 shape, root bound to the
//! transaction count, inclusion proofs per §2.1.3.1.

use rayon::prelude::*;

use super::{empty_tree_hash, MerkleError};
use crate::hash::{Domain, Hash};
use crate::lanes::{hash_level, reduce_in_place};
use crate::merkle::InclusionProof;

/// Leaves per cache-resident subtree in [`tx_tree_hash`]: 1024 leaves are
/// 32 KiB, and their first level 16 KiB of scratch, so each subtree is
/// hashed from L1/L2 instead of streaming every level through memory.
const CHUNK_LEAVES: usize = 1 << 10;

/// Leaves per rayon task in [`tx_tree_hash_parallel`]; a power of two, so
/// that each task's root is a node of the full tree.
const PAR_CHUNK_LEAVES: usize = 1 << 13;

/// The leaf hash of one transaction: `Hash::of(Domain::TxLeaf, tx)`, where
/// `tx` is the canonical encoding of the transaction.
pub fn tx_leaf_hash(tx: &[u8]) -> Hash {
    Hash::of(Domain::TxLeaf, tx)
}

/// The leaf hashes of a list of encoded transactions, in order.
pub fn tx_leaf_hashes<T: AsRef<[u8]>>(txs: &[T]) -> Vec<Hash> {
    txs.iter().map(|tx| tx_leaf_hash(tx.as_ref())).collect()
}

/// The tree hash of a block with no transactions:
/// `Hash::of(Domain::TxNode, b"")` (RFC 9162 §2.1.1 uses `HASH()` of the
/// empty string). It can not equal a leaf (other key) or an inner node
/// (those hash exactly 64 bytes).
pub fn empty_tx_tree_hash() -> Hash {
    empty_tree_hash(Domain::TxNode)
}

/// The root of one aligned subtree: `chunk` holds at most a power of two of
/// leaves, so its root is a node (or, for the last chunk, the promoted
/// subtree) of the full tree.
fn chunk_root(node: Domain, chunk: &[Hash], scratch: &mut Vec<Hash>) -> Hash {
    if let [single] = chunk {
        return *single;
    }
    hash_level(node, chunk, scratch);
    reduce_in_place(node, scratch).unwrap_or_else(|| empty_tree_hash(node))
}

/// RFC 9162 §2.1.1 tree hash of `leaves`, single-threaded, with inner nodes
/// under `node`.
///
/// Bottom-up pairing with odd promotion equals the RFC's recursive
/// definition, and the nodes at level `j` are exactly the hashes of the
/// aligned blocks of `2^j` leaves; so the tree hash is also the tree hash of
/// the roots of aligned power-of-two chunks. Hashing chunk by chunk keeps the
/// working set in cache.
pub(crate) fn tree_hash_with(node: Domain, leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_tree_hash(node);
    }
    let mut scratch = Vec::with_capacity(CHUNK_LEAVES / 2);
    let mut roots: Vec<Hash> = leaves
        .chunks(CHUNK_LEAVES)
        .map(|chunk| chunk_root(node, chunk, &mut scratch))
        .collect();
    reduce_in_place(node, &mut roots).unwrap_or_else(|| empty_tree_hash(node))
}

/// Like [`tree_hash_with`], with the aligned chunks hashed on rayon's
/// threads and their roots combined on the caller's.
pub(crate) fn tree_hash_parallel_with(node: Domain, leaves: &[Hash]) -> Hash {
    if leaves.len() <= PAR_CHUNK_LEAVES {
        return tree_hash_with(node, leaves);
    }
    let mut roots: Vec<Hash> = leaves
        .par_chunks(PAR_CHUNK_LEAVES)
        .map_init(
            || Vec::with_capacity(CHUNK_LEAVES / 2),
            |scratch, chunk| {
                // Within a task, go chunk by chunk for cache locality too.
                let mut sub: Vec<Hash> = chunk
                    .chunks(CHUNK_LEAVES)
                    .map(|c| chunk_root(node, c, scratch))
                    .collect();
                reduce_in_place(node, &mut sub).unwrap_or_else(|| empty_tree_hash(node))
            },
        )
        .collect();
    reduce_in_place(node, &mut roots).unwrap_or_else(|| empty_tree_hash(node))
}

/// The RFC 9162 tree hash of transaction leaf hashes (no count binding),
/// single-threaded. Most callers want [`tx_root`].
pub fn tx_tree_hash(leaves: &[Hash]) -> Hash {
    tree_hash_with(Domain::TxNode, leaves)
}

/// [`tx_tree_hash`] computed on rayon's thread pool; the same value.
pub fn tx_tree_hash_parallel(leaves: &[Hash]) -> Hash {
    tree_hash_parallel_with(Domain::TxNode, leaves)
}

/// Binds a tree hash to its leaf count: `Hash::of_parts(Domain::TxRoot,
/// &[&count.to_le_bytes(), tree_hash])`. This is the root a block commits
/// to, so two blocks with different transaction counts never share a root.
pub fn tx_root_from_tree_hash(count: u64, tree_hash: &Hash) -> Hash {
    Hash::of_parts(
        Domain::TxRoot,
        &[&count.to_le_bytes(), tree_hash.as_bytes()],
    )
}

/// The transaction root of a block: the tree hash of `leaves` bound to
/// `leaves.len()`, single-threaded.
pub fn tx_root(leaves: &[Hash]) -> Hash {
    tx_root_from_tree_hash(leaves.len() as u64, &tx_tree_hash(leaves))
}

/// [`tx_root`] computed on rayon's thread pool; the same value.
pub fn tx_root_parallel(leaves: &[Hash]) -> Hash {
    tx_root_from_tree_hash(leaves.len() as u64, &tx_tree_hash_parallel(leaves))
}

/// The transaction root of a list of encoded transactions: leaf hashing plus
/// [`tx_root`], single-threaded.
pub fn tx_root_of_transactions<T: AsRef<[u8]>>(txs: &[T]) -> Hash {
    tx_root(&tx_leaf_hashes(txs))
}

/// A transaction tree with every level kept, for generating inclusion
/// proofs.
///
/// `levels[0]` are the leaf hashes; `levels[j + 1]` is `levels[j]` paired
/// and hashed with the odd last node promoted, up to the single tree hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTree {
    levels: Vec<Vec<Hash>>,
}

impl TxTree {
    /// Builds the tree over transaction leaf hashes (see [`tx_leaf_hash`]).
    pub fn from_leaves(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(top) = levels.last() {
            if top.len() <= 1 {
                break;
            }
            let mut parents = Vec::with_capacity(top.len().div_ceil(2));
            hash_level(Domain::TxNode, top, &mut parents);
            levels.push(parents);
        }
        TxTree { levels }
    }

    /// Builds the tree over encoded transactions.
    pub fn from_transactions<T: AsRef<[u8]>>(txs: &[T]) -> Self {
        Self::from_leaves(tx_leaf_hashes(txs))
    }

    /// Number of transactions (leaves).
    pub fn len(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map(Vec::as_slice).unwrap_or_default()
    }

    /// The RFC 9162 tree hash, without the count (see [`TxTree::tx_root`]).
    pub fn tree_hash(&self) -> Hash {
        match self.levels.last().map(Vec::as_slice) {
            Some([root]) => *root,
            _ => empty_tx_tree_hash(),
        }
    }

    /// The transaction root a block commits to: the tree hash bound to
    /// [`TxTree::len`].
    pub fn tx_root(&self) -> Hash {
        tx_root_from_tree_hash(self.len(), &self.tree_hash())
    }

    /// The inclusion proof of leaf `index` (RFC 9162 §2.1.3.1), read off the
    /// stored levels bottom-up: at each level the sibling, if the node is
    /// not the promoted odd last node.
    pub fn inclusion_proof(&self, index: u64) -> Result<InclusionProof, MerkleError> {
        let size = self.len();
        if size == 0 {
            return Err(MerkleError::EmptyTree);
        }
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        let mut path = Vec::new();
        let mut i = index as usize;
        // Every level but the top (the single tree hash) contributes the
        // sibling of the node on the leaf's path, if it has one.
        let below_top = self.levels.split_last().map_or(&[][..], |(_, rest)| rest);
        for level in below_top {
            // The sibling of node i is i ^ 1; the promoted last node has none.
            if let Some(h) = level.get(i ^ 1) {
                path.push(*h);
            }
            i /= 2;
        }
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162 §2.1.1 MTH, written as the RFC's recursion.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_tx_tree_hash(),
            1 => leaves[0],
            n => {
                let k = super::super::split_point(n as u64) as usize;
                Hash::node(Domain::TxNode, &mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| tx_leaf_hash(&i.to_le_bytes()))
            .collect()
    }

    #[test]
    fn roots_match_recursive_mth() {
        let mut sizes: Vec<usize> = (0..=40).collect();
        for k in 1..=12 {
            sizes.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
        }
        sizes.extend([
            CHUNK_LEAVES * 3 + 5,
            PAR_CHUNK_LEAVES * 2 + 7,
            PAR_CHUNK_LEAVES * 4,
        ]);
        for n in sizes {
            let l = leaves(n);
            let expected = mth(&l);
            assert_eq!(tx_tree_hash(&l), expected, "n={n}");
            assert_eq!(tx_tree_hash_parallel(&l), expected, "n={n}");
            let tree = TxTree::from_leaves(l.clone());
            assert_eq!(tree.tree_hash(), expected, "n={n}");
            let root = tx_root_from_tree_hash(n as u64, &expected);
            assert_eq!(tx_root(&l), root);
            assert_eq!(tx_root_parallel(&l), root);
            assert_eq!(tree.tx_root(), root);
        }
    }

    #[test]
    fn root_binds_count() {
        // Same tree hash, different count: different roots.
        let l = leaves(3);
        let th = tx_tree_hash(&l);
        assert_ne!(
            tx_root_from_tree_hash(3, &th),
            tx_root_from_tree_hash(4, &th)
        );
        // A single leaf's tree hash is the leaf, but its root is not.
        assert_eq!(tx_tree_hash(&l[..1]), l[0]);
        assert_ne!(tx_root(&l[..1]), l[0]);
        assert_eq!(
            tx_root(&[]),
            tx_root_from_tree_hash(0, &empty_tx_tree_hash())
        );
        let txs = [b"a".to_vec(), b"bc".to_vec()];
        assert_eq!(
            tx_root_of_transactions(&txs),
            TxTree::from_transactions(&txs).tx_root()
        );
    }

    #[test]
    fn proof_errors() {
        let empty = TxTree::from_leaves(Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.inclusion_proof(0), Err(MerkleError::EmptyTree));
        let tree = TxTree::from_leaves(leaves(5));
        assert_eq!(
            tree.inclusion_proof(5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
    }
}
