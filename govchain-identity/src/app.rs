//! The identity [`Application`]: executes the transactions that write the
//! registry, schemas and status lists, and enforces who may write what.
//!
//! # Authorization rules
//! - **Roots** are pinned at genesis ([`IdentityGenesis`]) and afterwards
//!   only by a governance key ([`IdentityOp::PinRoot`],
//!   [`IdentityOp::UnpinRoot`]). No transaction can make a root otherwise.
//! - **Accreditation**: a member whose role may accredit (root, accreditor),
//!   whose grant is in force, signing with its controller key, may admit an
//!   accreditor or issuer whose scope is within its own
//!   ([`Scope::check_within`]) and whose expiry is no later than its own.
//!   The parent (or governance) may revoke that grant.
//! - **Keys**: an issuer's controller adds, rotates and reports compromise
//!   of its own keys; the parent and governance may also report compromise.
//! - **Schemas**: any member in force may publish; only the publisher moves
//!   the lifecycle, and only forward.
//! - **Status lists**: an issuer in force creates lists under fresh ids; only
//!   the owner's controller updates them; revocation is final.
//!
//! - **Crypto suite**: the chain's suite is fixed in [`IdentityGenesis::suite`]
//!   (it must be the suite of the chain's genesis validators, which the host
//!   reports in [`BlockContext::suite`]; a block under another suite is an
//!   [`ExecutionError::Fault`]). Every key the application admits —
//!   governance keys and genesis roots' controllers (at construction),
//!   controllers of pinned and accredited members, issuers' credential
//!   keys — must be of the suite's algorithm ([`OpError::KeySuite`]), and
//!   schema ids are taken under the suite ([`Schema::id`]).
//!
//! A failed operation is a receipt with a non-zero [`OpError::code`]; its
//! writes are discarded, its nonce is still used. Execution is deterministic
//! (only `BTreeMap`s, no clocks); heights come from the [`BlockContext`].

use std::collections::BTreeMap;

use govchain_core::app::{
    Application, BlockContext, ExecutionError, NonceTracker, QueryError, Receipt, StateError,
    StateOverlay, StateView, TxRejection,
};
use govchain_core::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::{CryptoSuite, PublicKey, SuiteMismatch};
use govchain_core::tx::{Transaction, MAX_PAYLOAD_LEN};
use govchain_core::types::Height;

use crate::ids::{IssuerId, KeyId, SchemaId, StatusListId};
use crate::issuer::{
    GrantStatus, IssuerKey, IssuerRecord, KeyState, Role, Scope, ScopeError, MAX_ISSUER_KEYS,
    MAX_ISSUER_RECORD_LEN,
};
use crate::schema::{Lifecycle, Schema, SchemaRecord, MAX_SCHEMA_RECORD_LEN};
use crate::state::{issuer_key, schema_key, status_page_key, GENESIS_KEY};
use crate::status::{
    is_valid_capacity, StatusPage, StatusUpdate, ENTRIES_PER_PAGE, MAX_STATUS_PAGE_LEN,
    MAX_STATUS_UPDATES,
};

