//! Segment: the immutable, columnar encoding of one metric's samples over a time range.
//!
//! Owns the byte layout described in `docs/format.md` ("Segment value"). Pure: no I/O, no
//! clock, no redb — `store` decides where the bytes live, `compact` decides what goes in.
//! A segment is a header (summary of the whole segment, then one entry per block with the
//! block's own summary, length and checksum, all covered by a header checksum) followed by
//! blocks of `BLOCK_SAMPLES` samples (the last may hold fewer). Each block holds three
//! columns: timestamps (delta-of-delta), values (deltas of integers or scaled decimals,
//! XOR-coded or raw f64), metadata (a dictionary per block); `column` picks each integer
//! column's encoding. A query folds whole blocks from their summaries and decodes only the
//! blocks a bucket boundary cuts. Versions 1–3 are still read; version 4 writes a block's
//! summary as differences from the previous block's and leaves its first timestamp and
//! value out of the body.

mod column;
mod layout;
mod varint;
mod xor;

use std::borrow::Cow;

pub use layout::Layout;
pub use varint::{get_varint, put_varint, unzigzag, varint_len, zigzag};

/// Version byte at the start of every segment value. Bump when the layout changes and keep a
/// decoder for every older version (old files must keep opening).
pub const SEGMENT_VERSION: u8 = 4;

/// Version 3 (store formats 4–7): as 4, but each block entry holds its whole compact summary
/// and each block body its own first timestamp and value (docs/format.md).
const SEGMENT_V3: u8 = 3;

/// Samples per block, as written (a reader accepts blocks up to `MAX_SEGMENT_SAMPLES`).
/// Decoding the blocks that bucket boundaries cut is most of a query's time: 1024 instead of
/// 2048 took `avg` into 500 buckets over 10 M samples from 4.6 to 3.1 ms, for a block table
/// of 68 bytes per 1024 samples (~0.07 bytes/sample).
pub const BLOCK_SAMPLES: usize = 1024;

/// Segments of at most this many samples are written in the small form: no summary and no
/// block table, one checksum over the whole value; readers decode them to summarize them
/// (a few µs). At 50,000 metrics of 20 samples the summary was a third of each segment.
pub const SMALL_SEGMENT_SAMPLES: usize = 64;

/// Largest number of samples in one segment (store format 7; 32,768 in format 6, 8192
/// before). The compactor cuts segments to fill a two-page redb leaf
/// (`compact::policy::encode_to_fit`), so this cap binds only for series that compress
/// very well (a regular constant: ~3 KB for 65,536 samples, ~7.6 days at 10 s spacing). At
/// 32,768 it bound for a 2-decimal gauge moving ±1.00 (~5.6 KB), whose segments then left
/// 30 % of their 8 KiB leaves empty. Reads decode block by block (1024 samples).
pub const MAX_SEGMENT_SAMPLES: usize = 65536;

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
/// As `TS_CODEC_DOD`, with runs of zeros collapsed (store format 3).
const TS_CODEC_DOD_RUNS: u8 = 2;
const VALUE_CODEC_RAW: u8 = 0;
const VALUE_CODEC_INT_DELTA: u8 = 1;
/// Values that are decimals with at most `MAX_DECIMAL_DIGITS` fractional digits (prices,
/// percentages, 2-decimal gauges): one byte `e`, then zigzag varint deltas of the integers
/// `m = v × 10^e`; each value decodes as `m / 10^e`, bit-exact (checked when encoding).
/// Store format 3.
const VALUE_CODEC_DECIMAL_DELTA: u8 = 2;
const MAX_DECIMAL_DIGITS: usize = 9;
/// Largest metadata dictionary text per sample of a block: a sample's metadata is at most
/// 4 KiB (the webhook's limit), plus its length varint.
const METADATA_MAX_PER_SAMPLE: usize = 4096 + 3;
/// `VALUE_CODEC_INT_DELTA` and `VALUE_CODEC_DECIMAL_DELTA` with runs of zeros collapsed
/// (store format 3).
const VALUE_CODEC_INT_DELTA_RUNS: u8 = 3;
const VALUE_CODEC_DECIMAL_DELTA_RUNS: u8 = 4;
/// 10^e, exact in f64 for every e used.
const POW10: [f64; MAX_DECIMAL_DIGITS + 1] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
/// Version 3 blocks: what the values column holds, and whether a metadata dictionary follows.
const VALUES_RAW: u8 = 0;
const VALUES_INT: u8 = 1;
const VALUES_DECIMAL: u8 = 2;
/// Gorilla XOR coding (`xor.rs`), kept where smaller than raw f64 (store format 5).
const VALUES_XOR: u8 = 3;
const METADATA_NONE: u8 = 0;
const METADATA_DICTIONARY: u8 = 1;
const META_CODEC_NONE: u8 = 0;
const META_CODEC_LEN_PREFIXED: u8 = 1;
/// Integers above 2^53 are not exact in f64, so the integer codec stops there.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;
const HEADER_LEN: usize = 1 + 4 + 8 * 7;
/// count u32, min_ts i64, max_ts i64, five f64, body length u32, body CRC-32 u32.
const BLOCK_ENTRY_LEN: usize = 4 + 8 * 7 + 4 + 4;

/// Encodes samples that are sorted by strictly increasing timestamp (the caller dedups), as
/// a version 3 segment. Panics on an empty slice, more than `MAX_SEGMENT_SAMPLES` or unsorted
/// input: all are bugs in the caller, never input.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    assert!(!samples.is_empty(), "BUG: encoding an empty segment");
    assert!(
        samples.len() <= MAX_SEGMENT_SAMPLES,
        "BUG: segment of {} samples",
        samples.len()
    );
    encode_version(samples, SEGMENT_VERSION)
}

