//! The store lock: a second handle on the same directory — in this process
//! or another — is refused with `StorageError::Locked` until the first one
//! is dropped; a refused or foreign directory is left untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use crate::common::*;
use govchain_storage::durable::LOCK_FILE;
use govchain_storage::sim::SimDisk;
use govchain_storage::{BlockStore, DurableStore, StateStore, StorageError};

const CHILD_ENV: &str = "GOVCHAIN_LOCK_CHILD_DIR";

#[test]
fn second_handle_in_this_process_is_refused_until_the_first_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut wl = Workload::new(1);
    wl.ensure(3);
    let first = DurableStore::open(&dir, chain(), small_config()).unwrap();
    first.commit_state(wl.genesis()).unwrap();
    wl.append(&first, 1).unwrap();
    match DurableStore::open(&dir, chain(), small_config()) {
        Err(StorageError::Locked { path }) => assert_eq!(path, dir),
        other => panic!("second open must be refused as locked: {other:?}"),
    }
    // The refusal changed nothing: the first handle keeps working.
    wl.append(&first, 2).unwrap();
    drop(first);
    let again = DurableStore::open(&dir, chain(), small_config()).unwrap();
    assert_eq!(again.latest_height().unwrap().get(), 2);
    wl.append(&again, 3).unwrap();
}

#[test]
fn sim_disk_models_the_lock() {
    let disk = SimDisk::new(7);
    let first = open_sim(&disk).unwrap();
    assert!(matches!(open_sim(&disk), Err(StorageError::Locked { .. })));
    // After power loss the process that held the lock is gone.
    let after = disk.power_loss(govchain_storage::sim::CrashMode::KeepNone);
    drop(open_sim(&after).unwrap());
    drop(first);
    drop(open_sim(&disk).unwrap());
}

#[test]
fn foreign_directory_gets_no_lock_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"not a store").unwrap();
    assert!(matches!(
        DurableStore::open(tmp.path(), chain(), small_config()),
        Err(StorageError::NotAStore { .. })
    ));
    assert!(!tmp.path().join(LOCK_FILE).exists());
}

/// Another process is refused while this one holds the store, and
/// succeeds once it is closed.
#[test]
fn another_process_is_refused_while_the_store_is_open() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        match DurableStore::open(&dir, chain(), small_config()) {
            Ok(_) => std::process::exit(0),
            Err(StorageError::Locked { .. }) => std::process::exit(3),
            Err(e) => {
                eprintln!("child: {e}");
                std::process::exit(4)
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let child = || {
        Command::new(std::env::current_exe().unwrap())
            .args([
                "lock::another_process_is_refused_while_the_store_is_open",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .code()
    };
    let store = DurableStore::open(&dir, chain(), small_config()).unwrap();
    assert_eq!(child(), Some(3), "child must be refused with Locked");
    drop(store);
    assert_eq!(child(), Some(0), "child must open the closed store");
}
