//! Criterion benches of the sparse Merkle tree, each with a baseline:
//! `core/smt_update/batch=10000` against `core/smt_update_jmt/batch=10000`
//! (the `jmt` 0.12 crate), and `core/smt_proof_verify` against
//! `core/smt_proof_verify_baseline` (as many sequential 64-byte keyed hashes).
//! The sm2-sm3 groups run the same tree under SM3:
//! `core/smt_update_sm3/batch=10000` (against the BLAKE3 group of the same
//! run) and `core/smt_proof_verify_sm3` against
//! `core/smt_proof_verify_sm3_baseline` (as many sequential SM3 node
//! hashes). The perf-report (`benches/src/core/smt.rs`) prints the same
//! comparisons as ratios.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use govchain_benches::core::smt::{govchain_insert_with, jmt_baseline, random_entries};
use govchain_core::hash::{Domain, Hash, HashFunction};
use govchain_core::smt::{KeyHash, SparseMerkleTree};
use std::hint::black_box;

/// The name suffix of `hf`'s groups: none for BLAKE3 (the original names).
fn suffix(hf: HashFunction) -> &'static str {
    match hf {
        HashFunction::Sm3 => "_sm3",
        _ => "",
    }
}

/// One 10,000-key batch applied to a 100,000-key tree (and written), under
/// `hf`.
fn update(
    group: &mut BenchmarkGroup<'_, WallTime>,
    hf: HashFunction,
    base: &[([u8; 32], Vec<u8>)],
    updates: &[(KeyHash, Option<Vec<u8>>)],
) {
    group.bench_function(format!("smt_update{}/batch=10000", suffix(hf)), |b| {
        b.iter_batched(
            || govchain_insert_with(hf, base, 10).0,
            |store| {
                let tree = SparseMerkleTree::new(&store, hf);
                let (root, batch) = tree.apply_batch(Some(10), 11, updates).unwrap();
                store.write_batch(batch).unwrap();
                black_box(root);
                store
            },
            BatchSize::PerIteration,
        )
    });
}

/// Verifying one membership proof of a 100,000-key tree under `hf`, beside
/// as many sequential node hashes of `hf` as the proof computes.
fn proof(group: &mut BenchmarkGroup<'_, WallTime>, hf: HashFunction, base: &[([u8; 32], Vec<u8>)]) {
    let (store, root, _) = govchain_insert_with(hf, base, 1);
    let tree = SparseMerkleTree::new(&store, hf);
    let (k, v) = &base[12_345];
    let key = KeyHash::from_hash(Hash::from_bytes(*k));
    let (_, proof) = tree.get_with_proof(&key, 1).unwrap();
    proof.verify(hf, &root, &key, Some(v)).unwrap();
    group.bench_function(format!("smt_proof_verify{}", suffix(hf)), |b| {
        b.iter(|| black_box(&proof).verify(hf, black_box(&root), &key, Some(v)))
    });
    let depth = proof.siblings.len() + 2;
    group.bench_function(format!("smt_proof_verify{}_baseline", suffix(hf)), |b| {
        b.iter(|| {
            let mut h = Hash::ZERO;
            for _ in 0..depth {
                h = hf.hash_node(Domain::SmtNode, black_box(&h), &root);
            }
            h
        })
    });
}

fn bench(c: &mut Criterion) {
    let base = random_entries(100_000, 1);
    let batch = random_entries(10_000, 9);
    let updates: Vec<_> = batch
        .iter()
        .map(|(k, v)| (KeyHash::from_hash(Hash::from_bytes(*k)), Some(v.clone())))
        .collect();
    let mut group = c.benchmark_group("core");
    group.sample_size(10);
    update(&mut group, HashFunction::Blake3, &base, &updates);
    group.bench_function("smt_update_jmt/batch=10000", |b| {
        b.iter_batched(
            || jmt_baseline::insert(&base, 10).0,
            |store| {
                let tree = jmt::Sha256Jmt::new(&store);
                let set = batch
                    .iter()
                    .map(|(k, v)| (jmt::KeyHash(*k), Some(v.clone())));
                let (_, b) = tree.put_value_set(set, 10).unwrap();
                store.write(b);
                store
            },
            BatchSize::PerIteration,
        )
    });
    update(&mut group, HashFunction::Sm3, &base, &updates);
    group.sample_size(50);
    for hf in [HashFunction::Blake3, HashFunction::Sm3] {
        proof(&mut group, hf, &base);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
