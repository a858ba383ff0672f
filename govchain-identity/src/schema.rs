//! Credential schemas: typed attributes with a disclosure policy, a maximum
//! validity and a lifecycle.
//!
//! A schema is content-hashed: its id ([`SchemaId`]) is the hash of its
//! canonical encoding under [`IdDomain::Schema`] with the hash function of
//! the identity chain's crypto suite ([`Schema::id`]), so two parties that
//! name the same id on one chain agree on every attribute, type and limit.
//! The same schema has a different id on an ed25519-blake3 chain and on an
//! sm2-sm3 chain. The mutable part
//! (lifecycle, publisher) lives beside it in the on-chain [`SchemaRecord`].

use govchain_core::codec::{encode_bytes, encode_seq, Decode, DecodeError, Encode, Reader};
use govchain_core::crypto::CryptoSuite;
use govchain_core::types::Height;

use crate::domain::IdDomain;
use crate::ids::{IssuerId, SchemaId};

/// Most attributes in one schema.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 32;
/// Longest schema name, in bytes.
pub const MAX_SCHEMA_NAME_LEN: usize = 64;
/// Longest text or bytes claim value, in bytes.
pub const MAX_CLAIM_VALUE_LEN: usize = 4096;

/// The type of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// UTF-8 text of at most `max_len` bytes.
    Text {
        /// Longest value, at most [`MAX_CLAIM_VALUE_LEN`].
        max_len: u16,
    },
    /// A signed 64-bit integer.
    Integer,
    /// A boolean.
    Boolean,
    /// A calendar date as days since 1970-01-01.
    Date,
    /// Opaque bytes of at most `max_len` bytes (e.g. a photo hash).
    Bytes {
        /// Longest value, at most [`MAX_CLAIM_VALUE_LEN`].
        max_len: u16,
    },
}

impl AttrType {
    /// Whether `value` is of this type and within its length limit.
    pub fn admits(&self, value: &ClaimValue) -> bool {
        match (self, value) {
            (AttrType::Text { max_len }, ClaimValue::Text(s)) => s.len() <= usize::from(*max_len),
            (AttrType::Integer, ClaimValue::Integer(_))
            | (AttrType::Boolean, ClaimValue::Boolean(_))
            | (AttrType::Date, ClaimValue::Date(_)) => true,
            (AttrType::Bytes { max_len }, ClaimValue::Bytes(b)) => b.len() <= usize::from(*max_len),
            _ => false,
        }
    }
}

impl Encode for AttrType {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            AttrType::Text { max_len } => {
                out.push(1);
                max_len.encode_to(out);
            }
            AttrType::Integer => out.push(2),
            AttrType::Boolean => out.push(3),
            AttrType::Date => out.push(4),
            AttrType::Bytes { max_len } => {
                out.push(5);
                max_len.encode_to(out);
            }
        }
    }
}

impl Decode for AttrType {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limit = |r: &mut Reader<'_>| -> Result<u16, DecodeError> {
            let max_len = u16::decode_from(r)?;
            if usize::from(max_len) > MAX_CLAIM_VALUE_LEN {
                return Err(DecodeError::InvalidValue {
                    what: "attribute type",
                    reason: "length limit above MAX_CLAIM_VALUE_LEN",
                });
            }
            Ok(max_len)
        };
        Ok(match r.u8()? {
            1 => AttrType::Text { max_len: limit(r)? },
            2 => AttrType::Integer,
            3 => AttrType::Boolean,
            4 => AttrType::Date,
            5 => AttrType::Bytes { max_len: limit(r)? },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "attribute type",
                    tag,
                })
            }
        })
    }
}

/// A claim's value. Values are personal data: they live only in credentials
/// and presentations, never on a ledger or in an audit record.
#[derive(Clone, PartialEq, Eq)]
pub enum ClaimValue {
    /// UTF-8 text.
    Text(String),
    /// A signed integer (encoded as its two's-complement `u64`).
    Integer(i64),
    /// A boolean.
    Boolean(bool),
    /// Days since 1970-01-01.
    Date(u32),
    /// Opaque bytes.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for ClaimValue {
    /// Redacted: claim values are personal data and must not reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            ClaimValue::Text(_) => "Text",
            ClaimValue::Integer(_) => "Integer",
            ClaimValue::Boolean(_) => "Boolean",
            ClaimValue::Date(_) => "Date",
            ClaimValue::Bytes(_) => "Bytes",
        };
        write!(f, "ClaimValue::{kind}(<redacted>)")
    }
}

