//! `stathook bench`: a load generator for any stathook deployment (and, for comparisons, for
//! the peers that take Influx line protocol), like `redis-benchmark`. Keep-alive connections
//! post bodies from `payload`: for a fixed time (`--duration`), closed loop or paced
//! (`--rate`), with series that move on forever; or a fixed dataset (`--points`) sent once,
//! time-major, striped over the connections; or a new connection for every request
//! (`--new-connection`, a fleet of cron jobs). Reports requests and samples per second,
//! latency percentiles, errors by status, and with `--server-pid` the server's CPU time per
//! million samples; `--report-every` prints each interval's latency to stderr. `--query`
//! times a read instead. A client only: it owns nothing of the server.

mod payload;
mod probe;

#[cfg(test)]
pub(crate) use payload::Rng;
pub use payload::{Dataset, Format, SAMPLE_SPACING_MS};
pub use probe::QueryReport;

use http_body_util::Full;
use hyper::Request;
use payload::{fixed_dataset, Bodies, Body, TimedSource};
use probe::{connect, cpu_seconds, exchange, quantile_ms, tls_connector};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Clone, Debug)]
pub struct BenchArgs {
    /// The server's base URL, e.g. `https://metrics.example.com`.
    pub url: String,
    /// A webhook API key (required for `Format::Webhook`; sent as a bearer token if given).
    pub key: Option<String>,
    /// The key's project (required for `Format::Webhook`).
    pub project: Option<String>,
    pub series: usize,
    pub batch: usize,
    pub connections: usize,
    /// A new connection for every request (closed after its answer) instead of keep-alive.
    pub new_connection: bool,
    /// How long a timed run sends; ignored with `points`.
    pub duration: Duration,
    /// A fixed dataset of this many points per series, sent once.
    pub points: Option<usize>,
    pub dataset: Dataset,
    pub format: Format,
    /// The database of `Format::Influx` (`/write?db=…`).
    pub db: String,
    /// Requests per second per connection (a timed run only); None = as fast as answered.
    pub rate: Option<f64>,
    /// Print each interval's request count and latency to stderr.
    pub report_every: Option<Duration>,
    /// The server's process, whose CPU time is measured over the run.
    pub server_pid: Option<u32>,
    pub ca_cert: Option<PathBuf>,
}

/// What a run measured.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    pub connections: usize,
    pub new_connection: bool,
    pub series: usize,
    pub batch: usize,
    pub duration_s: f64,
    /// Requests answered 2xx.
    pub requests: u64,
    /// Samples acknowledged (answered 2xx).
    pub samples: u64,
    pub requests_per_s: f64,
    pub samples_per_s: f64,
    pub latency_ms: Latency,
    /// Failed requests by status (`"401"`, …) or by transport error.
    pub errors: BTreeMap<String, u64>,
    /// The server's CPU seconds over the run (`--server-pid`).
    pub server_cpu_seconds: Option<f64>,
    pub cpu_seconds_per_million: Option<f64>,
    /// A fixed dataset's time range and information floor (see `payload::FixedDataset`).
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    pub floor_bytes_per_sample: Option<f64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl BenchReport {
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "stathook bench: {} {}connections, {} series, {} samples per request, {:.1} s",
            self.connections,
            if self.new_connection {
                "clients on new "
            } else {
                ""
            },
            self.series,
            self.batch,
            self.duration_s
        );
        let _ = writeln!(
            s,
            "requests: {} ({:.1}/s)\nsamples:  {} ({:.0}/s)",
            self.requests, self.requests_per_s, self.samples, self.samples_per_s
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "latency:  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        );
        if let (Some(cpu), Some(per_m)) = (self.server_cpu_seconds, self.cpu_seconds_per_million) {
            let _ = writeln!(
                s,
                "server:   {cpu:.2} CPU-s, {per_m:.3} CPU-s per million samples"
            );
        }
        let errors: u64 = self.errors.values().sum();
        let detail: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            s,
            "errors:   {errors}{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", detail.join(", "))
            }
        );
        s
    }
}

/// Where a connection's bodies come from.
enum Source {
    /// Made as they are sent, until the deadline.
    Timed(Box<TimedSource>),
    /// Made before the clock starts; each sent once.
    Fixed(std::vec::IntoIter<Body>),
}

impl Source {
    fn next(&mut self, deadline: Instant) -> Option<Body> {
        match self {
            Source::Timed(g) => (Instant::now() < deadline).then(|| g.body()),
            Source::Fixed(bodies) => bodies.next(),
        }
    }
}

