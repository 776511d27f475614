//! Test harness: an in-process server (`Server`) or a child process (`Child`), plus a small
//! HTTP client with the spec's headers.

#![allow(dead_code)]

use serde_json::{json, Value};
use stathook::app::App;
use stathook::config::Config;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Server {
    pub url: String,
    pub app: Arc<App>,
    pub admin_token: String,
    pub data_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// The bytes of each of a metric's segments in the store, oldest first.
    pub fn segments(&self, project: &str, metric: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.app
            .store
            .scan_segments::<stathook::store::StoreError>(
                project,
                metric,
                0,
                i64::MAX,
                &mut |_, b| {
                    out.push(b.to_vec());
                    Ok(true)
                },
            )
            .unwrap();
        out
    }

    pub async fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, |_| {}).await
    }

    pub async fn start_with(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::new(data_dir.to_path_buf(), addr);
        // Tests compact explicitly, so a round never races an assertion by surprise.
        config.compact_interval = Duration::from_secs(3600);
        tweak(&mut config);
        let (app, _report) = App::open(config).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(stathook::app::run(app.clone(), listener, async {
            let _ = rx.await;
        }));
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Server {
            url: format!("http://{addr}"),
            app,
            admin_token,
            data_dir: data_dir.to_path_buf(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A server on a fresh temp dir with project `project` and one webhook; returns the dir
    /// (keep it alive), the server, a client and the webhook's API key.
    pub async fn with_project(project: &str) -> (tempfile::TempDir, Server, Client, String) {
        let dir = tempfile::tempdir().unwrap();
        let s = Server::start(dir.path()).await;
        let c = s.client();
        let key = c.setup(project).await;
        (dir, s, c, key)
    }

    /// Graceful shutdown: drains requests, compacts, closes the store.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        // Wait until the store's file lock is released by the last Arc.
        let app = self.app;
        for _ in 0..200 {
            if Arc::strong_count(&app) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(app);
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.admin_token)
    }
}

/// A stathook child process, for SIGKILL and CLI tests.
pub struct Child {
    pub url: String,
    pub process: std::process::Child,
    pub admin_token: String,
}

/// A failing test must not leave a server running (it would hold the test's output pipe).
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Child {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Child {
        Self::start_with_stderr(data_dir, extra, std::process::Stdio::inherit(), "warn")
    }

    /// Starts with stderr (the logs) going to `stderr`, at log level `level`.
    pub fn start_with_stderr(
        data_dir: &Path,
        extra: &[&str],
        stderr: std::process::Stdio,
        level: &str,
    ) -> Child {
        use std::io::BufRead;
        let mut process = std::process::Command::new(env!("CARGO_BIN_EXE_stathook"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", level)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("stathook listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Child {
            url,
            process,
            admin_token,
        }
    }

    pub fn kill(mut self) {
        self.process.kill().unwrap(); // SIGKILL
        self.process.wait().unwrap();
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.process.id().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        self.process.wait().unwrap()
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.admin_token)
    }
}

#[derive(Clone)]
pub struct Client {
    pub url: String,
    pub admin_token: String,
    pub http: reqwest::Client,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Client {
    pub fn new(url: &str, admin_token: &str) -> Client {
        Client {
            url: url.to_owned(),
            admin_token: admin_token.to_owned(),
            // A server that stops answering fails the test by name instead of hanging the suite.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON reply {status}: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        self.send(req).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.admin(reqwest::Method::DELETE, path, None).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// Creates a project with the given id and a webhook; returns the API key.
    pub async fn setup(&self, project: &str) -> String {
        let r = self
            .admin(
                reqwest::Method::POST,
                "/api/v1/projects",
                Some(json!({"name": project, "id": project})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let r = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/v1/projects/{project}/webhooks"),
                Some(json!({"name": "Cron Job Metrics"})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["apiKey"].as_str().unwrap().to_owned()
    }

    /// POSTs a raw body to the webhook with the spec's headers.
    pub async fn post_raw(&self, key: &str, body: impl Into<reqwest::Body>) -> Reply {
        let req = self
            .http
            .post(format!("{}/api/webhooks/custom", self.url))
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/json")
            .body(body);
        self.send(req).await
    }

    pub async fn post(&self, key: &str, body: &Value) -> Reply {
        self.post_raw(key, body.to_string()).await
    }

    pub async fn points(&self, project: &str, metric: &str) -> Vec<(i64, f64)> {
        let r = self
            .get(&format!(
                "/api/v1/projects/{project}/metrics/{}/points?limit=100000",
                percent_encoding::utf8_percent_encode(metric, percent_encoding::NON_ALPHANUMERIC)
            ))
            .await;
        points_of(&r)
    }

    pub async fn catalog(&self, project: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/api/v1/projects/{project}/metrics"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["metrics"].as_array().unwrap().clone()
    }
}

/// The (timestamp, value) pairs of a 200 answer's `points`.
pub fn points_of(r: &Reply) -> Vec<(i64, f64)> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    points_in(&r.body)
}

/// The (timestamp, value) pairs of a JSON answer's `points`.
pub fn points_in(body: &Value) -> Vec<(i64, f64)> {
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

pub fn metric(id: &str, value: f64, ts: i64) -> Value {
    json!({"metricId": id, "metricName": format!("{id} name"), "value": value, "unit": "count", "timestamp": ts})
}

pub fn batch(project: &str, metrics: Vec<Value>) -> Value {
    json!({"projectId": project, "metrics": metrics})
}

/// Whether a test that needs an outside program must be skipped because it is `missing`:
/// said loudly on stderr with how to install it, and a failure when the environment
/// variable `require` is set (CI sets them, so a missing peer never passes silently).
pub fn skip_without(missing: bool, require: &str, what: &str, install: &str) -> bool {
    if missing {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but {what} is missing"
        );
        eprintln!("\n*** {what} MISSING, TEST SKIPPED: {install} ***\n");
    }
    missing
}

/// A loopback port that was free a moment ago (for peers that take a port number).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_ms() -> i64 {
    stathook::clock::now_ms()
}

/// Runs `stathook check` on a data dir: (whether it passed, its report).
pub fn check(data_dir: &std::path::Path) -> (bool, String) {
    check_with(data_dir, &[])
}

/// As `check`, with more flags (e.g. `--sizes`).
pub fn check_with(data_dir: &std::path::Path, flags: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stathook"))
        .arg("check")
        .args(flags)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Loads `metrics` × `points` spec-shaped samples ending now into `project`, `spacing_ms`
/// apart, 100 consecutive samples of one metric a request, over 4 connections: metricId
/// `api_latency_{m}`, metricName `API latency {m}`, unit `ms`, values with two decimals.
/// For the benches' histories.
pub async fn load_history(
    s: &Server,
    key: &str,
    project: &str,
    metrics: usize,
    points: usize,
    spacing_ms: i64,
) -> Duration {
    load_history_of(s, key, project, 0..metrics, points, spacing_ms, now_ms()).await
}

/// As `load_history`, for metrics `ids` (api_latency_{m} for m in it), the last sample a
/// spacing before `end`: `history_value` gives each value, so another store can be fed the same.
pub async fn load_history_of(
    s: &Server,
    key: &str,
    project: &str,
    ids: std::ops::Range<usize>,
    points: usize,
    spacing_ms: i64,
    end: i64,
) -> Duration {
    let start = std::time::Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..4usize {
        let (c, key, project, ids) = (s.client(), key.to_owned(), project.to_owned(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for m in ids.filter(|m| m % 4 == lane) {
                for chunk in (0..points).collect::<Vec<_>>().chunks(100) {
                    let batch: Vec<Value> = chunk
                        .iter()
                        .map(|&i| {
                            let t = end - (points - i) as i64 * spacing_ms;
                            json!({"metricId": format!("api_latency_{m}"),
                                   "metricName": format!("API latency {m}"), "unit": "ms",
                                   "value": history_value(m, i), "timestamp": t})
                        })
                        .collect();
                    let r = c
                        .post(&key, &json!({"projectId": project, "metrics": batch}))
                        .await;
                    assert_eq!(r.status, 200, "{:?}", r.body);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed()
}

/// The `i`th value of metric `m` in `load_history`: a gauge with two decimals.
pub fn history_value(m: usize, i: usize) -> f64 {
    let v = 50.0 + 20.0 * ((i as f64) / 500.0 + m as f64).sin();
    (v * 100.0).round() / 100.0
}

/// A new read key of `project`, as Grafana or a reader would be given.
pub async fn read_key(c: &Client, project: &str) -> String {
    let r = c
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/keys"),
            Some(json!({"scope": "read", "name": "grafana"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["apiKey"].as_str().unwrap().to_owned()
}
