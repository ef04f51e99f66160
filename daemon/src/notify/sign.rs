//! Signatures of `generic` webhooks, following the Standard Webhooks specification
//! (standardwebhooks.com), so receivers can use a maintained verifier in their language.
//!
//! Why a timestamp: a signature over the body alone lets anyone who captured one request replay
//! it for ever. Each request carries
//!
//! - `webhook-id`: the notification's id, `{order}-{transition}` (stable across retries: the
//!   receiver's de-duplication key, also sent as `Idempotency-Key`);
//! - `webhook-timestamp`: seconds since the Unix epoch, when this attempt was made;
//! - `webhook-signature`: `v1,` + Base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
//!
//! The key is the secret's bytes after Base64 decoding when it has the spec's `whsec_` prefix
//! (what its libraries expect), otherwise the secret's UTF-8 bytes. A receiver rejects a
//! timestamp more than [`TOLERANCE_S`] from its clock. The old body-only
//! `X-Gridsentry-Signature` header is gone: it is exactly the replayable signature this fixes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a receiver lets a timestamp be from its own clock (the libraries' default).
pub const TOLERANCE_S: u64 = 300;

/// The HMAC key of `secret`.
pub fn key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_").map(|b| STANDARD.decode(b)) {
        Some(Ok(bytes)) => bytes,
        _ => secret.as_bytes().to_vec(),
    }
}

/// The `webhook-signature` value for message `id` sent at `timestamp_s`.
pub fn signature(secret: &str, id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Why a request does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing or unreadable.
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// The timestamp is too far from now (a replay, or a clock off).
    #[error("timestamp {0} s away from now")]
    Stale(u64),
    /// No signature in the header matches.
    #[error("no matching signature")]
    Mismatch,
}

/// Checks a request's three headers against `body` at `now_s` (for receivers: the demo's and
/// the tests'). Several space-separated signatures are allowed (key rotation).
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_s: u64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::Header("webhook-id"))?;
    let ts: u64 = timestamp.and_then(|t| t.parse().ok()).ok_or(VerifyError::Header("webhook-timestamp"))?;
    let given = signatures.ok_or(VerifyError::Header("webhook-signature"))?;
    if ts.abs_diff(now_s) > TOLERANCE_S {
        return Err(VerifyError::Stale(ts.abs_diff(now_s)));
    }
    let expected = signature(secret, id, ts, body);
    // Constant-time comparison of the MAC itself.
    let expected_mac = STANDARD.decode(&expected[3..]).unwrap_or_default();
    let ok = given.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|s| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("any key length");
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        STANDARD.decode(s).is_ok_and(|g| g.len() == expected_mac.len() && mac.verify_slice(&g).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries (standard-webhooks, python/
    /// javascript tests): secret, id, timestamp and body give this signature.
    #[test]
    fn matches_the_reference_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(secret, id, 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(secret, Some(id), Some("1614265330"), Some(&sig), body, 1614265400), Ok(()));
    }

    #[test]
    fn replays_tampering_and_missing_headers_fail() {
        let (s, id, body) = ("plain-secret", "12-3", b"{}".as_slice());
        let sig = signature(s, id, 1000, body);
        let v = |ts: &str, sig: &str, body: &[u8], now| verify(s, Some(id), Some(ts), Some(sig), body, now);
        assert_eq!(v("1000", &sig, body, 1300), Ok(()));
        assert_eq!(v("1000", &sig, body, 1301), Err(VerifyError::Stale(301)), "an old capture replayed");
        assert_eq!(v("1001", &sig, body, 1001), Err(VerifyError::Mismatch), "timestamp moved");
        assert_eq!(v("1000", &sig, b"{ }", 1000), Err(VerifyError::Mismatch), "body changed");
        assert_eq!(v("1000", &format!("v1,AAAA {sig}"), body, 1000), Ok(()), "one of several");
        assert_eq!(
            verify(s, None, Some("1000"), Some(&sig), body, 1000),
            Err(VerifyError::Header("webhook-id"))
        );
    }
}
