//! Wall-clock helpers shared by every stage (UTC milliseconds, RFC 3339).
//!
//! They live apart from any one stage so that `series`, `api` and `notify` do not import
//! `ingest` just to read the time: arrows point one way along the data path.

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// UTC ms as RFC 3339 (the number itself if it is out of range).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_a_known_instant_and_of_nonsense() {
        assert_eq!(super::rfc3339(1_764_072_000_000), "2025-11-25T12:00:00Z");
        assert_eq!(super::rfc3339(i64::MAX), i64::MAX.to_string());
    }
}
