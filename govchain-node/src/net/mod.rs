//! The authenticated TCP transport: [`TcpTransport`] connects departments'
//! nodes over the network with Noise, binds every session to a department's
//! Ed25519 key, admits only keys the main chain's governance admitted, and
//! keeps every buffer bounded.
//!
//! # Handshake
//! Each connection runs `Noise_XX_25519_ChaChaPoly_BLAKE2s` ([`NOISE_PROTOCOL`]):
//! both sides send an ephemeral and a static X25519 key, so the session is
//! mutually authenticated *to the Noise static keys* and forward secret. The
//! Noise prologue is [`PROLOGUE_LABEL`] followed by the 32-byte network id
//! (for example the main chain's genesis hash), so nodes of another network or
//! another protocol version fail the handshake. Handshake messages carry no
//! payload and are at most 256 bytes, the whole handshake (binding included)
//! must finish within [`TcpConfig::handshake_timeout`], and until the peer's
//! binding verifies the only frame accepted is one binding long, so an
//! unauthenticated peer can make a node allocate nothing large.
//!
//! # Binding the Noise key to the department key
//! A Noise static key is generated per transport and proves nothing about a
//! department. After the handshake, each side sends, as its first encrypted
//! frame, its Ed25519 [`PublicKey`] and a signature (through its
//! [`Signer`], so an HSM works) over
//! `BLAKE3-keyed(NetDomain::TransportBinding; network id ‖ handshake hash ‖
//! role ‖ own Noise static key ‖ own Ed25519 key)`.
//! The receiver checks the signature against the Noise static key the
//! handshake proved and the handshake hash it computed itself. The handshake
//! hash is unique per session (it covers both fresh ephemeral keys), so a
//! binding — or a whole recorded handshake — replayed into another session is
//! refused; the role byte stops a binding being reflected back. The
//! initiator binds first and the responder checks it, and admission, before
//! binding itself, so an unadmitted dialer never learns whose node it reached.
//!
//! # Admission
//! Only keys in the admitted set ([`TcpTransport::set_admitted`], fed by the
//! node from the governance registry) may hold a connection. The set is
//! checked after the signature (a refusal names a proven key, with a logged
//! reason) and again when the connection is installed; removing a key closes
//! its connection at once, drops its queue and refuses it afterwards.
//! Addressing ([`TcpConfig::peers`], [`TcpTransport::add_peer`]) is separate:
//! a peer is dialed only while it is admitted. A connection from ourselves or
//! from a key other than the one dialed is refused.
//!
//! # Framing
//! On the wire, a record is a `u16` big-endian length and one Noise transport
//! message (at most 65,535 bytes, 16 of them the tag). A frame is one
//! [`WireMessage`] in the canonical codec (a tag byte, then the fields), sent
//! as a `u32` little-endian length followed by the frame, cut into records.
//! The length is checked against [`TcpConfig::max_frame_bytes`] (default
//! 8 MiB: a proposal of 1,000 transactions of 250 bytes is about 0.3 MB)
//! before anything is allocated; a frame over the limit, a record that fails
//! decryption or overruns its frame, or a message that does not decode drops
//! the connection with a logged reason and a counter in [`NetStats`]. This
//! node refuses to send an envelope over its own limit with
//! [`TransportError::TooLarge`].
//!
//! # Bounds
//! - Each peer's outgoing queue is bounded in envelopes and bytes
//!   ([`TcpConfig::peer_queue_envelopes`], [`TcpConfig::peer_queue_bytes`]);
//!   frames being written stay counted until written. When full,
//!   [`Transport::send`] returns [`TransportError::QueueFull`]: it never
//!   blocks and never grows the queue. A peer that stops reading therefore
//!   costs at most its queue, the kernel's socket buffer and the
//!   connection's fixed buffers (about 384 KiB: record and socket buffers);
//!   after [`TcpConfig::write_timeout`] without progress it is disconnected.
//! - A connection holds at most one frame being received
//!   (`max_frame_bytes`); inbound envelopes go to the node's bounded inbox,
//!   and a full inbox drops them (counted).
//! - Handshakes in progress are capped ([`TcpConfig::max_pending_handshakes`])
//!   and each peer has at most one connection.
//!
//! # One connection per peer, reconnection
//! A connection carries every chain both nodes share (each envelope names its
//! chain). When both sides dial at once, both keep the connection dialed by
//! the smaller key (the larger key also holds back its first dial a little,
//! so this is rare); a new connection in the same direction as the current
//! one replaces it. The queue belongs to the peer, not the connection: a
//! writer cut off mid-batch gives its unwritten frames back to the queue's
//! front for the next connection. Each addressed peer has a dialer that
//! redials a lost peer with exponential backoff from
//! [`TcpConfig::backoff_min`] to [`TcpConfig::backoff_max`], each delay
//! jittered between half and all of its value; a connection that lasted
//! resets the backoff. Idle connections
//! send keepalives, and a connection silent for
//! [`TcpConfig::idle_timeout`] is dropped (and redialed).
//!
//! # Threads
//! Standard threads and `std::net`, no async runtime: one acceptor (polling
//! a non-blocking listener), one dialer per addressed peer, a short-lived
//! thread per inbound handshake, and a reader and a writer per connection.
//! The writer encrypts (off the node's thread) and batches records into one
//! buffered write. [`TcpTransport::shutdown`] (also on drop) closes every
//! socket and joins every thread.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use govchain_core::{crypto::{SecretKey, Signer}, hash::Hash};
//! use govchain_node::net::{TcpConfig, TcpTransport};
//!
//! let key = Arc::new(SecretKey::from_seed(&[1; 32]));
//! let peer = SecretKey::from_seed(&[2; 32]).public_key();
//! let mut config = TcpConfig::new("0.0.0.0:7400".parse()?, Hash::from_bytes([9; 32]));
//! config.peers.insert(peer.clone(), "10.0.0.2:7400".parse()?);
//! config.admitted.insert(peer);
//! let transport = TcpTransport::bind(config, key.clone())?;
//! // let node = Node::start(node_config, transport.clone())?;
//! // transport.start(node.inbox());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod frame;
mod handshake;
mod peer;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use govchain_core::codec::DecodeError;
use govchain_core::crypto::{PublicKey, Signer};
use govchain_core::hash::Hash;
use tracing::{debug, info, warn};

