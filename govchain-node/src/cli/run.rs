//! `govchain run`: one department node with durable storage, the TCP
//! transport and the HTTP API, until SIGINT or SIGTERM.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use govchain_core::crypto::{PublicKey, Signer};
use govchain_core::hash::Hash;

use super::CliError;
use crate::api::{Api, ApiConfig, PeerInfo, PeerSource};
use crate::config::NodeSettings;
use crate::net::{TcpConfig, TcpTransport};
use crate::node::Node;

/// The TCP transport's view of the peers, for the API.
struct TcpPeers(Arc<TcpTransport>);

impl PeerSource for TcpPeers {
    fn peers(&self) -> Vec<PeerInfo> {
        self.0
            .peers()
            .into_iter()
            .map(|p| PeerInfo {
                key: p.key,
                address: p.addr.map(|a| a.to_string()),
                connected: p.connected,
            })
            .collect()
    }
}

fn run_err(reason: impl ToString) -> CliError {
    CliError::Run {
        reason: reason.to_string(),
    }
}

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// The key warning is repeated at every progress line from this many
/// blocks before the key leaves its window (the node's default).
const KEY_WARNING_BLOCKS: u64 = 1_000;

pub(super) fn run(config_path: &Path) -> Result<(), CliError> {
    let settings = NodeSettings::load(config_path)?;
    let key = settings.load_key()?;
    let signer: Arc<dyn Signer> = key;
    let me = signer.public_key();
    let suite_keys: Vec<Arc<dyn Signer>> = settings
        .load_suite_keys()?
        .into_iter()
        .map(|k| k as Arc<dyn Signer>)
        .collect();
    for k in &suite_keys {
        tracing::info!(key = %crate::config::public_key_hex(&k.public_key()), "suite key loaded");
    }
    let mut node_config = settings.durable_node_config_with_keys(signer.clone(), suite_keys)?;
    node_config.rotation_keys = settings
        .load_rotation_keys()?
        .into_iter()
        .map(|k| k as Arc<dyn Signer>)
        .collect();
    for k in &node_config.rotation_keys {
        tracing::info!(key = %crate::config::public_key_hex(&k.public_key()), "rotation key loaded");
    }
    tracing::info!(
        name = %settings.name,
        key = %crate::config::public_key_hex(&me),
        data_dir = %settings.data_dir.display(),
        chains = ?node_config.chains.iter().map(|c| c.chain_id.to_string()).collect::<Vec<_>>(),
        "starting node"
    );
    // The network id bound into every handshake: the genesis file's hash,
    // so nodes of another network (or another genesis) never connect.
    let id_bytes: [u8; 32] = hex::decode(&settings.genesis.hash)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| run_err("genesis hash is not 32 bytes of hex"))?;
    let mut tcp = TcpConfig::new(settings.p2p_listen, Hash::from_bytes(id_bytes));
    tcp.peers = settings.peer_addresses();
    let genesis_admitted: BTreeSet<PublicKey> = settings
        .genesis
        .departments
        .iter()
        .map(|(_, _, k)| k.clone())
        .filter(|k| *k != me)
        .collect();
    tcp.admitted = genesis_admitted.clone();
    let transport = TcpTransport::bind(tcp, signer.clone()).map_err(run_err)?;
    tracing::info!(p2p = %transport.local_addr(), peers = settings.peers.len(), "transport bound");
    let node = match Node::start(node_config, transport.clone()) {
        Ok(node) => Arc::new(node),
        Err(e) => {
            transport.shutdown();
            return Err(e.into());
        }
    };
    transport.start(node.inbox());
    let api = match Api::start(
        settings.api_listen,
        node.clone(),
        ApiConfig {
            workers: settings.api.workers,
            max_body_bytes: settings.api.max_body_bytes,
            peers: Some(Arc::new(TcpPeers(transport.clone()))),
            ..ApiConfig::default()
        },
    ) {
        Ok(api) => api,
        Err(e) => {
            transport.shutdown();
            return Err(run_err(e));
        }
    };
    tracing::info!(api = %api.local_addr(), "node running; stop with Ctrl-C or SIGTERM");

    let (stop_tx, stop_rx) = std::sync::mpsc::sync_channel::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .map_err(run_err)?;
    let main = settings.genesis.main.clone();
    let mut admitted = genesis_admitted;
    let mut last_progress = std::time::Instant::now();
    let mut logged_warnings: Vec<String> = Vec::new();
    let mut outcome = Ok(());
    loop {
        match stop_rx.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                tracing::info!("signal received; stopping");
                break;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let status = node.status();
        if let Some(fatal) = status.fatal {
            tracing::error!(%fatal, "node stopped on an error");
            outcome = Err(run_err(format!("node stopped: {fatal}")));
            break;
        }
        // Exactly the departments of the main chain's registry may connect
        // (with a rotating key's old key while it still signs:
        // `admitted_keys`): one registered since genesis is admitted (its
        // address is not on chain: it dials us, or add it under [[peers]]),
        // and one no longer registered is disconnected.
        let height = node.height(&main).unwrap_or_default();
        if let Ok(Ok(keys)) = node.read_state(&main, |s| {
            crate::governance::admitted_keys(s, &main, height)
        }) {
            let now: BTreeSet<PublicKey> = keys.into_iter().filter(|k| *k != me).collect();
            if now != admitted {
                tracing::info!(
                    departments = now.len(),
                    "admitted departments changed in the registry"
                );
                transport.set_admitted(now.clone());
                admitted = now;
            }
        }
        // The node's warnings (a key leaving its window, a refused sync
        // block, ...) are logged once each as they appear.
        for w in status
            .warnings
            .iter()
            .filter(|w| !logged_warnings.contains(*w))
        {
            tracing::warn!(warning = %w, "node warning");
        }
        logged_warnings = status.warnings.clone();
        for c in &status.chains {
            if let (Some(left), Some(w)) = (c.key_blocks_left, c.key_window) {
                if last_progress.elapsed() >= PROGRESS_EVERY && left <= KEY_WARNING_BLOCKS {
                    tracing::warn!(
                        chain = %c.chain,
                        blocks_left = left,
                        expires_at = ?w.expires_at.map(|h| h.get()),
                        compromised_from = ?w.revoked_from.map(|h| h.get()),
                        "this node's key is leaving its window"
                    );
                }
            }
            if let Some(p) = c.sync {
                tracing::info!(
                    chain = %c.chain,
                    height = c.height.get(),
                    target = p.target.get(),
                    remaining = p.remaining,
                    blocks_per_s = p.blocks_per_s,
                    "block sync"
                );
            }
        }
        if last_progress.elapsed() < PROGRESS_EVERY {
            continue;
        }
        last_progress = std::time::Instant::now();
        let connected = transport.peers().iter().filter(|p| p.connected).count();
        for c in &status.chains {
            tracing::info!(
                chain = %c.chain,
                height = c.height.get(),
                mempool = c.mempool_txs,
                committed_txs = c.counters.committed_txs,
                peers_connected = connected,
                "progress"
            );
        }
    }
    api.shutdown();
    let stopped = match Arc::try_unwrap(node) {
        Ok(node) => node.stop().map_err(CliError::from),
        Err(_) => Err(run_err("the node is still shared; not stopped cleanly")),
    };
    transport.shutdown();
    tracing::info!("stopped");
    outcome.and(stopped)
}
