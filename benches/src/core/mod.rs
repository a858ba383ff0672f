//! The `core` area of the perf report: hashing and Merkle trees, the sparse
//! Merkle tree, signatures and the light client.

pub mod light;
pub mod merkle;
pub mod signatures;
pub mod smt;

/// Runs every `core` measurement, printing rows as they are measured.
pub fn report() {
    merkle::report();
    smt::report();
    signatures::report();
    light::report();
}
