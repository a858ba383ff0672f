//! The `core` area of the perf report: hashing and Merkle trees, the sparse
//! Merkle tree, signatures, the two crypto suites side by side and the light
//! client.

pub mod light;
pub mod merkle;
pub mod signatures;
pub mod smt;
pub mod suites;

/// Runs every `core` measurement, printing rows as they are measured.
///
/// Set `GOVCHAIN_PERF_ONLY` to a comma-separated list of sections
/// (`merkle`, `smt`, `signatures`, `suites`, `light`) to run only those.
pub fn report() {
    let only = std::env::var("GOVCHAIN_PERF_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|s| s.trim() == name);
    if wanted("merkle") {
        merkle::report();
    }
    if wanted("smt") {
        smt::report();
    }
    if wanted("signatures") {
        signatures::report();
    }
    if wanted("suites") {
        suites::report();
    }
    if wanted("light") {
        light::report();
    }
}
