//! Newtypes for chain identifiers, heights, rounds and times.
//!
//! None of them converts implicitly from a bare integer: a height is built
//! with [`Height::new`], so a round can never be passed where a height is
//! expected.

use std::fmt;
use std::sync::Arc;

use crate::codec::{encode_bytes, Decode, DecodeError, Encode, Reader};

/// Maximum length of a [`ChainId`] in bytes.
pub const MAX_CHAIN_ID_LEN: usize = 32;

/// The identifier of one chain (the main chain or a side chain): 1 to 32
/// bytes of lower-case ASCII letters, digits, `-` and `.`, starting with a
/// letter or digit. Readable in logs and unambiguous in signatures.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainId(Arc<str>);

/// Why a string is not a valid [`ChainId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainIdError {
    /// Empty or longer than [`MAX_CHAIN_ID_LEN`].
    #[error("chain id must be 1..={MAX_CHAIN_ID_LEN} bytes, got {len}")]
    BadLength {
        /// The length given.
        len: usize,
    },
    /// A character outside `[a-z0-9.-]`, or a leading `-`/`.`.
    #[error("chain id has an invalid character at byte {position}")]
    BadCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
}

impl ChainId {
    /// Validates and wraps a chain id.
    pub fn new(id: impl Into<String>) -> Result<Self, ChainIdError> {
        let id = id.into();
        Self::check(id.as_bytes())?;
        Ok(ChainId(id.into()))
    }

    fn check(bytes: &[u8]) -> Result<(), ChainIdError> {
        if bytes.is_empty() || bytes.len() > MAX_CHAIN_ID_LEN {
            return Err(ChainIdError::BadLength { len: bytes.len() });
        }
        for (position, &b) in bytes.iter().enumerate() {
            let ok = b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (position > 0 && (b == b'-' || b == b'.'));
            if !ok {
                return Err(ChainIdError::BadCharacter { position });
            }
        }
        Ok(())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl std::str::FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainId::new(s)
    }
}

impl Encode for ChainId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.0.as_bytes(), out);
    }
}

impl Decode for ChainId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let raw = r.bytes("chain id", MAX_CHAIN_ID_LEN)?;
        ChainId::check(raw).map_err(|_| DecodeError::InvalidValue {
            what: "chain id",
            reason: "must be 1..=32 bytes of [a-z0-9.-], not starting with - or .",
        })?;
        // `check` admitted only ASCII, so this is valid UTF-8.
        let s =
            std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { what: "chain id" })?;
        Ok(ChainId(Arc::from(s)))
    }
}

macro_rules! int_newtype {
    ($(#[$doc:meta])* $name:ident($t:ty), $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
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

            /// The next value, or `None` on overflow.
            pub fn next(self) -> Option<Self> {
                self.0.checked_add(1).map($name)
            }

            /// The previous value, or `None` at zero.
            pub fn prev(self) -> Option<Self> {
                self.0.checked_sub(1).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({})"), self.0)
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

int_newtype!(
    /// A block height. The first block of a chain has height 1; height 0 is
    /// the genesis state before any block.
    Height(u64),
    "Height"
);
int_newtype!(
    /// A consensus round within one height.
    Round(u32),
    "Round"
);
int_newtype!(
    /// A block time: milliseconds since the Unix epoch, as agreed by consensus.
    Timestamp(u64),
    "Timestamp"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;

    #[test]
    fn chain_id_rules() {
        assert!(ChainId::new("hz-main").is_ok());
        assert!(ChainId::new("identity.side-1").is_ok());
        assert_eq!(ChainId::new(""), Err(ChainIdError::BadLength { len: 0 }));
        assert_eq!(
            ChainId::new("a".repeat(33)),
            Err(ChainIdError::BadLength { len: 33 })
        );
        assert_eq!(
            ChainId::new("Main"),
            Err(ChainIdError::BadCharacter { position: 0 })
        );
        assert_eq!(
            ChainId::new("-x"),
            Err(ChainIdError::BadCharacter { position: 0 })
        );
        assert_eq!(
            ChainId::new("a b"),
            Err(ChainIdError::BadCharacter { position: 1 })
        );
    }

    #[test]
    fn chain_id_codec_rejects_invalid() {
        let id = ChainId::new("hz-main").unwrap();
        assert_eq!(decode_exact::<ChainId>(&id.to_bytes(), 64).unwrap(), id);
        let mut bad = 3u32.to_le_bytes().to_vec();
        bad.extend_from_slice(b"A-b");
        assert!(matches!(
            decode_exact::<ChainId>(&bad, 64),
            Err(DecodeError::InvalidValue {
                what: "chain id",
                ..
            })
        ));
    }

    #[test]
    fn newtypes_step_without_overflow() {
        assert_eq!(Height::new(u64::MAX).next(), None);
        assert_eq!(Height::new(0).prev(), None);
        assert_eq!(Round::new(1).next(), Some(Round::new(2)));
        assert_eq!(format!("{:?}", Height::new(5)), "Height(5)");
    }
}
