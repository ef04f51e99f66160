//! Webhook security against real receivers: the signature verified by an independent
//! implementation of the Standard Webhooks algorithm (Python, standard library only), a replay
//! refused, a redirect never followed, and an endless answer not read to its end.

use gridsentry::notify::sign;
use gridsentry_tests::daemon::{count, Daemon, Device, NOISE_RULE, WAIT};
use gridsentry_tests::{free_port, noise, Hooks, Mosquitto, SECRET};
use std::io::BufRead;
use std::sync::atomic::Ordering::Relaxed;

/// The Python receiver, its stdout lines arriving on a channel.
struct PyReceiver {
    child: std::process::Child,
    url: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PyReceiver {
    fn start() -> PyReceiver {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/webhook_verify.py");
        let mut child = std::process::Command::new("python3")
            .args([script, &port.to_string(), SECRET])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (scripts/test installs it)");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        gridsentry_tests::wait_port(port);
        PyReceiver { child, url, lines }
    }

    fn next(&self) -> String {
        self.lines.recv_timeout(WAIT).expect("a line from the Python receiver")
    }
}

impl Drop for PyReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_verifies_with_the_specs_algorithm_and_a_replay_does_not() {
    let py = PyReceiver::start();
    let broker = Mosquitto::start();
    let mut d = Daemon::start_at(broker.port, &py.url, NOISE_RULE).await;
    raise_an_order(broker.port).await;
    let raised = d.next_change().await;
    assert_eq!(py.next(), format!("verified {}-1", raised.order_id));
    d.wait(|r| r.metrics.webhooks_delivered.load(Relaxed) == 1).await;
    // The same body and id, signed correctly but ten minutes ago: what a captured request
    // replayed later looks like.
    let body = br#"{"event":"raised"}"#;
    let old = gridsentry::clock::now_ms() / 1000 - 600;
    let id = format!("{}-1", raised.order_id);
    let replay = reqwest::Client::new()
        .post(format!("{}/grid", py.url))
        .header("webhook-id", &id)
        .header("webhook-timestamp", old.to_string())
        .header("webhook-signature", sign::signature(SECRET, &id, old, body))
        .body(&body[..])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert_eq!(py.next(), "refused timestamp outside tolerance");
    d.stop().await;
}

/// A receiver that answers every request with `302 Found` to `to`.
async fn redirector(to: String) -> String {
    use axum::http::{header::LOCATION, StatusCode};
    serve(axum::Router::new().fallback(move || async move { (StatusCode::FOUND, [(LOCATION, to)]) })).await
}

/// Serves `app` on a free loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A noise box loud for 15 s: the noise rule raises one order.
async fn raise_an_order(broker: u16) {
    let dev = Device::connect(broker, "plaza-3", "nb-01", false).await;
    for seq in 0..15 {
        dev.send(seq, noise(75.0)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failed_attempt_never_followed() {
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let url = redirector(format!("{}/grid", hooks.url)).await;
    let d = Daemon::start_at(broker.port, &url, NOISE_RULE).await;
    raise_an_order(broker.port).await;
    // Four attempts (max_attempts in the test config), then a dead letter.
    d.wait(|r| r.metrics.webhooks_dead.load(Relaxed) == 1).await;
    assert_eq!(d.running().metrics.webhooks_failed.load(Relaxed), 4);
    assert_eq!(d.running().metrics.webhooks_delivered.load(Relaxed), 0);
    assert!(hooks.all().is_empty(), "the redirect's target never heard of it: {:?}", hooks.all());
    let db = d.db();
    let error: String =
        db.query_row("SELECT last_error FROM outbox WHERE receiver = 'grid'", [], |r| r.get(0)).unwrap();
    assert!(error.contains("302") && error.contains("not followed"), "{error}");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox WHERE status = 'dead'"), 1);
    d.stop().await;
}

/// A receiver that accepts with 200 and then sends an answer that never ends.
async fn endless() -> String {
    let app = axum::Router::new().fallback(|| async {
        let chunk = axum::body::Bytes::from(vec![b' '; 16 * 1024]);
        let stream = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        axum::body::Body::from_stream(stream)
    });
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_read_only_up_to_its_cap() {
    let broker = Mosquitto::start();
    let url = endless().await;
    let d = Daemon::start_at(broker.port, &url, NOISE_RULE).await;
    raise_an_order(broker.port).await;
    // Delivered (2xx) without waiting for an answer that has no end, nor holding all of it.
    d.wait(|r| r.metrics.webhooks_delivered.load(Relaxed) == 1).await;
    assert_eq!(d.running().metrics.webhooks_failed.load(Relaxed), 0);
    d.stop().await;
}

/// What the pacing receiver saw: (order, event) posted to the tier-0 receiver (`/grid`) in
/// arrival order, and the most requests it held at once.
#[derive(Default)]
struct Seen {
    arrivals: Vec<(u64, String)>,
    in_flight: usize,
    most: usize,
}

/// A receiver that holds each request to `/grid` until another one arrives beside it (or 200
/// ms pass: well inside the client's 500 ms timeout, so no retry overlaps its first attempt): a notifier that posts one request at a time never gets two in at once. Requests to
/// other receivers (the tier-1 `/duty`) are answered at once and not recorded.
async fn pacing(seen: std::sync::Arc<std::sync::Mutex<Seen>>) -> String {
    let (company, _) = tokio::sync::watch::channel(0usize);
    let company = std::sync::Arc::new(company);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
        let (seen, company) = (seen.clone(), company.clone());
        async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if uri.path() != "/grid" {
                return axum::http::StatusCode::NO_CONTENT;
            }
            let now = {
                let mut s = seen.lock().unwrap();
                s.arrivals
                    .push((v["order_id"].as_u64().unwrap_or(0), v["event"].as_str().unwrap_or("").into()));
                s.in_flight += 1;
                s.most = s.most.max(s.in_flight);
                s.in_flight
            };
            company.send_modify(|n| *n = (*n).max(now));
            let mut rx = company.subscribe();
            let _ =
                tokio::time::timeout(std::time::Duration::from_millis(200), rx.wait_for(|n| *n >= 2)).await;
            seen.lock().unwrap().in_flight -= 1;
            axum::http::StatusCode::NO_CONTENT
        }
    });
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_of_different_orders_go_out_together_one_orders_in_order() {
    const ORDERS: u64 = 8;
    let broker = Mosquitto::start();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let url = pacing(seen.clone()).await;
    let d = Daemon::start_at(broker.port, &url, NOISE_RULE).await;
    // Each box loud for 15 s (raised), then quiet for 10 s (resolved).
    for box_no in 0..ORDERS {
        let dev = Device::connect(broker.port, "plaza-3", &format!("nb-{box_no}"), false).await;
        for seq in 0..25 {
            dev.send(seq, noise(if seq < 15 { 75.0 } else { 55.0 })).await;
        }
    }
    let grid = || seen.lock().unwrap().arrivals.len() as u64;
    d.wait(|_| grid() >= 2 * ORDERS).await;
    let (most, arrivals) = {
        let s = seen.lock().unwrap();
        (s.most, s.arrivals.clone())
    };
    let s = Seen { most, arrivals, in_flight: 0 };
    assert!(s.most >= 2, "requests went out one at a time: {:?}", s.arrivals);
    for order in s.arrivals.iter().map(|(o, _)| *o).collect::<std::collections::HashSet<_>>() {
        let events: Vec<&str> =
            s.arrivals.iter().filter(|(o, _)| *o == order).map(|(_, e)| e.as_str()).collect();
        assert_eq!(events, ["raised", "resolved"], "order {order}: {:?}", s.arrivals);
    }
    assert_eq!(s.arrivals.len() as u64, 2 * ORDERS);
    d.stop().await;
}