/// One connection's tally.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    ok: u64,
    samples: u64,
    errors: BTreeMap<String, u64>,
}

fn check(a: &BenchArgs) -> Result<(), String> {
    if a.series == 0 || a.batch == 0 || a.connections == 0 || a.points == Some(0) {
        return Err("--series, --batch, --connections and --points must be at least 1".into());
    }
    if a.points.is_none() && a.connections > a.series {
        return Err(
            "--connections must not exceed --series (each connection owns its series)".into(),
        );
    }
    if a.format == Format::Webhook && (a.key.is_none() || a.project.is_none()) {
        return Err("the webhook format needs --key and --project".into());
    }
    if a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err("--rate must be a positive number of requests per second".into());
    }
    Ok(())
}

/// Runs the benchmark; Err only when it could not start (bad arguments or URL, no
/// connection, an unreadable --server-pid).
pub async fn run(a: BenchArgs) -> Result<BenchReport, String> {
    check(&a)?;
    let path = match a.format {
        Format::Webhook => "/api/webhooks/custom".to_owned(),
        Format::Influx => format!("/write?db={}&precision=ms", crate::client::enc(&a.db)),
        Format::RemoteWrite => "/api/v1/write".to_owned(),
    };
    let uri: hyper::Uri = format!("{}{path}", a.url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad --url {}: {e}", a.url))?;
    let tls = (uri.scheme_str() == Some("https"))
        .then(|| tls_connector(a.ca_cert.as_deref()))
        .transpose()?;
    let host_header = uri
        .authority()
        .map(|x| x.as_str().to_owned())
        .ok_or("the URL has no host")?;
    let content_type = match a.format {
        Format::Webhook => "application/json",
        Format::Influx => "text/plain",
        Format::RemoteWrite => "application/x-protobuf",
    };
    let auth = a.key.as_ref().map(|k| format!("Bearer {k}"));
    let spec = Bodies {
        format: a.format,
        dataset: a.dataset,
        project: a.project.clone().unwrap_or_default(),
        batch: a.batch,
    };
    let now_ms = crate::clock::now_ms();
    let mut report = BenchReport {
        connections: a.connections,
        new_connection: a.new_connection,
        series: a.series,
        batch: a.batch,
        ..BenchReport::default()
    };
    let mut sources: Vec<Source> = match a.points {
        Some(points) => {
            let d = fixed_dataset(&spec, a.series, points, now_ms);
            report.first_ts = Some(d.first_ts);
            report.last_ts = Some(d.last_ts);
            report.floor_bytes_per_sample = Some(d.floor_bytes_per_sample);
            // Request r goes on connection r % connections, in order: each connection
            // sends its stripe oldest first, so the server sees (nearly) time-ordered writes.
            let mut stripes: Vec<Vec<Body>> = (0..a.connections).map(|_| Vec::new()).collect();
            for (r, b) in d.bodies.into_iter().enumerate() {
                stripes[r % a.connections].push(b);
            }
            stripes
                .into_iter()
                .map(|s| Source::Fixed(s.into_iter()))
                .collect()
        }
        None => (0..a.connections)
            .map(|c| {
                Source::Timed(Box::new(TimedSource::new(
                    spec.clone(),
                    a.series,
                    a.connections,
                    c,
                    a.duration.as_secs_f64(),
                    now_ms,
                )))
            })
            .collect(),
    };
    // Connect everything before the clock starts (with `new_connection`, each request
    // connects on the clock; one connection first tells a wrong URL before the run).
    let mut conns = Vec::new();
    for _ in 0..a.connections {
        let conn = connect(&uri, tls.as_ref()).await?;
        conns.push((!a.new_connection).then_some(conn));
    }
    let cpu_before = a.server_pid.map(cpu_seconds).transpose()?;
    let start = Instant::now();
    let deadline = start + a.duration;
    let intervals = a.report_every.map(|every| interval_reporter(start, every));
    let mut tasks = Vec::new();
    for (mut send, mut source) in conns.into_iter().zip(sources.drain(..)) {
        let (uri, host_header, auth, tls) =
            (uri.clone(), host_header.clone(), auth.clone(), tls.clone());
        let intervals = intervals.clone();
        let pace = a.rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let new_connection = a.new_connection;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sent = 0u32;
            while let Some(Body { bytes, samples }) = source.next(deadline) {
                if let Some(p) = pace {
                    tokio::time::sleep_until((start + p * sent).into()).await;
                }
                sent += 1;
                let mut req = Request::post(uri.clone())
                    .header(hyper::header::HOST, &host_header)
                    .header(hyper::header::CONTENT_TYPE, content_type);
                if content_type == "application/x-protobuf" {
                    req = req
                        .header(hyper::header::CONTENT_ENCODING, "snappy")
                        .header("x-prometheus-remote-write-version", "0.1.0");
                }
                if let Some(auth) = &auth {
                    req = req.header(hyper::header::AUTHORIZATION, auth);
                }
                let req = req
                    .body(Full::new(bytes))
                    .expect("BUG: the request is well-formed");
                let t = Instant::now();
                if new_connection {
                    // Timed from before the connect, as a client that connects per request
                    // sees it; the last connection closes as its sender is dropped here.
                    send = None;
                    match connect(&uri, tls.as_ref()).await {
                        Ok(conn) => send = Some(conn),
                        Err(e) => {
                            *tally.errors.entry(e).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                let send = send.as_mut().expect("BUG: every request has a connection");
                match exchange(send, req).await {
                    Ok((status, answer)) => {
                        let took = t.elapsed();
                        tally.latencies.push(took);
                        if let Some(tx) = &intervals {
                            let _ = tx.send(took);
                        }
                        if (200..300).contains(&status) {
                            tally.ok += 1;
                            tally.samples += samples;
                        } else {
                            if tally.errors.is_empty() {
                                eprintln!("{status}: {}", String::from_utf8_lossy(&answer));
                            }
                            *tally.errors.entry(status.to_string()).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        *tally.errors.entry(e).or_default() += 1;
                        // A broken connection is replaced; give up this one if that fails.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        match connect(&uri, tls.as_ref()).await {
                            Ok(s) => *send = s,
                            Err(e) => {
                                *tally.errors.entry(e).or_default() += 1;
                                break;
                            }
                        }
                    }
                }
            }
            tally
        }));
    }
    // The tasks hold the only senders now: the reporter ends with them.
    drop(intervals);
    let mut all = Vec::new();
    for t in tasks {
        let tally = t
            .await
            .map_err(|e| format!("BUG: a connection task failed: {e}"))?;
        all.extend(tally.latencies);
        report.requests += tally.ok;
        report.samples += tally.samples;
        for (k, v) in tally.errors {
            *report.errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let (Some(pid), Some(before)) = (a.server_pid, cpu_before) {
        let cpu = cpu_seconds(pid)? - before;
        report.server_cpu_seconds = Some(cpu);
        report.cpu_seconds_per_million =
            (report.samples > 0).then(|| cpu / report.samples as f64 * 1e6);
    }
    report.duration_s = elapsed;
    report.requests_per_s = report.requests as f64 / elapsed;
    report.samples_per_s = report.samples as f64 / elapsed;
    all.sort();
    report.latency_ms = Latency {
        p50: quantile_ms(&all, 0.5),
        p90: quantile_ms(&all, 0.9),
        p99: quantile_ms(&all, 0.99),
        max: quantile_ms(&all, 1.0),
    };
    Ok(report)
}

/// Every `every`, prints the latencies sent to it since the last line, to stderr:
/// `t=   10s requests   1234 p50 0.40 ms p99 1.20 ms max 3.00 ms` (examples/soak.sh
/// reads the p99 from the ninth field).
fn interval_reporter(start: Instant, every: Duration) -> mpsc::UnboundedSender<Duration> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Duration>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at((start + every).into(), every);
        loop {
            tick.tick().await;
            let mut lat = Vec::new();
            while let Ok(d) = rx.try_recv() {
                lat.push(d);
            }
            if lat.is_empty() {
                if rx.is_closed() {
                    return;
                }
                continue;
            }
            lat.sort();
            eprintln!(
                "t={:>5.0}s requests {:>6} p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
                start.elapsed().as_secs_f64(),
                lat.len(),
                quantile_ms(&lat, 0.5),
                quantile_ms(&lat, 0.99),
                quantile_ms(&lat, 1.0)
            );
        }
    });
    tx
}

/// Times a read: GET `{url}{path}` (see `probe::time_query`).
pub async fn query(
    url: &str,
    path: &str,
    key: Option<&str>,
    rounds: usize,
    ca_cert: Option<&std::path::Path>,
) -> Result<QueryReport, String> {
    if rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let url = format!("{}{path}", url.trim_end_matches('/'));
    probe::time_query(&url, key, rounds, ca_cert).await
}
