//! perf-report rows for the `core` area: the two crypto suites side by
//! side, each SM2/SM3 row against its Ed25519/BLAKE3 counterpart measured
//! in the same run (interleaved rounds, medians):
//! - `sm2_sign` (`us`): one [`Signer::sign`] of a 250-byte message by an
//!   SM2 [`SecretKey`] (RFC 6979 nonce, one fixed-base scalar
//!   multiplication); against `ed25519_sign` (`us`).
//! - `sm2_verify_single` (`us`): one [`verify`] (SM2 on the `sm2` crate);
//!   against `ed25519_verify_single` (`us`), the ZIP-215 equation.
//! - `sm2_verify_batch_1024_per_sig` (`us` per signature): [`verify_batch`]
//!   of 1,024 signatures by distinct keys on the rayon pool (SM2: parallel
//!   single verifications, there is no batch equation); against
//!   `ed25519_verify_batch_1024_per_sig`.
//! - `sm2_verify_batch_1024_1thread_per_sig` (`us` per signature): the
//!   same with [`verify_batch_sequential`] on one thread; against
//!   `ed25519_verify_batch_1024_1thread_per_sig`. On a shared machine the
//!   one-thread pair is the stable comparison.
//! - `sm3_hash_1kib` (`MiB/s`): [`HashFunction::Sm3`] of 1 KiB under a
//!   domain; against `blake3_hash_1kib` (`MiB/s`), [`HashFunction::Blake3`]
//!   (= `Hash::of`).
//! - `sm3_hash_node` (`node/s`): a 64-byte Merkle inner node
//!   ([`HashFunction::hash_node`]); against `blake3_hash_node` (`node/s`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use govchain_core::crypto::{
    verify, verify_batch, verify_batch_sequential, BatchItem, CryptoSuite, PublicKey, SecretKey,
    Signature, Signer,
};
use govchain_core::hash::{Domain, Hash, HashFunction};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::signatures::MESSAGE_LEN;
use crate::{progress, Row};

/// Signatures in the batch rows.
pub const SUITE_BATCH_N: usize = 1024;

/// `n` random messages signed by `n` distinct keys of `suite`.
pub struct SuiteWorkload {
    /// One secret key per message.
    pub secrets: Vec<SecretKey>,
    /// The public keys.
    pub keys: Vec<PublicKey>,
    /// The messages.
    pub messages: Vec<Vec<u8>>,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

impl SuiteWorkload {
    /// `n` signed `MESSAGE_LEN`-byte messages of `suite`, from a fixed seed.
    pub fn new(suite: CryptoSuite, n: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secrets: Vec<SecretKey> = (0..n)
            .map(|_| SecretKey::generate_for(suite, &mut rng))
            .collect();
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let mut m = vec![0u8; MESSAGE_LEN];
                rng.fill_bytes(&mut m);
                m
            })
            .collect();
        let signatures = secrets
            .iter()
            .zip(&messages)
            .map(|(k, m)| k.sign(m))
            .collect();
        let keys = secrets.iter().map(|k| k.public_key()).collect();
        SuiteWorkload {
            secrets,
            keys,
            messages,
            signatures,
        }
    }

    /// The workload as batch items.
    pub fn items(&self) -> Vec<BatchItem<'_>> {
        self.keys
            .iter()
            .zip(&self.messages)
            .zip(&self.signatures)
            .map(|((k, m), s)| BatchItem::new(k, m, s))
            .collect()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn timed<F: FnOnce()>(f: F) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn check(ok: bool, what: &str) {
    if !ok {
        progress(&format!("suites: {what} rejected a valid workload"));
    }
}

/// Medians of `rounds` interleaved samples of each closure.
fn interleaved<const N: usize>(rounds: usize, fs: &mut [&mut dyn FnMut(); N]) -> [Duration; N] {
    let mut samples: [Vec<Duration>; N] = std::array::from_fn(|_| Vec::new());
    for f in fs.iter_mut() {
        f(); // warm-up
    }
    for _ in 0..rounds {
        for (f, s) in fs.iter_mut().zip(samples.iter_mut()) {
            s.push(timed(&mut **f));
        }
    }
    samples.map(median)
}

