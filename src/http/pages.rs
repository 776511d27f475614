//! The web app's HTTP side: the HTML shell at every page URL, with the security headers,
//! and the embedded assets (`web`) with their caching and compression.

use super::reply::{raw, ApiError, Reply};
use crate::web;
use hyper::header::{self, HeaderValue};
use hyper::StatusCode;

/// `share`: a share link's page, whose URL holds the token: no Referer leaves it.
fn secure_headers(r: &mut Reply, share: bool, embed: bool) {
    let h = r.headers_mut();
    let csp = if embed {
        web::CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'", "frame-ancestors *")
    } else {
        web::CONTENT_SECURITY_POLICY.to_owned()
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if share { "no-referrer" } else { "same-origin" }),
    );
    if !embed {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// Any page URL: the shell, which routes on the URL in the browser. `/share/{token}/embed`
/// may be framed by other sites; nothing else may.
pub fn page(segs: &[&str]) -> Reply {
    let share = segs.first() == Some(&"share");
    let embed = matches!(segs, ["share", _, "embed"]);
    let mut r = raw(
        StatusCode::OK,
        "text/html; charset=utf-8",
        web::assets().shell.clone(),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure_headers(&mut r, share, embed);
    r
}

/// `/assets/{hash}/{file}`: immutable under its hash; gzipped when the client takes it.
pub fn asset(hash: &str, name: &str, accept_encoding: Option<&str>) -> Result<Reply, ApiError> {
    let Some(a) = web::assets().get(hash, name) else {
        return Err(ApiError::NotFound(format!("no such asset: {hash}/{name}")));
    };
    let gzip = accept_encoding.is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = if gzip {
        a.gzip.clone()
    } else {
        a.bytes.to_vec()
    };
    let mut r = raw(StatusCode::OK, a.content_type, body);
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}
