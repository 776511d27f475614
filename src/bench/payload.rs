//! What `stathook bench` sends: deterministic series (counters, 2-decimal gauges,
//! constants) written as the webhook's JSON or as Influx line protocol, so a peer
//! (VictoriaMetrics, InfluxDB) can be fed the very same samples. Values are kept as scaled
//! integers and written as decimal text with their fixed decimals (`50.00`), as users send
//! them. Pure: no I/O, no clock.

use bytes::Bytes;
use std::fmt::Write as _;

/// Spacing of each series' samples.
pub const SAMPLE_SPACING_MS: i64 = 10_000;

/// The series' shapes. Every random choice is uniform, so a dataset's information — the
/// floor no lossless encoding can beat — is the sum of log2(choices) over its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// A third each: counters growing by 0–5, gauges moving by ±1.00 in cents, constants;
    /// readable names (`Series 7`) and units (`count`, `ms`).
    Mix,
    /// A third each: counters growing by 0–5, gauges moving by −0.01, 0 or +0.01, constants
    /// (`benches/compare.sh`'s quiet workload; names are the ids, no unit).
    Quiet,
    /// Gauges moving by −0.20…+0.20, 41 equally likely steps (compare.sh's noisy workload).
    Noisy,
    /// The spec's shape, what benches/compare.sh sends by default: `mix`'s series, each at
    /// its own millisecond phase within the 10 s spacing, so every sample of a request has
    /// its own timestamp.
    Spec,
}

/// A series' offset from the dataset's shared timestamps: none, or for `Spec` its own
/// millisecond within the spacing (7,919 is prime: 10,000 series get 10,000 phases).
fn phase_ms(dataset: Dataset, series: usize) -> i64 {
    match dataset {
        Dataset::Spec => (series as i64 * 7_919) % SAMPLE_SPACING_MS,
        _ => 0,
    }
}

/// How the samples are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The webhook's JSON to `/api/webhooks/custom`.
    Webhook,
    /// Influx line protocol (`metric,id=s7 value=50.00 TS`, ms precision) to
    /// `/write?db=DB&precision=ms`, as VictoriaMetrics and InfluxDB take it.
    Influx,
    /// Prometheus remote write 1.0 (the series `metric_value{id="s7"}`, the name line
    /// protocol's `metric,id=s7 value=` gets) to `/api/v1/write`, as stathook,
    /// VictoriaMetrics and Prometheus take it.
    RemoteWrite,
}

/// One series' start value, step choices (in units of its last decimal) and decimals.
#[derive(Clone, Copy, Debug)]
struct Shape {
    start: i64,
    steps: &'static [i64],
    decimals: u32,
    unit: Option<&'static str>,
}

const COUNTER_STEPS: &[i64] = &[0, 1, 2, 3, 4, 5];
const QUIET_GAUGE_STEPS: &[i64] = &[-1, 0, 1];
const CONSTANT_STEPS: &[i64] = &[0];
/// −20…+20 hundredths.
const NOISY_STEPS: &[i64] = &symmetric_steps::<41>();
/// −100…+100 hundredths (±1.00).
const MIX_GAUGE_STEPS: &[i64] = &symmetric_steps::<201>();

/// −(N−1)/2 … +(N−1)/2, each once.
const fn symmetric_steps<const N: usize>() -> [i64; N] {
    let mut s = [0i64; N];
    let mut i = 0;
    while i < N {
        s[i] = i as i64 - (N as i64 - 1) / 2;
        i += 1;
    }
    s
}

fn shape(dataset: Dataset, series: usize) -> Shape {
    let i = series as i64;
    let (start, steps, decimals, unit) = match (dataset, series % 3) {
        (Dataset::Noisy, _) => (5_000 + i, NOISY_STEPS, 2, None),
        (Dataset::Quiet, 0) => (1_000 * i, COUNTER_STEPS, 0, None),
        (Dataset::Quiet, 1) => (5_000 + i, QUIET_GAUGE_STEPS, 2, None),
        (Dataset::Quiet, _) => (i, CONSTANT_STEPS, 0, None),
        (Dataset::Mix | Dataset::Spec, 0) => (0, COUNTER_STEPS, 0, Some("count")),
        (Dataset::Mix | Dataset::Spec, 1) => (5_000, MIX_GAUGE_STEPS, 2, Some("ms")),
        (Dataset::Mix | Dataset::Spec, _) => (i % 10, CONSTANT_STEPS, 0, None),
    };
    Shape {
        start,
        steps,
        decimals,
        unit,
    }
}

/// xorshift64*: deterministic, fast, good enough for picking steps (and, in tests, the
/// simulated power loss's cuts: `journal::sim`).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// Uniform enough in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n as u64) as usize
    }
}

