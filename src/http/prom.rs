//! The Prometheus HTTP API at the server's root, for Grafana's Prometheus data source and
//! `promtool`: `/api/v1/query`, `/query_range`, `/labels`, `/label/{name}/values`,
//! `/series`, `/metadata`, `/status/buildinfo`, and the empty `/rules` and
//! `/query_exemplars` that Grafana probes. Answers in Prometheus's envelope. A read key sees
//! its project, the admin token (or a signed-in user) every project; series are labelled as
//! `promql::labels` says. The series source runs the query engine's raw reads.

use super::reply::{json, raw, Reply};
use super::route::{Query, ReadAccess};
use crate::ingest::series::parse_canonical;
use crate::promql::labels::{self, Labels};
use crate::promql::{self, ErrorKind, EvalError, Series, Source, Value};
use crate::query::{self, Plan};
use crate::service::Reader;
use hyper::StatusCode;
use promql_parser::label::Matcher;
use serde_json::{json, Value as Json};
use std::io::Write;

/// The Prometheus version the API answers like (Grafana picks its features by it).
const PROMETHEUS_VERSION: &str = "2.42.0";

/// A Prometheus error: `bad_data` 400, `execution` 422.
fn prom_error(e: &EvalError) -> Reply {
    let (status, kind) = match e.kind {
        ErrorKind::BadData => (StatusCode::BAD_REQUEST, "bad_data"),
        ErrorKind::Execution => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
        ErrorKind::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
    };
    json(
        status,
        &json!({"status": "error", "errorType": kind, "error": e.message}),
    )
}

fn bad_param(name: &str, why: impl std::fmt::Display) -> EvalError {
    EvalError {
        kind: ErrorKind::BadData,
        message: format!("invalid parameter {name:?}: {why}"),
    }
}

/// The envelope: the data on success, Prometheus's error otherwise.
fn answer(r: Result<Json, EvalError>) -> Reply {
    match r {
        Ok(data) => json(StatusCode::OK, &json!({"status": "success", "data": data})),
        Err(e) => prom_error(&e),
    }
}

/// A value as Prometheus writes it: the shortest decimal, `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn seconds(ms: i64) -> Json {
    json!(ms as f64 / 1000.0)
}

/// `time`, `start`, `end`: Unix seconds (with a fraction) or RFC 3339.
fn parse_time(name: &str, s: &str) -> Result<i64, EvalError> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() {
            return Ok((secs * 1000.0).round() as i64);
        }
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| bad_param(name, format!("cannot parse {s:?} to a valid timestamp")))
}

/// `step`, `lookback_delta`: seconds (with a fraction) or a duration like `15s`, `1m`.
fn parse_duration(name: &str, s: &str) -> Result<i64, EvalError> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok((secs * 1000.0).round().max(1.0) as i64);
        }
    }
    crate::query::plan::parse_duration_ms(s)
        .ok_or_else(|| bad_param(name, format!("cannot parse {s:?} to a valid duration")))
}

/// The series a request may see: a read key's project, or every project.
struct StoreSource<'a> {
    reader: &'a Reader,
    access: &'a ReadAccess,
}

/// A stored metric a selector matched: its project, metricId, labels, and the project's
/// metadata label keys when the metric is a webhook's (empty otherwise).
struct Found {
    project: String,
    id: String,
    labels: Labels,
    label_keys: LabelKeys,
}

/// A project's metadata label keys, shared by its metrics.
type LabelKeys = std::sync::Arc<[String]>;

/// Whether `l` satisfies every matcher (a missing label is "").
fn all_match(matchers: &[Matcher], l: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.is_match(l.get(&m.name).map_or("", String::as_str)))
}

