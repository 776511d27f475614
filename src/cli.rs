//! Command line: `serve` runs the server; the management commands are thin clients of the
//! admin HTTP API. Every flag also reads a `STATHOOK_*` environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./stathook-data";

/// `stathook --version`: the version, and the store format it writes and the oldest it
/// opens (and upgrades in place). A test checks the numbers against `store`'s constants.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nstore format: writes version 9, opens versions 1-9 (older data dirs upgrade in place)"
);

#[derive(Parser, Debug)]
#[command(
    name = "stathook",
    version,
    long_version = LONG_VERSION,
    about = "Custom-metrics webhook with an embedded time-series store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage webhook connections.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Query a metric (or several): raw points, or buckets with --step/--agg/--max-points.
    Query(QueryArgs),
    /// Write a consistent copy of the store to a file while the server keeps running.
    /// Restore: put the file as `stathook.redb` in an empty data dir and start `serve` there.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a metric and its data.
    Metric {
        #[command(subcommand)]
        command: MetricCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Forwarding to remote-write targets (`serve --forward URL`): status and dead letters.
    Forward {
        #[command(subcommand)]
        command: ForwardCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage the accounts that sign in to the web app.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage alert notification channels (Slack, Discord, Teams, signed webhooks).
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage alert rules: thresholds, absences, changes (docs/alerts.md).
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Create read keys; rotate or revoke any API key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Load-test a deployment through its webhook: counters, gauges and constants with
    /// past timestamps; prints samples/s, requests/s, latency percentiles and errors.
    Bench(BenchCli),
    /// Replace the admin token (the server must be stopped): writes a new
    /// DATA_DIR/admin-token; the old token stops working.
    AdminToken {
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
    /// Print a shell completion script: `stathook completions bash > /etc/bash_completion.d/stathook`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `stathook man | man -l -`.
    Man {
        /// Instead, write stathook.1 and a page for every subcommand (stathook-serve.1, ...)
        /// into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The configuration `serve` would run with.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Verify the data dir offline (the server must be stopped): segment checksums and journal
    /// records. Exits 1 on any damage.
    Check {
        #[arg(long, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Also print where the store file's bytes go: each table, and inside the segments
        /// their headers, timestamps, values (by encoding) and metadata.
        #[arg(long)]
        sizes: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print every serve setting as TOML, with where it came from (default, file, env,
    /// flag); takes serve's flags.
    Show(Box<ServeArgs>),
    /// Print a config file with every serve key, its help and its default, commented out
    /// (the Debian package's /etc/stathook/stathook.toml is this, with `--set
    /// data-dir=/var/lib/stathook`).
    Example {
        /// A key to write set (not commented): KEY=VALUE, repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct BenchCli {
    /// The server's base URL.
    #[arg(long, env = "STATHOOK_SERVER", default_value = DEFAULT_SERVER)]
    pub url: String,
    /// A webhook API key of --project (its samples are really stored); with --format
    /// influx, sent as a bearer token if given. With --query: a read key or the admin token.
    #[arg(long, env = "STATHOOK_API_KEY")]
    pub key: Option<String>,
    #[arg(long, env = "STATHOOK_PROJECT_ID")]
    pub project: Option<String>,
    /// Distinct series (metricIds `s0` …).
    #[arg(long, default_value_t = 1000)]
    pub series: usize,
    /// Samples per request (the webhook takes at most 100).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Keep-alive connections, each sending its next request when the last is answered.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Open a new connection for every request (what a cron job running curl does) instead
    /// of keeping each one alive; latency then includes the connect (and TLS handshake).
    #[arg(long)]
    pub new_connection: bool,
    /// How long to send (e.g. 20s, 2m); ignored with --points.
    #[arg(long, default_value = "20s", value_parser = parse_bench_duration)]
    pub duration: std::time::Duration,
    /// Send a fixed dataset once instead: this many points of every series, 10 s apart, the
    /// last an hour ago, time-major; the report gives its time range and information floor.
    #[arg(long)]
    pub points: Option<usize>,
    /// The series: mix (counters, ±1.00 gauges, constants, readable names and units), spec
    /// (mix with every series at its own millisecond: benches/compare.sh's default), quiet
    /// or noisy (compare.sh's compact payload).
    #[arg(long, value_enum, default_value = "mix")]
    pub dataset: crate::bench::Dataset,
    /// webhook (JSON to /api/webhooks/custom) or influx (line protocol to /write, for
    /// VictoriaMetrics and InfluxDB).
    #[arg(long, value_enum, default_value = "webhook")]
    pub format: crate::bench::Format,
    /// The database of --format influx.
    #[arg(long, default_value = "bench")]
    pub db: String,
    /// Requests per second per connection (a timed run); default: as fast as answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Print each interval's requests and latency to stderr (e.g. 10s).
    #[arg(long, value_parser = parse_bench_duration)]
    pub report_every: Option<std::time::Duration>,
    /// The server's PID (same machine): report its CPU seconds per million samples.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Time a read instead: GET URL+PATH (e.g. "/api/v1/projects/P/metrics/s1/points?step=1h")
    /// --rounds times after 3 untimed ones.
    #[arg(long, value_name = "PATH")]
    pub query: Option<String>,
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,
    /// Trust the PEM certificate(s) in this file for an https:// server.
    #[arg(long, env = "STATHOOK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_bench_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::query::plan::parse_duration_ms(s)
        .filter(|ms| *ms > 0)
        .map(|ms| std::time::Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("expected a duration such as 20s or 2m; not {s:?}"))
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Generate a new admin token into DATA_DIR/admin-token.
    Reset {
        #[arg(long, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file whose keys are these flags without the `--` (`cache-mb = 64`); a flag or
    /// an environment variable overrides it (default: /etc/stathook/stathook.toml if it exists).
    #[arg(long, env = "STATHOOK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the store file, the journal and the admin token.
    #[arg(long, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "STATHOOK_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Base URL printed in webhook URLs (default: http://LISTEN).
    #[arg(long, env = "STATHOOK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log lines as `text` (for a terminal or journald) or `json` (one object a line).
    #[arg(long, env = "STATHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest accepted request body, after gzip decoding.
    #[arg(long, env = "STATHOOK_MAX_BODY_BYTES", default_value_t = crate::config::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Keep samples this long (e.g. 90d, 12h, 2w), dropping older segments; `forever` keeps
    /// everything. Projects may override it.
    #[arg(long, env = "STATHOOK_RETENTION", default_value = "forever", value_parser = parse_retention)]
    pub retention: Retention,
    /// Webhook requests per hour for projects of tier free (the spec's 100).
    #[arg(long, env = "STATHOOK_RATE_LIMIT_FREE", default_value_t = crate::auth::ratelimit::DEFAULT_TIER_LIMITS.free)]
    pub rate_limit_free: u32,
    /// ... of tier pro (the spec's 1,000).
    #[arg(long, env = "STATHOOK_RATE_LIMIT_PRO", default_value_t = crate::auth::ratelimit::DEFAULT_TIER_LIMITS.pro)]
    pub rate_limit_pro: u32,
    /// ... of tier scale (the spec's 10,000).
    #[arg(long, env = "STATHOOK_RATE_LIMIT_SCALE", default_value_t = crate::auth::ratelimit::DEFAULT_TIER_LIMITS.scale)]
    pub rate_limit_scale: u32,
    /// Tier of projects created without one: `unlimited` (self-hosted default) or free, pro,
    /// scale to apply the spec's limits.
    #[arg(long, env = "STATHOOK_DEFAULT_TIER", value_enum, default_value_t = TierArg::Unlimited)]
    pub default_tier: TierArg,
    /// Failed authentications (and bodies refused as too large or too slow) a minute from
    /// one address before it gets 429 for --auth-cooldown-secs, before any key lookup.
    #[arg(long, env = "STATHOOK_AUTH_FAILURES_PER_MINUTE", default_value_t = crate::config::DEFAULT_AUTH_FAILURES_PER_MINUTE)]
    pub auth_failures_per_minute: u32,
    /// How long an address that passed --auth-failures-per-minute gets 429, in seconds.
    #[arg(long, env = "STATHOOK_AUTH_COOLDOWN_SECS", default_value_t = crate::config::DEFAULT_AUTH_COOLDOWN.as_secs())]
    pub auth_cooldown_secs: u64,
    /// Behind a reverse proxy: take the client address from the last X-Forwarded-For entry
    /// (otherwise that header is ignored).
    #[arg(long, env = "STATHOOK_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// The store's page cache in MiB: memory grows with the data up to this, then stays
    /// flat. Queries over data that fits stay fast (see docs/benchmarks.md).
    #[arg(long, env = "STATHOOK_CACHE_MB", default_value_t = 1024)]
    pub cache_mb: usize,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "STATHOOK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "STATHOOK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Concurrent connections; further ones wait in the kernel's backlog.
    #[arg(long, env = "STATHOOK_MAX_CONNECTIONS", default_value_t = crate::config::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(usize))]
    pub max_connections: usize,
    /// Largest request head (request line + headers) in bytes; larger gets 431. At least 8192.
    #[arg(long, env = "STATHOOK_MAX_HEADER_BYTES", default_value_t = crate::config::DEFAULT_MAX_HEADER_BYTES,
        value_parser = at_least_8192)]
    pub max_header_bytes: usize,
    /// Seconds a client gets to send a request's head (also between keep-alive requests);
    /// then the connection is closed (slowloris guard).
    #[arg(long, env = "STATHOOK_HEADER_READ_TIMEOUT_SECS", default_value_t = crate::config::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    pub header_read_timeout_secs: u64,
    /// Seconds a client gets to send a request's body; then 408.
    #[arg(long, env = "STATHOOK_BODY_READ_TIMEOUT_SECS", default_value_t = crate::config::DEFAULT_BODY_READ_TIMEOUT.as_secs())]
    pub body_read_timeout_secs: u64,
    /// Let web pages from this origin call the API (repeat or comma-separate; `*` = any).
    /// Without it, CORS is closed: browsers refuse cross-origin calls.
    #[arg(long, env = "STATHOOK_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origin: Vec<String>,
    /// Log a warning (hourly) for API keys older than this (e.g. 90d) and flag them in
    /// `webhook list`; `never` turns it off.
    #[arg(long, env = "STATHOOK_MAX_KEY_AGE", default_value = "never", value_parser = parse_max_key_age)]
    pub max_key_age: Retention,
    /// A web app session ends after this long without a request (e.g. 12h, 7d); it ends
    /// after 30 days whatever happens, and at sign-out.
    #[arg(long, env = "STATHOOK_SESSION_IDLE", default_value = "7d", value_parser = parse_session_idle)]
    pub session_idle: Duration,
    /// Seconds between compaction rounds while samples wait in the journal.
    #[arg(long, env = "STATHOOK_COMPACT_INTERVAL_SECS", default_value_t = crate::config::DEFAULT_COMPACT_INTERVAL.as_secs())]
    pub compact_interval_secs: u64,
    /// At a clean shutdown, rewrite the store file without its free pages if it is at most
    /// this many MiB (0 = never). Larger files are left as they are: redb reuses free pages.
    #[arg(long, env = "STATHOOK_COMPACT_ON_CLOSE_MAX_MB", default_value_t = crate::config::DEFAULT_COMPACT_ON_CLOSE_MAX_BYTES >> 20)]
    pub compact_on_close_max_mb: u64,
    /// When the journal is fdatasync'd. `always`: before every 200, so an acknowledged
    /// sample survives power loss. `interval`: every --fsync-interval-ms; a 200 then survives
    /// the process being killed, but a power loss or OS crash can lose that much.
    #[arg(long, env = "STATHOOK_FSYNC", value_enum, default_value_t = FsyncArg::Always)]
    pub fsync: FsyncArg,
    /// With --fsync interval: the longest a written sample waits for its fdatasync.
    #[arg(long, env = "STATHOOK_FSYNC_INTERVAL_MS", default_value_t = crate::config::DEFAULT_FSYNC_INTERVAL.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub fsync_interval_ms: u64,
    /// Threads answering HTTP requests (default: half the cores, at least 1). Queries, admin
    /// calls and compaction run on other threads, so a slow query never delays ingest.
    #[arg(long, env = "STATHOOK_HTTP_THREADS", default_value_t = crate::config::default_http_threads() as u64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub http_threads: u64,
    /// Most series a project may have: a push (remote write, Influx line protocol) that would
    /// create series past it is refused with a 400 naming this limit, so labels with unbounded
    /// values (request ids, timestamps) cannot grow the store without end.
    #[arg(long, env = "STATHOOK_MAX_SERIES_PER_PROJECT", default_value_t = crate::config::DEFAULT_MAX_SERIES_PER_PROJECT, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_series_per_project: u64,
    /// How often alert rules are evaluated (at least 1s), e.g. 30s, 1m.
    #[arg(long, env = "STATHOOK_ALERT_INTERVAL", default_value = "60s", value_parser = parse_alert_interval)]
    pub alert_interval: Duration,
    /// Private or loopback destinations alert channels may reach: host names, addresses or
    /// CIDRs (repeat or comma-separate, e.g. `10.0.0.0/8,hooks.internal`). Every other
    /// private, loopback, link-local or metadata address is refused.
    #[arg(long, env = "STATHOOK_ALERT_ALLOW_HOSTS", value_delimiter = ',')]
    pub alert_allow_hosts: Vec<String>,
    /// Forward every acknowledged sample to this Prometheus remote-write URL (e.g.
    /// VictoriaMetrics' http://vminsert:8480/insert/0/prometheus/api/v1/write, Mimir's
    /// /api/v1/push); repeat or comma-separate for several. Basic auth goes in the URL's
    /// userinfo. Durable and at least once: docs/scale-out.md.
    #[arg(
        long,
        env = "STATHOOK_FORWARD",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub forward: Vec<String>,
    /// A header sent with every forwarded request, "Name: value" (repeatable), e.g.
    /// "X-Scope-OrgID: tenant-1" for Mimir or Cortex, "THANOS-TENANT: t1" for Thanos.
    #[arg(long, env = "STATHOOK_FORWARD_HEADER", value_name = "NAME: VALUE")]
    pub forward_header: Vec<String>,
    /// A file holding a bearer token for the forward targets (Authorization: Bearer).
    #[arg(long, env = "STATHOOK_FORWARD_BEARER_TOKEN_FILE", value_name = "PATH")]
    pub forward_bearer_token_file: Option<PathBuf>,
    /// Journal bytes kept for targets that are behind (e.g. 10GiB) before the oldest
    /// unforwarded generation is released, counted and logged (default: a tenth of the free
    /// disk at start). Ingest never stops because a target is down.
    #[arg(long, env = "STATHOOK_FORWARD_MAX_BACKLOG", value_parser = parse_bytes, value_name = "SIZE")]
    pub forward_max_backlog: Option<u64>,
    /// Copy projects, webhook connections, read keys and tiers from this leader node's
    /// admin API (by key hash; no plaintext key crosses), and refuse to create them here:
    /// nodes behind one load balancer then accept the same keys. Needs --follow-token-file.
    #[arg(
        long,
        env = "STATHOOK_FOLLOW",
        value_name = "URL",
        requires = "follow_token_file"
    )]
    pub follow: Option<String>,
    /// A file holding the leader's admin token (its DATA_DIR/admin-token).
    #[arg(
        long,
        env = "STATHOOK_FOLLOW_TOKEN_FILE",
        value_name = "PATH",
        requires = "follow"
    )]
    pub follow_token_file: Option<PathBuf>,
    /// How often a follower copies the leader's keys (a key revoked there stops working
    /// here within this), e.g. 10s, 1m.
    #[arg(long, env = "STATHOOK_FOLLOW_INTERVAL", default_value = "10s", value_parser = parse_follow_interval)]
    pub follow_interval: Duration,
    /// Nodes behind the load balancer: each node enforces the tiers' rate limits divided by
    /// this (approximate: it assumes the balancer spreads a project's requests evenly).
    #[arg(long, env = "STATHOOK_FLEET_SIZE", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub fleet_size: u32,
}

fn parse_follow_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        return Err(format!("{s:?}: between 1s and 1h"));
    }
    Ok(d)
}

