//! Durability and read-back through restarts, compactions and concurrent writers.

use crate::support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn data_survives_restart_with_and_without_compaction() {
    let (dir, s, c, key) = Server::with_project("p").await;
    for i in 0..10 {
        let ms = (0..10)
            .map(|j| metric(&format!("m{j}"), (i * 10 + j) as f64, 1000 + i))
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    s.app.compact_now().unwrap();
    // More after the compaction: these stay in the journal until shutdown compacts them.
    for i in 10..15 {
        assert_eq!(
            c.post(&key, &batch("p", vec![metric("m0", i as f64, 1000 + i)]))
                .await
                .status,
            200
        );
    }
    let before = c.points("p", "m0").await;
    assert_eq!(before.len(), 15);
    s.stop().await;

    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(c.points("p", "m0").await, before);
    let cat = c.catalog("p").await;
    assert_eq!(cat.len(), 10);
    assert_eq!(cat[0]["sampleCount"], json!(15));
    assert_eq!(cat[1]["sampleCount"], json!(10));
    // The key still works after restart.
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m0", 0.5, 5)]))
            .await
            .status,
        200
    );
    assert_eq!(c.points("p", "m0").await[0], (5, 0.5));
    s.stop().await;
}

#[tokio::test]
async fn reads_merge_segments_and_journal_tail_in_order() {
    let (dir, s, c, key) = Server::with_project("p").await;
    let mut expected = std::collections::BTreeMap::new();
    // Interleave writes and compactions, with late (out-of-order) samples and overwrites.
    for round in 0..6i64 {
        let ms: Vec<_> = (0..50i64)
            .map(|i| {
                let ts = if round % 2 == 0 {
                    round * 1000 + i * 7
                } else {
                    (i * 131) % 6000
                };
                let v = (round * 100 + i) as f64;
                expected.insert(ts, v);
                metric("m", v, ts)
            })
            .collect();
        // Send one at a time so later values overwrite earlier ones deterministically.
        for m in ms {
            assert_eq!(c.post(&key, &batch("p", vec![m])).await.status, 200);
        }
        if round % 2 == 1 {
            s.app.compact_now().unwrap();
        }
    }
    let want: Vec<(i64, f64)> = expected.into_iter().collect();
    assert_eq!(c.points("p", "m").await, want);
    assert_eq!(c.catalog("p").await[0]["sampleCount"], json!(want.len()));

    // from/to/limit select a window, oldest first; truncated says more remain.
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?from=1000&to=2000&limit=3")
        .await;
    let pts: Vec<i64> = r.body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["timestamp"].as_i64().unwrap())
        .collect();
    let window: Vec<i64> = want
        .iter()
        .map(|p| p.0)
        .filter(|t| (1000..=2000).contains(t))
        .take(3)
        .collect();
    assert_eq!(pts, window);
    assert_eq!(r.body["truncated"], json!(true));
    s.stop().await;
    let s = Server::start(dir.path()).await;
    assert_eq!(s.client().points("p", "m").await, want);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_to_the_same_and_different_metrics() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut tasks = Vec::new();
    for w in 0..8i64 {
        let c = c.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40i64 {
                // Every writer writes "shared" (distinct timestamps per writer) and its own metric.
                let ms = vec![
                    metric("shared", w as f64, w * 1000 + i),
                    metric(&format!("own{w}"), i as f64, i),
                ];
                let r = c.post(&key, &batch("p", ms)).await;
                assert_eq!(r.status, 200, "{:?}", r.body);
            }
        }));
    }
    let app = s.app.clone();
    let compactor = tokio::task::spawn_blocking(move || {
        for _ in 0..5 {
            app.compact_now().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    for t in tasks {
        t.await.unwrap();
    }
    compactor.await.unwrap();
    let shared = c.points("p", "shared").await;
    assert_eq!(shared.len(), 8 * 40);
    for w in 0..8i64 {
        for i in 0..40i64 {
            assert!(shared.contains(&(w * 1000 + i, w as f64)));
        }
        assert_eq!(c.points("p", &format!("own{w}")).await.len(), 40);
    }
    let cat = c.catalog("p").await;
    assert_eq!(cat.len(), 9);
    assert!(cat
        .iter()
        .all(|m| m["sampleCount"] == json!(if m["metricId"] == "shared" { 320 } else { 40 })));
    s.stop().await;
}

#[tokio::test]
async fn a_newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    s.stop().await;
    // Rewrite the format version in the store to one this build does not know.
    {
        let db = redb::Database::open(dir.path().join("stathook.redb")).unwrap();
        let t: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        let txn = db.begin_write().unwrap();
        txn.open_table(t)
            .unwrap()
            .insert("format_version", 99u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let config =
        stathook::config::Config::new(dir.path().to_path_buf(), "127.0.0.1:0".parse().unwrap());
    let err = stathook::app::App::open(config).err().expect("must refuse");
    assert!(err.to_string().contains("upgrade stathook"), "{err}");
}

#[tokio::test]
async fn metric_ids_with_slashes_and_spaces_read_back() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let r = c.post(&key, &json!({"projectId": "p", "metrics": [{"metricId": "api/latency p99", "metricName": "L", "value": 3, "timestamp": 9}]})).await;
    assert_eq!(r.status, 200);
    assert_eq!(c.points("p", "api/latency p99").await, vec![(9, 3.0)]);
    s.stop().await;
}

#[tokio::test]
async fn paging_walks_a_multi_segment_history_merged_with_the_tail() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut expected = std::collections::BTreeMap::new();
    // 70,000 samples (a counter: every segment holds the most a segment may, 65,536): two
    // segments once compacted.
    for chunk in 0..700i64 {
        let ms: Vec<_> = (0..100i64)
            .map(|i| {
                let ts = (chunk * 100 + i) * 10;
                expected.insert(ts, ts as f64);
                metric("m", ts as f64, ts)
            })
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    s.app.compact_now().unwrap();
    assert_eq!(segment_counts(&s, "p", "m"), vec![65_536, 4_464]);
    // In the journal tail: overwrites inside both segments and late samples between them.
    let tail: Vec<(i64, f64)> = vec![
        (0, -1.0),
        (5, -2.0),
        (655_360, -3.0),
        (655_365, -4.0),
        (699_990, -5.0),
    ];
    for (ts, v) in &tail {
        expected.insert(*ts, *v);
        assert_eq!(
            c.post(&key, &batch("p", vec![metric("m", *v, *ts)]))
                .await
                .status,
            200
        );
    }
    let mut got = Vec::new();
    let mut from = 0i64;
    loop {
        let r = c
            .get(&format!(
                "/api/v1/projects/p/metrics/m/points?from={from}&limit=1000"
            ))
            .await;
        let pts = r.body["points"].as_array().unwrap();
        got.extend(pts.iter().map(|p| {
            (
                p["timestamp"].as_i64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        }));
        if r.body["truncated"] != json!(true) {
            break;
        }
        from = got.last().unwrap().0 + 1;
    }
    assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    s.stop().await;
}

/// The sample count of each of a metric's segments, oldest first.
fn segment_counts(s: &Server, project: &str, metric: &str) -> Vec<u32> {
    s.segments(project, metric)
        .iter()
        .map(|b| stathook::segment::read_summary(b).unwrap().count)
        .collect()
}

/// A metric that gains a few samples per compaction round keeps growing one segment (the
/// samples are appended to its last block), and reads back whole with the right count.
#[tokio::test]
async fn a_slowly_growing_metric_keeps_one_segment_across_rounds() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    let mut expected = Vec::new();
    // 1,500 samples first (a full block and a partial one), then 10 per round: the partial
    // block fills and a third block starts.
    for (round, n) in [1_500i64, 10, 10, 10, 600].into_iter().enumerate() {
        let base = expected.len() as i64;
        let ms: Vec<Value> = (base..base + n)
            .map(|i| {
                let (ts, v) = (i * 10_000, (i % 7) as f64);
                expected.push((ts, v));
                metric("m", v, ts)
            })
            .collect();
        for part in ms.chunks(100) {
            assert_eq!(c.post(&key, &batch("p", part.to_vec())).await.status, 200);
        }
        let stats = s.app.compact_now().unwrap();
        assert_eq!(stats.segments_written, 1, "round {round}");
        assert_eq!(segment_counts(&s, "p", "m"), vec![expected.len() as u32]);
    }
    assert_eq!(c.points("p", "m").await, expected);
    assert_eq!(
        c.catalog("p").await[0]["sampleCount"],
        json!(expected.len())
    );
    s.stop().await;
}

/// A 200 means readable: a read sent right after each acknowledgement sees the sample, even
/// though the memtable is filled by a separate thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_sample_is_readable_immediately() {
    let (_dir, s, c, key) = Server::with_project("p").await;
    // Background writers keep the applier busy with other metrics.
    let mut noise = Vec::new();
    for w in 0..2 {
        let (c, key) = (c.clone(), key.clone());
        noise.push(tokio::spawn(async move {
            for i in 0..100i64 {
                let ms = (0..100)
                    .map(|m| metric(&format!("noise{w}_{m}"), 1.0, i))
                    .collect();
                assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
            }
        }));
    }
    for i in 0..200i64 {
        assert_eq!(
            c.post(&key, &batch("p", vec![metric("probe", i as f64, i)]))
                .await
                .status,
            200
        );
        let r = c
            .get(&format!(
                "/api/v1/projects/p/metrics/probe/points?from={i}&to={i}"
            ))
            .await;
        assert_eq!(r.status, 200, "write {i} not readable: {:?}", r.body);
        assert_eq!(
            r.body["points"][0]["value"],
            json!(i),
            "write {i} not readable"
        );
    }
    for n in noise {
        n.await.unwrap();
    }
    s.stop().await;
}

/// A copy of the data dir `tests/data/NAME` in a temp dir (store, admin token, journal
/// files if any), and the webhook key it was written with.
fn copy_fixture(name: &str) -> (tempfile::TempDir, String) {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    for file in ["stathook.redb", "admin-token"] {
        std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap();
    }
    if let Ok(journal) = std::fs::read_dir(fixture.join("journal")) {
        std::fs::create_dir(dir.path().join("journal")).unwrap();
        for e in journal {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join("journal").join(e.file_name())).unwrap();
        }
    }
    let key = std::fs::read_to_string(fixture.join("api-key")).unwrap();
    (dir, key.trim().to_owned())
}

