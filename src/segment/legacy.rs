//! Versions 1 and 2: the checksum check a version 1 segment needs when read, and (for tests
//! only) the encoders of both, so tests prove that old segments still read.

use super::*;

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
pub(super) fn push_summary(out: &mut Vec<u8>, version: u8, summary: &Summary) {
    out.push(version);
    push_summary_fields(out, summary);
}

/// The 60 bytes of a summary, as `read_summary_fields` reads them (v2 segment header and
/// each block entry).
#[cfg(test)]
pub(super) fn push_summary_fields(out: &mut Vec<u8>, summary: &Summary) {
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
pub(super) enum Codecs {
    Version2,
    Version1,
}

/// The three columns of sorted samples: the body of a v2 block, or of a whole v1 segment.
#[cfg(test)]
pub(super) fn encode_columns(out: &mut Vec<u8>, samples: &[Sample], codecs: Codecs) {
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

/// Pushes a column of zigzagged integers after `prefix`: as plain varints (`plain`), or
/// with runs of zeros collapsed (`runs`: each run of n ≥ 1 zeros is varint 0 then varint
/// n), whichever is smaller. Regular timestamps and constant or quiet series are almost
/// all zeros: a block of them shrinks from a byte per sample to a few bytes.
#[cfg(test)]
pub(super) fn push_varint_column(
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
pub(super) fn push_column(out: &mut Vec<u8>, codec: u8, bytes: &[u8]) {
    out.push(codec);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Checks a v1 segment's trailing CRC-32 over every preceding byte.
pub(super) fn verify_v1(bytes: &[u8]) -> Result<(), SegmentError> {
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
