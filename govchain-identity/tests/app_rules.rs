//! The identity application's authorization rules, end to end on a
//! certified chain: each refused operation yields its own receipt code and
//! writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use govchain_core::app::Application;
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::types::Height;
use govchain_identity::app::{IdentityOp, IdentityQuery};
use govchain_identity::ids::{IssuerId, KeyId, Region, StatusListId};
use govchain_identity::issuer::{GrantStatus, IssuerRecord, Role, SchemaScope, Scope};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::schema::Lifecycle;
use govchain_identity::state::issuer_key;
use govchain_identity::status::{EntryStatus, StatusUpdate, MIN_LIST_CAPACITY};

fn seed(tag: u8) -> SecretKey {
    let mut s = [0x1d; 32];
    s[0] = tag;
    SecretKey::from_seed(&s)
}

fn code(sb: &mut Sandbox, signer: &SecretKey, op: IdentityOp) -> u32 {
    sb.submit(&[(signer, op)]).unwrap()[0].code
}

fn accredit(
    parent: &str,
    child: &str,
    role: Role,
    jurisdiction: &str,
    depth: u8,
    controller: &SecretKey,
) -> IdentityOp {
    IdentityOp::Accredit {
        parent: IssuerId::new(parent).unwrap(),
        child: IssuerId::new(child).unwrap(),
        role,
        controller: controller.public_key(),
        scope: Scope::new(
            SchemaScope::Any,
            vec![Region::new(jurisdiction).unwrap()],
            depth,
        ),
        expires_at: None,
    }
}

#[test]
fn accreditation_rules() {
    let mut sb = Sandbox::new().unwrap();
    let (gov, root, bureau) = (seed(1), seed(2), seed(3));
    let city = SecretKey::from_seed(&[90; 32]);
    // A parent grants only a subset of its scope.
    assert_eq!(
        code(
            &mut sb,
            &root,
            accredit("zj-province", "x", Role::Accreditor, "CN", 1, &city)
        ),
        6,
        "jurisdiction escalation"
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            accredit("zj-province", "x", Role::Accreditor, "CN-33", 2, &city)
        ),
        6,
        "depth escalation"
    );
    // Only the parent's controller may accredit.
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            accredit("zj-province", "x", Role::Accreditor, "CN-33", 1, &city)
        ),
        3
    );
    // Roots only by governance; issuers may not accredit.
    assert_eq!(
        code(
            &mut sb,
            &root,
            accredit("zj-province", "x", Role::Root, "CN-33", 1, &city)
        ),
        7
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            accredit("hz-bureau", "x", Role::Issuer, "CN-33-01", 0, &city)
        ),
        7
    );
    // A valid accreditor, then an issuer below it; duplicates refused.
    assert_eq!(
        code(
            &mut sb,
            &root,
            accredit(
                "zj-province",
                "hz-city",
                Role::Accreditor,
                "CN-33-01",
                1,
                &city
            )
        ),
        0
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            accredit(
                "zj-province",
                "hz-city",
                Role::Accreditor,
                "CN-33-01",
                1,
                &city
            )
        ),
        5
    );
    assert_eq!(
        code(
            &mut sb,
            &city,
            accredit(
                "hz-city",
                "hz-clinic",
                Role::Issuer,
                "CN-33-01-02",
                0,
                &city
            )
        ),
        0
    );
    // Revocation by the parent only; a revoked member may not act.
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::RevokeAccreditation {
                actor: Some(IssuerId::new("hz-city").unwrap()),
                child: IssuerId::new("hz-clinic").unwrap()
            }
        ),
        3
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::RevokeAccreditation {
                actor: Some(Sandbox::root_id()),
                child: IssuerId::new("hz-city").unwrap()
            }
        ),
        0
    );
    assert_eq!(
        code(
            &mut sb,
            &city,
            accredit("hz-city", "hz-school", Role::Issuer, "CN-33-01", 0, &city)
        ),
        8
    );
    // Governance pins a new root; others may not.
    let record = IssuerRecord {
        id: IssuerId::new("js-province").unwrap(),
        role: Role::Root,
        parent: None,
        controller: city.public_key(),
        scope: Scope::new(SchemaScope::Any, vec![Region::new("CN-32").unwrap()], 2),
        granted_at: Height::new(0),
        expires_at: None,
        status: GrantStatus::Active,
        keys: vec![],
    };
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::PinRoot {
                record: record.clone()
            }
        ),
        3
    );
    assert_eq!(code(&mut sb, &gov, IdentityOp::PinRoot { record }), 0);
    let h = sb.chain().height();
    let (value, proof) = sb
        .chain()
        .state_proof(h, &issuer_key(&IssuerId::new("js-province").unwrap()))
        .unwrap();
    sb.client()
        .verify_state(
            h,
            &issuer_key(&IssuerId::new("js-province").unwrap()),
            value.as_deref(),
            &proof,
        )
        .unwrap();
    assert!(value.is_some());
    // Query keys resolve to the same state keys.
    let q = IdentityQuery::Issuer(IssuerId::new("js-province").unwrap()).to_bytes();
    assert_eq!(
        sb.chain().app().query_key(&q).unwrap(),
        issuer_key(&IssuerId::new("js-province").unwrap())
    );
    assert!(sb.chain().app().query_key(&[9]).is_err());
}

