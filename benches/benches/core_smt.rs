//! Criterion benches of the sparse Merkle tree, each with a baseline:
//! `core/smt_update/batch=10000` against `core/smt_update_jmt/batch=10000`
//! (the `jmt` 0.12 crate), and `core/smt_proof_verify` against
//! `core/smt_proof_verify_baseline` (as many sequential 64-byte keyed hashes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use govchain_benches::core::smt::{govchain_insert, jmt_baseline, random_entries};
use govchain_core::hash::{Domain, Hash};
use govchain_core::smt::{KeyHash, SparseMerkleTree};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    // One 10,000-key batch applied to a 100,000-key tree (and written).
    let base = random_entries(100_000, 1);
    let batch = random_entries(10_000, 9);
    let updates: Vec<_> = batch
        .iter()
        .map(|(k, v)| (KeyHash::from_hash(Hash::from_bytes(*k)), Some(v.clone())))
        .collect();
    let mut group = c.benchmark_group("core");
    group.sample_size(10);
    group.bench_function("smt_update/batch=10000", |b| {
        b.iter_batched(
            || govchain_insert(&base, 10).0,
            |store| {
                let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
                let (root, batch) = tree.apply_batch(Some(10), 11, &updates).unwrap();
                store.write_batch(batch).unwrap();
                black_box(root);
                store
            },
            BatchSize::PerIteration,
        )
    });
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

    let (store, root, _) = govchain_insert(&base, 1);
    let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
    let (k, v) = &base[12_345];
    let key = KeyHash::from_hash(Hash::from_bytes(*k));
    let (_, proof) = tree.get_with_proof(&key, 1).unwrap();
    proof
        .verify(
            govchain_core::hash::HashFunction::Blake3,
            &root,
            &key,
            Some(v),
        )
        .unwrap();
    group.sample_size(50);
    group.bench_function("smt_proof_verify", |b| {
        b.iter(|| {
            black_box(&proof).verify(
                govchain_core::hash::HashFunction::Blake3,
                black_box(&root),
                &key,
                Some(v),
            )
        })
    });
    let depth = proof.siblings.len() + 2;
    group.bench_function("smt_proof_verify_baseline", |b| {
        b.iter(|| {
            let mut h = Hash::ZERO;
            for _ in 0..depth {
                h = Hash::node(Domain::SmtNode, black_box(&h), &root);
            }
            h
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
