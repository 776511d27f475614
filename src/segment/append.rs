//! Adding later samples to a segment by re-encoding only its last block, so a slow metric
//! costs one block per compaction round, not its whole segment.

use super::*;

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
pub(super) fn decode_samples(bytes: &[u8], block: &Block) -> Result<Vec<Sample>, SegmentError> {
    let mut cols = Columns::default();
    decode_block(bytes, block, &mut cols, true)?;
    Ok(cols.into_samples())
}
