//! A simulated, fault-injecting disk for tests: [`SimDisk`].
//!
//! The disk keeps, for every file, a **live image** (what reads return) and a
//! **durable image** (what survives power loss), plus the list of writes made
//! since the file's last sync. Likewise the namespace (file names) has a
//! live and a durable version, and directory operations since the last
//! [`sync_dir`](Vfs::sync_dir) are pending.
//!
//! It can
//! - **lose power** ([`SimDisk::power_loss`]), keeping none, a prefix, a
//!   random subset, or torn sectors of the unsynced writes ([`CrashMode`]);
//! - **crash at the N-th sync** ([`SimDisk::crash_at_sync`]) — the sync does
//!   not happen and every later operation fails, as if the process died;
//! - **observe every sync point** ([`SimDisk::set_sync_hook`]): the hook gets
//!   a frozen copy of the disk just before each sync takes effect, so one run
//!   of a workload can check a crash at every sync point;
//! - **fail the N-th operation** of a class ([`Fault`]), once or for good:
//!   EIO, ENOSPC after writing part of the data, a short write, a failed
//!   fsync (after which the unsynced data stays at risk, as on Linux);
//! - **flip bits** in a file ([`SimDisk::flip_bit`]).
//!
//! Everything random is drawn from a seeded ChaCha8 generator, so a run is
//! reproducible from its seed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::vfs::{FileLock, OpenMode, Vfs, VfsFile};

/// Sector size used to tear writes.
pub const SECTOR: u64 = 512;

/// What survives of the unsynced writes when power is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashMode {
    /// Only what was synced.
    KeepNone,
    /// A random prefix (in issue order) of the unsynced writes of each file,
    /// and a random prefix of the pending directory operations.
    KeepPrefix,
    /// A random subset of the unsynced writes of each file (the disk
    /// reordered them), and a random prefix of the directory operations.
    KeepRandomSubset,
    /// A random prefix of each file's unsynced writes, then the next write
    /// torn: a random subset of its sectors, one of them only partly
    /// written.
    TornSectors,
}

impl CrashMode {
    /// All modes, for tests that cover each.
    pub const ALL: [CrashMode; 4] = [
        CrashMode::KeepNone,
        CrashMode::KeepPrefix,
        CrashMode::KeepRandomSubset,
        CrashMode::TornSectors,
    ];
}

/// The kind of an injected I/O failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// `EIO` on the N-th operation of any kind (reads included).
    Eio,
    /// `ENOSPC` on the N-th write, after writing the first half of its data.
    NoSpace,
    /// The N-th write stores a random prefix of its data, then fails.
    ShortWrite,
    /// The N-th `sync_data`/`sync_dir` fails; the unsynced data stays
    /// unsynced (and is lost at power loss unless a later sync succeeds).
    SyncFail,
}

impl FaultKind {
    /// All kinds, for tests that cover each.
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Eio,
        FaultKind::NoSpace,
        FaultKind::ShortWrite,
        FaultKind::SyncFail,
    ];
}

/// An injected failure: the `nth` (0-based) operation of the class that
/// `kind` applies to fails; with `persistent`, every later one fails too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What fails.
    pub kind: FaultKind,
    /// Index of the first failing operation within its class (all
    /// operations for [`FaultKind::Eio`], writes for `NoSpace` and
    /// `ShortWrite`, syncs for `SyncFail`).
    pub nth: u64,
    /// Whether every later operation of the class fails too.
    pub persistent: bool,
}

/// Operation counters of a [`SimDisk`], per fault class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Every operation, reads included.
    pub all: u64,
    /// Writes and truncations (`write_at`, `set_len`).
    pub writes: u64,
    /// `sync_data` and `sync_dir`.
    pub syncs: u64,
}

impl OpCounts {
    /// The counter of the class `kind` applies to.
    pub fn of(&self, kind: FaultKind) -> u64 {
        match kind {
            FaultKind::Eio => self.all,
            FaultKind::NoSpace | FaultKind::ShortWrite => self.writes,
            FaultKind::SyncFail => self.syncs,
        }
    }
}

