//! A fleet: a node started with `follow` copies its leader's projects and keys over the
//! leader's admin API, so a key created on the leader works on the follower within the
//! polling interval and a key revoked there stops working; the follower refuses to create
//! projects or keys itself.

use crate::support::*;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

async fn status_within(c: &Client, key: &str, want: u16, within: Duration) {
    let start = Instant::now();
    loop {
        let r = c
            .post(key, &batch("fleet", vec![metric("m", 1.5, now_ms())]))
            .await;
        if r.status == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "still {} (want {want}) after {within:?}: {:?}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_accepts_the_leader_s_keys_and_refuses_its_own() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = Server::start(leader_dir.path()).await;
    let l = leader.client();
    let follower_dir = tempfile::tempdir().unwrap();
    let (url, token) = (leader.url.clone(), leader.admin_token.clone());
    let follower = Server::start_with(follower_dir.path(), |c| {
        c.follow = Some(stathook::service::follow::Follow {
            leader: url,
            token,
            interval: Duration::from_secs(1),
        });
    })
    .await;
    let f = follower.client();

    let key = l.setup("fleet").await;
    status_within(&f, &key, 200, Duration::from_secs(5)).await;
    // The sample is the follower's own: stored there, not on the leader.
    assert_eq!(f.points("fleet", "m").await.len(), 1);
    let on_leader = l.get("/api/v1/projects/fleet/metrics/m/points").await;
    assert_eq!(on_leader.status, 404, "{:?}", on_leader.body);

    // Revoked on the leader: refused on the follower within the interval.
    let hooks = l.get("/api/v1/projects/fleet/webhooks").await;
    let id = hooks.body["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let r = l
        .admin(Method::POST, &format!("/api/v1/webhooks/{id}/revoke"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    status_within(&f, &key, 401, Duration::from_secs(5)).await;

    // The follower creates nothing itself.
    let r = f
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "own", "id": "own"})),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("follows"),
        "{:?}",
        r.body
    );
    let r = f
        .admin(
            Method::POST,
            "/api/v1/projects/fleet/webhooks",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 409);

    // A project's metadata label keys come with it, and only the leader sets them.
    let r = l
        .admin(
            Method::PUT,
            "/api/v1/projects/fleet/labels",
            Some(json!({"labelKeys": ["host"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while f.get("/api/v1/projects/fleet").await.body["labelKeys"] != json!(["host"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "the keys did not reach the follower"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = f
        .admin(
            Method::PUT,
            "/api/v1/projects/fleet/labels",
            Some(json!({"labelKeys": []})),
        )
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);

    // The fleet record carries hashes, never a key.
    let fleet = l.get("/api/v1/admin/fleet").await;
    assert_eq!(fleet.status, 200);
    assert!(!fleet.body.to_string().contains(&key));
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/fleet", leader.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    follower.stop().await;
    leader.stop().await;
}
