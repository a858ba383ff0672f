//! The on-disk formats of the durable store: manifest, segment header,
//! block frame (with the state batch it commits, [`encode_state_batch`])
//! and index records. All integers are little-endian unless said
//! otherwise; every record carries a CRC-32C (Castagnoli).
//!
//! # Why CRC-32C and not a truncated BLAKE3
//! The checksums here guard against *accidents* — torn writes, media bit
//! rot, a frame read at the wrong offset — not adversaries: anyone who can
//! write the disk can rewrite checksums too. CRC-32C detects every error
//! burst up to 32 bits and every 1-, 2- and 3-bit error in a frame of up to
//! 2^31 bits, runs at memory speed with the SSE4.2/ARMv8 CRC instructions,
//! and is what ext4, Btrfs, iSCSI and RocksDB use for the same job.
//! End-to-end integrity comes on top of it: the index records each block's
//! BLAKE3 hash, and every read checks the decoded header against it, so a
//! frame that passes its CRC by chance still cannot be served as the wrong
//! block.

use govchain_core::block::MAX_BLOCK_ENCODED_LEN;
use govchain_core::codec::{Decode, DecodeError, Encode, Reader};
use govchain_core::hash::Hash;
use govchain_core::smt::{
    KeyHash, Node, NodeKey, StaleNodeIndex, StaleValueIndex, TreeUpdateBatch, Version,
};

/// The store format version this build writes and reads.
///
/// - 1: binary SMT nodes, one stale-index row per stale node or value.
/// - 2: SMT nodes stored as 16-slot pages with inline leaves
///   ([`govchain_core::smt::InternalNode`]); one stale-index row per version
///   (`smt_stale`). Stores in format 1 are refused.
/// - 3: the block log is a write-ahead log: each frame (frame version 2)
///   carries the block, its certificate *and* the state batch, so the
///   frame sync alone makes an append durable and the index is rebuilt
///   from the log after a crash; the index records a clean shutdown
///   (`meta["clean_shutdown"]`). Stores in formats 1 and 2 are refused
///   with [`StorageError::UnsupportedFormat`](crate::StorageError::UnsupportedFormat).
/// - 4: every 4 KiB page of the redb index has a checksum in the file
///   `index.sum` ([`encode_page_sum`]), verified whenever the page is read
///   from disk, so index damage is reported on the read that meets it and
///   a clean open no longer needs redb's full integrity check. Stores in
///   format 3 (no `index.sum`) are refused.
/// - 5: log compaction: a frame below `meta["log_compacted_below"]` may
///   carry an empty (elided) state batch, which a format-4 build would
///   call corrupt; the index meta has `log_compacting` and
///   `log_compacted_below`. Stores in format 4 are refused.
/// - 6: value rows in `smt_values` are keyed `version | key_hash`
///   ([`value_key`]) instead of `key_hash | version`, so the rows one
///   version writes are adjacent and a commit appends them at the table's
///   right edge (as `smt_nodes` already did) instead of inserting each into
///   a random leaf page of a table of millions of rows. A read finds the
///   row through the key's leaf in the state tree, which names the version
///   that wrote the live value. The block log is unchanged. Stores in
///   format 5 are upgraded on open, in place (see
///   [`DurableStore`](crate::DurableStore), *Format upgrade*).
/// - 7: coalesced appends
///   ([`append_coalesced`](crate::BlockStore::append_coalesced)): a frame's
///   state part may be a *deferral* ([`encode_deferred_state`]), naming the
///   later frame whose state batch stands for this block's version too. A
///   format-6 build would call such a frame corrupt. Stores in format 5 or
///   6 are upgraded on open (6: only the manifest and `meta["format"]`).
pub const FORMAT_VERSION: u32 = 7;

/// The oldest store format that [`DurableStore`](crate::DurableStore)
/// opens: a format-5 store is upgraded in place on open (its block log is
/// read as format 7 reads it; its index is rewritten), a format-6 store by
/// recording the new format. Older ones are refused.
pub const OLDEST_UPGRADABLE_FORMAT: u32 = 5;

/// Magic bytes opening the `MANIFEST` file.
pub const MANIFEST_MAGIC: [u8; 16] = *b"GOVCHAIN-STORE\r\n";

/// Magic bytes opening every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"GCSEGMNT";

/// Length of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;

/// Magic bytes opening every block frame.
pub const FRAME_MAGIC: [u8; 4] = *b"GCBF";

/// The frame format version (1 in store formats 1 and 2).
pub const FRAME_VERSION: u8 = 2;

/// Bytes before a frame's payload.
pub const FRAME_HEADER_LEN: usize = 20;

/// Bytes of a frame up to the block: the header, then the block and
/// certificate lengths.
pub const FRAME_HEAD_LEN: usize = FRAME_HEADER_LEN + 8;

/// Bytes after a frame's payload (the CRC).
pub const FRAME_TRAILER_LEN: usize = 4;

