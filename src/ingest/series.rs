//! Labelled series, shared by every push format and by PromQL: a sample pushed with labels
//! belongs to the series of its name and *full* label set, stored as its own metric whose
//! metricId is the series' canonical form `name{a="x",b="y"}` (labels sorted by name,
//! values escaped as Prometheus's text format does: `\\`, `\"`, `\n`; no labels → just
//! `name`). `up{job="a"}` and `up{job="b"}` are then two metrics that never overwrite each
//! other, and `promql::labels` reads the labels back out of the metricId.
//!
//! [`SeriesBatch`] is what the push parsers (`remote_write.rs`, `influx.rs`, …) build: owned
//! strings, every sample checked, each series named once; [`SeriesBatch::valid`] lends it
//! out as the same [`ValidBatch`] the webhook produces, so nothing downstream of ingest
//! learns which format a sample came in. Pure.

use super::{has_control_chars, IngestError, ValidBatch, ValidMetric, MAX_FUTURE_SKEW_MS};

/// Longest metricId of a labelled series, in bytes (a plain webhook metricId stays at
/// [`super::MAX_METRIC_ID_BYTES`]): room for a name and a few dozen short labels, while a
/// metricId stays a key that every segment of the series repeats.
pub const MAX_SERIES_ID_BYTES: usize = 4096;
/// Most labels on one series besides its name (VictoriaMetrics keeps 40 by default and drops
/// the rest silently; stathook refuses instead).
pub const MAX_LABELS_PER_SERIES: usize = 40;
/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Longest series name, in bytes (it is also the series' metricName).
pub const MAX_SERIES_NAME_BYTES: usize = 256;
/// Most bytes one push request may add to the journal (metricId, name, timestamp and value
/// of every sample): a journal frame longer than `journal::record::MAX_PAYLOAD_BYTES` is
/// damage, and a frame holds up to 8 MiB plus one request.
pub const MAX_BATCH_JOURNAL_BYTES: usize = 16 << 20;
/// Label names stathook's own PromQL labels use: a pushed label of that name is renamed
/// `exported_<name>`, as Prometheus does for a scraped label that clashes with a target's.
pub const RESERVED_LABELS: [&str; 2] = ["project", "metricId"];

/// Whether `s` is a valid Prometheus metric name.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A metric name as Prometheus accepts it (PromQL's `__name__` of a metricId, OTLP's names).
pub fn metric_name(metric_id: &str) -> String {
    if is_metric_name(metric_id) {
        return metric_id.to_owned();
    }
    let mut out: String = metric_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Whether `s` is a valid Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A label name as Prometheus accepts it: every other character becomes `_`, and a name
/// that starts with a digit gets a leading `_` (the OpenTelemetry-to-Prometheus rule). An
/// Influx tag `host-name` becomes `host_name`.
pub fn sanitize_label_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The canonical metricId of a series: `name` alone without labels, else
/// `name{a="x",b="y"}`. `labels` must be sorted by name, unique, with no empty values.
pub fn canonical_id<K: AsRef<str>, V: AsRef<str>>(name: &str, labels: &[(K, V)]) -> String {
    let mut out = String::with_capacity(name.len() + 2 + labels.len() * 16);
    write_canonical(&mut out, name, labels);
    out
}

/// [`canonical_id`] into `out` (cleared first), so a caller can reuse one buffer.
fn write_canonical<K: AsRef<str>, V: AsRef<str>>(out: &mut String, name: &str, labels: &[(K, V)]) {
    out.clear();
    out.push_str(name);
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k.as_ref());
        out.push_str("=\"");
        // Most values need no escape: copied whole.
        let v = v.as_ref();
        if !v.contains(['\\', '"', '\n']) {
            out.push_str(v);
            out.push('"');
            continue;
        }
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// The name and labels of a metricId in canonical form, or `None` when it is not one (a
/// webhook metricId such as `api.latency`, or braces that are not exactly what
/// [`canonical_id`] writes: unsorted, repeated or reserved labels, other escapes). Because
/// only the canonical spelling parses, two metricIds never yield the same label set.
pub fn parse_canonical(id: &str) -> Option<(&str, Vec<(&str, String)>)> {
    let open = id.find('{')?;
    let (name, rest) = id.split_at(open);
    if name.is_empty() || !rest.ends_with('}') {
        return None;
    }
    let mut body = &rest[1..rest.len() - 1];
    let mut labels: Vec<(&str, String)> = Vec::new();
    while !body.is_empty() {
        let eq = body.find("=\"")?;
        let key = &body[..eq];
        if !is_label_name(key) || key == "__name__" || RESERVED_LABELS.contains(&key) {
            return None;
        }
        if labels.last().is_some_and(|(prev, _)| *prev >= key) {
            return None;
        }
        let mut value = String::new();
        let mut chars = body[eq + 2..].char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break eq + 2 + i,
                (_, '\\') => match chars.next()? {
                    (_, '\\') => value.push('\\'),
                    (_, '"') => value.push('"'),
                    (_, 'n') => value.push('\n'),
                    _ => return None,
                },
                (_, c) => value.push(c),
            }
        };
        if value.is_empty() {
            return None;
        }
        labels.push((key, value));
        body = &body[end + 1..];
        if let Some(next) = body.strip_prefix(',') {
            if next.is_empty() {
                return None;
            }
            body = next;
        } else if !body.is_empty() {
            return None;
        }
    }
    if labels.is_empty() {
        return None;
    }
    Some((name, labels))
}

