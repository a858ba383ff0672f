//! The networked test of issue #6: `govchain genesis` writes a network of 4
//! departments, 4 `govchain run` processes talk over TCP on loopback, and
//! clients drive load through the HTTP API while one node at a time is
//! killed with SIGKILL and restarted. Afterwards every node holds the same
//! blocks (so the same state roots), and every transaction the API reported
//! committed is committed on every node. Then a fifth department is
//! registered and made a main-chain validator by governance votes sent
//! through the API; its node starts from an empty directory, syncs, and
//! signs main-chain blocks.
//!
//! Bounded: `GOVCHAIN_MP_KILLS` kills (default 3), each waiting for
//! progress with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::wait_for;
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_node::api::client::request;
use govchain_node::config::{load_key_file, public_key_hex, Genesis, NodeFile, PeerEntry};
use govchain_node::governance::{Action, Department, DepartmentId, GovernanceOp, ProposalId};

const SVC: &str = "svc";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A base port whose next `n` ports can be bound now.
fn free_base_port(n: u16) -> u16 {
    for attempt in 0..200u32 {
        let base = 20_000 + ((std::process::id() * 13 + attempt * 131) % 40_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free ports");
}

fn get(api: &str, path: &str) -> Option<serde_json::Value> {
    let r = request(api, "GET", path, None, Duration::from_secs(5)).ok()?;
    (r.status == 200).then(|| r.json().ok()).flatten()
}

fn post_tx(api: &str, chain: &str, tx: &Transaction) -> Option<u16> {
    let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes()) }).to_string();
    request(
        api,
        "POST",
        &format!("/v1/chains/{chain}/txs"),
        Some(body.as_bytes()),
        Duration::from_secs(5),
    )
    .ok()
    .map(|r| r.status)
}

fn height(api: &str, chain: &str) -> Option<u64> {
    get(api, &format!("/v1/chains/{chain}"))?["height"].as_u64()
}

fn committed(api: &str, chain: &str, id: &str) -> bool {
    get(api, &format!("/v1/chains/{chain}/txs/{id}")).is_some_and(|v| v["status"] == "committed")
}

/// The node processes, killed (SIGKILL) when dropped so a failing test
/// leaves nothing running.
struct Cluster {
    dir: PathBuf,
    configs: Vec<PathBuf>,
    apis: Vec<String>,
    children: Vec<Option<Child>>,
    starts: Vec<usize>,
}

