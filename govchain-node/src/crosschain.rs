//! Cross-chain proofs: a side-chain fact, verified from main-chain headers
//! alone.
//!
//! A [`CrossChainProof`] is one self-contained, canonically encoded object
//! that links a fact on a side chain to a main-chain commit certificate:
//!
//! 1. the **main-chain header and its certificate** ([`LightBlock`]), which
//!    the verifier trusts through a light client or a trusted main-chain
//!    validator set;
//! 2. the side chain's [`AnchorRecord`] and its **membership proof in
//!    main-chain state** (a [`SparseMerkleProof`] for
//!    [`anchor_key`]`(side chain, anchored height)` against the main header's
//!    state root). The governance application writes that record only after
//!    verifying the side chain's own certificate against its registered
//!    validator set, so the record carries the side chain's quorum;
//! 3. the **anchored side header**, whose hash must be the record's
//!    `block_hash`;
//! 4. the **side block's header**, which is either the anchored header itself
//!    ([`AnchorLink::Anchored`]) or an earlier block proven by an RFC 9162
//!    inclusion proof in the anchored header's history root (the log of side
//!    blocks `1..anchored height`, [`AnchorLink::Ancestor`]);
//! 5. the **fact**: a transaction with its inclusion proof against the side
//!    header's transaction root, or a state entry (a value or its absence)
//!    with its sparse-Merkle proof against the side header's state root.
//!
//! [`CrossChainProof::verify`] checks these links top-down, so a tampered
//! component fails at its own link with its own [`CrossChainError`] variant.
//! Every byte of the encoding is bound by a hash or a signature: changing
//! any byte makes the proof fail to decode or to verify. The one exception
//! is inherent to sparse-Merkle non-membership proofs: such a proof shows
//! that a whole subtree holds no key, so changing the *key* of an absence
//! fact to another key of that subtree yields a valid proof of that other
//! key's (real) absence; [`VerifiedFact`] always names the key it proves.
//!
//! The proof does not carry the side chain's certificate: the main chain
//! verified it when it accepted the anchor (BFT or Raft, each by its own
//! rule), and the anchor record is what the main chain's quorum certifies.
//! A verifier therefore trusts the main chain's validators and the
//! governance rules they enforce, never a relayer.

use govchain_core::block::BlockHeader;
use govchain_core::cert::{CertificateError, CommitCertificate};
use govchain_core::codec::{decode_exact, encode_bytes, Decode, DecodeError, Encode, Reader};
use govchain_core::hash::Hash;
use govchain_core::light::{LightBlock, LightClient, LightClientError};
use govchain_core::merkle::{InclusionProof, MerkleError, TreeHead};
use govchain_core::smt::{KeyHash, SmtProofError, SparseMerkleProof};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::ValidatorSet;

use crate::governance::{anchor_key, AnchorRecord};

/// Version byte that opens every encoded [`CrossChainProof`].
pub const CROSS_CHAIN_PROOF_VERSION: u8 = 1;
/// Most bytes of a proven state key.
pub const MAX_FACT_KEY_LEN: usize = 4 * 1024;
/// Most bytes of a proven state value.
pub const MAX_FACT_VALUE_LEN: usize = 1024 * 1024;
/// Largest encoded [`CrossChainProof`], the limit of
/// [`CrossChainProof::decode`].
pub const MAX_CROSS_CHAIN_PROOF_LEN: usize = 4 * 1024 * 1024;

/// The side-chain fact a proof establishes, with its proof against the side
/// block's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A transaction in the side block.
    Transaction {
        /// The transaction.
        tx: Transaction,
        /// Its RFC 9162 inclusion proof against the header's `tx_root` and
        /// `tx_count`.
        proof: InclusionProof,
    },
    /// A state entry after the side block.
    State {
        /// The application key.
        key: Vec<u8>,
        /// Its value, or `None` to prove absence.
        value: Option<Vec<u8>>,
        /// The sparse-Merkle proof against the header's `state_root`.
        proof: SparseMerkleProof,
    },
}

