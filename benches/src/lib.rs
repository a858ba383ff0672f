//! Criterion benches and the perf-report of govchain, each measured against a
//! baseline in the same run.
