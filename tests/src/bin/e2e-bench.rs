//! End-to-end benchmark (run by `scripts/bench`): the broker's own QoS 1 ceiling, then the
//! daemon (release binary, acks after commit) against it in the same run, latency from publish to
//! webhook at a fixed load, memory and start-up time. Prints one `name value` line per figure.
//!
//! usage: e2e-bench GRIDSENTRY_BINARY [--quick]

use gridsentry_sensors::*;
use gridsentry_tests::{config, free_port, spawn_daemon, wait_ready, Hooks, Mosquitto};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};

const DEVICES: u32 = 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn payload(i: u32, db: f32) -> (String, Vec<u8>) {
    let dev = i % DEVICES;
    let body = Body::Noise(NoiseReport::levels(db, db + 5.0));
    let header = Header {
        site: Id::new("bench").unwrap(),
        device: Id::new(&format!("d{dev}")).unwrap(),
        boot_id: 1,
        seq: i / DEVICES,
        time: Timestamp::Utc(now_ms()),
        historical: false,
    };
    (format!("gs/v1/bench/d{dev}/noise"), codec::encode_vec(Format::Json, &Reading { header, body }).unwrap())
}

async fn publisher(port: u16, id: &str) -> AsyncClient {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_inflight(1000);
    let (client, mut events) = AsyncClient::new(o, 10_000);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    client
}

/// Messages per second a bare QoS 1 subscriber receives (and acks) from one publisher.
async fn ceiling(port: u16, n: u32) -> f64 {
    let mut o = MqttOptions::new("bare-subscriber", "127.0.0.1", port);
    o.set_inflight(1000);
    let (sub, mut events) = AsyncClient::new(o, 10_000);
    sub.subscribe("gs/v1/+/+/+", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = events.poll().await {
            break;
        }
    }
    let counter = tokio::spawn(async move {
        let (mut got, mut first) = (0u32, None);
        while got < n {
            if let Ok(Event::Incoming(Packet::Publish(_))) = events.poll().await {
                first.get_or_insert_with(Instant::now);
                got += 1;
            }
        }
        first.unwrap().elapsed()
    });
    let p = publisher(port, "ceiling-publisher").await;
    for i in 0..n {
        let (topic, body) = payload(i, 55.0);
        p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
    }
    let took = counter.await.unwrap();
    sub.disconnect().await.ok();
    f64::from(n) / took.as_secs_f64()
}

async fn metric(http: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn proc_status(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("usage: e2e-bench GRIDSENTRY_BINARY [--quick]").clone();
    let quick = args.iter().any(|a| a == "--quick");
    let n: u32 = if quick { 50_000 } else { 200_000 };
    let broker = Mosquitto::start();
    let ceiling = ceiling(broker.port, n).await;
    println!("broker_ceiling_readings_per_s {ceiling:.0}");

    let hooks = Hooks::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[[rule]]
id = "noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;
    let http = free_port();
    let text = config(dir.path(), broker.port, http, &hooks.url, rules)
        .replace("client_id = \"gridsentry-test\"", "client_id = \"gridsentry-bench\"");
    let cfg = dir.path().join("bench.toml");
    std::fs::write(&cfg, text).unwrap();
    let started = Instant::now();
    let mut daemon = spawn_daemon(std::path::Path::new(&bin), &cfg, &dir.path().join("daemon.log"));
    let pid = daemon.id();
    wait_ready(http).await;
    println!("gridsentry_ready_ms {}", started.elapsed().as_millis());

    // Throughput: the same publisher and load as the ceiling run.
    let p = publisher(broker.port, "bench-publisher").await;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    for i in 0..n {
        let (topic, body) = payload(i, 55.0);
        p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
    }
    while metric(http, "gridsentry_readings_total").await < f64::from(n) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    println!("gridsentry_readings_per_s {rate:.0}");
    println!("gridsentry_share_of_ceiling_pct {:.0}", 100.0 * rate / ceiling);

    // Latency at a fixed 10k readings/s for a few seconds; 1 % of readings raise an order
    // (and the device's next reading clears it), each transition a webhook.
    let secs = if quick { 3 } else { 10 };
    let per_tick = 100; // every 10 ms
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let cpu1 = cpu_seconds(pid);
    let mut i = n;
    for _ in 0..secs * 100 {
        tick.tick().await;
        for _ in 0..per_tick {
            // Device i % 1000 gets reading i; each device passes the limit once in 100 of its
            // readings (and clears on its next), so 1 % of all readings raise an order.
            let db = if (i + i / DEVICES).is_multiple_of(100) { 75.0 } else { 55.0 };
            let (topic, body) = payload(i, db);
            p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
            i += 1;
        }
    }
    let sent = i - n;
    while metric(http, "gridsentry_readings_total").await < f64::from(i) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu_seconds(pid) - cpu1;
    println!("gridsentry_cpu_us_per_reading {:.1}", cpu * 1e6 / f64::from(sent));
    let raised = (sent / 100) as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lat: Vec<u64> = Vec::new();
    while lat.len() < raised && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lat = hooks
            .all()
            .iter()
            .filter(|h| h.body["event"] == "raised")
            .filter_map(|h| Some(h.received_ms.saturating_sub(h.body["evidence"]["ts"].as_u64()?)))
            .collect();
    }
    lat.sort_unstable();
    let p99 = lat.get(lat.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(u64::MAX);
    println!("gridsentry_p99_ms {p99}");
    println!("gridsentry_webhooks_measured {}", lat.len());
    println!("gridsentry_rss_mb {:.1}", proc_status(pid, "VmRSS:") / 1024.0);
    println!("gridsentry_peak_rss_mb {:.1}", proc_status(pid, "VmHWM:") / 1024.0);
    println!("gridsentry_cpu_s_throughput_phase {:.2}", cpu1 - cpu0);
    let _ = daemon.kill();
    let _ = daemon.wait();
}
