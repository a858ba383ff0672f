//! The accreditation registry: roots, accreditors and issuers, their scoped
//! grants and their signing keys.
//!
//! Each member has one [`IssuerRecord`] on chain. A record is also the grant
//! its parent made: role, [`Scope`] (schemas, jurisdictions, delegation
//! depth), expiry and revocation status. Roots have no parent and are pinned
//! at genesis or by governance. A child's scope must lie within its
//! parent's ([`Scope::check_within`]) — checked by the application when the
//! grant is written *and* by every verifier when it walks the chain, so a
//! verifier does not depend on the application having been right.
//!
//! Signing keys live in the issuer's record with a height-based lifetime:
//! usable from `valid_from`; once **rotated** at height `h`, credentials
//! issued (by their `issued_height`) before `h` still verify and later ones
//! do not; once **compromised**, nothing it signed verifies, since whoever
//! holds the key can backdate `issued_height`.

use govchain_core::codec::{encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::PublicKey;
use govchain_core::types::Height;

use crate::ids::{IssuerId, KeyId, Region, SchemaId};

/// Most schemas a scope lists.
pub const MAX_SCOPE_SCHEMAS: usize = 256;
/// Most jurisdictions a scope lists.
pub const MAX_SCOPE_REGIONS: usize = 64;
/// Most signing keys an issuer record holds (active and retired).
pub const MAX_ISSUER_KEYS: usize = 16;
/// Longest accreditation chain a verifier walks (issuer to root, inclusive).
pub const MAX_CHAIN_LEN: usize = 8;
/// Largest encoded [`IssuerRecord`].
pub const MAX_ISSUER_RECORD_LEN: usize = 32 * 1024;

/// A registry member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A trust anchor, pinned at genesis or by governance.
    Root,
    /// May accredit accreditors and issuers within its scope.
    Accreditor,
    /// May sign credentials within its scope; may not accredit.
    Issuer,
}

impl Role {
    /// Whether a member of this role may accredit others.
    pub fn may_accredit(self) -> bool {
        matches!(self, Role::Root | Role::Accreditor)
    }
}

impl Encode for Role {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Role::Root => 1,
            Role::Accreditor => 2,
            Role::Issuer => 3,
        });
    }
}

impl Decode for Role {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Role::Root),
            2 => Ok(Role::Accreditor),
            3 => Ok(Role::Issuer),
            tag => Err(DecodeError::InvalidTag { what: "role", tag }),
        }
    }
}

/// Which schemas a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaScope {
    /// Every schema (roots, typically).
    Any,
    /// Exactly these, strictly sorted.
    Only(Vec<SchemaId>),
}

impl SchemaScope {
    /// Whether `id` is covered.
    pub fn covers(&self, id: &SchemaId) -> bool {
        match self {
            SchemaScope::Any => true,
            SchemaScope::Only(ids) => ids.binary_search(id).is_ok(),
        }
    }

    /// Whether every schema of `self` is covered by `parent`.
    pub fn is_within(&self, parent: &SchemaScope) -> bool {
        match (self, parent) {
            (_, SchemaScope::Any) => true,
            (SchemaScope::Any, SchemaScope::Only(_)) => false,
            (SchemaScope::Only(ids), p) => ids.iter().all(|id| p.covers(id)),
        }
    }
}

impl Encode for SchemaScope {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            SchemaScope::Any => out.push(1),
            SchemaScope::Only(ids) => {
                out.push(2);
                encode_seq(ids, out);
            }
        }
    }
}

impl Decode for SchemaScope {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(SchemaScope::Any),
            2 => {
                let ids: Vec<SchemaId> = r.seq("scope schemas", MAX_SCOPE_SCHEMAS)?;
                if ids.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(DecodeError::InvalidValue {
                        what: "scope schemas",
                        reason: "not strictly sorted",
                    });
                }
                Ok(SchemaScope::Only(ids))
            }
            tag => Err(DecodeError::InvalidTag {
                what: "schema scope",
                tag,
            }),
        }
    }
}

/// Why a scope is not within its parent's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The child lists a schema the parent does not cover.
    #[error("schema scope escalates beyond the parent's")]
    SchemaEscalation,
    /// The child lists a region no parent jurisdiction covers.
    #[error("jurisdiction {region} is outside the parent's jurisdictions")]
    JurisdictionEscalation {
        /// The first offending region.
        region: Region,
    },
    /// The child may delegate as deep as, or deeper than, the parent.
    #[error("delegation depth {child} is not below the parent's {parent}")]
    DepthEscalation {
        /// The child's remaining depth.
        child: u8,
        /// The parent's remaining depth.
        parent: u8,
    },
}

