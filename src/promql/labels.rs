//! How a stored metric appears to PromQL: its label set. `__name__` is the metricId when
//! that is a valid Prometheus metric name; otherwise every character outside
//! `[a-zA-Z0-9_:]` (and a leading digit) becomes `_`, and the series also carries a
//! `metricId` label with the id itself, so two ids that map to the same name stay two
//! distinct series instead of colliding silently. `project` is the project id. Pure.

use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

pub const NAME: &str = "__name__";
pub const PROJECT: &str = "project";
pub const METRIC_ID: &str = "metricId";

/// Whether `s` is a valid Prometheus metric name.
pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The `__name__` of a metricId.
pub fn metric_name(metric_id: &str) -> String {
    if is_metric_name(metric_id) {
        return metric_id.to_owned();
    }
    let mut out: String = metric_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The labels of one stored metric.
pub fn series_labels(project: &str, metric_id: &str) -> Labels {
    let mut l = Labels::new();
    let name = metric_name(metric_id);
    if name != metric_id {
        l.insert(METRIC_ID.into(), metric_id.to_owned());
    }
    l.insert(NAME.into(), name);
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
}
