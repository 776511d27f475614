//! Forwarding (`--forward`) to real receivers: a recording receiver on loopback checks the
//! protocol's headers, the labels, the values and the order per series, and plays faults
//! (5xx for a while, then one 400: retried, then dead-lettered and replayed); a stathook
//! SIGKILLed while its target is down resends everything after the restart; a real
//! VictoriaMetrics stopped for 30 s during ingest and a real Prometheus (remote-write
//! receiver) end up with every acknowledged sample. Without the Debian packages the peer
//! tests say loudly that they were skipped, unless `STATHOOK_REQUIRE_FORWARD_PEERS` is set.

use crate::alerts::{Received, Receiver};
use crate::support::*;
use prost::Message;
use serde_json::{json, Value};
use stathook::ingest::remote_write::WriteRequest;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const VICTORIA_METRICS: &str = "/usr/bin/victoria-metrics";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Series (labels as `k=v,…` sorted) → samples, from the requests a receiver accepted.
fn decoded(got: &[Received]) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for r in got
        .iter()
        .filter(|r| r.answered == 204 || r.answered == 200)
    {
        for (k, v) in series_of(r) {
            out.entry(k).or_default().extend(v);
        }
    }
    out
}

fn series_of(r: &Received) -> Vec<(String, Vec<(i64, f64)>)> {
    let raw = snap::raw::Decoder::new().decompress_vec(&r.raw).unwrap();
    let req = WriteRequest::decode(raw.as_slice()).unwrap();
    req.timeseries
        .iter()
        .map(|ts| {
            let labels: Vec<String> = ts
                .labels
                .iter()
                .map(|l| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&l.name),
                        String::from_utf8_lossy(&l.value)
                    )
                })
                .collect();
            let samples = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            (labels.join(","), samples)
        })
        .collect()
}

/// What was sent: `metrics` series × `points` samples, 2 decimals, ms timestamps.
fn expected(
    project: &str,
    metrics: usize,
    points: usize,
    t0: i64,
) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for m in 0..metrics {
        let samples = (0..points)
            .map(|i| (t0 + i as i64 * 1_000 + m as i64, value(m, i)))
            .collect();
        out.insert(
            format!("__name__=job_{m}_seconds,project={project}"),
            samples,
        );
    }
    out
}

fn value(m: usize, i: usize) -> f64 {
    ((m * 1_000 + i * 7) % 10_000) as f64 / 100.0
}