/// What a grant allows: schemas, jurisdictions and how many more levels of
/// accreditation may hang below the grantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Schemas covered.
    pub schemas: SchemaScope,
    /// Regions covered (each also covers its subregions); strictly sorted.
    pub jurisdictions: Vec<Region>,
    /// Remaining delegation depth: 0 means it may not accredit anyone; a
    /// child's depth must be strictly below its parent's.
    pub max_depth: u8,
}

impl Scope {
    /// A scope with its jurisdictions sorted and deduplicated.
    pub fn new(schemas: SchemaScope, mut jurisdictions: Vec<Region>, max_depth: u8) -> Self {
        jurisdictions.sort();
        jurisdictions.dedup();
        let schemas = match schemas {
            SchemaScope::Only(mut ids) => {
                ids.sort();
                ids.dedup();
                SchemaScope::Only(ids)
            }
            any => any,
        };
        Scope {
            schemas,
            jurisdictions,
            max_depth,
        }
    }

    /// Whether `region` lies in one of the jurisdictions.
    pub fn covers_region(&self, region: &Region) -> bool {
        self.jurisdictions.iter().any(|j| j.covers(region))
    }

    /// Checks that `self` is within `parent`: a subset of its schemas,
    /// jurisdictions each inside one of its jurisdictions, and a strictly
    /// smaller delegation depth.
    pub fn check_within(&self, parent: &Scope) -> Result<(), ScopeError> {
        if !self.schemas.is_within(&parent.schemas) {
            return Err(ScopeError::SchemaEscalation);
        }
        if let Some(region) = self.jurisdictions.iter().find(|r| !parent.covers_region(r)) {
            return Err(ScopeError::JurisdictionEscalation {
                region: region.clone(),
            });
        }
        if self.max_depth >= parent.max_depth {
            return Err(ScopeError::DepthEscalation {
                child: self.max_depth,
                parent: parent.max_depth,
            });
        }
        Ok(())
    }
}

impl Encode for Scope {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.schemas.encode_to(out);
        encode_seq(&self.jurisdictions, out);
        self.max_depth.encode_to(out);
    }
}

impl Decode for Scope {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let schemas = SchemaScope::decode_from(r)?;
        let jurisdictions: Vec<Region> = r.seq("scope jurisdictions", MAX_SCOPE_REGIONS)?;
        if jurisdictions.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError::InvalidValue {
                what: "scope jurisdictions",
                reason: "not strictly sorted",
            });
        }
        Ok(Scope {
            schemas,
            jurisdictions,
            max_depth: u8::decode_from(r)?,
        })
    }
}

/// Whether a grant still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    /// In force (until its expiry, if any).
    Active,
    /// Revoked by the parent or governance at `at`.
    Revoked {
        /// Height of the revoking block.
        at: Height,
    },
}

impl Encode for GrantStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            GrantStatus::Active => out.push(1),
            GrantStatus::Revoked { at } => {
                out.push(2);
                at.encode_to(out);
            }
        }
    }
}

impl Decode for GrantStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(GrantStatus::Active),
            2 => Ok(GrantStatus::Revoked {
                at: Height::decode_from(r)?,
            }),
            tag => Err(DecodeError::InvalidTag {
                what: "grant status",
                tag,
            }),
        }
    }
}

/// A signing key's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In use.
    Active,
    /// Retired in the ordinary course at height `at`: credentials issued
    /// before `at` remain valid.
    Rotated {
        /// Height of the rotating block.
        at: Height,
    },
    /// Reported compromised at height `since`: nothing it signed is valid.
    Compromised {
        /// Height of the reporting block.
        since: Height,
    },
}

impl Encode for KeyState {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            KeyState::Active => out.push(1),
            KeyState::Rotated { at } => {
                out.push(2);
                at.encode_to(out);
            }
            KeyState::Compromised { since } => {
                out.push(3);
                since.encode_to(out);
            }
        }
    }
}

impl Decode for KeyState {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(KeyState::Active),
            2 => Ok(KeyState::Rotated {
                at: Height::decode_from(r)?,
            }),
            3 => Ok(KeyState::Compromised {
                since: Height::decode_from(r)?,
            }),
            tag => Err(DecodeError::InvalidTag {
                what: "key state",
                tag,
            }),
        }
    }
}