impl Encode for ClaimValue {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            ClaimValue::Text(s) => {
                out.push(1);
                encode_bytes(s.as_bytes(), out);
            }
            ClaimValue::Integer(i) => {
                out.push(2);
                // Two's complement: one spelling per value.
                u64::from_le_bytes(i.to_le_bytes()).encode_to(out);
            }
            ClaimValue::Boolean(b) => {
                out.push(3);
                b.encode_to(out);
            }
            ClaimValue::Date(d) => {
                out.push(4);
                d.encode_to(out);
            }
            ClaimValue::Bytes(b) => {
                out.push(5);
                encode_bytes(b, out);
            }
        }
    }
}

impl Decode for ClaimValue {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => ClaimValue::Text(r.string("claim text", MAX_CLAIM_VALUE_LEN)?),
            2 => ClaimValue::Integer(i64::from_le_bytes(r.array()?)),
            3 => ClaimValue::Boolean(bool::decode_from(r)?),
            4 => ClaimValue::Date(u32::decode_from(r)?),
            5 => ClaimValue::Bytes(r.bytes("claim bytes", MAX_CLAIM_VALUE_LEN)?.to_vec()),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "claim value",
                    tag,
                })
            }
        })
    }
}

/// How an attribute may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisclosurePolicy {
    /// Always shown: carried in clear inside the signed credential (for
    /// example the document type or issuing region).
    Always,
    /// Shown only when the holder chooses: the credential carries a salted
    /// digest, the holder reveals salt and value.
    Selective,
}

impl Encode for DisclosurePolicy {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            DisclosurePolicy::Always => 1,
            DisclosurePolicy::Selective => 2,
        });
    }
}

impl Decode for DisclosurePolicy {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(DisclosurePolicy::Always),
            2 => Ok(DisclosurePolicy::Selective),
            tag => Err(DecodeError::InvalidTag {
                what: "disclosure policy",
                tag,
            }),
        }
    }
}

/// One attribute of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name: 1 to 32 bytes of `[a-z0-9_]`, starting with a letter.
    pub name: String,
    /// Value type.
    pub ty: AttrType,
    /// Always or selectively disclosed.
    pub disclosure: DisclosurePolicy,
    /// Whether every credential of the schema must carry it.
    pub required: bool,
}

impl Attribute {
    /// A convenience constructor.
    pub fn new(name: &str, ty: AttrType, disclosure: DisclosurePolicy, required: bool) -> Self {
        Attribute {
            name: name.to_owned(),
            ty,
            disclosure,
            required,
        }
    }
}

/// Whether `name` is a valid attribute name.
pub fn is_valid_attribute_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ATTRIBUTE_NAME_LEN
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl Encode for Attribute {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.name.as_bytes(), out);
        self.ty.encode_to(out);
        self.disclosure.encode_to(out);
        self.required.encode_to(out);
    }
}

impl Decode for Attribute {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r.string("attribute name", MAX_ATTRIBUTE_NAME_LEN)?;
        if !is_valid_attribute_name(&name) {
            return Err(DecodeError::InvalidValue {
                what: "attribute name",
                reason: "must be 1..=32 bytes of [a-z0-9_] starting with a letter",
            });
        }
        Ok(Attribute {
            name,
            ty: AttrType::decode_from(r)?,
            disclosure: DisclosurePolicy::decode_from(r)?,
            required: bool::decode_from(r)?,
        })
    }
}