/// One record-writing operation: the payload of an identity transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityOp {
    /// Governance: pin a new root (role root, no parent, fresh id).
    PinRoot {
        /// The root's record.
        record: IssuerRecord,
    },
    /// Governance: revoke a root's pin.
    UnpinRoot {
        /// The root.
        id: IssuerId,
    },
    /// A parent admits an accreditor or issuer.
    Accredit {
        /// The accrediting member (signs with its controller key).
        parent: IssuerId,
        /// The new member.
        child: IssuerId,
        /// Its role (accreditor or issuer).
        role: Role,
        /// Its controller key.
        controller: PublicKey,
        /// Its scope, within the parent's.
        scope: Scope,
        /// Optional expiry height.
        expires_at: Option<Height>,
    },
    /// The parent (or governance) revokes a grant.
    RevokeAccreditation {
        /// The acting parent; `None` when governance acts.
        actor: Option<IssuerId>,
        /// The member whose grant is revoked.
        child: IssuerId,
    },
    /// An issuer adds a signing key, usable from this block's height.
    AddKey {
        /// The issuer.
        issuer: IssuerId,
        /// A fresh key number.
        key_id: KeyId,
        /// The key.
        public_key: PublicKey,
    },
    /// An issuer retires a key in the ordinary course.
    RotateKey {
        /// The issuer.
        issuer: IssuerId,
        /// The key.
        key_id: KeyId,
    },
    /// The issuer, its parent or governance reports a key compromised.
    ReportCompromise {
        /// Who acts: the issuer, its parent, or `None` for governance.
        actor: Option<IssuerId>,
        /// The key's issuer.
        issuer: IssuerId,
        /// The key.
        key_id: KeyId,
    },
    /// A member publishes a schema.
    PublishSchema {
        /// The publisher.
        publisher: IssuerId,
        /// The schema.
        schema: Schema,
    },
    /// The publisher moves a schema's lifecycle forward.
    SetSchemaLifecycle {
        /// The publisher.
        publisher: IssuerId,
        /// The schema.
        schema: SchemaId,
        /// The new lifecycle.
        lifecycle: Lifecycle,
    },
    /// An issuer creates a status list (all entries valid).
    CreateStatusList {
        /// The owner.
        issuer: IssuerId,
        /// A fresh list id.
        list: StatusListId,
        /// Entries, a multiple of `ENTRIES_PER_PAGE` of at least `MIN_LIST_CAPACITY`.
        capacity: u32,
    },
    /// The owner changes entries of a list, strictly sorted by index.
    UpdateStatus {
        /// The owner.
        issuer: IssuerId,
        /// The list.
        list: StatusListId,
        /// The changes.
        updates: Vec<StatusUpdate>,
    },
}

impl IdentityOp {
    /// Decodes an operation from a transaction payload.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(payload, MAX_PAYLOAD_LEN)
    }
}

impl Encode for IdentityOp {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            IdentityOp::PinRoot { record } => {
                out.push(1);
                record.encode_to(out);
            }
            IdentityOp::UnpinRoot { id } => {
                out.push(2);
                id.encode_to(out);
            }
            IdentityOp::Accredit {
                parent,
                child,
                role,
                controller,
                scope,
                expires_at,
            } => {
                out.push(3);
                parent.encode_to(out);
                child.encode_to(out);
                role.encode_to(out);
                controller.encode_to(out);
                scope.encode_to(out);
                expires_at.encode_to(out);
            }
            IdentityOp::RevokeAccreditation { actor, child } => {
                out.push(4);
                actor.encode_to(out);
                child.encode_to(out);
            }
            IdentityOp::AddKey {
                issuer,
                key_id,
                public_key,
            } => {
                out.push(5);
                issuer.encode_to(out);
                key_id.encode_to(out);
                public_key.encode_to(out);
            }
            IdentityOp::RotateKey { issuer, key_id } => {
                out.push(6);
                issuer.encode_to(out);
                key_id.encode_to(out);
            }
            IdentityOp::ReportCompromise {
                actor,
                issuer,
                key_id,
            } => {
                out.push(7);
                actor.encode_to(out);
                issuer.encode_to(out);
                key_id.encode_to(out);
            }
            IdentityOp::PublishSchema { publisher, schema } => {
                out.push(8);
                publisher.encode_to(out);
                schema.encode_to(out);
            }
            IdentityOp::SetSchemaLifecycle {
                publisher,
                schema,
                lifecycle,
            } => {
                out.push(9);
                publisher.encode_to(out);
                schema.encode_to(out);
                lifecycle.encode_to(out);
            }
            IdentityOp::CreateStatusList {
                issuer,
                list,
                capacity,
            } => {
                out.push(10);
                issuer.encode_to(out);
                list.encode_to(out);
                capacity.encode_to(out);
            }
            IdentityOp::UpdateStatus {
                issuer,
                list,
                updates,
            } => {
                out.push(11);
                issuer.encode_to(out);
                list.encode_to(out);
                encode_seq(updates, out);
            }
        }
    }
}