impl Encode for Fact {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Fact::Transaction { tx, proof } => {
                out.push(1);
                tx.encode_to(out);
                proof.encode_to(out);
            }
            Fact::State { key, value, proof } => {
                out.push(2);
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
        }
    }
}

impl Decode for Fact {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Fact::Transaction {
                tx: Transaction::decode_from(r)?,
                proof: InclusionProof::decode_from(r)?,
            },
            2 => Fact::State {
                key: r.bytes("fact key", MAX_FACT_KEY_LEN)?.to_vec(),
                value: match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes("fact value", MAX_FACT_VALUE_LEN)?.to_vec()),
                    tag => {
                        return Err(DecodeError::InvalidTag {
                            what: "fact value",
                            tag,
                        })
                    }
                },
                proof: SparseMerkleProof::decode_from(r)?,
            },
            tag => return Err(DecodeError::InvalidTag { what: "fact", tag }),
        })
    }
}

/// How the side block's header reaches the anchored side header.
// One link per proof: the header is kept inline rather than boxed for a
// simpler API.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorLink {
    /// The side block is the anchored block itself.
    Anchored,
    /// The side block is an earlier block of the anchored header's history.
    Ancestor {
        /// Inclusion of the side block's hash (leaf `height - 1`) in the
        /// anchored header's history root (a log of `anchored height - 1`
        /// leaves).
        history_proof: InclusionProof,
        /// The anchored side header.
        anchored_header: BlockHeader,
    },
}

impl Encode for AnchorLink {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            AnchorLink::Anchored => out.push(1),
            AnchorLink::Ancestor {
                history_proof,
                anchored_header,
            } => {
                out.push(2);
                history_proof.encode_to(out);
                anchored_header.encode_to(out);
            }
        }
    }
}

impl Decode for AnchorLink {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => AnchorLink::Anchored,
            2 => AnchorLink::Ancestor {
                history_proof: InclusionProof::decode_from(r)?,
                anchored_header: BlockHeader::decode_from(r)?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "anchor link",
                    tag,
                })
            }
        })
    }
}

/// A side-chain fact with everything needed to verify it from main-chain
/// trust alone. See the module docs.
///
/// # Encoding
/// [`CROSS_CHAIN_PROOF_VERSION`], then in the canonical codec: the fact
/// (tag `1` transaction + inclusion proof, or tag `2` key + optional value +
/// state proof), the side header, the link (tag `1` anchored, or tag `2`
/// history proof + anchored header), the anchor record, the anchor's state
/// proof, and the main light block (header, certificate, optional signing
/// set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossChainProof {
    /// The fact and its proof against `side_header`.
    pub fact: Fact,
    /// The header of the side block that holds the fact.
    pub side_header: BlockHeader,
    /// How `side_header` reaches the anchored header.
    pub link: AnchorLink,
    /// The anchor record, as stored in main-chain state.
    pub anchor: AnchorRecord,
    /// Membership proof of `anchor` at [`anchor_key`] in the main header's
    /// state root.
    pub anchor_proof: SparseMerkleProof,
    /// The main-chain header, its certificate, and (optionally) its signing
    /// set.
    pub main: LightBlock,
}

/// What a verified proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFact {
    /// The main chain.
    pub main_chain: ChainId,
    /// The main-chain height whose state holds the anchor.
    pub main_height: Height,
    /// That main block's hash.
    pub main_block_hash: Hash,
    /// The side chain.
    pub side_chain: ChainId,
    /// The side block holding the fact.
    pub side_height: Height,
    /// That side block's hash.
    pub side_block_hash: Hash,
    /// The anchored side height that covers it.
    pub anchored_height: Height,
    /// The fact.
    pub fact: ProvenFact,
}

/// The fact of a [`VerifiedFact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenFact {
    /// The transaction is in the side block, at `index`.
    Transaction {
        /// The transaction.
        tx: Transaction,
        /// Its position in the block.
        index: u64,
    },
    /// After the side block, `key` holds `value` (or nothing).
    State {
        /// The application key.
        key: Vec<u8>,
        /// The value, or `None` for absence.
        value: Option<Vec<u8>>,
    },
}

