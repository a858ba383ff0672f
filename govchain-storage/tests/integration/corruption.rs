//! Bit flips in the log, index and manifest; refusal of foreign
//! directories; the golden on-disk format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::*;
use govchain_core::codec::Encode;
use govchain_core::smt::{KeyHash, MemoryNodeStore, NodeKey, NodeStore, SparseMerkleTree};
use govchain_core::types::{ChainId, Height};
use govchain_storage::format::{
    encode_frame, encode_manifest, encode_segment_header, encode_stale_row, encode_state_batch,
    node_key, seal, value_key, FORMAT_VERSION,
};
use govchain_storage::sim::SimDisk;
use govchain_storage::{BlockStore, DurableStore, StateStore, StorageError};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

fn build(seed: u64, blocks: u64) -> (SimDisk, Workload) {
    let mut wl = Workload::new(seed);
    wl.ensure(blocks);
    let disk = SimDisk::new(seed);
    let store = open_sim(&disk).unwrap();
    store.commit_state(wl.genesis()).unwrap();
    for h in 1..=blocks {
        wl.append(&store, h).unwrap();
    }
    drop(store);
    (disk, wl)
}

/// Flips random bits in the segments and the redb file of a cleanly closed
/// store. Opening (with the default configuration) and every read must
/// then either return exactly the original data or a typed error — never
/// different data, never a panic; a flip inside the log's written range is
/// always caught by open, a read, or `verify`. The default runs redb's
/// integrity check on every open, which is what catches index flips that
/// no read would (see the `durable` module docs).
#[test]
fn bit_flips_are_detected_never_served() {
    let seed = seed("bit_flips_are_detected_never_served");
    let blocks = 40;
    let (disk, wl) = build(seed, blocks);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let files = disk.files();
    let (mut detected, mut harmless) = (0, 0);
    for trial in 0..60 * scale() {
        let (path, len) = &files[(rng.next_u64() % files.len() as u64) as usize];
        if path.ends_with("MANIFEST") || *len == 0 {
            continue;
        }
        let image = disk.frozen_copy(trial);
        let offset = rng.next_u64() % len;
        image
            .flip_bit(path, offset, (rng.next_u64() % 8) as u8)
            .unwrap();
        let is_log = path.extension().is_some_and(|e| e == "seg");
        let store = match open_sim(&image) {
            Ok(s) => s,
            Err(e) => {
                assert!(
                    e.is_corruption() || matches!(e, StorageError::Database { .. }),
                    "{path:?}@{offset}: untyped refusal {e:?}"
                );
                detected += 1;
                continue;
            }
        };
        let mut caught = false;
        for h in 1..=blocks {
            match store.block(Height::new(h)) {
                Ok(Some(b)) => assert_eq!(b.block.to_bytes(), wl.entry(h).block.to_bytes()),
                Ok(None) => panic!("{path:?}@{offset}: block {h} vanished"),
                Err(e) => {
                    assert!(e.is_corruption(), "{e:?}");
                    caught = true;
                }
            }
        }
        let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
        let reference =
            SparseMerkleTree::new(wl.reference(), govchain_core::hash::HashFunction::Blake3);
        for i in 0..48 {
            if let Ok(v) = tree.get(&key(i), blocks) {
                assert_eq!(
                    v,
                    reference.get(&key(i), blocks).unwrap(),
                    "{path:?}@{offset}"
                );
            } else {
                caught = true;
            }
        }
        if is_log && offset < *len {
            caught |= store.verify().is_err();
            assert!(caught, "{path:?}@{offset}: flip in the log went unnoticed");
        }
        if caught {
            detected += 1;
        } else {
            harmless += 1;
        }
    }
    eprintln!("bit flips: {detected} detected, {harmless} in unused bytes");
}

fn snapshot(disk: &SimDisk) -> Vec<(PathBuf, Vec<u8>)> {
    disk.files()
        .into_iter()
        .map(|(p, _)| {
            let data = disk.read_file(&p).unwrap();
            (p, data)
        })
        .collect()
}

fn open_as(disk: &SimDisk, chain: &str) -> Result<DurableStore, StorageError> {
    DurableStore::open_with(
        Arc::new(disk.clone()),
        DIR,
        ChainId::new(chain).unwrap(),
        small_config(),
    )
}

