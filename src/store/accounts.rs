//! The admin records: projects (tier, retention), webhooks and read keys (their key hashes,
//! old keys in their grace period), and the per-key usage counters, as JSON rows in their
//! tables (`tables.rs`).

use super::tables::*;
use super::*;

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
    /// Metadata keys whose values become PromQL labels of this project's webhook metrics
    /// (`promql::metadata_labels`); empty (and absent in the record) by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_keys: Vec<String>,
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

impl Store {
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

    pub(super) fn one_json<T: for<'de> Deserialize<'de>>(
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

    /// Replaces every project, key record and live key with `projects`, `webhooks` and
    /// `live`, in one transaction: a follower's copy of its leader's (`service::follow`).
    pub fn replace_accounts(
        &self,
        projects: &[Project],
        webhooks: &[Webhook],
        live: &[([u8; 32], String)],
    ) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(PROJECTS)?;
            t.retain(|_, _| false)?;
            for p in projects {
                t.insert(p.id.as_str(), to_json(p).as_slice())?;
            }
            let mut t = txn.open_table(WEBHOOKS)?;
            t.retain(|_, _| false)?;
            for w in webhooks {
                t.insert(w.id.as_str(), to_json(w).as_slice())?;
            }
            let mut t = txn.open_table(API_KEYS)?;
            t.retain(|_, _| false)?;
            for (hash, id) in live {
                t.insert(hash, id.as_str())?;
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
}
