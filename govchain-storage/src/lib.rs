//! Pluggable block and state storage for govchain: in-memory, durable (block log + redb) and fault-injecting backends.
//!
//! # Overview
//! - [`BlockStore`] holds the committed blocks of one chain with their
//!   commit certificates; [`StateStore`] holds the versioned sparse Merkle
//!   state (it is govchain-core's [`NodeStore`](govchain_core::smt::NodeStore)).
//!   A block and the state version it produced are appended in one atomic,
//!   durable step.
//! - [`MemoryStore`] keeps both in memory.
//! - [`DurableStore`] is the embedded default: a segmented, checksummed,
//!   append-only block log plus a redb database for the index and the state,
//!   with crash recovery, corruption detection and a state-root check on
//!   open. Everything it writes goes through the [`Vfs`] byte-level backend.
//! - [`SimDisk`](sim::SimDisk) is a deterministic, fault-injecting [`Vfs`]
//!   for tests: power loss at any sync with several models of what the disk
//!   kept, I/O errors at the N-th operation, bit flips.
//!
//! # Example
//! ```
//! use govchain_core::smt::{KeyHash, SparseMerkleTree};
//! use govchain_storage::{DurableConfig, DurableStore, StateStore};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("govchain-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let chain = "hz-main".parse()?;
//! let store = DurableStore::open(&dir, chain, DurableConfig::default())?;
//!
//! // Write the genesis state (version 0) and read it back through the tree.
//! let hf = govchain_core::hash::HashFunction::Blake3; // the chain's suite's
//! let tree = SparseMerkleTree::new(&store, hf);
//! let key = KeyHash::of(hf, b"issuer/hz-ca");
//! let (root, batch) = tree.apply_batch(None, 0, &[(key, Some(b"accredited".to_vec()))])?;
//! store.commit_state(batch)?;
//! assert_eq!(store.state_root(hf, 0)?, Some(root));
//! assert_eq!(tree.get(&key, 0)?.as_deref(), Some(&b"accredited"[..]));
//! drop(tree);
//! drop(store);
//!
//! // Reopening runs recovery and finds the state again.
//! let store = DurableStore::open(&dir, "hz-main".parse()?, DurableConfig::default())?;
//! assert_eq!(store.state_root(hf, 0)?, Some(root));
//! # drop(store);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//! This crate has no cargo features and no async runtime. Its on-disk
//! format (see [`format`](mod@format)) is pinned by a golden file in `tests/golden/`.

pub mod durable;
pub mod error;
pub mod format;
mod latest_values;
pub mod memory;
mod pagesum;
pub mod sim;
pub mod traits;
pub mod vfs;
pub mod wal;

pub use durable::{DurableConfig, DurableStore};
pub use error::StorageError;
pub use memory::MemoryStore;
pub use traits::{BlockStore, StateStore, StoredBlock};
pub use vfs::{FileLock, OpenMode, OsVfs, Vfs, VfsFile};
pub use wal::RecordLog;
