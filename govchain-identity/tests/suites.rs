//! The identity flow under both crypto suites, and cross-suite confusion:
//! keys of the other algorithm are refused by the application, the issuer
//! and the verifier, and a credential hashed under one suite never verifies
//! under the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{bureau_seed, root_seed, world_in, REVEAL};
use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, SecretKey, SignatureAlgorithm, Signer, SuiteMismatch};
use govchain_core::hash::HashFunction;
use govchain_core::types::Height;
use govchain_identity::app::{IdentityApp, IdentityGenesis, IdentityOp, OpError};
use govchain_identity::credential::{CredentialIssuer, IssueError};
use govchain_identity::ids::{IssuerId, KeyId, Region};
use govchain_identity::issuer::{Role, SchemaScope, Scope};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::status::{EntryStatus, StatusUpdate};
use govchain_identity::verifier::{AuditLog, Rejection, Verifier};

fn other(suite: CryptoSuite) -> CryptoSuite {
    match suite {
        CryptoSuite::Sm2Sm3 => CryptoSuite::Ed25519Blake3,
        _ => CryptoSuite::Sm2Sm3,
    }
}

/// Accredit (sandbox setup), issue, present with selective disclosure,
/// verify against chain state, revoke, and be refused — under each suite.
#[test]
fn identity_flow_under_both_suites() {
    for &suite in CryptoSuite::ALL {
        let mut w = world_in(&format!("flow-{suite}"), suite);
        assert_eq!(w.sb.suite(), suite);
        assert_eq!(w.sb.client().suite(), suite);
        assert_eq!(w.sb.chain().suite(), suite);
        let body = &w.held.credential.body;
        assert_eq!(body.suite, suite);
        assert_eq!(body.schema, w.sb.schema().id(suite));
        assert_eq!(
            w.held.credential.signature.algorithm(),
            suite.signature_algorithm()
        );
        for d in &w.held.disclosures {
            assert!(body.digests.binary_search(&d.digest(suite)).is_ok());
            assert!(body.digests.binary_search(&d.digest(other(suite))).is_err());
        }

        let p = w.present(&["name", "over_18"]);
        let v = w.verify(&p).unwrap();
        assert!(v.holder_bound);
        assert!(v.claims.contains_key("name") && !v.claims.contains_key("id_number"));
        assert_eq!(v.root, Sandbox::root_id());

        // A second issuer accredited on this chain, with keys of its suite.
        let controller = SecretKey::from_seed_for(suite, &[0x51; 32]);
        let accredit = IdentityOp::Accredit {
            parent: Sandbox::root_id(),
            child: IssuerId::new("nb-bureau").unwrap(),
            role: Role::Issuer,
            controller: controller.public_key(),
            scope: Scope::new(
                SchemaScope::Only(vec![w.sb.schema_id()]),
                vec![Region::new("CN-33-02").unwrap()],
                0,
            ),
            expires_at: None,
        };
        let root = SecretKey::from_seed_for(suite, &root_seed());
        w.sb.submit_ok(&[(&root, accredit)]).unwrap();

        // Revoke on chain: the next presentation is refused.
        let bureau = SecretKey::from_seed_for(suite, &bureau_seed());
        w.sb.submit_ok(&[(
            &bureau,
            IdentityOp::UpdateStatus {
                issuer: Sandbox::bureau_id(),
                list: Sandbox::LIST,
                updates: vec![StatusUpdate {
                    index: w.held.credential.body.status.index,
                    status: EntryStatus::Revoked,
                }],
            },
        )])
        .unwrap();
        let p = w.present(REVEAL);
        assert_eq!(w.verify(&p), Err(Rejection::Revoked));

        // The hall's audit log is chained under the chain's suite.
        let log = w.hall.audit_log();
        assert_eq!(log.suite(), suite);
        assert_eq!(log.records().len(), 2);
        AuditLog::verify_chain(suite, log.records()).unwrap();
        assert!(AuditLog::verify_chain(other(suite), log.records()).is_err());
    }
}

/// The application refuses keys of the other algorithm wherever it admits
/// a key, with [`OpError::KeySuite`] (receipt code 17).
#[test]
fn the_application_refuses_keys_of_the_other_suite() {
    for &suite in CryptoSuite::ALL {
        let mut sb = Sandbox::with_suite(suite).unwrap();
        let alien = SecretKey::from_seed_for(other(suite), &[0x77; 32]);
        let bureau = SecretKey::from_seed_for(suite, &bureau_seed());
        let root = SecretKey::from_seed_for(suite, &root_seed());
        let add_key = IdentityOp::AddKey {
            issuer: Sandbox::bureau_id(),
            key_id: KeyId::new(9),
            public_key: alien.public_key(),
        };
        let accredit = IdentityOp::Accredit {
            parent: Sandbox::root_id(),
            child: IssuerId::new("alien-bureau").unwrap(),
            role: Role::Issuer,
            controller: alien.public_key(),
            scope: Scope::new(SchemaScope::Any, vec![Region::new("CN-33-03").unwrap()], 0),
            expires_at: None,
        };
        let receipts = sb.submit(&[(&bureau, add_key), (&root, accredit)]).unwrap();
        for r in &receipts {
            assert_eq!(r.code, 17, "{}", String::from_utf8_lossy(&r.data));
        }
        // A genesis with a governance key or root of the other suite is
        // refused at construction.
        let bad = IdentityApp::new(IdentityGenesis {
            suite,
            governance: vec![alien.public_key()],
            roots: Vec::new(),
        });
        assert_eq!(
            bad.err(),
            Some(OpError::KeySuite {
                what: "governance key",
                mismatch: SuiteMismatch {
                    suite,
                    algorithm: other(suite).signature_algorithm(),
                },
            })
        );
    }
}

