//! The government service chain demo.
//!
//! Four department nodes — the Data Resources Bureau, Public Security,
//! Civil Affairs, and Human Resources & Social Security — run in this
//! process on the embedded durable storage, connected by the in-process
//! transport. Together they run:
//! - the **main chain** (Tendermint), holding governance and side-chain
//!   checkpoint anchors;
//! - the **identity** side chain (Tendermint, all four departments), running
//!   the identity application of `govchain-identity`;
//! - the **services** side chain (Tendermint, all four departments) and the
//!   **social-security** side chain (Raft, three departments), running the
//!   `service_records` DApp.
//!
//! Service halls submit signed records (digests only — no personal data on
//! any ledger) to the services and social-security chains at `--tps`. Every second a progress line
//! shows each chain's height, committed tx/s and commit latency. While
//! under load, a fifth department (the Market Supervision Bureau) is voted
//! in as a main-chain validator by the four founders. Side chains anchor a
//! checkpoint on the main chain every few blocks. After the load, the
//! identity scenario runs on the identity chain: a provincial root
//! accredits the city bureau, which publishes a resident-identity schema and
//! issues credentials to `--citizens` synthetic citizens; a Civil Affairs
//! service hall verifies their presentations from proofs against headers
//! its light client verified; a revoked credential is refused and a key
//! rotation keeps earlier credentials valid. At the end the demo
//! builds a cross-chain proof for a record on each side chain and verifies
//! it with a fresh light client that trusts only the main chain's genesis
//! validators, and prints a summary. Any failure exits non-zero.
//!
//! With `--suite sm` every chain runs the Chinese national-standard suite
//! sm2-sm3: the departments', service halls', issuers' and citizens' keys
//! are SM2, and every hash (transactions, headers, Merkle and state trees,
//! credentials, disclosures, presentations) is SM3. The default is
//! ed25519-blake3. The output names the suite, and the demo checks that
//! every header it verifies is of it.
//!
//! Run: `cargo run --release --example service_chain -- [--suite ed25519|sm] [--duration SECS] [--tps N] [--citizens N] [--data-dir DIR]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, SecretKey, Signer, UnknownSuite};
use govchain_core::hash::{Domain, Hash};
use govchain_core::light::LightClient;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::{Validator, ValidatorSet};
use govchain_examples::identity_scenario::{self, IdentitySetup};
use govchain_examples::service_records::ServiceRecords;
use govchain_node::crosschain::CrossChainProof;
use govchain_node::governance::{
    self, Action, Department, DepartmentId, GenesisDepartment, GovernanceGenesis, GovernanceOp,
    ProposalId, ProposalStatus, SideChainSpec,
};
use govchain_node::{
    ChainSpec, CommitEvent, EngineKind, InProcessNetwork, Node, NodeConfig, NodeHandle, StorageKind,
};
use parking_lot::Mutex;

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const DEPARTMENTS: [(&str, &str); 5] = [
    ("drb", "Data Resources Bureau"),
    ("psb", "Public Security Bureau"),
    ("cab", "Civil Affairs Bureau"),
    ("hrss", "Human Resources & Social Security Bureau"),
    ("msb", "Market Supervision Bureau"),
];

struct Options {
    duration: u64,
    tps: u64,
    accounts: usize,
    citizens: usize,
    data_dir: Option<PathBuf>,
    suite: CryptoSuite,
}

