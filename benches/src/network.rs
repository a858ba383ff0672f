//! The `network` area: department nodes as separate OS processes.
//!
//! - **4 processes on loopback.** `govchain_node::config::write_network`
//!   writes a 4-department network (main chain plus one Tendermint side
//!   chain running the key-value app); each department's node runs in its
//!   own process (this binary re-executed as `perf-report __node-run
//!   --config FILE`, which runs exactly what `govchain run` runs: durable
//!   storage, the Noise/TCP transport, the HTTP API). The same pre-signed
//!   250-byte transactions as the `node` area's end-to-end run (1,000
//!   senders) are submitted as that run submits them: one client per node,
//!   each with every fourth sender's transactions in nonce order, in
//!   batches of 500 — here through the HTTP API's `tx-batches` route —
//!   holding back while its node's pool has 2,500 waiting and retrying what
//!   a full pool refuses. (Until 2026-11 a single client submitted
//!   round-robin, one request at a time: its blocks held about 750
//!   transactions against the in-process run's 1,600, so the row measured
//!   the client as much as the nodes.) Committed tx/s (first submission to the last commit,
//!   read from the first node's API) is reported against the in-process
//!   end-to-end rate of the `node` area measured in the same run: the cost
//!   of real sockets, encryption, encoding and process boundaries. The
//!   processes also run the (idle) main chain.
//! - **Catch-up sync.** A chain of `GOVCHAIN_SYNC_BLOCKS` (default 100;
//!   the full run is `GOVCHAIN_SYNC_BLOCKS=10000`) full blocks of
//!   1,000 250-byte transactions — the `node` area's workload, round
//!   `h - 1` in block `h` — is *built* rather than produced by live
//!   consensus: one executor runs every block with the chain's application
//!   on a node-layout durable store, and three of the four validators'
//!   keys certify each block as their precommits would (`build_chain`).
//!   It is the chain live validators would have stored (executed blocks,
//!   correct state and history roots, quorum certificates); building it
//!   skips only what makes live production slow (at the live rate, 10,000
//!   blocks took about 20 minutes before the catch-up even started). A
//!   non-validator node then serves that store (block sync asks any peer
//!   with a higher height, so one server suffices), and the fourth
//!   validator starts from an empty directory and block-syncs to the tip
//!   through the production path: certificates verified against the set,
//!   transaction signatures not re-verified, every block executed, its
//!   state root checked and stored. (Since 2026-11 the blocks more than
//!   the retained 256 versions below the tip are stored in coalesced runs,
//!   `SyncConfig::coalesce`: one store write per run of synced blocks,
//!   without the state versions the node would prune anyway. Earlier
//!   reports stored every version and pruned.) Blocks/s and tx/s of the catch-up are
//!   reported against the live commit rate — the in-process end-to-end
//!   rate of 4 validators measured in the same run; the blocks/s row's
//!   baseline is that rate expressed in 1,000-transaction blocks (live
//!   tx/s ÷ 1,000), so both rows compare the same work.
//!
//!   Both nodes run as an operator of a long chain would: state retention
//!   (the latest 256 state versions) and the node's log compaction (a
//!   frame's state batch is dropped from the block log once the index is
//!   durable past it). Without them a 1,000-transaction block costs about
//!   1.4 MB of index and 1–2.4 MB of log per node (the frame grows with
//!   the state); with them the log holds
//!   about the blocks (≈0.25 MB each) and the index the live state plus the
//!   retained versions. The workload writes 1,000 new keys every tenth
//!   block, so at 10,000 blocks the state holds about a million keys
//!   (the live baseline's run holds 3,000): the late blocks are dearer to
//!   sync than the baseline's, never cheaper.
//!
//!   `GOVCHAIN_SYNC_SOURCE_DIR=DIR` puts the built chain and the late
//!   node's scratch directory in `DIR` (on the disk it names) and keeps the
//!   chain: a later run with the same block count serves it again instead
//!   of building it. Progress lines report build and sync rates and the
//!   disk used by each node.
//!
//! `GOVCHAIN_PERF_ONLY` selects sections: `tcp`, `sync` (comma-separated;
//! the in-process baseline always runs). Like the `node` area's, the
//! in-process run is repeated (`GOVCHAIN_NODE_ROUNDS`, default 3): each
//! round runs it and then the 4-process run, the TCP row is the round with
//! the median ratio, and the sync rows' baseline is the median in-process
//! rate.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use govchain_core::codec::Encode;
use govchain_core::types::ChainId;
use govchain_node::api::client::request;
use govchain_node::config::{write_network, NetworkPlan, PlannedSideChain};
use govchain_node::EngineKind;

