//! The checksum-verified file under redb: [`ChecksummedFile`], the
//! [`redb::StorageBackend`] of the index.
//!
//! redb keeps a checksum of every B-tree page in the page's parent, but
//! verifies them only in its full integrity check, never on an ordinary
//! read; a damaged page is parsed as it is. A flipped key in a leaf can make
//! a lookup miss its row and find an older, intact one; a flipped page
//! reference can send a lookup into another page, a freed one, or make
//! redb panic. This layer closes that gap the way SQLite's `cksumvfs`
//! does, one level below the database: every 4 KiB block of `index.redb`
//! (but block 0, redb's self-checked header) has a CRC-32C, keyed by the
//! block number, in the file `index.sum` ([`encode_page_sum`]). Every read
//! redb makes of the file — a page that is not in its cache — is checked
//! against it before redb sees a byte, so redb only ever parses pages that
//! are exactly as it wrote them, and a damaged page is reported as
//! [`IndexPageCorrupt`] on the read that meets it.
//!
//! # Crash consistency
//! Entries are kept in memory (loaded 512 at a time on first use: opening
//! costs nothing) and written to `index.sum` on every
//! [`sync_data`](redb::StorageBackend::sync_data), after the index file's
//! own sync and before it returns. redb commits durably by writing pages,
//! syncing, then writing its header (two-phase commit, which the store
//! always uses) and syncing again, and it never overwrites a page that the
//! last durable commit references; so every page a recovered index can
//! reach had its data and its entry synced before the header that names
//! it. Pages written after that may be torn, or have a stale entry, but no
//! recovered tree reaches them. A torn write of `index.sum` rewrites the
//! entries of the untouched pages in that sector with the same bytes.
//!
//! # What it does not catch
//! A write that the disk acknowledged and then lost *in both files* (a
//! stale page with its stale entry) reads as the older page; and damage
//! that happens to keep the CRC-32C (probability 2^-32 for random damage;
//! none for up to three flipped bits or a burst of up to 32). Both are what
//! redb's own full check, [`DurableConfig::force_index_check_on_open`],
//! still covers at the cost of reading the whole index.
//!
//! [`DurableConfig::force_index_check_on_open`]: crate::DurableConfig::force_index_check_on_open

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::StorageError;
use crate::format::{
    check_page_sum, encode_page_sum, INDEX_PAGE_LEN, PAGE_SUMS_MAGIC, PAGE_SUM_LEN,
};
use crate::vfs::VfsFile;

/// Entries per chunk of `index.sum` kept in memory (one 4 KiB read).
const CHUNK_ENTRIES: u64 = (INDEX_PAGE_LEN / PAGE_SUM_LEN) as u64;
const PAGE: u64 = INDEX_PAGE_LEN as u64;
const ENTRY: usize = PAGE_SUM_LEN;

/// The error a read of a damaged index page returns to redb (as the
/// payload of an [`io::ErrorKind::InvalidData`] error), recognised by
/// [`db_err`](crate::error::db_err) as corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexPageCorrupt {
    /// Byte offset of the damaged block in `index.redb`.
    pub offset: u64,
    /// What check failed.
    pub reason: &'static str,
}

impl std::fmt::Display for IndexPageCorrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "index.redb page at offset {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for IndexPageCorrupt {}

/// The first damaged index page found, shared between the backend (which
/// records it) and the store (which reports it). redb fails every later
/// access of the file after a failed read, with an error that no longer
/// says why; the store uses this record to report those as corruption too.
#[derive(Clone, Debug, Default)]
pub(crate) struct DamageRecord(Arc<Mutex<Option<IndexPageCorrupt>>>);

impl DamageRecord {
    /// The first damage found, if any.
    pub fn get(&self) -> Option<IndexPageCorrupt> {
        self.0.lock().clone()
    }

    fn record(&self, damage: &IndexPageCorrupt) {
        self.0.lock().get_or_insert_with(|| damage.clone());
    }

    /// `e`, or — once a damaged page was found — the corruption that
    /// explains it, if `e` is redb refusing the file because of it.
    pub fn classify(&self, e: StorageError) -> StorageError {
        match (&e, self.get()) {
            (
                StorageError::Database {
                    source: redb::Error::PreviousIo,
                },
                Some(damage),
            ) => StorageError::corrupt(
                crate::error::INDEX_DATABASE,
                format!(
                    "{damage} (found earlier; the index is refused until the store is restored)"
                ),
            ),
            _ => e,
        }
    }
}

/// One chunk of `index.sum` in memory.
struct Chunk {
    entries: Box<[u8; INDEX_PAGE_LEN]>,
    /// Changed since it was last written to `index.sum`.
    dirty: bool,
}

/// `index.redb` with every block checked against `index.sum` on read and
/// summed on write. See the [module documentation](self).
pub(crate) struct ChecksummedFile {
    file: Arc<dyn VfsFile>,
    sums: Arc<dyn VfsFile>,
    chunks: Mutex<HashMap<u64, Chunk>>,
    /// Held shared by reads and exclusively by writes, so that no read
    /// sees a block's new data with its old entry.
    io: RwLock<()>,
    damage: DamageRecord,
}

