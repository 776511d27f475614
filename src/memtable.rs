//! Memtable: the in-memory copy of every journal record that is not yet in a segment, plus
//! the live catalog (latest name, unit, value and counts of every metric).
//!
//! Split into the same shards as the journal: shard `i` is written only by journal shard
//! `i`'s writer thread, after the record is fsync'd, so a reader never sees a sample that a
//! crash could lose. Samples are grouped by journal *generation*: the current one takes
//! writes, frozen ones (sealed by a rotation) are immutable and wait for the compactor.
//! Owns no I/O; the one store lookup it needs (did this timestamp already exist in a segment?)
//! is passed in as a closure.

use crate::store::CatalogRow;
use compact_str::CompactString;
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::collections::BTreeMap;

/// Maps keyed by project id and metricId. foldhash: several times cheaper than SipHash on
/// short keys (hashing showed up at ~3% of ingest CPU) and randomly seeded per map, so
/// crafted ids cannot force collisions.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub value: f64,
    pub metadata: Option<Box<str>>,
}

/// One metric's samples within one generation, newest write per timestamp. Its name and
/// unit live once, in the metric's `CatalogEntry`.
#[derive(Debug, Default)]
pub struct Series {
    pub points: Points,
}

/// Points by timestamp. Samples almost always arrive in time order, so they are kept in a
/// sorted `Vec` where a new one is a push (a BTreeMap insert walked ~3 cache-missing nodes
/// per sample, ~10 % of ingest CPU). Parallel senders reorder a little (a series' next
/// point can overtake the previous one on another connection), so a point that lands
/// within `NEAR_ORDER_SHIFT` of the end is inserted by a short shift, and an overwrite is
/// done in place. Only a write further back turns the vector into a BTreeMap, so
/// out-of-order backfills cost O(log n), never a long shift.
/// Where `ts` is (`Ok`) or would go (`Err`) in `v`, sorted by timestamp, searching
/// backwards in doubling steps: a late point is near the end, and a binary search over the
/// whole vector touched a dozen cold cache lines per sample (13 % of ingest CPU).
fn search_from_end(v: &[(i64, Point)], ts: i64) -> Result<usize, usize> {
    let (mut hi, mut step) = (v.len(), 1);
    loop {
        // Every point at or after `hi` is later than `ts`.
        let lo = hi.saturating_sub(step);
        if lo == 0 || v[lo].0 <= ts {
            return match v[lo..hi].binary_search_by_key(&ts, |(t, _)| *t) {
                Ok(i) => Ok(lo + i),
                Err(i) => Err(lo + i),
            };
        }
        hi = lo;
        step *= 2;
    }
}

/// How far from the end of an in-order `Points` a late point may be inserted by shifting
/// (64 points × 32 bytes: one short memmove).
const NEAR_ORDER_SHIFT: usize = 64;

#[derive(Debug)]
pub enum Points {
    InOrder(Vec<(i64, Point)>),
    Any(BTreeMap<i64, Point>),
}

impl Default for Points {
    fn default() -> Points {
        Points::InOrder(Vec::new())
    }
}

/// Iterator over `Points`, oldest first.
pub enum PointsIter<'a> {
    InOrder(std::slice::Iter<'a, (i64, Point)>),
    Any(std::collections::btree_map::Range<'a, i64, Point>),
}

impl<'a> Iterator for PointsIter<'a> {
    type Item = (&'a i64, &'a Point);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            PointsIter::InOrder(it) => it.next().map(|(t, p)| (t, p)),
            PointsIter::Any(it) => it.next(),
        }
    }
}

