//! Real senders of the push formats: Debian's Prometheus 2.42 scraping a small exporter on
//! loopback and remote-writing to stathook (every sample in Prometheus's own TSDB found in
//! stathook with the same labels, timestamp and value), and the `influx` 1.x CLI from
//! Debian's `influxdb-client` writing through v1's `/write`. A missing program skips its
//! test loudly unless `STATHOOK_REQUIRE_PROMETHEUS` / `STATHOOK_REQUIRE_INFLUX` says CI has
//! it.

use crate::prom::{missing as prometheus_missing, start_prometheus};
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the exporter serves at its `n`th scrape: counters, a gauge with decimals, labels with
/// quotes and backslashes, a classic histogram and a summary whose quantile is NaN (no
/// observations: Prometheus stores the NaN, stathook skips it).
fn exposition(n: u64) -> String {
    let n = n as f64;
    format!(
        r#"# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{{path="/a",code="200"}} {a}
demo_requests_total{{path="/b \"quoted\" \\ slash",code="500"}} {n}
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius {t}
# TYPE demo_latency_seconds histogram
demo_latency_seconds_bucket{{le="0.1"}} {n}
demo_latency_seconds_bucket{{le="+Inf"}} {b}
demo_latency_seconds_sum {s}
demo_latency_seconds_count {b}
# TYPE demo_idle_summary summary
demo_idle_summary{{quantile="0.5"}} NaN
demo_idle_summary_sum 0
demo_idle_summary_count 0
"#,
        a = n * 3.0,
        t = 21.5 + n * 0.25,
        b = n * 2.0,
        s = n * 0.125,
    )
}

/// A minimal HTTP exporter on a loopback port: each request gets the next exposition.
async fn exporter() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let body = exposition(scrapes.fetch_add(1, Ordering::SeqCst) + 1);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

