//! Key hygiene and usage monitoring through a real server: rotation with a grace period,
//! revocation of every key of a webhook, usage counters by reason, and their persistence.

use crate::support::*;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

async fn webhook_id(c: &Client, project: &str) -> String {
    let r = c.get(&format!("/api/v1/projects/{project}/webhooks")).await;
    r.body["webhooks"][0]["id"].as_str().unwrap().to_owned()
}

async fn rotate(c: &Client, wh: &str, grace: &str) -> Reply {
    c.admin(
        Method::POST,
        &format!("/api/v1/webhooks/{wh}/rotate?grace={grace}"),
        None,
    )
    .await
}

async fn status(c: &Client, key: &str, ts: i64) -> u16 {
    c.post(key, &batch("p", vec![metric("m", 1.0, ts)]))
        .await
        .status
}

#[tokio::test]
async fn a_rotated_key_keeps_working_for_its_grace_period_then_stops() {
    let (dir, s, c, old) = Server::with_project("p").await;
    let wh = webhook_id(&c, "p").await;
    for bad in ["soon", "-5m", "31d", "10x"] {
        let r = rotate(&c, &wh, bad).await;
        assert_eq!(r.status, 400, "grace={bad}: {:?}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains("grace"));
    }
    assert_eq!(
        status(&c, &old, 1).await,
        200,
        "a refused rotation changed nothing"
    );

    let r = rotate(&c, &wh, "2s").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let new = r.body["apiKey"].as_str().unwrap().to_owned();
    let grace = &r.body["webhook"]["graceKeys"];
    assert_eq!(grace[0]["keyPrefix"], json!(&old[..12]), "{grace}");
    let until = grace[0]["validUntil"].as_i64().unwrap();
    assert!((until - now_ms() - 2000).abs() < 1000, "{until}");
    // Both work during the grace period.
    assert_eq!(status(&c, &old, 2).await, 200);
    assert_eq!(status(&c, &new, 3).await, 200);
    tokio::time::sleep(Duration::from_millis((until - now_ms()).max(0) as u64 + 50)).await;
    assert_eq!(status(&c, &old, 4).await, 401, "grace is over");
    assert_eq!(status(&c, &new, 5).await, 200);
    assert_eq!(c.points("p", "m").await.len(), 4);
    // The old key's late use is counted against the webhook as an auth rejection.
    let u = c.get(&format!("/api/v1/webhooks/{wh}/usage")).await;
    assert_eq!(u.body["rejected"]["auth"], 1, "{:?}", u.body);

    // A grace period survives a restart; revoking ends every key of the webhook.
    let r = rotate(&c, &wh, "1h").await;
    let newer = r.body["apiKey"].as_str().unwrap().to_owned();
    s.stop().await;
    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(
        status(&c, &new, 6).await,
        200,
        "in its grace period after restart"
    );
    assert_eq!(status(&c, &newer, 7).await, 200);
    assert_eq!(status(&c, &old, 8).await, 401);
    let listed = c.get("/api/v1/webhooks").await;
    assert_eq!(
        listed.body["webhooks"][0]["graceKeys"][0]["keyPrefix"],
        json!(&new[..12])
    );
    let r = c
        .admin(Method::POST, &format!("/api/v1/webhooks/{wh}/revoke"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["webhook"]["graceKeys"], json!([]));
    assert_eq!(status(&c, &new, 9).await, 401);
    assert_eq!(status(&c, &newer, 10).await, 401);
    // Still revoked after a restart.
    s.stop().await;
    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(status(&c, &new, 11).await, 401);
    assert_eq!(status(&c, &newer, 12).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn usage_counts_each_outcome_by_key_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.max_body_bytes = 4096;
        c.tier_limits.free = 3;
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    let other = c.setup("q").await;
    let wh = webhook_id(&c, "p").await;
    let wq = webhook_id(&c, "q").await;
    let before = now_ms();
    // Accepted: 3 requests, 1 + 2 + 3 samples.
    for n in 1..=3i64 {
        let metrics = (0..n).map(|i| metric(&format!("m{i}"), 1.0, n)).collect();
        assert_eq!(c.post(&key, &batch("p", metrics)).await.status, 200);
    }
    // Rejected: validation (bad JSON, wrong type), auth (another project), size.
    assert_eq!(c.post_raw(&key, "{").await.status, 400);
    let bad =
        json!({"projectId": "p", "metrics": [{"metricId": "m", "metricName": "m", "value": "42"}]});
    assert_eq!(c.post(&key, &bad).await.status, 400);
    assert_eq!(
        c.post(&key, &batch("q", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        403
    );
    assert_eq!(c.post_raw(&key, "x".repeat(10_000)).await.status, 413);
    // Rate limit: a free tier of 3 requests an hour starts with a full bucket of 3.
    c.admin(
        Method::PUT,
        "/api/v1/projects/p/tier",
        Some(json!({"tier": "free"})),
    )
    .await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..5 {
            v.push(
                c.post(&key, &batch("p", vec![metric("m0", 1.0, 9)]))
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // The other project's key is counted on its own.
    assert_eq!(
        c.post(&other, &batch("q", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        200
    );

    let check = |body: &serde_json::Value| {
        assert_eq!(body["accepted"], 3 + 3, "{body}");
        assert_eq!(body["samplesStored"], 6 + 3, "{body}");
        assert_eq!(body["rejected"]["validation"], 2, "{body}");
        assert_eq!(body["rejected"]["auth"], 1, "{body}");
        assert_eq!(body["rejected"]["size"], 1, "{body}");
        assert_eq!(body["rejected"]["rateLimit"], 2, "{body}");
        assert_eq!(body["rejectedTotal"], 6, "{body}");
        assert_eq!(body["lastSourceIp"], "127.0.0.1");
        let last = body["lastUsedAt"].as_i64().unwrap();
        assert!(last >= before && last <= now_ms());
        let hourly = body["hourly"].as_array().unwrap();
        assert_eq!(hourly.len(), 168);
        let sum = |f: &str| hourly.iter().map(|h| h[f].as_u64().unwrap()).sum::<u64>();
        assert_eq!(
            (sum("accepted"), sum("rejected"), sum("samples")),
            (6, 6, 9)
        );
        assert!(hourly
            .windows(2)
            .all(|w| w[1]["hourStart"].as_i64() > w[0]["hourStart"].as_i64()));
    };
    let u = c.get(&format!("/api/v1/webhooks/{wh}/usage")).await;
    assert_eq!(u.status, 200, "{:?}", u.body);
    check(&u.body);
    // Under its project: the same; under another project: not found.
    let same = c
        .get(&format!("/api/v1/projects/p/webhooks/{wh}/usage"))
        .await;
    assert_eq!(same.body["samplesStored"], u.body["samplesStored"]);
    assert_eq!(
        c.get(&format!("/api/v1/projects/q/webhooks/{wh}/usage"))
            .await
            .status,
        404
    );
    assert_eq!(c.get("/api/v1/webhooks/wh_nope/usage").await.status, 404);
    let uq = c.get(&format!("/api/v1/webhooks/{wq}/usage")).await;
    assert_eq!(
        (
            uq.body["accepted"].clone(),
            uq.body["samplesStored"].clone()
        ),
        (json!(1), json!(1))
    );
    // The listing shows the last use.
    let listed = c.get("/api/v1/projects/p/webhooks").await;
    assert_eq!(
        listed.body["webhooks"][0]["lastUsedAt"],
        u.body["lastUsedAt"]
    );
    assert_eq!(listed.body["webhooks"][0]["keyAgeDays"], 0);

    s.stop().await;
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let again = c.get(&format!("/api/v1/webhooks/{wh}/usage")).await;
    assert_eq!(again.body["rejected"], u.body["rejected"]);
    check(&again.body);
    s.stop().await;
}

#[tokio::test]
async fn keys_older_than_max_key_age_are_flagged_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let child = Child::start(&data, &[]);
    let key = child.client().setup("p").await;
    assert!(child.terminate().success());

    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Child::start_with_stderr(&data, &["--max-key-age", "1ms"], log.into(), "warn");
    let c = child.client();
    let listed = c.get("/api/v1/webhooks").await;
    assert_eq!(
        listed.body["webhooks"][0]["keyTooOld"], true,
        "{:?}",
        listed.body
    );
    let mut logs = String::new();
    for _ in 0..100 {
        logs = std::fs::read_to_string(&log_path).unwrap();
        if logs.contains("older than --max-key-age") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        logs.contains("older than --max-key-age") && logs.contains(&key[..12]),
        "{logs}"
    );
    assert!(!logs.contains(&key[12..]));
    // Without the flag nothing is flagged.
    assert!(child.terminate().success());
    let child = Child::start(&data, &[]);
    let listed = child.client().get("/api/v1/webhooks").await;
    assert_eq!(listed.body["webhooks"][0]["keyTooOld"], false);
}
