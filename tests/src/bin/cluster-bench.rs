//! Cluster mode's figures (`scripts/bench --cluster`): readings/s applied with one and two
//! workers, the workers' CPU per reading (against edge mode's), the stream's own ceiling (a raw
//! async JetStream publisher, `cluster_js_ceiling_readings_per_s`) beside the relay's figure,
//! and fail-over time over repeated SIGKILLs. Real engines on loopback: mosquitto, three nats-server nodes, PostgreSQL,
//! one relay, the release binaries.
//!
//! ```text
//! cluster-bench GRIDSENTRY_BINARY [--quick]
//! ```

use gridsentry_sensors::*;
use gridsentry_tests::cluster::{self, Opts};
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::nats::Nats;
use gridsentry_tests::postgres::Postgres;
use gridsentry_tests::{free_port, noise, Mosquitto};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const K: u32 = 8;

fn reading(devices: u64, i: u64, t0: u64) -> (String, Vec<u8>) {
    let site = format!("site-{}", i % devices);
    let header = Header {
        site: Id::new(&site).unwrap(),
        device: Id::new("dev-1").unwrap(),
        boot_id: 1,
        seq: (i / devices) as u32,
        time: Timestamp::Utc(t0 + i / 100),
        historical: false,
    };
    let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(55.0) }).unwrap();
    (format!("gs/v1/{site}/dev-1/noise"), payload)
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(bin: &Path, args: &[&str], cfg: &Path, env: &[(&str, &str)], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(bin)
        .args(args)
        .arg(cfg)
        .envs(env.iter().copied())
        .env("RUST_LOG", std::env::var("GS_BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The bench's worker: yellow noise orders after 60 s over 70 dB (the readings are at 55),
/// a receiver nobody listens on.
fn worker_config(dir: &Path, name: &str, http: u16, nats: &Nats) -> PathBuf {
    // Shipped defaults: no lease_ms line.
    let o = Opts { k: K, colour: "yellow", for_s: 60, lease_ms: None, ..Opts::default() };
    cluster::worker_config(dir, name, http, nats, "http://127.0.0.1:9", &o)
}

/// Devices whose highest applied sequence number is `seq`.
fn applied(url: &str, seq: i64) -> i64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.query_one("SELECT COUNT(*) FROM device_seq WHERE seq = $1 AND device LIKE 'site-%'", &[&seq])
                .unwrap()
                .get(0)
        })
        .join()
        .unwrap()
    })
}

async fn owned(http: u16) -> usize {
    cluster::owned(http).await.len()
}

