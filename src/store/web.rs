//! The web app's records: user accounts, sign-in sessions and dashboard share links (both by
//! the hash of their token) and dashboards, as JSON rows in their tables (`tables.rs`). The
//! store keeps them; it does not check passwords, expire sessions or validate widgets
//! (`service::sessions`, `web`).

use super::tables::*;
use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May do what the admin token can.
    Admin,
    /// May look at everything and change nothing.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub user: String,
    pub created_at: i64,
    /// Last request seen with it, written at most once a minute (`service::sessions`).
    pub last_seen_at: i64,
}

/// A read-only link to one dashboard, found by the hash of its token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Public id (`sh_…`), to list and revoke it by.
    pub id: String,
    pub project: String,
    pub dashboard: String,
    /// The token's first characters, to tell links apart in a list.
    pub token_prefix: String,
    pub created_at: i64,
}

impl Store {
    pub fn users(&self) -> Result<Vec<User>> {
        self.all_json(USERS)
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.one_json(USERS, name, "user")
    }

    /// Adds a user; a Conflict if the name is taken.
    pub fn create_user(&self, u: &User) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(USERS)?;
            if t.get(u.name.as_str())?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "user {:?} already exists",
                    u.name
                )));
            }
            t.insert(u.name.as_str(), to_json(u).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Replaces a user's record (a new password or role) and ends the given sessions, in one
    /// transaction.
    pub fn put_user(&self, u: &User, ended_sessions: &[[u8; 32]]) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            txn.open_table(USERS)?
                .insert(u.name.as_str(), to_json(u).as_slice())?;
            let mut s = txn.open_table(SESSIONS)?;
            for h in ended_sessions {
                s.remove(h)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Removes a user and the given sessions (theirs) in one transaction; false if absent.
    pub fn remove_user(&self, name: &str, sessions: &[[u8; 32]]) -> Result<bool> {
        let txn = self.db()?.begin_write()?;
        let existed = {
            let existed = txn.open_table(USERS)?.remove(name)?.is_some();
            let mut s = txn.open_table(SESSIONS)?;
            for h in sessions {
                s.remove(h)?;
            }
            existed
        };
        txn.commit()?;
        Ok(existed)
    }

    pub fn sessions(&self) -> Result<Vec<([u8; 32], Session)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SESSIONS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((*k.value(), from_json(v.value(), "session")?));
        }
        Ok(out)
    }

    /// Writes sessions and removes others, in one transaction.
    pub fn put_sessions(&self, put: &[([u8; 32], Session)], remove: &[[u8; 32]]) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        {
            let mut t = txn.open_table(SESSIONS)?;
            for (h, s) in put {
                t.insert(h, to_json(s).as_slice())?;
            }
            for h in remove {
                t.remove(h)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// A project's dashboards, as `T` (the store does not interpret them), by id.
    pub fn dashboards<T: for<'de> Deserialize<'de>>(&self, project: &str) -> Result<Vec<T>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(DASHBOARDS)?;
        let mut out = Vec::new();
        for row in t.range((project, "")..)? {
            let (k, v) = row?;
            if k.value().0 != project {
                break;
            }
            out.push(from_json(v.value(), "dashboard")?);
        }
        Ok(out)
    }

    pub fn dashboard<T: for<'de> Deserialize<'de>>(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<T>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(DASHBOARDS)?;
        let out = match t.get((project, id))? {
            Some(v) => Some(from_json(v.value(), "dashboard")?),
            None => None,
        };
        Ok(out)
    }

    pub fn put_dashboard<T: Serialize>(&self, project: &str, id: &str, d: &T) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(DASHBOARDS)?
            .insert((project, id), to_json(d).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Removes a dashboard and its share links in one transaction; false if there was no
    /// such dashboard.
    pub fn remove_dashboard(&self, project: &str, id: &str) -> Result<bool> {
        let txn = self.db()?.begin_write()?;
        let existed = txn.open_table(DASHBOARDS)?.remove((project, id))?.is_some();
        {
            let mut t = txn.open_table(SHARES)?;
            let links = matching_shares(&t, |s| s.project == project && s.dashboard == id)?;
            for h in &links {
                t.remove(h)?;
            }
        }
        txn.commit()?;
        Ok(existed)
    }

    /// Every share link, with the hash of its token. Few (made by hand), so scanned.
    pub fn shares(&self) -> Result<Vec<([u8; 32], Share)>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SHARES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((*k.value(), from_json(v.value(), "share link")?));
        }
        Ok(out)
    }

    pub fn share(&self, token_hash: &[u8; 32]) -> Result<Option<Share>> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(SHARES)?;
        let out = match t.get(token_hash)? {
            Some(v) => Some(from_json(v.value(), "share link")?),
            None => None,
        };
        Ok(out)
    }

    pub fn put_share(&self, token_hash: &[u8; 32], s: &Share) -> Result<()> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(SHARES)?
            .insert(token_hash, to_json(s).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Revokes a dashboard's link by its public id; false if it has no such link.
    pub fn remove_share(&self, project: &str, dashboard: &str, id: &str) -> Result<bool> {
        let txn = self.db()?.begin_write()?;
        let found = {
            let mut t = txn.open_table(SHARES)?;
            let links = matching_shares(&t, |s| {
                s.project == project && s.dashboard == dashboard && s.id == id
            })?;
            for h in &links {
                t.remove(h)?;
            }
            !links.is_empty()
        };
        txn.commit()?;
        Ok(found)
    }
}

/// The token hashes of the links `keep` picks, read in the caller's write transaction.
fn matching_shares(
    t: &redb::Table<&[u8; 32], &[u8]>,
    keep: impl Fn(&Share) -> bool,
) -> Result<Vec<[u8; 32]>> {
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let s: Share = from_json(v.value(), "share link")?;
        if keep(&s) {
            out.push(*k.value());
        }
    }
    Ok(out)
}
