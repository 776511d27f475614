//! Usage of each API key on the webhook: requests accepted, rejected by reason, samples
//! stored, last use and source address, and hourly counts for the last 7 days; plus the
//! suspicious-pattern checks that warn in the log (a sudden jump in volume). Pure counting
//! with `now_ms` as an argument; `store` persists snapshots (`App` flushes them), so the
//! figures survive restarts up to the last flush. Owns no HTTP and no files.

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Hours of history kept per key: 7 days.
pub const HOURS_KEPT: usize = 7 * 24;
const HOUR_MS: i64 = 3_600_000;
/// A key's samples in the current hour above this many times its mean of the previous
/// `BASELINE_HOURS` (and above `JUMP_FLOOR_SAMPLES`) is logged as a sudden jump in volume.
pub const JUMP_FACTOR: u64 = 10;
pub const BASELINE_HOURS: i64 = 24;
/// Below this many samples in an hour no jump is reported: a quiet key going from 1 to 20
/// samples an hour is not news.
pub const JUMP_FLOOR_SAMPLES: u64 = 1_000;

/// Why a webhook request with a known key was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// 401/403: a revoked or rotated-out key, a read key on the webhook, another project.
    Auth,
    /// 400/408/415: the body (invalid, or too slow to arrive) or its content type.
    Validation,
    /// 429: the project's tier limit.
    RateLimit,
    /// 413: the body was too large.
    Size,
    /// 5xx: the server could not store it (full disk, compaction far behind).
    Unavailable,
}

impl Reason {
    /// The reason of a refusal with this status.
    pub fn of_status(status: u16) -> Reason {
        match status {
            401 | 403 => Reason::Auth,
            413 => Reason::Size,
            429 => Reason::RateLimit,
            400..=499 => Reason::Validation,
            _ => Reason::Unavailable,
        }
    }
}

/// Rejected requests by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub auth: u64,
    pub validation: u64,
    pub rate_limit: u64,
    pub size: u64,
    pub unavailable: u64,
}

impl Rejected {
    fn slot(&mut self, r: Reason) -> &mut u64 {
        match r {
            Reason::Auth => &mut self.auth,
            Reason::Validation => &mut self.validation,
            Reason::RateLimit => &mut self.rate_limit,
            Reason::Size => &mut self.size,
            Reason::Unavailable => &mut self.unavailable,
        }
    }

    pub fn total(&self) -> u64 {
        self.auth + self.validation + self.rate_limit + self.size + self.unavailable
    }
}

/// One hour of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hour {
    /// Start of the hour, Unix ms.
    pub hour_start: i64,
    pub accepted: u64,
    pub rejected: u64,
    pub samples: u64,
}

/// Everything counted for one key; also its persisted form (JSON in the `usage` table).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUsage {
    pub accepted: u64,
    pub rejected: Rejected,
    pub samples_stored: u64,
    pub last_used_at: Option<i64>,
    pub last_source_ip: Option<IpAddr>,
    /// Non-empty hours of the last `HOURS_KEPT`, oldest first.
    pub hours: Vec<Hour>,
    /// The hour a volume jump was last reported, so it is reported once an hour at most.
    #[serde(default)]
    pub jump_reported_hour: i64,
    /// When the use of a retired key was last reported, so it is reported once a minute.
    #[serde(default)]
    pub retired_use_reported_at: i64,
    /// The last `REQUEST_LOG_LEN` webhook requests, oldest first; in memory only (a
    /// restart starts it empty), so a busy key costs no store writes for it.
    #[serde(skip)]
    pub recent: std::collections::VecDeque<LoggedRequest>,
}

/// Requests kept in a key's request log.
pub const REQUEST_LOG_LEN: usize = 100;

/// One webhook request as the request log shows it: when, from where, the status, the
/// samples stored and, for a refusal, the exact error message the client got.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub at: i64,
    pub status: u16,
    pub samples: u64,
    pub source_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `record` noticed that deserves a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// This hour's samples against the mean per hour of the previous day.
    VolumeJump { this_hour: u64, mean_per_hour: u64 },
}

