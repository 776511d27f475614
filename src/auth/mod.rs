//! Auth: API keys, the admin token and the in-memory key index.
//!
//! A secret is 32 bytes from the OS CSPRNG, hex-encoded behind a recognisable prefix
//! (`shk_` for webhook API keys, `sha_` for the admin token), shown once, and stored only as
//! its blake3 hash. Lookups go by hash; the final comparison uses `blake3::Hash`'s
//! constant-time equality. Owns no storage: `store` persists the hashes.

use parking_lot::RwLock;
use std::collections::HashMap;

pub mod password;
pub mod ratelimit;
pub mod usage;

pub const API_KEY_PREFIX: &str = "shk_";
pub const ADMIN_TOKEN_PREFIX: &str = "sha_";
/// Characters of a key shown in listings to tell keys apart: the prefix plus 8 hex digits
/// (32 bits: enough to recognise, far too few to guess the rest).
pub const SHOWN_KEY_CHARS: usize = 12;

/// `prefix` + 64 hex digits (256 bits from the OS CSPRNG).
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", hex(&random_bytes::<32>()))
}

/// `prefix` + 16 hex digits, for readable ids (`prj_…`, `wh_…`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", hex(&random_bytes::<8>()))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("BUG: the OS random number generator is unavailable");
    b
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

/// Constant-time comparison of a presented secret with a stored hash.
pub fn secret_matches(secret: &str, stored: &[u8; 32]) -> bool {
    blake3::hash(secret.as_bytes()) == blake3::Hash::from_bytes(*stored)
}

/// What an `Authorization` header holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer<'a> {
    Missing,
    Malformed,
    Token(&'a str),
}

pub fn bearer(header: Option<&[u8]>) -> Bearer<'_> {
    let Some(raw) = header else {
        return Bearer::Missing;
    };
    let Ok(text) = std::str::from_utf8(raw) else {
        return Bearer::Malformed;
    };
    let mut parts = text.trim().splitn(2, ' ');
    match (parts.next(), parts.next()) {
        (Some(scheme), Some(token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim())
        }
        _ => Bearer::Malformed,
    }
}

/// Who a live API key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOwner {
    pub webhook_id: String,
    pub project_id: String,
    pub scope: crate::store::Scope,
}

/// A key that no longer works, remembered so that its use can be reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    pub webhook_id: String,
    pub key_prefix: String,
    /// `rotated` or `revoked`.
    pub reason: String,
}

struct LiveKey {
    owner: KeyOwner,
    /// A rotated-out key in its grace period works until then (Unix ms).
    valid_until: Option<i64>,
    key_prefix: String,
}

/// The live API keys by hash; mirrors the store's `api_keys` table (write-through). Also
/// the retired keys, to tell "a revoked key still in use" from "an unknown key".
#[derive(Default)]
pub struct KeyIndex {
    by_hash: RwLock<HashMap<[u8; 32], LiveKey>>,
    retired: RwLock<HashMap<[u8; 32], RetiredKey>>,
}

impl KeyIndex {
    /// A key that works until removed.
    pub fn insert(&self, hash: [u8; 32], owner: KeyOwner) {
        self.insert_until(hash, owner, None, String::new());
    }

    /// A key that works until `valid_until` (a rotated-out key in its grace period).
    pub fn insert_until(
        &self,
        hash: [u8; 32],
        owner: KeyOwner,
        valid_until: Option<i64>,
        key_prefix: String,
    ) {
        self.retired.write().remove(&hash);
        self.by_hash.write().insert(
            hash,
            LiveKey {
                owner,
                valid_until,
                key_prefix,
            },
        );
    }

    /// Stops a key from working and remembers it as retired.
    pub fn retire(&self, hash: [u8; 32], retired: RetiredKey) {
        self.by_hash.write().remove(&hash);
        self.retired.write().insert(hash, retired);
    }

    /// Takes `other`'s keys in place of these (a follower's copy of its leader's keys).
    pub fn replace_with(&self, other: KeyIndex) {
        *self.by_hash.write() = other.by_hash.into_inner();
        *self.retired.write() = other.retired.into_inner();
    }

    /// The owner of `key`, if it works now.
    pub fn lookup(&self, key: &str) -> Option<KeyOwner> {
        let hash = hash_secret(key);
        let map = self.by_hash.read();
        let (stored, live) = map.get_key_value(&hash)?;
        if live
            .valid_until
            .is_some_and(|until| crate::clock::now_ms() >= until)
        {
            return None;
        }
        secret_matches(key, stored).then(|| live.owner.clone())
    }

    /// What `key` was, if it is a key that no longer works: revoked, rotated out, or past
    /// its grace period.
    pub fn retired(&self, key: &str) -> Option<RetiredKey> {
        let hash = hash_secret(key);
        if let Some(r) = self.retired.read().get(&hash) {
            return Some(r.clone());
        }
        let map = self.by_hash.read();
        let live = map.get(&hash)?;
        let expired = live
            .valid_until
            .is_some_and(|until| crate::clock::now_ms() >= until);
        expired.then(|| RetiredKey {
            webhook_id: live.owner.webhook_id.clone(),
            key_prefix: live.key_prefix.clone(),
            reason: "rotated".into(),
        })
    }
}

