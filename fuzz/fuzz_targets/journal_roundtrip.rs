//! Structure-aware: any batch encoded as records in a frame, appended after a header, must
//! scan back to the same samples; any cut of that file must scan to a prefix of whole frames
//! (never a partial one), and report damage for any non-zero leftover.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stathook::ingest::ValidMetric;
use stathook::journal::{record, recover};

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<Vec<Metric>>,
    cut: u16,
}

#[derive(Arbitrary, Debug)]
struct Metric {
    id: String,
    name: String,
    unit: Option<String>,
    timestamp_ms: i64,
    value: f64,
    metadata: Option<String>,
}

fuzz_target!(|input: Input| {
    let mut file = record::encode_header(1, 3).to_vec();
    let mut frame_ends = vec![file.len()];
    let mut sent = Vec::new();
    for metrics in input.frames.iter().filter(|f| !f.is_empty()) {
        let valid: Vec<ValidMetric<'_>> = metrics
            .iter()
            .map(|m| ValidMetric {
                metric_id: &m.id,
                metric_name: &m.name,
                unit: m.unit.as_deref(),
                timestamp_ms: m.timestamp_ms,
                value: m.value,
                metadata: m.metadata.clone(),
            })
            .collect();
        let mut rec = Vec::new();
        record::encode_record(&mut rec, "project", valid.iter(), valid.len());
        let mut frame = record::FrameBuilder::new(rec.len());
        frame.push(&rec);
        file.extend_from_slice(frame.finish());
        frame_ends.push(file.len());
        sent.push(valid);
    }
    let scan = recover::scan(&file, 3, 1).unwrap();
    assert!(scan.damage.is_none());
    assert_eq!(scan.records.len(), sent.len());
    for (rec, metrics) in scan.records.iter().zip(&sent) {
        assert_eq!(rec.project, "project");
        assert_eq!(rec.samples.len(), metrics.len());
        for (s, m) in rec.samples.iter().zip(metrics) {
            assert_eq!((s.metric_id, s.metric_name, s.unit, s.timestamp_ms), (m.metric_id, m.metric_name, m.unit, m.timestamp_ms));
            assert_eq!(s.value.to_bits(), m.value.to_bits());
            assert_eq!(s.metadata, m.metadata.as_deref());
        }
    }
    // A cut keeps exactly the frames that end before it.
    let cut = frame_ends[0] + usize::from(input.cut) % (file.len() - frame_ends[0] + 1);
    if let Ok(scan) = recover::scan(&file[..cut], 3, 1) {
        let whole = frame_ends.iter().filter(|e| **e <= cut).count() - 1;
        assert_eq!(scan.records.len(), whole);
        // Leftover bytes of a torn frame are damage, unless they are all zero: that is what
        // the zero-filled file looks like past its data, and nothing in them was acknowledged.
        let leftover = &file[frame_ends[whole]..cut];
        assert_eq!(scan.damage.is_some(), leftover.iter().any(|b| *b != 0));
    }
});
