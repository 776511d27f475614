//! Store: the only module that imports redb. Owns the store file (`stathook.redb`): admin
//! records (projects, webhooks, key hashes), the compacted segments (each metric's last one
//! in a tail pack, `tails`), the persisted catalog and the compaction watermark. It does not decide what to compact (`compact`) nor how samples
//! are encoded (`segment`); it stores bytes under keys and commits them atomically.

mod accounts;
mod alerts;
mod backup;
mod catalog;
mod compaction;
mod forward;
mod segments;
mod tables;
pub mod tails;
mod web;

use crate::segment::{self, SegmentError};
use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tables::*;

/// redb's own default page cache: queries over large histories stay warm in it.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// Version of the whole on-disk format (store file + journal files), see `docs/format.md`.
pub const FORMAT_VERSION: u32 = 9;

#[derive(Debug)]
pub enum StoreError {
    Db(redb::Error),
    /// The data dir was written by a newer stathook.
    NewerFormat {
        found: u32,
    },
    /// A stored value does not decode: names what and where.
    Corrupt(String),
    /// The caller asked to create something that is already there.
    Conflict(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "store: {e}"),
            StoreError::NewerFormat { found } => write!(
                f,
                "the data dir has format version {found}, newer than this stathook's {FORMAT_VERSION}; upgrade stathook"
            ),
            StoreError::Corrupt(what) => write!(f, "store corrupt: {what}"),
            StoreError::Conflict(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError::Db(e.into())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub use accounts::{OldKey, Project, Scope, Tier, Webhook, MAX_OLD_KEYS};
pub use alerts::{Attempted, DELIVERY_LOG_LEN};
pub use backup::{BackupStats, Snapshot};
pub use catalog::CatalogRow;
pub use compaction::{Compaction, Edits, Expiry, SegmentVisitor};
pub use forward::DeadLetter;
pub use segments::{Sizes, TableSize};
pub use web::{Role, Session, Share, User};

pub struct Store {
    path: std::path::PathBuf,
    cache_bytes: usize,
    /// Swapped for a fresh handle by `recover_from_io_error`; None only while that runs.
    db: parking_lot::RwLock<Option<Arc<Database>>>,
}

impl Store {
    /// Opens or creates the store file and checks its format version, with redb's default
    /// page cache (1 GiB).
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// As `open`, with a page cache of at most `cache_bytes`: the server's memory grows with
    /// the data up to this, then stays flat.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(META_FORMAT_VERSION)?.map(|v| le_u32(v.value()));
            match found {
                None => {
                    meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())?;
                }
                Some(Some(v)) if v == FORMAT_VERSION => {}
                Some(Some(1..=8)) => {
                    // Versions 1 to 8 differ only in their segments and tail packs (1: one
                    // block, no block table; 2: no decimal value codec; 3: segment layout 2,
                    // JSON catalog rows; 4: no XOR value codec; 5: at most 8192 samples a
                    // segment; 6: no tail packs, every segment in `segments`; 7: segment
                    // version 3 at most; 8: tail pack version 1), and this build reads them
                    // all; what it writes uses what 9 adds (a metric's last segment moves
                    // to a version 2 tail pack, in segment version 4, when compaction next
                    // touches it), so the file is version 9 from here on (an older stathook
                    // refuses it instead of failing on its segments or packs).
                    meta.insert(META_FORMAT_VERSION, FORMAT_VERSION.to_le_bytes().as_slice())?;
                }
                Some(Some(v)) if v > FORMAT_VERSION => {
                    return Err(StoreError::NewerFormat { found: v })
                }
                Some(other) => {
                    return Err(StoreError::Corrupt(format!("format version {other:?}")));
                }
            }
            txn.open_table(PROJECTS)?;
            txn.open_table(WEBHOOKS)?;
            txn.open_table(API_KEYS)?;
            txn.open_table(SEGMENTS)?;
            txn.open_table(TAILS)?;
            txn.open_table(CATALOG)?;
            txn.open_table(USAGE)?;
            txn.open_table(USERS)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(DASHBOARDS)?;
            txn.open_table(SHARES)?;
            txn.open_table(ALERT_RULES)?;
            txn.open_table(ALERT_STATES)?;
            txn.open_table(CHANNELS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(DELIVERY_LOG)?;
            txn.open_table(FORWARD_CURSORS)?;
            txn.open_table(FORWARD_DEAD)?;
        }
        txn.commit()?;
        Ok(Store {
            path: path.to_path_buf(),
            cache_bytes,
            db: parking_lot::RwLock::new(Some(Arc::new(db))),
        })
    }

