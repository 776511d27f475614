//! The security bar of issue 5, measured: honest clients alone ("quiet"), then the same
//! honest clients while hostile ones attack ("hostile") — bad keys at a high rate, slowloris
//! connections, 1 GiB gzip bombs and 100 MiB bodies. Reports the honest clients' latency in
//! both phases (from each request's scheduled send time, so a stall is not hidden), the
//! server's peak RSS, what the attackers got, and whether every acknowledged honest sample
//! was stored.
//!
//! cargo build --release && cargo run --release --example siege [-- --seconds 20]
//!
//! It starts `target/release/stathook` (or `$STATHOOK_BIN`) on a free loopback port with a
//! temp data dir and stops it at the end. Attackers connect from other loopback addresses
//! (127.0.0.2 …), as separate hosts would, so the per-address brute-force guard sees them
//! apart from the honest clients on 127.0.0.1.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

struct Opts {
    seconds: f64,
    honest_connections: usize,
    /// Requests per second per honest connection, 100 samples each.
    honest_rate: f64,
    /// Bad-key requests per second, all attackers together.
    bad_key_rate: f64,
    bad_key_addresses: u8,
    slowloris: usize,
    bombers: usize,
    big_bodies: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        seconds: 20.0,
        honest_connections: 4,
        honest_rate: 25.0,
        bad_key_rate: 2000.0,
        bad_key_addresses: 8,
        slowloris: 500,
        bombers: 2,
        big_bodies: 2,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or("");
        let n = |what: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| panic!("{what} needs a number"))
        };
        match pair[0].as_str() {
            "--seconds" => o.seconds = n("--seconds"),
            "--honest-connections" => o.honest_connections = n("--honest-connections") as usize,
            "--honest-rate" => o.honest_rate = n("--honest-rate"),
            "--bad-key-rate" => o.bad_key_rate = n("--bad-key-rate"),
            "--slowloris" => o.slowloris = n("--slowloris") as usize,
            "--bombers" => o.bombers = n("--bombers") as usize,
            "--big-bodies" => o.big_bodies = n("--big-bodies") as usize,
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// A keep-alive HTTP/1 connection from a chosen local address.
struct Conn {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

async fn tcp_from(local: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(server).await
}

impl Conn {
    async fn open(local: IpAddr, server: SocketAddr) -> std::io::Result<Conn> {
        let stream = tcp_from(local, server).await?;
        let _ = stream.set_nodelay(true);
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Conn { send })
    }

    async fn post(
        &mut self,
        server: SocketAddr,
        key: &str,
        body: Bytes,
        gzip: bool,
    ) -> Result<u16, String> {
        let mut req = Request::post(format!("http://{server}/api/webhooks/custom"))
            .header("Host", server.to_string())
            .header("Authorization", format!("Bearer {key}"))
            .header("Content-Type", "application/json");
        if gzip {
            req = req.header("Content-Encoding", "gzip");
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        self.send.ready().await.map_err(|e| e.to_string())?;
        let resp = self
            .send
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    }
}

fn honest_body(project: &str, client: usize, seq: u64) -> Bytes {
    let ts = 1_700_000_000_000i64 + seq as i64 * 1000;
    let mut s = format!("{{\"projectId\":\"{project}\",\"metrics\":[");
    for i in 0..100 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"metricId\":\"h{client}_{i}\",\"metricName\":\"honest {i}\",\"value\":{},\"timestamp\":{ts}}}",
            (seq % 97) as f64 + i as f64 / 4.0
        ));
    }
    s.push_str("]}");
    Bytes::from(s)
}

#[derive(Default)]
struct Honest {
    latencies: Vec<Duration>,
    acknowledged_samples: u64,
    errors: BTreeMap<String, u64>,
}

/// One honest connection for `seconds`, paced at `rate`; latency counts from the scheduled
/// send time.
async fn honest(
    server: SocketAddr,
    key: String,
    project: String,
    client: usize,
    seq0: u64,
    rate: f64,
    seconds: f64,
) -> Honest {
    let mut out = Honest::default();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut conn = Conn::open("127.0.0.1".parse().unwrap(), server)
        .await
        .expect("honest connect");
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        let scheduled = start + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let body = honest_body(&project, client, seq0 + n);
        n += 1;
        match conn.post(server, &key, body, false).await {
            Ok(200) => {
                out.acknowledged_samples += 100;
                out.latencies.push(scheduled.elapsed());
            }
            Ok(s) => {
                *out.errors.entry(format!("status {s}")).or_default() += 1;
                out.latencies.push(scheduled.elapsed());
            }
            Err(e) => {
                *out.errors.entry(e).or_default() += 1;
                conn = Conn::open("127.0.0.1".parse().unwrap(), server)
                    .await
                    .expect("honest reconnect");
            }
        }
    }
    out
}

