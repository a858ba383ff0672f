//! Batch verification: parallel, deterministic, and naming every bad
//! signature.
//!
//! See the crate-visible docs in `crypto/mod.rs` ("Batch verification").

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rayon::prelude::*;

use super::equation::{coefficient, BatchEquation};
use super::{verify, PublicKey, Signature, SignatureAlgorithm, SignatureError};
use crate::hash::{Domain, Hash};

/// Largest number of signatures in one batch equation.
///
/// A batch equation costs one multi-scalar multiplication whose
/// per-signature cost falls as the batch grows (Pippenger); chunks are also
/// the unit of parallelism, and a chunk that fails is re-checked one
/// signature at a time. Measured on the shared 2-core development machine
/// (AMD EPYC, AVX2 backend, thread CPU time, 4,096 signatures by distinct
/// keys): about 16 µs per signature in chunks of 256, 14.3 at 1,024 and no
/// better at 2,048 (curve25519-dalek caps Pippenger's window at 8 bits),
/// against about 41 µs for [`verify`]. The fixed part (decompressing `R`,
/// SHA-512) is about 5.3 µs of that and does not shrink with the chunk.
///
/// Smaller inputs are still cut into up to [`BATCH_PARALLEL_CHUNKS`]
/// chunks of at least half of [`BATCH_MIN_CHUNK_LEN`], so a batch of a
/// thousand uses several cores; see `chunk_ranges` for the exact rule, a
/// function of the item count only.
pub const BATCH_CHUNK_LEN: usize = 1024;

/// Inputs of at most this many items form one chunk, checked on the calling
/// thread; larger inputs are never cut into chunks smaller than about half
/// of this.
///
/// 512 rather than 256: a node admits transactions in batches of a few
/// hundred to a few thousand, and on a busy node every core already has
/// work, so the cost per signature matters more than spreading one batch.
/// Measured on the 2-core development machine (one thread, distinct keys,
/// 2026-11): 35 µs per signature in chunks of 250, 33 in chunks of 500 and
/// 30 at 1,024.
pub const BATCH_MIN_CHUNK_LEN: usize = 512;

/// Inputs are cut into at least this many chunks when they are large enough
/// (`n > 3 × BATCH_MIN_CHUNK_LEN`), so that parallel verification has work
/// for several cores even below `BATCH_PARALLEL_CHUNKS × BATCH_CHUNK_LEN`.
pub const BATCH_PARALLEL_CHUNKS: usize = 4;

/// One (key, message, signature) triple to verify in a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The key that should have signed.
    pub key: &'a PublicKey,
    /// The signed message.
    pub message: &'a [u8],
    /// The signature to check.
    pub signature: &'a Signature,
}

impl<'a> BatchItem<'a> {
    /// A batch item.
    pub fn new(key: &'a PublicKey, message: &'a [u8], signature: &'a Signature) -> Self {
        BatchItem {
            key,
            message,
            signature,
        }
    }

    /// Verifies this item alone; the same answer as in a batch.
    pub fn verify(&self) -> Result<(), SignatureError> {
        verify(self.key, self.message, self.signature)
    }
}

/// Why a batch did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchVerifyError {
    /// These items (indexes into the slice that was passed, ascending) hold
    /// signatures that [`verify`] rejects; every other item is valid.
    #[error("{} invalid signature(s) at indexes {indexes:?}", indexes.len())]
    InvalidSignatures {
        /// Indexes of every invalid item, ascending.
        indexes: Vec<usize>,
    },
}

impl BatchVerifyError {
    /// Indexes of every invalid item, ascending.
    pub fn invalid_indexes(&self) -> &[usize] {
        match self {
            BatchVerifyError::InvalidSignatures { indexes } => indexes,
        }
    }
}

/// Verifies every item, in parallel on the rayon pool, and names every
/// invalid one.
///
/// Accepts an item exactly when [`verify`] accepts it. Deterministic: the
/// result depends only on `items` (see [Batch verification](super#batch-verification)). An empty
/// slice verifies.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), BatchVerifyError> {
    // One chunk: check it on the calling thread. Handing a single job to the
    // pool costs a cross-thread round trip (measured 3.5 µs idle, ~28 µs
    // under load, against ~55 µs per signature); only a failing chunk's
    // per-item search goes parallel.
    if items.len() <= BATCH_MIN_CHUNK_LEN {
        return into_result(bad_in_chunk(items, 0, true));
    }
    let bad: Vec<usize> = chunk_ranges(items.len())
        .into_par_iter()
        .flat_map_iter(|(start, end)| bad_in_chunk(&items[start..end], start, true))
        .collect();
    into_result(bad)
}

