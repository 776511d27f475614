//! Wiring and shutdown order. Open: data dir → store (format check) → admin token →
//! key index → journal (recover) → compactor. Run: HTTP until the shutdown signal. Close:
//! HTTP drains → compactor's last round → journal writers stop (the empty generation's file
//! removed) → usage saved → store file compacted (if small enough) → store closes.

use crate::auth;
use crate::auth::ratelimit::{AuthFailures, RateLimiter};
use crate::auth::usage::UsageTracker;
use crate::compact::{self, CompactorHandle};
use crate::config::Config;
use crate::http;
use crate::journal::{Journal, RecoveryReport};
use crate::memtable::Memtable;
use crate::service::{
    Accounts, Alerts, ChangeFeed, Credentials, Dashboards, Ingest, Maintenance, Reader, Services,
    Sessions,
};
use crate::store::Store;
use parking_lot::Mutex;
use std::fs;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The running server: its configuration, the services handlers use, and the background
/// threads whose lifetimes it owns.
pub struct App {
    pub config: Config,
    pub services: Arc<Services>,
    pub store: Arc<Store>,
    pub journal: Arc<Journal>,
    pub memtable: Arc<Memtable>,
    /// Set when serving HTTPS (`--tls-cert`/`--tls-key`).
    tls: Option<tokio_rustls::TlsAcceptor>,
    compactor: Mutex<Option<CompactorHandle>>,
    /// Forwarding to remote-write targets (`--forward`), when configured.
    pub forwarder: Option<Arc<crate::forward::Forwarder>>,
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
        let keys = Arc::new(auth::key_index(&webhooks, live));
        let usage = Arc::new(UsageTracker::load(
            store.usage().map_err(|e| err("read key usage", e))?,
        ));

        let limiter = Arc::new(RateLimiter::new(config.tier_limits));
        for p in store.projects().map_err(|e| err("read projects", e))? {
            limiter.set_tier(&p.id, p.tier);
        }

        let memtable = Arc::new(Memtable::new(crate::journal::SHARDS, 0));
        let keep_from = crate::forward::keep_from(&store, &config.forward).map_err(AppError)?;
        let (journal, report) = Journal::open_keeping(
            &config.journal_dir(),
            store.clone(),
            memtable.clone(),
            config.fsync,
            keep_from,
        )
        .map_err(|e| err("open journal", e))?;
        let journal = Arc::new(journal);
        let forwarder = match config.forward.is_empty() {
            true => None,
            false => Some(
                crate::forward::Forwarder::start(
                    crate::forward::ForwardConfig {
                        targets: config.forward.clone(),
                        max_backlog_bytes: config
                            .forward_max_backlog
                            .unwrap_or_else(|| free_disk_bytes(&config.data_dir) / 10),
                        max_batch_samples: crate::forward::MAX_BATCH_SAMPLES,
                        max_batch_bytes: crate::forward::MAX_BATCH_BYTES,
                    },
                    journal.clone(),
                    store.clone(),
                )
                .map_err(|e| err("start forwarding", e))?,
            ),
        };
        let maintenance = Maintenance {
            store: store.clone(),
            journal: journal.clone(),
            memtable: memtable.clone(),
            rounds: Arc::new(Mutex::new(())),
            default_retention_ms: config.retention_ms,
            backup_tmp_dir: config.backup_tmp_dir(),
        };
        let sweeps = maintenance.clone();
        let compactor = compact::spawn(
            store.clone(),
            journal.clone(),
            memtable.clone(),
            maintenance.rounds.clone(),
            compact::Schedule {
                interval: config.compact_interval,
                max_pending: config.compact_max_pending,
                expire_interval: config.expire_interval,
                cutoff: Box::new(move |project, now| sweeps.cutoff_ms(project, now)),
            },
        );
        let sessions = Arc::new(
            Sessions::open(
                store.clone(),
                config.session_idle.as_millis() as i64,
                crate::config::MAX_SESSION_AGE.as_millis() as i64,
                crate::clock::now_ms(),
            )
            .map_err(|e| AppError(format!("could not load the sign-in sessions: {e}")))?,
        );
        let changes = Arc::new(ChangeFeed::default());
        let reader = Reader {
            store: store.clone(),
            journal: journal.clone(),
            memtable: memtable.clone(),
            changes: changes.clone(),
        };
        let allow = crate::outbound::guard::AllowList::parse(&config.alert_allow_hosts)
            .map_err(AppError)?;
        let alerts = Alerts::open(
            store.clone(),
            reader.clone(),
            crate::outbound::Outbound::new(allow),
            config.public_url.clone(),
        )
        .map_err(|e| err("read alert states", e))?;
        let services = Services {
            credentials: Credentials {
                admin_token_hash,
                keys: keys.clone(),
                sessions,
                session_cookie: crate::http::session_cookie(tls.is_some()),
            },
            auth_failures: Arc::new(AuthFailures::new(
                config.auth_failures_per_minute,
                config.auth_cooldown.as_millis() as i64,
            )),
            ingest: Ingest {
                keys: keys.clone(),
                limiter: limiter.clone(),
                usage: usage.clone(),
                journal: journal.clone(),
                memtable: memtable.clone(),
                max_pending_samples: config.max_pending_samples,
                max_series_per_project: config.max_series_per_project,
                changes: changes.clone(),
            },
            reader,
            accounts: Accounts {
                store: store.clone(),
                keys,
                limiter,
                usage,
                default_tier: config.default_tier,
                public_url: config.public_url.clone(),
                max_key_age_ms: config.max_key_age_ms,
            },
            maintenance,
            dashboards: Dashboards {
                store: store.clone(),
            },
            alerts,
            forwarder: forwarder.clone(),
            following: config.follow.as_ref().map(|f| f.leader.clone()),
        };
        let app = App {
            config,
            services: Arc::new(services),
            store,
            journal,
            memtable,
            tls,
            compactor: Mutex::new(Some(compactor)),
            forwarder,
        };
        Ok((Arc::new(app), report))
    }

    /// Runs one compaction round now (tests use it; the admin API goes through
    /// `Maintenance`).
    pub fn compact_now(&self) -> Result<crate::compact::CompactStats, String> {
        self.services.maintenance.compact_now()
    }

    /// Runs one retention sweep as if the time were `now_ms`; returns the samples removed.
    pub fn expire_now(&self, now_ms: i64) -> Result<u64, String> {
        self.services.maintenance.expire_now(now_ms)
    }

    /// What `http` needs of the configuration: limits, proxy and CORS settings, TLS.
    fn http_settings(&self) -> http::Settings {
        let c = &self.config;
        http::Settings {
            tls: self.tls.clone(),
            max_connections: c.max_connections,
            header_read_timeout: c.header_read_timeout,
            max_header_bytes: c.max_header_bytes,
            body: http::BodyLimits {
                max_bytes: c.max_body_bytes,
                read_timeout: c.body_read_timeout,
            },
            trust_proxy: c.trust_proxy,
            cors_origins: c.cors_origins.clone(),
        }
    }

    /// Flushes everything to the store and stops the background threads.
    pub fn close(&self) {
        if let Some(c) = self.compactor.lock().take() {
            c.stop();
        }
        self.journal.stop();
        // After the journal: the last acknowledged frames may still be sent; each target
        // then commits its cursor.
        if let Some(f) = &self.forwarder {
            f.stop();
        }
        self.services.accounts.flush_usage();
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
}

