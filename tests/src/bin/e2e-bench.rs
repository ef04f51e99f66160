//! End-to-end benchmark (run by `scripts/bench`): the broker's own QoS 1 ceiling, then the
//! daemon (release binary, acks after commit) against it in the same run: throughput, a backlog
//! left by a SIGKILL drained after the restart, then a latency ladder of paced loads (2k/s up to
//! 45k/s, until the system saturates) with 1 % and with 20 % of readings raising an order:
//! publish → webhook p50/p99 and CPU per reading at each load (`…latency_at RATE P50 P99`, which
//! `scripts/plot-latency` draws), memory and start-up time. Prints one `name value` line per
//! figure.
//!
//! The load comes from [`gridsentry_tests::loadgen`] (raw MQTT over TCP, pipelined, four
//! connections), so that the broker, not the generator, sets the ceiling: `broker_cpu_pct` and
//! `loadgen_cpu_pct` are printed beside it (a broker near 100 % of a core is the real ceiling).
//! The ceiling is what a bare raw-TCP QoS 1 subscriber that only acks receives.
//!
//! With `--nodered DIR` (a directory holding `node_modules/node-red`) the same workload then runs
//! through the Node-RED flow in `bench/` on a fresh broker, printing the `nodered_*` lines.
//! One reading per MQTT message for both (no batching). With `--soak MINUTES` it instead runs
//! the daemon for that long at 10k readings/s, printing RSS every 30 s.
//!
//! usage: e2e-bench GRIDSENTRY_BINARY [--quick] [--nodered DIR] [--soak MINUTES] [--in-process-receiver]

use gridsentry_sensors::*;
use gridsentry_tests::loadgen::{self, BareSubscriber, Messages};
use gridsentry_tests::nodered::NodeRed;
use gridsentry_tests::receiver::Receiver;
use gridsentry_tests::{config, free_port, spawn_daemon, wait_ready, Mosquitto};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICES: u64 = 1000;
const CONNS: usize = 4;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Message i: device i % 1000, its reading i / 1000, stamped now. With `hot_every` > 0, each
/// device's reading passes the limit once in `hot_every` of its readings (and the next clears
/// it): 100 makes 1 % of all readings raise an order (the everyday load), 5 makes 20 % (order
/// churn: a storm). 0: none do.
fn workload(site: &'static str, hot_every: u64) -> Messages {
    Arc::new(move |i| {
        let hot = hot_every > 0 && (i + i / DEVICES).is_multiple_of(hot_every);
        reading(site, i, if hot { 75.0 } else { 55.0 })
    })
}

/// The step of the ladder below `rate` (0 for the first).
fn rate_before(quick: bool, rate: u64) -> u64 {
    ladder(quick).iter().copied().take_while(|&r| r < rate).last().unwrap_or(0)
}

/// Offered loads (readings/s) of the latency ladder.
fn ladder(quick: bool) -> &'static [u64] {
    if quick {
        &[2_000, 5_000, 10_000, 20_000, 30_000]
    } else {
        &[2_000, 5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000, 45_000]
    }
}

fn reading(site: &str, i: u64, db: f32) -> (String, Vec<u8>) {
    let dev = i % DEVICES;
    let body = Body::Noise(NoiseReport::levels(db, db + 5.0));
    let header = Header {
        site: Id::new(site).unwrap(),
        device: Id::new(&format!("d{dev}")).unwrap(),
        boot_id: 1,
        seq: (i / DEVICES) as u32,
        time: Timestamp::Utc(now_ms()),
        historical: false,
    };
    (
        format!("gs/v1/{site}/d{dev}/noise"),
        codec::encode_vec(Format::Json, &Reading { header, body }).unwrap(),
    )
}

/// CPU seconds of a process (user + system) from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = s.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn proc_status(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

/// CPU use of the broker and of this process (the generator) while `f` runs, % of one core.
struct CpuWatch {
    broker: (u32, f64),
    me: f64,
    t0: Instant,
}

impl CpuWatch {
    fn start(broker: u32) -> CpuWatch {
        CpuWatch {
            broker: (broker, cpu_seconds(broker)),
            me: cpu_seconds(std::process::id()),
            t0: Instant::now(),
        }
    }
    fn print(&self, prefix: &str) {
        let wall = self.t0.elapsed().as_secs_f64();
        let b = 100.0 * (cpu_seconds(self.broker.0) - self.broker.1) / wall;
        let g = 100.0 * (cpu_seconds(std::process::id()) - self.me) / wall;
        println!("{prefix}broker_cpu_pct {b:.0}");
        println!("{prefix}loadgen_cpu_pct {g:.0}");
    }
}