impl KeyUsage {
    /// Counts one request; `outcome` is Ok(samples stored) or Err(reason).
    pub fn record(
        &mut self,
        outcome: Result<u64, Reason>,
        source: IpAddr,
        now_ms: i64,
    ) -> Option<Notice> {
        let hour_start = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        self.last_used_at = Some(now_ms);
        self.last_source_ip = Some(source);
        let oldest_kept = hour_start - (HOURS_KEPT as i64 - 1) * HOUR_MS;
        let stale = self.hours.iter().take_while(|h| h.hour_start < oldest_kept);
        let stale = stale.count();
        self.hours.drain(..stale);
        // Clocks may step back: a request is counted in the latest hour it is not before.
        let hour = match self.hours.last_mut() {
            Some(h) if h.hour_start >= hour_start => h,
            _ => {
                self.hours.push(Hour {
                    hour_start,
                    ..Hour::default()
                });
                self.hours.last_mut().expect("BUG: just pushed")
            }
        };
        match outcome {
            Ok(samples) => {
                hour.accepted += 1;
                hour.samples += samples;
                self.accepted += 1;
                self.samples_stored += samples;
            }
            Err(reason) => {
                hour.rejected += 1;
                *self.rejected.slot(reason) += 1;
            }
        }
        let this_hour = hour.samples;
        let hour_start = hour.hour_start;
        if outcome.is_err()
            || this_hour <= JUMP_FLOOR_SAMPLES
            || self.jump_reported_hour == hour_start
        {
            return None;
        }
        let since = hour_start - BASELINE_HOURS * HOUR_MS;
        let previous: u64 = self
            .hours
            .iter()
            .filter(|h| h.hour_start >= since && h.hour_start < hour_start)
            .map(|h| h.samples)
            .sum();
        // A key with no history has no baseline: its first busy hour is not a jump.
        if previous == 0 {
            return None;
        }
        let mean = previous / BASELINE_HOURS as u64;
        if this_hour > JUMP_FACTOR * mean.max(1) {
            self.jump_reported_hour = hour_start;
            return Some(Notice::VolumeJump {
                this_hour,
                mean_per_hour: mean,
            });
        }
        None
    }

    /// The last `HOURS_KEPT` hours ending with the one holding `now_ms`, oldest first,
    /// empty hours included.
    pub fn hourly(&self, now_ms: i64) -> Vec<Hour> {
        let current = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        (0..HOURS_KEPT as i64)
            .rev()
            .map(|back| {
                let hour_start = current - back * HOUR_MS;
                self.hours
                    .iter()
                    .find(|h| h.hour_start == hour_start)
                    .copied()
                    .unwrap_or(Hour {
                        hour_start,
                        ..Hour::default()
                    })
            })
            .collect()
    }
}

/// The usage of every key, by key record id (`wh_…`). Recording takes a read lock on the
/// map and the key's own lock.
#[derive(Default)]
pub struct UsageTracker {
    by_key: RwLock<HashMap<String, Arc<Mutex<KeyUsage>>>>,
}

impl UsageTracker {
    /// Starts from persisted snapshots.
    pub fn load(saved: Vec<(String, KeyUsage)>) -> UsageTracker {
        let map = saved
            .into_iter()
            .map(|(k, u)| (k, Arc::new(Mutex::new(u))))
            .collect();
        UsageTracker {
            by_key: RwLock::new(map),
        }
    }

    /// Counts one webhook request and adds it to the key's request log (`status` and, for a
    /// refusal, the error message sent).
    pub fn record(
        &self,
        key_id: &str,
        outcome: Result<u64, Reason>,
        source: IpAddr,
        now_ms: i64,
        status: u16,
        error: Option<String>,
    ) -> Option<Notice> {
        let entry = self.entry(key_id);
        let mut u = entry.lock();
        if u.recent.len() >= REQUEST_LOG_LEN {
            u.recent.pop_front();
        }
        u.recent.push_back(LoggedRequest {
            at: now_ms,
            status,
            samples: *outcome.as_ref().unwrap_or(&0),
            source_ip: source,
            error,
        });
        u.record(outcome, source, now_ms)
    }

