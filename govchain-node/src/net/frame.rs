//! The wire format: application messages in the canonical codec, and the
//! Noise record layer that carries them (length-prefixed records of at most
//! 65,535 bytes, frames fragmented across records).

use std::io::{Read, Write};
use std::sync::Arc;

use govchain_core::codec::{encode_bytes, encode_len, Decode, DecodeError, Encode, Reader};
use govchain_core::types::{ChainId, Height};
use snow::StatelessTransportState;

use super::NetError;
use crate::transport::Envelope;

/// The largest Noise message (the Noise specification's limit, §3).
pub const MAX_NOISE_MESSAGE: usize = 65_535;
/// The authentication tag every encrypted Noise message carries.
pub(crate) const NOISE_TAG_LEN: usize = 16;
/// The most plaintext one record can carry.
pub(crate) const MAX_RECORD_PAYLOAD: usize = MAX_NOISE_MESSAGE - NOISE_TAG_LEN;
/// The frame header inside the first record: the frame length, `u32` LE.
const FRAME_HEADER_LEN: usize = 4;
/// The largest frame any configuration may allow (the header is a `u32`,
/// and frames this large would be a memory hazard anyway).
pub(crate) const MAX_FRAME_LIMIT: usize = 256 << 20;

/// Message tags: the first byte of every frame. New message kinds get new
/// tags; a peer refuses tags it does not know (the protocol version itself
/// is bound into the Noise prologue, so both ends speak the same table).
pub(crate) mod tag {
    /// [`Envelope::Consensus`](crate::transport::Envelope::Consensus).
    pub const CONSENSUS: u8 = 0x01;
    /// [`Envelope::Transactions`](crate::transport::Envelope::Transactions).
    pub const TRANSACTIONS: u8 = 0x02;
    /// [`Envelope::Status`](crate::transport::Envelope::Status).
    pub const STATUS: u8 = 0x03;
    /// [`Envelope::SyncRequest`](crate::transport::Envelope::SyncRequest).
    pub const SYNC_REQUEST: u8 = 0x04;
    /// [`Envelope::SyncBlocks`](crate::transport::Envelope::SyncBlocks).
    pub const SYNC_BLOCKS: u8 = 0x05;
    /// A keepalive sent by an idle writer.
    pub const KEEPALIVE: u8 = 0xf0;
    /// The key binding, the first message in each direction.
    pub const BINDING: u8 = 0xf1;
}

/// Decoding limits for [`WireMessage::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// The largest frame (encoded message) accepted, in bytes.
    pub max_frame_bytes: usize,
    /// The most items (transactions or blocks) one envelope may carry.
    pub max_items_per_envelope: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits {
            max_frame_bytes: super::DEFAULT_MAX_FRAME_BYTES,
            max_items_per_envelope: super::DEFAULT_MAX_ITEMS_PER_ENVELOPE,
        }
    }
}

/// One application message: the plaintext of one frame.
///
/// Encoding (govchain's canonical codec): a tag byte, then the fields.
///
/// | tag | message | fields |
/// |---|---|---|
/// | `0x01` | `Envelope::Consensus` | chain id (`u32` length + bytes), bytes (`u32` length + bytes) |
/// | `0x02` | `Envelope::Transactions` | chain id, count `u32`, each transaction (`u32` length + bytes) |
/// | `0x03` | `Envelope::Status` | chain id, height `u64` |
/// | `0x04` | `Envelope::SyncRequest` | chain id, from `u64`, max blocks `u32` |
/// | `0x05` | `Envelope::SyncBlocks` | chain id, tip `u64`, count `u32`, each block (`u32` length + bytes) |
/// | `0xf0` | `Keepalive` | none |
///
/// Tag `0xf1` is the key binding, valid only as the first message of a
/// session. Every other tag is refused. Integers are little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireMessage {
    /// An envelope for the node.
    Envelope(Envelope),
    /// Nothing: an idle connection's sign of life.
    Keepalive,
}

