//! The benchmark's webhook receiver in a process of its own (`e2e-bench` starts it unless given
//! `--in-process-receiver`), as a real receiver is: its HTTP work and signature checks are not
//! scheduled inside the bench's own runtime. Prints `url URL` once listening, then per request
//! [`Heard::line`] (`hook SIGNED RAISED EVIDENCE_TS RECEIVED_MS`), in batches every 10 ms.
//!
//! usage: hook-receiver

use gridsentry_tests::receiver::Heard;
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
            if writeln!(out, "{}", Heard::of(&h).line()).is_err() {
                return; // the bench is gone
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}