/// Where a series of a push came from, for messages: "series 3", "line 12".
pub type Origin<'a> = &'a dyn Fn() -> String;

/// A push request's samples, owned and checked, grouped by series.
#[derive(Debug, Default)]
pub struct SeriesBatch {
    series: Vec<Series>,
    /// Indexes into `series`, by the hash of its metricId: the id is stored once.
    index: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::FixedState,
    /// The metricId being built, reused (a series already seen allocates nothing).
    scratch: String,
    /// (series index, timestamp ms, value)
    samples: Vec<(usize, i64, f64)>,
    /// What the samples will take in a journal record, roughly (see `push`).
    journal_bytes: usize,
}

/// One series of a batch.
#[derive(Debug)]
struct Series {
    /// The canonical metricId; its first `name_len` bytes are the name (the metricName).
    id: String,
    name_len: usize,
    unit: Option<String>,
    /// Whether a sample of it was kept: a series whose samples were all skipped (the NaN
    /// of an empty summary) is not created, so it does not count toward the series cap.
    has_samples: bool,
}

impl Series {
    fn name(&self) -> &str {
        &self.id[..self.name_len]
    }
}

impl SeriesBatch {
    pub fn new() -> SeriesBatch {
        SeriesBatch::default()
    }

    /// A batch with room for `series` series and `samples` samples (no rehash or regrowth
    /// while a parser that knows its counts fills it).
    pub fn with_capacity(series: usize, samples: usize) -> SeriesBatch {
        SeriesBatch {
            series: Vec::with_capacity(series),
            index: hashbrown::HashTable::with_capacity(series),
            samples: Vec::with_capacity(samples),
            ..SeriesBatch::default()
        }
    }