#[test]
fn key_schema_and_status_rules() {
    let mut sb = Sandbox::new().unwrap();
    let (root, bureau) = (seed(2), seed(3));
    let k = SecretKey::from_seed(&[91; 32]).public_key();
    let bid = Sandbox::bureau_id;
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::AddKey {
                issuer: bid(),
                key_id: KeyId::new(1),
                public_key: k.clone()
            }
        ),
        3
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::AddKey {
                issuer: bid(),
                key_id: KeyId::new(0),
                public_key: k.clone()
            }
        ),
        5
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::AddKey {
                issuer: Sandbox::root_id(),
                key_id: KeyId::new(0),
                public_key: k.clone()
            }
        ),
        7,
        "roots hold no credential keys"
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::RotateKey {
                issuer: bid(),
                key_id: KeyId::new(5)
            }
        ),
        9
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::RotateKey {
                issuer: bid(),
                key_id: KeyId::new(0)
            }
        ),
        0
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::RotateKey {
                issuer: bid(),
                key_id: KeyId::new(0)
            }
        ),
        10
    );
    // The parent may report compromise; a stranger may not.
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::ReportCompromise {
                actor: Some(Sandbox::root_id()),
                issuer: bid(),
                key_id: KeyId::new(0)
            }
        ),
        3
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::ReportCompromise {
                actor: Some(Sandbox::root_id()),
                issuer: bid(),
                key_id: KeyId::new(0)
            }
        ),
        0
    );
    // Schemas: duplicate publish, lifecycle only forward and only by the publisher.
    let sid = sb.schema_id();
    let schema = sb.schema().clone();
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::PublishSchema {
                publisher: bid(),
                schema
            }
        ),
        5
    );
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::SetSchemaLifecycle {
                publisher: Sandbox::root_id(),
                schema: sid,
                lifecycle: Lifecycle::Deprecated
            }
        ),
        3
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::SetSchemaLifecycle {
                publisher: bid(),
                schema: sid,
                lifecycle: Lifecycle::Deprecated
            }
        ),
        0
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::SetSchemaLifecycle {
                publisher: bid(),
                schema: sid,
                lifecycle: Lifecycle::Active
            }
        ),
        12
    );
    // Status lists: only issuers, valid capacity, fresh id, owner writes only.
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::CreateStatusList {
                issuer: Sandbox::root_id(),
                list: StatusListId::new(5),
                capacity: MIN_LIST_CAPACITY
            }
        ),
        7
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::CreateStatusList {
                issuer: bid(),
                list: StatusListId::new(5),
                capacity: 1024
            }
        ),
        15
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::CreateStatusList {
                issuer: bid(),
                list: Sandbox::LIST,
                capacity: MIN_LIST_CAPACITY
            }
        ),
        5
    );
    let up = |index, status| IdentityOp::UpdateStatus {
        issuer: bid(),
        list: Sandbox::LIST,
        updates: vec![StatusUpdate { index, status }],
    };
    assert_eq!(
        code(
            &mut sb,
            &root,
            IdentityOp::UpdateStatus {
                issuer: Sandbox::root_id(),
                list: Sandbox::LIST,
                updates: vec![StatusUpdate {
                    index: 1,
                    status: EntryStatus::Revoked
                }]
            }
        ),
        3
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            up(MIN_LIST_CAPACITY, EntryStatus::Revoked)
        ),
        14
    );
    assert_eq!(code(&mut sb, &bureau, up(1, EntryStatus::Revoked)), 0);
    assert_eq!(
        code(&mut sb, &bureau, up(1, EntryStatus::Valid)),
        14,
        "revocation is final"
    );
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::UpdateStatus {
                issuer: bid(),
                list: StatusListId::new(42),
                updates: vec![StatusUpdate {
                    index: 1,
                    status: EntryStatus::Revoked
                }]
            }
        ),
        13
    );
    let unsorted = vec![
        StatusUpdate {
            index: 3,
            status: EntryStatus::Revoked,
        },
        StatusUpdate {
            index: 2,
            status: EntryStatus::Revoked,
        },
    ];
    assert_eq!(
        code(
            &mut sb,
            &bureau,
            IdentityOp::UpdateStatus {
                issuer: bid(),
                list: Sandbox::LIST,
                updates: unsorted
            }
        ),
        14
    );
}

