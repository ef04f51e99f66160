//! Cluster mode on real engines: mosquitto, a three-node nats-server cluster with JetStream, and
//! PostgreSQL, each started here on loopback ports. Faults are SIGKILLs.

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use gridsentry_sensors::*;
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::nats::Nats;
use gridsentry_tests::postgres::Postgres;
use gridsentry_tests::{binary, free_port, noise, write_secret, DaemonProcess, Hooks, Mosquitto, TOKEN};
use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SITES: u64 = 30;

/// One cluster at a time: three NATS nodes, PostgreSQL, a broker, a relay and two workers per
/// test are as much as two cores carry without JetStream API timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Now, UTC ms (readings are stamped around the test's start).
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Reading `i`: site `i % SITES`, one device per site, sequence number `i / SITES`, at 80 dB(A).
fn reading(i: u64, boot: u32) -> (String, Vec<u8>) {
    static T0: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let t0 = *T0.get_or_init(now_ms);
    let (site, device) = (format!("site-{}", i % SITES), "dev-1".to_string());
    let header = Header {
        site: Id::new(&site).unwrap(),
        device: Id::new(&device).unwrap(),
        boot_id: boot,
        seq: (i / SITES) as u32,
        time: Timestamp::Utc(t0 + i),
        historical: false,
    };
    let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(80.0) }).unwrap();
    (format!("gs/v1/{site}/{device}/noise"), payload)
}

fn messages(boot: u32) -> Messages {
    Arc::new(move |i| reading(i, boot))
}