impl Points {
    /// Stores `point` at `ts`; returns the point it replaced, if any.
    pub fn insert(&mut self, ts: i64, point: Point) -> Option<Point> {
        match self {
            Points::InOrder(v) => match v.last_mut() {
                None => {
                    v.push((ts, point));
                    None
                }
                Some((last, _)) if ts > *last => {
                    v.push((ts, point));
                    None
                }
                Some((last, p)) if ts == *last => Some(std::mem::replace(p, point)),
                Some(_) => match search_from_end(v, ts) {
                    Ok(i) => Some(std::mem::replace(&mut v[i].1, point)),
                    Err(i) if v.len() - i <= NEAR_ORDER_SHIFT => {
                        v.insert(i, (ts, point));
                        None
                    }
                    Err(_) => {
                        let map: BTreeMap<i64, Point> = std::mem::take(v).into_iter().collect();
                        *self = Points::Any(map);
                        self.insert(ts, point)
                    }
                },
            },
            Points::Any(m) => m.insert(ts, point),
        }
    }

    /// Stores `point` at `ts`, which the caller knows is later than every point held (the
    /// metric's catalog says so): no look at the last point, whose cache line is cold when
    /// hundreds of series take turns.
    fn push_last(&mut self, ts: i64, point: Point) {
        match self {
            Points::InOrder(v) => {
                debug_assert!(v.last().is_none_or(|(t, _)| *t < ts), "BUG: not the last");
                v.push((ts, point));
            }
            Points::Any(m) => {
                m.insert(ts, point);
            }
        }
    }

    pub fn contains_key(&self, ts: &i64) -> bool {
        match self {
            Points::InOrder(v) => v.binary_search_by_key(ts, |(t, _)| *t).is_ok(),
            Points::Any(m) => m.contains_key(ts),
        }
    }

    pub fn first_key_value(&self) -> Option<(&i64, &Point)> {
        match self {
            Points::InOrder(v) => v.first().map(|(t, p)| (t, p)),
            Points::Any(m) => m.first_key_value(),
        }
    }

    pub fn last_key_value(&self) -> Option<(&i64, &Point)> {
        match self {
            Points::InOrder(v) => v.last().map(|(t, p)| (t, p)),
            Points::Any(m) => m.last_key_value(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Points::InOrder(v) => v.is_empty(),
            Points::Any(m) => m.is_empty(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Points::InOrder(v) => v.len(),
            Points::Any(m) => m.len(),
        }
    }

    /// Points with `from <= ts <= to`, oldest first.
    pub fn range(&self, bounds: std::ops::RangeInclusive<i64>) -> PointsIter<'_> {
        let (from, to) = (*bounds.start(), *bounds.end());
        match self {
            Points::InOrder(v) => {
                let lo = v.partition_point(|(t, _)| *t < from);
                let hi = v.partition_point(|(t, _)| *t <= to).max(lo);
                PointsIter::InOrder(v[lo..hi].iter())
            }
            Points::Any(m) if from <= to => PointsIter::Any(m.range(bounds)),
            Points::Any(m) => PointsIter::Any(m.range(0..0)),
        }
    }

    /// Every point, oldest first.
    pub fn iter(&self) -> PointsIter<'_> {
        match self {
            Points::InOrder(v) => PointsIter::InOrder(v.iter()),
            Points::Any(m) => PointsIter::Any(m.range(..)),
        }
    }
}

/// The samples of one sealed journal generation of one shard (the current generation's
/// live in `ShardMem::projects`, next to each metric's catalog entry).
#[derive(Debug, Default)]
pub struct Generation {
    pub generation: u64,
    /// Keys inline up to 24 bytes (as in `Metrics`): a rotation copies every metricId, and
    /// a heap copy was a malloc per series.
    pub projects: HashMap<Box<str>, HashMap<CompactString, Series>>,
    pub samples: usize,
}

impl Generation {
    fn series(&self, project: &str, metric: &str) -> Option<&Series> {
        self.projects.get(project)?.get(metric)
    }
}

