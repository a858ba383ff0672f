//! Bad input from the network is refused with typed errors, never a panic.

#![allow(clippy::unwrap_used)] // test helpers

use std::sync::Arc;

use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::wire::{Message, PolkaCertificate};
use govchain_consensus::{Consensus, ConsensusError, SignedVote};
use govchain_core::cert::{CertificateError, VoteKind, VoteMessage};
use govchain_core::codec::{DecodeError, Encode};
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::ValidatorSet;

fn keys() -> Vec<Arc<SecretKey>> {
    (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect()
}

fn engine() -> (Tendermint, Vec<Arc<SecretKey>>) {
    let keys = keys();
    let set = ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key())).unwrap();
    let cfg = TendermintConfig::new(ChainId::new("main").unwrap(), set);
    let (engine, _) = Tendermint::restore(cfg, keys[0].clone(), &[], Timestamp::new(0)).unwrap();
    (engine, keys)
}

fn vote(chain: &str, height: u64, round: u32, signer: &SecretKey) -> Vec<u8> {
    let v = VoteMessage {
        kind: VoteKind::Prevote,
        chain_id: ChainId::new(chain).unwrap(),
        height: Height::new(height),
        round: Round::new(round),
        block_hash: Some(Hash::ZERO),
    };
    Message::Vote(SignedVote::sign(v, signer)).to_bytes()
}

#[test]
fn wrong_chain_is_refused() {
    let (mut e, k) = engine();
    let err = e
        .step(&k[1].public_key(), &vote("other", 1, 0, &k[1]))
        .unwrap_err();
    assert!(matches!(err, ConsensusError::WrongChain { .. }), "{err}");
}

#[test]
fn height_far_in_the_future_is_refused_and_buffering_is_bounded() {
    let (mut e, k) = engine();
    let err = e
        .step(&k[1].public_key(), &vote("main", 1_000, 0, &k[1]))
        .unwrap_err();
    assert!(
        matches!(err, ConsensusError::HeightTooFarAhead { .. }),
        "{err}"
    );
    // Near-future heights are buffered, up to the per-peer bound.
    let cap = e.config().max_buffered_per_peer;
    let mut refused = None;
    for round in 0..=cap as u32 {
        if let Err(err) = e.step(&k[1].public_key(), &vote("main", 2, round % 8, &k[1])) {
            refused = Some(err);
            break;
        }
    }
    assert!(
        matches!(refused, Some(ConsensusError::BufferFull { .. })),
        "{refused:?}"
    );
}

#[test]
fn signature_by_non_validator_is_refused() {
    let (mut e, k) = engine();
    let stranger = SecretKey::from_seed(&[99; 32]);
    let err = e
        .step(&k[1].public_key(), &vote("main", 1, 0, &stranger))
        .unwrap_err();
    assert!(
        matches!(err, ConsensusError::UnknownValidator { .. }),
        "{err}"
    );
}

#[test]
fn forged_signature_is_refused() {
    let (mut e, k) = engine();
    let mut bytes = vote("main", 1, 0, &k[1]);
    let last = bytes.len() - 1;
    bytes[last - 40] ^= 1; // inside the signature's R part
    let err = e.step(&k[1].public_key(), &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::InvalidSignature { .. } | ConsensusError::Malformed { .. }
        ),
        "{err}"
    );
}

#[test]
fn malformed_encoding_is_refused() {
    let (mut e, k) = engine();
    let from = k[1].public_key();
    for bytes in [vec![], vec![9], vec![2, 1, 2, 3]] {
        let err = e.step(&from, &bytes).unwrap_err();
        assert!(matches!(err, ConsensusError::Malformed { .. }), "{err}");
    }
    let mut trailing = vote("main", 1, 0, &k[1]);
    trailing.push(0);
    assert_eq!(
        e.step(&from, &trailing).unwrap_err(),
        ConsensusError::Malformed {
            source: DecodeError::TrailingBytes { remaining: 1 }
        }
    );
    // Every truncation of a valid message is refused without panicking.
    let good = vote("main", 1, 0, &k[1]);
    for cut in 0..good.len() {
        assert!(e.step(&from, &good[..cut]).is_err());
    }
}

