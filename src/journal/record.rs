//! Journal framing: the file header and the checksummed record frame (`docs/format.md`,
//! "Journal file"). Pure: bytes in, bytes out.

use crate::ingest::ValidMetric;
use crate::segment::{get_varint, put_varint};

pub const MAGIC: &[u8; 8] = b"STHKJRNL";
pub const HEADER_LEN: usize = 24;
pub const FRAME_HEADER_LEN: usize = 8;
/// A frame longer than this is damage, not data: 100 metrics at their size limits are
/// ~460 KiB, so 16 MiB leaves room without trusting a garbage length.
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// Journal file header: magic, format version, shard, generation (all little-endian).
pub fn encode_header(format_version: u32, shard: u32, generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&format_version.to_le_bytes());
    h[12..16].copy_from_slice(&shard.to_le_bytes());
    h[16..24].copy_from_slice(&generation.to_le_bytes());
    h
}

#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    pub shard: u32,
    pub generation: u64,
}

pub fn decode_header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    Some(Header {
        format_version: u32::from_le_bytes(bytes[8..12].try_into().ok()?),
        shard: u32::from_le_bytes(bytes[12..16].try_into().ok()?),
        generation: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
    })
}

/// Appends one framed record holding `metrics` of `project` to `out`.
pub fn encode_record<'a, 'b: 'a>(
    out: &mut Vec<u8>,
    project: &str,
    metrics: impl Iterator<Item = &'a ValidMetric<'b>>,
    count: usize,
) {
    let frame_start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    put_str(out, project);
    put_varint(out, count as u64);
    for m in metrics {
        put_str(out, m.metric_id);
        put_str(out, m.metric_name);
        put_opt_str(out, m.unit);
        out.extend_from_slice(&m.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&m.value.to_le_bytes());
        put_opt_str(out, m.metadata.as_deref());
    }
    let payload_len = out.len() - frame_start - FRAME_HEADER_LEN;
    let crc = crc32fast::hash(&out[frame_start + FRAME_HEADER_LEN..]);
    out[frame_start..frame_start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[frame_start + 4..frame_start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// `None` is length 0; `Some(s)` is `len + 1` then the bytes.
fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_varint(out, 0),
        Some(s) => {
            put_varint(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// One decoded record, borrowing from the file bytes.
#[derive(Debug, PartialEq)]
pub struct Record<'a> {
    pub project: &'a str,
    pub samples: Vec<RecordSample<'a>>,
}

#[derive(Debug, PartialEq)]
pub struct RecordSample<'a> {
    pub metric_id: &'a str,
    pub metric_name: &'a str,
    pub unit: Option<&'a str>,
    pub timestamp_ms: i64,
    pub value: f64,
    pub metadata: Option<&'a str>,
}

/// Why a frame could not be read; recovery stops at the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the frame says: a write cut short by a crash.
    Torn,
    Checksum,
    /// The checksum matched but the payload does not parse (a bug or deliberate damage).
    Malformed(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Torn => write!(f, "torn record (file ends inside it)"),
            FrameError::Checksum => write!(f, "record checksum mismatch"),
            FrameError::Malformed(w) => write!(f, "malformed record: {w}"),
        }
    }
}

/// Reads the frame at the start of `bytes`; returns the record and the frame's length.
pub fn decode_frame(bytes: &[u8]) -> Result<(Record<'_>, usize), FrameError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Torn);
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len > MAX_PAYLOAD_BYTES {
        return Err(FrameError::Malformed("length"));
    }
    let payload = bytes
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
        .ok_or(FrameError::Torn)?;
    if crc32fast::hash(payload) != crc {
        return Err(FrameError::Checksum);
    }
    let mut r = Cursor { b: payload, pos: 0 };
    let project = r.str()?;
    let count = r.varint()? as usize;
    if count > len {
        return Err(FrameError::Malformed("sample count"));
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        samples.push(RecordSample {
            metric_id: r.str()?,
            metric_name: r.str()?,
            unit: r.opt_str()?,
            timestamp_ms: i64::from_le_bytes(
                r.take(8)?
                    .try_into()
                    .map_err(|_| FrameError::Malformed("timestamp"))?,
            ),
            value: f64::from_le_bytes(
                r.take(8)?
                    .try_into()
                    .map_err(|_| FrameError::Malformed("value"))?,
            ),
            metadata: r.opt_str()?,
        });
    }
    if r.pos != payload.len() {
        return Err(FrameError::Malformed("trailing bytes"));
    }
    Ok((Record { project, samples }, FRAME_HEADER_LEN + len))
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(FrameError::Malformed("length"))?;
        let out = self
            .b
            .get(self.pos..end)
            .ok_or(FrameError::Malformed("field past end"))?;
        self.pos = end;
        Ok(out)
    }
    fn varint(&mut self) -> Result<u64, FrameError> {
        let (v, used) = get_varint(&self.b[self.pos..]).ok_or(FrameError::Malformed("varint"))?;
        self.pos += used;
        Ok(v)
    }
    fn str(&mut self) -> Result<&'a str, FrameError> {
        let n = self.varint()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| FrameError::Malformed("utf-8"))
    }
    fn opt_str(&mut self) -> Result<Option<&'a str>, FrameError> {
        match self.varint()? as usize {
            0 => Ok(None),
            n => std::str::from_utf8(self.take(n - 1)?)
                .map(Some)
                .map_err(|_| FrameError::Malformed("utf-8")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metric<'a>(
        id: &'a str,
        ts: i64,
        v: f64,
        unit: Option<&'a str>,
        meta: Option<&str>,
    ) -> ValidMetric<'a> {
        ValidMetric {
            metric_id: id,
            metric_name: "a name",
            unit,
            timestamp_ms: ts,
            value: v,
            metadata: meta.map(Into::into),
        }
    }

    #[test]
    fn round_trips_a_record() {
        let ms = [
            metric("a", 1, 2.5, Some("USD"), None),
            metric("b", 7, -1.0, Some(""), Some("{\"k\":1}")),
        ];
        let mut buf = Vec::new();
        encode_record(&mut buf, "prj", ms.iter(), ms.len());
        let (rec, used) = decode_frame(&buf).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(rec.project, "prj");
        assert_eq!(rec.samples.len(), 2);
        assert_eq!(rec.samples[1].unit, Some(""));
        assert_eq!(rec.samples[1].metadata, Some("{\"k\":1}"));
        assert_eq!(
            (rec.samples[0].timestamp_ms, rec.samples[0].value),
            (1, 2.5)
        );
    }

    #[test]
    fn every_truncation_is_torn_and_every_flip_is_caught() {
        let ms = [metric("a", 1, 2.5, None, Some("{}"))];
        let mut buf = Vec::new();
        encode_record(&mut buf, "p", ms.iter(), 1);
        for cut in 0..buf.len() {
            assert!(decode_frame(&buf[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut c = buf.clone();
            c[i] ^= 1;
            assert!(decode_frame(&c).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn header_round_trips() {
        let h = encode_header(1, 3, 99);
        assert_eq!(
            decode_header(&h),
            Some(Header {
                format_version: 1,
                shard: 3,
                generation: 99
            })
        );
        assert_eq!(decode_header(&h[..10]), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_frame(&bytes);
        }
    }
}
