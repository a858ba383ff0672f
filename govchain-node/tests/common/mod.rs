//! Helpers shared by the node's integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use govchain_core::app::Application;
use govchain_core::crypto::{CryptoSuite, SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::ValidatorSet;
use govchain_node::crosschain::{CrossChainProof, VerifiedFact};
use govchain_node::governance::{
    self, DepartmentId, GenesisDepartment, GovernanceOp, ProposalId, ProposalStatus,
};
use govchain_node::{
    ChainRole, ChainSpec, EngineKind, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind,
};

/// `n` department keys.
pub fn keys(n: u8) -> Vec<Arc<SecretKey>> {
    keys_in(CryptoSuite::Ed25519Blake3, n)
}

/// `n` department keys of `suite`'s algorithm.
pub fn keys_in(suite: CryptoSuite, n: u8) -> Vec<Arc<SecretKey>> {
    (1..=n)
        .map(|i| Arc::new(SecretKey::from_seed_for(suite, &[i; 32])))
        .collect()
}

/// A validator set of `keys`, power 1 each.
pub fn set_of(keys: &[Arc<SecretKey>]) -> ValidatorSet {
    ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key())).unwrap()
}

/// Department `n`'s id, `dept-n`.
pub fn department_id(n: usize) -> DepartmentId {
    DepartmentId::new(format!("dept-{n}")).unwrap()
}

/// Departments `dept-1`.. with node keys `keys` and main-chain power 1.
pub fn genesis_departments(keys: &[Arc<SecretKey>]) -> Vec<GenesisDepartment> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| GenesisDepartment {
            id: department_id(i + 1),
            name: format!("Department {}", i + 1),
            node_key: k.public_key(),
            power: 1,
            suite_keys: Vec::new(),
        })
        .collect()
}

/// A side chain run by `keys` with `app`.
pub fn side_spec(
    chain: &ChainId,
    engine: EngineKind,
    keys: &[Arc<SecretKey>],
    app: Arc<dyn Application>,
) -> ChainSpec {
    ChainSpec::new(
        chain.clone(),
        ChainRole::Side { anchor_every: 10 },
        engine,
        set_of(keys),
        app,
    )
}

/// Starts a node on durable storage in `dir` and connects it to `net`.
pub fn start(
    net: &InProcessNetwork,
    key: &Arc<SecretKey>,
    dir: &std::path::Path,
    specs: Vec<ChainSpec>,
) -> NodeHandle {
    start_with_suite_keys(net, key, Vec::new(), dir, specs)
}

/// [`start`] for a node that also holds `suite_keys`
/// ([`NodeConfig::suite_keys`]).
pub fn start_with_suite_keys(
    net: &InProcessNetwork,
    key: &Arc<SecretKey>,
    suite_keys: Vec<Arc<SecretKey>>,
    dir: &std::path::Path,
    specs: Vec<ChainSpec>,
) -> NodeHandle {
    let name: String = key.public_key().raw_bytes()[..4]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    let mut cfg = NodeConfig::new(name, key.clone(), StorageKind::Durable(dir.to_owned()));
    cfg.chains = specs;
    cfg.suite_keys = suite_keys
        .into_iter()
        .map(|k| k as Arc<dyn Signer>)
        .collect();
    let node = Node::start(cfg, net.transport(key.public_key())).unwrap();
    net.register(key.public_key(), node.inbox());
    node
}

/// Polls `ok` until it holds; fails the test after `deadline`. Polling a
/// condition (not sleeping for a fixed time) is the synchronisation.
pub fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Waits until governance proposal `pid` reached `status` on `node`'s main
/// chain `main`.
pub fn wait_status(node: &NodeHandle, main: &ChainId, pid: u64, status: ProposalStatus) {
    wait_for(
        &format!("proposal {pid} to be {status:?}"),
        Duration::from_secs(120),
        || {
            node.read_state(main, |s| governance::proposal(s, ProposalId::new(pid)))
                .unwrap()
                .unwrap()
                .is_some_and(|p| p.status == status)
        },
    );
}

/// `count` key-value transactions of `who` on `chain` (nonces from 0, keys
/// `c0`, `c1`, …).
pub fn kv_txs(chain: &ChainId, who: &SecretKey, count: u64) -> Vec<Transaction> {
    (0..count)
        .map(|n| {
            Transaction::new_signed(
                chain.clone(),
                who,
                n,
                KvApp::payload(format!("c{n}").as_bytes(), b"x"),
            )
            .unwrap()
        })
        .collect()
}

/// Each of `voters` approves proposal `pid` on the main chain `main`.
pub fn approve<'a>(voters: impl IntoIterator<Item = &'a NodeHandle>, main: &ChainId, pid: u64) {
    for n in voters {
        n.submit_own(
            main,
            GovernanceOp::Vote {
                proposal_id: ProposalId::new(pid),
                approve: true,
            }
            .to_payload(),
        )
        .unwrap();
    }
}

/// Submits `txs` to `chain` on `node`; each must be admitted.
pub fn submit_all(node: &NodeHandle, chain: &ChainId, txs: Vec<Transaction>) {
    let results = node.submit(chain, txs).unwrap();
    assert!(results.iter().all(Result::is_ok), "{chain}: {results:?}");
}

/// Waits until `prover` can prove side-chain transaction `tx` of `side`
/// from main-chain trust, and verifies that proof with a fresh light client
/// that trusts only the main chain's genesis set `genesis_set` (from
/// `genesis_time`) and follows the main headers `follower` serves.
pub fn prove_from_genesis(
    prover: &NodeHandle,
    follower: &NodeHandle,
    genesis_set: ValidatorSet,
    genesis_time: govchain_core::types::Timestamp,
    side: &ChainId,
    tx: &govchain_core::hash::Hash,
) -> (CrossChainProof, VerifiedFact) {
    let mut proof = None;
    wait_for(
        "an anchor covering the transaction",
        Duration::from_secs(180),
        || {
            proof = prover.cross_chain_tx_proof(side, tx).ok();
            proof.is_some()
        },
    );
    let proof = proof.unwrap();
    let main = proof.main.header.chain_id.clone();
    let mut client = LightClient::from_genesis(main.clone(), genesis_set, genesis_time);
    for h in 1..proof.main.header.height.get() {
        client
            .verify(&follower.light_block(&main, Height::new(h)).unwrap())
            .unwrap();
    }
    let fact = proof.verify(&mut client).unwrap();
    (proof, fact)
}