/// Largest commit certificate accepted in a frame.
pub const MAX_CERT_LEN: usize = 1024 * 1024;

/// Largest encoded state batch accepted in a frame ([`encode_state_batch`]).
pub const MAX_STATE_LEN: usize = 512 * 1024 * 1024;

/// Largest value stored under one state key in a state batch.
pub const MAX_STATE_VALUE_LEN: usize = 64 * 1024 * 1024;

/// Largest frame payload: the two lengths, a maximal block, a maximal
/// certificate, the block-part CRC and a maximal state batch. Checked
/// before anything is allocated.
pub const MAX_FRAME_PAYLOAD: usize = 8 + MAX_BLOCK_ENCODED_LEN + MAX_CERT_LEN + 4 + MAX_STATE_LEN;

/// Length of an index location record.
pub const LOCATION_LEN: usize = 56;

/// Bytes of the index file (`index.redb`) covered by one page checksum:
/// redb's page size. Block `b` is the bytes `b * INDEX_PAGE_LEN ..
/// (b + 1) * INDEX_PAGE_LEN`.
pub const INDEX_PAGE_LEN: usize = 4096;

/// Bytes of one entry of the page-checksum file `index.sum`
/// ([`encode_page_sum`]); entry `b`, at offset `b * PAGE_SUM_LEN`, is the
/// checksum of index block `b`.
pub const PAGE_SUM_LEN: usize = 8;

/// Entry 0 of `index.sum`. Block 0 of the index is redb's database header,
/// which redb rewrites in place and protects itself (a checksum per commit
/// slot), so it has no page checksum; its entry names the file instead.
pub const PAGE_SUMS_MAGIC: [u8; PAGE_SUM_LEN] = *b"GCPGSUM4";

/// The `index.sum` entry of index block `block` holding `data` (at most
/// [`INDEX_PAGE_LEN`] bytes; a block cut short by the end of the file is
/// taken as zero-padded): `crc32c(block u64 LE | data | zero padding)` as
/// u32 LE, then its bitwise complement. The all-zero entry means "no
/// checksum": the block was never written and must read as zeros.
pub fn encode_page_sum(block: u64, data: &[u8]) -> [u8; PAGE_SUM_LEN] {
    static ZEROS: [u8; INDEX_PAGE_LEN] = [0; INDEX_PAGE_LEN];
    let pad = ZEROS
        .get(..INDEX_PAGE_LEN.saturating_sub(data.len()))
        .unwrap_or_default();
    let c = crc(&[&block.to_le_bytes(), data, pad]);
    let mut e = [0u8; PAGE_SUM_LEN];
    e[..4].copy_from_slice(&c.to_le_bytes());
    e[4..].copy_from_slice(&(!c).to_le_bytes());
    e
}

/// Checks index block `block`, read as `data`, against its `index.sum`
/// entry; a reason on failure.
pub(crate) fn check_page_sum(
    entry: &[u8; PAGE_SUM_LEN],
    block: u64,
    data: &[u8],
) -> Result<(), &'static str> {
    if *entry == [0u8; PAGE_SUM_LEN] {
        return if data.iter().all(|b| *b == 0) {
            Ok(())
        } else {
            Err("index page has data but no checksum")
        };
    }
    if u32_at(entry, 0).map(|c| !c) != u32_at(entry, 4) {
        return Err("index page checksum entry is damaged");
    }
    if *entry != encode_page_sum(block, data) {
        return Err("index page checksum mismatch");
    }
    Ok(())
}

pub(crate) fn crc(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0u32, |c, p| crc32c::crc32c_append(c, p))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The manifest: magic, format version, chain id, CRC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub format: u32,
    pub chain_id: String,
}

/// The `MANIFEST` bytes of a store for `chain_id` in format `format`:
/// `magic[16] | format u32 | chain_len u8 | chain bytes | crc32c u32`.
pub fn encode_manifest(format: u32, chain_id: &str) -> Vec<u8> {
    Manifest {
        format,
        chain_id: chain_id.to_owned(),
    }
    .encode()
}

/// Why a manifest was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ManifestError {
    /// Not our magic: not a store.
    NotOurs,
    /// Our magic, but the checksum or layout is wrong.
    Corrupt(&'static str),
}

impl Manifest {
    /// `magic[16] | format u32 | chain_len u8 | chain bytes | crc32c u32`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MANIFEST_MAGIC.to_vec();
        out.extend_from_slice(&self.format.to_le_bytes());
        let chain = self.chain_id.as_bytes();
        out.push(u8::try_from(chain.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chain);
        let c = crc(&[&out]);
        out.extend_from_slice(&c.to_le_bytes());
        out
    }

