//! The `stathook` binary: parse arguments, run the command, map errors to exit codes
//! (0 ok, 1 failure, 2 usage — clap's).

use clap::Parser;
use hyper::Method;
use serde_json::{json, Value};
use stathook::cli::{
    AdminTokenCommand, Cli, Command, FsyncArg, KeyCommand, LogFormat, MetricCommand, OutputFormat,
    ProjectCommand, QueryArgs, Remote, ScopeArg, ServeArgs, TierArg, WebhookCommand,
};
use stathook::journal::Fsync;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { data_dir, sizes } => check(data_dir, sizes),
        Command::AdminToken {
            command: AdminTokenCommand::Reset { data_dir },
        } => reset_admin_token(data_dir),
        Command::Project { command, remote } => manage(&remote, project(command)),
        Command::Webhook { command, remote } => manage(&remote, webhook(command)),
        Command::Key { command, remote } => manage(&remote, key(command)),
        Command::Metric { command, remote } => manage(&remote, metric(command)),
        Command::Query(args) => query(args),
        Command::Backup { to, remote } => backup(&to, &remote),
        Command::Bench(args) => bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stathook: {e}");
            ExitCode::FAILURE
        }
    }
}

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

fn serve(args: ServeArgs) -> Result<(), String> {
    init_logs(args.log_format);
    let mut config = stathook::config::Config::new(args.data_dir, args.listen);
    let public_url = args.public_url;
    config.max_body_bytes = args.max_body_bytes;
    config.retention_ms = args.retention.0;
    config.cache_bytes = args.cache_mb.max(1) << 20;
    config.auth_failures_per_minute = args.auth_failures_per_minute;
    config.auth_cooldown = std::time::Duration::from_secs(args.auth_cooldown_secs);
    config.trust_proxy = args.trust_proxy;
    config.max_key_age_ms = args.max_key_age.0;
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
    config.tier_limits = stathook::auth::ratelimit::TierLimits {
        free: args.rate_limit_free,
        pro: args.rate_limit_pro,
        scale: args.rate_limit_scale,
    };
    config.default_tier = stathook::store::Tier::parse(args.default_tier.name())
        .expect("BUG: every TierArg is a Tier");
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
        let (app, report) = stathook::app::App::open(config.clone()).map_err(|e| e.to_string())?;
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
        stathook::app::run(app, listener, shutdown).await;
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

fn offline_config(data_dir: std::path::PathBuf) -> stathook::config::Config {
    let listen = stathook::cli::DEFAULT_LISTEN
        .parse()
        .expect("BUG: the default listen address parses");
    stathook::config::Config::new(data_dir, listen)
}

fn open_offline(config: &stathook::config::Config) -> Result<stathook::store::Store, String> {
    if !config.store_path().exists() {
        return Err(format!(
            "no store at {}; is --data-dir right?",
            config.store_path().display()
        ));
    }
    stathook::store::Store::open(&config.store_path())
        .map_err(|e| format!("{e} (is the server still running? stop it first)"))
}

fn reset_admin_token(data_dir: std::path::PathBuf) -> Result<(), String> {
    let config = offline_config(data_dir);
    let store = open_offline(&config)?;
    stathook::app::write_new_admin_token(&config, &store).map_err(|e| e.to_string())?;
    println!(
        "New admin token written to {}; the old one no longer works.",
        config.admin_token_path().display()
    );
    Ok(())
}

fn check(data_dir: std::path::PathBuf, sizes: bool) -> Result<(), String> {
    let config = offline_config(data_dir);
    let store = open_offline(&config)?;
    if sizes {
        print_sizes(&config, &store)?;
    }
    let (checked, bad) = store.check_segments().map_err(|e| e.to_string())?;
    println!("segments: {checked} checked, {} damaged", bad.len());
    for b in &bad {
        println!("  DAMAGED {b}");
    }
    let memtable = stathook::memtable::Memtable::new(stathook::journal::SHARDS, 0);
    let report = stathook::journal::recover_into(&config.journal_dir(), &store, &memtable, false)
        .map_err(|e| e.to_string())?;
    println!(
        "journal: {} files, {} records, {} samples, {} damaged",
        report.files,
        report.records,
        report.samples,
        report.damaged.len()
    );
    for (path, offset, dropped, why) in &report.damaged {
        println!(
            "  DAMAGED {} at offset {offset}: {why} ({dropped} bytes after it would be dropped)",
            path.display()
        );
    }
    if bad.is_empty() && report.damaged.is_empty() {
        println!("ok");
        Ok(())
    } else {
        Err("damage found".into())
    }
}

/// `check --sizes`: the store file, table by table, then the segments part by part.
fn print_sizes(
    config: &stathook::config::Config,
    store: &stathook::store::Store,
) -> Result<(), String> {
    let file = config.store_path();
    let file_bytes = std::fs::metadata(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let sizes = store.sizes().map_err(|e| e.to_string())?;
    let l = &sizes.segments;
    let per_sample = |b: u64| b as f64 / l.samples.max(1) as f64;
    println!(
        "store file {}: {file_bytes} bytes, {} samples, {:.3} bytes/sample",
        file.display(),
        l.samples,
        per_sample(file_bytes)
    );
    println!(
        "  {:<10} {:>10} {:>12} {:>12}",
        "table", "rows", "keys+values", "in pages"
    );
    let mut in_pages = 0;
    for t in &sizes.tables {
        println!(
            "  {:<10} {:>10} {:>12} {:>12}",
            t.name, t.rows, t.stored_bytes, t.in_pages
        );
        in_pages += t.in_pages;
    }
    println!(
        "  the rest of the file (redb's header, its own tables, free pages): {} bytes",
        file_bytes.saturating_sub(in_pages)
    );
    let per_block = |b: u64| b as f64 / l.blocks.max(1) as f64;
    println!(
        "segments: {} ({} blocks), {} bytes",
        l.segments,
        l.blocks,
        l.header + l.timestamps + l.values + l.metadata + l.older
    );
    for (part, bytes) in [
        ("header", l.header),
        ("timestamps", l.timestamps),
        ("values", l.values),
        ("metadata", l.metadata),
    ] {
        println!(
            "  {part:<10} {bytes:>12} bytes, {:>8.1} a block, {:.3} bits a sample",
            per_block(bytes),
            per_sample(bytes * 8)
        );
    }
    if l.older > 0 {
        println!("  version 1-2 segments {} bytes", l.older);
    }
    for (name, (blocks, bytes)) in &l.value_encodings {
        println!("    values {name:<22} {blocks:>8} blocks {bytes:>12} bytes");
    }
    println!("tail pack framing: {} bytes", sizes.tail_pack_framing);
    Ok(())
}

/// A management request: method, path, body, and how to print the reply.
type Request = (Method, String, Option<Value>, fn(&Value));

fn project(cmd: ProjectCommand) -> Request {
    match cmd {
        ProjectCommand::Create {
            name,
            id,
            tier,
            retention,
        } => {
            let tier = tier.map(TierArg::name);
            (
                Method::POST,
                "/api/v1/projects".into(),
                Some(json!({"name": name, "id": id, "tier": tier, "retention": retention})),
                |v| {
                    println!("Project ID: {}", s(&v["id"]));
                },
            )
        }
        ProjectCommand::List => (Method::GET, "/api/v1/projects".into(), None, |v| {
            println!("{:<24} {:<10} {:<10} NAME", "ID", "TIER", "RETENTION");
            for p in v["projects"].as_array().into_iter().flatten() {
                let retention = p["retention"].as_str().unwrap_or("default");
                println!(
                    "{:<24} {:<10} {:<10} {}",
                    s(&p["id"]),
                    s(&p["tier"]),
                    retention,
                    s(&p["name"])
                );
            }
        }),
        ProjectCommand::SetTier { project, tier } => (
            Method::PUT,
            format!("/api/v1/projects/{}/tier", enc(&project)),
            Some(json!({ "tier": tier.name() })),
            |v| println!("Project {}: tier {}", s(&v["id"]), s(&v["tier"])),
        ),
        ProjectCommand::SetRetention { project, retention } => {
            let value = if retention == "default" {
                Value::Null
            } else {
                Value::String(retention)
            };
            (
                Method::PUT,
                format!("/api/v1/projects/{}/retention", enc(&project)),
                Some(json!({ "retention": value })),
                |v| {
                    let r = v["retention"].as_str().unwrap_or("default (the server's)");
                    println!("Project {}: retention {r}", s(&v["id"]));
                },
            )
        }
    }
}

fn metric(cmd: MetricCommand) -> Request {
    match cmd {
        MetricCommand::Delete { project, metric } => (
            Method::DELETE,
            format!(
                "/api/v1/projects/{}/metrics/{}",
                enc(&project),
                enc(&metric)
            ),
            None,
            |v| {
                println!(
                    "Deleted metric {} of project {}",
                    s(&v["metricId"]),
                    s(&v["projectId"])
                );
            },
        ),
    }
}

fn print_key(v: &Value) {
    println!("Webhook URL: {}", s(&v["webhookUrl"]));
    println!("API Key: {}", s(&v["apiKey"]));
    println!("Project ID: {}", s(&v["projectId"]));
    eprintln!(
        "Webhook ID: {} (copy the API key now: it is not shown again)",
        s(&v["webhook"]["id"])
    );
}

fn webhook(cmd: WebhookCommand) -> Request {
    match cmd {
        WebhookCommand::Create { project, name } => (
            Method::POST,
            format!("/api/v1/projects/{}/webhooks", enc(&project)),
            Some(json!({"name": name})),
            print_key,
        ),
        WebhookCommand::List { project } => {
            let q = project
                .map(|p| format!("?projectId={}", enc(&p)))
                .unwrap_or_default();
            (Method::GET, format!("/api/v1/webhooks{q}"), None, |v| {
                println!(
                    "{:<20} {:<24} {:<8} {:<12} {:>8} {:<20} NAME",
                    "ID", "PROJECT", "STATUS", "KEY", "KEY AGE", "LAST USED"
                );
                for w in v["webhooks"].as_array().into_iter().flatten() {
                    let age = format!(
                        "{}d{}",
                        w["keyAgeDays"].as_i64().unwrap_or(0),
                        if w["keyTooOld"] == true { "!" } else { "" }
                    );
                    println!(
                        "{:<20} {:<24} {:<8} {:<12} {:>8} {:<20} {}",
                        s(&w["id"]),
                        s(&w["projectId"]),
                        s(&w["status"]),
                        s(&w["keyPrefix"]),
                        age,
                        time(&w["lastUsedAt"]),
                        s(&w["name"])
                    );
                }
                if v["webhooks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|w| w["keyTooOld"] == true)
                {
                    eprintln!("(!: older than the server's --max-key-age; rotate with 'stathook key rotate --webhook ID --grace 1h')");
                }
            })
        }
        WebhookCommand::Usage { id, json } => (
            Method::GET,
            format!("/api/v1/webhooks/{}/usage", enc(&id)),
            None,
            if json { print_json } else { print_usage },
        ),
    }
}

fn print_read_key(v: &Value) {
    println!("API Key: {}", s(&v["apiKey"]));
    println!("Key ID: {}", s(&v["webhook"]["id"]));
    println!("Scope: {}", s(&v["webhook"]["scope"]));
    println!("Project ID: {}", s(&v["projectId"]));
    eprintln!("(copy the API key now: it is not shown again)");
}

fn key(cmd: KeyCommand) -> Request {
    match cmd {
        KeyCommand::Create {
            project,
            scope,
            name,
        } => (
            Method::POST,
            format!("/api/v1/projects/{}/keys", enc(&project)),
            Some(json!({
                "scope": if scope == ScopeArg::Read { "read" } else { "ingest" },
                "name": name,
            })),
            |v| {
                if v["webhook"]["scope"] == "read" {
                    print_read_key(v)
                } else {
                    print_key(v)
                }
            },
        ),
        KeyCommand::List { project } => (
            Method::GET,
            format!("/api/v1/projects/{}/keys", enc(&project)),
            None,
            |v| {
                println!(
                    "{:<20} {:<7} {:<8} {:<12} NAME",
                    "ID", "SCOPE", "STATUS", "KEY"
                );
                for w in v["keys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<20} {:<7} {:<8} {:<12} {}",
                        s(&w["id"]),
                        s(&w["scope"]),
                        s(&w["status"]),
                        s(&w["keyPrefix"]),
                        s(&w["name"])
                    );
                }
            },
        ),
        KeyCommand::Rotate { webhook, grace } => (
            Method::POST,
            format!(
                "/api/v1/webhooks/{}/rotate{}",
                enc(&webhook),
                grace
                    .map(|g| format!("?grace={}", enc(&g)))
                    .unwrap_or_default()
            ),
            None,
            |v| {
                print_key(v);
                for g in v["webhook"]["graceKeys"].as_array().into_iter().flatten() {
                    eprintln!(
                        "The old key {}… keeps working until {}",
                        s(&g["keyPrefix"]),
                        time(&g["validUntil"])
                    );
                }
            },
        ),
        KeyCommand::Revoke { webhook } => (
            Method::POST,
            format!("/api/v1/webhooks/{}/revoke", enc(&webhook)),
            None,
            |v| {
                println!("Revoked the API key of webhook {}", s(&v["webhook"]["id"]));
            },
        ),
    }
}

fn manage(remote: &Remote, (method, path, body, print): Request) -> Result<(), String> {
    let reply = request(remote, None, method, &path, body)?;
    print(&reply);
    Ok(())
}

fn backup(to: &std::path::Path, remote: &Remote) -> Result<(), String> {
    if to.exists() {
        return Err(format!(
            "{} already exists; choose a new file",
            to.display()
        ));
    }
    let token = admin_token(remote)?;
    let url = format!(
        "{}/api/v1/admin/backup",
        remote.server.trim_end_matches('/')
    );
    let (summary, bytes) = block_on(stathook::client::download(
        &url,
        &token,
        to,
        remote.ca_cert.as_deref(),
    ))?;
    println!(
        "Backup written to {} ({bytes} bytes; {summary})",
        to.display()
    );
    Ok(())
}

/// `stathook query`: one metric through `…/points`, several through `…/query`.
fn query(a: QueryArgs) -> Result<(), String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    let mut opt = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            q.push((k, v));
        }
    };
    opt("from", a.from);
    opt("to", a.to);
    opt("step", a.step);
    opt("agg", a.agg);
    opt("maxPoints", a.max_points.map(|n| n.to_string()));
    opt("limit", a.limit.map(|n| n.to_string()));
    for w in a.filters {
        q.push(("where", w));
    }
    if a.format == OutputFormat::Csv {
        q.push(("format", "csv".into()));
    }
    let project = enc(&a.project);
    let path = match a.metrics.as_slice() {
        [one] => format!("/api/v1/projects/{project}/metrics/{}/points", enc(one)),
        many => {
            q.push(("metricIds", many.join(",")));
            format!("/api/v1/projects/{project}/query")
        }
    };
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let path = format!("{path}?{}", qs.join("&"));
    let reply = request(&a.remote, a.key.as_deref(), Method::GET, &path, None)?;
    match a.format {
        OutputFormat::Csv => print!("{}", reply.as_str().unwrap_or_default()),
        OutputFormat::Json => print_json(&reply),
        OutputFormat::Table => print_table(&reply),
    }
    Ok(())
}