pub use frame::{WireLimits, WireMessage, MAX_NOISE_MESSAGE};
pub use handshake::{ChannelParams, NetDomain, SecureChannel, NOISE_PROTOCOL, PROLOGUE_LABEL};

use crate::transport::{Envelope, Inbound, Inbox, Transport, TransportError};
use peer::{bump, Inner, PushError};

/// Default [`TcpConfig::max_frame_bytes`]: 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 << 20;
/// Default [`TcpConfig::max_items_per_envelope`].
pub const DEFAULT_MAX_ITEMS_PER_ENVELOPE: usize = 65_536;

/// Why the network layer failed or refused something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A configuration field is invalid.
    #[error("invalid transport configuration: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A socket operation failed (timeouts included).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The Noise handshake or cipher refused the input.
    #[error("noise {stage} failed: {reason}")]
    Noise {
        /// The step that failed.
        stage: &'static str,
        /// The Noise library's reason.
        reason: String,
    },
    /// A frame announced more bytes than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Bytes that are not a valid record or frame (a failed decryption
    /// included).
    #[error("garbled input: {reason}")]
    Garbled {
        /// What was wrong.
        reason: &'static str,
    },
    /// A frame that does not decode as a message.
    #[error("undecodable message: {source}")]
    Decode {
        /// The codec's reason.
        #[from]
        source: DecodeError,
    },
    /// The peer's key binding is invalid for this session.
    #[error("invalid key binding: {reason}")]
    BadBinding {
        /// What was wrong.
        reason: &'static str,
    },
    /// The peer proved a key that is not admitted.
    #[error("peer key {key} is not admitted")]
    NotAdmitted {
        /// The proven key.
        key: PublicKey,
    },
    /// The peer proved another key than the one dialed.
    #[error("dialed {expected} but the peer proved {got}")]
    UnexpectedPeer {
        /// The key that was dialed.
        expected: PublicKey,
        /// The key the peer proved.
        got: PublicKey,
    },
    /// The peer is this node.
    #[error("connected to ourselves")]
    SelfConnection,
    /// This node declined to keep an authenticated connection.
    #[error("connection not kept: {reason}")]
    Refused {
        /// Why.
        reason: &'static str,
    },
}

