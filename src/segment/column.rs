//! Columns of a version 3 segment block: how a sequence of integers (timestamp
//! delta-of-deltas, value deltas, metadata dictionary indexes) or of raw bytes becomes bytes,
//! and back. Pure; the block layout that strings columns together is `segment`'s.
//!
//! A column is `u8 encoding, varint length, payload`. Integer encodings (`docs/format.md`):
//! - `PLAIN`: zigzag varints;
//! - `RUNS`: zigzag varints, each run of n ≥ 1 zeros written as varint 0, varint n;
//! - `PACKED`: the first `PACKED_HEAD` integers as zigzag varints, then frame of reference:
//!   zigzag varint `min` of the rest, `u8` bit width w, and every `x - min` in w bits, least
//!   significant bit first. A regular 10 s series packs its delta-of-deltas in 0 bits; a
//!   counter growing by 0–5 in 3.
//!
//! Byte columns use `RAW`. Either kind may be wrapped: `encoding | ZSTD` means the payload is
//! `varint raw length` then a zstd frame of the inner payload — kept only when smaller.
//! The encoder writes whichever is smallest; the decoder bounds every length by the block's
//! sample count, so no input makes it allocate more than a few bytes per sample.

use super::varint::{get_varint, put_varint, unzigzag, zigzag};
use super::{SegmentError, Zigzags};
use std::cell::RefCell;

pub const PLAIN: u8 = 0;
pub const RUNS: u8 = 1;
pub const PACKED: u8 = 2;
pub const RAW: u8 = 0;
pub const ZSTD: u8 = 0x80;
/// Integers before the packed frame: a timestamp column starts with an absolute time and a
/// first delta, both far from the delta-of-deltas that follow.
const PACKED_HEAD: usize = 2;
/// zstd level: on random small steps level 1 compressed a few percent better than 3 and 9
/// (its match finder makes fewer poor matches), 19 ~10 % better at ~20× the CPU.
const ZSTD_LEVEL: i32 = 1;
/// Shorter payloads are not worth a zstd frame (~10 bytes of header).
const ZSTD_MIN_LEN: usize = 64;

thread_local! {
    static ZSTD_COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static ZSTD_DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Appends an integer column holding `ints`, in its smallest encoding. Sizes are computed
/// first and only the winner is written (compaction encodes every sample once per round).
/// Ties go to the simplest encoding: plain, then runs, then packed.
pub fn push_ints(out: &mut Vec<u8>, ints: &[i64]) {
    let plain_len: usize = ints.iter().map(|&x| varint_len(zigzag(x))).sum();
    let (encoding, best_len) = [
        (PLAIN, plain_len),
        (RUNS, runs_len(ints)),
        (PACKED, packed_len(ints)),
    ]
    .into_iter()
    .min_by_key(|&(_, len)| len)
    .expect("BUG: three candidates");
    if best_len >= ZSTD_MIN_LEN {
        // zstd's entropy stage does best on whole-byte symbols, so it gets the plain
        // varints; it wins on repetitive columns, rarely on random small steps.
        let mut plain = Vec::with_capacity(plain_len);
        write(&mut plain, PLAIN, ints);
        match compress(&plain).filter(|z| z.len() < best_len) {
            Some(z) => return push(out, PLAIN | ZSTD, &z),
            None if encoding == PLAIN => return push(out, PLAIN, &plain),
            None => {}
        }
    }
    let mut payload = Vec::with_capacity(best_len);
    write(&mut payload, encoding, ints);
    push(out, encoding, &payload);
}

/// Writes `ints` in `encoding` (`PLAIN`, `RUNS` or `PACKED`).
fn write(payload: &mut Vec<u8>, encoding: u8, ints: &[i64]) {
    match encoding {
        RUNS => runs(payload, ints),
        PACKED => packed(payload, ints),
        _ => {
            for &x in ints {
                put_varint(payload, zigzag(x));
            }
        }
    }
}

#[inline]
fn varint_len(v: u64) -> usize {
    ((64 - v.leading_zeros() as usize).max(1)).div_ceil(7)
}

fn runs_len(ints: &[i64]) -> usize {
    let (mut len, mut zeros) = (0, 0u64);
    for &x in ints {
        if x == 0 {
            zeros += 1;
            continue;
        }
        if zeros > 0 {
            len += 1 + varint_len(zeros);
            zeros = 0;
        }
        len += varint_len(zigzag(x));
    }
    if zeros > 0 {
        len += 1 + varint_len(zeros);
    }
    len
}

/// The head, the rest, its minimum and its bit width (see `PACKED`).
fn packed_frame(ints: &[i64]) -> (&[i64], &[i64], i64, u32) {
    let (head, rest) = ints.split_at(ints.len().min(PACKED_HEAD));
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for &x in rest {
        min = min.min(x);
        max = max.max(x);
    }
    // The range can exceed i64 (min −2^63, max 2^63−1); in u64 it cannot.
    let width = 64 - (max as u64).wrapping_sub(min as u64).leading_zeros();
    (head, rest, min, width)
}

fn packed_len(ints: &[i64]) -> usize {
    let (head, rest, min, width) = packed_frame(ints);
    let head_len: usize = head.iter().map(|&x| varint_len(zigzag(x))).sum();
    if rest.is_empty() {
        return head_len;
    }
    head_len + varint_len(zigzag(min)) + 1 + (rest.len() * width as usize).div_ceil(8)
}

/// Appends a byte column holding `bytes`, zstd-compressed when that is smaller.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match compress(bytes).filter(|z| z.len() < bytes.len()) {
        Some(z) => push(out, RAW | ZSTD, &z),
        None => push(out, RAW, bytes),
    }
}

