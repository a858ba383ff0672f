//! `govchain inspect`: offline verification of a node's data directory.
//!
//! For every chain store under the directory (`<data_dir>/<chain>/`), every
//! stored block is read and checked:
//! - `read`: the block's whole log frame read back (both frame checksums,
//!   decoding of block, certificate and the state batch it carries);
//! - `chain`, `height`: the header names this chain and height;
//! - `parent`: the parent hash is the previous block's hash ([`Hash::ZERO`]
//!   at height 1);
//! - `time`: block time never goes backwards;
//! - `tx-root`: the transaction root and count match the body;
//! - `history-root`: the history root commits to blocks `1..h` (when the
//!   store starts at height 1);
//! - `state-root`: the stored state version `h` has the header's state root
//!   (when that version is still readable);
//! - `validator-set`, `next-validator-set`: the header names the validator
//!   sets in force at `h` and `h + 1`;
//! - `certificate`: the commit certificate commits the block under that set
//!   (BFT: more than 2/3 of the power; Raft: leader plus strict majority).
//!
//! Validator sets and engines come from the main chain's governance state
//! when the directory holds the main chain (every change governance
//! scheduled is then known), else from the genesis of `--config`. With
//! both, the governance genesis sets must equal the config's.
//!
//! Opening a store runs its crash recovery (a torn tail after the last
//! indexed frame is truncated, as at node start); the stores are locked
//! while inspected, so a running node's directory is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use govchain_core::app::TreeStateView;
use govchain_core::codec::Encode;
use govchain_core::hash::Hash;
use govchain_core::merkle::HistoryTree;
use govchain_core::types::{ChainId, Height, Timestamp};
use govchain_core::validator::ValidatorSet;
use govchain_storage::{BlockStore, DurableConfig, DurableStore, StateStore};

use crate::chain::EngineKind;
use crate::config::Genesis;
use crate::governance;

/// Why an inspection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The directory could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No chain store under the directory.
    #[error("{path}: no chain store found (expected <data_dir>/<chain>/MANIFEST)")]
    Empty {
        /// The directory.
        path: PathBuf,
    },
    /// A chain store could not be opened (recovery found corruption, the
    /// directory is locked by a running node, …).
    #[error("chain {chain}: check open failed: {reason}")]
    Open {
        /// The chain.
        chain: String,
        /// Why.
        reason: String,
    },
    /// No validator set or engine is known for a chain.
    #[error("chain {chain}: {reason}")]
    NoTrust {
        /// The chain.
        chain: ChainId,
        /// Why.
        reason: String,
    },
    /// A block failed a check.
    #[error("chain {chain} height {height}: check {check} failed: {reason}")]
    Check {
        /// The chain.
        chain: ChainId,
        /// The height.
        height: Height,
        /// The check's name (see the module docs).
        check: &'static str,
        /// What was found.
        reason: String,
    },
}

/// What was verified of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain.
    pub chain: ChainId,
    /// Its engine.
    pub engine: EngineKind,
    /// The lowest stored height (`None`: empty).
    pub oldest: Option<Height>,
    /// The latest height.
    pub latest: Height,
    /// Blocks checked.
    pub blocks: u64,
    /// Transactions in them.
    pub txs: u64,
    /// Bytes of the canonical blocks and certificates.
    pub bytes: u64,
    /// Time of the first and last checked block.
    pub time_range: Option<(Timestamp, Timestamp)>,
    /// Blocks whose state root was checked against stored state.
    pub state_roots_checked: u64,
    /// Whether history roots were checked (the store starts at height 1).
    pub history_checked: bool,
    /// Distinct validator sets that signed.
    pub validator_sets: usize,
}

struct Trust {
    engine: EngineKind,
    schedule: BTreeMap<Height, ValidatorSet>,
}

fn set_at(schedule: &BTreeMap<Height, ValidatorSet>, h: Height) -> Option<&ValidatorSet> {
    schedule.range(..=h).next_back().map(|(_, s)| s)
}

/// Opens every chain store under `dir`.
fn open_stores(dir: &Path) -> Result<Vec<(ChainId, DurableStore)>, InspectError> {
    let io = |source| InspectError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| {
            e.path()
                .join(govchain_storage::durable::MANIFEST_FILE)
                .is_file()
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let chain = ChainId::new(name.clone()).map_err(|e| InspectError::Open {
            chain: name.clone(),
            reason: e.to_string(),
        })?;
        // Every block is read and checked below (naming its height), so
        // the open-time full log scan is not needed.
        let config = DurableConfig::default();
        let store = DurableStore::open(dir.join(&name), chain.clone(), config).map_err(|e| {
            InspectError::Open {
                chain: name.clone(),
                reason: e.to_string(),
            }
        })?;
        out.push((chain, store));
    }
    if out.is_empty() {
        return Err(InspectError::Empty {
            path: dir.to_owned(),
        });
    }
    Ok(out)
}

