//! The web app's API: accounts, sessions (cookie, idle expiry, sign-out), roles, the
//! cross-site check, the change-notice stream, and the shell and assets with their headers.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

pub async fn add_user(c: &Client, name: &str, role: &str) {
    let r = c
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": name, "role": role, "password": "pass word 1"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// Signs in; returns the session cookie (`name=value`).
pub async fn sign_in(c: &Client, name: &str, password: &str) -> Result<String, Reply> {
    let r = c
        .send(
            c.http
                .post(format!("{}/api/v1/session", c.url))
                .header("Content-Type", "application/json")
                .body(json!({"username": name, "password": password}).to_string()),
        )
        .await;
    if r.status != 200 {
        return Err(r);
    }
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    Ok(cookie.split(';').next().unwrap().to_owned())
}

async fn with_cookie(
    c: &Client,
    method: Method,
    path: &str,
    cookie: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = c
        .http
        .request(method, format!("{}{path}", c.url))
        .header("Cookie", cookie);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    c.send(req).await
}

#[tokio::test]
async fn sessions_sign_in_check_roles_and_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let r = c
        .send(c.http.get(format!("{}/api/v1/session", c.url)))
        .await;
    assert_eq!(r.body, json!({"signedIn": false, "firstUserNeeded": true}));
    add_user(&c, "ann", "admin").await;
    add_user(&c, "vic", "viewer").await;
    let r = c
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "ann", "role": "admin", "password": "another one"})),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = c
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "bob", "role": "owner", "password": "pass word 1"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"].as_str().unwrap().contains("role"),
        "{:?}",
        r.body
    );
    let r = c
        .admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "bob", "role": "viewer", "password": "short"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("password"));

    // Wrong password and unknown user: one message.
    let wrong = sign_in(&c, "ann", "wrong password").await.unwrap_err();
    let unknown = sign_in(&c, "nobody", "pass word 1").await.unwrap_err();
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body, unknown.body);

    let admin = sign_in(&c, "ann", "pass word 1").await.unwrap();
    let viewer = sign_in(&c, "vic", "pass word 1").await.unwrap();
    let r = with_cookie(&c, Method::GET, "/api/v1/session", &admin, None, &[]).await;
    assert_eq!(
        r.body,
        json!({"signedIn": true, "username": "ann", "role": "admin"})
    );

    // An admin session does what the admin token does, from the server's own pages.
    let same = [("Sec-Fetch-Site", "same-origin")];
    let r = with_cookie(
        &c,
        Method::POST,
        "/api/v1/projects",
        &admin,
        Some(json!({"name": "P", "id": "p1"})),
        &same,
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // ... but not from another site's page.
    for h in [
        [("Sec-Fetch-Site", "cross-site")],
        [("Origin", "http://evil.example")],
    ] {
        let r = with_cookie(
            &c,
            Method::POST,
            "/api/v1/projects",
            &admin,
            Some(json!({"name": "X", "id": "x1"})),
            &h,
        )
        .await;
        assert_eq!(r.status, 403, "{h:?}: {:?}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains("cross-site"));
    }
    let origin = c.url.clone();
    let r = with_cookie(
        &c,
        Method::POST,
        "/api/v1/projects",
        &admin,
        Some(json!({"name": "Q", "id": "q1"})),
        &[("Origin", origin.as_str())],
    )
    .await;
    assert_eq!(r.status, 201, "same Origin as Host: {:?}", r.body);

    // A viewer sees everything and changes nothing.
    let r = with_cookie(&c, Method::GET, "/api/v1/projects", &viewer, None, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 2);
    let r = with_cookie(
        &c,
        Method::GET,
        "/api/v1/projects/p1/metrics",
        &viewer,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = with_cookie(
        &c,
        Method::POST,
        "/api/v1/projects/p1/webhooks",
        &viewer,
        Some(json!({"name": "W"})),
        &same,
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"].as_str().unwrap().contains("viewer"),
        "{:?}",
        r.body
    );
    let r = with_cookie(&c, Method::GET, "/api/v1/users", &viewer, None, &[]).await;
    assert_eq!(r.status, 403);

    // Sign-out ends the session on the server, not only in the browser.
    let r = with_cookie(&c, Method::DELETE, "/api/v1/session", &admin, None, &same).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let r = with_cookie(&c, Method::GET, "/api/v1/projects", &admin, None, &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.body["error"].as_str().unwrap().contains("sign in again"));

    // Removing a user ends their sessions.
    let r = c.delete("/api/v1/users/vic").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = with_cookie(&c, Method::GET, "/api/v1/projects", &viewer, None, &[]).await;
    assert_eq!(r.status, 401);
    let r = c.get("/api/v1/users").await;
    let names: Vec<&str> = r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann"]);
    assert!(
        !r.body.to_string().contains("argon2"),
        "hashes never leave the server"
    );
    s.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_and_end_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    add_user(&c, "ann", "admin").await;
    let cookie = sign_in(&c, "ann", "pass word 1").await.unwrap();
    let token = cookie.split_once('=').unwrap().1.to_owned();
    s.stop().await;
    let store = std::fs::read(dir.path().join("stathook.redb")).unwrap();
    assert!(
        !store.windows(token.len()).any(|w| w == token.as_bytes()),
        "the store holds the session's hash, never its token"
    );

    let s = Server::start_with(dir.path(), |c| c.session_idle = Duration::from_millis(1500)).await;
    let c = s.client();
    let r = with_cookie(&c, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
    assert_eq!(r.status, 200, "a restart keeps sessions: {:?}", r.body);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let r = with_cookie(&c, Method::GET, "/api/v1/projects", &cookie, None, &[]).await;
    assert_eq!(r.status, 401, "idle past --session-idle: {:?}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_count_in_the_address_guard() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.auth_failures_per_minute = 3).await;
    let c = s.client();
    add_user(&c, "ann", "admin").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(sign_in(&c, "ann", "guess guess").await.unwrap_err().status);
    }
    assert_eq!(statuses[..3], [401, 401, 401]);
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let r = sign_in(&c, "ann", "pass word 1").await.unwrap_err();
    assert_eq!(
        r.status, 429,
        "even the right password waits out the cooldown"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_event_stream_names_the_metrics_a_request_wrote() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let mut resp = c
        .http
        .get(format!("{}/api/v1/projects/p1/events", c.url))
        .bearer_auth(&c.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"retry:"), "{first:?}");
    let r = c
        .post(
            &key,
            &batch("p1", vec![metric("daily_signups", 42.0, now_ms())]),
        )
        .await;
    assert_eq!(r.status, 200);
    let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
        .await
        .expect("a change event within 5 s")
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("event: change\ndata: "), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(data, json!({"metricIds": ["daily_signups"]}));
    // A webhook key reads nothing, an unknown project is a 404.
    let r = c
        .send(
            c.http
                .get(format!("{}/api/v1/projects/p1/events", c.url))
                .bearer_auth(&key),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c.get("/api/v1/projects/nope/events").await;
    assert_eq!(r.status, 404);
    drop(resp);
    s.stop().await;
}

#[tokio::test]
async fn pages_and_assets_carry_their_headers_and_fit_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/projects/p1",
        "/projects/p1/metrics/a%2Fb",
        "/projects/p1/integrations",
    ] {
        let r = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        let html = r.text().await.unwrap();
        assert!(html.contains("type=\"module\""), "{html}");
    }
    let r = http
        .get(format!("{}/share/abc/embed", s.url))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");

    let assets = stathook::web::assets();
    let url = format!("{}/assets/{}/app.js", s.url, assets.hash);
    let r = http
        .get(&url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let r = http
        .get(format!(
            "{}/assets/{}/vendor/uplot/uPlot.iife.min.js",
            s.url, assets.hash
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 51081, "uPlot as vendored");
    let r = http
        .get(format!("{}/assets/0123456789abcdef/app.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "a stale hash finds nothing");
    let total = assets.gzip_bytes();
    eprintln!("the app's assets: {total} bytes gzipped");
    assert!(
        total <= 200 * 1024,
        "the app's assets are {total} bytes gzipped; the budget is 200 KB"
    );
    s.stop().await;
}

#[tokio::test]
async fn dashboards_are_stored_checked_exported_and_imported() {
    let (_dir, s, c, _key) = Server::with_project("p1").await;
    let path = "/api/v1/projects/p1/dashboards";
    let body = json!({"name": "Ops", "widgets": [
        {"type": "line", "metricIds": ["a", "b"], "w": 8},
        {"type": "heartbeat", "metricIds": ["backup_done"], "expectedIntervalS": 86400, "x": 8, "w": 4}]});
    let r = c.admin(Method::POST, path, Some(body)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("db_"));
    assert_eq!(r.body["version"], 1);
    let exported = c.get(&format!("{path}/{id}")).await.body;
    assert_eq!(exported["widgets"].as_array().unwrap().len(), 2);
    assert!(exported["widgets"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("w_"));

    // Import is the export posted back: a new dashboard, the same widgets.
    let r = c.admin(Method::POST, path, Some(exported.clone())).await;
    assert_eq!(r.status, 201);
    assert_ne!(r.body["id"], exported["id"]);
    assert_eq!(r.body["widgets"], exported["widgets"]);
    let list = c.get(path).await.body;
    assert_eq!(list["dashboards"].as_array().unwrap().len(), 2);

    // Bad widgets are refused, naming the field, and change nothing.
    let mut bad = exported.clone();
    bad["widgets"][1]["type"] = json!("pie");
    let r = c
        .admin(Method::PUT, &format!("{path}/{id}"), Some(bad))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("widgets[1].type"),
        "{:?}",
        r.body
    );
    assert_eq!(c.get(&format!("{path}/{id}")).await.body, exported);

    let mut renamed = exported.clone();
    renamed["name"] = json!("Operations");
    let r = c
        .admin(Method::PUT, &format!("{path}/{id}"), Some(renamed))
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (200, Some("Operations"))
    );

    // A viewer looks but does not write; a webhook key sees nothing.
    add_user(&c, "vic", "viewer").await;
    let viewer = sign_in(&c, "vic", "pass word 1").await.unwrap();
    let r = with_cookie(&c, Method::GET, &format!("{path}/{id}"), &viewer, None, &[]).await;
    assert_eq!(r.status, 200);
    let r = with_cookie(
        &c,
        Method::DELETE,
        &format!("{path}/{id}"),
        &viewer,
        None,
        &[("Sec-Fetch-Site", "same-origin")],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = c
        .send(c.http.get(format!("{}{path}", c.url)).bearer_auth(&_key))
        .await;
    assert_eq!(r.status, 403);

    let r = c.delete(&format!("{path}/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(c.get(&format!("{path}/{id}")).await.status, 404);
    assert_eq!(c.get("/api/v1/projects/nope/dashboards").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn a_connections_request_log_shows_each_request_and_its_exact_error() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let wh = c.get("/api/v1/projects/p1/webhooks").await.body["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = c
        .post(&key, &batch("p1", vec![metric("a", 1.0, now_ms())]))
        .await;
    assert_eq!(ok.status, 200);
    let bad = c
        .post(
            &key,
            &json!({"projectId": "p1", "metrics": [{"metricId": "a", "value": "x"}]}),
        )
        .await;
    assert_eq!(bad.status, 400);
    let r = c
        .get(&format!("/api/v1/projects/p1/webhooks/{wh}/requests"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let log = r.body["requests"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0]["status"].as_u64(), log[1]["status"].as_u64()),
        (Some(400), Some(200))
    );
    assert_eq!(
        log[0]["error"], bad.body["error"],
        "the exact message the client got"
    );
    assert_eq!(log[1]["samples"], 1);
    assert!(log[1].get("error").is_none());
    for _ in 0..110 {
        c.post(&key, &batch("p1", vec![metric("a", 2.0, now_ms())]))
            .await;
    }
    let r = c
        .get(&format!("/api/v1/projects/p1/webhooks/{wh}/requests"))
        .await;
    assert_eq!(
        r.body["requests"].as_array().unwrap().len(),
        100,
        "the last 100 only"
    );
    let r = c
        .get(&format!("/api/v1/projects/other/webhooks/{wh}/requests"))
        .await;
    assert_eq!(r.status, 404);
    s.stop().await;
}
