//! Off-chain credentials, held by the citizen, and their issuance.
//!
//! A [`Credential`] is signed by an issuer key and names everything a
//! verifier needs to find the trust material on chain: schema, issuer, key
//! id and issuance height, validity window, jurisdiction and a status
//! reference. Its claims follow SD-JWT (RFC 9901): always-disclosed claims
//! are in clear; every selectively disclosable claim appears only as the
//! digest of a salted [`Disclosure`], mixed with decoy digests and sorted,
//! so the credential reveals neither the values nor how many optional
//! claims there are. The holder reveals a claim by handing over its
//! disclosure.
//!
//! # Format (version 1)
//! `version u8 = 1 | suite u8 | schema [32] | issuer id | key id u32 |
//! issued height u64 | valid from u64 | valid until u64 | jurisdiction |
//! status list u64 | status index u32 | holder Option<PublicKey> |
//! claims Vec<(name, value)> | digests Vec<[32]> | signature`.
//! The issuer signs `IdDomain::CredentialSigning` hash of everything before
//! the signature. Decoding is structural; the verifier checks ordering and
//! uniqueness with its own typed rejections. The version byte and the suite
//! byte come first so a verifier refuses an unknown format or algorithm
//! before reading anything else (no downgrade), and so an SD-JWT VC or VC 2.0
//! export can be added as a later version.
//!
//! # Crypto suite
//! A credential names its suite in its body ([`CredentialBody::suite`]),
//! and every hash of it is taken under that suite: the signing message
//! ([`CredentialBody::signing_message`]), the disclosure and decoy digests
//! ([`Disclosure::digest`]) and the holder's binding message. An issuer
//! writes the suite of its signing key ([`CryptoSuite::of_key`]), which is
//! the suite of the identity chain that registered the key (the chain admits
//! only keys of its suite), and refuses a holder key of another algorithm
//! ([`IssueError::HolderKeySuite`]). A verifier requires the suite to be the
//! suite of the chain its proofs come from, and both keys to be of it.

use govchain_core::codec::{encode_bytes, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::{CryptoSuite, PublicKey, Signature, Signer, SuiteMismatch};
use govchain_core::hash::{Domain, Hash};
use govchain_core::types::{Height, Timestamp};

use crate::domain::IdDomain;
use crate::ids::{IssuerId, KeyId, Region, SchemaId, StatusListId};
use crate::schema::{
    is_valid_attribute_name, ClaimValue, DisclosurePolicy, Schema, MAX_ATTRIBUTES,
    MAX_ATTRIBUTE_NAME_LEN,
};

/// The credential format version this crate writes and reads.
pub const CREDENTIAL_VERSION: u8 = 1;
/// Most digests (claims plus decoys) in one credential.
pub const MAX_DIGESTS: usize = 256;
/// Most decoys added beyond padding to the schema's selective attributes.
pub const MAX_EXTRA_DECOYS: u32 = 4;
/// Bytes of salt per disclosure (128 bits, as RFC 9901 recommends).
pub const SALT_LEN: usize = 16;
/// Largest encoded credential.
pub const MAX_CREDENTIAL_LEN: usize = 64 * 1024;

/// Where a credential's status lives: a list and a randomly drawn index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusRef {
    /// The list.
    pub list: StatusListId,
    /// The entry.
    pub index: u32,
}

impl Encode for StatusRef {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.list.encode_to(out);
        self.index.encode_to(out);
    }
}

impl Decode for StatusRef {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StatusRef {
            list: StatusListId::decode_from(r)?,
            index: u32::decode_from(r)?,
        })
    }
}

fn read_name(r: &mut Reader<'_>) -> Result<String, DecodeError> {
    let name = r.string("claim name", MAX_ATTRIBUTE_NAME_LEN)?;
    if !is_valid_attribute_name(&name) {
        return Err(DecodeError::InvalidValue {
            what: "claim name",
            reason: "not a valid attribute name",
        });
    }
    Ok(name)
}

/// An always-disclosed claim, in clear in the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Attribute name.
    pub name: String,
    /// Value.
    pub value: ClaimValue,
}

