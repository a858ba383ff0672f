//! The stable-toolchain twin of the fuzz targets in `fuzz/`: arbitrary and
//! mutated bytes fed to every decoder and verifier of core must give a typed
//! error or a value that re-encodes to the same bytes, never a panic.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govchain_core::block::{Block, BlockHeader};
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::crypto::SecretKey;
use govchain_core::light::{LightBlock, LightClient};
use govchain_core::merkle::{
    ConsistencyProof, InclusionProof, MAX_CONSISTENCY_PROOF_LEN, MAX_INCLUSION_PROOF_LEN,
};
use govchain_core::smt::{SparseMerkleProof, MAX_PROOF_LEN};
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::ValidatorSet;
use proptest::prelude::*;

fn chain() -> ChainBuilder<KvApp> {
    let id = ChainId::new("hz-main").unwrap();
    let keys: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
    let mut b = ChainBuilder::new(id.clone(), KvApp, keys, Timestamp::new(0)).unwrap();
    let user = SecretKey::from_seed(&[9; 32]);
    let txs = (0..3)
        .map(|n| {
            Transaction::new_signed(id.clone(), &user, n, KvApp::payload(&[n as u8], b"v")).unwrap()
        })
        .collect();
    b.produce_block(txs, Timestamp::new(1)).unwrap();
    b
}

fn assert_canonical<T: Encode>(value: &T, bytes: &[u8]) {
    assert_eq!(
        value.to_bytes(),
        bytes,
        "an accepted input must be the canonical encoding"
    );
}

fn feed_all(bytes: &[u8]) {
    if let Ok(v) = Transaction::decode(bytes) {
        assert_canonical(&v, bytes);
        let _ = v.verify_signature();
    }
    if let Ok(v) = Block::decode(bytes, 1 << 20) {
        assert_canonical(&v, bytes);
        let _ = v.validate_body();
    }
    if let Ok(v) = BlockHeader::decode(bytes) {
        assert_canonical(&v, bytes);
    }
    if let Ok(v) = CommitCertificate::decode(bytes) {
        assert_canonical(&v, bytes);
    }
    if let Ok(v) = ValidatorSet::decode(bytes) {
        assert_canonical(&v, bytes);
    }
    if let Ok(v) = decode_exact::<InclusionProof>(bytes, MAX_INCLUSION_PROOF_LEN) {
        assert_canonical(&v, bytes);
    }
    if let Ok(v) = decode_exact::<ConsistencyProof>(bytes, MAX_CONSISTENCY_PROOF_LEN) {
        assert_canonical(&v, bytes);
    }
    if let Ok(v) = decode_exact::<SparseMerkleProof>(bytes, MAX_PROOF_LEN) {
        assert_canonical(&v, bytes);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        feed_all(&bytes);
    }
}

#[test]
fn every_single_byte_mutation_of_a_block_is_handled() {
    let b = chain();
    let committed = b.block(Height::new(1)).unwrap();
    let block_bytes = committed.block.to_bytes();
    let header_bytes = committed.block.header.to_bytes();
    let cert_bytes = committed.light.certificate.to_bytes();
    let (set, time) = b.genesis();
    let fresh = || LightClient::from_genesis(b.chain_id().clone(), set.clone(), time);
    fresh().verify(&committed.light).unwrap();

    for i in 0..block_bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut m = block_bytes.clone();
            m[i] ^= flip;
            feed_all(&m);
            // A mutated block never passes both decoding and body validation
            // while claiming the original header hash.
            if let Ok(block) = Block::decode(&m, 1 << 20) {
                if block.validate_body().is_ok() {
                    assert_ne!(
                        block.hash(),
                        committed.block.hash(),
                        "mutation at {i} kept the hash"
                    );
                }
            }
        }
    }
    // Every header or certificate mutation is rejected by the light client.
    for i in 0..header_bytes.len() {
        let mut m = header_bytes.clone();
        m[i] ^= 0x01;
        if let Ok(header) = BlockHeader::decode(&m) {
            let lb = LightBlock {
                header,
                ..committed.light.clone()
            };
            assert!(
                fresh().verify(&lb).is_err(),
                "header mutation at {i} verified"
            );
        }
    }
    for i in 0..cert_bytes.len() {
        let mut m = cert_bytes.clone();
        m[i] ^= 0x01;
        if let Ok(certificate) = CommitCertificate::decode(&m) {
            let lb = LightBlock {
                certificate,
                ..committed.light.clone()
            };
            // Flipping a bit inside one signature of a 4-of-4 certificate
            // must fail; so must any other change that decodes.
            assert!(
                fresh().verify(&lb).is_err(),
                "certificate mutation at {i} verified"
            );
        }
    }
    // Every truncation is refused.
    for cut in 0..block_bytes.len() {
        assert!(Block::decode(&block_bytes[..cut], 1 << 20).is_err());
    }
}
