//! A minimal HTTP/1 client for the management commands, which are thin clients of the admin
//! API: one request, JSON in and out.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// A client for `http://` and `https://` URLs. HTTPS servers are trusted if their
/// certificate chains to the Mozilla root set or, when given, to the PEM CA certificate(s)
/// in `ca_cert` (e.g. the server's own self-signed certificate).
fn client(ca_cert: Option<&std::path::Path>) -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_cert)?)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The TLS settings of every client: Mozilla's roots plus the PEM certificate(s) in
/// `ca_cert`.
/// `s` percent-encoded for a URL path segment or query value (everything but letters and
/// digits), as every client request of stathook's builds its URLs.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn tls_config(ca_cert: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("read CA certificate {}: {e}", path.display()))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("CA certificate {}: {e}", path.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// "cannot reach": with the whole cause chain (hyper's top error says only "Connect"; the
/// cause says "connection refused" or which certificate check failed).
fn unreachable(url: &str, e: &dyn std::error::Error) -> String {
    let mut msg = format!("cannot reach {url}: {e}");
    let mut cause = e.source();
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    msg + " (is `stathook serve` running there? see --server; for a self-signed https server, --ca-cert)"
}

/// Sends one request; returns the status and the JSON body (`Null` when empty).
pub async fn call(
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
    ca_cert: Option<&std::path::Path>,
) -> Result<(u16, Value), String> {
    let client = client(ca_cert)?;
    let payload = body
        .map(|b| serde_json::to_vec(b).expect("BUG: JSON values serialize"))
        .unwrap_or_default();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| unreachable(url, &e))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading reply from {url}: {e}"))?
        .to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok((status, json))
}

/// POSTs to `url` and streams a 200's body into `to` (through `to` + `.part`, renamed and
/// synced at the end, so `to` never holds a partial file). Returns the reply's
/// `x-stathook-backup` summary and the bytes written; a non-200 is an error with the
/// server's message.
pub async fn download(
    url: &str,
    token: &str,
    to: &std::path::Path,
    ca_cert: Option<&std::path::Path>,
) -> Result<(String, u64), String> {
    use std::io::Write;
    let client = client(ca_cert)?;
    let req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| unreachable(url, &e))?;
    let status = resp.status().as_u16();
    let summary = resp
        .headers()
        .get("x-stathook-backup")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = resp.into_body();
    if status != 200 {
        let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let msg = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        return Err(format!("server answered {status}: {msg}"));
    }
    let part = to.with_extension("part");
    // The backup holds every sample and key hash: readable by this user only.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&part)
            .map_err(|e| format!("create {}: {e}", part.display()))?
    };
    let mut written = 0u64;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| format!("the backup stream broke off after {written} bytes: {e}"))?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data)
                .map_err(|e| format!("write {}: {e}", part.display()))?;
            written += data.len() as u64;
        }
    }
    file.sync_all()
        .map_err(|e| format!("sync {}: {e}", part.display()))?;
    std::fs::rename(&part, to).map_err(|e| format!("rename to {}: {e}", to.display()))?;
    Ok((summary, written))
}