/// A data dir written by format version 1 must keep opening, with the same data.
#[tokio::test]
async fn format_v1_data_dir_still_opens() {
    let (dir, key) = copy_fixture("v1");

    let mut signups = vec![
        (1234567890000, 42.0),
        (1234567950000, 43.0),
        (1234568010000, 44.0),
    ];
    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(c.points("golden", "daily_signups").await, signups);
    let r = c
        .get("/api/v1/projects/golden/metrics/revenue/points")
        .await;
    assert_eq!(
        r.body["points"],
        json!([{"timestamp": 1234567890000i64, "value": 5}])
    );
    let cat = c.catalog("golden").await;
    assert_eq!(cat.len(), 2);
    assert_eq!(
        (cat[0]["metricId"].clone(), cat[0]["sampleCount"].clone()),
        (json!("daily_signups"), json!(3))
    );
    assert_eq!(
        (
            cat[1]["metricId"].clone(),
            cat[1]["sampleCount"].clone(),
            cat[1]["unit"].clone()
        ),
        (json!("revenue"), json!(1), json!("USD"))
    );
    // The old key still works.
    assert_eq!(
        c.post(
            &key,
            &batch("golden", vec![metric("daily_signups", 45.0, 1234568070000)])
        )
        .await
        .status,
        200
    );
    s.stop().await;
    // The stop compacted the new sample into the old segment, which moved it into a tail
    // pack (format 7); the older metric's segment stayed where format 1 put it.
    let s = Server::start(dir.path()).await;
    let c = s.client();
    signups.push((1234568070000, 45.0));
    assert_eq!(c.points("golden", "daily_signups").await, signups);
    assert_eq!(
        c.points("golden", "revenue").await,
        vec![(1234567890000, 5.0)]
    );
    s.stop().await;
    let (ok, report) = check(dir.path());
    assert!(ok, "{report}");
}

