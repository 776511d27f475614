//! The only file that knows simd-json: parses in place, then walks the value tree once,
//! checking every field and naming the first bad one with its index.

use super::*;
use simd_json::prelude::*;
use simd_json::{BorrowedValue, StaticNode};

/// Parses and validates a webhook body. `body` is overwritten (simd-json parses in place).
pub fn parse_batch(body: &mut [u8], now_ms: i64) -> Result<ValidBatch, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let root = simd_json::to_borrowed_value(body)
        .map_err(|e| IngestError(format!("invalid JSON: {e}")))?;
    let obj = root
        .as_object()
        .ok_or_else(|| IngestError("request body must be a JSON object".into()))?;

    let project_id = required_str(obj.get("projectId"), "projectId", MAX_PROJECT_ID_BYTES)?;
    let metrics = match obj.get("metrics") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => {
            return Err(IngestError("metrics is required".into()))
        }
        Some(v) => v
            .as_array()
            .ok_or_else(|| IngestError(format!("metrics must be an array, not {}", kind(v))))?,
    };
    if metrics.is_empty() {
        return Err(IngestError(
            "metrics must contain at least one metric".into(),
        ));
    }
    if metrics.len() > MAX_METRICS_PER_REQUEST {
        return Err(IngestError(format!(
            "metrics has {} entries; at most {MAX_METRICS_PER_REQUEST} are allowed per request",
            metrics.len()
        )));
    }

    let mut out = Vec::with_capacity(metrics.len());
    for (i, m) in metrics.iter().enumerate() {
        out.push(parse_metric(i, m, now_ms)?);
    }
    Ok(ValidBatch {
        project_id: project_id.to_owned(),
        metrics: out,
    })
}

fn parse_metric(i: usize, m: &BorrowedValue<'_>, now_ms: i64) -> Result<ValidMetric, IngestError> {
    let obj = m
        .as_object()
        .ok_or_else(|| IngestError(format!("metrics[{i}] must be an object, not {}", kind(m))))?;
    let field = |name: &str| format!("metrics[{i}].{name}");

    let metric_id = required_str(obj.get("metricId"), &field("metricId"), MAX_METRIC_ID_BYTES)?;
    let metric_name = required_str(
        obj.get("metricName"),
        &field("metricName"),
        MAX_METRIC_NAME_BYTES,
    )?;

    let value = match obj.get("value") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => {
            return Err(IngestError(format!("{} is required", field("value"))))
        }
        Some(v) => match v
            .as_f64()
            .or_else(|| v.cast_f64().filter(|_| v.is_number()))
        {
            Some(x) if x.is_finite() => x,
            Some(_) => {
                return Err(IngestError(format!(
                    "{} must be a finite number",
                    field("value")
                )))
            }
            None => {
                return Err(IngestError(format!(
                    "{} must be a number, not {}",
                    field("value"),
                    kind(v)
                )))
            }
        },
    };

    let unit = match obj.get("unit") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
        Some(v) => {
            let s = v.as_str().ok_or_else(|| {
                IngestError(format!(
                    "{} must be a string, not {}",
                    field("unit"),
                    kind(v)
                ))
            })?;
            check_text(s, &field("unit"), MAX_UNIT_BYTES)?;
            (!s.is_empty()).then(|| s.to_owned())
        }
    };

    let timestamp_ms = match obj.get("timestamp") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => now_ms,
        Some(v) => {
            let ts = timestamp_of(v).ok_or_else(|| {
                IngestError(format!(
                    "{} must be a non-negative integer (Unix time in milliseconds)",
                    field("timestamp")
                ))
            })?;
            if ts > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
                return Err(IngestError(format!(
                    "{} is {} ms in the future; at most {MAX_FUTURE_SKEW_MS} ms ahead of the server clock is accepted (is it in seconds instead of milliseconds?)",
                    field("timestamp"),
                    ts - now_ms
                )));
            }
            ts
        }
    };

    let metadata = match obj.get("metadata") {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
        Some(v @ BorrowedValue::Object(_)) => {
            let text = v.encode();
            if text.len() > MAX_METADATA_BYTES {
                return Err(IngestError(format!(
                    "{} is {} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed",
                    field("metadata"),
                    text.len()
                )));
            }
            Some(text)
        }
        Some(v) => {
            return Err(IngestError(format!(
                "{} must be an object, not {}",
                field("metadata"),
                kind(v)
            )))
        }
    };

    Ok(ValidMetric {
        metric_id: metric_id.to_owned(),
        metric_name: metric_name.to_owned(),
        unit,
        timestamp_ms,
        value,
        metadata,
    })
}

