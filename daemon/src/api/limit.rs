//! Login attempts per client address: at most [`PER_MINUTE`] a minute, so guessing passwords
//! from one address is slow even across many names (each name also locks after five failures).
//! Behind a reverse proxy every client shares the proxy's address: put the limit there too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts allowed per address and minute.
pub const PER_MINUTE: u32 = 10;
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (old windows are dropped first).
const MAX_ADDRESSES: usize = 10_000;

/// Counts attempts per address in fixed one-minute windows.
#[derive(Debug, Default)]
pub struct Limiter {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    /// Counts an attempt from `ip` at `now`; `Err(seconds to wait)` when over the limit.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_ADDRESSES {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, n) = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            (*start, *n) = (now, 0);
        }
        *n += 1;
        match *n <= PER_MINUTE {
            true => Ok(()),
            false => Err((WINDOW - now.duration_since(*start)).as_secs().max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_a_minute_per_address() {
        let l = Limiter::default();
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..PER_MINUTE {
            assert!(l.attempt(a, t).is_ok());
        }
        assert_eq!(l.attempt(a, t + Duration::from_secs(20)), Err(40));
        assert!(l.attempt(b, t).is_ok(), "another address has its own count");
        assert!(l.attempt(a, t + WINDOW).is_ok(), "a new minute");
    }
}
