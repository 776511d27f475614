//! Read-back: the metric catalog of a project and the raw points of one metric, merged from
//! segments and the journal tail, so a sample is readable as soon as its POST got 200.

use super::reply::{json, ApiError, Reply};
use super::route::{AdminToken, Query};
use crate::app::App;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;

/// Points returned when `limit` is not given.
pub const DEFAULT_POINT_LIMIT: i64 = 1000;
/// Most points one response may carry; page with `from` for more.
pub const MAX_POINT_LIMIT: i64 = 100_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricView<'a> {
    metric_id: &'a str,
    metric_name: &'a str,
    unit: Option<&'a str>,
    first_timestamp: i64,
    last_timestamp: i64,
    #[serde(serialize_with = "number")]
    last_value: f64,
    sample_count: u64,
}

fn require_project(app: &App, project: &str) -> Result<(), ApiError> {
    match app.store.project(project)? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("project {project:?} not found"))),
    }
}

pub fn catalog(app: &App, _: AdminToken, project: &str) -> Result<Reply, ApiError> {
    require_project(app, project)?;
    app.journal.wait_applied();
    let entries = app.memtable.catalog(project);
    let store = &app.store;
    // A write at or before a metric's last compacted timestamp may have replaced a segment
    // sample; that is settled here, at read time, so the write path never reads the store.
    let counts: Vec<u64> = entries
        .iter()
        .map(|(id, e)| e.sample_count(&mut |ts| store.contains(project, id, ts).unwrap_or(false)))
        .collect();
    let metrics: Vec<MetricView> = entries
        .iter()
        .zip(counts)
        .map(|((id, e), sample_count)| MetricView {
            metric_id: id,
            metric_name: &e.metric_name,
            unit: e.unit.as_deref(),
            first_timestamp: e.first_timestamp,
            last_timestamp: e.last_timestamp,
            last_value: e.last_value,
            sample_count,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "projectId": project, "metrics": metrics }),
    ))
}

#[derive(Serialize)]
struct PointView<'a> {
    timestamp: i64,
    #[serde(serialize_with = "number")]
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PointsView<'a> {
    project_id: &'a str,
    metric_id: &'a str,
    metric_name: &'a str,
    unit: Option<&'a str>,
    points: Vec<PointView<'a>>,
    /// True when `limit` cut the answer; ask again with `from` = last timestamp + 1.
    truncated: bool,
}

pub fn points(
    app: &App,
    _: AdminToken,
    project: &str,
    metric: &str,
    q: &Query,
) -> Result<Reply, ApiError> {
    require_project(app, project)?;
    // Every write acknowledged before this read must be visible to it.
    app.journal.wait_applied();
    let from = q.int("from")?.unwrap_or(0);
    let to = q.int("to")?.unwrap_or(i64::MAX);
    let limit = q.int("limit")?.unwrap_or(DEFAULT_POINT_LIMIT);
    if !(1..=MAX_POINT_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_POINT_LIMIT}"
        )));
    }
    if from > to {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    let Some(entry) = app.memtable.catalog_entry(project, metric) else {
        return Err(ApiError::NotFound(format!(
            "metric {metric:?} not found in project {project:?}"
        )));
    };
    // Memtable first, then segments: a compaction that finishes in between has committed
    // before it drops the memtable copy, so the sample is seen at least once. The two sorted
    // streams merge with the memtable winning on equal timestamps (it is newer), and the
    // segment scan stops once the page is full.
    let tail = app.memtable.read(project, metric, from, to);
    let mut tail = tail.into_iter().peekable();
    let want = limit as usize + 1;
    let mut merged: Vec<(i64, f64, Option<Box<str>>)> = Vec::with_capacity(want.min(4096));
    app.store
        .scan_samples(project, metric, from, to, &mut |s| {
            while let Some((ts, _)) = tail.peek() {
                if *ts > s.timestamp_ms || merged.len() >= want {
                    break;
                }
                let (ts, p) = tail.next().expect("BUG: peeked just above");
                merged.push((ts, p.value, p.metadata));
            }
            if merged.last().is_none_or(|last| last.0 < s.timestamp_ms) && merged.len() < want {
                merged.push((s.timestamp_ms, s.value, s.metadata));
            }
            merged.len() < want
        })?;
    merged.extend(
        tail.take(want.saturating_sub(merged.len()))
            .map(|(ts, p)| (ts, p.value, p.metadata)),
    );
    let truncated = merged.len() > limit as usize;
    let kept: Vec<(i64, f64, Option<Box<RawValue>>)> = merged
        .into_iter()
        .take(limit as usize)
        .map(|(ts, v, m)| (ts, v, m.and_then(|m| RawValue::from_string(m.into()).ok())))
        .collect();
    let points = kept
        .iter()
        .map(|(ts, v, m)| PointView {
            timestamp: *ts,
            value: *v,
            metadata: m.as_deref(),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &PointsView {
            project_id: project,
            metric_id: metric,
            metric_name: &entry.metric_name,
            unit: entry.unit.as_deref(),
            points,
            truncated,
        },
    ))
}

/// Writes whole numbers without a fraction (`42`, not `42.0`), as the client sent them.
fn number<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}
