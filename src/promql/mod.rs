//! PromQL for the Prometheus HTTP API (`http/prom.rs`): the label model (`labels`), the
//! range functions (`funcs`) and the evaluator (`eval`) over a `Source` of series. Parsing
//! is the `promql-parser` crate's. Pure: no store, no HTTP; `http/prom.rs` implements the
//! source on the query engine and writes Prometheus's envelope.

mod by_series;
pub mod eval;
pub mod funcs;
pub mod labels;

pub use eval::{Engine, ErrorKind, EvalError, Sample, Series, Source, Value};
/// What a `Source` is asked to match (the parser's type).
pub use promql_parser::label::Matcher;

/// Prometheus's default lookback for instant selectors.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60_000;
/// The points of one series a range query may ask for. Prometheus stops at 11,000 and
/// VictoriaMetrics at 30,000; a month at a 1-minute step (43,200) is allowed here.
pub const MAX_STEPS: i64 = 50_000;
/// Samples one query may load.
pub const MAX_SAMPLES: usize = 50_000_000;

/// Longest duration a query may name, in seconds (about 31,700 years).
pub const MAX_DURATION_S: f64 = 1e12;

pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, EvalError> {
    check_number_durations(query)?;
    promql_parser::parser::parse(query).map_err(|e| EvalError {
        kind: ErrorKind::BadData,
        message: format!("invalid parameter \"query\": {e}"),
    })
}

/// Refuses a duration written as a bare number (`[300]`, `offset 1e30`, `[1h:NaN]`) that is
/// not a finite number of seconds up to [`MAX_DURATION_S`]: promql-parser 0.11 turns such a
/// number into a `Duration` with `Duration::from_secs_f64`, which panics on NaN, infinities,
/// negatives and huge values (found by the `promql_eval` fuzz target). A scan of the text
/// where a duration can stand (after `[`, a subquery's `:`, `offset`), not a second parser:
/// whatever it lets through, the crate still parses and checks.
fn check_number_durations(query: &str) -> Result<(), EvalError> {
    let lower = query.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    // Where a duration may start: after `[`, after `:` inside brackets, after `offset`;
    // never inside a quoted string.
    let mut starts = Vec::new();
    let (mut quote, mut in_brackets) = (None, false);
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q && (i == 0 || bytes[i - 1] != b'\\') => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'' | b'`') => quote = Some(b),
            (None, b'[') => {
                in_brackets = true;
                starts.push(i + 1);
            }
            (None, b']') => in_brackets = false,
            (None, b':') if in_brackets => starts.push(i + 1),
            (None, b'o') if lower[i..].starts_with("offset") => starts.push(i + "offset".len()),
            _ => {}
        }
    }
    for start in starts {
        let rest = lower[start..].trim_start();
        // The lexer allows space between the sign and the number (`offset - 1e30`).
        let rest = rest.strip_prefix(['-', '+']).unwrap_or(rest).trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
            .unwrap_or(rest.len());
        let token = &rest[..end];
        if token.is_empty()
            || !token.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == 'i' || c == 'n')
        {
            continue;
        }
        let seconds = match token.strip_prefix("0x") {
            Some(hex) => u128::from_str_radix(hex, 16).map_or(f64::INFINITY, |v| v as f64),
            None => match token.parse::<f64>() {
                Ok(v) => v,
                // `5m`, `1h30m`, a name: not a bare number; the parser decides.
                Err(_) => continue,
            },
        };
        if !(seconds.is_finite() && seconds <= MAX_DURATION_S) {
            return Err(EvalError {
                kind: ErrorKind::BadData,
                message: format!(
                    "invalid parameter \"query\": the duration {token:?} is not a number of seconds up to {MAX_DURATION_S:e}"
                ),
            });
        }
    }
    Ok(())
}

/// `query` at `t` (ms).
pub fn instant<S: Source>(
    source: &S,
    query: &str,
    t: i64,
    lookback_ms: i64,
) -> Result<Value, EvalError> {
    instant_until(source, query, t, lookback_ms, far_deadline())
}

/// A deadline no query reaches: for callers that set none.
fn far_deadline() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(86_400)
}

/// As `instant`, refused with a `Timeout` once `deadline` passes.
pub fn instant_until<S: Source>(
    source: &S,
    query: &str,
    t: i64,
    lookback_ms: i64,
    deadline: std::time::Instant,
) -> Result<Value, EvalError> {
    let expr = parse(query)?;
    let mut engine = Engine::new(source, t, t, lookback_ms, MAX_SAMPLES);
    engine.deadline = Some(deadline);
    engine.plan(&expr);
    engine.eval(&expr, t)
}

