//! The Prometheus HTTP API against a real Prometheus: the same samples go into Debian's
//! `prometheus` 2.42 (backfilled offline with `promtool tsdb create-blocks-from
//! openmetrics`) and into stathook through its webhook; a corpus of PromQL queries of every
//! supported kind, instant at several times and ranged at several steps, goes to both HTTP
//! APIs and the answers are compared value by value (equal, or within 1e-9 relative). Then
//! `promtool query` itself is run against stathook. Without the package the test says
//! loudly that it was skipped, unless `STATHOOK_REQUIRE_PROMETHEUS` is set (CI).

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether Prometheus is missing here (said loudly; a failure when CI requires it).
pub fn missing() -> bool {
    skip_without(
        !Path::new(PROMETHEUS).exists() || !Path::new(PROMTOOL).exists(),
        "STATHOOK_REQUIRE_PROMETHEUS",
        &format!("{PROMETHEUS} or {PROMTOOL}"),
        "apt-get install prometheus",
    )
}

/// A small deterministic generator (no dependency for this).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// The series: (metricId, points), shaped as webhooks send them: irregular spacing, decimals,
/// a gap, counters with resets.
fn dataset(end: i64) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut r = Lcg(42);
    let start = end - 2 * 3_600_000;
    let mut out = Vec::new();
    for (name, kind) in [
        ("api_latency_ms", 0),
        ("queue_depth", 1),
        ("req_total_a", 2),
        ("req_total_b", 2),
        ("jobs_done_total", 3),
        // One webhook metric whose samples carry `{"region": …}` metadata (none on the
        // third): the project shows `region` as a label, so PromQL sees three series.
        // Each at its own millisecond residue: one metricId holds one value per timestamp.
        ("reqs_by_region{region=\"eu\"}", 4),
        ("reqs_by_region{region=\"us\"}", 5),
        ("reqs_by_region", 6),
    ] {
        let mut pts = Vec::new();
        let mut t = start + (r.next() % 10_000) as i64;
        let mut counter = 0.0;
        while t < end - 1_000 {
            if kind >= 4 {
                t = t - t.rem_euclid(3) + (kind - 4) as i64;
            }
            let v = match kind {
                0 => ((40.0 + (r.next() % 4_000) as f64 / 100.0) * 100.0).round() / 100.0,
                1 => (r.next() % 20) as f64,
                2 => {
                    counter += (r.next() % 50) as f64;
                    counter
                }
                4..=6 => {
                    counter += ((r.next() % 500) as f64) / 100.0;
                    counter
                }
                _ => {
                    if r.next().is_multiple_of(40) {
                        counter = 0.0; // a restart
                    }
                    counter += 1.0 + (r.next() % 3) as f64;
                    counter
                }
            };
            pts.push((t, v));
            t += 5_000 + (r.next() % 35_000) as i64;
            // A 10-minute silence in the middle of the latency series.
            if kind == 0 && t > start + 3_600_000 && t < start + 3_600_000 + 600_000 {
                t = start + 3_600_000 + 600_000;
            }
        }
        out.push((name.to_owned(), pts));
    }
    out
}

/// A dataset name's metric and its labels: `m{region="eu"}` → (`m`, `region="eu",`).
fn split_name(name: &str) -> (&str, &str) {
    match name.split_once('{') {
        Some((base, rest)) => (base, rest.trim_end_matches('}')),
        None => (name, ""),
    }
}

/// The metadata a webhook sample of a dataset series carries: its labels as an object.
fn metadata_of(name: &str) -> Option<Value> {
    let (_, labels) = split_name(name);
    let object: serde_json::Map<String, Value> = labels
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), json!(v.trim_matches('"'))))
        .collect();
    (!object.is_empty()).then_some(Value::Object(object))
}

fn openmetrics(data: &[(String, Vec<(i64, f64)>)]) -> String {
    let mut s = String::new();
    let mut family = "";
    for (name, pts) in data {
        let (base, labels) = split_name(name);
        if base != family {
            s.push_str(&format!("# TYPE {base} unknown\n"));
            family = base;
        }
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{labels},")
        };
        for (t, v) in pts {
            s.push_str(&format!(
                "{base}{{{labels}project=\"p1\"}} {v} {}.{:03}\n",
                t / 1000,
                t % 1000
            ));
        }
    }
    s.push_str("# EOF\n");
    s
}

