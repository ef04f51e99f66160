//! Storms: a street's worth of orders at once reaches a rate-limited receiver (a chat robot
//! takes about 20 messages a minute) as a few messages — the red on its own at once, the rest
//! merged into a digest — and nothing is lost.

use gridsentry_tests::daemon::{count, Daemon, Device, NOISE_RULE};
use gridsentry_tests::{noise, Mosquitto};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages per window the receiver takes.
const LIMIT: usize = 4;
/// The window (a minute in service; shortened here so that the test sees it refill).
const WINDOW: Duration = Duration::from_secs(8);
const BOXES: usize = 100;
/// The box that is also extremely loud: a red order beside its yellow one, raised behind more
/// due notifications than one round of the notifier reads (64).
const RED_BOX: usize = 90;

const RED_RULE: &str = r#"
[[rule]]
id = "plaza-noise-extreme"
colour = "red"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 95.0, clear = 90.0, for_s = 10, clear_for_s = 5 }
"#;

type Heard = Arc<Mutex<Vec<(Instant, Value)>>>;

async fn receiver(heard: Heard) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let heard = heard.clone();
        async move {
            if uri.path() == "/grid" {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                heard.lock().unwrap().push((Instant::now(), v));
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_goes_out_within_the_limit_as_a_digest_and_the_red_on_its_own_at_once() {
    let broker = Mosquitto::start();
    let heard: Heard = Arc::default();
    let url = receiver(heard.clone()).await;
    let limited = |text: String| {
        text.replacen("max_attempts = 4\n", &format!("max_attempts = 4\nmax_per_minute = {LIMIT}\n"), 1)
    };
    let rules = format!("{NOISE_RULE}{RED_RULE}");
    let d = Daemon::start_edited(broker.port, &url, &rules, limited, Some(WINDOW)).await;
    for b in 0..BOXES {
        let dev = Device::connect(broker.port, "plaza-3", &format!("nb-{b}"), false).await;
        for seq in 0..15 {
            dev.send(seq, noise(if b == RED_BOX { 100.0 } else { 75.0 })).await;
        }
    }
    let orders = BOXES as i64 + 1;
    let delivered = "SELECT COUNT(*) FROM outbox WHERE receiver = 'grid' AND status = 'delivered'";
    let db = Mutex::new(d.db());
    d.wait(|_| count(&db.lock().unwrap(), delivered) == orders).await;
    let db = db.into_inner().unwrap();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), orders);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox WHERE status != 'delivered'"), 0);

    let heard = heard.lock().unwrap().clone();
    let first = heard[0].0;
    // Every order's notification arrived exactly once: on its own or inside a digest.
    let mut got: HashMap<i64, usize> = HashMap::new();
    let (mut digests, mut red_at) = (0, None);
    for (at, v) in &heard {
        if v["schema"] == "gridsentry.digest.v1" {
            digests += 1;
            let list = v["notifications"].as_array().unwrap();
            assert_eq!(v["count"].as_u64(), Some(list.len() as u64));
            for n in list {
                assert_ne!(n["colour"], "red", "a red inside a digest: {v}");
                *got.entry(n["order_id"].as_i64().unwrap()).or_default() += 1;
            }
        } else {
            if v["colour"] == "red" {
                red_at = Some(*at);
            }
            *got.entry(v["order_id"].as_i64().unwrap()).or_default() += 1;
        }
    }
    assert_eq!(got.len() as i64, orders, "every order heard: {got:?}");
    assert!(got.values().all(|n| *n == 1), "each once: {got:?}");
    assert!(digests >= 1, "a storm of {orders} over a limit of {LIMIT} needs a digest");
    assert!(heard.len() < orders as usize / 2, "{} messages for {orders} orders", heard.len());
    // Within the first window, at most the limit (a little slack for delivery jitter).
    let early = heard.iter().filter(|(at, _)| *at < first + WINDOW - Duration::from_secs(1)).count();
    assert!(early <= LIMIT, "{early} messages in the first window");
    // The red was not held for the window to refill.
    let red_at = red_at.expect("the red on its own");
    assert!(red_at < first + WINDOW - Duration::from_secs(1), "the red waited for the window");
    let m = &d.running().metrics;
    assert_eq!(m.webhook_digests.load(std::sync::atomic::Ordering::Relaxed), digests);
    d.stop().await;
}

