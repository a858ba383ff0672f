//! Block headers and blocks.
//!
//! A [`BlockHeader`] commits to everything a light client needs: the chain,
//! the height and time, the parent, the transactions (root *and* count), the
//! application state root after executing this block, the history root over
//! all earlier block hashes, and the validator sets that sign this block and
//! the next. The block hash is the hash of the header's canonical encoding.
//!
//! # The suite in the header
//! Every header names its chain's [`CryptoSuite`] (fixed at genesis), so a
//! verifier never has to guess how to hash it or which keys may sign it.
//! The suite is encoded through the version field, with exactly one
//! encoding per header:
//!
//! | suite | `version` (u16 LE) | then |
//! |---|---|---|
//! | ed25519-blake3 | [`HEADER_VERSION`] = 1 | the fields (no suite byte) |
//! | any other (sm2-sm3) | [`HEADER_VERSION_WITH_SUITE`] = 2 | the suite id byte, then the fields |
//!
//! So every header written before suites existed decodes unchanged, to the
//! same bytes and the same hash, and a version-2 header naming
//! ed25519-blake3 is refused (it would be a second spelling of a version-1
//! header). The header hash, transaction root, and everything else the
//! header commits to are taken under the header's suite, and the proposer
//! key must be of the suite's algorithm (checked at decode).

use crate::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use crate::crypto::{CryptoSuite, PublicKey, SignatureAlgorithm};
use crate::hash::{Domain, Hash};
use crate::merkle;
use crate::tx::Transaction;
use crate::types::{ChainId, Height, Timestamp};

/// The header format version of an ed25519-blake3 header: no suite byte
/// follows (see the [module docs](self)).
pub const HEADER_VERSION: u16 = 1;

/// The header format version of a header of any other suite: the suite id
/// byte follows the version.
pub const HEADER_VERSION_WITH_SUITE: u16 = 2;

/// Most transactions one block may hold.
pub const MAX_BLOCK_TXS: usize = 100_000;

/// Largest encoded block accepted by [`Block::decode`].
pub const MAX_BLOCK_ENCODED_LEN: usize = 64 * 1024 * 1024;

/// Largest encoded header.
pub const MAX_HEADER_ENCODED_LEN: usize = 512;

/// A block header. Fields are public: a header is plain data whose validity
/// is checked by [`Block::validate_body`] and the light client, not by
/// construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// The chain's crypto suite, fixed at genesis. It decides the encoded
    /// version ([`BlockHeader::version`]), so the two can never disagree.
    pub suite: CryptoSuite,
    /// The chain this block belongs to.
    pub chain_id: ChainId,
    /// Height; the first block is height 1.
    pub height: Height,
    /// Block time agreed by consensus.
    pub time: Timestamp,
    /// Hash of the block at `height - 1`, or [`Hash::ZERO`] for height 1.
    pub parent_hash: Hash,
    /// Transaction root (RFC 9162 tree bound to the count).
    pub tx_root: Hash,
    /// Number of transactions.
    pub tx_count: u32,
    /// Application state root after executing this block.
    pub state_root: Hash,
    /// Root of the history log over the hashes of blocks `1..height`.
    pub history_root: Hash,
    /// Hash of the validator set that signs this block.
    pub validator_set_hash: Hash,
    /// Hash of the validator set that signs the next block.
    pub next_validator_set_hash: Hash,
    /// The validator that proposed this block.
    pub proposer: PublicKey,
}

impl BlockHeader {
    /// The block hash: the hash of this header's canonical encoding, under
    /// the header's suite.
    pub fn hash(&self) -> Hash {
        self.suite.hash(Domain::Header, &self.to_bytes())
    }

    /// The encoded format version: [`HEADER_VERSION`] for ed25519-blake3,
    /// [`HEADER_VERSION_WITH_SUITE`] for any other suite.
    pub fn version(&self) -> u16 {
        match self.suite {
            CryptoSuite::Ed25519Blake3 => HEADER_VERSION,
            _ => HEADER_VERSION_WITH_SUITE,
        }
    }

    /// Decodes a header from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, MAX_HEADER_ENCODED_LEN)
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        let version = self.version();
        version.encode_to(out);
        if version == HEADER_VERSION_WITH_SUITE {
            self.suite.encode_to(out);
        }
        self.chain_id.encode_to(out);
        self.height.encode_to(out);
        self.time.encode_to(out);
        self.parent_hash.encode_to(out);
        self.tx_root.encode_to(out);
        self.tx_count.encode_to(out);
        self.state_root.encode_to(out);
        self.history_root.encode_to(out);
        self.validator_set_hash.encode_to(out);
        self.next_validator_set_hash.encode_to(out);
        self.proposer.encode_to(out);
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        const WHAT: &str = "block header";
        let suite = match u16::decode_from(r)? {
            HEADER_VERSION => CryptoSuite::Ed25519Blake3,
            HEADER_VERSION_WITH_SUITE => match CryptoSuite::decode_from(r)? {
                CryptoSuite::Ed25519Blake3 => {
                    return Err(DecodeError::InvalidValue {
                        what: WHAT,
                        reason: "a version-2 header names the default suite (use version 1)",
                    })
                }
                suite => suite,
            },
            _ => {
                return Err(DecodeError::InvalidValue {
                    what: WHAT,
                    reason: "unknown header version",
                })
            }
        };
        let header = BlockHeader {
            suite,
            chain_id: ChainId::decode_from(r)?,
            height: Height::decode_from(r)?,
            time: Timestamp::decode_from(r)?,
            parent_hash: Hash::decode_from(r)?,
            tx_root: Hash::decode_from(r)?,
            tx_count: u32::decode_from(r)?,
            state_root: Hash::decode_from(r)?,
            history_root: Hash::decode_from(r)?,
            validator_set_hash: Hash::decode_from(r)?,
            next_validator_set_hash: Hash::decode_from(r)?,
            proposer: PublicKey::decode_from(r)?,
        };
        if !suite.admits(header.proposer.algorithm()) {
            return Err(DecodeError::InvalidValue {
                what: WHAT,
                reason: "the proposer key is not of the header's suite",
            });
        }
        Ok(header)
    }
}

