//! Integration tests of govchain-storage, as one test binary: one link
//! instead of one per file, and every helper in [`common`] is used by some
//! module (no `dead_code` allowances).
//!
//! - [`crash`]: power loss at every sync point, in every unsynced-data mode;
//! - [`faults`]: I/O errors at every operation, for every fault kind;
//! - [`corruption`]: bit flips, foreign directories, the golden format;
//! - [`kill`]: a real process SIGKILLed at random moments;
//! - [`model`]: random operation sequences against a model;
//! - [`lock`]: one handle per store directory;
//! - [`upgrade`]: a format-5 store upgraded in place, with crashes.
//!
//! Seeds come from `GOVCHAIN_SEED` (printed by every test);
//! `GOVCHAIN_STORAGE_SCALE` (default 1, CI 2) scales the number of iterations.

mod common;
mod corruption;
mod crash;
mod faults;
mod kill;
mod lock;
mod model;
mod upgrade;
