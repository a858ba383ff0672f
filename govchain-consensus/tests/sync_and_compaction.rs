//! What a host with a block store relies on: the Tendermint engine keeps
//! only a bounded tail of decided blocks, its log can be compacted to
//! [`Consensus::compacted_log`] and restored from it, and a lagging engine
//! takes certified blocks from block sync through
//! [`Consensus::sync_decided`], refusing anything that does not verify.
//! Also: a validator whose key expires stops counting, proposing and
//! signing at its expiry height, and the chain goes on with the other
//! three ([`KeyWindow`]).

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers

use std::collections::VecDeque;
use std::sync::Arc;

use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::wire::{Message, SignedVote};
use govchain_consensus::{Consensus, ConsensusError, DecidedBlock, Effects, Recipient};
use govchain_core::cert::{VoteKind, VoteMessage};
use govchain_core::codec::Encode;
use govchain_core::crypto::{PublicKey, SecretKey, Signer};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::{KeyRejection, KeyWindow, ValidatorSet};

struct Host {
    engine: Tendermint,
    key: Arc<SecretKey>,
    /// Everything the engine asked to persist, in order (the host's log).
    log: Vec<Vec<u8>>,
    decided: Vec<DecidedBlock>,
}

fn chain() -> ChainId {
    ChainId::new("sync-test").unwrap()
}

