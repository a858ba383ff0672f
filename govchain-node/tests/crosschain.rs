//! Cross-chain proofs over a real side chain and a real main chain (the
//! governance application, with anchors submitted as transactions), both
//! built and certified with the core testkit, verified by fresh light
//! clients that trust only the main chain's validator set; and tampering
//! with every component.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use govchain_core::cert::CertificateError;
use govchain_core::codec::Encode;
use govchain_core::crypto::{PublicKey, SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::light::{LightClient, LightClientError};
use govchain_core::smt::SmtProofError;
use govchain_core::testkit::{ChainBuilder, KvApp};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::{Validator, ValidatorSet};
use govchain_node::crosschain::*;
use govchain_node::governance::*;
use proptest::prelude::*;

fn sk(i: u8) -> SecretKey {
    SecretKey::from_seed(&[i; 32])
}

fn pk(i: u8) -> PublicKey {
    sk(i).public_key()
}

fn chain(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

const T0: Timestamp = Timestamp::new(1_000);
const SIDE: &str = "side-a";
/// The side chain anchors every 4 blocks.
const K: u64 = 4;

fn equal_set(members: &[u8]) -> ValidatorSet {
    ValidatorSet::new(
        members
            .iter()
            .map(|&i| Validator {
                public_key: pk(i),
                power: 1,
            })
            .collect(),
    )
    .unwrap()
}

/// A side chain of 8 blocks (validators 1, 2, 3) whose every block holds
/// three key-value transactions, anchored at heights 4 and 8 on a main
/// chain of four departments running governance.
struct World {
    side: ChainBuilder<KvApp>,
    main: ChainBuilder<GovernanceApp>,
    /// Main height whose state holds the anchor of side height 8.
    main_height: Height,
}

fn build_world() -> World {
    let genesis = GovernanceGenesis {
        main_chain: chain("main"),
        departments: (1..=4u8)
            .map(|i| GenesisDepartment {
                id: DepartmentId::new(format!("dept-{i}")).unwrap(),
                name: format!("Department {i}"),
                node_key: pk(i),
                power: 1,
                suite_keys: Vec::new(),
            })
            .collect(),
        side_chains: vec![SideChainSpec {
            chain_id: chain(SIDE),
            engine: EngineKind::Bft,
            validators: equal_set(&[1, 2, 3]),
            anchor_interval: K,
        }],
    };
    let app = GovernanceApp::new(genesis).unwrap();
    let mut main = ChainBuilder::new(chain("main"), app, (1..=4).map(sk).collect(), T0).unwrap();
    let mut side = ChainBuilder::new(chain(SIDE), KvApp, vec![sk(1), sk(2), sk(3)], T0).unwrap();
    let user = sk(100);
    let mut nonce = 0;
    let mut main_nonce = 0;
    let mut time = T0.get();
    for h in 1..=8u64 {
        time += 1;
        let txs = (0..3)
            .map(|i| {
                nonce += 1;
                Transaction::new_signed(
                    chain(SIDE),
                    &user,
                    nonce - 1,
                    KvApp::payload(
                        format!("key-{h}-{i}").as_bytes(),
                        format!("v{h}").as_bytes(),
                    ),
                )
                .unwrap()
            })
            .collect();
        side.produce_block(txs, Timestamp::new(time)).unwrap();
        let main_txs = if h % K == 0 {
            let b = side.block(Height::new(h)).unwrap();
            let op = GovernanceOp::Anchor {
                header: b.block.header.clone(),
                certificate: b.light.certificate.clone(),
            };
            main_nonce += 1;
            vec![
                Transaction::new_signed(chain("main"), &sk(2), main_nonce - 1, op.to_payload())
                    .unwrap(),
            ]
        } else {
            vec![]
        };
        let committed = main.produce_block(main_txs, Timestamp::new(time)).unwrap();
        assert!(committed.receipts.iter().all(|r| r.code == CODE_OK));
    }
    // A few more main blocks after the anchors.
    for _ in 0..2 {
        time += 1;
        main.produce_block(vec![], Timestamp::new(time)).unwrap();
    }
    let main_height = main.height();
    World {
        side,
        main,
        main_height,
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build_world)
}

impl World {
    fn anchor_parts(&self, anchored: u64) -> (AnchorRecord, govchain_core::smt::SparseMerkleProof) {
        let key = anchor_key(&chain(SIDE), Height::new(anchored));
        let (value, proof) = self.main.state_proof(self.main_height, &key).unwrap();
        let record: AnchorRecord =
            govchain_core::codec::decode_exact(&value.unwrap(), 1024).unwrap();
        (record, proof)
    }

    /// A proof that transaction `index` of side block `height` exists,
    /// through the anchor at `anchored`.
    fn tx_proof(&self, height: u64, index: u64, anchored: u64) -> CrossChainProof {
        let block = self.side.block(Height::new(height)).unwrap();
        let mut b = CrossChainProofBuilder::new();
        b.transaction(
            block.block.transactions[index as usize].clone(),
            self.side.tx_proof(Height::new(height), index).unwrap(),
        )
        .side_header(block.block.header.clone());
        self.link(&mut b, height, anchored);
        b.build().unwrap()
    }

    /// A proof of state key `key` after side block `height`.
    fn state_proof(&self, height: u64, key: &[u8], anchored: u64) -> CrossChainProof {
        let block = self.side.block(Height::new(height)).unwrap();
        let state_key = KvApp::state_key(key);
        let (value, proof) = self
            .side
            .state_proof(Height::new(height), &state_key)
            .unwrap();
        let mut b = CrossChainProofBuilder::new();
        b.state(state_key, value, proof)
            .side_header(block.block.header.clone());
        self.link(&mut b, height, anchored);
        b.build().unwrap()
    }

    fn link(&self, b: &mut CrossChainProofBuilder, height: u64, anchored: u64) {
        if height == anchored {
            b.anchored_self();
        } else {
            b.anchored_ancestor(
                self.side
                    .block(Height::new(anchored))
                    .unwrap()
                    .block
                    .header
                    .clone(),
                self.side
                    .ancestor_proof(Height::new(anchored), Height::new(height))
                    .unwrap(),
            );
        }
        let (record, proof) = self.anchor_parts(anchored);
        b.anchor(record, proof)
            .main_block(self.main.block(self.main_height).unwrap().light.clone());
    }

    fn trusted(&self) -> (&ValidatorSet, Timestamp) {
        self.main.genesis()
    }

    fn fresh_client(&self) -> LightClient {
        let (set, time) = self.trusted();
        LightClient::from_genesis(chain("main"), set.clone(), time)
    }

    fn check(&self, proof: &CrossChainProof) -> Result<VerifiedFact, CrossChainError> {
        let by_set = proof.verify_with_validator_set(&chain("main"), self.trusted().0);
        let by_client = proof.verify(&mut self.fresh_client());
        assert_eq!(by_set, by_client);
        by_set
    }
}

#[test]
fn transaction_proof_verifies_with_a_fresh_light_client() {
    let w = world();
    let proof = w.tx_proof(6, 1, 8);
    let mut client = w.fresh_client();
    let fact = proof.verify(&mut client).unwrap();
    // Skipping verification does not move the client.
    assert_eq!(client.height(), Height::new(0));
    let tx = w.side.block(Height::new(6)).unwrap().block.transactions[1].clone();
    assert_eq!(fact.fact, ProvenFact::Transaction { tx, index: 1 });
    assert_eq!(fact.side_chain, chain(SIDE));
    assert_eq!(fact.side_height, Height::new(6));
    assert_eq!(fact.anchored_height, Height::new(8));
    assert_eq!(fact.main_height, w.main_height);
    assert_eq!(
        fact.side_block_hash,
        w.side.block(Height::new(6)).unwrap().block.hash()
    );
    assert_eq!(
        fact.main_block_hash,
        w.main.block(w.main_height).unwrap().block.hash()
    );
    assert_eq!(
        proof.verify_with_validator_set(&chain("main"), w.trusted().0),
        Ok(fact)
    );
    // Through the earlier anchor too, and for the anchored block itself.
    w.check(&w.tx_proof(1, 0, 4)).unwrap();
    w.check(&w.tx_proof(4, 2, 4)).unwrap();
    w.check(&w.tx_proof(8, 0, 8)).unwrap();
    // It survives its encoding.
    let bytes = proof.to_bytes();
    assert_eq!(CrossChainProof::decode(&bytes).unwrap(), proof);
    assert!(CrossChainProof::decode(&bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn state_proofs_of_presence_and_absence_verify() {
    let w = world();
    let present = w.state_proof(5, b"key-3-2", 8);
    let fact = w.check(&present).unwrap();
    assert_eq!(
        fact.fact,
        ProvenFact::State {
            key: KvApp::state_key(b"key-3-2"),
            value: Some(b"v3".to_vec()),
        }
    );
    // Written at height 7: absent after height 5.
    let absent = w.state_proof(5, b"key-7-0", 8);
    assert_eq!(
        w.check(&absent).unwrap().fact,
        ProvenFact::State {
            key: KvApp::state_key(b"key-7-0"),
            value: None,
        }
    );
    w.check(&w.state_proof(8, b"key-8-1", 8)).unwrap();
}

#[test]
fn light_client_modes() {
    let w = world();
    let proof = w.tx_proof(2, 0, 4);
    // A client one header behind verifies the main header and advances.
    let mut client = w.fresh_client();
    for b in &w.main.blocks()[..w.main_height.get() as usize - 1] {
        client.verify(&b.light).unwrap();
    }
    proof.verify(&mut client).unwrap();
    assert_eq!(client.height(), w.main_height);
    // A client that already has it checks that it is the same header.
    proof.verify(&mut client).unwrap();
    let mut other = proof.clone();
    other.main = w.main.block(Height::new(3)).unwrap().light.clone();
    assert!(matches!(
        other.verify(&mut client),
        Err(CrossChainError::AnchorStateProof { .. })
    ));
    let mut forged = proof.clone();
    forged.main.header.time = Timestamp::new(1);
    assert!(matches!(
        forged.verify(&mut client),
        Err(CrossChainError::MainHeaderConflict { .. })
    ));
    // A client of another chain.
    let mut stranger = LightClient::from_genesis(chain("other"), equal_set(&[1]), T0);
    assert!(matches!(
        proof.verify(&mut stranger),
        Err(CrossChainError::MainWrongChain { .. })
    ));
    // A client whose next set is not the header's can not skip to it.
    let mut moved = LightClient::from_genesis(chain("main"), equal_set(&[1, 2, 3]), T0);
    assert!(matches!(
        proof.verify(&mut moved),
        Err(CrossChainError::MainHeaderUnverifiable { .. })
    ));
    // A trusted set that is not the header's.
    assert!(matches!(
        proof.verify_with_validator_set(&chain("main"), &equal_set(&[1, 2, 3])),
        Err(CrossChainError::MainValidatorSetMismatch { .. })
    ));
}

#[test]
fn builder_requires_every_part_and_checks_links() {
    let w = world();
    let block = w.side.block(Height::new(3)).unwrap();
    let mut b = CrossChainProofBuilder::new();
    assert!(matches!(
        b.build(),
        Err(CrossChainError::MissingPart { .. })
    ));
    b.transaction(
        block.block.transactions[0].clone(),
        w.side.tx_proof(Height::new(3), 0).unwrap(),
    )
    .side_header(block.block.header.clone());
    assert_eq!(
        b.build(),
        Err(CrossChainError::MissingPart {
            part: "anchor record"
        })
    );
    // Linking to the wrong anchor is caught by the builder.
    w.link(&mut b, 3, 8);
    b.build().unwrap();
    b.anchored_self();
    assert!(matches!(
        b.build(),
        Err(CrossChainError::AnchorHeightMismatch { .. })
    ));
}

fn tamper(
    proof: &CrossChainProof,
    f: impl FnOnce(&mut CrossChainProof),
) -> Result<VerifiedFact, CrossChainError> {
    let mut p = proof.clone();
    f(&mut p);
    assert_ne!(&p, proof, "the tampering changed nothing");
    world().check(&p)
}

fn flip(h: &mut Hash) {
    let mut b = h.to_bytes();
    b[0] ^= 1;
    *h = Hash::from_bytes(b);
}

#[test]
fn tampering_with_each_component_fails_with_its_own_error() {
    let w = world();
    let proof = w.tx_proof(6, 1, 8);
    let state = w.state_proof(6, b"key-6-0", 8);
    let anchored_self = w.tx_proof(8, 1, 8);
    use CrossChainError as E;

    // The fact: another transaction, or one for another chain.
    let other_tx = w.side.block(Height::new(6)).unwrap().block.transactions[2].clone();
    assert!(matches!(
        tamper(&proof, |p| {
            if let Fact::Transaction { tx, .. } = &mut p.fact {
                *tx = other_tx;
            }
        }),
        Err(E::TxInclusion { .. })
    ));
    let foreign = Transaction::new_signed(chain("elsewhere"), &sk(100), 0, vec![1]).unwrap();
    assert!(matches!(
        tamper(&proof, |p| {
            if let Fact::Transaction { tx, .. } = &mut p.fact {
                *tx = foreign;
            }
        }),
        Err(E::FactChainMismatch { .. })
    ));
    // The transaction's inclusion proof: a path hash, the index.
    assert!(matches!(
        tamper(&proof, |p| {
            if let Fact::Transaction { proof, .. } = &mut p.fact {
                flip(&mut proof.path[0]);
            }
        }),
        Err(E::TxInclusion { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let Fact::Transaction { proof, .. } = &mut p.fact {
                proof.leaf_index = 0;
            }
        }),
        Err(E::TxInclusion { .. })
    ));
    // A state fact: its value, its presence, its proof.
    assert!(matches!(
        tamper(&state, |p| if let Fact::State { value, .. } = &mut p.fact {
            *value = Some(b"forged".to_vec());
        }),
        Err(E::FactStateProof {
            source: SmtProofError::ValueMismatch { .. }
        })
    ));
    assert!(matches!(
        tamper(&state, |p| if let Fact::State { value, .. } = &mut p.fact {
            *value = None;
        }),
        Err(E::FactStateProof {
            source: SmtProofError::KeyPresent { .. }
        })
    ));
    assert!(matches!(
        tamper(&state, |p| if let Fact::State { key, .. } = &mut p.fact {
            key.push(b'x');
        }),
        Err(E::FactStateProof { .. })
    ));
    assert!(matches!(
        tamper(&state, |p| if let Fact::State { proof, .. } = &mut p.fact {
            flip(&mut proof.siblings[0]);
        }),
        Err(E::FactStateProof { .. })
    ));

    // The side header: a root, its chain, its height.
    assert!(matches!(
        tamper(&proof, |p| flip(&mut p.side_header.tx_root)),
        Err(E::HistoryProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.side_header.chain_id = chain("side-b")),
        Err(E::SideChainMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.side_header.height = Height::new(5)),
        Err(E::HistoryIndexMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.side_header.height = Height::new(8)),
        Err(E::NotAnAncestor { .. })
    ));
    // When the side header is the anchored header, its hash is the anchor's.
    assert!(matches!(
        tamper(&anchored_self, |p| flip(&mut p.side_header.state_root)),
        Err(E::AnchorBlockHashMismatch { .. })
    ));

    // The history proof: a path hash, the index, the size.
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor { history_proof, .. } = &mut p.link {
                flip(&mut history_proof.path[0]);
            }
        }),
        Err(E::HistoryProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor { history_proof, .. } = &mut p.link {
                history_proof.leaf_index = 4;
            }
        }),
        Err(E::HistoryIndexMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor { history_proof, .. } = &mut p.link {
                history_proof.tree_size = 8;
            }
        }),
        Err(E::HistoryProof { .. })
    ));
    // Dropping the link: the side header is not the anchored one.
    assert!(matches!(
        tamper(&proof, |p| p.link = AnchorLink::Anchored),
        Err(E::AnchorHeightMismatch { .. })
    ));

    // The anchored header: any field changes its hash; chain and height are
    // checked first.
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor {
                anchored_header, ..
            } = &mut p.link
            {
                flip(&mut anchored_header.history_root);
            }
        }),
        Err(E::AnchorBlockHashMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor {
                anchored_header, ..
            } = &mut p.link
            {
                anchored_header.time = Timestamp::new(0);
            }
        }),
        Err(E::AnchorBlockHashMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor {
                anchored_header, ..
            } = &mut p.link
            {
                anchored_header.height = Height::new(9);
            }
        }),
        Err(E::AnchorHeightMismatch { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor {
                anchored_header, ..
            } = &mut p.link
            {
                anchored_header.chain_id = chain("side-b");
            }
        }),
        Err(E::AnchorChainMismatch { .. })
    ));
    // Swapping in the other anchor's header.
    let header4 = w.side.block(Height::new(4)).unwrap().block.header.clone();
    assert!(matches!(
        tamper(&proof, |p| {
            if let AnchorLink::Ancestor {
                anchored_header, ..
            } = &mut p.link
            {
                *anchored_header = header4;
            }
        }),
        Err(E::AnchorHeightMismatch { .. })
    ));

    // The anchor record: every field is bound by the main-chain state.
    assert!(matches!(
        tamper(&proof, |p| flip(&mut p.anchor.block_hash)),
        Err(E::AnchorStateProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| flip(&mut p.anchor.history_root)),
        Err(E::AnchorStateProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.anchor.height = Height::new(7)),
        Err(E::AnchorStateProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.anchor.chain_id = chain("main")),
        Err(E::AnchorChainIsMain { .. })
    ));
    // Replacing record and proof with the other (real) anchor still needs a
    // matching anchored header.
    let (record4, proof4) = w.anchor_parts(4);
    assert!(matches!(
        tamper(&proof, |p| {
            p.anchor = record4;
            p.anchor_proof = proof4;
        }),
        Err(E::AnchorHeightMismatch { .. })
    ));

    // The anchor's state proof.
    assert!(matches!(
        tamper(&proof, |p| flip(&mut p.anchor_proof.siblings[0])),
        Err(E::AnchorStateProof { .. })
    ));
    assert!(matches!(
        tamper(&proof, |p| p
            .anchor_proof
            .siblings
            .pop()
            .map(|_| ())
            .unwrap()),
        Err(E::AnchorStateProof { .. })
    ));

    // The main header: any field breaks its certificate.
    assert!(matches!(
        tamper(&proof, |p| flip(&mut p.main.header.state_root)),
        Err(E::MainCertificate {
            source: CertificateError::WrongBlock { .. }
        })
    ));
    assert!(matches!(
        tamper(&proof, |p| p.main.header.chain_id = chain("other")),
        Err(E::MainWrongChain { .. })
    ));
    let by_set = {
        let mut p = proof.clone();
        flip(&mut p.main.header.validator_set_hash);
        p.verify_with_validator_set(&chain("main"), w.trusted().0)
    };
    assert!(matches!(by_set, Err(E::MainValidatorSetMismatch { .. })));

    // The certificate: a missing signature, a forged one, another block's.
    assert!(matches!(
        tamper(&proof, |p| {
            p.main.certificate.signatures.truncate(2);
        }),
        Err(E::MainCertificate {
            source: CertificateError::InsufficientPower { .. }
        })
    ));
    assert!(matches!(
        tamper(&proof, |p| {
            p.main.certificate.signatures[1].signature = sk(9).sign(b"something else");
        }),
        Err(E::MainCertificate {
            source: CertificateError::InvalidSignatures { .. }
        })
    ));
    let other_cert = w
        .main
        .block(Height::new(3))
        .unwrap()
        .light
        .certificate
        .clone();
    assert!(matches!(
        tamper(&proof, |p| p.main.certificate = other_cert),
        Err(E::MainCertificate {
            source: CertificateError::WrongBlock { .. }
        })
    ));
    // A supplied signing set must be the header's.
    assert!(matches!(
        tamper(&proof, |p| p.main.validator_set = Some(equal_set(&[1, 2]))),
        Err(E::MainValidatorSetMismatch { .. })
    ));
    // The right set may be supplied.
    let mut with_set = proof.clone();
    with_set.main.validator_set = Some(w.trusted().0.clone());
    w.check(&with_set).unwrap();
}

