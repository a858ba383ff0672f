//! The `node` area: the reference node end to end, and cross-chain proofs.
//!
//! - **End to end.** Four validator nodes in this process
//!   (`govchain_node::InProcessNetwork`), each on the durable default store
//!   in its own temporary directory, run one Tendermint chain. Pre-signed
//!   250-byte transactions from 1,000 senders are submitted in batches of
//!   500 by four concurrent clients, one per node, each sending its own
//!   quarter of the senders' transactions in nonce order, as fast as its
//!   node admits them while fewer than 2,500 transactions wait in that
//!   node's pool (so the chain stays busy without an ever-growing queue);
//!   every node verifies every signature once (on admission or when
//!   judging a proposal). Committed tx/s is reported against the signature
//!   bound *B/4* (`B` = the machine's parallel batch-verify rate, measured
//!   in the same run): four nodes sharing this machine each verify every
//!   transaction. CPU time per committed transaction (the whole process)
//!   is reported against the core time of its four verifications — the
//!   work efficiency, whatever else the machine runs. Commit latency
//!   (submission to commit at the first node) is reported at p50 and p99
//!   against the time the four nodes need to verify one average block's
//!   signatures, and peak RSS against the RSS before the nodes started.
//!   The run is repeated (`GOVCHAIN_NODE_ROUNDS`, default 3), each round
//!   between two measurements of `B` and against their mean; the rows are
//!   those of the round with the median throughput ratio (peak RSS: the
//!   highest of any round, against the RSS before the first round).
//! - **Cross-chain proof.** A side-chain transaction proven through an
//!   anchored checkpoint to a main-chain header: verification time against
//!   one light-client header verification, and encoded size against the
//!   encoded main header plus certificate it carries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::ValidatorSet;
use govchain_node::crosschain::CrossChainProofBuilder;
use govchain_node::governance::{
    AnchorRecord, DepartmentId, EngineKind, GenesisDepartment, GovernanceApp, GovernanceGenesis,
    GovernanceOp, SideChainSpec,
};
use govchain_node::{ChainRole, ChainSpec, InProcessNetwork, Node, NodeConfig, StorageKind};

use crate::{progress, Row};

const AREA: &str = "node";

fn set_of(keys: &[Arc<SecretKey>]) -> anyhow::Result<ValidatorSet> {
    Ok(ValidatorSet::with_equal_power(
        keys.iter().map(|k| k.public_key()),
    )?)
}

/// Peak and current resident set size of this process, in bytes.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb * 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// 250-byte signed KvApp transactions: `per_sender` from each of `senders`.
pub(crate) fn workload(
    chain: &ChainId,
    senders: usize,
    per_sender: u64,
) -> anyhow::Result<Vec<Transaction>> {
    let keys = sender_keys(senders);
    let mut txs = Vec::with_capacity(senders * per_sender as usize);
    for nonce in 0..per_sender {
        txs.extend(workload_round(chain, &keys, nonce)?);
    }
    Ok(txs)
}

/// The workload's sender keys.
pub(crate) fn sender_keys(senders: usize) -> Vec<SecretKey> {
    (0..senders)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            SecretKey::from_seed(&seed)
        })
        .collect()
}

/// Round `nonce` of the workload: one 250-byte transaction from each
/// sender, in sender order, signed in parallel. Sender `i` writes the key
/// `"{i:04}-{nonce:04}"` cut to 8 bytes, so ten consecutive rounds write the
/// same 1,000 keys and every tenth round adds 1,000 new ones.
pub(crate) fn workload_round(
    chain: &ChainId,
    keys: &[SecretKey],
    nonce: u64,
) -> anyhow::Result<Vec<Transaction>> {
    use rayon::prelude::*;
    let Some(first) = keys.first() else {
        return Ok(Vec::new());
    };
    let probe = Transaction::new_signed(chain.clone(), first, 0, KvApp::payload(b"k", b""))?;
    let pad = vec![7u8; 250usize.saturating_sub(probe.encoded_len() + 8)];
    keys.par_iter()
        .enumerate()
        .map(|(i, key)| {
            let k = format!("{i:04}-{nonce:04}");
            let payload = KvApp::payload(&k.as_bytes()[..8], &pad);
            Ok(Transaction::new_signed(chain.clone(), key, nonce, payload)?)
        })
        .collect()
}

pub(crate) struct EndToEnd {
    pub(crate) tx_per_s: f64,
    /// CPU seconds the whole process spent per committed transaction.
    cpu_per_tx: f64,
    latencies_ms: Vec<f64>,
    avg_block_txs: f64,
    peak_rss: f64,
    rss_before: f64,
}

