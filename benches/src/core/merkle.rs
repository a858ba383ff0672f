//! perf-report rows for the `core` area: merkle.
//!
//! All rows are measured in the same run, as medians; candidates and
//! baselines are sampled interleaved so that load from other processes on a
//! shared machine falls on both alike:
//! - `merkle_root_1m` (`ms`): the transaction root of 2^20 leaf hashes on one
//!   thread (multi-lane BLAKE3, RFC 9162 shape, count-bound root); against
//!   `rs_merkle_sha256` (`rs_merkle` 1.5 `MerkleTree::<Sha256>::from_leaves`
//!   on the same 2^20 32-byte leaves) and against `blake3_keyed_hash_seq_1m`
//!   (2^20 sequential `blake3::keyed_hash` calls on 64-byte inputs: the same
//!   number of compressions done one node at a time).
//! - `merkle_root_1m_cpu` (`ms` of thread CPU time): the same pair measured
//!   in CPU time of the calling thread, summed over 5 interleaved rounds and
//!   averaged; against `blake3_keyed_hash_seq_1m_cpu`. Each wall-time sample
//!   above is one run of 50–120 ms, and on a shared machine a single
//!   preemption moves that ratio anywhere from 0.25 to 1.5 (measured at load
//!   average 8 on 2 cores), while the CPU-time ratio stayed within
//!   0.57–0.64. Linux only (omitted elsewhere).
//! - `merkle_root_1m_parallel` (`leaves/s`): the same root on rayon's pool;
//!   against `merkle_root_1m_single` (`leaves/s`), so the ratio is the
//!   speedup.
//! - `tx_root_10k` (`tx/s`): the transaction root of 10,000 transactions of
//!   250 bytes including their leaf hashing, on one thread; against
//!   `blake3_hash_250B_seq` (`tx/s`): `blake3::hash` of the same 10,000
//!   transactions, i.e. the leaf hashing alone without a tree.
//!
//! The trees are suite-threaded (`tx_root(hf, …)`); the sm2-sm3 rows run
//! the same code under [`HashFunction::Sm3`], which hashes node by node (no
//! multi-lane path):
//! - `merkle_root_1m_sm3` (`ms`): `tx_root(Sm3, …)` of the same 2^20 leaves
//!   on one thread; against `sm3_prefixed_hash_seq_1m` (2^20 sequential
//!   `sm3` digests of a 64-byte input after the cloned, pre-absorbed
//!   64-byte domain prefix: the raw SM3 sequential-hashing bound for the
//!   same number of nodes), and against `merkle_root_1m_blake3` (the BLAKE3
//!   root of the `merkle_root_1m` row, sampled interleaved with it, for the
//!   side-by-side ratio).
//! - `tx_root_10k_sm3` (`tx/s`): the `tx_root_10k` workload under SM3;
//!   against `sm3_hash_250B_seq` (`tx/s`): `sm3::Sm3::digest` of the same
//!   10,000 transactions, the leaf hashing alone without a tree.

use std::hint::black_box;
use std::time::Duration;

use govchain_core::hash::{sm3_domain_prefix, Domain, Hash, HashFunction};
use govchain_core::merkle::{tx_root, tx_root_of_transactions, tx_root_parallel};
use rs_merkle::algorithms::Sha256;
use rs_merkle::MerkleTree;
use sm3::Digest;

use super::signatures::thread_cpu_time;
use crate::{median_time, progress, Row};

/// Leaves of the large-tree rows.
pub const LEAVES_1M: usize = 1 << 20;
/// Transactions of the `tx_root_10k` row.
pub const TXS_10K: usize = 10_000;
/// Bytes per transaction of the `tx_root_10k` row.
pub const TX_BYTES: usize = 250;

/// `n` distinct 32-byte leaf hashes, from a fixed pattern.
pub fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| Hash::of(Domain::Test, &i.to_le_bytes()))
        .collect()
}

