//! Arbitrary bytes into the transaction decoder: it must return a typed error
//! or a transaction whose re-encoding is the input, and never panic.
#![no_main]
use govchain_core::codec::Encode;
use govchain_core::tx::Transaction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(data) {
        assert_eq!(tx.to_bytes(), data, "decode→encode must be the identity");
        let _ = tx.verify_signature();
    }
});