/// How a [`TcpTransport`] is set up. Start from [`TcpConfig::new`] (or
/// `Default`, then set the network id) and check with
/// [`TcpConfig::validate`] (which [`TcpTransport::bind`] calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Where to listen (port 0 picks a free port; see
    /// [`TcpTransport::local_addr`]).
    pub listen: SocketAddr,
    /// The network id bound into every handshake, e.g. the main chain's
    /// genesis hash. Must not be all zeroes.
    pub network_id: Hash,
    /// Peers to dial, by department key. Dialed only while admitted.
    pub peers: BTreeMap<PublicKey, SocketAddr>,
    /// Keys allowed to connect, until [`TcpTransport::set_admitted`]
    /// replaces the set.
    pub admitted: BTreeSet<PublicKey>,
    /// The largest frame sent or accepted, in bytes (default 8 MiB).
    pub max_frame_bytes: usize,
    /// The most items (transactions, blocks) one envelope may carry.
    pub max_items_per_envelope: usize,
    /// Envelopes a peer's outgoing queue holds at most (default 4,096).
    pub peer_queue_envelopes: usize,
    /// Bytes a peer's outgoing queue holds at most (default 32 MiB; at
    /// least `max_frame_bytes`).
    pub peer_queue_bytes: usize,
    /// The first redial delay (default 100 ms).
    pub backoff_min: Duration,
    /// The largest redial delay (default 10 s).
    pub backoff_max: Duration,
    /// How long a TCP connect may take (default 3 s).
    pub dial_timeout: Duration,
    /// How long a whole handshake (Noise and binding) may take (default
    /// 5 s).
    pub handshake_timeout: Duration,
    /// An idle writer sends a keepalive this often (default 5 s).
    pub keepalive_interval: Duration,
    /// A connection that receives nothing this long is dropped (default
    /// 30 s; more than `keepalive_interval`).
    pub idle_timeout: Duration,
    /// A write that makes no progress this long drops the connection
    /// (default 30 s).
    pub write_timeout: Duration,
    /// Inbound handshakes in progress at most (default 64).
    pub max_pending_handshakes: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            network_id: Hash::from_bytes([0; 32]),
            peers: BTreeMap::new(),
            admitted: BTreeSet::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_items_per_envelope: DEFAULT_MAX_ITEMS_PER_ENVELOPE,
            peer_queue_envelopes: 4_096,
            peer_queue_bytes: 32 << 20,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_pending_handshakes: 64,
        }
    }
}

impl TcpConfig {
    /// Defaults, listening on `listen`, for the network `network_id`.
    pub fn new(listen: SocketAddr, network_id: Hash) -> Self {
        TcpConfig {
            listen,
            network_id,
            ..TcpConfig::default()
        }
    }

    /// Checks the configuration; errors name the field.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |field: &'static str, reason: &str| {
            Err(NetError::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.network_id.as_bytes() == &[0; 32] {
            return bad(
                "network_id",
                "must be set (for example to the main chain's genesis hash)",
            );
        }
        if self.max_frame_bytes < 1_024 || self.max_frame_bytes > frame::MAX_FRAME_LIMIT {
            return bad("max_frame_bytes", "must be between 1 KiB and 256 MiB");
        }
        if self.max_items_per_envelope == 0 {
            return bad("max_items_per_envelope", "must be at least 1");
        }
        if self.peer_queue_envelopes == 0 {
            return bad("peer_queue_envelopes", "must be at least 1");
        }
        if self.peer_queue_bytes < self.max_frame_bytes {
            return bad(
                "peer_queue_bytes",
                "must be at least max_frame_bytes, so one largest frame fits",
            );
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return bad("backoff_min", "must be positive and at most backoff_max");
        }
        for (field, d) in [
            ("dial_timeout", self.dial_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if d.is_zero() {
                return bad(field, "must be positive");
            }
        }
        if self.idle_timeout <= self.keepalive_interval {
            return bad("idle_timeout", "must be longer than keepalive_interval");
        }
        if self.max_pending_handshakes == 0 {
            return bad("max_pending_handshakes", "must be at least 1");
        }
        Ok(())
    }
}

/// Where a transport hands what it receives. [`Inbox`] (a node's) is the
/// usual sink; a `SyncSender<Inbound>` serves tools and tests.
///
/// Contract: `deliver` must not block; an error means the envelope was
/// dropped (counted in [`NetStats::inbound_dropped`]).
pub trait InboundSink: Send + Sync {
    /// Takes one authenticated inbound envelope.
    fn deliver(&self, inbound: Inbound) -> Result<(), TransportError>;
}

impl InboundSink for Inbox {
    fn deliver(&self, inbound: Inbound) -> Result<(), TransportError> {
        Inbox::deliver(self, inbound)
    }
}

impl InboundSink for SyncSender<Inbound> {
    fn deliver(&self, inbound: Inbound) -> Result<(), TransportError> {
        let peer = inbound.from.clone();
        self.try_send(inbound).map_err(|e| match e {
            TrySendError::Full(_) => TransportError::QueueFull { peer },
            TrySendError::Disconnected(_) => TransportError::NotConnected { peer },
        })
    }
}

/// One peer as the transport sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerStatus {
    /// The peer's department key.
    pub key: PublicKey,
    /// The address dialed, if known.
    pub addr: Option<SocketAddr>,
    /// Whether the key is admitted.
    pub admitted: bool,
    /// Whether a connection is up.
    pub connected: bool,
    /// Whether this node dialed the current connection.
    pub dialed_by_us: Option<bool>,
    /// The current connection's remote address.
    pub remote_addr: Option<SocketAddr>,
    /// Envelopes queued (or being written) for the peer.
    pub queued_envelopes: usize,
    /// Bytes queued (or being written) for the peer.
    pub queued_bytes: usize,
    /// Connections established with the peer so far.
    pub connects: u64,
    /// Connections after the first (`connects - 1`).
    pub reconnects: u64,
    /// Dials that did not yield a connection.
    pub dial_failures: u64,
    /// Why the last connection or dial ended, if one did.
    pub last_error: Option<String>,
}