impl Decode for IdentityOp {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => IdentityOp::PinRoot {
                record: IssuerRecord::decode_from(r)?,
            },
            2 => IdentityOp::UnpinRoot {
                id: IssuerId::decode_from(r)?,
            },
            3 => IdentityOp::Accredit {
                parent: IssuerId::decode_from(r)?,
                child: IssuerId::decode_from(r)?,
                role: Role::decode_from(r)?,
                controller: PublicKey::decode_from(r)?,
                scope: Scope::decode_from(r)?,
                expires_at: Option::decode_from(r)?,
            },
            4 => IdentityOp::RevokeAccreditation {
                actor: Option::decode_from(r)?,
                child: IssuerId::decode_from(r)?,
            },
            5 => IdentityOp::AddKey {
                issuer: IssuerId::decode_from(r)?,
                key_id: KeyId::decode_from(r)?,
                public_key: PublicKey::decode_from(r)?,
            },
            6 => IdentityOp::RotateKey {
                issuer: IssuerId::decode_from(r)?,
                key_id: KeyId::decode_from(r)?,
            },
            7 => IdentityOp::ReportCompromise {
                actor: Option::decode_from(r)?,
                issuer: IssuerId::decode_from(r)?,
                key_id: KeyId::decode_from(r)?,
            },
            8 => IdentityOp::PublishSchema {
                publisher: IssuerId::decode_from(r)?,
                schema: Schema::decode_from(r)?,
            },
            9 => IdentityOp::SetSchemaLifecycle {
                publisher: IssuerId::decode_from(r)?,
                schema: SchemaId::decode_from(r)?,
                lifecycle: Lifecycle::decode_from(r)?,
            },
            10 => IdentityOp::CreateStatusList {
                issuer: IssuerId::decode_from(r)?,
                list: StatusListId::decode_from(r)?,
                capacity: u32::decode_from(r)?,
            },
            11 => IdentityOp::UpdateStatus {
                issuer: IssuerId::decode_from(r)?,
                list: StatusListId::decode_from(r)?,
                updates: r.seq("status updates", MAX_STATUS_UPDATES)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "identity op",
                    tag,
                })
            }
        })
    }
}

/// Why an operation failed; each has a stable receipt code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// The nonce is not the sender's next one.
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// Expected nonce.
        expected: u64,
        /// Given nonce.
        got: u64,
    },
    /// The payload does not decode.
    #[error("malformed payload: {0}")]
    Malformed(#[from] DecodeError),
    /// The sender may not perform this operation.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Which rule refused it.
        reason: &'static str,
    },
    /// A referenced member does not exist.
    #[error("unknown issuer {id}")]
    UnknownIssuer {
        /// The id.
        id: IssuerId,
    },
    /// The record to create exists already.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What.
        what: &'static str,
    },
    /// A grant would exceed its parent's scope.
    #[error("scope escalation: {0}")]
    ScopeEscalation(#[from] ScopeError),
    /// The role may not do this (an issuer accrediting, a root by accreditation).
    #[error("role not allowed: {reason}")]
    RoleNotAllowed {
        /// Why.
        reason: &'static str,
    },
    /// The acting member's grant is revoked or expired.
    #[error("grant of {id} is not in force")]
    GrantNotInForce {
        /// The member.
        id: IssuerId,
    },
    /// The key does not exist.
    #[error("unknown key {key_id} of {issuer}")]
    UnknownKey {
        /// The issuer.
        issuer: IssuerId,
        /// The key.
        key_id: KeyId,
    },
    /// The key is not in a state that allows this transition.
    #[error("key transition not allowed")]
    KeyTransition,
    /// The schema does not exist.
    #[error("unknown schema {id}")]
    UnknownSchema {
        /// The id.
        id: SchemaId,
    },
    /// Lifecycles only move forward.
    #[error("schema lifecycle may only move forward")]
    LifecycleTransition,
    /// The status list does not exist.
    #[error("unknown status list {list}")]
    UnknownStatusList {
        /// The list.
        list: StatusListId,
    },
    /// A status update is out of range, unsorted, or un-revokes.
    #[error("invalid status update: {reason}")]
    StatusUpdate {
        /// Why.
        reason: String,
    },
    /// A record's fields are invalid (bad capacity, bad key, bad root record).
    #[error("invalid record: {reason}")]
    InvalidRecord {
        /// Why.
        reason: &'static str,
    },
    /// Stored state failed to decode: the chain's state is corrupt.
    #[error("stored record is corrupt: {0}")]
    CorruptState(DecodeError),
    /// A key of an algorithm the chain's crypto suite does not admit: an
    /// SM2 key on an ed25519-blake3 chain or an Ed25519 key on an sm2-sm3
    /// chain.
    #[error("{what}: {mismatch}")]
    KeySuite {
        /// Which key (controller, credential key, governance key).
        what: &'static str,
        /// The chain's suite and the key's algorithm.
        mismatch: SuiteMismatch,
    },
}

