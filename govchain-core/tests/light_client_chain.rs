//! End to end in core: a certified chain with state, built by the testkit,
//! verified by a light client that trusts only the genesis validator set,
//! across a validator-set change, followed by transaction, state and
//! ancestor proofs (and their tampered variants).

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govchain_core::codec::Encode;
use govchain_core::crypto::SecretKey;
use govchain_core::light::{LightClient, LightClientError};
use govchain_core::merkle::MerkleError;
use govchain_core::smt::SmtProofError;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};

fn keys(range: std::ops::Range<u8>) -> Vec<SecretKey> {
    range.map(|i| SecretKey::from_seed(&[i; 32])).collect()
}

fn build() -> ChainBuilder<KvApp> {
    let chain = ChainId::new("hz-main").unwrap();
    let mut builder =
        ChainBuilder::new(chain.clone(), KvApp, keys(1..5), Timestamp::new(1_000)).unwrap();
    let citizen = SecretKey::from_seed(&[100; 32]);
    let mut nonce = 0;
    for h in 1..=12u64 {
        if h == 5 {
            // Department 5 joins; department 1 leaves.
            builder.change_validators(keys(2..6)).unwrap();
        }
        let txs: Vec<Transaction> = (0..(h % 4))
            .map(|i| {
                let key = format!("record-{h}-{i}");
                let tx = Transaction::new_signed(
                    chain.clone(),
                    &citizen,
                    nonce,
                    KvApp::payload(key.as_bytes(), b"v"),
                )
                .unwrap();
                nonce += 1;
                tx
            })
            .collect();
        builder
            .produce_block(txs, Timestamp::new(1_000 + h))
            .unwrap();
    }
    builder
}

#[test]
fn light_client_follows_chain_and_checks_proofs() {
    let builder = build();
    let (genesis_set, genesis_time) = builder.genesis();
    let mut client = LightClient::from_genesis(
        builder.chain_id().clone(),
        genesis_set.clone(),
        genesis_time,
    );
    for committed in builder.blocks() {
        client.verify(&committed.light).unwrap();
    }
    assert_eq!(client.height(), Height::new(12));
    // The set really changed: the last header is signed by another set.
    assert_ne!(
        client.header(Height::new(12)).unwrap().validator_set_hash,
        genesis_set.hash()
    );

    // Transaction inclusion: block 3 has 3 transactions.
    let h3 = Height::new(3);
    let tx = &builder.block(h3).unwrap().block.transactions[2];
    let proof = builder.tx_proof(h3, 2).unwrap();
    client
        .verify_transaction(h3, &tx.to_bytes(), &proof)
        .unwrap();
    let other = builder.block(h3).unwrap().block.transactions[1].to_bytes();
    assert!(matches!(
        client.verify_transaction(h3, &other, &proof),
        Err(LightClientError::MerkleProof(MerkleError::RootMismatch))
    ));

    // State: a record written at block 3 is still there at height 12.
    let h12 = Height::new(12);
    let key = KvApp::state_key(b"record-3-2");
    let (value, proof) = builder.state_proof(h12, &key).unwrap();
    assert_eq!(value.as_deref(), Some(b"v".as_slice()));
    client.verify_state(h12, &key, Some(b"v"), &proof).unwrap();
    assert!(matches!(
        client.verify_state(h12, &key, Some(b"forged"), &proof),
        Err(LightClientError::StateProof(_))
    ));
    assert!(matches!(
        client.verify_state(h12, &key, None, &proof),
        Err(LightClientError::StateProof(_))
    ));
    // Non-membership of a record never written.
    let absent = KvApp::state_key(b"record-99-0");
    let (value, proof) = builder.state_proof(h12, &absent).unwrap();
    assert_eq!(value, None);
    client.verify_state(h12, &absent, None, &proof).unwrap();
    assert!(matches!(
        client.verify_state(h12, &absent, Some(b"v"), &proof),
        Err(LightClientError::StateProof(
            SmtProofError::KeyAbsent { .. } | SmtProofError::LeafKeyMismatch { .. }
        ))
    ));

    // History: block 3's hash is in header 12's history log.
    let hash3 = builder.block(h3).unwrap().block.hash();
    let proof = builder.ancestor_proof(h12, h3).unwrap();
    client.verify_ancestor(h12, h3, &hash3, &proof).unwrap();
    let hash4 = builder.block(Height::new(4)).unwrap().block.hash();
    assert!(matches!(
        client.verify_ancestor(h12, h3, &hash4, &proof),
        Err(LightClientError::MerkleProof(MerkleError::RootMismatch))
    ));
    assert!(matches!(
        client.verify_ancestor(h12, Height::new(4), &hash4, &proof),
        Err(LightClientError::AncestorIndexMismatch {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        client.verify_ancestor(h12, h12, &hash4, &proof),
        Err(LightClientError::NotInHistory { .. })
    ));
}

#[test]
fn replayed_nonce_is_rejected_by_the_application() {
    let mut builder = build();
    let citizen = SecretKey::from_seed(&[100; 32]);
    let replay = Transaction::new_signed(
        builder.chain_id().clone(),
        &citizen,
        0,
        KvApp::payload(b"k", b"v"),
    )
    .unwrap();
    let err = builder
        .produce_block(vec![replay], Timestamp::new(5_000))
        .unwrap_err();
    assert!(err.to_string().contains("bad nonce"), "{err}");
}