impl std::fmt::Debug for ChecksummedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksummedFile")
            .field("file", &self.file)
            .field("sums", &self.sums)
            .finish()
    }
}

fn corrupt(offset: u64, reason: &'static str) -> IndexPageCorrupt {
    IndexPageCorrupt { offset, reason }
}

impl ChecksummedFile {
    /// Wraps the index file `file` and its checksum file `sums`. A `new`
    /// index (an empty file) gets a fresh `sums` (its magic written and
    /// synced); otherwise the magic of `sums` is checked.
    pub fn open(
        file: Arc<dyn VfsFile>,
        sums: Arc<dyn VfsFile>,
        new: bool,
        damage: DamageRecord,
    ) -> io::Result<Self> {
        let this = ChecksummedFile {
            file,
            sums,
            chunks: Mutex::new(HashMap::new()),
            io: RwLock::new(()),
            damage,
        };
        if new {
            this.sums.set_len(0)?;
            this.sums.write_at(0, &PAGE_SUMS_MAGIC)?;
            this.sums.sync_data()?;
        } else if this.entry(0)? != PAGE_SUMS_MAGIC {
            return Err(this.fail(corrupt(0, "index.sum does not start with its magic")));
        }
        Ok(this)
    }

    /// Records `damage` and turns it into the I/O error redb passes on.
    fn fail(&self, damage: IndexPageCorrupt) -> io::Error {
        self.damage.record(&damage);
        io::Error::new(io::ErrorKind::InvalidData, damage)
    }

    /// Runs `f` on the in-memory chunk `c`, reading it from `index.sum`
    /// first if needed (beyond the end of the file, entries are zero).
    fn with_chunk<T>(&self, c: u64, f: impl FnOnce(&mut Chunk) -> T) -> io::Result<T> {
        let mut chunks = self.chunks.lock();
        if let Some(chunk) = chunks.get_mut(&c) {
            return Ok(f(chunk));
        }
        let mut entries = Box::new([0u8; INDEX_PAGE_LEN]);
        let start = c.saturating_mul(PAGE);
        let len = self.sums.len()?;
        if start < len {
            let n = usize::try_from((len - start).min(PAGE)).unwrap_or(INDEX_PAGE_LEN);
            self.sums
                .read_at(start, entries.get_mut(..n).unwrap_or_default())?;
        }
        let chunk = chunks.entry(c).or_insert(Chunk {
            entries,
            dirty: false,
        });
        Ok(f(chunk))
    }

    fn slot(block: u64) -> (u64, usize) {
        let at = usize::try_from(block % CHUNK_ENTRIES).unwrap_or(0) * ENTRY;
        (block / CHUNK_ENTRIES, at)
    }

    fn entry(&self, block: u64) -> io::Result<[u8; ENTRY]> {
        let (c, at) = Self::slot(block);
        self.with_chunk(c, |chunk| {
            let mut e = [0u8; ENTRY];
            if let Some(s) = chunk.entries.get(at..at + ENTRY) {
                e.copy_from_slice(s);
            }
            e
        })
    }

    fn set_entry(&self, block: u64, entry: [u8; ENTRY]) -> io::Result<()> {
        let (c, at) = Self::slot(block);
        self.with_chunk(c, |chunk| {
            if let Some(s) = chunk.entries.get_mut(at..at + ENTRY) {
                if *s != entry {
                    s.copy_from_slice(&entry);
                    chunk.dirty = true;
                }
            }
        })
    }

    /// The bytes of block `block` as the file holds them now (shorter at
    /// the end of the file).
    fn read_block(&self, block: u64) -> io::Result<Vec<u8>> {
        let start = block.saturating_mul(PAGE);
        let len = self.file.len()?;
        let n = len.saturating_sub(start).min(PAGE);
        let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
        self.file.read_at(start, &mut buf)?;
        Ok(buf)
    }

    /// The blocks (but block 0) that `len` bytes at `offset` touch, each
    /// with the part of `data` that covers it whole, if it does.
    fn blocks<'a>(
        offset: u64,
        data: &'a [u8],
    ) -> impl Iterator<Item = (u64, Option<&'a [u8]>)> + 'a {
        let end = offset.saturating_add(data.len() as u64);
        let first = (offset / PAGE).max(1);
        let last = end.div_ceil(PAGE);
        (first..last).map(move |b| {
            let start = b * PAGE;
            let whole = (start >= offset && start + PAGE <= end)
                .then(|| {
                    let at = usize::try_from(start - offset).ok()?;
                    data.get(at..at + INDEX_PAGE_LEN)
                })
                .flatten();
            (b, whole)
        })
    }

    /// Writes the dirty chunks to `index.sum`, then syncs it if `sync`.
    fn flush(&self, sync: bool) -> io::Result<()> {
        let mut chunks = self.chunks.lock();
        let mut wrote = false;
        for (c, chunk) in chunks.iter_mut().filter(|(_, ch)| ch.dirty) {
            self.sums
                .write_at(c.saturating_mul(PAGE), &chunk.entries[..])?;
            wrote = true;
        }
        if wrote && sync {
            self.sums.sync_data()?;
        }
        if wrote {
            chunks.values_mut().for_each(|ch| ch.dirty = false);
        }
        Ok(())
    }
}

