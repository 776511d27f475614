//! Any bytes: decode (and the summary and block-table readers) must fail cleanly or return
//! sorted samples that re-encode to a value that decodes to the same samples. Seeds include
//! segment versions 1–3 (the `v3-*` files: small form, blocks, metadata, raw and XOR floats).
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::segment;

fuzz_target!(|data: &[u8]| {
    // The unchecked path: read_summary trusts no checksum, and decodes small segments.
    let _ = segment::read_summary(data);
    let _ = segment::blocks(data);
    if let Ok(samples) = segment::decode(data) {
        if !samples.is_empty() && samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms) && samples.iter().all(|s| s.value.is_finite()) {
            let again = segment::decode(&segment::encode(&samples)).unwrap();
            assert_eq!(again, samples);
        }
    }
});
