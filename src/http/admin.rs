//! Admin API: projects, webhook connections and their API keys. Every handler takes an
//! `AdminToken`, so it cannot be reached without the admin token.

use super::reply::{json, ApiError, Reply};
use super::route::AdminToken;
use crate::app::App;
use crate::auth::{self, KeyOwner};
use crate::clock;
use crate::journal::Fsync;
use crate::store::{Project, Scope, Tier, Webhook};
use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// Longest project or webhook name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Longest caller-chosen project id: ids appear in every segment key.
pub const MAX_PROJECT_ID_BYTES: usize = 64;

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

fn view<'a>(app: &App, w: &'a Webhook, now_ms: i64) -> WebhookView<'a> {
    let usage = app.usage.get(&w.id);
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
            && app
                .config
                .max_key_age_ms
                .is_some_and(|max| key_age_ms > max),
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

fn str_field<'v>(
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

pub fn create_project(app: &App, _: AdminToken, body: Value) -> Result<Reply, ApiError> {
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
        None => app.config.default_tier,
        Some(t) => tier_of(t)?,
    };
    let retention = retention_field(&body)?;
    let p = Project {
        id,
        name: name.to_owned(),
        tier,
        created_at: clock::now_ms(),
        retention,
    };
    app.store.create_project(&p)?;
    app.limiter.set_tier(&p.id, p.tier);
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
pub fn set_tier(app: &App, _: AdminToken, id: &str, body: Value) -> Result<Reply, ApiError> {
    let tier = tier_of(str_field(&body, "tier", true)?.unwrap_or_default())?;
    let mut p = app
        .store
        .project(id)?
        .ok_or_else(|| ApiError::NotFound(format!("project {id:?} not found")))?;
    p.tier = tier;
    app.store.put_project(&p)?;
    app.limiter.set_tier(&p.id, tier);
    tracing::info!(project = %p.id, tier = ?tier, "tier set");
    Ok(json(StatusCode::OK, &p))
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
pub fn set_retention(app: &App, _: AdminToken, id: &str, body: Value) -> Result<Reply, ApiError> {
    if !body.is_object() || body.get("retention").is_none() {
        return Err(ApiError::BadRequest(
            "body must be {\"retention\": \"90d\"}, {\"retention\": \"forever\"} or {\"retention\": null} (server default)".into(),
        ));
    }
    let mut p = app
        .store
        .project(id)?
        .ok_or_else(|| ApiError::NotFound(format!("project {id:?} not found")))?;
    p.retention = retention_field(&body)?;
    app.store.put_project(&p)?;
    tracing::info!(project = %p.id, retention = ?p.retention, "retention set");
    Ok(json(StatusCode::OK, &p))
}

/// `DELETE /api/v1/projects/{p}/metrics/{m}`: the metric and every sample acknowledged
/// before the request.
pub fn delete_metric(
    app: &App,
    _: AdminToken,
    project: &str,
    metric: &str,
) -> Result<Reply, ApiError> {
    if app.store.project(project)?.is_none() {
        return Err(ApiError::NotFound(format!("project {project:?} not found")));
    }
    match app.delete_metric(project, metric) {
        Ok(true) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"deleted": true, "projectId": project, "metricId": metric}),
        )),
        Ok(false) => Err(ApiError::NotFound(format!(
            "metric {metric:?} not found in project {project:?}"
        ))),
        Err(e) => Err(ApiError::Unavailable(format!(
            "could not delete the metric, nothing was removed; retry later ({e})"
        ))),
    }
}

/// Bytes per chunk when streaming a backup file out.
const BACKUP_CHUNK_BYTES: usize = 256 << 10;

