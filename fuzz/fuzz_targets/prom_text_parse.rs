//! Any Prometheus text body under a fixed grouping: refused with a message or accepted as a
//! well-formed batch in which every series carries the grouping's job; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod push_common;

fuzz_target!(|data: &[u8]| {
    let grouping = vec![("job".to_string(), "fuzz".to_string())];
    match stathook::ingest::prom_text::parse(data, &grouping, 1_700_000_000_000) {
        Ok(batch) => {
            push_common::check(&batch);
            let valid = batch.valid("p");
            assert!(valid.metrics.iter().all(|m| m.metric_id.contains("job=\"fuzz\"")));
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
