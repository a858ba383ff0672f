//! The service-hall verifier.
//!
//! [`Verifier::verify`] checks a presentation against a header that the
//! hall's [`LightClient`] has verified and the presentation's stapled state
//! proofs, under the hall's [`Policy`]. It returns the verified claims or
//! exactly one typed [`Rejection`], and in both cases appends a record to
//! its hash-chained [`AuditLog`] that holds no personal data (no claim
//! value, holder key, status index or credential digest).
//!
//! # Order of checks
//! 1. format: size limit, presentation/credential version, crypto suite
//!    (before anything else is decoded: no downgrade), then the strict decode;
//! 2. header: verified by the light client, and recent enough
//!    (`max_status_age_ms`); the credential's suite is the header's (the
//!    identity chain's) suite ([`Rejection::ChainSuiteMismatch`]);
//! 3. schema record (proof, lifecycle, accepted by policy);
//! 4. issuer chain to a pinned, accepted root: each record proved, in force,
//!    within its parent's scope, no cycle, at most [`MAX_CHAIN_LEN`] long;
//!    the issuer covers the schema and jurisdiction;
//! 5. the signing key's lifetime at the credential's issuance height;
//! 6. the status page (proof, owner, range, entry);
//! 7. validity window, jurisdiction against the hall's;
//! 8. claims and disclosures against the schema and policy;
//! 9. holder binding: present if required, audience, nonce, time skew;
//! 10. the issuer and holder signatures, verified together as one batch
//!     (the same accepted set as single verification, by core's contract).
//!
//! State proofs are checked against keys the verifier derives itself, so a
//! proof of any other key fails.
//!
//! # Crypto suites
//! Everything is checked under the suite of the chain the proofs come from
//! (the verified header's `suite`), which the credential must name: state
//! proofs (by the light client), the schema id, the disclosure digests and
//! the issuer's and holder's signing messages. The issuer key on chain and
//! the holder key must be of that suite's algorithm
//! ([`Rejection::IssuerKeySuite`], [`Rejection::HolderKeySuite`]), so a
//! credential hashed under one suite never verifies under the other. The
//! hall's own audit log is hashed under [`Policy::audit_suite`].

use std::collections::{BTreeMap, BTreeSet};

use govchain_core::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::{verify_batch, BatchItem, CryptoSuite, SuiteMismatch};
use govchain_core::hash::Hash;
use govchain_core::light::{LightClient, LightClientError};
use govchain_core::types::{Height, Timestamp};

use crate::credential::CREDENTIAL_VERSION;
use crate::domain::IdDomain;
use crate::ids::{HallId, IssuerId, KeyId, Region, SchemaId, StatusListId};
use crate::issuer::{
    IssuerRecord, KeyUseError, Role, ScopeError, MAX_CHAIN_LEN, MAX_ISSUER_RECORD_LEN,
};
use crate::presentation::{
    Nonce, Presentation, StapledProof, MAX_PRESENTATION_LEN, PRESENTATION_VERSION,
};
use crate::schema::{ClaimValue, DisclosurePolicy, Lifecycle, SchemaRecord, MAX_SCHEMA_RECORD_LEN};
use crate::state::{issuer_key, schema_key, status_page_key};
use crate::status::{EntryStatus, StatusPage, ENTRIES_PER_PAGE, MAX_STATUS_PAGE_LEN};

/// A hall's verification policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The hall's id: the audience presentations must name.
    pub hall: HallId,
    /// The hall's own region.
    pub region: Region,
    /// Credential jurisdictions the hall serves (each covers its subregions).
    pub accepted_jurisdictions: Vec<Region>,
    /// Roots the hall trusts.
    pub accepted_roots: Vec<IssuerId>,
    /// Schemas the hall accepts.
    pub accepted_schemas: Vec<SchemaId>,
    /// Claims that must be disclosed (or be always-disclosed).
    pub required_claims: Vec<String>,
    /// Whether a holder binding is required.
    pub require_holder_binding: bool,
    /// Oldest acceptable proof header, as `now - header.time`, in ms.
    pub max_status_age_ms: u64,
    /// Largest acceptable `|binding.time - now|`, in ms.
    pub max_binding_skew_ms: u64,
    /// Crypto suites accepted.
    pub accepted_suites: Vec<CryptoSuite>,
    /// The suite the hall's audit log is hash-chained under (the hall's own
    /// record, not a chain's).
    pub audit_suite: CryptoSuite,
    /// Whether credentials of deprecated schemas are accepted.
    pub accept_deprecated_schemas: bool,
}

/// Why a policy is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A list that must not be empty is empty.
    #[error("policy field {field} must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
}

impl Policy {
    /// A policy with the defaults: holder binding required, 10-minute status
    /// age, 2-minute binding skew, Ed25519 + BLAKE3 only, deprecated schemas
    /// accepted, the hall's own region as the only jurisdiction.
    pub fn new(
        hall: HallId,
        region: Region,
        accepted_roots: Vec<IssuerId>,
        accepted_schemas: Vec<SchemaId>,
    ) -> Self {
        Policy {
            hall,
            accepted_jurisdictions: vec![region.clone()],
            region,
            accepted_roots,
            accepted_schemas,
            required_claims: Vec::new(),
            require_holder_binding: true,
            max_status_age_ms: 10 * 60 * 1000,
            max_binding_skew_ms: 2 * 60 * 1000,
            accepted_suites: vec![CryptoSuite::Ed25519Blake3],
            audit_suite: CryptoSuite::Ed25519Blake3,
            accept_deprecated_schemas: true,
        }
    }

