//! A light client that trusts only the genesis validator set follows a chain
//! across every kind of key change a department can go through: an expiry
//! recorded ahead of time, a rotation (the old key replaced by a new one at
//! a stated height, the old key still signing for its department during an
//! overlap), and a compromise report. At each change it must refuse
//! a certificate that counts a signature the change took away, while the
//! honest chain (signed only by keys inside their windows) goes on, since
//! more than two thirds of the power stays valid throughout.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use govchain_core::cert::{certify, CertificateError};
use govchain_core::crypto::{PublicKey, SecretKey, Signer};
use govchain_core::light::{LightBlock, LightClient, LightClientError};
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::{KeyRejection, KeyWindow, ValidatorSet};

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

/// Departments 1–4 at genesis. Department 1's key expires at height 8;
/// department 2 rotates to a new key (seed 20) from height 12, its old key
/// signing for it until height 13 (its operator loads the new key for
/// block 13); department 3's key is reported compromised from height 16.
const EXPIRY: u64 = 8;
const ROTATION: u64 = 12;
const OVERLAP_END: u64 = 13;
const COMPROMISE: u64 = 16;
const TIP: u64 = 20;

fn set(keys: &[&SecretKey]) -> ValidatorSet {
    ValidatorSet::with_equal_power(keys.iter().map(|k| k.public_key())).unwrap()
}

/// The set from `ROTATION`: department 1's key expiring, department 2's
/// key rotated to seed 20 with the old key signing below `OVERLAP_END`.
fn rotated_set() -> ValidatorSet {
    let (k1, k2, k3, k4) = (key(1), key(2), key(3), key(4));
    set(&[&k1, &k2, &k3, &k4])
        .with_key_windows([(k1.public_key(), KeyWindow::expiring_at(Height::new(EXPIRY)))])
        .unwrap()
        .with_rotation(
            &k2.public_key(),
            key(20).public_key(),
            Height::new(OVERLAP_END),
        )
        .unwrap()
}

fn build() -> ChainBuilder<KvApp> {
    let (k1, k2, k3, k4, k2_new) = (key(1), key(2), key(3), key(4), key(20));
    let chain = ChainId::new("hz-main").unwrap();
    let mut b = ChainBuilder::new(
        chain,
        KvApp,
        vec![key(1), key(2), key(3), key(4)],
        Timestamp::new(1_000),
    )
    .unwrap();
    for h in 1..=TIP {
        // A change requested before producing block h is announced by h
        // and signs from h + 1.
        if h + 1 == 3 {
            let windowed = set(&[&k1, &k2, &k3, &k4])
                .with_key_windows([(k1.public_key(), KeyWindow::expiring_at(Height::new(EXPIRY)))])
                .unwrap();
            b.change_validator_set(vec![key(1), key(2), key(3), key(4)], windowed);
        }
        if h + 1 == ROTATION {
            // The rotation replaces department 2's key; department 1 stays a
            // member with its expired key until governance removes it.
            // Department 2's node still signs with its old key.
            b.change_validator_set(vec![key(1), key(2), key(3), key(4)], rotated_set());
        }
        if h == OVERLAP_END {
            // Takes effect at once, for block `h`.
            b.set_signers(vec![key(1), key(20), key(3), key(4)]);
        }
        if h + 1 == 14 {
            // Department 1 is replaced (its key expired), so that the
            // compromise below leaves three valid keys of four.
            let k1_new = key(10);
            let next = set(&[&k1_new, &k2_new, &k3, &k4])
                .with_key_windows([(
                    k3.public_key(),
                    KeyWindow::revoked_from(Height::new(COMPROMISE)),
                )])
                .unwrap();
            b.change_validator_set(vec![k1_new, key(20), key(3), key(4)], next);
        }
        b.produce_block(Vec::new(), Timestamp::new(1_000 + h))
            .unwrap();
    }
    b
}

