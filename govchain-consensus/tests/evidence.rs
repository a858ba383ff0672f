//! Equivocation evidence across a member's keys: during a rotation overlap
//! a member signs with its new key and its rotated-out key, and two votes
//! of the two keys for different values in one slot are reported as the
//! member's equivocation (one key's double vote is reported as before).

#![allow(clippy::unwrap_used)] // test helpers

use std::sync::Arc;

use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::wire::Message;
use govchain_consensus::{Consensus, Evidence, SignedVote};
use govchain_core::cert::{VoteKind, VoteMessage};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::ValidatorSet;

fn key(i: u8) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed(&[i; 32]))
}

/// Members 1..=4, member 2 rotated from key 2 to key 22 with an overlap
/// to height 10; the engine runs as member 1.
fn engine() -> (Tendermint, ValidatorSet) {
    let base = ValidatorSet::with_equal_power((1..=4).map(|i| key(i).public_key())).unwrap();
    let set = base
        .with_rotation(&key(2).public_key(), key(22).public_key(), Height::new(10))
        .unwrap();
    let cfg = TendermintConfig::new(ChainId::new("main").unwrap(), set.clone());
    let (engine, _) = Tendermint::restore(cfg, key(1), &[], Timestamp::new(0)).unwrap();
    (engine, set)
}

fn vote(kind: VoteKind, value: u8, signer: &SecretKey) -> (SignedVote, Vec<u8>) {
    let v = SignedVote::sign(
        VoteMessage {
            kind,
            chain_id: ChainId::new("main").unwrap(),
            height: Height::new(1),
            round: Round::new(0),
            block_hash: Some(Hash::from_bytes([value; 32])),
        },
        signer,
    );
    let bytes = Message::Vote(v.clone()).to_bytes();
    (v, bytes)
}

#[test]
fn a_member_voting_twice_with_its_two_keys_is_reported() {
    let (mut e, set) = engine();
    let (old, new) = (key(2), key(22));
    let (first, bytes) = vote(VoteKind::Prevote, 1, &old);
    assert!(e
        .step(&old.public_key(), &bytes)
        .unwrap()
        .evidence
        .is_empty());
    // The same value by the new key is no equivocation.
    let (_, same) = vote(VoteKind::Prevote, 1, &new);
    assert!(e
        .step(&new.public_key(), &same)
        .unwrap()
        .evidence
        .is_empty());
    // Another value by the new key in the precommit slot, after the old
    // key's precommit: reported, by member.
    let (first_pc, bytes) = vote(VoteKind::Precommit, 1, &old);
    assert!(e
        .step(&old.public_key(), &bytes)
        .unwrap()
        .evidence
        .is_empty());
    let (second, bytes) = vote(VoteKind::Precommit, 2, &new);
    let fx = e.step(&new.public_key(), &bytes).unwrap();
    assert_eq!(fx.evidence.len(), 1, "{:?}", fx.evidence);
    let ev = &fx.evidence[0];
    assert_eq!(
        ev,
        &Evidence::MemberDoubleVote {
            member: new.public_key(),
            first: Box::new(first_pc),
            second: Box::new(second.clone()),
        }
    );
    assert_eq!(ev.offender(), &new.public_key());
    assert!(ev.verify());
    assert!(ev.verify_in(&set));
    // Reported once per slot.
    let (_, again) = vote(VoteKind::Precommit, 3, &new);
    assert!(e
        .step(&new.public_key(), &again)
        .unwrap()
        .evidence
        .is_empty());
    // The same pair is not the member's equivocation in a set where the
    // two keys are different members, and two votes of one value are no
    // evidence at all.
    let unrotated =
        ValidatorSet::with_equal_power([1, 2, 22, 4].map(|i| key(i).public_key())).unwrap();
    assert!(!ev.verify_in(&unrotated));
    let forged = Evidence::MemberDoubleVote {
        member: new.public_key(),
        first: Box::new(first.clone()),
        second: Box::new(first),
    };
    assert!(!forged.verify());
    // Different values by two different members are not evidence.
    let (_, bytes) = vote(VoteKind::Prevote, 2, &key(3));
    assert!(e
        .step(&key(3).public_key(), &bytes)
        .unwrap()
        .evidence
        .is_empty());
    let (_, bytes) = vote(VoteKind::Prevote, 3, &key(4));
    assert!(e
        .step(&key(4).public_key(), &bytes)
        .unwrap()
        .evidence
        .is_empty());
}

#[test]
fn one_key_voting_twice_is_still_a_double_vote() {
    let (mut e, set) = engine();
    let k3 = key(3);
    let (_, bytes) = vote(VoteKind::Prevote, 1, &k3);
    assert!(e
        .step(&k3.public_key(), &bytes)
        .unwrap()
        .evidence
        .is_empty());
    let (_, bytes) = vote(VoteKind::Prevote, 2, &k3);
    let fx = e.step(&k3.public_key(), &bytes).unwrap();
    assert!(
        matches!(fx.evidence.as_slice(), [Evidence::DoubleVote { .. }]),
        "{:?}",
        fx.evidence
    );
    assert!(fx.evidence[0].verify_in(&set));
}
