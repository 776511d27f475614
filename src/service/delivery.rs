//! Delivery of the outbox, at least once: each notification was stored with the state change
//! that caused it (`alerts.rs`) and stays in the outbox until its channel answered 2xx, or a
//! final refusal (another 4xx, a redirect, the address guard), or 24 h of retries (network
//! errors, 5xx, 408 and 429, with exponential backoff and jitter, at least `Retry-After`).
//! Every attempt is logged per channel. A restart resumes the outbox: the same notification
//! goes out with the same `webhook-id`, so a receiver can drop duplicates. Also the
//! channels' Send test. The store is used on the blocking pool; sending through `outbound`.

use super::alerts::Alerts;
use crate::alert::message::{self, Alert};
use crate::alert::Channel;
use crate::outbound::SendError;
use crate::store::{Attempted, StoreError};
use serde::{Deserialize, Serialize};

/// How long a notification is retried before it is given up.
pub const GIVE_UP_MS: i64 = 24 * 3_600_000;
const FIRST_RETRY_MS: i64 = 1_000;
const MAX_RETRY_MS: i64 = 3_600_000;
/// Consecutive failed attempts after which a channel is flagged as failing.
pub const FAILING_AFTER: usize = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    /// The `webhook-id`: the same on every attempt.
    pub id: String,
    pub project: String,
    pub channel: String,
    /// One alert, or several as one digest.
    pub alerts: Vec<Alert>,
    pub created_at: i64,
    pub attempts: u32,
    pub next_at: i64,
}

impl OutboxItem {
    pub fn new(project: &str, channel: &str, alerts: Vec<Alert>, now: i64) -> OutboxItem {
        OutboxItem {
            id: crate::auth::new_id("msg_"),
            project: project.to_owned(),
            channel: channel.to_owned(),
            alerts,
            created_at: now,
            attempts: 0,
            next_at: now,
        }
    }

    fn event(&self) -> String {
        match self.alerts.as_slice() {
            [one] => one.event.clone(),
            many => format!("digest of {}", many.len()),
        }
    }
}

/// One delivery attempt, as a channel's log shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: i64,
    pub message_id: String,
    /// `firing`, `resolved`, `test` or `digest of N`.
    pub event: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// `delivered`, `retrying` or `failed` (final).
    pub outcome: String,
}

/// What one send came to.
struct Sent {
    status: Option<u16>,
    error: Option<String>,
    retry: Option<i64>,
    delivered: bool,
}

/// The delay before retry `attempt` (1-based): 1 s doubling to 1 h, each drawn between half
/// and all of it, and never before `Retry-After`.
pub fn backoff_ms(attempt: u32, retry_after_ms: Option<i64>, random: u64) -> i64 {
    crate::outbound::backoff_ms(
        FIRST_RETRY_MS,
        MAX_RETRY_MS,
        attempt,
        retry_after_ms,
        random,
    )
}

/// The first line of a refusal's body, short, for the log.
fn answer_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

