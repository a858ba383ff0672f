//! The in-place upgrade of a format-5 store to the current format, on a
//! store written by the format-5 build itself.
//!
//! The fixture `tests/fixtures/format-v5-crashed` is the disk image of a
//! format-5 store (written by commit `3e2135d`, the last format-5 build,
//! on a [`SimDisk`]) after power loss: [`Workload`] seed 5, genesis state,
//! blocks 1..=44 appended with log compaction on and a checkpoint every 8
//! appends, state pruned below version 20 after block 40. The index is
//! durable up to block 40 (its value rows in the format-5 layout, stale
//! rows for versions 21..=40, deletion markers among them); blocks 41..=44
//! are only in the log, whose older segments were compacted (state
//! batches elided). Opening it must upgrade the index, then replay the
//! four frames into the new layout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use crate::common::*;
use govchain_core::smt::{NodeStore, SparseMerkleTree};
use govchain_storage::format::{encode_manifest, FORMAT_VERSION};
use govchain_storage::sim::{CrashMode, SimDisk};
use govchain_storage::{DurableConfig, DurableStore, StateStore, StorageError};

const FIXTURE_SEED: u64 = 5;
/// Blocks in the fixture's log, all acknowledged.
const LOGGED: u64 = 44;
/// The fixture's state pruning horizon.
const PRUNED_BELOW: u64 = 20;

fn fixture_config() -> DurableConfig {
    let mut c = compacting_config();
    c.checkpoint_interval = 8;
    c
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A disk holding the fixture under [`DIR`], every byte durable.
fn fixture_disk(seed: u64) -> SimDisk {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v5-crashed");
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let disk = SimDisk::new(seed);
    for path in files {
        let rel = path.strip_prefix(&root).unwrap();
        disk.write_file(&Path::new(DIR).join(rel), &std::fs::read(&path).unwrap())
            .unwrap();
    }
    disk
}

fn manifest(disk: &SimDisk) -> Vec<u8> {
    disk.read_file(&Path::new(DIR).join("MANIFEST")).unwrap()
}

/// Every key's value at every retained version `oldest..=latest` equals
/// the reference's, read both directly and through the tree; a version
/// below `oldest` is refused as pruned unless the key's value was written
/// exactly there.
fn assert_state_matches(store: &DurableStore, wl: &Workload, oldest: u64, what: &str) {
    let latest = store.latest_version().unwrap().unwrap();
    let tree = SparseMerkleTree::new(store, govchain_core::hash::HashFunction::Blake3);
    let reference =
        SparseMerkleTree::new(wl.reference(), govchain_core::hash::HashFunction::Blake3);
    for v in oldest..=latest {
        for i in 0..48 {
            let want = reference.get(&key(i), v).unwrap();
            assert_eq!(
                store.get_value(&key(i), v).unwrap(),
                want,
                "{what}: key {i} at {v}"
            );
            assert_eq!(
                tree.get(&key(i), v).unwrap(),
                want,
                "{what}: key {i} at {v}"
            );
        }
    }
    if oldest > 1 {
        let below = oldest - 1;
        let refused = (0..48).any(|i| {
            matches!(
                store.get_value(&key(i), below),
                Err(StorageError::Pruned { .. })
            )
        });
        assert!(refused, "{what}: no read below the horizon was refused");
    }
}

/// Opening the format-5 store upgrades it: the manifest names the current
/// format, the four frames beyond the durable index are replayed, every
/// block and every retained state version reads as the format-5 build
/// wrote them, the log (compacted segments included) verifies, and the
/// store goes on appending, pruning and reopening in the new format.
#[test]
fn format_5_store_is_upgraded_in_place() {
    let mut wl = Workload::new(FIXTURE_SEED);
    wl.ensure(60);
    let disk = fixture_disk(1);
    assert_eq!(manifest(&disk), encode_manifest(5, CHAIN));
    let store = open_sim_with(&disk, fixture_config()).unwrap();
    assert_eq!(manifest(&disk), encode_manifest(FORMAT_VERSION, CHAIN));
    assert_eq!(check_invariants(&store, &wl, LOGGED, false), LOGGED);
    assert_state_matches(&store, &wl, PRUNED_BELOW, "upgraded");
    assert_eq!(store.verify().unwrap(), LOGGED);

    for h in LOGGED + 1..=60 {
        wl.append(&store, h).unwrap();
    }
    store.prune_state_below(50).unwrap();
    assert_state_matches(&store, &wl, 50, "after more appends");
    store.close().unwrap();
    let store = open_sim_with(&disk, fixture_config()).unwrap();
    assert_eq!(check_invariants(&store, &wl, 60, false), 60);
    assert_state_matches(&store, &wl, 50, "reopened");
    assert_eq!(store.verify().unwrap(), 60);
}

/// Power loss at every sync point of the upgrade (and of the recovery
/// that follows it in the same open), in every unsynced-data mode: the
/// next open finishes the upgrade — from scratch if the index commit did
/// not happen, by rewriting only the manifest if it did — and the store
/// holds every block and every retained state version.
#[test]
fn crash_at_every_sync_point_of_the_upgrade() {
    let seed = seed("crash_at_every_sync_point_of_the_upgrade");
    let mut wl = Workload::new(FIXTURE_SEED);
    wl.ensure(LOGGED);
    let mut crashes = 0;
    for n in 0.. {
        assert!(n < 1_000, "the open never completed without a crash");
        let disk = fixture_disk(seed ^ n);
        disk.crash_at_sync(n);
        let opened = open_sim_with(&disk, fixture_config());
        if !disk.is_crashed() {
            let store = opened.unwrap();
            assert_eq!(check_invariants(&store, &wl, LOGGED, false), LOGGED);
            break;
        }
        assert!(
            opened.is_err(),
            "open returned Ok after a crash at sync {n}"
        );
        drop(opened);
        crashes += 1;
        for mode in CrashMode::ALL {
            let after = disk.power_loss(mode);
            let store = open_sim_with(&after, fixture_config())
                .unwrap_or_else(|e| panic!("crash at sync {n}, {mode:?}: reopen: {e}"));
            assert_eq!(
                manifest(&after),
                encode_manifest(FORMAT_VERSION, CHAIN),
                "crash at sync {n}, {mode:?}"
            );
            let what = format!("crash at sync {n}, {mode:?}");
            assert_eq!(check_invariants(&store, &wl, LOGGED, false), LOGGED);
            assert_state_matches(&store, &wl, PRUNED_BELOW, &what);
            assert_eq!(store.verify().unwrap(), LOGGED, "{what}");
        }
    }
    eprintln!("upgrade: {crashes} crash points, each in every crash mode");
    assert!(crashes >= 3, "only {crashes} sync points in the upgrade");
}
