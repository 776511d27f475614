//! Command line: `serve` runs the server; the management commands are thin clients of the
//! admin HTTP API. Every flag also reads a `STATHOOK_*` environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./stathook-data";

#[derive(Parser, Debug)]
#[command(
    name = "stathook",
    version,
    about = "Custom-metrics webhook with an embedded time-series store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
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
    /// Rotate or revoke a webhook's API key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Replace the admin token (the server must be stopped): writes a new
    /// DATA_DIR/admin-token; the old token stops working.
    AdminToken {
        #[command(subcommand)]
        command: AdminTokenCommand,
    },
    /// Verify the data dir offline (the server must be stopped): segment checksums and journal
    /// records. Exits 1 on any damage.
    Check {
        #[arg(long, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
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
    /// Directory for the store file, the journal and the admin token.
    #[arg(long, env = "STATHOOK_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "STATHOOK_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Base URL printed in webhook URLs (default: http://LISTEN).
    #[arg(long, env = "STATHOOK_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, env = "STATHOOK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Largest accepted request body, after gzip decoding.
    #[arg(long, env = "STATHOOK_MAX_BODY_BYTES", default_value_t = crate::config::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds between compaction rounds while samples wait in the journal.
    #[arg(long, env = "STATHOOK_COMPACT_INTERVAL_SECS", default_value_t = crate::config::DEFAULT_COMPACT_INTERVAL.as_secs())]
    pub compact_interval_secs: u64,
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
        #[arg(long, value_enum, default_value_t = TierArg::Free)]
        tier: TierArg,
    },
    /// List projects.
    List,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TierArg {
    Free,
    Pro,
    Scale,
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
    /// List webhook connections (never their keys).
    List {
        #[arg(long)]
        project: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Issue a new API key for a webhook; the old one stops working at once.
    Rotate {
        #[arg(long)]
        webhook: String,
    },
    /// Revoke a webhook's API key.
    Revoke {
        #[arg(long)]
        webhook: String,
    },
}