impl WireMessage {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            WireMessage::Envelope(envelope) => encode_envelope(envelope, &mut out),
            WireMessage::Keepalive => out.push(tag::KEEPALIVE),
        }
        out
    }

    /// Decodes one message, refusing input over `limits`, unknown tags,
    /// trailing bytes and every non-canonical form. Never panics.
    pub fn decode(bytes: &[u8], limits: &WireLimits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_frame_bytes {
            return Err(DecodeError::InputTooLarge {
                len: bytes.len(),
                limit: limits.max_frame_bytes,
            });
        }
        let mut r = Reader::new(bytes);
        let message = match r.u8()? {
            tag::CONSENSUS => {
                let chain = ChainId::decode_from(&mut r)?;
                let bytes = r.bytes("consensus message", limits.max_frame_bytes)?;
                WireMessage::Envelope(Envelope::Consensus {
                    chain,
                    bytes: bytes.to_vec(),
                })
            }
            tag::TRANSACTIONS => {
                let chain = ChainId::decode_from(&mut r)?;
                let txs = byte_strings(&mut r, "transactions", "transaction", limits)?;
                WireMessage::Envelope(Envelope::Transactions { chain, txs })
            }
            tag::STATUS => WireMessage::Envelope(Envelope::Status {
                chain: ChainId::decode_from(&mut r)?,
                height: Height::decode_from(&mut r)?,
            }),
            tag::SYNC_REQUEST => WireMessage::Envelope(Envelope::SyncRequest {
                chain: ChainId::decode_from(&mut r)?,
                from: Height::decode_from(&mut r)?,
                max_blocks: u32::decode_from(&mut r)?,
            }),
            tag::SYNC_BLOCKS => {
                let chain = ChainId::decode_from(&mut r)?;
                let tip = Height::decode_from(&mut r)?;
                let blocks = byte_strings(&mut r, "blocks", "block", limits)?;
                WireMessage::Envelope(Envelope::SyncBlocks { chain, tip, blocks })
            }
            tag::KEEPALIVE => WireMessage::Keepalive,
            other => {
                return Err(DecodeError::InvalidTag {
                    what: "wire message",
                    tag: other,
                })
            }
        };
        r.finish()?;
        Ok(message)
    }
}

/// Appends the encoding of `envelope` (as a [`WireMessage::Envelope`]).
pub(crate) fn encode_envelope(envelope: &Envelope, out: &mut Vec<u8>) {
    match envelope {
        Envelope::Consensus { chain, bytes } => {
            out.reserve(1 + 4 + chain.as_str().len() + 4 + bytes.len());
            out.push(tag::CONSENSUS);
            chain.encode_to(out);
            encode_bytes(bytes, out);
        }
        Envelope::Transactions { chain, txs } => {
            out.push(tag::TRANSACTIONS);
            chain.encode_to(out);
            encode_byte_strings(txs, out);
        }
        Envelope::Status { chain, height } => {
            out.push(tag::STATUS);
            chain.encode_to(out);
            height.encode_to(out);
        }
        Envelope::SyncRequest {
            chain,
            from,
            max_blocks,
        } => {
            out.push(tag::SYNC_REQUEST);
            chain.encode_to(out);
            from.encode_to(out);
            max_blocks.encode_to(out);
        }
        Envelope::SyncBlocks { chain, tip, blocks } => {
            out.push(tag::SYNC_BLOCKS);
            chain.encode_to(out);
            tip.encode_to(out);
            encode_byte_strings(blocks, out);
        }
    }
}

fn encode_byte_strings(items: &[Vec<u8>], out: &mut Vec<u8>) {
    out.reserve(4 + items.iter().map(|i| 4 + i.len()).sum::<usize>());
    encode_len(items.len(), out);
    for item in items {
        encode_bytes(item, out);
    }
}

