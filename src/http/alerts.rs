//! `/api/v1/projects/{p}/alerts[/{id}]` (rules with their state and history) and
//! `/api/v1/projects/{p}/channels[/{id}[/test]]` (notification channels with their delivery
//! log, and Send test). Anyone who may read the project may look (channel URLs masked,
//! secrets never shown again); writing takes the admin token or an admin's session.

use super::reply::{json, ApiError, Reply};
use super::route::{AdminToken, ReadAccess};
use crate::alert::channel::{self, Channel};
use crate::alert::rule::{self, Rule};
use crate::alert::{message, RuleState};
use crate::service::{failing, tier_has_alerts, Alerts, Attempt};
use crate::{auth, clock};
use hyper::StatusCode;
use serde_json::{json, Value};

fn project_tier(a: &Alerts, project: &str) -> Result<crate::store::Tier, ApiError> {
    match a.store.project(project)? {
        Some(p) => Ok(p.tier),
        None => Err(ApiError::NotFound(format!("no project {project:?}"))),
    }
}

fn found_rule(a: &Alerts, project: &str, id: &str) -> Result<Rule, ApiError> {
    a.store
        .alert_rule(project, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no alert rule {id:?} in project {project:?}")))
}

fn found_channel(a: &Alerts, project: &str, id: &str) -> Result<Channel, ApiError> {
    a.store
        .channel(project, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no channel {id:?} in project {project:?}")))
}

/// A rule as the API shows it: the stored rule, its state, and with `history` its changes
/// (newest first).
fn rule_view(r: &Rule, st: Option<&RuleState>, history: bool) -> Value {
    let mut v = serde_json::to_value(r).expect("rules serialize");
    let st = st.cloned().unwrap_or_else(|| RuleState::new(r.created_at));
    v["state"] = json!(st.state.as_str());
    v["since"] = json!(st.since);
    v["value"] = json!(st.value);
    v["evaluatedAt"] = json!(st.evaluated_at);
    v["lastNotifiedAt"] = json!(st.last_notified_at);
    v["description"] = json!(r.describe());
    if history {
        let h: Vec<&crate::alert::state::Change> = st.history.iter().rev().collect();
        v["history"] = json!(h);
    }
    v
}

pub fn list_rules(a: &Alerts, access: &ReadAccess, project: &str) -> Result<Reply, ApiError> {
    access.check(project)?;
    project_tier(a, project)?;
    let rules: Vec<(String, Rule)> = a.store.alert_rules(Some(project))?;
    let rows: Vec<Value> = rules
        .iter()
        .map(|(_, r)| rule_view(r, a.state(project, &r.id).as_ref(), false))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "alerts": rows })))
}

pub fn get_rule(
    a: &Alerts,
    access: &ReadAccess,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    let r = found_rule(a, project, id)?;
    Ok(json(
        StatusCode::OK,
        &rule_view(&r, a.state(project, id).as_ref(), true),
    ))
}

fn checked(a: &Alerts, project: &str, body: &Value) -> Result<Rule, ApiError> {
    let channels: Vec<Channel> = a.store.channels(project)?;
    rule::parse(body, |c| channels.iter().any(|ch| ch.id == c)).map_err(ApiError::BadRequest)
}

pub fn create_rule(
    a: &Alerts,
    _: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    if !tier_has_alerts(project_tier(a, project)?) {
        return Err(ApiError::Forbidden(format!(
            "alerts are for the pro tier and above; project {project:?} is on free (PUT /api/v1/projects/{project}/tier to change it)"
        )));
    }
    let mut r = checked(a, project, &body)?;
    let now = clock::now_ms();
    r.id = auth::new_id("al_");
    r.created_at = now;
    r.updated_at = now;
    let st = a.start(project, &r.id, now);
    a.store.put_alert_rule(project, &r.id, &r, Some(&st))?;
    Ok(json(StatusCode::CREATED, &rule_view(&r, Some(&st), false)))
}

