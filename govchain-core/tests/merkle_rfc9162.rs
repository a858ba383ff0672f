//! RFC 9162 conformance of the transaction tree and the history log.
//!
//! Every tree hash, inclusion path (§2.1.3.1) and consistency path (§2.1.4.1)
//! is compared with a direct transcription of the RFC's recursive
//! definitions over the raw leaves; every generated proof must verify
//! (§2.1.3.2, §2.1.4.2), and every mutation or truncation of an encoded proof
//! must be rejected with an error.
// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::panic)]

use govchain_core::codec::{decode_exact, Encode};
use govchain_core::hash::{Domain, Hash, HashFunction};

const HF: HashFunction = HashFunction::Blake3;
use govchain_core::merkle::{
    empty_tx_tree_hash, history_leaf_hash, tx_leaf_hash, tx_root, tx_root_from_tree_hash,
    tx_root_parallel, ConsistencyProof, HistoryTree, InclusionProof, MerkleError, TreeHead, TxTree,
    MAX_CONSISTENCY_PROOF_LEN, MAX_INCLUSION_PROOF_LEN,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The RFC's recursive definitions, over a slice of leaf hashes.
// ---------------------------------------------------------------------------

/// Largest power of two strictly below `n` (n >= 2).
fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH (§2.1.1).
fn mth(node: Domain, d: &[Hash]) -> Hash {
    match d.len() {
        0 => Hash::of(node, b""),
        1 => d[0],
        n => {
            let k = k_of(n);
            Hash::node(node, &mth(node, &d[..k]), &mth(node, &d[k..]))
        }
    }
}

/// PATH(m, D[n]) (§2.1.3.1).
fn path(node: Domain, m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = k_of(n);
    if m < k {
        let mut p = path(node, m, &d[..k]);
        p.push(mth(node, &d[k..]));
        p
    } else {
        let mut p = path(node, m - k, &d[k..]);
        p.push(mth(node, &d[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b) (§2.1.4.1).
fn subproof(node: Domain, m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(node, d)] };
    }
    let k = k_of(n);
    if m <= k {
        let mut p = subproof(node, m, &d[..k], b);
        p.push(mth(node, &d[k..]));
        p
    } else {
        let mut p = subproof(node, m - k, &d[k..], false);
        p.push(mth(node, &d[..k]));
        p
    }
}

fn blocks(n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| Hash::of(Domain::Test, &i.to_le_bytes()))
        .collect()
}

fn txs(n: usize) -> Vec<Vec<u8>> {
    (0..n as u32).map(|i| i.to_le_bytes().repeat(3)).collect()
}

/// Whether to compare leaf `m` of a tree of `n` against the (quadratic)
/// recursive definition: all of them in small trees, a spread in large ones.
/// Every proof is verified either way.
fn compare_with_definition(m: usize, n: usize) -> bool {
    n <= 70 || m < 3 || m + 3 >= n || m.is_multiple_of(17)
}

/// Sizes 0..=17 and 2^k - 1, 2^k, 2^k + 1 for k up to 10.
fn sizes() -> Vec<usize> {
    let mut s: Vec<usize> = (0..=17).collect();
    for k in 2..=10 {
        s.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
    }
    s.sort_unstable();
    s.dedup();
    s
}

// ---------------------------------------------------------------------------
// Exhaustive checks against the definitions.
// ---------------------------------------------------------------------------

#[test]
fn tx_tree_matches_rfc_for_all_sizes_and_indexes() {
    for n in sizes() {
        let txs = txs(n);
        let leaves: Vec<Hash> = txs.iter().map(|t| tx_leaf_hash(HF, t)).collect();
        let tree = TxTree::from_transactions(HF, &txs);
        let th = mth(Domain::TxNode, &leaves);
        assert_eq!(tree.tree_hash(), th, "n={n}");
        let root = tx_root_from_tree_hash(HF, n as u64, &th);
        assert_eq!(tree.tx_root(), root);
        assert_eq!(tx_root(HF, &leaves), root);
        assert_eq!(tx_root_parallel(HF, &leaves), root);
        for (m, tx) in txs.iter().enumerate() {
            let proof = tree.inclusion_proof(m as u64).unwrap();
            if compare_with_definition(m, n) {
                assert_eq!(proof.path, path(Domain::TxNode, m, &leaves), "n={n} m={m}");
            }
            proof.verify_tx(HF, tx, &root, n as u64).unwrap();
            proof
                .verify_tx_leaf(HF, &leaves[m], &root, n as u64)
                .unwrap();
        }
    }
}

#[test]
fn history_matches_rfc_for_all_sizes_and_indexes() {
    let max = *sizes().last().unwrap();
    let hashes = blocks(max);
    let leaves: Vec<Hash> = hashes.iter().map(|h| history_leaf_hash(HF, h)).collect();
    let mut log = HistoryTree::new(HF);
    for n in 0..=max {
        assert_eq!(log.root(), mth(Domain::HistoryNode, &leaves[..n]), "n={n}");
        if n < max {
            log.append(&hashes[n]);
        }
    }
    for n in sizes() {
        let head = log.head_at(n as u64).unwrap();
        assert_eq!(head.root, mth(Domain::HistoryNode, &leaves[..n]));
        for (m, block) in hashes[..n].iter().enumerate() {
            let proof = log.inclusion_proof(m as u64, n as u64).unwrap();
            if compare_with_definition(m, n) {
                assert_eq!(
                    proof.path,
                    path(Domain::HistoryNode, m, &leaves[..n]),
                    "n={n} m={m}"
                );
            }
            proof.verify_history(HF, block, &head).unwrap();
        }
    }
}

#[test]
fn consistency_matches_rfc_for_all_pairs() {
    let hashes = blocks(1025);
    let leaves: Vec<Hash> = hashes.iter().map(|h| history_leaf_hash(HF, h)).collect();
    let log = HistoryTree::from_block_hashes(HF, &hashes);
    let check = |m: usize, n: usize| {
        let proof = log.consistency_proof(m as u64, n as u64).unwrap();
        assert_eq!(
            proof.path,
            subproof(Domain::HistoryNode, m, &leaves[..n], true),
            "m={m} n={n}"
        );
        let old = log.head_at(m as u64).unwrap();
        let new = log.head_at(n as u64).unwrap();
        proof.verify(HF, &old, &new).unwrap();
    };
    // Every pair 0 < m <= n <= 17.
    for n in 1..=17 {
        for m in 1..=n {
            check(m, n);
        }
    }
    // Every pair of the 2^k +- 1 sizes, and every m into a few larger n.
    let special: Vec<usize> = sizes().into_iter().filter(|&s| s > 0).collect();
    for &n in &special {
        for &m in special.iter().filter(|&&m| m <= n) {
            check(m, n);
        }
    }
    for n in [63, 64, 65, 100] {
        for m in 1..=n {
            check(m, n);
        }
    }
}

#[test]
fn bottom_up_equals_recursive_mth_on_random_shapes() {
    // Different leaf contents per size, both kinds of tree.
    for n in 0..=130 {
        let leaves: Vec<Hash> = (0..n as u64)
            .map(|i| Hash::of(Domain::Test, &(i * 7 + n as u64).to_le_bytes()))
            .collect();
        assert_eq!(
            TxTree::from_leaves(HF, leaves.clone()).tree_hash(),
            mth(Domain::TxNode, &leaves)
        );
        assert_eq!(
            HistoryTree::from_leaf_hashes(HF, leaves.clone()).root(),
            mth(Domain::HistoryNode, &leaves)
        );
    }
}

// ---------------------------------------------------------------------------
// Rejections.
// ---------------------------------------------------------------------------

#[test]
fn wrong_inputs_are_rejected() {
    let txs = txs(7);
    let tree = TxTree::from_transactions(HF, &txs);
    let root = tree.tx_root();
    let proof = tree.inclusion_proof(3).unwrap();
    assert_eq!(
        proof.verify_tx(HF, &txs[4], &root, 7),
        Err(MerkleError::RootMismatch)
    );
    assert_eq!(
        proof.verify_tx(HF, &txs[3], &tree.tree_hash(), 7),
        Err(MerkleError::RootMismatch),
        "the tree hash is not the committed root"
    );
    assert_eq!(
        proof.verify_tx(HF, &txs[3], &root, 8),
        Err(MerkleError::SizeMismatch {
            expected: 8,
            got: 7
        })
    );
    // A leaf hash passed through the domain again is a different leaf.
    assert_eq!(
        proof.verify_tx(HF, tx_leaf_hash(HF, &txs[3]).as_bytes(), &root, 7),
        Err(MerkleError::RootMismatch)
    );
    let mut moved = proof.clone();
    moved.leaf_index = 2;
    assert_eq!(
        moved.verify_tx(HF, &txs[3], &root, 7),
        Err(MerkleError::RootMismatch)
    );
    moved.leaf_index = 7;
    assert_eq!(
        moved.verify_tx(HF, &txs[3], &root, 7),
        Err(MerkleError::IndexOutOfRange { index: 7, size: 7 })
    );
    let mut short = proof.clone();
    short.path.pop();
    assert_eq!(
        short.verify_tx(HF, &txs[3], &root, 7),
        Err(MerkleError::PathLengthMismatch {
            expected: 3,
            got: 2
        })
    );
    let empty = InclusionProof {
        leaf_index: 0,
        tree_size: 0,
        path: Vec::new(),
    };
    assert_eq!(
        empty.verify_tx(
            HF,
            b"",
            &tx_root_from_tree_hash(HF, 0, &empty_tx_tree_hash(HF)),
            0
        ),
        Err(MerkleError::EmptyTree)
    );

    // A transaction proof is not a history proof, even over the same bytes.
    let hashes = blocks(7);
    let log = HistoryTree::from_block_hashes(HF, &hashes);
    let hproof = log.inclusion_proof(3, 7).unwrap();
    let head = log.head();
    hproof.verify_history(HF, &hashes[3], &head).unwrap();
    assert_eq!(
        hproof.verify_history(HF, &hashes[2], &head),
        Err(MerkleError::RootMismatch)
    );
    let stale = log.head_at(6).unwrap();
    assert_eq!(
        hproof.verify_history(HF, &hashes[3], &stale),
        Err(MerkleError::SizeMismatch {
            expected: 6,
            got: 7
        })
    );
    let tx_tree_of_blocks = TxTree::from_leaves(
        HF,
        hashes.iter().map(|h| history_leaf_hash(HF, h)).collect(),
    );
    let cross = tx_tree_of_blocks.inclusion_proof(3).unwrap();
    assert_eq!(
        cross.verify_history(HF, &hashes[3], &head),
        Err(MerkleError::RootMismatch)
    );
}

#[test]
fn wrong_consistency_inputs_are_rejected() {
    let hashes = blocks(20);
    let log = HistoryTree::from_block_hashes(HF, &hashes);
    let old = log.head_at(6).unwrap();
    let new = log.head_at(13).unwrap();
    let proof = log.consistency_proof(6, 13).unwrap();
    proof.verify(HF, &old, &new).unwrap();
    let forged_old = TreeHead {
        root: hashes[0],
        ..old
    };
    assert_eq!(
        proof.verify(HF, &forged_old, &new),
        Err(MerkleError::OldRootMismatch)
    );
    let forged_new = TreeHead {
        root: hashes[0],
        ..new
    };
    assert_eq!(
        proof.verify(HF, &old, &forged_new),
        Err(MerkleError::NewRootMismatch)
    );
    assert_eq!(
        proof.verify(HF, &log.head_at(5).unwrap(), &new),
        Err(MerkleError::SizeMismatch {
            expected: 5,
            got: 6
        })
    );
    assert_eq!(
        proof.verify(HF, &old, &log.head_at(14).unwrap()),
        Err(MerkleError::SizeMismatch {
            expected: 14,
            got: 13
        })
    );
    // Swapped heads.
    let swapped = ConsistencyProof {
        old_size: 13,
        new_size: 6,
        path: proof.path.clone(),
    };
    assert_eq!(
        swapped.verify(HF, &new, &old),
        Err(MerkleError::InvalidSizes {
            old_size: 13,
            new_size: 6
        })
    );
    let zero = ConsistencyProof {
        old_size: 0,
        new_size: 6,
        path: Vec::new(),
    };
    let empty_head = TreeHead {
        size: 0,
        root: log.root_at(0).unwrap(),
    };
    assert_eq!(
        zero.verify(HF, &empty_head, &old),
        Err(MerkleError::InvalidSizes {
            old_size: 0,
            new_size: 6
        })
    );
    // Equal sizes: empty path, equal roots.
    let same = log.consistency_proof(6, 6).unwrap();
    assert!(same.path.is_empty());
    same.verify(HF, &old, &old).unwrap();
    assert_eq!(
        same.verify(HF, &old, &forged_old),
        Err(MerkleError::NewRootMismatch)
    );
    let mut padded = same.clone();
    padded.path.push(hashes[0]);
    assert_eq!(
        padded.verify(HF, &old, &old),
        Err(MerkleError::PathLengthMismatch {
            expected: 0,
            got: 1
        })
    );
    // A consistency proof for a log that rewrote history fails.
    let mut other = hashes.clone();
    other[2] = Hash::of(Domain::Test, b"rewritten");
    let rewritten = HistoryTree::from_block_hashes(HF, &other);
    let proof = rewritten.consistency_proof(6, 13).unwrap();
    assert!(proof
        .verify(HF, &old, &rewritten.head_at(13).unwrap())
        .is_err());
}

/// Every single-byte change and every truncation of `bytes` must fail to
/// decode, or decode to a proof that fails `verify`. Never a panic.
fn assert_tamper_evident<T, D, V>(bytes: &[u8], decode: D, verify: V)
where
    D: Fn(&[u8]) -> Result<T, govchain_core::codec::DecodeError>,
    V: Fn(&T) -> bool,
{
    let original = decode(bytes).unwrap();
    assert!(verify(&original));
    for i in 0..bytes.len() {
        for delta in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
            let mut b = bytes.to_vec();
            b[i] ^= delta;
            if let Ok(p) = decode(&b) {
                assert!(!verify(&p), "mutation at byte {i} (^{delta:#x}) verified");
            }
        }
    }
    for cut in 0..bytes.len() {
        assert!(
            decode(&bytes[..cut]).is_err(),
            "truncation to {cut} decoded"
        );
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err());
}

