//! The one client for requests to URLs that users typed (alert channels; forwarding later).
//! Every destination passes the address guard (`guard`) after DNS resolution, in the
//! connector itself, so the address checked is the address connected to; an IP literal is
//! checked before the request. No redirect is followed, no proxy is used; connect and whole
//! request timeouts; the response body is read up to a cap. Nothing is logged here: URLs
//! are credentials.

pub mod guard;
pub mod smtp;

use bytes::Bytes;
use guard::AllowList;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What is kept of a response body (for the delivery log).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// The error text that marks a refusal by the guard in the connector's error chain.
const REFUSED: &str = "refused by the outbound address guard: ";

/// Resolves a host name and keeps only the addresses the guard allows.
#[derive(Clone)]
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow.clone();
        Box::pin(async move { Ok(allowed_addresses(&allow, name.as_str()).await?.into_iter()) })
    }
}

/// `host`'s addresses that the guard allows; an error marked `REFUSED` when it allows none.
async fn allowed_addresses(allow: &AllowList, host: &str) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let mut refused = None;
    let ok: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match allow.check(host, a.ip()) {
            Ok(()) => true,
            Err(e) => {
                refused.get_or_insert(e);
                false
            }
        })
        .collect();
    if ok.is_empty() {
        let why = refused.unwrap_or_else(|| format!("{host} has no address"));
        return Err(std::io::Error::other(format!("{REFUSED}{why}")));
    }
    Ok(ok)
}

type Inner = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

#[derive(Clone)]
pub struct Outbound {
    client: Inner,
    allow: Arc<AllowList>,
}

/// A response, its body cut at `MAX_RESPONSE_BYTES`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// `Retry-After` in seconds (delta-seconds or an HTTP date), when sent.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq)]
pub enum SendError {
    /// The guard refused the destination: final, never retried.
    Refused(String),
    /// A bad URL: final.
    BadUrl(String),
    /// Connection, TLS or protocol failure, or a timeout: worth a retry.
    Network(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(s) => write!(f, "{REFUSED}{s}"),
            SendError::BadUrl(s) | SendError::Network(s) => f.write_str(s),
        }
    }
}

impl Outbound {
    pub fn new(allow: AllowList) -> Outbound {
        let allow = Arc::new(allow);
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            allow: allow.clone(),
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let tls = crate::client::tls_config(None).expect("TLS settings with the built-in roots");
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Outbound {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            allow,
        }
    }

    /// POSTs `body` as JSON with `headers`. Any status is a `Response`; redirects are not
    /// followed (a 3xx is returned as it is).
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, SendError> {
        self.post(url, "application/json", headers, body).await
    }

    /// POSTs `body` of `content_type` with `headers`, as [`Outbound::post_json`].
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, SendError> {
        self.request(hyper::Method::POST, url, Some(content_type), headers, body)
            .await
    }

    /// GETs `url` with `headers`; the body is cut at `max_body` bytes.
    pub async fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        max_body: usize,
    ) -> Result<Response, SendError> {
        self.request_capped(hyper::Method::GET, url, None, headers, Vec::new(), max_body)
            .await
    }

    async fn request(
        &self,
        method: hyper::Method,
        url: &str,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Response, SendError> {
        self.request_capped(method, url, content_type, headers, body, MAX_RESPONSE_BYTES)
            .await
    }

    async fn request_capped(
        &self,
        method: hyper::Method,
        url: &str,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
        max_body: usize,
    ) -> Result<Response, SendError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|_| SendError::BadUrl("not a URL".into()))?;
        let host = uri
            .host()
            .ok_or_else(|| SendError::BadUrl("no host".into()))?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.allow.check(bare, ip).map_err(SendError::Refused)?;
        }
        let mut req = Request::builder().method(method).uri(uri.clone());
        if let Some(t) = content_type {
            req = req.header(hyper::header::CONTENT_TYPE, t);
        }
        let mut req = req.header(
            hyper::header::USER_AGENT,
            concat!("stathook/", env!("CARGO_PKG_VERSION")),
        );
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::BadUrl(e.to_string()))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| classify(&e))?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let mut body = resp.into_body();
            let mut kept = Vec::new();
            while kept.len() < max_body {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            let room = max_body - kept.len();
                            kept.extend_from_slice(&d[..d.len().min(room)]);
                        }
                    }
                    Some(Err(e)) => {
                        return Err(SendError::Network(format!("reading the answer: {e}")))
                    }
                    None => break,
                }
            }
            Ok(Response {
                status,
                retry_after,
                body: kept,
            })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Network(format!(
                "no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The connector's error chain: the guard's refusal, or a network failure with its cause.
fn classify(e: &(dyn std::error::Error + 'static)) -> SendError {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if let Some(why) = text.strip_prefix(REFUSED) {
            return SendError::Refused(why.to_owned());
        }
        chain.push(text);
        cur = err.source();
    }
    chain.dedup();
    SendError::Network(chain.join(": "))
}

/// The delay before retry `attempt` (1-based): `first_ms` doubling to `max_ms`, each drawn
/// between half and all of it (so many senders do not retry in step), and never before
/// `Retry-After` (itself capped at six times `max_ms`).
pub fn backoff_ms(
    first_ms: i64,
    max_ms: i64,
    attempt: u32,
    retry_after_ms: Option<i64>,
    random: u64,
) -> i64 {
    let base = (first_ms << attempt.saturating_sub(1).min(40)).min(max_ms);
    let jittered = base / 2 + (random % (base as u64 / 2 + 1)) as i64;
    jittered.max(retry_after_ms.unwrap_or(0).min(6 * max_ms))
}

/// A random number for the jitter.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source");
    u64::from_le_bytes(b)
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = httpdate::parse_http_date(v.trim()).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(
            super::parse_retry_after("120"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(
            super::parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(std::time::Duration::ZERO),
            "a date in the past: now"
        );
        assert_eq!(super::parse_retry_after("soon"), None);
    }
}
