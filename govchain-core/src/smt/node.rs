//! Keys, paths and the stored node types of the sparse Merkle tree, with
//! their canonical encodings.

use std::fmt;
use std::sync::Arc;

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Domain, Hash, HashFunction};

/// A version of the tree: one per applied batch (typically a block height).
pub type Version = u64;

/// Number of bits in a key, and so the greatest depth of a leaf.
pub const KEY_BITS: usize = 256;

/// The hash of an empty subtree, and the root of the empty tree.
///
/// [`Hash::ZERO`] is never the output of hashing, so an empty subtree can not
/// be confused with a leaf or an inner node.
pub const EMPTY_SUBTREE: Hash = Hash::ZERO;

/// A 256-bit position in the tree: the hash of an application key.
///
/// Bit `i` (most significant bit of byte 0 first) chooses the left (`0`) or
/// right (`1`) child at depth `i`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct KeyHash(Hash);

impl KeyHash {
    /// The position of `app_key`: `hf.hash(Domain::SmtKey, app_key)` under
    /// the chain's hash function.
    pub fn of(hf: HashFunction, app_key: &[u8]) -> KeyHash {
        KeyHash(hf.hash(Domain::SmtKey, app_key))
    }

    /// Uses `hash` directly as a position. Callers must make sure that
    /// adversaries can not choose it freely (use [`KeyHash::of`] otherwise),
    /// or long shared prefixes make the tree deep.
    pub const fn from_hash(hash: Hash) -> KeyHash {
        KeyHash(hash)
    }

    /// The underlying hash.
    pub const fn hash(&self) -> &Hash {
        &self.0
    }

    /// Bit `i` of the key, for `i < 256`; `false` beyond.
    #[inline]
    pub fn bit(&self, i: usize) -> bool {
        match self.0.as_bytes().get(i / 8) {
            Some(b) => (b >> (7 - (i % 8))) & 1 == 1,
            None => false,
        }
    }

    /// The 4 bits of the key at depths `depth..depth + 4` as a number
    /// (`depth` a multiple of 4, below 256): the page slot of the key.
    #[inline]
    pub fn nibble(&self, depth: usize) -> usize {
        match self.0.as_bytes().get(depth / 8) {
            Some(b) if depth.is_multiple_of(8) => usize::from(b >> 4),
            Some(b) => usize::from(b & 0x0f),
            None => 0,
        }
    }

    /// Number of leading bits that `self` and `other` share.
    pub fn common_prefix_len(&self, other: &KeyHash) -> usize {
        for (i, (a, b)) in self.0.as_bytes().iter().zip(other.0.as_bytes()).enumerate() {
            let x = a ^ b;
            if x != 0 {
                return i * 8 + x.leading_zeros() as usize;
            }
        }
        KEY_BITS
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({:?})", self.0)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Encode for KeyHash {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
}

impl Decode for KeyHash {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KeyHash(Hash::decode_from(r)?))
    }
}

/// The hash of a leaf: `hf.hash_node(SmtLeaf, key_hash, value_hash)`, one
/// BLAKE3 compression. Its domain differs from [`node_hash`]'s, so a leaf
/// can never be passed off as an inner node or the other way round.
#[inline]
pub fn leaf_hash(hf: HashFunction, key: &KeyHash, value_hash: &Hash) -> Hash {
    hf.hash_node(Domain::SmtLeaf, &key.0, value_hash)
}

/// The hash of a value: `hf.hash(SmtValue, value)`.
#[inline]
pub fn value_hash(hf: HashFunction, value: &[u8]) -> Hash {
    hf.hash(Domain::SmtValue, value)
}

/// The hash of an inner node: `hf.hash_node(SmtNode, left, right)`, where
/// an empty child is [`EMPTY_SUBTREE`] (the same constant under every hash
/// function).
#[inline]
pub fn node_hash(hf: HashFunction, left: &Hash, right: &Hash) -> Hash {
    hf.hash_node(Domain::SmtNode, left, right)
}

/// A bit path from the root: the first `depth` bits of a key.
///
/// Bits at and after `depth` are always zero, so equal paths compare equal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodePath {
    depth: u16,
    bits: [u8; 32],
}

impl NodePath {
    /// The root's path (depth 0).
    pub const ROOT: NodePath = NodePath {
        depth: 0,
        bits: [0u8; 32],
    };

