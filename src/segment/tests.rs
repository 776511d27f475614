//! Segment round trips, every version's reading, truncations and bit flips.
use super::*;
use proptest::prelude::*;

fn s(ts: i64, v: f64, m: Option<&str>) -> Sample {
    Sample {
        timestamp_ms: ts,
        value: v,
        metadata: m.map(Into::into),
    }
}

fn check(samples: Vec<Sample>) {
    let bytes = encode(&samples);
    let back = decode(&bytes).unwrap();
    assert_eq!(back, samples);
    // Bit-exact, -0.0 included (== alone would let it become 0.0).
    let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back), bits(&samples));
    let sum = read_summary(&bytes).unwrap();
    assert_eq!(sum, summarize(&samples));
}

#[test]
fn checked_summary_is_the_segments_own_and_catches_a_damaged_block_table() {
    let samples: Vec<Sample> = (0..3000)
        .map(|i| s(i * 10_000, (i % 13) as f64 * 0.5 + 0.25, None))
        .collect();
    let bytes = encode(&samples);
    assert_eq!(blocks(&bytes).unwrap().len(), 3);
    let total = read_summary(&bytes).unwrap();
    assert_eq!(checked_summary(&bytes).unwrap(), Some(total));
    assert_eq!(total, summarize(&samples));
    // A flipped bit anywhere in the header (the block entries are skipped, not read)
    // fails the check.
    let header_end = blocks(&bytes).unwrap()[0].body_start;
    for at in 1..header_end {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert!(checked_summary(&bad).is_err(), "byte {at} of {header_end}");
    }
    // Small and single-block segments: small ones have no stored summary (None).
    assert_eq!(checked_summary(&encode(&samples[..10])).unwrap(), None);
    let one = encode(&samples[..1000]);
    assert_eq!(
        checked_summary(&one).unwrap(),
        Some(read_summary(&one).unwrap())
    );
}

#[test]
fn round_trips_small_cases() {
    check(vec![s(0, 0.0, None)]);
    check(vec![s(1234567890000, 42.0, None)]);
    check(vec![
        s(1, 1.5, None),
        s(2, -2.25, Some("{\"a\":1}")),
        s(10, 3.0, None),
    ]);
    check(vec![s(1, -1e300, None), s(i64::MAX, 1e300, None)]);
    check(vec![
        s(5, 9_007_199_254_740_992.0, None),
        s(6, -9_007_199_254_740_992.0, None),
    ]);
}

#[test]
fn version_1_segments_still_read() {
    let samples: Vec<Sample> = (0..3000)
        .map(|i| s(i * 10, i as f64 * 0.5, (i % 3 == 0).then_some("{}")))
        .collect();
    let v1 = encode_v1(&samples);
    assert_eq!(v1[0], 1);
    assert_eq!(decode(&v1).unwrap(), samples);
    assert_eq!(read_summary(&v1).unwrap(), summarize(&samples));
    let b = blocks(&v1).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].summary, summarize(&samples));
    assert_eq!(contains_timestamp(&v1, 29_990), Ok(true));
    assert_eq!(contains_timestamp(&v1, 29_991), Ok(false));
    let mut bad = v1.clone();
    bad[100] ^= 1;
    assert_eq!(blocks(&bad), Err(SegmentError::Checksum));
}

#[test]
fn version_2_segments_still_read() {
    let samples: Vec<Sample> = (0..3000)
        .map(|i| s(i * 10, i as f64 * 0.25, (i % 3 == 0).then_some("{\"a\":1}")))
        .collect();
    let v2 = encode_v2(&samples);
    assert_eq!(v2[0], 2);
    assert_eq!(decode(&v2).unwrap(), samples);
    assert_eq!(read_summary(&v2).unwrap(), summarize(&samples));
    let b = blocks(&v2).unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].summary, summarize(&samples[2048..]));
    assert_eq!(contains_timestamp(&v2, 29_990), Ok(true));
    assert_eq!(contains_timestamp(&v2, 29_991), Ok(false));
    let mut bad = v2.clone();
    bad[v2.len() - 5] ^= 1;
    assert_eq!(decode(&bad), Err(SegmentError::Checksum));
}

