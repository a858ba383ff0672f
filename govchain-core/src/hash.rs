//! The 32-byte [`Hash`](struct@Hash), the one table of hashing domains, and
//! the hash functions a crypto suite can choose.
//!
//! Every object that govchain hashes is hashed under a BLAKE3 *derived key*
//! that belongs to its kind ([`Domain`]). Two objects of different kinds can
//! therefore never hash alike, whatever their bytes: a transaction leaf can not
//! be passed off as an inner node, a vote as a header, and so on. The derived
//! keys are computed once, from the context strings in [`Domain::context`],
//! which are the only place where a domain is declared.
//!
//! [`Hash::of`], [`Hash::of_parts`] and [`Hash::node`] are BLAKE3, the hash
//! of the default suite. A chain of the national-standard suite hashes with
//! SM3 (GM/T 0004) instead, through [`HashFunction`] (or the
//! [`CryptoSuite`](crate::crypto::CryptoSuite) methods that delegate to it),
//! with the same domains and the same 32-byte [`Hash`](struct@Hash):
//!
//! | | BLAKE3 ([`HashFunction::Blake3`]) | SM3 ([`HashFunction::Sm3`]) |
//! |---|---|---|
//! | per-domain secret-free parameter | key `K_d = derive_key(context_d, "")` | prefix `P_d = SM3(context_d) ‖ 0³²`, one 64-byte block |
//! | `hash(d, data)` | `keyed_hash(K_d, data)` | `SM3(P_d ‖ data)` |
//! | `node(d, l, r)` | `keyed_hash(K_d, l ‖ r)`: one compression | `SM3(P_d ‖ l ‖ r)`: two compressions (data, padding) |
//!
//! **Why SM3 keeps "no two kinds of object ever hash alike".** SM3 has no
//! keyed mode, so the domain goes into the input as a prefix of fixed
//! length (64 bytes). Distinct domains have distinct context strings (a unit
//! test checks it), hence distinct prefixes unless SM3 itself collides on
//! the context strings. Since every prefix has the same length, the map
//! `(d, data) ↦ P_d ‖ data` is injective: two inputs of different domains
//! already differ within their first 64 bytes, and two of the same domain
//! differ exactly where their data differ. So a cross-domain collision
//! `SM3(P_a ‖ x) = SM3(P_b ‖ y)` with `a ≠ b` is an SM3 collision on two
//! distinct strings, which is exactly as hard as any SM3 collision. (A
//! variable-length prefix would need to be prefix-free for this argument; a
//! fixed-length one needs nothing more.) The prefix fills exactly one SM3
//! block, so the state after it is computed once per domain and cloned:
//! the domain separation costs no compression per hash.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::codec::{Decode, DecodeError, Encode, Reader};

/// Length of a [`Hash`](struct@Hash) in bytes.
pub const HASH_LEN: usize = 32;