    /// The first `depth` bits of `key`; `depth` is capped at 256.
    pub fn of_key(key: &KeyHash, depth: usize) -> NodePath {
        let depth = depth.min(KEY_BITS);
        let mut bits = *key.0.as_bytes();
        let full = depth / 8;
        let rem = depth % 8;
        if full < 32 {
            bits[full] &= !(0xffu8 >> rem);
            for b in &mut bits[full + 1..] {
                *b = 0;
            }
        }
        NodePath {
            depth: depth as u16,
            bits,
        }
    }

    /// Depth of the path: 0 for the root, at most 256.
    pub fn depth(&self) -> usize {
        usize::from(self.depth)
    }

    /// The path bytes (bits past the depth are zero).
    pub fn bits(&self) -> &[u8; 32] {
        &self.bits
    }

    /// The child path one level down, to the right if `right`. At depth 256
    /// the path is returned unchanged (there are no deeper nodes).
    #[inline]
    pub fn child(&self, right: bool) -> NodePath {
        let d = self.depth();
        if d >= KEY_BITS {
            return *self;
        }
        let mut bits = self.bits;
        if right {
            bits[d / 8] |= 0x80 >> (d % 8);
        }
        NodePath {
            depth: self.depth + 1,
            bits,
        }
    }

    /// The path four levels down through slot `nibble` (`< 16`), from a
    /// depth divisible by 4. Past depth 252 the path is returned unchanged.
    #[inline]
    pub fn nibble_child(&self, nibble: usize) -> NodePath {
        let d = self.depth();
        if d + 4 > KEY_BITS {
            return *self;
        }
        let mut bits = self.bits;
        let n = (nibble & 0x0f) as u8;
        if let Some(b) = bits.get_mut(d / 8) {
            *b |= if d.is_multiple_of(8) { n << 4 } else { n };
        }
        NodePath {
            depth: self.depth + 4,
            bits,
        }
    }

    /// Whether `key` lies under this path.
    pub fn contains(&self, key: &KeyHash) -> bool {
        NodePath::of_key(key, self.depth()) == *self
    }
}

impl fmt::Debug for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePath(")?;
        for i in 0..self.depth().min(24) {
            let bit = (self.bits[i / 8] >> (7 - i % 8)) & 1;
            write!(f, "{bit}")?;
        }
        if self.depth() > 24 {
            write!(f, "…/{}", self.depth)?;
        }
        write!(f, ")")
    }
}

impl Encode for NodePath {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.depth.encode_to(out);
        out.extend_from_slice(&self.bits[..self.depth().div_ceil(8)]);
    }
}

impl Decode for NodePath {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let depth = u16::decode_from(r)?;
        if usize::from(depth) > KEY_BITS {
            return Err(DecodeError::InvalidValue {
                what: "NodePath",
                reason: "depth exceeds 256",
            });
        }
        let n = usize::from(depth).div_ceil(8);
        let mut bits = [0u8; 32];
        bits[..n].copy_from_slice(r.take(n)?);
        let path = NodePath { depth, bits };
        if NodePath::of_key(&KeyHash(Hash::from_bytes(bits)), usize::from(depth)) != path {
            return Err(DecodeError::InvalidValue {
                what: "NodePath",
                reason: "bits set past the depth",
            });
        }
        Ok(path)
    }
}

/// The storage key of a node: the version that wrote it and its position.
///
/// As in the Jellyfish Merkle Tree (Gao et al., 2021, §3, "node key"), a
/// node written at version `v` stays under that key, unchanged, for as long
/// as later versions reuse it; a change writes a new node under the new
/// version. Nothing is content-addressed, so two versions holding an equal
/// subtree never share a key that pruning one of them could delete.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeKey {
    /// The version that wrote the node.
    pub version: Version,
    /// The node's position.
    pub path: NodePath,
}

impl NodeKey {
    /// The key of the root of `version`.
    pub const fn root(version: Version) -> NodeKey {
        NodeKey {
            version,
            path: NodePath::ROOT,
        }
    }
}

impl Encode for NodeKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.version.encode_to(out);
        self.path.encode_to(out);
    }
}

impl Decode for NodeKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeKey {
            version: Version::decode_from(r)?,
            path: NodePath::decode_from(r)?,
        })
    }
}