/// Adds a silence through the API as the legacy token (an operator's rights); the status.
async fn silence(d: &Daemon, matcher: &str, until: jiff::Timestamp, include_red: bool) -> (u16, Value) {
    let body = serde_json::json!({ "match": matcher, "until": until.to_string(), "reason": "power works", "include_red": include_red });
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/silences", d.api))
        .bearer_auth(gridsentry_tests::TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// One box of `site` loud for 15 s: the noise rule raises one order.
async fn loud(broker: u16, site: &str, device: &str) {
    let dev = Device::connect(broker, site, device, false).await;
    for seq in 0..15 {
        dev.send(seq, noise(75.0)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_stops_pages_not_records_and_ends_on_time() {
    let broker = Mosquitto::start();
    let heard: Heard = Arc::default();
    let url = receiver(heard.clone()).await;
    let d = Daemon::start_at(broker.port, &url, NOISE_RULE).await;
    let ends = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let (status, _) = silence(&d, "site=plaza-3", ends, true).await;
    assert_eq!(status, 403, "only an admin silences red");
    let (status, body) = silence(&d, "site=plaza-3", ends, false).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) =
        silence(&d, "site=plaza-3", jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1), false).await;
    assert_eq!(status, 400, "a silence that ended already");
    let (status, other) = silence(&d, "site=plaza-5", ends, false).await;
    assert_eq!(status, 201);
    assert_eq!(d.post(&format!("/api/v1/silences/{}/expire", other["id"])).await, 200);

    loud(broker.port, "plaza-3", "nb-1").await;
    loud(broker.port, "plaza-4", "nb-2").await;
    loud(broker.port, "plaza-5", "nb-3").await;
    let status_count = |db: &rusqlite::Connection, st: &str| {
        count(db, &format!("SELECT COUNT(*) FROM outbox WHERE receiver = 'grid' AND status = '{st}'"))
    };
    let db = Mutex::new(d.db());
    d.wait(|_| {
        let db = db.lock().unwrap();
        status_count(&db, "silenced") == 1 && status_count(&db, "delivered") == 2
    })
    .await;
    let sites = |heard: &Heard| -> Vec<String> {
        heard.lock().unwrap().iter().map(|(_, v)| v["site"].as_str().unwrap_or("").to_string()).collect()
    };
    let mut got = sites(&heard);
    got.sort();
    assert_eq!(got, ["plaza-4", "plaza-5"], "plaza-3 silenced; plaza-5's silence was ended");
    {
        let db = db.lock().unwrap();
        assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), 3, "every order recorded");
        let why: String = db
            .query_row("SELECT last_error FROM outbox WHERE status = 'silenced'", [], |r| r.get(0))
            .unwrap();
        assert!(why.contains("power works"), "{why}");
        assert_eq!(count(&db, "SELECT COUNT(*) FROM audit WHERE action = 'silence.add'"), 2);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM audit WHERE action = 'silence.expire'"), 1);
    }

    // Once its time is over, plaza-3 is paged again; what it held stays held.
    let left = ends.duration_since(jiff::Timestamp::now());
    tokio::time::sleep(Duration::try_from(left).unwrap_or_default()).await;
    loud(broker.port, "plaza-3", "nb-4").await;
    d.wait(|_| status_count(&db.lock().unwrap(), "delivered") == 3).await;
    assert_eq!(status_count(&db.lock().unwrap(), "silenced"), 1);
    assert_eq!(sites(&heard).iter().filter(|s| *s == "plaza-3").count(), 1);
    d.stop().await;
}