/// The live catalog entry of a metric: segments and journal tail together.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// Inline up to 24 bytes, so the per-sample "did the name change?" check reads no
    /// other cache line.
    pub metric_name: CompactString,
    pub unit: Option<CompactString>,
    pub first_timestamp: i64,
    pub last_timestamp: i64,
    pub last_value: f64,
    /// Distinct timestamps held by segments (exact, from the last compaction).
    pub compacted_count: u64,
    /// The last timestamp held by segments; a write at or before it may replace a segment
    /// sample, after it never does.
    pub compacted_last_timestamp: Option<i64>,
    /// (generation, writes of a timestamp new to the metric) for uncompacted generations.
    /// Inline: usually one or two generations, and a heap vector cost a cache miss per
    /// sample.
    pub new_counts: SmallVec<[(u64, u64); 2]>,
    /// (generation, timestamp) of writes at or before `compacted_last_timestamp` that were
    /// not in the memtable: they may or may not replace a segment sample. Resolved against
    /// the store only when the count is read, so late samples and retries cost no store
    /// lookup on the write path.
    pub uncertain: Vec<(u64, i64)>,
}

impl CatalogEntry {
    fn new(metric_name: &str, unit: Option<&str>, ts: i64, value: f64) -> CatalogEntry {
        CatalogEntry {
            metric_name: metric_name.into(),
            unit: unit.map(Into::into),
            first_timestamp: ts,
            last_timestamp: ts,
            last_value: value,
            compacted_count: 0,
            compacted_last_timestamp: None,
            new_counts: SmallVec::new(),
            uncertain: Vec::new(),
        }
    }

    fn add_new(&mut self, generation: u64) {
        match self.new_counts.last_mut() {
            Some((g, n)) if *g == generation => *n += 1,
            _ => self.new_counts.push((generation, 1)),
        }
    }

    /// Distinct timestamps of the metric; `in_segments(ts)` is asked only for late writes.
    pub fn sample_count(&self, in_segments: &mut dyn FnMut(i64) -> bool) -> u64 {
        let new: u64 = self.new_counts.iter().map(|(_, n)| n).sum();
        let late = self
            .uncertain
            .iter()
            .filter(|(_, ts)| !in_segments(*ts))
            .count() as u64;
        self.compacted_count + new + late
    }
}

/// Everything a shard knows of one metric: its live catalog entry and its points of the
/// current generation, under one hash entry, so applying a sample costs one probe. Two
/// maps probed three times, each probe following a pointer to its key, cost ~8 cache misses
/// a sample; one entry took the applier from 30 % to 25 % of server CPU (quiet load, perf).
#[derive(Debug)]
struct Metric {
    catalog: CatalogEntry,
    current: Points,
}

/// A project's metrics by metricId. The key is inline up to 24 bytes, so a probe compares
/// it without following a pointer.
type Metrics = hashbrown::HashMap<CompactString, Metric, foldhash::fast::RandomState>;

#[derive(Default)]
struct ShardMem {
    frozen: Vec<Arc<Generation>>,
    /// The current generation: its number and sample count. Its points are in `metrics`.
    generation: u64,
    current_samples: usize,
    projects: HashMap<Box<str>, Metrics>,
}

impl ShardMem {
    /// Moves the current generation's points into a frozen `Generation` and starts `next`.
    /// Walks every metric of the shard: a rotation comes once per compaction round.
    fn rotate(&mut self, next: u64) {
        let mut old = Generation {
            generation: self.generation,
            samples: std::mem::take(&mut self.current_samples),
            ..Default::default()
        };
        self.generation = next;
        if old.samples == 0 {
            return;
        }
        for (project, metrics) in &mut self.projects {
            let mut series = HashMap::default();
            for (id, m) in metrics.iter_mut().filter(|(_, m)| !m.current.is_empty()) {
                let points = std::mem::take(&mut m.current);
                series.insert(id.clone(), Series { points });
            }
            if !series.is_empty() {
                old.projects.insert(project.clone(), series);
            }
        }
        self.frozen.push(Arc::new(old));
    }

    fn metric(&self, project: &str, metric: &str) -> Option<&Metric> {
        self.projects.get(project)?.get(metric)
    }

    /// The metric's points in every generation, oldest generation first.
    fn points<'a>(&'a self, project: &'a str, metric: &'a str) -> impl Iterator<Item = &'a Points> {
        let frozen = self
            .frozen
            .iter()
            .filter_map(move |g| g.series(project, metric).map(|s| &s.points));
        frozen.chain(self.metric(project, metric).map(|m| &m.current))
    }
}

