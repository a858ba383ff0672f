//! Glue between the chains of one node: validator-set changes read from
//! the main chain's governance state, and side-chain checkpoint anchoring.

use std::collections::BTreeMap;

use govchain_consensus::DecidedBlock;
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
            // The proposer of every K-th block anchors it on the main chain.
            if event.height.get().is_multiple_of(anchor_every)
                && decided.block.header.proposer == worker.me
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
    for (j, chain) in ids.iter().enumerate() {
        let schedule = schedule_for(&worker.chains[main], chain)?;
        for (from, set) in schedule {
            for v in set.validators() {
                if !worker.chains[j].spec.peers.contains(&v.public_key) {
                    worker.chains[j].spec.peers.push(v.public_key.clone());
                }
            }
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
