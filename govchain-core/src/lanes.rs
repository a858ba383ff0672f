//! Multi-lane BLAKE3 compression of 64-byte nodes.
