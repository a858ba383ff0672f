//! Public keys, signatures, and in-process secret keys.

use std::fmt;
use std::sync::{Arc, OnceLock};

use curve25519_dalek::edwards::EdwardsPoint;

use super::ed25519::{point_rejection, signature_rejection, PointRejection};
use super::sm2::{Sm2Key, Sm2Secret};
use super::{CryptoSuite, SignatureAlgorithm};
use crate::codec::{Decode, DecodeError, Encode, Reader};

/// A public verification key of one of the [`SignatureAlgorithm`]s.
///
/// Canonical encoding: the algorithm's tag byte, then the key's fixed-length
/// raw bytes (32 for Ed25519, 33 for SM2; the decoder knows the length from
/// the tag), so [`PublicKey::MIN_ENCODED_LEN`] ≤ length ≤
/// [`PublicKey::MAX_ENCODED_LEN`].
///
/// A `PublicKey` value always satisfies govchain's byte-level key rules:
/// - **Ed25519**: a canonical encoding that is not one of the small-order
///   points (see the [module docs](super)). Whether the bytes are a curve
///   point at all is decided once, lazily, at the first verification (or by
///   [`PublicKey::is_on_curve`]) and cached: decoding a transaction, block
///   or certificate therefore never pays a field square root per key, which
///   dominated reading stored blocks. A key that is not a curve point can
///   never verify a signature.
/// - **SM2**: a compressed SEC1 point (`02`/`03` then `x`, 33 bytes) that
///   *is* on the curve and is the canonical encoding of that point (`x < p`).
///   For SM2, decompression is part of parsing: it is checked when the key
///   is decoded, and the parsed point (with its signer identity `Z_A`) is
///   kept behind an `Arc` and shared by clones. A process-wide cache keyed by
///   the bytes spares a repeating sender's key the decompression.
///
/// Cheap to clone (at most 56 bytes and one reference count). Equality,
/// ordering and hashing are on `(algorithm tag, raw bytes)`, so among keys
/// of one algorithm the order is that of their bytes.
#[derive(Clone)]
pub struct PublicKey {
    repr: KeyRepr,
}

#[derive(Clone)]
enum KeyRepr {
    Ed25519 {
        bytes: [u8; 32],
        /// The decompressed key for both verification paths, computed on
        /// first use and shared between clones (behind an `Arc` so that a
        /// `PublicKey` stays small and errors that carry one stay small).
        /// The inner `None` caches "not a curve point".
        point: OnceLock<Option<Arc<EdwardsPoint>>>,
    },
    Sm2(Arc<Sm2Key>),
}

impl PublicKey {
    /// Length of the shortest canonical encoding (tag plus an Ed25519 key).
    pub const MIN_ENCODED_LEN: usize = 33;
    /// Length of the longest canonical encoding (tag plus an SM2 key): the
    /// bound to use for buffers and decode limits.
    pub const MAX_ENCODED_LEN: usize = 34;

    /// Parses raw Ed25519 key bytes.
    ///
    /// Refuses non-canonical encodings and the eight small-order points
    /// (byte comparisons, no curve arithmetic). Keys with a torsion
    /// component are accepted (ZIP-215); see [`PublicKey::is_torsion_free`].
    /// Curve membership is checked lazily; see [`PublicKey::is_on_curve`].
    pub fn ed25519_from_bytes(bytes: [u8; 32]) -> Result<Self, DecodeError> {
        if let Some(why) = point_rejection(&bytes) {
            return Err(DecodeError::InvalidValue {
                what: "ed25519 public key",
                reason: match why {
                    PointRejection::NonCanonical => "non-canonical point encoding",
                    PointRejection::SmallOrder => "small-order point",
                },
            });
        }
        Ok(PublicKey {
            repr: KeyRepr::Ed25519 {
                bytes,
                point: OnceLock::new(),
            },
        })
    }

