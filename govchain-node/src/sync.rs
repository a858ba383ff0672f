//! Block sync: how a node that was down, or is new, catches up on a
//! Tendermint chain from its peers' block stores, in batches, before it
//! joins consensus again.
//!
//! # Protocol
//! - Every node sends [`Envelope::Status`] with its committed height to the
//!   chain's peers every [`SyncConfig::status_interval_ms`].
//! - A node more than [`SyncConfig::lag_blocks`] behind the highest height
//!   it heard of asks that peer for a batch with [`Envelope::SyncRequest`]
//!   (one request in flight per chain, re-sent to another peer after
//!   [`SyncConfig::request_timeout_ms`]).
//! - The peer answers from its block store with [`Envelope::SyncBlocks`]:
//!   at most [`SyncConfig::batch_blocks`] blocks and about
//!   [`SyncConfig::batch_bytes`] bytes, each with its commit certificate.
//!   Requests are answered only for the chain's peers and at most
//!   [`SyncConfig::max_served_per_s`] times per second per peer, so a peer
//!   cannot turn sync into a read amplifier.
//! - The next batch is requested as soon as one arrives, before it is
//!   applied, so the peer's reads overlap this node's execution.
//!
//! # What is verified
//! Each block goes through [`Consensus::sync_decided`](govchain_consensus::Consensus::sync_decided): the engine checks
//! the commit certificate against the validator set scheduled for that
//! height (more than 2/3 of the power signed this block hash) and the
//! block's structure (chain, height, parent hash, transaction root and
//! count, validator-set hashes, time). The node then executes it and checks
//! the header's state root, exactly as for a block it decided itself, and
//! persists it in the usual write order. Because the certificate attests
//! that a quorum validated the block (signatures, nonces, `check_tx`), the
//! transactions' signatures are **not** verified again: that is what makes
//! sync several times faster than live consensus. Blocks are applied one at
//! a time, so a main-chain validator change scheduled by block `m` is known
//! before the certificate of block `m + 3` is checked.
//!
//! A response that does not decode or fails verification is dropped at that
//! block and counted in [`SyncCounters::bad_blocks`]. The sender's claimed
//! height is forgotten and the sender is banned from serving this node for
//! a while (5 s, doubled by each further failure up to 5 min; an
//! unanswered request counts as a failure too), during which its height
//! announcements are ignored ([`SyncCounters::ignored_announcements`]).
//! The next request goes to the peer with the highest height then known, so
//! a peer that keeps claiming a height it cannot serve costs this node one
//! request per ban instead of one per announcement.
//! Raft chains catch up by log replication instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use govchain_consensus::DecidedBlock;
use govchain_core::codec::Encode;
use govchain_core::crypto::PublicKey;
use govchain_core::types::Height;

use crate::error::NodeError;
use crate::node::Worker;
use crate::transport::Envelope;
use crate::EngineKind;

/// Block-sync settings of one chain (local to each node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Most blocks asked for, and served, per batch.
    pub batch_blocks: u32,
    /// A served batch stops after the block that reaches this many bytes
    /// (it always holds at least one block).
    pub batch_bytes: usize,
    /// Sync starts when a peer is more than this many blocks ahead; a
    /// smaller lag is left to the engine's own catch-up.
    pub lag_blocks: u64,
    /// A request unanswered for this long is abandoned.
    pub request_timeout_ms: u64,
    /// How often this node announces its height to the chain's peers.
    pub status_interval_ms: u64,
    /// Most sync requests answered per second for one peer.
    pub max_served_per_s: u32,
    /// Store synced blocks in coalesced runs, one
    /// [`BlockStore::append_coalesced`](govchain_storage::BlockStore::append_coalesced)
    /// each, when the chain keeps only the latest
    /// [`retain_state_versions`](crate::ChainSpec::retain_state_versions)
    /// and the blocks are at least that far below the peer's tip: their
    /// state versions would be pruned before this node reached the tip, so
    /// they are never written (every block is still executed, its state
    /// root checked, and the block stored). The state versions below a
    /// run's last block become unreadable when it is stored. A run holds
    /// at most half the
    /// [`retain_decided_blocks`](crate::ChainSpec::retain_decided_blocks)
    /// and is stored on a writer thread while the next one is executed, so
    /// the engine's log can re-apply the two a crash may interrupt (so a
    /// chain that keeps fewer than 2 decided blocks does not coalesce). The
    /// runs are stored whenever sync pauses (no batch on its way) and
    /// before a block is applied any other way; until then the node's
    /// height is ahead of its store's.
    pub coalesce: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            batch_blocks: 64,
            batch_bytes: 4 * 1024 * 1024,
            lag_blocks: 2,
            request_timeout_ms: 3_000,
            status_interval_ms: 500,
            max_served_per_s: 20,
            coalesce: true,
        }
    }
}

