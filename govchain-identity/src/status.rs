//! Status lists: 2 bits per credential (valid, revoked, suspended), in the
//! spirit of the W3C Bitstring Status List.
//!
//! A list of `capacity` entries is stored as `capacity / ENTRIES_PER_PAGE`
//! [`StatusPage`]s, each under its own state key, so a credential's status
//! is proved by one page (256 bytes) and one state proof, not by the whole
//! list (32 KiB at the minimum size). Every page names its list, owner and
//! capacity, so the page alone is enough to check ownership and range.
//!
//! Entries are read most-significant-bit first: entry `i` of a page is bits
//! `7 - 2(i mod 4)` and `6 - 2(i mod 4)` of byte `i / 4`, as in the
//! Bitstring Status List. The value `0b11` is reserved and refused.
//!
//! Indexes are drawn at random by the issuer ([`StatusAllocator`]), so
//! neighbouring entries say nothing about each other and a page's 1,024
//! entries form the herd that hides which one a holder fetched.
//!
//! Revocation is final: a revoked entry never changes again. Suspension is
//! reversible.

use govchain_core::codec::{Decode, DecodeError, Encode, Reader};

use crate::ids::{IssuerId, StatusListId};

/// Entries per page.
pub const ENTRIES_PER_PAGE: u32 = 1024;
/// Bytes of entry bits per page.
pub const PAGE_BYTES: usize = (ENTRIES_PER_PAGE as usize) / 4;
/// Fewest entries a list may have (the 131,072, for herd privacy).
pub const MIN_LIST_CAPACITY: u32 = 131_072;
/// Most entries a list may have.
pub const MAX_LIST_CAPACITY: u32 = 1 << 20;
/// Most entries one status-update transaction may change.
pub const MAX_STATUS_UPDATES: usize = 20_000;
/// Largest encoded [`StatusPage`].
pub const MAX_STATUS_PAGE_LEN: usize = 512;

/// The status of one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryStatus {
    /// Neither revoked nor suspended.
    Valid,
    /// Permanently withdrawn.
    Revoked,
    /// Temporarily withdrawn; may become valid again.
    Suspended,
}

impl EntryStatus {
    /// The 2-bit value.
    pub const fn bits(self) -> u8 {
        match self {
            EntryStatus::Valid => 0,
            EntryStatus::Revoked => 1,
            EntryStatus::Suspended => 2,
        }
    }

    /// The status of a 2-bit value; `None` for the reserved `0b11`.
    pub const fn from_bits(bits: u8) -> Option<Self> {
        match bits & 3 {
            0 => Some(EntryStatus::Valid),
            1 => Some(EntryStatus::Revoked),
            2 => Some(EntryStatus::Suspended),
            _ => None,
        }
    }

    /// Whether an entry may move from `self` to `next` (revocation is final;
    /// writing the current value again is allowed).
    pub fn may_become(self, next: EntryStatus) -> bool {
        self != EntryStatus::Revoked || next == EntryStatus::Revoked
    }
}

impl Encode for EntryStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.bits());
    }
}

impl Decode for EntryStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        EntryStatus::from_bits(tag)
            .filter(|_| tag < 3)
            .ok_or(DecodeError::InvalidTag {
                what: "entry status",
                tag,
            })
    }
}

/// One change in a status-update transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The entry.
    pub index: u32,
    /// Its new status.
    pub status: EntryStatus,
}

impl Encode for StatusUpdate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.index.encode_to(out);
        self.status.encode_to(out);
    }
}

impl Decode for StatusUpdate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StatusUpdate {
            index: u32::decode_from(r)?,
            status: EntryStatus::decode_from(r)?,
        })
    }
}

/// Why a status read or write failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The index is not below the list's capacity.
    #[error("status index {index} out of range for capacity {capacity}")]
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The list's capacity.
        capacity: u32,
    },
    /// The index belongs to another page than this one.
    #[error("status index {index} is not on page {page}")]
    WrongPage {
        /// The index.
        index: u32,
        /// This page's number.
        page: u32,
    },
    /// A revoked entry may not change.
    #[error("entry {index} is revoked; revocation is final")]
    RevocationIsFinal {
        /// The index.
        index: u32,
    },
}

/// Whether `capacity` is a valid list size.
pub fn is_valid_capacity(capacity: u32) -> bool {
    (MIN_LIST_CAPACITY..=MAX_LIST_CAPACITY).contains(&capacity)
        && capacity.is_multiple_of(ENTRIES_PER_PAGE)
}

/// One page of a status list, as stored on chain under
/// [`state::status_page_key`](crate::state::status_page_key).
#[derive(Clone, PartialEq, Eq)]
pub struct StatusPage {
    /// The list.
    pub list: StatusListId,
    /// The issuer that owns the list; only it may write.
    pub owner: IssuerId,
    /// Entries in the whole list.
    pub capacity: u32,
    /// This page's number: it holds entries
    /// `page * ENTRIES_PER_PAGE .. (page + 1) * ENTRIES_PER_PAGE`.
    pub page: u32,
    bits: [u8; PAGE_BYTES],
}