fn check_inclusion_tamper(n: usize, m: usize) {
    let txs = txs(n);
    let tree = TxTree::from_transactions(HF, &txs);
    let root = tree.tx_root();
    let bytes = tree.inclusion_proof(m as u64).unwrap().to_bytes();
    assert_tamper_evident(
        &bytes,
        |b| decode_exact::<InclusionProof>(b, MAX_INCLUSION_PROOF_LEN),
        |p| p.verify_tx(HF, &txs[m], &root, n as u64).is_ok(),
    );
    let hashes = blocks(n);
    let log = HistoryTree::from_block_hashes(HF, &hashes);
    let head = log.head();
    let bytes = log.inclusion_proof(m as u64, n as u64).unwrap().to_bytes();
    assert_tamper_evident(
        &bytes,
        |b| decode_exact::<InclusionProof>(b, MAX_INCLUSION_PROOF_LEN),
        |p| p.verify_history(HF, &hashes[m], &head).is_ok(),
    );
}

fn check_consistency_tamper(m: usize, n: usize) {
    let log = HistoryTree::from_block_hashes(HF, &blocks(n));
    let old = log.head_at(m as u64).unwrap();
    let new = log.head();
    let bytes = log
        .consistency_proof(m as u64, n as u64)
        .unwrap()
        .to_bytes();
    assert_tamper_evident(
        &bytes,
        |b| decode_exact::<ConsistencyProof>(b, MAX_CONSISTENCY_PROOF_LEN),
        |p| p.verify(HF, &old, &new).is_ok(),
    );
}

