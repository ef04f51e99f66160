//! A refused write narrowed to the points the server refuses.
//!
//! Why: InfluxDB answers 400 for a whole request when one line in it is bad (a timestamp out
//! of range, a field whose type conflicts with the stored one), and 413 when the request is too
//! large. Dropping the batch would drop every other device's readings with it. Points are
//! checked before they are written ([`super::pending`]), so a refusal is rare; when it happens
//! the batch is halved until each refused part is a single line, and everything else is
//! written: about 2·log2(n) requests for one bad line among n.
//!
//! A retryable failure half way through fails the whole batch (it is spilled and sent again);
//! the halves already written are then written twice, which the server absorbs (a point with
//! the same series and time overwrites itself).

use super::writer::{WriteError, Writer};
use bytes::Bytes;

/// A line the server refused, with its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The line (without its newline).
    pub line: Bytes,
    /// What the server said.
    pub error: String,
}

/// Writes `body` (newline-separated lines); `Ok` with the lines the server refused, `Err` when
/// a write must be retried.
pub async fn write<W: Writer>(w: &W, body: Bytes) -> Result<Vec<Refused>, WriteError> {
    let mut refused = Vec::new();
    let mut todo = vec![body];
    while let Some(part) = todo.pop() {
        match w.write(part.clone()).await {
            Ok(()) => {}
            Err(WriteError::Retry(e)) => return Err(WriteError::Retry(e)),
            Err(WriteError::Rejected(error)) => match split(&part) {
                Some((first, second)) => {
                    // Popped first half first: the server still sees lines in order.
                    todo.push(second);
                    todo.push(first);
                }
                None => {
                    let line = part.slice(..part.iter().rposition(|&b| b != b'\n').map_or(0, |i| i + 1));
                    refused.push(Refused { line, error });
                }
            },
        }
    }
    Ok(refused)
}

/// Splits at the line boundary nearest the middle; `None` for a single line.
fn split(body: &Bytes) -> Option<(Bytes, Bytes)> {
    let trimmed = body.iter().rposition(|&b| b != b'\n')? + 1;
    let mid = trimmed / 2;
    let after = body[mid..trimmed].iter().position(|&b| b == b'\n').map(|i| mid + i);
    let before = body[..mid].iter().rposition(|&b| b == b'\n');
    let cut = match (before, after) {
        (Some(b), Some(a)) => {
            if mid - b <= a - mid {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some((body.slice(..=cut), body.slice(cut + 1..)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers as InfluxDB v2 does: a request with any unparsable line is refused whole (400);
    /// otherwise every line is stored.
    #[derive(Default)]
    struct Strict {
        stored: Mutex<Vec<String>>,
        requests: Mutex<u32>,
        fail_after: Option<u32>,
    }

    impl Writer for Strict {
        async fn write(&self, body: Bytes) -> Result<(), WriteError> {
            let n = {
                let mut r = self.requests.lock().unwrap();
                *r += 1;
                *r
            };
            if self.fail_after.is_some_and(|f| n > f) {
                return Err(WriteError::Retry("HTTP 503".into()));
            }
            let text = std::str::from_utf8(&body).map_err(|e| WriteError::Rejected(e.to_string()))?;
            let lines: Vec<&str> = text.lines().collect();
            use gridsentry_sensors::line_protocol_read::{parse, PointError, Precision};
            if let Some((n, Err(e))) =
                parse(text, Precision::Ms).find(|(_, r)| matches!(r, Err(PointError::Syntax(_))))
            {
                return Err(WriteError::Rejected(format!("HTTP 400: line {n}: {e:?}")));
            }
            self.stored.lock().unwrap().extend(lines.iter().map(|l| l.to_string()));
            Ok(())
        }
    }

    fn body(n: usize, bad: &[usize]) -> (Bytes, Vec<String>) {
        let lines: Vec<String> = (0..n)
            .map(|i| match bad.contains(&i) {
                true => format!("noise,site=s laeq_db=\"open {i}"),
                false => format!("noise,site=s laeq_db={i} {}", 1_764_072_000_000u64 + i as u64),
            })
            .collect();
        (Bytes::from(lines.join("\n") + "\n"), lines)
    }

    #[tokio::test]
    async fn one_bad_line_costs_only_itself() {
        let (b, lines) = body(1000, &[613]);
        let w = Strict::default();
        let refused = write(&w, b).await.unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].line, lines[613].as_bytes());
        assert!(refused[0].error.contains("400"));
        let good: Vec<String> =
            lines.iter().enumerate().filter(|(i, _)| *i != 613).map(|(_, l)| l.clone()).collect();
        assert_eq!(*w.stored.lock().unwrap(), good, "every other line stored once, in order");
        assert!(*w.requests.lock().unwrap() <= 2 * 10 + 1, "about 2·log2(n) requests");
    }

    #[tokio::test]
    async fn several_bad_lines_and_a_clean_batch() {
        let (b, lines) = body(37, &[0, 5, 6, 36]);
        let w = Strict::default();
        let refused: Vec<Bytes> = write(&w, b).await.unwrap().into_iter().map(|r| r.line).collect();
        assert_eq!(refused, [0, 5, 6, 36].map(|i| Bytes::from(lines[i].clone())));
        assert_eq!(w.stored.lock().unwrap().len(), 33);
        let (b, _) = body(10, &[]);
        let w = Strict::default();
        assert!(write(&w, b).await.unwrap().is_empty());
        assert_eq!(*w.requests.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_retryable_failure_while_narrowing_fails_the_batch() {
        let (b, _) = body(64, &[3]);
        let w = Strict { fail_after: Some(2), ..Strict::default() };
        assert!(matches!(write(&w, b).await, Err(WriteError::Retry(_))));
    }

    #[test]
    fn split_keeps_whole_lines() {
        assert_eq!(split(&Bytes::from("a\n")), None);
        assert_eq!(split(&Bytes::from("a")), None);
        let (x, y) = split(&Bytes::from("aa\nbb\ncc\n")).unwrap();
        assert_eq!((&x[..], &y[..]), (&b"aa\nbb\n"[..], &b"cc\n"[..]));
        let (x, y) = split(&Bytes::from("a\nbbbbbbb\n")).unwrap();
        assert_eq!((&x[..], &y[..]), (&b"a\n"[..], &b"bbbbbbb\n"[..]));
    }
}
