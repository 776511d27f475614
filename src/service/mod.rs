//! The services request handlers are given: narrow, cheaply cloned handles over the running
//! parts (store, journal, memtable, key index, usage counters, rate limits), built by `app`
//! and used by `http` (and the coming web app, alerts and Prometheus API). Each handler takes
//! the one service it needs, never the whole server. Below `http` and above the storage
//! engine: nothing here parses HTTP or picks a status; `app` owns the parts' lifetimes.

mod alerts;
mod changes;
mod delivery;
pub mod follow;
mod maintenance;
mod sessions;

pub use alerts::{run_evaluator, tier_has_alerts, Alerts, RoundStats};
pub use changes::{ChangeFeed, ProjectFeed, Subscription};
pub use delivery::{failing, run_delivery, Attempt, OutboxItem};
pub use maintenance::Maintenance;
pub use sessions::{SessionError, Sessions, SignedIn};

use crate::auth::ratelimit::{AuthFailures, RateLimiter};
use crate::auth::usage::UsageTracker;
use crate::auth::KeyIndex;
use crate::journal::Journal;
use crate::memtable::Memtable;
use crate::store::{Store, Tier, Webhook};
use std::sync::Arc;

/// Every service, as `app` hands them to `http`.
pub struct Services {
    pub credentials: Credentials,
    /// Failed authentications (and refused bodies) per client address.
    pub auth_failures: Arc<AuthFailures>,
    pub ingest: Ingest,
    pub reader: Reader,
    pub accounts: Accounts,
    pub maintenance: Maintenance,
    pub dashboards: Dashboards,
    pub alerts: Alerts,
    /// Forwarding to remote-write targets, when `--forward` is given.
    pub forwarder: Option<Arc<crate::forward::Forwarder>>,
    /// The leader this node copies its projects and keys from (`--follow`); such a node
    /// refuses to create or change them itself.
    pub following: Option<String>,
}

/// The projects' dashboards (stored as `web::dashboard::Dashboard` JSON).
#[derive(Clone)]
pub struct Dashboards {
    pub store: Arc<Store>,
}

/// What a presented secret is checked against: the admin token's hash, the key index and
/// the sign-in sessions.
#[derive(Clone)]
pub struct Credentials {
    pub admin_token_hash: [u8; 32],
    pub keys: Arc<KeyIndex>,
    pub sessions: Arc<Sessions>,
    /// The session cookie's name (it depends on whether the server speaks TLS).
    pub session_cookie: &'static str,
}

/// The webhook's path: key lookup, rate limits, usage counts, the journal append.
#[derive(Clone)]
pub struct Ingest {
    pub keys: Arc<KeyIndex>,
    pub limiter: Arc<RateLimiter>,
    pub usage: Arc<UsageTracker>,
    pub journal: Arc<Journal>,
    /// Asked only for the samples waiting for compaction (the back-pressure check).
    pub memtable: Arc<Memtable>,
    /// Past this many samples waiting for compaction, a webhook request gets 503.
    pub max_pending_samples: usize,
    /// A push that would give a project more metrics than this is refused.
    pub max_series_per_project: usize,
    /// Told which metrics each acknowledged request wrote (live pages listen).
    pub changes: Arc<ChangeFeed>,
}

/// Reads: the project records, the live catalog and queries over segments + journal tail.
/// Every read first waits for the journal's applier (`Journal::wait_applied`).
#[derive(Clone)]
pub struct Reader {
    pub store: Arc<Store>,
    pub journal: Arc<Journal>,
    pub memtable: Arc<Memtable>,
    /// Where live pages subscribe to change notices.
    pub changes: Arc<ChangeFeed>,
}

/// The admin records: projects, webhooks and keys (the store and the key index kept in
/// step), tiers (the rate limiter follows them), usage counters, and the settings their
/// answers depend on.
#[derive(Clone)]
pub struct Accounts {
    pub store: Arc<Store>,
    pub keys: Arc<KeyIndex>,
    pub limiter: Arc<RateLimiter>,
    pub usage: Arc<UsageTracker>,
    /// Tier of a project created without one (`--default-tier`).
    pub default_tier: Tier,
    /// Base of the printed webhook URL (`--public-url`).
    pub public_url: String,
    /// `--max-key-age`: keys older than that are flagged and logged.
    pub max_key_age_ms: Option<i64>,
}

impl Accounts {
    /// Writes every key's usage counters to the store.
    pub fn flush_usage(&self) {
        if let Err(e) = self.store.put_usage(&self.usage.snapshot()) {
            tracing::warn!(error = %e, "could not save key usage counters; retrying later");
        }
    }

    /// Logs every active key older than `--max-key-age`; returns how many there are.
    pub fn warn_old_keys(&self, now_ms: i64) -> usize {
        let Some(max) = self.max_key_age_ms else {
            return 0;
        };
        let Ok(webhooks) = self.store.webhooks() else {
            return 0;
        };
        let old: Vec<&Webhook> = webhooks
            .iter()
            .filter(|w| w.revoked_at.is_none() && now_ms - w.key_created_at > max)
            .collect();
        for w in &old {
            tracing::warn!(key_id = %w.id, project = %w.project_id, key_prefix = %w.key_prefix,
                age_days = (now_ms - w.key_created_at) / 86_400_000,
                "API key is older than --max-key-age; rotate it with 'stathook key rotate --webhook {} --grace 1h'", w.id);
        }
        old.len()
    }
}
