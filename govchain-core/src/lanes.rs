//! Multi-lane BLAKE3 compression of 64-byte Merkle nodes.
//!
//! An inner Merkle node is `Hash::node(domain, left, right)`: the BLAKE3 keyed
//! hash of exactly 64 bytes, which is one call of the BLAKE3 compression
//! function on a single block that is both the first and last block of the
//! only chunk and the root of the BLAKE3 tree. Nodes of one tree level are
//! independent of each other, so [`LANES`] of them are compressed at once
//! here: each 32-bit state word becomes a `wide` vector (`u32x8` on AVX2,
//! `u32x4` elsewhere) whose lane `i` belongs to node `i` (the "transposed"
//! layout of the BLAKE3 paper, §5.3).
//!
//! The compression follows the BLAKE3 specification (§2.2 and §2.3 of the
//! BLAKE3 paper): chaining value = the domain's 32-byte key, counter 0, block
//! length 64, flags `CHUNK_START | CHUNK_END | ROOT | KEYED_HASH`, seven rounds
//! of the column and diagonal `G` steps with the fixed message permutation,
//! and the first eight output words `v[i] ^ v[i + 8]`. The result is
//! bit-identical to `blake3::keyed_hash(domain.key(), left || right)`; the
//! tests check that on every domain and on random inputs.
//!
//! Everything is safe Rust: `wide` picks SSE2, AVX2 or portable code at
//! compile time from the target features, so a build with
//! `-C target-cpu=native` on an AVX2 machine runs each vector operation on
//! all eight lanes at once.
//!
//! The level helpers ([`hash_level`], [`hash_level_in_place`]) hash one level
//! of an RFC 9162 tree (§2.1.1): pairs of children become parents, and an odd
//! last child is promoted unchanged, never duplicated.
//!
//! ```
//! use govchain_core::hash::{Domain, Hash};
//! use govchain_core::lanes::hash_node_pairs;
//! let pairs: Vec<[Hash; 2]> = (0u8..10)
//!     .map(|i| [Hash::of(Domain::Test, &[i]), Hash::of(Domain::Test, &[i, i])])
//!     .collect();
//! let mut out = vec![Hash::ZERO; pairs.len()];
//! hash_node_pairs(Domain::TxNode, &pairs, &mut out);
//! for (pair, h) in pairs.iter().zip(&out) {
//!     assert_eq!(*h, Hash::node(Domain::TxNode, &pair[0], &pair[1]));
//! }
//! ```

use crate::hash::{Domain, Hash, HASH_LEN};

/// How many 64-byte nodes one multi-lane compression hashes together: 8
/// when the build targets AVX2 (one `u32x8` per state word), 4 otherwise (one
/// `u32x4`, the SSE2/NEON width). Measured on an AVX2 machine: eight lanes in
/// a default (SSE2) build split into two 128-bit halves and spill more
/// registers than they gain, so four lanes are faster there.
pub const LANES: usize = vector::LANES;

/// Up to this many nodes, a partial batch is hashed one node at a time instead
/// of in padded lanes (measured: one padded multi-lane call costs about as
/// much as `LANES / 2` scalar keyed hashes).
const SCALAR_TAIL_MAX: usize = LANES / 4;

/// BLAKE3 initialisation vector (the SHA-256 IV), BLAKE3 paper §2.2.
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];

/// Domain flags, BLAKE3 paper Table 3.
const CHUNK_START: u32 = 1 << 0;
const CHUNK_END: u32 = 1 << 1;
const ROOT: u32 = 1 << 3;
const KEYED_HASH: u32 = 1 << 4;

/// Flags of the single block of a 64-byte keyed hash.
const NODE_FLAGS: u32 = CHUNK_START | CHUNK_END | ROOT | KEYED_HASH;

/// Length of the single block, in bytes.
const BLOCK_LEN: u32 = 64;

/// The message word permutation applied after every round, BLAKE3 paper
/// Table 2.
const MSG_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/// For each of the seven rounds, which original message word sits at each
/// position: round `r` uses `m[SCHEDULE[r][i]]` where the reference code
/// permutes the words in place. Precomputing it lets the compiler address the
/// message vectors directly.
const SCHEDULE: [[usize; 16]; 7] = schedule();

