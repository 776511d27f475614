//! Any bytes: decode must fail cleanly or return sorted samples that re-encode to a value
//! that decodes to the same samples.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::segment;

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = segment::decode(data) {
        if !samples.is_empty() && samples.windows(2).all(|w| w[0].timestamp_ms < w[1].timestamp_ms) && samples.iter().all(|s| s.value.is_finite()) {
            let again = segment::decode(&segment::encode(&samples)).unwrap();
            assert_eq!(again, samples);
        }
    }
});