/// `encode`, as version `version` (4, or 3 for tests proving old segments still read).
fn encode_version(samples: &[Sample], version: u8) -> Vec<u8> {
    if samples.len() <= SMALL_SEGMENT_SAMPLES {
        let mut out = vec![version, 0];
        put_varint(&mut out, samples.len() as u64);
        out.extend_from_slice(&encode_block(samples, false));
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        return out;
    }
    let lean = version == SEGMENT_VERSION;
    let bodies: Vec<(Summary, Cow<'_, [u8]>)> = samples
        .chunks(BLOCK_SAMPLES)
        .map(|block| (summarize(block), Cow::Owned(encode_block(block, lean))))
        .collect();
    assemble(&bodies, &summarize(samples), version)
}

/// A segment of `existing` + `later` samples, where every one of `later` (sorted, strictly
/// increasing) comes after the segment's last: the segment's full blocks are kept as they
/// are (their bodies' checksums verified), only its last, partial block is decoded and
/// re-encoded with the new samples. This is what keeps a slow metric cheap to compact:
/// each round re-encodes at most one block of its open segment, not the whole segment.
///
/// `Ok(None)` when this does not apply and the caller should decode, merge and re-encode:
/// a segment of version 1 or 2 or in the small form, a sample not after the segment, or
/// more than `MAX_SEGMENT_SAMPLES` in all. The total's `sum` is the sum of the blocks' sums
/// (it may differ from a sequential sum in the last bits).
pub fn append(existing: &[u8], later: &[Sample]) -> Result<Option<Vec<u8>>, SegmentError> {
    if later.is_empty() || existing.first() != Some(&SEGMENT_VERSION) {
        return Ok(None);
    }
    let blocks = blocks(existing)?;
    let Some(last) = blocks.last() else {
        return Ok(None);
    };
    let count: usize = blocks.iter().map(|b| b.summary.count as usize).sum();
    if last.crc.is_none()
        || later[0].timestamp_ms <= last.summary.max_ts
        || count + later.len() > MAX_SEGMENT_SAMPLES
    {
        return Ok(None);
    }
    let (kept, tail) = match last.summary.count as usize {
        BLOCK_SAMPLES => (&blocks[..], Vec::new()),
        _ => (&blocks[..blocks.len() - 1], decode_samples(existing, last)?),
    };
    let mut bodies: Vec<(Summary, Cow<'_, [u8]>)> = Vec::with_capacity(kept.len() + 2);
    for b in kept {
        bodies.push((b.summary, Cow::Borrowed(b.checked_body(existing)?)));
    }
    let tail: Vec<Sample> = tail.into_iter().chain(later.iter().cloned()).collect();
    // Checksums vouch for the bytes, not for their order: a block whose timestamps do not
    // increase is refused here rather than reaching the encoder's assertion.
    if tail
        .windows(2)
        .any(|w| w[0].timestamp_ms >= w[1].timestamp_ms)
    {
        return Err(SegmentError::Malformed("timestamps out of order"));
    }
    for block in tail.chunks(BLOCK_SAMPLES) {
        bodies.push((summarize(block), Cow::Owned(encode_block(block, true))));
    }
    let total = bodies
        .iter()
        .skip(1)
        .fold(bodies[0].0, |t, (b, _)| Summary {
            count: t.count + b.count,
            min_ts: t.min_ts,
            max_ts: b.max_ts,
            min: t.min.min(b.min),
            max: t.max.max(b.max),
            sum: t.sum + b.sum,
            first: t.first,
            last: b.last,
        });
    Ok(Some(assemble(&bodies, &total, SEGMENT_VERSION)))
}

/// The samples of one block, metadata included.
fn decode_samples(bytes: &[u8], block: &Block) -> Result<Vec<Sample>, SegmentError> {
    let mut cols = Columns::default();
    decode_block(bytes, block, &mut cols, true)?;
    Ok(cols.into_samples())
}

/// The block form of a version 4 (or 3) segment: version, block count, the total's
/// summary, one table entry per block (its summary unless it is the only block, body
/// length, body CRC), the header's CRC, then the bodies. Every block but the last holds
/// exactly `BLOCK_SAMPLES` samples.
fn assemble(bodies: &[(Summary, Cow<'_, [u8]>)], total_summary: &Summary, version: u8) -> Vec<u8> {
    let total: usize = bodies.iter().map(|b| b.1.len()).sum();
    let mut out = Vec::with_capacity(64 + bodies.len() * 40 + total);
    out.push(version);
    put_varint(&mut out, bodies.len() as u64);
    push_compact_summary(&mut out, total_summary, None);
    let mut prev: Option<&Summary> = None;
    for (summary, body) in bodies {
        // A single block's summary is the segment's: not written twice.
        if bodies.len() > 1 && version == SEGMENT_V3 {
            push_compact_summary(&mut out, summary, Some(total_summary.min_ts));
        } else if bodies.len() > 1 {
            push_block_summary(&mut out, summary, prev, total_summary);
        }
        prev = Some(summary);
        put_varint(&mut out, body.len() as u64);
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (_, body) in bodies {
        out.extend_from_slice(body);
    }
    out
}

/// A version 2 segment, as stathook wrote before store format 4; kept so tests can prove
/// old segments still read.
#[cfg(test)]
pub fn encode_v2(samples: &[Sample]) -> Vec<u8> {
    let bodies: Vec<(Summary, Vec<u8>)> = samples
        .chunks(BLOCK_SAMPLES)
        .map(|block| {
            let mut body = Vec::with_capacity(block.len() * 3 + 16);
            encode_columns(&mut body, block, Codecs::Version2);
            (summarize(block), body)
        })
        .collect();
    let total: usize = bodies.iter().map(|b| b.1.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + 2 + bodies.len() * BLOCK_ENTRY_LEN + 4 + total);
    push_summary(&mut out, 2, &summarize(samples));
    out.extend_from_slice(&(bodies.len() as u16).to_le_bytes());
    for (summary, body) in &bodies {
        push_summary_fields(&mut out, summary);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for (_, body) in &bodies {
        out.extend_from_slice(body);
    }
    out
}

/// Version byte + the 60-byte summary (`HEADER_LEN` in all) of v1 and v2 segments.
#[cfg(test)]
fn push_summary(out: &mut Vec<u8>, version: u8, summary: &Summary) {
    out.push(version);
    push_summary_fields(out, summary);
}

/// The 60 bytes of a summary, as `read_summary_fields` reads them (v2 segment header and
/// each block entry).
#[cfg(test)]
fn push_summary_fields(out: &mut Vec<u8>, summary: &Summary) {
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
}

/// Which codecs `encode_columns` may use: those of version 2 segments, or only those
/// stathook 0.1 wrote (tests build genuine version 1 and 2 segments with it).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg(test)]
enum Codecs {
    Version2,
    Version1,
}

/// The three columns of sorted samples: the body of a v2 block, or of a whole v1 segment.
#[cfg(test)]
fn encode_columns(out: &mut Vec<u8>, samples: &[Sample], codecs: Codecs) {
    let runs = codecs == Codecs::Version2;
    let mut zigzags = Vec::with_capacity(samples.len());
    let (mut prev_ts, mut prev_delta) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        let ts = s.timestamp_ms;
        match i {
            0 => zigzags.push(zigzag(ts)),
            _ => {
                assert!(
                    ts > prev_ts,
                    "BUG: segment timestamps must strictly increase"
                );
                let delta = ts.wrapping_sub(prev_ts);
                zigzags.push(zigzag(delta.wrapping_sub(prev_delta)));
                prev_delta = delta;
            }
        }
        prev_ts = ts;
    }
    let mut col = Vec::with_capacity(samples.len() * 2);
    push_varint_column(
        out,
        &mut col,
        &[],
        &zigzags,
        (TS_CODEC_DOD, runs.then_some(TS_CODEC_DOD_RUNS)),
    );

    // Exactly representable as i64 and back, bit for bit (-0.0 is not).
    let all_int = samples.iter().all(|s| exact_int(s.value));
    let deltas = |scale: f64| -> Vec<u64> {
        let mut prev = 0i64;
        samples
            .iter()
            .map(|s| {
                let v = (s.value * scale).round() as i64;
                let z = zigzag(v.wrapping_sub(prev));
                prev = v;
                z
            })
            .collect()
    };
    if all_int {
        let codecs = (
            VALUE_CODEC_INT_DELTA,
            runs.then_some(VALUE_CODEC_INT_DELTA_RUNS),
        );
        push_varint_column(out, &mut col, &[], &deltas(1.0), codecs);
    } else if let Some(e) = decimal_exponent(samples).filter(|_| codecs == Codecs::Version2) {
        let codecs = (
            VALUE_CODEC_DECIMAL_DELTA,
            Some(VALUE_CODEC_DECIMAL_DELTA_RUNS),
        );
        push_varint_column(out, &mut col, &[e as u8], &deltas(POW10[e]), codecs);
    } else {
        col.clear();
        for s in samples {
            col.extend_from_slice(&s.value.to_le_bytes());
        }
        push_column(out, VALUE_CODEC_RAW, &col);
    }

    col.clear();
    if samples.iter().any(|s| s.metadata.is_some()) {
        for s in samples {
            let m = s.metadata.as_deref().unwrap_or("");
            put_varint(&mut col, m.len() as u64);
            col.extend_from_slice(m.as_bytes());
        }
        push_column(out, META_CODEC_LEN_PREFIXED, &col);
    } else {
        push_column(out, META_CODEC_NONE, &[]);
    }
}

/// The body of a block: timestamps, values, metadata (docs/format.md). A `lean` body (the
/// blocks of a version 4 segment's block form) leaves out the first timestamp and, for
/// integer and decimal values, the first value: its block summary holds both.
fn encode_block(samples: &[Sample], lean: bool) -> Vec<u8> {
    let skip = usize::from(lean);
    let mut out = Vec::with_capacity(samples.len() / 2 + 32);
    // Timestamps: the first, the first delta, then delta-of-deltas.
    let mut ints = Vec::with_capacity(samples.len());
    let (mut prev_ts, mut prev_delta) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        let ts = s.timestamp_ms;
        if i > 0 {
            assert!(
                ts > prev_ts,
                "BUG: segment timestamps must strictly increase"
            );
        }
        let delta = ts.wrapping_sub(prev_ts);
        ints.push(if i == 0 {
            ts
        } else {
            delta.wrapping_sub(prev_delta)
        });
        prev_delta = if i == 0 { 0 } else { delta };
        prev_ts = ts;
    }
    if lean && ints.len() >= 2 && ints[2..].iter().all(|&d| d == 0) {
        // Evenly spaced: the block summary's span and count say it all (store format 9).
        column::push_empty(&mut out);
    } else {
        column::push_ints(&mut out, &ints[skip..]);
    }

    // Values: deltas of integers or of scaled decimals, else raw f64.
    let deltas = |scale: f64| -> Vec<i64> {
        let mut prev = 0i64;
        samples
            .iter()
            .map(|s| {
                let v = (s.value * scale).round() as i64;
                let d = v.wrapping_sub(prev);
                prev = v;
                d
            })
            .collect()
    };
    if samples.iter().all(|s| exact_int(s.value)) {
        out.push(VALUES_INT);
        column::push_ints(&mut out, &deltas(1.0)[skip..]);
    } else if let Some(e) = decimal_exponent(samples) {
        out.push(VALUES_DECIMAL);
        out.push(e as u8);
        column::push_ints(&mut out, &deltas(POW10[e])[skip..]);
    } else {
        // True floats: XOR coding wins on slowly moving measurements, raw f64 (zstd'd where
        // it pays) on noise; both are sized and the smaller is kept.
        let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let (mut as_raw, mut as_xor) = (vec![VALUES_RAW], vec![VALUES_XOR]);
        column::push_bytes(&mut as_raw, &raw);
        column::push_bytes(&mut as_xor, &xor::encode(&values));
        out.extend_from_slice(if as_xor.len() < as_raw.len() {
            &as_xor
        } else {
            &as_raw
        });
    }

    // Metadata: each distinct object once per block, then one index per sample.
    if samples.iter().any(|s| s.metadata.is_some()) {
        let mut dict: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
        let mut texts = Vec::new();
        let indexes: Vec<i64> = samples
            .iter()
            .map(|s| match s.metadata.as_deref() {
                None => 0,
                Some(m) => {
                    let next = dict.len() as i64 + 1;
                    *dict.entry(m).or_insert_with(|| {
                        put_varint(&mut texts, m.len() as u64);
                        texts.extend_from_slice(m.as_bytes());
                        next
                    })
                }
            })
            .collect();
        out.push(METADATA_DICTIONARY);
        put_varint(&mut out, dict.len() as u64);
        column::push_bytes(&mut out, &texts);
        column::push_ints(&mut out, &indexes);
    } else {
        out.push(METADATA_NONE);
    }
    out
}

/// Exactly representable as i64 and back, bit for bit (-0.0 is not).
fn exact_int(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() <= MAX_EXACT_INT && ((v as i64) as f64).to_bits() == v.to_bits()
}

/// A summary in a version 3 header: count, times as varints (`min_ts` relative to `base`
/// for a block), then the five values as integers scaled by one exponent where that is exact
/// (a `u8` exponent, a `u8` mask of the fields stored as raw f64 instead).
fn push_compact_summary(out: &mut Vec<u8>, s: &Summary, base: Option<i64>) {
    put_varint(out, u64::from(s.count));
    match base {
        None => put_varint(out, zigzag(s.min_ts)),
        Some(b) => put_varint(out, s.min_ts.wrapping_sub(b) as u64),
    }
    put_varint(out, s.max_ts.wrapping_sub(s.min_ts) as u64);
    let fields = [s.min, s.max, s.sum, s.first, s.last];
    let (e, raw_mask) = summary_scale(&fields);
    out.push(e as u8);
    out.push(raw_mask);
    for (i, &v) in fields.iter().enumerate() {
        match scaled(v, e) {
            Some(m) if raw_mask & (1 << i) == 0 => put_varint(out, zigzag(m)),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

/// `v` as `m / 10^e` bit for bit with the fewest decimal digits `e` (0–9) and `|m| ≤ 2^53`;
/// None for a value with no such form (a true float, -0.0). Other modules' compact numbers
/// (the catalog's last value) share this rule.
pub fn as_decimal(v: f64) -> Option<(u8, i64)> {
    (0..=MAX_DECIMAL_DIGITS).find_map(|e| scaled(v, e).map(|m| (e as u8, m)))
}

/// The value `as_decimal` gave (e, m) for; None if e is out of range.
pub fn from_decimal(e: u8, m: i64) -> Option<f64> {
    Some(m as f64 / POW10.get(usize::from(e))?)
}

/// `v` as an integer `m` with `v = m / 10^e` bit for bit, `|m| ≤ 2^53`; None if there is none.
fn scaled(v: f64, e: usize) -> Option<i64> {
    let m = (v * POW10[e]).round();
    (m.abs() <= MAX_EXACT_INT && ((m as i64) as f64 / POW10[e]).to_bits() == v.to_bits())
        .then_some(m as i64)
}

/// The exponent that makes most of `fields` exact integers (ties: the smallest), and the
/// mask of those it does not (stored as raw f64).
fn summary_scale(fields: &[f64; 5]) -> (usize, u8) {
    let e = (0..=MAX_DECIMAL_DIGITS)
        .max_by_key(|&e| {
            let exact = fields.iter().filter(|&&v| scaled(v, e).is_some()).count();
            (exact, std::cmp::Reverse(e))
        })
        .expect("BUG: non-empty range");
    let mut raw_mask = 0u8;
    for (i, &v) in fields.iter().enumerate() {
        if scaled(v, e).is_none() {
            raw_mask |= 1 << i;
        }
    }
    (e, raw_mask)
}

/// Raw-mask bits of the summary fields (as in a version 3 compact summary).
const MASK_MIN: u8 = 1;
const MASK_MAX: u8 = 1 << 1;
const MASK_SUM: u8 = 1 << 2;
const MASK_FIRST: u8 = 1 << 3;
const MASK_LAST: u8 = 1 << 4;

/// A block entry's summary in a version 4 segment of several blocks, written relative to
/// what the reader already knows (docs/format.md): the count is implied (`BLOCK_SAMPLES`,
/// the last block the rest), the first block's start is the segment's, a later one's is the
/// gap after the previous block, the time span is a change from the previous block's; the
/// first value is a change from the previous block's last (the first block: from the
/// segment's first), and last, min, max and sum are relative to the first. Took the block
/// entries of compare.sh's quiet dataset from 31.4 to 20.4 bytes (its data dir: −8 %).
fn push_block_summary(out: &mut Vec<u8>, s: &Summary, prev: Option<&Summary>, total: &Summary) {
    let span = s.max_ts.wrapping_sub(s.min_ts);
    match prev {
        None => put_varint(out, span as u64),
        Some(p) => {
            put_varint(out, s.min_ts.wrapping_sub(p.max_ts) as u64);
            put_varint(
                out,
                zigzag(span.wrapping_sub(p.max_ts.wrapping_sub(p.min_ts))),
            );
        }
    }
    let (e, mut raw_mask) = summary_scale(&[s.min, s.max, s.sum, s.first, s.last]);
    let reference = scaled(prev.map_or(total.first, |p| p.last), e).unwrap_or(0);
    let first = scaled(s.first, e).filter(|_| raw_mask & MASK_FIRST == 0);
    let anchor = first.unwrap_or(0);
    // The sum's residual must fit an i64; where it does not, the sum is stored raw.
    let sum_residual = scaled(s.sum, e)
        .filter(|_| raw_mask & MASK_SUM == 0)
        .and_then(|m| i64::try_from(i128::from(m) - i128::from(s.count) * i128::from(anchor)).ok());
    if sum_residual.is_none() {
        raw_mask |= MASK_SUM;
    }
    out.push(e as u8);
    out.push(raw_mask);
    let mut field = |v: f64, bit: u8, base: i64| match scaled(v, e) {
        Some(m) if raw_mask & bit == 0 => put_varint(out, zigzag(m - base)),
        _ => out.extend_from_slice(&v.to_le_bytes()),
    };
    field(s.first, MASK_FIRST, reference);
    field(s.last, MASK_LAST, anchor);
    field(s.min, MASK_MIN, anchor);
    field(s.max, MASK_MAX, anchor);
    match sum_residual {
        Some(d) => put_varint(out, zigzag(d)),
        None => out.extend_from_slice(&s.sum.to_le_bytes()),
    }
}

/// Reads what `push_block_summary` wrote for a block of `count` samples.
fn read_block_summary(
    r: &mut Reader<'_>,
    count: u32,
    prev: Option<&Summary>,
    total: &Summary,
) -> Result<Summary, SegmentError> {
    let (min_ts, span) = match prev {
        None => (total.min_ts, r.varint("max_ts")? as i64),
        Some(p) => {
            let min_ts = p.max_ts.wrapping_add(r.varint("min_ts")? as i64);
            let p_span = p.max_ts.wrapping_sub(p.min_ts);
            (min_ts, p_span.wrapping_add(unzigzag(r.varint("max_ts")?)))
        }
    };
    let e = r.u8("summary exponent")? as usize;
    let scale = *POW10
        .get(e)
        .ok_or(SegmentError::Malformed("summary exponent"))?;
    let raw_mask = r.u8("summary mask")?;
    let reference = scaled(prev.map_or(total.first, |p| p.last), e).unwrap_or(0);
    let bad = SegmentError::Malformed("summary");
    let mut field = |bit: u8, base: i64| -> Result<(f64, Option<i64>), SegmentError> {
        if raw_mask & bit != 0 {
            return Ok((r.f64("summary")?, None));
        }
        let m = base
            .checked_add(unzigzag(r.varint("summary")?))
            .ok_or(bad)?;
        if m.unsigned_abs() > MAX_EXACT_INT as u64 {
            return Err(bad);
        }
        Ok((m as f64 / scale, Some(m)))
    };
    let (first, m_first) = field(MASK_FIRST, reference)?;
    let anchor = m_first.unwrap_or(0);
    let (last, _) = field(MASK_LAST, anchor)?;
    let (min, _) = field(MASK_MIN, anchor)?;
    let (max, _) = field(MASK_MAX, anchor)?;
    let sum = if raw_mask & MASK_SUM != 0 {
        r.f64("summary")?
    } else {
        let m = i128::from(unzigzag(r.varint("summary")?)) + i128::from(count) * i128::from(anchor);
        if m.unsigned_abs() > MAX_EXACT_INT as u128 {
            return Err(bad);
        }
        m as f64 / scale
    };
    Ok(Summary {
        count,
        min_ts,
        max_ts: min_ts.wrapping_add(span),
        min,
        max,
        sum,
        first,
        last,
    })
}

fn read_compact_summary(r: &mut Reader<'_>, base: Option<i64>) -> Result<Summary, SegmentError> {
    let count = u32::try_from(r.varint("count")?).map_err(|_| SegmentError::Malformed("count"))?;
    let min_ts = match base {
        None => unzigzag(r.varint("min_ts")?),
        Some(b) => b.wrapping_add(r.varint("min_ts")? as i64),
    };
    let max_ts = min_ts.wrapping_add(r.varint("max_ts")? as i64);
    let e = r.u8("summary exponent")? as usize;
    let scale = *POW10
        .get(e)
        .ok_or(SegmentError::Malformed("summary exponent"))?;
    let raw_mask = r.u8("summary mask")?;
    let mut fields = [0f64; 5];
    for (i, f) in fields.iter_mut().enumerate() {
        *f = if raw_mask & (1 << i) != 0 {
            r.f64("summary")?
        } else {
            unzigzag(r.varint("summary")?) as f64 / scale
        };
    }
    let [min, max, sum, first, last] = fields;
    Ok(Summary {
        count,
        min_ts,
        max_ts,
        min,
        max,
        sum,
        first,
        last,
    })
}

/// The fewest fractional decimal digits `e` (1..=9) with which every value is exactly
/// `m / 10^e` for an integer `m` small enough to be exact; None for true floats.
fn decimal_exponent(samples: &[Sample]) -> Option<usize> {
    (1..=MAX_DECIMAL_DIGITS).find(|&e| {
        samples.iter().all(|s| {
            let m = (s.value * POW10[e]).round();
            // Through i64, as the decoder sees it (so -0.0 does not pass as 0).
            m.abs() <= MAX_EXACT_INT
                && ((m as i64) as f64 / POW10[e]).to_bits() == s.value.to_bits()
        })
    })
}

/// Pushes a column of zigzagged integers after `prefix`: as plain varints (`plain`), or
/// with runs of zeros collapsed (`runs`: each run of n ≥ 1 zeros is varint 0 then varint
/// n), whichever is smaller. Regular timestamps and constant or quiet series are almost
/// all zeros: a block of them shrinks from a byte per sample to a few bytes.
#[cfg(test)]
fn push_varint_column(
    out: &mut Vec<u8>,
    col: &mut Vec<u8>,
    prefix: &[u8],
    zigzags: &[u64],
    (plain, runs): (u8, Option<u8>),
) {
    col.clear();
    col.extend_from_slice(prefix);
    for &z in zigzags {
        put_varint(col, z);
    }
    if let Some(runs) = runs {
        let mut packed = Vec::with_capacity(col.len());
        packed.extend_from_slice(prefix);
        let mut zeros = 0u64;
        for &z in zigzags {
            if z == 0 {
                zeros += 1;
                continue;
            }
            if zeros > 0 {
                put_varint(&mut packed, 0);
                put_varint(&mut packed, zeros);
                zeros = 0;
            }
            put_varint(&mut packed, z);
        }
        if zeros > 0 {
            put_varint(&mut packed, 0);
            put_varint(&mut packed, zeros);
        }
        if packed.len() < col.len() {
            push_column(out, runs, &packed);
            return;
        }
    }
    push_column(out, plain, col);
}

#[cfg(test)]
fn push_column(out: &mut Vec<u8>, codec: u8, bytes: &[u8]) {
    out.push(codec);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Computes the header summary of sorted samples.
pub fn summarize(samples: &[Sample]) -> Summary {
    summary_of(
        samples[0].timestamp_ms,
        samples[samples.len() - 1].timestamp_ms,
        samples.iter().map(|s| s.value),
    )
}

/// The summary of sorted samples from their first and last timestamps and their values in
/// order: one definition for encoding and for small segments, which are summarized when
/// read, so both give the same bits.
fn summary_of(min_ts: i64, max_ts: i64, values: impl ExactSizeIterator<Item = f64>) -> Summary {
    let mut s = Summary {
        count: values.len() as u32,
        min_ts,
        max_ts,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        first: 0.0,
        last: 0.0,
    };
    for (i, v) in values.enumerate() {
        if i == 0 {
            s.first = v;
        }
        s.last = v;
        s.min = s.min.min(v);
        s.max = s.max.max(v);
        s.sum += v;
    }
    s
}

/// Decodes a small segment's only block (no checksum check: the caller did it or does not
/// need it) and summarizes it.
fn small_summary(bytes: &[u8]) -> Result<(Summary, usize, usize), SegmentError> {
    let mut r = Reader { bytes, pos: 2 };
    let count = r.varint("count")? as usize;
    if count == 0 || count > SMALL_SEGMENT_SAMPLES {
        return Err(SegmentError::Malformed("count"));
    }
    let body_end = bytes
        .len()
        .checked_sub(4)
        .filter(|&end| end >= r.pos)
        .ok_or(SegmentError::Malformed("length"))?;
    let mut cols = Columns::default();
    decode_body_v3(&bytes[r.pos..body_end], count, None, &mut cols, false)?;
    let summary = summary_of(
        cols.timestamps[0],
        cols.timestamps[count - 1],
        cols.values.iter().copied(),
    );
    Ok((summary, r.pos, body_end - r.pos))
}

/// Reads only the segment summary; checks the version but no checksum (cheap pruning by
/// time range). Anything that trusts the numbers goes through `blocks` instead.
pub fn read_summary(bytes: &[u8]) -> Result<Summary, SegmentError> {
    let mut r = Reader { bytes, pos: 0 };
    match r.u8("version")? {
        1 | 2 => read_summary_fields(&mut r),
        SEGMENT_V3 | SEGMENT_VERSION => match r.varint("block count")? {
            0 => Ok(small_summary(bytes)?.0),
            _ => read_compact_summary(&mut r, None),
        },
        v => Err(SegmentError::UnknownVersion(v)),
    }
}

/// The summary of a whole version 3 segment of several blocks, with its header checksum
/// verified but the block summaries only skipped: a query whose bucket holds the whole
/// segment folds it from this instead of from each block (parsing every block's compact
/// summary was 15 % of a 500-bucket query). None for other versions and small segments
/// (their callers go through `blocks`).
pub fn checked_summary(bytes: &[u8]) -> Result<Option<Summary>, SegmentError> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u8("version")?;
    if version != SEGMENT_VERSION && version != SEGMENT_V3 {
        return Ok(None);
    }
    let n = r.varint("block count")?;
    if n == 0 {
        return Ok(None);
    }
    read_table(&mut r, n, version, None).map(Some)
}

/// Reads the header of a version 3 or 4 segment of `n` ≥ 1 blocks, `r` just past the block
/// count: the segment's summary, then each block entry — pushed to `entries` with its
/// summary parsed, or, without `entries`, skipped — then verifies the header checksum.
fn read_table(
    r: &mut Reader<'_>,
    n: u64,
    version: u8,
    mut entries: Option<&mut Vec<(Summary, usize, u32)>>,
) -> Result<Summary, SegmentError> {
    if n > MAX_SEGMENT_SAMPLES as u64 {
        return Err(SegmentError::Malformed("block count"));
    }
    let total = read_compact_summary(r, None)?;
    let v4 = version == SEGMENT_VERSION;
    // Version 4: every block but the last holds BLOCK_SAMPLES.
    let full = (n - 1) * BLOCK_SAMPLES as u64;
    if v4
        && !(full < u64::from(total.count) && u64::from(total.count) <= full + BLOCK_SAMPLES as u64)
    {
        return Err(SegmentError::Malformed("block count"));
    }
    let mut prev: Option<Summary> = None;
    for i in 0..n {
        let summary = match (&entries, n) {
            (_, 1) => total,
            (Some(_), _) if v4 => {
                let count = match i + 1 == n {
                    true => (u64::from(total.count) - full) as u32,
                    false => BLOCK_SAMPLES as u32,
                };
                read_block_summary(r, count, prev.as_ref(), &total)?
            }
            (Some(_), _) => read_compact_summary(r, Some(total.min_ts))?,
            (None, _) => {
                match v4 {
                    true => skip_block_summary(r, i > 0)?,
                    false => skip_compact_summary(r)?,
                }
                total
            }
        };
        prev = Some(summary);
        let body_len = usize::try_from(r.varint("block length")?)
            .map_err(|_| SegmentError::Malformed("block length"))?;
        let crc = r.u32("block checksum")?;
        if let Some(entries) = entries.as_mut() {
            if summary.count == 0 || summary.count as usize > MAX_SEGMENT_SAMPLES {
                return Err(SegmentError::Malformed("block count"));
            }
            entries.push((summary, body_len, crc));
        }
    }
    let table_end = r.pos;
    if crc32fast::hash(&r.bytes[..table_end]) != r.u32("header checksum")? {
        return Err(SegmentError::Checksum);
    }
    Ok(total)
}

/// Moves past one version 4 block entry's summary (see `read_block_summary`).
fn skip_block_summary(r: &mut Reader<'_>, after_first: bool) -> Result<(), SegmentError> {
    if after_first {
        r.varint("min_ts")?;
    }
    r.varint("max_ts")?;
    r.u8("summary exponent")?;
    let raw_mask = r.u8("summary mask")?;
    // In the order written.
    for bit in [MASK_FIRST, MASK_LAST, MASK_MIN, MASK_MAX, MASK_SUM] {
        if raw_mask & bit != 0 {
            r.take(8, "summary")?;
        } else {
            r.varint("summary")?;
        }
    }
    Ok(())
}

/// Moves past one block entry's compact summary (see `read_compact_summary`).
fn skip_compact_summary(r: &mut Reader<'_>) -> Result<(), SegmentError> {
    for what in ["count", "min_ts", "max_ts"] {
        r.varint(what)?;
    }
    r.u8("summary exponent")?;
    let raw_mask = r.u8("summary mask")?;
    for i in 0..5 {
        if raw_mask & (1 << i) != 0 {
            r.take(8, "summary")?;
        } else {
            r.varint("summary")?;
        }
    }
    Ok(())
}

fn read_summary_fields(r: &mut Reader<'_>) -> Result<Summary, SegmentError> {
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

/// One block of a segment as its header describes it: a summary whose numbers are covered by
/// a checksum, and where its body lies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    pub summary: Summary,
    body_start: usize,
    body_len: usize,
    /// None for a v1 segment, whose single checksum `blocks` has already verified.
    crc: Option<u32>,
    /// The segment version, which says how the body is laid out.
    version: u8,
    /// The body leaves its first timestamp and value to the summary (version 4 blocks).
    lean: bool,
}

impl Block {
    /// The block's body within its segment's `bytes`, its checksum verified (a v1 body's was
    /// verified with the whole segment by `blocks`).
    fn checked_body<'b>(&self, bytes: &'b [u8]) -> Result<&'b [u8], SegmentError> {
        let body = bytes
            .get(self.body_start..self.body_start + self.body_len)
            .ok_or(SegmentError::Malformed("block length"))?;
        match self.crc {
            Some(crc) if crc32fast::hash(body) != crc => Err(SegmentError::Checksum),
            _ => Ok(body),
        }
    }
}

/// The blocks of a segment, oldest first, with their checksummed summaries. Verifies the
/// header checksum (v2, v3) or the whole segment (v1, whose only block is the segment), and
/// that the block table is consistent with the bytes; block bodies are verified when decoded.
pub fn blocks(bytes: &[u8]) -> Result<Vec<Block>, SegmentError> {
    let mut r = Reader { bytes, pos: 0 };
    match r.u8("version")? {
        1 => {
            verify_v1(bytes)?;
            let summary = read_summary_fields(&mut r)?;
            Ok(vec![Block {
                summary,
                body_start: HEADER_LEN,
                body_len: bytes.len() - HEADER_LEN - 4,
                crc: None,
                version: 1,
                lean: false,
            }])
        }
        v @ (SEGMENT_V3 | SEGMENT_VERSION) => blocks_v3(bytes, v),
        2 => {
            let total = read_summary_fields(&mut r)?;
            let n = r.u16("block count")? as usize;
            let table_end = HEADER_LEN + 2 + n * BLOCK_ENTRY_LEN;
            let header = bytes
                .get(..table_end + 4)
                .ok_or(SegmentError::Malformed("block table"))?;
            let stored = u32::from_le_bytes(
                header[table_end..]
                    .try_into()
                    .expect("BUG: slice of 4 bytes"),
            );
            if crc32fast::hash(&header[..table_end]) != stored {
                return Err(SegmentError::Checksum);
            }
            let mut out = Vec::with_capacity(n);
            let mut body_start = table_end + 4;
            let mut count = 0u64;
            for _ in 0..n {
                let summary = read_summary_fields(&mut r)?;
                let body_len = r.u32("block length")? as usize;
                let crc = r.u32("block checksum")?;
                if summary.count == 0 || summary.count as usize > MAX_SEGMENT_SAMPLES {
                    return Err(SegmentError::Malformed("block count"));
                }
                count += u64::from(summary.count);
                out.push(Block {
                    summary,
                    body_start,
                    body_len,
                    crc: Some(crc),
                    version: 2,
                    lean: false,
                });
                body_start = body_start
                    .checked_add(body_len)
                    .ok_or(SegmentError::Malformed("block length"))?;
            }
            if n == 0 || count != u64::from(total.count) || count > MAX_SEGMENT_SAMPLES as u64 {
                return Err(SegmentError::Malformed("count"));
            }
            if body_start != bytes.len() {
                return Err(SegmentError::Malformed("length"));
            }
            Ok(out)
        }
        v => Err(SegmentError::UnknownVersion(v)),
    }
}

fn blocks_v3(bytes: &[u8], version: u8) -> Result<Vec<Block>, SegmentError> {
    let mut r = Reader { bytes, pos: 1 };
    let n = r.varint("block count")?;
    if n == 0 {
        let (body, crc) = bytes
            .split_at_checked(bytes.len().saturating_sub(4))
            .filter(|(body, _)| body.len() >= 2)
            .ok_or(SegmentError::Malformed("length"))?;
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(SegmentError::Checksum);
        }
        let (summary, body_start, body_len) = small_summary(bytes)?;
        return Ok(vec![Block {
            summary,
            body_start,
            body_len,
            crc: None,
            version,
            lean: false,
        }]);
    }
    let mut entries = Vec::with_capacity(n.min(MAX_SEGMENT_SAMPLES as u64) as usize);
    let total = read_table(&mut r, n, version, Some(&mut entries))?;
    let mut body_start = r.pos;
    let mut count = 0u64;
    let mut out = Vec::with_capacity(entries.len());
    for (summary, body_len, crc) in entries {
        count += u64::from(summary.count);
        out.push(Block {
            summary,
            body_start,
            body_len,
            crc: Some(crc),
            version,
            lean: version == SEGMENT_VERSION,
        });
        body_start = body_start
            .checked_add(body_len)
            .ok_or(SegmentError::Malformed("block length"))?;
    }
    if count != u64::from(total.count) || count > MAX_SEGMENT_SAMPLES as u64 {
        return Err(SegmentError::Malformed("count"));
    }
    if body_start != bytes.len() {
        return Err(SegmentError::Malformed("length"));
    }
    Ok(out)
}

/// Verifies the checksum and decodes every sample.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, SegmentError> {
    let mut cols = Columns::default();
    decode_columns(bytes, &mut cols, true)?;
    Ok(cols.into_samples())
}

/// A decoded segment or block as parallel columns; buffers are reused across a scan.
#[derive(Debug, Default)]
pub struct Columns {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// Empty when the caller did not ask for metadata or no sample has any.
    pub metadata: Vec<Option<Box<str>>>,
    /// Scratch space of version 3 decoding, kept to reuse its allocations.
    ints: Vec<i64>,
    scratch: Vec<u8>,
}

impl Columns {
    fn clear(&mut self) {
        self.timestamps.clear();
        self.values.clear();
        self.metadata.clear();
    }

    /// The columns as samples (decoded with metadata, or the samples carry none).
    fn into_samples(self) -> Vec<Sample> {
        let mut meta = self.metadata.into_iter();
        self.timestamps
            .into_iter()
            .zip(self.values)
            .map(|(timestamp_ms, value)| Sample {
                timestamp_ms,
                value,
                metadata: meta.next().flatten(),
            })
            .collect()
    }
}

/// Verifies every checksum and decodes all blocks into `out` (cleared first). Skips the
/// metadata column unless `with_metadata`, which is what makes aggregation cheap.
pub fn decode_columns(
    bytes: &[u8],
    out: &mut Columns,
    with_metadata: bool,
) -> Result<(), SegmentError> {
    out.clear();
    let blocks = blocks(bytes)?;
    let mut any_metadata = false;
    for b in &blocks {
        let before = out.timestamps.len();
        let had = decode_block_into(bytes, b, out, with_metadata)?;
        if had && !any_metadata {
            // Earlier blocks had none: pad them so the columns stay parallel.
            out.metadata.splice(0..0, std::iter::repeat_n(None, before));
        } else if !had && any_metadata {
            out.metadata
                .extend(std::iter::repeat_n(None, b.summary.count as usize));
        }
        any_metadata |= had;
    }
    Ok(())
}

/// Verifies one block's checksum and decodes it into `out` (cleared first).
pub fn decode_block(
    bytes: &[u8],
    block: &Block,
    out: &mut Columns,
    with_metadata: bool,
) -> Result<(), SegmentError> {
    out.clear();
    decode_block_into(bytes, block, out, with_metadata).map(|_| ())
}

/// Appends one block's samples; returns whether it pushed metadata entries.
fn decode_block_into(
    bytes: &[u8],
    block: &Block,
    out: &mut Columns,
    with_metadata: bool,
) -> Result<bool, SegmentError> {
    let body = block.checked_body(bytes)?;
    let count = block.summary.count as usize;
    if count == 0 || count > MAX_SEGMENT_SAMPLES {
        return Err(SegmentError::Malformed("count"));
    }
    if block.version >= SEGMENT_V3 {
        let lean = block.lean.then_some(Lean {
            min_ts: block.summary.min_ts,
            max_ts: block.summary.max_ts,
            first: block.summary.first,
        });
        return decode_body_v3(body, count, lean, out, with_metadata);
    }
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };

    let (codec, ts_col) = r.column("timestamps")?;
    let mut varints = match codec {
        TS_CODEC_DOD => Zigzags::new(ts_col, false, "timestamps"),
        TS_CODEC_DOD_RUNS => Zigzags::new(ts_col, true, "timestamps"),
        _ => return Err(SegmentError::Malformed("timestamp codec")),
    };
    out.timestamps.reserve(count);
    let mut ts = unzigzag(varints.next()?);
    out.timestamps.push(ts);
    let mut delta = 0i64;
    for _ in 1..count {
        delta = delta.wrapping_add(unzigzag(varints.next()?));
        ts = ts.wrapping_add(delta);
        out.timestamps.push(ts);
    }

    let (codec, val_col) = r.column("values")?;
    out.values.reserve(count);
    match codec {
        VALUE_CODEC_RAW => {
            if val_col.len() != count * 8 {
                return Err(SegmentError::Malformed("values"));
            }
            out.values.extend(val_col.chunks_exact(8).map(|b| {
                f64::from_le_bytes(b.try_into().expect("BUG: chunks_exact(8) gives 8 bytes"))
            }));
        }
        VALUE_CODEC_INT_DELTA | VALUE_CODEC_INT_DELTA_RUNS => {
            let runs = codec == VALUE_CODEC_INT_DELTA_RUNS;
            let mut varints = Zigzags::new(val_col, runs, "values");
            let mut v = 0i64;
            for _ in 0..count {
                v = v.wrapping_add(unzigzag(varints.next()?));
                out.values.push(v as f64);
            }
        }
        VALUE_CODEC_DECIMAL_DELTA | VALUE_CODEC_DECIMAL_DELTA_RUNS => {
            let (&e, deltas) = val_col
                .split_first()
                .ok_or(SegmentError::Malformed("values"))?;
            let scale = *POW10
                .get(e as usize)
                .ok_or(SegmentError::Malformed("decimal exponent"))?;
            let runs = codec == VALUE_CODEC_DECIMAL_DELTA_RUNS;
            let mut varints = Zigzags::new(deltas, runs, "values");
            let mut m = 0i64;
            for _ in 0..count {
                m = m.wrapping_add(unzigzag(varints.next()?));
                out.values.push(m as f64 / scale);
            }
        }
        _ => return Err(SegmentError::Malformed("value codec")),
    }

    let (codec, meta_col) = r.column("metadata")?;
    match codec {
        META_CODEC_NONE => Ok(false),
        META_CODEC_LEN_PREFIXED if !with_metadata => Ok(false),
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
            Ok(true)
        }
        _ => Err(SegmentError::Malformed("metadata codec")),
    }
}

/// What a lean body (version 4 blocks) leaves to its block summary.
#[derive(Clone, Copy)]
struct Lean {
    /// The first timestamp.
    min_ts: i64,
    /// The last timestamp: with `min_ts` and the count, the whole timestamps column of an
    /// evenly spaced block, whose body then holds an empty one.
    max_ts: i64,
    /// The first value.
    first: f64,
}

/// Appends the samples of a version 3 or 4 block body; returns whether it pushed metadata.
/// `lean`: what a lean body leaves out (version 4 blocks).
fn decode_body_v3(
    body: &[u8],
    count: usize,
    lean: Option<Lean>,
    out: &mut Columns,
    with_metadata: bool,
) -> Result<bool, SegmentError> {
    let mut pos = 0;
    let skip = usize::from(lean.is_some());
    let ints = &mut out.ints;
    let scratch = &mut out.scratch;
    out.timestamps.reserve(count);
    let (encoding, payload) = column::read(body, &mut pos, "timestamps")?;
    // An empty column where a lean block of 2 or more expects integers: evenly spaced.
    let evenly_spaced =
        lean.filter(|_| count >= 2 && encoding == column::PLAIN && payload.is_empty());
    if let Some(l) = evenly_spaced {
        let span = l.max_ts.wrapping_sub(l.min_ts);
        let steps = count as i64 - 1;
        if span <= 0 || span % steps != 0 {
            return Err(SegmentError::Malformed("timestamps"));
        }
        let step = span / steps;
        out.timestamps
            .extend((0..count as i64).map(|i| l.min_ts.wrapping_add(i * step)));
    } else {
        column::decode_ints(encoding, payload, count - skip, ints, scratch, "timestamps")?;
        // The first timestamp, then Δt_1 and the delta-of-deltas (not shifted into `ints`:
        // that memmove per block was ~1 ns a sample).
        let (mut ts, dods) = match lean {
            Some(l) => (l.min_ts, &ints[..]),
            None => (ints[0], &ints[1..]),
        };
        out.timestamps.push(ts);
        let mut delta = 0i64;
        for (i, &x) in dods.iter().enumerate() {
            delta = if i == 0 { x } else { delta.wrapping_add(x) };
            ts = ts.wrapping_add(delta);
            out.timestamps.push(ts);
        }
    }
    let mut int_column = |pos: &mut usize, ints: &mut Vec<i64>, what| {
        let (encoding, payload) = column::read(body, pos, what)?;
        column::decode_ints(encoding, payload, count - skip, ints, scratch, what)
    };

    let bad_values = SegmentError::Malformed("values");
    let kind = *body.get(pos).ok_or(bad_values)?;
    pos += 1;
    out.values.reserve(count);
    match kind {
        VALUES_RAW => {
            let (encoding, payload) = column::read(body, &mut pos, "values")?;
            let raw =
                column::decode_bytes(encoding, payload, count * 8, &mut out.scratch, "values")?;
            if raw.len() != count * 8 {
                return Err(bad_values);
            }
            out.values.extend(raw.chunks_exact(8).map(|b| {
                f64::from_le_bytes(b.try_into().expect("BUG: chunks_exact(8) gives 8 bytes"))
            }));
        }
        VALUES_XOR => {
            let (encoding, payload) = column::read(body, &mut pos, "values")?;
            // At most 2 + 5 + 6 + 64 bits a value after the first 64.
            let max_len = count * 10 + 8;
            let bits =
                column::decode_bytes(encoding, payload, max_len, &mut out.scratch, "values")?;
            xor::decode(bits, count, &mut out.values)?;
        }
        VALUES_INT | VALUES_DECIMAL => {
            let scale = match kind {
                VALUES_INT => 1.0,
                _ => {
                    let e = *body.get(pos).ok_or(bad_values)?;
                    pos += 1;
                    *POW10
                        .get(e as usize)
                        .ok_or(SegmentError::Malformed("decimal exponent"))?
                }
            };
            int_column(&mut pos, ints, "values")?;
            let mut v = 0i64;
            if let Some(Lean { first, .. }) = lean {
                // m_0, as the encoder computed it from the same value.
                v = (first * scale).round() as i64;
                out.values.push(v as f64 / scale);
            }
            out.values.extend(ints.iter().map(|&d| {
                v = v.wrapping_add(d);
                v as f64 / scale
            }));
        }
        _ => return Err(SegmentError::Malformed("value codec")),
    }

    let bad_meta = SegmentError::Malformed("metadata");
    let kind = *body.get(pos).ok_or(bad_meta)?;
    pos += 1;
    let had = match kind {
        METADATA_NONE => false,
        METADATA_DICTIONARY => {
            let mut r = Reader { bytes: body, pos };
            let n = r.varint("metadata")?;
            pos = r.pos;
            let (encoding, payload) = column::read(body, &mut pos, "metadata")?;
            let (te, tp) = (encoding, payload);
            let (encoding, payload) = column::read(body, &mut pos, "metadata")?;
            if with_metadata {
                if n > count as u64 {
                    return Err(bad_meta);
                }
                let mut scratch = Vec::new();
                let texts = column::decode_bytes(
                    te,
                    tp,
                    count * METADATA_MAX_PER_SAMPLE,
                    &mut scratch,
                    "metadata",
                )?;
                let mut t = Reader {
                    bytes: texts,
                    pos: 0,
                };
                let mut dict: Vec<Box<str>> = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let len = t.varint("metadata")? as usize;
                    let raw = t.take(len, "metadata")?;
                    dict.push(std::str::from_utf8(raw).map_err(|_| bad_meta)?.into());
                }
                if t.pos != texts.len() {
                    return Err(bad_meta);
                }
                column::decode_ints(encoding, payload, count, ints, &mut out.scratch, "metadata")?;
                for &i in ints.iter() {
                    out.metadata.push(match i {
                        0 => None,
                        i => Some(
                            dict.get(usize::try_from(i - 1).map_err(|_| bad_meta)?)
                                .ok_or(bad_meta)?
                                .clone(),
                        ),
                    });
                }
            }
            with_metadata
        }
        _ => return Err(SegmentError::Malformed("metadata codec")),
    };
    if pos != body.len() {
        return Err(SegmentError::Malformed("block length"));
    }
    Ok(had)
}

