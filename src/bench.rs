//! `stathook bench`: a load generator for any stathook deployment, like `redis-benchmark`.
//! Keep-alive connections post the webhook's JSON for a fixed time; the series are a
//! realistic mix of counters, 2-decimal gauges and constants, with past timestamps 10 s
//! apart (so every sample is new and the store grows as in production). Reports requests
//! and samples per second, latency percentiles and errors by status, as text or JSON.
//! Talks HTTP or HTTPS (`--ca-cert` for a self-signed server). Owns nothing of the server.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spacing of each series' samples.
pub const SAMPLE_SPACING_MS: i64 = 10_000;

#[derive(Clone, Debug)]
pub struct BenchArgs {
    /// The server's base URL, e.g. `https://metrics.example.com`.
    pub url: String,
    pub key: String,
    pub project: String,
    pub series: usize,
    pub batch: usize,
    pub connections: usize,
    pub duration: Duration,
    pub ca_cert: Option<PathBuf>,
}

/// What a run measured.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    pub connections: usize,
    pub series: usize,
    pub batch: usize,
    pub duration_s: f64,
    /// Requests answered 200.
    pub requests: u64,
    /// Samples acknowledged (answered 200).
    pub samples: u64,
    pub requests_per_s: f64,
    pub samples_per_s: f64,
    pub latency_ms: Latency,
    /// Failed requests by status (`"401"`, …) or by transport error.
    pub errors: BTreeMap<String, u64>,
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
            "stathook bench: {} connections, {} series, {} samples per request, {:.1} s",
            self.connections, self.series, self.batch, self.duration_s
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

/// The kinds of series, in turn: a counter growing by 0–5, a gauge moving by ±1.00 in
/// cents, a constant.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Constant,
}

struct Series {
    id: String,
    kind: Kind,
    value: f64,
    next_ts: i64,
}

/// A small deterministic generator (xorshift), so runs are reproducible and cheap.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One connection's share of the series and the bodies made from them.
struct Generator {
    project: String,
    series: Vec<Series>,
    batch: usize,
    cursor: usize,
    rng: Rng,
}

impl Generator {
    /// Series `c`, `c + connections`, …: each connection owns its own, so timestamps never
    /// collide across connections. They start far enough in the past that `duration` at an
    /// implausible 1 M samples/s per connection still ends before now.
    fn new(a: &BenchArgs, c: usize, now_ms: i64) -> Generator {
        let mine: Vec<usize> = (c..a.series).step_by(a.connections).collect();
        let per_series = (a.duration.as_secs_f64() * 1e6 / mine.len().max(1) as f64) as i64 + 1;
        let start = now_ms - per_series * SAMPLE_SPACING_MS;
        let series = mine
            .into_iter()
            .map(|i| {
                let kind = [Kind::Counter, Kind::Gauge, Kind::Constant][i % 3];
                Series {
                    id: format!("bench_{i}"),
                    kind,
                    value: match kind {
                        Kind::Counter => 0.0,
                        Kind::Gauge => 50.0,
                        Kind::Constant => (i % 10) as f64,
                    },
                    next_ts: start,
                }
            })
            .collect();
        Generator {
            project: a.project.clone(),
            series,
            batch: a.batch,
            cursor: 0,
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1)),
        }
    }

    /// The next request body: `batch` samples, round-robin over this connection's series.
    fn body(&mut self) -> Bytes {
        let mut s = String::with_capacity(self.batch * 110 + 64);
        let _ = write!(
            s,
            "{{\"projectId\":{},\"metrics\":[",
            json_str(&self.project)
        );
        for i in 0..self.batch {
            let n = self.series.len();
            let r = self.rng.next();
            let series = &mut self.series[self.cursor % n];
            self.cursor += 1;
            series.value = match series.kind {
                Kind::Counter => series.value + (r % 6) as f64,
                Kind::Gauge => ((series.value * 100.0).round() + (r % 201) as f64 - 100.0) / 100.0,
                Kind::Constant => series.value,
            };
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"metricId\":\"{id}\",\"metricName\":\"bench {id}\",\"value\":{v},\"timestamp\":{ts}}}",
                id = series.id,
                v = series.value,
                ts = series.next_ts
            );
            series.next_ts += SAMPLE_SPACING_MS;
        }
        s.push_str("]}");
        Bytes::from(s)
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect("BUG: strings serialize")
}

