//! Helpers shared by the node's integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use govchain_core::app::Application;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::types::ChainId;
use govchain_core::validator::ValidatorSet;
use govchain_node::governance::{DepartmentId, GenesisDepartment};
use govchain_node::{
    ChainRole, ChainSpec, EngineKind, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind,
};

/// `n` department keys.
pub fn keys(n: u8) -> Vec<Arc<SecretKey>> {
    (1..=n)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
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
    let name: String = key.public_key().raw_bytes()[..4]
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    let mut cfg = NodeConfig::new(name, key.clone(), StorageKind::Durable(dir.to_owned()));
    cfg.chains = specs;
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