    /// The series of `name` and `labels` (in any order; empty values dropped, as Prometheus
    /// treats an empty label as absent), checked and named canonically. `origin` says where
    /// it came from in the request, for the message of a refusal.
    pub fn series<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        origin: Origin<'_>,
    ) -> Result<usize, IngestError> {
        let refuse = |what: String| Err(IngestError::new(format!("{}: {what}", origin())));
        if name.is_empty() {
            return refuse("the metric name is empty".into());
        }
        if name.len() > MAX_SERIES_NAME_BYTES {
            return refuse(format!(
                "the metric name is {} bytes; at most {MAX_SERIES_NAME_BYTES} are allowed",
                name.len()
            ));
        }
        if has_control_chars(name) || name.contains(['{', '}', '"']) {
            return refuse(format!(
                "the metric name {name:?} has a control character, brace or quote"
            ));
        }
        let mut sorted: smallvec::SmallVec<[(std::borrow::Cow<'l, str>, &'l str); 12]> =
            smallvec::SmallVec::new();
        for (key, value) in labels {
            if value.is_empty() {
                continue;
            }
            if sorted.len() == MAX_LABELS_PER_SERIES {
                return refuse(format!(
                    "more than {MAX_LABELS_PER_SERIES} labels; at most {MAX_LABELS_PER_SERIES} are allowed on one series"
                ));
            }
            if value.len() > MAX_LABEL_VALUE_BYTES {
                return refuse(format!(
                    "label {key:?} has a value of {} bytes; at most {MAX_LABEL_VALUE_BYTES} are allowed",
                    value.len()
                ));
            }
            if value.chars().any(|c| c.is_control() && c != '\n') {
                return refuse(format!(
                    "label {key:?} has a control character in its value"
                ));
            }
            if key.is_empty() {
                return refuse("a label has an empty name".into());
            }
            let valid: std::borrow::Cow<'l, str> = if is_label_name(key) {
                key.into()
            } else {
                sanitize_label_name(key).into()
            };
            // Checked after sanitizing: `\0\0name\0\0` would otherwise become a second
            // `__name__` (found by the remote_write_parse fuzz target).
            let key = if valid == "__name__" {
                return refuse(format!(
                    "the label {key:?} would be a second __name__ once made a valid label name"
                ));
            } else if RESERVED_LABELS.contains(&valid.as_ref()) {
                format!("exported_{valid}").into()
            } else {
                valid
            };
            sorted.push((key, value));
        }
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
            return refuse(format!(
                "the label {:?} appears more than once (label names are compared after characters outside [a-zA-Z0-9_] become _)",
                w[0].0
            ));
        }
        let mut id = std::mem::take(&mut self.scratch);
        write_canonical(&mut id, name, &sorted);
        if id.len() > MAX_SERIES_ID_BYTES {
            return refuse(format!(
                "the series {} is {} bytes with its labels; at most {MAX_SERIES_ID_BYTES} are allowed",
                &id[..id.floor_char_boundary(64)],
                id.len()
            ));
        }
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(id.as_str());
        let series = &self.series;
        if let Some(&at) = self.index.find(hash, |&i| series[i].id == id) {
            self.scratch = id;
            return Ok(at);
        }
        let at = self.series.len();
        let hasher = &self.hasher;
        let series = &self.series;
        self.index
            .insert_unique(hash, at, |&i| hasher.hash_one(series[i].id.as_str()));
        self.series.push(Series {
            id: id.clone(),
            name_len: name.len(),
            unit: None,
            has_samples: false,
        });
        self.scratch = id;
        Ok(at)
    }

    /// Gives `series` a unit (the catalog's, as the webhook's `unit`); one that is too long
    /// or has control characters is left out rather than refusing the samples.
    pub fn set_unit(&mut self, series: usize, unit: &str) {
        if !unit.is_empty() && unit.len() <= super::MAX_UNIT_BYTES && !has_control_chars(unit) {
            self.series[series].unit = Some(unit.to_owned());
        }
    }

    /// Adds one sample of `series`. The value must be finite and the timestamp not negative
    /// nor more than [`MAX_FUTURE_SKEW_MS`] ahead of `now_ms`.
    pub fn push(
        &mut self,
        series: usize,
        timestamp_ms: i64,
        value: f64,
        now_ms: i64,
        origin: Origin<'_>,
    ) -> Result<(), IngestError> {
        if !value.is_finite() {
            return Err(IngestError::new(format!(
                "{}: the value {value} is not a finite number; stathook stores finite values only",
                origin()
            )));
        }
        if timestamp_ms < 0 {
            return Err(IngestError::new(format!(
                "{}: the timestamp {timestamp_ms} ms is before 1970",
                origin()
            )));
        }
        if timestamp_ms > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
            return Err(IngestError::new(format!(
                "{}: the timestamp is {} ms in the future; at most {MAX_FUTURE_SKEW_MS} ms ahead of the server clock is accepted",
                origin(),
                timestamp_ms - now_ms
            )));
        }
        let s = &self.series[series];
        self.journal_bytes += s.id.len() + s.name_len + 24;
        if self.journal_bytes > MAX_BATCH_JOURNAL_BYTES {
            return Err(IngestError::new(format!(
                "the request holds more than {MAX_BATCH_JOURNAL_BYTES} bytes of samples (at {} samples); send it in smaller batches",
                self.samples.len()
            )));
        }
        self.samples.push((series, timestamp_ms, value));
        self.series[series].has_samples = true;
        Ok(())
    }

    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// The canonical metricIds of the series that have samples.
    pub fn series_ids(&self) -> impl Iterator<Item = &str> {
        self.series
            .iter()
            .filter(|s| s.has_samples)
            .map(|s| s.id.as_str())
    }

    /// The batch as the webhook's type, for `project_id`: one metric per sample, named by
    /// its series, samples of a series in the order they came.
    pub fn valid<'a>(&'a self, project_id: &'a str) -> ValidBatch<'a> {
        let metrics = self
            .samples
            .iter()
            .map(|&(s, timestamp_ms, value)| {
                let s = &self.series[s];
                ValidMetric {
                    metric_id: &s.id,
                    metric_name: s.name(),
                    unit: s.unit.as_deref(),
                    timestamp_ms,
                    value,
                    metadata: None,
                }
            })
            .collect();
        ValidBatch {
            project_id,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> String {
        "series 0".into()
    }

    #[test]
    fn canonical_ids_round_trip_and_are_the_only_spelling_that_parses() {
        let labels = vec![
            ("a".to_string(), "x".to_string()),
            ("b".to_string(), "say \"hi\"\\\nbye".to_string()),
        ];
        let id = canonical_id("up", &labels);
        assert_eq!(id, r#"up{a="x",b="say \"hi\"\\\nbye"}"#);
        let (name, back) = parse_canonical(&id).unwrap();
        assert_eq!(name, "up");
        assert_eq!(
            back,
            vec![("a", "x".to_string()), ("b", labels[1].1.clone())]
        );
        for not_canonical in [
            "up",
            "api.latency",
            r#"up{b="x",a="y"}"#,
            r#"up{a="x",a="y"}"#,
            r#"up{a="x",}"#,
            r#"up{a="x"} "#,
            r#"up{a=""}"#,
            r#"up{a="\t"}"#,
            r#"up{project="p"}"#,
            r#"up{metricId="m"}"#,
            r#"up{__name__="m"}"#,
            r#"up{1a="x"}"#,
            r#"{a="x"}"#,
            r#"up{}"#,
            r#"up{a="x""#,
        ] {
            assert_eq!(parse_canonical(not_canonical), None, "{not_canonical}");
        }
    }

    #[test]
    fn a_series_is_its_name_and_full_label_set() {
        let mut b = SeriesBatch::new();
        let a = b
            .series("up", [("job", "a"), ("instance", "h:1")], &origin)
            .unwrap();
        let again = b
            .series(
                "up",
                [("instance", "h:1"), ("job", "a"), ("x", "")],
                &origin,
            )
            .unwrap();
        let other = b.series("up", [("job", "b")], &origin).unwrap();
        assert_eq!(
            a, again,
            "label order and empty labels do not make a new series"
        );
        assert_ne!(a, other);
        assert_eq!(b.series_ids().count(), 0, "no series has a sample yet");
        b.push(a, 1_000, 1.0, 2_000, &origin).unwrap();
        let ids: Vec<&str> = b.series_ids().collect();
        assert_eq!(
            ids,
            [r#"up{instance="h:1",job="a"}"#],
            "only series with samples"
        );
        b.push(other, 1_000, 2.0, 2_000, &origin).unwrap();
        let ids: Vec<&str> = b.series_ids().collect();
        assert_eq!(ids, [r#"up{instance="h:1",job="a"}"#, r#"up{job="b"}"#]);
        let v = b.valid("p");
        assert_eq!(v.metrics.len(), 2);
        assert_eq!(v.metrics[1].metric_id, r#"up{job="b"}"#);
        assert_eq!(v.metrics[1].metric_name, "up");
    }

    #[test]
    fn labels_are_sanitized_renamed_or_refused() {
        let mut b = SeriesBatch::new();
        let s = b
            .series("m", [("host-name", "a"), ("project", "x")], &origin)
            .unwrap();
        assert_eq!(b.series[s].id, r#"m{exported_project="x",host_name="a"}"#);
        let err = |r: Result<usize, IngestError>| r.unwrap_err().message;
        assert!(err(b.series("m", [("..name..", "1")], &origin)).contains("second __name__"));
        assert!(err(b.series("m", [("a-b", "1"), ("a.b", "2")], &origin))
            .contains("\"a_b\" appears more than once"));
        assert!(err(b.series("", [], &origin)).contains("name is empty"));
        assert!(err(b.series("m{", [], &origin)).contains("brace"));
        let big = "v".repeat(MAX_LABEL_VALUE_BYTES + 1);
        assert!(err(b.series("m", [("a", big.as_str())], &origin)).contains("at most 1024"));
        let many: Vec<(String, String)> = (0..=MAX_LABELS_PER_SERIES)
            .map(|i| (format!("l{i}"), "v".into()))
            .collect();
        let many = many.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        assert!(err(b.series("m", many, &origin)).contains("more than 40 labels"));
        assert!(b
            .push(s, 0, f64::NAN, 0, &origin)
            .unwrap_err()
            .message
            .contains("not a finite number"));
        assert!(b
            .push(s, 10 * MAX_FUTURE_SKEW_MS, 1.0, 0, &origin)
            .unwrap_err()
            .message
            .contains("in the future"));
        assert_eq!(b.sample_count(), 0);
    }
}