/// An integer ≥ 0 that fits i64; a float counts only if it is a whole number (1.7e12).
fn timestamp_of(v: &BorrowedValue<'_>) -> Option<i64> {
    match v {
        BorrowedValue::Static(StaticNode::I64(n)) if *n >= 0 => Some(*n),
        BorrowedValue::Static(StaticNode::U64(n)) => i64::try_from(*n).ok(),
        BorrowedValue::Static(StaticNode::F64(f))
            if f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e18 =>
        {
            Some(*f as i64)
        }
        _ => None,
    }
}

fn required_str<'v>(
    v: Option<&'v BorrowedValue<'_>>,
    field: &str,
    max_bytes: usize,
) -> Result<&'v str, IngestError> {
    let v = match v {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => {
            return Err(IngestError(format!("{field} is required")))
        }
        Some(v) => v,
    };
    let s = v
        .as_str()
        .ok_or_else(|| IngestError(format!("{field} must be a string, not {}", kind(v))))?;
    if s.trim().is_empty() {
        return Err(IngestError(format!("{field} must not be empty")));
    }
    check_text(s, field, max_bytes)?;
    Ok(s)
}

fn check_text(s: &str, field: &str, max_bytes: usize) -> Result<(), IngestError> {
    if s.len() > max_bytes {
        return Err(IngestError(format!(
            "{field} is {} bytes; at most {max_bytes} are allowed",
            s.len()
        )));
    }
    if has_control_chars(s) {
        return Err(IngestError(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// The JSON type of a value, for "must be a number, not a string" messages.
fn kind(v: &BorrowedValue<'_>) -> &'static str {
    match v {
        BorrowedValue::Static(StaticNode::Null) => "null",
        BorrowedValue::Static(StaticNode::Bool(_)) => "a boolean",
        BorrowedValue::Static(_) => "a number",
        BorrowedValue::String(_) => "a string",
        BorrowedValue::Array(_) => "an array",
        BorrowedValue::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn parse(body: &str) -> Result<ValidBatch, String> {
        let mut b = body.as_bytes().to_vec();
        parse_batch(&mut b, NOW).map_err(|e| e.0)
    }

    fn check_err(body: &str, expected_fragment: &str) {
        let err = parse(body).expect_err(body);
        assert!(
            err.contains(expected_fragment),
            "body {body}\n got {err:?}\n want {expected_fragment:?}"
        );
    }

    fn one(metric: &str) -> String {
        format!(r#"{{"projectId":"p","metrics":[{metric}]}}"#)
    }

    #[test]
    fn accepts_the_spec_example() {
        let b = parse(&one(r#"{"metricId":"daily_signups","metricName":"Daily Signups","value":42,"unit":"count","timestamp":1234567890000}"#)).unwrap();
        assert_eq!(b.project_id, "p");
        assert_eq!(
            b.metrics,
            vec![ValidMetric {
                metric_id: "daily_signups".into(),
                metric_name: "Daily Signups".into(),
                unit: Some("count".into()),
                timestamp_ms: 1234567890000,
                value: 42.0,
                metadata: None
            }]
        );
    }

    #[test]
    fn defaults_and_optional_fields() {
        let b = parse(&one(r#"{"metricId":"a","metricName":"A","value":-1.5,"metadata":{"region":"eu","n":[1,2]}}"#)).unwrap();
        let m = &b.metrics[0];
        assert_eq!((m.timestamp_ms, m.value, m.unit.clone()), (NOW, -1.5, None));
        let meta: serde_json::Value = serde_json::from_str(m.metadata.as_deref().unwrap()).unwrap();
        assert_eq!(meta, serde_json::json!({"region":"eu","n":[1,2]}));
        let b = parse(&one(
            r#"{"metricId":"a","metricName":"A","value":1,"timestamp":1.7e12}"#,
        ))
        .unwrap();
        assert_eq!(b.metrics[0].timestamp_ms, 1_700_000_000_000);
    }

    #[test]
    fn names_the_bad_field() {
        check_err("", "body is empty");
        check_err("{", "invalid JSON");
        check_err("[]", "must be a JSON object");
        check_err(r#"{"metrics":[]}"#, "projectId is required");
        check_err(
            r#"{"projectId":"","metrics":[]}"#,
            "projectId must not be empty",
        );
        check_err(
            r#"{"projectId":5,"metrics":[]}"#,
            "projectId must be a string, not a number",
        );
        check_err(r#"{"projectId":"p"}"#, "metrics is required");
        check_err(
            r#"{"projectId":"p","metrics":{}}"#,
            "metrics must be an array",
        );
        check_err(r#"{"projectId":"p","metrics":[]}"#, "at least one metric");
        check_err(&one("5"), "metrics[0] must be an object");
        check_err(
            &one(r#"{"metricName":"A","value":1}"#),
            "metrics[0].metricId is required",
        );
        check_err(
            &one(r#"{"metricId":"a","value":1}"#),
            "metrics[0].metricName is required",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A"}"#),
            "metrics[0].value is required",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":"42"}"#),
            "metrics[0].value must be a number, not a string",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":true}"#),
            "metrics[0].value must be a number, not a boolean",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"unit":7}"#),
            "metrics[0].unit must be a string",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"timestamp":-1}"#),
            "metrics[0].timestamp must be a non-negative integer",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"timestamp":1.5}"#),
            "metrics[0].timestamp must be a non-negative integer",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"timestamp":"1"}"#),
            "metrics[0].timestamp must be a non-negative integer",
        );
        check_err(
            &one(&format!(
                r#"{{"metricId":"a","metricName":"A","value":1,"timestamp":{}}}"#,
                NOW + MAX_FUTURE_SKEW_MS + 1
            )),
            "in the future",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"metadata":[1]}"#),
            "metrics[0].metadata must be an object, not an array",
        );
        check_err(
            &one(r#"{"metricId":"a\u0001","metricName":"A","value":1}"#),
            "control characters",
        );
    }

    #[test]
    fn indexes_point_at_the_right_metric() {
        let good = r#"{"metricId":"a","metricName":"A","value":1}"#;
        let body = format!(
            r#"{{"projectId":"p","metrics":[{good},{good},{good},{{"metricId":"a","metricName":"A","value":"x"}}]}}"#
        );
        check_err(&body, "metrics[3].value must be a number");
    }

    #[test]
    fn enforces_limits() {
        let m = r#"{"metricId":"a","metricName":"A","value":1}"#;
        let body = format!(
            r#"{{"projectId":"p","metrics":[{}]}}"#,
            vec![m; 101].join(",")
        );
        check_err(&body, "metrics has 101 entries; at most 100");
        let body = format!(
            r#"{{"projectId":"p","metrics":[{}]}}"#,
            vec![m; 100].join(",")
        );
        assert_eq!(parse(&body).unwrap().metrics.len(), 100);
        check_err(
            &one(&format!(
                r#"{{"metricId":"{}","metricName":"A","value":1}}"#,
                "x".repeat(129)
            )),
            "metrics[0].metricId is 129 bytes; at most 128",
        );
        check_err(
            &one(&format!(
                r#"{{"metricId":"a","metricName":"A","value":1,"unit":"{}"}}"#,
                "u".repeat(33)
            )),
            "metrics[0].unit is 33 bytes",
        );
        check_err(
            &one(&format!(
                r#"{{"metricId":"a","metricName":"A","value":1,"metadata":{{"k":"{}"}}}}"#,
                "v".repeat(4100)
            )),
            "metrics[0].metadata is",
        );
    }

    #[test]
    fn huge_numbers_are_not_finite_values() {
        let r = parse(&one(r#"{"metricId":"a","metricName":"A","value":1e999}"#));
        assert!(r.is_err(), "{r:?}");
    }
}
