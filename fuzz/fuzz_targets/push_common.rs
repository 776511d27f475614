//! What every push parser's accepted batch must satisfy, shared by the push fuzz targets:
//! finite values, timestamps from 1970 on, metricIds within their limit, and a labelled
//! metricId that is exactly the canonical spelling of its labels (so PromQL reads back the
//! labels that were sent, and no two label sets share a metricId).
use stathook::ingest::series::{self, SeriesBatch, MAX_LABELS_PER_SERIES, MAX_SERIES_ID_BYTES};

pub fn check(batch: &SeriesBatch) {
    let valid = batch.valid("p");
    assert_eq!(valid.metrics.len(), batch.sample_count());
    for m in &valid.metrics {
        assert!(m.value.is_finite());
        assert!(m.timestamp_ms >= 0);
        assert!(!m.metric_id.is_empty() && m.metric_id.len() <= MAX_SERIES_ID_BYTES);
        if let Some((name, labels)) = series::parse_canonical(m.metric_id) {
            assert_eq!(name, m.metric_name);
            assert!(labels.len() <= MAX_LABELS_PER_SERIES);
            let owned: Vec<(String, String)> =
                labels.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            assert_eq!(series::canonical_id(name, &owned), m.metric_id);
        } else {
            assert_eq!(m.metric_id, m.metric_name, "an unlabelled series is its name");
        }
    }
}