/// An instant query's matrix as labels (without `project`) → (timestamp ms, value) pairs,
/// NaN samples left out.
fn samples_by_series(body: &Value) -> BTreeMap<String, Vec<(i64, f64)>> {
    assert_eq!(body["status"], "success", "{body}");
    let mut out = BTreeMap::new();
    for r in body["data"]["result"].as_array().unwrap() {
        let mut labels = r["metric"].as_object().unwrap().clone();
        labels.remove("project");
        let points: Vec<(i64, f64)> = r["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .filter(|(_, v)| !v.is_nan())
            .collect();
        if !points.is_empty() {
            out.insert(Value::Object(labels).to_string(), points);
        }
    }
    out
}

async fn matrix(http: &reqwest::Client, url: &str, key: Option<&str>, at_s: f64) -> Value {
    let mut req = http.get(format!(
        "{url}/api/v1/query?query=%7Bjob%3D%22exporter%22%7D%5B1h%5D&time={at_s}"
    ));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let bytes = req.send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn remote_write_from_prometheus() {
    if prometheus_missing() {
        return;
    }
    let (dir, s, c, key) = Server::with_project("p1").await;
    let port = exporter().await;
    let config = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: exporter
    static_configs:
      - targets: ["127.0.0.1:{port}"]
remote_write:
  - url: {}/api/v1/write
    authorization:
      credentials: {key}
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 100ms
      max_backoff: 1s
"#,
        c.url
    );
    let tsdb = dir.path().join("prom-tsdb");
    let prom = start_prometheus(dir.path(), &config, &tsdb, &[]).await;
    // Scraping starts a few seconds after start-up: wait for four scrapes. Everything
    // Prometheus holds up to `at_s` must then reach stathook, with a little lag.
    let mut at_s = 0.0;
    for _ in 0..300 {
        at_s = now_ms() as f64 / 1000.0;
        let r = matrix(&c.http, &prom.url, None, at_s).await;
        if samples_by_series(&r).values().any(|p| p.len() >= 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let theirs = samples_by_series(&matrix(&c.http, &prom.url, None, at_s).await);
    assert!(
        theirs.len() >= 8,
        "Prometheus scraped too little: {theirs:?}"
    );
    assert!(
        theirs.values().all(|p| p.len() >= 3),
        "Prometheus scraped too little: {theirs:?}"
    );
    let rk = read_key(&c, "p1").await;
    let mut ours = BTreeMap::new();
    for _ in 0..100 {
        ours = samples_by_series(&matrix(&c.http, &c.url, Some(&rk), at_s).await);
        if ours == theirs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ours, theirs, "stathook's samples differ from Prometheus's");
    let samples: usize = theirs.values().map(Vec::len).sum();
    eprintln!(
        "remote write from Prometheus: {} series, {samples} samples, all equal",
        theirs.len()
    );
    // The summary's NaN quantile was skipped, not refused: its series never appeared.
    assert!(!c
        .catalog("p1")
        .await
        .iter()
        .any(|m| m["metricId"].as_str().unwrap().contains("quantile")));
    drop(prom);
    s.stop().await;
}

// Multi-threaded: the CLI runs as a blocking child process while the server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_influx_cli_writes_through_v1() {
    const INFLUX: &str = "/usr/bin/influx";
    if skip_without(
        !std::path::Path::new(INFLUX).exists(),
        "STATHOOK_REQUIRE_INFLUX",
        INFLUX,
        "apt-get install influxdb-client",
    ) {
        return;
    }
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let port = c.url.rsplit(':').next().unwrap().to_owned();
    let t_s = now_ms() / 1000 - 30;
    let run = |statement: String| {
        std::process::Command::new(INFLUX)
            .args(["-host", "127.0.0.1", "-port", &port, "-username", "cli"])
            .args(["-password", &key, "-database", "p1", "-precision", "s"])
            .args(["-execute", &statement])
            .output()
            .unwrap()
    };
    let out = run(format!(
        "INSERT weather,city=Lyon,station=st\\ 1 temp_c=12.75,rain_mm=0i {t_s}"
    ));
    assert!(
        out.status.success(),
        "influx: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let t = t_s * 1000;
    assert_eq!(
        c.points("p1", r#"weather_temp_c{city="Lyon",station="st 1"}"#)
            .await,
        [(t, 12.75)]
    );
    assert_eq!(
        c.points("p1", r#"weather_rain_mm{city="Lyon",station="st 1"}"#)
            .await,
        [(t, 0.0)]
    );
    // A refused line: the CLI shows stathook's message and exits non-zero.
    let out = run(format!("INSERT status,host=a msg=\"disk full\" {t_s}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("is a string"), "{said}");
    assert_eq!(c.catalog("p1").await.len(), 2);
    s.stop().await;
}

/// Python's `prometheus_client` (Debian's python3-prometheus-client), if this machine has it.
fn python_prometheus_client() -> bool {
    let ok = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    !skip_without(
        !ok,
        "STATHOOK_REQUIRE_PUSH_CLIENTS",
        "Python's prometheus_client",
        "apt-get install python3-prometheus-client",
    )
}

// Multi-threaded: curl and Python run as blocking child processes while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushgateway_clients_curl_and_python_push_to_stathook() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    // curl, as the Pushgateway's README shows it (with the key as a bearer token).
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "--data-binary", "@-"])
        .args(["-H", &format!("Authorization: Bearer {key}")])
        .arg(format!("{}/metrics/job/cron/host@base64/c3J2LzE=", c.url))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"# TYPE last_run_seconds gauge\nlast_run_seconds 42.75\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let curl_points = c
        .points("p1", r#"last_run_seconds{host="srv/1",job="cron"}"#)
        .await;
    assert_eq!(curl_points.len(), 1);
    assert_eq!(curl_points[0].1, 42.75);

    if !python_prometheus_client() {
        s.stop().await;
        return;
    }
    let script = r#"
import sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway
from prometheus_client.exposition import default_handler

url, key = sys.argv[1], sys.argv[2]
def handler(url, method, timeout, headers, data):
    return default_handler(url, method, timeout, headers + [("Authorization", "Bearer " + key)], data)

r = CollectorRegistry()
Gauge("job_last_success_unixtime", "Last success", registry=r).set(1764700000.5)
c = Counter("rows_processed", "Rows", ["table"], registry=r)
c.labels("users").inc(1200)
h = Histogram("batch_seconds", "Batch time", buckets=[0.5, 2.0], registry=r)
h.observe(0.25)
h.observe(1.5)
push_to_gateway(url, job="etl", registry=r, handler=handler)
"#;
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script, &c.url, &key])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |points: Vec<(i64, f64)>| {
        assert_eq!(points.len(), 1, "{points:?}");
        points[0].1
    };
    assert_eq!(
        value(
            c.points("p1", r#"job_last_success_unixtime{job="etl"}"#)
                .await
        ),
        1764700000.5
    );
    assert_eq!(
        value(
            c.points("p1", r#"rows_processed_total{job="etl",table="users"}"#)
                .await
        ),
        1200.0
    );
    assert_eq!(
        value(
            c.points("p1", r#"batch_seconds_bucket{job="etl",le="0.5"}"#)
                .await
        ),
        1.0
    );
    assert_eq!(
        value(
            c.points("p1", r#"batch_seconds_bucket{job="etl",le="+Inf"}"#)
                .await
        ),
        2.0
    );
    assert_eq!(
        value(c.points("p1", r#"batch_seconds_sum{job="etl"}"#).await),
        1.75
    );
    assert_eq!(
        value(c.points("p1", r#"batch_seconds_count{job="etl"}"#).await),
        2.0
    );
    s.stop().await;
}

/// The Python with the PyPI clients of tests/clients/requirements.txt (`.ci/run` makes it:
/// `target/pyclients`), or `None`, said loudly, unless CI requires it.
fn python_with_pypi_clients() -> Option<std::path::PathBuf> {
    let python = std::env::var_os("STATHOOK_PY_CLIENTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyclients/bin/python")
        });
    let ok = std::process::Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.exporter.otlp.proto.http, influxdb_client",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if skip_without(
        !ok,
        "STATHOOK_REQUIRE_PUSH_CLIENTS",
        "the PyPI clients (OpenTelemetry SDK, influxdb-client) in target/pyclients",
        "python3 -m venv target/pyclients && target/pyclients/bin/pip install -r tests/clients/requirements.txt",
    ) {
        return None;
    }
    Some(python)
}

/// Runs a Python script with arguments; panics with its output if it fails.
fn run_python(python: &std::path::Path, script: &str, args: &[&str]) {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// Multi-threaded: the SDK runs as a blocking child process while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opentelemetry_sdk_exports_a_gauge_a_counter_and_a_histogram() {
    let Some(python) = python_with_pypi_clients() else {
        return;
    };
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let script = r#"
import sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

url, key = sys.argv[1], sys.argv[2]
exporter = OTLPMetricExporter(endpoint=url + "/v1/metrics", headers={"Authorization": "Bearer " + key})
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60000)
provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
meter = provider.get_meter("demo")
orders = meter.create_counter("orders", unit="{order}")
orders.add(3, {"region": "eu"})
orders.add(2, {"region": "eu"})
temp = meter.create_gauge("room.temperature", unit="Cel")
temp.set(21.75, {"room": "lab"})
latency = meter.create_histogram("request.duration", unit="ms")
latency.record(12.5)
latency.record(250.0)
provider.force_flush()
provider.shutdown()
"#;
    run_python(&python, script, &[&c.url, &key]);
    let catalog = c.catalog("p1").await;
    let find = |prefix: &str| -> (String, Value) {
        let m = catalog
            .iter()
            .find(|m| m["metricId"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {catalog:?}"));
        (m["metricId"].as_str().unwrap().to_owned(), m.clone())
    };
    let (orders, entry) = find("orders_total{");
    assert!(orders.contains(r#"region="eu""#), "{orders}");
    assert!(orders.contains(r#"service_name="checkout""#), "{orders}");
    assert!(
        orders.contains(r#"deployment_environment="test""#),
        "{orders}"
    );
    assert_eq!(entry["unit"], "{order}");
    // force_flush and shutdown each export: one or two samples of the same values.
    let value = |points: Vec<(i64, f64)>| {
        assert!(matches!(points.len(), 1 | 2), "{points:?}");
        assert!(
            points
                .iter()
                .all(|p| (p.0 - now_ms()).abs() < 120_000 && p.1 == points[0].1),
            "{points:?}"
        );
        points[0].1
    };
    assert_eq!(value(c.points("p1", &orders).await), 5.0);
    let (temp, entry) = find("room_temperature{");
    assert!(temp.contains(r#"room="lab""#), "{temp}");
    assert_eq!(entry["unit"], "Cel");
    assert_eq!(value(c.points("p1", &temp).await), 21.75);
    let (sum, _) = find("request_duration_sum{");
    assert_eq!(value(c.points("p1", &sum).await), 262.5);
    let (count, _) = find("request_duration_count{");
    assert_eq!(value(c.points("p1", &count).await), 2.0);
    let buckets: Vec<&Value> = catalog
        .iter()
        .filter(|m| {
            m["metricId"]
                .as_str()
                .unwrap()
                .starts_with("request_duration_bucket{")
        })
        .collect();
    assert!(buckets.len() > 2, "{buckets:?}");
    let inf = buckets
        .iter()
        .find(|m| m["metricId"].as_str().unwrap().contains(r#"le="+Inf""#))
        .unwrap();
    assert_eq!(
        value(c.points("p1", inf["metricId"].as_str().unwrap()).await),
        2.0
    );
    s.stop().await;
}

// Multi-threaded: the client runs as a blocking child process while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_influxdb_v2_client_writes_through_api_v2_write() {
    let Some(python) = python_with_pypi_clients() else {
        return;
    };
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let t_s = now_ms() / 1000 - 30;
    let script = r#"
import sys
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

url, key, t = sys.argv[1], sys.argv[2], int(sys.argv[3])
with InfluxDBClient(url=url, token=key, org="any") as client:
    write = client.write_api(write_options=SYNCHRONOUS)
    write.write(bucket="p1", write_precision=WritePrecision.S,
                record=Point("disk").tag("host", "web-1").field("used_percent", 71.25).field("inodes", 1024).time(t, WritePrecision.S))
    try:
        write.write(bucket="p1", record="disk,host=web-1 note=\"full\"")
        sys.exit("a string field was accepted")
    except Exception as e:
        assert "is a string" in str(e.body), e.body
"#;
    run_python(&python, script, &[&c.url, &key, &t_s.to_string()]);
    let t = t_s * 1000;
    assert_eq!(
        c.points("p1", r#"disk_used_percent{host="web-1"}"#).await,
        [(t, 71.25)]
    );
    assert_eq!(
        c.points("p1", r#"disk_inodes{host="web-1"}"#).await,
        [(t, 1024.0)]
    );
    assert_eq!(c.catalog("p1").await.len(), 2);
    s.stop().await;
}
