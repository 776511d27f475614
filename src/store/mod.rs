//! Store: the only module that imports redb. Owns the store file (`stathook.redb`): admin
//! records (projects, webhooks, key hashes), the compacted segments (each metric's last one
//! in a tail pack, `tails`), the persisted catalog and the compaction watermark. It does not decide what to compact (`compact`) nor how samples
//! are encoded (`segment`); it stores bytes under keys and commits them atomically.

mod tables;
pub mod tails;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Free,
    Pro,
    Scale,
    /// No rate limit (the self-hosted default, `--default-tier`).
    Unlimited,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Tier> {
        Some(match s {
            "free" => Tier::Free,
            "pro" => Tier::Pro,
            "scale" => Tier::Scale,
            "unlimited" => Tier::Unlimited,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub tier: Tier,
    pub created_at: i64,
    /// `forever` or a duration like `90d`; None follows the server's `--retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

/// What an API key may do: send metrics (a webhook connection's key) or query its project.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Ingest,
    Read,
}

/// An API key record: a webhook connection (`wh_…`, scope ingest) or a read key (`rk_…`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub project_id: String,
    pub name: String,
    /// The first characters of the current key, so a person can tell keys apart.
    pub key_prefix: String,
    /// blake3 of the current key, hex. Never the key itself.
    pub key_hash: String,
    pub created_at: i64,
    pub key_created_at: i64,
    pub revoked_at: Option<i64>,
    /// Absent in records written before read keys existed: those are ingest keys.
    #[serde(default)]
    pub scope: Scope,
    /// Keys this record had before, newest last (at most `MAX_OLD_KEYS`): a rotated-out key
    /// in its grace period still works; the others are kept so their use can be reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_keys: Vec<OldKey>,
}

/// Old keys remembered per webhook.
pub const MAX_OLD_KEYS: usize = 8;

/// A key a webhook no longer has as its current key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OldKey {
    pub key_prefix: String,
    /// blake3 of the key, hex.
    pub key_hash: String,
    /// When it stops (or stopped) working, Unix ms: later than the rotation for a grace period.
    pub valid_until: i64,
    /// `rotated` or `revoked`.
    pub reason: String,
}

/// What the compacted segments of one metric hold (the journal tail is added in memory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRow {
    pub metric_name: String,
    pub unit: Option<String>,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub last_value: f64,
    pub count: u64,
}

/// Tag of a binary catalog row (store format 4). Older rows are JSON objects, which start
/// with `{`; both are read, and a row is rewritten in binary when compaction next touches it.
const CATALOG_ROW_BINARY: u8 = 1;
/// As `CATALOG_ROW_BINARY` with the last value as a decimal (store format 9): `u8 e` (0–9)
/// and zigzag varint m for `m / 10^e`, or `u8 0xFF` and f64 LE. A 2-decimal gauge's or a
/// counter's last value takes 2–5 bytes instead of 8.
const CATALOG_ROW_DECIMAL: u8 = 2;
const CATALOG_VALUE_RAW: u8 = 0xFF;