/// A 32-byte digest: BLAKE3 under a per-domain key ([`Hash::of`]), or SM3
/// under a per-domain prefix for chains of the national-standard suite
/// ([`HashFunction::Sm3`]).
///
/// `Display` and `FromStr` use lower-case hex; `Debug` shows a short prefix.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash([u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash. It is used as "no parent" for a genesis block and as
    /// the placeholder of an empty subtree; it is never the output of hashing.
    pub const ZERO: Hash = Hash([0u8; HASH_LEN]);

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    /// The digest bytes, by value.
    pub const fn to_bytes(self) -> [u8; HASH_LEN] {
        self.0
    }

    /// Hashes `data` under `domain`'s derived key (BLAKE3).
    ///
    /// `Hash::of`, [`Hash::of_parts`] and [`Hash::node`] are BLAKE3 whatever
    /// the chain: use them only for hashes no chain commits to (test data,
    /// batch-verification seeds, local indexes). Everything a chain commits
    /// to hashes under the chain's suite, through [`HashFunction`] or
    /// [`CryptoSuite`](crate::crypto::CryptoSuite), which every such API
    /// takes explicitly.
    pub fn of(domain: Domain, data: &[u8]) -> Hash {
        Hash(*blake3::keyed_hash(domain.key(), data).as_bytes())
    }

    /// Hashes the concatenation of `parts` under `domain`'s derived key,
    /// without first copying them into one buffer.
    pub fn of_parts(domain: Domain, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_keyed(domain.key());
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    /// Hashes the 64-byte concatenation `left || right` under `domain`'s
    /// derived key: exactly one BLAKE3 compression.
    pub fn node(domain: Domain, left: &Hash, right: &Hash) -> Hash {
        let mut block = [0u8; 2 * HASH_LEN];
        block[..HASH_LEN].copy_from_slice(&left.0);
        block[HASH_LEN..].copy_from_slice(&right.0);
        Hash(*blake3::keyed_hash(domain.key(), &block).as_bytes())
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; HASH_LEN]> for Hash {
    fn from(bytes: [u8; HASH_LEN]) -> Self {
        Hash(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Why a hex string is not a [`Hash`](struct@Hash).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseHashError {
    /// The string is not 64 characters long.
    #[error("a hash is 64 hex characters, got {len}")]
    WrongLength {
        /// The length that was given.
        len: usize,
    },
    /// The string holds a character that is not lower- or upper-case hex.
    #[error("invalid hex character at position {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
}

impl FromStr for Hash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 2 * HASH_LEN {
            return Err(ParseHashError::WrongLength { len: s.len() });
        }
        let mut out = [0u8; HASH_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|e| match e {
            hex::FromHexError::InvalidHexCharacter { index, .. } => {
                ParseHashError::InvalidCharacter { position: index }
            }
            _ => ParseHashError::WrongLength { len: s.len() },
        })?;
        Ok(Hash(out))
    }
}

impl Encode for Hash {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Hash {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hash(r.array()?))
    }
}

macro_rules! domains {
    ($( $(#[$doc:meta])* $name:ident => $ctx:literal, )*) => {
        /// The kind of object being hashed. Each kind has its own BLAKE3
        /// derived key, declared here and nowhere else.
        ///
        /// Context strings follow BLAKE3's advice for `derive_key`: globally
        /// unique, hard-coded, and naming the application and a version.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Domain {
            $( $(#[$doc])* $name, )*
        }

        impl Domain {
            /// Every domain, in declaration order.
            pub const ALL: &'static [Domain] = &[$(Domain::$name,)*];

            /// The `derive_key` context string of this domain.
            pub const fn context(self) -> &'static str {
                match self { $( Domain::$name => $ctx, )* }
            }
        }
    };
}

domains! {
    /// A transaction, hashed whole to give its id.
    Transaction => "govchain v1 2026-11 transaction id",
    /// The signing message of a transaction (everything but the signature).
    TransactionSigning => "govchain v1 2026-11 transaction signing message",
    /// A leaf of the transaction tree (RFC 9162 `0x00` prefix role).
    TxLeaf => "govchain v1 2026-11 transaction tree leaf",
    /// An inner node of the transaction tree (RFC 9162 `0x01` prefix role).
    TxNode => "govchain v1 2026-11 transaction tree node",
    /// The transaction root: the tree hash bound to the leaf count.
    TxRoot => "govchain v1 2026-11 transaction tree root with count",
    /// A leaf of the chain-history log (a block hash).
    HistoryLeaf => "govchain v1 2026-11 history log leaf",
    /// An inner node of the chain-history log.
    HistoryNode => "govchain v1 2026-11 history log node",
    /// A block header, hashed to give the block hash.
    Header => "govchain v1 2026-11 block header",
    /// A sparse-Merkle-tree leaf (key hash and value hash).
    SmtLeaf => "govchain v1 2026-11 sparse merkle leaf",
    /// A sparse-Merkle-tree inner node.
    SmtNode => "govchain v1 2026-11 sparse merkle node",
    /// A sparse-Merkle-tree value, hashed before it is placed in a leaf.
    SmtValue => "govchain v1 2026-11 sparse merkle value",
    /// An application key, hashed to its 256-bit position in the tree.
    SmtKey => "govchain v1 2026-11 sparse merkle key",
    /// A validator set.
    ValidatorSet => "govchain v1 2026-11 validator set",
    /// The canonical vote message signed by validators.
    Vote => "govchain v1 2026-11 consensus vote",
    /// A consensus proposal.
    Proposal => "govchain v1 2026-11 consensus proposal",
    /// A receipt of an executed transaction.
    Receipt => "govchain v1 2026-11 transaction receipt",
    /// A selectively disclosable claim (identity).
    Disclosure => "govchain v1 2026-11 identity disclosure",
    /// Batch-verification coefficients seed, derived from the whole batch.
    BatchSeed => "govchain v1 2026-11 signature batch seed",
    /// The statement a new validator key signs to prove possession when a
    /// key rotation is proposed (chain, old key, new key).
    KeyPossession => "govchain v1 2026-11 key rotation proof of possession",
    /// The statement a department's key of a second crypto suite signs to
    /// prove possession when it is registered (main chain, department, key).
    DepartmentKeyPossession => "govchain v1 2026-11 department key proof of possession",
    /// Domain for tests and examples that need an arbitrary keyed hash.
    Test => "govchain v1 2026-11 test vectors only",
}

/// A hash function of a crypto suite. Both give a 32-byte
/// [`Hash`](struct@Hash) and separate the same [`Domain`]s (see the [module
/// docs](self) for how, and why SM3's prefixes are as good as BLAKE3's
/// keys).
///
/// The byte value is a stable id (suites name their hash function by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashFunction {
    /// BLAKE3 keyed by a per-domain derived key: exactly [`Hash::of`],
    /// [`Hash::of_parts`] and [`Hash::node`].
    Blake3 = 1,
    /// SM3 (GM/T 0004-2012, GB/T 32905-2016) of a per-domain 64-byte prefix
    /// followed by the data.
    Sm3 = 2,
}

impl HashFunction {
    /// Every hash function, in id order.
    pub const ALL: &'static [HashFunction] = &[HashFunction::Blake3, HashFunction::Sm3];

    /// The stable id of this hash function.
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// A stable human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            HashFunction::Blake3 => "blake3",
            HashFunction::Sm3 => "sm3",
        }
    }

    /// Hashes `data` under `domain`.
    #[inline]
    pub fn hash(self, domain: Domain, data: &[u8]) -> Hash {
        match self {
            HashFunction::Blake3 => Hash::of(domain, data),
            HashFunction::Sm3 => sm3_finish(sm3_hasher(domain), &[data]),
        }
    }

    /// Hashes the concatenation of `parts` under `domain`, without first
    /// copying them into one buffer.
    #[inline]
    pub fn hash_parts(self, domain: Domain, parts: &[&[u8]]) -> Hash {
        match self {
            HashFunction::Blake3 => Hash::of_parts(domain, parts),
            HashFunction::Sm3 => sm3_finish(sm3_hasher(domain), parts),
        }
    }

    /// Hashes the 64-byte concatenation `left || right` under `domain` (a
    /// Merkle inner node).
    #[inline]
    pub fn hash_node(self, domain: Domain, left: &Hash, right: &Hash) -> Hash {
        match self {
            HashFunction::Blake3 => Hash::node(domain, left, right),
            HashFunction::Sm3 => sm3_finish(sm3_hasher(domain), &[&left.0, &right.0]),
        }
    }
}

