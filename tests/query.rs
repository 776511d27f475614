//! Queries through a real server: every aggregation against a naive reference over random
//! data spread across segments and the journal tail, multi-metric alignment, metadata
//! filters, CSV, parameter errors and read-key scopes.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// xorshift64*: deterministic data without a dependency; the seed is printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const AGGS: [&str; 11] = [
    "avg", "min", "max", "sum", "count", "first", "last", "p50", "p90", "p95", "p99",
];

/// The obvious definition, over samples sorted by timestamp.
fn reference(agg: &str, values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |q: f64| {
        let rank = q * (n - 1.0);
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
    };
    match agg {
        "avg" => values.iter().sum::<f64>() / n,
        "min" => sorted[0],
        "max" => sorted[sorted.len() - 1],
        "sum" => values.iter().sum(),
        "count" => n,
        "first" => values[0],
        "last" => values[values.len() - 1],
        "p50" => q(0.5),
        "p90" => q(0.9),
        "p95" => q(0.95),
        "p99" => q(0.99),
        _ => unreachable!(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test]
async fn every_aggregation_matches_a_naive_reference_across_segments_and_journal() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let seed = 0x5eed_0001u64;
    let mut rng = Rng(seed);
    // ts → (value, region): the model, last write wins.
    let mut model: BTreeMap<i64, (f64, &str)> = BTreeMap::new();
    let span = 40_000i64;
    // 130 requests × 100 samples = 13,000 writes over 40,000 ms (~11,000 distinct
    // timestamps: two segments, so buckets straddle a segment boundary), with overwrites and
    // late samples; compactions in between put some in segments, some in the journal tail,
    // and some overwrites of compacted samples back in the tail.
    for req in 0..130 {
        let mut seen = std::collections::HashSet::new();
        let ms: Vec<Value> = (0..100)
            .filter_map(|_| {
                let ts = rng.below(span as u64) as i64;
                if !seen.insert(ts) {
                    return None; // one request holds each timestamp once
                }
                let value = match rng.below(3) {
                    0 => rng.below(1000) as f64,
                    1 => (rng.below(100_000) as f64) / 100.0 - 500.0,
                    _ => 7.0,
                };
                let region = if rng.below(2) == 0 { "eu" } else { "us" };
                model.insert(ts, (value, region));
                Some(json!({"metricId": "m", "metricName": "M", "value": value,
                    "timestamp": ts, "metadata": {"region": region}}))
            })
            .collect();
        let r = c.post(&key, &batch("p", ms)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        if req % 17 == 3 {
            s.app.compact_now().unwrap();
        }
    }
    s.app.journal.wait_applied();
    let segments = {
        let mut n = 0;
        s.app
            .store
            .scan_segments::<stathook::store::StoreError>("p", "m", 0, span, &mut |_, _| {
                n += 1;
                Ok(true)
            })
            .unwrap();
        n
    };
    assert!(
        segments >= 2,
        "{segments} segment(s): no segment boundary to straddle"
    );

    for round in 0..12 {
        let from = rng.below(span as u64 / 2) as i64;
        let to = from + rng.below(span as u64) as i64;
        let step = [1i64, 97, 1000, 4096, 25_000][rng.below(5) as usize];
        let filter = (round % 3 == 0).then_some("eu");
        for agg in AGGS {
            let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for (ts, (v, region)) in model.range(from..=to) {
                if filter.is_none_or(|f| f == *region) {
                    buckets
                        .entry(ts.div_euclid(step) * step)
                        .or_default()
                        .push(*v);
                }
            }
            let want: Vec<(i64, f64)> = buckets
                .iter()
                .map(|(b, vs)| (*b, reference(agg, vs)))
                .collect();
            let mut path = format!(
                "/api/v1/projects/p/metrics/m/points?from={from}&to={to}&step={step}&agg={agg}"
            );
            if let Some(f) = filter {
                path.push_str(&format!("&where=metadata.region:{f}"));
            }
            let got = points_of(&c.get(&path).await);
            assert_eq!(got.len(), want.len(), "seed {seed} {path}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && close(g.1, w.1),
                    "seed {seed} {path}: {g:?} vs {w:?}"
                );
            }
        }
    }

    // Edge ranges: empty, a single point, and results that are always finite numbers.
    let (one_ts, one) = model.iter().next().map(|(t, v)| (*t, v.0)).unwrap();
    for agg in AGGS {
        let r = c
            .get(&format!(
                "/api/v1/projects/p/metrics/m/points?from={}&to={}&step=1s&agg={agg}",
                span + 1,
                span + 10
            ))
            .await;
        assert_eq!(points_of(&r), vec![], "{agg}: empty range");
        let r = c
            .get(&format!(
                "/api/v1/projects/p/metrics/m/points?from={one_ts}&to={one_ts}&agg={agg}"
            ))
            .await;
        let want = if agg == "count" { 1.0 } else { one };
        assert_eq!(points_of(&r), vec![(one_ts, want)], "{agg}: single point");
        let r = c
            .get(&format!(
                "/api/v1/projects/p/metrics/m/points?maxPoints=50&agg={agg}"
            ))
            .await;
        assert!(points_of(&r).iter().all(|p| p.1.is_finite()), "{agg}");
    }

    // The whole range in one bucket, with agg only.
    let all: Vec<f64> = model.values().map(|v| v.0).collect();
    let got = points_of(&c.get("/api/v1/projects/p/metrics/m/points?agg=sum").await);
    assert_eq!(got.len(), 1);
    assert!(close(got[0].1, reference("sum", &all)));

    // Raw points with a filter are exactly the model's matching samples.
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?limit=100000&where=metadata.region:us")
        .await;
    let raw: Vec<i64> = r.body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["metadata"]["region"], "us");
            p["timestamp"].as_i64().unwrap()
        })
        .collect();
    let want: Vec<i64> = model
        .iter()
        .filter(|(_, (_, r))| *r == "us")
        .map(|(ts, _)| *ts)
        .collect();
    assert_eq!(raw, want);
    s.stop().await;
}

