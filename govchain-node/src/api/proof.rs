//! Proof files (what `govchain prove` writes and `govchain verify` checks)
//! and trusted validator-set files.
//!
//! # Proof file format
//! `GCPF`, a version byte ([`PROOF_FILE_VERSION`]), a kind tag, then the
//! canonical encodings (govchain-core's codec) of:
//! - tag `1`, a **transaction**: the header, its commit certificate, the
//!   transaction and its RFC 9162 inclusion proof;
//! - tag `2`, a **state entry**: the header, its certificate, the key, the
//!   optional value and the sparse-Merkle proof;
//! - tag `3`, a **cross-chain** fact: a [`CrossChainProof`].
//!
//! Decoding is strict and bounded ([`MAX_PROOF_FILE_LEN`]), and every byte
//! is bound by a hash or a signature, so a tampered file fails to decode or
//! to verify.
//!
//! # Trusted set file format
//! JSON: `{"chain_id": "main", "engine": "bft", "validators":
//! [{"public_key": "<64 hex>", "power": 1}]}` — a chain's validator set
//! obtained out of band (`govchain genesis` writes one per chain under
//! `trusted/`).
//!
//! # What [`verify`] checks
//! - transaction and state proofs: the header names the trusted set as its
//!   signer, the certificate commits the header under the trusted set (BFT:
//!   more than 2/3 of the power, with core's
//!   [`CommitCertificate::verify`], the light client's own check; Raft:
//!   leader plus strict majority), then the inclusion or state proof
//!   against the header's roots. A header signed by a later set (after a
//!   validator change) is refused: follow the chain with a light client.
//! - cross-chain proofs: a [`LightClient`] of the main chain trusting
//!   the set, through [`CrossChainProof::verify`].

use govchain_core::block::BlockHeader;
use govchain_core::cert::CommitCertificate;
use govchain_core::codec::{decode_exact, encode_bytes, Decode, DecodeError, Encode, Reader};
use govchain_core::hash::Hash;
use govchain_core::light::LightClient;
use govchain_core::merkle::{InclusionProof, MerkleError};
use govchain_core::smt::{KeyHash, SmtProofError, SparseMerkleProof};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::chain::EngineKind;
use crate::crosschain::{
    CrossChainError, CrossChainProof, ProvenFact, VerifiedFact, MAX_CROSS_CHAIN_PROOF_LEN,
    MAX_FACT_KEY_LEN, MAX_FACT_VALUE_LEN,
};

/// The magic bytes that open a proof file.
pub const PROOF_FILE_MAGIC: [u8; 4] = *b"GCPF";
/// The proof file format version.
pub const PROOF_FILE_VERSION: u8 = 1;
/// Largest proof file decoded.
pub const MAX_PROOF_FILE_LEN: usize = MAX_CROSS_CHAIN_PROOF_LEN + 64;

/// An exported proof.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ProofFile {
    /// A committed transaction.
    Transaction {
        /// The header whose transaction root the proof is against.
        header: BlockHeader,
        /// Its commit certificate.
        certificate: CommitCertificate,
        /// The transaction.
        tx: Transaction,
        /// Its inclusion proof (the leaf index is its position).
        proof: InclusionProof,
    },
    /// A state entry (or its absence) after a block.
    State {
        /// The header whose state root the proof is against.
        header: BlockHeader,
        /// Its commit certificate.
        certificate: CommitCertificate,
        /// The application key.
        key: Vec<u8>,
        /// Its value, `None` for absence.
        value: Option<Vec<u8>>,
        /// The sparse-Merkle proof.
        proof: SparseMerkleProof,
    },
    /// A side-chain transaction proven from main-chain trust.
    CrossChain(Box<CrossChainProof>),
}

