//! The Raft engine outside the simulator: membership change by joint
//! consensus, restart from every prefix of the records, refusal of bad
//! input with typed errors, and what a Raft certificate does and does not
//! prove.

#![allow(clippy::unwrap_used)] // test helpers

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use govchain_consensus::raft::wire::{
    ProtocolMessage, RaftBody, RaftEntry, RaftMessage, RaftMessageKind,
};
use govchain_consensus::raft::{verify_raft_certificate, Raft, RaftConfig, RaftVoters};
use govchain_consensus::{
    Consensus, ConsensusError, DecidedBlock, Effects, ProposeRequest, RaftCertificateError,
    Recipient, SignedVote,
};
use govchain_core::block::Block;
use govchain_core::cert::{certify, CertificateError, VoteKind, VoteMessage};
use govchain_core::codec::Encode;
use govchain_core::crypto::{SecretKey, Signer};
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height, Round, Timestamp};
use govchain_core::validator::ValidatorSet;

fn chain() -> ChainId {
    ChainId::new("side-raft").unwrap()
}

fn keys(n: usize) -> Vec<Arc<SecretKey>> {
    (0..n)
        .map(|i| Arc::new(SecretKey::from_seed(&[i as u8 + 1; 32])))
        .collect()
}

/// A tiny in-order network of Raft nodes driven by 10 ms ticks.
struct Net {
    cfg: RaftConfig,
    keys: Vec<Arc<SecretKey>>,
    nodes: Vec<Option<Raft>>,
    disks: Vec<Vec<Vec<u8>>>,
    decided: Vec<Vec<DecidedBlock>>,
    queue: VecDeque<(usize, usize, Vec<u8>)>,
    cut: BTreeSet<usize>,
    requests: Vec<(usize, ProposeRequest)>,
    now: u64,
}

impl Net {
    fn new(cfg: RaftConfig, keys: Vec<Arc<SecretKey>>) -> Net {
        let n = keys.len();
        let mut net = Net {
            cfg,
            keys,
            nodes: (0..n).map(|_| None).collect(),
            disks: vec![Vec::new(); n],
            decided: vec![Vec::new(); n],
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            requests: Vec::new(),
            now: 0,
        };
        for i in 0..n {
            net.boot(i);
        }
        net
    }

    fn boot(&mut self, i: usize) {
        let (e, fx) = Raft::restore(
            self.cfg.clone(),
            self.keys[i].clone(),
            &self.disks[i],
            Timestamp::new(self.now),
        )
        .unwrap();
        self.nodes[i] = Some(e);
        self.apply(i, fx);
    }

    fn apply(&mut self, i: usize, mut fx: Effects) {
        self.disks[i].append(&mut fx.persist);
        for out in fx.send {
            for j in 0..self.nodes.len() {
                let to_j = match &out.to {
                    Recipient::All => j != i,
                    Recipient::One(k) => *k == self.keys[j].public_key(),
                };
                if to_j && !self.cut.contains(&i) && !self.cut.contains(&j) {
                    self.queue.push_back((i, j, out.bytes.clone()));
                }
            }
        }
        self.decided[i].extend(fx.decided);
        if let Some(req) = fx.propose_request {
            self.requests.retain(|(j, _)| *j != i);
            self.requests.push((i, req));
        }
    }

    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            let mut budget = 10_000;
            while let Some((from, to, bytes)) = self.queue.pop_front() {
                budget -= 1;
                if budget == 0 {
                    break;
                }
                let key = self.keys[from].public_key();
                let Some(e) = self.nodes[to].as_mut() else {
                    continue;
                };
                if let Ok(fx) = e.step(&key, &bytes) {
                    self.apply(to, fx);
                }
            }
            self.now += 10;
            // The host builds at most one block per node and tick (a block
            // interval), answering the engine's latest request.
            for (i, req) in std::mem::take(&mut self.requests) {
                let block = req.block(Timestamp::new(self.now), Vec::new());
                let Some(e) = self.nodes[i].as_mut() else {
                    continue;
                };
                if let Ok(fx) = e.propose(block) {
                    self.apply(i, fx);
                }
            }
            for i in 0..self.nodes.len() {
                let now = Timestamp::new(self.now);
                let Some(e) = self.nodes[i].as_mut() else {
                    continue;
                };
                let fx = e.tick(now);
                self.apply(i, fx);
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| {
            !self.cut.contains(i) && self.nodes[*i].as_ref().is_some_and(|e| e.is_leader())
        })
    }

    fn node(&mut self, i: usize) -> &mut Raft {
        self.nodes[i].as_mut().unwrap()
    }
}