/// Why a key may not vouch for a credential issued at some height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyUseError {
    /// The credential claims an issuance height before the key existed.
    #[error("key valid from {valid_from}, credential issued at {issued}")]
    NotYetValid {
        /// First height the key may sign at.
        valid_from: Height,
        /// The credential's issuance height.
        issued: Height,
    },
    /// The key was rotated at or before the issuance height.
    #[error("key retired at {at}, credential issued at {issued}")]
    Retired {
        /// Retirement height.
        at: Height,
        /// The credential's issuance height.
        issued: Height,
    },
    /// The key was reported compromised.
    #[error("key compromised since {since}")]
    Compromised {
        /// Report height.
        since: Height,
    },
}

/// One of an issuer's credential-signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKey {
    /// Number, unique within the issuer.
    pub id: KeyId,
    /// The public key.
    pub public_key: PublicKey,
    /// First height at which it may sign.
    pub valid_from: Height,
    /// Lifecycle.
    pub state: KeyState,
}

impl IssuerKey {
    /// Whether this key vouches for a credential issued at `issued`.
    pub fn check_use(&self, issued: Height) -> Result<(), KeyUseError> {
        match self.state {
            KeyState::Compromised { since } => return Err(KeyUseError::Compromised { since }),
            KeyState::Rotated { at } if issued >= at => {
                return Err(KeyUseError::Retired { at, issued })
            }
            _ => {}
        }
        if issued < self.valid_from {
            return Err(KeyUseError::NotYetValid {
                valid_from: self.valid_from,
                issued,
            });
        }
        Ok(())
    }
}

impl Encode for IssuerKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        self.public_key.encode_to(out);
        self.valid_from.encode_to(out);
        self.state.encode_to(out);
    }
}

impl Decode for IssuerKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IssuerKey {
            id: KeyId::decode_from(r)?,
            public_key: PublicKey::decode_from(r)?,
            valid_from: Height::decode_from(r)?,
            state: KeyState::decode_from(r)?,
        })
    }
}

/// A registry member and the grant that admitted it, stored under
/// [`state::issuer_key`](crate::state::issuer_key)`(id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRecord {
    /// The member.
    pub id: IssuerId,
    /// Its role.
    pub role: Role,
    /// The accrediting parent; `None` for a root.
    pub parent: Option<IssuerId>,
    /// The account that signs the member's transactions.
    pub controller: PublicKey,
    /// What the grant allows.
    pub scope: Scope,
    /// Height of the granting block.
    pub granted_at: Height,
    /// The grant lapses at this height, if set (it is not in force at or
    /// after it).
    pub expires_at: Option<Height>,
    /// Revocation status.
    pub status: GrantStatus,
    /// Credential-signing keys, strictly sorted by id.
    pub keys: Vec<IssuerKey>,
}

impl IssuerRecord {
    /// Whether the grant is in force at `height`.
    pub fn in_force_at(&self, height: Height) -> bool {
        self.status == GrantStatus::Active && self.expires_at.is_none_or(|e| height < e)
    }

    /// The key numbered `id`.
    pub fn key(&self, id: KeyId) -> Option<&IssuerKey> {
        self.keys
            .binary_search_by(|k| k.id.cmp(&id))
            .ok()
            .map(|i| &self.keys[i])
    }

    /// Mutable access to the key numbered `id`.
    pub fn key_mut(&mut self, id: KeyId) -> Option<&mut IssuerKey> {
        self.keys
            .binary_search_by(|k| k.id.cmp(&id))
            .ok()
            .map(move |i| &mut self.keys[i])
    }
}

impl Encode for IssuerRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.id.encode_to(out);
        self.role.encode_to(out);
        self.parent.encode_to(out);
        self.controller.encode_to(out);
        self.scope.encode_to(out);
        self.granted_at.encode_to(out);
        self.expires_at.encode_to(out);
        self.status.encode_to(out);
        encode_seq(&self.keys, out);
    }
}

