//! The governance application on a certified main chain built with the
//! core testkit: proposals, votes, validator changes at their effective
//! heights, side-chain anchors (BFT and Raft), and validator key expiry and
//! compromise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use govchain_core::app::{
    Application, BlockContext, Receipt, StateOverlay, StateView, TxRejection,
};
use govchain_core::cert::{certify, CommitCertificate};
use govchain_core::codec::Encode;
use govchain_core::crypto::{CryptoSuite, PublicKey, SecretKey, Signer};
use govchain_core::light::LightClient;
use govchain_core::testkit::{ChainBuilder, KvApp, TestkitError};
use govchain_core::tx::Transaction;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::{prove_rotation_possession, KeyWindow, ValidatorSet};
use govchain_node::governance::*;
use govchain_node::governance::{
    chain_suite, department_key_of_suite, department_keys, department_suite_key,
    prove_department_key_possession,
};

fn sk(i: u8) -> SecretKey {
    SecretKey::from_seed(&[i; 32])
}

/// Key `i` of `suite`'s algorithm (`sk(i)` for ed25519-blake3).
fn sk_in(suite: CryptoSuite, i: u8) -> SecretKey {
    SecretKey::from_seed_for(suite, &[i; 32])
}

fn pk_in(suite: CryptoSuite, i: u8) -> PublicKey {
    sk_in(suite, i).public_key()
}

fn pk(i: u8) -> PublicKey {
    sk(i).public_key()
}

fn chain(s: &str) -> ChainId {
    ChainId::new(s).unwrap()
}

fn dept(i: u8) -> DepartmentId {
    DepartmentId::new(format!("dept-{i}")).unwrap()
}

fn equal_set(members: &[u8]) -> ValidatorSet {
    equal_set_in(CryptoSuite::Ed25519Blake3, members)
}

fn equal_set_in(suite: CryptoSuite, members: &[u8]) -> ValidatorSet {
    ValidatorSet::with_equal_power(members.iter().map(|&i| pk_in(suite, i))).unwrap()
}

const T0: Timestamp = Timestamp::new(1_000);

/// Departments `1..=powers.len()` with those main-chain powers; a BFT side
/// chain `side-bft` and a Raft side chain `side-raft`, both validated by
/// departments 1, 2 and 3, anchoring every 2 blocks.
fn genesis(powers: &[u64]) -> GovernanceGenesis {
    genesis_in(CryptoSuite::Ed25519Blake3, powers)
}

/// [`genesis`] with every key of `suite`'s algorithm.
fn genesis_in(suite: CryptoSuite, powers: &[u64]) -> GovernanceGenesis {
    GovernanceGenesis {
        main_chain: chain("main"),
        departments: powers
            .iter()
            .enumerate()
            .map(|(i, &power)| {
                let i = i as u8 + 1;
                GenesisDepartment {
                    id: dept(i),
                    name: format!("Department {i}"),
                    node_key: pk_in(suite, i),
                    power,
                    suite_keys: Vec::new(),
                }
            })
            .collect(),
        side_chains: vec![
            SideChainSpec {
                chain_id: chain("side-bft"),
                engine: EngineKind::Bft,
                validators: equal_set_in(suite, &[1, 2, 3]),
                anchor_interval: 2,
            },
            SideChainSpec {
                chain_id: chain("side-raft"),
                engine: EngineKind::Raft,
                validators: equal_set_in(suite, &[1, 2, 3]),
                anchor_interval: 2,
            },
        ],
    }
}

/// The main chain, signed by the departments with power.
struct Main {
    chain: ChainBuilder<GovernanceApp>,
    nonces: BTreeMap<u8, u64>,
    time: u64,
    suite: CryptoSuite,
}

/// A `StateView` of the main chain after its latest block.
struct View<'a>(&'a ChainBuilder<GovernanceApp>);

impl StateView for View<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, govchain_core::app::StateError> {
        let h = self.0.height();
        if h.get() == 0 {
            return Ok(None);
        }
        Ok(self.0.state_proof(h, key).unwrap().0)
    }
}

impl Main {
    fn new(powers: &[u64]) -> Self {
        Main::new_in(CryptoSuite::Ed25519Blake3, powers)
    }

    /// A main chain whose every key is of `suite`'s algorithm.
    fn new_in(suite: CryptoSuite, powers: &[u64]) -> Self {
        Main::with_genesis(genesis_in(suite, powers))
    }

    /// A main chain of `genesis`, whose department `i` (from 1) has node
    /// key `sk_in(suite, i)`.
    fn with_genesis(genesis: GovernanceGenesis) -> Self {
        let suite = genesis.suite().unwrap();
        let powers: Vec<u64> = genesis.departments.iter().map(|d| d.power).collect();
        let app = GovernanceApp::new(genesis).unwrap();
        let signers = (1..=powers.len() as u8)
            .filter(|i| powers[*i as usize - 1] > 0)
            .map(|i| sk_in(suite, i))
            .collect();
        let mut chain = ChainBuilder::new(chain("main"), app, signers, T0).unwrap();
        chain.produce_block(vec![], T0).unwrap();
        Main {
            chain,
            nonces: BTreeMap::new(),
            time: T0.get(),
            suite,
        }
    }

    fn tx(&mut self, from: u8, op: &GovernanceOp) -> Transaction {
        let nonce = self.nonces.entry(from).or_insert(0);
        let tx = Transaction::new_signed(
            chain("main"),
            &sk_in(self.suite, from),
            *nonce,
            op.to_payload(),
        )
        .unwrap();
        *nonce += 1;
        tx
    }

    fn block(&mut self, txs: Vec<Transaction>) -> Vec<Receipt> {
        self.time += 1;
        self.chain
            .produce_block(txs, Timestamp::new(self.time))
            .unwrap()
            .receipts
            .clone()
    }

    fn run(&mut self, from: u8, op: GovernanceOp) -> Receipt {
        let tx = self.tx(from, &op);
        self.block(vec![tx]).remove(0)
    }

    fn height(&self) -> Height {
        self.chain.height()
    }

    fn view(&self) -> View<'_> {
        View(&self.chain)
    }
}

fn event(r: &Receipt) -> GovernanceEvent {
    assert_eq!(r.code, CODE_OK, "{}", String::from_utf8_lossy(&r.data));
    GovernanceEvent::decode(&r.data).unwrap()
}

fn status(r: &Receipt) -> ProposalStatus {
    match event(r) {
        GovernanceEvent::Proposed { status, .. } | GovernanceEvent::Voted { status, .. } => status,
        other => panic!("unexpected event {other:?}"),
    }
}

fn vote(id: u64, approve: bool) -> GovernanceOp {
    GovernanceOp::Vote {
        proposal_id: ProposalId::new(id),
        approve,
    }
}

fn set_param(effective: Height) -> GovernanceOp {
    GovernanceOp::Propose {
        action: Action::SetParameter {
            chain: chain("side-bft"),
            name: "block-interval-ms".into(),
            value: b"500".to_vec(),
        },
        effective_height: effective,
    }
}

#[test]
fn proposal_passes_above_two_thirds_and_not_at_exactly_two_thirds() {
    // Three validating departments of equal power and one without power.
    let mut main = Main::new(&[1, 1, 1, 0]);
    assert_eq!(
        status(&main.run(1, set_param(Height::new(5)))),
        ProposalStatus::Open
    );
    // The powerless department may vote, but adds nothing.
    assert_eq!(status(&main.run(4, vote(1, true))), ProposalStatus::Open);
    // 2 of 3 is exactly 2/3: not enough.
    assert_eq!(status(&main.run(2, vote(1, true))), ProposalStatus::Open);
    assert_eq!(
        parameter_at(
            &main.view(),
            &chain("side-bft"),
            "block-interval-ms",
            Height::new(5)
        )
        .unwrap(),
        None
    );
    // 3 of 3 passes.
    assert_eq!(status(&main.run(3, vote(1, true))), ProposalStatus::Passed);
    let view = main.view();
    assert_eq!(
        parameter_at(
            &view,
            &chain("side-bft"),
            "block-interval-ms",
            Height::new(5)
        )
        .unwrap(),
        Some(b"500".to_vec())
    );
    let p = proposal(&view, ProposalId::new(1)).unwrap().unwrap();
    assert_eq!(p.status, ProposalStatus::Passed);
    assert_eq!(p.approvals.len(), 4);
    assert_eq!(p.submitted_at, Height::new(2));
}

