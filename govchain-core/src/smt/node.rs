//! Keys, paths and the stored node types of the sparse Merkle tree, with
//! their canonical encodings.

use std::fmt;

use crate::codec::{Decode, DecodeError, Encode, Reader};
use crate::hash::{Domain, Hash};

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
    /// The position of `app_key`: `Hash::of(Domain::SmtKey, app_key)`.
    pub fn of(app_key: &[u8]) -> KeyHash {
        KeyHash(Hash::of(Domain::SmtKey, app_key))
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

/// The hash of a leaf: `BLAKE3-keyed(SmtLeaf, key_hash || value_hash)`, one
/// compression. Its domain differs from [`node_hash`]'s, so a leaf can never
/// be passed off as an inner node or the other way round.
#[inline]
pub fn leaf_hash(key: &KeyHash, value_hash: &Hash) -> Hash {
    Hash::node(Domain::SmtLeaf, &key.0, value_hash)
}

/// The hash of a value: `BLAKE3-keyed(SmtValue, value)`.
#[inline]
pub fn value_hash(value: &[u8]) -> Hash {
    Hash::of(Domain::SmtValue, value)
}

/// The hash of an inner node: `BLAKE3-keyed(SmtNode, left || right)`, where
/// an empty child is [`EMPTY_SUBTREE`].
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::node(Domain::SmtNode, left, right)
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

/// A reference from an inner node to one of its children.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Child {
    /// An empty subtree ([`EMPTY_SUBTREE`]).
    Empty,
    /// A leaf, stored under `NodeKey { version, path: parent.child(bit) }`.
    Leaf {
        /// The leaf's hash.
        hash: Hash,
        /// The version that wrote it.
        version: Version,
    },
    /// An inner node, stored under `NodeKey { version, path: parent.child(bit) }`.
    Internal {
        /// The node's hash.
        hash: Hash,
        /// The version that wrote it.
        version: Version,
    },
}

impl Child {
    /// The subtree's hash ([`EMPTY_SUBTREE`] when empty).
    #[inline]
    pub fn hash(&self) -> Hash {
        match self {
            Child::Empty => EMPTY_SUBTREE,
            Child::Leaf { hash, .. } | Child::Internal { hash, .. } => *hash,
        }
    }

    /// Whether the child is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Child::Empty)
    }
}

impl Encode for Child {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Child::Empty => out.push(0),
            Child::Leaf { hash, version } => {
                out.push(1);
                hash.encode_to(out);
                version.encode_to(out);
            }
            Child::Internal { hash, version } => {
                out.push(2);
                hash.encode_to(out);
                version.encode_to(out);
            }
        }
    }
}

impl Decode for Child {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        if tag == 0 {
            return Ok(Child::Empty);
        }
        let hash = Hash::decode_from(r)?;
        let version = Version::decode_from(r)?;
        if hash == EMPTY_SUBTREE {
            return Err(DecodeError::InvalidValue {
                what: "Child",
                reason: "non-empty child with the empty hash",
            });
        }
        match tag {
            1 => Ok(Child::Leaf { hash, version }),
            2 => Ok(Child::Internal { hash, version }),
            tag => Err(DecodeError::InvalidTag { what: "Child", tag }),
        }
    }
}

/// A stored leaf: a key and the hash of its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
    /// The leaf's hash, [`leaf_hash`].
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.key_hash, &self.value_hash)
    }
}

/// A stored inner node: its two children. Its hash is
/// `node_hash(left.hash(), right.hash())`.
///
/// Canonical form (Jellyfish collapsing): an inner node roots a subtree of at
/// least two leaves, so at least one child is an inner node or both are
/// non-empty. `(Empty, Empty)`, `(Empty, Leaf)` and `(Leaf, Empty)` are
/// rejected by the decoder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InternalNode {
    /// The child for bit 0.
    pub left: Child,
    /// The child for bit 1.
    pub right: Child,
}

impl InternalNode {
    /// The node's hash.
    pub fn hash(&self) -> Hash {
        node_hash(&self.left.hash(), &self.right.hash())
    }

    /// The child on side `right`.
    pub fn child(&self, right: bool) -> &Child {
        if right {
            &self.right
        } else {
            &self.left
        }
    }

    /// Whether the pair of children is allowed by the collapsing rule.
    pub fn is_canonical(&self) -> bool {
        !matches!(
            (self.left, self.right),
            (Child::Empty, Child::Empty)
                | (Child::Empty, Child::Leaf { .. })
                | (Child::Leaf { .. }, Child::Empty)
        )
    }
}

/// A node as stored by a [`NodeStore`](super::NodeStore).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Node {
    /// The empty tree; only ever stored as a root.
    Empty,
    /// A leaf.
    Leaf(LeafNode),
    /// An inner node.
    Internal(InternalNode),
}

impl Node {
    /// The node's hash ([`EMPTY_SUBTREE`] for [`Node::Empty`]).
    pub fn hash(&self) -> Hash {
        match self {
            Node::Empty => EMPTY_SUBTREE,
            Node::Leaf(l) => l.hash(),
            Node::Internal(n) => n.hash(),
        }
    }
}

/// Largest encoding of a [`Node`], in bytes.
pub const MAX_NODE_LEN: usize = 1 + 2 * (1 + 32 + 8);

impl Encode for Node {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Node::Empty => out.push(0),
            Node::Leaf(l) => {
                out.push(1);
                l.key_hash.encode_to(out);
                l.value_hash.encode_to(out);
                l.value_version.encode_to(out);
            }
            Node::Internal(n) => {
                out.push(2);
                n.left.encode_to(out);
                n.right.encode_to(out);
            }
        }
    }
}

impl Decode for Node {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Node::Empty),
            1 => Ok(Node::Leaf(LeafNode {
                key_hash: KeyHash::decode_from(r)?,
                value_hash: Hash::decode_from(r)?,
                value_version: Version::decode_from(r)?,
            })),
            2 => {
                let n = InternalNode {
                    left: Child::decode_from(r)?,
                    right: Child::decode_from(r)?,
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

    fn h(b: u8) -> Hash {
        Hash::of(Domain::Test, &[b])
    }

    #[test]
    fn leaf_hash_is_of_parts() {
        let k = KeyHash::of(b"k");
        let v = value_hash(b"v");
        assert_eq!(
            leaf_hash(&k, &v),
            Hash::of_parts(Domain::SmtLeaf, &[k.hash().as_bytes(), v.as_bytes()])
        );
        assert_ne!(leaf_hash(&k, &v), node_hash(k.hash(), &v));
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
            (1u8.., any::<u64>()).prop_map(|(b, version)| Child::Leaf {
                hash: h(b),
                version
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
            (child.clone(), child)
                .prop_map(|(left, right)| Node::Internal(InternalNode { left, right })),
        ]
    }

    proptest! {
        #[test]
        fn node_codec_round_trip_or_reject(n in node()) {
            let bytes = n.to_bytes();
            prop_assert!(bytes.len() <= MAX_NODE_LEN);
            match n {
                Node::Internal(i) if !i.is_canonical() => {
                    prop_assert!(decode_exact::<Node>(&bytes, MAX_NODE_LEN).is_err());
                }
                _ => prop_assert_eq!(decode_exact::<Node>(&bytes, MAX_NODE_LEN).unwrap(), n),
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
        fn node_decode_then_encode_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
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
