//! Criterion benches for signatures: one verification against
//! `ed25519-dalek` `verify_strict`, and batches of 4,096 (parallel and on one
//! thread). The perf-report (`benches/src/core/signatures.rs`) prints the
//! same comparisons as ratios.
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use govchain_benches::core::signatures::{Workload, BATCH_N};
use govchain_core::crypto::{verify, verify_batch, verify_batch_sequential};

fn single(c: &mut Criterion) {
    let w = Workload::new(1, 1, 1);
    let (key, message, signature) = (&w.keys[0], &w.messages[0], &w.signatures[0]);
    let mut group = c.benchmark_group("core/sig_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter(|| verify(black_box(key), black_box(message), black_box(signature)))
    });
    if let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()) {
        let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
        group.bench_function("ed25519_dalek_verify_strict", |b| {
            b.iter(|| vk.verify_strict(black_box(message), black_box(&sig)))
        });
    }
    group.finish();
}

fn batch(c: &mut Criterion) {
    let w = Workload::new(BATCH_N, BATCH_N, 1);
    let items = w.items();
    let mut group = c.benchmark_group("core/sig_verify_batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH_N as u64));
    group.bench_function(format!("n={BATCH_N}"), |b| {
        b.iter(|| verify_batch(black_box(&items)))
    });
    group.bench_function(format!("n={BATCH_N},threads=1"), |b| {
        b.iter(|| verify_batch_sequential(black_box(&items)))
    });
    group.finish();
}

criterion_group!(benches, single, batch);
criterion_main!(benches);
