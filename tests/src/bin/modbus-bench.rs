//! Modbus poll benchmark (run by `scripts/bench`): 100 wire extensometers polled over loopback
//! TCP (one connection each) from one simulated station (tokio-modbus server), every device
//! polled as fast as it answers. Prints `modbus_polls_per_s N` and `modbus_devices N`.
//!
//! usage: modbus-bench [--quick]

use gridsentry::config::ModbusDevice;
use gridsentry::metrics::Metrics;
use gridsentry_tests::modbus::Station;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICES: u8 = 100;

#[tokio::main]
async fn main() {
    let secs = if std::env::args().any(|a| a == "--quick") { 3 } else { 10 };
    let station = Station::default();
    for unit in 1..=DEVICES {
        station.holding(unit, 0, &[u16::from(unit) * 10]);
    }
    let addr = station.serve_tcp().await;
    let devices: Vec<ModbusDevice> = (1..=DEVICES)
        .map(|unit| ModbusDevice {
            site: "bench".into(),
            device: format!("ext-{unit}"),
            kind: "wire_extensometer".into(),
            tcp: Some(addr.clone()),
            rtu: None,
            baud: 9600,
            parity: "none".into(),
            unit,
            poll_ms: 1,
            timeout_ms: 1000,
            retries: 0,
            backoff_max_ms: 1000,
            gap_ms: 0,
        })
        .collect();
    let metrics = Arc::new(Metrics::default());
    let (tx, mut rx) = gridsentry::flow::channel(gridsentry::watchdog::Progress::new("pipeline"));
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let readings = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(batch) = rx.recv().await {
            n += batch.len() as u64;
        }
        n
    });
    let tasks = gridsentry::ingest::modbus::spawn(&devices, tx, metrics.clone(), shutdown);
    tokio::time::sleep(Duration::from_millis(500)).await; // connections up
    let (p0, t0) = (metrics.modbus_polls.load(Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let polls = metrics.modbus_polls.load(Relaxed) - p0;
    println!("modbus_devices {DEVICES}");
    println!("modbus_polls_per_s {:.0}", polls as f64 / t0.elapsed().as_secs_f64());
    let errors: u64 = metrics.field_errors.lock().unwrap().values().sum();
    println!("modbus_errors {errors}");
    for t in tasks {
        t.abort();
    }
    readings.abort();
}
