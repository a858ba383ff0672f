//! Primitives for permissioned government blockchains: BLAKE3 hashing,
//! canonical encoding, Ed25519 signatures, Merkle trees and proofs, chain
//! types and light-client verification.

pub mod codec;
pub mod crypto;
pub mod hash;
pub mod lanes;
pub mod merkle;
pub mod smt;