/// The broker's own ceiling: the generator → mosquitto → a bare subscriber.
async fn ceiling(broker: &Mosquitto, n: u64) -> f64 {
    let sub = BareSubscriber::start(broker.port, "gs/v1/+/+/+").await;
    let counter = tokio::spawn(sub.count(n));
    let watch = CpuWatch::start(broker.pid().unwrap());
    loadgen::publish(broker.port, CONNS, workload("bench", 0), 0, n, None).await;
    let took = counter.await.unwrap();
    let rate = n as f64 / took.as_secs_f64();
    println!("broker_ceiling_readings_per_s {rate:.0}");
    watch.print("");
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = args.get(1).expect("usage: e2e-bench GRIDSENTRY_BINARY [--quick]").clone();
    let quick = args.iter().any(|a| a == "--quick");
    let soak = args.iter().position(|a| a == "--soak").and_then(|i| args.get(i + 1)?.parse::<u64>().ok());
    let n: u64 = if quick { 50_000 } else { 200_000 };
    let broker = Mosquitto::start();
    let in_process = args.iter().any(|a| a == "--in-process-receiver");
    let hooks = Receiver::start(in_process).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"
[[rule]]
id = "noise"
colour = "yellow"
condition = { type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0 }
"#;
    let http = free_port();
    // The daemon's own batching defaults, unless GRIDSENTRY_BENCH_LINGER_MS says otherwise.
    let linger = std::env::var("GRIDSENTRY_BENCH_LINGER_MS")
        .map_or(String::new(), |l| format!("batch_linger_ms = {l}\n"));
    let text = config(dir.path(), broker.port, http, hooks.url(), rules)
        .replace("client_id = \"gridsentry-test\"", "client_id = \"gridsentry-bench\"")
        .replace("[daemon]\n", &format!("[daemon]\n{linger}"));
    let cfg = dir.path().join("bench.toml");
    std::fs::write(&cfg, text).unwrap();
    let log = dir.path().join("daemon.log");
    if let Some(minutes) = soak {
        let mut daemon = spawn_daemon(std::path::Path::new(&bin), &cfg, &log);
        wait_ready(http).await;
        soak_run(&broker, http, daemon.id(), minutes).await;
        let _ = daemon.kill();
        return;
    }
    let ceiling = ceiling(&broker, n).await;

    let started = Instant::now();
    let mut daemon = spawn_daemon(std::path::Path::new(&bin), &cfg, &log);
    let pid = daemon.id();
    wait_ready(http).await;
    println!("gridsentry_ready_ms {}", started.elapsed().as_millis());
    let counter = Counter::Daemon(http);
    let mut next = throughput(&broker, &counter, pid, n, "gridsentry", ceiling).await;

    // A backlog in the daemon's session: SIGKILL, n readings queued, restart, drain.
    let _ = daemon.kill();
    let _ = daemon.wait();
    loadgen::publish(broker.port, CONNS, workload("bench", 0), next, n, None).await;
    next += n;
    let restarted = Instant::now();
    let mut daemon = spawn_daemon(std::path::Path::new(&bin), &cfg, &log);
    let pid = daemon.id();
    wait_ready(http).await;
    while counter.processed().await < n as f64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / restarted.elapsed().as_secs_f64();
    println!("gridsentry_backlog_drain_readings_per_s {rate:.0}");
    println!("gridsentry_backlog_share_of_ceiling_pct {:.0}", 100.0 * rate / ceiling);
    let base = counter.processed().await;
    fixed_rates(&broker, &Counter::Offset(http, base), pid, next, quick, &hooks, "gridsentry").await;
    println!("gridsentry_peak_rss_mb {:.1}", proc_status(pid, "VmHWM:") / 1024.0);
    let _ = daemon.kill();
    let _ = daemon.wait();

    // The same workload through Node-RED (its own fresh broker: nothing queued for the daemon's
    // session competes with it).
    let Some(install) = args.iter().position(|a| a == "--nodered").and_then(|i| args.get(i + 1)) else {
        return;
    };
    let broker = Mosquitto::start();
    let hooks = Receiver::start(in_process).await;
    let started = Instant::now();
    let red = NodeRed::start(std::path::Path::new(install), broker.port, &format!("{}/nodered", hooks.url()));
    red.wait_http().await;
    let mut o = MqttOptions::new("nodered-probe", "127.0.0.1", broker.port);
    o.set_inflight(100);
    let (p, mut events) = AsyncClient::new(o, 100);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    // Subscribed once a probe reading (site `probe`, counted apart by the flow) is seen.
    let mut probe = 0;
    while red.probes().await.unwrap_or(0) == 0 {
        // A flow that does not run (a syntax error in a function node) sees nothing, ever.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Node-RED's flow counted no probe reading in 60 s; its log:\n{}",
            red.log()
        );
        let (topic, body) = reading("probe", probe, 55.0);
        p.publish(topic, QoS::AtLeastOnce, false, body).await.unwrap();
        probe += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("nodered_ready_ms {}", started.elapsed().as_millis());
    let base = red.count().await.unwrap_or(0) as f64;
    let counter = Counter::NodeRed(&red, base);
    let next = throughput(&broker, &counter, red.pid(), n, "nodered", ceiling).await;
    let base = red.count().await.unwrap_or(0) as f64;
    fixed_rates(&broker, &Counter::NodeRed(&red, base), red.pid(), next, quick, &hooks, "nodered").await;
}

