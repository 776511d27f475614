//! Wiring and shutdown order. Open: data dir → store (format check) → admin token →
//! key index → journal (recover) → compactor. Run: HTTP until the shutdown signal. Close:
//! HTTP drains → compactor's last round → journal writers stop (the empty generation's file
//! removed) → usage saved → store file compacted (if small enough) → store closes.

use crate::auth::ratelimit::{AuthFailures, RateLimiter};
use crate::auth::usage::UsageTracker;
use crate::auth::{self, KeyIndex, KeyOwner, RetiredKey};
use crate::compact::{self, CompactorHandle};
use crate::config::Config;
use crate::journal::{Journal, RecoveryReport};
use crate::memtable::Memtable;
use crate::store::Store;
use crate::store::Webhook;
use parking_lot::Mutex;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Everything a request handler can reach.
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub journal: Arc<Journal>,
    pub memtable: Arc<Memtable>,
    pub keys: KeyIndex,
    pub limiter: RateLimiter,
    pub auth_failures: AuthFailures,
    pub usage: UsageTracker,
    /// Set when serving HTTPS (`--tls-cert`/`--tls-key`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub admin_token_hash: [u8; 32],
    compactor: Mutex<Option<CompactorHandle>>,
    /// Held by each compaction round, deletion and retention sweep: they never interleave.
    rounds: Arc<Mutex<()>>,
}

#[derive(Debug)]
pub struct AppError(pub String);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

fn err(context: &str, e: impl std::fmt::Display) -> AppError {
    AppError(format!("{context}: {e}"))
}

impl App {
    /// Opens (or creates) the data dir and recovers the journal.
    pub fn open(config: Config) -> Result<(Arc<App>, RecoveryReport), AppError> {
        // First, so a bad certificate stops the start before anything is touched.
        let tls = match &config.tls {
            Some((cert, key)) => Some(crate::http::tls::acceptor(cert, key).map_err(AppError)?),
            None => None,
        };
        fs::create_dir_all(&config.data_dir)
            .map_err(|e| err(&format!("create data dir {}", config.data_dir.display()), e))?;
        // Only the server's user reads the data: samples, key hashes, the admin token file.
        owner_only(&config.data_dir, 0o700)?;
        let store = Arc::new(
            Store::open_with_cache(&config.store_path(), config.cache_bytes)
                .map_err(|e| err(&format!("open {}", config.store_path().display()), e))?,
        );
        owner_only(&config.store_path(), 0o600)?;
        let admin_token_hash = ensure_admin_token(&config, &store)?;
        // A backup interrupted by a crash leaves its half-written copy here.
        let _ = fs::remove_dir_all(config.backup_tmp_dir());

        let webhooks = store.webhooks().map_err(|e| err("read webhooks", e))?;
        let live = store.api_keys().map_err(|e| err("read API keys", e))?;
        let keys = key_index(&webhooks, live);
        let usage = UsageTracker::load(store.usage().map_err(|e| err("read key usage", e))?);

        let limiter = RateLimiter::new(config.tier_limits);
        for p in store.projects().map_err(|e| err("read projects", e))? {
            limiter.set_tier(&p.id, p.tier);
        }

        let memtable = Arc::new(Memtable::new(crate::journal::SHARDS, 0));
        let (journal, report) = Journal::open(
            &config.journal_dir(),
            store.clone(),
            memtable.clone(),
            config.fsync,
        )
        .map_err(|e| err("open journal", e))?;
        let journal = Arc::new(journal);
        let rounds = Arc::new(Mutex::new(()));
        let (cutoff_store, default_retention) = (store.clone(), config.retention_ms);
        let compactor = compact::spawn(
            store.clone(),
            journal.clone(),
            memtable.clone(),
            rounds.clone(),
            compact::Schedule {
                interval: config.compact_interval,
                max_pending: config.compact_max_pending,
                expire_interval: config.expire_interval,
                cutoff: Box::new(move |project, now| {
                    retention_ms(&cutoff_store, default_retention, project).map(|r| now - r)
                }),
            },
        );
        let auth_failures = AuthFailures::new(
            config.auth_failures_per_minute,
            config.auth_cooldown.as_millis() as i64,
        );
        let app = App {
            config,
            store,
            journal,
            memtable,
            keys,
            limiter,
            auth_failures,
            usage,
            tls,
            admin_token_hash,
            compactor: Mutex::new(Some(compactor)),
            rounds,
        };
        Ok((Arc::new(app), report))
    }