#[test]
fn non_department_sender_is_rejected() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let stranger = sk(77);
    let tx = Transaction::new_signed(
        chain("main"),
        &stranger,
        0,
        set_param(Height::new(9)).to_payload(),
    )
    .unwrap();
    assert!(matches!(
        main.chain.app().check_tx(&main.view(), &tx),
        Err(TxRejection::Unauthorized { .. })
    ));
    assert!(matches!(
        main.chain
            .produce_block(vec![tx.clone()], Timestamp::new(5_000)),
        Err(TestkitError::Rejected { .. })
    ));
    // A proposer that includes it anyway gets a failed receipt.
    let view = main.view();
    let ctx = BlockContext {
        chain_id: chain("main"),
        height: Height::new(2),
        time: Timestamp::new(5_000),
        proposer: pk(1),
        suite: govchain_core::crypto::CryptoSuite::Ed25519Blake3,
    };
    let mut overlay = StateOverlay::new(&view);
    let receipts = main
        .chain
        .app()
        .execute_block(&ctx, &mut overlay, &[tx])
        .unwrap();
    assert_eq!(receipts[0].code, CODE_UNAUTHORIZED);
    // Nothing but the nonce was written.
    let writes = overlay.into_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].0,
        govchain_core::app::NonceTracker::key(&stranger.public_key())
    );
    // Replayed nonces are refused by check_tx, future ones admitted.
    let r = main.run(1, set_param(Height::new(9)));
    assert_eq!(r.code, CODE_OK);
    let view = main.view();
    let replay =
        Transaction::new_signed(chain("main"), &sk(1), 0, vote(1, true).to_payload()).unwrap();
    assert!(matches!(
        main.chain.app().check_tx(&view, &replay),
        Err(TxRejection::BadNonce { .. })
    ));
    let future =
        Transaction::new_signed(chain("main"), &sk(1), 5, vote(1, true).to_payload()).unwrap();
    assert!(main.chain.app().check_tx(&view, &future).is_ok());
}

#[test]
fn double_vote_is_counted_once() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    assert_eq!(
        status(&main.run(1, set_param(Height::new(9)))),
        ProposalStatus::Open
    );
    assert_eq!(status(&main.run(2, vote(1, true))), ProposalStatus::Open);
    // The same department again, either way: refused.
    assert_eq!(main.run(2, vote(1, true)).code, CODE_ALREADY_VOTED);
    assert_eq!(main.run(2, vote(1, false)).code, CODE_ALREADY_VOTED);
    // The proposer's own vote is already counted.
    assert_eq!(main.run(1, vote(1, true)).code, CODE_ALREADY_VOTED);
    // Two votes of one department in one block: the second fails.
    let a = main.tx(2, &vote(1, true));
    let b = main.tx(2, &vote(1, true));
    let receipts = main.block(vec![a, b]);
    assert_eq!(receipts[0].code, CODE_ALREADY_VOTED);
    assert_eq!(receipts[1].code, CODE_ALREADY_VOTED);
    let p = proposal(&main.view(), ProposalId::new(1)).unwrap().unwrap();
    assert_eq!(p.approvals.len(), 2);
    assert_eq!(p.status, ProposalStatus::Open);
    // Unknown proposals.
    assert_eq!(main.run(3, vote(42, true)).code, CODE_UNKNOWN_PROPOSAL);
    // The third distinct department passes it (3 of 4).
    assert_eq!(status(&main.run(3, vote(1, true))), ProposalStatus::Passed);
}

/// Runs a proposal by department 1 through approvals of 2 and 3 (all in one
/// block after the proposal), returning the final status.
fn pass(main: &mut Main, action: Action, effective: Height) -> (ProposalId, ProposalStatus) {
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action,
            effective_height: effective,
        },
    );
    let GovernanceEvent::Proposed { id, .. } = event(&r) else {
        panic!("not a proposal")
    };
    let votes = vec![
        main.tx(2, &vote(id.get(), true)),
        main.tx(3, &vote(id.get(), true)),
    ];
    let receipts = main.block(votes);
    (id, status(&receipts[1]))
}

#[test]
fn fifth_department_becomes_a_validator_at_the_effective_height() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let fifth = Department {
        id: dept(5),
        name: "Department 5".into(),
        node_key: pk(5),
    };
    // Department 5 can not act before it is registered.
    let early = Transaction::new_signed(
        chain("main"),
        &sk(5),
        0,
        set_param(Height::new(99)).to_payload(),
    )
    .unwrap();
    assert!(main.chain.app().check_tx(&main.view(), &early).is_err());

    // Proposed in block m + 1 and passed in m + 2, so effective at m + 5 at
    // the earliest.
    let m = main.height().get();
    let (_, st) = pass(
        &mut main,
        Action::RegisterDepartment {
            department: fifth.clone(),
        },
        Height::new(m + 5),
    );
    assert_eq!(st, ProposalStatus::Passed);
    assert_eq!(
        department_of_key(&main.view(), &pk(5)).unwrap(),
        Some(fifth)
    );
    assert_eq!(departments(&main.view()).unwrap().len(), 5);

    // A main-chain change decided at height m can take effect at m + 3 at
    // the earliest: m + 2 is refused.
    let m = main.height().get() + 1; // the block that will execute it
    let too_early = main.run(
        1,
        GovernanceOp::Propose {
            action: Action::AddValidator {
                chain: chain("main"),
                key: pk(5),
                power: 1,
                department: dept(5),
            },
            effective_height: Height::new(m + 2),
        },
    );
    assert_eq!(too_early.code, CODE_BAD_EFFECTIVE_HEIGHT);
    // The key must be the named department's node key.
    let m = main.height().get();
    let (_, st) = pass(
        &mut main,
        Action::AddValidator {
            chain: chain("main"),
            key: pk(4),
            power: 1,
            department: dept(5),
        },
        Height::new(m + 20),
    );
    assert_eq!(
        st,
        ProposalStatus::Failed {
            code: CODE_INVALID_ACTION
        }
    );

    // Propose at m, pass at m + 1, effective at m + 4 (the earliest).
    let m = main.height().get() + 1;
    let effective = Height::new(m + 4);
    let (_, st) = pass(
        &mut main,
        Action::AddValidator {
            chain: chain("main"),
            key: pk(5),
            power: 1,
            department: dept(5),
        },
        effective,
    );
    assert_eq!(st, ProposalStatus::Passed);
    assert_eq!(main.height().get(), m + 1);
    let view = main.view();
    let schedule = validator_schedule(&view, &chain("main")).unwrap();
    let new_set = equal_set(&[1, 2, 3, 4, 5]);
    assert_eq!(schedule.get(&effective), Some(&new_set));
    assert_eq!(
        validator_set_at(&view, &chain("main"), Height::new(effective.get() - 1)).unwrap(),
        Some(equal_set(&[1, 2, 3, 4]))
    );
    assert_eq!(
        validator_set_at(&view, &chain("main"), effective).unwrap(),
        Some(new_set.clone())
    );

    // The host follows the schedule: block effective - 1 announces the new
    // set and block `effective` is the first it signs. A light client
    // follows the change.
    while main.height().get() + 1 < effective.get() - 1 {
        main.block(vec![]);
    }
    main.chain
        .change_validators((1..=5).map(sk).collect())
        .unwrap();
    main.block(vec![]);
    main.block(vec![]);
    let at_effective = main.chain.block(effective).unwrap();
    assert_eq!(at_effective.block.header.validator_set_hash, new_set.hash());
    let (set, time) = main.chain.genesis();
    let mut client = LightClient::from_genesis(chain("main"), set.clone(), time);
    for b in main.chain.blocks() {
        client.verify(&b.light).unwrap();
    }

    // Now department 5's power counts: 4 of 5 approvals pass, 3 of 5 do not.
    let r = main.run(1, set_param(Height::new(50)));
    let GovernanceEvent::Proposed { id, .. } = event(&r) else {
        panic!()
    };
    assert_eq!(
        status(&main.run(2, vote(id.get(), true))),
        ProposalStatus::Open
    );
    assert_eq!(
        status(&main.run(3, vote(id.get(), true))),
        ProposalStatus::Open
    );
    assert_eq!(
        status(&main.run(5, vote(id.get(), true))),
        ProposalStatus::Passed
    );
}