/// The suite named on the command line: a suite's full name, or `sm` /
/// `ed25519` for short.
fn parse_suite(name: &str) -> Result<CryptoSuite, String> {
    match name {
        "sm" | "sm2" => Ok(CryptoSuite::Sm2Sm3),
        "ed25519" => Ok(CryptoSuite::Ed25519Blake3),
        full => full.parse().map_err(|e: UnknownSuite| e.to_string()),
    }
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options {
        duration: 40,
        tps: 1_500,
        accounts: 400,
        citizens: 2_000,
        data_dir: None,
        suite: CryptoSuite::Ed25519Blake3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--duration" => opts.duration = value("--duration")?.max(15),
            "--tps" => opts.tps = value("--tps")?.max(10),
            "--accounts" => opts.accounts = (value("--accounts")? as usize).max(1),
            "--citizens" => opts.citizens = (value("--citizens")? as usize).max(20),
            "--suite" => opts.suite = parse_suite(&args.next().ok_or("--suite needs a value")?)?,
            "--data-dir" => {
                opts.data_dir = Some(args.next().ok_or("--data-dir needs a value")?.into())
            }
            "-h" | "--help" => {
                println!(
                    "usage: service_chain [--suite ed25519|sm (default ed25519, i.e. ed25519-blake3; sm = sm2-sm3)] \
                     [--duration SECS (default 40, min 15)] [--tps N (default 1500)] \
                     [--accounts K per side chain (default 400)] [--citizens N (default 2000, min 20)] \
                     [--data-dir DIR (default: a fresh temporary directory)]"
                );
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Some(opts))
}

fn main() -> ExitCode {
    match parse_args() {
        Ok(Some(opts)) => match run(&opts) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("\nservice_chain FAILED: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service_chain: {e}");
            ExitCode::from(2)
        }
    }
}

/// A department's node key of `suite`'s algorithm, derived from its id so
/// runs are repeatable.
fn department_key(suite: CryptoSuite, id: &str) -> Arc<SecretKey> {
    Arc::new(SecretKey::from_seed_for(
        suite,
        Hash::of(Domain::Test, format!("department {id}").as_bytes()).as_bytes(),
    ))
}

fn set_of(keys: &[Arc<SecretKey>]) -> DemoResult<ValidatorSet> {
    Ok(ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                public_key: k.public_key(),
                power: 1,
            })
            .collect(),
    )?)
}

/// Commit statistics of one chain, fed by a subscriber.
#[derive(Default)]
struct ChainStats {
    committed: u64,
    latencies_ms: Vec<u32>,
    window_committed: u64,
    window_latencies: Vec<u32>,
}

#[derive(Default)]
struct Stats {
    submitted: HashMap<Hash, Instant>,
    chains: HashMap<ChainId, ChainStats>,
    refused: u64,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn start_node(
    net: &InProcessNetwork,
    index: usize,
    key: &Arc<SecretKey>,
    dir: &std::path::Path,
    chains: Vec<ChainSpec>,
) -> DemoResult<NodeHandle> {
    let mut cfg = NodeConfig::new(
        DEPARTMENTS[index].0,
        key.clone(),
        StorageKind::Durable(dir.join(DEPARTMENTS[index].0)),
    );
    cfg.chains = chains;
    let node = Node::start(cfg, net.transport(key.public_key()))?;
    net.register(key.public_key(), node.inbox());
    Ok(node)
}

/// The governance steps taken while under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Waiting,
    RegisterProposed,
    ValidatorProposed { effective: Height },
    Done { effective: Height },
}

fn proposal_status(
    node: &NodeHandle,
    main: &ChainId,
    id: u64,
) -> DemoResult<Option<ProposalStatus>> {
    Ok(node
        .read_state(main, |s| governance::proposal(s, ProposalId::new(id)))??
        .map(|p| p.status))
}

