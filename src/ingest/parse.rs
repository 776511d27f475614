//! The only file that knows simd-json: parses in place onto a flat tape (no per-object
//! maps), then walks the tape once, checking every field and naming the first bad one with
//! its index. Strings in the result borrow from the (unescaped in place) body.

use super::*;
use simd_json::{Node, StaticNode};

thread_local! {
    /// simd-json's scratch buffers, reused across requests on the same thread.
    static BUFFERS: std::cell::RefCell<simd_json::Buffers> = std::cell::RefCell::new(simd_json::Buffers::default());
}

/// Parses and validates a webhook body. `body` is overwritten (simd-json parses in place).
pub fn parse_batch(body: &mut [u8], now_ms: i64) -> Result<ValidBatch<'_>, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::new(
            "request body is empty; expected a JSON object".into(),
        ));
    }
    let tape = BUFFERS
        .with(|b| simd_json::to_tape_with_buffers(body, &mut b.borrow_mut()))
        .map_err(|e| json_error(&e))?;
    let nodes = tape.0;
    let Some(Node::Object { len, .. }) = nodes.first() else {
        return Err(IngestError::new(
            "request body must be a JSON object".into(),
        ));
    };
    let (mut project, mut metrics) = (None, None);
    for (key, at) in object_fields(&nodes, 0, *len) {
        match key {
            "projectId" => once(&mut project, at, &Field::Top("projectId"))?,
            "metrics" => once(&mut metrics, at, &Field::Top("metrics"))?,
            _ => {}
        }
    }
    let project_id = required_str(
        &nodes,
        project,
        &Field::Top("projectId"),
        MAX_PROJECT_ID_BYTES,
    )?;
    let (count, first) = match metrics.map(|at| (&nodes[at], at)) {
        None | Some((Node::Static(StaticNode::Null), _)) => {
            return Err(IngestError::new("metrics is required".into()))
        }
        Some((Node::Array { len, .. }, at)) => (*len, at + 1),
        Some((other, _)) => {
            return Err(IngestError::new(format!(
                "metrics must be an array, not {}",
                kind(other)
            )))
        }
    };
    if count == 0 {
        return Err(IngestError::new(
            "metrics must contain at least one metric".into(),
        ));
    }
    if count > MAX_METRICS_PER_REQUEST {
        return Err(IngestError::new(format!(
            "metrics has {count} entries; at most {MAX_METRICS_PER_REQUEST} are allowed per request"
        )));
    }
    let mut out = Vec::with_capacity(count);
    let mut at = first;
    for i in 0..count {
        out.push(parse_metric(&nodes, i, at, now_ms)?);
        at += span(&nodes[at]);
    }
    Ok(ValidBatch {
        project_id,
        metrics: out,
    })
}