/// Where to read how many readings a system under test has processed.
enum Counter<'a> {
    /// gridsentry's `/metrics` on this port.
    Daemon(u16),
    /// The same, minus what it had processed before.
    Offset(u16, f64),
    /// Node-RED's flow counter, minus the probes and what came before.
    NodeRed(&'a NodeRed, f64),
}

impl Counter<'_> {
    async fn processed(&self) -> f64 {
        match self {
            Counter::Daemon(http) => metric(*http, "gridsentry_readings_total").await,
            Counter::Offset(http, base) => metric(*http, "gridsentry_readings_total").await - base,
            Counter::NodeRed(red, base) => red.count().await.map_or(0.0, |c| c as f64 - base),
        }
    }

    /// Waits until `n` are processed, or `within` passed (a system that lost readings would
    /// otherwise hold the whole run); false then.
    async fn reaches(&self, n: f64, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.processed().await < n {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    async fn wait_for(&self, n: u64) {
        self.reaches(n as f64, Duration::from_secs(600)).await;
    }
}

async fn metric(http: u16, name: &str) -> f64 {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/metrics")).await else { return 0.0 };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `n` readings as fast as the generator and broker go; returns the next message number.
async fn throughput(
    broker: &Mosquitto,
    counter: &Counter<'_>,
    pid: u32,
    n: u64,
    name: &str,
    ceiling: f64,
) -> u64 {
    let cpu0 = cpu_seconds(pid);
    let watch = CpuWatch::start(broker.pid().unwrap());
    let t0 = Instant::now();
    loadgen::publish(broker.port, CONNS, workload("bench", 0), 0, n, None).await;
    counter.wait_for(n).await;
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    println!("{name}_readings_per_s {rate:.0}");
    println!("{name}_share_of_ceiling_pct {:.0}", 100.0 * rate / ceiling);
    println!("{name}_cpu_s_throughput_phase {:.2}", cpu_seconds(pid) - cpu0);
    watch.print(&format!("{name}_throughput_"));
    n
}

/// The latency ladder: each offered load of [`ladder`] for a few seconds, paced, first with 1 %
/// of readings raising an order, then with 20 % (order churn); for each, `…latency_at RATE P50
/// P99` (publish → webhook, ms) and `…cpu_us_per_reading_at RATE CPU`, and where a load was not
/// processed within a minute after its end, `…behind_at RATE MISSING`. A load that was behind,
/// or whose p99 passed 2 s, ends its ladder (`…ladder_stopped_at RATE`). The 1 % run also prints
/// the figures of earlier runs under their old names (p99 at 10k/s, CPU per reading at 5k/s, at
/// 2k/s …); RSS at the end.
async fn fixed_rates(
    broker: &Mosquitto,
    counter: &Counter<'_>,
    pid: u32,
    mut next: u64,
    quick: bool,
    hooks: &Receiver,
    name: &str,
) {
    let secs = if quick { 3 } else { 10 };
    let mut signed = 0;
    for (load, hot_every) in [("", 100u64), ("churn_", 5)] {
        let (mut under_20, mut under_100) = (0, 0);
        for &rate in ladder(quick) {
            let n = rate * secs;
            let (cpu0, base) = (cpu_seconds(pid), counter.processed().await);
            let sent_from = now_ms();
            loadgen::publish(broker.port, 1, workload("bench", hot_every), next, n, Some(rate as f64)).await;
            next += n;
            let done = counter.reaches(base + n as f64, Duration::from_secs(60)).await;
            if !done {
                let missing = base + n as f64 - counter.processed().await;
                println!("{name}_{load}behind_at {rate} {missing:.0}");
            }
            let cpu = cpu_seconds(pid) - cpu0;
            let lat = latencies(hooks, sent_from, (n / hot_every) as usize, &mut signed).await;
            let p = |q: usize| lat.get(lat.len().saturating_sub(1) * q / 100).copied().unwrap_or(u64::MAX);
            let per = cpu * 1e6 / n as f64;
            println!("{name}_{load}latency_at {rate} {} {}", p(50), p(99));
            if done && p(99) <= 20 && under_20 == rate_before(quick, rate) {
                under_20 = rate;
            }
            if done && p(99) <= 100 && under_100 == rate_before(quick, rate) {
                under_100 = rate;
            }
            println!("{name}_{load}cpu_us_per_reading_at {rate} {per:.1}");
            println!("{name}_{load}webhooks_measured_at {rate} {}", lat.len());
            match (load, rate) {
                ("", 10_000) => println!("{name}_p99_ms {}\n{name}_p50_ms {}", p(99), p(50)),
                ("", 5_000) => println!("{name}_cpu_us_per_reading {per:.1}"),
                ("", 2_000) => println!("{name}_p99_2k_ms {}\n{name}_p50_2k_ms {}", p(99), p(50)),
                _ => {}
            }
            // Saturated: higher loads would only measure a growing backlog (and take minutes).
            if !done || p(99) > 2_000 {
                println!("{name}_{load}ladder_stopped_at {rate}");
                break;
            }
        }
        // The highest offered load up to which every step kept p99 within the bound.
        println!("{name}_{load}highest_rate_p99_within_20ms {under_20}");
        println!("{name}_{load}highest_rate_p99_within_100ms {under_100}");
        println!("{name}_{load}rss_mb {:.1}", proc_status(pid, "VmRSS:") / 1024.0);
    }
    println!("{name}_webhooks_signed {signed}");
    println!("{name}_rss_mb {:.1}", proc_status(pid, "VmRSS:") / 1024.0);
}

/// Publish → webhook latencies (ms) of the orders raised by readings stamped from `since_ms`
/// (sorted), waiting up to a minute for `want` of them; adds the signed requests to `signed`.
/// Takes the requests out of `hooks` (earlier ones are dropped).
async fn latencies(hooks: &Receiver, since_ms: u64, want: usize, signed: &mut usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lat = Vec::with_capacity(want);
    loop {
        for h in hooks.take() {
            *signed += usize::from(h.signed);
            if h.raised && h.ts >= since_ms {
                lat.push(h.received_ms.saturating_sub(h.ts));
            }
        }
        if lat.len() >= want || Instant::now() >= deadline {
            lat.sort_unstable();
            return lat;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `minutes` at 10k readings/s; RSS every 30 s; published = applied at the end.
async fn soak_run(broker: &Mosquitto, http: u16, pid: u32, minutes: u64) {
    let rate = 10_000u64;
    let total = rate * 60 * minutes;
    let port = broker.port;
    let publisher = tokio::spawn(async move {
        loadgen::publish(port, 1, workload("bench", 0), 0, total, Some(rate as f64)).await
    });
    let t0 = Instant::now();
    let mut samples = Vec::new();
    while !publisher.is_finished() {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let rss = proc_status(pid, "VmRSS:") / 1024.0;
        println!("soak_rss_mb {:.0} {rss:.1}", t0.elapsed().as_secs_f64());
        samples.push(rss);
    }
    publisher.await.unwrap();
    Counter::Daemon(http).wait_for(total).await;
    let applied = metric(http, "gridsentry_readings_total").await;
    println!("soak_published {total}");
    println!("soak_applied {applied:.0}");
    let warm = samples.len() / 5;
    let after: Vec<f64> = samples[warm.min(samples.len())..].to_vec();
    let (lo, hi) = after.iter().fold((f64::MAX, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
    println!("soak_rss_drift_mb {:.1}", if after.is_empty() { 0.0 } else { hi - lo });
}
