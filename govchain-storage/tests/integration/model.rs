//! Model-based test: random operation sequences against a `BTreeMap`
//! model, for both the in-memory and the durable store (with reopens).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use crate::common::*;
use govchain_core::codec::Encode;
use govchain_core::hash::Hash;
use govchain_core::smt::SparseMerkleTree;
use govchain_core::types::Height;
use govchain_storage::sim::{CrashMode, SimDisk};
use govchain_storage::{BlockStore, MemoryStore, StateStore, StorageError};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append,
    Get(u64),
    GetByHash(u64),
    PruneBlocks(u64),
    PruneState(u64),
    Value(u64, u64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Append),
        2 => (0u64..24).prop_map(Op::Get),
        1 => (0u64..24).prop_map(Op::GetByHash),
        1 => (0u64..24).prop_map(Op::PruneBlocks),
        1 => (0u64..24).prop_map(Op::PruneState),
        2 => (0u64..48, 0u64..24).prop_map(|(k, v)| Op::Value(k, v)),
        1 => Just(Op::Reopen),
    ]
}

fn check<S: BlockStore + StateStore>(
    s: &S,
    wl: &Workload,
    model: &BTreeMap<u64, Hash>,
    oldest_state: u64,
    op: &Op,
) {
    let latest = model.keys().next_back().copied().unwrap_or(0);
    assert_eq!(s.latest_height().unwrap().get(), latest);
    match *op {
        Op::Get(h) => match s.block(Height::new(h)) {
            Ok(Some(b)) => {
                assert!(model.contains_key(&h));
                assert_eq!(b.block.to_bytes(), wl.entry(h).block.to_bytes());
            }
            Ok(None) => assert!(h == 0 || h > latest),
            Err(StorageError::Pruned { .. }) => {
                assert!(h > 0 && !model.contains_key(&h) && h <= latest)
            }
            Err(e) => panic!("{e}"),
        },
        Op::GetByHash(h) if h >= 1 && h <= latest => {
            let got = s.height_of(&wl.entry(h).block.hash()).unwrap();
            assert_eq!(got.is_some(), model.contains_key(&h));
        }
        Op::Value(k, v) if v <= latest && v >= oldest_state => {
            let tree = SparseMerkleTree::new(s, govchain_core::hash::HashFunction::Blake3);
            let reference =
                SparseMerkleTree::new(wl.reference(), govchain_core::hash::HashFunction::Blake3);
            assert_eq!(
                tree.get(&key(k), v).unwrap(),
                reference.get(&key(k), v).unwrap()
            );
        }
        _ => {}
    }
}

proptest! {
    // No failure-persistence file: a test binary has no `lib.rs`/`main.rs`
    // next to it for proptest to find, and replay goes by the printed seed.
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random sequences of appends, reads, prunes and reopens agree with a
    /// `BTreeMap` model on both stores.
    #[test]
    fn stores_agree_with_the_model(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        let mut wl = Workload::new(seed);
        wl.ensure(40);
        let mem = MemoryStore::new(chain());
        let disk = SimDisk::new(seed);
        let mut durable = open_sim(&disk).unwrap();
        mem.commit_state(wl.genesis()).unwrap();
        durable.commit_state(wl.genesis()).unwrap();
        let mut model: BTreeMap<u64, Hash> = BTreeMap::new();
        let mut oldest_state = 0;
        let mut disk = disk;
        for op in &ops {
            let latest = model.keys().next_back().copied().unwrap_or(0);
            match *op {
                Op::Append => {
                    let h = latest + 1;
                    wl.append(&mem, h).unwrap();
                    wl.append(&durable, h).unwrap();
                    model.insert(h, wl.entry(h).block.hash());
                }
                Op::PruneBlocks(h) => {
                    mem.prune_blocks_below(Height::new(h)).unwrap();
                    durable.prune_blocks_below(Height::new(h)).unwrap();
                    let below = h.min(latest);
                    model.retain(|k, _| *k >= below);
                }
                Op::PruneState(v) => {
                    mem.prune_state_below(v).unwrap();
                    durable.prune_state_below(v).unwrap();
                    oldest_state = oldest_state.max(v.min(latest));
                }
                Op::Reopen => {
                    drop(durable);
                    disk = disk.power_loss(CrashMode::KeepNone);
                    durable = open_sim(&disk).unwrap();
                }
                _ => {}
            }
            check(&mem, &wl, &model, oldest_state, op);
            check(&durable, &wl, &model, oldest_state, op);
        }
    }
}
