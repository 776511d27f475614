//! Segment: the immutable, columnar encoding of one metric's samples over a time range.
//!
//! Owns the byte layout described in `docs/format.md` ("Segment value"). Pure: no I/O, no
//! clock, no redb — `store` decides where the bytes live, `compact` decides what goes in.
//! Columns: timestamps (delta-of-delta, zigzag varints), values (integer deltas when every
//! value is a whole number, raw f64 otherwise), metadata (length-prefixed JSON text).

mod varint;

pub use varint::{get_varint, put_varint, unzigzag, zigzag};

/// Version byte at the start of every segment value. Bump when the layout changes and keep a
/// decoder for every older version (old files must keep opening).
pub const SEGMENT_VERSION: u8 = 1;

/// Largest number of samples in one segment. 8192 samples at 10 s spacing is ~23 hours: big
/// enough that per-segment overhead (key, header, checksum) is <1% of the bytes, small enough
/// that a point read decodes ~100 KB at most.
pub const MAX_SEGMENT_SAMPLES: usize = 8192;

/// One stored sample of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
    /// Compact JSON text of the sample's `metadata` object, if it had one.
    pub metadata: Option<Box<str>>,
}

/// What a segment knows about itself without decoding its columns; kept in the header so a
/// query can answer whole-segment aggregates and prune by time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub first: f64,
    pub last: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// The version byte is newer than this build knows.
    UnknownVersion(u8),
    /// The checksum does not match the bytes: the segment is damaged.
    Checksum,
    /// The bytes end early or a field is out of range (names which field).
    Malformed(&'static str),
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentError::UnknownVersion(v) => {
                write!(
                    f,
                    "segment version {v} is newer than this stathook; upgrade stathook"
                )
            }
            SegmentError::Checksum => write!(f, "segment checksum mismatch"),
            SegmentError::Malformed(what) => write!(f, "malformed segment: {what}"),
        }
    }
}

impl std::error::Error for SegmentError {}

const TS_CODEC_DOD: u8 = 1;
const VALUE_CODEC_RAW: u8 = 0;
const VALUE_CODEC_INT_DELTA: u8 = 1;
const META_CODEC_NONE: u8 = 0;
const META_CODEC_LEN_PREFIXED: u8 = 1;
/// Integers above 2^53 are not exact in f64, so the integer codec stops there.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;
const HEADER_LEN: usize = 1 + 4 + 8 * 7;

/// Encodes samples that are sorted by strictly increasing timestamp (the caller dedups).
/// Panics on an empty slice or unsorted input: both are bugs in the caller, never input.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    assert!(!samples.is_empty(), "BUG: encoding an empty segment");
    let summary = summarize(samples);
    let mut out = Vec::with_capacity(HEADER_LEN + samples.len() * 4 + 32);
    out.push(SEGMENT_VERSION);
    out.extend_from_slice(&summary.count.to_le_bytes());
    out.extend_from_slice(&summary.min_ts.to_le_bytes());
    out.extend_from_slice(&summary.max_ts.to_le_bytes());
    for v in [
        summary.min,
        summary.max,
        summary.sum,
        summary.first,
        summary.last,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }

    let mut col = Vec::with_capacity(samples.len() * 2);
    let (mut prev_ts, mut prev_delta) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        let ts = s.timestamp_ms;
        match i {
            0 => put_varint(&mut col, zigzag(ts)),
            _ => {
                assert!(
                    ts > prev_ts,
                    "BUG: segment timestamps must strictly increase"
                );
                let delta = ts.wrapping_sub(prev_ts);
                put_varint(&mut col, zigzag(delta.wrapping_sub(prev_delta)));
                prev_delta = delta;
            }
        }
        prev_ts = ts;
    }
    push_column(&mut out, TS_CODEC_DOD, &col);

    col.clear();
    let all_int = samples
        .iter()
        .all(|s| s.value.fract() == 0.0 && s.value.abs() <= MAX_EXACT_INT);
    if all_int {
        let mut prev = 0i64;
        for s in samples {
            let v = s.value as i64;
            put_varint(&mut col, zigzag(v.wrapping_sub(prev)));
            prev = v;
        }
        push_column(&mut out, VALUE_CODEC_INT_DELTA, &col);
    } else {
        for s in samples {
            col.extend_from_slice(&s.value.to_le_bytes());
        }
        push_column(&mut out, VALUE_CODEC_RAW, &col);
    }

    col.clear();
    if samples.iter().any(|s| s.metadata.is_some()) {
        for s in samples {
            let m = s.metadata.as_deref().unwrap_or("");
            put_varint(&mut col, m.len() as u64);
            col.extend_from_slice(m.as_bytes());
        }
        push_column(&mut out, META_CODEC_LEN_PREFIXED, &col);
    } else {
        push_column(&mut out, META_CODEC_NONE, &[]);
    }

    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn push_column(out: &mut Vec<u8>, codec: u8, bytes: &[u8]) {
    out.push(codec);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Computes the header summary of sorted samples.
pub fn summarize(samples: &[Sample]) -> Summary {
    let first = &samples[0];
    let last = &samples[samples.len() - 1];
    let mut s = Summary {
        count: samples.len() as u32,
        min_ts: first.timestamp_ms,
        max_ts: last.timestamp_ms,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        first: first.value,
        last: last.value,
    };
    for x in samples {
        s.min = s.min.min(x.value);
        s.max = s.max.max(x.value);
        s.sum += x.value;
    }
    s
}

/// Reads only the header; checks the version but not the checksum (cheap pruning).
pub fn read_summary(bytes: &[u8]) -> Result<Summary, SegmentError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("version")?;
    if version != SEGMENT_VERSION {
        return Err(SegmentError::UnknownVersion(version));
    }
    Ok(Summary {
        count: r.u32("count")?,
        min_ts: r.i64("min_ts")?,
        max_ts: r.i64("max_ts")?,
        min: r.f64("min")?,
        max: r.f64("max")?,
        sum: r.f64("sum")?,
        first: r.f64("first")?,
        last: r.f64("last")?,
    })
}