    /// This policy accepting only `suite` and hash-chaining its audit log
    /// under it: a hall of an sm2-sm3 identity chain uses
    /// `Policy::new(..).with_suite(CryptoSuite::Sm2Sm3)`.
    pub fn with_suite(mut self, suite: CryptoSuite) -> Self {
        self.accepted_suites = vec![suite];
        self.audit_suite = suite;
        self
    }

    /// Checks the policy can accept anything at all.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, empty) in [
            (
                "accepted_jurisdictions",
                self.accepted_jurisdictions.is_empty(),
            ),
            ("accepted_roots", self.accepted_roots.is_empty()),
            ("accepted_schemas", self.accepted_schemas.is_empty()),
            ("accepted_suites", self.accepted_suites.is_empty()),
        ] {
            if empty {
                return Err(PolicyError::Empty { field });
            }
        }
        Ok(())
    }
}

/// Which stapled record a proof is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// The schema record.
    Schema,
    /// An issuer record of the chain.
    Issuer,
    /// The status page.
    StatusPage,
}

/// Why a presentation was rejected. Each variant has a stable
/// [`code`](Rejection::code), recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    // --- format ---
    /// The input is larger than [`MAX_PRESENTATION_LEN`].
    #[error("presentation of {len} bytes exceeds {max}")]
    TooLarge {
        /// Length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// An unknown presentation or credential format version.
    #[error("unsupported {what} version {got}")]
    UnsupportedVersion {
        /// Which format.
        what: &'static str,
        /// The version found.
        got: u8,
    },
    /// A crypto suite the policy does not accept (or an unknown one).
    #[error("crypto suite {id} not accepted")]
    UnsupportedSuite {
        /// The suite id.
        id: u8,
    },
    /// The credential names another suite than the chain its proofs come
    /// from: it was hashed and signed for another chain.
    #[error("credential of suite {credential} checked against a {chain} chain")]
    ChainSuiteMismatch {
        /// The credential's suite.
        credential: CryptoSuite,
        /// The suite of the proofs' header.
        chain: CryptoSuite,
    },
    /// The bytes do not decode (includes non-canonical or small-order
    /// signatures and keys, refused by core's decoders).
    #[error("malformed presentation: {0}")]
    Malformed(#[from] DecodeError),
    // --- header and proofs ---
    /// The proofs' header is not verified by the hall's light client.
    #[error("header at height {height} is not verified")]
    HeaderNotVerified {
        /// The height.
        height: Height,
    },
    /// The proofs' header is older than the policy allows.
    #[error("status proof is {age_ms} ms old, at most {max_ms} allowed")]
    StaleProof {
        /// Age.
        age_ms: u64,
        /// Policy maximum.
        max_ms: u64,
    },
    /// A state proof does not verify against the header.
    #[error("{kind:?} state proof rejected: {source}")]
    ProofRejected {
        /// Which record.
        kind: RecordKind,
        /// The light client's reason.
        source: LightClientError,
    },
    /// A proved record does not decode.
    #[error("{kind:?} record does not decode: {source}")]
    MalformedRecord {
        /// Which record.
        kind: RecordKind,
        /// Why.
        source: DecodeError,
    },
    /// A required proof is missing, or there are proofs past the root.
    #[error("stapled proofs are incomplete or excessive")]
    ProofsIncomplete,
    // --- schema ---
    /// The schema is not on chain.
    #[error("unknown schema {id}")]
    UnknownSchema {
        /// The id.
        id: SchemaId,
    },
    /// The schema was withdrawn.
    #[error("schema withdrawn")]
    SchemaWithdrawn,
    /// The schema is deprecated and the policy refuses deprecated schemas.
    #[error("schema deprecated")]
    SchemaDeprecated,
    /// The policy does not accept this schema.
    #[error("schema {id} not accepted by this hall")]
    SchemaNotAccepted {
        /// The id.
        id: SchemaId,
    },
    // --- issuers ---
    /// The issuer (or an ancestor) is not on chain.
    #[error("unknown issuer {id}")]
    UnknownIssuer {
        /// The id.
        id: IssuerId,
    },
    /// The credential's issuer is not an issuer (a root or accreditor).
    #[error("{id} may not issue credentials")]
    NotAnIssuer {
        /// The id.
        id: IssuerId,
    },
    /// The issuer's grant does not cover the schema.
    #[error("issuer {id} is not accredited for the schema")]
    SchemaNotGranted {
        /// The issuer.
        id: IssuerId,
    },
    /// The issuer's grant does not cover the credential's jurisdiction.
    #[error("issuer {id} is not accredited for jurisdiction {region}")]
    JurisdictionNotGranted {
        /// The issuer.
        id: IssuerId,
        /// The credential's jurisdiction.
        region: Region,
    },
    /// A grant in the chain was revoked.
    #[error("grant of {id} revoked")]
    GrantRevoked {
        /// The member.
        id: IssuerId,
    },
    /// A grant in the chain has expired.
    #[error("grant of {id} expired")]
    GrantExpired {
        /// The member.
        id: IssuerId,
    },
    /// The chain loops.
    #[error("accreditation cycle at {id}")]
    AccreditationCycle {
        /// The repeated member.
        id: IssuerId,
    },
    /// The chain is longer than [`MAX_CHAIN_LEN`], or a depth limit is broken.
    #[error("accreditation too deep at {id}")]
    DelegationTooDeep {
        /// The member.
        id: IssuerId,
    },
    /// A member's jurisdictions escape its parent's.
    #[error("jurisdiction escalation at {id}")]
    JurisdictionEscalation {
        /// The member.
        id: IssuerId,
    },
    /// A member's schemas escape its parent's, or an issuer has children.
    #[error("scope escalation at {id}")]
    ScopeEscalation {
        /// The member.
        id: IssuerId,
    },
    /// The chain ends at a parentless record that is not a root.
    #[error("{id} has no parent but is not a pinned root")]
    UnpinnedRoot {
        /// The member.
        id: IssuerId,
    },
    /// The chain ends at a root the hall does not trust.
    #[error("root {id} not accepted by this hall")]
    RootNotAccepted {
        /// The root.
        id: IssuerId,
    },
    // --- keys ---
    /// The issuer has no such key.
    #[error("unknown key {key_id}")]
    UnknownKey {
        /// The key.
        key_id: KeyId,
    },
    /// The key was rotated before the credential's issuance height.
    #[error("key retired at {at}, credential issued at {issued}")]
    KeyRetired {
        /// Rotation height.
        at: Height,
        /// Issuance height.
        issued: Height,
    },
    /// The key was reported compromised.
    #[error("key compromised")]
    KeyCompromised,
    /// The credential claims issuance before the key existed.
    #[error("key not valid at the issuance height")]
    KeyNotYetValid,
    /// The issuer key on chain is of another algorithm than the suite.
    #[error("issuer key: {mismatch}")]
    IssuerKeySuite {
        /// The suite and the key's algorithm.
        mismatch: SuiteMismatch,
    },
    // --- status ---
    /// No such status list (or page).
    #[error("unknown status list {list}")]
    UnknownStatusList {
        /// The list.
        list: StatusListId,
    },
    /// The status list belongs to another issuer.
    #[error("status list owned by {owner}, not the issuer")]
    StatusListNotOwned {
        /// The owner.
        owner: IssuerId,
    },
    /// The index is beyond the list.
    #[error("status index {index} out of range ({capacity})")]
    StatusIndexOutOfRange {
        /// The index.
        index: u32,
        /// The capacity.
        capacity: u32,
    },
    /// The stapled page is not the one that holds the index.
    #[error("stapled status page does not hold the credential's entry")]
    WrongStatusPage,
    /// Revoked.
    #[error("credential revoked")]
    Revoked,
    /// Suspended.
    #[error("credential suspended")]
    Suspended,
    // --- validity and scope ---
    /// Not valid yet.
    #[error("credential not valid yet")]
    NotYetValid,
    /// Expired (the end of the window is exclusive).
    #[error("credential expired")]
    Expired,
    /// The window is empty or longer than the schema allows.
    #[error("validity window invalid or longer than the schema allows")]
    ValidityTooLong,
    /// The credential's jurisdiction is not one the hall serves.
    #[error("credential jurisdiction {region} outside the hall's")]
    OutOfJurisdiction {
        /// The credential's jurisdiction.
        region: Region,
    },
    // --- claims ---
    /// A disclosure whose digest the credential does not contain (tampered,
    /// or from another credential).
    #[error("disclosure {index} is not committed in the credential")]
    DisclosureNotCommitted {
        /// Position in the presentation.
        index: usize,
    },
    /// Credential digests not strictly sorted or repeated.
    #[error("credential digests are duplicated or unsorted")]
    DuplicateDigest,
    /// A claim name appears twice (in clear or disclosed).
    #[error("claim {name:?} appears twice")]
    DuplicateClaim {
        /// The name.
        name: String,
    },
    /// A claim the schema does not have.
    #[error("claim {name:?} not in the schema")]
    UnknownClaim {
        /// The name.
        name: String,
    },
    /// A claim value of the wrong type or length.
    #[error("claim {name:?} has the wrong type")]
    WrongClaimType {
        /// The name.
        name: String,
    },
    /// A claim disclosed in the wrong way for the schema's policy.
    #[error("claim {name:?} breaks the schema's disclosure policy")]
    DisclosurePolicyViolation {
        /// The name.
        name: String,
    },
    /// A claim the hall requires (or an always-disclosed required one) is
    /// missing.
    #[error("required claim {name:?} missing")]
    MissingRequiredClaim {
        /// The name.
        name: String,
    },
    // --- binding ---
    /// Binding required but absent (or the credential has no holder key).
    #[error("holder binding required")]
    HolderBindingMissing,
    /// The binding names another hall.
    #[error("presentation is for another audience")]
    WrongAudience,
    /// The nonce was never issued by this hall (or expired).
    #[error("unknown nonce")]
    UnknownNonce,
    /// The nonce was already used.
    #[error("nonce reused")]
    NonceReused,
    /// The binding time is too far from the hall's clock.
    #[error("binding time off by {skew_ms} ms")]
    BindingTimeSkew {
        /// The skew.
        skew_ms: u64,
    },
    /// The credential's holder key is of another algorithm than its suite.
    #[error("holder key: {mismatch}")]
    HolderKeySuite {
        /// The suite and the key's algorithm.
        mismatch: SuiteMismatch,
    },
    // --- signatures ---
    /// The issuer's signature does not verify.
    #[error("issuer signature invalid")]
    IssuerSignatureInvalid,
    /// The holder's binding signature does not verify (wrong key, or
    /// anything presented changed after binding).
    #[error("holder binding signature invalid")]
    HolderSignatureInvalid,
}

impl Rejection {
    /// The stable code recorded in the audit log.
    pub fn code(&self) -> u16 {
        use Rejection::*;
        match self {
            TooLarge { .. } => 1,
            UnsupportedVersion { .. } => 2,
            UnsupportedSuite { .. } => 3,
            ChainSuiteMismatch { .. } => 5,
            Malformed(_) => 4,
            HeaderNotVerified { .. } => 10,
            StaleProof { .. } => 11,
            ProofRejected { .. } => 12,
            MalformedRecord { .. } => 13,
            ProofsIncomplete => 14,
            UnknownSchema { .. } => 20,
            SchemaWithdrawn => 21,
            SchemaDeprecated => 22,
            SchemaNotAccepted { .. } => 23,
            UnknownIssuer { .. } => 30,
            NotAnIssuer { .. } => 31,
            SchemaNotGranted { .. } => 32,
            JurisdictionNotGranted { .. } => 33,
            GrantRevoked { .. } => 34,
            GrantExpired { .. } => 35,
            AccreditationCycle { .. } => 36,
            DelegationTooDeep { .. } => 37,
            JurisdictionEscalation { .. } => 38,
            ScopeEscalation { .. } => 39,
            UnpinnedRoot { .. } => 40,
            RootNotAccepted { .. } => 41,
            UnknownKey { .. } => 50,
            KeyRetired { .. } => 51,
            KeyCompromised => 52,
            KeyNotYetValid => 53,
            IssuerKeySuite { .. } => 54,
            UnknownStatusList { .. } => 60,
            StatusListNotOwned { .. } => 61,
            StatusIndexOutOfRange { .. } => 62,
            WrongStatusPage => 63,
            Revoked => 64,
            Suspended => 65,
            NotYetValid => 70,
            Expired => 71,
            ValidityTooLong => 72,
            OutOfJurisdiction { .. } => 73,
            DisclosureNotCommitted { .. } => 80,
            DuplicateDigest => 81,
            DuplicateClaim { .. } => 82,
            UnknownClaim { .. } => 83,
            WrongClaimType { .. } => 84,
            DisclosurePolicyViolation { .. } => 85,
            MissingRequiredClaim { .. } => 86,
            HolderBindingMissing => 90,
            WrongAudience => 91,
            UnknownNonce => 92,
            NonceReused => 93,
            BindingTimeSkew { .. } => 94,
            HolderKeySuite { .. } => 95,
            IssuerSignatureInvalid => 100,
            HolderSignatureInvalid => 101,
        }
    }
}

/// A verified presentation: what the hall may rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPresentation {
    /// The schema.
    pub schema: SchemaId,
    /// The issuer.
    pub issuer: IssuerId,
    /// The root the chain ends at.
    pub root: IssuerId,
    /// The credential's jurisdiction.
    pub jurisdiction: Region,
    /// Always-disclosed and disclosed claims, sorted by name.
    pub claims: BTreeMap<String, ClaimValue>,
    /// Whether the holder proved possession of the holder key.
    pub holder_bound: bool,
    /// The header height the trust material was proved at.
    pub proof_height: Height,
    /// The audit record appended for this verification.
    pub audit: AuditRecord,
}

