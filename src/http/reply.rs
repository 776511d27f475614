//! The only place that maps errors to HTTP statuses; every error body is `{"error":"…"}`.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame};
use hyper::{header, Response, StatusCode};
use serde::Serialize;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A whole body, or a streamed one (large exports) fed through a channel.
pub type Reply = Response<Either<Full<Bytes>, StreamedBody>>;

/// A body whose chunks arrive on a channel. An `Err` chunk aborts the response (the
/// connection closes without the final chunk), so a client can tell a cut-off export from a
/// complete one.
pub struct StreamedBody(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>);

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(Frame::data)))
    }
}

/// A 200 whose body is whatever arrives on `rx` until the sender is dropped.
pub fn streamed(
    content_type: &'static str,
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> Reply {
    let mut r = Response::new(Either::Right(StreamedBody(rx)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed {
        allow: &'static str,
    },
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// The body did not arrive in time.
    RequestTimeout(String),
    /// Over the project's rate limit; retry after this many seconds.
    TooManyRequests {
        message: String,
        retry_after_s: u64,
    },
    /// The disk is full: nothing was stored; retry once space is freed.
    InsufficientStorage(String),
    /// Temporarily unable to store (journal failure, shutting down).
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::MethodNotAllowed { allow } => format!("method not allowed; use {allow}"),
            ApiError::TooManyRequests { message, .. } => message.clone(),
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::RequestTimeout(m)
            | ApiError::InsufficientStorage(m)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m.clone(),
        }
    }

    /// The reply, and the message it carries (for the webhook's request log).
    pub fn reply_and_message(self) -> (Reply, Result<u64, String>) {
        let message = self.message();
        (self.into_reply(), Err(message))
    }

    pub fn into_reply(self) -> Reply {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message(), "request failed");
        }
        let mut r = json(
            status,
            &ErrorBody {
                error: self.message(),
            },
        );
        if let ApiError::MethodNotAllowed { allow } = self {
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        }
        if let ApiError::TooManyRequests { retry_after_s, .. } = self {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_s),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::journal::JournalError> for ApiError {
    fn from(e: crate::journal::JournalError) -> Self {
        if e.is_disk_full() {
            ApiError::InsufficientStorage(format!(
                "disk full, nothing was stored; retry later ({e})"
            ))
        } else {
            ApiError::Unavailable(format!(
                "could not store the metrics, nothing was acknowledged; retry later ({e})"
            ))
        }
    }
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

pub fn json(status: StatusCode, body: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec(body).expect("BUG: reply bodies always serialize");
    raw(status, "application/json", bytes)
}

pub fn raw(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}