/// Whether the segment holds a sample at `ts`; decodes at most one block.
pub fn contains_timestamp(bytes: &[u8], ts: i64) -> Result<bool, SegmentError> {
    let summary = read_summary(bytes)?;
    if ts < summary.min_ts || ts > summary.max_ts {
        return Ok(false);
    }
    let mut cols = Columns::default();
    for b in blocks(bytes)? {
        if b.summary.min_ts <= ts && ts <= b.summary.max_ts {
            decode_block(bytes, &b, &mut cols, false)?;
            return Ok(cols.timestamps.binary_search(&ts).is_ok());
        }
    }
    Ok(false)
}

/// Checks a v1 segment's trailing CRC-32 over every preceding byte.
fn verify_v1(bytes: &[u8]) -> Result<(), SegmentError> {
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

/// Writes a version 1 segment (one block, one trailing checksum), as stathook 0.1 did; kept
/// so tests can prove old segments still read.
#[cfg(test)]
pub fn encode_v1(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::new();
    push_summary(&mut out, 1, &summarize(samples));
    encode_columns(&mut out, samples, Codecs::Version1);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a column of zigzagged integers, plain or with runs of zeros collapsed (see
/// `push_varint_column`).
struct Zigzags<'a> {
    varints: Varints<'a>,
    runs: bool,
    zeros_left: u64,
}

impl<'a> Zigzags<'a> {
    fn new(bytes: &'a [u8], runs: bool, what: &'static str) -> Zigzags<'a> {
        Zigzags {
            varints: Varints::new(bytes, what),
            runs,
            zeros_left: 0,
        }
    }

    #[inline]
    fn next(&mut self) -> Result<u64, SegmentError> {
        if self.zeros_left > 0 {
            self.zeros_left -= 1;
            return Ok(0);
        }
        let z = self.varints.next()?;
        if z != 0 || !self.runs {
            return Ok(z);
        }
        match self.varints.next()? {
            0 => Err(SegmentError::Malformed(self.varints.what)),
            n => {
                self.zeros_left = n - 1;
                Ok(0)
            }
        }
    }
}

/// Reads consecutive varints of one column, with a fast path for the one-byte values that
/// regular timestamps and small deltas produce.
struct Varints<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Varints<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Varints<'a> {
        Varints {
            bytes,
            pos: 0,
            what,
        }
    }

    #[inline]
    fn next(&mut self) -> Result<u64, SegmentError> {
        match self.bytes.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => {
                let (v, used) = get_varint(&self.bytes[self.pos.min(self.bytes.len())..])
                    .ok_or(SegmentError::Malformed(self.what))?;
                self.pos += used;
                Ok(v)
            }
        }
    }
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
    fn u16(&mut self, what: &'static str) -> Result<u16, SegmentError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
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
    #[inline]
    fn varint(&mut self, what: &'static str) -> Result<u64, SegmentError> {
        if let Some(&b) = self.bytes.get(self.pos).filter(|&&b| b < 0x80) {
            self.pos += 1;
            return Ok(u64::from(b));
        }
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
        let back = decode(&bytes).unwrap();
        assert_eq!(back, samples);
        // Bit-exact, -0.0 included (== alone would let it become 0.0).
        let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&samples));
        let sum = read_summary(&bytes).unwrap();
        assert_eq!(sum, summarize(&samples));
    }

    #[test]
    fn checked_summary_is_the_segments_own_and_catches_a_damaged_block_table() {
        let samples: Vec<Sample> = (0..3000)
            .map(|i| s(i * 10_000, (i % 13) as f64 * 0.5 + 0.25, None))
            .collect();
        let bytes = encode(&samples);
        assert_eq!(blocks(&bytes).unwrap().len(), 3);
        let total = read_summary(&bytes).unwrap();
        assert_eq!(checked_summary(&bytes).unwrap(), Some(total));
        assert_eq!(total, summarize(&samples));
        // A flipped bit anywhere in the header (the block entries are skipped, not read)
        // fails the check.
        let header_end = blocks(&bytes).unwrap()[0].body_start;
        for at in 1..header_end {
            let mut bad = bytes.clone();
            bad[at] ^= 0x10;
            assert!(checked_summary(&bad).is_err(), "byte {at} of {header_end}");
        }
        // Small and single-block segments: small ones have no stored summary (None).
        assert_eq!(checked_summary(&encode(&samples[..10])).unwrap(), None);
        let one = encode(&samples[..1000]);
        assert_eq!(
            checked_summary(&one).unwrap(),
            Some(read_summary(&one).unwrap())
        );
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
    fn version_1_segments_still_read() {
        let samples: Vec<Sample> = (0..3000)
            .map(|i| s(i * 10, i as f64 * 0.5, (i % 3 == 0).then_some("{}")))
            .collect();
        let v1 = encode_v1(&samples);
        assert_eq!(v1[0], 1);
        assert_eq!(decode(&v1).unwrap(), samples);
        assert_eq!(read_summary(&v1).unwrap(), summarize(&samples));
        let b = blocks(&v1).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].summary, summarize(&samples));
        assert_eq!(contains_timestamp(&v1, 29_990), Ok(true));
        assert_eq!(contains_timestamp(&v1, 29_991), Ok(false));
        let mut bad = v1.clone();
        bad[100] ^= 1;
        assert_eq!(blocks(&bad), Err(SegmentError::Checksum));
    }

    #[test]
    fn version_2_segments_still_read() {
        let samples: Vec<Sample> = (0..3000)
            .map(|i| s(i * 10, i as f64 * 0.25, (i % 3 == 0).then_some("{\"a\":1}")))
            .collect();
        let v2 = encode_v2(&samples);
        assert_eq!(v2[0], 2);
        assert_eq!(decode(&v2).unwrap(), samples);
        assert_eq!(read_summary(&v2).unwrap(), summarize(&samples));
        let b = blocks(&v2).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].summary, summarize(&samples[2048..]));
        assert_eq!(contains_timestamp(&v2, 29_990), Ok(true));
        assert_eq!(contains_timestamp(&v2, 29_991), Ok(false));
        let mut bad = v2.clone();
        bad[v2.len() - 5] ^= 1;
        assert_eq!(decode(&bad), Err(SegmentError::Checksum));
    }

    #[test]
    fn version_3_segments_still_read_and_append_re_encodes_them() {
        let samples: Vec<Sample> = (0..3000)
            .map(|i| {
                s(
                    1_795_000_000_000 + i * 10_000,
                    (i * 7 % 11) as f64 * 0.01,
                    None,
                )
            })
            .collect();
        let v3 = encode_version(&samples, SEGMENT_V3);
        assert_eq!(v3[0], 3);
        assert_eq!(decode(&v3).unwrap(), samples);
        assert_eq!(read_summary(&v3).unwrap(), summarize(&samples));
        assert_eq!(checked_summary(&v3).unwrap(), Some(summarize(&samples)));
        let b = blocks(&v3).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].summary, summarize(&samples[2048..]));
        assert_eq!(
            contains_timestamp(&v3, samples[2500].timestamp_ms),
            Ok(true)
        );
        // Appending to a version 3 segment is left to the caller's full re-encode.
        let later = [s(samples[2999].timestamp_ms + 1, 1.0, None)];
        assert_eq!(append(&v3, &later), Ok(None));
        let small = encode_version(&samples[..20], SEGMENT_V3);
        assert_eq!(small[..2], [3, 0]);
        assert_eq!(decode(&small).unwrap(), samples[..20]);
    }

    #[test]
    fn evenly_spaced_blocks_store_an_empty_timestamps_column() {
        let mut samples: Vec<Sample> = (0..3000)
            .map(|i| Sample {
                timestamp_ms: 1_795_000_000_000 + i * 10_000,
                value: (i % 7) as f64,
                metadata: None,
            })
            .collect();
        let regular = encode(&samples);
        assert_eq!(decode(&regular).unwrap(), samples);
        let mut l = Layout::default();
        l.add(&regular).unwrap();
        assert_eq!((l.blocks, l.timestamps), (3, 3 * 2));
        // One late sample in the second block: only that block codes its timestamps.
        samples[1500].timestamp_ms += 3;
        let jittered = encode(&samples);
        assert_eq!(decode(&jittered).unwrap(), samples);
        let mut l = Layout::default();
        l.add(&jittered).unwrap();
        assert!(l.timestamps > 3 * 2 && l.timestamps < 3 * 2 + 16, "{l:?}");
        // Appending keeps the full blocks and re-encodes the last one, still evenly spaced.
        samples[1500].timestamp_ms -= 3;
        let later: Vec<Sample> = (3000..3100)
            .map(|i| Sample {
                timestamp_ms: 1_795_000_000_000 + i * 10_000,
                value: 1.5,
                metadata: None,
            })
            .collect();
        let appended = append(&regular, &later).unwrap().unwrap();
        samples.extend(later);
        assert_eq!(decode(&appended).unwrap(), samples);
    }

    #[test]
    fn version_4_block_entries_and_bodies_are_leaner_than_version_3() {
        // A quiet counter (steps 0–5) at 10 s: what compare.sh's quiet dataset holds.
        let mut v = 10_000.0;
        let samples: Vec<Sample> = (0..4000)
            .map(|i| {
                v += (i * 7 % 6) as f64;
                s(1_795_000_000_000 + i * 10_000, v, None)
            })
            .collect();
        let (v3, v4) = (encode_version(&samples, SEGMENT_V3), encode(&samples));
        let n = blocks(&v4).unwrap().len();
        assert_eq!(n, 4);
        // Per block: the entry's count, its start and first value, and the body's first
        // timestamp and value are implied; the rest are small differences.
        assert!(
            v4.len() + 15 * n <= v3.len(),
            "v4 {} bytes vs v3 {} for {n} blocks",
            v4.len(),
            v3.len()
        );
        assert_eq!(decode(&v4).unwrap(), samples);
    }

    proptest! {
        /// Segments of several blocks in value regimes that exercise every form of a block
        /// summary (scaled integers, raw f64 fields, a sum too far from count × first to fit,
        /// -0.0, gaps and uneven spacing): every block's summary reads back bit-exact and
        /// every sample too.
        #[test]
        fn block_summaries_round_trip_bit_exact(
            n in 1025usize..4200,
            regime in proptest::collection::vec(0u8..6, 5),
            start in -1_000_000_000_000i64..2_000_000_000_000,
            seed in any::<u64>(),
        ) {
            let mut x = seed | 1;
            let mut next = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
            let mut ts = start;
            let samples: Vec<Sample> = (0..n)
                .map(|i| {
                    ts += 1 + (next() % 3) as i64 * if next() % 50 == 0 { 1_000_000 } else { 5_000 };
                    let r = next();
                    let value = match regime[i / 1024] {
                        0 => (i / 3) as f64,
                        1 => (r % 2001) as f64 / 100.0 - 10.0,
                        2 => f64::from_bits(r >> 2) * if r & 1 == 0 { 1.0 } else { -1.0 },
                        3 => if r % 2 == 0 { 9_007_199_254_740_992.0 } else { -9_007_199_254_740_991.0 },
                        4 => if r % 3 == 0 { -0.0 } else { 0.0 },
                        _ => (r % 1000) as f64 * 1e-9 + 1e6,
                    };
                    Sample { timestamp_ms: ts, value: if value.is_finite() { value } else { 1.5 }, metadata: None }
                })
                .collect();
            let bytes = encode(&samples);
            let sbits = |s: &Summary| (s.count, s.min_ts, s.max_ts, [s.min, s.max, s.sum, s.first, s.last].map(f64::to_bits));
            for (i, b) in blocks(&bytes).unwrap().iter().enumerate() {
                let want = summarize(&samples[i * BLOCK_SAMPLES..((i + 1) * BLOCK_SAMPLES).min(n)]);
                prop_assert_eq!(sbits(&b.summary), sbits(&want));
            }
            let checked = checked_summary(&bytes);
            prop_assert!(checked.is_ok(), "{:?}", checked);
            prop_assert_eq!(checked.unwrap().map(|s| sbits(&s)), Some(sbits(&summarize(&samples))));
            let back = decode(&bytes).unwrap();
            let bits = |v: &[Sample]| v.iter().map(|s| (s.timestamp_ms, s.value.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&samples));
        }
    }

    #[test]
    fn repeated_metadata_is_stored_once_per_block() {
        let meta = format!("{{\"host\":\"{}\"}}", "w".repeat(200));
        let samples: Vec<Sample> = (0..1024)
            .map(|i| s(i * 10_000, 1.0, (i % 2 == 0).then_some(meta.as_str())))
            .collect();
        let bytes = encode(&samples);
        check(samples);
        // One copy of the 211-byte object, one bit or so per sample for the index.
        assert!(bytes.len() < 211 + 1024 / 4 + 120, "{} bytes", bytes.len());
        // Samples without metadata cost nothing for it.
        let plain: Vec<Sample> = (0..1024).map(|i| s(i * 10_000, 1.0, None)).collect();
        assert!(encode(&plain).len() < 80, "{} bytes", encode(&plain).len());
    }

    #[test]
    fn small_segments_carry_no_summary() {
        // 20 points of a counter at 10 s: the high-cardinality shape, where per-segment
        // overhead is most of the bytes.
        let samples: Vec<Sample> = (0..20)
            .map(|i| s(1_700_000_000_000 + i * 10_000, (1000 + i * 3) as f64, None))
            .collect();
        let bytes = encode(&samples);
        assert_eq!(bytes[..2], [SEGMENT_VERSION, 0], "the small form");
        assert!(bytes.len() <= 32, "{} bytes (version 2: 180)", bytes.len());
        check(samples);
        // One checksum covers it all: every flipped byte is caught.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn blocks_summarize_their_own_samples() {
        // 2500 samples: blocks of 1024, 1024 and 452; metadata only in the middle block.
        let samples: Vec<Sample> = (0..2500)
            .map(|i| {
                let meta = (1024..2048).contains(&i).then_some("{\"k\":1}");
                s(1_000 + i * 7, (i % 11) as f64, meta)
            })
            .collect();
        let bytes = encode(&samples);
        assert_eq!(decode(&bytes).unwrap(), samples);
        let b = blocks(&bytes).unwrap();
        assert_eq!(b.len(), 3);
        let mut cols = Columns::default();
        for (i, (block, chunk)) in b.iter().zip(samples.chunks(BLOCK_SAMPLES)).enumerate() {
            assert_eq!(block.summary, summarize(chunk), "block {i}");
            decode_block(&bytes, block, &mut cols, true).unwrap();
            let ts: Vec<i64> = chunk.iter().map(|s| s.timestamp_ms).collect();
            assert_eq!(cols.timestamps, ts);
            assert_eq!(cols.metadata.len(), if i == 1 { chunk.len() } else { 0 });
        }
        for ts in [1_000, 1_000 + 1024 * 7, 1_000 + 2499 * 7] {
            assert_eq!(contains_timestamp(&bytes, ts), Ok(true), "{ts}");
            assert_eq!(contains_timestamp(&bytes, ts + 1), Ok(false), "{ts}");
        }
    }

    #[test]
    fn integer_values_take_few_bytes() {
        let samples: Vec<Sample> = (0..1000)
            .map(|i| s(1_700_000_000_000 + i * 10_000, (i % 7) as f64, None))
            .collect();
        let bytes = encode(&samples);
        // Regular 10 s spacing: one byte per timestamp; small integer deltas: one byte each.
        assert!(
            bytes.len() < 2100 + HEADER_LEN + 2 + BLOCK_ENTRY_LEN + 4 + 15,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn decimal_values_are_stored_as_scaled_integers_bit_exact() {
        // A 2-decimal gauge moving by cents: ~2 bytes a sample instead of 9.
        let mut v = 50.0f64;
        let samples: Vec<Sample> = (0..1000)
            .map(|i| {
                v = ((v * 100.0).round() + ((i * 37) % 201 - 100) as f64) / 100.0;
                s(1_700_000_000_000 + i * 10_000, v, None)
            })
            .collect();
        let bytes = encode(&samples);
        assert!(bytes.len() < 3200, "{} bytes", bytes.len());
        check(samples);
        // Mixed scales, negatives, -0.0 and values that only look decimal stay exact.
        check(vec![
            s(1, 0.1, None),
            s(2, -0.25, None),
            s(3, 1e-9, None),
            s(4, 123456.789, None),
            s(5, -0.0, None),
        ]);
        check(vec![s(1, 0.1, None), s(2, 1.0 / 3.0, None)]);
        check(vec![
            s(1, 0.1, None),
            s(2, 9.007e15, None),
            s(3, 1e300, None),
        ]);
    }

    #[test]
    fn a_regular_constant_series_costs_almost_nothing() {
        let samples: Vec<Sample> = (0..MAX_SEGMENT_SAMPLES as i64)
            .map(|i| s(1_700_000_000_000 + i * 10_000, 42.0, None))
            .collect();
        let bytes = encode(&samples);
        // 65,536 samples: a header, then per block of 1024 a table entry and ~30 bytes of
        // columns (~46 bytes): under 0.05 bytes a sample.
        assert!(bytes.len() < 3200, "{} bytes", bytes.len());
        check(samples);
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
            vals in proptest::collection::vec(prop_oneof![
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                (-1000i64..1000).prop_map(|v| v as f64),
                (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
                (-1000i64..1000, 0usize..=9).prop_map(|(m, e)| m as f64 / POW10[e]),
                Just(-0.0),
            ], 300),
            metas in proptest::collection::vec(proptest::option::of("[a-z]{0,8}"), 300),
        ) {
            let samples: Vec<Sample> = std::mem::take(&mut ts).into_iter().enumerate()
                .map(|(i, t)| Sample { timestamp_ms: t, value: vals[i], metadata: metas[i].clone().filter(|m| !m.is_empty()).map(Into::into) })
                .collect();
            let bytes = encode(&samples);
            let back = decode(&bytes).unwrap();
            let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&samples));
            // The header's summary is bit-exact too (scaled integers or raw f64).
            let (a, b) = (read_summary(&bytes).unwrap(), summarize(&samples));
            let sbits = |s: Summary| [s.min, s.max, s.sum, s.first, s.last].map(f64::to_bits);
            prop_assert_eq!(sbits(a), sbits(b));
            prop_assert_eq!(a, b);
            prop_assert_eq!(back, samples);
        }

        #[test]
        fn appending_equals_encoding_everything(
            deltas in proptest::collection::vec(1i64..100_000, 2..3000),
            cents in proptest::collection::vec(-500i64..500, 3000),
            metas in proptest::collection::vec(proptest::option::of("[a-z]{1,4}"), 3000),
            split in 0.0f64..1.0,
        ) {
            let mut ts = 1_700_000_000_000i64;
            let samples: Vec<Sample> = deltas.iter().enumerate().map(|(i, d)| {
                ts += d;
                Sample { timestamp_ms: ts, value: cents[i] as f64 / 100.0, metadata: metas[i].clone().map(Into::into) }
            }).collect();
            let k = ((samples.len() as f64 * split) as usize).clamp(1, samples.len() - 1);
            let (old, later) = samples.split_at(k);
            let existing = encode(old);
            let Some(appended) = append(&existing, later).unwrap() else {
                // Only the small form is left to the caller.
                prop_assert!(old.len() <= SMALL_SEGMENT_SAMPLES);
                return Ok(());
            };
            prop_assert_eq!(decode(&appended).unwrap(), samples.clone());
            // Every block summary is what the encoder writes; the total agrees except for
            // the rounding of its sum.
            let blocks = blocks(&appended).unwrap();
            let whole = encode(&samples);
            let fresh = super::blocks(&whole).unwrap();
            let block_counts = |b: &[Block]| b.iter().map(|b| b.summary.count).collect::<Vec<_>>();
            prop_assert_eq!(block_counts(&blocks), block_counts(&fresh));
            for (a, b) in blocks.iter().zip(&fresh) {
                prop_assert_eq!(a.summary, b.summary);
            }
            let (a, b) = (read_summary(&appended).unwrap(), summarize(&samples));
            prop_assert_eq!((a.count, a.min_ts, a.max_ts, a.min, a.max, a.first, a.last),
                (b.count, b.min_ts, b.max_ts, b.min, b.max, b.first, b.last));
            prop_assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0));
            // The full blocks of the old segment are kept byte for byte.
            let kept = old.len() / BLOCK_SAMPLES;
            let old_blocks = super::blocks(&existing).unwrap();
            for (a, b) in blocks.iter().zip(&old_blocks).take(kept) {
                prop_assert_eq!(&appended[a.body_start..a.body_start + a.body_len],
                    &existing[b.body_start..b.body_start + b.body_len]);
            }
            // Samples at or before the segment's end are the caller's to merge.
            prop_assert_eq!(append(&existing, &samples[k - 1..]).unwrap(), None);
        }

        #[test]
        fn decimal_blocks_round_trip_bit_exact(
            ms in proptest::collection::vec(-10_000_000i64..10_000_000, 1..2000),
            e in 1usize..=9,
        ) {
            let samples: Vec<Sample> = ms.iter().enumerate()
                .map(|(i, m)| Sample { timestamp_ms: i as i64 * 1000, value: *m as f64 / POW10[e], metadata: None })
                .collect();
            let bytes = encode(&samples);
            let back = decode(&bytes).unwrap();
            let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&samples));
            // Scaled integers: far below 8 bytes a value.
            prop_assert!(bytes.len() < samples.len() * 6 + 400, "{} bytes", bytes.len());
        }

        #[test]
        fn runs_of_zeros_round_trip(
            steps in proptest::collection::vec(prop_oneof![Just(10_000i64), Just(10_000), Just(10_000), 1i64..50_000], 1..1500),
            vals in proptest::collection::vec(prop_oneof![Just(0i64), Just(0), Just(0), -3i64..3], 1500),
            scale in 0usize..3,
        ) {
            let mut t = 1_700_000_000_000i64;
            let samples: Vec<Sample> = steps.iter().zip(&vals).map(|(step, v)| {
                t += step;
                let mut value = *v as f64 + 40.0;
                if scale > 0 { value /= POW10[scale]; }
                Sample { timestamp_ms: t, value, metadata: None }
            }).collect();
            let bytes = encode(&samples);
            let back = decode(&bytes).unwrap();
            let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&samples));
            prop_assert_eq!(back, samples);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
