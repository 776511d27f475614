//! Load generator for the webhook: N keep-alive connections, M metrics per request, bodies
//! built before the clock starts, fsync'd 200s counted. Reports samples/s, latency
//! percentiles and (with --server-pid) the server's CPU seconds per million samples.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 --key KEY --project P
//!
//! `--influx` sends the same samples as Influx line protocol to `{url}/write` instead (one
//! line per sample, 100 per request, millisecond precision), for comparing with
//! VictoriaMetrics or InfluxDB on the same machine in the same run.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::time::{Duration, Instant};

struct Args {
    url: String,
    key: String,
    project: String,
    connections: usize,
    seconds: f64,
    metrics: usize,
    server_pid: Option<u32>,
    influx: bool,
    /// Requests per second per connection (0 = as fast as the server answers).
    rate: f64,
    /// Print p50/p99 of each interval of this many seconds to stderr (0 = only the total).
    report_every: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        key: String::new(),
        project: String::new(),
        connections: 4,
        seconds: 10.0,
        metrics: 100,
        server_pid: None,
        influx: false,
        rate: 0.0,
        report_every: 0.0,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = argv.iter().position(|a| a == "--influx") {
        argv.remove(i);
        a.influx = true;
    }
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--url" => a.url = v,
            "--key" => a.key = v,
            "--project" => a.project = v,
            "--connections" => a.connections = v.parse().expect("--connections N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds S"),
            "--metrics" => a.metrics = v.parse().expect("--metrics N"),
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid PID")),
            "--rate" => a.rate = v.parse().expect("--rate REQUESTS_PER_S_PER_CONNECTION"),
            "--report-every" => a.report_every = v.parse().expect("--report-every SECONDS"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.influx || (!a.key.is_empty() && !a.project.is_empty()),
        "--key and --project are required"
    );
    a
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The same samples as `body`, as Influx line protocol with millisecond timestamps.
fn influx_body(metrics: usize, ts: i64) -> Bytes {
    let mut s = String::with_capacity(metrics * 48);
    for m in 0..metrics {
        s.push_str(&format!(
            "load_metric_{m} value={} {ts}\n",
            (ts % 1000) as f64 * 1.5 + m as f64
        ));
    }
    Bytes::from(s)
}

/// Bodies per connection, reused round-robin: enough that a 10 s run mostly writes new
/// timestamps, few enough to stay well under a GB.
const BODIES_PER_CONNECTION: usize = 4000;

fn body(project: &str, metrics: usize, ts: i64) -> Bytes {
    let mut s = format!("{{\"projectId\":\"{project}\",\"metrics\":[");
    for m in 0..metrics {
        if m > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"metricId\":\"load_metric_{m}\",\"metricName\":\"Load Metric {m}\",\"value\":{},\"unit\":\"count\",\"timestamp\":{ts}}}",
            (ts % 1000) as f64 * 1.5 + m as f64
        ));
    }
    s.push_str("]}");
    Bytes::from(s)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    let path = if a.influx {
        "/write?precision=ms"
    } else {
        "/api/webhooks/custom"
    };
    let uri: hyper::Uri = format!("{}{path}", a.url).parse().unwrap();
    let host = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap_or(80));
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 86_400_000;
    let bodies: Vec<Vec<Bytes>> = (0..a.connections)
        .map(|c| {
            (0..BODIES_PER_CONNECTION)
                .map(|i| {
                    let ts = base + (i * a.connections + c) as i64;
                    if a.influx {
                        influx_body(a.metrics, ts)
                    } else {
                        body(&a.project, a.metrics, ts)
                    }
                })
                .collect()
        })
        .collect();
    let auth = format!("Bearer {}", a.key);

    let cpu0 = a.server_pid.map(cpu_seconds);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let rate = a.rate;
    // Per-interval latencies, reported by one task every `report_every` seconds.
    let (interval_tx, mut interval_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let interval_tx = (a.report_every > 0.0).then_some(interval_tx);
    if a.report_every > 0.0 {
        let every = Duration::from_secs_f64(a.report_every);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at((start + every).into(), every);
            loop {
                tick.tick().await;
                let mut lat = Vec::new();
                while let Ok(d) = interval_rx.try_recv() {
                    lat.push(d);
                }
                if lat.is_empty() {
                    continue;
                }
                lat.sort();
                let ms = |p: f64| {
                    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
                };
                eprintln!(
                    "t={:>5.0}s requests {:>6} p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                    start.elapsed().as_secs_f64(),
                    lat.len(),
                    ms(0.5),
                    ms(0.99),
                    ms(1.0)
                );
            }
        });
    }
    let mut tasks = Vec::new();
    for (c, conn_bodies) in bodies.into_iter().enumerate() {
        let (host, uri, auth) = (host.clone(), uri.clone(), auth.clone());
        let interval_tx = interval_tx.clone();
        let fresh = (rate > 0.0 && !a.influx)
            .then(|| (a.project.clone(), a.metrics, base, a.connections, c));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let mut lat = Vec::new();
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut i = 0;
            let pace = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
            while Instant::now() < deadline {
                if let Some(p) = pace {
                    tokio::time::sleep_until((start + p * i as u32).into()).await;
                }
                let req = Request::post(uri.clone())
                    .header("host", &host)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .body(Full::new(match &fresh {
                        // Paced runs are long (soaks): every request gets new timestamps,
                        // so the store grows as it would in production.
                        Some((project, metrics, base, connections, c)) => {
                            body(project, *metrics, base + (i * connections + c) as i64)
                        }
                        None => conn_bodies[i % conn_bodies.len()].clone(),
                    }))
                    .unwrap();
                let t = Instant::now();
                let resp = send.send_request(req).await.unwrap();
                let status = resp.status();
                let _ = resp.into_body().collect().await.unwrap();
                lat.push(t.elapsed());
                if let Some(tx) = &interval_tx {
                    let _ = tx.send(t.elapsed());
                }
                if status.is_success() {
                    ok += 1
                } else {
                    failed += 1
                }
                i += 1;
            }
            (lat, ok, failed)
        }));
    }
    let mut lat = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (l, o, f) = t.await.unwrap();
        lat.extend(l);
        ok += o;
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = a.server_pid.map(|p| cpu_seconds(p) - cpu0.unwrap());
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    let samples = ok as f64 * a.metrics as f64;
    println!(
        "requests ok {ok} failed {failed} in {elapsed:.2}s | {:.0} samples/s | latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}{}",
        samples / elapsed,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0),
        cpu.map(|c| format!(" | server CPU {c:.2}s = {:.2} CPU-s per million samples", c / samples * 1e6)).unwrap_or_default()
    );
}
