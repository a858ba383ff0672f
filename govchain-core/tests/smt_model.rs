//! Model-based and adversarial tests of the sparse Merkle tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, HashSet};

use govchain_core::codec::{decode_exact, Encode};
use govchain_core::hash::{Hash, HashFunction};

const HF: HashFunction = HashFunction::Blake3;
use govchain_core::smt::{
    leaf_hash, node_hash, value_hash, Child, KeyHash, MemoryNodeStore, Node, NodeKey, NodeStore,
    SmtError, SmtProofError, SparseMerkleProof, SparseMerkleTree, Version, EMPTY_SUBTREE,
    MAX_PROOF_LEN,
};
use proptest::prelude::*;

type Model = BTreeMap<KeyHash, Vec<u8>>;

/// The root by the definition, independent of the tree code: empty → zero,
/// one leaf → its hash, otherwise split on the next bit.
fn spec_root(leaves: &[(KeyHash, Hash)], depth: usize) -> Hash {
    match leaves {
        [] => EMPTY_SUBTREE,
        [(k, v)] => leaf_hash(HF, k, v),
        _ => {
            let split = leaves.partition_point(|(k, _)| !k.bit(depth));
            node_hash(
                HF,
                &spec_root(&leaves[..split], depth + 1),
                &spec_root(&leaves[split..], depth + 1),
            )
        }
    }
}

fn model_root(model: &Model) -> Hash {
    let leaves: Vec<_> = model.iter().map(|(k, v)| (*k, value_hash(HF, v))).collect();
    spec_root(&leaves, 0)
}

/// A key universe mixing hashed keys and crafted keys with long shared
/// prefixes (down to a difference in the very last bit).
fn universe() -> Vec<KeyHash> {
    let mut keys: Vec<KeyHash> = (0u32..24)
        .map(|i| KeyHash::of(HF, &i.to_le_bytes()))
        .collect();
    let mut base = [0x5au8; 32];
    for flip in [255usize, 254, 200, 129, 128, 64, 7, 0] {
        let mut b = base;
        b[flip / 8] ^= 0x80 >> (flip % 8);
        keys.push(KeyHash::from_hash(Hash::from_bytes(b)));
    }
    keys.push(KeyHash::from_hash(Hash::from_bytes(base)));
    base[31] = 0;
    keys.push(KeyHash::from_hash(Hash::from_bytes(base)));
    keys
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<u8>),
    Delete(usize),
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..n, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0..n).prop_map(Op::Delete),
    ]
}

/// Applies ops (last one per key wins) to the model and returns the batch.
fn to_batch(keys: &[KeyHash], ops: &[Op], model: &mut Model) -> Vec<(KeyHash, Option<Vec<u8>>)> {
    let mut last: BTreeMap<KeyHash, Option<Vec<u8>>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => last.insert(keys[*k], Some(v.clone())),
            Op::Delete(k) => last.insert(keys[*k], None),
        };
    }
    for (k, v) in &last {
        match v {
            Some(v) => model.insert(*k, v.clone()),
            None => model.remove(k),
        };
    }
    // Hand the batch over in a scrambled order: the tree must sort.
    let mut batch: Vec<_> = last.into_iter().collect();
    batch.reverse();
    batch
}

fn build_from_scratch(model: &Model) -> Hash {
    let store = MemoryNodeStore::new();
    let tree = SparseMerkleTree::new(&store, HF);
    let batch: Vec<_> = model.iter().map(|(k, v)| (*k, Some(v.clone()))).collect();
    let (root, b) = tree.apply_batch(None, 0, &batch).unwrap();
    store.write_batch(b).unwrap();
    assert_eq!(tree.root_hash(0).unwrap(), root);
    root
}

/// Every node reachable from the roots of `versions`.
fn reachable(store: &MemoryNodeStore, versions: &[Version]) -> HashSet<NodeKey> {
    let mut seen = HashSet::new();
    let mut stack: Vec<NodeKey> = versions.iter().map(|v| NodeKey::root(*v)).collect();
    while let Some(key) = stack.pop() {
        if !seen.insert(key) {
            continue;
        }
        let node = store
            .get_node(&key)
            .unwrap()
            .expect("reachable node present");
        if let Node::Internal(n) = node {
            for (slot, child) in n.children() {
                if let Child::Internal { version, .. } = child {
                    stack.push(NodeKey {
                        version: *version,
                        path: key.path.nibble_child(slot),
                    });
                }
            }
        }
    }
    seen
}

