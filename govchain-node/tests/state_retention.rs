//! State retention: a chain that keeps the state of its latest heights
//! only prunes older versions as it commits, refuses state reads at a
//! pruned height with a typed error, and keeps serving the latest state
//! with proofs that verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{keys, side_spec, start, wait_for};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::{EngineKind, InProcessNetwork, NodeError};

const RETAIN: u64 = 4;

#[test]
fn old_state_versions_are_pruned_and_refused_as_pruned() {
    let keys = keys(1);
    let chain = ChainId::new("retained").unwrap();
    let mut spec = side_spec(&chain, EngineKind::Bft, &keys, Arc::new(KvApp));
    spec.retain_state_versions = Some(RETAIN);
    spec.empty_block_interval_ms = 10;
    let dir = tempfile::tempdir().unwrap();
    let net = InProcessNetwork::new();
    let node = start(&net, &keys[0], dir.path(), vec![spec]);

    // Key `k` is written at some early height; later heights are empty.
    let writer = &keys[0];
    let tx = Transaction::new_signed(
        chain.clone(),
        writer.as_ref(),
        0,
        KvApp::payload(b"k", b"v"),
    )
    .unwrap();
    assert!(node.submit(&chain, vec![tx]).unwrap()[0].is_ok());
    let key = KvApp::state_key(b"k");
    wait_for("the write to commit", Duration::from_secs(30), || {
        node.state(&chain, &key).unwrap().is_some()
    });
    let written_at = node.height(&chain).unwrap();
    let target = Height::new(written_at.get() + 3 * RETAIN + 1);
    wait_for("the chain to move on", Duration::from_secs(60), || {
        node.height(&chain).unwrap() >= target
    });

    // The oldest heights are pruned, with a typed error naming the oldest
    // readable height; the latest state still reads, with a valid proof.
    match node.state_proof(&chain, &key, Some(Height::new(1))) {
        Err(NodeError::StatePruned { height, oldest, .. }) => {
            assert_eq!(height, Height::new(1));
            assert!(oldest > Height::new(1), "{oldest}");
        }
        other => panic!("expected StatePruned, got {other:?}"),
    }
    let latest = node.height(&chain).unwrap();
    let p = node.state_proof(&chain, &key, Some(latest)).unwrap();
    assert_eq!(p.value.as_deref(), Some(&b"v"[..]));
    let hf = p.header.suite.hash_function();
    p.proof
        .verify(
            hf,
            &p.header.state_root,
            &govchain_core::smt::KeyHash::of(hf, &key),
            p.value.as_deref(),
        )
        .unwrap();
    let status = node.status();
    assert!(
        status.chains[0].counters.state_prunes >= 2,
        "{:?}",
        status.chains[0].counters
    );
    assert_eq!(status.fatal, None);
    node.stop().unwrap();
}
