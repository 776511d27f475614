//! The push formats agents already speak: Prometheus remote write (`POST /api/v1/write`,
//! alias `/api/v1/push`), Influx line protocol (`POST /api/v2/write`, v1's `POST /write`,
//! and the `/ping` the InfluxDB clients probe) and Pushgateway-style pushes (`PUT`/`POST
//! /metrics/job/{job}/…`, the Prometheus text format) and OpenTelemetry's OTLP/HTTP (`POST
//! /v1/metrics`, protobuf or JSON). Each takes an ingest key (Bearer,
//! `Token`, basic auth with the key as the password, or v1's `p` parameter), goes through
//! the webhook's admission (`webhook::admit`: scope, rate limit, usage), decodes its body
//! with its `ingest` parser into labelled series, checks the project's series cap, and
//! answers 204 only once every sample is fdatasync'd, as the webhook does.

use super::reply::{ApiError, Reply};
use super::route::Query;
use super::webhook::{admit, check_backlog, owner_of};
use super::BodyLimits;
use crate::auth::{self, Bearer, KeyOwner};
use crate::clock;
use crate::ingest::influx::Precision;
use crate::ingest::otlp::Encoding;
use crate::ingest::series::SeriesBatch;
use crate::ingest::{self, IngestError};
use crate::service::Ingest;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use std::net::IpAddr;

/// Largest push body, after gzip (remote write's snappy is undone later, bounded by
/// `ingest::remote_write::MAX_DECODED_BYTES`). Agents batch: vmagent sends blocks of up to
/// 8 MiB, Telegraf 1,000 metrics at a time; `--max-body-bytes` (1 MiB, sized for the
/// webhook's 100 metrics) would refuse them, so a push is allowed at least this much.
pub const MIN_PUSH_BODY_BYTES: usize = 16 << 20;

/// The body limits of a push: the server's, with room for agents' batches.
pub fn limits(server: BodyLimits) -> BodyLimits {
    BodyLimits {
        max_bytes: server.max_bytes.max(MIN_PUSH_BODY_BYTES),
        ..server
    }
}

/// Which push format a request is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    RemoteWrite,
    /// `/api/v2/write` (`bucket`) or v1's `/write` (`db`).
    Influx {
        v1: bool,
    },
    /// `/metrics/job/{job}/…`: the path's segments after `metrics/`, percent-decoded.
    Pushgateway {
        path: Vec<String>,
    },
    /// OTLP/HTTP's `/v1/metrics`.
    Otlp,
}

/// What an OTLP request's points came to, for its 200's partial success (set by `store`).
type OtlpOutcome = std::sync::Mutex<Option<(Encoding, u64, String)>>;

/// Answers one push request from `client`, and counts it in its key's usage.
pub async fn ingest(
    ingest: &Ingest,
    limits: BodyLimits,
    req: Request<Incoming>,
    query: &Query,
    client: IpAddr,
    format: Format,
) -> Result<Reply, ApiError> {
    let key = push_key(req.headers(), query)?;
    let now_ms = clock::now_ms();
    let owner = owner_of(ingest, &key, client, now_ms)?;
    let presented = req.headers().get(header::AUTHORIZATION).cloned();
    // A Pushgateway answers 200, OTLP 200 with its response message; the others 204, as
    // their senders expect.
    let status = match format {
        Format::Pushgateway { .. } | Format::Otlp => StatusCode::OK,
        _ => StatusCode::NO_CONTENT,
    };
    let otlp = OtlpOutcome::default();
    let target = Target {
        ingest,
        owner: &owner,
        now_ms,
    };
    let stored = store(target, limits, req, query, format, &otlp);
    Ok(admit(
        ingest,
        &owner,
        presented,
        client,
        now_ms,
        stored,
        |_| match otlp.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some((encoding, rejected, why)) => otlp_response(encoding, rejected, why),
            None => super::reply::raw(status, "text/plain", Vec::new()),
        },
    )
    .await)
}

