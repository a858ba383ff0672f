//! End to end in core: a certified chain with state, built by the testkit,
//! verified by a light client that trusts only the genesis validator set,
//! across a validator-set change, followed by transaction, state and
//! ancestor proofs (and their tampered variants), under both crypto
//! suites; and cross-suite confusion: a header, signature, key or proof of
//! one suite presented under the other is refused with a typed error.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govchain_core::block::{Block, BlockError, BlockHeader};
use govchain_core::cert::{CertificateError, CommitCertificate, CommitSignature};
use govchain_core::codec::DecodeError;
use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, SecretKey, SignatureAlgorithm, Signer, SuiteMismatch};
use govchain_core::light::{LightClient, LightClientError};
use govchain_core::merkle::MerkleError;
use govchain_core::smt::SmtProofError;
use govchain_core::testkit::TestkitError;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::tx::TxError;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet, ValidatorSetError};

fn keys(suite: CryptoSuite, range: std::ops::Range<u8>) -> Vec<SecretKey> {
    range
        .map(|i| SecretKey::from_seed_for(suite, &[i; 32]))
        .collect()
}

fn other(suite: CryptoSuite) -> CryptoSuite {
    match suite {
        CryptoSuite::Sm2Sm3 => CryptoSuite::Ed25519Blake3,
        _ => CryptoSuite::Sm2Sm3,
    }
}

