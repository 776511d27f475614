//! Criterion benches of the ingest path, named after what they measure. Throughput is in
//! samples (metrics), so criterion prints samples/s.
//!
//! cargo bench                      # all, ~1 minute
//! cargo bench -- --quick parse     # one group, quickly

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stathook::ingest::parse_batch;
use stathook::segment::{self, Sample};
use std::sync::Arc;

const NOW: i64 = 1_700_000_000_000;

/// A 100-metric body in the spec's format (~12 KB), as the load generator sends.
fn spec_body(ts: i64) -> Vec<u8> {
    let metrics: Vec<String> = (0..100)
        .map(|m| {
            format!(
                r#"{{"metricId":"load_metric_{m}","metricName":"Load Metric {m}","value":{},"unit":"count","timestamp":{ts}}}"#,
                m as f64 * 1.5
            )
        })
        .collect();
    format!(
        r#"{{"projectId":"load","metrics":[{}]}}"#,
        metrics.join(",")
    )
    .into_bytes()
}

fn parse_validate(c: &mut Criterion) {
    let body = spec_body(NOW - 1000);
    let mut g = c.benchmark_group("parse_validate_100_metrics");
    g.throughput(Throughput::Elements(100));
    g.bench_function("simd_json_tape", |b| {
        b.iter_batched_ref(
            || body.clone(),
            |buf| parse_batch(buf, NOW).unwrap().metrics.len(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// The push parsers on the same 500 samples (Prometheus 2.42's `max_samples_per_send`): 500
/// series `metric_value{id="sN",job="bench"}` with 2-decimal values, each format as its
/// senders write it; the result is the batch the journal takes.
fn parse_push_formats(c: &mut Criterion) {
    use stathook::ingest::{influx, remote_write};
    let ts = NOW - 60_000;
    let value = |i: usize| (i as f64 * 1.37).round() / 100.0 + 40.0;
    let request = remote_write::WriteRequest {
        timeseries: (0..500)
            .map(|i| {
                let id = format!("s{i}");
                remote_write::TimeSeries::new(
                    &[("__name__", "metric_value"), ("id", &id), ("job", "bench")],
                    &[(ts, value(i))],
                )
            })
            .collect(),
    };
    let snappy = remote_write::encode(&request);
    let lines: String = (0..500)
        .map(|i| format!("metric,id=s{i},job=bench value={:.2} {ts}\n", value(i)))
        .collect();
    let mut g = c.benchmark_group("parse_push_500_samples");
    g.throughput(Throughput::Elements(500));
    g.bench_function("remote_write_snappy_protobuf", |b| {
        b.iter(|| remote_write::parse(&snappy, NOW).unwrap().sample_count())
    });
    g.bench_function("influx_line_protocol_ms", |b| {
        b.iter(|| {
            influx::parse(lines.as_bytes(), influx::Precision::Milliseconds, NOW)
                .unwrap()
                .sample_count()
        })
    });
    g.finish();
}

fn journal_append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(stathook::store::Store::open(&dir.path().join("s.redb")).unwrap());
    let memtable = Arc::new(stathook::memtable::Memtable::new(
        stathook::journal::SHARDS,
        0,
    ));
    let (journal, _) = stathook::journal::Journal::open(
        &dir.path().join("journal"),
        store,
        memtable,
        stathook::journal::Fsync::Always,
    )
    .unwrap();
    let journal = Arc::new(journal);
    let mut g = c.benchmark_group("journal_append_group_commit");
    // 8 concurrent requests of 100 metrics: they share fdatasyncs.
    g.throughput(Throughput::Elements(8 * 100));
    g.sample_size(20);
    let mut ts = NOW - 10_000_000;
    g.bench_function("8_concurrent_requests_x_100_metrics_fdatasync", |b| {
        b.iter(|| {
            let bodies: Vec<Vec<u8>> = (0..8)
                .map(|_| {
                    ts += 1;
                    spec_body(ts)
                })
                .collect();
            rt.block_on(async {
                let mut waits = Vec::new();
                for mut body in bodies {
                    let batch = parse_batch(&mut body, NOW).unwrap();
                    waits.push(journal.append(&batch));
                }
                for w in waits {
                    w.await.unwrap();
                }
            })
        })
    });
    g.finish();
    journal.stop();
}

fn segment_codec(c: &mut Criterion) {
    // The segment size of store formats 4 and 5, on which docs/benchmarks.md's figures
    // were measured (format 6 cuts segments by size; the bytes per sample barely move).
    let n = 8192;
    let ints = every_10s(n, |i| (i % 100) as f64);
    let floats: Vec<Sample> = (0..n)
        .map(|i| Sample {
            timestamp_ms: NOW + i as i64 * 10_000 + (i as i64 % 7),
            value: (i as f64).sin() * 100.0,
            metadata: None,
        })
        .collect();
    // A 2-decimal gauge moving by up to ±1.00 (the decimal codec).
    let mut v = 50.0f64;
    let decimals = every_10s(n, |i| {
        v = ((v * 100.0).round() + ((i * 37) % 201) as f64 - 100.0) / 100.0;
        v
    });
    // The quiet data of benches/compare.sh: random steps, so only entropy coding helps
    // (the patterns above are periodic, which zstd finds). Floors: log2(6) and log2(3) bits.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut below = |n: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    };
    let mut counter = 1_000.0f64;
    let random_counter = every_10s(n, |_| {
        counter += below(6) as f64;
        counter
    });
    let mut cents = 5_000i64;
    let random_gauge = every_10s(n, |_| {
        cents += below(3) as i64 - 1;
        cents as f64 / 100.0
    });
    // A sensor reading drifting by irregular small steps (true floats: the XOR codec).
    let mut reading = 21.5f64;
    let float_walk = every_10s(n, |_| {
        reading += (below(2001) as f64 - 1000.0) / 7919.0;
        reading
    });
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Elements(n as u64));
    for (name, data) in [
        ("integer_values", &ints),
        ("decimal_values", &decimals),
        ("float_values", &floats),
        ("float_random_walk", &float_walk),
        ("random_counter_steps_0_to_5", &random_counter),
        ("random_gauge_steps_of_0_01", &random_gauge),
    ] {
        let bytes = segment::encode(data);
        println!(
            "segment {name}: {} samples in {} bytes = {:.2} bytes/sample",
            n,
            bytes.len(),
            bytes.len() as f64 / n as f64
        );
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| segment::encode(data).len())
        });
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| segment::decode(&bytes).unwrap().len())
        });
    }
    // What a compaction round costs a slow metric whose open segment holds 6,000 samples
    // and gains one: appending (only the last block re-encoded) against decoding and
    // re-encoding the whole segment, as compaction did before store format 6.
    let (open, later) = random_gauge[..6001].split_at(6000);
    let open_bytes = segment::encode(open);
    g.throughput(Throughput::Elements(1));
    g.bench_function("add_one_sample_to_6000_by_append", |b| {
        b.iter(|| segment::append(&open_bytes, later).unwrap().unwrap().len())
    });
    g.bench_function("add_one_sample_to_6000_by_reencoding", |b| {
        b.iter(|| {
            let mut all = segment::decode(&open_bytes).unwrap();
            all.extend_from_slice(later);
            segment::encode(&all).len()
        })
    });
    g.finish();
}