#[test]
fn light_client_rejections_keep_their_cause() {
    let w = world();
    // One behind: the client verifies the main header itself.
    let proof = w.tx_proof(2, 0, 4);
    let mut client = w.fresh_client();
    for b in &w.main.blocks()[..w.main_height.get() as usize - 1] {
        client.verify(&b.light).unwrap();
    }
    let mut forged = proof.clone();
    forged.main.certificate.signatures.truncate(1);
    assert!(matches!(
        forged.verify(&mut client),
        Err(CrossChainError::MainHeader {
            source: LightClientError::Certificate(CertificateError::InsufficientPower { .. })
        })
    ));
    assert_eq!(client.height().get(), w.main_height.get() - 1);
}

#[test]
fn decode_rejects_oversized_and_unknown_versions() {
    let w = world();
    let bytes = w.tx_proof(6, 1, 8).to_bytes();
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert!(CrossChainProof::decode(&v2).is_err());
    let huge = vec![0u8; MAX_CROSS_CHAIN_PROOF_LEN + 1];
    assert!(matches!(
        CrossChainProof::decode(&huge),
        Err(govchain_core::codec::DecodeError::InputTooLarge { .. })
    ));
}

/// Whether a mutated proof that verified is acceptable: never for a proof
/// of presence; for a proof of absence only if it proves another key absent
/// and that key really is absent (a non-membership proof covers a whole
/// subtree of keys, so flipping a bit of the key can land on another key of
/// that subtree: a true fact, and the verified fact names it).
fn acceptable(w: &World, original: &CrossChainProof, verified: &VerifiedFact) -> bool {
    match (&original.fact, &verified.fact) {
        (
            Fact::State {
                key, value: None, ..
            },
            ProvenFact::State {
                key: got,
                value: None,
            },
        ) => {
            got != key
                && w.side
                    .state_proof(verified.side_height, got)
                    .unwrap()
                    .0
                    .is_none()
        }
        _ => false,
    }
}