use crate::{progress, Row};

const AREA: &str = "network";
const CHAIN: &str = "bench";

/// The hidden sub-command under which this binary runs one node.
pub const NODE_RUN_ARG: &str = "__node-run";

/// Runs one department node (the child side of the 4-process benchmark)
/// until it is killed; the exit code reports a start-up failure.
pub fn node_run(config: &Path) -> std::process::ExitCode {
    govchain_node::cli::init_logging(Some("warn"));
    match govchain_node::cli::execute(govchain_node::cli::Command::Run {
        config: config.to_owned(),
    }) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Kills the node processes when dropped, even on an error path.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_base_port() -> anyhow::Result<u16> {
    for attempt in 0..200u32 {
        let base = 21_000 + ((std::process::id() * 17 + attempt * 113) % 30_000) as u16;
        if (0..8).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    Err(anyhow!("no 8 free loopback ports"))
}

/// The benchmark chain's committed transactions and height at `api`.
fn chain_progress(api: &str) -> Option<(u64, u64)> {
    let r = request(
        api,
        "GET",
        &format!("/v1/chains/{CHAIN}"),
        None,
        Duration::from_secs(5),
    )
    .ok()?;
    if r.status != 200 {
        return None;
    }
    let status = r.json().ok()?;
    Some((
        status["committed_txs"].as_u64()?,
        status["height"].as_u64()?,
    ))
}

fn committed_txs(api: &str) -> Option<u64> {
    chain_progress(api).map(|(txs, _)| txs)
}

/// Committed tx/s of 4 node processes on loopback.
fn four_processes(total: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let base = free_base_port()?;
    let plan = NetworkPlan {
        network_id: "perf-network".into(),
        departments: 4,
        main_chain: ChainId::new("main")?,
        side_chains: vec![PlannedSideChain {
            id: ChainId::new(CHAIN)?,
            engine: EngineKind::Bft,
            suite: None,
        }],
        anchor_every: u64::MAX,
        host: "127.0.0.1".parse()?,
        base_port: base,
        genesis_time_ms: 0,
        suite: Default::default(),
    };
    let written = write_network(&plan, dir.path()).context("writing the network")?;
    let chain = ChainId::new(CHAIN)?;
    let senders = 1_000;
    let per_sender = (total / senders).max(1) as u64;
    progress(&format!(
        "network: signing {} transactions of 250 bytes",
        senders as u64 * per_sender
    ));
    let txs = crate::node::workload(&chain, senders, per_sender)?;
    let exe = std::env::current_exe()?;
    let mut processes = Processes(Vec::new());
    for d in &written {
        let log = std::fs::File::create(d.dir.join("node.log"))?;
        processes.0.push(
            Command::new(&exe)
                .arg(NODE_RUN_ARG)
                .arg(&d.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting a node process")?,
        );
    }
    let apis: Vec<String> = written.iter().map(|d| d.api.to_string()).collect();
    progress("network: waiting for 4 node processes to connect and commit");
    let ready = Instant::now();
    while !apis.iter().all(|a| committed_txs(a).is_some()) {
        if ready.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(written[0].dir.join("node.log")).unwrap_or_default();
            return Err(anyhow!("node APIs not up after 60 s; node 1 log:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    progress("network: 4 processes, TCP + Noise, durable storage: submitting over HTTP");
    let (_, start_height) = chain_progress(&apis[0]).unwrap_or_default();
    // As in the in-process run: client `c` submits the transactions of
    // every fourth sender, starting at sender `c`, in nonce order, to node
    // `c` (the workload is nonce-major: entry `j` is sender `j % senders`).
    let shares: Vec<Vec<&govchain_core::tx::Transaction>> = (0..apis.len())
        .map(|c| {
            txs.iter()
                .enumerate()
                .filter(|(j, _)| (j % senders) % apis.len() == c)
                .map(|(_, tx)| tx)
                .collect()
        })
        .collect();
    let start = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let failed = std::sync::atomic::AtomicBool::new(false);
    // (committed, seconds from the first submission to the last commit)
    let (done, elapsed) = std::thread::scope(|scope| -> anyhow::Result<(u64, f64)> {
        let clients: Vec<_> = apis
            .iter()
            .zip(&shares)
            .map(|(api, share)| {
                let (stop, failed) = (&stop, &failed);
                scope.spawn(move || {
                    let r = submit_over_http(api, share, stop);
                    if r.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                    r
                })
            })
            .collect();
        let mut last_progress = start;
        let outcome = loop {
            let done = committed_txs(&apis[0]).unwrap_or(0);
            if done as usize >= txs.len() {
                break Ok((done, start.elapsed().as_secs_f64()));
            }
            if failed.load(std::sync::atomic::Ordering::SeqCst) {
                // The client's own error is reported when it is joined.
                break Ok((done, start.elapsed().as_secs_f64()));
            }
            if last_progress.elapsed() > Duration::from_secs(5) {
                last_progress = Instant::now();
                progress(&format!("network: {done} of {} committed", txs.len()));
            }
            if start.elapsed() > Duration::from_secs(600) {
                break Err(anyhow!(
                    "only {done} of {} committed after 600 s",
                    txs.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            c.join().map_err(|_| anyhow!("a client panicked"))??;
        }
        outcome
    })?;
    if let Some((committed, height)) = chain_progress(&apis[0]) {
        let blocks = height.saturating_sub(start_height).max(1);
        progress(&format!(
            "network: {committed} transactions in {blocks} blocks ({:.0} per block)",
            committed as f64 / blocks as f64
        ));
    }
    drop(processes);
    Ok(done as f64 / elapsed)
}

/// Transactions waiting in a node's pool above which its HTTP client
/// pauses (as the in-process run's clients do).
const BACKLOG_PER_NODE: u64 = 2_500;

/// One client of the 4-process run: submits `share` to the node at `api`
/// in batches of 500 through `tx-batches`, holding back while the node's
/// pool has a few blocks' worth waiting and retrying what a full pool
/// refuses, until done or `stop`.
fn submit_over_http(
    api: &str,
    share: &[&govchain_core::tx::Transaction],
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
    let backlog = || {
        request(
            api,
            "GET",
            &format!("/v1/chains/{CHAIN}"),
            None,
            Duration::from_secs(5),
        )
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json().ok())
        .and_then(|v| v["mempool_txs"].as_u64())
        .unwrap_or(0)
    };
    for chunk in share.chunks(500) {
        let mut batch: Vec<&govchain_core::tx::Transaction> = chunk.to_vec();
        while !batch.is_empty() {
            while backlog() >= BACKLOG_PER_NODE {
                if stopped() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let body = serde_json::json!({
                "txs": batch.iter().map(|t| hex::encode(t.to_bytes())).collect::<Vec<_>>()
            })
            .to_string();
            let r = request(
                api,
                "POST",
                &format!("/v1/chains/{CHAIN}/tx-batches"),
                Some(body.as_bytes()),
                Duration::from_secs(30),
            )
            .map_err(|e| anyhow!("submitting to {api}: {e}"))?;
            if r.status != 200 {
                return Err(anyhow!("batch refused by {api}: {} {}", r.status, r.text()));
            }
            let results = r.json()?;
            let verdicts: Vec<&serde_json::Value> = results["results"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            if verdicts.len() != batch.len() {
                return Err(anyhow!(
                    "{api} answered {} verdicts for {} transactions",
                    verdicts.len(),
                    batch.len()
                ));
            }
            if let Some(e) = verdicts
                .iter()
                .find_map(|v| v["error"]["code"].as_str().filter(|c| *c != "mempool_full"))
            {
                return Err(anyhow!("a transaction was refused by {api}: {e}"));
            }
            // A full pool: the refused ones again, after a commit made room.
            batch = batch
                .iter()
                .zip(&verdicts)
                .filter(|(_, v)| v.get("error").is_some())
                .map(|(t, _)| *t)
                .collect();
            if !batch.is_empty() {
                if stopped() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

/// State versions the source and the late node keep
/// (`ChainSpec::retain_state_versions`, what an operator of a long-lived
/// chain runs: without it the index keeps every superseded tree page, about
/// 1.4 MB per 1,000-transaction block).
const SYNC_RETAIN_STATE: u64 = 256;

/// Catch-up sync of `blocks` blocks of 1,000 transactions: (blocks/s,
/// tx/s) of the late node. With `source`, the source chain's directory
/// lives there and is kept: a later run that finds a chain of `blocks`
/// blocks already built (a `built-BLOCKS` marker) serves it again instead
/// of building it.
fn catch_up(blocks: usize, source: Option<&Path>) -> anyhow::Result<(f64, f64)> {
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::testkit::KvApp;
    use govchain_core::validator::ValidatorSet;
    use govchain_node::{ChainRole, ChainSpec, InProcessNetwork, Node, NodeConfig, StorageKind};
    use std::sync::Arc;

    let chain = ChainId::new("sync")?;
    let keys: Vec<Arc<SecretKey>> = (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect();
    // The node serving the chain: not a validator, so it only serves.
    let server_key = Arc::new(SecretKey::from_seed(&[5; 32]));
    let set = ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key()))?;
    let spec = || {
        let mut s = ChainSpec::new(
            chain.clone(),
            ChainRole::Side {
                anchor_every: u64::MAX,
            },
            EngineKind::Bft,
            set.clone(),
            Arc::new(KvApp),
        );
        s.limits.max_txs = 1_000;
        s.peers.push(server_key.public_key());
        s.retain_state_versions = Some(SYNC_RETAIN_STATE);
        s
    };
    if let Some(dir) = source {
        std::fs::create_dir_all(dir)?;
    }
    // Under the source directory if given (same disk as the data it holds).
    let scratch = tempfile::tempdir_in(source.unwrap_or(&std::env::temp_dir()))?;
    let root = source.unwrap_or(scratch.path());
    let source_dir = root.join("source");
    let marker = root.join(format!("built-{blocks}"));
    if !marker.exists() {
        if source_dir.exists() {
            std::fs::remove_dir_all(&source_dir)
                .with_context(|| format!("clearing {}", source_dir.display()))?;
        }
        // Three of the four validators certify, as when the fourth is down.
        build_chain(&source_dir, &spec(), &keys[..3], blocks as u64)?;
        std::fs::write(&marker, b"")?;
    } else {
        progress(&format!(
            "network: reusing the chain built in {}",
            source_dir.display()
        ));
    }
    let net = InProcessNetwork::new();
    let start_node = |key: &Arc<SecretKey>,
                      dir: &Path|
     -> anyhow::Result<govchain_node::NodeHandle> {
        let mut cfg = NodeConfig::new("sync", key.clone(), StorageKind::Durable(dir.to_owned()));
        cfg.chains = vec![spec()];
        let node = Node::start(cfg, net.transport(key.public_key()))?;
        net.register(key.public_key(), node.inbox());
        Ok(node)
    };
    progress("network: starting the serving node on the built chain");
    let server = start_node(&server_key, &source_dir)?;
    let tip = server.height(&chain)?;
    if tip.get() < blocks as u64 {
        return Err(anyhow!("the source chain has {tip} blocks, not {blocks}"));
    }
    progress(&format!(
        "network: the late validator syncs {tip} blocks from an empty directory"
    ));
    let late_dir = scratch.path().join("late");
    let start = Instant::now();
    let late = start_node(&keys[3], &late_dir)?;
    let mut last_progress = start;
    while late.height(&chain)? < tip {
        let limit = Duration::from_secs(1_200.max(tip.get() / 4));
        if start.elapsed() > limit {
            return Err(anyhow!("sync did not finish in {} s", limit.as_secs()));
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            if let Some(p) = late.status().chains.first().and_then(|c| c.sync) {
                progress(&format!(
                    "network: sync {} remaining, {} blocks/s; disk: server {}, late node {}",
                    p.remaining,
                    p.blocks_per_s,
                    mib(dir_bytes(&source_dir)),
                    mib(dir_bytes(&late_dir)),
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = start.elapsed().as_secs_f64();
    let synced = late
        .status()
        .chains
        .first()
        .map_or(0, |c| c.sync_counters.synced_blocks);
    progress(&format!(
        "network: {synced} of {tip} blocks came by block sync in {secs:.1} s; disk: server {}, late node {}",
        mib(dir_bytes(&source_dir)),
        mib(dir_bytes(&late_dir)),
    ));
    let mut txs_synced = 0usize;
    for h in 1..=tip.get() {
        txs_synced += late
            .block(&chain, govchain_core::types::Height::new(h))?
            .block
            .transactions
            .len();
    }
    late.stop()?;
    server.stop()?;
    Ok((tip.get() as f64 / secs, txs_synced as f64 / secs))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Bytes of the files under `dir` (0 if it is missing).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Builds the chain to sync without running consensus: one executor runs
/// every block of the workload (the `node` area's transactions, round `h -
/// 1` in block `h`) with the chain's application on a durable store laid
/// out as a node's (`dir/<chain>`, log compaction and state retention as
/// the node runs them), and `signers` — a quorum of the validators —
/// certify each block exactly as their precommits would (round 0). The
/// result is the chain live validators would have stored: executed blocks
/// with correct state and history roots, certificates the syncing node
/// verifies against the validator set. What it skips is only what makes
/// live consensus slow (proposal, votes, and every validator re-verifying
/// signatures and re-executing).
fn build_chain(
    dir: &Path,
    spec: &govchain_node::ChainSpec,
    signers: &[std::sync::Arc<govchain_core::crypto::SecretKey>],
    blocks: u64,
) -> anyhow::Result<()> {
    use govchain_core::app::{BlockContext, StateOverlay, TreeStateView};
    use govchain_core::block::{tx_root_of, Block, BlockHeader};
    use govchain_core::cert::{canonical_signatures, certify};
    use govchain_core::crypto::Signer;
    use govchain_core::hash::Hash;
    use govchain_core::merkle::HistoryTree;
    use govchain_core::smt::{KeyHash, SparseMerkleTree};
    use govchain_core::types::{Height, Round, Timestamp};
    use govchain_storage::{BlockStore, DurableConfig, DurableStore, StateStore};

    let chain = spec.chain_id.clone();
    let store_dir = dir.join(chain.as_str());
    std::fs::create_dir_all(&store_dir)?;
    let mut config = DurableConfig::default();
    config.compact_log = true;
    let store = DurableStore::open(&store_dir, chain.clone(), config)?;
    let suite = spec.suite();
    let hf = suite.hash_function();
    let (_, genesis) = SparseMerkleTree::new(&store, hf).apply_batch(None, 0, &[])?;
    store.commit_state(genesis)?;
    let senders = crate::node::sender_keys(1_000);
    let signers: Vec<&dyn Signer> = signers.iter().map(|k| k.as_ref() as &dyn Signer).collect();
    let set = &spec.validators;
    let retain = spec.retain_state_versions.unwrap_or(u64::MAX);
    let mut history = HistoryTree::new(hf);
    let mut parent = Hash::ZERO;
    let start = Instant::now();
    let mut last_progress = start;
    progress(&format!(
        "network: building {blocks} certified blocks of 1,000 transactions to sync"
    ));
    for h in 1..=blocks {
        let txs = crate::node::workload_round(&chain, &senders, h - 1)?;
        let height = Height::new(h);
        let proposer = set.validators()[(h as usize) % set.validators().len()]
            .public_key
            .clone();
        let ctx = BlockContext {
            chain_id: chain.clone(),
            height,
            time: Timestamp::new(spec.genesis_time.get() + h),
            proposer: proposer.clone(),
            suite,
        };
        let view = TreeStateView::new(&store, hf, Some(h - 1));
        let mut overlay = StateOverlay::new(&view);
        let receipts = spec.app.execute_block(&ctx, &mut overlay, &txs)?;
        if let Some(r) = receipts.iter().find(|r| r.code != 0) {
            return Err(anyhow!("block {h}: a transaction failed: {r:?}"));
        }
        let updates: Vec<(KeyHash, Option<Vec<u8>>)> = overlay
            .into_writes()
            .into_iter()
            .map(|(k, v)| (KeyHash::of(hf, &k), v))
            .collect();
        let (state_root, batch) =
            SparseMerkleTree::new(&store, hf).apply_batch(Some(h - 1), h, &updates)?;
        let header = BlockHeader {
            suite,
            chain_id: chain.clone(),
            height,
            time: ctx.time,
            parent_hash: parent,
            tx_root: tx_root_of(suite, &txs),
            tx_count: txs.len() as u32,
            state_root,
            history_root: history.root(),
            validator_set_hash: set.hash(),
            next_validator_set_hash: set.hash(),
            proposer,
        };
        parent = header.hash();
        let mut certificate = certify(&chain, height, Round::new(0), parent, &signers);
        certificate.signatures = canonical_signatures(certificate.signatures, set, height).0;
        let block = Block {
            header,
            transactions: txs,
        };
        store.append(&block, &certificate, batch)?;
        history.append(&parent);
        // As the node prunes (`ChainRunner::maybe_prune_state`).
        if h.is_multiple_of(govchain_node::chain::STATE_PRUNE_EVERY) && h >= retain {
            store.prune_state_below(h + 1 - retain)?;
        }
        if last_progress.elapsed() > Duration::from_secs(10) {
            last_progress = Instant::now();
            progress(&format!(
                "network: built {h} of {blocks} blocks ({:.1} blocks/s), {} on disk",
                h as f64 / start.elapsed().as_secs_f64(),
                mib(dir_bytes(dir))
            ));
        }
    }
    store.close()?;
    Ok(())
}

/// Prints the area's rows.
pub fn report() {
    if let Err(e) = try_report() {
        progress(&format!("network: FAILED: {e:#}"));
        std::process::exit(1);
    }
}

fn only(section: &str) -> bool {
    std::env::var("GOVCHAIN_PERF_ONLY").map_or(true, |v| v.split(',').any(|s| s.trim() == section))
}

fn try_report() -> anyhow::Result<()> {
    let total: usize = std::env::var("GOVCHAIN_NODE_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    // Rounds: the in-process run, then (if selected) the 4-process run,
    // each pair compared; the pair with the median ratio gives the TCP row
    // and the median in-process rate the sync rows' baseline (one run of a
    // few seconds moves by ±10% with the machine's load).
    let rounds = crate::node::e2e_rounds();
    let mut in_process_runs = Vec::with_capacity(rounds);
    let mut pairs: Vec<(f64, f64)> = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        progress(&format!(
            "network: in-process baseline (the node area's end-to-end run), round {round}/{rounds}"
        ));
        let in_process = crate::node::end_to_end(total)?.tx_per_s;
        in_process_runs.push(in_process);
        if only("tcp") {
            let tcp = four_processes(total)?;
            progress(&format!(
                "network: round {round}: 4 processes {tcp:.0} tx/s, in-process {in_process:.0} tx/s"
            ));
            pairs.push((tcp, in_process));
        }
    }
    in_process_runs.sort_by(f64::total_cmp);
    let in_process = in_process_runs
        .get(in_process_runs.len() / 2)
        .copied()
        .ok_or_else(|| anyhow!("no in-process run"))?;
    pairs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    if let Some(&(tcp, baseline)) = pairs.get(pairs.len() / 2) {
        Row::new(
            AREA,
            "tcp_4_processes_250B_tx",
            tcp,
            "tx/s",
            "in_process_e2e_n4",
            baseline,
        )
        .emit();
    }
    if only("sync") {
        let blocks: usize = std::env::var("GOVCHAIN_SYNC_BLOCKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let source = std::env::var_os("GOVCHAIN_SYNC_SOURCE_DIR").map(std::path::PathBuf::from);
        let (blocks_per_s, tx_per_s) = catch_up(blocks, source.as_deref())?;
        Row::new(
            AREA,
            "catch_up_sync_1000tx_blocks",
            blocks_per_s,
            "blocks/s",
            "live_commit_e2e_n4",
            in_process / 1_000.0,
        )
        .emit();
        Row::new(
            AREA,
            "catch_up_sync_1000tx_txs",
            tx_per_s,
            "tx/s",
            "live_commit_e2e_n4",
            in_process,
        )
        .emit();
    }
    Ok(())
}
