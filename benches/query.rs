//! Criterion benches of the query path over a store holding one metric of 10 million samples
//! at 10 s spacing (~3.2 years) and ten metrics of 1 million: `avg` into 500 buckets, a
//! quantile (decodes everything), raw paging and the 10-metric query. Setup cuts segments
//! with `compact::policy::encode_to_fit` and writes them straight through the store's
//! compaction transaction — the layout compaction produces — because feeding 20 M samples
//! through the webhook would take most of a minute before the first measurement.
//!
//! cargo bench --bench query
//! cargo bench --bench query -- --quick avg

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stathook::compact::policy;
use stathook::memtable::Memtable;
use stathook::query::{self, Params, Plan};
use stathook::segment::Sample;
use stathook::store::{CatalogRow, Store};

const STEP_MS: i64 = 10_000;
const START_MS: i64 = 1_600_000_000_000;

/// Writes `count` samples of a 2-decimal gauge random walk (seeded) as segments that fill a
/// page each, a million samples at a time.
fn fill(store: &Store, metric: &str, count: usize, seed: u64) {
    let mut x = seed | 1;
    let mut value = 500.0f64;
    let mut round = store.begin_compaction().unwrap();
    let mut c = round.edits().unwrap();
    let budget = policy::segment_budget("p", metric);
    let mut samples = Vec::with_capacity(1 << 20);
    let mut last = 0.0;
    for n in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        value = ((value + (x % 201) as f64 / 100.0 - 1.0) * 100.0).round() / 100.0;
        last = value;
        samples.push(Sample {
            timestamp_ms: START_MS + n as i64 * STEP_MS,
            value,
            metadata: None,
        });
        if samples.len() == 1 << 20 || n + 1 == count {
            for (start, bytes) in policy::encode_to_fit(&samples, budget) {
                c.put_segment("p", metric, start, &bytes).unwrap();
            }
            samples.clear();
        }
    }
    let row = CatalogRow {
        metric_name: metric.into(),
        unit: None,
        first_timestamp: START_MS,
        last_timestamp: START_MS + (count as i64 - 1) * STEP_MS,
        last_value: last,
        count: count as u64,
    };
    c.put_catalog_row("p", metric, &row).unwrap();
    drop(c);
    round.commit(0).unwrap();
}

fn plan(pairs: &[(&str, &str)]) -> Plan {
    let mut p = Params::default();
    for (k, v) in pairs {
        match *k {
            "step" => p.step = Some(v),
            "agg" => p.agg = Some(v),
            "maxPoints" => p.max_points = Some(v),
            "limit" => p.limit = Some(v),
            _ => unreachable!(),
        }
    }
    let span = (START_MS, START_MS + 10_000_000 * STEP_MS);
    Plan::parse(&p, span.1, Some(span)).unwrap()
}

fn queries(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("stathook.redb")).unwrap();
    fill(&store, "big", 10_000_000, 7);
    for i in 0..10 {
        fill(&store, &format!("m{i}"), 1_000_000, 11 + i);
    }
    // An empty memtable: every sample is in segments, as after compaction.
    let memtable = Memtable::new(4, 0);

    let mut g = c.benchmark_group("query_10M_samples");
    g.throughput(Throughput::Elements(10_000_000));
    let avg500 = plan(&[("maxPoints", "500"), ("agg", "avg")]);
    g.bench_function("avg_500_buckets", |b| {
        b.iter(|| query::run(&store, &memtable, "p", "big", &avg500).unwrap())
    });
    let p99 = plan(&[("maxPoints", "500"), ("agg", "p99")]);
    g.sample_size(10);
    g.bench_function("p99_500_buckets_decodes_all", |b| {
        b.iter(|| query::run(&store, &memtable, "p", "big", &p99).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("query_10_metrics_1M_each");
    g.throughput(Throughput::Elements(10_000_000));
    g.bench_function("avg_500_buckets", |b| {
        b.iter(|| {
            (0..10)
                .map(|i| query::run(&store, &memtable, "p", &format!("m{i}"), &avg500).unwrap())
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("query_raw_page");
    g.throughput(Throughput::Elements(1000));
    let raw = plan(&[("limit", "1000")]);
    g.bench_function("first_1000_points", |b| {
        b.iter(|| query::run(&store, &memtable, "p", "big", &raw).unwrap())
    });
    g.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