#[test]
fn a_proposal_that_passes_too_late_fails() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let m = main.height().get() + 1;
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action: Action::RemoveValidator {
                chain: chain("main"),
                key: pk(4),
            },
            effective_height: Height::new(m + 3),
        },
    );
    assert_eq!(status(&r), ProposalStatus::Open);
    main.block(vec![]);
    main.block(vec![]);
    // Passing at m + 4, the change could take effect at m + 7 at the
    // earliest.
    assert_eq!(status(&main.run(2, vote(1, true))), ProposalStatus::Open);
    assert_eq!(
        status(&main.run(3, vote(1, true))),
        ProposalStatus::Failed {
            code: CODE_BAD_EFFECTIVE_HEIGHT
        }
    );
    assert_eq!(
        validator_schedule(&main.view(), &chain("main"))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn invalid_actions_are_refused_when_proposed() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let far = Height::new(100);
    let propose = |action| GovernanceOp::Propose {
        action,
        effective_height: far,
    };
    let cases = [
        (
            Action::RemoveValidator {
                chain: chain("nowhere"),
                key: pk(1),
            },
            CODE_UNKNOWN_CHAIN,
        ),
        (
            Action::RemoveValidator {
                chain: chain("side-bft"),
                key: pk(4),
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::AddValidator {
                chain: chain("side-bft"),
                key: pk(4),
                power: 0,
                department: dept(4),
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::RegisterSideChain {
                chain: chain("side-raft"),
                engine: EngineKind::Raft,
                validators: equal_set(&[1]),
                anchor_interval: 1,
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::RegisterSideChain {
                chain: chain("main"),
                engine: EngineKind::Bft,
                validators: equal_set(&[1]),
                anchor_interval: 1,
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::RegisterSideChain {
                chain: chain("side-new"),
                engine: EngineKind::Bft,
                validators: equal_set(&[1]),
                anchor_interval: 0,
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::RegisterDepartment {
                department: Department {
                    id: dept(9),
                    name: "dup key".into(),
                    node_key: pk(2),
                },
            },
            CODE_INVALID_ACTION,
        ),
        // Key windows only for members, and no expiry before the change
        // takes effect.
        (
            Action::SetKeyExpiry {
                chain: chain("side-bft"),
                key: pk(4),
                expires_at: Height::new(200),
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::ReportKeyCompromise {
                chain: chain("side-bft"),
                key: pk(7),
                from: Height::new(1),
            },
            CODE_INVALID_ACTION,
        ),
        (
            Action::SetKeyExpiry {
                chain: chain("side-bft"),
                key: pk(1),
                expires_at: Height::new(99),
            },
            CODE_INVALID_ACTION,
        ),
    ];
    for (action, code) in cases {
        let r = main.run(1, propose(action.clone()));
        assert_eq!(
            r.code,
            code,
            "{action:?}: {}",
            String::from_utf8_lossy(&r.data)
        );
    }
    // Nothing was opened.
    assert_eq!(proposal(&main.view(), ProposalId::new(1)).unwrap(), None);
}

#[test]
fn register_a_side_chain_then_anchor_it() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let (_, st) = pass(
        &mut main,
        Action::RegisterSideChain {
            chain: chain("side-new"),
            engine: EngineKind::Bft,
            validators: equal_set(&[2, 3, 4]),
            anchor_interval: 5,
        },
        Height::new(1),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    let info = chain_info(&view, &chain("side-new")).unwrap().unwrap();
    assert_eq!(info.anchor_interval, 5);
    assert_eq!(info.role, ChainRole::Side);
    assert_eq!(side_chains(&view).unwrap().len(), 3);

    let mut side =
        ChainBuilder::new(chain("side-new"), KvApp, vec![sk(2), sk(3), sk(4)], T0).unwrap();
    for i in 1..=5u64 {
        side.produce_block(vec![], Timestamp::new(T0.get() + i))
            .unwrap();
    }
    let b = side.block(Height::new(5)).unwrap();
    let r = main.run(
        1,
        GovernanceOp::Anchor {
            header: b.block.header.clone(),
            certificate: b.light.certificate.clone(),
        },
    );
    assert_eq!(
        event(&r),
        GovernanceEvent::Anchored {
            record: AnchorRecord::of_header(&b.block.header)
        }
    );
    // A side-chain change must take effect above the anchored height.
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action: Action::RemoveValidator {
                chain: chain("side-new"),
                key: pk(4),
            },
            effective_height: Height::new(5),
        },
    );
    assert_eq!(r.code, CODE_BAD_EFFECTIVE_HEIGHT);
}

struct Side {
    chain: ChainBuilder<KvApp>,
}

impl Side {
    fn new(id: &str, signers: &[u8], blocks: u64) -> Self {
        let mut chain = ChainBuilder::new(
            chain(id),
            KvApp,
            signers.iter().map(|i| sk(*i)).collect(),
            T0,
        )
        .unwrap();
        let user = sk(100);
        for h in 1..=blocks {
            let tx = Transaction::new_signed(
                chain.chain_id().clone(),
                &user,
                h - 1,
                KvApp::payload(format!("k{h}").as_bytes(), b"v"),
            )
            .unwrap();
            chain
                .produce_block(vec![tx], Timestamp::new(T0.get() + h))
                .unwrap();
        }
        Side { chain }
    }

    fn anchor_op(&self, height: u64) -> GovernanceOp {
        let b = self.chain.block(Height::new(height)).unwrap();
        GovernanceOp::Anchor {
            header: b.block.header.clone(),
            certificate: b.light.certificate.clone(),
        }
    }

    /// The anchor of `height` with its certificate re-signed by `signers`.
    fn anchor_signed_by(&self, height: u64, signers: &[u8]) -> GovernanceOp {
        let mut op = self.anchor_op(height);
        if let GovernanceOp::Anchor { certificate, .. } = &mut op {
            *certificate = self.cert_by(height, signers);
        }
        op
    }

    fn cert_by(&self, height: u64, signers: &[u8]) -> CommitCertificate {
        let b = self.chain.block(Height::new(height)).unwrap();
        let keys: Vec<SecretKey> = signers.iter().map(|i| sk(*i)).collect();
        let signers: Vec<&dyn Signer> = keys.iter().map(|k| k as &dyn Signer).collect();
        certify(
            self.chain.chain_id(),
            b.block.header.height,
            Round::new(0),
            b.block.hash(),
            &signers,
        )
    }
}

#[test]
fn bft_anchors_are_verified_and_strictly_increasing() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let side = Side::new("side-bft", &[1, 2, 3], 6);
    let chain_id = chain("side-bft");

    // Certificate of another block.
    let mut op = side.anchor_op(4);
    if let GovernanceOp::Anchor { certificate, .. } = &mut op {
        *certificate = side
            .chain
            .block(Height::new(3))
            .unwrap()
            .light
            .certificate
            .clone();
    }
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // Exactly 2/3 of the registered set is not a BFT quorum.
    let op = side.anchor_signed_by(4, &[1, 2]);
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // Signed by strangers to the registered set.
    let op = side.anchor_signed_by(4, &[1, 2, 3, 60]);
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // A tampered header.
    let mut op = side.anchor_op(4);
    if let GovernanceOp::Anchor { header, .. } = &mut op {
        header.state_root = govchain_core::hash::Hash::ZERO;
    }
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // A certificate naming another chain.
    let mut op = side.anchor_op(4);
    if let GovernanceOp::Anchor { certificate, .. } = &mut op {
        certificate.chain_id = chain("side-raft");
    }
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_WRONG_CHAIN);
    // An unregistered chain.
    let stranger = Side::new("side-x", &[1, 2, 3], 2);
    assert_eq!(main.run(1, stranger.anchor_op(2)).code, CODE_UNKNOWN_CHAIN);
    // The main chain itself.
    let main_block = main.chain.block(Height::new(1)).unwrap().clone();
    let op = GovernanceOp::Anchor {
        header: main_block.block.header.clone(),
        certificate: main_block.light.certificate.clone(),
    };
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_WRONG_CHAIN);
    assert_eq!(latest_anchor(&main.view(), &chain_id).unwrap(), None);

    // A good anchor is recorded, with the latest pointer.
    let r = main.run(2, side.anchor_op(4));
    let header4 = side
        .chain
        .block(Height::new(4))
        .unwrap()
        .block
        .header
        .clone();
    let record = AnchorRecord::of_header(&header4);
    assert_eq!(
        event(&r),
        GovernanceEvent::Anchored {
            record: record.clone()
        }
    );
    assert_eq!(record.history_root, header4.history_root);
    let view = main.view();
    assert_eq!(
        anchor(&view, &chain_id, Height::new(4)).unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        latest_anchor(&view, &chain_id).unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        main.chain
            .app()
            .query_key(
                &GovernanceQuery::Anchor {
                    chain: chain_id.clone(),
                    height: Height::new(4)
                }
                .to_bytes()
            )
            .unwrap(),
        anchor_key(&chain_id, Height::new(4))
    );

    // Heights must strictly increase.
    assert_eq!(
        main.run(1, side.anchor_op(4)).code,
        CODE_ANCHOR_NOT_INCREASING
    );
    assert_eq!(
        main.run(1, side.anchor_op(2)).code,
        CODE_ANCHOR_NOT_INCREASING
    );
    let r = main.run(3, side.anchor_op(6));
    assert_eq!(r.code, CODE_OK);
    let view = main.view();
    assert_eq!(
        latest_anchor(&view, &chain_id).unwrap().unwrap().height,
        Height::new(6)
    );
    // The earlier anchor stays.
    assert_eq!(
        anchor(&view, &chain_id, Height::new(4)).unwrap(),
        Some(record)
    );
}

#[test]
fn raft_anchors_need_the_leader_and_a_majority() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let side = Side::new("side-raft", &[1, 2, 3], 4);
    let header = side
        .chain
        .block(Height::new(3))
        .unwrap()
        .block
        .header
        .clone();
    let leader = [1u8, 2, 3]
        .into_iter()
        .find(|i| pk(*i) == header.proposer)
        .unwrap();
    let other = [1u8, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    let third = [1u8, 2, 3]
        .into_iter()
        .find(|i| *i != leader && *i != other)
        .unwrap();

    // Without the leader: refused.
    let op = GovernanceOp::Anchor {
        header: header.clone(),
        certificate: side.cert_by(3, &[other, third]),
    };
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // The leader alone is no majority.
    let op = GovernanceOp::Anchor {
        header: header.clone(),
        certificate: side.cert_by(3, &[leader]),
    };
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // Leader plus one of three is a strict majority (though not a BFT
    // quorum): accepted for a Raft chain.
    let op = GovernanceOp::Anchor {
        header: header.clone(),
        certificate: side.cert_by(3, &[leader, other]),
    };
    assert_eq!(main.run(1, op).code, CODE_OK);
    assert_eq!(
        latest_anchor(&main.view(), &chain("side-raft"))
            .unwrap()
            .unwrap(),
        AnchorRecord::of_header(&header)
    );
    // The testkit's full certificate for a later block also passes.
    assert_eq!(main.run(1, side.anchor_op(4)).code, CODE_OK);
}

#[test]
fn anchors_use_the_side_set_scheduled_at_their_height() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    // From side height 4, the BFT side chain is validated by 2, 3, 4.
    let (_, st) = pass(
        &mut main,
        Action::AddValidator {
            chain: chain("side-bft"),
            key: pk(4),
            power: 1,
            department: dept(4),
        },
        Height::new(4),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let (_, st) = pass(
        &mut main,
        Action::RemoveValidator {
            chain: chain("side-bft"),
            key: pk(1),
        },
        Height::new(4),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let schedule = validator_schedule(&main.view(), &chain("side-bft")).unwrap();
    assert_eq!(schedule.len(), 2);
    assert_eq!(schedule[&Height::new(4)], equal_set(&[2, 3, 4]));

    let mut side = Side::new("side-bft", &[1, 2, 3], 2);
    side.chain
        .change_validators(vec![sk(2), sk(3), sk(4)])
        .unwrap();
    for h in 3..=5u64 {
        side.chain
            .produce_block(vec![], Timestamp::new(T0.get() + h))
            .unwrap();
    }
    // Height 3 is signed by the old set, 4 and 5 by the new one.
    assert_eq!(main.run(1, side.anchor_op(3)).code, CODE_OK);
    // A certificate of the old set at height 5 is refused.
    let op = side.anchor_signed_by(5, &[1, 2, 3]);
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    assert_eq!(main.run(1, side.anchor_op(5)).code, CODE_OK);
}

#[test]
fn a_department_is_removed_only_once_it_validates_nothing() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let fifth = Department {
        id: dept(5),
        name: "Department 5".into(),
        node_key: pk(5),
    };
    let m = main.height().get();
    let (_, st) = pass(
        &mut main,
        Action::RegisterDepartment { department: fifth },
        Height::new(m + 5),
    );
    assert_eq!(st, ProposalStatus::Passed);
    assert_eq!(departments(&main.view()).unwrap().len(), 5);

    // Department 3 validates the main chain and both side chains, and
    // department 9 is not registered: both refused when proposed.
    for who in [3, 9] {
        let m = main.height().get();
        let r = main.run(
            1,
            GovernanceOp::Propose {
                action: Action::RemoveDepartment {
                    department: dept(who),
                },
                effective_height: Height::new(m + 10),
            },
        );
        assert_eq!(r.code, CODE_INVALID_ACTION, "department {who}");
    }
    assert!(department_of_key(&main.view(), &pk(3)).unwrap().is_some());

    // Department 5 validates nothing: removed, and its node can no longer
    // act on the main chain.
    let m = main.height().get();
    let (_, st) = pass(
        &mut main,
        Action::RemoveDepartment {
            department: dept(5),
        },
        Height::new(m + 10),
    );
    assert_eq!(st, ProposalStatus::Passed);
    assert_eq!(department_of_key(&main.view(), &pk(5)).unwrap(), None);
    assert_eq!(departments(&main.view()).unwrap().len(), 4);
    let late = Transaction::new_signed(
        chain("main"),
        &sk(5),
        0,
        set_param(Height::new(999)).to_payload(),
    )
    .unwrap();
    assert!(main.chain.app().check_tx(&main.view(), &late).is_err());
}

#[test]
fn key_expiry_and_compromise_bind_anchors_and_survive_membership_changes() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let side_id = chain("side-bft");
    let at4 = Height::new(4);
    let passes = |main: &mut Main, action: Action, at: Height| {
        let (_, st) = pass(main, action.clone(), at);
        assert_eq!(st, ProposalStatus::Passed, "{action:?}");
    };
    // From side height 4: department 4 joins; department 2's key is
    // reported compromised from 4 (a later report does not move it);
    // department 3's key expires at 20.
    passes(
        &mut main,
        Action::AddValidator {
            chain: side_id.clone(),
            key: pk(4),
            power: 1,
            department: dept(4),
        },
        at4,
    );
    for from in [4, 9] {
        passes(
            &mut main,
            Action::ReportKeyCompromise {
                chain: side_id.clone(),
                key: pk(2),
                from: Height::new(from),
            },
            at4,
        );
    }
    passes(
        &mut main,
        Action::SetKeyExpiry {
            chain: side_id.clone(),
            key: pk(3),
            expires_at: Height::new(20),
        },
        at4,
    );
    let schedule = validator_schedule(&main.view(), &side_id).unwrap();
    let set = schedule[&at4].clone();
    assert_eq!(set.key_window(&pk(2)), KeyWindow::revoked_from(at4));
    assert_eq!(
        set.key_window(&pk(3)),
        KeyWindow::expiring_at(Height::new(20))
    );
    assert_eq!(set.valid_power_at(at4), 3);

    // A later membership change keeps both windows.
    passes(
        &mut main,
        Action::RemoveValidator {
            chain: side_id.clone(),
            key: pk(1),
        },
        Height::new(30),
    );
    let later = &validator_schedule(&main.view(), &side_id).unwrap()[&Height::new(30)];
    assert_eq!(later.len(), 3);
    assert_eq!(later.key_window(&pk(2)), KeyWindow::revoked_from(at4));
    assert_eq!(
        later.key_window(&pk(3)),
        KeyWindow::expiring_at(Height::new(20))
    );

    // The side chain runs with the recorded set from height 4, signed by
    // the keys inside their windows (1, 3 and 4).
    let mut side = Side::new("side-bft", &[1, 2, 3], 3);
    side.chain
        .change_validator_set(vec![sk(1), sk(2), sk(3), sk(4)], set);
    for h in 4..=6u64 {
        side.chain
            .produce_block(vec![], Timestamp::new(T0.get() + h))
            .unwrap();
    }
    // Height 5 with the compromised key's signature counted is refused...
    let op = side.anchor_signed_by(5, &[1, 2, 4]);
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    // ...and the honest certificate, without it, is accepted.
    let honest = side.anchor_op(5);
    if let GovernanceOp::Anchor { certificate, .. } = &honest {
        assert!(certificate.signatures.iter().all(|s| s.validator != pk(2)));
    }
    assert_eq!(main.run(1, honest).code, CODE_OK);
}

