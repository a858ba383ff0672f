//! Every rejection path of the verifier, each with its typed error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{bureau_seed, root_seed, world, REVEAL};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::{Domain, Hash};
use govchain_core::light::LightClient;
use govchain_core::types::{Height, Timestamp};
use govchain_identity::app::IdentityOp;
use govchain_identity::credential::{Disclosure, StatusRef};
use govchain_identity::ids::{HallId, IssuerId, KeyId, Region, StatusListId};
use govchain_identity::issuer::{Role, SchemaScope, Scope};
use govchain_identity::presentation::{BindingRequest, HolderBinding, Presentation};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::schema::ClaimValue;
use govchain_identity::status::{EntryStatus, StatusUpdate, MIN_LIST_CAPACITY};
use govchain_identity::verifier::{AuditLog, AuditOutcome, RecordKind, Rejection, Verifier};

#[test]
fn a_valid_presentation_verifies_and_is_audited() {
    let mut w = world("valid");
    let p = w.present(REVEAL);
    let v = w.verify(&p).unwrap();
    assert!(v.holder_bound);
    assert_eq!(v.claims.len(), 6);
    assert_eq!(v.root, Sandbox::root_id());
    assert_eq!(v.audit.outcome, AuditOutcome::Accepted);
    let p2 = w.present(&["over_18"]);
    let v2 = w.verify(&p2).unwrap();
    assert_eq!(v2.claims.len(), 2, "document_type is always disclosed");
    let log = w.hall.audit_log();
    assert_eq!(log.records().len(), 2);
    AuditLog::verify_chain(
        govchain_core::crypto::CryptoSuite::Ed25519Blake3,
        log.records(),
    )
    .unwrap();
    let mut broken = log.records().to_vec();
    broken[0].time = Timestamp::new(1);
    assert!(
        AuditLog::verify_chain(govchain_core::crypto::CryptoSuite::Ed25519Blake3, &broken).is_err()
    );
}

#[test]
fn disclosure_faults() {
    let mut w = world("disclosures");
    // Tampered value.
    let mut p = w.present(REVEAL);
    p.disclosures[0].value = ClaimValue::Text("Someone Else".into());
    w.rebind(&mut p);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::DisclosureNotCommitted { index: 0 })
    );
    // A disclosure no digest references (from another credential).
    let other =
        w.sb.issue(&mut w.rng, 2, Some(w.holder.public_key()))
            .unwrap();
    let mut p = w.present(&["name"]);
    p.disclosures.push(other.disclosures[0].clone());
    w.rebind(&mut p);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::DisclosureNotCommitted { index: 1 })
    );
    // Duplicate claim names.
    let mut p = w.present(&["name"]);
    p.disclosures.push(p.disclosures[0].clone());
    w.rebind(&mut p);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::DuplicateClaim {
            name: "name".into()
        })
    );
    // Duplicate digests in the (re-signed) credential.
    let mut p = w.present(&["name"]);
    let d = p.credential.body.digests[0];
    p.credential.body.digests.insert(0, d);
    w.resign(&mut p.credential);
    w.rebind(&mut p);
    assert_eq!(w.verify(&p), Err(Rejection::DuplicateDigest));
}

fn with_extra_disclosure(w: &mut common::World, d: Disclosure) -> Presentation {
    let mut p = w.present(&[]);
    p.credential
        .body
        .digests
        .push(d.digest(p.credential.body.suite));
    p.credential.body.digests.sort();
    w.resign(&mut p.credential);
    p.disclosures.push(d);
    w.rebind(&mut p);
    p
}

#[test]
fn claims_must_match_the_schema_and_policy() {
    let mut w = world("claims");
    let p = with_extra_disclosure(
        &mut w,
        Disclosure {
            salt: [1; 16],
            name: "nickname".into(),
            value: ClaimValue::Text("x".into()),
        },
    );
    assert_eq!(
        w.verify(&p),
        Err(Rejection::UnknownClaim {
            name: "nickname".into()
        })
    );
    let mut w = world("claims-type");
    // Re-issue without over_18 so a wrongly typed one is the only one.
    let p = with_extra_disclosure(
        &mut w,
        Disclosure {
            salt: [2; 16],
            name: "over_18".into(),
            value: ClaimValue::Integer(18),
        },
    );
    assert_eq!(
        w.verify(&p),
        Err(Rejection::WrongClaimType {
            name: "over_18".into()
        })
    );
    let mut w = world("claims-policy");
    let p = with_extra_disclosure(
        &mut w,
        Disclosure {
            salt: [3; 16],
            name: "document_type".into(),
            value: ClaimValue::Text("x".into()),
        },
    );
    assert_eq!(
        w.verify(&p),
        Err(Rejection::DisclosurePolicyViolation {
            name: "document_type".into()
        })
    );
    // Required claim missing.
    let mut w = world("claims-required");
    let mut policy = w.policy.clone();
    policy.required_claims = vec!["id_number".into()];
    w.hall = Verifier::new(policy).unwrap();
    let p = w.present(&["name"]);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::MissingRequiredClaim {
            name: "id_number".into()
        })
    );
    let p = w.present(&["name", "id_number"]);
    assert!(w.verify(&p).is_ok());
}

