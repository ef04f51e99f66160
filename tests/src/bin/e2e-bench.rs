//! End-to-end benchmark (run by `scripts/bench`): the broker's own QoS 1 ceiling, then the
//! daemon (release binary, acks after commit) against it in the same run, latency from publish to
//! webhook at a fixed load, memory and start-up time. Prints one `name value` line per figure.
//!
//! With `--nodered DIR` (a directory holding `node_modules/node-red`) the same workload then runs
//! through the Node-RED flow in `bench/` on a fresh broker, printing the `nodered_*` lines.
//! One reading per MQTT message for both (no batching).
//!
//! usage: e2e-bench GRIDSENTRY_BINARY [--quick] [--nodered DIR]

use gridsentry_sensors::*;
use gridsentry_tests::nodered::NodeRed;
use gridsentry_tests::{config, free_port, spawn_daemon, wait_ready, Hooks, Mosquitto};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};

const DEVICES: u32 = 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

fn payload(i: u32, db: f32) -> (String, Vec<u8>) {
    reading("bench", i, db)
}

/// A reading from site `probe`: the Node-RED flow counts these apart from the workload.
fn probe_payload(i: u32) -> (String, Vec<u8>) {
    reading("probe", i, 55.0)
}

fn reading(site: &str, i: u32, db: f32) -> (String, Vec<u8>) {
    let dev = i % DEVICES;
    let body = Body::Noise(NoiseReport::levels(db, db + 5.0));
    let header = Header {
        site: Id::new(site).unwrap(),
        device: Id::new(&format!("d{dev}")).unwrap(),
        boot_id: 1,
        seq: i / DEVICES,
        time: Timestamp::Utc(now_ms()),
        historical: false,
    };
    (
        format!("gs/v1/{site}/d{dev}/noise"),
        codec::encode_vec(Format::Json, &Reading { header, body }).unwrap(),
    )
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
    let counter = Counter::Daemon(http);
    load(&p, &counter, pid, n, quick, &hooks, "gridsentry", ceiling).await;
    println!("gridsentry_peak_rss_mb {:.1}", proc_status(pid, "VmHWM:") / 1024.0);
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(p);

    // The same workload through Node-RED (its own fresh broker: nothing queued for the daemon's
    // session competes with it).
    let Some(install) = args.iter().position(|a| a == "--nodered").and_then(|i| args.get(i + 1)) else {
        return;
    };
    let broker = Mosquitto::start();
    let hooks = Hooks::start().await;
    let started = Instant::now();
    let red = NodeRed::start(std::path::Path::new(install), broker.port, &format!("{}/nodered", hooks.url));
    red.wait_http().await;
    let p = publisher(broker.port, "nodered-publisher").await;
    // Subscribed once a probe reading (site `probe`, counted apart by the flow) is seen.
    let mut probe = 0;
    while red.probes().await.unwrap_or(0) == 0 {
        let (topic, body) = probe_payload(probe);
        p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
        probe += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("nodered_ready_ms {}", started.elapsed().as_millis());
    let base = red.count().await.unwrap_or(0) as f64;
    let counter = Counter::NodeRed(&red, base);
    load(&p, &counter, red.pid(), n, quick, &hooks, "nodered", ceiling).await;
}

/// Where to read how many readings a system under test has processed.
enum Counter<'a> {
    /// gridsentry's `/metrics` on this port.
    Daemon(u16),
    /// Node-RED's flow counter, minus the probes.
    NodeRed(&'a NodeRed, f64),
}

impl Counter<'_> {
    async fn processed(&self) -> f64 {
        match self {
            Counter::Daemon(http) => metric(*http, "gridsentry_readings_total").await,
            Counter::NodeRed(red, base) => red.count().await.map_or(0.0, |c| c as f64 - base),
        }
    }
}

/// Throughput of `n` readings as fast as the publisher goes, then CPU and p99 at a fixed
/// 10k readings/s with 1 % raising an order (and the next reading clearing it); RSS at the end.
#[allow(clippy::too_many_arguments)]
async fn load(
    p: &AsyncClient,
    counter: &Counter<'_>,
    pid: u32,
    n: u32,
    quick: bool,
    hooks: &Hooks,
    name: &str,
    ceiling: f64,
) {
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    for i in 0..n {
        let (topic, body) = payload(i, 55.0);
        p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while counter.processed().await < f64::from(n) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    println!("{name}_readings_per_s {rate:.0}");
    println!("{name}_share_of_ceiling_pct {:.0}", 100.0 * rate / ceiling);
    println!("{name}_cpu_s_throughput_phase {:.2}", cpu_seconds(pid) - cpu0);

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
    let deadline = Instant::now() + Duration::from_secs(600);
    while counter.processed().await < f64::from(i) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu_seconds(pid) - cpu1;
    println!("{name}_cpu_us_per_reading {:.1}", cpu * 1e6 / f64::from(sent));
    let raised = (sent / 100) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lat: Vec<u64> = Vec::new();
    while lat.len() < raised && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lat = hooks
            .all()
            .iter()
            .filter(|h| {
                h.body["event"] == "raised"
                    && h.body["evidence"]["seq"].as_u64() >= Some(u64::from(n / DEVICES))
            })
            .filter_map(|h| Some(h.received_ms.saturating_sub(h.body["evidence"]["ts"].as_u64()?)))
            .collect();
    }
    lat.sort_unstable();
    let p99 = lat.get(lat.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(u64::MAX);
    println!("{name}_p99_ms {p99}");
    println!("{name}_webhooks_measured {}", lat.len());
    println!("{name}_webhooks_signed {}", hooks.all().iter().filter(|h| h.signed).count());
    println!("{name}_rss_mb {:.1}", proc_status(pid, "VmRSS:") / 1024.0);
}
