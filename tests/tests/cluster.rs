//! Cluster mode on real engines: mosquitto, a three-node nats-server cluster with JetStream, and
//! PostgreSQL, each started here on loopback ports. Faults are SIGKILLs.

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use gridsentry_sensors::*;
use gridsentry_tests::cluster::{owned, worker_config, Opts, PG_ENV};
use gridsentry_tests::loadgen::{self, Messages};
use gridsentry_tests::nats::{Nats, Role};
use gridsentry_tests::postgres::Postgres;
use gridsentry_tests::victoria::Victoria;
use gridsentry_tests::{binary, free_port, noise, DaemonProcess, Hooks, Mosquitto, TOKEN};
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

/// A noise reading of `site`/`device` (boot, sequence number, device time, dB(A)): its topic and
/// JSON payload.
fn noise_reading(
    site: &str,
    device: &str,
    (boot, seq, at_ms): (u32, u32, u64),
    db: f32,
) -> (String, Vec<u8>) {
    let header = Header {
        site: Id::new(site).unwrap(),
        device: Id::new(device).unwrap(),
        boot_id: boot,
        seq,
        time: Timestamp::Utc(at_ms),
        historical: false,
    };
    let payload = codec::encode_vec(Format::Json, &Reading { header, body: noise(db) }).unwrap();
    (format!("gs/v1/{site}/{device}/noise"), payload)
}

/// Reading `i`: site `i % SITES`, one device per site, sequence number `i / SITES`, at 80 dB(A).
fn reading(i: u64, boot: u32) -> (String, Vec<u8>) {
    static T0: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let t0 = *T0.get_or_init(now_ms);
    noise_reading(&format!("site-{}", i % SITES), "dev-1", (boot, (i / SITES) as u32, t0 + i), 80.0)
}

fn messages(boot: u32) -> Messages {
    Arc::new(move |i| reading(i, boot))
}

/// `gridsentry relay` on `broker` into `nats`, as a child process killed when dropped.
fn relay(dir: &std::path::Path, broker: u16, nats: &Nats, partitions: u32) -> DaemonProcess {
    let mqtt = format!("[mqtt]\nhost = \"127.0.0.1\"\nport = {broker}\nclient_id = \"relay-1\"\n");
    relay_with(dir, "relay", &mqtt, nats, partitions)
}

/// The port of relay `name`'s endpoints.
fn relay_http(dir: &std::path::Path, name: &str) -> u16 {
    std::fs::read_to_string(dir.join(format!("{name}.http"))).unwrap().parse().unwrap()
}

/// A relay named `name` whose config has `sources` (`[mqtt]`, `[[modbus]]`...).
fn relay_with(
    dir: &std::path::Path,
    name: &str,
    sources: &str,
    nats: &Nats,
    partitions: u32,
) -> DaemonProcess {
    let cfg = dir.join(format!("{name}.toml"));
    let http = free_port();
    std::fs::write(dir.join(format!("{name}.http")), http.to_string()).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "[relay]\nhttp = \"127.0.0.1:{http}\"\n\n[cluster]\n{}partitions = {partitions}\nreplicas = 3\n\n{sources}",
            nats.toml(Role::Relay)
        ),
    )
    .unwrap();
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log"))).unwrap();
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
    let js = nats.admin().await;
    let probe: Messages = Arc::new(|_| noise_reading("probe", "p-1", (1, 0, now_ms()), 40.0));
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
    let js = nats.admin().await;
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

    // A gateway's link flaps: its last will (offline) and birth (online) carry the same boot and
    // sequence number every time; each change reaches the stream (a second "offline" dropped as
    // a repeat would raise no order for a wristband gateway that went offline again).
    let status = |state: DeviceState| -> Messages {
        Arc::new(move |_| {
            let header = Header {
                site: Id::new("site-0").unwrap(),
                device: Id::new("gw-1").unwrap(),
                boot_id: 5,
                seq: 0,
                time: Timestamp::Utc(now_ms()),
                historical: false,
            };
            let body = Body::Status(StatusReport {
                state,
                firmware: "gw".try_into().unwrap(),
                dropped: 0,
                slot: Default::default(),
            });
            let payload = codec::encode_vec(Format::Json, &Reading { header, body }).unwrap();
            ("gs/v1/site-0/gw-1/status".to_string(), payload)
        })
    };
    let mut expect = 7002;
    let mut second = now_ms() / 1000;
    for state in [DeviceState::Offline, DeviceState::Online, DeviceState::Offline, DeviceState::Online] {
        // The next change comes in a later second than the last one (a real flap takes longer).
        while now_ms() / 1000 == second {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        second = now_ms() / 1000;
        loadgen::publish(broker.port, 1, status(state), 0, 1, None).await;
        expect += 1;
        wait_stream(&js, expect).await;
    }
    drop(relay_process);
}

