//! Admin API, projects: create, list, show, and set a project's tier, retention and the
//! metadata keys PromQL shows as labels. Every
//! handler takes an `AdminToken`, so it cannot be reached without the admin token.

use super::reply::{json, ApiError, Reply};
use super::route::AdminToken;
use crate::auth;
use crate::clock;
use crate::promql::labels;
use crate::service::Accounts;
use crate::store::{Project, Tier};
use hyper::StatusCode;
use serde_json::Value;

/// Longest project or webhook name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Longest caller-chosen project id: ids appear in every segment key.
pub const MAX_PROJECT_ID_BYTES: usize = 64;

pub(super) fn str_field<'v>(
    body: &'v Value,
    field: &str,
    required: bool,
) -> Result<Option<&'v str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) if required => {
            Err(ApiError::BadRequest(format!("{field} is required")))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                return Err(ApiError::BadRequest(format!("{field} must not be empty")));
            }
            if s.len() > MAX_NAME_BYTES || s.chars().any(char::is_control) {
                return Err(ApiError::BadRequest(format!(
                    "{field} must be at most {MAX_NAME_BYTES} bytes without control characters"
                )));
            }
            Ok(Some(s))
        }
        Some(_) => Err(ApiError::BadRequest(format!("{field} must be a string"))),
    }
}

pub fn create_project(accounts: &Accounts, _: AdminToken, body: Value) -> Result<Reply, ApiError> {
    if !body.is_object() {
        return Err(ApiError::BadRequest(
            "request body must be a JSON object".into(),
        ));
    }
    let name = str_field(&body, "name", true)?.unwrap_or_default();
    let id = match str_field(&body, "id", false)? {
        Some(id) => {
            let ok = id.len() <= MAX_PROJECT_ID_BYTES
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ApiError::BadRequest(format!(
                    "id must be 1 to {MAX_PROJECT_ID_BYTES} characters of A-Z, a-z, 0-9, '_' or '-'"
                )));
            }
            id.to_owned()
        }
        None => auth::new_id("prj_"),
    };
    let tier = match str_field(&body, "tier", false)? {
        None => accounts.default_tier,
        Some(t) => tier_of(t)?,
    };
    let retention = retention_field(&body)?;
    let label_keys = match body.get("labelKeys") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => label_keys_field(v)?,
    };
    let p = Project {
        id,
        name: name.to_owned(),
        tier,
        created_at: clock::now_ms(),
        retention,
        label_keys,
    };
    accounts.store.create_project(&p)?;
    accounts.limiter.set_tier(&p.id, p.tier);
    tracing::info!(project = %p.id, "project created");
    Ok(json(StatusCode::CREATED, &p))
}

fn tier_of(s: &str) -> Result<Tier, ApiError> {
    Tier::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "tier must be free, pro, scale or unlimited, not {s:?}"
        ))
    })
}

/// `PUT /api/v1/projects/{p}/tier {"tier":"pro"}`: takes effect from the next request.
pub fn set_tier(
    accounts: &Accounts,
    _: AdminToken,
    id: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let tier = tier_of(str_field(&body, "tier", true)?.unwrap_or_default())?;
    let p = update_project(accounts, id, |p| {
        p.tier = tier;
        Ok(())
    })?;
    accounts.limiter.set_tier(&p.id, tier);
    tracing::info!(project = %p.id, tier = ?tier, "tier set");
    Ok(json(StatusCode::OK, &p))
}

/// Reads project `id` (404 if there is none), changes it with `change` (which may refuse),
/// writes it back.
fn update_project(
    accounts: &Accounts,
    id: &str,
    change: impl FnOnce(&mut Project) -> Result<(), ApiError>,
) -> Result<Project, ApiError> {
    let mut p = accounts
        .store
        .project(id)?
        .ok_or_else(|| ApiError::NotFound(format!("project {id:?} not found")))?;
    change(&mut p)?;
    accounts.store.put_project(&p)?;
    Ok(p)
}

/// `retention`: absent or null (follow the server's `--retention`), `forever`, or a
/// duration such as `90d`.
fn retention_field(body: &Value) -> Result<Option<String>, ApiError> {
    match str_field(body, "retention", false)? {
        None => Ok(None),
        Some(s) => {
            crate::config::parse_retention(s).map_err(ApiError::BadRequest)?;
            Ok(Some(s.to_owned()))
        }
    }
}

/// `PUT /api/v1/projects/{p}/retention {"retention":"30d"|"forever"|null}`.
pub fn set_retention(
    accounts: &Accounts,
    _: AdminToken,
    id: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    if !body.is_object() || body.get("retention").is_none() {
        return Err(ApiError::BadRequest(
            "body must be {\"retention\": \"90d\"}, {\"retention\": \"forever\"} or {\"retention\": null} (server default)".into(),
        ));
    }
    let p = update_project(accounts, id, |p| {
        p.retention = retention_field(&body)?;
        Ok(())
    })?;
    tracing::info!(project = %p.id, retention = ?p.retention, "retention set");
    Ok(json(StatusCode::OK, &p))
}

/// `labelKeys`: a list of metadata keys, each a label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not
/// `__…`, not `project` or `metricId`), at most `MAX_LABEL_KEYS`, no repeats.
fn label_keys_field(v: &Value) -> Result<Vec<String>, ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    let Some(list) = v.as_array() else {
        return bad("labelKeys must be an array of metadata keys".into());
    };
    if list.len() > labels::MAX_LABEL_KEYS {
        return bad(format!(
            "labelKeys has {} keys; at most {} are allowed",
            list.len(),
            labels::MAX_LABEL_KEYS
        ));
    }
    let mut keys: Vec<String> = Vec::with_capacity(list.len());
    for (i, k) in list.iter().enumerate() {
        let Some(k) = k.as_str() else {
            return bad(format!("labelKeys[{i}] must be a string"));
        };
        if let Err(why) = labels::check_label_key(k) {
            return bad(format!("labelKeys[{i}] {why}"));
        }
        if keys.iter().any(|seen| seen == k) {
            return bad(format!("labelKeys[{i}] repeats {k:?}"));
        }
        keys.push(k.to_owned());
    }
    Ok(keys)
}

/// `PUT /api/v1/projects/{p}/labels {"labelKeys":["region","host"]}` (`[]` for none): which
/// metadata keys PromQL shows as labels of the project's webhook metrics. Nothing stored
/// changes; the next query sees the new labels.
pub fn set_label_keys(
    accounts: &Accounts,
    _: AdminToken,
    id: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let Some(v) = body.get("labelKeys") else {
        return Err(ApiError::BadRequest(
            "body must be {\"labelKeys\": [\"region\", …]} ([] for none)".into(),
        ));
    };
    let keys = label_keys_field(v)?;
    let p = update_project(accounts, id, |p| {
        p.label_keys = keys;
        Ok(())
    })?;
    tracing::info!(project = %p.id, label_keys = ?p.label_keys, "label keys set");
    Ok(json(StatusCode::OK, &p))
}

pub fn list_projects(accounts: &Accounts, _: AdminToken) -> Result<Reply, ApiError> {
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "projects": accounts.store.projects()? }),
    ))
}

pub fn get_project(accounts: &Accounts, _: AdminToken, id: &str) -> Result<Reply, ApiError> {
    let p = accounts
        .store
        .project(id)?
        .ok_or_else(|| ApiError::NotFound(format!("project {id:?} not found")))?;
    Ok(json(StatusCode::OK, &p))
}