impl Encode for ProofFile {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROOF_FILE_MAGIC);
        out.push(PROOF_FILE_VERSION);
        match self {
            ProofFile::Transaction {
                header,
                certificate,
                tx,
                proof,
            } => {
                out.push(1);
                header.encode_to(out);
                certificate.encode_to(out);
                tx.encode_to(out);
                proof.encode_to(out);
            }
            ProofFile::State {
                header,
                certificate,
                key,
                value,
                proof,
            } => {
                out.push(2);
                header.encode_to(out);
                certificate.encode_to(out);
                encode_bytes(key, out);
                match value {
                    None => out.push(0),
                    Some(v) => {
                        out.push(1);
                        encode_bytes(v, out);
                    }
                }
                proof.encode_to(out);
            }
            ProofFile::CrossChain(proof) => {
                out.push(3);
                proof.encode_to(out);
            }
        }
    }
}

impl Decode for ProofFile {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.array::<4>()? != PROOF_FILE_MAGIC {
            return Err(DecodeError::InvalidValue {
                what: "proof file",
                reason: "not a govchain proof file (magic GCPF)",
            });
        }
        let version = r.u8()?;
        if version != PROOF_FILE_VERSION {
            return Err(DecodeError::InvalidTag {
                what: "proof file version",
                tag: version,
            });
        }
        Ok(match r.u8()? {
            1 => ProofFile::Transaction {
                header: BlockHeader::decode_from(r)?,
                certificate: CommitCertificate::decode_from(r)?,
                tx: Transaction::decode_from(r)?,
                proof: InclusionProof::decode_from(r)?,
            },
            2 => ProofFile::State {
                header: BlockHeader::decode_from(r)?,
                certificate: CommitCertificate::decode_from(r)?,
                key: r.bytes("state key", MAX_FACT_KEY_LEN)?.to_vec(),
                value: match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes("state value", MAX_FACT_VALUE_LEN)?.to_vec()),
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "state value",
                            tag,
                        })
                    }
                },
                proof: SparseMerkleProof::decode_from(r)?,
            },
            3 => ProofFile::CrossChain(Box::new(CrossChainProof::decode_from(r)?)),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "proof kind",
                    tag,
                })
            }
        })
    }
}

impl ProofFile {
    /// Decodes a proof file from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, MAX_PROOF_FILE_LEN)
    }

    /// `"transaction"`, `"state"` or `"cross-chain"`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProofFile::Transaction { .. } => "transaction",
            ProofFile::State { .. } => "state",
            ProofFile::CrossChain(_) => "cross-chain",
        }
    }
}

/// A validator set trusted out of band, with its chain and engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSet {
    /// The chain.
    pub chain_id: ChainId,
    /// Its engine (decides the certificate rule).
    pub engine: EngineKind,
    /// The set.
    pub validators: ValidatorSet,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedSetDoc {
    chain_id: String,
    engine: crate::config::EngineChoice,
    validators: Vec<crate::config::ValidatorEntry>,
}

impl TrustedSet {
    /// A trusted set.
    pub fn new(chain_id: ChainId, engine: EngineKind, validators: ValidatorSet) -> Self {
        TrustedSet {
            chain_id,
            engine,
            validators,
        }
    }

    /// The JSON form (pretty-printed, with a trailing newline).
    pub fn to_json(&self) -> String {
        let doc = TrustedSetDoc {
            chain_id: self.chain_id.as_str().to_owned(),
            engine: self.engine.into(),
            validators: self
                .validators
                .validators()
                .iter()
                .map(|v| crate::config::ValidatorEntry {
                    public_key: crate::config::public_key_hex(&v.public_key),
                    power: v.power,
                })
                .collect(),
        };
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses the JSON form; errors name the field.
    pub fn from_json(text: &str) -> Result<Self, ProofError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let doc: TrustedSetDoc =
            serde_path_to_error::deserialize(de).map_err(|e| ProofError::TrustedSet {
                field: e.path().to_string(),
                reason: e.inner().to_string(),
            })?;
        let chain_id = ChainId::new(doc.chain_id).map_err(|e| ProofError::TrustedSet {
            field: "chain_id".into(),
            reason: e.to_string(),
        })?;
        let mut validators = Vec::new();
        for (i, v) in doc.validators.iter().enumerate() {
            let key = crate::config::parse_public_key(&v.public_key).map_err(|reason| {
                ProofError::TrustedSet {
                    field: format!("validators[{i}].public_key"),
                    reason,
                }
            })?;
            validators.push(Validator {
                public_key: key,
                power: v.power,
            });
        }
        let validators = ValidatorSet::new(validators).map_err(|e| ProofError::TrustedSet {
            field: "validators".into(),
            reason: e.to_string(),
        })?;
        Ok(TrustedSet {
            chain_id,
            engine: doc.engine.into(),
            validators,
        })
    }
}

