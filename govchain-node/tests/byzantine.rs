//! A Byzantine proposer whose application admits a transaction the honest
//! application refuses: its blocks are judged invalid by every honest
//! validator and never decided, and the chain goes on without them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{keys, side_spec, start, wait_for};
use govchain_core::app::{
    Application, BlockContext, ExecutionError, QueryError, Receipt, StateOverlay, StateView,
    TxRejection,
};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::{EngineKind, InProcessNetwork};

const EVIL: &[u8] = b"not a key-value pair";

/// KvApp, except that its `check_tx` lets the invalid payload through.
struct Permissive;

impl Application for Permissive {
    fn name(&self) -> &str {
        "permissive"
    }
    fn check_tx(&self, state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        if tx.payload() == EVIL {
            return govchain_core::app::NonceTracker::check_not_replayed(state, tx);
        }
        KvApp.check_tx(state, tx)
    }
    fn execute_block(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError> {
        KvApp.execute_block(ctx, state, txs)
    }
    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        KvApp.query_key(request)
    }
}

/// Four validators of a Tendermint side chain `chain` on durable storage
/// in temporary directories, validator `i` running `app(i)`.
struct Validators {
    keys: Vec<Arc<govchain_core::crypto::SecretKey>>,
    nodes: Vec<govchain_node::NodeHandle>,
    _net: InProcessNetwork,
    _dirs: Vec<tempfile::TempDir>,
}

impl Validators {
    fn start(chain: &ChainId, app: impl Fn(usize) -> Arc<dyn Application>) -> Self {
        let keys = keys(4);
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let net = InProcessNetwork::new();
        let nodes = keys
            .iter()
            .zip(&dirs)
            .enumerate()
            .map(|(i, (k, d))| {
                let spec = side_spec(chain, EngineKind::Bft, &keys, app(i));
                start(&net, k, d.path(), vec![spec])
            })
            .collect();
        Validators {
            keys,
            nodes,
            _net: net,
            _dirs: dirs,
        }
    }
}

#[test]
fn an_invalid_transaction_from_a_byzantine_proposer_is_never_decided() {
    let chain = ChainId::new("side").unwrap();
    let validators = Validators::start(&chain, |i| {
        if i == 0 {
            Arc::new(Permissive)
        } else {
            Arc::new(KvApp)
        }
    });
    let nodes = &validators.nodes;
    let client = govchain_core::crypto::SecretKey::from_seed(&[42; 32]);
    // The honest mempools refuse it outright.
    let evil = Transaction::new_signed(chain.clone(), &client, 0, EVIL.to_vec()).unwrap();
    let refused = nodes[1].submit(&chain, vec![evil.clone()]).unwrap();
    assert!(refused[0].is_err(), "an honest mempool admitted it");
    // The Byzantine node admits it and proposes it whenever it leads.
    let admitted = nodes[0].submit(&chain, vec![evil.clone()]).unwrap();
    assert!(admitted[0].is_ok());
    // Honest traffic from another client keeps the chain busy.
    let other = govchain_core::crypto::SecretKey::from_seed(&[43; 32]);
    let txs: Vec<Transaction> = (0..40)
        .map(|n| {
            Transaction::new_signed(
                chain.clone(),
                &other,
                n,
                KvApp::payload(format!("k{n}").as_bytes(), b"v"),
            )
            .unwrap()
        })
        .collect();
    assert!(nodes[1]
        .submit(&chain, txs)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    // Run until the Byzantine node has had its turns and been refused.
    wait_for(
        "refused Byzantine proposals and 12 heights",
        Duration::from_secs(90),
        || {
            let refused: u64 = nodes[1..]
                .iter()
                .map(|n| n.status().chains[0].counters.rejected_proposals)
                .sum();
            refused >= 3
                && nodes[1..]
                    .iter()
                    .all(|n| n.height(&chain).unwrap() >= Height::new(12))
        },
    );
    for n in &nodes[1..] {
        assert_eq!(
            n.find_transaction(&chain, &evil.id()).unwrap(),
            None,
            "the invalid transaction was decided"
        );
        let top = n.height(&chain).unwrap().get();
        for h in 1..=top {
            let b = n.block(&chain, Height::new(h)).unwrap();
            assert!(b.block.transactions.iter().all(|t| t.payload() != EVIL));
        }
        assert!(
            n.state(&chain, &KvApp::state_key(b"k39"))
                .unwrap()
                .is_some(),
            "honest traffic committed"
        );
        assert_eq!(n.status().fatal, None);
    }
}

/// A peer that gossips transactions that do not decode, and consensus
/// bytes the engine refuses: each is dropped and counted on the chain's
/// counters (and in the metrics), the valid transaction gossiped beside
/// them is still admitted and committed, and the node goes on.
#[test]
fn malformed_gossip_from_a_peer_is_counted_and_dropped() {
    use govchain_core::codec::Encode;
    use govchain_core::crypto::Signer;
    use govchain_node::transport::Inbound;
    use govchain_node::Envelope;
    let chain = ChainId::new("side").unwrap();
    let validators = Validators::start(&chain, |_| Arc::new(KvApp));
    let (keys, nodes) = (&validators.keys, &validators.nodes);
    let client = govchain_core::crypto::SecretKey::from_seed(&[44; 32]);
    let good =
        Transaction::new_signed(chain.clone(), &client, 0, KvApp::payload(b"g", b"v")).unwrap();
    let mut truncated = good.to_bytes();
    truncated.pop();
    let from = keys[1].public_key();
    let inbox = nodes[0].inbox();
    let deliver = |envelope| {
        inbox
            .deliver(Inbound {
                from: from.clone(),
                envelope,
            })
            .unwrap()
    };
    deliver(Envelope::Transactions {
        chain: chain.clone(),
        txs: vec![b"garbage".to_vec(), truncated, good.to_bytes()],
    });
    deliver(Envelope::Consensus {
        chain: chain.clone(),
        bytes: b"not a consensus message".to_vec(),
    });
    wait_for(
        "the malformed gossip counted and the valid transaction committed",
        Duration::from_secs(60),
        || {
            let c = nodes[0].status().chains[0].counters;
            c.malformed_gossip_txs == 2
                && c.refused_consensus_messages >= 1
                && nodes[0]
                    .find_transaction(&chain, &good.id())
                    .unwrap()
                    .is_some()
        },
    );
    for n in nodes {
        assert_eq!(n.status().fatal, None);
    }
}
