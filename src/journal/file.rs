//! The only code that opens, lists, truncates or deletes journal files.

use super::record::{encode_header, HEADER_LEN};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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

/// An open journal file that takes appends.
pub struct JournalFile {
    file: File,
    /// Bytes known to be written (header + whole records); a failed write is cut back here.
    len: u64,
}

impl JournalFile {
    /// Creates a new file with its header, durably (file and directory entry synced).
    pub fn create(dir: &Path, generation: u64, format_version: u32) -> io::Result<JournalFile> {
        let path = path_of(dir, generation);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(&encode_header(format_version, generation))?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(JournalFile {
            file,
            len: HEADER_LEN as u64,
        })
    }

    /// Writes `bytes` at the end. On failure the file is cut back to its last whole record
    /// so a later append does not land after half a record.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
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
