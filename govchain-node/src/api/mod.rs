//! The node's JSON HTTP API, for DApps and operators.
//!
//! [`Api::start`] serves a running [`NodeHandle`] on a TCP address with a
//! small, fixed pool of worker threads fed by a bounded queue of accepted
//! connections (blocking std I/O, one request per connection; no async
//! runtime; see the `http` module for why not `tiny_http`). Routes are versioned under `/v1` ([`ROUTES`]); the
//! OpenAPI 3 description is served at `/v1/openapi.json` and Prometheus
//! metrics at `/metrics`.
//!
//! # Conventions
//! - Bytes travel as lowercase hex: transactions in their canonical
//!   encoding, ids and hashes, state keys, and proofs
//!   (`proof_file_hex` is a [`proof::ProofFile`], what `govchain verify`
//!   checks).
//! - Errors are JSON `{"error": {"code": "snake_case", "message": "…"}}`
//!   with a stable `code` ([`ErrorCode`]) and a 4xx/5xx status.
//! - Request bodies are limited ([`ApiConfig::max_body_bytes`]): a declared
//!   `Content-Length` over the limit is refused with 413 before the body is
//!   read, and a chunked body is read only up to the limit.
//! - A transaction is *pending* when it was accepted through this API and
//!   has not been seen committed yet; transactions that reached the node by
//!   gossip are *unknown* until committed.
//!
//! # Example
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo(node: Arc<govchain_node::NodeHandle>) -> Result<(), Box<dyn std::error::Error>> {
//! use govchain_node::api::{Api, ApiConfig};
//! let server = Api::start("127.0.0.1:0".parse()?, node, ApiConfig::default())?;
//! println!("API on http://{}/v1/status", server.local_addr());
//! server.shutdown();
//! # Ok(()) }
//! ```

pub mod client;
mod http;
mod metrics;
pub mod proof;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use govchain_core::block::BlockHeader;
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::Encode;
use govchain_core::crypto::PublicKey;
use govchain_core::hash::Hash;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::ValidatorSet;
use serde_json::{json, Value};

use crate::config::public_key_hex;
use crate::error::NodeError;
use crate::mempool::MempoolError;
use crate::node::NodeHandle;
use proof::ProofFile;

/// The OpenAPI 3 description of this API (`govchain-node/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Every route the API serves: method and path pattern (`{name}` is a
/// path parameter). The OpenAPI description lists each of them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("GET", "/v1/chains"),
    ("GET", "/v1/chains/{chain}"),
    ("POST", "/v1/chains/{chain}/txs"),
    ("GET", "/v1/chains/{chain}/txs/{tx_id}"),
    ("GET", "/v1/chains/{chain}/txs/{tx_id}/proof"),
    ("GET", "/v1/chains/{chain}/txs/{tx_id}/cross-chain-proof"),
    ("GET", "/v1/chains/{chain}/blocks/{height}"),
    ("GET", "/v1/chains/{chain}/light-blocks/{height}"),
    ("GET", "/v1/chains/{chain}/state/{key}"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/metrics"),
    ("POST", "/v1/chains/{chain}/tx-batches"),
];

/// Most transactions in one `tx-batches` request.
pub const MAX_BATCH_TXS: usize = 10_000;

/// The stable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 404: no such route.
    NotFound,
    /// 405: the route exists for another method.
    MethodNotAllowed,
    /// 400: the body is not JSON.
    MalformedJson,
    /// 400: the JSON lacks a field or has one of the wrong type.
    BadRequest,
    /// 400: a hex field or path parameter is not hex.
    BadHex,
    /// 400: a height is not a number or `latest`.
    BadHeight,
    /// 400: the bytes are not a canonical transaction.
    BadTransaction,
    /// 400: the transaction names another chain than the path.
    WrongChain,
    /// 404: this node does not run the chain.
    UnknownChain,
    /// 404: no block at that height.
    BlockNotFound,
    /// 404: no committed transaction with that id.
    TxNotFound,
    /// 404: the proof can not be built yet (e.g. not anchored).
    ProofUnavailable,
    /// 410: the state of that height was pruned by the node's retention.
    StatePruned,
    /// 413: the body is over the limit.
    BodyTooLarge,
    /// 431: the request head is over the limit.
    HeaderTooLarge,
    /// 422: the mempool refused the transaction.
    TxRejected,
    /// 503: the mempool is full.
    MempoolFull,
    /// 503: the node has stopped.
    NodeStopped,
    /// 503: every worker is busy and the connection queue is full.
    Busy,
    /// 500: anything else.
    Internal,
}

