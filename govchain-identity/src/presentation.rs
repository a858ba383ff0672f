//! Presentations: what a holder shows a service hall.
//!
//! A [`Presentation`] carries the credential, the disclosures the holder
//! chose, an optional [`HolderBinding`] and the [`StapledProofs`]: state
//! proofs, against one verified header, of the schema record, the issuer
//! chain up to a root and the status page. Because the holder staples the
//! proofs, the hall asks no node anything and no node learns which citizen
//! was checked.
//!
//! The binding signs, with the credential's holder key, a hash over exactly
//! what is presented — the credential, the disclosures in order, the hall's
//! nonce, the audience and the time ([`binding_message`]) — so a disclosure
//! added or swapped after binding, a replay to another hall or with another
//! nonce, all fail. The proofs are not covered: they are public and checked
//! against the header on their own.

use govchain_core::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::{Signature, Signer};
use govchain_core::hash::Hash;
use govchain_core::smt::SparseMerkleProof;
use govchain_core::types::{Height, Timestamp};

use crate::credential::{Credential, Disclosure, HeldCredential};
use crate::domain::IdDomain;
use crate::ids::HallId;
use crate::issuer::{IssuerRecord, MAX_CHAIN_LEN, MAX_ISSUER_RECORD_LEN};
use crate::state::{issuer_key, schema_key, status_page_key};
use crate::status::StatusPage;

/// The presentation format version.
pub const PRESENTATION_VERSION: u8 = 1;
/// Most disclosures in one presentation.
pub const MAX_DISCLOSURES: usize = 64;
/// Largest encoded presentation accepted by a verifier.
pub const MAX_PRESENTATION_LEN: usize = 256 * 1024;
/// Largest stapled state value.
pub const MAX_STAPLED_VALUE_LEN: usize = MAX_ISSUER_RECORD_LEN;

/// A verifier's single-use challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nonce(pub [u8; 32]);

impl Encode for Nonce {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for Nonce {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Nonce(r.array()?))
    }
}

/// The holder's proof of possession, bound to one hall, nonce and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderBinding {
    /// The hall's nonce.
    pub nonce: Nonce,
    /// The hall the presentation is for.
    pub audience: HallId,
    /// When the holder signed (ms since the epoch).
    pub time: Timestamp,
    /// Holder-key signature over [`binding_message`].
    pub signature: Signature,
}

impl Encode for HolderBinding {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.nonce.encode_to(out);
        self.audience.encode_to(out);
        self.time.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for HolderBinding {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HolderBinding {
            nonce: Nonce::decode_from(r)?,
            audience: HallId::decode_from(r)?,
            time: Timestamp::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// The hash a holder signs: exactly what is presented plus the challenge,
/// under the credential's suite ([`CredentialBody::suite`](crate::credential::CredentialBody::suite)).
pub fn binding_message(
    credential: &Credential,
    disclosures: &[Disclosure],
    nonce: &Nonce,
    audience: &HallId,
    time: Timestamp,
) -> Hash {
    let mut buf = credential.to_bytes();
    encode_seq(disclosures, &mut buf);
    nonce.encode_to(&mut buf);
    audience.encode_to(&mut buf);
    time.encode_to(&mut buf);
    IdDomain::Presentation.hash(credential.body.suite, &[&buf])
}

/// A state value (or its absence) with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StapledProof {
    /// The value at the key, `None` for a proof of absence.
    pub value: Option<Vec<u8>>,
    /// The sparse-Merkle proof.
    pub proof: SparseMerkleProof,
}

impl Encode for StapledProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.value.encode_to(out);
        self.proof.encode_to(out);
    }
}

impl Decode for StapledProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let value = match r.u8()? {
            0 => None,
            1 => Some(r.bytes("stapled value", MAX_STAPLED_VALUE_LEN)?.to_vec()),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "stapled value",
                    tag,
                })
            }
        };
        Ok(StapledProof {
            value,
            proof: SparseMerkleProof::decode_from(r)?,
        })
    }
}

/// The state proofs a presentation carries, all against the header at
/// `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StapledProofs {
    /// Height of the header the proofs are against.
    pub height: Height,
    /// The schema record.
    pub schema: StapledProof,
    /// Issuer records from the credential's issuer up to a root.
    pub issuers: Vec<StapledProof>,
    /// The number of the stapled status page (normally the page holding
    /// the credential's index).
    pub status_page: u32,
    /// The status page.
    pub status: StapledProof,
}

impl Encode for StapledProofs {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.height.encode_to(out);
        self.schema.encode_to(out);
        encode_seq(&self.issuers, out);
        self.status_page.encode_to(out);
        self.status.encode_to(out);
    }
}

impl Decode for StapledProofs {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StapledProofs {
            height: Height::decode_from(r)?,
            schema: StapledProof::decode_from(r)?,
            issuers: r.seq("stapled issuer proofs", MAX_CHAIN_LEN)?,
            status_page: u32::decode_from(r)?,
            status: StapledProof::decode_from(r)?,
        })
    }
}

/// Why proofs could not be collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError<E: std::error::Error + 'static> {
    /// The proof source failed.
    #[error("proof source: {0}")]
    Source(#[source] E),
    /// An issuer record on chain does not decode.
    #[error("issuer record does not decode: {0}")]
    Record(DecodeError),
}

