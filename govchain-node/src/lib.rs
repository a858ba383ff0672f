//! The govchain reference node: mempool, execution, main and side chains, transport and sync.
//!
//! This crate is a placeholder in the workspace layout of `DESIGN.md` §2; its
//! capability is tracked by its own issue and lands in later slices. It
//! currently re-exports nothing but the primitives it builds on:
//!
//! ```
//! use govchain_core::hash::Hash;
//! let h = Hash::ZERO;
//! assert_eq!(h.as_bytes(), &[0u8; 32]);
//! ```