fn small_cfg(keys: &[Arc<SecretKey>], voters: usize) -> RaftConfig {
    let mut cfg = RaftConfig::new(
        chain(),
        keys[..voters].iter().map(|k| k.public_key()).collect(),
    );
    for k in &keys[voters..] {
        cfg.add_peer(k.public_key());
    }
    cfg.tick_ms = 10;
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.rebroadcast_ms = 100;
    cfg
}

fn assert_same_prefix(net: &Net) {
    let longest = net.decided.iter().max_by_key(|d| d.len()).unwrap();
    for d in &net.decided {
        for (a, b) in d.iter().zip(longest) {
            assert_eq!(a.block.hash(), b.block.hash(), "agreement");
        }
    }
}

#[test]
fn membership_change_adds_a_voter_by_joint_consensus() {
    let keys = keys(4);
    let mut net = Net::new(small_cfg(&keys, 3), keys.clone());
    net.run(1_000);
    let leader = net.leader().expect("a leader after 1 s");
    let before = net.decided[leader].len();
    assert!(before >= 3, "blocks decided before the change: {before}");
    assert!(
        net.decided[3].is_empty(),
        "a non-member gets no log replication"
    );

    let fx = net
        .node(leader)
        .propose_membership_change(&[keys[3].public_key()], &[])
        .unwrap();
    net.apply(leader, fx);
    // A second change while the first is in flight is refused.
    let again = net
        .node(leader)
        .propose_membership_change(&[keys[3].public_key()], &[]);
    assert!(
        matches!(again, Err(ConsensusError::MembershipChangeRefused { .. })),
        "{again:?}"
    );
    // Followers cannot propose changes.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let refused = net
        .node(follower)
        .propose_membership_change(&[keys[3].public_key()], &[]);
    assert!(
        matches!(refused, Err(ConsensusError::NotLeader { .. })),
        "{refused:?}"
    );

    net.run(1_000);
    let leader = net.leader().unwrap();
    let voters = net.node(leader).voters();
    assert_eq!(voters.incoming.len(), 4, "{voters:?}");
    assert!(voters.incoming.contains(&keys[3].public_key()));
    assert!(
        voters.outgoing.is_empty(),
        "the joint configuration was left"
    );
    // The new member replayed the whole log and decided every block.
    assert!(net.decided[3].len() > before, "{}", net.decided[3].len());
    assert_same_prefix(&net);

    // Cut one old follower: 3 of the 4 voters remain, so blocks are still
    // certified, and only with the new member's signature.
    let old_follower = (0..3).find(|i| *i != leader).unwrap();
    net.cut.insert(old_follower);
    let mark = net.decided[leader].len();
    net.run(1_000);
    let leader = net.leader().unwrap();
    let after: Vec<DecidedBlock> = net.decided[leader][mark..].to_vec();
    assert!(after.len() >= 3, "progress with a new-member majority");
    let all4 = RaftVoters {
        incoming: keys.iter().map(|k| k.public_key()).collect(),
        outgoing: Vec::new(),
    };
    for d in &after {
        verify_raft_certificate(&d.certificate, &chain(), &d.block, &all4).unwrap();
        assert!(d
            .certificate
            .signatures
            .iter()
            .any(|s| s.validator == keys[3].public_key()));
    }
    assert_same_prefix(&net);
}

#[test]
fn restart_from_every_prefix_of_the_records() {
    let keys = keys(3);
    let mut net = Net::new(small_cfg(&keys, 3), keys.clone());
    net.run(600);
    let i = net.leader().unwrap();
    let disk = net.disks[i].clone();
    let decided = net.decided[i].clone();
    assert!(decided.len() >= 3);
    for cut in 0..=disk.len() {
        let (e, _) = Raft::restore(
            net.cfg.clone(),
            keys[i].clone(),
            &disk[..cut],
            Timestamp::new(0),
        )
        .unwrap_or_else(|err| panic!("prefix {cut}: {err}"));
        // Whatever was decided in the prefix is decided again, unchanged.
        for h in 1..e.height().get() {
            let d = e.decided_block(Height::new(h)).unwrap();
            assert_eq!(d, &decided[h as usize - 1]);
        }
    }
    // A full restart keeps the node in the cluster.
    net.nodes[i] = None;
    net.boot(i);
    net.run(600);
    assert!(net.decided[i].len() > decided.len());
    assert_same_prefix(&net);
}