/// Why a proof was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The proof file does not decode.
    #[error("proof file does not decode: {source}")]
    Decode {
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// The trusted set file is malformed.
    #[error("trusted set: {field}: {reason}")]
    TrustedSet {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The proof is for another chain than the trusted set.
    #[error("proof is for chain {got}, the trusted set is for {expected}")]
    WrongChain {
        /// The trusted set's chain.
        expected: ChainId,
        /// The proof's chain.
        got: ChainId,
    },
    /// The header names another signing set than the trusted one.
    #[error("header {height} is signed by set {header}, the trusted set is {trusted}")]
    ValidatorSetMismatch {
        /// The header's height.
        height: Height,
        /// The trusted set's hash.
        trusted: Hash,
        /// The header's signing-set hash.
        header: Hash,
    },
    /// The certificate does not commit the header under the trusted set.
    #[error("certificate of height {height} rejected: {reason}")]
    Certificate {
        /// The header's height.
        height: Height,
        /// Why.
        reason: String,
    },
    /// The transaction is not in the block.
    #[error("transaction inclusion proof rejected: {source}")]
    Inclusion {
        /// Why.
        #[source]
        source: MerkleError,
    },
    /// The state proof does not match the header's state root.
    #[error("state proof rejected: {source}")]
    State {
        /// Why.
        #[source]
        source: SmtProofError,
    },
    /// The cross-chain proof was rejected.
    #[error("cross-chain proof rejected: {source}")]
    CrossChain {
        /// Why.
        #[source]
        source: CrossChainError,
    },
}

/// What a verified proof established.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Proven {
    /// A transaction is committed.
    Transaction {
        /// The chain.
        chain: ChainId,
        /// The block height.
        height: Height,
        /// The block hash.
        block_hash: Hash,
        /// The transaction.
        tx: Transaction,
        /// Its index in the block.
        index: u64,
    },
    /// A state entry holds after a block.
    State {
        /// The chain.
        chain: ChainId,
        /// The block height.
        height: Height,
        /// The block hash.
        block_hash: Hash,
        /// The key.
        key: Vec<u8>,
        /// The value (`None`: absent).
        value: Option<Vec<u8>>,
    },
    /// A side-chain fact, from main-chain trust.
    CrossChain(VerifiedFact),
}

fn check_header(
    header: &BlockHeader,
    certificate: &CommitCertificate,
    trusted: &TrustedSet,
) -> Result<(), ProofError> {
    if header.chain_id != trusted.chain_id {
        return Err(ProofError::WrongChain {
            expected: trusted.chain_id.clone(),
            got: header.chain_id.clone(),
        });
    }
    let set_hash = trusted.validators.hash();
    if header.validator_set_hash != set_hash {
        return Err(ProofError::ValidatorSetMismatch {
            height: header.height,
            trusted: set_hash,
            header: header.validator_set_hash,
        });
    }
    crate::governance::verify_chain_certificate(
        trusted.engine,
        certificate,
        &trusted.chain_id,
        header,
        &trusted.validators,
    )
    .map_err(|reason| ProofError::Certificate {
        height: header.height,
        reason,
    })
}

