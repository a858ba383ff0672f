//! Peers, their bounded outgoing queues, and the threads: one acceptor,
//! one dialer per addressed peer, and a reader and a writer per connection.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use govchain_core::crypto::PublicKey;
use parking_lot::{Condvar, Mutex};
use rand_core::RngCore;
use tracing::{debug, info, warn};

use super::frame::{WireLimits, WireMessage};
use super::handshake::{establish, Established, LocalIdentity, Role};
use super::{InboundSink, NetError, NetStats, PeerStatus, TcpConfig};
use crate::transport::Inbound;

/// Who dialed a connection, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// We dialed it.
    Outbound,
    /// The peer dialed it.
    Inbound,
}

/// Why a connection ended (for counters and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropKind {
    Oversized,
    Garbled,
    Timeout,
    Closed,
}

impl DropKind {
    fn of(error: &NetError) -> DropKind {
        match error {
            NetError::FrameTooLarge { .. } => DropKind::Oversized,
            NetError::Garbled { .. } | NetError::Decode { .. } | NetError::Noise { .. } => {
                DropKind::Garbled
            }
            NetError::Io { source, .. }
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                DropKind::Timeout
            }
            _ => DropKind::Closed,
        }
    }
}

/// A peer's outgoing queue, bounded in envelopes and bytes. Frames popped
/// by the writer stay counted until they are written, so the bound covers
/// everything the sender holds for the peer, not just what waits.
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    ready: Condvar,
    max_envelopes: usize,
    max_bytes: usize,
}

struct OutboxState {
    frames: VecDeque<Vec<u8>>,
    /// Queued plus in flight.
    envelopes: usize,
    /// Queued plus in flight.
    bytes: usize,
    /// The connection whose writer drains this queue.
    writer: Option<u64>,
}

/// Why [`Outbox::push`] refused a frame.
pub(crate) enum PushError {
    NoWriter,
    Full,
}

/// What the writer should do next.
pub(crate) enum Next {
    /// Write the frames moved into the batch.
    Frames,
    /// Nothing was queued for a keepalive interval.
    Idle,
    /// The connection was replaced or closed.
    Retired,
}

/// At most this many bytes are moved to the writer at once (one frame is
/// always moved, whatever its size).
const BATCH_BYTES: usize = 1 << 20;
const BATCH_FRAMES: usize = 256;

