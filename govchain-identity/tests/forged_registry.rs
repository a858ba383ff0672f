//! Accreditation-chain faults that the identity application refuses to
//! write, planted directly in a chain's state by a raw key-value app, to
//! check that the verifier rejects them on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use govchain_core::app::{
    Application, BlockContext, ExecutionError, QueryError, Receipt, StateOverlay, StateView,
    TxRejection,
};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::testkit::ChainBuilder;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_identity::credential::{CredentialIssuer, IssuanceRequest, StatusRef};
use govchain_identity::ids::{HallId, IssuerId, KeyId, Region, StatusListId};
use govchain_identity::issuer::{
    GrantStatus, IssuerKey, IssuerRecord, KeyState, Role, SchemaScope, Scope,
};
use govchain_identity::presentation::StapledProofs;
use govchain_identity::sandbox::Sandbox;
use govchain_identity::schema::{Lifecycle, SchemaRecord};
use govchain_identity::state::{issuer_key, schema_key, status_page_key};
use govchain_identity::status::{StatusPage, MIN_LIST_CAPACITY};
use govchain_identity::verifier::{Policy, Rejection, Verifier};

/// Writes whatever `(key, value)` pairs its payload lists.
struct RawApp;

impl Application for RawApp {
    fn name(&self) -> &str {
        "raw"
    }
    fn check_tx(&self, _: &dyn StateView, _: &Transaction) -> Result<(), TxRejection> {
        Ok(())
    }
    fn execute_block(
        &self,
        _: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError> {
        for t in txs {
            let mut r = govchain_core::codec::Reader::new(t.payload());
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                r.seq("pairs", 1000).map_err(|e| ExecutionError::Fault {
                    reason: e.to_string(),
                })?;
            for (k, v) in pairs {
                state.put(k, v);
            }
        }
        Ok(txs.iter().map(|t| Receipt::ok(t.id())).collect())
    }
    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        Ok(request.to_vec())
    }
}

fn id(s: &str) -> IssuerId {
    IssuerId::new(s).unwrap()
}

fn region(s: &str) -> Region {
    Region::new(s).unwrap()
}

fn member(
    name: &str,
    role: Role,
    parent: Option<&str>,
    jurisdiction: &str,
    depth: u8,
) -> IssuerRecord {
    IssuerRecord {
        id: id(name),
        role,
        parent: parent.map(id),
        controller: SecretKey::from_seed(&[50; 32]).public_key(),
        scope: Scope::new(SchemaScope::Any, vec![region(jurisdiction)], depth),
        granted_at: Height::new(0),
        expires_at: None,
        status: GrantStatus::Active,
        keys: Vec::new(),
    }
}

/// Plants `members` (the first is the credential's issuer, given key 0),
/// the schema and list 1, issues a credential and verifies a presentation.
fn verify_planted(mut members: Vec<IssuerRecord>) -> Result<(), Rejection> {
    let signing = SecretKey::from_seed(&[51; 32]);
    members[0].keys = vec![IssuerKey {
        id: KeyId::new(0),
        public_key: signing.public_key(),
        valid_from: Height::new(0),
        state: KeyState::Active,
    }];
    let issuer = members[0].id.clone();
    let schema = Sandbox::resident_schema().unwrap();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = members
        .iter()
        .map(|m| (issuer_key(&m.id), m.to_bytes()))
        .collect();
    pairs.push((
        schema_key(&schema.id(govchain_core::crypto::CryptoSuite::Ed25519Blake3)),
        SchemaRecord {
            schema: schema.clone(),
            publisher: issuer.clone(),
            lifecycle: Lifecycle::Active,
            published_at: Height::new(1),
        }
        .to_bytes(),
    ));
    pairs.push((
        status_page_key(StatusListId::new(1), 0),
        StatusPage::new(StatusListId::new(1), issuer.clone(), MIN_LIST_CAPACITY, 0).to_bytes(),
    ));
    let mut payload = Vec::new();
    govchain_core::codec::encode_seq(&pairs, &mut payload);

    let chain_id = ChainId::new("forged").unwrap();
    let validators: Vec<SecretKey> = (60..64u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
    let t0 = Timestamp::new(1_000_000);
    let mut chain = ChainBuilder::new(chain_id.clone(), RawApp, validators, t0).unwrap();
    let writer = SecretKey::from_seed(&[52; 32]);
    chain
        .produce_block(
            vec![Transaction::new_signed(chain_id.clone(), &writer, 0, payload).unwrap()],
            Timestamp::new(1_001_000),
        )
        .unwrap();
    let (set, t) = chain.genesis();
    let mut client = LightClient::from_genesis(chain_id, set.clone(), t);
    client
        .verify(&chain.block(Height::new(1)).unwrap().light)
        .unwrap();

    let mut rng = common::rng("forged");
    let holder = SecretKey::generate(&mut rng);
    let held = CredentialIssuer::new(issuer, KeyId::new(0), &signing, &schema, Height::new(1))
        .issue(
            &mut rng,
            IssuanceRequest {
                claims: Sandbox::citizen_claims(9),
                holder: Some(holder.public_key()),
                valid_from: Timestamp::new(1_000_000),
                valid_until: Timestamp::new(2_000_000),
                jurisdiction: region("CN-33-01"),
                status: StatusRef {
                    list: StatusListId::new(1),
                    index: 5,
                },
            },
        )
        .unwrap();
    let proofs = StapledProofs::collect(Height::new(1), &held.credential, |k| {
        chain.state_proof(Height::new(1), k)
    })
    .unwrap();
    let mut policy = Policy::new(
        HallId::new("hall").unwrap(),
        region("CN-33"),
        vec![id("root")],
        vec![schema.id(govchain_core::crypto::CryptoSuite::Ed25519Blake3)],
    );
    policy.require_holder_binding = false;
    let mut hall = Verifier::new(policy).unwrap();
    let p = held.present(&["name"], None, proofs).unwrap();
    hall.verify(&client, &p.to_bytes(), Timestamp::new(1_001_500))
        .map(|_| ())
}

#[test]
fn a_well_formed_planted_chain_verifies() {
    let chain = vec![
        member("bureau", Role::Issuer, Some("city"), "CN-33-01", 0),
        member("city", Role::Accreditor, Some("root"), "CN-33", 1),
        member("root", Role::Root, None, "CN-33", 2),
    ];
    assert_eq!(verify_planted(chain), Ok(()));
}

#[test]
fn an_accreditation_cycle_is_refused() {
    let chain = vec![
        member("bureau", Role::Issuer, Some("city"), "CN-33-01", 0),
        member("city", Role::Accreditor, Some("bureau"), "CN-33", 1),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::AccreditationCycle { id: id("bureau") })
    );
}

