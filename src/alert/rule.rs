//! Alert rules: the stored form (version 1, `docs/format.md`) and its validation. Pure: a
//! body in, a checked `Rule` or a message naming the field out. Durations stay as the user
//! wrote them (`5m`), checked here and read back through the accessors.

use crate::query::plan::parse_duration_ms;
use crate::query::Agg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const RULE_VERSION: u32 = 1;
/// The default repeat interval while firing (Alertmanager's and Grafana's default).
pub const DEFAULT_REPEAT: &str = "4h";
const MAX_TEXT: usize = 200;
const MAX_CHANNELS: usize = 20;
const MIN_WINDOW_MS: i64 = 5 * 60_000;
const MAX_WINDOW_MS: i64 = 30 * 86_400_000;
/// The aggregations a threshold or change rule may use.
pub const AGGS: [&str; 6] = ["avg", "sum", "min", "max", "count", "last"];
pub const OPS: [&str; 6] = [">", "<", ">=", "<=", "==", "!="];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub metric_id: String,
    /// Only samples whose metadata has each KEY equal to VALUE (as a query's `where`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
    pub condition: Condition,
    /// How long the condition must hold before the rule fires (`0s`: at once).
    #[serde(default = "zero", rename = "for")]
    pub hold: String,
    /// How often a firing rule notifies again.
    #[serde(default = "repeat")]
    pub repeat_interval: String,
    /// Channel ids of the rule's project.
    #[serde(default)]
    pub channels: Vec<String>,
    /// No notification is sent before this time (Unix ms); states still change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
    /// A rule whose metric has never reported is in state `nodata`; with this it fires.
    #[serde(default)]
    pub fire_on_no_data: bool,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

fn one() -> u32 {
    RULE_VERSION
}
fn zero() -> String {
    "0s".into()
}
fn repeat() -> String {
    DEFAULT_REPEAT.into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// `agg` over the last `window` compared with `value`; once firing, it resolves only when
    /// the value is back past `clear` (when given), so a value at the line does not flap.
    Threshold {
        agg: String,
        window: String,
        op: String,
        value: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear: Option<f64>,
    },
    /// No sample for `for`, or none around each tick of `cron` (UTC) within `grace`.
    Absence {
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        silence: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cron: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace: Option<String>,
    },
    /// `agg` over the last `window` against the same over the window before, in percent
    /// (`op` `<`, `percent` -50: down by more than half).
    Change {
        agg: String,
        window: String,
        op: String,
        percent: f64,
    },
}

/// A comparison, `value op bound`.
pub fn compare(op: &str, value: f64, bound: f64) -> bool {
    match op {
        ">" => value > bound,
        "<" => value < bound,
        ">=" => value >= bound,
        "<=" => value <= bound,
        "==" => value == bound,
        _ => value != bound,
    }
}

/// `0`, `0s` or a positive duration, in ms.
fn duration_or_zero(s: &str) -> Option<i64> {
    if s == "0" || s == "0s" {
        return Some(0);
    }
    parse_duration_ms(s)
}

impl Rule {
    pub fn hold_ms(&self) -> i64 {
        duration_or_zero(&self.hold).unwrap_or(0)
    }

    pub fn repeat_ms(&self) -> i64 {
        parse_duration_ms(&self.repeat_interval).unwrap_or(4 * 3_600_000)
    }

    /// The condition as a person reads it: `avg over 5m > 100`.
    pub fn describe(&self) -> String {
        match &self.condition {
            Condition::Threshold {
                agg,
                window,
                op,
                value,
                ..
            } => format!("{agg} over {window} {op} {value}"),
            Condition::Absence {
                silence: Some(f), ..
            } => format!("no sample for {f}"),
            Condition::Absence { cron, grace, .. } => format!(
                "no sample by {} (cron, UTC) + {}",
                cron.as_deref().unwrap_or("?"),
                grace.as_deref().unwrap_or("0s")
            ),
            Condition::Change {
                agg,
                window,
                op,
                percent,
            } => format!("{agg} over {window} vs the {window} before {op} {percent} %"),
        }
    }
}

