//! The sparse Merkle tree for authenticated state.
//!
//! A binary Merkle tree over 256-bit keys ([`KeyHash`], the hash of
//! an application key), versioned and stored behind the [`NodeStore`] trait
//! in pages of four binary levels, with binary membership and
//! non-membership proofs. The design follows the Jellyfish Merkle Tree (Z.
//! Gao, Y. Hu, Q. Wu, "Jellyfish Merkle Tree", Diem whitepaper, 2021):
//! binary hashing as in its §2 sparse-tree optimizations, 16-ary physical
//! nodes as in its node layout.
//!
//! # Shape: collapsing
//! Conceptually the tree has 2^256 leaf positions. Two rules keep it small
//! (JMT §2, "optimizations for sparse trees"):
//! - an empty subtree is the constant [`EMPTY_SUBTREE`] (all-zero hash), never
//!   stored;
//! - a subtree holding exactly one leaf *is* that leaf, placed at the root of
//!   the subtree: the highest position where it is alone.
//!
//! So a leaf sits one level below the longest prefix it shares with another
//! key, and with `n` random keys the depth is about `log2(n)`. The shape, and
//! hence the root, depends only on the set of keys and values: deleting a key
//! moves a sibling left alone back up (re-collapsing), so the root after any
//! sequence of batches equals the root of building the final set at once.
//!
//! # Hashes
//! Every hash is taken under the chain's [`HashFunction`](crate::hash::HashFunction)
//! `hf` (BLAKE3 or SM3), which the tree view ([`SparseMerkleTree::new`]),
//! key positions ([`KeyHash::of`]) and proofs ([`SparseMerkleProof::verify`])
//! take explicitly; a proof made under one function never verifies under the
//! other. The stored encoding of nodes is the same under both (it holds no
//! leaf hashes), so storage never needs to know the function.
//! - leaf: `hf(SmtLeaf, key_hash || value_hash)` with
//!   `value_hash = hf(SmtValue, value)` ([`leaf_hash`]);
//! - inner node: `hf(SmtNode, left || right)` ([`node_hash`]);
//! - empty subtree: [`EMPTY_SUBTREE`].
//!
//! Leaf and inner node use different derived keys, so a leaf can never be
//! presented as an inner node or the other way round; both inputs are 64
//! bytes, one BLAKE3 compression each (two under SM3).
//!
//! # Pages: binary tree, 16-ary storage
//! Hashes and proofs are those of the binary tree above, but nodes are
//! stored four levels at a time. A *page* ([`InternalNode`]) at a path whose
//! depth is a multiple of 4 holds 16 slots, one per 4-bit nibble, for the
//! subtrees at depth + 4: empty, a leaf (stored inline: key, value hash,
//! value version), or a reference (hash, version) to the page below. The
//! up to 15 binary inner nodes inside a page are not stored; they are
//! recomputed from the slots, with the collapsing rule applied inside the
//! page too (a slot's lone leaf sits as high as it is alone). A tree of
//! `n` random keys has about `log16(n)` pages on a path instead of
//! `log2(n)` binary nodes, so an update reads and writes 3-4 times fewer
//! stored nodes, and leaves cost no rows of their own.
//!
//! # Versions and storage
//! As in JMT (§3-4), each batch creates a new version. A page is stored
//! under a [`NodeKey`] `{ version that wrote it, path }`; unchanged pages
//! are shared with older versions by reference (a slot records the page's
//! hash and version), changed ones are written anew under the new version,
//! so every old version stays readable. The root of version `v` is always
//! stored under `NodeKey::root(v)`: a page, or a lone leaf, or the empty
//! tree. Nothing is content addressed, so pruning one version can never
//! delete a node another version holds by coincidence. Values are stored
//! apart, under `(key_hash, version)`; a leaf records the version of its
//! value.
//!
//! [`SparseMerkleTree::apply_batch`] never writes: it returns a
//! [`TreeUpdateBatch`] (new pages, new values and deletion markers, and the
//! *stale index*: which pages and value entries the new version no
//! longer uses). The caller writes it atomically
//! ([`MemoryNodeStore::write_batch`], or one redb transaction).
//!
//! # Pruning
//! A node or value marked stale since version `s` is used only by versions
//! below `s`. Pruning below `p` deletes every entry stale since `s <= p`,
//! which keeps every version `>= p` complete (JMT §4.3). Reads of versions
//! below `p` then fail with the typed [`SmtError::VersionPruned`].
//!
//! # Batch updates
//! Updates are sorted by key and pushed down the tree together, page by
//! page, so a page on the paths of many updates is read once, rebuilt once
//! and hashed once per batch, as soon as its slots are final (post-order).
//! Values and leaves are hashed up front, leaves with
//! [`hash_node_pairs`](crate::lanes::hash_node_pairs) (many independent
//! 64-byte compressions per call, SIMD lanes when available). A page's inner
//! nodes are hashed with scalar compressions: a page level holds at most
//! eight, usually far fewer, and hashing them in lanes measured slower.
//! Pages with at least 1024 updates below them update their slots in
//! parallel on rayon.
//!
//! # Proofs
//! A [`SparseMerkleProof`] lists the binary siblings along the key's path
//! from the root down to where the path ends (siblings inside a page are
//! recomputed from its slots), and the leaf found there, if any:
//! - the key's own leaf proves membership (and the value, by its hash);
//! - an empty subtree, or another key's leaf occupying the key's path prefix
//!   (alone in the subtree where the key would be), proves non-membership.
//!
//! The encoding stores a bitmap of non-empty siblings and only those, and is
//! canonical and bounded (at most 256 siblings).
//!
//! # Example
//! ```
//! use govchain_core::crypto::CryptoSuite;
//! use govchain_core::smt::{KeyHash, MemoryNodeStore, SparseMerkleTree};
//!
//! let hf = CryptoSuite::Ed25519Blake3.hash_function(); // the chain's suite
//! let store = MemoryNodeStore::new();
//! let tree = SparseMerkleTree::new(&store, hf);
//! let alice = KeyHash::of(hf, b"alice");
//! let bob = KeyHash::of(hf, b"bob");
//!
//! let (root1, batch) = tree.apply_batch(None, 1, &[(alice, Some(b"10".to_vec()))])?;
//! store.write_batch(batch)?;
//! let (root2, batch) = tree.apply_batch(Some(1), 2, &[(bob, Some(b"20".to_vec()))])?;
//! store.write_batch(batch)?;
//!
//! let (value, proof) = tree.get_with_proof(&alice, 2)?;
//! assert_eq!(value.as_deref(), Some(&b"10"[..]));
//! proof.verify(hf, &root2, &alice, Some(b"10"))?;
//!
//! // Version 1 is still readable, and bob was absent there.
//! let (value, proof) = tree.get_with_proof(&bob, 1)?;
//! assert_eq!(value, None);
//! proof.verify(hf, &root1, &bob, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod coalesce;
mod node;
mod proof;
mod store;
mod tree;

pub use coalesce::{CoalesceError, CoalescedReadError, CoalescedUpdates, CoalescedView};
pub use node::{
    leaf_hash, node_hash, value_hash, Child, InternalNode, KeyHash, LeafNode, Node, NodeKey,
    NodePath, Version, EMPTY_SUBTREE, KEY_BITS, MAX_NODE_LEN, PAGE_BITS, PAGE_SLOTS,
};
pub use proof::{SmtProofError, SparseMerkleProof, MAX_PROOF_LEN, MAX_SIBLINGS};
pub use store::{
    MemoryNodeStore, MemoryStoreError, NodeStore, StaleNodeIndex, StaleValueIndex, TreeUpdateBatch,
};
pub use tree::{SmtError, SparseMerkleTree};