/// A size: a whole number with an optional unit, B, KB, MB, GB, TB (powers of 1000) or KiB,
/// MiB, GiB, TiB (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a size such as 10GiB or 500MB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too large"))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    Always,
    Interval,
}

/// A parsed `--retention`: milliseconds, or None for forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention(pub Option<i64>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    crate::config::parse_retention(s).map(Retention)
}

fn at_least_8192(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 8192 => Ok(n),
        _ => Err(format!(
            "expected a number of bytes of at least 8192; not {s:?}"
        )),
    }
}

fn parse_max_key_age(s: &str) -> Result<Retention, String> {
    if s == "never" {
        return Ok(Retention(None));
    }
    crate::query::plan::parse_duration_ms(s)
        .map(|ms| Retention(Some(ms)))
        .ok_or_else(|| format!("expected never or a duration such as 90d; not {s:?}"))
}

fn parse_alert_interval(s: &str) -> Result<Duration, String> {
    match crate::query::plan::parse_duration_ms(s) {
        Some(ms) if (1_000..=3_600_000).contains(&ms) => Ok(Duration::from_millis(ms as u64)),
        _ => Err(format!(
            "expected a duration from 1s to 1h such as 30s or 1m; not {s:?}"
        )),
    }
}

fn parse_session_idle(s: &str) -> Result<Duration, String> {
    match crate::query::plan::parse_duration_ms(s) {
        Some(ms) if (60_000..=crate::config::MAX_SESSION_AGE.as_millis() as i64).contains(&ms) => {
            Ok(Duration::from_millis(ms as u64))
        }
        _ => Err(format!(
            "expected a duration from 1m to 30d such as 12h or 7d; not {s:?}"
        )),
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where a management command sends its request, and where it finds the admin token.
#[derive(clap::Args, Debug)]
pub struct Remote {
    /// Base URL of the server.
    #[arg(long, global = true, env = "STATHOOK_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Data dir holding `admin-token` (read when STATHOOK_ADMIN_TOKEN is unset).
    #[arg(long, global = true, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// For an https:// server whose certificate is not signed by a public CA (e.g.
    /// self-signed): trust the PEM certificate(s) in this file.
    #[arg(long, global = true, env = "STATHOOK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// Choose the id (A-Z a-z 0-9 _ -); default: a random `prj_…`.
        #[arg(long)]
        id: Option<String>,
        /// Rate-limit tier; default: the server's --default-tier.
        #[arg(long, value_enum)]
        tier: Option<TierArg>,
        /// This project's retention (e.g. 30d, forever); default: the server's --retention.
        #[arg(long)]
        retention: Option<String>,
    },
    /// List projects.
    List,
    /// Change a project's rate-limit tier; takes effect from the next request.
    SetTier {
        #[arg(long)]
        project: String,
        #[arg(long, value_enum)]
        tier: TierArg,
    },
    /// Set a project's retention: a duration (30d), `forever`, or `default` (the server's).
    SetRetention {
        #[arg(long)]
        project: String,
        #[arg(long)]
        retention: String,
    },
    /// Name the metadata keys whose values PromQL (Grafana) shows as labels of the
    /// project's webhook metrics (docs/grafana.md); no keys clears them.
    SetLabels {
        #[arg(long)]
        project: String,
        /// Metadata keys, e.g. `host region` (at most 8).
        keys: Vec<String>,
    },
}

/// One channel of a project.
#[derive(clap::Args, Debug)]
pub struct ChannelRef {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub channel: String,
}

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add a channel; a webhook channel's signing secret is printed this once.
    Add(Box<ChannelAdd>),
    /// List a project's channels, each with whether it is failing.
    List {
        #[arg(long)]
        project: String,
    },
    /// One channel and its last deliveries.
    Show(ChannelRef),
    /// Send a test notification now and print the attempt.
    Test(ChannelRef),
    /// Remove a channel no rule uses.
    Remove(ChannelRef),
}