/// The outcome recorded in an audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Accepted.
    Accepted,
    /// Rejected with a [`Rejection::code`].
    Rejected {
        /// The code.
        code: u16,
    },
}

/// One verification, as the hall records it: no claim value, holder key,
/// status index or digest — only public trust material and a commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Hash of the previous record ([`Hash::ZERO`] for the first).
    pub prev: Hash,
    /// The hall's clock.
    pub time: Timestamp,
    /// The hall.
    pub hall: HallId,
    /// Accepted or the rejection code.
    pub outcome: AuditOutcome,
    /// Schema, when the presentation decoded.
    pub schema: Option<SchemaId>,
    /// Issuer, when the presentation decoded.
    pub issuer: Option<IssuerId>,
    /// Proof height, when the presentation decoded.
    pub proof_height: Option<Height>,
    /// The binding hash of an accepted, holder-bound presentation: a salted
    /// commitment that lets the holder later prove what was shown, and that
    /// reveals nothing by itself.
    pub presentation: Option<Hash>,
}

impl AuditRecord {
    /// The record's hash under `suite` (the log's), which the next record
    /// links to.
    pub fn hash(&self, suite: CryptoSuite) -> Hash {
        IdDomain::Audit.hash(suite, &[&self.to_bytes()])
    }
}