impl ErrorCode {
    /// The code's string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadHex => "bad_hex",
            ErrorCode::BadHeight => "bad_height",
            ErrorCode::BadTransaction => "bad_transaction",
            ErrorCode::WrongChain => "wrong_chain",
            ErrorCode::UnknownChain => "unknown_chain",
            ErrorCode::BlockNotFound => "block_not_found",
            ErrorCode::TxNotFound => "tx_not_found",
            ErrorCode::ProofUnavailable => "proof_unavailable",
            ErrorCode::StatePruned => "state_pruned",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::HeaderTooLarge => "header_too_large",
            ErrorCode::TxRejected => "tx_rejected",
            ErrorCode::MempoolFull => "mempool_full",
            ErrorCode::NodeStopped => "node_stopped",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that carries the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::NotFound
            | ErrorCode::UnknownChain
            | ErrorCode::BlockNotFound
            | ErrorCode::TxNotFound
            | ErrorCode::ProofUnavailable => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::StatePruned => 410,
            ErrorCode::MalformedJson
            | ErrorCode::BadRequest
            | ErrorCode::BadHex
            | ErrorCode::BadHeight
            | ErrorCode::BadTransaction
            | ErrorCode::WrongChain => 400,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::HeaderTooLarge => 431,
            ErrorCode::TxRejected => 422,
            ErrorCode::MempoolFull | ErrorCode::NodeStopped | ErrorCode::Busy => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// The peers of a node as a transport sees them (the TCP transport
/// implements it; in-process networks need not).
pub trait PeerSource: Send + Sync {
    /// Every configured peer.
    fn peers(&self) -> Vec<PeerInfo>;
}

/// One peer of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its key.
    pub key: PublicKey,
    /// Its address, if known.
    pub address: Option<String>,
    /// Whether an authenticated connection is open.
    pub connected: bool,
}

/// How the API server is set up.
#[derive(Clone)]
pub struct ApiConfig {
    /// Worker threads (1..=64): at most this many requests are handled at
    /// once.
    pub workers: usize,
    /// Largest accepted request body, in bytes (at least 1024).
    pub max_body_bytes: usize,
    /// Most transactions remembered as pending (accepted here, not yet
    /// seen committed); the oldest are forgotten first.
    pub pending_capacity: usize,
    /// Where peer information comes from, if anywhere.
    pub peers: Option<Arc<dyn PeerSource>>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("workers", &self.workers)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("pending_capacity", &self.pending_capacity)
            .field("peers", &self.peers.is_some())
            .finish()
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            workers: crate::config::DEFAULT_API_WORKERS,
            max_body_bytes: crate::config::DEFAULT_API_MAX_BODY,
            pending_capacity: 100_000,
            peers: None,
        }
    }
}

