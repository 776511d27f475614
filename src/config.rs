//! One validated `Config`, built from the command line and passed explicitly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The spec's webhook bodies are ~12 KB for 100 metrics; 1 MiB leaves room for large
/// metadata while bounding what one request can make the server buffer.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Concurrent connections; beyond this, new ones wait in the kernel backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Largest request head (request line and headers) a connection buffers; hyper answers 431
/// beyond it. The spec's requests need well under 1 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 << 10;
/// A client gets this long to send a request's head, counted from when the server starts
/// waiting for it (also between keep-alive requests): the slowloris guard.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and this long to send its body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// `--fsync interval`: sync at most this long after a write. Bounds what a power loss can
/// take (an OS page cache flushes on its own after ~30 s) while turning ~1,000 syncs a
/// second under load into 5.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Threads that answer HTTP requests: half the cores, at least one. The webhook's work per
/// request is short (parse, validate, queue, wait for the group commit), while the journal's
/// flusher and applier, the compactor and queries (run on tokio's blocking pool) need cores
/// of their own. On this 2-core machine one thread instead of two took the 1,000-series
/// load's p99 from 4.7-5.5 ms to 2.1-3.8 ms at the same throughput (docs/benchmarks.md).
pub fn default_http_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
/// A compaction round at least this often while samples wait, so the journal stays short and
/// restart replay stays fast.
pub const DEFAULT_COMPACT_INTERVAL: Duration = Duration::from_secs(10);
/// ...or as soon as this many samples wait: ~100 MB of memtable at most.
pub const DEFAULT_COMPACT_MAX_PENDING: usize = 1_000_000;
/// Writes are refused (503) while this many samples wait for compaction: the compactor is
/// failing or far behind, and memory must not grow without bound (~1 GB of memtable).
pub const DEFAULT_MAX_PENDING_SAMPLES: usize = 8 * DEFAULT_COMPACT_MAX_PENDING;
/// A project's series cap for the push formats: 100,000 series of 10 s samples is ~860 M
/// samples a day, past what one node serves well; a label with unbounded values reaches it
/// quickly, which is what the cap is for.
pub const DEFAULT_MAX_SERIES_PER_PROJECT: u64 = 100_000;

/// How often the compactor drops segments past their retention. Expiry is coarse (whole
/// segments, ~a day of 10 s samples each), so a minute is plenty.
pub const DEFAULT_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);

/// Failed authentications a minute from one address before it is refused: far above what
/// a misconfigured client produces, far below what guessing keys needs.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 20;
/// How long an address that crossed it is refused.
pub const DEFAULT_AUTH_COOLDOWN: Duration = Duration::from_secs(300);

/// A web session left alone this long ends (Grafana's default inactive lifetime).
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(7 * 86_400);
/// Alert rules are evaluated this often: a minute, as Prometheus's and Grafana's defaults,
/// is finer than any window a rule takes (5 m and more).
pub const DEFAULT_ALERT_INTERVAL: Duration = Duration::from_secs(60);
/// A session ends this long after sign-in however active it is: a stolen cookie does not
/// work forever.
pub const MAX_SESSION_AGE: Duration = Duration::from_secs(30 * 86_400);

/// A clean shutdown compacts a store file up to this size (~2–3 s of rewriting here).
pub const DEFAULT_COMPACT_ON_CLOSE_MAX_BYTES: u64 = 256 << 20;

