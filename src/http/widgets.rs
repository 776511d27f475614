//! `GET …/dashboards/{d}/widgets/{w}/data` (and its share-link twin in `share.rs`): runs one
//! stored widget's queries and answers what the widget draws — a chart's aligned series, a
//! stat's or gauge's value with the previous period and a sparkline, a table's latest values,
//! a heartbeat strip's beats — as JSON or CSV. Only the widget's stored metrics and
//! aggregation are read, over the range asked for: that is all a share link can run. Reads
//! only; who may ask is the caller's business.

use super::read::{align, csv_field, csv_reply, push_number, wide_csv, Format, Number};
use super::reply::{json, ApiError, Reply};
use super::route::{Query, ReadAccess};
use crate::clock;
use crate::memtable::CatalogEntry;
use crate::query::plan::{auto_step, parse_time};
use crate::query::{self, Agg, Bucketing, Mode, Plan, SeriesResult};
use crate::service::Reader;
use crate::web::dashboard::{Dashboard, Widget};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;

/// Buckets of a chart when the page does not say (it sends its width's worth).
const DEFAULT_MAX_POINTS: i64 = 500;
const MAX_MAX_POINTS: i64 = 5_000;
/// Buckets of a stat's sparkline.
const SPARK_POINTS: i64 = 60;
/// Slots of a heartbeat strip at most: one per expected interval, up to this.
const MAX_HEARTBEAT_SLOTS: i64 = 120;
const PARAMS: [&str; 4] = ["from", "to", "maxPoints", "format"];

/// `GET /api/v1/projects/{p}/dashboards/{d}/widgets/{w}/data`.
pub fn project_widget(
    reader: &Reader,
    access: &ReadAccess,
    project: &str,
    dashboard: &str,
    widget: &str,
    q: &Query,
    format: Format,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    let dash: Dashboard = reader.store.dashboard(project, dashboard)?.ok_or_else(|| {
        ApiError::NotFound(format!("no dashboard {dashboard:?} in project {project:?}"))
    })?;
    data(reader, project, &dash, widget, q, format)
}

/// What `widget` of `dash` (in `project`) draws over the asked range.
pub fn data(
    reader: &Reader,
    project: &str,
    dash: &Dashboard,
    widget: &str,
    q: &Query,
    format: Format,
) -> Result<Reply, ApiError> {
    let span = Span::parse(q)?;
    let w = dash
        .widgets
        .iter()
        .find(|x| x.id == widget)
        .ok_or_else(|| {
            ApiError::NotFound(format!("no widget {widget:?} in dashboard {:?}", dash.id))
        })?;
    reader.journal.wait_applied();
    let run = Runner { reader, project };
    match w.kind.as_str() {
        "stat" | "gauge" => stat(&run, w, &span, format),
        "table" => table(&run, w, format),
        "heartbeat" => heartbeat(&run, w, &span, format),
        _ => chart(&run, w, &span, format),
    }
}

/// The range and resolution asked for: `from`/`to` as the query API takes them (default the
/// last 24 hours), `maxPoints` the chart's width in buckets.
struct Span {
    from: i64,
    to: i64,
    max_points: i64,
}

impl Span {
    fn parse(q: &Query) -> Result<Span, ApiError> {
        q.reject_unknown(&PARAMS)?;
        let now = clock::now_ms();
        let bad = |e: query::PlanError| ApiError::BadRequest(e.0);
        let from = parse_time("from", q.get("from").unwrap_or("-24h"), now).map_err(bad)?;
        let to = parse_time("to", q.get("to").unwrap_or("now"), now).map_err(bad)?;
        if from > to {
            return Err(ApiError::BadRequest(format!(
                "from ({from}) must not be after to ({to})"
            )));
        }
        let max_points = match q.get("maxPoints") {
            None => DEFAULT_MAX_POINTS,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_MAX_POINTS).contains(n))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "maxPoints must be an integer from 1 to {MAX_MAX_POINTS}; not {s:?}"
                    ))
                })?,
        };
        Ok(Span {
            from,
            to,
            max_points,
        })
    }
}

