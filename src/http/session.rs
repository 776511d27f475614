//! Sign-in sessions and user accounts over HTTP: `POST/GET/DELETE /api/v1/session` (the
//! cookie) and `/api/v1/users` (admin only). The cookie is HttpOnly and SameSite=Strict,
//! and `__Host-` prefixed and Secure when serving TLS; it holds the token, the server only
//! its hash (`service::Sessions`).

use super::reply::{json, ApiError, Reply};
use super::route::AdminToken;
use crate::clock;
use crate::service::{SessionError, Sessions, SignedIn};
use crate::store::Role;
use hyper::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};

/// The session cookie's name: `__Host-` binds it to this host over TLS (no Domain, Path=/,
/// Secure), which a plain-HTTP server cannot claim.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        "__Host-stathook_session"
    } else {
        "stathook_session"
    }
}

/// The session token in the request's cookies, if any.
pub fn token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(reply: &mut Reply, name: &str, value: &str, max_age_s: i64) {
    let secure = if name.starts_with("__Host-") {
        "; Secure"
    } else {
        ""
    };
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        reply.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn who(s: &SignedIn) -> Value {
    json!({"signedIn": true, "username": s.user, "role": s.role.as_str()})
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body[name]
        .as_str()
        .ok_or_else(|| ApiError::BadRequest(format!("{name} is required (a string)")))
}

/// `POST /api/v1/session` `{"username","password"}`: a 200 with the cookie, or a 401 that
/// does not say which of the two was wrong.
pub fn sign_in(sessions: &Sessions, cookie: &str, body: Value) -> Result<Reply, ApiError> {
    let (name, password) = (field(&body, "username")?, field(&body, "password")?);
    let (token, signed_in) = sessions.sign_in(name, password, clock::now_ms())?;
    let mut reply = json(StatusCode::OK, &who(&signed_in));
    // The browser may keep it as long as the server could honour it; idle expiry is the
    // server's.
    set_cookie(&mut reply, cookie, &token, sessions.max_age_ms / 1000);
    tracing::info!(user = %signed_in.user, "signed in");
    Ok(reply)
}

/// `DELETE /api/v1/session`: ends the session (if any) and clears the cookie.
pub fn sign_out(sessions: &Sessions, cookie: &str, token: Option<&str>) -> Result<Reply, ApiError> {
    if let Some(t) = token {
        sessions.sign_out(t)?;
    }
    let mut reply = json(StatusCode::OK, &json!({"signedIn": false}));
    set_cookie(&mut reply, cookie, "", 0);
    Ok(reply)
}

/// `GET /api/v1/session`: who is signed in; when nobody is, whether the first account is
/// still to be made (the sign-in page then asks for the admin token instead).
pub fn current(sessions: &Sessions, token: Option<&str>) -> Result<Reply, ApiError> {
    if let Some(s) = token.and_then(|t| sessions.lookup(t, clock::now_ms())) {
        return Ok(json(StatusCode::OK, &who(&s)));
    }
    Ok(json(
        StatusCode::OK,
        &json!({"signedIn": false, "firstUserNeeded": !sessions.has_users()?}),
    ))
}

fn user_json(u: &crate::store::User) -> Value {
    json!({"name": u.name, "role": u.role.as_str(), "createdAt": u.created_at})
}

/// `POST /api/v1/users` `{"name","role","password"}`.
pub fn add_user(sessions: &Sessions, _: AdminToken, body: Value) -> Result<Reply, ApiError> {
    let name = field(&body, "name")?;
    let role = field(&body, "role")?;
    let role = Role::parse(role).ok_or_else(|| {
        ApiError::BadRequest(format!("role must be admin or viewer, not {role:?}"))
    })?;
    let password = field(&body, "password")?;
    let user = sessions.add_user(name, role, password, clock::now_ms())?;
    tracing::info!(user = %user.name, role = role.as_str(), "user added");
    Ok(json(StatusCode::CREATED, &user_json(&user)))
}

pub fn list_users(sessions: &Sessions, _: AdminToken) -> Result<Reply, ApiError> {
    let users: Vec<Value> = sessions.users()?.iter().map(user_json).collect();
    Ok(json(StatusCode::OK, &json!({ "users": users })))
}

pub fn remove_user(sessions: &Sessions, _: AdminToken, name: &str) -> Result<Reply, ApiError> {
    sessions.remove_user(name)?;
    tracing::info!(user = %name, "user removed");
    Ok(json(StatusCode::OK, &json!({"removed": name})))
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Invalid(m) => ApiError::BadRequest(m),
            SessionError::WrongCredentials => {
                ApiError::Unauthorized("wrong username or password".into())
            }
            SessionError::NotFound(m) => ApiError::NotFound(m),
            SessionError::Store(e) => e.into(),
        }
    }
}