fn us_per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Measures and prints this module's rows.
pub fn report() {
    progress("suites: signing 1,024 messages with each suite");
    let ed = SuiteWorkload::new(CryptoSuite::Ed25519Blake3, SUITE_BATCH_N, 11);
    let sm = SuiteWorkload::new(CryptoSuite::Sm2Sm3, SUITE_BATCH_N, 12);

    // Single sign and verify: loops of `calls` over one key.
    let calls = 500;
    let (ed_sk, sm_sk) = (&ed.secrets[0], &sm.secrets[0]);
    let message = &ed.messages[0];
    let [sm_sign, ed_sign] = interleaved(
        7,
        &mut [
            &mut || {
                for _ in 0..calls {
                    black_box(sm_sk.sign(black_box(message)));
                }
            },
            &mut || {
                for _ in 0..calls {
                    black_box(ed_sk.sign(black_box(message)));
                }
            },
        ],
    );
    Row::new(
        "core",
        "sm2_sign",
        us_per(sm_sign, calls),
        "us",
        "ed25519_sign",
        us_per(ed_sign, calls),
    )
    .emit();

    let (sm_item, ed_item) = (sm.items()[0], ed.items()[0]);
    let [sm_verify, ed_verify] = interleaved(
        7,
        &mut [
            &mut || {
                for _ in 0..calls {
                    check(
                        verify(sm_item.key, black_box(sm_item.message), sm_item.signature).is_ok(),
                        "sm2 verify",
                    );
                }
            },
            &mut || {
                for _ in 0..calls {
                    check(
                        verify(ed_item.key, black_box(ed_item.message), ed_item.signature).is_ok(),
                        "ed25519 verify",
                    );
                }
            },
        ],
    );
    Row::new(
        "core",
        "sm2_verify_single",
        us_per(sm_verify, calls),
        "us",
        "ed25519_verify_single",
        us_per(ed_verify, calls),
    )
    .emit();

    progress("suites: batches of 1,024");
    let (sm_items, ed_items) = (sm.items(), ed.items());
    let [sm_par, ed_par, sm_seq, ed_seq] = interleaved(
        5,
        &mut [
            &mut || check(verify_batch(black_box(&sm_items)).is_ok(), "sm2 batch"),
            &mut || check(verify_batch(black_box(&ed_items)).is_ok(), "ed25519 batch"),
            &mut || {
                check(
                    verify_batch_sequential(black_box(&sm_items)).is_ok(),
                    "sm2 sequential batch",
                )
            },
            &mut || {
                check(
                    verify_batch_sequential(black_box(&ed_items)).is_ok(),
                    "ed25519 sequential batch",
                )
            },
        ],
    );
    Row::new(
        "core",
        "sm2_verify_batch_1024_per_sig",
        us_per(sm_par, SUITE_BATCH_N),
        "us",
        "ed25519_verify_batch_1024_per_sig",
        us_per(ed_par, SUITE_BATCH_N),
    )
    .emit();
    Row::new(
        "core",
        "sm2_verify_batch_1024_1thread_per_sig",
        us_per(sm_seq, SUITE_BATCH_N),
        "us",
        "ed25519_verify_batch_1024_1thread_per_sig",
        us_per(ed_seq, SUITE_BATCH_N),
    )
    .emit();

    progress("suites: SM3 and BLAKE3 hashing");
    let data = vec![0x5au8; 1024];
    let reps = 20_000;
    let [sm3_1k, blake3_1k] = interleaved(
        7,
        &mut [
            &mut || {
                for _ in 0..reps {
                    black_box(HashFunction::Sm3.hash(Domain::TxLeaf, black_box(&data)));
                }
            },
            &mut || {
                for _ in 0..reps {
                    black_box(HashFunction::Blake3.hash(Domain::TxLeaf, black_box(&data)));
                }
            },
        ],
    );
    let mib = (reps * data.len()) as f64 / (1024.0 * 1024.0);
    Row::new(
        "core",
        "sm3_hash_1kib",
        mib / sm3_1k.as_secs_f64(),
        "MiB/s",
        "blake3_hash_1kib",
        mib / blake3_1k.as_secs_f64(),
    )
    .emit();

    let (l, r) = (Hash::from_bytes([1; 32]), Hash::from_bytes([2; 32]));
    let nodes = 100_000;
    let [sm3_node, blake3_node] = interleaved(
        7,
        &mut [
            &mut || {
                let mut acc = l;
                for _ in 0..nodes {
                    acc = HashFunction::Sm3.hash_node(Domain::TxNode, black_box(&acc), &r);
                }
                black_box(acc);
            },
            &mut || {
                let mut acc = l;
                for _ in 0..nodes {
                    acc = HashFunction::Blake3.hash_node(Domain::TxNode, black_box(&acc), &r);
                }
                black_box(acc);
            },
        ],
    );
    Row::new(
        "core",
        "sm3_hash_node",
        rate(nodes, sm3_node),
        "node/s",
        "blake3_hash_node",
        rate(nodes, blake3_node),
    )
    .emit();
}