pub(crate) fn end_to_end(total: usize) -> anyhow::Result<EndToEnd> {
    let chain = ChainId::new("bench")?;
    let keys: Vec<Arc<SecretKey>> = (1..=4u8)
        .map(|i| Arc::new(SecretKey::from_seed(&[i; 32])))
        .collect();
    let senders = 1_000;
    let per_sender = (total / senders).max(1) as u64;
    progress(&format!(
        "node: signing {} transactions of 250 bytes",
        senders as u64 * per_sender
    ));
    let txs = workload(&chain, senders, per_sender)?;
    let (_, rss_before) = rss();
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let net = InProcessNetwork::new();
    let mut nodes = Vec::new();
    for (key, dir) in keys.iter().zip(&dirs) {
        let mut spec = ChainSpec::new(
            chain.clone(),
            ChainRole::Side {
                anchor_every: u64::MAX,
            },
            EngineKind::Bft,
            set_of(&keys)?,
            Arc::new(KvApp),
        );
        spec.mempool.max_txs = 40_000;
        let mut cfg = NodeConfig::new(
            "bench",
            key.clone(),
            StorageKind::Durable(dir.path().to_owned()),
        );
        cfg.chains = vec![spec];
        let node = Node::start(cfg, net.transport(key.public_key()))?;
        net.register(key.public_key(), node.inbox());
        nodes.push(node);
    }
    let events = nodes[0].subscribe(1 << 16);
    let submitted: Mutex<HashMap<govchain_core::hash::Hash, Instant>> =
        Mutex::new(HashMap::with_capacity(txs.len()));
    // Client `c` submits the transactions of every fourth sender, starting
    // at sender `c`, in nonce order (the workload is nonce-major: entry `j`
    // is sender `j % senders`): no client waits on another's nonces.
    let shares: Vec<Vec<Transaction>> = (0..4)
        .map(|c| {
            txs.iter()
                .enumerate()
                .filter(|(j, _)| (j % senders) % 4 == c)
                .map(|(_, tx)| tx.clone())
                .collect()
        })
        .collect();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(txs.len());
    let mut committed = 0usize;
    let mut blocks = 0usize;
    let mut last_commit = start;
    progress("node: 4 validators, durable storage: submitting and committing");
    // One client per node, each submitting its share in batches as fast as
    // that node's mempool admits them (a full pool refuses the whole batch,
    // which is retried), while this thread counts commits.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut clients = Vec::new();
        for (node, share) in nodes.iter().zip(&shares) {
            let (chain, submitted, stop) = (&chain, &submitted, &stop);
            clients.push(scope.spawn(move || submit_share(node, chain, share, submitted, stop)));
        }
        while committed < txs.len() && last_commit.elapsed() < Duration::from_secs(60) {
            let Ok(event) = events.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            let now = Instant::now();
            blocks += usize::from(!event.tx_ids.is_empty());
            let mut times = submitted.lock().map_err(|_| anyhow!("a client panicked"))?;
            for id in event.tx_ids.iter() {
                if let Some(t) = times.remove(id) {
                    latencies.push(now.duration_since(t).as_secs_f64() * 1e3);
                    committed += 1;
                    last_commit = now;
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            c.join().map_err(|_| anyhow!("a client panicked"))??;
        }
        if committed < txs.len() {
            return Err(anyhow!(
                "no transaction committed for 60 s ({committed} of {} committed)",
                txs.len()
            ));
        }
        Ok(())
    })?;
    let elapsed = last_commit.duration_since(start).as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let (peak_rss, _) = rss();
    for n in nodes {
        n.stop().context("stopping a node")?;
    }
    Ok(EndToEnd {
        tx_per_s: committed as f64 / elapsed,
        cpu_per_tx: cpu / committed.max(1) as f64,
        latencies_ms: latencies,
        avg_block_txs: committed as f64 / blocks.max(1) as f64,
        peak_rss,
        rss_before,
    })
}

