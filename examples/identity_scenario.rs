//! The identity part of the service-chain demo, run against real nodes.
//!
//! The demo's identity side chain runs [`IdentityApp`] with the genesis that
//! [`IdentitySetup`] pins. [`run`] then plays the scenario of issue 7
//! (item 6) against the running network:
//!
//! 1. the provincial root (`zj-province`, pinned at genesis) accredits the
//!    city bureau (`hz-bureau`) as issuer of the resident-identity schema
//!    for `CN-33-01` — an on-chain transaction;
//! 2. the bureau publishes the schema, registers signing key 0 and creates
//!    status list 1 of [`MIN_LIST_CAPACITY`] entries — on chain;
//! 3. the bureau issues credentials **off chain** to synthetic citizens,
//!    each with a fresh holder key and a randomly drawn status index;
//! 4. a service hall of another department (`cab-hall-07`, Civil Affairs)
//!    follows the chain's headers from genesis with its own
//!    [`LightClient`], fed by `hall_node`; for every presentation it issues
//!    a nonce, and the citizen's wallet fetches stapled state proofs from
//!    `hall_node` at one height the hall has verified, discloses three of
//!    the five selective claims and binds the presentation to the hall,
//!    the nonce and the time; the hall's [`Verifier`] checks it under its
//!    own policy (only `Verifier::verify` is timed);
//! 5. the bureau revokes one credential (on chain) and that citizen's next
//!    presentation is refused with [`Rejection::Revoked`];
//! 6. the bureau rotates its signing key (on chain): every credential
//!    issued before still verifies, new credentials are signed with key 1
//!    and verify, and a credential signed with the retired key after the
//!    rotation is refused with [`Rejection::KeyRetired`];
//! 7. finally every transaction of the chain and every identity record in
//!    its state is scanned for the citizens' claim values and holder keys:
//!    **no personal data is on the ledger**, only digests in credentials
//!    that the citizens hold.
//!
//! Every on-chain step waits for its transactions to commit (woken by a
//! [`NodeHandle::subscribe`] receiver, checked with
//! [`NodeHandle::find_transaction`], bounded by [`STEP_TIMEOUT`]) and then
//! checks that the step took effect in committed state, since a committed
//! transaction may still have failed in the application. Failures are
//! returned as [`IdentityError`]s naming the step; nothing panics.
//!
//! ```no_run
//! use std::sync::Arc;
//! use govchain_core::{crypto::{SecretKey, Signer}, types::{ChainId, Timestamp},
//!     validator::{Validator, ValidatorSet}};
//! use govchain_examples::identity_scenario::{self, IdentitySetup};
//! use govchain_node::{ChainRole, ChainSpec, EngineKind, InProcessNetwork, Node, NodeConfig,
//!     StorageKind};
//!
//! let keys: Vec<Arc<SecretKey>> =
//!     (1..=4u8).map(|i| Arc::new(SecretKey::from_seed(&[i; 32]))).collect();
//! let set = ValidatorSet::new(
//!     keys.iter().map(|k| Validator { public_key: k.public_key(), power: 1 }).collect(),
//! )?;
//! let chain = ChainId::new("hz-identity")?;
//! let setup = IdentitySetup::new(keys.iter().map(|k| k.public_key()).collect())?;
//! let spec = ChainSpec::new(chain.clone(), ChainRole::Side { anchor_every: u64::MAX },
//!     EngineKind::Bft, set.clone(), setup.app());
//! let net = InProcessNetwork::new();
//! let mut nodes = Vec::new();
//! for (i, key) in keys.iter().enumerate() {
//!     let mut config = NodeConfig::new(format!("dept-{i}"), key.clone(), StorageKind::Memory);
//!     config.chains.push(spec.clone());
//!     let node = Node::start(config, net.transport(key.public_key()))?;
//!     net.register(key.public_key(), node.inbox());
//!     nodes.push(node);
//! }
//! let report = identity_scenario::run(&setup, &nodes[0], &nodes[2], &chain, &set,
//!     spec.genesis_time, 2_000, &mut |line| println!("{line}"))?;
//! report.check()?;
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use govchain_core::app::{Application, NonceTracker};
use govchain_core::codec::{decode_exact, Decode, Encode};
use govchain_core::crypto::{CryptoSuite, PublicKey, SecretKey, Signer};
use govchain_core::hash::{Domain, Hash};
use govchain_core::light::LightClient;
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::ValidatorSet;
use govchain_identity::app::{IdentityApp, IdentityGenesis, IdentityOp};
use govchain_identity::credential::{CredentialIssuer, HeldCredential, IssuanceRequest, StatusRef};
use govchain_identity::ids::{HallId, IssuerId, KeyId, Region, StatusListId};
use govchain_identity::issuer::{
    GrantStatus, IssuerRecord, KeyState, Role, SchemaScope, Scope, MAX_ISSUER_RECORD_LEN,
};
use govchain_identity::presentation::{BindingRequest, StapledProofs};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::schema::{Schema, SchemaRecord, MAX_SCHEMA_RECORD_LEN};
use govchain_identity::state::{issuer_key, schema_key, status_page_key};
use govchain_identity::status::{
    EntryStatus, StatusAllocator, StatusPage, StatusUpdate, ENTRIES_PER_PAGE, MAX_STATUS_PAGE_LEN,
    MIN_LIST_CAPACITY,
};
use govchain_identity::verifier::{AuditLog, Policy, Rejection, VerifiedPresentation, Verifier};
use govchain_node::NodeHandle;
use rand_core::{OsRng, RngCore};

