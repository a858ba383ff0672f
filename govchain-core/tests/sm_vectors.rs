//! Known-answer vectors of the national-standard suite, written here as
//! data: SM3 (GM/T 0004-2012) and SM2 signatures (GM/T 0003-2012) on the
//! recommended curve.
//!
//! Sources:
//! - SM3: GM/T 0004-2012 "SM3 cryptographic hash algorithm", Appendix A
//!   (identical in GB/T 32905-2016 Appendix A): example 1 (`"abc"`) and
//!   example 2 (`"abcd"` × 16, 512 bits).
//! - SM2: GM/T 0003.5-2012 "SM2 ... Part 5: Parameter definition",
//!   Appendix A.2 (identical in GB/T 32918.5-2017 Appendix A): the digital
//!   signature sample on the *recommended* curve `sm2p256v1`, with
//!   `ID_A = "1234567812345678"` and message `"message digest"`. The same
//!   values are used by OpenSSL's `test/sm2_internal_test.c`.
//!   The signature example of GM/T 0003.2-2012 / GB/T 32918.2-2016
//!   Appendix A itself uses a 256-bit *test* curve (`p = 8542D69E…`,
//!   `ID_A = "ALICE123@YAHOO.COM"`), which neither govchain nor the `sm2`
//!   crate can represent (they implement only the recommended curve), so it
//!   is not used here.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use govchain_core::codec::{decode_exact, DecodeError, Encode};
use govchain_core::crypto::{
    verify, verify_batch, BatchItem, CryptoSuite, PublicKey, SecretKey, Signature,
    SignatureAlgorithm, SignatureError, Signer, SM2_DEFAULT_DISTID,
};
use sm3::Digest;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).expect("test hex");
    out
}

/// GM/T 0004-2012 Appendix A.1: SM3("abc").
#[test]
fn sm3_sample_1() {
    let expected = unhex::<32>("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    assert_eq!(sm3::Sm3::digest(b"abc")[..], expected);
}

/// GM/T 0004-2012 Appendix A.2: SM3("abcd" × 16).
#[test]
fn sm3_sample_2() {
    let expected = unhex::<32>("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
    assert_eq!(sm3::Sm3::digest(b"abcd".repeat(16))[..], expected);
    // In parts, as the suite's `hash_parts` feeds it.
    let mut h = sm3::Sm3::new();
    for _ in 0..16 {
        h.update(b"abcd");
    }
    assert_eq!(h.finalize()[..], expected);
}

/// GM/T 0003.5-2012 Appendix A.2 (GB/T 32918.5-2017 Appendix A).
struct Gmt0003Sample;

impl Gmt0003Sample {
    const ID: &'static str = "1234567812345678";
    const MESSAGE: &'static [u8] = b"message digest";
    const D: &'static str = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8";
    const XA: &'static str = "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020";
    const YA: &'static str = "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13";
    const ZA: &'static str = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3";
    const E: &'static str = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640";
    const R: &'static str = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3";
    const S: &'static str = "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa";

    /// The public key, compressed: `y_A` is odd (ends in `0x13`), so `03 ‖ x_A`.
    fn key_bytes() -> [u8; 33] {
        assert_eq!(unhex::<32>(Self::YA)[31] & 1, 1);
        let mut k = [0u8; 33];
        k[0] = 0x03;
        k[1..].copy_from_slice(&unhex::<32>(Self::XA));
        k
    }

    fn signature_bytes() -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&unhex::<32>(Self::R));
        sig[32..].copy_from_slice(&unhex::<32>(Self::S));
        sig
    }

    fn key() -> PublicKey {
        PublicKey::sm2_from_bytes(Self::key_bytes()).expect("the sample key decodes")
    }

    fn signature() -> Signature {
        Signature::sm2_from_bytes(Self::signature_bytes()).expect("the sample signature decodes")
    }
}

