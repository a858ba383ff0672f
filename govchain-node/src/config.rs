//! Configuration of one department node: a TOML **node file** with this
//! node's local choices, and a TOML **genesis file** shared, byte for byte,
//! by every department of the network.
//!
//! # The node file (`node.toml`)
//! ```toml
//! [node]
//! name = "dept-1"                  # for logs and status
//! key_file = "node.key"            # relative paths are relative to this file
//! # rotation_key_files = ["next.key"]  # optional: a new key loaded ahead of its rotation
//! # suite_key_files = ["node.sm2-sm3.key"]  # optional: the department's keys of other suites
//! data_dir = "data"
//! p2p_listen = "127.0.0.1:7100"
//! api_listen = "127.0.0.1:7101"
//! genesis_file = "genesis.toml"
//! genesis_blake3 = "…"             # BLAKE3 of the genesis file's bytes (hex)
//! # chains = ["main", "services"]  # optional; default: main + the side chains this key validates
//! # retain_state_versions = 10000  # optional: keep only the latest heights' state (default: all)
//!
//! [[peers]]
//! name = "dept-2"
//! public_key = "…"                 # a department key of the genesis suite (see "Keys" below)
//! address = "127.0.0.1:7102"
//!
//! [api]                            # optional
//! workers = 4
//! max_body_bytes = 1048576
//! ```
//!
//! # The genesis file (`genesis.toml`)
//! ```toml
//! network_id = "govchain-local"
//! genesis_time_ms = 0
//! suite = "sm2-sm3"                # optional; default "ed25519-blake3"
//!
//! [[departments]]
//! id = "dept-1"
//! name = "Department 1"
//! public_key = "…"
//! # suite_keys = ["sm2:…"]        # optional: its keys of other suites, one per suite
//!
//! [[chains]]
//! id = "main"
//! role = "main"                    # exactly one main chain
//! engine = "bft"                   # the main chain is always bft
//! app = "governance"
//! validators = [{ public_key = "…", power = 1 }]
//!
//! [[chains]]
//! id = "services"
//! role = "side"
//! anchor_every = 8
//! engine = "raft"                  # or "bft"
//! app = "kv"
//! # suite = "sm2-sm3"              # optional; default: the network's suite
//! validators = [{ public_key = "…", power = 1 }]
//! ```
//! The main chain's validators are the departments' main-chain voting
//! power; side chains are registered in governance genesis. Application
//! kinds: `governance` (the main chain's
//! [`GovernanceApp`](crate::governance::GovernanceApp)) and `kv`
//! (core's key-value DApp [`KvApp`]: a payload is a canonical `(key, value)`
//! pair stored under `kv/` + key).
//!
//! # Crypto suites
//! `suite` names the network's [`CryptoSuite`]: the main chain's, and that
//! of every department's `public_key` (its node key), every peer
//! `public_key` in the node file and the node's `key_file` and rotation key
//! files. A side chain runs the network's suite unless its `suite` names
//! another; its validators must be of its suite, and each must be a
//! department's key of that suite — its `public_key` for the network's
//! suite, else an entry of its `suite_keys` (at most one per suite, never
//! of the network's suite). A node holding such keys lists their files in
//! `suite_key_files` (each of a suite other than the network's); the node
//! signs each chain with the key that is a member there, while its
//! transport identity stays `key_file` (see
//! [`governance`](crate::governance), "Crypto suites"). A key of the wrong
//! suite is refused with an error naming the field or the file.
//!
//! # Keys
//! A public key is written as 64 hex digits (Ed25519; the prefix `ed25519:`
//! is also accepted) or as `sm2:` followed by 66 hex digits (a compressed
//! SM2 point; the bare 66 digits are also accepted): see
//! [`parse_public_key`] and [`public_key_hex`].
//!
//! # Errors name the field
//! Every problem is a [`ConfigError`] naming the file and the field path,
//! for example `genesis.toml: chains[1].engine: unknown variant `pbft`,
//! expected `bft` or `raft``.
//!
//! # Key files
//! [`generate_key_file`] writes a fresh key of a suite's algorithm (mode
//! 0600 on unix); [`load_key_file`] reads one back and checks its public
//! key. A key file records its `algorithm` (`"ed25519"` or `"sm2"`) and a
//! 32-byte `secret_seed` ([`SecretKey::from_seed`] or
//! [`SecretKey::sm2_from_seed`]), so Ed25519 key files written before SM2
//! support load unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use govchain_core::crypto::{CryptoSuite, PublicKey, SecretKey, SignatureAlgorithm, Signer};
use govchain_core::testkit::KvApp;
use govchain_core::types::{ChainId, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::chain::{ChainRole, ChainSpec, EngineKind, StorageKind};
use crate::governance::{DepartmentId, GenesisDepartment, GovernanceGenesis, SideChainSpec};
use crate::node::NodeConfig;

/// Default number of API worker threads.
pub const DEFAULT_API_WORKERS: usize = 4;
/// Default largest accepted API request body, in bytes.
pub const DEFAULT_API_MAX_BODY: usize = 1024 * 1024;
/// Largest configuration, genesis or key file read, in bytes.
pub const MAX_CONFIG_FILE_LEN: u64 = 4 * 1024 * 1024;

/// Why a configuration could not be used. Every variant names the file;
/// [`ConfigError::Field`] also names the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A field is missing, malformed or inconsistent.
    #[error("{file}: {field}: {reason}")]
    Field {
        /// The file.
        file: PathBuf,
        /// The field's path, such as `chains[1].engine`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The genesis file is not the one the node file pins.
    #[error("{file}: genesis file has BLAKE3 {actual}, node.genesis_blake3 pins {expected}")]
    GenesisMismatch {
        /// The genesis file.
        file: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// A file that must not be overwritten exists.
    #[error("{path} already exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

fn field_err(file: &Path, field: impl Into<String>, reason: impl ToString) -> ConfigError {
    ConfigError::Field {
        file: file.to_owned(),
        field: field.into(),
        reason: reason.to_string(),
    }
}

// ---------------------------------------------------------------------------
// File formats (what serde reads and writes)
// ---------------------------------------------------------------------------

/// The node file as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// This node.
    pub node: NodeSection,
    /// The other departments' nodes this node connects to.
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// The HTTP API.
    #[serde(default)]
    pub api: ApiSection,
}

/// The `[node]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// A name for logs and status.
    pub name: String,
    /// The node's key file (relative to the node file); its algorithm must
    /// be the genesis suite's.
    pub key_file: PathBuf,
    /// Key files of new keys loaded ahead of their rotation (relative to
    /// the node file): see [`NodeConfig::rotation_keys`](crate::NodeConfig::rotation_keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotation_key_files: Vec<PathBuf>,
    /// Key files of the department's keys of suites other than the
    /// genesis suite (relative to the node file), each registered in
    /// genesis (`suite_keys`) or by governance: see
    /// [`NodeConfig::suite_keys`](crate::NodeConfig::suite_keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suite_key_files: Vec<PathBuf>,
    /// Where the chains' durable data lives (relative to the node file).
    pub data_dir: PathBuf,
    /// The peer-to-peer listen address.
    pub p2p_listen: SocketAddr,
    /// The HTTP API listen address.
    pub api_listen: SocketAddr,
    /// The shared genesis file (relative to the node file).
    pub genesis_file: PathBuf,
    /// BLAKE3 of the genesis file's bytes, hex: a copy that differs by one
    /// byte is refused.
    pub genesis_blake3: String,
    /// The chains to run; default: the main chain and every side chain
    /// whose genesis validators include this node's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<Vec<String>>,
    /// How often consensus engines are ticked, in milliseconds.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Keep the state of only the latest this-many heights on every chain
    /// ([`ChainSpec::retain_state_versions`](crate::ChainSpec::retain_state_versions));
    /// absent: keep every height's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_state_versions: Option<u64>,
}

fn default_tick_ms() -> u64 {
    5
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// A name for logs.
    pub name: String,
    /// The peer's public key ([`parse_public_key`]), of the genesis suite.
    pub public_key: String,
    /// Where it listens.
    pub address: SocketAddr,
}

/// The `[api]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Worker threads serving requests (1..=64).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Largest accepted request body in bytes; larger ones get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_workers() -> usize {
    DEFAULT_API_WORKERS
}

fn default_max_body() -> usize {
    DEFAULT_API_MAX_BODY
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            workers: DEFAULT_API_WORKERS,
            max_body_bytes: DEFAULT_API_MAX_BODY,
        }
    }
}

/// The genesis file as written on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// The network's id: nodes of another network are refused.
    pub network_id: String,
    /// Time of the genesis state, in Unix milliseconds.
    #[serde(default)]
    pub genesis_time_ms: u64,
    /// The network's crypto suite, by name (`"ed25519-blake3"` or
    /// `"sm2-sm3"`); absent means ed25519-blake3. The main chain and, by
    /// default, every side chain run it ([`ChainEntry::suite`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The founding departments.
    pub departments: Vec<DepartmentEntry>,
    /// The chains: one main chain and its side chains.
    pub chains: Vec<ChainEntry>,
}

/// One `[[departments]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentEntry {
    /// Its id: `[a-z0-9._-]`, starting with a letter or digit.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its node's public key ([`parse_public_key`]), of the genesis suite.
    pub public_key: String,
    /// Its keys of other suites ([`parse_public_key`]), at most one per
    /// suite, none of the genesis suite: the keys it validates chains of
    /// those suites with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suite_keys: Vec<String>,
}