#[tokio::test]
async fn whole_blocks_are_answered_from_their_summaries() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    // 70,000 samples 10 s apart: several segments (cut to fill a page each) of blocks of
    // 1024.
    for chunk in 0..700i64 {
        let ms = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                json!({"metricId": "m", "metricName": "M", "value": n % 17, "timestamp": n * 10_000})
            })
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    s.app.compact_now().unwrap();
    // The layout the compactor chose: each segment's blocks as (first, last timestamp).
    let layout: Vec<Vec<(i64, i64)>> = s
        .segments("p", "m")
        .iter()
        .map(|b| {
            let blocks = stathook::segment::blocks(b).unwrap();
            blocks
                .iter()
                .map(|x| (x.summary.min_ts, x.summary.max_ts))
                .collect()
        })
        .collect();
    assert!(layout.len() >= 2, "{layout:?}");
    // Blocks of 1024 samples 10 s apart, the last of each segment possibly shorter.
    for blocks in &layout {
        for (first, last) in &blocks[..blocks.len() - 1] {
            assert_eq!(last - first, 1023 * 10_000);
        }
    }
    let plan = |step: &str, agg: &str| {
        let params = stathook::query::Params {
            step: Some(step),
            agg: Some(agg),
            from: Some("0"),
            to: Some("699999999"),
            ..Default::default()
        };
        stathook::query::Plan::parse(&params, 0, None).unwrap()
    };
    // The HTTP layer waits for the journal's applier before reading; so must a direct call.
    let run = |p| {
        s.app.journal.wait_applied();
        stathook::query::run(&s.app.store, &s.app.memtable, "p", "m", &p).unwrap()
    };
    // One bucket for all: every segment folds from its own summary, no block is read.
    let (avg, stats) = run(plan("1y", "avg"));
    assert_eq!(stats.blocks_decoded, 0, "{stats:?}");
    assert_eq!(stats.blocks_summarized, 0, "{stats:?}");
    assert_eq!(stats.segments_summarized, layout.len() as u64, "{stats:?}");
    // Buckets of a day (8,640 samples): a segment inside one day folds whole; in the others
    // a block inside one day folds from its summary and a block across a day's edge is
    // decoded. The sums agree.
    let day = |ts: i64| ts / 86_400_000;
    let mut expected = (0u64, 0u64, 0u64);
    for blocks in &layout {
        if day(blocks[0].0) == day(blocks[blocks.len() - 1].1) {
            expected.0 += 1;
            continue;
        }
        for (first, last) in blocks {
            match day(*first) == day(*last) {
                true => expected.1 += 1,
                false => expected.2 += 1,
            }
        }
    }
    assert!(
        expected.2 >= 7,
        "every day's edge cuts a block: {expected:?}"
    );
    let (daily, stats) = run(plan("1d", "sum"));
    assert_eq!(
        (
            stats.segments_summarized,
            stats.blocks_summarized,
            stats.blocks_decoded
        ),
        expected,
        "{stats:?}"
    );
    let stathook::query::SeriesResult::Buckets(daily) = daily else {
        panic!()
    };
    let day_sum = |d: i64| -> f64 {
        (0..70_000i64)
            .filter(|n| n * 10_000 / 86_400_000 == d)
            .map(|n| (n % 17) as f64)
            .sum()
    };
    assert_eq!(daily.len(), 9);
    for (i, (_, v)) in daily.iter().enumerate() {
        assert_eq!(*v, day_sum(i as i64), "day {i}");
    }
    // Quantiles need the values: every block is decoded, and the answers agree.
    let (p50, stats) = run(plan("1y", "p50"));
    assert_eq!(stats.blocks_summarized, 0, "{stats:?}");
    let sum: i64 = (0..70_000i64).map(|n| n % 17).sum();
    let stathook::query::SeriesResult::Buckets(avg) = avg else {
        panic!()
    };
    assert!(close(avg[0].1, sum as f64 / 70_000.0), "{avg:?}");
    let stathook::query::SeriesResult::Buckets(p50) = p50 else {
        panic!()
    };
    assert_eq!(p50[0].1, 8.0);

    // A late write into the middle of a block: that block is decoded and merged, the others
    // still fold from summaries, and the answer includes the overwrite.
    let r = c
        .post(
            &key,
            &batch(
                "p",
                vec![
                    json!({"metricId": "m", "metricName": "M", "value": 1000, "timestamp": 50_000}),
                ],
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let (res, stats) = run(plan("1y", "sum"));
    assert_eq!(stats.blocks_decoded, 1, "{stats:?}");
    // The late write's segment goes block by block; the others still fold whole.
    assert_eq!(
        stats.segments_summarized,
        layout.len() as u64 - 1,
        "{stats:?}"
    );
    assert_eq!(
        stats.blocks_summarized,
        layout[0].len() as u64 - 1,
        "{stats:?}"
    );
    let stathook::query::SeriesResult::Buckets(b) = res else {
        panic!()
    };
    assert_eq!(b[0].1, (sum - 5 + 1000) as f64);
    s.stop().await;
}

#[tokio::test]
async fn several_metrics_share_aligned_buckets() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let ms = vec![
        metric("a", 1.0, 60_000),
        metric("a", 3.0, 61_000),
        metric("b", 10.0, 60_500),
        metric("b", 20.0, 180_000),
    ];
    assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    let r = c
        .get("/api/v1/projects/p/query?metricIds=a,b&from=0&to=200000&step=1m&agg=avg")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["timestamps"], json!([60_000, 180_000]));
    assert_eq!(r.body["step"], json!(60_000));
    assert_eq!(r.body["agg"], json!("avg"));
    assert_eq!(r.body["series"][0]["metricId"], json!("a"));
    assert_eq!(r.body["series"][0]["values"], json!([2, null]));
    assert_eq!(r.body["series"][1]["values"], json!([10, 20]));

    // Raw mode returns each series' points.
    let r = c
        .get("/api/v1/projects/p/query?metricIds=a&metricIds=b")
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["series"][1]["points"][1]["value"], json!(20));

    // CSV, by parameter and by Accept header.
    let text = |path: &str, accept: Option<&str>| {
        let mut req = c
            .http
            .get(format!("{}{path}", c.url))
            .bearer_auth(&c.admin_token);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert!(resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"));
            resp.text().await.unwrap()
        }
    };
    assert_eq!(
        text(
            "/api/v1/projects/p/query?metricIds=a,b&from=0&to=200000&step=1m&format=csv",
            None
        )
        .await,
        "timestamp,a,b\n60000,2,10\n180000,,20\n"
    );
    assert_eq!(
        text("/api/v1/projects/p/metrics/a/points", Some("text/csv")).await,
        "timestamp,value,metadata\n60000,1,\n61000,3,\n"
    );

    // Unknown metric and missing ids are clear errors.
    let r = c.get("/api/v1/projects/p/query?metricIds=a,zzz").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"].as_str().unwrap().contains("zzz"));
    let r = c.get("/api/v1/projects/p/query").await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("metricIds"));
    s.stop().await;
}