impl SyncConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |reason: &str| {
            Err(NodeError::Config {
                field: "sync",
                reason: reason.to_string(),
            })
        };
        if self.batch_blocks == 0 || self.batch_bytes == 0 {
            return bad("batch_blocks and batch_bytes must be positive");
        }
        if self.request_timeout_ms == 0 || self.status_interval_ms == 0 {
            return bad("request_timeout_ms and status_interval_ms must be positive");
        }
        if self.max_served_per_s == 0 {
            return bad("max_served_per_s must be positive");
        }
        Ok(())
    }
}

/// Progress of a sync in course, in a chain's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// The height being synced to (the highest a peer reported).
    pub target: Height,
    /// Blocks still to apply.
    pub remaining: u64,
    /// Blocks applied by this sync so far.
    pub applied: u64,
    /// Blocks applied per second since this sync started.
    pub blocks_per_s: u64,
}

/// Block-sync counters of one chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Blocks applied from sync responses.
    pub synced_blocks: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests that timed out.
    pub requests_timed_out: u64,
    /// Requests answered for peers.
    pub requests_served: u64,
    /// Requests refused (not a peer of the chain, or over the rate limit).
    pub requests_refused: u64,
    /// Synced blocks refused (undecodable, out of order, or failing
    /// verification).
    pub bad_blocks: u64,
    /// Times a peer was banned from serving this node's sync (a bad block
    /// or an unanswered request).
    pub peer_bans: u64,
    /// Height announcements ignored because their sender was banned.
    pub ignored_announcements: u64,
}

/// The first ban of a peer that failed to serve sync; each further failure
/// doubles it, up to [`MAX_BAN`]. A peer that keeps announcing a height it
/// cannot serve is therefore asked less and less often, instead of after
/// every announcement.
const FIRST_BAN: Duration = Duration::from_secs(5);
/// The longest ban.
const MAX_BAN: Duration = Duration::from_secs(300);

struct Ban {
    until: Instant,
    strikes: u32,
}

struct InFlight {
    peer: PublicKey,
    sent: Instant,
}

struct Session {
    started: Instant,
    applied: u64,
}

/// One chain's sync state on one node.
pub(crate) struct SyncState {
    config: SyncConfig,
    peer_heights: BTreeMap<PublicKey, Height>,
    in_flight: Option<InFlight>,
    last_status: Option<Instant>,
    session: Option<Session>,
    /// Per peer: the start of the current one-second window and requests
    /// served in it.
    served: BTreeMap<PublicKey, (Instant, u32)>,
    /// Peers that failed to serve, with their ban (kept after it ends, so
    /// the next failure bans longer; bounded by the chain's peers).
    bans: BTreeMap<PublicKey, Ban>,
    pub(crate) counters: SyncCounters,
}

impl SyncState {
    pub(crate) fn new(config: SyncConfig) -> Self {
        SyncState {
            config,
            peer_heights: BTreeMap::new(),
            in_flight: None,
            last_status: None,
            session: None,
            served: BTreeMap::new(),
            bans: BTreeMap::new(),
            counters: SyncCounters::default(),
        }
    }

    /// Forgets `peer`'s claimed height and bans it from serving this node
    /// for a while: [`FIRST_BAN`], doubled by each further failure.
    fn strike(&mut self, peer: &PublicKey, now: Instant) {
        self.peer_heights.remove(peer);
        // A pipelined request to it is abandoned, so another peer is asked
        // at the next tick instead of after a timeout.
        if self.in_flight.as_ref().is_some_and(|f| &f.peer == peer) {
            self.in_flight = None;
        }
        let ban = self.bans.entry(peer.clone()).or_insert(Ban {
            until: now,
            strikes: 0,
        });
        let factor = 1u32 << ban.strikes.min(16);
        ban.until = now + FIRST_BAN.saturating_mul(factor).min(MAX_BAN);
        ban.strikes = ban.strikes.saturating_add(1);
        self.counters.peer_bans += 1;
    }

    fn is_banned(&self, peer: &PublicKey, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|b| b.until > now)
    }

    fn target(&self) -> Option<(&PublicKey, Height)> {
        self.peer_heights
            .iter()
            .max_by_key(|(k, h)| (**h, std::cmp::Reverse(*k)))
            .map(|(k, h)| (k, *h))
    }

    /// Progress of the sync in course, if any.
    pub(crate) fn progress(&self, latest: Height) -> Option<SyncProgress> {
        let session = self.session.as_ref()?;
        let (_, target) = self.target()?;
        let secs = session.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            (session.applied as f64 / secs) as u64
        } else {
            0
        };
        Some(SyncProgress {
            target,
            remaining: target.get().saturating_sub(latest.get()),
            applied: session.applied,
            blocks_per_s: rate,
        })
    }
}

