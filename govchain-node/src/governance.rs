//! The main-chain governance application.
//!
//! [`GovernanceApp`] is the [`Application`] of the main chain. It keeps, in
//! authenticated state (so every record comes with proofs):
//! - the **registry** of departments and their node keys;
//! - the **chains**: the main chain and every registered side chain, with its
//!   engine ([`EngineKind::Bft`] or [`EngineKind::Raft`]) and anchor
//!   interval K;
//! - each chain's **validator schedule** (effective height → [`ValidatorSet`];
//!   the set for height `h` is the entry with the greatest key `<= h`, the
//!   convention of the consensus engines);
//! - per-chain **parameters**, also scheduled by effective height;
//! - **proposals** and their votes;
//! - **anchors**: side-chain checkpoints ([`AnchorRecord`]) whose commit
//!   certificates were verified against the side chain's registered set.
//!
//! # Transactions
//! A transaction's payload is one canonically encoded [`GovernanceOp`]
//! (a version byte, then the operation). Only registered departments may
//! send them: the transaction's sender must be a department's node key.
//! Nonces follow the standard rule of [`NonceTracker`] (`check_tx` refuses
//! only replayed nonces; execution enforces the exact order).
//!
//! - [`GovernanceOp::Propose`] opens a [`Proposal`] for an [`Action`] taking
//!   effect at `effective_height` of the chain it governs. Proposing counts as
//!   the proposer's approval.
//! - [`GovernanceOp::Vote`] approves or rejects an open proposal; a
//!   department's second vote on one proposal is refused
//!   ([`CODE_ALREADY_VOTED`]), so each vote counts once.
//! - A proposal **passes** when the departments approving it hold more than
//!   2/3 of the voting power of the main chain's validator set in effect at
//!   the height of the block that counts the vote (strictly more: exactly
//!   2/3 does not pass). Approvals are re-weighed against the current set at
//!   every vote. It is **rejected** once the rejecting power makes more than
//!   2/3 unreachable. On passing, the action is checked again against the
//!   current state and applied; if it no longer fits, the proposal is
//!   recorded as [`ProposalStatus::Failed`] with the reason's code.
//! - [`GovernanceOp::Anchor`] records a side-chain checkpoint: the side
//!   header and its commit certificate, verified against the side chain's
//!   registered validator set at that height (BFT: more than 2/3 of the
//!   power via [`CommitCertificate::verify`]; Raft: leader plus strict
//!   majority via [`verify_raft_certificate_header`]). Anchor heights are
//!   strictly increasing per side chain.
//!
//! # Effective heights
//! - **Main chain.** A Tendermint header at height `h - 1` commits
//!   `next_validator_set_hash`, the set of height `h`. The header of the
//!   block being executed, `m`, was fixed before its execution, so it already
//!   named the set of `m + 1`. The node schedules a change after it commits
//!   block `m`, when its engine is already deciding `m + 1` and proposals
//!   for `m + 1` (which name the set of `m + 2`) may already be judged: a
//!   change decided while executing block `m` can therefore take effect at
//!   `m + 3` at the earliest, the engine's own rule
//!   (`Tendermint::schedule_validator_set`). Every main-chain action needs
//!   `effective_height > m + 2`, both when proposed and when it passes
//!   (otherwise the proposal fails with [`CODE_BAD_EFFECTIVE_HEIGHT`]). The node must feed the new schedule
//!   (see [`validator_schedule`]) to its engine after executing block `m`.
//! - **Side chains.** The main chain does not know a side chain's tip, only
//!   its anchors: a side-chain change needs an effective height above the
//!   latest anchored height (anchored history can not be re-signed). The
//!   side chain's nodes must adopt the change before that height, or the
//!   side chain's later anchors will not verify.
//! - **Monotone schedules.** A validator change is applied on top of the
//!   latest scheduled set of its chain, so its effective height must be at
//!   least the latest scheduled height (equal replaces that entry).
//!   Parameters follow the same rule per name.
//!
//! # Validators are department nodes
//! Every validator key of every chain, at genesis or added later, must be a
//! key of a registered department ([`Action::AddValidator`] names the
//! department; [`Action::RegisterSideChain`] checks each member): its node
//! key on chains of the network's suite, its registered key of another
//! suite on chains of that suite (see "Crypto suites" below). A node
//! therefore uses one key per suite on every chain it validates.
//!
//! # Crypto suites: one per chain, keys per department
//! The network's [`CryptoSuite`] ([`GovernanceApp::suite`],
//! [`GovernanceGenesis::suite`]) is the suite of the main chain's genesis
//! validator set. Department **node keys** are of it: a node key signs the
//! department's main-chain transactions, its votes on chains of that suite
//! and its transport handshake. A department may also hold **one key of
//! each other suite** ([`department_suite_key`]), registered at genesis
//! ([`GenesisDepartment::suite_keys`]) or by
//! [`Action::RegisterDepartmentKey`] with a proof of possession bound to
//! the main chain and the department
//! ([`prove_department_key_possession`]). Every key is in the key-to-
//! department index ([`department_of_key`]), so votes still count once
//! per department and nodes map a chain's validator key to the
//! department's node key for transport.
//!
//! A chain's suite is the suite of its validator sets ([`chain_suite`]): a
//! set never mixes algorithms, and every change of a chain's set is checked
//! against it, so the registered schedule is the record of the suite (no
//! format change to [`ChainInfo`], whose encoding predates suites, and the
//! two can never disagree). The main chain's suite is the network's; a side
//! chain's is chosen when it is registered. Refused with
//! [`CODE_INVALID_ACTION`] and a reason naming both suites, when proposed
//! and again when the proposal passes:
//! - [`Action::RegisterDepartment`]: a node key of another suite than the
//!   network's ([`GenesisError::DepartmentKeySuite`] at genesis);
//! - [`Action::AddValidator`], [`Action::RotateValidatorKey`]: a key of
//!   another suite than the governed chain's;
//! - [`Action::RegisterDepartmentKey`]: a key of the network's suite (that
//!   is the node key, changed by rotation), of a suite the department
//!   already holds a key of (a replacement goes through rotation), a key
//!   already registered to any department, or a proof that does not verify
//!   ([`DepartmentKeyError`]).
//!
//! A validator of a chain of the network's suite is a department's node
//! key (or a key it rotated to); a validator of a chain of another suite
//! is a department's registered key of that suite
//! ([`Action::AddValidator`], [`Action::RegisterSideChain`] when passing,
//! [`GenesisError::NotADepartmentKey`] at genesis). Removing a department
//! removes every key it registered.
//!
//! # Genesis
//! [`GovernanceGenesis`] lists departments, the main chain, and the initial
//! side chains. Its state is written either explicitly by the host
//! ([`GovernanceApp::genesis_writes`] committed as the genesis state), or,
//! if the state holds no governance configuration yet, by the first
//! executed block before its transactions (and `check_tx` reads the genesis
//! records until then). Both give the same records; all nodes of a chain
//! must do the same thing, as they must agree on state roots.
//!
//! # State layout
//! Keys are ASCII prefixes followed by canonical encodings (a chain id or
//! department id is length-prefixed, so no key is a prefix of another);
//! heights and proposal ids in keys are 8-byte big-endian.
//!
//! | key | value |
//! |---|---|
//! | [`CONFIG_KEY`] `gov/config` | [`GovernanceConfig`] |
//! | [`DEPARTMENTS_KEY`] `gov/departments` | sorted `Vec<DepartmentId>` |
//! | [`department_key`] `gov/department/ ‖ id` | [`Department`] |
//! | [`node_key_key`] `gov/node-key/ ‖ public key` | [`DepartmentId`] (node keys, keys rotated to, suite keys) |
//! | [`suite_key_key`] `gov/suite-key/ ‖ department ‖ suite id` | the department's [`PublicKey`] of that suite |
//! | [`CHAINS_KEY`] `gov/chains` | sorted `Vec<ChainId>` |
//! | [`chain_key`] `gov/chain/ ‖ chain` | [`ChainInfo`] |
//! | [`schedule_key`] `gov/schedule/ ‖ chain` | ascending `Vec<Height>` of validator-set entries |
//! | [`validator_set_key`] `gov/validators/ ‖ chain ‖ height` | [`ValidatorSet`] |
//! | [`parameters_key`] `gov/parameters/ ‖ chain` | name → (height → value) table |
//! | [`NEXT_PROPOSAL_KEY`] `gov/next-proposal` | next [`ProposalId`] |
//! | [`proposal_key`] `gov/proposal/ ‖ id` | [`Proposal`] |
//! | [`anchor_key`] `gov/anchor/ ‖ chain ‖ height` | [`AnchorRecord`] |
//! | [`latest_anchor_key`] `gov/anchor-latest/ ‖ chain` | [`AnchorRecord`] |
//! | [`NonceTracker::key`] `nonce/ ‖ public key` | next nonce |
//!
//! # Receipts
//! An operation that fails is still in the block (its nonce is used) and
//! writes nothing else; its receipt carries one of the `CODE_*` constants and
//! a UTF-8 reason. A successful receipt (code 0) carries a canonically
//! encoded [`GovernanceEvent`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use govchain_consensus::raft::{verify_raft_certificate_header, RaftVoters};
use govchain_core::app::{
    Application, BlockContext, ExecutionError, NonceTracker, QueryError, Receipt, StateError,
    StateOverlay, StateView, TxRejection,
};
use govchain_core::block::BlockHeader;
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::{
    decode_exact, encode_bytes, encode_len, encode_seq, Decode, DecodeError, Encode, Reader,
};
use govchain_core::crypto::{CryptoSuite, PublicKey, Signature, Signer};
use govchain_core::hash::Domain;
use govchain_core::hash::Hash;
use govchain_core::tx::{Transaction, MAX_PAYLOAD_LEN};
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::{
    possession_digest, prove_possession, verify_possession, verify_rotation_possession, KeyWindow,
    RotatedKey, Validator, ValidatorSet, ValidatorSetError, MAX_VALIDATORS,
};

/// Version byte that opens every encoded [`GovernanceOp`].
pub const GOVERNANCE_OP_VERSION: u8 = 1;
/// Most bytes of a department id.
pub const MAX_DEPARTMENT_ID_LEN: usize = 32;
/// Most bytes of a department's display name.
pub const MAX_DEPARTMENT_NAME_LEN: usize = 128;
/// Most registered departments.
pub const MAX_DEPARTMENTS: usize = MAX_VALIDATORS;
/// Most registered chains, the main chain included.
pub const MAX_CHAINS: usize = 256;
/// Most validator-set entries in one chain's schedule.
pub const MAX_SCHEDULE_ENTRIES: usize = 4096;
/// Most bytes of a parameter name.
pub const MAX_PARAMETER_NAME_LEN: usize = 64;
/// Most bytes of a parameter value.
pub const MAX_PARAMETER_VALUE_LEN: usize = 1024;
/// Most parameter names per chain.
pub const MAX_PARAMETERS_PER_CHAIN: usize = 64;
/// Most scheduled values per parameter (values superseded before the
/// chain's known height are pruned first).
pub const MAX_PARAMETER_SCHEDULE: usize = 16;
/// Largest state value this application writes, a decode limit for reads.
pub const MAX_RECORD_LEN: usize = 2 * 1024 * 1024;
/// Largest encoded [`GovernanceQuery`].
pub const MAX_QUERY_LEN: usize = 1024;

/// Receipt code: success.
pub const CODE_OK: u32 = 0;
/// Receipt code: the nonce is not the sender's next one.
pub const CODE_BAD_NONCE: u32 = 1;
/// Receipt code: the payload is not a canonical [`GovernanceOp`].
pub const CODE_MALFORMED: u32 = 2;
/// Receipt code: the sender is not a registered department's node key.
pub const CODE_UNAUTHORIZED: u32 = 3;
/// Receipt code: the chain named (or anchored) is not registered.
pub const CODE_UNKNOWN_CHAIN: u32 = 4;
/// Receipt code: the effective height is too early (see the module docs).
pub const CODE_BAD_EFFECTIVE_HEIGHT: u32 = 5;
/// Receipt code: the action does not fit the current state (unknown
/// department, key not the department's node key, validator not a member,
/// empty resulting set, chain or department already registered, ...).
pub const CODE_INVALID_ACTION: u32 = 6;
/// Receipt code: no proposal with that id.
pub const CODE_UNKNOWN_PROPOSAL: u32 = 7;
/// Receipt code: the proposal is no longer open.
pub const CODE_PROPOSAL_CLOSED: u32 = 8;
/// Receipt code: this department already voted on the proposal.
pub const CODE_ALREADY_VOTED: u32 = 9;
/// Receipt code: an anchor of the main chain itself, or whose certificate
/// names another chain than its header.
pub const CODE_ANCHOR_WRONG_CHAIN: u32 = 10;
/// Receipt code: the side chain has no registered validator set at the
/// anchored height.
pub const CODE_ANCHOR_NO_VALIDATOR_SET: u32 = 11;
/// Receipt code: the anchor's certificate does not commit its header under
/// the registered set.
pub const CODE_ANCHOR_BAD_CERTIFICATE: u32 = 12;
/// Receipt code: the anchored height is not above the latest anchor.
pub const CODE_ANCHOR_NOT_INCREASING: u32 = 13;
/// Receipt code: a registry, schedule or parameter limit is reached.
pub const CODE_LIMIT_REACHED: u32 = 14;

/// State key of the [`GovernanceConfig`]; its presence marks written genesis.
pub const CONFIG_KEY: &[u8] = b"gov/config";
/// State key of the sorted list of department ids.
pub const DEPARTMENTS_KEY: &[u8] = b"gov/departments";
/// State key of the sorted list of registered chain ids.
pub const CHAINS_KEY: &[u8] = b"gov/chains";
/// State key of the next proposal id.
pub const NEXT_PROPOSAL_KEY: &[u8] = b"gov/next-proposal";

fn key_with(prefix: &[u8], parts: &[&dyn Encode]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for p in parts {
        p.encode_to(&mut key);
    }
    key
}

/// State key of department `id`.
pub fn department_key(id: &DepartmentId) -> Vec<u8> {
    key_with(b"gov/department/", &[id])
}

/// State key mapping a node key to its department's id.
pub fn node_key_key(key: &PublicKey) -> Vec<u8> {
    key_with(b"gov/node-key/", &[key])
}

/// State key of department `id`'s registered key of `suite` (a suite other
/// than the network's; see [`Action::RegisterDepartmentKey`]).
pub fn suite_key_key(id: &DepartmentId, suite: CryptoSuite) -> Vec<u8> {
    key_with(b"gov/suite-key/", &[id, &suite])
}

/// State key of chain `chain`'s [`ChainInfo`].
pub fn chain_key(chain: &ChainId) -> Vec<u8> {
    key_with(b"gov/chain/", &[chain])
}

/// State key of the heights at which `chain`'s validator schedule has
/// entries.
pub fn schedule_key(chain: &ChainId) -> Vec<u8> {
    key_with(b"gov/schedule/", &[chain])
}

