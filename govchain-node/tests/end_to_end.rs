//! Four department nodes in one process, on durable storage in temporary
//! directories: they commit the same blocks and state roots, and a node
//! restarted from its directory catches up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{keys, side_spec, start, wait_for};
use govchain_core::crypto::SecretKey;
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::{ChainSpec, EngineKind, InProcessNetwork, NodeHandle};

fn spec(chain: &ChainId, engine: EngineKind, keys: &[Arc<SecretKey>]) -> ChainSpec {
    side_spec(chain, engine, keys, Arc::new(KvApp))
}

fn run_engine(engine: EngineKind) {
    let chain = ChainId::new("side").unwrap();
    let keys = keys(4);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let mut nodes: Vec<Option<NodeHandle>> = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| Some(start(&net, k, d.path(), vec![spec(&chain, engine, &keys)])))
        .collect();
    let client = SecretKey::from_seed(&[99; 32]);
    let mut nonce = 0u64;
    let mut submit = |node: &NodeHandle, count: usize| {
        let txs: Vec<Transaction> = (0..count)
            .map(|_| {
                let tx = Transaction::new_signed(
                    chain.clone(),
                    &client,
                    nonce,
                    KvApp::payload(format!("k{nonce}").as_bytes(), b"v"),
                )
                .unwrap();
                nonce += 1;
                tx
            })
            .collect();
        let results = node.submit(&chain, txs).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    };
    submit(nodes[0].as_ref().unwrap(), 200);
    wait_for("200 committed txs", Duration::from_secs(60), || {
        nodes[1]
            .as_ref()
            .unwrap()
            .state(&chain, &KvApp::state_key(b"k199"))
            .unwrap()
            .is_some()
    });
    // Stop node 3, keep going, restart it from its directory.
    let stopped = nodes[3].take().unwrap();
    net.unregister(stopped.key());
    stopped.stop().unwrap();
    submit(nodes[1].as_ref().unwrap(), 200);
    wait_for("400 committed txs", Duration::from_secs(60), || {
        nodes[0]
            .as_ref()
            .unwrap()
            .state(&chain, &KvApp::state_key(b"k399"))
            .unwrap()
            .is_some()
    });
    nodes[3] = Some(start(
        &net,
        &keys[3],
        dirs[3].path(),
        vec![spec(&chain, engine, &keys)],
    ));
    let target = nodes[0].as_ref().unwrap().height(&chain).unwrap();
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(60),
        || nodes[3].as_ref().unwrap().height(&chain).unwrap() >= target,
    );
    // Same blocks and state roots everywhere, up to the lowest height.
    let nodes: Vec<NodeHandle> = nodes.into_iter().map(Option::unwrap).collect();
    let common = nodes
        .iter()
        .map(|n| n.height(&chain).unwrap())
        .min()
        .unwrap();
    assert!(common >= target);
    for h in 1..=common.get() {
        let b0 = nodes[0].block(&chain, Height::new(h)).unwrap();
        for n in &nodes[1..] {
            let b = n.block(&chain, Height::new(h)).unwrap();
            assert_eq!(b.block.hash(), b0.block.hash(), "height {h}");
            assert_eq!(b.block.header.state_root, b0.block.header.state_root);
        }
    }
    // The restarted node indexed, when it opened its store, the
    // transactions committed before it stopped (from the store's index),
    // and the later ones as they came.
    let restarted = &nodes[3];
    let mut indexed = 0;
    for h in 1..=common.get() {
        let b = restarted.block(&chain, Height::new(h)).unwrap();
        for (i, tx) in b.block.transactions.iter().enumerate() {
            assert_eq!(
                restarted.find_transaction(&chain, &tx.id()).unwrap(),
                Some((Height::new(h), i as u32)),
                "transaction {i} of block {h}"
            );
            indexed += 1;
        }
    }
    assert_eq!(indexed, 400);
    for n in nodes {
        assert_eq!(n.status().fatal, None);
        n.stop().unwrap();
    }
}

#[test]
fn four_tendermint_nodes_agree_and_a_restarted_node_catches_up() {
    run_engine(EngineKind::Bft);
}

#[test]
fn four_raft_nodes_agree_and_a_restarted_node_catches_up() {
    run_engine(EngineKind::Raft);
}
