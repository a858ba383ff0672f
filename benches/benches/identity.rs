//! Criterion benches for `govchain-identity`, each beside its baseline: the
//! hall's verification of one presentation (5 disclosures, holder binding,
//! 4 state proofs against a trusted header) beside the 2 Ed25519
//! verifications it must do; issuance of one credential beside one Ed25519
//! signature; and the execution of one status-update transaction revoking
//! 10,000 entries beside the sparse-Merkle update of the pages it touches.
//! The perf-report (`perf-report -- identity`) prints the same comparisons
//! as ratios; the fixtures are in `benches/src/identity.rs`.
//!
//! Nonces are single-use, so every verification gets a fresh presentation,
//! prepared (challenge, binding signature, encoding) outside the timing.
#![allow(missing_docs)]
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use govchain_benches::identity::{IssueFixture, StatusFixture, VerifyFixture};
use govchain_core::crypto::Signer;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Most presentations prepared at once (a verifier keeps at most 65,536
/// outstanding nonces).
const PREPARE_CHUNK: u64 = 2_000;

fn verify(c: &mut Criterion) {
    let fixture = match VerifyFixture::new(16, 3) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("identity bench: {e:#}");
            return;
        }
    };
    let pairs = match fixture.signature_pairs() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("identity bench: {e:#}");
            return;
        }
    };
    let mut group = c.benchmark_group("identity/verify_presentation");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("disclosures=5,proofs=4", |b| {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        b.iter_custom(|iters| {
            let Ok(mut hall) = fixture.verifier() else {
                return Duration::MAX / 4;
            };
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(PREPARE_CHUNK);
                let fresh = fixture.prepare(&mut hall, &mut rng, n as usize);
                let start = Instant::now();
                let accepted = fixture.verify_all(&mut hall, black_box(&fresh));
                total += start.elapsed();
                if accepted != n as usize {
                    eprintln!("identity bench: {accepted} of {n} accepted");
                }
                left -= n;
            }
            total
        })
    });
    group.finish();

    let mut group = c.benchmark_group("identity/ed25519_verify");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("sigs=2", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            pairs[i % pairs.len()].verify_both()
        })
    });
    group.finish();
}

fn issue(c: &mut Criterion) {
    const BATCH: usize = 1_000;
    let fixture = match IssueFixture::new(17) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("identity bench: {e:#}");
            return;
        }
    };
    let mut group = c.benchmark_group("identity/issue_credentials");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("batch={BATCH}"), |b| {
        let mut rng = ChaCha20Rng::seed_from_u64(19);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let Ok(requests) = fixture.requests(i * BATCH as u64, BATCH) else {
                    return Duration::MAX / 4;
                };
                let mut allocator = IssueFixture::allocator();
                let start = Instant::now();
                let issued = fixture.issue_all(&mut rng, &mut allocator, requests);
                total += start.elapsed();
                if let Err(e) = issued {
                    eprintln!("identity bench: {e:#}");
                }
            }
            total
        })
    });
    group.finish();

    let Ok(key) = fixture.signing_key() else {
        return;
    };
    let mut group = c.benchmark_group("identity/ed25519_sign");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    group.bench_function("msg_bytes=32", |b| {
        let msg = [7u8; 32];
        b.iter(|| key.sign(black_box(&msg)))
    });
    group.finish();
}

fn status(c: &mut Criterion) {
    let fixture = match StatusFixture::new(10_000, 23) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("identity bench: {e:#}");
            return;
        }
    };
    let pages = fixture.pages_touched();
    let mut group = c.benchmark_group("identity/update_status");
    group.sample_size(20);
    group.bench_function("revocations=10000", |b| {
        b.iter(|| fixture.execute().map(|w| w.len()).ok())
    });
    group.bench_function("revocations=10000,commit=true", |b| {
        b.iter(|| fixture.execute_and_commit().ok())
    });
    group.finish();

    let mut group = c.benchmark_group("identity/smt_apply");
    group.sample_size(20);
    group.bench_function(format!("pages={pages}"), |b| {
        b.iter(|| fixture.smt_apply().ok())
    });
    group.finish();

    let mut group = c.benchmark_group("identity/blake3_pages");
    group.sample_size(20);
    group.bench_function(format!("pages={pages}"), |b| {
        b.iter(|| fixture.hash_pages())
    });
    group.finish();
}

criterion_group!(benches, verify, issue, status);
criterion_main!(benches);