    pub fn decode(b: &[u8]) -> Result<Self, ManifestError> {
        if b.get(..16) != Some(&MANIFEST_MAGIC[..]) {
            return Err(ManifestError::NotOurs);
        }
        if b.len() > 16 + 4 + 1 + 255 + 4 {
            return Err(ManifestError::Corrupt("manifest too long"));
        }
        let body_len = b
            .len()
            .checked_sub(4)
            .ok_or(ManifestError::Corrupt("manifest truncated"))?;
        let (body, tail) = b.split_at(body_len);
        if u32_at(tail, 0) != Some(crc(&[body])) {
            return Err(ManifestError::Corrupt("manifest checksum mismatch"));
        }
        let format = u32_at(body, 16).ok_or(ManifestError::Corrupt("manifest truncated"))?;
        let len = usize::from(
            *body
                .get(20)
                .ok_or(ManifestError::Corrupt("manifest truncated"))?,
        );
        let chain = body
            .get(21..)
            .filter(|c| c.len() == len)
            .ok_or(ManifestError::Corrupt("manifest chain id length"))?;
        let chain_id = String::from_utf8(chain.to_vec())
            .map_err(|_| ManifestError::Corrupt("manifest chain id is not UTF-8"))?;
        Ok(Manifest { format, chain_id })
    }
}

/// The 32-byte header of the segment whose first height is `base`:
/// `magic[8] | format u32 | 0u32 | base height u64 | crc32c u32 | 0u32`.
pub fn encode_segment_header(base: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    let c = crc(&[&h[..24]]);
    h[24..28].copy_from_slice(&c.to_le_bytes());
    h
}

/// Checks a segment header; returns a reason on failure.
pub(crate) fn check_segment_header(h: &[u8], base: u64) -> Result<(), &'static str> {
    if h.get(..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err("bad segment magic");
    }
    if u32_at(h, 24) != Some(crc(&[h.get(..24).unwrap_or_default()])) {
        return Err("segment header checksum mismatch");
    }
    // The trailing reserved word is outside the checksum (format v1), so it
    // must be checked on its own: a flipped bit there is corruption too.
    if u32_at(h, 28) != Some(0) {
        return Err("segment header reserved bytes are not zero");
    }
    // Format 6 changed only the index, so a log segment written by format
    // 5 (a store upgraded in place) is read as it is.
    if !u32_at(h, 8).is_some_and(|f| (OLDEST_UPGRADABLE_FORMAT..=FORMAT_VERSION).contains(&f)) {
        return Err("unsupported segment format version");
    }
    if u64_at(h, 16) != Some(base) {
        return Err("segment header names another base height");
    }
    Ok(())
}

/// The state part of a frame written by a coalesced append for a block
/// before the last: the first height of the append and the height of its
/// closing frame (u64 each, little-endian), whose state batch is the
/// coalesced batch of every block of the append. No state batch is 16
/// bytes long, so the part's length tells the kinds apart.
///
/// Recovery relies on the first height: the deferred frames are synced
/// before the closing frame is written, so after a crash that kept only
/// some of them, every frame left after the first damaged one is a
/// deferred frame of the same unacknowledged append (same first height),
/// never a closing frame or an ordinary one.
pub fn encode_deferred_state(first_height: u64, closing_height: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&first_height.to_le_bytes());
    out[8..].copy_from_slice(&closing_height.to_le_bytes());
    out
}

/// The first and closing heights of a deferred state part
/// ([`encode_deferred_state`]); `None` for any other part.
pub(crate) fn deferred_state(part: &[u8]) -> Option<(u64, u64)> {
    if part.len() != 16 {
        return None;
    }
    Some((u64_at(part, 0)?, u64_at(part, 8)?))
}

/// Encodes one block frame from the canonical encodings of a block, its
/// certificate and the state batch it commits ([`encode_state_batch`]);
/// `None` if they exceed [`MAX_FRAME_PAYLOAD`] or a per-part limit.
/// Layout (`B`, `C`, `S`: block, certificate and state lengths):
///
/// ```text
/// offset    size  field
/// 0         4     magic "GCBF"
/// 4         1     frame version (2)
/// 5         3     reserved, zero
/// 8         4     payload length L = 12 + B + C + S (u32), at most MAX_FRAME_PAYLOAD
/// 12        8     height (u64)
/// 20        4     block length B (u32)
/// 24        4     certificate length C (u32)
/// 28        B     block
/// 28+B      C     certificate
/// 28+B+C    4     CRC-32C of bytes 0 .. 28+B+C (the *block part*)
/// 32+B+C    S     state batch
/// 20+L      4     CRC-32C of bytes 0 .. 20+L (the whole frame)
/// ```
///
/// The state part `S` is one of: a state batch ([`encode_state_batch`],
/// never shorter than 24 bytes); empty, for a batch elided by log
/// compaction; or exactly 16 bytes, a deferral to a later frame
/// ([`encode_deferred_state`]).
///
/// The block part has its own checksum so that a read by height reads and
/// checks only the block and certificate, not the state batch (which only
/// recovery needs); recovery and [`verify`](crate::DurableStore::verify)
/// check the whole-frame checksum.
pub fn encode_frame(height: u64, block: &[u8], cert: &[u8], state: &[u8]) -> Option<Vec<u8>> {
    if block.len() > MAX_BLOCK_ENCODED_LEN
        || cert.len() > MAX_CERT_LEN
        || state.len() > MAX_STATE_LEN
    {
        return None;
    }
    let payload_len = 12 + block.len() + cert.len() + state.len();
    if payload_len > MAX_FRAME_PAYLOAD {
        return None;
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload_len + FRAME_TRAILER_LEN);
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(FRAME_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&u32::try_from(payload_len).ok()?.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&u32::try_from(block.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&u32::try_from(cert.len()).ok()?.to_le_bytes());
    out.extend_from_slice(block);
    out.extend_from_slice(cert);
    let c = crc(&[&out]);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(state);
    let c = crc(&[&out]);
    out.extend_from_slice(&c.to_le_bytes());
    Some(out)
}

/// The fields of a checked frame header.
pub(crate) struct FrameHeader {
    pub height: u64,
    pub payload_len: usize,
}

impl FrameHeader {
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len + FRAME_TRAILER_LEN
    }
}