fn rotation(side: &ChainId, from: u8, to: u8, overlap: u64) -> Action {
    Action::RotateValidatorKey {
        chain: side.clone(),
        key: pk(from),
        new_key: pk(to),
        overlap,
        possession: prove_rotation_possession(side, &pk(from), &sk(to)),
    }
}

#[test]
fn invalid_rotations_are_refused() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let side_id = chain("side-bft");
    let propose = |main: &mut Main, action: Action| {
        main.run(
            1,
            GovernanceOp::Propose {
                action,
                effective_height: Height::new(4),
            },
        )
        .code
    };
    // A proof of possession by another key, or for another chain.
    let mut forged = rotation(&side_id, 2, 22, 3);
    if let Action::RotateValidatorKey { possession, .. } = &mut forged {
        *possession = prove_rotation_possession(&side_id, &pk(2), &sk(23));
    }
    assert_eq!(propose(&mut main, forged), CODE_INVALID_ACTION);
    let mut replayed = rotation(&side_id, 2, 22, 3);
    if let Action::RotateValidatorKey { possession, .. } = &mut replayed {
        *possession = prove_rotation_possession(&chain("main"), &pk(2), &sk(22));
    }
    assert_eq!(propose(&mut main, replayed), CODE_INVALID_ACTION);
    // No overlap, a non-member, a Raft chain, a key already in the set.
    assert_eq!(
        propose(&mut main, rotation(&side_id, 2, 22, 0)),
        CODE_INVALID_ACTION
    );
    assert_eq!(
        propose(&mut main, rotation(&side_id, 4, 22, 3)),
        CODE_INVALID_ACTION
    );
    assert_eq!(
        propose(&mut main, rotation(&chain("side-raft"), 2, 22, 3)),
        CODE_INVALID_ACTION
    );
    assert_eq!(
        propose(&mut main, rotation(&side_id, 2, 3, 3)),
        CODE_INVALID_ACTION
    );
    // Another department's node key is caught when the proposal passes.
    let (_, st) = pass(&mut main, rotation(&side_id, 2, 4, 3), Height::new(4));
    assert!(
        matches!(st, ProposalStatus::Failed { code } if code == CODE_INVALID_ACTION),
        "{st:?}"
    );
    // Encoding round-trips.
    let action = rotation(&side_id, 2, 22, 3);
    let op = GovernanceOp::Propose {
        action,
        effective_height: Height::new(4),
    };
    assert_eq!(GovernanceOp::decode(&op.to_bytes()).unwrap(), op);
}