/// `GET /ping` (InfluxDB 1.x; its CLI and Telegraf probe it): 204 with a version header.
pub fn ping() -> Reply {
    let mut reply = super::reply::raw(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    reply.headers_mut().insert(
        "x-influxdb-version",
        header::HeaderValue::from_static(concat!("stathook-", env!("CARGO_PKG_VERSION"))),
    );
    reply
}

/// The key of a push request: `Authorization: Bearer KEY`, `Token KEY` (InfluxDB 2.x),
/// `Basic` with the key as the password (Prometheus' `basic_auth`, InfluxDB 1.x), or v1's
/// `p` query parameter.
fn push_key(headers: &HeaderMap, query: &Query) -> Result<String, ApiError> {
    const EXPECTED: &str =
        "expected 'Authorization: Bearer API_KEY', 'Token API_KEY' or basic auth with the API key as the password";
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return match query.get("p") {
            Some(p) if !p.is_empty() => Ok(p.to_owned()),
            _ => Err(ApiError::Unauthorized(format!(
                "missing Authorization header; {EXPECTED}"
            ))),
        };
    };
    let bytes = value.as_bytes();
    if let Some(password) = super::route::basic_password(bytes) {
        return Ok(password);
    }
    let text = std::str::from_utf8(bytes).unwrap_or("").trim();
    if let Some((scheme, token)) = text.split_once(' ') {
        if scheme.eq_ignore_ascii_case("token") && !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    match auth::bearer(Some(bytes)) {
        Bearer::Token(t) => Ok(t.to_owned()),
        _ => Err(ApiError::Unauthorized(format!(
            "malformed Authorization header; {EXPECTED}"
        ))),
    }
}

/// Where a push goes: the ingest service, the key's owner, the request's arrival time.
#[derive(Clone, Copy)]
struct Target<'a> {
    ingest: &'a Ingest,
    owner: &'a KeyOwner,
    now_ms: i64,
}

/// Read, decode, check the project and its series cap, append; the number of samples once
/// they are durable.
async fn store(
    target: Target<'_>,
    limits: BodyLimits,
    req: Request<Incoming>,
    query: &Query,
    format: Format,
    otlp: &OtlpOutcome,
) -> Result<u64, ApiError> {
    let Target {
        ingest,
        owner,
        now_ms,
    } = target;
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    let batch = match format {
        Format::RemoteWrite => {
            check_remote_write_headers(&mut headers)?;
            let bytes = super::body::read(&headers, body, limits).await?;
            ingest::remote_write::parse(&bytes, now_ms)
        }
        Format::Influx { v1 } => {
            let target = if v1 { "db" } else { "bucket" };
            if let Some(p) = query.get(target).filter(|p| !p.is_empty()) {
                if p != owner.project_id {
                    return Err(ApiError::Forbidden(format!(
                        "{target} {p:?} is not this API key's project; it writes to {:?}",
                        owner.project_id
                    )));
                }
            }
            let given = query.get("precision").unwrap_or("");
            let precision = Precision::parse(given).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "precision {given:?} is not one of ns, us, ms, s (v1 also n, u, m, h)"
                ))
            })?;
            let bytes = super::body::read(&headers, body, limits).await?;
            ingest::influx::parse(&bytes, precision, now_ms)
        }
        Format::Pushgateway { path } => {
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let grouping = ingest::prom_text::grouping_labels(&segments)
                .map_err(|e| ApiError::BadRequest(e.message))?;
            check_text_format(&headers)?;
            let bytes = super::body::read(&headers, body, limits).await?;
            ingest::prom_text::parse(&bytes, &grouping, now_ms)
        }
        Format::Otlp => {
            let encoding = otlp_encoding(&headers)?;
            let bytes = super::body::read(&headers, body, limits).await?;
            let decoded = ingest::otlp::parse(&bytes, encoding, now_ms)
                .map_err(|e| ApiError::BadRequest(e.message))?;
            *otlp.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((encoding, decoded.rejected_points, decoded.rejected_why));
            // OTLP senders retry only 429, 502, 503 and 504: a full disk is "try later" too.
            return commit(ingest, &owner.project_id, &decoded.batch)
                .await
                .map_err(|e| match e {
                    ApiError::InsufficientStorage(m) => ApiError::Unavailable(m),
                    other => other,
                });
        }
    }
    .map_err(|e: IngestError| ApiError::BadRequest(e.message))?;
    commit(ingest, &owner.project_id, &batch).await
}