/// An issuer refuses a holder key of the other algorithm; its credentials
/// are of its key's suite.
#[test]
fn issuance_refuses_a_holder_key_of_the_other_suite() {
    let mut rng = common::rng("holder-suite");
    let sb = Sandbox::with_suite(CryptoSuite::Sm2Sm3).unwrap();
    assert_eq!(sb.issuer().suite(), CryptoSuite::Sm2Sm3);
    let ed_holder = SecretKey::generate(&mut rng);
    let mut sb = sb;
    let err = sb
        .issue(&mut rng, 3, Some(ed_holder.public_key()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            govchain_identity::sandbox::SandboxError::Issue(IssueError::HolderKeySuite(
                SuiteMismatch {
                    suite: CryptoSuite::Sm2Sm3,
                    algorithm: SignatureAlgorithm::Ed25519,
                }
            ))
        ),
        "{err:?}"
    );
}

/// A credential made for one suite's chain does not verify against the
/// other's, even when the hall accepts both suites.
#[test]
fn a_credential_of_one_suite_does_not_verify_under_the_other() {
    let mut sm = world_in("cross-sm", CryptoSuite::Sm2Sm3);
    let mut ed = world_in("cross-ed", CryptoSuite::Ed25519Blake3);

    // The SM2/SM3 credential presented to a hall following the Ed25519
    // chain: the policy refuses the suite outright...
    let p = sm.present(REVEAL);
    assert_eq!(
        ed.hall.verify(ed.sb.client(), &p.to_bytes(), ed.sb.now()),
        Err(Rejection::UnsupportedSuite {
            id: CryptoSuite::Sm2Sm3.id()
        })
    );
    // ...and a hall accepting both suites refuses it against a chain of the
    // other suite.
    let mut both = ed.sb.policy("hall-1").unwrap();
    both.accepted_suites = CryptoSuite::ALL.to_vec();
    let mut hall = Verifier::new(both).unwrap();
    let mut p = ed.present(REVEAL);
    p.credential.body.suite = CryptoSuite::Sm2Sm3;
    assert_eq!(
        hall.verify(ed.sb.client(), &p.to_bytes(), ed.sb.now()),
        Err(Rejection::ChainSuiteMismatch {
            credential: CryptoSuite::Sm2Sm3,
            chain: CryptoSuite::Ed25519Blake3,
        })
    );

    // A credential re-labelled with the other suite hashes differently: its
    // signing message changes, so the issuer's signature no longer holds.
    let held = &sm.held.credential;
    let mut relabelled = held.body.clone();
    relabelled.suite = CryptoSuite::Ed25519Blake3;
    assert_ne!(relabelled.signing_message(), held.body.signing_message());

    // On the SM chain, an Ed25519 holder key in a credential signed by the
    // registered SM2 issuer key is refused by the verifier.
    let mut p = sm.present(REVEAL);
    let ed_holder = SecretKey::from_seed(&[0x42; 32]);
    p.credential.body.holder = Some(ed_holder.public_key());
    sm.resign(&mut p.credential);
    assert_eq!(
        sm.verify(&p),
        Err(Rejection::HolderKeySuite {
            mismatch: SuiteMismatch {
                suite: CryptoSuite::Sm2Sm3,
                algorithm: SignatureAlgorithm::Ed25519,
            }
        })
    );

    // The Ed25519 chain's state proofs do not verify under SM3.
    let proofs = ed.sb.proofs(&ed.held).unwrap();
    let key = govchain_identity::state::schema_key(&ed.held.credential.body.schema);
    let header = ed.sb.client().header(proofs.height).unwrap();
    let value = proofs.schema.value.as_deref();
    assert!(proofs
        .schema
        .proof
        .verify(
            HashFunction::Blake3,
            &header.state_root,
            &govchain_core::smt::KeyHash::of(HashFunction::Blake3, &key),
            value
        )
        .is_ok());
    assert!(proofs
        .schema
        .proof
        .verify(
            HashFunction::Sm3,
            &header.state_root,
            &govchain_core::smt::KeyHash::of(HashFunction::Sm3, &key),
            value
        )
        .is_err());

    // An issuing context follows its key's suite.
    let schema = Sandbox::resident_schema().unwrap();
    for &suite in CryptoSuite::ALL {
        let key = SecretKey::from_seed_for(suite, &[5; 32]);
        let issuer = CredentialIssuer::new(
            Sandbox::bureau_id(),
            KeyId::new(0),
            &key,
            &schema,
            Height::new(1),
        );
        assert_eq!(issuer.suite(), suite);
    }
}
