//! The alert evaluator: every `--alert-interval`, each rule of each project whose tier has
//! alerts is measured on the query engine, judged and stepped (`alert::state`); the states
//! that changed and the notifications they cause are committed together (the outbox), and
//! delivery (`delivery.rs`) is woken. Live states (with each evaluation's value) are kept
//! in memory and loaded from the store at start, so a restart resumes them: a firing rule
//! does not notify again. Runs on the blocking pool, never on the ingest threads.

use super::delivery::OutboxItem;
use super::Reader;
use crate::alert::message::Alert;
use crate::alert::rule::{self, Condition, Rule};
use crate::alert::state::{self, Notice, Observation, RuleState};
use crate::outbound::Outbound;
use crate::query::{self, plan::Filter, Agg, Bucketing, Mode, Plan, SeriesResult};
use crate::store::{Store, StoreError, Tier};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// More notifications than this for one channel in one evaluation become one digest.
pub const DEFAULT_STORM_THRESHOLD: usize = 10;

type RuleKey = (String, String);

#[derive(Clone)]
pub struct Alerts {
    pub store: Arc<Store>,
    pub reader: Reader,
    pub outbound: Outbound,
    /// Base of the metric links in notifications (`--public-url`).
    pub public_url: String,
    pub storm_threshold: usize,
    pub(super) states: Arc<Mutex<HashMap<RuleKey, RuleState>>>,
    /// Woken when the outbox gains items.
    pub(super) wake: Arc<tokio::sync::Notify>,
}

/// What one evaluation did, for logs and benches.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RoundStats {
    pub rules: usize,
    pub changed: usize,
    pub notifications: usize,
}

/// Whether a tier has alerts (the spec: Pro and above).
pub fn tier_has_alerts(t: Tier) -> bool {
    t != Tier::Free
}

