//! How a stored metric appears to PromQL: its label set. A metricId in the canonical form
//! of a labelled series (`name{a="x"}`, see `ingest::series`, what the push formats store)
//! gives its name and labels back. Otherwise (a webhook's metricId) the name is the whole
//! metricId. `__name__` is that name when it is a valid Prometheus metric name; otherwise
//! every character outside `[a-zA-Z0-9_:]` (and a leading digit) becomes `_`, and the series
//! also carries a `metricId` label with the id itself, so two ids that map to the same name
//! stay two distinct series instead of colliding silently. `project` is the project id.
//!
//! A project may name metadata keys (`labelKeys`) whose values become labels of its webhook
//! metrics: each distinct combination of their values in a query's range is then a series
//! (`metadata_labels`), at most [`MAX_METADATA_LABEL_SETS`] per metric. Pure.

use crate::ingest::series::parse_canonical;
pub use crate::ingest::series::{is_metric_name, metric_name};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;

pub const NAME: &str = "__name__";
pub const PROJECT: &str = "project";
pub const METRIC_ID: &str = "metricId";

/// Metadata keys a project may show as labels.
pub const MAX_LABEL_KEYS: usize = 8;
/// Distinct combinations of metadata label values one metric may show in one query (each
/// is a series; past it the query is refused, naming the metric).
pub const MAX_METADATA_LABEL_SETS: usize = 1_000;
/// Longest metadata label value: longer values are cut at a character boundary (as the
/// push formats cap a label value).
pub const MAX_METADATA_LABEL_VALUE_BYTES: usize = 1_024;

/// Why `key` cannot be a metadata label key, if it cannot: it must be a label name, not
/// reserved (`__…`) and not one stathook sets itself.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{key:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
        ));
    }
    if key.starts_with("__") || key == PROJECT || key == METRIC_ID {
        return Err(format!("{key:?} is reserved"));
    }
    Ok(())
}

/// The labels a sample's metadata (a JSON object's text) gives for `keys`, in `keys`' order:
/// a string as it is, a number or boolean as JSON writes it, an array or object as its
/// compact JSON; a key that is absent, null or "" gives no label (Prometheus's empty label).
pub fn metadata_labels(metadata: Option<&str>, keys: &[String]) -> Vec<(String, String)> {
    let Some(text) = metadata else {
        return Vec::new();
    };
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
    else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| {
            let mut v = match object.get(k)? {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if v.is_empty() {
                return None;
            }
            if v.len() > MAX_METADATA_LABEL_VALUE_BYTES {
                let mut cut = MAX_METADATA_LABEL_VALUE_BYTES;
                while !v.is_char_boundary(cut) {
                    cut -= 1;
                }
                v.truncate(cut);
            }
            Some((k.clone(), v))
        })
        .collect()
}

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
    fn metadata_values_become_labels_of_the_named_keys() {
        let keys = ["region".to_string(), "host".to_string(), "n".to_string()];
        let got = metadata_labels(
            Some(r#"{"host":"a1","region":"eu","other":"x","n":3}"#),
            &keys,
        );
        let want = [("region", "eu"), ("host", "a1"), ("n", "3")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        assert_eq!(got, want);
        assert_eq!(
            metadata_labels(Some(r#"{"region":"","host":null,"n":[1,true]}"#), &keys),
            [("n".to_string(), "[1,true]".to_string())]
        );
        assert!(metadata_labels(None, &keys).is_empty());
        let long = format!(r#"{{"region":"{}"}}"#, "é".repeat(600));
        let v = &metadata_labels(Some(&long), &keys)[0].1;
        assert!(v.len() <= MAX_METADATA_LABEL_VALUE_BYTES && v.ends_with('é'));
        for bad in ["", "1x", "a-b", "__x", "project", "metricId", "é"] {
            assert!(check_label_key(bad).is_err(), "{bad}");
        }
        for good in ["region", "_x", "Host2"] {
            assert!(check_label_key(good).is_ok(), "{good}");
        }
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