/// Why a cross-chain proof was rejected, one variant per link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrossChainError {
    /// The main header is for another chain than the verifier follows.
    #[error("main header is for chain {got}, expected {expected}")]
    MainWrongChain {
        /// The verifier's main chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// The light client rejected the main header (it was the next height).
    #[error("main header rejected by the light client: {source}")]
    MainHeader {
        /// The light client's reason.
        source: LightClientError,
    },
    /// The light client already verified another header at this height.
    #[error("main header at {height} is {got}, the light client verified {expected}")]
    MainHeaderConflict {
        /// The height.
        height: Height,
        /// The verified header's hash.
        expected: Hash,
        /// The proof's header hash.
        got: Hash,
    },
    /// The main header is ahead of the light client and signed by another
    /// set than the one the client trusts: follow the main chain's headers
    /// up to it first.
    #[error(
        "main header {height} can not be verified from the light client's tip {client_height}"
    )]
    MainHeaderUnverifiable {
        /// The proof's main height.
        height: Height,
        /// The light client's verified height.
        client_height: Height,
    },
    /// The main header names another signing set than the trusted one, or
    /// the proof's supplied set does not match the header.
    #[error("main header is signed by set {got}, expected {expected}")]
    MainValidatorSetMismatch {
        /// The trusted (or header-named) set hash.
        expected: Hash,
        /// The header's (or supplied) set hash.
        got: Hash,
    },
    /// The certificate does not commit the main header under the trusted set.
    #[error("main certificate rejected: {source}")]
    MainCertificate {
        /// Why.
        source: CertificateError,
    },
    /// The anchor record names the main chain itself.
    #[error("anchor record is for the main chain {chain}")]
    AnchorChainIsMain {
        /// The chain.
        chain: ChainId,
    },
    /// The anchor record is not in the main header's state.
    #[error("anchor record is not in main-chain state: {source}")]
    AnchorStateProof {
        /// The state proof's failure.
        source: SmtProofError,
    },
    /// The anchored header is for another chain than the anchor record.
    #[error("anchored header is for chain {header}, the anchor record for {anchor}")]
    AnchorChainMismatch {
        /// The record's chain.
        anchor: ChainId,
        /// The header's chain.
        header: ChainId,
    },
    /// The side header is of another crypto suite than the anchored header
    /// of its chain (a chain has one suite, fixed at genesis).
    #[error("side header is of suite {side}, the anchored header of its chain of {anchored}")]
    SuiteMismatch {
        /// The anchored header's suite.
        anchored: govchain_core::crypto::CryptoSuite,
        /// The side header's suite.
        side: govchain_core::crypto::CryptoSuite,
    },
    /// The anchored header is at another height than the anchor record.
    #[error("anchored header is at height {header}, the anchor record at {anchor}")]
    AnchorHeightMismatch {
        /// The record's height.
        anchor: Height,
        /// The header's height.
        header: Height,
    },
    /// The anchored header's hash is not the anchor record's block hash.
    #[error("anchored header hashes to {header}, the anchor record holds {anchor}")]
    AnchorBlockHashMismatch {
        /// The record's block hash.
        anchor: Hash,
        /// The header's hash.
        header: Hash,
    },
    /// The anchored header's history root is not the anchor record's.
    #[error("anchored header's history root {header} differs from the anchor record's {anchor}")]
    AnchorHistoryRootMismatch {
        /// The record's history root.
        anchor: Hash,
        /// The header's history root.
        header: Hash,
    },
    /// The side header is for another chain than the anchored header.
    #[error("side header is for chain {got}, the anchor for {expected}")]
    SideChainMismatch {
        /// The anchored chain.
        expected: ChainId,
        /// The side header's chain.
        got: ChainId,
    },
    /// An ancestor link for a block that is not below the anchored height.
    #[error("side block {side_height} is not an ancestor of anchored block {anchored_height}")]
    NotAnAncestor {
        /// The side block's height.
        side_height: Height,
        /// The anchored height.
        anchored_height: Height,
    },
    /// The history proof is for another leaf than the side block.
    #[error("history proof is for leaf {got}, the side block is leaf {expected}")]
    HistoryIndexMismatch {
        /// `side height - 1`.
        expected: u64,
        /// The proof's leaf index.
        got: u64,
    },
    /// The history proof does not lead to the anchored history root.
    #[error("side block is not in the anchored history: {source}")]
    HistoryProof {
        /// Why.
        source: MerkleError,
    },
    /// The proven transaction is for another chain than the side block.
    #[error("transaction is for chain {got}, the side block for {expected}")]
    FactChainMismatch {
        /// The side chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// The transaction is not in the side block.
    #[error("transaction is not in the side block: {source}")]
    TxInclusion {
        /// Why.
        source: MerkleError,
    },
    /// The state entry is not in the side block's state.
    #[error("state entry does not match the side block's state: {source}")]
    FactStateProof {
        /// Why.
        source: SmtProofError,
    },
    /// The builder lacks a part.
    #[error("cross-chain proof is missing its {part}")]
    MissingPart {
        /// Which part.
        part: &'static str,
    },
}