/// Binary levels spanned by one stored inner node (a *page*).
pub const PAGE_BITS: usize = 4;

/// Child slots of a page: one per 4-bit nibble, at the page's depth + 4.
pub const PAGE_SLOTS: usize = 16;

/// The bits of `lo..lo + len` as a slot mask.
#[inline]
const fn range_mask(lo: usize, len: usize) -> u16 {
    ((((1u32 << len) - 1) << lo) & 0xffff) as u16
}

/// A child slot of a page.
///
/// Leaves are stored inline, in the page that holds them; only pages are
/// stored under their own [`NodeKey`].
///
/// Equality ignores a leaf's cached hash (a function of the leaf under the
/// tree's hash function).
#[derive(Clone, Copy, Eq, Debug, Default)]
pub enum Child {
    /// An empty subtree ([`EMPTY_SUBTREE`]).
    #[default]
    Empty,
    /// A leaf, alone in the slot's subtree, with its hash once known.
    Leaf {
        /// The leaf.
        leaf: LeafNode,
        /// `leaf.hash(hf)` under the hash function of the tree that built
        /// this child ([`Child::leaf`]), or `None` for a leaf decoded from
        /// storage (the encoding is the same under every hash function, so
        /// the decoder can not hash): [`Child::hash`] then computes it.
        hash: Option<Hash>,
    },
    /// A page, stored under `NodeKey { version, path: parent.nibble_child(slot) }`.
    Internal {
        /// The hash of the subtree the page roots.
        hash: Hash,
        /// The version that wrote it.
        version: Version,
    },
}

impl PartialEq for Child {
    fn eq(&self, other: &Child) -> bool {
        match (self, other) {
            (Child::Empty, Child::Empty) => true,
            (Child::Leaf { leaf: a, .. }, Child::Leaf { leaf: b, .. }) => a == b,
            (
                Child::Internal {
                    hash: a,
                    version: va,
                },
                Child::Internal {
                    hash: b,
                    version: vb,
                },
            ) => a == b && va == vb,
            _ => false,
        }
    }
}

impl Child {
    /// A leaf child, hashing the leaf under `hf`.
    pub fn leaf(hf: HashFunction, leaf: LeafNode) -> Child {
        Child::Leaf {
            hash: Some(leaf.hash(hf)),
            leaf,
        }
    }

    /// The subtree's hash under `hf` ([`EMPTY_SUBTREE`] when empty); a
    /// leaf's cached hash is used when present.
    #[inline]
    pub fn hash(&self, hf: HashFunction) -> Hash {
        match self {
            Child::Empty => EMPTY_SUBTREE,
            Child::Leaf {
                hash: Some(hash), ..
            }
            | Child::Internal { hash, .. } => *hash,
            Child::Leaf { leaf, hash: None } => leaf.hash(hf),
        }
    }

    /// Whether the child is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Child::Empty)
    }
}

/// A stored leaf: a key and the hash of its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct LeafNode {
    /// The key.
    pub key_hash: KeyHash,
    /// `value_hash(value)`.
    pub value_hash: Hash,
    /// The version that wrote the value (the value is stored under
    /// `(key_hash, value_version)`). Not hashed: moving a leaf, or reading it
    /// at a later version, leaves this alone.
    pub value_version: Version,
}

impl LeafNode {
    /// The leaf's hash under `hf`, [`leaf_hash`].
    pub fn hash(&self, hf: HashFunction) -> Hash {
        leaf_hash(hf, &self.key_hash, &self.value_hash)
    }
}

/// What a run of slots of a page holds, as seen by the binary tree.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Range {
    /// Nothing: an empty subtree.
    Empty,
    /// Exactly one leaf: the subtree collapses to it.
    Leaf(LeafNode),
    /// An inner binary node.
    Inner,
}