impl OpError {
    /// The stable, non-zero receipt code.
    pub fn code(&self) -> u32 {
        match self {
            OpError::BadNonce { .. } => 1,
            OpError::Malformed(_) => 2,
            OpError::Unauthorized { .. } => 3,
            OpError::UnknownIssuer { .. } => 4,
            OpError::AlreadyExists { .. } => 5,
            OpError::ScopeEscalation(_) => 6,
            OpError::RoleNotAllowed { .. } => 7,
            OpError::GrantNotInForce { .. } => 8,
            OpError::UnknownKey { .. } => 9,
            OpError::KeyTransition => 10,
            OpError::UnknownSchema { .. } => 11,
            OpError::LifecycleTransition => 12,
            OpError::UnknownStatusList { .. } => 13,
            OpError::StatusUpdate { .. } => 14,
            OpError::InvalidRecord { .. } => 15,
            OpError::CorruptState(_) => 16,
            OpError::KeySuite { .. } => 17,
        }
    }
}

/// The side chain's genesis: its crypto suite, governance keys and the
/// pinned roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityGenesis {
    /// The chain's crypto suite: the suite of its genesis validators. Every
    /// key the application admits must be of its algorithm, and schema ids
    /// are hashed under it.
    pub suite: CryptoSuite,
    /// Keys allowed to pin and unpin roots and revoke grants. On a deployed
    /// chain these are the main chain's governance accounts.
    pub governance: Vec<PublicKey>,
    /// Roots pinned at genesis (role root, no parent).
    pub roots: Vec<IssuerRecord>,
}

/// A query for [`IdentityApp::query_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityQuery {
    /// An issuer record.
    Issuer(IssuerId),
    /// A schema record.
    Schema(SchemaId),
    /// One page of a status list.
    StatusPage(StatusListId, u32),
}

impl Encode for IdentityQuery {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            IdentityQuery::Issuer(id) => {
                out.push(1);
                id.encode_to(out);
            }
            IdentityQuery::Schema(id) => {
                out.push(2);
                id.encode_to(out);
            }
            IdentityQuery::StatusPage(list, page) => {
                out.push(3);
                list.encode_to(out);
                page.encode_to(out);
            }
        }
    }
}

impl Decode for IdentityQuery {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => IdentityQuery::Issuer(IssuerId::decode_from(r)?),
            2 => IdentityQuery::Schema(SchemaId::decode_from(r)?),
            3 => IdentityQuery::StatusPage(StatusListId::decode_from(r)?, u32::decode_from(r)?),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "identity query",
                    tag,
                })
            }
        })
    }
}

/// The identity application. See the module docs.
#[derive(Debug, Clone)]
pub struct IdentityApp {
    genesis: IdentityGenesis,
}

impl IdentityApp {
    /// An application with this genesis. Fails if a genesis root is not a
    /// parentless root record, or if a governance key, root controller or
    /// root credential key is not of the genesis suite
    /// ([`OpError::KeySuite`]).
    pub fn new(genesis: IdentityGenesis) -> Result<Self, OpError> {
        for key in &genesis.governance {
            suite_key(genesis.suite, "governance key", key)?;
        }
        for root in &genesis.roots {
            check_root_record(root)?;
            check_record_keys(genesis.suite, root)?;
        }
        Ok(IdentityApp { genesis })
    }