impl ApiConfig {
    /// Checks the values are in range; errors name the field.
    pub fn validate(&self) -> Result<(), ApiError> {
        if !(1..=64).contains(&self.workers) {
            return Err(ApiError::Config {
                field: "workers",
                reason: "must be 1..=64".into(),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ApiError::Config {
                field: "max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        Ok(())
    }
}

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A configuration value is out of range.
    #[error("API configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The address could not be bound.
    #[error("binding the API to {addr}: {reason}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A worker thread could not be spawned.
    #[error("spawning an API thread: {source}")]
    Thread {
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The API server. Start it with [`Api::start`].
#[derive(Debug)]
pub struct Api;

/// A running API server; [`ApiServer::shutdown`] (or dropping it) stops it.
pub struct ApiServer {
    addr: SocketAddr,
    server: http::Server,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("addr", &self.addr)
            .field("threads", &self.threads.len())
            .finish()
    }
}

struct Ctx {
    node: Arc<NodeHandle>,
    metrics: metrics::Metrics,
    max_body: usize,
    peers: Option<Arc<dyn PeerSource>>,
}

impl Api {
    /// Binds `addr` and serves `node` with `config.workers` threads, plus
    /// one thread accepting connections and one following the node's
    /// commits (for latencies and pending transactions).
    pub fn start(
        addr: SocketAddr,
        node: Arc<NodeHandle>,
        config: ApiConfig,
    ) -> Result<ApiServer, ApiError> {
        config.validate()?;
        let events = node.subscribe(16_384);
        let ctx = Arc::new(Ctx {
            node,
            metrics: metrics::Metrics::new(config.pending_capacity),
            max_body: config.max_body_bytes,
            peers: config.peers.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let collector = {
            let ctx = ctx.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("govchain-api-commits".into())
                .spawn(move || ctx.metrics.collect(events, stop))
                .map_err(|source| ApiError::Thread { source })?
        };
        let server = match http::Server::start(addr, config.workers, config.max_body_bytes, ctx) {
            Ok(server) => server,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = collector.join();
                return Err(ApiError::Bind {
                    addr,
                    reason: e.to_string(),
                });
            }
        };
        let local = server.local_addr();
        tracing::info!(addr = %local, workers = config.workers, "API listening");
        Ok(ApiServer {
            addr: local,
            server,
            stop,
            threads: vec![collector],
        })
    }
}

impl ApiServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, lets the workers finish the ones they
    /// hold, and joins every thread.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.server.stop();
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

impl http::Handler for Ctx {
    fn handle(&self, request: http::Request) -> http::Response {
        let reply = route(
            self,
            &request.method.to_ascii_uppercase(),
            &request.path,
            &request.query,
            &request.body,
        )
        .unwrap_or_else(|e| e);
        tracing::debug!(method = %request.method, path = %request.path, status = reply.status, "API request");
        self.metrics.responded(reply.status);
        http::Response {
            status: reply.status,
            content_type: reply.content_type,
            body: reply.body,
        }
    }

    fn reject(&self, error: &http::ReadError) -> Option<http::Response> {
        let reply = match error {
            http::ReadError::TooLarge { declared } => Reply::error(
                ErrorCode::BodyTooLarge,
                match declared {
                    Some(n) => format!(
                        "request body of {n} bytes exceeds the limit of {}",
                        self.max_body
                    ),
                    None => format!("request body exceeds the limit of {}", self.max_body),
                },
            ),
            http::ReadError::HeadTooLarge => Reply::error(
                ErrorCode::HeaderTooLarge,
                format!(
                    "request head over {} bytes or {} headers",
                    http::MAX_HEAD_BYTES,
                    http::MAX_HEADERS
                ),
            ),
            http::ReadError::Malformed(why) => Reply::error(
                ErrorCode::BadRequest,
                format!("malformed HTTP request: {why}"),
            ),
            http::ReadError::Gone => return None,
        };
        self.metrics.responded(reply.status);
        Some(http::Response {
            status: reply.status,
            content_type: reply.content_type,
            body: reply.body,
        })
    }
}

/// A response before it is written.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        Reply {
            status,
            content_type: "application/json",
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Reply::json(
            code.status(),
            &json!({ "error": { "code": code.as_str(), "message": message.into() } }),
        )
    }
}

type Handled = Result<Reply, Reply>;

/// Matches `path` against `pattern`, returning the parameters.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<Vec<&'p str>> {
    let mut params = Vec::new();
    let mut a = pattern.split('/');
    let mut b = path.split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(s)) if p.starts_with('{') && p.ends_with('}') => {
                if s.is_empty() {
                    return None;
                }
                params.push(s);
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return None,
        }
    }
}