/// The three series of the format 7 fixture, as `tests/data/v7/README.md` describes them.
fn v7_fixture_series() -> Vec<(&'static str, Vec<(i64, f64)>)> {
    const T0: i64 = 1_700_000_000_000;
    let mut x: u64 = 88_172_645_463_325_252;
    let float = (0..3000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (T0 + i * 10_000, (x % 1_000_003) as f64 / 7.0)
        })
        .collect();
    let mut c = 1000.0;
    let counter = (0..3000)
        .map(|i| {
            c += ((i * 7919) % 6) as f64;
            (T0 + i * 10_000, c)
        })
        .collect();
    let small = (0..10).map(|i| (T0 + i * 60_000, i as f64 * 0.5)).collect();
    vec![("float", float), ("counter", counter), ("small", small)]
}

/// A data dir written by format version 7 (segment version 3, in `segments` and in a tail
/// pack) opens with the same data; new samples make compaction re-encode its segments as
/// version 4, which read back whole after a restart.
#[tokio::test]
async fn format_v7_data_dir_opens_and_its_segments_move_to_version_4() {
    old_fixture_opens_and_takes_new_samples("v7", "golden7").await;
}

/// A data dir written by format version 8 (segment version 4 with timestamps columns, a
/// version 1 tail pack, catalog rows with f64 last values) opens with the same data; new
/// samples rewrite its pack as version 2, which reads back whole after a restart.
#[tokio::test]
async fn format_v8_data_dir_opens_and_takes_new_samples() {
    old_fixture_opens_and_takes_new_samples("v8", "golden8").await;
}