#[test]
fn validity_window() {
    let mut w = world("validity");
    let p = w.present(REVEAL);
    let until = p.credential.body.valid_until;
    let from = p.credential.body.valid_from;
    let mut policy = w.policy.clone();
    policy.max_status_age_ms = u64::MAX;
    policy.max_binding_skew_ms = u64::MAX;
    let mut hall = Verifier::new(policy.clone()).unwrap();
    let bytes_at = |hall: &mut Verifier, w: &mut common::World, now: Timestamp| {
        let nonce = hall.challenge(&mut w.rng, now);
        let b = BindingRequest {
            holder: &w.holder,
            nonce,
            audience: policy.hall.clone(),
            time: now,
        };
        let p = w
            .held
            .present(REVEAL, Some(b), w.sb.proofs(&w.held).unwrap())
            .unwrap();
        hall.verify(w.sb.client(), &p.to_bytes(), now)
    };
    assert!(bytes_at(&mut hall, &mut w, Timestamp::new(until.get() - 1)).is_ok());
    assert_eq!(bytes_at(&mut hall, &mut w, until), Err(Rejection::Expired));
    assert_eq!(
        bytes_at(&mut hall, &mut w, Timestamp::new(from.get() - 1)),
        Err(Rejection::NotYetValid)
    );
    // A window longer than the schema allows (re-signed by the issuer).
    let mut p = w.present(REVEAL);
    p.credential.body.valid_until =
        Timestamp::new(from.get() + w.sb.schema().max_validity_ms() + 1);
    w.resign(&mut p.credential);
    w.rebind(&mut p);
    assert_eq!(w.verify(&p), Err(Rejection::ValidityTooLong));
}

#[test]
fn status_revoked_suspended_unsuspended_and_stale() {
    let mut w = world("status");
    let idx = w.held.credential.body.status.index;
    let bureau = SecretKey::from_seed(&bureau_seed());
    let update = |status| IdentityOp::UpdateStatus {
        issuer: Sandbox::bureau_id(),
        list: Sandbox::LIST,
        updates: vec![StatusUpdate { index: idx, status }],
    };
    w.sb.submit_ok(&[(&bureau, update(EntryStatus::Suspended))])
        .unwrap();
    let p = w.present(REVEAL);
    assert_eq!(w.verify(&p), Err(Rejection::Suspended));
    w.sb.submit_ok(&[(&bureau, update(EntryStatus::Valid))])
        .unwrap();
    let p = w.present(REVEAL);
    assert!(w.verify(&p).is_ok());
    // A stale proof: the hall's clock is past the status age.
    let p = w.present(REVEAL);
    let later = Timestamp::new(w.sb.now().get() + w.policy.max_status_age_ms + 1);
    let err = w.hall.verify(w.sb.client(), &p.to_bytes(), later);
    assert!(matches!(err, Err(Rejection::StaleProof { .. })), "{err:?}");
    w.sb.submit_ok(&[(&bureau, update(EntryStatus::Revoked))])
        .unwrap();
    let p = w.present(REVEAL);
    assert_eq!(w.verify(&p), Err(Rejection::Revoked));
    // An old proof from before the revocation is still a valid proof, so the
    // status age is what protects the hall.
    let old = Height::new(w.sb.chain().height().get() - 1);
    let mut p = w.present(REVEAL);
    p.proofs = w.sb.proofs_at(old, &w.held).unwrap();
    assert!(w.verify(&p).is_ok());
}

