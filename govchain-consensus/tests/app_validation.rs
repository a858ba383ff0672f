//! The application's half of `valid(v)`: with `app_validation` on, a block
//! the application refuses is never decided, and the chain goes on with
//! blocks from honest proposers.

#![allow(clippy::unwrap_used)] // test helpers

use std::collections::VecDeque;
use std::sync::Arc;

use govchain_consensus::tendermint::{Tendermint, TendermintConfig};
use govchain_consensus::{Consensus, Effects, Recipient};
use govchain_core::block::Block;
use govchain_core::crypto::{PublicKey, SecretKey, Signer};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::ValidatorSet;

const POISON: &[u8] = b"invalid for the application";

struct Host {
    engine: Tendermint,
    key: Arc<SecretKey>,
    decided: Vec<Block>,
    asked: usize,
}

/// A block is invalid when it carries the poison payload: every honest
/// host judges it the same way.
fn verdict(block: &Block) -> bool {
    !block.transactions.iter().any(|t| t.payload() == POISON)
}

fn run(byzantine: usize, app_validation: bool, heights: u64) -> Vec<Host> {
    let chain = ChainId::new("main").unwrap();
    let keys: Vec<Arc<SecretKey>> = (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect();
    let set = ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key())).unwrap();
    let mut cfg = TendermintConfig::new(chain.clone(), set);
    cfg.app_validation = app_validation;
    let mut hosts = Vec::new();
    let mut queue: VecDeque<(usize, Effects)> = VecDeque::new();
    for (i, key) in keys.iter().enumerate() {
        let (engine, fx) =
            Tendermint::restore(cfg.clone(), key.clone(), &[], Timestamp::new(0)).unwrap();
        hosts.push(Host {
            engine,
            key: key.clone(),
            decided: Vec::new(),
            asked: 0,
        });
        queue.push_back((i, fx));
    }
    let index_of = |k: &PublicKey, hosts: &[Host]| {
        hosts.iter().position(|h| &h.key.public_key() == k).unwrap()
    };
    let mut now = 0u64;
    let mut nonce = 0u64;
    for _ in 0..200_000 {
        if hosts.iter().all(|h| h.decided.len() as u64 >= heights) {
            break;
        }
        let Some((i, fx)) = queue.pop_front() else {
            now += 50;
            for (i, h) in hosts.iter_mut().enumerate() {
                queue.push_back((i, h.engine.tick(Timestamp::new(now))));
            }
            continue;
        };
        // Persist (in memory here), send, apply, validate, propose.
        for m in fx.send {
            let from = hosts[i].key.public_key();
            let targets: Vec<usize> = match &m.to {
                Recipient::All => (0..hosts.len()).filter(|&j| j != i).collect(),
                Recipient::One(k) => vec![index_of(k, &hosts)],
            };
            for j in targets {
                if let Ok(out) = hosts[j].engine.step(&from, &m.bytes) {
                    queue.push_back((j, out));
                }
            }
        }
        hosts[i]
            .decided
            .extend(fx.decided.into_iter().map(|d| d.block));
        for block in fx.validate {
            hosts[i].asked += 1;
            let out = hosts[i]
                .engine
                .block_validated(block.hash(), verdict(&block));
            queue.push_back((i, out));
        }
        if let Some(req) = fx.propose_request {
            nonce += 1;
            let payload = if i == byzantine {
                POISON.to_vec()
            } else {
                b"fine".to_vec()
            };
            let tx = Transaction::new_signed(chain.clone(), hosts[i].key.as_ref(), nonce, payload)
                .unwrap();
            let block = req.block(Timestamp::new(now), vec![tx]);
            let out = hosts[i].engine.propose(block).unwrap();
            queue.push_back((i, out));
        }
    }
    hosts
}

#[test]
fn a_block_the_application_refuses_is_never_decided() {
    let hosts = run(0, true, 8);
    for h in &hosts {
        assert!(
            h.decided.len() >= 8,
            "liveness: decided {}",
            h.decided.len()
        );
        assert!(
            h.decided.iter().all(verdict),
            "an invalid block was decided"
        );
        assert!(h.asked > 0, "the engine never asked the application");
    }
    // All honest nodes agree on the common prefix.
    let n = hosts.iter().map(|h| h.decided.len()).min().unwrap();
    for h in &hosts[1..] {
        assert_eq!(h.decided[..n], hosts[0].decided[..n]);
    }
    // Heights continue contiguously.
    for (i, b) in hosts[1].decided.iter().enumerate() {
        assert_eq!(b.header.height, Height::new(i as u64 + 1));
    }
}

#[test]
fn without_app_validation_the_same_block_is_decided() {
    // The control: the same run with the hook off decides poisoned blocks,
    // so the test above fails if the engine ignores verdicts.
    let hosts = run(0, false, 8);
    assert!(hosts[1].decided.iter().any(|b| !verdict(b)));
    assert_eq!(hosts[1].asked, 0);
}
