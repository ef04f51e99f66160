//! Incidents and inhibition: a street-wide outage (500 boxes and 100 wristband gateways offline
//! at once) is one incident and a handful of messages to a rate-limited robot, while a red
//! heart-rate drop raised in the middle of it goes out at once and on its own; a gateway
//! offline holds its band's order back and releases it when the gateway returns.

use gridsentry_sensors::{Contact, DeviceState, Id, Stream, Topic};
use gridsentry_tests::daemon::{count, hr, status_payload, Daemon, Device};
use gridsentry_tests::{Hooks, Mosquitto, TOKEN};
use rumqttc::QoS;
use std::collections::HashMap;
use std::time::Duration;

const BOXES: usize = 500;
const GATEWAYS: usize = 100;
/// The robot's limit: WeCom's and DingTalk's documented 20 a minute.
const LIMIT: usize = 20;

const RULES: &str = r#"
[[rule]]
id = "box-offline"
colour = "blue"
sites = ["plaza-*"]
condition = { type = "no_data", stream = "noise", silent_s = 3600 }

[[rule]]
id = "gateway-offline"
colour = "yellow"
sites = ["home*"]
condition = { type = "no_data", stream = "hr", silent_s = 3600 }

[[rule]]
id = "heart-rate-drop"
colour = "red"
condition = { type = "hr_drop", drop_pct = 30.0, window_s = 60 }

[[rule]]
id = "band-removed"
colour = "orange"
condition = { type = "band_removed", for_s = 10 }

[[site]]
id = "plaza-3"
name = "新华广场"
street = "新华街道"
lat = 29.56
lon = 106.57

[[site]]
id = "homes"
name = "新华小区"
street = "新华街道"
lat = 29.57
lon = 106.58
"#;

/// The outage's orders are one incident by street; its digests at most every 2 s.
const GROUP: &str = r#"
[[group]]
by = ["street"]
rules = ["box-offline", "gateway-offline"]
window_s = 60
digest_s = 2
mass_offline = 50
"#;