/// Why a block body does not match its header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The header's count differs from the body.
    #[error("header says {header} transactions, body has {body}")]
    TxCountMismatch {
        /// Count in the header.
        header: u32,
        /// Count in the body.
        body: usize,
    },
    /// The body's transaction root differs from the header's.
    #[error("transaction root mismatch: header {header}, body {body}")]
    TxRootMismatch {
        /// Root in the header.
        header: Hash,
        /// Root computed from the body.
        body: Hash,
    },
    /// A transaction names another chain.
    #[error("transaction {index} is for chain {got}, block is for {expected}")]
    ForeignTransaction {
        /// Position in the block.
        index: usize,
        /// The block's chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// A transaction's sender key is of an algorithm the block's suite does
    /// not admit (its signature and hashes belong to the other suite).
    #[error("transaction {index} is signed with {}, block suite is {suite}", algorithm.name())]
    SenderSuiteMismatch {
        /// Position in the block.
        index: usize,
        /// The block's suite.
        suite: CryptoSuite,
        /// The sender key's algorithm.
        algorithm: SignatureAlgorithm,
    },
    /// The proposer key is of an algorithm the block's suite does not admit.
    #[error("proposer key is {}, block suite is {suite}", algorithm.name())]
    ProposerSuiteMismatch {
        /// The block's suite.
        suite: CryptoSuite,
        /// The proposer key's algorithm.
        algorithm: SignatureAlgorithm,
    },
    /// More transactions than [`MAX_BLOCK_TXS`].
    #[error("{count} transactions exceed the block limit of {MAX_BLOCK_TXS}")]
    TooManyTransactions {
        /// How many there were.
        count: usize,
    },
}

/// A header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
}

/// The transaction root of `txs` under `suite`, as a header records it.
/// Each leaf is hashed under `suite` too, whatever the sender's key
/// ([`Block::validate_body`] refuses senders the suite does not admit).
pub fn tx_root_of(suite: CryptoSuite, txs: &[Transaction]) -> Hash {
    let hf = suite.hash_function();
    // One encoding buffer for the whole block: a fresh allocation per
    // transaction was a visible share of validating a 1,000-tx proposal.
    let mut encoded = Vec::with_capacity(512);
    let leaves: Vec<Hash> = txs
        .iter()
        .map(|tx| {
            encoded.clear();
            tx.encode_to(&mut encoded);
            merkle::tx_leaf_hash(hf, &encoded)
        })
        .collect();
    merkle::tx_root(hf, &leaves)
}

impl Block {
    /// The block hash (the header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checks that the body matches the header: count, root, chain, and
    /// that every sender (and the proposer) has a key of the header's
    /// suite. Signatures are not checked here (see the node's validation).
    pub fn validate_body(&self) -> Result<(), BlockError> {
        let suite = self.header.suite;
        if !suite.admits(self.header.proposer.algorithm()) {
            return Err(BlockError::ProposerSuiteMismatch {
                suite,
                algorithm: self.header.proposer.algorithm(),
            });
        }
        let count = self.transactions.len();
        if count > MAX_BLOCK_TXS {
            return Err(BlockError::TooManyTransactions { count });
        }
        if count != self.header.tx_count as usize {
            return Err(BlockError::TxCountMismatch {
                header: self.header.tx_count,
                body: count,
            });
        }
        for (index, tx) in self.transactions.iter().enumerate() {
            if !suite.admits(tx.sender().algorithm()) {
                return Err(BlockError::SenderSuiteMismatch {
                    index,
                    suite,
                    algorithm: tx.sender().algorithm(),
                });
            }
            if tx.chain_id() != &self.header.chain_id {
                return Err(BlockError::ForeignTransaction {
                    index,
                    expected: self.header.chain_id.clone(),
                    got: tx.chain_id().clone(),
                });
            }
        }
        let body = tx_root_of(suite, &self.transactions);
        if body != self.header.tx_root {
            return Err(BlockError::TxRootMismatch {
                header: self.header.tx_root,
                body,
            });
        }
        Ok(())
    }

    /// Decodes a block from untrusted bytes of at most `limit` bytes (capped
    /// at [`MAX_BLOCK_ENCODED_LEN`]). The body is not validated here.
    pub fn decode(bytes: &[u8], limit: usize) -> Result<Self, DecodeError> {
        decode_exact(bytes, limit.min(MAX_BLOCK_ENCODED_LEN))
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        encode_seq(&self.transactions, out);
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(r)?;
        // `seq` checks the count against the remaining input before
        // allocating, and each transaction is bounded by its own decoder.
        let transactions = r.seq("block transactions", MAX_BLOCK_TXS)?;
        Ok(Block {
            header,
            transactions,
        })
    }
}