/// The aggregation and window (ms) of a threshold or change condition.
pub fn agg_window(c: &Condition) -> Option<(Agg, i64)> {
    match c {
        Condition::Threshold { agg, window, .. } | Condition::Change { agg, window, .. } => Some((
            Agg::parse(agg).unwrap_or(Agg::Avg),
            parse_duration_ms(window).unwrap_or(MIN_WINDOW_MS),
        )),
        Condition::Absence { .. } => None,
    }
}

/// A parsed cron schedule of an absence rule (5 fields, or 6 with seconds first; UTC).
pub fn schedule(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .build()
        .parse(expr)
        .map_err(|e| format!("condition.cron {expr:?} is not a cron schedule: {e}"))
}

/// Checks a rule as posted. `known_channel` says whether a channel id exists in the project.
pub fn parse(
    body: &serde_json::Value,
    known_channel: impl Fn(&str) -> bool,
) -> Result<Rule, String> {
    let mut r: Rule =
        serde_json::from_value(body.clone()).map_err(|e| format!("invalid alert rule: {e}"))?;
    if r.version > RULE_VERSION {
        return Err(format!(
            "version {} is newer than this stathook's alert rules ({RULE_VERSION}); upgrade stathook",
            r.version
        ));
    }
    r.version = RULE_VERSION;
    r.name = r.name.trim().to_owned();
    if r.name.is_empty() || r.name.len() > MAX_TEXT {
        return Err(format!("name must be 1 to {MAX_TEXT} bytes"));
    }
    if r.metric_id.is_empty() || r.metric_id.len() > crate::ingest::MAX_METRIC_ID_BYTES {
        return Err(format!(
            "metricId must be 1 to {} bytes",
            crate::ingest::MAX_METRIC_ID_BYTES
        ));
    }
    if duration_or_zero(&r.hold).is_none() {
        return Err(format!(
            "for must be 0s or a duration like 30s, 5m, 1h; not {:?}",
            r.hold
        ));
    }
    if parse_duration_ms(&r.repeat_interval).is_none_or(|ms| ms < 60_000) {
        return Err(format!(
            "repeatInterval must be a duration of at least 1m (like 4h); not {:?}",
            r.repeat_interval
        ));
    }
    if r.channels.len() > MAX_CHANNELS {
        return Err(format!("channels: at most {MAX_CHANNELS}"));
    }
    if let Some(c) = r.channels.iter().find(|c| !known_channel(c)) {
        return Err(format!("channels: no channel {c:?} in this project"));
    }
    check_condition(&r.condition)?;
    Ok(r)
}

fn check_agg_window_op(agg: &str, window: &str, op: &str) -> Result<(), String> {
    if !AGGS.contains(&agg) {
        return Err(format!("condition.agg must be one of {}", AGGS.join(", ")));
    }
    if !parse_duration_ms(window).is_some_and(|ms| (MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&ms)) {
        return Err(format!(
            "condition.window must be a duration from 5m to 30d (like 15m, 1h, 7d); not {window:?}"
        ));
    }
    if !OPS.contains(&op) {
        return Err(format!("condition.op must be one of {}", OPS.join(" ")));
    }
    Ok(())
}

fn check_condition(c: &Condition) -> Result<(), String> {
    match c {
        Condition::Threshold {
            agg,
            window,
            op,
            value,
            clear,
        } => {
            check_agg_window_op(agg, window, op)?;
            if !value.is_finite() {
                return Err("condition.value must be a finite number".into());
            }
            if let Some(clear) = clear {
                let side_ok = match op.as_str() {
                    ">" | ">=" => clear <= value,
                    "<" | "<=" => clear >= value,
                    _ => {
                        return Err(
                            "condition.clear applies to >, >=, < and <= only".into()
                        )
                    }
                };
                if !clear.is_finite() || !side_ok {
                    return Err(format!(
                        "condition.clear must be a number on the resolved side of value ({} {value} for op {op})",
                        if op.starts_with('>') { "<=" } else { ">=" }
                    ));
                }
            }
        }
        Condition::Absence {
            silence,
            cron,
            grace,
        } => match (silence, cron) {
            (Some(f), None) => {
                if grace.is_some() {
                    return Err("condition.grace goes with condition.cron, not with for".into());
                }
                if parse_duration_ms(f).is_none_or(|ms| ms < 1_000) {
                    return Err(format!(
                        "condition.for must be a duration of at least 1s (like 10m); not {f:?}"
                    ));
                }
            }
            (None, Some(expr)) => {
                schedule(expr)?;
                if let Some(g) = grace {
                    if duration_or_zero(g).is_none() {
                        return Err(format!(
                            "condition.grace must be a duration like 30m; not {g:?}"
                        ));
                    }
                }
            }
            _ => {
                return Err(
                    "an absence condition takes either for (like 10m) or cron (like \"0 3 * * *\") with an optional grace".into(),
                )
            }
        },
        Condition::Change {
            agg,
            window,
            op,
            percent,
        } => {
            check_agg_window_op(agg, window, op)?;
            if !percent.is_finite() {
                return Err("condition.percent must be a finite number".into());
            }
        }
    }
    Ok(())
}

