//! The JSON HTTP API over an in-process network: a transaction submitted
//! through the API commits, its proofs verify, every read endpoint answers,
//! and bad input gets JSON errors with stable codes.
//!
//! The client is a tiny std `TcpStream` HTTP/1.1 client written here, so
//! that the server is tested against raw requests (lying lengths, chunked
//! bodies, broken JSON) and not through the crate's own client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{keys, set_of, start, wait_for};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::ChainId;
use govchain_node::api::proof::{self, ProofFile, Proven, TrustedSet};
use govchain_node::api::{Api, ApiConfig, ApiServer, OPENAPI_JSON, ROUTES};
use govchain_node::governance::{
    DepartmentId, GenesisDepartment, GovernanceGenesis, SideChainSpec,
};
use govchain_node::{ChainSpec, EngineKind, InProcessNetwork, NodeHandle};
use serde_json::Value;

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error_code(&self) -> String {
        assert!(
            self.content_type.starts_with("application/json"),
            "error content type {}",
            self.content_type
        );
        self.json()["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body`, then reads one response (by its Content-Length).
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut bytes = format!("{head}\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    // The server may answer (and stop reading) before the whole body is
    // written; the answer is what is tested.
    let _ = s.write_all(&bytes);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("response has a Content-Length");
            if buf.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let content_type = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-type")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                return Reply {
                    status,
                    content_type,
                    body: buf[end + 4..end + 4 + len].to_vec(),
                };
            }
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close"),
        b"",
    )
}

fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Reply {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        ),
        body,
    )
}

struct Network {
    _dirs: Vec<tempfile::TempDir>,
    _net: InProcessNetwork,
    nodes: Vec<Arc<NodeHandle>>,
    main: ChainId,
    side: ChainId,
    genesis: GovernanceGenesis,
}

/// `n` departments running the main chain and one key-value side chain
/// `svc` (BFT, anchored every 2 blocks), on durable storage.
fn network(n: u8) -> Network {
    let keys = keys(n);
    let main = ChainId::new("main").unwrap();
    let side = ChainId::new("svc").unwrap();
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments: keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisDepartment {
                id: DepartmentId::new(format!("dept-{i}")).unwrap(),
                name: format!("Department {i}"),
                node_key: k.public_key(),
                power: 1,
                suite_keys: Vec::new(),
            })
            .collect(),
        side_chains: vec![SideChainSpec {
            chain_id: side.clone(),
            engine: EngineKind::Bft,
            validators: set_of(&keys),
            anchor_interval: 2,
        }],
    };
    let main_spec = ChainSpec::main_chain(genesis.clone()).unwrap();
    let side_spec = ChainSpec::side_chain(&genesis.side_chains[0], Arc::new(KvApp));
    let net = InProcessNetwork::new();
    let dirs: Vec<tempfile::TempDir> = keys.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let nodes = keys
        .iter()
        .zip(&dirs)
        .map(|(k, d)| {
            Arc::new(start(
                &net,
                k,
                d.path(),
                vec![main_spec.clone(), side_spec.clone()],
            ))
        })
        .collect();
    Network {
        _dirs: dirs,
        _net: net,
        nodes,
        main,
        side,
        genesis,
    }
}

fn serve(node: &Arc<NodeHandle>, max_body_bytes: usize) -> ApiServer {
    Api::start(
        "127.0.0.1:0".parse().unwrap(),
        node.clone(),
        ApiConfig {
            workers: 2,
            max_body_bytes,
            ..ApiConfig::default()
        },
    )
    .unwrap()
}

fn kv_tx(chain: &ChainId, who: &SecretKey, nonce: u64, key: &str, value: &str) -> Transaction {
    Transaction::new_signed(
        chain.clone(),
        who,
        nonce,
        KvApp::payload(key.as_bytes(), value.as_bytes()),
    )
    .unwrap()
}

fn submit_hex(addr: SocketAddr, chain: &ChainId, tx: &Transaction) -> Reply {
    let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes()) }).to_string();
    post(addr, &format!("/v1/chains/{chain}/txs"), body.as_bytes())
}

