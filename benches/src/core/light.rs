//! perf-report rows for the `core` area: the light client.
//!
//! Workload: a 64-block chain certified by 4 equal-power validators (built
//! with `govchain_core::testkit`), all measured in the same run:
//! - `light_header_verify_4` (`us` per header): a fresh light client verifies
//!   all 64 headers (chain, parent, time, set, certificate structure, vote
//!   digest, signatures); against `cert_signatures_batch_4` (`us` per header),
//!   the same 4 signature checks per header done alone with
//!   `verify_batch_sequential`, the call the certificate makes. Goal: ratio at
//!   most 1.2.
//! - the same metric against `cert_signatures_single_4` (`us` per header): 4
//!   single verifications, for scale.

use govchain_core::crypto::{verify, verify_batch_sequential, BatchItem, SecretKey};
use govchain_core::hash::Hash;
use govchain_core::light::LightClient;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::types::{ChainId, Timestamp};

use crate::{median_time, progress, Row};

const BLOCKS: usize = 64;

/// Measures and prints this module's rows.
pub fn report() {
    progress("light: building a 64-block chain with 4 validators");
    let chain = match ChainId::new("bench-light") {
        Ok(c) => c,
        Err(e) => return progress(&format!("light: {e}")),
    };
    let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
    let mut builder = match ChainBuilder::new(chain.clone(), KvApp, keys, Timestamp::new(0)) {
        Ok(b) => b,
        Err(e) => return progress(&format!("light: {e}")),
    };
    for h in 1..=BLOCKS as u64 {
        if let Err(e) = builder.produce_block(Vec::new(), Timestamp::new(h)) {
            return progress(&format!("light: {e}"));
        }
    }
    let (set, time) = builder.genesis();
    let set = set.clone();
    let blocks = builder.blocks();

    // The signature checks alone, exactly as the certificate performs them.
    let digests: Vec<Hash> = blocks
        .iter()
        .map(|b| {
            b.light
                .certificate
                .vote_message()
                .signing_digest(b.block.header.suite)
        })
        .collect();
    let per_block_items = |i: usize| -> Vec<BatchItem<'_>> {
        blocks[i]
            .light
            .certificate
            .signatures
            .iter()
            .map(|s| BatchItem::new(&s.validator, digests[i].as_bytes(), &s.signature))
            .collect()
    };

    let mut failures = 0usize;
    let runs = 15;
    let header = median_time(runs, || {
        let mut client = LightClient::from_genesis(chain.clone(), set.clone(), time);
        for b in blocks {
            if client.verify(&b.light).is_err() {
                failures += 1;
            }
        }
    });
    let batch = median_time(runs, || {
        for i in 0..blocks.len() {
            if verify_batch_sequential(&per_block_items(i)).is_err() {
                failures += 1;
            }
        }
    });
    let single = median_time(runs, || {
        for i in 0..blocks.len() {
            for item in per_block_items(i) {
                if verify(item.key, item.message, item.signature).is_err() {
                    failures += 1;
                }
            }
        }
    });
    if failures > 0 {
        progress(&format!(
            "light: {failures} verifications failed; rows not reported"
        ));
        return;
    }
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / BLOCKS as f64;
    Row::new(
        "core",
        "light_header_verify_4",
        us(header),
        "us",
        "cert_signatures_batch_4",
        us(batch),
    )
    .emit();
    Row::new(
        "core",
        "light_header_verify_4",
        us(header),
        "us",
        "cert_signatures_single_4",
        us(single),
    )
    .emit();
}