impl Decode for IssuerRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let rec = IssuerRecord {
            id: IssuerId::decode_from(r)?,
            role: Role::decode_from(r)?,
            parent: Option::decode_from(r)?,
            controller: PublicKey::decode_from(r)?,
            scope: Scope::decode_from(r)?,
            granted_at: Height::decode_from(r)?,
            expires_at: Option::decode_from(r)?,
            status: GrantStatus::decode_from(r)?,
            keys: r.seq("issuer keys", MAX_ISSUER_KEYS)?,
        };
        if rec.keys.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(DecodeError::InvalidValue {
                what: "issuer keys",
                reason: "not strictly sorted by id",
            });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::codec::decode_exact;
    use govchain_core::crypto::{SecretKey, Signer};
    use govchain_core::hash::{Domain, Hash};
    use proptest::prelude::*;

    fn region(s: &str) -> Region {
        Region::new(s).unwrap()
    }

    fn sid(b: u8) -> SchemaId {
        SchemaId(Hash::of(Domain::Test, &[b]))
    }

    #[test]
    fn scope_containment() {
        let root = Scope::new(SchemaScope::Any, vec![region("CN-33")], 3);
        let ok = Scope::new(SchemaScope::Only(vec![sid(1)]), vec![region("CN-33-01")], 2);
        assert_eq!(ok.check_within(&root), Ok(()));
        let wide = Scope::new(SchemaScope::Only(vec![sid(1)]), vec![region("CN")], 2);
        assert_eq!(
            wide.check_within(&root),
            Err(ScopeError::JurisdictionEscalation {
                region: region("CN")
            })
        );
        let deep = Scope::new(SchemaScope::Only(vec![sid(1)]), vec![region("CN-33")], 3);
        assert_eq!(
            deep.check_within(&root),
            Err(ScopeError::DepthEscalation {
                child: 3,
                parent: 3
            })
        );
        let any = Scope::new(SchemaScope::Any, vec![region("CN-33")], 1);
        assert_eq!(any.check_within(&ok), Err(ScopeError::SchemaEscalation));
        let more = Scope::new(
            SchemaScope::Only(vec![sid(1), sid(2)]),
            vec![region("CN-33-01")],
            1,
        );
        assert_eq!(more.check_within(&ok), Err(ScopeError::SchemaEscalation));
        let sub = Scope::new(
            SchemaScope::Only(vec![sid(1)]),
            vec![region("CN-33-01-05")],
            0,
        );
        assert_eq!(sub.check_within(&ok), Ok(()));
    }

    #[test]
    fn key_lifetimes() {
        let pk = SecretKey::from_seed(&[1; 32]).public_key();
        let mut k = IssuerKey {
            id: KeyId::new(1),
            public_key: pk,
            valid_from: Height::new(10),
            state: KeyState::Active,
        };
        assert_eq!(k.check_use(Height::new(10)), Ok(()));
        assert!(matches!(
            k.check_use(Height::new(9)),
            Err(KeyUseError::NotYetValid { .. })
        ));
        k.state = KeyState::Rotated {
            at: Height::new(20),
        };
        assert_eq!(k.check_use(Height::new(19)), Ok(()));
        assert!(matches!(
            k.check_use(Height::new(20)),
            Err(KeyUseError::Retired { .. })
        ));
        k.state = KeyState::Compromised {
            since: Height::new(30),
        };
        assert!(matches!(
            k.check_use(Height::new(11)),
            Err(KeyUseError::Compromised { .. })
        ));
    }

    pub(crate) fn record(seed: u8, keys: usize) -> IssuerRecord {
        let pk = SecretKey::from_seed(&[seed; 32]).public_key();
        IssuerRecord {
            id: IssuerId::new(format!("issuer-{seed}")).unwrap(),
            role: Role::Issuer,
            parent: Some(IssuerId::new("root").unwrap()),
            controller: pk.clone(),
            scope: Scope::new(SchemaScope::Only(vec![sid(seed)]), vec![region("CN-33")], 0),
            granted_at: Height::new(1),
            expires_at: Some(Height::new(1000)),
            status: GrantStatus::Revoked { at: Height::new(5) },
            keys: (0..keys)
                .map(|i| IssuerKey {
                    id: KeyId::new(i as u32),
                    public_key: pk.clone(),
                    valid_from: Height::new(2),
                    state: KeyState::Rotated { at: Height::new(3) },
                })
                .collect(),
        }
    }

    #[test]
    fn grants_in_force() {
        let mut r = record(1, 2);
        assert!(!r.in_force_at(Height::new(2)));
        r.status = GrantStatus::Active;
        assert!(r.in_force_at(Height::new(999)));
        assert!(!r.in_force_at(Height::new(1000)));
        assert!(r.key(KeyId::new(1)).is_some() && r.key(KeyId::new(2)).is_none());
    }

    proptest! {
        #[test]
        fn record_round_trip_and_garbage(seed in 1u8..200, keys in 0usize..4, bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = record(seed, keys);
            let enc = r.to_bytes();
            prop_assert_eq!(decode_exact::<IssuerRecord>(&enc, MAX_ISSUER_RECORD_LEN).unwrap(), r);
            for cut in 0..enc.len() {
                prop_assert!(decode_exact::<IssuerRecord>(&enc[..cut], MAX_ISSUER_RECORD_LEN).is_err());
            }
            if let Ok(r) = decode_exact::<IssuerRecord>(&bytes, MAX_ISSUER_RECORD_LEN) {
                prop_assert_eq!(r.to_bytes(), bytes);
            }
        }
    }
}