    fn entry(&self, key_id: &str) -> Arc<Mutex<KeyUsage>> {
        let found = self.by_key.read().get(key_id).cloned();
        match found {
            Some(e) => e,
            None => self
                .by_key
                .write()
                .entry(key_id.to_owned())
                .or_default()
                .clone(),
        }
    }

    /// Counts a request made with one of the key record's retired keys (an auth rejection);
    /// true when it should be logged (at most once a minute per key record).
    pub fn record_retired_use(&self, key_id: &str, source: IpAddr, now_ms: i64) -> bool {
        let entry = self.entry(key_id);
        let mut u = entry.lock();
        u.record(Err(Reason::Auth), source, now_ms);
        if now_ms - u.retired_use_reported_at >= 60_000 {
            u.retired_use_reported_at = now_ms;
            return true;
        }
        false
    }

    /// A copy of one key's usage (all zero if it was never used).
    pub fn get(&self, key_id: &str) -> KeyUsage {
        self.by_key
            .read()
            .get(key_id)
            .map(|u| u.lock().clone())
            .unwrap_or_default()
    }

    /// Copies of every key's usage, for persisting.
    pub fn snapshot(&self) -> Vec<(String, KeyUsage)> {
        self.by_key
            .read()
            .iter()
            .map(|(k, u)| (k.clone(), u.lock().clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn counts_by_outcome_and_hour() {
        let mut u = KeyUsage::default();
        u.record(Ok(5), IP, 10);
        u.record(Ok(3), IP, HOUR_MS + 1);
        u.record(Err(Reason::Validation), IP, HOUR_MS + 2);
        u.record(Err(Reason::RateLimit), IP, HOUR_MS + 3);
        assert_eq!((u.accepted, u.samples_stored), (2, 8));
        assert_eq!(u.rejected.validation, 1);
        assert_eq!(u.rejected.rate_limit, 1);
        assert_eq!(u.rejected.total(), 2);
        assert_eq!(u.last_used_at, Some(HOUR_MS + 3));
        let h = u.hourly(HOUR_MS + 5);
        assert_eq!(h.len(), HOURS_KEPT);
        assert_eq!(h[HOURS_KEPT - 1].samples, 3);
        assert_eq!(h[HOURS_KEPT - 1].rejected, 2);
        assert_eq!(h[HOURS_KEPT - 2].samples, 5);
        assert_eq!(h[HOURS_KEPT - 2].hour_start, 0);
    }

    #[test]
    fn forgets_hours_older_than_a_week_but_keeps_totals() {
        let mut u = KeyUsage::default();
        u.record(Ok(1), IP, 0);
        u.record(Ok(1), IP, HOURS_KEPT as i64 * HOUR_MS);
        assert_eq!(u.hours.len(), 1);
        assert_eq!(u.samples_stored, 2);
        let h = u.hourly(HOURS_KEPT as i64 * HOUR_MS);
        assert_eq!(h.iter().map(|h| h.samples).sum::<u64>(), 1);
    }

    #[test]
    fn reports_a_jump_in_volume_once_an_hour() {
        let mut u = KeyUsage::default();
        // A day of 200 samples an hour.
        for hour in 0..24 {
            assert_eq!(u.record(Ok(200), IP, hour * HOUR_MS), None);
        }
        let now = 24 * HOUR_MS;
        // 10x the mean (2,000) is still normal; beyond it is not.
        assert_eq!(u.record(Ok(2_000), IP, now), None);
        assert_eq!(
            u.record(Ok(1), IP, now + 1),
            Some(Notice::VolumeJump {
                this_hour: 2_001,
                mean_per_hour: 200
            })
        );
        assert_eq!(u.record(Ok(5_000), IP, now + 2), None, "once an hour");
    }

    #[test]
    fn a_new_key_busy_from_the_start_is_not_a_jump() {
        let mut u = KeyUsage::default();
        assert_eq!(u.record(Ok(50_000), IP, 0), None);
        let mut quiet = KeyUsage::default();
        quiet.record(Ok(1), IP, 0);
        assert_eq!(quiet.record(Ok(900), IP, HOUR_MS), None, "under the floor");
    }
}