/// The fixture `name` (the series of `v7_fixture_series` in `project`): read back, one
/// later sample each, a restart, read back again, `stathook check` clean.
async fn old_fixture_opens_and_takes_new_samples(name: &str, project: &str) {
    let (dir, key) = copy_fixture(name);
    let mut series = v7_fixture_series();

    let s = Server::start(dir.path()).await;
    let c = s.client();
    for (id, points) in &series {
        assert_eq!(&c.points(project, id).await, points, "{id}");
    }
    let cat = c.catalog(project).await;
    let counts: Vec<(Value, Value)> = cat
        .iter()
        .map(|m| (m["metricId"].clone(), m["sampleCount"].clone()))
        .collect();
    assert_eq!(
        counts,
        vec![
            (json!("counter"), json!(3000)),
            (json!("float"), json!(3000)),
            (json!("small"), json!(10))
        ]
    );
    // One later sample each: the stop's compaction appends it to the metric's last
    // segment, which re-encodes a version 3 segment whole.
    for (id, points) in &mut series {
        let next = (points.last().unwrap().0 + 10_000, 0.25);
        let body = batch(project, vec![metric(id, next.1, next.0)]);
        assert_eq!(c.post(&key, &body).await.status, 200);
        points.push(next);
    }
    s.stop().await;

    let s = Server::start(dir.path()).await;
    let c = s.client();
    for (id, points) in &series {
        assert_eq!(&c.points(project, id).await, points, "{id}");
    }
    s.stop().await;
    let (ok, report) = check(dir.path());
    assert!(ok, "{report}");
}

