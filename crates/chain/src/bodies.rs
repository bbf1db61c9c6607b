//! Block bodies in append-only segment files beside the redb index.
//!
//! A block's canonical encoding (byte for byte the bytes a peer sent: the encoding has one form)
//! is appended to the newest segment file, `seg-NNNNNNNN.blk` in the store's `blocks`
//! directory, and the store's redb index records where it is ([`Loc`]: segment, offset,
//! length) and what each segment holds ([`SegmentInfo`]: its committed length, highest
//! block and block count). The bytes are written and flushed to disk before the index
//! transaction that names them commits, so the index never points at bytes that are not
//! there; bytes written past a segment's committed length by a block whose transaction did
//! not commit are cut off on open, and segment files the index does not name (one started
//! by such a block, or one whose deletion a crash interrupted) are removed.
//!
//! Bodies are never rewritten. A pruned node drops a whole segment, file and index entry,
//! once every block in it is below the heights it keeps; a segment closes when it holds
//! [`Segments::set_limits`]' bytes or blocks, which for a pruned node is a sixteenth of the
//! heights it keeps, so it keeps at most that many bodies more than it must. This is what
//! keeps the disk use of a node near the bodies it holds: redb, a copy-on-write B-tree with
//! a buddy allocator, would store a 400 kB body in a 512 KiB region and hold freed regions
//! until reused.
//!
//! Data enters through [`Segments::prepare`] (by [`crate::store::Store`] only, inside a
//! commit) and leaves through [`Segments::read`].

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::ChainError;

/// A segment an archive node closes at: 64 MiB or 4096 blocks, whichever comes first.
pub const ARCHIVE_SEGMENT_BYTES: u64 = 64 << 20;
/// See [`ARCHIVE_SEGMENT_BYTES`].
pub const ARCHIVE_SEGMENT_BLOCKS: u32 = 4096;

/// Where one body is: its segment, its offset in it and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Segment number.
    pub segment: u32,
    /// Byte offset in the segment.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
}

impl Loc {
    /// The index's 16-byte form.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.segment.to_le_bytes());
        out[4..12].copy_from_slice(&self.offset.to_le_bytes());
        out[12..].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// From [`Loc::to_bytes`].
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[4..12]);
        Loc { segment: u32_at(0), offset: u64::from_le_bytes(off), len: u32_at(12) }
    }
}

/// What the index records of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SegmentInfo {
    /// Committed length in bytes (the end of its last committed body).
    pub end: u64,
    /// The highest block height in it.
    pub max_height: u64,
    /// Bodies written to it.
    pub blocks: u32,
}

impl SegmentInfo {
    /// The index's 20-byte form.
    pub fn to_bytes(self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&self.end.to_le_bytes());
        out[8..16].copy_from_slice(&self.max_height.to_le_bytes());
        out[16..].copy_from_slice(&self.blocks.to_le_bytes());
        out
    }

    /// From [`SegmentInfo::to_bytes`].
    pub fn from_bytes(b: &[u8; 20]) -> Self {
        let mut end = [0u8; 8];
        end.copy_from_slice(&b[..8]);
        let mut max = [0u8; 8];
        max.copy_from_slice(&b[8..16]);
        SegmentInfo {
            end: u64::from_le_bytes(end),
            max_height: u64::from_le_bytes(max),
            blocks: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
        }
    }
}

/// A body written but not yet named by a committed index transaction.
pub struct Prepared {
    /// Where it is.
    pub loc: Loc,
    /// The segment's record once the transaction commits.
    pub info: SegmentInfo,
}

struct Writer {
    /// The newest segment and its committed record (`None` before the first body).
    current: Option<(u32, SegmentInfo)>,
    max_bytes: u64,
    max_blocks: u32,
}

/// The segment files of one store.
pub struct Segments {
    dir: PathBuf,
    writer: Mutex<Writer>,
}

