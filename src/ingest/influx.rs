//! Influx line protocol (what Telegraf, Vector and the InfluxDB clients send), parsed with
//! the `influxdb-line-protocol` crate (InfluxDB IOx's parser). Each field of a line is one
//! sample of the series `measurement_field` (VictoriaMetrics' naming) with the line's tags as
//! labels; integers, unsigned integers and floats are values, booleans 1 and 0. A string
//! field, or any line that does not parse, refuses the whole request with the line's number
//! (all or nothing, like the webhook). Pure.

use super::series::SeriesBatch;
use super::IngestError;
use influxdb_line_protocol::{parse_lines, split_lines, FieldValue, ParsedLine};

/// The unit of the timestamps in a body (`precision`); nanoseconds unless told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// The `precision` parameter of `/api/v2/write` (`ns`, `us`, `ms`, `s`) and of v1's
    /// `/write` (`n`, `u`, `ms`, `s`, `m`, `h`).
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "" | "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    /// A timestamp in this unit, in milliseconds (rounded down: stathook keeps ms), or
    /// `None` past the range of `i64` milliseconds.
    fn to_ms(self, t: i64) -> Option<i64> {
        match self {
            Precision::Nanoseconds => Some(t.div_euclid(1_000_000)),
            Precision::Microseconds => Some(t.div_euclid(1_000)),
            Precision::Milliseconds => Some(t),
            Precision::Seconds => t.checked_mul(1_000),
            Precision::Minutes => t.checked_mul(60_000),
            Precision::Hours => t.checked_mul(3_600_000),
        }
    }
}

/// Parses a line-protocol body; lines without a timestamp take `now_ms`. Blank lines and
/// `#` comments are skipped.
///
/// The whole body goes through the parser once (`parse_lines` splits it itself); only if
/// that fails anywhere (a bad line, a comment the parser does not know) is it parsed again
/// line by line, counting lines, to say which one and to skip comments. Both ways give the
/// same samples: the second exists for the message.
pub fn parse(body: &[u8], precision: Precision, now_ms: i64) -> Result<SeriesBatch, IngestError> {
    let text = super::text_lines(body)?;
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut batch = SeriesBatch::with_capacity(lines, lines);
    let mut name = String::new();
    if plain::parse(text, &mut batch, &mut name, precision, now_ms).is_some() {
        return Ok(batch);
    }
    parse_with_crate(text, precision, now_ms)
}

/// [`parse`] by the crate's parser alone (what `plain` must agree with).
pub fn parse_with_crate(
    text: &str,
    precision: Precision,
    now_ms: i64,
) -> Result<SeriesBatch, IngestError> {
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    let mut batch = SeriesBatch::with_capacity(lines, lines);
    let mut name = String::new();
    let whole = parse_lines(text).try_for_each(|line| {
        let line = line.map_err(|e| IngestError::new(e.to_string()))?;
        add_line(&mut batch, &mut name, &line, 0, precision, now_ms)
    });
    if whole.is_ok() {
        return Ok(batch);
    }
    let mut batch = SeriesBatch::new();
    for (n, raw) in split_lines(text).enumerate() {
        let number = n + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_lines(raw).next() {
            Some(Ok(line)) => add_line(&mut batch, &mut name, &line, number, precision, now_ms)?,
            Some(Err(e)) => {
                return Err(IngestError::new(format!(
                    "line {number}: {e} (the line begins `{}`)",
                    excerpt(trimmed)
                )))
            }
            None => {}
        }
    }
    Ok(batch)
}