#[test]
fn a_cycle_with_consistent_depths_is_a_cycle() {
    // Depth strictly decreasing can not loop, so plant equal depths with the
    // depth check downstream of the cycle check: a -> b -> a is seen as a
    // repeated id before the scope of `a` under `b` is compared again.
    let chain = vec![
        member("bureau", Role::Issuer, Some("a"), "CN-33-01", 0),
        member("a", Role::Accreditor, Some("b"), "CN-33", 1),
        member("b", Role::Accreditor, Some("a"), "CN-33", 2),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::AccreditationCycle { id: id("a") })
    );
}

#[test]
fn too_deep_chains_are_refused() {
    // Depth escalation: a child as deep as its parent.
    let chain = vec![
        member("bureau", Role::Issuer, Some("city"), "CN-33-01", 0),
        member("city", Role::Accreditor, Some("root"), "CN-33", 2),
        member("root", Role::Root, None, "CN-33", 2),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::DelegationTooDeep { id: id("city") })
    );
    // A chain longer than MAX_CHAIN_LEN.
    let mut chain = vec![member("bureau", Role::Issuer, Some("a1"), "CN-33-01", 0)];
    for i in 1..=9u8 {
        chain.push(member(
            &format!("a{i}"),
            Role::Accreditor,
            Some(&format!("a{}", i + 1)),
            "CN-33",
            i,
        ));
    }
    chain.push(member("a10", Role::Root, None, "CN-33", 10));
    let err = verify_planted(chain);
    assert!(
        matches!(
            err,
            Err(Rejection::DelegationTooDeep { .. }) | Err(Rejection::ProofsIncomplete)
        ),
        "{err:?}"
    );
}

#[test]
fn jurisdiction_escalation_is_refused() {
    let chain = vec![
        member("bureau", Role::Issuer, Some("city"), "CN-34-01", 0),
        member("city", Role::Accreditor, Some("root"), "CN-34", 1),
        member("root", Role::Root, None, "CN-33", 2),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::JurisdictionEscalation { id: id("city") })
    );
}

#[test]
fn an_unpinned_root_is_refused() {
    let chain = vec![
        member("bureau", Role::Issuer, Some("city"), "CN-33-01", 0),
        member("city", Role::Accreditor, None, "CN-33", 1),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::UnpinnedRoot { id: id("city") })
    );
    // A root that claims a parent is not pinned either.
    let chain = vec![
        member("bureau", Role::Issuer, Some("root"), "CN-33-01", 0),
        member("root", Role::Root, Some("x"), "CN-33", 2),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::UnpinnedRoot { id: id("root") })
    );
    // A missing parent.
    let chain = vec![member("bureau", Role::Issuer, Some("ghost"), "CN-33-01", 0)];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::UnknownIssuer { id: id("ghost") })
    );
}

#[test]
fn an_accreditor_can_not_sign_credentials() {
    let chain = vec![
        member("city", Role::Accreditor, Some("root"), "CN-33", 1),
        member("root", Role::Root, None, "CN-33", 2),
    ];
    assert_eq!(
        verify_planted(chain),
        Err(Rejection::NotAnIssuer { id: id("city") })
    );
}
