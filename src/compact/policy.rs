//! Compaction policy: pure decisions about how new samples and existing segments combine.
//! No I/O, no clock (ARCHITECTURE.md invariant 2).

use crate::segment::{self, Sample, MAX_SEGMENT_SAMPLES};

/// Merges a metric's existing segment samples with its newly compacted ones. Both inputs are
/// sorted by timestamp without duplicates; on equal timestamps the new sample wins (last
/// write wins). Returns the merged samples and how many old samples were replaced.
pub fn merge(old: Vec<Sample>, new: Vec<Sample>) -> (Vec<Sample>, usize) {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut replaced = 0;
    let mut old = old.into_iter().peekable();
    for n in new {
        while let Some(o) = old.next_if(|o| o.timestamp_ms < n.timestamp_ms) {
            out.push(o);
        }
        if old.next_if(|o| o.timestamp_ms == n.timestamp_ms).is_some() {
            replaced += 1;
        }
        out.push(n);
    }
    out.extend(old);
    (out, replaced)
}

/// redb's page: a leaf holding one segment takes one page when the segment fits it, and a
/// power-of-two number of pages when it does not.
const PAGE_BYTES: usize = 4096;
/// The leaf a full segment fills: two pages.
const LEAF_BYTES: usize = 2 * PAGE_BYTES;
/// What a leaf page holding one segment spends besides the segment: redb's leaf header and
/// the key and value ends (12 bytes), the key's timestamp and the lengths of its two
/// strings (16), and some slack.
const LEAF_OVERHEAD: usize = 48;

/// The encoded bytes a segment of this metric may take so that it fills a two-page redb
/// leaf on its own. Measured before segments were cut by size (a fixed 8192 samples): a
/// quiet series' segments (~2.5 KB) and a noisy series' (~6.2 KB, which redb stores in an
/// 8 KiB leaf) left 23–34 % of the store file empty. Two pages rather than one: a noisy
/// gauge (~1.1 bytes a sample) then gets ~7,400 samples a segment instead of ~3,700, and
/// the criterion query bench's `avg` over 10 M of them takes 2.7–2.9 ms instead of
/// 3.5–3.9 ms (half the segments to open and check); a full segment fills its leaf either
/// way, and the last, partial one wastes the same ~2 KB on average (a leaf of one page
/// below 4 KiB, of two above).
pub fn segment_budget(project: &str, metric: &str) -> usize {
    LEAF_BYTES
        .saturating_sub(LEAF_OVERHEAD + project.len() + metric.len())
        .max(LEAF_BYTES / 4)
}

/// Whether the segment just before the new samples should take them in: yes while it has
/// room left in its leaf and under `MAX_SEGMENT_SAMPLES`, so a slow metric (one sample a
/// minute) grows one segment instead of leaving one tiny segment per compaction round.
pub fn absorb_previous(previous_bytes: usize, previous_count: usize, budget: usize) -> bool {
    previous_bytes < budget / 8 * 7 && previous_count < MAX_SEGMENT_SAMPLES
}

/// Encodes merged samples (sorted, no duplicates) as segments of at most `budget` bytes and
/// `MAX_SEGMENT_SAMPLES` samples, as (first timestamp, bytes). A segment but the last stops
/// within 1/16 of the budget, at the sample cap, or where one more sample would not fit
/// (a few encodings each, usually two); a single sample larger than the budget
/// (metadata up to 4 KiB) is a segment of its own.
pub fn encode_to_fit(samples: &[Sample], budget: usize) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = samples;
    // Encoded size grows about linearly with the sample count, so the count that fitted
    // the last segment is where the next one starts looking.
    let mut guess = MAX_SEGMENT_SAMPLES;
    while !rest.is_empty() {
        let most = rest.len().min(MAX_SEGMENT_SAMPLES);
        let (n, bytes) = fit_one(&rest[..most], budget, guess.min(most));
        out.push((rest[0].timestamp_ms, bytes));
        rest = &rest[n..];
        guess = n;
    }
    out
}

