//! Arbitrary bytes into the block decoder and body validation.
#![no_main]
use govchain_core::block::Block;
use govchain_core::codec::Encode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data, 1 << 20) {
        assert_eq!(block.to_bytes(), data, "decode→encode must be the identity");
        let _ = block.validate_body();
    }
});
