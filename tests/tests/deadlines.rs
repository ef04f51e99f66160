//! A slope order's deadlines run from its colour: an order raised yellow that the rule moves to
//! red long after gets the red deadlines in full from the moment it turned red — it is not overdue
//! on arrival. Against real mosquitto, the daemon and a webhook receiver; a live extensometer
//! whose creep speeds up (readings stamped as they are sent, time compressed as in the demo).

use gridsentry::clock::now_ms;
use gridsentry::rules::Colour;
use gridsentry_sensors::{Body, ChannelKind, DeformReport, Timestamp};
use gridsentry_tests::daemon::{Daemon, Device};
use gridsentry_tests::{Hook, Hooks, Mosquitto};
use std::time::Duration;

/// Steady creep is 0.1 mm/s; velocities are smoothed over 1 s. Yellow's dispatch deadline is far
/// off, red's is 4 s.
const RULES: &str = r#"
[[rule]]
id = "slope"
colour = "yellow"
condition = { type = "tangent_angle", field = "disp_mm", creep_mm_per_day = 8640.0, velocity_window_s = 1 }

[sla.yellow]
dispatch_s = 600
on_site_s = 1200
reinforce_s = 1800
remind_s = 600

[sla.red]
dispatch_s = 4
on_site_s = 60
reinforce_s = 120
remind_s = 60
"#;

/// Creep velocities, mm/s: 68° (yellow: 50–80°) and 87° (red: above 85°).
const YELLOW_MM_S: f64 = 0.25;
const RED_MM_S: f64 = 2.0;
/// How long the order stays yellow before the slope speeds up: longer than red's dispatch
/// deadline, so deadlines counted from the yellow raise would be missed the moment it turns red.
const YELLOW_FOR_MS: u64 = 7_000;

fn deform(mm: f64) -> Body {
    let mut d = DeformReport::default();
    d.push(ChannelKind::DisplacementMm, mm).unwrap();
    Body::Deform(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slope_order_that_turns_red_late_gets_the_red_deadlines_from_then() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, RULES).await;
    let dev = Device::connect(broker.port, "slope-7", "ext-1", false).await;

    // The extensometer reports every 100 ms; displacement integrates the current velocity.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut mm, mut last, mut v) = (100.0, now_ms(), YELLOW_MM_S);
    let (mut yellow, mut red) = (None, None);
    for seq in 0..400u32 {
        tick.tick().await;
        let now = now_ms();
        mm += v * (now - last) as f64 / 1000.0;
        last = now;
        dev.send_as(1, seq, Timestamp::Utc(now), deform(mm)).await;
        for c in d.drain_changes() {
            match c.colour {
                // (Later yellow changes restate the summary as the forecast moves.)
                Colour::Yellow if yellow.is_none() => yellow = Some((c.order_id, now)),
                Colour::Red => red = Some(c),
                _ => {}
            }
        }
        if yellow.is_some_and(|(_, at)| now >= at + YELLOW_FOR_MS) {
            v = RED_MM_S;
        }
        if red.is_some() {
            break;
        }
    }
    let (id, _) = yellow.expect("the order was raised yellow");
    let red = red.expect("the order turned red");
    assert_eq!(red.order_id, id, "the same order climbs to red");

    let (status, body) = d.get(&format!("/api/v1/orders/{id}"), Some(gridsentry_tests::TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let order = &body["order"];
    let raised = body["events"][0]["at_ms"].as_i64().unwrap();
    let turned = body["events"].as_array().unwrap().iter().find(|e| e["colour"] == "red").unwrap()["at_ms"]
        .as_i64()
        .unwrap();
    let from = order["deadlines_from_ms"].as_i64().unwrap();
    assert!(from - raised >= YELLOW_FOR_MS as i64, "deadlines restarted when red: {body}");
    assert!(from >= turned, "{body}");
    assert_eq!(order["due"]["next"], "dispatch", "{body}");
    assert_eq!(order["due"]["at_ms"].as_i64(), Some(from + 4_000), "red's 4 s dispatch deadline in full");
    assert_eq!(order["due"]["overdue"], serde_json::json!([]), "not overdue on turning red: {body}");

    // Nobody dispatches: the red dispatch deadline is missed 4 s after turning red, not before.
    let missed = |h: &Hook| h.body["summary"].as_str().is_some_and(|s| s.ends_with("deadline (4 s) missed"));
    let missed = hooks.wait_until(missed, Duration::from_secs(20)).await;
    assert_eq!(missed.body["event"], "escalated", "{:?}", missed.body);
    assert_eq!(missed.receiver, "duty", "the next tier hears of it");
    assert!(
        hooks
            .all()
            .iter()
            .all(|h| !h.body["summary"].as_str().unwrap_or("").contains("missed") || h.key == missed.key),
        "no other deadline missed: {:#?}",
        hooks.all()
    );
    assert!(
        missed.received_ms as i64 >= from + 4_000,
        "escalated {} ms early",
        from + 4_000 - missed.received_ms as i64
    );
    d.stop().await;
}
