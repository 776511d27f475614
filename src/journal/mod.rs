//! Journal: the lock-sharded append log in front of the store. A request's samples are split
//! by metric (shard = hash of project + metricId, `memtable::shard_of`), each part framed as
//! one record, and the request is answered only after every part is fdatasync'd
//! (ARCHITECTURE.md invariant 3). Files are grouped into *generations*: a rotation seals the
//! current file of every shard, the compactor moves sealed generations into segments, then
//! deletes their files. Owns the journal directory; knows nothing of HTTP or redb tables.

mod file;
mod follow;
#[cfg(test)]
mod power_loss;
pub mod record;
pub mod recover;
mod shard;
#[cfg(test)]
mod sim;

use crate::ingest::{ValidBatch, ValidMetric};
use crate::memtable::{shard_of, Memtable};
use crate::store::{Store, FORMAT_VERSION};
pub use follow::{Chunk, Position};
use parking_lot::Mutex;
pub use shard::Fsync;
use shard::{Applied, Control, Counters, Flusher, Part, Shared};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Number of append shards (and memtable shards). Fixed, because the memtable finds a
/// metric's uncompacted samples in shard `shard_of(project, metric)`. Four: more than the
/// target machine's two cores, so request threads rarely wait on each other's pushes.
pub const SHARDS: usize = 4;

#[derive(Clone, Debug)]
pub enum JournalError {
    Io {
        context: String,
        kind: io::ErrorKind,
        message: String,
    },
    Poisoned {
        why: String,
    },
    /// A journal file cannot be read safely (foreign, or from a newer stathook).
    Unreadable {
        path: PathBuf,
        why: String,
    },
    Closed,
}

impl JournalError {
    fn io(context: String, e: &io::Error) -> JournalError {
        JournalError::Io {
            context,
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// True when the disk is full: the caller may retry once space is freed.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            JournalError::Io {
                kind: io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded,
                ..
            }
        )
    }
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalError::Io {
                context, message, ..
            } => write!(f, "{context}: {message}"),
            JournalError::Poisoned { why } => write!(f, "{why}; restart stathook"),
            JournalError::Unreadable { path, why } => {
                write!(f, "journal file {} cannot be read: {why}", path.display())
            }
            JournalError::Closed => write!(f, "the journal is shutting down"),
        }
    }
}

impl std::error::Error for JournalError {}

/// What recovery found, for the startup log and `stathook check`.
#[derive(Debug, Default, Clone)]
pub struct RecoveryReport {
    pub files: usize,
    pub records: usize,
    pub samples: usize,
    /// (file, offset of the first bad frame, bytes dropped, why) per damaged file.
    pub damaged: Vec<(PathBuf, usize, usize, String)>,
}

pub struct Journal {
    dir: PathBuf,
    shared: Arc<Shared>,
    applied: Arc<Applied>,
    /// The flusher, then the applier.
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: AtomicU64,
    fsync: Fsync,
    counters: Arc<Counters>,
    /// Compacted files of generations `>= floor` are kept for the forwarder (`follow.rs`);
    /// `u64::MAX` when nothing forwards.
    floor: AtomicU64,
    /// The highest generation compacted into segments (files up to it may go).
    compacted: AtomicU64,
}

/// The journal's state for operators (`GET /api/v1/admin/journal`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JournalStatus {
    pub fsync: Fsync,
    pub generation: u64,
    /// Frames written and fdatasyncs done since the server started.
    pub frames: u64,
    pub syncs: u64,
    /// Whether the current file takes O_DIRECT appends (`file::Appends`).
    pub direct: bool,
    /// Samples acknowledged and time spent in fdatasync since the server started.
    pub samples: u64,
    pub sync_seconds: f64,
}

impl Journal {
    /// Replays every uncompacted journal file into `memtable`, cuts damaged tails, then starts
    /// the flusher on a fresh generation.
    pub fn open(
        dir: &Path,
        store: Arc<Store>,
        memtable: Arc<Memtable>,
        fsync: Fsync,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        Journal::open_keeping(dir, store, memtable, fsync, u64::MAX)
    }