#[tokio::test]
async fn deleted_metrics_stay_deleted_through_restart() {
    let (dir, s, c, key) = Server::with_project("p").await;
    // Some samples compacted, some only in the journal.
    let post = |ms| {
        let (c, key) = (&c, &key);
        async move { assert_eq!(c.post(key, &batch("p", ms)).await.status, 200) }
    };
    post(vec![metric("gone", 1.0, 10), metric("kept", 1.0, 10)]).await;
    s.app.compact_now().unwrap();
    post(vec![metric("gone", 2.0, 20), metric("kept", 2.0, 20)]).await;
    let r = c.delete("/api/v1/projects/p/metrics/gone").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = c.delete("/api/v1/projects/p/metrics/gone").await;
    assert_eq!(r.status, 404);
    // Written again after the delete: a fresh metric with only the new sample.
    post(vec![metric("gone", 3.0, 30)]).await;
    assert_eq!(c.points("p", "gone").await, vec![(30, 3.0)]);
    let cat = c.catalog("p").await;
    assert_eq!(cat[0]["sampleCount"], json!(1));
    assert_eq!(cat[0]["firstTimestamp"], json!(30));
    s.stop().await;

    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(c.points("p", "gone").await, vec![(30, 3.0)]);
    assert_eq!(c.points("p", "kept").await, vec![(10, 1.0), (20, 2.0)]);
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_metric_does_not_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let key = c.setup("p").await;
    for i in 0..5 {
        let ms = vec![metric("m", i as f64, i), metric("other", i as f64, i)];
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    let r = c.delete("/api/v1/projects/p/metrics/m").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    child.kill();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let ids: Vec<Value> = c
        .catalog("p")
        .await
        .iter()
        .map(|m| m["metricId"].clone())
        .collect();
    assert_eq!(ids, vec![json!("other")]);
    let r = c.get("/api/v1/projects/p/metrics/m/points").await;
    assert_eq!(r.status, 404);
    child.terminate();
}

#[tokio::test]
async fn retention_drops_whole_old_segments_with_per_project_overrides() {
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.retention_ms = Some(30 * DAY)).await;
    let c = s.client();
    let key = c.setup("p").await;
    let key_q = c.setup("q").await;
    // q keeps everything, whatever the server default.
    let r = c
        .admin(
            reqwest::Method::PUT,
            "/api/v1/projects/q/retention",
            Some(json!({"retention": "forever"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let now = 8_000 * DAY;
    // 3 segments' worth per project at 1-hour spacing (a counter: its segments hold the
    // most samples a segment may, MAX_SEGMENT_SAMPLES): the oldest segments end far before
    // now - 30d, the newest reach now.
    let cap = stathook::segment::MAX_SEGMENT_SAMPLES as i64;
    // Whole requests of 100.
    let n = (2 * cap + 4_464) / 100 * 100;
    for (project, k) in [("p", &key), ("q", &key_q)] {
        for chunk in 0..n / 100 {
            let ms = (0..100)
                .map(|i| {
                    let j = chunk * 100 + i;
                    metric("m", j as f64, now - (n - 1 - j) * 3_600_000)
                })
                .collect();
            assert_eq!(c.post(k, &batch(project, ms)).await.status, 200);
        }
    }
    s.app.compact_now().unwrap();
    let removed = s.app.expire_now(now).unwrap();
    // Whole segments only: everything left starts no later than the cutoff's segment.
    assert!(removed >= cap as u64 && removed < n as u64, "{removed}");
    let cat = c.catalog("p").await;
    assert_eq!(cat[0]["sampleCount"], json!(n as u64 - removed));
    let first = cat[0]["firstTimestamp"].as_i64().unwrap();
    assert!(first <= now - 30 * DAY && first > now - 30 * DAY - cap * 3_600_000);
    let pts = c.points("p", "m").await;
    assert_eq!(pts.len() as u64, n as u64 - removed);
    assert_eq!(pts[0].0, first);
    assert_eq!(c.catalog("q").await[0]["sampleCount"], json!(n));
    s.stop().await;

    // Through restart, the expiry holds and the counts agree.
    let s = Server::start(dir.path()).await;
    let c = s.client();
    assert_eq!(
        c.catalog("p").await[0]["sampleCount"],
        json!(n as u64 - removed)
    );
    assert_eq!(c.points("p", "m").await.len() as u64, n as u64 - removed);
    s.stop().await;
}

#[tokio::test]
async fn the_data_dir_is_private_and_holds_no_secret_in_clear() {
    use std::os::unix::fs::PermissionsExt;
    // A data dir the server creates itself (a temp dir is 0700 already).
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data).await;
    let c = s.client();
    let key = c.setup("p").await;
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m", 1.0, 1)]))
            .await
            .status,
        200
    );
    let token = s.admin_token.clone();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let journal = data.join("journal");
    let journal_file = std::fs::read_dir(&journal)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&journal), 0o700);
    assert_eq!(mode(&journal_file), 0o600);
    assert_eq!(mode(&data.join("admin-token")), 0o600);
    // Read the journal now: the shutdown compaction deletes it.
    let journal_bytes = std::fs::read(&journal_file).unwrap();
    s.stop().await; // compacts: the key's hash and the sample are in the store file now
    let store_file = data.join("stathook.redb");
    assert_eq!(mode(&store_file), 0o600);
    // Neither the API key nor the admin token appears in any file but admin-token.
    for (name, bytes) in [
        ("store file", std::fs::read(&store_file).unwrap()),
        ("journal file", journal_bytes),
    ] {
        for secret in [&key, &token] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "the {name} holds a secret in clear"
            );
        }
    }
}