/// Exhaustively: flipping the low bit of any byte of an encoded proof (of
/// each kind: transaction via history, state presence, state absence, the
/// anchored block itself) makes it fail to decode or to verify, except that
/// an absence proof may turn into a proof of another key's real absence.
#[test]
fn every_single_bit_flip_is_caught() {
    let w = world();
    let mut other_absent_keys = 0;
    for proof in [
        w.tx_proof(6, 1, 8),
        w.state_proof(3, b"key-3-1", 4),
        w.state_proof(2, b"absent", 8),
        w.tx_proof(8, 2, 8),
    ] {
        let bytes = proof.to_bytes();
        for i in 0..bytes.len() {
            let mut m = bytes.clone();
            m[i] ^= 1;
            if let Ok(mutated) = CrossChainProof::decode(&m) {
                if let Ok(fact) = mutated.verify_with_validator_set(&chain("main"), w.trusted().0) {
                    assert!(
                        acceptable(w, &proof, &fact),
                        "byte {i} of {} is not bound: {:?}",
                        bytes.len(),
                        fact.fact
                    );
                    other_absent_keys += 1;
                }
            }
        }
    }
    // Only key bytes of the absence proof can do that.
    assert!(other_absent_keys <= b"kv/absent".len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every single-byte change of an encoded proof fails to decode or to
    /// verify (see `acceptable` for the one exception: another key's real
    /// absence), and never panics.
    #[test]
    fn single_byte_mutation_never_verifies(
        which in 0usize..4,
        index in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let w = world();
        let proof = match which {
            0 => w.tx_proof(6, 1, 8),
            1 => w.state_proof(3, b"key-3-1", 4),
            2 => w.state_proof(2, b"absent", 8),
            _ => w.tx_proof(8, 2, 8),
        };
        let mut bytes = proof.to_bytes();
        let i = index.index(bytes.len());
        bytes[i] = bytes[i].wrapping_add(delta);
        if let Ok(mutated) = CrossChainProof::decode(&bytes) {
            let by_set = mutated.verify_with_validator_set(&chain("main"), w.trusted().0);
            let by_client = mutated.verify(&mut w.fresh_client());
            prop_assert_eq!(by_set.as_ref().ok(), by_client.as_ref().ok());
            if let Ok(fact) = by_set {
                prop_assert!(acceptable(w, &proof, &fact), "unbound byte {}", i);
            }
        }
    }
}
