//! perf-report rows for the `core` area: smt.

/// Measures and prints this module's rows.
pub fn report() {}