/// `POST /api/v1/admin/backup`: a consistent copy of the store (see `App::backup_to`),
/// streamed as the bytes of a store file. Restore by starting `stathook serve` on a data dir
/// holding it as `stathook.redb`.
pub async fn backup(app: &Arc<App>, _: AdminToken) -> Result<Reply, ApiError> {
    let dir = app.config.backup_tmp_dir();
    let path = dir.join(format!("{}.redb", auth::new_id("backup-")));
    let (a, p) = (app.clone(), path.clone());
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(p.parent().expect("BUG: backup path has a parent"))
            .map_err(|e| format!("create {}: {e}", p.display()))?;
        let stats = a.backup_to(&p)?;
        let file = std::fs::File::open(&p).map_err(|e| format!("open {}: {e}", p.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        // Unlinked now: the open handle keeps the bytes until the stream ends or breaks.
        let _ = std::fs::remove_file(&p);
        Ok::<_, String>((stats, file, len))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("BUG: backup task failed: {e}")))?;
    let (stats, mut file, len) = made.map_err(|e| {
        let _ = std::fs::remove_file(&path);
        ApiError::Unavailable(format!("backup failed: {e}"))
    })?;
    tracing::info!(
        bytes = len,
        segments = stats.segments,
        metrics = stats.metrics,
        "backup written"
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = vec![0u8; BACKUP_CHUNK_BYTES];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut reply = super::reply::streamed("application/octet-stream", rx);
    let h = reply.headers_mut();
    h.insert(hyper::header::CONTENT_LENGTH, len.into());
    let summary = format!(
        "projects={} keys={} metrics={} segments={}",
        stats.projects, stats.keys, stats.metrics, stats.segments
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&summary) {
        h.insert("x-stathook-backup", v);
    }
    Ok(reply)
}

/// `POST /api/v1/admin/compact`: one compaction round now (it also runs on its own every
/// `--compact-interval-secs`). Blocks until the round has committed.
pub fn compact(app: &App, _: AdminToken) -> Result<Reply, ApiError> {
    let s = app
        .compact_now()
        .map_err(|e| ApiError::Unavailable(format!("compaction failed, nothing changed: {e}")))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"generation": s.generation, "metrics": s.metrics,
            "samples": s.samples, "segmentsWritten": s.segments_written}),
    ))
}

/// The journal's sync mode, whether its appends bypass the page cache, and what the flusher
/// has done since the start: with `--fsync interval`, `syncs` far below `frames` is the
/// point; with `always` they are equal.
pub fn journal_status(app: &App, _: AdminToken) -> Result<Reply, ApiError> {
    let s = app.journal.status();
    let (mode, interval_ms) = match s.fsync {
        Fsync::Always => ("always", None),
        Fsync::Interval(every) => ("interval", Some(every.as_millis() as u64)),
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"fsync": mode, "fsyncIntervalMs": interval_ms,
            "directIo": s.direct, "generation": s.generation, "frames": s.frames,
            "syncs": s.syncs}),
    ))
}

pub fn list_projects(app: &App, _: AdminToken) -> Result<Reply, ApiError> {
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "projects": app.store.projects()? }),
    ))
}

pub fn get_project(app: &App, _: AdminToken, id: &str) -> Result<Reply, ApiError> {
    let p = app
        .store
        .project(id)?
        .ok_or_else(|| ApiError::NotFound(format!("project {id:?} not found")))?;
    Ok(json(StatusCode::OK, &p))
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
    app: &App,
    token: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let name = str_field(&body, "name", true)?.unwrap_or_default();
    create_key_record(app, token, project, name, Scope::Ingest)
}

/// `POST /api/v1/projects/{p}/keys {"scope":"read","name":…}`: a read key (`rk_…`) that
/// can query the project but not write to it or administer anything; `"scope":"ingest"`
/// makes a webhook connection, like `POST …/webhooks`.
pub fn create_key(
    app: &App,
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
    create_key_record(app, token, project, name, scope)
}

