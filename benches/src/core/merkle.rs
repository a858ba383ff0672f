//! perf-report rows for the `core` area: merkle.

/// Measures and prints this module's rows.
pub fn report() {}
