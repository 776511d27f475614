//! Ingest: turns a request body into a [`ValidBatch`] or a 400 message naming the field
//! and index (or line). No I/O and no clock (the caller passes `now_ms`), so it is easy to
//! fuzz and bench. `parse.rs` is the webhook's JSON and the only file in the crate that
//! knows simd-json; the push formats (`remote_write.rs`, `influx.rs`) build a
//! `series::SeriesBatch` of labelled series that lends out the same `ValidBatch`.

pub mod influx;
pub mod otlp;
mod parse;
pub mod prom_text;
pub mod remote_write;
pub mod series;

pub use parse::parse_batch;

/// Longest accepted `projectId`, in bytes.
pub const MAX_PROJECT_ID_BYTES: usize = 128;
/// Longest accepted `metricId`, in bytes: ids are keys, long ones cost in every segment key.
pub const MAX_METRIC_ID_BYTES: usize = 128;
/// Longest accepted `metricName`, in bytes: a display name, so a sentence at most.
pub const MAX_METRIC_NAME_BYTES: usize = 256;
/// Longest accepted `unit`, in bytes ("USD", "count", "%", "req/s").
pub const MAX_UNIT_BYTES: usize = 32;
/// Largest `metadata` object, as compact JSON, in bytes (the spec's 4 KiB).
pub const MAX_METADATA_BYTES: usize = 4096;
/// Deepest nesting of objects and arrays in `metadata` (the object itself is level 1).
/// Readers of the API parse it: serde_json stops at 128 levels, other parsers sooner.
pub const MAX_METADATA_DEPTH: usize = 32;
/// The spec's "Maximum 100 metrics per request".
pub const MAX_METRICS_PER_REQUEST: usize = 100;
/// How far ahead of the server's clock a timestamp may be: allows for client clock skew
/// while refusing the "future timestamps" the spec warns against.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// One request's samples, all checked; storing it cannot fail on content. Strings borrow
/// from the request body.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidBatch<'a> {
    pub project_id: &'a str,
    pub metrics: Vec<ValidMetric<'a>>,
}

/// One entry of `metrics`, checked, with its timestamp resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidMetric<'a> {
    pub metric_id: &'a str,
    pub metric_name: &'a str,
    /// `None` when absent, null or empty.
    pub unit: Option<&'a str>,
    pub timestamp_ms: i64,
    pub value: f64,
    /// Compact JSON text of the `metadata` object.
    pub metadata: Option<String>,
}

/// Why a body was refused; `explain` gives the `error` of the 400 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestError {
    pub message: String,
    /// For a body that is not valid JSON: the byte offset where parsing stopped.
    pub json_at: Option<usize>,
}

impl IngestError {
    pub fn new(message: String) -> IngestError {
        IngestError {
            message,
            json_at: None,
        }
    }

    /// The message, and for invalid JSON the text around where parsing stopped (from the
    /// opening of the value it was in), so a user can tell which of 100 metrics to fix.
    /// `body` is the parsed buffer: strings before that point may already be unescaped in
    /// place, hence "near", not a quote of what was sent.
    pub fn explain(self, body: &[u8]) -> String {
        let Some(at) = self.json_at.map(|a| a.min(body.len())) else {
            return self.message;
        };
        let start = body[..at]
            .iter()
            .rposition(|b| matches!(b, b',' | b'{' | b'['))
            .map_or(0, |p| p + 1)
            .max(at.saturating_sub(40));
        let end = (at + 16).min(body.len());
        let near: String = String::from_utf8_lossy(&body[start..end])
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        match near.trim() {
            "" => self.message,
            near => format!("{} (near `{near}`)", self.message),
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IngestError {}

/// A line-based body as text, or which line is not UTF-8.
pub(crate) fn text_lines(body: &[u8]) -> Result<&str, IngestError> {
    std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        IngestError::new(format!("line {line}: the body is not valid UTF-8"))
    })
}

/// Rejects control characters, which break CSV export, terminals and log lines.
pub(crate) fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}