impl Outbox {
    pub(crate) fn new(max_envelopes: usize, max_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(OutboxState {
                frames: VecDeque::new(),
                envelopes: 0,
                bytes: 0,
                writer: None,
            }),
            ready: Condvar::new(),
            max_envelopes,
            max_bytes,
        }
    }

    pub(crate) fn push(&self, frame: Vec<u8>) -> Result<(), PushError> {
        let mut s = self.state.lock();
        if s.writer.is_none() {
            return Err(PushError::NoWriter);
        }
        if s.envelopes >= self.max_envelopes || s.bytes.saturating_add(frame.len()) > self.max_bytes
        {
            return Err(PushError::Full);
        }
        s.envelopes += 1;
        s.bytes += frame.len();
        s.frames.push_back(frame);
        drop(s);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits up to `idle` for frames for connection `id` and moves a batch
    /// of them into `out` (still counted until [`Outbox::written`]).
    pub(crate) fn next_batch(&self, id: u64, idle: Duration, out: &mut Vec<Vec<u8>>) -> Next {
        let deadline = Instant::now() + idle;
        let mut s = self.state.lock();
        loop {
            if s.writer != Some(id) {
                return Next::Retired;
            }
            if !s.frames.is_empty() {
                let mut bytes = 0usize;
                while let Some(frame) = s.frames.pop_front() {
                    bytes += frame.len();
                    out.push(frame);
                    if out.len() >= BATCH_FRAMES || bytes >= BATCH_BYTES {
                        break;
                    }
                }
                return Next::Frames;
            }
            if self.ready.wait_until(&mut s, deadline).timed_out() {
                return if s.writer == Some(id) && s.frames.is_empty() {
                    Next::Idle
                } else if s.writer != Some(id) {
                    Next::Retired
                } else {
                    continue;
                };
            }
        }
    }

    /// Releases the accounting of `envelopes` frames of `bytes` bytes that
    /// a writer wrote, and gives back the frames it took but did not write
    /// (its connection failed or was replaced): they go back to the front of
    /// the queue, in order, if another connection now drains it (they stay
    /// counted, so the bound holds), and are dropped otherwise.
    pub(crate) fn written(&self, envelopes: usize, bytes: usize, unwritten: Vec<Vec<u8>>) {
        let mut s = self.state.lock();
        s.envelopes = s.envelopes.saturating_sub(envelopes);
        s.bytes = s.bytes.saturating_sub(bytes);
        if s.writer.is_some() {
            for frame in unwritten.into_iter().rev() {
                s.frames.push_front(frame);
            }
            drop(s);
            self.ready.notify_all();
        } else {
            let n = unwritten.len();
            let b: usize = unwritten.iter().map(Vec::len).sum();
            s.envelopes = s.envelopes.saturating_sub(n);
            s.bytes = s.bytes.saturating_sub(b);
        }
    }

    /// Hands the queue to connection `writer` (or to none), waking any
    /// writer so that a replaced one retires.
    pub(crate) fn set_writer(&self, writer: Option<u64>) {
        self.state.lock().writer = writer;
        self.ready.notify_all();
    }

    /// Drops everything still queued (frames in flight stay counted until
    /// their writer releases them).
    pub(crate) fn clear(&self) {
        let mut s = self.state.lock();
        let (n, bytes) = s
            .frames
            .drain(..)
            .fold((0, 0), |(n, b), f| (n + 1, b + f.len()));
        s.envelopes = s.envelopes.saturating_sub(n);
        s.bytes = s.bytes.saturating_sub(bytes);
    }

    /// (envelopes, bytes) held, in flight included.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.envelopes, s.bytes)
    }
}

/// The live connection to a peer.
pub(crate) struct ConnInfo {
    pub(crate) id: u64,
    pub(crate) direction: Direction,
    pub(crate) remote_addr: Option<SocketAddr>,
    /// A handle on the socket, to shut it down from any thread.
    pub(crate) stream: TcpStream,
}

pub(crate) struct PeerEntry {
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) conn: Option<ConnInfo>,
    pub(crate) connects: u64,
    pub(crate) dial_failures: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) dialer: bool,
}

impl PeerEntry {
    pub(crate) fn new(addr: Option<SocketAddr>, config: &TcpConfig) -> Self {
        PeerEntry {
            addr,
            outbox: Arc::new(Outbox::new(
                config.peer_queue_envelopes,
                config.peer_queue_bytes,
            )),
            conn: None,
            connects: 0,
            dial_failures: 0,
            last_error: None,
            dialer: false,
        }
    }
}

