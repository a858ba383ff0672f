//! Arbitrary bytes as a header and certificate presented to a light client
//! that trusts a fixed 4-validator genesis set.
#![no_main]
use govchain_core::block::BlockHeader;
use govchain_core::cert::CommitCertificate;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::light::{LightBlock, LightClient};
use govchain_core::types::{ChainId, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data
        .first()
        .map(|b| (*b as usize * 4).min(data.len().saturating_sub(1)))
    else {
        return;
    };
    let (header_bytes, cert_bytes) = data[1..].split_at(split.min(data.len() - 1));
    let (Ok(header), Ok(certificate)) = (
        BlockHeader::decode(header_bytes),
        CommitCertificate::decode(cert_bytes),
    ) else {
        return;
    };
    let validators: Vec<Validator> = (1..=4u8)
        .map(|i| Validator {
            public_key: SecretKey::from_seed(&[i; 32]).public_key(),
            power: 1,
        })
        .collect();
    let Ok(set) = ValidatorSet::new(validators) else {
        return;
    };
    let Ok(chain) = ChainId::new("fuzz") else {
        return;
    };
    let mut client = LightClient::from_genesis(chain, set, Timestamp::new(0));
    let _ = client.verify(&LightBlock {
        header,
        certificate,
        validator_set: None,
    });
});
