//! A full disk is an error, not corruption: with the data dir on a small tmpfs, ingest until
//! the server refuses (507 or 503), check it stays up and serves reads, free space, and check
//! that it resumes writing without a restart and that every acknowledged sample is there,
//! also after a restart.
//!
//! Needs to mount a tmpfs (root, or CAP_SYS_ADMIN). Where that is not allowed the test says
//! so on stderr and checks nothing: it cannot run there.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Unmounts on drop, so a failing test does not leave a mount behind.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn big_batch(i: i64) -> serde_json::Value {
    // ~2.5 KB of metadata per sample, different for every sample and hard to compress
    // (segments keep one copy of repeated metadata per block and zstd the rest): the
    // store itself, not only the journal, fills the disk after a few hundred requests.
    batch(
        "p",
        (0..10)
            .map(|m| {
                let mut x = (i as u64 * 10 + m as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let note: String = (0..2500)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        char::from(b'a' + (x % 26) as u8)
                    })
                    .collect();
                json!({"metricId": format!("m{m}"), "metricName": "M", "value": i,
                    "timestamp": i, "metadata": {"note": note}})
            })
            .collect(),
    )
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_serving_and_recovers_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(&dir.path().join("mnt"), "48m") else {
        eprintln!("full_disk: cannot mount a tmpfs here (needs root); this test did not run");
        return;
    };
    let data = mnt.0.join("data");
    // Room to free later: more than the data that fits before the disk is full, so that
    // once it is freed the compactor has room to move the journal into the store.
    let filler = mnt.0.join("filler");
    std::fs::write(&filler, vec![1u8; 32 << 20]).unwrap();

    let child = Child::start(&data, &["--compact-interval-secs", "1"]);
    let c = child.client();
    let key = c.setup("p").await;
    let mut acked: BTreeMap<i64, ()> = BTreeMap::new();
    let mut refused = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0i64;
    while Instant::now() < deadline {
        let r = c.post(&key, &big_batch(i)).await;
        match r.status {
            200 => {
                acked.insert(i, ());
            }
            507 | 503 => {
                refused = Some((r.status, r.body["error"].as_str().unwrap().to_owned()));
                break;
            }
            other => panic!("request {i}: unexpected {other}: {:?}", r.body),
        }
        i += 1;
    }
    let (status, error) = refused.expect("the disk never filled");
    assert!(!acked.is_empty());
    eprintln!(
        "full_disk: {} requests stored, then {status}: {error}",
        acked.len()
    );
    assert!(
        error.contains("nothing was stored") || error.contains("retry"),
        "{error}"
    );

    // Still up, still reading.
    assert_eq!(c.get("/healthz").await.status, 200);
    let pts = c.points("p", "m0").await;
    assert!(
        acked.keys().all(|t| pts.iter().any(|p| p.0 == *t)),
        "an acknowledged sample is unreadable"
    );

    // Free space: writes resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let resumed = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.post(&key, &big_batch(i)).await;
        if r.status == 200 {
            acked.insert(i, ());
            break;
        }
        assert!(
            Instant::now() < resumed,
            "writes did not resume: {} {:?}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..20 {
        i += 1;
        assert_eq!(c.post(&key, &big_batch(i)).await.status, 200);
        acked.insert(i, ());
    }
    // Compaction into the store works again too (a round may first report redb's
    // "previous I/O error"; the compactor retries).
    let compacted = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c
            .admin(reqwest::Method::POST, "/api/v1/admin/compact", None)
            .await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < compacted,
            "compaction did not recover: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let check_all = |pts: Vec<(i64, f64)>| {
        let got: BTreeMap<i64, f64> = pts.into_iter().collect();
        for t in acked.keys() {
            assert_eq!(
                got.get(t),
                Some(&(*t as f64)),
                "acknowledged sample {t} lost"
            );
        }
    };
    check_all(c.points("p", "m9").await);
    let status = child.terminate();
    assert!(status.success(), "{status:?}");

    let child = Child::start(&data, &[]);
    check_all(child.client().points("p", "m9").await);
    child.terminate();
}