impl Encode for Claim {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.name.as_bytes(), out);
        self.value.encode_to(out);
    }
}

impl Decode for Claim {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Claim {
            name: read_name(r)?,
            value: ClaimValue::decode_from(r)?,
        })
    }
}

/// A selectively disclosable claim: salt, name and value. Its
/// [`digest`](Disclosure::digest) is what the credential carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Disclosure {
    /// 128 random bits, fresh for every claim of every credential.
    pub salt: [u8; SALT_LEN],
    /// Attribute name.
    pub name: String,
    /// Value.
    pub value: ClaimValue,
}

impl std::fmt::Debug for Disclosure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Disclosure({}: <redacted>)", self.name)
    }
}

impl Disclosure {
    /// The digest under core's [`Domain::Disclosure`] with `suite`'s hash
    /// function (the credential's suite).
    pub fn digest(&self, suite: CryptoSuite) -> Hash {
        suite.hash(Domain::Disclosure, &self.to_bytes())
    }
}

impl Encode for Disclosure {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.salt);
        encode_bytes(self.name.as_bytes(), out);
        self.value.encode_to(out);
    }
}

impl Decode for Disclosure {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Disclosure {
            salt: r.array()?,
            name: read_name(r)?,
            value: ClaimValue::decode_from(r)?,
        })
    }
}

/// Everything an issuer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBody {
    /// Format version ([`CREDENTIAL_VERSION`]).
    pub version: u8,
    /// Signature and hash suite: the suite of the issuer's key and of the
    /// identity chain that registered it; every hash of this credential is
    /// taken under it.
    pub suite: CryptoSuite,
    /// Schema.
    pub schema: SchemaId,
    /// Issuer.
    pub issuer: IssuerId,
    /// The issuer's signing key.
    pub key_id: KeyId,
    /// The chain height the issuer observed when signing; a rotated key
    /// vouches only for credentials issued before its rotation.
    pub issued_height: Height,
    /// First instant of validity (ms since the epoch).
    pub valid_from: Timestamp,
    /// First instant of invalidity (exclusive end).
    pub valid_until: Timestamp,
    /// Region the credential was issued for.
    pub jurisdiction: Region,
    /// Status list entry.
    pub status: StatusRef,
    /// The holder's key, if the credential is holder-bound.
    pub holder: Option<PublicKey>,
    /// Always-disclosed claims, sorted by name.
    pub claims: Vec<Claim>,
    /// Disclosure and decoy digests, strictly sorted.
    pub digests: Vec<Hash>,
}

impl Encode for CredentialBody {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.version.encode_to(out);
        self.suite.encode_to(out);
        self.schema.encode_to(out);
        self.issuer.encode_to(out);
        self.key_id.encode_to(out);
        self.issued_height.encode_to(out);
        self.valid_from.encode_to(out);
        self.valid_until.encode_to(out);
        self.jurisdiction.encode_to(out);
        self.status.encode_to(out);
        self.holder.encode_to(out);
        encode_seq(&self.claims, out);
        encode_seq(&self.digests, out);
    }
}

impl Decode for CredentialBody {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != CREDENTIAL_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "credential version",
                reason: "unsupported version",
            });
        }
        Ok(CredentialBody {
            version,
            suite: CryptoSuite::decode_from(r)?,
            schema: SchemaId::decode_from(r)?,
            issuer: IssuerId::decode_from(r)?,
            key_id: KeyId::decode_from(r)?,
            issued_height: Height::decode_from(r)?,
            valid_from: Timestamp::decode_from(r)?,
            valid_until: Timestamp::decode_from(r)?,
            jurisdiction: Region::decode_from(r)?,
            status: StatusRef::decode_from(r)?,
            holder: Option::decode_from(r)?,
            claims: r.seq("credential claims", MAX_ATTRIBUTES)?,
            digests: r.seq("credential digests", MAX_DIGESTS)?,
        })
    }
}

impl CredentialBody {
    /// The 32-byte message the issuer signs, hashed under the body's suite.
    pub fn signing_message(&self) -> Hash {
        IdDomain::CredentialSigning.hash(self.suite, &[&self.to_bytes()])
    }
}

