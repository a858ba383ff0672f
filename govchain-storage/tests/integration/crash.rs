//! Power loss at every sync point of a 320-block workload, in every
//! unsynced-data mode, and crashes during recovery; failures in the window
//! between a frame's sync and its index commit; crashes during the replay
//! of the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::common::*;
use govchain_storage::durable::DEFAULT_CHECKPOINT_INTERVAL;
use govchain_storage::sim::{CrashMode, Fault, FaultKind, SimDisk};
use govchain_storage::{DurableConfig, StateStore};
use parking_lot::Mutex;

#[derive(Clone, Copy, Default)]
struct Progress {
    acked: u64,
    /// The latest height the append in flight may make visible (`acked`
    /// when none is in flight).
    reach: u64,
}

/// Crashes at every sync of the workload (the hook sees the disk just
/// before each sync takes effect), loses power in one or every
/// [`CrashMode`], reopens and checks the invariants; every few sync points
/// it also crashes at each sync of the recovery itself and recovers again.
#[test]
fn crash_at_every_sync_point_keeps_every_acknowledged_block() {
    crash_at_every_sync_point(
        "crash_at_every_sync_point_keeps_every_acknowledged_block",
        small_config(),
    );
}

/// The same with log compaction: the crash points now include every step
/// of rewriting a segment (the copy's sync, the index commit naming it,
/// the directory sync after the rename), and every reopen must also pass
/// `verify` (elided state batches only in compacted segments).
#[test]
fn crash_at_every_sync_point_with_log_compaction() {
    crash_at_every_sync_point(
        "crash_at_every_sync_point_with_log_compaction",
        compacting_config(),
    );
}

/// The same with coalesced appends: runs of 1 to 6 blocks written by one
/// `append_coalesced` (deferred frames, one closing frame, one index commit
/// that also prunes) between ordinary appends, so crashes hit a run with
/// any prefix of its frames on disk. After every reopen the store holds
/// every acknowledged block and either none of the run in flight or all
/// of it, and `verify` passes.
#[test]
fn crash_at_every_sync_point_with_coalesced_appends() {
    let mut config = compacting_config();
    config.compact_log = false;
    crash_at_every_sync_point_with(
        "crash_at_every_sync_point_with_coalesced_appends",
        config,
        true,
    );
}

fn crash_at_every_sync_point(test: &str, config: DurableConfig) {
    crash_at_every_sync_point_with(test, config, false);
}

/// The run of a coalesced append starting at `h` (`h..=end`), in the
/// coalesced workload: lengths 1 to 6, with ordinary appends between.
fn run_end(h: u64, blocks: u64) -> u64 {
    let len = match h % 3 {
        0 => 1 + h % 6,
        _ => 1,
    };
    (h + len - 1).min(blocks)
}