#[test]
fn version_3_segments_still_read_and_append_re_encodes_them() {
    let samples: Vec<Sample> = (0..3000)
        .map(|i| {
            s(
                1_795_000_000_000 + i * 10_000,
                (i * 7 % 11) as f64 * 0.01,
                None,
            )
        })
        .collect();
    let v3 = encode_version(&samples, SEGMENT_V3);
    assert_eq!(v3[0], 3);
    assert_eq!(decode(&v3).unwrap(), samples);
    assert_eq!(read_summary(&v3).unwrap(), summarize(&samples));
    assert_eq!(checked_summary(&v3).unwrap(), Some(summarize(&samples)));
    let b = blocks(&v3).unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b[2].summary, summarize(&samples[2048..]));
    assert_eq!(
        contains_timestamp(&v3, samples[2500].timestamp_ms),
        Ok(true)
    );
    // Appending to a version 3 segment is left to the caller's full re-encode.
    let later = [s(samples[2999].timestamp_ms + 1, 1.0, None)];
    assert_eq!(append(&v3, &later), Ok(None));
    let small = encode_version(&samples[..20], SEGMENT_V3);
    assert_eq!(small[..2], [3, 0]);
    assert_eq!(decode(&small).unwrap(), samples[..20]);
}

#[test]
fn evenly_spaced_blocks_store_an_empty_timestamps_column() {
    let mut samples: Vec<Sample> = (0..3000)
        .map(|i| Sample {
            timestamp_ms: 1_795_000_000_000 + i * 10_000,
            value: (i % 7) as f64,
            metadata: None,
        })
        .collect();
    let regular = encode(&samples);
    assert_eq!(decode(&regular).unwrap(), samples);
    let mut l = Layout::default();
    l.add(&regular).unwrap();
    assert_eq!((l.blocks, l.timestamps), (3, 3 * 2));
    // One late sample in the second block: only that block codes its timestamps.
    samples[1500].timestamp_ms += 3;
    let jittered = encode(&samples);
    assert_eq!(decode(&jittered).unwrap(), samples);
    let mut l = Layout::default();
    l.add(&jittered).unwrap();
    assert!(l.timestamps > 3 * 2 && l.timestamps < 3 * 2 + 16, "{l:?}");
    // Appending keeps the full blocks and re-encodes the last one, still evenly spaced.
    samples[1500].timestamp_ms -= 3;
    let later: Vec<Sample> = (3000..3100)
        .map(|i| Sample {
            timestamp_ms: 1_795_000_000_000 + i * 10_000,
            value: 1.5,
            metadata: None,
        })
        .collect();
    let appended = append(&regular, &later).unwrap().unwrap();
    samples.extend(later);
    assert_eq!(decode(&appended).unwrap(), samples);
}

#[test]
fn version_4_block_entries_and_bodies_are_leaner_than_version_3() {
    // A quiet counter (steps 0–5) at 10 s: what compare.sh's quiet dataset holds.
    let mut v = 10_000.0;
    let samples: Vec<Sample> = (0..4000)
        .map(|i| {
            v += (i * 7 % 6) as f64;
            s(1_795_000_000_000 + i * 10_000, v, None)
        })
        .collect();
    let (v3, v4) = (encode_version(&samples, SEGMENT_V3), encode(&samples));
    let n = blocks(&v4).unwrap().len();
    assert_eq!(n, 4);
    // Per block: the entry's count, its start and first value, and the body's first
    // timestamp and value are implied; the rest are small differences.
    assert!(
        v4.len() + 15 * n <= v3.len(),
        "v4 {} bytes vs v3 {} for {n} blocks",
        v4.len(),
        v3.len()
    );
    assert_eq!(decode(&v4).unwrap(), samples);
}

