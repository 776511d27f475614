//! What a channel is sent: one alert's content (`Alert`) rendered as each kind of channel
//! expects it (Slack's `text`, Discord's `content`, a Teams Workflows Adaptive Card, a
//! generic JSON event), and the Standard Webhooks signature of a generic one. User text
//! (rule and metric names) is escaped so it cannot mention `@channel` or `@everyone`. Pure.

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Discord refuses a `content` longer than this.
pub const DISCORD_MAX: usize = 2000;

/// One notification's content, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing`, `resolved` or `test`.
    pub event: String,
    pub project: String,
    pub rule_id: String,
    pub rule_name: String,
    pub metric_id: String,
    pub metric_name: String,
    pub unit: Option<String>,
    /// The condition as a person reads it (`avg over 5m > 100`).
    pub condition: String,
    pub value: Option<f64>,
    /// When the state changed (Unix ms).
    pub at: i64,
    /// The metric's page.
    pub url: String,
}

impl Alert {
    fn value_text(&self) -> String {
        match (self.value, &self.unit) {
            (Some(v), Some(u)) => format!("{v} {u}"),
            (Some(v), None) => v.to_string(),
            (None, _) => "no value".into(),
        }
    }

    fn headline(&self) -> String {
        let what = match self.event.as_str() {
            "firing" => "FIRING",
            "resolved" => "RESOLVED",
            _ => "TEST",
        };
        format!("[{what}] {}", self.rule_name)
    }

    fn lines(&self) -> Vec<String> {
        vec![
            format!(
                "{} ({}) in {}",
                self.metric_name, self.metric_id, self.project
            ),
            format!("Condition: {}", self.condition),
            format!("Value: {}", self.value_text()),
            format!("At: {}", rfc3339(self.at)),
        ]
    }
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Slack's control characters: `<!channel>`, `<@U123>` and links need `<`; escaped, user text
/// stays text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn slack(a: &Alert) -> Value {
    let mut text = format!("*{}*", slack_escape(&a.headline()));
    for l in a.lines() {
        text.push('\n');
        text.push_str(&slack_escape(&l));
    }
    text.push_str(&format!("\n<{}|Open the metric>", slack_escape(&a.url)));
    json!({ "text": text })
}

pub fn discord(a: &Alert) -> Value {
    let mut content = format!("**{}**\n{}\n{}", a.headline(), a.lines().join("\n"), a.url);
    if content.chars().count() > DISCORD_MAX {
        content = content.chars().take(DISCORD_MAX - 1).collect::<String>() + "…";
    }
    // No mention of anyone, whatever the text says (Discord's allowed_mentions).
    json!({ "content": content, "allowed_mentions": { "parse": [] } })
}

/// A message for a Teams Workflows webhook ("Post to a channel when a webhook request is
/// received"): one Adaptive Card attachment.
pub fn teams(a: &Alert) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": a.headline(), "weight": "Bolder",
                               "size": "Medium", "wrap": true}),
    ];
    for l in a.lines() {
        body.push(json!({"type": "TextBlock", "text": l, "wrap": true, "spacing": "Small"}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open the metric", "url": a.url}],
            }
        }]
    })
}

/// The generic webhook's event: `{"type": "alert.firing", "timestamp", "data": {...}}`.
pub fn webhook(a: &Alert) -> Value {
    json!({
        "type": format!("alert.{}", a.event),
        "timestamp": rfc3339(a.at),
        "data": a,
    })
}

/// The payload of a notification to a channel of `kind`: one alert, or a digest of several
/// (storm control: one message instead of many).
pub fn render(kind: &str, alerts: &[Alert]) -> Value {
    if let [one] = alerts {
        return match kind {
            "slack" => slack(one),
            "discord" => discord(one),
            "teams" => teams(one),
            _ => webhook(one),
        };
    }
    let title = format!(
        "[DIGEST] {} alerts changed in {}",
        alerts.len(),
        alerts.first().map_or("", |a| a.project.as_str())
    );
    let line = |a: &Alert| format!("{} ({}): {}", a.headline(), a.metric_id, a.value_text());
    match kind {
        "slack" => {
            let mut text = format!("*{}*", slack_escape(&title));
            for a in alerts {
                text.push('\n');
                text.push_str(&slack_escape(&line(a)));
            }
            json!({ "text": text })
        }
        "discord" => {
            let mut content = title;
            for a in alerts {
                content.push('\n');
                content.push_str(&line(a));
            }
            if content.chars().count() > DISCORD_MAX {
                content = content.chars().take(DISCORD_MAX - 1).collect::<String>() + "…";
            }
            json!({ "content": content, "allowed_mentions": { "parse": [] } })
        }
        "teams" => {
            let mut card = teams(&alerts[0]);
            let mut body =
                vec![json!({"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": true})];
            body.extend(
                alerts
                    .iter()
                    .map(|a| json!({"type": "TextBlock", "text": line(a), "wrap": true})),
            );
            card["attachments"][0]["content"]["body"] = Value::Array(body);
            card["attachments"][0]["content"]["actions"] = json!([]);
            card
        }
        _ => json!({
            "type": "alert.digest",
            "timestamp": rfc3339(alerts.iter().map(|a| a.at).max().unwrap_or(0)),
            "data": { "alerts": alerts },
        }),
    }
}