/// Writes 30 rounds to a fresh server, each followed by a compaction that rewrites every
/// metric's growing segment (copy-on-write leaves the old pages free), stops it cleanly and
/// returns the store file's size before and after the stop, and the data dir.
async fn store_size_after_rewrites(
    compact_on_close_max_bytes: u64,
) -> (u64, u64, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.compact_on_close_max_bytes = compact_on_close_max_bytes
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    for round in 0..30i64 {
        let ms = (0..100i64)
            .map(|i| {
                let v = (round * 1000 + i) as f64 + 0.25;
                let mut m = metric(&format!("m{}", i % 50), v, 1000 + round * 100 + i);
                // A distinct note per sample, so the live data outweighs redb's own pages.
                m["metadata"] = json!({"note": blake3::hash(&v.to_le_bytes()).to_hex().as_str()});
                m
            })
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
        s.app.compact_now().unwrap();
    }
    assert_eq!(c.points("p", "m7").await.len(), 60);
    let before = std::fs::metadata(dir.path().join("stathook.redb"))
        .unwrap()
        .len();
    s.stop().await;
    // The shutdown's last round compacted everything; the empty generation it opened left
    // no file behind.
    let journal: Vec<_> = std::fs::read_dir(dir.path().join("journal"))
        .unwrap()
        .collect();
    assert!(journal.is_empty(), "{journal:?}");
    let size = std::fs::metadata(dir.path().join("stathook.redb"))
        .unwrap()
        .len();
    (before, size, dir)
}

#[tokio::test]
async fn a_clean_shutdown_gives_back_the_free_pages_of_rewritten_segments() {
    // redb alone trims some free pages off the file's end at a clean close, how many
    // depending on where they lie (282–562 KB of 562 KB in 8 runs), so the baseline is the
    // same run's size before the stop; compacted, 201–234 KB.
    let (_, kept, _) = store_size_after_rewrites(0).await;
    let (before, compacted, dir) = store_size_after_rewrites(256 << 20).await;
    assert!(
        compacted < before / 2,
        "store file {compacted} bytes compacted at shutdown, {before} before the stop"
    );
    assert!(
        compacted <= kept,
        "store file {compacted} bytes compacted at shutdown, {kept} without"
    );
    // Everything is still there after the rewrite.
    let s = Server::start(dir.path()).await;
    let c = s.client();
    let points = c.points("p", "m7").await;
    assert_eq!(points.len(), 60);
    assert_eq!(points[0], (1007, 7.25));
    let cat = c.catalog("p").await;
    assert_eq!(cat.len(), 50);
    assert!(cat.iter().all(|m| m["sampleCount"] == json!(60)));
    s.stop().await;
}