/// How long one on-chain step (a commit, or the hall's node catching up)
/// may take before [`run`] gives up with [`IdentityError::Timeout`].
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// The claims each citizen discloses to the hall (of the schema's five
/// selectively disclosable ones; `document_type` is always disclosed).
pub const REVEALED: [&str; 3] = ["name", "birth_date", "over_18"];
/// The claims the hall's policy requires.
pub const HALL_REQUIRED: [&str; 2] = ["name", "birth_date"];
/// Claims that the presentations keep hidden (checked on every verified
/// presentation).
pub const HIDDEN: [&str; 2] = ["id_number", "address"];
/// The bureau's status list.
pub const STATUS_LIST: StatusListId = StatusListId::new(1);
/// The service hall's id.
pub const HALL: &str = "cab-hall-07";
/// The hall's region: the whole province, so it serves the city bureau's
/// `CN-33-01` credentials.
pub const HALL_REGION: &str = "CN-33";
/// The bureau's jurisdiction.
pub const BUREAU_REGION: &str = "CN-33-01";
/// Validity of the credentials issued: one year.
pub const CREDENTIAL_VALIDITY_MS: u64 = 365 * 24 * 3600 * 1000;
/// Credentials issued with the new key after the rotation.
pub const NEW_KEY_CREDENTIALS: usize = 10;
/// Presentations between two refreshes of the hall's light client (and so
/// of the height the wallets fetch proofs at).
const REFRESH_EVERY: usize = 200;
/// Fallback wake-up while waiting, should a commit event be missed.
const POLL: Duration = Duration::from_millis(100);

/// Why the identity scenario failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The fixed genesis, ids or schema are invalid, or the arguments are.
    Setup {
        /// Why.
        reason: String,
    },
    /// An on-chain or off-chain step failed.
    Step {
        /// The step.
        step: &'static str,
        /// Why.
        reason: String,
    },
    /// A step did not complete within [`STEP_TIMEOUT`].
    Timeout {
        /// The step.
        step: &'static str,
        /// How long it waited.
        waited: Duration,
        /// What it was waiting for, and where the chain was.
        detail: String,
    },
    /// A scenario expectation failed (see [`IdentityReport::check`]).
    Check {
        /// The expectation.
        check: &'static str,
        /// What happened instead.
        detail: String,
    },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Setup { reason } => write!(f, "identity setup: {reason}"),
            IdentityError::Step { step, reason } => write!(f, "identity step {step:?}: {reason}"),
            IdentityError::Timeout {
                step,
                waited,
                detail,
            } => write!(
                f,
                "identity step {step:?} timed out after {:.1} s: {detail}",
                waited.as_secs_f64()
            ),
            IdentityError::Check { check, detail } => {
                write!(f, "identity check {check:?} failed: {detail}")
            }
        }
    }
}

impl std::error::Error for IdentityError {}

fn setup_err(e: impl fmt::Display) -> IdentityError {
    IdentityError::Setup {
        reason: e.to_string(),
    }
}

fn step_err<E: fmt::Display>(step: &'static str) -> impl Fn(E) -> IdentityError {
    move |e| IdentityError::Step {
        step,
        reason: e.to_string(),
    }
}

/// A key of `suite`'s algorithm derived from a fixed label, so that every
/// node (and every restart) builds the same genesis. Demo keys: not for
/// production.
fn demo_key(suite: CryptoSuite, label: &str) -> SecretKey {
    SecretKey::from_seed_for(
        suite,
        Hash::of(Domain::Test, format!("identity demo {label}").as_bytes()).as_bytes(),
    )
}

/// The identity side chain's genesis and the issuers' keys: the provincial
/// root pinned at genesis (controller key), the city bureau (controller and
/// two credential-signing keys, key 0 and its successor key 1) and the
/// resident-identity schema.
///
/// Keys are derived from fixed labels so that every department's node gets
/// the same genesis; they are demo keys, not for production. `Debug` prints
/// no secret.
pub struct IdentitySetup {
    genesis: IdentityGenesis,
    app: Arc<IdentityApp>,
    schema: Schema,
    root_controller: SecretKey,
    bureau_controller: SecretKey,
    signing_keys: [SecretKey; 2],
}

impl fmt::Debug for IdentitySetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySetup")
            .field("governance", &self.genesis.governance)
            .field("root", &Self::root_id())
            .field("bureau", &Self::bureau_id())
            .field("suite", &self.genesis.suite)
            .field("schema", &self.schema.id(self.genesis.suite))
            .finish_non_exhaustive()
    }
}

impl IdentitySetup {
    /// The genesis with `governance` as the keys that may pin and unpin
    /// roots and revoke grants (on the demo, the departments' node keys, the
    /// main chain's governance accounts) and the provincial root pinned for
    /// `CN-33` with delegation depth 2.
    ///
    /// The chain is an ed25519-blake3 chain; see [`IdentitySetup::with_suite`].
    pub fn new(governance: Vec<PublicKey>) -> Result<Self, IdentityError> {
        Self::with_suite(CryptoSuite::Ed25519Blake3, governance)
    }

    /// [`IdentitySetup::new`] for an identity chain of `suite` (the suite of
    /// its genesis validators): the root's and the bureau's keys are of its
    /// algorithm, and `governance` must be too (else
    /// [`IdentityError::Setup`]).
    pub fn with_suite(
        suite: CryptoSuite,
        governance: Vec<PublicKey>,
    ) -> Result<Self, IdentityError> {
        let demo_key = |label| demo_key(suite, label);
        let schema = Sandbox::resident_schema().map_err(setup_err)?;
        let root_controller = demo_key("root zj-province controller");
        let root = IssuerRecord {
            id: Self::root_id(),
            role: Role::Root,
            parent: None,
            controller: root_controller.public_key(),
            scope: Scope::new(
                SchemaScope::Any,
                vec![Region::new(HALL_REGION).map_err(setup_err)?],
                2,
            ),
            granted_at: Height::new(0),
            expires_at: None,
            status: GrantStatus::Active,
            keys: Vec::new(),
        };
        let genesis = IdentityGenesis {
            suite,
            governance,
            roots: vec![root],
        };
        let app = Arc::new(IdentityApp::new(genesis.clone()).map_err(setup_err)?);
        Ok(IdentitySetup {
            genesis,
            app,
            schema,
            root_controller,
            bureau_controller: demo_key("issuer hz-bureau controller"),
            signing_keys: [
                demo_key("issuer hz-bureau signing key 0"),
                demo_key("issuer hz-bureau signing key 1"),
            ],
        })
    }

    /// The application to put in the identity side chain's `ChainSpec`
    /// (the same genesis on every node).
    pub fn app(&self) -> Arc<dyn Application> {
        self.app.clone()
    }

