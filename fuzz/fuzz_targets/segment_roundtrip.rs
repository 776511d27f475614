//! Structure-aware: any sorted samples (regular or jittery timestamps, whole or fractional
//! values, with or without metadata) must decode to exactly what was encoded, and every
//! block's summary must describe its own samples.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stathook::segment::{self, Sample, MAX_SEGMENT_SAMPLES};

#[derive(Arbitrary, Debug)]
struct Input {
    start: i64,
    /// Gaps between timestamps (0 is skipped to keep them strictly increasing).
    gaps: Vec<u16>,
    values: Vec<Value>,
    metadata: Vec<Option<String>>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Value {
    Whole(i32),
    Float(f64),
    Big(i64),
}

fuzz_target!(|input: Input| {
    let mut ts = input.start;
    let mut samples = Vec::new();
    for (i, gap) in input.gaps.iter().take(MAX_SEGMENT_SAMPLES).enumerate() {
        if i > 0 {
            match ts.checked_add(i64::from(*gap).max(1)) {
                Some(t) => ts = t,
                None => break,
            }
        }
        let value = match input.values.get(i).copied().unwrap_or(Value::Whole(0)) {
            Value::Whole(v) => f64::from(v),
            Value::Float(v) if v.is_finite() => v,
            Value::Float(_) => 0.0,
            Value::Big(v) => v as f64,
        };
        let metadata = input.metadata.get(i).cloned().flatten().filter(|m| !m.is_empty());
        samples.push(Sample { timestamp_ms: ts, value, metadata: metadata.map(Into::into) });
    }
    if samples.is_empty() {
        return;
    }
    let bytes = segment::encode(&samples);
    assert_eq!(segment::decode(&bytes).unwrap(), samples);
    assert_eq!(segment::read_summary(&bytes).unwrap(), segment::summarize(&samples));
    let blocks = segment::blocks(&bytes).unwrap();
    let mut at = 0;
    for b in &blocks {
        let n = b.summary.count as usize;
        let part = &samples[at..at + n];
        let s = segment::summarize(part);
        assert_eq!((s.count, s.min_ts, s.max_ts, s.first, s.last), (b.summary.count, b.summary.min_ts, b.summary.max_ts, b.summary.first, b.summary.last));
        at += n;
    }
    assert_eq!(at, samples.len());
});
