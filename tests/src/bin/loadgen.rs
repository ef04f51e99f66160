//! The benchmark's load generator on its own, for trying the daemon by hand or profiling it:
//! noise readings from 1000 devices of site `bench`, QoS 1, raw MQTT over TCP, pipelined.
//!
//! usage: loadgen PORT COUNT [--rate PER_S] [--conns N] [--from I] [--raise]
//! (`--raise`: 1 % of readings pass 70 dB(A), each cleared by the device's next reading)

use gridsentry_sensors::*;
use gridsentry_tests::loadgen;
use std::sync::Arc;

fn arg<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)?.parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: loadgen PORT COUNT [--rate PER_S] [--conns N] [--from I] [--raise]";
    let (Some(port), Some(n)) =
        (args.get(1).and_then(|a| a.parse().ok()), args.get(2).and_then(|a| a.parse().ok()))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let raise = args.iter().any(|a| a == "--raise");
    let messages: loadgen::Messages = Arc::new(move |i: u64| {
        let (dev, seq) = (i % 1000, i / 1000);
        let db = if raise && (i + seq).is_multiple_of(100) { 75.0 } else { 55.0 };
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let header = Header {
            site: Id::new("bench").unwrap(),
            device: Id::new(&format!("d{dev}")).unwrap(),
            boot_id: 1,
            seq: seq as u32,
            time: Timestamp::Utc(now),
            historical: false,
        };
        let body = Body::Noise(NoiseReport::levels(db, db + 5.0));
        (
            format!("gs/v1/bench/d{dev}/noise"),
            codec::encode_vec(Format::Json, &Reading { header, body }).unwrap(),
        )
    });
    let conns = arg(&args, "--conns").unwrap_or(4);
    let took =
        loadgen::publish(port, conns, messages, arg(&args, "--from").unwrap_or(0), n, arg(&args, "--rate"))
            .await;
    println!("published {n} in {:.3} s ({:.0}/s)", took.as_secs_f64(), n as f64 / took.as_secs_f64());
}