/// An email's subject and plain-text body: one alert, or a digest of several.
pub fn email(alerts: &[Alert]) -> (String, String) {
    let subject = match alerts {
        [one] => one.headline(),
        many => format!(
            "[DIGEST] {} alerts changed in {}",
            many.len(),
            many.first().map_or("", |a| a.project.as_str())
        ),
    };
    let mut body = String::new();
    for a in alerts {
        if alerts.len() > 1 {
            body.push_str(&a.headline());
            body.push('\n');
        }
        for l in a.lines() {
            body.push_str(&l);
            body.push('\n');
        }
        body.push_str(&format!("Open the metric: {}\n\n", a.url));
    }
    body.push_str(
        "-- \nSent by stathook. Mute the rule or change its channels on the Alerts page.\n",
    );
    // A subject is one line, whatever a rule's name holds.
    (subject.replace(['\r', '\n'], " "), body)
}

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("the OS random source");
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b)
    )
}

/// `webhook-signature`'s value: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
/// the key being the secret's bytes after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp_s: i64, body: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp_s}.").as_bytes());
    mac.update(body);
    format!("v1,{}", b64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str) -> Alert {
        Alert {
            event: "firing".into(),
            project: "p1".into(),
            rule_id: "al_1".into(),
            rule_name: name.into(),
            metric_id: "api_ms".into(),
            metric_name: "API <latency>".into(),
            unit: Some("ms".into()),
            condition: "avg over 5m > 100".into(),
            value: Some(123.5),
            at: 1_796_274_000_000,
            url: "http://127.0.0.1:8080/projects/p1/metrics/api_ms".into(),
        }
    }

    #[test]
    fn slack_text_cannot_mention_the_channel() {
        let m = slack(&alert("<!channel> slow & <@U1>"));
        let text = m["text"].as_str().unwrap();
        assert!(
            text.starts_with("*[FIRING] &lt;!channel&gt; slow &amp; &lt;@U1&gt;*"),
            "{text}"
        );
        assert!(text.contains("Value: 123.5 ms"));
        assert!(text.contains("At: 2026-12-03T05:00:00Z"));
        assert!(
            text.ends_with("<http://127.0.0.1:8080/projects/p1/metrics/api_ms|Open the metric>")
        );
        assert_eq!(
            m.as_object().unwrap().len(),
            1,
            "Slack's incoming webhook payload: text only"
        );
    }

    #[test]
    fn discord_content_is_capped_and_mentions_nobody() {
        let m = discord(&alert(&"@everyone ".repeat(400)));
        assert_eq!(m["content"].as_str().unwrap().chars().count(), DISCORD_MAX);
        assert_eq!(m["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn teams_gets_one_adaptive_card() {
        let m = teams(&alert("Slow"));
        assert_eq!(m["type"], "message");
        let a = &m["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["text"], "[FIRING] Slow");
        assert_eq!(a["content"]["actions"][0]["type"], "Action.OpenUrl");
    }

    #[test]
    fn the_signature_is_standard_webhooks() {
        // The example of the Standard Webhooks reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let s = new_secret();
        assert!(s.starts_with("whsec_") && s.len() == 6 + 32, "{s}");
        assert_eq!(webhook(&alert("x"))["type"], "alert.firing");
    }

    #[test]
    fn an_email_has_one_line_of_subject_and_the_alert_in_its_body() {
        let (subject, body) = email(&[alert("Disk\r\nBcc: x@evil.example")]);
        assert_eq!(subject, "[FIRING] Disk  Bcc: x@evil.example");
        assert!(
            body.contains("Value: 123.5 ms\n")
                && body
                    .contains("Open the metric: http://127.0.0.1:8080/projects/p1/metrics/api_ms")
        );
        let (subject, _) = email(&[alert("a"), alert("b")]);
        assert_eq!(subject, "[DIGEST] 2 alerts changed in p1");
    }

    #[test]
    fn a_digest_is_one_message_of_many_alerts() {
        let many = vec![alert("a"), alert("b"), alert("<!here>")];
        let s = render("slack", &many);
        let text = s["text"].as_str().unwrap();
        assert!(
            text.starts_with("*[DIGEST] 3 alerts changed in p1*"),
            "{text}"
        );
        assert!(text.contains("&lt;!here&gt;") && !text.contains("<!here>"));
        assert_eq!(
            render("webhook", &many)["data"]["alerts"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            render("teams", &many)["attachments"][0]["content"]["body"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        assert_eq!(render("discord", &many[..1]), discord(&many[0]));
    }
}
