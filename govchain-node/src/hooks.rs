//! Glue between the chains of one node: validator-set changes read from
//! the main chain's governance state, the mapping of chains' validator keys
//! to the departments' transport keys, and side-chain checkpoint anchoring.

use std::collections::{BTreeMap, BTreeSet};

use govchain_consensus::DecidedBlock;
use govchain_core::app::StateView;
use govchain_core::crypto::{CryptoSuite, PublicKey};
use govchain_core::types::{ChainId, Height};
use govchain_core::validator::ValidatorSet;

use crate::chain::{ChainRole, ChainRunner, CommitEvent};
use crate::error::NodeError;
use crate::governance::{self, GovernanceOp};
use crate::node::Worker;

fn gov_err(chain: &ChainId) -> impl Fn(governance::StateReadError) -> NodeError + '_ {
    move |e| NodeError::Proof {
        reason: format!("governance state of {chain}: {e}"),
    }
}

/// How the keys chains' engines know their peers by map to the keys the
/// transport knows them by. The transport is addressed by each
/// department's node key; on a chain of another suite a validator is the
/// department's key of that suite (registered, or rotated out during its
/// overlap). Only keys of another suite than their department's node key
/// are mapped: a key of the node key's suite may itself be a transport
/// identity (a node keeps connecting under its old key while a main-chain
/// rotation has already moved the registry's node key), so it is left as
/// it is, as before suites per chain. Read from the governance registry
/// (the key-to-department index), refreshed after every main-chain commit.
#[derive(Debug, Default)]
pub(crate) struct PeerKeys {
    /// A department key of another suite than its node key → its node key.
    node_key_of: BTreeMap<PublicKey, PublicKey>,
    /// (node key, suite) → the department's registered key of that suite,
    /// for suites other than the node key's.
    suite_key_of: BTreeMap<(PublicKey, CryptoSuite), PublicKey>,
}

impl PeerKeys {
    /// The transport key of the peer an engine names `key`: its
    /// department's node key, or `key` itself if it is one (or unknown).
    pub(crate) fn transport_key<'a>(&'a self, key: &'a PublicKey) -> &'a PublicKey {
        self.node_key_of.get(key).unwrap_or(key)
    }

