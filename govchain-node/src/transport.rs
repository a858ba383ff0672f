//! How a node talks to its peers: the [`Transport`] trait, the
//! [`Envelope`]s it carries, and [`InProcessNetwork`], an in-process
//! implementation for tests, simulations and the single-process demo.
//!
//! # Contract
//! - **Authenticated senders.** The node trusts [`Inbound::from`] to be the
//!   peer that sent the envelope: a network transport must authenticate
//!   peers (the TCP transport does it with a Noise handshake bound to the
//!   department's key). Everything *inside* an envelope is untrusted and is
//!   decoded with limits by the receiving engine or mempool.
//! - **Bounded.** Sending never blocks and never queues without bound: a
//!   full peer queue refuses the envelope with [`TransportError::QueueFull`]
//!   and the consensus engines' re-broadcast and catch-up recover the loss.
//! - **Best effort.** Delivery may drop, duplicate or reorder envelopes;
//!   consensus tolerates all three.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use govchain_core::crypto::PublicKey;
use govchain_core::types::{ChainId, Height};
use parking_lot::RwLock;

/// What travels between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Envelope {
    /// A consensus engine's message for `chain`.
    Consensus {
        /// The chain.
        chain: ChainId,
        /// The engine's canonical bytes.
        bytes: Vec<u8>,
    },
    /// Transactions gossiped from a mempool, each canonically encoded.
    Transactions {
        /// The chain.
        chain: ChainId,
        /// Encoded transactions.
        txs: Vec<Vec<u8>>,
    },
    /// The sender's committed height on `chain`, sent periodically so that
    /// a lagging peer knows whom to sync from.
    Status {
        /// The chain.
        chain: ChainId,
        /// The sender's latest committed height.
        height: Height,
    },
    /// Asks a peer for committed blocks of `chain`, starting at `from`.
    SyncRequest {
        /// The chain.
        chain: ChainId,
        /// The first height wanted.
        from: Height,
        /// At most this many blocks.
        max_blocks: u32,
    },
    /// Committed blocks with their commit certificates, in height order,
    /// each the canonical encoding of a
    /// [`DecidedBlock`](govchain_consensus::DecidedBlock); the answer to a
    /// [`Envelope::SyncRequest`].
    SyncBlocks {
        /// The chain.
        chain: ChainId,
        /// The sender's latest committed height when it answered.
        tip: Height,
        /// Encoded stored blocks.
        blocks: Vec<Vec<u8>>,
    },
}

impl Envelope {
    /// The chain the envelope is for.
    pub fn chain(&self) -> &ChainId {
        match self {
            Envelope::Consensus { chain, .. }
            | Envelope::Transactions { chain, .. }
            | Envelope::Status { chain, .. }
            | Envelope::SyncRequest { chain, .. }
            | Envelope::SyncBlocks { chain, .. } => chain,
        }
    }
}

/// An envelope received from an authenticated peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The authenticated sender.
    pub from: PublicKey,
    /// What it sent.
    pub envelope: Envelope,
}

/// Why an envelope was not handed to the network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No connection to that peer.
    #[error("peer {peer} is not connected")]
    NotConnected {
        /// The peer.
        peer: PublicKey,
    },
    /// The peer's queue is full; the envelope was dropped.
    #[error("queue to peer {peer} is full")]
    QueueFull {
        /// The peer.
        peer: PublicKey,
    },
    /// The encoded envelope is larger than the transport's frame limit; it
    /// was dropped (a peer would refuse it and drop the connection).
    #[error("envelope for peer {peer} is {len} bytes, over the frame limit of {max}")]
    TooLarge {
        /// The peer.
        peer: PublicKey,
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The sending half of a node's connections. Receiving is the transport's
/// job too: it hands each [`Inbound`] to the node's [`Inbox`].
pub trait Transport: Send + Sync {
    /// Hands `envelope` to the network for `to`, without blocking.
    fn send(&self, to: &PublicKey, envelope: Envelope) -> Result<(), TransportError>;
}

/// Where a transport delivers what a node receives: a bounded queue read
/// by the node's thread.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub(crate) tx: SyncSender<crate::node::NodeInput>,
}

impl Inbox {
    /// Delivers `inbound` without blocking; a full inbox drops it.
    pub fn deliver(&self, inbound: Inbound) -> Result<(), TransportError> {
        let peer = inbound.from.clone();
        match self.tx.try_send(crate::node::NodeInput::Net(inbound)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(TransportError::QueueFull { peer }),
            Err(TrySendError::Disconnected(_)) => Err(TransportError::NotConnected { peer }),
        }
    }
}

/// Creates a bounded inbox and the receiver a node reads it from.
pub(crate) fn inbox(capacity: usize) -> (Inbox, Receiver<crate::node::NodeInput>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    (Inbox { tx }, rx)
}

#[derive(Debug, Default)]
struct NetworkState {
    inboxes: BTreeMap<PublicKey, Inbox>,
    /// Pairs that cannot talk (a partition), stored both ways.
    cut: BTreeSet<(PublicKey, PublicKey)>,
}

/// An in-process network: every registered node can reach every other,
/// unless a link is cut. Envelopes are moved, never encoded.
#[derive(Debug, Clone, Default)]
pub struct InProcessNetwork {
    state: Arc<RwLock<NetworkState>>,
}

impl InProcessNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects (or reconnects) the node `key`, delivering to `inbox`.
    pub fn register(&self, key: PublicKey, inbox: Inbox) {
        self.state.write().inboxes.insert(key, inbox);
    }

    /// Disconnects `key`: envelopes to it are refused.
    pub fn unregister(&self, key: &PublicKey) {
        self.state.write().inboxes.remove(key);
    }

    /// Cuts (or with `connected` restores) the link between `a` and `b`.
    pub fn set_link(&self, a: &PublicKey, b: &PublicKey, connected: bool) {
        let mut s = self.state.write();
        for pair in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
            if connected {
                s.cut.remove(&pair);
            } else {
                s.cut.insert(pair);
            }
        }
    }

    /// The sending half for the node `me`.
    pub fn transport(&self, me: PublicKey) -> Arc<dyn Transport> {
        Arc::new(InProcessTransport {
            me,
            network: self.clone(),
        })
    }
}

struct InProcessTransport {
    me: PublicKey,
    network: InProcessNetwork,
}

impl Transport for InProcessTransport {
    fn send(&self, to: &PublicKey, envelope: Envelope) -> Result<(), TransportError> {
        let inbox = {
            let s = self.network.state.read();
            if s.cut.contains(&(self.me.clone(), to.clone())) {
                return Err(TransportError::NotConnected { peer: to.clone() });
            }
            s.inboxes.get(to).cloned()
        };
        match inbox {
            Some(inbox) => inbox.deliver(Inbound {
                from: self.me.clone(),
                envelope,
            }),
            None => Err(TransportError::NotConnected { peer: to.clone() }),
        }
    }
}
