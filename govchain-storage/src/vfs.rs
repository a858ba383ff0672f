//! The byte-level storage backend ([`Vfs`]) under the durable store, and its
//! operating-system implementation ([`OsVfs`]).
//!
//! Like SQLite's VFS layer, this is the one seam through which every byte the
//! durable store writes passes — the block log *and* the redb index (through
//! the page-checksumming redb backend, see the [`durable`](crate::durable)
//! module's *Verified reads*) — so tests can replace the disk with
//! [`SimDisk`](crate::sim::SimDisk) and inject crashes and I/O errors.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`Vfs::open`] treats a missing or existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenMode {
    /// Open an existing file; fail with [`io::ErrorKind::NotFound`] otherwise.
    Existing,
    /// Open the file, creating it empty if it does not exist.
    CreateOrOpen,
    /// Create the file empty, truncating it if it exists.
    Truncate,
}

/// One open file of a [`Vfs`].
///
/// # Contract
/// - **Visibility.** A successful [`write_at`](Self::write_at) or
///   [`set_len`](Self::set_len) is visible to later reads through any handle
///   of the same file at once, but is *not durable*: after a power loss any
///   subset of the writes since the last successful
///   [`sync_data`](Self::sync_data) may be lost or torn (partly written at
///   sector granularity).
/// - **Durability.** When `sync_data` returns `Ok`, every earlier write to the
///   file survives power loss. It does not make the file's *name* durable;
///   see [`Vfs::sync_dir`].
/// - **Errors.** An `Err` from `write_at` may leave any prefix of the data
///   written. An `Err` from `sync_data` means *nothing* about the unsynced
///   writes is known, and retrying cannot establish it (Linux drops the dirty
///   pages after reporting the error once); callers must treat the file as
///   lost beyond its last successful sync.
pub trait VfsFile: Send + Sync + Debug {
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Fills `buf` from `offset`; reading past the end is an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes all of `data` at `offset`, extending the file (with zeros in
    /// any gap) as needed.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data and length durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// A file system: the byte-level storage backend of the durable store.
///
/// # Contract
/// - **Names are not durable until [`sync_dir`](Self::sync_dir).** Creating,
///   renaming or removing a file changes the live namespace at once; after a
///   power loss, changes since the directory's last successful `sync_dir` may
///   be lost (a prefix of them survives, in order).
/// - **[`rename`](Self::rename) is atomic**: after a crash the target names
///   either the old file or the new one, never a mixture.
/// - **Errors** carry no partial-success information; callers of the durable
///   store poison their handle on any error during a write.
pub trait Vfs: Send + Sync + Debug + 'static {
    /// Opens the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates `path` and its missing parents as directories.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries of directory `path`, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// Makes the creations, renames and removals of entries of directory
    /// `path` durable (`fsync` of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by the file `path` (created if
    /// missing, never truncated), without waiting.
    ///
    /// Returns `Ok(Some(lock))` if it was free: it stays held until the
    /// [`FileLock`] is dropped (or the process dies). Returns `Ok(None)` if
    /// another holder has it — another process, *or another handle in this
    /// process*. The durable store takes it on open, so that two handles
    /// never write one store.
    ///
    /// The default implementation locks nothing and always succeeds, for
    /// backends that no one else can reach; [`OsVfs`] and
    /// [`SimDisk`](crate::sim::SimDisk) implement it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<FileLock>> {
        let _ = path;
        Ok(Some(FileLock::new(())))
    }
}

/// An exclusive lock taken with [`Vfs::try_lock`]; dropping it releases the
/// lock.
pub struct FileLock {
    _held: Box<dyn Send + Sync>,
}

impl FileLock {
    /// Wraps whatever keeps the lock held (an open, locked file; a guard
    /// that releases the lock when dropped).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        FileLock {
            _held: Box::new(held),
        }
    }
}

impl Debug for FileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileLock")
    }
}

/// The real file system, through `std::fs`.
///
/// On Unix, reads and writes are positional (`pread`/`pwrite`), so one
/// handle serves concurrent readers without a lock; `sync_data` is
/// `fdatasync` and `sync_dir` opens the directory and `fsync`s it.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsVfs;

#[derive(Debug)]
struct OsFile {
    #[cfg(unix)]
    file: File,
    #[cfg(not(unix))]
    file: parking_lot::Mutex<File>,
}

impl OsFile {
    fn new(file: File) -> Self {
        #[cfg(unix)]
        {
            OsFile { file }
        }
        #[cfg(not(unix))]
        {
            OsFile {
                file: parking_lot::Mutex::new(file),
            }
        }
    }
}

#[cfg(unix)]
impl VfsFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(not(unix))]
impl VfsFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.lock().metadata()?.len())
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = self.file.lock();
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = self.file.lock();
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.lock().set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.lock().sync_data()
    }
}

impl Vfs for OsVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        match mode {
            OpenMode::Existing => {}
            OpenMode::CreateOrOpen => {
                o.create(true);
            }
            OpenMode::Truncate => {
                o.create(true).truncate(true);
            }
        }
        Ok(Arc::new(OsFile::new(o.open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }
    /// `flock(LOCK_EX | LOCK_NB)` on Unix, `LockFileEx` on Windows (through
    /// [`File::try_lock`]). The lock belongs to the open file, so a second
    /// handle in the same process is refused too.
    fn try_lock(&self, path: &Path) -> io::Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(path)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Windows has no directory fsync; NTFS journals metadata.
            let _ = path;
            Ok(())
        }
    }
}
