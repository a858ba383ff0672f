//! A network of four departments on the national-standard suite SM2/SM3,
//! in one process: a main chain under governance and a Tendermint side
//! chain, every key SM2. Transactions commit, a governance proposal passes
//! (after one naming an Ed25519 key was refused), the side chain anchors,
//! every header is a version-2 header naming sm2-sm3, a cross-chain proof
//! built by one node verifies with a fresh light client trusting only the
//! main chain's genesis set, and Ed25519-signed transactions are refused by
//! the chains' mempools.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    approve, genesis_departments, keys_in, kv_txs, prove_from_genesis, set_of, start, submit_all,
    wait_for, wait_status,
};
use govchain_core::block::BlockHeader;
use govchain_core::codec::{decode_exact, Encode};
use govchain_core::crypto::{CryptoSuite, SecretKey, SignatureAlgorithm, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::crosschain::ProvenFact;
use govchain_node::governance::{
    self, Action, Department, GovernanceGenesis, GovernanceOp, ProposalId, ProposalStatus,
    SideChainSpec,
};
use govchain_node::mempool::MempoolError;
use govchain_node::{ChainSpec, EngineKind, InProcessNetwork, NodeHandle};

use common::department_id as id;

const SM: CryptoSuite = CryptoSuite::Sm2Sm3;
const LONG: Duration = Duration::from_secs(180);

fn propose(action: Action, effective_height: Height) -> Vec<u8> {
    GovernanceOp::Propose {
        action,
        effective_height,
    }
    .to_payload()
}

/// Every header of `chain` on `node` up to `top` is a version-2 header
/// naming sm2-sm3, proposed by an SM2 key, and encodes canonically.
fn assert_sm_headers(node: &NodeHandle, chain: &ChainId, top: Height) {
    assert!(top.get() >= 1, "{chain} has no blocks");
    for h in 1..=top.get() {
        let header = node.block(chain, Height::new(h)).unwrap().block.header;
        assert_eq!(header.suite, SM, "{chain} at {h}");
        assert_eq!(header.version(), 2, "{chain} at {h}");
        assert_eq!(header.proposer.algorithm(), SignatureAlgorithm::Sm2);
        let bytes = header.to_bytes();
        assert_eq!(
            decode_exact::<BlockHeader>(&bytes, bytes.len()).unwrap(),
            header
        );
    }
}

#[test]
fn an_sm2_sm3_network_commits_governs_anchors_and_proves() {
    let keys = keys_in(SM, 5);
    assert!(keys
        .iter()
        .all(|k| k.algorithm() == SignatureAlgorithm::Sm2));
    let main = ChainId::new("main").unwrap();
    let identity = ChainId::new("identity").unwrap();
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments: genesis_departments(&keys[..4]),
        side_chains: vec![SideChainSpec {
            chain_id: identity.clone(),
            engine: EngineKind::Bft,
            validators: set_of(&keys[..4]),
            anchor_interval: 4,
        }],
    };
    assert_eq!(genesis.suite(), Ok(SM));
    let main_spec = ChainSpec::main_chain(genesis.clone()).unwrap();
    let side_spec = ChainSpec::side_chain(&genesis.side_chains[0], Arc::new(KvApp));
    assert_eq!(main_spec.suite(), SM);
    assert_eq!(side_spec.suite(), SM);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let nodes: Vec<NodeHandle> = (0..4)
        .map(|i| {
            start(
                &net,
                &keys[i],
                dirs[i].path(),
                vec![main_spec.clone(), side_spec.clone()],
            )
        })
        .collect();
    for n in &nodes {
        assert_eq!(n.suite(&main).unwrap(), SM);
        assert_eq!(n.suite(&identity).unwrap(), SM);
    }

    // Side-chain traffic from an SM2 citizen.
    let citizen = SecretKey::sm2_from_seed(&[77; 32]);
    let txs = kv_txs(&identity, &citizen, 12);
    let target = txs[5].clone();
    submit_all(&nodes[1], &identity, txs);

    // Ed25519-signed transactions are refused by both chains' mempools.
    let ed = SecretKey::from_seed(&[77; 32]);
    for chain in [&identity, &main] {
        let tx =
            Transaction::new_signed(chain.clone(), &ed, 0, KvApp::payload(b"e", b"d")).unwrap();
        let results = nodes[0].submit(chain, vec![tx]).unwrap();
        assert!(
            matches!(&results[0], Err(MempoolError::WrongSuite(m)) if m.suite == SM && m.algorithm == SignatureAlgorithm::Ed25519),
            "{chain}: {results:?}"
        );
    }

    // Governance: a department with an Ed25519 key is refused (its
    // proposal is never opened), one with an SM2 key passes.
    let m = nodes[0].height(&main).unwrap().get();
    let effective = Height::new(m + 20);
    let department = |key: govchain_core::crypto::PublicKey| Action::RegisterDepartment {
        department: Department {
            id: id(5),
            name: "Department 5".into(),
            node_key: key,
        },
    };
    nodes[0]
        .submit_own(&main, propose(department(ed.public_key()), effective))
        .unwrap();
    nodes[0]
        .submit_own(&main, propose(department(keys[4].public_key()), effective))
        .unwrap();
    wait_status(&nodes[0], &main, 1, ProposalStatus::Open);
    let opened = nodes[0]
        .read_state(&main, |s| governance::proposal(s, ProposalId::new(1)))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        opened.action,
        department(keys[4].public_key()),
        "the Ed25519 department must not have been opened as proposal 1"
    );
    approve(&nodes[1..3], &main, 1);
    wait_status(&nodes[3], &main, 1, ProposalStatus::Passed);
    let registered = nodes[3]
        .read_state(&main, |s| {
            governance::department_of_key(s, &keys[4].public_key())
        })
        .unwrap()
        .unwrap();
    assert_eq!(registered.map(|d| d.id), Some(id(5)));
    assert_eq!(
        nodes[3]
            .read_state(&main, |s| governance::proposal(s, ProposalId::new(2)))
            .unwrap()
            .unwrap(),
        None,
        "the refused proposal took no id"
    );

    // The side-chain transaction commits and an anchor covers it.
    let mut found = None;
    wait_for("the identity transaction to commit", LONG, || {
        found = nodes[1].find_transaction(&identity, &target.id()).unwrap();
        found.is_some()
    });
    let (side_height, _) = found.unwrap();
    // A fresh light client trusting only the main chain's genesis set (SM2)
    // follows main headers from another node, then checks the proof.
    let (proof, fact) = prove_from_genesis(
        &nodes[2],
        &nodes[3],
        set_of(&keys[..4]),
        main_spec.genesis_time,
        &identity,
        &target.id(),
    );
    let anchor = nodes[0]
        .read_state(&main, |s| governance::latest_anchor(s, &identity))
        .unwrap()
        .unwrap();
    assert!(anchor.is_some_and(|a| a.height >= side_height));
    assert_eq!(proof.main.header.suite, SM);

    assert_eq!(fact.side_chain, identity);
    assert_eq!(fact.side_height, side_height);
    assert!(
        matches!(&fact.fact, ProvenFact::Transaction { tx, .. } if tx == &target),
        "{:?}",
        fact.fact
    );

    // Every header on every node is an SM2/SM3 (version-2) header.
    for n in &nodes {
        assert_sm_headers(n, &main, n.height(&main).unwrap());
        assert_sm_headers(n, &identity, n.height(&identity).unwrap());
    }
    for n in nodes {
        assert_eq!(n.status().fatal, None, "{}", n.name());
        n.stop().unwrap();
    }
}