    /// [`Journal::open`], keeping the files of generations `>= keep_from` even when they are
    /// compacted: a forwarder has not passed them yet (`hold_from`).
    pub fn open_keeping(
        dir: &Path,
        store: Arc<Store>,
        memtable: Arc<Memtable>,
        fsync: Fsync,
        keep_from: u64,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        let ioerr =
            |what: &str, e: io::Error| JournalError::io(format!("{what} {}", dir.display()), &e);
        file::ensure_dir(dir).map_err(|e| ioerr("create journal dir", e))?;
        let report = recover_keeping(dir, &store, &memtable, true, keep_from)?;
        let watermark = store.watermark().map_err(|e| JournalError::Unreadable {
            path: dir.into(),
            why: e.to_string(),
        })?;
        let last = file::list(dir)
            .map_err(|e| ioerr("list", e))?
            .iter()
            .map(|(g, _)| *g)
            .max()
            .unwrap_or(0);
        let generation = last.max(watermark) + 1;
        let file = file::JournalFile::create(dir, generation, FORMAT_VERSION, appends_for(fsync))
            .map_err(|e| ioerr("create journal file in", e))?;
        if fsync == Fsync::Always && !file.is_direct() {
            tracing::info!(
                path = %dir.display(),
                "the file system refuses O_DIRECT: journal appends go through the page cache"
            );
        }
        for shard in 0..memtable.shard_count() {
            memtable.rotate(shard, generation);
        }
        let shared = Arc::new(Shared::new(SHARDS));
        let applied = Arc::new(Applied::default());
        let counters = Arc::new(Counters::default());
        counters.direct.store(file.is_direct(), Ordering::Relaxed);
        *counters.acked.lock() = (generation, file.len());
        let (to_applier, work) = std::sync::mpsc::channel();
        let (m, a) = (memtable, applied.clone());
        let applier = std::thread::Builder::new()
            .name("journal-apply".into())
            .spawn(move || shard::run_applier(work, m, a))
            .map_err(|e| ioerr("spawn the journal applier for", e))?;
        let flusher = Flusher {
            dir: dir.to_path_buf(),
            generation,
            file,
            shared: shared.clone(),
            applier: to_applier,
            applied: applied.clone(),
            seq: 0,
            poisoned: None,
            fsync,
            unsynced_since: None,
            counters: counters.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || flusher.run())
            .map_err(|e| ioerr("spawn the journal flusher for", e))?;
        let journal = Journal {
            dir: dir.to_path_buf(),
            shared,
            applied,
            threads: Mutex::new(vec![handle, applier]),
            generation: AtomicU64::new(generation),
            fsync,
            counters,
            floor: AtomicU64::new(keep_from),
            compacted: AtomicU64::new(watermark),
        };
        Ok((journal, report))
    }

    /// Queues a batch and returns a future that resolves once every sample is durable and
    /// readable. The records are encoded here, on the caller's thread, so the future does not
    /// borrow the request body.
    pub fn append(
        &self,
        batch: &ValidBatch<'_>,
    ) -> impl std::future::Future<Output = Result<(), JournalError>> + Send + 'static {
        let mut by_shard: [Vec<&ValidMetric<'_>>; SHARDS] = Default::default();
        for m in &batch.metrics {
            by_shard[shard_of(batch.project_id, m.metric_id, SHARDS)].push(m);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut parts = Vec::with_capacity(SHARDS);
        for (shard, metrics) in by_shard.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
            let mut record = Vec::with_capacity(16 + metrics.len() * 96);
            record::encode_record(
                &mut record,
                batch.project_id,
                metrics.iter().copied(),
                metrics.len(),
            );
            let samples = metrics.len() as u64;
            parts.push((
                shard,
                Part {
                    record,
                    ack: None,
                    samples,
                },
            ));
        }
        // The last part carries the acknowledgement: the flusher handles a request's parts in
        // one frame, so the last one's sync covers them all.
        if let Some((_, last)) = parts.last_mut() {
            last.ack = Some(tx);
        }
        let queued = self.shared.push(parts);
        async move {
            queued?;
            rx.await.unwrap_or(Err(JournalError::Closed))
        }
    }

    /// Seals the current generation and returns it; blocks until the flusher has switched.
    pub fn rotate(&self) -> Result<u64, JournalError> {
        let sealed = self.generation.load(Ordering::SeqCst);
        let next = sealed + 1;
        // Made here, on the caller's thread: creating and zero-filling a file took 4–17 ms,
        // which the flusher, and so every request, would otherwise wait for.
        let appends = appends_for(self.fsync);
        let file =
            file::JournalFile::create(&self.dir, next, FORMAT_VERSION, appends).map_err(|e| {
                JournalError::io(format!("create journal file for generation {next}"), &e)
            })?;
        let (tx, rx) = std::sync::mpsc::channel();
        self.shared.control(Control::Rotate(next, file, tx));
        if let Err(e) = rx.recv().unwrap_or(Err(JournalError::Closed)) {
            // Not switched to: the empty file would block the next attempt (create_new).
            let _ = file::remove(&file::path_of(&self.dir, next));
            return Err(e);
        }
        self.generation.store(next, Ordering::SeqCst);
        Ok(sealed)
    }

    /// Deletes the journal files of generations `<= through` (after they are compacted),
    /// except those a forwarder still needs (`hold_from`).
    pub fn remove_through(&self, through: u64) -> Result<(), JournalError> {
        self.compacted.fetch_max(through, Ordering::SeqCst);
        self.sweep()
    }

