//! The test I/O layer for power loss (built for tests only). `file.rs` reports every
//! creation, write and sync of a watched journal directory here, in the order the journal
//! made them; `Disk` replays those events and tells what a disk could hold had power failed
//! after any prefix of them: each file's synced bytes, plus some of what was written after
//! its last sync. A SIGKILL cannot show this (the kernel keeps the unsynced bytes). Knows
//! nothing of frames or records.

use crate::bench::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One thing the journal did to its files.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Create {
        generation: u64,
    },
    Write {
        generation: u64,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// Zeros written (a file's preallocated room): kept as a length, not as bytes.
    Fill {
        generation: u64,
        offset: u64,
        len: u64,
    },
    /// fdatasync or fsync of one file returned Ok.
    Sync {
        generation: u64,
    },
    /// The directory was fsync'd: every file created so far keeps its name.
    DirSync,
}

/// The events of one watched directory.
#[derive(Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn record(&self, event: Event) {
        self.events.lock().expect("recorder lock").push(event);
    }

    /// How many events happened so far: an acknowledgement seen now is covered by a sync
    /// among them.
    pub fn len(&self) -> usize {
        self.events.lock().expect("recorder lock").len()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("recorder lock").clone()
    }
}

static WATCHED: Mutex<Vec<(PathBuf, Arc<Recorder>)>> = Mutex::new(Vec::new());

/// Starts recording what the journal does in `dir` (call before `Journal::open`).
pub(crate) fn watch(dir: &Path) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let mut watched = WATCHED.lock().expect("watch lock");
    watched.retain(|(d, _)| d != dir);
    watched.push((dir.to_path_buf(), recorder.clone()));
    recorder
}

/// The recorder of `dir`, if a test watches it.
pub(crate) fn recorder_for(dir: &Path) -> Option<Arc<Recorder>> {
    let watched = WATCHED.lock().expect("watch lock");
    watched
        .iter()
        .find(|(d, _)| d == dir)
        .map(|(_, r)| r.clone())
}

/// How the unsynced writes of a file reach the disk when power fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tear {
    /// In order: some writes whole, the next one cut at a random byte, none after it.
    Prefix,
    /// Every 512-byte sector written since the last sync independently holds its new or its
    /// old bytes (a device that reorders its writes).
    Sectors,
}

const SECTOR: usize = 512;

#[derive(Clone, Debug)]
enum Pending {
    Bytes(u64, Vec<u8>),
    Zeros(u64, u64),
}

impl Pending {
    fn range(&self) -> (usize, usize) {
        match self {
            Pending::Bytes(at, b) => (*at as usize, *at as usize + b.len()),
            Pending::Zeros(at, n) => (*at as usize, (*at + *n) as usize),
        }
    }

    /// Writes the first `keep` bytes of this write into `image`.
    fn apply(&self, image: &mut Vec<u8>, keep: usize) {
        let (start, end) = self.range();
        let end = end.min(start.saturating_add(keep));
        if image.len() < end {
            image.resize(end, 0);
        }
        match self {
            Pending::Bytes(_, b) => image[start..end].copy_from_slice(&b[..end - start]),
            Pending::Zeros(..) => image[start..end].fill(0),
        }
    }
}

#[derive(Default)]
struct SimFile {
    /// What the file holds on the device.
    synced: Vec<u8>,
    /// What the process sees (the page cache): `synced` plus `pending`.
    written: Vec<u8>,
    pending: Vec<Pending>,
    /// Whether the file's directory entry is durable.
    named: bool,
}

/// The journal directory as a device would hold it, replayed event by event.
#[derive(Default)]
pub(crate) struct Disk {
    files: BTreeMap<u64, SimFile>,
}

