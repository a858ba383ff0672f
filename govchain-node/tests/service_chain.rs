//! The government service chain end to end, in one process: a main chain
//! under governance and two side chains (Tendermint and Raft) on durable
//! storage. A fifth department is voted in as a main-chain validator and
//! the change takes effect at the stated height on every node; side chains
//! anchor checkpoints, and a cross-chain proof built by one node verifies
//! with a fresh light client that trusts only the main chain's genesis set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{approve, genesis_departments, keys, kv_txs, set_of, start, wait_for, wait_status};
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::ValidatorSet;
use govchain_node::crosschain::{CrossChainError, ProvenFact};
use govchain_node::governance::{
    self, Action, GovernanceGenesis, GovernanceOp, ProposalStatus, SideChainSpec,
};
use govchain_node::{ChainSpec, EngineKind, InProcessNetwork, NodeHandle};

use common::department_id as id;

#[test]
fn governance_anchoring_and_cross_chain_proofs() {
    let keys = keys(5);
    let main = ChainId::new("main").unwrap();
    let identity = ChainId::new("identity").unwrap();
    let social = ChainId::new("social").unwrap();
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments: genesis_departments(&keys[..4]),
        side_chains: vec![
            SideChainSpec {
                chain_id: identity.clone(),
                engine: EngineKind::Bft,
                validators: set_of(&keys[..4]),
                anchor_interval: 4,
            },
            SideChainSpec {
                chain_id: social.clone(),
                engine: EngineKind::Raft,
                validators: set_of(&keys[..3]),
                anchor_interval: 4,
            },
        ],
    };
    let main_spec = ChainSpec::main_chain(genesis.clone()).unwrap();
    let side = |n: usize| ChainSpec::side_chain(&genesis.side_chains[n], Arc::new(KvApp));
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let mut nodes: Vec<NodeHandle> = (0..4)
        .map(|i| {
            let mut specs = vec![main_spec.clone(), side(0)];
            if i < 3 {
                specs.push(side(1));
            }
            start(&net, &keys[i], dirs[i].path(), specs)
        })
        .collect();

    // Side-chain traffic.
    let citizen = SecretKey::from_seed(&[77; 32]);
    let txs = kv_txs(&identity, &citizen, 20);
    let target = txs[7].clone();
    assert!(nodes[1]
        .submit(&identity, txs)
        .unwrap()
        .iter()
        .all(Result::is_ok));
    let social_tx =
        Transaction::new_signed(social.clone(), &citizen, 0, KvApp::payload(b"s", b"y")).unwrap();
    assert!(nodes[2].submit(&social, vec![social_tx.clone()]).unwrap()[0].is_ok());

    // Governance: register department 5, then make it a main validator.
    let fifth = governance::Department {
        id: id(5),
        name: "Department 5".into(),
        node_key: keys[4].public_key(),
    };
    let m = nodes[0].height(&main).unwrap().get();
    nodes[0]
        .submit_own(
            &main,
            GovernanceOp::Propose {
                action: Action::RegisterDepartment { department: fifth },
                effective_height: Height::new(m + 10),
            }
            .to_payload(),
        )
        .unwrap();
    wait_status(&nodes[0], &main, 1, ProposalStatus::Open);
    approve(&nodes[1..3], &main, 1);
    wait_status(&nodes[3], &main, 1, ProposalStatus::Passed);
    // Department 5's node joins as a follower of the main chain.
    nodes.push(start(
        &net,
        &keys[4],
        dirs[4].path(),
        vec![main_spec.clone()],
    ));
    let m = nodes[0].height(&main).unwrap().get();
    let effective = Height::new(m + 12);
    nodes[1]
        .submit_own(
            &main,
            GovernanceOp::Propose {
                action: Action::AddValidator {
                    chain: main.clone(),
                    key: keys[4].public_key(),
                    power: 1,
                    department: id(5),
                },
                effective_height: effective,
            }
            .to_payload(),
        )
        .unwrap();
    wait_status(&nodes[1], &main, 2, ProposalStatus::Open);
    approve([&nodes[0], &nodes[3]], &main, 2);
    wait_status(&nodes[0], &main, 2, ProposalStatus::Passed);
    let five = set_of(&keys);
    wait_for(
        "every node past the effective height",
        Duration::from_secs(90),
        || {
            nodes
                .iter()
                .all(|n| n.height(&main).unwrap().get() >= effective.get() + 3)
        },
    );
    let old: ValidatorSet = set_of(&keys[..4]);
    for n in &nodes {
        let before = n
            .block(&main, Height::new(effective.get() - 1))
            .unwrap()
            .block
            .header;
        let at = n.block(&main, effective).unwrap().block.header;
        assert_eq!(before.validator_set_hash, old.hash(), "{}", n.name());
        assert_eq!(before.next_validator_set_hash, five.hash(), "{}", n.name());
        assert_eq!(at.validator_set_hash, five.hash(), "{}", n.name());
    }
    // The fifth department votes after the change.
    let signed_by_fifth = (effective.get()..=effective.get() + 2).any(|h| {
        let c = nodes[0].block(&main, Height::new(h)).unwrap().certificate;
        c.signatures
            .iter()
            .any(|s| s.validator == keys[4].public_key())
    });
    wait_for(
        "a certificate signed by the fifth department",
        Duration::from_secs(30),
        || {
            signed_by_fifth || {
                let top = nodes[0].height(&main).unwrap().get();
                let c = nodes[0].block(&main, Height::new(top)).unwrap().certificate;
                c.signatures
                    .iter()
                    .any(|s| s.validator == keys[4].public_key())
            }
        },
    );

    // Anchors and a cross-chain proof for a side-chain transaction.
    let (side_height, _) = {
        let mut found = None;
        wait_for(
            "the identity transaction to commit",
            Duration::from_secs(30),
            || {
                found = nodes[1].find_transaction(&identity, &target.id()).unwrap();
                found.is_some()
            },
        );
        found.unwrap()
    };
    let mut proof = None;
    wait_for(
        "an anchor covering the transaction",
        Duration::from_secs(60),
        || {
            proof = nodes[2].cross_chain_tx_proof(&identity, &target.id()).ok();
            proof.is_some()
        },
    );
    let proof = proof.unwrap();
    // A fresh light client that trusts only the main chain's genesis set
    // follows main headers up to the proof's parent, then checks the proof.
    let main_height = proof.main.header.height;
    let mut client = LightClient::from_genesis(main.clone(), old.clone(), main_spec.genesis_time);
    for h in 1..main_height.get() {
        client
            .verify(&nodes[4].light_block(&main, Height::new(h)).unwrap())
            .unwrap();
    }
    let fact = proof.verify(&mut client.clone()).unwrap();
    assert_eq!(fact.side_chain, identity);
    assert_eq!(fact.side_height, side_height);
    assert_eq!(
        fact.fact,
        ProvenFact::Transaction {
            tx: target.clone(),
            index: fact_index(&fact)
        }
    );
    // Tampering with the proof's main header is caught.
    let mut forged = proof.clone();
    forged.main.header.time =
        govchain_core::types::Timestamp::new(forged.main.header.time.get() + 1);
    let err = forged.verify(&mut client.clone()).unwrap_err();
    assert!(matches!(err, CrossChainError::MainHeader { .. }), "{err:?}");

    // The Raft side chain anchors too.
    wait_for(
        "an anchor of the Raft side chain",
        Duration::from_secs(60),
        || {
            nodes[0]
                .read_state(&main, |s| governance::latest_anchor(s, &social))
                .unwrap()
                .unwrap()
                .is_some()
        },
    );
    // A founder restarted after the change knows the new set: it catches up
    // past the effective height and the chain keeps deciding.
    let restarted = nodes.remove(2);
    net.unregister(restarted.key());
    restarted.stop().unwrap();
    let before = nodes[0].height(&main).unwrap();
    wait_for(
        "the main chain to go on without the stopped node",
        Duration::from_secs(60),
        || nodes[0].height(&main).unwrap().get() >= before.get() + 3,
    );
    let specs = vec![main_spec.clone(), side(0), side(1)];
    nodes.push(start(&net, &keys[2], dirs[2].path(), specs));
    let target = nodes[0].height(&main).unwrap();
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(60),
        || nodes[4].height(&main).unwrap() >= target,
    );
    for h in [effective.get(), target.get()] {
        let expected = nodes[0].block(&main, Height::new(h)).unwrap().block.hash();
        assert_eq!(
            nodes[4].block(&main, Height::new(h)).unwrap().block.hash(),
            expected
        );
    }
    for n in nodes {
        assert_eq!(n.status().fatal, None, "{}", n.name());
        n.stop().unwrap();
    }
}

fn fact_index(fact: &govchain_node::crosschain::VerifiedFact) -> u64 {
    match &fact.fact {
        ProvenFact::Transaction { index, .. } => *index,
        ProvenFact::State { .. } => u64::MAX,
    }
}
