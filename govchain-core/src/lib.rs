//! Primitives for permissioned government blockchains: BLAKE3 or SM3
//! hashing, canonical encoding, Ed25519 or SM2 signatures, Merkle trees and
//! proofs, chain types and light-client verification.
//!
//! # Overview
//! govchain-core is what every other govchain crate builds on, and all a
//! service-hall terminal needs to verify the chain:
//! - [`hash`]: the 32-byte [`hash::Hash`] and one BLAKE3 derived key per kind
//!   of object ([`hash::Domain`]), so that no two kinds ever hash alike;
//! - [`codec`]: the one canonical byte form of every type, strict and bounded;
//! - [`crypto`]: algorithm-tagged keys and signatures, Ed25519 verified under
//!   ZIP-215 rules so that single and parallel batch verification agree, and
//!   the national-standard SM2/SM3 suite ([`crypto::CryptoSuite`]); a
//!   suite's hash function is a [`hash::HashFunction`];
//! - [`merkle`]: the RFC 9162 transaction tree and the append-only history
//!   log, with inclusion and consistency proofs; [`lanes`] hashes their
//!   nodes eight at a time;
//! - [`smt`]: the versioned sparse Merkle tree for authenticated state, with
//!   membership and non-membership proofs over a pluggable node store;
//! - [`tx`], [`block`], [`validator`], [`cert`]: transactions, headers and
//!   blocks, weighted validator sets and commit certificates;
//! - [`light`]: the light client, which follows a header chain from a trusted
//!   validator set and checks proofs against verified headers;
//! - [`app`]: the ABCI-like [`app::Application`] trait that DApps implement;
//! - [`testkit`]: an in-memory chain builder for tests, examples and benches.
//!
//! # Example
//! Build a small certified chain, then verify it and a state proof with a
//! light client that trusts only the genesis validator set:
//!
//! ```
//! use govchain_core::crypto::SecretKey;
//! use govchain_core::light::LightClient;
//! use govchain_core::testkit::{ChainBuilder, KvApp};
//! use govchain_core::tx::Transaction;
//! use govchain_core::types::{ChainId, Height, Timestamp};
//!
//! let chain = ChainId::new("hz-main")?;
//! let departments: Vec<SecretKey> = (1..=4u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
//! let mut builder = ChainBuilder::new(chain.clone(), KvApp, departments, Timestamp::new(0))?;
//!
//! let citizen = SecretKey::from_seed(&[42; 32]);
//! let tx = Transaction::new_signed(chain.clone(), &citizen, 0, KvApp::payload(b"permit-17", b"granted"))?;
//! builder.produce_block(vec![tx], Timestamp::new(1_000))?;
//!
//! let (genesis_set, genesis_time) = builder.genesis();
//! let mut client = LightClient::from_genesis(chain, genesis_set.clone(), genesis_time);
//! client.verify(&builder.block(Height::new(1))?.light)?;
//!
//! let key = KvApp::state_key(b"permit-17");
//! let (value, proof) = builder.state_proof(Height::new(1), &key)?;
//! client.verify_state(Height::new(1), &key, value.as_deref(), &proof)?;
//! assert_eq!(value.as_deref(), Some(&b"granted"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! This crate has no optional features. It uses no `unsafe` code and no
//! async runtime; parallel work (batch verification, Merkle roots, state
//! updates) runs on rayon's global pool.

pub mod app;
pub mod block;
pub mod cert;
pub mod codec;
pub mod crypto;
pub mod hash;
pub mod lanes;
pub mod light;
pub mod merkle;
pub mod smt;
pub mod testkit;
pub mod tx;
pub mod types;
pub mod validator;
