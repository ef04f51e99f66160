//! The benchmark's webhook receiver in a process of its own (`e2e-bench` starts it unless given
//! `--in-process-receiver`), as a real receiver is: its HTTP work and signature checks are not
//! scheduled inside the bench's own runtime. Prints `url URL` once listening, then per request
//! `hook SIGNED EVENT EVIDENCE_TS RECEIVED_MS` (1/0, `raised`/…, ms since the epoch; 0 where
//! absent), in batches every 10 ms.
//!
//! usage: hook-receiver

use gridsentry_tests::Hooks;
use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hooks = Hooks::start().await;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "url {}", hooks.url).unwrap();
    out.flush().unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        for h in hooks.take() {
            let event = h.body["event"].as_str().unwrap_or("-");
            let ts = h.body["evidence"]["ts"].as_u64().unwrap_or(0);
            if writeln!(out, "hook {} {event} {ts} {}", u8::from(h.signed), h.received_ms).is_err() {
                return; // the bench is gone
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}
