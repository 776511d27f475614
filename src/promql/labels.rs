//! How a stored metric appears to PromQL: its label set. A metricId in the canonical form
//! of a labelled series (`name{a="x"}`, see `ingest::series`, what the push formats store)
//! gives its name and labels back. Otherwise (a webhook's metricId) the name is the whole
//! metricId. `__name__` is that name when it is a valid Prometheus metric name; otherwise
//! every character outside `[a-zA-Z0-9_:]` (and a leading digit) becomes `_`, and the series
//! also carries a `metricId` label with the id itself, so two ids that map to the same name
//! stay two distinct series instead of colliding silently. `project` is the project id. Pure.

use crate::ingest::series::parse_canonical;
pub use crate::ingest::series::{is_metric_name, metric_name};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

pub const NAME: &str = "__name__";
pub const PROJECT: &str = "project";
pub const METRIC_ID: &str = "metricId";

/// The `__name__` of a stored metric.
pub fn family_name(metric_id: &str) -> String {
    match parse_canonical(metric_id) {
        Some((name, _)) => metric_name(name),
        None => metric_name(metric_id),
    }
}

/// The labels of one stored metric.
pub fn series_labels(project: &str, metric_id: &str) -> Labels {
    let mut l = Labels::new();
    let name = match parse_canonical(metric_id) {
        Some((name, pairs)) => {
            l.extend(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)));
            name
        }
        None => metric_id,
    };
    let mapped = metric_name(name);
    if mapped != name {
        l.insert(METRIC_ID.into(), metric_id.to_owned());
    }
    l.insert(NAME.into(), mapped);
    l.insert(PROJECT.into(), project.to_owned());
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_metric_names_are_mapped_and_kept_apart() {
        assert_eq!(metric_name("daily_signups"), "daily_signups");
        assert_eq!(metric_name("api.latency-ms"), "api_latency_ms");
        assert_eq!(metric_name("5xx"), "_5xx");
        let a = series_labels("p", "api.latency");
        let b = series_labels("p", "api-latency");
        assert_eq!(a[NAME], b[NAME]);
        assert_ne!(a, b, "the metricId label keeps them two series");
        assert!(!series_labels("p", "ok_name").contains_key(METRIC_ID));
    }

    #[test]
    fn labelled_series_give_their_labels_back() {
        let l = series_labels("p", r#"up{instance="h:1",job="a"}"#);
        let want: Labels = [
            (NAME, "up"),
            ("instance", "h:1"),
            ("job", "a"),
            (PROJECT, "p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(l, want);
        assert_eq!(family_name(r#"up{job="a"}"#), "up");
        // A name that is not a metric name keeps the whole id as its metricId label.
        let l = series_labels("p", r#"cpu.idle{host="a"}"#);
        assert_eq!(l[NAME], "cpu_idle");
        assert_eq!(l[METRIC_ID], r#"cpu.idle{host="a"}"#);
        assert_eq!(l["host"], "a");
    }
}