/// One series as it moves: its index (the metricId is `s{index}`), shape, current value
/// (scaled by 10^decimals) and next timestamp.
pub struct Series {
    pub index: usize,
    shape: Shape,
    pub scaled: i64,
    pub next_ts: i64,
}

impl Series {
    pub fn new(dataset: Dataset, index: usize, first_ts: i64) -> Series {
        let shape = shape(dataset, index);
        Series {
            index,
            shape,
            scaled: shape.start,
            next_ts: first_ts + phase_ms(dataset, index),
        }
    }

    /// Moves the value by one random step (a constant draws too, so every dataset consumes
    /// the generator alike).
    pub fn step(&mut self, rng: &mut Rng) {
        self.scaled += self.shape.steps[rng.below(self.shape.steps.len())];
    }

    pub fn decimals(&self) -> u32 {
        self.shape.decimals
    }

    /// Bits of information in one step of this series.
    fn bits_per_step(&self) -> f64 {
        (self.shape.steps.len() as f64).log2()
    }
}

/// Writes `value` (scaled by 10^decimals) as decimal text with exactly `decimals` digits.
fn push_value(out: &mut String, scaled: i64, decimals: u32) {
    if decimals == 0 {
        let _ = write!(out, "{scaled}");
        return;
    }
    let scale = 10i64.pow(decimals);
    let sign = if scaled < 0 { "-" } else { "" };
    let a = scaled.abs();
    let _ = write!(
        out,
        "{sign}{}.{:0w$}",
        a / scale,
        a % scale,
        w = decimals as usize
    );
}

/// What every body of a run shares: its format, series shapes, project and size.
#[derive(Clone, Debug)]
pub struct Bodies {
    pub format: Format,
    pub dataset: Dataset,
    /// The webhook's `projectId` (unused by line protocol).
    pub project: String,
    /// Samples per body.
    pub batch: usize,
}

impl Bodies {
    fn writer(&self) -> BodyWriter {
        let mut out = String::with_capacity(self.batch * 110 + 64);
        if self.format == Format::Webhook {
            let project = serde_json::to_string(&self.project).expect("BUG: strings serialize");
            let _ = write!(out, "{{\"projectId\":{project},\"metrics\":[");
        }
        BodyWriter {
            format: self.format,
            dataset: self.dataset,
            out,
            samples: 0,
            remote: Default::default(),
        }
    }
}

/// One request body and the samples it holds.
pub struct Body {
    pub bytes: Bytes,
    pub samples: u64,
}

/// Builds one request body of samples in either format.
struct BodyWriter {
    format: Format,
    dataset: Dataset,
    out: String,
    samples: usize,
    /// The remote-write request being built (only for `Format::RemoteWrite`).
    remote: crate::ingest::remote_write::WriteRequest,
}

