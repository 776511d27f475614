//! Exec: runs a `Plan` over one metric by merging its segments (from `store`) with its
//! journal tail (from `memtable`) into one ordered, de-duplicated stream — the tail wins on
//! equal timestamps, being newer — and feeding it to a sink (raw points or buckets).
//!
//! The fast path: a segment block that lies wholly inside the range and inside one bucket,
//! and that no tail sample overlaps, is folded from its checksummed summary in the segment
//! header without being decoded; only blocks that a bucket boundary cuts are decoded.
//! Reads only; never writes to the store or the memtable.

use super::agg::{Accumulator, Agg, Bucketing};
use super::plan::{Filter, Mode, Plan};
use crate::memtable::Memtable;
use crate::segment::{self, Columns, Summary};
use crate::store::{self, Store, StoreError};

/// One raw sample of a result.
#[derive(Clone, Debug, PartialEq)]
pub struct RawPoint {
    pub timestamp_ms: i64,
    pub value: f64,
    pub metadata: Option<Box<str>>,
}

impl RawPoint {
    fn new(timestamp_ms: i64, value: f64, metadata: Option<&str>) -> RawPoint {
        RawPoint {
            timestamp_ms,
            value,
            metadata: metadata.map(Into::into),
        }
    }
}

/// What a plan produced for one metric.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesResult {
    /// Oldest first; `truncated` when `limit` cut it (ask again from the last timestamp + 1).
    Raw {
        points: Vec<RawPoint>,
        truncated: bool,
    },
    /// (bucket start, value) for each non-empty bucket, oldest first.
    Buckets(Vec<(i64, f64)>),
}

/// Counters a caller may log or a test may assert on: how much was answered from summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Whole segments folded from their own summary (their blocks are not counted below).
    pub segments_summarized: u64,
    pub blocks_summarized: u64,
    pub blocks_decoded: u64,
}

/// Runs `plan` over `project`/`metric`. The caller has already waited for the journal's
/// applier, so every acknowledged write is in the memtable or the store.
pub fn run(
    store: &Store,
    memtable: &Memtable,
    project: &str,
    metric: &str,
    plan: &Plan,
) -> Result<(SeriesResult, ScanStats), StoreError> {
    let matcher = Matcher::new(&plan.filters);
    match plan.mode {
        Mode::Raw { limit } => {
            let mut sink = RawSink {
                limit,
                points: Vec::with_capacity(limit.min(4096) + 1),
                matcher,
            };
            let stats = scan(store, memtable, project, metric, plan, &mut sink)?;
            let truncated = sink.points.len() > limit;
            sink.points.truncate(limit);
            Ok((
                SeriesResult::Raw {
                    points: sink.points,
                    truncated,
                },
                stats,
            ))
        }
        Mode::Aggregate { agg, bucketing } => {
            let mut sink = AggSink {
                agg,
                bucketing,
                current: None,
                acc: Accumulator::new(agg),
                out: Vec::new(),
                matcher,
            };
            let stats = scan(store, memtable, project, metric, plan, &mut sink)?;
            sink.flush();
            Ok((SeriesResult::Buckets(sink.out), stats))
        }
    }
}

/// Runs a raw plan and hands the points to `on_chunk` in chunks of up to `chunk_len`,
/// oldest first, ignoring the plan's limit: memory stays at one chunk whatever the range.
/// `on_chunk` returns false to stop (the client went away).
pub fn run_chunked(
    store: &Store,
    memtable: &Memtable,
    project: &str,
    metric: &str,
    plan: &Plan,
    chunk_len: usize,
    on_chunk: &mut dyn FnMut(&[RawPoint]) -> bool,
) -> Result<ScanStats, StoreError> {
    let mut sink = ChunkSink {
        chunk_len,
        points: Vec::with_capacity(chunk_len),
        matcher: Matcher::new(&plan.filters),
        on_chunk,
        stopped: false,
    };
    let stats = scan(store, memtable, project, metric, plan, &mut sink)?;
    if !sink.stopped && !sink.points.is_empty() {
        (sink.on_chunk)(&sink.points);
    }
    Ok(stats)
}