#[tokio::test]
async fn max_points_bounds_the_answer_and_bad_parameters_are_named() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let ms = (0..100).map(|i| metric("m", i as f64, i * 1000)).collect();
    assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?maxPoints=7&agg=count")
        .await;
    let pts = points_of(&r);
    assert!(pts.len() <= 7 && !pts.is_empty(), "{pts:?}");
    assert_eq!(r.body.get("truncated"), None, "only raw answers can be cut");
    assert_eq!(pts.iter().map(|p| p.1).sum::<f64>(), 100.0);
    // Relative times: the data is in 1970, so the last hour holds nothing.
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?from=-1h&to=now&step=1m&agg=sum")
        .await;
    assert_eq!(points_of(&r), vec![]);

    for (query, names) in [
        ("from=yesterday", "from"),
        ("to=x", "to"),
        ("step=fast", "step"),
        ("agg=mode", "agg"),
        ("maxPoints=0", "maxPoints"),
        ("limit=-1", "limit"),
        ("where=region:eu", "where"),
        ("format=xml", "format"),
        ("from=10&to=5", "from"),
        ("from=0&to=9999999999&step=1", "buckets"),
        ("form=-7d", "unknown query parameter \"form\""),
    ] {
        let r = c
            .get(&format!("/api/v1/projects/p/metrics/m/points?{query}"))
            .await;
        assert_eq!(r.status, 400, "{query}: {:?}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains(names),
            "{query}: {:?}",
            r.body
        );
    }
    // A misspelt parameter on the several-metrics query too; `_` (a cache-buster) is fine.
    let r = c.get("/api/v1/projects/p/query?metricIds=m&stpe=1m").await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("\"stpe\""));
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?limit=1&_=1795840000000")
        .await;
    assert_eq!((r.status, points_of(&r).len()), (200, 1), "{:?}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn read_keys_query_their_project_only_and_cannot_write() {
    let (_dir, s, c, ingest_key) = Server::with_project("a").await;
    c.setup("b").await;
    assert_eq!(
        c.post(&ingest_key, &batch("a", vec![metric("m", 1.0, 5)]))
            .await
            .status,
        200
    );
    let r = c
        .admin(
            Method::POST,
            "/api/v1/projects/a/keys",
            Some(json!({"scope": "read", "name": "grafana"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let read_key = r.body["apiKey"].as_str().unwrap().to_owned();
    let read_id = r.body["webhook"]["id"].as_str().unwrap().to_owned();
    assert!(read_id.starts_with("rk_"));
    assert_eq!(r.body["webhook"]["scope"], "read");

    let as_key = |key: &str, method: Method, path: &str| {
        let req = c
            .http
            .request(method, format!("{}{path}", c.url))
            .bearer_auth(key);
        c.send(req)
    };
    for path in [
        "/api/v1/projects/a/metrics",
        "/api/v1/projects/a/metrics/m/points",
        "/api/v1/projects/a/query?metricIds=m&agg=sum",
    ] {
        let r = as_key(&read_key, Method::GET, path).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        // An ingest key cannot read.
        let r = as_key(&ingest_key, Method::GET, path).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body["error"].as_str().unwrap().contains("read key"));
    }
    // Not another project's data, not admin endpoints.
    let r = as_key(&read_key, Method::GET, "/api/v1/projects/b/metrics").await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"]
        .as_str()
        .unwrap()
        .contains("another project"));
    let r = as_key(&read_key, Method::GET, "/api/v1/projects").await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"].as_str().unwrap().contains("admin token"));
    // Not the webhook.
    let r = c
        .post(&read_key, &batch("a", vec![metric("m", 2.0, 6)]))
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body["error"].as_str().unwrap().contains("read key"));
    assert_eq!(c.points("a", "m").await, vec![(5, 1.0)]);
    // Listed with its scope; revoked, it stops working.
    let r = c.get("/api/v1/projects/a/keys").await;
    assert_eq!(r.body["keys"].as_array().unwrap().len(), 2);
    let r = c.get("/api/v1/webhooks?projectId=a").await;
    assert_eq!(r.body["webhooks"].as_array().unwrap().len(), 1);
    let r = c
        .admin(
            Method::POST,
            &format!("/api/v1/webhooks/{read_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = as_key(&read_key, Method::GET, "/api/v1/projects/a/metrics").await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test]
async fn limit_all_streams_every_point_as_csv_or_json() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    // 30,000 samples (more than one export chunk and one send buffer), half compacted, some
    // with metadata that needs CSV quoting.
    for chunk in 0..300i64 {
        let ms = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                let mut m = metric("m", n as f64 / 4.0, n * 1000);
                if n % 3 == 0 {
                    m["metadata"] = json!({"note": "a, \"quoted\" note"});
                }
                m
            })
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
        if chunk == 150 {
            s.app.compact_now().unwrap();
        }
    }
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("other", 1.0, 5)]))
            .await
            .status,
        200
    );
    let text = |path: String| {
        let req = c
            .http
            .get(format!("{}{path}", c.url))
            .bearer_auth(&c.admin_token);
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let paged = c.points("p", "m").await;
    assert_eq!(paged.len(), 30_000);

    let csv = text("/api/v1/projects/p/metrics/m/points?limit=all&format=csv".into()).await;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "timestamp,value,metadata");
    assert_eq!(rows.len(), 30_001);
    assert_eq!(rows[1], r#"0,0,"{""note"":""a, \""quoted\"" note""}""#);
    assert_eq!(rows[2], "1000,0.25,");
    assert_eq!(rows[30_000], "29999000,7499.75,");

    let body = text("/api/v1/projects/p/metrics/m/points?limit=all".into()).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["metricId"], "m");
    assert_eq!(v["truncated"], false);
    assert_eq!(points_in(&v), paged);
    assert_eq!(v["points"][0]["metadata"]["note"], "a, \"quoted\" note");

    // Several metrics: CSV in long form; JSON is refused with a pointer to CSV.
    let csv =
        text("/api/v1/projects/p/query?metricIds=other,m&limit=all&format=csv&to=2000".into())
            .await;
    assert_eq!(
        csv,
        "metricId,timestamp,value,metadata\nother,5,1,\nm,0,0,\"{\"\"note\"\":\"\"a, \\\"\"quoted\\\"\" note\"\"}\"\nm,1000,0.25,\nm,2000,0.5,\n"
    );
    let r = c
        .get("/api/v1/projects/p/query?metricIds=other,m&limit=all")
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("format=csv"));
    s.stop().await;
}