/// `block` with its certificate re-signed by `signers` (all of them,
/// windows or not), as a forger holding those keys would make it.
fn forged(block: &LightBlock, signers: &[&SecretKey]) -> LightBlock {
    let h = &block.header;
    let signers: Vec<&dyn Signer> = signers.iter().map(|s| *s as &dyn Signer).collect();
    let mut forged = block.clone();
    forged.certificate = certify(&h.chain_id, h.height, Round::new(0), h.hash(), &signers);
    forged
}

fn refusal(client: &LightClient, block: &LightBlock) -> CertificateError {
    let mut probe = client.clone();
    match probe.verify(block) {
        Err(LightClientError::Certificate(e)) => e,
        other => panic!(
            "expected a certificate error at {}, got {other:?}",
            block.header.height
        ),
    }
}

fn signers_of(block: &LightBlock) -> Vec<PublicKey> {
    block
        .certificate
        .signatures
        .iter()
        .map(|s| s.validator.clone())
        .collect()
}

#[test]
fn light_client_follows_expiry_rotation_and_compromise() {
    let b = build();
    let (genesis_set, genesis_time) = b.genesis();
    let mut client =
        LightClient::from_genesis(b.chain_id().clone(), genesis_set.clone(), genesis_time);
    let (k1, k2, k3, k4) = (key(1), key(2), key(3), key(4));
    for committed in b.blocks() {
        let light = &committed.light;
        let h = light.header.height.get();
        let signers = signers_of(light);
        // The honest chain never counts a key outside its window, and
        // always has more than two thirds of the power.
        let expected_signers = match h {
            h if h < EXPIRY => 4,
            h if h < 14 => 3,
            h if h < COMPROMISE => 4,
            _ => 3,
        };
        assert_eq!(signers.len(), expected_signers, "height {h}");
        if (EXPIRY..14).contains(&h) {
            // Department 1's expired key no longer signs, and a
            // certificate that counts it anyway is refused.
            assert!(!signers.contains(&k1.public_key()));
            let e = refusal(&client, &forged(light, &[&k1, &k3, &k4]));
            assert_eq!(
                e,
                CertificateError::KeyOutsideWindow {
                    signer: k1.public_key(),
                    height: Height::new(h),
                    reason: KeyRejection::Expired {
                        at: Height::new(EXPIRY)
                    },
                },
                "height {h}"
            );
        }
        if (ROTATION..OVERLAP_END).contains(&h) {
            // The old key signs for department 2 during the overlap; with
            // the new key too, the department would count twice.
            assert!(signers.contains(&k2.public_key()), "height {h}");
            let set = rotated_set();
            let mut twice = forged(light, &[&k2, &key(20), &k3]);
            twice
                .certificate
                .signatures
                .sort_by_key(|s| set.may_sign(&s.validator, Height::new(h)).unwrap().0);
            let e = refusal(&client, &twice);
            assert!(
                matches!(e, CertificateError::DuplicateSigner { .. }),
                "height {h}: {e:?}"
            );
        }
        if h == OVERLAP_END {
            // After the overlap the old key is refused like an expired one.
            assert!(signers.contains(&key(20).public_key()));
            let e = refusal(&client, &forged(light, &[&k2, &k3, &k4]));
            assert_eq!(
                e,
                CertificateError::KeyOutsideWindow {
                    signer: k2.public_key(),
                    height: Height::new(h),
                    reason: KeyRejection::Expired {
                        at: Height::new(OVERLAP_END)
                    },
                },
            );
        }
        if h > OVERLAP_END {
            // The next set no longer lists the rotated-out key at all.
            let e = refusal(&client, &forged(light, &[&k2, &k3, &k4]));
            assert!(
                matches!(e, CertificateError::NonMemberSigner { ref signer } if *signer == k2.public_key()),
                "height {h}: {e:?}"
            );
        }
        if h >= COMPROMISE {
            assert!(!signers.contains(&k3.public_key()));
            let e = refusal(&client, &forged(light, &[&key(10), &key(20), &k3]));
            assert!(
                matches!(
                    e,
                    CertificateError::KeyOutsideWindow {
                        reason: KeyRejection::Compromised { .. },
                        ..
                    }
                ),
                "height {h}: {e:?}"
            );
            // Without the compromised key, two of four is not a quorum.
            let e = refusal(&client, &forged(light, &[&key(10), &k4]));
            assert!(
                matches!(e, CertificateError::InsufficientPower { .. }),
                "{e:?}"
            );
        }
        client
            .verify(light)
            .unwrap_or_else(|e| panic!("height {h}: {e}"));
    }
    assert_eq!(client.height(), Height::new(TIP));
    // Every kind of change happened under the client's eyes.
    let last_set = b.validator_set();
    assert!(last_set.find(&k2.public_key()).is_none());
    assert!(last_set.find(&k1.public_key()).is_none());
    assert_eq!(
        last_set
            .may_sign(&k3.public_key(), Height::new(TIP))
            .map(|_| ()),
        Err(KeyRejection::Compromised {
            from: Height::new(COMPROMISE)
        })
    );
    assert!(last_set.is_quorum(last_set.valid_power_at(Height::new(TIP))));
}

