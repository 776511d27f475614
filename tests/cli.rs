//! The management CLI as a thin client of the admin API, against a real server process.

use crate::support::*;
use std::process::Command;

pub(crate) fn stathook(
    args: &[&str],
    server: &str,
    data_dir: &std::path::Path,
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(args)
        .args(["--server", server, "--data-dir"])
        .arg(data_dir)
        .env_remove("STATHOOK_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

pub(crate) fn value_of<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {out:?}"))
        .trim()
}

#[tokio::test]
async fn project_webhook_and_key_commands() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let url = child.url.clone();
    let d = dir.path();

    let (ok, out, _) = stathook(
        &["project", "create", "--name", "Demo", "--tier", "pro"],
        &url,
        d,
    );
    assert!(ok);
    let project = value_of(&out, "Project ID:").to_owned();
    assert!(project.starts_with("prj_"));
    let (ok, out, _) = stathook(&["project", "list"], &url, d);
    assert!(
        ok && out.contains(&project) && out.contains("Demo") && out.contains("pro"),
        "{out}"
    );
    let (ok, out, err) = stathook(
        &[
            "project",
            "set-labels",
            "--project",
            &project,
            "host",
            "region",
        ],
        &url,
        d,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("Project {project}: metadata labels host, region")
    );
    let (ok, _, err) = stathook(
        &["project", "set-labels", "--project", &project, "bad-key"],
        &url,
        d,
    );
    assert!(!ok && err.contains("labelKeys[0]"), "{err}");

    let (ok, out, err) = stathook(
        &[
            "webhook",
            "create",
            "--project",
            &project,
            "--name",
            "Cron Job Metrics",
        ],
        &url,
        d,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "three lines like the spec's Step 2: {out}");
    assert_eq!(lines[0], format!("Webhook URL: {url}/api/webhooks/custom"));
    assert_eq!(lines[2], format!("Project ID: {project}"));
    let key = value_of(&out, "API Key:").to_owned();
    let webhook = err.split_whitespace().nth(2).unwrap().to_owned();
    assert!(webhook.starts_with("wh_"), "{err}");

    let c = child.client();
    let body = batch(&project, vec![metric("daily_signups", 42.0, 1234567890000)]);
    assert_eq!(c.post(&key, &body).await.status, 200);

    let (ok, out, _) = stathook(&["webhook", "list"], &url, d);
    assert!(
        ok && out.contains(&webhook) && out.contains("active") && !out.contains(&key),
        "{out}"
    );

    let (ok, out, _) = stathook(&["key", "rotate", "--webhook", &webhook], &url, d);
    assert!(ok);
    let key2 = value_of(&out, "API Key:").to_owned();
    assert_eq!(c.post(&key, &body).await.status, 401);
    assert_eq!(c.post(&key2, &body).await.status, 200);

    // With a grace period the old key keeps working, and the CLI says until when.
    let (ok, out, err) = stathook(
        &["key", "rotate", "--webhook", &webhook, "--grace", "10m"],
        &url,
        d,
    );
    assert!(ok, "{err}");
    let key3 = value_of(&out, "API Key:").to_owned();
    assert!(
        err.contains(&format!("The old key {}", &key2[..12])) && err.contains("until"),
        "{err}"
    );
    assert_eq!(c.post(&key2, &body).await.status, 200);
    assert_eq!(c.post(&key3, &body).await.status, 200);
    let (ok, _, err) = stathook(
        &["key", "rotate", "--webhook", &webhook, "--grace", "forever"],
        &url,
        d,
    );
    assert!(!ok && err.contains("grace must be a duration"), "{err}");

    // Usage: the 200s and the 401 above, by key.
    let (ok, out, err) = stathook(&["webhook", "usage", &webhook], &url, d);
    assert!(ok, "{err}");
    assert!(out.contains("Accepted requests: 4"), "{out}");
    assert!(out.contains("Samples stored: 4"), "{out}");
    assert!(out.contains("Rejected requests: 1 (auth 1,"), "{out}");
    assert!(out.contains("from 127.0.0.1"), "{out}");
    assert!(out.contains("HOUR (UTC)"), "{out}");
    let (ok, out, _) = stathook(&["webhook", "usage", &webhook, "--json"], &url, d);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(ok && v["samplesStored"] == 4, "{out}");
    // The listing: key prefix, age and last use.
    let (ok, out, _) = stathook(&["webhook", "list"], &url, d);
    let row = out.lines().find(|l| l.contains(&webhook)).unwrap();
    assert!(
        ok && row.contains(&key3[..12]) && row.contains(" 0d ") && row.contains("Z "),
        "{out}"
    );

    let (ok, _, _) = stathook(&["key", "revoke", "--webhook", &webhook], &url, d);
    assert!(ok);
    assert_eq!(c.post(&key2, &body).await.status, 401);
    assert_eq!(c.post(&key3, &body).await.status, 401);

    // Errors come back as a message and exit code 1.
    let (ok, _, err) = stathook(
        &["webhook", "create", "--project", "nope", "--name", "x"],
        &url,
        d,
    );
    assert!(
        !ok && err.contains("404") && err.contains("not found"),
        "{err}"
    );

    assert!(child.terminate().success());
    // Offline check of a healthy data dir.
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["check", "--data-dir"])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("segments: 1 checked, 0 damaged"));
}