    /// Parses an SM2 key: a compressed SEC1 point, 33 bytes.
    ///
    /// Refuses a first byte other than `02`/`03`, an `x` that is not a
    /// canonical field element, and an `x` with no point on the curve (the
    /// point is decompressed here; the identity has no compressed encoding).
    pub fn sm2_from_bytes(bytes: [u8; 33]) -> Result<Self, DecodeError> {
        key_cache::sm2(&bytes)
            .map(|key| PublicKey {
                repr: KeyRepr::Sm2(key),
            })
            .map_err(|reason| DecodeError::InvalidValue {
                what: "sm2 public key",
                reason,
            })
    }

    /// Parses raw key bytes of `algorithm` (without the tag), whose length
    /// must be [`SignatureAlgorithm::public_key_len`].
    pub fn from_raw(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Self, DecodeError> {
        let wrong_length = || DecodeError::InvalidValue {
            what: "public key",
            reason: "wrong length for its algorithm",
        };
        match algorithm {
            SignatureAlgorithm::Ed25519 => {
                PublicKey::ed25519_from_bytes(bytes.try_into().map_err(|_| wrong_length())?)
            }
            SignatureAlgorithm::Sm2 => {
                PublicKey::sm2_from_bytes(bytes.try_into().map_err(|_| wrong_length())?)
            }
        }
    }

    /// Whether the key bytes are a point on the curve. For Ed25519 this
    /// decompresses once and caches the result; registries that admit keys
    /// (validators, issuers) should require it, so that an admitted key can
    /// sign. SM2 keys are checked when decoded, so this is always true.
    pub fn is_on_curve(&self) -> bool {
        match &self.repr {
            KeyRepr::Ed25519 { .. } => self.decompressed().is_some(),
            KeyRepr::Sm2(_) => true,
        }
    }

    /// The decompressed Ed25519 key, computed on first use by either
    /// verification path and cached (`None`: not a curve point, or not an
    /// Ed25519 key).
    pub(crate) fn decompressed(&self) -> Option<&EdwardsPoint> {
        match &self.repr {
            KeyRepr::Ed25519 { bytes, point } => {
                point.get_or_init(|| key_cache::ed25519(bytes)).as_deref()
            }
            KeyRepr::Sm2(_) => None,
        }
    }

    /// The parsed SM2 key (`None` for other algorithms).
    pub(crate) fn sm2(&self) -> Option<&Sm2Key> {
        match &self.repr {
            KeyRepr::Sm2(key) => Some(key),
            KeyRepr::Ed25519 { .. } => None,
        }
    }

    /// The SM2 signer identity `Z_A` of this key under
    /// [`SM2_DEFAULT_DISTID`](super::SM2_DEFAULT_DISTID) (GM/T 0003.2 §5.5),
    /// or `None` for a key of another algorithm.
    pub fn sm2_signer_identity(&self) -> Option<[u8; 32]> {
        self.sm2().map(|k| k.za)
    }

    /// The SM2 message digest `e = SM3(Z_A ‖ message)` that an SM2
    /// signature by this key signs (GM/T 0003.2 §6.1 A1–A2): what an HSM
    /// that signs digests needs. `None` for a key of another algorithm.
    pub fn sm2_message_digest(&self, message: &[u8]) -> Option<[u8; 32]> {
        self.sm2().map(|k| k.message_digest(message))
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match &self.repr {
            KeyRepr::Ed25519 { .. } => SignatureAlgorithm::Ed25519,
            KeyRepr::Sm2(_) => SignatureAlgorithm::Sm2,
        }
    }

    /// The raw Ed25519 key bytes, or `None` for a key of another algorithm.
    pub fn ed25519_bytes(&self) -> Option<&[u8; 32]> {
        match &self.repr {
            KeyRepr::Ed25519 { bytes, .. } => Some(bytes),
            KeyRepr::Sm2(_) => None,
        }
    }

    /// The raw key bytes (without the algorithm tag), whatever the
    /// algorithm: 32 bytes for Ed25519, 33 for SM2.
    pub fn raw_bytes(&self) -> &[u8] {
        match &self.repr {
            KeyRepr::Ed25519 { bytes, .. } => bytes,
            KeyRepr::Sm2(key) => &key.bytes,
        }
    }

    /// Length of this key's canonical encoding (tag plus raw bytes).
    pub fn encoded_len(&self) -> usize {
        1 + self.raw_bytes().len()
    }

    /// Whether the key lies in the prime-order subgroup (has no torsion
    /// component).
    ///
    /// Every key made by [`SecretKey`] (or any RFC 8032 key generation) is
    /// torsion-free, and so is every SM2 key (the curve's cofactor is 1).
    /// Signature validity does **not** depend on this: both Ed25519
    /// verification paths use the cofactored equation and agree on keys with
    /// torsion. A registry may still refuse such keys when it admits them
    /// (validators, accredited issuers), so that every signature govchain
    /// accepts from them also verifies under cofactorless RFC 8032
    /// verifiers. This costs one scalar multiplication (tens of
    /// microseconds); call it at registration, not per signature.
    pub fn is_torsion_free(&self) -> bool {
        match &self.repr {
            KeyRepr::Ed25519 { .. } => self.decompressed().is_some_and(|p| p.is_torsion_free()),
            KeyRepr::Sm2(_) => true,
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm() == other.algorithm() && self.raw_bytes() == other.raw_bytes()
    }
}
impl Eq for PublicKey {}
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.algorithm().tag(), self.raw_bytes())
            .cmp(&(other.algorithm().tag(), other.raw_bytes()))
    }
}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algorithm().tag().hash(state);
        self.raw_bytes().hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.raw_bytes();
        write!(
            f,
            "PublicKey({}:{})",
            self.algorithm().name(),
            hex::encode(&raw[..raw.len().min(8)])
        )
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.algorithm().name(),
            hex::encode(self.raw_bytes())
        )
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.algorithm().tag());
        out.extend_from_slice(self.raw_bytes());
    }
}

impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match SignatureAlgorithm::from_tag(r.u8()?)? {
            SignatureAlgorithm::Ed25519 => PublicKey::ed25519_from_bytes(r.array()?),
            SignatureAlgorithm::Sm2 => PublicKey::sm2_from_bytes(r.array()?),
        }
    }
}

/// A signature of one of the [`SignatureAlgorithm`]s.
///
/// Canonical encoding: the algorithm's tag byte, then 64 raw bytes
/// ([`Signature::ENCODED_LEN`] for every algorithm). A `Signature` value
/// always satisfies govchain's signature encoding rules:
/// - **Ed25519** (`R ‖ S`): `S < ℓ`, and `R` is a canonical encoding of a
///   point that is not of small order (see the [module docs](super));
/// - **SM2** (`r ‖ s`, big-endian): `0 < r < n` and `0 < s < n`
///   (GM/T 0003.2 §7.1 B1–B2, checked at decode).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    algorithm: SignatureAlgorithm,
    bytes: [u8; 64],
}

impl Signature {
    /// Length of the canonical encoding: tag plus 64 signature bytes, the
    /// same for every algorithm.
    pub const ENCODED_LEN: usize = 65;

    /// Parses raw Ed25519 signature bytes (`R || S`).
    ///
    /// Refuses `S >= ℓ`, a non-canonical encoding of `R`, and a small-order
    /// `R`. Whether `R` is a curve point is left to verification (it costs a
    /// square root), where both paths refuse it alike.
    pub fn ed25519_from_bytes(bytes: [u8; 64]) -> Result<Self, DecodeError> {
        match signature_rejection(&bytes) {
            Some(reason) => Err(DecodeError::InvalidValue {
                what: "ed25519 signature",
                reason,
            }),
            None => Ok(Signature {
                algorithm: SignatureAlgorithm::Ed25519,
                bytes,
            }),
        }
    }

    /// Parses raw SM2 signature bytes (`r || s`, each 32 bytes big-endian).
    ///
    /// Refuses `r` or `s` outside `1..n`.
    pub fn sm2_from_bytes(bytes: [u8; 64]) -> Result<Self, DecodeError> {
        match super::sm2::signature_rejection(&bytes) {
            Some(reason) => Err(DecodeError::InvalidValue {
                what: "sm2 signature",
                reason,
            }),
            None => Ok(Signature {
                algorithm: SignatureAlgorithm::Sm2,
                bytes,
            }),
        }
    }

