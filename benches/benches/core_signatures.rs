//! Criterion benches for signatures: one verification against
//! `ed25519-dalek` `verify_strict`, batches of 4,096 (parallel and on one
//! thread), and the two suites side by side (sign, verify, batch of 1,024;
//! SM3 against BLAKE3 hashing). The perf-report
//! (`benches/src/core/signatures.rs`, `benches/src/core/suites.rs`) prints
//! the same comparisons as ratios.
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use govchain_benches::core::signatures::{Workload, BATCH_N};
use govchain_benches::core::suites::{SuiteWorkload, SUITE_BATCH_N};
use govchain_core::crypto::{verify, verify_batch, verify_batch_sequential, CryptoSuite, Signer};
use govchain_core::hash::{Domain, Hash, HashFunction};

fn single(c: &mut Criterion) {
    let w = Workload::new(1, 1, 1);
    let (key, message, signature) = (&w.keys[0], &w.messages[0], &w.signatures[0]);
    let mut group = c.benchmark_group("core/sig_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter(|| verify(black_box(key), black_box(message), black_box(signature)))
    });
    if let Some(Ok(vk)) = key
        .ed25519_bytes()
        .map(ed25519_dalek::VerifyingKey::from_bytes)
    {
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

fn suites(c: &mut Criterion) {
    for (name, suite) in [
        ("ed25519", CryptoSuite::Ed25519Blake3),
        ("sm2", CryptoSuite::Sm2Sm3),
    ] {
        let w = SuiteWorkload::new(suite, SUITE_BATCH_N, 1);
        let (sk, key, message, signature) =
            (&w.secrets[0], &w.keys[0], &w.messages[0], &w.signatures[0]);
        let mut group = c.benchmark_group(format!("core/suite/alg={name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("sign", |b| b.iter(|| sk.sign(black_box(message))));
        group.bench_function("verify", |b| {
            b.iter(|| verify(black_box(key), black_box(message), black_box(signature)))
        });
        let items = w.items();
        group.sample_size(10);
        group.throughput(Throughput::Elements(SUITE_BATCH_N as u64));
        group.bench_function(format!("verify_batch/n={SUITE_BATCH_N}"), |b| {
            b.iter(|| verify_batch(black_box(&items)))
        });
        group.finish();
    }
    let data = vec![0x5au8; 1024];
    let (l, r) = (Hash::from_bytes([1; 32]), Hash::from_bytes([2; 32]));
    for f in HashFunction::ALL {
        let mut group = c.benchmark_group(format!("core/suite_hash/fn={}", f.name()));
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function("len=1024", |b| {
            b.iter(|| f.hash(Domain::TxLeaf, black_box(&data)))
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function("node", |b| {
            b.iter(|| f.hash_node(Domain::TxNode, black_box(&l), black_box(&r)))
        });
        group.finish();
    }
}

criterion_group!(benches, single, batch, suites);
criterion_main!(benches);
