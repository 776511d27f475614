//! Read-back: the metric catalog of a project, and queries over one metric (`…/points`) or
//! several (`…/query`), raw or aggregated, as JSON or CSV. Every read first waits for the
//! journal's applier, so a sample is readable as soon as its POST got 200.

use super::reply::{json, raw, streamed, ApiError, Reply};
use super::route::{Query, ReadAccess};
use crate::clock;
use crate::memtable::CatalogEntry;
use crate::query::plan::NO_LIMIT;
use crate::query::{self, Mode, Params, Plan, RawPoint, SeriesResult};
use crate::service::Reader;
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fmt::Write as _;

/// Points per chunk of a streamed export, and bytes gathered before a send: big enough that
/// per-chunk overhead vanishes, small enough that memory stays flat.
const EXPORT_CHUNK_POINTS: usize = 4096;
const EXPORT_SEND_BYTES: usize = 64 * 1024;

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

fn require_project(reader: &Reader, project: &str) -> Result<(), ApiError> {
    match reader.store.project(project)? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("project {project:?} not found"))),
    }
}

/// The catalog answers "latest value of every metric" from memory: no segment is read
/// except to settle whether a late write replaced a compacted sample.
pub fn catalog(reader: &Reader, access: &ReadAccess, project: &str) -> Result<Reply, ApiError> {
    access.check(project)?;
    require_project(reader, project)?;
    reader.journal.wait_applied();
    let entries = reader.memtable.catalog(project);
    let store = &reader.store;
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
    // Serialized straight from the views: building a `serde_json::Value` first cost a third
    // of the time for a catalog of 10,000 metrics.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct CatalogView<'a> {
        project_id: &'a str,
        metrics: Vec<MetricView<'a>>,
    }
    Ok(json(
        StatusCode::OK,
        &CatalogView {
            project_id: project,
            metrics,
        },
    ))
}

/// How the client wants the answer.
#[derive(Clone, Copy, PartialEq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// `format=json|csv` wins over `Accept: text/csv`; JSON otherwise.
    pub fn pick(q: &Query, accept: Option<&str>) -> Result<Format, ApiError> {
        match q.get("format") {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::BadRequest(format!(
                "format must be json or csv, not {other:?}"
            ))),
            None if accept.is_some_and(|a| a.contains("text/csv")) => Ok(Format::Csv),
            None => Ok(Format::Json),
        }
    }
}

/// One metric to query, with what the catalog knows of it.
struct Target {
    id: String,
    entry: CatalogEntry,
}

fn targets(reader: &Reader, project: &str, ids: &[&str]) -> Result<Vec<Target>, ApiError> {
    ids.iter()
        .map(|id| match reader.memtable.catalog_entry(project, id) {
            Some(entry) => Ok(Target {
                id: (*id).to_owned(),
                entry,
            }),
            None => Err(ApiError::NotFound(format!(
                "metric {id:?} not found in project {project:?}"
            ))),
        })
        .collect()
}

fn plan_for(q: &Query, targets: &[Target]) -> Result<Plan, ApiError> {
    let params = Params {
        from: q.get("from"),
        to: q.get("to"),
        step: q.get("step"),
        agg: q.get("agg"),
        max_points: q.get("maxPoints"),
        limit: q.get("limit"),
        wheres: q.all("where"),
    };
    let span = targets
        .iter()
        .map(|t| (t.entry.first_timestamp, t.entry.last_timestamp))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    Plan::parse(&params, clock::now_ms(), span).map_err(|e| ApiError::BadRequest(e.0))
}

fn execute(
    reader: &Reader,
    project: &str,
    targets: &[Target],
    plan: &Plan,
) -> Result<Vec<SeriesResult>, ApiError> {
    targets
        .iter()
        .map(|t| {
            let (result, stats) =
                query::run(&reader.store, &reader.memtable, project, &t.id, plan)?;
            tracing::debug!(
                project,
                metric = %t.id,
                segments_summarized = stats.segments_summarized,
                summarized = stats.blocks_summarized,
                decoded = stats.blocks_decoded,
                "query"
            );
            Ok(result)
        })
        .collect()
}

