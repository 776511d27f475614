//! Plan: turns query parameters (`from`, `to`, `step`, `agg`, `maxPoints`, `where`, `limit`)
//! into a checked `Plan`, with errors that name the parameter. Pure: `now_ms` is an argument.

use super::agg::{Agg, Bucketing};

/// Raw points returned when `limit` is not given.
pub const DEFAULT_POINT_LIMIT: usize = 1000;
/// Most raw points one response may carry; page with `from` for more, or ask for
/// `limit=all`, which streams.
pub const MAX_POINT_LIMIT: usize = 100_000;
/// `limit=all`: every matching point, streamed (never collected in memory).
pub const NO_LIMIT: usize = usize::MAX;
/// Most buckets one series may have. 100,000 is ~100 screens of pixels: more is a mistake
/// (e.g. `step=1s` over a year), answered with a 400 instead of a very long response.
pub const MAX_BUCKETS: i64 = 100_000;
/// Most metrics one `/query` may name: a dashboard widget, not a bulk export.
pub const MAX_METRICS_PER_QUERY: usize = 100;

/// Steps `maxPoints` picks from: the first one that keeps the bucket count within bounds.
/// Round human units, so bucket boundaries fall on whole minutes, hours and days (UTC).
const NICE_STEPS_MS: &[i64] = &[
    1,
    10,
    100,
    1_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    5 * 60_000,
    10 * 60_000,
    15 * 60_000,
    30 * 60_000,
    3_600_000,
    2 * 3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    12 * 3_600_000,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
    14 * DAY_MS,
    30 * DAY_MS,
    90 * DAY_MS,
    365 * DAY_MS,
];
const DAY_MS: i64 = 86_400_000;

/// A bad query parameter: the message names it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError(pub String);

/// The parameters as the client sent them.
#[derive(Debug, Default, Clone)]
pub struct Params<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub step: Option<&'a str>,
    pub agg: Option<&'a str>,
    pub max_points: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub wheres: Vec<&'a str>,
}

/// `where=metadata.KEY:VALUE`: the sample's metadata has top-level KEY equal to VALUE (a
/// string equal to it, or a number/boolean whose JSON text is it).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Every sample, oldest first, at most `limit`.
    Raw { limit: usize },
    /// One value per non-empty bucket.
    Aggregate { agg: Agg, bucketing: Bucketing },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub from_ms: i64,
    pub to_ms: i64,
    pub mode: Mode,
    pub filters: Vec<Filter>,
}

impl Plan {
    /// Every raw point in `[from_ms, to_ms]`, unfiltered and unlimited.
    pub fn raw(from_ms: i64, to_ms: i64) -> Plan {
        Plan {
            from_ms,
            to_ms,
            mode: Mode::Raw { limit: usize::MAX },
            filters: Vec::new(),
        }
    }

