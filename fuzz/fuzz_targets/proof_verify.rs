//! Arbitrary bytes as inclusion, consistency and sparse-Merkle proofs,
//! verified against fixed roots: every outcome must be a typed result.
#![no_main]
use govchain_core::codec::decode_exact;
use govchain_core::hash::{Domain, Hash};
use govchain_core::merkle::{
    ConsistencyProof, InclusionProof, TreeHead, MAX_CONSISTENCY_PROOF_LEN, MAX_INCLUSION_PROOF_LEN,
};
use govchain_core::smt::{KeyHash, SparseMerkleProof, MAX_PROOF_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = Hash::of(Domain::Test, b"root");
    let (selector, rest) = match data.split_first() {
        Some((s, r)) => (*s, r),
        None => return,
    };
    match selector % 3 {
        0 => {
            if let Ok(p) = decode_exact::<InclusionProof>(rest, MAX_INCLUSION_PROOF_LEN) {
                let _ = p.verify_tx(
                    govchain_core::hash::HashFunction::Blake3,
                    b"tx",
                    &root,
                    p.tree_size,
                );
                let _ = p.verify_history(
                    govchain_core::hash::HashFunction::Blake3,
                    &root,
                    &TreeHead {
                        size: p.tree_size,
                        root,
                    },
                );
            }
        }
        1 => {
            if let Ok(p) = decode_exact::<ConsistencyProof>(rest, MAX_CONSISTENCY_PROOF_LEN) {
                let old = TreeHead {
                    size: p.old_size,
                    root,
                };
                let new = TreeHead {
                    size: p.new_size,
                    root,
                };
                let _ = p.verify(govchain_core::hash::HashFunction::Blake3, &old, &new);
            }
        }
        _ => {
            if let Ok(p) = decode_exact::<SparseMerkleProof>(rest, MAX_PROOF_LEN) {
                let key = KeyHash::of(govchain_core::hash::HashFunction::Blake3, b"key");
                let _ = p.verify(
                    govchain_core::hash::HashFunction::Blake3,
                    &root,
                    &key,
                    Some(b"value"),
                );
                let _ = p.verify(govchain_core::hash::HashFunction::Blake3, &root, &key, None);
            }
        }
    }
});
