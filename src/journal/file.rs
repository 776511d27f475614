//! The only code that opens, lists, truncates or deletes journal files.

use super::record::{encode_header, HEADER_LEN};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `gen-GGGGGGGGGGGGGGGG.journal`: names sort by generation.
pub fn path_of(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("gen-{generation:016}.journal"))
}

fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("gen-")?
        .strip_suffix(".journal")?
        .parse()
        .ok()
}

/// Creates the journal dir if needed, readable by the server's user only (0700); the files
/// in it are created 0600.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir)?;
    if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
        tracing::warn!(path = %dir.display(), error = %e, "could not restrict permissions");
    }
    Ok(())
}

/// Every journal file in `dir` as (generation, path), oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(g) = entry.file_name().to_str().and_then(parse_name) {
            out.push((g, entry.path()));
        }
    }
    out.sort_by_key(|(g, _)| *g);
    Ok(out)
}

/// First zero-filled size of a journal file. The file is written with zeros ahead of the
/// data so that an fdatasync only flushes data blocks: appending past the end would change
/// the size and block map, and on ext4 that made every fdatasync write the inode too (a
/// second synchronous I/O per group commit, measured). 1 MiB keeps a trickle of metrics
/// from costing much disk per generation.
pub const PREALLOC_START_BYTES: u64 = 1 << 20;
/// Largest single growth step; the file doubles up to this step, then grows by it.
pub const PREALLOC_MAX_STEP_BYTES: u64 = 64 << 20;

/// An open journal file that takes appends.
pub struct JournalFile {
    file: File,
    /// Bytes of header and whole frames; the next frame is written here.
    len: u64,
    /// Bytes zero-filled and synced so far (the file's size).
    allocated: u64,
    /// Where appends go when the file system takes O_DIRECT writes (`None`: through `file`
    /// and the page cache).
    direct: Option<Direct>,
    /// Where a power-loss test records this file's writes and syncs (`sim.rs`).
    #[cfg(test)]
    witness: Option<(std::sync::Arc<super::sim::Recorder>, u64)>,
}

/// How a journal file takes appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appends {
    /// O_DIRECT where the file system allows it, else `Buffered`. For `Fsync::Always`: the
    /// flusher thread's CPU fell in 12 of 14 interleaved rounds (by 11–14 % on average), the
    /// whole server's in 15 of 20 (by 4 % at the median; docs/benchmarks.md, "Seventh
    /// pass").
    Direct,
    /// Through the page cache. For `Fsync::Interval`, where a 200 does not wait for the
    /// disk: an O_DIRECT write waits for the device, which took samples/s from 1.47 M to
    /// 1.07 M at 1.12 instead of 0.88 CPU-s per million (3 interleaved rounds).
    Buffered,
}

/// The unit of an O_DIRECT write: offsets, lengths and buffer addresses are multiples of it.
/// 4 KiB is a multiple of every logical block size Linux uses.
const DIRECT_ALIGN: usize = 4096;

/// Appends without the page cache. A buffered append copied each frame into the page cache
/// (3.7 % of the server's CPU in a profile) and fdatasync then wrote it back through ext4's
/// writeback path (fdatasync: 12 %; after the change 4.7 %); an O_DIRECT write hands the frame to the device at once, and the fdatasync
/// after it only flushes the device's cache. Such writes must cover whole aligned blocks, so
/// each one rewrites the last partial block with the bytes it already holds (kept in
/// `tail`), then the frame, then zeros to the block's end: zeros past the last frame are
/// what the format's reader takes as the clean end anyway.
struct Direct {
    file: File,
    /// The bytes of the file from the last aligned offset at or before `len` up to `len`.
    tail: Vec<u8>,
    /// Where a write is assembled, from its first 4 KiB-aligned byte on.
    scratch: Vec<u8>,
}