#[derive(clap::Args, Debug)]
pub struct ChannelAdd {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub name: String,
    /// slack, discord, teams, webhook or email.
    #[arg(long = "type")]
    pub kind: String,
    /// The incoming-webhook URL (a credential: shown masked afterwards); not for email.
    #[arg(long)]
    pub url: Option<String>,
    /// Email: a recipient; repeat (or comma-separate) for several.
    #[arg(long, value_delimiter = ',')]
    pub to: Vec<String>,
    /// Email: the sender, e.g. "stathook <alerts@example.com>".
    #[arg(long)]
    pub from: Option<String>,
    /// Email: the SMTP server.
    #[arg(long)]
    pub smtp_host: Option<String>,
    /// Email: its port (default 587, or 465 with --smtp-security tls).
    #[arg(long)]
    pub smtp_port: Option<u16>,
    /// Email: starttls (required, never falls back to plain), tls, or none (a local relay).
    #[arg(long, default_value = "starttls")]
    pub smtp_security: String,
    /// Email: the SMTP user name; the password is read from standard input.
    #[arg(long)]
    pub smtp_username: Option<String>,
}

/// One alert rule of a project.
#[derive(clap::Args, Debug)]
pub struct AlertRef {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub alert: String,
}

#[derive(clap::Args, Debug)]
pub struct AlertAdd {
    #[arg(long)]
    pub project: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub metric: String,
    /// "AGG WINDOW OP VALUE", e.g. "avg 5m > 300" (AGG: avg sum min max count last).
    #[arg(long)]
    pub threshold: Option<String>,
    /// With --threshold: the value back past which a firing rule resolves.
    #[arg(long, allow_hyphen_values = true)]
    pub clear: Option<f64>,
    /// Fire when no sample is timestamped within this long, e.g. 10m.
    #[arg(long)]
    pub absent_for: Option<String>,
    /// Fire when no sample comes by each tick of this cron schedule (UTC), e.g. "0 3 * * *".
    #[arg(long)]
    pub absent_cron: Option<String>,
    /// With --absent-cron: how late the sample may be, e.g. 30m.
    #[arg(long)]
    pub grace: Option<String>,
    /// "AGG WINDOW OP PERCENT" against the window before, e.g. "sum 7d < -50".
    #[arg(long, allow_hyphen_values = true)]
    pub change: Option<String>,
    /// How long the condition must hold before the rule fires, e.g. 5m.
    #[arg(long = "for")]
    pub hold: Option<String>,
    /// How often a firing rule notifies again (default 4h).
    #[arg(long)]
    pub repeat: Option<String>,
    /// A channel id; repeat (or comma-separate) for several.
    #[arg(long = "channel", value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Fire while the metric has never reported (else the rule is in state nodata).
    #[arg(long)]
    pub fire_on_no_data: bool,
}

