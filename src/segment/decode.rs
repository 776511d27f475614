//! Reading samples back: whole segments, one block, or only the timestamp and value columns
//! (`Columns`) that aggregation needs; every body's checksum is verified first.

use super::*;

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
    pub(super) ints: Vec<i64>,
    pub(super) scratch: Vec<u8>,
}

impl Columns {
    pub(super) fn clear(&mut self) {
        self.timestamps.clear();
        self.values.clear();
        self.metadata.clear();
    }

    /// The columns as samples (decoded with metadata, or the samples carry none).
    pub(super) fn into_samples(self) -> Vec<Sample> {
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
pub(super) fn decode_block_into(
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
pub(super) struct Lean {
    /// The first timestamp.
    pub(super) min_ts: i64,
    /// The last timestamp: with `min_ts` and the count, the whole timestamps column of an
    /// evenly spaced block, whose body then holds an empty one.
    pub(super) max_ts: i64,
    /// The first value.
    pub(super) first: f64,
}

/// Appends the samples of a version 3 or 4 block body; returns whether it pushed metadata.
/// `lean`: what a lean body leaves out (version 4 blocks).
pub(super) fn decode_body_v3(
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
