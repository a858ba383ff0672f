//! Bit flips in the log, index and manifest; refusal of foreign
//! directories; the golden on-disk format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::*;
use govchain_core::codec::Encode;
use govchain_core::smt::{
    KeyHash, MemoryNodeStore, NodeKey, NodeStore, SmtError, SparseMerkleTree,
};
use govchain_core::types::{ChainId, Height};
use govchain_storage::format::{
    encode_deferred_state, encode_frame, encode_manifest, encode_page_sum, encode_segment_header,
    encode_stale_row, encode_state_batch, node_key, seal, value_key, FORMAT_VERSION,
    INDEX_PAGE_LEN, PAGE_SUMS_MAGIC,
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

/// Reads everything `wl` stored in the first `blocks` heights of `store`:
/// every block by height and by hash, every state key through the tree and
/// through the value index
/// ([`NodeStore::get_value`], as the executor's state view reads it) at
/// several versions. Each read must return exactly the committed data or
/// [`StorageError::Corruption`] — never other data, never "absent" for
/// something stored. Returns whether any read reported corruption.
fn read_everything(store: &DurableStore, wl: &Workload, blocks: u64, what: &str) -> bool {
    let mut caught = false;
    let mut check = |e: &StorageError, read: &str| {
        assert!(e.is_corruption(), "{what}: {read}: not corruption: {e:?}");
        caught = true;
    };
    for h in 1..=blocks {
        let want = wl.entry(h);
        match store.block(Height::new(h)) {
            Ok(Some(b)) => assert_block(&b, wl, h, what),
            Ok(None) => panic!("{what}: block {h} vanished"),
            Err(e) => check(&e, &format!("block {h}")),
        }
        match store.height_of(&want.block.hash()) {
            Ok(Some(got)) => assert_eq!(got, Height::new(h), "{what}: height of block {h}"),
            Ok(None) => panic!("{what}: hash of block {h} vanished"),
            Err(e) => check(&e, &format!("height of block {h}")),
        }
    }
    let tree = SparseMerkleTree::new(store, govchain_core::hash::HashFunction::Blake3);
    let reference = wl.reference();
    let reference_tree =
        SparseMerkleTree::new(reference, govchain_core::hash::HashFunction::Blake3);
    for i in 0..48 {
        for v in [1, blocks / 2, blocks] {
            match tree.get(&key(i), v) {
                Ok(got) => assert_eq!(
                    got,
                    reference_tree.get(&key(i), v).unwrap(),
                    "{what}: key {i} at version {v} through the tree"
                ),
                Err(SmtError::Store { source }) => {
                    check(&source, &format!("key {i} at version {v} through the tree"))
                }
                Err(e) => panic!("{what}: key {i} at version {v} through the tree: {e:?}"),
            }
            match store.get_value(&key(i), v) {
                Ok(got) => assert_eq!(
                    got,
                    reference.get_value(&key(i), v).unwrap(),
                    "{what}: key {i} at version {v}"
                ),
                Err(e) => check(&e, &format!("key {i} at version {v}")),
            }
        }
    }
    caught
}

/// Flips random bits in the segments, the redb file and its page checksums
/// of a cleanly closed store. Opening with the default configuration —
/// which after a clean close does *not* run redb's full integrity check —
/// and every read must then either return exactly the original data or a
/// typed error, never different data, never a panic; a flip inside the
/// log's written range is always caught by open, a read, or `verify`.
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
        let mut caught = read_everything(&store, &wl, blocks, &format!("{path:?}@{offset}"));
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

/// A store built by [`build`] with the seed of `test`, the path of its
/// index file, and the seed.
fn built_index(test: &str, blocks: u64) -> (SimDisk, Workload, PathBuf, u64) {
    let seed = seed(test);
    let (disk, wl) = build(seed, blocks);
    (disk, wl, Path::new(DIR).join("index.redb"), seed)
}

/// Opens the store on `disk` with the default configuration but the
/// smallest redb cache, so that reads go to the file.
fn open_uncached(disk: &SimDisk) -> Result<DurableStore, StorageError> {
    let mut config = small_config();
    config.cache_size = 64 * 1024;
    DurableStore::open_with(Arc::new(disk.clone()), DIR, chain(), config)
}

/// The index is damaged after a clean close, and the store reopened with
/// the default configuration (no full integrity check): a flip in any page
/// of `index.redb` is reported as corruption by whatever meets it — open or
/// a read — and nothing else is ever served. One flip per 4 KiB page, so
/// every page is hit; each page twice: before the open, and after it (so
/// that the read path meets it even where open would have: debug builds of
/// redb walk every allocated page when they open a database).
#[test]
fn index_flips_after_a_clean_close_are_caught_by_reads() {
    let blocks = 160;
    let (disk, wl, index, seed) = built_index(
        "index_flips_after_a_clean_close_are_caught_by_reads",
        blocks,
    );
    let len = disk.read_file(&index).unwrap().len() as u64;
    let pages = len / INDEX_PAGE_LEN as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut at_open, mut on_read, mut unread) = (0, 0, 0);
    for page in 1..pages {
        for after_open in [false, true] {
            let image = disk.frozen_copy(page);
            let offset = page * INDEX_PAGE_LEN as u64 + rng.next_u64() % INDEX_PAGE_LEN as u64;
            let bit = (rng.next_u64() % 8) as u8;
            let what = format!("index@{offset} (after open: {after_open})");
            if !after_open {
                image.flip_bit(&index, offset, bit).unwrap();
            }
            let store = match open_uncached(&image) {
                Ok(s) => s,
                Err(e) => {
                    assert!(e.is_corruption(), "{what}: open: {e:?}");
                    assert!(!after_open, "{what}: open failed: {e:?}");
                    at_open += 1;
                    continue;
                }
            };
            if after_open {
                image.flip_bit(&index, offset, bit).unwrap();
            }
            if read_everything(&store, &wl, blocks, &what) {
                on_read += 1;
                // A damaged index page poisons the handle: no more writes.
                assert!(store.is_poisoned(), "{what}: not poisoned");
            } else {
                unread += 1;
            }
        }
    }
    eprintln!(
        "index flips in {pages} pages: {at_open} caught at open, {on_read} by reads, \
         {unread} in pages nothing read (free, or cached)"
    );
    assert!(on_read > 0, "no flip was met by a read");
}

