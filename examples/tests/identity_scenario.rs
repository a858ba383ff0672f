//! The identity scenario of the service-chain demo on four department
//! nodes in one process: one Tendermint identity side chain running
//! `IdentityApp`, on durable storage in temporary directories.

use std::error::Error;
use std::sync::Arc;

use govchain_core::crypto::{CryptoSuite, SecretKey, Signer};
use govchain_core::hash::{Domain, Hash};
use govchain_core::types::ChainId;
use govchain_core::validator::{Validator, ValidatorSet};
use govchain_examples::identity_scenario::{self, IdentitySetup, NEW_KEY_CREDENTIALS};
use govchain_node::{
    ChainRole, ChainSpec, EngineKind, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind,
};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const CITIZENS: usize = 50;

fn department_key(suite: CryptoSuite, i: usize) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed_for(
        suite,
        Hash::of(
            Domain::Test,
            format!("identity test department {i}").as_bytes(),
        )
        .as_bytes(),
    ))
}

#[test]
fn identity_scenario_on_four_department_nodes() -> TestResult {
    scenario_on_four_department_nodes(CryptoSuite::Ed25519Blake3)
}

/// The same scenario on an SM2/SM3 identity chain: SM2 department,
/// issuer and holder keys, SM3 everywhere (what `service_chain --suite sm`
/// runs).
#[test]
fn identity_scenario_on_four_department_nodes_sm2_sm3() -> TestResult {
    scenario_on_four_department_nodes(CryptoSuite::Sm2Sm3)
}

fn scenario_on_four_department_nodes(suite: CryptoSuite) -> TestResult {
    let keys: Vec<Arc<SecretKey>> = (0..4).map(|i| department_key(suite, i)).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )?;
    let chain = ChainId::new("hz-identity")?;
    let setup = IdentitySetup::with_suite(suite, keys.iter().map(|k| k.public_key()).collect())?;
    let spec = ChainSpec::new(
        chain.clone(),
        ChainRole::Side {
            anchor_every: u64::MAX,
        },
        EngineKind::Bft,
        set.clone(),
        setup.app(),
    );
    let dir = tempfile::tempdir()?;
    let net = InProcessNetwork::new();
    let mut nodes: Vec<NodeHandle> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let mut config = NodeConfig::new(
            format!("dept-{i}"),
            key.clone(),
            StorageKind::Durable(dir.path().join(format!("dept-{i}"))),
        );
        config.chains.push(spec.clone());
        let node = Node::start(config, net.transport(key.public_key()))?;
        net.register(key.public_key(), node.inbox());
        nodes.push(node);
    }

    // Too few citizens is refused before anything touches the chain.
    let few = identity_scenario::run(
        &setup,
        &nodes[0],
        &nodes[2],
        &chain,
        &set,
        spec.genesis_time,
        1,
        &mut |_| {},
    );
    assert!(few.is_err_and(|e| e.to_string().contains("at least 2")));

    let mut lines = Vec::new();
    let report = identity_scenario::run(
        &setup,
        &nodes[0],
        &nodes[2],
        &chain,
        &set,
        spec.genesis_time,
        CITIZENS,
        &mut |line| lines.push(line.to_owned()),
    )?;
    println!("{}\n{report}", lines.join("\n"));

    assert_eq!(report.suite, suite);
    assert!(report.to_string().contains(suite.name()));
    assert!(report.revoked_rejected, "{report}");
    assert!(report.revoked_rejection.contains("credential revoked"));
    assert!(report.revoked_rejection.contains("code 64"));
    assert!(report.rotated_still_verify, "{report}");
    assert_eq!(report.rotated_rechecked, CITIZENS - 1);
    assert!(report.new_key_verify, "{report}");
    assert_eq!(report.new_key_verified, NEW_KEY_CREDENTIALS);
    assert!(report.retired_key_rejected, "{report}");
    assert!(report.retired_key_rejection.contains("key retired"));
    assert!(report.selective_disclosure_ok);
    assert_eq!(
        report.credentials_issued,
        CITIZENS + NEW_KEY_CREDENTIALS + 1
    );
    // Every credential once, every one but the revoked one again after the
    // rotation, and those of the new key.
    let accepted = CITIZENS + (CITIZENS - 1) + NEW_KEY_CREDENTIALS;
    assert_eq!(report.presentations_verified, accepted);
    // Plus the two expected refusals, each audited.
    assert_eq!(report.audit_records, accepted + 2);
    assert!(report.audit_chain_ok);
    assert!(report.verify_per_s > 0.0);
    assert!(report.verify_p50_us > 0.0 && report.verify_p50_us <= report.verify_p99_us);
    assert!(report.verify_p99_us <= report.verify_max_us);
    assert!(report.accredited_at < report.published_at);
    assert!(report.published_at < report.revoked_at);
    assert!(report.revoked_at < report.rotated_at);
    assert!(report.light_headers >= report.rotated_at.get());
    // Accreditation, schema + key + list, revocation, rotation + new key.
    assert_eq!(report.scanned_txs, 7);
    assert_eq!(report.scanned_records, 3 + 128);
    assert_eq!(report.personal_data_hits, 0);
    report.check()?;
    assert!(lines.len() >= 7, "{lines:?}");
    assert!(report.to_string().lines().count() >= 6);

    // The scenario needs a fresh chain and says so.
    let again = identity_scenario::run(
        &setup,
        &nodes[1],
        &nodes[3],
        &chain,
        &set,
        spec.genesis_time,
        CITIZENS,
        &mut |_| {},
    );
    assert!(again.is_err_and(|e| e.to_string().contains("fresh identity chain")));

    for node in nodes {
        let name = node.name().to_owned();
        node.stop().map_err(|e| format!("stopping {name}: {e}"))?;
    }
    Ok(())
}