/// `gridsentry relay` on `broker` into `nats`, as a child process killed when dropped.
fn relay(dir: &std::path::Path, broker: u16, nats: &Nats, partitions: u32) -> DaemonProcess {
    let cfg = dir.join("relay.toml");
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nclient_id = \"relay-1\"\n\n\
             [cluster]\nnats = [{}]\npartitions = {partitions}\nreplicas = 3\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("relay.log")).unwrap();
    DaemonProcess::new(
        Command::new(binary())
            .args(["relay", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// Every message of the stream: (subject, message id).
async fn stream_contents(js: &jetstream::Context, expect: usize) -> Vec<(String, String)> {
    // After a node was killed the stream may still be electing a leader: try again a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let consumer = loop {
        let config = consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let attempt = match js.get_stream("GS_READINGS").await {
            Ok(stream) => stream.create_consumer(config).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match attempt {
            Ok(c) => break c,
            Err(e) => assert!(Instant::now() < deadline, "no consumer on the stream: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while out.len() < expect {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await else { break };
        let m = m.unwrap();
        let id =
            m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")).map(|v| v.to_string()).unwrap_or_default();
        out.push((m.subject.to_string(), id));
    }
    out
}

/// Publishes a probe reading (site `probe`) until it is in the stream: the relay has its broker
/// session (a broker keeps nothing for a session that does not exist yet).
async fn wait_relay(broker: u16, nats: &Nats) {
    let addrs: Vec<async_nats::ServerAddr> = nats.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = jetstream::new(async_nats::connect(addrs).await.unwrap());
    let probe: Messages = Arc::new(|_| {
        let header = Header {
            site: Id::new("probe").unwrap(),
            device: Id::new("p-1").unwrap(),
            boot_id: 1,
            seq: 0,
            time: Timestamp::Utc(now_ms()),
            historical: false,
        };
        let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(40.0) }).unwrap();
        ("gs/v1/probe/p-1/noise".to_string(), payload)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream_len(&js).await == 0 {
        assert!(Instant::now() < deadline, "the relay never subscribed");
        loadgen::publish(broker, 1, probe.clone(), 0, 1, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages in the stream now.
async fn stream_len(js: &jetstream::Context) -> u64 {
    match js.get_stream("GS_READINGS").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds `n` messages (panics after 60 s with what it holds).
async fn wait_stream(js: &jetstream::Context, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = js.get_stream("GS_READINGS").await {
            if let Ok(info) = s.info().await {
                if info.state.messages >= n {
                    assert_eq!(info.state.messages, n, "more messages than readings: duplicates");
                    return;
                }
                assert!(Instant::now() < deadline, "stream holds {} of {n}", info.state.messages);
            }
        }
        assert!(Instant::now() < deadline, "no stream GS_READINGS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_acks_what_jetstream_holds_partitions_by_site_and_never_doubles() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(4);
    let broker = Mosquitto::start_saving_every_change();
    let mut relay_process = relay(dir.path(), broker.port, &nats, 4);
    let addrs: Vec<async_nats::ServerAddr> = nats.urls().iter().map(|u| u.parse().unwrap()).collect();
    let js = jetstream::new(async_nats::connect(addrs).await.unwrap());
    // A first reading proves the relay subscribed (the broker keeps nothing for nobody).
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_len(&js).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the relay never subscribed: {}\n{}",
            std::fs::read_to_string(dir.path().join("relay.log")).unwrap_or_default(),
            nats.log(0)
        );
        loadgen::publish(broker.port, 1, messages(9), 0, 1, None).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stream_len(&js).await, 1, "the probe once, however often it was sent");

    // 3000 readings of 30 sites.
    loadgen::publish(broker.port, 2, messages(1), 0, 3000, None).await;
    wait_stream(&js, 3001).await;
    let contents = stream_contents(&js, 3001).await;
    let mut partition_of: HashMap<String, String> = HashMap::new();
    for (subject, _) in &contents {
        let t: Vec<&str> = subject.split('.').collect();
        assert_eq!((t[0], t[1]), ("gs", "p"), "{subject}");
        let previous = partition_of.insert(t[3].to_string(), t[2].to_string());
        assert!(previous.is_none_or(|p| p == t[2]), "site {} in two partitions", t[3]);
    }
    let used: HashSet<&String> = partition_of.values().collect();
    assert!(used.len() > 1 && used.iter().all(|p| p.parse::<u32>().unwrap() < 4), "{used:?}");

    // The same readings again (a device resending): dropped by message id.
    loadgen::publish(broker.port, 2, messages(1), 0, 500, None).await;
    loadgen::publish(broker.port, 1, messages(2), 0, 1, None).await;
    wait_stream(&js, 3002).await;

    // The relay SIGKILLed while readings flow: what it had not acked comes again from the
    // broker, what it had published is not doubled.
    let publishing = tokio::spawn(loadgen::publish(broker.port, 2, messages(3), 0, 3000, Some(3000.0)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_len(&js).await < 3002 + 300 {
        assert!(Instant::now() < deadline, "the relay does not move readings");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay_process.kill().unwrap();
    relay_process.wait().unwrap();
    let relay_process = relay(dir.path(), broker.port, &nats, 4);

    // One NATS node SIGKILLed: the stream keeps a quorum of two.
    nats.kill(1);
    publishing.await.unwrap();
    loadgen::publish(broker.port, 1, messages(4), 0, 1000, None).await;
    wait_stream(&js, 3002 + 3000 + 1000).await;
    let contents = stream_contents(&js, 7002).await;
    let ids: HashSet<&String> = contents.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 7002, "every reading once");
    for i in [0, 2999] {
        let (_, payload) = reading(i, 3);
        let r = codec::decode(&payload).unwrap();
        let id = format!("{}/{}/3/{}/noise", r.header.site.as_str(), r.header.device.as_str(), r.header.seq);
        assert!(ids.contains(&id), "{id} missing");
    }
    nats.restart(1);
    drop(relay_process);
}

/// A cluster worker (`gridsentry run` with `[cluster]`) with API port `http`.
fn worker(dir: &std::path::Path, name: &str, http: u16, pg: &str, nats: &Nats, hooks: &str) -> DaemonProcess {
    worker_with(dir, name, http, pg, nats, hooks, &[])
}

/// [`worker`] with `partitions = k` in its config (the NATS mapping says 4).
fn worker_k(
    dir: &std::path::Path,
    name: &str,
    http: u16,
    pg: &str,
    nats: &Nats,
    hooks: &str,
    k: u32,
) -> DaemonProcess {
    worker_with(dir, name, http, pg, nats, hooks, &[("GS_TEST_K", &k.to_string())])
}

/// [`worker`] with extra environment (the debug build's test hooks).
fn worker_with(
    dir: &std::path::Path,
    name: &str,
    http: u16,
    pg: &str,
    nats: &Nats,
    hooks: &str,
    env: &[(&str, &str)],
) -> DaemonProcess {
    let (token, secret) = (dir.join("token"), dir.join("secret"));
    write_secret(&token, TOKEN);
    write_secret(&secret, gridsentry_tests::SECRET);
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
http = "127.0.0.1:{http}"
api_token = {{ file = "{token}" }}

[cluster]
postgres = {{ env = "GS_TEST_PG" }}
nats = [{urls}]
partitions = {k}
worker_id = "{name}"
lease_ms = 1500

[[receiver]]
name = "grid"
url = "{hooks}/grid"
secret = {{ file = "{secret}" }}
timeout_ms = 500

[[rule]]
id = "plaza-noise"
colour = "orange"
condition = {{ type = "threshold", stream = "noise", field = "laeq_db", above = 70.0, clear = 65.0, for_s = 0, clear_for_s = 0 }}
"#,
            k = env.iter().find(|(k, _)| *k == "GS_TEST_K").map_or("4", |(_, v)| v),
            token = token.display(),
            secret = secret.display(),
            urls = urls.join(", "),
        ),
    )
    .unwrap();
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log"))).unwrap();
    DaemonProcess::new(
        Command::new(binary())
            .args(["run", "--config"])
            .arg(&cfg)
            .env("GS_TEST_PG", pg)
            .env("RUST_LOG", "info,gridsentry::cluster=debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The partitions a worker's `/readyz` says it owns (empty while it does not answer).
async fn owned(http: u16) -> Vec<u32> {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await else { return Vec::new() };
    let text = r.text().await.unwrap_or_default();
    let Some(list) = text.trim().strip_prefix("ready; partitions owned:") else { return Vec::new() };
    list.split(',').filter_map(|p| p.split_whitespace().next()?.parse().ok()).collect()
}

/// Each device's highest applied sequence number and whether every one below it was applied.
fn applied(pg: &Postgres, db: &str) -> HashMap<String, (u32, bool)> {
    off_runtime(|| applied_now(pg, db))
}

/// Waits until some device's readings up to `seq` are applied (the stream is flowing).
async fn past(pg: &Postgres, db: &str, seq: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !applied(pg, db).values().any(|(s, _)| *s >= seq) {
        assert!(Instant::now() < deadline, "nothing applied past {seq}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `f` on a thread of its own (the synchronous PostgreSQL client runs its own runtime).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn applied_now(pg: &Postgres, db: &str) -> HashMap<String, (u32, bool)> {
    use gridsentry_sensors::seq::{SeqWindow, Verdict};
    let mut c = postgres::Client::connect(&pg.url(db), postgres::NoTls).unwrap();
    let mut out = HashMap::new();
    for row in c.query("SELECT device, boot, seq, seen FROM device_seq", &[]).unwrap() {
        let (device, boot, seq, seen): (String, i64, i64, Option<Vec<u8>>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !device.starts_with("site-") {
            continue;
        }
        let w = SeqWindow::from_parts(boot as u32, seq as u32, seen.as_deref());
        let complete = (0..=seq as u32).all(|s| w.check(boot as u32, s) == Verdict::Repeat);
        out.insert(device, (seq as u32, complete));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_mid_stream_hands_its_partitions_over_nothing_lost_nothing_doubled() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start();
    let url = pg.database();
    let db = url.split("dbname=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    let nats = Nats::start(4);
    let broker = Mosquitto::start_saving_every_change();
    let hooks = Hooks::start().await;
    let _relay = relay(dir.path(), broker.port, &nats, 4);
    wait_relay(broker.port, &nats).await;
    let (h1, h2) = (free_port(), free_port());
    let mut w1 = worker(dir.path(), "w1", h1, &url, &nats, &hooks.url);
    let _w2 = worker(dir.path(), "w2", h2, &url, &nats, &hooks.url);
    let log =
        |name: &str| std::fs::read_to_string(dir.path().join(format!("{name}.log"))).unwrap_or_default();
    // Both up, the four partitions shared two and two.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (owned(h1).await, owned(h2).await);
        if a.len() == 2 && b.len() == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not shared: {a:?} {b:?}\n{}\n{}",
            log("w1"),
            log("w2")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Wave 1: ten readings per device, every device's order raised.
    loadgen::publish(broker.port, 2, messages(1), 0, 10 * SITES, None).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while applied(&pg, &db).values().filter(|(seq, complete)| *seq == 9 && *complete).count() < SITES as usize
    {
        if Instant::now() > deadline {
            panic!("wave 1 not applied: {:?}\n{}\n{}", applied(&pg, &db), log("w1"), log("w2"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Wave 2, with w1 SIGKILLed a third of the way in.
    let publishing =
        tokio::spawn(loadgen::publish(broker.port, 2, messages(1), 10 * SITES, 30 * SITES, Some(600.0)));
    // A third of the way in: some device's readings past its 19th are applied.
    past(&pg, &db, 19).await;
    w1.kill().unwrap();
    w1.wait().unwrap();
    let killed = Instant::now();
    loop {
        if owned(h2).await.len() == 4 {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "w2 never took over: {}", log("w2"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failover = killed.elapsed();
    publishing.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = applied(&pg, &db);
        if a.len() == SITES as usize && a.values().all(|(seq, _)| *seq == 39) {
            assert!(a.values().all(|(_, complete)| *complete), "a reading was skipped: {a:?}");
            break;
        }
        assert!(Instant::now() < deadline, "wave 2 not applied: {a:?}\n{}", log("w2"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One order per device, raised once: nothing doubled across the hand-over.
    let (orders, raised, epochs) = off_runtime(|| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let orders: i64 = c.query_one("SELECT COUNT(*) FROM orders", &[]).unwrap().get(0);
        let raised: i64 =
            c.query_one("SELECT COUNT(*) FROM order_events WHERE kind = 'raised'", &[]).unwrap().get(0);
        let epochs: Vec<i64> = c
            .query("SELECT epoch FROM partitions ORDER BY p", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (orders, raised, epochs)
    });
    assert_eq!((orders, raised), (SITES as i64, SITES as i64));
    assert!(epochs.iter().any(|e| *e >= 2), "taken over partitions have a new epoch: {epochs:?}");
    // Every order's notification reached the receiver (at least once: a worker killed between
    // a delivery and its bookkeeping may have it sent again, under the same idempotency key).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let keys: HashSet<String> = hooks.all().into_iter().map(|h| h.key).collect();
        if keys.len() == SITES as usize {
            assert!(keys.iter().all(|k| k.ends_with("-1")), "one notification per raise: {keys:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{} of {SITES} orders notified", keys.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("cluster_failover_ms {}", failover.as_millis());
}

/// Sends `signal` (STOP, CONT) to a process.
fn signal(pid: u32, signal: &str) {
    assert!(Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap().success());
}

/// Everything the suite sets up for two workers.
struct Cluster {
    dir: tempfile::TempDir,
    pg: Postgres,
    url: String,
    db: String,
    _nats: Nats,
    broker: Mosquitto,
    hooks: Hooks,
    _relay: DaemonProcess,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let pg = Postgres::start();
        let url = pg.database();
        let db = url.split("dbname=").nth(1).unwrap().split(' ').next().unwrap().to_string();
        let nats = Nats::start(4);
        let broker = Mosquitto::start_saving_every_change();
        let hooks = Hooks::start().await;
        let relay = relay(dir.path(), broker.port, &nats, 4);
        wait_relay(broker.port, &nats).await;
        Cluster { dir, pg, url, db, _nats: nats, broker, hooks, _relay: relay }
    }

    /// A worker's whole log.
    fn raw_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The last lines of a worker's log (NOTICEs of concurrent schema creation left out).
    fn log(&self, name: &str) -> String {
        let all = self.raw_log(name);
        let lines: Vec<&str> = all.lines().filter(|l| !l.contains("NOTICE")).collect();
        format!("--- {name} ---\n{}", lines[lines.len().saturating_sub(25)..].join("\n"))
    }

    /// Waits until every device's readings up to `seq` are applied, with no gap.
    async fn applied_up_to(&self, seq: u32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let a = applied(&self.pg, &self.db);
            if a.len() == SITES as usize && a.values().all(|(s, _)| *s == seq) {
                assert!(a.values().all(|(_, complete)| *complete), "a reading was skipped: {a:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not applied up to {seq}: {a:?}\n{}\n{}",
                self.log("w1"),
                self.log("w2")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (orders, raised events).
    fn orders(&self) -> (i64, i64) {
        off_runtime(|| {
            let mut c = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            let orders: i64 = c.query_one("SELECT COUNT(*) FROM orders", &[]).unwrap().get(0);
            let raised: i64 =
                c.query_one("SELECT COUNT(*) FROM order_events WHERE kind = 'raised'", &[]).unwrap().get(0);
            (orders, raised)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_wakes_up_fenced_and_nothing_is_applied_twice() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    let (h1, h2) = (free_port(), free_port());
    // w1 sleeps 4 s before its second commit of readings: it is paused (SIGSTOP) right there,
    // with a batch in hand.
    let mut w1 = worker_with(
        c.dir.path(),
        "w1",
        h1,
        &c.url,
        &c._nats,
        &c.hooks.url,
        &[("GRIDSENTRY_TEST_SLEEP_BEFORE_COMMIT", "2:4000")],
    );
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(owned(h1).await.len() == 2 && owned(h2).await.len() == 2) {
        assert!(Instant::now() < deadline, "partitions not shared\n{}\n{}", c.log("w1"), c.log("w2"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Readings arrive one device at a time, so each partition commits several times.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut from = 0;
    while !c.raw_log("w1").contains("test hook: sleeping before commit 2") {
        assert!(Instant::now() < deadline, "w1 never reached its second commit\n{}", c.log("w1"));
        if from < 10 * SITES {
            loadgen::publish(c.broker.port, 1, messages(1), from, SITES, None).await;
            from += SITES;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal(w1.id(), "STOP");
    let paused = Instant::now();
    // w2 notices the silence after the lease, ends w1's lock connection and takes over.
    while owned(h2).await.len() < 4 {
        if paused.elapsed() > Duration::from_secs(30) {
            let activity = c.pg.psql(
                &c.db,
                "SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity",
            );
            let locks = c.pg.psql(&c.db, "SELECT pid, locktype, classid, objid, mode, granted FROM pg_locks WHERE NOT granted OR locktype = 'advisory'");
            panic!("w2 never took over\n{}\n{activity}\n{locks}", c.log("w2"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = paused.elapsed();
    if from < 10 * SITES {
        loadgen::publish(c.broker.port, 1, messages(1), from, 10 * SITES - from, None).await;
    }
    c.applied_up_to(9).await;
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    // w1 wakes up with its old batch: the commit is refused and counted.
    signal(w1.id(), "CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fenced =
            gridsentry_tests::metric(h1, "gridsentry_cluster_fenced_commits_total").await.unwrap_or(0);
        if fenced >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no fenced commit counted\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.raw_log("w1").contains("fenced"), "{}", c.log("w1"));
    // Nothing it held was applied twice, and the cluster goes on.
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    loadgen::publish(c.broker.port, 2, messages(1), 10 * SITES, 10 * SITES, None).await;
    c.applied_up_to(19).await;
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    let _ = w1.kill();
    println!("cluster_takeover_after_pause_ms {}", takeover.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_stalls_the_workers_then_they_resume_losing_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start().await;
    let (h1, h2) = (free_port(), free_port());
    let _w1 = worker(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url);
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(owned(h1).await.len() == 2 && owned(h2).await.len() == 2) {
        assert!(Instant::now() < deadline, "partitions not shared\n{}\n{}", c.log("w1"), c.log("w2"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loadgen::publish(c.broker.port, 2, messages(1), 0, 10 * SITES, None).await;
    c.applied_up_to(9).await;
    // Readings keep coming while the database restarts.
    let publishing =
        tokio::spawn(loadgen::publish(c.broker.port, 2, messages(1), 10 * SITES, 30 * SITES, Some(600.0)));
    past(&c.pg, &c.db, 14).await;
    let restarted = Instant::now();
    c.pg.restart_fast();
    publishing.await.unwrap();
    c.applied_up_to(39).await;
    let resumed = restarted.elapsed();
    assert_eq!(c.orders(), (SITES as i64, SITES as i64), "nothing applied twice");
    println!("cluster_postgres_restart_to_all_applied_ms {}", resumed.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_partitions_disagree_with_the_nats_mapping_says_so_and_is_not_ready() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    // Readings of 30 sites land in the mapping's 4 partitions.
    loadgen::publish(c.broker.port, 1, messages(1), 0, SITES, None).await;
    let http = free_port();
    let _w = worker_k(c.dir.path(), "w1", http, &c.url, &c._nats, &c.hooks.url, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            if status == 503 && text.contains("partition(K, 1) mapping and [cluster] partitions disagree") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no readiness problem reported\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.raw_log("w1").contains("readings in partitions no worker reads"), "{}", c.log("w1"));
}