/// Parses a frame header; the length is capped here, before the caller
/// allocates the payload.
pub(crate) fn parse_frame_header(h: &[u8]) -> Result<FrameHeader, &'static str> {
    if h.get(..4) != Some(&FRAME_MAGIC[..]) {
        return Err("bad frame magic");
    }
    if h.get(4) != Some(&FRAME_VERSION) {
        return Err("unsupported frame version");
    }
    if h.get(5..8) != Some(&[0u8, 0, 0][..]) {
        return Err("nonzero reserved frame bytes");
    }
    let len = u32_at(h, 8).ok_or("frame header truncated")?;
    let payload_len = usize::try_from(len).map_err(|_| "frame length overflow")?;
    if !(12..=MAX_FRAME_PAYLOAD).contains(&payload_len) {
        return Err("frame length out of range");
    }
    let height = u64_at(h, 12).ok_or("frame header truncated")?;
    Ok(FrameHeader {
        height,
        payload_len,
    })
}

/// The length of the block part of a frame (header, lengths, block,
/// certificate and the block-part CRC), from the first [`FRAME_HEAD_LEN`]
/// bytes of a frame whose header `fh` was parsed; checked against the
/// frame length and the per-part limits before anything is allocated.
pub(crate) fn block_part_len(head: &[u8], fh: &FrameHeader) -> Result<usize, &'static str> {
    let block_len = u32_at(head, 20).ok_or("frame header truncated")?;
    let cert_len = u32_at(head, 24).ok_or("frame header truncated")?;
    let block_len = usize::try_from(block_len).map_err(|_| "block length overflow")?;
    let cert_len = usize::try_from(cert_len).map_err(|_| "certificate length overflow")?;
    if block_len > MAX_BLOCK_ENCODED_LEN {
        return Err("block too long");
    }
    if cert_len > MAX_CERT_LEN {
        return Err("certificate too long");
    }
    let part = FRAME_HEAD_LEN + block_len + cert_len + 4;
    if part + FRAME_TRAILER_LEN > fh.frame_len() {
        return Err("block and certificate lengths exceed the frame");
    }
    if fh.frame_len() - part - FRAME_TRAILER_LEN > MAX_STATE_LEN {
        return Err("state batch too long");
    }
    Ok(part)
}

/// Checks the block-part CRC of `part` (the first [`block_part_len`] bytes
/// of a frame) and splits it into block and certificate bytes.
pub(crate) fn split_block_part(part: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let body_len = part.len().checked_sub(4).ok_or("frame truncated")?;
    let (body, tail) = part.split_at(body_len);
    if u32_at(tail, 0) != Some(crc(&[body])) {
        return Err("frame block checksum mismatch");
    }
    let block_len = u32_at(body, 20).ok_or("frame truncated")? as usize;
    let rest = body.get(FRAME_HEAD_LEN..).ok_or("frame truncated")?;
    if block_len > rest.len() {
        return Err("block length exceeds the frame");
    }
    let (block, cert) = rest.split_at(block_len);
    if cert.len() > MAX_CERT_LEN {
        return Err("certificate too long");
    }
    Ok((block, cert))
}

/// The block, certificate and state batch bytes of a frame.
pub(crate) type FrameParts<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Checks a whole frame (both CRCs and the part lengths) and splits it into
/// block, certificate and state batch bytes.
pub(crate) fn split_frame(frame: &[u8]) -> Result<FrameParts<'_>, &'static str> {
    let fh = parse_frame_header(frame)?;
    if fh.frame_len() != frame.len() {
        return Err("frame length mismatch");
    }
    let body_len = frame
        .len()
        .checked_sub(FRAME_TRAILER_LEN)
        .ok_or("frame truncated")?;
    let (body, tail) = frame.split_at(body_len);
    if u32_at(tail, 0) != Some(crc(&[body])) {
        return Err("frame checksum mismatch");
    }
    let part = block_part_len(frame, &fh)?;
    let (block, cert) = split_block_part(body.get(..part).ok_or("frame truncated")?)?;
    let state = body.get(part..).ok_or("frame truncated")?;
    Ok((block, cert, state))
}