impl BodyWriter {
    /// Adds the series' current value at its `next_ts`.
    fn push(&mut self, s: &Series) {
        let (i, ts) = (s.index, s.next_ts);
        match self.format {
            Format::Webhook => {
                if self.samples > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{{\"metricId\":\"s{i}\",\"metricName\":");
                match self.dataset {
                    Dataset::Mix | Dataset::Spec => {
                        let _ = write!(self.out, "\"Series {i}\"");
                    }
                    Dataset::Quiet | Dataset::Noisy => {
                        let _ = write!(self.out, "\"s{i}\"");
                    }
                }
                self.out.push_str(",\"value\":");
                push_value(&mut self.out, s.scaled, s.decimals());
                if let Some(unit) = s.shape.unit {
                    let _ = write!(self.out, ",\"unit\":\"{unit}\"");
                }
                let _ = write!(self.out, ",\"timestamp\":{ts}}}");
            }
            Format::Influx => {
                let _ = write!(self.out, "metric,id=s{i} value=");
                push_value(&mut self.out, s.scaled, s.decimals());
                let _ = writeln!(self.out, " {ts}");
            }
            Format::RemoteWrite => {
                // The value as the text formats write it, read back: the same f64.
                self.out.clear();
                push_value(&mut self.out, s.scaled, s.decimals());
                let value: f64 = self.out.parse().expect("BUG: a decimal parses");
                let id = format!("s{i}");
                self.remote
                    .timeseries
                    .push(crate::ingest::remote_write::TimeSeries::new(
                        &[("__name__", "metric_value"), ("id", &id)],
                        &[(ts, value)],
                    ));
            }
        }
        self.samples += 1;
    }

    fn finish(mut self) -> Body {
        let bytes = match self.format {
            Format::Webhook => {
                self.out.push_str("]}");
                Bytes::from(self.out)
            }
            Format::Influx => Bytes::from(self.out),
            Format::RemoteWrite => Bytes::from(crate::ingest::remote_write::encode(&self.remote)),
        };
        Body {
            bytes,
            samples: self.samples as u64,
        }
    }
}

/// A fixed dataset: `series × points` samples, one point per series every 10 s, the last
/// an hour before `now_ms` (rounded to a whole step, so every system buckets it alike).
pub struct FixedDataset {
    /// Request bodies of `batch` samples each, time-major (all series' point 0, then 1, …).
    pub bodies: Vec<Body>,
    pub first_ts: i64,
    pub last_ts: i64,
    /// The information in the samples, in bytes per sample (timestamps are regular and
    /// cost nothing; the first value of each series is not counted).
    pub floor_bytes_per_sample: f64,
}

pub fn fixed_dataset(spec: &Bodies, series: usize, points: usize, now_ms: i64) -> FixedDataset {
    let (dataset, batch) = (spec.dataset, spec.batch);
    let last_ts = (now_ms - 3_600_000) / SAMPLE_SPACING_MS * SAMPLE_SPACING_MS;
    let first_ts = last_ts - (points as i64 - 1) * SAMPLE_SPACING_MS;
    let mut all: Vec<Series> = (0..series)
        .map(|i| Series::new(dataset, i, first_ts))
        .collect();
    let floor_bits: f64 = all
        .iter()
        .map(|s| s.bits_per_step() * (points as f64 - 1.0))
        .sum();
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut bodies = Vec::with_capacity((series * points).div_ceil(batch));
    let mut body = spec.writer();
    for p in 0..points {
        for s in all.iter_mut() {
            if p > 0 {
                s.step(&mut rng);
                s.next_ts += SAMPLE_SPACING_MS;
            }
            body.push(s);
            if body.samples == batch {
                let full = std::mem::replace(&mut body, spec.writer());
                bodies.push(full.finish());
            }
        }
    }
    if body.samples > 0 {
        bodies.push(body.finish());
    }
    // The latest phase: the last sample's timestamp.
    let last_ts = last_ts + (0..series).map(|i| phase_ms(dataset, i)).max().unwrap_or(0);
    FixedDataset {
        bodies,
        first_ts,
        last_ts,
        floor_bytes_per_sample: floor_bits / 8.0 / (series * points) as f64,
    }
}

/// One connection's endless share of the series, for a timed run: series `c`,
/// `c + connections`, … (each connection owns its own, so timestamps never collide across
/// connections), round-robin, each sample 10 s after that series' previous one.
pub struct TimedSource {
    spec: Bodies,
    series: Vec<Series>,
    cursor: usize,
    rng: Rng,
}

impl TimedSource {
    /// The series start far enough in the past that `duration_s` at an implausible 1 M
    /// samples/s per connection still ends before now.
    pub fn new(
        spec: Bodies,
        series: usize,
        connections: usize,
        c: usize,
        duration_s: f64,
        now_ms: i64,
    ) -> TimedSource {
        let mine: Vec<usize> = (c..series).step_by(connections).collect();
        let per_series = (duration_s * 1e6 / mine.len().max(1) as f64) as i64 + 1;
        let start = now_ms - per_series * SAMPLE_SPACING_MS;
        TimedSource {
            series: mine
                .into_iter()
                .map(|i| Series::new(spec.dataset, i, start))
                .collect(),
            spec,
            cursor: 0,
            rng: Rng::new(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1)),
        }
    }

    /// The next request body: `batch` samples, round-robin over this connection's series.
    pub fn body(&mut self) -> Body {
        let mut body = self.spec.writer();
        for _ in 0..self.spec.batch {
            let n = self.series.len();
            let s = &mut self.series[self.cursor % n];
            self.cursor += 1;
            s.step(&mut self.rng);
            body.push(s);
            s.next_ts += SAMPLE_SPACING_MS;
        }
        body.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: Format, dataset: Dataset, batch: usize) -> Bodies {
        Bodies {
            format,
            dataset,
            project: "p".into(),
            batch,
        }
    }

    #[test]
    fn symmetric_steps_are_centred() {
        assert_eq!(symmetric_steps::<3>(), [-1, 0, 1]);
        assert_eq!((NOISY_STEPS[0], NOISY_STEPS[40]), (-20, 20));
        assert_eq!((MIX_GAUGE_STEPS[0], MIX_GAUGE_STEPS[200]), (-100, 100));
    }

