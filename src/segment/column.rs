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
//! - `RADIX`: as `PACKED`, but the rest's `x - min` are digits in base `r = max - min + 1`,
//!   `k` of them to a group `Σ dᵢ·rⁱ` written in `bits(rᵏ − 1)` bits: varint `r`, `u8 k`,
//!   then the groups, LSB first. Whole bits per value round a counter's 6 steps up to 3 bits
//!   (the information is 2.585); groups of 5 take 13 bits, 2.6 a step. Written only when it
//!   is strictly smaller than `PACKED`.
//!
//! Byte columns use `RAW`. Either kind may be wrapped: `encoding | ZSTD` means the payload is
//! `varint raw length` then a zstd frame of the inner payload — kept only when smaller.
//! The encoder writes whichever is smallest; the decoder bounds every length by the block's
//! sample count, so no input makes it allocate more than a few bytes per sample.

use super::varint::{get_varint, put_varint, unzigzag, varint_len, zigzag};
use super::{SegmentError, Zigzags};
use std::cell::RefCell;

pub const PLAIN: u8 = 0;
pub const RUNS: u8 = 1;
pub const PACKED: u8 = 2;
pub const RADIX: u8 = 3;
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
/// Ties go to the simplest encoding: plain, then runs, then packed, then radix.
pub fn push_ints(out: &mut Vec<u8>, ints: &[i64]) {
    let plain_len: usize = ints.iter().map(|&x| varint_len(zigzag(x))).sum();
    let (encoding, best_len) = [
        (PLAIN, plain_len),
        (RUNS, runs_len(ints)),
        (PACKED, packed_len(ints)),
        (RADIX, radix_len(ints)),
    ]
    .into_iter()
    .min_by_key(|&(_, len)| len)
    .expect("BUG: four candidates");
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
        RADIX => radix(payload, ints),
        _ => {
            for &x in ints {
                put_varint(payload, zigzag(x));
            }
        }
    }
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

/// Groups no larger than this keep the group arithmetic in u32 (`fastdiv`).
const RADIX_GROUP_LIMIT: u64 = 1 << 32;

/// The digits a group holds in base `r` and the bits a group takes, fewest bits per digit
/// (`rᵏ ≤ 2³²`), or None when whole-bit packing is as small (`r` a power of two, or ≤ 2).
fn radix_group(r: u64) -> Option<(u32, u32)> {
    if r <= 2 || r.is_power_of_two() || r > RADIX_GROUP_LIMIT / r {
        return None;
    }
    let whole_bits = 64 - (r - 1).leading_zeros();
    let (mut best_k, mut best_bits) = (1u32, whole_bits);
    let mut power = r;
    let mut k = 1u32;
    while let Some(next) = power.checked_mul(r).filter(|&p| p <= RADIX_GROUP_LIMIT) {
        power = next;
        k += 1;
        let bits = 64 - (power - 1).leading_zeros();
        // bits / k < best_bits / best_k
        if u64::from(bits) * u64::from(best_k) < u64::from(best_bits) * u64::from(k) {
            (best_k, best_bits) = (k, bits);
        }
    }
    (best_k > 1).then_some((best_k, best_bits))
}

/// The frame of a `RADIX` column.
struct RadixFrame<'a> {
    head: &'a [i64],
    rest: &'a [i64],
    min: i64,
    r: u64,
    /// Digits a group.
    k: u32,
    /// Bits a group.
    bits: u32,
}

/// The `RADIX` frame of `ints`; None when it does not apply.
fn radix_frame(ints: &[i64]) -> Option<RadixFrame<'_>> {
    let (head, rest, min, width) = packed_frame(ints);
    if rest.is_empty() || width >= 32 {
        return None;
    }
    let max = rest.iter().copied().max().expect("BUG: rest is not empty");
    let r = (max as u64).wrapping_sub(min as u64) + 1;
    let (k, bits) = radix_group(r)?;
    Some(RadixFrame {
        head,
        rest,
        min,
        r,
        k,
        bits,
    })
}

