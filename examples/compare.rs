//! The client half of `benches/compare.sh`: feeds stathook, VictoriaMetrics or InfluxDB the
//! same generated samples and times it; times a 500-bucket query. One JSON line per run on
//! stdout, so the script can tabulate.
//!
//! ```text
//! compare load --target stathook|influx --url URL [--key K --project P] [--db DB]
//!         --dataset quiet|noisy --series N --points P [--connections 4] [--batch 100]
//!         [--server-pid PID]
//! compare query --url URL [--bearer TOKEN] [--rounds 30]
//! compare floor --dataset quiet|noisy --series N --points P
//! ```
//!
//! Datasets (deterministic; series `s{i}`, one point per series every 10 s, time-major, the
//! last point an hour ago):
//! - `quiet`: a third each of counters growing by 0–5 per point, 2-decimal gauges moving by
//!   −0.01, 0 or +0.01, and constants;
//! - `noisy`: 2-decimal gauges moving by −0.20…+0.20 (41 equally likely steps).
//!
//! Every random choice is uniform, so the information in the dataset — the floor no lossless
//! encoding can beat — is the sum of log2(choices) over the samples: `floor` prints it in
//! bytes per sample (timestamps are regular and cost nothing; the first value of each series
//! is not counted).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::time::{Duration, Instant};

const STEP_MS: i64 = 10_000;

#[derive(Clone, Copy, PartialEq)]
enum Dataset {
    Quiet,
    Noisy,
}

/// What the generator draws for one series: the start value, the step choices (in units of
/// `scale`) and how many decimals the values have.
struct Shape {
    start: i64,
    steps: &'static [i64],
    decimals: u32,
}

const COUNTER_STEPS: &[i64] = &[0, 1, 2, 3, 4, 5];
const QUIET_GAUGE_STEPS: &[i64] = &[-1, 0, 1];
const CONSTANT_STEPS: &[i64] = &[0];
const NOISY_STEPS: &[i64] = &[
    -20, -19, -18, -17, -16, -15, -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3, -2, -1, 0,
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
];

fn shape(dataset: Dataset, series: usize) -> Shape {
    let i = series as i64;
    match (dataset, series % 3) {
        (Dataset::Noisy, _) => Shape {
            start: 5_000 + i,
            steps: NOISY_STEPS,
            decimals: 2,
        },
        (Dataset::Quiet, 0) => Shape {
            start: 1_000 * i,
            steps: COUNTER_STEPS,
            decimals: 0,
        },
        (Dataset::Quiet, 1) => Shape {
            start: 5_000 + i,
            steps: QUIET_GAUGE_STEPS,
            decimals: 2,
        },
        (Dataset::Quiet, _) => Shape {
            start: i,
            steps: CONSTANT_STEPS,
            decimals: 0,
        },
    }
}

/// xorshift64*: deterministic, fast, good enough for picking steps.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n as u64) as usize
    }
}

/// The values of every series, as decimal text (exactly what goes on the wire), time-major:
/// `values[point][series]`.
fn generate(dataset: Dataset, series: usize, points: usize) -> Vec<Vec<String>> {
    let shapes: Vec<Shape> = (0..series).map(|s| shape(dataset, s)).collect();
    let mut current: Vec<i64> = shapes.iter().map(|s| s.start).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..points)
        .map(|p| {
            shapes
                .iter()
                .zip(current.iter_mut())
                .map(|(shape, v)| {
                    if p > 0 {
                        *v += shape.steps[rng.below(shape.steps.len())];
                    }
                    match shape.decimals {
                        0 => v.to_string(),
                        d => {
                            let scale = 10i64.pow(d);
                            let sign = if *v < 0 { "-" } else { "" };
                            let a = v.abs();
                            format!("{sign}{}.{:0w$}", a / scale, a % scale, w = d as usize)
                        }
                    }
                })
                .collect()
        })
        .collect()
}

fn floor_bytes_per_sample(dataset: Dataset, series: usize, points: usize) -> f64 {
    let bits: f64 = (0..series)
        .map(|s| (shape(dataset, s).steps.len() as f64).log2() * (points as f64 - 1.0))
        .sum();
    bits / 8.0 / (series * points) as f64
}