/// A compromise reported late: the set recording it takes effect at height
/// 10, but voids the key from height 5, so blocks 5–9 were certified by
/// sets that did not know. A client that learned the report (from a later
/// set, or out of band) never counts that key's signatures from height 5
/// on, whatever the signing set says; the honest chain still verifies (the
/// other three keys are a quorum), a forgery that needs the key does not.
#[test]
fn a_known_compromise_voids_signatures_the_signing_set_still_counted() {
    let chain = ChainId::new("hz-late-report").unwrap();
    let (k1, k2, k3, k4) = (key(1), key(2), key(3), key(4));
    let mut b = ChainBuilder::new(
        chain.clone(),
        KvApp,
        vec![key(1), key(2), key(3), key(4)],
        Timestamp::new(1_000),
    )
    .unwrap();
    for h in 1..=12u64 {
        if h + 1 == 10 {
            let reported = set(&[&k1, &k2, &k3, &k4])
                .with_key_windows([(k3.public_key(), KeyWindow::revoked_from(Height::new(5)))])
                .unwrap();
            b.change_validator_set(vec![key(1), key(2), key(4)], reported);
        }
        b.produce_block(Vec::new(), Timestamp::new(1_000 + h))
            .unwrap();
    }
    let (genesis_set, genesis_time) = b.genesis();
    let fresh = || LightClient::from_genesis(chain.clone(), genesis_set.clone(), genesis_time);
    let blocks: Vec<LightBlock> = b.blocks().iter().map(|c| c.light.clone()).collect();
    // The honest chain counted the key at 5..9 (nobody knew yet).
    assert!(signers_of(&blocks[6]).contains(&k3.public_key()));
    let forgery = forged(&blocks[6], &[&k1, &k2, &k3]);

    // Told of the report up front: the forgery at 7 is refused, the honest
    // chain is not.
    let mut informed = fresh().with_known_compromises([(k3.public_key(), Height::new(5))]);
    for block in &blocks[..6] {
        informed.verify(block).unwrap();
    }
    assert_eq!(
        refusal(&informed, &forgery),
        CertificateError::KeyOutsideWindow {
            signer: k3.public_key(),
            height: Height::new(7),
            reason: KeyRejection::Compromised {
                from: Height::new(5)
            },
        }
    );
    for block in &blocks[6..] {
        informed.verify(block).unwrap();
    }

    // Without it, a client accepts what the signing set accepts (the
    // documented limit), and learns the report when it reaches the set
    // that records it.
    let mut naive = fresh();
    for block in &blocks[..6] {
        naive.verify(block).unwrap();
    }
    naive.clone().verify(&forgery).unwrap();
    for block in &blocks[6..] {
        naive.verify(block).unwrap();
    }
    assert_eq!(
        naive.known_compromises().get(&k3.public_key()),
        Some(&Height::new(5))
    );
}
