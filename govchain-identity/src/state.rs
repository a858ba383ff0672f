//! The identity application's state keys.
//!
//! Every record lives under a key that the verifier computes itself from
//! what it is checking (a credential's issuer, schema and status reference),
//! so a state proof for any other key is useless to a forger. Variable-length
//! parts are length-prefixed with the canonical codec, so no two records can
//! share a key.
//!
//! | record | key |
//! | --- | --- |
//! | genesis marker | `id/genesis` |
//! | [`IssuerRecord`](crate::issuer::IssuerRecord) | `id/issuer/` ‖ encode(issuer id) |
//! | [`SchemaRecord`](crate::schema::SchemaRecord) | `id/schema/` ‖ schema id (32 bytes) |
//! | [`StatusPage`](crate::status::StatusPage) | `id/status/` ‖ list id (u64 BE) ‖ page (u32 BE) |
//!
//! Sender nonces use core's [`NonceTracker`](govchain_core::app::NonceTracker)
//! keys (`nonce/…`). Nothing else is written: no claim value, holder key or
//! credential ever reaches state.

use govchain_core::codec::Encode;

use crate::ids::{IssuerId, SchemaId, StatusListId};

/// Marks that the genesis roots have been written.
pub const GENESIS_KEY: &[u8] = b"id/genesis";

/// The key of an issuer record.
pub fn issuer_key(id: &IssuerId) -> Vec<u8> {
    let mut k = b"id/issuer/".to_vec();
    id.encode_to(&mut k);
    k
}

/// The key of a schema record.
pub fn schema_key(id: &SchemaId) -> Vec<u8> {
    let mut k = b"id/schema/".to_vec();
    k.extend_from_slice(id.0.as_bytes());
    k
}

/// The key of one page of a status list.
pub fn status_page_key(list: StatusListId, page: u32) -> Vec<u8> {
    let mut k = b"id/status/".to_vec();
    k.extend_from_slice(&list.get().to_be_bytes());
    k.extend_from_slice(&page.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::hash::{Domain, Hash};
    use std::collections::HashSet;

    #[test]
    fn keys_are_distinct() {
        let keys: HashSet<Vec<u8>> = [
            GENESIS_KEY.to_vec(),
            issuer_key(&IssuerId::new("a").unwrap()),
            issuer_key(&IssuerId::new("ab").unwrap()),
            schema_key(&SchemaId(Hash::of(Domain::Test, b"s"))),
            status_page_key(StatusListId::new(1), 0),
            status_page_key(StatusListId::new(1), 1),
            status_page_key(StatusListId::new(256), 0),
        ]
        .into_iter()
        .collect();
        assert_eq!(keys.len(), 7);
    }
}
