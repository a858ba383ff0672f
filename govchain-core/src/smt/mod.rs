//! The sparse Merkle tree for authenticated state.
