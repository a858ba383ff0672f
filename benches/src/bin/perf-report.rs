//! Prints the perf report for one area as JSON lines on stdout.
//!
//! Usage: `cargo run --release -p govchain-benches --bin perf-report -- AREA`
//! where AREA is one of: core, storage, consensus, node, identity, network.

use std::process::ExitCode;

fn main() -> ExitCode {
    let areas: Vec<String> = std::env::args().skip(1).collect();
    // The `network` area runs each node in a child process of this binary.
    if areas.first().map(String::as_str) == Some(govchain_benches::network::NODE_RUN_ARG) {
        return match areas.get(1) {
            Some(config) => govchain_benches::network::node_run(std::path::Path::new(config)),
            None => ExitCode::from(2),
        };
    }
    if areas.is_empty() {
        eprintln!(
            "usage: perf-report AREA...   (areas: core, storage, consensus, node, identity, network)"
        );
        return ExitCode::from(2);
    }
    for area in &areas {
        match area.as_str() {
            "core" => govchain_benches::core::report(),
            "storage" => govchain_benches::storage::report(),
            "consensus" => govchain_benches::consensus::report(),
            "node" => govchain_benches::node::report(),
            "identity" => govchain_benches::identity::report(),
            "network" => govchain_benches::network::report(),
            other => {
                eprintln!(
                    "perf-report: unknown area {other:?} (areas: core, storage, consensus, node, identity, network)"
                );
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