#[test]
fn oversized_message_is_refused_before_decoding() {
    let (mut e, k) = engine();
    let max = e.config().max_message_len;
    let err = e.step(&k[1].public_key(), &vec![0u8; max + 1]).unwrap_err();
    assert_eq!(err, ConsensusError::MessageTooLarge { len: max + 1, max });
}

#[test]
fn round_beyond_bound_is_refused() {
    let (mut e, k) = engine();
    let err = e
        .step(&k[1].public_key(), &vote("main", 1, 1_000_000, &k[1]))
        .unwrap_err();
    assert!(
        matches!(err, ConsensusError::RoundTooFarAhead { .. }),
        "{err}"
    );
}

fn polka(signers: &[&SecretKey], round: u32) -> PolkaCertificate {
    let set = ValidatorSet::with_equal_power(keys().iter().map(|k| k.public_key())).unwrap();
    let votes: Vec<SignedVote> = signers
        .iter()
        .map(|k| {
            SignedVote::sign(
                VoteMessage {
                    kind: VoteKind::Prevote,
                    chain_id: ChainId::new("main").unwrap(),
                    height: Height::new(1),
                    round: Round::new(round),
                    block_hash: Some(Hash::ZERO),
                },
                *k,
            )
        })
        .collect();
    PolkaCertificate::from_votes(
        &ChainId::new("main").unwrap(),
        Height::new(1),
        Round::new(round),
        Hash::ZERO,
        &set,
        &votes,
    )
    .0
}

#[test]
fn polka_certificates_are_verified_before_use() {
    let (mut e, k) = engine();
    let from = k[1].public_key();
    let set = e.config().validators_at(Height::new(1)).unwrap().clone();

    // Two of four is not a polka.
    let weak = polka(&[&k[1], &k[2]], 0);
    let err = e.step(&from, &Message::Polka(weak).to_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::InvalidCertificate {
                source: CertificateError::InsufficientPower { .. },
                ..
            }
        ),
        "{err}"
    );

    // A forged signature among three.
    let mut forged = polka(&[&k[1], &k[2], &k[3]], 0);
    forged.signatures[0].signature = forged.signatures[1].signature;
    let err = e
        .step(&from, &Message::Polka(forged).to_bytes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::InvalidCertificate {
                source: CertificateError::InvalidSignatures { .. },
                ..
            }
        ),
        "{err}"
    );

    // Prevotes for nil, or precommits, do not make a polka for a block.
    let good = polka(&[&k[1], &k[2], &k[3]], 0);
    assert!(good.verify(&set).is_ok());
    let mut other_round = good.clone();
    other_round.round = Round::new(1);
    assert!(other_round.verify(&set).is_err());

    // A valid one is accepted, and round-trips canonically.
    let bytes = Message::Polka(good.clone()).to_bytes();
    assert_eq!(
        Message::decode(&bytes, usize::MAX).unwrap(),
        Message::Polka(good)
    );
    assert!(e.step(&from, &bytes).is_ok());
    // Every truncation is refused without panicking.
    for cut in 0..bytes.len() {
        assert!(e.step(&from, &bytes[..cut]).is_err());
    }
}

mod arbitrary_bytes {
    //! The stable twin of `fuzz/fuzz_targets/consensus_step.rs`: arbitrary
    //! and mutated messages from validators and strangers, fed to an engine
    //! one after another, give typed errors or effects and never a panic.

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_messages_never_panic(
            messages in proptest::collection::vec(
                (0usize..5, proptest::collection::vec(any::<u8>(), 0..400)),
                1..20,
            ),
        ) {
            let (mut e, k) = engine();
            let stranger = SecretKey::from_seed(&[99; 32]);
            for (from, bytes) in messages {
                let peer = match k.get(from) {
                    Some(key) => key.public_key(),
                    None => stranger.public_key(),
                };
                let _ = e.step(&peer, &bytes);
            }
            let _ = e.tick(Timestamp::new(10_000));
        }

        #[test]
        fn mutated_valid_votes_never_panic(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let (mut e, k) = engine();
            let mut bytes = vote("main", 1, 0, &k[1]);
            let i = index.index(bytes.len());
            bytes[i] ^= flip;
            let _ = e.step(&k[1].public_key(), &bytes);
        }
    }
}
