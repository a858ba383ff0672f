//! An append-only, checksummed log of opaque records: the durable home of a
//! consensus engine's [`Effects::persist`]-style records (votes, proposals,
//! Raft entries and hard state), which must be on disk before the messages
//! that depend on them are sent.
//!
//! # Format
//! The file is a sequence of *batch frames*, one per [`RecordLog::sync`]
//! (holding every record appended since the previous sync):
//!
//! | field       | bytes | meaning                                       |
//! |-------------|-------|-----------------------------------------------|
//! | magic       | 4     | `GCWL`                                        |
//! | length      | 4     | payload length, little endian, ≤ [`MAX_BATCH_LEN`] |
//! | checksum    | 4     | CRC-32C of the length and the payload         |
//! | payload     | length| record count (u32), then each record as u32 length + bytes |
//!
//! A frame is the unit of atomicity: after a crash it is either whole or
//! gone, and only the last frame can be unsynced.
//!
//! # Recovery
//! [`RecordLog::open`] reads every frame. A frame that fails its checks is a
//! *torn tail* if no valid frame starts anywhere after it — the log is then
//! truncated there (those records were never acknowledged: records are
//! acknowledged only by a successful [`RecordLog::sync`], which writes them
//! as one frame). If a valid frame
//! follows a bad one, acknowledged data was damaged, and `open` reports
//! [`StorageError::Corruption`] instead of skipping it.
//!
//! # Failure
//! Any I/O error while appending or syncing poisons the handle: later
//! writes fail with [`StorageError::Poisoned`] until the log is reopened.
//!
//! [`Effects::persist`]: https://docs.rs/govchain-consensus/latest/govchain_consensus/struct.Effects.html

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::StorageError;
use crate::vfs::{OpenMode, OsVfs, Vfs, VfsFile};

const MAGIC: [u8; 4] = *b"GCWL";
const FRAME_HEADER_LEN: u64 = 12;
/// Largest payload of one batch frame.
pub const MAX_BATCH_LEN: usize = 64 * 1024 * 1024;

/// An append-only record log. See the [module docs](self).
#[derive(Debug)]
pub struct RecordLog {
    vfs: Arc<dyn Vfs>,
    path: PathBuf,
    file: Arc<dyn VfsFile>,
    end: u64,
    /// Records appended since the last sync: the next frame.
    pending: Vec<Vec<u8>>,
    /// Encoded length of `pending` (each record's length word and bytes).
    pending_len: usize,
    poisoned: Option<String>,
}

fn crc(len: &[u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), payload)
}

/// Decodes one frame's payload into records, or `None` if malformed.
fn decode_payload(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let count = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut at = 4usize;
    // Each record takes at least 4 bytes: bound the allocation by the input.
    let mut records = Vec::with_capacity(count.min(payload.len() / 4));
    for _ in 0..count {
        let len = u32::from_le_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        let end = at.checked_add(len)?;
        records.push(payload.get(at..end)?.to_vec());
        at = end;
    }
    (at == payload.len()).then_some(records)
}

/// Tries to read a whole valid frame at `offset` of `bytes`; returns its
/// records and length.
fn frame_at(bytes: &[u8], offset: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let header = bytes.get(offset..offset + FRAME_HEADER_LEN as usize)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len_bytes: [u8; 4] = header[4..8].try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_BATCH_LEN {
        return None;
    }
    let sum = u32::from_le_bytes(header[8..12].try_into().ok()?);
    let start = offset + FRAME_HEADER_LEN as usize;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if crc(&len_bytes, payload) != sum {
        return None;
    }
    let records = decode_payload(payload)?;
    Some((records, FRAME_HEADER_LEN as usize + len))
}

/// One frame holding `records`, whose encoded length (length words and
/// bytes) is `records_len`.
fn encode_frame(records: &[Vec<u8>], records_len: usize) -> Vec<u8> {
    let payload_len = 4 + records_len;
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN as usize + payload_len);
    frame.extend_from_slice(&MAGIC);
    let len_bytes = (payload_len as u32).to_le_bytes();
    frame.extend_from_slice(&len_bytes);
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        frame.extend_from_slice(&(r.len() as u32).to_le_bytes());
        frame.extend_from_slice(r);
    }
    let sum = crc(&len_bytes, &frame[FRAME_HEADER_LEN as usize..]);
    frame[8..12].copy_from_slice(&sum.to_le_bytes());
    frame
}