fn push(out: &mut Vec<u8>, encoding: u8, payload: &[u8]) {
    out.push(encoding);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn runs(out: &mut Vec<u8>, ints: &[i64]) {
    let mut zeros = 0u64;
    for &x in ints {
        if x == 0 {
            zeros += 1;
            continue;
        }
        if zeros > 0 {
            put_varint(out, 0);
            put_varint(out, zeros);
            zeros = 0;
        }
        put_varint(out, zigzag(x));
    }
    if zeros > 0 {
        put_varint(out, 0);
        put_varint(out, zeros);
    }
}

fn packed(out: &mut Vec<u8>, ints: &[i64]) {
    let (head, rest, min, width) = packed_frame(ints);
    for &x in head {
        put_varint(out, zigzag(x));
    }
    if rest.is_empty() {
        return;
    }
    put_varint(out, zigzag(min));
    out.push(width as u8);
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &x in rest {
        acc |= u128::from((x as u64).wrapping_sub(min as u64)) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < ZSTD_MIN_LEN {
        return None;
    }
    ZSTD_COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
        }
        let frame = c.as_mut()?.compress(bytes).ok()?;
        let mut out = Vec::with_capacity(frame.len() + 4);
        put_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(&frame);
        Some(out)
    })
}

/// Reads one column: its encoding and payload, advancing `pos`.
pub fn read<'a>(
    bytes: &'a [u8],
    pos: &mut usize,
    what: &'static str,
) -> Result<(u8, &'a [u8]), SegmentError> {
    let bad = SegmentError::Malformed(what);
    let encoding = *bytes.get(*pos).ok_or(bad)?;
    let (len, used) = get_varint(bytes.get(*pos + 1..).ok_or(bad)?).ok_or(bad)?;
    let start = *pos + 1 + used;
    let end = start.checked_add(usize::try_from(len).map_err(|_| bad)?);
    let payload = bytes.get(start..end.ok_or(bad)?).ok_or(bad)?;
    *pos = end.expect("BUG: checked above");
    Ok((encoding, payload))
}

/// The inner payload of a column: `payload` itself, or its zstd frame decompressed into
/// `scratch` (at most `max_len` bytes, else the column is malformed).
fn inflate<'a>(
    encoding: u8,
    payload: &'a [u8],
    max_len: usize,
    scratch: &'a mut Vec<u8>,
    what: &'static str,
) -> Result<&'a [u8], SegmentError> {
    if encoding & ZSTD == 0 {
        return Ok(payload);
    }
    let bad = SegmentError::Malformed(what);
    let (len, used) = get_varint(payload).ok_or(bad)?;
    if len > max_len as u64 {
        return Err(bad);
    }
    scratch.clear();
    scratch.reserve(len as usize);
    let got = ZSTD_DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = zstd::bulk::Decompressor::new().ok();
        }
        d.as_mut()?
            .decompress_to_buffer(&payload[used..], scratch)
            .ok()
    });
    if got != Some(len as usize) || scratch.len() != len as usize {
        return Err(bad);
    }
    Ok(scratch)
}

