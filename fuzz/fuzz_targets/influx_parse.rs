//! Any line-protocol body at any precision: refused with a message naming a line, or
//! accepted as a well-formed batch; never a panic. Where the fast path for plain lines
//! (`influx::plain`) takes a body, the crate's parser must accept it too and give the very
//! same samples.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::ingest::influx::{parse, parse_with_crate, plain, Precision};
use stathook::ingest::series::SeriesBatch;

mod push_common;

const NOW: i64 = 1_700_000_000_000;

fn samples(b: &SeriesBatch) -> Vec<(String, String, i64, u64)> {
    b.valid("p")
        .metrics
        .iter()
        .map(|m| {
            let id = m.metric_id.to_string();
            (id, m.metric_name.to_string(), m.timestamp_ms, m.value.to_bits())
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((p, body)) = data.split_first() else {
        return;
    };
    let precision = ["ns", "us", "ms", "s", "m", "h"][*p as usize % 6];
    let precision = Precision::parse(precision).unwrap();
    match parse(body, precision, NOW) {
        Ok(batch) => push_common::check(&batch),
        Err(e) => assert!(e.message.starts_with("line "), "{}", e.message),
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let mut fast = SeriesBatch::new();
    if plain::parse(text, &mut fast, &mut String::new(), precision, NOW).is_some() {
        let reference = parse_with_crate(text, precision, NOW)
            .unwrap_or_else(|e| panic!("the fast path took {text:?}, the crate refused: {}", e.message));
        assert_eq!(samples(&fast), samples(&reference), "{text:?}");
    }
});