impl Encode for AuditRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.seq.encode_to(out);
        self.prev.encode_to(out);
        self.time.encode_to(out);
        self.hall.encode_to(out);
        match self.outcome {
            AuditOutcome::Accepted => out.push(0),
            AuditOutcome::Rejected { code } => {
                out.push(1);
                code.encode_to(out);
            }
        }
        self.schema.encode_to(out);
        self.issuer.encode_to(out);
        self.proof_height.encode_to(out);
        self.presentation.encode_to(out);
    }
}

impl Decode for AuditRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuditRecord {
            seq: u64::decode_from(r)?,
            prev: Hash::decode_from(r)?,
            time: Timestamp::decode_from(r)?,
            hall: HallId::decode_from(r)?,
            outcome: match r.u8()? {
                0 => AuditOutcome::Accepted,
                1 => AuditOutcome::Rejected {
                    code: u16::decode_from(r)?,
                },
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "audit outcome",
                        tag,
                    })
                }
            },
            schema: Option::decode_from(r)?,
            issuer: Option::decode_from(r)?,
            proof_height: Option::decode_from(r)?,
            presentation: Option::decode_from(r)?,
        })
    }
}

/// Why an audit log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A record's sequence number or back-link is wrong.
    #[error("audit record {seq} breaks the chain")]
    BrokenChain {
        /// The record's position.
        seq: u64,
    },
}