/// Decodes an integer column of exactly `count` integers into `out` (cleared first).
pub fn decode_ints(
    encoding: u8,
    payload: &[u8],
    count: usize,
    out: &mut Vec<i64>,
    scratch: &mut Vec<u8>,
    what: &'static str,
) -> Result<(), SegmentError> {
    let bad = SegmentError::Malformed(what);
    // A varint is at most 10 bytes; runs and packed are never longer than plain.
    let bytes = inflate(encoding, payload, count * 10 + 16, scratch, what)?;
    out.clear();
    out.reserve(count);
    let mut zigzags = Zigzags::new(bytes, encoding & !ZSTD == RUNS, what);
    match encoding & !ZSTD {
        PLAIN | RUNS => {
            for _ in 0..count {
                out.push(unzigzag(zigzags.next()?));
            }
        }
        PACKED => {
            let head = count.min(PACKED_HEAD);
            for _ in 0..head {
                out.push(unzigzag(zigzags.next()?));
            }
            let rest = count - head;
            if rest > 0 {
                let min = unzigzag(zigzags.next()?) as u64;
                let pos = &mut zigzags.varints.pos;
                let width = u32::from(*bytes.get(*pos).ok_or(bad)?);
                if width > 64 {
                    return Err(bad);
                }
                let packed = &bytes[*pos + 1..];
                if packed.len() != (rest * width as usize).div_ceil(8) {
                    return Err(bad);
                }
                unpack(packed, rest, width, min, out);
                *pos = bytes.len();
            }
        }
        _ => return Err(bad),
    }
    // A run longer than the column, or bytes after its last integer, is malformed.
    if zigzags.zeros_left != 0 || zigzags.varints.pos != bytes.len() {
        return Err(bad);
    }
    Ok(())
}

/// Appends `rest` integers of `width` bits from `packed` (exactly long enough), each plus
/// `min`. Widths up to 56 read each integer with one unaligned 8-byte load; wider ones, which
/// only wild data produces, go bit by bit through a 128-bit accumulator.
fn unpack(packed: &[u8], rest: usize, width: u32, min: u64, out: &mut Vec<i64>) {
    if width == 0 {
        out.resize(out.len() + rest, min as i64);
        return;
    }
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    if width <= 56 {
        let w = width as usize;
        // Integers whose 8-byte window lies inside `packed`; the rest are read from a copy.
        let fast = if packed.len() >= 8 {
            ((packed.len() - 8) * 8 / w + 1).min(rest)
        } else {
            0
        };
        out.extend((0..fast).map(|i| {
            let bit = i * w;
            let window: [u8; 8] = packed[bit / 8..bit / 8 + 8]
                .try_into()
                .expect("BUG: 8-byte window");
            let x = (u64::from_le_bytes(window) >> (bit % 8)) & mask;
            min.wrapping_add(x) as i64
        }));
        let mut tail = [0u8; 16];
        let from = fast * w / 8;
        tail[..packed.len() - from].copy_from_slice(&packed[from..]);
        out.extend((fast..rest).map(|i| {
            let bit = i * w - from * 8;
            let window: [u8; 8] = tail[bit / 8..bit / 8 + 8]
                .try_into()
                .expect("BUG: 8-byte window");
            let x = (u64::from_le_bytes(window) >> (bit % 8)) & mask;
            min.wrapping_add(x) as i64
        }));
        return;
    }
    let (mut acc, mut bits, mut at) = (0u128, 0u32, 0usize);
    for _ in 0..rest {
        while bits < width {
            acc |= u128::from(packed[at]) << bits;
            at += 1;
            bits += 8;
        }
        out.push(min.wrapping_add(acc as u64 & mask) as i64);
        acc >>= width;
        bits -= width;
    }
}