/// [`verify_batch`] on the calling thread only: same chunks, same result.
///
/// For code that must not start threads (a consensus engine's state machine,
/// the deterministic simulator), for callers that already run one job per
/// core, and for benchmarks.
pub fn verify_batch_sequential(items: &[BatchItem<'_>]) -> Result<(), BatchVerifyError> {
    let bad: Vec<usize> = chunk_ranges(items.len())
        .into_iter()
        .flat_map(|(start, end)| bad_in_chunk(&items[start..end], start, false))
        .collect();
    into_result(bad)
}

/// Whether every item is valid, without finding which ones are not.
///
/// Same accepted set as [`verify_batch`], cheaper when any failure rejects
/// the whole (a block, a commit certificate): there is no per-signature
/// fallback. In parallel on the rayon pool; stops early on a failing chunk.
pub fn verify_batch_all(items: &[BatchItem<'_>]) -> Result<(), SignatureError> {
    if items.len() <= BATCH_MIN_CHUNK_LEN {
        // One chunk: on the calling thread (see `verify_batch`).
        return if chunk_holds(items, true) {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        };
    }
    if chunk_ranges(items.len())
        .into_par_iter()
        .all(|(start, end)| chunk_holds(&items[start..end], true))
    {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// Verifies many signatures by one key.
///
/// The batch equation merges all terms of one key into a single point, so
/// this costs about half of verifying as many signatures by distinct keys.
/// Indexes in the error refer to `items`.
pub fn verify_batch_by_key(
    key: &PublicKey,
    items: &[(&[u8], &Signature)],
) -> Result<(), BatchVerifyError> {
    let batch: Vec<BatchItem<'_>> = items
        .iter()
        .map(|&(message, signature)| BatchItem::new(key, message, signature))
        .collect();
    verify_batch(&batch)
}

fn into_result(bad: Vec<usize>) -> Result<(), BatchVerifyError> {
    if bad.is_empty() {
        Ok(())
    } else {
        Err(BatchVerifyError::InvalidSignatures { indexes: bad })
    }
}

/// Cuts `0..n` into chunks of near-equal length: `max(ceil(n / 1024),
/// min(4, ceil(n / 512)))` of them (one for `n ≤ 512`; 2 to 4 chunks of 256
/// to 512 up to `n = 2048`; 4 chunks up to `n = 4096`; then chunks of at
/// most 1,024). Depends only on `n`, so every node, and both the parallel
/// and the sequential entry points, evaluate the same equations.
fn chunk_ranges(n: usize) -> Vec<(usize, usize)> {
    let chunks = n
        .div_ceil(BATCH_CHUNK_LEN)
        .max(n.div_ceil(BATCH_MIN_CHUNK_LEN).min(BATCH_PARALLEL_CHUNKS));
    (0..chunks)
        .map(|c| (c * n / chunks, (c + 1) * n / chunks))
        .collect()
}

/// Whether `item` goes into its chunk's batch equation: an Ed25519 key
/// with an Ed25519 signature. Every other item (SM2, and any key/signature
/// algorithm mismatch) is checked alone with [`verify`]: SM2 has no batch
/// equation (see [the module docs](super#sm2)), and a mismatch is invalid
/// without arithmetic.
fn in_equation(item: &BatchItem<'_>) -> bool {
    item.key.algorithm() == SignatureAlgorithm::Ed25519
        && item.signature.algorithm() == SignatureAlgorithm::Ed25519
}

/// Indexes (into `chunk`) of the items that are checked alone and fail,
/// in parallel on the rayon pool when `parallel`.
fn bad_singles(chunk: &[BatchItem<'_>], parallel: bool) -> Vec<usize> {
    let bad = |(i, item): (usize, &BatchItem<'_>)| {
        (!in_equation(item) && item.verify().is_err()).then_some(i)
    };
    let singles = chunk.iter().filter(|item| !in_equation(item)).count();
    if parallel && singles > 1 {
        chunk.par_iter().enumerate().filter_map(bad).collect()
    } else {
        chunk.iter().enumerate().filter_map(bad).collect()
    }
}

/// Indexes (offset by `offset`) of the invalid items of `chunk`.
///
/// Items checked alone are reported as [`verify`] judges them; if the
/// batch equation of the other items fails, each of those is re-checked with
/// [`verify`]. Either way the indexes are exactly those [`verify`] rejects.
fn bad_in_chunk(chunk: &[BatchItem<'_>], offset: usize, parallel: bool) -> Vec<usize> {
    let mut bad = bad_singles(chunk, parallel);
    let equation: Vec<(usize, BatchItem<'_>)> = chunk
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, item)| in_equation(item))
        .collect();
    let items: Vec<BatchItem<'_>> = equation.iter().map(|(_, item)| *item).collect();
    if !equation_holds(&items) {
        let check = |&(i, item): &(usize, BatchItem<'_>)| item.verify().is_err().then_some(i);
        if parallel {
            bad.par_extend(equation.par_iter().filter_map(check));
        } else {
            bad.extend(equation.iter().filter_map(check));
        }
        bad.sort_unstable();
    }
    bad.into_iter().map(|i| offset + i).collect()
}

/// Whether every item of the chunk is valid: the items checked alone (SM2,
/// algorithm mismatches; in parallel when `parallel`) all verify, and the
/// batch equation of the Ed25519 items holds.
fn chunk_holds(chunk: &[BatchItem<'_>], parallel: bool) -> bool {
    let equation: Vec<BatchItem<'_>> = chunk.iter().copied().filter(in_equation).collect();
    if equation.len() == chunk.len() {
        return equation_holds(&equation);
    }
    let single_ok = |item: &BatchItem<'_>| in_equation(item) || item.verify().is_ok();
    let singles_ok = if parallel {
        chunk.par_iter().all(single_ok)
    } else {
        chunk.iter().all(single_ok)
    };
    singles_ok && equation_holds(&equation)
}

/// Whether the batch equation of `items` (all Ed25519) holds: for the
/// 128-bit coefficients `zᵢ` drawn in item order from the items'
/// Fiat–Shamir stream, `[8](−(Σ zᵢSᵢ)B + Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ) = 0`, with the
/// terms of one key merged. No items hold trivially; one item is checked
/// with [`verify`] itself.
fn equation_holds(items: &[BatchItem<'_>]) -> bool {
    match items {
        [] => return true,
        [item] => return item.verify().is_ok(),
        _ => {}
    }
    let mut rng = ChaCha20Rng::from_seed(chunk_seed(items).to_bytes());
    let mut equation = BatchEquation::with_capacity(items.len());
    for item in items {
        let (Some(a), Some(a_bytes)) = (item.key.decompressed(), item.key.ed25519_bytes()) else {
            return false;
        };
        if item.signature.algorithm() != SignatureAlgorithm::Ed25519 {
            return false;
        }
        let z = coefficient(&mut rng);
        if !equation.push(z, a, a_bytes, item.signature.as_bytes(), item.message) {
            return false;
        }
    }
    equation.holds()
}

/// The Fiat–Shamir seed of a chunk's batch equation: a hash of everything
/// the equation depends on (its items: the chunk's Ed25519 items, which are
/// all of a chunk without SM2 items). Each item contributes a fixed 10-byte header (key tag,
/// signature tag, message length), then the key, signature and message bytes;
/// the tags fix the key and signature lengths, so the parts parse uniquely.
fn chunk_seed(chunk: &[BatchItem<'_>]) -> Hash {
    let count = (chunk.len() as u64).to_le_bytes();
    let headers: Vec<[u8; 10]> = chunk
        .iter()
        .map(|item| {
            let mut h = [0u8; 10];
            h[0] = item.key.algorithm().tag();
            h[1] = item.signature.algorithm().tag();
            h[2..].copy_from_slice(&(item.message.len() as u64).to_le_bytes());
            h
        })
        .collect();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 4 * chunk.len());
    parts.push(&count);
    for (item, header) in chunk.iter().zip(&headers) {
        parts.push(header);
        parts.push(item.key.raw_bytes());
        parts.push(item.signature.as_bytes());
        parts.push(item.message);
    }
    Hash::of_parts(Domain::BatchSeed, &parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{SecretKey, Signer};

    #[test]
    fn chunks_cover_everything_evenly() {
        for (n, count) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (255, 1),
            (512, 1),
            (513, 2),
            (1024, 2),
            (1025, 3),
            (1537, 4),
            (2048, 4),
            (4096, 4),
            (4097, 5),
            (5000, 5),
            (10_000, 10),
        ] {
            let ranges = chunk_ranges(n);
            assert_eq!(ranges.len(), count, "n = {n}");
            let mut next = 0;
            for &(s, e) in &ranges {
                assert_eq!(s, next);
                assert!(e > s && e - s <= BATCH_CHUNK_LEN);
                // No chunk of a multi-chunk input is below half the minimum.
                assert!(n <= BATCH_MIN_CHUNK_LEN || 2 * (e - s) >= BATCH_MIN_CHUNK_LEN);
                next = e;
            }
            assert_eq!(next, n);
            if let (Some(min), Some(max)) = (
                ranges.iter().map(|(s, e)| e - s).min(),
                ranges.iter().map(|(s, e)| e - s).max(),
            ) {
                assert!(max - min <= 1);
            }
        }
    }

    #[test]
    fn names_every_bad_index_across_chunks() {
        let keys: Vec<SecretKey> = (0..40u8).map(|i| SecretKey::from_seed(&[i; 32])).collect();
        let n = 2 * BATCH_MIN_CHUNK_LEN + 7;
        let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("tx {i}").into_bytes()).collect();
        let publics: Vec<PublicKey> = (0..n).map(|i| keys[i % 40].public_key()).collect();
        let mut sigs: Vec<Signature> = (0..n).map(|i| keys[i % 40].sign(&messages[i])).collect();
        let bad = [0, 3, BATCH_MIN_CHUNK_LEN + 1, n - 1];
        for &i in &bad {
            sigs[i] = keys[i % 40].sign(b"something else");
        }
        let items: Vec<BatchItem<'_>> = (0..n)
            .map(|i| BatchItem::new(&publics[i], &messages[i], &sigs[i]))
            .collect();
        let expected = Err(BatchVerifyError::InvalidSignatures {
            indexes: bad.to_vec(),
        });
        assert_eq!(verify_batch(&items), expected);
        assert_eq!(verify_batch_sequential(&items), expected);
        assert_eq!(verify_batch_all(&items), Err(SignatureError::Invalid));
        let good: Vec<BatchItem<'_>> = items
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains(i))
            .map(|(_, it)| *it)
            .collect();
        assert_eq!(verify_batch(&good), Ok(()));
        assert_eq!(verify_batch_all(&good), Ok(()));
        assert_eq!(verify_batch(&[]), Ok(()));
        assert_eq!(verify_batch_all(&[]), Ok(()));
    }

    #[test]
    fn by_key_reports_indexes_into_its_input() {
        let sk = SecretKey::from_seed(&[3; 32]);
        let messages: Vec<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let mut sigs: Vec<Signature> = messages.iter().map(|m| sk.sign(m)).collect();
        let items: Vec<(&[u8], &Signature)> = messages
            .iter()
            .map(|m| m.as_slice())
            .zip(sigs.iter())
            .collect();
        assert_eq!(verify_batch_by_key(&sk.public_key(), &items), Ok(()));
        sigs[17] = sk.sign(b"nope");
        let items: Vec<(&[u8], &Signature)> = messages
            .iter()
            .map(|m| m.as_slice())
            .zip(sigs.iter())
            .collect();
        let err = verify_batch_by_key(&sk.public_key(), &items).unwrap_err();
        assert_eq!(err.invalid_indexes(), &[17]);
    }

    #[test]
    fn the_seed_binds_every_input() {
        let sk = SecretKey::from_seed(&[1; 32]);
        let pk = sk.public_key();
        let other = SecretKey::from_seed(&[2; 32]).public_key();
        let (s1, s2) = (sk.sign(b"a"), sk.sign(b"b"));
        let base = [BatchItem::new(&pk, b"a", &s1)];
        let seeds = [
            chunk_seed(&base),
            chunk_seed(&[BatchItem::new(&other, b"a", &s1)]),
            chunk_seed(&[BatchItem::new(&pk, b"b", &s1)]),
            chunk_seed(&[BatchItem::new(&pk, b"a", &s2)]),
            chunk_seed(&[base[0], base[0]]),
            chunk_seed(&[]),
        ];
        for i in 0..seeds.len() {
            for j in 0..i {
                assert_ne!(seeds[i], seeds[j], "{i} vs {j}");
            }
        }
        assert_eq!(chunk_seed(&base), chunk_seed(&base));
    }
}