    /// Runs one compaction round now (tests and the admin API use it).
    pub fn compact_now(&self) -> Result<crate::compact::CompactStats, String> {
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
    pub fn backup_to(&self, path: &std::path::Path) -> Result<crate::store::BackupStats, String> {
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
        let (store, default) = (&self.store, self.config.retention_ms);
        compact::expire_once(store, &self.memtable, &|p| {
            retention_ms(store, default, p).map(|r| now_ms - r)
        })
    }

    /// Flushes everything to the store and stops the background threads.
    pub fn close(&self) {
        if let Some(c) = self.compactor.lock().take() {
            c.stop();
        }
        self.journal.stop();
        self.flush_usage();
        match self
            .store
            .compact_file(self.config.compact_on_close_max_bytes)
        {
            Ok(Some((before, after))) => {
                tracing::info!(before, after, "store file compacted at shutdown")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not compact the store file at shutdown"),
        }
    }

    /// Writes every key's usage counters to the store.
    pub fn flush_usage(&self) {
        if let Err(e) = self.store.put_usage(&self.usage.snapshot()) {
            tracing::warn!(error = %e, "could not save key usage counters; retrying later");
        }
    }

    /// Logs every active key older than `--max-key-age`; returns how many there are.
    pub fn warn_old_keys(&self, now_ms: i64) -> usize {
        let Some(max) = self.config.max_key_age_ms else {
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

/// Sets `path`'s permission bits (the data dir 0700, files 0600). A data dir this user may
/// write but not chmod (a mounted volume) still works: that is logged, not fatal.
fn owner_only(path: &std::path::Path, mode: u32) -> Result<(), AppError> {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "could not restrict permissions");
    }
    Ok(())
}

/// A project's retention in ms: its own setting, else the server default; None = forever.
fn retention_ms(store: &Store, default: Option<i64>, project: &str) -> Option<i64> {
    match store
        .project(project)
        .ok()
        .flatten()
        .and_then(|p| p.retention)
    {
        Some(setting) => crate::config::parse_retention(&setting).unwrap_or(default),
        None => default,
    }
}

/// Creates the admin token on first start: written once to `DATA_DIR/admin-token` (0600),
/// stored only as a hash. Later starts keep the existing hash.
fn ensure_admin_token(config: &Config, store: &Store) -> Result<[u8; 32], AppError> {
    if let Some(h) = store
        .admin_token_hash()
        .map_err(|e| err("read admin token hash", e))?
    {
        return Ok(h);
    }
    let hash = write_new_admin_token(config, store)?;
    tracing::info!(path = %config.admin_token_path().display(), "created the admin token (shown only in that file)");
    Ok(hash)
}

/// Generates an admin token, writes it to `DATA_DIR/admin-token` (0600, synced), then stores
/// its hash, replacing any earlier token. Used on first start and by `stathook admin-token
/// reset` (server stopped) when the file was lost.
pub fn write_new_admin_token(config: &Config, store: &Store) -> Result<[u8; 32], AppError> {
    let token = auth::new_secret(auth::ADMIN_TOKEN_PREFIX);
    let path = config.admin_token_path();
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&path)
        .map_err(|e| err(&format!("write {}", path.display()), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| err("chmod admin-token", e))?;
    }
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| err("write admin-token", e))?;
    let hash = auth::hash_secret(&token);
    store
        .set_admin_token_hash(&hash)
        .map_err(|e| err("store admin token hash", e))?;
    Ok(hash)
}

/// Builds the key index: live keys from the key table (a rotated-out key only until its
/// grace ends), retired ones from each webhook's old keys.
fn key_index(webhooks: &[Webhook], live: Vec<([u8; 32], String)>) -> KeyIndex {
    let keys = KeyIndex::default();
    for w in webhooks {
        for k in &w.old_keys {
            if let Some(h) = auth::unhex32(&k.key_hash) {
                let retired = RetiredKey {
                    webhook_id: w.id.clone(),
                    key_prefix: k.key_prefix.clone(),
                    reason: k.reason.clone(),
                };
                keys.retire(h, retired);
            }
        }
    }
    for (hash, webhook_id) in live {
        let Some(w) = webhooks.iter().find(|w| w.id == webhook_id) else {
            continue;
        };
        let owner = KeyOwner {
            webhook_id,
            project_id: w.project_id.clone(),
            scope: w.scope,
        };
        let hex = auth::hex(&hash);
        if hex == w.key_hash {
            keys.insert(hash, owner);
        } else if let Some(k) = w.old_keys.iter().find(|k| k.key_hash == hex) {
            keys.insert_until(hash, owner, Some(k.valid_until), k.key_prefix.clone());
        }
    }
    keys
}

/// Every `usage_flush_interval`: saves key usage; every hour: warns about old keys.
async fn housekeeping(app: Arc<App>) {
    const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut flush = tokio::time::interval(app.config.usage_flush_interval);
    let mut old_keys = tokio::time::interval(HOUR);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                let a = app.clone();
                let _ = tokio::task::spawn_blocking(move || a.flush_usage()).await;
            }
            _ = old_keys.tick() => {
                let a = app.clone();
                let _ = tokio::task::spawn_blocking(move || a.warn_old_keys(crate::clock::now_ms())).await;
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes in order.
pub async fn run(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let chores = tokio::spawn(housekeeping(app.clone()));
    crate::http::serve(listener, app.clone(), shutdown).await;
    chores.abort();
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || a.close()).await;
    tracing::info!("stopped cleanly");
}
