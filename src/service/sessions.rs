//! User accounts and sign-in sessions. A session is a random token handed to the browser
//! in a cookie and kept here (and in the store) only as its blake3 hash; it ends after
//! `idle_ms` without a request, after `max_age_ms` whatever happens, at sign-out, and when
//! its user is removed or changes password or role. Passwords go through `auth::password`.
//! No HTTP here: `http/session.rs` speaks cookies and statuses.

use crate::auth::{self, password};
use crate::store::{Role, Session, Store, StoreError, User};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Prefix of session tokens (never shown: they live in an HttpOnly cookie).
pub const SESSION_TOKEN_PREFIX: &str = "shs_";
/// A session's last-seen time is written to the store at most this often.
const SEEN_WRITE_INTERVAL_MS: i64 = 60_000;
pub const MAX_USER_NAME_CHARS: usize = 64;

/// Who a live session belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedIn {
    pub user: String,
    pub role: Role,
}

#[derive(Debug)]
pub enum SessionError {
    /// Bad input: names the field.
    Invalid(String),
    /// Wrong user name or password (one message for both).
    WrongCredentials,
    NotFound(String),
    Store(StoreError),
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        SessionError::Store(e)
    }
}

struct Live {
    session: Session,
    role: Role,
    /// `last_seen_at` as last written to the store.
    stored_seen_at: i64,
}

pub struct Sessions {
    store: Arc<Store>,
    live: Mutex<HashMap<[u8; 32], Live>>,
    pub idle_ms: i64,
    pub max_age_ms: i64,
}

impl Sessions {
    /// Loads the stored sessions, dropping those that ended while the server was down.
    pub fn open(
        store: Arc<Store>,
        idle_ms: i64,
        max_age_ms: i64,
        now_ms: i64,
    ) -> Result<Sessions, StoreError> {
        let roles: HashMap<String, Role> = store
            .users()?
            .into_iter()
            .map(|u| (u.name, u.role))
            .collect();
        let mut live = HashMap::new();
        let mut ended = Vec::new();
        for (hash, session) in store.sessions()? {
            match roles.get(&session.user) {
                Some(&role) if !ended_at(&session, now_ms, idle_ms, max_age_ms) => {
                    let stored_seen_at = session.last_seen_at;
                    live.insert(
                        hash,
                        Live {
                            session,
                            role,
                            stored_seen_at,
                        },
                    );
                }
                _ => ended.push(hash),
            }
        }
        if !ended.is_empty() {
            store.put_sessions(&[], &ended)?;
        }
        Ok(Sessions {
            store,
            live: Mutex::new(live),
            idle_ms,
            max_age_ms,
        })
    }

    /// True once any account exists (before that, the sign-in page offers to create the
    /// first one with the admin token).
    pub fn has_users(&self) -> Result<bool, StoreError> {
        Ok(!self.store.users()?.is_empty())
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.store.users()
    }

    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        password_text: &str,
        now_ms: i64,
    ) -> Result<User, SessionError> {
        check_user_name(name)?;
        if let Some(why) = password::weakness(password_text) {
            return Err(SessionError::Invalid(why));
        }
        let user = User {
            name: name.to_owned(),
            role,
            password_hash: password::hash(password_text),
            created_at: now_ms,
        };
        self.store.create_user(&user)?;
        Ok(user)
    }

    /// Removes a user and ends their sessions.
    pub fn remove_user(&self, name: &str) -> Result<(), SessionError> {
        let mut live = self.live.lock();
        let theirs: Vec<[u8; 32]> = live
            .iter()
            .filter(|(_, l)| l.session.user == name)
            .map(|(h, _)| *h)
            .collect();
        if !self.store.remove_user(name, &theirs)? {
            return Err(SessionError::NotFound(format!("no user named {name:?}")));
        }
        for h in &theirs {
            live.remove(h);
        }
        Ok(())
    }

    /// Checks the password and opens a session; returns its token (to put in the cookie).
    pub fn sign_in(
        &self,
        name: &str,
        password_text: &str,
        now_ms: i64,
    ) -> Result<(String, SignedIn), SessionError> {
        let user = if password_text.len() > password::MAX_PASSWORD_BYTES {
            None
        } else {
            self.store.user(name)?
        };
        let Some(user) = user else {
            // Same work as a wrong password, so timing does not tell which names exist.
            password::verify(password_text, password::decoy_hash());
            return Err(SessionError::WrongCredentials);
        };
        if !password::verify(password_text, &user.password_hash) {
            return Err(SessionError::WrongCredentials);
        }
        let token = auth::new_secret(SESSION_TOKEN_PREFIX);
        let hash = auth::hash_secret(&token);
        let session = Session {
            user: user.name.clone(),
            created_at: now_ms,
            last_seen_at: now_ms,
        };
        self.store.put_sessions(&[(hash, session.clone())], &[])?;
        self.live.lock().insert(
            hash,
            Live {
                session,
                role: user.role,
                stored_seen_at: now_ms,
            },
        );
        Ok((
            token,
            SignedIn {
                user: user.name,
                role: user.role,
            },
        ))
    }

    /// The session's owner, if `token` names a live one; counts as activity.
    pub fn lookup(&self, token: &str, now_ms: i64) -> Option<SignedIn> {
        let hash = auth::hash_secret(token);
        let mut live = self.live.lock();
        let l = live.get_mut(&hash)?;
        if ended_at(&l.session, now_ms, self.idle_ms, self.max_age_ms) {
            live.remove(&hash);
            drop(live);
            if let Err(e) = self.store.put_sessions(&[], &[hash]) {
                tracing::warn!(error = %e, "could not remove an ended session from the store");
            }
            return None;
        }
        l.session.last_seen_at = now_ms;
        let who = SignedIn {
            user: l.session.user.clone(),
            role: l.role,
        };
        if now_ms - l.stored_seen_at >= SEEN_WRITE_INTERVAL_MS {
            l.stored_seen_at = now_ms;
            let row = (hash, l.session.clone());
            drop(live);
            // Only the idle clock across restarts depends on it: a failed write is logged.
            if let Err(e) = self.store.put_sessions(&[row], &[]) {
                tracing::warn!(error = %e, "could not save a session's last use");
            }
        }
        Some(who)
    }

    /// Ends the session of `token` (nothing if it has already ended).
    pub fn sign_out(&self, token: &str) -> Result<(), StoreError> {
        let hash = auth::hash_secret(token);
        if self.live.lock().remove(&hash).is_some() {
            self.store.put_sessions(&[], &[hash])?;
        }
        Ok(())
    }
}

fn ended_at(s: &Session, now_ms: i64, idle_ms: i64, max_age_ms: i64) -> bool {
    now_ms - s.last_seen_at > idle_ms || now_ms - s.created_at > max_age_ms
}

/// 1–64 characters of letters, digits and `. _ @ -`: safe in a URL, a log line and a page.
fn check_user_name(name: &str) -> Result<(), SessionError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_USER_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        Err(SessionError::Invalid(format!(
            "name must be 1 to {MAX_USER_NAME_CHARS} letters, digits or . _ @ -"
        )))
    }
}