/// `query` at each step from `start` to `end` (ms): one series per label set, with its
/// points; a scalar result is one series without labels.
pub fn range<S: Source>(
    source: &S,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    lookback_ms: i64,
) -> Result<Vec<Series>, EvalError> {
    range_until(source, query, start, end, step, lookback_ms, far_deadline())
}

/// The time a query may take unless it says (Prometheus's `-query.timeout`).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// As `range`, refused with a `Timeout` once `deadline` passes.
pub fn range_until<S: Source>(
    source: &S,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    lookback_ms: i64,
    deadline: std::time::Instant,
) -> Result<Vec<Series>, EvalError> {
    let steps = (start, end, step);
    range_with(source, query, steps, lookback_ms, deadline, true)
}

/// As `range`, evaluated step by step whatever the query's shape (what `range` does for the
/// shapes `by_series` does not take): for tests that compare the two.
pub fn range_by_steps<S: Source>(
    source: &S,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    lookback_ms: i64,
) -> Result<Vec<Series>, EvalError> {
    let steps = (start, end, step);
    range_with(source, query, steps, lookback_ms, far_deadline(), false)
}

/// A range query over `(start, end, step)`, series by series where its shape allows and
/// `series_at_once` is set, else step by step; the series sorted by their labels, as
/// Prometheus answers.
fn range_with<S: Source>(
    source: &S,
    query: &str,
    (start, end, step): (i64, i64, i64),
    lookback_ms: i64,
    deadline: std::time::Instant,
    series_at_once: bool,
) -> Result<Vec<Series>, EvalError> {
    let expr = parse(query)?;
    if (end - start) / step.max(1) >= MAX_STEPS {
        return Err(EvalError {
            kind: ErrorKind::BadData,
            message: format!("exceeded maximum resolution of {MAX_STEPS} points per timeseries. Try decreasing the query resolution (?step=XX)"),
        });
    }
    let mut engine = Engine::new(source, start, end, lookback_ms, MAX_SAMPLES);
    engine.deadline = Some(deadline);
    engine.plan(&expr);
    let at_once = if series_at_once {
        by_series::range(&mut engine, &expr, by_series::Steps::new(start, end, step))
    } else {
        None
    };
    let mut out = match at_once {
        Some(r) => r?,
        None => by_steps(&mut engine, &expr, start, end, step)?,
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Each step's value of `expr`, gathered into one series per label set.
fn by_steps<S: Source>(
    engine: &mut Engine<'_, S>,
    expr: &promql_parser::parser::Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<Series>, EvalError> {
    let mut out: Vec<Series> = Vec::new();
    let mut index: std::collections::HashMap<labels::Labels, usize> = Default::default();
    let mut t = start;
    while t <= end {
        engine.check_deadline()?;
        let samples = match engine.eval(expr, t)? {
            Value::Scalar(v) => vec![Sample {
                labels: Default::default(),
                value: v,
            }],
            Value::Vector(v) => v,
            Value::Matrix(_) | Value::String(_) => return Err(EvalError {
                kind: ErrorKind::BadData,
                message:
                    "invalid expression type for range query: must be a scalar or an instant vector"
                        .into(),
            }),
        };
        for s in samples {
            let i = match index.get(&*s.labels) {
                Some(&i) => i,
                None => {
                    out.push(((*s.labels).clone(), Vec::new()));
                    index.insert((*s.labels).clone(), out.len() - 1);
                    out.len() - 1
                }
            };
            out[i].1.push((t, s.value));
        }
        t += step;
    }
    Ok(out)
}

/// A `Source` over series held in memory (unit tests and the fuzz target).
pub struct Memory(pub Vec<Series>);

impl Source for Memory {
    fn select(&self, m: &[Matcher], from: i64, to: i64) -> Result<Vec<Series>, EvalError> {
        let label =
            |l: &labels::Labels, name: &str| l.get(name).map_or("", |v| v.as_str()).to_owned();
        Ok(self
            .0
            .iter()
            .filter(|(l, _)| m.iter().all(|m| m.is_match(&label(l, &m.name))))
            .map(|(l, p)| {
                (
                    l.clone(),
                    p.iter()
                        .copied()
                        .filter(|x| x.0 >= from && x.0 <= to)
                        .collect(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_duration_the_parser_would_panic_on_is_refused() {
        let f = Memory(vec![]);
        for q in [
            "p[66666666666666666666666666666666666666666666666666666]",
            "p[Inf]",
            "p[nan]",
            "p offset 1e30",
            "p offset -1e30",
            "p offset- 888888888888888888888888888888888888888880e3",
            "p offset + 1e30",
            "p[1h:1e300]",
            "rate(p[0xffffffffffffffffffffffffff])",
        ] {
            let e = instant(&f, q, 0, DEFAULT_LOOKBACK_MS).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadData, "{q}");
            assert!(
                e.message.contains("is not a number of seconds"),
                "{q}: {}",
                e.message
            );
        }
        // Names and strings that only look like such numbers are left to the parser (which
        // answers them, or refuses a subquery for its own reason).
        for q in [
            "job:inf",
            "p{path=\"[1e999]\"}",
            "p[300]",
            "p offset 5m",
            "p[1h:30]",
        ] {
            if let Err(e) = instant(&f, q, 0, DEFAULT_LOOKBACK_MS) {
                assert!(
                    !e.message.contains("is not a number of seconds"),
                    "{q}: {}",
                    e.message
                );
            }
        }
    }

    use super::labels::Labels;
    use super::*;

    /// Two series of project p: `up` 1, 1, 0 and `req_total` 0, 10, 20 … every 15 s.
    fn fixed() -> Memory {
        let l = |name: &str, job: &str| -> Labels {
            [("__name__", name), ("project", "p"), ("job", job)]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        Memory(vec![
            (l("up", "a"), vec![(0, 1.0), (15_000, 1.0), (30_000, 0.0)]),
            (l("up", "b"), vec![(0, 1.0), (15_000, 1.0), (30_000, 1.0)]),
            (
                l("req_total", "a"),
                (0..=20).map(|i| (i * 15_000, i as f64 * 10.0)).collect(),
            ),
        ])
    }

    /// Series of two jobs and three names: irregular spacing, gaps, counter resets, NaN.
    fn irregular() -> Memory {
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        let mut series = Vec::new();
        for name in ["up", "req_total", "latency"] {
            for job in ["a", "b", "c"] {
                let l: Labels = [("__name__", name), ("project", "p"), ("job", job)]
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                let (mut t, mut c, mut pts) = ((next() % 20_000) as i64, 0.0, Vec::new());
                while t < 3_600_000 {
                    c = match next() % 50 {
                        0 => 0.0,
                        1 => f64::NAN,
                        _ => c + (next() % 1_000) as f64 / 100.0,
                    };
                    pts.push((t, if c.is_nan() { c } else { c * 1.5 }));
                    t += 1_000 + (next() % 30_000) as i64;
                    if next() % 40 == 0 {
                        t += 600_000;
                    }
                }
                series.push((l, pts));
            }
        }
        // Two names of one job, one before the other: without their names they are one
        // label set, which is refused only where both have a value.
        for (name, span) in [
            ("old_total", 0..1_200_000),
            ("new_total", 2_400_000..3_600_000),
        ] {
            let l: Labels = [("__name__", name), ("project", "p"), ("job", "z")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let pts = span
                .step_by(15_000)
                .map(|t| (t, t as f64 / 1000.0))
                .collect();
            series.push((l, pts));
        }
        Memory(series)
    }

    #[test]
    fn series_at_once_gives_the_step_by_step_answers_to_the_bit() {
        let m = irregular();
        let bits = |r: Result<Vec<Series>, EvalError>| {
            r.map(|v| {
                v.into_iter()
                    .map(|(l, p)| (l, p.into_iter().map(|(t, x)| (t, x.to_bits())).collect()))
                    .collect::<Vec<(Labels, Vec<(i64, u64)>)>>()
            })
        };
        let mut queries = vec![
            "up".to_string(),
            "(up offset 3m)".into(),
            "last_over_time({job=\"a\"}[5m])".into(),
            "rate(req_total[5m])".into(),
            "rate({job=\"a\"}[5m])".into(),
            "quantile_over_time(0.3, latency[10m])".into(),
            "quantile_over_time((0.9), latency[10m] offset 1m)".into(),
            "topk(2, up)".into(),
            "rate({job=\"z\"}[5m])".into(),
            "sum by (job) (rate({job=\"z\"}[5m]))".into(),
            "rate({job=\"z\"}[30m])".into(),
            "count(delta({job=\"a\"}[1m]))".into(),
        ];
        for (f, _) in super::funcs::RANGE_FUNCTIONS {
            if f != "quantile_over_time" {
                queries.push(format!("{f}(req_total[4m])"));
            }
        }
        for agg in ["sum", "avg", "min", "max", "count"] {
            for inner in [
                "req_total",
                "rate(req_total[5m])",
                "max_over_time(latency[2m] offset 30s)",
                "{__name__=~\".+\"}",
                "last_over_time({job=~\"a|b\"}[7m])",
            ] {
                for modifier in [
                    "",
                    " by (job)",
                    " without (job)",
                    " by (__name__)",
                    " without ()",
                ] {
                    queries.push(format!("{agg}{modifier} ({inner})"));
                }
            }
        }
        let (mut compared, mut taken) = (0, 0);
        for q in &queries {
            // How many of these shapes the series-at-once evaluator takes (else this test
            // would compare the step-by-step one with itself).
            let expr = parse(q).unwrap();
            let mut engine = Engine::new(&m, 0, 3_600_000, DEFAULT_LOOKBACK_MS, MAX_SAMPLES);
            let steps = by_series::Steps::new(0, 3_600_000, 60_000);
            taken += by_series::range(&mut engine, &expr, steps).is_some() as usize;
            for (start, end, step) in [
                (0, 3_600_000, 60_000),
                (123_456, 2_000_000, 37_000),
                (600_000, 600_000, 1_000),
            ] {
                let fused = bits(range(&m, q, start, end, step, DEFAULT_LOOKBACK_MS));
                let stepped = bits(range_by_steps(&m, q, start, end, step, DEFAULT_LOOKBACK_MS));
                assert_eq!(fused, stepped, "{q} over {start}..{end} step {step}");
                compared += fused.map_or(0, |v| v.iter().map(|s| s.1.len()).sum::<usize>());
            }
        }
        assert!(compared > 20_000, "only {compared} points compared");
        assert!(
            taken >= 100,
            "only {taken} of {} shapes taken",
            queries.len()
        );
        // Two series left with one label set: one series where their steps do not meet,
        // refused where they do.
        let merged = range(
            &m,
            "rate({job=\"z\"}[5m])",
            0,
            3_600_000,
            60_000,
            DEFAULT_LOOKBACK_MS,
        )
        .unwrap();
        assert_eq!(merged.len(), 1);
        assert!(
            merged[0].1.first().unwrap().0 < 1_200_000 && merged[0].1.last().unwrap().0 > 2_400_000
        );
        let e = range(
            &m,
            "rate({job=\"z\"}[30m])",
            0,
            3_600_000,
            60_000,
            DEFAULT_LOOKBACK_MS,
        )
        .unwrap_err();
        assert!(e.message.contains("same labelset"), "{e:?}");
        // A shape left to the step-by-step evaluator refuses as it does.
        let e = range(
            &m,
            "rate({job=\"a\"}[5m]) + 1",
            0,
            600_000,
            60_000,
            DEFAULT_LOOKBACK_MS,
        );
        assert!(e.is_err(), "{e:?}");
    }

    /// A source that counts the samples it hands out.
    struct Counting<'a>(&'a Memory, std::cell::Cell<usize>);

    impl Source for Counting<'_> {
        fn select(&self, m: &[Matcher], from: i64, to: i64) -> Result<Vec<Series>, EvalError> {
            let s = self.0.select(m, from, to)?;
            self.1
                .set(self.1.get() + s.iter().map(|s| s.1.len()).sum::<usize>());
            Ok(s)
        }
    }

    #[test]
    fn a_metric_used_by_several_selectors_is_read_once() {
        let m = irregular();
        let all: usize =
            m.0.iter()
                .filter(|s| s.0["__name__"] == "req_total")
                .map(|s| s.1.len())
                .sum();
        for q in [
            "req_total - req_total offset 10m",
            "rate(req_total[5m]) / rate(req_total[1h])",
            "sum(rate(req_total[5m])) / sum(req_total offset 10m)",
        ] {
            let c = Counting(&m, Default::default());
            let stepped = range(&c, q, 0, 3_600_000, 60_000, DEFAULT_LOOKBACK_MS).unwrap();
            assert!(
                c.1.get() <= all,
                "{q}: {} samples read, {all} stored",
                c.1.get()
            );
            // The same answers as each selector read on its own.
            let fresh = |query: &str| range(&m, query, 0, 3_600_000, 60_000, DEFAULT_LOOKBACK_MS);
            assert!(!stepped.is_empty(), "{q}");
            if q.starts_with("req_total -") {
                let a = fresh("req_total").unwrap();
                let b = fresh("req_total offset 10m").unwrap();
                let (a, b) = (&a[0].1, &b[0].1);
                let want: Vec<(i64, u64)> = a
                    .iter()
                    .filter_map(|&(t, x)| {
                        b.iter()
                            .find(|p| p.0 == t)
                            .map(|p| (t, (x - p.1).to_bits()))
                    })
                    .collect();
                let got: Vec<(i64, u64)> = stepped[0]
                    .1
                    .iter()
                    .map(|&(t, x)| (t, x.to_bits()))
                    .collect();
                assert_eq!(got, want, "{q}");
            }
        }
    }

    fn vector(v: Value) -> Vec<(String, f64)> {
        let Value::Vector(v) = v else { panic!("{v:?}") };
        let mut out: Vec<(String, f64)> = v
            .into_iter()
            .map(|s| (format!("{:?}", s.labels), s.value))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn scalars_selectors_aggregations_and_operators() {
        let f = fixed();
        assert_eq!(
            instant(&f, "1+1", 0, DEFAULT_LOOKBACK_MS).unwrap(),
            Value::Scalar(2.0)
        );
        let v = vector(instant(&f, "sum(up)", 30_000, DEFAULT_LOOKBACK_MS).unwrap());
        assert_eq!(v, vec![("{}".into(), 1.0)]);
        let v = vector(instant(&f, "sum by (job) (up)", 30_000, DEFAULT_LOOKBACK_MS).unwrap());
        assert_eq!(v.iter().map(|x| x.1).collect::<Vec<_>>(), vec![0.0, 1.0]);
        let v = vector(instant(&f, "up == 0", 30_000, DEFAULT_LOOKBACK_MS).unwrap());
        assert_eq!(v.len(), 1);
        assert!(v[0].0.contains("__name__"), "a filter keeps the name");
        let v = vector(instant(&f, "up * 2", 30_000, DEFAULT_LOOKBACK_MS).unwrap());
        assert!(!v[0].0.contains("__name__"));
        // The lookback: 5 minutes after the last sample it is still seen, not after.
        assert_eq!(
            vector(instant(&f, "up", 330_000, DEFAULT_LOOKBACK_MS).unwrap()).len(),
            2
        );
        assert_eq!(
            vector(instant(&f, "up", 330_001, DEFAULT_LOOKBACK_MS).unwrap()).len(),
            0
        );
        let v = vector(instant(&f, "rate(req_total[1m])", 300_000, DEFAULT_LOOKBACK_MS).unwrap());
        assert!((v[0].1 - 10.0 / 15.0).abs() < 1e-12, "{v:?}");
        let v = instant(
            &f,
            "up{job=~\"a|b\"} + ignoring(job) up{job=\"a\"}",
            30_000,
            DEFAULT_LOOKBACK_MS,
        );
        assert!(v.is_err(), "two left samples match one right: many-to-many");
        let e = instant(&f, "up and up", 0, DEFAULT_LOOKBACK_MS).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadData);
        assert!(e.message.contains("and"), "{e:?}");
        let r = range(&f, "sum(up)", 0, 30_000, 15_000, DEFAULT_LOOKBACK_MS).unwrap();
        assert_eq!(
            r,
            vec![(Labels::new(), vec![(0, 2.0), (15_000, 2.0), (30_000, 1.0)])]
        );
        // One engine asked out of order (its windows move back) answers as fresh ones do.
        let expr = parse("sum(rate(req_total[1m])) + sum(up)").unwrap();
        let mut e = Engine::new(&f, 0, 300_000, DEFAULT_LOOKBACK_MS, MAX_SAMPLES);
        for t in [300_000, 60_000, 240_000, 30_000] {
            let fresh = Engine::new(&f, t, t, DEFAULT_LOOKBACK_MS, MAX_SAMPLES).eval(&expr, t);
            assert_eq!(e.eval(&expr, t), fresh, "at {t}");
        }
        let past = std::time::Instant::now() - std::time::Duration::from_millis(1);
        let e = range_until(&f, "up", 0, 30_000, 15_000, DEFAULT_LOOKBACK_MS, past).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        let e = instant_until(&f, "sum(up)", 0, DEFAULT_LOOKBACK_MS, past).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        let v = vector(instant(&f, "absent(nope{job=\"x\"})", 0, DEFAULT_LOOKBACK_MS).unwrap());
        assert_eq!(v, vec![("{\"job\": \"x\"}".into(), 1.0)]);
    }
}
