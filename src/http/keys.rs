//! Admin API, webhook connections and read keys: create (the key shown once), list, rotate
//! with a grace period, revoke, and each key's usage. The store and the key index are kept
//! in step. Every handler takes an `AdminToken`.

use super::projects::str_field;
use super::reply::{json, ApiError, Reply};
use super::route::AdminToken;
use crate::auth::{self, KeyOwner};
use crate::clock;
use crate::service::Accounts;
use crate::store::{Scope, Webhook};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// A webhook as the API shows it: the key's first characters, never its hash; with its
/// age and last use.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView<'a> {
    id: &'a str,
    project_id: &'a str,
    name: &'a str,
    key_prefix: &'a str,
    created_at: i64,
    key_created_at: i64,
    /// Whole days since the current key was issued.
    key_age_days: i64,
    /// True when the key is older than the server's `--max-key-age`: rotate it.
    key_too_old: bool,
    revoked_at: Option<i64>,
    status: &'static str,
    scope: Scope,
    last_used_at: Option<i64>,
    last_source_ip: Option<std::net::IpAddr>,
    /// Rotated-out keys that still work (grace period), with the time each stops.
    grace_keys: Vec<GraceKeyView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GraceKeyView<'a> {
    key_prefix: &'a str,
    valid_until: i64,
}

const DAY_MS: i64 = 86_400_000;

fn view<'a>(accounts: &Accounts, w: &'a Webhook, now_ms: i64) -> WebhookView<'a> {
    let usage = accounts.usage.get(&w.id);
    let key_age_ms = (now_ms - w.key_created_at).max(0);
    WebhookView {
        id: &w.id,
        project_id: &w.project_id,
        name: &w.name,
        key_prefix: &w.key_prefix,
        created_at: w.created_at,
        key_created_at: w.key_created_at,
        key_age_days: key_age_ms / DAY_MS,
        key_too_old: w.revoked_at.is_none()
            && accounts.max_key_age_ms.is_some_and(|max| key_age_ms > max),
        revoked_at: w.revoked_at,
        scope: w.scope,
        status: if w.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        },
        last_used_at: usage.last_used_at,
        last_source_ip: usage.last_source_ip,
        grace_keys: w
            .old_keys
            .iter()
            .filter(|k| k.valid_until > now_ms)
            .map(|k| GraceKeyView {
                key_prefix: &k.key_prefix,
                valid_until: k.valid_until,
            })
            .collect(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WithKey<'a> {
    webhook: WebhookView<'a>,
    webhook_url: String,
    api_key: String,
    project_id: &'a str,
}

pub fn create_webhook(
    accounts: &Accounts,
    token: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let name = str_field(&body, "name", true)?.unwrap_or_default();
    create_key_record(accounts, token, project, name, Scope::Ingest)
}

/// `POST /api/v1/projects/{p}/keys {"scope":"read","name":…}`: a read key (`rk_…`) that
/// can query the project but not write to it or administer anything; `"scope":"ingest"`
/// makes a webhook connection, like `POST …/webhooks`.
pub fn create_key(
    accounts: &Accounts,
    token: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let scope = match str_field(&body, "scope", true)? {
        Some("read") => Scope::Read,
        Some("ingest") => Scope::Ingest,
        other => {
            return Err(ApiError::BadRequest(format!(
                "scope must be read or ingest, not {:?}",
                other.unwrap_or_default()
            )))
        }
    };
    let name = str_field(&body, "name", false)?.unwrap_or(match scope {
        Scope::Read => "read key",
        Scope::Ingest => "webhook",
    });
    create_key_record(accounts, token, project, name, scope)
}

fn create_key_record(
    accounts: &Accounts,
    _: AdminToken,
    project: &str,
    name: &str,
    scope: Scope,
) -> Result<Reply, ApiError> {
    if accounts.store.project(project)?.is_none() {
        return Err(ApiError::NotFound(format!("project {project:?} not found")));
    }
    let now = clock::now_ms();
    let key = auth::new_secret(auth::API_KEY_PREFIX);
    let hash = auth::hash_secret(&key);
    let w = Webhook {
        id: auth::new_id(match scope {
            Scope::Ingest => "wh_",
            Scope::Read => "rk_",
        }),
        project_id: project.to_owned(),
        name: name.to_owned(),
        key_prefix: key[..auth::SHOWN_KEY_CHARS].to_owned(),
        key_hash: auth::hex(&hash),
        created_at: now,
        key_created_at: now,
        revoked_at: None,
        scope,
        old_keys: Vec::new(),
    };
    accounts.store.put_webhook(&w, &[], Some(&hash))?;
    accounts.keys.insert(
        hash,
        KeyOwner {
            webhook_id: w.id.clone(),
            project_id: w.project_id.clone(),
            scope: w.scope,
        },
    );
    tracing::info!(key_id = %w.id, project = %w.project_id, scope = ?w.scope, key_prefix = %w.key_prefix, "API key created");
    Ok(json(StatusCode::CREATED, &with_key(accounts, &w, key)))
}

