//! One network, two crypto suites: an Ed25519/BLAKE3 main chain governs an
//! SM2/SM3 Tendermint side chain and an SM2/SM3 Raft side chain whose
//! validators are the departments' SM2 keys (registered in genesis), in
//! one process with four nodes. The transport stays addressed by the
//! departments' Ed25519 node keys. Both side chains commit version-2
//! sm2-sm3 headers while the main chain keeps version-1 ed25519-blake3
//! ones; each chain's mempool refuses the other suite's transactions; the
//! BFT side chain anchors on the main chain and a cross-chain proof
//! verifies with a fresh light client trusting only the main chain's
//! (Ed25519) genesis set. Then the fourth department registers its SM2 key
//! by governance (with a proof of possession), is added to the SM2 BFT
//! side chain, and proposes blocks there with that key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    approve, genesis_departments, keys_in, kv_txs, prove_from_genesis, set_of,
    start_with_suite_keys, submit_all, wait_for, wait_status,
};
use govchain_core::crypto::{CryptoSuite, SecretKey, SignatureAlgorithm, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::crosschain::ProvenFact;
use govchain_node::governance::{
    self, prove_department_key_possession, Action, GovernanceGenesis, GovernanceOp, ProposalStatus,
    SideChainSpec,
};
use govchain_node::mempool::MempoolError;
use govchain_node::{ChainSpec, EngineKind, InProcessNetwork, NodeHandle};

use common::department_id as id;

const ED: CryptoSuite = CryptoSuite::Ed25519Blake3;
const SM: CryptoSuite = CryptoSuite::Sm2Sm3;
const LONG: Duration = Duration::from_secs(180);

fn propose(action: Action, effective_height: Height) -> Vec<u8> {
    GovernanceOp::Propose {
        action,
        effective_height,
    }
    .to_payload()
}

/// Every header of `chain` on `node` up to its tip is of `suite` (version
/// 2 for sm2-sm3, 1 for ed25519-blake3) and proposed by a key of it.
fn assert_headers_of(node: &NodeHandle, chain: &ChainId, suite: CryptoSuite) -> Height {
    let top = node.height(chain).unwrap();
    assert!(top.get() >= 1, "{chain} has no blocks");
    for h in 1..=top.get() {
        let header = node.block(chain, Height::new(h)).unwrap().block.header;
        assert_eq!(header.suite, suite, "{chain} at {h}");
        assert_eq!(header.version(), if suite == SM { 2 } else { 1 });
        assert_eq!(
            CryptoSuite::of_key(&header.proposer),
            suite,
            "{chain} at {h}"
        );
    }
    top
}

#[test]
fn an_ed25519_main_chain_governs_sm2_side_chains_of_department_sm2_keys() {
    let node_keys = keys_in(ED, 4);
    // Each department's SM2 key (department 4's is registered later).
    let sm_keys: Vec<Arc<SecretKey>> = (1..=4u8)
        .map(|i| Arc::new(SecretKey::sm2_from_seed(&[100 + i; 32])))
        .collect();
    let main = ChainId::new("main").unwrap();
    let registry = ChainId::new("registry").unwrap();
    let ledger = ChainId::new("ledger").unwrap();
    let mut departments = genesis_departments(&node_keys);
    for (d, k) in departments.iter_mut().zip(&sm_keys[..3]) {
        d.suite_keys = vec![k.public_key()];
    }
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments,
        side_chains: vec![
            SideChainSpec {
                chain_id: registry.clone(),
                engine: EngineKind::Bft,
                validators: set_of(&sm_keys[..3]),
                anchor_interval: 4,
            },
            SideChainSpec {
                chain_id: ledger.clone(),
                engine: EngineKind::Raft,
                validators: set_of(&sm_keys[..3]),
                anchor_interval: 4,
            },
        ],
    };
    genesis.validate().unwrap();
    assert_eq!(genesis.suite(), Ok(ED));
    let main_spec = ChainSpec::main_chain(genesis.clone()).unwrap();
    let mut registry_spec = ChainSpec::side_chain(&genesis.side_chains[0], Arc::new(KvApp));
    // Department 4 follows the registry before it validates there: its
    // peers are every department, named by their (Ed25519) node keys.
    registry_spec.peers = node_keys.iter().map(|k| k.public_key()).collect();
    let ledger_spec = ChainSpec::side_chain(&genesis.side_chains[1], Arc::new(KvApp));
    assert_eq!(main_spec.suite(), ED);
    assert_eq!(registry_spec.suite(), SM);
    assert_eq!(ledger_spec.suite(), SM);

    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let nodes: Vec<NodeHandle> = (0..4)
        .map(|i| {
            // Department 4 is no Raft voter: it runs main and registry.
            let mut specs = vec![main_spec.clone(), registry_spec.clone()];
            if i < 3 {
                specs.push(ledger_spec.clone());
            }
            start_with_suite_keys(
                &net,
                &node_keys[i],
                vec![sm_keys[i].clone()],
                dirs[i].path(),
                specs,
            )
        })
        .collect();
    for n in &nodes {
        assert_eq!(n.suite(&main).unwrap(), ED);
        assert_eq!(n.suite(&registry).unwrap(), SM);
    }

    // SM2 citizens on both side chains.
    let citizen = SecretKey::sm2_from_seed(&[77; 32]);
    let txs = kv_txs(&registry, &citizen, 8);
    let target = txs[5].clone();
    submit_all(&nodes[1], &registry, txs);
    let ledger_txs = kv_txs(&ledger, &citizen, 4);
    let ledger_target = ledger_txs[3].id();
    submit_all(&nodes[2], &ledger, ledger_txs);

    // A node's own transaction on the SM2 chain is signed with its SM2 key.
    let own = nodes[0]
        .submit_own(&registry, KvApp::payload(b"own", b"sm2"))
        .unwrap();

    // Each chain's mempool refuses the other suite's senders.
    let ed_citizen = SecretKey::from_seed(&[77; 32]);
    for (chain, who, suite, algorithm) in [
        (&registry, &ed_citizen, SM, SignatureAlgorithm::Ed25519),
        (&ledger, &ed_citizen, SM, SignatureAlgorithm::Ed25519),
        (&main, &citizen, ED, SignatureAlgorithm::Sm2),
    ] {
        let tx =
            Transaction::new_signed(chain.clone(), who, 0, KvApp::payload(b"e", b"d")).unwrap();
        let results = nodes[0].submit(chain, vec![tx]).unwrap();
        assert!(
            matches!(&results[0], Err(MempoolError::WrongSuite(m)) if m.suite == suite && m.algorithm == algorithm),
            "{chain}: {results:?}"
        );
    }

    // Both side chains commit; the BFT one anchors and proves.
    let mut found = None;
    wait_for("the registry transaction to commit", LONG, || {
        found = nodes[1].find_transaction(&registry, &target.id()).unwrap();
        found.is_some()
    });
    wait_for("department 4 to follow the registry", LONG, || {
        found = nodes[3].find_transaction(&registry, &target.id()).unwrap();
        found.is_some()
    });
    let (side_height, _) = found.unwrap();
    wait_for(
        "the node's own registry transaction to commit",
        LONG,
        || {
            nodes[0]
                .find_transaction(&registry, &own)
                .unwrap()
                .is_some()
        },
    );
    let (h, n) = nodes[0].find_transaction(&registry, &own).unwrap().unwrap();
    let stored = nodes[0].block(&registry, h).unwrap().block.transactions[n as usize].clone();
    assert_eq!(stored.sender(), &sm_keys[0].public_key());
    wait_for("the ledger transaction to commit", LONG, || {
        (0..3).all(|i| {
            nodes[i]
                .find_transaction(&ledger, &ledger_target)
                .unwrap()
                .is_some()
        })
    });
    let (proof, fact) = prove_from_genesis(
        &nodes[2],
        &nodes[3],
        set_of(&node_keys),
        main_spec.genesis_time,
        &registry,
        &target.id(),
    );
    assert_eq!(proof.main.header.suite, ED);
    assert_eq!(fact.side_chain, registry);
    assert_eq!(fact.side_height, side_height);
    assert!(
        matches!(&fact.fact, ProvenFact::Transaction { tx, .. } if tx == &target),
        "{:?}",
        fact.fact
    );
    // The Raft side chain anchors too.
    wait_for("an anchor of the ledger", LONG, || {
        nodes[0]
            .read_state(&main, |s| governance::latest_anchor(s, &ledger))
            .unwrap()
            .unwrap()
            .is_some()
    });

    // Department 4 registers its SM2 key, with a proof of possession, and
    // joins the SM2 BFT side chain with it.
    let sm4 = sm_keys[3].clone();
    let m = nodes[0].height(&main).unwrap().get();
    nodes[0]
        .submit_own(
            &main,
            propose(
                Action::RegisterDepartmentKey {
                    department: id(4),
                    key: sm4.public_key(),
                    possession: prove_department_key_possession(&main, &id(4), sm4.as_ref()),
                },
                Height::new(m + 10),
            ),
        )
        .unwrap();
    wait_status(&nodes[0], &main, 1, ProposalStatus::Open);
    approve(&nodes[1..3], &main, 1);
    wait_status(&nodes[3], &main, 1, ProposalStatus::Passed);
    assert_eq!(
        nodes[3]
            .read_state(&main, |s| governance::department_suite_key(s, &id(4), SM))
            .unwrap()
            .unwrap(),
        Some(sm4.public_key())
    );
    let joins_at = Height::new(nodes[0].height(&registry).unwrap().get() + 40);
    nodes[1]
        .submit_own(
            &main,
            propose(
                Action::AddValidator {
                    chain: registry.clone(),
                    key: sm4.public_key(),
                    power: 1,
                    department: id(4),
                },
                joins_at,
            ),
        )
        .unwrap();
    wait_status(&nodes[1], &main, 2, ProposalStatus::Open);
    approve([&nodes[0], &nodes[2]], &main, 2);
    wait_status(&nodes[3], &main, 2, ProposalStatus::Passed);
    // Department 4's node signs there with its SM2 key: it proposes a block
    // (one in four heights, by weighted rotation among equal members).
    let mut proposed = None;
    wait_for("department 4 to propose on the registry", LONG, || {
        let top = nodes[3].height(&registry).unwrap().get();
        proposed = (joins_at.get()..=top).find(|h| {
            nodes[3]
                .block(&registry, Height::new(*h))
                .unwrap()
                .block
                .header
                .proposer
                == sm4.public_key()
        });
        proposed.is_some()
    });
    let proposed = Height::new(proposed.unwrap());
    // Every node stored that block and agrees on it.
    let hash = nodes[3].block(&registry, proposed).unwrap().block.hash();
    wait_for("every node to store department 4's block", LONG, || {
        nodes.iter().all(|n| {
            n.block(&registry, proposed)
                .is_ok_and(|b| b.block.hash() == hash)
        })
    });

    for n in &nodes {
        assert_headers_of(n, &main, ED);
        assert_headers_of(n, &registry, SM);
    }
    for n in &nodes[..3] {
        assert_headers_of(n, &ledger, SM);
    }
    for n in nodes {
        assert_eq!(n.status().fatal, None, "{}", n.name());
        n.stop().unwrap();
    }
}
