//! Per-project rate limits by tier: a token bucket per project holding up to the tier's
//! requests-per-hour, refilled continuously at that rate (so 100/hour allows a burst of 100,
//! then one request every 36 s). The bucket math is pure (`now_ms` is an argument); the
//! `RateLimiter` keeps one bucket per project behind its own small lock, so the hot path
//! never takes a global write lock.

use crate::store::Tier;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

const HOUR_MS: f64 = 3_600_000.0;

/// Requests per hour for the limited tiers (flags `--rate-limit-free|pro|scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierLimits {
    pub free: u32,
    pub pro: u32,
    pub scale: u32,
}

/// The spec's figures.
pub const DEFAULT_TIER_LIMITS: TierLimits = TierLimits {
    free: 100,
    pro: 1_000,
    scale: 10_000,
};

impl TierLimits {
    /// Requests per hour for `tier`; None = unlimited.
    pub fn per_hour(&self, tier: Tier) -> Option<u32> {
        match tier {
            Tier::Free => Some(self.free),
            Tier::Pro => Some(self.pro),
            Tier::Scale => Some(self.scale),
            Tier::Unlimited => None,
        }
    }
}

/// The outcome of one request against a bucket, with what the response headers say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// `X-RateLimit-Limit`: requests per hour.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: whole requests left right now.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: Unix seconds when the bucket is full again.
    pub reset_unix_s: i64,
    /// `Retry-After` seconds when refused: until one request's worth has refilled.
    pub retry_after_s: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    tokens: f64,
    updated_ms: i64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: u32, now_ms: i64) -> Bucket {
        Bucket {
            tokens: f64::from(limit),
            updated_ms: now_ms,
        }
    }

    /// Refills for the time since the last call, then takes one request if there is one.
    pub fn take(&mut self, limit: u32, now_ms: i64) -> Decision {
        let limit_f = f64::from(limit);
        let rate_per_ms = limit_f / HOUR_MS;
        let elapsed = (now_ms - self.updated_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * rate_per_ms).min(limit_f);
        self.updated_ms = self.updated_ms.max(now_ms);
        let allowed = self.tokens >= 1.0;
        if allowed {
            self.tokens -= 1.0;
        }
        let ms_until = |tokens_needed: f64| {
            if rate_per_ms > 0.0 {
                (tokens_needed.max(0.0) / rate_per_ms).ceil()
            } else {
                f64::INFINITY
            }
        };
        let full_in_ms = ms_until(limit_f - self.tokens).min(HOUR_MS);
        let retry_ms = if allowed {
            0.0
        } else {
            ms_until(1.0 - self.tokens)
        };
        Decision {
            allowed,
            limit,
            remaining: self.tokens.floor() as u32,
            reset_unix_s: (now_ms + full_in_ms as i64 + 999) / 1000,
            retry_after_s: if retry_ms.is_finite() {
                (retry_ms / 1000.0).ceil() as u64
            } else {
                3600
            },
        }
    }
}

/// One bucket per project, and each project's tier.
pub struct RateLimiter {
    limits: TierLimits,
    tiers: RwLock<HashMap<String, Tier>>,
    buckets: RwLock<HashMap<String, Arc<Mutex<Bucket>>>>,
}

impl RateLimiter {
    pub fn new(limits: TierLimits) -> RateLimiter {
        RateLimiter {
            limits,
            tiers: RwLock::new(HashMap::new()),
            buckets: RwLock::new(HashMap::new()),
        }
    }

    /// Records a project's tier (at start, on create, on change). A changed tier starts a
    /// fresh, full bucket at the new limit: an upgrade takes effect at once.
    pub fn set_tier(&self, project: &str, tier: Tier) {
        if self.tiers.write().insert(project.to_owned(), tier) != Some(tier) {
            self.buckets.write().remove(project);
        }
    }

    /// Counts one request of `project`; None when its tier is unlimited.
    pub fn check(&self, project: &str, now_ms: i64) -> Option<Decision> {
        let tier = *self.tiers.read().get(project)?;
        let limit = self.limits.per_hour(tier)?;
        let bucket = self.buckets.read().get(project).cloned();
        let bucket = match bucket {
            Some(b) => b,
            None => self
                .buckets
                .write()
                .entry(project.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(Bucket::new(limit, now_ms))))
                .clone(),
        };
        let decision = bucket.lock().take(limit, now_ms);
        Some(decision)
    }
}

