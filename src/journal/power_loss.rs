//! Power loss, simulated (tests only): a concurrent ingest run with rotations writes its
//! journal through the recording layer (`sim.rs`); then, at every sync point and at random
//! points between, the files are cut to what a device could hold (synced bytes plus a torn
//! or scattered part of the rest), recovered with the real recovery, and checked: every
//! acknowledged sample is there, and what survives is a prefix of what was written.

use super::sim::{self, Disk, Event, Tear};
use super::{recover, recover_into, Fsync, Journal, SHARDS};
use crate::bench::Rng;
use crate::ingest::{ValidBatch, ValidMetric};
use crate::memtable::Memtable;
use crate::store::{Store, FORMAT_VERSION};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PROJECT: &str = "proj_power";
const TASKS: usize = 6;
const BATCHES: usize = 30;
const ROTATIONS: usize = 5;

/// One sample as the test sent it: metricId, timestamp, value bits.
type Sample = (String, i64, u64);

/// A request the journal acknowledged, and how many recorded events had happened when its
/// acknowledgement arrived (its covering sync is among them).
struct Acked {
    samples: Vec<Sample>,
    seen_at: usize,
}

/// A recovered or written record: generation, project, samples.
type Rec = (u64, String, Vec<Sample>);

/// Sends `TASKS` concurrent streams of requests (1–12 metrics each, the spec's shape) while
/// another thread rotates the journal; returns the acknowledged requests and every event.
fn ingest_run(dir: &Path, fsync: Fsync) -> (Vec<Acked>, Vec<Event>) {
    let journal_dir = dir.join("journal");
    let recorder = sim::watch(&journal_dir);
    let store = Arc::new(Store::open(&dir.join("store.redb")).unwrap());
    let memtable = Arc::new(Memtable::new(SHARDS, 0));
    let (journal, _) = Journal::open(&journal_dir, store, memtable, fsync).unwrap();
    let journal = Arc::new(journal);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rotator = {
        let journal = journal.clone();
        std::thread::spawn(move || {
            for _ in 0..ROTATIONS {
                std::thread::sleep(Duration::from_millis(4));
                journal.rotate().unwrap();
            }
        })
    };
    rt.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let (journal, recorder, acked) = (journal.clone(), recorder.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..BATCHES {
                    let samples = request(task, i);
                    let names: Vec<String> = samples
                        .iter()
                        .map(|(id, ..)| id.replace("series", "Series "))
                        .collect();
                    let batch = ValidBatch {
                        project_id: PROJECT,
                        metrics: samples
                            .iter()
                            .zip(&names)
                            .map(|((id, ts, bits), name)| ValidMetric {
                                metric_id: id,
                                metric_name: name,
                                unit: Some("ms"),
                                timestamp_ms: *ts,
                                value: f64::from_bits(*bits),
                                metadata: None,
                            })
                            .collect(),
                    };
                    let durable = journal.append(&batch);
                    drop(batch);
                    durable.await.unwrap();
                    let seen_at = recorder.len();
                    acked.lock().unwrap().push(Acked { samples, seen_at });
                    if i % 4 == 0 {
                        tokio::time::sleep(Duration::from_micros(300)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    rotator.join().unwrap();
    journal.stop();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, recorder.events())
}

/// Request `i` of stream `task`: its own timestamps, so every sample is told apart.
fn request(task: usize, i: usize) -> Vec<Sample> {
    let n = 1 + (task * 5 + i * 7) % 12;
    (0..n)
        .map(|j| {
            let ts = 1_764_000_000_000 + ((task * 1000 + i) * 100 + j) as i64;
            let value = (task * 1000 + i * 10 + j) as f64 + 0.25;
            (
                format!("series{}", (task * 3 + j) % 40),
                ts,
                value.to_bits(),
            )
        })
        .collect()
}

/// The records of each file, in generation order, and whether any file was damaged.
fn records_of(files: &[(u64, Vec<u8>)]) -> (Vec<Rec>, bool) {
    let mut out = Vec::new();
    let mut damaged = false;
    for (generation, bytes) in files {
        let scan = match recover::scan(bytes, *generation, FORMAT_VERSION) {
            Ok(scan) => scan,
            Err(recover::HeaderProblem::Missing) => continue,
            Err(e) => panic!("generation {generation}: {e:?}"),
        };
        damaged |= scan.damage.is_some();
        for r in scan.records {
            let samples = r
                .samples
                .iter()
                .map(|s| (s.metric_id.to_string(), s.timestamp_ms, s.value.to_bits()))
                .collect();
            out.push((*generation, r.project.to_string(), samples));
        }
    }
    (out, damaged)
}

fn holds(memtable: &Memtable, (metric, ts, bits): &Sample) -> bool {
    memtable
        .read(PROJECT, metric, *ts, *ts)
        .get(ts)
        .is_some_and(|p| p.value.to_bits() == *bits)
}

/// What the checks saw over all cuts, so the test knows it cut something.
#[derive(Default, Debug)]
struct Tally {
    cuts: usize,
    damaged: usize,
    lost_unacked: usize,
    acked_checked: usize,
}

/// Crashes the disk at this point (both tears), recovers, checks.
fn check_cut(
    at: usize,
    disk: &Disk,
    store: &Store,
    must_survive: &dyn Fn(usize, &Acked) -> bool,
    acked: &[Acked],
    rng: &mut Rng,
    tally: &mut Tally,
) {
    let (written, damaged) = records_of(&disk.written());
    assert!(!damaged, "what the process wrote reads back whole");
    for tear in [Tear::Prefix, Tear::Sectors] {
        let files = disk.crash(tear, rng);
        let place = tempfile::tempdir().unwrap();
        let dir = place.path().join("journal");
        super::file::ensure_dir(&dir).unwrap();
        for (generation, bytes) in &files {
            super::file::lay_out(&dir, *generation, bytes).unwrap();
        }
        let memtable = Memtable::new(SHARDS, 0);
        let report = recover_into(&dir, store, &memtable, true)
            .unwrap_or_else(|e| panic!("cut at event {at} ({tear:?}): recovery failed: {e}"));
        let (survived, _) = records_of(&files);
        assert!(
            written.starts_with(&survived),
            "cut at event {at} ({tear:?}): the {} surviving records are not a prefix of the {} written",
            survived.len(),
            written.len()
        );
        let count: usize = survived.iter().map(|r| r.2.len()).sum();
        assert_eq!(report.samples, count, "cut at event {at} ({tear:?})");
        for (_, _, samples) in &survived {
            for s in samples {
                assert!(
                    holds(&memtable, s),
                    "cut at event {at}: survivor {s:?} unreadable"
                );
            }
        }
        for (_, a) in acked
            .iter()
            .enumerate()
            .filter(|(i, a)| must_survive(*i, a))
        {
            tally.acked_checked += 1;
            for s in &a.samples {
                assert!(
                    holds(&memtable, s),
                    "cut at event {at} ({tear:?}): acknowledged sample {s:?} lost (acknowledged after event {})",
                    a.seen_at
                );
            }
        }
        tally.cuts += 1;
        tally.damaged += usize::from(!report.damaged.is_empty());
        tally.lost_unacked += usize::from(survived.len() < written.len());
        if tally.cuts.is_multiple_of(4) {
            // Recovery cut the damaged tails: a second one finds them clean and the same.
            let again = Memtable::new(SHARDS, 0);
            let second = recover_into(&dir, store, &again, true).unwrap();
            assert!(second.damaged.is_empty(), "cut at event {at}: {second:?}");
            assert_eq!(second.samples, report.samples, "cut at event {at}");
        }
    }
}

/// Runs the ingest, then crashes it at every sync point (just before and just after it) and
/// at 60 random events.
fn crash_everywhere(fsync: Fsync, seed: u64) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let (acked, events) = ingest_run(dir.path(), fsync);
    assert_eq!(acked.len(), TASKS * BATCHES);
    let syncs: Vec<(usize, u64)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Sync { generation } => Some((i, *generation)),
            _ => None,
        })
        .collect();
    let mut rng = Rng::new(seed);
    let mut cuts: Vec<usize> = syncs.iter().flat_map(|(i, _)| [*i, i + 1]).collect();
    cuts.extend((0..60).map(|_| rng.below(events.len() + 1)));
    cuts.sort_unstable();
    cuts.dedup();

    // Where each acknowledged request was written, for `Interval`'s promise (a sync of that
    // file after the acknowledgement).
    let mut full = Disk::default();
    events.iter().for_each(|e| full.apply(e));
    let (written, _) = records_of(&full.written());
    let generation_of = |a: &Acked| {
        written
            .iter()
            .find(|r| r.2.contains(&a.samples[0]))
            .map(|r| r.0)
            .expect("every acknowledged request was written")
    };
    let written_in: Vec<u64> = acked.iter().map(generation_of).collect();

    let store = Store::open(&dir.path().join("empty.redb")).unwrap();
    let mut disk = Disk::default();
    let mut tally = Tally::default();
    let mut next_cut = cuts.iter().peekable();
    for at in 0..=events.len() {
        if next_cut.peek() == Some(&&at) {
            next_cut.next();
            let must_survive = |i: usize, a: &Acked| match fsync {
                // A 200 means durable: acknowledged before the cut, so synced before it.
                Fsync::Always => a.seen_at <= at,
                // A 200 means written; durable once its file is synced after that.
                Fsync::Interval(_) => syncs
                    .iter()
                    .any(|(s, g)| *g == written_in[i] && *s >= a.seen_at && *s < at),
            };
            check_cut(
                at,
                &disk,
                &store,
                &must_survive,
                &acked,
                &mut rng,
                &mut tally,
            );
        }
        if let Some(e) = events.get(at) {
            disk.apply(e);
        }
    }
    tally
}

fn assert_exercised(tally: &Tally) {
    assert!(tally.cuts > 100, "{tally:?}");
    assert!(tally.damaged > 10, "some cuts tore a frame: {tally:?}");
    assert!(
        tally.lost_unacked > 10,
        "some cuts lost unsynced frames: {tally:?}"
    );
    assert!(tally.acked_checked > 1000, "{tally:?}");
}

#[test]
fn fsync_always_keeps_every_acknowledged_sample_through_power_loss() {
    let tally = crash_everywhere(Fsync::Always, 0x5eed_0001);
    eprintln!("{tally:?}");
    assert_exercised(&tally);
}

#[test]
fn fsync_interval_keeps_what_was_synced_and_a_prefix_of_the_rest() {
    let tally = crash_everywhere(Fsync::Interval(Duration::from_millis(1)), 0x5eed_0002);
    eprintln!("{tally:?}");
    assert_exercised(&tally);
}