/// One sample to apply, borrowed from a decoded journal record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewSample<'a> {
    pub metric_id: &'a str,
    pub metric_name: &'a str,
    pub unit: Option<&'a str>,
    pub timestamp_ms: i64,
    pub value: f64,
    pub metadata: Option<&'a str>,
}

pub struct Memtable {
    shards: Vec<RwLock<ShardMem>>,
    /// Samples not yet compacted, over all shards: the compactor's size trigger.
    pending_samples: AtomicUsize,
}

impl Memtable {
    pub fn new(shard_count: usize, generation: u64) -> Memtable {
        let shards = (0..shard_count)
            .map(|_| {
                RwLock::new(ShardMem {
                    generation,
                    ..Default::default()
                })
            })
            .collect();
        Memtable {
            shards,
            pending_samples: AtomicUsize::new(0),
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    pub fn pending_samples(&self) -> usize {
        self.pending_samples.load(Ordering::Relaxed)
    }

    /// Seeds the catalog with what the segments hold (at open, before any replay).
    pub fn load_catalog_row(&self, shard: usize, project: &str, metric: &str, row: CatalogRow) {
        let mut mem = self.shards[shard].write();
        let catalog = CatalogEntry {
            metric_name: row.metric_name.into(),
            unit: row.unit.map(Into::into),
            first_timestamp: row.first_timestamp,
            last_timestamp: row.last_timestamp,
            last_value: row.last_value,
            compacted_count: row.count,
            compacted_last_timestamp: Some(row.last_timestamp),
            new_counts: SmallVec::new(),
            uncertain: Vec::new(),
        };
        let current = Points::default();
        get_or_insert(&mut mem.projects, project)
            .insert(metric.into(), Metric { catalog, current });
    }

    /// Applies one journal record's samples to generation `generation` (the current one
    /// while serving; recovery replays older ones). A record holds one shard's part of a
    /// request, so its first sample names the shard. Does no I/O.
    pub fn apply(&self, generation: u64, project: &str, samples: &[NewSample<'_>]) {
        let Some(first) = samples.first() else { return };
        let shard = shard_of(project, first.metric_id, self.shards.len());
        debug_assert!(
            samples
                .iter()
                .all(|s| shard_of(project, s.metric_id, self.shards.len()) == shard),
            "BUG: a record mixes shards"
        );
        let mut guard = self.shards[shard].write();
        let mem = &mut *guard;
        if generation != mem.generation {
            // Recovery replays generations in increasing order; each becomes current in turn.
            assert!(
                generation > mem.generation,
                "BUG: replaying generations out of order"
            );
            mem.rotate(generation);
        }
        let ShardMem {
            frozen,
            current_samples,
            projects,
            ..
        } = mem;
        let metrics = get_or_insert(projects, project);
        let mut added = 0;
        for s in samples {
            let ts = s.timestamp_ms;
            let point = Point {
                value: s.value,
                metadata: s.metadata.map(Into::into),
            };
            let m = match metrics.entry_ref(s.metric_id) {
                hashbrown::hash_map::EntryRef::Occupied(o) => o.into_mut(),
                hashbrown::hash_map::EntryRef::Vacant(v) => {
                    let mut catalog = CatalogEntry::new(s.metric_name, s.unit, ts, s.value);
                    catalog.add_new(generation);
                    let mut current = Points::default();
                    current.push_last(ts, point);
                    v.insert(Metric { catalog, current });
                    *current_samples += 1;
                    added += 1;
                    continue;
                }
            };
            let e = &mut m.catalog;
            if e.metric_name != s.metric_name {
                e.metric_name = s.metric_name.into();
            }
            if e.unit.as_deref() != s.unit {
                e.unit = s.unit.map(Into::into);
            }
            // The common case, a timestamp after everything seen, is new to the metric and
            // goes at the end of the current points: no lookup at all. (`last_timestamp` is
            // never below a point held in memory.)
            if ts > e.last_timestamp {
                m.current.push_last(ts, point);
                *current_samples += 1;
                added += 1;
                e.add_new(generation);
                e.last_timestamp = ts;
                e.last_value = s.value;
                continue;
            }
            let in_current = m.current.insert(ts, point).is_some();
            if !in_current {
                *current_samples += 1;
                added += 1;
                // Is this timestamp new to the metric (for the count)?
                if !frozen.iter().any(|g| {
                    g.series(project, s.metric_id)
                        .is_some_and(|x| x.points.contains_key(&ts))
                }) {
                    if e.compacted_last_timestamp.is_some_and(|c| ts <= c) {
                        e.uncertain.push((generation, ts));
                    } else {
                        e.add_new(generation);
                    }
                }
            }
            e.first_timestamp = e.first_timestamp.min(ts);
            if ts == e.last_timestamp {
                e.last_value = s.value;
            }
        }
        self.pending_samples.fetch_add(added, Ordering::Relaxed);
    }

    /// Seals shard `shard`'s current generation and starts `next`. Called by the shard's
    /// writer thread between groups, so every record of the old journal file is in it.
    pub fn rotate(&self, shard: usize, next: u64) {
        self.shards[shard].write().rotate(next);
    }

    /// The frozen generations `<= through` of every shard, oldest first per shard.
    pub fn frozen_through(&self, through: u64) -> Vec<Arc<Generation>> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mem = shard.read();
            out.extend(
                mem.frozen
                    .iter()
                    .filter(|g| g.generation <= through)
                    .cloned(),
            );
        }
        out
    }

    /// Drops compacted generations (after their commit) and their counters, and records what
    /// the segments now hold per compacted metric: (project, metric, last timestamp, count).
    pub fn release_through(&self, through: u64, compacted: &[(&str, &str, i64, u64)]) {
        let mut released = 0;
        // Each metric's shard found once, not once per shard.
        let mut by_shard: Vec<Vec<&(&str, &str, i64, u64)>> = vec![Vec::new(); self.shards.len()];
        for c in compacted {
            by_shard[shard_of(c.0, c.1, self.shards.len())].push(c);
        }
        for (shard, compacted) in self.shards.iter().zip(by_shard) {
            let mut mem = shard.write();
            mem.frozen.retain(|g| {
                let keep = g.generation > through;
                if !keep {
                    released += g.samples;
                }
                keep
            });
            for (p, m, last, count) in compacted {
                if let Some(x) = mem.projects.get_mut(*p).and_then(|x| x.get_mut(*m)) {
                    x.catalog.compacted_last_timestamp = Some(*last);
                    x.catalog.compacted_count = *count;
                }
            }
            for metrics in mem.projects.values_mut() {
                for x in metrics.values_mut() {
                    x.catalog.new_counts.retain(|(g, _)| *g > through);
                    x.catalog.uncertain.retain(|(g, _)| *g > through);
                }
            }
        }
        self.pending_samples
            .fetch_sub(released.min(self.pending_samples()), Ordering::Relaxed);
    }

    /// Re-derives a metric's catalog entry after its segments changed outside a compaction
    /// (deletion: `segments` None; retention: the catalog row left). Samples still in memory
    /// (written after the compaction that preceded the change) stay and keep counting. The
    /// entry is removed when neither segments nor memory hold anything.
    pub fn reset_compacted(&self, project: &str, metric: &str, segments: Option<&CatalogRow>) {
        let mut guard = self.shards[shard_of(project, metric, self.shards.len())].write();
        let mem = &mut *guard;
        let (mut first, mut last): (Option<i64>, Option<(i64, f64)>) = (None, None);
        for points in mem.points(project, metric) {
            if let Some((t, _)) = points.first_key_value() {
                first = Some(first.map_or(*t, |f| f.min(*t)));
            }
            if let Some((t, p)) = points.last_key_value() {
                // Later generations come later in this walk and win on equal timestamps.
                if last.is_none_or(|(lt, _)| *t >= lt) {
                    last = Some((*t, p.value));
                }
            }
        }
        let Some(metrics) = mem.projects.get_mut(project) else {
            return;
        };
        if first.is_none() && segments.is_none() {
            metrics.remove(metric);
            return;
        }
        let Some(e) = metrics.get_mut(metric).map(|x| &mut x.catalog) else {
            return;
        };
        match segments {
            Some(row) => {
                e.compacted_count = row.count;
                e.compacted_last_timestamp = Some(row.last_timestamp);
                e.first_timestamp =
                    first.map_or(row.first_timestamp, |f| f.min(row.first_timestamp));
                let (lt, lv) = match last {
                    Some((t, v)) if t >= row.last_timestamp => (t, v),
                    _ => (row.last_timestamp, row.last_value),
                };
                e.last_timestamp = lt;
                e.last_value = lv;
            }
            None => {
                // Nothing in segments: a write that might have replaced a segment sample is
                // simply new.
                for (g, _) in std::mem::take(&mut e.uncertain) {
                    e.add_new(g);
                }
                e.compacted_count = 0;
                e.compacted_last_timestamp = None;
                if let (Some(f), Some((lt, lv))) = (first, last) {
                    e.first_timestamp = f;
                    e.last_timestamp = lt;
                    e.last_value = lv;
                }
            }
        }
    }

    /// The uncompacted samples of one metric in `[from_ms, to_ms]`, later writes winning.
    pub fn read(
        &self,
        project: &str,
        metric: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> BTreeMap<i64, Point> {
        let mem = self.shards[shard_of(project, metric, self.shards.len())].read();
        let mut out = BTreeMap::new();
        for points in mem.points(project, metric) {
            for (ts, p) in points.range(from_ms..=to_ms) {
                out.insert(*ts, p.clone());
            }
        }
        out
    }

    /// The live catalog of a project, sorted by metricId.
    pub fn catalog(&self, project: &str) -> Vec<(Box<str>, CatalogEntry)> {
        let mut out: Vec<(Box<str>, CatalogEntry)> = Vec::new();
        for shard in &self.shards {
            let mem = shard.read();
            if let Some(metrics) = mem.projects.get(project) {
                out.extend(
                    metrics
                        .iter()
                        .map(|(k, x)| (k.as_str().into(), x.catalog.clone())),
                );
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// How many metrics `project` has (the push formats' series cap counts them).
    pub fn metric_count(&self, project: &str) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().projects.get(project).map_or(0, |m| m.len()))
            .sum()
    }

    /// How many of `metrics` (distinct metricIds) `project` does not have yet.
    pub fn count_new<'a>(&self, project: &str, metrics: impl Iterator<Item = &'a str>) -> usize {
        metrics
            .filter(|m| {
                let mem = self.shards[shard_of(project, m, self.shards.len())].read();
                mem.metric(project, m).is_none()
            })
            .count()
    }

    /// The metric's latest metricName and unit (what compaction writes to its catalog row),
    /// without copying the rest of its entry.
    pub fn name_and_unit(&self, project: &str, metric: &str) -> Option<(String, Option<String>)> {
        let mem = self.shards[shard_of(project, metric, self.shards.len())].read();
        mem.metric(project, metric).map(|x| {
            (
                x.catalog.metric_name.to_string(),
                x.catalog.unit.as_deref().map(str::to_owned),
            )
        })
    }

    pub fn catalog_entry(&self, project: &str, metric: &str) -> Option<CatalogEntry> {
        let mem = self.shards[shard_of(project, metric, self.shards.len())].read();
        mem.metric(project, metric).map(|x| x.catalog.clone())
    }
}

/// The value under `key`, inserted as default if absent; allocates the key only then.
fn get_or_insert<'m, V: Default>(map: &'m mut HashMap<Box<str>, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.into(), V::default());
    }
    map.get_mut(key).expect("BUG: inserted just above")
}