/// Encodes a state batch for a frame, canonically:
///
/// ```text
/// version u64
/// node count u32,  then per node:  node key (NodeKey codec) | node (Node codec)
/// value count u32, then per value: key hash 32 | version u64 | 0 (deleted)
///                                  or 1 | length u32 | bytes
/// stale node count u32,  then per entry: stale_since u64 | node key
/// stale value count u32, then per entry: stale_since u64 | key hash 32 | version u64
/// ```
///
/// (the `govchain-core` canonical codec: integers little-endian). `None` if
/// it exceeds [`MAX_STATE_LEN`] or a value exceeds [`MAX_STATE_VALUE_LEN`].
pub fn encode_state_batch(batch: &TreeUpdateBatch) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    batch.version.encode_to(&mut out);
    encode_count(batch.nodes.len(), &mut out)?;
    for (k, n) in &batch.nodes {
        k.encode_to(&mut out);
        n.encode_to(&mut out);
    }
    encode_count(batch.values.len(), &mut out)?;
    for (kh, v, value) in &batch.values {
        kh.encode_to(&mut out);
        v.encode_to(&mut out);
        match value {
            None => out.push(0),
            Some(bytes) => {
                if bytes.len() > MAX_STATE_VALUE_LEN {
                    return None;
                }
                out.push(1);
                encode_count(bytes.len(), &mut out)?;
                out.extend_from_slice(bytes);
            }
        }
    }
    encode_count(batch.stale_nodes.len(), &mut out)?;
    for s in &batch.stale_nodes {
        s.stale_since.encode_to(&mut out);
        s.node_key.encode_to(&mut out);
    }
    encode_count(batch.stale_values.len(), &mut out)?;
    for s in &batch.stale_values {
        s.stale_since.encode_to(&mut out);
        s.key_hash.encode_to(&mut out);
        s.version.encode_to(&mut out);
    }
    (out.len() <= MAX_STATE_LEN).then_some(out)
}

fn encode_count(n: usize, out: &mut Vec<u8>) -> Option<()> {
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    Some(())
}

/// Decodes a state batch written by [`encode_state_batch`], refusing any
/// non-canonical or oversized input. Every count is checked against the
/// input left (at its smallest encoded item size) before anything is
/// allocated.
pub fn decode_state_batch(bytes: &[u8]) -> Result<TreeUpdateBatch, DecodeError> {
    if bytes.len() > MAX_STATE_LEN {
        return Err(DecodeError::InputTooLarge {
            len: bytes.len(),
            limit: MAX_STATE_LEN,
        });
    }
    let r = &mut Reader::new(bytes);
    let mut batch = TreeUpdateBatch::default();
    batch.version = Version::decode_from(r)?;
    // Smallest items: node key 10 + empty node 1; value 32 + 8 + 1; stale
    // node 8 + 10; stale value 8 + 32 + 8.
    let n = r.length("state batch nodes", MAX_STATE_LEN, 11)?;
    batch.nodes = Vec::with_capacity(n);
    for _ in 0..n {
        batch
            .nodes
            .push((NodeKey::decode_from(r)?, Node::decode_from(r)?));
    }
    let n = r.length("state batch values", MAX_STATE_LEN, 41)?;
    batch.values = Vec::with_capacity(n);
    for _ in 0..n {
        let kh = KeyHash::decode_from(r)?;
        let v = Version::decode_from(r)?;
        let value = match r.u8()? {
            0 => None,
            1 => Some(r.bytes("state value", MAX_STATE_VALUE_LEN)?.to_vec()),
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "state value",
                    tag,
                })
            }
        };
        batch.values.push((kh, v, value));
    }
    let n = r.length("state batch stale nodes", MAX_STATE_LEN, 18)?;
    batch.stale_nodes = Vec::with_capacity(n);
    for _ in 0..n {
        batch.stale_nodes.push(StaleNodeIndex {
            stale_since: Version::decode_from(r)?,
            node_key: NodeKey::decode_from(r)?,
        });
    }
    let n = r.length("state batch stale values", MAX_STATE_LEN, 48)?;
    batch.stale_values = Vec::with_capacity(n);
    for _ in 0..n {
        batch.stale_values.push(StaleValueIndex {
            stale_since: Version::decode_from(r)?,
            key_hash: KeyHash::decode_from(r)?,
            version: Version::decode_from(r)?,
        });
    }
    r.finish()?;
    Ok(batch)
}