#[test]
fn a_transaction_submitted_through_the_api_commits_and_its_proofs_verify() {
    let net = network(4);
    let api = serve(&net.nodes[0], 64 * 1024);
    let addr = api.local_addr();
    let citizen = SecretKey::from_seed(&[77; 32]);
    let tx = kv_tx(&net.side, &citizen, 0, "permit-17", "granted");
    let id = tx.id().to_string();

    let r = submit_hex(addr, &net.side, &tx);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["tx_id"], id.as_str());
    let status_path = format!("/v1/chains/svc/txs/{id}");
    let first = get(addr, &status_path).json();
    assert!(
        first["status"] == "pending" || first["status"] == "committed",
        "{first}"
    );

    // Committed at a height and index.
    let mut committed = Value::Null;
    wait_for("the tx to commit", Duration::from_secs(60), || {
        committed = get(addr, &status_path).json();
        committed["status"] == "committed"
    });
    let height = committed["height"].as_u64().unwrap();
    assert!(height >= 1);
    assert_eq!(committed["index"], 0);

    // The same transaction again is refused by the mempool (nonce used).
    let again = submit_hex(addr, &net.side, &tx);
    assert_eq!(again.status, 422);
    assert_eq!(again.error_code(), "tx_rejected");

    // The block holds it, and its hex decodes to the same block.
    let block = get(addr, &format!("/v1/chains/svc/blocks/{height}"));
    assert_eq!(block.status, 200);
    let block = block.json();
    assert_eq!(block["tx_ids"][0], id.as_str());
    assert_eq!(block["header"]["height"], height);
    let decoded = govchain_core::block::Block::decode(
        &hex::decode(block["block_hex"].as_str().unwrap()).unwrap(),
        usize::MAX,
    )
    .unwrap();
    assert_eq!(decoded.hash().to_string(), block["hash"].as_str().unwrap());
    assert_eq!(decoded.transactions[0], tx);
    let latest = get(addr, "/v1/chains/svc/blocks/latest").json();
    assert!(latest["height"].as_u64().unwrap() >= height);

    // The transaction proof verifies against the genesis validator set.
    let side_trusted = TrustedSet::new(
        net.side.clone(),
        EngineKind::Bft,
        net.genesis.side_chains[0].validators.clone(),
    );
    let p = get(addr, &format!("/v1/chains/svc/txs/{id}/proof")).json();
    let file =
        ProofFile::decode(&hex::decode(p["proof_file_hex"].as_str().unwrap()).unwrap()).unwrap();
    match proof::verify(&file, &side_trusted).unwrap() {
        Proven::Transaction {
            tx: t, height: h, ..
        } => {
            assert_eq!(t, tx);
            assert_eq!(h.get(), height);
        }
        other => panic!("proved {other:?}"),
    }

    // The state entry with its proof.
    let key_hex = hex::encode(KvApp::state_key(b"permit-17"));
    let s = get(addr, &format!("/v1/chains/svc/state/{key_hex}")).json();
    assert_eq!(s["value_hex"], hex::encode(b"granted").as_str());
    let file =
        ProofFile::decode(&hex::decode(s["proof_file_hex"].as_str().unwrap()).unwrap()).unwrap();
    match proof::verify(&file, &side_trusted).unwrap() {
        Proven::State { value, .. } => assert_eq!(value.as_deref(), Some(&b"granted"[..])),
        other => panic!("proved {other:?}"),
    }
    // An absent key is proven absent.
    let absent = get(
        addr,
        &format!("/v1/chains/svc/state/{}", hex::encode(b"kv/nobody")),
    )
    .json();
    assert_eq!(absent["value_hex"], Value::Null);
    let file = ProofFile::decode(&hex::decode(absent["proof_file_hex"].as_str().unwrap()).unwrap())
        .unwrap();
    assert!(matches!(
        proof::verify(&file, &side_trusted).unwrap(),
        Proven::State { value: None, .. }
    ));

    // The cross-chain proof, once anchored, verifies from the main chain's
    // genesis set alone.
    let main_trusted = TrustedSet::new(
        net.main.clone(),
        EngineKind::Bft,
        net.genesis.main_validator_set().unwrap(),
    );
    let xpath = format!("/v1/chains/svc/txs/{id}/cross-chain-proof");
    let mut x = get(addr, &xpath);
    wait_for("an anchor covering the tx", Duration::from_secs(60), || {
        x = get(addr, &xpath);
        x.status == 200
    });
    let x = x.json();
    let file =
        ProofFile::decode(&hex::decode(x["proof_file_hex"].as_str().unwrap()).unwrap()).unwrap();
    match proof::verify(&file, &main_trusted).unwrap() {
        Proven::CrossChain(fact) => {
            assert_eq!(fact.side_chain, net.side);
            assert_eq!(fact.side_height.get(), height);
        }
        other => panic!("proved {other:?}"),
    }
    // ... and not from the side chain's set.
    assert!(proof::verify(&file, &side_trusted).is_err());

    // Light block, chain status, node status.
    let lb = get(addr, "/v1/chains/main/light-blocks/1").json();
    assert_eq!(lb["header"]["height"], 1);
    assert_eq!(
        lb["validator_set"]["hash"],
        net.genesis
            .main_validator_set()
            .unwrap()
            .hash()
            .to_string()
            .as_str()
    );
    let cs = get(addr, "/v1/chains/svc").json();
    assert!(cs["height"].as_u64().unwrap() >= height);
    assert!(cs["committed_txs"].as_u64().unwrap() >= 1);
    assert!(cs["mempool_txs"].is_u64());
    let ns = get(addr, "/v1/status").json();
    assert_eq!(
        ns["public_key"],
        hex::encode(net.nodes[0].key().raw_bytes()).as_str()
    );
    assert_eq!(ns["chains"].as_array().unwrap().len(), 2);
    let list = get(addr, "/v1/chains").json();
    assert_eq!(list["chains"].as_array().unwrap().len(), 2);

    // Metrics: per-chain height, committed txs, mempool, latency histogram
    // that saw our transaction.
    // (The API's commit follower sees the commit event shortly after the
    // index does: poll for it.)
    wait_for(
        "the API to observe the commit",
        Duration::from_secs(30),
        || {
            let text = String::from_utf8(get(addr, "/metrics").body).unwrap();
            text.contains("govchain_tx_commit_latency_seconds_count{chain=\"svc\"} 1\n")
        },
    );
    let m = get(addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(m.content_type.starts_with("text/plain"));
    let text = String::from_utf8(m.body).unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("govchain_chain_height{chain=\"svc\"}") >= height as f64);
    assert!(value("govchain_chain_committed_txs_total{chain=\"svc\"}") >= 1.0);
    assert!(value("govchain_chain_mempool_txs{chain=\"main\"}") >= 0.0);
    assert_eq!(
        value("govchain_tx_commit_latency_seconds_count{chain=\"svc\"}"),
        1.0
    );
    assert_eq!(
        value("govchain_tx_commit_latency_seconds_bucket{chain=\"svc\",le=\"+Inf\"}"),
        1.0
    );
    assert!(text.contains("# TYPE govchain_tx_commit_latency_seconds histogram"));
    // Block intervals need two commits seen by the API; svc keeps making
    // (empty) blocks.
    wait_for(
        "two svc commits seen by the API",
        Duration::from_secs(30),
        || {
            let text = String::from_utf8(get(addr, "/metrics").body).unwrap();
            text.lines().any(|l| {
                l.strip_prefix("govchain_block_interval_seconds_count{chain=\"svc\"} ")
                    .is_some_and(|v| v.parse::<f64>().unwrap() >= 1.0)
            })
        },
    );

    // A second node's API sees the same block.
    let api1 = serve(&net.nodes[1], 64 * 1024);
    let other = get(
        api1.local_addr(),
        &format!("/v1/chains/svc/blocks/{height}"),
    )
    .json();
    assert_eq!(other["hash"], block["hash"]);
    api1.shutdown();
    api.shutdown();
}