impl CatalogRow {
    /// `2, varint name length, name, u8 0 | 1 + varint length + unit, zigzag varint first
    /// timestamp, varint (last − first), last value (`CATALOG_ROW_DECIMAL`), varint count` —
    /// a sixth of the JSON, which at 50,000 metrics of 20 samples was a third of the data dir.
    pub fn encode(&self) -> Vec<u8> {
        use crate::segment::{put_varint, zigzag};
        let mut out = Vec::with_capacity(32 + self.metric_name.len());
        out.push(CATALOG_ROW_DECIMAL);
        put_varint(&mut out, self.metric_name.len() as u64);
        out.extend_from_slice(self.metric_name.as_bytes());
        match &self.unit {
            None => out.push(0),
            Some(u) => {
                out.push(1);
                put_varint(&mut out, u.len() as u64);
                out.extend_from_slice(u.as_bytes());
            }
        }
        put_varint(&mut out, zigzag(self.first_timestamp));
        put_varint(
            &mut out,
            self.last_timestamp.wrapping_sub(self.first_timestamp) as u64,
        );
        match crate::segment::as_decimal(self.last_value) {
            Some((e, m)) => {
                out.push(e);
                put_varint(&mut out, zigzag(m));
            }
            None => {
                out.push(CATALOG_VALUE_RAW);
                out.extend_from_slice(&self.last_value.to_le_bytes());
            }
        }
        put_varint(&mut out, self.count);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<CatalogRow> {
        use crate::segment::{get_varint, unzigzag};
        let tag = match bytes.first() {
            Some(&t @ (CATALOG_ROW_BINARY | CATALOG_ROW_DECIMAL)) => t,
            _ => return from_json(bytes, "catalog row"),
        };
        let bad = || StoreError::Corrupt("catalog row: malformed".into());
        let mut pos = 1;
        let varint = |pos: &mut usize| -> Result<u64> {
            let (v, used) = get_varint(bytes.get(*pos..).ok_or_else(bad)?).ok_or_else(bad)?;
            *pos += used;
            Ok(v)
        };
        let text = |pos: &mut usize, len: u64| -> Result<String> {
            let end = pos.checked_add(usize::try_from(len).map_err(|_| bad())?);
            let raw = bytes.get(*pos..end.ok_or_else(bad)?).ok_or_else(bad)?;
            *pos += raw.len();
            String::from_utf8(raw.to_vec()).map_err(|_| bad())
        };
        let len = varint(&mut pos)?;
        let metric_name = text(&mut pos, len)?;
        let has_unit = *bytes.get(pos).ok_or_else(bad)?;
        pos += 1;
        let unit = match has_unit {
            0 => None,
            1 => {
                let len = varint(&mut pos)?;
                Some(text(&mut pos, len)?)
            }
            _ => return Err(bad()),
        };
        let first_timestamp = unzigzag(varint(&mut pos)?);
        let last_timestamp = first_timestamp.wrapping_add(varint(&mut pos)? as i64);
        let raw_f64 = |pos: &mut usize| -> Result<f64> {
            let raw: [u8; 8] = bytes
                .get(*pos..*pos + 8)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?;
            *pos += 8;
            Ok(f64::from_le_bytes(raw))
        };
        let last_value = match tag {
            CATALOG_ROW_BINARY => raw_f64(&mut pos)?,
            _ => {
                let e = *bytes.get(pos).ok_or_else(bad)?;
                pos += 1;
                if e == CATALOG_VALUE_RAW {
                    raw_f64(&mut pos)?
                } else {
                    let m = unzigzag(varint(&mut pos)?);
                    crate::segment::from_decimal(e, m).ok_or_else(bad)?
                }
            }
        };
        let count = varint(&mut pos)?;
        if pos != bytes.len() {
            return Err(bad());
        }
        Ok(CatalogRow {
            metric_name,
            unit,
            first_timestamp,
            last_timestamp,
            last_value,
            count,
        })
    }
}

/// Called with (segment start key, segment bytes); returns whether to go on.
pub type SegmentVisitor<'a, E> = dyn FnMut(i64, &[u8]) -> Result<bool, E> + 'a;

/// What `Compaction::expire_segments` removed from one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Expiry {
    Nothing,
    /// Some segments went; `row` describes the ones left.
    Some {
        samples: u64,
        row: CatalogRow,
    },
    /// Every segment went, and the catalog row with them.
    All {
        samples: u64,
    },
}

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

    pub fn create_project(&self, p: &Project) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(PROJECTS)?;
            if t.get(p.id.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "project {} already exists",
                    p.id
                )));
            }
            t.insert(p.id.as_str(), to_json(p).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces an existing project record.
    pub fn put_project(&self, p: &Project) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(PROJECTS)?
            .insert(p.id.as_str(), to_json(p).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn projects(&self) -> Result<Vec<Project>> {
        self.all_json(PROJECTS)
    }

    pub fn project(&self, id: &str) -> Result<Option<Project>> {
        self.one_json(PROJECTS, id, "project")
    }

    pub fn webhooks(&self) -> Result<Vec<Webhook>> {
        self.all_json(WEBHOOKS)
    }

    pub fn webhook(&self, id: &str) -> Result<Option<Webhook>> {
        self.one_json(WEBHOOKS, id, "webhook")
    }

    fn one_json<T: for<'de> Deserialize<'de>>(
        &self,
        table: redb::TableDefinition<&str, &[u8]>,
        id: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(table)?;
        let out = match t.get(id)? {
            Some(v) => Some(from_json(v.value(), what)?),
            None => None,
        };
        Ok(out)
    }

    /// Writes a webhook, removes the `dead_keys` from the key table and adds `new_key`, in one
    /// transaction, so a rotated-out or revoked key stops working at the commit.
    pub fn put_webhook(
        &self,
        w: &Webhook,
        dead_keys: &[[u8; 32]],
        new_key: Option<&[u8; 32]>,
    ) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut hooks = txn.open_table(WEBHOOKS)?;
            hooks.insert(w.id.as_str(), to_json(w).as_slice())?;
            let mut keys = txn.open_table(API_KEYS)?;
            for k in dead_keys {
                keys.remove(k)?;
            }
            if let Some(k) = new_key {
                keys.insert(k, w.id.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every key's persisted usage, as `T` (the store does not interpret it).
    pub fn usage<T: for<'de> Deserialize<'de>>(&self) -> Result<Vec<(String, T)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(USAGE)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), from_json(v.value(), "usage record")?));
        }
        Ok(out)
    }

    /// Replaces the persisted usage of the given keys, in one transaction.
    pub fn put_usage<T: Serialize>(&self, rows: &[(String, T)]) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(USAGE)?;
            for (k, v) in rows {
                t.insert(k.as_str(), to_json(v).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every live key hash with its webhook id.
    pub fn api_keys(&self) -> Result<Vec<([u8; 32], String)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(API_KEYS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((*k.value(), v.value().to_owned()));
        }
        Ok(out)
    }

    /// The persisted catalog: what the segments hold, per (project, metricId).
    pub fn catalog(&self) -> Result<Vec<(String, String, CatalogRow)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(CATALOG)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (p, m) = k.value();
            out.push((p.to_owned(), m.to_owned(), CatalogRow::decode(v.value())?));
        }
        Ok(out)
    }

    /// Calls `visit(start_ms, bytes)` with every segment of `metric` that may hold samples in
    /// `[from_ms, to_ms]`, oldest first, until it returns `Ok(false)`. Segments of one metric
    /// never overlap in time, so the concatenation is one ordered stream. Decoding is the
    /// caller's: a query may answer from the header summary alone.
    pub fn scan_segments<E: From<StoreError>>(
        &self,
        project: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
        visit: &mut SegmentVisitor<'_, E>,
    ) -> Result<(), E> {
        if from_ms > to_ms {
            return Ok(());
        }
        let txn = self.db()?.begin_read().map_err(StoreError::from)?;
        // The metric's last segment, when it is in a tail pack, starts after every one in
        // `segments` (and so ends after them too).
        let tails = txn.open_table(TAILS).map_err(StoreError::from)?;
        let pack = tails::pack_for(&tails, project, metric)?;
        let tail = match &pack {
            Some(v) => tails::find(v.value(), metric)?.filter(|(start, _)| *start <= to_ms),
            None => None,
        };
        if let Some((start, bytes)) = tail.filter(|(start, _)| *start <= from_ms) {
            // Every other segment ends before the tail starts, so before `from_ms`.
            visit(start, bytes)?;
            return Ok(());
        }
        let t = txn.open_table(SEGMENTS).map_err(StoreError::from)?;
        // The segment starting at or before `from_ms` may reach into the range; every later
        // one starting by `to_ms` does.
        let first = t
            .range((project, metric, i64::MIN)..=(project, metric, from_ms))
            .map_err(StoreError::from)?
            .next_back();
        let rest = match from_ms {
            i64::MAX => None,
            _ => Some(
                t.range((project, metric, from_ms + 1)..=(project, metric, to_ms))
                    .map_err(StoreError::from)?,
            ),
        };
        for row in first.into_iter().chain(rest.into_iter().flatten()) {
            let (k, v) = row.map_err(StoreError::from)?;
            if !visit(k.value().2, v.value())? {
                return Ok(());
            }
        }
        if let Some((start, bytes)) = tail {
            visit(start, bytes)?;
        }
        Ok(())
    }

    /// Whether a segment of `metric` holds a sample at exactly `ts` (decodes at most one
    /// segment's timestamp column).
    pub fn contains(&self, project: &str, metric: &str, ts: i64) -> Result<bool> {
        let txn = self.db()?.begin_read()?;
        if let Some((start, bytes)) = tails::lookup(&txn.open_table(TAILS)?, project, metric)? {
            if start <= ts {
                return segment::contains_timestamp(&bytes, ts)
                    .map_err(|e| corrupt(project, metric, start, e));
            }
        }
        let t = txn.open_table(SEGMENTS)?;
        let last = t
            .range((project, metric, i64::MIN)..=(project, metric, ts))?
            .next_back();
        match last {
            None => Ok(false),
            Some(row) => {
                let (k, v) = row?;
                segment::contains_timestamp(v.value(), ts)
                    .map_err(|e| corrupt(project, metric, k.value().2, e))
            }
        }
    }

    /// Verifies the checksum of every segment; returns the (project, metric, start) of each
    /// damaged one with its error.
    pub fn check_segments(&self) -> Result<(u64, Vec<String>)> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SEGMENTS)?;
        let (mut checked, mut bad) = (0u64, Vec::new());
        for row in t.iter()? {
            let (k, v) = row?;
            checked += 1;
            if let Err(e) = segment::decode(v.value()) {
                let (p, m, s) = k.value();
                bad.push(corrupt(p, m, s, e).to_string());
            }
        }
        for row in txn.open_table(TAILS)?.iter()? {
            let (k, v) = row?;
            let (p, first) = k.value();
            match tails::decode(v.value()) {
                Err(e) => bad.push(format!("tail pack ({p}, {first}): {e}")),
                Ok(members) => {
                    for (m, s, bytes) in members {
                        checked += 1;
                        if let Err(e) = segment::decode(bytes) {
                            bad.push(corrupt(p, &m, s, e).to_string());
                        }
                    }
                }
            }
        }
        Ok((checked, bad))
    }

    /// Where the store's bytes go, table by table and, inside segments (in `segments` and
    /// in tail packs), part by part (`stathook check --sizes`).
    pub fn sizes(&self) -> Result<Sizes> {
        use redb::{ReadableTableMetadata, TableHandle};
        let txn = self.db()?.begin_read()?;
        let mut out = Sizes::default();
        let mut table = |name: &'static str, stats: redb::TableStats, rows: u64| {
            out.tables.push(TableSize {
                name,
                rows,
                stored_bytes: stats.stored_bytes(),
                in_pages: stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes(),
            });
        };
        macro_rules! plain_table {
            ($def:expr) => {{
                let t = txn.open_table($def)?;
                table($def.name(), t.stats()?, t.len()?);
            }};
        }
        plain_table!(META);
        plain_table!(PROJECTS);
        plain_table!(WEBHOOKS);
        plain_table!(API_KEYS);
        plain_table!(USAGE);
        plain_table!(CATALOG);
        let segments = txn.open_table(SEGMENTS)?;
        table(SEGMENTS.name(), segments.stats()?, segments.len()?);
        for row in segments.iter()? {
            let (k, v) = row?;
            let (p, m, s) = k.value();
            out.segments
                .add(v.value())
                .map_err(|e| corrupt(p, m, s, e))?;
        }
        let tails_table = txn.open_table(TAILS)?;
        table(TAILS.name(), tails_table.stats()?, tails_table.len()?);
        for row in tails_table.iter()? {
            let (k, v) = row?;
            let (p, _) = k.value();
            let members = tails::decode(v.value())?;
            let mut in_members = 0;
            for (m, s, bytes) in members {
                out.segments.add(bytes).map_err(|e| corrupt(p, &m, s, e))?;
                in_members += bytes.len() as u64;
            }
            out.tail_pack_framing += v.value().len() as u64 - in_members;
        }
        Ok(out)
    }

    /// A consistent, read-only view of the whole store as of now; later commits do not
    /// change it. `Snapshot::write_to` turns it into a backup file.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            txn: self.db()?.begin_read()?,
        })
    }

    /// Starts the one write transaction of a compaction round.
    pub fn begin_compaction(&self) -> Result<Compaction> {
        Ok(Compaction {
            txn: self.db()?.begin_write()?,
            tails: tails::TailRun::default(),
        })
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

/// What `Store::sizes` found.
#[derive(Clone, Debug, Default)]
pub struct Sizes {
    pub tables: Vec<TableSize>,
    /// Every segment, in `segments` and in tail packs.
    pub segments: segment::Layout,
    /// Tail pack bytes outside their member segments: pack header, metricIds, start times.
    pub tail_pack_framing: u64,
}

/// One redb table: its rows, the bytes of their keys and values, and the pages it takes.
#[derive(Clone, Debug)]
pub struct TableSize {
    pub name: &'static str,
    pub rows: u64,
    pub stored_bytes: u64,
    /// The bytes of its leaf and branch pages: keys and values, redb's page headers and
    /// branch entries, and the unused room in its pages.
    pub in_pages: u64,
}

/// A read transaction over the whole store (see `Store::snapshot`).
pub struct Snapshot {
    txn: redb::ReadTransaction,
}

/// What a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupStats {
    pub projects: u64,
    pub keys: u64,
    pub segments: u64,
    pub metrics: u64,
}