/// One `[[chains]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    /// The chain id.
    pub id: String,
    /// Main or side.
    pub role: RoleKind,
    /// Side chains: anchor a checkpoint on the main chain every this many
    /// blocks. Not allowed on the main chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_every: Option<u64>,
    /// The consensus engine.
    pub engine: EngineChoice,
    /// The application.
    pub app: AppKind,
    /// The chain's crypto suite, by name; absent means the network's. Only
    /// a side chain may differ from the network's suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The genesis validators (department keys of the chain's suite).
    pub validators: Vec<ValidatorEntry>,
}

/// A chain's role in the genesis file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleKind {
    /// The main chain (governance and anchors).
    Main,
    /// A side chain.
    Side,
}

/// A chain's engine in the genesis file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Tendermint.
    Bft,
    /// Raft (validator power must be 1).
    Raft,
}

impl From<EngineChoice> for EngineKind {
    fn from(e: EngineChoice) -> Self {
        match e {
            EngineChoice::Bft => EngineKind::Bft,
            EngineChoice::Raft => EngineKind::Raft,
        }
    }
}

impl From<EngineKind> for EngineChoice {
    fn from(e: EngineKind) -> Self {
        match e {
            EngineKind::Bft => EngineChoice::Bft,
            EngineKind::Raft => EngineChoice::Raft,
        }
    }
}

/// The application a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// The main chain's governance application
    /// ([`GovernanceApp`](crate::governance::GovernanceApp)).
    Governance,
    /// Core's key-value DApp ([`KvApp`]): payload `(key, value)` in the
    /// canonical codec, stored under `kv/` + key, nonces enforced.
    Kv,
}

/// One validator of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    /// A department's key of the chain's suite ([`parse_public_key`]).
    pub public_key: String,
    /// Voting power (at least 1; exactly 1 on Raft chains).
    pub power: u64,
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parses TOML into `T`, reporting the failing field's path.
fn parse_toml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax_err(file, text, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let field = if path.is_empty() || path == "." {
            "(document)".to_owned()
        } else {
            path
        };
        field_err(file, field, describe(text, &inner))
    })
}

fn syntax_err(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    field_err(file, "(syntax)", describe(text, e))
}

/// The error's message and, when known, its line.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_owned();
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |s| s.matches('\n').count())
                + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_CONFIG_FILE_LEN {
        return Err(field_err(
            path,
            "(file)",
            format!(
                "{} bytes exceed the limit of {MAX_CONFIG_FILE_LEN}",
                meta.len()
            ),
        ));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Parses a public key: `ed25519:` or `sm2:` followed by the key's hex
/// digits, or the bare digits, whose number tells the algorithm (64 for
/// Ed25519, 66 for a compressed SM2 point).
pub fn parse_public_key(text: &str) -> Result<PublicKey, String> {
    let prefixed = SignatureAlgorithm::ALL.iter().find_map(|a| {
        text.strip_prefix(a.name())
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|rest| (*a, rest))
    });
    let hex_part = prefixed.map_or(text, |(_, rest)| rest);
    let bytes = hex::decode(hex_part).map_err(|e| format!("not hex: {e}"))?;
    let algorithm = match prefixed {
        Some((a, _)) => a,
        None => SignatureAlgorithm::ALL
            .iter()
            .copied()
            .find(|a| a.public_key_len() == bytes.len())
            .ok_or_else(|| {
                format!(
                    "{} bytes, an Ed25519 key has 32 and an SM2 key 33",
                    bytes.len()
                )
            })?,
    };
    if bytes.len() != algorithm.public_key_len() {
        return Err(format!(
            "{} bytes, an {} key has {}",
            bytes.len(),
            algorithm.name(),
            algorithm.public_key_len()
        ));
    }
    PublicKey::from_raw(algorithm, &bytes)
        .map_err(|e| format!("not an {} key: {e}", algorithm.name()))
}

/// Parses a public key ([`parse_public_key`]) that `suite` must admit.
pub fn parse_public_key_of(suite: CryptoSuite, text: &str) -> Result<PublicKey, String> {
    let key = parse_public_key(text)?;
    check_suite(suite, &key)?;
    Ok(key)
}

/// Refuses `key` unless `suite` admits it, with a reason naming both.
fn check_suite(suite: CryptoSuite, key: &PublicKey) -> Result<(), String> {
    suite.check_key(key).map_err(|_| {
        format!(
            "an {} key, but the genesis suite is {suite} (its keys are {})",
            key.algorithm().name(),
            suite.signature_algorithm().name()
        )
    })
}

/// A public key as the configuration files write it: an Ed25519 key as its
/// 64 hex digits (as before SM2 support), any other as `algorithm:hex`
/// (`sm2:` and 66 hex digits).
pub fn public_key_hex(key: &PublicKey) -> String {
    match key.algorithm() {
        SignatureAlgorithm::Ed25519 => hex::encode(key.raw_bytes()),
        other => format!("{}:{}", other.name(), hex::encode(key.raw_bytes())),
    }
}

/// BLAKE3 of `bytes`, hex: the genesis file's pin.
pub fn genesis_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

// ---------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------

/// A chain of the validated genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisChain {
    /// The chain.
    pub id: ChainId,
    /// Main or side (with its anchoring interval).
    pub role: ChainRole,
    /// Its engine.
    pub engine: EngineKind,
    /// Its application.
    pub app: AppKind,
    /// Its genesis validators.
    pub validators: ValidatorSet,
}

/// A validated genesis file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// The network id.
    pub network_id: String,
    /// Time of the genesis state.
    pub time: Timestamp,
    /// The network's crypto suite: every chain's.
    pub suite: CryptoSuite,
    /// The founding departments: id, name, key.
    pub departments: Vec<(DepartmentId, String, PublicKey)>,
    /// The founding departments' keys of suites other than the network's
    /// (`suite_keys`), by department; departments without any are absent.
    pub suite_keys: BTreeMap<DepartmentId, Vec<PublicKey>>,
    /// The chains, main chain first.
    pub chains: Vec<GenesisChain>,
    /// The main chain's id.
    pub main: ChainId,
    /// BLAKE3 of the file's bytes, hex.
    pub hash: String,
}

