//! Runnable examples of govchain. The examples themselves live beside this
//! file; run the main demo with `cargo run --release --example service_chain`.
//!
//! This library holds what the examples share, written as another team
//! would write it: [`service_records::ServiceRecords`], a small DApp.

pub mod identity_scenario;
pub mod service_records;