/// Publishes `n` readings straight into the reading stream (async, up to 4,000 PubAcks
/// outstanding, each message with its own id) and returns readings/s once all are acked.
async fn js_ceiling(
    js: &async_nats::jetstream::Context,
    n: u64,
    message: impl Fn(u64) -> (String, Vec<u8>),
) -> f64 {
    use futures_util::StreamExt;
    use std::future::IntoFuture;
    type Ack = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;
    let mut pending = futures_util::stream::FuturesUnordered::<Ack>::new();
    let started = Instant::now();
    for i in 0..n {
        if pending.len() >= 4_000 {
            pending.next().await.unwrap().expect("a PubAck");
        }
        let (topic, payload) = message(i);
        let subject = gridsentry::cluster::stream::in_subject(&Topic::parse(&topic).expect("a topic"));
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(format!("ceiling-{i}"));
        let ack = js.send_publish(subject, msg).await.expect("published").into_future();
        pending.push(Box::pin(async move { ack.await.map(drop).map_err(|e| e.to_string()) }));
    }
    while let Some(ack) = pending.next().await {
        ack.expect("a PubAck");
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// The `p` quantile of sorted `v`.
fn pct(v: &[u64], p: f64) -> u64 {
    v.get(((v.len() as f64 * p).ceil() as usize).clamp(1, v.len().max(1)) - 1).copied().unwrap_or(0)
}

/// CPU seconds a process has used (user + system).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bin = PathBuf::from(args.get(1).expect("cluster-bench GRIDSENTRY_BINARY [--quick]"));
    let quick = args.iter().any(|a| a == "--quick");
    let (devices, per_device, kills, leader_kills) =
        if quick { (200u64, 300u64, 5, 3) } else { (300, 200, 20, 5) };
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    for workers in [1usize, 2] {
        let dir = tempfile::tempdir().unwrap();
        // GS_BENCH_LOG=info keeps the processes' logs (their directory is printed).
        if std::env::var("GS_BENCH_LOG").is_ok() {
            eprintln!("logs in {}", dir.path().display());
        }
        let pg = Postgres::start();
        let url = pg.database();
        let mut nats = Nats::start(K);
        let broker = Mosquitto::start();
        let relay_cfg = dir.path().join("relay.toml");
        std::fs::write(
            &relay_cfg,
            format!(
                "[relay]\nhttp = \"127.0.0.1:0\"\n\n[mqtt]\nhost = \"127.0.0.1\"\nport = {}\nclient_id = \"relay\"\n\n[cluster]\n{}partitions = {K}\n",
                broker.port,
                nats.toml(gridsentry_tests::nats::Role::Relay)
            ),
        )
        .unwrap();
        let mut procs =
            Procs(vec![spawn(&bin, &["relay", "--config"], &relay_cfg, &[], &dir.path().join("relay.log"))]);
        let ports: Vec<u16> = (0..workers).map(|_| free_port()).collect();
        for (i, port) in ports.iter().enumerate() {
            let cfg = worker_config(dir.path(), &format!("w{i}"), *port, &nats);
            procs.0.push(spawn(
                &bin,
                &["run", "--config"],
                &cfg,
                &[(cluster::PG_ENV, &url)],
                &dir.path().join(format!("w{i}.log")),
            ));
        }
        loop {
            let mut total = 0;
            for p in &ports {
                total += owned(*p).await;
            }
            if total == K as usize {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The relay's session: one probe round until something is applied.
        let messages: Messages = Arc::new(move |i| reading(devices, i, t0));
        while applied(&url, 0) < devices as i64 {
            loadgen::publish(broker.port, 1, messages.clone(), 0, devices, None).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let n = devices * (per_device - 1);
        let cpu0: f64 = procs.0[1..].iter().map(|c| cpu_s(c.id())).sum();
        let js = nats.admin().await;
        let in_stream = || async {
            match js.get_stream("GS_READINGS").await {
                Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
                Err(_) => 0,
            }
        };
        let before = in_stream().await;
        let started = Instant::now();
        loadgen::publish(broker.port, 4, messages.clone(), devices, n, None).await;
        let published = started.elapsed().as_secs_f64();
        let last = per_device as i64 - 1;
        let mut relayed = None;
        while applied(&url, last) < devices as i64 {
            if relayed.is_none() && in_stream().await >= before + n {
                relayed = Some(started.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let relayed = relayed.unwrap_or(secs);
        println!(
            "cluster_workers {workers} broker_took_per_s {:.0} relayed_per_s {:.0}",
            n as f64 / published,
            n as f64 / relayed
        );
        let cpu: f64 = procs.0[1..].iter().map(|c| cpu_s(c.id())).sum::<f64>() - cpu0;
        println!("cluster_workers {workers} readings {n} applied_per_s {:.0}", n as f64 / secs);
        println!(
            "cluster_workers {workers} worker_cpu_us_per_reading {:.1} relay_cpu_s {:.1}",
            cpu * 1e6 / n as f64,
            cpu_s(procs.0[0].id())
        );
        if workers == 1 {
            // The stream's own limit here: a raw publisher, workers paused (SIGSTOP) so that
            // only NATS and the publisher share the cores.
            let signal = |sig: &str| {
                for c in &procs.0[1..] {
                    let _ = Command::new("kill").arg(sig).arg(c.id().to_string()).status();
                }
            };
            signal("-STOP");
            // The relay alone, under the same conditions: the next n readings through the
            // broker, until the stream has them.
            let before = in_stream().await;
            let started = Instant::now();
            let next = per_device * devices;
            let later: Messages = Arc::new(move |i| reading(devices, next + i, t0));
            loadgen::publish(broker.port, 4, later, 0, n, None).await;
            while in_stream().await < before + n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let alone = n as f64 / started.elapsed().as_secs_f64();
            let rate =
                js_ceiling(&js, n, |i| reading(devices, (2 * per_device + 1_000) * devices + i, t0)).await;
            signal("-CONT");
            println!("cluster_relay_alone_readings_per_s {alone:.0}");
            println!("cluster_js_ceiling_readings_per_s {rate:.0}");
            println!("cluster_relay_share_of_js_ceiling_pct {:.0}", 100.0 * alone / rate);
        }
        if workers == 2 {
            // Fail-over as users feel it: SIGKILL one worker, publish the next reading of every
            // device at once, time until all are applied (every partition applying again at the
            // survivor), restart the victim and wait for the rebalance.
            let mut seq = per_device;
            let round = |seq: u64| {
                let (port, messages) = (broker.port, messages.clone());
                async move { loadgen::publish(port, 1, messages, seq * devices, devices, None).await }
            };
            let mut times = Vec::new();
            for k in 0..kills {
                let victim = 1 + k % 2;
                let survivor = ports[(k % 2) ^ 1];
                let _ = procs.0[victim].kill();
                let _ = procs.0[victim].wait();
                let t = Instant::now();
                round(seq).await;
                while applied(&url, seq as i64) < devices as i64 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                times.push(t.elapsed().as_millis() as u64);
                seq += 1;
                let name = format!("w{}", victim - 1);
                let cfg = dir.path().join(format!("{name}.toml"));
                procs.0[victim] = spawn(
                    &bin,
                    &["run", "--config"],
                    &cfg,
                    &[(cluster::PG_ENV, &url)],
                    &dir.path().join(format!("{name}.log")),
                );
                while owned(ports[victim - 1]).await == 0 || owned(survivor).await == K as usize {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            times.sort_unstable();
            println!(
                "cluster_failover_ms kills {} p50 {} p99 {} max {} (lease_ms {} shipped default; kill -> every partition applying)",
                times.len(),
                pct(&times, 0.5),
                pct(&times, 0.99),
                times[times.len() - 1],
                gridsentry::cluster::Config::DEFAULT_LEASE_MS
            );
            // A NATS stream leader SIGKILLed: time until every partition applies a reading
            // published after the kill (the election itself takes 4.6–8.5 s here).
            let admin = nats.admin().await;
            let mut stalls = Vec::new();
            for _ in 0..leader_kills {
                // The leader loss alone: partitions settled (K/2 each), the stream's replicas current.
                while owned(ports[0]).await != K as usize / 2 || owned(ports[1]).await != K as usize / 2 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                nats.wait_stream_healthy(&admin).await;
                let Some(leader) = nats.stream_leader(&admin).await else { continue };
                nats.kill(leader);
                let t = Instant::now();
                round(seq).await;
                while applied(&url, seq as i64) < devices as i64 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                stalls.push(t.elapsed().as_millis() as u64);
                eprintln!(
                    "leader kill (node {leader}) at {:?}: {} ms",
                    std::time::SystemTime::now(),
                    t.elapsed().as_millis()
                );
                seq += 1;
                nats.restart(leader);
            }
            stalls.sort_unstable();
            println!(
                "cluster_stall_max_ms={} leader_kills {} p50 {}",
                stalls.last().copied().unwrap_or(0),
                stalls.len(),
                pct(&stalls, 0.5)
            );
            if std::env::var("GS_BENCH_LOG").is_ok() {
                let _ = dir.keep();
                return;
            }
        }
    }
}