impl StoreSource<'_> {
    /// The visible projects, with their metadata label keys.
    fn projects(&self) -> Result<Vec<(String, LabelKeys)>, EvalError> {
        let projects = match self.access {
            ReadAccess::Project(p) => match self.reader.store.project(p).map_err(store_error)? {
                Some(found) => vec![found],
                None => return Ok(vec![(p.clone(), Vec::new().into())]),
            },
            ReadAccess::Admin => self.reader.store.projects().map_err(store_error)?,
        };
        Ok(projects
            .into_iter()
            .map(|p| (p.id, p.label_keys.into()))
            .collect())
    }

    /// Every visible metric that may match `matchers` (with `span`, only those with samples
    /// between its start and end, ms). A metric with metadata label keys is kept when its
    /// own labels match the matchers that do not name a key: which of its label sets match
    /// the rest is known only once its metadata is read (`split`).
    fn matching(
        &self,
        matchers: &[Matcher],
        span: Option<(i64, i64)>,
    ) -> Result<Vec<Found>, EvalError> {
        let mut out = Vec::new();
        for (project, keys) in self.projects()? {
            let project_ok = matchers
                .iter()
                .filter(|m| m.name == labels::PROJECT)
                .all(|m| m.is_match(&project));
            if !project_ok {
                continue;
            }
            let own: Vec<Matcher> = matchers
                .iter()
                .filter(|m| !keys.contains(&m.name))
                .cloned()
                .collect();
            for (id, entry) in self.reader.memtable.catalog(&project) {
                if span.is_some_and(|(a, b)| entry.last_timestamp < a || entry.first_timestamp > b)
                {
                    continue;
                }
                let l = labels::series_labels(&project, &id);
                // A labelled series (a push format's) has its labels in its metricId.
                let label_keys = if keys.is_empty() || parse_canonical(&id).is_some() {
                    Vec::new().into()
                } else {
                    keys.clone()
                };
                let ok = if label_keys.is_empty() {
                    all_match(matchers, &l)
                } else {
                    all_match(&own, &l)
                };
                if ok {
                    out.push(Found {
                        project: project.clone(),
                        id: id.to_string(),
                        labels: l,
                        label_keys,
                    });
                }
            }
        }
        Ok(out)
    }

    /// A metric with metadata label keys as one series per distinct combination of their
    /// values among its samples in `[from, to]`, those matching `matchers` kept.
    fn split(
        &self,
        f: &Found,
        matchers: &[Matcher],
        from: i64,
        to: i64,
    ) -> Result<Vec<Series>, EvalError> {
        let plan = Plan::raw(from, to);
        let mut sets: Vec<Series> = Vec::new();
        let mut by_labels: std::collections::HashMap<Vec<(String, String)>, usize> =
            Default::default();
        // Samples repeat their metadata: each distinct text is parsed once.
        let mut by_text: std::collections::HashMap<Option<Box<str>>, usize> = Default::default();
        let mut over = false;
        query::run_chunked(
            &self.reader.store,
            &self.reader.memtable,
            &f.project,
            &f.id,
            &plan,
            4096,
            &mut |chunk| {
                for p in chunk {
                    let set = match by_text.get(&p.metadata) {
                        Some(&i) => i,
                        None => {
                            let pairs =
                                labels::metadata_labels(p.metadata.as_deref(), &f.label_keys);
                            let i = match by_labels.get(&pairs) {
                                Some(&i) => i,
                                None => {
                                    if sets.len() == labels::MAX_METADATA_LABEL_SETS {
                                        over = true;
                                        return false;
                                    }
                                    let mut l = f.labels.clone();
                                    l.extend(pairs.iter().cloned());
                                    sets.push((l, Vec::new()));
                                    by_labels.insert(pairs, sets.len() - 1);
                                    sets.len() - 1
                                }
                            };
                            by_text.insert(p.metadata.clone(), i);
                            i
                        }
                    };
                    sets[set].1.push((p.timestamp_ms, p.value));
                }
                true
            },
        )
        .map_err(store_error)?;
        if over {
            return Err(EvalError {
                kind: ErrorKind::Execution,
                message: format!(
                    "metric {:?} of project {:?} has more than {} distinct combinations of its metadata labels ({}) in the range; narrow the range or the project's labelKeys",
                    f.id,
                    f.project,
                    labels::MAX_METADATA_LABEL_SETS,
                    f.label_keys.join(", ")
                ),
            });
        }
        sets.retain(|(l, _)| all_match(matchers, l));
        Ok(sets)
    }
}

fn store_error(e: impl std::fmt::Display) -> EvalError {
    EvalError {
        kind: ErrorKind::Execution,
        message: format!("reading the store: {e}"),
    }
}