/// Points or aligned series as columns: TIMESTAMP (UTC ms) then one column per metric.
fn print_table(v: &Value) {
    let cell = |x: &Value| match x {
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    if let Some(ts) = v["timestamps"].as_array() {
        let series = v["series"].as_array().cloned().unwrap_or_default();
        print!("{:<15}", "TIMESTAMP");
        for s in &series {
            print!(" {:>14}", s["metricId"].as_str().unwrap_or("?"));
        }
        println!();
        for (i, t) in ts.iter().enumerate() {
            print!("{:<15}", cell(t));
            for s in &series {
                print!(" {:>14}", cell(&s["values"][i]));
            }
            println!();
        }
        return;
    }
    let blocks: Vec<&Value> = match v["series"].as_array() {
        Some(series) => series.iter().collect(),
        None => vec![v],
    };
    for b in blocks {
        if v["series"].is_array() {
            println!("# {}", b["metricId"].as_str().unwrap_or("?"));
        }
        println!("{:<15} {:>14}  METADATA", "TIMESTAMP", "VALUE");
        for p in b["points"].as_array().into_iter().flatten() {
            let meta = if p["metadata"].is_null() {
                String::new()
            } else {
                p["metadata"].to_string()
            };
            println!(
                "{:<15} {:>14}  {meta}",
                cell(&p["timestamp"]),
                cell(&p["value"])
            );
        }
        if b["truncated"] == Value::Bool(true) {
            println!(
                "(more points: ask again with --from after the last timestamp, or raise --limit)"
            );
        }
    }
}

/// One request to the server with the admin token (or `key`); the JSON reply, or the
/// server's error message.
fn request(
    remote: &Remote,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let token = match key {
        Some(k) => k.to_owned(),
        None => admin_token(remote)?,
    };
    let url = format!("{}{path}", remote.server.trim_end_matches('/'));
    let (status, reply) = block_on(stathook::client::call(
        method,
        &url,
        &token,
        body.as_ref(),
        remote.ca_cert.as_deref(),
    ))?;
    if !(200..300).contains(&status) {
        let msg = reply["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| reply.to_string());
        return Err(format!("server answered {status}: {msg}"));
    }
    Ok(reply)
}

fn bench(a: stathook::cli::BenchCli) -> Result<(), String> {
    let args = stathook::bench::BenchArgs {
        url: a.url,
        key: a.key,
        project: a.project,
        series: a.series,
        batch: a.batch,
        connections: a.connections,
        duration: a.duration,
        ca_cert: a.ca_cert,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let report = rt.block_on(stathook::bench::run(args))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("BUG: the report serializes")
        );
    } else {
        print!("{}", report.text());
    }
    if report.requests == 0 {
        return Err("no request succeeded (see errors)".into());
    }
    Ok(())
}

/// Runs one client call to completion on a small single-threaded runtime.
fn block_on<T>(call: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(call)
}

fn admin_token(remote: &Remote) -> Result<String, String> {
    let token = match std::env::var("STATHOOK_ADMIN_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let path = remote.data_dir.join("admin-token");
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the admin token from {}: {e} (set STATHOOK_ADMIN_TOKEN or --data-dir)", path.display()))?
                .trim()
                .to_owned()
        }
    };
    Ok(token)
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("BUG: JSON values serialize")
    );
}