/// Verifies `proof` against `trusted`. See the module docs for the rules.
pub fn verify(proof: &ProofFile, trusted: &TrustedSet) -> Result<Proven, ProofError> {
    match proof {
        ProofFile::Transaction {
            header,
            certificate,
            tx,
            proof,
        } => {
            check_header(header, certificate, trusted)?;
            proof
                .verify_tx(
                    header.suite.hash_function(),
                    &tx.to_bytes(),
                    &header.tx_root,
                    u64::from(header.tx_count),
                )
                .map_err(|source| ProofError::Inclusion { source })?;
            if tx.chain_id() != &header.chain_id {
                return Err(ProofError::WrongChain {
                    expected: header.chain_id.clone(),
                    got: tx.chain_id().clone(),
                });
            }
            Ok(Proven::Transaction {
                chain: header.chain_id.clone(),
                height: header.height,
                block_hash: header.hash(),
                tx: tx.clone(),
                index: proof.leaf_index,
            })
        }
        ProofFile::State {
            header,
            certificate,
            key,
            value,
            proof,
        } => {
            check_header(header, certificate, trusted)?;
            proof
                .verify(
                    header.suite.hash_function(),
                    &header.state_root,
                    &KeyHash::of(header.suite.hash_function(), key),
                    value.as_deref(),
                )
                .map_err(|source| ProofError::State { source })?;
            Ok(Proven::State {
                chain: header.chain_id.clone(),
                height: header.height,
                block_hash: header.hash(),
                key: key.clone(),
                value: value.clone(),
            })
        }
        ProofFile::CrossChain(proof) => {
            if trusted.engine != EngineKind::Bft {
                return Err(ProofError::TrustedSet {
                    field: "engine".into(),
                    reason: "a cross-chain proof needs the main chain's (bft) set".into(),
                });
            }
            let mut client = LightClient::from_genesis(
                trusted.chain_id.clone(),
                trusted.validators.clone(),
                Timestamp::new(0),
            );
            proof
                .verify(&mut client)
                .map(Proven::CrossChain)
                .map_err(|source| ProofError::CrossChain { source })
        }
    }
}

/// A human-readable account of what `proven` establishes.
pub fn describe(proven: &Proven) -> String {
    fn bytes(b: &[u8]) -> String {
        match std::str::from_utf8(b) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}"),
            _ => format!("0x{}", hex::encode(b)),
        }
    }
    match proven {
        Proven::Transaction {
            chain,
            height,
            block_hash,
            tx,
            index,
        } => format!(
            "transaction {} (sender {}, nonce {}) is committed on chain {chain} at height {height}, index {index} (block {block_hash})",
            tx.id(),
            tx.sender(),
            tx.nonce()
        ),
        Proven::State {
            chain,
            height,
            block_hash,
            key,
            value,
        } => match value {
            Some(v) => format!(
                "on chain {chain} after height {height} (block {block_hash}), key {} holds {}",
                bytes(key),
                bytes(v)
            ),
            None => format!(
                "on chain {chain} after height {height} (block {block_hash}), key {} is absent",
                bytes(key)
            ),
        },
        Proven::CrossChain(fact) => {
            let what = match &fact.fact {
                ProvenFact::Transaction { tx, index } => format!(
                    "transaction {} (sender {}, nonce {}) at index {index}",
                    tx.id(),
                    tx.sender(),
                    tx.nonce()
                ),
                ProvenFact::State { key, value } => match value {
                    Some(v) => format!("state key {} = {}", bytes(key), bytes(v)),
                    None => format!("state key {} absent", bytes(key)),
                },
            };
            format!(
                "{what} is on side chain {} at height {} (block {}), anchored at side height {} in main chain {} state at height {} (block {})",
                fact.side_chain,
                fact.side_height,
                fact.side_block_hash,
                fact.anchored_height,
                fact.main_chain,
                fact.main_height,
                fact.main_block_hash
            )
        }
    }
}
