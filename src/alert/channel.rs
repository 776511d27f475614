//! Notification channels: where a project's alerts go (a Slack, Discord or Teams webhook, a
//! generic JSON webhook signed the Standard Webhooks way, or email over SMTP), the stored
//! form (version 1) and its validation. A channel's URL, signing secret and SMTP password
//! are credentials: the API shows them masked or not at all (`Channel::public`). Pure.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const CHANNEL_VERSION: u32 = 1;
pub const KINDS: [&str; 5] = ["slack", "discord", "teams", "webhook", "email"];
const MAX_RECIPIENTS: usize = 20;
/// How an email channel's connection is secured.
pub const SECURITY: [&str; 3] = ["starttls", "tls", "none"];
const MAX_URL: usize = 2048;
const MAX_TEXT: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The destination; for email, `smtp://host:port` (shown, not used to connect).
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The Standard Webhooks secret (`whsec_` + base64 of 24 random bytes) of a `webhook`
    /// channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default)]
    pub created_at: i64,
}

fn one() -> u32 {
    CHANNEL_VERSION
}

/// An email channel's message and server settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub to: Vec<String>,
    pub from: String,
    pub host: String,
    pub port: u16,
    /// `starttls` (the default: the server must offer STARTTLS, no fallback to plain),
    /// `tls` (TLS from the first byte, port 465) or `none` (plain: a trusted local relay).
    pub security: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `https://hooks.slack.com/services/T0/B0/XXXX` → `https://hooks.slack.com/…XXXX`: enough to
/// tell channels apart, not enough to post to one.
pub fn mask_url(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let host_end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let tail: String = url[host_end..]
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if host_end == url.len() {
        url[..host_end].to_owned()
    } else {
        format!("{}/…{tail}", &url[..host_end])
    }
}

impl Channel {
    /// What the API shows: the URL masked, the secret never.
    pub fn public(&self) -> Value {
        let mut v = json!({"id": self.id, "name": self.name, "type": self.kind, "url": mask_url(&self.url),
               "signed": self.secret.is_some(), "createdAt": self.created_at});
        if let Some(e) = &self.email {
            v["url"] = json!(self.url);
            v["to"] = json!(e.to);
            v["from"] = json!(e.from);
            v["security"] = json!(e.security);
            v["username"] = json!(e.username);
        }
        v
    }
}

/// Checks a channel as posted (`id`, `secret` and `createdAt` are the server's to set).
pub fn parse(body: &Value) -> Result<Channel, String> {
    let obj = body.as_object().ok_or("the body must be a JSON object")?;
    let text = |f: &str| -> Result<String, String> {
        match obj.get(f) {
            Some(Value::String(s)) => Ok(s.trim().to_owned()),
            Some(_) => Err(format!("{f} must be a string")),
            None => Err(format!("{f} is required")),
        }
    };
    let name = text("name")?;
    if name.is_empty() || name.len() > MAX_TEXT {
        return Err(format!("name must be 1 to {MAX_TEXT} bytes"));
    }
    let kind = text("type")?;
    if !KINDS.contains(&kind.as_str()) {
        return Err(format!("type must be one of {}", KINDS.join(", ")));
    }
    if kind == "email" {
        let email = parse_email(obj)?;
        return Ok(Channel {
            version: CHANNEL_VERSION,
            id: String::new(),
            name,
            kind,
            url: format!("smtp://{}:{}", email.host, email.port),
            email: Some(email),
            secret: None,
            created_at: 0,
        });
    }
    let url = text("url")?;
    check_url(&url)?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["name", "type", "url"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field {k:?} (a channel takes name, type, url)"
        ));
    }
    Ok(Channel {
        version: CHANNEL_VERSION,
        id: String::new(),
        name,
        kind,
        url,
        email: None,
        secret: None,
        created_at: 0,
    })
}