pub(crate) struct State {
    pub(crate) admitted: BTreeSet<PublicKey>,
    pub(crate) peers: BTreeMap<PublicKey, PeerEntry>,
    pub(crate) sink: Option<Arc<dyn InboundSink>>,
    pub(crate) started: bool,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Atomic counters behind [`NetStats`].
        #[derive(Default)]
        pub(crate) struct Stats { $(pub(crate) $name: AtomicU64,)* }
        impl Stats {
            pub(crate) fn snapshot(&self) -> NetStats {
                NetStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    connections,
    handshake_failures,
    refused_not_admitted,
    refused_busy,
    frames_in,
    frames_out,
    bytes_in,
    bytes_out,
    dropped_oversized,
    dropped_garbled,
    dropped_timeout,
    dropped_closed,
    dropped_deadmitted,
    dropped_duplicate,
    sends_queue_full,
    sends_not_connected,
    sends_too_large,
    inbound_dropped,
);

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Everything the transport's threads share.
pub(crate) struct Inner {
    pub(crate) config: TcpConfig,
    pub(crate) local: LocalIdentity,
    pub(crate) local_addr: SocketAddr,
    pub(crate) limits: WireLimits,
    pub(crate) listener: Mutex<Option<TcpListener>>,
    pub(crate) running: AtomicBool,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: Condvar,
    pub(crate) stats: Stats,
    next_id: AtomicU64,
    /// Every socket this transport holds (handshaking or connected), so that
    /// shutdown can unblock every thread.
    sockets: Mutex<BTreeMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pending_handshakes: AtomicUsize,
}

impl Inner {
    pub(crate) fn new(
        config: TcpConfig,
        local: LocalIdentity,
        listener: TcpListener,
        local_addr: SocketAddr,
    ) -> Self {
        let me = local.key.clone();
        let admitted = config
            .admitted
            .iter()
            .filter(|k| **k != me)
            .cloned()
            .collect();
        let peers = config
            .peers
            .iter()
            .filter(|(k, _)| **k != me)
            .map(|(k, a)| (k.clone(), PeerEntry::new(Some(*a), &config)))
            .collect();
        Inner {
            limits: WireLimits {
                max_frame_bytes: config.max_frame_bytes,
                max_items_per_envelope: config.max_items_per_envelope,
            },
            config,
            local,
            local_addr,
            listener: Mutex::new(Some(listener)),
            running: AtomicBool::new(true),
            state: Mutex::new(State {
                admitted,
                peers,
                sink: None,
                started: false,
            }),
            changed: Condvar::new(),
            stats: Stats::default(),
            next_id: AtomicU64::new(1),
            sockets: Mutex::new(BTreeMap::new()),
            threads: Mutex::new(Vec::new()),
            pending_handshakes: AtomicUsize::new(0),
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    fn is_admitted(&self, key: &PublicKey) -> bool {
        self.state.lock().admitted.contains(key)
    }

    /// Records a socket so that shutdown can close it; `None` if the
    /// transport is shutting down (the socket is then closed).
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let clone = stream.try_clone().ok()?;
        self.sockets.lock().insert(id, clone);
        if self.running() {
            Some(id)
        } else {
            self.unregister(id);
            None
        }
    }

    fn unregister(&self, id: u64) {
        if let Some(stream) = self.sockets.lock().remove(&id) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Spawns a named thread and keeps its handle for shutdown.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        name: &str,
        f: impl FnOnce(Arc<Inner>) + Send + 'static,
    ) -> bool {
        let me = self.clone();
        match std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || f(me))
        {
            Ok(handle) => {
                let mut threads = self.threads.lock();
                // Finished threads need no join; drop their handles.
                threads.retain(|h| !h.is_finished());
                threads.push(handle);
                true
            }
            Err(e) => {
                warn!(error = %e, thread = name, "govchain-net: cannot spawn a thread");
                false
            }
        }
    }

    /// Starts a dialer for `key` unless one runs. Called with the state lock.
    pub(crate) fn ensure_dialer(self: &Arc<Self>, state: &mut State, key: &PublicKey) {
        if !state.started {
            return;
        }
        if let Some(entry) = state.peers.get_mut(key) {
            if entry.addr.is_some() && !entry.dialer {
                let k = key.clone();
                entry.dialer = self.spawn("govchain-net-dial", move |inner| dial_loop(inner, k));
            }
        }
    }

    /// Stops everything and joins every thread.
    pub(crate) fn shutdown(&self) {
        self.running.store(false, Ordering::SeqCst);
        {
            let mut st = self.state.lock();
            for entry in st.peers.values_mut() {
                if let Some(conn) = entry.conn.take() {
                    let _ = conn.stream.shutdown(Shutdown::Both);
                }
                entry.outbox.set_writer(None);
                entry.outbox.clear();
            }
            self.changed.notify_all();
        }
        for stream in std::mem::take(&mut *self.sockets.lock()).into_values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.listener.lock().take();
        loop {
            let threads = std::mem::take(&mut *self.threads.lock());
            if threads.is_empty() {
                break;
            }
            for handle in threads {
                let _ = handle.join();
            }
        }
    }

