//! perf-report rows for the `core` area: light.

/// Measures and prints this module's rows.
pub fn report() {}