/// Changes the fields given (`{"mutedUntil": …}` mutes, `null` unmutes); the result is
/// checked as a whole. The state is kept.
pub fn update_rule(
    a: &Alerts,
    _: AdminToken,
    project: &str,
    id: &str,
    patch: Value,
) -> Result<Reply, ApiError> {
    let old = found_rule(a, project, id)?;
    let Value::Object(changes) = patch else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let mut merged = serde_json::to_value(&old).expect("rules serialize");
    for (k, v) in changes {
        if ["id", "createdAt", "updatedAt", "version"].contains(&k.as_str()) {
            continue;
        }
        merged[k] = v;
    }
    if merged["mutedUntil"].is_null() {
        merged
            .as_object_mut()
            .expect("an object")
            .remove("mutedUntil");
    }
    let mut r = checked(a, project, &merged)?;
    r.id = old.id;
    r.created_at = old.created_at;
    r.updated_at = clock::now_ms();
    a.store
        .put_alert_rule::<_, RuleState>(project, id, &r, None)?;
    Ok(json(
        StatusCode::OK,
        &rule_view(&r, a.state(project, id).as_ref(), false),
    ))
}

pub fn delete_rule(a: &Alerts, _: AdminToken, project: &str, id: &str) -> Result<Reply, ApiError> {
    if !a.store.remove_alert_rule(project, id)? {
        return Err(ApiError::NotFound(format!(
            "no alert rule {id:?} in project {project:?}"
        )));
    }
    a.forget(project, id);
    Ok(json(StatusCode::OK, &json!({"deleted": id})))
}

fn channel_view(a: &Alerts, project: &str, c: &Channel, with_log: bool) -> Result<Value, ApiError> {
    let log: Vec<Attempt> = a.store.delivery_log(project, &c.id)?;
    let mut v = c.public();
    v["failing"] = json!(failing(&log));
    v["lastAttempt"] = json!(log.last());
    if with_log {
        let newest_first: Vec<&Attempt> = log.iter().rev().collect();
        v["deliveries"] = json!(newest_first);
    }
    Ok(v)
}

pub fn list_channels(a: &Alerts, access: &ReadAccess, project: &str) -> Result<Reply, ApiError> {
    access.check(project)?;
    project_tier(a, project)?;
    let all: Vec<Channel> = a.store.channels(project)?;
    let rows = all
        .iter()
        .map(|c| channel_view(a, project, c, false))
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(json(StatusCode::OK, &json!({ "channels": rows })))
}

pub fn get_channel(
    a: &Alerts,
    access: &ReadAccess,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    let c = found_channel(a, project, id)?;
    Ok(json(StatusCode::OK, &channel_view(a, project, &c, true)?))
}

/// A new channel; a `webhook` one gets its signing secret, shown in this answer only.
pub fn create_channel(
    a: &Alerts,
    _: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    project_tier(a, project)?;
    let mut c = channel::parse(&body).map_err(ApiError::BadRequest)?;
    c.id = auth::new_id("ch_");
    c.created_at = clock::now_ms();
    if c.kind == "webhook" {
        c.secret = Some(message::new_secret());
    }
    a.store.put_channel(project, &c.id, &c)?;
    let mut v = c.public();
    if let Some(s) = &c.secret {
        v["secret"] = json!(s);
    }
    Ok(json(StatusCode::CREATED, &v))
}

pub fn delete_channel(
    a: &Alerts,
    _: AdminToken,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    found_channel(a, project, id)?;
    let rules: Vec<(String, Rule)> = a.store.alert_rules(Some(project))?;
    let users: Vec<&str> = rules
        .iter()
        .filter(|(_, r)| r.channels.iter().any(|c| c == id))
        .map(|(_, r)| r.id.as_str())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "channel {id:?} is used by alert rules {}; remove it from them first",
            users.join(", ")
        )));
    }
    a.store.remove_channel(project, id)?;
    Ok(json(StatusCode::OK, &json!({"deleted": id})))
}

/// Sends a test notification now; answers with the attempt (200 whether or not the channel
/// took it: the attempt says).
pub async fn test_channel(
    a: &Alerts,
    _: AdminToken,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let c = found_channel(a, project, id)?;
    let attempt = a.send_test(&c, project).await?;
    Ok(json(StatusCode::OK, &attempt))
}
