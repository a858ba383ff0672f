//! The `govchain` operator command line: the code behind the binary of the
//! same name (`src/bin/govchain.rs` only calls [`main`]).
//!
//! | command | what it does |
//! | --- | --- |
//! | `keygen [--suite SUITE] --out FILE` | writes a fresh key file (mode 0600) of the suite's algorithm (default `ed25519-blake3`; `sm2-sm3` for SM2) and prints its public key |
//! | `genesis [--suite SUITE] --departments N --side-chain NAME:ENGINE[:SUITE] … --out DIR` | writes a local network: one directory per department with its key (and a key of each side chain's other suite), node file and the shared genesis file, plus `trusted/<chain>.json` |
//! | `run --config FILE` | runs a department node: durable storage, the TCP transport, the HTTP API; stops cleanly on SIGINT/SIGTERM |
//! | `status --api ADDR` | prints a running node's chains, heights, mempool sizes and peers |
//! | `inspect --data-dir DIR [--config FILE]` | verifies a data directory offline ([`inspect`]) |
//! | `prove tx\|state\|cross-chain … --out FILE` | fetches a proof file from a running node's API |
//! | `verify --proof FILE --trusted-set FILE` | checks a proof file against a trusted validator set |
//! | `gov --api ADDR [--chain MAIN] --key FILE [--nonce N] [--wait] register-department\|remove-department\|add-validator\|remove-validator\|vote …` | signs a main-chain governance proposal or vote with a department's key and submits it ([`gov`]) |
//!
//! Logs go to standard error (`--log-level` or `RUST_LOG`, default `info`);
//! results go to standard output. Any failure exits with status 1 and a
//! message naming what failed; usage errors exit with status 2.

/// Writes a line to standard output, ignoring a closed pipe (as in
/// `govchain status | head -1`) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod gov;
pub mod inspect;
mod run;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use govchain_core::crypto::CryptoSuite;
use govchain_core::types::ChainId;

use crate::api::client::{self, ClientError};
use crate::api::proof::{self, ProofError, ProofFile, TrustedSet};
use crate::chain::EngineKind;
use crate::config::{ConfigError, NetworkPlan, NodeSettings, PlannedSideChain};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "govchain",
    version,
    about = "Operate a govchain department node: keys, genesis, run, status, inspect, proofs, governance."
)]
pub struct Cli {
    /// Log filter (e.g. `info`, `debug`, `govchain_node=debug`); overrides
    /// `RUST_LOG`.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a fresh key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the key (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The crypto suite the key is for: `ed25519-blake3` (an Ed25519
        /// key) or `sm2-sm3` (an SM2 key). It must be the genesis file's.
        #[arg(long, default_value_t = CryptoSuite::Ed25519Blake3)]
        suite: CryptoSuite,
    },
    /// Write the configuration of a local network of N departments.
    Genesis(GenesisArgs),
    /// Run a department node until SIGINT or SIGTERM.
    Run {
        /// The node file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a running node's chains, heights, mempool sizes and peers.
    Status {
        /// The node's API address (`host:port`).
        #[arg(long)]
        api: String,
    },
    /// Verify a data directory offline and print a summary.
    Inspect {
        /// The node's data directory (one sub-directory per chain).
        #[arg(long)]
        data_dir: PathBuf,
        /// The node file: its genesis supplies validator sets for chains
        /// the directory's main chain does not register.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Export a proof from a running node to a file.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof file with a trusted validator set.
    Verify {
        /// The proof file.
        #[arg(long)]
        proof: PathBuf,
        /// The trusted validator set (JSON, as `genesis` writes under
        /// `trusted/`). For a cross-chain proof: the main chain's.
        #[arg(long)]
        trusted_set: PathBuf,
    },
    /// Sign and submit a main-chain governance proposal or vote.
    Gov(gov::GovArgs),
}

/// Arguments of `govchain genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Number of departments (1..=64).
    #[arg(long)]
    pub departments: usize,
    /// A side chain as `NAME:ENGINE` (engine `bft` or `raft`), or
    /// `NAME:ENGINE:SUITE` for a side chain of another crypto suite than
    /// the network's (every department then also gets a key of that suite,
    /// `node.SUITE.key`); repeatable.
    #[arg(long = "side-chain", value_name = "NAME:ENGINE[:SUITE]")]
    pub side_chains: Vec<String>,
    /// The output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Department i (from 0) gets P2P port base+2i and API port base+2i+1.
    #[arg(long, default_value_t = 26600)]
    pub base_port: u16,
    /// The host every node listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The network id.
    #[arg(long, default_value = "govchain-local")]
    pub network_id: String,
    /// The main chain's id.
    #[arg(long, default_value = "main")]
    pub main_chain: String,
    /// Side chains anchor a checkpoint every this many blocks.
    #[arg(long, default_value_t = 8)]
    pub anchor_every: u64,
    /// The network's crypto suite, the main chain's and the default of
    /// side chains: `ed25519-blake3` or `sm2-sm3` (the departments' node
    /// keys are SM2 keys).
    #[arg(long, default_value_t = CryptoSuite::Ed25519Blake3)]
    pub suite: CryptoSuite,
}

