//! Dashboards: the stored form (format version 1, `docs/format.md`) and its validation.
//! Pure: a body in, a checked `Dashboard` or a message naming the field out. The same JSON
//! is what export gives and import takes.

use serde::{Deserialize, Serialize};

/// The version written in every stored dashboard; an unknown newer one is refused.
pub const DASHBOARD_VERSION: u32 = 1;
pub const MAX_WIDGETS: usize = 50;
pub const MAX_METRICS_PER_WIDGET: usize = 10;
/// The grid's columns.
pub const GRID_COLUMNS: u32 = 12;
const MAX_TEXT: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub widgets: Vec<Widget>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Widget {
    #[serde(default)]
    pub id: String,
    /// `line`, `area`, `bars`, `stat`, `gauge`, `table` or `heartbeat`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    pub metric_ids: Vec<String>,
    /// The aggregation of a chart's buckets or a stat's value (`last` = the latest value).
    #[serde(default = "avg")]
    pub agg: String,
    /// Overrides the metric's unit when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Values from which a stat or gauge turns amber and red, ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// A gauge's full scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A heartbeat strip's expected seconds between points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_interval_s: Option<u64>,
    /// Grid place: column (0–11), row, width in columns (1–12), height in rows.
    #[serde(default)]
    pub x: u32,
    #[serde(default)]
    pub y: u32,
    #[serde(default = "six")]
    pub w: u32,
    #[serde(default = "four")]
    pub h: u32,
}

fn avg() -> String {
    "avg".into()
}
fn six() -> u32 {
    6
}
fn four() -> u32 {
    4
}

const KINDS: &[&str] = &[
    "line",
    "area",
    "bars",
    "stat",
    "gauge",
    "table",
    "heartbeat",
];
const AGGS: &[&str] = &[
    "avg", "min", "max", "sum", "count", "first", "last", "p50", "p90", "p95", "p99",
];

/// Parses and checks a dashboard body; ids of widgets without one are made by `new_id`.
pub fn parse(
    body: &serde_json::Value,
    mut new_id: impl FnMut() -> String,
) -> Result<Dashboard, String> {
    let mut d: Dashboard =
        serde_json::from_value(body.clone()).map_err(|e| format!("invalid dashboard: {e}"))?;
    if d.version > DASHBOARD_VERSION {
        return Err(format!(
            "version {} is newer than this stathook's dashboards ({DASHBOARD_VERSION}); upgrade stathook",
            d.version
        ));
    }
    d.version = DASHBOARD_VERSION;
    let name = d.name.trim();
    if name.is_empty() || name.len() > MAX_TEXT {
        return Err(format!("name must be 1 to {MAX_TEXT} bytes"));
    }
    d.name = name.to_owned();
    if d.widgets.len() > MAX_WIDGETS {
        return Err(format!("widgets: at most {MAX_WIDGETS}"));
    }
    for (i, w) in d.widgets.iter_mut().enumerate() {
        let at = |f: &str| format!("widgets[{i}].{f}");
        if !KINDS.contains(&w.kind.as_str()) {
            return Err(format!(
                "{} must be one of {}",
                at("type"),
                KINDS.join(", ")
            ));
        }
        if !AGGS.contains(&w.agg.as_str()) {
            return Err(format!("{} must be one of {}", at("agg"), AGGS.join(", ")));
        }
        if w.metric_ids.is_empty() || w.metric_ids.len() > MAX_METRICS_PER_WIDGET {
            return Err(format!(
                "{} must name 1 to {MAX_METRICS_PER_WIDGET} metrics",
                at("metricIds")
            ));
        }
        if w.metric_ids
            .iter()
            .any(|m| m.is_empty() || m.len() > MAX_TEXT)
        {
            return Err(format!(
                "{}: each metricId is 1 to {MAX_TEXT} bytes",
                at("metricIds")
            ));
        }
        if w.title.len() > MAX_TEXT {
            return Err(format!("{} is at most {MAX_TEXT} bytes", at("title")));
        }
        if w.unit.as_ref().is_some_and(|u| u.len() > 50) {
            return Err(format!("{} is at most 50 bytes", at("unit")));
        }
        if w.thresholds.iter().any(|t| !t.is_finite())
            || w.thresholds.windows(2).any(|p| p[0] > p[1])
        {
            return Err(format!(
                "{} must be finite numbers in ascending order",
                at("thresholds")
            ));
        }
        if w.kind == "heartbeat" && w.expected_interval_s.is_none_or(|s| s == 0) {
            return Err(format!(
                "{} is required for a heartbeat strip (seconds, > 0)",
                at("expectedIntervalS")
            ));
        }
        if w.w == 0 || w.w > GRID_COLUMNS || w.x >= GRID_COLUMNS || w.h == 0 || w.h > 24 {
            return Err(format!(
                "widgets[{i}]: a widget is 1 to {GRID_COLUMNS} columns wide at column 0 to {} and 1 to 24 rows high",
                GRID_COLUMNS - 1
            ));
        }
        if w.x + w.w > GRID_COLUMNS {
            w.x = GRID_COLUMNS - w.w;
        }
        if w.id.is_empty() {
            w.id = new_id();
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: serde_json::Value, want_err: Option<&str>) {
        let mut n = 0;
        let got = parse(&body, || {
            n += 1;
            format!("w{n}")
        });
        match (got, want_err) {
            (Ok(_), None) => {}
            (Err(e), Some(part)) => assert!(e.contains(part), "{e:?} should contain {part:?}"),
            (other, want) => panic!("{body}: got {other:?}, wanted error {want:?}"),
        }
    }

    #[test]
    fn dashboards_are_checked_field_by_field() {
        let w = json!({"type": "line", "metricIds": ["a"]});
        check(json!({"name": "Ops", "widgets": [w]}), None);
        check(json!({"name": " ", "widgets": []}), Some("name"));
        check(json!({"name": "x", "version": 2}), Some("upgrade stathook"));
        check(
            json!({"name": "x", "widgets": [{"type": "pie", "metricIds": ["a"]}]}),
            Some("widgets[0].type"),
        );
        check(
            json!({"name": "x", "widgets": [{"type": "line", "metricIds": []}]}),
            Some("widgets[0].metricIds"),
        );
        check(
            json!({"name": "x", "widgets": [{"type": "stat", "agg": "median", "metricIds": ["a"]}]}),
            Some("widgets[0].agg"),
        );
        check(
            json!({"name": "x", "widgets": [{"type": "heartbeat", "metricIds": ["a"]}]}),
            Some("expectedIntervalS"),
        );
        check(
            json!({"name": "x", "widgets": [{"type": "stat", "metricIds": ["a"], "thresholds": [5, 1]}]}),
            Some("ascending"),
        );
        check(
            json!({"name": "x", "widgets": [{"type": "line", "metricIds": ["a"], "w": 13}]}),
            Some("widgets[0"),
        );
    }

    #[test]
    fn ids_are_given_and_places_fit_the_grid() {
        let d = parse(
            &json!({"name": "x", "widgets": [{"type": "line", "metricIds": ["a"], "x": 10, "w": 6}]}),
            || "new".into(),
        )
        .unwrap();
        assert_eq!((d.widgets[0].id.as_str(), d.widgets[0].x), ("new", 6));
        assert_eq!(d.version, 1);
    }
}
