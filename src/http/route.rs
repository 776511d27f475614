//! Routing: one `match` on (method, path segments). Path segments are percent-decoded after
//! splitting, so a metricId may contain an encoded `/`.

use super::reply::{ApiError, Reply};
use super::{alerts, forward, metrics, prom, push, share, webhook, widgets};
use super::{cors, dashboards, events, keys, maintenance, pages, projects, read, session};
use super::{BodyLimits, Front};
use crate::auth::{self, Bearer};
use crate::clock;
use crate::service::{Credentials, Services, SignedIn};
use crate::store::{Role, Scope};
use hyper::body::Incoming;
use hyper::{header, Method, Request, StatusCode};
use percent_encoding::percent_decode_str;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

/// How long a refused address waits for its 429.
pub const REFUSED_ADDRESS_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Answers one request from `peer`. An address that failed too often is refused (429)
/// before its credentials are even looked at. What counts against an address, for requests
/// that carried credentials: a 401 (a guessed or dead key), and a 413 or 408 (a body too
/// large or too slow: costly to receive, and never what an honest client sends twice a
/// second).
pub(super) async fn handle(
    front: Arc<Front>,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Result<Reply, Infallible> {
    // A sign-in attempt is a credential too: wrong passwords count like wrong keys.
    // So is a share link's token, in the path.
    let has_credentials = req.headers().contains_key(header::AUTHORIZATION)
        || (req.method() == Method::POST && req.uri().path() == "/api/v1/session")
        || req.uri().path().starts_with("/api/v1/share/");
    // Only requests with credentials are guarded or counted.
    let client = if has_credentials {
        client_addr(front.settings.trust_proxy, &req, peer)
    } else {
        peer
    };
    if has_credentials
        && front
            .services
            .auth_failures
            .blocked(client, clock::now_ms())
            .is_some()
    {
        // Tarpit: a client that waits for answers gets one a second at most, so a refused
        // address cannot keep the server busy at its own pace. Asked again after the delay:
        // the block may have ended meanwhile, and Retry-After counts from the answer.
        tokio::time::sleep(REFUSED_ADDRESS_DELAY).await;
        if let Some(wait) = front
            .services
            .auth_failures
            .blocked(client, clock::now_ms())
        {
            return Ok(ApiError::TooManyRequests {
                message: format!(
                    "too many failed authentications or refused bodies from this address; retry in {wait} s"
                ),
                retry_after_s: wait,
            }
            .into_reply());
        }
    }
    let cors_origin = cors::allowed_origin(&front.settings.cors_origins, req.headers());
    if let Some(origin) = &cors_origin {
        if let Some(preflight) = cors::preflight(origin, &req) {
            return Ok(preflight);
        }
    }
    // A cheap clone (shared bytes); turned into a printable prefix only for a warning.
    let presented = req.headers().get(header::AUTHORIZATION).cloned();
    let result = if answered_on_runtime(&req) {
        dispatch(&front.services, front.settings.body, req, client).await
    } else {
        // Everything but the webhook may hold a thread for long (a query over months, a
        // compaction, a redb commit), so it runs on tokio's blocking pool and the few
        // runtime threads (`--http-threads`) stay free for ingest. `Handle::block_on` keeps
        // the handlers' own awaits (request bodies, backups) working there.
        let (front, runtime) = (front.clone(), tokio::runtime::Handle::current());
        tokio::task::spawn_blocking(move || {
            runtime.block_on(dispatch(&front.services, front.settings.body, req, client))
        })
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(format!("request handler failed: {e}"))))
    };
    let mut reply = match result {
        Ok(r) => r,
        Err(e) => e.into_reply(),
    };
    if let Some(origin) = cors_origin {
        cors::allow(&mut reply, origin);
    }
    let counts_against = matches!(
        reply.status(),
        StatusCode::UNAUTHORIZED | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    );
    if has_credentials
        && counts_against
        && front
            .services
            .auth_failures
            .record_failure(client, clock::now_ms())
    {
        let key_prefix = presented_key_prefix(presented.as_ref());
        tracing::warn!(address = %client, %key_prefix, last_status = reply.status().as_u16(),
            "burst of failed authentications or refused bodies from one address; refusing it for a while");
    }
    Ok(reply)
}

