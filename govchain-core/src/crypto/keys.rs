//! Public keys, signatures, and in-process secret keys.

use std::fmt;
use std::sync::{Arc, OnceLock};

use curve25519_dalek::edwards::EdwardsPoint;

use super::ed25519::{point_rejection, signature_rejection, PointRejection};
use super::SignatureAlgorithm;
use crate::codec::{Decode, DecodeError, Encode, Reader};

/// A public verification key.
///
/// A `PublicKey` value always satisfies govchain's byte-level key rules: a
/// canonical encoding that is not one of the small-order points (see the
/// [module docs](super)). Whether the bytes are a curve point at all is
/// decided once, lazily, at the first verification (or by
/// [`PublicKey::is_on_curve`]) and cached: decoding a transaction, block or
/// certificate therefore never pays a field square root per key, which
/// dominated reading stored blocks. A key that is not a curve point can
/// never verify a signature. Equality, ordering and hashing are on the
/// encoded bytes.
#[derive(Clone)]
pub struct PublicKey {
    bytes: [u8; 32],
    /// The decompressed key for both verification paths, computed on first
    /// use and shared between clones (behind an `Arc` so that a `PublicKey`
    /// stays small and errors that carry one stay small). The inner `None`
    /// caches "not a curve point".
    vk: OnceLock<Option<Arc<EdwardsPoint>>>,
}

impl PublicKey {
    /// Length of the canonical encoding: tag plus key bytes.
    pub const ENCODED_LEN: usize = 33;

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
            bytes,
            vk: OnceLock::new(),
        })
    }

    /// Whether the key bytes are a point on the curve (decompresses once and
    /// caches the result). Registries that admit keys (validators, issuers)
    /// should require it, so that an admitted key can sign.
    pub fn is_on_curve(&self) -> bool {
        self.decompressed().is_some()
    }

    /// The decompressed key, computed on first use by either verification
    /// path and cached (`None`: not a curve point).
    pub(crate) fn decompressed(&self) -> Option<&EdwardsPoint> {
        self.vk
            .get_or_init(|| key_cache::decompress(&self.bytes))
            .as_deref()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    /// The raw Ed25519 key bytes (without the algorithm tag).
    ///
    /// Algorithm-independent code should prefer [`PublicKey::raw_bytes`] or
    /// the canonical [`Encode`] form, which will also cover keys of other
    /// suites.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The raw key bytes (without the algorithm tag), whatever the algorithm.
    pub fn raw_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the key lies in the prime-order subgroup (has no torsion
    /// component).
    ///
    /// Every key made by [`SecretKey`] (or any RFC 8032 key generation) is
    /// torsion-free. Signature validity does **not** depend on this: both
    /// verification paths use the cofactored equation and agree on keys with
    /// torsion. A registry may still refuse such keys when it admits them
    /// (validators, accredited issuers), so that every signature govchain
    /// accepts from them also verifies under cofactorless RFC 8032
    /// verifiers. This costs one scalar multiplication (tens of
    /// microseconds); call it at registration, not per signature.
    pub fn is_torsion_free(&self) -> bool {
        self.decompressed().is_some_and(|p| p.is_torsion_free())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
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
        self.bytes.cmp(&other.bytes)
    }
}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(ed25519:{})", hex::encode(&self.bytes[..8]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.bytes))
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.algorithm().tag());
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for PublicKey {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match SignatureAlgorithm::from_tag(r.u8()?)? {
            SignatureAlgorithm::Ed25519 => PublicKey::ed25519_from_bytes(r.array()?),
        }
    }
}

/// A signature.
///
/// A `Signature` value always satisfies govchain's signature encoding rules:
/// `S < ℓ`, and `R` is a canonical encoding of a point that is not of small
/// order (see the [module docs](super)).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    bytes: [u8; 64],
}

impl Signature {
    /// Length of the canonical encoding: tag plus signature bytes.
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
            None => Ok(Signature { bytes }),
        }
    }

    /// The signature's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Ed25519
    }

    /// The raw signature bytes (without the algorithm tag).
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.bytes
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(ed25519:{}…)", hex::encode(&self.bytes[..8]))
    }
}

impl Encode for Signature {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.algorithm().tag());
        out.extend_from_slice(&self.bytes);
    }
}

impl Decode for Signature {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match SignatureAlgorithm::from_tag(r.u8()?)? {
            SignatureAlgorithm::Ed25519 => Signature::ed25519_from_bytes(r.array()?),
        }
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

/// An in-process Ed25519 secret signing key (RFC 8032, deterministic
/// signatures).
///
/// It is zeroized on drop (the inner `ed25519_dalek::SigningKey` is
/// `ZeroizeOnDrop`), it is not `Clone` (a copy would be a second secret to
/// erase; share it behind an `Arc` instead), and `Debug` prints only the
/// public key.
pub struct SecretKey {
    inner: ed25519_dalek::SigningKey,
    public: PublicKey,
}

// The zeroize-on-drop claim rests on the inner key; check it at compile time.
const _: fn() = || {
    fn zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroize_on_drop::<ed25519_dalek::SigningKey>();
};

impl zeroize::ZeroizeOnDrop for SecretKey {}

impl SecretKey {
    /// Derives a key from a 32-byte seed (the RFC 8032 "secret key"). The
    /// caller should zeroize its copy of the seed.
    ///
    /// Infallible: the public key `[s]B` for a clamped `s` is a canonical,
    /// prime-order point, so it satisfies every key rule.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let bytes = inner.verifying_key().to_bytes();
        let public = PublicKey {
            bytes,
            vk: OnceLock::new(),
        };
        SecretKey { inner, public }
    }

    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        SecretKey::from_seed(&seed)
    }
}

