//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, SecretKey, Signer};
use govchain_identity::credential::{Credential, HeldCredential};
use govchain_identity::presentation::{BindingRequest, Presentation};
use govchain_identity::sandbox::Sandbox;
use govchain_identity::verifier::{Policy, Verifier};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const REVEAL: &[&str] = &["name", "id_number", "birth_date", "address", "over_18"];

/// A seeded RNG; the seed is printed so a failure can be replayed.
pub fn rng(test: &str) -> ChaCha20Rng {
    let seed = std::env::var("GOVCHAIN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            test.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        });
    println!("{test}: seed {seed} (set GOVCHAIN_TEST_SEED to replay)");
    ChaCha20Rng::seed_from_u64(seed)
}

/// The seed of the sandbox bureau's controller key (any suite).
pub fn bureau_seed() -> [u8; 32] {
    let mut s = [0x1d; 32];
    s[0] = 3;
    s
}

/// The seed of the sandbox root's controller key (any suite).
pub fn root_seed() -> [u8; 32] {
    let mut s = [0x1d; 32];
    s[0] = 2;
    s
}

pub struct World {
    pub sb: Sandbox,
    pub rng: ChaCha20Rng,
    pub holder: SecretKey,
    pub held: HeldCredential,
    pub policy: Policy,
    pub hall: Verifier,
}

pub fn world(test: &str) -> World {
    world_in(test, CryptoSuite::Ed25519Blake3)
}

/// [`world`] on a sandbox chain of `suite`, with a holder key of its
/// algorithm.
pub fn world_in(test: &str, suite: CryptoSuite) -> World {
    let mut rng = rng(test);
    let mut sb = Sandbox::with_suite(suite).unwrap();
    let holder = SecretKey::generate_for(suite, &mut rng);
    let held = sb.issue(&mut rng, 1, Some(holder.public_key())).unwrap();
    let policy = sb.policy("hall-1").unwrap();
    let hall = Verifier::new(policy.clone()).unwrap();
    World {
        sb,
        rng,
        holder,
        held,
        policy,
        hall,
    }
}

impl World {
    /// A bound presentation of `reveal` with fresh proofs and a fresh nonce.
    pub fn present(&mut self, reveal: &[&str]) -> Presentation {
        let held = self.held.clone();
        self.present_of(&held, reveal)
    }

    pub fn present_of(&mut self, held: &HeldCredential, reveal: &[&str]) -> Presentation {
        let nonce = self.hall.challenge(&mut self.rng, self.sb.now());
        let binding = BindingRequest {
            holder: &self.holder,
            nonce,
            audience: self.policy.hall.clone(),
            time: self.sb.now(),
        };
        held.present(reveal, Some(binding), self.sb.proofs(held).unwrap())
            .unwrap()
    }

    pub fn verify(
        &mut self,
        p: &Presentation,
    ) -> Result<
        govchain_identity::verifier::VerifiedPresentation,
        govchain_identity::verifier::Rejection,
    > {
        self.hall
            .verify(self.sb.client(), &p.to_bytes(), self.sb.now())
    }

    /// Re-signs a modified credential with the bureau's current key 0.
    pub fn resign(&self, c: &mut Credential) {
        let key = self.sb.signing_key(c.body.key_id).unwrap();
        c.signature = key.sign(c.body.signing_message().as_bytes());
    }

    /// Re-binds a presentation after it was modified.
    pub fn rebind(&mut self, p: &mut Presentation) {
        let nonce = self.hall.challenge(&mut self.rng, self.sb.now());
        let b = BindingRequest {
            holder: &self.holder,
            nonce,
            audience: self.policy.hall.clone(),
            time: self.sb.now(),
        };
        let msg = p.binding_message(&b.nonce, &b.audience, b.time);
        p.binding = Some(govchain_identity::presentation::HolderBinding {
            nonce: b.nonce,
            audience: b.audience,
            time: b.time,
            signature: self.holder.sign(msg.as_bytes()),
        });
    }
}