impl Source for StoreSource<'_> {
    fn select(&self, matchers: &[Matcher], from: i64, to: i64) -> Result<Vec<Series>, EvalError> {
        // Each series' buffer is handed over whole (no copy).
        self.select_with(matchers, from, to, &|pts: &mut Vec<(i64, f64)>| {
            std::mem::take(pts)
        })
    }

    fn select_map<T: Send>(
        &self,
        matchers: &[Matcher],
        from: i64,
        to: i64,
        each: &crate::promql::eval::MapPoints<'_, T>,
    ) -> Result<Vec<(Labels, T)>, EvalError> {
        // One buffer per loading thread, reused from series to series.
        self.select_with(matchers, from, to, &|pts: &mut Vec<(i64, f64)>| {
            let t = each(pts);
            pts.clear();
            t
        })
    }
}

/// What a read series' buffer of points is handed to.
type MapBuffer<'a, T> = dyn Fn(&mut Vec<(i64, f64)>) -> T + Sync + 'a;

/// Fewest series worth a loading thread of their own.
const SERIES_PER_THREAD: usize = 32;

impl StoreSource<'_> {
    /// The matching series, each one's points in `[from, to]` given to `each` in a buffer
    /// it may keep (take) or leave (then it is reused); the results in the series' order.
    fn select_with<T: Send>(
        &self,
        matchers: &[Matcher],
        from: i64,
        to: i64,
        each: &MapBuffer<'_, T>,
    ) -> Result<Vec<(Labels, T)>, EvalError> {
        if matchers.iter().all(|m| m.is_match("")) {
            return Err(EvalError {
                kind: ErrorKind::BadData,
                message: "vector selector must contain at least one non-empty matcher".into(),
            });
        }
        let (plain, keyed): (Vec<Found>, Vec<Found>) = self
            .matching(matchers, Some((from, to)))?
            .into_iter()
            .partition(|f| f.label_keys.is_empty());
        let mut out = self.load(plain, from, to, each)?;
        for f in &keyed {
            for (l, mut pts) in self.split(f, matchers, from, to)? {
                let t = each(&mut pts);
                out.push((l, t));
            }
        }
        Ok(out)
    }

    /// Metrics without metadata labels, read and handed to `each` in their order: on up to
    /// one thread per core when there are many (decoding is the bulk of a wide query).
    fn load<T: Send>(
        &self,
        found: Vec<Found>,
        from: i64,
        to: i64,
        each: &MapBuffer<'_, T>,
    ) -> Result<Vec<(Labels, T)>, EvalError> {
        let part = |found: Vec<Found>| -> Result<Vec<(Labels, T)>, EvalError> {
            let mut pts = Vec::new();
            let mut out = Vec::with_capacity(found.len());
            for f in found {
                query::run_pairs(
                    &self.reader.store,
                    &self.reader.memtable,
                    &f.project,
                    &f.id,
                    from,
                    to,
                    &mut pts,
                )
                .map_err(store_error)?;
                out.push((f.labels, each(&mut pts)));
                pts.clear();
            }
            Ok(out)
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (found.len() / SERIES_PER_THREAD).clamp(1, cores);
        if threads == 1 {
            return part(found);
        }
        let per = found.len().div_ceil(threads);
        let mut parts: Vec<Vec<Found>> = Vec::with_capacity(threads);
        let mut rest = found.into_iter();
        for _ in 0..threads {
            parts.push(rest.by_ref().take(per).collect());
        }
        let loaded: Vec<Result<Vec<(Labels, T)>, EvalError>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|found| s.spawn(|| part(found)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a loading thread panicked"))
                .collect()
        });
        let mut out = Vec::new();
        for part in loaded {
            out.extend(part?);
        }
        Ok(out)
    }
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

/// `GET|POST /api/v1/query`.
pub fn instant(reader: &Reader, access: &ReadAccess, q: &Query) -> Reply {
    answer(instant_data(reader, access, q))
}

/// `timeout`: how long the query may run (default 2 minutes, as Prometheus's).
fn timeout(q: &Query) -> Result<std::time::Duration, EvalError> {
    Ok(match q.get("timeout") {
        Some(s) => std::time::Duration::from_millis(parse_duration("timeout", s)? as u64),
        None => promql::DEFAULT_TIMEOUT,
    })
}

fn lookback(q: &Query) -> Result<i64, EvalError> {
    q.get("lookback_delta")
        .map_or(Ok(promql::DEFAULT_LOOKBACK_MS), |s| {
            parse_duration("lookback_delta", s)
        })
}

