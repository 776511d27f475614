//! Torn and corrupt writes, on copies of real data dirs: a journal cut or bit-flipped at
//! random offsets recovers exactly the requests before the damage; a segment with a flipped
//! byte is reported by `stathook check` and by queries, never summed into wrong numbers.

use crate::support::*;
use std::path::Path;

/// xorshift64*, seeded: the offsets are random but the run is repeatable.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The query fails with a 500 naming the damaged segment and its checksum.
async fn refused(c: &Client, q: &str) {
    let r = c
        .get(&format!("/api/v1/projects/p/metrics/m/points?{q}"))
        .await;
    assert_eq!(r.status, 500, "{q}: {:?}", r.body);
    let e = r.body["error"].as_str().unwrap();
    assert!(
        e.contains("segment (p, m, 0)") && e.contains("checksum"),
        "{q}: {e}"
    );
}

#[tokio::test]
async fn a_damaged_journal_recovers_exactly_the_requests_before_the_damage() {
    // 40 sequential requests, each 3 metrics at timestamp i, left in the journal by SIGKILL.
    let original = tempfile::tempdir().unwrap();
    let child = Child::start(original.path(), &["--compact-interval-secs", "3600"]);
    let c = child.client();
    let key = c.setup("p").await;
    const REQUESTS: i64 = 40;
    for i in 0..REQUESTS {
        let ms = (0..3)
            .map(|m| metric(&format!("m{m}"), i as f64, i))
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    child.kill();
    let journal_file = |dir: &Path| {
        std::fs::read_dir(dir.join("journal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max()
            .unwrap()
    };
    let bytes = std::fs::read(journal_file(original.path())).unwrap();
    let data_end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;

    let mut rng = Rng(0x0da3_a6e5);
    for round in 0..16 {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let file = journal_file(copy.path());
        let mut damaged = bytes.clone();
        // Half the rounds cut the file (a torn write), half flip one bit (a bad sector).
        let offset = 40 + rng.below(data_end - 40);
        let what = if round % 2 == 0 {
            damaged.truncate(offset);
            "cut"
        } else {
            damaged[offset] ^= 1 << rng.below(8);
            "flipped"
        };
        std::fs::write(&file, &damaged).unwrap();

        let (ok, report) = check(copy.path());
        let s = Server::start(copy.path()).await;
        let c = s.client();
        let cat = c.catalog("p").await;
        // Every request before the damage is whole, none after is there: the recovered
        // timestamps are 0..n for some n, identical in all three metrics.
        let mut kept = None;
        for m in 0..3 {
            let got: Vec<i64> = if cat.is_empty() {
                vec![]
            } else {
                c.points("p", &format!("m{m}"))
                    .await
                    .iter()
                    .map(|p| p.0)
                    .collect()
            };
            assert_eq!(
                got,
                (0..got.len() as i64).collect::<Vec<_>>(),
                "round {round}: {what} at {offset}"
            );
            assert!(
                kept.is_none_or(|k| k == got.len()),
                "round {round}: a request was half kept"
            );
            kept = Some(got.len());
        }
        let kept = kept.unwrap() as i64;
        assert!(
            kept < REQUESTS,
            "round {round}: {what} at {offset} of {data_end} went unnoticed"
        );
        assert!(
            !ok && report.contains("DAMAGED"),
            "round {round}: check said {report}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_corrupt_segment_is_reported_not_served() {
    let (dir, s, c, key) = Server::with_project("p").await;
    // 3,000 samples 1 s apart: one segment of three blocks.
    for chunk in 0..30i64 {
        let ms = (0..100)
            .map(|i| metric("m", (chunk * 100 + i) as f64, (chunk * 100 + i) * 1000))
            .collect();
        assert_eq!(c.post(&key, &batch("p", ms)).await.status, 200);
    }
    assert_eq!(
        c.post(&key, &batch("p", vec![metric("ok", 1.0, 1)]))
            .await
            .status,
        200
    );
    s.stop().await; // compacts

    // Flip one byte of the segment, through redb (so redb's own page checksums stay valid
    // and only the segment's checksums can notice): first in the last block's body, then in
    // the header's block table. It is the metric's last segment, so it sits in the tail
    // pack keyed by the project's first metric.
    let flip = |at_from_end: Option<usize>| {
        use redb::ReadableTable;
        let db = redb::Database::open(dir.path().join("stathook.redb")).unwrap();
        let t: redb::TableDefinition<(&str, &str), &[u8]> = redb::TableDefinition::new("tails");
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(t).unwrap();
            let mut pack = table.get(("p", "m")).unwrap().unwrap().value().to_vec();
            let (offset, len) = {
                let members = stathook::store::tails::decode(&pack).unwrap();
                let (_, start, segment) = members.iter().find(|(m, ..)| *m == "m").unwrap();
                assert_eq!(*start, 0);
                (
                    segment.as_ptr() as usize - pack.as_ptr() as usize,
                    segment.len(),
                )
            };
            pack[offset + at_from_end.map_or(70, |n| len - n)] ^= 0x10;
            table.insert(("p", "m"), pack.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    };
    flip(Some(10));
    let (ok, report) = check(dir.path());
    assert!(!ok, "{report}");
    assert!(
        report.contains("DAMAGED")
            && report.contains("segment (p, m, 0)")
            && report.contains("checksum"),
        "{report}"
    );

    let s = Server::start(dir.path()).await;
    let c = s.client();
    // A query that must decode the damaged block gets an error naming the segment.
    for q in [
        "limit=100000",
        "agg=p50",
        "step=1s&agg=avg&from=2900000&to=2999000",
    ] {
        refused(&c, q).await;
    }
    // Whole-block summaries sit in the header under their own checksum, which is intact:
    // they still answer, with the numbers that were written. So do intact blocks and other
    // metrics.
    let r = c.get("/api/v1/projects/p/metrics/m/points?agg=sum").await;
    assert_eq!(points_of(&r)[0].1, (0..3000).sum::<i64>() as f64);
    let r = c
        .get("/api/v1/projects/p/metrics/m/points?from=0&to=999000&agg=count")
        .await;
    assert_eq!(points_of(&r), vec![(0, 1000.0)]);
    assert_eq!(c.points("p", "ok").await, vec![(1, 1.0)]);
    s.stop().await;

    // Damage in the header: now even the summaries are refused.
    flip(None);
    let s = Server::start(dir.path()).await;
    let c = s.client();
    for q in ["agg=sum", "agg=count&from=0&to=999000"] {
        refused(&c, q).await;
    }
    s.stop().await;
}