    /// The chain's crypto suite ([`IdentityGenesis::suite`]).
    pub fn suite(&self) -> CryptoSuite {
        self.genesis.suite
    }

    /// The genesis.
    pub fn genesis(&self) -> &IdentityGenesis {
        &self.genesis
    }

    fn is_governance(&self, key: &PublicKey) -> bool {
        self.genesis.governance.contains(key)
    }
}

fn check_root_record(r: &IssuerRecord) -> Result<(), OpError> {
    if r.role != Role::Root || r.parent.is_some() {
        return Err(OpError::InvalidRecord {
            reason: "a root has role root and no parent",
        });
    }
    Ok(())
}

fn suite_key(suite: CryptoSuite, what: &'static str, key: &PublicKey) -> Result<(), OpError> {
    suite
        .check_key(key)
        .map_err(|mismatch| OpError::KeySuite { what, mismatch })
}

/// Refuses a record whose controller or credential keys the suite does not
/// admit.
fn check_record_keys(suite: CryptoSuite, r: &IssuerRecord) -> Result<(), OpError> {
    suite_key(suite, "controller key", &r.controller)?;
    for k in &r.keys {
        suite_key(suite, "credential key", &k.public_key)?;
    }
    Ok(())
}

/// Writes staged by one operation, applied only if it succeeds.
struct Tx<'s, 'o> {
    state: &'s StateOverlay<'o>,
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Tx<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.state.get(key),
        }
    }

    fn read<T: Decode>(&self, key: &[u8], limit: usize) -> Result<Option<T>, Failure> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => decode_exact(&bytes, limit)
                .map(Some)
                .map_err(|e| Failure::Op(OpError::CorruptState(e))),
        }
    }

    fn issuer(&self, id: &IssuerId) -> Result<IssuerRecord, Failure> {
        self.read(&issuer_key(id), MAX_ISSUER_RECORD_LEN)?
            .ok_or_else(|| Failure::Op(OpError::UnknownIssuer { id: id.clone() }))
    }

    fn put<T: Encode>(&mut self, key: Vec<u8>, value: &T) {
        self.writes.insert(key, value.to_bytes());
    }
}

/// An operation failure, or a state read failure that stops the block.
enum Failure {
    Op(OpError),
    State(StateError),
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        Failure::Op(e)
    }
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Self {
        Failure::State(e)
    }
}

fn controlled_by(record: &IssuerRecord, sender: &PublicKey) -> Result<(), OpError> {
    if &record.controller == sender {
        Ok(())
    } else {
        Err(OpError::Unauthorized {
            reason: "sender is not the member's controller",
        })
    }
}

fn in_force(record: &IssuerRecord, height: Height) -> Result<(), OpError> {
    if record.in_force_at(height) {
        Ok(())
    } else {
        Err(OpError::GrantNotInForce {
            id: record.id.clone(),
        })
    }
}

fn admissible_key(key: &PublicKey) -> Result<(), OpError> {
    if key.is_on_curve() && key.is_torsion_free() {
        Ok(())
    } else {
        Err(OpError::InvalidRecord {
            reason: "key is off the curve or has a torsion component",
        })
    }
}

