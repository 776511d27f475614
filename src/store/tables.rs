//! Every redb table of the store file, in one place (see `docs/format.md`, "redb tables").

use redb::TableDefinition;

/// Format version, watermark and the admin token hash, by name (values below).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// project id → Project as JSON.
pub const PROJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("projects");
/// webhook id → Webhook as JSON (holds the key's blake3 hash, never the key).
pub const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// blake3(API key) → webhook id, for live keys: the current key of each active webhook and
/// rotated-out keys still in their grace period (revoked and expired keys are removed).
pub const API_KEYS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("api_keys");
/// webhook id → its usage counters as JSON (`auth::usage::KeyUsage`), flushed every minute
/// and at shutdown.
pub const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
/// (project id, metricId, first timestamp ms) → segment bytes (`segment` module).
pub const SEGMENTS: TableDefinition<(&str, &str, i64), &[u8]> = TableDefinition::new("segments");
/// (project id, first metricId of the pack) → a tail pack (`tails` module): the last segment
/// of each metric from that metricId up to the next pack's key.
pub const TAILS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("tails");
/// (project id, metricId) → `CatalogRow` (binary; format 3 rows are JSON): what the
/// compacted segments hold.
pub const CATALOG: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("catalog");

/// META key: u32 LE, the store format version (`FORMAT_VERSION`).
pub const META_FORMAT_VERSION: &str = "format_version";
/// META key: u64 LE, the highest journal generation whose samples are all in segments.
pub const META_WATERMARK: &str = "compacted_through_generation";
/// META key: 32 bytes, blake3 of the admin token.
pub const META_ADMIN_TOKEN_HASH: &str = "admin_token_hash";
/// user name → User as JSON (`web.rs`): role and the argon2id PHC string of the password.
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// blake3(session token) → Session as JSON (`web.rs`). Never the token itself.
pub const SESSIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("sessions");
/// (project id, dashboard id) → Dashboard as JSON (`web.rs`), with its own format version.
pub const DASHBOARDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("dashboards");
/// blake3(share link token) → Share as JSON (`web.rs`): a read-only link to one dashboard.
/// Never the token itself.
pub const SHARES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("shares");
/// (project id, rule id) → alert Rule as JSON (`alerts.rs`), with its own format version.
pub const ALERT_RULES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("alert_rules");
/// (project id, rule id) → the rule's RuleState as JSON: state, since, last value and
/// notice, the last 500 changes.
pub const ALERT_STATES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("alert_states");
/// (project id, channel id) → Channel as JSON: the destination URL and a webhook channel's
/// signing secret (credentials, needed to send; the API shows them masked or not at all).
pub const CHANNELS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("channels");
/// sequence number → a notification not yet delivered (JSON: webhook-id, channel, content,
/// attempts, next attempt), written with the state change that caused it.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// (project id, channel id) → the channel's last 100 delivery attempts, JSON array.
pub const DELIVERY_LOG: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("delivery_log");
/// forward target id → its cursor as JSON (`forward.rs`): the journal position up to which
/// the target has answered 2xx, and its lifetime counters.
pub const FORWARD_CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("forward_cursors");
/// (forward target id, sequence) → a batch the target refused with a 4xx (`forward.rs`): a
/// u32 LE length, that many bytes of JSON (time, status, answer, samples), then the
/// snappy-compressed remote-write body, ready to resend.
pub const FORWARD_DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("forward_dead");