/// Where a block's frame lives, as the index records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: u64,
    pub offset: u64,
    pub frame_len: u32,
    pub hash: Hash,
}

impl Location {
    /// `segment u64 | offset u64 | frame_len u32 | hash[32] | crc32c(height | all before)`.
    pub fn encode(&self, height: u64) -> [u8; LOCATION_LEN] {
        let mut b = [0u8; LOCATION_LEN];
        b[..8].copy_from_slice(&self.segment.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.frame_len.to_le_bytes());
        b[20..52].copy_from_slice(self.hash.as_bytes());
        let c = crc(&[&height.to_le_bytes(), &b[..52]]);
        b[52..56].copy_from_slice(&c.to_le_bytes());
        b
    }

    pub fn decode(height: u64, b: &[u8]) -> Result<Self, &'static str> {
        if b.len() != LOCATION_LEN {
            return Err("location record has the wrong length");
        }
        if u32_at(b, 52)
            != Some(crc(&[
                &height.to_le_bytes(),
                b.get(..52).unwrap_or_default(),
            ]))
        {
            return Err("location record checksum mismatch");
        }
        let hash: [u8; 32] = b
            .get(20..52)
            .and_then(|h| h.try_into().ok())
            .ok_or("location record truncated")?;
        Ok(Location {
            segment: u64_at(b, 0).ok_or("location record truncated")?,
            offset: u64_at(b, 8).ok_or("location record truncated")?,
            frame_len: u32_at(b, 16).ok_or("location record truncated")?,
            hash: Hash::from_bytes(hash),
        })
    }
}

/// Appends a CRC-32C of `key | value` to `value`: the form of every value
/// in the index tables, so a flipped bit in a stored value (or a value
/// served under the wrong key) is detected on read.
pub fn seal(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 4);
    out.extend_from_slice(value);
    out.extend_from_slice(&crc(&[key, value]).to_le_bytes());
    out
}

/// Checks and strips the CRC that [`seal`] appended.
pub(crate) fn unseal<'a>(key: &[u8], sealed: &'a [u8]) -> Result<&'a [u8], &'static str> {
    let n = sealed.len().checked_sub(4).ok_or("index value truncated")?;
    let (value, tail) = sealed.split_at(n);
    if u32_at(tail, 0) != Some(crc(&[key, value])) {
        return Err("index value checksum mismatch");
    }
    Ok(value)
}

/// The key of a node in `smt_nodes`: `version u64 BE | depth u16 BE | the
/// first ceil(depth / 8) path bytes`. The version comes first, big-endian,
/// so the nodes one version writes are adjacent and a commit appends to the
/// table's right edge.
pub fn node_key(key: &NodeKey) -> Vec<u8> {
    let depth = key.path.depth();
    let n = depth.div_ceil(8);
    let mut k = Vec::with_capacity(10 + n);
    k.extend_from_slice(&key.version.to_be_bytes());
    k.extend_from_slice(&(depth as u16).to_be_bytes());
    k.extend_from_slice(key.path.bits().get(..n).unwrap_or(&[]));
    k
}

/// The key of a value entry in `smt_values`: `version u64 BE | key_hash
/// 32`. The version comes first, like [`node_key`]'s, so the values one
/// version writes are adjacent and a commit appends to the table's right
/// edge. (Format 5 and earlier ordered the key hash first; see
/// [`FORMAT_VERSION`].)
pub fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&version.to_be_bytes());
    k[8..].copy_from_slice(key_hash.hash().as_bytes());
    k
}

/// The `smt_stale` row (before sealing) of `batch`, stored under
/// `batch.version` (u64 BE): `node_count u32 | (key_len u8 | node key)* |
/// value_count u32 | value key*`, where node keys are the `smt_nodes` keys
/// ([`node_key`]) and value keys the `smt_values` keys ([`value_key`]). `None` if a count does not fit.
pub fn encode_stale_row(batch: &TreeUpdateBatch) -> Option<Vec<u8>> {
    let mut out =
        Vec::with_capacity(8 + 44 * batch.stale_nodes.len() + 40 * batch.stale_values.len());
    let nodes = u32::try_from(batch.stale_nodes.len()).ok()?;
    out.extend_from_slice(&nodes.to_le_bytes());
    for s in &batch.stale_nodes {
        let k = node_key(&s.node_key);
        out.push(u8::try_from(k.len()).ok()?);
        out.extend_from_slice(&k);
    }
    let values = u32::try_from(batch.stale_values.len()).ok()?;
    out.extend_from_slice(&values.to_le_bytes());
    for s in &batch.stale_values {
        out.extend_from_slice(&value_key(&s.key_hash, s.version));
    }
    Some(out)
}

