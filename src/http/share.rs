//! Share links: a revocable read-only link to one dashboard. An admin creates one
//! (`…/dashboards/{d}/shares`; the token is shown once and stored only as its hash), anyone
//! who may view the project lists them, an admin revokes one. The token then opens
//! `/api/v1/share/{token}` — the dashboard, its widgets' data (`widgets::data`, so only the
//! stored widget queries run) and a change stream narrowed to its metrics — and nothing else
//! of the project: it is not a key, and every other endpoint refuses it.

use super::events;
use super::read::Format;
use super::reply::{json, ApiError, Reply};
use super::route::{AdminToken, Query};
use super::widgets;
use crate::service::{Dashboards, Reader};
use crate::store::Share;
use crate::web::dashboard::Dashboard;
use crate::{auth, clock};
use hyper::StatusCode;
use serde_json::json;
use std::collections::HashSet;

pub const SHARE_TOKEN_PREFIX: &str = "shl_";

fn dashboard_of(d: &Dashboards, project: &str, id: &str) -> Result<Dashboard, ApiError> {
    d.store
        .dashboard(project, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard {id:?} in project {project:?}")))
}

fn listed(s: &Share) -> serde_json::Value {
    json!({"id": s.id, "tokenPrefix": s.token_prefix, "createdAt": s.created_at})
}

/// `POST …/dashboards/{d}/shares`: a new link; its token is in this answer only.
pub fn create(
    d: &Dashboards,
    _: AdminToken,
    project: &str,
    dashboard: &str,
) -> Result<Reply, ApiError> {
    dashboard_of(d, project, dashboard)?;
    let token = auth::new_secret(SHARE_TOKEN_PREFIX);
    let share = Share {
        id: auth::new_id("sh_"),
        project: project.to_owned(),
        dashboard: dashboard.to_owned(),
        token_prefix: auth::shown_prefix(&token),
        created_at: clock::now_ms(),
    };
    d.store.put_share(&auth::hash_secret(&token), &share)?;
    let mut out = listed(&share);
    out["token"] = json!(token);
    out["url"] = json!(format!("/share/{token}"));
    out["embedUrl"] = json!(format!("/share/{token}/embed"));
    Ok(json(StatusCode::CREATED, &out))
}

/// `GET …/dashboards/{d}/shares`: the dashboard's links, without their tokens.
pub fn list(
    d: &Dashboards,
    _: AdminToken,
    project: &str,
    dashboard: &str,
) -> Result<Reply, ApiError> {
    dashboard_of(d, project, dashboard)?;
    let mut links: Vec<Share> = d
        .store
        .shares()?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.project == project && s.dashboard == dashboard)
        .collect();
    links.sort_by_key(|s| s.created_at);
    let rows: Vec<_> = links.iter().map(listed).collect();
    Ok(json(StatusCode::OK, &json!({ "shares": rows })))
}

/// `DELETE …/dashboards/{d}/shares/{id}`: the link stops working at once.
pub fn revoke(
    d: &Dashboards,
    _: AdminToken,
    project: &str,
    dashboard: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    if !d.store.remove_share(project, dashboard, id)? {
        return Err(ApiError::NotFound(format!(
            "no share link {id:?} on dashboard {dashboard:?} in project {project:?}"
        )));
    }
    Ok(json(StatusCode::OK, &json!({ "revoked": id })))
}

/// The link a token opens and its dashboard; 401 for a token that is unknown or revoked (or
/// whose dashboard is gone), so guessing counts in the failed-authentication guard.
fn resolve(reader: &Reader, token: &str) -> Result<(Share, Dashboard), ApiError> {
    let refused = || {
        ApiError::Unauthorized(
            "this share link is not valid: it was revoked, its dashboard was deleted, or it was mistyped".into(),
        )
    };
    if !token.starts_with(SHARE_TOKEN_PREFIX) {
        return Err(refused());
    }
    let share = reader
        .store
        .share(&auth::hash_secret(token))?
        .ok_or_else(refused)?;
    let dash = reader
        .store
        .dashboard(&share.project, &share.dashboard)?
        .ok_or_else(refused)?;
    Ok((share, dash))
}

/// `GET /api/v1/share/{token}`: the dashboard's name and widgets.
pub fn dashboard(reader: &Reader, token: &str) -> Result<Reply, ApiError> {
    let (_, dash) = resolve(reader, token)?;
    Ok(json(
        StatusCode::OK,
        &json!({"name": dash.name, "widgets": dash.widgets, "updatedAt": dash.updated_at}),
    ))
}

/// `GET /api/v1/share/{token}/widgets/{w}/data`.
pub fn widget_data(
    reader: &Reader,
    token: &str,
    widget: &str,
    q: &Query,
    format: Format,
) -> Result<Reply, ApiError> {
    let (share, dash) = resolve(reader, token)?;
    widgets::data(reader, &share.project, &dash, widget, q, format)
}

/// `GET /api/v1/share/{token}/events`: change notices for the dashboard's metrics only
/// (read again at each notice, so an edited dashboard is followed); the stream ends when the
/// link is revoked.
pub fn events(reader: &Reader, token: &str) -> Result<Reply, ApiError> {
    let (share, _) = resolve(reader, token)?;
    let (store, token) = (reader.store.clone(), token.to_owned());
    let gate: events::Gate = Box::new(move |ids| {
        // A store error ends the stream too: the page reconnects, and is refused or not.
        let share = store.share(&auth::hash_secret(&token)).ok()??;
        let dash: Dashboard = store.dashboard(&share.project, &share.dashboard).ok()??;
        let shown: HashSet<&str> = dash
            .widgets
            .iter()
            .flat_map(|w| w.metric_ids.iter().map(String::as_str))
            .collect();
        Some(
            ids.into_iter()
                .filter(|id| shown.contains(id.as_str()))
                .collect(),
        )
    });
    Ok(events::open(reader, &share.project, Some(gate)))
}
