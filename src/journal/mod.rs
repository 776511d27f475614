//! Journal: the lock-sharded append log in front of the store. A request's samples are split
//! by metric (shard = hash of project + metricId, `memtable::shard_of`), each part framed as
//! one record, and the request is answered only after every part is fdatasync'd
//! (ARCHITECTURE.md invariant 3). Files are grouped into *generations*: a rotation seals the
//! current file of every shard, the compactor moves sealed generations into segments, then
//! deletes their files. Owns the journal directory; knows nothing of HTTP or redb tables.

mod file;
pub mod record;
pub mod recover;
mod shard;

use crate::ingest::{ValidBatch, ValidMetric};
use crate::memtable::{shard_of, Memtable, NewSample};
use crate::store::{Store, FORMAT_VERSION};
use parking_lot::Mutex;
use shard::{Command, ShardQueue, Writer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Number of journal shards. Fixed, because a metric's shard must not change while it has
/// uncompacted records. Two = the cores of the target machine: more shards would make each
/// 100-metric request wait for more fsyncs without adding CPU to encode with.
pub const SHARDS: usize = 2;

#[derive(Clone, Debug)]
pub enum JournalError {
    Io {
        context: String,
        kind: io::ErrorKind,
        message: String,
    },
    Poisoned {
        shard: usize,
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
            JournalError::Poisoned { why, .. } => write!(f, "{why}; restart stathook"),
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
    /// (file, offset of the first bad record, bytes dropped, why) per damaged file.
    pub damaged: Vec<(PathBuf, usize, usize, String)>,
}

pub struct Journal {
    dir: PathBuf,
    queues: Vec<Arc<ShardQueue>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: AtomicU64,
}

impl Journal {
    /// Replays every uncompacted journal file into `memtable`, cuts damaged tails, then starts
    /// one writer thread per shard on a fresh generation.
    pub fn open(
        dir: &Path,
        store: Arc<Store>,
        memtable: Arc<Memtable>,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        let ioerr =
            |what: &str, e: io::Error| JournalError::io(format!("{what} {}", dir.display()), &e);
        std::fs::create_dir_all(dir).map_err(|e| ioerr("create journal dir", e))?;
        let report = recover_into(dir, &store, &memtable, true)?;
        let watermark = store.watermark().map_err(|e| JournalError::Unreadable {
            path: dir.into(),
            why: e.to_string(),
        })?;
        let last = file::list(dir)
            .map_err(|e| ioerr("list", e))?
            .iter()
            .map(|(_, g, _)| *g)
            .max()
            .unwrap_or(0);
        let generation = last.max(watermark) + 1;

        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for shard in 0..SHARDS {
            let file = file::JournalFile::create(dir, shard, generation, FORMAT_VERSION)
                .map_err(|e| ioerr("create journal file in", e))?;
            memtable.rotate(shard, generation);
            let queue = Arc::new(ShardQueue::new());
            let writer = Writer {
                shard,
                dir: dir.to_path_buf(),
                generation,
                file,
                queue: queue.clone(),
                memtable: memtable.clone(),
                store: store.clone(),
                format_version: FORMAT_VERSION,
                poisoned: None,
            };
            let handle = std::thread::Builder::new()
                .name(format!("journal-{shard}"))
                .spawn(move || writer.run())
                .map_err(|e| ioerr("spawn writer for", e))?;
            queues.push(queue);
            threads.push(handle);
        }
        let journal = Journal {
            dir: dir.to_path_buf(),
            queues,
            threads: Mutex::new(threads),
            generation: AtomicU64::new(generation),
        };
        Ok((journal, report))
    }

    /// Queues a batch for appending and returns a future that resolves once every sample is
    /// durable and readable. The records are encoded here, on the caller's thread, so the
    /// future does not borrow the request body.
    pub fn append(
        &self,
        batch: &ValidBatch<'_>,
    ) -> impl std::future::Future<Output = Result<(), JournalError>> + Send + 'static {
        let mut parts: [Vec<&ValidMetric<'_>>; SHARDS] = Default::default();
        for m in &batch.metrics {
            parts[shard_of(batch.project_id, m.metric_id, SHARDS)].push(m);
        }
        let mut acks = Vec::with_capacity(SHARDS);
        for (shard, metrics) in parts.iter().enumerate() {
            if metrics.is_empty() {
                continue;
            }
            let mut record = Vec::with_capacity(64 + metrics.len() * 96);
            record::encode_record(
                &mut record,
                batch.project_id,
                metrics.iter().copied(),
                metrics.len(),
            );
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.queues[shard].push(Command::Append { record, ack: tx });
            acks.push(rx);
        }
        async move {
            let mut result = Ok(());
            for rx in acks {
                // Await every part even after a failure, so nothing is left unobserved.
                let r = rx.await.unwrap_or(Err(JournalError::Closed));
                if result.is_ok() {
                    result = r;
                }
            }
            result
        }
    }

    /// Seals the current generation of every shard and returns it; blocks until done.
    pub fn rotate(&self) -> Result<u64, JournalError> {
        let sealed = self.generation.load(Ordering::SeqCst);
        let next = sealed + 1;
        let mut waits = Vec::new();
        for q in &self.queues {
            let (tx, rx) = std::sync::mpsc::channel();
            q.push(Command::Rotate(next, tx));
            waits.push(rx);
        }
        let mut result = Ok(sealed);
        for rx in waits {
            if let Err(e) = rx.recv().unwrap_or(Err(JournalError::Closed)) {
                result = Err(e);
            }
        }
        // Even after a failure some shards moved on; the next rotation starts above them all.
        self.generation.store(next, Ordering::SeqCst);
        result
    }

    /// Deletes the journal files of generations `<= through` (after they are compacted).
    pub fn remove_through(&self, through: u64) -> Result<(), JournalError> {
        let ioerr = |e: io::Error| {
            JournalError::io(
                format!("remove compacted journal files in {}", self.dir.display()),
                &e,
            )
        };
        for (_, generation, path) in file::list(&self.dir).map_err(ioerr)? {
            if generation <= through {
                file::remove(&path).map_err(ioerr)?;
            }
        }
        file::sync_dir(&self.dir).map_err(ioerr)
    }

    /// Stops the writer threads after they finish what is queued.
    pub fn stop(&self) {
        for q in &self.queues {
            q.push(Command::Stop);
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
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
    let unreadable = |path: &Path, why: String| JournalError::Unreadable {
        path: path.into(),
        why,
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
    let files =
        file::list(dir).map_err(|e| JournalError::io(format!("list {}", dir.display()), &e))?;
    let mut in_segments = |p: &str, m: &str, ts: i64| store.contains(p, m, ts).unwrap_or(false);
    for (shard, generation, path) in files {
        if generation <= watermark {
            // Compacted already; a crash came between the commit and the delete.
            if repair {
                file::remove(&path)
                    .map_err(|e| JournalError::io(format!("remove {}", path.display()), &e))?;
            }
            continue;
        }
        if shard >= memtable.shard_count() {
            return Err(unreadable(
                &path,
                format!(
                    "shard {shard} is beyond this build's {} shards",
                    memtable.shard_count()
                ),
            ));
        }
        let bytes = file::read(&path)
            .map_err(|e| JournalError::io(format!("read {}", path.display()), &e))?;
        let scan = match recover::scan(&bytes, shard, generation, FORMAT_VERSION) {
            Ok(s) => s,
            Err(recover::HeaderProblem::Missing) => {
                // Created but its header never synced: nothing in it was ever acknowledged.
                tracing::warn!(file = %path.display(), "journal file without a header; removing");
                if repair {
                    file::remove(&path)
                        .map_err(|e| JournalError::io(format!("remove {}", path.display()), &e))?;
                }
                continue;
            }
            Err(recover::HeaderProblem::Unreadable(why)) => return Err(unreadable(&path, why)),
        };
        report.files += 1;
        for rec in &scan.records {
            report.records += 1;
            report.samples += rec.samples.len();
            memtable.apply(
                shard,
                generation,
                rec.project,
                rec.samples.iter().map(|s| NewSample {
                    metric_id: s.metric_id,
                    metric_name: s.metric_name,
                    unit: s.unit,
                    timestamp_ms: s.timestamp_ms,
                    value: s.value,
                    metadata: s.metadata,
                }),
                &mut in_segments,
            );
        }
        if let Some(damage) = scan.damage {
            let dropped = bytes.len() - scan.valid_len;
            tracing::warn!(file = %path.display(), offset = scan.valid_len, dropped_bytes = dropped, reason = %damage,
                "journal damaged; keeping the records before the offset, dropping the rest");
            report
                .damaged
                .push((path.clone(), scan.valid_len, dropped, damage.to_string()));
            if repair {
                file::truncate(&path, scan.valid_len as u64)
                    .map_err(|e| JournalError::io(format!("truncate {}", path.display()), &e))?;
            }
        }
    }
    Ok(report)
}