/// A signed credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The signed content.
    pub body: CredentialBody,
    /// The issuer key's signature over [`CredentialBody::signing_message`].
    pub signature: Signature,
}

impl Encode for Credential {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.body.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for Credential {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Credential {
            body: CredentialBody::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// A credential with its disclosures: what the citizen's wallet keeps.
/// `Debug` prints no claim value.
#[derive(Clone, PartialEq, Eq)]
pub struct HeldCredential {
    /// The credential.
    pub credential: Credential,
    /// One disclosure per selectively disclosable claim.
    pub disclosures: Vec<Disclosure>,
}

impl std::fmt::Debug for HeldCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HeldCredential(schema {}, issuer {}, {} disclosures)",
            self.credential.body.schema,
            self.credential.body.issuer,
            self.disclosures.len()
        )
    }
}

/// What the issuer asserts about one citizen.
#[derive(Clone)]
pub struct IssuanceRequest {
    /// Claims by attribute name, in any order.
    pub claims: Vec<(String, ClaimValue)>,
    /// The holder's key (a fresh one per credential avoids linkability).
    pub holder: Option<PublicKey>,
    /// Start of validity.
    pub valid_from: Timestamp,
    /// End of validity (exclusive).
    pub valid_until: Timestamp,
    /// Region.
    pub jurisdiction: Region,
    /// A fresh status entry (see [`StatusAllocator`](crate::status::StatusAllocator)).
    pub status: StatusRef,
}

/// Why a credential could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A claim the schema does not have.
    #[error("claim {name:?} is not in the schema")]
    UnknownClaim {
        /// Name.
        name: String,
    },
    /// A value of the wrong type or too long.
    #[error("claim {name:?} has the wrong type or length")]
    WrongType {
        /// Name.
        name: String,
    },
    /// The same claim twice.
    #[error("claim {name:?} given twice")]
    DuplicateClaim {
        /// Name.
        name: String,
    },
    /// A required attribute without a value.
    #[error("required claim {name:?} missing")]
    MissingRequired {
        /// Name.
        name: String,
    },
    /// `valid_until <= valid_from`.
    #[error("empty validity window")]
    EmptyWindow,
    /// Longer than the schema's maximum validity.
    #[error("validity of {requested} ms exceeds the schema maximum of {max} ms")]
    ValidityTooLong {
        /// Requested length.
        requested: u64,
        /// Schema maximum.
        max: u64,
    },
    /// The holder key is of another algorithm than the issuer's suite.
    #[error("holder key: {0}")]
    HolderKeySuite(#[from] SuiteMismatch),
}

/// An issuer's signing context for one schema and key.
pub struct CredentialIssuer<'a> {
    issuer: IssuerId,
    key_id: KeyId,
    signer: &'a dyn Signer,
    suite: CryptoSuite,
    schema: &'a Schema,
    schema_id: SchemaId,
    issued_height: Height,
}

impl<'a> CredentialIssuer<'a> {
    /// Signs credentials of `schema` as `issuer` with key `key_id`, stating
    /// `issued_height` (the chain height the issuer has seen) as issuance
    /// height. The credentials' suite, and the suite the schema id is taken
    /// under, is the suite of `signer`'s key ([`CryptoSuite::of_key`]).
    pub fn new(
        issuer: IssuerId,
        key_id: KeyId,
        signer: &'a dyn Signer,
        schema: &'a Schema,
        issued_height: Height,
    ) -> Self {
        let suite = CryptoSuite::of_key(&signer.public_key());
        CredentialIssuer {
            issuer,
            key_id,
            signer,
            suite,
            schema_id: schema.id(suite),
            schema,
            issued_height,
        }
    }

