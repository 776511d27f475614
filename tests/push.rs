//! The push formats through real HTTP: Prometheus remote write and Influx line protocol (v1
//! and v2), their keys, their errors and the series cap; every accepted sample read back,
//! through the points API and through PromQL with its labels. `remote_write_from_prometheus`
//! and the `influx` CLI test in `push_clients.rs` use real senders.

use crate::support::*;
use serde_json::{json, Value};
use stathook::ingest::remote_write::{encode, TimeSeries, WriteRequest};

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries::new(labels, samples)
}

/// POSTs a remote-write body as Prometheus does; the status and the body as text.
pub async fn remote_write(
    c: &Client,
    auth: &str,
    body: Vec<u8>,
    content_type: &str,
) -> (u16, String) {
    let r = c
        .http
        .post(format!("{}/api/v1/write", c.url))
        .header("Authorization", auth)
        .header("Content-Type", content_type)
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// An instant PromQL query through the Prometheus API: its result array.
pub async fn promql(c: &Client, key: &str, query: &str, time_s: f64) -> Vec<Value> {
    let r = c
        .send(
            c.http
                .post(format!("{}/api/v1/query", c.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "query={}&time={time_s}",
                    percent_encoding::utf8_percent_encode(
                        query,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ))
                .bearer_auth(key),
        )
        .await;
    assert_eq!(r.status, 200, "{query}: {:?}", r.body);
    r.body["data"]["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn remote_write_keeps_each_label_set_a_series_of_its_own() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let t = now_ms() - 60_000;
    let req = WriteRequest {
        timeseries: vec![
            series(
                &[("__name__", "up"), ("job", "a"), ("instance", "h:9100")],
                &[(t, 1.0), (t + 15_000, 1.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "b"), ("instance", "h:9100")],
                &[(t, 0.0), (t + 15_000, 1.0)],
            ),
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("path", "/a \"quoted\""),
                ],
                &[(t, 10.5), (t + 15_000, 12.25)],
            ),
        ],
    };
    let (status, body) = remote_write(
        &c,
        &format!("Bearer {key}"),
        encode(&req),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert!(body.is_empty());

    // Same name, same timestamp, two label sets: two series, nothing overwritten.
    assert_eq!(
        c.points("p1", r#"up{instance="h:9100",job="a"}"#).await,
        [(t, 1.0), (t + 15_000, 1.0)]
    );
    assert_eq!(
        c.points("p1", r#"up{instance="h:9100",job="b"}"#).await,
        [(t, 0.0), (t + 15_000, 1.0)]
    );
    let names: Vec<Value> = c
        .catalog("p1")
        .await
        .iter()
        .map(|m| m["metricName"].clone())
        .collect();
    assert_eq!(names, ["http_requests_total", "up", "up"]);

    // PromQL sees the labels again.
    let rk = read_key(&c, "p1").await;
    let at = (t + 20_000) as f64 / 1000.0;
    let mut got: Vec<(String, String)> = promql(&c, &rk, "up", at)
        .await
        .iter()
        .map(|r| {
            (
                r["metric"]["job"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("a".to_string(), "1".to_string()), ("b".into(), "1".into())]
    );
    let r = promql(&c, &rk, r#"http_requests_total{path="/a \"quoted\""}"#, at).await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0]["metric"],
        json!({"__name__": "http_requests_total", "path": "/a \"quoted\"", "project": "p1"})
    );
    assert_eq!(r[0]["value"][1], "12.25");
    let r = promql(&c, &rk, "sum by (job) (up)", at).await;
    assert_eq!(r.len(), 2);

    // Basic auth with the key as the password (Prometheus's basic_auth) works too.
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{key}"))
    };
    let more = WriteRequest {
        timeseries: vec![series(&[("__name__", "up"), ("job", "c")], &[(t, 1.0)])],
    };
    let (status, body) = remote_write(
        &c,
        &format!("Basic {basic}"),
        encode(&more),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(c.points("p1", r#"up{job="c"}"#).await, [(t, 1.0)]);

    // The usage counts the samples like the webhook's.
    let hooks = c.get("/api/v1/projects/p1/webhooks").await;
    let id = hooks.body["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let usage = c.get(&format!("/api/v1/webhooks/{id}/usage")).await;
    assert_eq!(usage.status, 200, "{:?}", usage.body);
    assert_eq!(usage.body["samplesStored"], 7, "{:?}", usage.body);
    s.stop().await;
}

#[tokio::test]
async fn remote_write_refuses_what_it_cannot_store_and_stores_nothing_of_it() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let bearer = format!("Bearer {key}");
    let t = now_ms() - 1_000;
    let good = encode(&WriteRequest {
        timeseries: vec![series(&[("__name__", "m")], &[(t, 1.0)])],
    });

    let (status, body) =
        remote_write(&c, "Bearer nope", good.clone(), "application/x-protobuf").await;
    assert_eq!(status, 401, "{body}");
    let rk = read_key(&c, "p1").await;
    let (status, body) = remote_write(
        &c,
        &format!("Bearer {rk}"),
        good.clone(),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("read key"), "{body}");
    let (status, body) = remote_write(
        &c,
        &bearer,
        good.clone(),
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("remote write 2.0"), "{body}");
    let (status, _) = remote_write(&c, &bearer, good.clone(), "application/json").await;
    assert_eq!(status, 415);

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated snappy",
            good[..good.len() - 3].to_vec(),
            "snappy",
        ),
        (
            "a 2 GB length",
            vec![0x80, 0x80, 0x80, 0x80, 0x08, 0, 0],
            "decompresses to",
        ),
        (
            "a protobuf claiming a 2 GB field",
            snap::raw::Encoder::new()
                .compress_vec(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x07, 1, 2, 3])
                .unwrap(),
            "protobuf",
        ),
    ];
    let many_labels: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("l{i}"), "v".to_string()))
        .collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "m2")];
    labels.extend(many_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cases.push((
        "10,000 labels",
        encode(&WriteRequest {
            timeseries: vec![series(&labels, &[(t, 1.0)])],
        }),
        "more than 40 labels",
    ));
    let huge = "x".repeat(1 << 20);
    cases.push((
        "a label value of 1 MB",
        encode(&WriteRequest {
            timeseries: vec![
                series(&[("__name__", "m3")], &[(t, 1.0)]),
                series(&[("__name__", "m4"), ("big", &huge)], &[(t, 1.0)]),
            ],
        }),
        "timeseries[1] (m4): label \"big\" has a value of 1048576 bytes",
    ));
    cases.push((
        "a duplicate label",
        encode(&WriteRequest {
            timeseries: vec![series(
                &[("__name__", "m5"), ("a", "1"), ("a", "2")],
                &[(t, 1.0)],
            )],
        }),
        "appears more than once",
    ));
    cases.push((
        "no __name__",
        encode(&WriteRequest {
            timeseries: vec![series(&[("job", "x")], &[(t, 1.0)])],
        }),
        "no __name__",
    ));
    for (what, body, says) in cases {
        let (status, text) = remote_write(&c, &bearer, body, "application/x-protobuf").await;
        assert_eq!(status, 400, "{what}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(says),
            "{what}: {text}"
        );
    }
    assert!(c.catalog("p1").await.is_empty(), "nothing stored");
    assert_eq!(c.get("/healthz").await.status, 200);

    // The valid one still goes in afterwards.
    let (status, _) = remote_write(&c, &bearer, good, "application/x-protobuf").await;
    assert_eq!(status, 204);
    assert_eq!(c.points("p1", "m").await, [(t, 1.0)]);
    s.stop().await;
}

#[tokio::test]
async fn the_series_cap_refuses_a_push_that_would_pass_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.max_series_per_project = 3).await;
    let c = s.client();
    let key = c.setup("p1").await;
    let bearer = format!("Bearer {key}");
    let t = now_ms() - 1_000;
    let push = |jobs: &[&str]| {
        encode(&WriteRequest {
            timeseries: jobs
                .iter()
                .map(|j| series(&[("__name__", "up"), ("job", j)], &[(t, 1.0)]))
                .collect(),
        })
    };
    let (status, _) = remote_write(&c, &bearer, push(&["a", "b"]), "application/x-protobuf").await;
    assert_eq!(status, 204);
    let (status, text) = remote_write(
        &c,
        &bearer,
        push(&["a", "c", "d"]),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("the limit is 3 (--max-series-per-project)"),
        "{text}"
    );
    assert_eq!(
        c.catalog("p1").await.len(),
        2,
        "nothing of the refused push stored"
    );
    // Existing series still take samples, and one more fits.
    let (status, _) = remote_write(
        &c,
        &bearer,
        push(&["a", "b", "c"]),
        "application/x-protobuf",
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(c.catalog("p1").await.len(), 3);
    // A series whose samples are all skipped (a staleness marker) creates nothing, so it
    // does not count against a full project.
    let stale = encode(&WriteRequest {
        timeseries: vec![
            series(&[("__name__", "up"), ("job", "a")], &[(t + 1, 2.0)]),
            series(&[("__name__", "up"), ("job", "gone")], &[(t, f64::NAN)]),
        ],
    });
    let (status, text) = remote_write(&c, &bearer, stale, "application/x-protobuf").await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(c.catalog("p1").await.len(), 3);
    s.stop().await;
}

/// POSTs line protocol; the status and the body.
async fn influx(c: &Client, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut req = c
        .http
        .post(format!("{}{path}", c.url))
        .body(body.to_owned());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn influx_line_protocol_v1_and_v2() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let t_s = now_ms() / 1000 - 60;
    let token = format!("Token {key}");
    let body = format!(
        "cpu,host=a,region=eu usage_idle=97.25,procs=12i {t_s}\ncpu,host=b usage_idle=50 {t_s}\n"
    );
    let (status, text) = influx(
        &c,
        "/api/v2/write?org=any&bucket=p1&precision=s",
        Some(&token),
        &body,
    )
    .await;
    assert_eq!(status, 204, "{text}");
    let t = t_s * 1000;
    assert_eq!(
        c.points("p1", r#"cpu_usage_idle{host="a",region="eu"}"#)
            .await,
        [(t, 97.25)]
    );
    assert_eq!(
        c.points("p1", r#"cpu_procs{host="a",region="eu"}"#).await,
        [(t, 12.0)]
    );
    assert_eq!(
        c.points("p1", r#"cpu_usage_idle{host="b"}"#).await,
        [(t, 50.0)]
    );

    // v1: the key as `p`, nanoseconds by default; `db` must be the key's project.
    let (status, text) = influx(
        &c,
        &format!("/write?db=p1&u=telegraf&p={key}"),
        None,
        &format!("mem,host=a used=3u {}\n", (t + 1) * 1_000_000),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(
        c.points("p1", r#"mem_used{host="a"}"#).await,
        [(t + 1, 3.0)]
    );
    let (status, text) = influx(&c, "/write?db=other", Some(&token), "m v=1").await;
    assert_eq!(status, 403, "{text}");
    let (status, _) = influx(&c, "/write?db=p1", None, "m v=1").await;
    assert_eq!(status, 401);

    // A bad line refuses the whole request, and says which line.
    let (status, text) = influx(
        &c,
        "/api/v2/write?bucket=p1",
        Some(&token),
        "ok v=1\nstatus,host=a message=\"disk full\"\n",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("line 2: field \\\"message\\\" is a string"),
        "{text}"
    );
    let (status, text) = influx(
        &c,
        "/api/v2/write?bucket=p1",
        Some(&token),
        "ok v=1\nm v=NaN\n",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("line 2"), "{text}");
    let (status, text) = influx(
        &c,
        "/api/v2/write?precision=fortnight",
        Some(&token),
        "m v=1",
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let ok_v = c.get("/api/v1/projects/p1/metrics/ok_v/points").await;
    assert_eq!(ok_v.status, 404, "all or nothing: {:?}", ok_v.body);

    // Gzip, as Telegraf sends with content_encoding = "gzip".
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, format!("gz v=1.5 {t_s}\n").as_bytes()).unwrap();
    let r = c
        .http
        .post(format!("{}/api/v2/write?precision=s", c.url))
        .header("Authorization", &token)
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.points("p1", "gz_v").await, [(t, 1.5)]);

    let ping = c.http.get(format!("{}/ping", c.url)).send().await.unwrap();
    assert_eq!(ping.status(), 204);
    assert!(ping.headers()["x-influxdb-version"]
        .to_str()
        .unwrap()
        .starts_with("stathook-"));
    s.stop().await;
}

/// PUTs or POSTs a Pushgateway push to `path`; the status and the body.
async fn pushgateway(
    c: &Client,
    method: reqwest::Method,
    path: &str,
    key: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let r = c
        .http
        .request(method, format!("{}{path}", c.url))
        .bearer_auth(key)
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn pushgateway_pushes_keep_history_and_refuse_what_they_cannot_store() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let text = "text/plain; version=0.0.4";
    let body = "# TYPE backup_size_bytes gauge\nbackup_size_bytes{db=\"main\"} 1.5e9\n";
    let (status, said) = pushgateway(
        &c,
        reqwest::Method::PUT,
        "/metrics/job/backup/instance/db1",
        &key,
        text,
        body,
    )
    .await;
    assert_eq!(status, 200, "{said}");
    let id = r#"backup_size_bytes{db="main",instance="db1",job="backup"}"#;
    let first = c.points("p1", id).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, 1.5e9);
    // A second push is a second sample: a history, not a replacement.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = pushgateway(
        &c,
        reqwest::Method::POST,
        "/metrics/job/backup/instance/db1",
        &key,
        text,
        "backup_size_bytes{db=\"main\"} 1.6e9\n",
    )
    .await;
    assert_eq!(status, 200);
    let both = c.points("p1", id).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[1].1, 1.6e9);

    for (path, content_type, body, want, says) in [
        ("/metrics/job/backup", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", "x", 415, "text format"),
        ("/metrics/job/backup", text, "ok 1\nbad{ 1\n", 400, "line 2, column 6"),
        ("/metrics/job/backup", text, "m{job=\"other\"} 1\n", 400, "but the push's URL says job"),
        ("/metrics/job/backup/odd", text, "m 1\n", 400, "/LABEL/VALUE pairs"),
        ("/metrics/job/backup", text, "m +Inf\n", 400, "not a finite number"),
    ] {
        let (status, said) =
            pushgateway(&c, reqwest::Method::PUT, path, &key, content_type, body).await;
        assert_eq!(status, want, "{path} {body:?}: {said}");
        assert!(said.contains(says), "{path} {body:?}: {said}");
    }
    let (status, said) = pushgateway(
        &c,
        reqwest::Method::DELETE,
        "/metrics/job/backup",
        &key,
        text,
        "",
    )
    .await;
    assert_eq!(status, 405, "{said}");
    assert_eq!(
        c.catalog("p1").await.len(),
        1,
        "nothing of the refused pushes stored"
    );
    s.stop().await;
}

#[tokio::test]
async fn otlp_json_with_gzip_and_a_partial_success() {
    let (_dir, s, c, key) = Server::with_project("p1").await;
    let t_ns = (now_ms() - 10_000) as u128 * 1_000_000;
    let body = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"host.name","value":{{"stringValue":"web-1"}}}}]}},
        "scopeMetrics":[{{"metrics":[
          {{"name":"jobs.queued","unit":"1","gauge":{{"dataPoints":[{{"asInt":"7","timeUnixNano":"{t_ns}"}}]}}}},
          {{"name":"payload.size","exponentialHistogram":{{"aggregationTemporality":2,"dataPoints":[{{"count":"2","timeUnixNano":"{t_ns}"}}]}}}}
        ]}}]}}]}}"#
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, body.as_bytes()).unwrap();
    let post = |content_type: &str, body: Vec<u8>, gzip: bool| {
        let mut req = c
            .http
            .post(format!("{}/v1/metrics", c.url))
            .bearer_auth(&key)
            .header("Content-Type", content_type)
            .body(body);
        if gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        req.send()
    };
    let r = post("application/json", gz.finish().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], 1,
        "{answer}"
    );
    assert!(answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("exponential histogram"));
    let t = (t_ns / 1_000_000) as i64;
    assert_eq!(
        c.points("p1", r#"jobs_queued{host_name="web-1"}"#).await,
        [(t, 7.0)]
    );

    let r = post("text/plain", b"x".to_vec(), false).await.unwrap();
    assert_eq!(r.status(), 415);
    let r = post("application/x-protobuf", vec![0xff, 0xff, 0xff], false)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("ExportMetricsServiceRequest"), "{text}");
    assert_eq!(c.catalog("p1").await.len(), 1);
    s.stop().await;
}
