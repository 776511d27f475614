//! Projects, webhook connections and keys through the admin API.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn keys_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Demo", "tier": "pro"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let project = r.body["id"].as_str().unwrap().to_owned();
    assert!(project.starts_with("prj_"), "{project}");
    assert_eq!(r.body["tier"], "pro");

    let r = c
        .admin(
            Method::POST,
            &format!("/api/v1/projects/{project}/webhooks"),
            Some(json!({"name": "Cron Job Metrics"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let key1 = r.body["apiKey"].as_str().unwrap().to_owned();
    let wh = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    assert!(wh.starts_with("wh_"));
    assert!(
        key1.starts_with("shk_") && key1.len() >= 4 + 64,
        "256 bits: {key1}"
    );
    assert_eq!(
        r.body["webhookUrl"],
        format!("{}/api/webhooks/custom", s.url)
    );
    assert_eq!(r.body["projectId"], project.as_str());

    // Listings never show the key or its hash.
    let r = c.get("/api/v1/webhooks").await;
    let text = r.body.to_string();
    assert!(!text.contains(&key1[12..]), "listing leaks the key");
    assert!(
        !text.contains(&stathook::auth::hex(&stathook::auth::hash_secret(&key1))),
        "listing leaks the hash"
    );
    assert_eq!(r.body["webhooks"][0]["keyPrefix"], &key1[..12]);
    assert_eq!(r.body["webhooks"][0]["status"], "active");

    let body = batch(&project, vec![metric("m", 1.0, 1)]);
    assert_eq!(c.post(&key1, &body).await.status, 200);

    let r = c
        .admin(Method::POST, &format!("/api/v1/webhooks/{wh}/rotate"), None)
        .await;
    assert_eq!(r.status, 200);
    let key2 = r.body["apiKey"].as_str().unwrap().to_owned();
    assert_ne!(key1, key2);
    assert_eq!(c.post(&key1, &body).await.status, 401);
    assert_eq!(c.post(&key2, &body).await.status, 200);

    let r = c
        .admin(Method::POST, &format!("/api/v1/webhooks/{wh}/revoke"), None)
        .await;
    assert_eq!(
        (r.status, r.body["webhook"]["status"].clone()),
        (200, json!("revoked"))
    );
    assert_eq!(c.post(&key2, &body).await.status, 401);

    // Survives a restart: revoked stays revoked, a rotated key works.
    let r = c
        .admin(Method::POST, &format!("/api/v1/webhooks/{wh}/rotate"), None)
        .await;
    let key3 = r.body["apiKey"].as_str().unwrap().to_owned();
    s.stop().await;
    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(c.post(&key2, &body).await.status, 401);
    assert_eq!(c.post(&key3, &body).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn admin_endpoints_need_the_admin_token() {
    let (dir, s, c, key) = Server::with_project("p").await;
    let url = format!("{}/api/v1/projects", s.url);
    assert_eq!(c.send(c.http.get(&url)).await.status, 401);
    assert_eq!(
        c.send(c.http.get(&url).bearer_auth("sha_wrong"))
            .await
            .status,
        401
    );
    let r = c.send(c.http.get(&url).bearer_auth(&key)).await;
    assert_eq!(r.status, 403, "an API key cannot administer");
    assert_eq!(
        c.send(
            c.http
                .get(format!("{}/api/v1/projects/p/metrics", s.url))
                .bearer_auth(&key)
        )
        .await
        .status,
        403
    );

    // The token is in a 0600 file and only its hash is in the store.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    s.stop().await;
    let raw = std::fs::read(dir.path().join("stathook.redb")).unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    assert!(
        !raw.windows(token.trim().len())
            .any(|w| w == token.trim().as_bytes()),
        "token stored in clear"
    );
}

#[tokio::test]
async fn project_and_webhook_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let r = c
        .admin(Method::POST, "/api/v1/projects", Some(json!({"id": "x"})))
        .await;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (400, json!("name is required"))
    );
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "A", "id": "bad id!"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "A", "tier": "gold"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        c.admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "A", "id": "a"}))
        )
        .await
        .status,
        201
    );
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "A", "id": "a"})),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects/nope/webhooks",
            Some(json!({"name": "w"})),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        c.admin(Method::POST, "/api/v1/webhooks/wh_nope/rotate", None)
            .await
            .status,
        404
    );
    assert_eq!(c.get("/api/v1/projects/nope/metrics").await.status, 404);
    assert_eq!(
        c.get("/api/v1/projects/a/metrics/nope/points").await.status,
        404
    );
    assert_eq!(c.get("/api/v1/nothing").await.status, 404);
    let r = c.get("/api/v1/projects").await;
    assert_eq!(r.body["projects"].as_array().unwrap().len(), 1);
    s.stop().await;
}

