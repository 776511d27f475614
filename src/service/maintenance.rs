//! Maintenance: compaction rounds on demand, metric deletion, backups and retention sweeps.
//! They all change segments, so they hold one lock (`rounds`, shared with the background
//! compactor) and never interleave; the compactor's own schedule is `compact::spawn`'s.

use crate::compact::{self, CompactStats};
use crate::journal::Journal;
use crate::memtable::Memtable;
use crate::store::{BackupStats, Store};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone)]
pub struct Maintenance {
    pub store: Arc<Store>,
    pub journal: Arc<Journal>,
    pub memtable: Arc<Memtable>,
    /// Held by each compaction round, deletion and retention sweep.
    pub rounds: Arc<Mutex<()>>,
    /// `--retention`: the default for projects without their own; None = forever.
    pub default_retention_ms: Option<i64>,
    /// Where a backup is written before it is streamed out (inside the data dir).
    pub backup_tmp_dir: PathBuf,
}

impl Maintenance {
    /// Runs one compaction round now (tests and the admin API use it).
    pub fn compact_now(&self) -> Result<CompactStats, String> {
        let _round = self.rounds.lock();
        compact::compact_round(&self.store, &self.journal, &self.memtable)
    }

    /// Deletes a metric and its data (see `compact::delete_metric`); false if unknown.
    pub fn delete_metric(&self, project: &str, metric: &str) -> Result<bool, String> {
        self.journal.wait_applied();
        let _round = self.rounds.lock();
        compact::delete_metric(&self.store, &self.journal, &self.memtable, project, metric)
    }

    /// Writes a consistent copy of the store to `path` (a new file) while the server keeps
    /// ingesting: compacts first under the rounds lock, so every sample acknowledged before
    /// the call is in the store, takes a snapshot, releases the lock, then copies the
    /// snapshot. Samples acknowledged later may or may not be in it.
    pub fn backup_to(&self, path: &Path) -> Result<BackupStats, String> {
        self.journal.wait_applied();
        let snapshot = {
            let _round = self.rounds.lock();
            compact::compact_once(&self.store, &self.journal, &self.memtable)?;
            self.store.snapshot().map_err(|e| e.to_string())?
        };
        snapshot.write_to(path).map_err(|e| e.to_string())
    }

    /// Runs one retention sweep as if the time were `now_ms`; returns the samples removed.
    pub fn expire_now(&self, now_ms: i64) -> Result<u64, String> {
        let _round = self.rounds.lock();
        compact::expire_once(&self.store, &self.memtable, &|p| self.cutoff_ms(p, now_ms))
    }

    /// The first timestamp a project keeps at `now_ms`: its own retention, else the server
    /// default; None = forever. The background compactor's sweeps use it too.
    pub fn cutoff_ms(&self, project: &str, now_ms: i64) -> Option<i64> {
        let own = self
            .store
            .project(project)
            .ok()
            .flatten()
            .and_then(|p| p.retention);
        let retention = match own {
            Some(setting) => {
                crate::config::parse_retention(&setting).unwrap_or(self.default_retention_ms)
            }
            None => self.default_retention_ms,
        };
        retention.map(|r| now_ms - r)
    }
}
