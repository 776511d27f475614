//! Pushgateway-style pushes: the Prometheus text exposition format (what `curl
//! --data-binary @-` and the client libraries' `push_to_gateway` send). Each sample line
//! `name{labels} value [timestamp_ms]` is one sample of its series, with the push's
//! grouping labels (`job` and the rest of the URL path) added; a histogram's or summary's
//! lines already carry the Prometheus convention's names (`_bucket{le}`, `_sum`, `_count`,
//! `{quantile}`). `# HELP`, `# TYPE` and other comments are skipped. A sample without a
//! timestamp takes the push's time; a value that is not finite refuses the push (a script
//! sees the error; an agent would use remote write). Any line that does not parse refuses
//! the push with its line and column. Pure.
//!
//! Written here rather than taken from a crate: `openmetrics-parser` refuses valid pushes
//! (two untyped metrics of different names in a row, one name with different label names),
//! and `prometheus-parse` skips a line it cannot parse without saying so.

use super::series::SeriesBatch;
use super::IngestError;

/// Parses a text-format body; `grouping` are the labels of the push's URL path.
pub fn parse(
    body: &[u8],
    grouping: &[(String, String)],
    now_ms: i64,
) -> Result<SeriesBatch, IngestError> {
    let text = super::text_lines(body)?;
    let mut batch = SeriesBatch::new();
    for (n, line) in text.lines().enumerate() {
        let number = n + 1;
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.trim_end().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let at = |col: usize| format!("line {number}, column {}", col + 1);
        let sample = parse_line(line).map_err(|(col, what)| {
            IngestError::new(format!(
                "{}: {what} (the line begins `{}`)",
                at(col),
                excerpt(trimmed)
            ))
        })?;
        let mut labels = sample.labels;
        for (k, v) in grouping {
            match labels.iter().find(|(name, _)| name == k) {
                Some((_, given)) if given != v => {
                    return Err(IngestError::new(format!(
                        "line {number}: {} has the label {k}=\"{given}\" but the push's URL says {k}=\"{v}\"",
                        sample.name
                    )))
                }
                Some(_) => {}
                None => labels.push((k.clone(), v.clone())),
            }
        }
        let origin = || format!("line {number}");
        let series = batch.series(
            sample.name,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &origin,
        )?;
        let timestamp_ms = sample.timestamp_ms.unwrap_or(now_ms);
        batch.push(series, timestamp_ms, sample.value, now_ms, &origin)?;
    }
    if batch.sample_count() == 0 {
        return Err(IngestError::new(
            "the body has no samples; expected lines such as `job_last_success_unixtime 1.7e9`"
                .into(),
        ));
    }
    Ok(batch)
}

/// One sample line, parsed.
struct Line<'a> {
    name: &'a str,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// Parses `name{labels} value [timestamp]`; an error is (byte column, what was expected).