#[test]
fn status_index_out_of_range_and_foreign_list() {
    let mut w = world("status-range");
    let mut p = w.present(REVEAL);
    p.credential.body.status = StatusRef {
        list: Sandbox::LIST,
        index: MIN_LIST_CAPACITY + 5,
    };
    w.resign(&mut p.credential);
    w.rebind(&mut p);
    // The holder staples page 0, which proves the capacity.
    assert_eq!(
        w.verify(&p),
        Err(Rejection::StatusIndexOutOfRange {
            index: MIN_LIST_CAPACITY + 5,
            capacity: MIN_LIST_CAPACITY
        })
    );
    // A list owned by another issuer.
    let notary_ctrl = SecretKey::from_seed(&[77; 32]);
    let notary = IssuerId::new("hz-notary").unwrap();
    let root = SecretKey::from_seed(&root_seed());
    w.sb.submit_ok(&[(
        &root,
        IdentityOp::Accredit {
            parent: Sandbox::root_id(),
            child: notary.clone(),
            role: Role::Issuer,
            controller: notary_ctrl.public_key(),
            scope: Scope::new(
                SchemaScope::Only(vec![w.sb.schema_id()]),
                vec![Region::new("CN-33-01").unwrap()],
                0,
            ),
            expires_at: None,
        },
    )])
    .unwrap();
    w.sb.submit_ok(&[(
        &notary_ctrl,
        IdentityOp::CreateStatusList {
            issuer: notary,
            list: StatusListId::new(2),
            capacity: MIN_LIST_CAPACITY,
        },
    )])
    .unwrap();
    let mut held = w.held.clone();
    held.credential.body.status = StatusRef {
        list: StatusListId::new(2),
        index: 3,
    };
    w.resign(&mut held.credential);
    let p = w.present_of(&held, REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::StatusListNotOwned {
            owner: IssuerId::new("hz-notary").unwrap()
        })
    );
    // An unknown list.
    held.credential.body.status = StatusRef {
        list: StatusListId::new(99),
        index: 3,
    };
    w.resign(&mut held.credential);
    let p = w.present_of(&held, REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::UnknownStatusList {
            list: StatusListId::new(99)
        })
    );
}

#[test]
fn forged_state_proofs_are_rejected() {
    let mut w = world("proofs");
    // Wrong sibling.
    let mut p = w.present(REVEAL);
    let s = &mut p.proofs.schema.proof.siblings;
    let i = s.iter().position(|h| *h != Hash::ZERO).unwrap_or(0);
    s[i] = Hash::of(Domain::Test, b"forged");
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::ProofRejected {
            kind: RecordKind::Schema,
            ..
        })
    ));
    // Wrong key: the issuer's proof in the status slot.
    let mut p = w.present(REVEAL);
    p.proofs.status = p.proofs.issuers[0].clone();
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::ProofRejected {
            kind: RecordKind::StatusPage,
            ..
        })
    ));
    // Leaf/node confusion: present the node one level up as if it were the leaf.
    let mut p = w.present(REVEAL);
    let proof = &mut p.proofs.issuers[0].proof;
    proof.siblings.pop();
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::ProofRejected {
            kind: RecordKind::Issuer,
            ..
        })
    ));
    // A changed value under a correct proof.
    let mut p = w.present(REVEAL);
    if let Some(v) = p.proofs.status.value.as_mut() {
        let n = v.len();
        v[n - 1] ^= 0x01;
    }
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::ProofRejected {
            kind: RecordKind::StatusPage,
            ..
        })
    ));
}

#[test]
fn a_header_under_quorum_is_never_trusted() {
    let mut w = world("quorum");
    let tip = w.sb.chain().height();
    let (set, t) = w.sb.chain().genesis();
    let mut client = LightClient::from_genesis(w.sb.chain().chain_id().clone(), set.clone(), t);
    for h in 1..tip.get() {
        client
            .verify(&w.sb.chain().block(Height::new(h)).unwrap().light)
            .unwrap();
    }
    let mut weak = w.sb.chain().block(tip).unwrap().light.clone();
    weak.certificate.signatures.truncate(2); // 2 of 4: not more than 2/3
    assert!(client.verify(&weak).is_err());
    let p = w.present(REVEAL);
    assert_eq!(
        w.hall.verify(&client, &p.to_bytes(), w.sb.now()),
        Err(Rejection::HeaderNotVerified { height: tip })
    );
}

