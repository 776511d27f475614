//! A minimal HTTP/1 client for the management commands, which are thin clients of the admin
//! API: one request, JSON in and out.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Sends one request; returns the status and the JSON body (`Null` when empty).
pub async fn call(
    method: Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
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
    let resp = client.request(req).await.map_err(|e| {
        format!("cannot reach {url}: {e} (is `stathook serve` running there? see --server)")
    })?;
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