impl RecordLog {
    /// Opens (creating if missing) the log at `path` on the OS file system
    /// and returns it with every record it holds, in order.
    pub fn open_path(path: &Path) -> Result<(Self, Vec<Vec<u8>>), StorageError> {
        Self::open(Arc::new(OsVfs), path)
    }

    /// Opens (creating if missing) the log at `path` on `vfs`, runs
    /// recovery, and returns it with every record it holds, in order.
    ///
    /// Errors: [`StorageError::Io`], and [`StorageError::Corruption`] when a
    /// damaged frame is followed by a valid one.
    pub fn open(vfs: Arc<dyn Vfs>, path: &Path) -> Result<(Self, Vec<Vec<u8>>), StorageError> {
        let existed = vfs
            .exists(path)
            .map_err(|e| StorageError::io("exists", path, e))?;
        let file = vfs
            .open(path, OpenMode::CreateOrOpen)
            .map_err(|e| StorageError::io("open", path, e))?;
        if !existed {
            if let Some(dir) = path.parent() {
                vfs.sync_dir(dir)
                    .map_err(|e| StorageError::io("sync_dir", dir, e))?;
            }
        }
        let len = file.len().map_err(|e| StorageError::io("len", path, e))?;
        let len = usize::try_from(len).map_err(|_| {
            StorageError::corrupt(path.display().to_string(), "log larger than memory")
        })?;
        let mut bytes = vec![0u8; len];
        file.read_at(0, &mut bytes)
            .map_err(|e| StorageError::io("read", path, e))?;
        let mut records = Vec::new();
        let mut offset = 0usize;
        while offset < bytes.len() {
            match frame_at(&bytes, offset) {
                Some((batch, frame_len)) => {
                    records.extend(batch);
                    offset += frame_len;
                }
                None => {
                    // A torn tail has no valid frame after it.
                    let later = (offset + 1..bytes.len())
                        .filter(|&o| bytes[o..].starts_with(&MAGIC))
                        .find(|&o| frame_at(&bytes, o).is_some());
                    if let Some(next) = later {
                        return Err(StorageError::corrupt(
                            format!("{}@{offset}", path.display()),
                            format!("damaged record batch followed by a valid one at {next}"),
                        ));
                    }
                    break;
                }
            }
        }
        let end = offset as u64;
        let log = RecordLog {
            vfs,
            path: path.to_owned(),
            file,
            end,
            pending: Vec::new(),
            pending_len: 0,
            poisoned: None,
        };
        if end != len as u64 {
            log.file
                .set_len(end)
                .and_then(|()| log.file.sync_data())
                .map_err(|e| StorageError::io("truncate torn tail", path, e))?;
        }
        Ok((log, records))
    }

    /// Adds `records` to the batch that the next [`sync`](Self::sync)
    /// writes. Nothing reaches the file before that sync, so the log holds
    /// at most one unsynced frame, always the last: after a crash only the
    /// last frame can be torn, and a valid frame after a damaged one always
    /// means damaged *acknowledged* data. (A disk may persist unsynced
    /// writes in any order; with several unsynced frames a later one could
    /// survive an earlier one.)
    ///
    /// Errors: [`StorageError::Poisoned`], [`StorageError::InvalidBatch`]
    /// (the pending batch would exceed [`MAX_BATCH_LEN`]).
    pub fn append(&mut self, records: &[Vec<u8>]) -> Result<(), StorageError> {
        self.check_usable()?;
        let added = records.iter().map(|r| 4 + r.len()).sum::<usize>();
        if 4 + self.pending_len + added > MAX_BATCH_LEN {
            return Err(StorageError::InvalidBatch {
                reason: "record batch larger than MAX_BATCH_LEN",
            });
        }
        self.pending_len += added;
        self.pending.extend(records.iter().cloned());
        Ok(())
    }