#[test]
fn issuer_faults_on_the_real_chain() {
    let mut w = world("issuers");
    // Unknown issuer.
    let mut held = w.held.clone();
    held.credential.body.issuer = IssuerId::new("nobody").unwrap();
    w.resign(&mut held.credential);
    let p = w.present_of(&held, REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::UnknownIssuer {
            id: IssuerId::new("nobody").unwrap()
        })
    );
    // An issuer not accredited for the schema.
    let root = SecretKey::from_seed(&root_seed());
    let other_ctrl = SecretKey::from_seed(&[78; 32]);
    let other = IssuerId::new("hz-transport").unwrap();
    let signing = SecretKey::from_seed(&[79; 32]);
    w.sb.submit_ok(&[(
        &root,
        IdentityOp::Accredit {
            parent: Sandbox::root_id(),
            child: other.clone(),
            role: Role::Issuer,
            controller: other_ctrl.public_key(),
            scope: Scope::new(
                SchemaScope::Only(vec![govchain_identity::ids::SchemaId(Hash::of(
                    Domain::Test,
                    b"licence",
                ))]),
                vec![Region::new("CN-33-01").unwrap()],
                0,
            ),
            expires_at: Some(Height::new(w.sb.chain().height().get() + 3)),
        },
    )])
    .unwrap();
    w.sb.submit_ok(&[(
        &other_ctrl,
        IdentityOp::AddKey {
            issuer: other.clone(),
            key_id: KeyId::new(0),
            public_key: signing.public_key(),
        },
    )])
    .unwrap();
    let mut held = w.held.clone();
    held.credential.body.issuer = other.clone();
    held.credential.signature = signing.sign(held.credential.body.signing_message().as_bytes());
    let p = w.present_of(&held, REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::SchemaNotGranted { id: other.clone() })
    );
    // ...and once its grant expired.
    w.sb.tick().unwrap();
    w.sb.tick().unwrap();
    let p = w.present_of(&held, REVEAL);
    assert_eq!(w.verify(&p), Err(Rejection::GrantExpired { id: other }));
    // A revoked grant.
    w.sb.submit_ok(&[(
        &root,
        IdentityOp::RevokeAccreditation {
            actor: Some(Sandbox::root_id()),
            child: Sandbox::bureau_id(),
        },
    )])
    .unwrap();
    let p = w.present(REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::GrantRevoked {
            id: Sandbox::bureau_id()
        })
    );
    // Governance unpins the root: everything under it fails.
    let mut w = world("issuers-unpin");
    let gov = SecretKey::from_seed(&{
        let mut s = [0x1d; 32];
        s[0] = 1;
        s
    });
    w.sb.submit_ok(&[(
        &gov,
        IdentityOp::UnpinRoot {
            id: Sandbox::root_id(),
        },
    )])
    .unwrap();
    let p = w.present(REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::GrantRevoked {
            id: Sandbox::root_id()
        })
    );
    // A hall that does not trust the root.
    let mut w = world("issuers-root");
    let mut policy = w.policy.clone();
    policy.accepted_roots = vec![IssuerId::new("other-root").unwrap()];
    w.hall = Verifier::new(policy).unwrap();
    let p = w.present(REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::RootNotAccepted {
            id: Sandbox::root_id()
        })
    );
}

#[test]
fn key_rotation_and_compromise() {
    let mut w = world("keys");
    let before = w.held.clone();
    w.sb.rotate_key().unwrap();
    // Issued before the rotation: still verifies.
    let p = w.present_of(&before, REVEAL);
    assert!(w.verify(&p).is_ok());
    // The new key issues fine.
    let fresh =
        w.sb.issue(&mut w.rng, 3, Some(w.holder.public_key()))
            .unwrap();
    assert_eq!(fresh.credential.body.key_id, KeyId::new(1));
    let p = w.present_of(&fresh, REVEAL);
    assert!(w.verify(&p).is_ok());
    // The retired key used after its retirement.
    let mut late = fresh.clone();
    late.credential.body.key_id = KeyId::new(0);
    w.resign(&mut late.credential);
    let p = w.present_of(&late, REVEAL);
    assert!(matches!(w.verify(&p), Err(Rejection::KeyRetired { .. })));
    // An unknown key.
    let mut unknown = fresh.clone();
    unknown.credential.body.key_id = KeyId::new(9);
    let p = w.present_of(&unknown, REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::UnknownKey {
            key_id: KeyId::new(9)
        })
    );
    // Compromise of key 0 invalidates even what it signed before.
    let bureau = SecretKey::from_seed(&bureau_seed());
    w.sb.submit_ok(&[(
        &bureau,
        IdentityOp::ReportCompromise {
            actor: Some(Sandbox::bureau_id()),
            issuer: Sandbox::bureau_id(),
            key_id: KeyId::new(0),
        },
    )])
    .unwrap();
    let p = w.present_of(&before, REVEAL);
    assert_eq!(w.verify(&p), Err(Rejection::KeyCompromised));
}