/// The query parameters of `points` (docs/api.md); `multi` takes `metricIds` too.
const POINTS_PARAMS: [&str; 8] = [
    "from",
    "to",
    "step",
    "agg",
    "maxPoints",
    "limit",
    "where",
    "format",
];

/// `GET /api/v1/projects/{p}/metrics/{m}/points`: one metric, raw or aggregated.
pub fn points(
    reader: &Reader,
    access: &ReadAccess,
    project: &str,
    metric: &str,
    q: &Query,
    format: Format,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    q.reject_unknown(&POINTS_PARAMS)?;
    require_project(reader, project)?;
    reader.journal.wait_applied();
    let targets = targets(reader, project, &[metric])?;
    let plan = plan_for(q, &targets)?;
    if plan.mode == (Mode::Raw { limit: NO_LIMIT }) {
        return stream_raw(reader, project, targets, plan, format, true);
    }
    let results = execute(reader, project, &targets, &plan)?;
    let (t, result) = (&targets[0], &results[0]);
    if format == Format::Csv {
        return Ok(csv_reply(match result {
            SeriesResult::Raw { points, .. } => raw_csv(None, points),
            SeriesResult::Buckets(b) => wide_csv(&["value"], &[b]),
        }));
    }
    let body = SeriesView::new(t, result);
    let header = PlanView::new(&plan);
    Ok(json(
        StatusCode::OK,
        &MetricAnswer {
            agg: header.agg,
            from: header.from,
            metric_id: &t.id,
            metric_name: &t.entry.metric_name,
            points: body.points,
            project_id: project,
            step: header.step,
            to: header.to,
            truncated: body.truncated,
            unit: t.entry.unit.as_deref(),
        },
    ))
}

/// One metric's answer, fields in the order clients have seen. Serialized directly, never
/// through a `serde_json::Value`: that conversion re-parsed each point's stored metadata
/// under serde_json's nesting limit (128), and one sample with deeper metadata (accepted
/// before ingest limited it) turned every read of its metric into a 500.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricAnswer<'a> {
    agg: Option<String>,
    from: i64,
    metric_id: &'a str,
    metric_name: &'a str,
    points: Vec<PointView>,
    project_id: &'a str,
    step: Option<i64>,
    to: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
    unit: Option<&'a str>,
}

/// Several metrics' raw points; serialized directly for the reason `MetricAnswer` gives.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RawSeriesAnswer<'a> {
    from: i64,
    project_id: &'a str,
    series: Vec<SeriesView<'a>>,
    to: i64,
}

