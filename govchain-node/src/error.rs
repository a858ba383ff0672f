//! The node's error type.

use govchain_core::app::ExecutionError;
use govchain_core::hash::Hash;
use govchain_core::types::{ChainId, Height};

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration is unusable.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The node's thread panicked (a bug); the node stopped.
    #[error("the node's thread panicked: {reason}")]
    Panicked {
        /// The panic message.
        reason: String,
    },
    /// The node does not run that chain.
    #[error("this node does not run chain {chain}")]
    UnknownChain {
        /// The chain.
        chain: ChainId,
    },
    /// The store failed; the chain stops rather than diverge.
    #[error("storage of chain {chain}: {source}")]
    Storage {
        /// The chain.
        chain: ChainId,
        /// The failure.
        #[source]
        source: Box<govchain_storage::StorageError>,
    },
    /// The consensus engine refused to start or to take a block.
    #[error("consensus of chain {chain}: {source}")]
    Consensus {
        /// The chain.
        chain: ChainId,
        /// The failure.
        #[source]
        source: Box<govchain_consensus::ConsensusError>,
    },
    /// The application could not execute a block at all.
    #[error("executing block {height} of chain {chain}: {source}")]
    Execution {
        /// The chain.
        chain: ChainId,
        /// The block.
        height: Height,
        /// The failure.
        #[source]
        source: Box<ExecutionError>,
    },
    /// A decided block's state root is not what execution produced: this
    /// node's application diverged from the quorum's. The chain stops.
    #[error(
        "chain {chain} block {height}: header state root {header} but execution gave {computed}"
    )]
    StateRootMismatch {
        /// The chain.
        chain: ChainId,
        /// The block.
        height: Height,
        /// The header's root.
        header: Hash,
        /// The root execution produced here.
        computed: Hash,
    },
    /// The mempool refused the node's own transaction.
    #[error("transaction refused: {source}")]
    Rejected {
        /// Why.
        #[source]
        source: Box<crate::mempool::MempoolError>,
    },
    /// The node thread has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// Something asked for is not stored.
    #[error("not found: {what}")]
    NotFound {
        /// What.
        what: String,
    },
    /// The state of that height was pruned
    /// ([`ChainSpec::retain_state_versions`](crate::ChainSpec::retain_state_versions)).
    #[error(
        "the state of chain {chain} at height {height} was pruned; the oldest readable is {oldest}"
    )]
    StatePruned {
        /// The chain.
        chain: ChainId,
        /// The height asked for.
        height: Height,
        /// The oldest height whose state is kept.
        oldest: Height,
    },
    /// A proof could not be built.
    #[error("proof: {reason}")]
    Proof {
        /// Why.
        reason: String,
    },
}
