//! Inclusion and consistency proofs, their canonical encodings, and their
//! verification per RFC 9162 §2.1.3.2 and §2.1.4.2.

use super::history::history_leaf_hash;
use super::tree::{tx_leaf_hash, tx_root_from_tree_hash};
use super::{consistency_path_len, inclusion_path_len, MerkleError};
use crate::codec::{encode_seq, Decode, DecodeError, Encode, Reader};
use crate::hash::{Domain, Hash, HashFunction, HASH_LEN};

/// Most hashes an inclusion path can hold: one per level of a tree of up to
/// `2^64` leaves.
pub const MAX_INCLUSION_PATH_LEN: usize = 64;

/// Most hashes a consistency path can hold: one per level plus the old
/// subtree root (RFC 9162 §2.1.4.1) for sizes up to `2^64 - 1`.
pub const MAX_CONSISTENCY_PATH_LEN: usize = 65;

/// Largest canonical encoding of an [`InclusionProof`], a decode limit.
pub const MAX_INCLUSION_PROOF_LEN: usize = 8 + 8 + 4 + MAX_INCLUSION_PATH_LEN * HASH_LEN;

/// Largest canonical encoding of a [`ConsistencyProof`], a decode limit.
pub const MAX_CONSISTENCY_PROOF_LEN: usize = 8 + 8 + 4 + MAX_CONSISTENCY_PATH_LEN * HASH_LEN;

/// A tree size with the tree hash at that size: what a verifier trusts about
/// a history log (RFC 9162's signed tree head, without the signature; here
/// the block header carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 tree hash of those leaves.
    pub root: Hash,
}

impl Encode for TreeHead {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.size.encode_to(out);
        self.root.encode_to(out);
    }
}

impl Decode for TreeHead {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TreeHead {
            size: u64::decode_from(r)?,
            root: Hash::decode_from(r)?,
        })
    }
}

/// Proof that a leaf is at `leaf_index` in a tree of `tree_size` leaves
/// (RFC 9162 §2.1.3.1): the sibling hashes from the leaf up to the root.
///
/// Verify it with [`InclusionProof::verify_tx`] against a block's committed
/// transaction root and count, or with [`InclusionProof::verify_history`]
/// against a history [`TreeHead`]. Both take the trusted size from the
/// caller and reject a proof that claims another one: a path alone may fit
/// several tree sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the proven leaf.
    pub leaf_index: u64,
    /// Number of leaves of the tree the path leads up to.
    pub tree_size: u64,
    /// Sibling hashes, bottom-up.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Verifies that the encoded transaction `tx` is leaf
    /// [`leaf_index`](Self::leaf_index) of the block whose header commits to
    /// `tx_root` and `tx_count`, under that chain's hash function `hf` (the
    /// suite of the header being checked against).
    pub fn verify_tx(
        &self,
        hf: HashFunction,
        tx: &[u8],
        tx_root: &Hash,
        tx_count: u64,
    ) -> Result<(), MerkleError> {
        self.verify_tx_leaf(hf, &tx_leaf_hash(hf, tx), tx_root, tx_count)
    }

    /// Like [`InclusionProof::verify_tx`] for a transaction leaf hash the
    /// caller computed with [`tx_leaf_hash`](super::tx_leaf_hash). Never
    /// pass a hash taken from the proof or from an untrusted peer here.
    pub fn verify_tx_leaf(
        &self,
        hf: HashFunction,
        tx_leaf: &Hash,
        tx_root: &Hash,
        tx_count: u64,
    ) -> Result<(), MerkleError> {
        if self.tree_size != tx_count {
            return Err(MerkleError::SizeMismatch {
                expected: tx_count,
                got: self.tree_size,
            });
        }
        let tree_hash = root_from_inclusion_path(
            hf,
            Domain::TxNode,
            *tx_leaf,
            self.leaf_index,
            self.tree_size,
            &self.path,
        )?;
        if tx_root_from_tree_hash(hf, tx_count, &tree_hash) == *tx_root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        }
    }

    /// Verifies that `block_hash` is entry [`leaf_index`](Self::leaf_index)
    /// of the history log whose trusted head is `head`, hashed under `hf`.
    pub fn verify_history(
        &self,
        hf: HashFunction,
        block_hash: &Hash,
        head: &TreeHead,
    ) -> Result<(), MerkleError> {
        if self.tree_size != head.size {
            return Err(MerkleError::SizeMismatch {
                expected: head.size,
                got: self.tree_size,
            });
        }
        let root = root_from_inclusion_path(
            hf,
            Domain::HistoryNode,
            history_leaf_hash(hf, block_hash),
            self.leaf_index,
            self.tree_size,
            &self.path,
        )?;
        if root == head.root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        }
    }
}

