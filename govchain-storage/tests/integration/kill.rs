//! A real process appending to a real directory is SIGKILLed at random
//! moments; the parent checks that every acknowledged block survived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use govchain_storage::{BlockStore, DurableStore, StateStore};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

const CHILD_ENV: &str = "GOVCHAIN_KILL_CHILD_DIR";

fn child(dir: &str, seed: u64) -> ! {
    let mut wl = Workload::new(seed);
    let store = DurableStore::open(dir, chain(), small_config()).unwrap();
    if store.latest_version().unwrap().is_none() {
        store.commit_state(wl.genesis()).unwrap();
    }
    let mut out = std::io::stdout();
    let mut h = store.latest_height().unwrap().get();
    loop {
        h += 1;
        wl.ensure(h);
        wl.append(&store, h).unwrap();
        writeln!(out, "ACK {h}").unwrap();
        out.flush().unwrap();
    }
}

/// Up to 20 kills within about 30 s (scaled by `GOVCHAIN_STORAGE_SCALE`): spawn
/// this test binary as a child that appends blocks, SIGKILL it after a
/// random delay, reopen the directory and check the invariants against the
/// highest height the child acknowledged on stdout.
#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let seed = std::env::var("GOVCHAIN_SEED").unwrap().parse().unwrap();
        child(&dir, seed);
    }
    let seed = seed("sigkill_at_random_moments_loses_nothing_acknowledged");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut wl = Workload::new(seed);
    let budget = Duration::from_secs(30 * scale());
    let start = Instant::now();
    let mut kills = 0;
    let mut acked = 0u64;
    while kills < 20 * scale() && start.elapsed() < budget {
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "kill::sigkill_at_random_moments_loses_nothing_acknowledged",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &dir)
            .env("GOVCHAIN_SEED", seed.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut max = 0u64;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest prints `test NAME ... ` without a newline before
                // the test's own output, so the first ACK shares its line.
                let ack = line.rsplit_once("ACK ").map(|(_, h)| h);
                if let Some(h) = ack.and_then(|h| h.trim().parse().ok()) {
                    max = max.max(h);
                }
            }
            max
        });
        std::thread::sleep(Duration::from_millis(50 + rng.next_u64() % 400));
        c.kill().unwrap(); // SIGKILL on Unix
        c.wait().unwrap();
        acked = acked.max(reader.join().unwrap());
        kills += 1;
        let store = DurableStore::open(&dir, chain(), small_config()).unwrap();
        let latest = store.latest_height().unwrap().get();
        wl.ensure(latest + 1);
        check_invariants(&store, &wl, acked, true);
        acked = latest;
    }
    eprintln!(
        "kills: {kills}, final height {acked}, {:.1?}",
        start.elapsed()
    );
    assert!(kills >= 3);
}