fn keys() -> Vec<Arc<SecretKey>> {
    (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect()
}

fn equal_set() -> ValidatorSet {
    ValidatorSet::with_equal_power(keys().iter().map(|k| k.public_key())).unwrap()
}

fn config(retain: Option<u64>) -> TendermintConfig {
    config_with(retain, equal_set())
}

fn config_with(retain: Option<u64>, set: ValidatorSet) -> TendermintConfig {
    let mut cfg = TendermintConfig::new(chain(), set);
    cfg.retain_decided = retain;
    cfg
}

/// Drives `hosts` (only those in `live`) with instant delivery until every
/// live host has applied the decision of height `heights`.
fn drive(hosts: &mut [Host], live: &[usize], start: Vec<(usize, Effects)>, heights: u64) {
    let mut queue: VecDeque<(usize, Effects)> = start.into();
    let index_of = |k: &PublicKey, hosts: &[Host]| {
        hosts.iter().position(|h| &h.key.public_key() == k).unwrap()
    };
    let mut now = 0u64;
    let mut nonce = 1_000u64 * hosts[0].decided.len() as u64;
    for _ in 0..500_000 {
        let done = |h: &Host| {
            h.decided
                .last()
                .is_some_and(|d| d.block.header.height.get() >= heights)
        };
        if live.iter().all(|&i| done(&hosts[i])) {
            return;
        }
        let Some((i, fx)) = queue.pop_front() else {
            now += 50;
            for &i in live {
                let fx = hosts[i].engine.tick(Timestamp::new(now));
                queue.push_back((i, fx));
            }
            continue;
        };
        hosts[i].log.extend(fx.persist.iter().cloned());
        for m in fx.send {
            let from = hosts[i].key.public_key();
            let targets: Vec<usize> = match &m.to {
                Recipient::All => live.iter().copied().filter(|&j| j != i).collect(),
                Recipient::One(k) => vec![index_of(k, hosts)],
            };
            for j in targets.into_iter().filter(|j| live.contains(j)) {
                if let Ok(out) = hosts[j].engine.step(&from, &m.bytes) {
                    queue.push_back((j, out));
                }
            }
        }
        hosts[i].decided.extend(fx.decided);
        if let Some(req) = fx.propose_request {
            nonce += 1;
            let tx = Transaction::new_signed(chain(), hosts[i].key.as_ref(), nonce, b"x".to_vec())
                .unwrap();
            let block = req.block(Timestamp::new(now), vec![tx]);
            if let Ok(out) = hosts[i].engine.propose(block) {
                queue.push_back((i, out));
            }
        }
    }
    panic!("no progress to height {heights}");
}

fn start(retain: Option<u64>) -> (Vec<Host>, Vec<(usize, Effects)>) {
    start_with(config(retain))
}

fn start_with(cfg: TendermintConfig) -> (Vec<Host>, Vec<(usize, Effects)>) {
    let mut hosts = Vec::new();
    let mut fxs = Vec::new();
    for (i, key) in keys().into_iter().enumerate() {
        let (engine, fx) =
            Tendermint::restore(cfg.clone(), key.clone(), &[], Timestamp::new(0)).unwrap();
        hosts.push(Host {
            engine,
            key,
            log: Vec::new(),
            decided: Vec::new(),
        });
        fxs.push((i, fx));
    }
    (hosts, fxs)
}

#[test]
fn retained_blocks_are_bounded_and_the_compacted_log_restores_the_engine() {
    let (mut hosts, fxs) = start(Some(4));
    drive(&mut hosts, &[0, 1, 2, 3], fxs, 20);
    let h = hosts[0].engine.height();
    assert!(h.get() > 20);
    let last = h.prev().unwrap();
    // Only the latest 4 decided blocks are held.
    assert!(hosts[0].engine.decided_block(last).is_some());
    assert!(hosts[0]
        .engine
        .decided_block(Height::new(last.get() - 3))
        .is_some());
    assert!(hosts[0]
        .engine
        .decided_block(Height::new(last.get() - 4))
        .is_none());

    // The compacted log is far shorter than the full log and restores the
    // same height and parent.
    let compacted = hosts[0].engine.compacted_log().unwrap().to_vec();
    assert!(compacted.len() < hosts[0].log.len() / 4);
    let (from_compacted, _) = Tendermint::restore(
        config(Some(4)),
        hosts[0].key.clone(),
        &compacted,
        Timestamp::new(0),
    )
    .unwrap();
    let (from_full, _) = Tendermint::restore(
        config(Some(4)),
        hosts[0].key.clone(),
        &hosts[0].log,
        Timestamp::new(0),
    )
    .unwrap();
    assert_eq!(from_compacted.height(), h);
    assert_eq!(from_full.height(), h);
    assert_eq!(
        from_compacted.decided_block(last).map(|d| d.block.hash()),
        hosts[0].engine.decided_block(last).map(|d| d.block.hash())
    );

    // The restored engine goes on deciding with the others, on the same
    // chain.
    hosts[0].engine = from_compacted;
    hosts[0].log = compacted;
    let fx = hosts[0].engine.tick(Timestamp::new(0));
    drive(&mut hosts, &[0, 1, 2, 3], vec![(0, fx)], 26);
    for height in (h.get()..=26).map(Height::new) {
        let hashes: Vec<_> = hosts
            .iter()
            .map(|x| {
                x.decided
                    .iter()
                    .find(|d| d.block.header.height == height)
                    .map(|d| d.block.hash())
            })
            .collect();
        assert!(hashes[0].is_some(), "height {height} decided");
        assert!(hashes.iter().all(|x| *x == hashes[0]), "height {height}");
    }
}

#[test]
fn a_lagging_engine_takes_certified_blocks_from_sync_and_refuses_bad_ones() {
    // Three validators decide 12 blocks while the fourth is offline.
    let (mut hosts, fxs) = start(None);
    let fxs: Vec<_> = fxs.into_iter().filter(|(i, _)| *i != 3).collect();
    drive(&mut hosts, &[0, 1, 2], fxs, 12);
    let synced: Vec<DecidedBlock> = hosts[0].decided.clone();
    assert!(synced.len() >= 12);
    let lagging = &mut hosts[3].engine;
    assert_eq!(lagging.height(), Height::new(1));

    // Wrong height.
    let err = lagging.sync_decided(synced[1].clone()).unwrap_err();
    assert!(matches!(
        err,
        ConsensusError::UnexpectedSyncHeight { expected, got }
            if expected == Height::new(1) && got == Height::new(2)
    ));
    // A certificate that does not belong to the block.
    let mut forged = synced[0].clone();
    forged.certificate = synced[1].certificate.clone();
    assert!(matches!(
        lagging.sync_decided(forged).unwrap_err(),
        ConsensusError::InvalidCertificate { .. }
    ));
    // A block altered under its certificate.
    let mut altered = synced[0].clone();
    altered.block.transactions.clear();
    assert!(lagging.sync_decided(altered).is_err());
    assert_eq!(lagging.height(), Height::new(1), "errors change nothing");

    // The real blocks: each is committed like a decision of its own.
    for d in &synced {
        let fx = lagging.sync_decided(d.clone()).unwrap();
        assert_eq!(fx.decided.len(), 1);
        assert_eq!(fx.decided[0].block.hash(), d.block.hash());
        assert!(!fx.persist.is_empty(), "the decided record is persisted");
    }
    assert_eq!(
        lagging.height().get(),
        synced.last().unwrap().block.header.height.get() + 1
    );

    // Then it takes part in consensus again: all four decide 4 more.
    let target = hosts[0].engine.height().get() + 4;
    let fx = hosts[3].engine.tick(Timestamp::new(0));
    drive(&mut hosts, &[0, 1, 2, 3], vec![(3, fx)], target);
    let last = Height::new(target);
    let hash = hosts[0].engine.decided_block(last).map(|d| d.block.hash());
    assert!(hash.is_some());
    assert_eq!(
        hosts[3].engine.decided_block(last).map(|d| d.block.hash()),
        hash
    );
}

#[test]
fn raft_does_not_take_synced_blocks() {
    use govchain_consensus::raft::{Raft, RaftConfig};
    let (mut hosts, fxs) = start(None);
    drive(&mut hosts, &[0, 1, 2, 3], fxs, 1);
    let peers: Vec<PublicKey> = keys().iter().map(|k| k.public_key()).collect();
    let cfg = RaftConfig::new(chain(), peers);
    let (mut raft, _) = Raft::restore(cfg, keys()[0].clone(), &[], Timestamp::new(0)).unwrap();
    assert!(matches!(
        raft.sync_decided(hosts[0].decided[0].clone()),
        Err(ConsensusError::SyncUnsupported)
    ));
    assert!(raft.compacted_log().is_none());
}

#[test]
fn an_expired_validator_key_stops_counting_and_the_chain_goes_on() {
    const EXPIRY: u64 = 6;
    let expiring = keys()[0].public_key();
    let set = equal_set()
        .with_key_windows([(
            expiring.clone(),
            KeyWindow::expiring_at(Height::new(EXPIRY)),
        )])
        .unwrap();
    let (mut hosts, fxs) = start_with(config_with(None, set));
    drive(&mut hosts, &[0, 1, 2, 3], fxs, 15);
    let mut took_part_before = false;
    for height in (1..=15).map(Height::new) {
        let decided: Vec<&DecidedBlock> = hosts
            .iter()
            .map(|x| {
                x.decided
                    .iter()
                    .find(|d| d.block.header.height == height)
                    .unwrap_or_else(|| panic!("height {height} decided by every node"))
            })
            .collect();
        assert!(
            decided
                .iter()
                .all(|d| d.block.hash() == decided[0].block.hash()),
            "height {height}"
        );
        let d = decided[0];
        let signed = d
            .certificate
            .signatures
            .iter()
            .any(|s| s.validator == expiring);
        let proposed = d.block.header.proposer == expiring;
        if height.get() < EXPIRY {
            took_part_before |= signed || proposed;
        } else {
            assert!(!signed, "height {height}: the expired key counted");
            assert!(!proposed, "height {height}: the expired key proposed");
        }
    }
    assert!(took_part_before, "the key took part before its expiry");

    // A vote by the expired key at the current height is refused, typed.
    let other = &mut hosts[1].engine;
    let now = other.height();
    let vote = SignedVote::sign(
        VoteMessage {
            kind: VoteKind::Prevote,
            chain_id: chain(),
            height: now,
            round: Round::new(0),
            block_hash: None,
        },
        keys()[0].as_ref(),
    );
    let err = other
        .step(&expiring, &Message::Vote(vote).to_bytes())
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConsensusError::KeyOutsideWindow {
                reason: KeyRejection::Expired { .. },
                ..
            }
        ),
        "{err:?}"
    );
}