fn segment_name(id: u32) -> String {
    format!("seg-{id:08}.blk")
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ChainError {
    ChainError::Corrupt(format!("{what} {}: {e}", path.display()))
}

impl Segments {
    /// Opens the segments in `dir` (created if missing) against the index's records:
    /// the newest is cut back to its committed length, files the index does not name are
    /// removed, and a named segment that is missing or shorter than recorded is an error
    /// (the data directory was damaged from outside).
    pub fn open(dir: &Path, records: &BTreeMap<u32, SegmentInfo>) -> Result<Self, ChainError> {
        fs::create_dir_all(dir).map_err(|e| io_error("cannot create the block directory", dir, e))?;
        let entries = fs::read_dir(dir).map_err(|e| io_error("cannot list the block directory", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list the block directory", dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix("seg-")?.strip_suffix(".blk")?.parse::<u32>().ok())
            else {
                continue;
            };
            if !records.contains_key(&id) {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| io_error("cannot remove the unindexed segment", &path, e))?;
            }
        }
        for (&id, info) in records {
            let path = dir.join(segment_name(id));
            let len = fs::metadata(&path).map_err(|e| io_error("block segment named by the index is missing:", &path, e))?.len();
            if len < info.end {
                return Err(ChainError::Corrupt(format!(
                    "block segment {} holds {len} bytes but the index says {}: the data directory was damaged",
                    path.display(),
                    info.end
                )));
            }
        }
        let current = records.iter().next_back().map(|(&id, &info)| (id, info));
        if let Some((id, info)) = current {
            let path = dir.join(segment_name(id));
            let f = OpenOptions::new().write(true).open(&path).map_err(|e| io_error("cannot open", &path, e))?;
            f.set_len(info.end).map_err(|e| io_error("cannot cut back", &path, e))?;
        }
        Ok(Segments {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer { current, max_bytes: ARCHIVE_SEGMENT_BYTES, max_blocks: ARCHIVE_SEGMENT_BLOCKS }),
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Segments close at `max_bytes` or `max_blocks` (each at least one body) from the next
    /// body on.
    pub fn set_limits(&self, max_bytes: u64, max_blocks: u32) {
        let mut w = self.writer();
        w.max_bytes = max_bytes.max(1);
        w.max_blocks = max_blocks.max(1);
    }

    /// The newest segment's number, which is never dropped (bodies are still added to it).
    pub fn current(&self) -> Option<u32> {
        self.writer().current.map(|(id, _)| id)
    }

    /// Writes `bytes` (the body of a block at `height`) after the newest segment's
    /// committed end, or at the start of a new segment when the newest is full, and flushes
    /// it to disk. The caller records the result in its index transaction and, once that
    /// commits, calls [`Segments::committed`]; until then the bytes do not count and the next
    /// body overwrites them.
    pub fn prepare(&self, bytes: &[u8], height: u64) -> Result<Prepared, ChainError> {
        let len = u32::try_from(bytes.len()).map_err(|_| ChainError::Corrupt("a block body of over 4 GiB".into()))?;
        let w = self.writer();
        let (id, info) = match w.current {
            Some((id, info)) if info.end > 0 && (info.end + u64::from(len) > w.max_bytes || info.blocks >= w.max_blocks) => {
                (id + 1, SegmentInfo::default())
            }
            Some(c) => c,
            None => (0, SegmentInfo::default()),
        };
        drop(w);
        let path = self.dir.join(segment_name(id));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, e))?;
        f.seek(SeekFrom::Start(info.end)).map_err(|e| io_error("cannot seek in", &path, e))?;
        f.write_all(bytes).map_err(|e| io_error("cannot write to", &path, e))?;
        f.sync_data().map_err(|e| io_error("cannot flush", &path, e))?;
        let loc = Loc { segment: id, offset: info.end, len };
        let info = SegmentInfo { end: info.end + u64::from(len), max_height: info.max_height.max(height), blocks: info.blocks + 1 };
        Ok(Prepared { loc, info })
    }

    /// Records that the index transaction naming `p` committed.
    pub fn committed(&self, p: &Prepared) {
        let mut w = self.writer();
        if w.current.is_none_or(|(id, _)| p.loc.segment >= id) {
            w.current = Some((p.loc.segment, p.info));
        }
    }

    /// The body at `loc`.
    pub fn read(&self, loc: Loc) -> Result<Vec<u8>, ChainError> {
        let path = self.dir.join(segment_name(loc.segment));
        let mut f = File::open(&path).map_err(|e| io_error("cannot open", &path, e))?;
        f.seek(SeekFrom::Start(loc.offset)).map_err(|e| io_error("cannot seek in", &path, e))?;
        let mut out = vec![0u8; loc.len as usize];
        f.read_exact(&mut out).map_err(|e| io_error("cannot read a block body from", &path, e))?;
        Ok(out)
    }

    /// Deletes the files of segments the index no longer names (after the transaction that
    /// dropped them committed; a crash before this leaves files that [`Segments::open`]
    /// removes).
    pub fn remove(&self, ids: &[u32]) {
        for id in ids {
            let path = self.dir.join(segment_name(*id));
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a pruned block segment");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_forms_round_trip() {
        let loc = Loc { segment: 7, offset: 1 << 40, len: 123_456 };
        assert_eq!(Loc::from_bytes(&loc.to_bytes()), loc);
        let info = SegmentInfo { end: 99, max_height: 1 << 33, blocks: 5 };
        assert_eq!(SegmentInfo::from_bytes(&info.to_bytes()), info);
    }

    #[test]
    fn uncommitted_bytes_are_overwritten_and_cut_off_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segs = Segments::open(dir.path(), &BTreeMap::new()).expect("open");
        let a = segs.prepare(b"first", 1).expect("write");
        segs.committed(&a);
        // Written but never committed: the next body takes its place.
        let lost = segs.prepare(b"lost body", 2).expect("write");
        assert_eq!(lost.loc.offset, 5);
        let b = segs.prepare(b"second", 2).expect("write");
        assert_eq!(b.loc.offset, 5);
        segs.committed(&b);
        assert_eq!(segs.read(a.loc).expect("read"), b"first");
        assert_eq!(segs.read(b.loc).expect("read"), b"second");
        // A crash after writing a third body, before its commit.
        let _ = segs.prepare(b"third, uncommitted", 3).expect("write");
        drop(segs);
        let records = BTreeMap::from([(0, b.info)]);
        let segs = Segments::open(dir.path(), &records).expect("reopen");
        assert_eq!(fs::metadata(dir.path().join(segment_name(0))).expect("meta").len(), 11);
        assert_eq!(segs.read(b.loc).expect("read"), b"second");
    }

    #[test]
    fn segments_roll_over_and_unindexed_files_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segs = Segments::open(dir.path(), &BTreeMap::new()).expect("open");
        segs.set_limits(1 << 20, 2);
        let mut records = BTreeMap::new();
        for h in 0..5u64 {
            let p = segs.prepare(&[h as u8; 10], h).expect("write");
            assert_eq!(p.loc.segment, (h / 2) as u32);
            records.insert(p.loc.segment, p.info);
            segs.committed(&p);
        }
        assert_eq!(records[&1], SegmentInfo { end: 20, max_height: 3, blocks: 2 });
        // A segment started by a block that never committed, and a stray one.
        fs::write(dir.path().join(segment_name(3)), b"x").expect("write");
        fs::write(dir.path().join("notes.txt"), b"kept").expect("write");
        records.remove(&2);
        let segs = Segments::open(dir.path(), &records).expect("reopen");
        assert!(!dir.path().join(segment_name(2)).exists());
        assert!(!dir.path().join(segment_name(3)).exists());
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(segs.current(), Some(1));
        // A segment shorter than the index says is damage, reported as such.
        fs::write(dir.path().join(segment_name(1)), b"short").expect("write");
        let err = Segments::open(dir.path(), &records).err().expect("refused");
        assert!(err.to_string().contains("damaged"), "{err}");
    }
}
