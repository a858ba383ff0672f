//! What the API derives from the node's commit events: submission-to-commit
//! latencies, the transactions still pending, and the Prometheus text.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use govchain_core::hash::Hash;
use govchain_core::types::ChainId;
use parking_lot::Mutex;

use crate::chain::CommitEvent;
use crate::node::NodeStatus;

/// Upper bounds (seconds) of the commit-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Per bucket (not cumulative), plus the +Inf bucket last.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

#[derive(Debug, Clone, Default)]
struct ChainMetrics {
    latency: Histogram,
    interval: Histogram,
    last_commit: Option<Instant>,
    blocks: u64,
}

/// Transactions submitted through this API and not yet seen committed.
#[derive(Debug, Default)]
struct Pending {
    at: HashMap<(ChainId, Hash), Instant>,
    order: VecDeque<(ChainId, Hash)>,
}

/// The API's own counters, shared by the workers and the collector.
#[derive(Debug)]
pub(crate) struct Metrics {
    chains: Mutex<BTreeMap<ChainId, ChainMetrics>>,
    pending: Mutex<Pending>,
    pending_capacity: usize,
    requests: Mutex<BTreeMap<u16, u64>>,
}

impl Metrics {
    pub(crate) fn new(pending_capacity: usize) -> Self {
        Metrics {
            chains: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(Pending::default()),
            pending_capacity: pending_capacity.max(1),
            requests: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records that `id` was accepted into `chain`'s mempool now. The
    /// oldest entry is forgotten when the bound is reached.
    pub(crate) fn submitted(&self, chain: &ChainId, id: Hash) {
        let mut p = self.pending.lock();
        let key = (chain.clone(), id);
        if p.at.insert(key.clone(), Instant::now()).is_none() {
            p.order.push_back(key);
        }
        while p.at.len() > self.pending_capacity {
            match p.order.pop_front() {
                Some(old) => {
                    p.at.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Whether `id` was accepted through this API and not seen committed.
    pub(crate) fn is_pending(&self, chain: &ChainId, id: &Hash) -> bool {
        self.pending.lock().at.contains_key(&(chain.clone(), *id))
    }

    /// Counts a response.
    pub(crate) fn responded(&self, status: u16) {
        *self.requests.lock().entry(status).or_insert(0) += 1;
    }

    fn on_commit(&self, event: &CommitEvent, now: Instant) {
        let mut latencies = Vec::new();
        {
            let mut p = self.pending.lock();
            for id in event.tx_ids.iter() {
                if let Some(t) = p.at.remove(&(event.chain.clone(), *id)) {
                    latencies.push(now.saturating_duration_since(t).as_secs_f64());
                }
            }
            if p.order.len() > 2 * p.at.len() + 1024 {
                let Pending { at, order } = &mut *p;
                order.retain(|k| at.contains_key(k));
            }
        }
        let mut chains = self.chains.lock();
        let c = chains.entry(event.chain.clone()).or_default();
        c.blocks += 1;
        if let Some(last) = c.last_commit.replace(now) {
            c.interval
                .observe(now.saturating_duration_since(last).as_secs_f64());
        }
        for l in latencies {
            c.latency.observe(l);
        }
    }

    /// Prometheus text exposition (format 0.0.4).
    pub(crate) fn render(&self, status: &NodeStatus, peers: Option<(usize, usize)>) -> String {
        let mut out = String::new();
        per_chain(
            &mut out,
            status,
            ("govchain_chain_height", "gauge"),
            "Latest committed height of the chain on this node.",
            |c| Some(c.height.get()),
        );
        render_rest(&mut out, self, status, peers);
        out
    }

    /// Runs the collector until `stop`: reads commit events.
    pub(crate) fn collect(&self, events: Receiver<CommitEvent>, stop: Arc<AtomicBool>) {
        while !stop.load(Ordering::Relaxed) {
            match events.recv_timeout(Duration::from_millis(100)) {
                Ok(event) => self.on_commit(&event, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One metric with a sample per chain that `value` gives a value for.
fn per_chain(
    out: &mut String,
    status: &NodeStatus,
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&crate::node::ChainStatus) -> Option<u64>,
) {
    header(out, name, kind, help);
    for c in &status.chains {
        if let Some(v) = value(c) {
            let _ = writeln!(out, "{name}{{chain=\"{}\"}} {v}", c.chain);
        }
    }
}

fn render_rest(
    out: &mut String,
    metrics: &Metrics,
    status: &NodeStatus,
    peers: Option<(usize, usize)>,
) {
    per_chain(
        out,
        status,
        ("govchain_chain_committed_txs_total", "counter"),
        "Transactions committed on the chain by this node (tx/s: rate()).",
        |c| Some(c.counters.committed_txs),
    );
    per_chain(
        out,
        status,
        ("govchain_key_blocks_left", "gauge"),
        "Blocks until this node's validator key leaves its window (expiry or reported compromise); only chains where it has one.",
        |c| c.key_blocks_left,
    );
    per_chain(
        out,
        status,
        ("govchain_chain_mempool_txs", "gauge"),
        "Transactions waiting in the chain's mempool.",
        |c| Some(c.mempool_txs as u64),
    );
    per_chain(
        out,
        status,
        ("govchain_chain_rejected_proposals_total", "counter"),
        "Proposals this node judged invalid.",
        |c| Some(c.counters.rejected_proposals),
    );
    per_chain(
        out,
        status,
        ("govchain_chain_malformed_gossip_txs_total", "counter"),
        "Gossiped transactions from peers that did not decode (dropped).",
        |c| Some(c.counters.malformed_gossip_txs),
    );
    per_chain(
        out,
        status,
        ("govchain_chain_refused_consensus_messages_total", "counter"),
        "Consensus messages from peers that the engine refused (dropped).",
        |c| Some(c.counters.refused_consensus_messages),
    );
    per_chain(
        out,
        status,
        ("govchain_chain_evidence_total", "counter"),
        "Evidence of equivocation seen on the chain.",
        |c| Some(c.counters.evidence),
    );
    let chains = metrics.chains.lock().clone();
    per_chain(
        out,
        status,
        ("govchain_chain_blocks_observed_total", "counter"),
        "Blocks the API saw committed since it started.",
        |c| Some(chains.get(&c.chain).map_or(0, |m| m.blocks)),
    );
    header(
        out,
        "govchain_tx_commit_latency_seconds",
        "histogram",
        "Time from acceptance through this API to commit on this node.",
    );
    for c in &status.chains {
        let h = chains
            .get(&c.chain)
            .map(|m| m.latency.clone())
            .unwrap_or_default();
        write_histogram(out, "govchain_tx_commit_latency_seconds", &c.chain, &h);
    }
    header(
        out,
        "govchain_block_interval_seconds",
        "histogram",
        "Time between consecutive commits of the chain on this node.",
    );
    for c in &status.chains {
        let h = chains
            .get(&c.chain)
            .map(|m| m.interval.clone())
            .unwrap_or_default();
        write_histogram(out, "govchain_block_interval_seconds", &c.chain, &h);
    }
    if let Some((connected, known)) = peers {
        header(
            out,
            "govchain_peers_connected",
            "gauge",
            "Peers with an open authenticated connection.",
        );
        let _ = writeln!(out, "govchain_peers_connected {connected}");
        header(out, "govchain_peers_known", "gauge", "Peers configured.");
        let _ = writeln!(out, "govchain_peers_known {known}");
    }
    header(
        out,
        "govchain_pending_api_txs",
        "gauge",
        "Transactions accepted through this API and not yet seen committed.",
    );
    let _ = writeln!(
        out,
        "govchain_pending_api_txs {}",
        metrics.pending.lock().at.len()
    );
    header(
        out,
        "govchain_commit_events_dropped_total",
        "counter",
        "Commit events the node dropped because a subscriber lagged.",
    );
    let _ = writeln!(
        out,
        "govchain_commit_events_dropped_total {}",
        status.dropped_events
    );
    header(
        out,
        "govchain_node_fatal",
        "gauge",
        "1 if the node stopped on an error.",
    );
    let _ = writeln!(
        out,
        "govchain_node_fatal {}",
        u8::from(status.fatal.is_some())
    );
    header(
        out,
        "govchain_api_responses_total",
        "counter",
        "API responses by HTTP status.",
    );
    for (code, n) in metrics.requests.lock().iter() {
        let _ = writeln!(out, "govchain_api_responses_total{{code=\"{code}\"}} {n}");
    }
}

fn write_histogram(out: &mut String, name: &str, chain: &ChainId, h: &Histogram) {
    let mut cumulative = 0u64;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += h.counts[i];
        let _ = writeln!(
            out,
            "{name}_bucket{{chain=\"{chain}\",le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += h.counts[LATENCY_BUCKETS.len()];
    let _ = writeln!(
        out,
        "{name}_bucket{{chain=\"{chain}\",le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(out, "{name}_sum{{chain=\"{chain}\"}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{chain=\"{chain}\"}} {}", h.count);
}