/// Builds the key index: live keys from the key table (a rotated-out key only until its
/// grace ends), retired ones from each webhook's old keys.
pub fn key_index(webhooks: &[crate::store::Webhook], live: Vec<([u8; 32], String)>) -> KeyIndex {
    let keys = KeyIndex::default();
    for w in webhooks {
        for k in &w.old_keys {
            if let Some(h) = unhex32(&k.key_hash) {
                let retired = RetiredKey {
                    webhook_id: w.id.clone(),
                    key_prefix: k.key_prefix.clone(),
                    reason: k.reason.clone(),
                };
                keys.retire(h, retired);
            }
        }
    }
    for (hash, webhook_id) in live {
        let Some(w) = webhooks.iter().find(|w| w.id == webhook_id) else {
            continue;
        };
        let owner = KeyOwner {
            webhook_id,
            project_id: w.project_id.clone(),
            scope: w.scope,
        };
        let hex = hex(&hash);
        if hex == w.key_hash {
            keys.insert(hash, owner);
        } else if let Some(k) = w.old_keys.iter().find(|k| k.key_hash == hex) {
            keys.insert_until(hash, owner, Some(k.valid_until), k.key_prefix.clone());
        }
    }
    keys
}

/// The 32-byte hash a 64-digit hex string spells, if it does.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What a log line may show of a presented secret: its first characters, printable ASCII
/// only (never enough to use it).
pub fn shown_prefix(secret: &str) -> String {
    secret
        .chars()
        .take(SHOWN_KEY_CHARS)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = new_secret(API_KEY_PREFIX);
        let b = new_secret(API_KEY_PREFIX);
        assert!(a.starts_with("shk_") && a.len() == 4 + 64);
        assert_ne!(a, b);
        assert!(secret_matches(&a, &hash_secret(&a)));
        assert!(!secret_matches(&b, &hash_secret(&a)));
    }

    #[test]
    fn parses_bearer_headers() {
        assert_eq!(bearer(None), Bearer::Missing);
        assert_eq!(bearer(Some(b"Bearer abc")), Bearer::Token("abc"));
        assert_eq!(bearer(Some(b"bearer  abc ")), Bearer::Token("abc"));
        assert_eq!(bearer(Some(b"Basic abc")), Bearer::Malformed);
        assert_eq!(bearer(Some(b"Bearer")), Bearer::Malformed);
        assert_eq!(bearer(Some(b"Bearer ")), Bearer::Malformed);
        assert_eq!(bearer(Some(&[0xff, 0xfe])), Bearer::Malformed);
    }

    #[test]
    fn index_finds_live_keys_only() {
        let idx = KeyIndex::default();
        let key = new_secret(API_KEY_PREFIX);
        let owner = KeyOwner {
            webhook_id: "wh_1".into(),
            project_id: "p".into(),
            scope: crate::store::Scope::Ingest,
        };
        idx.insert(hash_secret(&key), owner.clone());
        assert_eq!(idx.lookup(&key), Some(owner));
        assert_eq!(idx.lookup("shk_nope"), None);
        let retired = RetiredKey {
            webhook_id: "wh_1".into(),
            key_prefix: key[..SHOWN_KEY_CHARS].into(),
            reason: "revoked".into(),
        };
        idx.retire(hash_secret(&key), retired.clone());
        assert_eq!(idx.lookup(&key), None);
        assert_eq!(idx.retired(&key), Some(retired));
        assert_eq!(idx.retired("shk_nope"), None);
    }

    #[test]
    fn a_grace_key_works_until_its_time_then_counts_as_retired() {
        let idx = KeyIndex::default();
        let owner = KeyOwner {
            webhook_id: "wh_1".into(),
            project_id: "p".into(),
            scope: crate::store::Scope::Ingest,
        };
        let (soon, past) = (new_secret(API_KEY_PREFIX), new_secret(API_KEY_PREFIX));
        let now = crate::clock::now_ms();
        idx.insert_until(
            hash_secret(&soon),
            owner.clone(),
            Some(now + 60_000),
            "a".into(),
        );
        idx.insert_until(hash_secret(&past), owner.clone(), Some(now - 1), "b".into());
        assert_eq!(idx.lookup(&soon), Some(owner));
        assert_eq!(idx.retired(&soon), None);
        assert_eq!(idx.lookup(&past), None);
        assert_eq!(idx.retired(&past).map(|r| r.reason), Some("rotated".into()));
    }

    #[test]
    fn hex_round_trips_and_prefixes_are_printable() {
        let h = hash_secret("x");
        assert_eq!(unhex32(&hex(&h)), Some(h));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(shown_prefix("shk_0123456789abcdef"), "shk_01234567");
        assert_eq!(shown_prefix("a\nb"), "a?b");
    }
}
