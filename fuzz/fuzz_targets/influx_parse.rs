//! Any line-protocol body at any precision: refused with a message naming a line, or
//! accepted as a well-formed batch; never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::ingest::influx::{parse, Precision};

mod push_common;

fuzz_target!(|data: &[u8]| {
    let Some((p, body)) = data.split_first() else {
        return;
    };
    let precision = ["ns", "us", "ms", "s", "m", "h"][*p as usize % 6];
    let precision = Precision::parse(precision).unwrap();
    match parse(body, precision, 1_700_000_000_000) {
        Ok(batch) => push_common::check(&batch),
        Err(e) => assert!(e.message.starts_with("line "), "{}", e.message),
    }
});
