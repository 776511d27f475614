//! Where a segment's bytes go: its header (version, summary, block table, checksums) and,
//! per block, the timestamps, values and metadata columns, with the encoding each values
//! column uses. Read-only accounting for `stathook check --sizes`; decodes nothing but
//! column headers (block checksums are verified), and trusts nothing it has not
//! bounds-checked (a damaged segment is an error, never a panic).

use super::{blocks, column, SegmentError, SEGMENT_V3, SEGMENT_VERSION};
use super::{METADATA_DICTIONARY, METADATA_NONE};
use super::{VALUES_DECIMAL, VALUES_INT, VALUES_RAW, VALUES_XOR};
use std::collections::BTreeMap;

/// Byte totals over the segments added to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub segments: u64,
    pub samples: u64,
    pub blocks: u64,
    /// Everything outside the block bodies: version, summary, block table, checksums.
    pub header: u64,
    pub timestamps: u64,
    /// The values columns, with their kind and exponent bytes.
    pub values: u64,
    /// The metadata columns (one byte a block when no sample has metadata).
    pub metadata: u64,
    /// Segments of versions 1 and 2, counted whole.
    pub older: u64,
    /// Values columns by encoding (e.g. `decimal/radix`, `decimal/plain+zstd`): blocks, bytes.
    pub value_encodings: BTreeMap<String, (u64, u64)>,
}

impl Layout {
    /// Adds one segment's bytes.
    pub fn add(&mut self, bytes: &[u8]) -> Result<(), SegmentError> {
        let blocks = blocks(bytes)?;
        self.segments += 1;
        self.blocks += blocks.len() as u64;
        self.samples += blocks
            .iter()
            .map(|b| u64::from(b.summary.count))
            .sum::<u64>();
        if !matches!(bytes[0], SEGMENT_V3 | SEGMENT_VERSION) {
            self.older += bytes.len() as u64;
            return Ok(());
        }
        let mut in_bodies = 0u64;
        for b in &blocks {
            self.add_body(b.checked_body(bytes)?)?;
            in_bodies += b.body_len as u64;
        }
        self.header += bytes.len() as u64 - in_bodies;
        Ok(())
    }

    fn add_body(&mut self, body: &[u8]) -> Result<(), SegmentError> {
        let mut pos = 0;
        column::read(body, &mut pos, "timestamps")?;
        self.timestamps += pos as u64;

        let start = pos;
        let bad = SegmentError::Malformed("values");
        let kind = *body.get(pos).ok_or(bad)?;
        pos += 1;
        let kind_name = match kind {
            VALUES_RAW => "raw",
            VALUES_XOR => "xor",
            VALUES_INT => "int",
            VALUES_DECIMAL => {
                pos += 1; // the exponent
                "decimal"
            }
            _ => return Err(SegmentError::Malformed("value codec")),
        };
        let (encoding, _) = column::read(body, &mut pos, "values")?;
        let name = format!("{kind_name}/{}", encoding_name(kind, encoding));
        let entry = self.value_encodings.entry(name).or_default();
        entry.0 += 1;
        entry.1 += (pos - start) as u64;
        self.values += (pos - start) as u64;

        let start = pos;
        let bad = SegmentError::Malformed("metadata");
        match *body.get(pos).ok_or(bad)? {
            METADATA_NONE => pos += 1,
            METADATA_DICTIONARY => {
                pos += 1;
                let (_, used) = super::get_varint(body.get(pos..).ok_or(bad)?).ok_or(bad)?;
                pos += used;
                column::read(body, &mut pos, "metadata")?;
                column::read(body, &mut pos, "metadata")?;
            }
            _ => return Err(SegmentError::Malformed("metadata codec")),
        }
        self.metadata += (pos - start) as u64;
        if pos != body.len() {
            return Err(SegmentError::Malformed("block length"));
        }
        Ok(())
    }
}

fn encoding_name(kind: u8, encoding: u8) -> String {
    let base = match (kind, encoding & !column::ZSTD) {
        (VALUES_RAW | VALUES_XOR, _) => "bytes",
        (_, column::PLAIN) => "plain",
        (_, column::RUNS) => "runs",
        (_, column::PACKED) => "packed",
        (_, column::RADIX) => "radix",
        _ => "unknown",
    };
    if encoding & column::ZSTD != 0 {
        format!("{base}+zstd")
    } else {
        base.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{encode, Sample};

    fn gauge(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                timestamp_ms: 1_700_000_000_000 + i as i64 * 10_000,
                value: ((i * 7919) % 41) as f64 / 100.0,
                metadata: (i % 3 == 0).then(|| r#"{"host":"a"}"#.into()),
            })
            .collect()
    }

    #[test]
    fn parts_add_up_to_the_segment_bytes() {
        for n in [1, 40, 64, 65, 1024, 3000] {
            let bytes = encode(&gauge(n));
            let mut l = Layout::default();
            l.add(&bytes).unwrap();
            assert_eq!(l.samples, n as u64);
            assert_eq!(l.blocks, n.div_ceil(1024) as u64);
            assert_eq!(
                l.header + l.timestamps + l.values + l.metadata,
                bytes.len() as u64,
                "n = {n}"
            );
            let by_encoding: u64 = l.value_encodings.values().map(|&(_, b)| b).sum();
            assert_eq!(by_encoding, l.values);
            assert!(l.metadata > l.blocks, "metadata dictionaries are counted");
        }
    }

    #[test]
    fn damaged_segments_are_errors() {
        let bytes = encode(&gauge(2000));
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                Layout::default().add(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