impl Direct {
    /// Opens `path` a second time with O_DIRECT; `None` where the file system refuses it
    /// (tmpfs, some network file systems), which leaves appends buffered.
    fn open(path: &Path, tail: &[u8]) -> Option<Direct> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        Some(Direct {
            file,
            tail: tail.to_vec(),
            scratch: Vec::new(),
        })
    }

    /// Writes `bytes` at `len` (the end of the last frame); on success the tail is the new
    /// last partial block.
    fn append(&mut self, len: u64, bytes: &[u8]) -> io::Result<()> {
        let start = len - self.tail.len() as u64;
        debug_assert_eq!(start % DIRECT_ALIGN as u64, 0);
        let used = self.tail.len() + bytes.len();
        let padded = used.div_ceil(DIRECT_ALIGN) * DIRECT_ALIGN;
        if self.scratch.len() < padded + DIRECT_ALIGN {
            // Grows to the largest frame seen (frames stay under ~9 MiB), and goes with the
            // file at the next rotation. The aligned start is found again below: no unsafe
            // aligned allocation.
            self.scratch = vec![0u8; padded + DIRECT_ALIGN];
        }
        // Bytes from the buffer's start to its first aligned address (`align_offset` may,
        // by its contract, decline to say).
        let at = (self.scratch.as_ptr() as usize).wrapping_neg() % DIRECT_ALIGN;
        let buf = &mut self.scratch[at..at + padded];
        buf[..self.tail.len()].copy_from_slice(&self.tail);
        buf[self.tail.len()..used].copy_from_slice(bytes);
        buf[used..].fill(0);
        self.file.write_all_at(buf, start)?;
        let keep = used % DIRECT_ALIGN;
        self.tail.clear();
        self.tail.extend_from_slice(&buf[used - keep..used]);
        Ok(())
    }
}

impl JournalFile {
    /// Tells a watching power-loss test what this file just did.
    #[cfg(test)]
    fn note(&self, event: impl FnOnce(u64) -> super::sim::Event) {
        if let Some((recorder, generation)) = &self.witness {
            recorder.record(event(*generation));
        }
    }

    /// Bytes of header and whole frames written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no frame (only its header).
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN as u64
    }

    /// Whether appends bypass the page cache (`Appends::Direct` on a file system that takes
    /// O_DIRECT).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Creates a new file with its header and zero-filled room, durably (file and directory
    /// entry synced).
    /// If that fails (a full disk), the half-made file is removed: it holds nothing, and
    /// left behind it would block the next attempt at the same generation.
    pub fn create(
        dir: &Path,
        generation: u64,
        format_version: u32,
        appends: Appends,
    ) -> io::Result<JournalFile> {
        let path = path_of(dir, generation);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let header = encode_header(format_version, generation);
        let made = (|| {
            file.write_all(&header)?;
            let mut jf = JournalFile {
                file,
                len: HEADER_LEN as u64,
                allocated: HEADER_LEN as u64,
                direct: None,
                #[cfg(test)]
                witness: super::sim::recorder_for(dir).map(|r| (r, generation)),
            };
            #[cfg(test)]
            {
                use super::sim::Event;
                jf.note(|generation| Event::Create { generation });
                jf.note(|generation| Event::Write {
                    generation,
                    offset: 0,
                    bytes: header.to_vec(),
                });
            }
            jf.grow_to(PREALLOC_START_BYTES)?;
            sync_dir(dir)?;
            if appends == Appends::Direct {
                jf.direct = Direct::open(&path, &header);
            }
            Ok(jf)
        })();
        if made.is_err() {
            let _ = fs::remove_file(&path);
        }
        made
    }

    /// Zero-fills the file up to `size` bytes and syncs data and metadata.
    fn grow_to(&mut self, size: u64) -> io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];
        let mut at = self.allocated;
        while at < size {
            let n = ZEROS.len().min((size - at) as usize);
            self.file.write_all_at(&ZEROS[..n], at)?;
            at += n as u64;
        }
        #[cfg(test)]
        self.note(|generation| super::sim::Event::Fill {
            generation,
            offset: self.allocated,
            len: size.saturating_sub(self.allocated),
        });
        self.file.sync_all()?;
        #[cfg(test)]
        self.note(|generation| super::sim::Event::Sync { generation });
        self.allocated = size;
        Ok(())
    }

    /// Writes `bytes` after the last frame. A failed write leaves `len` unchanged, so the
    /// next frame overwrites whatever part of it reached the disk.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.len + bytes.len() as u64;
        if end > self.allocated {
            let step = self
                .allocated
                .clamp(PREALLOC_START_BYTES, PREALLOC_MAX_STEP_BYTES);
            // Whole 4 KiB blocks, so an O_DIRECT write's zero padding stays inside the file.
            let size = end.max(self.allocated + step);
            self.grow_to(size.next_multiple_of(DIRECT_ALIGN as u64))?;
        }
        match &mut self.direct {
            Some(direct) => match direct.append(self.len, bytes) {
                // A file system that opens with O_DIRECT but refuses the write itself: every
                // earlier frame is on disk, so buffered appends carry on from here.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::warn!(error = %e, "O_DIRECT write refused; journal appends go through the page cache");
                    self.direct = None;
                    self.file.write_all_at(bytes, self.len)?;
                }
                r => r?,
            },
            None => self.file.write_all_at(bytes, self.len)?,
        }
        // The frame's bytes at its offset: an O_DIRECT write also rewrites the block's
        // earlier bytes and zeros after it, both unchanged, so the file's content is this.
        #[cfg(test)]
        self.note(|generation| super::sim::Event::Write {
            generation,
            offset: self.len,
            bytes: bytes.to_vec(),
        });
        self.len = end;
        Ok(())
    }

    /// fdatasync: after this returns Ok, every appended byte survives power loss.
    /// fdatasync acts on the file, not the descriptor, so `file` covers O_DIRECT writes too.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        #[cfg(test)]
        self.note(|generation| super::sim::Event::Sync { generation });
        Ok(())
    }
}

pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
}

/// Up to `len` bytes of the file at `offset` (fewer at its end). Read into an uninitialized
/// buffer: zero-filling megabytes before overwriting them showed in the forwarder's profile.
pub fn read_at(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// The file's size in bytes (zero-filled room included).
pub fn size(path: &Path) -> io::Result<u64> {
    Ok(fs::metadata(path)?.len())
}

/// Cuts a damaged file back to its last whole record and syncs it.
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len)?;
    f.sync_all()
}

pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes the file of `generation` with `bytes`, as a device hands it back after a
/// simulated power loss (`power_loss.rs`); its zero tail is left sparse.
#[cfg(test)]
pub fn lay_out(dir: &Path, generation: u64, bytes: &[u8]) -> io::Result<()> {
    let path = path_of(dir, generation);
    let data = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    fs::write(&path, &bytes[..data])?;
    OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(bytes.len() as u64)
}

/// Makes creations and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    #[cfg(test)]
    if let Some(recorder) = super::sim::recorder_for(dir) {
        recorder.record(super::sim::Event::DirSync);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends `frames` to a new file and returns the file's bytes.
    fn write_frames(dir: &Path, appends: Appends, frames: &[Vec<u8>]) -> (bool, Vec<u8>) {
        let mut f = JournalFile::create(dir, 7, 3, appends).unwrap();
        let direct = f.is_direct();
        for frame in frames {
            f.append(frame).unwrap();
        }
        f.sync().unwrap();
        // A file system that opens with O_DIRECT takes well-aligned writes: falling back
        // here would mean a misaligned one.
        assert_eq!(f.is_direct(), direct, "an O_DIRECT write was refused");
        (direct, fs::read(path_of(dir, 7)).unwrap())
    }

    #[test]
    fn direct_and_buffered_appends_leave_the_bytes_the_format_expects() {
        // Frames that end inside a block, exactly on a block's end, span several blocks,
        // and run past the first zero-filled MiB (a growth step between two appends).
        let sizes = [1, 4071, 4096, 5000, 9000, 3, 700_000, 400_000, 12_289, 2];
        let frames: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j % 251) as u8 | 1).collect())
            .collect();
        let mut want = encode_header(3, 7).to_vec();
        for frame in &frames {
            want.extend_from_slice(frame);
        }
        for appends in [Appends::Direct, Appends::Buffered] {
            let dir = tempfile::tempdir().unwrap();
            let (direct, got) = write_frames(dir.path(), appends, &frames);
            if appends == Appends::Buffered {
                assert!(!direct);
            }
            assert!(
                got.len() >= want.len() + 1024,
                "zero-filled room after the frames"
            );
            assert!(
                got[..want.len()] == want[..],
                "{appends:?} (O_DIRECT used: {direct}): the frames, in order"
            );
            assert!(
                got[want.len()..].iter().all(|&b| b == 0),
                "{appends:?} (O_DIRECT used: {direct}): zeros after the last frame"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        let p = path_of(Path::new("/x"), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_name(name), Some(42));
        assert_eq!(parse_name("gen-x.journal"), None);
        assert_eq!(parse_name("other.txt"), None);
    }
}