    pub(crate) fn peer_statuses(&self) -> Vec<PeerStatus> {
        let st = self.state.lock();
        let mut keys: BTreeSet<&PublicKey> = st.peers.keys().collect();
        keys.extend(st.admitted.iter());
        keys.into_iter()
            .map(|key| {
                let entry = st.peers.get(key);
                let (queued_envelopes, queued_bytes) =
                    entry.map(|e| e.outbox.usage()).unwrap_or((0, 0));
                let conn = entry.and_then(|e| e.conn.as_ref());
                let connects = entry.map_or(0, |e| e.connects);
                PeerStatus {
                    key: key.clone(),
                    addr: entry.and_then(|e| e.addr),
                    admitted: st.admitted.contains(key),
                    connected: conn.is_some(),
                    dialed_by_us: conn.map(|c| c.direction == Direction::Outbound),
                    remote_addr: conn.and_then(|c| c.remote_addr),
                    queued_envelopes,
                    queued_bytes,
                    connects,
                    reconnects: connects.saturating_sub(1),
                    dial_failures: entry.map_or(0, |e| e.dial_failures),
                    last_error: entry.and_then(|e| e.last_error.clone()),
                }
            })
            .collect()
    }

    /// Closes the connections of keys that are no longer admitted and
    /// drops what was queued for them.
    pub(crate) fn set_admitted(self: &Arc<Self>, keys: BTreeSet<PublicKey>) {
        let mut st = self.state.lock();
        let me = self.local.key.clone();
        st.admitted = keys.into_iter().filter(|k| *k != me).collect();
        let State {
            admitted, peers, ..
        } = &mut *st;
        for (key, entry) in peers.iter_mut() {
            if admitted.contains(key) {
                continue;
            }
            if let Some(conn) = entry.conn.take() {
                let _ = conn.stream.shutdown(Shutdown::Both);
                entry.last_error = Some("de-admitted".into());
                bump(&self.stats.dropped_deadmitted, 1);
                warn!(peer = %key, "govchain-net: peer de-admitted; connection closed");
            }
            entry.outbox.set_writer(None);
            entry.outbox.clear();
        }
        self.changed.notify_all();
    }

    /// Makes `conn` the peer's connection, or refuses it. One connection per
    /// peer: when both ends dialed, both keep the connection dialed by the
    /// smaller key; a second connection in the same direction replaces the
    /// first (the peer evidently lost it).
    fn install(&self, key: &PublicKey, conn: ConnInfo) -> Result<Arc<Outbox>, NetError> {
        let mut st = self.state.lock();
        if !self.running() {
            return Err(NetError::Refused {
                reason: "transport shutting down",
            });
        }
        if !st.admitted.contains(key) {
            bump(&self.stats.refused_not_admitted, 1);
            return Err(NetError::NotAdmitted { key: key.clone() });
        }
        let me = &self.local.key;
        let entry = st
            .peers
            .entry(key.clone())
            .or_insert_with(|| PeerEntry::new(None, &self.config));
        if let Some(old) = &entry.conn {
            let keep_new = keeps_new(me, key, old.direction, conn.direction);
            bump(&self.stats.dropped_duplicate, 1);
            if !keep_new {
                debug!(peer = %key, "govchain-net: duplicate connection; keeping the one dialed by the smaller key");
                return Err(NetError::Refused {
                    reason: "duplicate connection (tie-break: the smaller key's dial wins)",
                });
            }
            debug!(peer = %key, "govchain-net: connection replaced");
            let _ = old.stream.shutdown(Shutdown::Both);
        }
        info!(peer = %key, direction = ?conn.direction, remote = ?conn.remote_addr, "govchain-net: connected");
        entry.outbox.set_writer(Some(conn.id));
        entry.conn = Some(conn);
        entry.connects += 1;
        bump(&self.stats.connections, 1);
        self.changed.notify_all();
        Ok(entry.outbox.clone())
    }