impl IdentityApp {
    fn apply(
        &self,
        tx: &mut Tx<'_, '_>,
        sender: &PublicKey,
        height: Height,
        op: IdentityOp,
    ) -> Result<(), Failure> {
        match op {
            IdentityOp::PinRoot { mut record } => {
                if !self.is_governance(sender) {
                    return Err(OpError::Unauthorized {
                        reason: "only governance pins roots",
                    }
                    .into());
                }
                check_root_record(&record)?;
                check_record_keys(self.suite(), &record)?;
                admissible_key(&record.controller)?;
                let key = issuer_key(&record.id);
                if tx.get(&key)?.is_some() {
                    return Err(OpError::AlreadyExists { what: "issuer" }.into());
                }
                record.granted_at = height;
                record.status = GrantStatus::Active;
                tx.put(key, &record);
            }
            IdentityOp::UnpinRoot { id } => {
                if !self.is_governance(sender) {
                    return Err(OpError::Unauthorized {
                        reason: "only governance unpins roots",
                    }
                    .into());
                }
                let mut record = tx.issuer(&id)?;
                if record.role != Role::Root {
                    return Err(OpError::RoleNotAllowed {
                        reason: "not a root",
                    }
                    .into());
                }
                record.status = GrantStatus::Revoked { at: height };
                tx.put(issuer_key(&id), &record);
            }
            IdentityOp::Accredit {
                parent,
                child,
                role,
                controller,
                scope,
                expires_at,
            } => {
                let p = tx.issuer(&parent)?;
                controlled_by(&p, sender)?;
                in_force(&p, height)?;
                if !p.role.may_accredit() {
                    return Err(OpError::RoleNotAllowed {
                        reason: "issuers may not accredit",
                    }
                    .into());
                }
                if role == Role::Root {
                    return Err(OpError::RoleNotAllowed {
                        reason: "roots are pinned by governance",
                    }
                    .into());
                }
                scope.check_within(&p.scope).map_err(OpError::from)?;
                match (p.expires_at, expires_at) {
                    (Some(_), None) => {
                        return Err(OpError::InvalidRecord {
                            reason: "grant outlives its parent's",
                        }
                        .into())
                    }
                    (Some(pe), Some(ce)) if ce > pe => {
                        return Err(OpError::InvalidRecord {
                            reason: "grant outlives its parent's",
                        }
                        .into())
                    }
                    _ => {}
                }
                suite_key(self.suite(), "controller key", &controller)?;
                admissible_key(&controller)?;
                let key = issuer_key(&child);
                if tx.get(&key)?.is_some() {
                    return Err(OpError::AlreadyExists { what: "issuer" }.into());
                }
                let record = IssuerRecord {
                    id: child,
                    role,
                    parent: Some(parent),
                    controller,
                    scope,
                    granted_at: height,
                    expires_at,
                    status: GrantStatus::Active,
                    keys: Vec::new(),
                };
                tx.put(key, &record);
            }
            IdentityOp::RevokeAccreditation { actor, child } => {
                let mut c = tx.issuer(&child)?;
                match &actor {
                    None if self.is_governance(sender) => {}
                    Some(a) if c.parent.as_ref() == Some(a) => {
                        controlled_by(&tx.issuer(a)?, sender)?
                    }
                    _ => {
                        return Err(OpError::Unauthorized {
                            reason: "only the parent or governance revokes",
                        }
                        .into())
                    }
                }
                if c.status == GrantStatus::Active {
                    c.status = GrantStatus::Revoked { at: height };
                }
                tx.put(issuer_key(&child), &c);
            }
            IdentityOp::AddKey {
                issuer,
                key_id,
                public_key,
            } => {
                let mut r = tx.issuer(&issuer)?;
                controlled_by(&r, sender)?;
                in_force(&r, height)?;
                if r.role != Role::Issuer {
                    return Err(OpError::RoleNotAllowed {
                        reason: "only issuers hold credential keys",
                    }
                    .into());
                }
                suite_key(self.suite(), "credential key", &public_key)?;
                admissible_key(&public_key)?;
                if r.key(key_id).is_some() {
                    return Err(OpError::AlreadyExists { what: "key" }.into());
                }
                if r.keys.len() >= MAX_ISSUER_KEYS {
                    return Err(OpError::InvalidRecord {
                        reason: "too many keys",
                    }
                    .into());
                }
                let at = r.keys.partition_point(|k| k.id < key_id);
                r.keys.insert(
                    at,
                    IssuerKey {
                        id: key_id,
                        public_key,
                        valid_from: height,
                        state: KeyState::Active,
                    },
                );
                tx.put(issuer_key(&issuer), &r);
            }
            IdentityOp::RotateKey { issuer, key_id } => {
                let mut r = tx.issuer(&issuer)?;
                controlled_by(&r, sender)?;
                let k = r.key_mut(key_id).ok_or_else(|| OpError::UnknownKey {
                    issuer: issuer.clone(),
                    key_id,
                })?;
                if k.state != KeyState::Active {
                    return Err(OpError::KeyTransition.into());
                }
                k.state = KeyState::Rotated { at: height };
                tx.put(issuer_key(&issuer), &r);
            }
            IdentityOp::ReportCompromise {
                actor,
                issuer,
                key_id,
            } => {
                let mut r = tx.issuer(&issuer)?;
                match &actor {
                    None if self.is_governance(sender) => {}
                    Some(a) if *a == issuer => controlled_by(&r, sender)?,
                    Some(a) if r.parent.as_ref() == Some(a) => {
                        controlled_by(&tx.issuer(a)?, sender)?
                    }
                    _ => {
                        return Err(OpError::Unauthorized {
                            reason: "only the issuer, its parent or governance",
                        }
                        .into())
                    }
                }
                let k = r.key_mut(key_id).ok_or_else(|| OpError::UnknownKey {
                    issuer: issuer.clone(),
                    key_id,
                })?;
                if matches!(k.state, KeyState::Compromised { .. }) {
                    return Err(OpError::KeyTransition.into());
                }
                k.state = KeyState::Compromised { since: height };
                tx.put(issuer_key(&issuer), &r);
            }
            IdentityOp::PublishSchema { publisher, schema } => {
                let p = tx.issuer(&publisher)?;
                controlled_by(&p, sender)?;
                in_force(&p, height)?;
                let key = schema_key(&schema.id(self.suite()));
                if tx.get(&key)?.is_some() {
                    return Err(OpError::AlreadyExists { what: "schema" }.into());
                }
                tx.put(
                    key,
                    &SchemaRecord {
                        schema,
                        publisher,
                        lifecycle: Lifecycle::Active,
                        published_at: height,
                    },
                );
            }
            IdentityOp::SetSchemaLifecycle {
                publisher,
                schema,
                lifecycle,
            } => {
                let key = schema_key(&schema);
                let mut rec: SchemaRecord = tx
                    .read(&key, MAX_SCHEMA_RECORD_LEN)?
                    .ok_or(OpError::UnknownSchema { id: schema })?;
                if rec.publisher != publisher {
                    return Err(OpError::Unauthorized {
                        reason: "only the publisher changes a schema",
                    }
                    .into());
                }
                controlled_by(&tx.issuer(&publisher)?, sender)?;
                if !rec.lifecycle.may_become(lifecycle) {
                    return Err(OpError::LifecycleTransition.into());
                }
                rec.lifecycle = lifecycle;
                tx.put(key, &rec);
            }
            IdentityOp::CreateStatusList {
                issuer,
                list,
                capacity,
            } => {
                let r = tx.issuer(&issuer)?;
                controlled_by(&r, sender)?;
                in_force(&r, height)?;
                if r.role != Role::Issuer {
                    return Err(OpError::RoleNotAllowed {
                        reason: "only issuers own status lists",
                    }
                    .into());
                }
                if !is_valid_capacity(capacity) {
                    return Err(OpError::InvalidRecord {
                        reason: "capacity must be a multiple of 1024 in 131072..=1048576",
                    }
                    .into());
                }
                if tx.get(&status_page_key(list, 0))?.is_some() {
                    return Err(OpError::AlreadyExists {
                        what: "status list",
                    }
                    .into());
                }
                for page in 0..capacity / ENTRIES_PER_PAGE {
                    tx.put(
                        status_page_key(list, page),
                        &StatusPage::new(list, issuer.clone(), capacity, page),
                    );
                }
            }
            IdentityOp::UpdateStatus {
                issuer,
                list,
                updates,
            } => {
                let r = tx.issuer(&issuer)?;
                controlled_by(&r, sender)?;
                if updates.is_empty() || updates.windows(2).any(|w| w[0].index >= w[1].index) {
                    return Err(OpError::StatusUpdate {
                        reason: "updates must be non-empty and strictly sorted".into(),
                    }
                    .into());
                }
                let first: StatusPage = tx
                    .read(&status_page_key(list, 0), MAX_STATUS_PAGE_LEN)?
                    .ok_or(OpError::UnknownStatusList { list })?;
                if first.owner != issuer {
                    return Err(OpError::Unauthorized {
                        reason: "an issuer writes only its own status lists",
                    }
                    .into());
                }
                let mut i = 0;
                while i < updates.len() {
                    let page_no = StatusPage::page_of(updates[i].index);
                    let key = status_page_key(list, page_no);
                    let mut page: StatusPage = match tx.read(&key, MAX_STATUS_PAGE_LEN)? {
                        Some(p) => p,
                        None => {
                            return Err(OpError::StatusUpdate {
                                reason: format!("index {} out of range", updates[i].index),
                            }
                            .into())
                        }
                    };
                    while i < updates.len() && StatusPage::page_of(updates[i].index) == page_no {
                        page.set(updates[i].index, updates[i].status).map_err(|e| {
                            OpError::StatusUpdate {
                                reason: e.to_string(),
                            }
                        })?;
                        i += 1;
                    }
                    tx.put(key, &page);
                }
            }
        }
        Ok(())
    }

