//! The government service chain demo.
//!
//! Four department nodes (the Data Resources Bureau, Public Security, Civil
//! Affairs, and Human Resources & Social Security) validate a main chain.
//! Service accounts submit signed transactions that record service events
//! (digests only: no personal data goes on a ledger). Halfway through, a fifth
//! department joins the validator set. At the end a fresh light client, which
//! trusts nothing but the genesis validator set, verifies every header and
//! then checks a transaction proof, a state proof, a non-membership proof and
//! an ancestor proof.
//!
//! Every block is persisted, with its certificate and state batch, in the
//! embedded default store (`govchain-storage`'s durable block log + redb) in
//! `--data-dir` or a fresh temporary directory; the demo then reopens the
//! store as a restarted node would (recovery and the state-root check) and
//! reads blocks back byte for byte.
//!
//! Blocks are certified by all validators in one process (the core testkit);
//! the consensus engines and the networked node land with their own issues,
//! and the demo grows with them.
//!
//! Run: `cargo run --release --example service_chain -- [--blocks N] [--txs-per-block M] [--data-dir DIR]`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::{Domain, Hash};
use govchain_core::light::LightClient;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_storage::{BlockStore, DurableConfig, DurableStore, StateStore};

const DEPARTMENTS: [&str; 5] = [
    "Data Resources Bureau",
    "Public Security Bureau",
    "Civil Affairs Bureau",
    "Human Resources & Social Security Bureau",
    "Market Supervision Bureau",
];