/// End-to-end rounds of the `node` area, and of the `network` area's
/// in-process and TCP runs: `GOVCHAIN_NODE_ROUNDS`, default 3, at least 1.
pub(crate) fn e2e_rounds() -> usize {
    std::env::var("GOVCHAIN_NODE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize)
        .max(1)
}

/// Transactions waiting in a node's pool above which its client pauses.
const BACKLOG_PER_NODE: usize = 2_500;

/// One client: submits `share` in batches of 500 to `node`, recording each
/// transaction's submission time in `submitted`, until done or `stop`.
fn submit_share(
    node: &govchain_node::NodeHandle,
    chain: &ChainId,
    share: &[Transaction],
    submitted: &Mutex<HashMap<govchain_core::hash::Hash, Instant>>,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
    for batch in share.chunks(500) {
        // Offered load follows the chain: a client holds back while its
        // node's pool has a few blocks' worth waiting, so the latency
        // measured is that of a busy chain, not of an ever-growing queue.
        while node
            .status()
            .chains
            .first()
            .is_some_and(|c| c.mempool_txs >= BACKLOG_PER_NODE)
        {
            if stopped() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        loop {
            let now = Instant::now();
            {
                let mut times = submitted.lock().map_err(|_| anyhow!("lock poisoned"))?;
                for tx in batch.iter() {
                    times.insert(tx.id(), now);
                }
            }
            let results = node.submit(chain, batch.to_vec())?;
            if results.iter().all(Result::is_ok) {
                break;
            }
            if results.iter().any(Result::is_ok) {
                return Err(anyhow!(
                    "a batch was admitted in part: {:?}",
                    results.iter().find(|r| r.is_err())
                ));
            }
            // The pool is full: wait for a commit to make room.
            if stopped() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

/// CPU time (user and system) this process has used, in seconds; NaN
/// where `/proc` is not available.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 14th and 15th fields, in clock ticks (100 per second
    // on Linux).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A cross-chain proof over testkit chains: (verify seconds, header verify
/// seconds, proof bytes, main header + certificate bytes).
fn cross_chain() -> anyhow::Result<(f64, f64, f64, f64)> {
    let t0 = Timestamp::new(1_700_000_000_000);
    let main_id = ChainId::new("main")?;
    let side_id = ChainId::new("side")?;
    let secrets = |base: u8| -> Vec<SecretKey> {
        (0..4)
            .map(|i| SecretKey::from_seed(&[base + i; 32]))
            .collect()
    };
    let main_keys = secrets(1);
    let side_set = ValidatorSet::with_equal_power(main_keys.iter().map(|k| k.public_key()))?;
    let genesis = GovernanceGenesis {
        main_chain: main_id.clone(),
        departments: main_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Ok(GenesisDepartment {
                    id: DepartmentId::new(format!("d{i}"))?,
                    name: format!("Department {i}"),
                    node_key: k.public_key(),
                    power: 1,
                    suite_keys: Vec::new(),
                })
            })
            .collect::<anyhow::Result<_>>()?,
        side_chains: vec![SideChainSpec {
            chain_id: side_id.clone(),
            engine: EngineKind::Bft,
            validators: side_set,
            anchor_interval: 8,
        }],
    };
    let mut side = ChainBuilder::new(side_id.clone(), KvApp, secrets(1), t0)?;
    let citizen = SecretKey::from_seed(&[99; 32]);
    let mut nonce = 0;
    for h in 1..=8u64 {
        let txs = (0..100)
            .map(|i| {
                nonce += 1;
                Transaction::new_signed(
                    side_id.clone(),
                    &citizen,
                    nonce - 1,
                    KvApp::payload(format!("{h}/{i}").as_bytes(), b"v"),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        side.produce_block(txs, Timestamp::new(t0.get() + h))?;
    }
    let anchored = side.block(Height::new(8))?.clone();
    let mut main = ChainBuilder::new(
        main_id.clone(),
        GovernanceApp::new(genesis)?,
        secrets(1),
        t0,
    )?;
    let anchor = GovernanceOp::Anchor {
        header: anchored.block.header.clone(),
        certificate: anchored.light.certificate.clone(),
    };
    let tx = Transaction::new_signed(main_id.clone(), &main_keys[0], 0, anchor.to_payload())?;
    let receipts = main
        .produce_block(vec![tx], Timestamp::new(t0.get() + 10))?
        .receipts
        .clone();
    if !receipts.iter().all(|r| r.is_ok()) {
        return Err(anyhow!("the anchor was refused: {receipts:?}"));
    }
    let record = AnchorRecord::of_header(&anchored.block.header);
    let key = govchain_node::governance::anchor_key(&side_id, Height::new(8));
    let (_, anchor_proof) = main.state_proof(Height::new(1), &key)?;
    let fact_block = side.block(Height::new(5))?.block.clone();
    let mut builder = CrossChainProofBuilder::new();
    builder
        .transaction(
            fact_block.transactions[42].clone(),
            side.tx_proof(Height::new(5), 42)?,
        )
        .side_header(fact_block.header.clone())
        .anchored_ancestor(
            anchored.block.header.clone(),
            side.ancestor_proof(Height::new(8), Height::new(5))?,
        )
        .anchor(record, anchor_proof)
        .main_block(main.block(Height::new(1))?.light.clone());
    let proof = builder.build()?;
    let main_set = main.validator_set().clone();
    let verify = crate::median_time(9, || {
        for _ in 0..100 {
            let _ = std::hint::black_box(proof.verify_with_validator_set(&main_id, &main_set));
        }
    })
    .as_secs_f64()
        / 100.0;
    if let Err(e) = proof.verify_with_validator_set(&main_id, &main_set) {
        return Err(anyhow!("the proof does not verify: {e}"));
    }
    let light = main.block(Height::new(1))?.light.clone();
    let header = crate::median_time(9, || {
        for _ in 0..100 {
            let mut client = LightClient::from_genesis(main_id.clone(), main_set.clone(), t0);
            let _ = std::hint::black_box(client.verify(&light));
        }
    })
    .as_secs_f64()
        / 100.0;
    let main_bytes = (light.header.to_bytes().len() + light.certificate.to_bytes().len()) as f64;
    Ok((verify, header, proof.to_bytes().len() as f64, main_bytes))
}

/// Measures and prints this area's rows.
pub fn report() {
    if let Err(e) = try_report() {
        progress(&format!("node: FAILED: {e:#}"));
        std::process::exit(1);
    }
}

fn only(section: &str) -> bool {
    std::env::var("GOVCHAIN_PERF_ONLY").map_or(true, |v| v.split(',').any(|s| s.trim() == section))
}

fn try_report() -> anyhow::Result<()> {
    if only("end_to_end") {
        let total: usize = std::env::var("GOVCHAIN_NODE_TXS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30_000);
        let rounds = e2e_rounds();
        // Rounds interleaved with measurements of B, each round against
        // the mean of the B measured just before and just after it; the
        // round with the median ratio is reported (a single run of a few
        // seconds moves by ±10% with the machine's load).
        progress("node: measuring B (parallel batch verify)");
        let mut b_before = crate::core::signatures::batch_verify_rate();
        let mut runs: Vec<(EndToEnd, f64)> = Vec::with_capacity(rounds);
        for round in 1..=rounds {
            progress(&format!("node: end-to-end round {round}/{rounds}"));
            let e = end_to_end(total)?;
            let b_after = crate::core::signatures::batch_verify_rate();
            let b = (b_before + b_after) / 2.0;
            progress(&format!(
                "node: round {round}: {:.0} tx/s, B before {b_before:.0}/s, after {b_after:.0}/s; {:.0} tx per block",
                e.tx_per_s, e.avg_block_txs
            ));
            runs.push((e, b));
            b_before = b_after;
        }
        // The RSS before the first round's nodes: later rounds start with
        // what the allocator kept from earlier ones.
        let rss_before = runs.first().map_or(0.0, |(e, _)| e.rss_before);
        runs.sort_by(|x, y| (x.0.tx_per_s / x.1).total_cmp(&(y.0.tx_per_s / y.1)));
        let peak_rss = runs.iter().map(|(e, _)| e.peak_rss).fold(0.0, f64::max);
        let (e, b) = runs.swap_remove(runs.len() / 2);
        Row::new(
            AREA,
            "e2e_n4_durable_250B_tx",
            e.tx_per_s,
            "tx/s",
            "sig_bound_B/4",
            b / 4.0,
        )
        .emit();
        // The work per transaction, whatever the machine's load: against
        // the core time of the four signature verifications it needs
        // (each core verifies B / cores signatures a second).
        let cores = rayon::current_num_threads() as f64;
        Row::new(
            AREA,
            "e2e_n4_cpu_per_tx",
            e.cpu_per_tx * 1e6,
            "us",
            "sig_verify_core_time_x4",
            4.0 * cores / b * 1e6,
        )
        .emit();
        let mut l = e.latencies_ms;
        l.sort_by(f64::total_cmp);
        let block_verify_ms = 4.0 * e.avg_block_txs / b * 1e3;
        Row::new(
            AREA,
            "e2e_n4_commit_latency_p50",
            percentile(&l, 0.5),
            "ms",
            "sig_verify_one_block_x4",
            block_verify_ms,
        )
        .emit();
        Row::new(
            AREA,
            "e2e_n4_commit_latency_p99",
            percentile(&l, 0.99),
            "ms",
            "sig_verify_one_block_x4",
            block_verify_ms,
        )
        .emit();
        Row::new(
            AREA,
            "e2e_n4_peak_rss",
            peak_rss / 1048576.0,
            "MiB",
            "rss_before_nodes",
            rss_before / 1048576.0,
        )
        .emit();
    }
    if only("cross_chain") {
        progress("node: cross-chain proof");
        let (verify, header, size, main_bytes) = cross_chain()?;
        Row::new(
            AREA,
            "cross_chain_proof_verify",
            verify * 1e6,
            "us",
            "light_header_verify",
            header * 1e6,
        )
        .emit();
        Row::new(
            AREA,
            "cross_chain_proof_size",
            size,
            "bytes",
            "main_header_and_certificate",
            main_bytes,
        )
        .emit();
    }
    Ok(())
}
