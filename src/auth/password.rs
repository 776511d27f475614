//! Passwords: argon2id at OWASP's parameters (19 MiB, 2 passes, 1 lane: the `argon2`
//! crate's defaults), stored as a PHC string that carries its own salt and parameters, so
//! stronger parameters later still verify old hashes. The only user of `argon2`.

use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::Argon2;

/// Shortest password accepted (OWASP's minimum for passwords without a second factor).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest: argon2 takes any length, but a megabyte "password" is only work for the server.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("BUG: argon2 with default parameters hashes any password under its size cap")
        .to_string()
}

/// Whether `password` matches `phc` (false for a damaged hash, too).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that "no such user" takes as
/// long as "wrong password" and the answer's timing does not tell names apart.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password, never a real one"))
}

/// Why a new password is refused, or None.
pub fn weakness(password: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Some(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert_ne!(h, hash("correct horse battery"), "salts must differ");
    }

    #[test]
    fn weak_passwords_are_named() {
        assert!(weakness("short").unwrap().contains("at least 8"));
        assert!(weakness(&"x".repeat(2000)).unwrap().contains("at most"));
        assert_eq!(weakness("long enough"), None);
    }
}