/// Transport counters since [`TcpTransport::bind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetStats {
    /// Connections established (handshake, binding and admission passed).
    pub connections: u64,
    /// Handshakes that failed (garbage, timeouts, bad bindings, refused keys).
    pub handshake_failures: u64,
    /// Connections refused because the proven key is not admitted.
    pub refused_not_admitted: u64,
    /// Inbound connections refused because too many handshakes were running.
    pub refused_busy: u64,
    /// Envelope frames received (keepalives not counted).
    pub frames_in: u64,
    /// Envelope frames sent (keepalives not counted).
    pub frames_out: u64,
    /// Bytes received on established connections, record headers included.
    pub bytes_in: u64,
    /// Bytes sent on established connections, record headers included.
    pub bytes_out: u64,
    /// Connections dropped for a frame over the limit.
    pub dropped_oversized: u64,
    /// Connections dropped for garbled input (failed decryption, bad
    /// records, undecodable messages).
    pub dropped_garbled: u64,
    /// Connections dropped for silence or a stalled write.
    pub dropped_timeout: u64,
    /// Connections closed by the peer or by a socket error.
    pub dropped_closed: u64,
    /// Connections closed because the peer was de-admitted.
    pub dropped_deadmitted: u64,
    /// Duplicate connections resolved by the tie-break (one side closed).
    pub dropped_duplicate: u64,
    /// Sends refused with `QueueFull` because the peer's queue was full.
    pub sends_queue_full: u64,
    /// Sends refused with `NotConnected`.
    pub sends_not_connected: u64,
    /// Sends refused because the envelope exceeds `max_frame_bytes`.
    pub sends_too_large: u64,
    /// Received envelopes dropped because the inbox was full or gone.
    pub inbound_dropped: u64,
}

