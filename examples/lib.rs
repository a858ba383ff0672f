//! Runnable examples of govchain. The examples themselves live beside this
//! file; run the main demo with `cargo run --release --example service_chain`.
