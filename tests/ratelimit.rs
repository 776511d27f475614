//! Per-tier rate limits through a real server, with small limits set in the config (as the
//! `--rate-limit-*` flags do).

use crate::support::*;
use reqwest::Method;
use serde_json::json;
use stathook::auth::ratelimit::TierLimits;

fn small_limits(c: &mut stathook::config::Config) {
    c.tier_limits = TierLimits {
        free: 5,
        pro: 50,
        scale: 500,
    };
}

fn header(r: &Reply, name: &str) -> i64 {
    r.headers[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_free_project_gets_its_limit_then_429_with_retry_after_and_others_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), small_limits).await;
    let c = s.client();
    let key = c.setup("f").await; // created with the default tier: unlimited
    let other = c.setup("o").await;
    let r = c
        .admin(
            Method::PUT,
            "/api/v1/projects/f/tier",
            Some(json!({"tier": "free"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["tier"], "free");

    let before = now_ms() / 1000;
    for i in 0..5i64 {
        let r = c.post(&key, &batch("f", vec![metric("m", 1.0, i)])).await;
        assert_eq!(r.status, 200, "request {i}: {:?}", r.body);
        assert_eq!(header(&r, "x-ratelimit-limit"), 5);
        assert_eq!(header(&r, "x-ratelimit-remaining"), 4 - i);
        // Full again within the hour.
        let reset = header(&r, "x-ratelimit-reset");
        assert!(reset > before && reset <= before + 3601, "{reset}");
    }
    let r = c.post(&key, &batch("f", vec![metric("m", 1.0, 9)])).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("rate limit of 5 requests per hour"));
    assert_eq!(header(&r, "x-ratelimit-remaining"), 0);
    // One request refills every 720 s at 5 per hour.
    let retry = header(&r, "retry-after");
    assert!((700..=720).contains(&retry), "{retry}");
    // A refused request stored nothing; bad requests count too, and still carry the headers.
    assert_eq!(c.points("f", "m").await.len(), 5);
    let r = c.post_raw(&key, "{").await;
    assert_eq!(r.status, 429);

    // Another project (unlimited) is unaffected and gets no rate-limit headers.
    let r = c.post(&other, &batch("o", vec![metric("m", 1.0, 1)])).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-ratelimit-limit").is_none());

    // Raising the tier takes effect at once.
    let r = c
        .admin(
            Method::PUT,
            "/api/v1/projects/f/tier",
            Some(json!({"tier": "pro"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = c.post(&key, &batch("f", vec![metric("m", 1.0, 10)])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(header(&r, "x-ratelimit-limit"), 50);
    // The tier survives a restart (the bucket starts full again).
    s.stop().await;
    let s = Server::start_with(dir.path(), small_limits).await;
    let c = s.client();
    let r = c.post(&key, &batch("f", vec![metric("m", 1.0, 11)])).await;
    assert_eq!(header(&r, "x-ratelimit-limit"), 50);
    // Bad tiers are named.
    let r = c
        .admin(
            Method::PUT,
            "/api/v1/projects/f/tier",
            Some(json!({"tier": "gold"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("tier must be"));
    s.stop().await;
}