    fn write_genesis(&self, state: &mut StateOverlay<'_>) -> Result<(), StateError> {
        if state.get(GENESIS_KEY)?.is_some() {
            return Ok(());
        }
        for root in &self.genesis.roots {
            state.put(issuer_key(&root.id), root.to_bytes());
        }
        state.put(GENESIS_KEY.to_vec(), vec![1]);
        Ok(())
    }
}

impl Application for IdentityApp {
    fn name(&self) -> &str {
        "identity"
    }

    fn check_tx(&self, state: &dyn StateView, tx: &Transaction) -> Result<(), TxRejection> {
        IdentityOp::decode(tx.payload()).map_err(|e| TxRejection::InvalidPayload {
            reason: e.to_string(),
        })?;
        self.suite()
            .check_key(tx.sender())
            .map_err(|e| TxRejection::Unauthorized {
                reason: e.to_string(),
            })?;
        NonceTracker::check_not_replayed(state, tx)
    }

    fn execute_block(
        &self,
        ctx: &BlockContext,
        state: &mut StateOverlay<'_>,
        txs: &[Transaction],
    ) -> Result<Vec<Receipt>, ExecutionError> {
        if ctx.suite != self.suite() {
            return Err(ExecutionError::Fault {
                reason: format!(
                    "identity application configured for {} on a {} chain",
                    self.suite(),
                    ctx.suite
                ),
            });
        }
        self.write_genesis(state)?;
        let mut receipts = Vec::with_capacity(txs.len());
        for t in txs {
            let outcome = match NonceTracker::check_and_advance(state, t) {
                Err(TxRejection::BadNonce { expected, got }) => {
                    Err(OpError::BadNonce { expected, got })
                }
                Err(TxRejection::State(e)) => return Err(e.into()),
                Err(_) => Err(OpError::Unauthorized {
                    reason: "nonce check failed",
                }),
                Ok(()) => match IdentityOp::decode(t.payload()) {
                    Err(e) => Err(OpError::Malformed(e)),
                    Ok(op) => {
                        let mut staged = Tx {
                            state,
                            writes: BTreeMap::new(),
                        };
                        match self.apply(&mut staged, t.sender(), ctx.height, op) {
                            Ok(()) => {
                                let writes = staged.writes;
                                for (k, v) in writes {
                                    state.put(k, v);
                                }
                                Ok(())
                            }
                            Err(Failure::Op(e)) => Err(e),
                            Err(Failure::State(e)) => return Err(e.into()),
                        }
                    }
                },
            };
            receipts.push(match outcome {
                Ok(()) => Receipt::ok(t.id()),
                Err(e) => Receipt {
                    tx_id: t.id(),
                    code: e.code(),
                    data: e.to_string().into_bytes(),
                },
            });
        }
        Ok(receipts)
    }

    fn query_key(&self, request: &[u8]) -> Result<Vec<u8>, QueryError> {
        let q: IdentityQuery = decode_exact(request, 256).map_err(|e| QueryError::BadRequest {
            reason: e.to_string(),
        })?;
        Ok(match q {
            IdentityQuery::Issuer(id) => issuer_key(&id),
            IdentityQuery::Schema(id) => schema_key(&id),
            IdentityQuery::StatusPage(list, page) => status_page_key(list, page),
        })
    }
}