#[test]
fn non_canonical_and_small_order_signatures_are_refused() {
    let mut w = world("signatures");
    let p = w.present(REVEAL);
    let cred_len = p.credential.to_bytes().len();
    // The credential's signature is its last 64 bytes (after the tag byte).
    let sig_at = 1 + cred_len - 64;
    let mut bytes = p.to_bytes();
    // S + l (non-canonical S): add the group order to the scalar half.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(bytes[sig_at + 32 + i]) + u16::from(L[i]) + carry;
        bytes[sig_at + 32 + i] = s as u8;
        carry = s >> 8;
    }
    let err = w.hall.verify(w.sb.client(), &bytes, w.sb.now());
    assert!(
        matches!(
            err,
            Err(Rejection::Malformed(
                govchain_core::codec::DecodeError::InvalidValue {
                    what: "ed25519 signature",
                    ..
                }
            ))
        ),
        "{err:?}"
    );
    // Small-order R (the identity point).
    let mut bytes = p.to_bytes();
    bytes[sig_at..sig_at + 32].copy_from_slice(&{
        let mut r = [0u8; 32];
        r[0] = 1;
        r
    });
    let err = w.hall.verify(w.sb.client(), &bytes, w.sb.now());
    assert!(
        matches!(
            err,
            Err(Rejection::Malformed(
                govchain_core::codec::DecodeError::InvalidValue {
                    what: "ed25519 signature",
                    ..
                }
            ))
        ),
        "{err:?}"
    );
    // A valid-looking but wrong issuer signature.
    let mut p2 = p.clone();
    p2.credential.signature = SecretKey::from_seed(&[5; 32]).sign(b"other");
    w.rebind(&mut p2);
    assert_eq!(w.verify(&p2), Err(Rejection::IssuerSignatureInvalid));
}

#[test]
fn holder_binding_and_replay() {
    let mut w = world("binding");
    // Required but absent.
    let p = w
        .held
        .present(REVEAL, None, w.sb.proofs(&w.held).unwrap())
        .unwrap();
    assert_eq!(w.verify(&p), Err(Rejection::HolderBindingMissing));
    // Binding with the wrong key.
    let mut p = w.present(REVEAL);
    if let Some(b) = p.binding.as_mut() {
        let msg = p.credential.body.signing_message();
        b.signature = SecretKey::from_seed(&[6; 32]).sign(msg.as_bytes());
    }
    assert_eq!(w.verify(&p), Err(Rejection::HolderSignatureInvalid));
    // A disclosure added after binding.
    let mut p = w.present(&["name"]);
    p.disclosures.push(
        w.held
            .disclosures
            .iter()
            .find(|d| d.name == "over_18")
            .unwrap()
            .clone(),
    );
    assert_eq!(w.verify(&p), Err(Rejection::HolderSignatureInvalid));
    // A reused nonce.
    let p = w.present(REVEAL);
    assert!(w.verify(&p).is_ok());
    assert_eq!(w.verify(&p), Err(Rejection::NonceReused));
    // A nonce the hall never issued.
    let mut p = w.present(REVEAL);
    if let Some(b) = p.binding.as_mut() {
        b.nonce = govchain_identity::presentation::Nonce([9; 32]);
    }
    assert_eq!(w.verify(&p), Err(Rejection::UnknownNonce));
    // Another hall's audience.
    let nonce = w.hall.challenge(&mut w.rng, w.sb.now());
    let b = BindingRequest {
        holder: &w.holder,
        nonce,
        audience: HallId::new("hall-2").unwrap(),
        time: w.sb.now(),
    };
    let p = w
        .held
        .present(REVEAL, Some(b), w.sb.proofs(&w.held).unwrap())
        .unwrap();
    assert_eq!(w.verify(&p), Err(Rejection::WrongAudience));
    // Time skew.
    let nonce = w.hall.challenge(&mut w.rng, w.sb.now());
    let b = BindingRequest {
        holder: &w.holder,
        nonce,
        audience: w.policy.hall.clone(),
        time: Timestamp::new(0),
    };
    let p = w
        .held
        .present(REVEAL, Some(b), w.sb.proofs(&w.held).unwrap())
        .unwrap();
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::BindingTimeSkew { .. })
    ));
    // Not required: an unbound presentation is fine.
    let mut policy = w.policy.clone();
    policy.require_holder_binding = false;
    let mut relaxed = Verifier::new(policy).unwrap();
    let p = w
        .held
        .present(REVEAL, None, w.sb.proofs(&w.held).unwrap())
        .unwrap();
    let v = relaxed
        .verify(w.sb.client(), &p.to_bytes(), w.sb.now())
        .unwrap();
    assert!(!v.holder_bound);
    let _unused: Option<HolderBinding> = None;
}