impl Disk {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Create { generation } => {
                self.files.insert(*generation, SimFile::default());
            }
            Event::Write {
                generation,
                offset,
                bytes,
            } => self.write(*generation, Pending::Bytes(*offset, bytes.clone())),
            Event::Fill {
                generation,
                offset,
                len,
            } => self.write(*generation, Pending::Zeros(*offset, *len)),
            Event::Sync { generation } => {
                let f = self.file(*generation);
                for p in std::mem::take(&mut f.pending) {
                    p.apply(&mut f.synced, usize::MAX);
                }
            }
            Event::DirSync => self.files.values_mut().for_each(|f| f.named = true),
        }
    }

    fn file(&mut self, generation: u64) -> &mut SimFile {
        self.files
            .get_mut(&generation)
            .unwrap_or_else(|| panic!("generation {generation} written before it was created"))
    }

    fn write(&mut self, generation: u64, p: Pending) {
        let f = self.file(generation);
        p.apply(&mut f.written, usize::MAX);
        f.pending.push(p);
    }

    /// Every file's bytes as the process wrote them (nothing lost), by generation.
    pub fn written(&self) -> Vec<(u64, Vec<u8>)> {
        self.files
            .iter()
            .map(|(g, f)| (*g, f.written.clone()))
            .collect()
    }

    /// The files a device could hold if power failed now, by generation. A file whose
    /// directory entry was never synced may be gone.
    pub fn crash(&self, tear: Tear, rng: &mut Rng) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (generation, f) in &self.files {
            if !f.named && rng.below(2) == 0 {
                continue;
            }
            let mut image = f.synced.clone();
            match tear {
                Tear::Prefix => {
                    let whole = rng.below(f.pending.len() + 1);
                    for p in &f.pending[..whole] {
                        p.apply(&mut image, usize::MAX);
                    }
                    if let Some(torn) = f.pending.get(whole) {
                        let (start, end) = torn.range();
                        torn.apply(&mut image, rng.below(end - start + 1));
                    }
                }
                Tear::Sectors => {
                    let mut dirty: Vec<usize> = f
                        .pending
                        .iter()
                        .flat_map(|p| {
                            let (start, end) = p.range();
                            start / SECTOR..end.div_ceil(SECTOR)
                        })
                        .collect();
                    dirty.sort_unstable();
                    dirty.dedup();
                    for sector in dirty {
                        if rng.below(2) == 0 {
                            continue;
                        }
                        let start = sector * SECTOR;
                        let end = ((sector + 1) * SECTOR).min(f.written.len());
                        if image.len() < end {
                            image.resize(end, 0);
                        }
                        image[start..end].copy_from_slice(&f.written[start..end]);
                    }
                }
            }
            out.push((*generation, image));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(events: &[Event]) -> Disk {
        let mut d = Disk::default();
        events.iter().for_each(|e| d.apply(e));
        d
    }

    fn write(offset: u64, bytes: &[u8]) -> Event {
        Event::Write {
            generation: 1,
            offset,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn a_crash_keeps_synced_bytes_and_at_most_a_torn_prefix_of_the_rest() {
        let d = disk(&[
            Event::Create { generation: 1 },
            write(0, b"head"),
            Event::Sync { generation: 1 },
            Event::DirSync,
            write(4, b"abcdefgh"),
            write(12, b"ijkl"),
        ]);
        assert_eq!(d.written(), vec![(1, b"headabcdefghijkl".to_vec())]);
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = Rng::new(7);
        for _ in 0..400 {
            let files = d.crash(Tear::Prefix, &mut rng);
            assert_eq!(files.len(), 1, "a named file survives");
            let image = &files[0].1;
            assert!(b"headabcdefghijkl".starts_with(image), "{image:?}");
            assert!(image.len() >= 4, "synced bytes stay");
            seen.insert(image.len());
        }
        assert_eq!(seen.len(), 13, "every cut from 4 to 16 bytes: {seen:?}");
    }

    #[test]
    fn sectors_fall_independently_and_an_unnamed_file_may_vanish() {
        let mut events = vec![Event::Create { generation: 1 }];
        events.push(Event::Fill {
            generation: 1,
            offset: 0,
            len: 4 * SECTOR as u64,
        });
        events.push(Event::Sync { generation: 1 });
        let bytes: Vec<u8> = (0..4 * SECTOR).map(|i| (i % 200) as u8 + 1).collect();
        events.push(write(0, &bytes));
        let d = disk(&events);
        let mut rng = Rng::new(11);
        let (mut gone, mut mixed) = (0, 0);
        for _ in 0..200 {
            let files = d.crash(Tear::Sectors, &mut rng);
            let Some((_, image)) = files.first() else {
                gone += 1;
                continue;
            };
            assert_eq!(image.len(), 4 * SECTOR);
            let new: Vec<bool> = image
                .chunks(SECTOR)
                .zip(bytes.chunks(SECTOR))
                .map(|(got, want)| {
                    assert!(got == want || got.iter().all(|b| *b == 0), "whole sectors");
                    got == want
                })
                .collect();
            if new.contains(&true) && new.contains(&false) {
                mixed += 1;
            }
        }
        assert!(
            gone > 50 && gone < 150,
            "{gone} of 200 crashes lost the unnamed file"
        );
        assert!(
            mixed > 50,
            "{mixed} crashes kept some sectors and not others"
        );
    }
}
