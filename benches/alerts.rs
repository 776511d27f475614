//! The alert evaluator's cost, for docs/benchmarks.md, measured and printed, never asserted:
//! 10,000 rules (ten per metric: thresholds over 5 m and 1 h, absences, changes) over 1,000
//! metrics holding a day of samples a minute apart (1.44 M samples, compacted). Then the
//! CPU one evaluation of all rules takes (the evaluating thread's own CPU time), and ingest
//! throughput (the spec-shaped load of `stathook bench`, 4 connections, 100 metrics a
//! request) with the evaluator running every second — 60× the default interval — against
//! none, interleaved ABBA.
//!
//! cargo bench --bench alerts

#[path = "../tests/support.rs"]
mod support;

use reqwest::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const METRICS: usize = 1_000;
const RULES_PER_METRIC: usize = 10;

/// The calling thread's CPU time so far (user + system, in the kernel's 10 ms ticks).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name's closing parenthesis start at the 3rd; utime and
    // stime are the 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn rule_body(m: usize, k: usize) -> serde_json::Value {
    let metric = format!("api_latency_{m}");
    let condition = match k {
        0..=3 => {
            json!({"type": "threshold", "agg": (["avg", "max", "last", "min"][k]), "window": "5m", "op": ">", "value": 65})
        }
        4 | 5 => {
            json!({"type": "threshold", "agg": (["avg", "count"][k - 4]), "window": "1h", "op": "<", "value": 40, "clear": 45})
        }
        6 | 7 => json!({"type": "absence", "for": (["10m", "1h"][k - 6])}),
        _ => {
            json!({"type": "change", "agg": (["sum", "avg"][k - 8]), "window": "1h", "op": "<", "percent": -50})
        }
    };
    json!({"name": format!("rule {k} of {metric}"), "metricId": metric, "condition": condition})
}

async fn ingest_round(s: &Server, key: &str) -> f64 {
    let r = stathook::bench::run(stathook::bench::BenchArgs {
        url: s.url.clone(),
        key: Some(key.to_owned()),
        project: Some("load".into()),
        series: 1_000,
        batch: 100,
        connections: 4,
        new_connection: false,
        duration: Duration::from_secs(8),
        points: None,
        dataset: stathook::bench::Dataset::Quiet,
        format: stathook::bench::Format::Webhook,
        db: String::new(),
        rate: None,
        report_every: None,
        server_pid: None,
        ca_cert: None,
    })
    .await
    .unwrap();
    r.samples_per_s
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), |c| c.alert_interval = Duration::from_secs(3600)).await;
    let c = s.client();
    let key = c.setup("rules").await;
    let load_key = c.setup("load").await;
    let took = load_history(&s, &key, "rules", METRICS, 1_440, 60_000).await;
    eprintln!(
        "loaded {} samples in {:.1} s",
        METRICS * 1_440,
        took.as_secs_f64()
    );
    s.app.compact_now().unwrap();
    let t = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..8 {
        let c = s.client();
        tasks.push(tokio::spawn(async move {
            for i in (0..METRICS * RULES_PER_METRIC).filter(|i| i % 8 == lane) {
                let body = rule_body(i / RULES_PER_METRIC, i % RULES_PER_METRIC);
                let r = c
                    .admin(Method::POST, "/api/v1/projects/rules/alerts", Some(body))
                    .await;
                assert_eq!(r.status, 201, "{:?}", r.body);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!(
        "created {} rules in {:.1} s",
        METRICS * RULES_PER_METRIC,
        t.elapsed().as_secs_f64()
    );

    let alerts = s.app.services.alerts.clone();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for round in 0..6 {
        let a = alerts.clone();
        let (w, c, stats) = tokio::task::spawn_blocking(move || {
            let (t, c0) = (Instant::now(), thread_cpu());
            let stats = a.evaluate(stathook::clock::now_ms()).unwrap();
            (t.elapsed(), thread_cpu() - c0, stats)
        })
        .await
        .unwrap();
        assert_eq!(stats.rules, METRICS * RULES_PER_METRIC);
        if round > 0 {
            wall.push(w.as_secs_f64() * 1e3);
            cpu.push(c.as_secs_f64() * 1e3);
        } else {
            eprintln!("first round: {stats:?}");
        }
    }
    let show = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!(
            "median {:.0} ms, min {:.0}, max {:.0} over {}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            v.len()
        )
    };
    let median_cpu = {
        let mut v = cpu.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "one evaluation of {} rules: wall {}",
        METRICS * RULES_PER_METRIC,
        show(wall)
    );
    eprintln!(
        "  its CPU: {} = {:.2} % of one core at the default 60 s interval",
        show(cpu),
        median_cpu / 600.0
    );

    // Ingest with the evaluator busy every second, against none, ABBA.
    let running = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let evaluator = {
        let (a, running, stop) = (alerts.clone(), running.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if running.load(Ordering::Relaxed) {
                    a.evaluate(stathook::clock::now_ms()).unwrap();
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
            }
        })
    };
    let mut ratios = Vec::new();
    for round in 0..4 {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut got = [0.0; 2];
        for with in order {
            running.store(with, Ordering::Relaxed);
            got[with as usize] = ingest_round(&s, &load_key).await;
        }
        eprintln!(
            "round {round}: {:.0} samples/s without, {:.0} with the evaluator",
            got[0], got[1]
        );
        ratios.push(got[1] / got[0]);
    }
    stop.store(true, Ordering::Relaxed);
    evaluator.join().unwrap();
    eprintln!(
        "ingest with / without the evaluator every second: {:?}",
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>()
    );
    s.stop().await;
}
