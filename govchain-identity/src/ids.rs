//! Identifier newtypes: issuers, halls, regions, schemas, keys and status
//! lists.

use std::fmt;

use govchain_core::codec::{encode_bytes, Decode, DecodeError, Encode, Reader};
use govchain_core::hash::Hash;

/// Maximum length of an [`IssuerId`] or [`HallId`] in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty or too long.
    #[error("{what} must be {min}..={max} bytes, got {len}")]
    BadLength {
        /// The kind of identifier.
        what: &'static str,
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
        /// The length given.
        len: usize,
    },
    /// A character outside the identifier's alphabet.
    #[error("{what} has an invalid character at byte {position}")]
    BadCharacter {
        /// The kind of identifier.
        what: &'static str,
        /// Byte offset of the first bad character.
        position: usize,
    },
}

fn check_name(what: &'static str, bytes: &[u8]) -> Result<(), IdError> {
    if bytes.is_empty() || bytes.len() > MAX_NAME_LEN {
        return Err(IdError::BadLength {
            what,
            min: 1,
            max: MAX_NAME_LEN,
            len: bytes.len(),
        });
    }
    for (position, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || (position > 0 && matches!(b, b'-' | b'.' | b':'));
        if !ok {
            return Err(IdError::BadCharacter { what, position });
        }
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier: 1 to 64 bytes of
            /// `[a-z0-9.:-]`, starting with a letter or digit.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                check_name($what, id.as_bytes())?;
                Ok($name(id))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Wraps a constant known to be valid (checked in tests and in
            /// debug builds).
            #[allow(dead_code)]
            pub(crate) fn from_static(id: &'static str) -> Self {
                debug_assert!(check_name($what, id.as_bytes()).is_ok());
                $name(id.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                encode_bytes(self.0.as_bytes(), out);
            }
        }

        impl Decode for $name {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let raw = r.bytes($what, MAX_NAME_LEN)?;
                check_name($what, raw).map_err(|_| DecodeError::InvalidValue {
                    what: $what,
                    reason: "must be 1..=64 bytes of [a-z0-9.:-], starting with [a-z0-9]",
                })?;
                let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { what: $what })?;
                Ok($name(s.to_owned()))
            }
        }
    };
}

name_type!(
    /// The identifier of an issuer, accreditor or root in the accreditation
    /// registry (for example `zj-province` or `hz-bureau`). Public, never
    /// personal.
    IssuerId,
    "issuer id"
);

name_type!(
    /// The identifier of a verifier (a service hall), used as a
    /// presentation's audience.
    HallId,
    "hall id"
);

/// Shortest [`Region`] code, in bytes.
pub const MIN_REGION_LEN: usize = 2;
/// Longest [`Region`] code, in bytes.
pub const MAX_REGION_LEN: usize = 24;

/// A hierarchical region code: segments of `[A-Z0-9]` joined by `-`, such
/// as `CN`, `CN-33` (a province) or `CN-33-01` (a city). A region *covers*
/// itself and every region below it: `CN-33` covers `CN-33-01` but not
/// `CN-330` or `CN-34`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

fn check_region(bytes: &[u8]) -> Result<(), IdError> {
    if bytes.len() < MIN_REGION_LEN || bytes.len() > MAX_REGION_LEN {
        return Err(IdError::BadLength {
            what: "region",
            min: MIN_REGION_LEN,
            max: MAX_REGION_LEN,
            len: bytes.len(),
        });
    }
    let mut previous_dash = true;
    for (position, &b) in bytes.iter().enumerate() {
        let ok = if b == b'-' {
            !previous_dash && position + 1 < bytes.len()
        } else {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        };
        if !ok {
            return Err(IdError::BadCharacter {
                what: "region",
                position,
            });
        }
        previous_dash = b == b'-';
    }
    Ok(())
}

impl Region {
    /// Validates and wraps a region code.
    pub fn new(code: impl Into<String>) -> Result<Self, IdError> {
        let code = code.into();
        check_region(code.as_bytes())?;
        Ok(Region(code))
    }

