//! The web app's performance figures for docs/benchmarks.md, measured and printed, never
//! asserted (the test asserts only that what it measured was right): a dashboard of 12
//! widgets over 30 days of 12 metrics at 10 s resolution (3.1 M points), the server's time
//! for all its widget queries and the browser's time to draw it after navigation (the page's
//! own `performance.now()` mark; a screenshot in target/browser/), then the delay from a webhook's 200 to the new value
//! drawn on that dashboard, over many posts. It drives the integration tests' own server
//! and browser helpers, included here. Needs Debian's chromium and chromium-driver:
//!
//! cargo bench --bench dashboard

#[path = "../tests/support.rs"]
mod support;
// Its own test (compiled out here) is what uses the rest.
#[allow(dead_code, unused_imports)]
#[path = "../tests/browser.rs"]
mod browser;

use browser::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::*;

const METRICS: usize = 12;
const SPACING_MS: i64 = 10_000;
const POINTS: usize = 30 * 86_400 / 10;

/// Twelve widgets, one per metric, of every type, laid out 4 to a row.
fn widgets() -> Vec<Value> {
    let kinds = [
        ("line", "avg"),
        ("area", "max"),
        ("bars", "sum"),
        ("stat", "last"),
        ("gauge", "avg"),
        ("table", "last"),
        ("heartbeat", "count"),
        ("line", "p99"),
        ("stat", "avg"),
        ("area", "min"),
        ("bars", "count"),
        ("line", "last"),
    ];
    kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, agg))| {
            json!({"type": kind, "title": format!("{kind} {agg} {i}"),
                   "metricIds": [format!("api_latency_{i}")], "agg": agg, "max": 100,
                   "thresholds": [60, 80], "expectedIntervalS": 10,
                   "x": (i % 4) * 3, "y": (i / 4) * 4, "w": 3, "h": 4})
        })
        .collect()
}

fn spread(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.1}, min {:.1}, p95 {:.1}, max {:.1} ms over {}",
        v[v.len() / 2],
        v[0],
        v[(v.len() * 95).div_ceil(100) - 1],
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main]
async fn main() {
    assert!(
        !browser_missing(),
        "this bench drives Chromium: apt-get install chromium chromium-driver"
    );
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let key = c.setup("demo").await;
    let took = load_history(&s, &key, "demo", METRICS, POINTS, SPACING_MS).await;
    eprintln!(
        "loaded {} samples in {:.1} s",
        METRICS * POINTS,
        took.as_secs_f64()
    );
    s.app.compact_now().unwrap();
    let r = c
        .admin(
            reqwest::Method::POST,
            "/api/v1/projects/demo/dashboards",
            Some(json!({"name": "Latency", "widgets": widgets()})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = r.body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect();

    // Server: all 12 widget queries over the 30 days, one after another and as a browser
    // sends them (all at once), 20 rounds after 3 to warm up.
    let to = now_ms();
    let from = to - 30 * 86_400_000;
    let path = |w: &str| {
        format!("/api/v1/projects/demo/dashboards/{id}/widgets/{w}/data?from={from}&to={to}&maxPoints=300")
    };
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for round in 0..23 {
        let t = Instant::now();
        for w in &ids {
            let r = c.get(&path(w)).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
        let one_by_one = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let all = ids.iter().map(|w| {
            let (c, p) = (s.client(), path(w));
            tokio::spawn(async move { c.get(&p).await })
        });
        for task in all.collect::<Vec<_>>() {
            let r = task.await.unwrap();
            assert_eq!(r.status, 200, "{:?}", r.body);
            if r.body["type"] == "line" && r.body["agg"] == "avg" {
                let values = r.body["series"][0]["values"].as_array().unwrap();
                let drawn = values.iter().filter(|v| v.is_number()).count();
                assert!(drawn > 100, "{drawn} buckets over 30 days");
            }
        }
        if round >= 3 {
            serial.push(one_by_one);
            parallel.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    eprintln!("12 widget queries one after another: {}", spread(serial));
    eprintln!("12 widget queries at once: {}", spread(parallel));

    // Browser: the dashboard over 30 days, drawn after navigation, 10 loads.
    let driver = start_driver().await;
    let b = open_browser(&driver).await;
    first_account(&b, &s).await;
    click(&b, "#sign-in button[type=submit]").await;
    wait_for(&b, "#create-project").await;
    let url = format!("{}/projects/demo/dashboards/{id}?range=30d", s.url);
    let mut drawn = Vec::new();
    for _ in 0..11 {
        b.goto(&url).await.unwrap();
        wait_for(&b, "#grid[data-drawn]").await;
        let ms: Value = eval(&b, "Number(document.querySelector('#grid').dataset.drawn)").await;
        drawn.push(ms.as_f64().unwrap());
    }
    let canvases = b
        .find_all(fantoccini::Locator::Css("#grid canvas"))
        .await
        .unwrap();
    assert!(canvases.len() >= 6, "the charts drew: {}", canvases.len());
    drawn.remove(0); // the first load fills the browser's module cache
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&shot).unwrap();
    std::fs::write(
        shot.join("dashboard-12-widgets.png"),
        b.screenshot().await.unwrap(),
    )
    .unwrap();
    eprintln!(
        "dashboard of 12 widgets over 3.1 M points drawn after navigation: {}",
        spread(drawn)
    );

    // Live: a webhook's 200 to the new value on the stat widget (`last` of api_latency_3),
    // one post at a time, each at a random moment of the stream's 200 ms gap.
    let stat = format!("[data-widget=\"{}\"] .stat-value", ids[3]);
    let mut delays = Vec::new();
    for i in 0..40 {
        let v = 500 + i;
        tokio::time::sleep(Duration::from_millis(37 * (i as u64 % 7))).await;
        let body = json!({"projectId": "demo", "metrics": [{"metricId": "api_latency_3",
            "metricName": "API latency 3", "unit": "ms", "value": v, "timestamp": now_ms()}]});
        let r = c.post(&key, &body).await;
        assert_eq!(r.status, 200);
        let d = wait_text(&b, &stat, &format!("{v} ms"), Duration::from_secs(10)).await;
        delays.push(d.as_secs_f64() * 1e3);
    }
    eprintln!(
        "webhook 200 → value drawn on the dashboard: {}",
        spread(delays)
    );
    let errors = console_errors(&driver, &b).await;
    assert!(errors.is_empty(), "{errors:?}");
    b.close().await.unwrap();
    s.stop().await;
}