/// State key of `chain`'s validator set effective from `height`.
pub fn validator_set_key(chain: &ChainId, height: Height) -> Vec<u8> {
    let mut key = key_with(b"gov/validators/", &[chain]);
    key.extend_from_slice(&height.get().to_be_bytes());
    key
}

/// State key of `chain`'s parameter table.
pub fn parameters_key(chain: &ChainId) -> Vec<u8> {
    key_with(b"gov/parameters/", &[chain])
}

/// State key of proposal `id`.
pub fn proposal_key(id: ProposalId) -> Vec<u8> {
    let mut key = b"gov/proposal/".to_vec();
    key.extend_from_slice(&id.get().to_be_bytes());
    key
}

/// State key of the anchor of side chain `chain` at `height`.
pub fn anchor_key(chain: &ChainId, height: Height) -> Vec<u8> {
    let mut key = key_with(b"gov/anchor/", &[chain]);
    key.extend_from_slice(&height.get().to_be_bytes());
    key
}

/// State key of the latest anchor of side chain `chain`.
pub fn latest_anchor_key(chain: &ChainId) -> Vec<u8> {
    key_with(b"gov/anchor-latest/", &[chain])
}

// ---------------------------------------------------------------------------
// Identifiers and records
// ---------------------------------------------------------------------------

/// A department's identifier: 1 to 32 bytes of `[a-z0-9._-]`, starting with
/// a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DepartmentId(String);

/// Why a string is not a valid [`DepartmentId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("department id {id:?} must be 1..={MAX_DEPARTMENT_ID_LEN} bytes of [a-z0-9._-] starting with a letter or digit")]
pub struct DepartmentIdError {
    /// The rejected id.
    pub id: String,
}

fn valid_ident(bytes: &[u8], max: usize) -> bool {
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes.iter().enumerate().all(|(i, &b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && (b == b'-' || b == b'.' || b == b'_'))
        })
}

fn decode_ident(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<String, DecodeError> {
    let raw = r.bytes(what, max)?;
    if !valid_ident(raw, max) {
        return Err(DecodeError::InvalidValue {
            what,
            reason: "must be [a-z0-9._-] starting with a letter or digit",
        });
    }
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidUtf8 { what })
}

impl DepartmentId {
    /// Validates and wraps a department id.
    pub fn new(id: impl Into<String>) -> Result<Self, DepartmentIdError> {
        let id = id.into();
        if valid_ident(id.as_bytes(), MAX_DEPARTMENT_ID_LEN) {
            Ok(DepartmentId(id))
        } else {
            Err(DepartmentIdError { id })
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DepartmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DepartmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DepartmentId({})", self.0)
    }
}

impl Encode for DepartmentId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.0.as_bytes(), out);
    }
}

impl Decode for DepartmentId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        decode_ident(r, "department id", MAX_DEPARTMENT_ID_LEN).map(DepartmentId)
    }
}

/// The id of a governance proposal, assigned in order from 1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProposalId(u64);

impl ProposalId {
    /// Wraps a raw id.
    pub const fn new(id: u64) -> Self {
        ProposalId(id)
    }

    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Encode for ProposalId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
}

impl Decode for ProposalId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProposalId(u64::decode_from(r)?))
    }
}

/// A registered department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// Its id.
    pub id: DepartmentId,
    /// Display name (no personal data).
    pub name: String,
    /// The key its node signs with: transactions on the main chain, and
    /// votes on every chain it validates.
    pub node_key: PublicKey,
}

impl Encode for Department {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        self.name.encode_to(out);
        self.node_key.encode_to(out);
    }
}

impl Decode for Department {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Department {
            id: DepartmentId::decode_from(r)?,
            name: r.string("department name", MAX_DEPARTMENT_NAME_LEN)?,
            node_key: PublicKey::decode_from(r)?,
        })
    }
}

/// The consensus engine a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EngineKind {
    /// Tendermint: certificates of more than 2/3 of the power.
    Bft = 1,
    /// Raft: certificates of the leader plus a strict majority of the
    /// voters (voting power is ignored).
    Raft = 2,
}

impl Encode for EngineKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for EngineKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(EngineKind::Bft),
            2 => Ok(EngineKind::Raft),
            tag => Err(DecodeError::InvalidTag {
                what: "engine kind",
                tag,
            }),
        }
    }
}

/// Whether a chain is the main chain or a side chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainRole {
    /// The main chain, which runs this application.
    Main = 1,
    /// A side chain that anchors checkpoints on the main chain.
    Side = 2,
}

impl Encode for ChainRole {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
}

impl Decode for ChainRole {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(ChainRole::Main),
            2 => Ok(ChainRole::Side),
            tag => Err(DecodeError::InvalidTag {
                what: "chain role",
                tag,
            }),
        }
    }
}

/// A registered chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The chain.
    pub chain_id: ChainId,
    /// Main or side.
    pub role: ChainRole,
    /// Its consensus engine (the main chain is always BFT).
    pub engine: EngineKind,
    /// A side chain anchors a checkpoint every `anchor_interval` blocks;
    /// `0` for the main chain.
    pub anchor_interval: u64,
}

impl Encode for ChainInfo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.role.encode_to(out);
        self.engine.encode_to(out);
        self.anchor_interval.encode_to(out);
    }
}

impl Decode for ChainInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChainInfo {
            chain_id: ChainId::decode_from(r)?,
            role: ChainRole::decode_from(r)?,
            engine: EngineKind::decode_from(r)?,
            anchor_interval: u64::decode_from(r)?,
        })
    }
}

/// The application's fixed configuration, stored at [`CONFIG_KEY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceConfig {
    /// The main chain's id.
    pub main_chain: ChainId,
}

impl Encode for GovernanceConfig {
    fn encode_to(&self, out: &mut Vec<u8>) {
        GOVERNANCE_OP_VERSION.encode_to(out);
        self.main_chain.encode_to(out);
    }
}

impl Decode for GovernanceConfig {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.u8()? != GOVERNANCE_OP_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "governance config",
                reason: "unknown version",
            });
        }
        Ok(GovernanceConfig {
            main_chain: ChainId::decode_from(r)?,
        })
    }
}

/// A verified side-chain checkpoint, recorded at [`anchor_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorRecord {
    /// The side chain.
    pub chain_id: ChainId,
    /// The anchored height.
    pub height: Height,
    /// The anchored header's hash.
    pub block_hash: Hash,
    /// The anchored header's history root (the log of side blocks
    /// `1..height`).
    pub history_root: Hash,
}

impl AnchorRecord {
    /// Largest encoding of a record.
    pub const MAX_ENCODED_LEN: usize = 4 + govchain_core::types::MAX_CHAIN_ID_LEN + 8 + 32 + 32;

    /// The record of `header`.
    pub fn of_header(header: &BlockHeader) -> Self {
        AnchorRecord {
            chain_id: header.chain_id.clone(),
            height: header.height,
            block_hash: header.hash(),
            history_root: header.history_root,
        }
    }
}

impl Encode for AnchorRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.block_hash.encode_to(out);
        self.history_root.encode_to(out);
    }
}

impl Decode for AnchorRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AnchorRecord {
            chain_id: ChainId::decode_from(r)?,
            height: Height::decode_from(r)?,
            block_hash: Hash::decode_from(r)?,
            history_root: Hash::decode_from(r)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

/// A change that a proposal makes once it passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Adds `key` (`department`'s key of `chain`'s suite,
    /// [`department_key_of_suite`]) to `chain`'s validators with `power`, or
    /// sets its power if it is already a member.
    AddValidator {
        /// The governed chain.
        chain: ChainId,
        /// The validator key: of `chain`'s suite, and (checked when the
        /// proposal passes) `department`'s key of that suite.
        key: PublicKey,
        /// Voting power, at least 1.
        power: u64,
        /// The department running the validator.
        department: DepartmentId,
    },
    /// Removes `key` from `chain`'s validators (the set must stay non-empty).
    RemoveValidator {
        /// The governed chain.
        chain: ChainId,
        /// The validator to remove.
        key: PublicKey,
    },
    /// Registers a new side chain whose first validator set takes effect at
    /// the proposal's effective height (its height 1 for a new chain).
    RegisterSideChain {
        /// The new chain's id (not registered yet).
        chain: ChainId,
        /// Its engine.
        engine: EngineKind,
        /// Its validators, whose suite is the chain's: each (checked when
        /// the proposal passes) a department's key of that suite.
        validators: ValidatorSet,
        /// It anchors every `anchor_interval` (at least 1) blocks.
        anchor_interval: u64,
    },
    /// Sets parameter `name` of `chain` to `value` from the effective height.
    SetParameter {
        /// The governed chain.
        chain: ChainId,
        /// `[a-z0-9._-]`, at most [`MAX_PARAMETER_NAME_LEN`] bytes.
        name: String,
        /// At most [`MAX_PARAMETER_VALUE_LEN`] bytes.
        value: Vec<u8>,
    },
    /// Registers a new department. It governs the main chain's registry:
    /// the effective height follows the main-chain rule, and the department
    /// may propose and vote once the proposal passes (voting power comes only
    /// from an [`Action::AddValidator`] on the main chain).
    RegisterDepartment {
        /// The department (id and node key not yet registered).
        department: Department,
    },
    /// Removes a department from the registry: its node may no longer
    /// propose or vote, and nodes stop admitting its connections. Refused
    /// while its node key is, or is scheduled to become, a validator of any
    /// chain (remove it there first, with [`Action::RemoveValidator`]).
    RemoveDepartment {
        /// The registered department.
        department: DepartmentId,
    },
    /// Records that validator `key` of `chain` expires: from the effective
    /// height on, the set records a [`KeyWindow`] under which the key signs
    /// only heights below `expires_at` (in `chain`'s heights), so its
    /// signatures stop counting there while quorum stays over the whole
    /// set. Any compromise already recorded for the key is kept.
    SetKeyExpiry {
        /// The governed chain.
        chain: ChainId,
        /// A validator of `chain` (in its latest scheduled set).
        key: PublicKey,
        /// First height of `chain` the key may no longer sign; at least the
        /// effective height.
        expires_at: Height,
    },
    /// Reports validator `key` of `chain` compromised: every certificate,
    /// vote and light client following `chain` refuses its signatures at
    /// `from` and above (in `chain`'s heights) once the set recording it
    /// takes effect. A distinct action from an expiry: it may name a height
    /// already past (certificates accepted before the set took effect
    /// stay accepted), and an earlier report of the same key wins.
    ReportKeyCompromise {
        /// The governed chain.
        chain: ChainId,
        /// A validator of `chain` (in its latest scheduled set).
        key: PublicKey,
        /// First height of `chain` whose signatures by `key` are void.
        from: Height,
    },
    /// Rotates validator `key` of `chain` to `new_key`: from the effective
    /// height `new_key` is the member's key, with the same power, and `key`
    /// still signs for the member during `overlap` more heights
    /// ([`ValidatorSet::with_rotation`]), so a node that switches late —
    /// or at exactly the effective height — never stalls consensus. Then
    /// `key` is refused like an expired key. `new_key` joins `key`'s
    /// department; on the main chain it becomes the department's node key
    /// when the proposal passes. BFT chains only: a Raft chain changes a
    /// member's key by a membership change ([`Action::AddValidator`] then
    /// [`Action::RemoveValidator`]).
    RotateValidatorKey {
        /// The governed chain.
        chain: ChainId,
        /// A validator of `chain` (in its latest scheduled set).
        key: PublicKey,
        /// The new key: same algorithm, not yet signing in the set, and not
        /// another department's key.
        new_key: PublicKey,
        /// Heights after the effective height during which `key` still
        /// signs: 1 to [`MAX_ROTATION_OVERLAP`].
        overlap: u64,
        /// `new_key`'s signature over
        /// [`rotation_possession_digest`](govchain_core::validator::rotation_possession_digest)`(chain, key, new_key)`
        /// ([`prove_rotation_possession`](govchain_core::validator::prove_rotation_possession)): whoever proposes the rotation
        /// holds the new key, so nobody can rotate a department onto a key
        /// it can not sign with.
        possession: Signature,
    },
    /// Registers `key`, of a crypto suite other than the network's, as
    /// `department`'s key of that suite, so that it may validate chains of
    /// that suite ([`Action::AddValidator`], [`Action::RegisterSideChain`]).
    /// It governs the main chain's registry (main-chain effective-height
    /// rule) and takes effect when the proposal passes. A department holds
    /// at most one key per suite; a validating key is replaced by
    /// [`Action::RotateValidatorKey`]. Refusals: [`DepartmentKeyError`].
    RegisterDepartmentKey {
        /// The registered department.
        department: DepartmentId,
        /// The key: not of the network's suite, and no department's key.
        key: PublicKey,
        /// `key`'s signature over
        /// [`department_key_possession_digest`]`(main chain, department, key)`
        /// ([`prove_department_key_possession`]): only the key's holder can
        /// register it, and the proof can not be replayed for another
        /// department or network.
        possession: Signature,
    },
}

/// Longest overlap of a key rotation, in heights of the governed chain.
pub const MAX_ROTATION_OVERLAP: u64 = 1_000_000;

impl Action {
    /// The chain this action governs.
    pub fn governed_chain<'a>(&'a self, main: &'a ChainId) -> &'a ChainId {
        match self {
            Action::AddValidator { chain, .. }
            | Action::RemoveValidator { chain, .. }
            | Action::RegisterSideChain { chain, .. }
            | Action::SetParameter { chain, .. }
            | Action::SetKeyExpiry { chain, .. }
            | Action::ReportKeyCompromise { chain, .. }
            | Action::RotateValidatorKey { chain, .. } => chain,
            Action::RegisterDepartment { .. }
            | Action::RemoveDepartment { .. }
            | Action::RegisterDepartmentKey { .. } => main,
        }
    }
}

impl Encode for Action {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Action::AddValidator {
                chain,
                key,
                power,
                department,
            } => {
                out.push(1);
                chain.encode_to(out);
                key.encode_to(out);
                power.encode_to(out);
                department.encode_to(out);
            }
            Action::RemoveValidator { chain, key } => {
                out.push(2);
                chain.encode_to(out);
                key.encode_to(out);
            }
            Action::RegisterSideChain {
                chain,
                engine,
                validators,
                anchor_interval,
            } => {
                out.push(3);
                chain.encode_to(out);
                engine.encode_to(out);
                validators.encode_to(out);
                anchor_interval.encode_to(out);
            }
            Action::SetParameter { chain, name, value } => {
                out.push(4);
                chain.encode_to(out);
                encode_bytes(name.as_bytes(), out);
                encode_bytes(value, out);
            }
            Action::RegisterDepartment { department } => {
                out.push(5);
                department.encode_to(out);
            }
            Action::RemoveDepartment { department } => {
                out.push(6);
                department.encode_to(out);
            }
            Action::SetKeyExpiry {
                chain,
                key,
                expires_at,
            } => {
                out.push(7);
                chain.encode_to(out);
                key.encode_to(out);
                expires_at.encode_to(out);
            }
            Action::ReportKeyCompromise { chain, key, from } => {
                out.push(8);
                chain.encode_to(out);
                key.encode_to(out);
                from.encode_to(out);
            }
            Action::RotateValidatorKey {
                chain,
                key,
                new_key,
                overlap,
                possession,
            } => {
                out.push(9);
                chain.encode_to(out);
                key.encode_to(out);
                new_key.encode_to(out);
                overlap.encode_to(out);
                possession.encode_to(out);
            }
            Action::RegisterDepartmentKey {
                department,
                key,
                possession,
            } => {
                out.push(10);
                department.encode_to(out);
                key.encode_to(out);
                possession.encode_to(out);
            }
        }
    }
}