proptest! {
    /// Segments of several blocks in value regimes that exercise every form of a block
    /// summary (scaled integers, raw f64 fields, a sum too far from count × first to fit,
    /// -0.0, gaps and uneven spacing): every block's summary reads back bit-exact and
    /// every sample too.
    #[test]
    fn block_summaries_round_trip_bit_exact(
        n in 1025usize..4200,
        regime in proptest::collection::vec(0u8..6, 5),
        start in -1_000_000_000_000i64..2_000_000_000_000,
        seed in any::<u64>(),
    ) {
        let mut x = seed | 1;
        let mut next = || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let mut ts = start;
        let samples: Vec<Sample> = (0..n)
            .map(|i| {
                ts += 1 + (next() % 3) as i64 * if next() % 50 == 0 { 1_000_000 } else { 5_000 };
                let r = next();
                let value = match regime[i / 1024] {
                    0 => (i / 3) as f64,
                    1 => (r % 2001) as f64 / 100.0 - 10.0,
                    2 => f64::from_bits(r >> 2) * if r & 1 == 0 { 1.0 } else { -1.0 },
                    3 => if r % 2 == 0 { 9_007_199_254_740_992.0 } else { -9_007_199_254_740_991.0 },
                    4 => if r % 3 == 0 { -0.0 } else { 0.0 },
                    _ => (r % 1000) as f64 * 1e-9 + 1e6,
                };
                Sample { timestamp_ms: ts, value: if value.is_finite() { value } else { 1.5 }, metadata: None }
            })
            .collect();
        let bytes = encode(&samples);
        let sbits = |s: &Summary| (s.count, s.min_ts, s.max_ts, [s.min, s.max, s.sum, s.first, s.last].map(f64::to_bits));
        for (i, b) in blocks(&bytes).unwrap().iter().enumerate() {
            let want = summarize(&samples[i * BLOCK_SAMPLES..((i + 1) * BLOCK_SAMPLES).min(n)]);
            prop_assert_eq!(sbits(&b.summary), sbits(&want));
        }
        let checked = checked_summary(&bytes);
        prop_assert!(checked.is_ok(), "{:?}", checked);
        prop_assert_eq!(checked.unwrap().map(|s| sbits(&s)), Some(sbits(&summarize(&samples))));
        let back = decode(&bytes).unwrap();
        let bits = |v: &[Sample]| v.iter().map(|s| (s.timestamp_ms, s.value.to_bits())).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&samples));
    }
}

#[test]
fn repeated_metadata_is_stored_once_per_block() {
    let meta = format!("{{\"host\":\"{}\"}}", "w".repeat(200));
    let samples: Vec<Sample> = (0..1024)
        .map(|i| s(i * 10_000, 1.0, (i % 2 == 0).then_some(meta.as_str())))
        .collect();
    let bytes = encode(&samples);
    check(samples);
    // One copy of the 211-byte object, one bit or so per sample for the index.
    assert!(bytes.len() < 211 + 1024 / 4 + 120, "{} bytes", bytes.len());
    // Samples without metadata cost nothing for it.
    let plain: Vec<Sample> = (0..1024).map(|i| s(i * 10_000, 1.0, None)).collect();
    assert!(encode(&plain).len() < 80, "{} bytes", encode(&plain).len());
}

#[test]
fn small_segments_carry_no_summary() {
    // 20 points of a counter at 10 s: the high-cardinality shape, where per-segment
    // overhead is most of the bytes.
    let samples: Vec<Sample> = (0..20)
        .map(|i| s(1_700_000_000_000 + i * 10_000, (1000 + i * 3) as f64, None))
        .collect();
    let bytes = encode(&samples);
    assert_eq!(bytes[..2], [SEGMENT_VERSION, 0], "the small form");
    assert!(bytes.len() <= 32, "{} bytes (version 2: 180)", bytes.len());
    check(samples);
    // One checksum covers it all: every flipped byte is caught.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x10;
        assert!(decode(&bad).is_err(), "byte {i}");
    }
}

#[test]
fn blocks_summarize_their_own_samples() {
    // 2500 samples: blocks of 1024, 1024 and 452; metadata only in the middle block.
    let samples: Vec<Sample> = (0..2500)
        .map(|i| {
            let meta = (1024..2048).contains(&i).then_some("{\"k\":1}");
            s(1_000 + i * 7, (i % 11) as f64, meta)
        })
        .collect();
    let bytes = encode(&samples);
    assert_eq!(decode(&bytes).unwrap(), samples);
    let b = blocks(&bytes).unwrap();
    assert_eq!(b.len(), 3);
    let mut cols = Columns::default();
    for (i, (block, chunk)) in b.iter().zip(samples.chunks(BLOCK_SAMPLES)).enumerate() {
        assert_eq!(block.summary, summarize(chunk), "block {i}");
        decode_block(&bytes, block, &mut cols, true).unwrap();
        let ts: Vec<i64> = chunk.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(cols.timestamps, ts);
        assert_eq!(cols.metadata.len(), if i == 1 { chunk.len() } else { 0 });
    }
    for ts in [1_000, 1_000 + 1024 * 7, 1_000 + 2499 * 7] {
        assert_eq!(contains_timestamp(&bytes, ts), Ok(true), "{ts}");
        assert_eq!(contains_timestamp(&bytes, ts + 1), Ok(false), "{ts}");
    }
}