/// The bytes of a byte column (at most `max_len`), decompressed into `scratch` if need be.
pub fn decode_bytes<'a>(
    encoding: u8,
    payload: &'a [u8],
    max_len: usize,
    scratch: &'a mut Vec<u8>,
    what: &'static str,
) -> Result<&'a [u8], SegmentError> {
    if encoding & !ZSTD != RAW {
        return Err(SegmentError::Malformed(what));
    }
    let bytes = inflate(encoding, payload, max_len, scratch, what)?;
    if bytes.len() > max_len {
        return Err(SegmentError::Malformed(what));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(ints: &[i64]) -> (u8, usize) {
        let mut col = Vec::new();
        push_ints(&mut col, ints);
        let mut pos = 0;
        let (encoding, payload) = read(&col, &mut pos, "t").unwrap();
        assert_eq!(pos, col.len());
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        decode_ints(encoding, payload, ints.len(), &mut out, &mut scratch, "t").unwrap();
        assert_eq!(out, ints);
        // Every encoding decodes, not only the one chosen.
        let (mut r, mut p) = (Vec::new(), Vec::new());
        runs(&mut r, ints);
        packed(&mut p, ints);
        assert_eq!((r.len(), p.len()), (runs_len(ints), packed_len(ints)));
        for (e, bytes) in [(RUNS, r), (PACKED, p)] {
            decode_ints(e, &bytes, ints.len(), &mut out, &mut scratch, "t").unwrap();
            assert_eq!(out, ints, "encoding {e}");
        }
        (encoding, col.len())
    }

    #[test]
    fn picks_the_smallest_encoding() {
        // A regular series: absolute time, one delta, then zero delta-of-deltas.
        let mut ts = vec![1_700_000_000_000, 10_000];
        ts.extend(std::iter::repeat_n(0, 1022));
        let (e, len) = round_trip(&ts);
        assert!(e == PACKED || e == RUNS, "{e}");
        assert!(len < 16, "{len} bytes");
        // Counter steps 0..=5 pack in 3 bits each.
        let steps: Vec<i64> = (0..1024).map(|i| (i * 7 % 6) as i64).collect();
        let (_, len) = round_trip(&steps);
        assert!(len <= 1024 * 3 / 8 + 16, "{len} bytes");
        // Extremes: the full i64 range packs in 64 bits and still round-trips.
        round_trip(&[0, 0, i64::MIN, i64::MAX, -1, 1]);
        round_trip(&[]);
        round_trip(&[5]);
    }

    #[test]
    fn repetitive_columns_use_zstd() {
        let pattern: Vec<i64> = (0..1024).map(|i| [3, 900, -70_000, 12][i % 4]).collect();
        let (e, len) = round_trip(&pattern);
        assert_eq!(e, PLAIN | ZSTD);
        assert!(len < 100, "{len} bytes");
        let text = "{\"host\":\"web-1\"}".repeat(50);
        let mut col = Vec::new();
        push_bytes(&mut col, text.as_bytes());
        assert!(col.len() < text.len() / 4);
        let mut pos = 0;
        let (e, payload) = read(&col, &mut pos, "t").unwrap();
        let mut scratch = Vec::new();
        let back = decode_bytes(e, payload, 10_000, &mut scratch, "t").unwrap();
        assert_eq!(back, text.as_bytes());
        // A bound below the real length refuses, as it must for a decompression bomb.
        let mut scratch = Vec::new();
        assert!(decode_bytes(e, payload, 100, &mut scratch, "t").is_err());
    }

    #[test]
    fn refuses_malformed_columns() {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        // Run longer than the count, width over 64, packed bytes of the wrong length.
        assert!(decode_ints(RUNS, &[0, 5], 3, &mut out, &mut scratch, "t").is_err());
        assert!(decode_ints(PACKED, &[0, 0, 0, 65], 3, &mut out, &mut scratch, "t").is_err());
        assert!(decode_ints(PACKED, &[0, 0, 0, 3], 3, &mut out, &mut scratch, "t").is_err());
        assert!(decode_ints(9, &[], 0, &mut out, &mut scratch, "t").is_err());
        // Trailing bytes after the last integer.
        assert!(decode_ints(PLAIN, &[2, 2], 1, &mut out, &mut scratch, "t").is_err());
    }

    proptest! {
        #[test]
        fn any_integers_round_trip(ints in proptest::collection::vec(any::<i64>(), 0..300)) {
            round_trip(&ints);
        }

        #[test]
        fn small_integers_round_trip(ints in proptest::collection::vec(-3i64..4, 0..3000)) {
            round_trip(&ints);
        }

        #[test]
        fn every_packing_width_round_trips(
            width in 1u32..=63,
            ints in proptest::collection::vec(any::<i64>(), 0..700),
        ) {
            // Masked to `width` bits: every width from 1 to 63 packs, at any length.
            let ints: Vec<i64> = ints.iter().map(|x| x & ((1u64 << width) - 1) as i64).collect();
            let mut bytes = Vec::new();
            packed(&mut bytes, &ints);
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            decode_ints(PACKED, &bytes, ints.len(), &mut out, &mut scratch, "t").unwrap();
            prop_assert_eq!(out, ints);
        }

        #[test]
        fn decode_never_panics(
            encoding in any::<u8>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            count in 0usize..50,
        ) {
            let (mut out, mut scratch) = (Vec::new(), Vec::new());
            let _ = decode_ints(encoding, &bytes, count, &mut out, &mut scratch, "t");
            let _ = decode_bytes(encoding, &bytes, 100, &mut scratch, "t");
        }
    }
}