impl Decode for Action {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Action::AddValidator {
                chain: ChainId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
                power: u64::decode_from(r)?,
                department: DepartmentId::decode_from(r)?,
            },
            2 => Action::RemoveValidator {
                chain: ChainId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
            },
            3 => Action::RegisterSideChain {
                chain: ChainId::decode_from(r)?,
                engine: EngineKind::decode_from(r)?,
                validators: ValidatorSet::decode_from(r)?,
                anchor_interval: u64::decode_from(r)?,
            },
            4 => Action::SetParameter {
                chain: ChainId::decode_from(r)?,
                name: decode_ident(r, "parameter name", MAX_PARAMETER_NAME_LEN)?,
                value: r
                    .bytes("parameter value", MAX_PARAMETER_VALUE_LEN)?
                    .to_vec(),
            },
            5 => Action::RegisterDepartment {
                department: Department::decode_from(r)?,
            },
            6 => Action::RemoveDepartment {
                department: DepartmentId::decode_from(r)?,
            },
            7 => Action::SetKeyExpiry {
                chain: ChainId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
                expires_at: Height::decode_from(r)?,
            },
            8 => Action::ReportKeyCompromise {
                chain: ChainId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
                from: Height::decode_from(r)?,
            },
            9 => Action::RotateValidatorKey {
                chain: ChainId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
                new_key: PublicKey::decode_from(r)?,
                overlap: u64::decode_from(r)?,
                possession: Signature::decode_from(r)?,
            },
            10 => Action::RegisterDepartmentKey {
                department: DepartmentId::decode_from(r)?,
                key: PublicKey::decode_from(r)?,
                possession: Signature::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "governance action",
                    tag,
                })
            }
        })
    }
}

/// The payload of a governance transaction.
///
/// Encoding: [`GOVERNANCE_OP_VERSION`], then a tag (`1` propose, `2` vote,
/// `3` anchor) and the fields in order, in the canonical codec.
// An op is decoded once per transaction and never stored in bulk, so the
// size of the anchor variant costs nothing worth a box in the API.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceOp {
    /// Opens a proposal (the proposer approves it).
    Propose {
        /// What passes.
        action: Action,
        /// Height of the governed chain from which it applies.
        effective_height: Height,
    },
    /// Votes on an open proposal.
    Vote {
        /// The proposal.
        proposal_id: ProposalId,
        /// Approve (`true`) or reject.
        approve: bool,
    },
    /// Anchors a side-chain checkpoint.
    Anchor {
        /// The side chain's header.
        header: BlockHeader,
        /// Its commit certificate.
        certificate: CommitCertificate,
    },
}

impl GovernanceOp {
    /// The transaction payload for this operation.
    pub fn to_payload(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// Decodes a transaction payload (at most [`MAX_PAYLOAD_LEN`] bytes).
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(payload, MAX_PAYLOAD_LEN)
    }
}

impl Encode for GovernanceOp {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(GOVERNANCE_OP_VERSION);
        match self {
            GovernanceOp::Propose {
                action,
                effective_height,
            } => {
                out.push(1);
                action.encode_to(out);
                effective_height.encode_to(out);
            }
            GovernanceOp::Vote {
                proposal_id,
                approve,
            } => {
                out.push(2);
                proposal_id.encode_to(out);
                approve.encode_to(out);
            }
            GovernanceOp::Anchor {
                header,
                certificate,
            } => {
                out.push(3);
                header.encode_to(out);
                certificate.encode_to(out);
            }
        }
    }
}

impl Decode for GovernanceOp {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != GOVERNANCE_OP_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "governance op",
                reason: "unknown version",
            });
        }
        Ok(match r.u8()? {
            1 => GovernanceOp::Propose {
                action: Action::decode_from(r)?,
                effective_height: Height::decode_from(r)?,
            },
            2 => GovernanceOp::Vote {
                proposal_id: ProposalId::decode_from(r)?,
                approve: bool::decode_from(r)?,
            },
            3 => GovernanceOp::Anchor {
                header: BlockHeader::decode_from(r)?,
                certificate: CommitCertificate::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "governance op",
                    tag,
                })
            }
        })
    }
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Collecting votes.
    Open,
    /// Passed and applied.
    Passed,
    /// Rejected: more than 2/3 approval became unreachable.
    Rejected,
    /// Passed, but the action no longer fit the state; `code` says why
    /// (a `CODE_*` constant).
    Failed {
        /// The reason's receipt code.
        code: u32,
    },
}

impl Encode for ProposalStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            ProposalStatus::Open => out.push(1),
            ProposalStatus::Passed => out.push(2),
            ProposalStatus::Rejected => out.push(3),
            ProposalStatus::Failed { code } => {
                out.push(4);
                code.encode_to(out);
            }
        }
    }
}

impl Decode for ProposalStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => ProposalStatus::Open,
            2 => ProposalStatus::Passed,
            3 => ProposalStatus::Rejected,
            4 => ProposalStatus::Failed {
                code: u32::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "proposal status",
                    tag,
                })
            }
        })
    }
}

/// A governance proposal, stored at [`proposal_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Its id.
    pub id: ProposalId,
    /// The proposing department's node key.
    pub proposer: PublicKey,
    /// What it does.
    pub action: Action,
    /// From which height of the governed chain.
    pub effective_height: Height,
    /// Main-chain height of the block that opened it.
    pub submitted_at: Height,
    /// Node keys of approving departments, ascending.
    pub approvals: Vec<PublicKey>,
    /// Node keys of rejecting departments, ascending.
    pub rejections: Vec<PublicKey>,
    /// Where it stands.
    pub status: ProposalStatus,
}

fn decode_sorted_keys(
    r: &mut Reader<'_>,
    what: &'static str,
    max: usize,
) -> Result<Vec<PublicKey>, DecodeError> {
    let keys: Vec<PublicKey> = r.seq(what, max)?;
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DecodeError::InvalidValue {
            what,
            reason: "keys must be strictly ascending",
        });
    }
    Ok(keys)
}

impl Encode for Proposal {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        self.proposer.encode_to(out);
        self.action.encode_to(out);
        self.effective_height.encode_to(out);
        self.submitted_at.encode_to(out);
        encode_seq(&self.approvals, out);
        encode_seq(&self.rejections, out);
        self.status.encode_to(out);
    }
}

impl Decode for Proposal {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Proposal {
            id: ProposalId::decode_from(r)?,
            proposer: PublicKey::decode_from(r)?,
            action: Action::decode_from(r)?,
            effective_height: Height::decode_from(r)?,
            submitted_at: Height::decode_from(r)?,
            approvals: decode_sorted_keys(r, "proposal approvals", MAX_DEPARTMENTS)?,
            rejections: decode_sorted_keys(r, "proposal rejections", MAX_DEPARTMENTS)?,
            status: ProposalStatus::decode_from(r)?,
        })
    }
}

/// What a successful governance transaction did: the `data` of its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceEvent {
    /// A proposal was opened (and may already have passed).
    Proposed {
        /// Its id.
        id: ProposalId,
        /// Its status after the proposer's approval.
        status: ProposalStatus,
    },
    /// A vote was counted.
    Voted {
        /// The proposal.
        id: ProposalId,
        /// Its status after this vote.
        status: ProposalStatus,
    },
    /// A checkpoint was anchored.
    Anchored {
        /// The record written.
        record: AnchorRecord,
    },
}

impl GovernanceEvent {
    /// Decodes a receipt's data.
    pub fn decode(data: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(data, Receipt::MAX_DATA_LEN)
    }
}

impl Encode for GovernanceEvent {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            GovernanceEvent::Proposed { id, status } => {
                out.push(1);
                id.encode_to(out);
                status.encode_to(out);
            }
            GovernanceEvent::Voted { id, status } => {
                out.push(2);
                id.encode_to(out);
                status.encode_to(out);
            }
            GovernanceEvent::Anchored { record } => {
                out.push(3);
                record.encode_to(out);
            }
        }
    }
}

impl Decode for GovernanceEvent {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => GovernanceEvent::Proposed {
                id: ProposalId::decode_from(r)?,
                status: ProposalStatus::decode_from(r)?,
            },
            2 => GovernanceEvent::Voted {
                id: ProposalId::decode_from(r)?,
                status: ProposalStatus::decode_from(r)?,
            },
            3 => GovernanceEvent::Anchored {
                record: AnchorRecord::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "governance event",
                    tag,
                })
            }
        })
    }
}

/// A query to [`GovernanceApp`]'s `query_key`: which record to read (with
/// its proof). Encoded as a tag and the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceQuery {
    /// [`CONFIG_KEY`].
    Config,
    /// [`department_key`].
    Department {
        /// The department.
        id: DepartmentId,
    },
    /// [`node_key_key`].
    DepartmentOfKey {
        /// The node key.
        key: PublicKey,
    },
    /// [`chain_key`].
    Chain {
        /// The chain.
        chain: ChainId,
    },
    /// [`schedule_key`].
    Schedule {
        /// The chain.
        chain: ChainId,
    },
    /// [`validator_set_key`].
    ValidatorSet {
        /// The chain.
        chain: ChainId,
        /// The schedule entry's height.
        height: Height,
    },
    /// [`parameters_key`].
    Parameters {
        /// The chain.
        chain: ChainId,
    },
    /// [`proposal_key`].
    Proposal {
        /// The proposal.
        id: ProposalId,
    },
    /// [`anchor_key`].
    Anchor {
        /// The side chain.
        chain: ChainId,
        /// The anchored height.
        height: Height,
    },
    /// [`latest_anchor_key`].
    LatestAnchor {
        /// The side chain.
        chain: ChainId,
    },
}

impl GovernanceQuery {
    /// The state key that answers this query.
    pub fn state_key(&self) -> Vec<u8> {
        match self {
            GovernanceQuery::Config => CONFIG_KEY.to_vec(),
            GovernanceQuery::Department { id } => department_key(id),
            GovernanceQuery::DepartmentOfKey { key } => node_key_key(key),
            GovernanceQuery::Chain { chain } => chain_key(chain),
            GovernanceQuery::Schedule { chain } => schedule_key(chain),
            GovernanceQuery::ValidatorSet { chain, height } => validator_set_key(chain, *height),
            GovernanceQuery::Parameters { chain } => parameters_key(chain),
            GovernanceQuery::Proposal { id } => proposal_key(*id),
            GovernanceQuery::Anchor { chain, height } => anchor_key(chain, *height),
            GovernanceQuery::LatestAnchor { chain } => latest_anchor_key(chain),
        }
    }
}

impl Encode for GovernanceQuery {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            GovernanceQuery::Config => out.push(1),
            GovernanceQuery::Department { id } => {
                out.push(2);
                id.encode_to(out);
            }
            GovernanceQuery::DepartmentOfKey { key } => {
                out.push(3);
                key.encode_to(out);
            }
            GovernanceQuery::Chain { chain } => {
                out.push(4);
                chain.encode_to(out);
            }
            GovernanceQuery::Schedule { chain } => {
                out.push(5);
                chain.encode_to(out);
            }
            GovernanceQuery::ValidatorSet { chain, height } => {
                out.push(6);
                chain.encode_to(out);
                height.encode_to(out);
            }
            GovernanceQuery::Parameters { chain } => {
                out.push(7);
                chain.encode_to(out);
            }
            GovernanceQuery::Proposal { id } => {
                out.push(8);
                id.encode_to(out);
            }
            GovernanceQuery::Anchor { chain, height } => {
                out.push(9);
                chain.encode_to(out);
                height.encode_to(out);
            }
            GovernanceQuery::LatestAnchor { chain } => {
                out.push(10);
                chain.encode_to(out);
            }
        }
    }
}

impl Decode for GovernanceQuery {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => GovernanceQuery::Config,
            2 => GovernanceQuery::Department {
                id: DepartmentId::decode_from(r)?,
            },
            3 => GovernanceQuery::DepartmentOfKey {
                key: PublicKey::decode_from(r)?,
            },
            4 => GovernanceQuery::Chain {
                chain: ChainId::decode_from(r)?,
            },
            5 => GovernanceQuery::Schedule {
                chain: ChainId::decode_from(r)?,
            },
            6 => GovernanceQuery::ValidatorSet {
                chain: ChainId::decode_from(r)?,
                height: Height::decode_from(r)?,
            },
            7 => GovernanceQuery::Parameters {
                chain: ChainId::decode_from(r)?,
            },
            8 => GovernanceQuery::Proposal {
                id: ProposalId::decode_from(r)?,
            },
            9 => GovernanceQuery::Anchor {
                chain: ChainId::decode_from(r)?,
                height: Height::decode_from(r)?,
            },
            10 => GovernanceQuery::LatestAnchor {
                chain: ChainId::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "governance query",
                    tag,
                })
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Parameter tables (private encoding)
// ---------------------------------------------------------------------------

type ParameterTable = BTreeMap<String, BTreeMap<Height, Vec<u8>>>;

struct ParameterTableCodec(ParameterTable);

impl Encode for ParameterTableCodec {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_len(self.0.len(), out);
        for (name, schedule) in &self.0 {
            encode_bytes(name.as_bytes(), out);
            encode_len(schedule.len(), out);
            for (height, value) in schedule {
                height.encode_to(out);
                encode_bytes(value, out);
            }
        }
    }
}

impl Decode for ParameterTableCodec {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "parameter table";
        let names = r.length(WHAT, MAX_PARAMETERS_PER_CHAIN, 1)?;
        let mut table = ParameterTable::new();
        for _ in 0..names {
            let name = decode_ident(r, "parameter name", MAX_PARAMETER_NAME_LEN)?;
            let entries = r.length(WHAT, MAX_PARAMETER_SCHEDULE, 12)?;
            let mut schedule = BTreeMap::new();
            for _ in 0..entries {
                let height = Height::decode_from(r)?;
                let value = r
                    .bytes("parameter value", MAX_PARAMETER_VALUE_LEN)?
                    .to_vec();
                if schedule.last_key_value().is_some_and(|(h, _)| *h >= height) {
                    return Err(DecodeError::InvalidValue {
                        what: WHAT,
                        reason: "heights must be strictly ascending",
                    });
                }
                schedule.insert(height, value);
            }
            if table.last_key_value().is_some_and(|(n, _)| *n >= name) {
                return Err(DecodeError::InvalidValue {
                    what: WHAT,
                    reason: "names must be strictly ascending",
                });
            }
            table.insert(name, schedule);
        }
        Ok(ParameterTableCodec(table))
    }
}

