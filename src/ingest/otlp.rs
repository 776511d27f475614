//! OpenTelemetry OTLP/HTTP metrics (`ExportMetricsServiceRequest`, protobuf or JSON),
//! decoded with the `opentelemetry-proto` types. Every data point becomes samples of series
//! named by the Prometheus convention: the metric name with characters outside
//! `[a-zA-Z0-9_:]` made `_`; a monotonic sum gets `_total`; a histogram gives `_bucket{le}`
//! (cumulative counts), `_sum` and `_count`, a summary `{quantile}`, `_sum` and `_count`.
//! Labels are the resource's attributes and the point's (the point's win a clash), names
//! made valid the same way (`service.name` → `service_name`). The metric's unit becomes the
//! series' unit. Gauges and sums of either temporality are stored as sent (a delta sum's
//! points are its deltas: `sum_over_time`, not `rate`, adds them up).
//!
//! What stathook cannot store is rejected point by point, in OTLP's partial success:
//! exponential histograms and values that are not finite. A point flagged "no recorded
//! value" is skipped as Prometheus skips a stale marker. Pure.

use super::series::{metric_name, sanitize_label_name, SeriesBatch};
use super::IngestError;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// How a body is encoded (`Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// A decoded request: the samples, and the points rejected with why.
#[derive(Debug)]
pub struct Decoded {
    pub batch: SeriesBatch,
    pub rejected_points: u64,
    /// Empty when nothing was rejected.
    pub rejected_why: String,
}

/// Decodes one OTLP metrics body.
pub fn parse(body: &[u8], encoding: Encoding, now_ms: i64) -> Result<Decoded, IngestError> {
    let request = match encoding {
        Encoding::Protobuf => ExportMetricsServiceRequest::decode(body).map_err(|e| {
            IngestError::new(format!(
                "the body is not a protobuf ExportMetricsServiceRequest: {e}"
            ))
        })?,
        Encoding::Json => serde_json::from_slice(body).map_err(|e| {
            IngestError::new(format!(
                "the body is not an OTLP JSON ExportMetricsServiceRequest: {e}"
            ))
        })?,
    };
    decode(&request, now_ms)
}

/// The samples of a decoded request.
pub fn decode(request: &ExportMetricsServiceRequest, now_ms: i64) -> Result<Decoded, IngestError> {
    let mut out = Decoded {
        batch: SeriesBatch::new(),
        rejected_points: 0,
        rejected_why: String::new(),
    };
    let mut exponential = 0u64;
    let mut unreadable: Vec<String> = Vec::new();
    let mut not_finite = 0u64;
    for (r, rm) in request.resource_metrics.iter().enumerate() {
        let resource = rm
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let base = metric_name(&m.name);
                let origin = || format!("resourceMetrics[{r}] metric {:?}", m.name);
                let mut w = Writer {
                    batch: &mut out.batch,
                    resource: &resource,
                    unit: &m.unit,
                    now_ms,
                    not_finite: &mut not_finite,
                    origin: &origin,
                };
                match &m.data {
                    // In JSON, also what a metric this decoder could not read becomes (an
                    // enum written as its name, which OTLP/JSON forbids): said, not dropped.
                    None => unreadable.push(m.name.clone()),
                    Some(metric::Data::Gauge(g)) => {
                        for p in &g.data_points {
                            w.number(&base, &p.attributes, p.time_unix_nano, p.flags, &p.value)?;
                        }
                    }
                    Some(metric::Data::Sum(s)) => {
                        let name = if s.is_monotonic && !base.ends_with("_total") {
                            format!("{base}_total")
                        } else {
                            base.clone()
                        };
                        for p in &s.data_points {
                            w.number(&name, &p.attributes, p.time_unix_nano, p.flags, &p.value)?;
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        for p in h
                            .data_points
                            .iter()
                            .filter(|p| p.flags & NO_RECORDED_VALUE == 0)
                        {
                            let mut cumulative = 0u64;
                            for (i, count) in p.bucket_counts.iter().enumerate() {
                                cumulative = cumulative.saturating_add(*count);
                                let le = match p.explicit_bounds.get(i) {
                                    Some(b) => format!("{b}"),
                                    None => "+Inf".to_owned(),
                                };
                                let extra = Some(("le", le.as_str()));
                                let name = format!("{base}_bucket");
                                w.sample(
                                    &name,
                                    &p.attributes,
                                    extra,
                                    p.time_unix_nano,
                                    cumulative as f64,
                                )?;
                            }
                            w.sum_and_count(
                                &base,
                                &p.attributes,
                                p.time_unix_nano,
                                p.sum,
                                p.count,
                            )?;
                        }
                    }
                    Some(metric::Data::Summary(s)) => {
                        for p in s
                            .data_points
                            .iter()
                            .filter(|p| p.flags & NO_RECORDED_VALUE == 0)
                        {
                            for q in &p.quantile_values {
                                let quantile = format!("{}", q.quantile);
                                let extra = Some(("quantile", quantile.as_str()));
                                w.sample(&base, &p.attributes, extra, p.time_unix_nano, q.value)?;
                            }
                            let sum = Some(p.sum);
                            w.sum_and_count(&base, &p.attributes, p.time_unix_nano, sum, p.count)?;
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(e)) => {
                        exponential += e.data_points.len() as u64;
                    }
                }
            }
        }
    }
    out.rejected_points = exponential + not_finite + unreadable.len() as u64;
    let mut why = Vec::new();
    if exponential > 0 {
        why.push(format!(
            "{exponential} exponential histogram points rejected: stathook stores explicit-bucket histograms (set the SDK's histogram aggregation to explicit buckets)"
        ));
    }
    if not_finite > 0 {
        why.push(format!(
            "{not_finite} samples rejected: their values are not finite numbers"
        ));
    }
    if !unreadable.is_empty() {
        why.push(format!(
            "{} metrics rejected with no data stathook could read ({}): in OTLP/JSON, enums such as aggregationTemporality must be integers",
            unreadable.len(),
            unreadable.join(", ")
        ));
    }
    out.rejected_why = why.join("; ");
    Ok(out)
}

