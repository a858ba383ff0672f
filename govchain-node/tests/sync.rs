//! Block sync and consensus-log compaction on real nodes: a department
//! node that joins with an empty directory after the others have committed
//! a long chain catches up from their stores by block sync (not by
//! replaying consensus), refuses forged sync responses, and then takes part
//! in consensus; a node whose log was compacted restarts from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{keys, side_spec, start, wait_for};
use govchain_consensus::DecidedBlock;
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::transport::Inbound;
use govchain_node::{
    ChainSpec, EngineKind, Envelope, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind,
};

const STRANGER_SEED: [u8; 32] = [77; 32];

fn spec(chain: &ChainId, keys: &[Arc<SecretKey>]) -> ChainSpec {
    let mut s = side_spec(chain, EngineKind::Bft, keys, Arc::new(KvApp));
    // Blocks come fast when idle, the engine keeps few of them (so only
    // block sync can serve a node far behind), and the log compacts often.
    s.empty_block_interval_ms = 5;
    s.timeouts.propose_ms = 150;
    s.retain_decided_blocks = 4;
    s.log_compaction_bytes = 32 * 1024;
    s.sync.request_timeout_ms = 500;
    // A second peer that is no validator: the forger of this test.
    s.peers
        .push(SecretKey::from_seed(&STRANGER_SEED).public_key());
    s
}