/// Adds one parsed line's fields to `batch`; `number` is its line for messages (0 on the
/// first pass, which discards its message and parses again to count lines).
fn add_line(
    batch: &mut SeriesBatch,
    name: &mut String,
    line: &ParsedLine<'_>,
    number: usize,
    precision: Precision,
    now_ms: i64,
) -> Result<(), IngestError> {
    let timestamp_ms = match line.timestamp {
        None => now_ms,
        Some(t) => precision.to_ms(t).ok_or_else(|| {
            IngestError::new(format!(
                "line {number}: the timestamp {t} is out of range for precision {precision:?}"
            ))
        })?,
    };
    let tags: smallvec::SmallVec<[(&str, &str); 12]> = line
        .series
        .tag_set
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let measurement = line.series.measurement.as_str();
    for (field, value) in &line.field_set {
        let value = match value {
            FieldValue::F64(x) => *x,
            FieldValue::I64(i) => *i as f64,
            FieldValue::U64(u) => *u as f64,
            FieldValue::Boolean(b) => f64::from(u8::from(*b)),
            FieldValue::String(_) => {
                return Err(IngestError::new(format!(
                    "line {number}: field {:?} is a string; stathook stores numbers only (send it as a tag, or leave it out)",
                    field.as_str()
                )))
            }
        };
        name.clear();
        name.push_str(measurement);
        name.push('_');
        name.push_str(field.as_str());
        let origin = || format!("line {number}");
        let series = batch.series(name, tags.iter().copied(), &origin)?;
        batch.push(series, timestamp_ms, value, now_ms, &origin)?;
    }
    Ok(())
}

/// The common case without the crate: lines of numeric fields with no escapes, no quotes,
/// no comments and single spaces, which is what agents send. It declines (`None`) anything
/// else, and any line that would be refused, so the crate's parser decides every case it
/// does not take; where it takes one it gives the crate's answer (the `influx_parse` fuzz
/// target checks that on every input). It exists because the crate spends ~750 ns a sample
/// (nom alternatives, an error value built and dropped for each one that does not match),
/// which made line protocol cost 1–2.4× VictoriaMetrics' CPU per sample
/// (docs/benchmarks.md).
pub mod plain {
    use super::{Precision, SeriesBatch};

    /// Fills `batch` from `text`, or `None` (with `batch` to be thrown away) to leave the
    /// body to the crate.
    pub fn parse(
        text: &str,
        batch: &mut SeriesBatch,
        name: &mut String,
        precision: Precision,
        now_ms: i64,
    ) -> Option<()> {
        if text.contains(['\\', '"', '\r', '\t', '#']) {
            return None;
        }
        let mut tags: smallvec::SmallVec<[(&str, &str); 12]> = smallvec::SmallVec::new();
        let mut fields: smallvec::SmallVec<[(&str, f64); 8]> = smallvec::SmallVec::new();
        let declined = || String::new();
        for line in text.split('\n') {
            let line = line.trim_start_matches(' ');
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split(' ');
            let (series, field_set) = (parts.next()?, parts.next()?);
            let timestamp = match parts.next() {
                None => None,
                Some(t) => Some(integer(t)?),
            };
            if parts.next().is_some() {
                return None;
            }
            let mut series = series.split(',');
            let measurement = series.next()?;
            if measurement.is_empty() || measurement.contains('=') {
                return None;
            }
            tags.clear();
            for tag in series {
                let (k, v) = tag.split_once('=')?;
                if k.is_empty() || v.is_empty() || v.contains('=') {
                    return None;
                }
                if tags.iter().any(|(seen, _)| *seen == k) {
                    return None;
                }
                tags.push((k, v));
            }
            fields.clear();
            for field in field_set.split(',') {
                let (k, v) = field.split_once('=')?;
                if k.is_empty() || fields.iter().any(|(seen, _)| *seen == k) {
                    return None;
                }
                fields.push((k, value(v)?));
            }
            let timestamp_ms = match timestamp {
                None => now_ms,
                Some(t) => precision.to_ms(t)?,
            };
            for (field, value) in &fields {
                name.clear();
                name.push_str(measurement);
                name.push('_');
                name.push_str(field);
                let series = batch.series(name, tags.iter().copied(), &declined).ok()?;
                batch
                    .push(series, timestamp_ms, *value, now_ms, &declined)
                    .ok()?;
            }
        }
        Some(())
    }

    /// `-?[0-9]+` as an i64.
    fn integer(s: &str) -> Option<i64> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    /// A numeric field value as the crate reads it: `12i`, `12u`, or a float
    /// `-?D+(.D+)?([eE][+-]?D+)?`. Booleans and anything else decline.
    fn value(v: &str) -> Option<f64> {
        if let Some(i) = v.strip_suffix('i') {
            return integer(i).map(|i| i as f64);
        }
        if let Some(u) = v.strip_suffix('u') {
            if u.is_empty() || !u.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return u.parse::<u64>().ok().map(|u| u as f64);
        }
        let b = v.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'-'));
        let digits = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i > start
        };
        if !digits(&mut i) {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        if i != b.len() {
            return None;
        }
        v.parse().ok()
    }
}