#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, what: impl Into<String>) {
        *self.0.lock().unwrap().entry(what.into()).or_default() += 1;
    }
    fn show(&self) -> String {
        let m = self.0.lock().unwrap();
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn random_key() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    format!(
        "shk_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

async fn bad_keys(
    server: SocketAddr,
    from: IpAddr,
    rate: f64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut n = 0u32;
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until((start + interval * n).into()).await;
        n += 1;
        if conn.is_none() {
            conn = Conn::open(from, server).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            tally.add("connect failed");
            continue;
        };
        match c
            .post(server, &random_key(), Bytes::from_static(b"{}"), false)
            .await
        {
            Ok(s) => tally.add(format!("{s}")),
            Err(_) => {
                tally.add("connection closed");
                conn = None;
            }
        }
    }
}

async fn slowloris(server: SocketAddr, from: IpAddr, stop: Arc<AtomicBool>, cut: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = tcp_from(from, server).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if s.write_all(b"POST /api/webhooks/custom HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            continue;
        }
        let mut i = 0;
        // A header line every 2 s, never the end of the head.
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(2)).await;
            i += 1;
            if s.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
            {
                cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
}

async fn bomber(
    server: SocketAddr,
    from: IpAddr,
    key: String,
    bomb: Bytes,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut c) = Conn::open(from, server).await else {
            tally.add("connect failed");
            continue;
        };
        match c.post(server, &key, bomb.clone(), true).await {
            Ok(s) => tally.add(format!("{s}")),
            Err(_) => tally.add("connection closed"),
        }
    }
}

