//! Any OTLP body, as protobuf or JSON: refused with a message or accepted as a well-formed
//! batch with a consistent partial success; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::ingest::otlp::{parse, Encoding};

mod push_common;

fuzz_target!(|data: &[u8]| {
    let Some((e, body)) = data.split_first() else {
        return;
    };
    let encoding = if e % 2 == 0 { Encoding::Protobuf } else { Encoding::Json };
    match parse(body, encoding, 1_700_000_000_000) {
        Ok(d) => {
            push_common::check(&d.batch);
            assert_eq!(d.rejected_points == 0, d.rejected_why.is_empty());
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
});
