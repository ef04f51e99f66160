//! The flip workload of the load and fault tests (`tests/tests/load.rs`, `faults.rs`): 100
//! noise boxes of site `plaza-9`, each of whose readings raises or clears the plaza rule in a
//! known pattern, so that the order journal counts exactly what was applied; and the daemon
//! binary's set-up around it.

use crate::loadgen::Messages;
use crate::{config, free_port, Hooks, Mosquitto};
use gridsentry_sensors::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Event time of reading 0.
pub const T0: u64 = 1_764_072_000_000;
/// Devices of the workload.
pub const DEVICES: u64 = 100;
/// Reading s of a device is 75 dB(A) when s % FLIP == 0 (raise) and 60 otherwise (the next one
/// clears): two transitions per FLIP readings of a device.
pub const FLIP: u64 = 50;

/// The plaza rule (raise above 70, clear below 65, at once).
pub const RULE: &str = r#"
[[rule]]
id = "plaza-noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;

/// Message i: device i % DEVICES, its reading number i / DEVICES.
pub fn messages() -> Messages {
    Arc::new(|i| {
        let (dev, seq) = (i % DEVICES, i / DEVICES);
        let db = if seq % FLIP == 0 { 75.0 } else { 60.0 };
        let header = Header {
            site: Id::new("plaza-9").unwrap(),
            device: Id::new(&format!("nb-{dev}")).unwrap(),
            boot_id: 3,
            seq: seq as u32,
            time: Timestamp::Utc(T0 + seq * 1000),
            historical: false,
        };
        let reading = Reading { header, body: crate::noise(db) };
        (format!("gs/v1/plaza-9/nb-{dev}/noise"), codec::encode_vec(Format::Json, &reading).unwrap())
    })
}

/// Transitions that `n` messages cause (each device's raises and the clears that follow them).
pub fn transitions(n: u64) -> u64 {
    (0..DEVICES)
        .map(|d| {
            let readings = n / DEVICES + u64::from(d < n % DEVICES);
            let raises = readings.div_ceil(FLIP);
            let clears = readings / FLIP + u64::from(readings % FLIP > 1);
            raises + clears.min(raises)
        })
        .sum()
}

/// A daemon's directory, config, log and API port.
pub struct Setup {
    /// Its directory (data, secrets).
    pub dir: tempfile::TempDir,
    /// Its config file.
    pub cfg: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    /// Its API port.
    pub http: u16,
}

/// A config for `broker` and `hooks` with the rule, `extra_daemon` added to `[daemon]`.
pub fn setup(broker: &Mosquitto, hooks: &Hooks, extra_daemon: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let text = config(dir.path(), broker.port, http, &hooks.url, RULE)
        .replace("[daemon]\n", &format!("[daemon]\n{extra_daemon}\n"));
    let cfg = dir.path().join("gridsentry.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    Setup { dir, cfg, log, http }
}

/// The order database in `dir`.
pub fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("data/orders.db")).unwrap()
}

/// A count query's answer.
pub fn count(db: &rusqlite::Connection, sql: &str) -> u64 {
    db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(-1) as u64
}

/// Waits until `cond` holds (polling), failing with the daemon's log after `secs`.
pub async fn until(what: &str, log: &Path, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {secs} s; daemon log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Readings applied (all streams), from the daemon's `/metrics`.
pub async fn applied(http: u16) -> u64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await else { return 0 };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("gridsentry_readings_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Reading `seq` of device `d` of site `plaza-8`: 75 dB(A) on even, 60 on odd numbers.
pub fn flip(d: u32, seq: u32) -> (String, Vec<u8>) {
    let header = Header {
        site: Id::new("plaza-8").unwrap(),
        device: Id::new(&format!("nb-{d}")).unwrap(),
        boot_id: 5,
        seq,
        time: Timestamp::Utc(T0 + u64::from(seq) * 1000),
        historical: false,
    };
    let db = if seq.is_multiple_of(2) { 75.0 } else { 60.0 };
    let reading = Reading { header, body: crate::noise(db) };
    (format!("gs/v1/plaza-8/nb-{d}/noise"), codec::encode_vec(Format::Json, &reading).unwrap())
}