/// A stored inner node: a *page* of four binary levels.
///
/// The tree is binary — binary hashes, binary proofs, Jellyfish collapsing
/// of single-leaf subtrees — but it is stored four levels at a time, as in
/// the Jellyfish Merkle Tree's 16-ary nodes (Gao et al., 2021, §2): a page
/// at path `P` (a depth divisible by 4) holds the 16 subtrees at depth
/// `P + 4`, one per nibble. A slot holds nothing, a leaf (inline: a leaf
/// alone in its slot's subtree sits at the highest binary position where it
/// is alone, which may be inside the page), or a reference to the page
/// below. The binary inner nodes of the page are recomputed from the slots
/// ([`hash`](Self::hash)); they are never stored.
///
/// Canonical form: the page roots a subtree of at least two leaves, so it
/// is neither empty nor a single leaf slot.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct InternalNode {
    /// Bit `i` set when slot `i` is not empty.
    mask: u16,
    /// Bit `i` set when slot `i` is a leaf.
    leaves: u16,
    /// The non-empty slots, in slot order (shared: cloning a page, as an
    /// in-memory store does on every read, copies no slots).
    children: Arc<[Child]>,
}

impl InternalNode {
    /// The page with these 16 slots.
    pub fn from_slots(slots: &[Child; PAGE_SLOTS]) -> InternalNode {
        let (mut mask, mut leaves) = (0u16, 0u16);
        for (i, c) in slots.iter().enumerate() {
            match c {
                Child::Empty => {}
                Child::Leaf { .. } => {
                    mask |= 1 << i;
                    leaves |= 1 << i;
                }
                Child::Internal { .. } => mask |= 1 << i,
            }
        }
        InternalNode {
            mask,
            leaves,
            children: slots.iter().filter(|c| !c.is_empty()).copied().collect(),
        }
    }

    /// The 16 slots.
    pub fn slots(&self) -> [Child; PAGE_SLOTS] {
        let mut out = [Child::Empty; PAGE_SLOTS];
        let mut it = self.children.iter();
        for (i, slot) in out.iter_mut().enumerate() {
            if self.mask & (1 << i) != 0 {
                if let Some(c) = it.next() {
                    *slot = *c;
                }
            }
        }
        out
    }

    /// The child in slot `slot` (`slot < 16`).
    #[inline]
    pub fn child(&self, slot: usize) -> Child {
        let bit = 1u32 << slot;
        if u32::from(self.mask) & bit == 0 {
            return Child::Empty;
        }
        let below = u32::from(self.mask) & (bit - 1);
        self.children
            .get(below.count_ones() as usize)
            .copied()
            .unwrap_or(Child::Empty)
    }

    /// The non-empty slots and their children, in slot order.
    pub fn children(&self) -> impl Iterator<Item = (usize, &Child)> + '_ {
        (0..PAGE_SLOTS)
            .filter(|i| self.mask & (1 << i) != 0)
            .zip(self.children.iter())
    }

    /// Whether the page roots at least two leaves (the collapsing rule).
    pub fn is_canonical(&self) -> bool {
        !(self.mask == 0 || (self.mask.count_ones() == 1 && self.leaves != 0))
    }

    /// What slots `lo..lo + len` hold.
    #[inline]
    pub(crate) fn range(&self, lo: usize, len: usize) -> Range {
        let m = self.mask & range_mask(lo, len);
        if m == 0 {
            return Range::Empty;
        }
        if m.count_ones() == 1 && self.leaves & m != 0 {
            if let Child::Leaf { leaf, .. } = self.child(m.trailing_zeros() as usize) {
                return Range::Leaf(leaf);
            }
        }
        Range::Inner
    }

    /// The hash of the binary subtree over slots `lo..lo + len` (`len` a
    /// power of two, aligned), with single leaves collapsed.
    pub(crate) fn range_hash(&self, hf: HashFunction, lo: usize, len: usize) -> Hash {
        let m = self.mask & range_mask(lo, len);
        if m == 0 {
            return EMPTY_SUBTREE;
        }
        if len == 1 || (m.count_ones() == 1 && self.leaves & m != 0) {
            return self.child(m.trailing_zeros() as usize).hash(hf);
        }
        let half = len / 2;
        node_hash(
            hf,
            &self.range_hash(hf, lo, half),
            &self.range_hash(hf, lo + half, half),
        )
    }

    /// The page's hash: the binary hash of the subtree it roots, one
    /// scalar compression per binary inner node. (Hashing a page a level at
    /// a time through the multi-lane compression measured slower: a page
    /// level has at most eight nodes, usually far fewer, and the lanes'
    /// transposes cost more than they save there.)
    ///
    /// `hf` is the tree's hash function.
    pub fn hash(&self, hf: HashFunction) -> Hash {
        self.range_hash(hf, 0, PAGE_SLOTS)
    }
}

