//! `govchain gov`: main-chain governance transactions — proposals and
//! votes — built and signed with a department's key file and submitted
//! through a node's API.
//!
//! The nonce is the signing key's next nonce in the node's latest
//! committed state unless `--nonce` is given (pass it when earlier
//! transactions of the same key are still pending). `--wait` polls until
//! the transaction is committed; a committed governance transaction can
//! still be refused by the governance application (a vote on an unknown
//! proposal, say), which the chain's state then shows.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use govchain_core::app::NonceTracker;
use govchain_core::codec::Encode;
use govchain_core::crypto::Signer;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};

use super::{api_error, get_json, CliError, TIMEOUT};
use crate::api::client;
use crate::config::{load_key_file, parse_public_key};
use crate::governance::{Action, Department, DepartmentId, GovernanceOp, ProposalId};

/// Arguments of `govchain gov`.
#[derive(Debug, Args)]
pub struct GovArgs {
    /// The API address (`host:port`) of a node that runs the main chain.
    #[arg(long)]
    pub api: String,
    /// The main chain's id (the genesis file's `main`; `genesis` names it
    /// `main` unless told otherwise).
    #[arg(long, default_value = "main")]
    pub chain: String,
    /// The key file that signs: the node key of a registered department.
    #[arg(long)]
    pub key: PathBuf,
    /// The nonce to sign with (default: the key's next nonce in the node's
    /// latest committed state).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait (up to 120 s) until the transaction is committed.
    #[arg(long)]
    pub wait: bool,
    /// The proposal or vote.
    #[command(subcommand)]
    pub op: GovCommand,
}

/// What `govchain gov` submits.
#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Propose registering a department and its node key.
    RegisterDepartment {
        /// The department's id.
        #[arg(long)]
        id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// Its node key (hex, as `keygen` prints it).
        #[arg(long)]
        node_key: String,
        /// The main-chain height at which the change takes effect.
        #[arg(long)]
        effective_height: u64,
    },
    /// Propose removing a department (its validators go with it).
    RemoveDepartment {
        /// The department's id.
        #[arg(long)]
        id: String,
        /// The main-chain height at which the change takes effect.
        #[arg(long)]
        effective_height: u64,
    },
    /// Propose adding a validator to a chain.
    AddValidator {
        /// The chain it validates (the main chain or a side chain).
        #[arg(long)]
        validator_chain: String,
        /// The validator's key (hex).
        #[arg(long)]
        validator_key: String,
        /// Its voting power.
        #[arg(long, default_value_t = 1)]
        power: u64,
        /// The registered department it belongs to.
        #[arg(long)]
        department: String,
        /// The height of that chain at which the change takes effect.
        #[arg(long)]
        effective_height: u64,
    },
    /// Propose removing a validator from a chain.
    RemoveValidator {
        /// The chain it validates.
        #[arg(long)]
        validator_chain: String,
        /// The validator's key (hex).
        #[arg(long)]
        validator_key: String,
        /// The height of that chain at which the change takes effect.
        #[arg(long)]
        effective_height: u64,
    },
    /// Vote on a proposal: approve, or reject with `--reject`.
    Vote {
        /// The proposal's id.
        #[arg(long)]
        proposal: u64,
        /// Vote against.
        #[arg(long)]
        reject: bool,
    },
}

fn usage(arg: &'static str) -> impl Fn(String) -> CliError {
    move |reason| CliError::Usage { arg, reason }
}

fn chain_id(arg: &'static str, text: &str) -> Result<ChainId, CliError> {
    ChainId::new(text).map_err(|e| usage(arg)(e.to_string()))
}

fn department_id(arg: &'static str, text: &str) -> Result<DepartmentId, CliError> {
    DepartmentId::new(text).map_err(|e| usage(arg)(e.to_string()))
}

impl GovCommand {
    /// The governance operation, every argument checked.
    pub fn operation(&self) -> Result<GovernanceOp, CliError> {
        let propose = |action, height: &u64| GovernanceOp::Propose {
            action,
            effective_height: Height::new(*height),
        };
        Ok(match self {
            GovCommand::RegisterDepartment {
                id,
                name,
                node_key,
                effective_height,
            } => propose(
                Action::RegisterDepartment {
                    department: Department {
                        id: department_id("--id", id)?,
                        name: name.clone(),
                        node_key: parse_public_key(node_key).map_err(usage("--node-key"))?,
                    },
                },
                effective_height,
            ),
            GovCommand::RemoveDepartment {
                id,
                effective_height,
            } => propose(
                Action::RemoveDepartment {
                    department: department_id("--id", id)?,
                },
                effective_height,
            ),
            GovCommand::AddValidator {
                validator_chain,
                validator_key,
                power,
                department,
                effective_height,
            } => propose(
                Action::AddValidator {
                    chain: chain_id("--validator-chain", validator_chain)?,
                    key: parse_public_key(validator_key).map_err(usage("--validator-key"))?,
                    power: *power,
                    department: department_id("--department", department)?,
                },
                effective_height,
            ),
            GovCommand::RemoveValidator {
                validator_chain,
                validator_key,
                effective_height,
            } => propose(
                Action::RemoveValidator {
                    chain: chain_id("--validator-chain", validator_chain)?,
                    key: parse_public_key(validator_key).map_err(usage("--validator-key"))?,
                },
                effective_height,
            ),
            GovCommand::Vote { proposal, reject } => GovernanceOp::Vote {
                proposal_id: ProposalId::new(*proposal),
                approve: !reject,
            },
        })
    }
}