#[test]
fn integer_values_take_few_bytes() {
    let samples: Vec<Sample> = (0..1000)
        .map(|i| s(1_700_000_000_000 + i * 10_000, (i % 7) as f64, None))
        .collect();
    let bytes = encode(&samples);
    // Regular 10 s spacing: one byte per timestamp; small integer deltas: one byte each.
    assert!(
        bytes.len() < 2100 + HEADER_LEN + 2 + BLOCK_ENTRY_LEN + 4 + 15,
        "{} bytes",
        bytes.len()
    );
}

#[test]
fn decimal_values_are_stored_as_scaled_integers_bit_exact() {
    // A 2-decimal gauge moving by cents: ~2 bytes a sample instead of 9.
    let mut v = 50.0f64;
    let samples: Vec<Sample> = (0..1000)
        .map(|i| {
            v = ((v * 100.0).round() + ((i * 37) % 201 - 100) as f64) / 100.0;
            s(1_700_000_000_000 + i * 10_000, v, None)
        })
        .collect();
    let bytes = encode(&samples);
    assert!(bytes.len() < 3200, "{} bytes", bytes.len());
    check(samples);
    // Mixed scales, negatives, -0.0 and values that only look decimal stay exact.
    check(vec![
        s(1, 0.1, None),
        s(2, -0.25, None),
        s(3, 1e-9, None),
        s(4, 123456.789, None),
        s(5, -0.0, None),
    ]);
    check(vec![s(1, 0.1, None), s(2, 1.0 / 3.0, None)]);
    check(vec![
        s(1, 0.1, None),
        s(2, 9.007e15, None),
        s(3, 1e300, None),
    ]);
}

#[test]
fn a_regular_constant_series_costs_almost_nothing() {
    let samples: Vec<Sample> = (0..MAX_SEGMENT_SAMPLES as i64)
        .map(|i| s(1_700_000_000_000 + i * 10_000, 42.0, None))
        .collect();
    let bytes = encode(&samples);
    // 65,536 samples: a header, then per block of 1024 a table entry and ~30 bytes of
    // columns (~46 bytes): under 0.05 bytes a sample.
    assert!(bytes.len() < 3200, "{} bytes", bytes.len());
    check(samples);
}

#[test]
fn finds_timestamps_without_full_decode() {
    let bytes = encode(&[s(10, 1.0, None), s(20, 2.0, None), s(35, 3.0, None)]);
    for (ts, want) in [
        (9, false),
        (10, true),
        (15, false),
        (20, true),
        (35, true),
        (36, false),
    ] {
        assert_eq!(contains_timestamp(&bytes, ts), Ok(want), "ts {ts}");
    }
}

#[test]
fn detects_a_flipped_byte() {
    let bytes = encode(&[s(1, 1.0, None), s(2, 2.0, Some("{}"))]);
    for i in 0..bytes.len() {
        let mut copy = bytes.clone();
        copy[i] ^= 0x40;
        assert!(decode(&copy).is_err(), "flip at {i} went unnoticed");
    }
}

#[test]
fn refuses_a_newer_version() {
    let mut bytes = encode(&[s(1, 1.0, None)]);
    bytes[0] = SEGMENT_VERSION + 1;
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        decode(&bytes),
        Err(SegmentError::UnknownVersion(SEGMENT_VERSION + 1))
    );
}