    /// The key a chain of `suite` knows the peer with transport key `from`
    /// by: `from` itself on a chain of its suite, else the department's
    /// registered key of `suite` (or `from` if it has none).
    pub(crate) fn chain_key<'a>(
        &'a self,
        from: &'a PublicKey,
        suite: CryptoSuite,
    ) -> &'a PublicKey {
        if suite.check_key(from).is_ok() {
            return from;
        }
        self.suite_key_of
            .get(&(from.clone(), suite))
            .unwrap_or(from)
    }

    /// The mapping recorded in governance `state` for the keys of every
    /// department and every key in `schedules`.
    fn read<'s>(
        state: &dyn StateView,
        schedules: impl Iterator<Item = &'s ValidatorSet>,
    ) -> Result<Self, governance::StateReadError> {
        let mut out = PeerKeys::default();
        let departments = governance::departments(state)?;
        // Node keys are of the network's suite; only keys of other suites
        // are looked up.
        let network = departments
            .first()
            .map(|d| CryptoSuite::of_key(&d.node_key));
        for d in &departments {
            for key in governance::department_keys(state, d)? {
                if key != d.node_key {
                    out.suite_key_of
                        .insert((d.node_key.clone(), CryptoSuite::of_key(&key)), key.clone());
                    out.node_key_of.insert(key, d.node_key.clone());
                }
            }
        }
        // Keys of another suite departments rotated from on side chains
        // (still signing during their overlap).
        let mut seen = BTreeSet::new();
        for set in schedules {
            let keys = set
                .validators()
                .iter()
                .map(|v| v.public_key.clone())
                .chain(set.rotated_keys().map(|r| r.key));
            for key in keys {
                if Some(CryptoSuite::of_key(&key)) == network
                    || out.node_key_of.contains_key(&key)
                    || !seen.insert(key.clone())
                {
                    continue;
                }
                if let Some(d) = governance::department_of_key(state, &key)? {
                    if CryptoSuite::of_key(&key) != CryptoSuite::of_key(&d.node_key) {
                        out.node_key_of.insert(key, d.node_key);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The validator schedule of `chain` recorded in the main chain's latest
/// governance state (the genesis entry at height 1 included).
pub(crate) fn schedule_for(
    main: &ChainRunner,
    chain: &ChainId,
) -> Result<BTreeMap<Height, ValidatorSet>, NodeError> {
    let main_id = main.chain_id().clone();
    main.with_latest_state(|state| governance::validator_schedule(state, chain))?
        .map_err(gov_err(&main_id))
}

/// Runs after block `decided` of chain `i` committed (and before the next
/// effects are carried out).
pub(crate) fn after_commit(
    worker: &mut Worker,
    i: usize,
    decided: &DecidedBlock,
    event: &CommitEvent,
) -> Result<(), NodeError> {
    match worker.chains[i].spec.role {
        ChainRole::Main => follow_governance(worker, i),
        ChainRole::Side { anchor_every } => {
            // The proposer of every K-th block anchors it on the main chain
            // (with its node key, whichever of its keys proposed).
            if event.height.get().is_multiple_of(anchor_every)
                && worker.keys.contains(&decided.block.header.proposer)
            {
                let main = worker
                    .chains
                    .iter()
                    .find(|c| c.spec.role == ChainRole::Main)
                    .map(|c| c.chain_id().clone());
                if let Some(main) = main {
                    let op = GovernanceOp::Anchor {
                        header: decided.block.header.clone(),
                        certificate: decided.certificate.clone(),
                    };
                    if let Err(e) = worker.submit_own(&main, op.to_payload()) {
                        worker.note(format!(
                            "anchor of {} at {}: {e}",
                            event.chain, event.height
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Feeds every validator-set change governance scheduled to the engines of
/// this node's Tendermint chains, and adds new validators as peers. Every
/// registered department's node is a peer of the main chain: it follows
/// the main chain (block sync serves it) before it validates.
pub(crate) fn follow_governance(worker: &mut Worker, main: usize) -> Result<(), NodeError> {
    let main_id = worker.chains[main].chain_id().clone();
    let departments = worker.chains[main]
        .with_latest_state(governance::departments)?
        .map_err(gov_err(&main_id))?;
    for d in departments {
        if !worker.chains[main].spec.peers.contains(&d.node_key) {
            worker.chains[main].spec.peers.push(d.node_key);
        }
    }
    let ids: Vec<ChainId> = worker.chains.iter().map(|c| c.chain_id().clone()).collect();
    let mut schedules = Vec::with_capacity(ids.len());
    for chain in &ids {
        schedules.push(schedule_for(&worker.chains[main], chain)?);
    }
    worker.peer_keys = worker.chains[main]
        .with_latest_state(|state| {
            PeerKeys::read(state, schedules.iter().flat_map(|s| s.values()))
        })?
        .map_err(gov_err(&main_id))?;
    for (j, (chain, schedule)) in ids.iter().zip(schedules).enumerate() {
        // A chain's peers are transport keys: its validators' departments'
        // node keys (the genesis spec lists the validator keys).
        let mut peers: Vec<PublicKey> = Vec::new();
        let listed = std::mem::take(&mut worker.chains[j].spec.peers);
        let members = schedule
            .values()
            .flat_map(|set| set.validators().iter().map(|v| v.public_key.clone()));
        for key in listed.into_iter().chain(members) {
            let key = worker.peer_keys.transport_key(&key).clone();
            if !peers.contains(&key) {
                peers.push(key);
            }
        }
        worker.chains[j].spec.peers = peers;
        for (from, set) in schedule {
            if from.get() <= 1 {
                continue;
            }
            // Scheduling is idempotent; a change the engine can no longer
            // take (its height passed) was taken before or is refused by
            // governance's effective-height rule.
            if let Err(e) = worker.chains[j].schedule(from, set) {
                worker.note(format!("chain {chain}: validator change at {from}: {e}"));
            }
        }
        let snapshot = worker.chains[j].schedule_snapshot();
        worker
            .shared
            .schedules
            .write()
            .insert(chain.clone(), snapshot);
    }
    Ok(())
}
