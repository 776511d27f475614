//! The I/O edge of `stathook bench`: keep-alive HTTP/1 connections (TLS for https, with
//! `--ca-cert`), one timed request, the server's CPU time from `/proc`, and the timing of a
//! read (`--query`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A connection hyper can drive, plain or TLS (object-safe, so both fit one `Box`).
trait IoBox: hyper::rt::Read + hyper::rt::Write + Unpin + Send {}
impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send> IoBox for T {}

pub fn tls_connector(
    ca_cert: Option<&std::path::Path>,
) -> Result<tokio_rustls::TlsConnector, String> {
    let config = crate::client::tls_config(ca_cert)?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Opens one keep-alive connection (TLS for https).
pub async fn connect(
    uri: &hyper::Uri,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<Sender, String> {
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

/// Sends `req` and reads the whole answer: its status and body, or a transport error.
pub async fn exchange(
    send: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    send.ready().await.map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// utime + stime of a process, in seconds (Linux `/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("--server-pid {pid}: {e}"))?;
    let after = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 2..))
        .ok_or_else(|| format!("--server-pid {pid}: unreadable /proc stat"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // The kernel's USER_HZ is 100 on every Linux build that matters here.
        (Some(u), Some(s)) => Ok((u + s) / 100.0),
        _ => Err(format!("--server-pid {pid}: unreadable /proc stat")),
    }
}

/// The `q`-quantile of sorted latencies, in ms (0 for none).
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What `--query` measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryReport {
    pub rounds: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    pub response_bytes: usize,
}

impl QueryReport {
    pub fn text(&self) -> String {
        format!(
            "query: {} rounds, p50 {:.2} ms  p90 {:.2} ms  max {:.2} ms, {} bytes an answer\n",
            self.rounds, self.p50_ms, self.p90_ms, self.max_ms, self.response_bytes
        )
    }
}

/// Times GET `url` on one connection, warm: 3 untimed requests, then `rounds` timed ones.
/// Any answer but 2xx stops it with the server's words.
pub async fn time_query(
    url: &str,
    bearer: Option<&str>,
    rounds: usize,
    ca_cert: Option<&std::path::Path>,
) -> Result<QueryReport, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let tls = (uri.scheme_str() == Some("https"))
        .then(|| tls_connector(ca_cert))
        .transpose()?;
    let mut send = connect(&uri, tls.as_ref()).await?;
    let host = uri
        .authority()
        .map(|a| a.to_string())
        .ok_or("the URL has no host")?;
    let mut lat = Vec::with_capacity(rounds);
    let mut bytes = 0;
    for round in 0..rounds + 3 {
        let mut req = Request::get(uri.clone()).header(hyper::header::HOST, &host);
        if let Some(t) = bearer {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .expect("BUG: the request is well-formed");
        let t = Instant::now();
        let (status, body) = exchange(&mut send, req).await?;
        let took = t.elapsed();
        if !(200..300).contains(&status) {
            return Err(format!(
                "the query got {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        bytes = body.len();
        if round >= 3 {
            lat.push(took);
        }
    }
    lat.sort();
    Ok(QueryReport {
        rounds,
        p50_ms: quantile_ms(&lat, 0.5),
        p90_ms: quantile_ms(&lat, 0.9),
        max_ms: quantile_ms(&lat, 1.0),
        response_bytes: bytes,
    })
}
