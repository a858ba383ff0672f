//! Validator key rotation by governance on four in-process nodes (issue
//! #8): department 1's node holds its new key ahead of time and switches at
//! exactly the rotation height; department 2's operator never loads the new
//! key, so its node signs with the old one through the overlap, warns that
//! the key is leaving its window, and then falls silent while the other
//! three keep the chain going. The registry follows both rotations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{genesis_departments, keys, wait_for};
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::prove_rotation_possession;
use govchain_node::governance::{
    self, Action, GovernanceGenesis, GovernanceOp, ProposalId, ProposalStatus,
};
use govchain_node::{ChainSpec, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind};

const OVERLAP: u64 = 4;

fn passed(node: &NodeHandle, main: &ChainId, pid: u64) -> bool {
    node.read_state(main, |s| governance::proposal(s, ProposalId::new(pid)))
        .unwrap()
        .unwrap()
        .is_some_and(|p| p.status == ProposalStatus::Passed)
}

#[test]
fn validators_rotate_their_keys_by_governance_without_a_stall() {
    let keys = keys(4);
    let new_keys: Vec<Arc<SecretKey>> = (0..2)
        .map(|i| Arc::new(SecretKey::from_seed(&[40 + i; 32])))
        .collect();
    let main = ChainId::new("main").unwrap();
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments: genesis_departments(&keys[..4]),
        side_chains: Vec::new(),
    };
    let spec = ChainSpec::main_chain(genesis).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let nodes: Vec<NodeHandle> = (0..4)
        .map(|i| {
            let mut cfg = NodeConfig::new(
                format!("dept-{}", i + 1),
                keys[i].clone(),
                StorageKind::Durable(dirs[i].path().to_owned()),
            );
            cfg.chains = vec![spec.clone()];
            // Department 1 loaded its new key ahead of the rotation;
            // department 2's operator never does.
            if i == 0 {
                cfg.rotation_keys = vec![new_keys[0].clone()];
            }
            let node = Node::start(cfg, net.transport(keys[i].public_key())).unwrap();
            net.register(keys[i].public_key(), node.inbox());
            node
        })
        .collect();

    // Both rotations take effect at one height, proposed by the rotating
    // departments (each holds the new key and signs its proof of
    // possession) and approved by departments 3 and 4.
    wait_for("a first block", Duration::from_secs(30), || {
        nodes[0].height(&main).unwrap().get() >= 1
    });
    let effective = Height::new(nodes[0].height(&main).unwrap().get() + 30);
    for (pid, i) in [(1u64, 0usize), (2, 1)] {
        let action = Action::RotateValidatorKey {
            chain: main.clone(),
            key: keys[i].public_key(),
            new_key: new_keys[i].public_key(),
            overlap: OVERLAP,
            possession: prove_rotation_possession(
                &main,
                &keys[i].public_key(),
                new_keys[i].as_ref(),
            ),
        };
        nodes[i]
            .submit_own(
                &main,
                GovernanceOp::Propose {
                    action,
                    effective_height: effective,
                }
                .to_payload(),
            )
            .unwrap();
        wait_for(&format!("proposal {pid}"), Duration::from_secs(60), || {
            nodes[i]
                .read_state(&main, |s| governance::proposal(s, ProposalId::new(pid)))
                .unwrap()
                .unwrap()
                .is_some()
        });
        for voter in &nodes[2..4] {
            voter
                .submit_own(
                    &main,
                    GovernanceOp::Vote {
                        proposal_id: ProposalId::new(pid),
                        approve: true,
                    }
                    .to_payload(),
                )
                .unwrap();
        }
        wait_for(
            &format!("proposal {pid} to pass"),
            Duration::from_secs(60),
            || passed(&nodes[3], &main, pid),
        );
    }
    assert!(
        nodes[0].height(&main).unwrap() < effective,
        "the proposals passed after the effective height; the test needs a later one"
    );

    // The chain goes past the overlap with department 2 silent after it.
    let overlap_end = effective.get() + OVERLAP;
    let target = Height::new(overlap_end + 5);
    wait_for(
        "the chain past the overlap",
        Duration::from_secs(120),
        || nodes.iter().all(|n| n.height(&main).unwrap() >= target),
    );

    let (old0, new0) = (keys[0].public_key(), new_keys[0].public_key());
    let old1 = keys[1].public_key();
    let mut new_key_signed = false;
    for h in 1..=target.get() {
        let stored = nodes[2].block(&main, Height::new(h)).unwrap();
        let signers: Vec<_> = stored
            .certificate
            .signatures
            .iter()
            .map(|s| s.validator.clone())
            .collect();
        if h < effective.get() {
            assert!(
                !signers.contains(&new0),
                "height {h}: new key before the rotation"
            );
        } else {
            // Department 1 switched at exactly the rotation height.
            assert!(
                !signers.contains(&old0),
                "height {h}: department 1's old key"
            );
            new_key_signed |= signers.contains(&new0);
        }
        if h >= overlap_end {
            assert!(
                !signers.contains(&old1),
                "height {h}: a key past its overlap counted"
            );
        }
        for n in &nodes {
            assert_eq!(
                n.block(&main, Height::new(h)).unwrap().block.hash(),
                stored.block.hash(),
                "height {h}"
            );
        }
    }
    assert!(new_key_signed, "department 1's new key never signed");

    // Status: department 1 signs with an unbounded key; department 2's
    // node warned that its (rotated-out) key leaves its window.
    assert_eq!(nodes[0].status().chains[0].key_window, None);
    let late = nodes[1].status();
    assert_eq!(late.chains[0].key_blocks_left, Some(0));
    assert!(
        late.warnings
            .iter()
            .any(|w| w.contains(&format!("expires at height {overlap_end}"))),
        "{:?}",
        late.warnings
    );
    // The registry follows: both departments' node keys moved.
    let registry = nodes[3]
        .read_state(&main, governance::departments)
        .unwrap()
        .unwrap();
    assert_eq!(registry[0].node_key, new0);
    assert_eq!(registry[1].node_key, new_keys[1].public_key());
    for n in nodes {
        assert_eq!(n.status().fatal, None);
        n.stop().unwrap();
    }
}