    /// The current database handle (transactions do not borrow it, so the lock is held only
    /// for the clone).
    fn db(&self) -> Result<Arc<Database>> {
        self.db.read().clone().ok_or_else(|| {
            StoreError::Db(redb::Error::Io(std::io::Error::other(
                "the store is being reopened after an I/O error; retry",
            )))
        })
    }

    /// After a failed write (a full disk), redb refuses every later operation with "previous
    /// I/O error" until the database is reopened. This checks for that state and reopens the
    /// file in place, so the server recovers without a restart once the cause is gone.
    /// Returns whether it reopened. Waits (up to ~5 s) for transactions still running on the
    /// old handle, which keep the file locked.
    pub fn recover_from_io_error(&self) -> Result<bool> {
        let probe = self
            .db()
            .and_then(|db| Ok(db.begin_write()?))
            .and_then(|txn| {
                txn.open_table(META)?;
                txn.abort()?;
                Ok(())
            });
        match probe {
            Err(StoreError::Db(redb::Error::PreviousIo)) => {}
            _ => return Ok(false),
        }
        let mut slot = self.db.write();
        drop(slot.take());
        let mut last = None;
        for _ in 0..250 {
            match Database::builder()
                .set_cache_size(self.cache_bytes)
                .create(&self.path)
            {
                Ok(db) => {
                    *slot = Some(Arc::new(db));
                    tracing::warn!(path = %self.path.display(), "reopened the store after an I/O error");
                    return Ok(true);
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
        Err(StoreError::Db(last.expect("BUG: the loop ran").into()))
    }

    /// Rewrites the store file without its free pages (redb's `compact`) when it is at most
    /// `max_bytes`; returns the file size before and after, or None if it was skipped (too
    /// big, or a handle is still in use). Copy-on-write leaves the pages of every rewritten
    /// segment free until reused; a store whose metrics are all young (every segment still
    /// growing) can be ~3× its live data. Called at a clean shutdown, when nothing else uses
    /// the store; it takes ~0.1 s per 10 MB here, hence the bound.
    pub fn compact_file(&self, max_bytes: u64) -> Result<Option<(u64, u64)>> {
        let before = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if before > max_bytes {
            return Ok(None);
        }
        let mut slot = self.db.write();
        let Some(shared) = slot.take() else {
            return Ok(None);
        };
        let mut db = match Arc::try_unwrap(shared) {
            Ok(db) => db,
            Err(shared) => {
                *slot = Some(shared);
                return Ok(None);
            }
        };
        let compacted = db.compact();
        *slot = Some(Arc::new(db));
        compacted.map_err(|e| StoreError::Db(e.into()))?;
        let after = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        Ok(Some((before, after)))
    }

    pub fn admin_token_hash(&self) -> Result<Option<[u8; 32]>> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let out = meta
            .get(META_ADMIN_TOKEN_HASH)?
            .and_then(|v| v.value().try_into().ok());
        Ok(out)
    }

    pub fn set_admin_token_hash(&self, hash: &[u8; 32]) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(META)?
            .insert(META_ADMIN_TOKEN_HASH, hash.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// The highest journal generation already compacted; 0 when none is.
    pub fn watermark(&self) -> Result<u64> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let out = meta
            .get(META_WATERMARK)?
            .and_then(|v| le_u64(v.value()))
            .unwrap_or(0);
        Ok(out)
    }

    fn all_json<T: for<'de> Deserialize<'de>>(
        &self,
        table: redb::TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            out.push(from_json(v.value(), "admin record")?);
        }
        Ok(out)
    }
}

/// The error for a damaged segment, naming its key.
pub fn corrupt(project: &str, metric: &str, start: i64, e: SegmentError) -> StoreError {
    StoreError::Corrupt(format!("segment ({project}, {metric}, {start}): {e}"))
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("BUG: admin records always serialize")
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn le_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

fn le_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}
