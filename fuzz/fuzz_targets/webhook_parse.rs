//! Any body: parse_batch must return Ok or a message, never panic; an accepted batch must
//! satisfy every documented limit, and a refusal's message (with the text near where JSON
//! parsing stopped) must be made without panicking and never be empty.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::ingest::*;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let b = match parse_batch(&mut buf, 1_700_000_000_000) {
        Ok(b) => b,
        Err(e) => {
            assert!(!e.explain(&buf).is_empty());
            return;
        }
    };
    {
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
