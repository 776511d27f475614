//! `stathook serve`: turns the serve flags into a `Config`, sets up logging and the signal
//! handlers, and runs `app` on a tokio runtime. Owns no server state itself.

use crate::cli::{FsyncArg, LogFormat, ServeArgs};
use crate::journal::Fsync;
use std::io::IsTerminal;

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

pub fn serve(args: ServeArgs) -> Result<(), String> {
    init_logs(args.log_format);
    let mut config = crate::config::Config::new(args.data_dir, args.listen);
    let public_url = args.public_url;
    config.max_body_bytes = args.max_body_bytes;
    config.retention_ms = args.retention.0;
    config.cache_bytes = args.cache_mb.max(1) << 20;
    config.auth_failures_per_minute = args.auth_failures_per_minute;
    config.auth_cooldown = std::time::Duration::from_secs(args.auth_cooldown_secs);
    config.trust_proxy = args.trust_proxy;
    config.max_key_age_ms = args.max_key_age.0;
    config.session_idle = args.session_idle;
    config.alert_interval = args.alert_interval;
    config.max_series_per_project = args.max_series_per_project as usize;
    crate::outbound::guard::AllowList::parse(&args.alert_allow_hosts)?;
    config.alert_allow_hosts = args.alert_allow_hosts;
    config.forward = crate::forward::parse_targets(
        &args.forward,
        &args.forward_header,
        args.forward_bearer_token_file.as_deref(),
    )?;
    if config.forward.is_empty()
        && (!args.forward_header.is_empty() || args.forward_bearer_token_file.is_some())
    {
        return Err("--forward-header and --forward-bearer-token-file need --forward URL".into());
    }
    config.forward_max_backlog = args.forward_max_backlog;
    if let (Some(leader), Some(token_file)) = (args.follow, args.follow_token_file) {
        let token = std::fs::read_to_string(&token_file).map_err(|e| {
            format!(
                "--follow-token-file {}: cannot read it: {e}",
                token_file.display()
            )
        })?;
        let url = url::Url::parse(&leader).map_err(|e| format!("--follow {leader:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "--follow {leader:?}: expected http(s)://host[:port]"
            ));
        }
        config.follow = Some(crate::service::follow::Follow {
            leader: leader.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            interval: args.follow_interval,
        });
    }
    config.max_connections = args.max_connections.max(1);
    config.max_header_bytes = args.max_header_bytes;
    config.header_read_timeout =
        std::time::Duration::from_secs(args.header_read_timeout_secs.max(1));
    config.body_read_timeout = std::time::Duration::from_secs(args.body_read_timeout_secs.max(1));
    config.tls = args.tls_cert.zip(args.tls_key);
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    config.cors_origins = args
        .cors_origin
        .into_iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    // Each node of a fleet takes its share of a project's hourly budget (at least 1).
    let share = |limit: u32| limit.div_ceil(args.fleet_size).max(1);
    config.tier_limits = crate::auth::ratelimit::TierLimits {
        free: share(args.rate_limit_free),
        pro: share(args.rate_limit_pro),
        scale: share(args.rate_limit_scale),
    };
    config.default_tier =
        crate::store::Tier::parse(args.default_tier.name()).expect("BUG: every TierArg is a Tier");
    config.compact_interval = std::time::Duration::from_secs(args.compact_interval_secs.max(1));
    config.compact_on_close_max_bytes = args.compact_on_close_max_mb << 20;
    config.fsync = match args.fsync {
        FsyncArg::Always => Fsync::Always,
        FsyncArg::Interval => {
            Fsync::Interval(std::time::Duration::from_millis(args.fsync_interval_ms))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.http_threads as usize)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Default the public URL to the bound address (right even for --listen …:0).
        config.public_url = public_url.unwrap_or_else(|| format!("{scheme}://{local}"));
        let token_path = config.admin_token_path();
        let shutdown = shutdown_signal()?;
        let (app, report) = crate::app::App::open(config.clone()).map_err(|e| e.to_string())?;
        tracing::info!(
            files = report.files,
            records = report.records,
            samples = report.samples,
            damaged_files = report.damaged.len(),
            "journal recovered"
        );
        // One machine-readable line on stdout, so scripts and tests learn the port.
        println!("stathook listening on {scheme}://{local}");
        tracing::info!(listen = %local, data_dir = %config.data_dir.display(),
            admin_token_file = %token_path.display(), "stathook is serving");
        crate::app::run(app, listener, shutdown).await;
        Ok(())
    })
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future that resolves on
/// either. Installed before the server announces itself, so a signal sent right after
/// "listening" still shuts down cleanly instead of killing the process.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
