//! The on-disk formats of the durable store: manifest, segment header,
//! block frame and index records. All integers are little-endian unless
//! said otherwise; every record carries a CRC-32C (Castagnoli).
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
use govchain_core::hash::Hash;
use govchain_core::smt::{KeyHash, NodeKey, TreeUpdateBatch, Version};

/// The store format version this build writes and reads.
///
/// - 1: binary SMT nodes, one stale-index row per stale node or value.
/// - 2: SMT nodes stored as 16-slot pages with inline leaves
///   ([`govchain_core::smt::InternalNode`]); one stale-index row per version
///   (`smt_stale`). Stores in format 1 are refused.
pub const FORMAT_VERSION: u32 = 2;

/// Magic bytes opening the `MANIFEST` file.
pub const MANIFEST_MAGIC: [u8; 16] = *b"GOVCHAIN-STORE\r\n";

/// Magic bytes opening every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"GCSEGMNT";

/// Length of a segment header.
pub const SEGMENT_HEADER_LEN: u64 = 32;

/// Magic bytes opening every block frame.
pub const FRAME_MAGIC: [u8; 4] = *b"GCBF";

/// The frame format version.
pub const FRAME_VERSION: u8 = 1;

/// Bytes before a frame's payload.
pub const FRAME_HEADER_LEN: usize = 20;

/// Bytes after a frame's payload (the CRC).
pub const FRAME_TRAILER_LEN: usize = 4;

/// Largest commit certificate accepted in a frame.
pub const MAX_CERT_LEN: usize = 1024 * 1024;

/// Largest frame payload: a maximal block, a maximal certificate and the
/// 4-byte block length. Checked before anything is allocated.
pub const MAX_FRAME_PAYLOAD: usize = 4 + MAX_BLOCK_ENCODED_LEN + MAX_CERT_LEN;

/// Length of an index location record.
pub const LOCATION_LEN: usize = 56;

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
    if u32_at(h, 8) != Some(FORMAT_VERSION) {
        return Err("unsupported segment format version");
    }
    if u64_at(h, 16) != Some(base) {
        return Err("segment header names another base height");
    }
    Ok(())
}

/// Encodes one block frame from the canonical encodings of a block and its
/// certificate; `None` if they exceed [`MAX_FRAME_PAYLOAD`]. Layout:
///
/// ```text
/// offset  size  field
/// 0       4     magic "GCBF"
/// 4       1     frame version (1)
/// 5       3     reserved, zero
/// 8       4     payload length L (u32), at most MAX_FRAME_PAYLOAD
/// 12      8     height (u64)
/// 20      L     payload: block length (u32) | block | certificate
/// 20+L    4     CRC-32C of bytes 0 .. 20+L
/// ```
pub fn encode_frame(height: u64, block: &[u8], cert: &[u8]) -> Option<Vec<u8>> {
    let payload_len = 4 + block.len() + cert.len();
    if payload_len > MAX_FRAME_PAYLOAD || cert.len() > MAX_CERT_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload_len + FRAME_TRAILER_LEN);
    out.extend_from_slice(&FRAME_MAGIC);
    out.push(FRAME_VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&u32::try_from(payload_len).ok()?.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&u32::try_from(block.len()).ok()?.to_le_bytes());
    out.extend_from_slice(block);
    out.extend_from_slice(cert);
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
    if !(4..=MAX_FRAME_PAYLOAD).contains(&payload_len) {
        return Err("frame length out of range");
    }
    let height = u64_at(h, 12).ok_or("frame header truncated")?;
    Ok(FrameHeader {
        height,
        payload_len,
    })
}

/// Checks a whole frame's CRC and splits its payload into block and
/// certificate bytes.
pub(crate) fn split_frame(frame: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let body_len = frame
        .len()
        .checked_sub(FRAME_TRAILER_LEN)
        .ok_or("frame truncated")?;
    let (body, tail) = frame.split_at(body_len);
    if u32_at(tail, 0) != Some(crc(&[body])) {
        return Err("frame checksum mismatch");
    }
    let payload = body.get(FRAME_HEADER_LEN..).ok_or("frame truncated")?;
    let block_len = u32_at(payload, 0).ok_or("frame payload truncated")?;
    let block_len = usize::try_from(block_len).map_err(|_| "block length overflow")?;
    let rest = payload.get(4..).ok_or("frame payload truncated")?;
    if block_len > rest.len() {
        return Err("block length exceeds the frame");
    }
    let (block, cert) = rest.split_at(block_len);
    if cert.len() > MAX_CERT_LEN {
        return Err("certificate too long");
    }
    Ok((block, cert))
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

/// The key of a value entry in `smt_values`: `key_hash 32 | version u64
/// BE`, so one key's entries are adjacent and ordered by version.
pub fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(key_hash.hash().as_bytes());
    k[32..].copy_from_slice(&version.to_be_bytes());
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
        let frame = encode_frame(7, b"block-bytes", b"cert").unwrap();
        let h = parse_frame_header(&frame).unwrap();
        assert_eq!((h.height, h.frame_len()), (7, frame.len()));
        assert_eq!(
            split_frame(&frame).unwrap(),
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
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocation() {
        let mut frame = encode_frame(1, b"b", b"").unwrap();
        frame[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_frame_header(&frame).is_err());
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