fn parse_line(line: &str) -> Result<Line<'_>, (usize, String)> {
    let b = line.as_bytes();
    let mut i = 0;
    let skip_blanks = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
            *i += 1;
        }
    };
    skip_blanks(&mut i);
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    let name = &line[start..i];
    if !super::series::is_metric_name(name) {
        return Err((
            start,
            "expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)".into(),
        ));
    }
    let mut labels = Vec::new();
    skip_blanks(&mut i);
    if b.get(i) == Some(&b'{') {
        i += 1;
        loop {
            skip_blanks(&mut i);
            if b.get(i) == Some(&b'}') {
                i += 1;
                break;
            }
            let key_start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let key = &line[key_start..i];
            if !super::series::is_label_name(key) {
                return Err((key_start, "expected a label name or `}`".into()));
            }
            skip_blanks(&mut i);
            if b.get(i) != Some(&b'=') {
                return Err((i, format!("expected `=` after the label name {key}")));
            }
            i += 1;
            skip_blanks(&mut i);
            if b.get(i) != Some(&b'"') {
                return Err((i, format!("expected a quoted value for the label {key}")));
            }
            i += 1;
            let mut value = String::new();
            let mut chars = line[i..].char_indices();
            loop {
                match chars.next() {
                    None => {
                        return Err((
                            line.len(),
                            format!("the value of the label {key} is not closed with `\"`"),
                        ))
                    }
                    Some((j, '"')) => {
                        i += j + 1;
                        break;
                    }
                    Some((j, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => {
                            return Err((
                                i + j,
                                "only \\\\, \\\" and \\n are escapes in a label value".into(),
                            ))
                        }
                    },
                    Some((_, c)) => value.push(c),
                }
            }
            if labels.iter().any(|(k, _): &(String, String)| k == key) {
                return Err((key_start, format!("the label {key} appears more than once")));
            }
            labels.push((key.to_owned(), value));
            skip_blanks(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err((i, "expected `,` or `}` after a label".into())),
            }
        }
    }
    let mut words = line[i..].split_ascii_whitespace();
    let value_col = i + line[i..].len() - line[i..].trim_start().len();
    let value = match words.next() {
        None => return Err((value_col, "expected a value after the metric".into())),
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| (value_col, format!("{v:?} is not a number")))?,
    };
    let timestamp_ms = match words.next() {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            (
                value_col,
                format!("the timestamp {t:?} is not whole milliseconds"),
            )
        })?),
    };
    if let Some(extra) = words.next() {
        return Err((
            value_col,
            format!("unexpected {extra:?} after the timestamp"),
        ));
    }
    Ok(Line {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// The first few characters of a line, for a message.
fn excerpt(line: &str) -> &str {
    &line[..line.floor_char_boundary(60)]
}

/// The grouping labels of a Pushgateway URL path after `/metrics/`: `job/J` then
/// `name/value` pairs; a name ending in `@base64` has a URL-safe base64 value (how a value
/// with a `/` is written). `segments` are already percent-decoded.
pub fn grouping_labels(segments: &[&str]) -> Result<Vec<(String, String)>, IngestError> {
    use base64::Engine;
    if segments.len() < 2 || segments[0] != "job" || !segments.len().is_multiple_of(2) {
        return Err(IngestError::new(
            "the push URL must be /metrics/job/JOB, optionally followed by /LABEL/VALUE pairs"
                .into(),
        ));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in segments.chunks(2) {
        let (name, value) = match pair[0].strip_suffix("@base64") {
            Some(name) => {
                let decoded = base64::engine::general_purpose::URL_SAFE
                    .decode(pair[1].trim_end_matches('='))
                    .or_else(|_| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(pair[1].trim_end_matches('='))
                    })
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        IngestError::new(format!(
                            "the value of grouping label {name} is not URL-safe base64 of UTF-8 text"
                        ))
                    })?;
                (name, decoded)
            }
            None => (pair[0], pair[1].to_owned()),
        };
        if !super::series::is_label_name(name) {
            return Err(IngestError::new(format!(
                "{name:?} in the push URL is not a valid label name"
            )));
        }
        if name == "job" && value.is_empty() {
            return Err(IngestError::new("the job in the push URL is empty".into()));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(IngestError::new(format!(
                "the grouping label {name} appears more than once in the push URL"
            )));
        }
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_700_000_000;

    fn check(body: &str, grouping: &[(&str, &str)]) -> Result<Vec<(String, i64, f64)>, String> {
        let grouping: Vec<(String, String)> = grouping
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let batch = parse(body.as_bytes(), &grouping, NOW).map_err(|e| e.message)?;
        let v = batch.valid("p");
        Ok(v.metrics
            .iter()
            .map(|m| (m.metric_id.to_string(), m.timestamp_ms, m.value))
            .collect())
    }

    #[test]
    fn a_push_becomes_series_with_the_grouping_labels() {
        let got = check(
            "# TYPE backup_duration_seconds gauge\nbackup_duration_seconds{db=\"main\"} 12.5\nbackup_last_success 1764699999 1764699999000",
            &[("job", "nightly"), ("instance", "db1")],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                (
                    r#"backup_duration_seconds{db="main",instance="db1",job="nightly"}"#.into(),
                    NOW,
                    12.5
                ),
                (
                    r#"backup_last_success{instance="db1",job="nightly"}"#.into(),
                    1_764_699_999_000,
                    1_764_699_999.0
                ),
            ]
        );
        let got = check(
            "# TYPE lat histogram\nlat_bucket{le=\"0.5\"} 3\nlat_bucket{le=\"+Inf\"} 4\nlat_sum 1.25\nlat_count 4\n",
            &[("job", "j")],
        )
        .unwrap();
        let ids: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                r#"lat_bucket{job="j",le="0.5"}"#,
                r#"lat_bucket{job="j",le="+Inf"}"#,
                r#"lat_sum{job="j"}"#,
                r#"lat_count{job="j"}"#
            ]
        );
    }

    #[test]
    fn bad_pushes_say_why() {
        let err = |b: &str| check(b, &[("job", "j")]).unwrap_err();
        assert!(err("").contains("no samples"));
        let e = err("ok 1\nm{a=\"1\" 1\n");
        assert!(
            e.starts_with("line 2, column 9: expected `,` or `}`"),
            "{e}"
        );
        assert!(err("m 1 2 3").contains("unexpected \"3\""));
        assert!(err("m one").contains("\"one\" is not a number"));
        assert!(err("m{a=\"\\t\"} 1").contains("escapes"));
        assert!(err("# only a comment").contains("no samples"));
        assert!(err("m NaN\n").contains("not a finite number"));
        assert!(err("m{job=\"other\"} 1\n").contains("the push's URL says job=\"j\""));
        assert!(grouping_labels(&["job"]).is_err());
        assert!(grouping_labels(&["instance", "x"]).is_err());
        assert_eq!(
            grouping_labels(&["job", "j", "path@base64", "L3Zhci90bXA="]).unwrap(),
            [
                ("job".into(), "j".into()),
                ("path".into(), "/var/tmp".into())
            ]
        );
    }
}
