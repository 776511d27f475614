//! Any body: parse_batch must return Ok or a message, never panic; an accepted batch must
//! satisfy every documented limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::ingest::*;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    if let Ok(b) = parse_batch(&mut buf, 1_700_000_000_000) {
        assert!(!b.project_id.is_empty() && b.project_id.len() <= MAX_PROJECT_ID_BYTES);
        assert!(!b.metrics.is_empty() && b.metrics.len() <= MAX_METRICS_PER_REQUEST);
        for m in &b.metrics {
            assert!(m.value.is_finite());
            assert!(m.timestamp_ms >= 0);
            assert!(m.metric_id.len() <= MAX_METRIC_ID_BYTES);
            assert!(m.metadata.as_ref().is_none_or(|t| t.len() <= MAX_METADATA_BYTES));
        }
    }
});