    /// Parses raw signature bytes of `algorithm` (without the tag).
    pub fn from_raw(algorithm: SignatureAlgorithm, bytes: [u8; 64]) -> Result<Self, DecodeError> {
        match algorithm {
            SignatureAlgorithm::Ed25519 => Signature::ed25519_from_bytes(bytes),
            SignatureAlgorithm::Sm2 => Signature::sm2_from_bytes(bytes),
        }
    }

    /// The signature's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The raw signature bytes (without the algorithm tag): `R ‖ S` for
    /// Ed25519, `r ‖ s` for SM2.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Signature({}:{}…)",
            self.algorithm.name(),
            hex::encode(&self.bytes[..8])
        )
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.algorithm.tag());
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let algorithm = SignatureAlgorithm::from_tag(r.u8()?)?;
        Signature::from_raw(algorithm, r.array()?)
    }
}

/// Something that signs: an in-process secret key here, an HSM or another
/// process elsewhere.
///
/// Contract: `sign` is deterministic or at least always produces signatures
/// that [`verify`](super::verify) accepts under `public_key()`, and it never
/// fails (a remote signer that can fail wraps this trait in its own).
pub trait Signer: Send + Sync {
    /// The key that verifies this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Signature;
}

/// An in-process secret signing key: Ed25519 (RFC 8032, deterministic
/// signatures) or SM2 (GM/T 0003, deterministic RFC 6979 nonces, the
/// default distinguishing identifier
/// [`SM2_DEFAULT_DISTID`](super::SM2_DEFAULT_DISTID)).
///
/// It is zeroized on drop (the inner `ed25519_dalek::SigningKey` is
/// `ZeroizeOnDrop`; the SM2 secret scalar and `(1 + d)^-1` are zeroized by
/// govchain's own `Drop`), it is not `Clone` (a copy would be a second secret
/// to erase; share it behind an `Arc` instead), and `Debug` prints only the
/// public key.
pub struct SecretKey {
    inner: SecretInner,
    public: PublicKey,
}

/// Both secrets are boxed: moving a `SecretKey` never copies a secret, and
/// the two variants have the same small size.
enum SecretInner {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Sm2 {
        secret: Box<Sm2Secret>,
        /// The parsed public key (`Z_A` for the message digest).
        key: Arc<Sm2Key>,
    },
}

// The zeroize-on-drop claim rests on the inner keys; check it at compile time.
const _: fn() = || {
    fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroize_on_drop::<ed25519_dalek::SigningKey>();
    zeroize_on_drop::<Sm2Secret>();
};

impl zeroize::ZeroizeOnDrop for SecretKey {}