/// A hash-chained, append-only log of verifications, hashed under one
/// crypto suite (the default log under ed25519-blake3).
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    suite: CryptoSuite,
    records: Vec<AuditRecord>,
}

impl AuditLog {
    /// An empty log hash-chained under `suite`.
    pub fn new(suite: CryptoSuite) -> Self {
        AuditLog {
            suite,
            records: Vec::new(),
        }
    }

    /// The suite the log is hash-chained under.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The records.
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// The hash of the last record ([`Hash::ZERO`] when empty).
    pub fn head(&self) -> Hash {
        self.records
            .last()
            .map_or(Hash::ZERO, |r| r.hash(self.suite))
    }

    fn append(&mut self, mut record: AuditRecord) -> AuditRecord {
        record.seq = self.records.len() as u64;
        record.prev = self.head();
        self.records.push(record.clone());
        record
    }

    /// Checks that `records` form an unbroken chain from the start, hashed
    /// under `suite`.
    pub fn verify_chain(suite: CryptoSuite, records: &[AuditRecord]) -> Result<(), AuditError> {
        let mut prev = Hash::ZERO;
        for (i, r) in records.iter().enumerate() {
            if r.seq != i as u64 || r.prev != prev {
                return Err(AuditError::BrokenChain { seq: i as u64 });
            }
            prev = r.hash(suite);
        }
        Ok(())
    }

    /// The canonical encoding of the whole log (for export).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_seq(&self.records, &mut out);
        out
    }
}

/// Most outstanding nonces a verifier keeps; the oldest is dropped beyond.
pub const MAX_OUTSTANDING_NONCES: usize = 65_536;

/// A service hall's verifier: policy, nonce book and audit log.
#[derive(Debug)]
pub struct Verifier {
    policy: Policy,
    outstanding: BTreeMap<Nonce, Timestamp>,
    used: BTreeSet<Nonce>,
    audit: AuditLog,
}

/// What the audit record can learn from a presentation that decoded.
#[derive(Default)]
struct Seen {
    schema: Option<SchemaId>,
    issuer: Option<IssuerId>,
    height: Option<Height>,
}

fn proved<T: Decode>(
    client: &LightClient,
    height: Height,
    key: &[u8],
    p: &StapledProof,
    kind: RecordKind,
    limit: usize,
) -> Result<Option<T>, Rejection> {
    client
        .verify_state(height, key, p.value.as_deref(), &p.proof)
        .map_err(|source| match source {
            LightClientError::HeaderNotVerified { height } => {
                Rejection::HeaderNotVerified { height }
            }
            source => Rejection::ProofRejected { kind, source },
        })?;
    match &p.value {
        None => Ok(None),
        Some(v) => decode_exact(v, limit)
            .map(Some)
            .map_err(|source| Rejection::MalformedRecord { kind, source }),
    }
}