impl HashFunction {
    /// Hashes each pair `inputs[i] = [left, right]` as
    /// [`hash_node`](Self::hash_node) into `out[i]`, for the first
    /// `min(inputs.len(), out.len())` entries. BLAKE3 goes through the
    /// multi-lane compression ([`crate::lanes::hash_node_pairs`]); SM3 hashes
    /// one node at a time.
    pub fn hash_node_pairs(self, domain: Domain, inputs: &[[Hash; 2]], out: &mut [Hash]) {
        match self {
            HashFunction::Blake3 => crate::lanes::hash_node_pairs(domain, inputs, out),
            HashFunction::Sm3 => {
                for (pair, slot) in inputs.iter().zip(out.iter_mut()) {
                    *slot = self.hash_node(domain, &pair[0], &pair[1]);
                }
            }
        }
    }

    /// Hashes one level of an RFC 9162 tree into `parents` (cleared first):
    /// pairs of children become parents and an odd last child is promoted
    /// unchanged (see [`crate::lanes::hash_level`]).
    pub fn hash_level(self, domain: Domain, children: &[Hash], parents: &mut Vec<Hash>) {
        match self {
            HashFunction::Blake3 => crate::lanes::hash_level(domain, children, parents),
            HashFunction::Sm3 => {
                let (pairs, odd) = children.as_chunks::<2>();
                parents.clear();
                parents.extend(pairs.iter().map(|p| self.hash_node(domain, &p[0], &p[1])));
                parents.extend_from_slice(odd);
            }
        }
    }