#[test]
fn encoded_proofs_are_tamper_evident_for_small_trees() {
    for n in 1..=17 {
        for m in 0..n {
            check_inclusion_tamper(n, m);
        }
        for m in 1..=n {
            check_consistency_tamper(m, n);
        }
    }
}

#[test]
fn decoding_rejects_malformed_shapes() {
    let good = InclusionProof {
        leaf_index: 1,
        tree_size: 3,
        path: blocks(2),
    };
    assert!(decode_exact::<InclusionProof>(&good.to_bytes(), MAX_INCLUSION_PROOF_LEN).is_ok());
    for bad in [
        InclusionProof {
            leaf_index: 3,
            tree_size: 3,
            path: blocks(2),
        },
        InclusionProof {
            leaf_index: 0,
            tree_size: 0,
            path: Vec::new(),
        },
        InclusionProof {
            leaf_index: 1,
            tree_size: 3,
            path: blocks(1),
        },
        InclusionProof {
            leaf_index: 2,
            tree_size: 3,
            path: blocks(2),
        },
        InclusionProof {
            leaf_index: 0,
            tree_size: 1 << 20,
            path: blocks(65),
        },
    ] {
        assert!(
            decode_exact::<InclusionProof>(&bad.to_bytes(), 1 << 16).is_err(),
            "{bad:?}"
        );
    }
    for bad in [
        ConsistencyProof {
            old_size: 0,
            new_size: 3,
            path: Vec::new(),
        },
        ConsistencyProof {
            old_size: 4,
            new_size: 3,
            path: blocks(1),
        },
        ConsistencyProof {
            old_size: 3,
            new_size: 3,
            path: blocks(1),
        },
        ConsistencyProof {
            old_size: 4,
            new_size: 8,
            path: blocks(2),
        },
        ConsistencyProof {
            old_size: 1,
            new_size: u64::MAX,
            path: blocks(66),
        },
    ] {
        assert!(
            decode_exact::<ConsistencyProof>(&bad.to_bytes(), 1 << 16).is_err(),
            "{bad:?}"
        );
    }
    // A huge declared path length is refused before allocating.
    let mut huge = 0u64.to_le_bytes().to_vec();
    huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_exact::<InclusionProof>(&huge, MAX_INCLUSION_PROOF_LEN).is_err());
    let head = TreeHead {
        size: 9,
        root: blocks(1)[0],
    };
    assert_eq!(decode_exact::<TreeHead>(&head.to_bytes(), 40), Ok(head));
}