struct Runner<'a> {
    reader: &'a Reader,
    project: &'a str,
}

impl Runner<'_> {
    fn entry(&self, metric: &str) -> Option<CatalogEntry> {
        self.reader.memtable.catalog_entry(self.project, metric)
    }

    /// (bucket start, value) of each non-empty bucket; none for a metric never reported.
    fn buckets(
        &self,
        metric: &str,
        from: i64,
        to: i64,
        agg: Agg,
        bucketing: Bucketing,
    ) -> Result<Vec<(i64, f64)>, ApiError> {
        if self.entry(metric).is_none() {
            return Ok(Vec::new());
        }
        let plan = Plan {
            from_ms: from,
            to_ms: to,
            mode: Mode::Aggregate { agg, bucketing },
            filters: Vec::new(),
        };
        let (result, _) = query::run(
            &self.reader.store,
            &self.reader.memtable,
            self.project,
            metric,
            &plan,
        )?;
        match result {
            SeriesResult::Buckets(b) => Ok(b),
            SeriesResult::Raw { .. } => unreachable!("BUG: an aggregate plan gave raw points"),
        }
    }

    /// One value over `[from, to]`.
    fn whole(&self, metric: &str, from: i64, to: i64, agg: Agg) -> Result<Option<f64>, ApiError> {
        let b = self.buckets(metric, from, to, agg, Bucketing::Whole { from_ms: from })?;
        Ok(b.first().map(|p| p.1))
    }
}

fn agg_of(w: &Widget) -> Agg {
    // Checked when the dashboard was stored (`web::dashboard::parse`).
    Agg::parse(&w.agg).unwrap_or(Agg::Avg)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeriesOut<'a> {
    metric_id: &'a str,
    /// The metricId itself for a metric that has not reported yet.
    metric_name: String,
    unit: Option<String>,
    values: Vec<Option<Number>>,
}

fn name_and_unit(id: &str, e: Option<&CatalogEntry>) -> (String, Option<String>) {
    match e {
        Some(e) => (
            e.metric_name.to_string(),
            e.unit.as_deref().map(str::to_owned),
        ),
        None => (id.to_owned(), None),
    }
}

/// Line, area and bars: the widget's metrics in buckets of a step fitting `maxPoints`.
fn chart(run: &Runner, w: &Widget, span: &Span, format: Format) -> Result<Reply, ApiError> {
    let step = auto_step(span.from, span.to, span.max_points);
    let agg = agg_of(w);
    let buckets = w
        .metric_ids
        .iter()
        .map(|m| run.buckets(m, span.from, span.to, agg, Bucketing::Step(step)))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&Vec<(i64, f64)>> = buckets.iter().collect();
    if format == Format::Csv {
        let ids: Vec<&str> = w.metric_ids.iter().map(String::as_str).collect();
        return Ok(csv_reply(wide_csv(&ids, &refs)));
    }
    let (timestamps, columns) = align(&refs);
    let series: Vec<SeriesOut> = w
        .metric_ids
        .iter()
        .zip(columns)
        .map(|(id, values)| {
            let (metric_name, unit) = name_and_unit(id, run.entry(id).as_ref());
            SeriesOut {
                metric_id: id,
                metric_name,
                unit,
                values: values.into_iter().map(|v| v.map(Number)).collect(),
            }
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"widgetId": w.id, "type": w.kind, "from": span.from, "to": span.to,
            "step": step, "agg": agg.name(), "timestamps": timestamps, "series": series}),
    ))
}