/// Opens one keep-alive connection (TLS for https).
async fn connect(
    uri: &hyper::Uri,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn IoBox> = match (https, tls) {
        (true, Some(tls)) => {
            let name =
                rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                    .map_err(|e| format!("server name {host}: {e}"))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            Box::new(hyper_util::rt::TokioIo::new(stream))
        }
        _ => Box::new(hyper_util::rt::TokioIo::new(tcp)),
    };
    let (send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(send)
}

/// A connection hyper can drive, plain or TLS (object-safe, so both fit one `Box`).
trait IoBox: hyper::rt::Read + hyper::rt::Write + Unpin + Send {}
impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send> IoBox for T {}

fn tls_connector(ca_cert: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let config = crate::client::tls_config(ca_cert)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Runs the benchmark; Err only when it could not start (bad URL, no connection).
pub async fn run(a: BenchArgs) -> Result<BenchReport, String> {
    if a.series == 0 || a.batch == 0 || a.connections == 0 {
        return Err("--series, --batch and --connections must be at least 1".into());
    }
    if a.connections > a.series {
        return Err(
            "--connections must not exceed --series (each connection owns its series)".into(),
        );
    }
    let uri: hyper::Uri = format!("{}/api/webhooks/custom", a.url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("bad --url {}: {e}", a.url))?;
    let tls = (uri.scheme_str() == Some("https"))
        .then(|| tls_connector(a.ca_cert.as_deref()))
        .transpose()?;
    let host_header = uri
        .authority()
        .map(|x| x.as_str().to_owned())
        .ok_or("the URL has no host")?;
    let auth = format!("Bearer {}", a.key);
    let now_ms = crate::clock::now_ms();
    // Connect everything before the clock starts.
    let mut conns = Vec::new();
    for _ in 0..a.connections {
        conns.push(connect(&uri, tls.as_ref()).await?);
    }
    let start = Instant::now();
    let deadline = start + a.duration;
    let mut tasks = Vec::new();
    for (c, mut send) in conns.into_iter().enumerate() {
        let mut generator = Generator::new(&a, c, now_ms);
        let (uri, host_header, auth, tls) =
            (uri.clone(), host_header.clone(), auth.clone(), tls.clone());
        let batch = a.batch as u64;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let (mut ok, mut samples) = (0u64, 0u64);
            while Instant::now() < deadline {
                let req = Request::post(uri.clone())
                    .header(hyper::header::HOST, &host_header)
                    .header(hyper::header::AUTHORIZATION, &auth)
                    .header(hyper::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(generator.body()))
                    .expect("BUG: the request is well-formed");
                let t = Instant::now();
                let outcome = async {
                    send.ready().await.map_err(|e| e.to_string())?;
                    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
                    let status = resp.status().as_u16();
                    resp.into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<u16, String>(status)
                }
                .await;
                match outcome {
                    Ok(200) => {
                        latencies.push(t.elapsed());
                        ok += 1;
                        samples += batch;
                    }
                    Ok(status) => {
                        latencies.push(t.elapsed());
                        *errors.entry(status.to_string()).or_default() += 1;
                    }
                    Err(e) => {
                        *errors.entry(e).or_default() += 1;
                        // A broken connection is replaced; give up this one if that fails.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        match connect(&uri, tls.as_ref()).await {
                            Ok(s) => send = s,
                            Err(e) => {
                                *errors.entry(e).or_default() += 1;
                                break;
                            }
                        }
                    }
                }
            }
            (latencies, ok, samples, errors)
        }));
    }
    let mut report = BenchReport {
        connections: a.connections,
        series: a.series,
        batch: a.batch,
        ..BenchReport::default()
    };
    let mut all = Vec::new();
    for t in tasks {
        let (lat, ok, samples, errors) = t
            .await
            .map_err(|e| format!("BUG: a connection task failed: {e}"))?;
        all.extend(lat);
        report.requests += ok;
        report.samples += samples;
        for (k, v) in errors {
            *report.errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    report.duration_s = elapsed;
    report.requests_per_s = report.requests as f64 / elapsed;
    report.samples_per_s = report.samples as f64 / elapsed;
    all.sort();
    let ms = |p: f64| {
        all.get(((all.len().saturating_sub(1)) as f64 * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    report.latency_ms = Latency {
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        max: ms(1.0),
    };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BenchArgs {
        BenchArgs {
            url: "http://127.0.0.1:1".into(),
            key: "k".into(),
            project: "p".into(),
            series: 7,
            batch: 5,
            connections: 2,
            duration: Duration::from_secs(1),
            ca_cert: None,
        }
    }

    #[test]
    fn bodies_are_valid_requests_with_past_distinct_timestamps() {
        let now = 1_800_000_000_000;
        let mut g = Generator::new(&args(), 1, now);
        assert_eq!(g.series.len(), 3, "series 1, 3, 5");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            let mut body = g.body().to_vec();
            let batch = crate::ingest::parse_batch(&mut body, now).expect("a valid request");
            assert_eq!(batch.project_id, "p");
            assert_eq!(batch.metrics.len(), 5);
            for m in &batch.metrics {
                assert!(m.timestamp_ms < now);
                assert!(
                    seen.insert((m.metric_id.to_owned(), m.timestamp_ms)),
                    "a repeat"
                );
            }
        }
        // Counters never fall; gauges stay on cents.
        let counter = &g.series.iter().find(|s| s.id == "bench_3").unwrap();
        assert!(matches!(counter.kind, Kind::Counter) && counter.value >= 0.0);
        let gauge = &g.series.iter().find(|s| s.id == "bench_1").unwrap();
        assert_eq!((gauge.value * 100.0).round() / 100.0, gauge.value);
    }
}
