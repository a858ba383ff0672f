//! Prints the perf report for one area as JSON lines on stdout.
//!
//! Usage: `cargo run --release -p govchain-benches --bin perf-report -- AREA`
//! where AREA is one of: core, storage, consensus, node, identity.

use std::process::ExitCode;

fn main() -> ExitCode {
    let areas: Vec<String> = std::env::args().skip(1).collect();
    if areas.is_empty() {
        eprintln!("usage: perf-report AREA...   (areas: core, storage, consensus, node, identity)");
        return ExitCode::from(2);
    }
    for area in &areas {
        match area.as_str() {
            "core" => govchain_benches::core::report(),
            "storage" => govchain_benches::storage::report(),
            "consensus" => govchain_benches::consensus::report(),
            "node" => govchain_benches::node::report(),
            "identity" => govchain_benches::identity::report(),
            other => {
                eprintln!(
                    "perf-report: unknown area {other:?} (areas: core, storage, consensus, node, identity)"
                );
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