/// Pinned values guard the format: a change here changes every block root.
#[test]
fn golden_roots() {
    let txs = txs(3);
    let tree = TxTree::from_transactions(HF, &txs);
    let hashes = blocks(3);
    let log = HistoryTree::from_block_hashes(HF, &hashes);
    let got = [
        tx_root(HF, &[]).to_string(),
        tree.tree_hash().to_string(),
        tree.tx_root().to_string(),
        log.root().to_string(),
    ];
    let expected = [
        "b2006e216fbbd63387d564c7a60f0a82ac2673909159c10ac8e2332b5dbcc402",
        "9d2197a53ae8c89416879b2ccf9053ab4034be8d7caf83d424a28c4ce895b16a",
        "67f660c8c2f68658cf288078d9118359702dec91081925b132af6a392866efab",
        "1537eb6c35ad45023fc4c5ed58aa18743752b19e4e76624e3423b7f3b28328c1",
    ];
    assert_eq!(got, expected);
}

// ---------------------------------------------------------------------------
// Properties on random trees.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_inclusion_proof_verifies(n in 1usize..1500, seed in any::<u64>()) {
        let m = (seed % n as u64) as usize;
        let txs = txs(n);
        let tree = TxTree::from_transactions(HF, &txs);
        let proof = tree.inclusion_proof(m as u64).unwrap();
        proof.verify_tx(HF, &txs[m], &tree.tx_root(), n as u64).unwrap();
        let back = decode_exact::<InclusionProof>(&proof.to_bytes(), MAX_INCLUSION_PROOF_LEN).unwrap();
        prop_assert_eq!(&back, &proof);

        let hashes = blocks(n);
        let log = HistoryTree::from_block_hashes(HF, &hashes);
        let size = m as u64 + 1 + seed.rotate_left(17) % (n - m) as u64;
        let proof = log.inclusion_proof(m as u64, size).unwrap();
        proof.verify_history(HF, &hashes[m], &log.head_at(size).unwrap()).unwrap();
    }

    #[test]
    fn every_consistency_proof_verifies(n in 1usize..1500, a in any::<u64>(), b in any::<u64>()) {
        let log = HistoryTree::from_block_hashes(HF, &blocks(n));
        let new = 1 + a % n as u64;
        let old = 1 + b % new;
        let proof = log.consistency_proof(old, new).unwrap();
        proof.verify(HF, &log.head_at(old).unwrap(), &log.head_at(new).unwrap()).unwrap();
        let back = decode_exact::<ConsistencyProof>(&proof.to_bytes(), MAX_CONSISTENCY_PROOF_LEN).unwrap();
        prop_assert_eq!(back, proof);
    }

    #[test]
    fn mutated_inclusion_proofs_fail(n in 1usize..120, seed in any::<u64>()) {
        check_inclusion_tamper(n, (seed % n as u64) as usize);
    }

    #[test]
    fn mutated_consistency_proofs_fail(n in 1usize..120, seed in any::<u64>()) {
        check_consistency_tamper(1 + (seed % n as u64) as usize, n);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let log = HistoryTree::from_block_hashes(HF, &blocks(9));
        if let Ok(p) = decode_exact::<InclusionProof>(&bytes, MAX_INCLUSION_PROOF_LEN) {
            let _ = p.verify_history(HF, &blocks(1)[0], &log.head());
            let _ = p.verify_tx(HF, b"x", &log.root(), p.tree_size);
        }
        if let Ok(p) = decode_exact::<ConsistencyProof>(&bytes, MAX_CONSISTENCY_PROOF_LEN) {
            let _ = p.verify(HF, &log.head_at(3).unwrap(), &log.head());
        }
    }
}
