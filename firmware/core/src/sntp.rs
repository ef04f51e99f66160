//! SNTP (RFC 4330) without I/O: the request a device sends and the check of the server's reply,
//! so readings carry UTC instead of "time since boot" once the box has asked a time server.
//!
//! The request's transmit timestamp is a nonce (the device's monotonic clock): a reply counts
//! only if it echoes it as its originate timestamp, comes from a server in mode 4 with a
//! stratum of 1–15 (0 is a "kiss of death") and carries a transmit time. UTC at the moment the
//! reply arrived is the server's transmit time plus half the round trip; what the device keeps
//! is the offset between that and its monotonic clock. Anything else is an error, never a
//! panic: replies are untrusted bytes off the network.

/// Bytes of an SNTP packet (without extensions or authentication).
pub const PACKET: usize = 48;
/// UDP port of time servers.
pub const PORT: u16 = 123;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const UNIX_FROM_NTP_S: u64 = 2_208_988_800;

/// Why a reply was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SntpError {
    /// Shorter than 48 bytes.
    Short,
    /// Not a server reply (mode ≠ 4) or an unknown version.
    NotAReply,
    /// Stratum 0 (kiss of death: the server tells us to go away) or above 15 (unsynchronised).
    Unsynchronised,
    /// The originate timestamp is not our request's: a stale or forged reply.
    NotOurs,
    /// Transmit timestamp zero.
    NoTime,
    /// The answer arrived before it was asked (a clock going backwards).
    BadRoundTrip,
}

/// Writes a client request whose nonce is `nonce` (e.g. the monotonic clock in ms).
pub fn request(nonce: u64, buf: &mut [u8; PACKET]) {
    *buf = [0; PACKET];
    buf[0] = 0b00_100_011; // LI 0, version 4, mode 3 (client)
    buf[40..48].copy_from_slice(&nonce.to_be_bytes());
}

fn ntp_to_unix_ms(ts: u64) -> u64 {
    let (secs, frac) = (ts >> 32, ts & 0xffff_ffff);
    // Era 1 starts in 2036: a seconds value before 1970 means era 1 (no server this device talks
    // to lives before 1970), which keeps the arithmetic good until 2106 + 136 years.
    let secs = if secs < UNIX_FROM_NTP_S { secs + (1 << 32) } else { secs };
    (secs - UNIX_FROM_NTP_S) * 1000 + ((frac * 1000) >> 32)
}

/// Checks `reply` to the request with `nonce`, sent at `sent_ms` and received at `received_ms`
/// on the monotonic clock; returns UTC milliseconds at `received_ms`.
pub fn utc_at_receive(reply: &[u8], nonce: u64, sent_ms: u64, received_ms: u64) -> Result<u64, SntpError> {
    let p: &[u8; PACKET] = reply.get(..PACKET).and_then(|p| p.try_into().ok()).ok_or(SntpError::Short)?;
    let (version, mode) = ((p[0] >> 3) & 7, p[0] & 7);
    if mode != 4 || !(3..=4).contains(&version) {
        return Err(SntpError::NotAReply);
    }
    if !(1..=15).contains(&p[1]) {
        return Err(SntpError::Unsynchronised);
    }
    let ts = |at: usize| {
        u64::from_be_bytes([
            p[at],
            p[at + 1],
            p[at + 2],
            p[at + 3],
            p[at + 4],
            p[at + 5],
            p[at + 6],
            p[at + 7],
        ])
    };
    if ts(24) != nonce {
        return Err(SntpError::NotOurs);
    }
    let transmit = ts(40);
    if transmit == 0 {
        return Err(SntpError::NoTime);
    }
    let rtt = received_ms.checked_sub(sent_ms).ok_or(SntpError::BadRoundTrip)?;
    Ok(ntp_to_unix_ms(transmit).saturating_add(rtt / 2))
}