struct ChunkSink<'f> {
    chunk_len: usize,
    points: Vec<RawPoint>,
    matcher: Matcher,
    on_chunk: &'f mut dyn FnMut(&[RawPoint]) -> bool,
    stopped: bool,
}

impl Sink for ChunkSink<'_> {
    fn sample(&mut self, ts: i64, value: f64, metadata: Option<&str>) -> bool {
        if self.matcher.matches(metadata) {
            self.points.push(RawPoint::new(ts, value, metadata));
            if self.points.len() >= self.chunk_len {
                if !(self.on_chunk)(&self.points) {
                    self.stopped = true;
                    return false;
                }
                self.points.clear();
            }
        }
        true
    }
    fn wants_metadata(&self) -> bool {
        true
    }
}

/// Appends the metric's (timestamp, value) pairs in `[from, to]`, oldest first, to `out`:
/// what PromQL evaluates. No metadata is decoded and nothing is allocated per sample; a
/// block's run is copied in one go.
pub fn run_pairs(
    store: &Store,
    memtable: &Memtable,
    project: &str,
    metric: &str,
    from: i64,
    to: i64,
    out: &mut Vec<(i64, f64)>,
) -> Result<ScanStats, StoreError> {
    let plan = Plan::raw(from, to);
    scan(store, memtable, project, metric, &plan, &mut PairSink(out))
}

struct PairSink<'a>(&'a mut Vec<(i64, f64)>);

impl Sink for PairSink<'_> {
    fn sample(&mut self, ts: i64, value: f64, _: Option<&str>) -> bool {
        self.0.push((ts, value));
        true
    }
    fn run(&mut self, ts: &[i64], values: &[f64], _: &[Option<Box<str>>]) -> bool {
        self.0
            .extend(ts.iter().copied().zip(values.iter().copied()));
        true
    }
    fn wants_metadata(&self) -> bool {
        false
    }
}

/// Receives the merged stream.
trait Sink {
    /// Offered a whole block inside the range that no tail sample overlaps. Returns true if
    /// it folded the summary (its samples are then not fed one by one).
    fn whole_block(&mut self, _summary: &Summary) -> bool {
        false
    }
    /// Whether `whole_block` would fold a summary spanning `min_ts..=max_ts` (asked before
    /// a segment's checksum is verified, so that work is done only when it pays).
    fn would_fold(&self, _min_ts: i64, _max_ts: i64) -> bool {
        false
    }
    /// One sample; returns false to stop the scan.
    fn sample(&mut self, ts: i64, value: f64, metadata: Option<&str>) -> bool;
    /// A run of samples in order, none overwritten; `metadata` is empty or parallel.
    /// Returns false to stop the scan.
    fn run(&mut self, ts: &[i64], values: &[f64], metadata: &[Option<Box<str>>]) -> bool {
        for i in 0..ts.len() {
            let meta = metadata.get(i).and_then(|m| m.as_deref());
            if !self.sample(ts[i], values[i], meta) {
                return false;
            }
        }
        true
    }
    fn wants_metadata(&self) -> bool;
}

/// Feeds the tail samples from `*t` on that come before `ts` to `sink`; false if it stopped.
fn feed_tail_before(
    tail: &[(i64, crate::memtable::Point)],
    t: &mut usize,
    ts: i64,
    sink: &mut dyn Sink,
) -> bool {
    while *t < tail.len() && tail[*t].0 < ts {
        let (at, p) = &tail[*t];
        *t += 1;
        if !sink.sample(*at, p.value, p.metadata.as_deref()) {
            return false;
        }
    }
    true
}