/// A 100 MiB body with a truthful Content-Length, written as fast as the server reads it.
async fn big_body(
    server: SocketAddr,
    from: IpAddr,
    key: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    const SIZE: usize = 100 << 20;
    let chunk = vec![b' '; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = tcp_from(from, server).await else {
            tally.add("connect failed");
            continue;
        };
        let head = format!(
            "POST /api/webhooks/custom HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {SIZE}\r\nConnection: close\r\n\r\n"
        );
        let (mut rd, mut wr) = s.split();
        let write = async {
            wr.write_all(head.as_bytes()).await?;
            let mut sent = 0;
            while sent < SIZE {
                wr.write_all(&chunk).await?;
                sent += chunk.len();
            }
            Ok::<_, std::io::Error>(())
        };
        let read = async {
            let mut buf = vec![0u8; 4096];
            let n = rd.read(&mut buf).await.unwrap_or(0);
            String::from_utf8_lossy(&buf[..n])
                .chars()
                .skip(9)
                .take(3)
                .collect::<String>()
        };
        tokio::pin!(write);
        tokio::pin!(read);
        let status = tokio::select! {
            s = &mut read => s,
            w = &mut write => match w {
                // The server stopped reading and closed: did it say why first?
                Err(_) => match tokio::time::timeout(Duration::from_millis(100), &mut read).await {
                    Ok(s) if !s.is_empty() => s,
                    _ => "reset while sending".into(),
                },
                Ok(()) => "sent all 100 MiB".into(),
            },
        };
        tally.add(if status.is_empty() {
            "connection closed".into()
        } else {
            status
        });
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct PhaseResult {
    p50: f64,
    p99: f64,
    max: f64,
    requests: usize,
    samples: u64,
    errors: BTreeMap<String, u64>,
    peak_rss_mib: f64,
}

async fn run_honest(o: &Opts, server: SocketAddr, key: &str, seq0: u64, pid: u32) -> PhaseResult {
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..o.honest_connections)
        .map(|c| {
            tokio::spawn(honest(
                server,
                key.to_owned(),
                "honest".into(),
                c,
                seq0,
                o.honest_rate,
                o.seconds,
            ))
        })
        .collect();
    let mut all = Honest::default();
    for t in tasks {
        let h = t.await.unwrap();
        all.latencies.extend(h.latencies);
        all.acknowledged_samples += h.acknowledged_samples;
        for (k, v) in h.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    all.latencies.sort();
    PhaseResult {
        p50: percentile(&all.latencies, 0.50),
        p99: percentile(&all.latencies, 0.99),
        max: all
            .latencies
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
        requests: all.latencies.len(),
        samples: all.acknowledged_samples,
        errors: all.errors,
        peak_rss_mib: peak.load(Ordering::Relaxed) as f64 / 1024.0,
    }
}

async fn admin(
    server: SocketAddr,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let url = format!("http://{server}{path}");
    let (status, v) = stathook::client::call(hyper::Method::POST, &url, token, Some(&body), None)
        .await
        .unwrap();
    assert!((200..300).contains(&status), "{path}: {status} {v}");
    v
}

#[tokio::main]
async fn main() {
    let o = opts();
    let bin = std::env::var("STATHOOK_BIN").unwrap_or_else(|_| "target/release/stathook".into());
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(&bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e} (build it, or set STATHOOK_BIN)"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server: SocketAddr = line
        .trim()
        .trim_start_matches("stathook listening on http://")
        .parse()
        .expect("listening line");
    let pid = child.id();
    // However this ends (a panic included), the server is stopped.
    struct StopOnDrop(u32);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.0.to_string()])
                .status();
        }
    }
    let _stop_server = StopOnDrop(pid);
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    admin(
        server,
        &token,
        "/api/v1/projects",
        serde_json::json!({"name": "honest", "id": "honest"}),
    )
    .await;
    admin(
        server,
        &token,
        "/api/v1/projects",
        serde_json::json!({"name": "attacker", "id": "attacker"}),
    )
    .await;
    let honest_key = admin(
        server,
        &token,
        "/api/v1/projects/honest/webhooks",
        serde_json::json!({"name": "h"}),
    )
    .await["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let attacker_key = admin(
        server,
        &token,
        "/api/v1/projects/attacker/webhooks",
        serde_json::json!({"name": "a"}),
    )
    .await["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();

    eprintln!("building a gzip bomb of 1 GiB of zeros ...");
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        Bytes::from(enc.finish().unwrap())
    };
    eprintln!("bomb: {} bytes compressed, 1 GiB decompressed", bomb.len());

    eprintln!("quiet phase: {} s of honest clients alone ...", o.seconds);
    let quiet = run_honest(&o, server, &honest_key, 0, pid).await;

    eprintln!("hostile phase: the same honest clients under attack ...");
    let stop = Arc::new(AtomicBool::new(false));
    let (bad, bombs, bigs) = (
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
        Arc::new(Tally::default()),
    );
    let cut = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for a in 0..o.bad_key_addresses {
        let from: IpAddr = format!("127.0.0.{}", 10 + a).parse().unwrap();
        let rate = o.bad_key_rate / o.bad_key_addresses as f64;
        attackers.push(tokio::spawn(bad_keys(
            server,
            from,
            rate,
            stop.clone(),
            bad.clone(),
        )));
    }
    for _ in 0..o.slowloris {
        attackers.push(tokio::spawn(slowloris(
            server,
            "127.0.0.3".parse().unwrap(),
            stop.clone(),
            cut.clone(),
        )));
    }
    for _ in 0..o.bombers {
        let key = attacker_key.clone();
        attackers.push(tokio::spawn(bomber(
            server,
            "127.0.0.4".parse().unwrap(),
            key,
            bomb.clone(),
            stop.clone(),
            bombs.clone(),
        )));
    }
    for _ in 0..o.big_bodies {
        let key = attacker_key.clone();
        attackers.push(tokio::spawn(big_body(
            server,
            "127.0.0.5".parse().unwrap(),
            key,
            stop.clone(),
            bigs.clone(),
        )));
    }
    // Let the attack build up before the honest clients start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seq0 = (o.seconds * o.honest_rate) as u64 + 10;
    let hostile = run_honest(&o, server, &honest_key, seq0, pid).await;
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.abort();
    }

    // Every acknowledged honest sample must be stored.
    let url = format!("http://{server}/api/v1/projects/honest/metrics");
    let (_, catalog) = stathook::client::call(hyper::Method::GET, &url, &token, None, None)
        .await
        .unwrap();
    let stored: u64 = catalog["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sampleCount"].as_u64().unwrap())
        .sum();
    let attacker_url = format!("http://{server}/api/v1/projects/attacker/metrics");
    let (_, attacker_catalog) =
        stathook::client::call(hyper::Method::GET, &attacker_url, &token, None, None)
            .await
            .unwrap();
    let peak_hwm = rss_kib(pid, "VmHWM:") as f64 / 1024.0;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let acknowledged = quiet.samples + hostile.samples;
    println!("| phase | honest requests | p50 ms | p99 ms | max ms | honest errors | server peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|");
    for (name, r) in [("quiet", &quiet), ("hostile", &hostile)] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} | {} | {:.0} |",
            r.requests,
            r.p50,
            r.p99,
            r.max,
            if r.errors.is_empty() {
                "0".into()
            } else {
                format!("{:?}", r.errors)
            },
            r.peak_rss_mib
        );
    }
    println!();
    println!(
        "honest p99 hostile/quiet: {:.2}x (bar: at most 2x)",
        hostile.p99 / quiet.p99
    );
    println!("server peak RSS (VmHWM) over the whole run: {peak_hwm:.0} MiB");
    println!(
        "honest samples acknowledged: {acknowledged}, stored: {stored} ({})",
        if stored == acknowledged {
            "all"
        } else {
            "MISSING SAMPLES"
        }
    );
    println!(
        "attacker project metrics stored: {}",
        attacker_catalog["metrics"].as_array().map_or(0, Vec::len)
    );
    println!(
        "bad-key requests ({} addresses, {:.0}/s): {}",
        o.bad_key_addresses,
        o.bad_key_rate,
        bad.show()
    );
    println!(
        "slowloris: {} connections, cut by the server {} times",
        o.slowloris,
        cut.load(Ordering::Relaxed)
    );
    println!(
        "1 GiB gzip bombs ({} bytes each): {}",
        bomb.len(),
        bombs.show()
    );
    println!("100 MiB bodies: {}", bigs.show());
    if stored != acknowledged {
        std::process::exit(1);
    }
}