impl Verifier {
    /// A verifier with `policy`.
    pub fn new(policy: Policy) -> Result<Self, PolicyError> {
        policy.validate()?;
        let audit = AuditLog::new(policy.audit_suite);
        Ok(Verifier {
            policy,
            outstanding: BTreeMap::new(),
            used: BTreeSet::new(),
            audit,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Issues a fresh single-use nonce for a holder to bind to.
    pub fn challenge<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
        now: Timestamp,
    ) -> Nonce {
        let mut n = [0u8; 32];
        rng.fill_bytes(&mut n);
        let nonce = Nonce(n);
        if self.outstanding.len() >= MAX_OUTSTANDING_NONCES {
            if let Some(oldest) = self
                .outstanding
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(n, _)| *n)
            {
                self.outstanding.remove(&oldest);
            }
        }
        self.outstanding.insert(nonce, now);
        nonce
    }

    /// Verifies encoded presentation `bytes` at the hall's time `now`
    /// against headers verified by `client`, and appends an audit record.
    pub fn verify(
        &mut self,
        client: &LightClient,
        bytes: &[u8],
        now: Timestamp,
    ) -> Result<VerifiedPresentation, Rejection> {
        let mut seen = Seen::default();
        let result = self.check_bytes(client, bytes, now, &mut seen);
        self.finish(result, seen, now)
    }

    /// Verifies an already decoded presentation (the format checks of
    /// [`verify`](Self::verify) on the version and suite still apply).
    pub fn verify_presentation(
        &mut self,
        client: &LightClient,
        p: &Presentation,
        now: Timestamp,
    ) -> Result<VerifiedPresentation, Rejection> {
        let mut seen = Seen::default();
        let result = self
            .check_suite(p.credential.body.suite.id())
            .and_then(|()| self.check(client, p, now, &mut seen));
        self.finish(result, seen, now)
    }

    fn finish(
        &mut self,
        result: Result<(VerifiedPresentation, Option<Nonce>), Rejection>,
        seen: Seen,
        now: Timestamp,
    ) -> Result<VerifiedPresentation, Rejection> {
        let mut record = AuditRecord {
            seq: 0,
            prev: Hash::ZERO,
            time: now,
            hall: self.policy.hall.clone(),
            outcome: AuditOutcome::Accepted,
            schema: seen.schema,
            issuer: seen.issuer,
            proof_height: seen.height,
            presentation: None,
        };
        match result {
            Ok((mut v, nonce)) => {
                if let Some(n) = nonce {
                    self.outstanding.remove(&n);
                    self.used.insert(n);
                }
                record.presentation = v.audit.presentation;
                v.audit = self.audit.append(record);
                Ok(v)
            }
            Err(e) => {
                record.outcome = AuditOutcome::Rejected { code: e.code() };
                self.audit.append(record);
                Err(e)
            }
        }
    }

    fn check_suite(&self, id: u8) -> Result<(), Rejection> {
        if self.policy.accepted_suites.iter().any(|s| s.id() == id) {
            Ok(())
        } else {
            Err(Rejection::UnsupportedSuite { id })
        }
    }

    fn check_bytes(
        &self,
        client: &LightClient,
        bytes: &[u8],
        now: Timestamp,
        seen: &mut Seen,
    ) -> Result<(VerifiedPresentation, Option<Nonce>), Rejection> {
        if bytes.len() > MAX_PRESENTATION_LEN {
            return Err(Rejection::TooLarge {
                len: bytes.len(),
                max: MAX_PRESENTATION_LEN,
            });
        }
        // Format bytes first: presentation version, credential version, suite.
        if let Some(&v) = bytes.first() {
            if v != PRESENTATION_VERSION {
                return Err(Rejection::UnsupportedVersion {
                    what: "presentation",
                    got: v,
                });
            }
        }
        if let Some(&v) = bytes.get(1) {
            if v != CREDENTIAL_VERSION {
                return Err(Rejection::UnsupportedVersion {
                    what: "credential",
                    got: v,
                });
            }
        }
        if let Some(&s) = bytes.get(2) {
            self.check_suite(s)?;
        }
        let p = Presentation::decode(bytes)?;
        self.check(client, &p, now, seen)
    }

    fn check(
        &self,
        client: &LightClient,
        p: &Presentation,
        now: Timestamp,
        seen: &mut Seen,
    ) -> Result<(VerifiedPresentation, Option<Nonce>), Rejection> {
        let body = &p.credential.body;
        let policy = &self.policy;
        let height = p.proofs.height;
        seen.schema = Some(body.schema);
        seen.issuer = Some(body.issuer.clone());
        seen.height = Some(height);

        // 2. Header.
        let header = client
            .header(height)
            .map_err(|_| Rejection::HeaderNotVerified { height })?;
        let age_ms = now.get().saturating_sub(header.time.get());
        if age_ms > policy.max_status_age_ms {
            return Err(Rejection::StaleProof {
                age_ms,
                max_ms: policy.max_status_age_ms,
            });
        }
        if body.suite != header.suite {
            return Err(Rejection::ChainSuiteMismatch {
                credential: body.suite,
                chain: header.suite,
            });
        }
        let suite = header.suite;

        // 3. Schema.
        let schema_rec: SchemaRecord = proved(
            client,
            height,
            &schema_key(&body.schema),
            &p.proofs.schema,
            RecordKind::Schema,
            MAX_SCHEMA_RECORD_LEN,
        )?
        .ok_or(Rejection::UnknownSchema { id: body.schema })?;
        if schema_rec.schema.id(suite) != body.schema {
            return Err(Rejection::UnknownSchema { id: body.schema });
        }
        match schema_rec.lifecycle {
            Lifecycle::Withdrawn => return Err(Rejection::SchemaWithdrawn),
            Lifecycle::Deprecated if !policy.accept_deprecated_schemas => {
                return Err(Rejection::SchemaDeprecated)
            }
            _ => {}
        }
        if !policy.accepted_schemas.contains(&body.schema) {
            return Err(Rejection::SchemaNotAccepted { id: body.schema });
        }
        let schema = &schema_rec.schema;

        // 4. Issuer chain.
        let chain = self.walk_chain(client, height, p)?;
        let issuer = &chain[0];
        if issuer.role != Role::Issuer {
            return Err(Rejection::NotAnIssuer {
                id: issuer.id.clone(),
            });
        }
        if !issuer.scope.schemas.covers(&body.schema) {
            return Err(Rejection::SchemaNotGranted {
                id: issuer.id.clone(),
            });
        }
        if !issuer.scope.covers_region(&body.jurisdiction) {
            return Err(Rejection::JurisdictionNotGranted {
                id: issuer.id.clone(),
                region: body.jurisdiction.clone(),
            });
        }
        let root = chain
            .last()
            .map(|r| r.id.clone())
            .unwrap_or_else(|| issuer.id.clone());

        // 5. Key.
        let key = issuer.key(body.key_id).ok_or(Rejection::UnknownKey {
            key_id: body.key_id,
        })?;
        key.check_use(body.issued_height).map_err(|e| match e {
            KeyUseError::Retired { at, issued } => Rejection::KeyRetired { at, issued },
            KeyUseError::Compromised { .. } => Rejection::KeyCompromised,
            _ => Rejection::KeyNotYetValid,
        })?;
        suite
            .check_key(&key.public_key)
            .map_err(|mismatch| Rejection::IssuerKeySuite { mismatch })?;
        if key.public_key.algorithm() != p.credential.signature.algorithm() {
            return Err(Rejection::IssuerSignatureInvalid);
        }

        // 6. Status.
        let list = body.status.list;
        let page: StatusPage = proved(
            client,
            height,
            &status_page_key(list, p.proofs.status_page),
            &p.proofs.status,
            RecordKind::StatusPage,
            MAX_STATUS_PAGE_LEN,
        )?
        .ok_or(Rejection::UnknownStatusList { list })?;
        if page.list != list || page.page != p.proofs.status_page {
            return Err(Rejection::WrongStatusPage);
        }
        if page.owner != body.issuer {
            return Err(Rejection::StatusListNotOwned {
                owner: page.owner.clone(),
            });
        }
        if body.status.index >= page.capacity {
            return Err(Rejection::StatusIndexOutOfRange {
                index: body.status.index,
                capacity: page.capacity,
            });
        }
        if body.status.index / ENTRIES_PER_PAGE != page.page {
            return Err(Rejection::WrongStatusPage);
        }
        match page.get(body.status.index) {
            Ok(EntryStatus::Valid) => {}
            Ok(EntryStatus::Revoked) => return Err(Rejection::Revoked),
            Ok(EntryStatus::Suspended) => return Err(Rejection::Suspended),
            Err(_) => return Err(Rejection::WrongStatusPage),
        }

        // 7. Validity window and jurisdiction.
        let window = body
            .valid_until
            .get()
            .checked_sub(body.valid_from.get())
            .filter(|w| *w > 0);
        match window {
            Some(w) if w <= schema.max_validity_ms() => {}
            _ => return Err(Rejection::ValidityTooLong),
        }
        if now < body.valid_from {
            return Err(Rejection::NotYetValid);
        }
        if now >= body.valid_until {
            return Err(Rejection::Expired);
        }
        if !policy
            .accepted_jurisdictions
            .iter()
            .any(|j| j.covers(&body.jurisdiction))
        {
            return Err(Rejection::OutOfJurisdiction {
                region: body.jurisdiction.clone(),
            });
        }

        // 8. Claims.
        if body.digests.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Rejection::DuplicateDigest);
        }
        let mut claims = BTreeMap::new();
        for c in &body.claims {
            let attr = schema
                .attribute(&c.name)
                .ok_or_else(|| Rejection::UnknownClaim {
                    name: c.name.clone(),
                })?;
            if attr.disclosure != DisclosurePolicy::Always {
                return Err(Rejection::DisclosurePolicyViolation {
                    name: c.name.clone(),
                });
            }
            if !attr.ty.admits(&c.value) {
                return Err(Rejection::WrongClaimType {
                    name: c.name.clone(),
                });
            }
            if claims.insert(c.name.clone(), c.value.clone()).is_some() {
                return Err(Rejection::DuplicateClaim {
                    name: c.name.clone(),
                });
            }
        }
        for attr in schema.attributes() {
            if attr.required
                && attr.disclosure == DisclosurePolicy::Always
                && !claims.contains_key(&attr.name)
            {
                return Err(Rejection::MissingRequiredClaim {
                    name: attr.name.clone(),
                });
            }
        }
        for (index, d) in p.disclosures.iter().enumerate() {
            if body.digests.binary_search(&d.digest(suite)).is_err() {
                return Err(Rejection::DisclosureNotCommitted { index });
            }
            let attr = schema
                .attribute(&d.name)
                .ok_or_else(|| Rejection::UnknownClaim {
                    name: d.name.clone(),
                })?;
            if attr.disclosure != DisclosurePolicy::Selective {
                return Err(Rejection::DisclosurePolicyViolation {
                    name: d.name.clone(),
                });
            }
            if !attr.ty.admits(&d.value) {
                return Err(Rejection::WrongClaimType {
                    name: d.name.clone(),
                });
            }
            if claims.insert(d.name.clone(), d.value.clone()).is_some() {
                return Err(Rejection::DuplicateClaim {
                    name: d.name.clone(),
                });
            }
        }
        for name in &policy.required_claims {
            if !claims.contains_key(name) {
                return Err(Rejection::MissingRequiredClaim { name: name.clone() });
            }
        }