impl Alerts {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Corrupt(format!("a store task failed: {e}")))?
    }

    async fn send(&self, ch: &Channel, id: &str, alerts: &[Alert], now_ms: i64) -> Sent {
        if let Some(e) = &ch.email {
            let (subject, text) = message::email(alerts);
            return match self.outbound.send_mail(e, &subject, text, id).await {
                Ok(code) => Sent {
                    status: code,
                    error: None,
                    retry: None,
                    delivered: true,
                },
                Err(m) => Sent {
                    status: None,
                    error: Some(m.text),
                    retry: m.retry.then_some(0),
                    delivered: false,
                },
            };
        }
        let body = serde_json::to_vec(&message::render(&ch.kind, alerts)).expect("JSON");
        let mut headers = Vec::new();
        if let Some(secret) = &ch.secret {
            let ts = now_ms / 1000;
            headers.push(("webhook-id", id.to_owned()));
            headers.push(("webhook-timestamp", ts.to_string()));
            headers.push(("webhook-signature", message::sign(secret, id, ts, &body)));
        }
        match self.outbound.post_json(&ch.url, &headers, body).await {
            Ok(r) if (200..300).contains(&r.status) => Sent {
                status: Some(r.status),
                error: None,
                retry: None,
                delivered: true,
            },
            Ok(r) => {
                let retryable = r.status == 408 || r.status == 429 || r.status >= 500;
                let why = if (300..400).contains(&r.status) {
                    "a redirect, which is not followed: give the channel its final URL".to_owned()
                } else {
                    format!("answered {}: {}", r.status, answer_excerpt(&r.body))
                };
                Sent {
                    status: Some(r.status),
                    error: Some(why),
                    retry: retryable.then(|| r.retry_after.map_or(0, |d| d.as_millis() as i64)),
                    delivered: false,
                }
            }
            Err(e) => Sent {
                status: None,
                error: Some(e.to_string()),
                retry: matches!(e, SendError::Network(_)).then_some(0),
                delivered: false,
            },
        }
    }

    /// Tries every due outbox item once; returns when the next one is due, if any.
    pub async fn deliver_due(&self, now: i64) -> Result<Option<i64>, StoreError> {
        let items: Vec<(u64, OutboxItem)> = self.blocking(|s| s.outbox()).await?;
        let mut next: Option<i64> = None;
        let mut done: Vec<Outcome> = Vec::new();
        for (seq, mut item) in items {
            if item.next_at > now {
                next = Some(next.map_or(item.next_at, |n| n.min(item.next_at)));
                continue;
            }
            let (p, c) = (item.project.clone(), item.channel.clone());
            let channel: Option<Channel> = self.blocking(move |s| s.channel(&p, &c)).await?;
            item.attempts += 1;
            let sent = match &channel {
                Some(ch) => self.send(ch, &item.id, &item.alerts, now).await,
                None => Sent {
                    status: None,
                    error: Some("the channel was deleted".into()),
                    retry: None,
                    delivered: false,
                },
            };
            let give_up = now - item.created_at >= GIVE_UP_MS;
            let outcome = match (sent.delivered, sent.retry) {
                (true, _) => "delivered",
                (false, Some(_)) if !give_up => "retrying",
                _ => "failed",
            };
            let attempt = Attempt {
                at: now,
                message_id: item.id.clone(),
                event: item.event(),
                attempt: item.attempts,
                status: sent.status,
                error: match (outcome, sent.error) {
                    ("failed", Some(e)) if give_up && sent.retry.is_some() => {
                        Some(format!("{e} (given up after 24 h of retries)"))
                    }
                    (_, e) => e,
                },
                outcome: outcome.into(),
            };
            let keep = if outcome == "retrying" {
                item.next_at =
                    now + backoff_ms(item.attempts, sent.retry, crate::outbound::random_u64());
                next = Some(next.map_or(item.next_at, |n| n.min(item.next_at)));
                Some(item.clone())
            } else {
                None
            };
            done.push(Outcome {
                seq,
                project: item.project,
                channel: item.channel,
                keep,
                attempt,
            });
        }
        self.blocking(move |s| {
            let rows: Vec<Attempted<'_, OutboxItem, Attempt>> = done
                .iter()
                .map(|o| Attempted {
                    seq: Some(o.seq),
                    item: o.keep.as_ref(),
                    project: &o.project,
                    channel: &o.channel,
                    attempt: &o.attempt,
                })
                .collect();
            s.record_attempts(&rows)
        })
        .await?;
        Ok(next)
    }

    /// Sends a test notification to a channel now (not through the outbox) and logs it.
    pub async fn send_test(&self, channel: &Channel, project: &str) -> Result<Attempt, StoreError> {
        let now = crate::clock::now_ms();
        let id = crate::auth::new_id("msg_");
        let alert = Alert {
            event: "test".into(),
            project: project.to_owned(),
            rule_id: String::new(),
            rule_name: format!("Test of channel {}", channel.name),
            metric_id: "stathook_test".into(),
            metric_name: "A test notification".into(),
            unit: None,
            condition: "none: this is a test".into(),
            value: None,
            at: now,
            url: format!(
                "{}/projects/{}",
                self.public_url.trim_end_matches('/'),
                crate::client::enc(project)
            ),
        };
        let sent = self
            .send(channel, &id, std::slice::from_ref(&alert), now)
            .await;
        let attempt = Attempt {
            at: now,
            message_id: id,
            event: "test".into(),
            attempt: 1,
            status: sent.status,
            error: sent.error,
            outcome: if sent.delivered {
                "delivered"
            } else {
                "failed"
            }
            .into(),
        };
        let (p, c, a) = (project.to_owned(), channel.id.clone(), attempt.clone());
        self.blocking(move |s| {
            s.record_attempts::<OutboxItem, Attempt>(&[Attempted {
                seq: None,
                item: None,
                project: &p,
                channel: &c,
                attempt: &a,
            }])
        })
        .await?;
        Ok(attempt)
    }
}

struct Outcome {
    seq: u64,
    project: String,
    channel: String,
    keep: Option<OutboxItem>,
    attempt: Attempt,
}

/// Whether a channel's last attempts all failed (at least `FAILING_AFTER` of them).
pub fn failing(log: &[Attempt]) -> bool {
    log.len() >= FAILING_AFTER
        && log
            .iter()
            .rev()
            .take(FAILING_AFTER)
            .all(|a| a.outcome != "delivered")
}

/// Delivers the outbox until the task is dropped: at start (what a restart left), when the
/// evaluator queues something, and when the next retry is due.
pub async fn run_delivery(alerts: Alerts) {
    loop {
        let next = match alerts.deliver_due(crate::clock::now_ms()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "alert delivery could not read or update the outbox; retrying in 5 s");
                Some(crate::clock::now_ms() + 5_000)
            }
        };
        let wait = next.map_or(60_000, |t| (t - crate::clock::now_ms()).clamp(0, 60_000));
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
            _ = alerts.wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        assert!((500..=1000).contains(&backoff_ms(1, None, crate::outbound::random_u64())));
        assert!((1000..=2000).contains(&backoff_ms(2, None, crate::outbound::random_u64())));
        assert_eq!(backoff_ms(1, None, 0), 500);
        assert!(backoff_ms(30, None, u64::MAX - 1) <= MAX_RETRY_MS);
        assert_eq!(backoff_ms(1, Some(30_000), 0), 30_000);
    }

    #[test]
    fn a_channel_is_failing_after_three_failed_attempts_in_a_row() {
        let a = |outcome: &str| Attempt {
            at: 0,
            message_id: "m".into(),
            event: "firing".into(),
            attempt: 1,
            status: None,
            error: None,
            outcome: outcome.into(),
        };
        assert!(!failing(&[a("failed"), a("retrying")]));
        assert!(failing(&[
            a("delivered"),
            a("failed"),
            a("retrying"),
            a("failed")
        ]));
        assert!(!failing(&[
            a("failed"),
            a("failed"),
            a("failed"),
            a("delivered")
        ]));
    }
}
