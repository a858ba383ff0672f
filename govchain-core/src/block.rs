//! Block headers and blocks.
//!
//! A [`BlockHeader`] commits to everything a light client needs: the chain,
//! the height and time, the parent, the transactions (root *and* count), the
//! application state root after executing this block, the history root over
//! all earlier block hashes, and the validator sets that sign this block and
//! the next. The block hash is the hash of the header's canonical encoding.

use crate::codec::{decode_exact, encode_seq, Decode, DecodeError, Encode, Reader};
use crate::crypto::PublicKey;
use crate::hash::{Domain, Hash};
use crate::merkle;
use crate::tx::Transaction;
use crate::types::{ChainId, Height, Timestamp};

/// The header format version written by this crate.
pub const HEADER_VERSION: u16 = 1;

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
    /// Format version; [`HEADER_VERSION`].
    pub version: u16,
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
    /// The block hash: the hash of this header's canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(Domain::Header, &self.to_bytes())
    }

    /// Decodes a header from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes, MAX_HEADER_ENCODED_LEN)
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.version.encode_to(out);
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
        let version = u16::decode_from(r)?;
        if version != HEADER_VERSION {
            return Err(DecodeError::InvalidValue {
                what: "block header",
                reason: "unknown header version",
            });
        }
        Ok(BlockHeader {
            version,
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
        })
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

/// The transaction root and count of `txs`, as a header records them.
pub fn tx_root_of(txs: &[Transaction]) -> Hash {
    let leaves: Vec<Hash> = txs.iter().map(Transaction::leaf_hash).collect();
    merkle::tx_root(&leaves)
}

impl Block {
    /// The block hash (the header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checks that the body matches the header: count, root and chain.
    /// Signatures are not checked here (see the node's validation).
    pub fn validate_body(&self) -> Result<(), BlockError> {
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
            if tx.chain_id() != &self.header.chain_id {
                return Err(BlockError::ForeignTransaction {
                    index,
                    expected: self.header.chain_id.clone(),
                    got: tx.chain_id().clone(),
                });
            }
        }
        let body = tx_root_of(&self.transactions);
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