/// `n` samples 10 s apart from `NOW`, the i-th valued `value(i)`.
fn every_10s(n: usize, mut value: impl FnMut(usize) -> f64) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            timestamp_ms: NOW + i as i64 * 10_000,
            value: value(i),
            metadata: None,
        })
        .collect()
}

/// The applier's work at high cardinality, as compare.sh's highcard load gives it: 50,000
/// series × 20 points, time-major (every series' point t, then t + 10 s), in records of 25
/// samples of one shard (a 100-metric request over 4 shards). Between two samples of one
/// series 49,999 others are applied, so each sample's hash bucket and points are cold.
fn memtable_apply(c: &mut Criterion) {
    use stathook::memtable::{shard_of, Memtable, NewSample};
    const SERIES: usize = 50_000;
    const POINTS: usize = 20;
    const SHARDS: usize = 4;
    let ids: Vec<String> = (0..SERIES).map(|i| format!("s{i}")).collect();
    // Series grouped by shard, then cut into records of 25.
    let mut by_shard: Vec<Vec<&str>> = vec![Vec::new(); SHARDS];
    for id in &ids {
        by_shard[shard_of("bench", id, SHARDS)].push(id);
    }
    let records: Vec<&[&str]> = by_shard.iter().flat_map(|s| s.chunks(25)).collect();
    let apply_round = |mem: &Memtable, point: usize| {
        for record in &records {
            let samples: Vec<NewSample<'_>> = record
                .iter()
                .map(|id| NewSample {
                    metric_id: id,
                    metric_name: "Bench",
                    unit: None,
                    timestamp_ms: NOW + point as i64 * 10_000,
                    value: point as f64,
                    metadata: None,
                })
                .collect();
            mem.apply(1, "bench", &samples);
        }
    };
    let mut g = c.benchmark_group("memtable_apply");
    g.sample_size(10);
    g.throughput(Throughput::Elements((SERIES * (POINTS - 1)) as u64));
    g.bench_function("50000_series_x_20_points", |b| {
        b.iter_batched(
            || {
                // Every series exists (first point), as after the first round of a load.
                let mem = Memtable::new(SHARDS, 1);
                apply_round(&mem, 0);
                mem
            },
            |mem| {
                for point in 1..POINTS {
                    apply_round(&mem, point);
                }
                mem
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One compaction round after a high-cardinality load: 100,000 new series of 3 samples each
/// (readable names, a unit, 2-decimal values, each series at its own millisecond), moved
/// from the memtable into a fresh store: segments into tail packs, a catalog row each,
/// one commit. The per-series cost of compaction, which a load of few samples per series
/// pays in full.
fn compaction_round(c: &mut Criterion) {
    use stathook::memtable::{shard_of, Memtable, NewSample};
    const SERIES: usize = 100_000;
    const POINTS: usize = 3;
    let shards = stathook::journal::SHARDS;
    let ids: Vec<String> = (0..SERIES).map(|i| format!("s{i}")).collect();
    let names: Vec<String> = (0..SERIES).map(|i| format!("Series {i}")).collect();
    // A record holds samples of one shard, as the journal writes them.
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shards];
    for (i, id) in ids.iter().enumerate() {
        by_shard[shard_of("bench", id, shards)].push(i);
    }
    let records: Vec<&[usize]> = by_shard.iter().flat_map(|s| s.chunks(25)).collect();
    let mut g = c.benchmark_group("compaction_round");
    g.sample_size(10);
    g.throughput(Throughput::Elements((SERIES * POINTS) as u64));
    g.bench_function("100000_new_series_x_3_points", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store =
                    Arc::new(stathook::store::Store::open(&dir.path().join("s.redb")).unwrap());
                let memtable = Arc::new(Memtable::new(shards, 0));
                let (journal, _) = stathook::journal::Journal::open(
                    &dir.path().join("journal"),
                    store.clone(),
                    memtable.clone(),
                    stathook::journal::Fsync::Always,
                )
                .unwrap();
                let generation = journal.status().generation;
                for point in 0..POINTS {
                    for record in &records {
                        let samples: Vec<NewSample<'_>> = record
                            .iter()
                            .map(|&i| NewSample {
                                metric_id: &ids[i],
                                metric_name: &names[i],
                                unit: Some("ms"),
                                timestamp_ms: NOW + (point * 10_000 + i % 10_000) as i64,
                                value: ((i * 7 + point * 3) % 10_000) as f64 / 100.0,
                                metadata: None,
                            })
                            .collect();
                        memtable.apply(generation, "bench", &samples);
                    }
                }
                (dir, store, memtable, journal)
            },
            |(dir, store, memtable, journal)| {
                let stats = stathook::compact::compact_once(&store, &journal, &memtable).unwrap();
                assert_eq!(stats.metrics, SERIES);
                (dir, store, memtable, journal)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    parse_validate,
    parse_push_formats,
    journal_append,
    segment_codec,
    memtable_apply,
    compaction_round
);
criterion_main!(benches);