impl std::fmt::Debug for StatusPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.bits.iter().filter(|b| **b != 0).count();
        write!(
            f,
            "StatusPage(list {}, owner {}, page {}/{}, {} non-zero bytes)",
            self.list,
            self.owner,
            self.page,
            self.capacity / ENTRIES_PER_PAGE,
            set
        )
    }
}

impl StatusPage {
    /// An all-valid page.
    pub fn new(list: StatusListId, owner: IssuerId, capacity: u32, page: u32) -> Self {
        StatusPage {
            list,
            owner,
            capacity,
            page,
            bits: [0; PAGE_BYTES],
        }
    }

    /// The page that holds entry `index`.
    pub const fn page_of(index: u32) -> u32 {
        index / ENTRIES_PER_PAGE
    }

    fn slot(&self, index: u32) -> Result<(usize, u32), StatusError> {
        if index >= self.capacity {
            return Err(StatusError::IndexOutOfRange {
                index,
                capacity: self.capacity,
            });
        }
        if Self::page_of(index) != self.page {
            return Err(StatusError::WrongPage {
                index,
                page: self.page,
            });
        }
        let i = index % ENTRIES_PER_PAGE;
        Ok(((i / 4) as usize, 6 - 2 * (i % 4)))
    }

    /// The status of entry `index` (a list-wide index).
    pub fn get(&self, index: u32) -> Result<EntryStatus, StatusError> {
        let (byte, shift) = self.slot(index)?;
        // Decoding refuses pages with the reserved value, so this is total.
        Ok(EntryStatus::from_bits(self.bits[byte] >> shift).unwrap_or(EntryStatus::Revoked))
    }

    /// Sets entry `index`, refusing to change a revoked entry.
    pub fn set(&mut self, index: u32, status: EntryStatus) -> Result<(), StatusError> {
        let current = self.get(index)?;
        if !current.may_become(status) {
            return Err(StatusError::RevocationIsFinal { index });
        }
        let (byte, shift) = self.slot(index)?;
        self.bits[byte] = (self.bits[byte] & !(3 << shift)) | (status.bits() << shift);
        Ok(())
    }

    /// The raw entry bits.
    pub fn bits(&self) -> &[u8; PAGE_BYTES] {
        &self.bits
    }
}

impl Encode for StatusPage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.list.encode_to(out);
        self.owner.encode_to(out);
        self.capacity.encode_to(out);
        self.page.encode_to(out);
        out.extend_from_slice(&self.bits);
    }
}

impl Decode for StatusPage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let page = StatusPage {
            list: StatusListId::decode_from(r)?,
            owner: IssuerId::decode_from(r)?,
            capacity: u32::decode_from(r)?,
            page: u32::decode_from(r)?,
            bits: r.array()?,
        };
        if !is_valid_capacity(page.capacity) || page.page >= page.capacity / ENTRIES_PER_PAGE {
            return Err(DecodeError::InvalidValue {
                what: "status page",
                reason: "invalid capacity or page number",
            });
        }
        // Reserved 0b11 entries: a byte has one iff some pair of bits is 11.
        if page.bits.iter().any(|b| (b & (b >> 1) & 0x55) != 0) {
            return Err(DecodeError::InvalidValue {
                what: "status page",
                reason: "reserved entry value 0b11",
            });
        }
        Ok(page)
    }
}

/// Why an index could not be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// Every entry is taken.
    #[error("status list {list} is full")]
    ListFull {
        /// The list.
        list: StatusListId,
    },
}

/// An issuer's record of which entries of one of its lists are in use, to
/// hand out fresh random indexes. Kept by the issuer, off chain.
#[derive(Debug, Clone)]
pub struct StatusAllocator {
    list: StatusListId,
    capacity: u32,
    used: Vec<u64>,
    count: u32,
}

impl StatusAllocator {
    /// An allocator over an empty list.
    pub fn new(list: StatusListId, capacity: u32) -> Self {
        StatusAllocator {
            list,
            capacity,
            used: vec![0; (capacity as usize).div_ceil(64)],
            count: 0,
        }
    }

    /// The list.
    pub fn list(&self) -> StatusListId {
        self.list
    }

    /// Entries allocated so far.
    pub fn allocated(&self) -> u32 {
        self.count
    }

