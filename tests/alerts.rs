//! Alerts through a real server: rules evaluated every second, notifications to receivers
//! on loopback (127.0.0.3, the one address allowed by `--alert-allow-hosts`), signed the
//! Standard Webhooks way, retried, surviving a SIGKILL; the outbound guard refusing every
//! other loopback destination (nothing connects there: listeners count their connections).

use crate::support::*;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const ALLOWED: &str = "127.0.0.3";

#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) headers: HashMap<String, String>,
    pub(crate) raw: Vec<u8>,
    pub(crate) body: Value,
    pub(crate) answered: u16,
}

/// An HTTP receiver on `ip`: records every request, answers the queued statuses (then
/// `otherwise`), counts connections. A queued 302 redirects to `redirect_to`.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Received>>>,
    pub(crate) statuses: Arc<Mutex<VecDeque<u16>>>,
    pub(crate) otherwise: Arc<Mutex<u16>>,
    connections: Arc<AtomicUsize>,
    redirect_to: Arc<Mutex<String>>,
}

impl Receiver {
    pub(crate) async fn start(ip: &str) -> Receiver {
        Receiver::start_on(tokio::net::TcpListener::bind((ip, 0)).await.unwrap()).await
    }

    /// A receiver on a listener already bound (a port chosen before it comes up).
    pub(crate) async fn start_on(listener: tokio::net::TcpListener) -> Receiver {
        let r = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            got: Arc::default(),
            statuses: Arc::default(),
            otherwise: Arc::new(Mutex::new(200)),
            connections: Arc::default(),
            redirect_to: Arc::default(),
        };
        let me = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                me.connections.fetch_add(1, Ordering::SeqCst);
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let me = me.clone();
                            async move {
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.to_string(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect();
                                let raw =
                                    req.into_body().collect().await.unwrap().to_bytes().to_vec();
                                let status = me
                                    .statuses
                                    .lock()
                                    .pop_front()
                                    .unwrap_or(*me.otherwise.lock());
                                me.got.lock().push(Received {
                                    headers,
                                    body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                                    raw,
                                    answered: status,
                                });
                                let mut resp = hyper::Response::builder().status(status);
                                if status == 302 {
                                    resp = resp.header("location", me.redirect_to.lock().clone());
                                }
                                Ok::<_, std::convert::Infallible>(
                                    resp.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        r
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().clone()
    }

    /// Waits until `n` requests arrived.
    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < within,
                "{} of {n} requests after {within:?}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn fast_alerts(dir: &std::path::Path) -> Server {
    Server::start_with(dir, |c| {
        c.alert_interval = Duration::from_secs(1);
        c.alert_allow_hosts = vec![ALLOWED.into()];
    })
    .await
}

/// A fast-evaluating server with project p1, its webhook key, a receiver and a webhook
/// channel to it.
async fn with_webhook_channel() -> (tempfile::TempDir, Server, Client, String, Receiver, Value) {
    let dir = tempfile::tempdir().unwrap();
    let s = fast_alerts(dir.path()).await;
    let c = s.client();
    let key = c.setup("p1").await;
    let rx = Receiver::start(ALLOWED).await;
    let ch = channel(&c, "p1", "webhook", &rx.url).await;
    (dir, s, c, key, rx, ch)
}

async fn channel(c: &Client, project: &str, kind: &str, url: &str) -> Value {
    let r = c
        .admin(
            Method::POST,
            &format!("/api/v1/projects/{project}/channels"),
            Some(json!({"name": format!("{kind} receiver"), "type": kind, "url": url})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

/// The channel's Send test; the attempt it answers with.
async fn send_test(c: &Client, ch: &Value) -> Reply {
    let path = format!(
        "/api/v1/projects/p1/channels/{}/test",
        ch["id"].as_str().unwrap()
    );
    let r = c.admin(Method::POST, &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r
}

/// The channel with its delivery log, once the log holds `n` attempts: an attempt is logged
/// just after its answer arrives, so a receiver can have seen a request before it is.
async fn channel_log(c: &Client, channel_id: &str, n: usize) -> Value {
    let path = format!("/api/v1/projects/p1/channels/{channel_id}");
    let start = Instant::now();
    loop {
        let r = c.get(&path).await;
        let logged = r.body["deliveries"].as_array().map_or(0, Vec::len);
        if logged >= n || start.elapsed() > Duration::from_secs(10) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn rule(c: &Client, project: &str, body: Value) -> String {
    let r = c
        .admin(
            Method::POST,
            &format!("/api/v1/projects/{project}/alerts"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn state_of(c: &Client, project: &str, id: &str) -> Value {
    let r = c
        .get(&format!("/api/v1/projects/{project}/alerts/{id}"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Waits until the rule is in `want`.
async fn wait_state(c: &Client, project: &str, id: &str, want: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let s = state_of(c, project, id).await;
        if s["state"] == want {
            return s;
        }
        assert!(start.elapsed() < within, "not {want} after {within:?}: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Standard Webhooks check a receiver makes, written from the spec (not with the
/// server's own signing code).
fn signature_valid(secret: &str, r: &Received) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.",
        r.headers["webhook-id"], r.headers["webhook-timestamp"]
    );
    mac.update(signed.as_bytes());
    mac.update(&r.raw);
    let want = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"].split(' ').any(|s| s == want)
}

#[tokio::test]
async fn a_threshold_rule_fires_holds_through_its_clear_band_and_resolves_to_a_signed_webhook() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    let secret = ch["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed = c.get("/api/v1/projects/p1/channels").await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "the secret is shown once"
    );
    assert!(
        !listed.body.to_string().contains("/hook"),
        "the URL is masked: {}",
        listed.body
    );

    let id = rule(&c, "p1", json!({"name": "API slow", "metricId": "api_ms", "channels": [ch["id"]],
        "condition": {"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 100, "clear": 90}})).await;
    let sample = |v: f64| {
        json!({"projectId": "p1", "metrics": [{"metricId": "api_ms",
        "metricName": "API latency", "unit": "ms", "value": v, "timestamp": now_ms()}]})
    };
    assert_eq!(
        wait_state(&c, "p1", &id, "nodata", Duration::from_secs(5)).await["state"],
        "nodata"
    );
    assert_eq!(c.post(&key, &sample(42.5)).await.status, 200);
    wait_state(&c, "p1", &id, "ok", Duration::from_secs(5)).await;
    assert_eq!(c.post(&key, &sample(150.25)).await.status, 200);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let firing = &got[0];
    assert_eq!(firing.body["type"], "alert.firing", "{:?}", firing.body);
    assert_eq!(firing.body["data"]["value"], 150.25);
    assert_eq!(firing.body["data"]["metricName"], "API latency");
    assert_eq!(firing.body["data"]["condition"], "last over 5m > 100");
    assert_eq!(
        firing.body["data"]["url"],
        format!("{}/projects/p1/metrics/api_ms", s.url)
    );
    assert!(firing.headers["webhook-id"].starts_with("msg_"));
    assert!(signature_valid(&secret, firing), "{:?}", firing.headers);
    let ts: i64 = firing.headers["webhook-timestamp"].parse().unwrap();
    assert!((now_ms() / 1000 - ts).abs() < 30);

    // 95 is below the line but above the clear value: still firing, nothing sent.
    assert_eq!(c.post(&key, &sample(95.0)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(state_of(&c, "p1", &id).await["state"], "firing");
    assert_eq!(rx.received().len(), 1, "no flap inside the clear band");
    assert_eq!(c.post(&key, &sample(50.0)).await.status, 200);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["type"], "alert.resolved");
    assert_eq!(got[1].body["data"]["value"], 50.0);
    assert!(signature_valid(&secret, &got[1]));
    assert_ne!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);

    let st = state_of(&c, "p1", &id).await;
    assert_eq!(st["state"], "ok");
    let path: Vec<(String, String)> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|h| {
            (
                h["from"].as_str().unwrap().into(),
                h["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let path: Vec<(&str, &str)> = path.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(path, [("nodata", "ok"), ("ok", "firing"), ("firing", "ok")]);
    let log = channel_log(&c, ch["id"].as_str().unwrap(), 2).await;
    let outcomes: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["delivered", "delivered"]);
    assert_eq!(log["failing"], false);
    s.stop().await;
}

#[tokio::test]
async fn an_absence_rule_fires_when_a_job_stops_and_a_late_batch_does_not_resolve_it() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    let id = rule(
        &c,
        "p1",
        json!({"name": "backup job", "metricId": "backup_done", "channels": [ch["id"]],
        "condition": {"type": "absence", "for": "3s"}}),
    )
    .await;
    let beat = |ts: i64| json!({"projectId": "p1", "metrics": [{"metricId": "backup_done", "metricName": "Backup done", "value": 1, "timestamp": ts}]});
    assert_eq!(c.post(&key, &beat(now_ms())).await.status, 200);
    wait_state(&c, "p1", &id, "ok", Duration::from_secs(5)).await;
    assert!(rx.received().is_empty());
    // The job stops: within 3 s + an interval the rule fires.
    let got = rx.wait_for(1, Duration::from_secs(8)).await;
    assert_eq!(got[0].body["type"], "alert.firing");
    assert_eq!(got[0].body["data"]["condition"], "no sample for 3s");
    // A late batch of an old sample: the job did not report now.
    assert_eq!(c.post(&key, &beat(now_ms() - 60_000)).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(state_of(&c, "p1", &id).await["state"], "firing");
    assert_eq!(rx.received().len(), 1);
    // It reports again: resolved.
    assert_eq!(c.post(&key, &beat(now_ms())).await.status, 200);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["type"], "alert.resolved");
    s.stop().await;
}

#[tokio::test]
async fn for_holds_a_rule_in_pending_and_a_free_project_has_no_alerts() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    let id = rule(
        &c,
        "p1",
        json!({"name": "errors", "metricId": "errors", "channels": [ch["id"]], "for": "4s",
        "condition": {"type": "threshold", "agg": "sum", "window": "5m", "op": ">=", "value": 3}}),
    )
    .await;
    let body = json!({"projectId": "p1", "metrics": [{"metricId": "errors", "metricName": "Errors", "value": 5, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let pending = wait_state(&c, "p1", &id, "pending", Duration::from_secs(5)).await;
    assert_eq!(pending["value"], 5.0);
    assert!(rx.received().is_empty(), "pending does not notify");
    let firing = wait_state(&c, "p1", &id, "firing", Duration::from_secs(8)).await;
    assert!(firing["since"].as_i64().unwrap() - pending["since"].as_i64().unwrap() >= 4000);
    rx.wait_for(1, Duration::from_secs(5)).await;

    // Muted: the state changes, nothing is sent.
    let r = c
        .admin(Method::PATCH, &format!("/api/v1/projects/p1/alerts/{id}"),
            Some(json!({"mutedUntil": now_ms() + 3_600_000, "condition": {"type": "threshold", "agg": "sum", "window": "5m", "op": ">=", "value": 100}})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    wait_state(&c, "p1", &id, "ok", Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rx.received().len(), 1, "resolved while muted: not sent");

    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Free", "id": "free1", "tier": "free"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = c
        .admin(Method::POST, "/api/v1/projects/free1/alerts",
            Some(json!({"name": "x", "metricId": "m", "condition": {"type": "absence", "for": "10m"}})))
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"].as_str().unwrap().contains("pro tier"),
        "{:?}",
        r.body
    );
    let r = c
        .admin(Method::POST, "/api/v1/projects/p1/alerts",
            Some(json!({"name": "x", "metricId": "m", "condition": {"type": "threshold", "agg": "avg", "window": "1m", "op": ">", "value": 1}})))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("condition.window"),
        "{:?}",
        r.body
    );
    let r = c
        .delete(&format!(
            "/api/v1/projects/p1/channels/{}",
            ch["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        r.status, 409,
        "a channel in use is not deleted: {:?}",
        r.body
    );
    s.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_notification_after_retries_with_one_webhook_id() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    rx.statuses.lock().extend([500, 503]);
    rule(
        &c,
        "p1",
        json!({"name": "queue", "metricId": "queue_depth", "channels": [ch["id"]],
        "condition": {"type": "threshold", "agg": "max", "window": "5m", "op": ">", "value": 10}}),
    )
    .await;
    let body = json!({"projectId": "p1", "metrics": [{"metricId": "queue_depth", "metricName": "Queue depth", "value": 99, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let got = rx.wait_for(3, Duration::from_secs(10)).await;
    let answers: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answers, [500, 503, 200]);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.headers["webhook-id"].as_str())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let log = channel_log(&c, ch["id"].as_str().unwrap(), 3).await;
    let d = log["deliveries"].as_array().unwrap();
    let outcomes: Vec<(&str, u64)> = d
        .iter()
        .rev()
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("retrying", 500), ("retrying", 503), ("delivered", 200)]
    );
    assert!(
        d[2]["error"].as_str().unwrap().contains("answered 500"),
        "{d:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received().len(), 3, "delivered once, then nothing more");
    s.stop().await;
}

#[tokio::test]
async fn the_guard_refuses_every_loopback_destination_not_allowed_and_follows_no_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let s = fast_alerts(dir.path()).await;
    let c = s.client();
    c.setup("p1").await;
    let forbidden = Receiver::start("127.0.0.2").await;
    let localhost = Receiver::start("127.0.0.1").await;
    let allowed = Receiver::start(ALLOWED).await;
    *allowed.redirect_to.lock() = forbidden.url.clone();
    allowed.statuses.lock().push_back(302);
    let by_name = localhost.url.replace("127.0.0.1", "localhost");
    for (url, want) in [
        (forbidden.url.clone(), "127.0.0.2 (loopback)"),
        (by_name, "localhost resolves to"),
        (allowed.url.clone(), "a redirect, which is not followed"),
    ] {
        let ch = channel(&c, "p1", "slack", &url).await;
        let r = send_test(&c, &ch).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["outcome"], "failed", "{url}: {:?}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains(want),
            "{url}: {:?}",
            r.body
        );
    }
    assert_eq!(
        forbidden.connections.load(Ordering::SeqCst),
        0,
        "nothing connected to 127.0.0.2"
    );
    assert_eq!(
        localhost.connections.load(Ordering::SeqCst),
        0,
        "nothing connected to localhost"
    );
    assert_eq!(allowed.received().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn send_test_posts_each_channel_kind_its_own_payload() {
    let dir = tempfile::tempdir().unwrap();
    let s = fast_alerts(dir.path()).await;
    let c = s.client();
    c.setup("p1").await;
    let rx = Receiver::start(ALLOWED).await;
    for kind in ["slack", "discord", "teams", "webhook"] {
        let ch = channel(&c, "p1", kind, &rx.url).await;
        let r = send_test(&c, &ch).await;
        assert_eq!(r.body["outcome"], "delivered", "{kind}: {:?}", r.body);
    }
    let got = rx.received();
    assert!(got[0].body["text"]
        .as_str()
        .unwrap()
        .contains("[TEST] Test of channel slack receiver"));
    assert_eq!(got[0].body.as_object().unwrap().len(), 1);
    assert_eq!(got[1].body["allowed_mentions"]["parse"], json!([]));
    assert!(got[1].body["content"].as_str().unwrap().len() <= 2000);
    assert_eq!(
        got[2].body["attachments"][0]["content"]["type"],
        "AdaptiveCard"
    );
    assert_eq!(got[3].body["type"], "alert.test");
    assert!(got[3].headers.contains_key("webhook-signature"));
    assert!(
        !got[0].headers.contains_key("webhook-signature"),
        "only webhook channels are signed"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_notification_in_the_outbox_survives_a_sigkill_and_is_not_sent_twice_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--alert-interval", "1s", "--alert-allow-hosts", ALLOWED];
    let rx = Receiver::start(ALLOWED).await;
    *rx.otherwise.lock() = 503;
    let child = Child::start(dir.path(), &flags);
    let c = child.client();
    let key = c.setup("p1").await;
    let ch = channel(&c, "p1", "webhook", &rx.url).await;
    let id = rule(
        &c,
        "p1",
        json!({"name": "disk", "metricId": "disk_pct", "channels": [ch["id"]],
        "condition": {"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": 90}}),
    )
    .await;
    let body = json!({"projectId": "p1", "metrics": [{"metricId": "disk_pct", "metricName": "Disk used", "unit": "%", "value": 97.5, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let first = rx.wait_for(1, Duration::from_secs(10)).await[0].clone();
    child.kill();
    *rx.otherwise.lock() = 200;
    let before = rx.received().len();

    let child = Child::start(dir.path(), &flags);
    let c = child.client();
    let got = rx.wait_for(before + 1, Duration::from_secs(10)).await;
    let last = got.last().unwrap();
    assert_eq!(last.answered, 200);
    assert_eq!(
        last.headers["webhook-id"], first.headers["webhook-id"],
        "the same notification"
    );
    assert_eq!(last.body["type"], "alert.firing");
    // The restarted server resumes the rule as firing: no second notification.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = rx.received();
    assert!(
        all.iter()
            .all(|r| r.headers["webhook-id"] == first.headers["webhook-id"]),
        "{all:?}"
    );
    assert_eq!(all.iter().filter(|r| r.answered == 200).count(), 1);
    assert_eq!(state_of(&c, "p1", &id).await["state"], "firing");
    child.terminate();
}

// The CLI runs as a blocking child process: the receiver needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_and_alert_commands_drive_the_same_api() {
    use crate::cli::{stathook, value_of};
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--alert-interval", "1s", "--alert-allow-hosts", ALLOWED];
    let child = Child::start(dir.path(), &flags);
    let (url, d) = (child.url.clone(), dir.path());
    let c = child.client();
    let key = c.setup("p1").await;
    let rx = Receiver::start(ALLOWED).await;
    let run = |args: &[&str]| {
        let (ok, out, err) = stathook(args, &url, d);
        assert!(ok, "stathook {args:?}: {err}");
        out
    };
    let out = run(&[
        "channel",
        "add",
        "--project",
        "p1",
        "--name",
        "Ops",
        "--type",
        "webhook",
        "--url",
        &rx.url,
    ]);
    let ch = value_of(&out, "Channel ID:").to_owned();
    assert!(value_of(&out, "Signing secret:").starts_with("whsec_"));
    let out = run(&["channel", "list", "--project", "p1"]);
    assert!(out.contains(&ch) && !out.contains("/hook"), "{out}");
    let out = run(&[
        "channel",
        "add",
        "--project",
        "p1",
        "--name",
        "Mail",
        "--type",
        "email",
        "--to",
        "a@example.test,b@example.test",
        "--from",
        "alerts@example.test",
        "--smtp-host",
        "smtp.example.test",
        "--smtp-security",
        "tls",
    ]);
    let mail = value_of(&out, "Channel ID:").to_owned();
    let out = run(&["channel", "list", "--project", "p1"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&mail) && l.contains("smtp://smtp.example.test:465")),
        "{out}"
    );
    run(&["channel", "remove", "--project", "p1", "--channel", &mail]);
    let (ok, _, err) = stathook(
        &[
            "channel",
            "add",
            "--project",
            "p1",
            "--name",
            "x",
            "--type",
            "slack",
        ],
        &url,
        d,
    );
    assert!(!ok && err.contains("url is required"), "{err}");
    let out = run(&["channel", "test", "--project", "p1", "--channel", &ch]);
    assert!(out.contains("delivered"), "{out}");

    let out = run(&[
        "alert",
        "add",
        "--project",
        "p1",
        "--name",
        "Slow",
        "--metric",
        "api_ms",
        "--threshold",
        "last 5m > 100",
        "--clear",
        "90",
        "--channel",
        &ch,
    ]);
    let id = value_of(&out, "Alert ID:").to_owned();
    assert_eq!(value_of(&out, "Condition:"), "last over 5m > 100");
    let (ok, _, err) = stathook(
        &[
            "alert",
            "add",
            "--project",
            "p1",
            "--name",
            "x",
            "--metric",
            "m",
        ],
        &url,
        d,
    );
    assert!(!ok && err.contains("exactly one of --threshold"), "{err}");
    let (ok, _, err) = stathook(
        &[
            "alert",
            "add",
            "--project",
            "p1",
            "--name",
            "x",
            "--metric",
            "m",
            "--threshold",
            "avg 1m > 1",
        ],
        &url,
        d,
    );
    assert!(
        !ok && err.contains("condition.window"),
        "the server's message: {err}"
    );

    let body = json!({"projectId": "p1", "metrics": [{"metricId": "api_ms", "metricName": "API", "value": 120.5, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    wait_state(&c, "p1", &id, "firing", Duration::from_secs(8)).await;
    let out = run(&["alert", "list", "--project", "p1"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id) && l.contains("firing") && l.contains("120.5")),
        "{out}"
    );
    let out = run(&[
        "alert",
        "mute",
        "--project",
        "p1",
        "--alert",
        &id,
        "--for",
        "2h",
    ]);
    assert!(out.starts_with(&format!("Muted {id} until ")), "{out}");
    let out = run(&["alert", "show", "--project", "p1", "--alert", &id]);
    assert!(
        out.contains("muted until") && out.contains("firing   120.5"),
        "{out}"
    );
    run(&["alert", "unmute", "--project", "p1", "--alert", &id]);
    channel_log(&c, &ch, 2).await; // the test and the firing
    let out = run(&["channel", "show", "--project", "p1", "--channel", &ch]);
    assert!(out.contains("test") && out.contains("firing"), "{out}");
    let (ok, _, err) = stathook(
        &["channel", "remove", "--project", "p1", "--channel", &ch],
        &url,
        d,
    );
    assert!(!ok && err.contains(&id), "a channel in use stays: {err}");
    run(&["alert", "remove", "--project", "p1", "--alert", &id]);
    run(&["channel", "remove", "--project", "p1", "--channel", &ch]);
    child.terminate();
}

/// Debian's aiosmtpd on `ALLOWED`, printing each message it receives to a file.
struct SmtpSink {
    process: std::process::Child,
    port: u16,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl SmtpSink {
    /// None (and a loud note) without python3-aiosmtpd, unless STATHOOK_REQUIRE_SMTP is set.
    async fn start() -> Option<SmtpSink> {
        let present = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var_os("STATHOOK_REQUIRE_SMTP").is_none(),
                "STATHOOK_REQUIRE_SMTP is set but /usr/bin/python3 has no aiosmtpd"
            );
            eprintln!(
                "\n*** EMAIL TESTS SKIPPED: apt-get install python3-aiosmtpd to run them ***\n"
            );
            return None;
        }
        let port = std::net::TcpListener::bind((ALLOWED, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail.txt");
        let process = std::process::Command::new("/usr/bin/python3")
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
                "-l",
            ])
            .arg(format!("{ALLOWED}:{port}"))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect((ALLOWED, port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(SmtpSink {
            process,
            port,
            out,
            _dir: dir,
        })
    }

    fn mail(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
}

#[tokio::test]
async fn email_goes_through_smtp_and_starttls_is_never_downgraded() {
    let Some(smtp) = SmtpSink::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = fast_alerts(dir.path()).await;
    let c = s.client();
    let key = c.setup("p1").await;
    let email = |name: &str, host: &str, security: &str| {
        json!({"name": name, "type": "email", "to": ["ops@example.test"], "from": "stathook <alerts@example.test>",
               "smtp": {"host": host, "port": smtp.port, "security": security}})
    };
    let add = |body: Value| {
        let c = c.clone();
        async move {
            let r = c
                .admin(Method::POST, "/api/v1/projects/p1/channels", Some(body))
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            r.body
        }
    };
    let plain = add(email("Local relay", ALLOWED, "none")).await;
    assert_eq!(plain["url"], format!("smtp://{ALLOWED}:{}", smtp.port));
    let r = send_test(&c, &plain).await;
    assert_eq!(r.body["outcome"], "delivered", "{:?}", r.body);
    assert_eq!(r.body["status"], 250);
    let mail = smtp.mail();
    assert!(
        mail.contains("Subject: [TEST] Test of channel Local relay"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "Message-ID: <{}@stathook>",
            r.body["messageId"].as_str().unwrap()
        )),
        "{mail}"
    );

    // The default security requires STARTTLS, which this server does not offer: refused,
    // nothing sent in plain text.
    let strict = add(email("Strict", ALLOWED, "starttls")).await;
    let before = smtp.mail().matches("MESSAGE FOLLOWS").count();
    let r = send_test(&c, &strict).await;
    assert_eq!(r.body["outcome"], "failed", "{:?}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("does not fall back to plain"),
        "{:?}",
        r.body
    );
    assert_eq!(smtp.mail().matches("MESSAGE FOLLOWS").count(), before);
    // A server on a loopback address not allowed is never contacted.
    let guarded = add(email("Guarded", "127.0.0.2", "none")).await;
    let r = send_test(&c, &guarded).await;
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.2 (loopback)"),
        "{:?}",
        r.body
    );

    // A rule firing to the plain relay.
    rule(
        &c,
        "p1",
        json!({"name": "Queue deep", "metricId": "queue", "channels": [plain["id"]],
        "condition": {"type": "threshold", "agg": "max", "window": "5m", "op": ">", "value": 10}}),
    )
    .await;
    let body = json!({"projectId": "p1", "metrics": [{"metricId": "queue", "metricName": "Queue depth", "value": 42, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let start = Instant::now();
    while !smtp.mail().contains("Subject: [FIRING] Queue deep") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no firing email: {}",
            smtp.mail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(smtp.mail().contains("Value: 42"));
    s.stop().await;
}

#[tokio::test]
async fn more_than_ten_rules_firing_at_once_reach_a_channel_as_one_digest() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    for i in 0..11 {
        rule(&c, "p1", json!({"name": format!("disk {i}"), "metricId": "disk", "channels": [ch["id"]],
            "condition": {"type": "threshold", "agg": "last", "window": "5m", "op": ">", "value": i}})).await;
    }
    let body = json!({"projectId": "p1", "metrics": [{"metricId": "disk", "metricName": "Disk", "value": 99, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let got = rx.wait_for(1, Duration::from_secs(8)).await;
    assert_eq!(got[0].body["type"], "alert.digest", "{:?}", got[0].body);
    assert_eq!(got[0].body["data"]["alerts"].as_array().unwrap().len(), 11);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received().len(), 1, "one message, not eleven");
    s.stop().await;
}

#[tokio::test]
async fn a_cron_absence_rule_fires_when_a_tick_passes_without_a_sample() {
    let (_dir, s, c, key, rx, ch) = with_webhook_channel().await;
    // Every 3 s (a seconds field first), 1 s of grace.
    rule(
        &c,
        "p1",
        json!({"name": "ticker", "metricId": "job_done", "channels": [ch["id"]],
        "condition": {"type": "absence", "cron": "*/3 * * * * *", "grace": "1s"}}),
    )
    .await;
    let beat = || json!({"projectId": "p1", "metrics": [{"metricId": "job_done", "metricName": "Job done", "value": 1, "timestamp": now_ms()}]});
    assert_eq!(c.post(&key, &beat()).await.status, 200);
    let got = rx.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].body["type"], "alert.firing");
    assert_eq!(
        got[0].body["data"]["condition"],
        "no sample by */3 * * * * * (cron, UTC) + 1s"
    );
    assert_eq!(c.post(&key, &beat()).await.status, 200);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].body["type"], "alert.resolved");
    s.stop().await;
}