#[test]
fn a_rotated_key_signs_through_its_overlap_and_binds_anchors() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let side_id = chain("side-bft");
    let at4 = Height::new(4);
    let (_, st) = pass(&mut main, rotation(&side_id, 2, 22, 3), at4);
    assert_eq!(st, ProposalStatus::Passed);
    let set = validator_schedule(&main.view(), &side_id).unwrap()[&at4].clone();
    assert!(set.find(&pk(22)).is_some());
    assert!(set.find(&pk(2)).is_none());
    assert_eq!(
        set.key_window(&pk(2)),
        KeyWindow::expiring_at(Height::new(7))
    );
    // The new key belongs to department 2; its main-chain node key stays.
    let view = main.view();
    assert_eq!(
        department_of_key(&view, &pk(22)).unwrap().unwrap().id,
        dept(2)
    );
    assert_eq!(
        department(&view, &dept(2)).unwrap().unwrap().node_key,
        pk(2)
    );

    // A membership change inside the overlap keeps the rotated-out key.
    let (_, st) = pass(
        &mut main,
        Action::AddValidator {
            chain: side_id.clone(),
            key: pk(4),
            power: 1,
            department: dept(4),
        },
        Height::new(5),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let at5 = &validator_schedule(&main.view(), &side_id).unwrap()[&Height::new(5)];
    assert_eq!(at5.len(), 4);
    assert_eq!(
        at5.key_window(&pk(2)),
        KeyWindow::expiring_at(Height::new(7))
    );
    // A rotated-out key is no member to remove, but its compromise can be
    // reported (and keeps the end of its overlap).
    let remove = GovernanceOp::Propose {
        action: Action::RemoveValidator {
            chain: side_id.clone(),
            key: pk(2),
        },
        effective_height: Height::new(6),
    };
    assert_eq!(main.run(1, remove).code, CODE_INVALID_ACTION);
    let (_, st) = pass(
        &mut main,
        Action::ReportKeyCompromise {
            chain: side_id.clone(),
            key: pk(2),
            from: Height::new(6),
        },
        Height::new(6),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let at6 = &validator_schedule(&main.view(), &side_id).unwrap()[&Height::new(6)];
    assert_eq!(
        at6.key_window(&pk(2)),
        KeyWindow {
            expires_at: Some(Height::new(7)),
            revoked_from: Some(Height::new(6)),
        }
    );

    // The side chain runs the rotated set from height 4; department 2's
    // node still signs with its old key.
    let mut side = Side::new("side-bft", &[1, 2, 3], 3);
    side.chain
        .change_validator_set(vec![sk(1), sk(2), sk(3)], set);
    for h in 4..=8u64 {
        if h == 7 {
            side.chain.set_signers(vec![sk(1), sk(22), sk(3)]);
        }
        side.chain
            .produce_block(vec![], Timestamp::new(T0.get() + h))
            .unwrap();
    }
    let anchor = side.anchor_op(5);
    if let GovernanceOp::Anchor { certificate, .. } = &anchor {
        assert!(certificate.signatures.iter().any(|s| s.validator == pk(2)));
    }
    assert_eq!(main.run(1, anchor).code, CODE_OK);
    // After the overlap, a certificate counting the old key is refused.
    let op = side.anchor_signed_by(7, &[1, 2, 3]);
    assert_eq!(main.run(1, op).code, CODE_ANCHOR_BAD_CERTIFICATE);
    assert_eq!(main.run(1, side.anchor_op(7)).code, CODE_OK);
}

#[test]
fn a_main_chain_rotation_moves_the_department_node_key() {
    let mut main = Main::new(&[1, 1, 1, 1]);
    let main_id = chain("main");
    let effective = Height::new(main.height().get() + 10);
    let (_, st) = pass(&mut main, rotation(&main_id, 3, 33, 5), effective);
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    assert_eq!(
        department(&view, &dept(3)).unwrap().unwrap().node_key,
        pk(33)
    );
    let set = validator_schedule(&view, &main_id).unwrap()[&effective].clone();
    let (_, member) = set.may_sign(&pk(3), effective).unwrap();
    assert_eq!(member.public_key, pk(33));
    assert!(set
        .may_sign(&pk(3), Height::new(effective.get() + 5))
        .is_err());

    // Nodes admit the old key while it still signs, then only the new one.
    let admitted = admitted_keys(&view, &main_id, main.height()).unwrap();
    assert!(admitted.contains(&pk(3)) && admitted.contains(&pk(33)));
    let later = admitted_keys(&view, &main_id, Height::new(effective.get() + 5)).unwrap();
    assert!(!later.contains(&pk(3)) && later.contains(&pk(33)));

    // Department 3 may vote with either key, and counts once.
    let at = Height::new(main.height().get() + 40);
    let r = main.run(1, set_param(at));
    let GovernanceEvent::Proposed { id, .. } = event(&r) else {
        panic!("not a proposal")
    };
    assert_eq!(
        status(&main.run(3, vote(id.get(), true))),
        ProposalStatus::Open
    );
    assert_eq!(
        status(&main.run(33, vote(id.get(), true))),
        ProposalStatus::Open
    );
    assert_eq!(
        status(&main.run(2, vote(id.get(), true))),
        ProposalStatus::Passed
    );
}

/// The reason of a failed receipt.
fn reason(r: &Receipt) -> String {
    String::from_utf8_lossy(&r.data).into_owned()
}

/// Every action that admits a key, with a key of the other suite than the
/// network's, is refused when proposed, naming the network's suite; the
/// same action with a key of the network's suite is admitted.
fn keys_of_the_other_suite_are_refused(suite: CryptoSuite) {
    let other = match suite {
        CryptoSuite::Ed25519Blake3 => CryptoSuite::Sm2Sm3,
        _ => CryptoSuite::Ed25519Blake3,
    };
    let mut main = Main::new_in(suite, &[1, 1, 1, 1]);
    assert_eq!(main.chain.app().suite(), suite);
    let side = chain("side-bft");
    let register = |s: CryptoSuite| Action::RegisterDepartment {
        department: Department {
            id: dept(9),
            name: "Department 9".into(),
            node_key: pk_in(s, 9),
        },
    };
    let add = |s: CryptoSuite| Action::AddValidator {
        chain: side.clone(),
        key: pk_in(s, 4),
        power: 1,
        department: dept(4),
    };
    let new_chain = |s: CryptoSuite| Action::RegisterSideChain {
        chain: chain("side-new"),
        engine: EngineKind::Bft,
        validators: equal_set_in(s, &[1, 2, 3]),
        anchor_interval: 2,
    };
    let rotate = |s: CryptoSuite| Action::RotateValidatorKey {
        chain: side.clone(),
        key: pk_in(suite, 2),
        new_key: pk_in(s, 22),
        overlap: 3,
        possession: prove_rotation_possession(&side, &pk_in(suite, 2), &sk_in(s, 22)),
    };
    let propose = |action| GovernanceOp::Propose {
        action,
        effective_height: Height::new(100),
    };
    // A side chain of the other suite is a valid proposal: its suite is its
    // set's, and whether its members are departments' keys of that suite
    // is checked when it passes (see `a_side_chain_of_another_suite_*`).
    let refused: [&dyn Fn(CryptoSuite) -> Action; 3] = [&register, &add, &rotate];
    for action in refused {
        let r = main.run(1, propose(action(other)));
        assert_eq!(
            r.code,
            CODE_INVALID_ACTION,
            "{:?}: {}",
            action(other),
            reason(&r)
        );
        assert!(
            reason(&r).contains(suite.name()) && reason(&r).contains(other.name()),
            "the reason names both suites: {}",
            reason(&r)
        );
    }
    assert_eq!(proposal(&main.view(), ProposalId::new(1)).unwrap(), None);
    // The same actions with keys of the network's suite are admitted.
    let actions: [&dyn Fn(CryptoSuite) -> Action; 4] = [&register, &add, &new_chain, &rotate];
    for action in actions {
        let r = main.run(1, propose(action(suite)));
        assert_eq!(status(&r), ProposalStatus::Open, "{:?}", action(suite));
    }
}

#[test]
fn an_ed25519_network_refuses_sm2_keys_in_governance() {
    keys_of_the_other_suite_are_refused(CryptoSuite::Ed25519Blake3);
}

#[test]
fn an_sm2_network_refuses_ed25519_keys_in_governance() {
    keys_of_the_other_suite_are_refused(CryptoSuite::Sm2Sm3);
}

#[test]
fn an_sm2_network_registers_an_sm2_department_and_validator() {
    let sm = CryptoSuite::Sm2Sm3;
    let mut main = Main::new_in(sm, &[1, 1, 1]);
    assert_eq!(
        main.chain.block(main.height()).unwrap().block.header.suite,
        sm
    );
    let department = Department {
        id: dept(9),
        name: "Department 9".into(),
        node_key: pk_in(sm, 9),
    };
    let effective = Height::new(main.height().get() + 10);
    let (_, st) = pass(
        &mut main,
        Action::RegisterDepartment {
            department: department.clone(),
        },
        effective,
    );
    assert_eq!(st, ProposalStatus::Passed);
    let (_, st) = pass(
        &mut main,
        Action::AddValidator {
            chain: chain("side-bft"),
            key: pk_in(sm, 9),
            power: 1,
            department: dept(9),
        },
        Height::new(5),
    );
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    assert_eq!(
        department_of_key(&view, &pk_in(sm, 9)).unwrap(),
        Some(department)
    );
    let set = validator_set_at(&view, &chain("side-bft"), Height::new(5))
        .unwrap()
        .unwrap();
    assert!(set.find(&pk_in(sm, 9)).is_some());
    assert_eq!(set.suite(), sm);
}

#[test]
fn a_genesis_with_keys_of_another_suite_is_refused() {
    let sm = CryptoSuite::Sm2Sm3;
    assert_eq!(genesis(&[1, 1]).suite(), Ok(CryptoSuite::Ed25519Blake3));
    assert_eq!(genesis_in(sm, &[1, 1]).suite(), Ok(sm));
    genesis_in(sm, &[1, 1, 1, 0]).validate().unwrap();
    // A department without power (so outside the main set) of the other
    // algorithm.
    let mut g = genesis(&[1, 1, 1, 0]);
    g.departments[3].node_key = pk_in(sm, 4);
    assert_eq!(
        g.validate(),
        Err(GenesisError::DepartmentKeySuite {
            id: dept(4),
            key: pk_in(sm, 4),
            suite: CryptoSuite::Ed25519Blake3,
        })
    );
    assert!(GovernanceApp::new(g).is_err());
    // Validating departments of both algorithms: the main set is mixed.
    let mut g = genesis(&[1, 1, 1, 1]);
    g.departments[3].node_key = pk_in(sm, 4);
    assert!(
        matches!(g.validate(), Err(GenesisError::MainValidators { .. })),
        "{:?}",
        g.validate()
    );
    // A side chain of the other suite, even over registered departments.
    let mut g = genesis(&[1, 1, 1, 0]);
    g.departments.extend((5..=7).map(|i| GenesisDepartment {
        id: dept(i),
        name: format!("Department {i}"),
        node_key: pk_in(sm, i),
        power: 0,
        suite_keys: Vec::new(),
    }));
    g.side_chains[0].validators = equal_set_in(sm, &[5, 6, 7]);
    let err = g.validate().unwrap_err();
    assert!(
        matches!(err, GenesisError::DepartmentKeySuite { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ed25519-blake3"), "{err}");
    // A side chain of the other suite whose members are no department's
    // registered keys of that suite.
    let mut g = genesis(&[1, 1, 1, 0]);
    g.side_chains[1].validators = equal_set_in(sm, &[1, 2, 3]);
    assert!(
        matches!(
            g.validate(),
            Err(GenesisError::NotADepartmentKey { ref chain, suite, .. })
                if *chain == self::chain("side-raft") && suite == sm
        ),
        "{:?}",
        g.validate()
    );
}

// ---------------------------------------------------------------------------
// Chains of another suite: departments' keys of a second suite
// ---------------------------------------------------------------------------

const SM: CryptoSuite = CryptoSuite::Sm2Sm3;

/// Department `i`'s SM2 key (seed `100 + i`).
fn sm_sk(i: u8) -> SecretKey {
    sk_in(SM, 100 + i)
}

fn sm_pk(i: u8) -> PublicKey {
    sm_sk(i).public_key()
}

fn sm_set(members: &[u8]) -> ValidatorSet {
    ValidatorSet::with_equal_power(members.iter().map(|&i| sm_pk(i))).unwrap()
}

/// An Ed25519/BLAKE3 network of departments 1..=4 (power 1 each) where
/// departments 1, 2 and 3 hold SM2 keys (`sm_pk`), with the BFT side chain
/// `side-bft` (Ed25519, departments 1..=3), the BFT side chain `side-sm`
/// and the Raft side chain `side-sm-raft` (both SM2/SM3, departments
/// 1..=3's SM2 keys).
fn mixed_genesis() -> GovernanceGenesis {
    let mut g = genesis(&[1, 1, 1, 1]);
    for d in &mut g.departments[..3] {
        let i = d.id.as_str().trim_start_matches("dept-").parse().unwrap();
        d.suite_keys = vec![sm_pk(i)];
    }
    g.side_chains = vec![
        g.side_chains[0].clone(),
        SideChainSpec {
            chain_id: chain("side-sm"),
            engine: EngineKind::Bft,
            validators: sm_set(&[1, 2, 3]),
            anchor_interval: 2,
        },
        SideChainSpec {
            chain_id: chain("side-sm-raft"),
            engine: EngineKind::Raft,
            validators: sm_set(&[1, 2, 3]),
            anchor_interval: 2,
        },
    ];
    g
}

fn register_key(department: u8, key: &SecretKey) -> Action {
    Action::RegisterDepartmentKey {
        department: dept(department),
        key: key.public_key(),
        possession: prove_department_key_possession(&chain("main"), &dept(department), key),
    }
}

#[test]
fn a_mixed_genesis_records_suite_keys_and_chain_suites() {
    let main = Main::with_genesis(mixed_genesis());
    let view = main.view();
    assert_eq!(main.chain.app().suite(), CryptoSuite::Ed25519Blake3);
    for i in 1..=3 {
        assert_eq!(
            department_suite_key(&view, &dept(i), SM).unwrap(),
            Some(sm_pk(i))
        );
        let d = department_of_key(&view, &sm_pk(i)).unwrap().unwrap();
        assert_eq!(d.id, dept(i));
        assert_eq!(d.node_key, pk(i), "the node key stays the Ed25519 key");
        assert_eq!(department_keys(&view, &d).unwrap(), vec![pk(i), sm_pk(i)]);
        assert_eq!(
            department_key_of_suite(&view, &d, SM).unwrap(),
            Some(sm_pk(i))
        );
        assert_eq!(
            department_key_of_suite(&view, &d, CryptoSuite::Ed25519Blake3).unwrap(),
            Some(pk(i))
        );
    }
    assert_eq!(department_suite_key(&view, &dept(4), SM).unwrap(), None);
    assert_eq!(
        chain_suite(&view, &chain("main")).unwrap(),
        Some(CryptoSuite::Ed25519Blake3)
    );
    assert_eq!(
        chain_suite(&view, &chain("side-bft")).unwrap(),
        Some(CryptoSuite::Ed25519Blake3)
    );
    assert_eq!(chain_suite(&view, &chain("side-sm")).unwrap(), Some(SM));
    assert_eq!(
        chain_suite(&view, &chain("side-sm-raft")).unwrap(),
        Some(SM)
    );
    assert_eq!(chain_suite(&view, &chain("nope")).unwrap(), None);
    // Transport admission is by node key only.
    let admitted = admitted_keys(&view, &chain("main"), main.height()).unwrap();
    assert!(admitted.contains(&pk(1)) && !admitted.contains(&sm_pk(1)));
}

#[test]
fn a_genesis_with_bad_suite_keys_is_refused() {
    mixed_genesis().validate().unwrap();
    // A suite key of the network's suite.
    let mut g = mixed_genesis();
    g.departments[3].suite_keys = vec![pk(44)];
    assert_eq!(
        g.validate(),
        Err(GenesisError::SuiteKeyOfNetworkSuite {
            id: dept(4),
            key: pk(44),
            suite: CryptoSuite::Ed25519Blake3,
        })
    );
    // Two keys of one suite.
    let mut g = mixed_genesis();
    g.departments[0].suite_keys.push(sm_pk(9));
    assert_eq!(
        g.validate(),
        Err(GenesisError::DuplicateSuiteKey {
            id: dept(1),
            suite: SM,
        })
    );
    // Another department's suite key.
    let mut g = mixed_genesis();
    g.departments[3].suite_keys = vec![sm_pk(1)];
    assert_eq!(
        g.validate(),
        Err(GenesisError::DuplicateNodeKey { key: sm_pk(1) })
    );
    // An SM2 side-chain member that no department registered.
    let mut g = mixed_genesis();
    g.side_chains[1].validators = sm_set(&[1, 2, 9]);
    assert_eq!(
        g.validate(),
        Err(GenesisError::NotADepartmentKey {
            chain: chain("side-sm"),
            key: sm_pk(9),
            suite: SM,
        })
    );
    // An Ed25519 side chain naming an SM2 key's department by its node key
    // is fine; naming an Ed25519 key no department holds is not.
    let mut g = mixed_genesis();
    g.side_chains[0].validators = equal_set(&[1, 2, 9]);
    assert!(matches!(
        g.validate(),
        Err(GenesisError::NotADepartmentKey {
            suite: CryptoSuite::Ed25519Blake3,
            ..
        })
    ));
}

#[test]
fn register_department_key_refusals() {
    let mut main = Main::with_genesis(mixed_genesis());
    let effective = Height::new(main.height().get() + 100);
    let propose = |action| GovernanceOp::Propose {
        action,
        effective_height: effective,
    };
    let refused = |main: &mut Main, action: Action, expect: &str| {
        let r = main.run(1, propose(action.clone()));
        assert_eq!(r.code, CODE_INVALID_ACTION, "{action:?}: {}", reason(&r));
        assert!(
            reason(&r).contains(expect),
            "{action:?}: {:?} does not say {expect:?}",
            reason(&r)
        );
    };
    // Unknown department.
    refused(
        &mut main,
        register_key(9, &sm_sk(9)),
        "department dept-9 is not registered",
    );
    // A key of the network's suite (wrong suite).
    refused(
        &mut main,
        register_key(4, &sk(44)),
        "network's crypto suite ed25519-blake3",
    );
    // A proof made for another department, by another key, or for another
    // network.
    let mut stolen = register_key(4, &sm_sk(4));
    if let Action::RegisterDepartmentKey { possession, .. } = &mut stolen {
        *possession = prove_department_key_possession(&chain("main"), &dept(3), &sm_sk(4));
    }
    refused(&mut main, stolen, "proof of possession");
    let mut forged = register_key(4, &sm_sk(4));
    if let Action::RegisterDepartmentKey { possession, .. } = &mut forged {
        *possession = prove_department_key_possession(&chain("main"), &dept(4), &sm_sk(5));
    }
    refused(&mut main, forged, "proof of possession");
    let mut replayed = register_key(4, &sm_sk(4));
    if let Action::RegisterDepartmentKey { possession, .. } = &mut replayed {
        *possession = prove_department_key_possession(&chain("other"), &dept(4), &sm_sk(4));
    }
    refused(&mut main, replayed, "proof of possession");
    // A key another department registered (duplicate).
    refused(
        &mut main,
        register_key(4, &sm_sk(1)),
        "already a key of department dept-1",
    );
    // A second key of a suite the department holds.
    refused(
        &mut main,
        register_key(1, &sm_sk(11)),
        "already has a key of crypto suite sm2-sm3",
    );
    assert_eq!(
        proposal(&main.view(), ProposalId::new(1)).unwrap(),
        None,
        "no refused action became a proposal"
    );
    // The well-formed registration opens.
    assert_eq!(
        status(&main.run(1, propose(register_key(4, &sm_sk(4))))),
        ProposalStatus::Open
    );
}

#[test]
fn register_department_key_is_checked_again_when_passing() {
    let mut main = Main::with_genesis(mixed_genesis());
    let effective = Height::new(main.height().get() + 10);
    let propose = |action| GovernanceOp::Propose {
        action,
        effective_height: effective,
    };
    // Two keys of one suite for department 4, and department 4's key for
    // another department: all open, the first to pass wins.
    for action in [register_key(4, &sm_sk(4)), register_key(4, &sm_sk(14))] {
        assert_eq!(status(&main.run(1, propose(action))), ProposalStatus::Open);
    }
    for id in 1..=2 {
        let votes = vec![main.tx(2, &vote(id, true)), main.tx(3, &vote(id, true))];
        main.block(votes);
    }
    let view = main.view();
    assert_eq!(
        proposal(&view, ProposalId::new(1)).unwrap().unwrap().status,
        ProposalStatus::Passed
    );
    assert_eq!(
        proposal(&view, ProposalId::new(2)).unwrap().unwrap().status,
        ProposalStatus::Failed {
            code: CODE_INVALID_ACTION
        }
    );
    assert_eq!(
        department_suite_key(&view, &dept(4), SM).unwrap(),
        Some(sm_pk(4))
    );
    assert_eq!(
        department_of_key(&view, &sm_pk(4)).unwrap().map(|d| d.id),
        Some(dept(4))
    );
    assert_eq!(department_of_key(&view, &sm_pk(14)).unwrap(), None);
}

#[test]
fn a_registered_suite_key_joins_a_chain_of_its_suite() {
    let mut main = Main::with_genesis(mixed_genesis());
    let effective = Height::new(main.height().get() + 10);
    let add = |key: PublicKey, department: u8, chain_id: &str| Action::AddValidator {
        chain: chain(chain_id),
        key,
        power: 1,
        department: dept(department),
    };
    // Before its registration, department 4's SM2 key is no key of it:
    // the addition opens (the key may be registered meanwhile) and fails.
    let (_, st) = pass(&mut main, add(sm_pk(4), 4, "side-sm"), Height::new(5));
    assert_eq!(
        st,
        ProposalStatus::Failed {
            code: CODE_INVALID_ACTION
        }
    );
    // Wrong suite for the chain: refused when proposed, naming both.
    for (key, chain_id) in [(pk(4), "side-sm"), (sm_pk(1), "side-bft")] {
        let r = main.run(
            1,
            GovernanceOp::Propose {
                action: add(key.clone(), 4, chain_id),
                effective_height: Height::new(5),
            },
        );
        assert_eq!(r.code, CODE_INVALID_ACTION);
        assert!(
            reason(&r).contains("sm2-sm3") && reason(&r).contains("ed25519-blake3"),
            "{}",
            reason(&r)
        );
    }
    let (_, st) = pass(&mut main, register_key(4, &sm_sk(4)), effective);
    assert_eq!(st, ProposalStatus::Passed);
    // Another department's SM2 key under department 4's name fails.
    let (_, st) = pass(&mut main, add(sm_pk(1), 4, "side-sm"), Height::new(5));
    assert_eq!(
        st,
        ProposalStatus::Failed {
            code: CODE_INVALID_ACTION
        }
    );
    let (_, st) = pass(&mut main, add(sm_pk(4), 4, "side-sm"), Height::new(5));
    assert_eq!(st, ProposalStatus::Passed);
    let set = validator_set_at(&main.view(), &chain("side-sm"), Height::new(5))
        .unwrap()
        .unwrap();
    assert_eq!(set.suite(), SM);
    assert_eq!(set.validators().len(), 4);
    assert!(set.find(&sm_pk(4)).is_some());
    // Its Raft chain of the same suite takes it too.
    let (_, st) = pass(&mut main, add(sm_pk(4), 4, "side-sm-raft"), Height::new(5));
    assert_eq!(st, ProposalStatus::Passed);
}

#[test]
fn a_side_chain_of_another_suite_needs_registered_keys_of_that_suite() {
    let mut main = Main::with_genesis(mixed_genesis());
    let new_chain = |members: &[u8]| Action::RegisterSideChain {
        chain: chain("side-new"),
        engine: EngineKind::Bft,
        validators: sm_set(members),
        anchor_interval: 2,
    };
    // Department 4 holds no SM2 key: the registration fails when passing.
    let (_, st) = pass(&mut main, new_chain(&[1, 2, 4]), Height::new(1));
    assert_eq!(
        st,
        ProposalStatus::Failed {
            code: CODE_INVALID_ACTION
        }
    );
    assert_eq!(chain_info(&main.view(), &chain("side-new")).unwrap(), None);
    let (_, st) = pass(&mut main, new_chain(&[1, 2, 3]), Height::new(1));
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    assert!(chain_info(&view, &chain("side-new")).unwrap().is_some());
    assert_eq!(chain_suite(&view, &chain("side-new")).unwrap(), Some(SM));
}

#[test]
fn a_suite_key_rotates_on_a_chain_of_its_suite() {
    let mut main = Main::with_genesis(mixed_genesis());
    let side = chain("side-sm");
    let rotate = |new_key: &SecretKey| Action::RotateValidatorKey {
        chain: side.clone(),
        key: sm_pk(2),
        new_key: new_key.public_key(),
        overlap: 3,
        possession: prove_rotation_possession(&side, &sm_pk(2), new_key),
    };
    // An Ed25519 new key on an SM2 chain is refused when proposed.
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action: rotate(&sk(22)),
            effective_height: Height::new(5),
        },
    );
    assert_eq!(r.code, CODE_INVALID_ACTION, "{}", reason(&r));
    assert!(
        reason(&r).contains("chain side-sm's suite sm2-sm3"),
        "{}",
        reason(&r)
    );
    let (_, st) = pass(&mut main, rotate(&sm_sk(22)), Height::new(5));
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    // The new key is department 2's SM2 key; its node key is unchanged.
    assert_eq!(
        department_suite_key(&view, &dept(2), SM).unwrap(),
        Some(sm_pk(22))
    );
    let d = department_of_key(&view, &sm_pk(22)).unwrap().unwrap();
    assert_eq!((d.id, d.node_key), (dept(2), pk(2)));
    let set = validator_set_at(&view, &side, Height::new(5))
        .unwrap()
        .unwrap();
    assert!(set.find(&sm_pk(22)).is_some() && set.find(&sm_pk(2)).is_none());
    // Raft chains are refused as before.
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action: Action::RotateValidatorKey {
                chain: chain("side-sm-raft"),
                key: sm_pk(1),
                new_key: sm_pk(21),
                overlap: 3,
                possession: prove_rotation_possession(
                    &chain("side-sm-raft"),
                    &sm_pk(1),
                    &sm_sk(21),
                ),
            },
            effective_height: Height::new(5),
        },
    );
    assert_eq!(r.code, CODE_INVALID_ACTION, "{}", reason(&r));
}

