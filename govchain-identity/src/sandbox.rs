//! An in-memory identity side chain for tests, examples and benchmarks.
//!
//! [`Sandbox`] wraps core's [`ChainBuilder`] running the [`IdentityApp`] and
//! a [`LightClient`] that follows it, and sets up the issue's scenario: a
//! provincial root (`zj-province`, pinned at genesis) accredits a city
//! bureau (`hz-bureau`, issuer for `CN-33-01`), which publishes the
//! resident-identity schema, registers signing key 0 and creates status
//! list 1 of [`MIN_LIST_CAPACITY`] entries. Every block is real: signed
//! transactions, certified headers, state proofs — what a network would
//! produce. Keys come from fixed seeds; this is not for production.
//!
//! [`Sandbox::new`] runs an ed25519-blake3 chain; [`Sandbox::with_suite`]
//! runs the same scenario under any suite (validators, governance,
//! controllers and credential keys all of its algorithm, every hash under
//! its function).

use std::collections::BTreeMap;

use govchain_core::app::Receipt;
use govchain_core::crypto::{CryptoSuite, PublicKey, SecretKey, Signer};
use govchain_core::light::{LightClient, LightClientError};
use govchain_core::testkit::{ChainBuilder, TestkitError};
use govchain_core::tx::{Transaction, TxError};
use govchain_core::types::{ChainId, Height, Timestamp};

use crate::app::{IdentityApp, IdentityGenesis, IdentityOp, OpError};
use crate::credential::{CredentialIssuer, HeldCredential, IssuanceRequest, IssueError, StatusRef};
use crate::ids::{HallId, IdError, IssuerId, KeyId, Region, StatusListId};
use crate::issuer::{GrantStatus, IssuerRecord, Role, SchemaScope, Scope};
use crate::presentation::{CollectError, StapledProofs};
use crate::schema::{AttrType, Attribute, ClaimValue, DisclosurePolicy, Schema, SchemaError};
use crate::status::{AllocError, StatusAllocator, MIN_LIST_CAPACITY};
use crate::verifier::Policy;