/// A Prometheus child process, killed when dropped.
pub struct Prometheus {
    process: std::process::Child,
    pub url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn prometheus_with(dir: &Path, data: &[(String, Vec<(i64, f64)>)]) -> Prometheus {
    let om = dir.join("data.om");
    std::fs::write(&om, openmetrics(data)).unwrap();
    let tsdb = dir.join("tsdb");
    let out = std::process::Command::new(PROMTOOL)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&tsdb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start_prometheus(dir, "global: {}\n", &tsdb, &[]).await
}

/// Starts Prometheus with `config` (YAML text) on a free loopback port and its TSDB in
/// `tsdb`; returns once it answers ready.
pub async fn start_prometheus(dir: &Path, config: &str, tsdb: &Path, extra: &[&str]) -> Prometheus {
    let config_file = dir.join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let port = free_port();
    let process = std::process::Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=100y")
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Held at once, so a failing wait below still kills it (Drop).
    let prom = Prometheus {
        process,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{}/-/ready", prom.url)).send().await {
            if r.status() == 200 {
                return prom;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("prometheus did not become ready");
}

async fn ask(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    path: &str,
    params: &[(&str, String)],
) -> Value {
    let form: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect();
    let mut req = http
        .post(format!("{url}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.join("&"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let bytes = r.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

/// GET `url` + `path` with `auth` as the Authorization header: the status and the JSON body.
fn get_json(
    http: &reqwest::Client,
    url: &str,
    path: String,
    auth: Option<String>,
) -> impl std::future::Future<Output = (u16, Value)> {
    let mut req = http.get(format!("{url}{path}"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    async move {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
        )
    }
}

/// A result as a comparable map: labels → values (one value for a vector, many for a matrix).
fn normalize(v: &Value) -> (String, BTreeMap<String, Vec<(f64, f64)>>) {
    let kind = v["data"]["resultType"].as_str().unwrap_or("?").to_owned();
    let mut out = BTreeMap::new();
    let point = |p: &Value| {
        (
            p[0].as_f64().unwrap(),
            p[1].as_str().unwrap().parse::<f64>().unwrap(),
        )
    };
    match kind.as_str() {
        "scalar" => {
            out.insert(String::new(), vec![point(&v["data"]["result"])]);
        }
        _ => {
            for s in v["data"]["result"].as_array().unwrap() {
                let key = s["metric"].to_string();
                let values = match s.get("values") {
                    Some(vals) => vals.as_array().unwrap().iter().map(point).collect(),
                    None => vec![point(&s["value"])],
                };
                out.insert(key, values);
            }
        }
    }
    (kind, out)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || ((a - b).abs() <= 1e-9 * a.abs().max(b.abs()))
}

/// Ok(how many values were compared) when stathook's answer is Prometheus's.
fn compare(query: &str, at: &str, ours: &Value, theirs: &Value) -> Result<usize, String> {
    if theirs["status"] != "success" {
        // Prometheus refuses it: so must stathook, with the same kind of error.
        return if ours["status"] == "error" && ours["errorType"] == theirs["errorType"] {
            Ok(0)
        } else {
            Err(format!(
                "{query} @ {at}: Prometheus refused it ({theirs}); stathook answered {ours}"
            ))
        };
    }
    let (ka, a) = normalize(ours);
    let (kb, b) = normalize(theirs);
    if ka != kb {
        return Err(format!(
            "{query} @ {at}: result type {ka} vs Prometheus's {kb}: {ours}"
        ));
    }
    if a.keys().collect::<Vec<_>>() != b.keys().collect::<Vec<_>>() {
        return Err(format!(
            "{query} @ {at}: series {:?} vs Prometheus's {:?}",
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>()
        ));
    }
    for (k, va) in &a {
        let vb = &b[k];
        if va.len() != vb.len()
            || va
                .iter()
                .zip(vb)
                .any(|(x, y)| x.0 != y.0 || !close(x.1, y.1))
        {
            return Err(format!(
                "{query} @ {at} {k}: {va:?}\n  vs Prometheus's {vb:?}"
            ));
        }
    }
    Ok(a.values().map(Vec::len).sum())
}

const QUERIES: &[&str] = &[
    "1+1",
    "2 * 3 - 4 / 8",
    "api_latency_ms",
    "api_latency_ms offset 10m",
    "{__name__=~\"req_total_.*\"}",
    "{__name__!~\"req_.*\", project=\"p1\"}",
    "queue_depth{project!=\"other\"}",
    "-api_latency_ms",
    "2 * api_latency_ms + 1",
    "api_latency_ms > 60",
    "api_latency_ms > bool 60",
    "60 < api_latency_ms",
    "rate(req_total_a[5m])",
    "rate(req_total_b[1m])",
    "increase(jobs_done_total[10m])",
    "rate(jobs_done_total[15m])",
    "irate(req_total_b[2m])",
    "delta(api_latency_ms[15m])",
    "delta(queue_depth[5m] offset 5m)",
    "avg_over_time(api_latency_ms[10m])",
    "sum_over_time(queue_depth[10m])",
    "min_over_time(api_latency_ms[10m])",
    "max_over_time(api_latency_ms[30m])",
    "count_over_time(api_latency_ms[10m])",
    "last_over_time(api_latency_ms[10m])",
    "quantile_over_time(0.9, api_latency_ms[30m])",
    "sum(rate({__name__=~\"req_total_.*\"}[5m]))",
    "sum(rate(req_total_a[5m])) + sum(rate(req_total_b[5m]))",
    "sum by (__name__) ({__name__=~\"req_total_.*\"})",
    "sum by (__name__) (rate({__name__=~\"req_total_.*\"}[5m]))",
    "sum without (project) ({__name__=~\"req_total_.*\"})",
    "avg({__name__=~\"req_total_.*|queue_depth\"})",
    "max({__name__=~\"req_total_.*\"})",
    "min({__name__=~\"req_total_.*\"})",
    "count({project=\"p1\"})",
    "topk(1, {__name__=~\"req_total_.*\"})",
    "bottomk(2, {__name__=~\"req_total_.*|queue_depth\"})",
    "req_total_a / on(project) req_total_b",
    "req_total_a - ignoring(__name__) req_total_b",
    "abs(delta(api_latency_ms[5m]))",
    "round(api_latency_ms, 0.5)",
    "clamp_max(api_latency_ms, 60)",
    "clamp_min(queue_depth, 5)",
    "absent(nonexistent_metric{project=\"p1\"})",
    "absent(queue_depth)",
    "label_replace(queue_depth, \"copy\", \"$1\", \"project\", \"(.*)\")",
    "reqs_by_region",
    "reqs_by_region{region=\"eu\"}",
    "reqs_by_region{region!=\"eu\"}",
    "reqs_by_region{region=\"\"}",
    "rate(reqs_by_region{region=~\"u.*\"}[5m])",
    "sum by (region) (rate(reqs_by_region[5m]))",
    "count by (region) (reqs_by_region)",
    "reqs_by_region{region=\"eu\"} - ignoring(region) reqs_by_region{region=\"us\"}",
    "max without (region) (reqs_by_region)",
];

#[tokio::test]
async fn the_prometheus_api_gives_prometheus_answers() {
    if missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let end = (now_ms() / 1000) * 1000;
    let data = dataset(end);
    let prom = prometheus_with(dir.path(), &data).await;

    let sdir = tempfile::tempdir().unwrap();
    let s = Server::start(sdir.path()).await;
    let c = s.client();
    let key = c.setup("p1").await;
    for (name, pts) in &data {
        let (base, _) = split_name(name);
        for chunk in pts.chunks(100) {
            let metrics: Vec<Value> = chunk
                .iter()
                .map(|(t, v)| {
                    let mut m =
                        json!({"metricId": base, "metricName": base, "value": v, "timestamp": t});
                    if let Some(meta) = metadata_of(name) {
                        m["metadata"] = meta;
                    }
                    m
                })
                .collect();
            let r = c
                .post(&key, &json!({"projectId": "p1", "metrics": metrics}))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    s.app.compact_now().unwrap();
    // Set after the samples are in: the labels are read from the stored metadata.
    let r = c
        .admin(
            reqwest::Method::PUT,
            "/api/v1/projects/p1/labels",
            Some(json!({"labelKeys": ["region"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let read_key = read_key(&c, "p1").await;

    let http = reqwest::Client::new();
    let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut values = 0;
    for q in QUERIES {
        for at in [
            end - 90 * 60_000 + 123,
            end - 47 * 60_000,
            end - 30 * 60_000 + 500,
            end - 1_000,
        ] {
            let p = [("query", q.to_string()), ("time", secs(at))];
            let ours = ask(&http, &s.url, Some(&read_key), "/api/v1/query", &p).await;
            let theirs = ask(&http, &prom.url, None, "/api/v1/query", &p).await;
            match compare(q, &format!("instant {at}"), &ours, &theirs) {
                Ok(n) => values += n,
                Err(e) => failures.push(e),
            }
            compared += 1;
        }
        if q.contains("bool") || !q.contains('(') && !q.contains('{') && !q.contains('_') {
            continue;
        }
        for (step, span) in [(60_000, 3_600_000), (37_000, 1_800_000)] {
            let p = [
                ("query", q.to_string()),
                ("start", secs(end - span - 7_000)),
                ("end", secs(end - 7_000)),
                ("step", format!("{}", step as f64 / 1000.0)),
            ];
            let ours = ask(&http, &s.url, Some(&read_key), "/api/v1/query_range", &p).await;
            let theirs = ask(&http, &prom.url, None, "/api/v1/query_range", &p).await;
            match compare(q, &format!("range step {step}"), &ours, &theirs) {
                Ok(n) => values += n,
                Err(e) => failures.push(e),
            }
            compared += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} comparisons differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Most of the corpus must have had something to compare.
    assert!(values > 2_000, "only {values} values compared");
    eprintln!("{compared} query results ({values} values) equal to Prometheus 2.42's");
    s.stop().await;
}

#[tokio::test]
async fn keys_see_their_project_and_grafana_s_probes_and_promtool_get_prometheus_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let k1 = c.setup("p1").await;
    let k2 = c.setup("p2").await;
    let t = now_ms() - 1_000;
    let post = |key: String, project: &str, id: &str, v: f64| {
        let body = json!({"projectId": project, "metrics": [{"metricId": id, "metricName": format!("The {id}"), "unit": "ms", "value": v, "timestamp": t}]});
        let c = c.clone();
        async move { assert_eq!(c.post(&key, &body).await.status, 200) }
    };
    post(k1.clone(), "p1", "api.latency", 12.5).await;
    post(k2.clone(), "p2", "queue_depth", 7.0).await;
    let read_key = read_key(&c, "p1").await;
    let http = reqwest::Client::new();
    let get = |path: &str, auth: Option<String>| get_json(&http, &s.url, path.to_owned(), auth);
    let bearer = |k: &str| Some(format!("Bearer {k}"));
    let all = "/api/v1/series?match[]=%7B__name__%3D~%22.%2B%22%7D";

    // A read key sees its project; the admin token every project, told apart by `project`.
    let (st, r) = get(all, bearer(&read_key)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["data"],
        json!([{"__name__": "api_latency", "metricId": "api.latency", "project": "p1"}])
    );
    let (_, r) = get(all, bearer(&s.admin_token)).await;
    assert_eq!(r["data"].as_array().unwrap().len(), 2, "{r}");
    // `start` and `end` keep the series with samples between them (Grafana sends its range).
    let (_, r) = get(&format!("{all}&start=0&end=1000"), bearer(&s.admin_token)).await;
    assert_eq!(r["data"], json!([]), "nothing in 1970: {r}");
    let since = format!("&start={}", t / 1000 - 60);
    let (_, r) = get(
        &format!("/api/v1/labels?match[]=queue_depth{since}"),
        bearer(&s.admin_token),
    )
    .await;
    assert_eq!(r["data"], json!(["__name__", "project"]), "{r}");
    // Grafana's basic auth: the key as the password.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("grafana:{read_key}"));
    let (st, _) = get(all, Some(format!("Basic {basic}"))).await;
    assert_eq!(st, 200);
    // A webhook's ingest key reads nothing.
    let (st, r) = get(all, bearer(&k1)).await;
    assert_eq!(st, 403, "{r}");
    let (st, _) = get(all, None).await;
    assert_eq!(st, 401);

    let (_, r) = get("/api/v1/status/buildinfo", None).await;
    assert_eq!(r["data"]["version"], "2.42.0");
    assert!(r["data"].get("features").is_none());
    let (_, r) = get("/api/v1/labels", bearer(&s.admin_token)).await;
    assert_eq!(r["data"], json!(["__name__", "metricId", "project"]));
    let (_, r) = get("/api/v1/label/__name__/values", bearer(&s.admin_token)).await;
    assert_eq!(r["data"], json!(["api_latency", "queue_depth"]));
    let (_, r) = get("/api/v1/metadata", bearer(&read_key)).await;
    assert_eq!(
        r["data"],
        json!({"api_latency": [{"type": "gauge", "help": "The api.latency", "unit": "ms"}]})
    );
    let (_, r) = get("/api/v1/rules", bearer(&read_key)).await;
    assert_eq!(r, json!({"status": "success", "data": {"groups": []}}));
    let (_, r) = get("/api/v1/query_exemplars?query=x", bearer(&read_key)).await;
    assert_eq!(r["data"], json!([]));
    // The query a read key asks is narrowed to its project.
    let (_, r) = get(
        "/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)",
        bearer(&read_key),
    )
    .await;
    assert_eq!(r["data"]["result"][0]["value"][1], "1", "{r}");
    // Refusals in Prometheus's envelope, naming what is wrong.
    let (st, r) = get(
        "/api/v1/query?query=queue_depth%20and%20queue_depth",
        bearer(&s.admin_token),
    )
    .await;
    assert_eq!(
        (st, r["errorType"].as_str()),
        (400, Some("bad_data")),
        "{r}"
    );
    assert!(r["error"].as_str().unwrap().contains("and"), "{r}");
    let (st, r) = get("/api/v1/query?query=sum(", bearer(&s.admin_token)).await;
    assert_eq!(
        (st, r["errorType"].as_str()),
        (400, Some("bad_data")),
        "{r}"
    );
    let (st, r) = get(
        "/api/v1/query_range?query=1&start=10&end=5&step=1",
        bearer(&s.admin_token),
    )
    .await;
    assert_eq!(st, 400, "{r}");

    // promtool, as users run it. Version 2.42 has no auth flag: the URL's user info
    // becomes basic auth (Go's HTTP client), the key as the password.
    if missing() {
        s.stop().await;
        return;
    }
    let url = s
        .url
        .replace("http://", &format!("http://promtool:{read_key}@"));
    let promtool = |args: Vec<String>| {
        let out = std::process::Command::new(PROMTOOL)
            .arg("query")
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let args: Vec<String> = ["instant", &url, "api_latency * 2"]
        .map(String::from)
        .into();
    let out = tokio::task::spawn_blocking(move || promtool(args))
        .await
        .unwrap();
    assert!(
        out.contains("{metricId=\"api.latency\", project=\"p1\"} => 25 @["),
        "{out}"
    );
    // Steps at end − 60 s, end − 30 s and end, the last one after the sample.
    let end_s = t / 1000 + 1;
    let (start, end) = (format!("{}", end_s - 60), format!("{end_s}"));
    let args: Vec<String> = [
        "range",
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "30s",
        &url,
        "api_latency",
    ]
    .map(String::from)
    .into();
    let out = tokio::task::spawn_blocking(move || promtool(args))
        .await
        .unwrap();
    assert!(
        out.contains("api_latency{metricId=\"api.latency\", project=\"p1\"} =>")
            && out.contains("12.5 @["),
        "{out}"
    );
    s.stop().await;
}

#[tokio::test]
async fn metadata_keys_shown_as_labels_are_checked_listed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let key = c.setup("p1").await;
    let put = |body: Value| {
        let c = c.clone();
        async move {
            c.admin(
                reqwest::Method::PUT,
                "/api/v1/projects/p1/labels",
                Some(body),
            )
            .await
        }
    };
    // Bad lists are refused naming the entry; nothing is set.
    for (body, names) in [
        (json!({"labelKeys": ["region", "bad-key"]}), "labelKeys[1]"),
        (json!({"labelKeys": ["project"]}), "labelKeys[0]"),
        (json!({"labelKeys": ["a", "a"]}), "labelKeys[1]"),
        (json!({"labelKeys": ["a", 3]}), "labelKeys[1]"),
        (json!({"labelKeys": "region"}), "labelKeys"),
        (
            json!({"labelKeys": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}),
            "at most 8",
        ),
        (json!({}), "labelKeys"),
    ] {
        let r = put(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        let e = r.body["error"].as_str().unwrap_or_default().to_string()
            + r.body["message"].as_str().unwrap_or_default();
        assert!(e.contains(names), "{body}: {:?}", r.body);
    }
    assert!(c
        .get("/api/v1/projects/p1")
        .await
        .body
        .get("labelKeys")
        .is_none());
    let r = put(json!({"labelKeys": ["host", "region"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["labelKeys"], json!(["host", "region"]));
    assert_eq!(
        c.get("/api/v1/projects/p1").await.body["labelKeys"],
        json!(["host", "region"]),
        "kept in the project record"
    );

    let t = now_ms() - 60_000;
    let sample = |i: i64, meta: Value| json!({"metricId": "cpu.busy", "metricName": "CPU busy", "unit": "%", "value": 10.5 + i as f64, "timestamp": t + i, "metadata": meta});
    let body = json!({"projectId": "p1", "metrics": [
        sample(0, json!({"host": "a", "region": "eu", "note": "ignored"})),
        sample(1, json!({"host": "b", "region": "eu"})),
        sample(2, json!({"host": "a", "region": "eu"})),
        sample(3, json!({"host": 7})),
    ]});
    assert_eq!(c.post(&key, &body).await.status, 200);
    let rk = read_key(&c, "p1").await;
    let http = reqwest::Client::new();
    let get = |path: String| get_json(&http, &s.url, path, Some(format!("Bearer {rk}")));
    let enc = |q: &str| {
        percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let base = json!({"__name__": "cpu_busy", "metricId": "cpu.busy", "project": "p1"});
    let with = |extra: Value| {
        let mut l = base.clone();
        l.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        l
    };
    let (st, r) = get(format!("/api/v1/series?match[]={}", enc("cpu_busy"))).await;
    assert_eq!(st, 200, "{r}");
    let mut got = r["data"].as_array().unwrap().clone();
    got.sort_by_key(|v| v.to_string());
    let mut want = vec![
        with(json!({"host": "a", "region": "eu"})),
        with(json!({"host": "b", "region": "eu"})),
        with(json!({"host": "7"})),
    ];
    want.sort_by_key(|v| v.to_string());
    assert_eq!(
        got, want,
        "one series per combination; a number as its JSON text"
    );
    let (_, r) = get(format!(
        "/api/v1/label/host/values?match[]={}",
        enc("cpu_busy")
    ))
    .await;
    assert_eq!(r["data"], json!(["7", "a", "b"]));
    let (_, r) = get("/api/v1/labels".into()).await;
    assert_eq!(
        r["data"],
        json!(["__name__", "host", "metricId", "project", "region"])
    );
    let at = format!("&time={}", (t + 10) as f64 / 1000.0);
    let (_, r) = get(format!(
        "/api/v1/query?query={}{at}",
        enc("count_over_time(cpu_busy{region=\"eu\"}[5m])")
    ))
    .await;
    let mut counts: Vec<(String, String)> = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["metric"]["host"].as_str().unwrap().to_owned(),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [("a".into(), "2".into()), ("b".into(), "1".into())],
        "{r}"
    );
    // The webhook's own view is unchanged: one metric with all four samples.
    assert_eq!(c.points("p1", "cpu.busy").await.len(), 4);

    let later = format!("&time={}", (t + 2_000) as f64 / 1000.0);
    // Past the cap on combinations a query is refused, naming the metric and the keys.
    let many: Vec<Value> = (0..1_001)
        .map(|i| json!({"metricId": "per.user", "metricName": "Per user", "value": 1.0, "timestamp": t + i, "metadata": {"host": format!("h{i}")}}))
        .collect();
    for part in many.chunks(100) {
        let r = c
            .post(&key, &json!({"projectId": "p1", "metrics": part}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let (st, r) = get(format!(
        "/api/v1/query?query={}{later}",
        enc("count(per_user)")
    ))
    .await;
    assert_eq!(
        (st, r["errorType"].as_str()),
        (422, Some("execution")),
        "{r}"
    );
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("per.user") && e.contains("1000") && e.contains("host"),
        "{e}"
    );
    // The cap counts the combinations read, before the matchers that name a key.
    let (st, r) = get(format!(
        "/api/v1/query?query={}{later}",
        enc("count(per_user{host!=\"h0\"})")
    ))
    .await;
    assert_eq!(
        st, 422,
        "the cap counts what is read, before the matchers: {r}"
    );
    let _ = put(json!({"labelKeys": []})).await;
    let (st, r) = get(format!(
        "/api/v1/query?query={}{later}",
        enc("count(per_user)")
    ))
    .await;
    assert_eq!(
        (st, &r["data"]["result"][0]["value"][1]),
        (200, &json!("1")),
        "{r}"
    );
    s.stop().await;
}