#[test]
fn bad_input_gets_json_errors_with_stable_codes() {
    let net = network(1);
    let max = 4096;
    let api = serve(&net.nodes[0], max);
    let addr = api.local_addr();

    // Malformed JSON.
    let r = post(addr, "/v1/chains/svc/txs", b"{\"tx\": ");
    assert_eq!((r.status, r.error_code().as_str()), (400, "malformed_json"));
    // JSON without the field.
    let r = post(addr, "/v1/chains/svc/txs", b"{\"transaction\": \"00\"}");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    // Bad hex in the body and in the path.
    let r = post(addr, "/v1/chains/svc/txs", b"{\"tx\": \"zz\"}");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_hex"));
    let r = get(addr, "/v1/chains/svc/txs/not-hex");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_hex"));
    let r = get(addr, "/v1/chains/svc/state/xyz");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_hex"));
    // Hex that is no transaction.
    let r = post(addr, "/v1/chains/svc/txs", b"{\"tx\": \"00ff\"}");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "bad_transaction")
    );
    // A transaction for another chain than the path's.
    let who = SecretKey::from_seed(&[5; 32]);
    let r = submit_hex(addr, &net.main, &kv_tx(&net.side, &who, 0, "k", "v"));
    assert_eq!((r.status, r.error_code().as_str()), (400, "wrong_chain"));
    // A transaction with a broken signature.
    let mut bytes = kv_tx(&net.side, &who, 0, "k", "v").to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let body = serde_json::json!({ "tx": hex::encode(bytes) }).to_string();
    let r = post(addr, "/v1/chains/svc/txs", body.as_bytes());
    assert_eq!(r.status / 100, 4, "{}", String::from_utf8_lossy(&r.body));
    // Unknown chain, on every chain route.
    for path in [
        "/v1/chains/nosuch",
        "/v1/chains/nosuch/blocks/1",
        "/v1/chains/NOT_A_CHAIN_ID/blocks/1",
    ] {
        let r = get(addr, path);
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "unknown_chain"),
            "{path}"
        );
    }
    let r = submit_hex(
        addr,
        &ChainId::new("nosuch").unwrap(),
        &kv_tx(&ChainId::new("nosuch").unwrap(), &who, 0, "k", "v"),
    );
    assert_eq!((r.status, r.error_code().as_str()), (404, "unknown_chain"));
    // Unknown route and wrong method.
    let r = get(addr, "/v2/anything");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = post(addr, "/v1/status", b"{}");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (405, "method_not_allowed")
    );
    // Bad and missing heights, unknown transactions.
    let r = get(addr, "/v1/chains/svc/blocks/tall");
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_height"));
    let r = get(addr, "/v1/chains/svc/blocks/999999");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "block_not_found")
    );
    let unknown = "ab".repeat(32);
    let r = get(addr, &format!("/v1/chains/svc/txs/{unknown}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "unknown");
    let r = get(addr, &format!("/v1/chains/svc/txs/{unknown}/proof"));
    assert_eq!((r.status, r.error_code().as_str()), (404, "tx_not_found"));
    let r = get(
        addr,
        &format!("/v1/chains/svc/txs/{unknown}/cross-chain-proof"),
    );
    assert_eq!((r.status, r.error_code().as_str()), (404, "tx_not_found"));

    // Oversized bodies: a declared length over the limit, a real one, and
    // a chunked one; each is 413 with a JSON error.
    let big = vec![b' '; max + 1];
    let r = post(addr, "/v1/chains/svc/txs", &big);
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    let r = raw(
        addr,
        "POST /v1/chains/svc/txs HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000",
        b"{}",
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("{:x}\r\n", 2000).as_bytes());
        chunked.extend_from_slice(&[b' '; 2000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = raw(
        addr,
        "POST /v1/chains/svc/txs HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked",
        &chunked,
    );
    assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    // A chunked body within the limit is decoded and judged.
    let r = raw(
        addr,
        "POST /v1/chains/svc/txs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked",
        b"4\r\n{\"tx\r\n8\r\n\": \"zz\"}\r\n0\r\n\r\n",
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_hex"));
    // A body just under the limit is read (and is malformed JSON here).
    let r = post(addr, "/v1/chains/svc/txs", &vec![b'['; max]);
    assert_eq!((r.status, r.error_code().as_str()), (400, "malformed_json"));

    // The server still answers after all of that.
    assert_eq!(get(addr, "/v1/status").status, 200);
    api.shutdown();
}

#[test]
fn every_served_route_is_in_the_openapi_description() {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, pattern) in ROUTES {
        let op = &paths
            .get(*pattern)
            .unwrap_or_else(|| panic!("{pattern} is not in openapi.json"))
            [method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {pattern} is not in openapi.json");
        assert!(
            op["responses"].is_object(),
            "{method} {pattern} has no responses"
        );
    }
    // And nothing is documented that is not served.
    let served: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(served, ROUTES.len());

    // The server serves the same document.
    let net = network(1);
    let api = serve(&net.nodes[0], 4096);
    let r = get(api.local_addr(), "/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), doc);
    api.shutdown();
}

/// `tiny_http` 0.12 aborted the whole process on this request (it drains
/// unread bodies into `vec![0; declared length]`): the server must refuse
/// it without reading and keep serving.
#[test]
fn a_huge_declared_body_is_refused_without_reading_it() {
    let net = network(1);
    let api = serve(&net.nodes[0], 4096);
    let addr = api.local_addr();
    for path in ["/v1/status", "/v1/chains/svc/txs"] {
        let r = raw(
            addr,
            &format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999999999"),
            b"{}",
        );
        assert_eq!((r.status, r.error_code().as_str()), (413, "body_too_large"));
    }
    let r = raw(
        addr,
        "GET /v1/status HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999",
        b"",
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_request"));
    let r = raw(
        addr,
        &format!("GET /v1/status HTTP/1.1\r\nX: {}", "a".repeat(20_000)),
        b"",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (431, "header_too_large")
    );
    assert_eq!(get(addr, "/v1/status").status, 200);
    api.shutdown();
}