const fn schedule() -> [[usize; 16]; 7] {
    let mut s = [[0usize; 16]; 7];
    let mut i = 0;
    while i < 16 {
        s[0][i] = i;
        i += 1;
    }
    let mut r = 1;
    while r < 7 {
        let mut i = 0;
        while i < 16 {
            s[r][i] = s[r - 1][MSG_PERMUTATION[i]];
            i += 1;
        }
        r += 1;
    }
    s
}

/// The lane vector type and the transposes between node bytes and lanes.
#[cfg(target_feature = "avx2")]
mod vector {
    use super::{Hash, HASH_LEN};
    use wide::u32x8;

    /// One state word of every lane.
    pub(super) type V = u32x8;
    /// Lanes per vector.
    pub(super) const LANES: usize = 8;

    /// The eight little-endian words of a hash, as one vector.
    #[inline(always)]
    fn hash_row(h: &Hash) -> V {
        let mut w = [0u32; 8];
        for (word, bytes) in w.iter_mut().zip(h.as_bytes().as_chunks::<4>().0) {
            *word = u32::from_le_bytes(*bytes);
        }
        V::from(w)
    }

    /// Message vectors: `m[j]` holds word `j` of every node.
    #[inline(always)]
    pub(super) fn load(pairs: &[[Hash; 2]; LANES]) -> [V; 16] {
        let mut lo = [V::ZERO; 8];
        let mut hi = [V::ZERO; 8];
        for ((pair, l), h) in pairs.iter().zip(lo.iter_mut()).zip(hi.iter_mut()) {
            *l = hash_row(&pair[0]);
            *h = hash_row(&pair[1]);
        }
        let lo = V::transpose(lo);
        let hi = V::transpose(hi);
        [
            lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7], hi[0], hi[1], hi[2], hi[3],
            hi[4], hi[5], hi[6], hi[7],
        ]
    }

    /// The output hashes from the eight output word vectors.
    #[inline(always)]
    pub(super) fn store(words: [V; 8]) -> [Hash; LANES] {
        V::transpose(words).map(|row| {
            let mut out = [0u8; HASH_LEN];
            for (bytes, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(row.to_array()) {
                *bytes = word.to_le_bytes();
            }
            Hash::from_bytes(out)
        })
    }
}

/// The lane vector type and the transposes between node bytes and lanes.
#[cfg(not(target_feature = "avx2"))]
mod vector {
    use super::{Hash, HASH_LEN};
    use wide::u32x4;

    /// One state word of every lane.
    pub(super) type V = u32x4;
    /// Lanes per vector.
    pub(super) const LANES: usize = 4;

    /// Words `4q..4q + 4` of a hash, as one vector.
    #[inline(always)]
    fn quarter(h: &Hash, q: usize) -> V {
        let mut w = [0u32; 4];
        let bytes = &h.as_bytes()[16 * q..16 * q + 16];
        for (word, b) in w.iter_mut().zip(bytes.as_chunks::<4>().0) {
            *word = u32::from_le_bytes(*b);
        }
        V::from(w)
    }

    /// Message vectors: `m[j]` holds word `j` of every node.
    #[inline(always)]
    pub(super) fn load(pairs: &[[Hash; 2]; LANES]) -> [V; 16] {
        let mut m = [V::ZERO; 16];
        for (q, dst) in m.as_chunks_mut::<4>().0.iter_mut().enumerate() {
            let (half, part) = (q / 2, q % 2);
            *dst = V::transpose(pairs.map(|p| quarter(&p[half], part)));
        }
        m
    }

    /// The output hashes from the eight output word vectors.
    #[inline(always)]
    pub(super) fn store(words: [V; 8]) -> [Hash; LANES] {
        let lo = V::transpose([words[0], words[1], words[2], words[3]]);
        let hi = V::transpose([words[4], words[5], words[6], words[7]]);
        let mut out = [[0u8; HASH_LEN]; LANES];
        for ((bytes, l), h) in out.iter_mut().zip(lo).zip(hi) {
            let (words_lo, words_hi) = (l.to_array(), h.to_array());
            for (dst, word) in bytes
                .as_chunks_mut::<4>()
                .0
                .iter_mut()
                .zip(words_lo.iter().chain(&words_hi))
            {
                *dst = word.to_le_bytes();
            }
        }
        out.map(Hash::from_bytes)
    }
}

use vector::V;

