//! Reading acknowledged frames back, for the forwarder (`forward`), and holding journal
//! files until it has passed them. The journal is the durable record of every acknowledged
//! sample, so a forwarder that reads it from a cursor skips nothing across restarts. Reads
//! stop at the end of the last acknowledged frame (`Counters::acked`), never inside a frame
//! being written. Owns no state of its own beyond the hold; the files stay `file.rs`'s.

use super::record::{FRAME_HEADER_LEN, HEADER_LEN};
use super::{file, Journal, JournalError};
use std::sync::atomic::Ordering;

/// A place in the journal: a generation's file and a byte offset in it (a frame's start).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Position {
    pub generation: u64,
    pub offset: u64,
}

impl Position {
    /// The first frame of `generation`.
    pub fn start_of(generation: u64) -> Position {
        Position {
            generation,
            offset: HEADER_LEN as u64,
        }
    }
}

/// Whole-or-partial frame bytes read at a position.
pub struct Chunk {
    /// Where `bytes` starts.
    pub at: Position,
    /// Bytes from `at` up to the acknowledged end or the window; may end inside a frame
    /// (the caller decodes whole frames and stops at a torn one or at the zero fill).
    pub bytes: Vec<u8>,
    /// The generation is sealed and `bytes` reaches the end of its file: once these frames
    /// are done, the next generation follows.
    pub sealed: bool,
}

impl Journal {
    /// The end of the last acknowledged frame.
    pub fn acked(&self) -> Position {
        let (generation, offset) = *self.counters.acked.lock();
        Position { generation, offset }
    }

    /// Samples acknowledged since the server started.
    pub fn samples_acked(&self) -> u64 {
        self.counters.samples.load(Ordering::Relaxed)
    }

    /// The generations whose files are on disk, oldest first.
    pub fn generations(&self) -> Result<Vec<u64>, JournalError> {
        let list = file::list(&self.dir)
            .map_err(|e| JournalError::io(format!("list {}", self.dir.display()), &e))?;
        Ok(list.into_iter().map(|(g, _)| g).collect())
    }

    /// Bytes on disk of each generation's file (zero-filled room included), oldest first.
    pub fn file_sizes(&self) -> Result<Vec<(u64, u64)>, JournalError> {
        let list = file::list(&self.dir)
            .map_err(|e| JournalError::io(format!("list {}", self.dir.display()), &e))?;
        Ok(list
            .into_iter()
            .map(|(g, p)| (g, file::size(&p).unwrap_or(0)))
            .collect())
    }

    /// Up to `window` bytes of acknowledged frames at `at` (more when the first frame is
    /// larger than the window, so a chunk always holds a whole frame when one is there).
    pub fn read_at(&self, at: Position, window: usize) -> Result<Chunk, JournalError> {
        let acked = self.acked();
        let path = file::path_of(&self.dir, at.generation);
        let ioerr = |e: std::io::Error| {
            JournalError::io(format!("read journal file {}", path.display()), &e)
        };
        let (end, sealed) = if at.generation >= acked.generation {
            (acked.offset, false)
        } else {
            (file::size(&path).map_err(ioerr)?, true)
        };
        let room = end.saturating_sub(at.offset) as usize;
        let mut bytes = file::read_at(&path, at.offset, room.min(window)).map_err(ioerr)?;
        if bytes.len() >= FRAME_HEADER_LEN {
            let frame = FRAME_HEADER_LEN
                + u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            if frame > bytes.len() && frame <= room {
                bytes = file::read_at(&path, at.offset, frame).map_err(ioerr)?;
            }
        }
        let sealed = sealed && bytes.len() == room;
        Ok(Chunk { at, bytes, sealed })
    }

    /// Keeps the files of generations `>= floor` even once compacted (the forwarder has not
    /// passed them), and deletes compacted files below it. `u64::MAX`: no hold.
    pub fn hold_from(&self, floor: u64) -> Result<(), JournalError> {
        self.floor.store(floor, Ordering::SeqCst);
        self.sweep()
    }

    /// The generation below which compacted files may go.
    pub fn hold(&self) -> u64 {
        self.floor.load(Ordering::SeqCst)
    }
}