impl Worker {
    fn syncs(&self, i: usize) -> bool {
        self.chains[i].spec.engine == EngineKind::Bft
    }

    /// A peer's announced height.
    pub(crate) fn on_sync_status(&mut self, i: usize, from: PublicKey, height: Height) {
        if !self.syncs(i) || !self.chains[i].spec.peers.contains(&from) {
            return;
        }
        let s = &mut self.chains[i].sync;
        if s.is_banned(&from, Instant::now()) {
            s.counters.ignored_announcements += 1;
            return;
        }
        s.peer_heights.insert(from, height);
    }

    /// Answers a peer's request from the block store.
    pub(crate) fn serve_sync(
        &mut self,
        i: usize,
        to: PublicKey,
        from: Height,
        max_blocks: u32,
    ) -> Result<(), NodeError> {
        if !self.syncs(i) {
            return Ok(());
        }
        let c = &mut self.chains[i];
        let limit = c.sync.config.max_served_per_s;
        let allowed = c.spec.peers.contains(&to) && {
            let now = Instant::now();
            let window = c.sync.served.entry(to.clone()).or_insert((now, 0));
            if now.duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            window.1 += 1;
            window.1 <= limit
        };
        if !allowed {
            c.sync.counters.requests_refused += 1;
            return Ok(());
        }
        let tip = c.latest_height()?;
        // At least one block (a request for none is answered with one: a
        // zero from the network must not underflow).
        let max_blocks = u64::from(max_blocks.clamp(1, c.sync.config.batch_blocks.max(1)));
        let last = tip.get().min(from.get().saturating_add(max_blocks - 1));
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        for h in from.get().max(1)..=last {
            if bytes >= c.sync.config.batch_bytes {
                break;
            }
            let Some(stored) = c.stored_block(Height::new(h))? else {
                break; // pruned below, or not stored
            };
            let encoded = DecidedBlock {
                block: stored.block,
                certificate: stored.certificate,
            }
            .to_bytes();
            bytes += encoded.len();
            blocks.push(encoded);
        }
        c.sync.counters.requests_served += 1;
        let chain = c.chain_id().clone();
        let _ = self
            .transport
            .send(&to, Envelope::SyncBlocks { chain, tip, blocks });
        Ok(())
    }

    /// Applies a batch of synced blocks, asking for the next one first.
    pub(crate) fn on_sync_blocks(
        &mut self,
        i: usize,
        from: PublicKey,
        tip: Height,
        blocks: Vec<Vec<u8>>,
    ) -> Result<(), NodeError> {
        if !self.syncs(i) {
            return Ok(());
        }
        let expected = self.chains[i]
            .sync
            .in_flight
            .as_ref()
            .is_some_and(|f| f.peer == from);
        if !expected {
            return Ok(()); // unsolicited or late: ignored
        }
        let s = &mut self.chains[i].sync;
        s.in_flight = None;
        let known = s.peer_heights.entry(from.clone()).or_insert(tip);
        *known = (*known).max(tip);
        let max_len = self.chains[i].max_message_len();
        let mut decoded = Vec::with_capacity(blocks.len());
        for bytes in &blocks {
            match govchain_core::codec::decode_exact::<DecidedBlock>(bytes, max_len) {
                Ok(d) => decoded.push(d),
                Err(e) => {
                    self.chains[i].sync.strike(&from, Instant::now());
                    self.chains[i].sync.counters.bad_blocks += 1;
                    self.note(format!(
                        "sync of {} from {from}: undecodable block: {e}",
                        self.chains[i].chain_id()
                    ));
                    break;
                }
            }
        }
        // Pipelining: ask for the batch after this one before applying it.
        if let Some(last) = decoded.last() {
            let next = last.block.header.height.get().saturating_add(1);
            if tip.get() >= next {
                self.request_blocks(i, from.clone(), Height::new(next));
            }
        }
        // Blocks at least `retain` below the peer's tip: their state
        // versions would be pruned before this node reaches the tip.
        let spec = &self.chains[i].spec;
        let coalesce_to = match spec.retain_state_versions {
            Some(retain) if spec.sync.coalesce && spec.retain_decided_blocks >= 2 => {
                tip.get().checked_sub(retain)
            }
            _ => None,
        };
        self.chains[i].applying_synced = true;
        let applied = self.apply_synced(i, &from, decoded, coalesce_to);
        self.chains[i].applying_synced = false;
        // While the next batch is on its way, the run goes on (it is
        // handed to the writer when it is full); otherwise every run is
        // stored now. What was applied before a failure was verified and
        // executed: it is stored too.
        let stored = if applied.is_ok() && self.chains[i].sync.in_flight.is_some() {
            Ok(())
        } else {
            self.chains[i].store_coalesced()
        };
        applied?;
        stored?;
        // The next batch may have waited in the inbox while this one was
        // applied: the peer's time to answer starts now.
        if let Some(f) = &mut self.chains[i].sync.in_flight {
            f.sent = Instant::now();
        }
        Ok(())
    }

