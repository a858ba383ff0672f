//! A validator key with an expiry, on four in-process nodes: its node warns
//! ahead of time (status, warning, blocks left), and when it expires the
//! chain goes on with the other three, whose certificates no longer count
//! it (quorum stays over the whole set: 3 of 4 is still more than 2/3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{keys, set_of, side_spec, start, wait_for};
use govchain_core::crypto::Signer;
use govchain_core::testkit::KvApp;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::KeyWindow;
use govchain_node::{EngineKind, InProcessNetwork};

const EXPIRY: u64 = 8;

#[test]
fn an_expiring_validator_key_is_reported_and_the_chain_goes_on() {
    let keys = keys(4);
    let chain = ChainId::new("hz-expiry").unwrap();
    let expiring = keys[0].public_key();
    let window = KeyWindow::expiring_at(Height::new(EXPIRY));
    let set = set_of(&keys)
        .with_key_windows([(expiring.clone(), window)])
        .unwrap();
    let net = InProcessNetwork::new();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes: Vec<_> = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| {
            let mut spec = side_spec(&chain, EngineKind::Bft, &keys, Arc::new(KvApp));
            spec.validators = set.clone();
            start(&net, k, d.path(), vec![spec])
        })
        .collect();
    let status = |i: usize| nodes[i].status();

    // Ahead of time: the expiring node reports its window and the blocks
    // left, and warns once; the others have nothing to report.
    wait_for("a first block", Duration::from_secs(30), || {
        status(0).chains[0].height.get() >= 1
    });
    let early = status(0);
    let c = &early.chains[0];
    assert_eq!(c.key_window, Some(window));
    // Counted from the next height, in the same snapshot as the height.
    assert_eq!(
        c.key_blocks_left,
        Some(EXPIRY.saturating_sub(c.height.get() + 1)),
        "{c:?}"
    );
    assert_eq!(
        early
            .warnings
            .iter()
            .filter(|w| w.contains("expires at height 8"))
            .count(),
        1,
        "{:?}",
        early.warnings
    );
    for i in 1..4 {
        assert_eq!(status(i).chains[0].key_window, None);
        assert_eq!(status(i).chains[0].key_blocks_left, None);
    }

    // Past the expiry the chain goes on, and the key no longer counts.
    let target = Height::new(EXPIRY + 6);
    wait_for("the chain past the expiry", Duration::from_secs(60), || {
        (0..4).all(|i| status(i).chains[0].height >= target)
    });
    let late = status(0);
    assert_eq!(late.chains[0].key_blocks_left, Some(0));
    assert_eq!(
        late.warnings
            .iter()
            .filter(|w| w.contains("expires at height 8"))
            .count(),
        1,
        "warned once: {:?}",
        late.warnings
    );
    let mut counted_before = false;
    for h in 1..=target.get() {
        let stored = nodes[1].block(&chain, Height::new(h)).unwrap();
        let signed = stored
            .certificate
            .signatures
            .iter()
            .any(|s| s.validator == expiring);
        let proposed = stored.block.header.proposer == expiring;
        if h < EXPIRY {
            counted_before |= signed || proposed;
        } else {
            assert!(!signed, "height {h}: the expired key counted");
            assert!(!proposed, "height {h}: the expired key proposed");
        }
        assert_eq!(
            stored.block.hash(),
            nodes[0].block(&chain, Height::new(h)).unwrap().block.hash(),
            "height {h}"
        );
    }
    assert!(counted_before, "the key took part before it expired");
    for n in nodes {
        assert_eq!(n.status().fatal, None);
        n.stop().unwrap();
    }
}
