//! Compaction policy: pure decisions about how new samples and existing segments combine.
//! No I/O, no clock (ARCHITECTURE.md invariant 2).

use crate::segment::{Sample, MAX_SEGMENT_SAMPLES};

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

/// Whether the segment just before the new samples should be rewritten together with them:
/// yes while the result still fits one segment, so a slow metric (one sample a minute)
/// grows one segment instead of leaving one tiny segment per compaction round.
pub fn absorb_previous(previous_count: usize, new_count: usize) -> bool {
    previous_count + new_count <= MAX_SEGMENT_SAMPLES
}

/// Cuts merged samples into segments of at most `MAX_SEGMENT_SAMPLES`.
pub fn split(samples: &[Sample]) -> impl Iterator<Item = &[Sample]> {
    samples.chunks(MAX_SEGMENT_SAMPLES)
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

    #[test]
    fn splits_at_the_segment_limit() {
        let v: Vec<Sample> = (0..(MAX_SEGMENT_SAMPLES as i64 * 2 + 1))
            .map(|t| s(t, 0.0))
            .collect();
        let sizes: Vec<usize> = split(&v).map(<[Sample]>::len).collect();
        assert_eq!(sizes, vec![MAX_SEGMENT_SAMPLES, MAX_SEGMENT_SAMPLES, 1]);
        assert!(absorb_previous(MAX_SEGMENT_SAMPLES - 1, 1));
        assert!(!absorb_previous(MAX_SEGMENT_SAMPLES, 1));
    }
}