#[derive(Subcommand, Debug)]
pub enum AlertCommand {
    /// Add a rule: exactly one of --threshold, --absent-for, --absent-cron, --change.
    Add(Box<AlertAdd>),
    /// List a project's rules with their states.
    List {
        #[arg(long)]
        project: String,
    },
    /// One rule, its state and its history.
    Show(AlertRef),
    /// Mute a rule's notifications for a while (its state still changes).
    Mute {
        #[command(flatten)]
        rule: AlertRef,
        /// e.g. 2h, 1d.
        #[arg(long = "for")]
        duration: String,
    },
    /// Let a muted rule notify again.
    Unmute(AlertRef),
    /// Remove a rule and its history.
    Remove(AlertRef),
}

#[derive(Subcommand, Debug)]
pub enum MetricCommand {
    /// Delete a metric and every sample acknowledged before this command.
    Delete {
        #[arg(long)]
        project: String,
        #[arg(long)]
        metric: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ForwardCommand {
    /// Each target's cursor, lag, last success and error, retries, dead letters and
    /// released samples.
    Status {
        /// Print the JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Resend the batches a target refused (its dead letters); each one accepted is removed.
    Replay {
        /// Only this target's (its URL, as `forward status` shows it).
        #[arg(long)]
        target: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    #[arg(long)]
    pub project: String,
    /// A metricId; repeat (or comma-separate) for several, answered with aligned buckets.
    #[arg(long = "metric", required = true, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Unix ms, `now`, or relative like -24h, -7d (default: the first sample).
    #[arg(long, allow_hyphen_values = true)]
    pub from: Option<String>,
    /// Unix ms, `now`, or relative (default: now or the last sample, whichever is later).
    #[arg(long, allow_hyphen_values = true)]
    pub to: Option<String>,
    /// Bucket width: 10s, 5m, 1h, 1d or ms.
    #[arg(long)]
    pub step: Option<String>,
    /// avg, min, max, sum, count, first, last, p50, p90, p95, p99 (default avg when bucketing).
    #[arg(long)]
    pub agg: Option<String>,
    /// At most this many buckets; picks the step.
    #[arg(long)]
    pub max_points: Option<u32>,
    /// Metadata filter metadata.KEY:VALUE; repeat to AND several.
    #[arg(long = "where")]
    pub filters: Vec<String>,
    /// Raw points: at most this many.
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// A read key for the project (default: the admin token).
    #[arg(long, env = "STATHOOK_READ_KEY", hide_env_values = true)]
    pub key: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Free,
    Pro,
    Scale,
    Unlimited,
}

impl TierArg {
    pub fn name(self) -> &'static str {
        match self {
            TierArg::Free => "free",
            TierArg::Pro => "pro",
            TierArg::Scale => "scale",
            TierArg::Unlimited => "unlimited",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Create a webhook connection; prints its URL, API key (shown once) and project id.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: String,
    },
    /// List webhook connections (never their keys): key prefix, age and last use.
    List {
        #[arg(long)]
        project: Option<String>,
    },
    /// Show a webhook key's usage: requests accepted and rejected by reason, samples
    /// stored, last use and address, and the non-empty hours of the last 7 days.
    Usage {
        /// The webhook id (wh_…).
        id: String,
        /// Print the server's JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add an account. Without --password-stdin a random password is made and printed once.
    Add {
        #[arg(long)]
        name: String,
        /// admin: what the admin token can do; viewer: look at everything, change nothing.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Remove an account; its sessions end at once.
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Viewer,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Read,
    Ingest,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key for a project: `--scope read` can query it but not write or
    /// administer; `--scope ingest` is a webhook connection. Prints the key once.
    Create {
        #[arg(long)]
        project: String,
        #[arg(long, value_enum)]
        scope: ScopeArg,
        #[arg(long)]
        name: Option<String>,
    },
    /// List a project's API keys (both scopes; never the keys themselves).
    List {
        #[arg(long)]
        project: String,
    },
    /// Issue a new API key for a webhook or read key; the old one stops working at once.
    Rotate {
        /// The webhook id (wh_…) or read key id (rk_…).
        #[arg(long, visible_alias = "id")]
        webhook: String,
        /// Keep the old key working this long (e.g. 10m, 1h, 7d; at most 30d) while
        /// clients switch to the new one. Default: it stops at once.
        #[arg(long)]
        grace: Option<String>,
    },
    /// Revoke a webhook's or read key's API key.
    Revoke {
        /// The webhook id (wh_…) or read key id (rk_…).
        #[arg(long, visible_alias = "id")]
        webhook: String,
    },
}