fn submit(node: &NodeHandle, chain: &ChainId, client: &SecretKey, nonces: std::ops::Range<u64>) {
    let txs: Vec<Transaction> = nonces
        .map(|n| {
            Transaction::new_signed(
                chain.clone(),
                client,
                n,
                KvApp::payload(format!("k{n}").as_bytes(), b"v"),
            )
            .unwrap()
        })
        .collect();
    let results = node.submit(chain, txs).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn chain_status(node: &NodeHandle, chain: &ChainId) -> govchain_node::node::ChainStatus {
    node.status()
        .chains
        .into_iter()
        .find(|c| &c.chain == chain)
        .unwrap()
}

#[test]
fn a_new_node_syncs_from_peers_refuses_forgeries_and_then_validates() {
    let chain = ChainId::new("sync").unwrap();
    let keys = keys(4);
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    // Three of four departments (3/4 of the power) run the chain.
    let mut nodes: Vec<Option<NodeHandle>> = (0..3)
        .map(|i| {
            Some(start(
                &net,
                &keys[i],
                dirs[i].path(),
                vec![spec(&chain, &keys)],
            ))
        })
        .collect();
    let client = SecretKey::from_seed(&[99; 32]);
    submit(nodes[0].as_ref().unwrap(), &chain, &client, 0..300);
    wait_for("300 txs and 80 blocks", Duration::from_secs(120), || {
        let n = nodes[1].as_ref().unwrap();
        n.height(&chain).unwrap() >= Height::new(80)
            && n.state(&chain, &KvApp::state_key(b"k299"))
                .unwrap()
                .is_some()
    });
    // The logs were compacted along the way: restart node 0 from its
    // compacted log and directory.
    let compactions = chain_status(nodes[0].as_ref().unwrap(), &chain)
        .counters
        .log_compactions;
    assert!(compactions > 0, "the consensus log was never compacted");
    let stopped = nodes[0].take().unwrap();
    net.unregister(stopped.key());
    stopped.stop().unwrap();
    nodes[0] = Some(start(
        &net,
        &keys[0],
        dirs[0].path(),
        vec![spec(&chain, &keys)],
    ));

    // The fourth department joins with an empty directory. Before it is
    // reachable by the others, a forger (a peer of the chain, but no
    // validator) claims a far height and answers the sync request with an
    // altered block.
    let mut cfg = NodeConfig::new(
        "late",
        keys[3].clone(),
        StorageKind::Durable(dirs[3].path().to_owned()),
    );
    cfg.chains = vec![spec(&chain, &keys)];
    let late = Node::start(cfg, net.transport(keys[3].public_key())).unwrap();
    let stranger = SecretKey::from_seed(&STRANGER_SEED);
    let honest = nodes[1]
        .as_ref()
        .unwrap()
        .block(&chain, Height::new(1))
        .unwrap();
    let mut altered = DecidedBlock {
        block: honest.block.clone(),
        certificate: honest.certificate.clone(),
    };
    altered.block.header.time = govchain_core::types::Timestamp::new(1);
    let forge = |envelope: Envelope| {
        late.inbox()
            .deliver(Inbound {
                from: stranger.public_key(),
                envelope,
            })
            .unwrap();
    };
    forge(Envelope::Status {
        chain: chain.clone(),
        height: Height::new(1_000_000),
    });
    wait_for(
        "a sync request to the forger",
        Duration::from_secs(30),
        || chain_status(&late, &chain).sync_counters.requests_sent > 0,
    );
    forge(Envelope::SyncBlocks {
        chain: chain.clone(),
        tip: Height::new(1_000_000),
        blocks: vec![altered.to_bytes()],
    });
    wait_for(
        "the forged block to be refused",
        Duration::from_secs(30),
        || chain_status(&late, &chain).sync_counters.bad_blocks == 1,
    );
    assert_eq!(late.height(&chain).unwrap(), Height::new(0));
    // The forger is banned: announcing the same height again is ignored
    // and costs the late node no second request.
    let before = chain_status(&late, &chain).sync_counters;
    assert_eq!(before.peer_bans, 1, "{before:?}");
    forge(Envelope::Status {
        chain: chain.clone(),
        height: Height::new(1_000_000),
    });
    wait_for(
        "the banned forger's announcement to be ignored",
        Duration::from_secs(30),
        || {
            chain_status(&late, &chain)
                .sync_counters
                .ignored_announcements
                == 1
        },
    );
    let counters = chain_status(&late, &chain).sync_counters;
    assert_eq!(counters.requests_sent, before.requests_sent, "{counters:?}");
    assert!(
        chain_status(&late, &chain)
            .sync
            .is_none_or(|p| p.target < Height::new(1_000_000)),
        "a banned peer's height is not a sync target"
    );
    net.register(keys[3].public_key(), late.inbox());
    // Requests with extreme bounds from a peer never stop a serving node.
    let server = nodes[1].as_ref().unwrap();
    for (from, max_blocks) in [(0, 0), (1, 0), (u64::MAX, u32::MAX), (3, u32::MAX)] {
        server
            .inbox()
            .deliver(Inbound {
                from: stranger.public_key(),
                envelope: Envelope::SyncRequest {
                    chain: chain.clone(),
                    from: Height::new(from),
                    max_blocks,
                },
            })
            .unwrap();
    }

    let target = nodes[1].as_ref().unwrap().height(&chain).unwrap();
    wait_for("the late node to sync", Duration::from_secs(120), || {
        let s = chain_status(&late, &chain);
        if let Some(p) = s.sync {
            assert!(p.remaining <= p.target.get(), "progress: {p:?}");
        }
        s.height >= target
    });
    let status = chain_status(&late, &chain);
    println!("late node sync counters: {:?}", status.sync_counters);
    for n in nodes.iter().flatten() {
        assert_eq!(n.status().fatal, None, "{}", n.name());
    }
    assert!(
        chain_status(nodes[1].as_ref().unwrap(), &chain)
            .sync_counters
            .requests_served
            >= 4,
        "the extreme requests were answered"
    );
    assert!(
        status.sync_counters.synced_blocks >= target.get() / 2,
        "most blocks came by block sync: {:?}",
        status.sync_counters
    );
    assert_eq!(
        status.sync_counters.bad_blocks, 1,
        "{:?}",
        status.sync_counters
    );
    assert!(
        status
            .sync
            .is_none_or(|p| p.target < Height::new(1_000_000)),
        "the forger's claimed height is forgotten: {:?}",
        status.sync
    );
    for h in 1..=target.get() {
        let h = Height::new(h);
        assert_eq!(
            late.block(&chain, h).unwrap().block.hash(),
            nodes[1]
                .as_ref()
                .unwrap()
                .block(&chain, h)
                .unwrap()
                .block
                .hash(),
            "height {h}"
        );
    }

    // Now the late node must validate: with one founder stopped, the chain
    // goes on only if the late node signs (3 of 4).
    let founder = nodes[2].take().unwrap();
    net.unregister(founder.key());
    founder.stop().unwrap();
    let before = late.height(&chain).unwrap();
    submit(nodes[0].as_ref().unwrap(), &chain, &client, 300..310);
    wait_for(
        "progress with the late node's votes",
        Duration::from_secs(60),
        || {
            late.height(&chain).unwrap().get() >= before.get() + 5
                && late
                    .state(&chain, &KvApp::state_key(b"k309"))
                    .unwrap()
                    .is_some()
        },
    );
    let h = late.height(&chain).unwrap();
    let signed_by_late = (before.get() + 1..=h.get()).any(|x| {
        late.block(&chain, Height::new(x))
            .unwrap()
            .certificate
            .signatures
            .iter()
            .any(|s| s.validator == keys[3].public_key())
    });
    assert!(signed_by_late, "the late node signed a commit certificate");
    late.stop().unwrap();
    for n in nodes.into_iter().flatten() {
        n.stop().unwrap();
    }
}

/// A node far behind a chain that retains only its latest state versions
/// stores the synced blocks below the retention window in coalesced runs:
/// it ends with the same blocks and state as its peers, the skipped state
/// versions read as pruned, it reopens from that store and then validates.
#[test]
fn a_far_behind_node_stores_synced_blocks_in_coalesced_runs() {
    const RETAIN: u64 = 16;
    let chain = ChainId::new("coalesced-sync").unwrap();
    let keys = keys(4);
    let retained = |keys: &[Arc<SecretKey>]| {
        let mut s = spec(&chain, keys);
        s.retain_state_versions = Some(RETAIN);
        // Runs of at most 4 blocks (half the decided blocks the engine
        // keeps: one run is written while the next is collected).
        s.retain_decided_blocks = 8;
        s
    };
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let net = InProcessNetwork::new();
    let mut nodes: Vec<Option<NodeHandle>> = (0..3)
        .map(|i| Some(start(&net, &keys[i], dirs[i].path(), vec![retained(&keys)])))
        .collect();
    let client = SecretKey::from_seed(&[98; 32]);
    submit(nodes[0].as_ref().unwrap(), &chain, &client, 0..200);
    wait_for("200 txs and 120 blocks", Duration::from_secs(120), || {
        let n = nodes[1].as_ref().unwrap();
        n.height(&chain).unwrap() >= Height::new(120)
            && n.state(&chain, &KvApp::state_key(b"k199"))
                .unwrap()
                .is_some()
    });

    let late = start(&net, &keys[3], dirs[3].path(), vec![retained(&keys)]);
    let target = nodes[1].as_ref().unwrap().height(&chain).unwrap();
    // The height counts blocks applied; a coalesced run reaches the store
    // a little later (at the latest when sync pauses or nears the tip).
    wait_for(
        "the late node to sync and store",
        Duration::from_secs(120),
        || late.height(&chain).unwrap() >= target && late.block(&chain, target).is_ok(),
    );
    let status = chain_status(&late, &chain);
    println!(
        "late node: {:?}, {:?}",
        status.counters, status.sync_counters
    );
    assert_eq!(late.status().fatal, None);
    assert!(
        status.counters.coalesced_blocks >= target.get() / 2,
        "most synced blocks were coalesced: {:?}",
        status.counters
    );
    assert!(
        status.counters.coalesced_runs >= status.counters.coalesced_blocks / 4,
        "runs are at most 4 blocks: {:?}",
        status.counters
    );
    let server = nodes[1].as_ref().unwrap();
    for h in 1..=target.get() {
        let h = Height::new(h);
        assert_eq!(
            late.block(&chain, h).unwrap().block.hash(),
            server.block(&chain, h).unwrap().block.hash(),
            "height {h}"
        );
    }
    for n in 0..200 {
        let key = KvApp::state_key(format!("k{n}").as_bytes());
        assert_eq!(
            late.state(&chain, &key).unwrap().as_deref(),
            Some(&b"v"[..]),
            "k{n}"
        );
    }
    // A version inside a stored run was never written: pruned.
    assert!(matches!(
        late.state_proof(&chain, &KvApp::state_key(b"k0"), Some(Height::new(2))),
        Err(govchain_node::NodeError::StatePruned { .. })
    ));

    // The late node reopens from its store and must then validate: with
    // one founder stopped, the chain goes on only if it signs (3 of 4).
    net.unregister(late.key());
    late.stop().unwrap();
    let late = start(&net, &keys[3], dirs[3].path(), vec![retained(&keys)]);
    let founder = nodes[2].take().unwrap();
    net.unregister(founder.key());
    founder.stop().unwrap();
    submit(nodes[0].as_ref().unwrap(), &chain, &client, 200..210);
    wait_for(
        "progress with the late node's votes",
        Duration::from_secs(60),
        || {
            late.state(&chain, &KvApp::state_key(b"k209"))
                .unwrap()
                .is_some()
        },
    );
    assert_eq!(late.status().fatal, None);
    late.stop().unwrap();
    for n in nodes.into_iter().flatten() {
        n.stop().unwrap();
    }
}
