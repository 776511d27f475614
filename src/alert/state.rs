//! A rule's state machine: what an evaluation measured (`Observation`) judged against the
//! rule (`judge`), and the verdict moving the rule between ok, pending, firing and nodata
//! (`step`), with the history of its changes and the notice to send, if any. Pure: `now` is
//! an argument; the evaluator (`service::alerts`) measures and stores.

use super::rule::{self, compare, Condition, Rule};
use crate::query::Agg;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Changes kept per rule.
pub const HISTORY: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Pending,
    Firing,
    /// The metric has never reported.
    Nodata,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Firing => "firing",
            State::Nodata => "nodata",
        }
    }
}

/// One change of state, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub at: i64,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    pub state: State,
    /// When the current state began.
    pub since: i64,
    /// The value of the last evaluation (none when it had none).
    pub value: Option<f64>,
    pub evaluated_at: i64,
    /// The last firing notice (first or repeat), to space repeats and survive restarts.
    pub last_notified_at: Option<i64>,
    pub history: VecDeque<Change>,
}

impl RuleState {
    /// A new rule starts in `nodata` until its first evaluation.
    pub fn new(now: i64) -> RuleState {
        RuleState {
            state: State::Nodata,
            since: now,
            value: None,
            evaluated_at: 0,
            last_notified_at: None,
            history: VecDeque::new(),
        }
    }

    /// The state without its history (what a notification needs).
    pub fn clone_without_history(&self) -> RuleState {
        RuleState {
            history: VecDeque::new(),
            ..*self
        }
    }

    fn enter(&mut self, to: State, value: Option<f64>, now: i64) {
        self.history.push_back(Change {
            at: now,
            from: self.state,
            to,
            value,
        });
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        self.state = to;
        self.since = now;
    }
}

/// What one evaluation measured for a rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// Whether the metric has any sample at all.
    pub reported: bool,
    /// The aggregation over the window (threshold, change), or the number of samples in the
    /// span that must not be silent (absence); none for an empty window.
    pub current: Option<f64>,
    /// The aggregation over the window before (change).
    pub previous: Option<f64>,
    /// The span judged started before the rule existed (a cron tick before its creation):
    /// nothing can be said yet.
    pub too_early: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    NoData,
    /// The condition holds.
    Breach(Option<f64>),
    /// It does not, and a firing rule resolves.
    Clear(Option<f64>),
    /// No change: inside the hysteresis band while firing, or no value to judge.
    Hold(Option<f64>),
}

/// Sums and counts over an empty window are 0; other aggregations have no value.
fn or_zero(agg: Agg, v: Option<f64>) -> Option<f64> {
    match (agg, v) {
        (Agg::Sum | Agg::Count, None) => Some(0.0),
        _ => v,
    }
}

pub fn judge(rule: &Rule, o: &Observation, firing: bool) -> Verdict {
    if !o.reported {
        return Verdict::NoData;
    }
    match &rule.condition {
        Condition::Threshold {
            op, value, clear, ..
        } => {
            let agg = rule::agg_window(&rule.condition).map_or(Agg::Avg, |a| a.0);
            let Some(v) = or_zero(agg, o.current) else {
                return Verdict::Hold(None);
            };
            if compare(op, v, *value) {
                Verdict::Breach(Some(v))
            } else if firing && clear.is_some_and(|c| compare(op, v, c)) {
                Verdict::Hold(Some(v))
            } else {
                Verdict::Clear(Some(v))
            }
        }
        Condition::Absence { .. } => {
            if o.too_early {
                return Verdict::Hold(o.current);
            }
            match o.current {
                Some(n) if n > 0.0 => Verdict::Clear(Some(n)),
                _ => Verdict::Breach(Some(0.0)),
            }
        }
        Condition::Change { op, percent, .. } => {
            let agg = rule::agg_window(&rule.condition).map_or(Agg::Avg, |a| a.0);
            let (Some(cur), Some(prev)) = (or_zero(agg, o.current), or_zero(agg, o.previous))
            else {
                return Verdict::Hold(None);
            };
            if prev == 0.0 {
                return Verdict::Hold(None);
            }
            let change = (cur - prev) / prev.abs() * 100.0;
            if compare(op, change, *percent) {
                Verdict::Breach(Some(change))
            } else {
                Verdict::Clear(Some(change))
            }
        }
    }
}

