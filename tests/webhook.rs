//! The spec's webhook contract: the exact examples, every status, all-or-nothing batches.

use crate::support::*;
use serde_json::json;
use std::io::Write;

/// The spec's Step 3 curl example, byte for byte (with our project id and key).
#[tokio::test]
async fn spec_curl_example_is_stored_and_read_back_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let key = c.setup("YOUR_PROJECT_ID").await;
    let body = r#"{
    "projectId": "YOUR_PROJECT_ID",
    "metrics": [{
      "metricId": "daily_signups",
      "metricName": "Daily Signups",
      "value": 42,
      "unit": "count",
      "timestamp": 1234567890000
    }]
  }"#;
    let r = c.post_raw(&key, body).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (200, json!({"success": true, "metricsStored": 1}))
    );
    assert_eq!(r.headers["content-type"], "application/json");

    let cat = c.catalog("YOUR_PROJECT_ID").await;
    assert_eq!(
        cat,
        vec![
            json!({"metricId": "daily_signups", "metricName": "Daily Signups", "unit": "count",
            "firstTimestamp": 1234567890000i64, "lastTimestamp": 1234567890000i64, "lastValue": 42, "sampleCount": 1})
        ]
    );
    assert_eq!(
        c.points("YOUR_PROJECT_ID", "daily_signups").await,
        vec![(1234567890000, 42.0)]
    );
    s.stop().await;
}

/// The payloads the spec's Python and Node snippets send (timestamp = now, unit count).
#[tokio::test]
async fn spec_python_and_node_payloads() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let now = now_ms();
    // Python: json=data → compact JSON, int(time.time() * 1000).
    let py = format!(
        r#"{{"projectId": "p", "metrics": [{{"metricId": "daily_signups", "metricName": "Daily Signups", "value": 42, "unit": "count", "timestamp": {now}}}]}}"#
    );
    let r = c.post_raw(&key, py).await;
    assert_eq!(
        (r.status, r.body),
        (200, json!({"success": true, "metricsStored": 1}))
    );
    // Node/axios: JSON.stringify, Date.now().
    let node = format!(
        r#"{{"projectId":"p","metrics":[{{"metricId":"daily_signups","metricName":"Daily Signups","value":42,"unit":"count","timestamp":{}}}]}}"#,
        now + 1
    );
    let r = c.post_raw(&key, node).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        c.points("p", "daily_signups").await,
        vec![(now, 42.0), (now + 1, 42.0)]
    );
    s.stop().await;
}