    /// `span` is the (first, last) timestamp of the data queried, if any: a missing `from`
    /// defaults to the first and a missing `to` to the later of the last and now, so
    /// `maxPoints` spreads its buckets over the data.
    pub fn parse(p: &Params<'_>, now_ms: i64, span: Option<(i64, i64)>) -> Result<Plan, PlanError> {
        let from_ms = match p.from {
            Some(s) if !s.is_empty() => parse_time("from", s, now_ms)?,
            _ => span.map_or(0, |s| s.0),
        };
        let to_ms = match p.to {
            Some(s) if !s.is_empty() => parse_time("to", s, now_ms)?,
            _ => span.map_or(i64::MAX, |s| s.1.max(now_ms)),
        };
        if from_ms > to_ms {
            return Err(PlanError(format!(
                "from ({from_ms}) must not be after to ({to_ms})"
            )));
        }
        let filters = p
            .wheres
            .iter()
            .map(|w| parse_filter(w))
            .collect::<Result<Vec<_>, _>>()?;
        let agg = match p.agg.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(Agg::parse(s).ok_or_else(|| {
                PlanError(format!(
                    "agg must be one of avg, min, max, sum, count, first, last, p50, p90, p95, p99; not {s:?}"
                ))
            })?),
        };
        let step = match p.step.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(parse_duration_ms(s).ok_or_else(|| {
                PlanError(format!(
                    "step must be a positive duration such as 10s, 5m, 1h, 1d or a number of milliseconds; not {s:?}"
                ))
            })?),
        };
        let max_points = match p.max_points.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=MAX_BUCKETS).contains(&n) => Some(n),
                _ => {
                    return Err(PlanError(format!(
                        "maxPoints must be an integer between 1 and {MAX_BUCKETS}; not {s:?}"
                    )))
                }
            },
        };
        if agg.is_none() && step.is_none() && max_points.is_none() {
            let limit = match p.limit.filter(|s| !s.is_empty()) {
                None => DEFAULT_POINT_LIMIT,
                Some("all") => NO_LIMIT,
                Some(s) => match s.parse::<usize>() {
                    Ok(n) if (1..=MAX_POINT_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(PlanError(format!(
                            "limit must be an integer between 1 and {MAX_POINT_LIMIT}, or all; not {s:?}"
                        )))
                    }
                },
            };
            return Ok(Plan {
                from_ms,
                to_ms,
                mode: Mode::Raw { limit },
                filters,
            });
        }
        let agg = agg.unwrap_or(Agg::Avg);
        let bucketing = match (step, max_points) {
            (None, None) => Bucketing::Whole { from_ms },
            (Some(step), None) => {
                let n = bucket_count(from_ms, to_ms, step);
                if n > MAX_BUCKETS {
                    return Err(PlanError(format!(
                        "step {step} ms over this range makes {n} buckets, more than {MAX_BUCKETS}; use a larger step, a shorter range or maxPoints"
                    )));
                }
                Bucketing::Step(step)
            }
            (step, Some(max)) => {
                let auto = auto_step(from_ms, to_ms, max);
                Bucketing::Step(step.map_or(auto, |s| s.max(auto)))
            }
        };
        Ok(Plan {
            from_ms,
            to_ms,
            mode: Mode::Aggregate { agg, bucketing },
            filters,
        })
    }
}

/// Buckets a step makes over `[from, to]` (both aligned down to the step).
fn bucket_count(from_ms: i64, to_ms: i64, step: i64) -> i64 {
    (to_ms.div_euclid(step) - from_ms.div_euclid(step)).saturating_add(1)
}

/// The smallest nice step giving at most `max_points` buckets over `[from, to]`; beyond the
/// largest nice step, a multiple of it.
pub fn auto_step(from_ms: i64, to_ms: i64, max_points: i64) -> i64 {
    for &step in NICE_STEPS_MS {
        if bucket_count(from_ms, to_ms, step) <= max_points {
            return step;
        }
    }
    let year = 365 * DAY_MS;
    let mut step = year;
    while bucket_count(from_ms, to_ms, step) > max_points {
        step = step.saturating_mul(2);
    }
    step
}

/// `now`, `now-1h`, `-24h`, `-7d` or Unix milliseconds.
pub fn parse_time(name: &str, s: &str, now_ms: i64) -> Result<i64, PlanError> {
    let bad = || {
        PlanError(format!(
            "{name} must be Unix milliseconds, now, or a relative time like -24h or now-7d; not {s:?}"
        ))
    };
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let rel = s.strip_prefix("now").unwrap_or(s);
    if rel.is_empty() {
        return Ok(now_ms);
    }
    let ago = rel.strip_prefix('-').ok_or_else(bad)?;
    let d = parse_duration_ms(ago).ok_or_else(bad)?;
    Ok(now_ms.saturating_sub(d))
}

/// A positive duration: `500ms`, `10s`, `5m`, `1h`, `7d`, `2w`, or bare milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        "y" => 365 * DAY_MS,
        _ => return None,
    };
    let ms = n.checked_mul(scale)?;
    (ms > 0).then_some(ms)
}