    /// Forgets connection `id` of `key` if it is still the current one.
    fn teardown(&self, key: &PublicKey, id: u64, error: Option<&NetError>) {
        {
            let mut st = self.state.lock();
            if let Some(entry) = st.peers.get_mut(key) {
                if entry.conn.as_ref().map(|c| c.id) == Some(id) {
                    entry.conn = None;
                    entry.outbox.set_writer(None);
                    if let Some(e) = error {
                        entry.last_error = Some(e.to_string());
                        let counter = match DropKind::of(e) {
                            DropKind::Oversized => &self.stats.dropped_oversized,
                            DropKind::Garbled => &self.stats.dropped_garbled,
                            DropKind::Timeout => &self.stats.dropped_timeout,
                            DropKind::Closed => &self.stats.dropped_closed,
                        };
                        bump(counter, 1);
                        match DropKind::of(e) {
                            DropKind::Closed => {
                                info!(peer = %key, reason = %e, "govchain-net: connection closed")
                            }
                            _ => {
                                warn!(peer = %key, reason = %e, "govchain-net: connection dropped")
                            }
                        }
                    }
                    self.changed.notify_all();
                }
            }
        }
        self.unregister(id);
    }
}

/// The tie-break between the current connection to `peer` (dialed in
/// direction `old`) and a new one (`new`), seen from `me`: a new connection
/// in the same direction replaces the old (the dialer evidently lost it);
/// otherwise the one dialed by the smaller key stays. Both ends reach the
/// same verdict, so they keep the same connection.
pub(crate) fn keeps_new(me: &PublicKey, peer: &PublicKey, old: Direction, new: Direction) -> bool {
    if old == new {
        return true;
    }
    let dialer_of_new = match new {
        Direction::Outbound => me,
        Direction::Inbound => peer,
    };
    dialer_of_new == std::cmp::min(me, peer)
}

fn prepare(stream: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))
}

/// Runs a finished handshake's connection: installs it, then starts its
/// reader and writer threads.
fn run_connection(
    inner: &Arc<Inner>,
    session: Established,
    stream: TcpStream,
    id: u64,
    direction: Direction,
) -> Result<(), NetError> {
    let key = session.remote.clone();
    let configured = stream
        .set_read_timeout(Some(inner.config.idle_timeout))
        .and_then(|()| stream.set_write_timeout(Some(inner.config.write_timeout)));
    if let Err(source) = configured {
        inner.unregister(id);
        return Err(NetError::Io {
            context: "configuring the socket",
            source,
        });
    }
    let conn = ConnInfo {
        id,
        direction,
        remote_addr: stream.peer_addr().ok(),
        stream,
    };
    let outbox = match inner.install(&key, conn) {
        Ok(outbox) => outbox,
        Err(e) => {
            inner.unregister(id);
            return Err(e);
        }
    };
    let Established {
        remote,
        mut reader,
        mut writer,
    } = session;
    let writer_key = remote.clone();
    let spawned_writer = inner.spawn("govchain-net-write", move |inner| {
        let keepalive = WireMessage::Keepalive.encode();
        let mut batch = Vec::new();
        let error = loop {
            match outbox.next_batch(id, inner.config.keepalive_interval, &mut batch) {
                Next::Retired => break None,
                Next::Idle => {
                    if let Err(e) = writer.write_frame(&keepalive).and_then(|w| {
                        writer.flush()?;
                        Ok(w)
                    }) {
                        break Some(e);
                    }
                }
                Next::Frames => {
                    // Frames are written in order; on an error the failed
                    // frame and the rest are given back (the flush decides
                    // nothing: what reached the socket is the peer's now).
                    let mut frames = std::mem::take(&mut batch).into_iter();
                    let (mut n, mut bytes, mut wire) = (0usize, 0usize, 0usize);
                    let mut failed = None;
                    for frame in frames.by_ref() {
                        match writer.write_frame(&frame) {
                            Ok(w) => {
                                n += 1;
                                bytes += frame.len();
                                wire += w;
                            }
                            Err(e) => {
                                failed = Some((e, frame));
                                break;
                            }
                        }
                    }
                    let (error, unwritten) = match failed {
                        Some((e, frame)) => {
                            let mut unwritten = vec![frame];
                            unwritten.extend(frames);
                            (Some(e), unwritten)
                        }
                        None => (writer.flush().err(), Vec::new()),
                    };
                    outbox.written(n, bytes, unwritten);
                    bump(&inner.stats.frames_out, n as u64);
                    bump(&inner.stats.bytes_out, wire as u64);
                    if let Some(e) = error {
                        break Some(e);
                    }
                }
            }
        };
        // Closing the socket ends the reader, which tears the connection
        // down (and reports `error` if the writer failed first).
        if let Some(e) = &error {
            inner.teardown(&writer_key, id, Some(e));
        } else {
            inner.unregister(id);
        }
    });
    if !spawned_writer {
        inner.teardown(&key, id, None);
        return Ok(());
    }
    let sink = inner.state.lock().sink.clone();
    let spawned_reader = inner.spawn("govchain-net-read", move |inner| {
        let error = loop {
            let (frame, wire) = match reader.read_frame() {
                Ok(read) => read,
                Err(e) => break e,
            };
            bump(&inner.stats.bytes_in, wire as u64);
            match WireMessage::decode(&frame, &inner.limits) {
                Ok(WireMessage::Envelope(envelope)) => {
                    bump(&inner.stats.frames_in, 1);
                    let delivered = sink.as_ref().map(|s| {
                        s.deliver(Inbound {
                            from: remote.clone(),
                            envelope,
                        })
                    });
                    if !matches!(delivered, Some(Ok(()))) {
                        bump(&inner.stats.inbound_dropped, 1);
                    }
                }
                Ok(WireMessage::Keepalive) => {}
                Err(e) => break NetError::from(e),
            }
        };
        inner.teardown(&remote, id, Some(&error));
    });
    if !spawned_reader {
        inner.teardown(&key, id, None);
    }
    Ok(())
}