fn crash_at_every_sync_point_with(test: &str, config: DurableConfig, coalesce: bool) {
    let seed = seed(test);
    let compact = config.compact_log;
    let open = move |d: &SimDisk| open_sim_with(d, config.clone());
    // 320 blocks: five index checkpoints (every 64 appends) and replays of
    // up to 63 frames; more than 400 sync points, although an append
    // between checkpoints syncs only its frame.
    let blocks = 320;
    let mut wl = Workload::new(seed);
    wl.ensure(blocks);
    let wl = Arc::new(wl);
    let progress = Arc::new(Mutex::new(Progress::default()));
    let checks = Arc::new(AtomicU64::new(0));
    let recovery_crashes = Arc::new(AtomicU64::new(0));
    let all_modes = scale() > 1;
    let recovery_stride = (50 / scale()).max(1);
    let start = Instant::now();

    let disk = SimDisk::new(seed);
    {
        let (wl, progress, checks, recovery_crashes, open) = (
            wl.clone(),
            progress.clone(),
            checks.clone(),
            recovery_crashes.clone(),
            open.clone(),
        );
        disk.set_sync_hook(Some(Arc::new(move |i: u64, frozen: &SimDisk| {
            let p = *progress.lock();
            let modes: Vec<CrashMode> = if all_modes {
                CrashMode::ALL.to_vec()
            } else {
                vec![CrashMode::ALL[(i % 4) as usize]]
            };
            for mode in modes {
                let crashed = frozen.power_loss(mode);
                if i.is_multiple_of(recovery_stride) {
                    let probe = crashed.frozen_copy(i);
                    let opened = open(&probe);
                    let open_syncs = probe.counts().syncs;
                    drop(opened);
                    for k in 0..open_syncs {
                        let c = crashed.frozen_copy(i ^ k);
                        c.crash_at_sync(k);
                        assert!(open(&c).is_err(), "sync {i}: recovery crash {k} not hit");
                        let again = c.power_loss(mode);
                        let store = open(&again).unwrap_or_else(|e| {
                            panic!("sync {i} {mode:?}, recovery crash {k}: reopen failed: {e}")
                        });
                        check_invariants_reaching(&store, &wl, p.acked, p.reach);
                        recovery_crashes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let store = open(&crashed)
                    .unwrap_or_else(|e| panic!("sync {i} {mode:?}: reopen failed: {e}"));
                check_invariants_reaching(&store, &wl, p.acked, p.reach);
                if compact || coalesce {
                    store
                        .verify()
                        .unwrap_or_else(|e| panic!("sync {i} {mode:?}: verify: {e}"));
                }
                checks.fetch_add(1, Ordering::Relaxed);
            }
        })));
    }

    let store = open(&disk).unwrap();
    store.commit_state(wl.genesis()).unwrap();
    let mut h = 1;
    let mut runs = 0u64;
    while h <= blocks {
        let end = if coalesce { run_end(h, blocks) } else { h };
        progress.lock().reach = end;
        if end > h {
            wl.append_coalesced(&store, h, end).unwrap();
            runs += 1;
        } else {
            wl.append(&store, h).unwrap();
        }
        *progress.lock() = Progress {
            acked: end,
            reach: end,
        };
        h = end + 1;
    }
    disk.set_sync_hook(None);
    drop(store);
    let store = open(&disk.power_loss(CrashMode::KeepNone)).unwrap();
    check_invariants(&store, &wl, blocks, false);
    if compact || coalesce {
        assert_eq!(store.verify().unwrap(), blocks);
    }
    if coalesce {
        eprintln!("{runs} coalesced appends");
        assert!(runs >= 30, "{runs} coalesced appends");
    }
    eprintln!(
        "crash points: {} syncs, {} reopen checks, {} recovery crashes, {:.1?}",
        disk.counts().syncs,
        checks.load(Ordering::Relaxed),
        recovery_crashes.load(Ordering::Relaxed),
        start.elapsed()
    );
    let min_checks = if coalesce { 250 } else { 400 };
    assert!(checks.load(Ordering::Relaxed) >= min_checks);
}

/// Runs genesis and appends `1..=upto` on a fresh disk; `Err` with the
/// height whose append failed.
fn run_until(disk: &SimDisk, wl: &Workload, upto: u64) -> Result<(), u64> {
    let store = open_sim(disk).map_err(|_| 0u64)?;
    store.commit_state(wl.genesis()).map_err(|_| 0u64)?;
    for h in 1..=upto {
        wl.append(&store, h).map_err(|_| h)?;
    }
    Ok(())
}

/// The window between a frame's sync and its index commit. For a set of
/// appends — the first, a segment rollover, an ordinary one, and the
/// checkpoint appends whose index commit is durable (it writes and syncs
/// the index; an ordinary append's index commit does no I/O at all) — an
/// I/O failure that kills the process at every operation of the append,
/// then power loss in every mode. A failure before the frame's sync may
/// lose that (unacknowledged) block; from the operation after the frame's
/// sync on, the block is durable, and every mode must recover it whole,
/// although the append returned an error.
#[test]
fn failure_after_the_frame_sync_still_recovers_the_block() {
    let seed = seed("failure_after_the_frame_sync_still_recovers_the_block");
    let k = DEFAULT_CHECKPOINT_INTERVAL;
    let mut wl = Workload::new(seed);
    wl.ensure(2 * k + 1);
    // Operation ranges of each append in a clean run.
    let clean = SimDisk::new(seed);
    let store = open_sim(&clean).unwrap();
    store.commit_state(wl.genesis()).unwrap();
    let mut ranges = Vec::new();
    for h in 1..=2 * k + 1 {
        let before = clean.counts();
        wl.append(&store, h).unwrap();
        let after = clean.counts();
        ranges.push((h, before.all, after.all, after.syncs - before.syncs));
    }
    drop(store);
    let rollover = ranges
        .iter()
        .find(|r| r.0 > 2 && r.3 >= 3)
        .map_or(3, |r| r.0);
    let mut heights = vec![1, 2, rollover, k - 1, k, k + 1, 2 * k];
    if scale() > 1 {
        heights.extend(3..k);
    }
    heights.sort_unstable();
    heights.dedup();
    let mut after_sync_failures = 0;
    for &h in &heights {
        let (_, from, to, _) = ranges[(h - 1) as usize];
        let mut durable_from: Option<u64> = None;
        for n in from..to {
            let disk = SimDisk::new(seed);
            disk.inject(Fault {
                kind: FaultKind::Eio,
                nth: n,
                persistent: true,
            });
            let failed = run_until(&disk, &wl, h);
            assert_eq!(failed, Err(h), "op {n}: the failure must hit append {h}");
            disk.clear_faults();
            let mut recovered = Vec::new();
            for mode in CrashMode::ALL {
                let image = disk.power_loss(mode);
                let store = open_sim(&image)
                    .unwrap_or_else(|e| panic!("append {h}, op {n}, {mode:?}: reopen failed: {e}"));
                recovered.push(check_invariants(&store, &wl, h - 1, true) == h);
            }
            // KeepNone keeps exactly what was synced: it tells whether the
            // frame's sync had completed.
            if recovered[0] {
                durable_from.get_or_insert(n);
                assert!(
                    recovered.iter().all(|r| *r),
                    "append {h}, op {n}: synced frame lost in some mode: {recovered:?}"
                );
                after_sync_failures += 1;
            } else {
                assert!(
                    durable_from.is_none(),
                    "append {h}, op {n}: block lost after it was durable at op {durable_from:?}"
                );
            }
        }
        if h % k == 0 {
            // A checkpoint's index commit comes after the frame sync and
            // does I/O: failures there must have been exercised.
            let d = durable_from.unwrap_or(to);
            assert!(
                to - d >= 2,
                "append {h}: no failure point after the frame sync ({from}..{to})"
            );
        }
    }
    eprintln!(
        "failure points: {} appends, {after_sync_failures} failures after the frame sync",
        heights.len()
    );
    assert!(after_sync_failures > 0);
}

/// Crashes in the middle of replay: a store that crashed `k - 1` appends
/// after its last checkpoint must replay those frames on open. Crash at
/// every sync of that recovery, and fail (for good) every operation of it,
/// then lose power in every mode and recover again: every acknowledged
/// block is still there, and a third open finds the same.
#[test]
fn crash_during_replay_keeps_every_acknowledged_block() {
    let seed = seed("crash_during_replay_keeps_every_acknowledged_block");
    let k = DEFAULT_CHECKPOINT_INTERVAL;
    let blocks = 2 * k - 1;
    let mut wl = Workload::new(seed);
    wl.ensure(blocks);
    let disk = SimDisk::new(seed);
    let store = open_sim(&disk).unwrap();
    store.commit_state(wl.genesis()).unwrap();
    for h in 1..=blocks {
        wl.append(&store, h).unwrap();
    }
    // Power is lost while the store is open: no clean close.
    let crashed = disk.power_loss(CrashMode::KeepNone);
    drop(store);
    // The recovery to crash in: it replays k - 1 frames.
    let probe = crashed.frozen_copy(seed);
    let before = probe.counts();
    let store = open_sim(&probe).unwrap();
    let after = probe.counts();
    check_invariants(&store, &wl, blocks, false);
    drop(store);
    let (syncs, ops) = (after.syncs - before.syncs, after.all - before.all);
    assert!(
        syncs >= 3,
        "replay must sync the log and the index: {syncs} syncs"
    );
    let mut runs = 0;
    for k in 0..syncs {
        let c = crashed.frozen_copy(seed ^ k);
        c.crash_at_sync(k);
        assert!(open_sim(&c).is_err(), "replay crash at sync {k} not hit");
        for mode in CrashMode::ALL {
            let again = c.power_loss(mode);
            let store = open_sim(&again)
                .unwrap_or_else(|e| panic!("replay crash at sync {k}, {mode:?}: {e}"));
            check_invariants(&store, &wl, blocks, false);
            drop(store);
            let store = open_sim(&again).unwrap();
            check_invariants(&store, &wl, blocks, false);
            runs += 1;
        }
    }
    let stride = (ops / (100 * scale())).max(1);
    let mut n = seed % stride;
    while n < ops {
        let c = crashed.frozen_copy(seed ^ n);
        c.inject(Fault {
            kind: FaultKind::Eio,
            nth: n,
            persistent: true,
        });
        let opened = open_sim(&c);
        assert!(opened.is_err(), "replay failure at op {n} not hit");
        drop(opened);
        c.clear_faults();
        let mode = CrashMode::ALL[(n % 4) as usize];
        let again = c.power_loss(mode);
        let store =
            open_sim(&again).unwrap_or_else(|e| panic!("replay failure at op {n}, {mode:?}: {e}"));
        check_invariants(&store, &wl, blocks, false);
        runs += 1;
        n += stride;
    }
    eprintln!("replay: {syncs} syncs, {ops} operations, {runs} crashed recoveries");
}
