//! The gridsentry edge daemon. Only the foundation exists so far: the daemon spine (MQTT ingest,
//! rules, work orders, webhooks, the full `gridsentry demo`) is the next issue. Until then this
//! binary shows the wire contract (`demo`) and decodes payloads so it can be tried by hand:
//!
//! ```text
//! mosquitto_sub -t 'gs/v1/#' -v | gridsentry decode
//! ```

mod demo;

use gridsentry_sensors::{codec, Topic};
use std::io::BufRead;
use std::process::ExitCode;

const USAGE: &str = "usage: gridsentry demo     (sample readings: topic, payloads, InfluxDB line)
       gridsentry decode   (reads `TOPIC PAYLOAD` lines, as `mosquitto_sub -v` prints)
       gridsentry --version
The daemon itself (run, demo, check) is not built yet.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") => {
            println!("gridsentry {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("decode") => decode_lines(),
        Some("demo") => match demo::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("demo failed: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Decodes `TOPIC PAYLOAD` lines from stdin; prints the reading or the reason it was rejected.
fn decode_lines() -> ExitCode {
    let mut bad = 0u64;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (topic, payload) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let result = Topic::parse(topic)
            .map_err(|e| format!("topic: {e}"))
            .and_then(|t| codec::decode_on(&t, payload.as_bytes()).map_err(|e| format!("payload: {e}")));
        match result {
            Ok(reading) => println!("{topic} {reading:?}"),
            Err(why) => {
                bad += 1;
                println!("{topic} REJECTED {why}");
            }
        }
    }
    eprintln!("{bad} rejected");
    ExitCode::SUCCESS
}
