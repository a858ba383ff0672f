//! Criterion benches of the durable store, each with a baseline:
//! `storage/append/txs=1000` (append of a 1,000-transaction block, state
//! batch prepared outside the timing) against `storage/append_raw/txs=1000`
//! (`write` + `fdatasync` of the same frame bytes to a plain file), and
//! `storage/read/by_height` (random heights of a store of
//! `GOVCHAIN_PERF_STORAGE_BLOCKS / 10` small blocks, default 10,000) against
//! `storage/read_redb_point_get` (one redb point get of a same-size value).
//! See `govchain_benches::storage` for what each measures.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use govchain_benches::storage::{
    bench_dir, blocks_from_env, build_point_db, build_small_store, chain_id, frame_len, point_get,
    random_updates, transactions, BenchChain,
};
use govchain_core::block::tx_root_of;
use govchain_core::codec::Encode;
use govchain_core::types::Height;
use govchain_storage::format::{encode_frame, encode_state_batch};
use govchain_storage::{BlockStore, DurableConfig, DurableStore, OsVfs};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::hint::black_box;

fn append(c: &mut Criterion) {
    let tmp = bench_dir("criterion-append").unwrap();
    let mut chain = BenchChain::open(
        Arc::new(OsVfs),
        &tmp.path().join("store"),
        DurableConfig::default(),
        4,
    )
    .unwrap();
    let mut raw = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(tmp.path().join("raw.log"))
        .unwrap();
    let txs = transactions(1000, 1).unwrap();
    let tx_root = tx_root_of(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &txs);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut group = c.benchmark_group("storage");
    group.sample_size(20);
    // Prepare each block (state batch, block, certificate) untimed; time
    // only the append.
    group.bench_function("append/txs=1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let p = chain
                    .prepare(&random_updates(16, &mut rng), &txs, tx_root)
                    .unwrap();
                let s = Instant::now();
                chain.append(p).unwrap();
                total += s.elapsed();
            }
            total
        })
    });
    let p = chain
        .prepare(&random_updates(16, &mut rng), &txs, tx_root)
        .unwrap();
    let frame = encode_frame(
        p.block.header.height.get(),
        &p.block.to_bytes(),
        &p.cert.to_bytes(),
        &encode_state_batch(&p.batch).unwrap(),
    )
    .unwrap();
    group.bench_function("append_raw/txs=1000", |b| {
        b.iter(|| {
            raw.write_all(black_box(&frame)).unwrap();
            raw.sync_data().unwrap();
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let blocks = (blocks_from_env() / 10).max(100);
    let tmp = bench_dir("criterion-read").unwrap();
    let dir = tmp.path().join("store");
    build_small_store(&dir, blocks, 7).unwrap();
    let store = DurableStore::open(&dir, chain_id().unwrap(), DurableConfig::default()).unwrap();
    let len = frame_len(&store, blocks / 2).unwrap();
    let db = build_point_db(&tmp.path().join("point.redb"), blocks, len).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut group = c.benchmark_group("storage");
    group.bench_function("read/by_height", |b| {
        b.iter(|| {
            let h = 1 + rng.next_u64() % blocks;
            black_box(store.block(Height::new(h)).unwrap())
        })
    });
    group.bench_function("read_redb_point_get", |b| {
        b.iter(|| {
            let k = 1 + rng.next_u64() % blocks;
            black_box(point_get(&db, k).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