/// An email channel: `{"to": [addresses], "from", "smtp": {"host", "port", "security",
/// "username", "password"}}`.
fn parse_email(obj: &serde_json::Map<String, Value>) -> Result<Email, String> {
    if let Some(k) = obj
        .keys()
        .find(|k| !["name", "type", "to", "from", "smtp"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field {k:?} (an email channel takes name, type, to, from, smtp)"
        ));
    }
    let address = |field: &str, v: &Value| -> Result<String, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{field} must be an email address"))?;
        s.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("{field}: {s:?} is not an email address ({e})"))?;
        Ok(s.trim().to_owned())
    };
    let to: Vec<String> = match obj.get("to") {
        Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_RECIPIENTS => list
            .iter()
            .enumerate()
            .map(|(i, v)| address(&format!("to[{i}]"), v))
            .collect::<Result<_, _>>()?,
        Some(Value::String(one)) => vec![address("to", &Value::String(one.clone()))?],
        _ => {
            return Err(format!(
                "to must list 1 to {MAX_RECIPIENTS} email addresses"
            ))
        }
    };
    let from = address(
        "from",
        obj.get("from")
            .ok_or("from is required (the sender's address)")?,
    )?;
    let smtp = obj.get("smtp").and_then(Value::as_object).ok_or(
        "smtp is required: {\"host\", \"port\", \"security\", \"username\", \"password\"}",
    )?;
    if let Some(k) = smtp
        .keys()
        .find(|k| !["host", "port", "security", "username", "password"].contains(&k.as_str()))
    {
        return Err(format!("smtp: unknown field {k:?}"));
    }
    let host = smtp
        .get("host")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.len() <= 253 && !h.contains(['/', '@', ' ']))
        .ok_or("smtp.host must be a host name or address")?
        .to_owned();
    let security = match smtp.get("security") {
        None => "starttls".to_owned(),
        Some(Value::String(s)) if SECURITY.contains(&s.as_str()) => s.clone(),
        Some(_) => {
            return Err(format!(
                "smtp.security must be one of {}",
                SECURITY.join(", ")
            ))
        }
    };
    let port = match smtp.get("port") {
        None => {
            if security == "tls" {
                465
            } else {
                587
            }
        }
        Some(v) => v
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or("smtp.port must be a port number")? as u16,
    };
    let text = |f: &str| -> Result<Option<String>, String> {
        match smtp.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("smtp.{f} must be a string")),
        }
    };
    let (username, password) = (text("username")?, text("password")?);
    if username.is_some() != password.is_some() {
        return Err("smtp.username and smtp.password go together".into());
    }
    if password.is_some() && security == "none" {
        return Err(
            "smtp.password is never sent over a plain connection: use security starttls or tls"
                .into(),
        );
    }
    Ok(Email {
        to,
        from,
        host,
        port,
        security,
        username,
        password,
    })
}

fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL {
        return Err(format!("url must be at most {MAX_URL} bytes"));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "url must be an http:// or https:// URL".to_owned())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none_or(str::is_empty) {
        return Err("url must be an http:// or https:// URL with a host".into());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("url must not carry a user name or password".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_channel_takes_addresses_and_a_server() {
        let c = parse(
            &json!({"name": "Ops mail", "type": "email", "to": ["ops@example.com"],
            "from": "stathook <alerts@example.com>",
            "smtp": {"host": "smtp.example.com", "username": "u", "password": "p"}}),
        )
        .unwrap();
        let e = c.email.as_ref().unwrap();
        assert_eq!((e.port, e.security.as_str()), (587, "starttls"));
        assert_eq!(c.url, "smtp://smtp.example.com:587");
        let shown = c.public();
        assert_eq!(shown["to"], json!(["ops@example.com"]));
        assert!(!shown.to_string().contains("\"p\""), "no password: {shown}");
        let err = |b: Value| parse(&b).unwrap_err();
        let base = |smtp: Value| json!({"name": "m", "type": "email", "to": ["a@b.example"], "from": "c@d.example", "smtp": smtp});
        assert!(err(base(json!({"host": "h", "security": "maybe"}))).starts_with("smtp.security"));
        assert!(err(base(
            json!({"host": "h", "security": "none", "username": "u", "password": "p"})
        ))
        .contains("never sent over a plain"));
        assert!(err(base(json!({"host": "h", "username": "u"}))).contains("go together"));
        assert!(err(base(json!({"host": "h", "port": 70000}))).starts_with("smtp.port"));
        assert!(err(json!({"name": "m", "type": "email", "to": ["not an address"], "from": "c@d.example", "smtp": {"host": "h"}})).starts_with("to[0]"));
        assert_eq!(
            parse(&base(json!({"host": "h", "security": "tls"})))
                .unwrap()
                .email
                .unwrap()
                .port,
            465
        );
    }

    #[test]
    fn urls_are_masked_and_checked() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/abcdWXYZ"),
            "https://hooks.slack.com/…WXYZ"
        );
        assert_eq!(mask_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
        let ok = parse(
            &json!({"name": "Ops", "type": "slack", "url": "https://hooks.slack.com/services/x"}),
        );
        assert_eq!(ok.unwrap().kind, "slack");
        let err = |b: Value| parse(&b).unwrap_err();
        assert!(
            err(json!({"name": "Ops", "type": "pager", "url": "https://x"}))
                .starts_with("type must be")
        );
        assert!(
            err(json!({"name": "Ops", "type": "slack", "url": "ftp://x/y"}))
                .starts_with("url must be")
        );
        assert!(
            err(json!({"name": "Ops", "type": "slack", "url": "https://u:p@x/y"}))
                .contains("password")
        );
        assert!(err(json!({"name": "Ops", "type": "slack"})).starts_with("url is required"));
        assert!(
            err(json!({"name": "Ops", "type": "slack", "url": "https://x", "to": 1}))
                .starts_with("unknown field")
        );
        assert!(err(json!({"name": "", "type": "slack", "url": "https://x"})).starts_with("name"));
    }
}