#[test]
fn scope_version_and_suite() {
    let mut w = world("scope");
    let mut policy = w.policy.clone();
    policy.accepted_jurisdictions = vec![Region::new("CN-11").unwrap()];
    w.hall = Verifier::new(policy).unwrap();
    let p = w.present(REVEAL);
    assert_eq!(
        w.verify(&p),
        Err(Rejection::OutOfJurisdiction {
            region: Region::new("CN-33-01").unwrap()
        })
    );
    let mut w = world("version");
    let p = w.present(REVEAL);
    let mut bytes = p.to_bytes();
    bytes[0] = 2;
    assert_eq!(
        w.hall.verify(w.sb.client(), &bytes, w.sb.now()),
        Err(Rejection::UnsupportedVersion {
            what: "presentation",
            got: 2
        })
    );
    let mut bytes = p.to_bytes();
    bytes[1] = 0;
    assert_eq!(
        w.hall.verify(w.sb.client(), &bytes, w.sb.now()),
        Err(Rejection::UnsupportedVersion {
            what: "credential",
            got: 0
        })
    );
    let mut bytes = p.to_bytes();
    bytes[2] = 2;
    assert_eq!(
        w.hall.verify(w.sb.client(), &bytes, w.sb.now()),
        Err(Rejection::UnsupportedSuite { id: 2 })
    );
    // Schema withdrawn / not accepted.
    let bureau = SecretKey::from_seed(&bureau_seed());
    let mut policy = w.policy.clone();
    policy.accepted_schemas = vec![govchain_identity::ids::SchemaId(Hash::of(
        Domain::Test,
        b"x",
    ))];
    let mut other = Verifier::new(policy).unwrap();
    let p = w
        .held
        .present(REVEAL, None, w.sb.proofs(&w.held).unwrap())
        .unwrap();
    assert!(matches!(
        other.verify(w.sb.client(), &p.to_bytes(), w.sb.now()),
        Err(Rejection::SchemaNotAccepted { .. })
    ));
    w.sb.submit_ok(&[(
        &bureau,
        IdentityOp::SetSchemaLifecycle {
            publisher: Sandbox::bureau_id(),
            schema: w.sb.schema_id(),
            lifecycle: govchain_identity::schema::Lifecycle::Withdrawn,
        },
    )])
    .unwrap();
    let p = w.present(REVEAL);
    assert_eq!(w.verify(&p), Err(Rejection::SchemaWithdrawn));
}

#[test]
fn oversized_inputs_hit_limits_without_panicking() {
    let mut w = world("limits");
    let mut p = w.present(&["name"]);
    let d = p.disclosures[0].clone();
    p.disclosures = vec![d; 10_000];
    let err = w.verify(&p);
    assert!(
        matches!(
            err,
            Err(Rejection::TooLarge { .. }) | Err(Rejection::Malformed(_))
        ),
        "{err:?}"
    );
    let mut p = w.present(&["name"]);
    p.disclosures[0].value = ClaimValue::Text("x".repeat(1 << 20));
    assert!(matches!(w.verify(&p), Err(Rejection::TooLarge { .. })));
    // Just under the size limit but a too-long value inside.
    let mut p = w.present(&["name"]);
    p.disclosures[0].value = ClaimValue::Text("x".repeat(5000));
    assert!(matches!(w.verify(&p), Err(Rejection::Malformed(_))));
    // Many disclosures within the byte limit but over the count limit.
    let mut p = w.present(&["name"]);
    let d = p.disclosures[0].clone();
    p.disclosures = vec![d; 65];
    assert!(matches!(
        w.verify(&p),
        Err(Rejection::Malformed(
            govchain_core::codec::DecodeError::LengthTooLarge { .. }
        ))
    ));
    assert!(matches!(
        w.hall.verify(w.sb.client(), &[], w.sb.now()),
        Err(Rejection::Malformed(_))
    ));
}
