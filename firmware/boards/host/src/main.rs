//! The plaza noise box on a PC. Wiring: none — the "microphone" is a WAV file (48 kHz integer
//! PCM) or a named synthetic scenario, the "radio" is a TCP connection to a real MQTT broker.
//! Everything between is the firmware core the RP2040 and ESP32-C3 boards run: the fixed-point
//! meter (INMP441 preset), the local alarm, the outbox and the MQTT session.
//!
//! ```text
//! gridsentry-board-host --broker 127.0.0.1:1883 --site plaza-3 --device nb-01 \
//!     (--scenario square-dance | --wav FILE) [--realtime] [--start-ms MS] [--boot-id N]
//! gridsentry-board-host --offline (--scenario NAME | --wav FILE)
//! ```
//! `--offline` sends nothing: it prints each report as the radio-less RP2040 build logs it
//! (`report seq=N laeq_cdb=X lafmax_cdb=Y`), so `scripts/firmware-sim` can compare the emulated
//! chip with the host on the same samples.
//! One noise reading per second of audio (device time = `--start-ms` + seconds, default now).
//! Without `--realtime` the audio is processed as fast as it can be. At the end it waits (up to
//! 30 s) until the broker has acknowledged every reading, then disconnects.

mod net;
mod signal;
mod wav;

use gridsentry_firmware_core::alarm::AlarmSettings;
use gridsentry_firmware_core::identity::Identity;
use gridsentry_firmware_core::noise::{FixedChain, Meter, Mic, NoiseRecord};
use gridsentry_firmware_core::outbox::Outbox;
use gridsentry_sensors::{Id, Timestamp};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    /// `None`: `--offline`.
    broker: Option<String>,
    site: Id,
    device: Id,
    source: signal::Source,
    realtime: bool,
    start_ms: u64,
    boot_id: u32,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut broker, mut site, mut device, mut source) = (None, None, None, None);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
    let (mut realtime, mut start_ms, mut boot_id) = (false, now.as_millis() as u64, now.subsec_nanos());
    let mut offline = false;
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--broker" => broker = Some(value()?),
            "--site" => site = Some(Id::new(&value()?).map_err(|e| format!("--site: {e}"))?),
            "--device" => device = Some(Id::new(&value()?).map_err(|e| format!("--device: {e}"))?),
            "--scenario" => source = Some(signal::Source::scenario(&value()?)?),
            "--wav" => source = Some(signal::Source::wav(&value()?)?),
            "--realtime" => realtime = true,
            "--offline" => offline = true,
            "--start-ms" => start_ms = value()?.parse().map_err(|e| format!("--start-ms: {e}"))?,
            "--boot-id" => boot_id = value()?.parse().map_err(|e| format!("--boot-id: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if offline {
        let id = |v: Option<Id>, d: &str| v.map_or_else(|| Id::new(d).map_err(|e| e.to_string()), Ok);
        let (site, device) = (id(site, "offline")?, id(device, "host")?);
        return Ok(Args {
            broker: None,
            site,
            device,
            source: source.ok_or("--scenario NAME or --wav FILE is required")?,
            realtime,
            start_ms,
            boot_id,
        });
    }
    Ok(Args {
        broker: Some(broker.ok_or("--broker HOST:PORT is required")?),
        site: site.ok_or("--site is required")?,
        device: device.ok_or("--device is required")?,
        source: source.ok_or("--scenario NAME or --wav FILE is required")?,
        realtime,
        start_ms,
        boot_id,
    })
}

/// `--offline`: the reports as the radio-less RP2040 build logs them, nothing sent.
fn offline(a: &mut Args, meter: &mut Meter<FixedChain>) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let mut seq = 0u32;
    while let Some(samples) = a.source.next_second() {
        meter.push(&samples);
        let record = NoiseRecord::new(Timestamp::Utc(a.start_ms + u64::from(seq) * 1000), &meter.report());
        let [laeq, lafmax, ..] = record.levels_cdb();
        // A closed pipe (`| head`) ends the run quietly.
        if writeln!(out, "report seq={seq} laeq_cdb={laeq} lafmax_cdb={lafmax}").is_err() {
            return ExitCode::SUCCESS;
        }
        seq += 1;
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let mut a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gridsentry-board-host: {e}");
            return ExitCode::from(2);
        }
    };
    let mut meter = Meter::<FixedChain>::new(&Mic::INMP441, 0.0, AlarmSettings::default());
    let identity = Identity::new(a.site.clone(), a.device.clone(), a.boot_id);
    // One hour of 1 s reports, stored compactly as on the chips.
    let mut outbox: Outbox<NoiseRecord, 3600> = Outbox::new();
    let Some(broker) = a.broker.clone() else {
        return offline(&mut a, &mut meter);
    };
    let mut net = net::Net::new(&broker, &identity);
    let started = Instant::now();
    let mut second = 0u64;
    while let Some(samples) = a.source.next_second() {
        meter.push(&samples);
        let report = meter.report();
        let record = NoiseRecord::new(Timestamp::Utc(a.start_ms + second * 1000), &report);
        eprintln!(
            "t={second:>4}s LAeq {:5.1} dB(A) LAFmax {:5.1} alarm {}",
            report.laeq_db,
            report.lafmax_db,
            if meter.alarm() { "ON" } else { "off" }
        );
        // What is still unsent a report interval later goes out as backfill.
        outbox.interval_passed();
        outbox.push(record);
        second += 1;
        if a.realtime {
            let due = started + Duration::from_secs(second);
            while Instant::now() < due {
                net.step(&mut outbox);
            }
        } else {
            net.step(&mut outbox);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !outbox.is_empty() && Instant::now() < deadline {
        net.step(&mut outbox);
    }
    net.disconnect();
    if outbox.is_empty() {
        eprintln!("gridsentry-board-host: {second} readings sent and acknowledged");
        ExitCode::SUCCESS
    } else {
        eprintln!("gridsentry-board-host: {} of {second} readings not acknowledged", outbox.len());
        ExitCode::FAILURE
    }
}