#[test]
fn sm2_sample_key_identity_and_digest() {
    assert_eq!(Gmt0003Sample::ID, SM2_DEFAULT_DISTID);
    let key = Gmt0003Sample::key();
    assert_eq!(key.algorithm(), SignatureAlgorithm::Sm2);
    assert_eq!(
        key.sm2_signer_identity(),
        Some(unhex::<32>(Gmt0003Sample::ZA))
    );
    assert_eq!(
        key.sm2_message_digest(Gmt0003Sample::MESSAGE),
        Some(unhex::<32>(Gmt0003Sample::E))
    );
    // The private key d_A gives the sample's public key (d_A is in range, so
    // as a seed it is its own key).
    let d = unhex::<32>(Gmt0003Sample::D);
    let sk = SecretKey::sm2_from_bytes(&d).expect("d_A is a valid secret");
    assert_eq!(sk.public_key(), key);
    assert_eq!(SecretKey::sm2_from_seed(&d).public_key(), key);
    assert_eq!(
        SecretKey::from_seed_for(CryptoSuite::Sm2Sm3, &d).public_key(),
        key
    );
    // The canonical encoding: tag 2, then the compressed point.
    let encoded = key.to_bytes();
    assert_eq!(encoded.len(), 34);
    assert_eq!(encoded[0], 2);
    assert_eq!(encoded[1..], Gmt0003Sample::key_bytes());
    assert_eq!(decode_exact::<PublicKey>(&encoded, 34), Ok(key));
}

#[test]
fn sm2_sample_signature_verifies() {
    let (key, sig) = (Gmt0003Sample::key(), Gmt0003Sample::signature());
    assert_eq!(verify(&key, Gmt0003Sample::MESSAGE, &sig), Ok(()));
    let encoded = sig.to_bytes();
    assert_eq!(encoded.len(), Signature::ENCODED_LEN);
    assert_eq!(encoded[0], 2);
    assert_eq!(decode_exact::<Signature>(&encoded, 65), Ok(sig));
    let items = [BatchItem::new(&key, Gmt0003Sample::MESSAGE, &sig)];
    assert_eq!(verify_batch(&items), Ok(()));
    // Our deterministic signer's own signature on the sample also verifies.
    let sk = SecretKey::sm2_from_bytes(&unhex::<32>(Gmt0003Sample::D)).unwrap();
    let ours = sk.sign(Gmt0003Sample::MESSAGE);
    assert_eq!(ours, sk.sign(Gmt0003Sample::MESSAGE), "deterministic");
    assert_eq!(verify(&key, Gmt0003Sample::MESSAGE, &ours), Ok(()));
}

#[test]
fn sm2_sample_tampered_variants_fail() {
    let key = Gmt0003Sample::key();
    let sig = Gmt0003Sample::signature();
    let invalid = Err(SignatureError::Invalid);
    // Another message.
    assert_eq!(verify(&key, b"message digesT", &sig), invalid);
    assert_eq!(verify(&key, b"", &sig), invalid);
    // Each byte of r and of s perturbed (staying in 1..n).
    for i in 0..64 {
        let mut bytes = Gmt0003Sample::signature_bytes();
        bytes[i] ^= 0x01;
        let tampered = Signature::sm2_from_bytes(bytes).expect("still in range");
        assert_eq!(
            verify(&key, Gmt0003Sample::MESSAGE, &tampered),
            invalid,
            "byte {i}"
        );
    }
    // r and s swapped.
    let mut swapped = [0u8; 64];
    swapped[..32].copy_from_slice(&unhex::<32>(Gmt0003Sample::S));
    swapped[32..].copy_from_slice(&unhex::<32>(Gmt0003Sample::R));
    let swapped = Signature::sm2_from_bytes(swapped).unwrap();
    assert_eq!(verify(&key, Gmt0003Sample::MESSAGE, &swapped), invalid);
    // Another key (the other point with the same x).
    let mut other = Gmt0003Sample::key_bytes();
    other[0] = 0x02;
    let negated = PublicKey::sm2_from_bytes(other).expect("-P is a point");
    assert_eq!(verify(&negated, Gmt0003Sample::MESSAGE, &sig), invalid);
    let stranger = SecretKey::sm2_from_seed(&[7; 32]).public_key();
    assert_eq!(verify(&stranger, Gmt0003Sample::MESSAGE, &sig), invalid);
    // A batch names exactly the tampered item.
    let items = [
        BatchItem::new(&key, Gmt0003Sample::MESSAGE, &sig),
        BatchItem::new(&key, b"message digesT", &sig),
        BatchItem::new(&stranger, Gmt0003Sample::MESSAGE, &sig),
    ];
    assert_eq!(verify_batch(&items).unwrap_err().invalid_indexes(), &[1, 2]);
}