/// Called with the index of a sync (0-based) and a frozen copy of the disk
/// just before that sync takes effect.
pub type SyncHook = Arc<dyn Fn(u64, &SimDisk) + Send + Sync>;

#[derive(Clone, Debug)]
enum DataOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl DataOp {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            DataOp::Write { offset, data } => write_into(image, *offset, data),
            DataOp::SetLen(len) => image.resize(usize_of(*len), 0),
        }
    }
}

fn usize_of(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn write_into(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize_of(offset);
    let end = start.saturating_add(data.len());
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(dst) = image.get_mut(start..end) {
        dst.copy_from_slice(data);
    }
}

#[derive(Clone, Debug, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<DataOp>,
}

#[derive(Clone, Debug)]
enum NsOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl NsOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            NsOp::Link(p, _) | NsOp::Unlink(p) | NsOp::Rename(_, p) => p.parent(),
        }
    }

    fn apply(&self, ns: &mut BTreeMap<PathBuf, u64>) {
        match self {
            NsOp::Link(p, ino) => {
                ns.insert(p.clone(), *ino);
            }
            NsOp::Unlink(p) => {
                ns.remove(p);
            }
            NsOp::Rename(from, to) => {
                if let Some(ino) = ns.remove(from) {
                    ns.insert(to.clone(), ino);
                }
            }
        }
    }
}

struct State {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    live: BTreeMap<PathBuf, u64>,
    durable: BTreeMap<PathBuf, u64>,
    ns_pending: Vec<NsOp>,
    dirs: BTreeSet<PathBuf>,
    /// Paths locked with `try_lock`; in memory only, so a power loss (the
    /// process dies) or a frozen copy (another process) starts with none.
    locks: BTreeSet<PathBuf>,
    counts: OpCounts,
    faults: Vec<Fault>,
    crash_at_sync: Option<u64>,
    crashed: bool,
    rng: ChaCha8Rng,
    hook: Option<SyncHook>,
}

impl State {
    fn new(seed: u64) -> Self {
        State {
            inodes: HashMap::new(),
            next_ino: 1,
            live: BTreeMap::new(),
            durable: BTreeMap::new(),
            ns_pending: Vec::new(),
            dirs: BTreeSet::new(),
            locks: BTreeSet::new(),
            counts: OpCounts::default(),
            faults: Vec::new(),
            crash_at_sync: None,
            crashed: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
            hook: None,
        }
    }