impl CrossChainProof {
    /// Decodes a proof from untrusted bytes (at most
    /// [`MAX_CROSS_CHAIN_PROOF_LEN`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, MAX_CROSS_CHAIN_PROOF_LEN)
    }

    /// The side chain the fact is on.
    pub fn side_chain(&self) -> &ChainId {
        &self.side_header.chain_id
    }

    /// Verifies the proof with a light client of the main chain.
    ///
    /// The main header is trusted when:
    /// - it is the client's next height: the client verifies it (and
    ///   advances to it, as with [`LightClient::verify`]);
    /// - the client already verified a header at that height: it must be
    ///   the same header, and the certificate must name it (its signatures
    ///   add nothing to a header the client already trusts and are not
    ///   re-checked);
    /// - it is further ahead: it must be signed by the set the client trusts
    ///   for its next height, with a certificate of more than 2/3 of that
    ///   set's power (skipping verification, as in Tendermint's light
    ///   client: sound while that set keeps more than 2/3 honest power). If
    ///   the main chain's set has changed since the client's tip, the error
    ///   is [`CrossChainError::MainHeaderUnverifiable`]: verify the main
    ///   headers in between first. The client does not advance.
    ///
    /// Then every link down to the fact is checked.
    pub fn verify(&self, client: &mut LightClient) -> Result<VerifiedFact, CrossChainError> {
        let header = &self.main.header;
        if &header.chain_id != client.chain_id() {
            return Err(CrossChainError::MainWrongChain {
                expected: client.chain_id().clone(),
                got: header.chain_id.clone(),
            });
        }
        self.check_supplied_set()?;
        let tip = client.height();
        if header.height <= tip {
            let known = client
                .header(header.height)
                .map_err(|source| CrossChainError::MainHeader { source })?;
            let (expected, got) = (known.hash(), header.hash());
            if expected != got {
                return Err(CrossChainError::MainHeaderConflict {
                    height: header.height,
                    expected,
                    got,
                });
            }
            self.check_certificate_names_header()?;
        } else if tip.next() == Some(header.height) {
            client
                .verify(&self.main)
                .map_err(|source| CrossChainError::MainHeader { source })?;
        } else {
            let unverifiable = CrossChainError::MainHeaderUnverifiable {
                height: header.height,
                client_height: tip,
            };
            let Some(trusted) = client.next_validator_set() else {
                return Err(unverifiable);
            };
            if trusted.hash() != header.validator_set_hash {
                return Err(unverifiable);
            }
            let chain = client.chain_id().clone();
            self.check_main_certificate(&chain, trusted)?;
        }
        self.verify_links()
    }

    /// Verifies the proof with a trusted main-chain validator set: the main
    /// header must name `trusted` as its signing set, and its certificate
    /// must carry more than 2/3 of `trusted`'s power. Then every link down
    /// to the fact is checked.
    pub fn verify_with_validator_set(
        &self,
        main_chain: &ChainId,
        trusted: &ValidatorSet,
    ) -> Result<VerifiedFact, CrossChainError> {
        let header = &self.main.header;
        if &header.chain_id != main_chain {
            return Err(CrossChainError::MainWrongChain {
                expected: main_chain.clone(),
                got: header.chain_id.clone(),
            });
        }
        self.check_supplied_set()?;
        if header.validator_set_hash != trusted.hash() {
            return Err(CrossChainError::MainValidatorSetMismatch {
                expected: trusted.hash(),
                got: header.validator_set_hash,
            });
        }
        self.check_main_certificate(main_chain, trusted)?;
        self.verify_links()
    }

    /// A supplied signing set must be the header's, so that no byte of the
    /// proof is unbound.
    fn check_supplied_set(&self) -> Result<(), CrossChainError> {
        match &self.main.validator_set {
            Some(set) if set.hash() != self.main.header.validator_set_hash => {
                Err(CrossChainError::MainValidatorSetMismatch {
                    expected: self.main.header.validator_set_hash,
                    got: set.hash(),
                })
            }
            _ => Ok(()),
        }
    }

    fn check_main_certificate(
        &self,
        chain: &ChainId,
        trusted: &ValidatorSet,
    ) -> Result<(), CrossChainError> {
        let header = &self.main.header;
        self.main
            .certificate
            .verify(chain, header.height, &header.hash(), trusted)
            .map_err(|source| CrossChainError::MainCertificate { source })
    }

    fn check_certificate_names_header(&self) -> Result<(), CrossChainError> {
        let header = &self.main.header;
        let cert: &CommitCertificate = &self.main.certificate;
        if cert.chain_id != header.chain_id {
            return Err(CrossChainError::MainCertificate {
                source: CertificateError::WrongChain {
                    expected: header.chain_id.clone(),
                    got: cert.chain_id.clone(),
                },
            });
        }
        let hash = header.hash();
        if cert.height != header.height || cert.block_hash != hash {
            return Err(CrossChainError::MainCertificate {
                source: CertificateError::WrongBlock {
                    expected_height: header.height,
                    expected_hash: hash,
                    got_height: cert.height,
                    got_hash: cert.block_hash,
                },
            });
        }
        Ok(())
    }

    /// Checks every link below the main header: the anchor record in the
    /// main header's state, the anchored header, the side header's place in
    /// its history, and the fact. This does **not** establish trust in the
    /// main header (use [`verify`](Self::verify) or
    /// [`verify_with_validator_set`](Self::verify_with_validator_set)); a
    /// builder uses it to check that its pieces fit.
    pub fn verify_links(&self) -> Result<VerifiedFact, CrossChainError> {
        let main = &self.main.header;
        let record = &self.anchor;
        if record.chain_id == main.chain_id {
            return Err(CrossChainError::AnchorChainIsMain {
                chain: record.chain_id.clone(),
            });
        }
        // 1. The anchor record is in main-chain state.
        let key = anchor_key(&record.chain_id, record.height);
        self.anchor_proof
            .verify(
                main.suite.hash_function(),
                &main.state_root,
                &KeyHash::of(main.suite.hash_function(), &key),
                Some(&record.to_bytes()),
            )
            .map_err(|source| CrossChainError::AnchorStateProof { source })?;

        // 2. The anchored header is the recorded one.
        let anchored = match &self.link {
            AnchorLink::Anchored => &self.side_header,
            AnchorLink::Ancestor {
                anchored_header, ..
            } => anchored_header,
        };
        if anchored.chain_id != record.chain_id {
            return Err(CrossChainError::AnchorChainMismatch {
                anchor: record.chain_id.clone(),
                header: anchored.chain_id.clone(),
            });
        }
        if anchored.suite != self.side_header.suite {
            return Err(CrossChainError::SuiteMismatch {
                anchored: anchored.suite,
                side: self.side_header.suite,
            });
        }
        if anchored.height != record.height {
            return Err(CrossChainError::AnchorHeightMismatch {
                anchor: record.height,
                header: anchored.height,
            });
        }
        let anchored_hash = anchored.hash();
        if anchored_hash != record.block_hash {
            return Err(CrossChainError::AnchorBlockHashMismatch {
                anchor: record.block_hash,
                header: anchored_hash,
            });
        }
        if anchored.history_root != record.history_root {
            return Err(CrossChainError::AnchorHistoryRootMismatch {
                anchor: record.history_root,
                header: anchored.history_root,
            });
        }

        // 3. The side block is the anchored block or in its history.
        let side = &self.side_header;
        let side_hash = side.hash();
        if let AnchorLink::Ancestor { history_proof, .. } = &self.link {
            if side.chain_id != anchored.chain_id {
                return Err(CrossChainError::SideChainMismatch {
                    expected: anchored.chain_id.clone(),
                    got: side.chain_id.clone(),
                });
            }
            if side.height.get() == 0 || side.height >= anchored.height {
                return Err(CrossChainError::NotAnAncestor {
                    side_height: side.height,
                    anchored_height: anchored.height,
                });
            }
            // Header `h` commits the log of blocks `1..h`: `h - 1` leaves,
            // block `a` at leaf `a - 1`.
            let expected = side.height.get() - 1;
            if history_proof.leaf_index != expected {
                return Err(CrossChainError::HistoryIndexMismatch {
                    expected,
                    got: history_proof.leaf_index,
                });
            }
            let head = TreeHead {
                size: anchored.height.get() - 1,
                root: anchored.history_root,
            };
            history_proof
                .verify_history(anchored.suite.hash_function(), &side_hash, &head)
                .map_err(|source| CrossChainError::HistoryProof { source })?;
        }

        // 4. The fact is in the side block.
        let fact = match &self.fact {
            Fact::Transaction { tx, proof } => {
                if tx.chain_id() != &side.chain_id {
                    return Err(CrossChainError::FactChainMismatch {
                        expected: side.chain_id.clone(),
                        got: tx.chain_id().clone(),
                    });
                }
                proof
                    .verify_tx(
                        side.suite.hash_function(),
                        &tx.to_bytes(),
                        &side.tx_root,
                        u64::from(side.tx_count),
                    )
                    .map_err(|source| CrossChainError::TxInclusion { source })?;
                ProvenFact::Transaction {
                    tx: tx.clone(),
                    index: proof.leaf_index,
                }
            }
            Fact::State { key, value, proof } => {
                proof
                    .verify(
                        side.suite.hash_function(),
                        &side.state_root,
                        &KeyHash::of(side.suite.hash_function(), key),
                        value.as_deref(),
                    )
                    .map_err(|source| CrossChainError::FactStateProof { source })?;
                ProvenFact::State {
                    key: key.clone(),
                    value: value.clone(),
                }
            }
        };
        Ok(VerifiedFact {
            main_chain: main.chain_id.clone(),
            main_height: main.height,
            main_block_hash: main.hash(),
            side_chain: side.chain_id.clone(),
            side_height: side.height,
            side_block_hash: side_hash,
            anchored_height: anchored.height,
            fact,
        })
    }
}