impl Cluster {
    fn start(&mut self, i: usize) {
        self.starts[i] += 1;
        let log = std::fs::File::create(self.dir.join(format!(
            "node-{}-run-{}.log",
            i + 1,
            self.starts[i]
        )))
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_govchain"))
            .args(["run", "--config", s(&self.configs[i])])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            // The nodes' logs explain a failure.
            for i in 0..self.children.len() {
                let path = self
                    .dir
                    .join(format!("node-{}-run-{}.log", i + 1, self.starts[i]));
                let log = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- {}:", path.display());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Closed-loop clients: each submits one transaction at a time to a live
/// node, waits until that node's API reports it committed (resubmitting the
/// same transaction elsewhere after a timeout), and records it as
/// acknowledged.
fn load(
    client: u8,
    apis: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let chain = ChainId::new(SVC).unwrap();
    let key = SecretKey::from_seed(&[client; 32]);
    let mut nonce = 0u64;
    let mut turn = client as usize;
    while !stop.load(Ordering::Relaxed) {
        let tx = Transaction::new_signed(
            chain.clone(),
            &key,
            nonce,
            KvApp::payload(format!("c{client}-{nonce}").as_bytes(), b"v"),
        )
        .unwrap();
        let id = tx.id().to_string();
        let mut done = false;
        while !done && !stop.load(Ordering::Relaxed) {
            turn += 1;
            let api = {
                let apis = apis.lock().unwrap();
                apis[turn % apis.len()].clone()
            };
            // 202 accepted; 422 if this node already has it (pending or
            // committed): either way, watch it on that node.
            if !matches!(post_tx(&api, SVC, &tx), Some(202 | 422)) {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                if committed(&api, SVC, &id) {
                    acked.lock().unwrap().push(id.clone());
                    done = true;
                    break;
                }
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
        nonce += 1;
    }
}

#[test]
fn four_processes_survive_sigkills_under_load_and_a_fifth_joins_by_governance() {
    let kills: usize = std::env::var("GOVCHAIN_MP_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let base = free_base_port(10);
    let out = Command::new(env!("CARGO_BIN_EXE_govchain"))
        .args([
            "genesis",
            "--departments",
            "4",
            "--side-chain",
            &format!("{SVC}:bft"),
            // No anchors during the test: department keys' main-chain nonces
            // are the governance votes' alone.
            "--anchor-every",
            "1000000",
            "--base-port",
            &base.to_string(),
            "--out",
            s(&net),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cluster = Cluster {
        dir: dir.path().to_owned(),
        configs: (1..=4)
            .map(|i| net.join(format!("dept-{i}/node.toml")))
            .collect(),
        apis: (0..4)
            .map(|i| format!("127.0.0.1:{}", base + 2 * i + 1))
            .collect(),
        children: (0..4).map(|_| None).collect(),
        starts: vec![0; 4],
    };
    for i in 0..4 {
        cluster.start(i);
    }
    let apis = cluster.apis.clone();
    wait_for("4 nodes committing", Duration::from_secs(120), || {
        apis.iter().all(|a| height(a, SVC).is_some_and(|h| h >= 2))
    });

    // Load through the API while nodes are killed and restarted.
    let live_apis = Arc::new(Mutex::new(apis.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (1..=6u8)
        .map(|c| {
            let (a, s, k) = (live_apis.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || load(c + 100, a, s, k))
        })
        .collect();
    for round in 0..kills {
        let victim = round % 4;
        let survivors: Vec<String> = (0..4)
            .filter(|&i| i != victim)
            .map(|i| apis[i].clone())
            .collect();
        *live_apis.lock().unwrap() = survivors.clone();
        let before = height(&survivors[0], SVC).unwrap_or(0);
        cluster.kill(victim);
        println!(
            "round {round}: killed node {} at height {before}",
            victim + 1
        );
        wait_for(
            "progress without the victim",
            Duration::from_secs(120),
            || {
                survivors
                    .iter()
                    .all(|a| height(a, SVC).is_some_and(|h| h >= before + 3))
            },
        );
        cluster.start(victim);
        wait_for(
            "the victim back and caught up",
            Duration::from_secs(120),
            || {
                let target = height(&survivors[0], SVC).unwrap_or(u64::MAX);
                height(&apis[victim], SVC).is_some_and(|h| h + 2 >= target)
            },
        );
        *live_apis.lock().unwrap() = apis.clone();
        let n = acked.lock().unwrap().len();
        println!(
            "round {round}: node {} rejoined; {n} txs acknowledged",
            victim + 1
        );
    }
    let before = acked.lock().unwrap().len();
    wait_for(
        "more load after the last restart",
        Duration::from_secs(60),
        || acked.lock().unwrap().len() >= before + 6,
    );
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 6, "load made progress: {}", acked.len());

    // Agreement: same block hashes at every height on every node, and every
    // acknowledged transaction committed everywhere.
    let mut target = 0;
    wait_for("all nodes at one height", Duration::from_secs(60), || {
        target = apis
            .iter()
            .filter_map(|a| height(a, SVC))
            .min()
            .unwrap_or(0);
        target > 0
    });
    for h in 1..=target {
        let hashes: BTreeSet<String> = apis
            .iter()
            .map(|a| {
                get(a, &format!("/v1/chains/{SVC}/blocks/{h}")).unwrap()["hash"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(hashes.len(), 1, "height {h}: {hashes:?}");
    }
    for id in &acked {
        for a in &apis {
            wait_for(
                "an acknowledged tx on every node",
                Duration::from_secs(30),
                || committed(a, SVC, id),
            );
        }
    }
    println!(
        "{kills} SIGKILLs: {} acknowledged txs, {target} agreed blocks",
        acked.len()
    );

    // A fifth department: registered, then made a main-chain validator, by
    // votes of the founders sent through the API.
    let genesis = Genesis::load(&net.join("dept-1/genesis.toml")).unwrap();
    let main = genesis.main.clone();
    let founders: Vec<SecretKey> = (1..=4)
        .map(|i| load_key_file(&net.join(format!("dept-{i}/node.key"))).unwrap())
        .collect();
    let fifth_dir = net.join("dept-5");
    std::fs::create_dir_all(&fifth_dir).unwrap();
    let fifth_key = SecretKey::from_seed(&[55; 32]);
    govchain_node::config::write_key_file(
        &fifth_dir.join("node.key"),
        govchain_core::crypto::CryptoSuite::Ed25519Blake3,
        &[55; 32],
    )
    .unwrap();
    let fifth_id = DepartmentId::new("dept-5").unwrap();
    let gov = |who: usize, nonce: u64, op: GovernanceOp| {
        let tx =
            Transaction::new_signed(main.clone(), &founders[who], nonce, op.to_payload()).unwrap();
        let id = tx.id().to_string();
        assert_eq!(post_tx(&apis[who], main.as_str(), &tx), Some(202));
        wait_for("a governance tx committed", Duration::from_secs(60), || {
            committed(&apis[who], main.as_str(), &id)
        });
    };
    let m = height(&apis[0], main.as_str()).unwrap();
    gov(
        0,
        0,
        GovernanceOp::Propose {
            action: Action::RegisterDepartment {
                department: Department {
                    id: fifth_id.clone(),
                    name: "Department 5".into(),
                    node_key: fifth_key.public_key(),
                },
            },
            effective_height: Height::new(m + 10),
        },
    );
    for who in 1..3 {
        gov(
            who,
            0,
            GovernanceOp::Vote {
                proposal_id: ProposalId::new(1),
                approve: true,
            },
        );
    }
    // Its node: the founders' node file with its own key, ports and data.
    let mut node: NodeFile =
        toml::from_str(&std::fs::read_to_string(&cluster.configs[0]).unwrap()).unwrap();
    node.node.name = "dept-5".into();
    node.node.key_file = PathBuf::from("node.key");
    node.node.data_dir = PathBuf::from("data");
    node.node.genesis_file = net.join("dept-1/genesis.toml");
    node.node.p2p_listen = format!("127.0.0.1:{}", base + 8).parse().unwrap();
    node.node.api_listen = format!("127.0.0.1:{}", base + 9).parse().unwrap();
    node.peers = (0..4)
        .map(|i| PeerEntry {
            name: format!("dept-{}", i + 1),
            public_key: public_key_hex(&founders[i].public_key()),
            address: format!("127.0.0.1:{}", base + 2 * i as u16)
                .parse()
                .unwrap(),
        })
        .collect();
    let fifth_config = fifth_dir.join("node.toml");
    std::fs::write(&fifth_config, toml::to_string(&node).unwrap()).unwrap();
    cluster.configs.push(fifth_config);
    cluster.apis.push(format!("127.0.0.1:{}", base + 9));
    cluster.children.push(None);
    cluster.starts.push(0);
    cluster.start(4);
    let fifth_api = cluster.apis[4].clone();

    let m = height(&apis[0], main.as_str()).unwrap();
    let effective = m + 15;
    gov(
        1,
        1,
        GovernanceOp::Propose {
            action: Action::AddValidator {
                chain: main.clone(),
                key: fifth_key.public_key(),
                power: 1,
                department: fifth_id,
            },
            effective_height: Height::new(effective),
        },
    );
    gov(
        0,
        1,
        GovernanceOp::Vote {
            proposal_id: ProposalId::new(2),
            approve: true,
        },
    );
    // The third approval — the one that passes the change — comes from
    // the operator CLI, as a department's operator would cast it (the
    // nonce read from the node's state).
    let out = Command::new(env!("CARGO_BIN_EXE_govchain"))
        .args([
            "gov",
            "--api",
            &apis[3],
            "--chain",
            main.as_str(),
            "--key",
            s(&net.join("dept-4/node.key")),
            "--wait",
            "vote",
            "--proposal",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("(nonce 0)") && stdout.contains("committed at"),
        "govchain gov vote: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the fifth node synced past the change",
        Duration::from_secs(180),
        || height(&fifth_api, main.as_str()).is_some_and(|h| h >= effective + 3),
    );
    let fifth_hex = public_key_hex(&fifth_key.public_key());
    wait_for(
        "a main-chain block signed by the fifth department",
        Duration::from_secs(60),
        || {
            let top = height(&apis[0], main.as_str()).unwrap_or(0);
            (effective..=top).any(|h| {
                get(
                    &apis[0],
                    &format!("/v1/chains/{}/blocks/{h}", main.as_str()),
                )
                .is_some_and(|b| {
                    b["certificate"]["signatures"]
                        .as_array()
                        .is_some_and(|sigs| {
                            sigs.iter().any(|s| s["validator"] == fifth_hex.as_str())
                        })
                })
            })
        },
    );
    // Its copy of the main chain matches.
    let top = height(&fifth_api, main.as_str()).unwrap();
    for h in 1..=top {
        let path = format!("/v1/chains/{}/blocks/{h}", main.as_str());
        assert_eq!(
            get(&fifth_api, &path).unwrap()["hash"],
            get(&apis[0], &path).unwrap()["hash"],
            "main height {h}"
        );
    }

    // Governance removes it again: first as a validator, then from the
    // registry; every founder then refuses its connections.
    let m = height(&apis[0], main.as_str()).unwrap();
    let removed_at = m + 40;
    gov(
        2,
        1,
        GovernanceOp::Propose {
            action: Action::RemoveValidator {
                chain: main.clone(),
                key: fifth_key.public_key(),
            },
            effective_height: Height::new(removed_at),
        },
    );
    for (who, nonce) in [(0, 2), (1, 2), (3, 1)] {
        gov(
            who,
            nonce,
            GovernanceOp::Vote {
                proposal_id: ProposalId::new(3),
                approve: true,
            },
        );
    }
    wait_for("the removal in force", Duration::from_secs(60), || {
        height(&apis[0], main.as_str()).is_some_and(|h| h >= removed_at)
    });
    let m = height(&apis[0], main.as_str()).unwrap();
    gov(
        0,
        3,
        GovernanceOp::Propose {
            action: Action::RemoveDepartment {
                department: DepartmentId::new("dept-5").unwrap(),
            },
            effective_height: Height::new(m + 40),
        },
    );
    for (who, nonce) in [(1, 3), (3, 2)] {
        gov(
            who,
            nonce,
            GovernanceOp::Vote {
                proposal_id: ProposalId::new(4),
                approve: true,
            },
        );
    }
    wait_for(
        "the removed department disconnected",
        Duration::from_secs(60),
        || {
            get(&fifth_api, "/v1/status").is_some_and(|s| {
                s["peers"]
                    .as_array()
                    .is_some_and(|p| p.iter().all(|p| p["connected"] == false))
            })
        },
    );
    println!("the removed fifth department is disconnected");
}