/// The key a value row had in format 5 (`key_hash 32 | version u64 BE`),
/// rewritten as its format-6 [`value_key`]; `None` if it is not 40 bytes.
pub(crate) fn value_key_from_v5(legacy: &[u8]) -> Option<[u8; 40]> {
    let (key_hash, version) = legacy.split_first_chunk::<32>()?;
    let version: &[u8; 8] = version.try_into().ok()?;
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(version);
    k[8..].copy_from_slice(key_hash);
    Some(k)
}

/// A format-5 `smt_stale` row (before sealing) rewritten for format 6:
/// the same node keys, and every value key rewritten by
/// [`value_key_from_v5`].
pub(crate) fn stale_row_from_v5(row: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (_, values) = decode_stale_row(row)?;
    let prefix = row.len().saturating_sub(values.len() * 40);
    let mut out = Vec::with_capacity(row.len());
    out.extend_from_slice(row.get(..prefix).ok_or("stale row truncated")?);
    for legacy in values {
        out.extend_from_slice(&value_key_from_v5(legacy).ok_or("stale row value key length")?);
    }
    Ok(out)
}

/// The node keys and value keys listed in a `smt_stale` row.
#[allow(clippy::type_complexity)]
pub(crate) fn decode_stale_row(row: &[u8]) -> Result<(Vec<&[u8]>, Vec<&[u8]>), &'static str> {
    let count = |r: &mut &[u8]| -> Result<usize, &'static str> {
        let (n, rest) = r.split_first_chunk::<4>().ok_or("stale row truncated")?;
        *r = rest;
        Ok(u32::from_le_bytes(*n) as usize)
    };
    let mut r = row;
    let n = count(&mut r)?;
    let mut nodes = Vec::with_capacity(n.min(r.len()));
    for _ in 0..n {
        let (len, rest) = r.split_first().ok_or("stale row truncated")?;
        let len = usize::from(*len);
        if rest.len() < len {
            return Err("stale row truncated");
        }
        let (k, rest) = rest.split_at(len);
        nodes.push(k);
        r = rest;
    }
    let n = count(&mut r)?;
    if r.len() != n.saturating_mul(40) {
        return Err("stale row value keys do not fill the row");
    }
    Ok((nodes, r.chunks_exact(40).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_every_bit_flip_is_caught() {
        let frame = encode_frame(7, b"block-bytes", b"cert", b"state").unwrap();
        let h = parse_frame_header(&frame).unwrap();
        assert_eq!((h.height, h.frame_len()), (7, frame.len()));
        assert_eq!(
            split_frame(&frame).unwrap(),
            (&b"block-bytes"[..], &b"cert"[..], &b"state"[..])
        );
        let part = block_part_len(&frame, &h).unwrap();
        assert_eq!(
            split_block_part(&frame[..part]).unwrap(),
            (&b"block-bytes"[..], &b"cert"[..])
        );
        for i in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let header_ok = parse_frame_header(&bad)
                .map(|h| h.height == 7 && h.frame_len() == frame.len())
                .unwrap_or(false);
            assert!(
                !header_ok || split_frame(&bad).is_err(),
                "bit {i} undetected"
            );
            // A read by height checks only the block part: every flip in
            // it is caught there.
            if i / 8 < part {
                let caught = parse_frame_header(&bad)
                    .and_then(|h| {
                        let p = block_part_len(&bad, &h)?;
                        if h.height != 7 || h.frame_len() != frame.len() || p > bad.len() {
                            return Err("header changed");
                        }
                        split_block_part(&bad[..p]).map(|_| ())
                    })
                    .is_err();
                assert!(caught, "bit {i} in the block part undetected by a read");
            }
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        let mut frame = encode_frame(1, b"b", b"", b"").unwrap();
        frame[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_frame_header(&frame).is_err());
        let mut frame = encode_frame(1, b"b", b"", b"").unwrap();
        frame[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let h = parse_frame_header(&frame).unwrap();
        assert!(block_part_len(&frame, &h).is_err());
    }

    #[test]
    fn state_batch_round_trip_and_refusals() {
        use govchain_core::smt::{MemoryNodeStore, SparseMerkleTree};
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
        let key = |i: u8| KeyHash::of(govchain_core::hash::HashFunction::Blake3, &[b'k', i]);
        let v1: Vec<_> = (0..40).map(|i| (key(i), Some(vec![i; 5]))).collect();
        let (_, b1) = tree.apply_batch(None, 1, &v1).unwrap();
        store.write_batch(b1.clone()).unwrap();
        let (_, b2) = tree
            .apply_batch(Some(1), 2, &[(key(0), None), (key(1), Some(vec![]))])
            .unwrap();
        for b in [&b1, &b2, &TreeUpdateBatch::default()] {
            let bytes = encode_state_batch(b).unwrap();
            assert_eq!(&decode_state_batch(&bytes).unwrap(), b);
            // Truncations and trailing bytes are refused.
            for cut in [0, 1, bytes.len() / 2, bytes.len().saturating_sub(1)] {
                if cut < bytes.len() {
                    assert!(decode_state_batch(&bytes[..cut]).is_err());
                }
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(decode_state_batch(&long).is_err());
        }
        // A huge count is refused before allocating.
        let mut bytes = encode_state_batch(&TreeUpdateBatch::default()).unwrap();
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_state_batch(&bytes).is_err());
    }

    /// A format-5 stale row (value keys `key_hash | version`) rewritten
    /// by the upgrade is exactly the format-6 row of the same batch, and
    /// every format-5 value key maps to the format-6 key of the same entry.
    #[test]
    fn stale_rows_and_value_keys_upgrade_from_format_5() {
        use govchain_core::smt::{MemoryNodeStore, SparseMerkleTree};
        let store = MemoryNodeStore::new();
        let tree = SparseMerkleTree::new(&store, govchain_core::hash::HashFunction::Blake3);
        let key = |i: u8| KeyHash::of(govchain_core::hash::HashFunction::Blake3, &[b'k', i]);
        let v1: Vec<_> = (0..40).map(|i| (key(i), Some(vec![i; 5]))).collect();
        let (_, b1) = tree.apply_batch(None, 1, &v1).unwrap();
        store.write_batch(b1).unwrap();
        let updates: Vec<_> = (0..20).map(|i| (key(i * 2), Some(vec![9]))).collect();
        let (_, b2) = tree.apply_batch(Some(1), 2, &updates).unwrap();
        assert!(b2.stale_values.len() >= 20 && !b2.stale_nodes.is_empty());
        let v5_key = |kh: &KeyHash, version: Version| {
            let mut k = kh.hash().as_bytes().to_vec();
            k.extend_from_slice(&version.to_be_bytes());
            k
        };
        for s in &b2.stale_values {
            assert_eq!(
                value_key_from_v5(&v5_key(&s.key_hash, s.version)),
                Some(value_key(&s.key_hash, s.version))
            );
        }
        let v6 = encode_stale_row(&b2).unwrap();
        let mut v5 = v6[..v6.len() - 40 * b2.stale_values.len()].to_vec();
        for s in &b2.stale_values {
            v5.extend_from_slice(&v5_key(&s.key_hash, s.version));
        }
        assert_ne!(v5, v6);
        assert_eq!(stale_row_from_v5(&v5).unwrap(), v6);
        assert!(stale_row_from_v5(&v5[..v5.len() - 1]).is_err());
        assert_eq!(value_key_from_v5(&[0; 39]), None);
    }

    #[test]
    fn manifest_round_trip_and_refusals() {
        let m = Manifest {
            format: FORMAT_VERSION,
            chain_id: "hz-main".into(),
        };
        let b = m.encode();
        assert_eq!(Manifest::decode(&b).unwrap(), m);
        assert_eq!(Manifest::decode(b"garbage"), Err(ManifestError::NotOurs));
        let mut bad = b.clone();
        bad[17] ^= 1;
        assert!(matches!(
            Manifest::decode(&bad),
            Err(ManifestError::Corrupt(_))
        ));
    }

    #[test]
    fn page_sum_detects_every_bit_flip_and_a_misplaced_page() {
        let page: Vec<u8> = (0..INDEX_PAGE_LEN).map(|i| (i * 7) as u8).collect();
        let e = encode_page_sum(3, &page);
        assert_eq!(check_page_sum(&e, 3, &page), Ok(()));
        assert!(
            check_page_sum(&e, 4, &page).is_err(),
            "page read at the wrong block"
        );
        for i in 0..INDEX_PAGE_LEN * 8 {
            let mut bad = page.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(check_page_sum(&e, 3, &bad).is_err(), "bit {i} undetected");
        }
        for i in 0..PAGE_SUM_LEN * 8 {
            let mut bad = e;
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                check_page_sum(&bad, 3, &page).is_err(),
                "entry bit {i} undetected"
            );
        }
        // A short block is its zero-padded self; no entry means zeros.
        assert_eq!(encode_page_sum(5, &page[..100]), {
            let mut padded = page[..100].to_vec();
            padded.resize(INDEX_PAGE_LEN, 0);
            encode_page_sum(5, &padded)
        });
        assert_eq!(check_page_sum(&[0; 8], 5, &[0; 64]), Ok(()));
        assert!(check_page_sum(&[0; 8], 5, &page).is_err());
    }

    #[test]
    fn location_and_seal_detect_flips() {
        let l = Location {
            segment: 1,
            offset: 32,
            frame_len: 100,
            hash: Hash::from_bytes([9; 32]),
        };
        let b = l.encode(5);
        assert_eq!(Location::decode(5, &b).unwrap(), l);
        assert!(Location::decode(6, &b).is_err());
        let s = seal(b"k", b"value");
        assert_eq!(unseal(b"k", &s).unwrap(), b"value");
        assert!(unseal(b"j", &s).is_err());
    }
}
