//! The canonical byte encoding: one deterministic form per type, used for
//! hashing, signing, the wire and disk.
//!
//! # The format
//! - Unsigned integers are fixed-width little-endian (`u8`, `u16`, `u32`,
//!   `u64`, `u128`). Fixed width means there is no second spelling of a
//!   number, unlike LEB128 varints.
//! - `bool` is one byte, `0` or `1`; any other byte is rejected.
//! - Byte strings and sequences carry a `u32` little-endian length, then the
//!   bytes or items. Every length is checked against a per-field maximum and
//!   against the bytes left in the input *before* anything is allocated.
//! - `Option<T>` is a tag byte `0` (none) or `1` (some) followed by `T`.
//! - Fixed arrays (`[u8; N]`, hashes, keys) are raw bytes with no length.
//! - Enums are a `u8` tag followed by the variant's fields.
//! - Strings are length-prefixed UTF-8; invalid UTF-8 is rejected.
//!
//! Decoding is strict: [`decode_exact`] rejects input longer than an explicit
//! limit, trailing bytes, truncation, unknown tags and every non-canonical
//! form above, each with its own [`DecodeError`] variant. Because every value
//! has exactly one encoding, `encode(decode(b)) == b` for every accepted `b`.
//!
//! ```
//! use govchain_core::codec::{decode_exact, Encode};
//! let value: (u64, Vec<u8>) = (7, b"payload".to_vec());
//! let bytes = value.to_bytes();
//! let back: (u64, Vec<u8>) = decode_exact(&bytes, 1024)?;
//! assert_eq!(back, value);
//! assert!(decode_exact::<(u64, Vec<u8>)>(&bytes[..bytes.len() - 1], 1024).is_err());
//! # Ok::<(), govchain_core::codec::DecodeError>(())
//! ```

/// Why bytes were refused by a decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The whole input is larger than the caller's limit.
    #[error("input of {len} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        /// Length of the input.
        len: usize,
        /// The limit it was checked against.
        limit: usize,
    },
    /// The input ended before the value was complete.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd {
        /// Bytes the decoder needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes were left over after a complete value.
    #[error("{remaining} trailing bytes after a complete value")]
    TrailingBytes {
        /// How many bytes were left over.
        remaining: usize,
    },
    /// A length prefix is larger than the field allows.
    #[error("{what}: length {len} exceeds the maximum {max}")]
    LengthTooLarge {
        /// The field or type being decoded.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The maximum for this field.
        max: u64,
    },
    /// A tag byte names no variant.
    #[error("{what}: invalid tag {tag}")]
    InvalidTag {
        /// The type being decoded.
        what: &'static str,
        /// The tag that was found.
        tag: u8,
    },
    /// A string is not valid UTF-8.
    #[error("{what}: invalid UTF-8")]
    InvalidUtf8 {
        /// The field being decoded.
        what: &'static str,
    },
    /// The bytes are well formed but the value breaks a rule of its type
    /// (for example a non-canonical curve point, or unsorted set entries).
    #[error("{what}: {reason}")]
    InvalidValue {
        /// The type being decoded.
        what: &'static str,
        /// The rule that was broken.
        reason: &'static str,
    },
}

/// Types with a canonical byte form.
pub trait Encode {
    /// Appends the canonical encoding of `self` to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The canonical encoding of `self`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// Types that can be decoded from their canonical byte form.
///
/// Implementations must reject every non-canonical input, so that
/// `decode → encode` is the identity on accepted bytes.
pub trait Decode: Sized {
    /// Reads one value from `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Decodes exactly one `T` from `bytes`, which must be at most `limit` bytes
/// long and hold nothing after the value.
pub fn decode_exact<T: Decode>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::InputTooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let mut r = Reader::new(bytes);
    let value = T::decode_from(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// A cursor over untrusted input.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// The bytes not yet read, without reading them: a decoder that needs
    /// the exact encoding of what it decodes (to hash it) takes this before
    /// and [`remaining`](Self::remaining) after.
    pub fn unread(&self) -> &'a [u8] {
        self.bytes
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless all input was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                remaining: self.bytes.len(),
            })
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed: n,
                remaining: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a length prefix and checks it against `max` and against the
    /// input that is left, assuming each item takes at least
    /// `min_item_len` bytes. Nothing is allocated before this check.
    pub fn length(
        &mut self,
        what: &'static str,
        max: usize,
        min_item_len: usize,
    ) -> Result<usize, DecodeError> {
        let len = u32::decode_from(self)? as usize;
        if len > max {
            return Err(DecodeError::LengthTooLarge {
                what,
                len: len as u64,
                max: max as u64,
            });
        }
        let needed = len.saturating_mul(min_item_len);
        if needed > self.bytes.len() {
            return Err(DecodeError::UnexpectedEnd {
                needed,
                remaining: self.bytes.len(),
            });
        }
        Ok(len)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.length(what, max, 1)?;
        self.take(len)
    }

    /// Reads a length-prefixed sequence of at most `max` items.
    pub fn seq<T: Decode>(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Vec<T>, DecodeError> {
        let len = self.length(what, max, 1)?;
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(T::decode_from(self)?);
        }
        Ok(out)
    }

