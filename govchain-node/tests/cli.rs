//! The `govchain` binary, run as a separate process: `keygen`, `genesis`,
//! `status`, `prove`/`verify` (including tampered proofs and wrong trusted
//! sets being refused) and `inspect` of a data directory written by a short
//! in-process run of the network `genesis` described (including a corrupted
//! directory being refused with the height and the check named).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::wait_for;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::ChainId;
use govchain_node::api::{Api, ApiConfig};
use govchain_node::config::{load_key_file, NodeSettings};
use govchain_node::{InProcessNetwork, Node, NodeHandle};

fn govchain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_govchain"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = govchain(args);
    assert!(
        out.status.success(),
        "govchain {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its standard error.
fn fails(args: &[&str]) -> String {
    let out = govchain(args);
    assert!(
        !out.status.success(),
        "govchain {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn keygen_writes_a_private_key_and_prints_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let printed = ok(&["keygen", "--out", s(&path)]);
    let printed = printed.trim();
    assert_eq!(printed.len(), 64, "{printed}");
    let key = load_key_file(&path).unwrap();
    assert_eq!(hex::encode(key.public_key().raw_bytes()), printed);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Never overwrites.
    let err = fails(&["keygen", "--out", s(&path)]);
    assert!(err.contains("already exists"), "{err}");
    // A second key is another key.
    let other = ok(&["keygen", "--out", s(&dir.path().join("b.key"))]);
    assert_ne!(other.trim(), printed);
}

#[test]
fn genesis_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let err = fails(&[
        "genesis",
        "--departments",
        "2",
        "--side-chain",
        "svc:pbft",
        "--out",
        s(&out),
    ]);
    assert!(
        err.contains("--side-chain") && err.contains("pbft"),
        "{err}"
    );
    let err = fails(&["genesis", "--departments", "0", "--out", s(&out)]);
    assert!(err.contains("departments"), "{err}");
    let err = fails(&[
        "genesis",
        "--departments",
        "2",
        "--side-chain",
        "Bad_Name:bft",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--side-chain"), "{err}");
}

#[test]
fn keygen_and_genesis_take_a_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sm.key");
    let printed = ok(&["keygen", "--suite", "sm2-sm3", "--out", s(&path)]);
    let printed = printed.trim();
    assert!(
        printed.starts_with("sm2:") && printed.len() == 4 + 66,
        "{printed}"
    );
    let key = load_key_file(&path).unwrap();
    assert_eq!(
        govchain_node::config::public_key_hex(&key.public_key()),
        printed
    );
    let err = fails(&[
        "keygen",
        "--suite",
        "sm9",
        "--out",
        s(&dir.path().join("x.key")),
    ]);
    assert!(err.contains("sm9"), "{err}");
    let out = dir.path().join("net");
    ok(&[
        "genesis",
        "--suite",
        "sm2-sm3",
        "--departments",
        "2",
        "--side-chain",
        "svc:bft",
        "--out",
        s(&out),
    ]);
    let settings = NodeSettings::load(&out.join("dept-1/node.toml")).unwrap();
    assert_eq!(
        settings.genesis.suite,
        govchain_core::crypto::CryptoSuite::Sm2Sm3
    );
    assert_eq!(
        settings.load_key().unwrap().algorithm(),
        govchain_core::crypto::SignatureAlgorithm::Sm2
    );
}

#[test]
fn genesis_writes_a_side_chain_of_another_suite() {
    use govchain_core::crypto::CryptoSuite;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let err = fails(&[
        "genesis",
        "--departments",
        "2",
        "--side-chain",
        "svc:bft:sm9",
        "--out",
        s(&out),
    ]);
    assert!(err.contains("--side-chain") && err.contains("sm9"), "{err}");
    ok(&[
        "genesis",
        "--departments",
        "3",
        "--side-chain",
        "registry:bft:sm2-sm3",
        "--side-chain",
        "svc:raft",
        "--out",
        s(&out),
    ]);
    for i in 1..=3 {
        let settings = NodeSettings::load(&out.join(format!("dept-{i}/node.toml"))).unwrap();
        assert_eq!(settings.genesis.suite, CryptoSuite::Ed25519Blake3);
        let chain = |id: &str| {
            settings
                .genesis
                .chain(&ChainId::new(id).unwrap())
                .unwrap()
                .validators
                .suite()
        };
        assert_eq!(chain("registry"), CryptoSuite::Sm2Sm3);
        assert_eq!(chain("svc"), CryptoSuite::Ed25519Blake3);
        let suite_keys = settings.load_suite_keys().unwrap();
        assert_eq!(suite_keys.len(), 1);
        assert_eq!(
            suite_keys[0].algorithm(),
            govchain_core::crypto::SignatureAlgorithm::Sm2
        );
        assert!(out.join(format!("dept-{i}/node.sm2-sm3.key")).exists());
    }
}

/// A network described by `govchain genesis`, run in process.
struct Running {
    dir: tempfile::TempDir,
    depts: Vec<PathBuf>,
    nodes: Vec<Arc<NodeHandle>>,
    _net: InProcessNetwork,
}

fn start_network() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let printed = ok(&[
        "genesis",
        "--departments",
        "3",
        "--side-chain",
        "svc:bft",
        "--side-chain",
        "soc:raft",
        "--anchor-every",
        "2",
        "--base-port",
        "41000",
        "--out",
        s(&out),
    ]);
    assert_eq!(printed.lines().count(), 4, "{printed}");
    let depts: Vec<PathBuf> = (1..=3).map(|i| out.join(format!("dept-{i}"))).collect();
    let reference = std::fs::read(out.join("genesis.toml")).unwrap();
    for d in &depts {
        assert_eq!(std::fs::read(d.join("genesis.toml")).unwrap(), reference);
    }
    let net = InProcessNetwork::new();
    let nodes = depts
        .iter()
        .map(|d| {
            let settings = NodeSettings::load(&d.join("node.toml")).unwrap();
            let key = settings.load_key().unwrap();
            let config = settings.durable_node_config(key.clone()).unwrap();
            assert_eq!(config.chains.len(), 3);
            let node = Node::start(config, net.transport(key.public_key())).unwrap();
            net.register(key.public_key(), node.inbox());
            Arc::new(node)
        })
        .collect();
    Running {
        dir,
        depts,
        nodes,
        _net: net,
    }
}

fn kv(chain: &ChainId, who: &SecretKey, nonce: u64, key: &str) -> Transaction {
    Transaction::new_signed(
        chain.clone(),
        who,
        nonce,
        KvApp::payload(key.as_bytes(), b"granted"),
    )
    .unwrap()
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn prove_verify_status_and_inspect_against_a_real_run() {
    let run = start_network();
    let svc = ChainId::new("svc").unwrap();
    let soc = ChainId::new("soc").unwrap();
    let citizen = SecretKey::from_seed(&[42; 32]);
    let mut ids = Vec::new();
    for (chain, node) in [(&svc, 0usize), (&soc, 1usize)] {
        for n in 0..3u64 {
            let tx = kv(chain, &citizen, n, &format!("permit-{n}"));
            ids.push((chain.clone(), tx.id()));
            run.nodes[node]
                .submit(chain, vec![tx])
                .unwrap()
                .remove(0)
                .unwrap();
        }
    }
    let node = run.nodes[0].clone();
    wait_for(
        "every tx committed and anchored",
        Duration::from_secs(90),
        || {
            ids.iter().all(|(c, id)| {
                node.find_transaction(c, id).unwrap().is_some()
                    && node.cross_chain_tx_proof(c, id).is_ok()
            })
        },
    );
    let api = Api::start(
        "127.0.0.1:0".parse().unwrap(),
        node.clone(),
        ApiConfig::default(),
    )
    .unwrap();
    let addr = api.local_addr().to_string();
    let trusted = run.dir.path().join("net").join("trusted");
    let trusted_of = |c: &str| trusted.join(format!("{c}.json"));
    let work = run.dir.path().join("proofs");
    std::fs::create_dir_all(&work).unwrap();

    // status
    let status = ok(&["status", "--api", &addr]);
    for chain in ["main", "svc", "soc"] {
        assert!(status.contains(chain), "{status}");
    }
    assert!(status.contains("node dept-1"), "{status}");

    // prove tx + verify, on a BFT and on a Raft chain.
    for (chain, id) in [&ids[0], &ids[3]] {
        let file = work.join(format!("{chain}.tx"));
        ok(&[
            "prove",
            "tx",
            "--api",
            &addr,
            "--chain",
            chain.as_str(),
            "--tx-id",
            &id.to_string(),
            "--out",
            s(&file),
        ]);
        let verified = ok(&[
            "verify",
            "--proof",
            s(&file),
            "--trusted-set",
            s(&trusted_of(chain.as_str())),
        ]);
        assert!(
            verified.starts_with("VERIFIED transaction proof"),
            "{verified}"
        );
        assert!(verified.contains(&id.to_string()), "{verified}");
        // The wrong trusted set is refused.
        let err = fails(&[
            "verify",
            "--proof",
            s(&file),
            "--trusted-set",
            s(&trusted_of("main")),
        ]);
        assert!(err.contains("error:"), "{err}");
        // Every tampered copy is refused (decode or verification).
        let len = std::fs::metadata(&file).unwrap().len() as usize;
        for at in [7, len / 3, len / 2, len - 40, len - 1] {
            let bad = work.join(format!("{chain}-{at}.tx"));
            std::fs::copy(&file, &bad).unwrap();
            flip_byte(&bad, at);
            let err = fails(&[
                "verify",
                "--proof",
                s(&bad),
                "--trusted-set",
                s(&trusted_of(chain.as_str())),
            ]);
            assert!(err.starts_with("error:"), "byte {at}: {err}");
        }
    }

    // prove state + verify.
    let file = work.join("svc.state");
    ok(&[
        "prove",
        "state",
        "--api",
        &addr,
        "--chain",
        "svc",
        "--kv-key",
        "permit-1",
        "--out",
        s(&file),
    ]);
    let verified = ok(&[
        "verify",
        "--proof",
        s(&file),
        "--trusted-set",
        s(&trusted_of("svc")),
    ]);
    assert!(
        verified.contains("\"kv/permit-1\" holds \"granted\""),
        "{verified}"
    );
    flip_byte(&file, 60);
    fails(&[
        "verify",
        "--proof",
        s(&file),
        "--trusted-set",
        s(&trusted_of("svc")),
    ]);

    // prove cross-chain + verify from the main chain's set only.
    let (chain, id) = &ids[4];
    let file = work.join("soc.xchain");
    ok(&[
        "prove",
        "cross-chain",
        "--api",
        &addr,
        "--chain",
        chain.as_str(),
        "--tx-id",
        &id.to_string(),
        "--out",
        s(&file),
    ]);
    let verified = ok(&[
        "verify",
        "--proof",
        s(&file),
        "--trusted-set",
        s(&trusted_of("main")),
    ]);
    assert!(verified.contains("is on side chain soc"), "{verified}");
    fails(&[
        "verify",
        "--proof",
        s(&file),
        "--trusted-set",
        s(&trusted_of("soc")),
    ]);
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    flip_byte(&file, len / 2);
    fails(&[
        "verify",
        "--proof",
        s(&file),
        "--trusted-set",
        s(&trusted_of("main")),
    ]);

    // An unknown transaction: the API's error reaches the operator.
    let err = fails(&[
        "prove",
        "tx",
        "--api",
        &addr,
        "--chain",
        "svc",
        "--tx-id",
        &"ab".repeat(32),
        "--out",
        s(&work.join("none")),
    ]);
    assert!(err.contains("tx_not_found"), "{err}");

    // Stop everything; inspect the first department's data directory.
    api.shutdown();
    let Running {
        dir, depts, nodes, ..
    } = run;
    drop(node);
    for n in nodes {
        Arc::try_unwrap(n).unwrap().stop().unwrap();
    }
    let err = fails(&["status", "--api", &addr]);
    assert!(err.contains("API request failed"), "{err}");

    let data = depts[0].join("data");
    let config = depts[0].join("node.toml");
    let report = ok(&["inspect", "--data-dir", s(&data), "--config", s(&config)]);
    for chain in ["chain main (bft)", "chain svc (bft)", "chain soc (raft)"] {
        assert!(report.contains(chain), "{report}");
    }
    let total: u64 = report
        .lines()
        .find_map(|l| l.strip_prefix("OK: 3 chain(s), "))
        .unwrap_or_else(|| panic!("{report}"))
        .split(", ")
        .nth(1)
        .unwrap()
        .trim_end_matches(" txs verified")
        .parse()
        .unwrap();
    // Six service records plus governance anchors.
    assert!(total >= 6, "{report}");
    // Without --config the main chain's governance state supplies the sets.
    ok(&["inspect", "--data-dir", s(&data)]);

    // A side chain alone, checked against another network's genesis: the
    // first header names a set the config does not trust.
    let other = dir.path().join("other");
    ok(&[
        "genesis",
        "--departments",
        "3",
        "--side-chain",
        "svc:bft",
        "--out",
        s(&other),
    ]);
    let lonely = dir.path().join("lonely");
    copy_dir(&data.join("svc"), &lonely.join("svc"));
    let err = fails(&[
        "inspect",
        "--data-dir",
        s(&lonely),
        "--config",
        s(&other.join("dept-1/node.toml")),
    ]);
    assert!(
        err.contains("chain svc height 1: check validator-set failed"),
        "{err}"
    );
    // And with no trust at all it says so.
    let err = fails(&["inspect", "--data-dir", s(&lonely)]);
    assert!(err.contains("no validator set known"), "{err}");

    // A corrupted block in the middle of the log is found and named.
    let segment = std::fs::read_dir(data.join("svc").join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len() as usize;
    flip_byte(&segment, len / 2);
    let err = fails(&["inspect", "--data-dir", s(&data), "--config", s(&config)]);
    assert!(
        err.contains("chain svc height") && err.contains("check read failed"),
        "{err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Kills (SIGKILL) the children it holds when dropped, so a failing test
/// leaves no node running.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A base port whose next six ports can be bound now.
fn free_base_port() -> u16 {
    for attempt in 0..200u32 {
        let base = 20_000 + ((std::process::id() * 7 + attempt * 97) % 40_000) as u16;
        let ok = (0..6).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if ok {
            return base;
        }
    }
    panic!("no free ports");
}

fn api_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    let r = govchain_node::api::client::request(addr, "GET", path, None, Duration::from_secs(5))
        .ok()?;
    (r.status == 200).then(|| r.json().ok()).flatten()
}

#[test]
fn three_govchain_run_processes_commit_over_tcp_and_stop_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net");
    let base = free_base_port();
    ok(&[
        "genesis",
        "--departments",
        "3",
        "--side-chain",
        "svc:bft",
        "--anchor-every",
        "2",
        "--base-port",
        &base.to_string(),
        "--out",
        s(&out),
    ]);
    let mut children = Children(Vec::new());
    for i in 1..=3 {
        let log = std::fs::File::create(dir.path().join(format!("dept-{i}.log"))).unwrap();
        children.0.push(
            Command::new(env!("CARGO_BIN_EXE_govchain"))
                .args([
                    "run",
                    "--config",
                    s(&out.join(format!("dept-{i}/node.toml"))),
                ])
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    let apis: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", base + 2 * i + 1))
        .collect();
    wait_for(
        "three nodes connected and committing",
        Duration::from_secs(90),
        || {
            apis.iter().all(|a| {
                api_json(a, "/v1/status").is_some_and(|s| {
                    let connected = s["peers"]
                        .as_array()
                        .map_or(0, |p| p.iter().filter(|p| p["connected"] == true).count());
                    connected == 2 && s["chains"][1]["height"].as_u64().unwrap_or(0) >= 2
                })
            })
        },
    );

    // A transaction submitted to one node commits on another, over TCP.
    let svc = ChainId::new("svc").unwrap();
    let tx = kv(&svc, &SecretKey::from_seed(&[8; 32]), 0, "over-tcp");
    let body =
        serde_json::json!({ "tx": hex::encode(govchain_core::codec::Encode::to_bytes(&tx)) })
            .to_string();
    let r = govchain_node::api::client::request(
        &apis[1],
        "POST",
        "/v1/chains/svc/txs",
        Some(body.as_bytes()),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    let id = tx.id().to_string();
    wait_for(
        "the tx committed on dept-3",
        Duration::from_secs(60),
        || {
            api_json(&apis[2], &format!("/v1/chains/svc/txs/{id}"))
                .is_some_and(|v| v["status"] == "committed")
        },
    );
    // ... and is provable across chains from dept-1.
    let xpath = format!("/v1/chains/svc/txs/{id}/cross-chain-proof");
    wait_for("an anchor covering it", Duration::from_secs(60), || {
        api_json(&apis[0], &xpath).is_some()
    });
    let proof = dir.path().join("x.proof");
    ok(&[
        "prove",
        "cross-chain",
        "--api",
        &apis[0],
        "--chain",
        "svc",
        "--tx-id",
        &id,
        "--out",
        s(&proof),
    ]);
    let verified = ok(&[
        "verify",
        "--proof",
        s(&proof),
        "--trusted-set",
        s(&out.join("trusted/main.json")),
    ]);
    assert!(verified.contains(&id), "{verified}");
    let metrics = govchain_node::api::client::request(
        &apis[0],
        "GET",
        "/metrics",
        None,
        Duration::from_secs(5),
    )
    .unwrap()
    .text();
    assert!(metrics.contains("govchain_peers_connected 2"), "{metrics}");

    // SIGTERM: every node stops cleanly (exit status 0).
    for c in &children.0 {
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    for (i, c) in children.0.iter_mut().enumerate() {
        let mut exit = None;
        wait_for("the node to exit", Duration::from_secs(30), || {
            exit = c.try_wait().unwrap();
            exit.is_some()
        });
        let log = std::fs::read_to_string(dir.path().join(format!("dept-{}.log", i + 1))).unwrap();
        assert!(
            exit.unwrap().success(),
            "dept-{} exited {exit:?}:\n{log}",
            i + 1
        );
        assert!(
            log.contains("signal received; stopping") && log.contains("stopped"),
            "{log}"
        );
    }
    // The data each left behind verifies.
    for i in 1..=3 {
        let d = out.join(format!("dept-{i}"));
        let report = ok(&[
            "inspect",
            "--data-dir",
            s(&d.join("data")),
            "--config",
            s(&d.join("node.toml")),
        ]);
        assert!(report.contains("OK: 2 chain(s)"), "{report}");
    }
}
