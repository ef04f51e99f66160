//! Who may do what: people, their roles and the secrets they prove themselves with.
//!
//! Why here and not in `api`: the CLI (`gridsentry people`), the store (which records people,
//! credentials and the audit chain) and the API all need the same roles and the same hashing;
//! this module is pure (no I/O) so that the role × action table is tested by itself.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), so a
//! stolen database does not give the passwords away cheaply. Session cookies and personal API
//! tokens are 256 random bits; the store keeps only their SHA-256 (a token is as strong as a
//! key, so a slow hash adds nothing, and a fast one keeps every request's lookup cheap).

pub mod roles;

pub use roles::{Perm, Principal, Role};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Failed logins in a row that lock a name.
pub const LOCK_AFTER: i64 = 5;
/// How long a lock lasts, ms (15 minutes).
pub const LOCK_MS: i64 = 15 * 60 * 1000;
/// How long a console session lasts unused, ms (12 hours; each use extends it).
pub const SESSION_MS: i64 = 12 * 3600 * 1000;
/// Default lifetime of a personal API token, days.
pub const TOKEN_DAYS: i64 = 90;

/// Why a password or a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Too short.
    #[error("a password needs at least {MIN_PASSWORD} characters")]
    ShortPassword,
    /// Not a usable name.
    #[error("a name is 1–64 letters, digits, `.`, `_` or `-` (got `{0}`)")]
    BadName(String),
    /// Hashing failed (should not happen with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks a person's name: short, printable, no spaces or control characters (it appears in
/// logs, order events and the audit chain).
pub fn check_name(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
    ok.then_some(()).ok_or_else(|| AccessError::BadName(name.chars().take(80).collect()))
}

/// The Argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String, AccessError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(AccessError::ShortPassword);
    }
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| AccessError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of one verification, for a name that does not exist (so that a wrong name
/// and a wrong password take as long).
pub fn verify_nobody(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password("not anyone's password").unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// A fresh secret for a session or an API token: 256 random bits, URL-safe base64.
pub fn new_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A readable random password for `people add`/`reset` (16 characters from an alphabet
/// without look-alikes: about 90 bits).
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..16).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// What the store keeps of a secret: its SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("anything", "not a hash"));
        assert_eq!(hash_password("short"), Err(AccessError::ShortPassword));
        assert_ne!(hash_password("correct horse battery").unwrap(), h, "salted");
    }

    #[test]
    fn names_are_plain() {
        assert!(check_name("wang.li").is_ok());
        assert!(check_name("王丽").is_ok());
        for bad in ["", "a b", "x\u{1b}[31m", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(secret_hash(&a).len(), 64);
        let p = new_password();
        assert_eq!(p.chars().count(), 16);
        assert!(hash_password(&p).is_ok());
    }
}