/// The grace of a cron absence condition, in ms.
pub fn grace_ms(grace: Option<&str>) -> i64 {
    grace.and_then(duration_or_zero).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(body: serde_json::Value) -> String {
        parse(&body, |c| c == "ch_1").unwrap_err()
    }

    #[test]
    fn a_threshold_rule_parses_with_defaults() {
        let r = parse(
            &json!({"name": " Slow API ", "metricId": "api_ms", "channels": ["ch_1"],
                    "condition": {"type": "threshold", "agg": "avg", "window": "5m", "op": ">", "value": 100, "clear": 90}}),
            |c| c == "ch_1",
        )
        .unwrap();
        assert_eq!(r.name, "Slow API");
        assert_eq!(r.hold_ms(), 0);
        assert_eq!(r.repeat_ms(), 4 * 3_600_000);
        assert_eq!(r.describe(), "avg over 5m > 100");
        assert_eq!(agg_window(&r.condition), Some((Agg::Avg, 300_000)));
    }

    #[test]
    fn refusals_name_the_field() {
        let base = |c: serde_json::Value| json!({"name": "n", "metricId": "m", "condition": c});
        let t = |extra: serde_json::Value| {
            let mut c =
                json!({"type": "threshold", "agg": "avg", "window": "5m", "op": ">", "value": 1});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            base(c)
        };
        assert!(err(t(json!({"agg": "median"}))).starts_with("condition.agg"));
        assert!(err(t(json!({"window": "1m"}))).starts_with("condition.window"));
        assert!(err(t(json!({"window": "31d"}))).starts_with("condition.window"));
        assert!(err(t(json!({"op": "=>"}))).starts_with("condition.op"));
        assert!(err(t(json!({"clear": 2}))).starts_with("condition.clear"));
        assert!(err(t(json!({"op": "==", "clear": 1}))).starts_with("condition.clear"));
        assert!(err(base(json!({"type": "absence"}))).contains("either for"));
        assert!(err(base(json!({"type": "absence", "cron": "61 * * * *"})))
            .starts_with("condition.cron"));
        assert!(err(base(
            json!({"type": "absence", "for": "10m", "grace": "1m"})
        ))
        .starts_with("condition.grace"));
        assert!(err(base(json!({"type": "sometimes"}))).starts_with("invalid alert rule"));
        let mut r = t(json!({}));
        r["channels"] = json!(["ch_2"]);
        assert!(err(r).starts_with("channels: no channel \"ch_2\""));
        let mut r = t(json!({}));
        r["for"] = json!("soon");
        assert!(err(r).starts_with("for must be"));
        let mut r = t(json!({}));
        r["name"] = json!("");
        assert!(err(r).starts_with("name"));
    }

    #[test]
    fn absence_by_cron_and_change_rules_parse() {
        let r = parse(
            &json!({"name": "backup", "metricId": "backup_done",
                    "condition": {"type": "absence", "cron": "0 3 * * *", "grace": "30m"}}),
            |_| false,
        )
        .unwrap();
        assert_eq!(r.describe(), "no sample by 0 3 * * * (cron, UTC) + 30m");
        let r = parse(
            &json!({"name": "signups", "metricId": "signups", "for": "1h",
                    "condition": {"type": "change", "agg": "sum", "window": "7d", "op": "<", "percent": -50}}),
            |_| false,
        )
        .unwrap();
        assert_eq!(r.hold_ms(), 3_600_000);
        assert_eq!(agg_window(&r.condition), Some((Agg::Sum, 7 * 86_400_000)));
    }
}