    /// The genesis: governance keys and the pinned root.
    pub fn genesis(&self) -> &IdentityGenesis {
        &self.genesis
    }

    /// The resident-identity schema the bureau publishes.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The identity chain's crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.genesis.suite
    }

    /// The provincial root, pinned at genesis.
    pub fn root_id() -> IssuerId {
        Sandbox::root_id()
    }

    /// The city bureau the root accredits.
    pub fn bureau_id() -> IssuerId {
        Sandbox::bureau_id()
    }
}

/// What the scenario measured and observed. `Display` prints the summary
/// lines; [`check`](Self::check) turns a failed expectation into an error.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IdentityReport {
    /// The identity chain.
    pub chain: ChainId,
    /// Its crypto suite (every key, hash and signature of the scenario).
    pub suite: CryptoSuite,
    /// Node that received the transactions.
    pub writer: String,
    /// Node the hall's light client and the wallets used.
    pub hall_node: String,
    /// Height of the block with the bureau's accreditation.
    pub accredited_at: Height,
    /// Height of the block with schema, key 0 and status list.
    pub published_at: Height,
    /// Credentials issued off chain (before the rotation, plus those with
    /// the new key and the one signed with the retired key).
    pub credentials_issued: usize,
    /// Issuance rate of the initial batch (credentials per second, one core).
    pub issue_per_s: f64,
    /// Presentations the hall accepted.
    pub presentations_verified: usize,
    /// Accepted presentations per second of `Verifier::verify` time (one
    /// core; proof fetching and presentation building are not counted).
    pub verify_per_s: f64,
    /// Mean `Verifier::verify` time of accepted presentations, µs.
    pub verify_mean_us: f64,
    /// Median, µs.
    pub verify_p50_us: f64,
    /// 99th percentile, µs.
    pub verify_p99_us: f64,
    /// Slowest, µs.
    pub verify_max_us: f64,
    /// Mean encoded presentation size (credential, 3 disclosures, holder
    /// binding and 4 stapled state proofs), bytes.
    pub presentation_bytes: usize,
    /// Headers the hall's light client verified, from genesis.
    pub light_headers: u64,
    /// Every accepted presentation disclosed exactly what was revealed and
    /// the always-disclosed claim, and none of [`HIDDEN`], and was holder
    /// bound.
    pub selective_disclosure_ok: bool,
    /// Height of the block with the revocation.
    pub revoked_at: Height,
    /// The revoked credential's next presentation was refused with
    /// [`Rejection::Revoked`].
    pub revoked_rejected: bool,
    /// The hall's answer to it (the rejection's text and code).
    pub revoked_rejection: String,
    /// Height of the block with the key rotation.
    pub rotated_at: Height,
    /// Credentials issued before the rotation that were presented again
    /// after it (all but the revoked one).
    pub rotated_rechecked: usize,
    /// All of them verified.
    pub rotated_still_verify: bool,
    /// Credentials issued with the new key that verified (of
    /// [`NEW_KEY_CREDENTIALS`]).
    pub new_key_verified: usize,
    /// All credentials issued with the new key verified.
    pub new_key_verify: bool,
    /// A credential signed with the retired key after the rotation was
    /// refused with [`Rejection::KeyRetired`].
    pub retired_key_rejected: bool,
    /// The hall's answer to it.
    pub retired_key_rejection: String,
    /// Records in the hall's audit log (one per verification).
    pub audit_records: usize,
    /// The audit log's hash chain verifies.
    pub audit_chain_ok: bool,
    /// Transactions of the chain scanned for personal data.
    pub scanned_txs: usize,
    /// Identity records in state scanned for personal data.
    pub scanned_records: usize,
    /// Transactions or records holding a claim value or holder key (must
    /// be 0).
    pub personal_data_hits: usize,
}

impl IdentityReport {
    /// `Ok` when every expectation of the scenario held; otherwise the
    /// first that failed.
    pub fn check(&self) -> Result<(), IdentityError> {
        let fail = |check, detail: String| Err(IdentityError::Check { check, detail });
        if !self.selective_disclosure_ok {
            return fail(
                "selective disclosure",
                "a verified presentation disclosed other claims than the revealed ones".into(),
            );
        }
        if !self.revoked_rejected {
            return fail(
                "revoked credential refused",
                format!("the hall answered: {}", self.revoked_rejection),
            );
        }
        if !self.rotated_still_verify {
            return fail(
                "credentials of a rotated key still verify",
                format!(
                    "not all of {} earlier credentials verified",
                    self.rotated_rechecked
                ),
            );
        }
        if !self.new_key_verify {
            return fail(
                "credentials of the new key verify",
                format!(
                    "{} of {NEW_KEY_CREDENTIALS} verified",
                    self.new_key_verified
                ),
            );
        }
        if !self.retired_key_rejected {
            return fail(
                "retired key refused after rotation",
                format!("the hall answered: {}", self.retired_key_rejection),
            );
        }
        if !self.audit_chain_ok {
            return fail("audit log", "the hash chain does not verify".into());
        }
        if self.personal_data_hits > 0 {
            return fail(
                "no personal data on chain",
                format!(
                    "{} transactions or records hold a claim value or holder key",
                    self.personal_data_hits
                ),
            );
        }
        Ok(())
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "FAILED"
    }
}

