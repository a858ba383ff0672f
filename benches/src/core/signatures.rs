//! perf-report rows for the `core` area: signatures.

/// Measures and prints this module's rows.
pub fn report() {}