/// What a step asks to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    Firing,
    /// Still firing, a repeat interval after the last notice.
    Repeat,
    Resolved,
}

/// Moves `st` by `verdict`; returns the notice to send, if any. `true` in the second place
/// when something worth storing changed (a state or a notice).
pub fn step(rule: &Rule, st: &mut RuleState, verdict: Verdict, now: i64) -> (Option<Notice>, bool) {
    let verdict = match verdict {
        Verdict::NoData if rule.fire_on_no_data => Verdict::Breach(None),
        v => v,
    };
    let value = match verdict {
        Verdict::NoData => None,
        Verdict::Breach(v) | Verdict::Clear(v) | Verdict::Hold(v) => v,
    };
    st.value = value;
    st.evaluated_at = now;
    let before = st.state;
    let notice = match (st.state, verdict) {
        (State::Nodata, Verdict::NoData) | (_, Verdict::Hold(_)) => None,
        (State::Firing, Verdict::NoData | Verdict::Clear(_)) => {
            st.enter(
                if verdict == Verdict::NoData {
                    State::Nodata
                } else {
                    State::Ok
                },
                value,
                now,
            );
            Some(Notice::Resolved)
        }
        (_, Verdict::NoData) => {
            st.enter(State::Nodata, value, now);
            None
        }
        (State::Ok, Verdict::Clear(_)) => None,
        (State::Pending | State::Nodata, Verdict::Clear(_)) => {
            st.enter(State::Ok, value, now);
            None
        }
        (State::Ok | State::Nodata, Verdict::Breach(_)) if rule.hold_ms() > 0 => {
            st.enter(State::Pending, value, now);
            None
        }
        (State::Ok | State::Nodata, Verdict::Breach(_)) => {
            st.enter(State::Firing, value, now);
            st.last_notified_at = Some(now);
            Some(Notice::Firing)
        }
        (State::Pending, Verdict::Breach(_)) if now - st.since >= rule.hold_ms() => {
            st.enter(State::Firing, value, now);
            st.last_notified_at = Some(now);
            Some(Notice::Firing)
        }
        (State::Pending, Verdict::Breach(_)) => None,
        (State::Firing, Verdict::Breach(_)) => {
            if now - st.last_notified_at.unwrap_or(st.since) >= rule.repeat_ms() {
                st.last_notified_at = Some(now);
                Some(Notice::Repeat)
            } else {
                None
            }
        }
    };
    (notice, notice.is_some() || st.state != before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(condition: serde_json::Value, hold: &str) -> Rule {
        rule::parse(
            &json!({"name": "r", "metricId": "m", "for": hold, "condition": condition}),
            |_| true,
        )
        .unwrap()
    }

    fn obs(v: f64) -> Observation {
        Observation {
            reported: true,
            current: Some(v),
            ..Default::default()
        }
    }

    /// Runs observations one per minute; returns the notices and the final state.
    fn run(r: &Rule, values: &[Observation]) -> (Vec<(i64, Notice)>, RuleState) {
        let mut st = RuleState::new(0);
        let mut out = Vec::new();
        for (i, o) in values.iter().enumerate() {
            let now = i as i64 * 60_000;
            let v = judge(r, o, st.state == State::Firing);
            if let (Some(n), _) = step(r, &mut st, v, now) {
                out.push((i as i64, n));
            }
        }
        (out, st)
    }

    #[test]
    fn a_threshold_fires_and_resolves_once() {
        let r = rule(
            json!({"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 100}),
            "0s",
        );
        let (n, st) = run(
            &r,
            &[obs(50.0), obs(150.0), obs(160.0), obs(40.0), obs(30.0)],
        );
        assert_eq!(n, vec![(1, Notice::Firing), (3, Notice::Resolved)]);
        assert_eq!(st.state, State::Ok);
        let path: Vec<(State, State)> = st.history.iter().map(|c| (c.from, c.to)).collect();
        assert_eq!(
            path,
            vec![
                (State::Nodata, State::Ok),
                (State::Ok, State::Firing),
                (State::Firing, State::Ok)
            ]
        );
        assert_eq!(st.history[1].value, Some(150.0));
    }

    #[test]
    fn for_holds_a_rule_in_pending() {
        let r = rule(
            json!({"type": "threshold", "agg": "avg", "window": "5m", "op": ">", "value": 1}),
            "2m",
        );
        let (n, st) = run(
            &r,
            &[obs(5.0), obs(5.0), obs(0.0), obs(5.0), obs(5.0), obs(5.0)],
        );
        // Pending at 0, cleared at 2 before the 2 minutes passed; pending again at 3, fires at 5.
        assert_eq!(n, vec![(5, Notice::Firing)]);
        assert_eq!(st.state, State::Firing);
        assert!(st
            .history
            .iter()
            .any(|c| c.from == State::Pending && c.to == State::Ok));
    }

    #[test]
    fn hysteresis_stops_a_flap() {
        let r = rule(
            json!({"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 100, "clear": 90}),
            "0s",
        );
        let (n, _) = run(
            &r,
            &[obs(101.0), obs(99.0), obs(101.0), obs(95.0), obs(90.0)],
        );
        assert_eq!(n, vec![(0, Notice::Firing), (4, Notice::Resolved)]);
        let flat = rule(
            json!({"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 100}),
            "0s",
        );
        let (n, _) = run(&flat, &[obs(101.0), obs(99.0), obs(101.0)]);
        assert_eq!(
            n.len(),
            3,
            "without a clear value the same values flap: {n:?}"
        );
    }

    #[test]
    fn a_firing_rule_repeats_after_its_interval() {
        let mut r = rule(
            json!({"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 1}),
            "0s",
        );
        r.repeat_interval = "3m".into();
        let (n, _) = run(&r, &vec![obs(5.0); 8]);
        assert_eq!(
            n,
            vec![
                (0, Notice::Firing),
                (3, Notice::Repeat),
                (6, Notice::Repeat)
            ]
        );
    }

    #[test]
    fn no_data_is_a_state_that_fires_only_when_asked() {
        let r = rule(json!({"type": "absence", "for": "10m"}), "0s");
        let silent = Observation::default();
        let (n, st) = run(&r, &[silent.clone(), silent.clone()]);
        assert!(n.is_empty());
        assert_eq!(st.state, State::Nodata);
        assert!(st.history.is_empty(), "no change from the initial nodata");
        let mut loud = r.clone();
        loud.fire_on_no_data = true;
        let (n, _) = run(&loud, &[silent]);
        assert_eq!(n, vec![(0, Notice::Firing)]);
    }

    #[test]
    fn absence_fires_on_an_empty_span_and_change_compares_windows() {
        let r = rule(json!({"type": "absence", "for": "10m"}), "0s");
        let (n, _) = run(
            &r,
            &[
                obs(3.0),
                Observation {
                    reported: true,
                    current: None,
                    ..Default::default()
                },
                obs(1.0),
            ],
        );
        assert_eq!(n, vec![(1, Notice::Firing), (2, Notice::Resolved)]);
        let c = rule(
            json!({"type": "change", "agg": "sum", "window": "1d", "op": "<", "percent": -50}),
            "0s",
        );
        let w = |cur: f64, prev: f64| Observation {
            reported: true,
            current: Some(cur),
            previous: Some(prev),
            too_early: false,
        };
        assert_eq!(
            judge(&c, &w(40.0, 100.0), false),
            Verdict::Breach(Some(-60.0))
        );
        assert_eq!(
            judge(&c, &w(60.0, 100.0), false),
            Verdict::Clear(Some(-40.0))
        );
        assert_eq!(
            judge(&c, &w(60.0, 0.0), false),
            Verdict::Hold(None),
            "no base to compare with"
        );
    }
}