/// Puts one metric's points into the batch.
struct Writer<'a> {
    batch: &'a mut SeriesBatch,
    resource: &'a [(String, String)],
    unit: &'a str,
    now_ms: i64,
    not_finite: &'a mut u64,
    origin: &'a dyn Fn() -> String,
}

impl Writer<'_> {
    fn number(
        &mut self,
        name: &str,
        attrs: &[KeyValue],
        time_unix_nano: u64,
        flags: u32,
        value: &Option<number_data_point::Value>,
    ) -> Result<(), IngestError> {
        if flags & NO_RECORDED_VALUE != 0 {
            return Ok(());
        }
        let value = match value {
            Some(number_data_point::Value::AsDouble(x)) => *x,
            Some(number_data_point::Value::AsInt(i)) => *i as f64,
            None => return Ok(()),
        };
        self.sample(name, attrs, None, time_unix_nano, value)
    }

    /// A histogram's or summary's `_sum` (when it has one) and `_count` series.
    fn sum_and_count(
        &mut self,
        base: &str,
        attrs: &[KeyValue],
        time_unix_nano: u64,
        sum: Option<f64>,
        count: u64,
    ) -> Result<(), IngestError> {
        if let Some(sum) = sum {
            self.sample(&format!("{base}_sum"), attrs, None, time_unix_nano, sum)?;
        }
        self.sample(
            &format!("{base}_count"),
            attrs,
            None,
            time_unix_nano,
            count as f64,
        )
    }

    fn sample(
        &mut self,
        name: &str,
        attrs: &[KeyValue],
        extra: Option<(&str, &str)>,
        time_unix_nano: u64,
        value: f64,
    ) -> Result<(), IngestError> {
        if !value.is_finite() {
            *self.not_finite += 1;
            return Ok(());
        }
        let point = attributes(attrs);
        let mut labels: Vec<(&str, &str)> = self
            .resource
            .iter()
            .filter(|(k, _)| !point.iter().any(|(p, _)| p == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        labels.extend(point.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some((k, v)) = extra {
            labels.retain(|(name, _)| *name != k);
            labels.push((k, v));
        }
        let series = self.batch.series(name, labels, self.origin)?;
        self.batch.set_unit(series, self.unit);
        let timestamp_ms = match time_unix_nano {
            0 => self.now_ms,
            t => i64::try_from(t / 1_000_000).unwrap_or(i64::MAX),
        };
        self.batch
            .push(series, timestamp_ms, value, self.now_ms, self.origin)
    }
}

/// Attributes as label pairs: names made valid label names, values as text; later
/// attributes of the same (made-valid) name win.
fn attributes(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(attrs.len());
    for kv in attrs {
        let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        let text = match value {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::BoolValue(b) => b.to_string(),
            any_value::Value::IntValue(i) => i.to_string(),
            any_value::Value::DoubleValue(d) => format!("{d}"),
            any_value::Value::BytesValue(b) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        let key = sanitize_label_name(&kv.key);
        out.retain(|(k, _)| *k != key);
        out.push((key, text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_700_000_000;

    fn ids(d: &Decoded) -> Vec<(String, Option<String>, i64, f64)> {
        d.batch
            .valid("p")
            .metrics
            .iter()
            .map(|m| {
                (
                    m.metric_id.to_string(),
                    m.unit.map(str::to_owned),
                    m.timestamp_ms,
                    m.value,
                )
            })
            .collect()
    }

    #[test]
    fn json_gauges_sums_and_histograms_become_prometheus_series() {
        let body = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
          "scopeMetrics":[{"scope":{"name":"demo"},"metrics":[
            {"name":"queue.depth","unit":"1","gauge":{"dataPoints":[{"asDouble":3.5,"timeUnixNano":"1764700000000000000","attributes":[{"key":"queue","value":{"stringValue":"emails"}}]}]}},
            {"name":"orders","unit":"{order}","sum":{"isMonotonic":true,"aggregationTemporality":2,"dataPoints":[{"asInt":"42","timeUnixNano":"1764700000000000000"}]}},
            {"name":"latency","unit":"ms","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":7.5,"bucketCounts":["1","2"],"explicitBounds":[5],"timeUnixNano":"1764700000000000000"}]}},
            {"name":"sizes","exponentialHistogram":{"dataPoints":[{"count":"1"}]}}
          ]}]}]}"#;
        let d = parse(body.as_bytes(), Encoding::Json, NOW).unwrap();
        let unit = |u: &str| Some(u.to_string());
        assert_eq!(
            ids(&d),
            [
                (
                    r#"queue_depth{queue="emails",service_name="checkout"}"#.into(),
                    unit("1"),
                    NOW,
                    3.5
                ),
                (
                    r#"orders_total{service_name="checkout"}"#.into(),
                    unit("{order}"),
                    NOW,
                    42.0
                ),
                (
                    r#"latency_bucket{le="5",service_name="checkout"}"#.into(),
                    unit("ms"),
                    NOW,
                    1.0
                ),
                (
                    r#"latency_bucket{le="+Inf",service_name="checkout"}"#.into(),
                    unit("ms"),
                    NOW,
                    3.0
                ),
                (
                    r#"latency_sum{service_name="checkout"}"#.into(),
                    unit("ms"),
                    NOW,
                    7.5
                ),
                (
                    r#"latency_count{service_name="checkout"}"#.into(),
                    unit("ms"),
                    NOW,
                    3.0
                ),
            ]
        );
        assert_eq!(d.rejected_points, 1);
        assert!(d.rejected_why.contains("exponential histogram"));
    }

    #[test]
    fn the_json_python_s_protobuf_library_writes_is_read() {
        // fuzz/seeds/otlp_parse/json: json_format.MessageToJson of a request (int64 as
        // strings, enums as names), after the fuzz target's one-byte encoding prefix.
        let seed = include_bytes!("../../fuzz/seeds/otlp_parse/json");
        let d = parse(&seed[1..], Encoding::Json, NOW).unwrap();
        let got = ids(&d);
        assert_eq!(got.len(), 1 + 1 + 4 + 3, "{got:?}");
        assert_eq!(
            got[0].0,
            r#"queue_depth{queue="emails",service_name="checkout"}"#
        );
        assert_eq!(got[1].3, 42.0);
        assert_eq!(d.rejected_points, 1);
        // The same with enums as names (json_format's default, not OTLP/JSON): the sum is
        // rejected and named, not dropped silently.
        let seed = include_bytes!("../../fuzz/seeds/otlp_parse/json_enum_names");
        let d = parse(&seed[1..], Encoding::Json, NOW).unwrap();
        assert_eq!(d.rejected_points, 2);
        assert!(d.rejected_why.contains("(orders)"), "{}", d.rejected_why);
    }

    #[test]
    fn protobuf_round_trips_and_bad_bodies_are_refused() {
        use opentelemetry_proto::tonic::metrics::v1::{
            Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        };
        let point = |v: f64, flags: u32| NumberDataPoint {
            time_unix_nano: 1_764_700_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(v)),
            flags,
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "temp".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![point(21.5, 0), point(f64::NAN, 0), point(1.0, 1)],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let d = parse(&req.encode_to_vec(), Encoding::Protobuf, NOW).unwrap();
        assert_eq!(ids(&d), [("temp".into(), None, NOW, 21.5)]);
        assert_eq!(
            d.rejected_points, 1,
            "the NaN; the no-recorded-value point is skipped"
        );
        assert!(parse(b"\xff\xff", Encoding::Protobuf, NOW).is_err());
        assert!(parse(b"{", Encoding::Json, NOW)
            .unwrap_err()
            .message
            .contains("OTLP JSON"));
    }
}