    /// Applies decoded synced blocks in order, collecting the ones up to
    /// `coalesce_to` into a coalesced run; stops at the first refused one.
    fn apply_synced(
        &mut self,
        i: usize,
        from: &PublicKey,
        decoded: Vec<DecidedBlock>,
        coalesce_to: Option<u64>,
    ) -> Result<(), NodeError> {
        for d in decoded {
            let height = d.block.header.height;
            if height <= self.chains[i].latest_height()? {
                continue;
            }
            if coalesce_to.is_some_and(|to| height.get() <= to) {
                // The two runs that may be unstored (one being written,
                // one collected) together hold at most the decided blocks
                // the engine keeps, so a crash before they are stored
                // loses nothing (see `hand_off_coalesced`).
                let cap = (self.chains[i].spec.retain_decided_blocks / 2).max(1);
                if self.chains[i].coalesced_pending() as u64 >= cap {
                    self.chains[i].hand_off_coalesced()?;
                }
                self.chains[i].begin_coalescing()?;
            } else if self.chains[i].is_coalescing() {
                self.chains[i].store_coalesced()?;
            }
            match self.chains[i].engine().sync_decided(d) {
                Ok(fx) => {
                    self.process_all(vec![(i, fx)])?;
                    let s = &mut self.chains[i].sync;
                    s.counters.synced_blocks += 1;
                    if let Some(session) = &mut s.session {
                        session.applied += 1;
                    }
                    self.refresh_status()?;
                }
                Err(e) => {
                    // Its claimed height is not believed any more, and it
                    // is not asked again for a while.
                    self.chains[i].sync.strike(from, Instant::now());
                    self.chains[i].sync.counters.bad_blocks += 1;
                    self.note(format!(
                        "sync of {} from {from}: block {height} refused: {e}",
                        self.chains[i].chain_id()
                    ));
                    break;
                }
            }
        }
        Ok(())
    }

    fn request_blocks(&mut self, i: usize, peer: PublicKey, from: Height) {
        let c = &mut self.chains[i];
        let envelope = Envelope::SyncRequest {
            chain: c.chain_id().clone(),
            from,
            max_blocks: c.sync.config.batch_blocks,
        };
        c.sync.counters.requests_sent += 1;
        c.sync.in_flight = Some(InFlight {
            peer: peer.clone(),
            sent: Instant::now(),
        });
        if c.sync.session.is_none() {
            c.sync.session = Some(Session {
                started: Instant::now(),
                applied: 0,
            });
        }
        let _ = self.transport.send(&peer, envelope);
    }

    /// Periodic work: announce the height, expire a lost request, and start
    /// or finish a sync.
    pub(crate) fn sync_tick(&mut self, i: usize) -> Result<(), NodeError> {
        if !self.syncs(i) {
            return Ok(());
        }
        let latest = self.chains[i].latest_height()?;
        let now = Instant::now();
        let c = &mut self.chains[i];
        let interval = Duration::from_millis(c.sync.config.status_interval_ms);
        if c.sync
            .last_status
            .is_none_or(|t| now.duration_since(t) >= interval)
        {
            c.sync.last_status = Some(now);
            let chain = c.chain_id().clone();
            for peer in c.spec.peers.iter().filter(|p| **p != self.me) {
                let _ = self.transport.send(
                    peer,
                    Envelope::Status {
                        chain: chain.clone(),
                        height: latest,
                    },
                );
            }
        }
        if c.is_coalescing() && c.sync.in_flight.is_none() {
            // No batch on its way: store the runs now.
            c.store_coalesced()?;
        }
        let timeout = Duration::from_millis(c.sync.config.request_timeout_ms);
        if let Some(f) = &c.sync.in_flight {
            if now.duration_since(f.sent) >= timeout {
                // Forget the silent peer's height, and ban it for a while,
                // so another one is asked.
                let peer = f.peer.clone();
                c.sync.strike(&peer, now);
                c.sync.in_flight = None;
                c.sync.counters.requests_timed_out += 1;
            }
        }
        let lag = c.sync.config.lag_blocks;
        let behind = c
            .sync
            .target()
            .filter(|(_, h)| h.get() > latest.get().saturating_add(lag))
            .map(|(k, _)| k.clone());
        match behind {
            Some(peer) if c.sync.in_flight.is_none() => {
                let from = Height::new(latest.get().saturating_add(1));
                self.request_blocks(i, peer, from);
            }
            Some(_) => {}
            None => {
                let caught_up = c.sync.target().is_none_or(|(_, h)| h.get() <= latest.get());
                if caught_up && c.sync.in_flight.is_none() {
                    c.sync.session = None;
                }
            }
        }
        Ok(())
    }
}