    /// The code as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this region or lies below it.
    pub fn covers(&self, other: &Region) -> bool {
        other.0 == self.0
            || (other.0.len() > self.0.len()
                && other.0.starts_with(&self.0)
                && other.0.as_bytes()[self.0.len()] == b'-')
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.0)
    }
}

impl Encode for Region {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.0.as_bytes(), out);
    }
}

impl Decode for Region {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = r.bytes("region", MAX_REGION_LEN)?;
        check_region(raw).map_err(|_| DecodeError::InvalidValue {
            what: "region",
            reason: "must be 2..=24 bytes of [A-Z0-9] segments joined by single dashes",
        })?;
        let s =
            std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { what: "region" })?;
        Ok(Region(s.to_owned()))
    }
}

/// A schema's id: the content hash of its canonical encoding
/// ([`Schema::id`](crate::schema::Schema::id)).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SchemaId(pub Hash);

impl fmt::Display for SchemaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schema:{}", self.0)
    }
}

impl Encode for SchemaId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
    }
}

impl Decode for SchemaId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SchemaId(Hash::decode_from(r)?))
    }
}

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident($t:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
        pub struct $name($t);

        impl $name {
            /// Wraps a raw value.
            pub const fn new(value: $t) -> Self {
                $name(value)
            }

            /// The raw value.
            pub const fn get(self) -> $t {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl Encode for $name {
            fn encode_to(&self, out: &mut Vec<u8>) {
                self.0.encode_to(out);
            }
        }

        impl Decode for $name {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name(<$t>::decode_from(r)?))
            }
        }
    };
}

int_id!(
    /// The number of one of an issuer's signing keys, unique per issuer.
    KeyId(u32)
);

int_id!(
    /// The id of a status list, unique on the chain. The list's record names
    /// its owner; only the owner may write it.
    StatusListId(u64)
);

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::codec::decode_exact;
    use proptest::prelude::*;

    #[test]
    fn names_are_validated() {
        assert!(IssuerId::new("hz-bureau").is_ok());
        assert!(IssuerId::new("cn:zj.hz-1").is_ok());
        assert!(IssuerId::new("").is_err());
        assert!(IssuerId::new("-x").is_err());
        assert!(IssuerId::new("Upper").is_err());
        assert!(IssuerId::new("a".repeat(65)).is_err());
        assert!(HallId::new("hall-7").is_ok());
    }

    #[test]
    fn regions_cover_their_subregions_only() {
        let cn = Region::new("CN").unwrap();
        let zj = Region::new("CN-33").unwrap();
        let hz = Region::new("CN-33-01").unwrap();
        let other = Region::new("CN-330").unwrap();
        assert!(cn.covers(&zj) && cn.covers(&hz) && zj.covers(&hz) && zj.covers(&zj));
        assert!(!zj.covers(&cn) && !hz.covers(&zj) && !zj.covers(&other));
        for bad in ["C", "cn", "CN-", "-CN", "CN--33", "CN 33"] {
            assert!(Region::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_codecs_round_trip() {
        let id = IssuerId::new("hz-bureau").unwrap();
        assert_eq!(decode_exact::<IssuerId>(&id.to_bytes(), 100), Ok(id));
        let r = Region::new("CN-33-01").unwrap();
        assert_eq!(decode_exact::<Region>(&r.to_bytes(), 100), Ok(r));
        assert!(decode_exact::<Region>(&[3, 0, 0, 0, b'C', b'N', b'-'], 100).is_err());
        assert!(decode_exact::<IssuerId>(&[1, 0, 0, 0, b'A'], 100).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(v) = decode_exact::<IssuerId>(&bytes, 100) {
                prop_assert_eq!(v.to_bytes(), bytes.clone());
            }
            if let Ok(v) = decode_exact::<Region>(&bytes, 100) {
                prop_assert_eq!(v.to_bytes(), bytes);
            }
        }
    }
}