impl Encode for CrossChainProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(CROSS_CHAIN_PROOF_VERSION);
        self.fact.encode_to(out);
        self.side_header.encode_to(out);
        self.link.encode_to(out);
        self.anchor.encode_to(out);
        self.anchor_proof.encode_to(out);
        self.main.header.encode_to(out);
        self.main.certificate.encode_to(out);
        self.main.validator_set.encode_to(out);
    }
}

impl Decode for CrossChainProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.u8()? != CROSS_CHAIN_PROOF_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "cross-chain proof",
                reason: "unknown version",
            });
        }
        Ok(CrossChainProof {
            fact: Fact::decode_from(r)?,
            side_header: BlockHeader::decode_from(r)?,
            link: AnchorLink::decode_from(r)?,
            anchor: AnchorRecord::decode_from(r)?,
            anchor_proof: SparseMerkleProof::decode_from(r)?,
            main: LightBlock {
                header: BlockHeader::decode_from(r)?,
                certificate: CommitCertificate::decode_from(r)?,
                validator_set: Option::<ValidatorSet>::decode_from(r)?,
            },
        })
    }
}

/// Assembles a [`CrossChainProof`] from the pieces a node has: the fact and
/// its proof ([`transaction`](Self::transaction) or [`state`](Self::state)),
/// the [`side_header`](Self::side_header), its link to the anchored header
/// ([`anchored_self`](Self::anchored_self) or
/// [`anchored_ancestor`](Self::anchored_ancestor) with a history proof from
/// the side chain's log), the [`anchor`](Self::anchor) record with its
/// main-chain state proof, and the [`main_block`](Self::main_block) whose
/// state holds the anchor. [`build`](Self::build) checks that every part is
/// present and that the parts fit together.
#[derive(Debug, Clone, Default)]
pub struct CrossChainProofBuilder {
    fact: Option<Fact>,
    side_header: Option<BlockHeader>,
    link: Option<AnchorLink>,
    anchor: Option<(AnchorRecord, SparseMerkleProof)>,
    main: Option<LightBlock>,
}