fn run(opts: &Options) -> DemoResult<()> {
    let temp;
    let data_dir = match &opts.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let keys: Vec<Arc<SecretKey>> = DEPARTMENTS
        .iter()
        .map(|(id, _)| department_key(opts.suite, id))
        .collect();
    let main = ChainId::new("hz-main")?;
    let identity = ChainId::new("hz-identity")?;
    let services = ChainId::new("hz-services")?;
    let social = ChainId::new("hz-social-security")?;
    let genesis = GovernanceGenesis {
        main_chain: main.clone(),
        departments: DEPARTMENTS[..4]
            .iter()
            .zip(&keys)
            .map(|((id, name), key)| {
                Ok(GenesisDepartment {
                    id: DepartmentId::new(*id)?,
                    name: (*name).to_owned(),
                    node_key: key.public_key(),
                    power: 1,
                    suite_keys: Vec::new(),
                })
            })
            .collect::<DemoResult<Vec<_>>>()?,
        side_chains: vec![
            SideChainSpec {
                chain_id: identity.clone(),
                engine: EngineKind::Bft,
                validators: set_of(&keys[..4])?,
                anchor_interval: 8,
            },
            SideChainSpec {
                chain_id: services.clone(),
                engine: EngineKind::Bft,
                validators: set_of(&keys[..4])?,
                anchor_interval: 8,
            },
            SideChainSpec {
                chain_id: social.clone(),
                engine: EngineKind::Raft,
                validators: set_of(&keys[..3])?,
                anchor_interval: 8,
            },
        ],
    };
    let main_spec = ChainSpec::main_chain(genesis.clone())?;
    let identity_setup = IdentitySetup::with_suite(
        opts.suite,
        keys[..4].iter().map(|k| k.public_key()).collect(),
    )?;
    let app = Arc::new(ServiceRecords);
    let side_spec = |n: usize| {
        let app = if n == 0 {
            identity_setup.app()
        } else {
            app.clone()
        };
        ChainSpec::side_chain(&genesis.side_chains[n], app)
    };
    println!(
        "govchain service chain demo — crypto suite {} on every chain — data in {}",
        opts.suite,
        data_dir.display()
    );
    println!("  main chain {main} (Tendermint): governance and anchors");
    println!("  side chains {identity} (Tendermint, identity application), {services} (Tendermint), {social} (Raft, 3 departments)");
    for (i, (_, name)) in DEPARTMENTS[..4].iter().enumerate() {
        println!("  department node: {name:<42} {}", keys[i].public_key());
    }

    let net = InProcessNetwork::new();
    let mut nodes = Vec::new();
    for (i, key) in keys[..4].iter().enumerate() {
        let mut chains = vec![main_spec.clone(), side_spec(0), side_spec(1)];
        if i < 3 {
            chains.push(side_spec(2));
        }
        nodes.push(start_node(&net, i, key, &data_dir, chains)?);
    }
    let nodes = Arc::new(Mutex::new(nodes));

    // Commit statistics from the Data Resources Bureau's node (it runs all
    // three chains).
    let stats = Arc::new(Mutex::new(Stats::default()));
    let events = nodes.lock()[0].subscribe(1 << 16);
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let stats = stats.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(event): Result<CommitEvent, _> =
                    events.recv_timeout(Duration::from_millis(100))
                else {
                    continue;
                };
                let now = Instant::now();
                let mut s = stats.lock();
                let mut lat = Vec::with_capacity(event.tx_ids.len());
                for id in event.tx_ids.iter() {
                    if let Some(t) = s.submitted.remove(id) {
                        lat.push(now.duration_since(t).as_millis() as u32);
                    }
                }
                let c = s.chains.entry(event.chain.clone()).or_default();
                c.committed += event.tx_ids.len() as u64;
                c.window_committed += event.tx_ids.len() as u64;
                c.latencies_ms.extend(&lat);
                c.window_latencies.extend(lat);
            }
        })
    };

    // Load: signed service records to the services and social-security
    // chains, spread over the nodes that run each chain.
    let load = {
        let nodes = nodes.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        let (services, social) = (services.clone(), social.clone());
        let tps = opts.tps;
        let accounts = opts.accounts;
        let suite = opts.suite;
        std::thread::spawn(move || -> DemoResult<u64> {
            let halls: Vec<SecretKey> = (0..accounts * 2)
                .map(|i| {
                    SecretKey::from_seed_for(
                        suite,
                        Hash::of(Domain::Test, format!("hall {i}").as_bytes()).as_bytes(),
                    )
                })
                .collect();
            let mut nonces = vec![0u64; halls.len()];
            let mut cursor = 0usize;
            let mut sent = 0u64;
            let started = Instant::now();
            let tick = Duration::from_millis(20);
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let due = (tps * started.elapsed().as_millis() as u64 / 1000).saturating_sub(sent);
                // One transaction per hall per batch, so a refused one never
                // leaves a nonce gap behind a later one.
                let n = (due as usize).min(accounts);
                for (c, chain) in [(0usize, &services), (1usize, &social)] {
                    let count = n / 2 + usize::from(c == 0) * (n % 2);
                    let mut txs = Vec::with_capacity(count);
                    let mut who = Vec::with_capacity(count);
                    for k in 0..count {
                        let hall = c * accounts + (cursor + k) % accounts;
                        let digest = Hash::of(
                            Domain::Test,
                            format!("case {hall}/{}", nonces[hall]).as_bytes(),
                        );
                        let service = if c == 0 {
                            "identity-check"
                        } else {
                            "pension-claim"
                        };
                        let payload = ServiceRecords::payload(service, &digest)?;
                        txs.push(Transaction::new_signed(
                            chain.clone(),
                            &halls[hall],
                            nonces[hall],
                            payload,
                        )?);
                        who.push(hall);
                        nonces[hall] += 1;
                    }
                    if txs.is_empty() {
                        continue;
                    }
                    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
                    {
                        let now = Instant::now();
                        let mut s = stats.lock();
                        for id in &ids {
                            s.submitted.insert(*id, now);
                        }
                    }
                    let members = if c == 0 { 4 } else { 3 };
                    let target = (round as usize) % members;
                    let results = nodes.lock()[target].submit(chain, txs)?;
                    let mut s = stats.lock();
                    for ((r, id), hall) in results.iter().zip(&ids).zip(&who) {
                        if r.is_err() {
                            s.refused += 1;
                            s.submitted.remove(id);
                            nonces[*hall] -= 1;
                        }
                    }
                    sent += count as u64;
                }
                cursor = (cursor + n) % accounts;
                std::thread::sleep(tick);
            }
            Ok(sent)
        })
    };

    // Progress, and governance under load.
    let started = Instant::now();
    let mut step = Step::Waiting;
    println!("\n  time | {main:>8} | {identity:>11} | {services:>34} | {social:>34} | governance");
    for second in 1..=opts.duration {
        let wake = started + Duration::from_secs(second);
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        let guard = nodes.lock();
        let node = &guard[0];
        let mut cols = Vec::new();
        for chain in [&services, &social] {
            let h = node.height(chain)?;
            let mut s = stats.lock();
            let c = s.chains.entry(chain.clone()).or_default();
            let mut w = std::mem::take(&mut c.window_latencies);
            w.sort_unstable();
            let rate = std::mem::take(&mut c.window_committed);
            cols.push(format!(
                "h{:>5} {:>6} tx/s p50 {:>4} ms",
                h.get(),
                rate,
                percentile(&w, 0.5)
            ));
        }
        let mh = node.height(&main)?;
        let ih = node.height(&identity)?;
        // Governance: at a quarter of the run the founders vote in the
        // Market Supervision Bureau.
        let note = match step {
            Step::Waiting if second >= opts.duration / 4 => {
                let dept = Department {
                    id: DepartmentId::new(DEPARTMENTS[4].0)?,
                    name: DEPARTMENTS[4].1.to_owned(),
                    node_key: keys[4].public_key(),
                };
                guard[0].submit_own(
                    &main,
                    GovernanceOp::Propose {
                        action: Action::RegisterDepartment { department: dept },
                        effective_height: Height::new(mh.get() + 10),
                    }
                    .to_payload(),
                )?;
                for n in &guard[1..3] {
                    n.submit_own(
                        &main,
                        GovernanceOp::Vote {
                            proposal_id: ProposalId::new(1),
                            approve: true,
                        }
                        .to_payload(),
                    )?;
                }
                step = Step::RegisterProposed;
                "register MSB: proposed, 2 votes sent".to_owned()
            }
            Step::RegisterProposed => match proposal_status(&guard[0], &main, 1)? {
                Some(ProposalStatus::Passed) => {
                    let effective = Height::new(mh.get() + 16);
                    guard[1].submit_own(
                        &main,
                        GovernanceOp::Propose {
                            action: Action::AddValidator {
                                chain: main.clone(),
                                key: keys[4].public_key(),
                                power: 1,
                                department: DepartmentId::new(DEPARTMENTS[4].0)?,
                            },
                            effective_height: effective,
                        }
                        .to_payload(),
                    )?;
                    for n in [&guard[0], &guard[3]] {
                        n.submit_own(
                            &main,
                            GovernanceOp::Vote {
                                proposal_id: ProposalId::new(2),
                                approve: true,
                            }
                            .to_payload(),
                        )?;
                    }
                    step = Step::ValidatorProposed { effective };
                    format!("MSB registered; validator from main h{effective}: proposed")
                }
                Some(ProposalStatus::Open) | None => "register MSB: voting".to_owned(),
                Some(other) => return Err(format!("registering MSB ended {other:?}").into()),
            },
            Step::ValidatorProposed { effective } => match proposal_status(&guard[0], &main, 2)? {
                Some(ProposalStatus::Passed) => {
                    step = Step::Done { effective };
                    format!("MSB validator change passed, effective at h{effective}")
                }
                Some(ProposalStatus::Open) | None => "add MSB validator: voting".to_owned(),
                Some(other) => return Err(format!("adding MSB ended {other:?}").into()),
            },
            Step::Done { effective } if mh >= effective => {
                format!("5 validators since h{effective}")
            }
            Step::Done { effective } => format!("MSB joins at h{effective}"),
            Step::Waiting => String::new(),
        };
        drop(guard);
        if step == Step::RegisterProposed && note.starts_with("register MSB: proposed") {
            // The fifth department's node starts now, as a main-chain
            // follower; it becomes a validator at the effective height.
            let node = start_node(&net, 4, &keys[4], &data_dir, vec![main_spec.clone()])?;
            nodes.lock().push(node);
        }
        println!(
            "{second:>5}s | h{:>7} | h{:>10} | {:>34} | {:>34} | {note}",
            mh.get(),
            ih.get(),
            cols[0],
            cols[1]
        );
        for n in nodes.lock().iter() {
            if let Some(fatal) = n.status().fatal {
                return Err(format!("node {} stopped: {fatal}", n.name()).into());
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = load.join().map_err(|_| "load thread panicked")??;
    let _ = collector.join();
    let nodes = std::mem::take(&mut *nodes.lock());

    // Checks.
    let Step::Done { effective } = step else {
        return Err(format!("the fifth department was not voted in (governance stopped at {step:?}); try a longer --duration").into());
    };
    let five = set_of(&keys)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes
        .iter()
        .any(|n| n.height(&main).map_or(true, |h| h <= effective))
    {
        if Instant::now() > deadline {
            return Err(format!(
                "main chain did not reach the effective height {effective} on every node"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in &nodes {
        let header = n.block(&main, effective)?.block.header;
        if header.validator_set_hash != five.hash() {
            return Err(format!(
                "{}: main block {effective} is not signed by the five-department set",
                n.name()
            )
            .into());
        }
    }
    for chain in [&main, &identity, &services, &social] {
        let holders: Vec<&NodeHandle> = nodes.iter().filter(|n| n.height(chain).is_ok()).collect();
        let common = holders
            .iter()
            .map(|n| n.height(chain))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .min()
            .unwrap_or(Height::new(0));
        for h in [1, common.get() / 2, common.get()]
            .into_iter()
            .filter(|h| *h > 0)
        {
            let reference = holders[0].block(chain, Height::new(h))?.block.hash();
            for n in &holders[1..] {
                if n.block(chain, Height::new(h))?.block.hash() != reference {
                    return Err(format!(
                        "{chain} forked at height {h} between {} and {}",
                        holders[0].name(),
                        n.name()
                    )
                    .into());
                }
            }
        }
    }

    // Identity: accreditation, schema, credentials, a service hall.
    println!(
        "\nidentity side chain {identity}: the identity scenario with {} citizens",
        opts.citizens
    );
    let identity_report = identity_scenario::run(
        &identity_setup,
        &nodes[0],
        &nodes[2],
        &identity,
        &genesis.side_chains[0].validators,
        main_spec.genesis_time,
        opts.citizens,
        &mut |line| println!("  {line}"),
    )?;
    println!("{identity_report}");
    identity_report.check()?;

    // Cross-chain proofs, verified by a light client that trusts only the
    // main chain's genesis validators and follows main headers from the
    // newest department's node.
    println!("\ncross-chain proofs (side-chain record → anchored side header → main-chain state → main header):");
    let mut proof_rows = Vec::new();
    for (chain, prover) in [(&identity, 1usize), (&services, 3usize), (&social, 2usize)] {
        // The newest anchored block that holds a transaction (the identity
        // chain's scenario may need a few more blocks to be anchored).
        let deadline = Instant::now() + Duration::from_secs(30);
        let tx = loop {
            let anchored =
                nodes[0].read_state(&main, |s| governance::latest_anchor(s, chain))??;
            let mut found = None;
            if let Some(a) = anchored {
                for h in (1..=a.height.get()).rev().take(64) {
                    if let Some(tx) = nodes[prover]
                        .block(chain, Height::new(h))?
                        .block
                        .transactions
                        .first()
                    {
                        found = Some(tx.clone());
                        break;
                    }
                }
            }
            match found {
                Some(tx) => break tx,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                None => return Err(format!("{chain}: no anchored block with a transaction").into()),
            }
        };
        let proof = nodes[prover].cross_chain_tx_proof(chain, &tx.id())?;
        let bytes = proof.to_bytes();
        let main_height = proof.main.header.height;
        let mut client =
            LightClient::from_genesis(main.clone(), set_of(&keys[..4])?, main_spec.genesis_time);
        for h in 1..main_height.get() {
            client.verify(&nodes[4].light_block(&main, Height::new(h))?)?;
        }
        let decoded = CrossChainProof::decode(&bytes)?;
        if client.suite() != opts.suite
            || decoded.side_header.suite != opts.suite
            || decoded.main.header.suite != opts.suite
        {
            return Err(format!(
                "{chain}: headers of suite {} / {} on a {} demo",
                decoded.side_header.suite, decoded.main.header.suite, opts.suite
            )
            .into());
        }
        let t = Instant::now();
        let fact = decoded.verify(&mut client.clone())?;
        let took = t.elapsed();
        let mut tampered = decoded.clone();
        tampered.side_header.time =
            govchain_core::types::Timestamp::new(tampered.side_header.time.get() ^ 1);
        let caught = match tampered.verify(&mut client.clone()) {
            Err(e) => e.to_string(),
            Ok(_) => return Err("a tampered cross-chain proof verified".into()),
        };
        println!(
            "  {chain}: record at side h{} anchored at h{} → main h{}: verified in {:.2} ms, {} bytes; tampered side header refused: {caught}",
            fact.side_height,
            fact.anchored_height,
            fact.main_height,
            took.as_secs_f64() * 1e3,
            bytes.len()
        );
        proof_rows.push((chain.clone(), bytes.len(), took));
    }

    // Summary.
    let elapsed = started.elapsed().as_secs_f64();
    let s = stats.lock();
    println!(
        "\nsummary after {elapsed:.0} s ({sent} transactions submitted, {} refused by mempools):",
        s.refused
    );
    println!(
        "  {:<22} {:<10} {:>10} {:>8} {:>10} {:>8} {:>8} {:>8}",
        "chain", "engine", "validators", "height", "load tx", "tx/s", "p50 ms", "p99 ms"
    );
    for (chain, engine, validators) in [
        (&main, "Tendermint", 5),
        (&identity, "Tendermint", 4),
        (&services, "Tendermint", 4),
        (&social, "Raft", 3),
    ] {
        let empty = ChainStats::default();
        let c = s.chains.get(chain).unwrap_or(&empty);
        let mut l = c.latencies_ms.clone();
        l.sort_unstable();
        let ms = |p: f64| {
            if l.is_empty() {
                "-".to_owned()
            } else {
                percentile(&l, p).to_string()
            }
        };
        println!(
            "  {:<22} {:<10} {:>10} {:>8} {:>10} {:>8.0} {:>8} {:>8}",
            chain.as_str(),
            engine,
            validators,
            nodes[0].height(chain)?.get(),
            c.committed,
            c.committed as f64 / elapsed,
            ms(0.5),
            ms(0.99)
        );
    }
    drop(s);
    println!(
        "  (the load goes to {services} and {social}; {main} carries governance and anchors, \
         {identity} the identity records above)"
    );
    for n in nodes {
        let name = n.name().to_owned();
        n.stop().map_err(|e| format!("stopping {name}: {e}"))?;
    }
    println!(
        "\nall checks passed ({}): agreement on every chain, fifth department signing from main h{effective}, \
         identity verification ({:.0} presentations/s), cross-chain proofs verified",
        opts.suite, identity_report.verify_per_s
    );
    Ok(())
}