    /// Reduces `level` in place, level by level with odd promotion, to its
    /// RFC 9162 tree hash, or `None` if it is empty; `level` is clobbered
    /// (see [`crate::lanes::reduce_in_place`]).
    pub fn reduce_in_place(self, domain: Domain, level: &mut [Hash]) -> Option<Hash> {
        match self {
            HashFunction::Blake3 => crate::lanes::reduce_in_place(domain, level),
            HashFunction::Sm3 => {
                let mut len = level.len();
                while len > 1 {
                    let pairs = len / 2;
                    for i in 0..pairs {
                        level[i] = self.hash_node(domain, &level[2 * i], &level[2 * i + 1]);
                    }
                    if len % 2 == 1 {
                        level[pairs] = level[len - 1];
                    }
                    len = len.div_ceil(2);
                }
                level.first().copied()
            }
        }
    }
}

/// The 64-byte SM3 prefix of `domain`: `SM3(context) ‖ 0³²`.
pub fn sm3_domain_prefix(domain: Domain) -> [u8; 64] {
    use sm3::Digest;
    let mut prefix = [0u8; 64];
    prefix[..HASH_LEN].copy_from_slice(&sm3::Sm3::digest(domain.context().as_bytes()));
    prefix
}

/// An SM3 hasher that has absorbed `domain`'s prefix (one full block,
/// computed once per process and cloned).
fn sm3_hasher(domain: Domain) -> sm3::Sm3 {
    use sm3::Digest;
    static HASHERS: OnceLock<Vec<sm3::Sm3>> = OnceLock::new();
    let hashers = HASHERS.get_or_init(|| {
        Domain::ALL
            .iter()
            .map(|d| sm3::Sm3::new_with_prefix(sm3_domain_prefix(*d)))
            .collect()
    });
    // `ALL` lists every variant in declaration order (see `Domain::key`).
    hashers[domain as usize].clone()
}

fn sm3_finish(mut hasher: sm3::Sm3, parts: &[&[u8]]) -> Hash {
    use sm3::Digest;
    for part in parts {
        hasher.update(part);
    }
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(&hasher.finalize());
    Hash(out)
}

