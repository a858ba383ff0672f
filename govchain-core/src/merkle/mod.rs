//! Merkle trees: the RFC 9162 transaction tree and the history log.
//!
//! Both trees have the shape of the Merkle Tree Hash of RFC 9162 §2.1.1:
//! for `n > 1` leaves, `MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))` where `k`
//! is the largest power of two smaller than `n`. Built bottom-up, that is
//! "pair neighbours, and promote an odd last node unchanged" at every level;
//! a node is never duplicated (the Bitcoin tree's duplication allows two leaf
//! lists with one root, CVE-2012-2459). The RFC's `0x00`/`0x01` prefixes
//! become BLAKE3 derived keys ([`Domain`]), so an inner node is one 64-byte
//! compression, computed [`LANES`](crate::lanes::LANES) at a time by
//! [`crate::lanes`].
//!
//! Every function takes the chain's [`HashFunction`] (`hf`): BLAKE3 for
//! ed25519-blake3 chains, SM3 for sm2-sm3 chains (inner nodes then cost one
//! SM3 call each, with no multi-lane path). A proof made under one function
//! never verifies under the other.
//!
//! | | transaction tree | history log |
//! |---|---|---|
//! | leaf | `hf.hash(TxLeaf, tx_bytes)` | `hf.hash(HistoryLeaf, block_hash)` |
//! | inner node | `hf.hash_node(TxNode, l, r)` | `hf.hash_node(HistoryNode, l, r)` |
//! | empty tree | `hf.hash(TxNode, b"")` | `hf.hash(HistoryNode, b"")` |
//! | committed root | [`tx_root`]: the tree hash bound to the count | the tree hash, with its size in a [`TreeHead`] |
//!
//! The empty tree hash is the node key applied to the empty string (RFC
//! 9162 uses `HASH()` of the empty string). An inner node always hashes
//! exactly 64 bytes and a leaf is hashed under the other key, so the empty
//! tree hash can equal neither.
//!
//! * [`TxTree`] and [`tx_root`]: the block's transaction tree. The root that
//!   a block header commits to is `hf.hash_parts(TxRoot, [count as u64 LE,
//!   tree_hash])`, so a root also fixes how many transactions there are.
//!   [`tx_root_parallel`] splits the work over rayon's threads.
//! * [`HistoryTree`]: the append-only log of block hashes (RFC 9162 §2.1),
//!   with roots at any past size, inclusion proofs (§2.1.3) and consistency
//!   proofs (§2.1.4) in O(log n) hashes from stored complete subtrees.
//! * [`InclusionProof`] and [`ConsistencyProof`] are verified with the
//!   algorithms of §2.1.3.2 and §2.1.4.2, after checking the path length
//!   that the sizes imply. Their canonical encodings bound every length, and
//!   decoding rejects proofs whose shape does not match their sizes.
//!
//! ```
//! use govchain_core::hash::{Hash, HashFunction};
//! use govchain_core::merkle::{HistoryTree, TxTree};
//!
//! let hf = HashFunction::Sm3; // or the suite's: suite.hash_function()
//! let txs: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 250]).collect();
//! let tree = TxTree::from_transactions(hf, &txs);
//! let proof = tree.inclusion_proof(3)?;
//! proof.verify_tx(hf, &txs[3], &tree.tx_root(), tree.len())?;
//! assert!(proof.verify_tx(HashFunction::Blake3, &txs[3], &tree.tx_root(), tree.len()).is_err());
//!
//! let mut log = HistoryTree::new(hf);
//! for i in 0u8..10 {
//!     log.append(&Hash::from_bytes([i; 32]));
//! }
//! let old = log.head_at(4)?;
//! log.consistency_proof(4, 10)?.verify(hf, &old, &log.head())?;
//! log.inclusion_proof(2, 10)?.verify_history(hf, &Hash::from_bytes([2; 32]), &log.head())?;
//! # Ok::<(), govchain_core::merkle::MerkleError>(())
//! ```

mod history;
mod proof;
mod tree;

pub use history::{history_leaf_hash, HistoryTree};
pub use proof::{
    ConsistencyProof, InclusionProof, TreeHead, MAX_CONSISTENCY_PATH_LEN,
    MAX_CONSISTENCY_PROOF_LEN, MAX_INCLUSION_PATH_LEN, MAX_INCLUSION_PROOF_LEN,
};
pub use tree::{
    empty_tx_tree_hash, tx_leaf_hash, tx_leaf_hashes, tx_root, tx_root_from_tree_hash,
    tx_root_of_transactions, tx_root_parallel, tx_tree_hash, tx_tree_hash_parallel, TxTree,
};