fn radix_len(ints: &[i64]) -> usize {
    let Some(RadixFrame {
        head,
        rest,
        min,
        r,
        k,
        bits,
    }) = radix_frame(ints)
    else {
        return usize::MAX;
    };
    let head_len: usize = head.iter().map(|&x| varint_len(zigzag(x))).sum();
    let groups = rest.len().div_ceil(k as usize);
    head_len + varint_len(zigzag(min)) + varint_len(r) + 1 + (groups * bits as usize).div_ceil(8)
}

fn radix(out: &mut Vec<u8>, ints: &[i64]) {
    let RadixFrame {
        head,
        rest,
        min,
        r,
        k,
        bits,
    } = radix_frame(ints).expect("BUG: radix chosen for a column it does not fit");
    for &x in head {
        put_varint(out, zigzag(x));
    }
    put_varint(out, zigzag(min));
    put_varint(out, r);
    out.push(k as u8);
    // Σ dᵢ·rⁱ, the first digit lowest.
    let groups = rest.chunks(k as usize).map(|chunk| {
        chunk
            .iter()
            .rev()
            .fold(0u64, |g, &x| g * r + (x as u64).wrapping_sub(min as u64))
    });
    write_bits(out, groups, bits);
}

/// Appends each value's low `width` bits, least significant bit first, padding the last
/// byte with zeros.
fn write_bits(out: &mut Vec<u8>, values: impl Iterator<Item = u64>, width: u32) {
    let mut acc: u128 = 0;
    let mut filled = 0u32;
    for v in values {
        acc |= u128::from(v) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// `n / d` for any u32 `n` and `2 ≤ d < 2³²`, given `m = u64::MAX / d + 1` (Lemire, Kaser
/// and Kurz, "Faster remainder by direct computation", 2019): a multiply instead of a
/// division in the decoder's inner loop.
#[inline]
fn fastdiv(n: u32, m: u64) -> u32 {
    ((u128::from(m) * u128::from(n)) >> 64) as u32
}

/// Appends the `rest` digits held in `groups` (each < rᵏ, k digits, the last group maybe
/// partly used), each plus `min`.
fn unpack_radix(groups: &[i64], rest: usize, r: u64, k: usize, min: u64, out: &mut Vec<i64>) {
    let m = u64::MAX / r + 1;
    let r = r as u32;
    for (i, &g) in groups.iter().enumerate() {
        let mut g = g as u32;
        for _ in 0..k.min(rest - i * k) {
            let q = fastdiv(g, m);
            out.push(min.wrapping_add(u64::from(g - q * r)) as i64);
            g = q;
        }
    }
}

/// Appends a byte column holding `bytes`, zstd-compressed when that is smaller.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match compress(bytes).filter(|z| z.len() < bytes.len()) {
        Some(z) => push(out, RAW | ZSTD, &z),
        None => push(out, RAW, bytes),
    }
}