struct Args {
    cmd: String,
    target: String,
    url: String,
    key: String,
    project: String,
    db: String,
    dataset: Dataset,
    series: usize,
    points: usize,
    connections: usize,
    batch: usize,
    server_pid: Option<u32>,
    bearer: Option<String>,
    rounds: usize,
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    let mut a = Args {
        cmd: argv.next().expect("compare load|query|floor …"),
        target: "stathook".into(),
        url: String::new(),
        key: String::new(),
        project: String::new(),
        db: "bench".into(),
        dataset: Dataset::Quiet,
        series: 1000,
        points: 1000,
        connections: 4,
        batch: 100,
        server_pid: None,
        bearer: None,
        rounds: 30,
    };
    let rest: Vec<String> = argv.collect();
    for pair in rest.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--target" => a.target = v,
            "--url" => a.url = v,
            "--key" => a.key = v,
            "--project" => a.project = v,
            "--db" => a.db = v,
            "--dataset" => {
                a.dataset = match v.as_str() {
                    "quiet" => Dataset::Quiet,
                    "noisy" => Dataset::Noisy,
                    _ => panic!("--dataset quiet|noisy"),
                }
            }
            "--series" => a.series = v.parse().expect("--series N"),
            "--points" => a.points = v.parse().expect("--points N"),
            "--connections" => a.connections = v.parse().expect("--connections N"),
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--server-pid" => a.server_pid = Some(v.parse().expect("--server-pid PID")),
            "--bearer" => a.bearer = Some(v),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The first timestamp of a dataset of `points` points whose last point is an hour ago,
/// rounded to a whole step so every system buckets it alike.
fn first_ts(points: usize) -> i64 {
    let last = (now_ms() - 3_600_000) / STEP_MS * STEP_MS;
    last - (points as i64 - 1) * STEP_MS
}

/// Request bodies of `batch` samples each, in time-major order.
fn bodies(a: &Args, t0: i64) -> Vec<Bytes> {
    let values = generate(a.dataset, a.series, a.points);
    let samples = (0..a.points).flat_map(|p| (0..a.series).map(move |s| (p, s)));
    let all: Vec<(usize, usize)> = samples.collect();
    all.chunks(a.batch)
        .map(|chunk| {
            let mut b = String::with_capacity(chunk.len() * 80);
            if a.target == "stathook" {
                b.push_str(&format!("{{\"projectId\":\"{}\",\"metrics\":[", a.project));
            }
            for (n, &(p, s)) in chunk.iter().enumerate() {
                let ts = t0 + p as i64 * STEP_MS;
                let v = &values[p][s];
                if a.target == "stathook" {
                    if n > 0 {
                        b.push(',');
                    }
                    b.push_str(&format!(
                        "{{\"metricId\":\"s{s}\",\"metricName\":\"s{s}\",\"value\":{v},\"timestamp\":{ts}}}"
                    ));
                } else {
                    b.push_str(&format!("metric,id=s{s} value={v} {ts}\n"));
                }
            }
            if a.target == "stathook" {
                b.push_str("]}");
            }
            Bytes::from(b)
        })
        .collect()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(uri: &hyper::Uri) -> Sender {
    let host = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap_or(80));
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn load(a: Args) {
    let path = if a.target == "stathook" {
        "/api/webhooks/custom".to_string()
    } else {
        format!("/write?db={}&precision=ms", a.db)
    };
    let uri: hyper::Uri = format!("{}{path}", a.url).parse().unwrap();
    let t0 = first_ts(a.points);
    let bodies = bodies(&a, t0);
    let samples = (a.series * a.points) as f64;
    // Request r goes on connection r % connections, in order: each connection sends its
    // stripe oldest first, so every system sees (nearly) time-ordered writes.
    let mut stripes: Vec<Vec<Bytes>> = vec![Vec::new(); a.connections];
    for (r, b) in bodies.into_iter().enumerate() {
        stripes[r % a.connections].push(b);
    }
    let auth = format!("Bearer {}", a.key);
    let cpu0 = a.server_pid.map(cpu_seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for stripe in stripes {
        let (uri, auth) = (uri.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut send = connect(&uri).await;
            let host = uri.authority().unwrap().to_string();
            let mut lat = Vec::with_capacity(stripe.len());
            let mut errors = 0u64;
            for body in stripe {
                let mut req = Request::post(uri.clone()).header("host", &host);
                req = if auth.len() > "Bearer ".len() {
                    req.header("authorization", &auth)
                        .header("content-type", "application/json")
                } else {
                    req.header("content-type", "text/plain")
                };
                let t = Instant::now();
                let resp = send
                    .send_request(req.body(Full::new(body)).unwrap())
                    .await
                    .unwrap();
                let status = resp.status();
                let text = resp.into_body().collect().await.unwrap().to_bytes();
                lat.push(t.elapsed());
                if !status.is_success() {
                    if errors == 0 {
                        eprintln!("{status}: {}", String::from_utf8_lossy(&text));
                    }
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = a.server_pid.map(|p| cpu_seconds(p) - cpu0.unwrap());
    lat.sort();
    println!(
        "{{\"series\":{},\"samples\":{samples},\"seconds\":{seconds:.3},\"samplesPerSec\":{:.0},\"p50Ms\":{:.3},\"p99Ms\":{:.3},\"maxMs\":{:.3},\"errors\":{errors},\"cpuSecPerMillion\":{},\"floorBytesPerSample\":{:.4},\"firstTs\":{},\"lastTs\":{}}}",
        a.series,
        samples / seconds,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        cpu.map(|c| format!("{:.3}", c / samples * 1e6)).unwrap_or("null".into()),
        floor_bytes_per_sample(a.dataset, a.series, a.points),
        t0,
        t0 + (a.points as i64 - 1) * STEP_MS,
    );
    if errors > 0 {
        std::process::exit(1);
    }
}

/// Times GET `url`, warm: 3 untimed requests, then `rounds` timed ones on one connection.
async fn query(a: Args) {
    let uri: hyper::Uri = a.url.parse().unwrap();
    let mut send = connect(&uri).await;
    let host = uri.authority().unwrap().to_string();
    let mut lat = Vec::new();
    let mut bytes = 0;
    for round in 0..a.rounds + 3 {
        let mut req = Request::get(uri.clone()).header("host", &host);
        if let Some(t) = &a.bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let t = Instant::now();
        send.ready().await.unwrap();
        let resp = send
            .send_request(req.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let took = t.elapsed();
        if !status.is_success() {
            eprintln!("{status}: {}", String::from_utf8_lossy(&body));
            std::process::exit(1);
        }
        bytes = body.len();
        if round >= 3 {
            lat.push(took);
        }
    }
    lat.sort();
    println!(
        "{{\"p50Ms_query\":{:.3},\"p90Ms_query\":{:.3},\"responseBytes\":{bytes}}}",
        pct(&lat, 0.5),
        pct(&lat, 0.9)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    match a.cmd.as_str() {
        "load" => load(a).await,
        "query" => query(a).await,
        "floor" => println!(
            "{:.4}",
            floor_bytes_per_sample(a.dataset, a.series, a.points)
        ),
        other => panic!("unknown command {other}: load|query|floor"),
    }
}
