//! Arbitrary byte messages, from validators and a stranger, fed to a
//! Tendermint engine: every message must give effects or a typed error.
#![no_main]
use std::sync::Arc;

use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::Consensus;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::types::{ChainId, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys: Vec<Arc<SecretKey>> = (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect();
    let validators = keys
        .iter()
        .map(|k| Validator {
            public_key: k.public_key(),
            power: 1,
        })
        .collect();
    let (Ok(set), Ok(chain)) = (ValidatorSet::new(validators), ChainId::new("main")) else {
        return;
    };
    let Ok((mut engine, _)) = Tendermint::restore(
        TendermintConfig::new(chain, set),
        keys[0].clone(),
        &[],
        Timestamp::new(0),
    ) else {
        return;
    };
    let stranger = SecretKey::from_seed(&[99; 32]).public_key();
    // Each message: 1 byte sender selector, 2 bytes length, then the bytes.
    let mut rest = data;
    while let [who, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (message, next) = tail.split_at(len);
        let from = keys
            .get(usize::from(*who) % 5)
            .map_or_else(|| stranger.clone(), |k| k.public_key());
        let _ = engine.step(&from, message);
        rest = next;
    }
    let _ = engine.tick(Timestamp::new(60_000));
});
