//! The transaction tree of a block: RFC 9162 §2.1.1 shape, root bound to the
//! transaction count, inclusion proofs per §2.1.3.1.

use rayon::prelude::*;

use super::{empty_tree_hash, MerkleError};
use crate::hash::{Domain, Hash, HashFunction};
use crate::merkle::InclusionProof;

/// Leaves per cache-resident subtree in [`tx_tree_hash`]: 1024 leaves are
/// 32 KiB, and their first level 16 KiB of scratch, so each subtree is
/// hashed from L1/L2 instead of streaming every level through memory.
const CHUNK_LEAVES: usize = 1 << 10;

/// Leaves per rayon task in [`tx_tree_hash_parallel`]; a power of two, so
/// that each task's root is a node of the full tree.
const PAR_CHUNK_LEAVES: usize = 1 << 13;

/// The leaf hash of one transaction: `hash(Domain::TxLeaf, tx)` under the
/// chain's hash function `hf`, where `tx` is the canonical encoding of the
/// transaction.
pub fn tx_leaf_hash(hf: HashFunction, tx: &[u8]) -> Hash {
    hf.hash(Domain::TxLeaf, tx)
}

/// The leaf hashes of a list of encoded transactions, in order.
pub fn tx_leaf_hashes<T: AsRef<[u8]>>(hf: HashFunction, txs: &[T]) -> Vec<Hash> {
    txs.iter().map(|tx| tx_leaf_hash(hf, tx.as_ref())).collect()
}

/// The tree hash of a block with no transactions:
/// `hash(Domain::TxNode, b"")` (RFC 9162 §2.1.1 uses `HASH()` of the
/// empty string). It can not equal a leaf (other domain) or an inner node
/// (those hash exactly 64 bytes).
pub fn empty_tx_tree_hash(hf: HashFunction) -> Hash {
    empty_tree_hash(hf, Domain::TxNode)
}

/// The root of one aligned subtree: `chunk` holds at most a power of two of
/// leaves, so its root is a node (or, for the last chunk, the promoted
/// subtree) of the full tree.
fn chunk_root(hf: HashFunction, node: Domain, chunk: &[Hash], scratch: &mut Vec<Hash>) -> Hash {
    if let [single] = chunk {
        return *single;
    }
    hf.hash_level(node, chunk, scratch);
    hf.reduce_in_place(node, scratch)
        .unwrap_or_else(|| empty_tree_hash(hf, node))
}

/// RFC 9162 §2.1.1 tree hash of `leaves`, single-threaded, with inner nodes
/// under `node`.
///
/// Bottom-up pairing with odd promotion equals the RFC's recursive
/// definition, and the nodes at level `j` are exactly the hashes of the
/// aligned blocks of `2^j` leaves; so the tree hash is also the tree hash of
/// the roots of aligned power-of-two chunks. Hashing chunk by chunk keeps the
/// working set in cache.
pub(crate) fn tree_hash_with(hf: HashFunction, node: Domain, leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return empty_tree_hash(hf, node);
    }
    let mut scratch = Vec::with_capacity(CHUNK_LEAVES / 2);
    let mut roots: Vec<Hash> = leaves
        .chunks(CHUNK_LEAVES)
        .map(|chunk| chunk_root(hf, node, chunk, &mut scratch))
        .collect();
    hf.reduce_in_place(node, &mut roots)
        .unwrap_or_else(|| empty_tree_hash(hf, node))
}

/// Like [`tree_hash_with`], with the aligned chunks hashed on rayon's
/// threads and their roots combined on the caller's.
pub(crate) fn tree_hash_parallel_with(hf: HashFunction, node: Domain, leaves: &[Hash]) -> Hash {
    if leaves.len() <= PAR_CHUNK_LEAVES {
        return tree_hash_with(hf, node, leaves);
    }
    let mut roots: Vec<Hash> = leaves
        .par_chunks(PAR_CHUNK_LEAVES)
        .map_init(
            || Vec::with_capacity(CHUNK_LEAVES / 2),
            |scratch, chunk| {
                // Within a task, go chunk by chunk for cache locality too.
                let mut sub: Vec<Hash> = chunk
                    .chunks(CHUNK_LEAVES)
                    .map(|c| chunk_root(hf, node, c, scratch))
                    .collect();
                hf.reduce_in_place(node, &mut sub)
                    .unwrap_or_else(|| empty_tree_hash(hf, node))
            },
        )
        .collect();
    hf.reduce_in_place(node, &mut roots)
        .unwrap_or_else(|| empty_tree_hash(hf, node))
}

/// The RFC 9162 tree hash of transaction leaf hashes (no count binding),
/// single-threaded. Most callers want [`tx_root`].
pub fn tx_tree_hash(hf: HashFunction, leaves: &[Hash]) -> Hash {
    tree_hash_with(hf, Domain::TxNode, leaves)
}

/// [`tx_tree_hash`] computed on rayon's thread pool; the same value.
pub fn tx_tree_hash_parallel(hf: HashFunction, leaves: &[Hash]) -> Hash {
    tree_hash_parallel_with(hf, Domain::TxNode, leaves)
}

/// Binds a tree hash to its leaf count: `hash_parts(Domain::TxRoot,
/// &[&count.to_le_bytes(), tree_hash])` under `hf`. This is the root a block
/// commits to, so two blocks with different transaction counts never share a
/// root.
pub fn tx_root_from_tree_hash(hf: HashFunction, count: u64, tree_hash: &Hash) -> Hash {
    hf.hash_parts(
        Domain::TxRoot,
        &[&count.to_le_bytes(), tree_hash.as_bytes()],
    )
}