/// Which shard owns a metric: FNV-1a of `project \0 metricId`. Must never change for a
/// given shard count (a metric's order of writes is its shard's order), hence no random
/// hasher.
pub fn shard_of(project: &str, metric: &str, shard_count: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in project.bytes().chain([0u8]).chain(metric.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shard_count as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `Points` behaves exactly like a BTreeMap, in order or not, through the switch.
        #[test]
        fn points_match_a_btreemap(
            writes in proptest::collection::vec((0i64..60, -5i64..5), 0..200),
            from in 0i64..60,
            len in -3i64..60,
        ) {
            let (mut points, mut model) = (Points::default(), BTreeMap::new());
            for (i, (ts, step)) in writes.iter().enumerate() {
                // Mostly increasing timestamps with occasional steps back, like real clients.
                let ts = ts + if *step < 4 { i as i64 * 10 } else { 0 };
                let p = Point { value: i as f64, metadata: None };
                prop_assert_eq!(points.insert(ts, p.clone()), model.insert(ts, p));
                prop_assert_eq!(points.contains_key(&ts), true);
            }
            prop_assert_eq!(points.len(), model.len());
            prop_assert_eq!(points.is_empty(), model.is_empty());
            prop_assert_eq!(points.first_key_value(), model.first_key_value());
            prop_assert_eq!(points.last_key_value(), model.last_key_value());
            prop_assert!(points.iter().eq(model.iter()));
            let to = from + len;
            let expect: Vec<_> = if from <= to { model.range(from..=to).collect() } else { vec![] };
            prop_assert_eq!(points.range(from..=to).collect::<Vec<_>>(), expect);
            prop_assert_eq!(points.contains_key(&-1), false);
        }
    }

    proptest! {
        /// Writes to a few metrics, mostly in time order, with rotations between batches,
        /// read back exactly as a map per metric says (the latest write of a timestamp
        /// wins), with the catalog's first/last timestamp, last value and count to match.
        #[test]
        fn apply_and_rotate_match_a_map_per_metric(
            batches in proptest::collection::vec(
                (proptest::collection::vec((0usize..3, 0i64..40, -3i64..1), 1..30), any::<bool>()),
                1..12,
            ),
        ) {
            let m = Memtable::new(2, 1);
            let ids = ["a", "b", "c"];
            let mut model: Vec<BTreeMap<i64, f64>> = vec![BTreeMap::new(); 3];
            let (mut generation, mut clock) = (1, 0);
            for (i, (writes, rotate)) in batches.iter().enumerate() {
                for (k, (metric, jump, back)) in writes.iter().enumerate() {
                    clock += jump;
                    // Mostly the next timestamp; now and then an earlier one (a retry or a
                    // late point), which must take the slow path.
                    let ts = (clock + back * 7).max(0);
                    let value = (i * 100 + k) as f64;
                    let s = NewSample { metric_id: ids[*metric], ..sample("", ts, value) };
                    // One sample per record: a record holds one shard's samples.
                    m.apply(generation, "p", &[s]);
                    model[*metric].insert(ts, value);
                }
                if *rotate {
                    generation += 1;
                    for shard in 0..m.shard_count() {
                        m.rotate(shard, generation);
                    }
                }
            }
            for (id, want) in ids.iter().zip(&model) {
                let got: Vec<(i64, f64)> =
                    m.read("p", id, 0, i64::MAX).into_iter().map(|(t, p)| (t, p.value)).collect();
                prop_assert_eq!(&got, &want.iter().map(|(t, v)| (*t, *v)).collect::<Vec<_>>());
                let Some(e) = m.catalog_entry("p", id) else {
                    prop_assert!(want.is_empty());
                    continue;
                };
                let (first, last) = (want.first_key_value().unwrap(), want.last_key_value().unwrap());
                prop_assert_eq!(
                    (e.first_timestamp, e.last_timestamp, e.last_value),
                    (*first.0, *last.0, *last.1)
                );
                prop_assert_eq!(e.sample_count(&mut |_| false), want.len() as u64);
            }
            let listed: Vec<Box<str>> = m.catalog("p").into_iter().map(|(k, _)| k).collect();
            let expect: Vec<Box<str>> = ids
                .iter()
                .zip(&model)
                .filter(|(_, w)| !w.is_empty())
                .map(|(id, _)| Box::from(*id))
                .collect();
            prop_assert_eq!(listed, expect);
        }
    }

    #[test]
    fn points_stay_a_vector_while_nearly_in_order() {
        let mut p = Points::default();
        let pt = |v: f64| Point {
            value: v,
            metadata: None,
        };
        assert_eq!(p.insert(10, pt(1.0)), None);
        assert_eq!(p.insert(20, pt(2.0)), None);
        assert_eq!(p.insert(20, pt(3.0)), Some(pt(2.0)));
        assert_eq!(p.insert(10, pt(4.0)), Some(pt(1.0)), "overwrite in place");
        assert_eq!(p.insert(15, pt(5.0)), None, "a late point near the end");
        assert!(matches!(p, Points::InOrder(_)));
        assert_eq!(
            p.iter().map(|(t, x)| (*t, x.value)).collect::<Vec<_>>(),
            vec![(10, 4.0), (15, 5.0), (20, 3.0)]
        );
        for ts in 100..100 + NEAR_ORDER_SHIFT as i64 {
            p.insert(ts, pt(0.0));
        }
        assert!(matches!(p, Points::InOrder(_)));
        // NEAR_ORDER_SHIFT + 2 points lie after 12: too far back to shift.
        assert_eq!(p.insert(12, pt(6.0)), None);
        assert!(matches!(p, Points::Any(_)));
        assert_eq!(p.len(), 4 + NEAR_ORDER_SHIFT);
        assert_eq!(
            p.range(11..=16).map(|(t, _)| *t).collect::<Vec<_>>(),
            [12, 15]
        );
    }

    fn sample(metric: &str, ts: i64, value: f64) -> NewSample<'_> {
        NewSample {
            metric_id: metric,
            metric_name: "M",
            unit: None,
            timestamp_ms: ts,
            value,
            metadata: None,
        }
    }

    fn count(m: &Memtable, segments: &[i64]) -> u64 {
        let e = m.catalog_entry("p", "a").unwrap();
        e.sample_count(&mut |ts| segments.contains(&ts))
    }

    #[test]
    fn counts_distinct_timestamps_across_generations_and_compaction() {
        let m = Memtable::new(1, 1);
        m.apply(
            1,
            "p",
            &[
                sample("a", 10, 1.0),
                sample("a", 20, 2.0),
                sample("a", 10, 3.0),
            ],
        );
        assert_eq!(count(&m, &[]), 2);
        m.rotate(0, 2);
        // A rewrite of a timestamp that sits in a frozen generation is not new.
        m.apply(
            2,
            "p",
            &[
                sample("a", 20, 4.0),
                sample("a", 30, 5.0),
                sample("a", 5, 6.0),
            ],
        );
        assert_eq!(count(&m, &[]), 4);
        let e = m.catalog_entry("p", "a").unwrap();
        assert_eq!(
            (e.first_timestamp, e.last_timestamp, e.last_value),
            (5, 30, 5.0)
        );

        // Generation 1 is compacted: segments hold 10 and 20 (count 2, last 20).
        m.release_through(1, &[("p", "a", 20, 2)]);
        assert_eq!(m.frozen_through(1).len(), 0);
        // Generation 2's counters survive: 30 and 5 are new.
        assert_eq!(count(&m, &[10, 20]), 4);

        // Late writes at or before the compacted end are settled against the segments.
        m.apply(2, "p", &[sample("a", 10, 7.0), sample("a", 15, 8.0)]);
        assert_eq!(
            count(&m, &[10, 20]),
            5,
            "10 replaces a segment sample, 15 is new"
        );
        assert_eq!(
            m.read("p", "a", 0, 100).keys().copied().collect::<Vec<_>>(),
            vec![5, 10, 15, 20, 30]
        );
    }

    #[test]
    fn shard_of_is_stable() {
        // Pinned values (FNV-1a of "project\0metricId"): this test fails if the hash changes,
        // which would make replayed samples land in another shard than live writes.
        assert_eq!(shard_of("p", "a", 4), 0);
        assert_eq!(shard_of("p", "b", 4), 1);
        assert_eq!(shard_of("golden", "daily_signups", 4), 3);
        assert_eq!(shard_of("golden", "revenue", 4), 0);
        assert_eq!(shard_of("", "", 1), 0);
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|i| shard_of("p", &format!("m{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