    /// The suite of the credentials this context issues.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Issues one credential: checks the claims against the schema, salts
    /// every selective claim afresh, adds decoys, sorts the digests and
    /// signs.
    pub fn issue<R: rand_core::RngCore + rand_core::CryptoRng>(
        &self,
        rng: &mut R,
        request: IssuanceRequest,
    ) -> Result<HeldCredential, IssueError> {
        let window = request
            .valid_until
            .get()
            .checked_sub(request.valid_from.get())
            .filter(|w| *w > 0)
            .ok_or(IssueError::EmptyWindow)?;
        if let Some(holder) = &request.holder {
            self.suite.check_key(holder)?;
        }
        if window > self.schema.max_validity_ms() {
            return Err(IssueError::ValidityTooLong {
                requested: window,
                max: self.schema.max_validity_ms(),
            });
        }
        let mut claims = request.claims;
        claims.sort_by(|a, b| a.0.cmp(&b.0));
        for w in claims.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(IssueError::DuplicateClaim {
                    name: w[0].0.clone(),
                });
            }
        }
        for attr in self.schema.attributes() {
            if attr.required
                && claims
                    .binary_search_by(|c| c.0.as_str().cmp(&attr.name))
                    .is_err()
            {
                return Err(IssueError::MissingRequired {
                    name: attr.name.clone(),
                });
            }
        }
        let mut plain = Vec::new();
        let mut disclosures = Vec::new();
        for (name, value) in claims {
            let attr = self
                .schema
                .attribute(&name)
                .ok_or_else(|| IssueError::UnknownClaim { name: name.clone() })?;
            if !attr.ty.admits(&value) {
                return Err(IssueError::WrongType { name });
            }
            match attr.disclosure {
                DisclosurePolicy::Always => plain.push(Claim { name, value }),
                DisclosurePolicy::Selective => {
                    let mut salt = [0u8; SALT_LEN];
                    rng.fill_bytes(&mut salt);
                    disclosures.push(Disclosure { salt, name, value });
                }
            }
        }
        let mut digests: Vec<Hash> = disclosures.iter().map(|d| d.digest(self.suite)).collect();
        // Pad to the schema's selective count (hides which optional claims
        // exist), then 1..=MAX_EXTRA_DECOYS more (hides the schema's shape).
        let extra = 1 + rng.next_u32() % MAX_EXTRA_DECOYS;
        let decoys = (self.schema.selective_count() - disclosures.len()) + extra as usize;
        for _ in 0..decoys {
            let mut noise = [0u8; 32];
            rng.fill_bytes(&mut noise);
            digests.push(self.suite.hash(Domain::Disclosure, &noise));
        }
        digests.sort();
        digests.dedup();
        let body = CredentialBody {
            version: CREDENTIAL_VERSION,
            suite: self.suite,
            schema: self.schema_id,
            issuer: self.issuer.clone(),
            key_id: self.key_id,
            issued_height: self.issued_height,
            valid_from: request.valid_from,
            valid_until: request.valid_until,
            jurisdiction: request.jurisdiction,
            status: request.status,
            holder: request.holder,
            claims: plain,
            digests,
        };
        let signature = self.signer.sign(body.signing_message().as_bytes());
        Ok(HeldCredential {
            credential: Credential { body, signature },
            disclosures,
        })
    }

    /// Issues several credentials; each gets fresh salts and decoys (the
    /// caller supplies a fresh status entry and holder key per request), so
    /// two credentials of one citizen share nothing linkable.
    pub fn issue_batch<R: rand_core::RngCore + rand_core::CryptoRng>(
        &self,
        rng: &mut R,
        requests: Vec<IssuanceRequest>,
    ) -> Result<Vec<HeldCredential>, IssueError> {
        requests.into_iter().map(|r| self.issue(rng, r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::resident_schema;
    use govchain_core::codec::decode_exact;
    use govchain_core::crypto::{verify, SecretKey};
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    fn request(index: u32) -> IssuanceRequest {
        IssuanceRequest {
            claims: vec![
                ("name".into(), ClaimValue::Text("Li Lei".into())),
                ("birth_date".into(), ClaimValue::Date(11_000)),
                ("document_type".into(), ClaimValue::Text("resident".into())),
            ],
            holder: Some(SecretKey::from_seed(&[index as u8; 32]).public_key()),
            valid_from: Timestamp::new(1_000),
            valid_until: Timestamp::new(2_000),
            jurisdiction: Region::new("CN-33-01").unwrap(),
            status: StatusRef {
                list: StatusListId::new(1),
                index,
            },
        }
    }

    #[test]
    fn issuance_salts_decoys_sorts_and_signs() {
        let seed = 42;
        println!("seed {seed}");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let key = SecretKey::from_seed(&[9; 32]);
        let schema = resident_schema();
        let issuer = CredentialIssuer::new(
            IssuerId::new("hz").unwrap(),
            KeyId::new(0),
            &key,
            &schema,
            Height::new(3),
        );
        let held = issuer.issue(&mut rng, request(5)).unwrap();
        let body = &held.credential.body;
        assert_eq!(body.claims.len(), 1);
        assert_eq!(held.disclosures.len(), 2);
        assert!(body.digests.len() > schema.selective_count());
        assert!(body.digests.windows(2).all(|w| w[0] < w[1]));
        for d in &held.disclosures {
            assert!(body.digests.binary_search(&d.digest(body.suite)).is_ok());
        }
        assert_eq!(
            verify(
                &key.public_key(),
                body.signing_message().as_bytes(),
                &held.credential.signature
            ),
            Ok(())
        );
        let bytes = held.credential.to_bytes();
        assert_eq!(
            decode_exact::<Credential>(&bytes, MAX_CREDENTIAL_LEN).unwrap(),
            held.credential
        );
        assert!(!format!("{held:?}").contains("Li Lei"));
        // A second issuance shares no salt or digest.
        let again = issuer.issue(&mut rng, request(6)).unwrap();
        for d in &again.credential.body.digests {
            assert!(body.digests.binary_search(d).is_err());
        }
    }

    #[test]
    fn issuance_refuses_bad_requests() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let key = SecretKey::from_seed(&[9; 32]);
        let schema = resident_schema();
        let issuer = CredentialIssuer::new(
            IssuerId::new("hz").unwrap(),
            KeyId::new(0),
            &key,
            &schema,
            Height::new(3),
        );
        let mut r = request(1);
        r.claims.push(("nope".into(), ClaimValue::Boolean(true)));
        assert!(matches!(
            issuer.issue(&mut rng, r),
            Err(IssueError::UnknownClaim { .. })
        ));
        let mut r = request(1);
        r.claims[1].1 = ClaimValue::Integer(3);
        assert!(matches!(
            issuer.issue(&mut rng, r),
            Err(IssueError::WrongType { .. })
        ));
        let mut r = request(1);
        r.claims.push(("name".into(), ClaimValue::Text("x".into())));
        assert!(matches!(
            issuer.issue(&mut rng, r),
            Err(IssueError::DuplicateClaim { .. })
        ));
        let mut r = request(1);
        r.claims.remove(0);
        assert!(matches!(
            issuer.issue(&mut rng, r),
            Err(IssueError::MissingRequired { .. })
        ));
        let mut r = request(1);
        r.valid_until = r.valid_from;
        assert_eq!(
            issuer.issue(&mut rng, r).err(),
            Some(IssueError::EmptyWindow)
        );
        let mut r = request(1);
        r.valid_until = Timestamp::new(u64::MAX);
        assert!(matches!(
            issuer.issue(&mut rng, r),
            Err(IssueError::ValidityTooLong { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn credential_codec(seed in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let key = SecretKey::from_seed(&[9; 32]);
            let schema = resident_schema();
            let issuer = CredentialIssuer::new(IssuerId::new("hz").unwrap(), KeyId::new(0), &key, &schema, Height::new(3));
            let held = issuer.issue(&mut rng, request(seed as u32)).unwrap();
            let enc = held.credential.to_bytes();
            prop_assert_eq!(decode_exact::<Credential>(&enc, MAX_CREDENTIAL_LEN).unwrap(), held.credential);
            for d in &held.disclosures {
                prop_assert_eq!(&decode_exact::<Disclosure>(&d.to_bytes(), 8192).unwrap(), d);
            }
            if let Ok(c) = decode_exact::<Credential>(&bytes, MAX_CREDENTIAL_LEN) {
                prop_assert_eq!(c.to_bytes(), bytes);
            }
        }
    }
}