struct HeightList(Vec<Height>);

impl Encode for HeightList {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_seq(&self.0, out);
    }
}

impl Decode for HeightList {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let heights: Vec<Height> = r.seq("validator schedule", MAX_SCHEDULE_ENTRIES)?;
        if heights.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError::InvalidValue {
                what: "validator schedule",
                reason: "heights must be strictly ascending",
            });
        }
        Ok(HeightList(heights))
    }
}

struct SortedList<T>(Vec<T>);

impl<T: Encode> Encode for SortedList<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_seq(&self.0, out);
    }
}

impl<T: Decode + Ord> Decode for SortedList<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let items: Vec<T> = r.seq("sorted list", MAX_DEPARTMENTS.max(MAX_CHAINS))?;
        if items.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError::InvalidValue {
                what: "sorted list",
                reason: "items must be strictly ascending",
            });
        }
        Ok(SortedList(items))
    }
}

// ---------------------------------------------------------------------------
// Read helpers
// ---------------------------------------------------------------------------

/// Why governance state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateReadError {
    /// The state store failed.
    #[error(transparent)]
    State {
        /// The store's error.
        #[from]
        source: StateError,
    },
    /// A stored value does not decode: the state is corrupt or was written
    /// by something else.
    #[error("corrupt governance record at {key}: {source}")]
    Corrupt {
        /// The state key, escaped for display.
        key: String,
        /// The decoder's reason.
        source: DecodeError,
    },
}

impl From<StateReadError> for ExecutionError {
    fn from(e: StateReadError) -> Self {
        match e {
            StateReadError::State { source } => ExecutionError::State(source),
            other => ExecutionError::Fault {
                reason: other.to_string(),
            },
        }
    }
}

impl From<StateReadError> for TxRejection {
    fn from(e: StateReadError) -> Self {
        match e {
            StateReadError::State { source } => TxRejection::State(source),
            other => TxRejection::State(StateError {
                reason: other.to_string(),
            }),
        }
    }
}

fn read<T: Decode>(state: &dyn StateView, key: &[u8]) -> Result<Option<T>, StateReadError> {
    match state.get(key)? {
        None => Ok(None),
        Some(bytes) => decode_exact(&bytes, MAX_RECORD_LEN)
            .map(Some)
            .map_err(|source| StateReadError::Corrupt {
                key: key.escape_ascii().to_string(),
                source,
            }),
    }
}

/// The governance configuration, once genesis is written.
pub fn config(state: &dyn StateView) -> Result<Option<GovernanceConfig>, StateReadError> {
    read(state, CONFIG_KEY)
}

/// Department `id`.
pub fn department(
    state: &dyn StateView,
    id: &DepartmentId,
) -> Result<Option<Department>, StateReadError> {
    read(state, &department_key(id))
}

/// The department whose node key is `key`.
pub fn department_of_key(
    state: &dyn StateView,
    key: &PublicKey,
) -> Result<Option<Department>, StateReadError> {
    match read::<DepartmentId>(state, &node_key_key(key))? {
        None => Ok(None),
        Some(id) => department(state, &id),
    }
}

/// Department `id`'s registered key of `suite`, a suite other than the
/// network's ([`Action::RegisterDepartmentKey`],
/// [`GenesisDepartment::suite_keys`]). A department's key of the network's
/// suite is its [`Department::node_key`], not recorded here.
pub fn department_suite_key(
    state: &dyn StateView,
    id: &DepartmentId,
    suite: CryptoSuite,
) -> Result<Option<PublicKey>, StateReadError> {
    read(state, &suite_key_key(id, suite))
}

/// Every key of `department`: its node key, then its registered key of
/// each other suite, in suite order.
pub fn department_keys(
    state: &dyn StateView,
    department: &Department,
) -> Result<Vec<PublicKey>, StateReadError> {
    let mut keys = vec![department.node_key.clone()];
    for suite in CryptoSuite::ALL {
        if let Some(key) = department_suite_key(state, &department.id, *suite)? {
            if key != department.node_key {
                keys.push(key);
            }
        }
    }
    Ok(keys)
}

/// `department`'s key of `suite`: its node key if `suite` is the node
/// key's, else its registered key of `suite`, if any. This is the key with
/// which the department validates chains of `suite`.
pub fn department_key_of_suite(
    state: &dyn StateView,
    department: &Department,
    suite: CryptoSuite,
) -> Result<Option<PublicKey>, StateReadError> {
    if suite.check_key(&department.node_key).is_ok() {
        return Ok(Some(department.node_key.clone()));
    }
    department_suite_key(state, &department.id, suite)
}

/// The crypto suite of chain `chain`: the suite of its scheduled validator
/// sets (every set of a chain is of one suite, checked by every action that
/// schedules one), or `None` if it has no schedule. The main chain's is the
/// network's.
pub fn chain_suite(
    state: &dyn StateView,
    chain: &ChainId,
) -> Result<Option<CryptoSuite>, StateReadError> {
    let Some(first) = schedule_heights(state, chain)?.first().copied() else {
        return Ok(None);
    };
    Ok(read::<ValidatorSet>(state, &validator_set_key(chain, first))?.map(|set| set.suite()))
}

/// The digest a department's key of a second suite signs to prove
/// possession when it is registered ([`Action::RegisterDepartmentKey`]):
/// [`possession_digest`] under [`Domain::DepartmentKeyPossession`] of
/// `(main chain, department)`, under the key's own suite.
pub fn department_key_possession_digest(
    main: &ChainId,
    department: &DepartmentId,
    key: &PublicKey,
) -> Hash {
    possession_digest(
        Domain::DepartmentKeyPossession,
        &[&main.to_bytes(), &department.to_bytes()],
        key,
    )
}

/// `key`'s proof of possession for registering it as `department`'s key on
/// the network of main chain `main`.
pub fn prove_department_key_possession(
    main: &ChainId,
    department: &DepartmentId,
    key: &dyn Signer,
) -> Signature {
    prove_possession(
        Domain::DepartmentKeyPossession,
        &[&main.to_bytes(), &department.to_bytes()],
        key,
    )
}

/// Checks a proof made by [`prove_department_key_possession`].
pub fn verify_department_key_possession(
    main: &ChainId,
    department: &DepartmentId,
    key: &PublicKey,
    proof: &Signature,
) -> Result<(), govchain_core::crypto::SignatureError> {
    verify_possession(
        Domain::DepartmentKeyPossession,
        &[&main.to_bytes(), &department.to_bytes()],
        key,
        proof,
    )
}

/// Why [`Action::RegisterDepartmentKey`] is refused (the reason of its
/// [`CODE_INVALID_ACTION`] receipt, or of a failed proposal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DepartmentKeyError {
    /// The department is not registered.
    #[error("department {department} is not registered")]
    UnknownDepartment {
        /// The department.
        department: DepartmentId,
    },
    /// The key is of the network's suite: that key is the department's
    /// node key, which changes by rotation.
    #[error("{key} is a key of the network's crypto suite {suite}: a department's key of that suite is its node key, changed by RotateValidatorKey")]
    NetworkSuite {
        /// The key.
        key: PublicKey,
        /// The network's suite.
        suite: CryptoSuite,
    },
    /// The department already holds a key of the key's suite.
    #[error("department {department} already has a key of crypto suite {suite} ({existing}); a department holds one key per suite, replaced by RotateValidatorKey")]
    SuiteTaken {
        /// The department.
        department: DepartmentId,
        /// The suite.
        suite: CryptoSuite,
        /// The key it holds.
        existing: PublicKey,
    },
    /// The key is already some department's key.
    #[error("{key} is already a key of department {owner}")]
    AlreadyRegistered {
        /// The key.
        key: PublicKey,
        /// Its department.
        owner: DepartmentId,
    },
    /// The proof of possession does not verify for this main chain,
    /// department and key.
    #[error("{key}'s proof of possession for department {department} does not verify")]
    BadPossession {
        /// The department.
        department: DepartmentId,
        /// The key.
        key: PublicKey,
    },
}

fn department_ids(state: &dyn StateView) -> Result<Vec<DepartmentId>, StateReadError> {
    Ok(read::<SortedList<DepartmentId>>(state, DEPARTMENTS_KEY)?
        .map(|l| l.0)
        .unwrap_or_default())
}

fn chain_ids(state: &dyn StateView) -> Result<Vec<ChainId>, StateReadError> {
    Ok(read::<SortedList<ChainId>>(state, CHAINS_KEY)?
        .map(|l| l.0)
        .unwrap_or_default())
}

/// The keys that may connect to a node of the main chain `main` at
/// `height`: every registered department's node key, and every key that
/// signs for the main chain from the set in force at `height` on —
/// members, and rotated-out keys until their overlap ends. So a department
/// whose main-chain key is being rotated
/// ([`Action::RotateValidatorKey`]) stays connected under its old key
/// while that key still signs, and its operator switches the node to the
/// new key before the overlap ends.
pub fn admitted_keys(
    state: &dyn StateView,
    main: &ChainId,
    height: Height,
) -> Result<BTreeSet<PublicKey>, StateReadError> {
    let mut keys: BTreeSet<PublicKey> = departments(state)?
        .into_iter()
        .map(|d| d.node_key)
        .collect();
    let schedule = validator_schedule(state, main)?;
    let from = schedule
        .range(..=height)
        .next_back()
        .map_or(Height::new(0), |(h, _)| *h);
    for set in schedule.range(from..).map(|(_, set)| set) {
        keys.extend(set.validators().iter().map(|v| v.public_key.clone()));
        keys.extend(
            set.rotated_keys()
                .filter(|r| r.window.expires_at.is_some_and(|at| at > height))
                .map(|r| r.key),
        );
    }
    Ok(keys)
}

/// Every registered department, by id.
pub fn departments(state: &dyn StateView) -> Result<Vec<Department>, StateReadError> {
    let mut out = Vec::new();
    for id in department_ids(state)? {
        if let Some(d) = department(state, &id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// Chain `chain`, if registered.
pub fn chain_info(
    state: &dyn StateView,
    chain: &ChainId,
) -> Result<Option<ChainInfo>, StateReadError> {
    read(state, &chain_key(chain))
}

/// Every registered chain (main and side), by id.
pub fn chains(state: &dyn StateView) -> Result<Vec<ChainInfo>, StateReadError> {
    let mut out = Vec::new();
    for id in chain_ids(state)? {
        if let Some(c) = chain_info(state, &id)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Every registered side chain, by id.
pub fn side_chains(state: &dyn StateView) -> Result<Vec<ChainInfo>, StateReadError> {
    Ok(chains(state)?
        .into_iter()
        .filter(|c| c.role == ChainRole::Side)
        .collect())
}

fn schedule_heights(state: &dyn StateView, chain: &ChainId) -> Result<Vec<Height>, StateReadError> {
    Ok(read::<HeightList>(state, &schedule_key(chain))?
        .map(|l| l.0)
        .unwrap_or_default())
}

/// Checks `certificate` for `header` of `chain` under the chain's own rule:
/// Tendermint — more than 2/3 of `set`'s power signed the header's hash;
/// Raft — the leader plus a majority of `set` as voters (see
/// `govchain_consensus::raft::verify_raft_certificate_header`). Used for
/// anchors, offline inspection and proof files alike. The error is the
/// reason, for a receipt or a report.
pub fn verify_chain_certificate(
    engine: EngineKind,
    certificate: &CommitCertificate,
    chain: &ChainId,
    header: &BlockHeader,
    set: &ValidatorSet,
) -> Result<(), String> {
    match engine {
        EngineKind::Bft => certificate
            .verify(chain, header.height, &header.hash(), set)
            .map_err(|e| e.to_string()),
        EngineKind::Raft => {
            // Key windows bind Raft certificates too: a signature by a key
            // that expired or was reported compromised is refused, while
            // the majority stays over every member.
            for s in &certificate.signatures {
                if let Err(reason) = set.may_sign(&s.validator, header.height) {
                    return Err(format!(
                        "signer {} may not sign at height {}: {reason}",
                        s.validator, header.height
                    ));
                }
            }
            let voters = RaftVoters {
                incoming: set
                    .validators()
                    .iter()
                    .map(|v| v.public_key.clone())
                    .collect(),
                outgoing: Vec::new(),
            };
            verify_raft_certificate_header(certificate, chain, header, &voters)
                .map_err(|e| e.to_string())
        }
    }
}

/// `set` with the key windows that `previous` recorded for the keys still
/// in it, and the rotated-out keys of its members whose overlap runs past
/// `effective_height`: a membership change never clears an expiry or a
/// compromise, nor cuts another member's rotation overlap short.
fn keep_key_windows(
    set: ValidatorSet,
    previous: Option<&ValidatorSet>,
    effective_height: Height,
) -> Result<ValidatorSet, ValidatorSetError> {
    let Some(previous) = previous else {
        return Ok(set);
    };
    let windows: Vec<(PublicKey, KeyWindow)> = previous
        .key_windows()
        .filter(|(key, _)| set.find(key).is_some())
        .map(|(key, window)| (key.clone(), *window))
        .collect();
    let rotated: Vec<RotatedKey> = previous
        .rotated_keys()
        .filter(|r| {
            set.find(&r.successor).is_some()
                && set.find(&r.key).is_none()
                && r.window.expires_at.is_some_and(|at| at > effective_height)
        })
        .collect();
    set.with_key_windows(windows)?.with_rotated_keys(rotated)
}

/// `chain`'s validator schedule: effective height → set. The set for height
/// `h` is the entry with the greatest key `<= h`, the form the consensus
/// engines take.
pub fn validator_schedule(
    state: &dyn StateView,
    chain: &ChainId,
) -> Result<BTreeMap<Height, ValidatorSet>, StateReadError> {
    let mut out = BTreeMap::new();
    for h in schedule_heights(state, chain)? {
        if let Some(set) = read::<ValidatorSet>(state, &validator_set_key(chain, h))? {
            out.insert(h, set);
        }
    }
    Ok(out)
}

/// The validator set of `chain` at `height`, if the schedule covers it.
pub fn validator_set_at(
    state: &dyn StateView,
    chain: &ChainId,
    height: Height,
) -> Result<Option<ValidatorSet>, StateReadError> {
    let heights = schedule_heights(state, chain)?;
    match heights.iter().rev().find(|h| **h <= height) {
        None => Ok(None),
        Some(h) => read(state, &validator_set_key(chain, *h)),
    }
}

/// `chain`'s parameters: name → (effective height → value).
pub fn parameters(
    state: &dyn StateView,
    chain: &ChainId,
) -> Result<BTreeMap<String, BTreeMap<Height, Vec<u8>>>, StateReadError> {
    Ok(read::<ParameterTableCodec>(state, &parameters_key(chain))?
        .map(|t| t.0)
        .unwrap_or_default())
}

/// The value of `chain`'s parameter `name` at `height`, if set.
pub fn parameter_at(
    state: &dyn StateView,
    chain: &ChainId,
    name: &str,
    height: Height,
) -> Result<Option<Vec<u8>>, StateReadError> {
    Ok(parameters(state, chain)?
        .get(name)
        .and_then(|s| s.range(..=height).next_back().map(|(_, v)| v.clone())))
}

/// Proposal `id`.
pub fn proposal(state: &dyn StateView, id: ProposalId) -> Result<Option<Proposal>, StateReadError> {
    read(state, &proposal_key(id))
}

/// The anchor of side chain `chain` at `height`.
pub fn anchor(
    state: &dyn StateView,
    chain: &ChainId,
    height: Height,
) -> Result<Option<AnchorRecord>, StateReadError> {
    read(state, &anchor_key(chain, height))
}

/// The latest anchor of side chain `chain`.
pub fn latest_anchor(
    state: &dyn StateView,
    chain: &ChainId,
) -> Result<Option<AnchorRecord>, StateReadError> {
    read(state, &latest_anchor_key(chain))
}

// ---------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------

/// A department at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisDepartment {
    /// Its id.
    pub id: DepartmentId,
    /// Display name.
    pub name: String,
    /// Its node key.
    pub node_key: PublicKey,
    /// Its voting power in the main chain's genesis validator set; `0` for
    /// a department that is registered but does not validate.
    pub power: u64,
    /// Its keys of suites other than the network's, at most one per suite
    /// (see [`department_suite_key`]): the keys with which it validates
    /// chains of those suites. Usually empty.
    pub suite_keys: Vec<PublicKey>,
}

/// A side chain at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideChainSpec {
    /// The chain.
    pub chain_id: ChainId,
    /// Its engine.
    pub engine: EngineKind,
    /// Its validators from its height 1, each a department's key of the
    /// chain's suite (the set's suite, [`ValidatorSet::suite`]): node keys
    /// for the network's suite, else [`GenesisDepartment::suite_keys`].
    pub validators: ValidatorSet,
    /// It anchors every `anchor_interval` (at least 1) blocks.
    pub anchor_interval: u64,
}

/// The main chain's governance at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GovernanceGenesis {
    /// The main chain's id.
    pub main_chain: ChainId,
    /// The founding departments; those with power form the main chain's
    /// genesis validator set.
    pub departments: Vec<GenesisDepartment>,
    /// The initial side chains.
    pub side_chains: Vec<SideChainSpec>,
}

/// Why a [`GovernanceGenesis`] is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// Two departments with one id.
    #[error("department {id} is listed twice")]
    DuplicateDepartment {
        /// The id.
        id: DepartmentId,
    },
    /// Two departments with one node key.
    #[error("node key {key} belongs to two departments")]
    DuplicateNodeKey {
        /// The key.
        key: PublicKey,
    },
    /// A department name longer than [`MAX_DEPARTMENT_NAME_LEN`].
    #[error(
        "department {id} has a name of {len} bytes, at most {MAX_DEPARTMENT_NAME_LEN} allowed"
    )]
    NameTooLong {
        /// The department.
        id: DepartmentId,
        /// The name's length.
        len: usize,
    },
    /// Too many departments or chains.
    #[error("{count} {what} exceed the maximum of {max}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The main chain's validator set is invalid (for example, no
    /// department has power).
    #[error("main chain validator set: {source}")]
    MainValidators {
        /// Why.
        source: ValidatorSetError,
    },
    /// A side chain listed twice, or with the main chain's id.
    #[error("chain {chain} is registered twice")]
    DuplicateChain {
        /// The chain.
        chain: ChainId,
    },
    /// A side chain with anchor interval 0.
    #[error("side chain {chain} has anchor interval 0")]
    ZeroAnchorInterval {
        /// The chain.
        chain: ChainId,
    },
    /// A side chain validator that is no department's key of the chain's
    /// suite (a node key for the network's suite, else a
    /// [`GenesisDepartment::suite_keys`] entry).
    #[error("validator {key} of chain {chain} is not a department's key of the chain's crypto suite {suite}")]
    NotADepartmentKey {
        /// The chain.
        chain: ChainId,
        /// The key.
        key: PublicKey,
        /// The chain's suite.
        suite: CryptoSuite,
    },
    /// A department's node key is not of the network's crypto suite (the
    /// suite of the main chain's genesis validators). Keys of other suites
    /// go in [`GenesisDepartment::suite_keys`].
    #[error("department {id}: node key {key} is not of the network's crypto suite {suite} (the main chain's genesis validators'); list a key of another suite in its suite keys")]
    DepartmentKeySuite {
        /// The department.
        id: DepartmentId,
        /// Its node key.
        key: PublicKey,
        /// The network's suite.
        suite: CryptoSuite,
    },
    /// A department's suite key is of the network's suite (its key of that
    /// suite is its node key).
    #[error("department {id}: suite key {key} is of the network's crypto suite {suite}, whose key is the node key")]
    SuiteKeyOfNetworkSuite {
        /// The department.
        id: DepartmentId,
        /// The key.
        key: PublicKey,
        /// The network's suite.
        suite: CryptoSuite,
    },
    /// A department lists two keys of one suite.
    #[error("department {id} lists two keys of crypto suite {suite}; at most one per suite")]
    DuplicateSuiteKey {
        /// The department.
        id: DepartmentId,
        /// The suite.
        suite: CryptoSuite,
    },
}