/// Logs at debug level, through every key operation and every kind of refused request,
/// never contain an API key or the admin token (only key prefixes).
#[tokio::test]
async fn logs_never_contain_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let data = dir.path().join("data");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Child::start_with_stderr(&data, &["--log-format", "json"], log.into(), "debug");
    let c = child.client();
    let key1 = c.setup("p").await;
    let hooks = c.get("/api/v1/webhooks").await;
    let wh = hooks.body["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let key2 = c
        .admin(Method::POST, &format!("/api/v1/webhooks/{wh}/rotate"), None)
        .await
        .body["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.post(&key1, &batch("p", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        401
    );
    assert_eq!(
        c.post(&key2, &batch("p", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        200
    );
    assert_eq!(
        c.post(&key2, &batch("q", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        403
    );
    assert_eq!(
        c.admin(Method::POST, &format!("/api/v1/webhooks/{wh}/revoke"), None)
            .await
            .status,
        200
    );
    let _ = c
        .send(
            c.http
                .get(format!("{}/api/v1/projects", c.url))
                .bearer_auth(format!("{}x", child.admin_token)),
        )
        .await;
    let token = child.admin_token.clone();
    assert!(child.terminate().success());

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains(&key2[..12]),
        "logs should name keys by prefix:\n{logs}"
    );
    // The rotated-out key's use was reported, by its prefix.
    let warned = logs
        .lines()
        .find(|l| l.contains("a revoked or rotated-out API key is still in use"))
        .unwrap_or_else(|| panic!("no warning about the old key:\n{logs}"));
    assert!(
        warned.contains(&key1[..12]) && warned.contains("rotated"),
        "{warned}"
    );
    for secret in [&key1, &key2, &token] {
        // The part after the shown prefix must never appear.
        assert!(
            !logs.contains(&secret[12..]),
            "a secret leaked into the logs"
        );
    }
}

/// Isolation: keys of project A reach nothing of project B, on every route; B's data is
/// untouched afterwards.
#[tokio::test]
async fn a_key_of_one_project_reaches_nothing_of_another_on_any_route() {
    let (_dir, s, c, ingest_a) = Server::with_project("a").await;
    let ingest_b = c.setup("b").await;
    assert_eq!(
        c.post(&ingest_b, &batch("b", vec![metric("secret", 7.0, 1)]))
            .await
            .status,
        200
    );
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects/a/keys",
            Some(json!({"scope": "read"})),
        )
        .await;
    let read_a = r.body["apiKey"].as_str().unwrap().to_owned();
    let wh_b = c.get("/api/v1/projects/b/webhooks").await.body["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/api/v1/projects".into(), None),
        (
            Method::POST,
            "/api/v1/projects".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/projects/b".into(), None),
        (
            Method::POST,
            "/api/v1/projects/b/webhooks".into(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/projects/b/webhooks".into(), None),
        (Method::GET, "/api/v1/webhooks".into(), None),
        (
            Method::POST,
            format!("/api/v1/webhooks/{wh_b}/rotate"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{wh_b}/revoke"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/projects/b/keys".into(),
            Some(json!({"scope": "read"})),
        ),
        (Method::GET, "/api/v1/projects/b/keys".into(), None),
        (Method::GET, "/api/v1/projects/b/metrics".into(), None),
        (
            Method::GET,
            "/api/v1/projects/b/metrics/secret/points".into(),
            None,
        ),
        (
            Method::GET,
            "/api/v1/projects/b/query?metricIds=secret".into(),
            None,
        ),
        (
            Method::DELETE,
            "/api/v1/projects/b/metrics/secret".into(),
            None,
        ),
        (
            Method::PUT,
            "/api/v1/projects/b/tier".into(),
            Some(json!({"tier": "free"})),
        ),
        (
            Method::PUT,
            "/api/v1/projects/b/retention".into(),
            Some(json!({"retention": "1d"})),
        ),
        (Method::GET, format!("/api/v1/webhooks/{wh_b}/usage"), None),
        (
            Method::GET,
            format!("/api/v1/projects/b/webhooks/{wh_b}/usage"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{wh_b}/rotate?grace=1h"),
            None,
        ),
        (Method::POST, "/api/v1/admin/backup".into(), None),
        (Method::POST, "/api/v1/admin/compact".into(), None),
    ];
    for key in [&ingest_a, &read_a] {
        for (method, path, body) in &routes {
            let mut req = c
                .http
                .request(method.clone(), format!("{}{path}", c.url))
                .bearer_auth(key);
            if let Some(b) = body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let r = c.send(req).await;
            assert_eq!(r.status, 403, "{method} {path}: {:?}", r.body);
        }
        // The webhook with B's projectId.
        let r = c
            .post(key, &batch("b", vec![metric("secret", 0.0, 1)]))
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    // B is as it was: its sample, its key, its tier and retention.
    assert_eq!(c.points("b", "secret").await, vec![(1, 7.0)]);
    assert_eq!(
        c.post(&ingest_b, &batch("b", vec![metric("secret", 8.0, 2)]))
            .await
            .status,
        200
    );
    let p = c.get("/api/v1/projects/b").await.body;
    assert_eq!(
        (p["tier"].clone(), p.get("retention").cloned()),
        (json!("unlimited"), None)
    );
    s.stop().await;
}
