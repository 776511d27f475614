//! Any bytes as a tail pack: decode must fail cleanly or return members in strictly
//! ascending metricId order that re-encode to a pack decoding to the same members, and
//! `find` must return each member's own segment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::store::tails;

fuzz_target!(|data: &[u8]| {
    let Ok(members) = tails::decode(data) else {
        return;
    };
    assert!(!members.is_empty());
    assert!(members.windows(2).all(|w| w[0].0 < w[1].0));
    let owned: Vec<tails::Member> = members
        .iter()
        .map(|(metric, start, bytes)| tails::Member {
            metric: metric.to_string(),
            start: *start,
            bytes: bytes.to_vec(),
        })
        .collect();
    assert_eq!(tails::decode(&tails::encode(&owned)).unwrap(), members);
    for (metric, start, bytes) in &members {
        assert_eq!(tails::find(data, metric).unwrap(), Some((*start, *bytes)));
    }
});