/// Builds, signs and submits the transaction; prints its id (and its
/// height once committed, with `--wait`).
pub fn gov(args: &GovArgs) -> Result<(), CliError> {
    let chain = chain_id("--chain", &args.chain)?;
    let op = args.op.operation()?;
    let key = load_key_file(&args.key)?;
    let nonce = match args.nonce {
        Some(n) => n,
        None => next_nonce(&args.api, &chain, &key)?,
    };
    let tx = Transaction::new_signed(chain.clone(), &key, nonce, op.to_payload())
        .map_err(|e| usage("governance transaction")(e.to_string()))?;
    let id = tx.id().to_string();
    let body = serde_json::json!({ "tx": hex::encode(tx.to_bytes()) }).to_string();
    let path = format!("/v1/chains/{chain}/txs");
    let response = client::request(&args.api, "POST", &path, Some(body.as_bytes()), TIMEOUT)?;
    if response.status >= 400 {
        return Err(api_error(
            response.status,
            &response.json().unwrap_or_default(),
        ));
    }
    say!("submitted {id} (nonce {nonce})");
    if args.wait {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let status = get_json(&args.api, &format!("/v1/chains/{chain}/txs/{id}"))?;
            if status["status"] == "committed" {
                say!(
                    "committed at height {}",
                    status["height"].as_u64().unwrap_or(0)
                );
                break;
            }
            if Instant::now() >= deadline {
                return Err(usage("--wait")(format!(
                    "{id} not committed after 120 s (status {})",
                    status["status"]
                )));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(())
}

/// The key's next nonce in the node's latest committed state of `chain`.
fn next_nonce(api: &str, chain: &ChainId, key: &dyn Signer) -> Result<u64, CliError> {
    let state_key = hex::encode(NonceTracker::key(&key.public_key()));
    let reply = get_json(api, &format!("/v1/chains/{chain}/state/{state_key}"))?;
    let bad_reply = |message: String| CliError::Api {
        status: 200,
        code: "bad_nonce_value".into(),
        message,
    };
    match reply["value_hex"].as_str() {
        None => Ok(0),
        Some(h) => {
            let bytes = hex::decode(h).map_err(|e| bad_reply(format!("{h}: {e}")))?;
            NonceTracker::decode_value(&bytes).map_err(|e| bad_reply(format!("{h}: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Result<GovernanceOp, CliError> {
        let args = [
            "govchain",
            "gov",
            "--api",
            "127.0.0.1:1",
            "--chain",
            "main",
            "--key",
            "k",
        ]
        .iter()
        .chain(extra);
        let cli = super::super::Cli::try_parse_from(args).map_err(|e| CliError::Usage {
            arg: "args",
            reason: e.to_string(),
        })?;
        match cli.command {
            super::super::Command::Gov(g) => g.op.operation(),
            other => panic!("not gov: {other:?}"),
        }
    }

    #[test]
    fn votes_and_proposals_parse_into_their_operations() {
        let op = parse(&["vote", "--proposal", "7", "--reject"]).unwrap();
        let vote = GovernanceOp::Vote {
            proposal_id: ProposalId::new(7),
            approve: false,
        };
        assert_eq!(op.to_payload(), vote.to_payload());
        let key = govchain_core::crypto::SecretKey::from_seed(&[9; 32]).public_key();
        let hex = crate::config::public_key_hex(&key);
        let op = parse(&[
            "add-validator",
            "--validator-chain",
            "svc",
            "--validator-key",
            &hex,
            "--department",
            "dept-5",
            "--effective-height",
            "40",
        ])
        .unwrap();
        let proposal = GovernanceOp::Propose {
            action: Action::AddValidator {
                chain: ChainId::new("svc").unwrap(),
                key,
                power: 1,
                department: DepartmentId::new("dept-5").unwrap(),
            },
            effective_height: Height::new(40),
        };
        assert_eq!(op.to_payload(), proposal.to_payload());
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let err = parse(&[
            "remove-validator",
            "--validator-chain",
            "svc",
            "--validator-key",
            "zz",
            "--effective-height",
            "3",
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                CliError::Usage {
                    arg: "--validator-key",
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(&[
            "remove-department",
            "--id",
            "Not An Id",
            "--effective-height",
            "3",
        ])
        .unwrap_err();
        assert!(matches!(err, CliError::Usage { arg: "--id", .. }), "{err}");
    }
}
