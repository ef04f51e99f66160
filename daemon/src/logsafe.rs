//! Text that came from outside (a device's field, a login name) made safe to write into a log
//! line or the audit chain: control characters escaped (a newline cannot forge a second line,
//! an ESC cannot repaint a terminal) and the length capped; text log lines escaped as a whole
//! ([`Escaped`]); and warnings about one device's bad input rate-limited ([`Throttle`]), so a
//! device sending 3,000 malformed messages does not write 3,000 lines.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// `s` with control characters escaped (`\n`, `\u{1b}`) and at most `max` characters kept
/// (then `…`).
pub fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 2));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Stderr for text logs, with every control character but the line's final newline escaped:
/// whatever a field holds, one event stays one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Escaped;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Escaped {
    type Writer = EscapedWriter;
    fn make_writer(&'a self) -> EscapedWriter {
        EscapedWriter
    }
}

/// See [`Escaped`].
pub struct EscapedWriter;

impl Write for EscapedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !body.iter().any(|b| b.is_ascii_control() && *b != b'\t') {
            std::io::stderr().write_all(buf)?;
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(body);
        let mut line = escape(&text, usize::MAX);
        line.push('\n');
        std::io::stderr().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Warnings per (source, reason): the first [`Throttle::FIRST`] of a minute are logged, the rest
/// counted and reported with the next one logged after the minute.
#[derive(Debug, Default)]
pub struct Throttle {
    seen: HashMap<(String, String), (Instant, u32, u64)>,
}

impl Throttle {
    /// Logged per source and reason and minute.
    pub const FIRST: u32 = 3;
    const WINDOW: Duration = Duration::from_secs(60);
    const MAX_SOURCES: usize = 10_000;

    /// Whether to log this occurrence: `Some(n)` with how many were left unlogged since the
    /// last one logged, `None` to stay quiet.
    pub fn allow(&mut self, source: &str, reason: &str, now: Instant) -> Option<u64> {
        if self.seen.len() >= Self::MAX_SOURCES {
            self.seen.retain(|_, (start, _, _)| now.duration_since(*start) < Self::WINDOW);
        }
        let (start, logged, quiet) =
            self.seen.entry((source.to_string(), reason.to_string())).or_insert((now, 0, 0));
        if now.duration_since(*start) >= Self::WINDOW {
            (*start, *logged) = (now, 0);
        }
        if *logged < Self::FIRST {
            *logged += 1;
            Some(std::mem::take(quiet))
        } else {
            *quiet += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_a_minute_then_the_count() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let got: Vec<_> = (0..3000).map(|_| t.allow("plaza-3/nb-01", "payload_syntax", now)).collect();
        assert_eq!(got.iter().filter(|g| g.is_some()).count(), 3);
        assert_eq!(t.allow("plaza-3/nb-02", "payload_syntax", now), Some(0), "another device");
        assert_eq!(t.allow("plaza-3/nb-01", "too_large", now), Some(0), "another reason");
        assert_eq!(t.allow("plaza-3/nb-01", "payload_syntax", now + Duration::from_secs(61)), Some(2997));
    }

    #[test]
    fn control_characters_are_escaped_and_length_capped() {
        assert_eq!(escape("a\nb\u{1b}[31m", 64), "a\\nb\\u{1b}[31m");
        assert_eq!(escape("王丽", 64), "王丽");
        assert_eq!(escape("abcdef", 3), "abc…");
        assert!(!escape("x\r\ny\u{7f}", 64).chars().any(char::is_control));
    }
}
