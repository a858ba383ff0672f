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
        }],
        anchor_every: u64::MAX,
        host: "127.0.0.1".parse()?,
        base_port: base,
        genesis_time_ms: 0,
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

/// Prints the area's rows.
pub fn report() {
    if let Err(e) = try_report() {
        progress(&format!("network: FAILED: {e:#}"));
        std::process::exit(1);
    }
}

fn try_report() -> anyhow::Result<()> {
    let total: usize = std::env::var("GOVCHAIN_NODE_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    progress("network: in-process baseline (the node area's end-to-end run)");
    let in_process = crate::node::end_to_end(total)?.tx_per_s;
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
    Ok(())
}
