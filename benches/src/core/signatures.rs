//! perf-report rows for the `core` area: signatures.
//!
//! Workload: 4,096 transaction-sized messages (250 bytes), each signed by its
//! own key (the worst case for batch verification: no two signatures share a
//! key), all measured in the same run:
//! - `sig_verify_4096_batch_parallel` (`sig/s`): [`verify_batch`] on the
//!   rayon pool (every core); against `sig_verify_single_sequential`
//!   (`sig/s`), [`verify`] in a loop on one thread. Goal: ratio ≥ 5.
//! - `sig_verify_4096_batch_1thread` (`sig/s`): [`verify_batch_sequential`];
//!   against the same baseline. Informative (≈3× expected).
//! - `sig_verify_4096_batch_parallel_100_senders` (`sig/s`): as the first row
//!   but with 100 senders of about 41 transactions each, which the batch
//!   equation merges per key; against the same baseline.
//! - `sig_verify_4096_batch_1thread_cpu` (`sig/s` of thread CPU time): the
//!   1-thread row measured in CPU time of the calling thread (summed over the
//!   rounds) instead of wall time; against `sig_verify_single_sequential_cpu`,
//!   the same for the single loop. On a shared machine this is the stable
//!   measure of what batching alone gains; Linux only (omitted elsewhere).
//! - `sig_verify_4096_batch_parallel_cold_keys` (`sig/s`): as the first row,
//!   but every key is freshly decoded from bytes before each timed call, so
//!   the batch pays one key decompression per signature (as for
//!   transactions just decoded from the network); against
//!   `sig_verify_single_sequential_cold_keys`, [`verify`] in a loop over
//!   freshly decoded keys. The rows above reuse decoded keys, whose
//!   decompressed point both paths cache.
//! - `sig_verify_single` (`us`): one [`verify`] of a 250-byte message (ZIP-215
//!   equation on `curve25519-dalek` 4); against `ed25519_dalek_verify_strict`
//!   (`us`), `ed25519-dalek` 2.2 `verify_strict` on the same key, message and
//!   signature (cofactorless, same curve library).
//!
//! [`batch_verify_rate`] gives the parallel rate alone, for reports that
//! compare a throughput against the signature bound.

use std::hint::black_box;
use std::time::{Duration, Instant};

use govchain_core::crypto::{
    verify, verify_batch, verify_batch_sequential, BatchItem, PublicKey, SecretKey, Signature,
    Signer,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::{median_time, progress, Row};

/// Number of signatures in the batch workload.
pub const BATCH_N: usize = 4096;
/// Length of each signed message: a typical transaction.
pub const MESSAGE_LEN: usize = 250;

/// Signed messages for the signature benchmarks, from a fixed seed.
pub struct Workload {
    /// The signer of each message.
    pub keys: Vec<PublicKey>,
    /// The signed messages.
    pub messages: Vec<Vec<u8>>,
    /// One signature per message.
    pub signatures: Vec<Signature>,
}

impl Workload {
    /// `n` random `MESSAGE_LEN`-byte messages signed round-robin by `senders`
    /// keys (`senders = n` gives every message its own key).
    pub fn new(n: usize, senders: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secrets: Vec<SecretKey> = (0..senders.max(1))
            .map(|_| SecretKey::generate(&mut rng))
            .collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let mut m = vec![0u8; MESSAGE_LEN];
                rng.fill_bytes(&mut m);
                m
            })
            .collect();
        let signers = (0..n).map(|i| &secrets[i % secrets.len()]);
        let signatures = signers
            .clone()
            .zip(&messages)
            .map(|(k, m)| k.sign(m))
            .collect();
        let keys = signers.map(|k| k.public_key()).collect();
        Workload {
            keys,
            messages,
            signatures,
        }
    }

    /// The workload as batch items.
    pub fn items(&self) -> Vec<BatchItem<'_>> {
        self.items_with(&self.keys)
    }

    /// The workload as batch items, with `keys` in place of its own.
    pub fn items_with<'a>(&'a self, keys: &'a [PublicKey]) -> Vec<BatchItem<'a>> {
        keys.iter()
            .zip(&self.messages)
            .zip(&self.signatures)
            .map(|((k, m), s)| BatchItem::new(k, m, s))
            .collect()
    }

    /// The keys decoded afresh from their bytes: no decompressed point
    /// cached yet, as for a transaction just read from the network. (A clone
    /// would share the cache.)
    pub fn cold_keys(&self) -> Vec<PublicKey> {
        self.keys
            .iter()
            .filter_map(|k| PublicKey::from_raw(k.algorithm(), k.raw_bytes()).ok())
            .collect()
    }
}

fn rate(n: usize, time: Duration) -> f64 {
    n as f64 / time.as_secs_f64()
}

fn check(ok: bool, what: &str) {
    if !ok {
        progress(&format!("signatures: {what} rejected a valid workload"));
    }
}

/// Parallel batch verification rate on `workload`, in signatures per second.
fn batch_parallel_rate(workload: &Workload, runs: usize) -> f64 {
    let items = workload.items();
    let time = median_time(runs, || {
        check(verify_batch(black_box(&items)).is_ok(), "verify_batch")
    });
    rate(items.len(), time)
}

/// Signatures per second that [`verify_batch`] sustains on every core, for
/// batches of 4,096 250-byte messages by distinct keys.
pub fn batch_verify_rate() -> f64 {
    batch_parallel_rate(&Workload::new(BATCH_N, BATCH_N, 1), 9)
}

