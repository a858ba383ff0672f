//! The `network` area: department nodes as separate OS processes.
//!
//! - **4 processes on loopback.** `govchain_node::config::write_network`
//!   writes a 4-department network (main chain plus one Tendermint side
//!   chain running the key-value app); each department's node runs in its
//!   own process (this binary re-executed as `perf-report __node-run
//!   --config FILE`, which runs exactly what `govchain run` runs: durable
//!   storage, the Noise/TCP transport, the HTTP API). The same pre-signed
//!   250-byte transactions as the `node` area's end-to-end run (1,000
//!   senders) are submitted in batches of 500 through the HTTP API's
//!   `tx-batches` route, round-robin over the nodes, retrying what a full
//!   mempool refuses. Committed tx/s (first submission to the last commit,
//!   read from the first node's API) is reported against the in-process
//!   end-to-end rate of the `node` area measured in the same run: the cost
//!   of real sockets, encryption, encoding and process boundaries. The
//!   processes also run the (idle) main chain.
//! - **Catch-up sync.** Three of four validators (in this process, durable
//!   storage) commit `GOVCHAIN_SYNC_BLOCKS` (default 100) full blocks of
//!   1,000 transactions of 250 bytes; then the fourth starts from an empty
//!   directory and block-syncs to the tip (certificates verified, not
//!   transaction signatures; every block executed and stored). Blocks/s and
//!   tx/s of the catch-up against the live commit rate — the in-process
//!   end-to-end rate of 4 validators measured in the same run; the blocks/s
//!   row's baseline is that rate expressed in 1,000-transaction blocks
//!   (live tx/s ÷ 1,000), so both rows compare the same work.
//!   The figure is 10,000 blocks; the default keeps the report to a
//!   few minutes on 2 cores (sync time is per block, so the rate does not
//!   depend on the count; set the variable to 10000 for the full run).
//!   `GOVCHAIN_SYNC_SOURCE_DIR=DIR` keeps the three validators' data
//!   directories in `DIR`, and a later run with the same block count
//!   restarts them on that chain instead of producing it again.
//!
//! `GOVCHAIN_PERF_ONLY` selects sections: `tcp`, `sync` (comma-separated;
//! the in-process baseline always runs).

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