impl fmt::Display for IdentityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  identity ({}, {}): {} accredited {} at h{}; schema, key 0 and status list {} ({} entries) at h{}",
            self.chain,
            self.suite,
            IdentitySetup::root_id(),
            IdentitySetup::bureau_id(),
            self.accredited_at,
            STATUS_LIST,
            MIN_LIST_CAPACITY,
            self.published_at
        )?;
        writeln!(
            f,
            "    issued {} credentials off chain ({:.0}/s), random status indexes, a fresh holder key each",
            self.credentials_issued, self.issue_per_s
        )?;
        writeln!(
            f,
            "    hall {HALL} (light client from genesis via {}, {} headers): {} presentations verified, {:.0}/s on one core, \
             p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, {} bytes each; selective disclosure {}",
            self.hall_node,
            self.light_headers,
            self.presentations_verified,
            self.verify_per_s,
            self.verify_p50_us,
            self.verify_p99_us,
            self.verify_max_us,
            self.presentation_bytes,
            verdict(self.selective_disclosure_ok)
        )?;
        writeln!(
            f,
            "    revocation at h{}: next presentation refused: {} [{}]",
            self.revoked_at,
            self.revoked_rejection,
            verdict(self.revoked_rejected)
        )?;
        writeln!(
            f,
            "    key rotation at h{}: {} earlier credentials still verify [{}]; {}/{} issued with key 1 verify [{}]; \
             key 0 used after rotation refused: {} [{}]",
            self.rotated_at,
            self.rotated_rechecked,
            verdict(self.rotated_still_verify),
            self.new_key_verified,
            NEW_KEY_CREDENTIALS,
            verdict(self.new_key_verify),
            self.retired_key_rejection,
            verdict(self.retired_key_rejected)
        )?;
        write!(
            f,
            "    audit log: {} records, hash chain {}; privacy: {} transactions and {} identity records scanned, \
             {} hold a claim value or holder key [{}]",
            self.audit_records,
            verdict(self.audit_chain_ok),
            self.scanned_txs,
            self.scanned_records,
            self.personal_data_hits,
            verdict(self.personal_data_hits == 0)
        )
    }
}

fn wall_now() -> Timestamp {
    Timestamp::new(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

/// Waits until `done` holds, woken by `node`'s commits (with a fallback
/// poll), for at most [`STEP_TIMEOUT`].
fn wait_until(
    node: &NodeHandle,
    step: &'static str,
    mut done: impl FnMut() -> Result<bool, IdentityError>,
    detail: impl Fn() -> String,
) -> Result<(), IdentityError> {
    let events = node.subscribe(1024);
    let started = Instant::now();
    loop {
        if done()? {
            return Ok(());
        }
        if let Some(fatal) = node.status().fatal {
            return Err(IdentityError::Step {
                step,
                reason: format!("node {} stopped: {fatal}", node.name()),
            });
        }
        let waited = started.elapsed();
        if waited >= STEP_TIMEOUT {
            return Err(IdentityError::Timeout {
                step,
                waited,
                detail: detail(),
            });
        }
        match events.recv_timeout((STEP_TIMEOUT - waited).min(POLL)) {
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(IdentityError::Step {
                    step,
                    reason: format!("node {} stopped", node.name()),
                })
            }
        }
    }
}

/// The scenario's running state.
struct Scenario<'a> {
    writer: &'a NodeHandle,
    hall_node: &'a NodeHandle,
    chain: &'a ChainId,
    nonces: BTreeMap<PublicKey, u64>,
}

impl Scenario<'_> {
    fn next_nonce(&mut self, step: &'static str, key: &PublicKey) -> Result<u64, IdentityError> {
        if let Some(n) = self.nonces.get(key) {
            return Ok(*n);
        }
        let n = self
            .writer
            .read_state(self.chain, |s| NonceTracker::next(s, key))
            .map_err(step_err(step))?
            .map_err(step_err(step))?;
        self.nonces.insert(key.clone(), n);
        Ok(n)
    }

    /// Signs `ops`, submits them to the writer and waits until all are
    /// committed; returns the highest block holding one.
    fn submit(
        &mut self,
        step: &'static str,
        ops: Vec<(&SecretKey, IdentityOp)>,
    ) -> Result<Height, IdentityError> {
        let mut txs = Vec::with_capacity(ops.len());
        for (signer, op) in ops {
            let pk = signer.public_key();
            let nonce = self.next_nonce(step, &pk)?;
            txs.push(
                Transaction::new_signed(self.chain.clone(), signer, nonce, op.to_bytes())
                    .map_err(step_err(step))?,
            );
            self.nonces.insert(pk.clone(), nonce + 1);
        }
        let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
        let verdicts = self
            .writer
            .submit(self.chain, txs)
            .map_err(step_err(step))?;
        for v in verdicts {
            if let Err(e) = v {
                // The nonces are no longer known: re-read them next time.
                self.nonces.clear();
                return Err(IdentityError::Step {
                    step,
                    reason: format!(
                        "mempool of {} refused a transaction: {e}",
                        self.writer.name()
                    ),
                });
            }
        }
        let (writer, chain) = (self.writer, self.chain);
        let mut height = Height::new(0);
        wait_until(
            writer,
            step,
            || {
                let mut max = Height::new(0);
                for id in &ids {
                    let found =
                        writer
                            .find_transaction(chain, id)
                            .map_err(|e| IdentityError::Step {
                                step,
                                reason: e.to_string(),
                            })?;
                    match found {
                        Some((h, _)) => max = max.max(h),
                        None => return Ok(false),
                    }
                }
                height = max;
                Ok(true)
            },
            || {
                let committed = ids
                    .iter()
                    .filter(|id| matches!(writer.find_transaction(chain, id), Ok(Some(_))))
                    .count();
                format!(
                    "{committed} of {} transactions committed on {chain} ({} at height {})",
                    ids.len(),
                    writer.name(),
                    writer.height(chain).map_or(0, |h| h.get())
                )
            },
        )?;
        Ok(height)
    }

    /// Reads and decodes a committed record from the writer's latest state.
    fn record<T: Decode>(
        &self,
        step: &'static str,
        key: &[u8],
        limit: usize,
    ) -> Result<Option<T>, IdentityError> {
        match self.writer.state(self.chain, key).map_err(step_err(step))? {
            None => Ok(None),
            Some(bytes) => decode_exact(&bytes, limit)
                .map(Some)
                .map_err(step_err(step)),
        }
    }

    fn issuer(
        &self,
        step: &'static str,
        id: &IssuerId,
    ) -> Result<Option<IssuerRecord>, IdentityError> {
        self.record(step, &issuer_key(id), MAX_ISSUER_RECORD_LEN)
    }

    fn status_page(
        &self,
        step: &'static str,
        page: u32,
    ) -> Result<Option<StatusPage>, IdentityError> {
        self.record(
            step,
            &status_page_key(STATUS_LIST, page),
            MAX_STATUS_PAGE_LEN,
        )
    }

    /// Brings the hall's light client up to `hall_node`'s latest header,
    /// waiting first until that is at least `at_least`.
    fn follow(&self, client: &mut LightClient, at_least: Height) -> Result<(), IdentityError> {
        const STEP: &str = "hall light client";
        let (node, chain) = (self.hall_node, self.chain);
        wait_until(
            node,
            STEP,
            || Ok(node.height(chain).map_err(step_err(STEP))? >= at_least),
            || {
                format!(
                    "{} is at height {} of {chain}, the hall needs {at_least}",
                    node.name(),
                    node.height(chain).map_or(0, |h| h.get())
                )
            },
        )?;
        let tip = node.height(chain).map_err(step_err(STEP))?;
        for h in client.height().get() + 1..=tip.get() {
            let block = node
                .light_block(chain, Height::new(h))
                .map_err(step_err(STEP))?;
            client.verify(&block).map_err(|e| IdentityError::Step {
                step: STEP,
                reason: format!("header {h} from {} refused: {e}", node.name()),
            })?;
        }
        Ok(())
    }

    /// The wallet's stapled proofs, fetched from the hall's node at `height`.
    fn proofs(
        &self,
        height: Height,
        held: &HeldCredential,
    ) -> Result<StapledProofs, IdentityError> {
        StapledProofs::collect(height, &held.credential, |key| {
            self.hall_node
                .state_proof(self.chain, key, Some(height))
                .map(|p| (p.value, p.proof))
        })
        .map_err(step_err("wallet proof fetch"))
    }
}