fn instant_data(reader: &Reader, access: &ReadAccess, q: &Query) -> Result<Json, EvalError> {
    reader.journal.wait_applied();
    let expr = q
        .get("query")
        .ok_or_else(|| bad_param("query", "missing"))?;
    let t = match q.get("time") {
        Some(s) => parse_time("time", s)?,
        None => crate::clock::now_ms(),
    };
    let source = StoreSource { reader, access };
    let deadline = std::time::Instant::now() + timeout(q)?;
    Ok(
        match promql::instant_until(&source, expr, t, lookback(q)?, deadline)? {
            Value::Scalar(v) => {
                json!({"resultType": "scalar", "result": [seconds(t), format_value(v)]})
            }
            Value::String(s) => json!({"resultType": "string", "result": [seconds(t), s]}),
            Value::Vector(v) => json!({"resultType": "vector", "result": v.iter().map(|s| json!({
            "metric": labels_json(&s.labels), "value": [seconds(t), format_value(s.value)]})).collect::<Vec<_>>()}),
            Value::Matrix(m) => json!({"resultType": "matrix", "result": matrix_json(&m)}),
        },
    )
}

fn matrix_json(m: &[Series]) -> Vec<Json> {
    m.iter()
        .map(|(l, pts)| {
            json!({"metric": labels_json(l),
                   "values": pts.iter().map(|p| json!([seconds(p.0), format_value(p.1)])).collect::<Vec<_>>()})
        })
        .collect()
}

/// `GET|POST /api/v1/query_range`. The matrix is written straight into the body: a month
/// at a 1-minute step is 43,200 points a series, too many for a JSON tree.
pub fn range(reader: &Reader, access: &ReadAccess, q: &Query) -> Reply {
    match range_data(reader, access, q) {
        Ok(m) => raw(StatusCode::OK, "application/json", write_matrix(&m)),
        Err(e) => prom_error(&e),
    }
}

/// Seconds as Prometheus writes a timestamp: `1764700000` or `1764700000.5`.
fn write_seconds(out: &mut Vec<u8>, ms: i64) {
    let (s, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        let _ = write!(out, "{s}");
    } else {
        let digits = format!("{frac:03}");
        let _ = write!(out, "{s}.{}", digits.trim_end_matches('0'));
    }
}

fn write_matrix(m: &[Series]) -> Vec<u8> {
    let points: usize = m.iter().map(|s| s.1.len()).sum();
    let mut out = Vec::with_capacity(64 + points * 24);
    out.extend_from_slice(br#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, (labels, pts)) in m.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"metric":"#);
        serde_json::to_writer(&mut out, labels).expect("labels serialize");
        out.extend_from_slice(br#","values":["#);
        for (j, &(t, v)) in pts.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'[');
            write_seconds(&mut out, t);
            let _ = write!(out, ",\"{}\"]", format_value(v));
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}}");
    out
}

