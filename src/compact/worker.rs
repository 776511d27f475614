//! The compaction round and the background thread that runs it on a timer or when the
//! memtable grows past a threshold.

use super::policy;
use crate::journal::Journal;
use crate::memtable::{Memtable, Point, Series};
use crate::segment::{self, Sample};
use crate::store::{CatalogRow, Expiry, Store};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, Copy)]
pub struct CompactStats {
    pub generation: u64,
    pub metrics: usize,
    pub samples: usize,
    pub segments_written: usize,
}

/// One metric's series in each frozen generation that has it, oldest first.
type Pending<'g> = Vec<&'g Series>;

/// The metric's new samples, oldest first; on equal timestamps the later generation wins.
fn new_samples(series: &[&Series]) -> Vec<Sample> {
    let to_sample = |(t, p): (&i64, &Point)| Sample {
        timestamp_ms: *t,
        value: p.value,
        metadata: p.metadata.clone(),
    };
    match series {
        [one] => one.points.iter().map(to_sample).collect(),
        many => {
            let mut merged: BTreeMap<i64, &Point> = BTreeMap::new();
            for s in many {
                merged.extend(s.points.iter().map(|(t, p)| (*t, p)));
            }
            merged.iter().map(|(t, p)| to_sample((t, p))).collect()
        }
    }
}

/// What `write_segments` did to one metric's segments.
struct Written {
    /// The first timestamp of the segments it rewrote or wrote.
    first: i64,
    /// The metric's newest sample among them.
    last: Sample,
    /// Samples at timestamps the segments did not hold before.
    added: u64,
    segments: usize,
}

/// Writes a metric's new samples (sorted, without duplicates) into its segments: appended to
/// its last segment while that still has room on its page (`segment::append`: only the
/// last block is re-encoded), or merged with the segments they overlap and cut to fit
/// pages (`policy::encode_to_fit`).
fn write_segments(
    c: &mut crate::store::Edits<'_>,
    project: &str,
    metric: &str,
    new: Vec<Sample>,
) -> Result<Written, String> {
    let budget = policy::segment_budget(project, metric);
    let damaged = |start: i64, e: segment::SegmentError| {
        format!("segment ({project}, {metric}, {start}): {e}; run `stathook check`")
    };
    let (min, max) = (new[0].timestamp_ms, new[new.len() - 1].timestamp_ms);
    let mut old_segments = c
        .overlapping(project, metric, min, max, true)
        .map_err(|e| e.to_string())?;
    if let Some((start, bytes)) = old_segments.first() {
        let first = segment::read_summary(bytes).map_err(|e| e.to_string())?;
        if first.max_ts < min {
            if !policy::absorb_previous(bytes.len(), first.count as usize, budget) {
                old_segments.remove(0);
            } else if old_segments.len() == 1 {
                let appended = segment::append(bytes, &new).map_err(|e| damaged(*start, e))?;
                if let Some(appended) = appended.filter(|a| a.len() <= budget) {
                    c.put_segment(project, metric, *start, &appended)
                        .map_err(|e| e.to_string())?;
                    return Ok(Written {
                        first: first.min_ts,
                        added: new.len() as u64,
                        last: new.into_iter().next_back().expect("BUG: no new samples"),
                        segments: 1,
                    });
                }
            }
        }
    }
    let mut old = Vec::new();
    for (start, bytes) in &old_segments {
        let samples = segment::decode(bytes).map_err(|e| damaged(*start, e))?;
        old.extend(samples);
        c.remove_segment(project, metric, *start)
            .map_err(|e| e.to_string())?;
    }
    let old_len = old.len();
    let (merged, _replaced) = policy::merge(old, new);
    let segments = policy::encode_to_fit(&merged, budget);
    for (start, bytes) in &segments {
        c.put_segment(project, metric, *start, bytes)
            .map_err(|e| e.to_string())?;
    }
    Ok(Written {
        first: merged[0].timestamp_ms,
        added: (merged.len() - old_len) as u64,
        last: merged
            .into_iter()
            .next_back()
            .expect("BUG: no merged samples"),
        segments: segments.len(),
    })
}

