//! I/O errors at the N-th operation, for every N of a workload and every
//! fault kind: the handle is poisoned, nothing acknowledged is lost, and a
//! reopen recovers and can continue.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::*;
use govchain_storage::sim::{CrashMode, Fault, FaultKind, SimDisk};
use govchain_storage::{BlockStore, StateStore, StorageError};

fn run_workload(
    disk: &SimDisk,
    wl: &Workload,
    blocks: u64,
    acked: &mut u64,
) -> Result<(), StorageError> {
    let store = open_sim(disk)?;
    let r = (|| {
        if store.latest_version()?.is_none() {
            store.commit_state(wl.genesis())?;
        }
        for h in store.latest_height()?.get() + 1..=blocks {
            wl.append(&store, h)?;
            *acked = h;
        }
        Ok(())
    })();
    if let Err(e) = &r {
        assert!(
            matches!(
                e,
                StorageError::Io { .. }
                    | StorageError::Database { .. }
                    | StorageError::Corruption { .. }
            ),
            "unexpected error kind: {e}"
        );
        assert!(
            store.is_poisoned(),
            "a failed write must poison the handle: {e}"
        );
        if *acked < blocks {
            assert!(matches!(
                wl.append(&store, *acked + 1),
                Err(StorageError::Poisoned { .. })
            ));
        }
    }
    r
}

/// For every fault kind and every N up to the number of operations of that
/// class in the workload: inject the fault (alternately transient and
/// persistent), run until it bites, then reopen — on the live disk and after
/// power loss — check nothing acknowledged was lost, and finish the
/// workload on the reopened store.
#[test]
fn io_error_at_every_operation_poisons_and_recovers() {
    let seed = seed("io_error_at_every_operation_poisons_and_recovers");
    let blocks = 6 * scale();
    let mut wl = Workload::new(seed);
    wl.ensure(blocks);
    let clean = SimDisk::new(seed);
    run_workload(&clean, &wl, blocks, &mut 0).unwrap();
    let counts = clean.counts();
    let mut runs = 0;
    for kind in FaultKind::ALL {
        let total = counts.of(kind);
        let stride = if kind == FaultKind::Eio {
            (total / 400).max(1)
        } else {
            1
        };
        let mut n = seed % stride;
        while n < total {
            let disk = SimDisk::new(seed ^ n);
            disk.inject(Fault {
                kind,
                nth: n,
                persistent: n % 2 == 1,
            });
            let mut acked = 0;
            let failed = run_workload(&disk, &wl, blocks, &mut acked).is_err();
            disk.clear_faults();
            // Alternate between a restart on the live disk and power loss.
            let (label, image) = if n.is_multiple_of(2) {
                ("live", disk.frozen_copy(n))
            } else {
                ("power loss", disk.power_loss(CrashMode::KeepNone))
            };
            {
                let store = open_sim(&image)
                    .unwrap_or_else(|e| panic!("{kind:?} at {n} ({label}): reopen failed: {e}"));
                let latest = check_invariants(&store, &wl, acked, failed);
                drop(store);
                let mut done = latest;
                run_workload(&image, &wl, blocks, &mut done)
                    .unwrap_or_else(|e| panic!("{kind:?} at {n} ({label}): cannot continue: {e}"));
                assert_eq!(done, blocks);
            }
            runs += 1;
            n += stride;
        }
    }
    eprintln!("fault runs: {runs} ({counts:?})");
}
