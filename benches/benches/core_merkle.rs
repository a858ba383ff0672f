//! Criterion benches for the Merkle trees: the transaction root of 2^20
//! leaves (one thread and rayon) against `rs_merkle` SHA-256 and against
//! 2^20 sequential keyed BLAKE3 hashes; the transaction root of 10,000
//! transactions of 250 bytes against hashing them alone; history-log appends
//! and proofs. The sm2-sm3 groups run the same roots under SM3 beside their
//! SM3 baselines (`core/merkle_root_sm3` against
//! `core/sm3_prefixed_hash_seq`, `core/tx_root_sm3` against
//! `core/sm3_hash_250B_seq`) and the BLAKE3 groups of the same run. The
//! perf-report (`benches/src/core/merkle.rs`) prints the same comparisons as
//! ratios.
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use govchain_benches::core::merkle::{
    keyed_hash_seq, leaves, node_inputs, sm3_hash_seq, sm3_prefixed_hash_seq, transactions,
    LEAVES_1M, TXS_10K, TX_BYTES,
};
use govchain_core::hash::{Hash, HashFunction};
use govchain_core::lanes::hash_node_pairs;
use govchain_core::merkle::{tx_root, tx_root_of_transactions, tx_root_parallel, HistoryTree};
use rs_merkle::algorithms::Sha256;
use rs_merkle::MerkleTree;

fn merkle_root(c: &mut Criterion) {
    let leaves = leaves(LEAVES_1M);
    let raw: Vec<[u8; 32]> = leaves.iter().map(|h| h.to_bytes()).collect();
    let inputs = node_inputs(&leaves);
    let id = format!("leaves={LEAVES_1M}");
    let mut group = c.benchmark_group("core/merkle_root");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(&id, |b| {
        b.iter(|| {
            tx_root(
                govchain_core::hash::HashFunction::Blake3,
                black_box(&leaves),
            )
        })
    });
    group.finish();
    let mut group = c.benchmark_group("core/merkle_root_parallel");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(&id, |b| {
        b.iter(|| {
            tx_root_parallel(
                govchain_core::hash::HashFunction::Blake3,
                black_box(&leaves),
            )
        })
    });
    group.finish();
    let mut group = c.benchmark_group("core/blake3_keyed_hash_seq");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(format!("inputs={LEAVES_1M}"), |b| {
        b.iter(|| keyed_hash_seq(black_box(&inputs)))
    });
    group.finish();
    let mut group = c.benchmark_group("core/rs_merkle_sha256_root");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(&id, |b| {
        b.iter(|| MerkleTree::<Sha256>::from_leaves(black_box(&raw)).root())
    });
    group.finish();
}

/// The SM3 rows: the 2^20-leaf root and the 10,000-transaction root under
/// SM3, each beside its SM3 baseline.
fn sm3_roots(c: &mut Criterion) {
    let leaves = leaves(LEAVES_1M);
    let inputs = node_inputs(&leaves);
    let mut group = c.benchmark_group("core/merkle_root_sm3");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(format!("leaves={LEAVES_1M}"), |b| {
        b.iter(|| tx_root(HashFunction::Sm3, black_box(&leaves)))
    });
    group.finish();
    let mut group = c.benchmark_group("core/sm3_prefixed_hash_seq");
    group
        .sample_size(10)
        .throughput(Throughput::Elements(LEAVES_1M as u64));
    group.bench_function(format!("inputs={LEAVES_1M}"), |b| {
        b.iter(|| sm3_prefixed_hash_seq(black_box(&inputs)))
    });
    group.finish();
    let txs = transactions(TXS_10K, TX_BYTES);
    let id = format!("txs={TXS_10K}");
    let mut group = c.benchmark_group("core/tx_root_sm3");
    group.throughput(Throughput::Elements(TXS_10K as u64));
    group.bench_function(&id, |b| {
        b.iter(|| tx_root_of_transactions(HashFunction::Sm3, black_box(&txs)))
    });
    group.finish();
    let mut group = c.benchmark_group(format!("core/sm3_hash_{TX_BYTES}B_seq"));
    group.throughput(Throughput::Elements(TXS_10K as u64));
    group.bench_function(&id, |b| b.iter(|| sm3_hash_seq(black_box(&txs))));
    group.finish();
}

fn lanes(c: &mut Criterion) {
    let leaves = leaves(1 << 14);
    let pairs: Vec<[Hash; 2]> = leaves.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    let mut out = vec![Hash::ZERO; pairs.len()];
    let mut group = c.benchmark_group("core/hash_node_pairs");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function(format!("nodes={}", pairs.len()), |b| {
        b.iter(|| {
            hash_node_pairs(
                govchain_core::hash::Domain::TxNode,
                black_box(&pairs),
                &mut out,
            )
        })
    });
    group.finish();
}

fn tx_root_10k(c: &mut Criterion) {
    let txs = transactions(TXS_10K, TX_BYTES);
    let id = format!("txs={TXS_10K}");
    let mut group = c.benchmark_group("core/tx_root");
    group.throughput(Throughput::Elements(TXS_10K as u64));
    group.bench_function(&id, |b| {
        b.iter(|| {
            tx_root_of_transactions(govchain_core::hash::HashFunction::Blake3, black_box(&txs))
        })
    });
    group.finish();
    let mut group = c.benchmark_group(format!("core/blake3_hash_{TX_BYTES}B_seq"));
    group.throughput(Throughput::Elements(TXS_10K as u64));
    group.bench_function(&id, |b| {
        b.iter(|| {
            for tx in &txs {
                black_box(blake3::hash(black_box(tx)));
            }
        })
    });
    group.finish();
}

fn history(c: &mut Criterion) {
    let n = 1u64 << 16;
    let blocks = leaves(n as usize);
    let log = HistoryTree::from_block_hashes(govchain_core::hash::HashFunction::Blake3, &blocks);
    let mut group = c.benchmark_group("core/history");
    group.bench_function(format!("append/size={n}"), |b| {
        b.iter_batched(
            || log.clone(),
            |mut l| l.append(black_box(&blocks[0])),
            BatchSize::LargeInput,
        )
    });
    group.bench_function(format!("inclusion_proof/size={n}"), |b| {
        b.iter(|| log.inclusion_proof(black_box(12_345), n))
    });
    let head = log.head();
    if let Ok(proof) = log.inclusion_proof(12_345, n) {
        group.bench_function(format!("inclusion_verify/size={n}"), |b| {
            b.iter(|| {
                proof.verify_history(
                    govchain_core::hash::HashFunction::Blake3,
                    black_box(&blocks[12_345]),
                    &head,
                )
            })
        });
    }
    group.bench_function(format!("consistency_proof/old=40000,new={n}"), |b| {
        b.iter(|| log.consistency_proof(black_box(40_000), n))
    });
    if let (Ok(proof), Ok(old)) = (log.consistency_proof(40_000, n), log.head_at(40_000)) {
        group.bench_function(format!("consistency_verify/old=40000,new={n}"), |b| {
            b.iter(|| {
                proof.verify(
                    govchain_core::hash::HashFunction::Blake3,
                    black_box(&old),
                    &head,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, merkle_root, sm3_roots, lanes, tx_root_10k, history);
criterion_main!(benches);
