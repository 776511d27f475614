//! Query latency through HTTP against a running server, for the figures in
//! docs/benchmarks.md ("Queries"). Loads the data through the webhook first (unless
//! `--skip-load`): `--metrics` metrics of `--samples` samples each at 10 s spacing, ending a
//! day ago, values a counter-like walk; plus `--catalog-metrics` metrics of one sample each
//! in project `{project}-catalog` (which must exist, with `--catalog-key`). Then times, warm:
//! `avg` into ≤500 buckets over the whole span of metric 0, the same over all metrics in one
//! `/query`, and the catalog of the catalog project.
//!
//! cargo run --release --example querybench -- --url http://127.0.0.1:8080 --key KEY \
//!     --project P --token ADMIN_TOKEN [--metrics 10] [--samples 10000000] \
//!     [--catalog-key KEY2 --catalog-metrics 10000] [--rounds 50]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::time::{Duration, Instant};

struct Args {
    url: String,
    key: String,
    project: String,
    token: String,
    metrics: usize,
    samples: usize,
    catalog_key: Option<String>,
    catalog_metrics: usize,
    rounds: usize,
    skip_load: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        key: String::new(),
        project: String::new(),
        token: String::new(),
        metrics: 10,
        samples: 10_000_000,
        catalog_key: None,
        catalog_metrics: 10_000,
        rounds: 50,
        skip_load: false,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--skip-load") {
        argv.remove(i);
        a.skip_load = true;
    }
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--url" => a.url = v,
            "--key" => a.key = v,
            "--project" => a.project = v,
            "--token" => a.token = v,
            "--metrics" => a.metrics = v.parse().expect("--metrics N"),
            "--samples" => a.samples = v.parse().expect("--samples N"),
            "--catalog-key" => a.catalog_key = Some(v),
            "--catalog-metrics" => a.catalog_metrics = v.parse().expect("--catalog-metrics N"),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        !a.key.is_empty() && !a.project.is_empty() && !a.token.is_empty(),
        "--key, --project and --token are required"
    );
    a
}

struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(url: &str) -> Conn {
        let uri: hyper::Uri = url.parse().unwrap();
        let host = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap_or(80));
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Conn { send, host }
    }

    async fn call(&mut self, req: hyper::http::request::Builder, body: Bytes) -> (u16, Bytes) {
        let req = req
            .header("host", &self.host)
            .body(Full::new(body))
            .unwrap();
        self.send.ready().await.unwrap();
        let resp = self.send.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    }
}

/// Posts `bodies` over 4 connections; panics on any non-200.
async fn post_all(url: &str, key: &str, bodies: Vec<Bytes>) {
    let per = bodies.len().div_ceil(4).max(1);
    let mut tasks = Vec::new();
    for chunk in bodies.chunks(per).map(<[Bytes]>::to_vec) {
        let (url, auth) = (url.to_owned(), format!("Bearer {key}"));
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&url).await;
            for b in chunk {
                let req = Request::post(format!("{url}/api/webhooks/custom"))
                    .header("authorization", &auth)
                    .header("content-type", "application/json");
                let (status, body) = c.call(req, b).await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn body(project: &str, metrics: impl Iterator<Item = (String, i64, i64)>) -> Bytes {
    let items: Vec<String> = metrics
        .map(|(id, ts, v)| {
            format!(r#"{{"metricId":"{id}","metricName":"{id}","value":{v},"timestamp":{ts}}}"#)
        })
        .collect();
    Bytes::from(format!(
        r#"{{"projectId":"{project}","metrics":[{}]}}"#,
        items.join(",")
    ))
}

async fn time(url: &str, token: &str, path: &str, rounds: usize) -> (Vec<Duration>, usize) {
    let mut c = Conn::open(url).await;
    let auth = format!("Bearer {token}");
    let mut lat = Vec::new();
    let mut bytes = 0;
    for i in 0..rounds + 3 {
        let req = Request::get(format!("{url}{path}")).header("authorization", &auth);
        let t = Instant::now();
        let (status, body) = c.call(req, Bytes::new()).await;
        let d = t.elapsed();
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        bytes = body.len();
        if i >= 3 {
            lat.push(d); // the first three warm the caches
        }
    }
    lat.sort();
    (lat, bytes)
}

fn report(name: &str, (lat, bytes): (Vec<Duration>, usize)) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: p50 {:.2} ms  p90 {:.2} ms  max {:.2} ms  ({} requests, {bytes} bytes each)",
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() * 9 / 10]),
        ms(lat[lat.len() - 1]),
        lat.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    let day_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 86_400_000;
    let start = day_ago - a.samples as i64 * 10_000;
    if !a.skip_load {
        let t = Instant::now();
        for m in 0..a.metrics {
            // Bodies of 100 consecutive samples of one metric, built a million at a time.
            let mut n = 0;
            while n < a.samples {
                let upto = (n + 1_000_000).min(a.samples);
                let bodies: Vec<Bytes> = (n..upto)
                    .step_by(100)
                    .map(|i| {
                        body(
                            &a.project,
                            (i..(i + 100).min(upto)).map(|j| {
                                let v = (j as i64 / 7) + (j as i64 * 31 % 5);
                                (format!("m{m}"), start + j as i64 * 10_000, v)
                            }),
                        )
                    })
                    .collect();
                post_all(&a.url, &a.key, bodies).await;
                n = upto;
            }
            eprintln!(
                "loaded metric m{m} ({:.0} s so far)",
                t.elapsed().as_secs_f64()
            );
        }
        if let Some(key) = &a.catalog_key {
            let project = format!("{}-catalog", a.project);
            let bodies: Vec<Bytes> = (0..a.catalog_metrics)
                .step_by(100)
                .map(|i| {
                    body(
                        &project,
                        (i..(i + 100).min(a.catalog_metrics))
                            .map(|j| (format!("c{j}"), day_ago, j as i64)),
                    )
                })
                .collect();
            post_all(&a.url, key, bodies).await;
        }
        eprintln!(
            "loaded {} samples in {:.0} s; letting the compactor finish",
            a.metrics * a.samples,
            t.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let p = &a.project;
    report(
        "avg, 500 buckets, metric m0",
        time(
            &a.url,
            &a.token,
            &format!("/api/v1/projects/{p}/metrics/m0/points?agg=avg&maxPoints=500"),
            a.rounds,
        )
        .await,
    );
    let ids: Vec<String> = (0..a.metrics).map(|m| format!("m{m}")).collect();
    report(
        &format!("avg, 500 buckets, {} metrics in one /query", a.metrics),
        time(
            &a.url,
            &a.token,
            &format!(
                "/api/v1/projects/{p}/query?metricIds={}&agg=avg&maxPoints=500",
                ids.join(",")
            ),
            a.rounds,
        )
        .await,
    );
    report(
        "p99, 500 buckets, metric m0 (decodes every block)",
        time(
            &a.url,
            &a.token,
            &format!("/api/v1/projects/{p}/metrics/m0/points?agg=p99&maxPoints=500"),
            a.rounds.min(10),
        )
        .await,
    );
    if a.catalog_key.is_some() {
        report(
            &format!("catalog of {} metrics", a.catalog_metrics),
            time(
                &a.url,
                &a.token,
                &format!("/api/v1/projects/{p}-catalog/metrics"),
                a.rounds,
            )
            .await,
        );
    }
}
