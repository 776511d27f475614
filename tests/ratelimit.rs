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

#[tokio::test]
async fn an_address_guessing_keys_is_refused_before_any_lookup_then_let_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.auth_failures_per_minute = 3;
        c.auth_cooldown = std::time::Duration::from_secs(4);
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    let good = batch("p", vec![metric("m", 1.0, 1)]);
    for i in 0..3 {
        let r = c.post(&format!("shk_guess{i}"), &good).await;
        assert_eq!(r.status, 401, "{i}");
    }
    // The fourth failure starts the cooling-off period...
    assert_eq!(c.post("shk_guess3", &good).await.status, 401);
    let blocked_from = std::time::Instant::now();
    // ...during which even the right key (and the admin token) get 429 from this address,
    // each after the tarpit's delay.
    let asked = std::time::Instant::now();
    let r = c.post(&key, &good).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(asked.elapsed() >= stathook::http::REFUSED_ADDRESS_DELAY);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("failed authentications"));
    assert!(
        (2..=3).contains(&header(&r, "retry-after")),
        "{:?}",
        r.headers
    );
    assert_eq!(c.get("/api/v1/projects").await.status, 429);
    // A request without credentials is not refused (nothing to guess with).
    let r = c.send(c.http.get(format!("{}/healthz", c.url))).await;
    assert_eq!(r.status, 200);
    // Without --trust-proxy, X-Forwarded-For changes nothing.
    let r = c
        .send(
            c.http
                .post(format!("{}/api/webhooks/custom", c.url))
                .bearer_auth(&key)
                .header("X-Forwarded-For", "203.0.113.9")
                .header("Content-Type", "application/json")
                .body(good.to_string()),
        )
        .await;
    assert_eq!(r.status, 429);
    let over = std::time::Duration::from_millis(4100).saturating_sub(blocked_from.elapsed());
    tokio::time::sleep(over).await;
    assert_eq!(c.post(&key, &good).await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_is_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.auth_failures_per_minute = 1;
        c.trust_proxy = true;
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    let good = batch("p", vec![metric("m", 1.0, 1)]);
    let post = |from: &'static str, key: String| {
        let req = c
            .http
            .post(format!("{}/api/webhooks/custom", c.url))
            .bearer_auth(key)
            .header("X-Forwarded-For", format!("198.51.100.7, {from}"))
            .header("Content-Type", "application/json")
            .body(good.to_string());
        c.send(req)
    };
    assert_eq!(post("203.0.113.1", "shk_bad".into()).await.status, 401);
    assert_eq!(post("203.0.113.1", "shk_bad".into()).await.status, 401);
    assert_eq!(post("203.0.113.1", key.clone()).await.status, 429);
    // Another client behind the same proxy is not affected.
    assert_eq!(post("203.0.113.2", key.clone()).await.status, 200);
    s.stop().await;
}

/// Oversized bodies count against their address like failed authentications: a client
/// sending them in a loop is cut off before the server reads more of them, while a client
/// on another address is served.
#[tokio::test]
async fn an_address_sending_oversized_bodies_is_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.auth_failures_per_minute = 3;
        c.max_body_bytes = 4096;
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    let big = "x".repeat(10_000);
    for i in 0..4 {
        assert_eq!(c.post_raw(&key, big.clone()).await.status, 413, "{i}");
    }
    let good = batch("p", vec![metric("m", 1.0, 1)]);
    let r = c.post(&key, &good).await;
    assert_eq!(r.status, 429, "{:?}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("refused bodies"));
    // Another address (another loopback IP) is not affected.
    let other = Client {
        http: reqwest::Client::builder()
            .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap(),
        ..c.clone()
    };
    assert_eq!(other.post(&key, &good).await.status, 200);
    s.stop().await;
}