        // 9. Binding.
        if let Some(holder) = &body.holder {
            suite
                .check_key(holder)
                .map_err(|mismatch| Rejection::HolderKeySuite { mismatch })?;
        }
        let mut items_msgs: Vec<Hash> = vec![body.signing_message()];
        let mut nonce_used = None;
        let mut presentation_hash = None;
        let holder_key = match (&p.binding, &body.holder) {
            (None, _) if policy.require_holder_binding => {
                return Err(Rejection::HolderBindingMissing)
            }
            (None, _) => None,
            (Some(_), None) => return Err(Rejection::HolderBindingMissing),
            (Some(b), Some(holder)) => {
                if b.audience != policy.hall {
                    return Err(Rejection::WrongAudience);
                }
                if self.used.contains(&b.nonce) {
                    return Err(Rejection::NonceReused);
                }
                if !self.outstanding.contains_key(&b.nonce) {
                    return Err(Rejection::UnknownNonce);
                }
                let skew_ms = now.get().abs_diff(b.time.get());
                if skew_ms > policy.max_binding_skew_ms {
                    return Err(Rejection::BindingTimeSkew { skew_ms });
                }
                let msg = p.binding_message(&b.nonce, &b.audience, b.time);
                items_msgs.push(msg);
                nonce_used = Some(b.nonce);
                presentation_hash = Some(msg);
                Some((holder, b.signature))
            }
        };