/// `n` distinct transactions of `len` bytes.
pub fn transactions(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n as u64)
        .map(|i| {
            let mut tx = vec![0u8; len];
            for (j, b) in tx.iter_mut().enumerate() {
                *b = (i as usize).wrapping_mul(31).wrapping_add(j) as u8;
            }
            tx
        })
        .collect()
}

/// 2^20-style baseline: one `blake3::keyed_hash` per 64-byte input, in
/// sequence.
pub fn keyed_hash_seq(inputs: &[[u8; 64]]) -> u8 {
    let key = Domain::TxNode.key();
    let mut acc = 0u8;
    for input in inputs {
        acc ^= blake3::keyed_hash(key, input).as_bytes()[0];
    }
    acc
}

/// 64-byte inputs for [`keyed_hash_seq`]: pairs of the given leaves.
pub fn node_inputs(leaves: &[Hash]) -> Vec<[u8; 64]> {
    leaves
        .iter()
        .zip(leaves.iter().cycle().skip(1))
        .map(|(l, r)| {
            let mut block = [0u8; 64];
            block[..32].copy_from_slice(l.as_bytes());
            block[32..].copy_from_slice(r.as_bytes());
            block
        })
        .collect()
}

/// The SM3 baseline of `merkle_root_1m_sm3`: one SM3 digest per 64-byte
/// input after the tree-node domain prefix, in sequence (the prefixed state
/// is computed once and cloned, as [`HashFunction::Sm3`] does).
pub fn sm3_prefixed_hash_seq(inputs: &[[u8; 64]]) -> u8 {
    let prefixed = sm3::Sm3::new_with_prefix(sm3_domain_prefix(Domain::TxNode));
    let mut acc = 0u8;
    for input in inputs {
        let mut h = prefixed.clone();
        h.update(input);
        acc ^= h.finalize()[0];
    }
    acc
}

/// The SM3 baseline of `tx_root_10k_sm3`: `sm3::Sm3::digest` of each
/// transaction in sequence (no domain prefix, no tree).
pub fn sm3_hash_seq(txs: &[Vec<u8>]) {
    for tx in txs {
        black_box(sm3::Sm3::digest(black_box(tx)));
    }
}

/// Milliseconds of a duration.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Times each closure `rounds` times, interleaved (A, B, C, A, B, C, …), each
/// sample a [`median_time`] of one run after a warm-up, and returns the
/// median per closure. On a shared machine the load then hits every
/// candidate alike instead of whichever ran during a busy spell.
fn interleaved(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds {
        for (f, s) in fs.iter_mut().zip(samples.iter_mut()) {
            s.push(median_time(1, &mut **f));
        }
    }
    samples.into_iter().map(median).collect()
}