/// `GET /api/v1/projects/{p}/query?metricIds=a,b`: several metrics in one round trip.
/// Aggregated answers share one `timestamps` array; each series has a value (or null) per
/// timestamp, so a chart draws them without re-aligning.
pub fn multi(
    reader: &Reader,
    access: &ReadAccess,
    project: &str,
    q: &Query,
    format: Format,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    let known: Vec<&str> = POINTS_PARAMS.iter().copied().chain(["metricIds"]).collect();
    q.reject_unknown(&known)?;
    require_project(reader, project)?;
    let ids: Vec<&str> = q
        .all("metricIds")
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::BadRequest(
            "metricIds is required: a comma-separated list of metricIds".into(),
        ));
    }
    if ids.len() > query::plan::MAX_METRICS_PER_QUERY {
        return Err(ApiError::BadRequest(format!(
            "metricIds names {} metrics; at most {} per query",
            ids.len(),
            query::plan::MAX_METRICS_PER_QUERY
        )));
    }
    reader.journal.wait_applied();
    let targets = targets(reader, project, &ids)?;
    let plan = plan_for(q, &targets)?;
    if plan.mode == (Mode::Raw { limit: NO_LIMIT }) {
        return stream_raw(reader, project, targets, plan, format, false);
    }
    let results = execute(reader, project, &targets, &plan)?;
    let header = PlanView::new(&plan);
    match plan.mode {
        Mode::Raw { .. } => {
            if format == Format::Csv {
                let mut out = String::from(MULTI_RAW_CSV_HEADER);
                for (t, r) in targets.iter().zip(&results) {
                    if let SeriesResult::Raw { points, .. } = r {
                        push_raw_rows(&mut out, Some(&t.id), points);
                    }
                }
                return Ok(csv_reply(out));
            }
            let series: Vec<_> = targets
                .iter()
                .zip(&results)
                .map(|(t, r)| SeriesView::new(t, r))
                .collect();
            Ok(json(
                StatusCode::OK,
                &RawSeriesAnswer {
                    from: header.from,
                    project_id: project,
                    series,
                    to: header.to,
                },
            ))
        }
        Mode::Aggregate { .. } => {
            let buckets: Vec<&Vec<(i64, f64)>> = results
                .iter()
                .map(|r| match r {
                    SeriesResult::Buckets(b) => b,
                    SeriesResult::Raw { .. } => unreachable!("BUG: aggregate plan gave raw"),
                })
                .collect();
            if format == Format::Csv {
                let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
                return Ok(csv_reply(wide_csv(&ids, &buckets)));
            }
            let (timestamps, columns) = align(&buckets);
            let series: Vec<_> = targets
                .iter()
                .zip(columns)
                .map(|(t, values)| AlignedView {
                    metric_id: &t.id,
                    metric_name: &t.entry.metric_name,
                    unit: t.entry.unit.as_deref(),
                    values: values.into_iter().map(|v| v.map(Number)).collect(),
                })
                .collect();
            Ok(json(
                StatusCode::OK,
                &serde_json::json!({ "projectId": project, "from": header.from,
                    "to": header.to, "step": header.step, "agg": header.agg,
                    "timestamps": timestamps, "series": series }),
            ))
        }
    }
}

/// The union of bucket timestamps, and per series a value or None for each.
pub(super) fn align(series: &[&Vec<(i64, f64)>]) -> (Vec<i64>, Vec<Vec<Option<f64>>>) {
    let mut timestamps: Vec<i64> = series.iter().flat_map(|s| s.iter().map(|p| p.0)).collect();
    timestamps.sort_unstable();
    timestamps.dedup();
    let columns = series
        .iter()
        .map(|s| {
            let mut it = s.iter().peekable();
            timestamps
                .iter()
                .map(|ts| it.next_if(|p| p.0 == *ts).map(|p| p.1))
                .collect()
        })
        .collect();
    (timestamps, columns)
}

struct PlanView {
    from: i64,
    to: i64,
    step: Option<i64>,
    agg: Option<String>,
}

impl PlanView {
    fn new(plan: &Plan) -> PlanView {
        let (step, agg) = match &plan.mode {
            Mode::Raw { .. } => (None, None),
            Mode::Aggregate { agg, bucketing } => (
                match bucketing {
                    query::Bucketing::Step(s) => Some(*s),
                    query::Bucketing::Whole { .. } => None,
                },
                Some(agg.name()),
            ),
        };
        PlanView {
            from: plan.from_ms,
            to: plan.to_ms,
            step,
            agg,
        }
    }
}

#[derive(Serialize)]
struct PointView {
    timestamp: i64,
    value: Number,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Box<RawValue>>,
}