    fn is_used(&self, i: u32) -> bool {
        self.used[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// A fresh index drawn uniformly from the unused ones.
    pub fn allocate<R: rand_core::RngCore + rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<u32, AllocError> {
        if self.count >= self.capacity {
            return Err(AllocError::ListFull { list: self.list });
        }
        // Rejection sampling while sparse; a uniform pick among the free
        // entries once the list is more than 3/4 full.
        let index = if u64::from(self.count) * 4 < u64::from(self.capacity) * 3 {
            loop {
                let i = (rng.next_u64() % u64::from(self.capacity)) as u32;
                if !self.is_used(i) {
                    break i;
                }
            }
        } else {
            let free = self.capacity - self.count;
            let mut k = (rng.next_u64() % u64::from(free)) as u32;
            let mut found = None;
            for i in 0..self.capacity {
                if !self.is_used(i) {
                    if k == 0 {
                        found = Some(i);
                        break;
                    }
                    k -= 1;
                }
            }
            found.ok_or(AllocError::ListFull { list: self.list })?
        };
        self.used[(index / 64) as usize] |= 1 << (index % 64);
        self.count += 1;
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govchain_core::codec::decode_exact;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;

    fn page(p: u32) -> StatusPage {
        StatusPage::new(
            StatusListId::new(7),
            IssuerId::new("hz").unwrap(),
            MIN_LIST_CAPACITY,
            p,
        )
    }

    #[test]
    fn entries_are_two_bits_msb_first() {
        let mut p = page(0);
        p.set(0, EntryStatus::Suspended).unwrap();
        p.set(1, EntryStatus::Revoked).unwrap();
        p.set(7, EntryStatus::Suspended).unwrap();
        assert_eq!(p.bits()[0], 0b1001_0000);
        assert_eq!(p.bits()[1], 0b0000_0010);
        assert_eq!(p.get(0), Ok(EntryStatus::Suspended));
        assert_eq!(p.get(2), Ok(EntryStatus::Valid));
        // Un-suspend; revocation is final.
        p.set(0, EntryStatus::Valid).unwrap();
        assert_eq!(p.get(0), Ok(EntryStatus::Valid));
        assert_eq!(
            p.set(1, EntryStatus::Valid),
            Err(StatusError::RevocationIsFinal { index: 1 })
        );
        assert_eq!(p.set(1, EntryStatus::Revoked), Ok(()));
        assert_eq!(
            p.get(1024),
            Err(StatusError::WrongPage {
                index: 1024,
                page: 0
            })
        );
        assert_eq!(
            p.get(MIN_LIST_CAPACITY),
            Err(StatusError::IndexOutOfRange {
                index: MIN_LIST_CAPACITY,
                capacity: MIN_LIST_CAPACITY
            })
        );
        let last = page(MIN_LIST_CAPACITY / ENTRIES_PER_PAGE - 1);
        assert_eq!(last.get(MIN_LIST_CAPACITY - 1), Ok(EntryStatus::Valid));
    }

    #[test]
    fn decoding_refuses_reserved_values_and_bad_geometry() {
        let p = page(3);
        let mut enc = p.to_bytes();
        assert_eq!(
            decode_exact::<StatusPage>(&enc, MAX_STATUS_PAGE_LEN).unwrap(),
            p
        );
        let n = enc.len();
        enc[n - 1] = 0b0000_0011;
        assert!(matches!(
            decode_exact::<StatusPage>(&enc, MAX_STATUS_PAGE_LEN),
            Err(DecodeError::InvalidValue { .. })
        ));
        assert!(decode_exact::<StatusPage>(&page(128).to_bytes(), MAX_STATUS_PAGE_LEN).is_err());
        let mut small = page(0);
        small.capacity = 1024;
        assert!(decode_exact::<StatusPage>(&small.to_bytes(), MAX_STATUS_PAGE_LEN).is_err());
        assert!(is_valid_capacity(MIN_LIST_CAPACITY) && !is_valid_capacity(MIN_LIST_CAPACITY + 1));
    }

    #[test]
    fn allocator_hands_out_each_index_once() {
        let seed = 0x5eed_u64;
        println!("seed {seed}");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut a = StatusAllocator::new(StatusListId::new(1), 2048);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2048 {
            assert!(seen.insert(a.allocate(&mut rng).unwrap()));
        }
        assert_eq!(a.allocated(), 2048);
        assert_eq!(
            a.allocate(&mut rng),
            Err(AllocError::ListFull {
                list: StatusListId::new(1)
            })
        );
    }

    proptest! {
        #[test]
        fn set_get_model(ops in proptest::collection::vec((0u32..1024, 0u8..3), 0..200)) {
            let mut p = page(0);
            let mut model = vec![EntryStatus::Valid; 1024];
            for (i, s) in ops {
                let s = EntryStatus::from_bits(s).unwrap();
                let r = p.set(i, s);
                if model[i as usize].may_become(s) { prop_assert!(r.is_ok()); model[i as usize] = s; } else { prop_assert!(r.is_err()); }
            }
            for i in 0..1024 { prop_assert_eq!(p.get(i).unwrap(), model[i as usize]); }
            let back = decode_exact::<StatusPage>(&p.to_bytes(), MAX_STATUS_PAGE_LEN).unwrap();
            prop_assert_eq!(back, p);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(p) = decode_exact::<StatusPage>(&bytes, MAX_STATUS_PAGE_LEN) {
                prop_assert_eq!(p.to_bytes(), bytes);
            }
        }
    }
}