fn create_key_record(
    app: &App,
    _: AdminToken,
    project: &str,
    name: &str,
    scope: Scope,
) -> Result<Reply, ApiError> {
    if app.store.project(project)?.is_none() {
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
    app.store.put_webhook(&w, &[], Some(&hash))?;
    app.keys.insert(
        hash,
        KeyOwner {
            webhook_id: w.id.clone(),
            project_id: w.project_id.clone(),
            scope: w.scope,
        },
    );
    tracing::info!(key_id = %w.id, project = %w.project_id, scope = ?w.scope, key_prefix = %w.key_prefix, "API key created");
    Ok(json(StatusCode::CREATED, &with_key(app, &w, key)))
}

fn with_key<'a>(app: &App, w: &'a Webhook, key: String) -> WithKey<'a> {
    WithKey {
        webhook: view(app, w, clock::now_ms()),
        webhook_url: format!(
            "{}/api/webhooks/custom",
            app.config.public_url.trim_end_matches('/')
        ),
        api_key: key,
        project_id: &w.project_id,
    }
}

/// Webhook connections (ingest keys); `keys` lists read keys too.
pub fn list_webhooks(app: &App, _: AdminToken, project: Option<&str>) -> Result<Reply, ApiError> {
    list_records(app, project, Some(Scope::Ingest), "webhooks")
}

/// Every API key record of a project, both scopes.
pub fn list_keys(app: &App, _: AdminToken, project: &str) -> Result<Reply, ApiError> {
    list_records(app, Some(project), None, "keys")
}

fn list_records(
    app: &App,
    project: Option<&str>,
    scope: Option<Scope>,
    field: &str,
) -> Result<Reply, ApiError> {
    let all = app.store.webhooks()?;
    let now = clock::now_ms();
    let views: Vec<WebhookView> = all
        .iter()
        .filter(|w| project.is_none_or(|p| w.project_id == p))
        .filter(|w| scope.is_none_or(|s| w.scope == s))
        .map(|w| view(app, w, now))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ field: views })))
}

fn webhook(app: &App, id: &str) -> Result<(Webhook, [u8; 32]), ApiError> {
    let w = app
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
    app: &App,
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
    let (mut w, old) = webhook(app, id)?;
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
    app.store.put_webhook(&w, &hashes, Some(&hash))?;
    for (h, prefix) in dead {
        app.keys.retire(h, retired(&w, &prefix, "rotated"));
    }
    if grace_ms > 0 && !hashes.contains(&old) {
        app.keys
            .insert_until(old, owner(&w), Some(now + grace_ms), old_prefix.clone());
    }
    app.keys.insert(hash, owner(&w));
    tracing::info!(webhook = %w.id, key_prefix = %w.key_prefix, old_key_prefix = %old_prefix,
        grace_s = grace_ms / 1000, "API key rotated");
    Ok(json(StatusCode::OK, &with_key(app, &w, key)))
}

/// `POST /api/v1/webhooks/{id}/revoke`: the current key and any in its grace period stop
/// working at once.
pub fn revoke_key(app: &App, _: AdminToken, id: &str) -> Result<Reply, ApiError> {
    let (mut w, current) = webhook(app, id)?;
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
        app.store.put_webhook(&w, &hashes, None)?;
        for (h, prefix) in dead {
            app.keys.retire(h, retired(&w, &prefix, "revoked"));
        }
        tracing::info!(webhook = %w.id, key_prefix = %w.key_prefix, "API key revoked");
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "webhook": view(app, &w, now) }),
    ))
}

/// `GET /api/v1/webhooks/{id}/usage` (or under its project): what the key did — requests
/// accepted and rejected by reason, samples stored, last use and address, and hourly counts
/// for the last 7 days (oldest first, empty hours included).
pub fn usage(app: &App, _: AdminToken, project: Option<&str>, id: &str) -> Result<Reply, ApiError> {
    let (w, _) = webhook(app, id)?;
    if project.is_some_and(|p| p != w.project_id) {
        return Err(ApiError::NotFound(format!(
            "webhook {id:?} not found in project {:?}",
            project.unwrap_or_default()
        )));
    }
    let now = clock::now_ms();
    let u = app.usage.get(&w.id);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "webhook": view(app, &w, now),
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