fn route(ctx: &Ctx, method: &str, path: &str, query: &str, body: &[u8]) -> Handled {
    let mut path_matched = false;
    for (i, (m, pattern)) in ROUTES.iter().enumerate() {
        let Some(params) = matches(pattern, path) else {
            continue;
        };
        path_matched = true;
        if *m != method {
            continue;
        }
        return match i {
            0 => node_status(ctx),
            1 => chains(ctx),
            2 => chain_status(ctx, params[0]),
            3 => submit(ctx, params[0], body),
            4 => tx_status(ctx, params[0], params[1]),
            5 => tx_proof(ctx, params[0], params[1]),
            6 => cross_chain_proof(ctx, params[0], params[1]),
            7 => block(ctx, params[0], params[1]),
            8 => light_block(ctx, params[0], params[1]),
            9 => state(ctx, params[0], params[1], query),
            10 => Ok(Reply {
                status: 200,
                content_type: "application/json",
                body: OPENAPI_JSON.as_bytes().to_vec(),
            }),
            11 => Ok(metrics_text(ctx)),
            12 => submit_batch(ctx, params[0], body),
            _ => Err(Reply::error(ErrorCode::Internal, "unrouted")),
        };
    }
    if path_matched {
        Err(Reply::error(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {path}"),
        ))
    } else {
        Err(Reply::error(
            ErrorCode::NotFound,
            format!("no route {method} {path} (see /v1/openapi.json)"),
        ))
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn node_err(e: NodeError, not_found: ErrorCode) -> Reply {
    match e {
        NodeError::UnknownChain { chain } => Reply::error(
            ErrorCode::UnknownChain,
            format!("this node does not run chain {chain}"),
        ),
        NodeError::NotFound { what } => Reply::error(not_found, format!("not found: {what}")),
        e @ NodeError::StatePruned { .. } => Reply::error(ErrorCode::StatePruned, e.to_string()),
        NodeError::Stopped => Reply::error(ErrorCode::NodeStopped, "the node has stopped"),
        other => Reply::error(ErrorCode::Internal, other.to_string()),
    }
}

fn chain_param(ctx: &Ctx, raw: &str) -> Result<ChainId, Reply> {
    let unknown = || {
        Reply::error(
            ErrorCode::UnknownChain,
            format!("this node does not run chain {raw:?}"),
        )
    };
    let chain = ChainId::new(raw).map_err(|_| unknown())?;
    ctx.node
        .height(&chain)
        .map_err(|e| node_err(e, ErrorCode::UnknownChain))?;
    Ok(chain)
}

fn hash_param(raw: &str, what: &str) -> Result<Hash, Reply> {
    let bytes = hex::decode(raw)
        .map_err(|e| Reply::error(ErrorCode::BadHex, format!("{what}: not hex: {e}")))?;
    let array: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        Reply::error(
            ErrorCode::BadHex,
            format!("{what}: {} bytes, expected 32", b.len()),
        )
    })?;
    Ok(Hash::from_bytes(array))
}