fn print_usage(v: &Value) {
    let w = &v["webhook"];
    let r = &v["rejected"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    println!(
        "Webhook: {} ({}) key {}…, {}",
        s(&w["id"]),
        s(&w["name"]),
        s(&w["keyPrefix"]),
        s(&w["status"])
    );
    println!("Accepted requests: {}", n(&v["accepted"]));
    println!("Samples stored: {}", n(&v["samplesStored"]));
    println!(
        "Rejected requests: {} (auth {}, validation {}, rate limit {}, size {}, unavailable {})",
        n(&v["rejectedTotal"]),
        n(&r["auth"]),
        n(&r["validation"]),
        n(&r["rateLimit"]),
        n(&r["size"]),
        n(&r["unavailable"])
    );
    println!(
        "Last used: {} from {}",
        time(&v["lastUsedAt"]),
        s(&v["lastSourceIp"])
    );
    let busy: Vec<&Value> = v["hourly"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| n(&h["accepted"]) + n(&h["rejected"]) > 0)
        .collect();
    if !busy.is_empty() {
        println!(
            "\n{:<20} {:>10} {:>10} {:>12}",
            "HOUR (UTC)", "ACCEPTED", "REJECTED", "SAMPLES"
        );
        for h in busy {
            println!(
                "{:<20} {:>10} {:>10} {:>12}",
                time(&h["hourStart"]),
                n(&h["accepted"]),
                n(&h["rejected"]),
                n(&h["samples"])
            );
        }
    }
}

/// Unix ms as RFC 3339 UTC (`2026-11-27T04:00:00Z`); `-` for null.
fn time(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
        )
        .to_string(),
        None => "-".into(),
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
