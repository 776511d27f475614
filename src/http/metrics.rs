//! `GET /metrics`: stathook's own health and forwarding state in the Prometheus text format
//! (version 0.0.4), for a Prometheus or vmagent to scrape with the admin token (or a
//! signed-in session). Takes the journal, the memtable, the store's watermark and the
//! forwarder; writes nothing.

use super::reply::{raw, ApiError, Reply};
use super::route::AdminToken;
use crate::forward::Forwarder;
use crate::service::Reader;
use hyper::StatusCode;
use std::fmt::Write;
use std::sync::Arc;

pub fn metrics(
    reader: &Reader,
    forwarder: Option<&Arc<Forwarder>>,
    _: AdminToken,
) -> Result<Reply, ApiError> {
    let j = reader.journal.status();
    let journal_bytes: u64 = reader
        .journal
        .file_sizes()
        .map(|s| s.iter().map(|(_, b)| b).sum())
        .unwrap_or(0);
    let watermark = reader.store.watermark().unwrap_or(0);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    family(
        "stathook_build_info",
        "gauge",
        "The running stathook's version.",
        &[(
            format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            1.0,
        )],
    );
    family(
        "stathook_samples_acknowledged_total",
        "counter",
        "Samples answered 2xx (durable in the journal) since the start.",
        &one(j.samples as f64),
    );
    family(
        "stathook_journal_frames_total",
        "counter",
        "Journal frames (group commits) written since the start.",
        &one(j.frames as f64),
    );
    family(
        "stathook_journal_syncs_total",
        "counter",
        "Journal fdatasyncs since the start.",
        &one(j.syncs as f64),
    );
    family(
        "stathook_journal_sync_seconds_total",
        "counter",
        "Time spent in journal fdatasyncs since the start; divided by the syncs, the sync latency.",
        &one(j.sync_seconds),
    );
    family(
        "stathook_journal_generation",
        "gauge",
        "The journal generation being written.",
        &one(j.generation as f64),
    );
    family(
        "stathook_journal_bytes",
        "gauge",
        "Bytes of journal files on disk (zero-filled room included).",
        &one(journal_bytes as f64),
    );
    family(
        "stathook_compacted_through_generation",
        "gauge",
        "The highest journal generation compacted into segments.",
        &one(watermark as f64),
    );
    family(
        "stathook_uncompacted_samples",
        "gauge",
        "Samples in the journal not yet compacted into segments.",
        &one(reader.memtable.pending_samples() as f64),
    );
    let targets = forwarder.map(|f| f.status()).unwrap_or_default();
    let per_target = |f: &dyn Fn(&crate::forward::TargetStatus) -> f64| -> Vec<(String, f64)> {
        targets
            .iter()
            .map(|t| (format!("{{target=\"{}\"}}", escape(&t.url)), f(t)))
            .collect()
    };
    for (name, kind, help, value) in [
        (
            "stathook_forward_lag_samples",
            "gauge",
            "Samples acknowledged and not yet accepted by the target.",
            &(|t: &crate::forward::TargetStatus| t.lag_samples as f64)
                as &dyn Fn(&crate::forward::TargetStatus) -> f64,
        ),
        (
            "stathook_forward_lag_seconds",
            "gauge",
            "Seconds since the target was last caught up (0 when it is).",
            &|t| t.lag_seconds,
        ),
        (
            "stathook_forward_sent_samples_total",
            "counter",
            "Samples the target accepted (resends after a crash included).",
            &|t| t.sent_samples as f64,
        ),
        (
            "stathook_forward_sent_batches_total",
            "counter",
            "Requests the target accepted since the start.",
            &|t| t.sent_batches as f64,
        ),
        (
            "stathook_forward_retries_total",
            "counter",
            "Requests retried (network errors, 408, 429, 5xx) since the start.",
            &|t| t.retries as f64,
        ),
        (
            "stathook_forward_dead_letters_total",
            "counter",
            "Batches the target refused for good (stathook forward replay resends them).",
            &|t| t.dead_letters as f64,
        ),
        (
            "stathook_forward_released_samples_total",
            "counter",
            "Samples released past --forward-max-backlog: never sent to the target.",
            &|t| t.released_samples as f64,
        ),
        (
            "stathook_forward_last_success_timestamp_seconds",
            "gauge",
            "When the target last accepted a request (0: not since the start).",
            &|t| t.last_success_ms.unwrap_or(0) as f64 / 1000.0,
        ),
    ] {
        family(name, kind, help, &per_target(value));
    }
    Ok(raw(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out.into_bytes(),
    ))
}

/// A label value in the text format: `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
