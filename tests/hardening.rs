//! HTTP hardening through a real server: slow and oversized request heads, slow bodies,
//! the connection limit, and CORS, with small limits set in the config (as the flags do).

use crate::support::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(s: &Server) -> TcpStream {
    TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent
/// and how long that took.
async fn read_until_closed(conn: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), conn.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

fn short_timeouts(c: &mut stathook::config::Config) {
    c.header_read_timeout = Duration::from_secs(1);
    c.body_read_timeout = Duration::from_secs(1);
}

#[tokio::test]
async fn a_slow_or_silent_client_is_disconnected_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), short_timeouts).await;
    // Silent: connects and sends nothing.
    let mut silent = connect(&s).await;
    // Slowloris: a header line every 300 ms, never finishing the head.
    let mut slow = connect(&s).await;
    slow.write_all(b"POST /api/webhooks/custom HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        for i in 0..30 {
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return (slow, true);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        (slow, false)
    });
    let (_, took) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let (mut slow, write_failed) = trickle.await.unwrap();
    if !write_failed {
        let (_, took) = read_until_closed(&mut slow, Duration::from_secs(1)).await;
        assert!(took < Duration::from_secs(1));
    }
    // Honest clients are served meanwhile and after.
    let c = s.client();
    let key = c.setup("p").await;
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_gets_408_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), short_timeouts).await;
    let c = s.client();
    let key = c.setup("p").await;
    let body = batch("p", vec![metric("m", 1.0, 1)]).to_string();
    let mut conn = connect(&s).await;
    let head = format!(
        "POST /api/webhooks/custom HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive within 1 s"), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(c.catalog("p").await.is_empty(), "nothing stored");
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_request_head_is_refused_with_431() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.max_header_bytes = 8192).await;
    let mut conn = connect(&s).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = conn.write_all(head.as_bytes()).await;
    let (reply, _) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply:?}");
    // A normal request still works.
    let r = reqwest::get(format!("{}/healthz", s.url)).await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn connections_past_the_limit_wait_and_idle_ones_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        short_timeouts(c);
        c.max_connections = 2;
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    // Fill both slots with silent connections: a new request waits for a slot, then is
    // served once the header timeout has closed them.
    let _a = connect(&s).await;
    let _b = connect(&s).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let fresh = Client::new(&s.url, &s.admin_token);
    let r = fresh
        .post(&key, &batch("p", vec![metric("m", 1.0, 1)]))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served before a slot was free: {:?}",
        started.elapsed()
    );
    s.stop().await;
}

#[tokio::test]
async fn cors_is_closed_unless_an_origin_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let key = c.setup("p").await;
    let preflight = |c: &Client, origin: &str| {
        c.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/webhooks/custom", c.url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
    };
    let r = preflight(&c, "https://dash.example").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .send(
            c.http
                .post(format!("{}/api/webhooks/custom", c.url))
                .header("Origin", "https://dash.example")
                .bearer_auth(&key)
                .body(batch("p", vec![metric("m", 1.0, 1)]).to_string()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    s.stop().await;

    let s = Server::start_with(dir.path(), |c| {
        c.cors_origins = vec!["https://dash.example".into()]
    })
    .await;
    let c = s.client();
    let r = preflight(&c, "https://dash.example").send().await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://dash.example");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
    assert!(h.get("access-control-allow-credentials").is_none());
    let post = |origin: &str| {
        c.http
            .post(format!("{}/api/webhooks/custom", c.url))
            .header("Origin", origin)
            .header("Content-Type", "application/json")
            .bearer_auth(&key)
            .body(batch("p", vec![metric("m", 2.0, 2)]).to_string())
    };
    let r = c.send(post("https://dash.example")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://dash.example"
    );
    assert_eq!(r.headers["vary"], "Origin");
    // Errors carry it too, so the page can read the message.
    let r = c
        .send(
            c.http
                .get(format!("{}/api/v1/nope", c.url))
                .header("Origin", "https://dash.example"),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.headers["access-control-allow-origin"].to_str().unwrap()
        ),
        (404, "https://dash.example")
    );
    // Another origin: no CORS headers, preflight refused.
    let r = c.send(post("https://evil.example")).await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = preflight(&c, "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Both origins' requests were stored (CORS is the browser's check, not auth).
    assert_eq!(c.points("p", "m").await, vec![(1, 1.0), (2, 2.0)]);
    s.stop().await;
}

#[tokio::test]
async fn a_body_declared_far_too_large_is_refused_before_it_is_sent() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut conn = connect(&s).await;
    let head = format!(
        "POST /api/webhooks/custom HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        100u64 << 20
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // Nothing of the body is sent: the answer must not wait for it.
    let (reply, took) = read_until_closed(&mut conn, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("larger than"), "{reply}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(c.catalog("p").await.is_empty());
    s.stop().await;
}
