//! A GNSS receiver on a serial line (socat pseudo-terminal pair): NMEA GGA fixes become
//! displacement readings and orders; line noise is counted by reason and dropped; a receiver
//! that goes quiet is a no-data order and comes back by itself.

use gridsentry_sensors::nmea::{gga_line, with_checksum, Fix, Origin, Quality};
use gridsentry_tests::daemon::Daemon;
use gridsentry_tests::modbus::Pty;
use gridsentry_tests::{Hooks, Mosquitto};
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::watch;

const ORIGIN: Origin = Origin { lat_deg: 30.512_345_678, lon_deg: 104.081_234_567, alt_m: 812.0 };

fn config(path: &std::path::Path) -> String {
    format!(
        r#"
[[rule]]
id = "slope-disp"
colour = "red"
condition = {{ type = "threshold", stream = "deform", field = "disp_mm", above = 24.9, clear = 15.0 }}

[[rule]]
id = "station-silent"
colour = "blue"
condition = {{ type = "no_data", stream = "deform", silent_s = 600 }}

[[serial]]
site = "slope-k12"
device = "gnss-02"
path = "{}"
origin = {{ lat_deg = {}, lon_deg = {}, alt_m = {} }}
average_s = 1
silent_s = 2
"#,
        path.display(),
        ORIGIN.lat_deg,
        ORIGIN.lon_deg,
        ORIGIN.alt_m
    )
}

/// A fix `north_mm` north of the origin.
fn fix(north_mm: f64, quality: Quality) -> Fix {
    let per_mm = 1.0 / ORIGIN.enu_mm(&Fix { lat_deg: ORIGIN.lat_deg + 1e-6, ..base() })[1];
    Fix { lat_deg: ORIGIN.lat_deg + north_mm * per_mm * 1e-6, quality, ..base() }
}

fn base() -> Fix {
    Fix {
        lat_deg: ORIGIN.lat_deg,
        lon_deg: ORIGIN.lon_deg,
        alt_m: ORIGIN.alt_m,
        quality: Quality::Rtk,
        satellites: 21,
    }
}

/// The receiver: prints what `what` says, ten epochs a second, with noise between good fixes,
/// until `what` is `None`.
fn receiver(path: std::path::PathBuf, what: watch::Receiver<Option<f64>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut port = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut t = 0.0;
        while let Some(north) = *what.borrow() {
            t += 0.1;
            let mut out = gga_line(t, &fix(north, Quality::Rtk)).into_bytes();
            out.extend(gga_line(t, &fix(900.0, Quality::FloatRtk)).into_bytes()); // drifts: dropped
            out.extend(
                with_checksum("$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00")
                    .into_bytes(),
            );
            let mut bad = gga_line(t, &fix(north + 50.0, Quality::Rtk)).into_bytes();
            bad[20] ^= 0x01; // one flipped bit on the line
            out.extend(bad);
            out.extend(b"\xff\xfe\x00 line noise \x80\r\n");
            out.extend(vec![b'$'; 300]);
            out.push(b'\n');
            port.write_all(&out).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    })
}

fn errors(d: &Daemon, reason: &str) -> u64 {
    d.running().metrics.field_errors.lock().unwrap().get(reason).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gnss_fixes_become_readings_and_orders_and_line_noise_is_counted() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let pty = Pty::pair();
    let (set, what) = watch::channel(Some(5.0));
    let rx = receiver(pty.device.clone(), what);
    let mut d = Daemon::start(broker.port, &hooks, &config(&pty.daemon)).await;
    d.wait(|r| r.metrics.readings[2].load(Relaxed) >= 2).await;
    assert!(d.drain_changes().is_empty(), "5 mm raises nothing");
    for reason in ["nmea_checksum", "nmea_malformed", "serial_overlong", "nmea_low_quality"] {
        assert!(errors(&d, reason) >= 1, "{reason} not counted");
    }

    // The antenna moves 25 mm north: the first window wholly after the move raises the red
    // order (the limit is set just under 25 mm, so the mean must be right to a tenth).
    set.send_replace(Some(25.0));
    let red = d.next_change().await;
    assert_eq!((red.rule.as_str(), red.subject.as_str()), ("slope-disp", "slope-k12/gnss-02"));
    assert!(red.summary.contains("(25.0)"), "{}", red.summary);

    // The receiver goes quiet: offline, a no-data order.
    set.send_replace(None);
    rx.join().unwrap();
    let silent = d.next_change().await;
    assert_eq!(
        (silent.rule.as_str(), silent.colour.as_str(), silent.state.as_str()),
        ("station-silent", "blue", "raised")
    );

    // It speaks again: the no-data order resolves by itself.
    let (set, what) = watch::channel(Some(25.0));
    let rx = receiver(pty.device.clone(), what);
    let back = d.next_change().await;
    assert_eq!((back.rule.as_str(), back.state.as_str()), ("station-silent", "resolved"));
    set.send_replace(None);
    rx.join().unwrap();
    d.stop().await;
}