impl Genesis {
    /// Reads and validates a genesis file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        Self::parse(path, &text)
    }

    /// Validates genesis `text`; `file` names it in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Self, ConfigError> {
        let raw: GenesisFile = parse_toml(file, text)?;
        let err = |field: String, reason: String| field_err(file, field, reason);
        if raw.network_id.is_empty() || raw.network_id.len() > 64 {
            return Err(err("network_id".into(), "must be 1 to 64 bytes".into()));
        }
        let suite = match &raw.suite {
            None => CryptoSuite::default(),
            Some(name) => name
                .parse::<CryptoSuite>()
                .map_err(|e| err("suite".into(), e.to_string()))?,
        };
        let mut departments = Vec::new();
        let mut dept_keys = BTreeSet::new();
        let mut dept_ids = BTreeSet::new();
        let mut suite_keys: BTreeMap<DepartmentId, Vec<PublicKey>> = BTreeMap::new();
        // Every department key, node keys and suite keys, for uniqueness.
        let mut all_keys = BTreeSet::new();
        for (i, d) in raw.departments.iter().enumerate() {
            let id = DepartmentId::new(d.id.clone())
                .map_err(|e| err(format!("departments[{i}].id"), e.to_string()))?;
            if !dept_ids.insert(id.clone()) {
                return Err(err(
                    format!("departments[{i}].id"),
                    format!("department {id} is listed twice"),
                ));
            }
            let key = parse_public_key_of(suite, &d.public_key)
                .map_err(|e| err(format!("departments[{i}].public_key"), e))?;
            if !dept_keys.insert(key.clone()) || !all_keys.insert(key.clone()) {
                return Err(err(
                    format!("departments[{i}].public_key"),
                    "this key belongs to another department too".into(),
                ));
            }
            let mut own: Vec<PublicKey> = Vec::new();
            for (j, text) in d.suite_keys.iter().enumerate() {
                let at = format!("departments[{i}].suite_keys[{j}]");
                let other = parse_public_key(text).map_err(|e| err(at.clone(), e))?;
                let other_suite = CryptoSuite::of_key(&other);
                if other_suite == suite {
                    return Err(err(
                        at,
                        format!("a key of the genesis suite {suite}: that key is the department's public_key"),
                    ));
                }
                if own.iter().any(|k| CryptoSuite::of_key(k) == other_suite) {
                    return Err(err(
                        at,
                        format!("a second key of suite {other_suite}; at most one per suite"),
                    ));
                }
                if !all_keys.insert(other.clone()) {
                    return Err(err(at, "this key belongs to a department already".into()));
                }
                own.push(other);
            }
            if !own.is_empty() {
                suite_keys.insert(id.clone(), own);
            }
            departments.push((id, d.name.clone(), key));
        }
        if departments.is_empty() {
            return Err(err("departments".into(), "at least one department".into()));
        }
        let mut chains: Vec<GenesisChain> = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, c) in raw.chains.iter().enumerate() {
            let at = |f: &str| format!("chains[{i}].{f}");
            let id = ChainId::new(c.id.clone()).map_err(|e| err(at("id"), e.to_string()))?;
            if !ids.insert(id.clone()) {
                return Err(err(at("id"), format!("chain {id} is listed twice")));
            }
            let role = match (c.role, c.anchor_every) {
                (RoleKind::Main, None) => ChainRole::Main,
                (RoleKind::Main, Some(_)) => {
                    return Err(err(
                        at("anchor_every"),
                        "only side chains anchor; remove it from the main chain".into(),
                    ))
                }
                (RoleKind::Side, Some(k)) if k >= 1 => ChainRole::Side { anchor_every: k },
                (RoleKind::Side, Some(_)) => {
                    return Err(err(at("anchor_every"), "must be at least 1".into()))
                }
                (RoleKind::Side, None) => {
                    return Err(err(
                        at("anchor_every"),
                        "a side chain needs its anchoring interval".into(),
                    ))
                }
            };
            match (c.role, c.app) {
                (RoleKind::Main, AppKind::Governance) | (RoleKind::Side, AppKind::Kv) => {}
                (RoleKind::Main, other) => {
                    return Err(err(
                        at("app"),
                        format!("the main chain runs \"governance\", not {other:?}"),
                    ))
                }
                (RoleKind::Side, AppKind::Governance) => {
                    return Err(err(
                        at("app"),
                        "\"governance\" runs on the main chain only".into(),
                    ))
                }
            }
            if c.role == RoleKind::Main && c.engine != EngineChoice::Bft {
                return Err(err(at("engine"), "the main chain is always \"bft\"".into()));
            }
            let chain_suite = match &c.suite {
                None => suite,
                Some(name) => name
                    .parse::<CryptoSuite>()
                    .map_err(|e| err(at("suite"), e.to_string()))?,
            };
            if c.role == RoleKind::Main && chain_suite != suite {
                return Err(err(
                    at("suite"),
                    format!("the main chain runs the network's suite {suite}, not {chain_suite}"),
                ));
            }
            let mut validators = Vec::new();
            for (j, v) in c.validators.iter().enumerate() {
                let vat = |f: &str| format!("chains[{i}].validators[{j}].{f}");
                let key = parse_public_key_of(chain_suite, &v.public_key)
                    .map_err(|e| err(vat("public_key"), e))?;
                let registered = if chain_suite == suite {
                    dept_keys.contains(&key)
                } else {
                    suite_keys.values().flatten().any(|k| *k == key)
                };
                if !registered {
                    return Err(err(
                        vat("public_key"),
                        if chain_suite == suite {
                            "not the key of any department in `departments`".into()
                        } else {
                            format!(
                                "not a key of suite {chain_suite} in any department's `suite_keys`"
                            )
                        },
                    ));
                }
                if v.power == 0 {
                    return Err(err(vat("power"), "must be at least 1".into()));
                }
                if c.engine == EngineChoice::Raft && v.power != 1 {
                    return Err(err(
                        vat("power"),
                        "Raft ignores voting power; it must be 1".into(),
                    ));
                }
                validators.push(Validator {
                    public_key: key,
                    power: v.power,
                });
            }
            let validators =
                ValidatorSet::new(validators).map_err(|e| err(at("validators"), e.to_string()))?;
            chains.push(GenesisChain {
                id,
                role,
                engine: c.engine.into(),
                app: c.app,
                validators,
            });
        }
        let mains = chains.iter().filter(|c| c.role == ChainRole::Main).count();
        chains.sort_by_key(|c| c.role != ChainRole::Main);
        let main = match chains.first() {
            Some(c) if mains == 1 => c.id.clone(),
            _ => {
                return Err(err(
                    "chains".into(),
                    format!("exactly one chain must have role \"main\", found {mains}"),
                ))
            }
        };
        let genesis = Genesis {
            main,
            network_id: raw.network_id,
            time: Timestamp::new(raw.genesis_time_ms),
            suite,
            departments,
            suite_keys,
            chains,
            hash: genesis_hash(text.as_bytes()),
        };
        genesis
            .governance_genesis()
            .validate()
            .map_err(|e| err("chains".into(), e.to_string()))?;
        Ok(genesis)
    }

    /// The main chain.
    pub fn main_chain(&self) -> Option<&GenesisChain> {
        self.chains.iter().find(|c| c.role == ChainRole::Main)
    }

    /// The chain `id`.
    pub fn chain(&self, id: &ChainId) -> Option<&GenesisChain> {
        self.chains.iter().find(|c| &c.id == id)
    }

    /// The main chain's governance genesis: the departments with their
    /// main-chain power, and every side chain.
    pub fn governance_genesis(&self) -> GovernanceGenesis {
        let main = self.main_chain();
        let power = |key: &PublicKey| {
            main.and_then(|m| m.validators.find(key).map(|(_, v)| v.power))
                .unwrap_or(0)
        };
        GovernanceGenesis {
            main_chain: self.main.clone(),
            departments: self
                .departments
                .iter()
                .map(|(id, name, key)| GenesisDepartment {
                    id: id.clone(),
                    name: name.clone(),
                    node_key: key.clone(),
                    power: power(key),
                    suite_keys: self.suite_keys.get(id).cloned().unwrap_or_default(),
                })
                .collect(),
            side_chains: self
                .chains
                .iter()
                .filter_map(|c| match c.role {
                    ChainRole::Side { anchor_every } => Some(SideChainSpec {
                        chain_id: c.id.clone(),
                        engine: c.engine,
                        validators: c.validators.clone(),
                        anchor_interval: anchor_every,
                    }),
                    ChainRole::Main => None,
                })
                .collect(),
        }
    }

    /// The [`ChainSpec`] of chain `id` as every node runs it.
    pub fn chain_spec(&self, id: &ChainId) -> Result<ChainSpec, ConfigError> {
        let chain = self.chain(id).ok_or_else(|| ConfigError::Field {
            file: PathBuf::from("genesis"),
            field: "chains".into(),
            reason: format!("no chain {id}"),
        })?;
        let mut spec = match chain.role {
            ChainRole::Main => ChainSpec::main_chain(self.governance_genesis()).map_err(|e| {
                ConfigError::Field {
                    file: PathBuf::from("genesis"),
                    field: "chains".into(),
                    reason: e.to_string(),
                }
            })?,
            ChainRole::Side { anchor_every } => {
                let side = SideChainSpec {
                    chain_id: chain.id.clone(),
                    engine: chain.engine,
                    validators: chain.validators.clone(),
                    anchor_interval: anchor_every,
                };
                let app: Arc<dyn govchain_core::app::Application> = match chain.app {
                    AppKind::Kv => Arc::new(KvApp),
                    AppKind::Governance => {
                        return Err(ConfigError::Field {
                            file: PathBuf::from("genesis"),
                            field: "chains".into(),
                            reason: format!("side chain {id} can not run governance"),
                        })
                    }
                };
                ChainSpec::side_chain(&side, app)
            }
        };
        spec.genesis_time = self.time;
        Ok(spec)
    }
}

/// A peer of the validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its name.
    pub name: String,
    /// Its key.
    pub key: PublicKey,
    /// Its address.
    pub address: SocketAddr,
}

/// A validated node file with its genesis: everything `govchain run` needs
/// except the secret key, which [`NodeSettings::load_key`] reads.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// The node file it was read from.
    pub path: PathBuf,
    /// The node's name.
    pub name: String,
    /// The key file (resolved).
    pub key_file: PathBuf,
    /// Key files of keys loaded ahead of their rotation (resolved).
    pub rotation_key_files: Vec<PathBuf>,
    /// Key files of the department's keys of other suites (resolved).
    pub suite_key_files: Vec<PathBuf>,
    /// The data directory (resolved).
    pub data_dir: PathBuf,
    /// The P2P listen address.
    pub p2p_listen: SocketAddr,
    /// The API listen address.
    pub api_listen: SocketAddr,
    /// The peers.
    pub peers: Vec<Peer>,
    /// The API settings.
    pub api: ApiSection,
    /// The genesis file (resolved).
    pub genesis_file: PathBuf,
    /// The validated genesis.
    pub genesis: Genesis,
    /// The chains named in `node.chains`, if any.
    pub chains: Option<Vec<ChainId>>,
    /// Engine tick in milliseconds.
    pub tick_ms: u64,
    /// State retention per chain, in heights (`None`: keep all).
    pub retain_state_versions: Option<u64>,
}

