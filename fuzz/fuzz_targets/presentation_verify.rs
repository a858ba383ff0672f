//! Arbitrary bytes as a presentation, decoded and verified by a service hall
//! against a fixed sandbox identity chain (built once).
//!
//! Each input is verified twice: as it is, and as a list of byte patches
//! (`offset u16 LE, xor u8` triples) applied to a valid, holder-bound
//! presentation of the chain, which takes the verifier past decoding into
//! the proofs, the issuer chain, status, claims, binding and signatures
//! without a corpus. Every hall is fresh and issues the same deterministic
//! challenge, so the valid presentation's nonce is outstanding each time.
//!
//! Checked: no panic; a presentation that decodes re-encodes to its input;
//! verifying the bytes and verifying the decoded presentation agree; and an
//! accepted input shows exactly the valid presentation's credential,
//! disclosures and binding (only the stapled proofs, which the binding does
//! not cover, may differ) and yields its claims.
#![no_main]
use std::sync::OnceLock;

use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::types::Timestamp;
use govchain_identity::presentation::{BindingRequest, Presentation};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::verifier::{Policy, Rejection, VerifiedPresentation, Verifier};
use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Seed of every hall's challenge.
const CHALLENGE_SEED: u64 = 0x1d;

struct Fixed {
    client: LightClient,
    policy: Policy,
    now: Timestamp,
    valid: Vec<u8>,
    valid_presentation: Presentation,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut chain = Sandbox::new().expect("sandbox");
        let holder = SecretKey::from_seed(&[0x77; 32]);
        let held = chain
            .issue(&mut rng, 42, Some(holder.public_key()))
            .expect("issue");
        let policy = chain.policy("hall-fuzz").expect("policy");
        let mut hall = Verifier::new(policy.clone()).expect("verifier");
        let nonce = hall.challenge(&mut ChaCha20Rng::seed_from_u64(CHALLENGE_SEED), chain.now());
        let binding = BindingRequest {
            holder: &holder,
            nonce,
            audience: policy.hall.clone(),
            time: chain.now(),
        };
        let valid_presentation = held
            .present(
                &["name", "id_number", "birth_date", "address", "over_18"],
                Some(binding),
                chain.proofs(&held).expect("proofs"),
            )
            .expect("present");
        let valid = valid_presentation.to_bytes();
        hall.verify(chain.client(), &valid, chain.now())
            .expect("the fixed presentation must verify");
        Fixed {
            client: chain.client().clone(),
            policy,
            now: chain.now(),
            valid,
            valid_presentation,
        }
    })
}

/// A fresh hall whose one outstanding nonce is the valid presentation's.
fn hall(f: &Fixed) -> Verifier {
    let mut hall = Verifier::new(f.policy.clone()).expect("verifier");
    hall.challenge(&mut ChaCha20Rng::seed_from_u64(CHALLENGE_SEED), f.now);
    hall
}

fn claims(r: &Result<VerifiedPresentation, Rejection>) -> Result<Vec<String>, u16> {
    match r {
        Ok(v) => Ok(v.claims.keys().cloned().collect()),
        Err(e) => Err(e.code()),
    }
}

fn check(f: &Fixed, bytes: &[u8]) {
    let from_bytes = hall(f).verify(&f.client, bytes, f.now);
    match Presentation::decode(bytes) {
        Ok(p) => {
            assert_eq!(p.to_bytes(), bytes, "decode→encode must be the identity");
            let decoded = hall(f).verify_presentation(&f.client, &p, f.now);
            assert_eq!(
                claims(&from_bytes),
                claims(&decoded),
                "bytes and decoded presentation must get the same verdict"
            );
            if from_bytes.is_ok() {
                let v = &f.valid_presentation;
                assert_eq!(p.credential, v.credential, "accepted a changed credential");
                assert_eq!(p.disclosures, v.disclosures, "accepted changed disclosures");
                assert_eq!(p.binding, v.binding, "accepted a changed binding");
            }
        }
        Err(_) => assert!(from_bytes.is_err(), "accepted bytes that do not decode"),
    }
    if let Ok(v) = from_bytes {
        assert_eq!(
            v.claims.len(),
            6,
            "an accepted presentation yields its claims"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    check(f, data);
    if !data.is_empty() {
        let mut patched = f.valid.clone();
        for t in data.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([t[0], t[1]])) % patched.len();
            patched[at] ^= t[2];
        }
        check(f, &patched);
    }
});
