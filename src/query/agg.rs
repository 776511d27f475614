//! Aggregation: folds an ordered stream of samples (and whole-segment summaries) into one
//! value per bucket. Pure: no I/O, no clock, so property tests compare it with a naive
//! reference directly.

use crate::segment::Summary;

/// What one bucket reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    First,
    Last,
    /// A quantile in `[0, 1]` (`p50` is 0.5), linearly interpolated between the two nearest
    /// ranks — the same definition as numpy's default and Prometheus' `quantile_over_time`.
    Quantile(f64),
}

impl Agg {
    pub fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "avg" | "mean" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "sum" => Agg::Sum,
            "count" => Agg::Count,
            "first" => Agg::First,
            "last" => Agg::Last,
            "p50" | "median" => Agg::Quantile(0.5),
            "p90" => Agg::Quantile(0.9),
            "p95" => Agg::Quantile(0.95),
            "p99" => Agg::Quantile(0.99),
            _ => return None,
        })
    }

    /// The name used in responses.
    pub fn name(&self) -> String {
        match self {
            Agg::Avg => "avg".into(),
            Agg::Min => "min".into(),
            Agg::Max => "max".into(),
            Agg::Sum => "sum".into(),
            Agg::Count => "count".into(),
            Agg::First => "first".into(),
            Agg::Last => "last".into(),
            Agg::Quantile(q) => format!("p{}", (q * 100.0).round() as u32),
        }
    }

    /// Whether a segment summary carries enough to fold a whole segment without decoding
    /// it. Quantiles need every value.
    pub fn summary_suffices(&self) -> bool {
        !matches!(self, Agg::Quantile(_))
    }
}

/// Running state of one bucket. Samples must arrive in timestamp order, so `first` is the
/// first one seen and `last` the latest.
#[derive(Clone, Debug)]
pub struct Accumulator {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    /// Every value, kept only for quantiles.
    values: Option<Vec<f64>>,
}