/// A node as stored by a [`NodeStore`](super::NodeStore): a page, or, as
/// the root of a version only, a lone leaf or the empty tree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Node {
    /// The empty tree; only ever stored as a root.
    Empty,
    /// A lone leaf; only ever stored as a root.
    Leaf(LeafNode),
    /// A page.
    Internal(InternalNode),
}

impl Node {
    /// The node's hash under `hf` ([`EMPTY_SUBTREE`] for [`Node::Empty`]).
    pub fn hash(&self, hf: HashFunction) -> Hash {
        match self {
            Node::Empty => EMPTY_SUBTREE,
            Node::Leaf(l) => l.hash(hf),
            Node::Internal(n) => n.hash(hf),
        }
    }
}

/// Largest encoding of a [`Node`], in bytes: a page of 16 leaves with
/// 10-byte version varints.
pub const MAX_NODE_LEN: usize = 1 + 2 + 2 + PAGE_SLOTS * (32 + 32 + 10);

/// Versions inside nodes are LEB128 varints (7 bits a byte, least
/// significant first, high bit = more follows): block heights take 1-4
/// bytes instead of 8, and a page holds up to 16 of them.
fn encode_version(v: Version, out: &mut Vec<u8>) {
    let mut v = v;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a canonical varint: no overlong form (a last byte of zero after
/// the first) and nothing past 64 bits.
fn decode_version(r: &mut Reader<'_>) -> Result<Version, DecodeError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = r.u8()?;
        let bits = u64::from(b & 0x7f);
        if i == 9 && b > 1 {
            return Err(DecodeError::InvalidValue {
                what: "Version",
                reason: "varint exceeds 64 bits",
            });
        }
        v |= bits << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(DecodeError::InvalidValue {
                    what: "Version",
                    reason: "overlong varint",
                });
            }
            return Ok(v);
        }
    }
    Err(DecodeError::InvalidValue {
        what: "Version",
        reason: "varint exceeds 64 bits",
    })
}

fn encode_leaf(l: &LeafNode, out: &mut Vec<u8>) {
    l.key_hash.encode_to(out);
    l.value_hash.encode_to(out);
    encode_version(l.value_version, out);
}

fn decode_leaf(r: &mut Reader<'_>) -> Result<LeafNode, DecodeError> {
    Ok(LeafNode {
        key_hash: KeyHash::decode_from(r)?,
        value_hash: Hash::decode_from(r)?,
        value_version: decode_version(r)?,
    })
}

/// `0` (empty) | `1` leaf | `2` page: `mask u16 | leaves u16`, then per
/// non-empty slot in order a leaf (`key 32 | value_hash 32 | value_version
/// varint`) or a page reference (`hash 32 | version varint`). Leaf hashes
/// are recomputed when decoding.
impl Encode for Node {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Node::Empty => out.push(0),
            Node::Leaf(l) => {
                out.push(1);
                encode_leaf(l, out);
            }
            Node::Internal(n) => {
                out.push(2);
                n.mask.encode_to(out);
                n.leaves.encode_to(out);
                for c in n.children.iter() {
                    match c {
                        Child::Empty => {}
                        Child::Leaf { leaf, .. } => encode_leaf(leaf, out),
                        Child::Internal { hash, version } => {
                            hash.encode_to(out);
                            encode_version(*version, out);
                        }
                    }
                }
            }
        }
    }
}