/// Why a schema is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema name is empty or too long.
    #[error("schema name must be 1..={MAX_SCHEMA_NAME_LEN} bytes")]
    BadName,
    /// No attributes, or more than [`MAX_ATTRIBUTES`].
    #[error("a schema has 1..={MAX_ATTRIBUTES} attributes, got {count}")]
    AttributeCount {
        /// How many were given.
        count: usize,
    },
    /// An attribute name breaks the naming rule.
    #[error("invalid attribute name {name:?}")]
    BadAttributeName {
        /// The name.
        name: String,
    },
    /// Two attributes share a name.
    #[error("duplicate attribute {name:?}")]
    DuplicateAttribute {
        /// The name.
        name: String,
    },
    /// A text or bytes limit above [`MAX_CLAIM_VALUE_LEN`].
    #[error("attribute {name:?} allows values longer than {MAX_CLAIM_VALUE_LEN} bytes")]
    ValueLimitTooLarge {
        /// The attribute.
        name: String,
    },
    /// The maximum validity is zero.
    #[error("maximum validity must be positive")]
    ZeroValidity,
}

/// A credential schema. Construct with [`Schema::new`], which sorts the
/// attributes by name and validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    name: String,
    version: u32,
    attributes: Vec<Attribute>,
    max_validity_ms: u64,
}

impl Schema {
    /// Validates a schema. Attributes are sorted by name (the canonical
    /// order, so the content hash does not depend on the order given).
    pub fn new(
        name: &str,
        version: u32,
        mut attributes: Vec<Attribute>,
        max_validity_ms: u64,
    ) -> Result<Self, SchemaError> {
        if name.is_empty() || name.len() > MAX_SCHEMA_NAME_LEN {
            return Err(SchemaError::BadName);
        }
        if attributes.is_empty() || attributes.len() > MAX_ATTRIBUTES {
            return Err(SchemaError::AttributeCount {
                count: attributes.len(),
            });
        }
        if max_validity_ms == 0 {
            return Err(SchemaError::ZeroValidity);
        }
        attributes.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, a) in attributes.iter().enumerate() {
            if !is_valid_attribute_name(&a.name) {
                return Err(SchemaError::BadAttributeName {
                    name: a.name.clone(),
                });
            }
            if i > 0 && attributes[i - 1].name == a.name {
                return Err(SchemaError::DuplicateAttribute {
                    name: a.name.clone(),
                });
            }
            if let AttrType::Text { max_len } | AttrType::Bytes { max_len } = a.ty {
                if usize::from(max_len) > MAX_CLAIM_VALUE_LEN {
                    return Err(SchemaError::ValueLimitTooLarge {
                        name: a.name.clone(),
                    });
                }
            }
        }
        Ok(Schema {
            name: name.to_owned(),
            version,
            attributes,
            max_validity_ms,
        })
    }

    /// The content hash under `suite`, the crypto suite of the identity
    /// chain the schema is published on: this schema's id there.
    pub fn id(&self, suite: CryptoSuite) -> SchemaId {
        SchemaId(IdDomain::Schema.hash(suite, &[&self.to_bytes()]))
    }

    /// The human-readable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema's own version number.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Attributes, sorted by name.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// Longest validity window a credential may have, in milliseconds.
    pub fn max_validity_ms(&self) -> u64 {
        self.max_validity_ms
    }

    /// The attribute called `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .binary_search_by(|a| a.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.attributes[i])
    }

    /// How many attributes are selectively disclosable.
    pub fn selective_count(&self) -> usize {
        self.attributes
            .iter()
            .filter(|a| a.disclosure == DisclosurePolicy::Selective)
            .count()
    }
}

impl Encode for Schema {
    fn encode_to(&self, out: &mut Vec<u8>) {
        encode_bytes(self.name.as_bytes(), out);
        self.version.encode_to(out);
        encode_seq(&self.attributes, out);
        self.max_validity_ms.encode_to(out);
    }
}

impl Decode for Schema {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r.string("schema name", MAX_SCHEMA_NAME_LEN)?;
        let version = u32::decode_from(r)?;
        let attributes: Vec<Attribute> = r.seq("schema attributes", MAX_ATTRIBUTES)?;
        let max_validity_ms = u64::decode_from(r)?;
        // Canonical: strictly sorted names (which also rules out duplicates).
        if attributes.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(DecodeError::InvalidValue {
                what: "schema",
                reason: "attributes not strictly sorted by name",
            });
        }
        Schema::new(&name, version, attributes, max_validity_ms).map_err(|_| {
            DecodeError::InvalidValue {
                what: "schema",
                reason: "invalid schema",
            }
        })
    }
}