impl Snapshot {
    /// Writes every table of the snapshot into a new store file at `path` (which must not
    /// exist) and syncs it: a complete store file that `stathook serve` opens as its
    /// `stathook.redb`.
    pub fn write_to(&self, path: &Path) -> Result<BackupStats> {
        if path.exists() {
            return Err(StoreError::Conflict(format!(
                "{} already exists",
                path.display()
            )));
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        copy_table(&self.txn, &txn, META)?;
        let stats = BackupStats {
            projects: copy_table(&self.txn, &txn, PROJECTS)?,
            keys: copy_table(&self.txn, &txn, WEBHOOKS)?,
            segments: copy_table(&self.txn, &txn, SEGMENTS)? + count_tails(&self.txn)?,
            metrics: copy_table(&self.txn, &txn, CATALOG)?,
        };
        copy_table(&self.txn, &txn, TAILS)?;
        copy_table(&self.txn, &txn, API_KEYS)?;
        copy_table(&self.txn, &txn, USAGE)?;
        txn.commit()?;
        Ok(stats)
    }
}

/// How many tails the packs of a snapshot hold.
fn count_tails(txn: &redb::ReadTransaction) -> Result<u64> {
    let mut n = 0;
    for row in txn.open_table(TAILS)?.iter()? {
        n += tails::decode(row?.1.value())?.len() as u64;
    }
    Ok(n)
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    from: &redb::ReadTransaction,
    to: &WriteTransaction,
    table: redb::TableDefinition<K, V>,
) -> Result<u64> {
    let src = from.open_table(table)?;
    let mut dst = to.open_table(table)?;
    let mut rows = 0;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
        rows += 1;
    }
    Ok(rows)
}

