//! Identity-local hashing domains, under either crypto suite.
//!
//! govchain-core declares one domain per object kind in
//! [`govchain_core::hash::Domain`]; it already has
//! [`Domain::Disclosure`](govchain_core::hash::Domain::Disclosure), which
//! this crate uses for claim digests. The other identity objects (schema
//! ids, credential and presentation signing messages, audit records) get
//! their own domains here, declared once, with context strings that follow
//! BLAKE3's advice for `derive_key` (globally unique, hard-coded, naming the
//! application, the object and a version). Because every context string
//! differs from every core context string, no identity object can hash like
//! a core object whatever its bytes.
//!
//! # Which suite
//! Every identity hash is taken under a [`CryptoSuite`], passed explicitly
//! ([`IdDomain::hash`]), and separated exactly as core separates its
//! domains: under ed25519-blake3, BLAKE3 keyed by the domain's derived key
//! ([`IdDomain::key`]); under sm2-sm3, SM3 of the 64-byte prefix
//! `SM3(context) ‖ 0³²` ([`IdDomain::sm3_prefix`], the same construction as
//! [`sm3_domain_prefix`](govchain_core::hash::sm3_domain_prefix)) followed by
//! the data. The suite is always the suite of the identity chain the object
//! belongs to; see the crate docs for the rule per object.

use std::sync::OnceLock;

use govchain_core::crypto::CryptoSuite;
use govchain_core::hash::{Hash, HASH_LEN};

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

    /// The 64-byte SM3 prefix of this domain: `SM3(context) ‖ 0³²`.
    pub fn sm3_prefix(self) -> [u8; 64] {
        use sm3::Digest;
        let mut prefix = [0u8; 64];
        prefix[..HASH_LEN].copy_from_slice(&sm3::Sm3::digest(self.context().as_bytes()));
        prefix
    }

    /// Hashes the concatenation of `parts` under this domain with `suite`'s
    /// hash function (see the [module docs](self)).
    pub fn hash(self, suite: CryptoSuite, parts: &[&[u8]]) -> Hash {
        match suite {
            CryptoSuite::Sm2Sm3 => {
                use sm3::Digest;
                static HASHERS: OnceLock<Vec<sm3::Sm3>> = OnceLock::new();
                let hashers = HASHERS.get_or_init(|| {
                    IdDomain::ALL
                        .iter()
                        .map(|d| sm3::Sm3::new_with_prefix(d.sm3_prefix()))
                        .collect()
                });
                // `ALL` lists every variant in declaration order.
                let mut hasher = hashers[self as usize].clone();
                for part in parts {
                    hasher.update(part);
                }
                let mut out = [0u8; HASH_LEN];
                out.copy_from_slice(&hasher.finalize());
                Hash::from_bytes(out)
            }
            // ed25519-blake3, and any later suite until it is given its own
            // arm (the enum is non-exhaustive).
            _ => {
                let mut hasher = blake3::Hasher::new_keyed(self.key());
                for part in parts {
                    hasher.update(part);
                }
                Hash::from_bytes(*hasher.finalize().as_bytes())
            }
        }
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
        for &suite in CryptoSuite::ALL {
            let a = IdDomain::Schema.hash(suite, &[b"ab", b"c"]);
            let b = IdDomain::Schema.hash(suite, &[b"abc"]);
            assert_eq!(a, b);
            assert_ne!(a, IdDomain::Audit.hash(suite, &[b"abc"]));
            assert_ne!(a, suite.hash(Domain::Disclosure, b"abc"));
        }
    }

    #[test]
    fn suites_hash_differently_with_their_own_function() {
        use sm3::Digest;
        let blake = IdDomain::Schema.hash(CryptoSuite::Ed25519Blake3, &[b"abc"]);
        let sm = IdDomain::Schema.hash(CryptoSuite::Sm2Sm3, &[b"abc"]);
        assert_ne!(blake, sm);
        assert_eq!(
            blake,
            Hash::from_bytes(*blake3::keyed_hash(IdDomain::Schema.key(), b"abc").as_bytes())
        );
        let mut input = IdDomain::Schema.sm3_prefix().to_vec();
        input.extend_from_slice(b"abc");
        assert_eq!(sm.as_bytes()[..], sm3::Sm3::digest(&input)[..]);
        // SM3 prefixes are distinct across identity and core domains.
        let mut prefixes: HashSet<[u8; 64]> = Domain::ALL
            .iter()
            .map(|d| govchain_core::hash::sm3_domain_prefix(*d))
            .collect();
        for d in IdDomain::ALL {
            assert!(prefixes.insert(d.sm3_prefix()));
        }
    }
}