impl GovernanceGenesis {
    /// The main chain's genesis validator set: the departments with power.
    pub fn main_validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        ValidatorSet::new(
            self.departments
                .iter()
                .filter(|d| d.power > 0)
                .map(|d| Validator {
                    public_key: d.node_key.clone(),
                    power: d.power,
                })
                .collect(),
        )
        .map_err(|source| GenesisError::MainValidators { source })
    }

    /// The network's crypto suite: the suite of the main chain's genesis
    /// validator set and of every department's node key; side chains run
    /// their own sets' suites (see the module docs).
    pub fn suite(&self) -> Result<CryptoSuite, GenesisError> {
        Ok(self.main_validator_set()?.suite())
    }

    /// Checks every rule of a genesis.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.departments.len() > MAX_DEPARTMENTS {
            return Err(GenesisError::TooMany {
                what: "departments",
                count: self.departments.len(),
                max: MAX_DEPARTMENTS,
            });
        }
        if self.side_chains.len() + 1 > MAX_CHAINS {
            return Err(GenesisError::TooMany {
                what: "chains",
                count: self.side_chains.len() + 1,
                max: MAX_CHAINS,
            });
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        // (suite, key) of every department's key that may validate.
        let mut validating = BTreeSet::new();
        for d in &self.departments {
            if !ids.insert(&d.id) {
                return Err(GenesisError::DuplicateDepartment { id: d.id.clone() });
            }
            for key in std::iter::once(&d.node_key).chain(&d.suite_keys) {
                if !keys.insert(key) {
                    return Err(GenesisError::DuplicateNodeKey { key: key.clone() });
                }
                validating.insert((CryptoSuite::of_key(key), key));
            }
            if d.name.len() > MAX_DEPARTMENT_NAME_LEN {
                return Err(GenesisError::NameTooLong {
                    id: d.id.clone(),
                    len: d.name.len(),
                });
            }
        }
        let suite = self.suite()?;
        for d in &self.departments {
            let mut suites = BTreeSet::new();
            for key in &d.suite_keys {
                let key_suite = CryptoSuite::of_key(key);
                if key_suite == suite {
                    return Err(GenesisError::SuiteKeyOfNetworkSuite {
                        id: d.id.clone(),
                        key: key.clone(),
                        suite,
                    });
                }
                if !suites.insert(key_suite) {
                    return Err(GenesisError::DuplicateSuiteKey {
                        id: d.id.clone(),
                        suite: key_suite,
                    });
                }
            }
        }
        if let Some(d) = self
            .departments
            .iter()
            .find(|d| suite.check_key(&d.node_key).is_err())
        {
            return Err(GenesisError::DepartmentKeySuite {
                id: d.id.clone(),
                key: d.node_key.clone(),
                suite,
            });
        }
        let mut chains = BTreeSet::from([&self.main_chain]);
        for s in &self.side_chains {
            if !chains.insert(&s.chain_id) {
                return Err(GenesisError::DuplicateChain {
                    chain: s.chain_id.clone(),
                });
            }
            if s.anchor_interval == 0 {
                return Err(GenesisError::ZeroAnchorInterval {
                    chain: s.chain_id.clone(),
                });
            }
            let chain_suite = s.validators.suite();
            if let Some(v) = s
                .validators
                .validators()
                .iter()
                .find(|v| !validating.contains(&(chain_suite, &v.public_key)))
            {
                return Err(GenesisError::NotADepartmentKey {
                    chain: s.chain_id.clone(),
                    key: v.public_key.clone(),
                    suite: chain_suite,
                });
            }
        }
        Ok(())
    }

    fn writes(&self) -> Result<KeyValues, GenesisError> {
        let main_set = self.main_validator_set()?;
        let mut w: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        w.insert(
            CONFIG_KEY.to_vec(),
            GovernanceConfig {
                main_chain: self.main_chain.clone(),
            }
            .to_bytes(),
        );
        let mut dept_ids: Vec<DepartmentId> = Vec::new();
        for d in &self.departments {
            let record = Department {
                id: d.id.clone(),
                name: d.name.clone(),
                node_key: d.node_key.clone(),
            };
            w.insert(department_key(&d.id), record.to_bytes());
            w.insert(node_key_key(&d.node_key), d.id.to_bytes());
            for key in &d.suite_keys {
                w.insert(
                    suite_key_key(&d.id, CryptoSuite::of_key(key)),
                    key.to_bytes(),
                );
                w.insert(node_key_key(key), d.id.to_bytes());
            }
            dept_ids.push(d.id.clone());
        }
        dept_ids.sort();
        w.insert(DEPARTMENTS_KEY.to_vec(), SortedList(dept_ids).to_bytes());
        let genesis_height = Height::new(1);
        let mut chain_list = vec![self.main_chain.clone()];
        let main_info = ChainInfo {
            chain_id: self.main_chain.clone(),
            role: ChainRole::Main,
            engine: EngineKind::Bft,
            anchor_interval: 0,
        };
        let mut chains = vec![(main_info, main_set)];
        for s in &self.side_chains {
            chain_list.push(s.chain_id.clone());
            chains.push((
                ChainInfo {
                    chain_id: s.chain_id.clone(),
                    role: ChainRole::Side,
                    engine: s.engine,
                    anchor_interval: s.anchor_interval,
                },
                s.validators.clone(),
            ));
        }
        for (info, set) in chains {
            w.insert(
                schedule_key(&info.chain_id),
                HeightList(vec![genesis_height]).to_bytes(),
            );
            w.insert(
                validator_set_key(&info.chain_id, genesis_height),
                set.to_bytes(),
            );
            w.insert(chain_key(&info.chain_id), info.to_bytes());
        }
        chain_list.sort();
        w.insert(CHAINS_KEY.to_vec(), SortedList(chain_list).to_bytes());
        w.insert(NEXT_PROPOSAL_KEY.to_vec(), ProposalId(1).to_bytes());
        Ok(w.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------
// The application
// ---------------------------------------------------------------------------

/// The main chain's governance [`Application`]. See the module docs.
#[derive(Debug, Clone)]
pub struct GovernanceApp {
    genesis: GovernanceGenesis,
    genesis_writes: KeyValues,
    suite: CryptoSuite,
}

/// State keys and values, in ascending key order.
type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// A failed operation: its receipt code and reason.
#[derive(Debug)]
struct Failure {
    code: u32,
    reason: String,
}

/// An operation either fails (a receipt) or hits a state fault (the block
/// can not be executed).
#[derive(Debug)]
enum OpError {
    Fail(Failure),
    Exec(ExecutionError),
}

impl From<StateReadError> for OpError {
    fn from(e: StateReadError) -> Self {
        OpError::Exec(e.into())
    }
}

impl From<StateError> for OpError {
    fn from(e: StateError) -> Self {
        OpError::Exec(ExecutionError::State(e))
    }
}

/// A [`CODE_INVALID_ACTION`] failure with `reason`.
fn invalid_action(reason: impl Into<String>) -> OpError {
    OpError::Fail(Failure {
        code: CODE_INVALID_ACTION,
        reason: reason.into(),
    })
}

fn fail<T>(code: u32, reason: impl Into<String>) -> Result<T, OpError> {
    Err(OpError::Fail(Failure {
        code,
        reason: reason.into(),
    }))
}

impl GovernanceApp {
    /// The application for `genesis`, which must be valid.
    pub fn new(genesis: GovernanceGenesis) -> Result<Self, GenesisError> {
        genesis.validate()?;
        let genesis_writes = genesis.writes()?;
        let suite = genesis.suite()?;
        Ok(GovernanceApp {
            genesis,
            genesis_writes,
            suite,
        })
    }

    /// The network's crypto suite ([`GovernanceGenesis::suite`]): the main
    /// chain's, and that of every department's node key. Side chains may
    /// run another suite (see the module docs).
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Refuses `key` (named `what` in the reason) unless it is of `suite`,
    /// which is `whose` suite (the network's, or a chain's).
    fn check_suite(
        suite: CryptoSuite,
        whose: impl fmt::Display,
        what: impl fmt::Display,
        key: &PublicKey,
    ) -> Result<(), OpError> {
        if suite.check_key(key).is_ok() {
            return Ok(());
        }
        Err(invalid_action(format!(
            "{what} {key} is a key of crypto suite {}, not of {whose}'s suite {suite}",
            CryptoSuite::of_key(key),
        )))
    }

    /// The crypto suite of registered chain `chain` ([`chain_suite`]).
    fn suite_of_chain(
        &self,
        state: &dyn StateView,
        chain: &ChainId,
    ) -> Result<CryptoSuite, OpError> {
        if chain == self.main_chain() {
            return Ok(self.suite);
        }
        Self::registered_chain(state, chain)?;
        match chain_suite(state, chain)? {
            Some(suite) => Ok(suite),
            None => fail(
                CODE_INVALID_ACTION,
                format!("chain {chain} has no validators"),
            ),
        }
    }

    /// The genesis this application was built with.
    pub fn genesis(&self) -> &GovernanceGenesis {
        &self.genesis
    }

    /// The main chain's id.
    pub fn main_chain(&self) -> &ChainId {
        &self.genesis.main_chain
    }

    /// The genesis state, in ascending key order, for a host that commits it
    /// as the state before block 1. (A host that does not will have it
    /// written by block 1; see the module docs.)
    pub fn genesis_writes(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.genesis_writes
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect()
    }

    /// Writes the genesis state into `state`.
    pub fn write_genesis(&self, state: &mut StateOverlay<'_>) {
        for (k, v) in &self.genesis_writes {
            state.put(k.clone(), v.clone());
        }
    }

    /// `state`, plus the genesis records if it holds none yet: the view the
    /// read helpers should be given before block 1 is executed.
    pub fn state_with_genesis<'a>(
        &self,
        state: &'a dyn StateView,
    ) -> Result<StateOverlay<'a>, StateError> {
        let mut overlay = StateOverlay::new(state);
        if state.get(CONFIG_KEY)?.is_none() {
            self.write_genesis(&mut overlay);
        }
        Ok(overlay)
    }

    fn sender_department(state: &dyn StateView, sender: &PublicKey) -> Result<Department, OpError> {
        match department_of_key(state, sender)? {
            Some(d) => Ok(d),
            None => fail(
                CODE_UNAUTHORIZED,
                format!("sender {sender} is not a registered department node key"),
            ),
        }
    }

    fn execute_tx(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        tx: &Transaction,
    ) -> Result<GovernanceEvent, OpError> {
        let op = GovernanceOp::decode(tx.payload()).map_err(|e| {
            OpError::Fail(Failure {
                code: CODE_MALFORMED,
                reason: e.to_string(),
            })
        })?;
        Self::sender_department(state, tx.sender())?;
        match op {
            GovernanceOp::Propose {
                action,
                effective_height,
            } => self.propose(ctx, state, tx.sender(), action, effective_height),
            GovernanceOp::Vote {
                proposal_id,
                approve,
            } => self.vote(ctx, state, tx.sender(), proposal_id, approve),
            GovernanceOp::Anchor {
                header,
                certificate,
            } => self.anchor(state, &header, &certificate),
        }
    }

    fn propose(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        proposer: &PublicKey,
        action: Action,
        effective_height: Height,
    ) -> Result<GovernanceEvent, OpError> {
        // Check the action now, so that obvious junk never becomes a
        // proposal; it is checked again when it passes. Departments named by
        // an AddValidator may still be pending registration, so that check
        // waits until the proposal passes.
        {
            let mut scratch = StateOverlay::new(&*state);
            self.apply_action(ctx, &mut scratch, &action, effective_height, false)?;
        }
        let id = read::<ProposalId>(state, NEXT_PROPOSAL_KEY)?.unwrap_or(ProposalId(1));
        let next = id.0.checked_add(1).map(ProposalId).ok_or_else(|| {
            OpError::Fail(Failure {
                code: CODE_LIMIT_REACHED,
                reason: "proposal ids exhausted".into(),
            })
        })?;
        state.put(NEXT_PROPOSAL_KEY.to_vec(), next.to_bytes());
        let mut proposal = Proposal {
            id,
            proposer: proposer.clone(),
            action,
            effective_height,
            submitted_at: ctx.height,
            approvals: vec![proposer.clone()],
            rejections: Vec::new(),
            status: ProposalStatus::Open,
        };
        self.tally(ctx, state, &mut proposal)?;
        state.put(proposal_key(id), proposal.to_bytes());
        Ok(GovernanceEvent::Proposed {
            id,
            status: proposal.status,
        })
    }

    fn vote(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        voter: &PublicKey,
        id: ProposalId,
        approve: bool,
    ) -> Result<GovernanceEvent, OpError> {
        let Some(mut proposal) = proposal(state, id)? else {
            return fail(CODE_UNKNOWN_PROPOSAL, format!("no proposal {id}"));
        };
        if proposal.status != ProposalStatus::Open {
            return fail(
                CODE_PROPOSAL_CLOSED,
                format!("proposal {id} is closed: {:?}", proposal.status),
            );
        }
        if proposal.approvals.binary_search(voter).is_ok()
            || proposal.rejections.binary_search(voter).is_ok()
        {
            return fail(
                CODE_ALREADY_VOTED,
                format!("{voter} already voted on proposal {id}"),
            );
        }
        let list = if approve {
            &mut proposal.approvals
        } else {
            &mut proposal.rejections
        };
        if let Err(pos) = list.binary_search(voter) {
            list.insert(pos, voter.clone());
        }
        self.tally(ctx, state, &mut proposal)?;
        state.put(proposal_key(id), proposal.to_bytes());
        Ok(GovernanceEvent::Voted {
            id,
            status: proposal.status,
        })
    }

    /// Re-weighs `proposal` against the main chain's current set and, if it
    /// passes, applies its action (or records why it could not be applied).
    fn tally(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        proposal: &mut Proposal,
    ) -> Result<(), OpError> {
        let main = self.main_chain();
        let Some(set) = validator_set_at(state, main, ctx.height)? else {
            return Err(OpError::Exec(ExecutionError::Fault {
                reason: format!("main chain has no validator set at {}", ctx.height),
            }));
        };
        // A department's power counts once, whichever of its keys voted
        // (its node key, or a key it rotated from); it is the power of its
        // member in the set — its node key's, or during a main-chain
        // rotation not yet in effect, the voting key's.
        let power_of = |keys: &[PublicKey]| -> Result<u64, OpError> {
            let mut by_voter: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
            for key in keys {
                let (voter, member) = match department_of_key(state, key)? {
                    Some(d) => (
                        d.id.to_bytes(),
                        set.find(&d.node_key).or_else(|| set.find(key)),
                    ),
                    None => (key.to_bytes(), set.find(key)),
                };
                let power = member.map_or(0, |(_, v)| v.power);
                let entry = by_voter.entry(voter).or_insert(0);
                *entry = (*entry).max(power);
            }
            Ok(by_voter.values().fold(0u64, |a, p| a.saturating_add(*p)))
        };
        let approving = power_of(&proposal.approvals)?;
        let rejecting = power_of(&proposal.rejections)?;
        if set.is_quorum(approving) {
            let writes = {
                let mut scratch = StateOverlay::new(&*state);
                match self.apply_action(
                    ctx,
                    &mut scratch,
                    &proposal.action,
                    proposal.effective_height,
                    true,
                ) {
                    Ok(()) => Ok(scratch.into_writes()),
                    Err(OpError::Fail(f)) => Err(f),
                    Err(e @ OpError::Exec(_)) => return Err(e),
                }
            };
            match writes {
                Ok(writes) => {
                    for (k, v) in writes {
                        match v {
                            Some(v) => state.put(k, v),
                            None => state.delete(k),
                        }
                    }
                    proposal.status = ProposalStatus::Passed;
                }
                Err(f) => proposal.status = ProposalStatus::Failed { code: f.code },
            }
        } else if !set.is_quorum(set.total_power().saturating_sub(rejecting)) {
            proposal.status = ProposalStatus::Rejected;
        }
        Ok(())
    }

    /// Checks the effective height of a change to `chain` (see the module
    /// docs) against the latest entry of its schedule, `latest`.
    fn check_effective_height(
        &self,
        ctx: &BlockContext,
        state: &dyn StateView,
        chain: &ChainId,
        effective_height: Height,
        latest: Option<Height>,
    ) -> Result<(), OpError> {
        if effective_height.get() == 0 {
            return fail(
                CODE_BAD_EFFECTIVE_HEIGHT,
                "effective height must be at least 1",
            );
        }
        if chain == self.main_chain() {
            let earliest = ctx.height.get().saturating_add(3);
            if effective_height.get() < earliest {
                return fail(
                    CODE_BAD_EFFECTIVE_HEIGHT,
                    format!(
                        "a main-chain change decided at height {} can take effect at {earliest} at the earliest, not {effective_height}",
                        ctx.height
                    ),
                );
            }
        } else if let Some(anchor) = latest_anchor(state, chain)? {
            if effective_height <= anchor.height {
                return fail(
                    CODE_BAD_EFFECTIVE_HEIGHT,
                    format!(
                        "chain {chain} is anchored up to height {}; a change must take effect after it, not at {effective_height}",
                        anchor.height
                    ),
                );
            }
        }
        if let Some(latest) = latest {
            if effective_height < latest {
                return fail(
                    CODE_BAD_EFFECTIVE_HEIGHT,
                    format!(
                        "chain {chain} already has a change scheduled at {latest}; {effective_height} is earlier"
                    ),
                );
            }
        }
        Ok(())
    }

    fn registered_chain(state: &dyn StateView, chain: &ChainId) -> Result<ChainInfo, OpError> {
        match chain_info(state, chain)? {
            Some(info) => Ok(info),
            None => fail(
                CODE_UNKNOWN_CHAIN,
                format!("chain {chain} is not registered"),
            ),
        }
    }

    /// Writes a validator-set entry at `at`, extending the schedule index.
    fn schedule_set(
        state: &mut StateOverlay<'_>,
        chain: &ChainId,
        at: Height,
        set: &ValidatorSet,
    ) -> Result<(), OpError> {
        let mut heights = schedule_heights(state, chain)?;
        if heights.last() != Some(&at) {
            if heights.len() >= MAX_SCHEDULE_ENTRIES {
                return fail(
                    CODE_LIMIT_REACHED,
                    format!("chain {chain}'s validator schedule is full"),
                );
            }
            heights.push(at);
            state.put(schedule_key(chain), HeightList(heights).to_bytes());
        }
        state.put(validator_set_key(chain, at), set.to_bytes());
        Ok(())
    }

    /// `chain`'s latest scheduled set, after checking that a change of it
    /// may take effect at `effective_height` and that `key` is a member (or,
    /// with `or_rotated_out`, a rotated-out key still listed in the set).
    fn latest_set_with(
        &self,
        ctx: &BlockContext,
        state: &StateOverlay<'_>,
        chain: &ChainId,
        key: &PublicKey,
        effective_height: Height,
        or_rotated_out: bool,
    ) -> Result<ValidatorSet, OpError> {
        Self::registered_chain(state, chain)?;
        let schedule = validator_schedule(state, chain)?;
        let latest = schedule.last_key_value();
        self.check_effective_height(ctx, state, chain, effective_height, latest.map(|(h, _)| *h))?;
        let Some((_, current)) = latest else {
            return fail(
                CODE_INVALID_ACTION,
                format!("chain {chain} has no validators"),
            );
        };
        let rotated_out = or_rotated_out && current.rotated_keys().any(|r| &r.key == key);
        if current.find(key).is_none() && !rotated_out {
            return fail(
                CODE_INVALID_ACTION,
                format!("{key} is not a validator of chain {chain}"),
            );
        }
        Ok(current.clone())
    }

    /// Schedules, at `effective_height`, `chain`'s latest set with `key`'s
    /// window changed by `change` (`key` must be a member).
    fn change_key_window(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        chain: &ChainId,
        key: &PublicKey,
        effective_height: Height,
        change: impl FnOnce(&mut KeyWindow),
    ) -> Result<(), OpError> {
        let current = self.latest_set_with(ctx, state, chain, key, effective_height, true)?;
        let mut window = current.key_window(key);
        change(&mut window);
        let set = current
            .clone()
            .with_key_windows([(key.clone(), window)])
            .map_err(|e| invalid_action(e.to_string()))?;
        Self::schedule_set(state, chain, effective_height, &set)
    }

    /// Checks `action` against `state` and writes its effect. With
    /// `passing == false` only the checks that can not change before the
    /// proposal passes are binding; the writes go to a scratch overlay that
    /// the caller drops.
    fn apply_action(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        action: &Action,
        effective_height: Height,
        passing: bool,
    ) -> Result<(), OpError> {
        let main = self.main_chain().clone();
        match action {
            Action::AddValidator {
                chain,
                key,
                power,
                department: dept_id,
            } => {
                Self::registered_chain(state, chain)?;
                let schedule = validator_schedule(state, chain)?;
                let latest = schedule.last_key_value();
                self.check_effective_height(
                    ctx,
                    state,
                    chain,
                    effective_height,
                    latest.map(|(h, _)| *h),
                )?;
                if *power == 0 {
                    return fail(CODE_INVALID_ACTION, "validator power must be at least 1");
                }
                let suite = self.suite_of_chain(state, chain)?;
                Self::check_suite(suite, format_args!("chain {chain}"), "validator key", key)?;
                if passing {
                    let Some(d) = department(state, dept_id)? else {
                        return fail(
                            CODE_INVALID_ACTION,
                            format!("department {dept_id} is not registered"),
                        );
                    };
                    if department_key_of_suite(state, &d, suite)?.as_ref() != Some(key) {
                        return fail(
                            CODE_INVALID_ACTION,
                            format!(
                                "{key} is not department {dept_id}'s key of crypto suite {suite}"
                            ),
                        );
                    }
                }
                let mut validators: Vec<Validator> = latest
                    .map(|(_, s)| s.validators().to_vec())
                    .unwrap_or_default();
                validators.retain(|v| &v.public_key != key);
                validators.push(Validator {
                    public_key: key.clone(),
                    power: *power,
                });
                let set = ValidatorSet::new(validators)
                    .and_then(|set| keep_key_windows(set, latest.map(|(_, s)| s), effective_height))
                    .map_err(|e| invalid_action(e.to_string()))?;
                Self::schedule_set(state, chain, effective_height, &set)
            }
            Action::RemoveValidator { chain, key } => {
                let current =
                    self.latest_set_with(ctx, state, chain, key, effective_height, false)?;
                let remaining: Vec<Validator> = current
                    .validators()
                    .iter()
                    .filter(|v| &v.public_key != key)
                    .cloned()
                    .collect();
                let set = ValidatorSet::new(remaining)
                    .and_then(|set| keep_key_windows(set, Some(&current), effective_height))
                    .map_err(|e| invalid_action(format!("removing {key} from {chain}: {e}")))?;
                Self::schedule_set(state, chain, effective_height, &set)
            }
            Action::SetKeyExpiry {
                chain,
                key,
                expires_at,
            } => {
                if *expires_at < effective_height {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!(
                            "an expiry at {expires_at} is before the effective height {effective_height}"
                        ),
                    );
                }
                self.change_key_window(ctx, state, chain, key, effective_height, |w| {
                    w.expires_at = Some(*expires_at);
                })
            }
            Action::ReportKeyCompromise { chain, key, from } => {
                self.change_key_window(ctx, state, chain, key, effective_height, |w| {
                    w.revoked_from = Some(w.revoked_from.map_or(*from, |r| r.min(*from)));
                })
            }
            Action::RotateValidatorKey {
                chain,
                key,
                new_key,
                overlap,
                possession,
            } => {
                if !(1..=MAX_ROTATION_OVERLAP).contains(overlap) {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("a rotation overlap must be 1 to {MAX_ROTATION_OVERLAP} heights, not {overlap}"),
                    );
                }
                Self::check_suite(
                    self.suite_of_chain(state, chain)?,
                    format_args!("chain {chain}"),
                    format_args!("new key for {key}"),
                    new_key,
                )?;
                if verify_rotation_possession(chain, key, new_key, possession).is_err() {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("{new_key}'s proof of possession for rotating {key} on {chain} does not verify"),
                    );
                }
                let engine = if chain == &main {
                    EngineKind::Bft
                } else {
                    Self::registered_chain(state, chain)?.engine
                };
                if engine != EngineKind::Bft {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("chain {chain} runs Raft, whose members are fixed keys: change {key} by adding the new key and removing the old one"),
                    );
                }
                let current =
                    self.latest_set_with(ctx, state, chain, key, effective_height, false)?;
                if passing {
                    let Some(mut dept) = department_of_key(state, key)? else {
                        return fail(
                            CODE_INVALID_ACTION,
                            format!("{key} is not a registered department's key"),
                        );
                    };
                    if let Some(other) = department_of_key(state, new_key)? {
                        if other.id != dept.id {
                            return fail(
                                CODE_INVALID_ACTION,
                                format!("{new_key} already belongs to department {}", other.id),
                            );
                        }
                    }
                    state.put(node_key_key(new_key), dept.id.to_bytes());
                    let key_suite = CryptoSuite::of_key(key);
                    if chain == &main {
                        dept.node_key = new_key.clone();
                        state.put(department_key(&dept.id), dept.to_bytes());
                    } else if department_suite_key(state, &dept.id, key_suite)?.as_ref()
                        == Some(key)
                    {
                        // A department's key of a second suite rotates on
                        // a chain of that suite: the new key becomes the
                        // department's key of the suite.
                        state.put(suite_key_key(&dept.id, key_suite), new_key.to_bytes());
                    }
                }
                let until = Height::new(effective_height.get().saturating_add(*overlap));
                let set = current
                    .without_rotated_keys_expired_by(effective_height)
                    .with_rotation(key, new_key.clone(), until)
                    .map_err(|e| invalid_action(format!("rotating {key} on {chain}: {e}")))?;
                Self::schedule_set(state, chain, effective_height, &set)
            }
            Action::RegisterSideChain {
                chain,
                engine,
                validators,
                anchor_interval,
            } => {
                if chain == &main || chain_info(state, chain)?.is_some() {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("chain {chain} is already registered"),
                    );
                }
                if effective_height.get() == 0 {
                    return fail(
                        CODE_BAD_EFFECTIVE_HEIGHT,
                        "effective height must be at least 1",
                    );
                }
                if *anchor_interval == 0 {
                    return fail(CODE_INVALID_ACTION, "anchor interval must be at least 1");
                }
                // The side chain's suite is its set's. Its members are
                // departments' keys of that suite: node keys (or keys they
                // rotated to) for the network's suite, else registered
                // suite keys.
                let suite = validators.suite();
                if passing {
                    for v in validators.validators() {
                        let key = &v.public_key;
                        let registered = match department_of_key(state, key)? {
                            None => false,
                            Some(_) if suite == self.suite => true,
                            Some(d) => {
                                department_suite_key(state, &d.id, suite)?.as_ref() == Some(key)
                            }
                        };
                        if !registered {
                            return fail(
                                CODE_INVALID_ACTION,
                                format!(
                                    "validator {key} of side chain {chain} (crypto suite {suite}) is not a department's key of that suite"
                                ),
                            );
                        }
                    }
                }
                let mut list = chain_ids(state)?;
                if list.len() >= MAX_CHAINS {
                    return fail(CODE_LIMIT_REACHED, "too many chains");
                }
                if let Err(pos) = list.binary_search(chain) {
                    list.insert(pos, chain.clone());
                }
                state.put(CHAINS_KEY.to_vec(), SortedList(list).to_bytes());
                state.put(
                    chain_key(chain),
                    ChainInfo {
                        chain_id: chain.clone(),
                        role: ChainRole::Side,
                        engine: *engine,
                        anchor_interval: *anchor_interval,
                    }
                    .to_bytes(),
                );
                Self::schedule_set(state, chain, effective_height, validators)
            }
            Action::SetParameter { chain, name, value } => {
                Self::registered_chain(state, chain)?;
                let mut table = parameters(state, chain)?;
                let latest = table
                    .get(name)
                    .and_then(|s| s.last_key_value().map(|(h, _)| *h));
                self.check_effective_height(ctx, state, chain, effective_height, latest)?;
                // Values superseded before the chain's known height can never
                // apply again: prune them.
                let horizon = if chain == &main {
                    ctx.height
                } else {
                    latest_anchor(state, chain)?
                        .map(|a| a.height)
                        .unwrap_or_default()
                };
                if !table.contains_key(name) && table.len() >= MAX_PARAMETERS_PER_CHAIN {
                    return fail(
                        CODE_LIMIT_REACHED,
                        format!("chain {chain} has too many parameters"),
                    );
                }
                let schedule = table.entry(name.clone()).or_default();
                if let Some(in_force) = schedule.range(..=horizon).next_back().map(|(h, _)| *h) {
                    schedule.retain(|h, _| *h >= in_force);
                }
                if !schedule.contains_key(&effective_height)
                    && schedule.len() >= MAX_PARAMETER_SCHEDULE
                {
                    return fail(
                        CODE_LIMIT_REACHED,
                        format!("parameter {name} of {chain} has too many scheduled values"),
                    );
                }
                schedule.insert(effective_height, value.clone());
                state.put(parameters_key(chain), ParameterTableCodec(table).to_bytes());
                Ok(())
            }
            Action::RegisterDepartment { department: dept } => {
                self.check_effective_height(ctx, state, &main, effective_height, None)?;
                Self::check_suite(
                    self.suite,
                    "the network",
                    format_args!("department {}: node key", dept.id),
                    &dept.node_key,
                )?;
                if department(state, &dept.id)?.is_some() {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("department {} is already registered", dept.id),
                    );
                }
                if department_of_key(state, &dept.node_key)?.is_some() {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("node key {} already belongs to a department", dept.node_key),
                    );
                }
                let mut ids = department_ids(state)?;
                if ids.len() >= MAX_DEPARTMENTS {
                    return fail(CODE_LIMIT_REACHED, "too many departments");
                }
                if let Err(pos) = ids.binary_search(&dept.id) {
                    ids.insert(pos, dept.id.clone());
                }
                state.put(DEPARTMENTS_KEY.to_vec(), SortedList(ids).to_bytes());
                state.put(department_key(&dept.id), dept.to_bytes());
                state.put(node_key_key(&dept.node_key), dept.id.to_bytes());
                Ok(())
            }
            Action::RemoveDepartment { department: id } => {
                self.check_effective_height(ctx, state, &main, effective_height, None)?;
                let Some(dept) = department(state, id)? else {
                    return fail(
                        CODE_INVALID_ACTION,
                        format!("department {id} is not registered"),
                    );
                };
                // Not a validator now or later on any chain, under any of
                // its keys: every set from the one in force (main: at this
                // height; side chains: at their latest anchor) onwards.
                let keys = department_keys(state, &dept)?;
                let mut chains = chain_ids(state)?;
                if !chains.contains(&main) {
                    chains.push(main.clone());
                }
                for chain in &chains {
                    let known = if chain == &main {
                        ctx.height
                    } else {
                        latest_anchor(state, chain)?
                            .map(|a| a.height)
                            .unwrap_or_default()
                    };
                    let schedule = validator_schedule(state, chain)?;
                    let from = schedule
                        .range(..=known)
                        .next_back()
                        .map_or(Height::new(0), |(h, _)| *h);
                    if schedule
                        .range(from..)
                        .any(|(_, set)| keys.iter().any(|k| set.find(k).is_some()))
                    {
                        return fail(
                            CODE_INVALID_ACTION,
                            format!(
                                "department {id} is a validator of chain {chain}; remove it there first"
                            ),
                        );
                    }
                }
                let mut ids = department_ids(state)?;
                ids.retain(|d| d != id);
                state.put(DEPARTMENTS_KEY.to_vec(), SortedList(ids).to_bytes());
                state.delete(department_key(id));
                for key in &keys {
                    state.delete(node_key_key(key));
                    if key != &dept.node_key {
                        state.delete(suite_key_key(id, CryptoSuite::of_key(key)));
                    }
                }
                Ok(())
            }
            Action::RegisterDepartmentKey {
                department: id,
                key,
                possession,
            } => {
                self.check_effective_height(ctx, state, &main, effective_height, None)?;
                self.check_department_key(state, id, key, possession)?;
                let suite = CryptoSuite::of_key(key);
                state.put(suite_key_key(id, suite), key.to_bytes());
                state.put(node_key_key(key), id.to_bytes());
                Ok(())
            }
        }
    }

    /// The checks of [`Action::RegisterDepartmentKey`], the same when
    /// proposed and when passing.
    fn check_department_key(
        &self,
        state: &dyn StateView,
        id: &DepartmentId,
        key: &PublicKey,
        possession: &Signature,
    ) -> Result<(), OpError> {
        let refuse = |e: DepartmentKeyError| Err(invalid_action(e.to_string()));
        if department(state, id)?.is_none() {
            return refuse(DepartmentKeyError::UnknownDepartment {
                department: id.clone(),
            });
        }
        let suite = CryptoSuite::of_key(key);
        if suite == self.suite {
            return refuse(DepartmentKeyError::NetworkSuite {
                key: key.clone(),
                suite,
            });
        }
        if let Some(existing) = department_suite_key(state, id, suite)? {
            return refuse(DepartmentKeyError::SuiteTaken {
                department: id.clone(),
                suite,
                existing,
            });
        }
        if let Some(owner) = read::<DepartmentId>(state, &node_key_key(key))? {
            return refuse(DepartmentKeyError::AlreadyRegistered {
                key: key.clone(),
                owner,
            });
        }
        if verify_department_key_possession(self.main_chain(), id, key, possession).is_err() {
            return refuse(DepartmentKeyError::BadPossession {
                department: id.clone(),
                key: key.clone(),
            });
        }
        Ok(())
    }

    fn anchor(
        &self,
        state: &mut StateOverlay<'_>,
        header: &BlockHeader,
        certificate: &CommitCertificate,
    ) -> Result<GovernanceEvent, OpError> {
        let chain = &header.chain_id;
        if chain == self.main_chain() {
            return fail(
                CODE_ANCHOR_WRONG_CHAIN,
                "the main chain does not anchor on itself",
            );
        }
        let info = Self::registered_chain(state, chain)?;
        if info.role != ChainRole::Side {
            return fail(
                CODE_ANCHOR_WRONG_CHAIN,
                format!("{chain} is not a side chain"),
            );
        }
        if &certificate.chain_id != chain {
            return fail(
                CODE_ANCHOR_WRONG_CHAIN,
                format!(
                    "certificate is for chain {}, header for {chain}",
                    certificate.chain_id
                ),
            );
        }
        if let Some(latest) = latest_anchor(state, chain)? {
            if header.height <= latest.height {
                return fail(
                    CODE_ANCHOR_NOT_INCREASING,
                    format!(
                        "chain {chain} is anchored at {}; {} is not higher",
                        latest.height, header.height
                    ),
                );
            }
        }
        let Some(set) = validator_set_at(state, chain, header.height)? else {
            return fail(
                CODE_ANCHOR_NO_VALIDATOR_SET,
                format!("chain {chain} has no validator set at {}", header.height),
            );
        };
        if let Err(reason) = verify_chain_certificate(info.engine, certificate, chain, header, &set)
        {
            return fail(CODE_ANCHOR_BAD_CERTIFICATE, reason);
        }
        let record = AnchorRecord::of_header(header);
        state.put(anchor_key(chain, header.height), record.to_bytes());
        state.put(latest_anchor_key(chain), record.to_bytes());
        Ok(GovernanceEvent::Anchored { record })
    }
}