impl NodeSettings {
    /// Reads and validates the node file at `path` and the genesis file it
    /// names (whose hash must match `node.genesis_blake3`).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read_text(path)?;
        let raw: NodeFile = parse_toml(path, &text)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let err = |field: String, reason: String| field_err(path, field, reason);
        let n = &raw.node;
        if n.name.is_empty() {
            return Err(err("node.name".into(), "must not be empty".into()));
        }
        if n.tick_ms == 0 || n.tick_ms > 1_000 {
            return Err(err("node.tick_ms".into(), "must be 1..=1000".into()));
        }
        if n.retain_state_versions == Some(0) {
            return Err(err(
                "node.retain_state_versions".into(),
                "must be at least 1 (omit it to keep every height's state)".into(),
            ));
        }
        if !(1..=64).contains(&raw.api.workers) {
            return Err(err("api.workers".into(), "must be 1..=64".into()));
        }
        if raw.api.max_body_bytes < 1024 {
            return Err(err(
                "api.max_body_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        let pinned = n.genesis_blake3.to_ascii_lowercase();
        if pinned.len() != 64 || hex::decode(&pinned).is_err() {
            return Err(err(
                "node.genesis_blake3".into(),
                "must be 64 hex digits (BLAKE3 of the genesis file)".into(),
            ));
        }
        let genesis_file = resolve(&n.genesis_file);
        let genesis_text = read_text(&genesis_file)?;
        let actual = genesis_hash(genesis_text.as_bytes());
        if actual != pinned {
            return Err(ConfigError::GenesisMismatch {
                file: genesis_file,
                expected: pinned,
                actual,
            });
        }
        let genesis = Genesis::parse(&genesis_file, &genesis_text)?;
        let mut peers = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in raw.peers.iter().enumerate() {
            let key = parse_public_key_of(genesis.suite, &p.public_key)
                .map_err(|e| err(format!("peers[{i}].public_key"), e))?;
            if !genesis.departments.iter().any(|(_, _, k)| *k == key) {
                return Err(err(
                    format!("peers[{i}].public_key"),
                    "not the key of any department in the genesis file".into(),
                ));
            }
            if !seen.insert(key.clone()) {
                return Err(err(
                    format!("peers[{i}].public_key"),
                    "this peer is listed twice".into(),
                ));
            }
            peers.push(Peer {
                name: p.name.clone(),
                key,
                address: p.address,
            });
        }
        let chains = match &n.chains {
            None => None,
            Some(list) => {
                let mut out = Vec::new();
                for (i, c) in list.iter().enumerate() {
                    let id = ChainId::new(c.clone())
                        .map_err(|e| err(format!("node.chains[{i}]"), e.to_string()))?;
                    if genesis.chain(&id).is_none() {
                        return Err(err(
                            format!("node.chains[{i}]"),
                            format!("no chain {id} in the genesis file"),
                        ));
                    }
                    out.push(id);
                }
                if out.is_empty() {
                    return Err(err("node.chains".into(), "run at least one chain".into()));
                }
                Some(out)
            }
        };
        Ok(NodeSettings {
            path: path.to_owned(),
            name: n.name.clone(),
            key_file: resolve(&n.key_file),
            rotation_key_files: n.rotation_key_files.iter().map(|f| resolve(f)).collect(),
            suite_key_files: n.suite_key_files.iter().map(|f| resolve(f)).collect(),
            data_dir: resolve(&n.data_dir),
            p2p_listen: n.p2p_listen,
            api_listen: n.api_listen,
            peers,
            api: raw.api,
            genesis_file,
            genesis,
            chains,
            tick_ms: n.tick_ms,
            retain_state_versions: n.retain_state_versions,
        })
    }

    /// Reads the node's key file, whose algorithm must be the genesis
    /// suite's.
    pub fn load_key(&self) -> Result<Arc<SecretKey>, ConfigError> {
        self.load_key_of_suite(&self.key_file)
    }

    /// Reads the rotation key files, in order; each must be of the genesis
    /// suite's algorithm.
    pub fn load_rotation_keys(&self) -> Result<Vec<Arc<SecretKey>>, ConfigError> {
        self.rotation_key_files
            .iter()
            .map(|f| self.load_key_of_suite(f))
            .collect()
    }

    /// Reads the suite key files, in order: each must be of a suite other
    /// than the genesis suite, and no two of one suite (a department holds
    /// one key per suite). Errors name the file and `algorithm`.
    pub fn load_suite_keys(&self) -> Result<Vec<Arc<SecretKey>>, ConfigError> {
        let mut suites = BTreeSet::new();
        let mut keys = Vec::new();
        for path in &self.suite_key_files {
            let key = load_key_file(path)?;
            let suite = CryptoSuite::of_key(&key.public_key());
            if suite == self.genesis.suite {
                return Err(field_err(
                    path,
                    "algorithm",
                    format!(
                        "a key of the genesis suite {suite}; a suite key file holds a key of another suite (use key_file or rotation_key_files)"
                    ),
                ));
            }
            if !suites.insert(suite) {
                return Err(field_err(
                    path,
                    "algorithm",
                    format!("a second key of suite {suite} in suite_key_files"),
                ));
            }
            keys.push(Arc::new(key));
        }
        Ok(keys)
    }

    fn load_key_of_suite(&self, path: &Path) -> Result<Arc<SecretKey>, ConfigError> {
        let key = load_key_file(path)?;
        check_suite(self.genesis.suite, &key.public_key())
            .map_err(|reason| field_err(path, "algorithm", reason))?;
        Ok(Arc::new(key))
    }

    /// The chains this node runs with key `me`: `node.chains` if given,
    /// else the main chain and every side chain `me` validates.
    pub fn chains_for(&self, me: &PublicKey) -> Vec<ChainId> {
        self.chains_for_keys(std::slice::from_ref(me))
    }

    /// The chains this node runs with `keys` (its node key and suite
    /// keys): `node.chains` if given, else the main chain and every side
    /// chain one of `keys` validates.
    pub fn chains_for_keys(&self, keys: &[PublicKey]) -> Vec<ChainId> {
        match &self.chains {
            Some(list) => list.clone(),
            None => self
                .genesis
                .chains
                .iter()
                .filter(|c| {
                    c.role == ChainRole::Main || keys.iter().any(|k| c.validators.find(k).is_some())
                })
                .map(|c| c.id.clone())
                .collect(),
        }
    }

    /// The node's [`NodeConfig`] for `signer` on `storage`. A key that is
    /// not a founding department's belongs to a department that joins by
    /// governance: its node runs the main chain as a follower (peers admit
    /// and serve it once the registry lists it) until a validator change
    /// makes it sign.
    pub fn node_config(
        &self,
        signer: Arc<dyn Signer>,
        storage: StorageKind,
    ) -> Result<NodeConfig, ConfigError> {
        self.node_config_with_keys(signer, Vec::new(), storage)
    }

    /// [`node_config`](Self::node_config) for a node that also holds
    /// `suite_keys` ([`load_suite_keys`](Self::load_suite_keys)): they go
    /// to [`NodeConfig::suite_keys`], and by default the node also runs the
    /// side chains they validate.
    pub fn node_config_with_keys(
        &self,
        signer: Arc<dyn Signer>,
        suite_keys: Vec<Arc<dyn Signer>>,
        storage: StorageKind,
    ) -> Result<NodeConfig, ConfigError> {
        let me = signer.public_key();
        let mut keys = vec![me.clone()];
        keys.extend(suite_keys.iter().map(|k| k.public_key()));
        let mut config = NodeConfig::new(self.name.clone(), signer, storage);
        config.tick_ms = self.tick_ms;
        config.suite_keys = suite_keys;
        for id in self.chains_for_keys(&keys) {
            let mut spec = self.genesis.chain_spec(&id)?;
            spec.retain_state_versions = self.retain_state_versions;
            if !spec.peers.contains(&me) {
                spec.peers.push(me.clone());
            }
            config.chains.push(spec);
        }
        Ok(config)
    }

    /// The node's config on durable storage in its data directory.
    pub fn durable_node_config(&self, signer: Arc<dyn Signer>) -> Result<NodeConfig, ConfigError> {
        self.node_config(signer, StorageKind::Durable(self.data_dir.clone()))
    }

    /// The node's config on durable storage in its data directory, with
    /// its suite keys ([`node_config_with_keys`](Self::node_config_with_keys)).
    pub fn durable_node_config_with_keys(
        &self,
        signer: Arc<dyn Signer>,
        suite_keys: Vec<Arc<dyn Signer>>,
    ) -> Result<NodeConfig, ConfigError> {
        self.node_config_with_keys(
            signer,
            suite_keys,
            StorageKind::Durable(self.data_dir.clone()),
        )
    }

    /// The peers as the TCP transport wants them: key to address.
    pub fn peer_addresses(&self) -> BTreeMap<PublicKey, SocketAddr> {
        self.peers
            .iter()
            .map(|p| (p.key.clone(), p.address))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Key files
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileDoc {
    algorithm: String,
    public_key: String,
    secret_seed: String,
}

impl Drop for KeyFileDoc {
    fn drop(&mut self) {
        self.secret_seed.zeroize();
    }
}

/// Writes a fresh key of `suite`'s signature algorithm to `path` (which
/// must not exist), readable only by its owner on unix (mode 0600); returns
/// its public key.
pub fn generate_key_file(path: &Path, suite: CryptoSuite) -> Result<PublicKey, ConfigError> {
    // `SecretKey` does not export its seed, so draw the seed here (as
    // `SecretKey::generate_for` does) and derive the key from it.
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, seed.as_mut());
    write_key_file(path, suite, &seed)
}

/// Writes the key of `suite`'s algorithm with 32-byte `seed`
/// ([`SecretKey::from_seed_for`]) to `path` (which must not exist), mode
/// 0600 on unix.
pub fn write_key_file(
    path: &Path,
    suite: CryptoSuite,
    seed: &[u8; 32],
) -> Result<PublicKey, ConfigError> {
    let key = SecretKey::from_seed_for(suite, seed);
    let algorithm = key.algorithm();
    let doc = KeyFileDoc {
        algorithm: algorithm.name().into(),
        public_key: public_key_hex(&key.public_key()),
        secret_seed: hex::encode(seed),
    };
    let body = toml::to_string(&doc).map_err(|e| field_err(path, "(document)", e))?;
    let what = match algorithm {
        SignatureAlgorithm::Sm2 => "an SM2 (GB/T 32918) seed, for suite sm2-sm3",
        _ => "an Ed25519 (RFC 8032) seed",
    };
    let mut text = zeroize::Zeroizing::new(format!(
        "# govchain node key: {what}.\n\
         # SECRET: keep this file private (mode 0600); it signs this department's votes.\n{body}"
    ));
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            ConfigError::Exists {
                path: path.to_owned(),
            }
        } else {
            io(e)
        }
    })?;
    use std::io::Write;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    text.zeroize();
    Ok(key.public_key())
}

/// Reads a key file written by [`generate_key_file`] (of either
/// algorithm), checking that its public key matches its seed.
pub fn load_key_file(path: &Path) -> Result<SecretKey, ConfigError> {
    let mut text = zeroize::Zeroizing::new(read_text(path)?);
    let doc: KeyFileDoc = parse_toml(path, &text)?;
    text.zeroize();
    let Some(algorithm) = SignatureAlgorithm::ALL
        .iter()
        .copied()
        .find(|a| a.name() == doc.algorithm)
    else {
        return Err(field_err(
            path,
            "algorithm",
            format!(
                "unsupported algorithm {:?}, expected \"ed25519\" or \"sm2\"",
                doc.algorithm
            ),
        ));
    };
    let mut bytes = zeroize::Zeroizing::new(
        hex::decode(&doc.secret_seed).map_err(|e| field_err(path, "secret_seed", e))?,
    );
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(field_err(
            path,
            "secret_seed",
            format!("{} bytes, a seed has 32", bytes.len()),
        ));
    }
    seed.copy_from_slice(&bytes);
    bytes.zeroize();
    let key = SecretKey::from_seed_for(CryptoSuite::for_algorithm(algorithm), &seed);
    let stated = parse_public_key(&doc.public_key).map_err(|e| field_err(path, "public_key", e))?;
    if stated != key.public_key() {
        return Err(field_err(
            path,
            "public_key",
            "does not match the secret seed".to_owned(),
        ));
    }
    Ok(key)
}

