//! Modbus field devices against real tokio-modbus servers: TCP, and RTU over a socat
//! pseudo-terminal pair. Readings become orders; a dead unit becomes a no-data order without
//! stalling its bus; late replies, exceptions and garbage are counted and recovered from.

use gridsentry_tests::daemon::Daemon;
use gridsentry_tests::modbus::{serve_garbage, Behaviour, Pty, Station};
use gridsentry_tests::{Hooks, Mosquitto};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio_modbus::ExceptionCode;

const DISP_RULE: &str = r#"
[[rule]]
id = "slope-disp"
colour = "red"
condition = { type = "threshold", stream = "deform", field = "disp_mm", above = 20.0, clear = 15.0 }

[[rule]]
id = "slope-tilt"
colour = "yellow"
condition = { type = "threshold", stream = "deform", field = "tilt_x_deg", below = -1.0, clear = 0.0 }

[[rule]]
id = "station-silent"
colour = "blue"
condition = { type = "no_data", stream = "deform", silent_s = 600 }
"#;

fn device(device: &str, link: &str, unit: u8, kind: &str, extra: &str) -> String {
    format!(
        "\n[[modbus]]\nsite = \"slope-k12\"\ndevice = \"{device}\"\nkind = \"{kind}\"\n{link}\nunit = {unit}\n\
         poll_ms = 50\ntimeout_ms = 150\nretries = 1\nbackoff_max_ms = 400\n{extra}\n"
    )
}

fn errors(d: &Daemon, reason: &str) -> u64 {
    d.running().metrics.field_errors.lock().unwrap().get(reason).copied().unwrap_or(0)
}

fn deform_readings(d: &Daemon) -> u64 {
    d.running().metrics.readings[2].load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_registers_become_readings_and_orders() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let station = Station::default();
    station.holding(1, 0, &[1250]); // 12.50 mm
    station.input(2, 0, &[(-150i16) as u16, 220, 185]); // X -1.50 deg, Y 2.20 deg, 18.5 C
    let addr = station.serve_tcp().await;
    let tcp = format!("tcp = \"{addr}\"");
    let cfg = format!(
        "{DISP_RULE}{}{}",
        device("ext-01", &tcp, 1, "wire_extensometer", ""),
        device("incl-01", &tcp, 2, "inclinometer", "")
    );
    let mut d = Daemon::start(broker.port, &hooks, &cfg).await;
    let tilt = d.next_change().await;
    assert_eq!((tilt.rule.as_str(), tilt.subject.as_str()), ("slope-tilt", "slope-k12/incl-01"));
    assert!(tilt.summary.contains("-1.5"), "{}", tilt.summary);
    let before = deform_readings(&d);
    d.wait(|r| r.metrics.readings[2].load(Relaxed) >= before + 6).await;

    station.holding(1, 0, &[2537]); // 25.37 mm: over the red limit
    let red = d.next_change().await;
    assert_eq!((red.rule.as_str(), red.colour.as_str(), red.state.as_str()), ("slope-disp", "red", "raised"));
    assert!(red.summary.contains("(25.4)"), "{}", red.summary);
    assert_eq!(d.running().metrics.field_errors.lock().unwrap().len(), 0, "no failures on a healthy bus");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtu_bus_a_dead_unit_is_a_no_data_order_and_does_not_stall_the_others() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let pty = Pty::pair();
    let station = Station::default();
    station.holding(1, 0, &[1000]);
    station.holding(3, 0, &[500]);
    station.behave(3, Behaviour::Silent);
    station.serve_rtu(&pty);
    let rtu = format!("rtu = \"{}\"\nbaud = 9600", pty.daemon.display());
    let cfg = format!(
        "{DISP_RULE}{}{}",
        device("ext-01", &rtu, 1, "wire_extensometer", "gap_ms = 5"),
        device("ext-03", &rtu, 3, "wire_extensometer", "gap_ms = 5")
    );
    let mut d = Daemon::start(broker.port, &hooks, &cfg).await;
    let silent = d.next_change().await;
    assert_eq!((silent.rule.as_str(), silent.subject.as_str()), ("station-silent", "slope-k12/ext-03"));
    assert_eq!((silent.colour.as_str(), silent.state.as_str()), ("blue", "raised"));
    // The live unit keeps being polled while the dead one times out.
    let before = deform_readings(&d);
    d.wait(|r| r.metrics.readings[2].load(Relaxed) >= before + 10).await;
    assert!(errors(&d, "modbus_timeout") >= 2);
    assert_eq!(errors(&d, "modbus_garbled"), 0, "a late reply was never read as the next answer");

    station.behave(3, Behaviour::Answer);
    let back = d.next_change().await;
    assert_eq!(
        (back.rule.as_str(), back.subject.as_str(), back.state.as_str()),
        ("station-silent", "slope-k12/ext-03", "resolved")
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_replies_exceptions_and_garbage_are_counted_and_recovered() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let station = Station::default();
    station.holding(1, 0, &[2100]); // 21 mm: raises the red order once read correctly
    station.behave(1, Behaviour::Late { n: 2, delay: Duration::from_millis(400) });
    station.behave(2, Behaviour::Exception(ExceptionCode::IllegalDataAddress));
    let addr = station.serve_tcp().await;
    let garbage = serve_garbage().await;
    let cfg = format!(
        "{DISP_RULE}{}{}{}",
        device("ext-01", &format!("tcp = \"{addr}\""), 1, "wire_extensometer", ""),
        device("ext-02", &format!("tcp = \"{addr}\""), 2, "wire_extensometer", ""),
        device("ext-09", &format!("tcp = \"{garbage}\""), 1, "wire_extensometer", "")
    );
    let d = Daemon::start(broker.port, &hooks, &cfg).await;
    d.wait(|_| errors(&d, "modbus_timeout") >= 2).await;
    d.wait(|_| errors(&d, "modbus_exception_illegal_data_address") >= 2).await;
    d.wait(|_| errors(&d, "modbus_garbled") + errors(&d, "modbus_io") >= 2).await;
    // After the late replies the connection was re-opened: the value read is the right one.
    let mut red = None;
    let mut orders = serde_json::Value::Null;
    for _ in 0..200 {
        (_, orders) = d.get("/api/v1/orders?open=true", Some(gridsentry_tests::TOKEN)).await;
        red = orders["orders"].as_array().unwrap().iter().find(|o| o["rule"] == "slope-disp").cloned();
        if red.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let red = red.unwrap_or_else(|| panic!("no red order: {orders}"));
    assert_eq!(red["device"], "ext-01");
    assert!(red["summary"].as_str().unwrap().contains("(21.0)"), "{red}");
    // Devices that never gave a reading are offline: no-data orders, one each.
    let (_, all) = d.get("/api/v1/orders?open=true", Some(gridsentry_tests::TOKEN)).await;
    let silent: Vec<&str> = all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["rule"] == "station-silent")
        .map(|o| o["device"].as_str().unwrap())
        .collect();
    assert!(silent.contains(&"ext-02") && silent.contains(&"ext-09"), "{all}");
    d.stop().await;
}