impl Application for GovernanceApp {
    fn name(&self) -> &str {
        "governance"
    }

    fn check_tx(&self, state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        GovernanceOp::decode(tx.payload()).map_err(|e| TxRejection::InvalidPayload {
            reason: e.to_string(),
        })?;
        let view = self.state_with_genesis(state)?;
        if department_of_key(&view, tx.sender())?.is_none() {
            return Err(TxRejection::Unauthorized {
                reason: format!(
                    "sender {} is not a registered department node key",
                    tx.sender()
                ),
            });
        }
        NonceTracker::check_not_replayed(&view, tx)
    }

    fn execute_block(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError> {
        if &ctx.chain_id != self.main_chain() {
            return Err(ExecutionError::Fault {
                reason: format!(
                    "governance of {} asked to execute a block of {}",
                    self.main_chain(),
                    ctx.chain_id
                ),
            });
        }
        if state.get(CONFIG_KEY)?.is_none() {
            self.write_genesis(state);
        }
        let mut receipts = Vec::with_capacity(txs.len());
        for tx in txs {
            if let Err(e) = NonceTracker::check_and_advance(state, tx) {
                receipts.push(Receipt {
                    tx_id: tx.id(),
                    code: CODE_BAD_NONCE,
                    data: e.to_string().into_bytes(),
                });
                continue;
            }
            // Each operation writes into a scratch overlay that is applied
            // only on success, so a failed operation writes nothing.
            let outcome = {
                let mut scratch = StateOverlay::new(&*state);
                self.execute_tx(ctx, &mut scratch, tx)
                    .map(|event| (event, scratch.into_writes()))
            };
            match outcome {
                Ok((event, writes)) => {
                    for (k, v) in writes {
                        match v {
                            Some(v) => state.put(k, v),
                            None => state.delete(k),
                        }
                    }
                    receipts.push(Receipt {
                        tx_id: tx.id(),
                        code: CODE_OK,
                        data: event.to_bytes(),
                    });
                }
                Err(OpError::Fail(f)) => {
                    let mut data = f.reason.into_bytes();
                    data.truncate(Receipt::MAX_DATA_LEN);
                    receipts.push(Receipt {
                        tx_id: tx.id(),
                        code: f.code,
                        data,
                    });
                }
                Err(OpError::Exec(e)) => return Err(e),
            }
        }
        Ok(receipts)
    }

    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        let query: GovernanceQuery =
            decode_exact(request, MAX_QUERY_LEN).map_err(|e| QueryError::BadRequest {
                reason: e.to_string(),
            })?;
        Ok(query.state_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::cert::certify;
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::hash::Domain;
    use govchain_core::types::{Round, Timestamp};
    use proptest::prelude::*;

    fn sk(i: u8) -> SecretKey {
        SecretKey::from_seed(&[i; 32])
    }

    fn pk(i: u8) -> PublicKey {
        sk(i).public_key()
    }

    fn chain(s: &str) -> ChainId {
        ChainId::new(s).unwrap()
    }

    fn dept(i: u8) -> DepartmentId {
        DepartmentId::new(format!("dept-{i}")).unwrap()
    }

    fn set(members: &[(u8, u64)]) -> ValidatorSet {
        ValidatorSet::new(
            members
                .iter()
                .map(|&(i, power)| Validator {
                    public_key: pk(i),
                    power,
                })
                .collect(),
        )
        .unwrap()
    }

    /// Departments 1..=n with the given main-chain powers, a BFT side chain
    /// validated by departments 1..=3.
    fn app(powers: &[u64]) -> GovernanceApp {
        GovernanceApp::new(GovernanceGenesis {
            main_chain: chain("main"),
            departments: powers
                .iter()
                .enumerate()
                .map(|(i, &power)| {
                    let i = i as u8 + 1;
                    GenesisDepartment {
                        id: dept(i),
                        name: format!("Department {i}"),
                        node_key: pk(i),
                        power,
                        suite_keys: Vec::new(),
                    }
                })
                .collect(),
            side_chains: vec![SideChainSpec {
                chain_id: chain("side"),
                engine: EngineKind::Bft,
                validators: set(&[(1, 1), (2, 1), (3, 1)]),
                anchor_interval: 4,
            }],
        })
        .unwrap()
    }

    /// A tiny host: executes one block at a time on a `BTreeMap`.
    struct Host {
        app: GovernanceApp,
        state: BTreeMap<Vec<u8>, Vec<u8>>,
        height: u64,
        nonces: BTreeMap<u8, u64>,
    }

    impl Host {
        fn new(app: GovernanceApp) -> Self {
            Host {
                app,
                state: BTreeMap::new(),
                height: 0,
                nonces: BTreeMap::new(),
            }
        }

        fn tx(&mut self, from: u8, op: &GovernanceOp) -> Transaction {
            let nonce = self.nonces.entry(from).or_insert(0);
            let tx =
                Transaction::new_signed(chain("main"), &sk(from), *nonce, op.to_payload()).unwrap();
            *nonce += 1;
            tx
        }

        fn block(&mut self, txs: &[Transaction]) -> Vec<Receipt> {
            self.height += 1;
            for tx in txs {
                // check_tx admits what a department sends.
                self.app.check_tx(&self.state, tx).unwrap();
            }
            let ctx = BlockContext {
                chain_id: chain("main"),
                height: Height::new(self.height),
                time: Timestamp::new(self.height),
                proposer: pk(1),
                suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
            };
            let (receipts, writes) = {
                let mut overlay = StateOverlay::new(&self.state);
                let receipts = self.app.execute_block(&ctx, &mut overlay, txs).unwrap();
                (receipts, overlay.into_writes())
            };
            for (k, v) in writes {
                match v {
                    Some(v) => self.state.insert(k, v),
                    None => self.state.remove(&k),
                };
            }
            receipts
        }

        fn run(&mut self, from: u8, op: GovernanceOp) -> Receipt {
            let tx = self.tx(from, &op);
            self.block(&[tx]).remove(0)
        }
    }

    fn status(r: &Receipt) -> ProposalStatus {
        assert_eq!(r.code, CODE_OK, "{}", String::from_utf8_lossy(&r.data));
        match GovernanceEvent::decode(&r.data).unwrap() {
            GovernanceEvent::Proposed { status, .. } | GovernanceEvent::Voted { status, .. } => {
                status
            }
            other => panic!("unexpected event {other:?}"),
        }
    }

    fn vote(id: u64, approve: bool) -> GovernanceOp {
        GovernanceOp::Vote {
            proposal_id: ProposalId::new(id),
            approve,
        }
    }

    #[test]
    fn weighted_quorum_is_strictly_more_than_two_thirds() {
        // Powers 2, 1, 1, 2 (total 6): 4 is exactly 2/3 and does not pass;
        // 5 does.
        let mut host = Host::new(app(&[2, 1, 1, 2]));
        let add = GovernanceOp::Propose {
            action: Action::SetParameter {
                chain: chain("main"),
                name: "max-block-txs".into(),
                value: b"5000".to_vec(),
            },
            effective_height: Height::new(10),
        };
        assert_eq!(status(&host.run(1, add)), ProposalStatus::Open); // 2
        assert_eq!(status(&host.run(4, vote(1, true))), ProposalStatus::Open); // 4 = 2/3
        assert_eq!(status(&host.run(2, vote(1, true))), ProposalStatus::Passed); // 5
        assert_eq!(
            parameter_at(
                &host.state,
                &chain("main"),
                "max-block-txs",
                Height::new(10)
            )
            .unwrap(),
            Some(b"5000".to_vec())
        );
        assert_eq!(
            parameter_at(&host.state, &chain("main"), "max-block-txs", Height::new(9)).unwrap(),
            None
        );
        // A closed proposal takes no more votes.
        assert_eq!(host.run(3, vote(1, true)).code, CODE_PROPOSAL_CLOSED);
    }

    #[test]
    fn rejection_closes_when_quorum_is_unreachable() {
        let mut host = Host::new(app(&[1, 1, 1, 1]));
        let op = GovernanceOp::Propose {
            action: Action::RemoveValidator {
                chain: chain("side"),
                key: pk(3),
            },
            effective_height: Height::new(50),
        };
        assert_eq!(status(&host.run(1, op)), ProposalStatus::Open);
        // One rejection leaves 3 of 4 reachable.
        assert_eq!(status(&host.run(2, vote(1, false))), ProposalStatus::Open);
        // Two leave at most 2 of 4.
        assert_eq!(
            status(&host.run(3, vote(1, false))),
            ProposalStatus::Rejected
        );
        assert_eq!(
            proposal(&host.state, ProposalId::new(1))
                .unwrap()
                .unwrap()
                .status,
            ProposalStatus::Rejected
        );
    }

    #[test]
    fn failed_receipts_write_nothing_but_use_the_nonce() {
        let mut host = Host::new(app(&[1, 1, 1]));
        host.block(&[]);
        let before = host.state.clone();
        let r = host.run(1, vote(7, true));
        assert_eq!(r.code, CODE_UNKNOWN_PROPOSAL);
        let mut changed: Vec<_> = host
            .state
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.sort();
        assert_eq!(changed, vec![NonceTracker::key(&pk(1))]);
        // Garbage payloads are refused by check_tx and fail in execution.
        let junk = Transaction::new_signed(chain("main"), &sk(1), 1, vec![1, 9]).unwrap();
        assert!(matches!(
            host.app.check_tx(&host.state, &junk),
            Err(TxRejection::InvalidPayload { .. })
        ));
        let ctx = BlockContext {
            chain_id: chain("main"),
            height: Height::new(3),
            time: Timestamp::new(3),
            proposer: pk(1),
            suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
        };
        let mut overlay = StateOverlay::new(&host.state);
        let receipts = host.app.execute_block(&ctx, &mut overlay, &[junk]).unwrap();
        assert_eq!(receipts[0].code, CODE_MALFORMED);
    }

    #[test]
    fn genesis_is_written_once_and_readable() {
        let mut host = Host::new(app(&[3, 0, 1]));
        let view_before = host.app.state_with_genesis(&host.state).unwrap();
        assert_eq!(departments(&view_before).unwrap().len(), 3);
        drop(view_before);
        host.block(&[]);
        assert_eq!(
            config(&host.state).unwrap().unwrap().main_chain,
            chain("main")
        );
        let main_set = validator_set_at(&host.state, &chain("main"), Height::new(1))
            .unwrap()
            .unwrap();
        // Department 2 has no power and is not a validator.
        assert_eq!(main_set, set(&[(1, 3), (3, 1)]));
        assert!(
            validator_set_at(&host.state, &chain("main"), Height::new(0))
                .unwrap()
                .is_none()
        );
        let sides = side_chains(&host.state).unwrap();
        assert_eq!(sides.len(), 1);
        assert_eq!(sides[0].anchor_interval, 4);
        assert_eq!(chains(&host.state).unwrap().len(), 2);
        assert_eq!(
            department_of_key(&host.state, &pk(2)).unwrap().unwrap().id,
            dept(2)
        );
        // A second block does not rewrite genesis.
        let before = host.state.clone();
        host.block(&[]);
        assert_eq!(before, host.state);
        // Explicit genesis writes are the same records.
        let explicit: BTreeMap<Vec<u8>, Vec<u8>> = host
            .app
            .genesis_writes()
            .into_iter()
            .map(|(k, v)| (k, v.unwrap()))
            .collect();
        for (k, v) in &explicit {
            assert_eq!(host.state.get(k), Some(v));
        }
    }

    #[test]
    fn genesis_rules() {
        let good = app(&[1, 1, 1]).genesis().clone();
        let mut g = good.clone();
        g.departments[1].node_key = pk(1);
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateNodeKey { .. })
        ));
        let mut g = good.clone();
        g.departments[1].id = dept(1);
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateDepartment { .. })
        ));
        let mut g = good.clone();
        g.side_chains[0].validators = set(&[(1, 1), (9, 1)]);
        assert!(matches!(
            g.validate(),
            Err(GenesisError::NotADepartmentKey { .. })
        ));
        let mut g = good.clone();
        g.side_chains[0].chain_id = chain("main");
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateChain { .. })
        ));
        let mut g = good.clone();
        g.side_chains[0].anchor_interval = 0;
        assert!(matches!(
            g.validate(),
            Err(GenesisError::ZeroAnchorInterval { .. })
        ));
        let mut g = good;
        for d in &mut g.departments {
            d.power = 0;
        }
        assert!(matches!(
            g.validate(),
            Err(GenesisError::MainValidators { .. })
        ));
        assert!(DepartmentId::new("Bad").is_err());
        assert!(DepartmentId::new("-x").is_err());
        assert!(DepartmentId::new("a".repeat(33)).is_err());
        assert!(DepartmentId::new("civil_affairs.01").is_ok());
    }

    #[test]
    fn query_keys_match_key_functions() {
        let app = app(&[1, 1, 1]);
        let q = GovernanceQuery::Anchor {
            chain: chain("side"),
            height: Height::new(8),
        };
        assert_eq!(
            app.query_key(&q.to_bytes()).unwrap(),
            anchor_key(&chain("side"), Height::new(8))
        );
        assert!(app.query_key(&[99]).is_err());
        // Keys of different kinds never collide, and none is a prefix of
        // another of the same kind.
        let a = anchor_key(&chain("ab"), Height::new(1));
        let b = anchor_key(&chain("a"), Height::new(1));
        assert!(!a.starts_with(&b) && !b.starts_with(&a));
        assert_ne!(
            latest_anchor_key(&chain("a")),
            anchor_key(&chain("a"), Height::new(0))
        );
    }

    fn chain_strategy() -> impl Strategy<Value = ChainId> {
        prop::sample::select(vec!["main", "side", "identity.side-1", "x"]).prop_map(chain)
    }

    fn key_strategy() -> impl Strategy<Value = PublicKey> {
        (1u8..8).prop_map(pk)
    }

    fn height_strategy() -> impl Strategy<Value = Height> {
        any::<u64>().prop_map(Height::new)
    }

    fn set_strategy() -> impl Strategy<Value = ValidatorSet> {
        prop::collection::btree_map(1u8..8, 1u64..1000, 1..5).prop_map(|m| {
            let members: Vec<(u8, u64)> = m.into_iter().collect();
            set(&members)
        })
    }

    fn action_strategy() -> impl Strategy<Value = Action> {
        prop_oneof![
            (chain_strategy(), key_strategy(), any::<u64>(), 1u8..9).prop_map(
                |(chain, key, power, d)| Action::AddValidator {
                    chain,
                    key,
                    power,
                    department: dept(d),
                }
            ),
            (chain_strategy(), key_strategy())
                .prop_map(|(chain, key)| Action::RemoveValidator { chain, key }),
            (chain_strategy(), key_strategy(), any::<u64>()).prop_map(|(chain, key, h)| {
                Action::SetKeyExpiry {
                    chain,
                    key,
                    expires_at: Height::new(h),
                }
            }),
            (chain_strategy(), key_strategy(), any::<u64>()).prop_map(|(chain, key, h)| {
                Action::ReportKeyCompromise {
                    chain,
                    key,
                    from: Height::new(h),
                }
            }),
            (
                chain_strategy(),
                any::<bool>(),
                set_strategy(),
                any::<u64>()
            )
                .prop_map(|(chain, raft, validators, anchor_interval)| {
                    Action::RegisterSideChain {
                        chain,
                        engine: if raft {
                            EngineKind::Raft
                        } else {
                            EngineKind::Bft
                        },
                        validators,
                        anchor_interval,
                    }
                }),
            (
                chain_strategy(),
                "[a-z][a-z0-9._-]{0,20}",
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(chain, name, value)| Action::SetParameter {
                    chain,
                    name,
                    value
                }),
            (1u8..9, ".{0,20}", key_strategy()).prop_map(|(d, name, node_key)| {
                Action::RegisterDepartment {
                    department: Department {
                        id: dept(d),
                        name,
                        node_key,
                    },
                }
            }),
            (1u8..9).prop_map(|d| Action::RemoveDepartment {
                department: dept(d)
            }),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = GovernanceOp> {
        prop_oneof![
            (action_strategy(), height_strategy()).prop_map(|(action, effective_height)| {
                GovernanceOp::Propose {
                    action,
                    effective_height,
                }
            }),
            (any::<u64>(), any::<bool>()).prop_map(|(id, approve)| GovernanceOp::Vote {
                proposal_id: ProposalId::new(id),
                approve,
            }),
            (chain_strategy(), 1u64..1000, any::<[u8; 32]>(), 1usize..4).prop_map(
                |(chain, height, seed, signers)| {
                    let header = BlockHeader {
                        suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
                        chain_id: chain.clone(),
                        height: Height::new(height),
                        time: Timestamp::new(height * 7),
                        parent_hash: Hash::of(Domain::Test, &seed),
                        tx_root: Hash::of(Domain::Test, b"tx"),
                        tx_count: 3,
                        state_root: Hash::from_bytes(seed),
                        history_root: Hash::ZERO,
                        validator_set_hash: Hash::of(Domain::Test, b"set"),
                        next_validator_set_hash: Hash::of(Domain::Test, b"next"),
                        proposer: pk(1),
                    };
                    let keys: Vec<SecretKey> = (1..=signers as u8).map(sk).collect();
                    let signers: Vec<&dyn Signer> = keys.iter().map(|k| k as &dyn Signer).collect();
                    let certificate = certify(
                        &chain,
                        header.height,
                        Round::new(0),
                        header.hash(),
                        &signers,
                    );
                    GovernanceOp::Anchor {
                        header,
                        certificate,
                    }
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn op_codec_round_trips(op in op_strategy()) {
            let bytes = op.to_payload();
            prop_assert_eq!(GovernanceOp::decode(&bytes).unwrap(), op);
            prop_assert!(GovernanceOp::decode(&bytes[..bytes.len() - 1]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(GovernanceOp::decode(&longer).is_err());
        }

        #[test]
        fn op_decode_of_arbitrary_bytes_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            if let Ok(op) = GovernanceOp::decode(&bytes) {
                prop_assert_eq!(op.to_payload(), bytes);
            }
        }

        #[test]
        fn op_decode_of_mutated_ops_never_panics(
            op in op_strategy(),
            index in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = op.to_payload();
            let i = index.index(bytes.len());
            bytes[i] = byte;
            if let Ok(decoded) = GovernanceOp::decode(&bytes) {
                prop_assert_eq!(decoded.to_payload(), bytes);
            }
        }

        #[test]
        fn records_round_trip(action in action_strategy(), h in height_strategy(), code in any::<u32>()) {
            let p = Proposal {
                id: ProposalId::new(3),
                proposer: pk(1),
                action,
                effective_height: h,
                submitted_at: Height::new(2),
                approvals: vec![pk(1), pk(2)].into_iter().collect::<BTreeSet<_>>().into_iter().collect(),
                rejections: vec![],
                status: ProposalStatus::Failed { code },
            };
            let back: Proposal = decode_exact(&p.to_bytes(), MAX_RECORD_LEN).unwrap();
            prop_assert_eq!(back, p);
        }
    }
}