/// OTLP's two encodings, by `Content-Type`.
fn otlp_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/x-protobuf or application/json for OTLP, not {other:?}"
        ))),
    }
}

/// OTLP's 200: an `ExportMetricsServiceResponse`, in the request's encoding, with a partial
/// success when points were rejected.
fn otlp_response(encoding: Encoding, rejected: u64, why: String) -> Reply {
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
    };
    let response = ExportMetricsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: why,
        }),
    };
    match encoding {
        Encoding::Protobuf => super::reply::raw(
            StatusCode::OK,
            "application/x-protobuf",
            prost::Message::encode_to_vec(&response),
        ),
        Encoding::Json => super::reply::raw(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
        ),
    }
}

/// A Pushgateway push must be in the text format: the protobuf one (the Go client's default)
/// is refused with what to send instead.
fn check_text_format(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("protobuf") {
        return Err(ApiError::UnsupportedMediaType(
            "the protobuf exposition format is not supported; push the text format (Content-Type: text/plain; version=0.0.4; the Go client: push.New(...).Format(expfmt.FmtText))".into(),
        ));
    }
    Ok(())
}

/// Remote write 1.0's headers: a protobuf body, snappy-encoded. A 2.0 sender (its content
/// type names `io.prometheus.write.v2.Request`) is told 415, which makes it fall back to 1.0.
/// The snappy encoding is taken off the headers: the remote-write parser undoes it.
fn check_remote_write_headers(headers: &mut HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence != "application/x-protobuf" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/x-protobuf (Prometheus remote write 1.0), not {essence:?}"
        )));
    }
    if content_type.contains("io.prometheus.write.v2") {
        return Err(ApiError::UnsupportedMediaType(
            "remote write 2.0 is not supported; send remote write 1.0 (protobuf_message: prometheus.WriteRequest)".into(),
        ));
    }
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("snappy") => {
            headers.remove(header::CONTENT_ENCODING);
            Ok(())
        }
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Encoding {other:?} is not supported for remote write; use snappy"
        ))),
    }
}

/// The project's series cap, the compaction backlog, then the journal: Ok once durable.
async fn commit(ingest: &Ingest, project: &str, batch: &SeriesBatch) -> Result<u64, ApiError> {
    if batch.sample_count() == 0 {
        return Ok(0);
    }
    if ingest.memtable.count_new(project, batch.series_ids()) > 0 {
        // Series acknowledged a moment ago may not be in the memtable yet (the applier
        // follows the 2xx): count once it has caught up, which takes at most one frame's
        // apply. Only a request that creates series waits; pushes at the same moment may
        // still pass the cap together by what they create.
        ingest.journal.wait_applied();
        let new = ingest.memtable.count_new(project, batch.series_ids());
        let have = ingest.memtable.metric_count(project);
        let cap = ingest.max_series_per_project;
        if have + new > cap {
            return Err(ApiError::BadRequest(format!(
                "this request would create {new} new series in project {project:?}, which has {have}; the limit is {cap} (--max-series-per-project). Nothing was stored; a label with unbounded values (ids, timestamps) is the usual cause"
            )));
        }
    }
    check_backlog(ingest)?;
    let valid = batch.valid(project);
    ingest.journal.append(&valid).await?;
    if ingest.changes.listening(project) {
        ingest.changes.publish(project, batch.series_ids());
    }
    Ok(batch.sample_count() as u64)
}