/// One compaction round: segments, catalog rows and the watermark commit together
/// (ARCHITECTURE.md invariant 4), or not at all if this is dropped uncommitted.
///
/// Callers see one set of segments per metric; this places them: a metric's last segment
/// (the greatest start) in its project's tail packs, every earlier one in `segments`. A store
/// written by format 6 may still hold a metric's last segment in `segments` with no tail;
/// the first put after it moves it. Puts and removals for one metric come in ascending
/// start order, metrics in ascending (project, metric) order for packs to stay full.
pub struct Compaction {
    txn: WriteTransaction,
    tails: tails::TailRun,
}

impl Compaction {
    /// The metric's tail as this transaction has it: (start, bytes).
    fn tail(&mut self, project: &str, metric: &str) -> Result<Option<(i64, Vec<u8>)>> {
        let mut t = self.txn.open_table(TAILS)?;
        Ok(self
            .tails
            .get(&mut t, project, metric)?
            .map(|m| (m.start, m.bytes.clone())))
    }

    fn tail_start(&mut self, project: &str, metric: &str) -> Result<Option<i64>> {
        let mut t = self.txn.open_table(TAILS)?;
        Ok(self.tails.get(&mut t, project, metric)?.map(|m| m.start))
    }

    fn set_tail(
        &mut self,
        project: &str,
        metric: &str,
        tail: Option<(i64, Vec<u8>)>,
    ) -> Result<()> {
        let mut t = self.txn.open_table(TAILS)?;
        self.tails.set(&mut t, project, metric, tail)
    }

