//! Membership and non-membership proofs.

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Hash, HashFunction};

use super::node::{leaf_hash, node_hash, value_hash, KeyHash, NodePath, EMPTY_SUBTREE, KEY_BITS};

/// Greatest number of siblings in a proof: one per bit of the key.
pub const MAX_SIBLINGS: usize = KEY_BITS;

/// Largest encoding of a [`SparseMerkleProof`], in bytes.
pub const MAX_PROOF_LEN: usize = 1 + 64 + 4 + MAX_SIBLINGS / 8 + 32 * MAX_SIBLINGS;

/// A proof that a key holds a value, or holds none, under a root.
///
/// The proof walks the key's path from the root down to where the path ends:
/// - at a leaf, `leaf = Some((leaf_key, value_hash))`. If `leaf_key` is the
///   queried key, this proves membership; otherwise the leaf is alone in the
///   subtree the queried key would be in, which proves non-membership
///   (Jellyfish collapsing: a subtree with one leaf is that leaf);
/// - at an empty subtree, `leaf = None`, which proves non-membership.
///
/// `siblings[i]` is the hash of the sibling at depth `i + 1` (the other child
/// of the node at depth `i` on the path), [`EMPTY_SUBTREE`] if it is empty.
///
/// # Encoding
/// `Option<(KeyHash, Hash)>` (tag byte, then 64 bytes), the sibling count as
/// a `u32` (at most 256), a bitmap of `ceil(count / 8)` bytes with bit `i`
/// (most significant first) set when sibling `i` is non-empty, and then only
/// the non-empty siblings. Unused bitmap bits must be zero and a listed
/// sibling must not be the empty hash, so each proof has one encoding.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SparseMerkleProof {
    /// The leaf where the key's path ends, if it ends at a leaf.
    pub leaf: Option<(KeyHash, Hash)>,
    /// Sibling hashes from the root downwards.
    pub siblings: Vec<Hash>,
}

/// Why a [`SparseMerkleProof`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtProofError {
    /// The proof has more siblings than a key has bits.
    #[error("proof has {count} siblings, at most {max} allowed")]
    TooManySiblings {
        /// Siblings in the proof.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// The proof does not hash to the expected root.
    #[error("proof computes root {computed}, expected {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Hash,
        /// The root the proof hashes to.
        computed: Hash,
    },
    /// Membership was claimed but the path ends at another key's leaf.
    #[error("proof ends at the leaf of {found}, not of {expected}")]
    LeafKeyMismatch {
        /// The queried key.
        expected: KeyHash,
        /// The key of the leaf in the proof.
        found: KeyHash,
    },
    /// Membership was claimed but the path ends at an empty subtree.
    #[error("key {key} is absent, but a value was expected")]
    KeyAbsent {
        /// The queried key.
        key: KeyHash,
    },
    /// The key is present with another value.
    #[error("key {key} holds a different value")]
    ValueMismatch {
        /// The queried key.
        key: KeyHash,
    },
    /// Non-membership was claimed but the key is present.
    #[error("key {key} is present, but absence was expected")]
    KeyPresent {
        /// The queried key.
        key: KeyHash,
    },
    /// The leaf in a non-membership proof is not on the queried key's path.
    #[error("leaf {leaf_key} does not lie on the path of {key} at depth {depth}")]
    LeafNotOnPath {
        /// The queried key.
        key: KeyHash,
        /// The key of the leaf in the proof.
        leaf_key: KeyHash,
        /// The leaf's depth.
        depth: usize,
    },
}

impl SparseMerkleProof {
    /// The root this proof hashes to for `key` under `hf`, or an error if it
    /// is too long.
    pub fn compute_root(&self, hf: HashFunction, key: &KeyHash) -> Result<Hash, SmtProofError> {
        let depth = self.siblings.len();
        if depth > MAX_SIBLINGS {
            return Err(SmtProofError::TooManySiblings {
                count: depth,
                max: MAX_SIBLINGS,
            });
        }
        let mut current = match &self.leaf {
            Some((k, vh)) => leaf_hash(hf, k, vh),
            None => EMPTY_SUBTREE,
        };
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            current = if key.bit(i) {
                node_hash(hf, sibling, &current)
            } else {
                node_hash(hf, &current, sibling)
            };
        }
        Ok(current)
    }

    /// Checks that under `root`, `key` holds `value` (`Some`) or holds no
    /// value (`None`), hashing under `hf`: the hash function of the chain
    /// whose header holds `root`. A proof made under the other function
    /// fails with [`SmtProofError::RootMismatch`].
    pub fn verify(
        &self,
        hf: HashFunction,
        root: &Hash,
        key: &KeyHash,
        value: Option<&[u8]>,
    ) -> Result<(), SmtProofError> {
        self.verify_hashed(hf, root, key, value.map(|v| value_hash(hf, v)).as_ref())
    }

    /// [`verify`](Self::verify) with the value already hashed
    /// ([`value_hash`]).
    pub fn verify_hashed(
        &self,
        hf: HashFunction,
        root: &Hash,
        key: &KeyHash,
        expected_value_hash: Option<&Hash>,
    ) -> Result<(), SmtProofError> {
        let depth = self.siblings.len();
        if depth > MAX_SIBLINGS {
            return Err(SmtProofError::TooManySiblings {
                count: depth,
                max: MAX_SIBLINGS,
            });
        }
        match (expected_value_hash, &self.leaf) {
            (Some(_), None) => return Err(SmtProofError::KeyAbsent { key: *key }),
            (Some(expected), Some((leaf_key, leaf_value))) => {
                if leaf_key != key {
                    return Err(SmtProofError::LeafKeyMismatch {
                        expected: *key,
                        found: *leaf_key,
                    });
                }
                if leaf_value != expected {
                    return Err(SmtProofError::ValueMismatch { key: *key });
                }
            }
            (None, Some((leaf_key, _))) => {
                if leaf_key == key {
                    return Err(SmtProofError::KeyPresent { key: *key });
                }
                if !NodePath::of_key(key, depth).contains(leaf_key) {
                    return Err(SmtProofError::LeafNotOnPath {
                        key: *key,
                        leaf_key: *leaf_key,
                        depth,
                    });
                }
            }
            (None, None) => {}
        }
        let computed = self.compute_root(hf, key)?;
        if computed != *root {
            return Err(SmtProofError::RootMismatch {
                expected: *root,
                computed,
            });
        }
        Ok(())
    }
}