/// The suite named by the latest header of `store` (ed25519-blake3 when it
/// holds no block).
fn store_suite(store: &DurableStore) -> govchain_core::crypto::CryptoSuite {
    store
        .latest_height()
        .ok()
        .and_then(|h| store.block(h).ok().flatten())
        .map(|b| b.block.header.suite)
        .unwrap_or_default()
}

/// What the main chain's governance state says about every chain.
fn governance_trust(
    stores: &[(ChainId, DurableStore)],
) -> Result<Option<BTreeMap<ChainId, Trust>>, InspectError> {
    for (chain, store) in stores {
        let latest = store.latest_version().map_err(|e| InspectError::Open {
            chain: chain.to_string(),
            reason: e.to_string(),
        })?;
        let Some(version) = latest else { continue };
        // The chain's suite is recorded in its headers; a store with no
        // block yet is read as ed25519-blake3 (its genesis state alone does
        // not record the suite).
        let hf = store_suite(store).hash_function();
        let view = TreeStateView::new(store, hf, Some(version));
        let no_trust = |e: governance::StateReadError| InspectError::NoTrust {
            chain: chain.clone(),
            reason: format!("reading governance state: {e}"),
        };
        let is_main = matches!(governance::config(&view), Ok(Some(c)) if &c.main_chain == chain);
        if !is_main {
            continue;
        }
        let mut out = BTreeMap::new();
        for info in governance::chains(&view).map_err(no_trust)? {
            let schedule =
                governance::validator_schedule(&view, &info.chain_id).map_err(no_trust)?;
            out.insert(
                info.chain_id.clone(),
                Trust {
                    engine: info.engine,
                    schedule,
                },
            );
        }
        return Ok(Some(out));
    }
    Ok(None)
}

/// Verifies every chain store under `dir`; see the module docs.
pub fn inspect(dir: &Path, genesis: Option<&Genesis>) -> Result<Vec<ChainReport>, InspectError> {
    let stores = open_stores(dir)?;
    let from_governance = governance_trust(&stores)?;
    let mut reports = Vec::new();
    for (chain, store) in &stores {
        let from_config = genesis.and_then(|g| g.chain(chain));
        let trust = match (
            from_governance.as_ref().and_then(|m| m.get(chain)),
            from_config,
        ) {
            (Some(t), config) => {
                if let Some(c) = config {
                    let first = set_at(&t.schedule, Height::new(1));
                    if first != Some(&c.validators) || t.engine != c.engine {
                        return Err(InspectError::NoTrust {
                            chain: chain.clone(),
                            reason: "the genesis in governance state differs from the config's"
                                .into(),
                        });
                    }
                }
                Trust {
                    engine: t.engine,
                    schedule: t.schedule.clone(),
                }
            }
            (None, Some(c)) => Trust {
                engine: c.engine,
                schedule: BTreeMap::from([(Height::new(1), c.validators.clone())]),
            },
            (None, None) => {
                return Err(InspectError::NoTrust {
                    chain: chain.clone(),
                    reason: "no validator set known: the directory holds no main chain \
                             registering it; pass --config with the network's genesis"
                        .into(),
                })
            }
        };
        reports.push(inspect_chain(chain, store, &trust)?);
    }
    Ok(reports)
}