fn with_key<'a>(accounts: &Accounts, w: &'a Webhook, key: String) -> WithKey<'a> {
    WithKey {
        webhook: view(accounts, w, clock::now_ms()),
        webhook_url: format!(
            "{}/api/webhooks/custom",
            accounts.public_url.trim_end_matches('/')
        ),
        api_key: key,
        project_id: &w.project_id,
    }
}

/// Webhook connections (ingest keys); `keys` lists read keys too.
pub fn list_webhooks(
    accounts: &Accounts,
    _: AdminToken,
    project: Option<&str>,
) -> Result<Reply, ApiError> {
    list_records(accounts, project, Some(Scope::Ingest), "webhooks")
}

/// Every API key record of a project, both scopes.
pub fn list_keys(accounts: &Accounts, _: AdminToken, project: &str) -> Result<Reply, ApiError> {
    list_records(accounts, Some(project), None, "keys")
}

fn list_records(
    accounts: &Accounts,
    project: Option<&str>,
    scope: Option<Scope>,
    field: &str,
) -> Result<Reply, ApiError> {
    let all = accounts.store.webhooks()?;
    let now = clock::now_ms();
    let views: Vec<WebhookView> = all
        .iter()
        .filter(|w| project.is_none_or(|p| w.project_id == p))
        .filter(|w| scope.is_none_or(|s| w.scope == s))
        .map(|w| view(accounts, w, now))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ field: views })))
}

fn webhook(accounts: &Accounts, id: &str) -> Result<(Webhook, [u8; 32]), ApiError> {
    let w = accounts
        .store
        .webhook(id)?
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id:?} not found")))?;
    let hash = auth::unhex32(&w.key_hash)
        .ok_or_else(|| ApiError::Internal(format!("webhook {id}: stored key hash is damaged")))?;
    Ok((w, hash))
}

fn owner(w: &Webhook) -> KeyOwner {
    KeyOwner {
        webhook_id: w.id.clone(),
        project_id: w.project_id.clone(),
        scope: w.scope,
    }
}

fn retired(w: &Webhook, key_prefix: &str, reason: &str) -> auth::RetiredKey {
    auth::RetiredKey {
        webhook_id: w.id.clone(),
        key_prefix: key_prefix.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Longest grace period a rotated-out key may keep working.
pub const MAX_GRACE_MS: i64 = 30 * DAY_MS;

/// `POST /api/v1/webhooks/{id}/rotate[?grace=10m]`: issues a new key. The old one stops
/// working at the same commit, or with a grace period once it is over, so clients can be
/// switched without losing a request. Also re-activates a revoked webhook ("revoke and
/// regenerate API keys anytime").
pub fn rotate_key(
    accounts: &Accounts,
    _: AdminToken,
    id: &str,
    grace: Option<&str>,
) -> Result<Reply, ApiError> {
    let grace_ms = match grace {
        None | Some("") | Some("0") => 0,
        Some(g) => crate::query::plan::parse_duration_ms(g)
            .filter(|ms| (0..=MAX_GRACE_MS).contains(ms))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "grace must be a duration of at most 30d such as 10m, 1h or 7d; not {g:?}"
                ))
            })?,
    };
    let (mut w, old) = webhook(accounts, id)?;
    let now = clock::now_ms();
    // Old keys whose grace is over leave the key table now.
    let mut dead: Vec<([u8; 32], String)> = w
        .old_keys
        .iter()
        .filter(|k| k.valid_until <= now)
        .filter_map(|k| Some((auth::unhex32(&k.key_hash)?, k.key_prefix.clone())))
        .collect();
    let old_prefix = w.key_prefix.clone();
    if w.revoked_at.is_none() {
        w.old_keys.push(crate::store::OldKey {
            key_prefix: old_prefix.clone(),
            key_hash: w.key_hash.clone(),
            valid_until: now + grace_ms,
            reason: "rotated".into(),
        });
        if grace_ms == 0 {
            dead.push((old, old_prefix.clone()));
        }
    }
    // Only the newest old keys are remembered; a forgotten one in grace stops working.
    while w.old_keys.len() > crate::store::MAX_OLD_KEYS {
        let k = w.old_keys.remove(0);
        dead.extend(auth::unhex32(&k.key_hash).map(|h| (h, k.key_prefix)));
    }
    let key = auth::new_secret(auth::API_KEY_PREFIX);
    let hash = auth::hash_secret(&key);
    w.key_prefix = key[..auth::SHOWN_KEY_CHARS].to_owned();
    w.key_hash = auth::hex(&hash);
    w.key_created_at = now;
    w.revoked_at = None;
    let hashes: Vec<[u8; 32]> = dead.iter().map(|(h, _)| *h).collect();
    accounts.store.put_webhook(&w, &hashes, Some(&hash))?;
    for (h, prefix) in dead {
        accounts.keys.retire(h, retired(&w, &prefix, "rotated"));
    }
    if grace_ms > 0 && !hashes.contains(&old) {
        accounts
            .keys
            .insert_until(old, owner(&w), Some(now + grace_ms), old_prefix.clone());
    }
    accounts.keys.insert(hash, owner(&w));
    tracing::info!(webhook = %w.id, key_prefix = %w.key_prefix, old_key_prefix = %old_prefix,
        grace_s = grace_ms / 1000, "API key rotated");
    Ok(json(StatusCode::OK, &with_key(accounts, &w, key)))
}

