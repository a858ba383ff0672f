//! Criterion benches for consensus: time per decided block of a Tendermint
//! cluster (4 validators) and a Raft cluster (3 nodes) in the in-bench
//! driver of `benches/src/consensus.rs` (instant delivery, in-memory WAL,
//! every node batch-verifies every block's transactions), and the batch
//! verification of one block's transactions alone (one node's share of
//! the signature bound). The perf-report (`perf-report -- consensus`)
//! prints the same comparisons as ratios.
//!
//! Blocks cycle through 8 pre-signed sets of 1,000 transactions (distinct
//! senders); the engines do not check nonces, so reuse across heights only
//! spares signing time. Cluster setup (and Raft's election) is untimed.
#![allow(missing_docs)]
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use govchain_benches::consensus::{
    raft_cluster, tendermint_cluster, tx_sets, verify_txs, TXS_PER_BLOCK,
};
use govchain_consensus::raft::Raft;
use govchain_consensus::tendermint::Tendermint;
use govchain_core::tx::Transaction;

const LIMIT: Duration = Duration::from_secs(300);

type Sets = Arc<Vec<Vec<Transaction>>>;

fn sets(blocks: usize, txs: usize) -> Sets {
    match tx_sets(blocks, txs, 1) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("consensus bench: {e}");
            Arc::new(Vec::new())
        }
    }
}

/// Runs `iters` blocks on a fresh cluster built by `make`; the setup is
/// not timed.
fn blocks<E: govchain_benches::consensus::BenchEngine>(
    iters: u64,
    make: impl Fn() -> anyhow::Result<govchain_benches::consensus::Cluster<E>>,
) -> Duration {
    let run = make().and_then(|mut c| {
        let first = c.decided_by_all() + 1;
        c.prepare(first, iters + 1);
        c.run_blocks(iters, LIMIT)
    });
    match run {
        Ok(t) => t,
        Err(e) => {
            eprintln!("consensus bench: {e}");
            Duration::MAX / 4
        }
    }
}

fn tendermint(c: &mut Criterion) {
    let full = sets(8, TXS_PER_BLOCK);
    let empty: Sets = Arc::new(Vec::new());
    let mut group = c.benchmark_group("consensus/tendermint_block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TXS_PER_BLOCK as u64));
    group.bench_function(format!("validators=4,txs={TXS_PER_BLOCK}"), |b| {
        b.iter_custom(|iters| {
            blocks::<Tendermint>(iters, || tendermint_cluster(Arc::clone(&full), false))
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("validators=4,txs=0", |b| {
        b.iter_custom(|iters| {
            blocks::<Tendermint>(iters, || tendermint_cluster(Arc::clone(&empty), false))
        })
    });
    group.finish();
}

fn raft(c: &mut Criterion) {
    let full = sets(8, TXS_PER_BLOCK);
    let mut group = c.benchmark_group("consensus/raft_block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TXS_PER_BLOCK as u64));
    group.bench_function(format!("nodes=3,txs={TXS_PER_BLOCK}"), |b| {
        b.iter_custom(|iters| blocks::<Raft>(iters, || raft_cluster(Arc::clone(&full), false)))
    });
    group.finish();
}

fn verify_block(c: &mut Criterion) {
    let full = sets(1, TXS_PER_BLOCK);
    let txs: &[Transaction] = full.first().map_or(&[], Vec::as_slice);
    let mut group = c.benchmark_group("consensus/verify_block_txs");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TXS_PER_BLOCK as u64));
    group.bench_function(format!("txs={TXS_PER_BLOCK}"), |b| {
        b.iter(|| verify_txs(black_box(txs)))
    });
    group.finish();
}

criterion_group!(benches, tendermint, raft, verify_block);
criterion_main!(benches);