struct Options {
    blocks: u64,
    txs_per_block: usize,
    accounts: usize,
    data_dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Option<Options>, String> {
    let mut opts = Options {
        blocks: 200,
        txs_per_block: 500,
        accounts: 64,
        data_dir: None,
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
            "--blocks" => opts.blocks = value("--blocks")?.max(4),
            "--txs-per-block" => opts.txs_per_block = value("--txs-per-block")? as usize,
            "--accounts" => opts.accounts = (value("--accounts")? as usize).max(1),
            "--data-dir" => {
                opts.data_dir = Some(args.next().ok_or("--data-dir needs a value")?.into())
            }
            "-h" | "--help" => {
                println!("usage: service_chain [--blocks N (default 200)] [--txs-per-block M (default 500)] [--accounts K (default 64)] [--data-dir DIR (default: a fresh temporary directory)]");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(Some(opts))
}

/// A department's consensus key, derived from its name so runs are repeatable.
fn department_key(name: &str) -> SecretKey {
    SecretKey::from_seed(Hash::of(Domain::Test, name.as_bytes()).as_bytes())
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

fn run(opts: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let chain = ChainId::new("hz-gov-main")?;
    let founders: Vec<SecretKey> = DEPARTMENTS[..4].iter().map(|d| department_key(d)).collect();
    println!("govchain service chain demo — chain {chain}");
    for d in &DEPARTMENTS[..4] {
        println!("  validator: {d:<42} {}", department_key(d).public_key());
    }
    let mut builder = ChainBuilder::new(
        chain.clone(),
        KvApp,
        founders,
        Timestamp::new(1_700_000_000_000),
    )?;
    let temp;
    let data_dir = match &opts.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().join("hz-gov-main")
        }
    };
    let store = DurableStore::open(&data_dir, chain.clone(), DurableConfig::default())?;
    if store.latest_height()?.get() != 0 {
        return Err(format!(
            "{} already holds a chain; pass an empty --data-dir",
            data_dir.display()
        )
        .into());
    }
    println!(
        "  storage:   durable block log + redb in {}",
        data_dir.display()
    );
    let accounts: Vec<SecretKey> = (0..opts.accounts)
        .map(|i| {
            SecretKey::from_seed(
                Hash::of(Domain::Test, format!("service account {i}").as_bytes()).as_bytes(),
            )
        })
        .collect();
    let mut nonces = vec![0u64; accounts.len()];
    let join_at = opts.blocks / 2;

    println!(
        "\nproducing {} blocks of {} signed transactions ({} service accounts)…",
        opts.blocks, opts.txs_per_block, opts.accounts
    );
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut total_txs = 0usize;
    let mut sign_time = Duration::ZERO;
    let mut persist_time = Duration::ZERO;
    for h in 1..=opts.blocks {
        if h == join_at {
            let mut next: Vec<SecretKey> = DEPARTMENTS.iter().map(|d| department_key(d)).collect();
            next.truncate(5);
            builder.change_validators(next)?;
            println!(
                "  height {h:>5}: governance adds '{}' as the fifth validator (signs from height {})",
                DEPARTMENTS[4],
                h + 1
            );
        }
        let t = Instant::now();
        let txs: Vec<Transaction> = (0..opts.txs_per_block)
            .map(|i| {
                let a = (h as usize * 7919 + i) % accounts.len();
                let nonce = nonces[a];
                nonces[a] += 1;
                // A service event: the record key and a digest of the case
                // file, never the case file itself.
                let record = format!("case/{h}/{i}");
                let digest = Hash::of(Domain::Test, record.as_bytes());
                Transaction::new_signed(
                    chain.clone(),
                    &accounts[a],
                    nonce,
                    KvApp::payload(record.as_bytes(), digest.as_bytes()),
                )
            })
            .collect::<Result<_, _>>()?;
        sign_time += t.elapsed();
        total_txs += txs.len();
        let committed =
            builder.produce_block(txs, Timestamp::new(1_700_000_000_000 + h * 1_000))?;
        let t = Instant::now();
        store.append(
            &committed.block,
            &committed.light.certificate,
            committed.state_batch.clone(),
        )?;
        persist_time += t.elapsed();
        if last_report.elapsed() >= Duration::from_secs(1) || h == opts.blocks {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  height {h:>5}/{:<5} txs {total_txs:>8}  {:>9.0} tx/s (incl. signing)  validators {}",
                opts.blocks,
                total_txs as f64 / secs,
                builder.validator_set().len()
            );
            last_report = Instant::now();
        }
    }
    let build_secs = started.elapsed().as_secs_f64();

    println!("\nrestarting from disk: the store recovers, checks the state root at its height, and serves blocks back…");
    drop(store);
    let t = Instant::now();
    let store = DurableStore::open(&data_dir, chain.clone(), DurableConfig::default())?;
    let reopen_ms = t.elapsed().as_secs_f64() * 1e3;
    let stored_height = store.latest_height()?;
    if stored_height != builder.height() {
        return Err(format!(
            "store recovered height {stored_height}, expected {}",
            builder.height()
        )
        .into());
    }
    for committed in builder
        .blocks()
        .iter()
        .step_by(17)
        .chain(builder.blocks().last())
    {
        let h = committed.block.header.height;
        let stored = store
            .block(h)?
            .ok_or_else(|| format!("block {h} missing from the store"))?;
        if stored.block.to_bytes() != committed.block.to_bytes()
            || stored.certificate.to_bytes() != committed.light.certificate.to_bytes()
        {
            return Err(format!("block {h} read back differently").into());
        }
        if store.height_of(&committed.block.hash())? != Some(h) {
            return Err(format!("block {h} not found by hash").into());
        }
    }
    let state_root = store
        .state_root(stored_height.get())?
        .ok_or("no state root at the tip")?;
    if state_root != builder.block(stored_height)?.block.header.state_root {
        return Err("stored state root differs from the header".into());
    }
    println!(
        "  reopened in {reopen_ms:.1} ms at height {stored_height}; blocks read back byte for byte; state root {}…",
        &state_root.to_string()[..16]
    );

    println!(
        "\na fresh light client, trusting only the genesis validator set, verifies the chain…"
    );
    let (genesis_set, genesis_time) = builder.genesis();
    let mut client = LightClient::from_genesis(chain.clone(), genesis_set.clone(), genesis_time);
    let t = Instant::now();
    for committed in builder.blocks() {
        client.verify(&committed.light)?;
    }
    let verify_secs = t.elapsed().as_secs_f64();
    let tip = client.height();
    println!(
        "  verified {} headers and certificates in {:.1} ms ({:.1} µs/header), followed the validator-set change",
        tip,
        verify_secs * 1e3,
        verify_secs * 1e6 / tip.get() as f64
    );

    // Proofs against verified headers.
    let h = Height::new(join_at.max(1));
    let block = builder.block(h)?;
    let index = (block.block.transactions.len() / 2) as u64;
    if let Some(tx) = block.block.transactions.get(index as usize) {
        let proof = builder.tx_proof(h, index)?;
        client.verify_transaction(h, &tx.to_bytes(), &proof)?;
        println!(
            "  transaction {index} of block {h} is included (proof: {} hashes)",
            proof.path.len()
        );
    }
    let record = format!("case/{}/0", h);
    let key = KvApp::state_key(record.as_bytes());
    let (value, proof) = builder.state_proof(tip, &key)?;
    let value = value.ok_or("record missing from state")?;
    client.verify_state(tip, &key, Some(&value), &proof)?;
    println!(
        "  state at height {tip}: '{record}' holds its digest (proof: {} siblings)",
        proof.siblings.len()
    );
    let absent = KvApp::state_key(b"case/never-filed");
    let (none, proof) = builder.state_proof(tip, &absent)?;
    if none.is_some() {
        return Err("an unfiled case is present".into());
    }
    client.verify_state(tip, &absent, None, &proof)?;
    println!("  state at height {tip}: 'case/never-filed' is provably absent");
    let ancestor = Height::new(1);
    let proof = builder.ancestor_proof(tip, ancestor)?;
    client.verify_ancestor(
        tip,
        ancestor,
        &builder.block(ancestor)?.block.hash(),
        &proof,
    )?;
    println!(
        "  block 1 is in the history committed by header {tip} ({} hashes)",
        proof.path.len()
    );
    if client
        .verify_state(
            tip,
            &key,
            Some(b"tampered"),
            &builder.state_proof(tip, &key)?.1,
        )
        .is_ok()
    {
        return Err("a tampered value verified".into());
    }
    println!("  a tampered state value is rejected");

    println!("\nsummary");
    println!("  {:<34} {:>12}", "chain", chain.to_string());
    println!("  {:<34} {:>12}", "blocks", tip.get());
    println!("  {:<34} {:>12}", "transactions", total_txs);
    println!(
        "  {:<34} {:>12}",
        "validators at tip",
        builder.validator_set().len()
    );
    println!(
        "  {:<34} {:>12.0}",
        "build rate (tx/s, 1 process)",
        total_txs as f64 / build_secs
    );
    println!(
        "  {:<34} {:>12.2}",
        "of which signing (s)",
        sign_time.as_secs_f64()
    );
    println!(
        "  {:<34} {:>12.2}",
        "of which durable appends (s)",
        persist_time.as_secs_f64()
    );
    println!(
        "  {:<34} {:>12.1}",
        "durable append ms per block",
        persist_time.as_secs_f64() * 1e3 / tip.get() as f64
    );
    println!("  {:<34} {:>12.1}", "reopen after restart (ms)", reopen_ms);
    println!(
        "  {:<34} {:>12.1}",
        "light-client µs per header",
        verify_secs * 1e6 / tip.get() as f64
    );
    println!("\nall checks passed");
    Ok(())
}