/// Rotates every lane right by `N` bits (shift/or; the compiler turns the
/// 16- and 8-bit cases into byte shuffles where the target has them).
#[inline(always)]
fn rotr<const N: u32>(x: V) -> V {
    (x >> N) | (x << (32 - N))
}

/// The BLAKE3 quarter-round `G` on state words `a, b, c, d` with message
/// words `x, y` (BLAKE3 paper §2.2).
#[inline(always)]
fn g(v: &mut [V; 16], a: usize, b: usize, c: usize, d: usize, x: V, y: V) {
    v[a] = v[a] + v[b] + x;
    v[d] = rotr::<16>(v[d] ^ v[a]);
    v[c] += v[d];
    v[b] = rotr::<12>(v[b] ^ v[c]);
    v[a] = v[a] + v[b] + y;
    v[d] = rotr::<8>(v[d] ^ v[a]);
    v[c] += v[d];
    v[b] = rotr::<7>(v[b] ^ v[c]);
}

/// Round `R`: the four column steps, then the four diagonal steps, on the
/// message words of that round's schedule. `R` is a constant so that every
/// message index is resolved at compile time.
#[inline(always)]
fn round<const R: usize>(v: &mut [V; 16], m: &[V; 16]) {
    let s = &SCHEDULE[R];
    g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/// The eight key words of `domain`, little-endian.
#[inline]
fn key_words(domain: Domain) -> [u32; 8] {
    let key = domain.key();
    let mut words = [0u32; 8];
    for (w, bytes) in words.iter_mut().zip(key.as_chunks::<4>().0) {
        *w = u32::from_le_bytes(*bytes);
    }
    words
}

/// Compresses [`LANES`] 64-byte nodes under one key: entry `i` of the result
/// is `Hash::node(domain, &pairs[i][0], &pairs[i][1])`.
#[inline(never)]
fn compress_lanes(key: &[u32; 8], pairs: &[[Hash; 2]; LANES]) -> [Hash; LANES] {
    let m = vector::load(pairs);
    let mut v: [V; 16] = [
        V::splat(key[0]),
        V::splat(key[1]),
        V::splat(key[2]),
        V::splat(key[3]),
        V::splat(key[4]),
        V::splat(key[5]),
        V::splat(key[6]),
        V::splat(key[7]),
        V::splat(IV[0]),
        V::splat(IV[1]),
        V::splat(IV[2]),
        V::splat(IV[3]),
        // Counter low and high words: a single chunk has counter 0.
        V::ZERO,
        V::ZERO,
        V::splat(BLOCK_LEN),
        V::splat(NODE_FLAGS),
    ];
    round::<0>(&mut v, &m);
    round::<1>(&mut v, &m);
    round::<2>(&mut v, &m);
    round::<3>(&mut v, &m);
    round::<4>(&mut v, &m);
    round::<5>(&mut v, &m);
    round::<6>(&mut v, &m);
    // Output words 0..8 of the root block: v[i] ^ v[i + 8] (paper §2.2).
    vector::store([
        v[0] ^ v[8],
        v[1] ^ v[9],
        v[2] ^ v[10],
        v[3] ^ v[11],
        v[4] ^ v[12],
        v[5] ^ v[13],
        v[6] ^ v[14],
        v[7] ^ v[15],
    ])
}

/// Hashes a partial batch (fewer than [`LANES`] nodes).
fn hash_tail(domain: Domain, key: &[u32; 8], inputs: &[[Hash; 2]], out: &mut [Hash]) {
    if inputs.len() <= SCALAR_TAIL_MAX {
        for (pair, slot) in inputs.iter().zip(out.iter_mut()) {
            *slot = Hash::node(domain, &pair[0], &pair[1]);
        }
        return;
    }
    let mut block = [[Hash::ZERO; 2]; LANES];
    for (dst, src) in block.iter_mut().zip(inputs) {
        *dst = *src;
    }
    let hashed = compress_lanes(key, &block);
    for (slot, h) in out.iter_mut().zip(hashed).take(inputs.len()) {
        *slot = h;
    }
}

/// Hashes each pair `inputs[i] = [left, right]` as
/// `Hash::node(domain, &left, &right)` into `out[i]`.
///
/// Only the first `min(inputs.len(), out.len())` entries are written.
/// Full groups of [`LANES`] pairs go through the multi-lane compression; the
/// result is bit-identical to the scalar `Hash::node`.
pub fn hash_node_pairs(domain: Domain, inputs: &[[Hash; 2]], out: &mut [Hash]) {
    let n = inputs.len().min(out.len());
    let (inputs, out) = (&inputs[..n], &mut out[..n]);
    let key = key_words(domain);
    let (in_blocks, in_tail) = inputs.as_chunks::<LANES>();
    let (out_blocks, out_tail) = out.as_chunks_mut::<LANES>();
    for (block, dst) in in_blocks.iter().zip(out_blocks.iter_mut()) {
        *dst = compress_lanes(&key, block);
    }
    hash_tail(domain, &key, in_tail, out_tail);
}

/// Hashes one level of an RFC 9162 tree (§2.1.1) into `parents`, which is
/// cleared first: `parents[i] = Hash::node(domain, children[2i],
/// children[2i + 1])`, and an odd last child is appended unchanged (promoted,
/// never duplicated).
///
/// `parents` ends with `children.len().div_ceil(2)` entries.
pub fn hash_level(domain: Domain, children: &[Hash], parents: &mut Vec<Hash>) {
    let (pairs, odd) = children.as_chunks::<2>();
    parents.clear();
    parents.resize(pairs.len(), Hash::ZERO);
    hash_node_pairs(domain, pairs, parents);
    parents.extend_from_slice(odd);
}

/// Like [`hash_level`], but writes the parents over the front of `level` and
/// returns how many there are (`level.len().div_ceil(2)`). The entries after
/// that are left unspecified.
pub fn hash_level_in_place(domain: Domain, level: &mut [Hash]) -> usize {
    let n = level.len();
    let pairs = n / 2;
    let key = key_words(domain);
    let mut done = 0;
    // With L = LANES, group `g` reads children [2gL, 2gL + 2L) and writes
    // parents [gL, gL + L); it copies all its children before writing, and
    // later groups only read positions at or past 2(g + 1)L, so nothing is
    // overwritten before it is used.
    while done + LANES <= pairs {
        let start = 2 * done;
        let block = {
            let (chunk, _) = level[start..start + 2 * LANES].as_chunks::<2>();
            let mut block = [[Hash::ZERO; 2]; LANES];
            block.copy_from_slice(chunk);
            block
        };
        let hashed = compress_lanes(&key, &block);
        level[done..done + LANES].copy_from_slice(&hashed);
        done += LANES;
    }
    let rest = pairs - done;
    if rest > 0 {
        let mut block = [[Hash::ZERO; 2]; LANES];
        let (chunk, _) = level[2 * done..2 * pairs].as_chunks::<2>();
        block[..rest].copy_from_slice(chunk);
        let mut hashed = [Hash::ZERO; LANES];
        hash_tail(domain, &key, &block[..rest], &mut hashed[..rest]);
        level[done..pairs].copy_from_slice(&hashed[..rest]);
    }
    if n % 2 == 1 {
        level[pairs] = level[n - 1];
    }
    n.div_ceil(2)
}

/// Reduces `level` in place, level by level with odd promotion, to the single
/// RFC 9162 tree hash of its entries (§2.1.1), or `None` if it is empty.
/// The contents of `level` are clobbered.
pub fn reduce_in_place(domain: Domain, level: &mut [Hash]) -> Option<Hash> {
    let mut len = level.len();
    while len > 1 {
        len = hash_level_in_place(domain, &mut level[..len]);
    }
    level.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_pairs(n: usize, seed: u8) -> Vec<[Hash; 2]> {
        (0..n)
            .map(|i| {
                let i = i as u64;
                [
                    Hash::of_parts(Domain::Test, &[&[seed, 0], &i.to_le_bytes()]),
                    Hash::of_parts(Domain::Test, &[&[seed, 1], &i.to_le_bytes()]),
                ]
            })
            .collect()
    }

    fn reference(domain: Domain, pair: &[Hash; 2]) -> Hash {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(pair[0].as_bytes());
        block[32..].copy_from_slice(pair[1].as_bytes());
        Hash::from_bytes(*blake3::keyed_hash(domain.key(), &block).as_bytes())
    }

    #[test]
    fn schedule_matches_blake3_reference() {
        // Rows 1 and 6 of the schedule in the BLAKE3 reference implementation.
        assert_eq!(
            SCHEDULE[1],
            [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
        );
        assert_eq!(
            SCHEDULE[6],
            [11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13]
        );
    }

    #[test]
    fn known_inputs_match_keyed_hash() {
        let cases = [
            [Hash::ZERO, Hash::ZERO],
            [Hash::from_bytes([0xff; 32]), Hash::from_bytes([0xff; 32])],
            [
                Hash::from_bytes(std::array::from_fn(|i| i as u8)),
                Hash::from_bytes(std::array::from_fn(|i| 32 + i as u8)),
            ],
            [Hash::ZERO, Hash::from_bytes([0x80; 32])],
        ];
        let mut inputs = Vec::new();
        for _ in 0..2 {
            inputs.extend_from_slice(&cases);
        }
        let mut out = vec![Hash::ZERO; inputs.len()];
        hash_node_pairs(Domain::TxNode, &inputs, &mut out);
        for (pair, h) in inputs.iter().zip(&out) {
            assert_eq!(*h, reference(Domain::TxNode, pair));
            assert_eq!(*h, Hash::node(Domain::TxNode, &pair[0], &pair[1]));
        }
    }

    #[test]
    fn every_domain_matches() {
        let inputs = sample_pairs(LANES * 2 + 3, 1);
        for &domain in Domain::ALL {
            let mut out = vec![Hash::ZERO; inputs.len()];
            hash_node_pairs(domain, &inputs, &mut out);
            for (pair, h) in inputs.iter().zip(&out) {
                assert_eq!(*h, reference(domain, pair), "{domain:?}");
            }
        }
    }

    #[test]
    fn every_lane_count_matches() {
        for n in 0..=17 {
            let inputs = sample_pairs(n, n as u8);
            let mut out = vec![Hash::ZERO; n + 2];
            hash_node_pairs(Domain::HistoryNode, &inputs, &mut out);
            for (pair, h) in inputs.iter().zip(&out) {
                assert_eq!(*h, reference(Domain::HistoryNode, pair), "n={n}");
            }
            // Entries past the inputs are left alone.
            assert!(out[n..].iter().all(|h| *h == Hash::ZERO));
            // A shorter output writes only what fits.
            let mut short = vec![Hash::ZERO; n / 2];
            hash_node_pairs(Domain::HistoryNode, &inputs, &mut short);
            assert_eq!(short[..], out[..n / 2]);
        }
    }

    fn naive_level(domain: Domain, children: &[Hash]) -> Vec<Hash> {
        children
            .chunks(2)
            .map(|c| {
                if c.len() == 2 {
                    Hash::node(domain, &c[0], &c[1])
                } else {
                    c[0]
                }
            })
            .collect()
    }

    #[test]
    fn level_helpers_promote_odd_child() {
        for n in 0..=40 {
            let children: Vec<Hash> = (0..n as u64)
                .map(|i| Hash::of(Domain::Test, &i.to_le_bytes()))
                .collect();
            let expected = naive_level(Domain::TxNode, &children);
            let mut parents = vec![Hash::ZERO; 3];
            hash_level(Domain::TxNode, &children, &mut parents);
            assert_eq!(parents, expected, "n={n}");
            let mut level = children.clone();
            let len = hash_level_in_place(Domain::TxNode, &mut level);
            assert_eq!(level[..len], expected[..], "n={n}");
            let mut level = children.clone();
            let mut naive = children.clone();
            while naive.len() > 1 {
                naive = naive_level(Domain::TxNode, &naive);
            }
            assert_eq!(
                reduce_in_place(Domain::TxNode, &mut level),
                naive.first().copied()
            );
        }
    }

    proptest! {
        #[test]
        fn random_inputs_match(raw in proptest::collection::vec(any::<[u8; 32]>(), 0..60), d in 0..Domain::ALL.len()) {
            let domain = Domain::ALL[d];
            let inputs: Vec<[Hash; 2]> = raw
                .chunks_exact(2)
                .map(|c| [Hash::from_bytes(c[0]), Hash::from_bytes(c[1])])
                .collect();
            let mut out = vec![Hash::ZERO; inputs.len()];
            hash_node_pairs(domain, &inputs, &mut out);
            for (pair, h) in inputs.iter().zip(&out) {
                prop_assert_eq!(*h, reference(domain, pair));
            }
        }
    }
}