/// Publishes the last will of `site/device` (what the broker sends when its power is cut).
async fn offline(storm: &Device, site: &str, device: &str) {
    let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
    let topic = Topic::new(site.clone(), device.clone(), Stream::Status).to_string();
    let payload = status_payload(&site, &device, DeviceState::Offline);
    storm.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_street_wide_outage_is_one_incident_and_the_red_in_it_goes_at_once_alone() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let limited = |text: String| {
        text.replacen("max_attempts = 4\n", &format!("max_attempts = 4\nmax_per_minute = {LIMIT}\n"), 1)
    };
    let rules = format!("{RULES}{GROUP}");
    let d = Daemon::start_edited(broker.port, &hooks.url, &rules, limited, None).await;
    let gw = Device::connect(broker.port, "homes", "gw-red", false).await;
    for seq in 0..5 {
        gw.send(seq, hr("r1", 80, Contact::Detected)).await;
    }
    d.applied(5).await;
    let storm = Device::connect(broker.port, "plaza-3", "storm", false).await;
    let devices: Vec<(&str, String)> = (0..BOXES)
        .map(|b| ("plaza-3", format!("nb-{b}")))
        .chain((0..GATEWAYS).map(|g| ("homes", format!("gw-{g}"))))
        .collect();
    for (i, (site, device)) in devices.iter().enumerate() {
        if i == devices.len() / 2 {
            // In the middle of the outage, a resident's heart rate falls sharply.
            gw.send(5, hr("r1", 50, Contact::Detected)).await;
        }
        offline(&storm, site, device).await;
    }
    let orders = (BOXES + GATEWAYS + 1) as i64;
    let db = std::sync::Mutex::new(d.db());
    let delivered = "SELECT COUNT(*) FROM outbox WHERE receiver = 'grid' AND status = 'delivered'";
    d.wait(|_| count(&db.lock().unwrap(), delivered) == orders).await;
    let db = db.into_inner().unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), orders, "every order recorded");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox WHERE status <> 'delivered'"), 0);
    let red = count(&db, "SELECT id FROM orders WHERE colour = 'red'");

    let heard: Vec<_> = hooks.wait_for(1, Duration::from_secs(1)).await;
    let heard: Vec<_> = heard.into_iter().filter(|h| h.receiver == "grid").collect();
    let mut got: HashMap<i64, usize> = HashMap::new();
    let mut red_at = None;
    let mut incident_ids = Vec::new();
    for (i, h) in heard.iter().enumerate() {
        let list: Vec<&serde_json::Value> = match h.body["schema"].as_str() {
            Some("gridsentry.digest.v1") => {
                let inc = &h.body["incident"];
                assert!(inc.is_object(), "a digest names its incident: {:#}", h.body);
                incident_ids.push(inc["id"].as_i64().unwrap());
                h.body["notifications"].as_array().unwrap().iter().collect()
            }
            _ => vec![&h.body],
        };
        for n in &list {
            let id = n["order_id"].as_i64().unwrap();
            *got.entry(id).or_default() += 1;
            if id == red {
                assert_eq!(list.len(), 1, "the red goes alone");
                red_at = Some(i);
            } else {
                assert_eq!(
                    n["colour"].as_str(),
                    Some(if n["rule"] == "box-offline" { "blue" } else { "yellow" })
                );
            }
        }
    }
    assert_eq!(got.len() as i64, orders, "every order heard");
    assert!(got.values().all(|n| *n == 1), "each once");
    // The red is not queued behind the outage: no message about an order raised after it
    // went before it.
    let red_at = red_at.expect("the red was paged");
    for h in &heard[..red_at] {
        let ids: Vec<i64> = match h.body["notifications"].as_array() {
            Some(list) => list.iter().map(|n| n["order_id"].as_i64().unwrap()).collect(),
            None => vec![h.body["order_id"].as_i64().unwrap()],
        };
        assert!(ids.iter().all(|id| *id < red), "a message with orders raised after the red went first");
    }
    let span = heard.last().unwrap().received_ms - heard[0].received_ms;
    assert!(span < 60_000 && heard.len() <= 10, "{} messages in {span} ms to a robot", heard.len());
    incident_ids.dedup();
    assert_eq!(incident_ids.len(), 1, "one incident: {incident_ids:?}");

    let (status, body) = d.get("/api/v1/incidents", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let list = body["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body:#}");
    let i = &list[0];
    assert_eq!(i["id"].as_i64(), Some(incident_ids[0]));
    assert_eq!(
        (i["orders"].as_i64(), i["offline"].as_i64(), i["red"].as_i64()),
        (Some(600), Some(600), Some(0))
    );
    assert_eq!(i["mass_offline"], true);
    assert_eq!(i["label"], "大面积离线 · 新华街道");
    let (_, members) = d.get(&format!("/api/v1/orders?incident={}", incident_ids[0]), Some(TOKEN)).await;
    assert_eq!(members["orders"].as_array().unwrap().len(), 600);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_offline_holds_its_bands_order_back_and_releases_it_when_it_returns() {
    let broker = Mosquitto::start();
    let mut hooks = Hooks::start().await;
    let mut d = Daemon::start(broker.port, &hooks, RULES).await;
    let gw = Device::connect(broker.port, "homes", "gw-1", false).await;
    gw.send(0, hr("b1", 70, Contact::Detected)).await;
    for seq in 1..15 {
        gw.send(seq, hr("b1", 0, Contact::NotDetected)).await;
    }
    let band = d.next_change().await;
    assert_eq!((band.rule.as_str(), band.subject.as_str()), ("band-removed", "homes/gw-1/b1"));
    hooks
        .wait_until(
            |h| h.body["order_id"] == band.order_id && h.body["event"] == "raised",
            Duration::from_secs(20),
        )
        .await;

    // The gateway's power is cut: its order is raised, the band's is held back by it.
    let storm = Device::connect(broker.port, "homes", "storm", false).await;
    offline(&storm, "homes", "gw-1").await;
    let gateway = d.next_change().await;
    assert_eq!((gateway.rule.as_str(), gateway.subject.as_str()), ("gateway-offline", "homes/gw-1"));
    let db = d.db();
    let inhibited_by = count(&db, &format!("SELECT inhibited_by FROM orders WHERE id = {}", band.order_id));
    assert_eq!(inhibited_by, gateway.order_id);
    let (_, one) = d.get(&format!("/api/v1/orders/{}", band.order_id), Some(TOKEN)).await;
    assert_eq!(one["order"]["inhibited_by"].as_i64(), Some(gateway.order_id), "visible: {one:#}");
    assert!(one["events"].as_array().unwrap().iter().any(|e| e["kind"] == "inhibited"), "{one:#}");
    // A reminder or escalation while it is held back is recorded and not sent.
    d.post(&format!("/api/v1/orders/{}/ack", band.order_id)).await;
    let held =
        format!("SELECT COUNT(*) FROM outbox WHERE order_id = {} AND status = 'inhibited'", band.order_id);
    d.wait(|_| count(&db, &held) >= 1).await;

    // It comes back, the band still off the wrist: the gateway's order ends, the band's is paged.
    gw.send(15, hr("b1", 0, Contact::NotDetected)).await;
    let released = hooks
        .wait_until(
            |h| h.body["order_id"] == band.order_id && h.body["event"] == "released",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(released.body["colour"], "orange");
    let after = count(
        &db,
        &format!("SELECT COUNT(*) FROM orders WHERE id = {} AND inhibited_by IS NULL", band.order_id),
    );
    assert_eq!(after, 1);
    let acked = hooks
        .all()
        .iter()
        .filter(|h| h.body["order_id"] == band.order_id && h.body["event"] == "acknowledged")
        .count();
    assert_eq!(acked, 0, "held back while the gateway was away");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_holds_an_incidents_digests_too() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let rules = format!("{RULES}{GROUP}");
    let d = Daemon::start(broker.port, &hooks, &rules).await;
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600);
    let body =
        serde_json::json!({ "match": "site=plaza-3", "until": until.to_string(), "reason": "供电检修" });
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/silences", d.api))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // The street's gateways first (not silenced: their incident is paged), then the silenced
    // plaza's boxes, more than one round of the notifier reads: the incident's digests take
    // every due notification of it, and the silenced ones must stay out of them.
    let storm = Device::connect(broker.port, "plaza-3", "storm", false).await;
    for g in 0..10 {
        offline(&storm, "homes", &format!("gw-{g}")).await;
    }
    for b in 0..100 {
        offline(&storm, "plaza-3", &format!("nb-{b}")).await;
    }
    let db = std::sync::Mutex::new(d.db());
    let settled =
        "SELECT COUNT(*) FROM outbox WHERE receiver = 'grid' AND status IN ('silenced', 'delivered')";
    d.wait(|_| count(&db.lock().unwrap(), settled) == 110).await;
    let db = db.into_inner().unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders WHERE incident IS NOT NULL"), 110, "in one incident");
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT incident) FROM orders"), 1);
    let silenced = "SELECT COUNT(*) FROM outbox o JOIN orders r ON r.id = o.order_id
                    WHERE o.receiver = 'grid' AND o.status = 'silenced' AND r.site = 'plaza-3'";
    assert_eq!(count(&db, silenced), 100);
    for h in hooks.all().iter().filter(|h| h.receiver == "grid") {
        let sites: Vec<&str> = match h.body["notifications"].as_array() {
            Some(list) => list.iter().map(|n| n["site"].as_str().unwrap()).collect(),
            None => vec![h.body["site"].as_str().unwrap()],
        };
        assert!(sites.iter().all(|s| *s == "homes"), "a silenced box paged: {sites:?}");
    }
    d.stop().await;
}