impl Signer for SecretKey {
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature {
            bytes: self.inner.sign(message).to_bytes(),
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

/// A process-wide, bounded cache of decompressed keys.
///
/// Every decoded transaction carries a fresh [`PublicKey`], so without it a
/// sender's key is decompressed (a field square root, ~4.6 µs, as much as a
/// quarter of a batch verification) once per transaction per decode — once
/// per node per block in consensus. Senders repeat, so the point is looked
/// up by its bytes instead. Decompression is a pure function of the bytes,
/// so the cache cannot change a verdict: a hit returns exactly what
/// decompressing would. It is sharded (16 locks, by the first key byte) and
/// bounded: a shard that reaches its capacity is emptied, so memory stays
/// under about 16 MiB whatever keys an adversary sends, and a flood of
/// distinct keys costs no more than no cache.
mod key_cache {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use curve25519_dalek::edwards::EdwardsPoint;

    const SHARDS: usize = 16;
    /// Keys per shard (64 Ki keys in all).
    pub(super) const SHARD_CAPACITY: usize = 4_096;

    type Shard = Mutex<HashMap<[u8; 32], Option<Arc<EdwardsPoint>>>>;

    fn shards() -> &'static [Shard; SHARDS] {
        static SHARDS_CELL: std::sync::OnceLock<[Shard; SHARDS]> = std::sync::OnceLock::new();
        SHARDS_CELL.get_or_init(|| std::array::from_fn(|_| Mutex::new(HashMap::new())))
    }

    /// The decompressed point of `bytes` (`None`: not a curve point).
    pub(super) fn decompress(bytes: &[u8; 32]) -> Option<Arc<EdwardsPoint>> {
        let shard = &shards()[usize::from(bytes[0]) % SHARDS];
        // A poisoned lock only means another thread panicked while holding
        // it; the map is still a valid cache.
        if let Some(hit) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(bytes) {
            return hit.clone();
        }
        let point = super::super::equation::decompress(bytes).map(Arc::new);
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SHARD_CAPACITY {
            map.clear();
        }
        map.insert(*bytes, point.clone());
        point
    }

    #[cfg(test)]
    pub(super) fn shard_len(first_byte: u8) -> usize {
        shards()[usize::from(first_byte) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
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
                let cached = key_cache::decompress(&bytes);
                prop_assert_eq!(cached.as_deref().map(|p| p.compress()), direct.map(|p| p.compress()));
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
            let _ = key_cache::decompress(&bytes);
            assert!(key_cache::shard_len(0x10) <= key_cache::SHARD_CAPACITY);
        }
        assert!(key_cache::shard_len(0x10) >= 1);
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
        assert_eq!(sk.public_key().as_bytes(), &public);
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
        assert_eq!(sk.public_key().as_bytes(), &public);
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
    fn codec_round_trips_and_rejects_bad_tags() {
        let sk = SecretKey::from_seed(&[5; 32]);
        let pk = sk.public_key();
        let sig = sk.sign(b"m");
        let pk_bytes = pk.to_bytes();
        assert_eq!(pk_bytes.len(), PublicKey::ENCODED_LEN);
        assert_eq!(decode_exact::<PublicKey>(&pk_bytes, 33), Ok(pk.clone()));
        let sig_bytes = sig.to_bytes();
        assert_eq!(sig_bytes.len(), Signature::ENCODED_LEN);
        assert_eq!(decode_exact::<Signature>(&sig_bytes, 65), Ok(sig));
        let mut bad = pk_bytes.clone();
        bad[0] = 2;
        assert!(matches!(
            decode_exact::<PublicKey>(&bad, 33),
            Err(DecodeError::InvalidTag { .. })
        ));
        assert_eq!(pk.raw_bytes(), &pk_bytes[1..]);
        assert_eq!(
            format!("{pk}"),
            format!("ed25519:{}", hex::encode(pk.as_bytes()))
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
        assert!(std::mem::size_of::<PublicKey>() <= 48);
        assert_eq!(std::mem::size_of::<Signature>(), 64);
    }

    #[test]
    fn a_torsion_component_is_detected() {
        let sk = SecretKey::from_seed(&[9; 32]);
        let a = curve25519_dalek::edwards::CompressedEdwardsY(*sk.public_key().as_bytes())
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
            let decoded = PublicKey::ed25519_from_bytes(*pk.as_bytes());
            prop_assert_eq!(decoded.as_ref(), Ok(&pk));
            prop_assert!(pk.is_on_curve());
            let sig = sk.sign(&message);
            prop_assert_eq!(Signature::ed25519_from_bytes(*sig.as_bytes()), Ok(sig));
            prop_assert_eq!(verify(&pk, &message, &sig), Ok(()));
        }
    }
}