/// Sends the dataset through the webhook, one request per point index.
async fn ingest(
    c: &Client,
    key: &str,
    project: &str,
    metrics: usize,
    points: std::ops::Range<usize>,
    t0: i64,
) {
    for i in points {
        let batch: Vec<Value> = (0..metrics)
            .map(|m| {
                json!({"metricId": format!("job_{m}_seconds"), "metricName": format!("Job {m} duration"),
                    "unit": "s", "value": value(m, i), "timestamp": t0 + i as i64 * 1_000 + m as i64})
            })
            .collect();
        let r = c
            .post(key, &json!({"projectId": project, "metrics": batch}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> F,
) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_sample_reaches_the_target_with_its_labels_headers_and_order() {
    let rx = Receiver::start("127.0.0.1").await;
    *rx.otherwise.lock() = 204;
    let dir = tempfile::tempdir().unwrap();
    let url = rx.url.replace("http://", "http://user:pa%40ss@");
    let server = Server::start_with(dir.path(), |c| {
        c.forward =
            stathook::forward::parse_targets(&[url], &["X-Scope-OrgID: tenant-7".into()], None)
                .unwrap();
    })
    .await;
    let c = server.client();
    let key = c.setup("fw").await;
    let t0 = now_ms() - 600_000;
    ingest(&c, &key, "fw", 20, 0..30, t0).await;
    // Out of order, a duplicate timestamp (the later value wins) and a dotted metricId.
    let late = json!({"projectId": "fw", "metrics": [
        {"metricId": "api.latency", "metricName": "API latency", "value": 12.5, "timestamp": t0 + 5_000},
        {"metricId": "api.latency", "metricName": "API latency", "value": 11.25, "timestamp": t0 + 1_000},
        {"metricId": "api.latency", "metricName": "API latency", "value": 99.0, "timestamp": t0 + 1_000},
    ]});
    assert_eq!(c.post(&key, &late).await.status, 200);
    let mut want = expected("fw", 20, 30, t0);
    want.insert(
        "__name__=api_latency,metricId=api.latency,project=fw".into(),
        vec![(t0 + 1_000, 99.0), (t0 + 5_000, 12.5)],
    );
    wait_until("all samples forwarded", Duration::from_secs(20), || {
        let got = decoded(&rx.received());
        let want = &want;
        async move {
            got.values().map(Vec::len).sum::<usize>() >= want.values().map(Vec::len).sum::<usize>()
        }
    })
    .await;
    let got = rx.received();
    assert_eq!(
        decoded(&got),
        want,
        "every sample once, with PromQL's labels"
    );
    for r in &got {
        assert_eq!(r.headers["content-encoding"], "snappy");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(r.headers["x-scope-orgid"], "tenant-7");
        assert_eq!(
            r.headers["authorization"], "Basic dXNlcjpwYUBzcw==",
            "user:pa@ss"
        );
        for (series, samples) in series_of(r) {
            assert!(
                samples.windows(2).all(|w| w[0].0 < w[1].0),
                "{series}: samples in timestamp order within a request"
            );
        }
    }
    let status = c.get("/api/v1/admin/forward").await;
    assert_eq!(status.status, 200);
    let t = &status.body["targets"][0];
    assert_eq!(t["url"], rx.url, "no credentials in the status");
    assert_eq!(t["sentSamples"], 603);
    assert_eq!(t["lagSamples"], 0);
    assert_eq!(t["deadLetters"], 0);
    // The same on /metrics, in a text format promtool accepts.
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!(
        "stathook_forward_sent_samples_total{{target=\"{}\"}} 603",
        rx.url
    );
    assert!(text.contains(&line), "{line} not in:\n{text}");
    assert!(
        text.contains("stathook_samples_acknowledged_total 603\n"),
        "{text}"
    );
    assert!(text.contains("stathook_forward_lag_samples{"), "{text}");
    if !crate::prom::missing() {
        use std::io::Write;
        let mut check = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = check.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let anonymous = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_failing_is_retried_and_a_refused_batch_is_dead_lettered_then_replayed() {
    let rx = Receiver::start("127.0.0.1").await;
    // Three 500s and a 429, then one 400, then success.
    rx.statuses.lock().extend([500, 503, 500, 429, 400]);
    *rx.otherwise.lock() = 204;
    let dir = tempfile::tempdir().unwrap();
    let url = rx.url.clone();
    let server = Server::start_with(dir.path(), |c| {
        c.forward = stathook::forward::parse_targets(&[url], &[], None).unwrap();
    })
    .await;
    let c = server.client();
    let key = c.setup("fw").await;
    let t0 = now_ms() - 600_000;
    ingest(&c, &key, "fw", 10, 0..1, t0).await;
    // The first batch is retried four times, then refused: a dead letter.
    rx.wait_for(5, Duration::from_secs(20)).await;
    ingest(&c, &key, "fw", 10, 1..20, t0).await;
    let want = expected("fw", 10, 20, t0);
    let dead_batch = series_of(&rx.received()[4]);
    let dead: usize = dead_batch.iter().map(|(_, s)| s.len()).sum();
    assert!(dead > 0);
    wait_until("the rest forwarded", Duration::from_secs(20), || {
        let n: usize = decoded(&rx.received()).values().map(Vec::len).sum();
        async move { n + dead >= 200 }
    })
    .await;
    let status = c.get("/api/v1/admin/forward").await.body;
    let t = &status["targets"][0];
    assert_eq!(t["retries"], 4, "{status}");
    assert_eq!(t["deadLetters"], 1, "{status}");
    assert!(t["lastError"].as_str().unwrap().contains("429"), "{status}");
    // Replay: the receiver now accepts, the letter goes, and the target has everything.
    let replay = c
        .admin(reqwest::Method::POST, "/api/v1/admin/forward/replay", None)
        .await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.body["targets"][0]["resent"], 1, "{:?}", replay.body);
    assert_eq!(replay.body["targets"][0]["stillDead"], 0);
    let mut got = decoded(&rx.received());
    for s in got.values_mut() {
        s.sort_by_key(|p| p.0);
    }
    assert_eq!(got, want, "after the replay, every sample");
    let again = c
        .admin(reqwest::Method::POST, "/api/v1/admin/forward/replay", None)
        .await;
    assert_eq!(
        again.body["targets"][0]["resent"], 0,
        "nothing left to replay"
    );
    let bad = c
        .admin(
            reqwest::Method::POST,
            "/api/v1/admin/forward/replay?target=http://nope/",
            None,
        )
        .await;
    assert_eq!(bad.status, 404, "{:?}", bad.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_while_the_target_is_down_loses_nothing_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening: the target is down.
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}/api/v1/write");
    let flags = ["--forward", &target, "--compact-interval-secs", "1"];
    let child = Child::start(dir.path(), &flags);
    let c = child.client();
    let key = c.setup("fw").await;
    let t0 = now_ms() - 600_000;
    ingest(&c, &key, "fw", 10, 0..20, t0).await;
    // Compaction runs while the target is down: the journal keeps its files for it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ingest(&c, &key, "fw", 10, 20..30, t0).await;
    child.kill();
    let journal_files = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .count();
    assert!(
        journal_files >= 2,
        "compacted generations kept for the target: {journal_files}"
    );
    // The target comes up on that port; the restarted server sends everything.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let rx = Receiver::start_on(listener).await;
    *rx.otherwise.lock() = 204;
    let child = Child::start(dir.path(), &flags);
    let want = expected("fw", 10, 30, t0);
    wait_until(
        "everything forwarded after the restart",
        Duration::from_secs(30),
        || {
            let got = decoded(&rx.received());
            async move { got.values().map(Vec::len).sum::<usize>() >= 300 }
        },
    )
    .await;
    let mut got = decoded(&rx.received());
    for s in got.values_mut() {
        s.sort_by_key(|p| p.0);
        s.dedup();
    }
    assert_eq!(got, want);
    // Forwarded and compacted: the held files go.
    wait_until(
        "forwarded journal files removed",
        Duration::from_secs(20),
        || {
            let n = std::fs::read_dir(dir.path().join("journal"))
                .unwrap()
                .count();
            async move { n <= 2 }
        },
    )
    .await;
    drop(child);
}

/// Whether `bin` is missing (said loudly; a failure when CI requires the peers).
fn missing(bin: &str) -> bool {
    skip_without(
        !Path::new(bin).exists(),
        "STATHOOK_REQUIRE_FORWARD_PEERS",
        bin,
        "apt-get install victoria-metrics prometheus",
    )
}

struct Peer(std::process::Child);

impl Peer {
    fn terminate(mut self) {
        let pid = self.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn wait_ready(url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not become ready");
}

async fn start_vm(data: &Path, port: u16) -> Peer {
    let p = std::process::Command::new(VICTORIA_METRICS)
        .arg(format!("-storageDataPath={}", data.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg("-retentionPeriod=100y")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let peer = Peer(p);
    wait_ready(&format!("http://127.0.0.1:{port}/health")).await;
    peer
}

/// VictoriaMetrics' samples of project `project`, by series, through its export API.
async fn vm_samples(port: u16, project: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    http.get(format!("{base}/internal/force_flush"))
        .send()
        .await
        .unwrap();
    let body = http
        .get(format!(
            "{base}/api/v1/export?match[]={}",
            enc(&format!("{{project=\"{project}\"}}"))
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let labels: BTreeMap<String, String> = serde_json::from_value(v["metric"].clone()).unwrap();
        let key: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut samples: Vec<(i64, f64)> = v["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(v["values"].as_array().unwrap())
            .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
            .collect();
        samples.sort_by_key(|p| p.0);
        out.insert(key.join(","), samples);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_stopped_for_30_s_during_ingest_gets_every_sample() {
    if missing(VICTORIA_METRICS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let vm = start_vm(&work.path().join("vm"), port).await;
    let target = format!("http://127.0.0.1:{port}/api/v1/write");
    let server = Server::start_with(&work.path().join("sh"), |c| {
        c.forward = stathook::forward::parse_targets(&[target], &[], None).unwrap();
        c.compact_interval = Duration::from_secs(1);
    })
    .await;
    let c = server.client();
    let key = c.setup("vm").await;
    let t0 = now_ms() - 3_600_000;
    ingest(&c, &key, "vm", 50, 0..20, t0).await;
    // Stopped the way an operator stops it (SIGTERM: it flushes what it acknowledged); a
    // SIGKILL would lose its own last second of accepted samples, which no sender can see.
    vm.terminate();
    // 30 s without the target, samples acknowledged all along.
    let down = Instant::now();
    let mut i = 20;
    while down.elapsed() < Duration::from_secs(30) {
        ingest(&c, &key, "vm", 50, i..i + 5, t0).await;
        i += 5;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = c.get("/api/v1/admin/forward").await.body;
    assert!(
        status["targets"][0]["retries"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert!(
        status["targets"][0]["lagSamples"].as_u64().unwrap() > 0,
        "{status}"
    );
    let _vm = start_vm(&work.path().join("vm"), port).await;
    let want: BTreeMap<String, Vec<(i64, f64)>> = expected("vm", 50, i, t0);
    let total: usize = want.values().map(Vec::len).sum();
    let start = Instant::now();
    loop {
        let got = vm_samples(port, "vm").await;
        if got == want {
            break;
        }
        let n: usize = got.values().map(Vec::len).sum();
        assert!(
            // The retry delay reaches up to 60 s during the outage.
            start.elapsed() < Duration::from_secs(150),
            "VictoriaMetrics has {n} of {total} samples"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let status = c.get("/api/v1/admin/forward").await.body;
    assert_eq!(status["targets"][0]["lagSamples"], 0, "{status}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_receiver_gets_every_sample() {
    if missing(PROMETHEUS) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let prom = crate::prom::start_prometheus(
        work.path(),
        "global: {}\n",
        &work.path().join("tsdb"),
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let target = format!("{}/api/v1/write", prom.url);
    let server = Server::start_with(&work.path().join("sh"), |c| {
        c.forward = stathook::forward::parse_targets(&[target], &[], None).unwrap();
    })
    .await;
    let c = server.client();
    let key = c.setup("pr").await;
    // Prometheus takes samples up to about an hour old into its head block.
    let t0 = now_ms() - 600_000;
    ingest(&c, &key, "pr", 10, 0..40, t0).await;
    let want = expected("pr", 10, 40, t0);
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let v: Value = http
            .get(format!(
                "{}/api/v1/query?query={}&time={}",
                prom.url,
                enc("{project=\"pr\"}[20m]"),
                now_ms() as f64 / 1000.0
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        let mut got = BTreeMap::new();
        for s in v["data"]["result"].as_array().cloned().unwrap_or_default() {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).unwrap();
            let key: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let samples: Vec<(i64, f64)> = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect();
            got.insert(key.join(","), samples);
        }
        if got == want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus has {} of 400 samples: {v}",
            got.values().map(Vec::len).sum::<usize>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_backlog_limit_the_oldest_generation_is_released_and_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}/api/v1/write");
    let server = Server::start_with(dir.path(), |c| {
        c.forward = stathook::forward::parse_targets(&[target], &[], None).unwrap();
        // Any sealed generation kept for the target is over the limit.
        c.forward_max_backlog = Some(1);
    })
    .await;
    let c = server.client();
    let key = c.setup("fw").await;
    let t0 = now_ms() - 600_000;
    ingest(&c, &key, "fw", 10, 0..10, t0).await;
    server.app.compact_now().unwrap();
    ingest(&c, &key, "fw", 10, 10..20, t0).await;
    wait_until(
        "the first generation released",
        Duration::from_secs(20),
        || {
            let c = c.clone();
            async move {
                let s = c.get("/api/v1/admin/forward").await.body;
                s["targets"][0]["releasedSamples"] == 100
            }
        },
    )
    .await;
    // Released from forwarding only: stathook still has every sample.
    assert_eq!(c.points("fw", "job_0_seconds").await.len(), 20);
    // The target comes up and gets what was not released.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let rx = Receiver::start_on(listener).await;
    *rx.otherwise.lock() = 204;
    let want: BTreeMap<String, Vec<(i64, f64)>> = expected("fw", 10, 20, t0)
        .into_iter()
        .map(|(k, v)| (k, v[10..].to_vec()))
        .collect();
    wait_until("the rest forwarded", Duration::from_secs(30), || {
        let n: usize = decoded(&rx.received()).values().map(Vec::len).sum();
        async move { n >= 100 }
    })
    .await;
    assert_eq!(decoded(&rx.received()), want);
    server.stop().await;
}