/// Accepts connections until shutdown. The listener is non-blocking and
/// polled, so shutdown never depends on waking a blocked `accept`.
pub(crate) fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    if let Err(e) = listener.set_nonblocking(true) {
        warn!(error = %e, "govchain-net: cannot make the listener non-blocking");
        return;
    }
    while inner.running() {
        match listener.accept() {
            Ok((stream, addr)) => accept_one(&inner, stream, addr),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                debug!(error = %e, "govchain-net: accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

struct PendingGuard<'a>(&'a AtomicUsize);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_one(inner: &Arc<Inner>, stream: TcpStream, addr: SocketAddr) {
    let pending = inner.pending_handshakes.fetch_add(1, Ordering::SeqCst);
    if pending >= inner.config.max_pending_handshakes {
        inner.pending_handshakes.fetch_sub(1, Ordering::SeqCst);
        bump(&inner.stats.refused_busy, 1);
        warn!(%addr, "govchain-net: too many handshakes in progress; connection refused");
        return;
    }
    let spawned = inner.spawn("govchain-net-accept", move |inner| {
        let _guard = PendingGuard(&inner.pending_handshakes);
        let Some(id) = inner.register(&stream) else {
            return;
        };
        let result = prepare(&stream, inner.config.handshake_timeout)
            .map_err(|source| NetError::Io {
                context: "configuring the socket",
                source,
            })
            .and_then(|()| {
                establish(
                    &stream,
                    &inner.local,
                    Role::Responder,
                    None,
                    &|k| inner.is_admitted(k),
                    inner.config.max_frame_bytes,
                    inner.config.handshake_timeout,
                )
            });
        let result = match result {
            Ok(session) => run_connection(&inner, session, stream, id, Direction::Inbound),
            Err(e) => {
                inner.unregister(id);
                Err(e)
            }
        };
        if let Err(e) = result {
            handshake_failed(&inner, &e, &addr.to_string());
        }
    });
    if !spawned {
        inner.pending_handshakes.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handshake_failed(inner: &Inner, error: &NetError, addr: &str) {
    match error {
        NetError::Refused { .. } => {
            debug!(%addr, reason = %error, "govchain-net: connection not kept");
        }
        NetError::NotAdmitted { key } => {
            bump(&inner.stats.handshake_failures, 1);
            bump(&inner.stats.refused_not_admitted, 1);
            warn!(%addr, peer = %key, "govchain-net: refused a key that is not admitted");
        }
        _ => {
            bump(&inner.stats.handshake_failures, 1);
            warn!(%addr, reason = %error, "govchain-net: handshake failed");
        }
    }
}

/// Backoff delay with "equal jitter": between half and all of `base`,
/// placed by the random value `r`.
fn jitter(base: Duration, r: u64) -> Duration {
    let half = base / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(r % span)
}

/// [`jitter`] with OS randomness (so peers that lost each other at the
/// same moment do not redial in lockstep).
fn jittered(base: Duration) -> Duration {
    jitter(base, rand_core::OsRng.next_u64())
}

/// Keeps one peer connected: dials while it is admitted, addressed and
/// not connected, with exponential backoff (capped, jittered).
fn dial_loop(inner: Arc<Inner>, key: PublicKey) {
    let min = inner.config.backoff_min;
    let max = inner.config.backoff_max;
    let mut backoff = min;
    // The larger key holds its first dial back a little, so that when both
    // ends start together the smaller key's dial (the one the tie-break
    // keeps) usually comes first and no connection is replaced later.
    let mut next_at = if inner.local.key > key {
        Instant::now() + jittered(min)
    } else {
        Instant::now()
    };
    let mut up_since: Option<Instant> = None;
    loop {
        let addr = {
            let mut st = inner.state.lock();
            loop {
                if !inner.running() {
                    return;
                }
                let now = Instant::now();
                let (connected, addr) = match st.peers.get(&key) {
                    Some(entry) => (entry.conn.is_some(), entry.addr),
                    None => return,
                };
                if connected {
                    up_since.get_or_insert(now);
                } else if let Some(since) = up_since.take() {
                    // A connection that lasted resets the backoff; one that
                    // keeps dropping right away backs off like a failed dial.
                    if now.duration_since(since) >= max {
                        backoff = min;
                    }
                    next_at = now + jittered(backoff);
                    backoff = (backoff * 2).min(max);
                }
                let wanted = !connected && st.admitted.contains(&key);
                match addr {
                    Some(addr) if wanted && now >= next_at => break addr,
                    _ => {}
                }
                let wait = if wanted {
                    next_at.saturating_duration_since(now)
                } else {
                    Duration::from_secs(1)
                };
                inner
                    .changed
                    .wait_for(&mut st, wait.max(Duration::from_millis(1)));
            }
        };
        match dial(&inner, &key, addr) {
            Ok(()) => up_since = Some(Instant::now()),
            // Authenticated, but the peer's own dial won the tie-break (or
            // we are shutting down): not a failure.
            Err(NetError::Refused { .. }) => {}
            Err(e) => {
                if matches!(e, NetError::Io { context, .. } if context == CONNECTING) {
                    // The peer is down or unreachable: expected while it
                    // restarts; counted per peer, logged quietly.
                    debug!(peer = %key, %addr, reason = %e, "govchain-net: dial failed");
                } else {
                    handshake_failed(&inner, &e, &addr.to_string());
                }
                if let Some(entry) = inner.state.lock().peers.get_mut(&key) {
                    entry.dial_failures += 1;
                    entry.last_error = Some(e.to_string());
                }
                next_at = Instant::now() + jittered(backoff);
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

/// The context of a failed TCP connect (not a handshake failure).
const CONNECTING: &str = "connecting";

fn dial(inner: &Arc<Inner>, key: &PublicKey, addr: SocketAddr) -> Result<(), NetError> {
    let stream =
        TcpStream::connect_timeout(&addr, inner.config.dial_timeout).map_err(|source| {
            NetError::Io {
                context: CONNECTING,
                source,
            }
        })?;
    let id = inner.register(&stream).ok_or(NetError::Refused {
        reason: "transport shutting down",
    })?;
    let result = prepare(&stream, inner.config.handshake_timeout)
        .map_err(|source| NetError::Io {
            context: "configuring the socket",
            source,
        })
        .and_then(|()| {
            establish(
                &stream,
                &inner.local,
                Role::Initiator,
                Some(key),
                &|k| inner.is_admitted(k),
                inner.config.max_frame_bytes,
                inner.config.handshake_timeout,
            )
        });
    match result {
        Ok(session) => run_connection(inner, session, stream, id, Direction::Outbound),
        Err(e) => {
            inner.unregister(id);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_is_bounded_in_envelopes_and_bytes() {
        let outbox = Outbox::new(3, 100);
        assert!(matches!(outbox.push(vec![0; 10]), Err(PushError::NoWriter)));
        outbox.set_writer(Some(1));
        assert!(outbox.push(vec![0; 60]).is_ok());
        assert!(matches!(outbox.push(vec![0; 41]), Err(PushError::Full)));
        assert!(outbox.push(vec![0; 40]).is_ok());
        assert!(matches!(outbox.push(vec![]), Ok(())));
        assert!(matches!(outbox.push(vec![]), Err(PushError::Full)));
        assert_eq!(outbox.usage(), (3, 100));
        // Frames taken by the writer stay counted until written.
        let mut batch = Vec::new();
        assert!(matches!(
            outbox.next_batch(1, Duration::from_millis(1), &mut batch),
            Next::Frames
        ));
        assert_eq!(batch.len(), 3);
        assert_eq!(outbox.usage(), (3, 100));
        // One written, two given back to the queue's front, in order.
        let mut taken = std::mem::take(&mut batch).into_iter();
        let first = taken.next().unwrap();
        outbox.written(1, first.len(), taken.collect());
        assert_eq!(outbox.usage(), (2, 40));
        assert!(matches!(
            outbox.next_batch(1, Duration::from_millis(1), &mut batch),
            Next::Frames
        ));
        assert_eq!(batch.iter().map(Vec::len).collect::<Vec<_>>(), vec![40, 0]);
        outbox.written(2, 40, Vec::new());
        assert_eq!(outbox.usage(), (0, 0));
        assert!(matches!(
            outbox.next_batch(1, Duration::from_millis(1), &mut batch),
            Next::Idle
        ));
        outbox.set_writer(Some(2));
        assert!(matches!(
            outbox.next_batch(1, Duration::from_millis(1), &mut batch),
            Next::Retired
        ));
        // Without a writer, frames given back are dropped.
        assert!(outbox.push(vec![1; 10]).is_ok());
        batch.clear();
        assert!(matches!(
            outbox.next_batch(2, Duration::from_millis(1), &mut batch),
            Next::Frames
        ));
        outbox.set_writer(None);
        outbox.written(0, 0, std::mem::take(&mut batch));
        assert_eq!(outbox.usage(), (0, 0));
    }

    #[test]
    fn both_ends_keep_the_same_connection() {
        use govchain_core::crypto::{SecretKey, Signer};
        let a = SecretKey::from_seed(&[1; 32]).public_key();
        let b = SecretKey::from_seed(&[2; 32]).public_key();
        let flip = |d: Direction| match d {
            Direction::Outbound => Direction::Inbound,
            Direction::Inbound => Direction::Outbound,
        };
        for (me, peer) in [(&a, &b), (&b, &a)] {
            for old in [Direction::Outbound, Direction::Inbound] {
                for new in [Direction::Outbound, Direction::Inbound] {
                    // The peer sees each connection in the other direction.
                    assert_eq!(
                        keeps_new(me, peer, old, new),
                        keeps_new(peer, me, flip(old), flip(new))
                    );
                }
            }
        }
        // When both dialed, the smaller key's dial stays on both ends.
        let (small, large) = if a < b { (&a, &b) } else { (&b, &a) };
        assert!(keeps_new(
            small,
            large,
            Direction::Inbound,
            Direction::Outbound
        ));
        assert!(!keeps_new(
            small,
            large,
            Direction::Outbound,
            Direction::Inbound
        ));
        assert!(keeps_new(
            large,
            small,
            Direction::Outbound,
            Direction::Inbound
        ));
        assert!(!keeps_new(
            large,
            small,
            Direction::Inbound,
            Direction::Outbound
        ));
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        println!("seed: {seed}");
        let mut x = seed;
        for _ in 0..1_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let d = jitter(Duration::from_millis(100), x);
            assert!(d >= Duration::from_millis(50) && d < Duration::from_millis(100));
        }
        assert_eq!(
            jitter(Duration::from_millis(100), 0),
            Duration::from_millis(50)
        );
        assert_eq!(jitter(Duration::ZERO, u64::MAX), Duration::ZERO);
        assert!(jittered(Duration::from_secs(1)) >= Duration::from_millis(500));
    }
}