#[tokio::test]
async fn timestamp_defaults_to_now_and_metadata_comes_back() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let before = now_ms();
    let r = c
        .post(
            &key,
            &json!({"projectId": "p", "metrics": [{"metricId": "m", "metricName": "M", "value": 1.5,
            "metadata": {"region": "eu", "tags": ["a", "b"], "n": {"x": 1}}}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let after = now_ms();
    let r = c.get("/api/v1/projects/p/metrics/m/points").await;
    let p = &r.body["points"][0];
    let ts = p["timestamp"].as_i64().unwrap();
    assert!(
        before <= ts && ts <= after,
        "{ts} not in [{before}, {after}]"
    );
    assert_eq!(p["value"], json!(1.5));
    assert_eq!(
        p["metadata"],
        json!({"region": "eu", "tags": ["a", "b"], "n": {"x": 1}})
    );
    let cat = c.catalog("p").await;
    assert_eq!(cat[0]["unit"], json!(null));
    s.stop().await;
}

#[tokio::test]
async fn every_error_status_with_a_json_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.max_body_bytes = 64 * 1024).await;
    let c = s.client();
    let key = c.setup("p").await;
    let other_key = c.setup("q").await;
    let url = format!("{}/api/webhooks/custom", s.url);
    let good = batch("p", vec![metric("m", 1.0, 1000)]);

    let expect = |r: Reply, status: u16, fragment: &str| {
        assert_eq!(r.status, status, "{:?}", r.body);
        let msg = r.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {:?}", r.body));
        assert!(msg.contains(fragment), "{msg:?} lacks {fragment:?}");
        assert_eq!(
            r.body.as_object().unwrap().len(),
            1,
            "error body has only `error`"
        );
    };

    // 401: missing, malformed, unknown.
    expect(
        c.send(
            c.http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(good.to_string()),
        )
        .await,
        401,
        "missing Authorization",
    );
    expect(
        c.send(
            c.http
                .post(&url)
                .header("Authorization", key.clone())
                .body(good.to_string()),
        )
        .await,
        401,
        "malformed Authorization",
    );
    expect(
        c.send(
            c.http
                .post(&url)
                .header("Authorization", format!("Basic {key}"))
                .body(good.to_string()),
        )
        .await,
        401,
        "malformed",
    );
    expect(c.post("shk_0000", &good).await, 401, "invalid API key");
    // The admin token is not an API key.
    expect(c.post(&s.admin_token, &good).await, 401, "invalid API key");
    // 403: another project's key.
    expect(
        c.post(&other_key, &good).await,
        403,
        "projectId \"p\" does not match",
    );
    // 405, 415.
    expect(
        c.send(c.http.get(&url).bearer_auth(&key)).await,
        405,
        "use POST",
    );
    let r = c
        .send(c.http.put(&url).bearer_auth(&key).body(good.to_string()))
        .await;
    assert_eq!(r.headers["allow"], "POST");
    expect(
        c.send(
            c.http
                .post(&url)
                .bearer_auth(&key)
                .header("Content-Type", "text/plain")
                .body(good.to_string()),
        )
        .await,
        415,
        "Content-Type",
    );
    expect(
        c.send(
            c.http
                .post(&url)
                .bearer_auth(&key)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "br")
                .body(good.to_string()),
        )
        .await,
        415,
        "Content-Encoding",
    );
    // 413, by Content-Length and chunked.
    let big = format!(
        r#"{{"projectId":"p","metrics":[],"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    expect(
        c.post_raw(&key, big.clone()).await,
        413,
        "larger than 65536 bytes",
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let stream = reqwest::Body::wrap_stream(futures_stream(chunks));
    expect(c.post_raw(&key, stream).await, 413, "larger than");
    // A gzip bomb that expands past the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(big.as_bytes()).unwrap();
    let r = c
        .send(
            c.http
                .post(&url)
                .bearer_auth(&key)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .body(gz.finish().unwrap()),
        )
        .await;
    expect(r, 413, "larger than");

    // 400s, each naming the field.
    let m = |extra: serde_json::Value| {
        let mut base = json!({"metricId": "m", "metricName": "M", "value": 1});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = v.clone();
            }
        }
        batch("p", vec![base])
    };
    expect(
        c.post_raw(&key, "{\"projectId\": ").await,
        400,
        "invalid JSON",
    );
    expect(c.post_raw(&key, "").await, 400, "empty");
    expect(
        c.post(&key, &json!({"metrics": []})).await,
        400,
        "projectId is required",
    );
    expect(
        c.post(&key, &json!({"projectId": "p"})).await,
        400,
        "metrics is required",
    );
    expect(
        c.post(&key, &m(json!({"metricId": null}))).await,
        400,
        "metrics[0].metricId is required",
    );
    expect(
        c.post(&key, &m(json!({"metricId": ""}))).await,
        400,
        "metrics[0].metricId must not be empty",
    );
    expect(
        c.post(&key, &m(json!({"metricName": null}))).await,
        400,
        "metrics[0].metricName is required",
    );
    expect(
        c.post(&key, &m(json!({"value": null}))).await,
        400,
        "metrics[0].value is required",
    );
    expect(
        c.post(&key, &m(json!({"value": "42"}))).await,
        400,
        "metrics[0].value must be a number",
    );
    expect(
        c.post(&key, &m(json!({"timestamp": -5}))).await,
        400,
        "metrics[0].timestamp must be a non-negative integer",
    );
    expect(
        c.post(&key, &m(json!({"timestamp": now_ms() + 10 * 60 * 1000})))
            .await,
        400,
        "metrics[0].timestamp is",
    );
    expect(
        c.post(&key, &m(json!({"metadata": "x"}))).await,
        400,
        "metrics[0].metadata must be an object",
    );
    expect(
        c.post(&key, &m(json!({"metadata": {"k": "v".repeat(5000)}})))
            .await,
        400,
        "metrics[0].metadata is",
    );
    expect(
        c.post(&key, &m(json!({"metricId": "x".repeat(200)}))).await,
        400,
        "metrics[0].metricId is 200 bytes",
    );
    expect(
        c.post(&key, &m(json!({"unit": "u".repeat(40)}))).await,
        400,
        "metrics[0].unit is 40 bytes",
    );
    expect(
        c.post(
            &key,
            &batch("p", (0..101).map(|i| metric("m", 1.0, i)).collect()),
        )
        .await,
        400,
        "at most 100",
    );
    let mut many: Vec<_> = (0..5).map(|i| metric("m", 1.0, i)).collect();
    many[3]["value"] = json!("x");
    expect(
        c.post(&key, &batch("p", many)).await,
        400,
        "metrics[3].value must be a number",
    );
    expect(
        c.post_raw(&key, vec![b'{', 0xff, 0xfe, b'}']).await,
        400,
        "invalid JSON",
    );

    // Nothing of any refused request was stored.
    assert_eq!(c.catalog("p").await, Vec::<serde_json::Value>::new());

    // gzip is accepted.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(good.to_string().as_bytes()).unwrap();
    let r = c
        .send(
            c.http
                .post(&url)
                .bearer_auth(&key)
                .header("Content-Type", "application/json; charset=utf-8")
                .header("Content-Encoding", "gzip")
                .body(gz.finish().unwrap()),
        )
        .await;
    assert_eq!(
        (r.status, r.body),
        (200, json!({"success": true, "metricsStored": 1}))
    );
    assert_eq!(c.points("p", "m").await, vec![(1000, 1.0)]);

    let r = c.send(c.http.get(format!("{}/healthz", s.url))).await;
    assert_eq!((r.status, r.body), (200, json!({"status": "ok"})));
    s.stop().await;
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    struct Iter(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(chunks.into_iter())
}