#[test]
fn removing_a_department_removes_its_suite_keys() {
    let mut g = mixed_genesis();
    // Departments 4 and 5 have no main-chain power and hold SM2 keys;
    // department 4's validates side-sm, department 5's nothing.
    g.departments[3].power = 0;
    g.departments[3].suite_keys = vec![sm_pk(4)];
    g.departments.push(GenesisDepartment {
        id: dept(5),
        name: "Department 5".into(),
        node_key: pk(5),
        power: 0,
        suite_keys: vec![sm_pk(5)],
    });
    g.side_chains[1].validators = sm_set(&[1, 2, 3, 4]);
    let mut main = Main::with_genesis(g);
    let effective = Height::new(main.height().get() + 10);
    let remove = |i: u8| Action::RemoveDepartment {
        department: dept(i),
    };
    // Department 4's SM2 key validates side-sm: refused.
    let r = main.run(
        1,
        GovernanceOp::Propose {
            action: remove(4),
            effective_height: effective,
        },
    );
    assert_eq!(r.code, CODE_INVALID_ACTION);
    assert!(reason(&r).contains("side-sm"), "{}", reason(&r));
    let (_, st) = pass(&mut main, remove(5), effective);
    assert_eq!(st, ProposalStatus::Passed);
    let view = main.view();
    assert_eq!(department_of_key(&view, &sm_pk(5)).unwrap(), None);
    assert_eq!(department_suite_key(&view, &dept(5), SM).unwrap(), None);
    assert_eq!(department_of_key(&view, &pk(5)).unwrap(), None);
    assert!(department_of_key(&view, &sm_pk(4)).unwrap().is_some());
}

#[test]
fn register_department_key_round_trips() {
    let action = register_key(4, &sm_sk(4));
    let op = GovernanceOp::Propose {
        action: action.clone(),
        effective_height: Height::new(7),
    };
    assert_eq!(GovernanceOp::decode(&op.to_payload()).unwrap(), op);
    assert_eq!(action.governed_chain(&chain("main")), &chain("main"));
}