    /// Deletes the files that are compacted and below the forwarder's hold.
    fn sweep(&self) -> Result<(), JournalError> {
        let ioerr = |e: io::Error| {
            JournalError::io(
                format!("remove compacted journal files in {}", self.dir.display()),
                &e,
            )
        };
        let compacted = self.compacted.load(Ordering::SeqCst);
        let floor = self.floor.load(Ordering::SeqCst);
        let mut removed = false;
        for (generation, path) in file::list(&self.dir).map_err(ioerr)? {
            if generation <= compacted && generation < floor {
                file::remove(&path).map_err(ioerr)?;
                removed = true;
            }
        }
        if removed {
            file::sync_dir(&self.dir).map_err(ioerr)?;
        }
        Ok(())
    }

    /// Stops the flusher after it commits what is queued.
    pub fn stop(&self) {
        let mut threads = self.threads.lock();
        if !threads.is_empty() {
            self.shared.control(Control::Stop);
            // The flusher first; its end closes the applier's queue, which then drains.
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }

    /// Blocks until every acknowledged write is in the memtable; call before reading it.
    pub fn status(&self) -> JournalStatus {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        JournalStatus {
            fsync: self.fsync,
            generation: self.generation.load(Ordering::Relaxed),
            frames: load(&self.counters.frames),
            syncs: load(&self.counters.syncs),
            direct: self.counters.direct.load(Ordering::Relaxed),
            samples: load(&self.counters.samples),
            sync_seconds: load(&self.counters.sync_nanos) as f64 / 1e9,
        }
    }

    pub fn wait_applied(&self) {
        self.applied.wait();
    }
}

/// Direct appends when every 200 waits for the disk anyway; buffered ones when it does not.
fn appends_for(fsync: Fsync) -> file::Appends {
    match fsync {
        Fsync::Always => file::Appends::Direct,
        Fsync::Interval(_) => file::Appends::Buffered,
    }
}

/// Replays uncompacted journal files into `memtable` (seeding its catalog from the store
/// first). With `repair`, deletes compacted files and cuts damaged tails; without, only
/// reports (for `stathook check`).
pub fn recover_into(
    dir: &Path,
    store: &Store,
    memtable: &Memtable,
    repair: bool,
) -> Result<RecoveryReport, JournalError> {
    recover_keeping(dir, store, memtable, repair, u64::MAX)
}

/// [`recover_into`], not deleting compacted files of generations `>= keep_from`.
fn recover_keeping(
    dir: &Path,
    store: &Store,
    memtable: &Memtable,
    repair: bool,
    keep_from: u64,
) -> Result<RecoveryReport, JournalError> {
    let unreadable = |path: &Path, why: String| JournalError::Unreadable {
        path: path.into(),
        why,
    };
    let io = |what: &str, path: &Path, e: io::Error| {
        JournalError::io(format!("{what} {}", path.display()), &e)
    };
    let watermark = store
        .watermark()
        .map_err(|e| unreadable(dir, e.to_string()))?;
    for (p, m, row) in store
        .catalog()
        .map_err(|e| unreadable(dir, e.to_string()))?
    {
        memtable.load_catalog_row(shard_of(&p, &m, memtable.shard_count()), &p, &m, row);
    }
    let mut report = RecoveryReport::default();
    for (generation, path) in file::list(dir).map_err(|e| io("list", dir, e))? {
        if generation <= watermark {
            // Compacted already; a crash came between the commit and the delete (or a
            // forwarder still needs it).
            if repair && generation < keep_from {
                file::remove(&path).map_err(|e| io("remove", &path, e))?;
            }
            continue;
        }
        let bytes = file::read(&path).map_err(|e| io("read", &path, e))?;
        let scan = match recover::scan(&bytes, generation, FORMAT_VERSION) {
            Ok(s) => s,
            Err(recover::HeaderProblem::Missing) => {
                // Created but its header never synced: nothing in it was ever acknowledged.
                tracing::warn!(file = %path.display(), "journal file without a header; removing");
                if repair {
                    file::remove(&path).map_err(|e| io("remove", &path, e))?;
                }
                continue;
            }
            Err(recover::HeaderProblem::Unreadable(why)) => return Err(unreadable(&path, why)),
        };
        report.files += 1;
        for rec in &scan.records {
            report.records += 1;
            report.samples += rec.samples.len();
            memtable.apply(generation, rec.project, &rec.samples);
        }
        if let Some(damage) = scan.damage {
            // What is lost is the data after the offset, not the zero fill after the data.
            let data_end = bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
            let dropped = data_end.saturating_sub(scan.valid_len);
            tracing::warn!(file = %path.display(), offset = scan.valid_len, dropped_bytes = dropped, reason = %damage,
                "journal damaged; keeping the frames before the offset, dropping the rest");
            report
                .damaged
                .push((path.clone(), scan.valid_len, dropped, damage.to_string()));
            if repair {
                file::truncate(&path, scan.valid_len as u64)
                    .map_err(|e| io("truncate", &path, e))?;
            }
        }
    }
    Ok(report)
}