/// `POST /api/v1/webhooks/{id}/revoke`: the current key and any in its grace period stop
/// working at once.
pub fn revoke_key(accounts: &Accounts, _: AdminToken, id: &str) -> Result<Reply, ApiError> {
    let (mut w, current) = webhook(accounts, id)?;
    let now = clock::now_ms();
    if w.revoked_at.is_none() {
        let mut dead = vec![(current, w.key_prefix.clone())];
        for k in w.old_keys.iter_mut().filter(|k| k.valid_until > now) {
            k.valid_until = now;
            dead.extend(auth::unhex32(&k.key_hash).map(|h| (h, k.key_prefix.clone())));
        }
        w.old_keys.push(crate::store::OldKey {
            key_prefix: w.key_prefix.clone(),
            key_hash: w.key_hash.clone(),
            valid_until: now,
            reason: "revoked".into(),
        });
        if w.old_keys.len() > crate::store::MAX_OLD_KEYS {
            w.old_keys.remove(0);
        }
        w.revoked_at = Some(now);
        let hashes: Vec<[u8; 32]> = dead.iter().map(|(h, _)| *h).collect();
        accounts.store.put_webhook(&w, &hashes, None)?;
        for (h, prefix) in dead {
            accounts.keys.retire(h, retired(&w, &prefix, "revoked"));
        }
        tracing::info!(webhook = %w.id, key_prefix = %w.key_prefix, "API key revoked");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "webhook": view(accounts, &w, now) }),
    ))
}

/// `GET /api/v1/webhooks/{id}/usage` (or under its project): what the key did — requests
/// accepted and rejected by reason, samples stored, last use and address, and hourly counts
/// for the last 7 days (oldest first, empty hours included).
pub fn usage(
    accounts: &Accounts,
    _: AdminToken,
    project: Option<&str>,
    id: &str,
) -> Result<Reply, ApiError> {
    let (w, _) = webhook(accounts, id)?;
    if project.is_some_and(|p| p != w.project_id) {
        return Err(ApiError::NotFound(format!(
            "webhook {id:?} not found in project {:?}",
            project.unwrap_or_default()
        )));
    }
    let now = clock::now_ms();
    let u = accounts.usage.get(&w.id);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "webhook": view(accounts, &w, now),
            "accepted": u.accepted,
            "rejected": u.rejected,
            "rejectedTotal": u.rejected.total(),
            "samplesStored": u.samples_stored,
            "lastUsedAt": u.last_used_at,
            "lastSourceIp": u.last_source_ip,
            "hourly": u.hourly(now),
        }),
    ))
}

/// `GET …/webhooks/{id}/requests`: the key's last webhook requests, newest first, with the
/// exact error each refused one got ("Metrics not appearing", answered in one click).
pub fn requests(
    accounts: &Accounts,
    _: AdminToken,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let (w, _) = webhook(accounts, id)?;
    if w.project_id != project {
        return Err(ApiError::NotFound(format!(
            "webhook {id:?} not found in project {project:?}"
        )));
    }
    let u = accounts.usage.get(&w.id);
    let newest_first: Vec<_> = u.recent.iter().rev().collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "webhookId": w.id, "requests": newest_first }),
    ))
}