/// Reads a counted list of byte strings; the count is checked against the
/// limit and the input left (4 bytes per item at least) before allocating.
fn byte_strings(
    r: &mut Reader<'_>,
    what: &'static str,
    item: &'static str,
    limits: &WireLimits,
) -> Result<Vec<Vec<u8>>, DecodeError> {
    let count = r.length(what, limits.max_items_per_envelope, 4)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(r.bytes(item, limits.max_frame_bytes)?.to_vec());
    }
    Ok(items)
}

fn io_error(context: &'static str, source: std::io::Error) -> NetError {
    if source.kind() == std::io::ErrorKind::UnexpectedEof {
        NetError::Closed
    } else {
        NetError::Io { context, source }
    }
}

/// Reads Noise records and reassembles frames.
pub(crate) struct RecordReader<R> {
    inner: R,
    state: Arc<StatelessTransportState>,
    nonce: u64,
    cipher: Vec<u8>,
    plain: Vec<u8>,
    max_frame_bytes: usize,
}

impl<R: Read> RecordReader<R> {
    pub(crate) fn new(
        inner: R,
        state: Arc<StatelessTransportState>,
        max_frame_bytes: usize,
    ) -> Self {
        RecordReader {
            inner,
            state,
            nonce: 0,
            cipher: vec![0; MAX_NOISE_MESSAGE],
            plain: vec![0; MAX_NOISE_MESSAGE],
            max_frame_bytes,
        }
    }

    /// Changes the frame limit (the handshake reads only the small binding
    /// frame; the configured limit applies once the peer is authenticated).
    pub(crate) fn set_max_frame_bytes(&mut self, max_frame_bytes: usize) {
        self.max_frame_bytes = max_frame_bytes;
    }

    /// The underlying reader.
    pub(crate) fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads and decrypts one record into `self.plain`; returns the
    /// plaintext length and the bytes read from the wire.
    fn read_record(&mut self) -> Result<(usize, usize), NetError> {
        let mut len = [0u8; 2];
        self.inner
            .read_exact(&mut len)
            .map_err(|e| io_error("reading a record length", e))?;
        let len = usize::from(u16::from_be_bytes(len));
        if len < NOISE_TAG_LEN {
            return Err(NetError::Garbled {
                reason: "record shorter than its authentication tag",
            });
        }
        let cipher = self.cipher.get_mut(..len).ok_or(NetError::Garbled {
            reason: "record too long",
        })?;
        self.inner
            .read_exact(cipher)
            .map_err(|e| io_error("reading a record", e))?;
        let n = self
            .state
            .read_message(self.nonce, cipher, &mut self.plain)
            .map_err(|_| NetError::Garbled {
                reason: "record failed decryption",
            })?;
        self.nonce = self.nonce.checked_add(1).ok_or(NetError::Garbled {
            reason: "nonce exhausted",
        })?;
        Ok((n, 2 + len))
    }

    /// Reads one frame. The frame length is checked against the limit
    /// before anything is allocated; a record that overruns its frame, a
    /// record that fails decryption, or an over-long frame is an error.
    /// Returns the frame and the bytes read from the wire.
    pub(crate) fn read_frame(&mut self) -> Result<(Vec<u8>, usize), NetError> {
        let (n, mut wire) = self.read_record()?;
        let first = self.plain.get(..n).ok_or(NetError::Garbled {
            reason: "record longer than its buffer",
        })?;
        let (header, body) = first
            .split_at_checked(FRAME_HEADER_LEN)
            .ok_or(NetError::Garbled {
                reason: "record shorter than the frame header",
            })?;
        let mut len = [0u8; FRAME_HEADER_LEN];
        len.copy_from_slice(header);
        let total = u32::from_le_bytes(len);
        let total_usize = usize::try_from(total).unwrap_or(usize::MAX);
        if total_usize > self.max_frame_bytes {
            return Err(NetError::FrameTooLarge {
                len: u64::from(total),
                max: self.max_frame_bytes,
            });
        }
        if body.len() > total_usize {
            return Err(NetError::Garbled {
                reason: "record runs past the end of its frame",
            });
        }
        let mut frame = Vec::with_capacity(total_usize);
        frame.extend_from_slice(body);
        while frame.len() < total_usize {
            let (n, w) = self.read_record()?;
            wire += w;
            if n == 0 {
                return Err(NetError::Garbled {
                    reason: "empty continuation record",
                });
            }
            if frame.len() + n > total_usize {
                return Err(NetError::Garbled {
                    reason: "record runs past the end of its frame",
                });
            }
            let chunk = self.plain.get(..n).ok_or(NetError::Garbled {
                reason: "record longer than its buffer",
            })?;
            frame.extend_from_slice(chunk);
        }
        Ok((frame, wire))
    }
}