fn engine(keys: &[Arc<SecretKey>]) -> Raft {
    Raft::restore(small_cfg(keys, 3), keys[0].clone(), &[], Timestamp::new(0))
        .unwrap()
        .0
}

fn protocol(kind: RaftMessageKind, from: u64, to: u64) -> ProtocolMessage {
    ProtocolMessage {
        kind,
        to,
        from,
        term: 1,
        log_term: 0,
        index: 0,
        entries: Vec::new(),
        commit: 0,
        commit_term: 0,
        reject: false,
        reject_hint: 0,
        context: Vec::new(),
        priority: 0,
    }
}

fn wire(body: RaftBody) -> Vec<u8> {
    RaftMessage {
        chain_id: chain(),
        body,
    }
    .to_bytes()
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let k = keys(4);
    let mut e = engine(&k);
    let peer = k[1].public_key();

    let err = e.step(&peer, &[0xff; 16]).unwrap_err();
    assert!(matches!(err, ConsensusError::Malformed { .. }), "{err}");

    let err = e.step(&peer, &vec![0; 9 * 1024 * 1024]).unwrap_err();
    assert!(
        matches!(err, ConsensusError::MessageTooLarge { .. }),
        "{err}"
    );

    let other = RaftMessage {
        chain_id: ChainId::new("elsewhere").unwrap(),
        body: RaftBody::SyncRequest {
            from: Height::new(1),
        },
    };
    let err = e.step(&peer, &other.to_bytes()).unwrap_err();
    assert!(matches!(err, ConsensusError::WrongChain { .. }), "{err}");

    // The `from` field must be the authenticated sender.
    let spoofed = wire(RaftBody::Protocol(protocol(
        RaftMessageKind::RequestVote,
        3,
        1,
    )));
    let err = e.step(&peer, &spoofed).unwrap_err();
    assert!(
        matches!(err, ConsensusError::UnexpectedMessage { .. }),
        "{err}"
    );

    // Addressed to someone else.
    let misrouted = wire(RaftBody::Protocol(protocol(
        RaftMessageKind::RequestVote,
        2,
        3,
    )));
    let err = e.step(&peer, &misrouted).unwrap_err();
    assert!(
        matches!(err, ConsensusError::UnexpectedMessage { .. }),
        "{err}"
    );

    // A stranger.
    let stranger = SecretKey::from_seed(&[99; 32]).public_key();
    let msg = wire(RaftBody::Protocol(protocol(
        RaftMessageKind::Heartbeat,
        2,
        1,
    )));
    let err = e.step(&stranger, &msg).unwrap_err();
    assert!(matches!(err, ConsensusError::UnknownPeer { .. }), "{err}");

    // raft-rs would panic on a heartbeat committing beyond our log.
    let mut hb = protocol(RaftMessageKind::Heartbeat, 2, 1);
    hb.commit = 50;
    let err = e.step(&peer, &wire(RaftBody::Protocol(hb))).unwrap_err();
    assert!(
        matches!(err, ConsensusError::UnexpectedMessage { .. }),
        "{err}"
    );

    // Appended entries must follow the previous index without gaps.
    let mut append = protocol(RaftMessageKind::Append, 2, 1);
    append.index = 0;
    append.entries = vec![RaftEntry {
        term: 1,
        index: 5,
        payload: govchain_consensus::raft::wire::EntryPayload::Noop,
    }];
    let err = e
        .step(&peer, &wire(RaftBody::Protocol(append)))
        .unwrap_err();
    assert!(
        matches!(err, ConsensusError::UnexpectedMessage { .. }),
        "{err}"
    );

    // A forged acknowledgement.
    let vote = VoteMessage {
        kind: VoteKind::Precommit,
        chain_id: chain(),
        height: Height::new(1),
        round: Round::new(1),
        block_hash: Some(Hash::ZERO),
    };
    let mut ack = SignedVote::sign(vote, k[1].as_ref());
    ack.validator = k[2].public_key();
    let err = e.step(&peer, &wire(RaftBody::Ack(ack))).unwrap_err();
    assert!(
        matches!(err, ConsensusError::InvalidSignature { .. }),
        "{err}"
    );

    // Followers are never asked for blocks.
    let block = request(&k[0]).block(Timestamp::new(1), Vec::new());
    let err = e.propose(block).unwrap_err();
    assert!(
        matches!(err, ConsensusError::NoProposalRequested { .. }),
        "{err}"
    );

    // The engine is still healthy.
    let _ = e.tick(Timestamp::new(10_000));
    assert!(e
        .step(
            &peer,
            &wire(RaftBody::SyncRequest {
                from: Height::new(1)
            })
        )
        .is_ok());
}