/// The failure the page checksums exist for: the key of the current row is
/// damaged so that a redb lookup would miss it and find an older intact row
/// (a stale value, an "absent" block hash). After a clean close and a
/// default open, those reads must report corruption.
#[test]
fn damaged_index_keys_give_corruption_not_stale_rows() {
    let blocks = 40;
    let (disk, wl, index, _) =
        built_index("damaged_index_keys_give_corruption_not_stale_rows", blocks);
    // A key with value rows at several versions, and the version of its
    // last row. Rows, not the keys a block touched: deleting a key that is
    // already absent writes no row.
    let reference = wl.reference();
    let (k, latest) = (0..48)
        .filter_map(|i| {
            let writes: Vec<u64> = (1..=blocks)
                .filter(|h| {
                    wl.entry(*h)
                        .batch
                        .values
                        .iter()
                        .any(|(kh, _, _)| *kh == key(i))
                })
                .collect();
            (writes.len() >= 2).then(|| (key(i), *writes.last().unwrap()))
        })
        .next()
        .expect("some key is written twice");
    let h = blocks / 2;
    let hash = wl.entry(h).block.hash();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("value key", value_key(&k, latest).to_vec()),
        ("block hash key", hash.as_bytes().to_vec()),
    ];
    for (what, needle) in cases {
        let image = disk.frozen_copy(1);
        let bytes = image.read_file(&index).unwrap();
        let hits: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(at, w)| *at >= INDEX_PAGE_LEN && *w == needle.as_slice())
            .map(|(at, _)| at)
            .collect();
        assert!(!hits.is_empty(), "{what}: not found in the index");
        // Change the key's first byte everywhere it is stored, so that the
        // row sorts elsewhere and an exact or "latest <=" lookup misses it.
        for at in hits {
            image.flip_bit(&index, at as u64, 7).unwrap();
        }
        let store = match open_sim(&image) {
            Ok(s) => s,
            Err(e) => {
                assert!(e.is_corruption(), "{what}: open: {e:?}");
                continue;
            }
        };
        let r = store.get_value(&k, blocks);
        assert!(
            r.as_ref().is_err_and(|e| e.is_corruption()),
            "{what}: value read gave {r:?}, reference {:?}",
            reference.get_value(&k, blocks)
        );
        let r = store.height_of(&hash);
        assert!(
            r.as_ref().is_err_and(|e| e.is_corruption()),
            "{what}: height_of gave {r:?}"
        );
        read_everything(&store, &wl, blocks, what);
    }
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
    out.push_str("# the same frame compacted: its state batch elided (empty)\n");
    out.push_str(&hex(&encode_frame(42, b"block", b"cert", b"").unwrap()));

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
    out.push_str("# smt_values_by_version key and sealed value: k0 = b\"new\" at version 2\n");
    out.push_str(&hex(&vk));
    out.push_str(&hex(&seal(&vk, b"\x01new")));
    let sk = 2u64.to_be_bytes();
    out.push_str("# smt_stale key and sealed row of version 2\n");
    out.push_str(&hex(&sk));
    out.push_str(&hex(&seal(&sk, &encode_stale_row(&b2).unwrap())));
    out.push_str("# state batch of version 2, as carried in its block's frame\n");
    out.push_str(&hex(&encode_state_batch(&b2).unwrap()));
    out.push_str("# state part of the frame of height 3 in a coalesced append of heights 3..=5\n");
    out.push_str(&hex(&encode_deferred_state(3, 5)));
    out.push_str(
        "# index.sum: entry 0 (the magic), then the entry of index block 1 holding bytes i % 251\n",
    );
    out.push_str(&hex(&PAGE_SUMS_MAGIC));
    let page: Vec<u8> = (0..INDEX_PAGE_LEN).map(|i| (i % 251) as u8).collect();
    out.push_str(&hex(&encode_page_sum(1, &page)));

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