    /// Reads a length-prefixed UTF-8 string of at most `max` bytes.
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let raw = self.bytes(what, max)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { what })
    }
}

/// Writes a `u32` length prefix. Callers bound their collections well below
/// `u32::MAX`; a longer one would be a programming error and is saturated
/// rather than wrapped, so that it can never decode as something shorter.
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
}

/// Writes a length-prefixed byte string.
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    encode_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Writes a length-prefixed sequence.
pub fn encode_seq<T: Encode>(items: &[T], out: &mut Vec<u8>) {
    encode_len(items.len(), out);
    for item in items {
        item.encode_to(out);
    }
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
        impl Decode for $t {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, u128);

impl Encode for bool {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what: "bool", tag }),
        }
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array()
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode_to(out);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "option",
                tag,
            }),
        }
    }
}

/// Maximum length of a generic `Vec<u8>` or `Vec<T>` decoded without a
/// field-specific bound. Types with tighter limits use [`Reader::bytes`] and
/// [`Reader::seq`] directly; this only caps the generic impls.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024 * 1024;

impl Encode for Vec<u8> {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self, out);
    }
}

impl Decode for Vec<u8> {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.bytes("bytes", DEFAULT_MAX_LEN)?.to_vec())
    }
}

impl Encode for String {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.as_bytes(), out);
    }
}

impl Decode for String {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string("string", DEFAULT_MAX_LEN)
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.0.encode_to(out);
        self.1.encode_to(out);
    }
}

impl<A: Decode, B: Decode> Decode for (A, B) {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode_from(r)?, B::decode_from(r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Sample {
        a: u64,
        b: bool,
        c: Option<u32>,
        d: Vec<u8>,
        e: String,
        f: [u8; 4],
        g: Vec<(u16, u128)>,
    }

    impl Encode for Sample {
        fn encode_to(&self, out: &mut Vec<u8>) {
            self.a.encode_to(out);
            self.b.encode_to(out);
            self.c.encode_to(out);
            self.d.encode_to(out);
            self.e.encode_to(out);
            self.f.encode_to(out);
            encode_seq(&self.g, out);
        }
    }

    impl Decode for Sample {
        fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            Ok(Sample {
                a: u64::decode_from(r)?,
                b: bool::decode_from(r)?,
                c: Option::decode_from(r)?,
                d: Vec::decode_from(r)?,
                e: String::decode_from(r)?,
                f: r.array()?,
                g: r.seq("g", 100)?,
            })
        }
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            any::<u64>(),
            any::<bool>(),
            any::<Option<u32>>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            ".{0,10}",
            any::<[u8; 4]>(),
            proptest::collection::vec(any::<(u16, u128)>(), 0..5),
        )
            .prop_map(|(a, b, c, d, e, f, g)| Sample {
                a,
                b,
                c,
                d,
                e,
                f,
                g,
            })
    }

    proptest! {
        #[test]
        fn round_trip(s in sample()) {
            let bytes = s.to_bytes();
            prop_assert_eq!(decode_exact::<Sample>(&bytes, 1 << 20).unwrap(), s);
        }

        #[test]
        fn decode_then_encode_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(s) = decode_exact::<Sample>(&bytes, 1 << 20) {
                prop_assert_eq!(s.to_bytes(), bytes);
            }
        }

        #[test]
        fn truncation_and_trailing_rejected(s in sample(), extra in 1u8..=255) {
            let bytes = s.to_bytes();
            for cut in 0..bytes.len() {
                prop_assert!(decode_exact::<Sample>(&bytes[..cut], 1 << 20).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(extra);
            prop_assert_eq!(
                decode_exact::<Sample>(&longer, 1 << 20),
                Err(DecodeError::TrailingBytes { remaining: 1 })
            );
        }
    }

    #[test]
    fn limits_and_tags() {
        assert_eq!(
            decode_exact::<u64>(&[0; 8], 7),
            Err(DecodeError::InputTooLarge { len: 8, limit: 7 })
        );
        assert_eq!(
            decode_exact::<bool>(&[2], 8),
            Err(DecodeError::InvalidTag {
                what: "bool",
                tag: 2
            })
        );
        assert_eq!(
            decode_exact::<Option<u8>>(&[3, 0], 8),
            Err(DecodeError::InvalidTag {
                what: "option",
                tag: 3
            })
        );
        // A length prefix larger than the input is refused before allocating.
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.push(0);
        assert!(matches!(
            decode_exact::<Vec<u8>>(&huge, 64),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let mut long = 1000u32.to_le_bytes().to_vec();
        long.push(0);
        assert_eq!(
            decode_exact::<Vec<u8>>(&long, 64),
            Err(DecodeError::UnexpectedEnd {
                needed: 1000,
                remaining: 1
            })
        );
        let bad_utf8 = [1u8, 0, 0, 0, 0xff];
        assert_eq!(
            decode_exact::<String>(&bad_utf8, 64),
            Err(DecodeError::InvalidUtf8 { what: "string" })
        );
    }
}