#[tokio::test]
async fn check_reports_a_damaged_journal_tail() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &["--compact-interval-secs", "3600"]);
    let c = child.client();
    let key = c.setup("p").await;
    for i in 0..5 {
        assert_eq!(
            c.post(&key, &batch("p", vec![metric("m", i as f64, i)]))
                .await
                .status,
            200
        );
    }
    child.kill();
    // Tear the last frame of the journal as a crash mid-write would: its last bytes never
    // reached the disk, so they are still the file's zero fill.
    let journal = dir.path().join("journal");
    let file = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    for b in &mut bytes[end - 3..end] {
        *b = 0;
    }
    std::fs::write(&file, &bytes).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["check", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("DAMAGED")
            && stdout.contains("checksum mismatch")
            && stdout.contains("bytes after it would be dropped"),
        "{stdout}"
    );

    // Recovery keeps the four whole records and drops the torn one.
    let child = Child::start(dir.path(), &[]);
    assert_eq!(
        child.client().points("p", "m").await,
        vec![(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    );
    child.kill();
}

#[tokio::test]
async fn a_lost_admin_token_can_be_reset_offline() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let old = child.admin_token.clone();
    assert!(child.terminate().success());
    std::fs::remove_file(dir.path().join("admin-token")).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["admin-token", "reset", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = Child::start(dir.path(), &[]);
    assert_ne!(child.admin_token, old);
    let c = child.client();
    assert_eq!(c.get("/api/v1/projects").await.status, 200);
    assert_eq!(
        c.send(
            c.http
                .get(format!("{}/api/v1/projects", c.url))
                .bearer_auth(&old)
        )
        .await
        .status,
        401
    );
    // While the server runs, the store is locked and the reset refuses.
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["admin-token", "reset", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    child.kill();
}

/// `stathook query` prints every value exactly as stored, whatever the output format: these
/// two were printed one unit in the last place off (…72) in JSON and table output while the
/// CLI parsed the server's JSON without serde_json's `float_roundtrip`.
#[tokio::test]
async fn query_prints_values_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let key = c.setup("fp").await;
    let ms = vec![
        metric("m", 90661.28571428571, 1_000),
        metric("m", 126471.28571428571, 2_000),
    ];
    assert_eq!(c.post(&key, &batch("fp", ms)).await.status, 200);
    for format in ["json", "table", "csv"] {
        let args = [
            "query",
            "--project",
            "fp",
            "--metric",
            "m",
            "--from",
            "0",
            "--to",
            "3000",
            "--format",
            format,
        ];
        let (ok, out, err) = stathook(&args, &child.url, dir.path());
        assert!(ok, "{err}");
        for v in ["90661.28571428571", "126471.28571428571"] {
            assert!(out.contains(v), "{format}: {v} not in {out}");
        }
    }
    child.kill();
}

#[tokio::test]
async fn query_read_key_and_metric_delete_commands() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let (url, d) = (child.url.clone(), dir.path());
    let c = child.client();
    let key = c.setup("shop").await;
    let ms = vec![
        metric("daily_signups", 3.0, 3_600_000),
        metric("daily_signups", 5.0, 3_660_000),
        metric("daily_signups", 7.0, 7_200_000),
        metric("refunds", 1.0, 3_600_000),
    ];
    assert_eq!(c.post(&key, &batch("shop", ms)).await.status, 200);

    let q = |extra: &[&str]| {
        let mut args = vec![
            "query",
            "--project",
            "shop",
            "--from",
            "0",
            "--to",
            "10000000",
        ];
        args.extend_from_slice(extra);
        stathook(&args, &url, d)
    };
    let (ok, out, err) = q(&[
        "--metric",
        "daily_signups",
        "--step",
        "1h",
        "--agg",
        "sum",
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "timestamp,value\n3600000,8\n7200000,7\n");
    let (ok, out, err) = q(&[
        "--metric",
        "daily_signups,refunds",
        "--step",
        "1h",
        "--agg",
        "max",
    ]);
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["TIMESTAMP", "daily_signups", "refunds"]);
    assert_eq!(rows[1], ["3600000", "5", "1"]);
    assert_eq!(rows[2], ["7200000", "7", "-"]);
    let (ok, out, _) = q(&[
        "--metric",
        "daily_signups",
        "--format",
        "json",
        "--limit",
        "2",
    ]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["truncated"], true);
    let (ok, _, err) = q(&["--metric", "daily_signups", "--agg", "median-ish"]);
    assert!(!ok && err.contains("agg must be one of"), "{err}");

    // A read key from the CLI queries with --key.
    let (ok, out, err) = stathook(
        &["key", "create", "--project", "shop", "--scope", "read"],
        &url,
        d,
    );
    assert!(ok, "{err}");
    let read_key = value_of(&out, "API Key:").to_owned();
    assert_eq!(value_of(&out, "Scope:"), "read");
    let (ok, out, err) = q(&["--metric", "refunds", "--key", &read_key, "--format", "csv"]);
    assert!(ok, "{err}");
    assert_eq!(out, "timestamp,value,metadata\n3600000,1,\n");
    let (ok, out, _) = stathook(&["key", "list", "--project", "shop"], &url, d);
    assert!(
        ok && out.contains("read") && out.contains("ingest"),
        "{out}"
    );

    // Delete a metric: gone from the catalog and the query; the other stays.
    let (ok, out, err) = stathook(
        &[
            "metric",
            "delete",
            "--project",
            "shop",
            "--metric",
            "daily_signups",
        ],
        &url,
        d,
    );
    assert!(ok && out.contains("Deleted"), "{err}");
    let ids: Vec<String> = c
        .catalog("shop")
        .await
        .iter()
        .map(|m| m["metricId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["refunds"]);
    let (ok, _, err) = q(&["--metric", "daily_signups"]);
    assert!(!ok && err.contains("404"), "{err}");
    child.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_ingesting_restores_every_sample_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let (url, d) = (child.url.clone(), dir.path().to_path_buf());
    let c = child.client();
    let key = c.setup("p").await;
    // Acknowledged before the backup: some compacted, some only in the journal.
    for i in 0..50i64 {
        let ms = (0..10)
            .map(|m| metric(&format!("m{m}"), (i * 10 + m) as f64, i))
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
        if i == 25 {
            let r = c
                .admin(reqwest::Method::POST, "/api/v1/admin/compact", None)
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    // A writer keeps going during the backup.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (c, key, stop) = (c.clone(), key.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 1000i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ms = (0..10)
                    .map(|m| metric(&format!("m{m}"), (i * 10 + m) as f64, i))
                    .collect();
                assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
                i += 1;
            }
            i
        })
    };
    let file = d.parent().unwrap().join(format!(
        "{}.backup",
        d.file_name().unwrap().to_string_lossy()
    ));
    let (ok, out, err) = tokio::task::spawn_blocking({
        let (file, url, d) = (file.clone(), url.clone(), d.clone());
        move || stathook(&["backup", "--to", file.to_str().unwrap()], &url, &d)
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written_until = writer.await.unwrap();
    assert!(ok, "{err}");
    assert!(
        out.contains("Backup written") && out.contains("projects=1"),
        "{out}"
    );
    // A second backup to the same file is refused.
    let (ok, _, err) = stathook(&["backup", "--to", file.to_str().unwrap()], &url, &d);
    assert!(!ok && err.contains("already exists"), "{err}");
    child.terminate();

    // Restore into a fresh data dir: the backup as the store file, plus the admin token.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("stathook.redb")).unwrap();
    std::fs::copy(d.join("admin-token"), restored.path().join("admin-token")).unwrap();
    let _ = std::fs::remove_file(&file);
    let child = Child::start(restored.path(), &[]);
    let c = child.client();
    for m in 0..10i64 {
        let got: std::collections::BTreeMap<i64, f64> =
            c.points("p", &format!("m{m}")).await.into_iter().collect();
        for i in 0..50i64 {
            assert_eq!(
                got.get(&i),
                Some(&((i * 10 + m) as f64)),
                "m{m}@{i} missing"
            );
        }
        // Writes that raced the backup may be there, with the values sent.
        for (ts, v) in got.range(1000..) {
            assert!(*ts < written_until && *v == (ts * 10 + m) as f64);
        }
    }
    // The webhook's key works against the restored server.
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("m0", 7.0, 5000)]))
            .await
            .status,
        200
    );
    child.terminate();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["check", "--data-dir"])
        .arg(restored.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `stathook bench` against a real server: what it reports was really stored; a wrong key
/// shows up as errors and a failing exit code.
#[tokio::test]
async fn bench_reports_what_the_server_stored() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let key = c.setup("p").await;
    let run = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_stathook"))
            .args(["bench", "--url", &child.url, "--key", key, "--project", "p"])
            .args(["--series", "30", "--batch", "7", "--connections", "3"])
            .args(["--duration", "1s", "--json"])
            .output()
            .unwrap()
    };
    let out = run(&key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let requests = report["requests"].as_u64().unwrap();
    assert!(requests > 0, "{report}");
    assert_eq!(
        report["samples"].as_u64().unwrap(),
        requests * 7,
        "{report}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let l = &report["latencyMs"];
    assert!(l["p50"].as_f64().unwrap() <= l["p99"].as_f64().unwrap());
    assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
    // Every acknowledged sample is in the store, spread over the 30 series.
    let catalog = c.catalog("p").await;
    assert_eq!(catalog.len(), 30);
    let stored: u64 = catalog
        .iter()
        .map(|m| m["sampleCount"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, requests * 7);

    let out = run("shk_wrong");
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 0);
    assert!(report["errors"]["401"].as_u64().unwrap() > 0, "{report}");
}

/// `stathook bench --new-connection`: every request on a connection of its own (counted by
/// a loopback relay in front of the server), and every sample stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_new_connection_opens_one_connection_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let key = c.setup("p").await;
    let server = child.url.trim_start_matches("http://").to_owned();
    let relay = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!("http://{}", relay.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = relay.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let server = server.clone();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(server).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        bench(&[
            "--url",
            &relay_url,
            "--key",
            &key,
            "--project",
            "p",
            "--series",
            "10",
            "--points",
            "5",
            "--batch",
            "1",
            "--connections",
            "2",
            "--new-connection",
            "--json",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["requests"], 50, "{report}");
    assert_eq!(report["newConnection"], true, "{report}");
    // One connection per request, plus the one per client that checks the URL first.
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        50 + 2,
        "{report}"
    );
    let stored: u64 = c
        .catalog("p")
        .await
        .iter()
        .map(|m| m["sampleCount"].as_u64().unwrap())
        .sum();
    assert_eq!(stored, 50);
}

/// `stathook bench --points`: a fixed dataset sent once, every sample stored exactly once
/// with its time range reported; the server's CPU counted with `--server-pid`; `--query`
/// times a read of it.
#[tokio::test]
async fn bench_sends_a_fixed_dataset_once_and_times_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let c = child.client();
    let key = c.setup("p").await;
    let pid = child.process.id().to_string();
    let (ok, stdout, stderr) = bench(&[
        "--url",
        &child.url,
        "--key",
        &key,
        "--project",
        "p",
        "--series",
        "20",
        "--points",
        "6",
        "--batch",
        "7",
        "--dataset",
        "quiet",
        "--connections",
        "2",
        "--json",
        "--server-pid",
        &pid,
    ]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["samples"], 120, "{report}");
    assert_eq!(
        report["requests"], 18,
        "120 samples in batches of 7: {report}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let (first, last) = (
        report["firstTs"].as_i64().unwrap(),
        report["lastTs"].as_i64().unwrap(),
    );
    assert_eq!(last - first, 5 * 10_000);
    assert!(report["floorBytesPerSample"].as_f64().unwrap() > 0.0);
    // The server's CPU time over the run, and the same per million samples stored.
    let cpu = report["serverCpuSeconds"].as_f64().unwrap();
    let per_million = report["cpuSecondsPerMillion"].as_f64().unwrap();
    assert!((per_million - cpu / 120.0 * 1e6).abs() < 1e-6, "{report}");
    let catalog = c.catalog("p").await;
    assert_eq!(catalog.len(), 20);
    for m in &catalog {
        assert_eq!(m["sampleCount"], 6, "{m}");
        assert_eq!(m["firstTimestamp"].as_i64().unwrap(), first);
        assert_eq!(m["lastTimestamp"].as_i64().unwrap(), last);
    }

    let path = format!("/api/v1/projects/p/metrics/s1/points?from={first}&to={last}");
    let (ok, stdout, stderr) = bench(&[
        "--url",
        &child.url,
        "--key",
        &child.admin_token,
        "--query",
        &path,
        "--rounds",
        "5",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let q: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(q["rounds"], 5);
    assert!(q["p50Ms"].as_f64().unwrap() <= q["maxMs"].as_f64().unwrap());
    // The answer timed is the whole points reply: the six points of s1 are in it.
    let reply = c.get(&path).await;
    assert_eq!(reply.body["points"].as_array().unwrap().len(), 6);
    let points_json = serde_json::to_vec(&reply.body["points"]).unwrap().len();
    assert!(
        q["responseBytes"].as_u64().unwrap() as usize > points_json,
        "{q}"
    );
    // A read the server refuses stops the timing with its words.
    let (ok, _, stderr) = bench(&["--url", &child.url, "--key", "shk_wrong", "--query", &path]);
    assert!(!ok);
    assert!(stderr.contains("401"), "{stderr}");
}

/// `stathook bench ARGS`: success, stdout, stderr.
fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn check_sizes_accounts_for_every_segment_byte() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &["--compact-interval-secs", "3600"]);
    let c = child.client();
    let key = c.setup("p").await;
    let t0 = now_ms() - 3_600_000;
    // 2,000 samples of a 2-decimal gauge (two blocks) and 30 of an integer counter.
    for chunk in 0..20 {
        let mut metrics = Vec::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            metrics.push(metric(
                "gauge",
                ((i * 37) % 201) as f64 / 100.0,
                t0 + i * 1000,
            ));
        }
        assert_eq!(c.post(&key, &batch("p", metrics)).await.status, 200);
    }
    let counter: Vec<serde_json::Value> = (0..30)
        .map(|i| metric("counter", (i * 3) as f64, t0 + i))
        .collect();
    assert_eq!(c.post(&key, &batch("p", counter)).await.status, 200);
    let r = c
        .admin(reqwest::Method::POST, "/api/v1/admin/compact", None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(child.terminate().success());

    let (ok, stdout) = check_with(dir.path(), &["--sizes"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains(" 2030 samples, "), "{stdout}");
    assert!(stdout.contains("segments: 2 (3 blocks), "), "{stdout}");
    let table_rows = |name: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in {stdout}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert_eq!(table_rows("catalog"), 2);
    assert_eq!(table_rows("projects"), 1);
    // The parts of the segments add up to their total.
    let number_after = |label: &str| -> u64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {stdout}"));
        let rest = &line[line.find(label).unwrap() + label.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let total: u64 = stdout
        .lines()
        .find(|l| l.starts_with("segments: 2"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let parts: u64 = ["header", "timestamps", "values", "metadata"]
        .iter()
        .map(|p| number_after(p))
        .sum();
    assert_eq!(parts, total, "{stdout}");
    assert!(stdout.contains("values decimal/"), "{stdout}");
    assert!(stdout.contains("values int/"), "{stdout}");
    assert!(stdout.contains("\nok\n"), "{stdout}");
}

#[tokio::test]
async fn user_commands_add_list_and_remove_accounts_that_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::start(dir.path(), &[]);
    let url = child.url.clone();
    let d = dir.path();
    let sign_in = |name: &str, password: &str| {
        let body = serde_json::json!({"username": name, "password": password}).to_string();
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{url}/api/v1/session"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // A generated password, printed once, works.
    let (ok, out, err) = stathook(
        &["user", "add", "--name", "ann", "--role", "admin"],
        &url,
        d,
    );
    assert!(ok, "{err}");
    assert_eq!(value_of(&out, "User:"), "ann (admin)");
    let password = value_of(&out, "Password:").to_owned();
    assert_eq!(password.len(), 20);
    assert!(err.contains("not shown again"), "{err}");
    assert_eq!(sign_in("ann", &password).await, 200);

    // A password from stdin.
    let mut p = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args([
            "user",
            "add",
            "--name",
            "vic",
            "--role",
            "viewer",
            "--password-stdin",
        ])
        .args(["--server", &url, "--data-dir"])
        .arg(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    p.stdin
        .take()
        .unwrap()
        .write_all(b"from stdin 123\n")
        .unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        !out.contains("Password:"),
        "a given password is not echoed: {out}"
    );
    assert_eq!(sign_in("vic", "from stdin 123").await, 200);

    let (ok, out, _) = stathook(&["user", "list"], &url, d);
    assert!(ok);
    assert!(out.contains("ann") && out.contains("viewer"), "{out}");
    let (ok, _, err) = stathook(
        &["user", "add", "--name", "ann", "--role", "viewer"],
        &url,
        d,
    );
    assert!(!ok);
    assert!(
        err.contains("409") && err.contains("already exists"),
        "{err}"
    );
    let (ok, _, _) = stathook(&["user", "remove", "--name", "vic"], &url, d);
    assert!(ok);
    assert_eq!(sign_in("vic", "from stdin 123").await, 401);
    let (ok, _, err) = stathook(&["user", "remove", "--name", "vic"], &url, d);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");
}

#[test]
fn version_completions_and_man_page() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The format numbers are the store's own (a new format must change --version too).
    let version = run(&["--version"]);
    let format = stathook::store::FORMAT_VERSION;
    assert!(version.starts_with(&format!("stathook {}", env!("CARGO_PKG_VERSION"))));
    assert!(
        version.contains(&format!(
            "writes version {format}, opens versions 1-{format}"
        )),
        "{version}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        assert!(
            script.contains("serve") && script.contains("webhook"),
            "{shell}: {script}"
        );
    }
    // The bash script is valid bash.
    let bash = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stathook.bash");
    std::fs::write(&file, bash).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let man = run(&["man"]);
    assert!(man.contains(".TH stathook 1"), "{man}");
    assert!(man.contains("serve"), "{man}");
    // --dir: a page per subcommand, each flag documented where it belongs.
    let pages = dir.path().join("man");
    std::fs::create_dir(&pages).unwrap();
    run(&["man", "--dir", pages.to_str().unwrap()]);
    let serve = std::fs::read_to_string(pages.join("stathook-serve.1")).unwrap();
    assert!(
        serve.contains(".TH stathook-serve 1") && serve.contains("max\\-series\\-per\\-project"),
        "{serve}"
    );
    assert!(pages.join("stathook-webhook-create.1").exists());
}

/// `stathook config show` with a config file, an environment and flags.
fn config_show(file: &str, env: &[(&str, &str)], flags: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stathook.toml");
    std::fs::write(&path, file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["config", "show", "--config"])
        .arg(&path)
        .args(flags)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_config_file_takes_every_serve_flag_and_flags_and_env_override_it() {
    let file = "# settings\nlisten = \"127.0.0.1:18999\"\ncache-mb = 64\nmax_series_per_project = 7\ntrust-proxy = true\ncors-origin = [\"https://a.example\", \"https://b.example\"]\n";
    let (ok, out, err) = config_show(
        file,
        &[("STATHOOK_MAX_SERIES_PER_PROJECT", "9")],
        &["--cache-mb", "32"],
    );
    assert!(ok, "{err}");
    for line in [
        "listen = \"127.0.0.1:18999\"  # file",
        "cache-mb = 32  # flag",
        "max-series-per-project = 9  # env",
        "trust-proxy = true  # file",
        "cors-origin = [\"https://a.example\", \"https://b.example\"]  # file",
        "fsync = \"always\"  # default",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
    }
    // Every serve flag is a key: what `config show` prints, read back as the file, gives
    // the same values, every one from the file.
    let (ok, defaults, err) = config_show("", &[], &[]);
    assert!(ok, "{err}");
    let as_file: String = defaults
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{}\n", l.split("  #").next().unwrap()))
        .collect();
    let keys = as_file.lines().count();
    assert!(keys >= 25, "{as_file}");
    let (ok, again, err) = config_show(&as_file, &[], &[]);
    assert!(ok, "{err}\n{as_file}");
    let set: Vec<&str> = again.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(set.len(), keys);
    for line in set {
        assert!(line.ends_with("# file"), "{line}");
        assert!(
            as_file.contains(line.split("  #").next().unwrap()),
            "{line}"
        );
    }

    let (ok, _, err) = config_show("\nbogus = 1\n", &[], &[]);
    assert!(!ok);
    assert!(err.contains("line 2: unknown key `bogus`"), "{err}");
    let (ok, _, err) = config_show("cache-mb = \"lots\"\n", &[], &[]);
    assert!(!ok);
    assert!(
        err.contains("line 1: key `cache-mb`: invalid value 'lots'"),
        "{err}"
    );
    let (ok, _, err) = config_show("trust-proxy = 1\n", &[], &[]);
    assert!(!ok);
    assert!(
        err.contains("key `trust-proxy` must be true or false"),
        "{err}"
    );
    let (ok, _, err) = config_show("listen = [\n", &[], &[]);
    assert!(!ok);
    assert!(err.contains("is not valid TOML"), "{err}");
}

#[tokio::test]
async fn serve_runs_with_the_config_file_s_settings() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("stathook.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata-dir = {:?}\nmax-body-bytes = 2048\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stathook"))
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("STATHOOK_DATA_DIR")
        .env_remove("STATHOOK_LISTEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let admin = std::fs::read_to_string(data.join("admin-token")).ok();
    // The file's body limit holds: with a real key, 3 KB is refused as too large.
    let (created, _, err) = stathook(
        &["project", "create", "--name", "P", "--id", "p"],
        &url,
        &data,
    );
    assert!(created, "{err}");
    let (made, out, err) = stathook(
        &["webhook", "create", "--project", "p", "--name", "W"],
        &url,
        &data,
    );
    assert!(made, "{err}");
    let key = value_of(&out, "API Key:").to_owned();
    let big = http
        .post(format!("{url}/api/webhooks/custom"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(vec![b' '; 3000])
        .send()
        .await
        .map(|r| r.status().as_u16());
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "serve did not start on the file's listen address");
    assert!(admin.is_some(), "no admin token in the file's data dir");
    assert_eq!(big.ok(), Some(413));
}