#[test]
fn nonces_payloads_and_atomicity() {
    let mut sb = Sandbox::new().unwrap();
    let bureau = seed(3);
    // A failing op in the middle of a batch writes nothing, later ops apply.
    let revoke = |index| IdentityOp::UpdateStatus {
        issuer: Sandbox::bureau_id(),
        list: Sandbox::LIST,
        updates: vec![StatusUpdate {
            index,
            status: EntryStatus::Revoked,
        }],
    };
    let partial = IdentityOp::UpdateStatus {
        issuer: Sandbox::bureau_id(),
        list: Sandbox::LIST,
        updates: vec![
            StatusUpdate {
                index: 10,
                status: EntryStatus::Revoked,
            },
            StatusUpdate {
                index: MIN_LIST_CAPACITY,
                status: EntryStatus::Revoked,
            },
        ],
    };
    let receipts = sb
        .submit(&[
            (&bureau, revoke(5)),
            (&bureau, partial),
            (&bureau, revoke(6)),
        ])
        .unwrap();
    assert_eq!(
        receipts.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![0, 14, 0]
    );
    let h = sb.chain().height();
    let (page, _) = sb
        .chain()
        .state_proof(
            h,
            &govchain_identity::state::status_page_key(Sandbox::LIST, 0),
        )
        .unwrap();
    let page: govchain_identity::status::StatusPage =
        govchain_core::codec::decode_exact(&page.unwrap(), 512).unwrap();
    assert_eq!(page.get(5), Ok(EntryStatus::Revoked));
    assert_eq!(
        page.get(10),
        Ok(EntryStatus::Valid),
        "the failed op wrote nothing"
    );
    assert_eq!(page.get(6), Ok(EntryStatus::Revoked));
    // A malformed payload and a replayed nonce get their codes.
    let chain = sb.chain().chain_id().clone();
    let bad = govchain_core::tx::Transaction::new_signed(
        chain.clone(),
        &SecretKey::from_seed(&[92; 32]),
        0,
        vec![0xff],
    )
    .unwrap();
    let ctx = govchain_core::app::BlockContext {
        chain_id: chain.clone(),
        height: Height::new(99),
        time: sb.now(),
        proposer: bureau.public_key(),
        suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
    };
    let base = std::collections::BTreeMap::new();
    let mut overlay = govchain_core::app::StateOverlay::new(&base);
    let replay =
        govchain_core::tx::Transaction::new_signed(chain, &bureau, 7, revoke(8).to_bytes())
            .unwrap();
    let r = sb
        .chain()
        .app()
        .execute_block(&ctx, &mut overlay, &[bad.clone(), replay])
        .unwrap();
    assert_eq!((r[0].code, r[1].code), (2, 1));
    assert!(sb.chain().app().check_tx(&base, &bad).is_err());
}

#[test]
fn one_transaction_revokes_ten_thousand_entries() {
    let mut sb = Sandbox::new().unwrap();
    let bureau = seed(3);
    let mut rng = common::rng("bulk-revoke");
    let mut alloc =
        govchain_identity::status::StatusAllocator::new(Sandbox::LIST, MIN_LIST_CAPACITY);
    let mut idx: Vec<u32> = (0..10_000)
        .map(|_| alloc.allocate(&mut rng).unwrap())
        .collect();
    idx.sort();
    let op = IdentityOp::UpdateStatus {
        issuer: Sandbox::bureau_id(),
        list: Sandbox::LIST,
        updates: idx
            .iter()
            .map(|&index| StatusUpdate {
                index,
                status: EntryStatus::Revoked,
            })
            .collect(),
    };
    assert!(op.to_bytes().len() < govchain_core::tx::MAX_PAYLOAD_LEN);
    let start = Instant::now();
    sb.submit_ok(&[(&bureau, op)]).unwrap();
    println!(
        "10,000 revocations in one block (debug build, incl. commit): {:?}",
        start.elapsed()
    );
}