/// The previous formats stay pinned by `tests/golden/format-v{2,…,6}.hex`:
/// a store whose manifest holds the exact bytes of format 2, 3 or 4 is
/// refused with `UnsupportedFormat` before anything in it is touched
/// (format 3 changed the frame, so a format-2 log cannot be read as a
/// write-ahead log; format 4 added the index page checksums, which a
/// format-3 index lacks; format 5 may elide state batches in compacted
/// segments, which a format-4 build would report as corruption). Format 5
/// is upgraded in place instead (the `upgrade` tests).
#[test]
fn older_format_stores_are_refused_untouched() {
    for old in [2u32, 3, 4] {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/format-v{old}.hex"));
        let golden = std::fs::read_to_string(&path).unwrap();
        // The first section of a golden file is the manifest.
        let manifest: Vec<u8> = golden
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('#'))
            .flat_map(|l| l.split_whitespace())
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(
            manifest,
            encode_manifest(old, CHAIN),
            "golden v{old} manifest"
        );
        let (disk, _) = build(4, 3);
        disk.write_file(&Path::new(DIR).join("MANIFEST"), &manifest)
            .unwrap();
        let before = snapshot(&disk);
        assert!(matches!(
            open_sim(&disk),
            Err(StorageError::UnsupportedFormat { found, supported })
                if found == old && supported == FORMAT_VERSION
        ));
        assert_eq!(snapshot(&disk), before);
    }
}