fn check_version(
    tree: &SparseMerkleTree<'_, MemoryNodeStore>,
    store: &MemoryNodeStore,
    keys: &[KeyHash],
    version: Version,
    model: &Model,
) {
    let root = tree.root_hash(version).unwrap();
    assert_eq!(root, model_root(model), "root at version {version}");
    for key in keys {
        let expected = model.get(key);
        assert_eq!(tree.get(key, version).unwrap().as_ref(), expected);
        // The value index (what `TreeStateView` reads) agrees with the walk.
        assert_eq!(store.get_value(key, version).unwrap().as_ref(), expected);
        let (value, proof) = tree.get_with_proof(key, version).unwrap();
        assert_eq!(value.as_ref(), expected);
        proof
            .verify(HF, &root, key, expected.map(Vec::as_slice))
            .unwrap();
        // The proof does not prove anything else.
        let wrong: Option<&[u8]> = match expected {
            Some(_) => None,
            None => Some(b"x"),
        };
        assert!(proof.verify(HF, &root, key, wrong).is_err());
        if let Some(v) = expected {
            let mut other = v.clone();
            other.push(1);
            assert_eq!(
                proof.verify(HF, &root, key, Some(&other)),
                Err(SmtProofError::ValueMismatch { key: *key })
            );
        }
        let bytes = proof.to_bytes();
        assert_eq!(
            decode_exact::<SparseMerkleProof>(&bytes, MAX_PROOF_LEN).unwrap(),
            proof
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random batches against a `BTreeMap` model: gets and proofs at every
    /// retained version, roots equal the from-scratch build and the
    /// definition, and pruning keeps exactly the nodes of retained versions.
    #[test]
    fn model_batches_versions_and_prune(
        batches in proptest::collection::vec(proptest::collection::vec(op(34), 0..14), 1..7),
        prune_at in 0usize..8,
    ) {
        let keys = universe();
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, HF);
        let mut model = Model::new();
        let mut history: Vec<(Version, Model)> = Vec::new();
        let mut base = None;
        for (i, ops) in batches.iter().enumerate() {
            let version = 3 * i as Version + 1;
            let batch = to_batch(&keys, ops, &mut model);
            let (root, b) = tree.apply_batch(base, version, &batch).unwrap();
            prop_assert_eq!(root, model_root(&model));
            store.write_batch(b).unwrap();
            prop_assert_eq!(root, build_from_scratch(&model));
            history.push((version, model.clone()));
            base = Some(version);
        }
        for (version, m) in &history {
            check_version(&tree, &store, &keys, *version, m);
        }
        // Versions never written are reported as such.
        let not_found = matches!(tree.root_hash(2), Err(SmtError::VersionNotFound { version: 2 }));
        prop_assert!(not_found);

        // Prune and check both sides of the horizon.
        let below = history[prune_at.min(history.len() - 1)].0;
        let before = store.node_count();
        let removed = store.prune(below);
        prop_assert_eq!(before - removed, store.node_count());
        let retained: Vec<Version> = history.iter().map(|(v, _)| *v).filter(|v| *v >= below).collect();
        let live = reachable(&store, &retained);
        prop_assert_eq!(live.len(), store.node_count(), "prune leaves exactly the live nodes");
        for (version, m) in &history {
            if *version < below {
                let pruned = matches!(
                    tree.get(&keys[0], *version),
                    Err(SmtError::VersionPruned { version: v, oldest_readable }) if v == *version && oldest_readable == below
                );
                prop_assert!(pruned);
                let pruned = matches!(tree.get_with_proof(&keys[1], *version), Err(SmtError::VersionPruned { .. }));
                prop_assert!(pruned);
            } else {
                check_version(&tree, &store, &keys, *version, m);
            }
        }
        // Values: only entries readable from retained versions remain
        // (each live key's current value, plus markers and values of keys
        // changed after `below`).
        let (_, newest) = history.last().unwrap();
        prop_assert!(store.value_count() >= newest.len());

        // The tree keeps working on top of the pruned store.
        let mut next = model.clone();
        let batch = to_batch(&keys, &[Op::Put(0, vec![9]), Op::Delete(1)], &mut next);
        let last = history.last().unwrap().0;
        let (root, b) = tree.apply_batch(Some(last), last + 1, &batch).unwrap();
        store.write_batch(b).unwrap();
        prop_assert_eq!(root, model_root(&next));
        check_version(&tree, &store, &keys, last + 1, &next);
    }

    /// Every single-byte change and every truncation of an encoded proof is
    /// rejected by the decoder or by verification, never accepted.
    #[test]
    fn proof_mutations_rejected(
        n in 1usize..40,
        probe in any::<u16>(),
        xor in 1u8..=255,
    ) {
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, HF);
        let batch: Vec<_> = (0..n as u32)
            .map(|i| (KeyHash::of(HF, &i.to_le_bytes()), Some(i.to_be_bytes().to_vec())))
            .collect();
        let (root, b) = tree.apply_batch(None, 1, &batch).unwrap();
        store.write_batch(b).unwrap();
        // A member and a non-member.
        let member = KeyHash::of(HF, &(u32::from(probe) % n as u32).to_le_bytes());
        let absent = KeyHash::of(HF, &(1_000_000 + u32::from(probe)).to_le_bytes());
        for key in [member, absent] {
            let (value, proof) = tree.get_with_proof(&key, 1).unwrap();
            proof.verify(HF, &root, &key, value.as_deref()).unwrap();
            let bytes = proof.to_bytes();
            for i in 0..bytes.len() {
                for x in [xor, 0x01, 0x80] {
                    let mut m = bytes.clone();
                    m[i] ^= x;
                    if let Ok(p) = decode_exact::<SparseMerkleProof>(&m, MAX_PROOF_LEN) {
                        prop_assert!(p.verify(HF, &root, &key, value.as_deref()).is_err(), "byte {} ^ {:#x} accepted", i, x);
                    }
                }
            }
            for cut in 0..bytes.len() {
                prop_assert!(decode_exact::<SparseMerkleProof>(&bytes[..cut], MAX_PROOF_LEN).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(decode_exact::<SparseMerkleProof>(&longer, MAX_PROOF_LEN).is_err());
        }
    }
}

fn tree_with(n: u32) -> (MemoryNodeStore, Hash) {
    let store = MemoryNodeStore::new();
    let batch: Vec<_> = (0..n)
        .map(|i| (KeyHash::of(HF, &i.to_le_bytes()), Some(vec![i as u8; 3])))
        .collect();
    let (root, b) = SparseMerkleTree::new(&store, HF)
        .apply_batch(None, 1, &batch)
        .unwrap();
    store.write_batch(b).unwrap();
    (store, root)
}

#[test]
fn forged_proofs_rejected() {
    let (store, root) = tree_with(50);
    let tree = SparseMerkleTree::new(&store, HF);
    let key = KeyHash::of(HF, &7u32.to_le_bytes());
    let value = vec![7u8; 3];
    let (_, proof) = tree.get_with_proof(&key, 1).unwrap();
    proof.verify(HF, &root, &key, Some(&value)).unwrap();
    assert!(proof.siblings.len() >= 3);

    // Wrong sibling.
    let mut p = proof.clone();
    p.siblings[1] = Hash::of(govchain_core::hash::Domain::Test, b"forged");
    assert!(matches!(
        p.verify(HF, &root, &key, Some(&value)),
        Err(SmtProofError::RootMismatch { .. })
    ));

    // Right proof, wrong key: another key's membership proof.
    let other = KeyHash::of(HF, &8u32.to_le_bytes());
    assert!(matches!(
        proof.verify(HF, &root, &other, Some(&value)),
        Err(SmtProofError::LeafKeyMismatch { .. })
    ));
    // ... nor does it prove the other key's absence (its path differs).
    assert!(proof.verify(HF, &root, &other, None).is_err());

    // Leaf/node confusion 1: present the inner node above the leaf as a
    // leaf (key = left child, value hash = right child).
    let mut p = proof.clone();
    let last = p.siblings.pop().unwrap();
    let here = leaf_hash(HF, &key, &value_hash(HF, &value));
    let (l, r) = if key.bit(p.siblings.len()) {
        (last, here)
    } else {
        (here, last)
    };
    p.leaf = Some((KeyHash::from_hash(l), r));
    assert!(p.verify(HF, &root, &KeyHash::from_hash(l), None).is_err());
    assert!(matches!(
        p.verify(HF, &root, &key, None),
        Err(SmtProofError::RootMismatch { .. } | SmtProofError::LeafNotOnPath { .. })
    ));

    // Leaf/node confusion 2: present the leaf as an inner node whose
    // children are the key and the value hash, claiming absence below it.
    let mut p = proof.clone();
    p.leaf = None;
    p.siblings.push(*key.hash());
    assert!(matches!(
        p.verify(HF, &root, &key, None),
        Err(SmtProofError::RootMismatch { .. })
    ));

    // Absence claimed for a present key, using its own proof.
    assert_eq!(
        proof.verify(HF, &root, &key, None),
        Err(SmtProofError::KeyPresent { key })
    );

    // Non-membership with a leaf that is not on the key's path.
    let absent = KeyHash::of(HF, b"absent");
    let (v, nproof) = tree.get_with_proof(&absent, 1).unwrap();
    assert_eq!(v, None);
    nproof.verify(HF, &root, &absent, None).unwrap();
    if nproof.leaf.is_some() {
        let mut p = nproof.clone();
        let mut bytes: [u8; 32] = *p.leaf.unwrap().0.hash().as_bytes();
        bytes[0] ^= 0x80;
        p.leaf = Some((
            KeyHash::from_hash(Hash::from_bytes(bytes)),
            p.leaf.unwrap().1,
        ));
        assert!(p.verify(HF, &root, &absent, None).is_err());
    }
}

#[test]
fn deepest_possible_leaves() {
    // Two keys differing only in bit 255: both leaves at depth 256.
    let a = KeyHash::from_hash(Hash::from_bytes([0xa5; 32]));
    let mut b_bytes = [0xa5; 32];
    b_bytes[31] ^= 1;
    let b = KeyHash::from_hash(Hash::from_bytes(b_bytes));
    let store = MemoryNodeStore::new();
    let tree = SparseMerkleTree::new(&store, HF);
    let (root, batch) = tree
        .apply_batch(
            None,
            1,
            &[(a, Some(b"a".to_vec())), (b, Some(b"b".to_vec()))],
        )
        .unwrap();
    store.write_batch(batch).unwrap();
    let (v, proof) = tree.get_with_proof(&a, 1).unwrap();
    assert_eq!(v.as_deref(), Some(&b"a"[..]));
    assert_eq!(proof.siblings.len(), 256);
    proof.verify(HF, &root, &a, Some(b"a")).unwrap();
    let bytes = proof.to_bytes();
    assert_eq!(
        decode_exact::<SparseMerkleProof>(&bytes, MAX_PROOF_LEN).unwrap(),
        proof
    );
    // Deleting one collapses the other back to the root.
    let (root2, batch) = tree.apply_batch(Some(1), 2, &[(a, None)]).unwrap();
    store.write_batch(batch).unwrap();
    assert_eq!(root2, leaf_hash(HF, &b, &value_hash(HF, b"b")));
    let (_, proof) = tree.get_with_proof(&a, 2).unwrap();
    assert!(proof.siblings.is_empty());
    proof.verify(HF, &root2, &a, None).unwrap();
}

#[test]
fn large_parallel_batches_match_spec() {
    // Above the parallel threshold, with inserts, overwrites and deletes.
    let store = MemoryNodeStore::new();
    let tree = SparseMerkleTree::new(&store, HF);
    let mut model = Model::new();
    let mut base = None;
    for round in 0u32..3 {
        let mut batch = Vec::new();
        for i in 0..3000u32 {
            let k = KeyHash::of(HF, &(i + round * 1000).to_le_bytes());
            if i % 7 == 3 && round > 0 {
                batch.push((k, None));
                model.remove(&k);
            } else {
                let v = (i ^ round).to_le_bytes().to_vec();
                model.insert(k, v.clone());
                batch.push((k, Some(v)));
            }
        }
        let version = u64::from(round) + 1;
        let (root, b) = tree.apply_batch(base, version, &batch).unwrap();
        store.write_batch(b).unwrap();
        assert_eq!(root, model_root(&model));
        base = Some(version);
    }
    for (k, v) in model.iter().take(50) {
        let (got, proof) = tree.get_with_proof(k, 3).unwrap();
        assert_eq!(got.as_ref(), Some(v));
        proof.verify(HF, &model_root(&model), k, Some(v)).unwrap();
    }
}