/// A schema's lifecycle. Transitions only go forward: active → deprecated →
/// withdrawn (or active → withdrawn). Deprecated schemas still verify unless
/// a hall's policy refuses them; withdrawn schemas never verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// In use.
    Active,
    /// No new issuance expected; existing credentials still valid.
    Deprecated,
    /// No credential of this schema is valid any more.
    Withdrawn,
}

impl Lifecycle {
    /// Whether a record may move from `self` to `next`.
    pub fn may_become(self, next: Lifecycle) -> bool {
        next > self
    }
}

impl Encode for Lifecycle {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(match self {
            Lifecycle::Active => 1,
            Lifecycle::Deprecated => 2,
            Lifecycle::Withdrawn => 3,
        });
    }
}

impl Decode for Lifecycle {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Lifecycle::Active),
            2 => Ok(Lifecycle::Deprecated),
            3 => Ok(Lifecycle::Withdrawn),
            tag => Err(DecodeError::InvalidTag {
                what: "lifecycle",
                tag,
            }),
        }
    }
}

/// A schema as stored on chain, under
/// [`state::schema_key`](crate::state::schema_key)`(schema.id(suite))`, `suite`
/// being the chain's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRecord {
    /// The schema (immutable; its hash is the key).
    pub schema: Schema,
    /// The registry member that published it; only it may change the
    /// lifecycle.
    pub publisher: IssuerId,
    /// Current lifecycle.
    pub lifecycle: Lifecycle,
    /// Height of the block that published it.
    pub published_at: Height,
}

/// Largest encoded [`SchemaRecord`].
pub const MAX_SCHEMA_RECORD_LEN: usize = 16 * 1024;

impl Encode for SchemaRecord {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.schema.encode_to(out);
        self.publisher.encode_to(out);
        self.lifecycle.encode_to(out);
        self.published_at.encode_to(out);
    }
}

impl Decode for SchemaRecord {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SchemaRecord {
            schema: Schema::decode_from(r)?,
            publisher: IssuerId::decode_from(r)?,
            lifecycle: Lifecycle::decode_from(r)?,
            published_at: Height::decode_from(r)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use govchain_core::codec::decode_exact;
    use proptest::prelude::*;

    pub(crate) fn resident_schema() -> Schema {
        Schema::new(
            "resident-identity",
            1,
            vec![
                Attribute::new(
                    "document_type",
                    AttrType::Text { max_len: 32 },
                    DisclosurePolicy::Always,
                    true,
                ),
                Attribute::new(
                    "name",
                    AttrType::Text { max_len: 128 },
                    DisclosurePolicy::Selective,
                    true,
                ),
                Attribute::new(
                    "birth_date",
                    AttrType::Date,
                    DisclosurePolicy::Selective,
                    true,
                ),
                Attribute::new(
                    "over_18",
                    AttrType::Boolean,
                    DisclosurePolicy::Selective,
                    false,
                ),
            ],
            365 * 24 * 3600 * 1000,
        )
        .unwrap()
    }