fn scan(
    store: &Store,
    memtable: &Memtable,
    project: &str,
    metric: &str,
    plan: &Plan,
    sink: &mut dyn Sink,
) -> Result<ScanStats, StoreError> {
    let (from, to) = (plan.from_ms, plan.to_ms);
    // Memtable first, then segments: a compaction finishing in between has committed its
    // segments before it drops the memtable copy, so every sample is seen at least once, and
    // the merge below sees it at most once.
    let tail: Vec<_> = memtable
        .read(project, metric, from, to)
        .into_iter()
        .collect();
    let mut t = 0usize;
    let mut stats = ScanStats::default();
    let mut cols = Columns::default();
    let with_metadata = sink.wants_metadata();
    let mut stopped = false;
    store.scan_segments::<StoreError>(project, metric, from, to, &mut |start, bytes| {
        let bad = |e| store::corrupt(project, metric, start, e);
        let seg = segment::read_summary(bytes).map_err(bad)?;
        if seg.max_ts < from {
            return Ok(true);
        }
        if seg.min_ts >= from && seg.max_ts <= to && sink.would_fold(seg.min_ts, seg.max_ts) {
            if !feed_tail_before(&tail, &mut t, seg.min_ts, sink) {
                stopped = true;
                return Ok(false);
            }
            let overlapped = t < tail.len() && tail[t].0 <= seg.max_ts;
            if !overlapped {
                if let Some(checked) = segment::checked_summary(bytes).map_err(bad)? {
                    if sink.whole_block(&checked) {
                        stats.segments_summarized += 1;
                        return Ok(true);
                    }
                }
            }
        }
        for block in segment::blocks(bytes).map_err(bad)? {
            let b = &block.summary;
            if b.max_ts < from {
                continue;
            }
            if b.min_ts > to {
                return Ok(false);
            }
            if !feed_tail_before(&tail, &mut t, b.min_ts, sink) {
                stopped = true;
                return Ok(false);
            }
            let overlapped = t < tail.len() && tail[t].0 <= b.max_ts;
            if !overlapped && b.min_ts >= from && b.max_ts <= to && sink.whole_block(b) {
                stats.blocks_summarized += 1;
                continue;
            }
            stats.blocks_decoded += 1;
            segment::decode_block(bytes, &block, &mut cols, with_metadata).map_err(bad)?;
            let lo = cols.timestamps.partition_point(|ts| *ts < from);
            let hi = cols.timestamps.partition_point(|ts| *ts <= to);
            if !overlapped {
                let meta = if cols.metadata.is_empty() {
                    &[][..]
                } else {
                    &cols.metadata[lo..hi]
                };
                if !sink.run(&cols.timestamps[lo..hi], &cols.values[lo..hi], meta) {
                    stopped = true;
                    return Ok(false);
                }
                continue;
            }
            for i in lo..hi {
                let ts = cols.timestamps[i];
                // Tail samples up to `ts` go first; one at exactly `ts` replaces the block's.
                let mut replaced = false;
                while t < tail.len() && tail[t].0 <= ts {
                    let (tts, p) = &tail[t];
                    t += 1;
                    replaced = *tts == ts;
                    if !sink.sample(*tts, p.value, p.metadata.as_deref()) {
                        stopped = true;
                        return Ok(false);
                    }
                }
                if replaced {
                    continue;
                }
                let meta = cols.metadata.get(i).and_then(|m| m.as_deref());
                if !sink.sample(ts, cols.values[i], meta) {
                    stopped = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    })?;
    if !stopped {
        for (ts, p) in &tail[t..] {
            if !sink.sample(*ts, p.value, p.metadata.as_deref()) {
                break;
            }
        }
    }
    Ok(stats)
}

struct RawSink {
    limit: usize,
    points: Vec<RawPoint>,
    matcher: Matcher,
}

impl Sink for RawSink {
    fn sample(&mut self, ts: i64, value: f64, metadata: Option<&str>) -> bool {
        if self.matcher.matches(metadata) {
            self.points.push(RawPoint::new(ts, value, metadata));
        }
        // One more than the limit tells the caller the answer was cut.
        self.points.len() <= self.limit
    }
    fn wants_metadata(&self) -> bool {
        true
    }
}

struct AggSink {
    agg: Agg,
    bucketing: Bucketing,
    current: Option<i64>,
    acc: Accumulator,
    out: Vec<(i64, f64)>,
    matcher: Matcher,
}

impl AggSink {
    fn enter(&mut self, bucket: i64) {
        if self.current != Some(bucket) {
            self.flush();
            self.current = Some(bucket);
        }
    }
    fn flush(&mut self) {
        if let Some(b) = self.current.take() {
            if let Some(v) = self.acc.finish(self.agg) {
                self.out.push((b, v));
            }
            self.acc = Accumulator::new(self.agg);
        }
    }
}

impl Sink for AggSink {
    fn would_fold(&self, min_ts: i64, max_ts: i64) -> bool {
        self.agg.summary_suffices()
            && self.matcher.is_empty()
            && self.bucketing.bucket_of(min_ts) == self.bucketing.bucket_of(max_ts)
    }
    fn whole_block(&mut self, s: &Summary) -> bool {
        if !self.would_fold(s.min_ts, s.max_ts) {
            return false;
        }
        self.enter(self.bucketing.bucket_of(s.min_ts));
        self.acc.add_summary(s);
        true
    }
    fn sample(&mut self, ts: i64, value: f64, metadata: Option<&str>) -> bool {
        if self.matcher.matches(metadata) {
            self.enter(self.bucketing.bucket_of(ts));
            self.acc.add(value);
        }
        true
    }
    fn run(&mut self, ts: &[i64], values: &[f64], metadata: &[Option<Box<str>>]) -> bool {
        if !self.matcher.is_empty() {
            for i in 0..ts.len() {
                self.sample(ts[i], values[i], metadata.get(i).and_then(|m| m.as_deref()));
            }
            return true;
        }
        // One division per bucket, not per sample.
        let mut i = 0;
        while i < ts.len() {
            let bucket = self.bucketing.bucket_of(ts[i]);
            let end = self.bucketing.bucket_end(bucket);
            self.enter(bucket);
            let n = ts[i..].partition_point(|t| *t < end);
            self.acc.add_all(&values[i..i + n]);
            i += n;
        }
        true
    }
    fn wants_metadata(&self) -> bool {
        !self.matcher.is_empty()
    }
}

/// Evaluates `where` filters, remembering the last metadata text it parsed: consecutive
/// samples usually carry the same metadata.
struct Matcher {
    filters: Vec<Filter>,
    last: Option<(Box<str>, bool)>,
}

impl Matcher {
    fn new(filters: &[Filter]) -> Matcher {
        Matcher {
            filters: filters.to_vec(),
            last: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    fn matches(&mut self, metadata: Option<&str>) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let Some(text) = metadata else {
            return false;
        };
        if let Some((last, hit)) = &self.last {
            if **last == *text {
                return *hit;
            }
        }
        let hit = match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
            Ok(obj) => self.filters.iter().all(|f| match obj.get(&f.key) {
                Some(serde_json::Value::String(s)) => *s == f.value,
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    format!("{v}") == f.value
                }
                Some(serde_json::Value::Null) => f.value == "null",
                _ => false,
            }),
            Err(_) => false,
        };
        self.last = Some((text.into(), hit));
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_compares_strings_numbers_and_booleans_by_text() {
        let f = |k: &str, v: &str| Filter {
            key: k.into(),
            value: v.into(),
        };
        let mut m = Matcher::new(&[f("region", "eu"), f("code", "200")]);
        assert!(m.matches(Some(r#"{"region":"eu","code":200}"#)));
        assert!(m.matches(Some(r#"{"region":"eu","code":"200"}"#)));
        assert!(!m.matches(Some(r#"{"region":"us","code":200}"#)));
        assert!(!m.matches(Some(r#"{"region":"eu"}"#)));
        assert!(!m.matches(None));
        let mut m = Matcher::new(&[f("ok", "true")]);
        assert!(m.matches(Some(r#"{"ok":true}"#)));
        assert!(!m.matches(Some(r#"{"ok":{"nested":true}}"#)));
        assert!(Matcher::new(&[]).matches(None));
    }
}