// ---------------------------------------------------------------------------
// Writing a local network (`govchain genesis`)
// ---------------------------------------------------------------------------

/// A side chain of a [`NetworkPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSideChain {
    /// Its id.
    pub id: ChainId,
    /// Its engine.
    pub engine: EngineKind,
    /// Its crypto suite; `None` runs the network's. With another suite,
    /// every department gets a key of it (`node.<suite>.key`, listed in
    /// `suite_keys` and `suite_key_files`).
    pub suite: Option<CryptoSuite>,
}

/// What `govchain genesis` writes: a network of `departments` nodes on one
/// host, one main chain and side chains, every department validating
/// every chain with power 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    /// The network id.
    pub network_id: String,
    /// Number of departments (1..=64).
    pub departments: usize,
    /// The main chain's id.
    pub main_chain: ChainId,
    /// The side chains (application `kv`).
    pub side_chains: Vec<PlannedSideChain>,
    /// Side chains anchor every this many blocks.
    pub anchor_every: u64,
    /// The host the nodes listen on.
    pub host: IpAddr,
    /// Department `i` (from 0) listens for peers on `base_port + 2i` and
    /// serves its API on `base_port + 2i + 1`.
    pub base_port: u16,
    /// Genesis time, Unix milliseconds.
    pub genesis_time_ms: u64,
    /// The network's crypto suite: the departments' keys are of its
    /// algorithm.
    pub suite: CryptoSuite,
}

/// One department written by [`write_network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDepartment {
    /// Its directory.
    pub dir: PathBuf,
    /// Its node file.
    pub config: PathBuf,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its keys of the side chains' other suites, one per suite, each in
    /// its directory as [`suite_key_file_name`].
    pub suite_keys: Vec<PublicKey>,
    /// Its P2P address.
    pub p2p: SocketAddr,
    /// Its API address.
    pub api: SocketAddr,
}

/// File name of a department's node file.
pub const NODE_FILE: &str = "node.toml";
/// File name of a department's key file.
pub const KEY_FILE: &str = "node.key";
/// File name of the genesis file.
pub const GENESIS_FILE: &str = "genesis.toml";
/// File name of a department's key of `suite` (a side chain's suite
/// other than the network's): `node.<suite>.key`.
pub fn suite_key_file_name(suite: CryptoSuite) -> String {
    format!("node.{}.key", suite.name())
}
/// Directory (under the output) of the trusted validator-set files.
pub const TRUSTED_DIR: &str = "trusted";

/// Writes `plan` under `out`: `out/dept-N/{node.toml,node.key,genesis.toml}`
/// for each department (the genesis files byte-identical), `out/genesis.toml`,
/// and `out/trusted/<chain>.json`, each chain's genesis validator set for
/// `govchain verify`. Refuses to overwrite existing files.
pub fn write_network(
    plan: &NetworkPlan,
    out: &Path,
) -> Result<Vec<WrittenDepartment>, ConfigError> {
    let plan_err =
        |field: &str, reason: String| field_err(Path::new("(genesis plan)"), field, reason);
    if !(1..=64).contains(&plan.departments) {
        return Err(plan_err("departments", "must be 1..=64".into()));
    }
    let top = u32::from(plan.base_port) + 2 * plan.departments as u32;
    if plan.base_port == 0 || top > u32::from(u16::MAX) {
        return Err(plan_err(
            "base_port",
            format!("ports {}..{top} do not fit", plan.base_port),
        ));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ConfigError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    // The side chains' suites other than the network's, in suite order.
    let other_suites: BTreeSet<CryptoSuite> = plan
        .side_chains
        .iter()
        .filter_map(|c| c.suite)
        .filter(|s| *s != plan.suite)
        .collect();
    let mut written = Vec::new();
    for i in 0..plan.departments {
        let dir = out.join(format!("dept-{}", i + 1));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let public_key = generate_key_file(&dir.join(KEY_FILE), plan.suite)?;
        let suite_keys = other_suites
            .iter()
            .map(|s| generate_key_file(&dir.join(suite_key_file_name(*s)), *s))
            .collect::<Result<Vec<_>, _>>()?;
        let port = plan.base_port + 2 * i as u16;
        written.push(WrittenDepartment {
            config: dir.join(NODE_FILE),
            dir,
            public_key,
            suite_keys,
            p2p: SocketAddr::new(plan.host, port),
            api: SocketAddr::new(plan.host, port + 1),
        });
    }
    // Every department validates every chain with its key of the chain's
    // suite.
    let validators_of = |suite: CryptoSuite| -> Vec<ValidatorEntry> {
        written
            .iter()
            .filter_map(|d| {
                std::iter::once(&d.public_key)
                    .chain(&d.suite_keys)
                    .find(|k| CryptoSuite::of_key(k) == suite)
            })
            .map(|k| ValidatorEntry {
                public_key: public_key_hex(k),
                power: 1,
            })
            .collect()
    };
    let validators = validators_of(plan.suite);
    let mut chains = vec![ChainEntry {
        id: plan.main_chain.as_str().to_owned(),
        role: RoleKind::Main,
        anchor_every: None,
        engine: EngineChoice::Bft,
        app: AppKind::Governance,
        suite: None,
        validators,
    }];
    for side in &plan.side_chains {
        let suite = side.suite.filter(|s| *s != plan.suite);
        chains.push(ChainEntry {
            id: side.id.as_str().to_owned(),
            role: RoleKind::Side,
            anchor_every: Some(plan.anchor_every),
            engine: side.engine.into(),
            app: AppKind::Kv,
            suite: suite.map(|s| s.name().to_owned()),
            validators: validators_of(suite.unwrap_or(plan.suite)),
        });
    }
    let genesis_doc = GenesisFile {
        network_id: plan.network_id.clone(),
        genesis_time_ms: plan.genesis_time_ms,
        // The default suite is left implicit: such a genesis file reads
        // exactly as before suites were configurable.
        suite: (plan.suite != CryptoSuite::default()).then(|| plan.suite.name().to_owned()),
        departments: written
            .iter()
            .enumerate()
            .map(|(i, d)| DepartmentEntry {
                id: format!("dept-{}", i + 1),
                name: format!("Department {}", i + 1),
                public_key: public_key_hex(&d.public_key),
                suite_keys: d.suite_keys.iter().map(public_key_hex).collect(),
            })
            .collect(),
        chains,
    };
    let genesis_text = format!(
        "# govchain genesis: identical on every department (node.genesis_blake3 pins it).\n{}",
        toml::to_string(&genesis_doc).map_err(|e| plan_err("genesis", e.to_string()))?
    );
    // Check what we are about to write is a valid genesis.
    let genesis = Genesis::parse(Path::new(GENESIS_FILE), &genesis_text)?;
    write_new(&out.join(GENESIS_FILE), genesis_text.as_bytes())?;
    let trusted = out.join(TRUSTED_DIR);
    std::fs::create_dir_all(&trusted).map_err(io(&trusted))?;
    for chain in &genesis.chains {
        let set = crate::api::proof::TrustedSet::new(
            chain.id.clone(),
            chain.engine,
            chain.validators.clone(),
        );
        write_new(
            &trusted.join(format!("{}.json", chain.id)),
            set.to_json().as_bytes(),
        )?;
    }
    for (i, d) in written.iter().enumerate() {
        write_new(&d.dir.join(GENESIS_FILE), genesis_text.as_bytes())?;
        let node = NodeFile {
            node: NodeSection {
                name: format!("dept-{}", i + 1),
                key_file: PathBuf::from(KEY_FILE),
                rotation_key_files: Vec::new(),
                suite_key_files: other_suites
                    .iter()
                    .map(|s| PathBuf::from(suite_key_file_name(*s)))
                    .collect(),
                data_dir: PathBuf::from("data"),
                p2p_listen: d.p2p,
                api_listen: d.api,
                genesis_file: PathBuf::from(GENESIS_FILE),
                genesis_blake3: genesis.hash.clone(),
                chains: None,
                tick_ms: default_tick_ms(),
                retain_state_versions: None,
            },
            peers: written
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, p)| PeerEntry {
                    name: format!("dept-{}", j + 1),
                    public_key: public_key_hex(&p.public_key),
                    address: p.p2p,
                })
                .collect(),
            api: ApiSection::default(),
        };
        let text = format!(
            "# govchain node configuration of dept-{} (see `govchain run --config`).\n{}",
            i + 1,
            toml::to_string(&node).map_err(|e| plan_err("node", e.to_string()))?
        );
        write_new(&d.config, text.as_bytes())?;
    }
    Ok(written)
}