/// Measures and prints this module's rows.
///
/// The four throughputs are measured in interleaved rounds and each reported
/// as its median, so that load from other processes on a shared machine hits
/// the metric and its baseline alike.
pub fn report() {
    progress("signatures: signing 4,096 messages (distinct keys, then 100 senders)");
    let distinct = Workload::new(BATCH_N, BATCH_N, 1);
    let senders = Workload::new(BATCH_N, 100, 2);
    let items = distinct.items();
    let sender_items = senders.items();

    let rounds = 5;
    let (mut single, mut parallel, mut one_thread, mut hundred) = (vec![], vec![], vec![], vec![]);
    let (mut single_cold, mut parallel_cold) = (vec![], vec![]);
    let (mut single_cpu, mut one_thread_cpu) = (Duration::ZERO, Duration::ZERO);
    for round in 1..=rounds {
        progress(&format!("signatures: round {round}/{rounds}"));
        let cpu_before = thread_cpu_time();
        single.push(timed(|| {
            for item in &items {
                check(item.verify().is_ok(), "verify");
            }
        }));
        let cpu_single = thread_cpu_time();
        parallel.push(timed(|| {
            check(verify_batch(black_box(&items)).is_ok(), "verify_batch")
        }));
        let cpu_between = thread_cpu_time();
        one_thread.push(timed(|| {
            check(
                verify_batch_sequential(black_box(&items)).is_ok(),
                "verify_batch_sequential",
            )
        }));
        let cpu_after = thread_cpu_time();
        if let (Some(a), Some(b), Some(c), Some(d)) =
            (cpu_before, cpu_single, cpu_between, cpu_after)
        {
            single_cpu += b.saturating_sub(a);
            one_thread_cpu += d.saturating_sub(c);
        }
        hundred.push(timed(|| {
            check(
                verify_batch(black_box(&sender_items)).is_ok(),
                "verify_batch",
            )
        }));
        let cold = distinct.cold_keys();
        let cold_items = distinct.items_with(&cold);
        single_cold.push(timed(|| {
            for item in &cold_items {
                check(item.verify().is_ok(), "verify");
            }
        }));
        let cold = distinct.cold_keys();
        let cold_items = distinct.items_with(&cold);
        parallel_cold.push(timed(|| {
            check(verify_batch(black_box(&cold_items)).is_ok(), "verify_batch")
        }));
    }
    let single_rate = rate(BATCH_N, median(&mut single));
    let base = "sig_verify_single_sequential";
    let rows = [
        ("sig_verify_4096_batch_parallel", &mut parallel),
        ("sig_verify_4096_batch_1thread", &mut one_thread),
        ("sig_verify_4096_batch_parallel_100_senders", &mut hundred),
    ];
    for (metric, times) in rows {
        Row::new(
            "core",
            metric,
            rate(BATCH_N, median(times)),
            "sig/s",
            base,
            single_rate,
        )
        .emit();
    }

    if !single_cpu.is_zero() && !one_thread_cpu.is_zero() {
        Row::new(
            "core",
            "sig_verify_4096_batch_1thread_cpu",
            rate(BATCH_N * rounds, one_thread_cpu),
            "sig/s",
            "sig_verify_single_sequential_cpu",
            rate(BATCH_N * rounds, single_cpu),
        )
        .emit();
    }
    Row::new(
        "core",
        "sig_verify_4096_batch_parallel_cold_keys",
        rate(BATCH_N, median(&mut parallel_cold)),
        "sig/s",
        "sig_verify_single_sequential_cold_keys",
        rate(BATCH_N, median(&mut single_cold)),
    )
    .emit();

    progress("signatures: one verification against ed25519-dalek verify_strict");
    let (ours_us, dalek_us) = single_latency(&distinct, 1000);
    Row::new(
        "core",
        "sig_verify_single",
        ours_us,
        "us",
        "ed25519_dalek_verify_strict",
        dalek_us,
    )
    .emit();
}

/// CPU time consumed so far by the calling thread, from
/// `/proc/thread-self/schedstat` (Linux; `None` elsewhere). The kernel
/// updates it at scheduler ticks, so only sums over many milliseconds are
/// meaningful. Unlike wall time, it does not count time the thread spent
/// preempted by other processes.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn timed<F: FnOnce()>(f: F) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Microseconds per verification of one fixed (key, message, signature), for
/// govchain's [`verify`] and for `ed25519-dalek`'s `verify_strict`, each with
/// its key already parsed, in interleaved rounds (medians).
fn single_latency(workload: &Workload, calls: usize) -> (f64, f64) {
    let (key, message, signature) = (
        &workload.keys[0],
        &workload.messages[0],
        &workload.signatures[0],
    );
    let Some(key_bytes) = key.ed25519_bytes() else {
        progress("signatures: the workload's key is not an Ed25519 key");
        return (f64::NAN, f64::NAN);
    };
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(key_bytes);
    let dalek_sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
    let per_call = |d: Duration| d.as_secs_f64() * 1e6 / calls as f64;
    let Ok(vk) = dalek_key else {
        progress("signatures: ed25519-dalek refused the key");
        return (f64::NAN, f64::NAN);
    };
    let (mut ours, mut dalek) = (vec![], vec![]);
    for _ in 0..7 {
        ours.push(timed(|| {
            for _ in 0..calls {
                check(
                    verify(black_box(key), black_box(message), black_box(signature)).is_ok(),
                    "verify",
                );
            }
        }));
        dalek.push(timed(|| {
            for _ in 0..calls {
                check(
                    vk.verify_strict(black_box(message), black_box(&dalek_sig))
                        .is_ok(),
                    "verify_strict",
                );
            }
        }));
    }
    let (ours, dalek) = (median(&mut ours), median(&mut dalek));
    (per_call(ours), per_call(dalek))
}