/// Stat and gauge: the aggregation over the range and over the period before it, and a
/// sparkline of averages.
fn stat(run: &Runner, w: &Widget, span: &Span, format: Format) -> Result<Reply, ApiError> {
    let id = &w.metric_ids[0];
    let agg = agg_of(w);
    let value = run.whole(id, span.from, span.to, agg)?;
    let length = span.to - span.from;
    let previous = run.whole(id, span.from - length - 1, span.from - 1, agg)?;
    if format == Format::Csv {
        let mut out = String::from("metricId,from,to,agg,value,previous\n");
        let _ = write!(
            out,
            "{},{},{},{},",
            csv_field(id),
            span.from,
            span.to,
            agg.name()
        );
        for (i, v) in [value, previous].into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(v) = v {
                push_number(&mut out, v);
            }
        }
        out.push('\n');
        return Ok(csv_reply(out));
    }
    let spark_step = auto_step(span.from, span.to, SPARK_POINTS);
    let spark = run.buckets(
        id,
        span.from,
        span.to,
        Agg::Avg,
        Bucketing::Step(spark_step),
    )?;
    let entry = run.entry(id);
    let (metric_name, unit) = name_and_unit(id, entry.as_ref());
    Ok(json(
        StatusCode::OK,
        &json!({"widgetId": w.id, "type": w.kind, "from": span.from, "to": span.to,
            "agg": agg.name(), "metricId": id, "metricName": metric_name, "unit": unit,
            "value": value.map(Number), "previous": previous.map(Number),
            "lastTimestamp": entry.map(|e| e.last_timestamp),
            "spark": {"timestamps": spark.iter().map(|p| p.0).collect::<Vec<_>>(),
                "values": spark.iter().map(|p| Number(p.1)).collect::<Vec<_>>()}}),
    ))
}

/// Table: each metric's latest value, whatever the range.
fn table(run: &Runner, w: &Widget, format: Format) -> Result<Reply, ApiError> {
    let rows: Vec<(&str, Option<CatalogEntry>)> = w
        .metric_ids
        .iter()
        .map(|id| (id.as_str(), run.entry(id)))
        .collect();
    if format == Format::Csv {
        let mut out = String::from("metricId,metricName,unit,lastValue,lastTimestamp\n");
        for (id, e) in &rows {
            let (name, unit) = name_and_unit(id, e.as_ref());
            let _ = write!(
                out,
                "{},{},{},",
                csv_field(id),
                csv_field(&name),
                csv_field(unit.as_deref().unwrap_or(""))
            );
            if let Some(e) = e {
                push_number(&mut out, e.last_value);
                let _ = write!(out, ",{}", e.last_timestamp);
            } else {
                out.push(',');
            }
            out.push('\n');
        }
        return Ok(csv_reply(out));
    }
    let rows: Vec<_> = rows
        .iter()
        .map(|(id, e)| {
            let (name, unit) = name_and_unit(id, e.as_ref());
            json!({"metricId": id, "metricName": name, "unit": unit,
                "lastValue": e.as_ref().map(|e| Number(e.last_value)),
                "lastTimestamp": e.as_ref().map(|e| e.last_timestamp)})
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"widgetId": w.id, "type": w.kind, "rows": rows}),
    ))
}

/// Heartbeat strip: the range cut into slots of about the expected interval (at most
/// `MAX_HEARTBEAT_SLOTS`), and the slots that hold a sample; an empty slot is a gap.
fn heartbeat(run: &Runner, w: &Widget, span: &Span, format: Format) -> Result<Reply, ApiError> {
    let id = &w.metric_ids[0];
    let expected_ms = w.expected_interval_s.unwrap_or(60).max(1) as i64 * 1000;
    let length = span.to - span.from + 1;
    let slots = (length / expected_ms).clamp(1, MAX_HEARTBEAT_SLOTS);
    let step = (length / slots).max(1);
    let beats = run.buckets(id, span.from, span.to, Agg::Count, Bucketing::Step(step))?;
    if format == Format::Csv {
        let mut out = String::from("slotStart,samples\n");
        for (ts, n) in &beats {
            let _ = writeln!(out, "{ts},{n}");
        }
        return Ok(csv_reply(out));
    }
    let entry = run.entry(id);
    Ok(json(
        StatusCode::OK,
        &json!({"widgetId": w.id, "type": w.kind, "from": span.from, "to": span.to,
            "step": step, "metricId": id, "expectedIntervalS": expected_ms / 1000,
            "beats": beats.iter().map(|p| p.0).collect::<Vec<_>>(),
            "lastTimestamp": entry.map(|e| e.last_timestamp)}),
    ))
}