impl redb::StorageBackend for ChecksummedFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let _io = self.io.read();
        self.file.read_at(offset, out)?;
        for (b, whole) in Self::blocks(offset, out) {
            let owned;
            let data = match whole {
                Some(d) => d,
                None => {
                    owned = self.read_block(b)?;
                    &owned
                }
            };
            check_page_sum(&self.entry(b)?, b, data)
                .map_err(|reason| self.fail(corrupt(b * PAGE, reason)))?;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let _io = self.io.write();
        let old = self.file.len()?;
        self.file.set_len(len)?;
        // Blocks cut off lose their entries (a later extension reads them
        // as zeros); a block cut in the middle is summed again. Extending
        // changes no entry: a short block is summed zero-padded.
        if len < old {
            for b in len.div_ceil(PAGE).max(1)..old.div_ceil(PAGE) {
                self.set_entry(b, [0; ENTRY])?;
            }
            let b = len / PAGE;
            if !len.is_multiple_of(PAGE) && b > 0 {
                let data = self.read_block(b)?;
                self.set_entry(b, encode_page_sum(b, &data))?;
            }
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let _io = self.io.write();
        self.file.sync_data()?;
        self.flush(true)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let _io = self.io.write();
        self.file.write_at(offset, data)?;
        for (b, whole) in Self::blocks(offset, data) {
            let entry = match whole {
                Some(d) => encode_page_sum(b, d),
                None => encode_page_sum(b, &self.read_block(b)?),
            };
            self.set_entry(b, entry)?;
        }
        Ok(())
    }
}

impl Drop for ChecksummedFile {
    /// Writes (without a sync) the entries of pages written since the last
    /// sync, so that a reopen without power loss finds them; after a power
    /// loss those pages are unreachable anyway (see the module docs).
    fn drop(&mut self) {
        let _ = self.flush(false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::sim::SimDisk;
    use crate::vfs::{OpenMode, Vfs};
    use redb::StorageBackend;
    use std::path::Path;

    fn files(disk: &SimDisk) -> (Arc<dyn VfsFile>, Arc<dyn VfsFile>) {
        disk.create_dir_all(Path::new("/d")).unwrap();
        (
            disk.open(Path::new("/d/i"), OpenMode::CreateOrOpen)
                .unwrap(),
            disk.open(Path::new("/d/s"), OpenMode::CreateOrOpen)
                .unwrap(),
        )
    }

    /// Writes of any alignment and length, truncations and extensions keep
    /// every block readable; the entries survive a reopen; a flipped bit
    /// anywhere past block 0 fails the read that covers it, and the damage
    /// is recorded.
    #[test]
    fn reads_verify_what_writes_summed() {
        let disk = SimDisk::new(1);
        let (f, s) = files(&disk);
        let cf = ChecksummedFile::open(f, s, true, DamageRecord::default()).unwrap();
        let page = |i: u8| vec![i; INDEX_PAGE_LEN];
        cf.write(0, &[9; 320]).unwrap();
        cf.write(PAGE, &page(1)).unwrap();
        cf.write(2 * PAGE, &[page(2), page(3)].concat()).unwrap();
        cf.write(5 * PAGE + 100, &[7; 50]).unwrap(); // unaligned, leaves a gap
        cf.set_len(7 * PAGE).unwrap();
        cf.set_len(4 * PAGE + 10).unwrap(); // cuts blocks off and one in half
        cf.set_len(6 * PAGE).unwrap();
        cf.sync_data().unwrap();
        let mut all = vec![0u8; 6 * INDEX_PAGE_LEN];
        cf.read(0, &mut all).unwrap();
        let mut part = [0u8; 10];
        cf.read(3 * PAGE + 5, &mut part).unwrap();
        drop(cf);
        let (f, s) = files(&disk);
        let damage = DamageRecord::default();
        let cf = ChecksummedFile::open(f, s, false, damage.clone()).unwrap();
        cf.read(0, &mut all).unwrap();
        disk.flip_bit(Path::new("/d/i"), 3 * PAGE + 17, 2).unwrap();
        let err = cf.read(3 * PAGE, &mut [0u8; INDEX_PAGE_LEN]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(cf.read(3 * PAGE + 1, &mut [0u8; 8]).is_err());
        assert_eq!(damage.get().map(|d| d.offset), Some(3 * PAGE));
        // Block 0 (redb's header) is not summed.
        disk.flip_bit(Path::new("/d/i"), 5, 0).unwrap();
        cf.read(0, &mut [0u8; 320]).unwrap();
        // A damaged magic is refused on open.
        drop(cf);
        disk.flip_bit(Path::new("/d/s"), 1, 0).unwrap();
        let (f, s) = files(&disk);
        assert!(ChecksummedFile::open(f, s, false, DamageRecord::default()).is_err());
    }
}
