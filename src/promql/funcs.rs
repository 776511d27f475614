//! PromQL's functions over a range of points (`rate`, `increase`, `delta`, `irate`, the
//! `*_over_time` family) with Prometheus 2.x's semantics: the range is `[t - range, t]`,
//! `rate`/`increase`/`delta` extrapolate towards the range's edges the way its
//! `extrapolatedRate` does, counters' resets are corrected. Pure: points in, a value out.

/// Points of one series in a range, oldest first: (timestamp ms, value).
pub type Points<'a> = &'a [(i64, f64)];

/// A range function, named once per query rather than at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Avg,
    Sum,
    Min,
    Max,
    Count,
    Last,
    Quantile,
}

/// Every range function with its PromQL name: the one list of them.
pub const RANGE_FUNCTIONS: [(&str, RangeFn); 11] = [
    ("rate", RangeFn::Rate),
    ("increase", RangeFn::Increase),
    ("delta", RangeFn::Delta),
    ("irate", RangeFn::Irate),
    ("avg_over_time", RangeFn::Avg),
    ("sum_over_time", RangeFn::Sum),
    ("min_over_time", RangeFn::Min),
    ("max_over_time", RangeFn::Max),
    ("count_over_time", RangeFn::Count),
    ("last_over_time", RangeFn::Last),
    ("quantile_over_time", RangeFn::Quantile),
];

impl RangeFn {
    pub fn by_name(name: &str) -> Option<RangeFn> {
        RANGE_FUNCTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, f)| f)
    }

    /// Whether the result keeps the series' name (only `last_over_time` does).
    pub fn keeps_name(self) -> bool {
        self == RangeFn::Last
    }

    /// The fewest points in a window for a value: two for the rates and `delta`.
    pub fn min_points(self) -> usize {
        match self {
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta | RangeFn::Irate => 2,
            _ => 1,
        }
    }

    /// This function of `points` in `[range_start, range_end]`; none where it has no value.
    pub fn apply(
        self,
        points: Points<'_>,
        range_start: i64,
        range_end: i64,
        q: Option<f64>,
    ) -> Option<f64> {
        match self {
            RangeFn::Rate => extrapolated(points, range_start, range_end, true, true),
            RangeFn::Increase => extrapolated(points, range_start, range_end, true, false),
            RangeFn::Delta => extrapolated(points, range_start, range_end, false, false),
            RangeFn::Irate => irate(points),
            over => over.over_time(points, q),
        }
    }

    /// The `*_over_time` functions; none for an empty range (or another function).
    fn over_time(self, points: Points<'_>, q: Option<f64>) -> Option<f64> {
        if points.is_empty() {
            return None;
        }
        let values = points.iter().map(|p| p.1);
        Some(match self {
            RangeFn::Avg => {
                // Prometheus's incremental mean, so large values agree to the last bit more
                // often.
                let mut mean = 0.0;
                for (i, v) in values.enumerate() {
                    mean += (v - mean) / (i + 1) as f64;
                }
                mean
            }
            RangeFn::Sum => values.sum(),
            RangeFn::Min => values.fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
            RangeFn::Max => values.fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
            RangeFn::Count => points.len() as f64,
            RangeFn::Last => points[points.len() - 1].1,
            RangeFn::Quantile => quantile(q?, values.collect()),
            _ => return None,
        })
    }
}

/// `rate`, `increase` and `delta`: Prometheus's `extrapolatedRate`.
pub fn extrapolated(
    points: Points<'_>,
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if is_counter {
        let mut prev = first.1;
        for &(_, v) in &points[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let avg_between = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_between / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        avg_between / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

/// `irate`: the per-second rate between the last two points (a reset counts from zero).
pub fn irate(points: Points<'_>) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (a, b) = (points[n - 2], points[n - 1]);
    let diff = if b.1 < a.1 { b.1 } else { b.1 - a.1 };
    let dt = (b.0 - a.0) as f64 / 1000.0;
    (dt > 0.0).then(|| diff / dt)
}

/// Prometheus's `quantile`: linear interpolation between the nearest ranks; φ outside [0, 1]
/// gives ∓Inf.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0) as usize;
    let upper = (lower + 1).min(values.len() - 1);
    let weight = rank - rank.floor();
    values[lower] * (1.0 - weight) + values[upper] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // A counter 0, 10, 20 … every 10 s over a 60 s range ending on the last sample.
        let pts: Vec<(i64, f64)> = (0..6)
            .map(|i| (10_000 + i * 10_000, i as f64 * 10.0))
            .collect();
        let r = extrapolated(&pts, 0, 60_000, true, true).unwrap();
        // 50 over the 50 s sampled; not extrapolated before the first sample, where the
        // counter was 0 (its "duration to zero"), nor after the last, on the range's end.
        assert!((r - 50.0 / 60.0).abs() < 1e-12, "{r}");
        let inc = extrapolated(&pts, 0, 60_000, true, false).unwrap();
        assert!((inc - 50.0).abs() < 1e-12, "{inc}");
        // A gauge starting at 10 over [0, 60 s] sampled 10–60 s: extrapolated by the 10 s
        // before its first sample (under 1.1 × the 10 s spacing).
        let g: Vec<(i64, f64)> = (0..6)
            .map(|i| (10_000 + i * 10_000, 10.0 + i as f64))
            .collect();
        assert!((extrapolated(&g, 0, 60_000, false, false).unwrap() - 6.0).abs() < 1e-12);
        let reset = [(0, 5.0), (10_000, 8.0), (20_000, 2.0)];
        // 3 + 8 (the reset) + 2 … = 11 − … : last − first + 8 = 5.
        assert_eq!(extrapolated(&reset, 0, 20_000, true, false), Some(5.0));
        assert_eq!(extrapolated(&pts[..1], 0, 60_000, true, true), None);
    }

    #[test]
    fn over_time_and_quantiles() {
        let pts = [(0, 1.0), (1, 3.0), (2, 2.0), (3, 10.0)];
        let over = |name, q| RangeFn::by_name(name).unwrap().apply(&pts, 0, 3, q);
        assert_eq!(over("avg_over_time", None), Some(4.0));
        assert_eq!(over("max_over_time", None), Some(10.0));
        assert_eq!(over("count_over_time", None), Some(4.0));
        assert_eq!(over("quantile_over_time", Some(0.5)), Some(2.5));
        assert_eq!(irate(&[(0, 5.0), (2_000, 9.0)]), Some(2.0));
        assert_eq!(quantile(1.5, vec![1.0]), f64::INFINITY);
    }
}
