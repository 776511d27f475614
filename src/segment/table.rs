//! The block table: reading a segment's header into its blocks (summary, body range,
//! checksum) for versions 1 to 4, and the header-only reads that prune by time.

use super::*;

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
pub(super) fn read_table(
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

/// One block of a segment as its header describes it: a summary whose numbers are covered by
/// a checksum, and where its body lies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Block {
    pub summary: Summary,
    pub(super) body_start: usize,
    pub(super) body_len: usize,
    /// None for a v1 segment, whose single checksum `blocks` has already verified.
    pub(super) crc: Option<u32>,
    /// The segment version, which says how the body is laid out.
    pub(super) version: u8,
    /// The body leaves its first timestamp and value to the summary (version 4 blocks).
    pub(super) lean: bool,
}

impl Block {
    /// The block's body within its segment's `bytes`, its checksum verified (a v1 body's was
    /// verified with the whole segment by `blocks`).
    pub(super) fn checked_body<'b>(&self, bytes: &'b [u8]) -> Result<&'b [u8], SegmentError> {
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

pub(super) fn blocks_v3(bytes: &[u8], version: u8) -> Result<Vec<Block>, SegmentError> {
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