    fn frozen_copy(&self, seed: u64) -> State {
        State {
            inodes: self.inodes.clone(),
            next_ino: self.next_ino,
            live: self.live.clone(),
            durable: self.durable.clone(),
            ns_pending: self.ns_pending.clone(),
            dirs: self.dirs.clone(),
            locks: BTreeSet::new(),
            counts: OpCounts::default(),
            faults: Vec::new(),
            crash_at_sync: None,
            crashed: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
            hook: None,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }

    fn gone() -> io::Error {
        io::Error::other("simulated power loss: the disk is gone until power_loss()")
    }

    /// Counts an operation and returns the fault that hits it, if any.
    fn begin(&mut self, write: bool, sync: bool) -> io::Result<Option<FaultKind>> {
        if self.crashed {
            return Err(Self::gone());
        }
        let c = self.counts;
        let mut hit = None;
        for f in &self.faults {
            let index = c.of(f.kind);
            let applies = match f.kind {
                FaultKind::Eio => true,
                FaultKind::NoSpace | FaultKind::ShortWrite => write,
                FaultKind::SyncFail => sync,
            };
            if applies && (index == f.nth || (f.persistent && index > f.nth)) {
                hit = Some(f.kind);
                break;
            }
        }
        self.counts.all += 1;
        if write {
            self.counts.writes += 1;
        }
        if sync {
            self.counts.syncs += 1;
        }
        if hit == Some(FaultKind::Eio) {
            return Err(io::Error::other("simulated EIO"));
        }
        Ok(hit)
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "stale simulated inode"))
    }

    fn check_dir(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if p.as_os_str().is_empty() || self.dirs.contains(p) => Ok(()),
            None => Ok(()),
            Some(_) => Err(io::Error::new(io::ErrorKind::NotFound, "no such directory")),
        }
    }

    fn power_loss(&mut self, mode: CrashMode) -> State {
        let mut ns = self.durable.clone();
        let keep_ns = match mode {
            CrashMode::KeepNone => 0,
            _ => usize_of(self.below(self.ns_pending.len() as u64 + 1)),
        };
        for op in self.ns_pending.iter().take(keep_ns) {
            op.apply(&mut ns);
        }
        let reachable: BTreeSet<u64> = ns.values().copied().collect();
        let mut inodes = HashMap::new();
        for ino in reachable {
            let Some(node) = self.inodes.get(&ino).cloned() else {
                continue;
            };
            let mut image = node.durable.clone();
            let n = node.pending.len() as u64;
            match mode {
                CrashMode::KeepNone => {}
                CrashMode::KeepPrefix => {
                    let k = usize_of(self.below(n + 1));
                    node.pending
                        .iter()
                        .take(k)
                        .for_each(|op| op.apply(&mut image));
                }
                CrashMode::KeepRandomSubset => {
                    for op in &node.pending {
                        if self.below(2) == 1 {
                            op.apply(&mut image);
                        }
                    }
                }
                CrashMode::TornSectors => {
                    let k = usize_of(self.below(n + 1));
                    node.pending
                        .iter()
                        .take(k)
                        .for_each(|op| op.apply(&mut image));
                    if let Some(op) = node.pending.get(k) {
                        self.tear(op, &mut image);
                    }
                }
            }
            inodes.insert(
                ino,
                Inode {
                    live: image.clone(),
                    durable: image,
                    pending: Vec::new(),
                },
            );
        }
        let seed = self.rng.next_u64();
        State {
            inodes,
            next_ino: self.next_ino,
            live: ns.clone(),
            durable: ns,
            ns_pending: Vec::new(),
            dirs: self.dirs.clone(),
            locks: BTreeSet::new(),
            counts: OpCounts::default(),
            faults: Vec::new(),
            crash_at_sync: None,
            crashed: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
            hook: None,
        }
    }

    fn tear(&mut self, op: &DataOp, image: &mut Vec<u8>) {
        match op {
            DataOp::SetLen(_) => {
                if self.below(2) == 1 {
                    op.apply(image);
                }
            }
            DataOp::Write { offset, data } => {
                let end = offset.saturating_add(data.len() as u64);
                let mut chunks = Vec::new();
                let mut at = *offset;
                while at < end {
                    let next = ((at / SECTOR) + 1).saturating_mul(SECTOR).min(end);
                    chunks.push((at, next));
                    at = next;
                }
                let torn = usize_of(self.below(chunks.len() as u64));
                for (i, (s, e)) in chunks.into_iter().enumerate() {
                    let from = usize_of(s - offset);
                    let to = usize_of(e - offset);
                    let Some(bytes) = data.get(from..to) else {
                        continue;
                    };
                    if i == torn {
                        let keep = usize_of(self.below(bytes.len() as u64));
                        write_into(image, s, bytes.get(..keep).unwrap_or_default());
                    } else if self.below(2) == 1 {
                        write_into(image, s, bytes);
                    }
                }
            }
        }
    }
}

/// A simulated disk; cheap to clone (clones share the disk). See the
/// [module documentation](self).
#[derive(Clone)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("SimDisk")
            .field("files", &s.live.len())
            .field("counts", &s.counts)
            .field("crashed", &s.crashed)
            .finish()
    }
}

impl SimDisk {
    /// An empty disk whose random choices derive from `seed`.
    pub fn new(seed: u64) -> Self {
        SimDisk {
            state: Arc::new(Mutex::new(State::new(seed))),
        }
    }

    /// Adds an injected failure.
    pub fn inject(&self, fault: Fault) {
        self.state.lock().faults.push(fault);
    }

    /// Removes every injected failure.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// Makes the sync with index `n` (0-based, counting from now on the
    /// disk's sync counter) fail without taking effect, and every later
    /// operation fail: the process "dies" there. Follow with
    /// [`power_loss`](Self::power_loss).
    pub fn crash_at_sync(&self, n: u64) {
        self.state.lock().crash_at_sync = Some(n);
    }