    /// Segments of `metric` that overlap `[from_ms, to_ms]`, as (start key, bytes), oldest
    /// first, plus the segment just before `from_ms` when `with_previous` is set.
    pub fn overlapping(
        &mut self,
        project: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
        with_previous: bool,
    ) -> Result<Vec<(i64, Vec<u8>)>> {
        let tail = self.tail(project, metric)?;
        let t = self.txn.open_table(SEGMENTS)?;
        let mut out = overlapping(&t, project, metric, from_ms, to_ms)?;
        if let Some((start, bytes)) = tail.filter(|(start, _)| *start <= to_ms) {
            let summary =
                segment::read_summary(&bytes).map_err(|e| corrupt(project, metric, start, e))?;
            if summary.max_ts >= from_ms {
                out.push((start, bytes));
            } else if with_previous {
                // The tail ends before `from_ms` and every other segment before it.
                return Ok(vec![(start, bytes)]);
            }
        }
        if with_previous {
            let before = out.first().map(|(s, _)| *s).unwrap_or(from_ms);
            if let Some(row) = t
                .range((project, metric, i64::MIN)..(project, metric, before))?
                .next_back()
            {
                let (k, v) = row?;
                out.insert(0, (k.value().2, v.value().to_vec()));
            }
        }
        Ok(out)
    }

