//! The govchain reference node: mempool, execution, main and side chains, transport and sync.
//!
//! # Overview
//!
//! A [`Node`] runs one or more chains for one department. Each chain
//! ([`ChainSpec`]) has its own [`Application`](govchain_core::app::Application),
//! consensus engine ([`EngineKind::Bft`] or [`EngineKind::Raft`]),
//! stores and [`mempool`]. One thread per node drives every chain
//! through the consensus crate's host duties — persist, send, apply — and
//! in addition:
//! - **judges proposals** before its engine votes for them (signatures,
//!   nonces, `check_tx`, and execution reproducing the header's state and
//!   history roots), so a Byzantine proposer's invalid block is never
//!   decided;
//! - **builds proposals** from its mempool under the chain's
//!   [`BlockLimits`];
//! - **commits** decided blocks: execution, state-root check, and one
//!   atomic durable append of block, certificate and state;
//! - on the **main chain** runs the [governance] application, whose state
//!   schedules validator-set changes of every chain, and records
//!   **checkpoint anchors** of side chains; [crosschain] proofs verify a
//!   side-chain fact from main-chain headers alone.
//!
//! Peers are reached through a [`Transport`]; [`InProcessNetwork`] connects
//! nodes in one process, and [`net::TcpTransport`] connects departments'
//! machines over authenticated, encrypted TCP (Noise, bound to each
//! department's Ed25519 key). A node that was down, or is new, catches up by
//! [block sync](sync) from its peers' stores, verifying commit certificates
//! instead of every transaction signature.
//!
//! Operators configure a department node with TOML files ([`config`]), run
//! and inspect it with the `govchain` command line ([`cli`]), and DApps use
//! its JSON HTTP API ([`api`]).
//!
//! # Example
//!
//! One department running one chain in memory:
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use govchain_core::{crypto::{SecretKey, Signer}, testkit::KvApp, tx::Transaction,
//!     types::ChainId, validator::{Validator, ValidatorSet}};
//! use govchain_node::{ChainRole, ChainSpec, EngineKind, InProcessNetwork, Node, NodeConfig,
//!     StorageKind};
//!
//! let key = Arc::new(SecretKey::from_seed(&[1; 32]));
//! let chain = ChainId::new("demo")?;
//! let set = ValidatorSet::new(vec![Validator { public_key: key.public_key(), power: 1 }])?;
//! let mut config = NodeConfig::new("bureau", key.clone(), StorageKind::Memory);
//! config.chains.push(ChainSpec::new(chain.clone(), ChainRole::Side { anchor_every: 10 },
//!     EngineKind::Bft, set, Arc::new(KvApp)));
//! let network = InProcessNetwork::new();
//! let node = Node::start(config, network.transport(key.public_key()))?;
//! network.register(key.public_key(), node.inbox());
//!
//! let commits = node.subscribe(64);
//! let citizen = SecretKey::from_seed(&[2; 32]);
//! let tx = Transaction::new_signed(chain.clone(), &citizen, 0, KvApp::payload(b"k", b"v"))?;
//! node.submit(&chain, vec![tx.clone()])?.remove(0)?;
//! loop {
//!     let event = commits.recv_timeout(Duration::from_secs(30))?;
//!     if event.tx_ids.contains(&tx.id()) { break; }
//! }
//! let proof = node.tx_proof(&chain, &tx.id())?;
//! assert_eq!(proof.tx, tx);
//! node.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `cli` (default): the `govchain` operator binary and the [`cli`] module
//!   behind it (clap, tracing-subscriber, ctrlc). Turn it off
//!   (`default-features = false`) to embed the node without them; the
//!   configuration, HTTP API and TCP transport stay available.

pub mod api;
pub mod chain;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod crosschain;
mod error;
pub mod governance;
mod hooks;
pub mod mempool;
pub mod net;
pub mod node;
pub mod sync;
pub mod transport;
pub(crate) mod tx_index;

pub use chain::{BlockLimits, ChainRole, ChainSpec, CommitEvent, EngineKind, StorageKind};
pub use error::NodeError;
pub use node::{Node, NodeConfig, NodeHandle, NodeStatus};
pub use sync::{SyncConfig, SyncCounters, SyncProgress};
pub use transport::{Envelope, InProcessNetwork, Transport};
