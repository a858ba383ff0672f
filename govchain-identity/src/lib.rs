//! Trusted identity authentication on govchain: schemas, issuer accreditation, selectively disclosable credentials and verification against the chain.
//!
//! # Overview
//! Higher authorities issue identity credentials to citizens; the trust
//! material behind them lives on an identity side chain, and any service
//! hall verifies a credential offline from proofs against a verified
//! header. **No personal data is ever written to a ledger**: the chain holds
//! issuers, keys, schemas and status bits; citizens hold their credentials.
//!
//! - On-chain records, in authenticated state (each with membership and
//!   non-membership proofs): [`schema`] (content-hashed, typed attributes,
//!   disclosure policy, maximum validity, lifecycle), [`issuer`] (roots,
//!   accreditors and issuers with scoped grants and height-based key
//!   lifetimes) and [`status`] (2-bit status lists in 1,024-entry pages);
//!   [`state`] lists their keys.
//! - [`app`]: the [`app::IdentityApp`] [`Application`](govchain_core::app::Application)
//!   that executes the record-writing transactions and enforces who may
//!   write what.
//! - [`credential`]: the off-chain credential (SD-JWT-style salted digests
//!   with decoys) and issuance.
//! - [`presentation`]: selected disclosures, holder binding and stapled
//!   state proofs.
//! - [`verifier`]: the service hall's policy, the verifier with its typed
//!   rejections and its hash-chained, personal-data-free audit log.
//! - [`sandbox`]: an in-memory identity chain with the standard scenario,
//!   for tests, examples and benchmarks.
//! - [`domain`]: this crate's hashing domains, beside core's.
//!
//! # Example
//! Issue a holder-bound credential on a sandbox chain, present three claims
//! to a hall, and verify it against the light client's header:
//!
//! ```
//! use govchain_core::crypto::{SecretKey, Signer};
//! use govchain_identity::presentation::BindingRequest;
//! use govchain_identity::sandbox::Sandbox;
//! use govchain_identity::verifier::Verifier;
//! use govchain_core::codec::Encode;
//!
//! let mut rng = rand_core::OsRng;
//! let mut chain = Sandbox::new()?;
//! let holder = SecretKey::generate(&mut rng);
//! let held = chain.issue(&mut rng, 7, Some(holder.public_key()))?;
//!
//! let policy = chain.policy("hall-12")?;
//! let mut hall = Verifier::new(policy.clone())?;
//! let nonce = hall.challenge(&mut rng, chain.now());
//! let binding = BindingRequest { holder: &holder, nonce, audience: policy.hall.clone(), time: chain.now() };
//! let presentation = held.present(&["name", "birth_date", "over_18"], Some(binding), chain.proofs(&held)?)?;
//!
//! let verified = hall.verify(chain.client(), &presentation.to_bytes(), chain.now())?;
//! assert!(verified.holder_bound);
//! assert!(verified.claims.contains_key("name") && !verified.claims.contains_key("id_number"));
//! assert_eq!(hall.audit_log().records().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//! This crate has no optional features. It uses no `unsafe` code, no async
//! runtime and no clock or randomness of its own: callers pass the time and
//! a cryptographic RNG.

pub mod app;
pub mod credential;
pub mod domain;
pub mod ids;
pub mod issuer;
pub mod presentation;
pub mod sandbox;
pub mod schema;
pub mod state;
pub mod status;
pub mod verifier;