/// Nodes a value occupies on the tape.
fn span(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// (key, index of value) for each field of the object at `at` with `len` keys.
fn object_fields<'t, 'a>(
    nodes: &'t [Node<'a>],
    at: usize,
    len: usize,
) -> impl Iterator<Item = (&'a str, usize)> + 't {
    let mut i = at + 1;
    (0..len).map(move |_| {
        let key = match nodes[i] {
            Node::String(k) => k,
            _ => "",
        };
        let value = i + 1;
        i = value + span(&nodes[value]);
        (key, value)
    })
}

/// Records where a field's value is; a field given twice is an error, because parsers
/// disagree on which one counts (RFC 8259 leaves it open) and a silent pick hides a bug in
/// the sender.
fn once(slot: &mut Option<usize>, at: usize, field: &Field) -> Result<(), IngestError> {
    if slot.replace(at).is_some() {
        return Err(IngestError::new(format!("{field} appears more than once")));
    }
    Ok(())
}

/// A field's name for messages, formatted only when a message is needed.
enum Field {
    Top(&'static str),
    Metric(usize, &'static str),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Top(name) => f.write_str(name),
            Field::Metric(i, name) => write!(f, "metrics[{i}].{name}"),
        }
    }
}

fn parse_metric<'a>(
    nodes: &[Node<'a>],
    i: usize,
    at: usize,
    now_ms: i64,
) -> Result<ValidMetric<'a>, IngestError> {
    let Node::Object { len, .. } = nodes[at] else {
        return Err(IngestError::new(format!(
            "metrics[{i}] must be an object, not {}",
            kind(&nodes[at])
        )));
    };
    let (mut id, mut name, mut value, mut unit, mut ts, mut meta) =
        (None, None, None, None, None, None);
    for (key, v) in object_fields(nodes, at, len) {
        match key {
            "metricId" => once(&mut id, v, &Field::Metric(i, "metricId"))?,
            "metricName" => once(&mut name, v, &Field::Metric(i, "metricName"))?,
            "value" => once(&mut value, v, &Field::Metric(i, "value"))?,
            "unit" => once(&mut unit, v, &Field::Metric(i, "unit"))?,
            "timestamp" => once(&mut ts, v, &Field::Metric(i, "timestamp"))?,
            "metadata" => once(&mut meta, v, &Field::Metric(i, "metadata"))?,
            _ => {}
        }
    }
    let metric_id = required_str(
        nodes,
        id,
        &Field::Metric(i, "metricId"),
        MAX_METRIC_ID_BYTES,
    )?;
    let metric_name = required_str(
        nodes,
        name,
        &Field::Metric(i, "metricName"),
        MAX_METRIC_NAME_BYTES,
    )?;

    let value = match value.map(|v| &nodes[v]) {
        None | Some(Node::Static(StaticNode::Null)) => {
            return Err(IngestError::new(format!(
                "{} is required",
                Field::Metric(i, "value")
            )))
        }
        Some(Node::Static(StaticNode::I64(n))) => *n as f64,
        Some(Node::Static(StaticNode::U64(n))) => *n as f64,
        Some(Node::Static(StaticNode::F64(x))) if x.is_finite() => *x,
        Some(Node::Static(StaticNode::F64(_))) => {
            return Err(IngestError::new(format!(
                "{} must be a finite number",
                Field::Metric(i, "value")
            )))
        }
        Some(other) => {
            return Err(IngestError::new(format!(
                "{} must be a number, not {}",
                Field::Metric(i, "value"),
                kind(other)
            )))
        }
    };

    let unit = match unit.map(|v| &nodes[v]) {
        None | Some(Node::Static(StaticNode::Null)) => None,
        Some(Node::String(s)) => {
            check_text(s, &Field::Metric(i, "unit"), MAX_UNIT_BYTES)?;
            (!s.is_empty()).then_some(*s)
        }
        Some(other) => {
            return Err(IngestError::new(format!(
                "{} must be a string, not {}",
                Field::Metric(i, "unit"),
                kind(other)
            )))
        }
    };

    let timestamp_ms = match ts.map(|v| &nodes[v]) {
        None | Some(Node::Static(StaticNode::Null)) => now_ms,
        Some(v) => {
            let ts = timestamp_of(v).ok_or_else(|| {
                IngestError::new(format!(
                    "{} must be a non-negative integer (Unix time in milliseconds)",
                    Field::Metric(i, "timestamp")
                ))
            })?;
            if ts > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
                return Err(IngestError::new(format!(
                    "{} is {} ms in the future; at most {MAX_FUTURE_SKEW_MS} ms ahead of the server clock is accepted (is it in seconds instead of milliseconds?)",
                    Field::Metric(i, "timestamp"),
                    ts - now_ms
                )));
            }
            ts
        }
    };

    let metadata = match meta {
        None => None,
        Some(v) => match &nodes[v] {
            Node::Static(StaticNode::Null) => None,
            Node::Object { len, .. } => {
                if *len > 1 {
                    let mut keys: Vec<&str> =
                        object_fields(nodes, v, *len).map(|(k, _)| k).collect();
                    keys.sort_unstable();
                    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                        return Err(IngestError::new(format!(
                            "{} has the key {:?} more than once",
                            Field::Metric(i, "metadata"),
                            w[0]
                        )));
                    }
                }
                let mut text = String::with_capacity(64);
                let (_, depth) = write_json(&nodes[v..v + span(&nodes[v])], &mut text);
                if text.len() > MAX_METADATA_BYTES {
                    return Err(IngestError::new(format!(
                        "{} is {} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed",
                        Field::Metric(i, "metadata"),
                        text.len()
                    )));
                }
                if depth > MAX_METADATA_DEPTH {
                    return Err(IngestError::new(format!(
                        "{} is nested {depth} levels deep; at most {MAX_METADATA_DEPTH} are allowed",
                        Field::Metric(i, "metadata"),
                    )));
                }
                Some(text)
            }
            other => {
                return Err(IngestError::new(format!(
                    "{} must be an object, not {}",
                    Field::Metric(i, "metadata"),
                    kind(other)
                )))
            }
        },
    };

    Ok(ValidMetric {
        metric_id,
        metric_name,
        unit,
        timestamp_ms,
        value,
        metadata,
    })
}