proptest! {
    #[test]
    fn round_trips_any_sorted_samples(
        mut ts in proptest::collection::btree_set(any::<i64>(), 1..300),
        vals in proptest::collection::vec(prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            (-1000i64..1000).prop_map(|v| v as f64),
            (-100_000i64..100_000).prop_map(|m| m as f64 / 100.0),
            (-1000i64..1000, 0usize..=9).prop_map(|(m, e)| m as f64 / POW10[e]),
            Just(-0.0),
        ], 300),
        metas in proptest::collection::vec(proptest::option::of("[a-z]{0,8}"), 300),
    ) {
        let samples: Vec<Sample> = std::mem::take(&mut ts).into_iter().enumerate()
            .map(|(i, t)| Sample { timestamp_ms: t, value: vals[i], metadata: metas[i].clone().filter(|m| !m.is_empty()).map(Into::into) })
            .collect();
        let bytes = encode(&samples);
        let back = decode(&bytes).unwrap();
        let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&samples));
        // The header's summary is bit-exact too (scaled integers or raw f64).
        let (a, b) = (read_summary(&bytes).unwrap(), summarize(&samples));
        let sbits = |s: Summary| [s.min, s.max, s.sum, s.first, s.last].map(f64::to_bits);
        prop_assert_eq!(sbits(a), sbits(b));
        prop_assert_eq!(a, b);
        prop_assert_eq!(back, samples);
    }

    #[test]
    fn appending_equals_encoding_everything(
        deltas in proptest::collection::vec(1i64..100_000, 2..3000),
        cents in proptest::collection::vec(-500i64..500, 3000),
        metas in proptest::collection::vec(proptest::option::of("[a-z]{1,4}"), 3000),
        split in 0.0f64..1.0,
    ) {
        let mut ts = 1_700_000_000_000i64;
        let samples: Vec<Sample> = deltas.iter().enumerate().map(|(i, d)| {
            ts += d;
            Sample { timestamp_ms: ts, value: cents[i] as f64 / 100.0, metadata: metas[i].clone().map(Into::into) }
        }).collect();
        let k = ((samples.len() as f64 * split) as usize).clamp(1, samples.len() - 1);
        let (old, later) = samples.split_at(k);
        let existing = encode(old);
        let Some(appended) = append(&existing, later).unwrap() else {
            // Only the small form is left to the caller.
            prop_assert!(old.len() <= SMALL_SEGMENT_SAMPLES);
            return Ok(());
        };
        prop_assert_eq!(decode(&appended).unwrap(), samples.clone());
        // Every block summary is what the encoder writes; the total agrees except for
        // the rounding of its sum.
        let blocks = blocks(&appended).unwrap();
        let whole = encode(&samples);
        let fresh = super::blocks(&whole).unwrap();
        let block_counts = |b: &[Block]| b.iter().map(|b| b.summary.count).collect::<Vec<_>>();
        prop_assert_eq!(block_counts(&blocks), block_counts(&fresh));
        for (a, b) in blocks.iter().zip(&fresh) {
            prop_assert_eq!(a.summary, b.summary);
        }
        let (a, b) = (read_summary(&appended).unwrap(), summarize(&samples));
        prop_assert_eq!((a.count, a.min_ts, a.max_ts, a.min, a.max, a.first, a.last),
            (b.count, b.min_ts, b.max_ts, b.min, b.max, b.first, b.last));
        prop_assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0));
        // The full blocks of the old segment are kept byte for byte.
        let kept = old.len() / BLOCK_SAMPLES;
        let old_blocks = super::blocks(&existing).unwrap();
        for (a, b) in blocks.iter().zip(&old_blocks).take(kept) {
            prop_assert_eq!(&appended[a.body_start..a.body_start + a.body_len],
                &existing[b.body_start..b.body_start + b.body_len]);
        }
        // Samples at or before the segment's end are the caller's to merge.
        prop_assert_eq!(append(&existing, &samples[k - 1..]).unwrap(), None);
    }

    #[test]
    fn decimal_blocks_round_trip_bit_exact(
        ms in proptest::collection::vec(-10_000_000i64..10_000_000, 1..2000),
        e in 1usize..=9,
    ) {
        let samples: Vec<Sample> = ms.iter().enumerate()
            .map(|(i, m)| Sample { timestamp_ms: i as i64 * 1000, value: *m as f64 / POW10[e], metadata: None })
            .collect();
        let bytes = encode(&samples);
        let back = decode(&bytes).unwrap();
        let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&samples));
        // Scaled integers: far below 8 bytes a value.
        prop_assert!(bytes.len() < samples.len() * 6 + 400, "{} bytes", bytes.len());
    }

    #[test]
    fn runs_of_zeros_round_trip(
        steps in proptest::collection::vec(prop_oneof![Just(10_000i64), Just(10_000), Just(10_000), 1i64..50_000], 1..1500),
        vals in proptest::collection::vec(prop_oneof![Just(0i64), Just(0), Just(0), -3i64..3], 1500),
        scale in 0usize..3,
    ) {
        let mut t = 1_700_000_000_000i64;
        let samples: Vec<Sample> = steps.iter().zip(&vals).map(|(step, v)| {
            t += step;
            let mut value = *v as f64 + 40.0;
            if scale > 0 { value /= POW10[scale]; }
            Sample { timestamp_ms: t, value, metadata: None }
        }).collect();
        let bytes = encode(&samples);
        let back = decode(&bytes).unwrap();
        let bits = |v: &[Sample]| v.iter().map(|s| s.value.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back), bits(&samples));
        prop_assert_eq!(back, samples);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }
}