/// The longest prefix of `samples` (found within a few encodings) whose segment fits
/// `budget`, starting from `n` samples; a single sample always "fits".
fn fit_one(samples: &[Sample], budget: usize, mut n: usize) -> (usize, Vec<u8>) {
    // Full enough: within 1/16 of the budget.
    let full = budget / 16 * 15;
    let mut fits: Option<(usize, Vec<u8>)> = None;
    // The smallest count known not to fit.
    let mut too_many = samples.len() + 1;
    for tries in 1.. {
        let bytes = segment::encode(&samples[..n]);
        let len = bytes.len();
        if len <= budget || n == 1 {
            if len >= full || n + 1 >= too_many {
                return (n, bytes);
            }
            fits = Some((n, bytes));
        } else {
            too_many = n;
        }
        let floor = fits.as_ref().map_or(1, |(f, _)| f + 1);
        // Stop at the best fit once the bounds meet or after six tries; until something
        // fits, `n` only shrinks (a single sample always fits), so this ends.
        if fits.is_some() && (floor >= too_many || tries >= 6) {
            break;
        }
        // Aim at 31/32 of the budget so the next try usually fits.
        let aim = (n as u128 * (budget as u128 * 31 / 32) / len.max(1) as u128) as usize;
        n = aim.clamp(floor, too_many - 1);
    }
    fits.expect("BUG: the loop leaves only with a fitting prefix")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts: i64, v: f64) -> Sample {
        Sample {
            timestamp_ms: ts,
            value: v,
            metadata: None,
        }
    }

    fn check(old: &[(i64, f64)], new: &[(i64, f64)], expected: &[(i64, f64)], replaced: usize) {
        let (out, r) = merge(
            old.iter().map(|&(t, v)| s(t, v)).collect(),
            new.iter().map(|&(t, v)| s(t, v)).collect(),
        );
        let got: Vec<(i64, f64)> = out.iter().map(|x| (x.timestamp_ms, x.value)).collect();
        assert_eq!((got.as_slice(), r), (expected, replaced));
    }

    #[test]
    fn merges() {
        check(&[], &[(1, 1.0)], &[(1, 1.0)], 0);
        check(&[(1, 1.0)], &[], &[(1, 1.0)], 0);
        check(
            &[(1, 1.0), (3, 3.0)],
            &[(2, 2.0)],
            &[(1, 1.0), (2, 2.0), (3, 3.0)],
            0,
        );
        check(
            &[(1, 1.0), (2, 2.0)],
            &[(2, 9.0), (4, 4.0)],
            &[(1, 1.0), (2, 9.0), (4, 4.0)],
            1,
        );
        check(
            &[(5, 5.0)],
            &[(1, 1.0), (5, 6.0), (9, 9.0)],
            &[(1, 1.0), (5, 6.0), (9, 9.0)],
            1,
        );
    }

    /// A noisy 2-decimal gauge: steps of −0.20…+0.20 from a deterministic generator.
    fn noisy(n: usize, from_ts: i64) -> Vec<Sample> {
        let (mut x, mut v) = (0x9e37_79b9_7f4a_7c15u64, 100.0f64);
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v = ((v * 100.0).round() + (x % 41) as f64 - 20.0) / 100.0;
                s(from_ts + i as i64 * 10_000, v)
            })
            .collect()
    }

    #[test]
    fn segments_fill_their_page_and_cover_every_sample() {
        let budget = segment_budget("bench", "s1");
        for samples in [
            noisy(40_000, 0),
            (0..70_000).map(|t| s(t * 10_000, 7.0)).collect(),
            noisy(3, 0),
        ] {
            let segments = encode_to_fit(&samples, budget);
            let mut decoded = Vec::new();
            for (i, (start, bytes)) in segments.iter().enumerate() {
                assert!(bytes.len() <= budget, "segment {i}: {} bytes", bytes.len());
                let part = segment::decode(bytes).unwrap();
                assert_eq!(*start, part[0].timestamp_ms);
                // Every segment but the last is full: near the budget, or at the count cap.
                if i + 1 < segments.len() {
                    assert!(
                        bytes.len() >= budget / 16 * 15 || part.len() == MAX_SEGMENT_SAMPLES,
                        "segment {i} of {}: {} bytes, {} samples",
                        segments.len(),
                        bytes.len(),
                        part.len()
                    );
                }
                decoded.extend(part);
            }
            assert_eq!(decoded, samples);
        }
    }

    #[test]
    fn a_sample_bigger_than_the_budget_is_a_segment_of_its_own() {
        let mut samples = noisy(10, 0);
        // 4,000 hex digits of noise: ~2,000 bytes even compressed.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: String = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_digit((x % 16) as u32, 16).unwrap()
            })
            .collect();
        samples[4].metadata = Some(format!("{{\"k\":\"{noise}\"}}").into());
        let segments = encode_to_fit(&samples, 1024);
        let counts: Vec<usize> = segments
            .iter()
            .map(|(_, b)| segment::decode(b).unwrap().len())
            .collect();
        assert_eq!(counts, vec![4, 1, 5]);
    }

    #[test]
    fn the_last_segment_takes_samples_while_it_has_room() {
        let budget = segment_budget("p", "m");
        assert!(absorb_previous(100, 10, budget));
        assert!(!absorb_previous(budget / 8 * 7, 10, budget));
        assert!(!absorb_previous(100, MAX_SEGMENT_SAMPLES, budget));
        // A long key leaves less of the leaf; a very long one still leaves a quarter.
        assert!(segment_budget("p", &"m".repeat(100)) < budget);
        assert_eq!(segment_budget("p", &"m".repeat(9000)), 2048);
    }
}
