//! Identity-local hashing domains.
//!
//! govchain-core declares one BLAKE3 derived key per object kind in
//! [`govchain_core::hash::Domain`]; it already has
//! [`Domain::Disclosure`](govchain_core::hash::Domain::Disclosure), which
//! this crate uses for claim digests. The other identity objects (schema
//! ids, credential and presentation signing messages, audit records) get
//! their own derived keys here, declared once, with context strings that
//! follow BLAKE3's advice for `derive_key` (globally unique, hard-coded,
//! naming the application, the object and a version). Because every context
//! string differs from every core context string, no identity object can
//! hash like a core object whatever its bytes.

use std::sync::OnceLock;

use govchain_core::hash::Hash;

macro_rules! id_domains {
    ($( $(#[$doc:meta])* $name:ident => $ctx:literal, )*) => {
        /// The kind of identity object being hashed; each has its own BLAKE3
        /// derived key.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum IdDomain {
            $( $(#[$doc])* $name, )*
        }

        impl IdDomain {
            /// Every domain, in declaration order.
            pub const ALL: &'static [IdDomain] = &[$(IdDomain::$name,)*];

            /// The `derive_key` context string of this domain.
            pub const fn context(self) -> &'static str {
                match self { $( IdDomain::$name => $ctx, )* }
            }
        }
    };
}

id_domains! {
    /// A schema's content hash, which is its id.
    Schema => "govchain-identity v1 2026-11 schema id",
    /// The message an issuer signs: a credential without its signature.
    CredentialSigning => "govchain-identity v1 2026-11 credential signing message",
    /// The message a holder signs: exactly what a presentation discloses,
    /// plus the verifier's nonce, audience and time.
    Presentation => "govchain-identity v1 2026-11 presentation binding message",
    /// A record of a verifier's hash-chained audit log.
    Audit => "govchain-identity v1 2026-11 verifier audit record",
}

impl IdDomain {
    /// The 32-byte BLAKE3 key of this domain, derived once per process.
    pub fn key(self) -> &'static [u8; 32] {
        static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            IdDomain::ALL
                .iter()
                .map(|d| blake3::derive_key(d.context(), &[]))
                .collect()
        });
        // `ALL` lists every variant in declaration order.
        &keys[self as usize]
    }

    /// Hashes the concatenation of `parts` under this domain's key.
    pub fn hash(self, parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new_keyed(self.key());
        for part in parts {
            hasher.update(part);
        }
        Hash::from_bytes(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::hash::Domain;
    use std::collections::HashSet;

    #[test]
    fn identity_domains_are_distinct_from_each_other_and_from_core() {
        let mut contexts: HashSet<&str> = Domain::ALL.iter().map(|d| d.context()).collect();
        for d in IdDomain::ALL {
            assert!(contexts.insert(d.context()), "{d:?} collides");
        }
        let mut keys: HashSet<[u8; 32]> = Domain::ALL.iter().map(|d| *d.key()).collect();
        for (i, d) in IdDomain::ALL.iter().enumerate() {
            assert!(keys.insert(*d.key()));
            assert_eq!(*d as usize, i);
        }
    }

    #[test]
    fn hash_is_keyed_over_the_concatenation() {
        let a = IdDomain::Schema.hash(&[b"ab", b"c"]);
        let b = IdDomain::Schema.hash(&[b"abc"]);
        assert_eq!(a, b);
        assert_ne!(a, IdDomain::Audit.hash(&[b"abc"]));
        assert_ne!(a, Hash::of(Domain::Disclosure, b"abc"));
    }
}
