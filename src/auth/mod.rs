//! Auth: API keys, the admin token and the in-memory key index.
//!
//! A secret is 32 bytes from the OS CSPRNG, hex-encoded behind a recognisable prefix
//! (`shk_` for webhook API keys, `sha_` for the admin token), shown once, and stored only as
//! its blake3 hash. Lookups go by hash; the final comparison uses `blake3::Hash`'s
//! constant-time equality. Owns no storage: `store` persists the hashes.

use parking_lot::RwLock;
use std::collections::HashMap;

pub mod ratelimit;

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

/// The live API keys by hash; mirrors the store's `api_keys` table (write-through).
#[derive(Default)]
pub struct KeyIndex {
    by_hash: RwLock<HashMap<[u8; 32], KeyOwner>>,
}

impl KeyIndex {
    pub fn insert(&self, hash: [u8; 32], owner: KeyOwner) {
        self.by_hash.write().insert(hash, owner);
    }

    pub fn remove(&self, hash: &[u8; 32]) {
        self.by_hash.write().remove(hash);
    }

    /// The owner of `key`, if it is live.
    pub fn lookup(&self, key: &str) -> Option<KeyOwner> {
        let hash = hash_secret(key);
        let map = self.by_hash.read();
        let (stored, owner) = map.get_key_value(&hash)?;
        secret_matches(key, stored).then(|| owner.clone())
    }
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
        idx.remove(&hash_secret(&key));
        assert_eq!(idx.lookup(&key), None);
    }
}