    #[test]
    fn values_keep_their_decimals() {
        let text = |v, d| {
            let mut s = String::new();
            push_value(&mut s, v, d);
            s
        };
        assert_eq!(text(5000, 2), "50.00");
        assert_eq!(text(-7, 2), "-0.07");
        assert_eq!(text(42, 0), "42");
    }

    #[test]
    fn timed_bodies_are_valid_requests_with_past_distinct_timestamps() {
        let now = 1_800_000_000_000;
        let mut g = TimedSource::new(spec(Format::Webhook, Dataset::Mix, 5), 7, 2, 1, 1.0, now);
        assert_eq!(g.series.len(), 3, "series 1, 3, 5");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            let body = g.body();
            assert_eq!(body.samples, 5);
            let mut body = body.bytes.to_vec();
            let batch = crate::ingest::parse_batch(&mut body, now).expect("a valid request");
            assert_eq!(batch.project_id, "p");
            assert_eq!(batch.metrics.len(), 5);
            for m in &batch.metrics {
                assert!(m.timestamp_ms < now);
                assert!(
                    seen.insert((m.metric_id.to_owned(), m.timestamp_ms)),
                    "a repeat"
                );
            }
        }
        // Counters never fall; gauges stay on cents.
        let counter = g.series.iter().find(|s| s.index == 3).unwrap();
        assert_eq!(counter.decimals(), 0);
        assert!(counter.scaled >= 0);
        let gauge = g.series.iter().find(|s| s.index == 1).unwrap();
        assert_eq!(gauge.decimals(), 2);
    }

    #[test]
    fn the_spec_dataset_gives_every_sample_of_a_request_its_own_timestamp() {
        let now = 1_800_000_000_000;
        let d = fixed_dataset(&spec(Format::Webhook, Dataset::Spec, 100), 1_000, 3, now);
        let mut body = d.bodies[0].bytes.to_vec();
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains(r#""metricName":"Series 1""#) && text.contains(r#""unit":"ms""#));
        assert!(text.contains(r#""unit":"count""#), "{text}");
        let batch = crate::ingest::parse_batch(&mut body, now).unwrap();
        let stamps: std::collections::HashSet<i64> =
            batch.metrics.iter().map(|m| m.timestamp_ms).collect();
        assert_eq!(stamps.len(), 100, "100 samples, 100 timestamps");
        let last = d.bodies.last().unwrap();
        let mut body = last.bytes.to_vec();
        let batch = crate::ingest::parse_batch(&mut body, now).unwrap();
        let latest = batch.metrics.iter().map(|m| m.timestamp_ms).max().unwrap();
        assert!(latest <= d.last_ts && d.last_ts - d.first_ts < 3 * SAMPLE_SPACING_MS);
    }

    #[test]
    fn a_fixed_dataset_is_time_major_in_full_batches_in_both_formats() {
        let now = 1_800_000_000_000;
        let d = fixed_dataset(&spec(Format::Webhook, Dataset::Quiet, 3), 5, 4, now);
        assert_eq!(d.bodies.len(), 7, "20 samples in batches of 3");
        assert_eq!(d.last_ts - d.first_ts, 3 * SAMPLE_SPACING_MS);
        let mut all = Vec::new();
        for b in &d.bodies {
            let mut body = b.bytes.to_vec();
            let batch = crate::ingest::parse_batch(&mut body, now).unwrap();
            all.extend(
                batch
                    .metrics
                    .iter()
                    .map(|m| (m.timestamp_ms, m.metric_id.to_owned())),
            );
        }
        assert_eq!(all.len(), 20);
        assert!(all.windows(2).all(|w| w[0].0 <= w[1].0), "time-major");
        // Series 0 and 3 are counters (log2 6 bits a step), 1 and 4 gauges (log2 3), 2 a
        // constant (0); 4 points are 3 steps.
        let bits = 2.0 * 6f64.log2() * 3.0 + 2.0 * 3f64.log2() * 3.0;
        assert!((d.floor_bytes_per_sample - bits / 8.0 / 20.0).abs() < 1e-12);

        let samples: Vec<u64> = d.bodies.iter().map(|b| b.samples).collect();
        assert_eq!(samples, [3, 3, 3, 3, 3, 3, 2]);
        let influx = fixed_dataset(&spec(Format::Influx, Dataset::Quiet, 3), 5, 4, now);
        let lines: Vec<String> = influx
            .bodies
            .iter()
            .flat_map(|b| {
                String::from_utf8(b.bytes.to_vec())
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(lines.len(), 20);
        // The same samples: series 1 is a 2-decimal gauge starting at 50.01.
        assert_eq!(lines[1], format!("metric,id=s1 value=50.01 {}", d.first_ts));
    }
}