fn inspect_chain(
    chain: &ChainId,
    store: &DurableStore,
    trust: &Trust,
) -> Result<ChainReport, InspectError> {
    let fail = |height: Height, check: &'static str, reason: String| InspectError::Check {
        chain: chain.clone(),
        height,
        check,
        reason,
    };
    let latest = store
        .latest_height()
        .map_err(|e| fail(Height::new(0), "read", e.to_string()))?;
    let oldest = store
        .oldest_height()
        .map_err(|e| fail(Height::new(0), "read", e.to_string()))?;
    let mut report = ChainReport {
        chain: chain.clone(),
        engine: trust.engine,
        oldest,
        latest,
        blocks: 0,
        txs: 0,
        bytes: 0,
        time_range: None,
        state_roots_checked: 0,
        history_checked: oldest == Some(Height::new(1)),
        validator_sets: 0,
    };
    let Some(oldest) = oldest else {
        return Ok(report);
    };
    // The chain's suite: its validators' (every header must name it).
    let suite = trust
        .schedule
        .values()
        .next()
        .map_or_else(|| store_suite(store), ValidatorSet::suite);
    let hf = suite.hash_function();
    let mut history = HistoryTree::new(hf);
    let mut previous: Option<(Hash, Timestamp)> = None;
    let mut sets = std::collections::BTreeSet::new();
    for h in oldest.get()..=latest.get() {
        let height = Height::new(h);
        let stored = store
            .checked_block(height)
            .map_err(|e| fail(height, "read", e.to_string()))?
            .ok_or_else(|| fail(height, "read", "block missing".into()))?;
        let header = &stored.block.header;
        if &header.chain_id != chain {
            return Err(fail(
                height,
                "chain",
                format!("header is for chain {}", header.chain_id),
            ));
        }
        if header.height != height {
            return Err(fail(
                height,
                "height",
                format!("header says height {}", header.height),
            ));
        }
        let hash = stored.block.hash();
        let expected_parent = match previous {
            Some((p, _)) => Some(p),
            None if h == 1 => Some(Hash::ZERO),
            None => None, // pruned below: nothing to link to
        };
        if let Some(p) = expected_parent {
            if header.parent_hash != p {
                return Err(fail(
                    height,
                    "parent",
                    format!(
                        "parent hash {} but the previous block is {p}",
                        header.parent_hash
                    ),
                ));
            }
        }
        if let Some((_, t)) = previous {
            if header.time < t {
                return Err(fail(
                    height,
                    "time",
                    format!("time {} before the parent's {}", header.time.get(), t.get()),
                ));
            }
        }
        stored
            .block
            .validate_body()
            .map_err(|e| fail(height, "tx-root", e.to_string()))?;
        if report.history_checked {
            let root = history.root();
            if header.history_root != root {
                return Err(fail(
                    height,
                    "history-root",
                    format!(
                        "header history root {} but blocks 1..{h} give {root}",
                        header.history_root
                    ),
                ));
            }
            history.append(&hash);
        }
        if header.suite != suite {
            return Err(fail(
                height,
                "suite",
                format!(
                    "header is of suite {}, the chain's is {suite}",
                    header.suite
                ),
            ));
        }
        match store.state_root(hf, h) {
            Ok(Some(root)) => {
                if root != header.state_root {
                    return Err(fail(
                        height,
                        "state-root",
                        format!(
                            "header state root {} but stored state version {h} has {root}",
                            header.state_root
                        ),
                    ));
                }
                report.state_roots_checked += 1;
            }
            Ok(None) => {}
            Err(e) => return Err(fail(height, "state-root", e.to_string())),
        }
        let set = set_at(&trust.schedule, height)
            .ok_or_else(|| fail(height, "validator-set", "no validator set in force".into()))?;
        if header.validator_set_hash != set.hash() {
            return Err(fail(
                height,
                "validator-set",
                format!(
                    "header names set {} but the set in force is {}",
                    header.validator_set_hash,
                    set.hash()
                ),
            ));
        }
        if let Some(next) = height.next().and_then(|n| set_at(&trust.schedule, n)) {
            if header.next_validator_set_hash != next.hash() {
                return Err(fail(
                    height,
                    "next-validator-set",
                    format!(
                        "header announces set {} but the schedule has {}",
                        header.next_validator_set_hash,
                        next.hash()
                    ),
                ));
            }
        }
        sets.insert(set.hash());
        crate::governance::verify_chain_certificate(
            trust.engine,
            &stored.certificate,
            chain,
            header,
            set,
        )
        .map_err(|reason| fail(height, "certificate", reason))?;
        report.blocks += 1;
        report.txs += u64::from(header.tx_count);
        report.bytes +=
            (stored.block.to_bytes().len() + stored.certificate.to_bytes().len()) as u64;
        report.time_range = Some(match report.time_range {
            None => (header.time, header.time),
            Some((first, _)) => (first, header.time),
        });
        previous = Some((hash, header.time));
    }
    report.validator_sets = sets.len();
    Ok(report)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds.
pub fn format_time(t: Timestamp) -> String {
    let ms = t.get();
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// The report as the CLI prints it.
pub fn render(reports: &[ChainReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let engine = match r.engine {
            EngineKind::Bft => "bft",
            EngineKind::Raft => "raft",
        };
        let heights = match r.oldest {
            Some(o) => format!("{}..={}", o, r.latest),
            None => "empty".into(),
        };
        let times = r.time_range.map_or_else(
            || "-".to_owned(),
            |(a, b)| format!("{} .. {}", format_time(a), format_time(b)),
        );
        out.push_str(&format!(
            "chain {} ({engine}): heights {heights}, {} blocks, {} txs, {} bytes, time {times}, \
             {} validator set(s), state roots checked {}, history roots {}\n",
            r.chain,
            r.blocks,
            r.txs,
            r.bytes,
            r.validator_sets,
            r.state_roots_checked,
            if r.history_checked {
                "checked"
            } else {
                "not checked (pruned)"
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_milliseconds_as_utc() {
        assert_eq!(format_time(Timestamp::new(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time(Timestamp::new(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_time(Timestamp::new(951_782_400_000)),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