/// Verifies the checksum and decodes every sample.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, SegmentError> {
    let mut cols = Columns::default();
    decode_columns(bytes, &mut cols, true)?;
    let mut meta = cols.metadata.into_iter();
    Ok(cols
        .timestamps
        .into_iter()
        .zip(cols.values)
        .map(|(timestamp_ms, value)| Sample {
            timestamp_ms,
            value,
            metadata: meta.next().flatten(),
        })
        .collect())
}

/// A decoded segment as parallel columns; buffers are reused across segments by a scan.
#[derive(Debug, Default)]
pub struct Columns {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// Empty when the caller did not ask for metadata or the segment has none.
    pub metadata: Vec<Option<Box<str>>>,
}

/// Verifies the checksum and decodes the columns into `out` (cleared first). Skips the
/// metadata column unless `with_metadata`, which is what makes aggregation cheap.
pub fn decode_columns(
    bytes: &[u8],
    out: &mut Columns,
    with_metadata: bool,
) -> Result<Summary, SegmentError> {
    out.timestamps.clear();
    out.values.clear();
    out.metadata.clear();
    verify(bytes)?;
    let summary = read_summary(bytes)?;
    let count = summary.count as usize;
    if count == 0 || count > MAX_SEGMENT_SAMPLES {
        return Err(SegmentError::Malformed("count"));
    }
    let mut r = Reader {
        bytes: &bytes[..bytes.len() - 4],
        pos: HEADER_LEN,
    };

    let (codec, ts_col) = r.column("timestamps")?;
    if codec != TS_CODEC_DOD {
        return Err(SegmentError::Malformed("timestamp codec"));
    }
    let mut c = Reader {
        bytes: ts_col,
        pos: 0,
    };
    let (mut ts, mut delta) = (0i64, 0i64);
    for i in 0..count {
        let z = unzigzag(c.varint("timestamps")?);
        if i == 0 {
            ts = z;
        } else {
            delta = delta.wrapping_add(z);
            ts = ts.wrapping_add(delta);
        }
        out.timestamps.push(ts);
    }

    let (codec, val_col) = r.column("values")?;
    let mut c = Reader {
        bytes: val_col,
        pos: 0,
    };
    match codec {
        VALUE_CODEC_RAW => {
            for _ in 0..count {
                out.values.push(c.f64("values")?);
            }
        }
        VALUE_CODEC_INT_DELTA => {
            let mut v = 0i64;
            for _ in 0..count {
                v = v.wrapping_add(unzigzag(c.varint("values")?));
                out.values.push(v as f64);
            }
        }
        _ => return Err(SegmentError::Malformed("value codec")),
    }

    let (codec, meta_col) = r.column("metadata")?;
    match codec {
        META_CODEC_NONE => {}
        META_CODEC_LEN_PREFIXED if !with_metadata => {}
        META_CODEC_LEN_PREFIXED => {
            let mut c = Reader {
                bytes: meta_col,
                pos: 0,
            };
            for _ in 0..count {
                let len = c.varint("metadata")? as usize;
                let raw = c.take(len, "metadata")?;
                out.metadata.push(if len > 0 {
                    let text = std::str::from_utf8(raw)
                        .map_err(|_| SegmentError::Malformed("metadata"))?;
                    Some(text.into())
                } else {
                    None
                });
            }
        }
        _ => return Err(SegmentError::Malformed("metadata codec")),
    }
    Ok(summary)
}