        // 10. Signatures, as one batch.
        let mut items = vec![BatchItem::new(
            &key.public_key,
            items_msgs[0].as_bytes(),
            &p.credential.signature,
        )];
        let holder_sig;
        if let Some((holder, sig)) = holder_key {
            holder_sig = sig;
            items.push(BatchItem::new(
                holder,
                items_msgs[1].as_bytes(),
                &holder_sig,
            ));
        }
        if let Err(e) = verify_batch(&items) {
            return Err(if e.invalid_indexes().contains(&0) {
                Rejection::IssuerSignatureInvalid
            } else {
                Rejection::HolderSignatureInvalid
            });
        }

        let audit = AuditRecord {
            seq: 0,
            prev: Hash::ZERO,
            time: now,
            hall: policy.hall.clone(),
            outcome: AuditOutcome::Accepted,
            schema: Some(body.schema),
            issuer: Some(body.issuer.clone()),
            proof_height: Some(height),
            presentation: presentation_hash,
        };
        Ok((
            VerifiedPresentation {
                schema: body.schema,
                issuer: body.issuer.clone(),
                root,
                jurisdiction: body.jurisdiction.clone(),
                claims,
                holder_bound: nonce_used.is_some(),
                proof_height: height,
                audit,
            },
            nonce_used,
        ))
    }

    /// Walks and checks the accreditation chain; returns it issuer first.
    fn walk_chain(
        &self,
        client: &LightClient,
        height: Height,
        p: &Presentation,
    ) -> Result<Vec<IssuerRecord>, Rejection> {
        let mut chain: Vec<IssuerRecord> = Vec::new();
        let mut next = p.credential.body.issuer.clone();
        let mut proofs = p.proofs.issuers.iter();
        loop {
            if chain.iter().any(|r| r.id == next) {
                return Err(Rejection::AccreditationCycle { id: next });
            }
            if chain.len() >= MAX_CHAIN_LEN {
                return Err(Rejection::DelegationTooDeep { id: next });
            }
            let proof = proofs.next().ok_or(Rejection::ProofsIncomplete)?;
            let rec: IssuerRecord = proved(
                client,
                height,
                &issuer_key(&next),
                proof,
                RecordKind::Issuer,
                MAX_ISSUER_RECORD_LEN,
            )?
            .ok_or_else(|| Rejection::UnknownIssuer { id: next.clone() })?;
            if rec.id != next {
                return Err(Rejection::MalformedRecord {
                    kind: RecordKind::Issuer,
                    source: DecodeError::InvalidValue {
                        what: "issuer record",
                        reason: "id differs from its key",
                    },
                });
            }
            match rec.status {
                crate::issuer::GrantStatus::Revoked { .. } => {
                    return Err(Rejection::GrantRevoked { id: rec.id })
                }
                crate::issuer::GrantStatus::Active if !rec.in_force_at(height) => {
                    return Err(Rejection::GrantExpired { id: rec.id })
                }
                _ => {}
            }
            if let Some(child) = chain.last() {
                if !rec.role.may_accredit() {
                    return Err(Rejection::ScopeEscalation {
                        id: child.id.clone(),
                    });
                }
                child.scope.check_within(&rec.scope).map_err(|e| match e {
                    ScopeError::JurisdictionEscalation { .. } => {
                        Rejection::JurisdictionEscalation {
                            id: child.id.clone(),
                        }
                    }
                    ScopeError::DepthEscalation { .. } => Rejection::DelegationTooDeep {
                        id: child.id.clone(),
                    },
                    _ => Rejection::ScopeEscalation {
                        id: child.id.clone(),
                    },
                })?;
            }
            let parent = rec.parent.clone();
            let (role, id) = (rec.role, rec.id.clone());
            chain.push(rec);
            match parent {
                Some(parent) => {
                    if role == Role::Root {
                        return Err(Rejection::UnpinnedRoot { id });
                    }
                    next = parent;
                }
                None => {
                    if role != Role::Root {
                        return Err(Rejection::UnpinnedRoot { id });
                    }
                    if !self.policy.accepted_roots.contains(&id) {
                        return Err(Rejection::RootNotAccepted { id });
                    }
                    if proofs.next().is_some() {
                        return Err(Rejection::ProofsIncomplete);
                    }
                    return Ok(chain);
                }
            }
        }
    }
}