/// A cluster worker (`gridsentry run` with `[cluster]`) with API port `http`.
fn worker(dir: &std::path::Path, name: &str, http: u16, pg: &str, nats: &Nats, hooks: &str) -> DaemonProcess {
    worker_with(dir, name, http, pg, nats, hooks, &Opts::default())
}

/// [`worker`] with [`Opts`].
fn worker_with(
    dir: &std::path::Path,
    name: &str,
    http: u16,
    pg: &str,
    nats: &Nats,
    hooks: &str,
    o: &Opts,
) -> DaemonProcess {
    let cfg = worker_config(dir, name, http, nats, hooks, o);
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log"))).unwrap();
    DaemonProcess::new(
        Command::new(binary())
            .args(["run", "--config"])
            .arg(&cfg)
            .env(PG_ENV, pg)
            .env("RUST_LOG", "info,gridsentry::cluster=debug")
            .envs(o.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
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

/// A red order's dispatch deadline in the fail-over test: wave 1, the kill and the hand-over
/// (~3 s here) come before it, so the surviving worker's timers must meet it.
const DISPATCH_S: i64 = 15;

/// Each device's highest applied sequence number and partition.
fn seq_and_part(pg: &Postgres, db: &str) -> HashMap<String, (i64, i64)> {
    off_runtime(|| {
        let mut c = postgres::Client::connect(&pg.url(db), postgres::NoTls).unwrap();
        c.query("SELECT device, seq, part FROM device_seq WHERE device LIKE 'site-%'", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sigkilled_mid_stream_hands_its_partitions_over_nothing_lost_nothing_doubled() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    // Every point written is kept, repeats included: the test counts them.
    let vm = Victoria::start_without_dedup();
    let opts = Opts {
        colour: "red",
        extra: format!(
            "[influx]\nurl = \"{}\"\nlinger_ms = 100\nretry_initial_ms = 50\nretry_max_ms = 500\n\n\
             [sla.red]\ndispatch_s = {DISPATCH_S}\non_site_s = 3600\nreinforce_s = 7200\nremind_s = 3600\n",
            vm.url()
        ),
        // The shipped lease: a SIGKILLed worker's share is taken when its sessions are gone.
        lease_ms: None,
        ..Opts::default()
    };
    let (h1, h2) = (free_port(), free_port());
    let mut w1 = worker_with(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url, &opts);
    let _w2 = worker_with(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url, &opts);
    c.shared(h1, h2).await;
    // w1's config started a second time on this machine would share its spool: refused.
    let again = Command::new(binary())
        .args(["run", "--config"])
        .arg(c.dir.path().join("w1.toml"))
        .env(PG_ENV, &c.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && stderr.contains("in use by another gridsentry process"), "{stderr}");
    // Wave 1: ten readings per device, every device's red order raised.
    loadgen::publish(c.broker.port, 2, messages(1), 0, 10 * SITES, None).await;
    c.applied_up_to(9).await;
    let w1_parts: HashSet<i64> = owned(h1).await.into_iter().map(i64::from).collect();
    assert_eq!(w1_parts.len(), 2);
    // Wave 2, with w1 SIGKILLed a third of the way in.
    let publishing =
        tokio::spawn(loadgen::publish(c.broker.port, 2, messages(1), 10 * SITES, 30 * SITES, Some(600.0)));
    past(&c.pg, &c.db, 19).await;
    w1.kill().unwrap();
    w1.wait().unwrap();
    let killed = Instant::now();
    let at_kill = seq_and_part(&c.pg, &c.db);
    // Fail-over: from the kill to the first reading of w1's partitions applied by w2.
    loop {
        let now = seq_and_part(&c.pg, &c.db);
        let moved = now.iter().any(|(d, (seq, part))| {
            w1_parts.contains(part) && at_kill.get(d).is_none_or(|(before, _)| seq > before)
        });
        if moved {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "w2 never took over: {}", c.log("w2"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let failover = killed.elapsed();
    // w2 owns every partition (its /readyz may be busy a moment on a loaded machine: asked again).
    readyz_until(h2, 30, |s, t| s == 200 && t.matches("(epoch").count() == 4, || c.log("w2")).await;
    publishing.await.unwrap();
    c.applied_up_to(39).await;
    let applied: usize = applied(&c.pg, &c.db)
        .values()
        .map(|(seq, complete)| if *complete { *seq as usize + 1 } else { 0 })
        .sum();
    // One order per device, raised once: nothing doubled across the hand-over.
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    let sql = |q: &'static str| c.pg.psql(&c.db, q);
    let duplicate_open = sql("SELECT COUNT(*) FROM (SELECT 1 FROM orders WHERE state NOT IN ('resolved', 'closed') GROUP BY rule, subject HAVING COUNT(*) > 1) d");
    let epochs = sql("SELECT string_agg(epoch::text, ',' ORDER BY p) FROM partitions");
    assert!(epochs.split(',').any(|e| e.trim().parse::<i64>().unwrap() >= 2), "a new epoch: {epochs}");

    // Red orders across the fail-over. Five of w1's are dispatched through w2 before their
    // deadline; the others miss it, and w2's timers (w1 is dead) escalate each exactly once.
    let orders: Vec<(i64, i64, i64)> = off_runtime(|| {
        let mut pg = postgres::Client::connect(&c.url, postgres::NoTls).unwrap();
        pg.query("SELECT id, part, deadlines_from_ms FROM orders ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    });
    let http = reqwest::Client::new();
    let mut dispatched = HashSet::new();
    for (id, _, from) in orders.iter().filter(|(_, part, _)| w1_parts.contains(part)).take(5) {
        let r = http
            .post(format!("http://127.0.0.1:{h2}/api/v1/orders/{id}/dispatch"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "why": "duty officer" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "dispatch {id}: {} {}", r.status(), r.text().await.unwrap());
        assert!(
            (now_ms() as i64) < from + DISPATCH_S * 1000,
            "set-up too slow: dispatched after the deadline"
        );
        dispatched.insert(*id);
    }
    let escalations = || -> Vec<(i64, i64, String)> {
        off_runtime(|| {
            let mut pg = postgres::Client::connect(&c.url, postgres::NoTls).unwrap();
            pg.query(
                "SELECT order_id, at_ms, why FROM order_events WHERE kind = 'escalated' AND who = 'sla'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(DISPATCH_S as u64 + 30);
    while escalations().len() < orders.len() - dispatched.len() {
        assert!(Instant::now() < deadline, "escalations: {:?}\n{}", escalations(), c.log("w2"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut late_ms = 0;
    for (id, _, from) in &orders {
        let mine: Vec<_> = escalations().into_iter().filter(|e| e.0 == *id).collect();
        if dispatched.contains(id) {
            assert!(mine.is_empty(), "order {id} was dispatched in time: {mine:?}");
            continue;
        }
        assert_eq!(mine.len(), 1, "order {id}: one escalation: {mine:?}");
        let (_, at, why) = &mine[0];
        assert!(why.contains("dispatch deadline"), "{why}");
        let due = from + DISPATCH_S * 1000;
        assert!(*at >= due, "order {id} escalated before its deadline");
        late_ms = late_ms.max(at - due);
    }
    assert!(late_ms < 3000, "an escalation came {late_ms} ms after its deadline");
    // Every raise reached the receiver well inside the dispatch deadline, and every
    // escalation was sent too (at least once: same idempotency key if sent twice).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hooks = c.hooks.all();
        let raised: HashMap<i64, u64> = hooks
            .iter()
            .filter(|h| h.body["event"] == "raised")
            .map(|h| (h.body["order_id"].as_i64().unwrap(), h.received_ms))
            .collect();
        let escalated: HashSet<i64> = hooks
            .iter()
            .filter(|h| h.body["event"] == "escalated")
            .map(|h| h.body["order_id"].as_i64().unwrap())
            .collect();
        if raised.len() == orders.len() && escalated.len() == orders.len() - dispatched.len() {
            for (id, _, from) in &orders {
                let took = raised[id] as i64 - from;
                assert!(took < DISPATCH_S * 1000 / 3, "order {id} reached the receiver after {took} ms");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} raises, {} escalations notified",
            raised.len(),
            escalated.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The time series: every reading stored, w1's unstored tail written by w2.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (stored, repeats) = loop {
        let series = vm.export("noise_seq").await;
        let mut per_device: HashMap<String, Vec<i64>> = HashMap::new();
        for s in series.iter().filter(|s| s.labels["site"].starts_with("site-")) {
            let seqs = per_device.entry(s.labels["site"].clone()).or_default();
            seqs.extend(s.samples.iter().map(|(_, v)| *v as i64));
        }
        let distinct: usize = per_device.values().map(|v| v.iter().collect::<HashSet<_>>().len()).sum();
        let total: usize = per_device.values().map(Vec::len).sum();
        if distinct == 40 * SITES as usize {
            break (distinct, total - distinct);
        }
        if Instant::now() >= deadline {
            let taken = |n: &str| {
                c.raw_log(n)
                    .lines()
                    .filter(|l| l.contains("partition taken") || l.contains("stopped") || l.contains("WARN"))
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            panic!(
                "{distinct} of {} readings stored\n--- w1 ---\n{}\n--- w2 ---\n{}",
                40 * SITES,
                taken("w1"),
                taken("w2")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let published = 40 * SITES as usize;
    println!(
        "cluster published={published} applied={applied} duplicate_open_orders={} lost={} failover_ms={}",
        duplicate_open.trim(),
        published - applied,
        failover.as_millis()
    );
    println!(
        "cluster_red_orders={} dispatched_in_time={} escalated_once={} worst_escalation_late_ms={late_ms} series_stored={stored} series_written_twice={repeats}",
        orders.len(),
        dispatched.len(),
        orders.len() - dispatched.len()
    );
    assert_eq!((applied, duplicate_open.trim()), (published, "0"));
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

    /// Waits until two workers (API ports `h1`, `h2`) own two partitions each.
    async fn shared(&self, h1: u16, h2: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(owned(h1).await.len() == 2 && owned(h2).await.len() == 2) {
            assert!(
                Instant::now() < deadline,
                "partitions not shared\n{}\n{}",
                self.log("w1"),
                self.log("w2")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A worker's whole log.
    fn raw_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The last lines of a worker's log (NOTICEs of concurrent schema creation left out).
    fn log(&self, name: &str) -> String {
        let all = self.raw_log(name);
        let lines: Vec<&str> =
            all.lines().filter(|l| !l.contains("NOTICE") && !l.contains("cluster: round")).collect();
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
    let opts = Opts { env: vec![("GRIDSENTRY_TEST_SLEEP_BEFORE_COMMIT", "2:4000")], ..Opts::default() };
    let mut w1 = worker_with(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url, &opts);
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    c.shared(h1, h2).await;
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

/// A worker's console feed (`/api/v1/events`): the order transitions it pushes. Subscribed when
/// this returns.
async fn console_feed(http: u16) -> tokio::sync::mpsc::UnboundedReceiver<serde_json::Value> {
    let mut r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http}/api/v1/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (mut text, mut event) = (String::new(), String::new());
        while let Ok(Some(chunk)) = r.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                if let Some(e) = line.trim_end().strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.trim_end().strip_prefix("data: ") {
                    if event == "order" && tx.send(serde_json::from_str(d).unwrap()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_stalls_the_workers_then_they_resume_losing_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start().await;
    let (h1, h2) = (free_port(), free_port());
    let _w1 = worker(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url);
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    c.shared(h1, h2).await;
    // The console on w1 hears every order raised, w2's partitions' too.
    let mut feed = console_feed(h1).await;
    loadgen::publish(c.broker.port, 2, messages(1), 0, 10 * SITES, None).await;
    c.applied_up_to(9).await;
    let mut heard = HashSet::new();
    while heard.len() < SITES as usize {
        let change = tokio::time::timeout(Duration::from_secs(30), feed.recv())
            .await
            .unwrap_or_else(|_| panic!("the console heard {} of {SITES} raises", heard.len()))
            .unwrap();
        if change["event"] == "raised" {
            heard.insert(change["order_id"].as_i64().unwrap());
        }
    }
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
    let _w = worker_with(
        c.dir.path(),
        "w1",
        http,
        &c.url,
        &c._nats,
        &c.hooks.url,
        &Opts { k: 2, ..Opts::default() },
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_every_partition_and_the_ones_taken_later() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    // Both start with a 90 dB limit: the 80 dB readings raise nothing.
    let strict = Opts { above: 90.0, ..Opts::default() };
    let (h1, h2) = (free_port(), free_port());
    let w1 = worker_with(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url, &strict);
    let mut w2 = worker_with(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url, &strict);
    c.shared(h1, h2).await;
    loadgen::publish(c.broker.port, 2, messages(1), 0, 10 * SITES, None).await;
    c.applied_up_to(9).await;
    assert_eq!(c.orders(), (0, 0));
    // The limit becomes 70 dB in both files; SIGHUP reloads each worker's two partitions.
    for (name, http, pid) in [("w1", h1, w1.id()), ("w2", h2, w2.id())] {
        worker_config(c.dir.path(), name, http, &c._nats, &c.hooks.url, &Opts::default());
        signal(pid, "HUP");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in ["w1", "w2"] {
        while c.raw_log(name).matches("configuration reloaded").count() < 2 {
            assert!(Instant::now() < deadline, "{name} did not reload\n{}", c.log(name));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // w2 dies: w1 takes its partitions, which must run the reloaded rules too.
    w2.kill().unwrap();
    w2.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while owned(h1).await.len() < 4 {
        assert!(Instant::now() < deadline, "w1 never took over\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loadgen::publish(c.broker.port, 2, messages(1), 10 * SITES, 10 * SITES, None).await;
    c.applied_up_to(19).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.orders() != (SITES as i64, SITES as i64) {
        assert!(Instant::now() < deadline, "orders {:?}\n{}", c.orders(), c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // SIGTERM: a clean stop (exit 0, no panic: its PostgreSQL clients close off the runtime).
    let mut w1 = w1;
    signal(w1.id(), "TERM");
    let status = tokio::task::block_in_place(|| w1.wait()).unwrap();
    let log = c.raw_log("w1");
    assert!(status.success() && !log.contains("panicked"), "{status}\n{}", c.log("w1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_polls_field_devices_into_the_stream_a_worker_raises_their_orders_and_says_when_nats_is_gone()
{
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start().await;
    // A landslide station's extensometer on Modbus TCP, at 25.37 mm (over the red 20 mm), polled
    // by a relay that has no broker at all.
    let station = gridsentry_tests::modbus::Station::default();
    station.holding(1, 0, &[2537]);
    let addr = station.serve_tcp().await;
    let field = format!(
        "[[modbus]]\nsite = \"slope-k12\"\ndevice = \"ext-01\"\nkind = \"wire_extensometer\"\n\
         tcp = \"{addr}\"\nunit = 1\npoll_ms = 100\ntimeout_ms = 500\n"
    );
    let _field_relay = relay_with(c.dir.path(), "relay-field", &field, &c._nats, 4);
    let opts = Opts {
        extra: "[[rule]]\nid = \"slope-disp\"\ncolour = \"red\"\n\
                condition = { type = \"threshold\", stream = \"deform\", field = \"disp_mm\", above = 20.0, clear = 15.0 }\n"
            .into(),
        ..Opts::default()
    };
    let http = free_port();
    let _w = worker_with(c.dir.path(), "w1", http, &c.url, &c._nats, &c.hooks.url, &opts);
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned(http).await.len() < 4 {
        assert!(Instant::now() < deadline, "w1 not ready\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order = loop {
        let row = off_runtime(|| {
            let mut pg = postgres::Client::connect(&c.url, postgres::NoTls).unwrap();
            pg.query("SELECT subject, colour, summary FROM orders WHERE rule = 'slope-disp'", &[])
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
                .collect::<Vec<_>>()
        });
        if let Some(o) = row.into_iter().next() {
            break o;
        }
        let relay_log = std::fs::read_to_string(c.dir.path().join("relay-field.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "no order\n{relay_log}\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((order.0.as_str(), order.1.as_str()), ("slope-k12/ext-01", "red"), "{order:?}");
    assert!(order.2.contains("25.4"), "{}", order.2);

    // Every NATS node SIGKILLed: the worker says it is not ready (its partitions are not read),
    // and is ready again once they are back.
    let ready = |http: u16| async move {
        let r = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(ready(http).await.0, 200);
    for i in 0..3 {
        c._nats.kill(i);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = ready(http).await;
        if status == 503 && text.contains("not connected to NATS") {
            break;
        }
        assert!(Instant::now() < deadline, "still {status} {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(gridsentry_tests::metric(http, "gridsentry_cluster_nats_connected").await, Some(0));
    assert_eq!(gridsentry_tests::metric(http, "gridsentry_ready").await, Some(0));
    // The relays say so too, on their own endpoints.
    let (field_http, relay_http) =
        (relay_http(c.dir.path(), "relay-field"), relay_http(c.dir.path(), "relay"));
    for h in [field_http, relay_http] {
        readyz_until(h, 30, |s, t| s == 503 && t.contains("not connected to NATS"), || c.log("w1")).await;
        assert_eq!(gridsentry_tests::metric(h, "gridsentry_relay_nats_connected").await, Some(0));
        assert_eq!(gridsentry_tests::metric(h, "gridsentry_relay_ready").await, Some(0));
    }
    for i in 0..3 {
        c._nats.restart(i);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready(http).await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again: {:?}\n{}", ready(http).await, c.log("w1"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(gridsentry_tests::metric(http, "gridsentry_ready").await, Some(1));
    for h in [field_http, relay_http] {
        readyz_until(h, 60, |s, _| s == 200, || c.log("w1")).await;
    }
    // The street's broker SIGKILLed: the relay that reads it is not ready, the field relay is.
    let published = gridsentry_tests::metric(relay_http, "gridsentry_relay_published_total").await.unwrap();
    assert!(published >= 1, "the relay published nothing");
    c.broker.kill();
    readyz_until(
        relay_http,
        30,
        |s, t| s == 503 && t.contains("not connected to the broker"),
        || c.log("w1"),
    )
    .await;
    assert_eq!(gridsentry_tests::metric(relay_http, "gridsentry_relay_mqtt_connected").await, Some(0));
    // The field relay reads no broker: it never says so, and is ready while the broker is down
    // (a publish timing out on a loaded machine may make it 503 for a moment: asked again).
    readyz_until(field_http, 30, |s, _| s == 200, || c.log("w1")).await;
    assert!(!readyz(field_http).await.1.contains("broker"));
    c.broker.restart();
    readyz_until(relay_http, 60, |s, _| s == 200, || c.log("w1")).await;
    assert_eq!(gridsentry_tests::metric(relay_http, "gridsentry_relay_mqtt_connected").await, Some(1));
}

/// A worker's `/readyz`: (status, text).
async fn readyz(http: u16) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Polls `/readyz` of `http` until `pred` holds (panics with the last answer after `secs`).
async fn readyz_until(http: u16, secs: u64, pred: impl Fn(u16, &str) -> bool, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, text) = readyz(http).await;
        if pred(status, &text) {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz of {http} still {status} {text}\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_around_the_mapping_is_refused_and_counted_and_a_deleted_stream_turns_workers_red() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    let http = free_port();
    let _w = worker(c.dir.path(), "w1", http, &c.url, &c._nats, &c.hooks.url);
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned(http).await.len() < 4 {
        assert!(Instant::now() < deadline, "w1 not ready\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A loud reading of a device nobody else reports, published straight into a partition its
    // site does not map to (as a relay's credentials allow: nats-server 2.9 checks the mapped
    // subject), then the ordinary readings through the broker.
    let admin = c._nats.admin().await;
    let right = gridsentry::cluster::stream::partition_of("site-0", 4);
    let (_, forged) = noise_reading("site-0", "dev-9", (1, 0, now_ms()), 95.0);
    let subject = format!("gs.p.{}.site-0.dev-9.noise", (right + 1) % 4);
    admin.publish(subject, forged.into()).await.unwrap().await.unwrap();
    loadgen::publish(c.broker.port, 1, messages(1), 0, SITES, None).await;
    c.applied_up_to(0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while gridsentry_tests::metric(http, "gridsentry_cluster_misrouted_total").await != Some(1) {
        assert!(Instant::now() < deadline, "misrouted not counted\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.orders(), (SITES as i64, SITES as i64), "the forged reading raised an order");
    assert!(c.raw_log("w1").contains("a message in a partition its site does not map to"), "{}", c.log("w1"));

    // The stream deleted (an admin's mistake): not ready, and an ERROR says why.
    admin.delete_stream("GS_READINGS").await.unwrap();
    readyz_until(http, 30, |s, t| s == 503 && t.contains("GS_READINGS cannot be read"), || c.log("w1")).await;
    assert!(
        c.raw_log("w1").contains("ERROR") && c.raw_log("w1").contains("reading stream missing"),
        "{}",
        c.log("w1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_partition_turns_readyz_red_then_is_let_go_and_the_worker_exits_for_a_restart() {
    let _one = ONE_AT_A_TIME.lock().await;
    let c = Cluster::start().await;
    let (h1, h2) = (free_port(), free_port());
    // w1's pipelines stall with their first batch (test hook); stall_s 4.
    let opts = Opts {
        env: vec![("GRIDSENTRY_TEST_STALL", "pipeline")],
        daemon: "stall_s = 4\n".into(),
        ..Opts::default()
    };
    let mut w1 = worker_with(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url, &opts);
    let deadline = Instant::now() + Duration::from_secs(60);
    while owned(h1).await.len() < 4 {
        assert!(Instant::now() < deadline, "w1 not ready\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loadgen::publish(c.broker.port, 1, messages(1), 0, 3 * SITES, None).await;
    let published = Instant::now();
    readyz_until(h1, 30, |s, t| s == 503 && t.contains("no progress"), || c.log("w1")).await;
    let red = published.elapsed();
    // It lets the partitions go and, as their pipelines cannot be stopped, exits 70.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(s)) = w1.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "w1 did not exit\n{}", c.log("w1"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let exited = published.elapsed();
    let log = c.raw_log("w1");
    assert!(log.contains("partition stalled; letting it go"), "{}", c.log("w1"));
    assert_eq!(status.code(), Some(70), "{}", c.log("w1"));
    // Nothing was lost: another worker applies everything.
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    c.applied_up_to(2).await;
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    println!("cluster_stall_red_ms={} cluster_stall_exit_ms={}", red.as_millis(), exited.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_sigkilled_five_times_under_load_every_partition_applies_again_soon_nothing_lost() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    let _one = ONE_AT_A_TIME.lock().await;
    let mut c = Cluster::start().await;
    let (h1, h2) = (free_port(), free_port());
    let _w1 = worker(c.dir.path(), "w1", h1, &c.url, &c._nats, &c.hooks.url);
    let _w2 = worker(c.dir.path(), "w2", h2, &c.url, &c._nats, &c.hooks.url);
    c.shared(h1, h2).await;
    let admin = c._nats.admin().await;
    // Round r: reading r of every site (every partition has work all the time), every 100 ms.
    let (round, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let publisher = {
        let (round, stop, port) = (round.clone(), stop.clone(), c.broker.port);
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let r = round.load(SeqCst);
                loadgen::publish(port, 1, messages(1), r * SITES, SITES, None).await;
                round.store(r + 1, SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let every_site_past = |seq: u64| {
        let a = applied(&c.pg, &c.db);
        a.len() == SITES as usize && a.values().all(|(s, _)| u64::from(*s) >= seq)
    };
    let mut stalls = Vec::new();
    for kill in 0..5 {
        // Flowing first: every site applied within the last few rounds.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !every_site_past(round.load(SeqCst).saturating_sub(5)) {
            assert!(Instant::now() < deadline, "kill {kill}: not flowing\n{}\n{}", c.log("w1"), c.log("w2"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let leader = c._nats.stream_leader(&admin).await.expect("the stream has a leader");
        let after = round.load(SeqCst) + 1;
        let killed = Instant::now();
        c._nats.kill(leader);
        // Every partition applies a reading published after the kill.
        let deadline = killed + Duration::from_secs(60);
        while !every_site_past(after) {
            if Instant::now() > deadline {
                let a = applied(&c.pg, &c.db);
                let behind: Vec<_> = a.iter().filter(|(_, (s, _))| u64::from(*s) < after).collect();
                panic!(
                    "kill {kill}: stalled {behind:?} (after {after})\n{}\n{}\n--- relay ---\n{}",
                    c.log("w1"),
                    c.log("w2"),
                    c.raw_log("relay").lines().rev().take(30).collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stall = killed.elapsed();
        println!(
            "leader kill {kill} (node {leader}): every partition applying again after {} ms",
            stall.as_millis()
        );
        stalls.push(stall);
        c._nats.restart(leader);
        c._nats.wait_stream_healthy(&admin).await;
    }
    stop.store(true, SeqCst);
    publisher.await.unwrap();
    let last = round.load(SeqCst) - 1;
    c.applied_up_to(last as u32).await;
    assert_eq!(c.orders(), (SITES as i64, SITES as i64));
    // Each kill had to recover within 60 s (above), nothing lost or doubled. The election itself
    // takes 4.6–8.5 s here (DESIGN.md), so the < 10 s aim is a benchmark figure (`scripts/bench
    // --cluster` prints it); one kill in about 30 took 25 s in this suite's runs. What this test
    // holds to is that partitions do not wait for the client's heartbeat-based recovery any more
    // (ordered consumers: 23–36 s, typically 20): the median kill recovers within 12 s.
    stalls.sort_unstable();
    let (median, worst) = (stalls[stalls.len() / 2], stalls[stalls.len() - 1]);
    println!("cluster_stall_max_ms={} cluster_stall_median_ms={}", worst.as_millis(), median.as_millis());
    if std::env::var("GS_TEST_DUMP").is_ok() || median >= Duration::from_secs(12) {
        for name in ["relay", "w1", "w2"] {
            for l in c
                .raw_log(name)
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("INFO"))
            {
                println!("{name}: {l}");
            }
        }
    }
    assert!(
        median < Duration::from_secs(12),
        "partitions went a median {} ms without applying",
        median.as_millis()
    );
}