/// Whether the segment holds a sample at `ts`; decodes only the timestamp column.
pub fn contains_timestamp(bytes: &[u8], ts: i64) -> Result<bool, SegmentError> {
    let summary = read_summary(bytes)?;
    if ts < summary.min_ts || ts > summary.max_ts {
        return Ok(false);
    }
    verify(bytes)?;
    let mut r = Reader {
        bytes: &bytes[..bytes.len() - 4],
        pos: HEADER_LEN,
    };
    let (_, ts_col) = r.column("timestamps")?;
    let mut c = Reader {
        bytes: ts_col,
        pos: 0,
    };
    let (mut cur, mut delta) = (0i64, 0i64);
    for i in 0..summary.count {
        let z = unzigzag(c.varint("timestamps")?);
        if i == 0 {
            cur = z;
        } else {
            delta = delta.wrapping_add(z);
            cur = cur.wrapping_add(delta);
        }
        if cur >= ts {
            return Ok(cur == ts);
        }
    }
    Ok(false)
}

/// Checks the trailing CRC-32 over every preceding byte.
pub fn verify(bytes: &[u8]) -> Result<(), SegmentError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(SegmentError::Malformed("length"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != stored {
        return Err(SegmentError::Checksum);
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SegmentError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(SegmentError::Malformed(what))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(SegmentError::Malformed(what))?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, SegmentError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, SegmentError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, SegmentError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, SegmentError> {
        Ok(self.u64(what)? as i64)
    }
    fn f64(&mut self, what: &'static str) -> Result<f64, SegmentError> {
        Ok(f64::from_bits(self.u64(what)?))
    }
    fn varint(&mut self, what: &'static str) -> Result<u64, SegmentError> {
        let (v, used) = get_varint(&self.bytes[self.pos..]).ok_or(SegmentError::Malformed(what))?;
        self.pos += used;
        Ok(v)
    }
    fn column(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), SegmentError> {
        let codec = self.u8(what)?;
        let len = self.u32(what)? as usize;
        Ok((codec, self.take(len, what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(ts: i64, v: f64, m: Option<&str>) -> Sample {
        Sample {
            timestamp_ms: ts,
            value: v,
            metadata: m.map(Into::into),
        }
    }

    fn check(samples: Vec<Sample>) {
        let bytes = encode(&samples);
        assert_eq!(decode(&bytes).unwrap(), samples);
        let sum = read_summary(&bytes).unwrap();
        assert_eq!(sum, summarize(&samples));
    }

    #[test]
    fn round_trips_small_cases() {
        check(vec![s(0, 0.0, None)]);
        check(vec![s(1234567890000, 42.0, None)]);
        check(vec![
            s(1, 1.5, None),
            s(2, -2.25, Some("{\"a\":1}")),
            s(10, 3.0, None),
        ]);
        check(vec![s(1, -1e300, None), s(i64::MAX, 1e300, None)]);
        check(vec![
            s(5, 9_007_199_254_740_992.0, None),
            s(6, -9_007_199_254_740_992.0, None),
        ]);
    }

    #[test]
    fn integer_values_take_few_bytes() {
        let samples: Vec<Sample> = (0..1000)
            .map(|i| s(1_700_000_000_000 + i * 10_000, (i % 7) as f64, None))
            .collect();
        let bytes = encode(&samples);
        // Regular 10 s spacing: one byte per timestamp; small integer deltas: one byte each.
        assert!(
            bytes.len() < 2100 + HEADER_LEN + 40,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn finds_timestamps_without_full_decode() {
        let bytes = encode(&[s(10, 1.0, None), s(20, 2.0, None), s(35, 3.0, None)]);
        for (ts, want) in [
            (9, false),
            (10, true),
            (15, false),
            (20, true),
            (35, true),
            (36, false),
        ] {
            assert_eq!(contains_timestamp(&bytes, ts), Ok(want), "ts {ts}");
        }
    }

    #[test]
    fn detects_a_flipped_byte() {
        let bytes = encode(&[s(1, 1.0, None), s(2, 2.0, Some("{}"))]);
        for i in 0..bytes.len() {
            let mut copy = bytes.clone();
            copy[i] ^= 0x40;
            assert!(decode(&copy).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn refuses_a_newer_version() {
        let mut bytes = encode(&[s(1, 1.0, None)]);
        bytes[0] = SEGMENT_VERSION + 1;
        let n = bytes.len();
        let crc = crc32fast::hash(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode(&bytes),
            Err(SegmentError::UnknownVersion(SEGMENT_VERSION + 1))
        );
    }

    proptest! {
        #[test]
        fn round_trips_any_sorted_samples(
            mut ts in proptest::collection::btree_set(any::<i64>(), 1..300),
            vals in proptest::collection::vec(prop_oneof![any::<f64>().prop_filter("finite", |v| v.is_finite()), (-1000i64..1000).prop_map(|v| v as f64)], 300),
            metas in proptest::collection::vec(proptest::option::of("[a-z]{0,8}"), 300),
        ) {
            let samples: Vec<Sample> = std::mem::take(&mut ts).into_iter().enumerate()
                .map(|(i, t)| Sample { timestamp_ms: t, value: vals[i], metadata: metas[i].clone().filter(|m| !m.is_empty()).map(Into::into) })
                .collect();
            let bytes = encode(&samples);
            prop_assert_eq!(decode(&bytes).unwrap(), samples);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