/// Appends an empty column (`PLAIN`, length 0): where a reader expects at least one
/// integer, the block layout gives it a meaning of its own (`segment`: regular timestamps).
pub fn push_empty(out: &mut Vec<u8>) {
    push(out, PLAIN, &[]);
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
    let deltas = rest.iter().map(|&x| (x as u64).wrapping_sub(min as u64));
    write_bits(out, deltas, width);
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
            while out.len() < count {
                out.push(unzigzag(zigzags.next()?));
                // The rest of a run of zeros at once: a regular series' timestamps are one
                // run, and taking it a zero at a time cost ~3 ns a sample.
                let zeros = (zigzags.zeros_left as usize).min(count - out.len());
                out.resize(out.len() + zeros, 0);
                zigzags.zeros_left -= zeros as u64;
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
        RADIX => {
            let head = count.min(PACKED_HEAD);
            for _ in 0..head {
                out.push(unzigzag(zigzags.next()?));
            }
            let rest = count - head;
            if rest == 0 {
                return Err(bad);
            }
            let min = unzigzag(zigzags.next()?) as u64;
            let r = zigzags.varints.next()?;
            let pos = &mut zigzags.varints.pos;
            let k = u32::from(*bytes.get(*pos).ok_or(bad)?);
            // The encoder's choice exactly, so every group fits u32 and a digit fits r.
            let Some((want_k, bits)) = radix_group(r) else {
                return Err(bad);
            };
            if k != want_k {
                return Err(bad);
            }
            let groups = rest.div_ceil(k as usize);
            let packed = &bytes[*pos + 1..];
            if packed.len() != (groups * bits as usize).div_ceil(8) {
                return Err(bad);
            }
            let mut group_values = Vec::with_capacity(groups);
            unpack(packed, groups, bits, 0, &mut group_values);
            let limit = r.pow(k) as i64;
            if group_values.iter().any(|&g| g >= limit) {
                return Err(bad);
            }
            unpack_radix(&group_values, rest, r, k as usize, min, out);
            *pos = bytes.len();
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
        let mut candidates = vec![(RUNS, r), (PACKED, p)];
        if radix_frame(ints).is_some() {
            let mut x = Vec::new();
            radix(&mut x, ints);
            assert_eq!(x.len(), radix_len(ints));
            candidates.push((RADIX, x));
        }
        for (e, bytes) in candidates {
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
        // Counter steps 0..=5: 3 bits each packed, 2.6 in groups of five digits in 13 bits
        // (random, so zstd finds no pattern).
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n) as i64
        };
        let steps: Vec<i64> = (0..1024).map(|_| random(6)).collect();
        let (e, len) = round_trip(&steps);
        assert_eq!(e, RADIX);
        assert!(len <= 1022 * 13 / 5 / 8 + 16, "{len} bytes");
        // Gauge steps −1..=1: 2 bits packed, ~1.59 in radix groups (17 digits in 27 bits).
        let steps: Vec<i64> = (0..1024).map(|_| random(3) - 1).collect();
        let (e, len) = round_trip(&steps);
        assert_eq!(e, RADIX);
        assert!(len <= 1022 * 27 / 17 / 8 + 16, "{len} bytes");
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

    #[test]
    fn radix_groups_take_fewest_bits_per_digit() {
        assert_eq!(radix_group(3), Some((17, 27)));
        assert_eq!(radix_group(6), Some((5, 13)));
        assert_eq!(radix_group(41), Some((5, 27)));
        // Powers of two and huge ranges are `PACKED`'s.
        assert_eq!(radix_group(2), None);
        assert_eq!(radix_group(64), None);
        assert_eq!(radix_group(1 << 20), None);
        assert_eq!(radix_group((1 << 16) + 1), None);
    }

    #[test]
    fn refuses_malformed_radix_columns() {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        // Head 0, 0; min 0; r = 6; k = 5; one group of 13 bits: 2 bytes.
        let good = [0, 0, 0, 6, 5, 0xff, 0x0f];
        decode_ints(RADIX, &good, 7, &mut out, &mut scratch, "t").unwrap();
        // 0xfff = 4095 = 3 + 4·6 + 5·6² + 0·6³ + 3·6⁴.
        assert_eq!(out, vec![0, 0, 3, 4, 5, 0, 3]);
        // A group ≥ 6⁵, a k the encoder would not pick, an r that is a power of two, a
        // wrong payload length, no digits at all.
        for (bytes, count) in [
            (vec![0, 0, 0, 6, 5, 0xff, 0x1f], 7),
            (vec![0, 0, 0, 6, 4, 0xff, 0x0f], 7),
            (vec![0, 0, 0, 8, 5, 0xff, 0x0f], 7),
            (vec![0, 0, 0, 6, 5, 0xff], 7),
            (vec![0, 0], 2),
        ] {
            assert!(
                decode_ints(RADIX, &bytes, count, &mut out, &mut scratch, "t").is_err(),
                "{bytes:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn fastdiv_divides_exactly(n in any::<u32>(), d in 2u32..) {
            let m = u64::MAX / u64::from(d) + 1;
            prop_assert_eq!(fastdiv(n, m), n / d);
        }

        #[test]
        fn radix_columns_round_trip(
            range in 3i64..5000,
            base in any::<i32>(),
            seeds in proptest::collection::vec(any::<u32>(), 0..1100),
        ) {
            // Values spanning exactly `range` (both ends present when there are enough).
            let mut ints: Vec<i64> = seeds.iter().map(|s| i64::from(base) + i64::from(*s) % range).collect();
            if ints.len() > 4 {
                ints[2] = i64::from(base);
                ints[3] = i64::from(base) + range - 1;
            }
            round_trip(&ints);
        }

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