#[test]
fn sm2_out_of_range_signatures_do_not_decode() {
    let n = unhex::<32>("fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123");
    let r = unhex::<32>(Gmt0003Sample::R);
    for (bad_r, bad_s) in [
        ([0u8; 32], r),
        (r, [0u8; 32]),
        (n, r),
        (r, n),
        ([0xff; 32], r),
    ] {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&bad_r);
        bytes[32..].copy_from_slice(&bad_s);
        assert!(matches!(
            Signature::sm2_from_bytes(bytes),
            Err(DecodeError::InvalidValue {
                what: "sm2 signature",
                ..
            })
        ));
        let mut encoded = vec![2u8];
        encoded.extend_from_slice(&bytes);
        assert!(decode_exact::<Signature>(&encoded, 65).is_err());
    }
}

#[test]
fn sm2_invalid_key_encodings_do_not_decode() {
    let good = Gmt0003Sample::key_bytes();
    let refused = |bytes: [u8; 33]| {
        matches!(
            PublicKey::sm2_from_bytes(bytes),
            Err(DecodeError::InvalidValue {
                what: "sm2 public key",
                ..
            })
        )
    };
    // Not a compressed-point prefix (identity 00, uncompressed 04, hybrid 06/07).
    for prefix in [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xff] {
        let mut b = good;
        b[0] = prefix;
        assert!(refused(b), "prefix {prefix:#04x}");
    }
    // x = p and x = p + 1 (non-canonical field elements; p + 1 ≡ 1).
    let p = unhex::<32>("fffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffff");
    for delta in [0u8, 1] {
        let mut b = [0x02u8; 33];
        b[1..].copy_from_slice(&p);
        b[32] = b[32].wrapping_add(delta);
        assert!(refused(b));
    }
    // An x with no curve point: search a few small x values, and require
    // that at least one is refused as off the curve (about half are).
    let off_curve = (1u8..=40)
        .filter(|&x| {
            let mut b = [0u8; 33];
            b[0] = 0x02;
            b[32] = x;
            refused(b)
        })
        .count();
    assert!(off_curve > 0);
    // Truncated inputs.
    let mut encoded = vec![2u8];
    encoded.extend_from_slice(&good[..32]);
    assert!(matches!(
        decode_exact::<PublicKey>(&encoded, 34),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

/// Cross-suite confusion: a signature of one algorithm presented under a
/// key of the other is refused, with its own error, by every path.
#[test]
fn cross_algorithm_pairs_are_refused() {
    let ed = SecretKey::from_seed(&[1; 32]);
    let sm = SecretKey::sm2_from_seed(&[1; 32]);
    let (ed_pk, sm_pk) = (ed.public_key(), sm.public_key());
    let (ed_sig, sm_sig) = (ed.sign(b"m"), sm.sign(b"m"));
    assert_eq!(
        verify(&ed_pk, b"m", &sm_sig),
        Err(SignatureError::AlgorithmMismatch {
            key: SignatureAlgorithm::Ed25519,
            signature: SignatureAlgorithm::Sm2,
        })
    );
    assert_eq!(
        verify(&sm_pk, b"m", &ed_sig),
        Err(SignatureError::AlgorithmMismatch {
            key: SignatureAlgorithm::Sm2,
            signature: SignatureAlgorithm::Ed25519,
        })
    );
    // The same 64 bytes re-tagged as the other algorithm, where they pass
    // that algorithm's decode rules, still do not verify.
    if let Ok(as_ed) = Signature::ed25519_from_bytes(*sm_sig.as_bytes()) {
        assert!(verify(&sm_pk, b"m", &as_ed).is_err());
        assert!(verify(&ed_pk, b"m", &as_ed).is_err());
    }
    if let Ok(as_sm) = Signature::sm2_from_bytes(*ed_sig.as_bytes()) {
        assert!(verify(&ed_pk, b"m", &as_sm).is_err());
        assert!(verify(&sm_pk, b"m", &as_sm).is_err());
    }
    let items = [
        BatchItem::new(&ed_pk, b"m", &ed_sig),
        BatchItem::new(&ed_pk, b"m", &sm_sig),
        BatchItem::new(&sm_pk, b"m", &sm_sig),
        BatchItem::new(&sm_pk, b"m", &ed_sig),
    ];
    assert_eq!(verify_batch(&items).unwrap_err().invalid_indexes(), &[1, 3]);
    // Keys of the two algorithms never compare equal, and sort by tag.
    assert_ne!(ed_pk, sm_pk);
    assert!(ed_pk < sm_pk);
    assert_eq!(ed_pk.encoded_len(), PublicKey::MIN_ENCODED_LEN);
    assert_eq!(sm_pk.encoded_len(), PublicKey::MAX_ENCODED_LEN);
}