    pub fn remove_segment(&mut self, project: &str, metric: &str, start_ms: i64) -> Result<()> {
        if self.tail_start(project, metric)? == Some(start_ms) {
            return self.set_tail(project, metric, None);
        }
        self.txn
            .open_table(SEGMENTS)?
            .remove((project, metric, start_ms))?;
        Ok(())
    }

    /// Puts a segment of `metric` starting at `start_ms`, replacing one with that start.
    pub fn put_segment(
        &mut self,
        project: &str,
        metric: &str,
        start_ms: i64,
        bytes: &[u8],
    ) -> Result<()> {
        let tail_start = self.tail_start(project, metric)?;
        // A later segment than the tail: the old tail becomes an ordinary one.
        let demoted = match tail_start {
            Some(start) if start_ms > start => self.tail(project, metric)?,
            _ => None,
        };
        let mut segments = self.txn.open_table(SEGMENTS)?;
        if let Some((start, old)) = demoted {
            segments.insert((project, metric, start), old.as_slice())?;
        }
        let last = match tail_start {
            Some(start) if start_ms < start => {
                segments.insert((project, metric, start_ms), bytes)?;
                return Ok(());
            }
            Some(_) => None,
            // No tail: the metric's last segment, if any, is in `segments` (format 6).
            None => match segments
                .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
                .next_back()
            {
                Some(row) => Some(row?.0.value().2),
                None => None,
            },
        };
        if last.is_some_and(|l| start_ms < l) {
            segments.insert((project, metric, start_ms), bytes)?;
            return Ok(());
        }
        if last == Some(start_ms) {
            segments.remove((project, metric, start_ms))?;
        }
        drop(segments);
        self.set_tail(project, metric, Some((start_ms, bytes.to_vec())))
    }

    pub fn catalog_row(&self, project: &str, metric: &str) -> Result<Option<CatalogRow>> {
        let t = self.txn.open_table(CATALOG)?;
        let out = match t.get((project, metric))? {
            Some(v) => Some(CatalogRow::decode(v.value())?),
            None => None,
        };
        Ok(out)
    }