/// Usage counters lost in a crash are at most this old.
pub const DEFAULT_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// A retention setting: `forever` (None) or a duration such as `90d`, `12h`, `2w`.
pub fn parse_retention(s: &str) -> Result<Option<i64>, String> {
    if s == "forever" {
        return Ok(None);
    }
    crate::query::plan::parse_duration_ms(s)
        .map(Some)
        .ok_or_else(|| {
            format!("retention must be forever or a duration such as 90d, 12h or 2w; not {s:?}")
        })
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Base URL printed in webhook URLs (`{public_url}/api/webhooks/custom`).
    pub public_url: String,
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Origins allowed to call the API from a browser (`*` = any); empty = CORS closed.
    pub cors_origins: Vec<String>,
    pub compact_interval: Duration,
    pub compact_max_pending: usize,
    pub max_pending_samples: usize,
    /// Most metrics a project may have once a push would create new ones.
    pub max_series_per_project: usize,
    /// Default retention in ms for projects without their own; None keeps data forever.
    pub retention_ms: Option<i64>,
    pub expire_interval: Duration,
    /// The store's page cache; memory grows with the data up to this.
    pub cache_bytes: usize,
    /// Requests per hour of each limited tier.
    pub tier_limits: crate::auth::ratelimit::TierLimits,
    /// The tier of a project created without one.
    pub default_tier: crate::store::Tier,
    /// Failed authentications a minute from one address before it is refused (429).
    pub auth_failures_per_minute: u32,
    /// How long such an address is refused.
    pub auth_cooldown: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_proxy: bool,
    /// Keys older than this are logged (hourly) and flagged in listings; None = never.
    pub max_key_age_ms: Option<i64>,
    /// A web session ends after this long without a request (`--session-idle`).
    pub session_idle: Duration,
    /// How often key usage counters are written to the store (and at shutdown).
    pub usage_flush_interval: Duration,
    /// At a clean shutdown, a store file at most this big is rewritten without its free
    /// pages (`Store::compact_file`); 0 = never.
    pub compact_on_close_max_bytes: u64,
    /// When the journal is fdatasync'd: before every 200 (the default) or on an interval.
    pub fsync: crate::journal::Fsync,
    /// How often alert rules are evaluated (`--alert-interval`).
    pub alert_interval: Duration,
    /// Hosts, addresses and CIDRs alert channels may reach although private or loopback
    /// (`--alert-allow-hosts`); everything else private is refused.
    pub alert_allow_hosts: Vec<String>,
    /// Remote-write targets every acknowledged sample is forwarded to (`--forward`).
    pub forward: Vec<crate::forward::Target>,
    /// Bytes of journal files kept only for lagging targets before the oldest is released
    /// (`--forward-max-backlog`; `None`: a tenth of the free disk at start).
    pub forward_max_backlog: Option<u64>,
    /// Copy projects and keys from a leader node (`--follow`).
    pub follow: Option<crate::service::follow::Follow>,
}

impl Config {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Config {
        Config {
            data_dir,
            listen,
            public_url: format!("http://{listen}"),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            cors_origins: Vec::new(),
            tls: None,
            compact_interval: DEFAULT_COMPACT_INTERVAL,
            compact_max_pending: DEFAULT_COMPACT_MAX_PENDING,
            max_pending_samples: DEFAULT_MAX_PENDING_SAMPLES,
            max_series_per_project: DEFAULT_MAX_SERIES_PER_PROJECT as usize,
            retention_ms: None,
            expire_interval: DEFAULT_EXPIRE_INTERVAL,
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            tier_limits: crate::auth::ratelimit::DEFAULT_TIER_LIMITS,
            // Self-hosters own the machine: no limit unless they ask for one.
            default_tier: crate::store::Tier::Unlimited,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            auth_cooldown: DEFAULT_AUTH_COOLDOWN,
            trust_proxy: false,
            max_key_age_ms: None,
            session_idle: DEFAULT_SESSION_IDLE,
            usage_flush_interval: DEFAULT_USAGE_FLUSH_INTERVAL,
            compact_on_close_max_bytes: DEFAULT_COMPACT_ON_CLOSE_MAX_BYTES,
            // A 200 survives power loss unless the operator trades that away.
            fsync: crate::journal::Fsync::Always,
            alert_interval: DEFAULT_ALERT_INTERVAL,
            alert_allow_hosts: Vec::new(),
            forward: Vec::new(),
            forward_max_backlog: None,
            follow: None,
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("stathook.redb")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    /// Where backups are assembled before they are streamed out; emptied at start.
    pub fn backup_tmp_dir(&self) -> PathBuf {
        self.data_dir.join("backup-tmp")
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }
}
