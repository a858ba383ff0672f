//! Multi-lane BLAKE3 compression of 64-byte nodes.
//!
//! (Scalar placeholder; the SIMD implementation replaces the body and keeps
//! the signature.)

use crate::hash::{Domain, Hash};

/// Hashes each pair `inputs[i] = [left, right]` as
/// `Hash::node(domain, &left, &right)` into `out[i]`.
///
/// Only the first `min(inputs.len(), out.len())` entries are written.
pub fn hash_node_pairs(domain: Domain, inputs: &[[Hash; 2]], out: &mut [Hash]) {
    for (pair, slot) in inputs.iter().zip(out.iter_mut()) {
        *slot = Hash::node(domain, &pair[0], &pair[1]);
    }
}