/// Measures and prints this module's rows.
pub fn report() {
    progress("merkle: preparing 2^20 leaves");
    let leaves = leaves(LEAVES_1M);
    let raw: Vec<[u8; 32]> = leaves.iter().map(|h| h.to_bytes()).collect();
    let inputs = node_inputs(&leaves);

    progress("merkle: merkle_root_1m (single, parallel) and blake3 baseline, interleaved");
    let times = interleaved(
        5,
        &mut [
            &mut || {
                black_box(tx_root(
                    govchain_core::hash::HashFunction::Blake3,
                    black_box(&leaves),
                ));
            },
            &mut || {
                black_box(tx_root_parallel(
                    govchain_core::hash::HashFunction::Blake3,
                    black_box(&leaves),
                ));
            },
            &mut || {
                black_box(keyed_hash_seq(black_box(&inputs)));
            },
        ],
    );
    let (single, parallel, keyed) = (times[0], times[1], times[2]);
    // The same pair in thread CPU time, summed over interleaved rounds.
    let (mut tree_cpu, mut keyed_cpu) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let t0 = thread_cpu_time();
        black_box(tx_root(
            govchain_core::hash::HashFunction::Blake3,
            black_box(&leaves),
        ));
        let t1 = thread_cpu_time();
        black_box(keyed_hash_seq(black_box(&inputs)));
        let t2 = thread_cpu_time();
        if let (Some(t0), Some(t1), Some(t2)) = (t0, t1, t2) {
            tree_cpu += t1.saturating_sub(t0);
            keyed_cpu += t2.saturating_sub(t1);
        }
    }
    progress("merkle: rs_merkle baseline (about 1.5 s a run)");
    let rs = median_time(1, || {
        black_box(MerkleTree::<Sha256>::from_leaves(black_box(&raw)).root());
    });

    Row::new(
        "core",
        "merkle_root_1m",
        ms(single),
        "ms",
        "rs_merkle_sha256",
        ms(rs),
    )
    .emit();
    Row::new(
        "core",
        "merkle_root_1m",
        ms(single),
        "ms",
        "blake3_keyed_hash_seq_1m",
        ms(keyed),
    )
    .emit();
    if !tree_cpu.is_zero() && !keyed_cpu.is_zero() {
        Row::new(
            "core",
            "merkle_root_1m_cpu",
            ms(tree_cpu) / 5.0,
            "ms",
            "blake3_keyed_hash_seq_1m_cpu",
            ms(keyed_cpu) / 5.0,
        )
        .emit();
    }
    let rate = |d: Duration| LEAVES_1M as f64 / d.as_secs_f64();
    Row::new(
        "core",
        "merkle_root_1m_parallel",
        rate(parallel),
        "leaves/s",
        "merkle_root_1m_single",
        rate(single),
    )
    .emit();

    progress("merkle: tx_root_10k and blake3 baseline, interleaved");
    let txs = transactions(TXS_10K, TX_BYTES);
    let times = interleaved(
        21,
        &mut [
            &mut || {
                black_box(tx_root_of_transactions(
                    govchain_core::hash::HashFunction::Blake3,
                    black_box(&txs),
                ));
            },
            &mut || {
                for tx in &txs {
                    black_box(blake3::hash(black_box(tx)));
                }
            },
        ],
    );
    emit_tx_rate("tx_root_10k", "blake3_hash_250B_seq", &times);

    sm3_rows(&leaves, &inputs, &txs);
}

/// The sm2-sm3 rows (see the module docs).
fn sm3_rows(leaves: &[Hash], inputs: &[[u8; 64]], txs: &[Vec<u8>]) {
    progress("merkle: merkle_root_1m_sm3, raw SM3 and BLAKE3 roots, interleaved");
    let times = interleaved(
        3,
        &mut [
            &mut || {
                black_box(tx_root(HashFunction::Sm3, black_box(leaves)));
            },
            &mut || {
                black_box(sm3_prefixed_hash_seq(black_box(inputs)));
            },
            &mut || {
                black_box(tx_root(HashFunction::Blake3, black_box(leaves)));
            },
        ],
    );
    for (baseline, time) in [
        ("sm3_prefixed_hash_seq_1m", times[1]),
        ("merkle_root_1m_blake3", times[2]),
    ] {
        Row::new(
            "core",
            "merkle_root_1m_sm3",
            ms(times[0]),
            "ms",
            baseline,
            ms(time),
        )
        .emit();
    }

    progress("merkle: tx_root_10k_sm3 and SM3 baseline, interleaved");
    let times = interleaved(
        11,
        &mut [
            &mut || {
                black_box(tx_root_of_transactions(HashFunction::Sm3, black_box(txs)));
            },
            &mut || sm3_hash_seq(black_box(txs)),
        ],
    );
    emit_tx_rate("tx_root_10k_sm3", "sm3_hash_250B_seq", &times);
}

/// Emits a `tx/s` row of [`TXS_10K`] transactions from the medians `times`
/// of the candidate (`times[0]`) and its baseline (`times[1]`).
fn emit_tx_rate(metric: &str, baseline: &str, times: &[Duration]) {
    let tx_rate = |d: Duration| TXS_10K as f64 / d.as_secs_f64();
    let (candidate, base) = (
        times.first().copied().unwrap_or_default(),
        times.get(1).copied().unwrap_or_default(),
    );
    Row::new(
        "core",
        metric,
        tx_rate(candidate),
        "tx/s",
        baseline,
        tx_rate(base),
    )
    .emit();
}
