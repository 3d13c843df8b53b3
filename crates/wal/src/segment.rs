//! Segment files: `wal-<16-digit sequence>.log` in the WAL directory, written
//! in sequence order, each a [`HEADER`] (magic `SHOALWAL`, format version u32
//! LE, 4 reserved zero bytes) then a run of framed records. The version
//! covers the records and the encodings of what they carry (Raft entries
//! and votes): a build that reads another version refuses to open rather
//! than misread an acknowledged write.
//!
//! The writer zero-fills a segment ahead of the log, so a segment may end in
//! zeros: an all-zero frame header is the end of its records.
//!
//! Reading back: a segment that ends inside a frame, or whose last frame is
//! bad and followed only by zeros, was being written when the process
//! stopped (a torn write); that tail is cut off, and only the newest segment
//! may have one. A whole frame that fails its checksum with data after it is
//! corruption: the WAL refuses to open rather than guess.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::record::{Record, FRAME_HEADER_BYTES};
use crate::WalError;

/// The format of the records this build writes and reads.
/// 2: a write's tag carries `retry` (the entries' payload changed shape).
/// 3: an entry is a write or a split (`shoal_raft::Cmd`), and snapshots
///    carry the shard's slots.
pub const FORMAT_VERSION: u32 = 3;
const MAGIC: &[u8; 8] = b"SHOALWAL";
pub const HEADER_BYTES: usize = 16;

/// The first bytes of every segment.
pub fn header() -> [u8; HEADER_BYTES] {
    let mut header = [0; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

pub fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("wal-{sequence:016}.log"))
}

/// Sequence numbers of the segments in `dir`, ascending.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut sequences = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name.strip_prefix("wal-").and_then(|r| r.strip_suffix(".log")) {
            if let Ok(seq) = seq.parse() {
                sequences.push(seq);
            }
        }
    }
    sequences.sort_unstable();
    Ok(sequences)
}

/// The records of one segment, and the length of its valid prefix.
pub struct SegmentContents {
    pub records: Vec<Record>,
    pub valid_len: u64,
    pub torn: bool,
}

pub fn read(path: &Path) -> Result<SegmentContents, WalError> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut records = Vec::new();
    let zeros_from = |at: usize| data.get(at..).is_none_or(|rest| rest.iter().all(|&b| b == 0));
    let bad = |offset: usize, reason: String| WalError::Corrupt {
        segment: path.display().to_string(),
        offset: offset as u64,
        reason,
    };
    // A header cut short (a crash while the segment's first bytes were being
    // written, nothing acknowledged in it yet) is a torn tail at 0.
    let ours = header();
    let head = &data[..data.len().min(HEADER_BYTES)];
    if head != ours {
        let kept = head.iter().zip(&ours).take_while(|(a, b)| a == b).count();
        if zeros_from(kept) {
            return Ok(SegmentContents { records, valid_len: 0, torn: !data.is_empty() });
        }
    }
    if head.len() < HEADER_BYTES || head[..8] != MAGIC[..] {
        return Err(bad(0, "not a shoal WAL segment (no SHOALWAL header)".into()));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(bad(8, format!("WAL format version {version}; this build reads version {FORMAT_VERSION}")));
    }
    let mut offset = HEADER_BYTES;
    while offset < data.len() {
        // Segments are zero-filled ahead of the log: an all-zero header is
        // where the records end. Anything but zeros after it was never
        // fsynced (a later write reached the disk out of order): torn.
        if data[offset..].iter().take(FRAME_HEADER_BYTES).all(|&b| b == 0) {
            let torn = !zeros_from(offset);
            return Ok(SegmentContents { records, valid_len: offset as u64, torn });
        }
        match Record::decode(&data[offset..]) {
            Ok(Some((record, used))) => {
                records.push(record);
                offset += used;
            }
            Ok(None) => return Ok(SegmentContents { records, valid_len: offset as u64, torn: true }),
            // A bad record with zero padding after its frame is the last
            // write, cut short by a crash inside zero-filled space: torn,
            // like a record cut short at the end of the file. (A bad record
            // that ends the file is not: a clean close removes the padding,
            // so that is corruption of something acknowledged.)
            Err(_)
                if offset + frame_len(&data[offset..]) < data.len()
                    && zeros_from(offset + frame_len(&data[offset..])) =>
            {
                return Ok(SegmentContents { records, valid_len: offset as u64, torn: true })
            }
            Err(reason) => return Err(bad(offset, reason)),
        }
    }
    Ok(SegmentContents { records, valid_len: offset as u64, torn: false })
}

/// The length a frame's header declares (header included).
fn frame_len(data: &[u8]) -> usize {
    let len = data.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
    FRAME_HEADER_BYTES.saturating_add(len)
}

/// Cuts a torn tail off, durably.
pub fn truncate_to(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Makes a directory entry change (create, delete) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
