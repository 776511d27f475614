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
}

impl JournalFile {
    /// Whether the file holds no frame (only its header).
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN as u64
    }

    /// Creates a new file with its header and zero-filled room, durably (file and directory
    /// entry synced).
    /// If that fails (a full disk), the half-made file is removed: it holds nothing, and
    /// left behind it would block the next attempt at the same generation.
    pub fn create(dir: &Path, generation: u64, format_version: u32) -> io::Result<JournalFile> {
        let path = path_of(dir, generation);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        let made = (|| {
            file.write_all(&encode_header(format_version, generation))?;
            let mut jf = JournalFile {
                file,
                len: HEADER_LEN as u64,
                allocated: HEADER_LEN as u64,
            };
            jf.grow_to(PREALLOC_START_BYTES)?;
            sync_dir(dir)?;
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
        self.file.sync_all()?;
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
            self.grow_to(end.max(self.allocated + step))?;
        }
        self.file.write_all_at(bytes, self.len)?;
        self.len = end;
        Ok(())
    }

    /// fdatasync: after this returns Ok, every appended byte survives power loss.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
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

/// Makes creations and deletions in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = path_of(Path::new("/x"), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_name(name), Some(42));
        assert_eq!(parse_name("gen-x.journal"), None);
        assert_eq!(parse_name("other.txt"), None);
    }
}
