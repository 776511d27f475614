//! The management commands: each subcommand of `stathook` but `serve` and the offline ones
//! is a thin HTTP client of the admin API. This module holds the one way to call it
//! (`request`: the admin token or a key, the server's error message on failure) and the
//! small printing helpers; one file per command group builds requests and prints replies.

mod alert;
pub mod config_file;
mod keys;
mod offline;
mod project;
mod query;
mod serve;
mod user;

use crate::cli::{AdminTokenCommand, Command, Remote};
use crate::client::enc;
use hyper::Method;
use serde_json::Value;

/// Runs one parsed command line; the error is printed by `main` as `stathook: …`.
pub fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(args) => serve::serve(*args),
        Command::Check { data_dir, sizes } => offline::check(data_dir, sizes),
        Command::AdminToken {
            command: AdminTokenCommand::Reset { data_dir },
        } => offline::reset_admin_token(data_dir),
        Command::Project { command, remote } => manage(&remote, project::project(command)),
        Command::Webhook { command, remote } => manage(&remote, keys::webhook(command)),
        Command::Key { command, remote } => manage(&remote, keys::key(command)),
        Command::Channel { command, remote } => manage(&remote, alert::channel(command)),
        Command::Alert { command, remote } => manage(&remote, alert::alert(command)?),
        Command::User { command, remote } => user::user(&remote, command),
        Command::Metric { command, remote } => manage(&remote, project::metric(command)),
        Command::Forward { command, remote } => manage(&remote, forward(command)),
        Command::Query(args) => query::query(args),
        Command::Backup { to, remote } => backup(&to, &remote),
        Command::Bench(args) => bench(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Into a buffer first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            let mut cli = crate::cli::Cli::command();
            clap_complete::generate(shell, &mut cli, "stathook", &mut script);
            write_stdout(&script, "the completion script")
        }
        Command::Config {
            command: crate::cli::ConfigCommand::Example { set },
        } => {
            let text = config_file::example_text(&config_file::parse_settings(&set)?)?;
            write_stdout(text.as_bytes(), "the example config")
        }
        // `config_file::parse` printed it: it needs the parsed flags' sources.
        Command::Config { .. } => Ok(()),
        Command::Man { dir: Some(dir) } => {
            use clap::CommandFactory;
            clap_mangen::generate_to(crate::cli::Cli::command(), &dir)
                .map_err(|e| format!("cannot write the man pages into {}: {e}", dir.display()))
        }
        Command::Man { dir: None } => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            clap_mangen::Man::new(crate::cli::Cli::command())
                .render(&mut page)
                .map_err(|e| format!("cannot render the man page: {e}"))?;
            write_stdout(&page, "the man page")
        }
    }
}

/// A management request: method, path, body, and how to print the reply.
type Request = (Method, String, Option<Value>, fn(&Value));

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
    let (summary, bytes) = block_on(crate::client::download(
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
    let (status, reply) = block_on(crate::client::call(
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

fn bench(a: crate::cli::BenchCli) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    if let Some(path) = &a.query {
        let report = rt.block_on(crate::bench::query(
            &a.url,
            path,
            a.key.as_deref(),
            a.rounds,
            a.ca_cert.as_deref(),
        ))?;
        print_report(a.json, &report, report.text());
        return Ok(());
    }
    let args = crate::bench::BenchArgs {
        url: a.url,
        key: a.key,
        project: a.project,
        series: a.series,
        batch: a.batch,
        connections: a.connections,
        new_connection: a.new_connection,
        duration: a.duration,
        points: a.points,
        dataset: a.dataset,
        format: a.format,
        db: a.db,
        rate: a.rate,
        report_every: a.report_every,
        server_pid: a.server_pid,
        ca_cert: a.ca_cert,
    };
    let fixed = args.points.is_some();
    let report = rt.block_on(crate::bench::run(args))?;
    print_report(a.json, &report, report.text());
    if report.requests == 0 {
        return Err("no request succeeded (see errors)".into());
    }
    if fixed && !report.errors.is_empty() {
        return Err("some of the dataset was not stored (see errors)".into());
    }
    Ok(())
}

/// A bench report as JSON, or as its text.
fn print_report(json: bool, report: &impl serde::Serialize, text: String) {
    match json {
        true => print_json(&serde_json::to_value(report).expect("BUG: reports serialize")),
        false => print!("{text}"),
    }
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

/// `stathook forward status|replay`.
fn forward(cmd: crate::cli::ForwardCommand) -> Request {
    use crate::cli::ForwardCommand;
    match cmd {
        ForwardCommand::Status { json: true } => (
            Method::GET,
            "/api/v1/admin/forward".into(),
            None,
            print_json,
        ),
        ForwardCommand::Status { json: false } => {
            (Method::GET, "/api/v1/admin/forward".into(), None, |v| {
                let targets = v["targets"].as_array().cloned().unwrap_or_default();
                if targets.is_empty() {
                    println!("Forwarding is off (start the server with --forward URL).");
                }
                for t in targets {
                    println!("{}", s(&t["url"]));
                    println!(
                        "  cursor        generation {} offset {}",
                        t["cursorGeneration"], t["cursorOffset"]
                    );
                    println!(
                        "  lag           {} samples, {:.1} s",
                        t["lagSamples"],
                        t["lagSeconds"].as_f64().unwrap_or(0.0)
                    );
                    println!(
                        "  sent          {} samples in {} batches; last success {}",
                        t["sentSamples"],
                        t["sentBatches"],
                        time(&t["lastSuccessMs"])
                    );
                    println!(
                        "  retries       {}; last error {} {}",
                        t["retries"],
                        time(&t["lastErrorMs"]),
                        s(&t["lastError"])
                    );
                    println!(
                        "  dead letters  {} (stathook forward replay)",
                        t["deadLetters"]
                    );
                    println!("  released      {} samples", t["releasedSamples"]);
                }
            })
        }
        ForwardCommand::Replay { target } => (
            Method::POST,
            match target {
                Some(t) => format!("/api/v1/admin/forward/replay?target={}", enc(&t)),
                None => "/api/v1/admin/forward/replay".into(),
            },
            None,
            |v| {
                for t in v["targets"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "{}: resent {}, still refused {}{}",
                        s(&t["url"]),
                        t["resent"],
                        t["stillDead"],
                        t["lastError"]
                            .as_str()
                            .map(|e| format!(" (last answer: {e})"))
                            .unwrap_or_default()
                    );
                }
            },
        ),
    }
}

fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("BUG: JSON values serialize")
    );
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

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn write_stdout(bytes: &[u8], what: &str) -> Result<(), String> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write {what}: {e}"))
        }
        _ => Ok(()),
    }
}