fn parse_filter(w: &str) -> Result<Filter, PlanError> {
    let bad = || {
        PlanError(format!(
            "where must look like metadata.KEY:VALUE (e.g. metadata.region:eu); not {w:?}"
        ))
    };
    let rest = w.strip_prefix("metadata.").ok_or_else(bad)?;
    let (key, value) = rest.split_once(':').ok_or_else(bad)?;
    if key.is_empty() {
        return Err(bad());
    }
    Ok(Filter {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn plan(pairs: &[(&str, &str)]) -> Result<Plan, PlanError> {
        let mut p = Params::default();
        for (k, v) in pairs {
            match *k {
                "from" => p.from = Some(v),
                "to" => p.to = Some(v),
                "step" => p.step = Some(v),
                "agg" => p.agg = Some(v),
                "maxPoints" => p.max_points = Some(v),
                "limit" => p.limit = Some(v),
                "where" => p.wheres.push(v),
                _ => unreachable!(),
            }
        }
        Plan::parse(&p, NOW, None)
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        plan(pairs).expect_err("should be rejected").0
    }

    #[test]
    fn times_absolute_and_relative() {
        let check = |s: &str, want: i64| assert_eq!(parse_time("from", s, NOW), Ok(want), "{s}");
        check("1234", 1234);
        check("now", NOW);
        check("-24h", NOW - 86_400_000);
        check("now-7d", NOW - 7 * 86_400_000);
        check("-90s", NOW - 90_000);
        for bad in ["yesterday", "+1h", "-1x", "now+1h", "-", "1.5"] {
            assert!(parse_time("from", bad, NOW).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let check = |s: &str, want: Option<i64>| assert_eq!(parse_duration_ms(s), want, "{s}");
        check("250", Some(250));
        check("250ms", Some(250));
        check("10s", Some(10_000));
        check("5m", Some(300_000));
        check("1h", Some(3_600_000));
        check("1d", Some(86_400_000));
        check("2w", Some(14 * 86_400_000));
        check("0", None);
        check("0s", None);
        check("1.5h", None);
        check("h", None);
        check("99999999999999999999d", None);
    }

    #[test]
    fn raw_mode_unless_an_aggregation_is_asked_for() {
        let p = plan(&[("from", "10"), ("to", "20")]).unwrap();
        assert_eq!(p.mode, Mode::Raw { limit: 1000 });
        let p = plan(&[("from", "0"), ("to", "3600000"), ("step", "1m")]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Aggregate {
                agg: Agg::Avg,
                bucketing: Bucketing::Step(60_000)
            }
        );
        let p = plan(&[("agg", "sum"), ("from", "5"), ("to", "9")]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Aggregate {
                agg: Agg::Sum,
                bucketing: Bucketing::Whole { from_ms: 5 }
            }
        );
    }

    #[test]
    fn max_points_picks_a_nice_step_and_never_more_buckets() {
        // One day into at most 24 buckets: 1 h.
        let p = plan(&[("from", "0"), ("to", "86399999"), ("maxPoints", "24")]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Aggregate {
                agg: Agg::Avg,
                bucketing: Bucketing::Step(3_600_000)
            }
        );
        for (from, to, max) in [(0, 1_000_000_000_000, 500), (7, 8, 1), (-5, 5, 2)] {
            let step = auto_step(from, to, max);
            assert!(bucket_count(from, to, step) <= max, "{from} {to} {max}");
        }
        // An explicit step smaller than maxPoints allows is raised.
        let p = plan(&[
            ("from", "0"),
            ("to", "86399999"),
            ("step", "1s"),
            ("maxPoints", "24"),
        ])
        .unwrap();
        assert!(matches!(
            p.mode,
            Mode::Aggregate {
                bucketing: Bucketing::Step(3_600_000),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_parameter() {
        assert!(err(&[("from", "soon")]).starts_with("from "));
        assert!(err(&[("to", "x")]).starts_with("to "));
        assert!(err(&[("from", "10"), ("to", "5")]).contains("must not be after"));
        assert!(err(&[("step", "fast")]).starts_with("step "));
        assert!(err(&[("agg", "median-ish")]).starts_with("agg "));
        assert!(err(&[("maxPoints", "0")]).starts_with("maxPoints "));
        assert!(err(&[("limit", "0")]).starts_with("limit "));
        assert!(err(&[("limit", "100001")]).starts_with("limit "));
        assert!(err(&[("where", "region:eu")]).starts_with("where "));
        assert!(err(&[("where", "metadata.:eu")]).starts_with("where "));
        assert!(err(&[("from", "0"), ("to", "now"), ("step", "1ms")]).contains("buckets"));
    }

    #[test]
    fn filters_split_at_the_first_colon() {
        let p = plan(&[("where", "metadata.url:http://x"), ("where", "metadata.a:")]).unwrap();
        assert_eq!(
            p.filters,
            vec![
                Filter {
                    key: "url".into(),
                    value: "http://x".into()
                },
                Filter {
                    key: "a".into(),
                    value: "".into()
                }
            ]
        );
    }
}