/// The first few characters of a line, for a message.
fn excerpt(line: &str) -> &str {
    &line[..line.floor_char_boundary(60)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_700_000_000;

    fn check(body: &str, precision: Precision) -> Vec<(String, i64, f64)> {
        let batch = parse(body.as_bytes(), precision, NOW).unwrap();
        let v = batch.valid("p");
        v.metrics
            .iter()
            .map(|m| (m.metric_id.to_string(), m.timestamp_ms, m.value))
            .collect()
    }

    #[test]
    fn each_field_is_a_series_with_the_tags_as_labels() {
        let got = check(
            "# a comment\n\ncpu,host=a,region=eu usage_idle=97.5,procs=12i,up=t 1764700000000000000\nmem,host=a used=3u\n",
            Precision::Nanoseconds,
        );
        assert_eq!(
            got,
            [
                (r#"cpu_usage_idle{host="a",region="eu"}"#.into(), NOW, 97.5),
                (r#"cpu_procs{host="a",region="eu"}"#.into(), NOW, 12.0),
                (r#"cpu_up{host="a",region="eu"}"#.into(), NOW, 1.0),
                (r#"mem_used{host="a"}"#.into(), NOW, 3.0),
            ]
        );
        assert_eq!(
            check("m v=1 1764700000", Precision::Seconds)[0].1,
            NOW,
            "seconds"
        );
        assert_eq!(
            check("m v=1 1764700000000123", Precision::Microseconds)[0].1,
            NOW
        );
        assert_eq!(
            check(r#"m,tag\ one=a\,b v=1"#, Precision::Nanoseconds)[0].0,
            r#"m_v{tag_one="a,b"}"#
        );
    }

    #[test]
    fn the_plain_path_takes_plain_lines_and_agrees_with_the_crate() {
        let take = |text: &str| {
            let mut b = SeriesBatch::new();
            plain::parse(
                text,
                &mut b,
                &mut String::new(),
                Precision::Milliseconds,
                NOW,
            )
            .map(|()| b)
        };
        let text = "metric,id=s1,job=bench value=40.25,n=-7i,u=9u,e=1.5E+3 1764700000000\n\n  cpu,host=a usage=1\n";
        let fast = take(text).expect("plain lines are taken");
        let reference = parse_with_crate(text, Precision::Milliseconds, NOW).unwrap();
        let rows = |b: &SeriesBatch| {
            b.valid("p")
                .metrics
                .iter()
                .map(|m| (m.metric_id.to_string(), m.timestamp_ms, m.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&fast), rows(&reference));
        assert_eq!(rows(&fast).len(), 5);
        for declined in [
            "m,t=a\\ b v=1",
            "m v=\"s\"",
            "m v=t",
            "m  v=1",
            "m v=1 1 ",
            "# c\nm v=1",
            "m v=.5",
            "m,a=1,a=2 v=1",
            "m v=1e400",
            "m v=99999999999999999999i",
        ] {
            assert!(take(declined).is_none(), "{declined:?}");
        }
    }

    #[test]
    fn a_bad_line_refuses_the_request_and_says_which() {
        let err = |body: &str| match parse(body.as_bytes(), Precision::Nanoseconds, NOW) {
            Ok(b) => panic!("{body:?} was accepted: {:?}", b.valid("p")),
            Err(e) => e.message,
        };
        let e = err("ok v=1\nbad v=\"text\"\n");
        assert!(e.starts_with("line 2: field \"v\" is a string"), "{e}");
        let e = err("ok v=1\n\nbroken\n");
        assert!(e.starts_with("line 3: "), "{e}");
        assert!(e.contains("`broken`"), "{e}");
        assert!(parse(b"m v=1 99999999999999", Precision::Milliseconds, NOW)
            .unwrap_err()
            .message
            .contains("in the future"));
        assert!(err("m v=NaN").starts_with("line 1: "));
        let e = err("m,a=1,a=2 v=1");
        assert!(e.starts_with("line 1: "), "{e}");
        assert!(parse(b"m v=1 \xff", Precision::Nanoseconds, NOW)
            .unwrap_err()
            .message
            .contains("UTF-8"));
    }
}