fn request(proposer: &SecretKey) -> ProposeRequest {
    ProposeRequest {
        chain_id: chain(),
        height: Height::new(1),
        round: Round::new(3),
        parent_hash: Hash::ZERO,
        parent_time: Timestamp::new(0),
        validator_set_hash: Hash::ZERO,
        next_validator_set_hash: Hash::ZERO,
        proposer: proposer.public_key(),
    }
}

#[test]
fn a_raft_certificate_is_a_majority_with_the_leader_and_no_more() {
    let k = keys(5);
    let block: Block = request(&k[0]).block(Timestamp::new(1), Vec::new());
    let hash = block.hash();
    let five = RaftVoters {
        incoming: k.iter().map(|k| k.public_key()).collect(),
        outgoing: Vec::new(),
    };
    let signers = |idx: &[usize]| -> Vec<&dyn Signer> {
        idx.iter().map(|i| k[*i].as_ref() as &dyn Signer).collect()
    };
    let cert = certify(
        &chain(),
        Height::new(1),
        Round::new(3),
        hash,
        &signers(&[0, 1, 2]),
    );

    // A leader plus a strict majority: a Raft commit.
    verify_raft_certificate(&cert, &chain(), &block, &five).unwrap();

    // It is not a BFT certificate: 3 of 5 is not more than two thirds.
    let set = ValidatorSet::with_equal_power(k.iter().map(|k| k.public_key())).unwrap();
    assert!(matches!(
        cert.verify(&chain(), Height::new(1), &hash, &set),
        Err(CertificateError::InsufficientPower { .. })
    ));

    // Without the leader it proves nothing.
    let no_leader = certify(
        &chain(),
        Height::new(1),
        Round::new(3),
        hash,
        &signers(&[1, 2, 3]),
    );
    assert!(matches!(
        verify_raft_certificate(&no_leader, &chain(), &block, &five),
        Err(RaftCertificateError::MissingLeaderSignature { .. })
    ));

    // Two of five is no majority.
    let two = certify(
        &chain(),
        Height::new(1),
        Round::new(3),
        hash,
        &signers(&[0, 1]),
    );
    assert!(matches!(
        verify_raft_certificate(&two, &chain(), &block, &five),
        Err(RaftCertificateError::NoMajority {
            config: "incoming",
            ..
        })
    ));

    // Joint consensus needs a majority of both configurations.
    let joint = RaftVoters {
        incoming: five.incoming[..3].to_vec(),
        outgoing: five.incoming[2..].to_vec(),
    };
    assert!(matches!(
        verify_raft_certificate(&cert, &chain(), &block, &joint),
        Err(RaftCertificateError::NoMajority {
            config: "outgoing",
            ..
        })
    ));
    let both = certify(
        &chain(),
        Height::new(1),
        Round::new(3),
        hash,
        &signers(&[0, 1, 2, 3]),
    );
    verify_raft_certificate(&both, &chain(), &block, &joint).unwrap();

    // A tampered signature fails.
    let mut bad = cert.clone();
    bad.signatures[1].signature = bad.signatures[0].signature;
    assert!(matches!(
        verify_raft_certificate(&bad, &chain(), &block, &five),
        Err(RaftCertificateError::Certificate {
            source: CertificateError::InvalidSignatures { .. }
        })
    ));

    // Another block, another chain.
    let other = request(&k[0]).block(Timestamp::new(2), Vec::new());
    assert!(verify_raft_certificate(&cert, &chain(), &other, &five).is_err());
    assert!(verify_raft_certificate(&cert, &ChainId::new("x").unwrap(), &block, &five).is_err());
}