/// What `govchain prove` exports.
#[derive(Debug, Subcommand)]
pub enum ProveCommand {
    /// A committed transaction's inclusion proof.
    Tx {
        /// The node's API address.
        #[arg(long)]
        api: String,
        /// The chain.
        #[arg(long)]
        chain: String,
        /// The transaction id (64 hex digits).
        #[arg(long)]
        tx_id: String,
        /// Where to write the proof file.
        #[arg(long)]
        out: PathBuf,
    },
    /// A state entry (or its absence) with its proof.
    State {
        /// The node's API address.
        #[arg(long)]
        api: String,
        /// The chain.
        #[arg(long)]
        chain: String,
        /// The application state key, hex.
        #[arg(long, conflicts_with = "kv_key", required_unless_present = "kv_key")]
        key: Option<String>,
        /// A key of the `kv` application, as text (stored under `kv/` + it).
        #[arg(long)]
        kv_key: Option<String>,
        /// The height (default: latest).
        #[arg(long)]
        height: Option<u64>,
        /// Where to write the proof file.
        #[arg(long)]
        out: PathBuf,
    },
    /// A side-chain transaction proven from main-chain trust.
    CrossChain {
        /// The node's API address (a node running the main chain too).
        #[arg(long)]
        api: String,
        /// The side chain.
        #[arg(long)]
        chain: String,
        /// The transaction id (64 hex digits).
        #[arg(long)]
        tx_id: String,
        /// Where to write the proof file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A bad argument.
    #[error("{arg}: {reason}")]
    Usage {
        /// The argument.
        arg: &'static str,
        /// Why.
        reason: String,
    },
    /// The API could not be reached.
    #[error("API request failed: {0}")]
    Client(#[from] ClientError),
    /// The API answered with an error.
    #[error("API answered {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The message.
        message: String,
    },
    /// A proof was refused.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// An inspection failed.
    #[error(transparent)]
    Inspect(#[from] inspect::InspectError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node failed.
    #[error(transparent)]
    Node(#[from] crate::NodeError),
    /// Running the node failed outside the node itself.
    #[error("run: {reason}")]
    Run {
        /// Why.
        reason: String,
    },
}

/// Parses the process arguments, sets up logging and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error with `filter`, else `RUST_LOG`, else `info`.
pub fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs one command.
pub fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Keygen { out, suite } => {
            let key = crate::config::generate_key_file(&out, suite)?;
            say!("{}", crate::config::public_key_hex(&key));
            Ok(())
        }
        Command::Genesis(args) => genesis(&args),
        Command::Run { config } => run::run(&config),
        Command::Status { api } => status(&api),
        Command::Inspect { data_dir, config } => {
            let genesis = match &config {
                Some(path) => Some(NodeSettings::load(path)?.genesis),
                None => None,
            };
            let reports = inspect::inspect(&data_dir, genesis.as_ref())?;
            say!("{}", inspect::render(&reports).trim_end());
            say!(
                "OK: {} chain(s), {} blocks, {} txs verified",
                reports.len(),
                reports.iter().map(|r| r.blocks).sum::<u64>(),
                reports.iter().map(|r| r.txs).sum::<u64>()
            );
            Ok(())
        }
        Command::Prove(what) => prove(what),
        Command::Verify { proof, trusted_set } => verify(&proof, &trusted_set),
        Command::Gov(args) => gov::gov(&args),
    }
}

fn genesis(args: &GenesisArgs) -> Result<(), CliError> {
    let usage = |arg, reason: String| CliError::Usage { arg, reason };
    let main_chain =
        ChainId::new(args.main_chain.clone()).map_err(|e| usage("--main-chain", e.to_string()))?;
    let mut side_chains = Vec::new();
    for spec in &args.side_chains {
        let (name, rest) = spec.split_once(':').ok_or_else(|| {
            usage(
                "--side-chain",
                format!("{spec:?} is not NAME:ENGINE[:SUITE]"),
            )
        })?;
        let (engine, suite) = match rest.split_once(':') {
            None => (rest, None),
            Some((engine, suite)) => (
                engine,
                Some(suite.parse::<CryptoSuite>().map_err(|e| {
                    usage("--side-chain", format!("{spec:?}: suite {suite:?}: {e}"))
                })?),
            ),
        };
        let id = ChainId::new(name).map_err(|e| usage("--side-chain", format!("{name:?}: {e}")))?;
        let engine = match engine {
            "bft" => EngineKind::Bft,
            "raft" => EngineKind::Raft,
            other => {
                return Err(usage(
                    "--side-chain",
                    format!("engine {other:?}: expected \"bft\" or \"raft\""),
                ))
            }
        };
        side_chains.push(PlannedSideChain { id, engine, suite });
    }
    if args.anchor_every == 0 {
        return Err(usage("--anchor-every", "must be at least 1".into()));
    }
    let plan = NetworkPlan {
        network_id: args.network_id.clone(),
        departments: args.departments,
        main_chain,
        side_chains,
        anchor_every: args.anchor_every,
        host: args.host,
        base_port: args.base_port,
        genesis_time_ms: 0,
        suite: args.suite,
    };
    let written = crate::config::write_network(&plan, &args.out)?;
    for d in &written {
        say!(
            "{}  key {}  p2p {}  api {}",
            d.config.display(),
            crate::config::public_key_hex(&d.public_key),
            d.p2p,
            d.api
        );
    }
    say!(
        "genesis: {}  trusted sets: {}",
        args.out.join(crate::config::GENESIS_FILE).display(),
        args.out.join(crate::config::TRUSTED_DIR).display()
    );
    Ok(())
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// GETs `path` and returns the JSON, turning API errors into
/// [`CliError::Api`].
fn get_json(api: &str, path: &str) -> Result<serde_json::Value, CliError> {
    let response = client::request(api, "GET", path, None, TIMEOUT)?;
    let value = response.json().map_err(|e| CliError::Api {
        status: response.status,
        code: "not_json".into(),
        message: e.to_string(),
    })?;
    if response.status >= 400 {
        return Err(api_error(response.status, &value));
    }
    Ok(value)
}

/// The API's JSON error (`{"error": {"code", "message"}}`) as a [`CliError`].
fn api_error(status: u16, body: &serde_json::Value) -> CliError {
    CliError::Api {
        status,
        code: body["error"]["code"].as_str().unwrap_or("?").to_owned(),
        message: body["error"]["message"].as_str().unwrap_or("").to_owned(),
    }
}

fn status(api: &str) -> Result<(), CliError> {
    let s = get_json(api, "/v1/status")?;
    say!(
        "node {}  key {}",
        s["name"].as_str().unwrap_or("?"),
        s["public_key"].as_str().unwrap_or("?")
    );
    if let Some(f) = s["fatal"].as_str() {
        say!("FATAL: {f}");
    }
    say!(
        "{:<24} {:>10} {:>10} {:>14}",
        "chain",
        "height",
        "mempool",
        "committed txs"
    );
    for c in s["chains"].as_array().into_iter().flatten() {
        say!(
            "{:<24} {:>10} {:>10} {:>14}",
            c["chain_id"].as_str().unwrap_or("?"),
            c["height"].as_u64().unwrap_or(0),
            c["mempool_txs"].as_u64().unwrap_or(0),
            c["committed_txs"].as_u64().unwrap_or(0)
        );
    }
    match s["peers"].as_array() {
        Some(peers) => {
            let connected = peers.iter().filter(|p| p["connected"] == true).count();
            say!("peers: {connected} of {} connected", peers.len());
            for p in peers {
                say!(
                    "  {} {} {}",
                    p["public_key"].as_str().unwrap_or("?"),
                    p["address"].as_str().unwrap_or("-"),
                    if p["connected"] == true {
                        "connected"
                    } else {
                        "not connected"
                    }
                );
            }
        }
        None => say!("peers: not reported by this node's transport"),
    }
    Ok(())
}

fn write_proof(out: &std::path::Path, value: &serde_json::Value) -> Result<ProofFile, CliError> {
    let bad = |reason: String| CliError::Api {
        status: 200,
        code: "bad_proof".into(),
        message: reason,
    };
    let hex_text = value["proof_file_hex"]
        .as_str()
        .ok_or_else(|| bad("no proof_file_hex in the answer".into()))?;
    let bytes = hex::decode(hex_text).map_err(|e| bad(e.to_string()))?;
    let file = ProofFile::decode(&bytes).map_err(|e| bad(e.to_string()))?;
    crate::config::write_new(out, &bytes)?;
    say!(
        "wrote {} proof ({} bytes) to {}",
        file.kind(),
        bytes.len(),
        out.display()
    );
    Ok(file)
}

fn prove(what: ProveCommand) -> Result<(), CliError> {
    match what {
        ProveCommand::Tx {
            api,
            chain,
            tx_id,
            out,
        } => {
            let v = get_json(&api, &format!("/v1/chains/{chain}/txs/{tx_id}/proof"))?;
            write_proof(&out, &v)?;
        }
        ProveCommand::State {
            api,
            chain,
            key,
            kv_key,
            height,
            out,
        } => {
            let key_hex = match (key, kv_key) {
                (Some(k), _) => k,
                (None, Some(k)) => {
                    hex::encode(govchain_core::testkit::KvApp::state_key(k.as_bytes()))
                }
                (None, None) => {
                    return Err(CliError::Usage {
                        arg: "--key",
                        reason: "give --key HEX or --kv-key TEXT".into(),
                    })
                }
            };
            let mut path = format!("/v1/chains/{chain}/state/{key_hex}");
            if let Some(h) = height {
                path.push_str(&format!("?height={h}"));
            }
            let v = get_json(&api, &path)?;
            write_proof(&out, &v)?;
        }
        ProveCommand::CrossChain {
            api,
            chain,
            tx_id,
            out,
        } => {
            let v = get_json(
                &api,
                &format!("/v1/chains/{chain}/txs/{tx_id}/cross-chain-proof"),
            )?;
            write_proof(&out, &v)?;
        }
    }
    Ok(())
}

fn verify(proof_path: &std::path::Path, trusted_path: &std::path::Path) -> Result<(), CliError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| CliError::Io {
            path: p.to_owned(),
            source,
        })
    };
    let bytes = read(proof_path)?;
    let file = ProofFile::decode(&bytes).map_err(|source| ProofError::Decode { source })?;
    let trusted_text = String::from_utf8(read(trusted_path)?).map_err(|e| CliError::Usage {
        arg: "--trusted-set",
        reason: e.to_string(),
    })?;
    let trusted = TrustedSet::from_json(&trusted_text)?;
    let proven = proof::verify(&file, &trusted)?;
    say!(
        "VERIFIED {} proof: {}",
        file.kind(),
        proof::describe(&proven)
    );
    Ok(())
}