impl Domain {
    /// The 32-byte BLAKE3 key of this domain, derived once per process.
    pub fn key(self) -> &'static [u8; 32] {
        static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            Domain::ALL
                .iter()
                .map(|d| blake3::derive_key(d.context(), &[]))
                .collect()
        });
        // `ALL` lists every variant in declaration order, so the index of a
        // variant is its discriminant and always in range.
        &keys[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn domains_are_distinct() {
        let contexts: HashSet<_> = Domain::ALL.iter().map(|d| d.context()).collect();
        assert_eq!(contexts.len(), Domain::ALL.len());
        let keys: HashSet<_> = Domain::ALL.iter().map(|d| *d.key()).collect();
        assert_eq!(keys.len(), Domain::ALL.len());
        for (i, d) in Domain::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i, "ALL must be in declaration order");
        }
    }

    #[test]
    fn same_bytes_different_domains_differ() {
        let data = [7u8; 64];
        let all: HashSet<_> = Domain::ALL.iter().map(|d| Hash::of(*d, &data)).collect();
        assert_eq!(all.len(), Domain::ALL.len());
    }

    #[test]
    fn node_is_keyed_hash_of_concatenation() {
        let l = Hash::of(Domain::Test, b"l");
        let r = Hash::of(Domain::Test, b"r");
        let mut cat = l.to_bytes().to_vec();
        cat.extend_from_slice(r.as_bytes());
        assert_eq!(
            Hash::node(Domain::TxNode, &l, &r),
            Hash::of(Domain::TxNode, &cat)
        );
        assert_eq!(
            Hash::of_parts(Domain::TxNode, &[l.as_bytes(), r.as_bytes()]),
            Hash::of(Domain::TxNode, &cat)
        );
    }

    /// The BLAKE3 arm is exactly `Hash::of`/`of_parts`/`node`, which are
    /// `keyed_hash` under `derive_key(context)`, as before the SM3 arm.
    #[test]
    fn blake3_arm_is_unchanged() {
        let l = Hash::of(Domain::Test, b"l");
        let r = Hash::of(Domain::Test, b"r");
        for d in Domain::ALL {
            let b = HashFunction::Blake3;
            assert_eq!(b.hash(*d, b"abc"), Hash::of(*d, b"abc"));
            assert_eq!(
                b.hash_parts(*d, &[b"a", b"bc"]),
                Hash::of_parts(*d, &[b"a", b"bc"])
            );
            assert_eq!(b.hash_node(*d, &l, &r), Hash::node(*d, &l, &r));
            assert_eq!(
                Hash::of(*d, b"abc"),
                Hash::from_bytes(*blake3::keyed_hash(d.key(), b"abc").as_bytes())
            );
            assert_eq!(*d.key(), blake3::derive_key(d.context(), &[]));
        }
    }

    /// The SM3 arm is `SM3(SM3(context) ‖ 0³² ‖ data)`, computed here from
    /// scratch; parts and nodes hash their concatenation.
    #[test]
    fn sm3_arm_is_the_prefixed_digest() {
        use sm3::Digest;
        let sm3 = HashFunction::Sm3;
        let l = sm3.hash(Domain::Test, b"l");
        let r = sm3.hash(Domain::Test, b"r");
        let mut cat = l.to_bytes().to_vec();
        cat.extend_from_slice(r.as_bytes());
        for d in Domain::ALL {
            for data in [&b""[..], b"abc", &[7u8; 64], &[9u8; 200]] {
                let mut input = sm3::Sm3::digest(d.context().as_bytes()).to_vec();
                input.extend_from_slice(&[0u8; 32]);
                input.extend_from_slice(data);
                let direct = sm3::Sm3::digest(&input);
                assert_eq!(sm3.hash(*d, data).as_bytes()[..], direct[..]);
                let (a, b) = data.split_at(data.len() / 2);
                assert_eq!(sm3.hash_parts(*d, &[a, b]), sm3.hash(*d, data));
            }
            assert_eq!(sm3.hash_node(*d, &l, &r), sm3.hash(*d, &cat));
            assert_ne!(sm3.hash(*d, b"abc"), HashFunction::Blake3.hash(*d, b"abc"));
        }
    }

    /// The level helpers equal scalar node hashing under both functions,
    /// for every length around the lane widths.
    #[test]
    fn level_helpers_match_scalar_nodes() {
        for f in HashFunction::ALL {
            for n in 0..40usize {
                let children: Vec<Hash> = (0..n as u64)
                    .map(|i| Hash::of(Domain::Test, &i.to_le_bytes()))
                    .collect();
                let (pairs, odd) = children.as_chunks::<2>();
                let mut out = vec![Hash::ZERO; pairs.len()];
                f.hash_node_pairs(Domain::TxNode, pairs, &mut out);
                let mut expected: Vec<Hash> = pairs
                    .iter()
                    .map(|p| f.hash_node(Domain::TxNode, &p[0], &p[1]))
                    .collect();
                assert_eq!(out, expected, "{f:?} n={n}");
                expected.extend_from_slice(odd);
                let mut parents = Vec::new();
                f.hash_level(Domain::TxNode, &children, &mut parents);
                assert_eq!(parents, expected, "{f:?} n={n}");
                let mut level = children.clone();
                let mut reference = children.clone();
                while reference.len() > 1 {
                    let mut up = Vec::new();
                    f.hash_level(Domain::TxNode, &reference, &mut up);
                    reference = up;
                }
                assert_eq!(
                    f.reduce_in_place(Domain::TxNode, &mut level),
                    reference.first().copied(),
                    "{f:?} n={n}"
                );
            }
        }
    }

    #[test]
    fn sm3_domains_are_distinct() {
        let prefixes: HashSet<_> = Domain::ALL.iter().map(|d| sm3_domain_prefix(*d)).collect();
        assert_eq!(prefixes.len(), Domain::ALL.len());
        let data = [7u8; 64];
        let all: HashSet<_> = Domain::ALL
            .iter()
            .map(|d| HashFunction::Sm3.hash(*d, &data))
            .collect();
        assert_eq!(all.len(), Domain::ALL.len());
        let l = Hash::from_bytes([1; 32]);
        let nodes: HashSet<_> = Domain::ALL
            .iter()
            .map(|d| HashFunction::Sm3.hash_node(*d, &l, &l))
            .collect();
        assert_eq!(nodes.len(), Domain::ALL.len());
        assert_eq!(HashFunction::Sm3.id(), 2);
        assert_eq!(HashFunction::Blake3.id(), 1);
        assert_eq!(HashFunction::Sm3.name(), "sm3");
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash::of(Domain::Test, b"x");
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<Hash>().unwrap(), h);
        assert_eq!(s.to_uppercase().parse::<Hash>().unwrap(), h);
        assert_eq!(
            "ab".parse::<Hash>(),
            Err(ParseHashError::WrongLength { len: 2 })
        );
        let mut bad = s.clone();
        bad.replace_range(10..11, "g");
        assert_eq!(
            bad.parse::<Hash>(),
            Err(ParseHashError::InvalidCharacter { position: 10 })
        );
    }
}