/// The TCP transport. See the [module docs](self).
pub struct TcpTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("key", &self.inner.local.key)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Validates `config`, binds the listener (port 0 allowed) and
    /// generates this run's Noise static key. Nothing is accepted or dialed
    /// until [`TcpTransport::start`].
    pub fn bind(config: TcpConfig, identity: Arc<dyn Signer>) -> Result<Arc<Self>, NetError> {
        config.validate()?;
        let local = handshake::LocalIdentity::new(identity, config.network_id)?;
        if config.peers.contains_key(&local.key) {
            return Err(NetError::Config {
                field: "peers",
                reason: "lists this node's own key".into(),
            });
        }
        let addr = config.listen;
        let listener =
            std::net::TcpListener::bind(addr).map_err(|source| NetError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| NetError::Bind { addr, source })?;
        Ok(Arc::new(TcpTransport {
            inner: Arc::new(Inner::new(config, local, listener, local_addr)),
        }))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This node's department key.
    pub fn key(&self) -> &PublicKey {
        &self.inner.local.key
    }

    /// Starts accepting and dialing, delivering inbound envelopes to the
    /// node's `inbox`. A second call does nothing.
    pub fn start(&self, inbox: Inbox) {
        self.start_with_sink(Arc::new(inbox));
    }

    /// [`TcpTransport::start`] with any [`InboundSink`].
    pub fn start_with_sink(&self, sink: Arc<dyn InboundSink>) {
        let inner = &self.inner;
        let mut st = inner.state.lock();
        if st.started || !inner.running() {
            warn!("govchain-net: start called twice or after shutdown; ignored");
            return;
        }
        st.started = true;
        st.sink = Some(sink);
        if let Some(listener) = inner.listener.lock().take() {
            inner.spawn("govchain-net-listen", move |inner| {
                peer::accept_loop(inner, listener)
            });
        }
        let keys: Vec<PublicKey> = st.peers.keys().cloned().collect();
        for key in keys {
            inner.ensure_dialer(&mut st, &key);
        }
        info!(key = %inner.local.key, addr = %inner.local_addr, "govchain-net: transport started");
    }

    /// Replaces the admitted set (the node feeds it from the governance
    /// registry). Connections of keys no longer admitted are closed at
    /// once, their queues dropped, and they are refused afterwards.
    pub fn set_admitted(&self, keys: BTreeSet<PublicKey>) {
        self.inner.set_admitted(keys);
    }

    /// Sets (or changes) the address to dial for `key` (a joining node's,
    /// say). It is dialed while admitted; admission is not changed here.
    pub fn add_peer(&self, key: PublicKey, addr: SocketAddr) {
        let inner = &self.inner;
        if key == inner.local.key {
            warn!(%addr, "govchain-net: add_peer with this node's own key ignored");
            return;
        }
        let mut st = inner.state.lock();
        st.peers
            .entry(key.clone())
            .or_insert_with(|| peer::PeerEntry::new(None, &inner.config))
            .addr = Some(addr);
        inner.ensure_dialer(&mut st, &key);
        inner.changed.notify_all();
        debug!(peer = %key, %addr, "govchain-net: peer address set");
    }

    /// Every peer known by address or admission, in key order.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.inner.peer_statuses()
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        self.inner.stats.snapshot()
    }

    /// Closes every connection and the listener and joins every thread.
    /// Idempotent. A dial in progress can delay it by up to
    /// [`TcpConfig::dial_timeout`].
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

impl Transport for TcpTransport {
    fn send(&self, to: &PublicKey, envelope: Envelope) -> Result<(), TransportError> {
        let inner = &self.inner;
        let outbox = {
            let st = inner.state.lock();
            match st.peers.get(to) {
                Some(entry) if entry.conn.is_some() && st.admitted.contains(to) => {
                    entry.outbox.clone()
                }
                _ => {
                    bump(&inner.stats.sends_not_connected, 1);
                    return Err(TransportError::NotConnected { peer: to.clone() });
                }
            }
        };
        let mut frame = Vec::new();
        frame::encode_envelope(&envelope, &mut frame);
        if frame.len() > inner.config.max_frame_bytes {
            bump(&inner.stats.sends_too_large, 1);
            warn!(peer = %to, len = frame.len(), max = inner.config.max_frame_bytes,
                "govchain-net: envelope over max_frame_bytes dropped");
            return Err(TransportError::TooLarge {
                peer: to.clone(),
                len: frame.len(),
                max: inner.config.max_frame_bytes,
            });
        }
        match outbox.push(frame) {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                bump(&inner.stats.sends_queue_full, 1);
                Err(TransportError::QueueFull { peer: to.clone() })
            }
            Err(PushError::NoWriter) => {
                bump(&inner.stats.sends_not_connected, 1);
                Err(TransportError::NotConnected { peer: to.clone() })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_needs_a_network_id() {
        assert!(matches!(
            TcpConfig::default().validate(),
            Err(NetError::Config {
                field: "network_id",
                ..
            })
        ));
        let ok = TcpConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Hash::from_bytes([1; 32]),
        );
        assert!(ok.validate().is_ok());
        let mut bad = ok.clone();
        bad.peer_queue_bytes = bad.max_frame_bytes - 1;
        assert!(bad.validate().is_err());
        let mut bad = ok.clone();
        bad.idle_timeout = bad.keepalive_interval;
        assert!(bad.validate().is_err());
        let mut bad = ok;
        bad.backoff_min = Duration::ZERO;
        assert!(bad.validate().is_err());
    }
}