    pub fn put_catalog_row(&mut self, project: &str, metric: &str, row: &CatalogRow) -> Result<()> {
        self.txn
            .open_table(CATALOG)?
            .insert((project, metric), row.encode().as_slice())?;
        Ok(())
    }

    /// Removes every segment and the catalog row of a metric; returns how many segments
    /// there were.
    pub fn remove_metric(&mut self, project: &str, metric: &str) -> Result<usize> {
        let tail = usize::from(self.tail_start(project, metric)?.is_some());
        self.set_tail(project, metric, None)?;
        let mut t = self.txn.open_table(SEGMENTS)?;
        let starts: Vec<i64> = t
            .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
            .map(|row| row.map(|(k, _)| k.value().2))
            .collect::<Result<_, _>>()?;
        for start in &starts {
            t.remove((project, metric, *start))?;
        }
        self.txn.open_table(CATALOG)?.remove((project, metric))?;
        Ok(starts.len() + tail)
    }

    /// Removes the metric's segments whose samples all precede `cutoff_ms` (whole segments
    /// only: a segment straddling the cutoff stays) and updates its catalog row, removing it
    /// when no segment is left.
    pub fn expire_segments(
        &mut self,
        project: &str,
        metric: &str,
        cutoff_ms: i64,
    ) -> Result<Expiry> {
        let tail = self.tail(project, metric)?;
        let mut t = self.txn.open_table(SEGMENTS)?;
        let mut gone: Vec<(i64, u64)> = Vec::new();
        let mut kept_one = false;
        for row in t.range((project, metric, i64::MIN)..(project, metric, cutoff_ms))? {
            let (k, v) = row?;
            let start = k.value().2;
            let summary =
                segment::read_summary(v.value()).map_err(|e| corrupt(project, metric, start, e))?;
            if summary.max_ts >= cutoff_ms {
                kept_one = true;
                break;
            }
            gone.push((start, u64::from(summary.count)));
        }
        for (start, _) in &gone {
            t.remove((project, metric, *start))?;
        }
        // The tail is the last segment: it can go only when every other one does.
        let mut tail_gone = false;
        if let Some((start, bytes)) = &tail {
            let summary =
                segment::read_summary(bytes).map_err(|e| corrupt(project, metric, *start, e))?;
            if !kept_one && summary.max_ts < cutoff_ms {
                tail_gone = true;
                gone.push((*start, u64::from(summary.count)));
            }
        }
        if gone.is_empty() {
            return Ok(Expiry::Nothing);
        }
        let removed: u64 = gone.iter().map(|(_, n)| n).sum();
        let next_first = match t
            .range((project, metric, i64::MIN)..=(project, metric, i64::MAX))?
            .next()
        {
            Some(row) => Some(row?.0.value().2),
            None if tail_gone => None,
            None => tail.as_ref().map(|(start, _)| *start),
        };
        drop(t);
        if tail_gone {
            self.set_tail(project, metric, None)?;
        }
        let mut catalog = self.txn.open_table(CATALOG)?;
        let row: Option<CatalogRow> = match catalog.get((project, metric))? {
            Some(v) => Some(CatalogRow::decode(v.value())?),
            None => None,
        };
        let Some(mut row) = row else {
            return Err(StoreError::Corrupt(format!(
                "({project}, {metric}) has segments but no catalog row"
            )));
        };
        match next_first {
            None => {
                catalog.remove((project, metric))?;
                Ok(Expiry::All { samples: removed })
            }
            Some(first) => {
                row.first_timestamp = first;
                row.count = row.count.saturating_sub(removed);
                catalog.insert((project, metric), to_json(&row).as_slice())?;
                Ok(Expiry::Some {
                    samples: removed,
                    row,
                })
            }
        }
    }

    /// Commits a deletion or expiry round durably, leaving the watermark as it is.
    pub fn commit_data_only(mut self) -> Result<()> {
        self.tails.flush(&mut self.txn.open_table(TAILS)?)?;
        self.txn.commit()?;
        Ok(())
    }