use crate::hash::{Domain, Hash, HashFunction};

/// Why a Merkle tree refused a request or a proof failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The tree (or the tree size a proof claims) has no leaves, so nothing
    /// can be proven in it.
    #[error("the tree is empty")]
    EmptyTree,
    /// A leaf index is not below the tree size.
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The size of the tree.
        size: u64,
    },
    /// A tree size larger than the log was requested.
    #[error("tree size {size} is beyond the {len} leaves of the log")]
    SizeBeyondLog {
        /// The requested size.
        size: u64,
        /// How many leaves the log has.
        len: u64,
    },
    /// The proof is for a different tree size than the trusted one.
    #[error("proof is for a tree of {got} leaves, expected {expected}")]
    SizeMismatch {
        /// The trusted size (transaction count or tree head size).
        expected: u64,
        /// The size the proof claims.
        got: u64,
    },
    /// Consistency sizes are not `0 < old_size <= new_size`.
    #[error("invalid consistency sizes: old {old_size}, new {new_size}")]
    InvalidSizes {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
    },
    /// The proof path does not have the length its sizes imply.
    #[error("proof path has {got} hashes, expected {expected}")]
    PathLengthMismatch {
        /// The length implied by the index and sizes.
        expected: usize,
        /// The length of the path given.
        got: usize,
    },
    /// The inclusion path leads to a different root.
    #[error("the proof does not lead to the trusted root")]
    RootMismatch,
    /// The consistency path does not reproduce the old root (RFC 9162
    /// §2.1.4.2 step 7, `fr`).
    #[error("the consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// The consistency path does not reproduce the new root (RFC 9162
    /// §2.1.4.2 step 7, `sr`).
    #[error("the consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// The hash of an empty tree whose inner nodes are hashed under `node`:
/// the node key over the empty string.
pub(crate) fn empty_tree_hash(hf: HashFunction, node: Domain) -> Hash {
    hf.hash(node, b"")
}

/// The largest power of two strictly smaller than `n`, for `n >= 2`
/// (RFC 9162 §2.1.1's `k`).
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Length of the inclusion path of leaf `index` in a tree of `size` leaves
/// (RFC 9162 §2.1.3.1): one sibling per level where the node is not the
/// promoted odd last node. Requires `index < size`.
pub(crate) fn inclusion_path_len(index: u64, size: u64) -> usize {
    let (mut i, mut last) = (index, size.saturating_sub(1));
    let mut len = 0;
    while last > 0 {
        if !i.is_multiple_of(2) || i < last {
            len += 1;
        }
        i /= 2;
        last /= 2;
    }
    len
}

/// Length of the consistency proof between sizes `0 < old <= new`, following
/// `SUBPROOF` of RFC 9162 §2.1.4.1 on sizes alone.
pub(crate) fn consistency_path_len(old: u64, new: u64) -> usize {
    let (mut m, mut n, mut complete) = (old, new, true);
    let mut len = 0;
    while m != n && n >= 2 {
        let k = split_point(n);
        if m <= k {
            n = k;
        } else {
            m -= k;
            n -= k;
            complete = false;
        }
        len += 1;
    }
    if !complete {
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_below() {
        for n in 2u64..=300 {
            let k = split_point(n);
            assert!(k.is_power_of_two() && k < n && 2 * k >= n, "n={n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn path_lengths_of_small_trees() {
        assert_eq!(inclusion_path_len(0, 1), 0);
        assert_eq!(inclusion_path_len(0, 2), 1);
        assert_eq!(inclusion_path_len(2, 3), 1);
        assert_eq!(inclusion_path_len(0, 3), 2);
        assert_eq!(inclusion_path_len(4, 5), 1);
        assert_eq!(inclusion_path_len(0, 1 << 20), 20);
        assert_eq!(inclusion_path_len(u64::MAX - 1, u64::MAX), 63);
        assert!(inclusion_path_len(0, u64::MAX) <= 64);
        assert_eq!(consistency_path_len(4, 4), 0);
        assert_eq!(consistency_path_len(4, 8), 1);
        assert_eq!(consistency_path_len(3, 7), 4);
        assert!(consistency_path_len(u64::MAX - 1, u64::MAX) <= 65);
    }

    #[test]
    fn empty_tree_hashes_differ_by_kind() {
        for hf in HashFunction::ALL.iter().copied() {
            assert_ne!(
                empty_tree_hash(hf, Domain::TxNode),
                empty_tree_hash(hf, Domain::HistoryNode)
            );
            assert_ne!(
                empty_tree_hash(hf, Domain::TxNode),
                hf.hash(Domain::TxLeaf, b"")
            );
        }
    }
}