impl StapledProofs {
    /// Collects the proofs for `credential` at `height` from any source of
    /// `(value, proof)` by state key — a node's query endpoint, or
    /// [`ChainBuilder::state_proof`](govchain_core::testkit::ChainBuilder::state_proof).
    /// Follows the issuer chain until a parentless record, an absent record,
    /// a repeated id or [`MAX_CHAIN_LEN`] records.
    pub fn collect<E, F>(
        height: Height,
        credential: &Credential,
        mut fetch: F,
    ) -> Result<Self, CollectError<E>>
    where
        E: std::error::Error + 'static,
        F: FnMut(&[u8]) -> Result<(Option<Vec<u8>>, SparseMerkleProof), E>,
    {
        let mut get = |key: Vec<u8>| -> Result<StapledProof, CollectError<E>> {
            let (value, proof) = fetch(&key).map_err(CollectError::Source)?;
            Ok(StapledProof { value, proof })
        };
        let body = &credential.body;
        let schema = get(schema_key(&body.schema))?;
        let mut issuers = Vec::new();
        let mut next = Some(body.issuer.clone());
        let mut seen = Vec::new();
        while let Some(id) = next.take() {
            if issuers.len() >= MAX_CHAIN_LEN || seen.contains(&id) {
                break;
            }
            let p = get(issuer_key(&id))?;
            if let Some(v) = &p.value {
                let rec: IssuerRecord =
                    decode_exact(v, MAX_ISSUER_RECORD_LEN).map_err(CollectError::Record)?;
                next = rec.parent;
            }
            seen.push(id);
            issuers.push(p);
        }
        let status_page = StatusPage::page_of(body.status.index);
        let status = get(status_page_key(body.status.list, status_page))?;
        Ok(StapledProofs {
            height,
            schema,
            issuers,
            status_page,
            status,
        })
    }
}

/// A credential presentation. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// The credential.
    pub credential: Credential,
    /// The disclosures shown.
    pub disclosures: Vec<Disclosure>,
    /// Holder binding, if made.
    pub binding: Option<HolderBinding>,
    /// State proofs.
    pub proofs: StapledProofs,
}

impl Presentation {
    /// Decodes a presentation from untrusted bytes (at most
    /// [`MAX_PRESENTATION_LEN`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, MAX_PRESENTATION_LEN)
    }

    /// The hash the binding signs (whether or not there is a binding, with
    /// the given challenge).
    pub fn binding_message(&self, nonce: &Nonce, audience: &HallId, time: Timestamp) -> Hash {
        binding_message(&self.credential, &self.disclosures, nonce, audience, time)
    }
}

impl Encode for Presentation {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(PRESENTATION_VERSION);
        self.credential.encode_to(out);
        encode_seq(&self.disclosures, out);
        self.binding.encode_to(out);
        self.proofs.encode_to(out);
    }
}

impl Decode for Presentation {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.u8()? != PRESENTATION_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "presentation version",
                reason: "unsupported version",
            });
        }
        Ok(Presentation {
            credential: Credential::decode_from(r)?,
            disclosures: r.seq("disclosures", MAX_DISCLOSURES)?,
            binding: Option::decode_from(r)?,
            proofs: StapledProofs::decode_from(r)?,
        })
    }
}

/// A hall's challenge, as the holder's wallet receives it.
pub struct BindingRequest<'a> {
    /// The credential's holder key.
    pub holder: &'a dyn Signer,
    /// The hall's nonce.
    pub nonce: Nonce,
    /// The hall.
    pub audience: HallId,
    /// The holder's clock.
    pub time: Timestamp,
}

/// Why a wallet could not build a presentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresentError {
    /// The credential has no disclosure of that name.
    #[error("no disclosure named {name:?}")]
    UnknownClaim {
        /// The name asked for.
        name: String,
    },
    /// Binding requested but the credential has no holder key.
    #[error("the credential is not holder-bound")]
    NotHolderBound,
    /// The signer is not the credential's holder key.
    #[error("the signer is not the credential's holder key")]
    WrongHolderKey,
}

impl HeldCredential {
    /// Builds a presentation revealing the claims named in `reveal` (in that
    /// order), bound to `binding` if given, with `proofs` stapled.
    pub fn present(
        &self,
        reveal: &[&str],
        binding: Option<BindingRequest<'_>>,
        proofs: StapledProofs,
    ) -> Result<Presentation, PresentError> {
        let mut disclosures = Vec::with_capacity(reveal.len());
        for name in reveal {
            let d = self
                .disclosures
                .iter()
                .find(|d| d.name == *name)
                .ok_or_else(|| PresentError::UnknownClaim {
                    name: (*name).to_owned(),
                })?;
            disclosures.push(d.clone());
        }
        let binding = match binding {
            None => None,
            Some(req) => {
                let holder = self
                    .credential
                    .body
                    .holder
                    .as_ref()
                    .ok_or(PresentError::NotHolderBound)?;
                if req.holder.public_key() != *holder {
                    return Err(PresentError::WrongHolderKey);
                }
                let msg = binding_message(
                    &self.credential,
                    &disclosures,
                    &req.nonce,
                    &req.audience,
                    req.time,
                );
                Some(HolderBinding {
                    nonce: req.nonce,
                    audience: req.audience,
                    time: req.time,
                    signature: req.holder.sign(msg.as_bytes()),
                })
            }
        };
        Ok(Presentation {
            credential: self.credential.clone(),
            disclosures,
            binding,
            proofs,
        })
    }
}
