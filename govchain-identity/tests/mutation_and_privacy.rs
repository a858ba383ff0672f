//! Every single-byte mutation of a presentation is rejected; arbitrary
//! bytes never panic the verifier; and nothing personal reaches the chain,
//! the audit log, or links two credentials of one citizen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{world, REVEAL};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_identity::app::IdentityOp;
use govchain_identity::sandbox::Sandbox;
use govchain_identity::schema::ClaimValue;
use govchain_identity::status::{EntryStatus, StatusUpdate};
use proptest::prelude::*;
use rand_chacha::rand_core::RngCore;

#[test]
fn every_single_byte_mutation_is_rejected() {
    let mut w = world("mutation");
    let p = w.present(REVEAL);
    let bytes = p.to_bytes();
    let nonce = p.binding.as_ref().map(|b| b.nonce).unwrap();
    println!("presentation of {} bytes", bytes.len());
    for i in 0..bytes.len() {
        let delta = 1 + (w.rng.next_u32() % 255) as u8;
        for d in [0x01u8, delta] {
            let mut m = bytes.clone();
            m[i] ^= d;
            let r = w.hall.verify(w.sb.client(), &m, w.sb.now());
            assert!(r.is_err(), "mutation of byte {i} by {d:#04x} was accepted");
        }
    }
    // The original still verifies afterwards: failures consume no nonce.
    assert!(w.hall.verify(w.sb.client(), &bytes, w.sb.now()).is_ok());
    let _ = nonce;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut w = world("arbitrary");
        let r = w.hall.verify(w.sb.client(), &bytes, w.sb.now());
        prop_assert!(r.is_err());
    }
}

fn values_of(claims: &[(String, ClaimValue)]) -> Vec<Vec<u8>> {
    claims
        .iter()
        .filter_map(|(_, v)| match v {
            ClaimValue::Text(s) if s.len() >= 8 && s != "resident-card" => {
                Some(s.as_bytes().to_vec())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn no_claim_value_on_chain_or_in_the_audit_log() {
    let mut w = world("privacy");
    let bureau = {
        let mut s = [0x1d; 32];
        s[0] = 3;
        SecretKey::from_seed(&s)
    };
    let mut secrets = Vec::new();
    let mut revoke = Vec::new();
    for citizen in 0..200u64 {
        let holder = SecretKey::generate(&mut w.rng);
        let held =
            w.sb.issue(&mut w.rng, citizen, Some(holder.public_key()))
                .unwrap();
        secrets.extend(values_of(&Sandbox::citizen_claims(citizen)));
        if citizen % 10 == 0 {
            revoke.push(held.credential.body.status.index);
        }
    }
    revoke.sort();
    let op = IdentityOp::UpdateStatus {
        issuer: Sandbox::bureau_id(),
        list: Sandbox::LIST,
        updates: revoke
            .iter()
            .map(|&index| StatusUpdate {
                index,
                status: EntryStatus::Revoked,
            })
            .collect(),
    };
    w.sb.submit_ok(&[(&bureau, op)]).unwrap();
    for _ in 0..3 {
        let p = w.present(REVEAL);
        w.verify(&p).unwrap();
    }
    let mut scanned = 0usize;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for b in w.sb.chain().blocks() {
        for t in &b.block.transactions {
            blobs.push(t.to_bytes());
        }
        for (_, _, v) in &b.state_batch.values {
            if let Some(v) = v {
                blobs.push(v.clone());
            }
        }
    }
    blobs.push(w.hall.audit_log().to_bytes());
    for blob in &blobs {
        scanned += blob.len();
        for s in &secrets {
            assert!(
                !blob.windows(s.len()).any(|win| win == s.as_slice()),
                "a claim value reached the chain or the audit log"
            );
        }
    }
    // The verified citizen's own values are not in the audit log either.
    let log = w.hall.audit_log().to_bytes();
    for s in values_of(&Sandbox::citizen_claims(1)) {
        assert!(!log.windows(s.len()).any(|win| win == s.as_slice()));
    }
    let holder_key = w.holder.public_key();
    let raw_key = holder_key.raw_bytes();
    assert!(!log.windows(raw_key.len()).any(|win| win == raw_key));
    println!("scanned {scanned} bytes of transactions, state values and audit log");
}

#[test]
fn two_credentials_of_one_citizen_share_nothing_linkable() {
    let mut w = world("unlinkable");
    let holders: Vec<SecretKey> = (0..2).map(|_| SecretKey::generate(&mut w.rng)).collect();
    let reqs: Vec<_> = holders.iter().map(|h| h.public_key()).collect();
    let a = w.sb.issue(&mut w.rng, 5, Some(reqs[0].clone())).unwrap();
    let b = w.sb.issue(&mut w.rng, 5, Some(reqs[1].clone())).unwrap();
    let (ca, cb) = (&a.credential.body, &b.credential.body);
    assert_ne!(ca.status.index, cb.status.index);
    assert_ne!(ca.holder, cb.holder);
    let da: BTreeSet<_> = ca.digests.iter().collect();
    assert!(cb.digests.iter().all(|d| !da.contains(d)));
    let sa: BTreeSet<_> = a.disclosures.iter().map(|d| d.salt).collect();
    assert!(b.disclosures.iter().all(|d| !sa.contains(&d.salt)));
    assert_ne!(a.credential.signature, b.credential.signature);
    let _ = holders[0].sign(b"");
}
