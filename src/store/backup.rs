//! Backups: a redb read transaction (`Snapshot`) copied table by table into a new file, so
//! a consistent copy is taken while the server keeps ingesting.

use super::tables::*;
use super::*;

impl Store {
    /// A consistent, read-only view of the whole store as of now; later commits do not
    /// change it. `Snapshot::write_to` turns it into a backup file.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            txn: self.db()?.begin_read()?,
        })
    }
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
        copy_table(&self.txn, &txn, USERS)?;
        copy_table(&self.txn, &txn, DASHBOARDS)?;
        copy_table(&self.txn, &txn, SHARES)?;
        copy_table(&self.txn, &txn, ALERT_RULES)?;
        copy_table(&self.txn, &txn, ALERT_STATES)?;
        copy_table(&self.txn, &txn, CHANNELS)?;
        copy_table(&self.txn, &txn, OUTBOX)?;
        copy_table(&self.txn, &txn, DELIVERY_LOG)?;
        // Sessions are not copied: whoever restores a backup signs in again.
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