impl Decode for Node {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Node::Empty),
            1 => Ok(Node::Leaf(decode_leaf(r)?)),
            2 => {
                let mask = u16::decode_from(r)?;
                let leaves = u16::decode_from(r)?;
                if leaves & !mask != 0 {
                    return Err(DecodeError::InvalidValue {
                        what: "InternalNode",
                        reason: "leaf bit set for an empty slot",
                    });
                }
                let mut children = Vec::with_capacity(mask.count_ones() as usize);
                for i in 0..PAGE_SLOTS {
                    if mask & (1 << i) == 0 {
                        continue;
                    }
                    if leaves & (1 << i) != 0 {
                        // Not hashed here: the encoding does not say under
                        // which function (see `Child::Leaf`).
                        children.push(Child::Leaf {
                            leaf: decode_leaf(r)?,
                            hash: None,
                        });
                    } else {
                        let hash = Hash::decode_from(r)?;
                        let version = decode_version(r)?;
                        if hash == EMPTY_SUBTREE {
                            return Err(DecodeError::InvalidValue {
                                what: "Child",
                                reason: "non-empty child with the empty hash",
                            });
                        }
                        children.push(Child::Internal { hash, version });
                    }
                }
                let n = InternalNode {
                    mask,
                    leaves,
                    children: children.into(),
                };
                if n.is_canonical() {
                    Ok(Node::Internal(n))
                } else {
                    Err(DecodeError::InvalidValue {
                        what: "InternalNode",
                        reason: "a subtree with fewer than two leaves must collapse",
                    })
                }
            }
            tag => Err(DecodeError::InvalidTag { what: "Node", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;
    use proptest::prelude::*;

    const B3: HashFunction = HashFunction::Blake3;

    fn h(b: u8) -> Hash {
        Hash::of(Domain::Test, &[b])
    }

    #[test]
    fn leaf_hash_is_of_parts() {
        for hf in HashFunction::ALL.iter().copied() {
            let k = KeyHash::of(hf, b"k");
            let v = value_hash(hf, b"v");
            assert_eq!(
                leaf_hash(hf, &k, &v),
                hf.hash_parts(Domain::SmtLeaf, &[k.hash().as_bytes(), v.as_bytes()])
            );
            assert_ne!(leaf_hash(hf, &k, &v), node_hash(hf, k.hash(), &v));
        }
        assert_ne!(KeyHash::of(B3, b"k"), KeyHash::of(HashFunction::Sm3, b"k"));
        let leaf = LeafNode {
            key_hash: KeyHash::of(B3, b"k"),
            value_hash: h(1),
            value_version: 0,
        };
        // A decoded leaf (no cached hash) hashes under the function asked.
        let decoded = Child::Leaf { leaf, hash: None };
        assert_eq!(decoded, Child::leaf(B3, leaf));
        for hf in HashFunction::ALL.iter().copied() {
            assert_eq!(decoded.hash(hf), Child::leaf(hf, leaf).hash(hf));
        }
    }

    #[test]
    fn bits_and_paths() {
        let mut b = [0u8; 32];
        b[0] = 0b1010_0000;
        b[31] = 1;
        let k = KeyHash::from_hash(Hash::from_bytes(b));
        assert!(k.bit(0) && !k.bit(1) && k.bit(2) && k.bit(255) && !k.bit(256));
        let p = NodePath::ROOT.child(true).child(false).child(true);
        assert_eq!(p, NodePath::of_key(&k, 3));
        assert!(p.contains(&k));
        assert_eq!(NodePath::of_key(&k, 256).bits(), &b);
        let other = KeyHash::from_hash(Hash::ZERO);
        assert_eq!(k.common_prefix_len(&other), 0);
        assert_eq!(k.common_prefix_len(&k), 256);
    }

    fn node() -> impl Strategy<Value = Node> {
        let child = prop_oneof![
            Just(Child::Empty),
            (any::<u8>(), any::<u8>(), any::<u64>()).prop_map(|(k, v, value_version)| {
                Child::leaf(
                    B3,
                    LeafNode {
                        key_hash: KeyHash::from_hash(h(k)),
                        value_hash: h(v),
                        value_version,
                    },
                )
            }),
            (1u8.., any::<u64>()).prop_map(|(b, version)| Child::Internal {
                hash: h(b),
                version
            }),
        ];
        prop_oneof![
            Just(Node::Empty),
            (any::<u8>(), any::<u8>(), any::<u64>()).prop_map(|(k, v, value_version)| {
                Node::Leaf(LeafNode {
                    key_hash: KeyHash::from_hash(h(k)),
                    value_hash: h(v),
                    value_version,
                })
            }),
            proptest::collection::vec(child, PAGE_SLOTS).prop_map(|cs| {
                let mut slots = [Child::Empty; PAGE_SLOTS];
                slots.copy_from_slice(&cs);
                Node::Internal(InternalNode::from_slots(&slots))
            }),
        ]
    }

    #[test]
    fn page_hash_is_the_binary_hash() {
        let l = |i: u8| {
            Child::leaf(
                B3,
                LeafNode {
                    key_hash: KeyHash::from_hash(h(i)),
                    value_hash: h(i),
                    value_version: 0,
                },
            )
        };
        let mut slots = [Child::Empty; PAGE_SLOTS];
        slots[0] = l(1);
        slots[1] = l(2);
        slots[9] = l(3);
        let page = InternalNode::from_slots(&slots);
        // Slots 0 and 1 split at the last level; slot 9 is alone in the
        // right half, so it collapses to depth 1.
        let mut left = node_hash(B3, &slots[0].hash(B3), &slots[1].hash(B3));
        for _ in 0..2 {
            left = node_hash(B3, &left, &EMPTY_SUBTREE);
        }
        assert_eq!(page.hash(B3), node_hash(B3, &left, &slots[9].hash(B3)));
        assert_eq!(page.slots(), slots);
        assert_eq!(page.child(9), slots[9]);
        assert_eq!(page.child(8), Child::Empty);
        // One internal slot: a chain of four binary nodes.
        let mut one = [Child::Empty; PAGE_SLOTS];
        one[15] = Child::Internal {
            hash: h(7),
            version: 3,
        };
        let mut expected = h(7);
        for _ in 0..4 {
            expected = node_hash(B3, &EMPTY_SUBTREE, &expected);
        }
        assert_eq!(InternalNode::from_slots(&one).hash(B3), expected);
    }

    #[test]
    fn version_varints_are_canonical() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut b = Vec::new();
            encode_version(v, &mut b);
            let mut r = Reader::new(&b);
            assert_eq!(decode_version(&mut r).unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
        for bad in [
            &[0x80, 0x00][..],
            &[0xff, 0x80, 0x00],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &[0x80; 11],
            &[0x80],
        ] {
            assert!(decode_version(&mut Reader::new(bad)).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn nibbles_and_nibble_paths() {
        let mut b = [0u8; 32];
        b[0] = 0xa5;
        b[31] = 0x3c;
        let k = KeyHash::from_hash(Hash::from_bytes(b));
        assert_eq!(
            (k.nibble(0), k.nibble(4), k.nibble(248), k.nibble(252)),
            (0xa, 5, 3, 0xc)
        );
        let p = NodePath::ROOT.nibble_child(0xa).nibble_child(5);
        assert_eq!(p, NodePath::of_key(&k, 8));
        assert_eq!(
            NodePath::ROOT.nibble_child(0xa),
            NodePath::ROOT
                .child(true)
                .child(false)
                .child(true)
                .child(false)
        );
    }

    proptest! {
        #[test]
        fn node_codec_round_trip_or_reject(n in node()) {
            let bytes = n.to_bytes();
            prop_assert!(bytes.len() <= MAX_NODE_LEN);
            match &n {
                Node::Internal(i) if !i.is_canonical() => {
                    prop_assert!(decode_exact::<Node>(&bytes, MAX_NODE_LEN).is_err());
                }
                _ => prop_assert_eq!(decode_exact::<Node>(&bytes, MAX_NODE_LEN).unwrap(), n.clone()),
            }
            for cut in 0..bytes.len() {
                prop_assert!(decode_exact::<Node>(&bytes[..cut], MAX_NODE_LEN).is_err());
            }
        }

        #[test]
        fn node_key_round_trip(k in any::<[u8; 32]>(), d in 0usize..=256, v in any::<u64>()) {
            let key = NodeKey { version: v, path: NodePath::of_key(&KeyHash::from_hash(Hash::from_bytes(k)), d) };
            let bytes = key.to_bytes();
            prop_assert_eq!(decode_exact::<NodeKey>(&bytes, 64).unwrap(), key);
        }

        #[test]
        fn node_decode_then_encode_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(n) = decode_exact::<Node>(&bytes, MAX_NODE_LEN) {
                prop_assert_eq!(n.to_bytes(), bytes);
            }
        }
    }

    #[test]
    fn path_rejects_stray_bits() {
        let mut bytes = 3u16.to_le_bytes().to_vec();
        bytes.push(0b1111_0000);
        assert!(decode_exact::<NodePath>(&bytes, 64).is_err());
        bytes[2] = 0b1110_0000;
        assert_eq!(
            decode_exact::<NodePath>(&bytes, 64).unwrap(),
            NodePath::ROOT.child(true).child(true).child(true)
        );
        let too_deep = 257u16.to_le_bytes();
        assert!(decode_exact::<NodePath>(&too_deep, 64).is_err());
    }
}
