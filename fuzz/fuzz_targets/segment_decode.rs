//! Any bytes: decode (and the summary and block-table readers) must fail cleanly or return
//! sorted samples that re-encode to a value that decodes to the same samples, and appending
//! a later sample must fail cleanly or add exactly it. Seeds include
//! segment versions 1–4 (the `v3-*` and `v4-*` files: small form, blocks, metadata, raw and
//! XOR floats, a raw block sum).
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
        // Appending a later sample fails cleanly or adds exactly that sample.
        let later = samples.last().and_then(|s| s.timestamp_ms.checked_add(1)).map(|ts| {
            segment::Sample { timestamp_ms: ts, value: 1.5, metadata: None }
        });
        if let Some(later) = later {
            if let Ok(Some(appended)) = segment::append(data, std::slice::from_ref(&later)) {
                // Compared bit for bit: a damaged-but-checksummed value may be a NaN.
                let bits = |v: &[segment::Sample]| -> Vec<(i64, u64, Option<Box<str>>)> {
                    v.iter().map(|s| (s.timestamp_ms, s.value.to_bits(), s.metadata.clone())).collect()
                };
                let mut want = samples.clone();
                want.push(later);
                assert_eq!(bits(&segment::decode(&appended).unwrap()), bits(&want));
            }
        }
    }
});
