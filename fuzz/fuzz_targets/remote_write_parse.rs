//! Any remote-write body (snappy, then protobuf): refused with a message or accepted as a
//! well-formed batch, never a panic or an allocation the snappy header talked it into.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod push_common;

fuzz_target!(|data: &[u8]| {
    // Half the inputs as they come (snappy framing errors), half compressed first, so the
    // fuzzer reaches the protobuf decoder and the label checks.
    let body = match data.split_first() {
        Some((0, rest)) => snap::raw::Encoder::new().compress_vec(rest).unwrap(),
        _ => data.to_vec(),
    };
    match stathook::ingest::remote_write::parse(&body, 1_700_000_000_000) {
        Ok(batch) => push_common::check(&batch),
        Err(e) => assert!(!e.message.is_empty()),
    }
});