/// Bytes free for this user on `dir`'s file system (0 when unknown).
fn free_disk_bytes(dir: &std::path::Path) -> u64 {
    match rustix::fs::statvfs(dir) {
        Ok(st) => st.f_bavail.saturating_mul(st.f_frsize),
        Err(_) => 0,
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

/// Every `usage_flush_interval`: saves key usage; every hour: warns about old keys.
async fn housekeeping(accounts: Accounts, usage_flush_interval: std::time::Duration) {
    const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut flush = tokio::time::interval(usage_flush_interval);
    let mut old_keys = tokio::time::interval(HOUR);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                let a = accounts.clone();
                let _ = tokio::task::spawn_blocking(move || a.flush_usage()).await;
            }
            _ = old_keys.tick() => {
                let a = accounts.clone();
                let _ = tokio::task::spawn_blocking(move || a.warn_old_keys(crate::clock::now_ms())).await;
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes in order.
pub async fn run(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let chores = tokio::spawn(housekeeping(
        app.services.accounts.clone(),
        app.config.usage_flush_interval,
    ));
    let evaluator = tokio::spawn(crate::service::run_evaluator(
        app.services.alerts.clone(),
        app.config.alert_interval,
    ));
    let delivery = tokio::spawn(crate::service::run_delivery(app.services.alerts.clone()));
    let follower = app.config.follow.clone().and_then(|f| {
        let host = f
            .leader
            .parse::<hyper::Uri>()
            .ok()?
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        // The operator chose the leader: its address is allowed even when private.
        let allow = crate::outbound::guard::AllowList::parse(&[host]).ok()?;
        Some(tokio::spawn(crate::service::follow::run(
            f,
            app.services.accounts.clone(),
            crate::outbound::Outbound::new(allow),
        )))
    });
    http::serve(
        listener,
        app.services.clone(),
        app.http_settings(),
        shutdown,
    )
    .await;
    chores.abort();
    evaluator.abort();
    delivery.abort();
    if let Some(f) = follower {
        f.abort();
    }
    let a = app.clone();
    let _ = tokio::task::spawn_blocking(move || a.close()).await;
    tracing::info!("stopped cleanly");
}
