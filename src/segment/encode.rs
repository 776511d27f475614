//! Writing a segment: the block form (version 4; version 3 for tests), each block's body of
//! timestamps, values and metadata, and the choice of value codec. Reading is `decode`'s.

use super::*;

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
pub(super) fn encode_version(samples: &[Sample], version: u8) -> Vec<u8> {
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

/// The block form of a version 4 (or 3) segment: version, block count, the total's
/// summary, one table entry per block (its summary unless it is the only block, body
/// length, body CRC), the header's CRC, then the bodies. Every block but the last holds
/// exactly `BLOCK_SAMPLES` samples.
pub(super) fn assemble(
    bodies: &[(Summary, Cow<'_, [u8]>)],
    total_summary: &Summary,
    version: u8,
) -> Vec<u8> {
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

/// The body of a block: timestamps, values, metadata (docs/format.md). A `lean` body (the
/// blocks of a version 4 segment's block form) leaves out the first timestamp and, for
/// integer and decimal values, the first value: its block summary holds both.
pub(super) fn encode_block(samples: &[Sample], lean: bool) -> Vec<u8> {
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
pub(super) fn exact_int(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() <= MAX_EXACT_INT && ((v as i64) as f64).to_bits() == v.to_bits()
}

/// The fewest fractional decimal digits `e` (1..=9) with which every value is exactly
/// `m / 10^e` for an integer `m` small enough to be exact; None for true floats.
pub(super) fn decimal_exponent(samples: &[Sample]) -> Option<usize> {
    (1..=MAX_DECIMAL_DIGITS).find(|&e| {
        samples.iter().all(|s| {
            let m = (s.value * POW10[e]).round();
            // Through i64, as the decoder sees it (so -0.0 does not pass as 0).
            m.abs() <= MAX_EXACT_INT
                && ((m as i64) as f64 / POW10[e]).to_bits() == s.value.to_bits()
        })
    })
}