impl Alerts {
    pub fn open(
        store: Arc<Store>,
        reader: Reader,
        outbound: Outbound,
        public_url: String,
    ) -> Result<Alerts, StoreError> {
        let states: HashMap<RuleKey, RuleState> = store.alert_states()?.into_iter().collect();
        Ok(Alerts {
            store,
            reader,
            outbound,
            public_url,
            storm_threshold: DEFAULT_STORM_THRESHOLD,
            states: Arc::new(Mutex::new(states)),
            wake: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// A rule's live state (the stored one until its first evaluation here).
    pub fn state(&self, project: &str, id: &str) -> Option<RuleState> {
        self.states
            .lock()
            .get(&(project.to_owned(), id.to_owned()))
            .cloned()
    }

    /// A new rule's first state, stored with it.
    pub fn start(&self, project: &str, id: &str, now: i64) -> RuleState {
        let st = RuleState::new(now);
        self.states
            .lock()
            .insert((project.to_owned(), id.to_owned()), st.clone());
        st
    }

    pub fn forget(&self, project: &str, id: &str) {
        self.states
            .lock()
            .remove(&(project.to_owned(), id.to_owned()));
    }

    /// One evaluation of every rule at `now`.
    pub fn evaluate(&self, now: i64) -> Result<RoundStats, StoreError> {
        self.reader.journal.wait_applied();
        let rows: Vec<(String, serde_json::Value)> = self.store.alert_rules(None)?;
        // One rule this version cannot read (written by a newer one) does not stop the rest.
        let rules: Vec<(String, Rule)> = rows
            .into_iter()
            .filter_map(|(p, v)| match serde_json::from_value::<Rule>(v) {
                Ok(r) => Some((p, r)),
                Err(e) => {
                    tracing::warn!(project = %p, error = %e, "an alert rule this stathook cannot read is skipped");
                    None
                }
            })
            .collect();
        let mut tiers: HashMap<String, bool> = HashMap::new();
        let mut changed = Vec::new();
        let mut alerts: Vec<(String, Vec<String>, Alert)> = Vec::new();
        let mut stats = RoundStats::default();
        for (project, r) in &rules {
            let enabled = match tiers.get(project) {
                Some(&e) => e,
                None => {
                    let e = self
                        .store
                        .project(project)?
                        .is_some_and(|p| tier_has_alerts(p.tier));
                    tiers.insert(project.clone(), e);
                    e
                }
            };
            if !enabled {
                continue;
            }
            stats.rules += 1;
            let o = self.observe(project, r, now)?;
            let key = (project.clone(), r.id.clone());
            // Stepped in place: a state (with its history) is copied only when it changed.
            let mut states = self.states.lock();
            let st = states
                .entry(key)
                .or_insert_with(|| RuleState::new(r.created_at));
            let verdict = state::judge(r, &o, st.state == state::State::Firing);
            let (notice, worth_storing) = state::step(r, st, verdict, now);
            if worth_storing {
                changed.push(((project.clone(), r.id.clone()), st.clone()));
            }
            let st = st.clone_without_history();
            drop(states);
            if let Some(n) = notice {
                let muted = r.muted_until.is_some_and(|m| now < m);
                if !muted && !r.channels.is_empty() {
                    alerts.push((
                        project.clone(),
                        r.channels.clone(),
                        self.alert(project, r, &st, n),
                    ));
                }
            }
        }
        let items = self.outbox_items(alerts, now);
        stats.changed = changed.len();
        stats.notifications = items.len();
        self.store.commit_alert_round(&changed, &items)?;
        if !items.is_empty() {
            self.wake.notify_one();
        }
        Ok(stats)
    }

    /// One outbox item per channel and alert, or one digest per channel when a project's
    /// evaluation sends a channel more than `storm_threshold`.
    fn outbox_items(&self, alerts: Vec<(String, Vec<String>, Alert)>, now: i64) -> Vec<OutboxItem> {
        let mut per_channel: Vec<((String, String), Vec<Alert>)> = Vec::new();
        for (project, channels, a) in alerts {
            for c in channels {
                let key = (project.clone(), c);
                match per_channel.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(a.clone()),
                    None => per_channel.push((key, vec![a.clone()])),
                }
            }
        }
        let mut items = Vec::new();
        for ((project, channel), list) in per_channel {
            let groups: Vec<Vec<Alert>> = if list.len() > self.storm_threshold {
                vec![list]
            } else {
                list.into_iter().map(|a| vec![a]).collect()
            };
            for alerts in groups {
                items.push(OutboxItem::new(&project, &channel, alerts, now));
            }
        }
        items
    }

    fn alert(&self, project: &str, r: &Rule, st: &RuleState, n: Notice) -> Alert {
        let entry = self.reader.memtable.catalog_entry(project, &r.metric_id);
        Alert {
            event: match n {
                Notice::Firing | Notice::Repeat => "firing",
                Notice::Resolved => "resolved",
            }
            .into(),
            project: project.to_owned(),
            rule_id: r.id.clone(),
            rule_name: r.name.clone(),
            metric_id: r.metric_id.clone(),
            metric_name: entry
                .as_ref()
                .map_or_else(|| r.metric_id.clone(), |e| e.metric_name.to_string()),
            unit: entry.and_then(|e| e.unit.map(|u| u.to_string())),
            condition: r.describe(),
            value: st.value,
            at: st.evaluated_at,
            url: format!(
                "{}/projects/{}/metrics/{}",
                self.public_url.trim_end_matches('/'),
                path_segment(project),
                path_segment(&r.metric_id)
            ),
        }
    }

    /// What the rule's condition measures now.
    pub fn observe(&self, project: &str, r: &Rule, now: i64) -> Result<Observation, StoreError> {
        let reported = self
            .reader
            .memtable
            .catalog_entry(project, &r.metric_id)
            .is_some();
        let mut o = Observation {
            reported,
            ..Default::default()
        };
        if !reported {
            return Ok(o);
        }
        let one = |from: i64, to: i64, agg: Agg| self.aggregate(project, r, from, to, agg);
        match &r.condition {
            Condition::Threshold { .. } => {
                let (agg, w) = rule::agg_window(&r.condition).expect("threshold has a window");
                o.current = one(now - w, now, agg)?;
            }
            Condition::Change { .. } => {
                let (agg, w) = rule::agg_window(&r.condition).expect("change has a window");
                o.current = one(now - w, now, agg)?;
                o.previous = one(now - 2 * w, now - w - 1, agg)?;
            }
            Condition::Absence {
                silence,
                cron,
                grace,
            } => {
                // Judged on the samples' own timestamps: a late batch of old samples does
                // not count as the job reporting now.
                let from = match (silence, cron) {
                    (Some(f), _) => now - crate::query::plan::parse_duration_ms(f).unwrap_or(0),
                    (None, Some(expr)) => {
                        let g = rule::grace_ms(grace.as_deref());
                        let sched = rule::schedule(expr).map_err(StoreError::Corrupt)?;
                        match crate::alert::tick_at_or_before(&sched, now - g) {
                            Some(tick) if tick >= r.created_at => tick - g,
                            _ => {
                                o.too_early = true;
                                return Ok(o);
                            }
                        }
                    }
                    (None, None) => now,
                };
                let until = now + crate::ingest::MAX_FUTURE_SKEW_MS;
                o.current = Some(one(from, until, Agg::Count)?.unwrap_or(0.0));
            }
        }
        Ok(o)
    }

    fn aggregate(
        &self,
        project: &str,
        r: &Rule,
        from: i64,
        to: i64,
        agg: Agg,
    ) -> Result<Option<f64>, StoreError> {
        let plan = Plan {
            from_ms: from,
            to_ms: to,
            mode: Mode::Aggregate {
                agg,
                bucketing: Bucketing::Whole { from_ms: from },
            },
            filters: r
                .filter
                .iter()
                .map(|(k, v)| Filter {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        };
        let (result, _) = query::run(
            &self.reader.store,
            &self.reader.memtable,
            project,
            &r.metric_id,
            &plan,
        )?;
        Ok(match result {
            SeriesResult::Buckets(b) => b.first().map(|p| p.1),
            SeriesResult::Raw { .. } => None,
        })
    }
}

/// `s` as one URL path segment, as the web app's links write it (unreserved characters as
/// they are).
pub fn path_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Evaluates every `interval` until the task is dropped.
pub async fn run_evaluator(alerts: Alerts, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let a = alerts.clone();
        match tokio::task::spawn_blocking(move || a.evaluate(crate::clock::now_ms())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "alert evaluation failed; retrying at the next interval")
            }
            Err(e) => tracing::error!(error = %e, "alert evaluation panicked"),
        }
    }
}
