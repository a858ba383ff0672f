//! Power loss at every sync point of a 200-block workload, in every
//! unsynced-data mode, and crashes during recovery.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::common::*;
use govchain_storage::sim::{CrashMode, SimDisk};
use govchain_storage::StateStore;
use parking_lot::Mutex;

#[derive(Clone, Copy, Default)]
struct Progress {
    acked: u64,
    in_flight: bool,
}

/// Crashes at every sync of the workload (the hook sees the disk just
/// before each sync takes effect), loses power in one or every
/// [`CrashMode`], reopens and checks the invariants; every few sync points
/// it also crashes at each sync of the recovery itself and recovers again.
#[test]
fn crash_at_every_sync_point_keeps_every_acknowledged_block() {
    let seed = seed("crash_at_every_sync_point_keeps_every_acknowledged_block");
    let blocks = 200;
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
        let (wl, progress, checks, recovery_crashes) = (
            wl.clone(),
            progress.clone(),
            checks.clone(),
            recovery_crashes.clone(),
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
                    let opened = open_sim(&probe);
                    let open_syncs = probe.counts().syncs;
                    drop(opened);
                    for k in 0..open_syncs {
                        let c = crashed.frozen_copy(i ^ k);
                        c.crash_at_sync(k);
                        assert!(
                            open_sim(&c).is_err(),
                            "sync {i}: recovery crash {k} not hit"
                        );
                        let again = c.power_loss(mode);
                        let store = open_sim(&again).unwrap_or_else(|e| {
                            panic!("sync {i} {mode:?}, recovery crash {k}: reopen failed: {e}")
                        });
                        check_invariants(&store, &wl, p.acked, p.in_flight);
                        recovery_crashes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let store = open_sim(&crashed)
                    .unwrap_or_else(|e| panic!("sync {i} {mode:?}: reopen failed: {e}"));
                check_invariants(&store, &wl, p.acked, p.in_flight);
                checks.fetch_add(1, Ordering::Relaxed);
            }
        })));
    }

    let store = open_sim(&disk).unwrap();
    store.commit_state(wl.genesis()).unwrap();
    for h in 1..=blocks {
        progress.lock().in_flight = true;
        wl.append(&store, h).unwrap();
        *progress.lock() = Progress {
            acked: h,
            in_flight: false,
        };
    }
    disk.set_sync_hook(None);
    drop(store);
    let store = open_sim(&disk.power_loss(CrashMode::KeepNone)).unwrap();
    check_invariants(&store, &wl, blocks, false);
    eprintln!(
        "crash points: {} syncs, {} reopen checks, {} recovery crashes, {:.1?}",
        disk.counts().syncs,
        checks.load(Ordering::Relaxed),
        recovery_crashes.load(Ordering::Relaxed),
        start.elapsed()
    );
    assert!(checks.load(Ordering::Relaxed) >= 400);
}