/// The default syncs once per frame; `--fsync interval` syncs a written frame within the
/// interval even when no more writes come.
#[tokio::test]
async fn journal_syncs_every_frame_by_default_and_idle_frames_within_the_interval() {
    let (dir, s, c, key) = Server::with_project("p").await;
    for i in 0..10 {
        let r = c
            .post(&key, &batch("p", vec![metric("m", 1.0, 1000 + i)]))
            .await;
        assert_eq!(r.status, 200);
    }
    let st = c.get("/api/v1/admin/journal").await.body;
    assert_eq!(st["fsync"], "always");
    assert_eq!(st["fsyncIntervalMs"], Value::Null);
    // O_DIRECT exactly where the data dir's file system takes it.
    use std::os::unix::fs::OpenOptionsExt;
    let probe = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.path().join("o_direct-probe"))
        .is_ok();
    assert_eq!(st["directIo"], probe, "{st}");
    assert!(st["frames"].as_u64().unwrap() >= 10, "{st}");
    assert_eq!(st["syncs"], st["frames"], "{st}");
    s.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| {
        c.fsync = stathook::journal::Fsync::Interval(std::time::Duration::from_millis(100));
    })
    .await;
    let c = s.client();
    let key = c.setup("p").await;
    let r = c
        .post(&key, &batch("p", vec![metric("m", 1.0, 1000)]))
        .await;
    assert_eq!(r.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let st = c.get("/api/v1/admin/journal").await.body;
        assert_eq!(st["fsync"], "interval");
        assert_eq!(
            st["directIo"], false,
            "interval mode writes through the page cache"
        );
        if st["syncs"].as_u64().unwrap() >= 1 {
            assert!(st["frames"].as_u64().unwrap() >= 1, "{st}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sync 10 s after a write with a 100 ms interval: {st}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        c.post_raw(&key, "").await.status,
        400,
        "still serving after the interval sync"
    );
    s.stop().await;
}

/// 400 metrics whose last segments fill several tail packs (each sample carries a distinct
/// note, so a tail is ~0.6 KB and the 400 take ~8 packs of 32 KiB): rounds of writes with compactions between, deletions in
/// the middle of packs, a round that writes only every third metric (packs no edit
/// touches stay as they are), then a restart. Every metric reads back exactly what was
/// acknowledged, `stathook check` passes, and the tails really are spread over many packs.
#[tokio::test]
async fn many_metrics_share_tail_packs_through_rounds_deletes_and_restart() {
    let (dir, s, c, key) = Server::with_project("p").await;
    let mut expected: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    for round in 0..3i64 {
        for ts in round * 10..round * 10 + 10 {
            for chunk in 0..4i64 {
                let ms = (chunk * 100..chunk * 100 + 100)
                    .filter(|id| round < 2 || id % 3 == 0)
                    .map(|id| {
                        let name = format!("m{id:03}");
                        let v = (id * 1000 + ts) as f64 / 4.0;
                        expected.entry(name.clone()).or_default().push((ts, v));
                        let mut m = metric(&name, v, ts);
                        let note = blake3::hash(format!("{id}/{ts}").as_bytes());
                        m["metadata"] = json!({"note": &note.to_hex()[..40]});
                        m
                    })
                    .collect();
                assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
            }
        }
        s.app.compact_now().unwrap();
        if round == 0 {
            for id in (150..250).step_by(2) {
                let r = c
                    .delete(&format!("/api/v1/projects/p/metrics/m{id:03}"))
                    .await;
                assert_eq!(r.status, 200, "{:?}", r.body);
                expected.remove(&format!("m{id:03}"));
            }
        }
    }
    let check_all = |c: Client, expected: std::collections::BTreeMap<String, Vec<(i64, f64)>>| async move {
        for id in 0..400 {
            let name = format!("m{id:03}");
            let want = expected.get(&name).cloned().unwrap_or_default();
            let r = c
                .get(&format!(
                    "/api/v1/projects/p/metrics/{name}/points?limit=1000"
                ))
                .await;
            if want.is_empty() {
                assert_eq!(r.status, 404, "{name}: {:?}", r.body);
            } else {
                assert_eq!(points_of(&r), want, "{name}");
            }
        }
    };
    check_all(c.clone(), expected.clone()).await;
    s.stop().await;

    let (ok, report) = check(dir.path());
    assert!(ok, "{report}");
    let packs = {
        use redb::ReadableTableMetadata;
        let db = redb::Database::open(dir.path().join("stathook.redb")).unwrap();
        let t: redb::TableDefinition<(&str, &str), &[u8]> = redb::TableDefinition::new("tails");
        let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
        txn.open_table(t).unwrap().len().unwrap()
    };
    assert!(packs >= 5, "{packs} packs");

    let s = Server::start(dir.path()).await;
    check_all(s.client(), expected).await;
    s.stop().await;
}