impl From<&RawPoint> for PointView {
    fn from(p: &RawPoint) -> PointView {
        PointView {
            timestamp: p.timestamp_ms,
            value: Number(p.value),
            // Stored metadata is JSON text that was valid when it arrived.
            metadata: p
                .metadata
                .as_deref()
                .and_then(|m| RawValue::from_string(m.to_owned()).ok()),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeriesView<'a> {
    metric_id: &'a str,
    metric_name: &'a str,
    unit: Option<&'a str>,
    points: Vec<PointView>,
    /// Raw answers only: true when `limit` cut the answer; ask again with `from` = last
    /// timestamp + 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    truncated: Option<bool>,
}

impl<'a> SeriesView<'a> {
    fn new(t: &'a Target, r: &SeriesResult) -> SeriesView<'a> {
        let (points, truncated) = match r {
            SeriesResult::Raw { points, truncated } => (
                points.iter().map(PointView::from).collect(),
                Some(*truncated),
            ),
            SeriesResult::Buckets(b) => (
                b.iter()
                    .map(|(ts, v)| PointView {
                        timestamp: *ts,
                        value: Number(*v),
                        metadata: None,
                    })
                    .collect(),
                None,
            ),
        };
        SeriesView {
            metric_id: &t.id,
            metric_name: &t.entry.metric_name,
            unit: t.entry.unit.as_deref(),
            points,
            truncated,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlignedView<'a> {
    metric_id: &'a str,
    metric_name: &'a str,
    unit: Option<&'a str>,
    values: Vec<Option<Number>>,
}

/// `limit=all`: points are formatted chunk by chunk on a blocking thread and sent as they are
/// ready, so memory does not grow with the range. An error midway aborts the response (see
/// `StreamedBody`). The scan holds one redb read transaction until it ends.
fn stream_raw(
    reader: &Reader,
    project: &str,
    targets: Vec<Target>,
    plan: Plan,
    format: Format,
    single: bool,
) -> Result<Reply, ApiError> {
    if format == Format::Json && !single {
        return Err(ApiError::BadRequest(
            "limit=all over several metrics is streamed as CSV only: add format=csv, or query each metric".into(),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let (reader, project) = (reader.clone(), project.to_owned());
    let mut out = match format {
        Format::Csv if single => RAW_CSV_HEADER.to_owned(),
        Format::Csv => MULTI_RAW_CSV_HEADER.to_owned(),
        Format::Json => {
            let t = &targets[0];
            let head = serde_json::json!({
                "projectId": project, "metricId": t.id, "metricName": &*t.entry.metric_name,
                "unit": t.entry.unit.as_deref(), "from": plan.from_ms, "to": plan.to_ms,
                "step": null, "agg": null,
            })
            .to_string();
            // `{…}` → `{…,"points":[`; the rest follows as the points arrive.
            format!("{},\"points\":[", &head[..head.len() - 1])
        }
    };
    tokio::task::spawn_blocking(move || {
        let mut first = true;
        for t in &targets {
            let metric = (!single).then_some(t.id.as_str());
            let result = query::run_chunked(
                &reader.store,
                &reader.memtable,
                &project,
                &t.id,
                &plan,
                EXPORT_CHUNK_POINTS,
                &mut |points| {
                    match format {
                        Format::Csv => push_raw_rows(&mut out, metric, points),
                        Format::Json => push_json_points(&mut out, points, &mut first),
                    }
                    if out.len() < EXPORT_SEND_BYTES {
                        return true;
                    }
                    tx.blocking_send(Ok(Bytes::from(std::mem::take(&mut out))))
                        .is_ok()
                },
            );
            if let Err(e) = result {
                tracing::error!(project, metric = %t.id, error = %e, "export failed midway; the response is cut off");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        }
        if format == Format::Json {
            out.push_str("],\"truncated\":false}");
        }
        let _ = tx.blocking_send(Ok(Bytes::from(out)));
    });
    Ok(streamed(
        match format {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        },
        rx,
    ))
}

fn push_json_points(out: &mut String, points: &[RawPoint], first: &mut bool) {
    for p in points {
        if !std::mem::take(first) {
            out.push(',');
        }
        let view = PointView::from(p);
        out.push_str(&serde_json::to_string(&view).expect("BUG: points always serialize"));
    }
}

const RAW_CSV_HEADER: &str = "timestamp,value,metadata\n";
const MULTI_RAW_CSV_HEADER: &str = "metricId,timestamp,value,metadata\n";

/// `timestamp,value,metadata` rows (with a leading `metricId` column when given).
fn raw_csv(metric: Option<&str>, points: &[RawPoint]) -> String {
    let mut out = String::from(RAW_CSV_HEADER);
    push_raw_rows(&mut out, metric, points);
    out
}

fn push_raw_rows(out: &mut String, metric: Option<&str>, points: &[RawPoint]) {
    for p in points {
        if let Some(m) = metric {
            out.push_str(&csv_field(m));
            out.push(',');
        }
        let _ = write!(out, "{},", p.timestamp_ms);
        push_number(out, p.value);
        out.push(',');
        if let Some(m) = &p.metadata {
            out.push_str(&csv_field(m));
        }
        out.push('\n');
    }
}

/// `timestamp,<metricId>…` with an empty cell where a series has no value in a bucket.
pub(super) fn wide_csv(ids: &[&str], series: &[&Vec<(i64, f64)>]) -> String {
    let mut out = String::from("timestamp");
    for id in ids {
        out.push(',');
        out.push_str(&csv_field(id));
    }
    out.push('\n');
    let (timestamps, columns) = align(series);
    for (row, ts) in timestamps.iter().enumerate() {
        let _ = write!(out, "{ts}");
        for c in &columns {
            out.push(',');
            if let Some(v) = c[row] {
                push_number(&mut out, v);
            }
        }
        out.push('\n');
    }
    out
}

/// RFC 4180 quoting, only when needed.
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A value as JSON replies write it: whole numbers without a fraction, others in their
/// shortest round-trip form, with an exponent when very large or small. (`{v}` wrote
/// 1.8e308 as 309 digits and 5e-324 as 0.000… over 300 characters.)
pub(super) fn push_number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

pub(super) fn csv_reply(body: String) -> Reply {
    raw(StatusCode::OK, "text/csv; charset=utf-8", body.into_bytes())
}

/// A value written as the client sent it: whole numbers without a fraction (`42`, not `42.0`).
pub(super) struct Number(pub(super) f64);

impl Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        number(&self.0, s)
    }
}

fn number<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata nested past serde_json's limit of 128 goes out as stored, with no 500.
    #[test]
    fn deeply_nested_stored_metadata_is_answered_as_stored() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let point = PointView {
            timestamp: 5,
            value: Number(1.0),
            metadata: Some(RawValue::from_string(deep.clone()).unwrap()),
        };
        let answer = MetricAnswer {
            agg: None,
            from: 0,
            metric_id: "m",
            metric_name: "M",
            points: vec![point],
            project_id: "p",
            step: None,
            to: 10,
            truncated: Some(false),
            unit: None,
        };
        // The route this replaced: through a `Value`, the same answer is an error (and
        // `json!` unwrapped it: a panic, answered 500).
        assert!(serde_json::to_value(&answer).is_err());
        let reply = json(StatusCode::OK, &answer);
        assert_eq!(reply.status(), StatusCode::OK);
        let text = serde_json::to_string(&answer).unwrap();
        assert!(text.contains(&deep), "{text}");
        assert!(text.starts_with(r#"{"agg":null,"from":0,"metricId":"m","metricName":"M","points":[{"timestamp":5,"value":1,"metadata":{"a":[[["#));
    }

    #[test]
    fn csv_numbers_are_short_and_read_back_exactly() {
        for (v, text) in [
            (42.0, "42"),
            (-3.0, "-3"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (123456.789, "123456.789"),
            (1e20, "1e20"),
            (f64::MAX, "1.7976931348623157e308"),
            (5e-324, "5e-324"),
            (1e-7, "1e-7"),
        ] {
            let mut out = String::new();
            push_number(&mut out, v);
            assert_eq!(out, text);
            assert_eq!(out.parse::<f64>().unwrap(), v);
        }
    }
}