/// Writes the value at the start of `nodes` as compact JSON; returns the nodes it used and
/// how deeply objects and arrays nest in it (0 for a scalar, 1 for `{}` or `[1]`).
fn write_json(nodes: &[Node<'_>], out: &mut String) -> (usize, usize) {
    match &nodes[0] {
        Node::String(s) => {
            write_json_str(s, out);
            (1, 0)
        }
        Node::Static(StaticNode::Null) => {
            out.push_str("null");
            (1, 0)
        }
        Node::Static(StaticNode::Bool(b)) => {
            out.push_str(if *b { "true" } else { "false" });
            (1, 0)
        }
        Node::Static(StaticNode::I64(n)) => {
            out.push_str(&n.to_string());
            (1, 0)
        }
        Node::Static(StaticNode::U64(n)) => {
            out.push_str(&n.to_string());
            (1, 0)
        }
        Node::Static(StaticNode::F64(x)) => {
            // serde_json prints the shortest form that reads back to the same f64.
            out.push_str(&serde_json::to_string(x).unwrap_or_else(|_| "null".into()));
            (1, 0)
        }
        Node::Array { len, .. } => {
            out.push('[');
            let (mut used, mut deepest) = (1, 0);
            for k in 0..*len {
                if k > 0 {
                    out.push(',');
                }
                let (n, depth) = write_json(&nodes[used..], out);
                used += n;
                deepest = deepest.max(depth);
            }
            out.push(']');
            (used, deepest + 1)
        }
        Node::Object { len, .. } => {
            out.push('{');
            let (mut used, mut deepest) = (1, 0);
            for k in 0..*len {
                if k > 0 {
                    out.push(',');
                }
                used += write_json(&nodes[used..], out).0;
                out.push(':');
                let (n, depth) = write_json(&nodes[used..], out);
                used += n;
                deepest = deepest.max(depth);
            }
            out.push('}');
            (used, deepest + 1)
        }
    }
}

/// `invalid JSON at character N: what`. simd-json's own message names only an enum variant
/// ("InvalidNumber at character 70"), which told a user nothing they could act on. The text
/// near N is added by `IngestError::explain`, once this parse no longer borrows the body.
fn json_error(e: &simd_json::Error) -> IngestError {
    use simd_json::ErrorType as E;
    let what = match e.error() {
        E::InvalidNumber | E::InvalidExponent => {
            "a number that is not valid JSON or is beyond a 64-bit float's range (about 1.8e308)"
        }
        E::TrailingData => "more data after the end of the JSON value",
        E::UnterminatedString => "a string with no closing quote",
        E::InvalidEscape | E::InvalidUnicodeEscape | E::InvalidUnicodeCodepoint => {
            "an invalid escape sequence in a string"
        }
        E::InvalidUtf8 => "bytes that are not UTF-8",
        E::Eof => "the body ends before the JSON value does",
        E::InputTooLarge => "a body too large to parse",
        _ => "an unexpected character or structure",
    };
    IngestError {
        message: format!("invalid JSON at character {}: {what}", e.index()),
        json_at: Some(e.index()),
    }
}

fn write_json_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("BUG: strings always serialize"));
}