#[tokio::test]
async fn a_batch_with_one_bad_metric_stores_nothing() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut ms: Vec<_> = (0..100)
        .map(|i| metric(&format!("m{i}"), i as f64, 1000))
        .collect();
    ms[99]["timestamp"] = json!(1.5);
    let r = c.post(&key, &batch("p", ms)).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("metrics[99].timestamp"));
    assert!(c.catalog("p").await.is_empty());
    s.stop().await;
}

/// JavaScript's JSON.stringify writes 1e20 as `100000000000000000000` and Python writes a
/// big int in full: whole numbers past 64 bits are finite JSON numbers, stored as floats.
#[tokio::test]
async fn whole_numbers_beyond_64_bits_are_stored_as_floats() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let body = with_values(&["100000000000000000000", "-123456789012345678901234567890"]);
    let r = c.post_raw(&key, body).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        c.points("p", "m").await,
        vec![(1000, 1e20), (2000, -1.2345678901234568e29)]
    );
    // A timestamp that size is no Unix time in milliseconds: refused, naming the field.
    let r = c
        .post_raw(
            &key,
            r#"{"projectId":"p","metrics":[{"metricId":"m","metricName":"M","value":1,"timestamp":100000000000000000000}]}"#,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("metrics[0].timestamp must be a non-negative integer"),
        "{:?}",
        r.body
    );
    s.stop().await;
}