/// The webhook, the push formats and the health checks: short, never blocking on disk,
/// answered on the runtime's threads. Every other route goes to the blocking pool (see `handle`).
fn answered_on_runtime(req: &Request<Incoming>) -> bool {
    match req.uri().path().trim_matches('/') {
        "api/webhooks/custom"
        | "api/v1/write"
        | "api/v1/push"
        | "api/v2/write"
        | "write"
        | "v1/metrics" => req.method() == Method::POST,
        "healthz" | "ping" => true,
        p if p.starts_with("metrics/job/") => matches!(*req.method(), Method::PUT | Method::POST),
        _ => false,
    }
}

/// What a log line may show of the key in an `Authorization` header: its printable prefix.
/// Computed only when a warning is logged, never per request.
pub(super) fn presented_key_prefix(authorization: Option<&header::HeaderValue>) -> String {
    authorization
        .and_then(|v| v.to_str().ok())
        .map(|v| auth::shown_prefix(v.trim().rsplit(' ').next().unwrap_or("")))
        .unwrap_or_default()
}

/// The client's address: the connection's peer, or with `--trust-proxy` the last
/// `X-Forwarded-For` entry (the one the proxy appended; earlier ones are the client's say).
fn client_addr(trust_proxy: bool, req: &Request<Incoming>, peer: IpAddr) -> IpAddr {
    if !trust_proxy {
        return peer;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(peer)
}

async fn dispatch(
    svc: &Services,
    body: BodyLimits,
    req: Request<Incoming>,
    client: IpAddr,
) -> Result<Reply, ApiError> {
    let (accounts, reader, maintenance) = (&svc.accounts, &svc.reader, &svc.maintenance);
    let creds = &svc.credentials;
    let sessions = &*creds.sessions;
    let cookie = creds.session_cookie;
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query().unwrap_or(""))?;
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = req.method().clone();
    if let Some(leader) = &svc.following {
        if changes_accounts(&segs, &method) {
            return Err(ApiError::Conflict(format!(
                "this node follows {leader} (--follow): create and change projects, webhooks and keys there; they reach this node within its polling interval"
            )));
        }
    }
    match (segs.as_slice(), &method) {
        (["healthz"], &Method::GET) => Ok(super::reply::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ok"}),
        )),
        (["api", "webhooks", "custom"], &Method::POST) => {
            webhook::ingest(&svc.ingest, body, req, client).await
        }
        (["api", "webhooks", "custom"], _) => Err(ApiError::MethodNotAllowed { allow: "POST" }),
        (["api", "v1", "write" | "push"] | ["api", "v2", "write"] | ["write"], &Method::POST) => {
            let format = match segs[0] {
                "write" => push::Format::Influx { v1: true },
                _ if segs[1] == "v2" => push::Format::Influx { v1: false },
                _ => push::Format::RemoteWrite,
            };
            push::ingest(&svc.ingest, push::limits(body), req, &query, client, format).await
        }
        (["api", "v1", "write" | "push"] | ["api", "v2", "write"] | ["write"], _) => {
            Err(ApiError::MethodNotAllowed { allow: "POST" })
        }
        (["ping"], &Method::GET | &Method::HEAD) => Ok(push::ping()),
        // Pushgateway-style: PUT and POST both add samples (stathook keeps history, so
        // neither replaces a group); DELETE has nothing to remove from a history.
        (["metrics", "job", ..], &Method::PUT | &Method::POST) => {
            let path = segs[1..].iter().map(|s| s.to_string()).collect();
            let format = push::Format::Pushgateway { path };
            push::ingest(&svc.ingest, push::limits(body), req, &query, client, format).await
        }
        (["v1", "metrics"], &Method::POST) => {
            let format = push::Format::Otlp;
            push::ingest(&svc.ingest, push::limits(body), req, &query, client, format).await
        }
        (["v1", "metrics"], _) => Err(ApiError::MethodNotAllowed { allow: "POST" }),
        (["metrics", "job", ..], &Method::DELETE) => {
            Err(ApiError::MethodNotAllowed { allow: "PUT, POST" })
        }

        // The web app: every page is the same shell at its own URL; assets by content hash.
        ([""] | ["projects", ..] | ["share", ..], &Method::GET) => Ok(pages::page(&segs)),
        (["assets", hash, file @ ..], &Method::GET) => pages::asset(
            hash,
            &file.join("/"),
            header_str(&req, header::ACCEPT_ENCODING),
        ),
        (["api", "v1", "session"], &Method::GET) => {
            session::current(sessions, session::token(req.headers(), cookie))
        }
        (["api", "v1", "session"], &Method::POST) => {
            same_origin(&req)?;
            session::sign_in(sessions, cookie, json_body(body, req).await?)
        }
        (["api", "v1", "session"], &Method::DELETE) => {
            same_origin(&req)?;
            session::sign_out(sessions, cookie, session::token(req.headers(), cookie))
        }
        (["api", "v1", "session"], _) => Err(ApiError::MethodNotAllowed {
            allow: "GET, POST, DELETE",
        }),
        (["api", "v1", "users"], &Method::GET) => {
            session::list_users(sessions, authorize_admin(creds, &req)?)
        }
        (["api", "v1", "users"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            session::add_user(sessions, token, json_body(body, req).await?)
        }
        (["api", "v1", "users", name], &Method::DELETE) => {
            session::remove_user(sessions, authorize_admin(creds, &req)?, name)
        }
        (["api", "v1", "projects", p, "dashboards"], &Method::GET) => {
            dashboards::list(&svc.dashboards, &authorize_read(creds, &req)?, p)
        }
        (["api", "v1", "projects", p, "dashboards"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            dashboards::create(&svc.dashboards, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "dashboards", id], &Method::GET) => {
            dashboards::get(&svc.dashboards, &authorize_read(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", p, "dashboards", id], &Method::PUT) => {
            let token = authorize_admin(creds, &req)?;
            dashboards::replace(&svc.dashboards, token, p, id, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "dashboards", id], &Method::DELETE) => {
            dashboards::delete(&svc.dashboards, authorize_admin(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", p, "dashboards", d, "widgets", w, "data"], &Method::GET) => {
            let format = read::Format::pick(&query, header_str(&req, header::ACCEPT))?;
            let access = authorize_read(creds, &req)?;
            widgets::project_widget(reader, &access, p, d, w, &query, format)
        }
        (["api", "v1", "projects", p, "dashboards", d, "shares"], &Method::GET) => {
            share::list(&svc.dashboards, authorize_view(creds, &req)?, p, d)
        }
        (["api", "v1", "projects", p, "dashboards", d, "shares"], &Method::POST) => {
            share::create(&svc.dashboards, authorize_admin(creds, &req)?, p, d)
        }
        (["api", "v1", "projects", p, "dashboards", d, "shares", id], &Method::DELETE) => {
            share::revoke(&svc.dashboards, authorize_admin(creds, &req)?, p, d, id)
        }
        (["api", "v1", "projects", p, "alerts"], &Method::GET) => {
            alerts::list_rules(&svc.alerts, &authorize_read(creds, &req)?, p)
        }
        (["api", "v1", "projects", p, "alerts"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            alerts::create_rule(&svc.alerts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "alerts", id], &Method::GET) => {
            alerts::get_rule(&svc.alerts, &authorize_read(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", p, "alerts", id], &Method::PATCH) => {
            let token = authorize_admin(creds, &req)?;
            alerts::update_rule(&svc.alerts, token, p, id, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "alerts", id], &Method::DELETE) => {
            alerts::delete_rule(&svc.alerts, authorize_admin(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", _, "alerts", ..], _) => Err(ApiError::MethodNotAllowed {
            allow: "GET, POST, PATCH, DELETE",
        }),
        (["api", "v1", "projects", p, "channels"], &Method::GET) => {
            alerts::list_channels(&svc.alerts, &authorize_read(creds, &req)?, p)
        }
        (["api", "v1", "projects", p, "channels"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            alerts::create_channel(&svc.alerts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "channels", id], &Method::GET) => {
            alerts::get_channel(&svc.alerts, &authorize_read(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", p, "channels", id], &Method::DELETE) => {
            alerts::delete_channel(&svc.alerts, authorize_admin(creds, &req)?, p, id)
        }
        (["api", "v1", "projects", p, "channels", id, "test"], &Method::POST) => {
            alerts::test_channel(&svc.alerts, authorize_admin(creds, &req)?, p, id).await
        }
        (["api", "v1", "projects", _, "channels", ..], _) => Err(ApiError::MethodNotAllowed {
            allow: "GET, POST, DELETE",
        }),
        // The Prometheus HTTP API (Grafana, promtool): GET, or POST with a form body.
        (
            ["api", "v1", endpoint @ ("query" | "query_range" | "series" | "labels" | "metadata")],
            &Method::GET | &Method::POST,
        ) => {
            let access = authorize_read(creds, &req)?;
            let q = prom_params(query, body, req).await?;
            Ok(match *endpoint {
                "query" => prom::instant(reader, &access, &q),
                "query_range" => prom::range(reader, &access, &q),
                "series" => prom::series(reader, &access, &q),
                "labels" => prom::label_names(reader, &access, &q),
                _ => prom::metadata(reader, &access, &q),
            })
        }
        (["api", "v1", "label", name, "values"], &Method::GET) => {
            let access = authorize_read(creds, &req)?;
            Ok(prom::label_values(reader, &access, name, &query))
        }
        (["api", "v1", "status", "buildinfo"], &Method::GET) => Ok(prom::buildinfo()),
        (["api", "v1", what @ ("rules" | "query_exemplars")], &Method::GET | &Method::POST) => {
            authorize_read(creds, &req)?;
            Ok(prom::empty(what))
        }
        (["api", "v1", "share", token], &Method::GET) => share::dashboard(reader, token),
        (["api", "v1", "share", token, "widgets", w, "data"], &Method::GET) => {
            let format = read::Format::pick(&query, header_str(&req, header::ACCEPT))?;
            share::widget_data(reader, token, w, &query, format)
        }
        (["api", "v1", "share", token, "events"], &Method::GET) => share::events(reader, token),
        (["api", "v1", "projects", p, "events"], &Method::GET) => {
            events::stream(reader, &authorize_read(creds, &req)?, p)
        }

        (["api", "v1", "projects"], &Method::GET) => {
            projects::list_projects(accounts, authorize_view(creds, &req)?)
        }
        (["api", "v1", "projects"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            projects::create_project(accounts, token, json_body(body, req).await?)
        }
        (["api", "v1", "projects"], _) => Err(ApiError::MethodNotAllowed { allow: "GET, POST" }),
        (["api", "v1", "projects", p], &Method::GET) => {
            projects::get_project(accounts, authorize_view(creds, &req)?, p)
        }
        (["api", "v1", "projects", p, "webhooks"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            keys::create_webhook(accounts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "webhooks"], &Method::GET) => {
            keys::list_webhooks(accounts, authorize_view(creds, &req)?, Some(p))
        }
        (["api", "v1", "webhooks"], &Method::GET) => keys::list_webhooks(
            accounts,
            authorize_view(creds, &req)?,
            query.get("projectId"),
        ),
        (["api", "v1", "webhooks", id, "rotate"], &Method::POST) => keys::rotate_key(
            accounts,
            authorize_admin(creds, &req)?,
            id,
            query.get("grace"),
        ),
        (["api", "v1", "webhooks", id, "usage"], &Method::GET) => {
            keys::usage(accounts, authorize_view(creds, &req)?, None, id)
        }
        (["api", "v1", "projects", p, "webhooks", id, "usage"], &Method::GET) => {
            keys::usage(accounts, authorize_view(creds, &req)?, Some(p), id)
        }
        (["api", "v1", "projects", p, "webhooks", id, "requests"], &Method::GET) => {
            keys::requests(accounts, authorize_view(creds, &req)?, p, id)
        }
        (["api", "v1", "webhooks", id, "revoke"], &Method::POST) => {
            keys::revoke_key(accounts, authorize_admin(creds, &req)?, id)
        }
        (["api", "v1", "projects", p, "keys"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            keys::create_key(accounts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "keys"], &Method::GET) => {
            keys::list_keys(accounts, authorize_view(creds, &req)?, p)
        }
        (["api", "v1", "projects", p, "metrics"], &Method::GET) => {
            read::catalog(reader, &authorize_read(creds, &req)?, p)
        }
        (["api", "v1", "admin", "backup"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            maintenance::backup(maintenance, token).await
        }
        (["api", "v1", "admin", "compact"], &Method::POST) => {
            maintenance::compact(maintenance, authorize_admin(creds, &req)?)
        }
        (["api", "v1", "admin", "journal"], &Method::GET) => {
            maintenance::journal_status(maintenance, authorize_view(creds, &req)?)
        }
        (["api", "v1", "admin", "journal"], _) => Err(ApiError::MethodNotAllowed { allow: "GET" }),
        (["metrics"], &Method::GET) => {
            metrics::metrics(reader, svc.forwarder.as_ref(), authorize_view(creds, &req)?)
        }
        (["api", "v1", "admin", "fleet"], &Method::GET) => {
            let _token = authorize_admin(creds, &req)?;
            let fleet = crate::service::follow::Fleet::of(accounts).map_err(ApiError::Internal)?;
            Ok(super::reply::json(StatusCode::OK, &fleet))
        }
        (["api", "v1", "admin", "forward"], &Method::GET) => {
            forward::status(svc.forwarder.as_ref(), authorize_view(creds, &req)?)
        }
        (["api", "v1", "admin", "forward"], _) => Err(ApiError::MethodNotAllowed { allow: "GET" }),
        (["api", "v1", "admin", "forward", "replay"], &Method::POST) => {
            let token = authorize_admin(creds, &req)?;
            forward::replay(svc.forwarder.as_ref(), token, &query).await
        }
        (["api", "v1", "projects", p, "tier"], &Method::PUT) => {
            let token = authorize_admin(creds, &req)?;
            projects::set_tier(accounts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "retention"], &Method::PUT) => {
            let token = authorize_admin(creds, &req)?;
            projects::set_retention(accounts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "labels"], &Method::PUT) => {
            let token = authorize_admin(creds, &req)?;
            projects::set_label_keys(accounts, token, p, json_body(body, req).await?)
        }
        (["api", "v1", "projects", p, "metrics", m], &Method::DELETE) => {
            maintenance::delete_metric(maintenance, authorize_admin(creds, &req)?, p, m)
        }
        (["api", "v1", "projects", p, "metrics", m, "points"], &Method::GET) => {
            let format = read::Format::pick(&query, header_str(&req, header::ACCEPT))?;
            read::points(reader, &authorize_read(creds, &req)?, p, m, &query, format)
        }
        (["api", "v1", "projects", p, "query"], &Method::GET) => {
            let format = read::Format::pick(&query, header_str(&req, header::ACCEPT))?;
            read::multi(reader, &authorize_read(creds, &req)?, p, &query, format)
        }
        _ => Err(ApiError::NotFound(format!(
            "no such endpoint: {method} {path}"
        ))),
    }
}

/// Proof that the request may do what the admin token can: it carried the token, or came
/// from an admin's session (checked for a cross-site origin when it changes anything).
/// `authorize_view` also hands one to a viewer's session, for the admin records it may see.
pub struct AdminToken(());

/// The signed-in user of the request's session cookie, when it has no Authorization header:
/// None without a cookie, a 401 for an ended session.
fn session_user(
    creds: &Credentials,
    req: &Request<Incoming>,
) -> Result<Option<SignedIn>, ApiError> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    match super::session::token(req.headers(), creds.session_cookie) {
        None => Ok(None),
        Some(t) => match creds.sessions.lookup(t, clock::now_ms()) {
            Some(who) => Ok(Some(who)),
            None => Err(ApiError::Unauthorized(
                "your session has ended; sign in again".into(),
            )),
        },
    }
}

fn authorize_admin(creds: &Credentials, req: &Request<Incoming>) -> Result<AdminToken, ApiError> {
    match session_user(creds, req)? {
        Some(who) if who.role == Role::Admin => {
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                same_origin(req)?;
            }
            Ok(AdminToken(()))
        }
        Some(who) => Err(ApiError::Forbidden(format!(
            "{} is a viewer: viewers can look at everything but change nothing",
            who.user
        ))),
        None => authorize_admin_token(creds, req),
    }
}

/// As `authorize_admin`, and a viewer's session passes too: for the admin records a viewer
/// may look at (projects, connections, usage). Only for GET routes.
fn authorize_view(creds: &Credentials, req: &Request<Incoming>) -> Result<AdminToken, ApiError> {
    match session_user(creds, req)? {
        Some(_) => Ok(AdminToken(())),
        None => authorize_admin_token(creds, req),
    }
}

/// A state-changing request carried by a session cookie must come from this server's own
/// pages: Fetch Metadata first (`Sec-Fetch-Site` from every current browser), else `Origin`
/// against `Host`. A request with neither is not from a browser, so no cross-site forgery.
fn same_origin(req: &Request<Incoming>) -> Result<(), ApiError> {
    if let Some(site) = header_str(req, header::HeaderName::from_static("sec-fetch-site")) {
        return match site {
            "same-origin" | "none" => Ok(()),
            other => Err(ApiError::Forbidden(format!(
                "cross-site request refused (Sec-Fetch-Site: {other}); use this server's own pages or an API key"
            ))),
        };
    }
    let Some(origin) = header_str(req, header::ORIGIN) else {
        return Ok(());
    };
    let host = header_str(req, header::HOST).unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "cross-site request refused (Origin {origin:?} is not this server, {host:?})"
        )))
    }
}

fn authorize_admin_token(
    creds: &Credentials,
    req: &Request<Incoming>,
) -> Result<AdminToken, ApiError> {
    match auth::bearer(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    ) {
        Bearer::Missing => Err(ApiError::Unauthorized(
            "missing Authorization header; expected 'Authorization: Bearer ADMIN_TOKEN' (or sign in)".into(),
        )),
        Bearer::Malformed => Err(ApiError::Unauthorized(
            "malformed Authorization header; expected 'Authorization: Bearer ADMIN_TOKEN'".into(),
        )),
        Bearer::Token(t) if auth::secret_matches(t, &creds.admin_token_hash) => Ok(AdminToken(())),
        Bearer::Token(t) => match creds.keys.lookup(t) {
            Some(owner) if owner.scope == Scope::Read => Err(ApiError::Forbidden(
                "this endpoint needs the admin token; a read key can only query its project".into(),
            )),
            Some(_) => Err(ApiError::Forbidden(
                "this endpoint needs the admin token; a webhook API key can only send metrics"
                    .into(),
            )),
            None => Err(ApiError::Unauthorized("invalid admin token".into())),
        },
    }
}

/// Proof that the request may read: the admin token (any project) or a read key (its own
/// project only); `check` narrows it to one project.
pub enum ReadAccess {
    Admin,
    Project(String),
}

impl ReadAccess {
    /// 403 unless this grant covers `project`.
    pub fn check(&self, project: &str) -> Result<(), ApiError> {
        match self {
            ReadAccess::Admin => Ok(()),
            ReadAccess::Project(p) if p == project => Ok(()),
            ReadAccess::Project(_) => Err(ApiError::Forbidden(format!(
                "this read key belongs to another project; it cannot read project {project:?}"
            ))),
        }
    }
}

fn authorize_read(creds: &Credentials, req: &Request<Incoming>) -> Result<ReadAccess, ApiError> {
    if session_user(creds, req)?.is_some() {
        // Admins and viewers alike see every project.
        return Ok(ReadAccess::Admin);
    }
    const EXPECTED: &str = "expected 'Authorization: Bearer READ_KEY' or the admin token";
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    // Basic auth (Grafana's data source option): the password is the key, the user ignored.
    let basic = header.and_then(basic_password);
    let presented = match &basic {
        Some(p) => Bearer::Token(p.as_str()),
        None => auth::bearer(header),
    };
    match presented {
        Bearer::Missing => Err(ApiError::Unauthorized(format!(
            "missing Authorization header; {EXPECTED}"
        ))),
        Bearer::Malformed => Err(ApiError::Unauthorized(format!(
            "malformed Authorization header; {EXPECTED}"
        ))),
        Bearer::Token(t) if auth::secret_matches(t, &creds.admin_token_hash) => Ok(ReadAccess::Admin),
        Bearer::Token(t) => match creds.keys.lookup(t) {
            Some(owner) if owner.scope == Scope::Read => Ok(ReadAccess::Project(owner.project_id)),
            Some(_) => Err(ApiError::Forbidden(
                "a webhook API key can only send metrics; create a read key with 'stathook key create --project P --scope read'".into(),
            )),
            None => Err(ApiError::Unauthorized(
                "invalid key: unknown or revoked".into(),
            )),
        },
    }
}

/// The password of an `Authorization: Basic` header.
pub(super) fn basic_password(value: &[u8]) -> Option<String> {
    use base64::Engine;
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let (_, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_owned())
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn json_body(
    limits: BodyLimits,
    req: Request<Incoming>,
) -> Result<serde_json::Value, ApiError> {
    super::body::require_json(req.headers())?;
    let (parts, body) = req.into_parts();
    let bytes = super::body::read(&parts.headers, body, limits).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

/// The parameters of a Prometheus API request: the query string, plus a form body on POST.
async fn prom_params(
    mut query: Query,
    limits: BodyLimits,
    req: Request<Incoming>,
) -> Result<Query, ApiError> {
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = super::body::read(&parts.headers, body, limits).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::BadRequest("the form body is not valid UTF-8".into()))?;
        query.0.extend(Query::parse(text)?.0);
    }
    Ok(query)
}

/// Whether a request creates or changes projects, webhooks or keys: what a follower, which
/// copies them from its leader, refuses.
fn changes_accounts(segs: &[&str], method: &Method) -> bool {
    matches!(
        (segs, method),
        (["api", "v1", "projects"], &Method::POST)
            | (
                ["api", "v1", "projects", _, "webhooks" | "keys"],
                &Method::POST
            )
            | (
                ["api", "v1", "projects", _, "tier" | "retention" | "labels"],
                &Method::PUT
            )
            | (
                ["api", "v1", "webhooks", _, "rotate" | "revoke"],
                &Method::POST
            )
    )
}

/// Decoded query-string pairs.
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Result<Query, ApiError> {
        let mut out = Vec::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| {
                        ApiError::BadRequest(format!("query parameter {s:?} is not valid UTF-8"))
                    })
            };
            out.push((dec(k)?, dec(v)?));
        }
        Ok(Query(out))
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A 400 naming the first parameter not in `known`: a misspelt one (`form=-7d`) was
    /// ignored, and the answer silently covered another range. `_`, the cache-buster some
    /// HTTP clients add, is let through.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ApiError> {
        match self
            .0
            .iter()
            .find(|(k, _)| k != "_" && !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(ApiError::BadRequest(format!(
                "unknown query parameter {k:?}; this endpoint takes {}",
                known.join(", ")
            ))),
        }
    }
}
