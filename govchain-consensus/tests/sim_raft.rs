//! Raft scenarios in the deterministic simulator (crash faults only:
//! Byzantine behaviours do not apply to Raft).
//!
//! Seeds: `GOVCHAIN_SIM_SEEDS` (default 200, as CI sets) divided by 50 per
//! scenario, so 200 gives 4 seeds each. `GOVCHAIN_SEED=<n>` replays one
//! seed. Every scenario checks agreement, validity, durability of the
//! decided prefix across restarts and every certificate
//! (`verify_raft_certificate` against the genesis voters, leader signature
//! included) after every step, liveness after GST, and that the first seed
//! run twice gives the same trace hash.

use govchain_consensus::sim::{run_raft, seeds_from_env, FaultConfig, Report, SimConfig};

const DEFAULT_SEEDS: u64 = 200;

fn check(name: &str, make: impl Fn(u64) -> SimConfig) -> Vec<Report> {
    let seeds = seeds_from_env(DEFAULT_SEEDS, 50);
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    for seed in &seeds {
        let report = run_raft(&make(*seed));
        assert!(
            report.violations.is_empty(),
            "{name}: seed {seed} failed (replay with GOVCHAIN_SEED={seed}):\n{}",
            report.violations.join("\n")
        );
        reports.push(report);
    }
    if let Some(seed) = seeds.first() {
        let a = run_raft(&make(*seed));
        let b = run_raft(&make(*seed));
        assert_eq!(
            a.trace_hash, b.trace_hash,
            "{name}: seed {seed} is not deterministic"
        );
        assert_eq!(a, b);
    }
    let heights: u64 = reports
        .iter()
        .map(|r| r.heights.iter().max().copied().unwrap_or(0))
        .sum();
    eprintln!(
        "{name}: {} seeds (first {:?}), {heights} heights in total, {:?}",
        seeds.len(),
        seeds.first(),
        started.elapsed()
    );
    reports
}

fn faulty(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(seed, 5);
    cfg.faults = FaultConfig {
        min_delay_ms: 1,
        max_delay_ms: 30,
        drop_permille: 100,
        duplicate_permille: 50,
        partitions: false,
        crashes: 0,
        max_down: 1,
        clock_skew_ms: 200,
        gst_ms: 1_500,
    };
    cfg.liveness_window_ms = 2_000;
    cfg.liveness_blocks = 5;
    cfg.txs_per_block = 2;
    cfg
}

#[test]
fn n5_raft_no_faults() {
    check("n5-raft", |seed| {
        let mut cfg = SimConfig::new(seed, 5);
        cfg.liveness_window_ms = 1_000;
        cfg.liveness_blocks = 10;
        cfg.txs_per_block = 2;
        cfg
    });
}

/// Two of five nodes crash (at most two down at once, a Raft majority
/// survives), each crash losing a random suffix of the batch being
/// persisted (the unsynced tail), and restart from their records only.
#[test]
fn n5_raft_two_crashes() {
    let reports = check("n5-raft-two-crashes", |seed| {
        let mut cfg = faulty(seed);
        cfg.faults.crashes = 8;
        cfg.faults.max_down = 2;
        cfg
    });
    assert!(reports.iter().all(|r| r.restarts > 0));
    assert!(
        reports.iter().any(|r| r.max_down_at_once >= 2),
        "some seed must have two nodes down at once"
    );
}

#[test]
fn n5_raft_partitions_heal() {
    check("n5-raft-partition", |seed| {
        let mut cfg = faulty(seed);
        cfg.faults.partitions = true;
        cfg.faults.crashes = 2;
        cfg.faults.max_down = 1;
        cfg
    });
}