/// The root an inclusion path leads to, by the algorithm of RFC 9162
/// §2.1.3.2, after the index and path length checks.
fn root_from_inclusion_path(
    hf: HashFunction,
    node: Domain,
    leaf: Hash,
    index: u64,
    size: u64,
    path: &[Hash],
) -> Result<Hash, MerkleError> {
    if size == 0 {
        return Err(MerkleError::EmptyTree);
    }
    // Step 1: the leaf index must be below the tree size.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_path_len(index, size);
    if path.len() != expected {
        return Err(MerkleError::PathLengthMismatch {
            expected,
            got: path.len(),
        });
    }
    // Steps 2 and 3.
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = leaf;
    // Step 4.
    for p in path {
        if s_n == 0 {
            // Unreachable after the length check; kept as the RFC's guard.
            return Err(MerkleError::PathLengthMismatch {
                expected,
                got: path.len(),
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = hf.hash_node(node, p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = hf.hash_node(node, &r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5 (the root comparison is the caller's).
    if s_n != 0 {
        return Err(MerkleError::PathLengthMismatch {
            expected,
            got: path.len(),
        });
    }
    Ok(r)
}

impl Encode for InclusionProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.leaf_index.encode_to(out);
        self.tree_size.encode_to(out);
        encode_seq(&self.path, out);
    }
}

impl Decode for InclusionProof {
    /// Decodes and checks the shape: `leaf_index < tree_size` and a path of
    /// exactly the length they imply (at most [`MAX_INCLUSION_PATH_LEN`]).
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "inclusion proof";
        let leaf_index = u64::decode_from(r)?;
        let tree_size = u64::decode_from(r)?;
        if leaf_index >= tree_size {
            return Err(DecodeError::InvalidValue {
                what: WHAT,
                reason: "leaf index is not below the tree size",
            });
        }
        let len = r.length(WHAT, MAX_INCLUSION_PATH_LEN, HASH_LEN)?;
        if len != inclusion_path_len(leaf_index, tree_size) {
            return Err(DecodeError::InvalidValue {
                what: WHAT,
                reason: "path length does not match the index and tree size",
            });
        }
        let path = decode_hashes(r, len)?;
        Ok(InclusionProof {
            leaf_index,
            tree_size,
            path,
        })
    }
}

/// Reads `len` hashes; `len` was checked against the input already.
fn decode_hashes(r: &mut Reader<'_>, len: usize) -> Result<Vec<Hash>, DecodeError> {
    let mut path = Vec::with_capacity(len);
    for _ in 0..len {
        path.push(Hash::decode_from(r)?);
    }
    Ok(path)
}

/// Proof that the history log at `old_size` is a prefix of the log at
/// `new_size` (RFC 9162 §2.1.4.1).
///
/// Sizes must satisfy `0 < old_size <= new_size`; for equal sizes the path
/// is empty and the proof says the two heads are the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// The RFC 9162 consistency path.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Verifies that the log with trusted head `old` is a prefix of the log
    /// with trusted head `new`, by the algorithm of RFC 9162 §2.1.4.2. The
    /// heads' sizes must be the proof's sizes; nodes hash under `hf`.
    pub fn verify(
        &self,
        hf: HashFunction,
        old: &TreeHead,
        new: &TreeHead,
    ) -> Result<(), MerkleError> {
        if self.old_size != old.size {
            return Err(MerkleError::SizeMismatch {
                expected: old.size,
                got: self.old_size,
            });
        }
        if self.new_size != new.size {
            return Err(MerkleError::SizeMismatch {
                expected: new.size,
                got: self.new_size,
            });
        }
        verify_consistency(hf, Domain::HistoryNode, old, new, &self.path)
    }
}

/// RFC 9162 §2.1.4.2, with the size and path length checks first.
fn verify_consistency(
    hf: HashFunction,
    node: Domain,
    old: &TreeHead,
    new: &TreeHead,
    path: &[Hash],
) -> Result<(), MerkleError> {
    let (first, second) = (old.size, new.size);
    if first == 0 || first > second {
        return Err(MerkleError::InvalidSizes {
            old_size: first,
            new_size: second,
        });
    }
    let expected = consistency_path_len(first, second);
    if path.len() != expected {
        return Err(MerkleError::PathLengthMismatch {
            expected,
            got: path.len(),
        });
    }
    if first == second {
        // Nothing to prove but equality (SUBPROOF(m, D[m], true) is empty).
        return if old.root == new.root {
            Ok(())
        } else {
            Err(MerkleError::NewRootMismatch)
        };
    }
    // Step 1 is the length check above (the expected length is never 0 for
    // first < second). Step 2: a power-of-two old tree is a complete subtree
    // of the new one, and its root is the path's implicit first entry.
    let (seed, rest) = if first.is_power_of_two() {
        (old.root, path)
    } else {
        match path.split_first() {
            Some((head, rest)) => (*head, rest),
            None => return Err(MerkleError::PathLengthMismatch { expected, got: 0 }),
        }
    };
    // Step 3.
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    // Step 4.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (seed, seed);
    // Step 6.
    for c in rest {
        if s_n == 0 {
            return Err(MerkleError::PathLengthMismatch {
                expected,
                got: path.len(),
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = hf.hash_node(node, c, &fr);
            sr = hf.hash_node(node, c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = hf.hash_node(node, &sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7.
    if s_n != 0 {
        return Err(MerkleError::PathLengthMismatch {
            expected,
            got: path.len(),
        });
    }
    if fr != old.root {
        return Err(MerkleError::OldRootMismatch);
    }
    if sr != new.root {
        return Err(MerkleError::NewRootMismatch);
    }
    Ok(())
}

impl Encode for ConsistencyProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.old_size.encode_to(out);
        self.new_size.encode_to(out);
        encode_seq(&self.path, out);
    }
}

impl Decode for ConsistencyProof {
    /// Decodes and checks the shape: `0 < old_size <= new_size` and a path
    /// of exactly the length they imply (at most
    /// [`MAX_CONSISTENCY_PATH_LEN`]).
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "consistency proof";
        let old_size = u64::decode_from(r)?;
        let new_size = u64::decode_from(r)?;
        if old_size == 0 || old_size > new_size {
            return Err(DecodeError::InvalidValue {
                what: WHAT,
                reason: "sizes are not 0 < old_size <= new_size",
            });
        }
        let len = r.length(WHAT, MAX_CONSISTENCY_PATH_LEN, HASH_LEN)?;
        if len != consistency_path_len(old_size, new_size) {
            return Err(DecodeError::InvalidValue {
                what: WHAT,
                reason: "path length does not match the sizes",
            });
        }
        let path = decode_hashes(r, len)?;
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path,
        })
    }
}