fn build(suite: CryptoSuite) -> ChainBuilder<KvApp> {
    let chain = ChainId::new("hz-main").unwrap();
    let mut builder = ChainBuilder::new(
        chain.clone(),
        KvApp,
        keys(suite, 1..5),
        Timestamp::new(1_000),
    )
    .unwrap();
    assert_eq!(builder.suite(), suite);
    let citizen = SecretKey::from_seed_for(suite, &[100; 32]);
    let mut nonce = 0;
    for h in 1..=12u64 {
        if h == 5 {
            // Department 5 joins; department 1 leaves.
            builder.change_validators(keys(suite, 2..6)).unwrap();
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
    for suite in CryptoSuite::ALL {
        light_client_follows_chain_and_checks_proofs_under(*suite);
    }
}

fn light_client_follows_chain_and_checks_proofs_under(suite: CryptoSuite) {
    let builder = build(suite);
    let (genesis_set, genesis_time) = builder.genesis();
    let mut client = LightClient::from_genesis(
        builder.chain_id().clone(),
        genesis_set.clone(),
        genesis_time,
    );
    assert_eq!(client.suite(), suite);
    for committed in builder.blocks() {
        assert_eq!(committed.block.header.suite, suite);
        committed.block.validate_body().unwrap();
        let bytes = committed.block.header.to_bytes();
        assert_eq!(BlockHeader::decode(&bytes).unwrap(), committed.block.header);
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
    let mut builder = build(CryptoSuite::Sm2Sm3);
    let citizen = SecretKey::sm2_from_seed(&[100; 32]);
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

/// Verifies `cert` against its own chain, height and block hash.
fn verify_own(cert: &CommitCertificate, set: &ValidatorSet) -> Result<(), CertificateError> {
    cert.verify(&cert.chain_id, cert.height, &cert.block_hash, set)
}

/// The same chain built under each suite, and a light client of each.
fn both() -> [(ChainBuilder<KvApp>, LightClient); 2] {
    [CryptoSuite::Ed25519Blake3, CryptoSuite::Sm2Sm3].map(|suite| {
        let builder = build(suite);
        let (set, time) = builder.genesis();
        let client = LightClient::from_genesis(builder.chain_id().clone(), set.clone(), time);
        (builder, client)
    })
}

#[test]
fn headers_of_one_suite_are_refused_under_the_other() {
    let [(ed, mut ed_client), (sm, mut sm_client)] = both();
    let ed1 = &ed.block(Height::new(1)).unwrap().light;
    let sm1 = &sm.block(Height::new(1)).unwrap().light;
    // A whole light block of the other suite.
    assert_eq!(
        ed_client.verify(sm1),
        Err(LightClientError::WrongSuite {
            expected: CryptoSuite::Ed25519Blake3,
            got: CryptoSuite::Sm2Sm3
        })
    );
    assert_eq!(
        sm_client.verify(ed1),
        Err(LightClientError::WrongSuite {
            expected: CryptoSuite::Sm2Sm3,
            got: CryptoSuite::Ed25519Blake3
        })
    );
    // An SM header relabelled as Ed25519 (and the other way round): its
    // hash changes, and the client refuses it by suite first.
    for (client, block, label) in [
        (&mut ed_client, sm1, CryptoSuite::Ed25519Blake3),
        (&mut sm_client, ed1, CryptoSuite::Sm2Sm3),
    ] {
        let mut relabelled = block.clone();
        relabelled.header.suite = label;
        assert_ne!(relabelled.header.hash(), block.header.hash());
        assert!(matches!(
            client.verify(&relabelled),
            Err(LightClientError::WrongSuite { .. }
                | LightClientError::UnexpectedValidatorSet { .. }
                | LightClientError::UnknownValidatorSet { .. })
        ));
        // Its body no longer matches (proposer of the other algorithm).
        let body = Block {
            header: relabelled.header.clone(),
            transactions: Vec::new(),
        };
        assert!(matches!(
            body.validate_body(),
            Err(BlockError::ProposerSuiteMismatch { .. })
        ));
        // And its bytes do not decode: the proposer key is not of the suite
        // the version names.
        assert!(matches!(
            BlockHeader::decode(&relabelled.header.to_bytes()),
            Err(DecodeError::InvalidValue { .. })
        ));
    }
    // The genuine ones still verify.
    ed_client.verify(ed1).unwrap();
    sm_client.verify(sm1).unwrap();
}

#[test]
fn header_encoding_is_canonical_per_suite() {
    let [(ed, _), (sm, _)] = both();
    let ed_h = ed.block(Height::new(2)).unwrap().block.header.clone();
    let sm_h = sm.block(Height::new(2)).unwrap().block.header.clone();
    assert_eq!(ed_h.version(), 1);
    assert_eq!(sm_h.version(), 2);
    let ed_b = ed_h.to_bytes();
    let sm_b = sm_h.to_bytes();
    assert_eq!(&ed_b[..2], &[1, 0]);
    assert_eq!(&sm_b[..3], &[2, 0, CryptoSuite::Sm2Sm3.id()]);
    // A version-2 header naming ed25519-blake3 is a second spelling of a
    // version-1 header: refused.
    let mut v2_default = vec![2, 0, CryptoSuite::Ed25519Blake3.id()];
    v2_default.extend_from_slice(&ed_b[2..]);
    assert!(matches!(
        BlockHeader::decode(&v2_default),
        Err(DecodeError::InvalidValue { .. })
    ));
    // Unknown suite id and unknown version.
    let mut bad_suite = sm_b.clone();
    bad_suite[2] = 9;
    assert!(BlockHeader::decode(&bad_suite).is_err());
    let mut bad_version = ed_b.clone();
    bad_version[0] = 3;
    assert!(BlockHeader::decode(&bad_version).is_err());
    // Every truncation and trailing byte is refused.
    for b in [&ed_b, &sm_b] {
        for cut in 0..b.len() {
            assert!(BlockHeader::decode(&b[..cut]).is_err());
        }
        let mut long = b.clone();
        long.push(0);
        assert!(BlockHeader::decode(&long).is_err());
    }
    // The largest SM2 header fits the limit.
    let mut big = sm_h.clone();
    big.chain_id = ChainId::new("x".repeat(govchain_core::types::MAX_CHAIN_ID_LEN)).unwrap();
    assert!(big.to_bytes().len() <= govchain_core::block::MAX_HEADER_ENCODED_LEN);
    assert_eq!(BlockHeader::decode(&big.to_bytes()).unwrap(), big);
}

#[test]
fn keys_and_signatures_of_the_other_suite_are_refused() {
    for suite in CryptoSuite::ALL.iter().copied() {
        let mut builder = build(suite);
        // A sender of the other algorithm.
        let stranger = SecretKey::from_seed_for(other(suite), &[7; 32]);
        let tx = Transaction::new_signed(
            builder.chain_id().clone(),
            &stranger,
            0,
            KvApp::payload(b"k", b"v"),
        )
        .unwrap();
        assert_eq!(tx.suite(), other(suite));
        assert!(matches!(
            tx.check_suite(suite),
            Err(TxError::WrongSuite(SuiteMismatch { .. }))
        ));
        assert!(matches!(
            builder.produce_block(vec![tx.clone()], Timestamp::new(9_000)),
            Err(TestkitError::Transaction {
                index: 0,
                source: TxError::WrongSuite(_)
            })
        ));
        // A block carrying it is refused by body validation.
        let mut block = builder.block(Height::new(2)).unwrap().block.clone();
        block.transactions = vec![tx];
        block.header.tx_count = 1;
        block.header.tx_root = govchain_core::block::tx_root_of(suite, &block.transactions);
        assert!(matches!(
            block.validate_body(),
            Err(BlockError::SenderSuiteMismatch { index: 0, .. })
        ));
        // Validators of the other algorithm: refused at the next block.
        builder
            .change_validators(keys(other(suite), 1..5))
            .unwrap_err();
        // A set mixing both algorithms can not be built.
        let mixed: Vec<Validator> = keys(suite, 1..3)
            .iter()
            .chain(&keys(other(suite), 3..4))
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect();
        assert!(matches!(
            ValidatorSet::new(mixed),
            Err(ValidatorSetError::MixedAlgorithms { .. })
        ));
        // A certificate signature of the other algorithm under a member key.
        let committed = builder.block(Height::new(1)).unwrap();
        let mut cert = committed.light.certificate.clone();
        let digest = cert.vote_message().signing_digest(suite);
        cert.signatures[0].signature = stranger.sign(digest.as_bytes());
        let set = committed.light.validator_set.clone().unwrap();
        assert!(matches!(
            verify_own(&cert, &set),
            Err(CertificateError::SignatureAlgorithmMismatch { .. })
        ));
        // A signature over the digest of the other suite's hash function.
        let mut cert = committed.light.certificate.clone();
        let signer = keys(suite, 1..5)
            .into_iter()
            .find(|k| k.public_key() == cert.signatures[0].validator)
            .unwrap();
        let wrong = cert.vote_message().signing_digest(other(suite));
        cert.signatures[0] = CommitSignature {
            validator: signer.public_key(),
            signature: signer.sign(wrong.as_bytes()),
        };
        assert!(matches!(
            verify_own(&cert, &set),
            Err(CertificateError::InvalidSignatures { .. })
        ));
        assert_eq!(
            SignatureAlgorithm::Sm2,
            CryptoSuite::Sm2Sm3.signature_algorithm()
        );
    }
}

#[test]
fn proofs_of_one_suite_do_not_verify_under_the_other() {
    let [(ed, ed_client), (sm, sm_client)] = both();
    let mut clients = [ed_client, sm_client];
    for c in &mut clients {
        let b = if c.suite() == CryptoSuite::Sm2Sm3 {
            &sm
        } else {
            &ed
        };
        for committed in b.blocks() {
            c.verify(&committed.light).unwrap();
        }
    }
    let [ed_client, sm_client] = clients;
    let (h3, h12) = (Height::new(3), Height::new(12));
    for (prover, verifier) in [(&ed, &sm_client), (&sm, &ed_client)] {
        let other_hf = verifier.suite().hash_function();
        // The transaction tree and proof under the prover's suite, checked
        // against the verifier's own header of the same content.
        let tx = prover.block(h3).unwrap().block.transactions[2].to_bytes();
        let proof = prover.tx_proof(h3, 2).unwrap();
        let header = prover.block(h3).unwrap().block.header.clone();
        assert_eq!(
            proof.verify_tx(other_hf, &tx, &header.tx_root, u64::from(header.tx_count)),
            Err(MerkleError::RootMismatch)
        );
        proof
            .verify_tx(
                header.suite.hash_function(),
                &tx,
                &header.tx_root,
                u64::from(header.tx_count),
            )
            .unwrap();
        // State proofs: a proof of the prover's tree does not verify under
        // the other function, against the prover's own root.
        let key = KvApp::state_key(b"record-3-2");
        let (_, proof) = prover.state_proof(h12, &key).unwrap();
        let root = prover.block(h12).unwrap().block.header.state_root;
        let hf = prover.suite().hash_function();
        proof
            .verify(
                hf,
                &root,
                &govchain_core::smt::KeyHash::of(hf, &key),
                Some(b"v"),
            )
            .unwrap();
        assert!(proof
            .verify(
                other_hf,
                &root,
                &govchain_core::smt::KeyHash::of(other_hf, &key),
                Some(b"v")
            )
            .is_err());
        assert!(matches!(
            verifier.verify_state(h12, &key, Some(b"v"), &proof),
            Err(LightClientError::StateProof(_))
        ));
        // History proofs likewise.
        let hash3 = prover.block(h3).unwrap().block.hash();
        let proof = prover.ancestor_proof(h12, h3).unwrap();
        assert!(matches!(
            verifier.verify_ancestor(h12, h3, &hash3, &proof),
            Err(LightClientError::MerkleProof(_))
        ));
    }
}