    /// Whether a crash point was reached.
    pub fn is_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Installs (or with `None` removes) a hook called before every sync.
    pub fn set_sync_hook(&self, hook: Option<SyncHook>) {
        self.state.lock().hook = hook;
    }

    /// The operation counters so far.
    pub fn counts(&self) -> OpCounts {
        self.state.lock().counts
    }

    /// The disk as it is after power loss now: a new, independent disk
    /// holding the durable images plus what `mode` keeps of the unsynced
    /// writes. This disk is left unchanged (apart from its generator).
    pub fn power_loss(&self, mode: CrashMode) -> SimDisk {
        let next = self.state.lock().power_loss(mode);
        SimDisk {
            state: Arc::new(Mutex::new(next)),
        }
    }

    /// An independent copy of the disk, live and durable images and pending
    /// writes included, with fresh counters, no faults and no hook.
    pub fn frozen_copy(&self, seed: u64) -> SimDisk {
        let copy = self.state.lock().frozen_copy(seed);
        SimDisk {
            state: Arc::new(Mutex::new(copy)),
        }
    }

    /// Flips bit `bit` (0..8) of byte `offset` of the file at `path`, in
    /// both the live and the durable image.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut s = self.state.lock();
        let ino = *s
            .live
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        let node = s.inode(ino)?;
        let mask = 1u8 << (bit % 8);
        let at = usize_of(offset);
        for image in [&mut node.live, &mut node.durable] {
            if let Some(b) = image.get_mut(at) {
                *b ^= mask;
            }
        }
        for op in &mut node.pending {
            if let DataOp::Write { offset: o, data } = op {
                if let Some(b) = at.checked_sub(usize_of(*o)).and_then(|i| data.get_mut(i)) {
                    *b ^= mask;
                }
            }
        }
        Ok(())
    }

    /// The live contents of the file at `path`.
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        let ino = s
            .live
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        Ok(s.inodes
            .get(ino)
            .map(|n| n.live.clone())
            .unwrap_or_default())
    }

    /// Replaces the contents of the file at `path` (created if missing),
    /// durably, bypassing fault injection. For setting up test fixtures.
    pub fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        if let Some(parent) = path.parent() {
            let mut p = parent.to_path_buf();
            loop {
                s.dirs.insert(p.clone());
                if !p.pop() || p.as_os_str().is_empty() {
                    break;
                }
            }
        }
        let ino = match s.live.get(path) {
            Some(i) => *i,
            None => {
                let i = s.next_ino;
                s.next_ino += 1;
                s.live.insert(path.to_path_buf(), i);
                s.durable.insert(path.to_path_buf(), i);
                i
            }
        };
        s.inodes.insert(
            ino,
            Inode {
                live: data.to_vec(),
                durable: data.to_vec(),
                pending: Vec::new(),
            },
        );
        Ok(())
    }

    /// Every file path and its live length, sorted by path.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let s = self.state.lock();
        s.live
            .iter()
            .map(|(p, i)| {
                (
                    p.clone(),
                    s.inodes.get(i).map_or(0, |n| n.live.len() as u64),
                )
            })
            .collect()
    }

    /// Runs a sync of `ino` (or of directory `dir`): crash point, hook,
    /// faults, then the effect.
    fn sync(&self, target: SyncTarget<'_>) -> io::Result<()> {
        let (index, hook, frozen) = {
            let mut s = self.state.lock();
            let index = s.counts.syncs;
            let fault = s.begin(false, true)?;
            if s.crash_at_sync == Some(index) {
                s.crashed = true;
                return Err(State::gone());
            }
            if fault == Some(FaultKind::SyncFail) {
                return Err(io::Error::other("simulated fsync failure"));
            }
            let hook = s.hook.clone();
            let frozen = if hook.is_some() {
                let seed = s.rng.next_u64();
                Some(s.frozen_copy(seed))
            } else {
                None
            };
            (index, hook, frozen)
        };
        if let (Some(hook), Some(frozen)) = (hook, frozen) {
            hook(
                index,
                &SimDisk {
                    state: Arc::new(Mutex::new(frozen)),
                },
            );
        }
        let mut s = self.state.lock();
        if s.crashed {
            return Err(State::gone());
        }
        match target {
            SyncTarget::File(ino) => {
                let node = s.inode(ino)?;
                for op in std::mem::take(&mut node.pending) {
                    op.apply(&mut node.durable);
                }
            }
            SyncTarget::Dir(dir) => {
                let pending = std::mem::take(&mut s.ns_pending);
                let mut rest = Vec::new();
                for op in pending {
                    if op.dir() == Some(dir) {
                        op.apply(&mut s.durable);
                    } else {
                        rest.push(op);
                    }
                }
                s.ns_pending = rest;
            }
        }
        Ok(())
    }
}