/// Fragments frames into encrypted Noise records.
pub(crate) struct RecordWriter<W> {
    inner: W,
    state: Arc<StatelessTransportState>,
    nonce: u64,
    cipher: Vec<u8>,
    first: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    pub(crate) fn new(inner: W, state: Arc<StatelessTransportState>) -> Self {
        RecordWriter {
            inner,
            state,
            nonce: 0,
            cipher: vec![0; MAX_NOISE_MESSAGE + 2],
            first: Vec::with_capacity(MAX_RECORD_PAYLOAD),
        }
    }

    fn write_record(&mut self, plaintext: &[u8]) -> Result<usize, NetError> {
        let out = self
            .cipher
            .get_mut(2..)
            .ok_or(NetError::Garbled { reason: "buffer" })?;
        let n = self
            .state
            .write_message(self.nonce, plaintext, out)
            .map_err(|e| NetError::Noise {
                stage: "encrypt",
                reason: e.to_string(),
            })?;
        self.nonce = self.nonce.checked_add(1).ok_or(NetError::Garbled {
            reason: "nonce exhausted",
        })?;
        let len = u16::try_from(n).map_err(|_| NetError::Garbled {
            reason: "record over 65,535 bytes",
        })?;
        let record = self.cipher.get_mut(..2 + n).ok_or(NetError::Garbled {
            reason: "record over 65,535 bytes",
        })?;
        record[..2].copy_from_slice(&len.to_be_bytes());
        self.inner
            .write_all(record)
            .map_err(|e| io_error("writing a record", e))?;
        Ok(2 + n)
    }