impl Encode for SparseMerkleProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match &self.leaf {
            None => out.push(0),
            Some((k, v)) => {
                out.push(1);
                k.encode_to(out);
                v.encode_to(out);
            }
        }
        crate::codec::encode_len(self.siblings.len(), out);
        let mut bitmap = vec![0u8; self.siblings.len().div_ceil(8)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != EMPTY_SUBTREE {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().filter(|s| **s != EMPTY_SUBTREE) {
            s.encode_to(out);
        }
    }
}

impl Decode for SparseMerkleProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let leaf = match r.u8()? {
            0 => None,
            1 => Some((KeyHash::decode_from(r)?, Hash::decode_from(r)?)),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "SparseMerkleProof.leaf",
                    tag,
                })
            }
        };
        let count = r.length("SparseMerkleProof.siblings", MAX_SIBLINGS, 0)?;
        let bitmap = r.take(count.div_ceil(8))?;
        let present = |i: usize| {
            bitmap
                .get(i / 8)
                .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
        };
        // Bits past `count` must be zero.
        if count % 8 != 0 {
            if let Some(last) = bitmap.last() {
                if last & (0xffu8 >> (count % 8)) != 0 {
                    return Err(DecodeError::InvalidValue {
                        what: "SparseMerkleProof",
                        reason: "bitmap bits set past the sibling count",
                    });
                }
            }
        }
        let non_empty: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        if non_empty.saturating_mul(32) > r.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                needed: non_empty * 32,
                remaining: r.remaining(),
            });
        }
        let mut siblings = Vec::with_capacity(count);
        for i in 0..count {
            if present(i) {
                let h = Hash::decode_from(r)?;
                if h == EMPTY_SUBTREE {
                    return Err(DecodeError::InvalidValue {
                        what: "SparseMerkleProof",
                        reason: "a listed sibling is the empty hash",
                    });
                }
                siblings.push(h);
            } else {
                siblings.push(EMPTY_SUBTREE);
            }
        }
        Ok(SparseMerkleProof { leaf, siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;
    use crate::hash::Domain;

    const B3: HashFunction = HashFunction::Blake3;

    #[test]
    fn empty_tree_proves_absence() {
        let p = SparseMerkleProof::default();
        let k = KeyHash::of(B3, b"k");
        assert_eq!(p.verify(B3, &EMPTY_SUBTREE, &k, None), Ok(()));
        assert_eq!(
            p.verify(B3, &EMPTY_SUBTREE, &k, Some(b"v")),
            Err(SmtProofError::KeyAbsent { key: k })
        );
    }

    #[test]
    fn encoding_round_trip_and_limits() {
        let p = SparseMerkleProof {
            leaf: Some((KeyHash::of(B3, b"a"), value_hash(B3, b"b"))),
            siblings: vec![
                Hash::of(Domain::Test, b"1"),
                EMPTY_SUBTREE,
                EMPTY_SUBTREE,
                Hash::of(Domain::Test, b"2"),
                EMPTY_SUBTREE,
                EMPTY_SUBTREE,
                EMPTY_SUBTREE,
                EMPTY_SUBTREE,
                Hash::of(Domain::Test, b"3"),
            ],
        };
        let bytes = p.to_bytes();
        assert_eq!(bytes.len(), 1 + 64 + 4 + 2 + 3 * 32);
        assert_eq!(
            decode_exact::<SparseMerkleProof>(&bytes, MAX_PROOF_LEN),
            Ok(p)
        );
        let long = SparseMerkleProof {
            leaf: None,
            siblings: vec![Hash::of(Domain::Test, b"x"); MAX_SIBLINGS + 1],
        };
        assert!(decode_exact::<SparseMerkleProof>(&long.to_bytes(), usize::MAX).is_err());
        assert_eq!(
            long.verify(B3, &EMPTY_SUBTREE, &KeyHash::of(B3, b"k"), None),
            Err(SmtProofError::TooManySiblings {
                count: MAX_SIBLINGS + 1,
                max: MAX_SIBLINGS
            })
        );
        let full = SparseMerkleProof {
            leaf: Some((KeyHash::of(B3, b"a"), value_hash(B3, b"b"))),
            siblings: vec![Hash::of(Domain::Test, b"x"); MAX_SIBLINGS],
        };
        assert_eq!(full.to_bytes().len(), MAX_PROOF_LEN);
    }
}