/// One citizen's wallet: the credential and its holder key.
struct Wallet {
    holder: SecretKey,
    held: HeldCredential,
}

/// The hall: its verifier, its light client and the verification timings.
struct Hall {
    verifier: Verifier,
    client: LightClient,
    accepted_ns: Vec<u64>,
    bytes: usize,
    disclosure_ok: bool,
}

impl Hall {
    /// A challenge, a presentation from `wallet` with proofs at the light
    /// client's tip, and the hall's verdict (only `verify` is timed).
    fn present(
        &mut self,
        sc: &Scenario<'_>,
        wallet: &Wallet,
    ) -> Result<Result<VerifiedPresentation, Rejection>, IdentityError> {
        let height = self.client.height();
        let proofs = sc.proofs(height, &wallet.held)?;
        let now = wall_now();
        let nonce = self.verifier.challenge(&mut OsRng, now);
        let binding = BindingRequest {
            holder: &wallet.holder,
            nonce,
            audience: self.verifier.policy().hall.clone(),
            time: now,
        };
        let bytes = wallet
            .held
            .present(&REVEALED, Some(binding), proofs)
            .map_err(step_err("wallet presentation"))?
            .to_bytes();
        let started = Instant::now();
        let verdict = self.verifier.verify(&self.client, &bytes, now);
        let took = started.elapsed();
        if let Ok(v) = &verdict {
            self.accepted_ns.push(took.as_nanos() as u64);
            self.bytes += bytes.len();
            let shown: Vec<&str> = v.claims.keys().map(String::as_str).collect();
            let mut expected: Vec<&str> = REVEALED.to_vec();
            expected.push("document_type");
            expected.sort_unstable();
            if shown != expected
                || !v.holder_bound
                || HIDDEN.iter().any(|h| v.claims.contains_key(*h))
            {
                self.disclosure_ok = false;
            }
        }
        Ok(verdict)
    }
}

/// Presents every wallet but `skip` to the hall, refreshing its light
/// client every [`REFRESH_EVERY`] presentations; a refusal is an error.
fn verify_all(
    sc: &Scenario<'_>,
    hall: &mut Hall,
    wallets: &[Wallet],
    skip: Option<usize>,
    phase: &'static str,
) -> Result<usize, IdentityError> {
    let mut done = 0;
    for (n, w) in wallets.iter().enumerate() {
        if Some(n) == skip {
            continue;
        }
        if n % REFRESH_EVERY == 0 {
            let h = hall.client.height();
            sc.follow(&mut hall.client, h)?;
        }
        if let Err(e) = hall.present(sc, w)? {
            return Err(IdentityError::Check {
                check: phase,
                detail: format!(
                    "credential {n} was refused: \"{e}\" (code {}); proofs at h{}",
                    e.code(),
                    hall.client.height()
                ),
            });
        }
        done += 1;
    }
    Ok(done)
}

fn rejection_text(verdict: &Result<VerifiedPresentation, Rejection>) -> String {
    match verdict {
        Ok(_) => "accepted".to_owned(),
        Err(e) => format!("\"{e}\" (code {})", e.code()),
    }
}

/// The bureau's issuing state: allocator and synthetic citizen numbers.
struct Bureau {
    allocator: StatusAllocator,
    jurisdiction: Region,
}

impl Bureau {
    fn issue(
        &mut self,
        setup: &IdentitySetup,
        key: usize,
        issued_height: Height,
        citizen: u64,
    ) -> Result<Wallet, IdentityError> {
        const STEP: &str = "issuance";
        let holder = SecretKey::generate_for(setup.suite(), &mut OsRng);
        let index = self
            .allocator
            .allocate(&mut OsRng)
            .map_err(step_err(STEP))?;
        let now = wall_now().get();
        let valid_from = Timestamp::new(now.saturating_sub(1_000));
        let request = IssuanceRequest {
            claims: Sandbox::citizen_claims(citizen),
            holder: Some(holder.public_key()),
            valid_from,
            valid_until: Timestamp::new(valid_from.get() + CREDENTIAL_VALIDITY_MS),
            jurisdiction: self.jurisdiction.clone(),
            status: StatusRef {
                list: STATUS_LIST,
                index,
            },
        };
        let held = CredentialIssuer::new(
            IdentitySetup::bureau_id(),
            KeyId::new(key as u32),
            &setup.signing_keys[key],
            &setup.schema,
            issued_height,
        )
        .issue(&mut OsRng, request)
        .map_err(step_err(STEP))?;
        Ok(Wallet { holder, held })
    }
}

fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ns.len() - 1) as f64 * p).round() as usize;
    sorted_ns[i.min(sorted_ns.len() - 1)] as f64 / 1e3
}

/// Markers that every synthetic citizen's text claims contain (see
/// [`Sandbox::citizen_claims`]): where none occurs, no name, id number or
/// address does.
const CLAIM_MARKERS: [&str; 3] = ["Synthetic Citizen", "SYN33010", "Synthetic Road"];

/// Whether `bytes` hold a citizen's text claim or one of `holder_keys`.
fn leaks(bytes: &[u8], holder_keys: &HashSet<Vec<u8>>) -> bool {
    // Raw keys of every algorithm (32 bytes for Ed25519, 33 for SM2).
    let key_lens: BTreeSet<usize> = holder_keys.iter().map(Vec::len).collect();
    CLAIM_MARKERS
        .iter()
        .any(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        || key_lens
            .iter()
            .any(|&n| bytes.windows(n).any(|w| holder_keys.contains(w)))
}

/// Runs the scenario against running nodes of `chain` (which must run
/// [`IdentitySetup::app`] of `setup` and be fresh: the bureau not yet
/// accredited). `writer` receives the on-chain transactions; `hall_node` is
/// another department's node that the service hall trusts for headers — its
/// light client follows `chain` from genesis (`genesis_set`, `genesis_time`)
/// through [`NodeHandle::light_block`] — and from which the citizens'
/// wallets fetch stapled proofs ([`NodeHandle::state_proof`] at one height
/// the hall verified). `citizens` (at least 2) credentials are issued;
/// `progress` receives one line per step.
///
/// Returns the report; scenario expectations (a revoked credential refused,
/// …) are fields of it, see [`IdentityReport::check`]. Errors: a step
/// refused, without effect or not committed within [`STEP_TIMEOUT`], a
/// header the light client refuses, or a presentation of a valid
/// credential refused.
#[allow(clippy::too_many_arguments)]
pub fn run(
    setup: &IdentitySetup,
    writer: &NodeHandle,
    hall_node: &NodeHandle,
    chain: &ChainId,
    genesis_set: &ValidatorSet,
    genesis_time: Timestamp,
    citizens: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<IdentityReport, Box<dyn std::error::Error + Send + Sync>> {
    if citizens < 2 {
        return Err(setup_err("the scenario needs at least 2 citizens").into());
    }
    let mut sc = Scenario {
        writer,
        hall_node,
        chain,
        nonces: BTreeMap::new(),
    };
    let root = IdentitySetup::root_id();
    let bureau = IdentitySetup::bureau_id();
    let schema_id = setup.schema.id(setup.suite());

    // The chain must run this setup's genesis and be fresh. The genesis
    // records are written with the first block.
    const START: &str = "start";
    wait_until(
        writer,
        START,
        || Ok(writer.height(chain).map_err(step_err(START))?.get() >= 1),
        || format!("{chain} has no block yet on {}", writer.name()),
    )?;
    match sc.issuer(START, &root)? {
        Some(r) if r.controller == setup.root_controller.public_key() => {}
        _ => {
            return Err(IdentityError::Step {
                step: START,
                reason: format!("{chain} does not run this IdentitySetup's genesis (root {root} missing or different)"),
            }
            .into())
        }
    }
    if sc.issuer(START, &bureau)?.is_some() {
        return Err(IdentityError::Step {
            step: START,
            reason: format!("{bureau} is already accredited on {chain}: the scenario needs a fresh identity chain"),
        }
        .into());
    }

    // 1. The root accredits the bureau.
    const ACCREDIT: &str = "accreditation";
    let jurisdiction = Region::new(BUREAU_REGION).map_err(setup_err)?;
    let accredited_at = sc.submit(
        ACCREDIT,
        vec![(
            &setup.root_controller,
            IdentityOp::Accredit {
                parent: root.clone(),
                child: bureau.clone(),
                role: Role::Issuer,
                controller: setup.bureau_controller.public_key(),
                scope: Scope::new(
                    SchemaScope::Only(vec![schema_id]),
                    vec![jurisdiction.clone()],
                    0,
                ),
                expires_at: None,
            },
        )],
    )?;
    match sc.issuer(ACCREDIT, &bureau)? {
        Some(r) if r.parent.as_ref() == Some(&root) && r.role == Role::Issuer => {}
        _ => {
            return Err(IdentityError::Step {
                step: ACCREDIT,
                reason: format!("committed at h{accredited_at} but {bureau} is not accredited (the application refused it)"),
            }
            .into())
        }
    }
    progress(&format!(
        "identity: {root} accredited {bureau} (issuer of {} for {jurisdiction}) at h{accredited_at}",
        setup.schema.name()
    ));

    // 2. The bureau publishes the schema, adds key 0, creates its list.
    const PUBLISH: &str = "schema, key and status list";
    let published_at = sc.submit(
        PUBLISH,
        vec![
            (
                &setup.bureau_controller,
                IdentityOp::PublishSchema {
                    publisher: bureau.clone(),
                    schema: setup.schema.clone(),
                },
            ),
            (
                &setup.bureau_controller,
                IdentityOp::AddKey {
                    issuer: bureau.clone(),
                    key_id: KeyId::new(0),
                    public_key: setup.signing_keys[0].public_key(),
                },
            ),
            (
                &setup.bureau_controller,
                IdentityOp::CreateStatusList {
                    issuer: bureau.clone(),
                    list: STATUS_LIST,
                    capacity: MIN_LIST_CAPACITY,
                },
            ),
        ],
    )?;
    let schema_ok = sc
        .record::<SchemaRecord>(PUBLISH, &schema_key(&schema_id), MAX_SCHEMA_RECORD_LEN)?
        .is_some_and(|r| r.publisher == bureau);
    let key_ok = sc.issuer(PUBLISH, &bureau)?.is_some_and(|r| {
        r.key(KeyId::new(0)).is_some_and(|k| {
            k.public_key == setup.signing_keys[0].public_key() && k.state == KeyState::Active
        })
    });
    let list_ok = sc
        .status_page(PUBLISH, 0)?
        .is_some_and(|p| p.owner == bureau && p.capacity == MIN_LIST_CAPACITY);
    if !(schema_ok && key_ok && list_ok) {
        return Err(IdentityError::Step {
            step: PUBLISH,
            reason: format!(
                "committed by h{published_at} but not in effect (schema {schema_ok}, key 0 {key_ok}, status list {list_ok})"
            ),
        }
        .into());
    }
    progress(&format!(
        "identity: {bureau} published {} ({schema_id}), key 0 and status list {STATUS_LIST} of {MIN_LIST_CAPACITY} entries at h{published_at}",
        setup.schema.name()
    ));

    // 3. Issuance, off chain.
    let mut office = Bureau {
        allocator: StatusAllocator::new(STATUS_LIST, MIN_LIST_CAPACITY),
        jurisdiction,
    };
    let seen = writer.height(chain).map_err(step_err("issuance"))?;
    let started = Instant::now();
    let mut wallets = Vec::with_capacity(citizens);
    for i in 0..citizens {
        wallets.push(office.issue(setup, 0, seen, i as u64)?);
    }
    let issue_s = started.elapsed().as_secs_f64();
    let issue_per_s = citizens as f64 / issue_s.max(1e-9);
    progress(&format!(
        "identity: issued {citizens} credentials off chain in {issue_s:.2} s ({issue_per_s:.0}/s) with key 0 at h{seen}"
    ));

    // 4. The hall verifies every citizen's presentation.
    let mut policy = Policy::new(
        HallId::new(HALL).map_err(setup_err)?,
        Region::new(HALL_REGION).map_err(setup_err)?,
        vec![root.clone()],
        vec![schema_id],
    )
    .with_suite(setup.suite());
    policy.required_claims = HALL_REQUIRED.iter().map(|c| (*c).to_owned()).collect();
    policy.max_status_age_ms = 5 * 60 * 1000;
    let mut hall = Hall {
        verifier: Verifier::new(policy).map_err(setup_err)?,
        client: LightClient::from_genesis(chain.clone(), genesis_set.clone(), genesis_time),
        accepted_ns: Vec::with_capacity(citizens * 2 + NEW_KEY_CREDENTIALS),
        bytes: 0,
        disclosure_ok: true,
    };
    sc.follow(&mut hall.client, published_at)?;
    progress(&format!(
        "identity: hall {HALL} verified {} headers of {chain} from genesis via {}",
        hall.client.height(),
        hall_node.name()
    ));
    let started = Instant::now();
    let verified = verify_all(&sc, &mut hall, &wallets, None, "valid credentials verify")?;
    progress(&format!(
        "identity: hall {HALL} verified {verified} presentations in {:.2} s (wallets fetching proofs from {} included)",
        started.elapsed().as_secs_f64(),
        hall_node.name()
    ));

    // 5. Revocation.
    const REVOKE: &str = "revocation";
    let victim = (OsRng.next_u64() % citizens as u64) as usize;
    let index = wallets[victim].held.credential.body.status.index;
    let revoked_at = sc.submit(
        REVOKE,
        vec![(
            &setup.bureau_controller,
            IdentityOp::UpdateStatus {
                issuer: bureau.clone(),
                list: STATUS_LIST,
                updates: vec![StatusUpdate {
                    index,
                    status: EntryStatus::Revoked,
                }],
            },
        )],
    )?;
    let revoked = sc
        .status_page(REVOKE, index / ENTRIES_PER_PAGE)?
        .is_some_and(|p| p.get(index) == Ok(EntryStatus::Revoked));
    if !revoked {
        return Err(IdentityError::Step {
            step: REVOKE,
            reason: format!("committed at h{revoked_at} but the entry is not revoked (the application refused it)"),
        }
        .into());
    }
    sc.follow(&mut hall.client, revoked_at)?;
    let answer = hall.present(&sc, &wallets[victim])?;
    let revoked_rejected = matches!(answer, Err(Rejection::Revoked));
    let revoked_rejection = rejection_text(&answer);
    progress(&format!(
        "identity: one credential revoked at h{revoked_at}; its next presentation: {revoked_rejection}"
    ));

    // 6. Key rotation: retire key 0, add key 1.
    const ROTATE: &str = "key rotation";
    let rotated_at = sc.submit(
        ROTATE,
        vec![
            (
                &setup.bureau_controller,
                IdentityOp::RotateKey {
                    issuer: bureau.clone(),
                    key_id: KeyId::new(0),
                },
            ),
            (
                &setup.bureau_controller,
                IdentityOp::AddKey {
                    issuer: bureau.clone(),
                    key_id: KeyId::new(1),
                    public_key: setup.signing_keys[1].public_key(),
                },
            ),
        ],
    )?;
    let rotated = sc.issuer(ROTATE, &bureau)?.is_some_and(|r| {
        r.key(KeyId::new(0))
            .is_some_and(|k| matches!(k.state, KeyState::Rotated { .. }))
            && r.key(KeyId::new(1)).is_some_and(|k| {
                k.state == KeyState::Active && k.public_key == setup.signing_keys[1].public_key()
            })
    });
    if !rotated {
        return Err(IdentityError::Step {
            step: ROTATE,
            reason: format!(
                "committed by h{rotated_at} but key 0 is not rotated or key 1 not active"
            ),
        }
        .into());
    }
    sc.follow(&mut hall.client, rotated_at)?;
    let before = hall.accepted_ns.len();
    let rechecked = match verify_all(
        &sc,
        &mut hall,
        &wallets,
        Some(victim),
        "credentials of a rotated key still verify",
    ) {
        Ok(n) => n,
        Err(IdentityError::Check { detail, .. }) => {
            progress(&format!("identity: after rotation, {detail}"));
            hall.accepted_ns.len() - before
        }
        Err(e) => return Err(e.into()),
    };
    let rotated_still_verify = rechecked == citizens - 1;
    let seen = writer.height(chain).map_err(step_err(ROTATE))?;
    let mut new_key_verified = 0;
    for i in 0..NEW_KEY_CREDENTIALS {
        let w = office.issue(setup, 1, seen, (citizens + i) as u64)?;
        if hall.present(&sc, &w)?.is_ok() {
            new_key_verified += 1;
        }
    }
    let retired = office.issue(setup, 0, seen, (citizens + NEW_KEY_CREDENTIALS) as u64)?;
    let answer = hall.present(&sc, &retired)?;
    let retired_key_rejected = matches!(answer, Err(Rejection::KeyRetired { .. }));
    let retired_key_rejection = rejection_text(&answer);
    progress(&format!(
        "identity: key 0 rotated to key 1 at h{rotated_at}: {rechecked} earlier credentials still verify, \
         {new_key_verified}/{NEW_KEY_CREDENTIALS} new ones with key 1 verify, key 0 after rotation: {retired_key_rejection}"
    ));

    // 7. Privacy: no claim value or holder key anywhere on the ledger.
    const SCAN: &str = "privacy scan";
    let holder_keys: HashSet<Vec<u8>> = wallets
        .iter()
        .map(|w| w.holder.public_key().raw_bytes().to_vec())
        .collect();
    let tip = writer.height(chain).map_err(step_err(SCAN))?;
    let (mut scanned_txs, mut hits) = (0usize, 0usize);
    for h in 1..=tip.get() {
        let block = writer
            .block(chain, Height::new(h))
            .map_err(step_err(SCAN))?
            .block;
        for tx in &block.transactions {
            scanned_txs += 1;
            hits += usize::from(leaks(&tx.to_bytes(), &holder_keys));
        }
    }
    let mut keys = vec![
        issuer_key(&root),
        issuer_key(&bureau),
        schema_key(&schema_id),
    ];
    keys.extend((0..MIN_LIST_CAPACITY / ENTRIES_PER_PAGE).map(|p| status_page_key(STATUS_LIST, p)));
    let mut scanned_records = 0usize;
    for key in &keys {
        if let Some(v) = writer.state(chain, key).map_err(step_err(SCAN))? {
            scanned_records += 1;
            hits += usize::from(leaks(&v, &holder_keys));
        }
    }

    let mut ns = hall.accepted_ns.clone();
    ns.sort_unstable();
    let total_ns: u64 = ns.iter().sum();
    let records = hall.verifier.audit_log().records();
    let report = IdentityReport {
        chain: chain.clone(),
        suite: setup.suite(),
        writer: writer.name().to_owned(),
        hall_node: hall_node.name().to_owned(),
        accredited_at,
        published_at,
        credentials_issued: citizens + NEW_KEY_CREDENTIALS + 1,
        issue_per_s,
        presentations_verified: ns.len(),
        verify_per_s: ns.len() as f64 / (total_ns as f64 / 1e9).max(1e-9),
        verify_mean_us: total_ns as f64 / ns.len().max(1) as f64 / 1e3,
        verify_p50_us: percentile_us(&ns, 0.5),
        verify_p99_us: percentile_us(&ns, 0.99),
        verify_max_us: percentile_us(&ns, 1.0),
        presentation_bytes: hall.bytes / ns.len().max(1),
        light_headers: hall.client.height().get(),
        selective_disclosure_ok: hall.disclosure_ok,
        revoked_at,
        revoked_rejected,
        revoked_rejection,
        rotated_at,
        rotated_rechecked: rechecked,
        rotated_still_verify,
        new_key_verified,
        new_key_verify: new_key_verified == NEW_KEY_CREDENTIALS,
        retired_key_rejected,
        retired_key_rejection,
        audit_records: records.len(),
        audit_chain_ok: AuditLog::verify_chain(setup.suite(), records).is_ok(),
        scanned_txs,
        scanned_records,
        personal_data_hits: hits,
    };
    progress(&format!(
        "identity: privacy scan of {scanned_txs} transactions and {scanned_records} records: {hits} hits"
    ));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_scan_finds_claims_and_holder_keys() {
        let holder = demo_key(CryptoSuite::Ed25519Blake3, "test holder");
        let keys: HashSet<Vec<u8>> = [holder.public_key().raw_bytes().to_vec()]
            .into_iter()
            .collect();
        assert!(!leaks(b"id/issuer/hz-bureau", &keys));
        for (_, value) in Sandbox::citizen_claims(42) {
            if let govchain_identity::schema::ClaimValue::Text(t) = value {
                if t != "resident-card" {
                    let mut bytes = b"prefix".to_vec();
                    bytes.extend_from_slice(t.as_bytes());
                    assert!(leaks(&bytes, &keys), "{t}");
                }
            }
        }
        let mut bytes = vec![7u8; 5];
        bytes.extend_from_slice(holder.public_key().raw_bytes());
        assert!(leaks(&bytes, &keys));
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile_us(&[], 0.5), 0.0);
        let ns: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        assert_eq!(percentile_us(&ns, 0.0), 1.0);
        assert_eq!(percentile_us(&ns, 1.0), 100.0);
        assert_eq!(percentile_us(&ns, 0.99), 99.0);
    }

    #[test]
    fn setup_is_deterministic_and_valid() {
        let gov = vec![demo_key(CryptoSuite::Ed25519Blake3, "gov").public_key()];
        let (a, b) = (
            IdentitySetup::new(gov.clone()).unwrap(),
            IdentitySetup::new(gov.clone()).unwrap(),
        );
        assert_eq!(a.genesis(), b.genesis());
        assert_eq!(
            a.schema().id(a.suite()),
            b.schema().id(CryptoSuite::Ed25519Blake3)
        );
        assert_eq!(a.app().name(), "identity");
        // An SM2/SM3 setup: SM2 governance keys are admitted, Ed25519 ones
        // are refused.
        let sm_gov = vec![demo_key(CryptoSuite::Sm2Sm3, "gov").public_key()];
        let sm = IdentitySetup::with_suite(CryptoSuite::Sm2Sm3, sm_gov).unwrap();
        assert_eq!(sm.suite(), CryptoSuite::Sm2Sm3);
        assert!(IdentitySetup::with_suite(CryptoSuite::Sm2Sm3, gov).is_err());
        assert_eq!(a.app().name(), "identity");
        assert!(!format!("{a:?}").contains("signing"));
    }
}