fn height_param(ctx: &Ctx, chain: &ChainId, raw: &str) -> Result<Height, Reply> {
    if raw == "latest" {
        return ctx
            .node
            .height(chain)
            .map_err(|e| node_err(e, ErrorCode::BlockNotFound));
    }
    raw.parse::<u64>().map(Height::new).map_err(|_| {
        Reply::error(
            ErrorCode::BadHeight,
            format!("height {raw:?} is not a number or \"latest\""),
        )
    })
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A header as JSON.
pub fn header_json(h: &BlockHeader) -> Value {
    json!({
        "version": h.version(),
        "suite": h.suite.name(),
        "chain_id": h.chain_id.as_str(),
        "height": h.height.get(),
        "time_ms": h.time.get(),
        "parent_hash": h.parent_hash.to_string(),
        "tx_root": h.tx_root.to_string(),
        "tx_count": h.tx_count,
        "state_root": h.state_root.to_string(),
        "history_root": h.history_root.to_string(),
        "validator_set_hash": h.validator_set_hash.to_string(),
        "next_validator_set_hash": h.next_validator_set_hash.to_string(),
        "proposer": public_key_hex(&h.proposer),
        "hash": h.hash().to_string(),
    })
}

/// A commit certificate as JSON.
pub fn certificate_json(c: &CommitCertificate) -> Value {
    json!({
        "chain_id": c.chain_id.as_str(),
        "height": c.height.get(),
        "round": c.round.get(),
        "block_hash": c.block_hash.to_string(),
        "signatures": c.signatures.iter().map(|s| json!({
            "validator": public_key_hex(&s.validator),
            "signature": hex::encode(s.signature.as_bytes()),
        })).collect::<Vec<_>>(),
    })
}

/// A validator set as JSON.
pub fn validator_set_json(set: &ValidatorSet) -> Value {
    json!({
        "hash": set.hash().to_string(),
        "total_power": set.total_power(),
        "validators": set.validators().iter().map(|v| json!({
            "public_key": public_key_hex(&v.public_key),
            "power": v.power,
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

fn chain_status_json(c: &crate::node::ChainStatus) -> Value {
    json!({
        "chain_id": c.chain.as_str(),
        "height": c.height.get(),
        "mempool_txs": c.mempool_txs,
        "committed_txs": c.counters.committed_txs,
        "rejected_proposals": c.counters.rejected_proposals,
        "malformed_gossip_txs": c.counters.malformed_gossip_txs,
        "refused_consensus_messages": c.counters.refused_consensus_messages,
        "evidence": c.counters.evidence,
        "sync": c.sync.map(|p| json!({
            "target": p.target.get(),
            "remaining": p.remaining,
            "applied": p.applied,
            "blocks_per_s": p.blocks_per_s,
        })),
        "synced_blocks": c.sync_counters.synced_blocks,
        "key_window": c.key_window.map(|w| json!({
            "expires_at": w.expires_at.map(|h| h.get()),
            "compromised_from": w.revoked_from.map(|h| h.get()),
            "blocks_left": c.key_blocks_left,
        })),
    })
}

fn peers_json(ctx: &Ctx) -> Value {
    match &ctx.peers {
        None => Value::Null,
        Some(source) => Value::Array(
            source
                .peers()
                .iter()
                .map(|p| {
                    json!({
                        "public_key": public_key_hex(&p.key),
                        "address": p.address,
                        "connected": p.connected,
                    })
                })
                .collect(),
        ),
    }
}

fn node_status(ctx: &Ctx) -> Handled {
    let status = ctx.node.status();
    Ok(Reply::json(
        200,
        &json!({
            "name": ctx.node.name(),
            "public_key": public_key_hex(ctx.node.key()),
            "chains": status.chains.iter().map(chain_status_json).collect::<Vec<_>>(),
            "peers": peers_json(ctx),
            "fatal": status.fatal,
            "dropped_events": status.dropped_events,
            "warnings": status.warnings,
        }),
    ))
}

fn chains(ctx: &Ctx) -> Handled {
    let status = ctx.node.status();
    Ok(Reply::json(
        200,
        &json!({ "chains": status.chains.iter().map(chain_status_json).collect::<Vec<_>>() }),
    ))
}

fn chain_status(ctx: &Ctx, raw: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let status = ctx.node.status();
    let mut value = status
        .chains
        .iter()
        .find(|c| c.chain == chain)
        .map(chain_status_json)
        .unwrap_or_else(|| json!({ "chain_id": chain.as_str() }));
    let height = ctx
        .node
        .height(&chain)
        .map_err(|e| node_err(e, ErrorCode::BlockNotFound))?;
    if height.get() > 0 {
        let stored = ctx
            .node
            .block(&chain, height)
            .map_err(|e| node_err(e, ErrorCode::BlockNotFound))?;
        value["height"] = json!(height.get());
        value["latest_block_hash"] = json!(stored.block.hash().to_string());
        value["latest_block_time_ms"] = json!(stored.block.header.time.get());
    }
    Ok(Reply::json(200, &value))
}

fn submit(ctx: &Ctx, raw: &str, body: &[u8]) -> Handled {
    // The body's size was checked (before reading it) by the server.
    let chain = chain_param(ctx, raw)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Reply::error(ErrorCode::MalformedJson, format!("body is not JSON: {e}")))?;
    let hex_tx = value.get("tx").and_then(Value::as_str).ok_or_else(|| {
        Reply::error(
            ErrorCode::BadRequest,
            "expected {\"tx\": \"<hex of the canonical transaction>\"}",
        )
    })?;
    let bytes = hex::decode(hex_tx)
        .map_err(|e| Reply::error(ErrorCode::BadHex, format!("tx: not hex: {e}")))?;
    let tx = Transaction::decode(&bytes).map_err(|e| {
        Reply::error(
            ErrorCode::BadTransaction,
            format!("tx: not a canonical transaction: {e}"),
        )
    })?;
    if tx.chain_id() != &chain {
        return Err(Reply::error(
            ErrorCode::WrongChain,
            format!(
                "the transaction is for chain {}, not {chain}",
                tx.chain_id()
            ),
        ));
    }
    let id = tx.id();
    let mut results = ctx
        .node
        .submit(&chain, vec![tx])
        .map_err(|e| node_err(e, ErrorCode::Internal))?;
    match results.pop() {
        Some(Ok(id)) => {
            ctx.metrics.submitted(&chain, id);
            Ok(Reply::json(
                202,
                &json!({ "tx_id": id.to_string(), "status": "pending" }),
            ))
        }
        Some(Err(e @ MempoolError::Full { .. })) => {
            Err(Reply::error(ErrorCode::MempoolFull, e.to_string()))
        }
        Some(Err(e)) => Err(Reply::error(
            ErrorCode::TxRejected,
            format!("transaction {id} refused: {e}"),
        )),
        None => Err(Reply::error(ErrorCode::Internal, "no verdict")),
    }
}

/// Submits many transactions in one request (`{"txs": ["<hex>", ...]}`):
/// one mempool admission for all of them, one verdict each.
fn submit_batch(ctx: &Ctx, raw: &str, body: &[u8]) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Reply::error(ErrorCode::MalformedJson, format!("body is not JSON: {e}")))?;
    let items = value.get("txs").and_then(Value::as_array).ok_or_else(|| {
        Reply::error(
            ErrorCode::BadRequest,
            "expected {\"txs\": [\"<hex of a canonical transaction>\", ...]}",
        )
    })?;
    if items.len() > MAX_BATCH_TXS {
        return Err(Reply::error(
            ErrorCode::BadRequest,
            format!(
                "{} transactions; at most {MAX_BATCH_TXS} per batch",
                items.len()
            ),
        ));
    }
    let mut txs = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let hex_tx = item.as_str().ok_or_else(|| {
            Reply::error(
                ErrorCode::BadRequest,
                format!("txs[{i}]: expected a hex string"),
            )
        })?;
        let bytes = hex::decode(hex_tx)
            .map_err(|e| Reply::error(ErrorCode::BadHex, format!("txs[{i}]: not hex: {e}")))?;
        let tx = Transaction::decode(&bytes).map_err(|e| {
            Reply::error(
                ErrorCode::BadTransaction,
                format!("txs[{i}]: not a canonical transaction: {e}"),
            )
        })?;
        if tx.chain_id() != &chain {
            return Err(Reply::error(
                ErrorCode::WrongChain,
                format!("txs[{i}] is for chain {}, not {chain}", tx.chain_id()),
            ));
        }
        txs.push(tx);
    }
    let ids: Vec<_> = txs.iter().map(Transaction::id).collect();
    let results = ctx
        .node
        .submit(&chain, txs)
        .map_err(|e| node_err(e, ErrorCode::Internal))?;
    let mut accepted = 0usize;
    let verdicts: Vec<Value> = ids
        .iter()
        .zip(results)
        .map(|(id, r)| match r {
            Ok(id) => {
                accepted += 1;
                ctx.metrics.submitted(&chain, id);
                json!({ "tx_id": id.to_string(), "status": "pending" })
            }
            Err(e) => {
                let code = match e {
                    MempoolError::Full { .. } => ErrorCode::MempoolFull,
                    _ => ErrorCode::TxRejected,
                };
                json!({ "tx_id": id.to_string(), "error": {
                    "code": code.as_str(), "message": e.to_string() } })
            }
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({ "accepted": accepted, "results": verdicts }),
    ))
}

fn tx_status(ctx: &Ctx, raw: &str, id: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let id = hash_param(id, "tx_id")?;
    let found = ctx
        .node
        .find_transaction(&chain, &id)
        .map_err(|e| node_err(e, ErrorCode::TxNotFound))?;
    let value = match found {
        Some((height, index)) => json!({
            "tx_id": id.to_string(),
            "status": "committed",
            "height": height.get(),
            "index": index,
        }),
        None if ctx.metrics.is_pending(&chain, &id) => {
            json!({ "tx_id": id.to_string(), "status": "pending" })
        }
        None => json!({ "tx_id": id.to_string(), "status": "unknown" }),
    };
    Ok(Reply::json(200, &value))
}

fn tx_proof(ctx: &Ctx, raw: &str, id: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let id = hash_param(id, "tx_id")?;
    let p = ctx
        .node
        .tx_proof(&chain, &id)
        .map_err(|e| node_err(e, ErrorCode::TxNotFound))?;
    let file = ProofFile::Transaction {
        header: p.header.clone(),
        certificate: p.certificate.clone(),
        tx: p.tx.clone(),
        proof: p.proof.clone(),
    };
    Ok(Reply::json(
        200,
        &json!({
            "tx_id": id.to_string(),
            "height": p.header.height.get(),
            "index": p.index,
            "header": header_json(&p.header),
            "certificate": certificate_json(&p.certificate),
            "tx_hex": hex::encode(p.tx.to_bytes()),
            "inclusion_proof_hex": hex::encode(p.proof.to_bytes()),
            "proof_file_hex": hex::encode(file.to_bytes()),
        }),
    ))
}

fn cross_chain_proof(ctx: &Ctx, raw: &str, id: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let id = hash_param(id, "tx_id")?;
    let found = ctx
        .node
        .find_transaction(&chain, &id)
        .map_err(|e| node_err(e, ErrorCode::TxNotFound))?;
    if found.is_none() {
        return Err(Reply::error(
            ErrorCode::TxNotFound,
            format!("transaction {id} is not committed on {chain}"),
        ));
    }
    let p = ctx
        .node
        .cross_chain_tx_proof(&chain, &id)
        .map_err(|e| node_err(e, ErrorCode::ProofUnavailable))?;
    let file = ProofFile::CrossChain(Box::new(p.clone()));
    let anchored = match &p.link {
        crate::crosschain::AnchorLink::Anchored => p.side_header.height,
        crate::crosschain::AnchorLink::Ancestor {
            anchored_header, ..
        } => anchored_header.height,
    };
    Ok(Reply::json(
        200,
        &json!({
            "tx_id": id.to_string(),
            "side_chain": chain.as_str(),
            "side_height": p.side_header.height.get(),
            "anchored_height": anchored.get(),
            "main_chain": p.main.header.chain_id.as_str(),
            "main_height": p.main.header.height.get(),
            "proof_hex": hex::encode(p.to_bytes()),
            "proof_file_hex": hex::encode(file.to_bytes()),
        }),
    ))
}

fn block(ctx: &Ctx, raw: &str, height: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let height = height_param(ctx, &chain, height)?;
    let stored = ctx
        .node
        .block(&chain, height)
        .map_err(|e| node_err(e, ErrorCode::BlockNotFound))?;
    Ok(Reply::json(
        200,
        &json!({
            "chain_id": chain.as_str(),
            "height": height.get(),
            "hash": stored.block.hash().to_string(),
            "header": header_json(&stored.block.header),
            "certificate": certificate_json(&stored.certificate),
            "tx_ids": stored.block.transactions.iter().map(|t| t.id().to_string()).collect::<Vec<_>>(),
            "block_hex": hex::encode(stored.block.to_bytes()),
            "certificate_hex": hex::encode(stored.certificate.to_bytes()),
        }),
    ))
}

fn light_block(ctx: &Ctx, raw: &str, height: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let height = height_param(ctx, &chain, height)?;
    let lb = ctx
        .node
        .light_block(&chain, height)
        .map_err(|e| node_err(e, ErrorCode::BlockNotFound))?;
    Ok(Reply::json(
        200,
        &json!({
            "header": header_json(&lb.header),
            "header_hex": hex::encode(lb.header.to_bytes()),
            "certificate": certificate_json(&lb.certificate),
            "certificate_hex": hex::encode(lb.certificate.to_bytes()),
            "validator_set": lb.validator_set.as_ref().map(validator_set_json),
            "validator_set_hex": lb.validator_set.as_ref().map(|s| hex::encode(s.to_bytes())),
        }),
    ))
}

fn state(ctx: &Ctx, raw: &str, key: &str, query: &str) -> Handled {
    let chain = chain_param(ctx, raw)?;
    let key = hex::decode(key)
        .map_err(|e| Reply::error(ErrorCode::BadHex, format!("key: not hex: {e}")))?;
    if key.len() > crate::crosschain::MAX_FACT_KEY_LEN {
        return Err(Reply::error(
            ErrorCode::BadRequest,
            format!(
                "key of {} bytes exceeds {}",
                key.len(),
                crate::crosschain::MAX_FACT_KEY_LEN
            ),
        ));
    }
    let height = match query_param(query, "height") {
        Some(h) => Some(height_param(ctx, &chain, h)?),
        None => None,
    };
    let p = ctx
        .node
        .state_proof(&chain, &key, height)
        .map_err(|e| node_err(e, ErrorCode::BlockNotFound))?;
    let file = ProofFile::State {
        header: p.header.clone(),
        certificate: p.certificate.clone(),
        key: p.key.clone(),
        value: p.value.clone(),
        proof: p.proof.clone(),
    };
    Ok(Reply::json(
        200,
        &json!({
            "key_hex": hex::encode(&p.key),
            "value_hex": p.value.as_ref().map(hex::encode),
            "height": p.header.height.get(),
            "header": header_json(&p.header),
            "certificate": certificate_json(&p.certificate),
            "smt_proof_hex": hex::encode(p.proof.to_bytes()),
            "proof_file_hex": hex::encode(file.to_bytes()),
        }),
    ))
}

fn metrics_text(ctx: &Ctx) -> Reply {
    let status = ctx.node.status();
    let peers = ctx.peers.as_ref().map(|s| {
        let all = s.peers();
        (all.iter().filter(|p| p.connected).count(), all.len())
    });
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: ctx.metrics.render(&status, peers).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_only_their_paths() {
        assert_eq!(
            matches("/v1/chains/{chain}/txs/{tx_id}", "/v1/chains/main/txs/ab"),
            Some(vec!["main", "ab"])
        );
        assert_eq!(matches("/v1/chains/{chain}", "/v1/chains/"), None);
        assert_eq!(matches("/v1/chains/{chain}", "/v1/chains/a/b"), None);
        assert_eq!(matches("/metrics", "/metrics"), Some(vec![]));
    }

    #[test]
    fn every_error_code_is_distinct_and_carries_an_error_status() {
        let all = [
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::MalformedJson,
            ErrorCode::BadRequest,
            ErrorCode::BadHex,
            ErrorCode::BadHeight,
            ErrorCode::BadTransaction,
            ErrorCode::WrongChain,
            ErrorCode::UnknownChain,
            ErrorCode::BlockNotFound,
            ErrorCode::TxNotFound,
            ErrorCode::ProofUnavailable,
            ErrorCode::BodyTooLarge,
            ErrorCode::HeaderTooLarge,
            ErrorCode::TxRejected,
            ErrorCode::MempoolFull,
            ErrorCode::NodeStopped,
            ErrorCode::Busy,
            ErrorCode::Internal,
        ];
        let names: std::collections::BTreeSet<_> = all.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert!(all.iter().all(|c| c.status() >= 400));
        // The OpenAPI description documents every code.
        for c in all {
            assert!(
                OPENAPI_JSON.contains(c.as_str()),
                "{} undocumented",
                c.as_str()
            );
        }
    }
}