enum SyncTarget<'a> {
    File(u64),
    Dir(&'a Path),
}

struct SimFile {
    disk: SimDisk,
    ino: u64,
    path: PathBuf,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFile({:?})", self.path)
    }
}

impl VfsFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        let mut s = self.disk.state.lock();
        s.begin(false, false)?;
        Ok(s.inode(self.ino)?.live.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.disk.state.lock();
        s.begin(false, false)?;
        let node = s.inode(self.ino)?;
        let start = usize_of(offset);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| node.live.get(start..end))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.disk.state.lock();
        let fault = s.begin(true, false)?;
        let (keep, err) = match fault {
            Some(FaultKind::NoSpace) => (
                data.len() / 2,
                Some(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated ENOSPC",
                )),
            ),
            Some(FaultKind::ShortWrite) => {
                let keep = usize_of(s.below(data.len() as u64));
                (
                    keep,
                    Some(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "simulated short write",
                    )),
                )
            }
            _ => (data.len(), None),
        };
        let part = data.get(..keep).unwrap_or_default().to_vec();
        let node = s.inode(self.ino)?;
        if !part.is_empty() {
            write_into(&mut node.live, offset, &part);
            node.pending.push(DataOp::Write { offset, data: part });
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.disk.state.lock();
        let fault = s.begin(true, false)?;
        if let Some(kind) = fault {
            let grows = s.inode(self.ino)?.live.len() as u64 <= len;
            if kind == FaultKind::NoSpace && grows {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated ENOSPC",
                ));
            }
        }
        let node = s.inode(self.ino)?;
        node.live.resize(usize_of(len), 0);
        node.pending.push(DataOp::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.sync(SyncTarget::File(self.ino))
    }
}