    /// Writes one frame (not flushed); returns the bytes put on the wire.
    /// The caller enforces its frame limit; this refuses only frames whose
    /// length does not fit the `u32` header.
    pub(crate) fn write_frame(&mut self, frame: &[u8]) -> Result<usize, NetError> {
        let total = u32::try_from(frame.len()).map_err(|_| NetError::FrameTooLarge {
            len: frame.len() as u64,
            max: u32::MAX as usize,
        })?;
        let split = frame.len().min(MAX_RECORD_PAYLOAD - FRAME_HEADER_LEN);
        let (head, mut rest) = frame.split_at(split);
        let mut first = std::mem::take(&mut self.first);
        first.clear();
        first.extend_from_slice(&total.to_le_bytes());
        first.extend_from_slice(head);
        let result = self.write_record(&first);
        self.first = first;
        let mut wire = result?;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_RECORD_PAYLOAD));
            wire += self.write_record(chunk)?;
            rest = tail;
        }
        Ok(wire)
    }

    /// Flushes buffered records to the socket.
    pub(crate) fn flush(&mut self) -> Result<(), NetError> {
        self.inner
            .flush()
            .map_err(|e| io_error("flushing records", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> WireLimits {
        WireLimits {
            max_frame_bytes: 1 << 20,
            max_items_per_envelope: 1_000,
        }
    }

    fn chain() -> impl Strategy<Value = ChainId> {
        "[a-z0-9][a-z0-9.-]{0,31}".prop_map(|s| ChainId::new(s).unwrap())
    }

    fn message() -> impl Strategy<Value = WireMessage> {
        prop_oneof![
            (chain(), proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(chain, bytes)| {
                WireMessage::Envelope(Envelope::Consensus { chain, bytes })
            }),
            (
                chain(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20)
            )
                .prop_map(|(chain, txs)| WireMessage::Envelope(
                    Envelope::Transactions { chain, txs }
                )),
            (chain(), any::<u64>()).prop_map(|(chain, h)| {
                WireMessage::Envelope(Envelope::Status {
                    chain,
                    height: Height::new(h),
                })
            }),
            (chain(), any::<u64>(), any::<u32>()).prop_map(|(chain, h, max_blocks)| {
                WireMessage::Envelope(Envelope::SyncRequest {
                    chain,
                    from: Height::new(h),
                    max_blocks,
                })
            }),
            (
                chain(),
                any::<u64>(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..8)
            )
                .prop_map(|(chain, h, blocks)| WireMessage::Envelope(
                    Envelope::SyncBlocks {
                        chain,
                        tip: Height::new(h),
                        blocks
                    }
                )),
            Just(WireMessage::Keepalive),
        ]
    }

    fn config(seed: u64) -> ProptestConfig {
        // Every randomised test prints its seed; PROPTEST_RNG_SEED replays it.
        println!("proptest seed: {seed} (set PROPTEST_RNG_SEED={seed} to replay)");
        ProptestConfig {
            cases: 512,
            rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
            ..ProptestConfig::default()
        }
    }

    fn seed() -> u64 {
        std::env::var("PROPTEST_RNG_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
    }

    #[test]
    fn round_trip_and_canonical() {
        proptest!(config(seed()), |(m in message())| {
            let bytes = m.encode();
            let back = WireMessage::decode(&bytes, &limits()).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.encode(), bytes.clone());
            // Truncations and trailing bytes are refused.
            if !bytes.is_empty() {
                prop_assert!(WireMessage::decode(&bytes[..bytes.len() - 1], &limits()).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(WireMessage::decode(&longer, &limits()).is_err());
        });
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        proptest!(config(seed()), |(bytes in proptest::collection::vec(any::<u8>(), 0..512))| {
            if let Ok(m) = WireMessage::decode(&bytes, &limits()) {
                // Whatever is accepted re-encodes to the same bytes.
                prop_assert_eq!(m.encode(), bytes);
            }
        });
    }

    #[test]
    fn mutated_messages_never_panic() {
        proptest!(config(seed()), |(m in message(), at in any::<usize>(), byte in any::<u8>())| {
            let mut bytes = m.encode();
            let i = at % bytes.len();
            bytes[i] = byte;
            if let Ok(back) = WireMessage::decode(&bytes, &limits()) {
                prop_assert_eq!(back.encode(), bytes);
            }
        });
    }

    #[test]
    fn limits_are_enforced() {
        let big = WireMessage::Envelope(Envelope::Consensus {
            chain: ChainId::new("c").unwrap(),
            bytes: vec![0; 2_000],
        });
        let small = WireLimits {
            max_frame_bytes: 1_000,
            max_items_per_envelope: 2,
        };
        assert!(matches!(
            WireMessage::decode(&big.encode(), &small),
            Err(DecodeError::InputTooLarge { .. })
        ));
        let many = WireMessage::Envelope(Envelope::Transactions {
            chain: ChainId::new("c").unwrap(),
            txs: vec![vec![1]; 3],
        });
        assert!(matches!(
            WireMessage::decode(&many.encode(), &small),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        // A huge declared count with no bytes behind it is refused before
        // anything is allocated.
        let mut lying = vec![tag::TRANSACTIONS];
        ChainId::new("c").unwrap().encode_to(&mut lying);
        lying.extend_from_slice(&2u32.to_le_bytes());
        assert!(WireMessage::decode(&lying, &small).is_err());
        assert!(matches!(
            WireMessage::decode(&[tag::BINDING], &small),
            Err(DecodeError::InvalidTag { .. })
        ));
    }
}
