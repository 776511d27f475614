//! Any query text: `promql::instant` and `promql::range` over a small fixed set of series must
//! answer or refuse with a message, never panic; a refusal's message is never empty and an
//! answer's vector never repeats a label set; a range query answers as the step-by-step
//! evaluator does, to the bit (or is refused as it is).
#![no_main]
use libfuzzer_sys::fuzz_target;
use stathook::promql::labels::Labels;
use stathook::promql::*;

fn fixed() -> Memory {
    let l = |name: &str, job: &str| -> Labels {
        [("__name__", name), ("project", "p"), ("job", job)]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    Memory(vec![
        (l("up", "a"), vec![(0, 1.0), (15_000, 1.0), (30_000, 0.0)]),
        (l("up", "b"), vec![(0, 1.0), (15_000, f64::NAN), (30_000, 1.0)]),
        (l("req_total", "a"), (0..=40).map(|i| (i * 15_000, (i % 7) as f64 * 10.0)).collect()),
    ])
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    if q.len() > 500 {
        return;
    }
    let f = fixed();
    match instant(&f, q, 300_000, DEFAULT_LOOKBACK_MS) {
        Ok(Value::Vector(v)) => {
            let mut seen = std::collections::HashSet::new();
            assert!(v.iter().all(|s| seen.insert((*s.labels).clone())), "{q}: a repeated label set");
        }
        Ok(_) => {}
        Err(e) => assert!(!e.message.is_empty()),
    }
    let bits = |r: &Result<Vec<Series>, EvalError>| -> Option<Vec<(Labels, Vec<(i64, u64)>)>> {
        r.as_ref().ok().map(|v| {
            v.iter()
                .map(|(l, p)| (l.clone(), p.iter().map(|&(t, x)| (t, x.to_bits())).collect()))
                .collect()
        })
    };
    let answer = range(&f, q, 0, 600_000, 45_000, DEFAULT_LOOKBACK_MS);
    let stepped = range_by_steps(&f, q, 0, 600_000, 45_000, DEFAULT_LOOKBACK_MS);
    match (&answer, &stepped) {
        (Ok(_), Ok(_)) => assert_eq!(bits(&answer), bits(&stepped), "{q}"),
        (Err(a), Err(b)) => {
            assert!(!a.message.is_empty());
            assert_eq!(a.kind, b.kind, "{q}: {a:?} vs {b:?}");
        }
        _ => panic!("{q}: {answer:?} but step by step {stepped:?}"),
    }
});
