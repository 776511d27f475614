//! PromQL latency against VictoriaMetrics on the same samples, for docs/benchmarks.md,
//! measured and printed, never asserted: one metric of 10 s samples over 30 days and 1,000
//! such metrics over 24 h (spec-shaped values with two decimals), loaded into stathook
//! through its webhook and into Debian's `victoria-metrics` (its rollup cache off, as
//! benches/compare.sh runs it) through its Prometheus import API. Then, interleaved, 15
//! rounds of each query to both, one connection each, warm:
//! `rate(m[5m])` over 30 days at a 1-minute step, and
//! `sum(last_over_time({__name__=~"api_latency_.*"}[5m]))` over the 24 h at a 1-minute step.
//! (`sum(rate({__name__=~…}[5m]))` is refused by Prometheus 2.x, and so by stathook: `rate`
//! drops the names and leaves 1,000 series with one label set. `last_over_time` keeps them.)
//!
//! cargo bench --bench promql

#[path = "../tests/support.rs"]
mod support;

use std::time::{Duration, Instant};
use support::*;

const DAY: i64 = 86_400_000;

async fn victoria(dir: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("victoria-metrics")
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .args([
            "-retentionPeriod=100y",
            "-search.disableCache",
            // A month at a 1-minute step is 43,200 points, past its default of 30,000.
            "-search.maxPointsPerTimeseries=50000",
            "-loggerLevel=ERROR",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("victoria-metrics (apt-get install victoria-metrics)");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{url}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, url)
}

/// The same samples as `load_history_of` writes, as Prometheus text for VictoriaMetrics.
async fn load_victoria(
    url: &str,
    ids: std::ops::Range<usize>,
    points: usize,
    spacing_ms: i64,
    end: i64,
) {
    let http = reqwest::Client::new();
    for m in ids {
        let mut text = String::new();
        for i in 0..points {
            let t = end - (points - i) as i64 * spacing_ms;
            text.push_str(&format!(
                "api_latency_{m}{{project=\"bench\"}} {} {t}\n",
                history_value(m, i)
            ));
        }
        let r = http
            .post(format!("{url}/api/v1/import/prometheus"))
            .body(text)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

async fn time(
    http: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
    path: &str,
) -> (Duration, usize) {
    let mut req = http.get(format!("{url}{path}"));
    if let Some(a) = auth {
        req = req.bearer_auth(a);
    }
    let t = Instant::now();
    let r = req.send().await.unwrap();
    let ok = r.status().is_success();
    let body = r.bytes().await.unwrap();
    assert!(ok, "{}", String::from_utf8_lossy(&body));
    (t.elapsed(), body.len())
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::main]
async fn main() {
    let vm_dir = tempfile::tempdir().unwrap();
    let (mut vm, vm_url) = victoria(vm_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let key = c.setup("bench").await;
    let end = (now_ms() / 60_000) * 60_000;
    // Metric 0: 30 days at 10 s. Metrics 1..=1000: 24 h at 10 s.
    let (month, day) = ((30 * DAY / 10_000) as usize, (DAY / 10_000) as usize);
    let t = Instant::now();
    load_history_of(&s, &key, "bench", 0..1, month, 10_000, end).await;
    load_history_of(&s, &key, "bench", 1..1_001, day, 10_000, end).await;
    eprintln!(
        "stathook: {} samples loaded in {:.0} s",
        month + 1_000 * day,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    load_victoria(&vm_url, 0..1, month, 10_000, end).await;
    load_victoria(&vm_url, 1..1_001, day, 10_000, end).await;
    eprintln!(
        "VictoriaMetrics: loaded in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    s.app.compact_now().unwrap();
    // VictoriaMetrics makes imported samples searchable within a few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let now_s = now_ms() / 1000;
    let queries = [
        (
            "rate(m[5m]), 30 d at 1 m",
            format!(
                "/api/v1/query_range?query={}&start={}&end={now_s}&step=60",
                enc("rate(api_latency_0[5m])"),
                now_s - 30 * 86_400
            ),
        ),
        (
            "sum(last_over_time({__name__=~\"api_latency_.*\"}[5m])), 1,000 metrics, 24 h at 1 m",
            format!(
                "/api/v1/query_range?query={}&start={}&end={now_s}&step=60",
                enc("sum(last_over_time({__name__=~\"api_latency_[1-9].*\"}[5m]))"),
                now_s - 86_400
            ),
        ),
    ];
    let http = reqwest::Client::new();
    for (name, path) in &queries {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut bytes = (0, 0);
        for round in 0..18 {
            // Interleaved, each side first in turn.
            let (a, b) = if round % 2 == 0 {
                let a = time(&http, &s.url, Some(&s.admin_token), path).await;
                (a, time(&http, &vm_url, None, path).await)
            } else {
                let b = time(&http, &vm_url, None, path).await;
                (time(&http, &s.url, Some(&s.admin_token), path).await, b)
            };
            bytes = (a.1, b.1);
            if round >= 3 {
                ours.push(a.0.as_secs_f64() * 1e3);
                theirs.push(b.0.as_secs_f64() * 1e3);
            }
        }
        ours.sort_by(f64::total_cmp);
        theirs.sort_by(f64::total_cmp);
        let p50 = |v: &[f64]| v[v.len() / 2];
        eprintln!(
            "{name}: stathook p50 {:.1} ms (min {:.1}, max {:.1}), VictoriaMetrics p50 {:.1} ms (min {:.1}, max {:.1}); ratio {:.2}; answers {} and {} bytes",
            p50(&ours), ours[0], ours[ours.len() - 1], p50(&theirs), theirs[0], theirs[theirs.len() - 1],
            p50(&ours) / p50(&theirs), bytes.0, bytes.1
        );
    }
    let _ = vm.kill();
    let _ = vm.wait();
    s.stop().await;
}
