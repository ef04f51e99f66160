//! The benchmark's webhook receiver, as the bench sees it: `hook-receiver` in a process of its
//! own (the default: a receiver is another program, scheduled apart from the bench), or a task
//! of the bench's own runtime (`--in-process-receiver`, the bench before 2026-12-06). Either way
//! each request comes out as a [`Heard`]; the process speaks [`Heard::line`] on its stdout.

use crate::{Hook, Hooks};
use std::io::BufRead;

/// One webhook request as the bench needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    /// The signature verified.
    pub signed: bool,
    /// Its event is `raised`.
    pub raised: bool,
    /// The evidence's timestamp (ms), 0 when absent.
    pub ts: u64,
    /// When it arrived (ms since the epoch).
    pub received_ms: u64,
}

impl Heard {
    /// What the bench needs of `h`.
    pub fn of(h: &Hook) -> Heard {
        Heard {
            signed: h.signed,
            raised: h.body["event"] == "raised",
            ts: h.body["evidence"]["ts"].as_u64().unwrap_or(0),
            received_ms: h.received_ms,
        }
    }

    /// `hook SIGNED RAISED TS RECEIVED_MS` (flags 1/0): one line of `hook-receiver`'s output.
    pub fn line(&self) -> String {
        format!("hook {} {} {} {}", u8::from(self.signed), u8::from(self.raised), self.ts, self.received_ms)
    }

    /// The inverse of [`Heard::line`]; `None` for any other line.
    pub fn parse(line: &str) -> Option<Heard> {
        let f: Vec<&str> = line.split(' ').collect();
        let ["hook", signed, raised, ts, received] = f[..] else { return None };
        Some(Heard {
            signed: signed == "1",
            raised: raised == "1",
            ts: ts.parse().ok()?,
            received_ms: received.parse().ok()?,
        })
    }
}

/// Where the webhooks go.
pub enum Receiver {
    /// A task of this process.
    Own(Hooks),
    /// `hook-receiver`, its URL and its output lines.
    Process { url: String, child: std::process::Child, lines: std::sync::mpsc::Receiver<String> },
}

impl Receiver {
    /// Starts one: in this process, or `hook-receiver` from the directory of the running binary.
    pub async fn start(in_process: bool) -> Receiver {
        if in_process {
            return Receiver::Own(Hooks::start().await);
        }
        let bin = std::env::current_exe().unwrap().with_file_name("hook-receiver");
        let mut child =
            std::process::Command::new(&bin).stdout(std::process::Stdio::piped()).spawn().unwrap_or_else(
                |e| panic!("{}: {e} (cargo build --release -p gridsentry-tests --bins)", bin.display()),
            );
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let url = first.trim().strip_prefix("url ").expect("hook-receiver's first line").to_string();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Receiver::Process { url, child, lines }
    }

    /// Its base URL (receivers post to `{url}/{name}`).
    pub fn url(&self) -> &str {
        match self {
            Receiver::Own(h) => &h.url,
            Receiver::Process { url, .. } => url,
        }
    }

    /// The requests heard since the last call.
    pub fn take(&self) -> Vec<Heard> {
        match self {
            Receiver::Own(h) => h.take().iter().map(Heard::of).collect(),
            Receiver::Process { lines, .. } => lines.try_iter().filter_map(|l| Heard::parse(&l)).collect(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Receiver::Process { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Heard;

    #[test]
    fn a_line_reads_back_as_what_was_heard() {
        let h = Heard { signed: true, raised: false, ts: 1_764_072_000_123, received_ms: 1_764_072_000_456 };
        assert_eq!(Heard::parse(&h.line()), Some(h));
        assert_eq!(Heard::parse("url http://127.0.0.1:1"), None);
        assert_eq!(Heard::parse("hook 1 1 x 2"), None);
    }
}