#[tokio::test]
async fn metadata_nested_32_levels_is_stored_and_read_back() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut meta = json!(1);
    for _ in 0..32 {
        meta = json!({ "a": meta });
    }
    let mut m = metric("m", 1.0, 1000);
    m["metadata"] = meta.clone();
    let r = c.post(&key, &batch("p", vec![m])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for compacted in [false, true] {
        if compacted {
            s.app.compact_now().unwrap();
        }
        let r = c.get("/api/v1/projects/p/metrics/m/points").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["points"][0]["metadata"], meta);
        let r = c.get("/api/v1/projects/p/query?metricIds=m").await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["series"][0]["points"][0]["metadata"], meta);
    }
    s.stop().await;
}

fn with_values(values: &[&str]) -> String {
    let metrics: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                r#"{{"metricId":"m","metricName":"M","value":{v},"timestamp":{}}}"#,
                (i + 1) * 1000
            )
        })
        .collect();
    format!(r#"{{"projectId":"p","metrics":[{}]}}"#, metrics.join(","))
}

#[tokio::test]
async fn resending_the_same_metric_and_timestamp_overwrites() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    assert_eq!(
        c.post(
            &key,
            &batch("p", vec![metric("m", 1.0, 5000), metric("m", 2.0, 6000)])
        )
        .await
        .status,
        200
    );
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m", 9.0, 5000)]))
            .await
            .status,
        200
    );
    assert_eq!(c.points("p", "m").await, vec![(5000, 9.0), (6000, 2.0)]);
    assert_eq!(c.catalog("p").await[0]["sampleCount"], json!(2));
    // And across a compaction: the retry lands on a segment sample.
    s.app.compact_now().unwrap();
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m", 7.0, 6000)]))
            .await
            .status,
        200
    );
    assert_eq!(c.points("p", "m").await, vec![(5000, 9.0), (6000, 7.0)]);
    let cat = c.catalog("p").await;
    assert_eq!(
        (cat[0]["sampleCount"].clone(), cat[0]["lastValue"].clone()),
        (json!(2), json!(7))
    );
    s.app.compact_now().unwrap();
    assert_eq!(c.points("p", "m").await, vec![(5000, 9.0), (6000, 7.0)]);
    assert_eq!(c.catalog("p").await[0]["sampleCount"], json!(2));
    s.stop().await;
}

#[tokio::test]
async fn latest_metric_name_and_unit_win_in_the_catalog() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    c.post(&key, &json!({"projectId": "p", "metrics": [{"metricId": "rev", "metricName": "Revenue", "value": 1, "unit": "USD", "timestamp": 10}]})).await;
    c.post(&key, &json!({"projectId": "p", "metrics": [{"metricId": "rev", "metricName": "Revenue (EUR)", "value": 2, "unit": "EUR", "timestamp": 5}]})).await;
    let cat = c.catalog("p").await;
    assert_eq!(
        (cat[0]["metricName"].clone(), cat[0]["unit"].clone()),
        (json!("Revenue (EUR)"), json!("EUR"))
    );
    // lastValue is the value at the latest timestamp, not the latest write.
    assert_eq!(
        (
            cat[0]["lastTimestamp"].clone(),
            cat[0]["lastValue"].clone(),
            cat[0]["firstTimestamp"].clone()
        ),
        (json!(10), json!(1), json!(5))
    );
    s.stop().await;
}

#[tokio::test]
async fn refuses_writes_while_compaction_is_far_behind_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // 16 samples may wait before writes are refused (the test compacts by hand).
    let s = Server::start_with(dir.path(), |c| c.max_pending_samples = 16).await;
    let c = s.client();
    let key = c.setup("p").await;
    let r = c
        .post(
            &key,
            &batch("p", (0..16).map(|i| metric("m", 1.0, i)).collect()),
        )
        .await;
    assert_eq!(r.status, 200);
    // The pending count is updated by the applier just after the 200; a read waits for it.
    assert_eq!(c.catalog("p").await.len(), 1);
    let r = c.post(&key, &batch("p", vec![metric("m", 1.0, 99)])).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("waiting for compaction"));
    s.app.compact_now().unwrap();
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m", 1.0, 99)]))
            .await
            .status,
        200
    );
    assert_eq!(c.points("p", "m").await.len(), 17);
    s.stop().await;
}