    /// Writes every record appended since the last sync as one frame and
    /// makes it durable. A no-op when nothing was appended.
    ///
    /// Errors: [`StorageError::Poisoned`], [`StorageError::Io`] (which
    /// poisons the handle: whether the frame survives is unknown).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check_usable()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let frame = encode_frame(&self.pending, self.pending_len);
        if let Err(e) = self.file.write_at(self.end, &frame) {
            return Err(self.poison("write", e));
        }
        if let Err(e) = self.file.sync_data() {
            return Err(self.poison("sync", e));
        }
        self.end += frame.len() as u64;
        self.pending.clear();
        self.pending_len = 0;
        Ok(())
    }

    /// Atomically replaces the whole log with `records` (log compaction):
    /// they are written to a temporary file beside the log, which is
    /// synced, renamed over the log, and made durable by a sync of the
    /// directory. A crash at any point leaves either the old log or the new
    /// one, never a mix. Records appended but not yet synced are refused
    /// rather than silently dropped: sync first.
    ///
    /// Errors: [`StorageError::Poisoned`], [`StorageError::InvalidBatch`]
    /// (unsynced records are pending, or one record is larger than
    /// [`MAX_BATCH_LEN`]), [`StorageError::Io`] (which poisons the handle).
    pub fn replace(&mut self, records: &[Vec<u8>]) -> Result<(), StorageError> {
        self.check_usable()?;
        if !self.pending.is_empty() {
            return Err(StorageError::InvalidBatch {
                reason: "records appended since the last sync would be lost by a replace",
            });
        }
        // Frames of at most MAX_BATCH_LEN each.
        let mut frames: Vec<u8> = Vec::new();
        let mut start = 0usize;
        while start < records.len() {
            let mut len = 0usize;
            let mut end = start;
            while let Some(r) = records.get(end) {
                if 4 + len + 4 + r.len() > MAX_BATCH_LEN {
                    break;
                }
                len += 4 + r.len();
                end += 1;
            }
            if end == start {
                return Err(StorageError::InvalidBatch {
                    reason: "a record is larger than MAX_BATCH_LEN",
                });
            }
            frames.extend(encode_frame(&records[start..end], len));
            start = end;
        }
        let mut tmp_name = self.path.clone().into_os_string();
        tmp_name.push(".compact");
        let tmp = PathBuf::from(tmp_name);
        let written = self
            .vfs
            .open(&tmp, OpenMode::Truncate)
            .and_then(|f| {
                f.write_at(0, &frames)?;
                f.sync_data()
            })
            .map_err(|e| ("write compacted log", e))
            .and_then(|()| {
                self.vfs
                    .rename(&tmp, &self.path)
                    .map_err(|e| ("rename compacted log", e))
            })
            .and_then(|()| match self.path.parent() {
                Some(dir) => self.vfs.sync_dir(dir).map_err(|e| ("sync_dir", e)),
                None => Ok(()),
            })
            .and_then(|()| {
                self.vfs
                    .open(&self.path, OpenMode::Existing)
                    .map_err(|e| ("reopen compacted log", e))
            });
        match written {
            Ok(file) => {
                self.file = file;
                self.end = frames.len() as u64;
                Ok(())
            }
            Err((op, e)) => Err(self.poison(op, e)),
        }
    }

    /// [`append`](Self::append) then [`sync`](Self::sync).
    pub fn append_durable(&mut self, records: &[Vec<u8>]) -> Result<(), StorageError> {
        self.append(records)?;
        self.sync()
    }

    /// Whether an I/O error poisoned the handle.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Bytes in the log.
    pub fn len_bytes(&self) -> u64 {
        self.end
    }

    /// Whether records were appended since the last sync.
    pub fn is_dirty(&self) -> bool {
        !self.pending.is_empty()
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        match &self.poisoned {
            Some(cause) => Err(StorageError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&mut self, op: &'static str, e: std::io::Error) -> StorageError {
        let err = StorageError::io(op, self.path.clone(), e);
        self.poisoned = Some(err.to_string());
        err
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::{CrashMode, SimDisk};

    fn batch(i: u32) -> Vec<Vec<u8>> {
        (0..(i % 4) + 1)
            .map(|j| vec![(i + j) as u8; (i * 7 + j) as usize % 300])
            .collect()
    }

    #[test]
    fn records_survive_reopen_in_order() {
        let disk = SimDisk::new(1);
        let path = Path::new("/d/wal");
        disk.create_dir_all(Path::new("/d")).unwrap();
        let (mut log, got) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        assert!(got.is_empty());
        let mut expected = Vec::new();
        for i in 0..50 {
            log.append_durable(&batch(i)).unwrap();
            expected.extend(batch(i));
        }
        drop(log);
        let (_, got) = RecordLog::open(Arc::new(disk), path).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_crash_keeps_every_acknowledged_batch_and_whole_batches_only() {
        for mode in CrashMode::ALL {
            for crash_at in 0..30u64 {
                let seed = crash_at * 31 + mode as u64;
                let disk = SimDisk::new(seed);
                disk.create_dir_all(Path::new("/d")).unwrap();
                let path = Path::new("/d/wal");
                let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
                disk.crash_at_sync(disk.counts().syncs + crash_at);
                let mut acked = Vec::new();
                let mut all = Vec::new();
                for i in 0..40 {
                    all.push(batch(i));
                    if log.append_durable(&batch(i)).is_err() {
                        break;
                    }
                    acked.push(batch(i));
                }
                let after = disk.power_loss(mode);
                let (_, got) = RecordLog::open(Arc::new(after), path)
                    .unwrap_or_else(|e| panic!("seed {seed} mode {mode:?}: {e}"));
                let acked: Vec<Vec<u8>> = acked.into_iter().flatten().collect();
                assert!(
                    got.len() >= acked.len(),
                    "seed {seed}: lost an acknowledged record"
                );
                assert_eq!(got[..acked.len()], acked[..], "seed {seed}");
                // Whatever survived beyond is a whole-batch prefix of what was written.
                let mut prefix = Vec::new();
                let mut ok = got.len() == acked.len();
                for b in &all {
                    prefix.extend(b.iter().cloned());
                    ok |= prefix == got;
                }
                assert!(ok, "seed {seed} mode {mode:?}: partial batch survived");
            }
        }
    }

    #[test]
    fn a_crash_during_replace_leaves_the_old_log_or_the_new_one() {
        for mode in CrashMode::ALL {
            for crash_at in 0..4u64 {
                let seed = crash_at * 17 + mode as u64;
                let disk = SimDisk::new(seed);
                disk.create_dir_all(Path::new("/d")).unwrap();
                let path = Path::new("/d/wal");
                let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
                let mut old = Vec::new();
                for i in 0..10 {
                    log.append_durable(&batch(i)).unwrap();
                    old.extend(batch(i));
                }
                let new: Vec<Vec<u8>> = old[old.len() - 3..].to_vec();
                disk.crash_at_sync(disk.counts().syncs + crash_at);
                let replaced = log.replace(&new).is_ok();
                // Appends after a successful replace land in the new file.
                let mut new_then = new.clone();
                if replaced && log.append_durable(&batch(99)).is_ok() {
                    new_then.extend(batch(99));
                }
                let after = disk.power_loss(mode);
                let (_, got) = RecordLog::open(Arc::new(after), path)
                    .unwrap_or_else(|e| panic!("seed {seed} mode {mode:?}: {e}"));
                assert!(
                    got == old || got == new || got == new_then,
                    "seed {seed} mode {mode:?}: {} records, neither old nor new",
                    got.len()
                );
                if replaced {
                    assert_ne!(
                        got, old,
                        "seed {seed} mode {mode:?}: replace was acknowledged"
                    );
                }
            }
        }
    }

    #[test]
    fn replace_refuses_unsynced_records_and_keeps_working() {
        let disk = SimDisk::new(3);
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/wal");
        let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        log.append_durable(&batch(1)).unwrap();
        log.append(&batch(2)).unwrap();
        assert!(matches!(
            log.replace(&batch(3)),
            Err(StorageError::InvalidBatch { .. })
        ));
        log.sync().unwrap();
        log.replace(&batch(3)).unwrap();
        assert_eq!(log.len_bytes(), disk_len(&disk, path));
        log.append_durable(&batch(4)).unwrap();
        drop(log);
        let (_, got) = RecordLog::open(Arc::new(disk), path).unwrap();
        let expected: Vec<Vec<u8>> = batch(3).into_iter().chain(batch(4)).collect();
        assert_eq!(got, expected);
    }

    fn disk_len(disk: &SimDisk, path: &Path) -> u64 {
        disk.open(path, OpenMode::Existing).unwrap().len().unwrap()
    }

    #[test]
    fn several_appends_per_sync_survive_reordered_unsynced_writes() {
        // The node appends many batches per sync; a disk that persists
        // unsynced writes in any order must never make recovery report
        // corruption or lose an acknowledged record.
        for mode in CrashMode::ALL {
            for crash_at in 0..20u64 {
                let seed = 1_000 + crash_at * 31 + mode as u64;
                let disk = SimDisk::new(seed);
                disk.create_dir_all(Path::new("/d")).unwrap();
                let path = Path::new("/d/wal");
                let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
                disk.crash_at_sync(disk.counts().syncs + crash_at);
                let mut acked = Vec::new();
                let mut pending = Vec::new();
                'outer: for i in 0..30 {
                    for j in 0..3 {
                        log.append(&batch(i * 3 + j)).unwrap();
                        pending.extend(batch(i * 3 + j));
                    }
                    if log.sync().is_err() {
                        break 'outer;
                    }
                    acked.append(&mut pending);
                }
                let (_, got) = RecordLog::open(Arc::new(disk.power_loss(mode)), path)
                    .unwrap_or_else(|e| panic!("seed {seed} mode {mode:?}: {e}"));
                assert!(
                    got.len() >= acked.len(),
                    "seed {seed}: lost an acknowledged record"
                );
                assert_eq!(got[..acked.len()], acked[..], "seed {seed}");
                assert!(
                    got.len() == acked.len() || got.len() == acked.len() + pending.len(),
                    "seed {seed} mode {mode:?}: part of a sync's records survived"
                );
            }
        }
    }

    #[test]
    fn damage_before_a_valid_batch_is_corruption() {
        let disk = SimDisk::new(7);
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/wal");
        let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        for i in 0..5 {
            log.append_durable(&batch(i)).unwrap();
        }
        drop(log);
        disk.flip_bit(path, 14, 3).unwrap();
        let err = RecordLog::open(Arc::new(disk), path).unwrap_err();
        assert!(err.is_corruption(), "{err}");
    }

    #[test]
    fn damage_in_the_last_batch_is_a_torn_tail() {
        let disk = SimDisk::new(8);
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/wal");
        let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        for i in 0..5 {
            log.append_durable(&batch(i)).unwrap();
        }
        let len = log.len_bytes();
        drop(log);
        disk.flip_bit(path, len - 1, 0).unwrap();
        let (log, got) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        let expected: Vec<Vec<u8>> = (0..4).flat_map(batch).collect();
        assert_eq!(got, expected);
        assert!(log.len_bytes() < len);
    }

    #[test]
    fn a_failed_sync_poisons_the_handle() {
        let disk = SimDisk::new(9);
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/wal");
        let (mut log, _) = RecordLog::open(Arc::new(disk.clone()), path).unwrap();
        log.append_durable(&batch(1)).unwrap();
        disk.crash_at_sync(disk.counts().syncs);
        assert!(log.append_durable(&batch(2)).is_err());
        assert!(log.is_poisoned());
        let err = log.append_durable(&batch(3)).unwrap_err();
        assert!(matches!(err, StorageError::Poisoned { .. }), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        let disk = SimDisk::new(10);
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/wal");
        let mut rng = 0x1234_5678_u64;
        for len in [0usize, 1, 11, 12, 13, 100, 4096] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (rng >> 33) as u8
                })
                .collect();
            disk.write_file(path, &bytes).unwrap();
            let _ = RecordLog::open(Arc::new(disk.clone()), path);
        }
    }
}