/// Garbage, another chain's store, a newer format and a corrupt manifest
/// are refused with typed errors, and the directory is left byte-identical.
#[test]
fn foreign_directories_are_refused_untouched() {
    let dir = Path::new(DIR);
    // Garbage.
    let disk = SimDisk::new(1);
    disk.write_file(&dir.join("notes.txt"), b"hello").unwrap();
    let before = snapshot(&disk);
    assert!(matches!(
        open_sim(&disk),
        Err(StorageError::NotAStore { .. })
    ));
    assert_eq!(snapshot(&disk), before);
    // A manifest-shaped file with the wrong magic.
    let disk = SimDisk::new(2);
    disk.write_file(&dir.join("MANIFEST"), &[0xAB; 40]).unwrap();
    let before = snapshot(&disk);
    assert!(matches!(
        open_sim(&disk),
        Err(StorageError::NotAStore { .. })
    ));
    assert_eq!(snapshot(&disk), before);
    // Another chain's store.
    let (disk, _) = build(3, 3);
    let before = snapshot(&disk);
    assert!(matches!(
        open_as(&disk, "identity.side-1"),
        Err(StorageError::WrongChain { .. })
    ));
    assert_eq!(snapshot(&disk), before);
    // A newer format version.
    disk.write_file(
        &dir.join("MANIFEST"),
        &encode_manifest(FORMAT_VERSION + 1, CHAIN),
    )
    .unwrap();
    let before = snapshot(&disk);
    assert!(matches!(
        open_sim(&disk),
        Err(StorageError::UnsupportedFormat { found, supported })
            if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION
    ));
    assert_eq!(snapshot(&disk), before);
    // A corrupt manifest of our own format.
    let mut m = encode_manifest(FORMAT_VERSION, CHAIN);
    m[20] ^= 1;
    disk.write_file(&dir.join("MANIFEST"), &m).unwrap();
    let before = snapshot(&disk);
    assert!(open_sim(&disk).unwrap_err().is_corruption());
    assert_eq!(snapshot(&disk), before);
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in bytes.iter().enumerate() {
        s.push_str(&format!("{b:02x}"));
        s.push(if i % 16 == 15 { '\n' } else { ' ' });
    }
    s.push('\n');
    s
}

/// Pins the on-disk bytes of a manifest, a segment header, a frame, the
/// state rows of the index (an SMT page, a value, a stale-index row) and
/// the state batch encoding carried in frames.
/// Regenerate deliberately with `GOVCHAIN_BLESS=1` after a format change
/// (and bump `FORMAT_VERSION`, which names the file).
#[test]
fn golden_on_disk_format() {
    let mut out = String::new();
    out.push_str(&format!(
        "# MANIFEST for chain hz-main, format {FORMAT_VERSION}\n"
    ));
    out.push_str(&hex(&encode_manifest(FORMAT_VERSION, "hz-main")));
    out.push_str("# segment header, base height 4711\n");
    out.push_str(&hex(&encode_segment_header(4711)));
    out.push_str(
        "# frame: height 42, block b\"block\", certificate b\"cert\", state batch b\"state\"\n",
    );
    out.push_str(&hex(&encode_frame(42, b"block", b"cert", b"state").unwrap()));

    // State rows: keys "k0".."k5" at version 1, then version 2 overwrites
    // k0 and deletes k1.
    let store = MemoryNodeStore::new();
    let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
    let key = |i: u8| KeyHash::of(govchain_core::hash::HashFunction::Blake3, &[b'k', b'0' + i]);
    let v1: Vec<_> = (0..6).map(|i| (key(i), Some(vec![i; 3]))).collect();
    let (_, b1) = tree.apply_batch(None, 1, &v1).unwrap();
    store.write_batch(b1).unwrap();
    let (_, b2) = tree
        .apply_batch(
            Some(1),
            2,
            &[(key(0), Some(b"new".to_vec())), (key(1), None)],
        )
        .unwrap();
    let root = NodeKey::root(2);
    let node = store.get_node(&NodeKey::root(1)).unwrap().unwrap();
    let k = node_key(&root);
    out.push_str("# smt_nodes key: root of version 2\n");
    out.push_str(&hex(&k));
    out.push_str("# smt_nodes value: the root page of version 1, sealed under that key\n");
    out.push_str(&hex(&seal(&k, &node.to_bytes())));
    let vk = value_key(&key(0), 2);
    out.push_str("# smt_values key and sealed value: k0 = b\"new\" at version 2\n");
    out.push_str(&hex(&vk));
    out.push_str(&hex(&seal(&vk, b"\x01new")));
    let sk = 2u64.to_be_bytes();
    out.push_str("# smt_stale key and sealed row of version 2\n");
    out.push_str(&hex(&sk));
    out.push_str(&hex(&seal(&sk, &encode_stale_row(&b2).unwrap())));
    out.push_str("# state batch of version 2, as carried in its block's frame\n");
    out.push_str(&hex(&encode_state_batch(&b2).unwrap()));

    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/golden/format-v{FORMAT_VERSION}.hex"));
    if std::env::var_os("GOVCHAIN_BLESS").is_some() {
        std::fs::write(&path, &out).unwrap();
    }
    let golden = std::fs::read_to_string(&path).expect("golden file; run with GOVCHAIN_BLESS=1");
    assert_eq!(
        out, golden,
        "on-disk format changed; bump FORMAT_VERSION and re-bless"
    );
}

/// The previous format stays pinned by `tests/golden/format-v2.hex`: a
/// store whose manifest holds those exact format-2 bytes is refused with
/// `UnsupportedFormat` before anything in it is touched (format 3 changed
/// the frame, so a format-2 log cannot be read as a write-ahead log).
#[test]
fn format_v2_store_is_refused_untouched() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/format-v2.hex");
    let golden = std::fs::read_to_string(&path).unwrap();
    // The first section of the golden file is the format-2 manifest.
    let manifest: Vec<u8> = golden
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    assert_eq!(manifest, encode_manifest(2, CHAIN), "golden v2 manifest");
    let (disk, _) = build(4, 3);
    disk.write_file(&Path::new(DIR).join("MANIFEST"), &manifest)
        .unwrap();
    let before = snapshot(&disk);
    assert!(matches!(
        open_sim(&disk),
        Err(StorageError::UnsupportedFormat { found: 2, supported }) if supported == FORMAT_VERSION
    ));
    assert_eq!(snapshot(&disk), before);
}