/// The transaction root of a block: the tree hash of `leaves` bound to
/// `leaves.len()`, single-threaded.
pub fn tx_root(hf: HashFunction, leaves: &[Hash]) -> Hash {
    tx_root_from_tree_hash(hf, leaves.len() as u64, &tx_tree_hash(hf, leaves))
}

/// [`tx_root`] computed on rayon's thread pool; the same value.
pub fn tx_root_parallel(hf: HashFunction, leaves: &[Hash]) -> Hash {
    tx_root_from_tree_hash(hf, leaves.len() as u64, &tx_tree_hash_parallel(hf, leaves))
}

/// The transaction root of a list of encoded transactions: leaf hashing plus
/// [`tx_root`], single-threaded.
pub fn tx_root_of_transactions<T: AsRef<[u8]>>(hf: HashFunction, txs: &[T]) -> Hash {
    tx_root(hf, &tx_leaf_hashes(hf, txs))
}

/// A transaction tree with every level kept, for generating inclusion
/// proofs.
///
/// `levels[0]` are the leaf hashes; `levels[j + 1]` is `levels[j]` paired
/// and hashed with the odd last node promoted, up to the single tree hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxTree {
    hf: HashFunction,
    levels: Vec<Vec<Hash>>,
}

impl TxTree {
    /// Builds the tree over transaction leaf hashes (see [`tx_leaf_hash`]),
    /// with inner nodes under `hf`.
    pub fn from_leaves(hf: HashFunction, leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(top) = levels.last() {
            if top.len() <= 1 {
                break;
            }
            let mut parents = Vec::with_capacity(top.len().div_ceil(2));
            hf.hash_level(Domain::TxNode, top, &mut parents);
            levels.push(parents);
        }
        TxTree { hf, levels }
    }

    /// Builds the tree over encoded transactions, hashed under `hf`.
    pub fn from_transactions<T: AsRef<[u8]>>(hf: HashFunction, txs: &[T]) -> Self {
        Self::from_leaves(hf, tx_leaf_hashes(hf, txs))
    }

    /// The hash function of this tree.
    pub fn hash_function(&self) -> HashFunction {
        self.hf
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
            _ => empty_tx_tree_hash(self.hf),
        }
    }

    /// The transaction root a block commits to: the tree hash bound to
    /// [`TxTree::len`].
    pub fn tx_root(&self) -> Hash {
        tx_root_from_tree_hash(self.hf, self.len(), &self.tree_hash())
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
    fn mth(hf: HashFunction, leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_tx_tree_hash(hf),
            1 => leaves[0],
            n => {
                let k = super::super::split_point(n as u64) as usize;
                hf.hash_node(
                    Domain::TxNode,
                    &mth(hf, &leaves[..k]),
                    &mth(hf, &leaves[k..]),
                )
            }
        }
    }

    const B3: HashFunction = HashFunction::Blake3;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| tx_leaf_hash(B3, &i.to_le_bytes()))
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
            for hf in HashFunction::ALL.iter().copied() {
                // SM3 is slower: its checks stop at a few thousand leaves.
                if hf == HashFunction::Sm3 && n > CHUNK_LEAVES * 3 + 5 {
                    continue;
                }
                let expected = mth(hf, &l);
                assert_eq!(tx_tree_hash(hf, &l), expected, "n={n}");
                assert_eq!(tx_tree_hash_parallel(hf, &l), expected, "n={n}");
                let tree = TxTree::from_leaves(hf, l.clone());
                assert_eq!(tree.tree_hash(), expected, "n={n}");
                let root = tx_root_from_tree_hash(hf, n as u64, &expected);
                assert_eq!(tx_root(hf, &l), root);
                assert_eq!(tx_root_parallel(hf, &l), root);
                assert_eq!(tree.tx_root(), root);
            }
            if n > 1 {
                assert_ne!(
                    tx_tree_hash(HashFunction::Sm3, &l),
                    tx_tree_hash(B3, &l),
                    "n={n}"
                );
            }
        }
    }

    #[test]
    fn root_binds_count() {
        // Same tree hash, different count: different roots.
        let l = leaves(3);
        let th = tx_tree_hash(B3, &l);
        assert_ne!(
            tx_root_from_tree_hash(B3, 3, &th),
            tx_root_from_tree_hash(B3, 4, &th)
        );
        // A single leaf's tree hash is the leaf, but its root is not.
        assert_eq!(tx_tree_hash(B3, &l[..1]), l[0]);
        assert_ne!(tx_root(B3, &l[..1]), l[0]);
        for hf in HashFunction::ALL.iter().copied() {
            assert_eq!(
                tx_root(hf, &[]),
                tx_root_from_tree_hash(hf, 0, &empty_tx_tree_hash(hf))
            );
            let txs = [b"a".to_vec(), b"bc".to_vec()];
            assert_eq!(
                tx_root_of_transactions(hf, &txs),
                TxTree::from_transactions(hf, &txs).tx_root()
            );
        }
        assert_ne!(
            empty_tx_tree_hash(B3),
            empty_tx_tree_hash(HashFunction::Sm3)
        );
    }

    #[test]
    fn proof_errors() {
        let empty = TxTree::from_leaves(B3, Vec::new());
        assert!(empty.is_empty());
        assert_eq!(empty.inclusion_proof(0), Err(MerkleError::EmptyTree));
        let tree = TxTree::from_leaves(B3, leaves(5));
        assert_eq!(
            tree.inclusion_proof(5),
            Err(MerkleError::IndexOutOfRange { index: 5, size: 5 })
        );
    }
}