impl SecretKey {
    /// Derives an Ed25519 key from a 32-byte seed (the RFC 8032 "secret
    /// key"). The caller should zeroize its copy of the seed.
    ///
    /// Infallible: the public key `[s]B` for a clamped `s` is a canonical,
    /// prime-order point, so it satisfies every key rule.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let bytes = inner.verifying_key().to_bytes();
        let public = PublicKey {
            repr: KeyRepr::Ed25519 {
                bytes,
                point: OnceLock::new(),
            },
        };
        SecretKey {
            inner: SecretInner::Ed25519(Box::new(inner)),
            public,
        }
    }

    /// Derives an SM2 key from a 32-byte seed, deterministically: the seed
    /// read as a big-endian integer `d` when `1 ≤ d ≤ n − 2` (all but about
    /// `2^-32` of seeds, so a standard SM2 private key is its own seed),
    /// otherwise the first of `SM3(seed)`, `SM3(SM3(seed))`, … in that range.
    /// (`d = n − 1` is excluded because signing needs `(1 + d)^-1`.) The
    /// caller should zeroize its copy of the seed.
    pub fn sm2_from_seed(seed: &[u8; 32]) -> Self {
        let (secret, key) = Sm2Secret::from_seed(seed);
        SecretKey::sm2(secret, key)
    }

    /// Imports an SM2 private key `d` (32 bytes, big-endian), refusing
    /// `d = 0` and `d ≥ n − 1`.
    pub fn sm2_from_bytes(d: &[u8; 32]) -> Result<Self, DecodeError> {
        match Sm2Secret::from_bytes(d) {
            Some((secret, key)) => Ok(SecretKey::sm2(secret, key)),
            None => Err(DecodeError::InvalidValue {
                what: "sm2 secret key",
                reason: "not in 1..=n-2",
            }),
        }
    }

    fn sm2(secret: Sm2Secret, key: Sm2Key) -> Self {
        let key = Arc::new(key);
        SecretKey {
            public: PublicKey {
                repr: KeyRepr::Sm2(key.clone()),
            },
            inner: SecretInner::Sm2 {
                secret: Box::new(secret),
                key,
            },
        }
    }

    /// Derives a key of `suite`'s signature algorithm from a 32-byte seed
    /// ([`SecretKey::from_seed`] or [`SecretKey::sm2_from_seed`]).
    pub fn from_seed_for(suite: CryptoSuite, seed: &[u8; 32]) -> Self {
        match suite.signature_algorithm() {
            SignatureAlgorithm::Ed25519 => SecretKey::from_seed(seed),
            SignatureAlgorithm::Sm2 => SecretKey::sm2_from_seed(seed),
        }
    }

    /// A fresh Ed25519 key from a cryptographically secure RNG.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        SecretKey::generate_for(CryptoSuite::Ed25519Blake3, rng)
    }

    /// A fresh key of `suite`'s signature algorithm from a cryptographically
    /// secure RNG.
    pub fn generate_for<R: rand_core::RngCore + rand_core::CryptoRng>(
        suite: CryptoSuite,
        rng: &mut R,
    ) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        SecretKey::from_seed_for(suite, &seed)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public.algorithm()
    }
}

impl Signer for SecretKey {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        match &self.inner {
            SecretInner::Ed25519(inner) => {
                use ed25519_dalek::Signer as _;
                Signature {
                    algorithm: SignatureAlgorithm::Ed25519,
                    bytes: inner.sign(message).to_bytes(),
                }
            }
            SecretInner::Sm2 { secret, key } => Signature {
                algorithm: SignatureAlgorithm::Sm2,
                bytes: secret.sign(key, message),
            },
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretKey(public: {:?}, secret: <redacted>)",
            self.public
        )
    }
}

/// Process-wide, bounded caches of parsed keys.
///
/// Every decoded transaction carries a fresh [`PublicKey`], so without them a
/// sender's key is decompressed (a field square root: ~4.6 µs for Ed25519,
/// as much as a quarter of a batch verification; for SM2 also the signer
/// identity `Z_A`) once per transaction per decode — once per node per block
/// in consensus. Senders repeat, so the parsed key is looked up by its bytes
/// instead. Parsing is a pure function of the bytes, so a cache cannot
/// change a verdict: a hit returns exactly what parsing would. Each cache is
/// sharded (16 locks, by one key byte) and bounded: a shard that reaches its
/// capacity is emptied, so memory stays bounded (about 16 MiB for Ed25519
/// points, somewhat more for SM2 keys) whatever keys an adversary sends, and
/// a flood of distinct keys costs no more than no cache.
mod key_cache {
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::{Arc, Mutex, OnceLock};

    use curve25519_dalek::edwards::EdwardsPoint;

    use super::Sm2Key;

    const SHARDS: usize = 16;
    /// Keys per shard (64 Ki keys in all, per cache).
    pub(super) const SHARD_CAPACITY: usize = 4_096;

    pub(super) struct Cache<K, V> {
        shards: [Mutex<HashMap<K, V>>; SHARDS],
    }

    impl<K: Eq + Hash + Copy, V: Clone> Cache<K, V> {
        fn new() -> Self {
            Cache {
                shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            }
        }