/// An integer >= 0 that fits i64; a float counts only if it is a whole number (1.7e12).
fn timestamp_of(v: &Node<'_>) -> Option<i64> {
    match v {
        Node::Static(StaticNode::I64(n)) if *n >= 0 => Some(*n),
        Node::Static(StaticNode::U64(n)) => i64::try_from(*n).ok(),
        Node::Static(StaticNode::F64(f)) if f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e18 => {
            Some(*f as i64)
        }
        _ => None,
    }
}

fn required_str<'a>(
    nodes: &[Node<'a>],
    at: Option<usize>,
    field: &Field,
    max_bytes: usize,
) -> Result<&'a str, IngestError> {
    let s = match at.map(|v| &nodes[v]) {
        None | Some(Node::Static(StaticNode::Null)) => {
            return Err(IngestError::new(format!("{field} is required")))
        }
        Some(Node::String(s)) => *s,
        Some(other) => {
            return Err(IngestError::new(format!(
                "{field} must be a string, not {}",
                kind(other)
            )))
        }
    };
    if s.trim().is_empty() {
        return Err(IngestError::new(format!("{field} must not be empty")));
    }
    check_text(s, field, max_bytes)?;
    Ok(s)
}

fn check_text(s: &str, field: &Field, max_bytes: usize) -> Result<(), IngestError> {
    if s.len() > max_bytes {
        return Err(IngestError::new(format!(
            "{field} is {} bytes; at most {max_bytes} are allowed",
            s.len()
        )));
    }
    if has_control_chars(s) {
        return Err(IngestError::new(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

/// The JSON type of a value, for "must be a number, not a string" messages.
fn kind(v: &Node<'_>) -> &'static str {
    match v {
        Node::Static(StaticNode::Null) => "null",
        Node::Static(StaticNode::Bool(_)) => "a boolean",
        Node::Static(_) => "a number",
        Node::String(_) => "a string",
        Node::Array { .. } => "an array",
        Node::Object { .. } => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of a batch, so a test can keep it past its body buffer.
    #[derive(Clone, Debug, PartialEq)]
    pub struct OwnedBatch {
        pub project_id: String,
        pub metrics: Vec<OwnedMetric>,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub struct OwnedMetric {
        pub metric_id: String,
        pub metric_name: String,
        pub unit: Option<String>,
        pub timestamp_ms: i64,
        pub value: f64,
        pub metadata: Option<String>,
    }

    impl ValidBatch<'_> {
        pub fn to_owned_batch(&self) -> OwnedBatch {
            OwnedBatch {
                project_id: self.project_id.to_owned(),
                metrics: self
                    .metrics
                    .iter()
                    .map(|m| OwnedMetric {
                        metric_id: m.metric_id.to_owned(),
                        metric_name: m.metric_name.to_owned(),
                        unit: m.unit.map(str::to_owned),
                        timestamp_ms: m.timestamp_ms,
                        value: m.value,
                        metadata: m.metadata.clone(),
                    })
                    .collect(),
            }
        }
    }

    const NOW: i64 = 1_700_000_000_000;

    fn parse(body: &str) -> Result<OwnedBatch, String> {
        let mut b = body.as_bytes().to_vec();
        match parse_batch(&mut b, NOW) {
            Ok(v) => Ok(v.to_owned_batch()),
            Err(e) => Err(e.explain(&b)),
        }
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
            vec![OwnedMetric {
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
        // A whole number beyond u64 is still a JSON number: JavaScript writes 1e20 as
        // `100000000000000000000`, and it must not be refused as invalid JSON.
        let b = parse(&one(
            r#"{"metricId":"a","metricName":"A","value":100000000000000000000}"#,
        ))
        .unwrap();
        assert_eq!(b.metrics[0].value, 1e20);
        let b = parse(&one(
            r#"{"metricId":"a","metricName":"A","value":-100000000000000000000}"#,
        ))
        .unwrap();
        assert_eq!(b.metrics[0].value, -1e20);
    }

    #[test]
    fn names_the_bad_field() {
        check_err("", "body is empty");
        check_err("{", "invalid JSON at character");
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1e400}"#),
            "beyond a 64-bit float's range (about 1.8e308) (near `\"value\":1e400}]}`)",
        );
        check_err(
            &format!("{} x", one(r#"{"metricId":"a","metricName":"A","value":1}"#)),
            "invalid JSON at character 72: an unexpected character or structure (near `\"value\":1}]} x`)",
        );
        let nested = |levels: usize| {
            one(&format!(
                r#"{{"metricId":"a","metricName":"A","value":1,"metadata":{{"s":"[[{{","a":{}1{}}}}}"#,
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            ))
        };
        assert!(parse(&nested(MAX_METADATA_DEPTH)).is_ok());
        check_err(
            &nested(MAX_METADATA_DEPTH + 1),
            "metrics[0].metadata is nested 33 levels deep; at most 32 are allowed",
        );
        check_err(
            &one(r#"{"metricId":"a","metricName":"A","value":1,"timestamp":99999999999999999999}"#),
            "metrics[0].timestamp must be a non-negative integer",
        );
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
    fn refuses_fields_given_twice() {
        check_err(
            r#"{"projectId":"p","projectId":"q","metrics":[{"metricId":"m","metricName":"M","value":1}]}"#,
            "projectId appears more than once",
        );
        check_err(
            r#"{"projectId":"p","metrics":[{"metricId":"m","metricName":"M","value":1,"value":2}]}"#,
            "metrics[0].value appears more than once",
        );
        check_err(
            r#"{"projectId":"p","metrics":[{"metricId":"m","metricName":"M","value":1,"metadata":{"a":1,"b":2,"a":3}}]}"#,
            "metrics[0].metadata has the key \"a\" more than once",
        );
        // Nested objects are kept as sent.
        assert!(parse(
            r#"{"projectId":"p","metrics":[{"metricId":"m","metricName":"M","value":1,"metadata":{"a":{"x":1},"b":{"x":2}}}]}"#
        )
        .is_ok());
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
    fn metadata_is_re_encoded_compactly_with_escapes() {
        let b = parse(&one(r#"{"metricId":"a","metricName":"A","value":1,"metadata":{ "s" : "q\"\u00e9\n", "n":-1.5e3, "a":[true,null,{}], "o":{"k":18446744073709551615}}}"#)).unwrap();
        let text = b.metrics[0].metadata.clone().unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"s":"q\"\u{e9}\n","n":-1500.0,"a":[true,null,{}],"o":{"k":18446744073709551615u64}})
        );
        assert!(!text.contains(' '));
    }

    #[test]
    fn escaped_ids_are_unescaped() {
        let b = parse(&one(
            r#"{"metricId":"caf\u00e9","metricName":"A\/B","value":1}"#,
        ))
        .unwrap();
        assert_eq!(
            (
                b.metrics[0].metric_id.as_str(),
                b.metrics[0].metric_name.as_str()
            ),
            ("caf\u{e9}", "A/B")
        );
    }

    #[test]
    fn huge_numbers_are_not_finite_values() {
        let r = parse(&one(r#"{"metricId":"a","metricName":"A","value":1e999}"#));
        assert!(r.is_err(), "{r:?}");
    }
}
