//! The crate's error type.

use std::path::PathBuf;

use govchain_core::hash::Hash;
use govchain_core::types::Height;

/// Everything that can go wrong in a block or state store.
///
/// The variants fall into four groups:
/// - **caller errors** ([`UnexpectedHeight`](Self::UnexpectedHeight),
///   [`ParentMismatch`](Self::ParentMismatch), …): the request was refused and
///   nothing was written; the store stays usable;
/// - **I/O errors** ([`Io`](Self::Io), [`Database`](Self::Database)): an
///   operation of the layer below failed. If it happened during a write the
///   handle is poisoned: later writes fail with [`Poisoned`](Self::Poisoned)
///   until the store is reopened, which runs recovery;
/// - **corruption** ([`Corruption`](Self::Corruption),
///   [`StateRootMismatch`](Self::StateRootMismatch)): stored bytes fail a
///   check. The store never serves such data and never repairs it silently;
///   an operator must restore from a replica or backup;
/// - **refusals on open** ([`NotAStore`](Self::NotAStore),
///   [`WrongChain`](Self::WrongChain),
///   [`UnsupportedFormat`](Self::UnsupportedFormat)): the directory holds
///   something else, and was left untouched; [`Locked`](Self::Locked):
///   another handle has the store open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operation of the byte-level backend failed.
    #[error("I/O error during {op} on {path:?}: {source}")]
    Io {
        /// What was being done (`"write"`, `"sync"`, `"rename"`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The backend's error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded database (redb) reported an error that is neither an I/O
    /// error nor detected corruption.
    #[error("index database error: {source}")]
    Database {
        /// redb's error.
        #[from]
        source: redb::Error,
    },
    /// An earlier write or sync failed, so the handle no longer knows what is
    /// on disk; it refuses writes until the store is reopened.
    #[error("store handle is poisoned by an earlier failure ({cause}); reopen the store")]
    Poisoned {
        /// The failure that poisoned the handle.
        cause: String,
    },
    /// Stored bytes failed a check (checksum, hash, framing or a broken
    /// cross-reference between the log and the index).
    #[error("corruption in {location}: {reason}")]
    Corruption {
        /// Where: a file and offset, or an index table and key.
        location: String,
        /// What check failed.
        reason: String,
    },
    /// After recovery, the state root at the applied height differs from the
    /// one that height's block header records.
    #[error("state root mismatch at height {height}: header says {header}, state has {state}")]
    StateRootMismatch {
        /// The applied height.
        height: Height,
        /// Root recorded in the block header.
        header: Hash,
        /// Root found in the state store.
        state: Hash,
    },
    /// The directory exists but does not hold a govchain store (no manifest,
    /// or a manifest with the wrong magic or a bad checksum). Nothing was
    /// modified.
    #[error("{path:?} is not a govchain store: {reason}")]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The store was written by a newer (or unknown) format version. Nothing
    /// was modified.
    #[error(
        "store format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedFormat {
        /// The version on disk.
        found: u32,
        /// The version this build writes and reads.
        supported: u32,
    },
    /// Another handle — in this process or another one — has the store
    /// open (it holds the store's `LOCK` file). Nothing was modified.
    #[error("store {path:?} is locked: another handle or process has it open")]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store belongs to another chain. Nothing was modified.
    #[error("store belongs to chain {found:?}, expected {expected:?}")]
    WrongChain {
        /// The chain the caller asked for.
        expected: String,
        /// The chain recorded in the store.
        found: String,
    },
    /// The block is not the next one.
    #[error("expected block at height {expected}, got {got}")]
    UnexpectedHeight {
        /// The next height.
        expected: Height,
        /// The block's height.
        got: Height,
    },
    /// The block's parent hash is not the hash of the latest block.
    #[error("block {height} has parent {got}, latest block is {expected}")]
    ParentMismatch {
        /// The block's height.
        height: Height,
        /// Hash of the latest stored block.
        expected: Hash,
        /// The block's parent hash.
        got: Hash,
    },
    /// The block belongs to another chain.
    #[error("block is for chain {got:?}, store is for {expected:?}")]
    ForeignBlock {
        /// The store's chain.
        expected: String,
        /// The block's chain.
        got: String,
    },
    /// The commit certificate is for another chain, height or block.
    #[error("certificate does not name block {block_hash} at height {height}")]
    CertificateMismatch {
        /// The block's height.
        height: Height,
        /// The block's hash.
        block_hash: Hash,
    },
    /// The state batch's root differs from the block header's state root
    /// (or the batch writes no root node).
    #[error(
        "state batch root {batch} does not match header state root {header} at height {height}"
    )]
    BatchRootMismatch {
        /// The block's height.
        height: Height,
        /// Root in the block header.
        header: Hash,
        /// Root written by the batch (zero if none).
        batch: Hash,
    },
    /// A state batch has the wrong version.
    #[error("state batch version {got} is not valid here (expected {expected})")]
    UnexpectedVersion {
        /// The version required (the block height, or above the latest).
        expected: u64,
        /// The batch's version.
        got: u64,
    },
    /// A state batch is inconsistent with the stored state (it rewrites an
    /// existing node, or is not the genesis batch where one is required).
    #[error("invalid state batch: {reason}")]
    InvalidBatch {
        /// What is wrong.
        reason: &'static str,
    },
    /// The requested height or version was pruned.
    #[error("{what} {requested} was pruned (oldest retained: {oldest})")]
    Pruned {
        /// `"block"` or `"state version"`.
        what: &'static str,
        /// What was asked for.
        requested: u64,
        /// The oldest one still retained.
        oldest: u64,
    },
    /// An encoded block and certificate exceed the largest frame.
    #[error("block frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
}

impl StorageError {
    /// Whether this error reports detected corruption (as opposed to an I/O
    /// failure, a refusal or a caller error).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StorageError::Corruption { .. } | StorageError::StateRootMismatch { .. }
        )
    }

    /// Corruption reported by (or for) the index database: a damaged page,
    /// redb's own checks, a redb panic.
    pub(crate) fn is_index_corruption(&self) -> bool {
        matches!(self, StorageError::Corruption { location, .. } if location == INDEX_DATABASE)
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(location: impl Into<String>, reason: impl Into<String>) -> Self {
        StorageError::Corruption {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// The location of corruption found in (or by) the index database.
pub(crate) const INDEX_DATABASE: &str = "index database";

/// Maps any redb error: detected corruption becomes
/// [`StorageError::Corruption`], I/O becomes [`StorageError::Io`]. A read
/// past the end of the index file is corruption too: redb only reads pages
/// that its own (checksummed) metadata points to, so such a read means a
/// damaged page reference or a truncated file, not a failing device.
///
/// A read of an index page that fails its checksum (see
/// [`pagesum`](crate::pagesum)) reaches here as an I/O error carrying an
/// [`IndexPageCorrupt`](crate::pagesum::IndexPageCorrupt): corruption too.
pub(crate) fn db_err(e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Corrupted(reason) => StorageError::corrupt(INDEX_DATABASE, reason),
        redb::Error::Io(source)
            if source
                .get_ref()
                .is_some_and(|e| e.is::<crate::pagesum::IndexPageCorrupt>()) =>
        {
            StorageError::corrupt(INDEX_DATABASE, source.to_string())
        }
        redb::Error::Io(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
            StorageError::corrupt(
                INDEX_DATABASE,
                format!("read past the end of index.redb ({source}): a damaged page reference or a truncated file"),
            )
        }
        redb::Error::Io(source) => StorageError::io("index database", "index.redb", source),
        other => StorageError::Database { source: other },
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