        /// The cached value of `key` in shard `shard`, or `parse(key)`,
        /// cached.
        fn get_or_parse(&self, shard: u8, key: &K, parse: impl FnOnce(&K) -> V) -> V {
            let shard = &self.shards[usize::from(shard) % SHARDS];
            // A poisoned lock only means another thread panicked while
            // holding it; the map is still a valid cache.
            if let Some(hit) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
                return hit.clone();
            }
            let value = parse(key);
            let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= SHARD_CAPACITY {
                map.clear();
            }
            map.insert(*key, value.clone());
            value
        }

        #[cfg(test)]
        pub(super) fn shard_len(&self, shard: u8) -> usize {
            self.shards[usize::from(shard) % SHARDS]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len()
        }
    }

    type Ed25519Cache = Cache<[u8; 32], Option<Arc<EdwardsPoint>>>;
    type Sm2Cache = Cache<[u8; 33], Result<Arc<Sm2Key>, &'static str>>;

    pub(super) fn ed25519_cache() -> &'static Ed25519Cache {
        static CACHE: OnceLock<Ed25519Cache> = OnceLock::new();
        CACHE.get_or_init(Cache::new)
    }

    fn sm2_cache() -> &'static Sm2Cache {
        static CACHE: OnceLock<Sm2Cache> = OnceLock::new();
        CACHE.get_or_init(Cache::new)
    }

    /// The decompressed Ed25519 point of `bytes` (`None`: not a curve
    /// point). Sharded by the first byte.
    pub(super) fn ed25519(bytes: &[u8; 32]) -> Option<Arc<EdwardsPoint>> {
        ed25519_cache().get_or_parse(bytes[0], bytes, |b| {
            super::super::equation::decompress(b).map(Arc::new)
        })
    }

    /// The parsed SM2 key of `bytes`, or why it is refused. Sharded by the
    /// first byte of `x` (the first byte is only `02` or `03`).
    pub(super) fn sm2(bytes: &[u8; 33]) -> Result<Arc<Sm2Key>, &'static str> {
        sm2_cache().get_or_parse(bytes[1], bytes, |b| Sm2Key::parse(b).map(Arc::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_exact;
    use crate::crypto::{verify, SignatureError};
    use proptest::prelude::*;

    proptest! {
        /// The key cache returns exactly what decompressing returns, for
        /// curve points and for bytes that are not one, on a miss and on a
        /// hit.
        #[test]
        fn the_key_cache_is_transparent(bytes in any::<[u8; 32]>()) {
            let direct = super::super::equation::decompress(&bytes);
            for _ in 0..2 {
                let cached = key_cache::ed25519(&bytes);
                prop_assert_eq!(cached.as_deref().map(|p| p.compress()), direct.map(|p| p.compress()));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The SM2 key cache returns exactly what parsing returns, for
        /// points and for bytes that are not one, on a miss and on a hit.
        #[test]
        fn the_sm2_key_cache_is_transparent(x in any::<[u8; 32]>(), odd in any::<bool>()) {
            let mut bytes = [0u8; 33];
            bytes[0] = if odd { 3 } else { 2 };
            bytes[1..].copy_from_slice(&x);
            let direct = Sm2Key::parse(&bytes).map(|k| k.bytes);
            for _ in 0..2 {
                prop_assert_eq!(key_cache::sm2(&bytes).map(|k| k.bytes), direct);
            }
        }
    }

    #[test]
    fn the_key_cache_is_bounded() {
        // Distinct keys that all fall in one shard.
        for i in 0..(key_cache::SHARD_CAPACITY as u32 + 100) {
            let mut bytes = [0u8; 32];
            bytes[0] = 0x10;
            bytes[1..5].copy_from_slice(&i.to_le_bytes());
            let _ = key_cache::ed25519(&bytes);
            assert!(key_cache::ed25519_cache().shard_len(0x10) <= key_cache::SHARD_CAPACITY);
        }
        assert!(key_cache::ed25519_cache().shard_len(0x10) >= 1);
    }

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).expect("test hex");
        out
    }

    /// RFC 8032 §7.1, TEST 1 (empty message).
    #[test]
    fn rfc8032_test_1() {
        let seed = unhex::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let public =
            unhex::<32>("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = unhex::<64>(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        let sk = SecretKey::from_seed(&seed);
        assert_eq!(sk.public_key().ed25519_bytes().unwrap(), &public);
        assert_eq!(
            sk.public_key(),
            PublicKey::ed25519_from_bytes(public).expect("valid")
        );
        let s = sk.sign(b"");
        assert_eq!(s.as_bytes(), &sig);
        assert_eq!(verify(&sk.public_key(), b"", &s), Ok(()));
        assert_eq!(
            verify(&sk.public_key(), b"x", &s),
            Err(SignatureError::Invalid)
        );
        assert!(sk.public_key().is_torsion_free());
    }

    /// RFC 8032 §7.1, TEST 2 (one-byte message 0x72).
    #[test]
    fn rfc8032_test_2() {
        let seed = unhex::<32>("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let public =
            unhex::<32>("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
        let sig = unhex::<64>(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
        let sk = SecretKey::from_seed(&seed);
        assert_eq!(sk.public_key().ed25519_bytes().unwrap(), &public);
        assert_eq!(sk.sign(&[0x72]).as_bytes(), &sig);
    }

    #[test]
    fn debug_never_prints_the_seed() {
        let seed = unhex::<32>("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let sk = SecretKey::from_seed(&seed);
        let dbg = format!("{sk:?} {sk:#?}").to_lowercase();
        // No 4-byte window of the seed appears in hex.
        for window in seed.windows(4) {
            assert!(!dbg.contains(&hex::encode(window)), "{dbg}");
        }
        assert!(dbg.contains("redacted"));
        assert!(dbg.contains("d75a9801"), "shows the public key prefix");
    }

    #[test]
    fn sm2_debug_never_prints_the_secret() {
        let seed = unhex::<32>("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8");
        let sk = SecretKey::sm2_from_seed(&seed);
        let dbg = format!("{sk:?} {sk:#?}").to_lowercase();
        for window in seed.windows(4) {
            assert!(!dbg.contains(&hex::encode(window)), "{dbg}");
        }
        assert!(dbg.contains("redacted"));
        assert!(dbg.contains("sm2:0309f9df"), "{dbg}");
        assert_eq!(sk.algorithm(), SignatureAlgorithm::Sm2);
    }

    #[test]
    fn sm2_codec_round_trips() {
        let sk = SecretKey::sm2_from_seed(&[5; 32]);
        let pk = sk.public_key();
        let sig = sk.sign(b"m");
        let pk_bytes = pk.to_bytes();
        assert_eq!(pk_bytes.len(), PublicKey::MAX_ENCODED_LEN);
        assert_eq!(pk.encoded_len(), PublicKey::MAX_ENCODED_LEN);
        assert_eq!(decode_exact::<PublicKey>(&pk_bytes, 34), Ok(pk.clone()));
        assert_eq!(
            PublicKey::from_raw(SignatureAlgorithm::Sm2, pk.raw_bytes()),
            Ok(pk.clone())
        );
        assert!(PublicKey::from_raw(SignatureAlgorithm::Ed25519, pk.raw_bytes()).is_err());
        assert_eq!(pk.ed25519_bytes(), None);
        assert!(pk.is_on_curve() && pk.is_torsion_free());
        let sig_bytes = sig.to_bytes();
        assert_eq!(sig_bytes.len(), Signature::ENCODED_LEN);
        assert_eq!(decode_exact::<Signature>(&sig_bytes, 65), Ok(sig));
        assert_eq!(
            format!("{pk}"),
            format!("sm2:{}", hex::encode(pk.raw_bytes()))
        );
        assert_eq!(verify(&pk, b"m", &sig), Ok(()));
        // A decoded key shares nothing with the signer's but equals it.
        let decoded = PublicKey::sm2_from_bytes(pk.raw_bytes().try_into().unwrap()).unwrap();
        assert_eq!(verify(&decoded, b"m", &sig), Ok(()));
        assert_eq!(
            SecretKey::from_seed_for(CryptoSuite::Ed25519Blake3, &[5; 32]).public_key(),
            SecretKey::from_seed(&[5; 32]).public_key()
        );
    }

    #[test]
    fn codec_round_trips_and_rejects_bad_tags() {
        let sk = SecretKey::from_seed(&[5; 32]);
        let pk = sk.public_key();
        let sig = sk.sign(b"m");
        let pk_bytes = pk.to_bytes();
        assert_eq!(pk_bytes.len(), PublicKey::MIN_ENCODED_LEN);
        assert_eq!(decode_exact::<PublicKey>(&pk_bytes, 33), Ok(pk.clone()));
        let sig_bytes = sig.to_bytes();
        assert_eq!(sig_bytes.len(), Signature::ENCODED_LEN);
        assert_eq!(decode_exact::<Signature>(&sig_bytes, 65), Ok(sig));
        let mut bad = pk_bytes.clone();
        bad[0] = 3; // no such algorithm
        assert!(matches!(
            decode_exact::<PublicKey>(&bad, 33),
            Err(DecodeError::InvalidTag { .. })
        ));
        assert_eq!(pk.raw_bytes(), &pk_bytes[1..]);
        assert_eq!(
            format!("{pk}"),
            format!("ed25519:{}", hex::encode(pk.raw_bytes()))
        );
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_refused() {
        for e in &super::super::ed25519::SMALL_ORDER_ENCODINGS {
            assert_eq!(
                PublicKey::ed25519_from_bytes(*e).map(|_| ()),
                Err(DecodeError::InvalidValue {
                    what: "ed25519 public key",
                    reason: "small-order point"
                })
            );
        }
        // y = p (≡ 0): a non-canonical encoding of an order-4 point.
        let mut y_is_p = [0xff; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        assert!(matches!(
            PublicKey::ed25519_from_bytes(y_is_p),
            Err(DecodeError::InvalidValue {
                reason: "non-canonical point encoding",
                ..
            })
        ));
        // y = 2 is not on the curve: it decodes (byte rules only), is
        // reported off the curve, and can never verify anything.
        let mut y_is_2 = [0; 32];
        y_is_2[0] = 2;
        let off_curve = PublicKey::ed25519_from_bytes(y_is_2).unwrap();
        assert!(!off_curve.is_on_curve());
        let signer = SecretKey::from_seed(&[1; 32]);
        let sig = signer.sign(b"m");
        assert_eq!(verify(&off_curve, b"m", &sig), Err(SignatureError::Invalid));
        let item = super::super::BatchItem::new(&off_curve, b"m", &sig);
        assert!(super::super::verify_batch(&[item]).is_err());
    }

    #[test]
    fn keys_and_signatures_are_small() {
        // Errors and transactions carry keys by value.
        assert!(std::mem::size_of::<PublicKey>() <= 56);
        assert_eq!(std::mem::size_of::<Signature>(), 65);
    }

    #[test]
    fn a_torsion_component_is_detected() {
        let sk = SecretKey::from_seed(&[9; 32]);
        let a = curve25519_dalek::edwards::CompressedEdwardsY(
            *sk.public_key().ed25519_bytes().unwrap(),
        )
        .decompress()
        .expect("point");
        let mixed = (a + curve25519_dalek::constants::EIGHT_TORSION[1]).compress();
        let pk = PublicKey::ed25519_from_bytes(mixed.to_bytes()).expect("mixed-order keys decode");
        assert!(!pk.is_torsion_free());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every key from a seed satisfies the key rules, and every signature
        /// it makes satisfies the signature rules and verifies.
        #[test]
        fn seed_keys_and_signatures_are_always_valid(
            seed in any::<[u8; 32]>(),
            message in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let sk = SecretKey::from_seed(&seed);
            let pk = sk.public_key();
            let decoded = PublicKey::ed25519_from_bytes(*pk.ed25519_bytes().unwrap());
            prop_assert_eq!(decoded.as_ref(), Ok(&pk));
            prop_assert!(pk.is_on_curve());
            let sig = sk.sign(&message);
            prop_assert_eq!(Signature::ed25519_from_bytes(*sig.as_bytes()), Ok(sig));
            prop_assert_eq!(verify(&pk, &message, &sig), Ok(()));
        }
    }
}