    /// Records that every journal generation up to `generation` is in the segments, and
    /// commits the round durably.
    pub fn commit(mut self, generation: u64) -> Result<()> {
        self.tails.flush(&mut self.txn.open_table(TAILS)?)?;
        self.txn
            .open_table(META)?
            .insert(META_WATERMARK, generation.to_le_bytes().as_slice())?;
        self.txn.commit()?;
        Ok(())
    }
}

fn overlapping(
    t: &impl ReadableTable<(&'static str, &'static str, i64), &'static [u8]>,
    project: &str,
    metric: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, Vec<u8>)>> {
    // Segments of one metric never overlap and are keyed by their first timestamp, so their
    // ends are sorted too: walk back from the last start <= to_ms until an end < from_ms.
    let mut out = Vec::new();
    for row in t
        .range((project, metric, i64::MIN)..=(project, metric, to_ms))?
        .rev()
    {
        let (k, v) = row?;
        let start = k.value().2;
        let bytes = v.value();
        let summary =
            segment::read_summary(bytes).map_err(|e| corrupt(project, metric, start, e))?;
        if summary.max_ts < from_ms {
            break;
        }
        out.push((start, bytes.to_vec()));
    }
    out.reverse();
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn catalog_rows_round_trip(
            metric_name in ".{0,40}",
            unit in proptest::option::of(".{0,10}"),
            first_timestamp in any::<i64>(),
            last_timestamp in any::<i64>(),
            last_value in prop_oneof![
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                (any::<i64>(), 0u32..12).prop_map(|(m, e)| (m >> (m % 60).unsigned_abs()) as f64 / 10f64.powi(e as i32)),
                Just(-0.0),
                Just(f64::MIN_POSITIVE),
            ],
            count in any::<u64>(),
        ) {
            let row = CatalogRow { metric_name, unit, first_timestamp, last_timestamp, last_value, count };
            let bytes = row.encode();
            let back = CatalogRow::decode(&bytes).unwrap();
            prop_assert_eq!(back.last_value.to_bits(), row.last_value.to_bits());
            prop_assert_eq!(&back, &row);
            // Rows of store formats 4–8 (the last value as f64) still read.
            let mut v1 = bytes.clone();
            v1[0] = CATALOG_ROW_BINARY;
            let at = v1.len() - crate::segment::varint_len(row.count) - decimal_len(row.last_value);
            v1.splice(at..at + decimal_len(row.last_value), row.last_value.to_le_bytes());
            prop_assert_eq!(CatalogRow::decode(&v1).unwrap().last_value.to_bits(), row.last_value.to_bits());
            // Rows written as JSON by format 3 still read (serde_json's float parsing is not
            // always bit-exact at the extremes, hence a plain value here; binary rows are).
            let plain = CatalogRow { last_value: 42.5, ..row };
            prop_assert_eq!(CatalogRow::decode(&to_json(&plain)).unwrap(), plain);
            // A cut-off row is refused, never misread.
            prop_assert!(CatalogRow::decode(&bytes[..bytes.len() - 1]).is_err());
        }
    }

    /// The bytes `encode` spends on a last value.
    fn decimal_len(v: f64) -> usize {
        match crate::segment::as_decimal(v) {
            Some((_, m)) => 1 + crate::segment::varint_len(crate::segment::zigzag(m)),
            None => 9,
        }
    }

    #[test]
    fn a_binary_row_is_a_fraction_of_the_json() {
        let row = CatalogRow {
            metric_name: "s12345".into(),
            unit: None,
            first_timestamp: 1_795_760_000_000,
            last_timestamp: 1_795_760_190_000,
            last_value: 12_345.67,
            count: 20,
        };
        assert!(
            row.encode().len() * 5 < to_json(&row).len(),
            "{:?}",
            row.encode()
        );
        // Tag, name (1 + 6), no unit (1), first timestamp (6), span (3), count (1), and
        // 12345.67 as 1234567 / 10^2 (exponent byte + 4-byte varint): 24, where an f64
        // last value made 27.
        assert_eq!(row.encode().len(), 24);
    }
}