/// Failed authentications per source address: past `threshold` in a minute, the address is
/// refused (429) before any key lookup until `cooldown_ms` has passed. Checking is a read
/// lock and a map lookup; only failures take the write lock.
pub struct AuthFailures {
    threshold: u32,
    cooldown_ms: i64,
    by_addr: RwLock<HashMap<std::net::IpAddr, FailState>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct FailState {
    window_start_ms: i64,
    count: u32,
    blocked_until_ms: i64,
}

/// Addresses remembered at most; past this, entries whose window and block are over are
/// dropped (a flood from many addresses cannot grow the map without bound).
const MAX_TRACKED_ADDRESSES: usize = 100_000;
const WINDOW_MS: i64 = 60_000;

impl AuthFailures {
    pub fn new(threshold_per_minute: u32, cooldown_ms: i64) -> AuthFailures {
        AuthFailures {
            threshold: threshold_per_minute,
            cooldown_ms,
            by_addr: RwLock::new(HashMap::new()),
        }
    }

    /// Seconds `addr` must still wait, if it is blocked.
    pub fn blocked(&self, addr: std::net::IpAddr, now_ms: i64) -> Option<u64> {
        let until = self.by_addr.read().get(&addr)?.blocked_until_ms;
        (until > now_ms).then(|| ((until - now_ms + 999) / 1000) as u64)
    }

    /// Counts one failed authentication; returns true when it starts a block.
    pub fn record_failure(&self, addr: std::net::IpAddr, now_ms: i64) -> bool {
        let mut map = self.by_addr.write();
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&addr) {
            map.retain(|_, s| {
                s.blocked_until_ms > now_ms || now_ms - s.window_start_ms < WINDOW_MS
            });
        }
        let s = map.entry(addr).or_default();
        if now_ms - s.window_start_ms >= WINDOW_MS {
            s.window_start_ms = now_ms;
            s.count = 0;
        }
        s.count += 1;
        if s.count > self.threshold && s.blocked_until_ms <= now_ms {
            s.blocked_until_ms = now_ms + self.cooldown_ms;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_allows_a_burst_of_the_limit_then_refills_at_the_rate() {
        let mut b = Bucket::new(100, 0);
        for i in 0..100 {
            let d = b.take(100, 0);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 99 - i);
        }
        let d = b.take(100, 0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        // One request refills every 36 s.
        assert_eq!(d.retry_after_s, 36);
        assert_eq!(d.reset_unix_s, 3600);
        assert!(!b.take(100, 35_999).allowed);
        assert!(b.take(100, 36_000).allowed);
        // After an hour of quiet it is full again, never fuller.
        let d = b.take(100, 10 * 3_600_000);
        assert!(d.allowed);
        assert_eq!(d.remaining, 99);
    }

    #[test]
    fn a_lowered_limit_caps_the_bucket() {
        let mut b = Bucket::new(1000, 0);
        let d = b.take(5, 0);
        assert!(d.allowed);
        assert_eq!(d.remaining, 4);
    }

    #[test]
    fn an_address_past_the_threshold_is_blocked_for_the_cooldown() {
        let f = AuthFailures::new(3, 10_000);
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        for t in 0..3 {
            assert!(!f.record_failure(a, t));
            assert_eq!(f.blocked(a, t), None);
        }
        assert!(f.record_failure(a, 3));
        assert_eq!(f.blocked(a, 3), Some(10));
        assert_eq!(f.blocked(b, 3), None);
        assert_eq!(f.blocked(a, 10_002), Some(1));
        assert_eq!(f.blocked(a, 10_003), None);
        // A new minute starts a new count.
        assert!(!f.record_failure(a, 70_000));
        assert_eq!(f.blocked(a, 70_000), None);
    }

    #[test]
    fn unlimited_and_unknown_projects_are_not_counted() {
        let r = RateLimiter::new(DEFAULT_TIER_LIMITS);
        r.set_tier("u", Tier::Unlimited);
        assert_eq!(r.check("u", 0), None);
        assert_eq!(r.check("nobody", 0), None);
        r.set_tier("f", Tier::Free);
        assert_eq!(
            r.check("f", 0).map(|d| (d.limit, d.remaining)),
            Some((100, 99))
        );
        r.set_tier("f", Tier::Pro);
        assert_eq!(
            r.check("f", 0).map(|d| (d.limit, d.remaining)),
            Some((1000, 999))
        );
    }
}