/// Why a sandbox step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The chain builder failed.
    #[error(transparent)]
    Chain(#[from] TestkitError),
    /// The light client refused a block.
    #[error(transparent)]
    Light(#[from] LightClientError),
    /// A transaction could not be built.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// An operation failed on chain.
    #[error("operation failed on chain: code {code}: {message}")]
    OpFailed {
        /// Receipt code.
        code: u32,
        /// Receipt message.
        message: String,
    },
    /// The application's genesis is invalid.
    #[error(transparent)]
    Genesis(#[from] OpError),
    /// Issuance failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// No free status entry.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// Proof collection failed.
    #[error(transparent)]
    Collect(#[from] CollectError<TestkitError>),
    /// A fixed identifier is invalid (a bug).
    #[error(transparent)]
    Id(#[from] IdError),
    /// The fixed schema is invalid (a bug).
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The sandbox's chain id.
pub const SANDBOX_CHAIN: &str = "zj-identity";
/// The sandbox's genesis time (ms since the epoch).
pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// Validity of sandbox credentials: 30 days.
pub const CREDENTIAL_VALIDITY_MS: u64 = 30 * 24 * 3600 * 1000;
/// Milliseconds between sandbox blocks.
pub const BLOCK_INTERVAL_MS: u64 = 1_000;

/// An in-memory identity side chain with the issue's scenario set up.
pub struct Sandbox {
    suite: CryptoSuite,
    chain: ChainBuilder<IdentityApp>,
    client: LightClient,
    governance: SecretKey,
    root_controller: SecretKey,
    bureau_controller: SecretKey,
    signing_keys: BTreeMap<u32, SecretKey>,
    current_key: KeyId,
    schema: Schema,
    allocator: StatusAllocator,
    nonces: BTreeMap<PublicKey, u64>,
    now: Timestamp,
}

const ROOT_TAG: u8 = 2;
const BUREAU_TAG: u8 = 3;

fn key_for(suite: CryptoSuite, tag: u8) -> SecretKey {
    let mut seed = [0x1d; 32];
    seed[0] = tag;
    SecretKey::from_seed_for(suite, &seed)
}

impl Sandbox {
    /// The root's id.
    pub fn root_id() -> IssuerId {
        IssuerId::from_static("zj-province")
    }

    /// The bureau's id.
    pub fn bureau_id() -> IssuerId {
        IssuerId::from_static("hz-bureau")
    }

    /// The bureau's status list.
    pub const LIST: StatusListId = StatusListId::new(1);

    /// The resident-identity schema: `document_type` (always disclosed) and
    /// five selectively disclosable claims, `name`, `id_number`,
    /// `birth_date`, `address` (optional), `over_18` (optional).
    pub fn resident_schema() -> Result<Schema, SchemaError> {
        use DisclosurePolicy::{Always, Selective};
        Schema::new(
            "resident-identity",
            1,
            vec![
                Attribute::new(
                    "document_type",
                    AttrType::Text { max_len: 32 },
                    Always,
                    true,
                ),
                Attribute::new("name", AttrType::Text { max_len: 128 }, Selective, true),
                Attribute::new("id_number", AttrType::Text { max_len: 32 }, Selective, true),
                Attribute::new("birth_date", AttrType::Date, Selective, true),
                Attribute::new("address", AttrType::Text { max_len: 256 }, Selective, false),
                Attribute::new("over_18", AttrType::Boolean, Selective, false),
            ],
            5 * 365 * 24 * 3600 * 1000,
        )
    }

    /// Synthetic claims of citizen `i` (deterministic, clearly fake).
    pub fn citizen_claims(i: u64) -> Vec<(String, ClaimValue)> {
        vec![
            (
                "document_type".into(),
                ClaimValue::Text("resident-card".into()),
            ),
            (
                "name".into(),
                ClaimValue::Text(format!("Synthetic Citizen {i:07}")),
            ),
            (
                "id_number".into(),
                ClaimValue::Text(format!("SYN33010{i:010}")),
            ),
            (
                "birth_date".into(),
                ClaimValue::Date(3_000 + (i % 20_000) as u32),
            ),
            (
                "address".into(),
                ClaimValue::Text(format!("{} Synthetic Road, Hangzhou", i % 997)),
            ),
            ("over_18".into(), ClaimValue::Boolean(!i.is_multiple_of(5))),
        ]
    }

    /// Builds the chain under ed25519-blake3: genesis with the pinned root,
    /// then one block that accredits the bureau and one in which the bureau
    /// publishes the schema, adds key 0 and creates its status list.
    pub fn new() -> Result<Self, SandboxError> {
        Self::with_suite(CryptoSuite::Ed25519Blake3)
    }

    /// [`Sandbox::new`] under `suite`: every key (validators, governance,
    /// controllers, credential keys) is of its algorithm.
    pub fn with_suite(suite: CryptoSuite) -> Result<Self, SandboxError> {
        let key = |tag| key_for(suite, tag);
        let schema = Self::resident_schema()?;
        let governance = key(1);
        let root_controller = key(ROOT_TAG);
        let bureau_controller = key(BUREAU_TAG);
        let root = IssuerRecord {
            id: Self::root_id(),
            role: Role::Root,
            parent: None,
            controller: root_controller.public_key(),
            scope: Scope::new(SchemaScope::Any, vec![Region::new("CN-33")?], 2),
            granted_at: Height::new(0),
            expires_at: None,
            status: GrantStatus::Active,
            keys: Vec::new(),
        };
        let app = IdentityApp::new(IdentityGenesis {
            suite,
            governance: vec![governance.public_key()],
            roots: vec![root],
        })?;
        let chain_id = ChainId::new(SANDBOX_CHAIN).map_err(|e| SandboxError::OpFailed {
            code: 0,
            message: e.to_string(),
        })?;
        let validators: Vec<SecretKey> = (10..14).map(key).collect();
        let chain = ChainBuilder::new(
            chain_id.clone(),
            app,
            validators,
            Timestamp::new(GENESIS_TIME_MS),
        )?;
        let (set, t) = chain.genesis();
        let client = LightClient::from_genesis(chain_id, set.clone(), t);
        let mut sb = Sandbox {
            suite,
            chain,
            client,
            governance,
            root_controller,
            bureau_controller,
            signing_keys: BTreeMap::from([(0, key(4))]),
            current_key: KeyId::new(0),
            allocator: StatusAllocator::new(Self::LIST, MIN_LIST_CAPACITY),
            schema,
            nonces: BTreeMap::new(),
            now: Timestamp::new(GENESIS_TIME_MS),
        };
        let accredit = IdentityOp::Accredit {
            parent: Self::root_id(),
            child: Self::bureau_id(),
            role: Role::Issuer,
            controller: sb.bureau_controller.public_key(),
            scope: Scope::new(
                SchemaScope::Only(vec![sb.schema_id()]),
                vec![Region::new("CN-33-01")?],
                0,
            ),
            expires_at: None,
        };
        sb.submit_ok(&[(&key(ROOT_TAG), accredit)])?;
        let bureau = key(BUREAU_TAG);
        sb.submit_ok(&[
            (
                &bureau,
                IdentityOp::PublishSchema {
                    publisher: Self::bureau_id(),
                    schema: sb.schema.clone(),
                },
            ),
            (
                &bureau,
                IdentityOp::AddKey {
                    issuer: Self::bureau_id(),
                    key_id: KeyId::new(0),
                    public_key: key(4).public_key(),
                },
            ),
            (
                &bureau,
                IdentityOp::CreateStatusList {
                    issuer: Self::bureau_id(),
                    list: Self::LIST,
                    capacity: MIN_LIST_CAPACITY,
                },
            ),
        ])?;
        Ok(sb)
    }

    /// Submits `ops` (each signed by its key) as the next block, which the
    /// light client then verifies; returns the receipts.
    pub fn submit(
        &mut self,
        ops: &[(&SecretKey, IdentityOp)],
    ) -> Result<Vec<Receipt>, SandboxError> {
        use govchain_core::codec::Encode;
        let mut txs = Vec::with_capacity(ops.len());
        for (signer, op) in ops {
            let n = self.nonces.entry(signer.public_key()).or_insert(0);
            txs.push(Transaction::new_signed(
                self.chain.chain_id().clone(),
                *signer,
                *n,
                op.to_bytes(),
            )?);
            *n += 1;
        }
        self.now = Timestamp::new(self.now.get() + BLOCK_INTERVAL_MS);
        let block = self.chain.produce_block(txs, self.now)?;
        let receipts = block.receipts.clone();
        let light = block.light.clone();
        self.client.verify(&light)?;
        Ok(receipts)
    }

    /// [`submit`](Self::submit), failing on the first non-zero receipt.
    pub fn submit_ok(&mut self, ops: &[(&SecretKey, IdentityOp)]) -> Result<(), SandboxError> {
        for r in self.submit(ops)? {
            if !r.is_ok() {
                return Err(SandboxError::OpFailed {
                    code: r.code,
                    message: String::from_utf8_lossy(&r.data).into_owned(),
                });
            }
        }
        Ok(())
    }

    /// Produces an empty block (advancing time by [`BLOCK_INTERVAL_MS`]).
    pub fn tick(&mut self) -> Result<(), SandboxError> {
        self.submit(&[]).map(|_| ())
    }

    /// Issues a credential of synthetic citizen `i` with the bureau's current
    /// key, a fresh random status index, valid from one second ago for
    /// [`CREDENTIAL_VALIDITY_MS`].
    pub fn issue<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
        citizen: u64,
        holder: Option<PublicKey>,
    ) -> Result<HeldCredential, SandboxError> {
        let index = self.allocator.allocate(rng)?;
        let request = IssuanceRequest {
            claims: Self::citizen_claims(citizen),
            holder,
            valid_from: Timestamp::new(self.now.get() - 1_000),
            valid_until: Timestamp::new(self.now.get() - 1_000 + CREDENTIAL_VALIDITY_MS),
            jurisdiction: Region::new("CN-33-01")?,
            status: StatusRef {
                list: Self::LIST,
                index,
            },
        };
        Ok(self.issuer().issue(rng, request)?)
    }

    /// The bureau's issuing context (current key, current height).
    pub fn issuer(&self) -> CredentialIssuer<'_> {
        let signer: &dyn Signer = self
            .signing_keys
            .get(&self.current_key.get())
            .map_or(&self.bureau_controller, |k| k as &dyn Signer);
        CredentialIssuer::new(
            Self::bureau_id(),
            self.current_key,
            signer,
            &self.schema,
            self.chain.height(),
        )
    }

    /// Rotates the bureau's signing key: retires the current one and adds
    /// the next, which becomes current.
    pub fn rotate_key(&mut self) -> Result<KeyId, SandboxError> {
        let old = self.current_key;
        let new = KeyId::new(old.get() + 1);
        let fresh = key_for(self.suite, 40 + new.get() as u8);
        let bureau = key_for(self.suite, BUREAU_TAG);
        self.submit_ok(&[
            (
                &bureau,
                IdentityOp::RotateKey {
                    issuer: Self::bureau_id(),
                    key_id: old,
                },
            ),
            (
                &bureau,
                IdentityOp::AddKey {
                    issuer: Self::bureau_id(),
                    key_id: new,
                    public_key: fresh.public_key(),
                },
            ),
        ])?;
        self.signing_keys.insert(new.get(), fresh);
        self.current_key = new;
        Ok(new)
    }

    /// Proofs for `credential` against the latest header.
    pub fn proofs(&self, held: &HeldCredential) -> Result<StapledProofs, SandboxError> {
        self.proofs_at(self.chain.height(), held)
    }

    /// Proofs for `credential` against the header at `height`.
    pub fn proofs_at(
        &self,
        height: Height,
        held: &HeldCredential,
    ) -> Result<StapledProofs, SandboxError> {
        Ok(StapledProofs::collect(height, &held.credential, |k| {
            self.chain.state_proof(height, k)
        })?)
    }

    /// A hall policy trusting the sandbox root and schema, serving `CN-33`,
    /// accepting only the chain's suite.
    pub fn policy(&self, hall: &str) -> Result<Policy, SandboxError> {
        Ok(Policy::new(
            HallId::new(hall)?,
            Region::new("CN-33")?,
            vec![Self::root_id()],
            vec![self.schema_id()],
        )
        .with_suite(self.suite))
    }

    /// The chain's crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The schema's id on this chain (under its suite).
    pub fn schema_id(&self) -> crate::ids::SchemaId {
        self.schema.id(self.suite)
    }

    /// The chain builder.
    pub fn chain(&self) -> &ChainBuilder<IdentityApp> {
        &self.chain
    }

    /// The light client following the chain.
    pub fn client(&self) -> &LightClient {
        &self.client
    }

    /// The time of the latest block.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The governance key.
    pub fn governance_key(&self) -> &SecretKey {
        &self.governance
    }

    /// The root's controller key.
    pub fn root_key(&self) -> &SecretKey {
        &self.root_controller
    }

    /// The bureau's controller key.
    pub fn bureau_key(&self) -> &SecretKey {
        &self.bureau_controller
    }

    /// The bureau's signing key `id`, if the sandbox made it.
    pub fn signing_key(&self, id: KeyId) -> Option<&SecretKey> {
        self.signing_keys.get(&id.get())
    }
}