fn range_data(reader: &Reader, access: &ReadAccess, q: &Query) -> Result<Vec<Series>, EvalError> {
    reader.journal.wait_applied();
    let expr = q
        .get("query")
        .ok_or_else(|| bad_param("query", "missing"))?;
    let param = |name: &str| q.get(name).ok_or_else(|| bad_param(name, "missing"));
    let start = parse_time("start", param("start")?)?;
    let end = parse_time("end", param("end")?)?;
    let step = parse_duration("step", param("step")?)?;
    if end < start {
        return Err(bad_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let source = StoreSource { reader, access };
    let deadline = std::time::Instant::now() + timeout(q)?;
    promql::range_until(&source, expr, start, end, step, lookback(q)?, deadline)
}

/// The label sets of the series the `match[]` selectors name (all visible series without
/// one). A metric with metadata label keys gives one per combination among its samples in
/// the span (all of them without one).
fn matched(source: &StoreSource<'_>, q: &Query) -> Result<Vec<Labels>, EvalError> {
    let span = match (q.get("start"), q.get("end")) {
        (None, None) => None,
        (a, b) => Some((
            a.map_or(Ok(i64::MIN), |s| parse_time("start", s))?,
            b.map_or(Ok(i64::MAX), |s| parse_time("end", s))?,
        )),
    };
    let mut out: Vec<Labels> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |m: &[Matcher]| -> Result<(), EvalError> {
        for found in source.matching(m, span)? {
            let sets = if found.label_keys.is_empty() {
                vec![found.labels]
            } else {
                let (from, to) = span.unwrap_or((i64::MIN, i64::MAX));
                source
                    .split(&found, m, from, to)?
                    .into_iter()
                    .map(|s| s.0)
                    .collect()
            };
            for l in sets {
                if seen.insert(l.clone()) {
                    out.push(l);
                }
            }
        }
        Ok(())
    };
    let selectors = q.all("match[]");
    if selectors.is_empty() {
        add(&[])?;
    }
    for s in selectors {
        let expr = promql::parse(s)?;
        let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
            return Err(bad_param(
                "match[]",
                format!("{s:?} is not a series selector"),
            ));
        };
        let mut m = vs.matchers.matchers.clone();
        if let Some(name) = &vs.name {
            m.push(Matcher::new(
                promql_parser::label::MatchOp::Equal,
                labels::NAME,
                name,
            ));
        }
        add(&m)?;
    }
    Ok(out)
}

/// `GET|POST /api/v1/series`.
pub fn series(reader: &Reader, access: &ReadAccess, q: &Query) -> Reply {
    let source = StoreSource { reader, access };
    answer(matched(&source, q).map(|found| Json::Array(found.iter().map(labels_json).collect())))
}

/// `GET|POST /api/v1/labels`.
pub fn label_names(reader: &Reader, access: &ReadAccess, q: &Query) -> Reply {
    let source = StoreSource { reader, access };
    answer(matched(&source, q).map(|found| {
        let mut names: Vec<&String> = found.iter().flat_map(|f| f.keys()).collect();
        names.sort();
        names.dedup();
        json!(names)
    }))
}

/// `GET /api/v1/label/{name}/values`.
pub fn label_values(reader: &Reader, access: &ReadAccess, name: &str, q: &Query) -> Reply {
    let source = StoreSource { reader, access };
    answer(matched(&source, q).map(|found| {
        let mut values: Vec<&String> = found.iter().filter_map(|f| f.get(name)).collect();
        values.sort();
        values.dedup();
        json!(values)
    }))
}

/// `GET /api/v1/metadata`: each metric name's help (the metricName) and unit, as a gauge.
pub fn metadata(reader: &Reader, access: &ReadAccess, q: &Query) -> Reply {
    let source = StoreSource { reader, access };
    let projects = match source.projects() {
        Ok(p) => p,
        Err(e) => return answer(Err(e)),
    };
    let mut out = serde_json::Map::new();
    for (project, _) in projects {
        for (id, entry) in reader.memtable.catalog(&project) {
            let name = labels::family_name(&id);
            if q.get("metric").is_some_and(|m| m != name) {
                continue;
            }
            let row = json!({"type": "gauge", "help": entry.metric_name.as_str(),
                             "unit": entry.unit.as_deref().unwrap_or("")});
            let list = out.entry(name).or_insert_with(|| json!([]));
            if !list.as_array().is_some_and(|l| l.contains(&row)) {
                list.as_array_mut().expect("an array").push(row);
            }
        }
    }
    answer(Ok(Json::Object(out)))
}

/// `GET /api/v1/status/buildinfo`.
pub fn buildinfo() -> Reply {
    answer(Ok(
        json!({"version": PROMETHEUS_VERSION, "revision": concat!("stathook-", env!("CARGO_PKG_VERSION")),
                   "branch": "stathook", "buildUser": "stathook", "buildDate": "", "goVersion": "none"}),
    ))
}

/// `/api/v1/rules` and `/api/v1/query_exemplars`: Grafana asks; stathook has none.
pub fn empty(what: &str) -> Reply {
    match what {
        "rules" => answer(Ok(json!({"groups": []}))),
        _ => answer(Ok(json!([]))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_matrix_is_written_as_the_json_tree_would_be() {
        let labels: crate::promql::labels::Labels =
            [("__name__".to_string(), "m".to_string())].into();
        let m = vec![(
            labels,
            vec![(1_764_700_000_000, 1.5), (1_764_700_000_250, f64::NAN)],
        )];
        let v: serde_json::Value = serde_json::from_slice(&super::write_matrix(&m)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
                {"metric": {"__name__": "m"}, "values": [[1764700000, "1.5"], [1764700000.25, "NaN"]]}]}})
        );
    }

    #[test]
    fn values_are_written_as_prometheus_writes_them() {
        assert_eq!(super::format_value(3.0), "3");
        assert_eq!(super::format_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(super::format_value(1e21), "1000000000000000000000");
        assert_eq!(super::format_value(f64::NAN), "NaN");
        assert_eq!(super::format_value(f64::NEG_INFINITY), "-Inf");
    }
}