/// Seals the current journal generation and moves every frozen generation into segments.
pub fn compact_once(
    store: &Store,
    journal: &Journal,
    memtable: &Memtable,
) -> Result<CompactStats, String> {
    let sealed = journal.rotate().map_err(|e| e.to_string())?;
    let mut gens = memtable.frozen_through(sealed);
    gens.sort_by_key(|g| g.generation);

    // Every (metric, series) of the frozen generations, sorted by metric and then by
    // generation (a stable sort over generations taken oldest first), then grouped. A
    // BTreeMap insert per series, each missing the cache down the tree, was 10 % of a round
    // at 1,000,000 series (perf); one sort of one vector replaced it.
    let mut all: Vec<((&str, &str), &Series)> = Vec::new();
    for g in &gens {
        for (project, metrics) in &g.projects {
            all.extend(
                metrics
                    .iter()
                    .filter(|(_, series)| !series.points.is_empty())
                    .map(|(metric, series)| ((&**project, &**metric), series)),
            );
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pending: Vec<((&str, &str), Pending)> = Vec::new();
    for (key, series) in all {
        match pending.last_mut() {
            Some((k, p)) if *k == key => p.push(series),
            _ => pending.push((key, vec![series])),
        }
    }

    let mut stats = CompactStats {
        generation: sealed,
        ..Default::default()
    };
    let mut compacted_lasts = Vec::new();
    let mut round = store.begin_compaction().map_err(|e| e.to_string())?;
    let mut c = round.edits().map_err(|e| e.to_string())?;
    for ((project, metric), p) in pending {
        let new: Vec<Sample> = new_samples(&p);
        // The catalog holds the latest metricName and unit sent (the latest wins).
        let (metric_name, unit) = memtable.name_and_unit(project, metric).ok_or_else(|| {
            format!("BUG: ({project}, {metric}) has samples but no catalog entry")
        })?;
        stats.samples += new.len();
        let written = write_segments(&mut c, project, metric, new)?;
        stats.segments_written += written.segments;
        let (first, last) = (written.first, written.last);
        let old = c.catalog_row(project, metric).map_err(|e| e.to_string())?;
        // The count grows by the timestamps that were new to the segments.
        let (first_ts, last_ts, last_value, count) = match old {
            None => (first, last.timestamp_ms, last.value, 0),
            Some(r) if r.last_timestamp > last.timestamp_ms => (
                r.first_timestamp.min(first),
                r.last_timestamp,
                r.last_value,
                r.count,
            ),
            Some(r) => (
                r.first_timestamp.min(first),
                last.timestamp_ms,
                last.value,
                r.count,
            ),
        };
        let row = CatalogRow {
            metric_name,
            unit,
            first_timestamp: first_ts,
            last_timestamp: last_ts,
            last_value,
            count: count + written.added,
        };
        c.put_catalog_row(project, metric, &row)
            .map_err(|e| e.to_string())?;
        compacted_lasts.push((project, metric, row.last_timestamp, row.count));
        stats.metrics += 1;
    }
    drop(c);
    round.commit(sealed).map_err(|e| e.to_string())?;
    memtable.release_through(sealed, &compacted_lasts);
    // The metricIds above are borrowed from the generations, released only now.
    drop(compacted_lasts);
    drop(gens);
    journal.remove_through(sealed).map_err(|e| e.to_string())?;
    Ok(stats)
}

/// A compaction round that, when it fails, checks whether the store needs reopening after an
/// I/O error (a full disk) and does so, so the next round can succeed once space is back.
pub fn compact_round(
    store: &Store,
    journal: &Journal,
    memtable: &Memtable,
) -> Result<CompactStats, String> {
    compact_once(store, journal, memtable).inspect_err(|_| {
        if let Err(e) = store.recover_from_io_error() {
            tracing::error!(error = %e, "could not reopen the store after an I/O error");
        }
    })
}

/// Removes every sample of a metric acknowledged before the call: compacts first, so those
/// samples are all in segments, then drops the segments and catalog row in one transaction.
/// Samples written meanwhile stay (in memory and the journal alike). The caller holds the
/// rounds lock. Returns whether the metric existed.
pub fn delete_metric(
    store: &Store,
    journal: &Journal,
    memtable: &Memtable,
    project: &str,
    metric: &str,
) -> Result<bool, String> {
    if memtable.catalog_entry(project, metric).is_none() {
        return Ok(false);
    }
    compact_once(store, journal, memtable)?;
    let mut round = store.begin_compaction().map_err(|e| e.to_string())?;
    let segments = round
        .edits()
        .and_then(|mut c| c.remove_metric(project, metric))
        .map_err(|e| e.to_string())?;
    round.commit_data_only().map_err(|e| e.to_string())?;
    memtable.reset_compacted(project, metric, None);
    tracing::info!(project, metric, segments, "metric deleted");
    Ok(true)
}

/// Drops whole segments older than each project's retention (`cutoff(project)` gives the
/// first timestamp to keep, None = keep forever). The caller holds the rounds lock. Returns
/// the samples removed.
pub fn expire_once(
    store: &Store,
    memtable: &Memtable,
    cutoff: &dyn Fn(&str) -> Option<i64>,
) -> Result<u64, String> {
    let rows = store.catalog().map_err(|e| e.to_string())?;
    let expiring: Vec<_> = rows
        .into_iter()
        .filter_map(|(p, m, row)| {
            let c = cutoff(&p)?;
            (row.first_timestamp < c).then_some((p, m, c))
        })
        .collect();
    if expiring.is_empty() {
        return Ok(0);
    }
    let mut round = store.begin_compaction().map_err(|e| e.to_string())?;
    let mut c = round.edits().map_err(|e| e.to_string())?;
    let mut changed = Vec::new();
    let mut removed = 0;
    for (p, m, cut) in expiring {
        match c.expire_segments(&p, &m, cut).map_err(|e| e.to_string())? {
            Expiry::Nothing => {}
            Expiry::Some { samples, row } => {
                removed += samples;
                changed.push((p, m, Some(row)));
            }
            Expiry::All { samples } => {
                removed += samples;
                changed.push((p, m, None));
            }
        }
    }
    drop(c);
    round.commit_data_only().map_err(|e| e.to_string())?;
    for (p, m, row) in &changed {
        memtable.reset_compacted(p, m, row.as_ref());
    }
    if removed > 0 {
        tracing::info!(
            samples = removed,
            metrics = changed.len(),
            "expired old segments"
        );
    }
    Ok(removed)
}

/// Controls the background compactor thread.
pub struct CompactorHandle {
    state: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl CompactorHandle {
    /// Stops the thread after one last round, so a clean shutdown leaves the journal empty.
    pub fn stop(mut self) {
        *self.state.0.lock() = true;
        self.state.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `(project, now_ms)` → the first timestamp to keep, None = keep everything.
pub type Cutoff = dyn Fn(&str, i64) -> Option<i64> + Send;

/// What the background compactor does and how often.
pub struct Schedule {
    /// A round at least this often while samples wait...
    pub interval: Duration,
    /// ...or as soon as this many wait.
    pub max_pending: usize,
    /// Retention sweeps this often.
    pub expire_interval: Duration,
    /// The first timestamp to keep for a project at `now_ms`; None keeps everything.
    pub cutoff: Box<Cutoff>,
}

/// Starts the compactor thread. It holds `rounds` during each round, so rounds, deletions
/// and expiry never interleave.
pub fn spawn(
    store: Arc<Store>,
    journal: Arc<Journal>,
    memtable: Arc<Memtable>,
    rounds: Arc<Mutex<()>>,
    schedule: Schedule,
) -> CompactorHandle {
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let st = state.clone();
    let thread = std::thread::Builder::new()
        .name("compactor".into())
        .spawn(move || {
            let mut last = Instant::now();
            let mut last_expiry: Option<Instant> = None;
            loop {
                let stopping = {
                    let mut stop = st.0.lock();
                    if !*stop {
                        st.1.wait_for(&mut stop, Duration::from_millis(100));
                    }
                    *stop
                };
                let due = last.elapsed() >= schedule.interval
                    || memtable.pending_samples() >= schedule.max_pending;
                if (due || stopping) && memtable.pending_samples() > 0 {
                    let _round = rounds.lock();
                    let started = Instant::now();
                    match compact_round(&store, &journal, &memtable) {
                        Ok(s) => tracing::debug!(generation = s.generation, metrics = s.metrics, samples = s.samples,
                            segments = s.segments_written, ms = started.elapsed().as_millis() as u64, "compacted"),
                        Err(e) => tracing::error!(error = %e, "compaction failed; the journal keeps the data, retrying later"),
                    }
                    last = Instant::now();
                }
                if stopping {
                    return;
                }
                if last_expiry.is_none_or(|t| t.elapsed() >= schedule.expire_interval) {
                    let _round = rounds.lock();
                    let now = crate::clock::now_ms();
                    if let Err(e) = expire_once(&store, &memtable, &|p| (schedule.cutoff)(p, now)) {
                        tracing::error!(error = %e, "retention sweep failed; retrying later");
                    }
                    last_expiry = Some(Instant::now());
                }
            }
        })
        .expect("BUG: cannot spawn the compactor thread");
    CompactorHandle {
        state,
        thread: Some(thread),
    }
}