/// Writes `bytes` to a new file at `path`.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ConfigError::Exists {
                    path: path.to_owned(),
                }
            } else {
                ConfigError::Io {
                    path: path.to_owned(),
                    source: e,
                }
            }
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Checks that `app` names an application this build can run; used by
/// tools that print a chain's application.
pub fn app_name(app: AppKind) -> &'static str {
    match app {
        AppKind::Governance => "governance",
        AppKind::Kv => "kv",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn plan(departments: usize) -> NetworkPlan {
        NetworkPlan {
            network_id: "test-net".into(),
            departments,
            main_chain: ChainId::new("main").unwrap(),
            side_chains: vec![
                PlannedSideChain {
                    id: ChainId::new("svc").unwrap(),
                    engine: EngineKind::Bft,
                    suite: None,
                },
                PlannedSideChain {
                    id: ChainId::new("social").unwrap(),
                    engine: EngineKind::Raft,
                    suite: None,
                },
            ],
            anchor_every: 4,
            host: IpAddr::from([127, 0, 0, 1]),
            base_port: 31000,
            genesis_time_ms: 0,
            suite: CryptoSuite::Ed25519Blake3,
        }
    }

    fn sm_plan(departments: usize) -> NetworkPlan {
        NetworkPlan {
            suite: CryptoSuite::Sm2Sm3,
            ..plan(departments)
        }
    }

    #[test]
    fn what_genesis_writes_loads_back_on_every_department() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(4), dir.path()).unwrap();
        assert_eq!(written.len(), 4);
        let reference = std::fs::read(dir.path().join(GENESIS_FILE)).unwrap();
        let mut ports = BTreeSet::new();
        for d in &written {
            // The genesis copies are byte-identical.
            assert_eq!(std::fs::read(d.dir.join(GENESIS_FILE)).unwrap(), reference);
            let s = NodeSettings::load(&d.config).unwrap();
            assert_eq!(s.genesis.hash, genesis_hash(&reference));
            assert_eq!(s.p2p_listen, d.p2p);
            assert_eq!(s.api_listen, d.api);
            assert!(ports.insert(d.p2p.port()) && ports.insert(d.api.port()));
            assert_eq!(s.peers.len(), 3);
            assert!(s.peers.iter().all(|p| p.key != d.public_key));
            assert_eq!(s.data_dir, d.dir.join("data"));
            let key = s.load_key().unwrap();
            assert_eq!(key.public_key(), d.public_key);
            let config = s.durable_node_config(key).unwrap();
            config.validate().unwrap();
            let ids: Vec<&str> = config.chains.iter().map(|c| c.chain_id.as_str()).collect();
            assert_eq!(ids, ["main", "svc", "social"]);
            assert_eq!(config.chains[0].role, ChainRole::Main);
            assert_eq!(config.chains[2].engine, EngineKind::Raft);
            assert_eq!(config.chains[1].role, ChainRole::Side { anchor_every: 4 });
            assert!(
                matches!(config.storage, StorageKind::Durable(ref p) if *p == d.dir.join("data"))
            );
        }
        // The governance genesis registers both side chains and every
        // department with main-chain power 1.
        let g = Genesis::load(&dir.path().join(GENESIS_FILE)).unwrap();
        let gov = g.governance_genesis();
        assert_eq!(gov.side_chains.len(), 2);
        assert!(gov.departments.iter().all(|d| d.power == 1));
        // Trusted sets match the genesis.
        for chain in &g.chains {
            let text = std::fs::read_to_string(
                dir.path()
                    .join(TRUSTED_DIR)
                    .join(format!("{}.json", chain.id)),
            )
            .unwrap();
            let t = crate::api::proof::TrustedSet::from_json(&text).unwrap();
            assert_eq!(t.validators, chain.validators);
            assert_eq!(t.engine, chain.engine);
        }
        // Nothing is overwritten.
        assert!(matches!(
            write_network(&plan(4), dir.path()),
            Err(ConfigError::Exists { .. })
        ));
    }

    #[test]
    fn a_changed_genesis_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(2), dir.path()).unwrap();
        let copy = written[1].dir.join(GENESIS_FILE);
        let text = std::fs::read_to_string(&copy).unwrap();
        std::fs::write(&copy, text.replace("test-net", "test-nex")).unwrap();
        let err = NodeSettings::load(&written[1].config).unwrap_err();
        assert!(matches!(err, ConfigError::GenesisMismatch { .. }), "{err}");
        NodeSettings::load(&written[0].config).unwrap();
    }

    fn genesis_text() -> String {
        let dir = tempfile::tempdir().unwrap();
        write_network(&plan(3), dir.path()).unwrap();
        std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap()
    }

    /// Replaces the `n`-th (from 0) occurrence of `from` in `text`.
    fn replace_nth(text: &str, from: &str, to: &str, n: usize) -> String {
        let (i, _) = text
            .match_indices(from)
            .nth(n)
            .unwrap_or_else(|| panic!("no occurrence {n} of {from:?}"));
        format!("{}{to}{}", &text[..i], &text[i + from.len()..])
    }

    fn genesis_error(text: &str) -> String {
        let err = Genesis::parse(Path::new("genesis.toml"), text).unwrap_err();
        err.to_string()
    }

    #[test]
    fn each_bad_genesis_field_is_named() {
        let good = genesis_text();
        Genesis::parse(Path::new("genesis.toml"), &good).unwrap();
        let first_key = good
            .lines()
            .find_map(|l| l.strip_prefix("public_key = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        let cases: Vec<(String, &str, &str)> = vec![
            (
                replace_nth(&good, "engine = \"bft\"", "engine = \"pbft\"", 1),
                "chains[1].engine",
                "unknown variant `pbft`, expected `bft` or `raft`",
            ),
            (
                replace_nth(&good, "role = \"main\"", "role = \"middle\"", 0),
                "chains[0].role",
                "unknown variant `middle`",
            ),
            (
                replace_nth(&good, "app = \"kv\"", "app = \"ledger\"", 0),
                "chains[1].app",
                "unknown variant `ledger`",
            ),
            (
                replace_nth(&good, "app = \"governance\"", "app = \"kv\"", 0),
                "chains[0].app",
                "governance",
            ),
            (
                replace_nth(&good, "app = \"kv\"", "app = \"governance\"", 0),
                "chains[1].app",
                "main chain only",
            ),
            (
                replace_nth(&good, "engine = \"bft\"", "engine = \"raft\"", 0),
                "chains[0].engine",
                "always \"bft\"",
            ),
            (
                replace_nth(&good, "power = 1", "power = 0", 4),
                "chains[1].validators[1].power",
                "at least 1",
            ),
            (
                replace_nth(&good, "power = 1", "power = 2", 7),
                "chains[2].validators[1].power",
                "Raft",
            ),
            (
                replace_nth(&good, "power = 1", "power = -1", 0),
                "chains[0].validators[0].power",
                "",
            ),
            (
                replace_nth(&good, "anchor_every = 4", "anchor_every = 0", 0),
                "chains[1].anchor_every",
                "at least 1",
            ),
            (
                replace_nth(&good, "anchor_every = 4\n", "", 1),
                "chains[2].anchor_every",
                "anchoring interval",
            ),
            (
                replace_nth(
                    &good,
                    "role = \"main\"",
                    "role = \"main\"\nanchor_every = 3",
                    0,
                ),
                "chains[0].anchor_every",
                "only side chains",
            ),
            (
                replace_nth(
                    &good,
                    "role = \"side\"\nanchor_every = 4\nengine = \"bft\"\napp = \"kv\"",
                    "role = \"main\"\nengine = \"bft\"\napp = \"governance\"",
                    0,
                ),
                "chains",
                "exactly one",
            ),
            (
                replace_nth(&good, &first_key, "zz", 1),
                "chains[0].validators[0].public_key",
                "not hex",
            ),
            (
                replace_nth(&good, &first_key, &"ab".repeat(31), 0),
                "departments[0].public_key",
                "31 bytes",
            ),
            (
                replace_nth(&good, "id = \"dept-2\"", "id = \"Dept 2\"", 0),
                "departments[1].id",
                "department id",
            ),
            (
                replace_nth(&good, "id = \"dept-2\"", "id = \"dept-1\"", 0),
                "departments[1].id",
                "twice",
            ),
            (
                replace_nth(&good, "id = \"svc\"", "id = \"Svc!\"", 0),
                "chains[1].id",
                "",
            ),
            (
                replace_nth(&good, "id = \"svc\"", "id = \"main\"", 0),
                "chains[1].id",
                "twice",
            ),
            (
                replace_nth(
                    &good,
                    "role = \"side\"",
                    "role = \"side\"\ncolour = \"blue\"",
                    0,
                ),
                "chains[1].colour",
                "unknown field `colour`",
            ),
            (
                replace_nth(&good, "network_id = \"test-net\"\n", "", 0),
                "(document)",
                "missing field `network_id`",
            ),
            (
                replace_nth(&good, "network_id = \"test-net\"", "network_id = [", 0),
                "(syntax)",
                "line",
            ),
            (
                replace_nth(
                    &good,
                    "genesis_time_ms = 0",
                    "genesis_time_ms = 0\nsuite = \"sm9\"",
                    0,
                ),
                "suite",
                "unknown crypto suite \"sm9\"",
            ),
            // Ed25519 keys under an SM2/SM3 genesis.
            (
                replace_nth(
                    &good,
                    "genesis_time_ms = 0",
                    "genesis_time_ms = 0\nsuite = \"sm2-sm3\"",
                    0,
                ),
                "departments[0].public_key",
                "an ed25519 key, but the genesis suite is sm2-sm3",
            ),
            (
                replace_nth(&good, &first_key, &format!("sm2:{}", "02".repeat(33)), 0),
                "departments[0].public_key",
                "not an sm2 key",
            ),
        ];
        for (text, field, message) in cases {
            let err = genesis_error(&text);
            assert!(
                err.starts_with(&format!("genesis.toml: {field}:")),
                "expected field {field}, got: {err}"
            );
            assert!(err.contains(message), "expected {message:?} in: {err}");
        }
        // A validator that is no department.
        let stranger = public_key_hex(&SecretKey::from_seed(&[9; 32]).public_key());
        let text = replace_nth(&good, &first_key, &stranger, 2);
        let err = genesis_error(&text);
        assert!(
            err.starts_with("genesis.toml: chains[1].validators[0].public_key:"),
            "{err}"
        );
        // An SM2/SM3 genesis with one validator key of the other algorithm.
        let dir = tempfile::tempdir().unwrap();
        write_network(&sm_plan(3), dir.path()).unwrap();
        let sm_good = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
        let sm_key = sm_good
            .lines()
            .find_map(|l| l.strip_prefix("public_key = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        let text = replace_nth(&sm_good, &sm_key, &stranger, 1);
        let err = genesis_error(&text);
        assert!(
            err.starts_with("genesis.toml: chains[0].validators[0].public_key: an ed25519 key, but the genesis suite is sm2-sm3"),
            "{err}"
        );
        // Without the suite line, its SM2 keys are refused by the default.
        let text = sm_good.replace("suite = \"sm2-sm3\"\n", "");
        assert_ne!(text, sm_good);
        let err = genesis_error(&text);
        assert!(
            err.starts_with("genesis.toml: departments[0].public_key: an sm2 key, but the genesis suite is ed25519-blake3"),
            "{err}"
        );
    }

    /// [`plan`] whose BFT side chain `svc` runs SM2/SM3 in an Ed25519
    /// network.
    fn mixed_plan(departments: usize) -> NetworkPlan {
        let mut p = plan(departments);
        p.side_chains[0].suite = Some(CryptoSuite::Sm2Sm3);
        p
    }

    #[test]
    fn a_side_chain_of_another_suite_is_written_and_loaded() {
        // Without other suites nothing about suites is written.
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(2), dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
        assert!(!text.contains("suite"), "{text}");
        let node_text = std::fs::read_to_string(&written[0].config).unwrap();
        assert!(!node_text.contains("suite_key_files"), "{node_text}");

        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&mixed_plan(3), dir.path()).unwrap();
        let sm = CryptoSuite::Sm2Sm3;
        for d in &written {
            assert_eq!(
                CryptoSuite::of_key(&d.public_key),
                CryptoSuite::Ed25519Blake3
            );
            assert_eq!(d.suite_keys.len(), 1);
            assert_eq!(CryptoSuite::of_key(&d.suite_keys[0]), sm);
            let s = NodeSettings::load(&d.config).unwrap();
            assert_eq!(s.suite_key_files, vec![d.dir.join(suite_key_file_name(sm))]);
            let suite_keys = s.load_suite_keys().unwrap();
            assert_eq!(suite_keys.len(), 1);
            assert_eq!(suite_keys[0].public_key(), d.suite_keys[0]);
            let genesis = &s.genesis;
            assert_eq!(genesis.suite, CryptoSuite::Ed25519Blake3);
            let svc = genesis.chain(&ChainId::new("svc").unwrap()).unwrap();
            assert_eq!(svc.validators.suite(), sm);
            assert!(svc.validators.find(&d.suite_keys[0]).is_some());
            let social = genesis.chain(&ChainId::new("social").unwrap()).unwrap();
            assert_eq!(social.validators.suite(), CryptoSuite::Ed25519Blake3);
            // The governance genesis records the department's SM2 key.
            let g = genesis.governance_genesis();
            g.validate().unwrap();
            assert!(g
                .departments
                .iter()
                .any(|gd| gd.node_key == d.public_key && gd.suite_keys == d.suite_keys));
            // With its suite key the node runs svc (under sm2-sm3); with
            // its node key alone, only the chains that key validates.
            let key = s.load_key().unwrap();
            let signers: Vec<Arc<dyn Signer>> = suite_keys
                .into_iter()
                .map(|k| k as Arc<dyn Signer>)
                .collect();
            let config = s
                .node_config_with_keys(key.clone(), signers, StorageKind::Memory)
                .unwrap();
            config.validate().unwrap();
            assert_eq!(config.suite_keys.len(), 1);
            let svc_spec = config
                .chains
                .iter()
                .find(|c| c.chain_id.as_str() == "svc")
                .unwrap();
            assert_eq!(svc_spec.suite(), sm);
            assert_eq!(config.chains.len(), 3);
            let plain = s.node_config(key, StorageKind::Memory).unwrap();
            assert_eq!(plain.chains.len(), 2);
        }
    }

    #[test]
    fn each_bad_suite_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&mixed_plan(2), dir.path()).unwrap();
        let good = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
        Genesis::parse(Path::new("genesis.toml"), &good).unwrap();
        let sm1 = public_key_hex(&written[0].suite_keys[0]);
        let sm2 = public_key_hex(&written[1].suite_keys[0]);
        let ed1 = public_key_hex(&written[0].public_key);
        let stranger = public_key_hex(&SecretKey::sm2_from_seed(&[42; 32]).public_key());
        let cases: Vec<(String, &str)> = vec![
            (
                replace_nth(&good, &sm1, &public_key_hex(&SecretKey::from_seed(&[42; 32]).public_key()), 0),
                "departments[0].suite_keys[0]: a key of the genesis suite ed25519-blake3",
            ),
            (
                replace_nth(&good, &sm1, "sm2:00", 0),
                "departments[0].suite_keys[0]",
            ),
            (
                replace_nth(&good, &sm2, &sm1, 0),
                "departments[1].suite_keys[0]: this key belongs to a department already",
            ),
            (
                replace_nth(&good, &sm2, &ed1, 0),
                "departments[1].suite_keys[0]: a key of the genesis suite",
            ),
            (
                replace_nth(&good, &format!("\"{sm1}\""), &format!("\"{sm1}\", \"{stranger}\""), 0),
                "departments[0].suite_keys[1]: a second key of suite sm2-sm3",
            ),
            (
                good.replace("suite = \"sm2-sm3\"", "suite = \"sm9\""),
                "chains[1].suite",
            ),
            (
                replace_nth(&good, &sm1, &stranger, 1),
                "chains[1].validators[0].public_key: not a key of suite sm2-sm3",
            ),
            (
                replace_nth(&good, &sm1, &ed1, 1),
                "chains[1].validators[0].public_key: an ed25519 key, but the genesis suite is sm2-sm3",
            ),
            (
                good.replace(
                    "app = \"governance\"",
                    "app = \"governance\"\nsuite = \"sm2-sm3\"",
                ),
                "chains[0].suite: the main chain runs the network's suite",
            ),
        ];
        for (text, field) in cases {
            assert_ne!(text, good, "mutation for {field} did not apply");
            let err = genesis_error(&text);
            let expected = format!("genesis.toml: {field}");
            assert!(
                err.starts_with(&expected),
                "expected {expected}, got: {err}"
            );
        }
    }

    #[test]
    fn suite_key_files_of_the_genesis_suite_or_twice_a_suite_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&mixed_plan(2), dir.path()).unwrap();
        let mut settings = NodeSettings::load(&written[0].config).unwrap();
        let ed = written[0].dir.join("ed.key");
        generate_key_file(&ed, CryptoSuite::Ed25519Blake3).unwrap();
        settings.suite_key_files = vec![ed.clone()];
        let err = settings.load_suite_keys().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: algorithm: a key of the genesis suite ed25519-blake3",
                ed.display()
            )),
            "{err}"
        );
        let second = written[0].dir.join("sm-second.key");
        generate_key_file(&second, CryptoSuite::Sm2Sm3).unwrap();
        settings.suite_key_files = vec![
            written[0]
                .dir
                .join(suite_key_file_name(CryptoSuite::Sm2Sm3)),
            second.clone(),
        ];
        let err = settings.load_suite_keys().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: algorithm: a second key of suite sm2-sm3",
                second.display()
            )),
            "{err}"
        );
        // The node file's field parses and resolves relative to the file.
        let path = &written[0].config;
        let good = std::fs::read_to_string(path).unwrap();
        assert!(
            good.contains("suite_key_files = [\"node.sm2-sm3.key\"]"),
            "{good}"
        );
        let text = good.replace(
            "suite_key_files = [\"node.sm2-sm3.key\"]",
            "suite_key_files = \"node.sm2-sm3.key\"",
        );
        std::fs::write(path, &text).unwrap();
        let err = NodeSettings::load(path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: node.suite_key_files", path.display())),
            "{err}"
        );
    }

    #[test]
    fn each_bad_node_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(2), dir.path()).unwrap();
        let path = &written[0].config;
        let good = std::fs::read_to_string(path).unwrap();
        let peer_key = public_key_hex(&written[1].public_key);
        let cases: Vec<(String, &str)> = vec![
            (
                good.replace(
                    "p2p_listen = \"127.0.0.1:31000\"",
                    "p2p_listen = \"nowhere\"",
                ),
                "node.p2p_listen",
            ),
            (
                good.replace("api_listen = \"127.0.0.1:31001\"", "api_listen = 5"),
                "node.api_listen",
            ),
            (good.replace(&peer_key, "00"), "peers[0].public_key"),
            (
                good.replace(
                    &peer_key,
                    &public_key_hex(&SecretKey::sm2_from_seed(&[9; 32]).public_key()),
                ),
                "peers[0].public_key: an sm2 key, but the genesis suite is ed25519-blake3",
            ),
            (
                good.replace(
                    &peer_key,
                    &public_key_hex(&SecretKey::from_seed(&[9; 32]).public_key()),
                ),
                "peers[0].public_key",
            ),
            (good.replace("workers = 4", "workers = 0"), "api.workers"),
            (
                good.replace("max_body_bytes = 1048576", "max_body_bytes = 10"),
                "api.max_body_bytes",
            ),
            (good.replace("workers = 4", "threads = 4"), "api"),
            (good.replace("tick_ms = 5", "tick_ms = 0"), "node.tick_ms"),
            (
                good.replace("tick_ms = 5", "tick_ms = 5\nretain_state_versions = 0"),
                "node.retain_state_versions",
            ),
            (
                good.replace("genesis_blake3 = \"", "genesis_blake3 = \"x"),
                "node.genesis_blake3",
            ),
            (
                good.replace("name = \"dept-1\"", "name = \"\""),
                "node.name",
            ),
            (
                good.replace(
                    "tick_ms = 5",
                    "tick_ms = 5\nchains = [\"main\", \"nosuch\"]",
                ),
                "node.chains[1]",
            ),
        ];
        for (text, field) in cases {
            assert_ne!(text, good, "mutation for {field} did not apply");
            std::fs::write(path, &text).unwrap();
            let err = NodeSettings::load(path).unwrap_err().to_string();
            let expected = format!("{}: {field}", path.display());
            assert!(
                err.starts_with(&expected),
                "expected {expected}, got: {err}"
            );
        }
        std::fs::write(path, &good).unwrap();
        NodeSettings::load(path).unwrap();
    }

    #[test]
    fn state_retention_applies_to_every_chain() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(2), dir.path()).unwrap();
        let path = &written[0].config;
        let good = std::fs::read_to_string(path).unwrap();
        let text = good.replace("tick_ms = 5", "tick_ms = 5\nretain_state_versions = 100");
        assert_ne!(text, good);
        std::fs::write(path, &text).unwrap();
        let settings = NodeSettings::load(path).unwrap();
        let config = settings
            .durable_node_config(settings.load_key().unwrap())
            .unwrap();
        assert!(!config.chains.is_empty());
        assert!(config
            .chains
            .iter()
            .all(|c| c.retain_state_versions == Some(100)));
    }

    #[test]
    fn rotation_key_files_resolve_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&plan(2), dir.path()).unwrap();
        let path = &written[0].config;
        let good = std::fs::read_to_string(path).unwrap();
        assert!(NodeSettings::load(path)
            .unwrap()
            .load_rotation_keys()
            .unwrap()
            .is_empty());
        let next = generate_key_file(&written[0].dir.join("next.key"), CryptoSuite::Ed25519Blake3)
            .unwrap();
        let text = good.replace(
            "key_file = \"node.key\"",
            "key_file = \"node.key\"\nrotation_key_files = [\"next.key\"]",
        );
        assert_ne!(text, good);
        std::fs::write(path, &text).unwrap();
        let settings = NodeSettings::load(path).unwrap();
        assert_eq!(
            settings.rotation_key_files,
            vec![written[0].dir.join("next.key")]
        );
        let keys = settings.load_rotation_keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].public_key(), next);
        // A missing file is an error naming it, not a silently absent key.
        std::fs::write(path, text.replace("next.key", "gone.key")).unwrap();
        let err = NodeSettings::load(path)
            .unwrap()
            .load_rotation_keys()
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone.key"), "{err}");
    }

    #[test]
    fn key_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let public = generate_key_file(&path, CryptoSuite::Ed25519Blake3).unwrap();
        assert_eq!(load_key_file(&path).unwrap().public_key(), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate_key_file(&path, CryptoSuite::Sm2Sm3),
            Err(ConfigError::Exists { .. })
        ));
        // A key file whose public key does not match its seed is refused.
        let text = std::fs::read_to_string(&path).unwrap();
        let other = public_key_hex(&SecretKey::from_seed(&[3; 32]).public_key());
        let forged = dir.path().join("forged.key");
        std::fs::write(&forged, text.replace(&public_key_hex(&public), &other)).unwrap();
        let err = load_key_file(&forged).unwrap_err().to_string();
        assert!(err.contains("public_key: does not match"), "{err}");
        // Two fresh keys differ.
        assert_ne!(
            generate_key_file(&dir.path().join("k2.key"), CryptoSuite::Ed25519Blake3).unwrap(),
            public
        );
    }

    #[test]
    fn an_sm2_network_writes_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&sm_plan(4), dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
        assert!(text.contains("suite = \"sm2-sm3\""), "{text}");
        let g = Genesis::load(&dir.path().join(GENESIS_FILE)).unwrap();
        assert_eq!(g.suite, CryptoSuite::Sm2Sm3);
        assert_eq!(g.governance_genesis().suite(), Ok(CryptoSuite::Sm2Sm3));
        for chain in &g.chains {
            assert_eq!(chain.validators.suite(), CryptoSuite::Sm2Sm3);
            assert_eq!(
                g.chain_spec(&chain.id).unwrap().suite(),
                CryptoSuite::Sm2Sm3
            );
            let t = crate::api::proof::TrustedSet::from_json(
                &std::fs::read_to_string(
                    dir.path()
                        .join(TRUSTED_DIR)
                        .join(format!("{}.json", chain.id)),
                )
                .unwrap(),
            )
            .unwrap();
            assert_eq!(t.validators, chain.validators);
        }
        for d in &written {
            assert_eq!(d.public_key.algorithm(), SignatureAlgorithm::Sm2);
            let s = NodeSettings::load(&d.config).unwrap();
            assert!(s
                .peers
                .iter()
                .all(|p| p.key.algorithm() == SignatureAlgorithm::Sm2));
            let key = s.load_key().unwrap();
            assert_eq!(key.public_key(), d.public_key);
            s.durable_node_config(key).unwrap().validate().unwrap();
        }
        // Key text round-trips under both algorithms, with and without the
        // prefix; a key is not read as the other algorithm's.
        let sm = &written[0].public_key;
        let sm_text = public_key_hex(sm);
        assert!(
            sm_text.starts_with("sm2:") && sm_text.len() == 4 + 66,
            "{sm_text}"
        );
        assert_eq!(parse_public_key(&sm_text).as_ref(), Ok(sm));
        assert_eq!(parse_public_key(&sm_text[4..]).as_ref(), Ok(sm));
        let ed = SecretKey::from_seed(&[1; 32]).public_key();
        assert_eq!(parse_public_key(&public_key_hex(&ed)), Ok(ed.clone()));
        assert_eq!(
            parse_public_key(&format!("ed25519:{}", public_key_hex(&ed))),
            Ok(ed.clone())
        );
        assert!(parse_public_key(&format!("sm2:{}", public_key_hex(&ed))).is_err());
        assert!(parse_public_key(&format!("ed25519:{}", &sm_text[4..])).is_err());
        assert!(parse_public_key_of(CryptoSuite::Sm2Sm3, &public_key_hex(&ed)).is_err());
    }

    #[test]
    fn a_key_file_of_the_other_algorithm_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_network(&sm_plan(2), dir.path()).unwrap();
        let key_file = written[0].dir.join(KEY_FILE);
        let settings = NodeSettings::load(&written[0].config).unwrap();
        settings.load_key().unwrap();
        // An Ed25519 key file where the SM2/SM3 network wants an SM2 one.
        std::fs::remove_file(&key_file).unwrap();
        generate_key_file(&key_file, CryptoSuite::Ed25519Blake3).unwrap();
        let err = settings.load_key().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: algorithm: an ed25519 key, but the genesis suite is sm2-sm3",
                key_file.display()
            )),
            "{err}"
        );
        // The same for a rotation key.
        let next = written[0].dir.join("next.key");
        generate_key_file(&next, CryptoSuite::Ed25519Blake3).unwrap();
        let mut settings = settings;
        settings.rotation_key_files = vec![next.clone()];
        let err = settings.load_rotation_keys().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: algorithm:", next.display())),
            "{err}"
        );
    }

    #[test]
    fn sm2_key_files_round_trip_and_old_ed25519_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sm.key");
        let public = generate_key_file(&path, CryptoSuite::Sm2Sm3).unwrap();
        assert_eq!(public.algorithm(), SignatureAlgorithm::Sm2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("algorithm = \"sm2\""), "{text}");
        let loaded = load_key_file(&path).unwrap();
        assert_eq!(loaded.public_key(), public);
        // The seed is the one SecretKey::sm2_from_seed takes.
        let seed_hex = text
            .lines()
            .find_map(|l| l.strip_prefix("secret_seed = \""))
            .unwrap()
            .trim_end_matches('"');
        let seed: [u8; 32] = hex::decode(seed_hex).unwrap().try_into().unwrap();
        assert_eq!(SecretKey::sm2_from_seed(&seed).public_key(), public);
        // Written deterministically from a seed, both algorithms.
        let seed = [7u8; 32];
        for suite in CryptoSuite::ALL {
            let p = dir.path().join(format!("{suite}.key"));
            let key = write_key_file(&p, *suite, &seed).unwrap();
            assert_eq!(key, SecretKey::from_seed_for(*suite, &seed).public_key());
            assert_eq!(load_key_file(&p).unwrap().public_key(), key);
        }
        // An SM2 file claiming to be Ed25519 is refused.
        let lying = dir.path().join("lying.key");
        std::fs::write(
            &lying,
            text.replace("algorithm = \"sm2\"", "algorithm = \"ed25519\""),
        )
        .unwrap();
        let err = load_key_file(&lying).unwrap_err().to_string();
        assert!(err.contains("public_key"), "{err}");
        let unknown = dir.path().join("unknown.key");
        std::fs::write(
            &unknown,
            text.replace("algorithm = \"sm2\"", "algorithm = \"sm9\""),
        )
        .unwrap();
        let err = load_key_file(&unknown).unwrap_err().to_string();
        assert!(
            err.contains("algorithm: unsupported algorithm \"sm9\""),
            "{err}"
        );
        // A key file as written before SM2 support, byte for byte.
        let seed = [5u8; 32];
        let ed = SecretKey::from_seed(&seed).public_key();
        let old = dir.path().join("old.key");
        std::fs::write(
            &old,
            format!(
                "# govchain node key: an Ed25519 (RFC 8032) seed.\n\
                 # SECRET: keep this file private (mode 0600); it signs this department's votes.\n\
                 algorithm = \"ed25519\"\npublic_key = \"{}\"\nsecret_seed = \"{}\"\n",
                hex::encode(ed.raw_bytes()),
                hex::encode(seed)
            ),
        )
        .unwrap();
        assert_eq!(load_key_file(&old).unwrap().public_key(), ed);
    }
}