    #[test]
    fn schema_sorts_validates_and_hashes_content() {
        let s = resident_schema();
        let names: Vec<_> = s.attributes().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["birth_date", "document_type", "name", "over_18"]);
        assert_eq!(s.selective_count(), 3);
        assert!(s.attribute("name").is_some() && s.attribute("nope").is_none());
        let mut attrs = s.attributes().to_vec();
        attrs.reverse();
        let same = Schema::new("resident-identity", 1, attrs.clone(), s.max_validity_ms()).unwrap();
        let other =
            Schema::new("resident-identity", 2, attrs.clone(), s.max_validity_ms()).unwrap();
        for &suite in CryptoSuite::ALL {
            assert_eq!(same.id(suite), s.id(suite));
            assert_ne!(other.id(suite), s.id(suite));
        }
        assert_ne!(s.id(CryptoSuite::Ed25519Blake3), s.id(CryptoSuite::Sm2Sm3));
        attrs.push(attrs[0].clone());
        assert!(matches!(
            Schema::new("x", 1, attrs, 1),
            Err(SchemaError::DuplicateAttribute { .. })
        ));
        assert_eq!(
            Schema::new("x", 1, vec![], 1),
            Err(SchemaError::AttributeCount { count: 0 })
        );
        let bad = Attribute::new("Bad", AttrType::Integer, DisclosurePolicy::Always, false);
        assert!(matches!(
            Schema::new("x", 1, vec![bad], 1),
            Err(SchemaError::BadAttributeName { .. })
        ));
        let big = Attribute::new(
            "b",
            AttrType::Bytes { max_len: 5000 },
            DisclosurePolicy::Always,
            false,
        );
        assert!(matches!(
            Schema::new("x", 1, vec![big], 1),
            Err(SchemaError::ValueLimitTooLarge { .. })
        ));
    }

    #[test]
    fn types_admit_only_their_values() {
        let t = AttrType::Text { max_len: 3 };
        assert!(t.admits(&ClaimValue::Text("abc".into())));
        assert!(!t.admits(&ClaimValue::Text("abcd".into())));
        assert!(!t.admits(&ClaimValue::Integer(1)));
        assert!(AttrType::Date.admits(&ClaimValue::Date(1)));
        assert!(!AttrType::Boolean.admits(&ClaimValue::Date(1)));
        assert_eq!(
            format!("{:?}", ClaimValue::Text("secret".into())),
            "ClaimValue::Text(<redacted>)"
        );
    }

    #[test]
    fn lifecycle_only_moves_forward() {
        use Lifecycle::*;
        assert!(
            Active.may_become(Deprecated)
                && Active.may_become(Withdrawn)
                && Deprecated.may_become(Withdrawn)
        );
        assert!(
            !Withdrawn.may_become(Active)
                && !Deprecated.may_become(Active)
                && !Active.may_become(Active)
        );
    }

    #[test]
    fn unsorted_schema_encoding_is_refused() {
        let s = resident_schema();
        let mut out = Vec::new();
        encode_bytes(s.name.as_bytes(), &mut out);
        s.version.encode_to(&mut out);
        let mut attrs = s.attributes.clone();
        attrs.swap(0, 1);
        encode_seq(&attrs, &mut out);
        s.max_validity_ms.encode_to(&mut out);
        assert!(matches!(
            decode_exact::<Schema>(&out, 4096),
            Err(DecodeError::InvalidValue { .. })
        ));
    }

    fn claim_value() -> impl Strategy<Value = ClaimValue> {
        prop_oneof![
            ".{0,20}".prop_map(ClaimValue::Text),
            any::<i64>().prop_map(ClaimValue::Integer),
            any::<bool>().prop_map(ClaimValue::Boolean),
            any::<u32>().prop_map(ClaimValue::Date),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(ClaimValue::Bytes),
        ]
    }

    proptest! {
        #[test]
        fn claim_values_round_trip(v in claim_value()) {
            prop_assert_eq!(decode_exact::<ClaimValue>(&v.to_bytes(), 8192).unwrap(), v);
        }

        #[test]
        fn schema_record_round_trip_and_garbage(version in any::<u32>(), h in any::<u64>(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let schema = Schema::new("s", version, resident_schema().attributes().to_vec(), 5).unwrap();
            let rec = SchemaRecord { schema, publisher: IssuerId::new("p").unwrap(), lifecycle: Lifecycle::Deprecated, published_at: Height::new(h) };
            prop_assert_eq!(decode_exact::<SchemaRecord>(&rec.to_bytes(), MAX_SCHEMA_RECORD_LEN).unwrap(), rec);
            if let Ok(r) = decode_exact::<SchemaRecord>(&bytes, MAX_SCHEMA_RECORD_LEN) {
                prop_assert_eq!(r.to_bytes(), bytes);
            }
        }
    }
}