impl Accumulator {
    pub fn new(agg: Agg) -> Accumulator {
        Accumulator {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first: 0.0,
            last: 0.0,
            values: matches!(agg, Agg::Quantile(_)).then(Vec::new),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn add(&mut self, value: f64) {
        if self.count == 0 {
            self.first = value;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
        if let Some(v) = &mut self.values {
            v.push(value);
        }
    }

    /// `add` for each of `values`, in one pass the compiler can keep in registers.
    pub fn add_all(&mut self, values: &[f64]) {
        let (Some(&first), Some(&last)) = (values.first(), values.last()) else {
            return;
        };
        if self.count == 0 {
            self.first = first;
        }
        let (mut sum, mut min, mut max) = (0.0, self.min, self.max);
        for &v in values {
            sum += v;
            min = if v < min { v } else { min };
            max = if v > max { v } else { max };
        }
        self.count += values.len() as u64;
        self.sum += sum;
        self.min = min;
        self.max = max;
        self.last = last;
        if let Some(v) = &mut self.values {
            v.extend_from_slice(values);
        }
    }

    /// Folds a whole block in from its summary. Only valid when `Agg::summary_suffices` and
    /// the block's samples all belong to this bucket, after everything earlier and before
    /// anything later.
    pub fn add_summary(&mut self, s: &Summary) {
        debug_assert!(self.values.is_none(), "BUG: quantiles need every value");
        if s.count == 0 {
            return;
        }
        if self.count == 0 {
            self.first = s.first;
        }
        self.count += u64::from(s.count);
        self.sum += s.sum;
        self.min = self.min.min(s.min);
        self.max = self.max.max(s.max);
        self.last = s.last;
    }

    /// The bucket's value; `None` when it saw no sample.
    pub fn finish(&mut self, agg: Agg) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(match agg {
            Agg::Avg => self.sum / self.count as f64,
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Sum => self.sum,
            Agg::Count => self.count as f64,
            Agg::First => self.first,
            Agg::Last => self.last,
            Agg::Quantile(q) => {
                let v = self
                    .values
                    .as_mut()
                    .expect("BUG: a quantile accumulator keeps its values");
                quantile(v, q)
            }
        })
    }
}

/// Linear interpolation between closest ranks over a non-empty slice (reordered in place).
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    debug_assert!(!values.is_empty());
    let rank = q * (values.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (_, lo_v, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_v = *lo_v;
    if hi == lo {
        return lo_v;
    }
    // The next rank is the smallest value above position `lo`.
    let hi_v = above.iter().copied().fold(f64::INFINITY, f64::min);
    lo_v + (hi_v - lo_v) * (rank - lo as f64)
}

/// How samples map to buckets: fixed steps aligned to multiples of `step_ms` since the epoch,
/// or one bucket for the whole range (keyed by its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucketing {
    Step(i64),
    Whole { from_ms: i64 },
}

impl Bucketing {
    /// The timestamp that names the bucket holding `ts`.
    pub fn bucket_of(&self, ts: i64) -> i64 {
        match *self {
            Bucketing::Step(step) => ts.div_euclid(step) * step,
            Bucketing::Whole { from_ms } => from_ms,
        }
    }

    /// The first timestamp after the bucket named `bucket` (exclusive end).
    pub fn bucket_end(&self, bucket: i64) -> i64 {
        match *self {
            Bucketing::Step(step) => bucket.saturating_add(step),
            Bucketing::Whole { .. } => i64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(agg: Agg, values: &[f64]) -> Option<f64> {
        let mut a = Accumulator::new(agg);
        for v in values {
            a.add(*v);
        }
        a.finish(agg)
    }

    #[test]
    fn each_aggregation_on_a_small_series() {
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        let check = |agg, want: f64| assert_eq!(run(agg, &v), Some(want), "{agg:?}");
        check(Agg::Avg, 2.8);
        check(Agg::Min, 1.0);
        check(Agg::Max, 5.0);
        check(Agg::Sum, 14.0);
        check(Agg::Count, 5.0);
        check(Agg::First, 3.0);
        check(Agg::Last, 5.0);
        check(Agg::Quantile(0.5), 3.0);
        // ranks 0..4, q=0.9 → rank 3.6 between 4 and 5.
        check(Agg::Quantile(0.9), 4.6);
        assert_eq!(run(Agg::Avg, &[]), None);
    }

    #[test]
    fn quantile_interpolates_and_handles_one_value() {
        assert_eq!(quantile(&mut [7.0], 0.99), 7.0);
        assert_eq!(quantile(&mut [1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&mut [4.0, 1.0, 3.0, 2.0], 0.0), 1.0);
        assert_eq!(quantile(&mut [4.0, 1.0, 3.0, 2.0], 1.0), 4.0);
    }

    #[test]
    fn summary_folds_like_its_samples() {
        let s = Summary {
            count: 3,
            min_ts: 10,
            max_ts: 30,
            min: -1.0,
            max: 9.0,
            sum: 10.0,
            first: 2.0,
            last: 9.0,
        };
        let mut a = Accumulator::new(Agg::Sum);
        a.add_all(&[5.0]);
        a.add_summary(&s);
        assert_eq!(a.clone().finish(Agg::Sum), Some(15.0));
        assert_eq!(a.clone().finish(Agg::First), Some(5.0));
        assert_eq!(a.clone().finish(Agg::Last), Some(9.0));
        assert_eq!(a.clone().finish(Agg::Min), Some(-1.0));
        assert_eq!(a.finish(Agg::Count), Some(4.0));
    }

    #[test]
    fn buckets_align_to_multiples_of_the_step_including_before_1970() {
        let b = Bucketing::Step(60_000);
        assert_eq!(b.bucket_of(0), 0);
        assert_eq!(b.bucket_of(59_999), 0);
        assert_eq!(b.bucket_of(60_000), 60_000);
        assert_eq!(b.bucket_of(-1), -60_000);
        assert_eq!(Bucketing::Whole { from_ms: 5 }.bucket_of(1_000), 5);
    }

    proptest::proptest! {
        /// Folding runs of samples, some through `add_all` and some through their summary (as
        /// a query folds whole blocks), gives what the obvious definition gives.
        #[test]
        fn folding_by_parts_matches_the_definition(
            values in proptest::collection::vec(-1e6f64..1e6, 1..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
            by_summary in proptest::collection::vec(proptest::bool::ANY, 7),
        ) {
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % values.len()).collect();
            bounds.extend([0, values.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            for agg in [Agg::Avg, Agg::Min, Agg::Max, Agg::Sum, Agg::Count, Agg::First, Agg::Last] {
                let mut acc = Accumulator::new(agg);
                for (i, w) in bounds.windows(2).enumerate() {
                    let part = &values[w[0]..w[1]];
                    if by_summary[i % by_summary.len()] {
                        acc.add_summary(&Summary {
                            count: part.len() as u32,
                            min_ts: 0,
                            max_ts: 0,
                            min: part.iter().copied().fold(f64::INFINITY, f64::min),
                            max: part.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            sum: part.iter().sum(),
                            first: part[0],
                            last: part[part.len() - 1],
                        });
                    } else {
                        acc.add_all(part);
                    }
                }
                let n = values.len() as f64;
                let sum: f64 = values.iter().sum();
                let want = match agg {
                    Agg::Avg => sum / n,
                    Agg::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
                    Agg::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Agg::Sum => sum,
                    Agg::Count => n,
                    Agg::First => values[0],
                    Agg::Last => values[values.len() - 1],
                    Agg::Quantile(_) => unreachable!(),
                };
                let got = acc.finish(agg).unwrap();
                // Sums regroup, so allow rounding; everything else is exact.
                proptest::prop_assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{agg:?}: {got} vs {want}");
            }
        }

        #[test]
        fn quantiles_match_sorting(
            values in proptest::collection::vec(-1e6f64..1e6, 1..200),
            q in 0.0f64..=1.0,
        ) {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let want = sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64);
            let got = quantile(&mut values.clone(), q);
            proptest::prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0));
        }
    }

    #[test]
    fn agg_names_round_trip() {
        for name in [
            "avg", "min", "max", "sum", "count", "first", "last", "p50", "p90", "p95", "p99",
        ] {
            assert_eq!(Agg::parse(name).map(|a| a.name()), Some(name.to_string()));
        }
        assert_eq!(Agg::parse("p42"), None);
    }
}
