//! Journal framing (`docs/format.md`, "Journal file"): the file header, *records* (one
//! shard's part of one request) and *frames* (one group commit: every record of one sync,
//! under one checksum, so a crash keeps or drops a whole group — and so a whole request).
//! Pure: bytes in, bytes out.

use crate::ingest::ValidMetric;
use crate::segment::{get_varint, put_varint};

pub const MAGIC: &[u8; 8] = b"STHKJRNL";
pub const HEADER_LEN: usize = 24;
pub const FRAME_HEADER_LEN: usize = 8;
/// A frame longer than this is damage, not data. The flusher cuts frames at
/// `MAX_FRAME_TARGET_BYTES`; one request adds at most ~1 MiB beyond that (a webhook body),
/// or `ingest::series::MAX_BATCH_JOURNAL_BYTES` (a push).
pub const MAX_PAYLOAD_BYTES: usize = 64 << 20;
/// The flusher starts a new frame (and sync) once a frame reaches this size, bounding the
/// memory of one group commit.
pub const MAX_FRAME_TARGET_BYTES: usize = 8 << 20;

/// Journal file header: magic, format version, 4 reserved zero bytes, generation (all
/// little-endian).
pub fn encode_header(format_version: u32, generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&format_version.to_le_bytes());
    h[16..24].copy_from_slice(&generation.to_le_bytes());
    h
}

#[derive(Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u32,
    pub generation: u64,
}

pub fn decode_header(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    Some(Header {
        format_version: u32::from_le_bytes(bytes[8..12].try_into().ok()?),
        generation: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
    })
}

/// Appends one record holding `metrics` of `project` to `out` (no frame: see `Frame`).
pub fn encode_record<'a, 'b: 'a>(
    out: &mut Vec<u8>,
    project: &str,
    metrics: impl Iterator<Item = &'a ValidMetric<'b>>,
    count: usize,
) {
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
}

/// Builds a frame around records: `u32 payload length, u32 CRC-32 of the payload, payload`,
/// where the payload is `varint record count` then the records back to back.
pub struct FrameBuilder {
    buf: Vec<u8>,
    records: u64,
}

/// Room for the frame header plus the longest record count varint, filled in by `finish`.
const FRAME_PREFIX_ROOM: usize = FRAME_HEADER_LEN + 10;

impl FrameBuilder {
    pub fn new(capacity: usize) -> FrameBuilder {
        let mut buf = Vec::with_capacity(capacity + FRAME_PREFIX_ROOM);
        buf.resize(FRAME_PREFIX_ROOM, 0);
        FrameBuilder { buf, records: 0 }
    }

    pub fn push(&mut self, record: &[u8]) {
        self.buf.extend_from_slice(record);
        self.records += 1;
    }

    /// The frame's bytes, ready to append to a journal file.
    pub fn finish(&mut self) -> &[u8] {
        let mut count = Vec::with_capacity(10);
        put_varint(&mut count, self.records);
        let start = FRAME_PREFIX_ROOM - count.len() - FRAME_HEADER_LEN;
        self.buf[start + FRAME_HEADER_LEN..FRAME_PREFIX_ROOM].copy_from_slice(&count);
        let payload_len = self.buf.len() - start - FRAME_HEADER_LEN;
        let crc = crc32fast::hash(&self.buf[start + FRAME_HEADER_LEN..]);
        self.buf[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        &self.buf[start..]
    }
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

/// A record's samples decode straight into what the memtable applies.
pub use crate::memtable::NewSample as RecordSample;

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
            FrameError::Torn => write!(f, "torn frame (the file ends inside it)"),
            FrameError::Checksum => write!(f, "frame checksum mismatch"),
            FrameError::Malformed(w) => write!(f, "malformed record: {w}"),
        }
    }
}

/// Reads the frame at the start of `bytes`; returns its records and the frame's length.
pub fn decode_frame(bytes: &[u8]) -> Result<(Vec<Record<'_>>, usize), FrameError> {
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
    let records = r.varint()? as usize;
    if records > len {
        return Err(FrameError::Malformed("record count"));
    }
    let mut out = Vec::with_capacity(records);
    for _ in 0..records {
        out.push(decode_record(&mut r)?);
    }
    if r.pos != payload.len() {
        return Err(FrameError::Malformed("trailing bytes"));
    }
    Ok((out, FRAME_HEADER_LEN + len))
}

/// Decodes one record from an unframed buffer (as `encode_record` wrote it).
pub fn decode_record_bytes(bytes: &[u8]) -> Result<Record<'_>, FrameError> {
    let mut r = Cursor { b: bytes, pos: 0 };
    let rec = decode_record(&mut r)?;
    if r.pos != bytes.len() {
        return Err(FrameError::Malformed("trailing bytes"));
    }
    Ok(rec)
}

fn decode_record<'a>(r: &mut Cursor<'a>) -> Result<Record<'a>, FrameError> {
    let project = r.str()?;
    let count = r.varint()? as usize;
    if count > r.b.len() {
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
    Ok(Record { project, samples })
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
        let mut rec_a = Vec::new();
        encode_record(&mut rec_a, "prj", ms.iter(), ms.len());
        let mut rec_b = Vec::new();
        encode_record(&mut rec_b, "other", ms[..1].iter(), 1);
        let mut f = FrameBuilder::new(0);
        f.push(&rec_a);
        f.push(&rec_b);
        let buf = f.finish().to_vec();
        let (recs, used) = decode_frame(&buf).unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(
            (recs.len(), recs[1].project, recs[1].samples.len()),
            (2, "other", 1)
        );
        let rec = &recs[0];
        assert_eq!(decode_record_bytes(&rec_a).unwrap(), recs[0]);
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
        let mut rec = Vec::new();
        encode_record(&mut rec, "p", ms.iter(), 1);
        let mut f = FrameBuilder::new(0);
        f.push(&rec);
        let buf = f.finish().to_vec();
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
        let h = encode_header(1, 99);
        assert_eq!(
            decode_header(&h),
            Some(Header {
                format_version: 1,
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
