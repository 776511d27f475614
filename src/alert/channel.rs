//! Notification channels: where a project's alerts go (a Slack, Discord or Teams webhook, or
//! a generic JSON webhook signed the Standard Webhooks way), the stored form (version 1) and
//! its validation. A channel's URL and signing secret are credentials: the API shows them
//! masked after creation (`Channel::public`). Pure.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const CHANNEL_VERSION: u32 = 1;
pub const KINDS: [&str; 4] = ["slack", "discord", "teams", "webhook"];
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
    pub url: String,
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
        json!({"id": self.id, "name": self.name, "type": self.kind, "url": mask_url(&self.url),
               "signed": self.secret.is_some(), "createdAt": self.created_at})
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
    if kind == "email" {
        return Err(
            "type email is not available in this version; use webhook, slack, discord or teams"
                .into(),
        );
    }
    if !KINDS.contains(&kind.as_str()) {
        return Err(format!("type must be one of {}", KINDS.join(", ")));
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
        secret: None,
        created_at: 0,
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