fn committed_txs(api: &str) -> Option<u64> {
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
    r.json().ok()?["committed_txs"].as_u64()
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
    let mut queue: std::collections::VecDeque<Vec<&govchain_core::tx::Transaction>> =
        txs.chunks(500).map(|c| c.iter().collect()).collect();
    let start = Instant::now();
    let mut turn = 0usize;
    let mut last_progress = start;
    let mut done;
    loop {
        if let Some(batch) = queue.pop_front() {
            let body = serde_json::json!({
                "txs": batch.iter().map(|t| hex::encode(t.to_bytes())).collect::<Vec<_>>()
            })
            .to_string();
            turn += 1;
            let api = &apis[turn % apis.len()];
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
            let refused: Vec<&govchain_core::tx::Transaction> = batch
                .iter()
                .zip(results["results"].as_array().into_iter().flatten())
                .filter(|(_, v)| v.get("error").is_some())
                .map(|(t, _)| *t)
                .collect();
            if let Some(e) = results["results"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|v| v["error"]["code"].as_str().filter(|c| *c != "mempool_full"))
            {
                return Err(anyhow!("a transaction was refused: {e}"));
            }
            if !refused.is_empty() {
                // A full mempool: try the rest later, elsewhere.
                queue.push_back(refused);
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        done = committed_txs(&apis[0]).unwrap_or(0);
        if done as usize >= txs.len() {
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(5) {
            last_progress = Instant::now();
            progress(&format!("network: {done} of {} committed", txs.len()));
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(anyhow!(
                "only {done} of {} committed after 600 s",
                txs.len()
            ));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(processes);
    Ok(done as f64 / elapsed)
}

/// Catch-up sync of `blocks` blocks of 1,000 transactions: (blocks/s,
/// tx/s) of the late node.
/// The catch-up benchmark. With `source`, the three validators' data
/// directories live there and are kept: a later run that finds a chain of
/// at least `blocks` blocks already produced (a `produced-BLOCKS` marker)
/// restarts the validators on it instead of producing it again, so a
/// 10,000-block chain (about half an hour of live consensus on 2 cores) is
/// produced once and synced as often as needed.
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
        s.mempool.max_txs = 40_000;
        // The absent fourth validator's rounds time out sooner (this only
        // shortens building the chain to sync).
        s.timeouts.propose_ms = 300;
        s
    };
    let scratch = tempfile::tempdir()?;
    let root = source.unwrap_or(scratch.path());
    let dirs: Vec<std::path::PathBuf> = (0..3)
        .map(|i| root.join(format!("dept-{i}")))
        .chain(std::iter::once(scratch.path().join("late")))
        .collect();
    let marker = root.join(format!("produced-{blocks}"));
    let produce = !marker.exists();
    let net = InProcessNetwork::new();
    let start_node = |i: usize| -> anyhow::Result<govchain_node::NodeHandle> {
        let mut cfg = NodeConfig::new(
            format!("dept-{i}"),
            keys[i].clone(),
            StorageKind::Durable(dirs[i].clone()),
        );
        cfg.chains = vec![spec()];
        let node = Node::start(cfg, net.transport(keys[i].public_key()))?;
        net.register(keys[i].public_key(), node.inbox());
        Ok(node)
    };
    if produce {
        for dir in &dirs[..3] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("clearing {}", dir.display()))?;
            }
        }
    } else {
        progress(&format!(
            "network: reusing the chain produced in {}",
            root.display()
        ));
    }
    let nodes: Vec<govchain_node::NodeHandle> =
        (0..3).map(start_node).collect::<anyhow::Result<_>>()?;
    if produce {
        produce_chain(&chain, &nodes, blocks)?;
        std::fs::write(&marker, b"")?;
    }
    let tip = nodes[0].height(&chain)?;
    if tip.get() < blocks as u64 {
        return Err(anyhow!("the source chain has {tip} blocks, not {blocks}"));
    }
    progress(&format!(
        "network: the late validator syncs {tip} blocks from an empty directory"
    ));
    let start = Instant::now();
    let late = start_node(3)?;
    let mut last_progress = start;
    while late.height(&chain)? < tip {
        let limit = Duration::from_secs(1_200.max(tip.get() / 4));
        if start.elapsed() > limit {
            return Err(anyhow!("sync did not finish in {} s", limit.as_secs()));
        }
        if last_progress.elapsed() > Duration::from_secs(5) {
            last_progress = Instant::now();
            if let Some(p) = late.status().chains.first().and_then(|c| c.sync) {
                progress(&format!(
                    "network: sync {} remaining, {} blocks/s",
                    p.remaining, p.blocks_per_s
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
        "network: {synced} of {tip} blocks came by block sync"
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
    for n in nodes {
        n.stop()?;
    }
    Ok((tip.get() as f64 / secs, txs_synced as f64 / secs))
}

/// Has the three running validators commit `blocks` full blocks.
fn produce_chain(
    chain: &ChainId,
    nodes: &[govchain_node::NodeHandle],
    blocks: usize,
) -> anyhow::Result<()> {
    let txs = crate::node::workload(chain, 1_000, blocks as u64)?;
    progress(&format!(
        "network: 3 of 4 validators commit {} transactions for the late node to sync",
        txs.len()
    ));
    let events = nodes[0].subscribe(1 << 16);
    let mut pending = txs.chunks(500).enumerate().peekable();
    let mut committed = 0usize;
    let mut last = Instant::now();
    while committed < txs.len() {
        if let Some((i, batch)) = pending.peek() {
            let results = nodes[i % 3].submit(chain, batch.to_vec())?;
            if results.iter().all(Result::is_ok) {
                pending.next();
            } else if results.iter().any(Result::is_ok) {
                return Err(anyhow!("a batch was admitted in part"));
            }
        }
        let wait = if pending.peek().is_some() {
            Duration::ZERO
        } else {
            Duration::from_millis(200)
        };
        while let Ok(e) = events.recv_timeout(wait) {
            committed += e.tx_ids.len();
            last = Instant::now();
            if wait.is_zero() {
                break;
            }
        }
        if last.elapsed() > Duration::from_secs(60) {
            return Err(anyhow!("no commit for 60 s"));
        }
        if pending.peek().is_some() && nodes[0].status().chains[0].mempool_txs > 20_000 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
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
    progress("network: in-process baseline (the node area's end-to-end run)");
    let in_process = crate::node::end_to_end(total)?.tx_per_s;
    if only("tcp") {
        let tcp = four_processes(total)?;
        Row::new(
            AREA,
            "tcp_4_processes_250B_tx",
            tcp,
            "tx/s",
            "in_process_e2e_n4",
            in_process,
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