impl Vfs for SimDisk {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        s.check_dir(path)?;
        let ino = match (s.live.get(path).copied(), mode) {
            (Some(ino), OpenMode::Existing | OpenMode::CreateOrOpen) => ino,
            (Some(ino), OpenMode::Truncate) => {
                let node = s.inode(ino)?;
                node.live.clear();
                node.pending.push(DataOp::SetLen(0));
                ino
            }
            (None, OpenMode::Existing) => {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such file"));
            }
            (None, OpenMode::CreateOrOpen | OpenMode::Truncate) => {
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                s.live.insert(path.to_path_buf(), ino);
                s.ns_pending.push(NsOp::Link(path.to_path_buf(), ino));
                ino
            }
        };
        Ok(Arc::new(SimFile {
            disk: self.clone(),
            ino,
            path: path.to_path_buf(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        s.check_dir(to)?;
        let ino = s
            .live
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        s.live.insert(to.to_path_buf(), ino);
        s.ns_pending
            .push(NsOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        s.live
            .remove(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        s.ns_pending.push(NsOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // Directories are durable at once: the store creates them before
        // anything that depends on them, and syncs their parents anyway.
        let mut s = self.state.lock();
        s.begin(false, false)?;
        let mut p = path.to_path_buf();
        loop {
            s.dirs.insert(p.clone());
            if !p.pop() || p.as_os_str().is_empty() {
                break;
            }
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        if !s.dirs.contains(path) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        let mut names: Vec<String> = s
            .live
            .keys()
            .chain(s.dirs.iter())
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        Ok(s.live.contains_key(path) || s.dirs.contains(path))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.sync(SyncTarget::Dir(path))
    }

    /// Modelled in memory: no file is created, and the lock is gone after
    /// [`power_loss`](SimDisk::power_loss) and in a
    /// [`frozen_copy`](SimDisk::frozen_copy).
    fn try_lock(&self, path: &Path) -> io::Result<Option<FileLock>> {
        let mut s = self.state.lock();
        s.begin(false, false)?;
        s.check_dir(path)?;
        if !s.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(FileLock::new(SimLock {
            state: Arc::downgrade(&self.state),
            path: path.to_path_buf(),
        })))
    }
}

/// Releases a [`SimDisk`] lock when dropped.
struct SimLock {
    state: std::sync::Weak<Mutex<State>>,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        if let Some(state) = self.state.upgrade() {
            state.lock().locks.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn unsynced_writes_and_names_are_lost_in_keep_none() {
        let disk = SimDisk::new(1);
        disk.create_dir_all(&p("/d")).unwrap();
        let f = disk.open(&p("/d/a"), OpenMode::CreateOrOpen).unwrap();
        f.write_at(0, b"hello").unwrap();
        f.sync_data().unwrap();
        // The name is not durable yet.
        assert!(!disk
            .power_loss(CrashMode::KeepNone)
            .exists(&p("/d/a"))
            .unwrap());
        disk.sync_dir(&p("/d")).unwrap();
        f.write_at(5, b" world").unwrap();
        let after = disk.power_loss(CrashMode::KeepNone);
        assert_eq!(after.read_file(&p("/d/a")).unwrap(), b"hello");
        assert_eq!(disk.read_file(&p("/d/a")).unwrap(), b"hello world");
    }

    #[test]
    fn faults_hit_the_nth_operation_of_their_class() {
        let disk = SimDisk::new(2);
        disk.create_dir_all(&p("/d")).unwrap();
        let f = disk.open(&p("/d/a"), OpenMode::CreateOrOpen).unwrap();
        disk.inject(Fault {
            kind: FaultKind::SyncFail,
            nth: 1,
            persistent: false,
        });
        f.sync_data().unwrap();
        assert!(f.sync_data().is_err());
        f.sync_data().unwrap();
        disk.inject(Fault {
            kind: FaultKind::NoSpace,
            nth: 0,
            persistent: true,
        });
        assert_eq!(
            f.write_at(0, b"abcd").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(disk.read_file(&p("/d/a")).unwrap(), b"ab");
        assert!(f.write_at(0, b"x").is_err());
    }

    #[test]
    fn crash_at_sync_stops_everything() {
        let disk = SimDisk::new(3);
        disk.create_dir_all(&p("/d")).unwrap();
        let f = disk.open(&p("/d/a"), OpenMode::CreateOrOpen).unwrap();
        disk.crash_at_sync(0);
        f.write_at(0, b"x").unwrap();
        assert!(f.sync_data().is_err());
        assert!(disk.is_crashed());
        assert!(f.write_at(0, b"y").is_err());
    }

    #[test]
    fn lock_is_exclusive_until_dropped_and_gone_after_power_loss() {
        let disk = SimDisk::new(4);
        disk.create_dir_all(&p("/d")).unwrap();
        let held = disk.try_lock(&p("/d/LOCK")).unwrap();
        assert!(held.is_some());
        assert!(disk.try_lock(&p("/d/LOCK")).unwrap().is_none());
        assert!(disk
            .power_loss(CrashMode::KeepNone)
            .try_lock(&p("/d/LOCK"))
            .unwrap()
            .is_some());
        drop(held);
        assert!(disk.try_lock(&p("/d/LOCK")).unwrap().is_some());
    }

    #[test]
    fn torn_write_keeps_sector_pieces_only() {
        for seed in 0..50 {
            let disk = SimDisk::new(seed);
            disk.create_dir_all(&p("/d")).unwrap();
            let f = disk.open(&p("/d/a"), OpenMode::CreateOrOpen).unwrap();
            f.write_at(0, &[0u8; 2048]).unwrap();
            f.sync_data().unwrap();
            disk.sync_dir(&p("/d")).unwrap();
            f.write_at(0, &[7u8; 2048]).unwrap();
            let img = disk
                .power_loss(CrashMode::TornSectors)
                .read_file(&p("/d/a"))
                .unwrap();
            assert_eq!(img.len(), 2048);
            assert!(img.iter().all(|b| *b == 0 || *b == 7));
        }
    }
}
