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
    for secret in [&key1, &key2, &token] {
        // The part after the shown prefix must never appear.
        assert!(
            !logs.contains(&secret[12..]),
            "a secret leaked into the logs"
        );
    }
}