impl CrossChainProofBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fact is transaction `tx`, with its inclusion proof in the side
    /// block.
    pub fn transaction(&mut self, tx: Transaction, proof: InclusionProof) -> &mut Self {
        self.fact = Some(Fact::Transaction { tx, proof });
        self
    }

    /// The fact is that `key` holds `value` (or nothing) after the side
    /// block, with its state proof.
    pub fn state(
        &mut self,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        proof: SparseMerkleProof,
    ) -> &mut Self {
        self.fact = Some(Fact::State { key, value, proof });
        self
    }

    /// The side block's header.
    pub fn side_header(&mut self, header: BlockHeader) -> &mut Self {
        self.side_header = Some(header);
        self
    }

    /// The side block is the anchored block.
    pub fn anchored_self(&mut self) -> &mut Self {
        self.link = Some(AnchorLink::Anchored);
        self
    }

    /// The side block is in the history of `anchored_header`, as
    /// `history_proof` shows.
    pub fn anchored_ancestor(
        &mut self,
        anchored_header: BlockHeader,
        history_proof: InclusionProof,
    ) -> &mut Self {
        self.link = Some(AnchorLink::Ancestor {
            history_proof,
            anchored_header,
        });
        self
    }

    /// The anchor record and its membership proof in the main header's
    /// state.
    pub fn anchor(&mut self, record: AnchorRecord, proof: SparseMerkleProof) -> &mut Self {
        self.anchor = Some((record, proof));
        self
    }

    /// The main-chain header with its certificate.
    pub fn main_block(&mut self, main: LightBlock) -> &mut Self {
        self.main = Some(main);
        self
    }

    /// The proof, after checking that every part is present and that the
    /// links below the main header hold ([`CrossChainProof::verify_links`]).
    pub fn build(&self) -> Result<CrossChainProof, CrossChainError> {
        fn need<T: Clone>(v: &Option<T>, part: &'static str) -> Result<T, CrossChainError> {
            v.clone().ok_or(CrossChainError::MissingPart { part })
        }
        let (anchor, anchor_proof) = need(&self.anchor, "anchor record")?;
        let proof = CrossChainProof {
            fact: need(&self.fact, "fact")?,
            side_header: need(&self.side_header, "side header")?,
            link: need(&self.link, "anchor link")?,
            anchor,
            anchor_proof,
            main: need(&self.main, "main light block")?,
        };
        proof.verify_links()?;
        Ok(proof)
    }
}
